/* The jobs stage (jobs_stage.h): consumers, engines, sink batches and
 * commits of every [[job]], on the jobs loop. */
#include "jobs/jobs_stage.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/error.h"
#include "core/log.h"
#include "daemon/stage_thread.h"
#include "ingest/json_encode.h"
#include "jobs/engine.h"
#include "jobs/record_decode.h"
#include "jobs/watermark.h"
#include "kafka/kafka_consumer.h"
#include "kafka/kafka_producer.h"
#include "sinks/sink_host.h"

#define TICK_MS 100
#define PUBLISH_EVERY_MS 250
#define PAUSE_BATCHES 64  /* batches in flight per job past which it stops reading */
#define RESUME_BATCHES 16 /* ... and below which it reads again */
#define NS_PER_MS 1000000

typedef struct jobs_stage jobs_stage_t;
typedef struct job_rt job_rt_t;

/* One (topic, partition) of a job, by its dense id (the engine's
 * partition number). */
typedef struct {
  char *topic; /* owned */
  int32_t partition;
  bool assigned;
  int64_t next_offset;  /* after the last record handed to the engine; -1: none since assignment */
  int64_t committed;    /* the group's offset as last known; -1: none */
  int64_t committed_wm; /* and its checkpoint watermark */
  int64_t commit_off;   /* in the commit in flight; -1: not in it */
  int64_t commit_wm;    /* and its watermark */
  bool drift_paused;    /* fetching paused: too far ahead of the slowest partition */
  uint64_t late;        /* records of it too late for every window (since the job started) */
} part_t;

/* The rows of one emission (or early rows, or late records) on their way
 * to the sinks: one write per sink, all of the same batch. */
typedef struct batch {
  struct batch *prev, *next;
  job_rt_t *rt;
  uint64_t seq;     /* the emission to confirm; 0: nothing to confirm */
  unsigned waiting; /* sinks that have not reported */
  bool canceled;    /* a sink closed before writing it: the emission is not confirmed */
  sl_buf_t text;    /* the rows' JSON, back to back */
  sl_sink_row_t *rows;
  size_t n, cap;
  sl_sink_batch_t b;
  struct leg {
    struct batch *batch;
    sl_sink_t *sink;
  } *legs;
} batch_t;

/* The job's metrics, in the order of job_metric_descs. */
enum {
  M_RECORDS,
  M_FILTERED,
  M_LATE,
  M_LATE_UPDATED,
  M_KEYS_DROPPED,
  M_MAX_KEYS,
  M_WINDOW_KEYS,
  M_ROWS,
  M_EARLY_ROWS,
  M_ROWS_FAILED,
  M_COMMITS,
  M_COMMIT_FAILURES,
  M_PENDING,
  M_WATERMARK,
  M_CHECKPOINT_WM,
  M_OPEN_WINDOWS,
  M_STATE_KEYS,
  M_STATE_BYTES,
  M_ASSIGNED,
  M_PAUSED,
  M_WINDOWS,
  M_REBALANCES,
  M_LAST_COMMIT,
  M_PAUSED_PARTS,
  M_IDLE_PARTS,
  N_METRICS
};

static const char *const job_label[] = {"sluice_job", NULL};
static const char *const bad_labels[] = {"sluice_job", "reason", NULL};

#define COUNTER(n, h) {.type = SL_METRIC_COUNTER, .name = n, .help = h, .labels = job_label}
#define GAUGE(n, h) {.type = SL_METRIC_GAUGE, .name = n, .help = h, .labels = job_label}

static const sl_metric_desc_t job_metric_descs[N_METRICS] = {
    [M_RECORDS] = COUNTER("sluice_job_records_total", "Records the job read from Kafka."),
    [M_FILTERED] = COUNTER("sluice_job_records_filtered_total", "Records the job's `where` rejected."),
    [M_LATE] = COUNTER("sluice_job_records_late_total",
                "Records too late for every window they belong to (not aggregated; to late_sink when set)."),
    [M_LATE_UPDATED] = COUNTER("sluice_job_records_late_updated_total",
                        "Late records that updated a closed window, whose row was emitted again "
                        "(late_policy = \"update\")."),
    [M_MAX_KEYS] = GAUGE("sluice_job_max_keys", "The job's max_keys: group keys a window may hold."),
    [M_WINDOW_KEYS] = GAUGE("sluice_job_window_keys_max",
                       "Group keys of the job's fullest open window (max_keys bounds each window)."),
    [M_KEYS_DROPPED] = COUNTER("sluice_job_keys_dropped_total",
                        "Window updates refused because the window had max_keys group keys."),
    [M_ROWS] = COUNTER("sluice_job_rows_total", "Final result rows the job emitted."),
    [M_EARLY_ROWS] = COUNTER("sluice_job_early_rows_total",
                      "Early rows of open windows (emit = { every = ... })."),
    [M_ROWS_FAILED] = COUNTER("sluice_job_rows_failed_total",
                       "Rows a sink refused for good (logged; not retried), or that could not be built."),
    [M_COMMITS] = COUNTER("sluice_job_commits_total", "Offset commits Kafka confirmed."),
    [M_COMMIT_FAILURES] = COUNTER("sluice_job_commit_failures_total",
                           "Offset commits that failed (the next one covers them)."),
    [M_PENDING] = GAUGE("sluice_job_rows_pending",
                   "Rows handed to the job's sinks and not yet reported by all of them."),
    [M_WATERMARK] = GAUGE("sluice_job_watermark_seconds",
                     "The job's event-time watermark (Unix time; 0 before any)."),
    [M_CHECKPOINT_WM] = GAUGE("sluice_job_checkpoint_watermark_seconds",
                         "The watermark last committed with the offsets (Unix time; 0 before any)."),
    [M_OPEN_WINDOWS] = GAUGE("sluice_job_open_windows", "Windows (or sessions) open."),
    [M_STATE_KEYS] = GAUGE("sluice_job_state_keys", "(window, group key) cells held."),
    [M_STATE_BYTES] = GAUGE("sluice_job_state_bytes", "Bytes of partial aggregates held."),
    [M_ASSIGNED] = GAUGE("sluice_job_assigned_partitions", "Partitions assigned to this instance."),
    [M_WINDOWS] = COUNTER("sluice_job_windows_emitted_total",
                   "Windows (or sessions) closed with rows, each counted once whatever its rows."),
    [M_REBALANCES] = COUNTER("sluice_job_rebalances_total",
                      "Assignments and revocations of the job's consumer-group partitions."),
    [M_LAST_COMMIT] = GAUGE("sluice_job_last_commit_timestamp_seconds",
                       "When the job's committed offsets were last up to date (Unix time): a commit Kafka stored, "
                       "or a commit round with every record read already committed. Its age grows while "
                       "records wait in open windows or for the sinks."),
    [M_PAUSED] = GAUGE("sluice_job_paused",
                  "1 while the job stops reading because its sinks are behind."),
    [M_PAUSED_PARTS] = GAUGE("sluice_job_paused_partitions",
                        "Partitions not read for now: their watermark is max_watermark_drift ahead of the slowest."),
    [M_IDLE_PARTS] = GAUGE("sluice_job_idle_partitions",
                      "Partitions idle: nothing for idle_timeout and nothing left to read."),
};

struct job_rt {
  jobs_stage_t *st;
  const sl_job_conf_t *conf;
  sl_job_t *job;
  char *group_id; /* owned */
  sl_kafka_consumer_t *consumer;
  sl_sink_t **sinks; /* borrowed from the stage */
  size_t n_sinks;
  sl_sink_t *late_sink; /* or NULL */

  part_t *parts;
  size_t n_parts;
  int64_t *ckpt, *ckpt_wm; /* n_parts */
  sl_record_decoder_t dec;
  sl_buf_t scratch; /* a row's JSON and msgpack */

  batch_t *building; /* rows of the running advance or peek */
  batch_t *late;     /* late records of the running delivery */
  batch_t *head;     /* in flight */
  size_t n_batches;
  uint64_t rows_pending;

  uv_timer_t tick;
  uint64_t last_publish, last_commit, last_early;
  bool paused, commit_in_flight, stopping, final_done, consumer_closed, ckpt_warned;
  sl_job_stats_t published;
  sl_metric_t *m[N_METRICS];
  sl_metric_t *bad_decode, *bad_time;
};

struct jobs_stage {
  uv_loop_t *loop;
  const sl_stage_env_t *envp;
  sl_stage_env_t env;
  sl_sink_t **sinks;
  size_t n_sinks;
  sl_kafka_producer_t *producer; /* the sinks', or NULL */
  job_rt_t *jobs;
  size_t n_jobs;
  size_t closing; /* consumers, then sinks, then timers still closing */
  void (*on_closed)(void *arg);
  void *on_closed_arg;
  bool stopping;
  uint64_t wall_offset_ms; /* Unix time - uv_now at start */
  /* Per assigned partition: committed and end offsets and lag, a set that
   * loses a partition's series when it is revoked (metrics.h). */
  sl_metrics_source_t *offsets;
  uint64_t offsets_published; /* clock_ms */
};

static void commit(job_rt_t *rt);

/* The jobs' clock: Unix time in ms (processing-time windows are wall-clock
 * windows), advancing with the loop's monotonic clock from the wall time
 * read at start, so that a clock step does not jump windows or idleness. */
static uint64_t clock_ms(const jobs_stage_t *st) { return uv_now(st->loop) + st->wall_offset_ms; }

/* ---- batches ------------------------------------------------------------------ */

static batch_t *batch_new(job_rt_t *rt) {
  batch_t *b = calloc(1, sizeof *b);
  if (b) b->rt = rt;
  return b;
}

static void batch_free(batch_t *b) {
  if (!b) return;
  for (size_t i = 0; i < b->n; i++) sl_sink_row_clear(&b->rows[i]);
  sl_buf_free(&b->text);
  free(b->rows);
  free(b->legs);
  free(b);
}

/* Appends one row: json and msgpack are copied. */
static int batch_add(batch_t *b, const char *json, size_t json_len, const char *mp, size_t mp_len, uint64_t id,
                     const char *job, int64_t window_start, int64_t window_end) {
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    sl_sink_row_t *r = realloc(b->rows, cap * sizeof *r);
    if (!r) return SL_ENOMEM;
    b->rows = r;
    b->cap = cap;
  }
  size_t at = b->text.len;
  if (sl_buf_append(&b->text, json, json_len) || sl_buf_append(&b->text, mp, mp_len)) {
    b->text.len = at;
    return SL_ENOMEM;
  }
  /* json holds the row's offset in text until the batch is sent. */
  sl_sink_row_t *r = &b->rows[b->n++];
  *r = (sl_sink_row_t){.json = (const char *)(uintptr_t)at, .json_len = json_len, .msgpack_len = mp_len,
                       .job = job, .window_start = window_start, .window_end = window_end};
  sl_sink_row_set_id(r, id);
  return 0;
}

static void publish(job_rt_t *rt);

static void batch_done(batch_t *b) {
  job_rt_t *rt = b->rt;
  if (b->seq && !b->canceled) sl_job_confirm(rt->job, b->seq);
  if (b->prev)
    b->prev->next = b->next;
  else
    rt->head = b->next;
  if (b->next) b->next->prev = b->prev;
  rt->n_batches--;
  rt->rows_pending -= b->n;
  sl_gauge_set(rt->m[M_PENDING], (double)rt->rows_pending);
  batch_free(b);
  if (rt->paused && rt->n_batches < RESUME_BATCHES && !rt->stopping) {
    rt->paused = false;
    sl_kafka_consumer_resume(rt->consumer);
    sl_gauge_set(rt->m[M_PAUSED], 0);
  }
}

static void on_sink_done(void *arg, int status, const char *message) {
  struct leg *leg = arg;
  batch_t *b = leg->batch;
  job_rt_t *rt = b->rt;
  if (status == SL_SINK_CANCELED) {
    b->canceled = true;
  } else if (status != SL_SINK_OK) {
    sl_log_rl(SL_LOG_ERROR, "jobs", "job %s: sink %s did not take %zu rows: %s", rt->conf->name,
              sl_sink_name(leg->sink), b->n, message ? message : "failed");
    sl_metric_add(rt->m[M_ROWS_FAILED], b->n);
  }
  if (--b->waiting == 0) batch_done(b);
}

/* Hands b to `sinks` (n of them); b is freed when the last has reported. */
static void batch_send(job_rt_t *rt, batch_t *b, sl_sink_t **sinks, size_t n) {
  for (size_t i = 0; i < b->n; i++) {
    b->rows[i].json = b->text.data + (uintptr_t)b->rows[i].json;
    b->rows[i].msgpack = b->rows[i].json + b->rows[i].json_len;
  }
  b->b = (sl_sink_batch_t){.rows = b->rows, .n = b->n};
  b->legs = calloc(n ? n : 1, sizeof *b->legs);
  b->next = rt->head;
  if (rt->head) rt->head->prev = b;
  rt->head = b;
  rt->n_batches++;
  rt->rows_pending += b->n;
  b->waiting = 1; /* held until every write is started */
  for (size_t i = 0; i < n; i++) {
    if (!b->legs) {
      sl_log_rl(SL_LOG_ERROR, "jobs", "job %s: out of memory: %zu rows not written", rt->conf->name, b->n);
      sl_metric_add(rt->m[M_ROWS_FAILED], b->n);
      break;
    }
    b->legs[i] = (struct leg){b, sinks[i]};
    b->waiting++;
    int r = sl_sink_write(sinks[i], &b->b, on_sink_done, &b->legs[i]);
    if (r) {
      b->waiting--;
      if (r == SL_ECANCELED) {
        b->canceled = true;
      } else {
        sl_log_rl(SL_LOG_ERROR, "jobs", "job %s: sink %s refused %zu rows: %s", rt->conf->name,
                  sl_sink_name(sinks[i]), b->n, sl_strerror(r));
        sl_metric_add(rt->m[M_ROWS_FAILED], b->n);
      }
    }
  }
  sl_gauge_set(rt->m[M_PENDING], (double)rt->rows_pending);
  if (--b->waiting == 0) batch_done(b);
  if (!rt->paused && rt->n_batches >= PAUSE_BATCHES) {
    rt->paused = true;
    sl_kafka_consumer_pause(rt->consumer);
    sl_gauge_set(rt->m[M_PAUSED], 1);
    sl_log_rl(SL_LOG_WARN, "jobs", "job %s: %zu batches wait for the sinks: reading paused", rt->conf->name,
              rt->n_batches);
  }
}

static void on_row(const sl_job_row_t *row, void *arg) {
  job_rt_t *rt = arg;
  sl_buf_t *scratch = &rt->scratch;
  sl_buf_reset(scratch);
  if (!rt->building && !(rt->building = batch_new(rt))) goto fail;
  if (sl_job_row_to_json(row, scratch)) goto fail;
  size_t json_len = scratch->len;
  if (sl_job_row_to_msgpack(row, scratch)) goto fail;
  size_t mp_len = scratch->len - json_len;
  /* The percentiles' sketches follow the map (sink.h, sl_sink_row_set_shape). */
  if (sl_job_row_sketches_to_msgpack(row, scratch) ||
      batch_add(rt->building, scratch->data, json_len, scratch->data + json_len, scratch->len - json_len, row->id,
                rt->conf->name, row->window_start, row->window_end))
    goto fail;
  sl_sink_row_set_shape(&rt->building->rows[rt->building->n - 1], mp_len, row->n_keys,
                        row->early ? SLUICE_ROW_EARLY : SLUICE_ROW_FINAL);
  return;
fail:
  sl_log_rl(SL_LOG_ERROR, "jobs", "job %s: cannot build a row: out of memory", rt->conf->name);
  sl_metric_inc(rt->m[M_ROWS_FAILED]);
}

/* Sends the rows of the running advance (seq: its emission) or peek. */
static void send_built(job_rt_t *rt, uint64_t seq) {
  batch_t *b = rt->building;
  rt->building = NULL;
  if (!b && !seq) return;
  if (!b) b = batch_new(rt); /* an emission without rows still needs its confirmation */
  if (!b) {
    sl_log_rl(SL_LOG_ERROR, "jobs", "job %s: out of memory", rt->conf->name);
    return;
  }
  b->seq = seq;
  batch_send(rt, b, rt->sinks, rt->n_sinks);
}

/* The rows of a window come one after another (sl_job_advance): a window
 * is counted at its first row. */
typedef struct {
  job_rt_t *rt;
  bool any;
  int64_t start, end;
} window_count_t;

static void on_final_row(const sl_job_row_t *row, void *arg) {
  window_count_t *w = arg;
  if (!w->any || row->window_start != w->start || row->window_end != w->end) {
    *w = (window_count_t){w->rt, true, row->window_start, row->window_end};
    sl_metric_inc(w->rt->m[M_WINDOWS]);
  }
  on_row(row, w->rt);
}

static void advance(job_rt_t *rt, uint64_t now) {
  window_count_t w = {.rt = rt};
  send_built(rt, sl_job_advance(rt->job, (int64_t)now, on_final_row, &w));
}

/* ---- records ------------------------------------------------------------------ */

static int part_id(job_rt_t *rt, const char *topic, int32_t partition) {
  for (size_t i = 0; i < rt->n_parts; i++)
    if (rt->parts[i].partition == partition && !strcmp(rt->parts[i].topic, topic)) return (int)i;
  if (rt->n_parts >= SL_WATERMARK_MAX_PARTITIONS) return -1;
  part_t *p = realloc(rt->parts, (rt->n_parts + 1) * sizeof *p);
  if (!p) return -1;
  rt->parts = p;
  int64_t *c = realloc(rt->ckpt, (rt->n_parts + 1) * sizeof *c);
  if (!c) return -1;
  rt->ckpt = c;
  if (!(c = realloc(rt->ckpt_wm, (rt->n_parts + 1) * sizeof *c))) return -1;
  rt->ckpt_wm = c;
  char *t = strdup(topic);
  if (!t) return -1;
  rt->parts[rt->n_parts] = (part_t){.topic = t, .partition = partition, .next_offset = -1, .committed = -1,
                                    .committed_wm = SL_WATERMARK_NONE, .commit_off = -1};
  return (int)rt->n_parts++;
}

/* A late record to the late sink: its JSON, id = hash of where it was read. */
static void late_add(job_rt_t *rt, const sl_kafka_record_t *rec, const msgpack_object *obj) {
  if (!rt->late && !(rt->late = batch_new(rt))) return;
  /* The record as JSON and as msgpack: one of them is the Kafka value,
   * the other the decoder's work (JSON packed) or made here. */
  const char *json = rec->value, *mp = rt->dec.packed.data;
  size_t len = rec->value_len, mp_len = rt->dec.packed.len;
  sl_buf_t *scratch = &rt->scratch;
  if (rt->conf->format == SL_RECORD_MSGPACK) {
    sl_buf_reset(scratch);
    if (sl_json_encode(scratch, obj)) return;
    json = scratch->data;
    len = scratch->len;
    mp = rec->value;
    mp_len = rec->value_len;
  }
  char where[320]; /* a Kafka topic name is at most 249 bytes */
  int n = snprintf(where, sizeof where, "%s/%" PRId32 "/%" PRId64, rec->topic, rec->partition, rec->offset);
  uint64_t id = XXH3_64bits(where, n < (int)sizeof where ? (size_t)n : sizeof where - 1);
  int64_t start, end;
  sl_job_late_window(rt->job, &start, &end);
  if (!batch_add(rt->late, json, len, mp, mp_len, id, rt->conf->name, start, end))
    sl_sink_row_set_shape(&rt->late->rows[rt->late->n - 1], mp_len, 0, SLUICE_ROW_LATE);
}

static void on_records(void *arg, const sl_kafka_record_t *recs, size_t n) {
  job_rt_t *rt = arg;
  uint64_t now = clock_ms(rt->st);
  int pid = -1;
  const sl_kafka_record_t *last = NULL;
  for (size_t i = 0; i < n; i++) {
    const sl_kafka_record_t *rec = &recs[i];
    if (!last || rec->partition != last->partition || strcmp(rec->topic, last->topic))
      pid = part_id(rt, rec->topic, rec->partition);
    last = rec;
    if (pid < 0) {
      sl_log_rl(SL_LOG_ERROR, "jobs", "job %s: cannot track partition %s/%" PRId32 " (out of memory or over %d)",
                rt->conf->name, rec->topic, rec->partition, SL_WATERMARK_MAX_PARTITIONS);
      continue;
    }
    rt->parts[pid].next_offset = rec->offset + 1;
    const msgpack_object *obj;
    const char *why;
    if (sl_record_decode(&rt->dec, (sl_record_format_t)rt->conf->format, rec->value, rec->value_len, &obj, &why)) {
      sl_metric_inc(rt->bad_decode);
      sl_log_rl(SL_LOG_WARN, "jobs", "job %s: record %s/%" PRId32 "@%" PRId64 " skipped: %s (format = \"%s\")",
                rt->conf->name, rec->topic, rec->partition, rec->offset, why,
                rt->conf->format == SL_RECORD_MSGPACK ? "msgpack" : "json");
      continue;
    }
    int64_t ts = rec->timestamp_ms >= 0 ? rec->timestamp_ms : (int64_t)now;
    int r = sl_job_feed(rt->job, pid, rec->offset, obj, ts, (int64_t)now);
    if (r == SL_JOB_LATE) rt->parts[pid].late++;
    if (r == SL_JOB_LATE && rt->late_sink)
      late_add(rt, rec, obj);
    else if (r < 0)
      sl_log_rl(SL_LOG_ERROR, "jobs", "job %s: record %s/%" PRId32 "@%" PRId64 " not aggregated: %s", rt->conf->name,
                rec->topic, rec->partition, rec->offset, sl_strerror(r));
  }
  if (rt->late) {
    batch_t *b = rt->late;
    rt->late = NULL;
    if (b->n)
      batch_send(rt, b, &rt->late_sink, 1);
    else
      batch_free(b);
  }
  advance(rt, now);
}

/* ---- assignment and commits ------------------------------------------------------ */

static void publish_assigned(job_rt_t *rt) {
  size_t n = 0;
  for (size_t i = 0; i < rt->n_parts; i++) n += rt->parts[i].assigned;
  sl_gauge_set(rt->m[M_ASSIGNED], (double)n);
}

static void on_assign(void *arg, const sl_kafka_partition_t *parts, size_t n) {
  job_rt_t *rt = arg;
  uint64_t now = clock_ms(rt->st);
  sl_metric_inc(rt->m[M_REBALANCES]);
  for (size_t i = 0; i < n; i++) {
    int pid = part_id(rt, parts[i].topic, parts[i].partition);
    if (pid < 0) {
      sl_log(SL_LOG_ERROR, "jobs", "job %s: cannot track partition %s/%" PRId32, rt->conf->name, parts[i].topic,
             parts[i].partition);
      continue;
    }
    const char *why;
    int64_t wm = sl_watermark_assigned(parts[i].metadata, parts[i].metadata_len, parts[i].offset,
                                       rt->conf->time == 1, &why);
    if (wm == SL_WATERMARK_FROM_FIRST) {
      sl_log(SL_LOG_WARN, "jobs",
             "job %s: partition %s/%" PRId32 ": committed offset %" PRId64 " has %s: windows before the first "
             "record's (its time - allowed_lateness) are taken as emitted",
             rt->conf->name, parts[i].topic, parts[i].partition, parts[i].offset,
             why ? why : "no checkpoint watermark");
    } else if (why) {
      sl_log(SL_LOG_WARN, "jobs", "job %s: partition %s/%" PRId32 ": commit metadata not understood (%s)",
             rt->conf->name, parts[i].topic, parts[i].partition, why);
    }
    part_t *p = &rt->parts[pid];
    p->assigned = true;
    p->drift_paused = false;
    p->next_offset = -1;
    p->committed = parts[i].offset >= 0 ? parts[i].offset : -1;
    p->committed_wm = wm == SL_WATERMARK_FROM_FIRST ? SL_WATERMARK_NONE : wm;
    p->commit_off = -1;
    int r = sl_job_assign(rt->job, pid, wm, (int64_t)now);
    if (r) sl_log(SL_LOG_ERROR, "jobs", "job %s: cannot assign partition %d: %s", rt->conf->name, pid, sl_strerror(r));
    if (p->committed < 0)
      sl_log(SL_LOG_INFO, "jobs", "job %s: partition %s/%" PRId32 " assigned; no committed offset (auto.offset.reset)",
             rt->conf->name, parts[i].topic, parts[i].partition);
    else
      sl_log(SL_LOG_INFO, "jobs", "job %s: partition %s/%" PRId32 " assigned at committed offset %" PRId64 "%s",
             rt->conf->name, parts[i].topic, parts[i].partition, p->committed,
             wm == SL_WATERMARK_FROM_FIRST ? "" : ", windows up to its checkpoint watermark emitted");
  }
  publish_assigned(rt);
}

static void on_revoke(void *arg, const sl_kafka_partition_t *parts, size_t n, bool lost) {
  job_rt_t *rt = arg;
  sl_metric_inc(rt->m[M_REBALANCES]);
  if (!lost) commit(rt);
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; k < rt->n_parts; k++) {
      part_t *p = &rt->parts[k];
      if (p->partition != parts[i].partition || strcmp(p->topic, parts[i].topic)) continue;
      sl_job_revoke(rt->job, (int)k);
      p->assigned = false;
      p->next_offset = -1;
    }
  }
  sl_log(SL_LOG_INFO, "jobs", "job %s: %zu partitions %s", rt->conf->name, n, lost ? "lost" : "revoked");
  publish_assigned(rt);
}

static void on_fatal(void *arg, const char *reason) {
  job_rt_t *rt = arg;
  char what[600];
  snprintf(what, sizeof what, "job %s: %s", rt->conf->name, reason);
  rt->st->env.host.on_fatal(rt->st->env.host.arg, "jobs", what);
}

static void commit_current(job_rt_t *rt) {
  sl_gauge_set(rt->m[M_LAST_COMMIT], (double)clock_ms(rt->st) / 1e3);
}

/* Every record read from an assigned partition is committed. */
static bool all_committed(const job_rt_t *rt) {
  for (size_t i = 0; i < rt->n_parts; i++)
    if (rt->parts[i].assigned && rt->parts[i].next_offset > rt->parts[i].committed) return false;
  return true;
}

static void on_committed(void *arg, int err) {
  job_rt_t *rt = arg;
  rt->commit_in_flight = false;
  if (!err) sl_metric_inc(rt->m[M_COMMITS]);
  if (!err) commit_current(rt);
  for (size_t i = 0; i < rt->n_parts; i++) {
    part_t *p = &rt->parts[i];
    if (p->commit_off < 0) continue;
    if (!err) {
      p->committed = p->commit_off;
      p->committed_wm = p->commit_wm;
    }
    p->commit_off = -1;
  }
  if (err && err != SL_ECANCELED) sl_metric_inc(rt->m[M_COMMIT_FAILURES]);
  if (!err) {
    int64_t low = INT64_MAX; /* the lowest over the assigned partitions */
    for (size_t i = 0; i < rt->n_parts; i++)
      if (rt->parts[i].assigned && rt->parts[i].committed_wm < low) low = rt->parts[i].committed_wm;
    if (low != INT64_MAX && low != SL_WATERMARK_NONE) sl_gauge_set(rt->m[M_CHECKPOINT_WM], (double)low / 1e3);
  }
  if (rt->stopping) rt->final_done = true;
}

/* Commits what sl_job_checkpoint allows for every assigned partition that
 * moved since its last commit. */
static void commit(job_rt_t *rt) {
  if (rt->commit_in_flight || !rt->consumer || rt->consumer_closed) return;
  if (sl_job_checkpoint(rt->job, rt->ckpt_wm, rt->ckpt, rt->n_parts)) {
    if (!rt->ckpt_warned)
      sl_log(SL_LOG_ERROR, "jobs", "job %s: out of memory while tracking offsets: commits stopped (a restart "
             "replays from the last commit)", rt->conf->name);
    rt->ckpt_warned = true;
    if (rt->stopping) rt->final_done = true;
    return;
  }
  sl_kafka_partition_t *list = calloc(rt->n_parts ? rt->n_parts : 1, sizeof *list);
  char(*meta)[SL_WATERMARK_META_MAX] = calloc(rt->n_parts ? rt->n_parts : 1, sizeof *meta);
  size_t n = 0;
  for (size_t i = 0; list && meta && i < rt->n_parts; i++) {
    part_t *p = &rt->parts[i];
    if (!p->assigned) continue;
    int64_t off = rt->ckpt[i] >= 0 ? rt->ckpt[i] : p->next_offset;
    int64_t pwm = rt->ckpt_wm[i];
    if (off < 0 || (off == p->committed && pwm == p->committed_wm)) continue;
    if (off < p->committed) off = p->committed; /* never behind the group's offset */
    p->commit_off = off;
    p->commit_wm = pwm;
    sl_watermark_meta_format(pwm, meta[i], sizeof meta[i]);
    list[n++] = (sl_kafka_partition_t){.topic = p->topic,
                                       .partition = p->partition,
                                       .offset = off,
                                       .metadata = meta[i],
                                       .metadata_len = strlen(meta[i])};
  }
  int r = n ? sl_kafka_consumer_commit(rt->consumer, list, n, on_committed, rt) : 0;
  free(list);
  free(meta);
  if (n && !r) {
    rt->commit_in_flight = true;
    return;
  }
  for (size_t i = 0; i < rt->n_parts; i++) rt->parts[i].commit_off = -1;
  if (r) sl_log_rl(SL_LOG_WARN, "jobs", "job %s: cannot commit: %s", rt->conf->name, sl_strerror(r));
  if (!n && !r && all_committed(rt)) commit_current(rt); /* nothing new: the commit is still current */
  if (rt->stopping) rt->final_done = true;
}

/* ---- the tick -------------------------------------------------------------------- */

static void publish(job_rt_t *rt) {
  sl_job_stats_t s;
  sl_job_stats(rt->job, &s);
  sl_job_stats_t *o = &rt->published;
  sl_metric_add(rt->m[M_RECORDS], s.records_in - o->records_in);
  sl_metric_add(rt->m[M_FILTERED], s.filtered - o->filtered);
  sl_metric_add(rt->m[M_LATE], s.late - o->late);
  sl_metric_add(rt->m[M_LATE_UPDATED], s.late_updates - o->late_updates);
  sl_metric_add(rt->m[M_KEYS_DROPPED], s.keys_dropped - o->keys_dropped);
  if (s.keys_dropped > o->keys_dropped)
    sl_log_rl(SL_LOG_WARN, "jobs", "job %s: %" PRIu64 " window updates dropped: a window has max_keys (%" PRId64
              ") group keys", rt->conf->name, s.keys_dropped - o->keys_dropped, rt->conf->max_keys);
  if (s.bad_time > o->bad_time)
    sl_log_rl(SL_LOG_WARN, "jobs", "job %s: %" PRIu64 " records without a readable time field skipped",
              rt->conf->name, s.bad_time - o->bad_time);
  sl_metric_add(rt->m[M_ROWS], s.rows_emitted - o->rows_emitted);
  sl_metric_add(rt->m[M_EARLY_ROWS], s.early_rows - o->early_rows);
  sl_metric_add(rt->m[M_ROWS_FAILED], s.rows_failed - o->rows_failed);
  sl_metric_add(rt->bad_time, s.bad_time - o->bad_time);
  if (s.watermark != SL_WATERMARK_NONE) sl_gauge_set(rt->m[M_WATERMARK], (double)s.watermark / 1e3);
  sl_gauge_set(rt->m[M_OPEN_WINDOWS], (double)s.open_windows);
  sl_gauge_set(rt->m[M_STATE_KEYS], (double)s.state_keys);
  sl_gauge_set(rt->m[M_WINDOW_KEYS], (double)s.window_keys_max);
  sl_gauge_set(rt->m[M_STATE_BYTES], (double)s.state_bytes);
  *o = s;
}

enum { F_COMMITTED, F_END, F_LAG, F_LATE, N_PART_FAMILIES };

/* Adds each assigned partition's late records, committed and end offsets
 * and lag (the records after the last one read, or after the committed
 * offset before any is read) to set, as far as they are known. */
static void offsets_add(const job_rt_t *rt, sl_metrics_set_t *set, const int fam[N_PART_FAMILIES]) {
  for (size_t i = 0; i < rt->n_parts; i++) {
    const part_t *p = &rt->parts[i];
    if (!p->assigned) continue;
    char partition[16];
    snprintf(partition, sizeof partition, "%" PRId32, p->partition);
    sl_metric_label_t l[] = {{"sluice_job", rt->conf->name}, {"topic", p->topic}, {"partition", partition}};
    sl_metrics_set_value(set, fam[F_LATE], l, 3, (double)p->late);
    if (p->committed >= 0) sl_metrics_set_value(set, fam[F_COMMITTED], l, 3, (double)p->committed);
    int64_t low, high;
    if (sl_kafka_consumer_offsets(rt->consumer, p->topic, p->partition, &low, &high)) continue;
    int64_t at = p->next_offset >= 0 ? p->next_offset : p->committed >= 0 ? p->committed : low;
    sl_metrics_set_value(set, fam[F_END], l, 3, (double)high);
    sl_metrics_set_value(set, fam[F_LAG], l, 3, high > at ? (double)(high - at) : 0);
  }
}

/* Every job's partition offsets, as one set in place of the last. */
static void publish_offsets(jobs_stage_t *st) {
  sl_metrics_set_t *set = st->offsets ? sl_metrics_set_new() : NULL;
  if (!set) return;
  int fam[N_PART_FAMILIES] = {
      [F_COMMITTED] = sl_metrics_set_family(set, SL_METRIC_GAUGE, "sluice_job_committed_offset",
                            "The consumer group's committed offset of an assigned partition (the next record a "
                            "restart reads)."),
      [F_END] = sl_metrics_set_family(set, SL_METRIC_GAUGE, "sluice_job_end_offset",
                            "An assigned partition's end (high-water) offset, as the latest fetch told."),
      [F_LAG] = sl_metrics_set_family(set, SL_METRIC_GAUGE, "sluice_job_consumer_lag",
                            "Records of an assigned partition the job has not read yet (end offset minus the "
                            "position)."),
      [F_LATE] = sl_metrics_set_family(set, SL_METRIC_COUNTER, "sluice_job_partition_records_late_total",
                            "Records of an assigned partition too late for every window they belong to, "
                            "since the job started (what late_policy does with them: the job's)."),
  };
  bool ok = true;
  for (int f = 0; f < N_PART_FAMILIES; f++) ok &= fam[f] >= 0;
  for (size_t i = 0; ok && i < st->n_jobs; i++)
    if (st->jobs[i].consumer && !st->jobs[i].consumer_closed) offsets_add(&st->jobs[i], set, fam);
  sl_metrics_source_publish(st->offsets, set, NULL, 0);
}

/* A partition with records still to read is not idle, however long since
 * its last record: it is behind (a slow fetch, a backlog), and its records
 * would be late if the others moved the watermark past them.  Nor is one
 * whose end offset is not known yet (no fetch answered since it was
 * assigned): it may hold a backlog. */
static void touch_lagging(job_rt_t *rt, uint64_t now) {
  for (size_t i = 0; i < rt->n_parts; i++) {
    part_t *p = &rt->parts[i];
    if (!p->assigned) continue;
    int64_t low, high;
    bool known = !sl_kafka_consumer_offsets(rt->consumer, p->topic, p->partition, &low, &high);
    int64_t at = known ? (p->next_offset >= 0 ? p->next_offset : p->committed >= 0 ? p->committed : low) : 0;
    if (!known || high > at) sl_job_touch_partition(rt->job, (int)i, (int64_t)now);
  }
}

/* max_watermark_drift: a partition whose watermark runs that far ahead of
 * the slowest active one is not fetched until the others have caught up to
 * half of it, so its windows do not pile up in memory meanwhile.  Paused,
 * it keeps records unread, so it is never idle and holds its place. */
static void limit_drift(job_rt_t *rt, uint64_t now) {
  int64_t max = rt->conf->max_watermark_drift_ns / NS_PER_MS;
  size_t paused = 0;
  for (size_t i = 0; i < rt->n_parts; i++) {
    part_t *p = &rt->parts[i];
    if (!p->assigned) continue;
    int64_t d = max ? sl_job_drift(rt->job, (int)i, (int64_t)now) : 0;
    bool pause = p->drift_paused ? d > max / 2 : d > max;
    if (pause != p->drift_paused &&
        !sl_kafka_consumer_pause_partition(rt->consumer, p->topic, p->partition, pause)) {
      p->drift_paused = pause;
      sl_log(SL_LOG_INFO, "jobs", "job %s: partition %s/%" PRId32 " %s: %" PRId64 " ms ahead of the slowest",
             rt->conf->name, p->topic, p->partition, pause ? "paused" : "resumed", d);
    }
    paused += p->drift_paused;
  }
  sl_gauge_set(rt->m[M_PAUSED_PARTS], (double)paused);
  sl_gauge_set(rt->m[M_IDLE_PARTS], (double)sl_job_idle_partitions(rt->job, (int64_t)now));
}

static void on_tick(uv_timer_t *t) {
  job_rt_t *rt = t->data;
  uint64_t now = clock_ms(rt->st);
  if (rt->paused)
    sl_job_touch(rt->job, (int64_t)now);
  else if (rt->consumer)
    touch_lagging(rt, now);
  if (rt->consumer && !rt->consumer_closed && !rt->stopping) limit_drift(rt, now);
  if (!rt->stopping) advance(rt, now);
  uint64_t every = (uint64_t)(rt->conf->emit_every_ns / NS_PER_MS);
  if (every && !rt->stopping && now - rt->last_early >= every) {
    rt->last_early = now;
    if (sl_job_peek(rt->job, on_row, rt)) sl_log_rl(SL_LOG_ERROR, "jobs", "job %s: early rows: out of memory",
                                                   rt->conf->name);
    send_built(rt, 0);
  }
  if (rt->stopping) {
    if (!rt->final_done && !rt->n_batches && !rt->commit_in_flight) {
      commit(rt);
      if (!rt->commit_in_flight) rt->final_done = true;
    }
  } else if (now - rt->last_commit >= (uint64_t)(rt->conf->commit_interval_ns / NS_PER_MS)) {
    rt->last_commit = now;
    commit(rt);
  }
  if (now - rt->last_publish >= PUBLISH_EVERY_MS || rt->stopping) {
    rt->last_publish = now;
    publish(rt);
  }
  jobs_stage_t *st = rt->st;
  if (rt == st->jobs && now - st->offsets_published >= PUBLISH_EVERY_MS) { /* the first job's tick, for all */
    st->offsets_published = now;
    publish_offsets(st);
  }
}

/* ---- the stage -------------------------------------------------------------------- */

static sl_sink_t *sink_by_name(jobs_stage_t *st, const char *name) {
  for (size_t i = 0; i < st->n_sinks; i++)
    if (!strcmp(sl_sink_name(st->sinks[i]), name)) return st->sinks[i];
  return NULL;
}

static void on_sink_delivery(void *arg, void *msg_opaque, int err) {
  (void)arg;
  sl_sink_kafka_delivered(msg_opaque, err);
}

static void on_producer_fatal(void *arg, const char *reason) {
  jobs_stage_t *st = arg;
  char what[600];
  snprintf(what, sizeof what, "the sinks' Kafka producer: %s", reason);
  st->env.host.on_fatal(st->env.host.arg, "jobs", what);
}

static int make_sinks(jobs_stage_t *st) {
  const sl_config_t *cfg = st->env.cfg;
  const sl_toml_value_t *arr = sl_toml_get(cfg->doc, "sink");
  size_t n = arr && arr->type == SL_TOML_ARRAY ? arr->u.arr.len : 0;
  if (!n) return 0;
  if (!(st->sinks = calloc(n, sizeof *st->sinks))) return SL_ENOMEM;
  /* One producer for the sinks' dead letters and the plugins' Kafka
   * records. */
  sl_diag_t pd = {0};
  sl_kafka_producer_cbs_t cbs = {.on_delivery = on_sink_delivery, .on_fatal = on_producer_fatal, .arg = st};
  int r = sl_kafka_producer_new(st->env.bridge, st->env.metrics, &cfg->kafka, st->env.bootstrap, cfg->file, &cbs,
                                &st->producer, &pd);
  for (size_t k = 0; k < pd.n; k++) sl_log(SL_LOG_ERROR, "jobs", "sinks' producer: %s", pd.lines[k]);
  sl_diag_free(&pd);
  if (r) return r;
  sl_sink_env_t env = {.loop = st->loop, .metrics = st->env.metrics, .producer = st->producer};
  for (size_t i = 0; i < n; i++) {
    char path[32];
    snprintf(path, sizeof path, "sink[%zu]", i);
    sl_diag_t d = {0};
    r = sl_sink_new(arr->u.arr.items[i], cfg->file, path, &env, &st->sinks[i], &d);
    for (size_t k = 0; k < d.n; k++) sl_log(SL_LOG_ERROR, "jobs", "%s", d.lines[k]);
    sl_diag_free(&d);
    if (r) return r;
    st->n_sinks++;
  }
  return 0;
}

static int job_start(jobs_stage_t *st, job_rt_t *rt) {
  const sl_job_conf_t *c = rt->conf;
  sl_metrics_t *m = st->env.metrics;
  const char *values[] = {c->name, NULL};
  for (int i = 0; i < N_METRICS; i++) rt->m[i] = sl_metric_child(sl_metrics_family(m, &job_metric_descs[i]), values);
  sl_gauge_set(rt->m[M_MAX_KEYS], (double)c->max_keys);
  sl_metric_family_t *bad = sl_metrics_family(
      m, &(sl_metric_desc_t){.type = SL_METRIC_COUNTER,
                             .name = "sluice_job_records_bad_total",
                             .help = "Records the job could not read: reason=decode (not the job's format), time "
                                     "(no readable time_field).",
                             .labels = bad_labels});
  rt->bad_decode = sl_metric_child(bad, (const char *const[]){c->name, "decode"});
  rt->bad_time = sl_metric_child(bad, (const char *const[]){c->name, "time"});
  sl_record_decoder_init(&rt->dec);

  sl_job_error_t err;
  int r = sl_job_new(c, &rt->job, &err);
  if (r) {
    sl_log(SL_LOG_ERROR, "jobs", "job %s: %s", c->name, r == SL_ECONFIG ? err.msg : sl_strerror(r));
    return r;
  }
  if (!(rt->sinks = calloc(c->sinks.n ? c->sinks.n : 1, sizeof *rt->sinks))) return SL_ENOMEM;
  for (size_t i = 0; i < c->sinks.n; i++)
    if (!(rt->sinks[rt->n_sinks++] = sink_by_name(st, c->sinks.items[i]))) {
      sl_log(SL_LOG_ERROR, "jobs", "job %s: no sink named %s", c->name, c->sinks.items[i]);
      return SL_ECONFIG;
    }
  if (c->late_sink && !(rt->late_sink = sink_by_name(st, c->late_sink))) {
    sl_log(SL_LOG_ERROR, "jobs", "job %s: no sink named %s", c->name, c->late_sink);
    return SL_ECONFIG;
  }
  size_t len = strlen(c->name) + 8;
  if (!(rt->group_id = malloc(len))) return SL_ENOMEM;
  snprintf(rt->group_id, len, "sluice-%s", c->name);
  if (c->group_id) {
    free(rt->group_id);
    if (!(rt->group_id = strdup(c->group_id))) return SL_ENOMEM;
  }
  sl_kafka_consumer_cbs_t cbs = {
      .on_records = on_records, .on_assign = on_assign, .on_revoke = on_revoke, .on_fatal = on_fatal, .arg = rt};
  /* Static membership: group.instance.id under the job's own properties. */
  char host[256] = "";
  const char *instance = c->instance_id;
  if (!instance && !gethostname(host, sizeof host - 1)) instance = host;
  sl_kv_t *props = calloc(c->properties.n + 1, sizeof *props);
  if (!props) return SL_ENOMEM;
  size_t np = 0;
  if (instance && *instance) props[np++] = (sl_kv_t){.key = "group.instance.id", .value = (char *)instance};
  for (size_t k = 0; k < c->properties.n; k++) props[np++] = c->properties.items[k];
  sl_kv_list_t properties = {.items = props, .n = np};
  sl_diag_t d = {0};
  r = sl_kafka_consumer_new(st->loop, st->env.bridge, m, &st->env.cfg->kafka, st->env.bootstrap, st->env.cfg->file,
                            &properties, rt->group_id, (const char *const *)c->topics.items, c->topics.n, &cbs,
                            &rt->consumer, &d);
  free(props);
  for (size_t k = 0; k < d.n; k++) sl_log(SL_LOG_ERROR, "jobs", "job %s: %s", c->name, d.lines[k]);
  sl_diag_free(&d);
  if (r) return r;
  uv_timer_init(st->loop, &rt->tick);
  rt->tick.data = rt;
  st->closing++; /* the timer, closed at the end */
  uv_timer_start(&rt->tick, on_tick, TICK_MS, TICK_MS);
  rt->last_commit = rt->last_early = rt->last_publish = clock_ms(st);
  sl_log(SL_LOG_INFO, "jobs", "job %s: reading %zu topic%s as group %s%s%s", c->name, c->topics.n,
         c->topics.n == 1 ? "" : "s", rt->group_id, instance && *instance ? ", instance " : "",
         instance && *instance ? instance : "");
  return 0;
}

static int st_start(void *self) {
  jobs_stage_t *st = self;
  st->offsets = sl_metrics_source_new(st->env.metrics); /* NULL (ENOMEM): no offset series */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uv_update_time(st->loop);
  st->wall_offset_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 - uv_now(st->loop);
  int r = make_sinks(st);
  if (r) return r;
  for (size_t i = 0; i < st->n_jobs; i++)
    if ((r = job_start(st, &st->jobs[i]))) return r;
  return 0;
}

static void st_stop_intake(void *self) {
  jobs_stage_t *st = self;
  st->stopping = true;
  for (size_t i = 0; i < st->n_jobs; i++) {
    job_rt_t *rt = &st->jobs[i];
    rt->stopping = true;
    if (!rt->consumer) {
      rt->final_done = true;
      continue;
    }
    sl_kafka_consumer_pause(rt->consumer);
    sl_gauge_set(rt->m[M_PAUSED], 1);
  }
}

static size_t st_inflight(void *self, char *what, size_t len) {
  jobs_stage_t *st = self;
  size_t batches = 0, commits = 0;
  uint64_t rows = 0;
  for (size_t i = 0; i < st->n_jobs; i++) {
    batches += st->jobs[i].n_batches;
    rows += st->jobs[i].rows_pending;
    commits += !st->jobs[i].final_done;
  }
  if (batches || commits)
    snprintf(what, len, "%" PRIu64 " rows wait for their sinks, %zu jobs have not made their last commit", rows,
             commits);
  return batches + commits;
}

static void st_outcome(void *self, char *what, size_t len) {
  jobs_stage_t *st = self;
  uint64_t rows = 0, records = 0;
  for (size_t i = 0; i < st->n_jobs; i++) {
    if (!st->jobs[i].job) continue;
    sl_job_stats_t s;
    sl_job_stats(st->jobs[i].job, &s);
    rows += s.rows_emitted;
    records += s.records_in;
  }
  snprintf(what, len, "%zu jobs read %" PRIu64 " records and emitted %" PRIu64 " rows; open windows are rebuilt "
           "from Kafka at the next start", st->n_jobs, records, rows);
}

static void closed_one(jobs_stage_t *st) {
  if (--st->closing == 0 && st->on_closed) st->on_closed(st->on_closed_arg);
}

static void on_handle_closed(uv_handle_t *h) {
  job_rt_t *rt = h->data;
  closed_one(rt->st);
}

static void on_sink_closed(void *arg) { closed_one(arg); }

/* Once every consumer has left its group: the sinks, then the timers. */
static void close_rest(jobs_stage_t *st) {
  st->closing += st->n_sinks;
  for (size_t i = 0; i < st->n_sinks; i++) sl_sink_close(st->sinks[i], on_sink_closed, st);
  for (size_t i = 0; i < st->n_jobs; i++)
    if (st->jobs[i].tick.data) uv_close((uv_handle_t *)&st->jobs[i].tick, on_handle_closed);
  closed_one(st); /* close_rest's own hold */
}

static void on_consumer_closed(void *arg) {
  job_rt_t *rt = arg;
  rt->consumer_closed = true;
  jobs_stage_t *st = rt->st;
  for (size_t i = 0; i < st->n_jobs; i++)
    if (st->jobs[i].consumer && !st->jobs[i].consumer_closed) return;
  close_rest(st);
}

static void st_close(void *self, void (*on_closed)(void *arg), void *arg) {
  jobs_stage_t *st = self;
  st->on_closed = on_closed;
  st->on_closed_arg = arg;
  st->closing++; /* released by close_rest */
  bool waiting = false;
  for (size_t i = 0; i < st->n_jobs; i++) {
    job_rt_t *rt = &st->jobs[i];
    if (rt->tick.data) uv_timer_stop(&rt->tick);
    if (rt->consumer) {
      waiting = true;
      sl_kafka_consumer_close(rt->consumer, on_consumer_closed, rt);
    }
  }
  if (!waiting) close_rest(st);
}

static void st_free(void *self) {
  jobs_stage_t *st = self;
  if (!st) return;
  for (size_t i = 0; i < st->n_jobs; i++) {
    job_rt_t *rt = &st->jobs[i];
    sl_kafka_consumer_free(rt->consumer);
    for (batch_t *b = rt->head, *next; b; b = next) {
      next = b->next;
      batch_free(b);
    }
    batch_free(rt->building);
    batch_free(rt->late);
    sl_job_free(rt->job);
    sl_record_decoder_free(&rt->dec);
    sl_buf_free(&rt->scratch);
    for (size_t k = 0; k < rt->n_parts; k++) free(rt->parts[k].topic);
    free(rt->parts);
    free(rt->ckpt);
    free(rt->ckpt_wm);
    free(rt->sinks);
    free(rt->group_id);
  }
  for (size_t i = 0; i < st->n_sinks; i++) sl_sink_free(st->sinks[i]);
  sl_kafka_producer_free(st->producer, 0);
  sl_metrics_source_free(st->offsets);
  free(st->sinks);
  free(st->jobs);
  free(st);
}

static const sl_stage_ops_t jobs_ops = {
    .name = "jobs",
    .start = st_start,
    .stop_intake = st_stop_intake,
    .inflight = st_inflight,
    .outcome = st_outcome,
    .close = st_close,
    .free = st_free,
};

int sl_jobs_one_new(const sl_stage_env_t *env, sl_stage_t *out) {
  *out = (sl_stage_t){0};
  const sl_config_t *cfg = env->cfg;
  if (!cfg->jobs.n) return 0;
  jobs_stage_t *st = calloc(1, sizeof *st);
  if (!st || !(st->jobs = calloc(cfg->jobs.n, sizeof *st->jobs))) {
    free(st);
    sl_log(SL_LOG_ERROR, "jobs", "out of memory");
    return SL_ENOMEM;
  }
  st->env = *env;
  st->loop = env->loop;
  st->n_jobs = cfg->jobs.n;
  for (size_t i = 0; i < st->n_jobs; i++) {
    st->jobs[i].st = st;
    st->jobs[i].conf = (const sl_job_conf_t *)cfg->jobs.items + i;
  }
  *out = (sl_stage_t){.ops = &jobs_ops, .self = st};
  return 0;
}

int sl_jobs_stage_new(const sl_stage_env_t *env, sl_stage_t *out) {
  *out = (sl_stage_t){0};
  if (!env->cfg->jobs.n) return 0;
  return sl_stage_thread_new(env, "jobs", sl_jobs_one_new, out);
}
