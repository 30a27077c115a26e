/* librdkafka producer bridged into the libuv loop.  Delivery reports are
 * queued by librdkafka's threads on the main queue; the queue writes a byte
 * to a pipe when it turns non-empty, a uv_poll on the pipe wakes the loop,
 * and the loop serves every queued report with rd_kafka_poll(rk, 0).  A
 * slow timer polls too, so a report can never be left unserved.  Loop
 * thread only. */
#include "kafka_producer.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "metrics.h"

/* Topic handles by name: librdkafka looks a topic up by name (under a lock)
 * on every produce by name, so handles are kept here.  Bounded: templated
 * topics past TOPIC_CACHE_MAX names are produced by name. */
#define TOPIC_CACHE_MAX 1024
#define TOPIC_CACHE_SLOTS 2048 /* power of two, > 2 * TOPIC_CACHE_MAX */

typedef struct {
  char *name; /* owned */
  rd_kafka_topic_t *rkt;
} topic_slot_t;

struct sl_kafka_producer {
  topic_slot_t topics[TOPIC_CACHE_SLOTS];
  size_t n_topics;
  uv_loop_t *loop;
  rd_kafka_t *rk;
  rd_kafka_t *mock_rk; /* owns the embedded cluster */
  rd_kafka_mock_cluster_t *mock;
  char *bootstrap;
  sl_ingest_t *ingest;
  int pipefd[2];
  uv_poll_t dr_poll;
  uv_timer_t dr_timer;
  int open_handles;
  void (*on_closed)(void *);
  void *on_closed_arg;
  size_t inflight;
  size_t queue_max;
  size_t resume_mark;
  bool fatal_logged;
  void (*on_fatal)(void *arg);
  void *on_fatal_arg;
};

static const struct {
  const char *key, *value;
} producer_defaults[] = {
    {"acks", "all"},
    {"enable.idempotence", "true"},
    {"compression.type", "lz4"},
    {"queue.buffering.max.messages", "100000"},
    {"queue.buffering.max.kbytes", "262144"},
    {"message.timeout.ms", "0"},
    {"linger.ms", "5"},
};

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t errlen) {
  return rd_kafka_conf_set(conf, k, v, err, errlen) == RD_KAFKA_CONF_OK ? 0 : SL_ECONFIG;
}

/* Builds the producer conf: defaults, then [kafka.properties] on top. */
static rd_kafka_conf_t *build_conf(const sl_config_t *cfg, sl_diag_t *d) {
  const sl_kafka_config_t *k = &cfg->kafka;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char err[512];
  for (size_t i = 0; i < sizeof producer_defaults / sizeof producer_defaults[0]; i++)
    conf_set(conf, producer_defaults[i].key, producer_defaults[i].value, err, sizeof err);
  if (k->client_id) conf_set(conf, "client.id", k->client_id, err, sizeof err);
  size_t before = d->n;
  for (size_t i = 0; i < k->n_properties; i++) {
    if (conf_set(conf, k->properties[i].key, k->properties[i].value, err, sizeof err))
      sl_diag_add(d, cfg->file, k->property_lines[i], 1, "kafka.properties.\"%s\": %s", k->properties[i].key,
                  err);
  }
  if (d->n > before) {
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  return conf;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  sl_kafka_producer_t *p = opaque;
  sl_ack_tracker_t *t = m->_private;
  p->inflight--;
  sl_metric_set(KAFKA_INFLIGHT, p->inflight);
  if (m->err) {
    sl_metric_inc(KAFKA_FAILED);
    sl_log_rl(SL_LOG_ERROR, "kafka", "record to topic %s failed: %s (its chunk will not be acked)",
              rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
  } else {
    sl_metric_inc(KAFKA_DELIVERED);
  }
  if (t) sl_ack_tracker_settle(t, m->err == 0);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  sl_kafka_producer_t *p = opaque;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[512];
    rd_kafka_fatal_error(rk, buf, sizeof buf);
    if (p->fatal_logged) return;
    p->fatal_logged = true;
    sl_log(SL_LOG_ERROR, "kafka", "fatal producer error: %s", buf);
    if (p->on_fatal) p->on_fatal(p->on_fatal_arg);
    return;
  }
  /* Brokers going away and coming back is routine: librdkafka retries. */
  sl_log_rl(err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT
                ? SL_LOG_WARN
                : SL_LOG_ERROR,
            "kafka", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)rk;
  sl_log_level_t l = level <= 3 ? SL_LOG_ERROR : level <= 5 ? SL_LOG_WARN : SL_LOG_DEBUG;
  sl_log(l, "kafka", "librdkafka %s: %s", fac, buf);
}

static void serve(sl_kafka_producer_t *p) {
  rd_kafka_poll(p->rk, 0);
  if (p->ingest) sl_ingest_on_drain(p->ingest);
}

static void on_dr_readable(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  sl_kafka_producer_t *p = h->data;
  char buf[256];
  while (read(p->pipefd[0], buf, sizeof buf) > 0) {
  }
  serve(p);
}

static void on_dr_timer(uv_timer_t *t) { serve(t->data); }

int sl_kafka_producer_new(uv_loop_t *loop, const sl_config_t *cfg, sl_kafka_producer_t **out, sl_diag_t *d) {
  const sl_kafka_config_t *k = &cfg->kafka;
  char err[512];
  sl_kafka_producer_t *p = calloc(1, sizeof *p);
  if (!p) return SL_ENOMEM;
  p->loop = loop;
  p->pipefd[0] = p->pipefd[1] = -1;
  rd_kafka_conf_t *conf = build_conf(cfg, d);
  if (!conf) goto fail;

  if (k->embedded) {
    rd_kafka_conf_t *mconf = rd_kafka_conf_new();
    /* This instance only hosts the cluster; it never connects anywhere. */
    rd_kafka_conf_set(mconf, "log_level", "3", err, sizeof err);
    rd_kafka_conf_set_log_cb(mconf, on_rdkafka_log);
    p->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, err, sizeof err);
    if (!p->mock_rk || !(p->mock = rd_kafka_mock_cluster_new(p->mock_rk, 1))) {
      sl_diag_add(d, cfg->file, 0, 0, "kafka: cannot start the embedded cluster: %s", err);
      rd_kafka_conf_destroy(conf);
      goto fail;
    }
    p->bootstrap = strdup(rd_kafka_mock_cluster_bootstraps(p->mock));
    for (size_t i = 0; i < cfg->n_routes; i++)
      if (sl_topic_tmpl_is_fixed(cfg->routes[i].topic))
        rd_kafka_mock_topic_create(p->mock, cfg->routes[i].topic_text, k->embedded_partitions, 1);
    if (k->default_topic) rd_kafka_mock_topic_create(p->mock, k->default_topic, k->embedded_partitions, 1);
    sl_log(SL_LOG_WARN, "kafka",
           "using the EMBEDDED mock cluster, bootstrap %s ; records live in this process only and are lost when "
           "it stops (not durable; for demos and trials)",
           p->bootstrap);
  } else {
    p->bootstrap = strdup(k->brokers);
  }
  conf_set(conf, "bootstrap.servers", p->bootstrap, err, sizeof err);
  char qmax[32];
  size_t ql = sizeof qmax;
  if (rd_kafka_conf_get(conf, "queue.buffering.max.messages", qmax, &ql) == RD_KAFKA_CONF_OK)
    p->queue_max = strtoull(qmax, NULL, 10);
  if (!p->queue_max) p->queue_max = 100000;
  p->resume_mark = (size_t)(k->resume_below * (double)p->queue_max);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_error_cb(conf, on_error);
  rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
  conf_set(conf, "log.queue", "true", err, sizeof err);
  rd_kafka_conf_set_opaque(conf, p);
  p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!p->rk) {
    sl_diag_add(d, cfg->file, 0, 0, "kafka: cannot create the producer: %s", err);
    goto fail;
  }
  /* Logs are served on the main queue too, so they reach the loop thread. */
  rd_kafka_set_log_queue(p->rk, NULL);

  if (pipe2(p->pipefd, O_NONBLOCK | O_CLOEXEC)) {
    sl_diag_add(d, cfg->file, 0, 0, "kafka: pipe: %s", strerror(errno));
    goto fail;
  }
  rd_kafka_queue_t *mq = rd_kafka_queue_get_main(p->rk);
  rd_kafka_queue_io_event_enable(mq, p->pipefd[1], "1", 1);
  rd_kafka_queue_destroy(mq);
  uv_poll_init(loop, &p->dr_poll, p->pipefd[0]);
  p->dr_poll.data = p;
  uv_poll_start(&p->dr_poll, UV_READABLE, on_dr_readable);
  uv_timer_init(loop, &p->dr_timer);
  p->dr_timer.data = p;
  uv_timer_start(&p->dr_timer, on_dr_timer, 100, 100);
  p->open_handles = 2;
  sl_log(SL_LOG_INFO, "kafka", "producer started (bootstrap %s)", p->bootstrap);
  *out = p;
  return 0;
fail:
  sl_kafka_producer_free(p, 0);
  return SL_EKAFKA;
}

void sl_kafka_producer_set_ingest(sl_kafka_producer_t *p, sl_ingest_t *ingest) { p->ingest = ingest; }

void sl_kafka_producer_on_fatal(sl_kafka_producer_t *p, void (*cb)(void *arg), void *arg) {
  p->on_fatal = cb;
  p->on_fatal_arg = arg;
}

const char *sl_kafka_producer_bootstrap(const sl_kafka_producer_t *p) { return p->bootstrap; }

static uint64_t name_hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return h;
}

/* The cached handle for `topic`, created on first use; NULL when the cache
 * is full or librdkafka refuses the name. */
static rd_kafka_topic_t *topic_handle(sl_kafka_producer_t *p, const char *topic) {
  size_t n = strlen(topic);
  size_t i = name_hash(topic, n) & (TOPIC_CACHE_SLOTS - 1);
  for (; p->topics[i].name; i = (i + 1) & (TOPIC_CACHE_SLOTS - 1))
    if (strcmp(p->topics[i].name, topic) == 0) return p->topics[i].rkt;
  if (p->n_topics >= TOPIC_CACHE_MAX) return NULL;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(p->rk, topic, NULL);
  char *name = rkt ? strdup(topic) : NULL;
  if (!name) {
    if (rkt) rd_kafka_topic_destroy(rkt);
    return NULL;
  }
  p->topics[i].name = name;
  p->topics[i].rkt = rkt;
  p->n_topics++;
  return rkt;
}

void sl_kafka_producer_prepare_topic(sl_kafka_producer_t *p, const char *topic) { topic_handle(p, topic); }

int sl_kafka_producer_send(sl_kafka_producer_t *p, const char *topic, const void *key, size_t key_len,
                           const void *value, size_t value_len, int64_t timestamp_ms, const char *tag,
                           size_t tag_len, sl_ack_tracker_t *tracker) {
  rd_kafka_topic_t *rkt = topic_handle(p, topic);
  rd_kafka_resp_err_t err;
#define SL_PRODUCE(target)                                                                          \
  rd_kafka_producev(p->rk, target, RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),                      \
                    RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_KEY(key, key_len),       \
                    RD_KAFKA_V_TIMESTAMP(timestamp_ms),                                             \
                    RD_KAFKA_V_HEADER("fluent.tag", tag, (ssize_t)tag_len), RD_KAFKA_V_OPAQUE(tracker), \
                    RD_KAFKA_V_END)
  if (rkt)
    err = SL_PRODUCE(RD_KAFKA_V_RKT(rkt));
  else
    err = SL_PRODUCE(RD_KAFKA_V_TOPIC(topic));
#undef SL_PRODUCE
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (tracker) sl_ack_tracker_hold(tracker);
    p->inflight++;
    sl_metric_inc(KAFKA_PRODUCED);
    sl_metric_set(KAFKA_INFLIGHT, p->inflight);
    return 0;
  }
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
    sl_metric_inc(KAFKA_QUEUE_FULL);
    return SL_EQUEUEFULL;
  }
  sl_metric_inc(KAFKA_REJECTED);
  sl_log_rl(SL_LOG_ERROR, "kafka", "record of %zu bytes to topic %s refused: %s (its chunk will not be acked)",
            value_len, topic, rd_kafka_err2str(err));
  if (tracker) {
    sl_ack_tracker_hold(tracker);
    sl_ack_tracker_settle(tracker, false);
  }
  return SL_EKAFKA;
}

bool sl_kafka_producer_below_low_water(const sl_kafka_producer_t *p) {
  return (size_t)rd_kafka_outq_len(p->rk) <= p->resume_mark;
}

size_t sl_kafka_producer_inflight(const sl_kafka_producer_t *p) { return p->inflight; }

static void on_handle_closed(uv_handle_t *h) {
  sl_kafka_producer_t *p = h->data;
  if (--p->open_handles == 0 && p->on_closed) p->on_closed(p->on_closed_arg);
}

void sl_kafka_producer_close(sl_kafka_producer_t *p, void (*on_closed)(void *), void *arg) {
  p->on_closed = on_closed;
  p->on_closed_arg = arg;
  uv_close((uv_handle_t *)&p->dr_poll, on_handle_closed);
  uv_close((uv_handle_t *)&p->dr_timer, on_handle_closed);
}

void sl_kafka_producer_free(sl_kafka_producer_t *p, int flush_ms) {
  if (!p) return;
  if (p->rk) {
    rd_kafka_queue_t *mq = rd_kafka_queue_get_main(p->rk);
    rd_kafka_queue_io_event_enable(mq, -1, NULL, 0);
    rd_kafka_queue_destroy(mq);
    p->ingest = NULL;
    if (flush_ms > 0) rd_kafka_flush(p->rk, flush_ms);
    for (size_t i = 0; i < TOPIC_CACHE_SLOTS; i++) {
      if (!p->topics[i].name) continue;
      rd_kafka_topic_destroy(p->topics[i].rkt);
      free(p->topics[i].name);
    }
    rd_kafka_destroy(p->rk);
  }
  if (p->mock) rd_kafka_mock_cluster_destroy(p->mock);
  if (p->mock_rk) rd_kafka_destroy(p->mock_rk);
  if (p->pipefd[0] >= 0) close(p->pipefd[0]);
  if (p->pipefd[1] >= 0) close(p->pipefd[1]);
  free(p->bootstrap);
  free(p);
}
