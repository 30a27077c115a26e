/* DDSketch quantiles for percentile(f, q): owns one sketch's logarithmic
 * buckets, their bound, merging, quantile queries and the byte format of
 * checkpoints and partials.  Pure; a sketch is used by one thread at a time.
 *
 * The algorithm is Masson, Rim and Lee's DDSketch (VLDB 2019).  With
 * relative accuracy alpha, gamma = (1 + alpha) / (1 - alpha) and a value
 * x > 0 falls in bucket i = ceil(log_gamma(x)), which covers
 * (gamma^(i-1), gamma^i]; the bucket answers 2 gamma^i / (gamma + 1), within
 * alpha * x of every x it holds.  Negative values go, by |x|, to a second
 * store of buckets, and values with |x| below DBL_MIN (zero and subnormals)
 * to a zero count.  A quantile q is the value of rank floor(q (n - 1)) in
 * sorted order (the lower quantile; 0-based), answered to within a relative
 * error alpha of the exact value of that rank, and clamped to the exact
 * minimum and maximum, which the sketch keeps (q = 0 and q = 1 return them
 * exactly).
 *
 * The bound on buckets: each of the two stores keeps at most max_bins
 * non-empty buckets (only those, sorted, 12 bytes each, so a key that saw a
 * few values costs a few buckets).  When a store would need one more, its
 * lowest buckets collapse: the lowest bucket's count moves into the next
 * one.  So a store always keeps the max_bins highest buckets it has seen and
 * its lowest kept bucket also counts everything below it; quantiles whose
 * rank falls there lose the alpha guarantee (their answer is too large in
 * magnitude), all others keep it.  For positive values that is the smallest
 * values, for negative ones those nearest zero.  With alpha = 1 % the 2048
 * buckets of the default bound span a ratio of gamma^2048 ~ 6e17 between the
 * largest and smallest magnitude, so real data (latencies from nanoseconds to
 * hours) never collapse.  What is kept depends only on the multiset of values,
 * not on their order nor on how they were split and merged: merging partials
 * answers exactly as one pass would, collapses included. */
#ifndef SL_DDSKETCH_H
#define SL_DDSKETCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define SL_DDS_DEFAULT_ALPHA 0.01
#define SL_DDS_DEFAULT_MAX_BINS 2048

/* One bucket store (positive or negative values); internal. */
typedef struct {
  void *mem;  /* cap uint64_t counts, then cap int32_t bucket indices */
  uint32_t n; /* non-empty buckets, sorted by index */
  uint32_t cap;
} sl_dds_store_t;

/* A sketch; owns its stores' heap.  Initialise with sl_dds_init, free with
 * sl_dds_free. */
typedef struct {
  sl_dds_store_t pos, neg;
  uint64_t zero;  /* values with |x| < DBL_MIN */
  uint64_t count; /* all values */
  double min, max;
  double alpha;
  double inv_ln_gamma; /* 1 / ln(gamma) */
  uint32_t max_bins;
} sl_dds_t;

/* An empty sketch with relative accuracy alpha (1e-6 <= alpha <= 0.5, so
 * every bucket index fits 32 bits) and at most max_bins buckets per store
 * (2 to 2^24).  Does not allocate.  0 or SL_ERANGE. */
int sl_dds_init(sl_dds_t *s, double alpha, uint32_t max_bins);
void sl_dds_free(sl_dds_t *s); /* leaves it empty and reusable; accepts NULL */

/* Adds x.  0; SL_ERANGE for NaN or an infinity (not added); SL_ENOMEM with
 * the sketch unchanged. */
int sl_dds_add(sl_dds_t *s, double x);

/* dst += src.  0; -EINVAL when their alpha or max_bins differ; SL_ENOMEM with
 * dst unchanged.  src is borrowed. */
int sl_dds_merge(sl_dds_t *dst, const sl_dds_t *src);

/* The q-quantile (0 <= q <= 1) into *out.  0; SL_ERANGE for q outside
 * [0, 1] or NaN; -ENODATA when the sketch is empty. */
int sl_dds_quantile(const sl_dds_t *s, double q, double *out);

static inline uint64_t sl_dds_count(const sl_dds_t *s) {
  return s->count;
}

/* One non-empty bucket as a range of values (sl_dds_bins). */
typedef struct {
  double lower, upper;
  uint64_t count;
} sl_dds_bin_t;

/* The sketch's non-empty buckets in ascending order of value, the zero
 * count as [0, 0] between the negative and the positive ones: a bucket
 * holds count values v with lower < v <= upper (negative ones: lower <= v
 * < upper).  A store at its bound of buckets has its lowest-magnitude
 * bucket hold everything nearer zero too: that bound is then 0.  Writes at
 * most max into out and returns how many there are. */
size_t sl_dds_bins(const sl_dds_t *s, sl_dds_bin_t *out, size_t max);

/* Non-empty buckets (both stores), and heap bytes owned. */
size_t sl_dds_buckets(const sl_dds_t *s);
size_t sl_dds_heap_bytes(const sl_dds_t *s);

/* Appends the sketch's bytes to out:
 *   'D', version 1, alpha (f64 LE), varint max_bins, varint zero count,
 *   min and max (f64 LE), then the positive and the negative store, each as
 *   varint n and n pairs (varint zigzag delta of the bucket index from the
 *   previous one, varint count).
 * 0 or SL_ENOMEM (out may then hold part of it). */
int sl_dds_serialize(const sl_dds_t *s, sl_buf_t *out);

/* Reads a sketch from p[0..len) into *s (initialised here; owned by the
 * caller afterwards) and sets *used to the bytes read.  0; SL_EBADSTATE
 * (bad header or parameters, unsorted or out-of-range buckets, zero counts,
 * more than max_bins buckets, a count that overflows, min/max inconsistent,
 * truncated), with *s left empty; SL_ENOMEM. */
int sl_dds_deserialize(sl_dds_t *s, const void *p, size_t len, size_t *used);

#endif
