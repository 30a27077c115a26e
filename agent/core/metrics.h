/* The metrics registry: families (counter, gauge, histogram) with label
 * names declared at registration, children (one per label set) created on
 * first use up to a cap per family, and the Prometheus text exposition
 * (format 0.0.4) of everything registered.
 *
 * Threads: families and children are created and rendered under the
 * registry's mutex (rare: at start, when a new label set appears, at each
 * scrape); updates are lock-free relaxed atomics on the child, so any
 * thread may update any child.  Families and children live until the
 * registry is freed, so a child pointer stays valid for the registry's
 * whole life. */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct sl_metrics sl_metrics_t;
typedef struct sl_metric_family sl_metric_family_t;

typedef enum { SL_METRIC_COUNTER, SL_METRIC_GAUGE, SL_METRIC_HISTOGRAM } sl_metric_type_t;

/* Children a family keeps when its description says 0. */
#define SL_METRIC_DEFAULT_MAX_CHILDREN 1000

/* One series (a family's label set).  Read its value with the accessors
 * below; update it only with sl_metric_* / sl_gauge_* / sl_histogram_*. */
typedef struct sl_metric {
  _Atomic uint64_t value;   /* counter: the count; gauge: the bits of a double */
  _Atomic uint64_t count;   /* histogram: observations */
  _Atomic uint64_t sum;     /* histogram: the bits of the double sum */
  _Atomic uint64_t *bucket; /* histogram: per-bucket (non-cumulative) counts, n_buckets + 1 */
  const double *bounds;     /* histogram: the family's upper bounds */
  size_t n_buckets;
} sl_metric_t;

typedef struct {
  sl_metric_type_t type;
  const char *name; /* borrowed: static storage (a literal) */
  const char *help; /* borrowed: static storage */
  /* Label names, NULL-terminated; NULL for a family without labels.
   * Borrowed: static storage. */
  const char *const *labels;
  /* Histogram bucket upper bounds, ascending; +Inf is implied.  Borrowed:
   * static storage. */
  const double *buckets;
  size_t n_buckets;
  /* Counters only: how many counted units make one exposed unit (1000000
   * for a counter of microseconds shown in seconds, so that integer
   * counting keeps base units on /metrics); 0 or 1: shown as counted. */
  uint64_t per_unit;
  /* Children kept; past it, new label sets share one overflow child that
   * is never rendered and are counted in
   * sluice_metrics_series_dropped_total{family="<name>"}.  0: the default. */
  size_t max_children;
} sl_metric_desc_t;

/* NULL on ENOMEM.  Free with sl_metrics_free, after every thread that
 * updates its children has stopped. */
sl_metrics_t *sl_metrics_new(void);
void sl_metrics_free(sl_metrics_t *r); /* accepts NULL */

/* The family named d->name, registered now or earlier (the same name may
 * be registered by several modules, e.g. two Kafka producers).  Registering
 * a name again with another type or other labels is a programming error:
 * it is logged and the process aborts.  Aborts on ENOMEM too: families are
 * registered at start. */
sl_metric_family_t *sl_metrics_family(sl_metrics_t *r, const sl_metric_desc_t *d);

/* The child for `values` (as many as the family has label names; copied),
 * created on first use.  Never NULL: past the family's cap (or on ENOMEM)
 * the family's overflow child is returned and the drop counted. */
sl_metric_t *sl_metric_child(sl_metric_family_t *f, const char *const *values);

/* Shorthands for families without labels: their one child. */
/* name and help are borrowed like a description's: static storage. */
sl_metric_t *sl_metrics_counter(sl_metrics_t *r, const char *name, const char *help);
sl_metric_t *sl_metrics_gauge(sl_metrics_t *r, const char *name, const char *help);

static inline void sl_metric_add(sl_metric_t *m, uint64_t n) {
  atomic_fetch_add_explicit(&m->value, n, memory_order_relaxed);
}
static inline void sl_metric_inc(sl_metric_t *m) { sl_metric_add(m, 1); }
static inline uint64_t sl_metric_get(const sl_metric_t *m) {
  return atomic_load_explicit(&((sl_metric_t *)m)->value, memory_order_relaxed);
}

void sl_gauge_set(sl_metric_t *m, double v);
void sl_gauge_add(sl_metric_t *m, double delta); /* negative to decrease */
static inline void sl_gauge_inc(sl_metric_t *m) { sl_gauge_add(m, 1); }
static inline void sl_gauge_dec(sl_metric_t *m) { sl_gauge_add(m, -1); }
double sl_gauge_get(const sl_metric_t *m);

void sl_histogram_observe(sl_metric_t *m, double v);

/* Appends the text exposition of every family, in registration order, and
 * of every child, in creation order, then of every source's published set
 * (below), in the order the sources were made.  SL_ENOMEM when out is left
 * short. */
int sl_metrics_render(sl_metrics_t *r, sl_buf_t *out);

/* ---- Published sets (metrics_set.c) --------------------------------------
 *
 * Series whose set changes at run time, such as a sink's view of a job's
 * latest rows, where a key that leaves must take its series with it.  One
 * thread builds a whole set (families and their samples), then publishes
 * it to its source, which shows it instead of the set it showed before:
 * a scrape, on another thread, renders each source's current set under
 * the registry's mutex, so it sees one set or the next, never half of one.
 * Samples are rendered to text when they are added, so publishing is a
 * pointer swap and a scrape only copies text. */
typedef struct sl_metrics_set sl_metrics_set_t;
typedef struct sl_metrics_source sl_metrics_source_t;

typedef struct {
  const char *name, *value; /* borrowed for the call; value: any UTF-8 text */
} sl_metric_label_t;

/* An empty set; NULL on ENOMEM.  Used by one thread at a time until it is
 * published or freed. */
sl_metrics_set_t *sl_metrics_set_new(void);
void sl_metrics_set_free(sl_metrics_set_t *s); /* accepts NULL */

/* The set's family `name` of that type: added now (name and help copied),
 * or the one added before.  Returns its index (>= 0), -EINVAL (a name
 * Prometheus refuses, no help, an unknown type), -EEXIST (the name is
 * another type's in this set, or a histogram's sample name clashes with
 * another family's) or SL_ENOMEM. */
int sl_metrics_set_family(sl_metrics_set_t *s, sl_metric_type_t type, const char *name, const char *help);

/* Adds one sample to a counter or gauge family (sl_metrics_set_value) or
 * a histogram family (sl_metrics_set_histogram: bounds[0..n_bounds) finite
 * and strictly ascending, cumulative[0..n_bounds] the observations at or
 * below each bound then in all, never decreasing).  Label values are
 * escaped, and bytes that are not UTF-8 become U+FFFD.  Returns 0;
 * -EINVAL (a family index out of range or of the other kind, a label name
 * Prometheus refuses, one starting with "__", "le" in a histogram, a label
 * name twice, malformed bounds or counts); -EEXIST (the family has a
 * sample with the same labels, in any order); SL_ENOMEM.  The set is
 * unchanged unless 0 is returned. */
int sl_metrics_set_value(sl_metrics_set_t *s, int family, const sl_metric_label_t *labels, size_t n_labels,
                         double v);
int sl_metrics_set_histogram(sl_metrics_set_t *s, int family, const sl_metric_label_t *labels, size_t n_labels,
                             const double *bounds, const uint64_t *cumulative, size_t n_bounds, double sum);

/* Samples added (a histogram counts once). */
size_t sl_metrics_set_samples(const sl_metrics_set_t *s);

/* A place in the registry's output for one owner's sets, rendered after
 * the registry's families; NULL on ENOMEM.  Free every source before the
 * registry. */
sl_metrics_source_t *sl_metrics_source_new(sl_metrics_t *r);

/* Shows `set` (taken; NULL: nothing) instead of what src showed before,
 * which is freed.  A family whose name clashes with one of the registry's
 * or with one another source shows is left out of scrapes: returns how
 * many were, with the first one's name in clash (len bytes; may be NULL),
 * so the caller can say so.  Any thread. */
int sl_metrics_source_publish(sl_metrics_source_t *src, sl_metrics_set_t *set, char *clash, size_t len);

/* Removes src and its set from the registry: once it returns, no scrape
 * shows them.  Accepts NULL. */
void sl_metrics_source_free(sl_metrics_source_t *src);

#endif
