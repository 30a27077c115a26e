/* Unit tests for agent/jobs/hll.c and agent/jobs/ddsketch.c: HyperLogLog
 * error within 3 standard errors from 1 to 10^6 distinct values (and around
 * the small-range switch where the classic estimator is biased), merges of
 * random splits identical to one pass in every sparse/dense combination,
 * DDSketch quantiles within the relative accuracy on uniform, exponential,
 * lognormal and signed data with zeros, the bucket bound and its collapse,
 * and both byte formats, including corrupt input.  Seeds are fixed. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/error.h"
#include "jobs/ddsketch.h"
#include "jobs/hll.h"
#include "tap.h"

/* ---- deterministic randomness ------------------------------------------ */

static uint64_t rng_state;

static uint64_t rng(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double uniform01(void) {
  return (double)(rng() >> 11) * 0x1p-53;
} /* [0, 1) */

static double normal(void) { /* Box-Muller */
  double u = uniform01(), v = uniform01();
  return sqrt(-2 * log(1 - u)) * cos(2 * M_PI * v);
}

/* ---- HyperLogLog -------------------------------------------------------- */

/* The element `i` of the set numbered `seed`: its bytes, hashed as count
 * distinct would hash a value. */
static int hll_add_elem(sl_hll_t *h, uint64_t seed, uint64_t i) {
  uint64_t b[2] = {seed, i};
  return sl_hll_add_bytes(h, b, sizeof b);
}

static int same_bytes(const sl_hll_t *a, const sl_hll_t *b) {
  sl_buf_t x = {0}, y = {0};
  int r = sl_hll_serialize(a, &x) == 0 && sl_hll_serialize(b, &y) == 0 && x.len == y.len &&
          memcmp(x.data, y.data, x.len) == 0;
  sl_buf_free(&x);
  sl_buf_free(&y);
  return r;
}

static void test_hll_accuracy(void) {
  static const uint64_t ns[] = {1, 10, 1000, 100000, 1000000, 5000, 10240, 15000};
  for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
    uint64_t n = ns[k];
    sl_hll_t h;
    sl_hll_init(&h);
    int err = 0;
    for (uint64_t i = 0; i < n; i++) err |= hll_add_elem(&h, 1000 + k, i);
    double e = sl_hll_estimate(&h);
    double rel = fabs(e / (double)n - 1);
    ok(!err && rel <= 3 * SL_HLL_RSE, "HLL n=%llu: estimate %.1f, relative error %.4f <= 3 x %.5f",
       (unsigned long long)n, e, rel, SL_HLL_RSE);
    if (n <= SL_HLL_SPARSE_MAX)
      is_int(llround(e), n, "HLL n=%llu: sparse linear counting is exact here",
             (unsigned long long)n);
    /* Adding the same elements again changes nothing. */
    if (n <= 100000) {
      for (uint64_t i = 0; i < n; i++) err |= hll_add_elem(&h, 1000 + k, i);
      ok(!err && sl_hll_estimate(&h) == e, "HLL n=%llu: duplicates do not count",
         (unsigned long long)n);
    }
    sl_hll_free(&h);
  }
  sl_hll_t h;
  sl_hll_init(&h);
  ok(sl_hll_estimate(&h) == 0, "HLL: empty estimates 0");
  sl_hll_free(&h);
}

/* Splits n elements at random among `parts` sketches, merges them in a
 * random order into a fresh sketch, and compares with one pass. */
static void hll_split_check(uint64_t n, int parts, uint64_t seed, const char *what) {
  sl_hll_t one, part[8], merged;
  sl_hll_init(&one);
  sl_hll_init(&merged);
  for (int p = 0; p < parts; p++) sl_hll_init(&part[p]);
  int err = 0;
  for (uint64_t i = 0; i < n; i++) {
    err |= hll_add_elem(&one, seed, i);
    err |= hll_add_elem(&part[rng() % parts], seed, i);
  }
  for (int p = parts; p-- > 0;) err |= sl_hll_merge(&merged, &part[p]);
  ok(!err && sl_hll_estimate(&merged) == sl_hll_estimate(&one) && same_bytes(&merged, &one),
     "HLL merge of %d random parts, %s (n=%llu): estimate %.2f identical to one pass (%s)", parts,
     what, (unsigned long long)n, sl_hll_estimate(&merged), one.is_dense ? "dense" : "sparse");
  /* Merging a part again (idempotence) and merging into a part. */
  err |= sl_hll_merge(&merged, &part[0]);
  err |= sl_hll_merge(&part[0], &merged);
  ok(!err && same_bytes(&merged, &one) && same_bytes(&part[0], &one),
     "HLL merge %s: idempotent, and commutative into a part", what);
  for (int p = 0; p < parts; p++) sl_hll_free(&part[p]);
  sl_hll_free(&one);
  sl_hll_free(&merged);
}

static void test_hll_merge(void) {
  rng_state = 7;
  hll_split_check(2, 2, 1, "inline + inline");
  hll_split_check(200, 3, 2, "sparse + sparse -> sparse");
  hll_split_check(SL_HLL_SPARSE_MAX + 100, 2, 3, "sparse + sparse -> dense");
  hll_split_check(100000, 5, 4, "dense + dense");
  hll_split_check(1000000, 4, 5, "dense + dense, 10^6");

  /* Explicit mixed encodings: dense into sparse and sparse into dense. */
  sl_hll_t big, small, one;
  sl_hll_init(&big);
  sl_hll_init(&small);
  sl_hll_init(&one);
  int err = 0;
  for (uint64_t i = 0; i < 3000; i++) {
    err |= hll_add_elem(&big, 9, i);
    err |= hll_add_elem(&one, 9, i);
  }
  for (uint64_t i = 3000; i < 3040; i++) {
    err |= hll_add_elem(&small, 9, i);
    err |= hll_add_elem(&one, 9, i);
  }
  sl_hll_t a, b;
  sl_hll_init(&a);
  sl_hll_init(&b);
  err |= sl_hll_merge(&a, &small);
  err |= sl_hll_merge(&a, &big); /* sparse dst, dense src */
  err |= sl_hll_merge(&b, &big);
  err |= sl_hll_merge(&b, &small); /* dense dst, sparse src */
  ok(!err && !small.is_dense && big.is_dense && a.is_dense && same_bytes(&a, &one) &&
         same_bytes(&b, &one),
     "HLL merge sparse<-dense and dense<-sparse equal one pass");
  sl_hll_free(&a);
  sl_hll_free(&b);
  sl_hll_free(&big);
  sl_hll_free(&small);
  sl_hll_free(&one);
}

static void test_hll_memory(void) {
  sl_hll_t h;
  sl_hll_init(&h);
  size_t at[4] = {0};
  int err = 0;
  for (uint64_t i = 0; i < 2000; i++) {
    err |= hll_add_elem(&h, 77, i);
    if (i == 1) at[0] = sl_hll_heap_bytes(&h);
    if (i == 9) at[1] = sl_hll_heap_bytes(&h);
    if (i == SL_HLL_SPARSE_MAX - 1) at[2] = sl_hll_heap_bytes(&h);
  }
  at[3] = sl_hll_heap_bytes(&h);
  ok(!err && at[0] == 0, "HLL: two distinct values live inside the struct (heap %zu)", at[0]);
  ok(at[1] == 16 * sizeof(uint32_t), "HLL: 10 distinct values cost %zu heap bytes", at[1]);
  ok(at[2] == SL_HLL_SPARSE_MAX * sizeof(uint32_t) && at[3] == SL_HLL_M,
     "HLL: sparse tops at %zu bytes, dense is %zu bytes", at[2], at[3]);
  printf(
      "# HLL bytes: struct %zu; heap with 2 values %zu, 10 values %zu, %d values %zu, dense %zu\n",
      sizeof(sl_hll_t), at[0], at[1], SL_HLL_SPARSE_MAX, at[2], at[3]);
  sl_hll_free(&h);
}

static void hll_roundtrip(uint64_t n, const char *what) {
  sl_hll_t h, back;
  sl_hll_init(&h);
  int err = 0;
  for (uint64_t i = 0; i < n; i++) err |= hll_add_elem(&h, 31, i);
  sl_buf_t b = {0};
  err |= sl_hll_serialize(&h, &b);
  /* Trailing bytes are not read: used says where the sketch ends. */
  err |= sl_buf_append(&b, "xyz", 3);
  size_t used = 0;
  int r = sl_hll_deserialize(&back, b.data, b.len, &used);
  ok(!err && r == 0 && used == b.len - 3 && sl_hll_estimate(&back) == sl_hll_estimate(&h) &&
         same_bytes(&back, &h),
     "HLL %s round-trips (%zu bytes)", what, used);
  /* Every truncation is refused, and leaves an empty sketch. */
  int bad = 0;
  for (size_t len = 0; len < used; len++) {
    sl_hll_t t;
    if (sl_hll_deserialize(&t, b.data, len, &used) != SL_EBADSTATE || t.n || t.is_dense) bad++;
    sl_hll_free(&t);
  }
  ok(bad == 0, "HLL %s: every truncation is SL_EBADSTATE", what);
  sl_buf_free(&b);
  sl_hll_free(&h);
  sl_hll_free(&back);
}

static int hll_decode(const uint8_t *p, size_t len) {
  sl_hll_t t;
  size_t used;
  int r = sl_hll_deserialize(&t, p, len, &used);
  sl_hll_free(&t);
  return r;
}

static void test_hll_format(void) {
  hll_roundtrip(0, "empty");
  hll_roundtrip(2, "inline");
  hll_roundtrip(300, "sparse");
  hll_roundtrip(20000, "dense");

  /* Hand-made sparse bytes: header, n, deltas. */
  const uint8_t good[] = {'H', 1, 12, 25, 0, 2, 0x41, 0x40};     /* entries 65, 129 */
  const uint8_t unsorted[] = {'H', 1, 12, 25, 0, 2, 0x41, 0x01}; /* same index twice */
  const uint8_t rank0[] = {'H', 1, 12, 25, 0, 1, 0x40};          /* rank 0 */
  const uint8_t rank41[] = {'H', 1, 12, 25, 0, 1, 0x69};         /* rank 41 */
  const uint8_t wide[] = {'H', 1, 12, 25, 0, 1, 0x81, 0x80, 0x80, 0x80, 0x08}; /* 2^31 + 1 */
  const uint8_t too_many[] = {'H', 1, 12, 25, 0, 0x81, 0x04};                  /* n = 513 */
  const uint8_t other_p[] = {'H', 1, 14, 25, 0, 0};
  const uint8_t magic[] = {'D', 1, 12, 25, 0, 0};
  const uint8_t enc[] = {'H', 1, 12, 25, 2, 0};
  is_int(hll_decode(good, sizeof good), 0, "HLL: hand-made sparse bytes decode");
  is_int(hll_decode(unsorted, sizeof unsorted), SL_EBADSTATE, "HLL: repeated index refused");
  is_int(hll_decode(rank0, sizeof rank0), SL_EBADSTATE, "HLL: rank 0 refused");
  is_int(hll_decode(rank41, sizeof rank41), SL_EBADSTATE, "HLL: rank 41 refused");
  is_int(hll_decode(wide, sizeof wide), SL_EBADSTATE, "HLL: entry wider than 31 bits refused");
  is_int(hll_decode(too_many, sizeof too_many), SL_EBADSTATE,
         "HLL: more than 512 sparse entries refused");
  is_int(hll_decode(other_p, sizeof other_p), SL_EBADSTATE, "HLL: another precision refused");
  is_int(hll_decode(magic, sizeof magic), SL_EBADSTATE, "HLL: wrong magic refused");
  is_int(hll_decode(enc, sizeof enc), SL_EBADSTATE, "HLL: unknown encoding refused");
  uint8_t dense[5 + SL_HLL_M] = {'H', 1, 12, 25, 1};
  dense[5 + 100] = 53;
  is_int(hll_decode(dense, sizeof dense), 0,
         "HLL: dense register 53 (the most a 64-bit hash gives) accepted");
  dense[5 + 100] = 54;
  is_int(hll_decode(dense, sizeof dense), SL_EBADSTATE, "HLL: dense register 54 refused");
}

/* ---- DDSketch ----------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef double (*gen_fn)(void);

static double gen_uniform(void) {
  return uniform01() * 1000;
}
static double gen_exponential(void) {
  return -log(1 - uniform01());
}
static double gen_lognormal(void) {
  return exp(2 * normal());
}
/* Both signs and zeros: 10 % zeros, the rest lognormal with a random sign. */
static double gen_signed(void) {
  uint64_t r = rng() % 10;
  if (r == 0) return 0;
  double v = exp(1.5 * normal());
  return r < 5 ? -v : v;
}
/* Mostly negative with a few positives: the negative store does the work. */
static double gen_negative(void) {
  double v = -gen_uniform() - 1;
  return rng() % 50 == 0 ? -v : v;
}

#define DDS_N 50000

static void dds_check_data(const char *name, gen_fn gen) {
  static double xs[DDS_N];
  sl_dds_t one, part[4], merged;
  int err = sl_dds_init(&one, SL_DDS_DEFAULT_ALPHA, SL_DDS_DEFAULT_MAX_BINS);
  err |= sl_dds_init(&merged, SL_DDS_DEFAULT_ALPHA, SL_DDS_DEFAULT_MAX_BINS);
  for (int p = 0; p < 4; p++)
    err |= sl_dds_init(&part[p], SL_DDS_DEFAULT_ALPHA, SL_DDS_DEFAULT_MAX_BINS);
  for (int i = 0; i < DDS_N; i++) {
    xs[i] = gen();
    err |= sl_dds_add(&one, xs[i]);
    err |= sl_dds_add(&part[rng() % 4], xs[i]);
  }
  for (int p = 0; p < 4; p++) err |= sl_dds_merge(&merged, &part[p]);
  ok(!err && sl_dds_count(&one) == DDS_N && sl_dds_count(&merged) == DDS_N,
     "DDSketch %s: %d values added", name, DDS_N);
  qsort(xs, DDS_N, sizeof xs[0], cmp_double);
  static const double qs[] = {0.5, 0.9, 0.99, 0.999, 0.01, 0.1, 0, 1};
  double worst = 0;
  int within = 1, same = 1;
  for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
    double want = xs[(size_t)(qs[k] * (DDS_N - 1))], got, got_m;
    if (sl_dds_quantile(&one, qs[k], &got) || sl_dds_quantile(&merged, qs[k], &got_m)) {
      within = same = 0;
      continue;
    }
    double rel = want == 0 ? fabs(got) : fabs(got - want) / fabs(want);
    if (rel > worst) worst = rel;
    if (rel > SL_DDS_DEFAULT_ALPHA * (1 + 1e-9)) {
      within = 0;
      printf("#   q=%g: got %.9g, want %.9g (relative error %.5f)\n", qs[k], got, want, rel);
    }
    if (got != got_m) same = 0;
    if ((qs[k] == 0 || qs[k] == 1) && got != want) within = 0; /* exact ends */
  }
  ok(within,
     "DDSketch %s: q = 0.5, 0.9, 0.99, 0.999 (and 0.01, 0.1) within 1 %% (worst %.5f); 0 and 1 "
     "exact",
     name, worst);
  ok(same, "DDSketch %s: merge of 4 random parts answers identically to one pass", name);
  sl_buf_t a = {0}, b = {0};
  err = sl_dds_serialize(&one, &a) | sl_dds_serialize(&merged, &b);
  ok(!err && a.len == b.len && memcmp(a.data, b.data, a.len) == 0,
     "DDSketch %s: merged and single-pass sketches serialise identically (%zu bytes, %zu buckets)",
     name, a.len, sl_dds_buckets(&one));
  sl_buf_free(&a);
  sl_buf_free(&b);
  for (int p = 0; p < 4; p++) sl_dds_free(&part[p]);
  sl_dds_free(&one);
  sl_dds_free(&merged);
}

static void test_dds_accuracy(void) {
  rng_state = 11;
  dds_check_data("uniform [0, 1000)", gen_uniform);
  dds_check_data("exponential", gen_exponential);
  dds_check_data("lognormal sigma=2", gen_lognormal);
  dds_check_data("signed lognormal with 10% zeros", gen_signed);
  dds_check_data("mostly negative", gen_negative);
}

static void test_dds_edges(void) {
  sl_dds_t s;
  double v = 42;
  is_int(sl_dds_init(&s, 0, 100), SL_ERANGE, "DDSketch: alpha 0 refused");
  is_int(sl_dds_init(&s, 0.01, 1), SL_ERANGE, "DDSketch: fewer than 2 buckets refused");
  is_int(sl_dds_init(&s, 0.01, 100), 0, "DDSketch: alpha 1%%, 100 buckets");
  is_int(sl_dds_quantile(&s, 0.5, &v), -ENODATA, "DDSketch: empty sketch has no quantile");
  is_int(sl_dds_add(&s, NAN), SL_ERANGE, "DDSketch: NaN refused");
  is_int(sl_dds_add(&s, -INFINITY), SL_ERANGE, "DDSketch: -inf refused");
  is_int(sl_dds_count(&s), 0, "DDSketch: refused values are not counted");
  sl_dds_add(&s, -0.0);
  sl_dds_add(&s, 5e-324); /* subnormal: the zero bucket */
  sl_dds_add(&s, 3);
  is_int(sl_dds_quantile(&s, 1.5, &v), SL_ERANGE, "DDSketch: q 1.5 refused");
  is_int(sl_dds_quantile(&s, NAN, &v), SL_ERANGE, "DDSketch: q NaN refused");
  ok(sl_dds_quantile(&s, 0, &v) == 0 && v == 0 && !signbit(v), "DDSketch: minimum of -0.0 is +0.0");
  ok(sl_dds_quantile(&s, 0.5, &v) == 0 && v == 0,
     "DDSketch: median of {0, 5e-324, 3} answers 0 (zero bucket)");
  ok(sl_dds_quantile(&s, 1, &v) == 0 && v == 3, "DDSketch: maximum exact");
  sl_dds_t other;
  sl_dds_init(&other, 0.02, 100);
  is_int(sl_dds_merge(&s, &other), -EINVAL, "DDSketch: merging another alpha refused");
  sl_dds_free(&other);
  sl_dds_init(&other, 0.01, 100);
  sl_dds_add(&other, 7);
  ok(sl_dds_merge(&s, &other) == 0 && sl_dds_count(&s) == 4 && sl_dds_quantile(&s, 1, &v) == 0 &&
         v == 7,
     "DDSketch: merge adds counts and keeps the maximum");
  sl_dds_free(&other);
  sl_dds_free(&s);

  /* Memory: a handful of values costs a handful of buckets. */
  sl_dds_init(&s, SL_DDS_DEFAULT_ALPHA, SL_DDS_DEFAULT_MAX_BINS);
  sl_dds_add(&s, 12);
  sl_dds_add(&s, 15);
  sl_dds_add(&s, 900);
  ok(sl_dds_buckets(&s) == 3 && sl_dds_heap_bytes(&s) == 4 * 12,
     "DDSketch: 3 values cost 3 buckets, %zu heap bytes (struct %zu)", sl_dds_heap_bytes(&s),
     sizeof s);
  sl_dds_free(&s);
}

/* The bucket bound: data spanning far more than max_bins buckets. */
static void test_dds_collapse(void) {
  enum { N = 20000, BINS = 64 };
  static double xs[N];
  rng_state = 99;
  sl_dds_t one, part[3], merged;
  int err = sl_dds_init(&one, 0.01, BINS) | sl_dds_init(&merged, 0.01, BINS);
  for (int p = 0; p < 3; p++) err |= sl_dds_init(&part[p], 0.01, BINS);
  for (int i = 0; i < N; i++) {
    /* Magnitudes from 1e-6 to 1e6 (~1400 buckets), both signs. */
    double x = exp((uniform01() * 2 - 1) * 6 * M_LN10);
    if (rng() % 4 == 0) x = -x;
    xs[i] = x;
    err |= sl_dds_add(&one, x);
    err |= sl_dds_add(&part[rng() % 3], x);
  }
  for (int p = 0; p < 3; p++) err |= sl_dds_merge(&merged, &part[p]);
  ok(!err && one.pos.n == BINS && one.neg.n == BINS && merged.pos.n == BINS,
     "DDSketch bound: each store keeps at most %d buckets (%u positive, %u negative)", BINS,
     one.pos.n, one.neg.n);
  qsort(xs, N, sizeof xs[0], cmp_double);
  double got, want = xs[(size_t)(0.999 * (N - 1))];
  sl_dds_quantile(&one, 0.999, &got);
  ok(fabs(got - want) <= 0.01 * fabs(want) * (1 + 1e-9),
     "DDSketch bound: the highest quantiles keep 1 %% (q=0.999: %.6g vs %.6g)", got, want);
  want = xs[(size_t)(0.001 * (N - 1))];
  sl_dds_quantile(&one, 0.001, &got);
  ok(fabs(got - want) <= 0.01 * fabs(want) * (1 + 1e-9),
     "DDSketch bound: the most negative values keep 1 %% too (q=0.001: %.6g vs %.6g)", got, want);
  want = xs[(size_t)(0.6 * (N - 1))]; /* a small positive value, collapsed */
  sl_dds_quantile(&one, 0.6, &got);
  ok(want > 0 && got > want * 1.01,
     "DDSketch bound: a collapsed small value answers too large, as documented (q=0.6: %.6g vs "
     "%.6g)",
     got, want);
  int same = 1;
  for (double q = 0; q <= 1; q += 0.01) {
    double a, b;
    sl_dds_quantile(&one, q, &a);
    sl_dds_quantile(&merged, q, &b);
    if (a != b) same = 0;
  }
  ok(same, "DDSketch bound: merged parts answer identically to one pass, collapses included");
  for (int p = 0; p < 3; p++) sl_dds_free(&part[p]);
  sl_dds_free(&one);
  sl_dds_free(&merged);
}

static int dds_decode(const uint8_t *p, size_t len) {
  sl_dds_t t;
  size_t used;
  int r = sl_dds_deserialize(&t, p, len, &used);
  sl_dds_free(&t);
  return r;
}

static void test_dds_format(void) {
  rng_state = 5;
  sl_dds_t s, back;
  sl_dds_init(&s, SL_DDS_DEFAULT_ALPHA, SL_DDS_DEFAULT_MAX_BINS);
  for (int i = 0; i < 5000; i++) sl_dds_add(&s, gen_signed());
  sl_buf_t b = {0};
  int err = sl_dds_serialize(&s, &b);
  size_t used = 0;
  int r = sl_dds_deserialize(&back, b.data, b.len, &used);
  int same = !err && r == 0 && used == b.len && sl_dds_count(&back) == 5000;
  for (double q = 0; q <= 1 && same; q += 0.001) {
    double x, y;
    sl_dds_quantile(&s, q, &x);
    sl_dds_quantile(&back, q, &y);
    same = x == y;
  }
  ok(same, "DDSketch round-trips (%zu bytes for %zu buckets)", used, sl_dds_buckets(&s));
  int bad = 0;
  for (size_t len = 0; len < b.len; len++)
    if (dds_decode((const uint8_t *)b.data, len) != SL_EBADSTATE) bad++;
  ok(bad == 0, "DDSketch: every truncation is SL_EBADSTATE");
  sl_buf_free(&b);
  sl_dds_free(&back);
  sl_dds_free(&s);

  sl_dds_t e;
  sl_dds_init(&e, SL_DDS_DEFAULT_ALPHA, SL_DDS_DEFAULT_MAX_BINS);
  sl_buf_t eb = {0};
  sl_dds_serialize(&e, &eb);
  ok(dds_decode((const uint8_t *)eb.data, eb.len) == 0, "DDSketch: the empty sketch round-trips");
  /* Offsets in the empty sketch's bytes: 2 header, 8 alpha, 2 max_bins
   * (2048), 1 zero count, 8 min, 8 max, 1 positive n, 1 negative n. */
  uint8_t m[64];
  memcpy(m, eb.data, eb.len);
  m[0] = 'H';
  is_int(dds_decode(m, eb.len), SL_EBADSTATE, "DDSketch: wrong magic refused");
  memcpy(m, eb.data, eb.len);
  m[2 + 7] = 0x7f; /* alpha's top byte: a huge alpha */
  is_int(dds_decode(m, eb.len), SL_EBADSTATE, "DDSketch: alpha out of range refused");
  memcpy(m, eb.data, eb.len);
  m[12] = 1; /* one zero but min = max = 0: fine */
  is_int(dds_decode(m, eb.len), 0, "DDSketch: a zero count alone decodes");
  /* A positive store with a bucket of count 0. */
  size_t pn = eb.len - 2;
  memcpy(m, eb.data, pn);
  m[pn] = 1;
  m[pn + 1] = 2; /* zigzag 1 */
  m[pn + 2] = 0; /* count 0 */
  m[pn + 3] = 0; /* negative n */
  is_int(dds_decode(m, pn + 4), SL_EBADSTATE, "DDSketch: a bucket with count 0 refused");
  m[pn + 2] =
      1; /* count 1 but min = max = 0: still decodes (min/max are not checked against buckets) */
  is_int(dds_decode(m, pn + 4), 0, "DDSketch: one bucket decodes");
  m[pn] = 2;
  m[pn + 3] = 0; /* second bucket at the same index (delta 0) */
  m[pn + 4] = 1;
  m[pn + 5] = 0;
  is_int(dds_decode(m, pn + 6), SL_EBADSTATE, "DDSketch: unsorted buckets refused");
  m[pn] = 1;
  m[pn + 1] = 0xfe; /* zigzag delta 2^20-ish: outside the finite doubles */
  m[pn + 2] = 0xff;
  m[pn + 3] = 0x7f;
  m[pn + 4] = 1;
  m[pn + 5] = 0;
  is_int(dds_decode(m, pn + 6), SL_EBADSTATE, "DDSketch: bucket index beyond DBL_MAX refused");
  sl_buf_free(&eb);
  sl_dds_free(&e);
}

/* Flipped bytes in serialised sketches: a sketch or SL_EBADSTATE, never a
 * crash or a read outside the bytes (the sanitizer and valgrind runs watch). */
static void test_mutations(void) {
  rng_state = 123;
  sl_hll_t h;
  sl_dds_t d;
  sl_hll_init(&h);
  sl_dds_init(&d, SL_DDS_DEFAULT_ALPHA, 64);
  for (int i = 0; i < 200; i++) {
    hll_add_elem(&h, 5, (uint64_t)i);
    sl_dds_add(&d, gen_signed());
  }
  sl_buf_t hb = {0}, db = {0};
  sl_hll_serialize(&h, &hb);
  sl_dds_serialize(&d, &db);
  int bad = 0, accepted = 0;
  for (int i = 0; i < 4000; i++) {
    sl_buf_t *b = i % 2 ? &db : &hb;
    uint8_t *m = malloc(b->len);
    memcpy(m, b->data, b->len);
    for (int k = 0; k < 1 + (int)(rng() % 3); k++)
      m[rng() % b->len] ^= (uint8_t)(1u << (rng() % 8));
    size_t len = rng() % 4 ? b->len : rng() % b->len, used = 0;
    int r;
    if (i % 2) {
      sl_dds_t t;
      r = sl_dds_deserialize(&t, m, len, &used);
      double q;
      if (r == 0) sl_dds_quantile(&t, 0.5, &q);
      sl_dds_free(&t);
    } else {
      sl_hll_t t;
      r = sl_hll_deserialize(&t, m, len, &used);
      if (r == 0) (void)sl_hll_estimate(&t);
      sl_hll_free(&t);
    }
    if (r == 0) accepted++;
    if ((r != 0 && r != SL_EBADSTATE) || (r == 0 && used > len)) bad++;
    free(m);
  }
  ok(bad == 0,
     "4000 mutated sketches: each decodes within its bytes or is SL_EBADSTATE (%d decoded)",
     accepted);
  sl_buf_free(&hb);
  sl_buf_free(&db);
  sl_hll_free(&h);
  sl_dds_free(&d);
}

/* The bins a sink reads (sl_dds_bins): ascending, counts summing to the
 * count, each value inside its bin; a store at its bound reaches down to
 * 0. */
static void test_dds_bins(void) {
  sl_dds_t s;
  sl_dds_init(&s, 0.01, 2048);
  static const double v[] = {-1000, -1, -1, 0, 1e-3, 2, 2, 3.5, 1e9};
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) sl_dds_add(&s, v[i]);
  sl_dds_bin_t b[16];
  size_t n = sl_dds_bins(&s, b, 16);
  is_int(n, 7, "7 bins: 2 negative, zero, 4 positive");
  is_int(sl_dds_bins(&s, b, 2), 7, "asked for fewer, it still says how many");
  uint64_t total = 0;
  bool ascending = true, inside = true;
  for (size_t i = 0; i < n; i++) {
    total += b[i].count;
    ascending &= b[i].lower <= b[i].upper && (!i || b[i - 1].upper <= b[i].lower);
  }
  for (size_t k = 0; k < sizeof v / sizeof *v; k++) {
    bool in = false;
    for (size_t i = 0; i < n && !in; i++)
      in = v[k] == 0 ? b[i].lower == 0 && b[i].upper == 0
           : v[k] > 0 ? v[k] > b[i].lower && v[k] <= b[i].upper * (1 + 1e-12)
                      : v[k] >= b[i].lower * (1 + 1e-12) && v[k] < b[i].upper;
    inside &= in;
  }
  ok(total == s.count && ascending, "ascending bins, counts summing to %" PRIu64, s.count);
  ok(inside, "every value inside its bin");
  sl_dds_free(&s);

  sl_dds_init(&s, 0.01, 4);
  for (int i = 1; i <= 100; i++) sl_dds_add(&s, i);
  n = sl_dds_bins(&s, b, 16);
  ok(n == 4 && b[0].lower == 0 && b[1].lower > 0, "a store at its bound: the lowest bin reaches down to 0");
  sl_dds_free(&s);
}

int main(void) {
  test_hll_accuracy();
  test_hll_merge();
  test_hll_memory();
  test_hll_format();
  test_dds_accuracy();
  test_dds_edges();
  test_dds_collapse();
  test_dds_format();
  test_dds_bins();
  test_mutations();
  return tap_done();
}
