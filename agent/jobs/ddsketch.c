/* DDSketch: the two bucket stores, collapsing, merge, quantiles and the byte
 * format (see ddsketch.h for the algorithm and the bound).  Pure; one thread
 * per sketch.
 *
 * A store is a sorted array of (bucket index, count) over the non-empty
 * buckets only, not a dense range: a job keeps a sketch per group key and
 * most keys see few values, which a dense range from the smallest to the
 * largest bucket would pay for with every bucket in between.  An update is a
 * binary search; only a bucket never seen before moves memory. */
#include "jobs/ddsketch.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "jobs/sketch_codec.h"

#define MAX_BINS_LIMIT (1u << 24)

static uint64_t *counts(const sl_dds_store_t *st) {
  return st->mem;
}
static int32_t *keys(const sl_dds_store_t *st) {
  return (int32_t *)((uint64_t *)st->mem + st->cap);
}

static void store_free(sl_dds_store_t *st) {
  free(st->mem);
  memset(st, 0, sizeof *st);
}

static int store_reserve(sl_dds_store_t *st, uint32_t want, uint32_t max_bins) {
  if (want <= st->cap) return 0;
  uint32_t cap = st->cap ? st->cap : 4;
  while (cap < want) cap *= 2;
  if (cap > max_bins) cap = max_bins;
  void *mem = malloc((size_t)cap * (sizeof(uint64_t) + sizeof(int32_t)));
  if (!mem) return SL_ENOMEM;
  if (st->n) {
    memcpy(mem, counts(st), st->n * sizeof(uint64_t));
    memcpy((uint64_t *)mem + cap, keys(st), st->n * sizeof(int32_t));
  }
  free(st->mem);
  st->mem = mem;
  st->cap = cap;
  return 0;
}

static uint32_t store_find(const sl_dds_store_t *st, int32_t key) {
  const int32_t *k = keys(st);
  uint32_t lo = 0, hi = st->n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (k[mid] < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Adds c to bucket key, collapsing the lowest buckets at the bound. */
static int store_add(sl_dds_store_t *st, int32_t key, uint64_t c, uint32_t max_bins) {
  uint32_t at = st->n ? store_find(st, key) : 0;
  if (at < st->n && keys(st)[at] == key) {
    counts(st)[at] += c;
    return 0;
  }
  if (st->n == max_bins) {
    uint64_t *cn = counts(st);
    if (at <= 1) {
      /* Below every kept bucket (at 0), the lowest absorbs it; just above
       * the lowest (at 1), it becomes the lowest and absorbs the old one. */
      cn[0] += c;
      if (at == 1) keys(st)[0] = key;
      return 0;
    }
    /* The lowest bucket drops into the next; the new one takes a place. */
    int32_t *k = keys(st);
    cn[1] += cn[0];
    memmove(cn, cn + 1, (at - 1) * sizeof *cn);
    memmove(k, k + 1, (at - 1) * sizeof *k);
    cn[at - 1] = c;
    k[at - 1] = key;
    return 0;
  }
  int r = store_reserve(st, st->n + 1, max_bins);
  if (r) return r;
  uint64_t *cn = counts(st);
  int32_t *k = keys(st);
  memmove(cn + at + 1, cn + at, (st->n - at) * sizeof *cn);
  memmove(k + at + 1, k + at, (st->n - at) * sizeof *k);
  cn[at] = c;
  k[at] = key;
  st->n++;
  return 0;
}

/* *out = a + b as a merge of the sorted arrays, then the collapse that one
 * pass would have made: keep the max_bins highest buckets, the lowest of
 * them absorbing the rest.  *out is a new store (zeroed on entry). */
static int store_union(const sl_dds_store_t *a, const sl_dds_store_t *b, uint32_t max_bins,
                       sl_dds_store_t *out) {
  uint32_t total = a->n + b->n;
  if (!total) return 0;
  uint64_t *oc = malloc((size_t)total * (sizeof(uint64_t) + sizeof(int32_t)));
  if (!oc) return SL_ENOMEM;
  int32_t *ok = (int32_t *)(oc + total);
  const uint64_t *ac = counts(a), *bc = counts(b);
  const int32_t *ak = keys(a), *bk = keys(b);
  uint32_t i = 0, j = 0, n = 0;
  while (i < a->n || j < b->n) {
    if (j == b->n || (i < a->n && ak[i] < bk[j])) {
      ok[n] = ak[i];
      oc[n++] = ac[i++];
    } else if (i == a->n || bk[j] < ak[i]) {
      ok[n] = bk[j];
      oc[n++] = bc[j++];
    } else {
      ok[n] = ak[i];
      oc[n++] = ac[i++] + bc[j++];
    }
  }
  uint32_t drop = 0;
  if (n > max_bins) {
    drop = n - max_bins;
    for (uint32_t d = 0; d < drop; d++) oc[drop] += oc[d];
    n = max_bins;
  }
  int r = store_reserve(out, n, max_bins);
  if (!r) {
    memcpy(counts(out), oc + drop, n * sizeof *oc);
    memcpy(keys(out), ok + drop, n * sizeof *ok);
    out->n = n;
  }
  free(oc);
  return r;
}

int sl_dds_init(sl_dds_t *s, double alpha, uint32_t max_bins) {
  memset(s, 0, sizeof *s);
  if (!(alpha >= 1e-6 && alpha <= 0.5) || max_bins < 2 || max_bins > MAX_BINS_LIMIT)
    return SL_ERANGE;
  s->alpha = alpha;
  s->inv_ln_gamma = 1 / log1p(2 * alpha / (1 - alpha));
  s->max_bins = max_bins;
  return 0;
}

void sl_dds_free(sl_dds_t *s) {
  if (!s) return;
  store_free(&s->pos);
  store_free(&s->neg);
  s->zero = s->count = 0;
  s->min = s->max = 0;
}

static int32_t bucket_of(const sl_dds_t *s, double mag) {
  return (int32_t)ceil(log(mag) * s->inv_ln_gamma);
}

/* The value a bucket answers: 2 gamma^i / (gamma + 1). */
static double bucket_value(const sl_dds_t *s, int32_t i) {
  double gamma = (1 + s->alpha) / (1 - s->alpha);
  return exp(i / s->inv_ln_gamma) * 2 / (gamma + 1);
}

int sl_dds_add(sl_dds_t *s, double x) {
  if (!isfinite(x)) return SL_ERANGE;
  double mag = fabs(x);
  if (x == 0) x = 0; /* -0.0 too: the minimum and maximum are +0.0 */
  if (mag < DBL_MIN) {
    s->zero++;
  } else {
    int r = store_add(x > 0 ? &s->pos : &s->neg, bucket_of(s, mag), 1, s->max_bins);
    if (r) return r;
  }
  if (!s->count || x < s->min) s->min = x;
  if (!s->count || x > s->max) s->max = x;
  s->count++;
  return 0;
}

int sl_dds_merge(sl_dds_t *dst, const sl_dds_t *src) {
  if (dst->alpha != src->alpha || dst->max_bins != src->max_bins) return -EINVAL;
  if (!src->count) return 0;
  /* Build the merged stores aside so that a failure leaves dst unchanged. */
  sl_dds_store_t pos = {0}, neg = {0};
  int r = store_union(&dst->pos, &src->pos, dst->max_bins, &pos);
  if (!r) r = store_union(&dst->neg, &src->neg, dst->max_bins, &neg);
  if (r) {
    store_free(&pos);
    store_free(&neg);
    return r;
  }
  store_free(&dst->pos);
  store_free(&dst->neg);
  dst->pos = pos;
  dst->neg = neg;
  if (!dst->count || src->min < dst->min) dst->min = src->min;
  if (!dst->count || src->max > dst->max) dst->max = src->max;
  dst->zero += src->zero;
  dst->count += src->count;
  return 0;
}

int sl_dds_quantile(const sl_dds_t *s, double q, double *out) {
  if (!(q >= 0 && q <= 1)) return SL_ERANGE;
  if (!s->count) return -ENODATA;
  uint64_t rank = (uint64_t)(q * (double)(s->count - 1));
  if (rank >= s->count - 1) rank = s->count - 1;
  if (rank == 0) {
    *out = s->min;
    return 0;
  }
  if (rank == s->count - 1) {
    *out = s->max;
    return 0;
  }
  /* Sorted order: negative buckets by decreasing magnitude, zeros, then
   * positive buckets by increasing magnitude. */
  uint64_t seen = 0;
  double v = 0;
  const uint64_t *nc = counts(&s->neg);
  const int32_t *nk = keys(&s->neg);
  int found = 0;
  for (uint32_t i = s->neg.n; i-- > 0 && !found;) {
    seen += nc[i];
    if (seen > rank) {
      v = -bucket_value(s, nk[i]);
      found = 1;
    }
  }
  if (!found) {
    seen += s->zero;
    if (seen > rank) found = 1; /* v stays 0 */
  }
  const uint64_t *pc = counts(&s->pos);
  const int32_t *pk = keys(&s->pos);
  for (uint32_t i = 0; i < s->pos.n && !found; i++) {
    seen += pc[i];
    if (seen > rank) {
      v = bucket_value(s, pk[i]);
      found = 1;
    }
  }
  if (v < s->min) v = s->min;
  if (v > s->max) v = s->max;
  *out = v;
  return 0;
}

/* gamma^i: the upper bound of bucket i's magnitudes. */
static double bucket_bound(const sl_dds_t *s, int32_t i) { return exp(i / s->inv_ln_gamma); }

size_t sl_dds_bins(const sl_dds_t *s, sl_dds_bin_t *out, size_t max) {
  size_t n = 0;
  const uint64_t *nc = counts(&s->neg);
  const int32_t *nk = keys(&s->neg);
  for (uint32_t i = s->neg.n; i-- > 0; n++) {
    bool absorbs = i == 0 && s->neg.n == s->max_bins;
    if (n < max)
      out[n] = (sl_dds_bin_t){-bucket_bound(s, nk[i]), absorbs ? 0 : -bucket_bound(s, nk[i] - 1), nc[i]};
  }
  if (s->zero) {
    if (n < max) out[n] = (sl_dds_bin_t){0, 0, s->zero};
    n++;
  }
  const uint64_t *pc = counts(&s->pos);
  const int32_t *pk = keys(&s->pos);
  for (uint32_t i = 0; i < s->pos.n; i++, n++) {
    bool absorbs = i == 0 && s->pos.n == s->max_bins;
    if (n < max) out[n] = (sl_dds_bin_t){absorbs ? 0 : bucket_bound(s, pk[i] - 1), bucket_bound(s, pk[i]), pc[i]};
  }
  return n;
}

size_t sl_dds_buckets(const sl_dds_t *s) {
  return (size_t)s->pos.n + s->neg.n;
}

size_t sl_dds_heap_bytes(const sl_dds_t *s) {
  return ((size_t)s->pos.cap + s->neg.cap) * (sizeof(uint64_t) + sizeof(int32_t));
}

#define FORMAT_VERSION 1

static int store_serialize(const sl_dds_store_t *st, sl_buf_t *out) {
  int r = sl_codec_put_varint(out, st->n);
  int64_t prev = 0;
  for (uint32_t i = 0; i < st->n && !r; i++) {
    r = sl_codec_put_varint(out, sl_codec_zigzag((int64_t)keys(st)[i] - prev));
    if (!r) r = sl_codec_put_varint(out, counts(st)[i]);
    prev = keys(st)[i];
  }
  return r;
}

int sl_dds_serialize(const sl_dds_t *s, sl_buf_t *out) {
  uint8_t head[2] = {'D', FORMAT_VERSION};
  int r = sl_buf_append(out, head, sizeof head);
  if (!r) r = sl_codec_put_double(out, s->alpha);
  if (!r) r = sl_codec_put_varint(out, s->max_bins);
  if (!r) r = sl_codec_put_varint(out, s->zero);
  if (!r) r = sl_codec_put_double(out, s->min);
  if (!r) r = sl_codec_put_double(out, s->max);
  if (!r) r = store_serialize(&s->pos, out);
  if (!r) r = store_serialize(&s->neg, out);
  return r;
}

/* Reads one store, checking what sl_dds_add could have produced: sorted
 * indices within the range of finite doubles, non-zero counts, and a total
 * that does not overflow. */
static int store_deserialize(sl_dds_t *s, sl_dds_store_t *st, const uint8_t *p, size_t len,
                             size_t *pos, uint64_t *total) {
  uint64_t n;
  int r = sl_codec_get_varint(p, len, pos, &n);
  if (r) return r;
  if (n > s->max_bins) return SL_EBADSTATE;
  r = store_reserve(st, (uint32_t)n, s->max_bins);
  if (r) return r;
  int64_t lo = bucket_of(s, DBL_MIN), hi = bucket_of(s, DBL_MAX);
  int64_t prev = 0;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t zz, c;
    r = sl_codec_get_varint(p, len, pos, &zz);
    if (!r) r = sl_codec_get_varint(p, len, pos, &c);
    if (r) return r;
    int64_t d = sl_codec_unzigzag(zz);
    if (d > hi - lo || d < lo - hi) return SL_EBADSTATE;
    int64_t key = prev + d;
    if (key < lo || key > hi || (i > 0 && key <= prev) || c == 0 || c > UINT64_MAX - *total)
      return SL_EBADSTATE;
    keys(st)[i] = (int32_t)key;
    counts(st)[i] = c;
    *total += c;
    prev = key;
    st->n = (uint32_t)i + 1;
  }
  return 0;
}

int sl_dds_deserialize(sl_dds_t *s, const void *data, size_t len, size_t *used) {
  const uint8_t *p = data;
  size_t pos = 2;
  double alpha, min, max;
  uint64_t max_bins, zero;
  memset(s, 0, sizeof *s);
  if (len < 2 || p[0] != 'D' || p[1] != FORMAT_VERSION) return SL_EBADSTATE;
  int r = sl_codec_get_double(p, len, &pos, &alpha);
  if (!r) r = sl_codec_get_varint(p, len, &pos, &max_bins);
  if (!r) r = sl_codec_get_varint(p, len, &pos, &zero);
  if (!r) r = sl_codec_get_double(p, len, &pos, &min);
  if (!r) r = sl_codec_get_double(p, len, &pos, &max);
  if (r) return r;
  if (max_bins > MAX_BINS_LIMIT || sl_dds_init(s, alpha, (uint32_t)max_bins)) {
    memset(s, 0, sizeof *s);
    return SL_EBADSTATE;
  }
  uint64_t total = zero;
  r = store_deserialize(s, &s->pos, p, len, &pos, &total);
  if (!r) r = store_deserialize(s, &s->neg, p, len, &pos, &total);
  if (r) goto fail;
  if (total ? !(isfinite(min) && isfinite(max) && min <= max) : (min != 0 || max != 0)) {
    r = SL_EBADSTATE;
    goto fail;
  }
  s->zero = zero;
  s->count = total;
  s->min = min;
  s->max = max;
  *used = pos;
  return 0;
fail:
  sl_dds_free(s);
  return r;
}
