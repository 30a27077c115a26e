/* The registers both HyperLogLogs keep (count_distinct's, hll.h, and
 * redis_hll's, redis_hll.h): a sorted list of sparse entries that becomes
 * m one-byte registers when it would pass its bound, and the merge of two.
 * A sketch's own module says what an entry's key is and which register it
 * raises to what (its layout); this one keeps the list, switches it to
 * registers and merges, so the two sketches differ only in their hash,
 * estimate and bytes.  Pure; a store is used by one thread at a time.
 *
 * An entry is (key << 6 | rank), one per key, sorted by key; on equal keys
 * the larger rank wins.  The first two entries live inside the struct, so
 * a sketch of one or two elements costs no heap. */
#ifndef SL_HLL_STORE_H
#define SL_HLL_STORE_H

#include <stddef.h>
#include <stdint.h>

#define SL_HLL_RANK_BITS 6
#define SL_HLL_RANK_MASK ((1u << SL_HLL_RANK_BITS) - 1)

/* Zero-initialised it is empty.  Owns its heap (sparse list or dense
 * registers); free with sl_hll_store_free. */
typedef struct {
  union {
    uint32_t inl[2];  /* sparse entries while n <= 2 and cap == 0 */
    uint32_t *sparse; /* sorted entries, cap of them */
    uint8_t *dense;   /* the layout's m registers */
  } u;
  uint32_t n;   /* sparse entries */
  uint16_t cap; /* heap capacity of the sparse list; 0: entries inline */
  uint8_t is_dense;
} sl_hll_store_t;

/* What one sketch's entries mean. */
typedef struct {
  uint32_t m;          /* dense registers */
  uint32_t sparse_max; /* entries before going dense; at most 65535 */
  /* Raises reg[] to the registers that entries e[0..n) map to. */
  void (*fill)(uint8_t *reg, const uint32_t *e, uint32_t n);
} sl_hll_layout_t;

/* Leaves it empty and reusable; accepts NULL. */
void sl_hll_store_free(sl_hll_store_t *s);

/* The sparse entries (n of them); meaningless when dense. */
const uint32_t *sl_hll_store_entries(const sl_hll_store_t *s);

/* Adds entry e: into the list, or raising its key's rank, or into the
 * registers (going dense when the list is full).  0, or SL_ENOMEM with
 * the store unchanged. */
int sl_hll_store_add(const sl_hll_layout_t *l, sl_hll_store_t *s, uint32_t e);

/* dst = dst U src, register-wise maximum, whatever either's encoding: a
 * union of two lists stays a list when it fits, so the encoding depends on
 * the set of entries only.  0, or SL_ENOMEM with dst unchanged.  src is
 * borrowed. */
int sl_hll_store_merge(const sl_hll_layout_t *l, sl_hll_store_t *dst, const sl_hll_store_t *src);

/* Makes s dense with the registers of e[0..n) and of its own entries (a
 * sparse s only).  0 or SL_ENOMEM (s unchanged). */
int sl_hll_store_to_dense(const sl_hll_layout_t *l, sl_hll_store_t *s, const uint32_t *e, uint32_t n);

/* Sets an empty sparse s to entries e[0..n) (sorted, one per key, n at
 * most sparse_max).  0 or SL_ENOMEM. */
int sl_hll_store_set_entries(const sl_hll_layout_t *l, sl_hll_store_t *s, const uint32_t *e, uint32_t n);

/* Heap bytes owned. */
size_t sl_hll_store_heap_bytes(const sl_hll_layout_t *l, const sl_hll_store_t *s);

/* Ertl's z for a register histogram c[0..q+1] of m registers whose ranks
 * run to q + 1: the estimate is alpha_inf m^2 / z, alpha_inf = 1 / (2 ln 2)
 * ("New cardinality estimation algorithms for HyperLogLog sketches", 2017,
 * the improved raw estimator). */
double sl_hll_ertl_z(const uint32_t *c, int q, double m);

#endif
