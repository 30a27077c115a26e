/* HyperLogLog: sparse and dense encodings, Ertl's estimator, merge and the
 * byte format (see hll.h for the choices).  Pure; one thread per sketch.
 *
 * A sparse entry is the hash's top 25 bits (the fine index) shifted left 6,
 * or'ed with the rank of the remaining 39 bits (leading zeros + 1, 40 when
 * all are zero).  Sorting the entries sorts them by fine index, and the dense
 * register an entry maps to follows from it alone: the register index is the
 * top 12 bits of the fine index, and the register's rank is read from the
 * fine index's low 13 bits when any is set, else it is 13 + the entry's rank.
 * So converting sparse to dense gives exactly the registers that adding the
 * same hashes to a dense sketch would. */
#include "jobs/hll.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/error.h"
#include "jobs/sketch_codec.h"

#define FINE_LOW_BITS (SL_HLL_SP - SL_HLL_P) /* 13 */
#define RANK_BITS 6
#define RANK_MASK ((1u << RANK_BITS) - 1)
#define SPARSE_RANK_MAX (64 - SL_HLL_SP + 1) /* 40 */
#define DENSE_RANK_MAX (64 - SL_HLL_P + 1)   /* 53 */

static uint32_t *entries(sl_hll_t *h) {
  return h->cap ? h->u.sparse : h->u.inl;
}
static const uint32_t *centries(const sl_hll_t *h) {
  return h->cap ? h->u.sparse : h->u.inl;
}

void sl_hll_init(sl_hll_t *h) {
  memset(h, 0, sizeof *h);
}

void sl_hll_free(sl_hll_t *h) {
  if (!h) return;
  if (h->is_dense)
    free(h->u.dense);
  else if (h->cap)
    free(h->u.sparse);
  sl_hll_init(h);
}

uint64_t sl_hll_hash(const void *p, size_t len) {
  return XXH3_64bits(p, len);
}

static uint32_t sparse_entry(uint64_t hash) {
  uint32_t fine = (uint32_t)(hash >> (64 - SL_HLL_SP));
  uint64_t rest = hash << SL_HLL_SP;
  uint32_t rank = rest ? (uint32_t)__builtin_clzll(rest) + 1 : SPARSE_RANK_MAX;
  return fine << RANK_BITS | rank;
}

static void entry_register(uint32_t e, uint32_t *idx, uint8_t *rank) {
  uint32_t fine = e >> RANK_BITS;
  uint32_t low = fine & ((1u << FINE_LOW_BITS) - 1);
  *idx = fine >> FINE_LOW_BITS;
  if (low)
    *rank = (uint8_t)(__builtin_clz(low) - (32 - FINE_LOW_BITS) + 1);
  else
    *rank = (uint8_t)(FINE_LOW_BITS + (e & RANK_MASK));
}

/* Raises reg to the registers that the n sparse entries e map to. */
static void fill_dense(uint8_t *reg, const uint32_t *e, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    uint32_t idx;
    uint8_t rank;
    entry_register(e[i], &idx, &rank);
    if (rank > reg[idx]) reg[idx] = rank;
  }
}

/* Builds the dense registers of h's sparse entries and switches h to them. */
static int to_dense(sl_hll_t *h) {
  uint8_t *reg = calloc(SL_HLL_M, 1);
  if (!reg) return SL_ENOMEM;
  fill_dense(reg, centries(h), h->n);
  if (h->cap) free(h->u.sparse);
  h->u.dense = reg;
  h->n = 0;
  h->cap = 0;
  h->is_dense = 1;
  return 0;
}

/* Makes room for `want` sparse entries (want <= SL_HLL_SPARSE_MAX). */
static int sparse_reserve(sl_hll_t *h, uint32_t want) {
  if (want <= 2 && !h->cap) return 0;
  if (want <= h->cap) return 0;
  uint32_t cap = h->cap ? h->cap : 2;
  while (cap < want) cap *= 2;
  if (cap > SL_HLL_SPARSE_MAX) cap = SL_HLL_SPARSE_MAX;
  uint32_t *p;
  if (h->cap) {
    p = realloc(h->u.sparse, cap * sizeof *p);
    if (!p) return SL_ENOMEM;
  } else {
    p = malloc(cap * sizeof *p);
    if (!p) return SL_ENOMEM;
    memcpy(p, h->u.inl, h->n * sizeof *p);
  }
  h->u.sparse = p;
  h->cap = (uint16_t)cap;
  return 0;
}

uint32_t sl_hll_sparse_find(const uint32_t *e, uint32_t n, uint32_t key) {
  uint32_t lo = 0, hi = n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (e[mid] >> RANK_BITS < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void dense_add(uint8_t *reg, uint64_t hash) {
  uint32_t idx = (uint32_t)(hash >> (64 - SL_HLL_P));
  uint64_t rest = hash << SL_HLL_P;
  uint8_t rank = rest ? (uint8_t)(__builtin_clzll(rest) + 1) : DENSE_RANK_MAX;
  if (rank > reg[idx]) reg[idx] = rank;
}

int sl_hll_add_hash(sl_hll_t *h, uint64_t hash) {
  if (h->is_dense) {
    dense_add(h->u.dense, hash);
    return 0;
  }
  uint32_t e = sparse_entry(hash), fine = e >> RANK_BITS;
  uint32_t *v = entries(h);
  uint32_t at = sl_hll_sparse_find(v, h->n, fine);
  if (at < h->n && v[at] >> RANK_BITS == fine) {
    if (e > v[at]) v[at] = e; /* same index: the larger rank wins */
    return 0;
  }
  if (h->n == SL_HLL_SPARSE_MAX) {
    int r = to_dense(h);
    if (r) return r;
    dense_add(h->u.dense, hash);
    return 0;
  }
  int r = sparse_reserve(h, h->n + 1);
  if (r) return r;
  v = entries(h);
  memmove(v + at + 1, v + at, (h->n - at) * sizeof *v);
  v[at] = e;
  h->n++;
  return 0;
}

uint32_t sl_hll_sparse_union(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb,
                             uint32_t *out) {
  uint32_t i = 0, j = 0, n = 0;
  while (i < na || j < nb) {
    if (j == nb || (i < na && a[i] >> RANK_BITS < b[j] >> RANK_BITS)) {
      out[n++] = a[i++];
    } else if (i == na || b[j] >> RANK_BITS < a[i] >> RANK_BITS) {
      out[n++] = b[j++];
    } else {
      out[n++] = a[i] > b[j] ? a[i] : b[j];
      i++;
      j++;
    }
  }
  return n;
}

int sl_hll_merge(sl_hll_t *dst, const sl_hll_t *src) {
  if (src == dst) return 0;
  if (!src->is_dense && src->n == 0) return 0;
  if (dst->is_dense) {
    if (src->is_dense) {
      for (uint32_t i = 0; i < SL_HLL_M; i++)
        if (src->u.dense[i] > dst->u.dense[i]) dst->u.dense[i] = src->u.dense[i];
    } else {
      fill_dense(dst->u.dense, centries(src), src->n);
    }
    return 0;
  }
  if (src->is_dense) {
    uint8_t *reg = malloc(SL_HLL_M);
    if (!reg) return SL_ENOMEM;
    memcpy(reg, src->u.dense, SL_HLL_M);
    fill_dense(reg, centries(dst), dst->n);
    if (dst->cap) free(dst->u.sparse);
    dst->u.dense = reg;
    dst->n = dst->cap = 0;
    dst->is_dense = 1;
    return 0;
  }
  /* Both sparse: the union decides the encoding, as one pass would. */
  uint32_t tmp_stack[64];
  uint32_t total = dst->n + src->n;
  uint32_t *tmp = total <= 64 ? tmp_stack : malloc(total * sizeof *tmp);
  if (!tmp) return SL_ENOMEM;
  uint32_t n = sl_hll_sparse_union(centries(dst), dst->n, centries(src), src->n, tmp);
  int r = 0;
  if (n > SL_HLL_SPARSE_MAX) {
    uint8_t *reg = calloc(SL_HLL_M, 1);
    if (!reg) {
      r = SL_ENOMEM;
      goto done;
    }
    fill_dense(reg, tmp, n);
    if (dst->cap) free(dst->u.sparse);
    dst->u.dense = reg;
    dst->n = dst->cap = 0;
    dst->is_dense = 1;
    goto done;
  }
  r = sparse_reserve(dst, n);
  if (r) goto done;
  memcpy(entries(dst), tmp, n * sizeof *tmp);
  dst->n = n;
done:
  if (tmp != tmp_stack) free(tmp);
  return r;
}

/* Ertl 2017, algorithm 6 ("improved raw estimator"). */
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

static double dense_estimate(const uint8_t *reg) {
  uint32_t c[DENSE_RANK_MAX + 1] = {0};
  for (uint32_t i = 0; i < SL_HLL_M; i++) c[reg[i]]++;
  const double m = SL_HLL_M;
  return m * m / (2 * M_LN2 * sl_hll_ertl_z(c, 64 - SL_HLL_P, m));
}

double sl_hll_estimate(const sl_hll_t *h) {
  if (h->is_dense) return dense_estimate(h->u.dense);
  /* Linear counting over the 2^25 fine buckets. */
  const double mp = (double)(1u << SL_HLL_SP);
  return -mp * log1p(-(double)h->n / mp);
}

size_t sl_hll_heap_bytes(const sl_hll_t *h) {
  if (h->is_dense) return SL_HLL_M;
  return (size_t)h->cap * sizeof(uint32_t);
}

#define FORMAT_VERSION 1

int sl_hll_serialize(const sl_hll_t *h, sl_buf_t *out) {
  uint8_t head[5] = {'H', FORMAT_VERSION, SL_HLL_P, SL_HLL_SP, h->is_dense ? 1 : 0};
  int r = sl_buf_append(out, head, sizeof head);
  if (r) return r;
  if (h->is_dense) return sl_buf_append(out, h->u.dense, SL_HLL_M);
  r = sl_codec_put_varint(out, h->n);
  const uint32_t *e = centries(h);
  uint32_t prev = 0;
  for (uint32_t i = 0; i < h->n && !r; i++) {
    r = sl_codec_put_varint(out, e[i] - prev);
    prev = e[i];
  }
  return r;
}

int sl_hll_deserialize(sl_hll_t *h, const void *data, size_t len, size_t *used) {
  const uint8_t *p = data;
  size_t pos = 5;
  sl_hll_init(h);
  if (len < 5 || p[0] != 'H' || p[1] != FORMAT_VERSION || p[2] != SL_HLL_P || p[3] != SL_HLL_SP ||
      p[4] > 1)
    return SL_EBADSTATE;
  if (p[4] == 1) {
    if (len - pos < SL_HLL_M) return SL_EBADSTATE;
    for (uint32_t i = 0; i < SL_HLL_M; i++)
      if (p[pos + i] > DENSE_RANK_MAX) return SL_EBADSTATE;
    uint8_t *reg = malloc(SL_HLL_M);
    if (!reg) return SL_ENOMEM;
    memcpy(reg, p + pos, SL_HLL_M);
    h->u.dense = reg;
    h->is_dense = 1;
    *used = pos + SL_HLL_M;
    return 0;
  }
  uint64_t n;
  int r = sl_codec_get_varint(p, len, &pos, &n);
  if (r) return r;
  if (n > SL_HLL_SPARSE_MAX) return SL_EBADSTATE;
  r = sparse_reserve(h, (uint32_t)n);
  if (r) return r;
  uint32_t *e = entries(h);
  uint64_t prev = 0;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t d;
    r = sl_codec_get_varint(p, len, &pos, &d);
    if (r) goto fail;
    uint64_t v = prev + d;
    /* Strictly increasing fine indices, a rank in 1..40, 31 bits in all. */
    uint32_t rank = (uint32_t)(v & RANK_MASK);
    if (d > UINT32_MAX || v >> (SL_HLL_SP + RANK_BITS) || rank < 1 || rank > SPARSE_RANK_MAX ||
        (i > 0 && v >> RANK_BITS <= prev >> RANK_BITS)) {
      r = SL_EBADSTATE;
      goto fail;
    }
    e[i] = (uint32_t)v;
    prev = v;
  }
  h->n = (uint32_t)n;
  *used = pos;
  return 0;
fail:
  sl_hll_free(h);
  return r;
}
