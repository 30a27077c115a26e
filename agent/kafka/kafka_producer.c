/* A librdkafka producer served on the loop through the Kafka bridge: safe
 * defaults under [kafka.properties], a cache of topic handles, delivery
 * reports handed back with each record's opaque, the resume edge after a
 * full queue, and fatal errors.  Loop thread only. */
#include "kafka/kafka_producer.h"

#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "kafka/kafka_stats.h"

/* Topic handles by name: librdkafka looks a topic up by name (under a lock)
 * on every produce by name, so handles are kept here.  Bounded: templated
 * topics past TOPIC_CACHE_MAX names are produced by name. */
#define TOPIC_CACHE_MAX 1024
#define TOPIC_CACHE_SLOTS 2048 /* power of two, > 2 * TOPIC_CACHE_MAX */

/* A cached topic: its handle (whose opaque is the slot) and its share of
 * the per-topic counters, gathered here and flushed once per serve. */
typedef struct {
  char *name; /* owned */
  rd_kafka_topic_t *rkt;
  sl_metric_t *produced, *delivered; /* {topic} children */
  uint64_t produced_unflushed, delivered_unflushed;
  bool dirty; /* in the producer's dirty list */
} topic_slot_t;

struct sl_kafka_producer {
  topic_slot_t topics[TOPIC_CACHE_SLOTS];
  size_t n_topics;
  topic_slot_t *dirty[TOPIC_CACHE_MAX]; /* slots with unflushed counts */
  size_t n_dirty;
  rd_kafka_t *rk;
  rd_kafka_queue_t *main_queue;
  sl_kafka_attach_t *attach;
  sl_kafka_producer_cbs_t cbs;
  size_t inflight;       /* records handed over and not yet reported */
  uint64_t inflight_bytes; /* their keys and values, as librdkafka counts its queue */
  /* librdkafka refuses a record when either its count or its bytes reach
   * their limit; room comes back when both are below resume_below of it. */
  size_t resume_mark;
  uint64_t resume_bytes;
  bool want_room; /* a send found the queue full: tell on_room when below the mark */
  bool fatal_seen;
  bool closing; /* freeing: reports no longer go up */
  /* Per-record counts are gathered in the topic slots and added to the
   * shared metrics once per serve, so the hot path pays no atomic
   * operation per record. */
  uint64_t delivered_seen; /* every delivery: one in LATENCY_SAMPLE has its latency observed */
  size_t inflight_published; /* this producer's share of the shared gauge */
  sl_kafka_stats_client_t *stats; /* NULL with statistics.interval.ms = 0 */
  struct {
    sl_metric_family_t *produced, *delivered; /* {topic} */
    sl_metric_t *failed, *rejected, *queue_full, *inflight, *delivery_seconds;
    sl_metric_family_t *errors; /* {topic, error} */
  } m;
};

/* Producer defaults, under whatever [kafka.properties] sets. */
static const char *const producer_defaults[] = {
    "acks", "all",
    "enable.idempotence", "true",
    "compression.type", "lz4",
    "queue.buffering.max.messages", "100000",
    "queue.buffering.max.kbytes", "262144",
    "message.timeout.ms", "0",
    "linger.ms", "5",
    /* sluice_kafka_brokers_up, the producer queue gauges and /readyz's
     * Kafka check come from these. */
    "statistics.interval.ms", "5000",
    NULL,
};

/* Produce call to acknowledgement: linger.ms (5 ms) is the floor; seconds
 * mean a broker that is slow or away. */
static const double delivery_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
static const char *const error_labels[] = {"topic", "error", NULL};

/* Topics are bounded by the routes (a templated topic's names are not):
 * past this many (topic, error) pairs, failures are still counted in the
 * unlabelled totals. */
#define ERROR_SERIES_MAX 256
/* Series of the per-topic counters; past it (templated topics), new
 * topics' records are counted in the family's dropped-series counter. */
#define TOPIC_SERIES_MAX 512

static void register_metrics(sl_kafka_producer_t *p, sl_metrics_t *r) {
  static const char *const topic_label[] = {"topic", NULL};
  p->m.produced = sl_metrics_family(
      r, &(sl_metric_desc_t){.type = SL_METRIC_COUNTER, .name = "sluice_kafka_produced_total",
                             .help = "Records handed to librdkafka, by topic.", .labels = topic_label,
                             .max_children = TOPIC_SERIES_MAX});
  p->m.delivered = sl_metrics_family(
      r, &(sl_metric_desc_t){.type = SL_METRIC_COUNTER, .name = "sluice_kafka_delivered_total",
                             .help = "Records Kafka acknowledged, by topic.", .labels = topic_label,
                             .max_children = TOPIC_SERIES_MAX});
  p->m.failed = sl_metrics_counter(r, "sluice_kafka_delivery_failed_total",
                                   "Records Kafka failed for good (their chunk is not acked, so the client "
                                   "re-sends).");
  p->m.rejected = sl_metrics_counter(r, "sluice_kafka_produce_rejected_total",
                                     "Records librdkafka refused at produce time (e.g. larger than "
                                     "message.max.bytes).");
  p->m.queue_full = sl_metrics_counter(r, "sluice_kafka_queue_full_total", "Times librdkafka's queue was full.");
  p->m.inflight = sl_metrics_gauge(r, "sluice_kafka_inflight_records",
                                   "Records produced and not yet acknowledged by Kafka.");
  p->m.delivery_seconds = sl_metric_child(
      sl_metrics_family(r, &(sl_metric_desc_t){.type = SL_METRIC_HISTOGRAM,
                                               .name = "sluice_kafka_delivery_seconds",
                                               .help = "Time from handing a record to librdkafka to Kafka's "
                                                       "acknowledgement of it, for one delivered record in "
                                                       "16.",
                                               .buckets = delivery_buckets,
                                               .n_buckets = sizeof delivery_buckets / sizeof *delivery_buckets}),
      NULL);
  p->m.errors = sl_metrics_family(
      r, &(sl_metric_desc_t){.type = SL_METRIC_COUNTER,
                             .name = "sluice_kafka_produce_errors_total",
                             .help = "Records Kafka failed for good or librdkafka refused, by topic and "
                                     "librdkafka error name.",
                             .labels = error_labels,
                             .max_children = ERROR_SERIES_MAX});
}

/* One delivered record in this many has its latency observed. */
#define LATENCY_SAMPLE 16

/* The cache slot of a handle this producer made, or NULL (a topic produced
 * by name: librdkafka made its handle, whose opaque is not ours). */
static topic_slot_t *slot_of(sl_kafka_producer_t *p, rd_kafka_topic_t *rkt) {
  topic_slot_t *ts = rkt ? rd_kafka_topic_opaque(rkt) : NULL;
  uintptr_t at = (uintptr_t)ts, lo = (uintptr_t)p->topics, hi = (uintptr_t)(p->topics + TOPIC_CACHE_SLOTS);
  return at >= lo && at < hi && ts->rkt == rkt ? ts : NULL;
}

static void mark_dirty(sl_kafka_producer_t *p, topic_slot_t *ts) {
  if (ts->dirty) return;
  ts->dirty = true;
  p->dirty[p->n_dirty++] = ts;
}

/* One record produced (delivered false) or delivered (true) to rkt, or by
 * name to topic. */
static void count_topic(sl_kafka_producer_t *p, rd_kafka_topic_t *rkt, const char *topic, bool delivered) {
  topic_slot_t *ts = slot_of(p, rkt);
  if (ts) {
    if (delivered)
      ts->delivered_unflushed++;
    else
      ts->produced_unflushed++;
    mark_dirty(p, ts);
    return;
  }
  /* Uncached (past TOPIC_CACHE_MAX names): the registry's lookup. */
  sl_metric_family_t *f = delivered ? p->m.delivered : p->m.produced;
  sl_metric_inc(sl_metric_child(f, (const char *const[]){topic ? topic : rd_kafka_topic_name(rkt)}));
}

static void count_error(sl_kafka_producer_t *p, const char *topic, rd_kafka_resp_err_t err) {
  sl_metric_inc(sl_metric_child(p->m.errors, (const char *const[]){topic, rd_kafka_err2name(err)}));
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  sl_kafka_producer_t *p = opaque;
  p->inflight--;
  p->inflight_bytes -= m->len + m->key_len;
  if (m->err) {
    sl_metric_inc(p->m.failed);
    count_error(p, rd_kafka_topic_name(m->rkt), m->err);
    sl_log_rl(SL_LOG_ERROR, "kafka", "record to topic %s failed: %s", rd_kafka_topic_name(m->rkt),
              rd_kafka_err2str(m->err));
  } else {
    count_topic(p, m->rkt, NULL, true);
    /* Reading the clock for every record costs several per cent of the
     * ingest thread: a sample describes the latency as well. */
    if (p->delivered_seen++ % LATENCY_SAMPLE == 0) {
      int64_t us = rd_kafka_message_latency(m);
      if (us >= 0) sl_histogram_observe(p->m.delivery_seconds, (double)us / 1e6);
    }
  }
  if (!p->closing) p->cbs.on_delivery(p->cbs.arg, m->_private, m->err ? SL_EKAFKA : 0);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  sl_kafka_producer_t *p = opaque;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[512];
    rd_kafka_fatal_error(rk, buf, sizeof buf);
    if (p->fatal_seen) return;
    p->fatal_seen = true;
    sl_log(SL_LOG_ERROR, "kafka", "fatal producer error: %s", buf);
    if (p->cbs.on_fatal && !p->closing) p->cbs.on_fatal(p->cbs.arg, buf);
    return;
  }
  /* Brokers going away and coming back is routine: librdkafka retries. */
  sl_log_rl(err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT ? SL_LOG_WARN
                                                                                            : SL_LOG_ERROR,
            "kafka", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
  (void)rk;
  sl_kafka_producer_t *p = opaque;
  sl_kafka_stats_report(p->stats, json, len);
  return 0; /* librdkafka frees json */
}

static void flush_metrics(sl_kafka_producer_t *p) {
  for (size_t i = 0; i < p->n_dirty; i++) {
    topic_slot_t *ts = p->dirty[i];
    if (ts->produced_unflushed) sl_metric_add(ts->produced, ts->produced_unflushed);
    if (ts->delivered_unflushed) sl_metric_add(ts->delivered, ts->delivered_unflushed);
    ts->produced_unflushed = ts->delivered_unflushed = 0;
    ts->dirty = false;
  }
  p->n_dirty = 0;
  /* Several producers (forward workers) share the gauge: each adds what
   * changed of its own share. */
  if (p->inflight != p->inflight_published) {
    sl_gauge_add(p->m.inflight, (double)p->inflight - (double)p->inflight_published);
    p->inflight_published = p->inflight;
  }
}

/* The bridge's serve callback: delivery reports, errors and logs. */
static size_t serve(void *arg) {
  sl_kafka_producer_t *p = arg;
  int n = rd_kafka_poll(p->rk, 0);
  flush_metrics(p);
  if (p->want_room && !p->closing && p->inflight <= p->resume_mark && p->inflight_bytes <= p->resume_bytes) {
    p->want_room = false;
    p->cbs.on_room(p->cbs.arg);
  }
  return n > 0 ? (size_t)n : 0;
}

int sl_kafka_producer_new(sl_kafka_bridge_t *bridge, sl_metrics_t *metrics, const sl_kafka_conf_t *k,
                          const char *bootstrap, const char *file, const sl_kafka_producer_cbs_t *cbs,
                          sl_kafka_producer_t **out, sl_diag_t *d) {
  char err[512];
  sl_kafka_producer_t *p = calloc(1, sizeof *p);
  if (!p) return SL_ENOMEM;
  p->cbs = *cbs;
  register_metrics(p, metrics);
  rd_kafka_conf_t *conf = sl_kafka_conf_build(k, producer_defaults, file, d);
  if (!conf) goto fail;
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
  char qmax[32];
  size_t ql = sizeof qmax;
  uint64_t max_messages = 100000, max_kbytes = 262144;
  if (rd_kafka_conf_get(conf, "queue.buffering.max.messages", qmax, &ql) == RD_KAFKA_CONF_OK)
    max_messages = strtoull(qmax, NULL, 10);
  ql = sizeof qmax;
  if (rd_kafka_conf_get(conf, "queue.buffering.max.kbytes", qmax, &ql) == RD_KAFKA_CONF_OK)
    max_kbytes = strtoull(qmax, NULL, 10);
  p->resume_mark = (size_t)(k->resume_below * (double)max_messages);
  p->resume_bytes = (uint64_t)(k->resume_below * (double)max_kbytes * 1024);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_error_cb(conf, on_error);
  bool stats = sl_kafka_conf_stats_enabled(conf);
  if (stats) rd_kafka_conf_set_stats_cb(conf, on_stats);
  sl_kafka_bridge_prepare_conf(conf);
  rd_kafka_conf_set_opaque(conf, p);
  if (!(p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err))) {
    rd_kafka_conf_destroy(conf);
    sl_diag_add(d, file, 0, 0, "kafka: cannot create the producer: %s", err);
    goto fail;
  }
  /* Statistics come through the main queue, served on the loop once the
   * queue is attached below: never before the client has joined. */
  if (stats) p->stats = sl_kafka_stats_join(metrics, rd_kafka_name(p->rk), true);
  p->main_queue = rd_kafka_queue_get_main(p->rk);
  if (!(p->attach = sl_kafka_bridge_attach(bridge, p->rk, p->main_queue, serve, p))) {
    sl_diag_add(d, file, 0, 0, "kafka: out of memory");
    goto fail;
  }
  sl_log(SL_LOG_INFO, "kafka", "producer started (bootstrap %s)", bootstrap);
  *out = p;
  return 0;
fail:
  sl_kafka_producer_free(p, 0);
  return SL_EKAFKA;
}

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
  topic_slot_t *ts = &p->topics[i];
  /* The producer's topic settings (message.timeout.ms, partitioner, the
   * user's topic properties), with the slot as the handle's opaque. */
  rd_kafka_topic_conf_t *tc = rd_kafka_default_topic_conf_dup(p->rk);
  if (!tc) return NULL;
  rd_kafka_topic_conf_set_opaque(tc, ts);
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(p->rk, topic, tc); /* takes tc, whatever it returns */
  char *name = rkt ? strdup(topic) : NULL;
  if (!name) {
    if (rkt) rd_kafka_topic_destroy(rkt);
    return NULL;
  }
  const char *const label[] = {topic};
  *ts = (topic_slot_t){.name = name,
                       .rkt = rkt,
                       .produced = sl_metric_child(p->m.produced, label),
                       .delivered = sl_metric_child(p->m.delivered, label)};
  p->n_topics++;
  return rkt;
}

sl_kafka_topic_t *sl_kafka_producer_topic(sl_kafka_producer_t *p, const char *topic) {
  return (sl_kafka_topic_t *)topic_handle(p, topic);
}

static int produce(sl_kafka_producer_t *p, rd_kafka_topic_t *rkt, const char *topic, const void *key, size_t key_len,
                   const void *value, size_t value_len, int64_t timestamp_ms, const sl_kafka_header_t *header,
                   void *msg_opaque);

int sl_kafka_producer_send(sl_kafka_producer_t *p, const char *topic, const void *key, size_t key_len,
                           const void *value, size_t value_len, int64_t timestamp_ms,
                           const sl_kafka_header_t *header, void *msg_opaque) {
  return produce(p, topic_handle(p, topic), topic, key, key_len, value, value_len, timestamp_ms, header, msg_opaque);
}

int sl_kafka_producer_send_to(sl_kafka_producer_t *p, sl_kafka_topic_t *topic, const void *key, size_t key_len,
                              const void *value, size_t value_len, int64_t timestamp_ms,
                              const sl_kafka_header_t *header, void *msg_opaque) {
  rd_kafka_topic_t *rkt = (rd_kafka_topic_t *)topic;
  return produce(p, rkt, rd_kafka_topic_name(rkt), key, key_len, value, value_len, timestamp_ms, header,
                 msg_opaque);
}

/* What became of a produce call: counted, and its return value. */
static int outcome(sl_kafka_producer_t *p, rd_kafka_resp_err_t err, rd_kafka_topic_t *rkt, const char *topic,
                   size_t key_len, size_t value_len) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    p->inflight++;
    p->inflight_bytes += value_len + key_len;
    count_topic(p, rkt, topic, false);
    return 0;
  }
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
    sl_metric_inc(p->m.queue_full);
    p->want_room = true;
    return SL_EQUEUEFULL;
  }
  sl_metric_inc(p->m.rejected);
  count_error(p, topic, err);
  sl_log_rl(SL_LOG_ERROR, "kafka", "record of %zu bytes to topic %s refused: %s", value_len, topic,
            rd_kafka_err2str(err));
  return SL_EKAFKA;
}

static int produce(sl_kafka_producer_t *p, rd_kafka_topic_t *rkt, const char *topic, const void *key, size_t key_len,
                   const void *value, size_t value_len, int64_t timestamp_ms, const sl_kafka_header_t *header,
                   void *msg_opaque) {
  const char *hname = header ? header->name : NULL;
  const void *hval = header ? header->value : NULL;
  ssize_t hlen = header ? (ssize_t)header->value_len : 0;
  rd_kafka_resp_err_t err;
  /* Without a header the header list stays empty: librdkafka allocates it
   * only when a header is added. */
#define SL_PRODUCE(target, ...)                                                                          \
  rd_kafka_producev(p->rk, target, RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),                            \
                    RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_KEY(key, key_len),             \
                    RD_KAFKA_V_TIMESTAMP(timestamp_ms), __VA_ARGS__ RD_KAFKA_V_OPAQUE(msg_opaque),        \
                    RD_KAFKA_V_END)
  if (rkt && hname)
    err = SL_PRODUCE(RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_HEADER(hname, hval, hlen), );
  else if (rkt)
    err = SL_PRODUCE(RD_KAFKA_V_RKT(rkt), );
  else if (hname)
    err = SL_PRODUCE(RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_HEADER(hname, hval, hlen), );
  else
    err = SL_PRODUCE(RD_KAFKA_V_TOPIC(topic), );
#undef SL_PRODUCE
  return outcome(p, err, rkt, topic, key_len, value_len);
}

int sl_kafka_producer_send_headers(sl_kafka_producer_t *p, const char *topic, const void *key, size_t key_len,
                                   const void *value, size_t value_len, int64_t timestamp_ms,
                                   const sl_kafka_header_t *headers, size_t n_headers, void *msg_opaque) {
  if (n_headers <= 1)
    return produce(p, topic_handle(p, topic), topic, key, key_len, value, value_len, timestamp_ms,
                   n_headers ? headers : NULL, msg_opaque);
  rd_kafka_headers_t *hs = rd_kafka_headers_new(n_headers);
  for (size_t i = 0; i < n_headers; i++)
    rd_kafka_header_add(hs, headers[i].name, -1, headers[i].value, (ssize_t)headers[i].value_len);
  rd_kafka_topic_t *rkt = topic_handle(p, topic);
  rd_kafka_resp_err_t err;
#define SL_PRODUCE(target)                                                                                         \
  rd_kafka_producev(p->rk, target, RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE((void *)value, value_len), \
                    RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_TIMESTAMP(timestamp_ms < 0 ? 0 : timestamp_ms),            \
                    RD_KAFKA_V_HEADERS(hs), RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END)
  err = rkt ? SL_PRODUCE(RD_KAFKA_V_RKT(rkt)) : SL_PRODUCE(RD_KAFKA_V_TOPIC(topic));
#undef SL_PRODUCE
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_headers_destroy(hs); /* else the message owns them */
  return outcome(p, err, rkt, topic, key_len, value_len);
}

size_t sl_kafka_producer_inflight(const sl_kafka_producer_t *p) { return p->inflight; }

void sl_kafka_producer_purge(sl_kafka_producer_t *p) {
  rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  /* Reports of requests in flight come back through the broker threads;
   * rd_kafka_flush serves them (on this thread) as they arrive. */
  rd_kafka_flush(p->rk, 5000);
  flush_metrics(p);
}

void sl_kafka_producer_free(sl_kafka_producer_t *p, int flush_ms) {
  if (!p) return;
  p->closing = true;
  if (p->rk) {
    flush_metrics(p);
    /* What is still in flight leaves the shared gauge with this producer. */
    sl_gauge_add(p->m.inflight, -(double)p->inflight_published);
  }
  sl_kafka_bridge_detach(p->attach);
  sl_kafka_stats_leave(p->stats);
  p->stats = NULL;
  if (p->main_queue) rd_kafka_queue_destroy(p->main_queue);
  if (p->rk) {
    if (flush_ms > 0) rd_kafka_flush(p->rk, flush_ms);
    for (size_t i = 0; i < TOPIC_CACHE_SLOTS; i++) {
      if (!p->topics[i].name) continue;
      rd_kafka_topic_destroy(p->topics[i].rkt);
      free(p->topics[i].name);
    }
    rd_kafka_destroy(p->rk);
  }
  free(p);
}
