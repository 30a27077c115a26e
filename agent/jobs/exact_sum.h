/* Exact sums of integers and doubles for sum() and avg(): owns one
 * accumulator, a two's-complement fixed-point number whose window of bits
 * follows the values, so that it holds the sum with no rounding at all and
 * rounds once, correctly (to nearest, ties to even), when read.  Pure; one
 * thread per accumulator.
 *
 * Why: a job merges partials from partitions and checkpoints in whatever
 * split they come.  A running double sum depends on the order (0.1 added ten
 * times is 0.9999999999999999; 1e100 + 1 - 1e100 is 0), an exact sum does
 * not, so a merge of partials gives the same double as one pass, bit for
 * bit.  This is a long accumulator in the manner of Kulisch's, kept small:
 * the lowest bit weighs 2^e_min, where e_min is the lowest bit set in any
 * value added so far (values are taken as odd integers times a power of
 * two), and the limbs reach only as high as the sum needs.  Four limbs
 * (256 bits, the top one for the sign) live inline: integer sums, and sums of
 * floats between 1e-6 and 1e6 over up to 2^40 values, fit there.  Only sums
 * whose bits span more than 191 binary orders, from the lowest bit of the
 * smallest value to the top of the sum (1e-20 and 1e30 in one sum, say),
 * take heap: at most 40 limbs (320 bytes; 34 reach from 2^-1074 to
 * 2^64 x DBL_MAX). */
#ifndef SL_EXACT_SUM_H
#define SL_EXACT_SUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_EXACT_SUM_INLINE 4

/* An accumulator; zero-initialised (or sl_exact_sum_init) it holds 0.  Owns
 * its heap limbs, if any; free with sl_exact_sum_free. */
typedef struct {
  union {
    uint64_t inl[SL_EXACT_SUM_INLINE];
    uint64_t *heap; /* when cap > 0 */
  } u;
  int32_t e_min; /* limb 0's lowest bit weighs 2^e_min */
  uint16_t n;    /* limbs in use (0: the sum is 0); the top one is always
                    the sign extension of the one below */
  uint16_t cap;  /* heap limbs; 0: the limbs are inline */
} sl_exact_sum_t;

void sl_exact_sum_init(sl_exact_sum_t *s);
void sl_exact_sum_free(sl_exact_sum_t *s); /* back to 0; accepts NULL */

/* Adds a value.  0; SL_ERANGE for a NaN or an infinity (not added);
 * SL_ENOMEM with the sum unchanged. */
int sl_exact_sum_add_double(sl_exact_sum_t *s, double x);
int sl_exact_sum_add_int(sl_exact_sum_t *s, int64_t v);
int sl_exact_sum_add_uint(sl_exact_sum_t *s, uint64_t v);

/* dst += src (src borrowed).  0, or SL_ENOMEM with dst unchanged. */
int sl_exact_sum_merge(sl_exact_sum_t *dst, const sl_exact_sum_t *src);

/* The sum correctly rounded to a double (ties to even); +-inf when its
 * magnitude rounds past DBL_MAX. */
double sl_exact_sum_double(const sl_exact_sum_t *s);

/* Whether the sum is an integer within int64 with no fractional weight ever
 * added (true for sums of integers only); sets *out then. */
bool sl_exact_sum_int64(const sl_exact_sum_t *s, int64_t *out);

size_t sl_exact_sum_heap_bytes(const sl_exact_sum_t *s);

#endif
