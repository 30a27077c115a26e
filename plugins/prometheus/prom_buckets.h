/* Classic Prometheus histogram buckets from a DDSketch's bins, so that a
 * percentile aggregate can be summed across instances and windows with
 * histogram_quantile.  Pure; a layout is read-only once made.
 *
 * Bounds are fixed by the config, never by the data: Prometheus sums
 * histograms bucket by bucket (`sum by (le)`), which is only right when
 * every series has the same bounds.  Either the user lists them, or they
 * are the sketch's own bucket edges gamma^i (gamma = (1 + a) / (1 - a) for
 * relative accuracy a), every k-th one, k the smallest for which at most
 * max_buckets of them cover [min, max]: then each sketch bin falls in
 * exactly one bucket and the histogram adds no error of its own beyond
 * its buckets' width.
 *
 * A bin's values are placed at its middle, the value the sketch answers
 * for them (within a of each): so with bounds of the user's, a value is
 * counted in the bucket of a value at most a (relative) from it.  _sum is
 * the sum of the middles, within a of the true sum (for values of one
 * sign); _count is exact. */
#ifndef PROM_BUCKETS_H
#define PROM_BUCKETS_H

#include <sluice/sink.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  double *bounds; /* owned; ascending, finite; +Inf is implied */
  size_t n;
  unsigned k; /* sketch edges per bucket (grid layouts), else 0 */
} prom_layout_t;

/* The user's bounds (copied).  0, -1 when they are not finite and strictly
 * ascending (or n is 0), -2 when out of memory. */
int prom_layout_explicit(prom_layout_t *l, const double *bounds, size_t n);

/* The grid: edges gamma^(k j) of a sketch of relative accuracy alpha
 * (0 < alpha < 1) covering [min, max] (0 < min < max) with at most
 * max_buckets (>= 3: a range across 1 needs three edges however far apart)
 * bounds.  0, -1 for arguments out of range, -2 when out
 * of memory. */
int prom_layout_grid(prom_layout_t *l, double alpha, double min, double max, size_t max_buckets);

void prom_layout_free(prom_layout_t *l); /* leaves it empty; accepts an empty one */

/* The bin's middle: 2 lower upper / (lower + upper); 0 for the zero bin
 * and for a bin reaching down to 0. */
double prom_bin_middle(const sluice_bin_t *b);

/* cumulative[0..l->n] (values at or below each bound, then all of them)
 * and *sum from a sketch's bins, ascending. */
void prom_histogram(const prom_layout_t *l, const sluice_bin_t *bins, size_t n_bins, uint64_t *cumulative,
                    double *sum);

#endif
