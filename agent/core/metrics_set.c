/* Published sets of the metrics registry (metrics.h): their families and
 * samples, each sample rendered to exposition text as it is added, and the
 * exposition text both halves of the registry write.  A set is built by
 * one thread; once published it is only read, under the registry's mutex
 * (metrics.c).
 *
 * Why samples are checked here rather than trusted: a set is filled from
 * run-time data (a job's group keys, a plugin's choice of names), and one
 * malformed line makes Prometheus drop the whole scrape, the agent's own
 * metrics with it.  So names are checked, a label set that repeats is
 * refused (two series with one identity are also a failed scrape), and
 * label values are escaped and made valid UTF-8. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "core/metrics_text.h"

/* ---- exposition text ---- */

bool sl_metrics_valid_name(const char *s, bool colon) {
  if (!s || !*s || (*s >= '0' && *s <= '9')) return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
          (colon && *s == ':')))
      return false;
  return true;
}

int sl_metrics_put_double(sl_buf_t *b, double v) {
  char s[32];
  if (isnan(v)) return sl_buf_puts(b, "NaN");
  if (isinf(v)) return sl_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
  if (v == 0) return sl_buf_putc(b, '0'); /* and not "-0" */
  if (v > -0x1p53 && v < 0x1p53 && v == (double)(int64_t)v) {
    snprintf(s, sizeof s, "%" PRId64, (int64_t)v);
  } else {
    for (int prec = 15; prec <= 17; prec++) {
      snprintf(s, sizeof s, "%.*g", prec, v);
      if (strtod(s, NULL) == v) break;
    }
  }
  return sl_buf_puts(b, s);
}

int sl_metrics_put_escaped(sl_buf_t *b, const char *s, bool quote) {
  for (; *s; s++) {
    int e;
    if (*s == '\\')
      e = sl_buf_puts(b, "\\\\");
    else if (*s == '\n')
      e = sl_buf_puts(b, "\\n");
    else if (*s == '"' && quote)
      e = sl_buf_puts(b, "\\\"");
    else
      e = sl_buf_putc(b, *s);
    if (e) return e;
  }
  return 0;
}

static const char *const type_names[] = {"counter", "gauge", "histogram"};

int sl_metrics_put_header(sl_buf_t *b, const char *name, const char *help, sl_metric_type_t type) {
  if (sl_buf_puts(b, "# HELP ") || sl_buf_puts(b, name) || sl_buf_putc(b, ' ') ||
      sl_metrics_put_escaped(b, help, false) || sl_buf_puts(b, "\n# TYPE ") || sl_buf_puts(b, name) ||
      sl_buf_putc(b, ' ') || sl_buf_puts(b, type_names[type]) || sl_buf_putc(b, '\n'))
    return SL_ENOMEM;
  return 0;
}

static bool is_suffixed(const char *full, const char *base) {
  static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
  size_t n = strlen(base);
  if (strncmp(full, base, n) != 0) return false;
  for (size_t i = 0; i < 3; i++)
    if (strcmp(full + n, suffixes[i]) == 0) return true;
  return false;
}

bool sl_metrics_names_clash(const char *a, sl_metric_type_t ta, const char *b, sl_metric_type_t tb) {
  if (strcmp(a, b) == 0) return true;
  return (ta == SL_METRIC_HISTOGRAM && is_suffixed(b, a)) || (tb == SL_METRIC_HISTOGRAM && is_suffixed(a, b));
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p) {
  if (p[0] < 0x80) return 1;
  if (p[0] >= 0xc2 && p[0] <= 0xdf) return (p[1] & 0xc0) == 0x80 ? 2 : 0;
  if (p[0] >= 0xe0 && p[0] <= 0xef) {
    unsigned lo = p[0] == 0xe0 ? 0xa0 : 0x80, hi = p[0] == 0xed ? 0x9f : 0xbf;
    return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
  }
  if (p[0] >= 0xf0 && p[0] <= 0xf4) {
    unsigned lo = p[0] == 0xf0 ? 0x90 : 0x80, hi = p[0] == 0xf4 ? 0x8f : 0xbf;
    return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
  }
  return 0;
}

/* A label value: escaped as put_escaped does, each byte that starts no
 * well-formed UTF-8 sequence written as U+FFFD. */
static int put_label_value(sl_buf_t *b, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    size_t n = utf8_len(p);
    int e;
    if (!n) {
      e = sl_buf_puts(b, "\xef\xbf\xbd");
      n = 1;
    } else if (*p == '\\' || *p == '\n' || *p == '"') {
      e = sl_buf_puts(b, *p == '\\' ? "\\\\" : *p == '\n' ? "\\n" : "\\\"");
    } else {
      e = sl_buf_append(b, p, n);
    }
    if (e) return e;
    p += n;
  }
  return 0;
}

/* ---- sets ---- */

typedef struct {
  sl_metric_type_t type;
  char *name, *help; /* owned */
  sl_buf_t text;     /* the samples' lines */
  size_t n_samples;
  /* Hashes of the label sets added, open addressing (0: an empty slot), so
   * that a repeated label set is refused in constant time. */
  uint64_t *seen;
  size_t seen_cap; /* 0 or a power of two */
} set_family_t;

struct sl_metrics_set {
  set_family_t *fams;
  size_t n, cap;
  size_t samples;
};

sl_metrics_set_t *sl_metrics_set_new(void) { return calloc(1, sizeof(sl_metrics_set_t)); }

void sl_metrics_set_free(sl_metrics_set_t *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n; i++) {
    free(s->fams[i].name);
    free(s->fams[i].help);
    sl_buf_free(&s->fams[i].text);
    free(s->fams[i].seen);
  }
  free(s->fams);
  free(s);
}

size_t sl_metrics_set_samples(const sl_metrics_set_t *s) { return s ? s->samples : 0; }
size_t sl_metrics_set_nfamilies(const sl_metrics_set_t *s) { return s ? s->n : 0; }

const char *sl_metrics_set_family_name(const sl_metrics_set_t *s, size_t i, sl_metric_type_t *type) {
  *type = s->fams[i].type;
  return s->fams[i].name;
}

int sl_metrics_set_render_family(const sl_metrics_set_t *s, size_t i, sl_buf_t *out) {
  const set_family_t *f = &s->fams[i];
  if (sl_metrics_put_header(out, f->name, f->help, f->type)) return SL_ENOMEM;
  return sl_buf_append(out, f->text.data, f->text.len);
}

int sl_metrics_set_family(sl_metrics_set_t *s, sl_metric_type_t type, const char *name, const char *help) {
  if ((unsigned)type > SL_METRIC_HISTOGRAM || !sl_metrics_valid_name(name, true) || !help) return -EINVAL;
  for (size_t i = 0; i < s->n; i++) {
    if (strcmp(s->fams[i].name, name) == 0 && s->fams[i].type == type) return (int)i;
    if (sl_metrics_names_clash(s->fams[i].name, s->fams[i].type, name, type)) return -EEXIST;
  }
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 8;
    set_family_t *f = realloc(s->fams, cap * sizeof *f);
    if (!f) return SL_ENOMEM;
    s->fams = f;
    s->cap = cap;
  }
  set_family_t f = {.type = type, .name = strdup(name), .help = strdup(help)};
  if (!f.name || !f.help) {
    free(f.name);
    free(f.help);
    return SL_ENOMEM;
  }
  s->fams[s->n] = f;
  return (int)s->n++;
}

static uint64_t mix(uint64_t h) { /* splitmix64's finaliser */
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

/* FNV-1a of each name and value with their NULs, summed over the labels so
 * that their order does not matter; never 0 (the empty slot). */
static uint64_t labels_hash(const sl_metric_label_t *l, size_t n) {
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t h = 14695981039346656037ULL;
    for (int part = 0; part < 2; part++) {
      const unsigned char *p = (const unsigned char *)(part ? l[i].value : l[i].name);
      do {
        h ^= *p;
        h *= 1099511628211ULL;
      } while (*p++);
    }
    sum += mix(h);
  }
  sum = mix(sum);
  return sum ? sum : 1;
}

static bool seen_has(const set_family_t *f, uint64_t h) {
  for (size_t i = h & (f->seen_cap - 1); f->seen_cap && f->seen[i]; i = (i + 1) & (f->seen_cap - 1))
    if (f->seen[i] == h) return true;
  return false;
}

static void seen_put(uint64_t *slots, size_t cap, uint64_t h) {
  size_t i = h & (cap - 1);
  while (slots[i]) i = (i + 1) & (cap - 1);
  slots[i] = h;
}

/* Room for one more hash, the table kept at most half full. */
static int seen_reserve(set_family_t *f) {
  if ((f->n_samples + 1) * 2 <= f->seen_cap) return 0;
  size_t cap = f->seen_cap ? f->seen_cap * 2 : 16;
  uint64_t *slots = calloc(cap, sizeof *slots);
  if (!slots) return SL_ENOMEM;
  for (size_t i = 0; i < f->seen_cap; i++)
    if (f->seen[i]) seen_put(slots, cap, f->seen[i]);
  free(f->seen);
  f->seen = slots;
  f->seen_cap = cap;
  return 0;
}

static bool labels_valid(const sl_metric_label_t *l, size_t n, bool histogram) {
  for (size_t i = 0; i < n; i++) {
    if (!sl_metrics_valid_name(l[i].name, false) || !strncmp(l[i].name, "__", 2) || !l[i].value ||
        (histogram && !strcmp(l[i].name, "le")))
      return false;
    for (size_t j = 0; j < i; j++)
      if (!strcmp(l[i].name, l[j].name)) return false;
  }
  return true;
}

/* name+suffix{labels[,le="bound"]} and a space: a sample line but its
 * value. */
static int put_sample_head(sl_buf_t *b, const char *name, const char *suffix, const sl_metric_label_t *l,
                           size_t n, const double *le) {
  if (sl_buf_puts(b, name) || sl_buf_puts(b, suffix)) return SL_ENOMEM;
  if (n || le) {
    if (sl_buf_putc(b, '{')) return SL_ENOMEM;
    for (size_t i = 0; i < n; i++)
      if ((i && sl_buf_putc(b, ',')) || sl_buf_puts(b, l[i].name) || sl_buf_puts(b, "=\"") ||
          put_label_value(b, l[i].value) || sl_buf_putc(b, '"'))
        return SL_ENOMEM;
    if (le && ((n && sl_buf_putc(b, ',')) || sl_buf_puts(b, "le=\"") || sl_metrics_put_double(b, *le) ||
               sl_buf_putc(b, '"')))
      return SL_ENOMEM;
    if (sl_buf_putc(b, '}')) return SL_ENOMEM;
  }
  return sl_buf_putc(b, ' ');
}

static int put_u64_line(sl_buf_t *b, uint64_t v) {
  char s[24];
  int n = snprintf(s, sizeof s, "%" PRIu64 "\n", v);
  return sl_buf_append(b, s, (size_t)n);
}

static int put_histogram(sl_buf_t *b, const char *name, const sl_metric_label_t *l, size_t n,
                         const double *bounds, const uint64_t *cum, size_t nb, double sum) {
  static const double inf = INFINITY;
  for (size_t i = 0; i <= nb; i++)
    if (put_sample_head(b, name, "_bucket", l, n, i < nb ? &bounds[i] : &inf) || put_u64_line(b, cum[i]))
      return SL_ENOMEM;
  if (put_sample_head(b, name, "_sum", l, n, NULL) || sl_metrics_put_double(b, sum) || sl_buf_putc(b, '\n') ||
      put_sample_head(b, name, "_count", l, n, NULL) || put_u64_line(b, cum[nb]))
    return SL_ENOMEM;
  return 0;
}

static bool histogram_valid(const double *bounds, const uint64_t *cum, size_t nb) {
  if (!cum || (nb && !bounds)) return false;
  for (size_t i = 0; i < nb; i++)
    if (!isfinite(bounds[i]) || (i && !(bounds[i - 1] < bounds[i])) || cum[i] > cum[i + 1]) return false;
  return true;
}

/* The part both kinds of sample share: checks, the line(s), the label set
 * remembered; the text is restored when anything fails. */
static int add_sample(sl_metrics_set_t *s, int family, bool histogram, const sl_metric_label_t *l, size_t n,
                      double v, const double *bounds, const uint64_t *cum, size_t nb) {
  if (family < 0 || (size_t)family >= s->n || (n && !l)) return -EINVAL;
  set_family_t *f = &s->fams[family];
  if ((f->type == SL_METRIC_HISTOGRAM) != histogram || !labels_valid(l, n, histogram)) return -EINVAL;
  if (histogram && !histogram_valid(bounds, cum, nb)) return -EINVAL;
  uint64_t h = labels_hash(l, n);
  if (seen_has(f, h)) return -EEXIST;
  if (seen_reserve(f)) return SL_ENOMEM;
  size_t len0 = f->text.len;
  int e = histogram ? put_histogram(&f->text, f->name, l, n, bounds, cum, nb, v)
                    : put_sample_head(&f->text, f->name, "", l, n, NULL) || sl_metrics_put_double(&f->text, v) ||
                          sl_buf_putc(&f->text, '\n');
  if (e) {
    f->text.len = len0;
    return SL_ENOMEM;
  }
  seen_put(f->seen, f->seen_cap, h);
  f->n_samples++;
  s->samples++;
  return 0;
}

int sl_metrics_set_value(sl_metrics_set_t *s, int family, const sl_metric_label_t *labels, size_t n_labels,
                         double v) {
  return add_sample(s, family, false, labels, n_labels, v, NULL, NULL, 0);
}

int sl_metrics_set_histogram(sl_metrics_set_t *s, int family, const sl_metric_label_t *labels, size_t n_labels,
                             const double *bounds, const uint64_t *cumulative, size_t n_bounds, double sum) {
  return add_sample(s, family, true, labels, n_labels, sum, bounds, cumulative, n_bounds);
}
