/* Histogram buckets from sketch bins (prom_buckets.h).  Pure. */
#include "prom_buckets.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int prom_layout_explicit(prom_layout_t *l, const double *bounds, size_t n) {
  memset(l, 0, sizeof *l);
  if (!n) return -1;
  for (size_t i = 0; i < n; i++)
    if (!isfinite(bounds[i]) || (i && !(bounds[i - 1] < bounds[i]))) return -1;
  if (!(l->bounds = malloc(n * sizeof *l->bounds))) return -2;
  memcpy(l->bounds, bounds, n * sizeof *bounds);
  l->n = n;
  return 0;
}

int prom_layout_grid(prom_layout_t *l, double alpha, double min, double max, size_t max_buckets) {
  memset(l, 0, sizeof *l);
  if (!(alpha > 0 && alpha < 1) || !(min > 0) || !(max > min) || !isfinite(max) || max_buckets < 3) return -1;
  double ln_gamma = log1p(2 * alpha / (1 - alpha));
  /* Edge indices i with gamma^i covering [min, max]: the edge at or below
   * min up to the edge at or above max, in steps of k. */
  double lo = floor(log(min) / ln_gamma), hi = ceil(log(max) / ln_gamma);
  unsigned k = 1;
  while (ceil(hi / k) - floor(lo / k) + 1 > (double)max_buckets) k++;
  long j_lo = (long)floor(lo / k), j_hi = (long)ceil(hi / k);
  size_t n = (size_t)(j_hi - j_lo + 1);
  if (!(l->bounds = malloc(n * sizeof *l->bounds))) return -2;
  for (size_t i = 0; i < n; i++) l->bounds[i] = exp((double)((j_lo + (long)i) * (long)k) * ln_gamma);
  l->n = n;
  l->k = k;
  return 0;
}

void prom_layout_free(prom_layout_t *l) {
  free(l->bounds);
  memset(l, 0, sizeof *l);
}

double prom_bin_middle(const sluice_bin_t *b) {
  if (b->lower == 0 || b->upper == 0) return 0;
  return 2 * b->lower * b->upper / (b->lower + b->upper);
}

void prom_histogram(const prom_layout_t *l, const sluice_bin_t *bins, size_t n_bins, uint64_t *cumulative,
                    double *sum) {
  memset(cumulative, 0, (l->n + 1) * sizeof *cumulative);
  double s = 0;
  size_t at = 0;
  /* Bins come in ascending order, so their middles do too: one pass. */
  for (size_t i = 0; i < n_bins; i++) {
    double mid = prom_bin_middle(&bins[i]);
    while (at < l->n && !(mid <= l->bounds[at])) at++;
    cumulative[at] += bins[i].count;
    s += (double)bins[i].count * mid;
  }
  for (size_t i = 1; i <= l->n; i++) cumulative[i] += cumulative[i - 1];
  *sum = s;
}
