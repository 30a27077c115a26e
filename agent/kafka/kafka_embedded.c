/* The embedded mock cluster: a librdkafka handle that only hosts
 * rd_kafka_mock_cluster_new's brokers.  Main thread. */
#include "kafka/kafka_embedded.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"

struct sl_kafka_embedded {
  rd_kafka_t *host; /* owns the cluster; never connects anywhere */
  rd_kafka_mock_cluster_t *mock;
  int partitions;
};

static void on_host_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)rk;
  sl_log(level <= 3 ? SL_LOG_ERROR : SL_LOG_WARN, "kafka", "embedded cluster %s: %s", fac, buf);
}

sl_kafka_embedded_t *sl_kafka_embedded_new(int partitions, char *err, size_t errlen) {
  sl_kafka_embedded_t *e = calloc(1, sizeof *e);
  if (!e) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  e->partitions = partitions;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, errlen);
  rd_kafka_conf_set_log_cb(conf, on_host_log);
  if (!(e->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen))) {
    rd_kafka_conf_destroy(conf);
    free(e);
    return NULL;
  }
  if (!(e->mock = rd_kafka_mock_cluster_new(e->host, 1))) {
    snprintf(err, errlen, "rd_kafka_mock_cluster_new failed");
    sl_kafka_embedded_free(e);
    return NULL;
  }
  return e;
}

const char *sl_kafka_embedded_bootstrap(const sl_kafka_embedded_t *e) {
  return rd_kafka_mock_cluster_bootstraps(e->mock);
}

void sl_kafka_embedded_create_topic(sl_kafka_embedded_t *e, const char *topic) {
  rd_kafka_mock_topic_create(e->mock, topic, e->partitions, 1);
}

void sl_kafka_embedded_free(sl_kafka_embedded_t *e) {
  if (!e) return;
  if (e->mock) rd_kafka_mock_cluster_destroy(e->mock);
  if (e->host) rd_kafka_destroy(e->host);
  free(e);
}
