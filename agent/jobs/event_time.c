/* Event-time conversions for jobs (see event_time.h).  The calendar
 * arithmetic is Howard Hinnant's days_from_civil / civil_from_days rather
 * than timegm and gmtime_r, so that it is exact for every year and does not
 * depend on the width of time_t or the C library.  Pure. */
#include "jobs/event_time.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#include "core/error.h"

#define LIMIT_MS (INT64_C(1) << 62)

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool digits(const char *s, size_t len, size_t at, size_t n, unsigned *out) {
  if (at + n > len) return false;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[at + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (unsigned)(c - '0');
  }
  *out = v;
  return true;
}

int sl_time_parse_rfc3339(const char *s, size_t len, int64_t *ms) {
  unsigned y, mo, d, h, mi, sec;
  if (!digits(s, len, 0, 4, &y) || len < 5 || s[4] != '-' || !digits(s, len, 5, 2, &mo) || len < 8 ||
      s[7] != '-' || !digits(s, len, 8, 2, &d) || len < 11 ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, len, 11, 2, &h) || len < 14 ||
      s[13] != ':' || !digits(s, len, 14, 2, &mi) || len < 17 || s[16] != ':' ||
      !digits(s, len, 17, 2, &sec))
    return SL_ESYNTAX;
  static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) || h > 23 ||
      mi > 59 || sec > 60)
    return SL_ESYNTAX;
  size_t i = 19;
  int64_t frac = 0;
  if (i < len && s[i] == '.') {
    size_t n = 0;
    for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, n++)
      if (n < 3) frac = frac * 10 + (s[i] - '0');
    if (n == 0) return SL_ESYNTAX;
    for (; n < 3; n++) frac *= 10;
  }
  int64_t off = 0;
  if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (i < len && (s[i] == '+' || s[i] == '-')) {
    unsigned oh, om;
    if (!digits(s, len, i + 1, 2, &oh) || i + 3 >= len || s[i + 3] != ':' || !digits(s, len, i + 4, 2, &om) ||
        oh > 23 || om > 59)
      return SL_ESYNTAX;
    off = ((int64_t)oh * 60 + om) * 60000 * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return SL_ESYNTAX;
  }
  if (i != len) return SL_ESYNTAX;
  int64_t days = days_from_civil(y, mo, d);
  *ms = ((days * 86400 + h * 3600 + mi * 60 + sec) * 1000 + frac) - off;
  return 0;
}

int sl_time_from_value(const msgpack_object *v, sl_time_format_t format, int64_t *ms) {
  if (!v) return SL_ESYNTAX;
  if (format == SL_TIME_RFC3339) {
    if (v->type != MSGPACK_OBJECT_STR) return SL_ESYNTAX;
    return sl_time_parse_rfc3339(v->via.str.ptr, v->via.str.size, ms);
  }
  int64_t scale = format == SL_TIME_EPOCH ? 1000 : 1;
  switch (v->type) {
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    if (v->via.u64 > (uint64_t)(LIMIT_MS / scale)) return SL_ERANGE;
    *ms = (int64_t)v->via.u64 * scale;
    return 0;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    if (v->via.i64 < -LIMIT_MS / scale) return SL_ERANGE;
    *ms = v->via.i64 * scale;
    return 0;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64: {
    double t = floor(v->via.f64 * (double)scale);
    if (!(t >= -(double)LIMIT_MS && t <= (double)LIMIT_MS)) return SL_ERANGE;
    *ms = (int64_t)t;
    return 0;
  }
  default: return SL_ESYNTAX;
  }
}

void sl_time_format_rfc3339(int64_t ms, char *buf) {
  int64_t msec = ms % 1000, secs = ms / 1000;
  if (msec < 0) msec += 1000, secs--;
  int64_t days = secs / 86400, rem = secs % 86400;
  if (rem < 0) rem += 86400, days--;
  int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  snprintf(buf, SL_TIME_RFC3339_MAX, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ", (long long)y, m, d,
           (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60), (unsigned)(rem % 60), (unsigned)msec);
}
