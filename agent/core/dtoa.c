/* Shortest round-trip digits of doubles and floats, found as Raffaello
 * Giulietti describes in "The Schubfach way to render doubles" (2020), and
 * their layout in printf's %g style; integers too.  Schubfach because it
 * needs no loop over candidate digits and no big integers: one 128-bit
 * product per bound of the rounding interval, against a 10 KB table of
 * powers of ten that dtoa_table.py computes exactly (and the tests check).
 * Pure, any thread. */
#include "core/dtoa.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "core/dtoa_table.h"

__extension__ typedef unsigned __int128 u128;

typedef struct {
  uint64_t f; /* value = f * 10^e */
  int e;
} decimal_t;

/* floor(log10(2^q)), floor(log10(3/4 * 2^q)) and floor(log2(10^e)) for the
 * exponents of doubles and floats; dtoa_table.py checks each one against
 * the exact value.  (gcc and clang shift a negative number arithmetically,
 * so >> floors.) */
static inline int flog10pow2(int q) {
  return (int)((int64_t)q * 661971961083 >> 41);
}
static inline int flog10_three_quarters_pow2(int q) {
  return (int)(((int64_t)q * 661971961083 - 274743187321) >> 41);
}
static inline int flog2pow10(int e) {
  return (int)((int64_t)e * 913124641741 >> 38);
}

/* ---- Schubfach ------------------------------------------------------------
 *
 * v = c * 2^q has the rounding interval R = [c - 1/2, c + 1/2] * 2^q (open
 * when c is odd: round-half-even reads its bounds back as the neighbours),
 * or [c - 1/4, c + 1/2] * 2^q when c is the smallest significand of its
 * binade (the neighbour below is closer).  With k chosen so that 10^k is
 * at most the width of R, R holds one or more multiples of 10^k but at most
 * one of 10^(k+1).  Scaled by 4 * 10^-k, v and the bounds of R become vb,
 * vbl and vbr, computed "rounded to odd" (the last bit set when the product
 * was inexact): precise enough that comparing them with multiples of 4
 * gives the same answers as the exact values (the paper's proof). */

/* Round-to-odd of g * cp / 2^127 for the double table's g = hi:lo, from
 * the product's bits 64 and up only.  Those below are not just noise: g
 * exceeds 10^-k * 2^-r by at most 1, so g * cp exceeds the exact product by
 * less than cp < 2^64, and ignoring bits 0..63 keeps an exact product exact
 * (a tie between two candidates stays a tie, a bound stays on a multiple of
 * 4).  The paper's rop does the same. */
static inline uint64_t rop_double(uint64_t hi, uint64_t lo, uint64_t cp) {
  u128 top = (u128)hi * cp + (uint64_t)((u128)lo * cp >> 64); /* floor(g * cp / 2^64) */
  return (uint64_t)(top >> 63) | (((uint64_t)top & (((uint64_t)1 << 63) - 1)) != 0);
}

/* The same for the float table's 63-bit g: g * cp / 2^95, from bits 64 and
 * up (g * cp exceeds the exact product by less than cp < 2^61). */
static inline uint64_t rop_float(uint64_t g, uint64_t cp) {
  uint64_t top = (uint64_t)((u128)g * cp >> 64);
  return (top >> 31) | ((top & (((uint64_t)1 << 31) - 1)) != 0);
}

/* Picks the digits from the scaled value and bounds.  `open` is 1
 * when R is open (c odd): a candidate on a bound is then outside. */
static inline decimal_t choose(uint64_t vb, uint64_t vbl, uint64_t vbr, uint64_t open, int k) {
  uint64_t s = vb >> 2; /* floor(v * 10^-k) */
  if (s >= 10) {
    /* One digit fewer: the multiples of 10 just below and above v.  (The
     * paper's Java tests s >= 100, as Double.toString wants two digits at
     * least; below 10 the multiple below is 0, never in R.) */
    uint64_t s10 = s / 10;
    bool lo_in = vbl + open <= (s10 * 10) << 2;
    bool hi_in = ((s10 * 10 + 10) << 2) + open <= vbr;
    if (lo_in != hi_in) return (decimal_t){lo_in ? s10 : s10 + 1, k + 1};
  }
  uint64_t t = s + 1;
  bool lo_in = vbl + open <= s << 2;
  bool hi_in = (t << 2) + open <= vbr;
  if (lo_in != hi_in) return (decimal_t){lo_in ? s : t, k};
  /* Both are in R: the nearer to v, on a tie the even one. */
  uint64_t midpoint = (s + t) << 1;
  return (decimal_t){vb < midpoint || (vb == midpoint && !(s & 1)) ? s : t, k};
}

#define DOUBLE_C_MIN ((uint64_t)1 << 52)
#define DOUBLE_Q_MIN (-1074)
#define FLOAT_C_MIN ((uint64_t)1 << 23)
#define FLOAT_Q_MIN (-149)

static decimal_t shortest_double(uint64_t c, int q) {
  /* An integer below 2^53 is its own shortest form (R is narrower than 1). */
  if (q < 0 && q > -53 && (c & (((uint64_t)1 << -q) - 1)) == 0) return (decimal_t){c >> -q, 0};
  uint64_t cb = c << 2, open = c & 1, cbl;
  int k;
  if (c != DOUBLE_C_MIN || q == DOUBLE_Q_MIN) {
    cbl = cb - 2;
    k = flog10pow2(q);
  } else {
    cbl = cb - 1;
    k = flog10_three_quarters_pow2(q);
  }
  int h = q + flog2pow10(-k) + 2; /* 1..4: lines cb up with the table's g */
  uint64_t hi = sl_dtoa_g[-k - SL_DTOA_E_MIN].hi, lo = sl_dtoa_g[-k - SL_DTOA_E_MIN].lo;
  uint64_t vb = rop_double(hi, lo, cb << h);
  uint64_t vbl = rop_double(hi, lo, cbl << h);
  uint64_t vbr = rop_double(hi, lo, (cb + 2) << h);
  return choose(vb, vbl, vbr, open, k);
}

static decimal_t shortest_float(uint64_t c, int q) {
  if (q < 0 && q > -24 && (c & (((uint64_t)1 << -q) - 1)) == 0) return (decimal_t){c >> -q, 0};
  uint64_t cb = c << 2, open = c & 1, cbl;
  int k;
  if (c != FLOAT_C_MIN || q == FLOAT_Q_MIN) {
    cbl = cb - 2;
    k = flog10pow2(q);
  } else {
    cbl = cb - 1;
    k = flog10_three_quarters_pow2(q);
  }
  int h = q + flog2pow10(-k) + 33;
  uint64_t g = sl_dtoa_gf[-k - SL_DTOA_F_E_MIN];
  uint64_t vb = rop_float(g, cb << h);
  uint64_t vbl = rop_float(g, cbl << h);
  uint64_t vbr = rop_float(g, (cb + 2) << h);
  return choose(vb, vbl, vbr, open, k);
}

/* f / 10^k when f is a multiple of 10^k (1 <= k <= 17), without dividing:
 * multiplying by the inverse of 5^k modulo 2^64 and rotating right by k
 * gives f / 10^k for the multiples and a number above UINT64_MAX / 10^k for
 * everything else (Granlund and Montgomery's divisibility test). */
static inline bool div_pow10(uint64_t *f, int k) {
  uint64_t x = *f * sl_dtoa_div10[k].inv5;
  x = x >> k | x << (64 - k);
  if (x > sl_dtoa_div10[k].max) return false;
  *f = x;
  return true;
}

/* Moves trailing zeros of d.f into the exponent (0 < d.f < 2^57, so there
 * are at most 17).  A multiple of 10^k is one of 2^k, so the trailing zero
 * bits bound the zeros, and when the last significant digit is odd (half
 * the time) they are equal: one test.  Otherwise a binary search. */
static inline decimal_t strip_zeros(decimal_t d) {
  int t = __builtin_ctzll(d.f);
  if (t == 0) return d;
  if (t > 17) t = 17;
  if (div_pow10(&d.f, t)) {
    d.e += t;
    return d;
  }
  if (!div_pow10(&d.f, 1)) return d;
  d.e += 1; /* at most t - 2 <= 15 more */
  if (div_pow10(&d.f, 8)) d.e += 8;
  if (div_pow10(&d.f, 4)) d.e += 4;
  if (div_pow10(&d.f, 2)) d.e += 2;
  if (div_pow10(&d.f, 1)) d.e += 1;
  return d;
}

/* ---- text ---------------------------------------------------------------- */

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static const uint64_t pow10_u64[20] = {
    1u,
    10u,
    100u,
    1000u,
    10000u,
    100000u,
    1000000u,
    10000000u,
    100000000u,
    1000000000u,
    10000000000u,
    100000000000u,
    1000000000000u,
    10000000000000u,
    100000000000000u,
    1000000000000000u,
    10000000000000000u,
    100000000000000000u,
    1000000000000000000u,
    10000000000000000000u,
};

/* Number of decimal digits of f > 0: from its bit length (1233 / 4096 is
 * just above log10(2)), then one comparison. */
static inline int count_digits(uint64_t f) {
  int n = ((64 - __builtin_clzll(f)) * 1233) >> 12;
  return n + (f >= pow10_u64[n]);
}

static inline void put4(char *p, uint32_t x) {
  memcpy(p, digit_pairs + 2 * (x / 100), 2);
  memcpy(p + 2, digit_pairs + 2 * (x % 100), 2);
}

/* Writes the digits of f so that they end just before `end`. */
static inline void put_digits(char *end, uint64_t f) {
  while (f >= 100000000) {
    uint32_t low = (uint32_t)(f % 100000000);
    f /= 100000000;
    end -= 8;
    put4(end, low / 10000);
    put4(end + 4, low % 10000);
  }
  uint32_t x = (uint32_t)f;
  while (x >= 100) {
    end -= 2;
    memcpy(end, digit_pairs + 2 * (x % 100), 2);
    x /= 100;
  }
  if (x >= 10) {
    end -= 2;
    memcpy(end, digit_pairs + 2 * x, 2);
  } else {
    end[-1] = (char)('0' + x);
  }
}

/* Lays out d (d.f > 0, no trailing zeros), the shortest form of the
 * magnitude `mag`, as %.{P}g does, P = max(min_prec, digits), after `p`
 * (the sign, if any, already written). */
static size_t layout(char *buf, char *p, decimal_t d, double mag, int min_prec, int flags) {
  int n = count_digits(d.f);
  int x = d.e + n - 1; /* exponent of the first digit */
  int prec = n > min_prec ? n : min_prec;
  if (x < -4 || x >= prec) {
    /* d.ddde±XX: the digits go one place right, then the first comes back
     * in front of the point. */
    put_digits(p + 1 + n, d.f);
    p[0] = p[1];
    if (n > 1) {
      p[1] = '.';
      p += n + 1;
    } else {
      p += 1;
    }
    p[0] = 'e';
    p[1] = x < 0 ? '-' : '+';
    p += 2;
    unsigned ax = (unsigned)(x < 0 ? -x : x);
    if (ax >= 100) {
      *p++ = (char)('0' + ax / 100);
      ax %= 100;
    }
    memcpy(p, digit_pairs + 2 * ax, 2);
    p += 2;
  } else if (x < 0) {
    /* 0.000ddd: "0." and -x - 1 zeros (three at most) before the digits. */
    memcpy(p, "0.000", 5);
    p += 1 - x;
    put_digits(p + n, d.f);
    p += n;
  } else if (n <= x + 1) {
    /* An integer: the digits, then zeros up to the point (x < P <= 17). */
    if (x + 1 > n) memset(p, '0', 17);
    put_digits(p + n, d.f);
    p += x + 1;
    if (flags & SL_DTOA_POINT_ZERO) {
      memcpy(p, ".0", 2);
      p += 2;
    }
  } else {
    /* ddd.ddd.  Rather than move digits already written (reading bytes
     * just stored in pieces stalls the CPU), the integer part comes from
     * v itself and the fraction from f: an integer between v and d would be
     * in R and shorter than d, so the two have the same integer part. */
    int m = n - x - 1;                 /* digits after the point, 1..16 */
    uint64_t int_part = (uint64_t)mag; /* below 10^16 here */
    put_digits(p + x + 1, int_part);
    p += x + 1;
    *p = '.';
    /* The fraction's leading zeros, if any; 8 bytes, or 16 when the point
     * is at most 8 digits in: within SL_DTOA_BUF. */
    memset(p + 1, '0', 8);
    if (m > 8) memset(p + 9, '0', 8);
    put_digits(p + 1 + m, d.f - int_part * pow10_u64[m]);
    p += 1 + m;
  }
  *p = '\0';
  return (size_t)(p - buf);
}

/* Zeros, infinities and NaN, written as %g writes them. */
static size_t special(char *buf, bool neg, bool zero, bool nan, int flags) {
  char *p = buf;
  if (neg) *p++ = '-';
  if (zero) {
    *p++ = '0';
    if (flags & SL_DTOA_POINT_ZERO) *p++ = '.', *p++ = '0';
  } else {
    memcpy(p, nan ? "nan" : "inf", 3);
    p += 3;
  }
  *p = '\0';
  return (size_t)(p - buf);
}

/* ---- public -------------------------------------------------------------- */

size_t sl_dtoa_double(double v, char *buf, int flags) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  bool neg = bits >> 63;
  uint64_t frac = bits & (DOUBLE_C_MIN - 1);
  int bq = (int)(bits >> 52) & 0x7ff;
  if (bq == 0x7ff || (bq == 0 && frac == 0)) return special(buf, neg, bq == 0, frac != 0, flags);
  uint64_t c = bq ? frac | DOUBLE_C_MIN : frac;
  int q = bq ? bq - 1075 : DOUBLE_Q_MIN;
  buf[0] = '-';
  return layout(buf, buf + neg, strip_zeros(shortest_double(c, q)), fabs(v),
                flags & SL_DTOA_AS_17G ? 17 : 15, flags);
}

size_t sl_dtoa_float(float v, char *buf, int flags) {
  uint32_t bits;
  memcpy(&bits, &v, sizeof bits);
  bool neg = bits >> 31;
  uint32_t frac = bits & (uint32_t)(FLOAT_C_MIN - 1);
  int bq = (int)(bits >> 23) & 0xff;
  if (bq == 0xff || (bq == 0 && frac == 0)) return special(buf, neg, bq == 0, frac != 0, flags);
  uint64_t c = bq ? frac | FLOAT_C_MIN : frac;
  int q = bq ? bq - 150 : FLOAT_Q_MIN;
  buf[0] = '-';
  return layout(buf, buf + neg, strip_zeros(shortest_float(c, q)), fabsf(v),
                flags & SL_DTOA_AS_17G ? 17 : 6, flags);
}

size_t sl_dtoa_u64(uint64_t v, char *buf) {
  int n = count_digits(v | 1); /* | 1: same digits, and never 0 */
  put_digits(buf + n, v);
  buf[n] = '\0';
  return (size_t)n;
}

size_t sl_dtoa_i64(int64_t v, char *buf) {
  if (v >= 0) return sl_dtoa_u64((uint64_t)v, buf);
  buf[0] = '-';
  /* Negated in unsigned arithmetic so INT64_MIN does not overflow. */
  return 1 + sl_dtoa_u64((uint64_t)0 - (uint64_t)v, buf + 1);
}
