/* Numbers to decimal text without printf: the shortest digits that read back
 * to the same double or float (Schubfach), laid out like printf's %g, and
 * integers.  The JSON encoder and the topic/key renderer call it for every
 * number of every record.  Pure, any thread. */
#ifndef SL_DTOA_H
#define SL_DTOA_H

#include <stddef.h>
#include <stdint.h>

/* Room every function here needs at buf (the longest double is 24 bytes:
 * "-2.2250738585072014e-308"; the longest integer 20, INT64_MIN). */
#define SL_DTOA_BUF 32

/* Flags.  SL_DTOA_POINT_ZERO appends ".0" when the text has neither '.' nor
 * 'e', so that a float stays recognisable as one downstream ("1.0", not
 * "1").  SL_DTOA_AS_17G picks the notation as %.17g does, P = max(17,
 * digits) below, for doubles and floats alike: "1000000000000000" where
 * the default writes "1e+15". */
#define SL_DTOA_POINT_ZERO 1
#define SL_DTOA_AS_17G 2

/* Writes v with the fewest significant digits that strtod reads back as v
 * exactly (the nearest to v of those, ties to an even last digit), then a
 * NUL; returns the length without the NUL.  The layout is %.{P}g's with P =
 * max(15, digits): fixed notation when the decimal exponent X of the first
 * digit is in -4 <= X < P ("0.0001", "123.45", "100000000000000"),
 * otherwise d.ddde±XX with at least two exponent digits ("1e+15",
 * "4.5e-05"); never trailing zeros after a '.'.  -0.0 is "-0" ("-0.0" with
 * SL_DTOA_POINT_ZERO).  NaN and infinities are written as %g writes them
 * ("nan", "-nan", "inf", "-inf"); JSON callers map them to null first.
 * flags: SL_DTOA_* or 0.  buf: SL_DTOA_BUF bytes, any of which may be
 * written (past the NUL too). */
size_t sl_dtoa_double(double v, char *buf, int flags);

/* The same for a float: the fewest digits that strtof reads back as v, with
 * P = max(6, digits). */
size_t sl_dtoa_float(float v, char *buf, int flags);

/* Decimal integers ("0", "18446744073709551615", "-9223372036854775808"),
 * NUL-terminated; returns the length.  buf: at least SL_DTOA_BUF bytes. */
size_t sl_dtoa_u64(uint64_t v, char *buf);
size_t sl_dtoa_i64(int64_t v, char *buf);

#endif
