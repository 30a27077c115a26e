/* HyperLogLog distinct counting for count_distinct: owns the registers of one
 * sketch, their sparse and dense encodings, the estimate, merging and the
 * byte format of checkpoints and partials.  Pure; a sketch is used by one
 * thread at a time.
 *
 * Why a sparse encoding: a job keeps one sketch per (window, group key), and
 * most keys see a handful of values, so a sketch starts as a sorted list of
 * (index, rank) pairs at a finer precision (2^25 buckets, as in Heule, Nunkesser
 * and Hall's HyperLogLog++, 2013) and becomes the dense 2^12 registers only
 * when the list would pass SL_HLL_SPARSE_MAX entries.  The first two entries
 * live inside the struct, so a key that saw one or two distinct values costs
 * no heap at all.  Which encoding a sketch has depends only on the set of
 * hashes it has seen, never on the order or on how they were split and merged,
 * so a merge of partials estimates exactly what one pass over the same values
 * would.
 *
 * Accuracy: precision p = 12, m = 4096 one-byte registers (4 KiB dense).
 * The relative standard error of the dense estimate is 1.04 / sqrt(2^12) =
 * 1.625 %; p = 14 would halve it for four times the memory, which at 10,000
 * group keys per window is the difference between 40 MiB and 160 MiB in the
 * worst case.  In the sparse encoding (up to 512 distinct hashes) the
 * estimate is linear counting over the 2^25 fine buckets, whose error is far
 * below 0.1 %.  The dense estimate is Ertl's improved raw estimator ("New
 * cardinality estimation algorithms for HyperLogLog sketches", 2017): its
 * sigma term is the small-range (linear counting) correction, blended into the
 * harmonic mean instead of switched on below 2.5 m, which removes the bias
 * bump that the classic switch leaves around n = 2.5 m; its tau term corrects
 * the (here unreachable) large range.  With 64-bit hashes no 2^32 correction
 * is needed. */
#ifndef SL_HLL_H
#define SL_HLL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "jobs/hll_store.h"

#define SL_HLL_P 12               /* dense precision: m = 2^p registers */
#define SL_HLL_M (1u << SL_HLL_P) /* dense registers (bytes) */
#define SL_HLL_SP 25              /* sparse precision */
#define SL_HLL_SPARSE_MAX 512     /* sparse entries before going dense */
#define SL_HLL_RSE 0.01625        /* 1.04 / sqrt(2^SL_HLL_P) */

/* A sketch: hll_store.h's storage, its sparse entries (fine index << 6 |
 * rank), its dense registers SL_HLL_M.  Zero-initialised (or sl_hll_init)
 * it is empty.  Owns its heap; free with sl_hll_free. */
typedef sl_hll_store_t sl_hll_t;

void sl_hll_init(sl_hll_t *h);
void sl_hll_free(sl_hll_t *h); /* leaves it empty and reusable; accepts NULL */

/* 64-bit hash of bytes (XXH3, seed 0): what sl_hll_add_bytes adds. */
uint64_t sl_hll_hash(const void *p, size_t len);

/* Adds one element by its 64-bit hash (which must be well mixed: every bit
 * counts).  0, or SL_ENOMEM with the sketch unchanged. */
int sl_hll_add_hash(sl_hll_t *h, uint64_t hash);
static inline int sl_hll_add_bytes(sl_hll_t *h, const void *p, size_t len) {
  return sl_hll_add_hash(h, sl_hll_hash(p, len));
}

/* dst = dst U src (register-wise maximum, whatever either's encoding).
 * 0, or SL_ENOMEM with dst unchanged.  src is borrowed. */
int sl_hll_merge(sl_hll_t *dst, const sl_hll_t *src);

/* The estimated number of distinct elements; 0 for an empty sketch. */
double sl_hll_estimate(const sl_hll_t *h);

/* Heap bytes owned (not counting the struct itself). */
size_t sl_hll_heap_bytes(const sl_hll_t *h);

/* Appends the sketch's bytes to out:
 *   'H', version 1, p, sparse precision, encoding (0 sparse, 1 dense), then
 *   sparse: varint n, n varint deltas between consecutive sorted entries;
 *   dense:  SL_HLL_M register bytes.
 * 0 or SL_ENOMEM (out may then hold part of it). */
int sl_hll_serialize(const sl_hll_t *h, sl_buf_t *out);

/* Reads a sketch from p[0..len) into *h (which it initialises; owned by the
 * caller afterwards) and sets *used to the bytes read.  0; SL_EBADSTATE for
 * bytes that are not a sketch of these parameters (wrong header, entries
 * unsorted or out of range, truncated), with *h left empty; SL_ENOMEM. */
int sl_hll_deserialize(sl_hll_t *h, const void *p, size_t len, size_t *used);

#endif
