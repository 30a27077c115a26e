/* The HyperLogLogs' shared storage: the sparse list, its switch to dense
 * registers, merges, and Ertl's estimator (see hll_store.h).  Pure; one
 * thread per store. */
#include "jobs/hll_store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static uint32_t *entries(sl_hll_store_t *s) {
  return s->cap ? s->u.sparse : s->u.inl;
}

const uint32_t *sl_hll_store_entries(const sl_hll_store_t *s) {
  return s->cap ? s->u.sparse : s->u.inl;
}

void sl_hll_store_free(sl_hll_store_t *s) {
  if (!s) return;
  if (s->is_dense)
    free(s->u.dense);
  else if (s->cap)
    free(s->u.sparse);
  memset(s, 0, sizeof *s);
}

/* Makes room for `want` (<= sparse_max) sparse entries. */
static int reserve(const sl_hll_layout_t *l, sl_hll_store_t *s, uint32_t want) {
  if ((want <= 2 && !s->cap) || want <= s->cap) return 0;
  uint32_t cap = s->cap ? s->cap : 2;
  while (cap < want) cap *= 2;
  if (cap > l->sparse_max) cap = l->sparse_max;
  uint32_t *p = s->cap ? realloc(s->u.sparse, cap * sizeof *p) : malloc(cap * sizeof *p);
  if (!p) return SL_ENOMEM;
  if (!s->cap) memcpy(p, s->u.inl, s->n * sizeof *p);
  s->u.sparse = p;
  s->cap = (uint16_t)cap;
  return 0;
}

int sl_hll_store_to_dense(const sl_hll_layout_t *l, sl_hll_store_t *s, const uint32_t *e, uint32_t n) {
  uint8_t *reg = calloc(l->m, 1);
  if (!reg) return SL_ENOMEM;
  l->fill(reg, sl_hll_store_entries(s), s->n);
  l->fill(reg, e, n);
  if (s->cap) free(s->u.sparse);
  s->u.dense = reg;
  s->n = s->cap = 0;
  s->is_dense = 1;
  return 0;
}

/* First position in e[0..n) whose key is >= key. */
static uint32_t find(const uint32_t *e, uint32_t n, uint32_t key) {
  uint32_t lo = 0, hi = n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (e[mid] >> SL_HLL_RANK_BITS < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

int sl_hll_store_add(const sl_hll_layout_t *l, sl_hll_store_t *s, uint32_t e) {
  if (s->is_dense) {
    l->fill(s->u.dense, &e, 1);
    return 0;
  }
  uint32_t key = e >> SL_HLL_RANK_BITS, *v = entries(s);
  uint32_t at = find(v, s->n, key);
  if (at < s->n && v[at] >> SL_HLL_RANK_BITS == key) {
    if (e > v[at]) v[at] = e; /* same key: the larger rank wins */
    return 0;
  }
  if (s->n == l->sparse_max) return sl_hll_store_to_dense(l, s, &e, 1);
  int r = reserve(l, s, s->n + 1);
  if (r) return r;
  v = entries(s);
  memmove(v + at + 1, v + at, (s->n - at) * sizeof *v);
  v[at] = e;
  s->n++;
  return 0;
}

int sl_hll_store_set_entries(const sl_hll_layout_t *l, sl_hll_store_t *s, const uint32_t *e, uint32_t n) {
  int r = reserve(l, s, n);
  if (r) return r;
  memcpy(entries(s), e, n * sizeof *e);
  s->n = n;
  return 0;
}

/* Union of two sorted entry lists into out (room for na + nb); returns the
 * count.  out may not alias either input. */
static uint32_t sparse_union(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb, uint32_t *out) {
  uint32_t i = 0, j = 0, n = 0;
  while (i < na || j < nb) {
    if (j == nb || (i < na && a[i] >> SL_HLL_RANK_BITS < b[j] >> SL_HLL_RANK_BITS)) {
      out[n++] = a[i++];
    } else if (i == na || b[j] >> SL_HLL_RANK_BITS < a[i] >> SL_HLL_RANK_BITS) {
      out[n++] = b[j++];
    } else {
      out[n++] = a[i] > b[j] ? a[i] : b[j];
      i++;
      j++;
    }
  }
  return n;
}

int sl_hll_store_merge(const sl_hll_layout_t *l, sl_hll_store_t *dst, const sl_hll_store_t *src) {
  if (src == dst || (!src->is_dense && !src->n)) return 0;
  if (dst->is_dense) {
    if (!src->is_dense) {
      l->fill(dst->u.dense, sl_hll_store_entries(src), src->n);
      return 0;
    }
    for (uint32_t i = 0; i < l->m; i++)
      if (src->u.dense[i] > dst->u.dense[i]) dst->u.dense[i] = src->u.dense[i];
    return 0;
  }
  if (src->is_dense) {
    uint8_t *reg = malloc(l->m);
    if (!reg) return SL_ENOMEM;
    memcpy(reg, src->u.dense, l->m);
    l->fill(reg, sl_hll_store_entries(dst), dst->n);
    if (dst->cap) free(dst->u.sparse);
    dst->u.dense = reg;
    dst->n = dst->cap = 0;
    dst->is_dense = 1;
    return 0;
  }
  /* Both sparse: the union decides the encoding, as one pass would. */
  uint32_t stack[64], total = dst->n + src->n;
  uint32_t *tmp = total <= 64 ? stack : malloc(total * sizeof *tmp);
  if (!tmp) return SL_ENOMEM;
  uint32_t n = sparse_union(sl_hll_store_entries(dst), dst->n, sl_hll_store_entries(src), src->n, tmp);
  int r;
  if (n > l->sparse_max) {
    uint8_t *reg = calloc(l->m, 1);
    r = reg ? 0 : SL_ENOMEM;
    if (reg) {
      l->fill(reg, tmp, n);
      sl_hll_store_free(dst);
      dst->u.dense = reg;
      dst->is_dense = 1;
    }
  } else {
    r = sl_hll_store_set_entries(l, dst, tmp, n);
  }
  if (tmp != stack) free(tmp);
  return r;
}

size_t sl_hll_store_heap_bytes(const sl_hll_layout_t *l, const sl_hll_store_t *s) {
  if (s->is_dense) return l->m;
  return (size_t)s->cap * sizeof(uint32_t);
}

/* ---- Ertl 2017, algorithm 6 ------------------------------------------------ */

static double sigma(double x) {
  if (x == 1) return INFINITY;
  double y = 1, z = x, prev;
  do {
    x *= x;
    prev = z;
    z += x * y;
    y += y;
  } while (z != prev);
  return z;
}

static double tau(double x) {
  if (x == 0 || x == 1) return 0;
  double y = 1, z = 1 - x, prev;
  do {
    x = sqrt(x);
    prev = z;
    y *= 0.5;
    z -= (1 - x) * (1 - x) * y;
  } while (z != prev);
  return z / 3;
}

double sl_hll_ertl_z(const uint32_t *c, int q, double m) {
  double z = m * tau((m - c[q + 1]) / m);
  for (int k = q; k >= 1; k--) z = 0.5 * (z + c[k]);
  return z + m * sigma(c[0] / m);
}
