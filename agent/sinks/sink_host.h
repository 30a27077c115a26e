/* The sink host: makes sink instances from [[sink]] tables (the plugin
 * found by name and loaded, plugin_load.h; its options and the host's
 * validated and bound from the same table), serves the plugin the host
 * functions of the SDK (plugins/sdk/sluice/sink.h), and stands between the
 * jobs stage and each instance:
 *
 *   batching  a write of many rows is handed over in writes of at most
 *             batch_size rows;
 *   retries   rows that come back RETRY are written again after a backoff
 *             (initial_backoff doubling to max_backoff, with jitter), only
 *             those rows;
 *   failure   rows refused for good (FATAL), or out of retries
 *             (max_retries, max_elapsed), are handled as on_failure says:
 *             block (retried without end), drop (counted), dead_letter (to
 *             a Kafka topic, with headers sluice.error, sluice.sink,
 *             sluice.job);
 *   done      the caller's write is reported once, when every row has been
 *             written or handled: SL_SINK_OK, or SL_SINK_CANCELED when the
 *             sink closed first (the rows are then not all written, and
 *             the job does not confirm them).
 *
 * Metrics, labelled sink:
 *   sluice_sink_rows_total                 rows the plugin wrote
 *   sluice_sink_batches_total              plugin writes that succeeded
 *   sluice_sink_errors_total{kind}         rows failed, kind = retry | fatal
 *   sluice_sink_retries_total              rows written again after a RETRY
 *   sluice_sink_rows_dropped_total         rows given up with on_failure = drop
 *   sluice_sink_rows_dead_lettered_total   rows written to the dead-letter topic
 *   sluice_sink_write_seconds              plugin write latency (histogram)
 *   sluice_sink_queue_rows                 rows accepted and not yet done
 *   sluice_sink_in_flight                  caller writes accepted and not yet reported
 *   sluice_sink_up                         1 when the last plugin write succeeded
 *
 * Threads: the jobs loop, like the plugins themselves; sl_sink_check also
 * runs at `sluice check` on the main thread. */
#ifndef SL_SINK_HOST_H
#define SL_SINK_HOST_H

#include <stdint.h>
#include <uv.h>

#include "config/config_schema.h"
#include "config/toml.h"
#include "core/metrics.h"
#include "sinks/plugin_load.h"
#include "sinks/sink.h"

struct sl_kafka_producer;

/* What the instances share, borrowed for their life. */
typedef struct {
  uv_loop_t *loop;
  sl_metrics_t *metrics;
  /* The jobs stage's producer, for dead letters and the plugins'
   * kafka_produce; NULL without one.  Its deliveries come back through
   * sl_sink_kafka_delivered. */
  struct sl_kafka_producer *producer;
} sl_sink_env_t;

/* Validates a [[sink]] table as sl_sink_new does (the plugin found and
 * loaded, its options and the host's valid, defaults inserted), without
 * making an instance: for `sluice check`.  Errors go to `d` as
 * "file:line:col: sink[1].mode: reason".  0, SL_ECONFIG or SL_ENOMEM. */
int sl_sink_check(sl_toml_value_t *table, const char *file, const char *path, sl_diag_t *d);

/* The plugin's check_job (ABI 1.2) of a table that passed sl_sink_check,
 * for one job that sends its rows there; errors as sl_sink_check's.  0,
 * SL_ECONFIG or SL_ENOMEM. */
int sl_sink_check_job(sl_toml_value_t *table, const char *file, const char *path, const sluice_job_info_t *job,
                      sl_diag_t *d);

typedef struct sl_sink sl_sink_t;

/* Makes the instance a [[sink]] table describes (validated as by
 * sl_sink_check, then the plugin's create; its error is reported at the
 * table).  Returns 0 and *out (close with sl_sink_close, then
 * sl_sink_free), or SL_ECONFIG (errors in d) or SL_ENOMEM. */
int sl_sink_new(sl_toml_value_t *table, const char *file, const char *path, const sl_sink_env_t *env,
                sl_sink_t **out, sl_diag_t *d);

const char *sl_sink_name(const sl_sink_t *s); /* the [[sink]] name; owned by s */
const sl_plugin_t *sl_sink_plugin(const sl_sink_t *s);

/* Writes `batch` (borrowed until done).  Returns 0 when accepted: done is
 * then called exactly once, from the loop, never from inside this call,
 * with SL_SINK_OK or SL_SINK_CANCELED.  Returns SL_ECANCELED (closing) or
 * SL_ENOMEM, and done is never called. */
int sl_sink_write(sl_sink_t *s, const sl_sink_batch_t *batch, sl_sink_done_cb done, void *arg);

/* The plugin's flush.  Same contract, the outcome being the plugin's;
 * refused with SL_EPLUGIN when the plugin has no flush. */
int sl_sink_flush(sl_sink_t *s, sl_sink_done_cb done, void *arg);

/* Caller writes accepted and not yet reported. */
size_t sl_sink_in_flight(const sl_sink_t *s);

/* Stops accepting writes; writes waiting for a retry or a dead letter are
 * reported SL_SINK_CANCELED, the plugin's Kafka records still out are
 * reported to it SLUICE_CANCELED, the plugin is destroyed (its writes
 * complete as its destroy says), then on_closed(arg) once (possibly from
 * inside this call).  Called once. */
void sl_sink_close(sl_sink_t *s, void (*on_closed)(void *arg), void *arg);

/* After on_closed.  Accepts NULL. */
void sl_sink_free(sl_sink_t *s);

/* 1 when every sink's last plugin write succeeded; else 0 with the latest
 * failure ("sink reports is down: connection refused") in why.  Any
 * thread. */
int sl_sinks_all_up(char *why, size_t len);

/* A delivery report of the shared producer for a record a sink sent
 * (msg_opaque as given to the producer): err 0 when Kafka has it. */
void sl_sink_kafka_delivered(void *msg_opaque, int err);

#endif
