/* Redis's HyperLogLog: its hash, registers, estimate and string encodings
 * (see redis_hll.h for why it exists beside hll.c).  Pure; one thread per
 * sketch.
 *
 * Redis's string, as its PFADD, PFMERGE and PFCOUNT read it: "HYLL", one
 * byte of encoding (0 dense, 1 sparse), three unused bytes, and an 8-byte
 * little-endian cached count whose top bit marks it stale.  Dense: the 2^14
 * registers as six-bit fields, register i in bits [6i, 6i + 6) counting
 * from each byte's least significant bit.  Sparse: runs, each one opcode:
 *   00xxxxxx            ZERO:  xxxxxx + 1 registers (1..64) are 0
 *   01xxxxxx yyyyyyyy   XZERO: (xxxxxx yyyyyyyy) + 1 registers (1..16384) are 0
 *   1vvvvvxx            VAL:   xx + 1 registers (1..4) hold vvvvv + 1 (1..32)
 * that together cover the 2^14 registers exactly. */
#include "jobs/redis_hll.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define RANK_BITS SL_HLL_RANK_BITS
#define RANK_MASK SL_HLL_RANK_MASK
#define Q (64 - SL_REDIS_HLL_P)   /* 50 hash bits for the rank */
#define RANK_MAX (Q + 1)          /* 51 */
#define REG_BYTES (SL_REDIS_HLL_M * 6 / 8)
#define SPARSE_VAL_MAX 32
#define SEED 0xadc83b19ull

void sl_redis_hll_init(sl_redis_hll_t *h) {
  memset(h, 0, sizeof *h);
}

void sl_redis_hll_free(sl_redis_hll_t *h) {
  if (h) sl_hll_store_free(&h->s);
}

uint64_t sl_redis_hll_hash(const void *key, size_t len) {
  const uint64_t m = 0xc6a4a7935bd1e995ull;
  const int r = 47;
  const uint8_t *p = key;
  uint64_t h = SEED ^ ((uint64_t)len * m);
  size_t blocks = len / 8;
  for (size_t b = 0; b < blocks; b++, p += 8) {
    uint64_t k = 0;
    for (int i = 7; i >= 0; i--) k = k << 8 | p[i];
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  size_t tail = len & 7;
  if (tail) {
    for (size_t i = tail; i-- > 0;) h ^= (uint64_t)p[i] << (8 * i);
    h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

/* The register an element's hash sets, and to what: the low 14 bits pick
 * it; the rank is 1 + the trailing zeros of the other 50 (51 when all are
 * zero). */
static uint32_t hash_entry(uint64_t hash) {
  uint32_t idx = (uint32_t)(hash & (SL_REDIS_HLL_M - 1));
  uint64_t rest = hash >> SL_REDIS_HLL_P | 1ull << Q;
  return idx << RANK_BITS | ((uint32_t)__builtin_ctzll(rest) + 1);
}

static void fill_dense(uint8_t *reg, const uint32_t *e, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    uint8_t rank = e[i] & RANK_MASK;
    uint32_t idx = e[i] >> RANK_BITS;
    if (rank > reg[idx]) reg[idx] = rank;
  }
}

static const sl_hll_layout_t layout = {.m = SL_REDIS_HLL_M, .sparse_max = SL_REDIS_HLL_SPARSE_MAX, .fill = fill_dense};

int sl_redis_hll_add(sl_redis_hll_t *h, const void *p, size_t len) {
  return sl_hll_store_add(&layout, &h->s, hash_entry(sl_redis_hll_hash(p, len)));
}

int sl_redis_hll_merge(sl_redis_hll_t *dst, const sl_redis_hll_t *src) {
  return sl_hll_store_merge(&layout, &dst->s, &src->s);
}

uint64_t sl_redis_hll_count(const sl_redis_hll_t *h) {
  const sl_hll_store_t *s = &h->s;
  uint32_t c[RANK_MAX + 1] = {0};
  if (s->is_dense) {
    for (uint32_t i = 0; i < SL_REDIS_HLL_M; i++) c[s->u.dense[i]]++;
  } else {
    const uint32_t *e = sl_hll_store_entries(s);
    c[0] = SL_REDIS_HLL_M - s->n;
    for (uint32_t i = 0; i < s->n; i++) c[e[i] & RANK_MASK]++;
  }
  /* In Redis's order of operations, so that the rounding is PFCOUNT's. */
  const double m = SL_REDIS_HLL_M, alpha_inf = 0.721347520444481703680;
  double z = sl_hll_ertl_z(c, Q, m);
  return (uint64_t)llroundl(alpha_inf * m * m / z);
}

size_t sl_redis_hll_heap_bytes(const sl_redis_hll_t *h) {
  return sl_hll_store_heap_bytes(&layout, &h->s);
}

/* ---- Redis's string --------------------------------------------------------- */

enum { ENC_DENSE = 0, ENC_SPARSE = 1 };

static int put_header(sl_buf_t *out, uint8_t encoding) {
  uint8_t hdr[SL_REDIS_HLL_HDR] = {'H', 'Y', 'L', 'L', encoding};
  hdr[15] = 0x80; /* the cached count is stale */
  return sl_buf_append(out, hdr, sizeof hdr);
}

static int put_zeros(sl_buf_t *out, uint32_t n) {
  if (n <= 64) return sl_buf_putc(out, (char)(n - 1));
  uint8_t op[2] = {(uint8_t)(0x40 | (n - 1) >> 8), (uint8_t)((n - 1) & 0xff)};
  return sl_buf_append(out, op, 2);
}

/* The sparse runs of entries e[0..n) (sorted, one per register), after the
 * header; SL_ERANGE when a rank is above 32 or the string would pass
 * SL_REDIS_HLL_SPARSE_BYTES. */
static int put_sparse(sl_buf_t *out, const uint32_t *e, uint32_t n) {
  size_t len0 = out->len;
  uint32_t pos = 0;
  int r = put_header(out, ENC_SPARSE);
  for (uint32_t i = 0; i < n && !r;) {
    uint32_t idx = e[i] >> RANK_BITS, rank = e[i] & RANK_MASK, run = 1;
    if (rank > SPARSE_VAL_MAX) return SL_ERANGE;
    if (idx > pos) r = put_zeros(out, idx - pos);
    while (run < 4 && i + run < n && e[i + run] >> RANK_BITS == idx + run && (e[i + run] & RANK_MASK) == rank) run++;
    if (!r) r = sl_buf_putc(out, (char)(0x80 | (rank - 1) << 2 | (run - 1)));
    i += run;
    pos = idx + run;
    if (out->len - len0 > SL_REDIS_HLL_SPARSE_BYTES) return SL_ERANGE;
  }
  if (!r && pos < SL_REDIS_HLL_M) r = put_zeros(out, SL_REDIS_HLL_M - pos);
  if (!r && out->len - len0 > SL_REDIS_HLL_SPARSE_BYTES) return SL_ERANGE;
  return r;
}

static void pack_register(uint8_t *p, uint32_t idx, uint32_t v) {
  uint32_t bit = idx * 6, byte = bit >> 3, fb = bit & 7;
  p[byte] |= (uint8_t)(v << fb);
  if (fb > 2) p[byte + 1] |= (uint8_t)(v >> (8 - fb));
}

/* The dense string of entries e[0..n), or of registers reg when not NULL. */
static int put_dense(sl_buf_t *out, const uint32_t *e, uint32_t n, const uint8_t *reg) {
  int r = put_header(out, ENC_DENSE);
  if (r) return r;
  uint8_t *p = calloc(REG_BYTES, 1);
  if (!p) return SL_ENOMEM;
  if (reg)
    for (uint32_t i = 0; i < SL_REDIS_HLL_M; i++) pack_register(p, i, reg[i]);
  else
    for (uint32_t k = 0; k < n; k++) pack_register(p, e[k] >> RANK_BITS, e[k] & RANK_MASK);
  r = sl_buf_append(out, p, REG_BYTES);
  free(p);
  return r;
}

int sl_redis_hll_to_redis(const sl_redis_hll_t *h, sl_buf_t *out) {
  const sl_hll_store_t *s = &h->s;
  size_t len0 = out->len;
  if (!s->is_dense) {
    int r = put_sparse(out, sl_hll_store_entries(s), s->n);
    if (r != SL_ERANGE) return r;
    out->len = len0;
    return put_dense(out, sl_hll_store_entries(s), s->n, NULL);
  }
  /* Dense registers: sparse still, when few are set and none above 32. */
  const uint8_t *reg = s->u.dense;
  uint32_t set = 0, max = 0;
  for (uint32_t i = 0; i < SL_REDIS_HLL_M; i++) {
    set += reg[i] != 0;
    if (reg[i] > max) max = reg[i];
  }
  if (max <= SPARSE_VAL_MAX && set <= 4 * SL_REDIS_HLL_SPARSE_BYTES) {
    uint32_t *e = malloc(set * sizeof *e + 1);
    if (!e) return SL_ENOMEM;
    uint32_t n = 0;
    for (uint32_t i = 0; i < SL_REDIS_HLL_M; i++)
      if (reg[i]) e[n++] = i << RANK_BITS | reg[i];
    int r = put_sparse(out, e, n);
    free(e);
    if (r != SL_ERANGE) return r;
    out->len = len0;
  }
  return put_dense(out, NULL, 0, reg);
}

int sl_redis_hll_from_redis(sl_redis_hll_t *h, const void *data, size_t len) {
  const uint8_t *p = data;
  sl_redis_hll_init(h);
  if (len < SL_REDIS_HLL_HDR || memcmp(p, "HYLL", 4) != 0 || p[4] > ENC_SPARSE) return SL_EBADSTATE;
  int r = 0;
  if (p[4] == ENC_DENSE) {
    if (len != SL_REDIS_HLL_DENSE_SIZE) return SL_EBADSTATE;
    uint8_t *reg = malloc(SL_REDIS_HLL_M);
    if (!reg) return SL_ENOMEM;
    const uint8_t *b = p + SL_REDIS_HLL_HDR;
    for (uint32_t i = 0; i < SL_REDIS_HLL_M; i++) {
      uint32_t bit = i * 6, byte = bit >> 3, fb = bit & 7;
      uint32_t v = b[byte] >> fb;
      if (fb > 2) v |= (uint32_t)b[byte + 1] << (8 - fb);
      reg[i] = (uint8_t)(v & 63);
      if (reg[i] > RANK_MAX) {
        free(reg);
        return SL_EBADSTATE;
      }
    }
    h->s.u.dense = reg;
    h->s.is_dense = 1;
    return 0;
  }
  uint32_t pos = 0;
  for (size_t i = SL_REDIS_HLL_HDR; i < len && !r; i++) {
    uint8_t op = p[i];
    uint32_t run;
    if (op & 0x80) {
      run = (op & 3) + 1;
    } else if (op & 0x40) {
      if (++i == len) {
        r = SL_EBADSTATE;
        break;
      }
      run = ((uint32_t)(op & 0x3f) << 8 | p[i]) + 1;
    } else {
      run = (op & 0x3f) + 1;
    }
    if (run > SL_REDIS_HLL_M - pos) {
      r = SL_EBADSTATE;
      break;
    }
    if (op & 0x80)
      for (uint32_t k = 0; k < run && !r; k++) r = sl_hll_store_add(&layout, &h->s, (pos + k) << RANK_BITS | (((op >> 2) & 0x1f) + 1));
    pos += run;
  }
  if (!r && pos != SL_REDIS_HLL_M) r = SL_EBADSTATE;
  if (r) sl_redis_hll_free(h);
  return r;
}
