/* The metrics registry: families and their children, and the Prometheus
 * text exposition (format 0.0.4).  Any thread: registration, child lookup
 * and rendering take the registry's mutex; updates to a child are relaxed
 * atomics and never lock, so the hot paths that count cost one atomic add.
 *
 * Each family keeps at most max_children label sets, because label values
 * often come from clients (tags, topics) and an unbounded family would let
 * them grow the agent's memory and every scrape without limit.  Lookups past
 * the cap share one overflow child that is never rendered (its sum would
 * mix unrelated series) and are counted per family in
 * sluice_metrics_series_dropped_total, registered on the first drop so that
 * a healthy agent does not expose it.
 *
 * Published sets (metrics_set.c builds them) are rendered after the
 * families: each source holds one set, swapped whole under the mutex. */
#include "core/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics_text.h"

/* A series.  The sl_metric_t comes first so that callers hold a pointer to
 * it and the registry can turn it back into its child. */
typedef struct child {
  sl_metric_t m;
  struct child *next;  /* creation order: the order of rendering */
  struct child *hnext; /* the family's index chain */
  uint64_t hash;
  char *key; /* owned: the label values, each NUL-terminated, back to back */
} child_t;

struct sl_metric_family {
  sl_metrics_t *r;
  sl_metric_desc_t d; /* its pointers are borrowed (static storage) */
  size_t n_labels;
  size_t max_children;
  size_t n_children;
  child_t *head, **tail;
  /* Label sets are looked up by hash because callers may ask for a child
   * per event (a tag, a topic), under the registry's one mutex. */
  child_t **index;
  size_t index_size; /* 0 or a power of two */
  child_t *overflow; /* labelled families: the child past the cap */
  bool cap_logged;
  struct sl_metric_family *next;
};

struct sl_metrics_source {
  sl_metrics_t *r;
  sl_metrics_set_t *set; /* owned; under r->lock */
  bool *hidden;          /* per family of set: left out, its name is taken */
  struct sl_metrics_source *next;
};

struct sl_metrics {
  pthread_mutex_t lock;
  sl_metric_family_t *head, **tail;
  sl_metric_family_t *dropped; /* NULL until a family first overflows */
  sl_metrics_source_t *sources; /* in the order they were made */
};

static const char *const dropped_labels[] = {"family", NULL};
/* Its children are the families that overflowed, one each, so the number
 * of families bounds it and it needs no cap of its own: SIZE_MAX keeps it
 * from ever counting a drop into itself. */
static const sl_metric_desc_t dropped_desc = {
    .type = SL_METRIC_COUNTER,
    .name = "sluice_metrics_series_dropped_total",
    .help = "Label sets not created because their metric family reached its cap of children.",
    .labels = dropped_labels,
    .max_children = SIZE_MAX,
};

static uint64_t dbits(double v) {
  uint64_t u;
  memcpy(&u, &v, sizeof u);
  return u;
}

static double bitsd(uint64_t u) {
  double v;
  memcpy(&v, &u, sizeof v);
  return v;
}

/* Adds to a double kept as bits.  Relaxed: a metric orders nothing else. */
static void add_double(_Atomic uint64_t *a, double delta) {
  uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(a, &old, dbits(bitsd(old) + delta),
                                                memory_order_relaxed, memory_order_relaxed)) {
  }
}

void sl_gauge_set(sl_metric_t *m, double v) {
  atomic_store_explicit(&m->value, dbits(v), memory_order_relaxed);
}

void sl_gauge_add(sl_metric_t *m, double delta) {
  add_double(&m->value, delta);
}

double sl_gauge_get(const sl_metric_t *m) {
  return bitsd(atomic_load_explicit(&((sl_metric_t *)m)->value, memory_order_relaxed));
}

void sl_histogram_observe(sl_metric_t *m, double v) {
  size_t i = 0;
  while (i < m->n_buckets && !(v <= m->bounds[i])) i++; /* NaN lands in +Inf */
  atomic_fetch_add_explicit(&m->bucket[i], 1, memory_order_relaxed);
  add_double(&m->sum, v);
  atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
}

static void child_free(child_t *c) {
  if (!c) return;
  free(c->m.bucket);
  free(c->key);
  free(c);
}

/* A zeroed child with the family's buckets; NULL on ENOMEM. */
static child_t *child_new(const sl_metric_family_t *f) {
  child_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  atomic_init(&c->m.value, 0);
  atomic_init(&c->m.count, 0);
  atomic_init(&c->m.sum, dbits(0.0));
  if (f->d.type == SL_METRIC_HISTOGRAM) {
    c->m.bucket = calloc(f->d.n_buckets + 1, sizeof *c->m.bucket);
    if (!c->m.bucket) {
      free(c);
      return NULL;
    }
    for (size_t i = 0; i <= f->d.n_buckets; i++) atomic_init(&c->m.bucket[i], 0);
    c->m.bounds = f->d.buckets;
    c->m.n_buckets = f->d.n_buckets;
  }
  return c;
}

static void family_free(sl_metric_family_t *f) {
  if (!f) return;
  for (child_t *c = f->head, *next; c; c = next) {
    next = c->next;
    child_free(c);
  }
  child_free(f->overflow);
  free(f->index);
  free(f);
}

sl_metrics_t *sl_metrics_new(void) {
  sl_metrics_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  if (pthread_mutex_init(&r->lock, NULL) != 0) {
    free(r);
    return NULL;
  }
  r->tail = &r->head;
  return r;
}

static void source_clear(sl_metrics_source_t *src) {
  sl_metrics_set_free(src->set);
  free(src->hidden);
  src->set = NULL;
  src->hidden = NULL;
}

void sl_metrics_free(sl_metrics_t *r) {
  if (!r) return;
  for (sl_metrics_source_t *src = r->sources, *next; src; src = next) {
    next = src->next;
    source_clear(src);
    free(src);
  }
  for (sl_metric_family_t *f = r->head, *next; f; f = next) {
    next = f->next;
    family_free(f);
  }
  pthread_mutex_destroy(&r->lock);
  free(r);
}

static size_t count_labels(const char *const *labels) {
  size_t n = 0;
  while (labels && labels[n]) n++;
  return n;
}

/* Misuse found at registration is a bug in the caller, and carrying on
 * would expose metrics Prometheus rejects or silently merges. */
static void check_desc(const sl_metric_desc_t *d) {
  const char *bad = NULL;
  if (!sl_metrics_valid_name(d->name, true))
    bad = "invalid metric name";
  else if ((unsigned)d->type > SL_METRIC_HISTOGRAM)
    bad = "unknown type";
  else if (!d->help)
    bad = "no help text";
  else if (d->type == SL_METRIC_HISTOGRAM && d->n_buckets && !d->buckets)
    bad = "n_buckets without buckets";
  for (size_t i = 0; !bad && d->labels && d->labels[i]; i++)
    if (!sl_metrics_valid_name(d->labels[i], false) || strncmp(d->labels[i], "__", 2) == 0)
      bad = "invalid label name";
    else if (d->type == SL_METRIC_HISTOGRAM && strcmp(d->labels[i], "le") == 0)
      bad = "histograms reserve the label le";
  for (size_t i = 1; !bad && d->type == SL_METRIC_HISTOGRAM && i < d->n_buckets; i++)
    if (!(d->buckets[i - 1] < d->buckets[i])) bad = "bucket bounds not strictly ascending";
  if (bad) {
    sl_log(SL_LOG_ERROR, "metrics", "family %s: %s", d->name ? d->name : "(null)", bad);
    abort();
  }
}

/* Whether d describes the same series as the family already registered:
 * type, label names and (for histograms) bounds.  Help and cap may differ:
 * the first registration's are kept. */
static bool same_shape(const sl_metric_family_t *f, const sl_metric_desc_t *d) {
  if (f->d.type != d->type || f->n_labels != count_labels(d->labels)) return false;
  for (size_t i = 0; i < f->n_labels; i++)
    if (strcmp(f->d.labels[i], d->labels[i]) != 0) return false;
  if (d->type != SL_METRIC_HISTOGRAM) return true;
  if (f->d.n_buckets != d->n_buckets) return false;
  for (size_t i = 0; i < d->n_buckets; i++)
    if (f->d.buckets[i] != d->buckets[i]) return false;
  return true;
}

/* Caller holds r->lock.  NULL on ENOMEM; aborts on a conflicting shape. */
static sl_metric_family_t *family_locked(sl_metrics_t *r, const sl_metric_desc_t *d) {
  for (sl_metric_family_t *f = r->head; f; f = f->next) {
    if (strcmp(f->d.name, d->name) != 0) continue;
    if (!same_shape(f, d)) {
      sl_log(SL_LOG_ERROR, "metrics",
             "family %s registered again with another type, other labels or other buckets",
             d->name);
      abort();
    }
    return f;
  }
  sl_metric_family_t *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->r = r;
  f->d = *d;
  if (d->type != SL_METRIC_HISTOGRAM) {
    f->d.buckets = NULL;
    f->d.n_buckets = 0;
  }
  f->n_labels = count_labels(d->labels);
  f->max_children = d->max_children ? d->max_children : SL_METRIC_DEFAULT_MAX_CHILDREN;
  f->tail = &f->head;
  /* A family without labels is its one child, rendered from the start (a
   * scrape shows 0 rather than nothing); a labelled one needs its overflow
   * child now so that sl_metric_child never returns NULL. */
  child_t *c = child_new(f);
  if (!c) {
    free(f);
    return NULL;
  }
  if (f->n_labels) {
    f->overflow = c;
  } else {
    f->head = c;
    f->tail = &c->next;
    f->n_children = 1;
  }
  *r->tail = f;
  r->tail = &f->next;
  return f;
}

sl_metric_family_t *sl_metrics_family(sl_metrics_t *r, const sl_metric_desc_t *d) {
  check_desc(d);
  pthread_mutex_lock(&r->lock);
  sl_metric_family_t *f = family_locked(r, d);
  pthread_mutex_unlock(&r->lock);
  if (!f) {
    sl_log(SL_LOG_ERROR, "metrics", "family %s: out of memory", d->name);
    abort();
  }
  return f;
}

/* FNV-1a over the values and their terminating NULs, so ("ab","c") and
 * ("a","bc") differ. */
static uint64_t hash_values(const char *const *values, size_t n) {
  uint64_t h = 14695981039346656037ULL;
  for (size_t i = 0; i < n; i++) {
    const unsigned char *p = (const unsigned char *)values[i];
    do {
      h ^= *p;
      h *= 1099511628211ULL;
    } while (*p++);
  }
  return h;
}

static bool key_equal(const char *key, const char *const *values, size_t n) {
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(values[i]) + 1;
    if (memcmp(key, values[i], len) != 0) return false;
    key += len;
  }
  return true;
}

/* Doubles the index before it holds more children than chains.  A failed
 * growth keeps the old one: lookups stay correct, only chains get longer. */
static void index_grow(sl_metric_family_t *f) {
  if (f->n_children < f->index_size) return;
  size_t size = f->index_size ? f->index_size * 2 : 16;
  child_t **index = calloc(size, sizeof *index);
  if (!index) return;
  for (child_t *c = f->head; c; c = c->next) {
    size_t b = c->hash & (size - 1);
    c->hnext = index[b];
    index[b] = c;
  }
  free(f->index);
  f->index = index;
  f->index_size = size;
}

/* The child for values, created if the cap allows.  Caller holds the lock.
 * NULL past the cap or on ENOMEM. */
static child_t *find_or_add(sl_metric_family_t *f, const char *const *values) {
  uint64_t h = hash_values(values, f->n_labels);
  if (f->index_size)
    for (child_t *c = f->index[h & (f->index_size - 1)]; c; c = c->hnext)
      if (c->hash == h && key_equal(c->key, values, f->n_labels)) return c;
  if (f->n_children >= f->max_children) return NULL;

  index_grow(f);
  if (!f->index_size) return NULL; /* without an index no lookup would find it */
  size_t len = 0;
  for (size_t i = 0; i < f->n_labels; i++) len += strlen(values[i]) + 1;
  child_t *c = child_new(f);
  char *key = malloc(len);
  if (!c || !key) {
    child_free(c);
    free(key);
    return NULL;
  }
  char *p = key;
  for (size_t i = 0; i < f->n_labels; i++) {
    size_t n = strlen(values[i]) + 1;
    memcpy(p, values[i], n);
    p += n;
  }
  c->key = key;
  c->hash = h;
  size_t b = h & (f->index_size - 1);
  c->hnext = f->index[b];
  f->index[b] = c;
  *f->tail = c;
  f->tail = &c->next;
  f->n_children++;
  return c;
}

/* Caller holds the lock.  Counts a lookup that fell past f's cap. */
static void count_drop(sl_metric_family_t *f) {
  sl_metrics_t *r = f->r;
  if (!f->cap_logged) {
    f->cap_logged = true;
    sl_log(SL_LOG_WARN, "metrics",
           "family %s reached its cap of %zu children: new label sets are counted in %s and "
           "not exposed",
           f->d.name, f->max_children, dropped_desc.name);
  }
  if (f == r->dropped) return;
  if (!r->dropped) r->dropped = family_locked(r, &dropped_desc);
  if (!r->dropped) return; /* ENOMEM: the drop goes uncounted */
  const char *values[] = {f->d.name, NULL};
  child_t *c = find_or_add(r->dropped, values);
  if (c) sl_metric_inc(&c->m);
}

sl_metric_t *sl_metric_child(sl_metric_family_t *f, const char *const *values) {
  for (size_t i = 0; i < f->n_labels; i++)
    if (!values || !values[i]) {
      sl_log(SL_LOG_ERROR, "metrics", "family %s: %zu label values expected, fewer given",
             f->d.name, f->n_labels);
      abort();
    }
  pthread_mutex_lock(&f->r->lock);
  child_t *c = f->n_labels ? find_or_add(f, values) : f->head;
  if (!c) {
    c = f->overflow;
    count_drop(f);
  }
  pthread_mutex_unlock(&f->r->lock);
  return &c->m;
}

static sl_metric_t *unlabelled(sl_metrics_t *r, sl_metric_type_t type, const char *name,
                               const char *help) {
  sl_metric_desc_t d = {.type = type, .name = name, .help = help};
  return sl_metric_child(sl_metrics_family(r, &d), NULL);
}

sl_metric_t *sl_metrics_counter(sl_metrics_t *r, const char *name, const char *help) {
  return unlabelled(r, SL_METRIC_COUNTER, name, help);
}

sl_metric_t *sl_metrics_gauge(sl_metrics_t *r, const char *name, const char *help) {
  return unlabelled(r, SL_METRIC_GAUGE, name, help);
}

/* ---- Rendering ---- */

static int put_u64(sl_buf_t *b, uint64_t v) {
  char s[24];
  int n = snprintf(s, sizeof s, "%" PRIu64, v);
  return sl_buf_append(b, s, (size_t)n);
}

/* name+suffix, then {labels[,le="bound"]} when there is any label, then a
 * space: everything of a sample line but its value. */
static int put_series(sl_buf_t *b, const sl_metric_family_t *f, const child_t *c,
                      const char *suffix, const double *le) {
  if (sl_buf_puts(b, f->d.name) || sl_buf_puts(b, suffix)) return SL_ENOMEM;
  if (f->n_labels || le) {
    if (sl_buf_putc(b, '{')) return SL_ENOMEM;
    const char *v = c->key;
    for (size_t i = 0; i < f->n_labels; i++) {
      if ((i && sl_buf_putc(b, ',')) || sl_buf_puts(b, f->d.labels[i]) || sl_buf_puts(b, "=\"") ||
          sl_metrics_put_escaped(b, v, true) || sl_buf_putc(b, '"'))
        return SL_ENOMEM;
      v += strlen(v) + 1;
    }
    if (le && ((f->n_labels && sl_buf_putc(b, ',')) || sl_buf_puts(b, "le=\"") ||
               sl_metrics_put_double(b, *le) || sl_buf_putc(b, '"')))
      return SL_ENOMEM;
    if (sl_buf_putc(b, '}')) return SL_ENOMEM;
  }
  return sl_buf_putc(b, ' ');
}

/* _count is the total of the buckets as read here, not m.count, so that it
 * always equals the +Inf bucket as the format requires even while other
 * threads observe; _sum may be a few observations apart. */
static int put_histogram(sl_buf_t *b, const sl_metric_family_t *f, const child_t *c) {
  uint64_t cum = 0;
  static const double inf = INFINITY;
  for (size_t i = 0; i <= f->d.n_buckets; i++) {
    cum += atomic_load_explicit(&c->m.bucket[i], memory_order_relaxed);
    const double *le = i < f->d.n_buckets ? &f->d.buckets[i] : &inf;
    if (put_series(b, f, c, "_bucket", le) || put_u64(b, cum) || sl_buf_putc(b, '\n'))
      return SL_ENOMEM;
  }
  double sum = bitsd(atomic_load_explicit(&c->m.sum, memory_order_relaxed));
  if (put_series(b, f, c, "_sum", NULL) || sl_metrics_put_double(b, sum) || sl_buf_putc(b, '\n') ||
      put_series(b, f, c, "_count", NULL) || put_u64(b, cum) || sl_buf_putc(b, '\n'))
    return SL_ENOMEM;
  return 0;
}

static int put_family(sl_buf_t *b, const sl_metric_family_t *f) {
  if (sl_metrics_put_header(b, f->d.name, f->d.help, f->d.type)) return SL_ENOMEM;
  for (const child_t *c = f->head; c; c = c->next) {
    int e;
    if (f->d.type == SL_METRIC_HISTOGRAM) {
      e = put_histogram(b, f, c);
    } else {
      e = put_series(b, f, c, "", NULL);
      if (!e && f->d.type == SL_METRIC_COUNTER)
        e = f->d.per_unit > 1 ? sl_metrics_put_double(b, (double)sl_metric_get(&c->m) / (double)f->d.per_unit)
                              : put_u64(b, sl_metric_get(&c->m));
      if (!e && f->d.type == SL_METRIC_GAUGE) e = sl_metrics_put_double(b, sl_gauge_get(&c->m));
      if (!e) e = sl_buf_putc(b, '\n');
    }
    if (e) return SL_ENOMEM;
  }
  return 0;
}

/* Caller holds the lock.  Whether a family named `name` of type t would
 * clash with one of the registry's, or with one that another source than
 * `self` shows. */
static bool name_taken(const sl_metrics_t *r, const sl_metrics_source_t *self, const char *name,
                       sl_metric_type_t t) {
  for (const sl_metric_family_t *f = r->head; f; f = f->next)
    if (sl_metrics_names_clash(f->d.name, f->d.type, name, t)) return true;
  for (const sl_metrics_source_t *src = r->sources; src; src = src->next) {
    if (src == self) continue;
    for (size_t i = 0; i < sl_metrics_set_nfamilies(src->set); i++) {
      sl_metric_type_t ti;
      const char *ni = sl_metrics_set_family_name(src->set, i, &ti);
      if (!src->hidden[i] && sl_metrics_names_clash(ni, ti, name, t)) return true;
    }
  }
  return false;
}

int sl_metrics_render(sl_metrics_t *r, sl_buf_t *out) {
  int e = 0;
  pthread_mutex_lock(&r->lock);
  for (const sl_metric_family_t *f = r->head; f && !e; f = f->next) e = put_family(out, f);
  /* A family of the registry's registered after a set was published may
   * clash with one of its families: the registry's wins. */
  for (const sl_metrics_source_t *src = r->sources; src && !e; src = src->next)
    for (size_t i = 0; i < sl_metrics_set_nfamilies(src->set) && !e; i++) {
      sl_metric_type_t t;
      const char *name = sl_metrics_set_family_name(src->set, i, &t);
      bool theirs = false;
      for (const sl_metric_family_t *f = r->head; f && !theirs; f = f->next)
        theirs = sl_metrics_names_clash(f->d.name, f->d.type, name, t);
      if (!src->hidden[i] && !theirs) e = sl_metrics_set_render_family(src->set, i, out);
    }
  pthread_mutex_unlock(&r->lock);
  return e;
}

/* ---- Sources of published sets ---- */

sl_metrics_source_t *sl_metrics_source_new(sl_metrics_t *r) {
  sl_metrics_source_t *src = calloc(1, sizeof *src);
  if (!src) return NULL;
  src->r = r;
  pthread_mutex_lock(&r->lock);
  sl_metrics_source_t **at = &r->sources;
  while (*at) at = &(*at)->next;
  *at = src;
  pthread_mutex_unlock(&r->lock);
  return src;
}

int sl_metrics_source_publish(sl_metrics_source_t *src, sl_metrics_set_t *set, char *clash, size_t len) {
  size_t n = sl_metrics_set_nfamilies(set);
  bool *hidden = calloc(n ? n : 1, sizeof *hidden);
  if (!hidden) { /* show nothing rather than what the owner meant to replace */
    sl_metrics_set_free(set);
    set = NULL;
    n = 0;
  }
  int left_out = 0;
  sl_metrics_t *r = src->r;
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < n; i++) {
    sl_metric_type_t t;
    const char *name = sl_metrics_set_family_name(set, i, &t);
    if (!(hidden[i] = name_taken(r, src, name, t))) continue;
    if (!left_out++ && clash && len) snprintf(clash, len, "%s", name);
  }
  sl_metrics_set_t *old = src->set;
  bool *old_hidden = src->hidden;
  src->set = set;
  src->hidden = hidden;
  pthread_mutex_unlock(&r->lock);
  sl_metrics_set_free(old);
  free(old_hidden);
  return left_out;
}

void sl_metrics_source_free(sl_metrics_source_t *src) {
  if (!src) return;
  sl_metrics_t *r = src->r;
  pthread_mutex_lock(&r->lock);
  for (sl_metrics_source_t **at = &r->sources; *at; at = &(*at)->next)
    if (*at == src) {
      *at = src->next;
      break;
    }
  pthread_mutex_unlock(&r->lock);
  source_clear(src);
  free(src);
}
