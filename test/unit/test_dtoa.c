/* Unit tests for core/dtoa.c.  Exact text for special values and landmarks
 * (zeros, subnormals, the limits, powers of ten, integers around 2^53,
 * 15/16/17-digit values), then random doubles and floats (bit patterns,
 * "human" decimals, integers), each checked five ways: strtod/strtof reads
 * the text back to the same bits; it never has more significant digits than
 * %.17g's (%.9g's); it is laid out as %.{P}g would, P = max(15 or 6,
 * digits) or 17 with SL_DTOA_AS_17G (against a second, string-based
 * layout); SL_DTOA_POINT_ZERO adds ".0" exactly when the text has no '.' or
 * 'e'; and the text is the JSON encoder's before core/dtoa.c (snprintf
 * "%.*g" at 15, 16, 17 digits, 6..9 for floats, until strtod reads it back)
 * or, where it differs, has fewer significant digits and is no longer.
 * (The text can be longer than %.17g's, "1.12589990684261e+15" for
 * 1125899906842610, exactly where the old encoder's was: P = 15 picks the
 * exponent form.)
 *
 * With no argument: 100,000 random bit patterns and 100,000 random
 * decimals, as doubles and as floats (the unit suite).  With a count it
 * runs that many of each and prints how often the text differs from the old
 * encoder's; suite 'slow' (not in CI) runs 10 million of each:
 *
 *   meson test -C build --suite slow --verbose
 *   build/test/test_dtoa 10000000 [SEED]
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtoa.h"
#include "tap.h"
#include "old_float_text.h"

/* ---- helpers -------------------------------------------------------------- */

/* Room the module may use, then a guard that must stay untouched. */
#define GUARD 16
static char area[SL_DTOA_BUF + GUARD];
static int guard_failures;

static void arm(void) {
  memset(area, 0x5a, sizeof area);
}
static void check_guard(void) {
  for (int i = SL_DTOA_BUF; i < SL_DTOA_BUF + GUARD; i++)
    if (area[i] != 0x5a) {
      guard_failures++;
      return;
    }
}

static int length_failures;

/* The text of v (NUL-terminated, in a static buffer). */
static const char *fmt_d(double v, int flags) {
  static char text[SL_DTOA_BUF];
  arm();
  size_t n = sl_dtoa_double(v, area, flags);
  check_guard();
  if (n >= SL_DTOA_BUF || strlen(area) != n) length_failures++;
  memcpy(text, area, sizeof text);
  text[SL_DTOA_BUF - 1] = '\0';
  return text;
}

static const char *fmt_f(float v, int flags) {
  static char text[SL_DTOA_BUF];
  arm();
  size_t n = sl_dtoa_float(v, area, flags);
  check_guard();
  if (n >= SL_DTOA_BUF || strlen(area) != n) length_failures++;
  memcpy(text, area, sizeof text);
  text[SL_DTOA_BUF - 1] = '\0';
  return text;
}

/* Significant digits of a number's text ("0.00120" -> 2, "1.0" -> 1). */
static int sig_digits(const char *s) {
  char d[64];
  int n = 0;
  for (; *s && *s != 'e'; s++)
    if (*s >= '0' && *s <= '9' && n < 63) d[n++] = *s;
  int a = 0;
  while (a < n && d[a] == '0') a++;
  while (n > a && d[n - 1] == '0') n--;
  return n - a;
}

/* The number in `text` (non-zero, any layout) laid out as %.{P}g does, P =
 * max(min_prec, digits): a second, string-based layout to check the
 * module's against. */
static void relayout(const char *text, int min_prec, char *out) {
  const char *s = text;
  char *o = out, dig[40];
  int nd = 0, point = -1;
  if (*s == '-') *o++ = *s++;
  for (; *s && *s != 'e'; s++) {
    if (*s == '.')
      point = nd;
    else if (nd < 39)
      dig[nd++] = *s;
  }
  if (point < 0) point = nd;
  int a = 0;
  while (a < nd && dig[a] == '0') a++;
  while (nd > a && dig[nd - 1] == '0') nd--;
  int n = nd - a, x = point - a - 1 + (*s == 'e' ? atoi(s + 1) : 0);
  int prec = n > min_prec ? n : min_prec;
  if (x < -4 || x >= prec) {
    *o++ = dig[a];
    if (n > 1) *o++ = '.';
    for (int i = a + 1; i < nd; i++) *o++ = dig[i];
    sprintf(o, "e%c%02d", x < 0 ? '-' : '+', abs(x));
    return;
  }
  if (x < 0) {
    *o++ = '0';
    *o++ = '.';
    for (int i = 0; i < -x - 1; i++) *o++ = '0';
    for (int i = a; i < nd; i++) *o++ = dig[i];
  } else {
    for (int i = 0; i <= x; i++) *o++ = i < n ? dig[a + i] : '0';
    if (n > x + 1) *o++ = '.';
    for (int i = x + 1; i < n; i++) *o++ = dig[a + i];
  }
  *o = '\0';
}

static bool same_double(double a, double b) {
  return memcmp(&a, &b, sizeof a) == 0;
}
static bool same_float(float a, float b) {
  return memcmp(&a, &b, sizeof a) == 0;
}

static uint64_t rng_state;
static uint64_t rng(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1du;
}

/* ---- one value, every property ---------------------------------------------- */

typedef struct {
  long values, not_read_back, more_digits_than_max, longer_than_max, point_zero_wrong, layout_wrong,
      differ, differ_subnormal, differ_not_shorter;
  long printed;
} stats_t;

static void report(stats_t *st, const char *what, double v, const char *text, const char *old) {
  if (st->printed++ < 8) printf("#   %s: %a -> \"%s\" (old \"%s\")\n", what, v, text, old);
}

static void check_double(stats_t *st, double v) {
  char plain[SL_DTOA_BUF], marked[SL_DTOA_BUF], max[40], old[48];
  st->values++;
  snprintf(plain, sizeof plain, "%s", fmt_d(v, 0));
  snprintf(marked, sizeof marked, "%s", fmt_d(v, SL_DTOA_POINT_ZERO));
  if (!same_double(strtod(plain, NULL), v)) {
    st->not_read_back++;
    report(st, "does not read back", v, plain, "");
  }
  snprintf(max, sizeof max, "%.17g", v);
  if (sig_digits(plain) > sig_digits(max)) {
    st->more_digits_than_max++;
    report(st, "more digits than %.17g", v, plain, max);
  }
  /* Longer text than %.17g's happens, where the %g layout with P = 15 (6)
   * picks the exponent form ("1.12589990684261e+15" for 1125899906842610):
   * the old encoder's text there is the same (checked below). */
  if (strlen(plain) > strlen(max)) st->longer_than_max++;
  bool integral_look = !strpbrk(plain, ".e");
  if (strncmp(marked, plain, strlen(plain)) != 0 ||
      strcmp(marked + strlen(plain), integral_look ? ".0" : "") != 0) {
    st->point_zero_wrong++;
    report(st, "SL_DTOA_POINT_ZERO", v, marked, plain);
  }
  if (v != 0) {
    char want[64];
    relayout(plain, 15, want);
    if (strcmp(plain, want) != 0) {
      st->layout_wrong++;
      report(st, "not in the %.15g layout", v, plain, want);
    }
    relayout(plain, 17, want);
    const char *wide = fmt_d(v, SL_DTOA_AS_17G);
    if (strcmp(wide, want) != 0) {
      st->layout_wrong++;
      report(st, "SL_DTOA_AS_17G", v, wide, want);
    }
  }
  old_float_text(old, v, 0);
  if (strcmp(marked, old) != 0) {
    st->differ++;
    if (fpclassify(v) == FP_SUBNORMAL) st->differ_subnormal++;
    if (!(sig_digits(marked) < sig_digits(old) && strlen(marked) <= strlen(old))) {
      st->differ_not_shorter++;
      report(st, "differs from the old encoder and is not shorter", v, marked, old);
    }
  }
}

static void check_float(stats_t *st, float v) {
  char plain[SL_DTOA_BUF], marked[SL_DTOA_BUF], max[40], old[48];
  st->values++;
  snprintf(plain, sizeof plain, "%s", fmt_f(v, 0));
  snprintf(marked, sizeof marked, "%s", fmt_f(v, SL_DTOA_POINT_ZERO));
  if (!same_float(strtof(plain, NULL), v)) {
    st->not_read_back++;
    report(st, "does not read back", v, plain, "");
  }
  snprintf(max, sizeof max, "%.9g", (double)v);
  if (sig_digits(plain) > sig_digits(max)) {
    st->more_digits_than_max++;
    report(st, "more digits than %.9g", v, plain, max);
  }
  /* Longer text than %.9g's happens, where the %g layout with P = 15 (6)
   * picks the exponent form ("1.12589990684261e+15" for 1125899906842610):
   * the old encoder's text there is the same (checked below). */
  if (strlen(plain) > strlen(max)) st->longer_than_max++;
  bool integral_look = !strpbrk(plain, ".e");
  if (strncmp(marked, plain, strlen(plain)) != 0 ||
      strcmp(marked + strlen(plain), integral_look ? ".0" : "") != 0) {
    st->point_zero_wrong++;
    report(st, "SL_DTOA_POINT_ZERO", v, marked, plain);
  }
  if (v != 0) {
    char want[64];
    relayout(plain, 6, want);
    if (strcmp(plain, want) != 0) {
      st->layout_wrong++;
      report(st, "not in the %.6g layout", v, plain, want);
    }
    relayout(plain, 17, want);
    const char *wide = fmt_f(v, SL_DTOA_AS_17G);
    if (strcmp(wide, want) != 0) {
      st->layout_wrong++;
      report(st, "SL_DTOA_AS_17G", v, wide, want);
    }
  }
  old_float_text(old, (double)v, 1);
  if (strcmp(marked, old) != 0) {
    st->differ++;
    if (fpclassify(v) == FP_SUBNORMAL) st->differ_subnormal++;
    if (!(sig_digits(marked) < sig_digits(old) && strlen(marked) <= strlen(old))) {
      st->differ_not_shorter++;
      report(st, "differs from the old encoder and is not shorter", v, marked, old);
    }
  }
}

/* One TAP line per property over a whole batch. */
static void tap_stats(const stats_t *st, const char *what) {
  ok(st->not_read_back == 0, "%s: all %ld read back to the same bits (%ld did not)", what,
     st->values, st->not_read_back);
  ok(st->more_digits_than_max == 0,
     "%s: never more significant digits than %%.17g / %%.9g (%ld had; %ld texts are longer, in "
     "the old layout)",
     what, st->more_digits_than_max, st->longer_than_max);
  ok(st->point_zero_wrong == 0,
     "%s: SL_DTOA_POINT_ZERO adds \".0\" exactly to integral-looking text", what);
  ok(st->layout_wrong == 0,
     "%s: %%g's layout with P = max(15 or 6, digits), or 17 with SL_DTOA_AS_17G", what);
  ok(st->differ_not_shorter == 0,
     "%s: same text as the old encoder, or fewer digits (%ld differ, %ld of them subnormal; %ld "
     "not "
     "shorter)",
     what, st->differ, st->differ_subnormal, st->differ_not_shorter);
}

/* ---- exact text ------------------------------------------------------------- */

static void test_double_landmarks(void) {
  static const struct {
    double v;
    const char *plain, *marked;
  } cases[] = {
      {0.0, "0", "0.0"},
      {-0.0, "-0", "-0.0"},
      {1.0, "1", "1.0"},
      {-1.0, "-1", "-1.0"},
      {0.5, "0.5", "0.5"},
      {0.1, "0.1", "0.1"},
      {0.3, "0.3", "0.3"},
      {0.1 + 0.2, "0.30000000000000004", "0.30000000000000004"},
      {1.0 / 3.0, "0.3333333333333333", "0.3333333333333333"},
      {2.0 / 3.0, "0.6666666666666666", "0.6666666666666666"},
      {12.345, "12.345", "12.345"},
      {-1234.5678, "-1234.5678", "-1234.5678"},
      {100.0, "100", "100.0"},
      {1e14, "100000000000000", "100000000000000.0"},
      {1e15, "1e+15", "1e+15"},
      {1e16, "1e+16", "1e+16"},
      {123456789012345.0, "123456789012345", "123456789012345.0"},
      {1234567890123456.0, "1234567890123456", "1234567890123456.0"},
      {12345678901234567.0, "12345678901234568", "12345678901234568.0"},
      {123456789012345678.0, "1.2345678901234568e+17", "1.2345678901234568e+17"},
      {0.1234567890123456, "0.1234567890123456", "0.1234567890123456"},
      {123.456789012345, "123.456789012345", "123.456789012345"},
      {9007199254740992.0, "9007199254740992", "9007199254740992.0"},
      {9007199254740994.0, "9007199254740994", "9007199254740994.0"},
      {9007199254740991.0, "9007199254740991", "9007199254740991.0"},
      {2251799813685248.5, "2251799813685248.5", "2251799813685248.5"},
      {9223372036854775808.0, "9.223372036854776e+18", "9.223372036854776e+18"},
      {18446744073709551616.0, "1.8446744073709552e+19", "1.8446744073709552e+19"},
      {1e21, "1e+21", "1e+21"},
      {1e22, "1e+22", "1e+22"},
      {1e23, "1e+23", "1e+23"},
      {0x1.52d02c7e14af7p+76, "1.0000000000000001e+23", "1.0000000000000001e+23"},
      {1e100, "1e+100", "1e+100"},
      {0.0001, "0.0001", "0.0001"},
      {0.000123, "0.000123", "0.000123"},
      {0.00001, "1e-05", "1e-05"},
      {1.5e-5, "1.5e-05", "1.5e-05"},
      {-2.5e-7, "-2.5e-07", "-2.5e-07"},
      {DBL_MAX, "1.7976931348623157e+308", "1.7976931348623157e+308"},
      {-DBL_MAX, "-1.7976931348623157e+308", "-1.7976931348623157e+308"},
      {DBL_MIN, "2.2250738585072014e-308", "2.2250738585072014e-308"},
      {DBL_EPSILON, "2.220446049250313e-16", "2.220446049250313e-16"},
      /* Subnormals: the shortest text, often far shorter than the old
       * encoder's 15 digits. */
      {DBL_TRUE_MIN, "5e-324", "5e-324"},
      {-DBL_TRUE_MIN, "-5e-324", "-5e-324"},
      {2 * DBL_TRUE_MIN, "1e-323", "1e-323"},
      {3 * DBL_TRUE_MIN, "1.5e-323", "1.5e-323"},
      {0x0.fffffffffffffp-1022, "2.225073858507201e-308", "2.225073858507201e-308"},
      {0x0.0000000000001p-1022 * 123456789, "6.0995758e-316", "6.0995758e-316"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    is_str(fmt_d(cases[i].v, 0), cases[i].plain, "double %a", cases[i].v);
    is_str(fmt_d(cases[i].v, SL_DTOA_POINT_ZERO), cases[i].marked, "double %a with .0", cases[i].v);
  }
  /* SL_DTOA_AS_17G: fixed notation up to 17 integer digits. */
  static const struct {
    double v;
    const char *text;
  } wide[] = {
      {1e15, "1000000000000000"},
      {1e16, "10000000000000000"},
      {-1e16, "-10000000000000000"},
      {1e17, "1e+17"},
      {123456789012345678.0, "1.2345678901234568e+17"},
      {12345678901234567.0, "12345678901234568"},
      {0.1, "0.1"},
      {0.00001, "1e-05"},
      {9007199254740992.0, "9007199254740992"},
      {DBL_TRUE_MIN, "5e-324"},
  };
  for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++)
    is_str(fmt_d(wide[i].v, SL_DTOA_AS_17G), wide[i].text, "double %a as %%.17g lays it out",
           wide[i].v);
  is_str(fmt_d(-1e16, SL_DTOA_AS_17G | SL_DTOA_POINT_ZERO), "-10000000000000000.0",
         "the longest fixed text, with .0");
  /* Not numbers: as %g writes them (JSON callers map them to null). */
  char g[16];
  const double odd[] = {NAN, -NAN, INFINITY, -INFINITY};
  for (size_t i = 0; i < 4; i++) {
    snprintf(g, sizeof g, "%g", odd[i]);
    is_str(fmt_d(odd[i], SL_DTOA_POINT_ZERO), g, "double %s as %%g writes it", g);
  }
}

static void test_float_landmarks(void) {
  static const struct {
    float v;
    const char *plain, *marked;
  } cases[] = {
      {0.0f, "0", "0.0"},
      {-0.0f, "-0", "-0.0"},
      {1.0f, "1", "1.0"},
      {0.1f, "0.1", "0.1"},
      {0.3f, "0.3", "0.3"},
      {3.14159274f, "3.1415927", "3.1415927"},
      {12.345f, "12.345", "12.345"},
      {100000.0f, "100000", "100000.0"},
      {123456.0f, "123456", "123456.0"},
      {1e6f, "1e+06", "1e+06"},
      {1234567.0f, "1234567", "1234567.0"},
      {16777216.0f, "16777216", "16777216.0"},
      {16777218.0f, "16777218", "16777218.0"},
      {1e10f, "1e+10", "1e+10"},
      {0.0001f, "0.0001", "0.0001"},
      {1e-5f, "1e-05", "1e-05"},
      {FLT_MAX, "3.4028235e+38", "3.4028235e+38"},
      {-FLT_MAX, "-3.4028235e+38", "-3.4028235e+38"},
      {FLT_MIN, "1.1754944e-38", "1.1754944e-38"},
      {FLT_EPSILON, "1.1920929e-07", "1.1920929e-07"},
      {FLT_TRUE_MIN, "1e-45", "1e-45"},
      {5 * FLT_TRUE_MIN, "7e-45", "7e-45"},
      {0x0.fffffep-126f, "1.1754942e-38", "1.1754942e-38"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    is_str(fmt_f(cases[i].v, 0), cases[i].plain, "float %a", (double)cases[i].v);
    is_str(fmt_f(cases[i].v, SL_DTOA_POINT_ZERO), cases[i].marked, "float %a with .0",
           (double)cases[i].v);
  }
  is_str(fmt_f(1e16f, SL_DTOA_AS_17G), "10000000000000000", "float 1e16 as %%.17g lays it out");
  is_str(fmt_f(1e17f, SL_DTOA_AS_17G), "1e+17", "float 1e17 as %%.17g lays it out");
  is_str(fmt_f(1e6f, SL_DTOA_AS_17G | SL_DTOA_POINT_ZERO), "1000000.0", "float 1e6 with .0");
  char g[16];
  const float odd[] = {NAN, -NAN, INFINITY, -INFINITY};
  for (size_t i = 0; i < 4; i++) {
    snprintf(g, sizeof g, "%g", (double)odd[i]);
    is_str(fmt_f(odd[i], 0), g, "float %s as %%g writes it", g);
  }
}

/* 1e-320 .. 1e308 (the double nearest each): always one digit, in the
 * %.15g layout. */
static void test_powers_of_ten(void) {
  int bad = 0;
  stats_t st = {0};
  for (int e = -320; e <= 308; e++) {
    char src[16], want[64];
    snprintf(src, sizeof src, "1e%d", e);
    double v = strtod(src, NULL);
    if (e >= -4 && e < 0) {
      snprintf(want, sizeof want, "%.*f", -e, pow(10.0, e));
    } else if (e >= 0 && e < 15) { /* "1000.0" */
      snprintf(want, sizeof want, "1");
      for (int i = 0; i < e; i++) strcat(want, "0");
      strcat(want, ".0");
    } else {
      snprintf(want, sizeof want, "1e%c%02d", e < 0 ? '-' : '+', abs(e));
    }
    const char *got = fmt_d(v, SL_DTOA_POINT_ZERO);
    if (strcmp(got, want) != 0 && bad++ < 5)
      printf("#   1e%d: got \"%s\", want \"%s\"\n", e, got, want);
    check_double(&st, v);
  }
  ok(bad == 0, "powers of ten 1e-320..1e308 are \"1e±XX\" or fixed (%d wrong)", bad);
  tap_stats(&st, "powers of ten");
  /* The same for floats, 1e-45 .. 1e38. */
  bad = 0;
  for (int e = -45; e <= 38; e++) {
    char src[16], want[64];
    snprintf(src, sizeof src, "1e%d", e);
    float v = strtof(src, NULL);
    if (e >= -4 && e < 0) {
      snprintf(want, sizeof want, "%.*f", -e, pow(10.0, e));
    } else if (e >= 0 && e < 6) {
      snprintf(want, sizeof want, "1");
      for (int i = 0; i < e; i++) strcat(want, "0");
      strcat(want, ".0");
    } else {
      snprintf(want, sizeof want, "1e%c%02d", e < 0 ? '-' : '+', abs(e));
    }
    const char *got = fmt_f(v, SL_DTOA_POINT_ZERO);
    if (strcmp(got, want) != 0 && bad++ < 5)
      printf("#   1e%df: got \"%s\", want \"%s\"\n", e, got, want);
  }
  ok(bad == 0, "float powers of ten 1e-45..1e38 (%d wrong)", bad);
}

/* Integers: 0..99999 exactly as "%d.0", and every power of two and its
 * neighbours up to 2^64 (around 2^53 above all) the same as the old
 * encoder, which for integers below 2^53 is exact and already shortest. */
static void test_integers(void) {
  int bad = 0;
  for (int i = 0; i < 100000; i++) {
    char want[32];
    snprintf(want, sizeof want, "%d.0", i);
    if (strcmp(fmt_d(i, SL_DTOA_POINT_ZERO), want) != 0 && bad++ < 5)
      printf("#   %d -> \"%s\"\n", i, fmt_d(i, SL_DTOA_POINT_ZERO));
    if (strcmp(fmt_f((float)i, SL_DTOA_POINT_ZERO), want) != 0 && bad++ < 5)
      printf("#   %df -> \"%s\"\n", i, fmt_f((float)i, SL_DTOA_POINT_ZERO));
  }
  ok(bad == 0, "integers 0..99999 as double and float are \"N.0\"");
  stats_t st = {0};
  int differ_below_2_53 = 0;
  for (int p = 0; p <= 64; p++) {
    for (int d = -16; d <= 16; d++) {
      double v = ldexp(1.0, p) + d;
      check_double(&st, v);
      check_double(&st, -v);
      char old[48];
      old_float_text(old, v, 0);
      if (v < 0x1p53 && v >= 0 && strcmp(old, fmt_d(v, SL_DTOA_POINT_ZERO)) != 0)
        differ_below_2_53++;
    }
  }
  tap_stats(&st, "2^p + d, p <= 64, |d| <= 16");
  is_int(differ_below_2_53, 0, "integers below 2^53: exactly the old encoder's text");
}

/* Every power of two and its neighbours: where the binade changes, the
 * neighbour below is twice as close as the one above. */
static void test_binade_edges(void) {
  stats_t st = {0}, fst = {0};
  for (int p = -1074; p <= 1023; p++) {
    double v = ldexp(1.0, p);
    check_double(&st, v);
    check_double(&st, nextafter(v, 0.0));
    check_double(&st, nextafter(v, INFINITY));
  }
  for (int p = -149; p <= 127; p++) {
    float v = ldexpf(1.0f, p);
    check_float(&fst, v);
    check_float(&fst, nextafterf(v, 0.0f));
    check_float(&fst, nextafterf(v, INFINITY));
  }
  tap_stats(&st, "double powers of two and neighbours");
  tap_stats(&fst, "float powers of two and neighbours");
}

/* ---- random values ------------------------------------------------------------ */

/* A random decimal of `digits` significant digits and a random exponent,
 * as text and as the double strtod makes of it. */
static double random_decimal(int digits, int exp_lo, int exp_hi, char *src, size_t len) {
  uint64_t m = 1 + rng() % 9;
  for (int i = 1; i < digits; i++) m = m * 10 + rng() % 10;
  int e = exp_lo + (int)(rng() % (uint64_t)(exp_hi - exp_lo + 1));
  snprintf(src, len, "%s%" PRIu64 "e%d", rng() & 1 ? "-" : "", m, e);
  return strtod(src, NULL);
}

static void run_random(long count, bool verbose) {
  stats_t bits = {0}, human = {0}, human_exact = {0}, fbits = {0}, fhuman = {0};
  long exact_wrong = 0, fexact_wrong = 0;
  for (long i = 0; i < count; i++) {
    /* Each round: a random bit pattern (NaN and infinities skipped: checked
     * above) and a decimal as people write them, as a double and as a
     * float. */
    uint64_t b = rng();
    double v;
    memcpy(&v, &b, sizeof v);
    if (isfinite(v)) check_double(&bits, v);
    char src[48];
    int digits = 1 + (int)(rng() % 17);
    v = random_decimal(digits, -30, 30, src, sizeof src);
    check_double(&human, v);
    /* Up to 15 digits (DBL_DIG) the text must be the same decimal. */
    if (digits <= 15) {
      human_exact.values++;
      const char *got = fmt_d(v, 0);
      if (strtod(got, NULL) != strtod(src, NULL) || sig_digits(got) != sig_digits(src)) {
        if (exact_wrong++ < 5) printf("#   %s -> \"%s\"\n", src, got);
      }
    }
    uint32_t fb = (uint32_t)(b >> 32);
    float f;
    memcpy(&f, &fb, sizeof f);
    if (isfinite(f)) check_float(&fbits, f);
    digits = 1 + (int)(rng() % 9);
    random_decimal(digits, -12, 12, src, sizeof src);
    f = strtof(src, NULL);
    check_float(&fhuman, f);
    if (digits <= 6) { /* FLT_DIG */
      const char *got = fmt_f(f, 0);
      if (strtof(got, NULL) != strtof(src, NULL) || sig_digits(got) != sig_digits(src)) {
        if (fexact_wrong++ < 5) printf("#   %sf -> \"%s\"\n", src, got);
      }
    }
  }
  tap_stats(&bits, "random double bit patterns");
  tap_stats(&human, "random decimal doubles, 1..17 digits");
  is_int(exact_wrong, 0, "decimals of up to 15 digits come back as the same digits (%ld checked)",
         human_exact.values);
  tap_stats(&fbits, "random float bit patterns");
  tap_stats(&fhuman, "random decimal floats, 1..9 digits");
  is_int(fexact_wrong, 0, "float decimals of up to 6 digits come back as the same digits");
  if (verbose) {
    const stats_t *all[] = {&bits, &human, &fbits, &fhuman};
    const char *names[] = {"double bit patterns", "double decimals", "float bit patterns",
                           "float decimals"};
    for (int k = 0; k < 4; k++)
      printf(
          "# %-20s %10ld values, %8ld differ from the old encoder (%.4f%%), %8ld of them "
          "subnormal, %ld not shorter\n",
          names[k], all[k]->values, all[k]->differ,
          all[k]->values ? 100.0 * (double)all[k]->differ / (double)all[k]->values : 0.0,
          all[k]->differ_subnormal, all[k]->differ_not_shorter);
  }
}

static void test_integer_text(void) {
  char want[32];
  int bad = 0;
  const uint64_t fixed[] = {
      0, 1, 9, 10, 99, 100, UINT64_MAX, (uint64_t)INT64_MAX, (uint64_t)INT64_MAX + 1};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
    char got[SL_DTOA_BUF];
    size_t n = sl_dtoa_u64(fixed[i], got);
    snprintf(want, sizeof want, "%" PRIu64, fixed[i]);
    is_str(got, want, "u64 %s", want);
    is_int(n, strlen(want), "u64 %s length", want);
  }
  const int64_t sfixed[] = {0, -1, 1, INT64_MIN, INT64_MAX, -10, -99};
  for (size_t i = 0; i < sizeof sfixed / sizeof sfixed[0]; i++) {
    char got[SL_DTOA_BUF];
    size_t n = sl_dtoa_i64(sfixed[i], got);
    snprintf(want, sizeof want, "%" PRId64, sfixed[i]);
    is_str(got, want, "i64 %s", want);
    is_int(n, strlen(want), "i64 %s length", want);
  }
  /* Every length: 10^k - 1, 10^k, 10^k + 1, and random values of random
   * length, signed and not. */
  uint64_t p = 1;
  for (int k = 0; k <= 19; k++, p *= 10) {
    for (int d = -1; d <= 1; d++) {
      uint64_t v = p + (uint64_t)d;
      char got[SL_DTOA_BUF];
      sl_dtoa_u64(v, got);
      snprintf(want, sizeof want, "%" PRIu64, v);
      if (strcmp(got, want) != 0 && bad++ < 5) printf("#   %s -> %s\n", want, got);
    }
  }
  for (int i = 0; i < 100000; i++) {
    uint64_t v = rng() >> (rng() % 64);
    arm();
    size_t n = sl_dtoa_u64(v, area);
    check_guard();
    snprintf(want, sizeof want, "%" PRIu64, v);
    if ((strcmp(area, want) != 0 || n != strlen(want)) && bad++ < 5)
      printf("#   %s -> %s\n", want, area);
    arm();
    n = sl_dtoa_i64((int64_t)v, area);
    check_guard();
    snprintf(want, sizeof want, "%" PRId64, (int64_t)v);
    if ((strcmp(area, want) != 0 || n != strlen(want)) && bad++ < 5)
      printf("#   %s -> %s\n", want, area);
  }
  is_int(bad, 0,
         "integers of every length, random and around powers of ten, as printf writes them");
}

int main(int argc, char **argv) {
  long count = argc > 1 ? atol(argv[1]) : 100000;
  rng_state = argc > 2 ? strtoull(argv[2], NULL, 0) : 0x853c49e6748fea9bu;
  if (!rng_state) rng_state = 1;
  test_double_landmarks();
  test_float_landmarks();
  test_powers_of_ten();
  test_integers();
  test_binade_edges();
  test_integer_text();
  run_random(count, argc > 1);
  is_int(guard_failures, 0, "nothing written past SL_DTOA_BUF bytes");
  is_int(length_failures, 0, "the returned length is the text's, below SL_DTOA_BUF");
  return tap_done();
}
