/* HyperLogLog for count_distinct: its hash, sparse entries and registers,
 * Ertl's estimator and the byte format (see hll.h for the choices; the
 * list and the registers are kept by hll_store.c).  Pure; one thread per
 * sketch.
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
#define RANK_BITS SL_HLL_RANK_BITS
#define RANK_MASK SL_HLL_RANK_MASK
#define SPARSE_RANK_MAX (64 - SL_HLL_SP + 1) /* 40 */
#define DENSE_RANK_MAX (64 - SL_HLL_P + 1)   /* 53 */

void sl_hll_init(sl_hll_t *h) {
  memset(h, 0, sizeof *h);
}

void sl_hll_free(sl_hll_t *h) {
  sl_hll_store_free(h);
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

static const sl_hll_layout_t layout = {.m = SL_HLL_M, .sparse_max = SL_HLL_SPARSE_MAX, .fill = fill_dense};

int sl_hll_add_hash(sl_hll_t *h, uint64_t hash) {
  return sl_hll_store_add(&layout, h, sparse_entry(hash));
}

int sl_hll_merge(sl_hll_t *dst, const sl_hll_t *src) {
  return sl_hll_store_merge(&layout, dst, src);
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
  return sl_hll_store_heap_bytes(&layout, h);
}

#define FORMAT_VERSION 1

int sl_hll_serialize(const sl_hll_t *h, sl_buf_t *out) {
  uint8_t head[5] = {'H', FORMAT_VERSION, SL_HLL_P, SL_HLL_SP, h->is_dense ? 1 : 0};
  int r = sl_buf_append(out, head, sizeof head);
  if (r) return r;
  if (h->is_dense) return sl_buf_append(out, h->u.dense, SL_HLL_M);
  r = sl_codec_put_varint(out, h->n);
  const uint32_t *e = sl_hll_store_entries(h);
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
  uint32_t e[SL_HLL_SPARSE_MAX];
  uint64_t prev = 0;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t d;
    r = sl_codec_get_varint(p, len, &pos, &d);
    if (r) return r;
    uint64_t v = prev + d;
    /* Strictly increasing fine indices, a rank in 1..40, 31 bits in all. */
    uint32_t rank = (uint32_t)(v & RANK_MASK);
    if (d > UINT32_MAX || v >> (SL_HLL_SP + RANK_BITS) || rank < 1 || rank > SPARSE_RANK_MAX ||
        (i > 0 && v >> RANK_BITS <= prev >> RANK_BITS))
      return SL_EBADSTATE;
    e[i] = (uint32_t)v;
    prev = v;
  }
  r = sl_hll_store_set_entries(&layout, h, e, (uint32_t)n);
  if (!r) *used = pos;
  return r;
}
