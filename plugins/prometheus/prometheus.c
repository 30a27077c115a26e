/* The `prometheus` sink plugin: a job's newest rows as gauges on sluice's
 * own /metrics, each aggregate a family (`<metric>_<aggregate>`), each
 * group key a label, and percentile aggregates also as histograms that
 * Prometheus can sum across instances.  What kafka-topic-exporter did
 * beside a Flink job, without the extra hop.  Sees only the SDK header.
 *
 * How rows become series.  The rows of a write update the series table
 * (prom_table.h: which row replaces which, window and latest modes, expiry,
 * the max_series bound); then, on the next loop turn, once every write the
 * host handed over in that turn is in, the whole table is rendered into a
 * metric set and published (host->set_publish), which a scrape on the HTTP
 * thread sees whole or not at all.  So all the rows of one emission (the
 * host may cut them into several writes) appear together, and a key that
 * left the newest window leaves /metrics in the same step.
 *
 * Early rows (emit = { every = ... }) are ignored unless `early = true`:
 * by default a gauge shows closed windows only, so it never drops back when
 * a window closes with fewer records than its early row guessed.  Late
 * records (a job's late_sink) are never shown.  Both are counted.
 *
 * Every write succeeds: the table is memory, a row it cannot take (the
 * bound, an older window) is counted and logged, not retried.
 *
 * Lifetimes.  Writes are completed from the publish timer, never from
 * inside write; the host may write or destroy from inside write_done, so
 * the instance is freed only once no report of its own is on the stack. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup, clock_gettime under -std=c11 */
#endif

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sluice/sink.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prom_buckets.h"
#include "prom_names.h"
#include "prom_table.h"

#define MS 1000000LL
#define NAME_MAX_LEN 512 /* a family name: prefix, '_', suffix */
#define MAX_LABELS 32     /* group keys and const_labels of a row */
#define MAX_HISTOGRAMS 16

enum { SERIES_WINDOW, SERIES_LATEST };

typedef struct {
  char *metric; /* owned by the host, like every field */
  sluice_str_list_t values, labels;
  sluice_kv_list_t const_labels, histograms;
  sluice_float_list_t buckets;
  double bucket_min, bucket_max;
  int64_t max_buckets, max_series;
  int series;
  int64_t expire_ns;
  bool early;
} prom_conf_t;

static const sluice_opt_t prom_opts[] = {
    {.name = "metric",
     .type = SLUICE_OPT_STRING,
     .offset = offsetof(prom_conf_t, metric),
     .help = "Prefix of the metric names: an aggregate `errors` is the gauge `<metric>_errors`. Unset: the "
             "row's job name, with characters Prometheus does not take in a name made `_`."},
    {.name = "values",
     .type = SLUICE_OPT_STRING_LIST,
     .offset = offsetof(prom_conf_t, values),
     .help = "Row fields shown as gauges, one family each (numbers; booleans as 1 and 0). Unset: every "
             "aggregate of the row."},
    {.name = "labels",
     .type = SLUICE_OPT_STRING_LIST,
     .offset = offsetof(prom_conf_t, labels),
     .help = "Group keys that become labels, named as in group_by (`req.method` becomes the label "
             "`req_method`). Unset: every group key. Rows whose labels come out the same overwrite each "
             "other (counted in sluice_sink_prometheus_label_collisions_total)."},
    {.name = "const_labels",
     .type = SLUICE_OPT_MAP,
     .offset = offsetof(prom_conf_t, const_labels),
     .help = "Labels added to every series: `{ env = \"prod\" }`."},
    {.name = "histograms",
     .type = SLUICE_OPT_MAP,
     .offset = offsetof(prom_conf_t, histograms),
     .help = "Percentile aggregates also shown as histograms, each to the name of its family: `{ p99_ms = "
             "\"latency_ms\" }` gives `<metric>_latency_ms_bucket{le=...}`, `_sum` and `_count`, from the "
             "aggregate's sketch, for histogram_quantile() across instances and windows."},
    {.name = "buckets",
     .type = SLUICE_OPT_FLOAT_LIST,
     .offset = offsetof(prom_conf_t, buckets),
     .help = "Upper bounds of the histograms' buckets, ascending (`[5, 10, 25, 50, 100]`). Unset: the "
             "sketch's own bucket edges between bucket_min and bucket_max, merged to at most max_buckets."},
    {.name = "bucket_min",
     .type = SLUICE_OPT_FLOAT,
     .def = "0.001",
     .offset = offsetof(prom_conf_t, bucket_min),
     .help = "Without buckets: the lowest bound (values below it share the first bucket)."},
    {.name = "bucket_max",
     .type = SLUICE_OPT_FLOAT,
     .def = "100000",
     .offset = offsetof(prom_conf_t, bucket_max),
     .help = "Without buckets: the highest bound (values above it are only in +Inf)."},
    {.name = "max_buckets",
     .type = SLUICE_OPT_INT,
     .def = "40",
     .min = 3,
     .max = 2000,
     .offset = offsetof(prom_conf_t, max_buckets),
     .help = "Without buckets: most bounds per histogram. Each bucket spans k of the sketch's edges "
             "(2.02% apart), k the smallest that fits; histogram_quantile is within a bucket's width."},
    {.name = "max_series",
     .type = SLUICE_OPT_INT,
     .def = "10000",
     .min = 1,
     .max = 10000000,
     .offset = offsetof(prom_conf_t, max_series),
     .help = "Most label sets shown at once; a row that would add one more is dropped and counted in "
             "sluice_sink_prometheus_series_dropped_total."},
    {.name = "series",
     .type = SLUICE_OPT_ENUM,
     .def = "\"window\"",
     .choices = "window|latest",
     .offset = offsetof(prom_conf_t, series),
     .help = "`window`: only the newest closed window's rows, a group key absent from it has no series; "
             "`latest`: each group key keeps its newest row (until `expire`)."},
    {.name = "expire",
     .type = SLUICE_OPT_DURATION,
     .def = "\"0s\"",
     .min = 0,
     .max = 30LL * 86400 * 1000 * MS,
     .offset = offsetof(prom_conf_t, expire_ns),
     .help = "A series no row updated for this long is removed (checked every second); 0: never."},
    {.name = "early",
     .type = SLUICE_OPT_BOOL,
     .def = "false",
     .offset = offsetof(prom_conf_t, early),
     .help = "Also show early rows of open windows (emit = { every = ... }); false: closed windows only."},
    {0},
};

/* ---- checking the options ------------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* A family name's suffix: [a-zA-Z0-9_:]+. */
static bool valid_suffix(const char *s) {
  char probe[NAME_MAX_LEN];
  snprintf(probe, sizeof probe, "x_%s", s);
  return *s && prom_valid_name(probe, false) && strlen(s) < NAME_MAX_LEN / 2;
}

static int prom_check(const void *conf_, char *err, size_t errlen) {
  const prom_conf_t *c = conf_;
  if (c->metric && (!prom_valid_name(c->metric, false) || strlen(c->metric) >= NAME_MAX_LEN / 2))
    return fail(err, errlen, "metric: \"%s\" is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)",
                c->metric);
  for (size_t i = 0; i < c->values.n; i++)
    if (!*c->values.items[i]) return fail(err, errlen, "values: an empty field name");
  for (size_t i = 0; i < c->labels.n; i++)
    if (!*c->labels.items[i]) return fail(err, errlen, "labels: an empty field name");
  if (c->const_labels.n + c->labels.n > MAX_LABELS)
    return fail(err, errlen, "const_labels: more than %d labels with labels", MAX_LABELS);
  if (c->histograms.n > MAX_HISTOGRAMS) return fail(err, errlen, "histograms: more than %d", MAX_HISTOGRAMS);
  for (size_t i = 0; i < c->const_labels.n; i++)
    if (!prom_valid_name(c->const_labels.items[i].key, true))
      return fail(err, errlen, "const_labels: \"%s\" is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not "
                  "starting with \"__\")", c->const_labels.items[i].key);
  for (size_t i = 0; i < c->histograms.n; i++) {
    const sluice_kv_t *kv = &c->histograms.items[i];
    if (!valid_suffix(kv->value))
      return fail(err, errlen, "histograms: \"%s\" (for %s) is not a name Prometheus takes after \"<metric>_\" "
                  "([a-zA-Z0-9_:]+)", kv->value, kv->key);
  }
  for (size_t i = 1; i < c->buckets.n; i++)
    if (!(c->buckets.items[i - 1] < c->buckets.items[i]))
      return fail(err, errlen, "buckets: %g is not above %g (bounds go in ascending order)", c->buckets.items[i],
                  c->buckets.items[i - 1]);
  if (!(c->bucket_min > 0)) return fail(err, errlen, "bucket_min: must be above 0");
  if (!(c->bucket_max > c->bucket_min))
    return fail(err, errlen, "bucket_max: %g is not above bucket_min (%g)", c->bucket_max, c->bucket_min);
  return 0;
}

/* ---- the instance ----------------------------------------------------------------- */

typedef struct report {
  struct report *next;
  sluice_write_t *w;
} report_t;

typedef struct {
  const sluice_host_t *host; /* borrowed until destroyed */
  sluice_ctx_t *ctx;
  const prom_conf_t *conf; /* the host's until destroyed */
  prom_table_t *table;
  prom_layout_t layout; /* histograms' bounds; made on the first sketch without `buckets` */
  double layout_alpha;
  sluice_timer_t *publish_timer, *expire_timer;
  report_t *head, *tail; /* writes applied, to complete at the next publish */
  int reporting;         /* write_done calls on the stack */
  bool closing, dirty;
  /* Since the last publish, for one log line each. */
  uint64_t dropped, collided, skipped;
  char skipped_why[256];
  bool late_logged;
  sluice_metric_t *m_dropped, *m_ignored, *m_skipped, *m_collisions, *m_series;
} prom_sink_t;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_publish_timer(void *arg);
static void on_expire_timer(void *arg);

static int prom_create(const sluice_host_t *host, sluice_ctx_t *ctx, const void *conf_, void *loop, void **self,
                       char *err, size_t errlen) {
  (void)loop;
  const prom_conf_t *c = conf_;
  *self = NULL; /* the options passed prom_check: the host called it */
  prom_sink_t *s = calloc(1, sizeof *s);
  if (!s) return fail(err, errlen, "out of memory");
  s->host = host;
  s->ctx = ctx;
  s->conf = c;
  int r = 0;
  if (c->buckets.n) r = prom_layout_explicit(&s->layout, c->buckets.items, c->buckets.n);
  if (r || !(s->table = prom_table_new((size_t)c->max_series, c->series == SERIES_WINDOW, c->expire_ns / MS)) ||
      !(s->publish_timer = host->timer_new(ctx, on_publish_timer, s)) ||
      (c->expire_ns && !(s->expire_timer = host->timer_new(ctx, on_expire_timer, s)))) {
    if (s->publish_timer) host->timer_free(s->publish_timer);
    prom_table_free(s->table);
    prom_layout_free(&s->layout);
    free(s);
    return fail(err, errlen, r == -1 ? "buckets: bounds must be finite and ascending" : "out of memory");
  }
  s->m_dropped = host->counter(ctx, "sluice_sink_prometheus_series_dropped_total",
                               "Rows not shown because max_series label sets were shown already.");
  s->m_ignored = host->counter(ctx, "sluice_sink_prometheus_rows_ignored_total",
                               "Rows not shown: late records, early rows (early = false), rows of a window "
                               "older than the one shown.");
  s->m_skipped = host->counter(ctx, "sluice_sink_prometheus_fields_skipped_total",
                               "Fields named by values, labels or histograms that a row lacks, or that are not a "
                               "number (values) or a percentile (histograms).");
  s->m_collisions = host->counter(ctx, "sluice_sink_prometheus_label_collisions_total",
                                  "Rows whose labels equal another row's of the same window, which they replaced.");
  s->m_series = host->gauge(ctx, "sluice_sink_prometheus_series", "Label sets shown.");
  if (s->expire_timer) host->timer_start(s->expire_timer, 1000);
  *self = s;
  return 0;
}

/* ---- a row into the table ---------------------------------------------------------- */

/* What one row makes; owned strings, freed by row_parts_free. */
typedef struct {
  sluice_label_t labels[MAX_LABELS];
  size_t n_labels;
  prom_value_t values[64];
  size_t n_values;
  prom_hist_t hists[MAX_HISTOGRAMS];
  size_t n_hists;
  char *metric;
  bool nomem;
} row_parts_t;

static void row_parts_free(row_parts_t *p) {
  prom_parts_clear(p->labels, p->n_labels, p->values, p->n_values, p->hists, p->n_hists);
  free(p->metric);
}

static void skipped(prom_sink_t *s, const char *job, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void skipped(prom_sink_t *s, const char *job, const char *fmt, ...) {
  s->host->metric_add(s->m_skipped, 1);
  if (s->skipped++) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(s->skipped_why, sizeof s->skipped_why, fmt, ap);
  va_end(ap);
  if (n > 0 && (size_t)n < sizeof s->skipped_why)
    snprintf(s->skipped_why + n, sizeof s->skipped_why - (size_t)n, " (job %s)", job ? job : "?");
}

static bool listed(const sluice_str_list_t *l, const char *name) {
  for (size_t i = 0; i < l->n; i++)
    if (!strcmp(l->items[i], name)) return true;
  return false;
}

static bool label_taken(const row_parts_t *p, const char *name) {
  for (size_t i = 0; i < p->n_labels; i++)
    if (!strcmp(p->labels[i].name, name)) return true;
  return false;
}

/* Adds a label (name sanitised; a name taken by an earlier label gets _2,
 * _3...); the value is taken. */
static void add_label(row_parts_t *p, const char *field, char *value) {
  char *name = prom_sanitize_name(field, strlen(field), true);
  if (!name || !value || p->n_labels == MAX_LABELS) {
    p->nomem |= !name || !value;
    free(name);
    free(value);
    return;
  }
  for (int k = 2; label_taken(p, name) && k < 100; k++) {
    char *again = malloc(strlen(field) + 8);
    if (!again) break;
    char *base = prom_sanitize_name(field, strlen(field), true);
    snprintf(again, strlen(field) + 8, "%s_%d", base ? base : "_", k);
    free(base);
    free(name);
    name = again;
  }
  p->labels[p->n_labels++] = (sluice_label_t){name, value};
}

static void row_labels(prom_sink_t *s, const sluice_row_t *row, const char *job, row_parts_t *p) {
  const sluice_host_t *h = s->host;
  const prom_conf_t *c = s->conf;
  size_t nk = h->row_nkeys(row);
  for (size_t i = 4; i < 4 + nk; i++) {
    sluice_value_t v;
    const char *field = h->row_field(row, i, &v);
    if (!field) break;
    if (c->labels.n && !listed(&c->labels, field)) continue;
    if (p->n_labels == MAX_LABELS) {
      skipped(s, job, "labels: group key %s is past the %d labels a series can have", field, MAX_LABELS);
      continue;
    }
    add_label(p, field, prom_label_text(&v));
  }
  for (size_t i = 0; i < c->labels.n; i++) {
    bool found = false;
    for (size_t k = 4; k < 4 + nk && !found; k++) {
      sluice_value_t v;
      const char *field = h->row_field(row, k, &v);
      found = field && !strcmp(field, c->labels.items[i]);
    }
    if (!found) skipped(s, job, "labels: %s is not a group key of the row", c->labels.items[i]);
  }
  for (size_t i = 0; i < c->const_labels.n; i++)
    if (!label_taken(p, c->const_labels.items[i].key))
      add_label(p, c->const_labels.items[i].key, strdup(c->const_labels.items[i].value));
}

static void add_value(prom_sink_t *s, row_parts_t *p, const char *job, const char *field, const sluice_value_t *v) {
  double x;
  if (v->type == SLUICE_VALUE_NULL) return; /* no value in the window (an avg of nothing): no sample */
  if (!prom_sample_value(v, &x)) {
    skipped(s, job, "values: field %s is not a number", field);
    return;
  }
  if (p->n_values == sizeof p->values / sizeof *p->values) {
    skipped(s, job, "values: field %s is past the %zu a row can show", field, p->n_values);
    return;
  }
  char *name = prom_sanitize_name(field, strlen(field), false);
  if (!name) {
    p->nomem = true;
    return;
  }
  p->values[p->n_values++] = (prom_value_t){name, x};
}

static void row_values(prom_sink_t *s, const sluice_row_t *row, const char *job, row_parts_t *p) {
  const sluice_host_t *h = s->host;
  const prom_conf_t *c = s->conf;
  sluice_value_t v;
  if (c->values.n) {
    for (size_t i = 0; i < c->values.n; i++) {
      if (h->row_get(row, c->values.items[i], &v))
        add_value(s, p, job, c->values.items[i], &v);
      else
        skipped(s, job, "values: the row has no field %s", c->values.items[i]);
    }
    return;
  }
  size_t nf = h->row_nfields(row);
  for (size_t i = 4 + h->row_nkeys(row); i < nf; i++) {
    const char *field = h->row_field(row, i, &v);
    if (field) add_value(s, p, job, field, &v);
  }
}

/* The histograms' bounds: the user's, or the grid of the first sketch's
 * accuracy.  False when there are none (out of memory). */
static bool layout_for(prom_sink_t *s, double alpha) {
  const prom_conf_t *c = s->conf;
  if (c->buckets.n || (s->layout.n && s->layout_alpha == alpha)) return s->layout.n > 0;
  prom_layout_free(&s->layout);
  s->layout_alpha = alpha;
  if (prom_layout_grid(&s->layout, alpha, c->bucket_min, c->bucket_max, (size_t)c->max_buckets)) return false;
  s->host->log(s->ctx, SLUICE_LOG_INFO,
               "histograms: %zu buckets from %g to %g, each %u of the sketch's edges (x%.4g per bucket)",
               s->layout.n, s->layout.bounds[0], s->layout.bounds[s->layout.n - 1], s->layout.k,
               s->layout.n > 1 ? s->layout.bounds[1] / s->layout.bounds[0] : 1.0);
  return true;
}

static void row_histograms(prom_sink_t *s, const sluice_row_t *row, const char *job, row_parts_t *p) {
  const sluice_host_t *h = s->host;
  const prom_conf_t *c = s->conf;
  for (size_t i = 0; i < c->histograms.n && p->n_hists < sizeof p->hists / sizeof *p->hists; i++) {
    const char *column = c->histograms.items[i].key;
    sluice_sketch_t sk;
    sluice_value_t v;
    if (!h->row_sketch(row, column, &sk)) {
      bool empty = h->row_get(row, column, &v) && v.type == SLUICE_VALUE_NULL;
      if (!empty) skipped(s, job, "histograms: field %s is not a percentile aggregate", column);
      continue; /* a percentile of no values: no histogram */
    }
    if (!layout_for(s, sk.relative_accuracy)) {
      p->nomem = true;
      return;
    }
    prom_hist_t *hist = &p->hists[p->n_hists];
    hist->cumulative = malloc((s->layout.n + 1) * sizeof *hist->cumulative);
    hist->name = strdup(c->histograms.items[i].value);
    hist->column = strdup(column);
    p->n_hists++;
    if (!hist->cumulative || !hist->name || !hist->column) {
      p->nomem = true;
      return;
    }
    prom_histogram(&s->layout, sk.bins, sk.n_bins, hist->cumulative, &hist->sum);
  }
}

static void take_row(prom_sink_t *s, const sluice_row_t *row, int64_t now) {
  const sluice_host_t *h = s->host;
  sluice_row_kind_t kind = h->row_kind(row);
  const char *job = h->row_job(row);
  if (kind == SLUICE_ROW_LATE || (kind == SLUICE_ROW_EARLY && !s->conf->early)) {
    if (kind == SLUICE_ROW_LATE && !s->late_logged) {
      s->late_logged = true;
      h->log(s->ctx, SLUICE_LOG_WARN, "late records of job %s are not shown (this sink is its late_sink)",
             job ? job : "?");
    }
    h->metric_add(s->m_ignored, 1);
    return;
  }
  row_parts_t p = {0};
  p.metric = s->conf->metric ? strdup(s->conf->metric) : prom_sanitize_name(job ? job : "", job ? strlen(job) : 0, false);
  if (!p.metric) p.nomem = true;
  if (!p.nomem) row_labels(s, row, job, &p);
  if (!p.nomem) row_values(s, row, job, &p);
  if (!p.nomem) row_histograms(s, row, job, &p);
  prom_outcome_t out = PROM_NOMEM;
  if (!p.nomem) {
    prom_row_t r = {.metric = p.metric, .job = job, .id = h->row_id(row),
                    .window_start = h->row_window_start(row), .window_end = h->row_window_end(row),
                    .final = kind == SLUICE_ROW_FINAL, .labels = p.labels, .n_labels = p.n_labels,
                    .values = p.values, .n_values = p.n_values, .hists = p.hists, .n_hists = p.n_hists,
                    .n_bounds = s->layout.n};
    out = prom_table_apply(s->table, &r, now);
  }
  row_parts_free(&p);
  switch (out) {
  case PROM_ADDED:
  case PROM_REPLACED: break;
  case PROM_COLLIDED:
    s->collided++;
    h->metric_add(s->m_collisions, 1);
    break;
  case PROM_OLDER: h->metric_add(s->m_ignored, 1); break;
  case PROM_DROPPED:
    s->dropped++;
    h->metric_add(s->m_dropped, 1);
    break;
  case PROM_NOMEM: h->log(s->ctx, SLUICE_LOG_ERROR, "a row of job %s not shown: out of memory", job ? job : "?"); break;
  }
  s->dirty = true;
}

static int prom_write(void *self, sluice_write_t *w, const sluice_row_t *const *rows, size_t n) {
  prom_sink_t *s = self;
  report_t *r = calloc(1, sizeof *r);
  if (!r) return -1;
  int64_t now = now_ms();
  for (size_t i = 0; i < n; i++) take_row(s, rows[i], now);
  r->w = w;
  if (s->tail)
    s->tail->next = r;
  else
    s->head = r;
  s->tail = r;
  s->host->timer_start(s->publish_timer, 0);
  return 0;
}

/* ---- publishing ---------------------------------------------------------------------- */

static int family(prom_sink_t *s, sluice_metric_set_t *set, sluice_metric_type_t type, const prom_series_t *e,
                  const char *suffix, const char *column) {
  char name[NAME_MAX_LEN], help[NAME_MAX_LEN + 160];
  snprintf(name, sizeof name, "%s_%s", e->metric, suffix);
  if (type == SLUICE_METRIC_HISTOGRAM)
    snprintf(help, sizeof help, "Distribution of percentile aggregate %s of job %s (its sketch's buckets), %s.",
             column, e->job, s->conf->early ? "newest window" : "newest closed window");
  else
    snprintf(help, sizeof help, "Aggregate %s of job %s, %s.", column, e->job,
             s->conf->early ? "newest window" : "newest closed window");
  return s->host->set_family(set, type, name, help);
}

/* The table as a metric set.  A family whose name two columns share (a
 * value and a histogram), or a label set two metric prefixes share, can
 * be shown once: the rest is counted as a collision. */
static sluice_metric_set_t *render(prom_sink_t *s) {
  const sluice_host_t *h = s->host;
  sluice_metric_set_t *set = h->set_new(s->ctx);
  if (!set) return NULL;
  for (const prom_series_t *e = prom_table_first(s->table); e; e = e->next) {
    bool clash = false;
    for (size_t i = 0; i < e->n_values; i++) {
      int f = family(s, set, SLUICE_METRIC_GAUGE, e, e->values[i].name, e->values[i].name);
      clash |= f < 0 || h->set_value(set, f, e->labels, e->n_labels, e->values[i].value) != 0;
    }
    for (size_t i = 0; i < e->n_hists; i++) {
      const prom_hist_t *hist = &e->hists[i];
      int f = family(s, set, SLUICE_METRIC_HISTOGRAM, e, hist->name, hist->column);
      clash |= f < 0 || h->set_histogram(set, f, e->labels, e->n_labels, s->layout.bounds, hist->cumulative,
                                         e->n_bounds, hist->sum) != 0;
    }
    if (clash) skipped(s, e->job, "series of %s: a family name two fields share, or labels another metric "
                       "prefix has", e->metric);
  }
  return set;
}

/* One line per publish for what went wrong since the last. */
static void log_since_publish(prom_sink_t *s) {
  const sluice_host_t *h = s->host;
  if (s->dropped)
    h->log(s->ctx, SLUICE_LOG_WARN, "%" PRIu64 " rows of new label sets not shown: max_series (%" PRId64
           ") label sets are shown", s->dropped, s->conf->max_series);
  if (s->collided)
    h->log(s->ctx, SLUICE_LOG_WARN, "%" PRIu64 " rows share their labels (or a family name) with another row "
           "of the window: give the rows' group keys as labels", s->collided);
  if (s->skipped) h->log(s->ctx, SLUICE_LOG_WARN, "%" PRIu64 " fields skipped: %s", s->skipped, s->skipped_why);
  s->dropped = s->collided = s->skipped = 0;
}

static void publish(prom_sink_t *s) {
  s->dirty = false;
  sluice_metric_set_t *set = render(s);
  if (!set) {
    s->host->log(s->ctx, SLUICE_LOG_ERROR, "cannot publish the series: out of memory");
    return;
  }
  s->host->set_publish(s->ctx, set);
  s->host->metric_set(s->m_series, (double)prom_table_size(s->table));
  log_since_publish(s);
}

static void finish_close(prom_sink_t *s);

/* Completes every write applied so far.  The host may write (queueing
 * behind) or destroy from inside write_done. */
static void complete_writes(prom_sink_t *s) {
  report_t *list = s->head;
  s->head = s->tail = NULL;
  while (list) {
    report_t *r = list;
    list = r->next;
    s->reporting++;
    s->host->write_done(r->w, SLUICE_OK, NULL);
    s->reporting--;
    free(r);
  }
}

static void on_publish_timer(void *arg) {
  prom_sink_t *s = arg;
  if (s->dirty) publish(s);
  complete_writes(s);
  if (s->closing) finish_close(s);
}

static void on_expire_timer(void *arg) {
  prom_sink_t *s = arg;
  if (prom_table_expire(s->table, now_ms())) publish(s);
  s->host->timer_start(s->expire_timer, 1000);
}

/* ---- closing --------------------------------------------------------------------------- */

static void finish_close(prom_sink_t *s) {
  if (s->reporting) return;
  const sluice_host_t *h = s->host;
  sluice_ctx_t *ctx = s->ctx;
  complete_writes(s); /* their rows are in the table: done */
  h->timer_free(s->publish_timer);
  if (s->expire_timer) h->timer_free(s->expire_timer);
  prom_table_free(s->table);
  prom_layout_free(&s->layout);
  free(s);
  h->destroyed(ctx); /* the host takes the series off /metrics */
}

static void prom_destroy(void *self) {
  prom_sink_t *s = self;
  s->closing = true;
  finish_close(s);
}

__attribute__((visibility("default"))) const sluice_sink_plugin_t sluice_sink_plugin = {
    SLUICE_SINK_PLUGIN_HEADER,
    .name = "prometheus",
    .version = "1.0.0",
    .description = "A job's newest rows as gauges (and percentiles as histograms) on sluice's own /metrics.",
    .options = prom_opts,
    .conf_size = sizeof(prom_conf_t),
    .create = prom_create,
    .write = prom_write,
    .destroy = prom_destroy,
    .check = prom_check,
};
