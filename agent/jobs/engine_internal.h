/* The engine's private types, shared by engine.c (state, feeding, closing)
 * and engine_row.c (rows as JSON).  Not for other modules. */
#ifndef SL_ENGINE_INTERNAL_H
#define SL_ENGINE_INTERNAL_H

#include <stdbool.h>

#include "jobs/engine.h"
#include "jobs/expr.h"
#include "jobs/path.h"
#include "jobs/session.h"
#include "jobs/watermark.h"
#include "jobs/window.h"

/* One partition's partial aggregates of one (window, group key): the header,
 * then each aggregate's state at agg_off[i] past SL_PARTIAL_HDR. */
typedef struct sl_partial {
  struct sl_partial *next; /* the cell's other partitions, by increasing id */
  int64_t first_offset;    /* the lowest Kafka offset fed into it, or -1 */
  int partition;
} sl_partial_t;
#define SL_PARTIAL_HDR ((sizeof(sl_partial_t) + SL_AGG_STATE_ALIGN - 1) & ~(size_t)(SL_AGG_STATE_ALIGN - 1))

/* A group key in a table: of a window (partials), or of a session job
 * (sessions, each session's agg an sl_partial_t list). */
typedef struct sl_group {
  struct sl_group *hnext; /* hash chain */
  struct sl_group *next;  /* arrival order */
  uint64_t hash;
  sl_partial_t *partials;
  sl_session_set_t sessions;
  uint32_t key_len;
  bool dirty; /* a kept window's group updated by a late record since its last row */
  char key[]; /* the msgpack array of the key values */
} sl_group_t;

typedef struct {
  sl_group_t **buckets; /* power of two, or NULL */
  size_t nb, n;
  sl_group_t *head, *tail;
} sl_gtable_t;

/* Per partition, the lowest Kafka offset that fed a window (or an emission
 * of windows): what a checkpoint must not commit past while the window may
 * have to be rebuilt.  Indexed by partition id; -1: none. */
typedef struct {
  int64_t *off;
  size_t n;
} sl_offsets_t;

typedef struct {
  sl_window_t w;
  sl_gtable_t groups;
  sl_offsets_t offsets;
  bool dirty; /* kept: a late record updated it since its last rows */
} sl_win_t;

/* The windows one sl_job_advance closed, remembered until the checkpoint
 * watermark has passed them all: while it has not, a restart rebuilds them
 * from their records, so those records' offsets stay uncommitted. */
typedef struct {
  uint64_t seq;
  int64_t min_end, max_end;
  int64_t guard; /* the lowest event time + gap of a session in it; INT64_MAX for other windows */
  sl_offsets_t offsets;
  bool confirmed; /* every sink has its rows */
} sl_emission_t;

struct sl_job {
  char *name;
  sl_window_spec_t spec;
  bool processing;
  bool has_time_field;
  int time_format;
  uint64_t max_keys;
  sl_expr_t *where; /* or NULL */
  sl_path_t time_path;
  size_t n_keys;
  sl_path_t *key_paths;
  char **key_names;
  size_t n_aggs;
  sl_agg_spec_t *aggs;
  sl_path_t *agg_paths; /* n == 0 for count() */
  char **agg_names;
  size_t *agg_off;
  size_t partial_size;
  sl_agg_result_t *results; /* of the row being emitted */
  const sl_dds_t **sketches; /* and its percentiles' sketches */
  const sl_redis_hll_t **hlls; /* and its redis_hll aggregates' registers */

  sl_watermark_t wm;
  int64_t proc_wm; /* processing time: now - lateness, never going back */

  sl_win_t **wins; /* tumbling, hopping: open windows by start */
  size_t n_wins, cap_wins;
  /* late_policy = "update": closed windows by start, kept (with their
   * partials) until the watermark passes their end + update_ms, so that a
   * late record can update one and its row be emitted again.  For the
   * checkpoint they count as open: a restart rebuilds them. */
  int64_t update_ms; /* 0: closed windows are freed */
  sl_win_t **kept;
  size_t n_kept, cap_kept;
  sl_partial_t *tmp; /* scratch cell for rows merged without consuming the partials */
  sl_window_t late_window; /* the last window the last late record missed */
  sl_gtable_t sess_keys; /* sessions */
  int64_t sess_next_end; /* no session closes before this watermark */
  uint64_t n_cells;

  sl_emission_t *emissions; /* oldest first */
  size_t n_emissions, cap_emissions;
  uint64_t next_seq;
  bool in_emission; /* an advance has begun emissions[n_emissions - 1] */
  bool ckpt_broken; /* an emission's offsets could not be kept: no checkpoint is safe */

  sl_buf_t keybuf, scratch;
  msgpack_unpacked unp;
  sl_job_stats_t stats;
};

#endif
