/* The exact accumulator (see exact_sum.h): limbs of 64 bits, least
 * significant first, in two's complement.  Pure; one thread per accumulator.
 *
 * Every change first reserves enough limbs that the result cannot overflow
 * (the value before and the value added each fit in (n - 1) x 64 signed
 * bits, so their sum fits in n limbs), then shifts and adds in place: a
 * failed allocation leaves the sum as it was, and no carry is ever lost. */
#include "jobs/exact_sum.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* 2^-1074 .. 2^(1024 + 64), a sign bit, the sign-extension limb, rounding
 * of the reservation: 2162 bits fit 34 limbs, so 40 is never reached. */
#define MAX_LIMBS 40

static uint64_t *limbs(sl_exact_sum_t *s) {
  return s->cap ? s->u.heap : s->u.inl;
}
static const uint64_t *climbs(const sl_exact_sum_t *s) {
  return s->cap ? s->u.heap : s->u.inl;
}

static uint64_t sext(uint64_t limb) {
  return (uint64_t)((int64_t)limb >> 63);
}

void sl_exact_sum_init(sl_exact_sum_t *s) {
  memset(s, 0, sizeof *s);
}

void sl_exact_sum_free(sl_exact_sum_t *s) {
  if (!s) return;
  if (s->cap) free(s->u.heap);
  sl_exact_sum_init(s);
}

size_t sl_exact_sum_heap_bytes(const sl_exact_sum_t *s) {
  return (size_t)s->cap * sizeof(uint64_t);
}

/* Grows to n limbs (sign-extending), keeping the value. */
static int grow(sl_exact_sum_t *s, uint32_t n) {
  if (n <= s->n) return 0;
  if (n > MAX_LIMBS) return SL_ERANGE; /* unreachable within 2^64 values */
  uint32_t cap = s->cap ? s->cap : SL_EXACT_SUM_INLINE;
  if (n > cap) {
    while (cap < n) cap *= 2;
    if (cap > MAX_LIMBS) cap = MAX_LIMBS;
    uint64_t *p = malloc(cap * sizeof *p);
    if (!p) return SL_ENOMEM;
    memcpy(p, limbs(s), s->n * sizeof *p);
    if (s->cap) free(s->u.heap);
    s->u.heap = p;
    s->cap = (uint16_t)cap;
  }
  uint64_t *l = limbs(s);
  uint64_t fill = s->n ? sext(l[s->n - 1]) : 0;
  for (uint32_t i = s->n; i < n; i++) l[i] = fill;
  s->n = (uint16_t)n;
  return 0;
}

/* The fewest bits that hold l[0..n) as a signed number (1 for 0 and -1). */
static int64_t signed_bits(const uint64_t *l, uint32_t n) {
  uint64_t fill = sext(l[n - 1]);
  for (uint32_t i = n; i-- > 0;) {
    uint64_t d = l[i] ^ fill; /* bits that differ from the sign */
    if (d) return (int64_t)i * 64 + (64 - __builtin_clzll(d)) + 1;
  }
  return 1;
}

/* Limbs needed to hold, with the invariant, a value of `bits` signed bits. */
static uint32_t limbs_for(int64_t bits) {
  return (uint32_t)((bits + 63) / 64) + 1;
}

/* Limb i of (l << k), for the two's-complement number l[0..n), sign
 * extended above: the 64 bits of l that start at bit 64 i - k. */
static uint64_t shifted_limb(const uint64_t *l, uint32_t n, int64_t k, uint32_t i) {
  int64_t bit = (int64_t)i * 64 - k;
  if (bit <= -64) return 0;
  if (bit < 0) return l[0] << -bit;
  uint64_t top = sext(l[n - 1]);
  uint64_t q = (uint64_t)bit / 64;
  int r = (int)(bit % 64);
  uint64_t a = q < n ? l[q] : top;
  if (r == 0) return a;
  uint64_t b = q + 1 < n ? l[q + 1] : top;
  return a >> r | b << (64 - r);
}

/* s += (a << (e_a - e_min)), for a two's-complement number a[0..na) whose
 * lowest bit weighs 2^e_a. */
static int add_big(sl_exact_sum_t *s, const uint64_t *a, uint32_t na, int32_t e_a) {
  if (!na) return 0;
  if (!s->n) s->e_min = e_a;
  int32_t e = e_a < s->e_min ? e_a : s->e_min;
  int64_t k_s = (int64_t)s->e_min - e, k_a = (int64_t)e_a - e;
  int64_t bits_s = s->n ? signed_bits(limbs(s), s->n) + k_s : 0;
  int64_t bits_a = signed_bits(a, na) + k_a;
  int64_t need = (bits_s > bits_a ? bits_s : bits_a) + 1;
  int r = grow(s, limbs_for(need));
  if (r) return r;
  uint64_t *l = limbs(s);
  uint32_t n = s->n;
  if (k_s) { /* move the window down to e: shift left by k_s, from the top */
    uint64_t tmp[MAX_LIMBS];
    for (uint32_t i = 0; i < n; i++) tmp[i] = shifted_limb(l, n, k_s, i);
    memcpy(l, tmp, n * sizeof *l);
    s->e_min = e;
  }
  uint64_t carry = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t x = shifted_limb(a, na, k_a, i);
    uint64_t t = l[i] + x;
    uint64_t c1 = t < x;
    l[i] = t + carry;
    carry = c1 | (l[i] < t);
  }
  return 0;
}

int sl_exact_sum_add_int(sl_exact_sum_t *s, int64_t v) {
  if (!v) return 0;
  uint64_t a = (uint64_t)v;
  return add_big(s, &a, 1, 0);
}

int sl_exact_sum_add_uint(sl_exact_sum_t *s, uint64_t v) {
  if (!v) return 0;
  uint64_t a[2] = {v, 0};
  return add_big(s, a, v >> 63 ? 2 : 1, 0);
}

int sl_exact_sum_add_double(sl_exact_sum_t *s, double x) {
  if (!isfinite(x)) return SL_ERANGE;
  if (x == 0) return 0;
  int e;
  double f = frexp(x, &e); /* |f| in [0.5, 1) */
  int64_t m = (int64_t)ldexp(f, 53);
  e -= 53;
  int tz = __builtin_ctzll((uint64_t)m); /* an odd mantissa: the highest e */
  m >>= tz;
  e += tz;
  uint64_t a = (uint64_t)m;
  return add_big(s, &a, 1, e);
}

int sl_exact_sum_merge(sl_exact_sum_t *dst, const sl_exact_sum_t *src) {
  return add_big(dst, climbs(src), src->n, src->e_min);
}

bool sl_exact_sum_int64(const sl_exact_sum_t *s, int64_t *out) {
  if (!s->n) {
    *out = 0;
    return true;
  }
  if (s->e_min != 0) return false;
  const uint64_t *l = climbs(s);
  for (uint32_t i = 1; i < s->n; i++)
    if (l[i] != sext(l[0])) return false;
  *out = (int64_t)l[0];
  return true;
}

double sl_exact_sum_double(const sl_exact_sum_t *s) {
  if (!s->n) return 0;
  uint64_t mag[MAX_LIMBS];
  const uint64_t *l = climbs(s);
  uint32_t n = s->n;
  bool neg = l[n - 1] >> 63;
  memcpy(mag, l, n * sizeof *mag);
  if (neg) { /* magnitude: invert and add one */
    uint64_t carry = 1;
    for (uint32_t i = 0; i < n; i++) {
      mag[i] = ~mag[i] + carry;
      carry = carry && mag[i] == 0;
    }
  }
  int32_t top = (int32_t)n - 1;
  while (top >= 0 && !mag[top]) top--;
  if (top < 0) return 0;
  /* h: the highest set bit; t: the 64 bits from h down; sticky: any below. */
  int lead = __builtin_clzll(mag[top]);
  int64_t h = (int64_t)top * 64 + (63 - lead);
  uint64_t t = mag[top] << lead;
  bool sticky = false;
  if (lead && top > 0) t |= mag[top - 1] >> (64 - lead);
  if (top > 0 && (lead ? mag[top - 1] << lead : mag[top - 1])) sticky = true;
  for (int32_t i = top - 2; i >= 0 && !sticky; i--) sticky = mag[i] != 0;
  int64_t exp2 = h + s->e_min; /* the value is in [2^exp2, 2^(exp2+1)) */
  if (exp2 > 1023) return neg ? -INFINITY : INFINITY;
  /* Below 2^-1022 the sum, a multiple of 2^-1074, has at most 52 bits: t
   * holds all of them and the conversion below is exact. */
  uint64_t keep = t >> 11, rest = t & 0x7ff;
  if (rest > 0x400 || (rest == 0x400 && (sticky || (keep & 1)))) keep++;
  if (keep >> 53) {
    keep >>= 1;
    exp2++;
    if (exp2 > 1023) return neg ? -INFINITY : INFINITY;
  }
  double v = ldexp((double)keep, (int)(exp2 - 52));
  return neg ? -v : v;
}
