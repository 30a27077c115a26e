/* A librdkafka consumer-group member served on the loop through the Kafka
 * bridge: records in batches, rebalances with each partition's committed
 * offset and metadata, asynchronous commits with metadata, pause/resume,
 * and an asynchronous leave of the group.  Loop thread only.
 *
 * Queues: rd_kafka_poll_set_consumer forwards the main queue (errors, logs,
 * rebalances, commit results) into the consumer queue, so one attached queue
 * and rd_kafka_consumer_poll serve everything in the order librdkafka queued
 * it.  A second queue carries the committed-offset look-ups (Admin API
 * results, served as events), and a third the close.
 *
 * Committed metadata on assign: librdkafka fetches committed offsets itself
 * after an assignment, but keeps their metadata to itself, and
 * rd_kafka_committed would block the loop for a round trip to the group
 * coordinator.  So the rebalance callback does not assign at once: it asks
 * for the group's committed offsets of the new partitions with
 * rd_kafka_ListConsumerGroupOffsets (asynchronous, same OffsetFetch request,
 * metadata included), and when the answer comes reports on_assign with
 * them and assigns the partitions at exactly those offsets, so the first
 * record the owner sees is the one the metadata belongs with.  librdkafka
 * allows the assign call after the callback returned (the event API works
 * that way); the member keeps heart-beating meanwhile.  If the look-up
 * fails the partitions are assigned without metadata (logged): the job then
 * starts them without a watermark, which may emit a window again but never
 * loses records (jobs/watermark.h). */
#include "kafka/kafka_consumer.h"

#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "kafka/kafka_stats.h"

#define BATCH_MAX 1024 /* records per on_records call */
#define OFFSET_LOOKUP_TIMEOUT_MS 30000

/* An assignment waiting for its committed offsets. */
typedef struct pending_assign {
  struct pending_assign *next;
  rd_kafka_topic_partition_list_t *parts; /* owned */
  bool cooperative;
  bool cancelled; /* revoked before the answer came: drop the answer */
} pending_assign_t;

/* A commit waiting for Kafka's answer. */
typedef struct pending_commit {
  struct pending_commit *prev, *next;
  sl_kafka_consumer_t *c;
  void (*on_committed)(void *arg, int err);
  void *arg;
} pending_commit_t;

struct sl_kafka_consumer {
  uv_loop_t *loop;
  sl_kafka_bridge_t *bridge;
  rd_kafka_t *rk;
  char *group_id; /* owned */
  rd_kafka_queue_t *consumer_queue, *lookup_queue, *close_queue;
  sl_kafka_attach_t *consumer_attach, *lookup_attach, *close_attach;
  sl_kafka_consumer_cbs_t cbs;
  /* Re-arms a serve pass that stopped at SL_KAFKA_CONSUMER_SERVE_MAX, and
   * starts the close outside the caller's stack. */
  uv_timer_t yield_timer;
  bool backlog; /* a pass stopped with records left: the timer goes on */
  rd_kafka_message_t *batch[BATCH_MAX];
  sl_kafka_record_t records[BATCH_MAX];
  size_t n_batch;
  pending_assign_t *assigns;
  pending_commit_t *commits;
  size_t assigned;
  double assigned_published; /* this consumer's share of the shared gauge */
  bool paused;
  /* Partitions paused one by one (sl_kafka_consumer_pause_partition), or
   * NULL: they stay paused through a resume of the whole consumer. */
  rd_kafka_topic_partition_list_t *held;
  bool fatal_seen;
  bool closing, close_started, closed;
  void (*on_closed)(void *arg);
  void *on_closed_arg;
  uint64_t consumed_unflushed;
  sl_kafka_stats_client_t *stats; /* NULL with statistics.interval.ms = 0 */
  struct {
    sl_metric_t *consumed, *commits, *commit_failed, *rebalances, *assigned;
  } m;
};

/* Consumer defaults, under [kafka.properties] and the consumer's own. */
/* clang-format off */
static const char *const consumer_defaults[] = {
    "enable.auto.commit", "false",
    "enable.auto.offset.store", "false",
    "auto.offset.reset", "earliest",
    /* A rebalance moves only the partitions that change owner; the others
     * are read on without a pause (and their open windows kept). */
    "partition.assignment.strategy", "cooperative-sticky",
    /* librdkafka stops fetching a partition past queued.min.messages
     * records queued locally, and looks again only about a second later:
     * at the default 100000 a job that drains its queue in 0.1 s waits
     * 0.9 s of every second. */
    "queued.min.messages", "1000000",
    /* Read for sluice_kafka_brokers_up and /readyz (kafka_stats.h). */
    "statistics.interval.ms", "5000",
    NULL,
};
/* clang-format on */

static void register_metrics(sl_kafka_consumer_t *c, sl_metrics_t *r) {
  c->m.consumed =
      sl_metrics_counter(r, "sluice_kafka_consumed_total", "Records consumed from Kafka.");
  c->m.commits =
      sl_metrics_counter(r, "sluice_kafka_commits_total", "Offset commits Kafka stored.");
  c->m.commit_failed =
      sl_metrics_counter(r, "sluice_kafka_commit_failed_total",
                         "Offset commits Kafka failed (the next one covers them).");
  c->m.rebalances =
      sl_metrics_counter(r, "sluice_kafka_rebalances_total",
                         "Consumer-group rebalances (assignments and revocations) seen.");
  c->m.assigned = sl_metrics_gauge(r, "sluice_kafka_assigned_partitions",
                                   "Partitions assigned to this process's consumers.");
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
  (void)rk;
  sl_kafka_consumer_t *c = opaque;
  sl_kafka_stats_report(c->stats, json, len);
  return 0; /* librdkafka frees json */
}

static void flush_metrics(sl_kafka_consumer_t *c) {
  if (c->consumed_unflushed) sl_metric_add(c->m.consumed, c->consumed_unflushed);
  c->consumed_unflushed = 0;
  if ((double)c->assigned != c->assigned_published) {
    sl_gauge_add(c->m.assigned, (double)c->assigned - c->assigned_published);
    c->assigned_published = (double)c->assigned;
  }
}

/* Hands the records gathered so far up, then lets them go.  Called before
 * any other news so that the owner hears everything in librdkafka's
 * order. */
static void flush_batch(sl_kafka_consumer_t *c) {
  size_t n = c->n_batch;
  if (!n) return;
  c->n_batch = 0;
  if (!c->closing) c->cbs.on_records(c->cbs.arg, c->records, n);
  for (size_t i = 0; i < n; i++) rd_kafka_message_destroy(c->batch[i]);
}

static void fatal(sl_kafka_consumer_t *c) {
  char buf[512];
  rd_kafka_fatal_error(c->rk, buf, sizeof buf);
  if (c->fatal_seen) return;
  c->fatal_seen = true;
  sl_log(SL_LOG_ERROR, "kafka", "fatal consumer error (group %s): %s", c->group_id, buf);
  if (c->cbs.on_fatal && !c->closing) c->cbs.on_fatal(c->cbs.arg, buf);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  (void)rk;
  sl_kafka_consumer_t *c = opaque;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    fatal(c);
    return;
  }
  sl_log_rl(err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT
                ? SL_LOG_WARN
                : SL_LOG_ERROR,
            "kafka", "consumer (group %s): %s: %s", c->group_id,
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* The sluice view of a partition list; NULL when n is 0 or on ENOMEM. */
static sl_kafka_partition_t *parts_of(const rd_kafka_topic_partition_list_t *l, bool with_offsets) {
  if (!l->cnt) return NULL;
  sl_kafka_partition_t *p = calloc((size_t)l->cnt, sizeof *p);
  if (!p) return NULL;
  for (int i = 0; i < l->cnt; i++) {
    const rd_kafka_topic_partition_t *t = &l->elems[i];
    p[i] = (sl_kafka_partition_t){
        .topic = t->topic, .partition = t->partition, .offset = SL_KAFKA_OFFSET_NONE};
    if (with_offsets && t->offset >= 0) p[i].offset = t->offset;
    if (with_offsets && t->metadata && t->metadata_size) {
      p[i].metadata = t->metadata;
      p[i].metadata_len = t->metadata_size;
    }
  }
  return p;
}

static void log_error_obj(sl_kafka_consumer_t *c, const char *what, rd_kafka_error_t *e) {
  if (!e) return;
  sl_log(SL_LOG_ERROR, "kafka", "consumer (group %s): %s: %s", c->group_id, what,
         rd_kafka_error_string(e));
  rd_kafka_error_destroy(e);
}

/* Reports the partitions (with their committed offsets and metadata) and
 * assigns them; `l` carries the offsets to start from. */
static void apply_assign(sl_kafka_consumer_t *c, rd_kafka_topic_partition_list_t *l,
                         bool cooperative) {
  if (!c->closing) {
    sl_kafka_partition_t *p = parts_of(l, true);
    if (l->cnt && !p)
      sl_log(SL_LOG_ERROR, "kafka", "consumer (group %s): out of memory reporting an assignment",
             c->group_id);
    else
      c->cbs.on_assign(c->cbs.arg, p, (size_t)l->cnt);
    free(p);
  }
  if (cooperative) {
    log_error_obj(c, "incremental assign", rd_kafka_incremental_assign(c->rk, l));
    c->assigned += (size_t)l->cnt;
  } else {
    rd_kafka_resp_err_t err = rd_kafka_assign(c->rk, l);
    if (err)
      sl_log(SL_LOG_ERROR, "kafka", "consumer (group %s): assign: %s", c->group_id,
             rd_kafka_err2str(err));
    c->assigned = (size_t)l->cnt;
  }
  if (c->paused && l->cnt) rd_kafka_pause_partitions(c->rk, l);
  flush_metrics(c);
}

/* Asks for the committed offsets and metadata of an assignment; the answer
 * comes to lookup_queue (serve_lookup). */
static int start_lookup(sl_kafka_consumer_t *c, const rd_kafka_topic_partition_list_t *parts,
                        bool cooperative) {
  char err[256];
  pending_assign_t *pa = calloc(1, sizeof *pa);
  if (!pa) return SL_ENOMEM;
  rd_kafka_AdminOptions_t *opts =
      rd_kafka_AdminOptions_new(c->rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
  rd_kafka_ListConsumerGroupOffsets_t *req =
      rd_kafka_ListConsumerGroupOffsets_new(c->group_id, parts);
  pa->parts = rd_kafka_topic_partition_list_copy(parts);
  if (!opts || !req || !pa->parts) goto fail;
  rd_kafka_AdminOptions_set_request_timeout(opts, OFFSET_LOOKUP_TIMEOUT_MS, err, sizeof err);
  rd_kafka_AdminOptions_set_opaque(opts, pa);
  pa->cooperative = cooperative;
  rd_kafka_ListConsumerGroupOffsets(c->rk, &req, 1, opts, c->lookup_queue);
  rd_kafka_ListConsumerGroupOffsets_destroy(req);
  rd_kafka_AdminOptions_destroy(opts);
  pa->next = c->assigns;
  c->assigns = pa;
  return 0;
fail:
  if (req) rd_kafka_ListConsumerGroupOffsets_destroy(req);
  if (opts) rd_kafka_AdminOptions_destroy(opts);
  if (pa->parts) rd_kafka_topic_partition_list_destroy(pa->parts);
  free(pa);
  return SL_ENOMEM;
}

static void unlink_assign(sl_kafka_consumer_t *c, pending_assign_t *pa) {
  for (pending_assign_t **pp = &c->assigns; *pp; pp = &(*pp)->next)
    if (*pp == pa) {
      *pp = pa->next;
      break;
    }
  rd_kafka_topic_partition_list_destroy(pa->parts);
  free(pa);
}

/* Fills pa->parts with what the group had committed; false when the
 * look-up failed as a whole. */
static bool take_lookup(sl_kafka_consumer_t *c, pending_assign_t *pa, rd_kafka_event_t *ev) {
  const char *why = NULL;
  const rd_kafka_group_result_t **groups = NULL;
  size_t n_groups = 0;
  if (rd_kafka_event_error(ev))
    why = rd_kafka_event_error_string(ev);
  else if (!(groups = rd_kafka_ListConsumerGroupOffsets_result_groups(
                 rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n_groups)) ||
           n_groups != 1)
    why = "no result for the group";
  else if (rd_kafka_group_result_error(groups[0]))
    why = rd_kafka_error_string(rd_kafka_group_result_error(groups[0]));
  if (why) {
    sl_log(
        SL_LOG_WARN, "kafka",
        "consumer (group %s): committed offsets not fetched (%s): assigning without their metadata",
        c->group_id, why);
    return false;
  }
  const rd_kafka_topic_partition_list_t *got = rd_kafka_group_result_partitions(groups[0]);
  for (int i = 0; got && i < got->cnt; i++) {
    const rd_kafka_topic_partition_t *g = &got->elems[i];
    rd_kafka_topic_partition_t *t =
        rd_kafka_topic_partition_list_find(pa->parts, g->topic, g->partition);
    if (!t) continue;
    if (g->err) {
      sl_log(SL_LOG_WARN, "kafka",
             "consumer (group %s): committed offset of %s[%d] not fetched: %s", c->group_id,
             g->topic, (int)g->partition, rd_kafka_err2str(g->err));
      continue;
    }
    if (g->offset >= 0) t->offset = g->offset;
    if (g->metadata && g->metadata_size) {
      void *meta = malloc(g->metadata_size); /* freed with the list */
      if (meta) {
        memcpy(meta, g->metadata, g->metadata_size);
        free(t->metadata);
        t->metadata = meta;
        t->metadata_size = g->metadata_size;
      }
    }
  }
  return true;
}

/* The lookup queue's serve callback: committed offsets for assignments. */
static size_t serve_lookup(void *arg) {
  sl_kafka_consumer_t *c = arg;
  size_t n = 0;
  for (rd_kafka_event_t *ev; (ev = rd_kafka_queue_poll(c->lookup_queue, 0)); n++) {
    pending_assign_t *pa = rd_kafka_event_opaque(ev);
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT && pa) {
      if (!pa->cancelled && !c->closing) {
        take_lookup(c, pa, ev);
        flush_batch(c);
        apply_assign(c, pa->parts, pa->cooperative);
      }
      unlink_assign(c, pa);
    }
    rd_kafka_event_destroy(ev);
  }
  return n;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  sl_kafka_consumer_t *c = opaque;
  bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  flush_batch(c);
  sl_metric_inc(c->m.rebalances);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    /* Nothing to look up, or nobody to tell: assign at once. */
    if (parts->cnt == 0 || c->closing || start_lookup(c, parts, cooperative) != 0)
      apply_assign(c, parts, cooperative);
    return;
  }
  if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
    sl_log(SL_LOG_ERROR, "kafka", "consumer (group %s): rebalance failed: %s", c->group_id,
           rd_kafka_err2str(err));
  /* An eager revocation ends every assignment, also one still waiting for
   * its offsets; a cooperative one names its partitions, and librdkafka
   * revokes only partitions already assigned. */
  if (!cooperative || err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
    for (pending_assign_t *pa = c->assigns; pa; pa = pa->next) pa->cancelled = true;
  bool lost = rd_kafka_assignment_lost(rk);
  sl_kafka_partition_t *p = parts_of(parts, false);
  if (parts->cnt && !p)
    sl_log(SL_LOG_ERROR, "kafka", "consumer (group %s): out of memory reporting a revocation",
           c->group_id);
  else
    c->cbs.on_revoke(c->cbs.arg, p, (size_t)parts->cnt, lost);
  free(p);
  for (int i = 0; c->held && i < parts->cnt; i++)
    rd_kafka_topic_partition_list_del(c->held, parts->elems[i].topic, parts->elems[i].partition);
  if (cooperative && err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    log_error_obj(c, "incremental unassign", rd_kafka_incremental_unassign(rk, parts));
    c->assigned = c->assigned > (size_t)parts->cnt ? c->assigned - (size_t)parts->cnt : 0;
  } else {
    rd_kafka_assign(rk, NULL);
    c->assigned = 0;
    /* Everything is unassigned, whatever the revocation named: so are the
     * partitions paused one by one (made lazily again when needed). */
    if (c->held) rd_kafka_topic_partition_list_destroy(c->held);
    c->held = NULL;
  }
  flush_metrics(c);
}

static void on_commit_done(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t *offsets, void *opaque) {
  (void)rk;
  pending_commit_t *pc = opaque;
  sl_kafka_consumer_t *c = pc->c;
  for (int i = 0; !err && offsets && i < offsets->cnt; i++)
    if (offsets->elems[i].err) {
      err = offsets->elems[i].err;
      sl_log_rl(SL_LOG_WARN, "kafka", "consumer (group %s): commit of %s[%d] failed: %s",
                c->group_id, offsets->elems[i].topic, (int)offsets->elems[i].partition,
                rd_kafka_err2str(err));
    }
  if (err)
    sl_log_rl(SL_LOG_WARN, "kafka", "consumer (group %s): commit failed: %s", c->group_id,
              rd_kafka_err2str(err));
  sl_metric_inc(err ? c->m.commit_failed : c->m.commits);
  if (pc->prev)
    pc->prev->next = pc->next;
  else
    c->commits = pc->next;
  if (pc->next) pc->next->prev = pc->prev;
  pc->on_committed(pc->arg, err ? SL_EKAFKA : 0);
  free(pc);
}

/* A message that carries an error instead of a record. */
static void message_error(sl_kafka_consumer_t *c, const rd_kafka_message_t *m) {
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;
  if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
    fatal(c);
    return;
  }
  sl_log_rl(SL_LOG_ERROR, "kafka", "consumer (group %s): %s: %s", c->group_id,
            m->rkt ? rd_kafka_topic_name(m->rkt) : "-", rd_kafka_message_errstr(m));
}

static void keep(sl_kafka_consumer_t *c, rd_kafka_message_t *m) {
  rd_kafka_timestamp_type_t tt;
  c->batch[c->n_batch] = m;
  c->records[c->n_batch] = (sl_kafka_record_t){
      .topic = rd_kafka_topic_name(m->rkt),
      .partition = m->partition,
      .offset = m->offset,
      .timestamp_ms = rd_kafka_message_timestamp(m, &tt),
      .key = m->key,
      .key_len = m->key_len,
      .value = m->payload,
      .value_len = m->len,
      .msg = m,
  };
  c->consumed_unflushed++;
  if (++c->n_batch == BATCH_MAX) flush_batch(c);
}

/* One bounded pass over the consumer queue: records, and on the way the
 * callbacks librdkafka queued among them (rebalances, commit results,
 * errors, logs).  Returns the records served; true in *more when it
 * stopped at the bound. */
static size_t consume_pass(sl_kafka_consumer_t *c, bool *more) {
  size_t n = 0;
  rd_kafka_message_t *m;
  *more = false;
  while (!c->close_started && (m = rd_kafka_consumer_poll(c->rk, 0))) {
    n++;
    if (m->err) {
      message_error(c, m);
      rd_kafka_message_destroy(m);
    } else if (c->closing) {
      rd_kafka_message_destroy(m);
    } else {
      keep(c, m);
    }
    if (n == SL_KAFKA_CONSUMER_SERVE_MAX) {
      *more = true;
      break;
    }
  }
  flush_batch(c);
  flush_metrics(c);
  return n;
}

static void on_yield_timer(uv_timer_t *t);

/* A pass that stopped at the bound goes on 1 ms later: a timer re-armed
 * with 0 inside its own callback would run again in the same turn of the
 * loop (libuv before 1.48 runs every timer due at the cached time), and a
 * backlog would then hold off the loop's other timers and I/O until it is
 * drained. */
static void arm(sl_kafka_consumer_t *c, uint64_t delay_ms) {
  uv_timer_start(&c->yield_timer, on_yield_timer, delay_ms, 0);
}

/* The bridge's serve callback. */
static size_t serve(void *arg) {
  sl_kafka_consumer_t *c = arg;
  bool had_backlog = c->backlog, more;
  size_t n = consume_pass(c, &more);
  c->backlog = more;
  if (more && !had_backlog) arm(c, 0);
  /* Records left by a pass that hit the bound were announced when they
   * came: not counted as found by the bridge's safety net. */
  return had_backlog ? 0 : n;
}

static void begin_close(sl_kafka_consumer_t *c);

static void on_yield_timer(uv_timer_t *t) {
  sl_kafka_consumer_t *c = t->data;
  if (c->closing && !c->close_started) {
    begin_close(c);
    return;
  }
  if (!c->backlog || c->close_started) return;
  bool more;
  consume_pass(c, &more);
  c->backlog = more;
  if (more) arm(c, 1);
}

int sl_kafka_consumer_new(uv_loop_t *loop, sl_kafka_bridge_t *bridge, sl_metrics_t *metrics,
                          const sl_kafka_conf_t *k, const char *bootstrap, const char *file,
                          const sl_kv_list_t *properties, const char *group_id,
                          const char *const *topics, size_t n_topics,
                          const sl_kafka_consumer_cbs_t *cbs, sl_kafka_consumer_t **out,
                          sl_diag_t *d) {
  char err[512];
  int r = SL_EKAFKA;
  rd_kafka_topic_partition_list_t *subs = NULL;
  sl_kafka_consumer_t *c = calloc(1, sizeof *c);
  if (!c || !(c->group_id = strdup(group_id))) {
    sl_diag_add(d, file, 0, 0, "kafka: out of memory");
    r = SL_ENOMEM;
    goto fail;
  }
  c->loop = loop;
  c->bridge = bridge;
  c->cbs = *cbs;
  register_metrics(c, metrics);
  rd_kafka_conf_t *conf = sl_kafka_conf_build(k, consumer_defaults, file, d);
  if (!conf) goto fail;
  size_t before = d->n;
  for (size_t i = 0; properties && i < properties->n; i++) {
    const sl_kv_t *p = &properties->items[i];
    if (rd_kafka_conf_set(conf, p->key, p->value, err, sizeof err) != RD_KAFKA_CONF_OK)
      sl_diag_add(d, file, p->line, 1, "properties.\"%s\": %s", p->key, err);
  }
  if (d->n > before) {
    rd_kafka_conf_destroy(conf);
    goto fail;
  }
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
  if (rd_kafka_conf_set(conf, "group.id", group_id, err, sizeof err) != RD_KAFKA_CONF_OK) {
    sl_diag_add(d, file, 0, 0, "kafka: group id \"%s\": %s", group_id, err);
    rd_kafka_conf_destroy(conf);
    goto fail;
  }
  rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
  rd_kafka_conf_set_error_cb(conf, on_error);
  bool stats = sl_kafka_conf_stats_enabled(conf);
  if (stats) rd_kafka_conf_set_stats_cb(conf, on_stats);
  sl_kafka_bridge_prepare_conf(conf);
  rd_kafka_conf_set_opaque(conf, c);
  if (!(c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err))) {
    rd_kafka_conf_destroy(conf);
    sl_diag_add(d, file, 0, 0, "kafka: cannot create the consumer for group %s: %s", group_id, err);
    goto fail;
  }
  /* Statistics are served on the loop, after this returns. */
  if (stats) c->stats = sl_kafka_stats_join(metrics, rd_kafka_name(c->rk), false);
  rd_kafka_poll_set_consumer(c->rk);
  c->consumer_queue = rd_kafka_queue_get_consumer(c->rk);
  c->lookup_queue = rd_kafka_queue_new(c->rk);
  if (!(subs = rd_kafka_topic_partition_list_new((int)n_topics))) goto nomem;
  for (size_t i = 0; i < n_topics; i++)
    rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t se = rd_kafka_subscribe(c->rk, subs);
  rd_kafka_topic_partition_list_destroy(subs);
  if (se) {
    sl_diag_add(d, file, 0, 0, "kafka: group %s cannot subscribe: %s", group_id,
                rd_kafka_err2str(se));
    goto fail;
  }
  if (!(c->consumer_attach = sl_kafka_bridge_attach(bridge, c->rk, c->consumer_queue, serve, c)) ||
      !(c->lookup_attach = sl_kafka_bridge_attach(bridge, NULL, c->lookup_queue, serve_lookup, c)))
    goto nomem;
  uv_timer_init(loop, &c->yield_timer);
  c->yield_timer.data = c;
  sl_log(SL_LOG_INFO, "kafka", "consumer of group %s started (bootstrap %s, %zu topics)", group_id,
         bootstrap, n_topics);
  *out = c;
  return 0;
nomem:
  sl_diag_add(d, file, 0, 0, "kafka: out of memory");
  r = SL_ENOMEM;
fail:
  sl_kafka_consumer_free(c);
  return r;
}

int sl_kafka_consumer_commit(sl_kafka_consumer_t *c, const sl_kafka_partition_t *parts, size_t n,
                             void (*on_committed)(void *arg, int err), void *arg) {
  if (c->closing) return SL_ECANCELED;
  pending_commit_t *pc = calloc(1, sizeof *pc);
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
  if (!pc || !l) goto nomem;
  for (size_t i = 0; i < n; i++) {
    rd_kafka_topic_partition_t *t =
        rd_kafka_topic_partition_list_add(l, parts[i].topic, parts[i].partition);
    t->offset = parts[i].offset;
    if (parts[i].metadata && parts[i].metadata_len) {
      if (!(t->metadata = malloc(parts[i].metadata_len))) goto nomem; /* freed with the list */
      memcpy(t->metadata, parts[i].metadata, parts[i].metadata_len);
      t->metadata_size = parts[i].metadata_len;
    }
  }
  *pc = (pending_commit_t){.c = c, .on_committed = on_committed, .arg = arg};
  /* The answer comes back on the consumer queue (or the close queue it is
   * forwarded to once closing), served on the loop. */
  rd_kafka_resp_err_t err = rd_kafka_commit_queue(c->rk, l, c->consumer_queue, on_commit_done, pc);
  rd_kafka_topic_partition_list_destroy(l);
  if (err) {
    sl_log_rl(SL_LOG_ERROR, "kafka", "consumer (group %s): commit refused: %s", c->group_id,
              rd_kafka_err2str(err));
    sl_metric_inc(c->m.commit_failed);
    free(pc);
    return SL_EKAFKA;
  }
  pc->next = c->commits;
  if (pc->next) pc->next->prev = pc;
  c->commits = pc;
  return 0;
nomem:
  if (l) rd_kafka_topic_partition_list_destroy(l);
  free(pc);
  return SL_ENOMEM;
}

static void pause_resume(sl_kafka_consumer_t *c, bool pause) {
  rd_kafka_topic_partition_list_t *l = NULL;
  c->paused = pause;
  if (rd_kafka_assignment(c->rk, &l) || !l) return;
  for (int i = 0; !pause && c->held && i < c->held->cnt; i++)
    rd_kafka_topic_partition_list_del(l, c->held->elems[i].topic, c->held->elems[i].partition);
  if (l->cnt) {
    rd_kafka_resp_err_t err =
        pause ? rd_kafka_pause_partitions(c->rk, l) : rd_kafka_resume_partitions(c->rk, l);
    if (err)
      sl_log(SL_LOG_ERROR, "kafka", "consumer (group %s): %s: %s", c->group_id,
             pause ? "pause" : "resume", rd_kafka_err2str(err));
  }
  rd_kafka_topic_partition_list_destroy(l);
}

void sl_kafka_consumer_pause(sl_kafka_consumer_t *c) {
  pause_resume(c, true);
}
void sl_kafka_consumer_resume(sl_kafka_consumer_t *c) {
  pause_resume(c, false);
}

int sl_kafka_consumer_pause_partition(sl_kafka_consumer_t *c, const char *topic, int32_t partition, bool pause) {
  if (pause && !c->held && !(c->held = rd_kafka_topic_partition_list_new(4))) return -1;
  bool held = c->held && rd_kafka_topic_partition_list_find(c->held, topic, partition);
  if (pause == held) return 0;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  /* Resumed while the whole consumer is paused, it waits for that resume. */
  if (pause || !c->paused) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    if (!l) return -1;
    rd_kafka_topic_partition_list_add(l, topic, partition);
    err = pause ? rd_kafka_pause_partitions(c->rk, l) : rd_kafka_resume_partitions(c->rk, l);
    if (!err && l->elems[0].err) err = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
  }
  if (err) {
    sl_log(SL_LOG_ERROR, "kafka", "consumer (group %s): %s %s/%" PRId32 ": %s", c->group_id,
           pause ? "pause" : "resume", topic, partition, rd_kafka_err2str(err));
    return -1;
  }
  if (pause)
    rd_kafka_topic_partition_list_add(c->held, topic, partition);
  else
    rd_kafka_topic_partition_list_del(c->held, topic, partition);
  return 0;
}

size_t sl_kafka_consumer_assigned(const sl_kafka_consumer_t *c) {
  return c->assigned;
}

int sl_kafka_consumer_offsets(const sl_kafka_consumer_t *c, const char *topic, int32_t partition, int64_t *low,
                              int64_t *high) {
  int64_t lo = -1, hi = -1;
  if (rd_kafka_get_watermark_offsets(c->rk, topic, partition, &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR || hi < 0)
    return -1;
  *low = lo;
  *high = hi;
  return 0;
}

static void on_timer_closed(uv_handle_t *h) {
  sl_kafka_consumer_t *c = h->data;
  c->on_closed(c->on_closed_arg);
}

/* Once librdkafka has left the group: commits not answered are cancelled,
 * then the timer closes and on_closed follows. */
static void finish_close(sl_kafka_consumer_t *c) {
  if (c->closed) return;
  c->closed = true;
  while (c->commits) {
    pending_commit_t *pc = c->commits;
    c->commits = pc->next;
    pc->on_committed(pc->arg, SL_ECANCELED);
    free(pc);
  }
  c->assigned = 0;
  flush_metrics(c);
  sl_log(SL_LOG_INFO, "kafka", "consumer of group %s closed", c->group_id);
  uv_close((uv_handle_t *)&c->yield_timer, on_timer_closed);
}

/* The close queue's serve callback: the revocation, commit answers and the
 * end of the close.  Records fetched meanwhile are dropped. */
static size_t serve_close(void *arg) {
  sl_kafka_consumer_t *c = arg;
  size_t n = 0;
  if (c->closed) return 0;
  for (rd_kafka_message_t *m; (m = rd_kafka_consume_queue(c->close_queue, 0)); n++) {
    if (m->err) message_error(c, m);
    rd_kafka_message_destroy(m);
  }
  flush_metrics(c);
  if (rd_kafka_consumer_closed(c->rk)) finish_close(c);
  return n;
}

static void begin_close(sl_kafka_consumer_t *c) {
  c->close_started = true;
  c->backlog = false;
  for (pending_assign_t *pa = c->assigns; pa; pa = pa->next) pa->cancelled = true;
  c->close_queue = rd_kafka_queue_new(c->rk);
  if (c->close_queue)
    c->close_attach = sl_kafka_bridge_attach(c->bridge, NULL, c->close_queue, serve_close, c);
  rd_kafka_error_t *e =
      c->close_attach ? rd_kafka_consumer_close_queue(c->rk, c->close_queue) : NULL;
  if (!c->close_attach || e) {
    /* Not left cleanly: the group forgets the member when its session
     * times out. */
    if (e)
      log_error_obj(c, "close", e);
    else
      sl_log(SL_LOG_ERROR, "kafka", "consumer (group %s): out of memory closing", c->group_id);
    finish_close(c);
  }
}

void sl_kafka_consumer_close(sl_kafka_consumer_t *c, void (*on_closed)(void *arg), void *arg) {
  c->closing = true;
  c->on_closed = on_closed;
  c->on_closed_arg = arg;
  /* From the next loop iteration, outside whatever callback called us. */
  arm(c, 0);
}

void sl_kafka_consumer_free(sl_kafka_consumer_t *c) {
  if (!c) return;
  for (size_t i = 0; i < c->n_batch; i++) rd_kafka_message_destroy(c->batch[i]);
  sl_kafka_bridge_detach(c->consumer_attach);
  sl_kafka_bridge_detach(c->lookup_attach);
  sl_kafka_bridge_detach(c->close_attach);
  sl_kafka_stats_leave(c->stats);
  c->stats = NULL;
  while (c->assigns) unlink_assign(c, c->assigns);
  while (c->commits) {
    pending_commit_t *pc = c->commits;
    c->commits = pc->next;
    free(pc);
  }
  if (c->consumer_queue) rd_kafka_queue_destroy(c->consumer_queue);
  if (c->lookup_queue) rd_kafka_queue_destroy(c->lookup_queue);
  if (c->close_queue) rd_kafka_queue_destroy(c->close_queue);
  if (c->rk) {
    sl_gauge_add(c->m.assigned, -c->assigned_published);
    /* The close left the group; a consumer that was never closed (its
     * creation failed) has no group to leave. */
    rd_kafka_destroy_flags(c->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  }
  if (c->held) rd_kafka_topic_partition_list_destroy(c->held);
  free(c->group_id);
  free(c);
}
