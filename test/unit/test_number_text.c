/* How a record's numbers read where core/dtoa.c writes them: JSON values
 * (sl_json_encode) and Kafka keys and topic names (sl_scalar_text).  The
 * JSON text is the old encoder's (snprintf "%.*g" until strtod reads it
 * back) or fewer digits, and subnormals keep the old text exactly; the key
 * text is %.17g's or fewer digits, in the same notation, never longer. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtoa.h"
#include "ingest/json_encode.h"
#include "ingest/route.h"
#include "tap.h"
#include "old_float_text.h"

static sl_buf_t out;

static const char *json(msgpack_object o) {
  sl_buf_reset(&out);
  if (sl_json_encode(&out, &o) || sl_buf_putc(&out, '\0')) return "<error>";
  return out.data;
}

static const char *key(msgpack_object o) {
  sl_buf_reset(&out);
  if (sl_scalar_text(&o, &out) || sl_buf_putc(&out, '\0')) return "<error>";
  return out.data;
}

static msgpack_object f64(double d) {
  return (msgpack_object){.type = MSGPACK_OBJECT_FLOAT64, .via.f64 = d};
}
static msgpack_object f32(float f) {
  return (msgpack_object){.type = MSGPACK_OBJECT_FLOAT32, .via.f64 = (double)f};
}
static msgpack_object u64(uint64_t v) {
  return (msgpack_object){.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = v};
}
static msgpack_object i64(int64_t v) {
  return (msgpack_object){.type = MSGPACK_OBJECT_NEGATIVE_INTEGER, .via.i64 = v};
}

static int digits(const char *s) {
  int n = 0, a = -1, z = 0;
  for (; *s && *s != 'e'; s++) {
    if (*s < '0' || *s > '9') continue;
    if (a < 0 && *s == '0') continue;
    a = 0;
    n++;
    z = *s == '0' ? z + 1 : 0;
  }
  return n - z;
}

static uint64_t rng_state = 0x2545f4914f6cdd1du;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static void test_json(void) {
  is_str(json(f64(0.1)), "0.1", "JSON 0.1");
  is_str(json(f64(1.0)), "1.0", "JSON 1.0 stays a float");
  is_str(json(f64(-0.0)), "-0.0", "JSON -0.0");
  is_str(json(f64(1e15)), "1e+15", "JSON 1e15 as %%.15g wrote it");
  is_str(json(f64(1e14)), "100000000000000.0", "JSON 1e14");
  is_str(json(f64(12.345)), "12.345", "JSON 12.345");
  is_str(json(f64(NAN)), "null", "JSON NaN is null");
  is_str(json(f64(-INFINITY)), "null", "JSON -inf is null");
  is_str(json(f32(0.1f)), "0.1", "JSON float32 0.1");
  is_str(json(f32(1e6f)), "1e+06", "JSON float32 1e6 as %%.6g wrote it");
  is_str(json(f32(INFINITY)), "null", "JSON float32 inf is null");
  /* Subnormals get the shortest text too (the old loop padded them). */
  is_str(json(f64(DBL_TRUE_MIN)), "5e-324", "JSON smallest subnormal, shortest");
  is_str(json(f32(FLT_TRUE_MIN)), "1e-45", "JSON smallest float32 subnormal, shortest");
  is_str(json(u64(UINT64_MAX)), "18446744073709551615", "JSON UINT64_MAX");
  is_str(json(i64(INT64_MIN)), "-9223372036854775808", "JSON INT64_MIN");
  is_str(json(i64(-7)), "-7", "JSON -7");
  is_str(json(u64(0)), "0", "JSON 0");

  /* Random bit patterns: the old text, or fewer digits that read back. */
  long n = 0, differ = 0, bad = 0;
  for (int i = 0; i < 100000; i++) {
    uint64_t b = rng();
    double d;
    memcpy(&d, &b, sizeof d);
    char old[48], now[48];
    old_float_text(old, d, 0);
    snprintf(now, sizeof now, "%s", json(f64(d)));
    if (!isfinite(d)) {
      if (strcmp(now, "null") != 0 && bad++ < 5) printf("#   %a -> %s\n", d, now);
      continue;
    }
    n++;
    if (strcmp(now, old) != 0) {
      differ++;
      if ((strtod(now, NULL) != d || digits(now) >= digits(old)) &&
          bad++ < 5)
        printf("#   %a -> %s (old %s)\n", d, now, old);
    }
    uint32_t fb = (uint32_t)b;
    float f;
    memcpy(&f, &fb, sizeof f);
    if (!isfinite(f)) continue;
    old_float_text(old, (double)f, 1);
    snprintf(now, sizeof now, "%s", json(f32(f)));
    if (strcmp(now, old) != 0) {
      differ++;
      if ((strtof(now, NULL) != f || digits(now) >= digits(old)) &&
          bad++ < 5)
        printf("#   %af -> %s (old %s)\n", (double)f, now, old);
    }
  }
  is_int(
      bad, 0,
      "JSON of %ld random doubles and floats: the old text, or fewer digits (%ld differ; never a "
      "subnormal)",
      n, differ);
}

static void test_key(void) {
  is_str(key(f64(0.1)), "0.1", "key 0.1, not 0.10000000000000001");
  is_str(key(f64(0.1 + 0.2)), "0.30000000000000004", "key 0.1+0.2");
  is_str(key(f64(3.0)), "3", "key 3.0 is 3, as before");
  is_str(key(f64(-0.0)), "-0", "key -0.0");
  is_str(key(f64(1e15)), "1000000000000000", "key 1e15 in digits, as %%.17g wrote it");
  is_str(key(f64(1e17)), "1e+17", "key 1e17");
  is_str(key(f64(1.5e-7)), "1.5e-07", "key 1.5e-7");
  is_str(key(f64(NAN)), "nan", "key NaN as before");
  is_str(key(f32(0.1f)), "0.1", "key float32 0.1, not 0.10000000149011612");
  is_str(key(f32(3.14159274f)), "3.1415927", "key float32 pi");
  is_str(key(f32(16777216.0f)), "16777216", "key float32 2^24");
  is_str(key(u64(UINT64_MAX)), "18446744073709551615", "key UINT64_MAX");
  is_str(key(i64(INT64_MIN)), "-9223372036854775808", "key INT64_MIN");

  long bad = 0;
  char old[48], now[48];
  for (int i = 0; i < 100000; i++) {
    uint64_t b = rng();
    double d;
    if (i % 2) {
      d = (double)(b % 100000000) / pow(10.0, (double)(rng() % 12)) * (rng() % 2 ? 1 : -1);
    } else {
      memcpy(&d, &b, sizeof d);
      if (!isfinite(d)) continue;
    }
    snprintf(old, sizeof old, "%.17g", d);
    snprintf(now, sizeof now, "%s", key(f64(d)));
    if ((strtod(now, NULL) != d || strlen(now) > strlen(old) || digits(now) > digits(old) ||
         !strchr(now, 'e') != !strchr(old, 'e')) &&
        bad++ < 5)
      printf("#   %a -> %s (%%.17g %s)\n", d, now, old);
    float f = (float)d;
    if (!isfinite(f)) continue;
    snprintf(old, sizeof old, "%.17g", (double)f);
    snprintf(now, sizeof now, "%s", key(f32(f)));
    if ((strtof(now, NULL) != f || strlen(now) > strlen(old) || digits(now) > digits(old)) &&
        bad++ < 5)
      printf("#   %af -> %s (%%.17g %s)\n", (double)f, now, old);
  }
  is_int(bad, 0,
         "key text of 100,000 random doubles and floats reads back, never longer than %%.17g's, "
         "same notation");
  for (int i = 0; i < 100000; i++) {
    uint64_t v = rng() >> (rng() % 64);
    char want[32];
    snprintf(want, sizeof want, "%" PRIu64, v);
    if (strcmp(key(u64(v)), want) != 0 && bad++ < 5) printf("#   %s -> %s\n", want, out.data);
    snprintf(want, sizeof want, "%" PRId64, (int64_t)v);
    if (strcmp(key(i64((int64_t)v)), want) != 0 && bad++ < 5)
      printf("#   %s -> %s\n", want, out.data);
  }
  is_int(bad, 0, "key text of random integers as printf writes them");
}

int main(void) {
  test_json();
  test_key();
  sl_buf_free(&out);
  return tap_done();
}
