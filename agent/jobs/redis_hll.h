/* Redis's own HyperLogLog, for the redis_hll aggregate: owns one sketch's
 * registers and writes them as the string Redis keeps for a HyperLogLog, so
 * that a sink can SET it and users PFMERGE windows into hours and days and
 * PFCOUNT them, or PFADD more elements to it.  Pure; a sketch is used by
 * one thread at a time.
 *
 * Why a second sketch beside hll.h: Redis's registers are fixed by Redis
 * (precision 14, the element's MurmurHash64A with seed 0xadc83b19, the
 * register index from the hash's low 14 bits and the rank from the rest),
 * and PFMERGE only takes those.  count_distinct's own sketch (precision 12,
 * XXH3, top bits) is a quarter of the size, so it stays the default; this
 * one costs up to 16 KiB per (window, group key) and gives the 0.81 %
 * standard error of Redis's.  Its registers are exactly those that PFADD
 * of the same elements makes, so its count is exactly PFCOUNT's (Redis 5
 * and later use the same estimator: Ertl's, as hll.h).
 *
 * Encodings.  A sketch starts as a sorted list of (register, rank) entries
 * (hll_store.h) and becomes 2^14 one-byte registers past
 * SL_REDIS_HLL_SPARSE_MAX entries; the list is exact, so which one a sketch
 * has never changes what it counts. */
#ifndef SL_REDIS_HLL_H
#define SL_REDIS_HLL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "jobs/hll_store.h"

#define SL_REDIS_HLL_P 14
#define SL_REDIS_HLL_M (1u << SL_REDIS_HLL_P) /* registers */
#define SL_REDIS_HLL_SPARSE_MAX 1024          /* entries before going dense (4 KiB) */
#define SL_REDIS_HLL_RSE 0.0081               /* 1.04 / sqrt(2^14) */

/* The Redis string's sizes: a 16-byte header, then for the dense encoding
 * 2^14 six-bit registers. */
#define SL_REDIS_HLL_HDR 16
#define SL_REDIS_HLL_DENSE_SIZE (SL_REDIS_HLL_HDR + SL_REDIS_HLL_M * 6 / 8)
/* The longest sparse string written; a longer one is written dense.  Redis
 * keeps a HyperLogLog sparse up to hll-sparse-max-bytes, 3000 by default. */
#define SL_REDIS_HLL_SPARSE_BYTES 3000

/* A sketch: hll_store.h's storage, its sparse entries (register << 6 |
 * rank), its dense registers SL_REDIS_HLL_M.  Zero-initialised (or
 * sl_redis_hll_init) it is empty.  Owns its heap; free with
 * sl_redis_hll_free. */
typedef struct {
  sl_hll_store_t s;
} sl_redis_hll_t;

void sl_redis_hll_init(sl_redis_hll_t *h);
void sl_redis_hll_free(sl_redis_hll_t *h); /* leaves it empty and reusable; accepts NULL */

/* MurmurHash64A (Austin Appleby's 64-bit MurmurHash2) of p[0..len) with
 * Redis's seed, reading the bytes little-endian as Redis does on every
 * machine. */
uint64_t sl_redis_hll_hash(const void *p, size_t len);

/* Adds one element, as PFADD key <p[0..len)> would.  0, or SL_ENOMEM with
 * the sketch unchanged. */
int sl_redis_hll_add(sl_redis_hll_t *h, const void *p, size_t len);

/* dst = dst U src, as PFMERGE.  0, or SL_ENOMEM with dst unchanged.  src is
 * borrowed. */
int sl_redis_hll_merge(sl_redis_hll_t *dst, const sl_redis_hll_t *src);

/* The estimate, exactly as PFCOUNT gives it for these registers. */
uint64_t sl_redis_hll_count(const sl_redis_hll_t *h);

/* Heap bytes owned (not counting the struct itself). */
size_t sl_redis_hll_heap_bytes(const sl_redis_hll_t *h);

/* Appends the string Redis keeps for these registers: "HYLL", the
 * encoding, and a cached count marked stale (so Redis computes it on the
 * first PFCOUNT), then the registers: sparse (runs of zeros and of equal
 * values, when every rank is at most 32 and it takes at most
 * SL_REDIS_HLL_SPARSE_BYTES) or dense (2^14 six-bit registers, least
 * significant bits first).  0 or SL_ENOMEM (out may hold part of it). */
int sl_redis_hll_to_redis(const sl_redis_hll_t *h, sl_buf_t *out);

/* Reads a string in Redis's format (sparse or dense) into *h (which it
 * initialises; owned by the caller afterwards).  0; SL_EBADSTATE for bytes
 * that are not one (wrong magic, encoding or size, runs that do not cover
 * 2^14 registers, a rank above 51), with *h left empty; SL_ENOMEM. */
int sl_redis_hll_from_redis(sl_redis_hll_t *h, const void *p, size_t len);

#endif
