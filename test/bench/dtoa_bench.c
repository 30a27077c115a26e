/* Micro-benchmark of number formatting for the JSON encoder, in ns per
 * value: the old put_float loop (snprintf "%.*g" + strtod until the text
 * reads back), core/dtoa.c (Schubfach), and, when built with
 * -DWITH_DRAGONBOX, Debian's Dragonbox (libdragonbox-dev) finding the
 * digits inside core/dtoa.c's integer shortcut and layout, so that only the
 * digit search differs.  Not run by CI; dtoa_bench.sh builds and runs it:
 *
 *   bash test/bench/dtoa_bench.sh        # from the repository root
 *
 * Each data set is 4096 values (in cache, as a record's fields would be),
 * formatted ROUNDS times; the best round is reported. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The module itself, for its static layout() and decimal_t. */
#include "core/dtoa.c"
#include "../test/unit/old_float_text.h"

#define N 4096
#define ROUNDS 200

#ifdef WITH_DRAGONBOX
void bench_dragonbox_double(double v, uint64_t *f, int *e);
void bench_dragonbox_float(float v, uint64_t *f, int *e);

/* sl_dtoa_double with Dragonbox finding the digits. */
static size_t dragonbox_double(double v, char *buf, int flags) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  bool neg = bits >> 63;
  uint64_t frac = bits & (DOUBLE_C_MIN - 1);
  int bq = (int)(bits >> 52) & 0x7ff;
  if (bq == 0x7ff || (bq == 0 && frac == 0)) return special(buf, neg, bq == 0, frac != 0, flags);
  decimal_t d;
  uint64_t c = bq ? frac | DOUBLE_C_MIN : frac;
  int q = bq ? bq - 1075 : DOUBLE_Q_MIN;
  if (q < 0 && q > -53 && (c & (((uint64_t)1 << -q) - 1)) == 0)
    d = strip_zeros((decimal_t){c >> -q, 0}); /* core/dtoa.c's integer shortcut */
  else
    bench_dragonbox_double(v, &d.f, &d.e);
  buf[0] = '-';
  return layout(buf, buf + neg, d, fabs(v), 15, flags);
}

static size_t dragonbox_float(float v, char *buf, int flags) {
  uint32_t bits;
  memcpy(&bits, &v, sizeof bits);
  bool neg = bits >> 31;
  uint32_t frac = bits & (uint32_t)(FLOAT_C_MIN - 1);
  int bq = (int)(bits >> 23) & 0xff;
  if (bq == 0xff || (bq == 0 && frac == 0)) return special(buf, neg, bq == 0, frac != 0, flags);
  decimal_t d;
  uint64_t c = bq ? frac | FLOAT_C_MIN : frac;
  int q = bq ? bq - 150 : FLOAT_Q_MIN;
  if (q < 0 && q > -24 && (c & (((uint64_t)1 << -q) - 1)) == 0)
    d = strip_zeros((decimal_t){c >> -q, 0});
  else
    bench_dragonbox_float(v, &d.f, &d.e);
  buf[0] = '-';
  return layout(buf, buf + neg, d, fabsf(v), 6, flags);
}
#endif

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static double uniform(void) {
  return (double)(rng() >> 11) * 0x1p-53;
}

static double values[N];

typedef enum { OLD, SCHUBFACH, DRAGONBOX } impl_t;
static const char *impl_name[] = {"old loop", "Schubfach", "Dragonbox"};

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile size_t sink;

static double run(impl_t impl, int is_f32) {
  char buf[64];
  double best = 1e30;
  int rounds = impl == OLD ? ROUNDS / 20 : ROUNDS;
  for (int r = 0; r < rounds; r++) {
    size_t total = 0;
    double t0 = now_ns();
    for (int i = 0; i < N; i++) {
      double v = values[i];
      switch (impl) {
        case OLD:
          total += old_float_text(buf, v, is_f32);
          break;
        case SCHUBFACH:
          total += is_f32 ? sl_dtoa_float((float)v, buf, SL_DTOA_POINT_ZERO)
                          : sl_dtoa_double(v, buf, SL_DTOA_POINT_ZERO);
          break;
        case DRAGONBOX:
#ifdef WITH_DRAGONBOX
          total += is_f32 ? dragonbox_float((float)v, buf, SL_DTOA_POINT_ZERO)
                          : dragonbox_double(v, buf, SL_DTOA_POINT_ZERO);
#endif
          break;
      }
    }
    double t = (now_ns() - t0) / N;
    if (t < best) best = t;
    sink = total;
  }
  return best;
}

/* Latencies and measurements as people log them: a few decimals, a
 * magnitude between 0.01 and 10000 (log-uniform), with some well-known
 * shapes mixed in. */
static void fill_human(int is_f32) {
  static const double common[] = {12.345, 0.5, 1234.5678, 0.1, 99.9, 3.14, 250.0, 0.001};
  for (int i = 0; i < N; i++) {
    double v;
    if (i % 4 == 0) {
      v = common[(i / 4) % 8];
    } else {
      double mag = pow(10.0, -2.0 + 6.0 * uniform());
      double scale = pow(10.0, (double)(rng() % 4));
      v = round(mag * scale) / scale;
    }
    values[i] = is_f32 ? (double)(float)v : v;
  }
}

static void fill_random(int is_f32) {
  for (int i = 0; i < N; i++) {
    uint64_t b = rng();
    if (is_f32) {
      uint32_t fb = (uint32_t)b;
      float f;
      memcpy(&f, &fb, sizeof f);
      if (!isfinite(f)) f = 1.5f;
      values[i] = (double)f;
    } else {
      double d;
      memcpy(&d, &b, sizeof d);
      values[i] = isfinite(d) ? d : 1.5;
    }
  }
}

/* Uniform in [0, 1): the 16- and 17-digit case, the common shape of computed
 * ratios and sampled rates. */
static void fill_unit(int is_f32) {
  for (int i = 0; i < N; i++) values[i] = is_f32 ? (double)(float)uniform() : uniform();
}

static void fill_integral(int is_f32) {
  (void)is_f32; /* exact in both */
  for (int i = 0; i < N; i++) values[i] = (double)(rng() % 1000000);
}

int main(void) {
  static const struct {
    const char *name;
    void (*fill)(int);
  } sets[] = {
      {"human decimals (12.345, 0.5, 1234.5678, ...)", fill_human},
      {"uniform [0,1)", fill_unit},
      {"integers below 1e6", fill_integral},
      {"random bit patterns", fill_random},
  };
  int nimpl = 2;
#ifdef WITH_DRAGONBOX
  nimpl = 3;
#endif
  printf("ns per value (best of %d rounds of %d values)\n", ROUNDS, N);
  for (int is_f32 = 0; is_f32 <= 1; is_f32++) {
    printf("%-46s", is_f32 ? "float32" : "double");
    for (int impl = 0; impl < nimpl; impl++) printf(" %10s", impl_name[impl]);
    printf("\n");
    for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
      sets[s].fill(is_f32);
      printf("  %-44s", sets[s].name);
      for (int impl = 0; impl < nimpl; impl++) printf(" %10.1f", run((impl_t)impl, is_f32));
      printf("\n");
    }
  }
  return 0;
}
