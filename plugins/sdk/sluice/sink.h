/* sluice sink plugin SDK: the one header a sink plugin includes.
 *
 * A sink plugin is a shared object that exports one descriptor,
 *
 *     const sluice_sink_plugin_t sluice_sink_plugin = { SLUICE_SINK_PLUGIN_HEADER, .name = "mysink", ... };
 *
 * and is loaded by sluice at start from `plugin_dirs` (and the installed
 * plugin folder) when a [[sink]] table names it: `plugin = "mysink"` loads
 * mysink.so.  Build it with
 *
 *     cc -shared -fPIC -o mysink.so mysink.c $(pkg-config --cflags --libs sluice-plugin)
 *
 * Compatibility.  The descriptor says which ABI it was built for
 * (SLUICE_SINK_PLUGIN_HEADER fills it in).  A minor version only adds (new
 * members at the end of these structs, new functions at the end of the
 * host table, new constants); a major version may change anything.  The
 * agent refuses a plugin built for another major version, or for a newer
 * minor version than its own.  A plugin built for an older minor version
 * works: it simply does not use what came later.
 *
 * What each minor version added:
 *   1.1  option types MAP and FLOAT_LIST; the descriptor's check; the host's
 *        row_kind, row_nkeys, row_sketch (a percentile's distribution) and
 *        metric sets (series that change at run time on /metrics).
 *   1.2  the host's row_hll (a redis_hll aggregate as a Redis HyperLogLog);
 *        the descriptor's check_job.
 *
 * Threads.  create is called at start, before the jobs thread's event loop
 * (a libuv loop, given to create) runs: handles made there on that loop
 * are safe.  Every other callback of the descriptor is called on the jobs
 * thread, and every host function must be called on that thread too, from
 * a callback or from the plugin's own handles on that loop.  A plugin may run blocking work on its own threads
 * or libuv's thread pool, but reports back on the loop.  No callback may
 * block for long: every job of the process shares the loop.
 *
 * Ownership.  The host owns everything it passes in: the options struct
 * (and the strings in it) until destroy has completed, the rows and the
 * write handle until the write is completed (sluice_host_t.write_done), the
 * context until destroy has completed.  The plugin owns what it allocates,
 * and frees it by the end of destroy.  Strings returned by the host are
 * valid as long as the object they came from (a row: until its write is
 * completed). */
#ifndef SLUICE_SINK_H
#define SLUICE_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_SINK_ABI_MAJOR 1
#define SLUICE_SINK_ABI_MINOR 2

/* The name of the descriptor symbol every plugin exports. */
#define SLUICE_SINK_SYMBOL "sluice_sink_plugin"

/* ---- outcomes ---------------------------------------------------------------- */

typedef enum {
  SLUICE_OK = 0,       /* written (as durable as the sink promises) */
  SLUICE_RETRY = 1,    /* not written, or not known to be: trying again may work */
  SLUICE_FATAL = 2,    /* will not be written by trying again (bad data, a rejected row) */
  SLUICE_CANCELED = 3, /* not attempted: the sink is being destroyed */
} sluice_status_t;

/* ---- options ----------------------------------------------------------------- */

/* The plugin's options, written in its [[sink]] table beside `name` and
 * `plugin`; validated by `sluice check` like the core options (types,
 * ranges, unknown keys with suggestions, file:line:col) and bound into a
 * zeroed struct of conf_size bytes at each option's offset:
 *   STRING       char *             (NULL when unset and without default)
 *   INT          int64_t            (min/max: the range; both 0: none)
 *   FLOAT        double
 *   BOOL         bool
 *   DURATION     int64_t nanoseconds ("500ms", "10s"; min/max in ns)
 *   SIZE         uint64_t bytes     ("64KiB" or an integer)
 *   ENUM         int: the index of the value in `choices` ("a|b|c")
 *   STRING_LIST  sluice_str_list_t  (one string or an array of them)
 *   MAP          sluice_kv_list_t   (a table of strings, numbers and booleans; ABI 1.1)
 *   FLOAT_LIST   sluice_float_list_t (one number or an array of them; ABI 1.1) */
typedef enum {
  SLUICE_OPT_STRING = 1,
  SLUICE_OPT_INT,
  SLUICE_OPT_FLOAT,
  SLUICE_OPT_BOOL,
  SLUICE_OPT_DURATION,
  SLUICE_OPT_SIZE,
  SLUICE_OPT_ENUM,
  SLUICE_OPT_STRING_LIST,
  SLUICE_OPT_MAP,        /* ABI 1.1 */
  SLUICE_OPT_FLOAT_LIST, /* ABI 1.1 */
} sluice_opt_type_t;

#define SLUICE_OPT_REQUIRED 1u /* the key must be written */
#define SLUICE_OPT_SECRET 2u   /* never printed (`sluice check --print` shows <redacted>) */

typedef struct {
  const char *name;
  sluice_opt_type_t type;
  const char *def; /* the default as TOML value text ("\"x\"", "5", "true", "\"10s\""); NULL: none */
  int64_t min, max;
  const char *choices; /* ENUM */
  unsigned flags;
  const char *help; /* one line, for `sluice plugins` and `sluice reference` */
  size_t offset;    /* of the field it fills in the plugin's options struct */
} sluice_opt_t;

typedef struct {
  char **items;
  size_t n;
} sluice_str_list_t;

/* One entry of a MAP option: its key, and its value as text ("prod",
 * "5", "true"), with where it was written. */
typedef struct {
  char *key;
  char *value;
  int line, col;
} sluice_kv_t;

typedef struct {
  sluice_kv_t *items;
  size_t n;
} sluice_kv_list_t;

typedef struct {
  double *items;
  size_t n;
} sluice_float_list_t;

/* ---- rows ---------------------------------------------------------------------- */

/* One result row of a job: the job's name, its window, its group-key fields
 * and aggregate fields, and a deterministic id (the same for the same job,
 * window start and group key, so that a row written again overwrites
 * itself: use it as the key or document id).  Opaque: read it with the
 * host's row functions.  A sink that is a job's late_sink also gets late
 * records as rows: their window bounds those of the window the record
 * missed, their fields the record's own (no id, job or window fields among
 * them), their id a hash of where the record was read (topic, partition,
 * offset), and their row_kind SLUICE_ROW_LATE (ABI 1.1). */
typedef struct sluice_row sluice_row_t;

typedef enum {
  SLUICE_VALUE_NULL = 0, /* also a missing group-key field */
  SLUICE_VALUE_BOOL,
  SLUICE_VALUE_INT,
  SLUICE_VALUE_FLOAT,
  SLUICE_VALUE_STRING,
  SLUICE_VALUE_OTHER, /* a map or an array (read the row as JSON or msgpack) */
} sluice_value_type_t;

typedef struct {
  sluice_value_type_t type;
  bool b;
  int64_t i;
  double f;
  const char *s; /* STRING: not NUL-terminated; len bytes */
  size_t len;
} sluice_value_t;

/* Where a row comes from (row_kind, ABI 1.1). */
typedef enum {
  SLUICE_ROW_FINAL = 0, /* a window that closed */
  SLUICE_ROW_EARLY,     /* an open window as it stands (emit = { every = ... }); its final row, with the
                           same id, comes when the window closes */
  SLUICE_ROW_LATE,      /* a late record sent to a late_sink (its own fields, no group keys) */
} sluice_row_kind_t;

/* A percentile aggregate's distribution (row_sketch, ABI 1.1): the
 * DDSketch's non-empty buckets, ascending.  A bucket holds `count` values
 * v with lower < v <= upper (upper <= 0: lower <= v < upper; the zero
 * bucket: lower = upper = 0), and every one of them is within
 * relative_accuracy * |v| of the bucket's middle, 2 lower upper / (lower +
 * upper).  The lowest positive (and negative) bucket of a sketch that
 * reached its bound of buckets also holds the values below it: its lower
 * bound is then 0. */
typedef struct {
  double lower, upper;
  uint64_t count;
} sluice_bin_t;

typedef struct {
  double relative_accuracy; /* 0.01 */
  uint64_t count;           /* values; the sum of the bins' counts */
  double min, max;          /* exact */
  size_t n_bins;
  const sluice_bin_t *bins; /* valid as long as the row */
} sluice_sketch_t;

/* Metric sets (ABI 1.1): series a plugin publishes on the agent's /metrics
 * as a whole, replacing the set it published before, for series that come
 * and go at run time (a row's group keys as labels).  Build a set with
 * set_family and set_value / set_histogram, then set_publish it: scrapes
 * (on another thread) see the previous set or this one, never a mix, and
 * the plugin needs no lock of its own. */
typedef struct sluice_metric_set sluice_metric_set_t;

typedef enum {
  SLUICE_METRIC_COUNTER = 0,
  SLUICE_METRIC_GAUGE,
  SLUICE_METRIC_HISTOGRAM,
} sluice_metric_type_t;

typedef struct {
  const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" */
  const char *value; /* any text; escaped, and bytes that are not UTF-8 replaced, by the host */
} sluice_label_t;

/* ---- the host ------------------------------------------------------------------ */

typedef struct sluice_ctx sluice_ctx_t;     /* the host's side of one sink instance */
typedef struct sluice_write sluice_write_t; /* one write or flush in progress */
typedef struct sluice_timer sluice_timer_t;
typedef struct sluice_metric sluice_metric_t;

typedef enum { SLUICE_LOG_ERROR = 0, SLUICE_LOG_WARN, SLUICE_LOG_INFO, SLUICE_LOG_DEBUG } sluice_log_level_t;

/* What the agent offers a plugin; given to create, valid until destroy has
 * completed.  Functions are only ever added at the end. */
typedef struct sluice_host {
  uint32_t abi_major, abi_minor; /* the agent's */

  /* Logging, as the agent's own lines: component "sink:<plugin>:<name>". */
  void (*log)(sluice_ctx_t *ctx, sluice_log_level_t level, const char *fmt, ...)
      __attribute__((format(printf, 3, 4)));

  /* Metrics on the agent's /metrics, labelled sink="<name>".  `name` and
   * `help` must be string literals (kept, not copied).  A counter's name
   * ends in _total.  Never NULL. */
  sluice_metric_t *(*counter)(sluice_ctx_t *ctx, const char *name, const char *help);
  sluice_metric_t *(*gauge)(sluice_ctx_t *ctx, const char *name, const char *help);
  void (*metric_add)(sluice_metric_t *m, double v); /* counter: whole units, v >= 0 (fractions dropped) */
  void (*metric_set)(sluice_metric_t *m, double v); /* gauge */

  /* One-shot timers on the jobs loop.  timer_free stops it; its callback
   * is never called after.  NULL when out of memory. */
  sluice_timer_t *(*timer_new)(sluice_ctx_t *ctx, void (*cb)(void *arg), void *arg);
  void (*timer_start)(sluice_timer_t *t, uint64_t ms);
  void (*timer_stop)(sluice_timer_t *t);
  void (*timer_free)(sluice_timer_t *t);

  /* Rows. */
  uint64_t (*row_id)(const sluice_row_t *row);
  /* The id as the 16 lowercase hex digits the row's JSON carries; NUL-terminated. */
  const char *(*row_id_hex)(const sluice_row_t *row);
  const char *(*row_job)(const sluice_row_t *row);
  int64_t (*row_window_start)(const sluice_row_t *row); /* Unix ms */
  int64_t (*row_window_end)(const sluice_row_t *row);
  /* The whole row as one JSON object (no newline), or as a msgpack map. */
  const char *(*row_json)(const sluice_row_t *row, size_t *len);
  const void *(*row_msgpack)(const sluice_row_t *row, size_t *len);
  /* Fields in order: id, job, window_start, window_end (RFC 3339 strings),
   * the group keys, the aggregates.  row_field returns the i-th name and
   * fills *v, or NULL past the end; row_get finds a field by name. */
  size_t (*row_nfields)(const sluice_row_t *row);
  const char *(*row_field)(const sluice_row_t *row, size_t i, sluice_value_t *v);
  bool (*row_get)(const sluice_row_t *row, const char *name, sluice_value_t *v);

  /* Completes a write or flush, once.  For a write, rows given their own
   * outcome with row_done first keep it; the others get `status`.  The
   * message (NULL with SLUICE_OK) is logged and kept for dead letters;
   * copied.  After write_done the write handle and its rows are gone. */
  void (*row_done)(sluice_write_t *w, size_t i, sluice_status_t status, const char *message);
  void (*write_done)(sluice_write_t *w, sluice_status_t status, const char *message);

  /* destroy has released everything: the host frees the instance. */
  void (*destroyed)(sluice_ctx_t *ctx);

  /* Kafka: produces one record with the agent's producer for [kafka]
   * (idempotent, acks=all, the agent's properties), through the jobs loop.
   * Returns 0 when accepted: then done(arg, status, message) is called
   * once, on the loop, when Kafka has the record (SLUICE_OK) or gave up
   * (SLUICE_RETRY), never from inside this call.
   * Returns SLUICE_RETRY when the producer's queue is full, SLUICE_FATAL
   * when the record is refused (too large, more than 16 headers, or no
   * producer); done is then not called.  key, value and the headers are
   * copied.  A failed delivery's message says so; librdkafka's reason is
   * in the agent's log.  When the sink is being destroyed, the records
   * still out are reported SLUICE_CANCELED right before destroy is called
   * (Kafka may yet take them), so that destroy never waits on Kafka. */
  int (*kafka_produce)(sluice_ctx_t *ctx, const char *topic, const void *key, size_t key_len, const void *value,
                       size_t value_len, const char *const *header_names, const char *const *header_values,
                       size_t n_headers, void (*done)(void *arg, sluice_status_t status, const char *message),
                       void *arg);

  /* ---- ABI 1.1: read abi_minor before calling these ---- */

  /* A final row, an early one, or a late record (sluice_row_kind_t). */
  sluice_row_kind_t (*row_kind)(const sluice_row_t *row);
  /* How many of the row's fields are group keys: those after the four
   * fixed ones (id, job, window_start, window_end); the aggregates follow
   * them.  0 for a late record. */
  size_t (*row_nkeys)(const sluice_row_t *row);
  /* The distribution behind the row's percentile aggregate `name`: true
   * with *out filled, false when the row has no percentile field of that
   * name (another aggregate, a late record) or the sketch holds no value.
   * Two percentile fields of one field path carry the same sketch. */
  bool (*row_sketch)(const sluice_row_t *row, const char *name, sluice_sketch_t *out);

  /* Metric sets.  set_new: an empty set, NULL when out of memory.
   * set_family: the set's family `name` of that type (added now, or the
   * one added before; name and help copied), its index >= 0, or < 0: a
   * name Prometheus refuses ([a-zA-Z_:][a-zA-Z0-9_:]*), no help, or a name
   * another family of the set (or its _bucket, _sum, _count) uses.
   * set_value (counter, gauge) and set_histogram add one series: labels
   * [0..n_labels) (copied), for a histogram bounds[0..n_bounds) finite and
   * ascending, cumulative[0..n_bounds] the values at or below each bound,
   * then in all (that is, le="+Inf" and the count), and the sum.  They
   * return 0, or < 0 with the set unchanged: a label name refused (or
   * "le" in a histogram, or one name twice), malformed bounds or counts,
   * the same labels already in the family (in any order), out of memory.
   * set_publish takes the set (NULL: show nothing) and shows it instead of
   * what this sink published before; it returns how many families it left
   * out because their names are the agent's own or another sink's (each
   * is logged).  set_free frees a set that was not published.  The sink's
   * published series leave /metrics when it is destroyed.  No sink label
   * is added: the names and labels are the plugin's. */
  sluice_metric_set_t *(*set_new)(sluice_ctx_t *ctx);
  int (*set_family)(sluice_metric_set_t *set, sluice_metric_type_t type, const char *name, const char *help);
  int (*set_value)(sluice_metric_set_t *set, int family, const sluice_label_t *labels, size_t n_labels, double v);
  int (*set_histogram)(sluice_metric_set_t *set, int family, const sluice_label_t *labels, size_t n_labels,
                       const double *bounds, const uint64_t *cumulative, size_t n_bounds, double sum);
  int (*set_publish)(sluice_ctx_t *ctx, sluice_metric_set_t *set);
  void (*set_free)(sluice_metric_set_t *set);

  /* ---- ABI 1.2: read abi_minor before calling it ---- */

  /* The registers behind the row's redis_hll aggregate `name`, as the
   * string Redis keeps for a HyperLogLog ("HYLL", sparse or dense, its
   * cached count marked stale): SET it and Redis's PFCOUNT, PFMERGE and
   * PFADD take it as one they made, with exactly the registers PFADD of
   * the window's elements would have set.  NULL (and *len untouched) when
   * the row has no redis_hll field of that name (another aggregate, a late
   * record).  Valid as long as the row. */
  const void *(*row_hll)(const sluice_row_t *row, const char *name, size_t *len);
} sluice_host_t;

/* ---- the descriptor -------------------------------------------------------------- */

/* A job that sends its rows to a sink (check_job, ABI 1.2): its aggregate
 * fields in row order, and each one's function as written ("count", "sum",
 * "percentile", "redis_hll", ...).  Borrowed for the call. */
typedef struct {
  const char *name;
  size_t n_aggregates;
  const char *const *aggregates;
  const char *const *functions;
} sluice_job_info_t;

typedef struct {
  uint32_t abi_major, abi_minor; /* SLUICE_SINK_PLUGIN_HEADER */
  const char *name;              /* the `plugin` value and the file name (name.so) */
  const char *version;           /* the plugin's own version, for `sluice plugins` */
  const char *description;       /* one line */
  const sluice_opt_t *options;   /* terminated by a zeroed entry; may be NULL */
  size_t conf_size;              /* of the options struct */

  /* Makes an instance.  `conf` is the bound options struct (see above),
   * `loop` the jobs thread's uv_loop_t *.  Returns 0 with *self set, or
   * non-zero with a message in err (errlen bytes: "cannot open /x: no such
   * file or directory"), which the agent reports at the [[sink]] table and
   * does not start.  May block briefly (opening a file): it runs at start. */
  int (*create)(const sluice_host_t *host, sluice_ctx_t *ctx, const void *conf, void *loop, void **self, char *err,
                size_t errlen);

  /* Starts writing rows[0..n) (borrowed until the write is completed).
   * Returns 0 when accepted: then the plugin completes it exactly once with
   * host->write_done, never from inside this call.  Returns non-zero when
   * refused (the host treats it as SLUICE_RETRY).  Several writes may be in
   * flight; a plugin that must keep their order queues them. */
  int (*write)(void *self, sluice_write_t *w, const sluice_row_t *const *rows, size_t n);

  /* Completes w (write_done) once every write accepted before it has
   * completed and, for a durable medium, is synced.  May be NULL. */
  int (*flush)(void *self, sluice_write_t *w);

  /* Stops the instance: writes not started complete with SLUICE_CANCELED,
   * the one in flight with its real outcome; then the plugin frees what it
   * holds and calls host->destroyed(ctx) (possibly from inside destroy).
   * Called once; nothing else is called after it. */
  void (*destroy)(void *self);

  /* ---- ABI 1.1 ---- */

  /* Checks what the option table cannot: options that go together,
   * values of a form of the plugin's own (a template, a name).  Called
   * with the bound options by `sluice check` and before create; returns 0,
   * or non-zero with a message in err ("buckets: 5 is not above 10"),
   * reported at the [[sink]] table (a message that starts with an option's
   * name and ": " is shown as that key's).  Pure: no I/O, no host.  May be
   * NULL. */
  int (*check)(const void *conf, char *err, size_t errlen);

  /* ---- ABI 1.2 ---- */

  /* Checks the options against each job whose `sinks` names this sink
   * (an option that names a job's field, say), with the bound options,
   * by `sluice check` and at start after check; 0, or non-zero with a
   * message reported as check's.  Pure.  May be NULL. */
  int (*check_job)(const void *conf, const sluice_job_info_t *job, char *err, size_t errlen);
} sluice_sink_plugin_t;

#define SLUICE_SINK_PLUGIN_HEADER .abi_major = SLUICE_SINK_ABI_MAJOR, .abi_minor = SLUICE_SINK_ABI_MINOR

#ifdef __cplusplus
}
#endif

#endif
