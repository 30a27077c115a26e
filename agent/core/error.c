/* Names and messages for the SL_E* table and for -errno values.
 * Pure; called from any thread. */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *sl_strerror(int err) {
  switch (err) {
#define SL_ERR_MSG(name, code, msg) \
  case code: return msg;
    SL_ERRNO_MAP(SL_ERR_MSG)
#undef SL_ERR_MSG
  default: break;
  }
  if (err < 0 && err > -1000) return strerror(-err);
  return "unknown error";
}

const char *sl_err_name(int err) {
  switch (err) {
#define SL_ERR_NAME(name, code, msg) \
  case code: return "SL_E" #name;
    SL_ERRNO_MAP(SL_ERR_NAME)
#undef SL_ERR_NAME
  default: break;
  }
  if (err < 0 && err > -1000) {
    const char *n = strerrorname_np(-err);
    if (n) return n;
  }
  return "unknown";
}

int sl_err_printf(char *err, size_t errlen, int code, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}
