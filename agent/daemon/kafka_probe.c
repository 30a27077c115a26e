/* The metadata probe runs on libuv's thread pool: one work item that
 * creates a client, asks for metadata (1 s timeout) until the cluster
 * answers or the probe is stopped, and destroys the client; its
 * completion, on the loop, reports and frees.  Main thread, except
 * probe_work. */
#include "daemon/kafka_probe.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"

#define PROBE_TIMEOUT_MS 1000

struct sl_kafka_probe {
  uv_work_t work;
  rd_kafka_conf_t *conf; /* handed to rd_kafka_new on the pool's thread */
  _Atomic bool stopped;
  int brokers; /* > 0: reachable */
  char error[320];
  void (*on_reachable)(void *arg, int brokers);
  void *arg;
};

/* librdkafka's own lines about a cluster it cannot reach come from the
 * producer; the probe keeps quiet. */
static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)rk;
  (void)level;
  (void)fac;
  (void)buf;
}

static void probe_work(uv_work_t *w) {
  sl_kafka_probe_t *p = w->data;
  char err[256];
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, p->conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(p->conf);
    snprintf(p->error, sizeof p->error, "cannot create a Kafka client: %s", err);
    return;
  }
  while (!atomic_load(&p->stopped)) {
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 0, NULL, &md, PROBE_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      p->brokers = md->broker_cnt > 0 ? md->broker_cnt : 1;
      rd_kafka_metadata_destroy(md);
      break;
    }
    /* An unreachable cluster answers at the timeout; a refused connection
     * may fail at once: wait out the second either way. */
    for (int i = 0; i < 10 && !atomic_load(&p->stopped); i++) uv_sleep(PROBE_TIMEOUT_MS / 10);
  }
  rd_kafka_destroy(rk);
}

static void probe_done(uv_work_t *w, int status) {
  sl_kafka_probe_t *p = w->data;
  if (!atomic_load(&p->stopped) && status == 0) {
    if (p->brokers > 0)
      p->on_reachable(p->arg, p->brokers);
    else
      sl_log(SL_LOG_ERROR, "kafka", "readiness: %s", p->error);
  }
  free(p);
}

int sl_kafka_probe_start(uv_loop_t *loop, const sl_kafka_conf_t *k, const char *bootstrap, const char *file,
                         void (*on_reachable)(void *arg, int brokers), void *arg, sl_kafka_probe_t **out) {
  sl_kafka_probe_t *p = calloc(1, sizeof *p);
  if (!p) return SL_ENOMEM;
  sl_diag_t d = {0};
  char err[256];
  p->conf = sl_kafka_conf_build(k, NULL, file, &d);
  sl_diag_free(&d); /* the producer, made from the same properties, reports them */
  if (!p->conf || rd_kafka_conf_set(p->conf, "bootstrap.servers", bootstrap, err, sizeof err)) {
    if (p->conf) rd_kafka_conf_destroy(p->conf);
    free(p);
    return SL_EKAFKA;
  }
  rd_kafka_conf_set_log_cb(p->conf, quiet_log);
  p->on_reachable = on_reachable;
  p->arg = arg;
  p->work.data = p;
  int r = uv_queue_work(loop, &p->work, probe_work, probe_done);
  if (r) {
    rd_kafka_conf_destroy(p->conf);
    free(p);
    return r;
  }
  *out = p;
  return 0;
}

void sl_kafka_probe_stop(sl_kafka_probe_t *p) {
  if (p) atomic_store(&p->stopped, true);
}
