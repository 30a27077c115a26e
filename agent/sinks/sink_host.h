/* The sink host: makes sink instances from [[sink]] tables (the descriptor
 * found by `plugin` among the registered types, the plugin's own options
 * validated and bound from the same table), and stands between the jobs
 * stage and each instance: it retries writes that come back RETRY with
 * exponential backoff on a uv_timer, reports the final outcome once, and
 * keeps the instance's metrics, labelled by its name:
 *
 *   sluice_sink_rows_total{sink}      rows written
 *   sluice_sink_batches_total{sink}   batches written
 *   sluice_sink_retries_total{sink}   attempts repeated after a RETRY
 *   sluice_sink_failures_total{sink}  batches reported failed (FATAL, or
 *                                     RETRY past max_attempts)
 *   sluice_sink_in_flight{sink}       batches accepted, not yet reported
 *
 * Order: the host does not hold a batch back for an earlier one that waits
 * for its retry; a caller that needs rows in order waits for done before
 * the next write (ids make rows idempotent, so the jobs stage need not).
 *
 * Threads: everything on the jobs loop, like the sinks themselves. */
#ifndef SL_SINK_HOST_H
#define SL_SINK_HOST_H

#include <stdint.h>
#include <uv.h>

#include "config/config_schema.h"
#include "config/toml.h"
#include "core/metrics.h"
#include "sinks/sink.h"

/* The type named `name` ("file"), or NULL. */
const sl_sink_type_t *sl_sink_type_find(const char *name);

/* Adds a compiled-in type to the registry (tests; later the plugin loader
 * hands loaded descriptors through the same door).  `type` is borrowed and
 * must outlive every look-up.  Not thread-safe: call at start.  0, -EEXIST
 * when the name is taken, or SL_ENOMEM when the registry is full. */
int sl_sink_type_register(const sl_sink_type_t *type);

typedef struct {
  int64_t initial_backoff_ms; /* wait before the first retry */
  int64_t max_backoff_ms;     /* the doubling stops here */
  unsigned max_attempts;      /* attempts in all, the first included; 0: no limit */
} sl_sink_retry_t;

/* 100 ms doubling up to 30 s, no limit on attempts: a sink that is down
 * holds its rows (and so the jobs' offsets) back rather than losing them. */
#define SL_SINK_RETRY_DEFAULT ((sl_sink_retry_t){.initial_backoff_ms = 100, .max_backoff_ms = 30000})

typedef struct sl_sink sl_sink_t;

/* Makes the instance a [[sink]] table describes.  `table` (borrowed) is one
 * element of the `sink` array; the option defaults are inserted into it like
 * sl_schema_validate does, so that a later print shows them.  `file` and
 * `path` ("sink[1]"; borrowed) name it in errors, which go to `d` as
 * "file:line:col: sink[1].mode: reason" (unknown plugin, unknown key with a
 * suggestion, wrong type, missing required key, and the plugin's create
 * error at the table).  `loop` and `metrics` (not NULL) are borrowed and
 * outlive the instance; `retry` is copied (NULL: SL_SINK_RETRY_DEFAULT).  Returns 0 and
 * *out (close with sl_sink_close, then sl_sink_free), or SL_ECONFIG (errors
 * in d), or the create's error; *out is NULL on failure. */
int sl_sink_new(sl_toml_value_t *table, const char *file, const char *path, uv_loop_t *loop,
                sl_metrics_t *metrics, const sl_sink_retry_t *retry, sl_sink_t **out, sl_diag_t *d);

/* Validates a [[sink]] table as sl_sink_new does (the plugin known, its
 * options valid, defaults inserted), without making an instance: for
 * `sluice check`.  0, SL_ECONFIG (errors in d) or SL_ENOMEM. */
int sl_sink_check(sl_toml_value_t *table, const char *file, const char *path, sl_diag_t *d);

const char *sl_sink_name(const sl_sink_t *s);             /* the [[sink]] name; owned by s */
const sl_sink_type_t *sl_sink_type(const sl_sink_t *s);   /* its descriptor */

/* Writes `batch` (borrowed until done, retries included) through the
 * instance.  Returns 0 when accepted: done is then called exactly once, from
 * the loop, with SL_SINK_OK, SL_SINK_FATAL, SL_SINK_RETRY (max_attempts
 * used up), or SL_SINK_CANCELED (closed before it could be written); never
 * from inside sl_sink_write.  Returns SL_ECANCELED (closing), SL_ENOMEM or
 * the sink's refusal otherwise, and done is never called. */
int sl_sink_write(sl_sink_t *s, const sl_sink_batch_t *batch, sl_sink_done_cb done, void *arg);

/* The sink's flush, passed through (no retry); same contract. */
int sl_sink_flush(sl_sink_t *s, sl_sink_done_cb done, void *arg);

/* Batches accepted and not yet reported. */
size_t sl_sink_in_flight(const sl_sink_t *s);

/* Stops accepting writes; batches waiting for a retry are reported
 * SL_SINK_CANCELED at once, batches inside the sink complete as the sink's
 * close says (the one in flight with its outcome, a RETRY then reported as
 * CANCELED), then on_closed(arg) once, from the loop or from inside this
 * call.  Called once. */
void sl_sink_close(sl_sink_t *s, void (*on_closed)(void *arg), void *arg);

/* After on_closed.  Accepts NULL. */
void sl_sink_free(sl_sink_t *s);

#endif
