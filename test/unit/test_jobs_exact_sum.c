/* Unit tests for agent/jobs/exact_sum.c: sums of random doubles over wide
 * ranges against an independent exact sum (a 128-bit integer of a common
 * scale, converted by the compiler's correctly rounded conversion), ties to
 * even, cancellation, integers at the int64 edges, subnormals, overflow to
 * infinity, merges of random splits bit for bit, and where heap is used. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "jobs/exact_sum.h"
#include "tap.h"

static uint64_t rng_state;

static uint64_t rng(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

__extension__ typedef __int128 i128;

/* Random doubles k 2^e, |k| < 2^53, e in [lo, hi]; the exact sum as
 * a 128-bit multiple of 2^lo. */
#define N 2000

static void random_data(double *xs, int n, int lo, int hi, i128 *exact) {
  *exact = 0;
  for (int i = 0; i < n; i++) {
    int64_t k = (int64_t)(rng() >> 11);
    if (rng() & 1) k = -k;
    int e = lo + (int)(rng() % (uint64_t)(hi - lo + 1));
    xs[i] = ldexp((double)k, e);
    *exact += (i128)k * ((i128)1 << (e - lo));
  }
}

static double round_ref(i128 exact, int lo) {
  return ldexp((double)exact, lo);
}

static void test_random_vs_reference(void) {
  static double xs[N];
  rng_state = 3;
  int all = 1, merged_same = 1;
  size_t heap = 0;
  for (int trial = 0; trial < 40; trial++) {
    int lo = -60 - (int)(rng() % 40), hi = lo + 50; /* values over 15 decimal orders */
    i128 exact;
    random_data(xs, N, lo, hi, &exact);
    sl_exact_sum_t s, part[3], m;
    sl_exact_sum_init(&s);
    sl_exact_sum_init(&m);
    for (int p = 0; p < 3; p++) sl_exact_sum_init(&part[p]);
    int err = 0;
    for (int i = 0; i < N; i++) {
      err |= sl_exact_sum_add_double(&s, xs[i]);
      err |= sl_exact_sum_add_double(&part[rng() % 3], xs[i]);
    }
    for (int p = 2; p >= 0; p--) err |= sl_exact_sum_merge(&m, &part[p]);
    double want = round_ref(exact, lo), got = sl_exact_sum_double(&s);
    if (err || got != want) {
      all = 0;
      printf("#   trial %d: got %.17g, want %.17g\n", trial, got, want);
    }
    if (sl_exact_sum_double(&m) != got) merged_same = 0;
    heap += sl_exact_sum_heap_bytes(&s);
    for (int p = 0; p < 3; p++) sl_exact_sum_free(&part[p]);
    sl_exact_sum_free(&s);
    sl_exact_sum_free(&m);
  }
  ok(all, "40 x %d random doubles over 15 decimal orders: correctly rounded exact sums", N);
  ok(merged_same, "their merged random thirds give the same doubles");
  ok(heap == 0, "all of them fit the inline limbs (heap %zu)", heap);
}

/* A running double sum gets these wrong. */
static void test_known(void) {
  sl_exact_sum_t s;
  sl_exact_sum_init(&s);
  for (int i = 0; i < 10; i++) sl_exact_sum_add_double(&s, 0.1);
  ok(sl_exact_sum_double(&s) == 1.0, "0.1 ten times is 1.0");
  sl_exact_sum_free(&s);
  sl_exact_sum_add_double(&s, 1e100);
  sl_exact_sum_add_double(&s, 1.0);
  sl_exact_sum_add_double(&s, -1e100);
  ok(sl_exact_sum_double(&s) == 1.0, "1e100 + 1 - 1e100 is 1");
  ok(sl_exact_sum_heap_bytes(&s) > 0, "that sum spans 333 binary orders: it uses heap (%zu bytes)",
     sl_exact_sum_heap_bytes(&s));
  sl_exact_sum_free(&s);
  ok(sl_exact_sum_heap_bytes(&s) == 0 && sl_exact_sum_double(&s) == 0, "free: back to 0");

  /* Ties to even, decided by bits far below. */
  sl_exact_sum_add_double(&s, 1);
  sl_exact_sum_add_double(&s, 0x1p-53);
  ok(sl_exact_sum_double(&s) == 1, "1 + 2^-53 ties to even: 1");
  sl_exact_sum_add_double(&s, 0x1p-200);
  ok(sl_exact_sum_double(&s) == 1 + 0x1p-52, "+ 2^-200: above the tie, rounds up");
  sl_exact_sum_add_double(&s, -0x1p-199);
  ok(sl_exact_sum_double(&s) == 1, "- 2^-199: below the tie, rounds down");
  sl_exact_sum_free(&s);
  sl_exact_sum_add_double(&s, 1 + 0x1p-52);
  sl_exact_sum_add_double(&s, 0x1p-53);
  ok(sl_exact_sum_double(&s) == 1 + 0x1p-51, "(1 + 2^-52) + 2^-53 ties to even: up");
  sl_exact_sum_free(&s);
  sl_exact_sum_add_double(&s, -1);
  sl_exact_sum_add_double(&s, -0x1p-53);
  sl_exact_sum_add_double(&s, -0x1p-300);
  ok(sl_exact_sum_double(&s) == -(1 + 0x1p-52), "negative: just past the tie rounds away from 0");
  sl_exact_sum_free(&s);

  /* Range. */
  sl_exact_sum_add_double(&s, DBL_MAX);
  sl_exact_sum_add_double(&s, DBL_MAX);
  ok(sl_exact_sum_double(&s) == INFINITY, "DBL_MAX + DBL_MAX reads as +inf");
  sl_exact_sum_add_double(&s, -DBL_MAX);
  ok(sl_exact_sum_double(&s) == DBL_MAX, "- DBL_MAX: back to DBL_MAX, exactly");
  sl_exact_sum_add_double(&s, 0x1p970);
  ok(sl_exact_sum_double(&s) == INFINITY, "DBL_MAX + half an ulp ties to even: +inf");
  sl_exact_sum_add_double(&s, -0x1p969);
  ok(sl_exact_sum_double(&s) == DBL_MAX, "DBL_MAX + a quarter ulp: DBL_MAX");
  sl_exact_sum_free(&s);
  sl_exact_sum_add_double(&s, 5e-324);
  sl_exact_sum_add_double(&s, 5e-324);
  sl_exact_sum_add_double(&s, 0x1p-1022);
  ok(sl_exact_sum_double(&s) == 0x1p-1022 + 1e-323, "subnormals add exactly");
  sl_exact_sum_add_double(&s, -0x1p-1022);
  sl_exact_sum_add_double(&s, -1e-323);
  ok(sl_exact_sum_double(&s) == 0 && !signbit(sl_exact_sum_double(&s)), "and cancel to +0");
  is_int(sl_exact_sum_add_double(&s, NAN), SL_ERANGE, "NaN refused");
  is_int(sl_exact_sum_add_double(&s, INFINITY), SL_ERANGE, "infinity refused");
  sl_exact_sum_free(&s);
}

static void test_integers(void) {
  sl_exact_sum_t s;
  int64_t v = 1;
  sl_exact_sum_init(&s);
  ok(sl_exact_sum_int64(&s, &v) && v == 0, "empty: the integer 0");
  sl_exact_sum_add_int(&s, INT64_MAX);
  sl_exact_sum_add_int(&s, INT64_MAX);
  ok(!sl_exact_sum_int64(&s, &v), "2 x INT64_MAX is not an int64");
  ok(sl_exact_sum_double(&s) == 0x1p64, "and reads as 2^64");
  sl_exact_sum_add_int(&s, INT64_MIN);
  sl_exact_sum_add_int(&s, INT64_MIN);
  sl_exact_sum_add_int(&s, 2);
  ok(sl_exact_sum_int64(&s, &v) && v == 0, "+ 2 x INT64_MIN + 2: 0, exactly");
  sl_exact_sum_add_uint(&s, UINT64_MAX);
  sl_exact_sum_add_int(&s, INT64_MIN);
  ok(sl_exact_sum_int64(&s, &v) && v == INT64_MAX, "UINT64_MAX + INT64_MIN = INT64_MAX");
  sl_exact_sum_add_int(&s, 1);
  ok(!sl_exact_sum_int64(&s, &v) && sl_exact_sum_double(&s) == 0x1p63, "+ 1 leaves int64");
  sl_exact_sum_free(&s);
  for (int i = 0; i < 1000; i++) sl_exact_sum_add_uint(&s, UINT64_MAX);
  ok(sl_exact_sum_double(&s) == 1000 * 0x1p64, "1000 x UINT64_MAX rounds to 1000 x 2^64");
  ok(sl_exact_sum_heap_bytes(&s) == 0, "integer sums stay inline");
  sl_exact_sum_add_double(&s, 0.5);
  ok(!sl_exact_sum_int64(&s, &v), "a fraction makes it no integer");
  sl_exact_sum_free(&s);
  sl_exact_sum_add_int(&s, 9007199254740993); /* 2^53 + 1 */
  sl_exact_sum_add_double(&s, 0.5);
  ok(sl_exact_sum_double(&s) == 9007199254740994.0, "2^53 + 1 + 0.5 rounds to 2^53 + 2");
  sl_exact_sum_free(&s);
}

/* Heap limbs, and merges across very different windows. */
static void test_wide(void) {
  static double xs[N];
  rng_state = 8;
  int all = 1;
  size_t most = 0;
  for (int trial = 0; trial < 20; trial++) {
    sl_exact_sum_t one, a, b;
    sl_exact_sum_init(&one);
    sl_exact_sum_init(&a);
    sl_exact_sum_init(&b);
    int err = 0;
    for (int i = 0; i < N; i++) {
      /* Any exponent of the whole range, both signs. */
      double x = ldexp((double)(rng() >> 11), (int)(rng() % 2098) - 1126);
      if (rng() & 1) x = -x;
      if (!isfinite(x)) x = 1;
      xs[i] = x;
      err |= sl_exact_sum_add_double(&one, x);
      err |= sl_exact_sum_add_double(i < N / 2 ? &a : &b, x);
    }
    /* Add the values in reverse into another: same double. */
    sl_exact_sum_t rev;
    sl_exact_sum_init(&rev);
    for (int i = N; i-- > 0;) err |= sl_exact_sum_add_double(&rev, xs[i]);
    err |= sl_exact_sum_merge(&b, &a);
    if (err || sl_exact_sum_double(&b) != sl_exact_sum_double(&one) ||
        sl_exact_sum_double(&rev) != sl_exact_sum_double(&one))
      all = 0;
    if (sl_exact_sum_heap_bytes(&one) > most) most = sl_exact_sum_heap_bytes(&one);
    /* Subtracting every value again leaves exactly 0. */
    for (int i = 0; i < N; i++) err |= sl_exact_sum_add_double(&one, -xs[i]);
    if (err || sl_exact_sum_double(&one) != 0) all = 0;
    sl_exact_sum_free(&one);
    sl_exact_sum_free(&a);
    sl_exact_sum_free(&b);
    sl_exact_sum_free(&rev);
  }
  ok(all,
     "values over the whole double range: order and split do not change the sum; minus each is 0");
  ok(most > 0 && most <= 40 * 8, "they use heap, bounded (%zu bytes)", most);
}

int main(void) {
  test_random_vs_reference();
  test_known();
  test_integers();
  test_wide();
  return tap_done();
}
