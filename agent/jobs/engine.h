/* The jobs engine core: one configured job compiled (filter, group-key
 * paths, aggregates, window spec), fed records one at a time, and closing
 * windows into result rows as the watermark passes them.  Pure: no loop, no
 * Kafka; the consumer (later) feeds it from the jobs thread, and `sluice job
 * test` from a file.  A job is used by one thread at a time.
 *
 * State is kept per (partition, window, group key) as mergeable partial
 * aggregates (agg.h): a record updates the partial of its own partition, and
 * a closing window merges its partitions' partials (in partition order) into
 * one row per group key.  Revoking a partition drops its partials.  Session
 * windows are the exception in one respect: their boundaries are tracked per
 * group key over all partitions (a session of one partition may be bridged
 * by another's record), while the partials inside each session are still per
 * partition; revoking a partition leaves the sessions' extent as it was.
 *
 * Rows: job name, [window_start, window_end), the group-key values (named by
 * their canonical path text, `req.path`; a missing field is null), the
 * aggregates (named as in the config), and a deterministic id: XXH3-64 of
 * the job name, its NUL, the window start (int64 little-endian) and the
 * msgpack array of the group-key values, so that a replayed window yields
 * the same ids. */
#ifndef SL_ENGINE_H
#define SL_ENGINE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "jobs/agg.h"
#include "jobs/job_conf.h"

typedef struct sl_job sl_job_t;

/* Why a job does not compile. */
typedef struct {
  const char *option;   /* "where", "group_by", "window", "aggregates", "time_field" (static) */
  const void *field;    /* the sl_job_conf_t member at fault, for sl_bind_error; or NULL */
  const sl_kv_t *entry; /* the aggregates entry at fault (its line and col), or NULL */
  char msg[320];        /* without the option's name: "column 7: unexpected \")\"" */
} sl_job_error_t;

/* Compiles `conf` (borrowed; the job copies what it keeps).  Returns 0 and
 * *out (free with sl_job_free), or SL_ECONFIG (err filled; err may be NULL)
 * or SL_ENOMEM; *out is NULL on failure. */
int sl_job_new(const sl_job_conf_t *conf, sl_job_t **out, sl_job_error_t *err);
void sl_job_free(sl_job_t *job); /* accepts NULL; drops open windows unemitted */

const char *sl_job_name(const sl_job_t *job);

/* A partition becomes the job's, with the watermark its commit metadata
 * carried (SL_WATERMARK_NONE if none).  Feeding an unassigned partition
 * assigns it with no watermark first.  0, SL_ERANGE or SL_ENOMEM. */
int sl_job_assign(sl_job_t *job, int partition, int64_t initial_wm, int64_t now_ms);
/* The partition is no longer the job's: its partials are dropped and it no
 * longer holds the watermark back. */
void sl_job_revoke(sl_job_t *job, int partition);

/* sl_job_feed's answer for a late record (counted in `late`, not kept). */
#define SL_JOB_LATE 1

/* The window the record sl_job_feed last answered SL_JOB_LATE for missed:
 * its window (the last one for hopping windows; [t, t + gap) for
 * sessions), in ms. */
void sl_job_late_window(const sl_job_t *job, int64_t *start, int64_t *end);

/* The job's reader is holding its partitions back (backpressure): none of
 * them counts as idle for the time being (sl_watermark_touch). */
void sl_job_touch(sl_job_t *job, int64_t now_ms);
/* How far the partition's event-time watermark is ahead of the slowest
 * active partition's (sl_watermark_drift), in ms. */
int64_t sl_job_drift(const sl_job_t *job, int partition, int64_t now_ms);
/* Assigned partitions idle at now_ms. */
size_t sl_job_idle_partitions(const sl_job_t *job, int64_t now_ms);

/* One partition has records not read yet: it does not count as idle. */
void sl_job_touch_partition(sl_job_t *job, int partition, int64_t now_ms);

/* Feeds one record (borrowed; only read during the call) of `partition` at
 * Kafka `offset` (-1 when it has none: then it holds nothing back in
 * sl_job_checkpoint), with Kafka timestamp event_ms, read at processing
 * time now_ms.  A partition's records come in offset order.  The event time
 * is event_ms, or the record's time_field when the job has one (a record
 * without a readable one is counted in bad_time and dropped), or now_ms for
 * time = "processing".  Records filtered out by `where` and records over
 * max_keys are counted, not errors.  Returns 0, SL_JOB_LATE (every window
 * of the record was emitted already), SL_ERANGE (partition id out of range)
 * or SL_ENOMEM (the record may have updated some of its windows). */
int sl_job_feed(sl_job_t *job, int partition, int64_t offset, const msgpack_object *record, int64_t event_ms,
                int64_t now_ms);

/* One result row; everything borrowed, valid only during the callback. */
typedef struct {
  const char *job;
  uint64_t id;
  int64_t window_start, window_end; /* ms */
  size_t n_keys;
  const char *const *key_names;
  const msgpack_object *key_values;
  size_t n_aggs;
  const char *const *agg_names;
  const sl_agg_result_t *agg_values;
  const sl_dds_t *const *agg_sketches; /* per aggregate: a percentile's sketch, else NULL */
  const sl_redis_hll_t *const *agg_hlls; /* per aggregate: a redis_hll's registers, else NULL */
  bool early;                          /* an open window's row (sl_job_peek) */
} sl_job_row_t;

typedef void (*sl_job_row_cb)(const sl_job_row_t *row, void *arg);

/* Closes every window whose end is at or before the watermark at now_ms
 * and calls on_row once per (window, group key), windows in order of end,
 * keys in order of arrival.  A row whose partials cannot be merged (out of
 * memory) is dropped and counted in rows_failed.  Returns the emission's
 * sequence number (> 0; for sl_job_confirm) when a window closed, else 0. */
uint64_t sl_job_advance(sl_job_t *job, int64_t now_ms, sl_job_row_cb on_row, void *arg);
/* Closes every window still open (the end of a test input); as advance. */
uint64_t sl_job_finish(sl_job_t *job, sl_job_row_cb on_row, void *arg);

/* Calls on_row with the current row of every open window and group key
 * (early results of `emit = { every = ... }`: the same ids as the final
 * rows, which overwrite them), leaving the state as it is.  Counted in
 * early_rows.  0 or SL_ENOMEM. */
int sl_job_peek(sl_job_t *job, sl_job_row_cb on_row, void *arg);

/* Every sink of the job has the rows of emission `seq`. */
void sl_job_confirm(sl_job_t *job, uint64_t seq);

/* What may be committed now, per partition p < n (the engine's ids):
 * wms[p] is its checkpoint watermark, the commit metadata
 * (SL_WATERMARK_NONE for processing time, for a partition not assigned, or
 * before any): every window ending at or before it that has records of p
 * has been emitted and confirmed, and a restart that assigns it
 * (sl_job_assign) skips exactly those windows' records of p.  It is never
 * below what the partition was assigned, even while the job's own
 * watermark is lower.  offsets[p] is the lowest offset of p that a restart
 * must read again (a record of an open window, of an emission not
 * confirmed, or of one a restart would rebuild), or -1 when none: then
 * everything the partition delivered so far may be committed.  Forgets the
 * emissions no restart would redo.  0, or SL_ENOMEM when an emission's
 * offsets could not be kept (nothing is safe to commit any more). */
int sl_job_checkpoint(sl_job_t *job, int64_t *wms, int64_t *offsets, size_t n);

/* Appends {"id":"<16 hex>","job":…,"window_start":"<RFC 3339>",
 * "window_end":…,<keys>,<aggregates>} to out.  0, SL_ENOMEM or SL_EDEPTH
 * (out restored). */
int sl_job_row_to_json(const sl_job_row_t *row, sl_buf_t *out);

/* Appends the same fields as one msgpack map (strings for id and the
 * window bounds, as in the JSON).  0 or SL_ENOMEM (out restored). */
int sl_job_row_to_msgpack(const sl_job_row_t *row, sl_buf_t *out);

/* Appends a msgpack map of the row's sketches for sinks that export them,
 * each aggregate's name to bytes (bin): a percentile's sl_dds_serialize, a
 * redis_hll's Redis string (sl_redis_hll_to_redis, starting "HYLL");
 * nothing when the row has none.  0 or SL_ENOMEM (out restored). */
int sl_job_row_sketches_to_msgpack(const sl_job_row_t *row, sl_buf_t *out);

/* Counters for the metrics.  The first group only grows. */
typedef struct {
  uint64_t records_in;   /* every record fed */
  uint64_t filtered;     /* rejected by `where` */
  uint64_t late;         /* every window already emitted (and none kept to update) */
  uint64_t late_updates; /* late records that updated a kept window (late_policy = "update") */
  uint64_t bad_time;     /* time_field missing or unreadable */
  uint64_t keys_dropped; /* window updates refused by max_keys */
  uint64_t rows_emitted;
  uint64_t rows_failed;
  uint64_t early_rows;   /* rows of open windows (sl_job_peek) */
  uint64_t open_windows; /* tumbling/hopping windows, or open sessions */
  uint64_t state_keys;   /* (window, group key) cells */
  uint64_t window_keys_max; /* group keys of the fullest open window (what max_keys bounds) */
  uint64_t state_bytes;  /* sl_agg_bytes of every partial, plus their headers */
  uint64_t emissions;    /* emissions kept for checkpoints */
  int64_t watermark;     /* SL_WATERMARK_NONE before any */
} sl_job_stats_t;

/* Fills *out; state_bytes is summed over the state when called. */
void sl_job_stats(const sl_job_t *job, sl_job_stats_t *out);

#endif
