/* The JSON encoder's float text before core/dtoa.c (snprintf the fewest of
 * 15..17 digits, 6..9 for float32, that strtod reads back, then ".0" when
 * it would read as an integer), kept as the reference the new formatter is
 * compared with: test_dtoa.c, test_number_text.c and the dtoa benchmark.
 * Writes at most 40 bytes with a NUL; returns the length. */
#ifndef SL_OLD_FLOAT_TEXT_H
#define SL_OLD_FLOAT_TEXT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline size_t old_float_text(char *tmp, double d, int is_f32) {
  int n = 0;
  if (is_f32) {
    float f = (float)d;
    for (int prec = 6; prec <= 9; prec++) {
      n = snprintf(tmp, 40, "%.*g", prec, (double)f);
      if (strtof(tmp, NULL) == f) break;
    }
  } else {
    for (int prec = 15; prec <= 17; prec++) {
      n = snprintf(tmp, 40, "%.*g", prec, d);
      if (strtod(tmp, NULL) == d) break;
    }
  }
  if (!strpbrk(tmp, ".eE")) {
    tmp[n++] = '.';
    tmp[n++] = '0';
  }
  tmp[n] = '\0';
  return (size_t)n;
}

#endif
