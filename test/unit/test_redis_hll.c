/* Unit tests for agent/jobs/redis_hll.c against answers taken from a real
 * Redis 7.0.15 (PFADD, then GET and PFCOUNT): the register and rank single
 * elements set, the exact sparse string of one element, the SHA-256 of the
 * registers and the PFCOUNT of u0..u{n-1} for n = 100 (sparse), 3000 and
 * 100,000 (dense).  Then merges of random splits equal to one pass in every
 * sparse/dense combination, the string read back, corrupt strings refused,
 * and the error within 3 standard errors up to 10^6 elements. */
#include <inttypes.h>
#include <math.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "jobs/redis_hll.h"
#include "tap.h"

static uint64_t rng_state = 42;
static uint64_t rng(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int add_str(sl_redis_hll_t *h, const char *s) {
  return sl_redis_hll_add(h, s, strlen(s));
}

static int add_u(sl_redis_hll_t *h, uint64_t i) {
  char e[32];
  int n = snprintf(e, sizeof e, "u%" PRIu64, i);
  return sl_redis_hll_add(h, e, (size_t)n);
}

static void hex(const uint8_t *p, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
}

/* The one non-zero register of a sketch of one element, read back from
 * its Redis string. */
static int one_register(const sl_redis_hll_t *h, uint32_t *idx, uint32_t *rank) {
  sl_buf_t b = {0};
  sl_redis_hll_t back;
  int r = sl_redis_hll_to_redis(h, &b) || sl_redis_hll_from_redis(&back, b.data, b.len);
  sl_buf_free(&b);
  if (r || back.s.is_dense || back.s.n != 1) return -1;
  *idx = back.s.u.inl[0] >> 6;
  *rank = back.s.u.inl[0] & 63;
  sl_redis_hll_free(&back);
  return 0;
}

static void test_single_elements(void) {
  static const struct {
    const char *e;
    size_t len;
    uint32_t idx, rank;
  } kat[] = {
      {"", 0, 5938, 2},          {"a", 1, 12711, 2},         {"hello", 5, 9216, 1},
      {"1234567", 7, 10327, 3},  {"12345678", 8, 10579, 3},  {"123456789", 9, 9293, 2},
      {"user-42", 7, 11405, 1},  {"0123456789abcdef0", 17, 16236, 1},
      {"\xff\x00\x80" "binary", 9, 1328, 1},
  };
  for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
    sl_redis_hll_t h = {0};
    uint32_t idx = 0, rank = 0;
    int r = sl_redis_hll_add(&h, kat[i].e, kat[i].len) || one_register(&h, &idx, &rank);
    ok(!r && idx == kat[i].idx && rank == kat[i].rank, "element %zu (%zu bytes): register %u rank %u as Redis",
       i, kat[i].len, idx, rank);
    ok(sl_redis_hll_count(&h) == 1, "one element counts 1");
    sl_redis_hll_free(&h);
  }
  /* Redis's own string after PFADD k hello. */
  static const uint8_t want[] = {'H', 'Y', 'L', 'L', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x63, 0xff, 0x80, 0x5b, 0xfe};
  sl_redis_hll_t h = {0};
  sl_buf_t b = {0};
  add_str(&h, "hello");
  ok(sl_redis_hll_to_redis(&h, &b) == 0 && b.len == sizeof want && memcmp(b.data, want, sizeof want) == 0,
     "the sparse string of {hello} is byte for byte Redis's");
  sl_buf_free(&b);
  sl_redis_hll_free(&h);
  sl_redis_hll_t empty = {0};
  ok(sl_redis_hll_count(&empty) == 0, "an empty sketch counts 0");
  ok(sl_redis_hll_to_redis(&empty, &b) == 0 && b.len == 18 && (uint8_t)b.data[16] == 0x7f && (uint8_t)b.data[17] == 0xff,
     "an empty sketch is one XZERO run of 16384");
  sl_buf_free(&b);
}

static void test_redis_answers(void) {
  static const struct {
    uint64_t n;
    int encoding;
    uint64_t pfcount;
    const char *sha;
  } kat[] = {
      {100, 1, 99, "d26a29ab7af282840ca8dc2f5265c039bb86335053d6d85987a466b6c0091b26"},
      {3000, 0, 2987, "b61b0fbb6411673d04ca446b4fb886ebce91927c8f4544ec74d38e787a82a367"},
      {100000, 0, 100420, "d8765e72ac6e471cf8033aa49509d2c8bd589b9da35c735ca681f8f8fbe42a0f"},
  };
  for (size_t k = 0; k < sizeof kat / sizeof kat[0]; k++) {
    sl_redis_hll_t h = {0};
    int r = 0;
    for (uint64_t i = 0; i < kat[k].n && !r; i++) r = add_u(&h, i);
    sl_buf_t b = {0};
    r |= sl_redis_hll_to_redis(&h, &b);
    uint8_t md[SHA256_DIGEST_LENGTH];
    char got[2 * SHA256_DIGEST_LENGTH + 1] = "";
    if (!r && b.len > 16) {
      SHA256((const uint8_t *)b.data + 16, b.len - 16, md);
      hex(md, sizeof md, got);
    }
    ok(!r && b.len > 4 && b.data[4] == kat[k].encoding, "u0..u%" PRIu64 ": %s encoding, as Redis", kat[k].n - 1,
       kat[k].encoding ? "sparse" : "dense");
    ok(strcmp(got, kat[k].sha) == 0, "u0..u%" PRIu64 ": the registers are Redis's (sha-256 %.16s...)", kat[k].n - 1,
       got);
    uint64_t c = sl_redis_hll_count(&h);
    ok(c == kat[k].pfcount, "u0..u%" PRIu64 ": count %" PRIu64 " is Redis's PFCOUNT %" PRIu64, kat[k].n - 1, c,
       kat[k].pfcount);
    sl_buf_free(&b);
    sl_redis_hll_free(&h);
  }
}

static int same_string(const sl_redis_hll_t *a, const sl_redis_hll_t *b) {
  sl_buf_t x = {0}, y = {0};
  int r = !sl_redis_hll_to_redis(a, &x) && !sl_redis_hll_to_redis(b, &y) && x.len == y.len &&
          memcmp(x.data, y.data, x.len) == 0;
  sl_buf_free(&x);
  sl_buf_free(&y);
  return r;
}

static void test_merge(void) {
  /* Sizes on both sides of the switch to dense, split three ways. */
  static const uint64_t ns[] = {0, 1, 3, 700, 1024, 1100, 5000, 40000};
  for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
    sl_redis_hll_t one = {0}, part[3], merged = {0};
    for (int p = 0; p < 3; p++) sl_redis_hll_init(&part[p]);
    int r = 0;
    for (uint64_t i = 0; i < ns[k] && !r; i++) {
      uint64_t v = rng() % (ns[k] + 1);
      r = add_u(&one, v) || add_u(&part[rng() % 3], v);
    }
    for (int p = 0; p < 3 && !r; p++) r = sl_redis_hll_merge(&merged, &part[p]);
    sl_redis_hll_t rev = {0};
    for (int p = 2; p >= 0 && !r; p--) r = sl_redis_hll_merge(&rev, &part[p]);
    r |= sl_redis_hll_merge(&rev, &rev);
    ok(!r && same_string(&one, &merged) && same_string(&one, &rev) &&
           sl_redis_hll_count(&one) == sl_redis_hll_count(&merged),
       "%" PRIu64 " adds split three ways and merged (either order) equal one pass (%s)", ns[k],
       one.s.is_dense ? "dense" : "sparse");
    sl_redis_hll_free(&one);
    sl_redis_hll_free(&merged);
    sl_redis_hll_free(&rev);
    for (int p = 0; p < 3; p++) sl_redis_hll_free(&part[p]);
  }
}

static void test_round_trip(void) {
  static const uint64_t ns[] = {0, 2, 500, 1500, 20000};
  for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
    sl_redis_hll_t h = {0}, back;
    for (uint64_t i = 0; i < ns[k]; i++) add_u(&h, i * 7919);
    sl_buf_t b = {0};
    int r = sl_redis_hll_to_redis(&h, &b) || sl_redis_hll_from_redis(&back, b.data, b.len);
    ok(!r && same_string(&h, &back) && sl_redis_hll_count(&back) == sl_redis_hll_count(&h),
       "%" PRIu64 " elements: the Redis string reads back to the same registers (%zu bytes)", ns[k], b.len);
    if (!r) sl_redis_hll_free(&back);
    sl_buf_free(&b);
    sl_redis_hll_free(&h);
  }
}

/* Whether bytes[0..len) with byte `at` set to `v` (at < 0: none) is
 * refused; each case starts from the good string, so it has one fault. */
static int refused_with(const uint8_t *good, size_t len, long at, uint8_t v) {
  uint8_t *b = malloc(len ? len : 1);
  memcpy(b, good, len);
  if (at >= 0) b[at] = v;
  sl_redis_hll_t back;
  int r = sl_redis_hll_from_redis(&back, b, len);
  if (!r) sl_redis_hll_free(&back);
  free(b);
  return r == SL_EBADSTATE;
}

static void test_corrupt(void) {
  sl_redis_hll_t h = {0};
  for (int i = 0; i < 3000; i++) add_u(&h, (uint64_t)i);
  sl_buf_t dense = {0};
  sl_redis_hll_to_redis(&h, &dense);
  const uint8_t *d = (const uint8_t *)dense.data;
  ok(dense.len == SL_REDIS_HLL_DENSE_SIZE && !refused_with(d, dense.len, -1, 0), "the dense string itself is taken");
  ok(refused_with(d, dense.len - 1, -1, 0), "a dense string one byte short is refused");
  ok(refused_with(d, dense.len, 16, (uint8_t)(d[16] | 0x3f)), "a register above 51 is refused");
  ok(refused_with(d, dense.len, 3, 'X'), "a wrong magic is refused");
  ok(refused_with(d, dense.len, 4, 2), "an unknown encoding is refused");
  ok(refused_with(d, 10, -1, 0), "a string shorter than the header is refused");
  sl_buf_free(&dense);
  sl_redis_hll_free(&h);

  /* The empty sparse string: one XZERO of 16384 registers, then a byte to
   * spare for the cases that use it. */
  const uint8_t sparse[19] = {'H', 'Y', 'L', 'L', 1, [15] = 0x80, [16] = 0x7f, [17] = 0xff, [18] = 0x80};
  ok(!refused_with(sparse, 18, -1, 0), "the empty sparse string itself is taken");
  ok(refused_with(sparse, 18, 17, 0xfe), "sparse runs short of 16384 registers are refused");
  ok(refused_with(sparse, 19, -1, 0), "sparse runs past 16384 registers are refused");
  ok(refused_with(sparse, 17, -1, 0), "a cut XZERO opcode is refused");
}

static void test_accuracy(void) {
  static const uint64_t ns[] = {1000, 50000, 1000000};
  for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
    sl_redis_hll_t h = {0};
    for (uint64_t i = 0; i < ns[k]; i++) add_u(&h, i + 1000000000ull * (k + 1));
    double err = fabs((double)sl_redis_hll_count(&h) - (double)ns[k]) / (double)ns[k];
    ok(err < 3 * SL_REDIS_HLL_RSE, "%" PRIu64 " distinct: relative error %.4f within 3 x 0.81 %%", ns[k], err);
    sl_redis_hll_free(&h);
  }
}

int main(void) {
  test_single_elements();
  test_redis_answers();
  test_merge();
  test_round_trip();
  test_corrupt();
  test_accuracy();
  return tap_done();
}
