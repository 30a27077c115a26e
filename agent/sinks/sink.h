/* The internal sink interface: what the jobs stage hands result rows to.
 * Shaped like the plugin ABI to come (a descriptor with an option table and
 * asynchronous write/flush/close), but compiled in, so it carries no ABI
 * version yet; the SDK header will wrap the same shape in a versioned
 * descriptor.  The host (sink_host.h) creates sinks from [[sink]] tables and
 * wraps their writes with retries and metrics.
 *
 * Threads: every function of a descriptor is called on the jobs loop (the
 * loop given to create), and every callback a sink calls (done, on_closed)
 * is called on that loop too.  A sink may use libuv's thread pool for
 * blocking work, but reports back on the loop. */
#ifndef SL_SINK_H
#define SL_SINK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config_schema.h"
#include "core/metrics.h"

/* The outcome of a write or a flush, as done's status. */
typedef enum {
  SL_SINK_OK = 0,       /* the rows are written (as durable as the sink promises) */
  SL_SINK_RETRY = 1,    /* not written (or not known to be): trying again may work */
  SL_SINK_FATAL = 2,    /* will not be written by trying again (bad data, bad config) */
  SL_SINK_CANCELED = 3, /* not attempted, or not retried: the sink is closing */
} sl_sink_status_t;

/* One result row: its JSON object (sl_job_row_to_json's text, one object,
 * no trailing newline) and its deterministic id, which a sink uses as its
 * key (Redis key, Elasticsearch _id, Kafka key) so that a replayed row
 * overwrites itself. */
typedef struct {
  const char *json; /* borrowed; json_len bytes, not NUL-terminated necessarily */
  size_t json_len;
  uint64_t id;
  const char *job; /* borrowed, NUL-terminated: the job that made the row */
} sl_sink_row_t;

/* Rows handed to one write.  The batch, its rows array and everything the
 * rows point to are borrowed from the caller and must stay valid and
 * unchanged until the write's done has been called (a retry writes the same
 * batch again).  A sink that needs them longer copies them. */
typedef struct {
  const sl_sink_row_t *rows; /* borrowed */
  size_t n;
} sl_sink_batch_t;

/* Reports the outcome of one accepted write or flush.  `message` is NULL
 * with SL_SINK_OK, otherwise a text for the log ("cannot write
 * /var/out.json: no space left on device"); borrowed, valid during the call
 * only.  The callee may call the sink's write and flush from inside done,
 * but not close or free. */
typedef void (*sl_sink_done_cb)(void *arg, int status, const char *message);

typedef struct sl_sink_type {
  const char *name;        /* the [[sink]] `plugin` value: "file"; static */
  const char *description; /* one line, for `sluice plugins`; static */
  /* The sink's own options: `opts` bound into a zeroed struct of `size`
   * bytes (finish/release hooks allowed).  The host validates and binds them
   * from the [[sink]] table's keys other than name and plugin.  Static. */
  const sl_section_t *options;

  /* Makes an instance from `conf` (the bound options struct; borrowed during
   * the call only: copy what is kept), attached to `loop` (borrowed; the
   * jobs loop, which outlives the instance), registering its own metrics, if
   * any, in `metrics` (borrowed; outlives the instance) under
   * `instance_name` (the [[sink]] name; borrowed during the call only).
   * Returns 0 and *out (released with close, then free), or a negative error with a
   * message in err (errlen bytes, "cannot open /x/y: permission denied") and
   * *out NULL.  May block briefly (opening a file); it runs at start. */
  int (*create)(const void *conf, uv_loop_t *loop, sl_metrics_t *metrics, const char *instance_name,
                void **out, char *err, size_t errlen);

  /* Starts writing `batch` (borrowed until done, see above).  Returns 0 when
   * accepted: then done(arg, status, message) is called exactly once, later,
   * from the loop (never before write returns).  Returns a negative error
   * when refused (SL_ENOMEM; SL_ECANCELED once close was called): then done
   * is never called.  Writes accepted by one instance may be in flight
   * together; a sink that must keep their order (a file) queues them. */
  int (*write)(void *self, const sl_sink_batch_t *batch, sl_sink_done_cb done, void *arg);

  /* Calls done once every write accepted before it has completed (and, for
   * a sink with a durable medium, what they wrote is synced): same
   * accept/refuse contract as write. */
  int (*flush)(void *self, sl_sink_done_cb done, void *arg);

  /* Stops accepting writes, then: writes not started are completed with
   * SL_SINK_CANCELED (possibly from inside close), the write in flight, if
   * any, completes with its real outcome (I/O already handed to the kernel
   * or a peer cannot be taken back), and then on_closed(arg) is called once
   * (possibly from inside close when nothing was in flight).  Called once.
   * After on_closed, only free may be called. */
  void (*close)(void *self, void (*on_closed)(void *arg), void *arg);

  /* Frees the instance, after on_closed.  Accepts NULL.  (A create that
   * fails frees what it built itself.) */
  void (*free)(void *self);
} sl_sink_type_t;

/* The built-in sinks. */
extern const sl_sink_type_t sl_file_sink_type;

#endif
