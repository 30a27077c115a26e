/* TOML scalars written without delimiters: booleans, integers (decimal,
 * hex, octal, binary), floats including inf and nan, and the four date/time
 * forms, read into nodes; and date/times formatted back the way TOML writes
 * them.  Pure; runs on whichever thread calls sl_toml_parse. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml_internal.h"

/* ---- date/times ---- */

static bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

static bool digits(const char *t, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!is_digit(t[i])) return false;
  return true;
}

static int num2(const char *t) {
  return (t[0] - '0') * 10 + (t[1] - '0');
}

static int days_in(int y, int m) {
  static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return d[m - 1];
}

/* HH:MM:SS[.frac] at t[*i]; returns a reason on failure. */
static const char *scan_time(const char *t, size_t n, size_t *i, sl_toml_datetime_t *dt) {
  const char *s = t + *i;
  if (*i + 8 > n || !digits(s, 2) || s[2] != ':' || !digits(s + 3, 2) || s[5] != ':' ||
      !digits(s + 6, 2))
    return "expected HH:MM:SS";
  dt->hour = num2(s), dt->minute = num2(s + 3), dt->second = num2(s + 6);
  if (dt->hour > 23) return "hour out of range";
  if (dt->minute > 59) return "minute out of range";
  if (dt->second > 60) return "second out of range";
  *i += 8;
  if (*i < n && t[*i] == '.') {
    size_t nd = 0;
    int ns = 0;
    for ((*i)++; *i < n && is_digit(t[*i]); (*i)++, nd++)
      if (nd < 9) ns = ns * 10 + (t[*i] - '0');
    if (!nd) return "expected digits after '.'";
    for (; nd < 9; nd++) ns *= 10; /* digits beyond ns are truncated */
    dt->nanosecond = ns;
  }
  return NULL;
}

static int parse_datetime(parser_t *p, const char *t, size_t n, size_t off, pos_t at, int depth,
                          node_t **out) {
  sl_toml_datetime_t dt = {0};
  sl_toml_type_t type;
  const char *why = NULL;
  size_t i = 0;
  if (n >= 3 && t[2] == ':') {
    type = SL_TOML_TIME_LOCAL;
    why = scan_time(t, n, &i, &dt);
  } else if (n < 10 || !digits(t, 4) || t[4] != '-' || !digits(t + 5, 2) || t[7] != '-' ||
             !digits(t + 8, 2)) {
    why = "expected YYYY-MM-DD";
  } else {
    dt.year = (t[0] - '0') * 1000 + (t[1] - '0') * 100 + num2(t + 2);
    dt.month = num2(t + 5), dt.day = num2(t + 8);
    i = 10;
    type = SL_TOML_DATE_LOCAL;
    if (dt.month < 1 || dt.month > 12) {
      why = "month out of range";
    } else if (dt.day < 1 || dt.day > days_in(dt.year, dt.month)) {
      why = "day out of range";
    } else if (n > 10) {
      if (t[10] != 'T' && t[10] != 't' && t[10] != ' ') {
        why = "expected 'T' between date and time";
      } else {
        i = 11;
        type = SL_TOML_DATETIME_LOCAL;
        why = scan_time(t, n, &i, &dt);
        if (!why && i < n) {
          type = SL_TOML_DATETIME;
          if ((t[i] == 'Z' || t[i] == 'z') && i + 1 == n) {
            i++;
          } else if ((t[i] == '+' || t[i] == '-') && i + 6 == n && digits(t + i + 1, 2) &&
                     t[i + 3] == ':' && digits(t + i + 4, 2)) {
            int h = num2(t + i + 1), m = num2(t + i + 4);
            if (h > 23 || m > 59) why = "offset out of range";
            dt.offset_minutes = (t[i] == '-' ? -1 : 1) * (h * 60 + m);
            i = n;
          } else {
            why = "expected Z or an offset like +01:00 after the time";
          }
        }
      }
    }
  }
  if (!why && i != n) why = "unexpected characters after it";
  if (why) return sl_toml_fail_at(p, off, "invalid date/time \"%.*s\": %s", (int)n, t, why);
  node_t *v;
  int rc = sl_toml_node_new(p, type, at, off, depth, &v);
  if (rc < 0) return rc;
  v->v.u.dt = dt;
  *out = v;
  return 0;
}

/* ---- numbers ---- */

static bool digit_of(char c, int base) {
  switch (base) {
    case 2:
      return c == '0' || c == '1';
    case 8:
      return c >= '0' && c <= '7';
    case 16:
      return hexval(c) >= 0;
    default:
      return is_digit(c);
  }
}

/* Digits with single underscores between them, from t[*i]; returns how many
 * digits, or -1 when an underscore is misplaced. */
static int scan_digits(const char *t, size_t n, size_t *i, int base) {
  int count = 0;
  bool prev_digit = false;
  while (*i < n) {
    if (t[*i] == '_') {
      if (!prev_digit) return -1;
      prev_digit = false;
    } else if (digit_of(t[*i], base)) {
      prev_digit = true;
      count++;
    } else {
      break;
    }
    (*i)++;
  }
  return count && !prev_digit ? -1 : count;
}

static int parse_number(parser_t *p, const char *t, size_t n, size_t off, pos_t at, int depth,
                        node_t **out) {
  size_t i = 0;
  bool neg = false, is_float = false;
  int base = 10;
  if (t[0] == '+' || t[0] == '-') neg = t[i++] == '-';
  if (i + 1 < n && t[i] == '0' && (t[i + 1] == 'x' || t[i + 1] == 'o' || t[i + 1] == 'b')) {
    base = t[i + 1] == 'x' ? 16 : t[i + 1] == 'o' ? 8 : 2;
    if (i) return sl_toml_fail_at(p, off, "a sign is not allowed on \"%.*s\"", (int)n, t);
    i += 2;
  }
  size_t ds = i;
  int nd = scan_digits(t, n, &i, base);
  if (nd < 0) goto underscore;
  if (nd == 0) goto bad;
  if (base == 10 && t[ds] == '0' && nd > 1)
    return sl_toml_fail_at(p, off, "leading zeros are not allowed in \"%.*s\"", (int)n, t);
  if (base == 10 && i < n && t[i] == '.') {
    i++;
    is_float = true;
    if ((nd = scan_digits(t, n, &i, 10)) < 0) goto underscore;
    if (nd == 0) goto bad;
  }
  if (base == 10 && i < n && (t[i] == 'e' || t[i] == 'E')) {
    i++;
    is_float = true;
    if (i < n && (t[i] == '+' || t[i] == '-')) i++;
    if ((nd = scan_digits(t, n, &i, 10)) < 0) goto underscore;
    if (nd == 0) goto bad;
  }
  if (i != n) goto bad;

  node_t *v;
  int rc;
  if (is_float) {
    char buf[128];
    size_t o = 0;
    for (size_t k = 0; k < n && o + 1 < sizeof buf; k++)
      if (t[k] != '_') buf[o++] = t[k];
    if (o + 1 >= sizeof buf)
      return sl_toml_fail_at(p, off, "float \"%.*s\" is too long", (int)n, t);
    buf[o] = '\0';
    double f = strtod(buf, NULL);
    if (isinf(f)) return sl_toml_fail_at(p, off, "float \"%.*s\" is out of range", (int)n, t);
    if ((rc = sl_toml_node_new(p, SL_TOML_FLOAT, at, off, depth, &v)) < 0) return rc;
    v->v.u.f = f;
  } else {
    /* Accumulate the magnitude unsigned: -9223372036854775808 fits. */
    uint64_t m = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t k = ds; k < n; k++) {
      if (t[k] == '_') continue;
      uint64_t dgt = (uint64_t)hexval(t[k]);
      if (m > (lim - dgt) / (uint64_t)base)
        return sl_toml_fail_at(p, off, "integer \"%.*s\" is out of range for a 64-bit integer",
                               (int)n, t);
      m = m * (uint64_t)base + dgt;
    }
    if ((rc = sl_toml_node_new(p, SL_TOML_INTEGER, at, off, depth, &v)) < 0) return rc;
    v->v.u.i = neg ? (int64_t)(0 - m) : (int64_t)m;
  }
  *out = v;
  return 0;
underscore:
  return sl_toml_fail_at(p, off, "an underscore in \"%.*s\" must be between two digits", (int)n, t);
bad:
  return sl_toml_fail_at(p, off, "invalid value \"%.*s\"", (int)n, t);
}

static bool is_tok(char c) {
  return is_bare((unsigned char)c) || c == '+' || c == '.' || c == ':';
}

/* Booleans, numbers and dates: everything not introduced by a delimiter. */
int sl_toml_parse_bare_value(parser_t *p, int depth, node_t **out) {
  size_t start = p->pos;
  pos_t at = sl_toml_here(p, start);
  char d[16];
  while (p->pos < p->len && is_tok(p->s[p->pos])) p->pos++;
  /* "1979-05-27 07:32:00": a space may separate date and time. */
  const char *t = p->s + start;
  if (p->pos - start == 10 && digits(t, 4) && t[4] == '-' && p->pos + 3 < p->len &&
      p->s[p->pos] == ' ' && is_digit(p->s[p->pos + 1]) && is_digit(p->s[p->pos + 2]) &&
      p->s[p->pos + 3] == ':') {
    p->pos++;
    while (p->pos < p->len && is_tok(p->s[p->pos])) p->pos++;
  }
  size_t n = p->pos - start;
  if (n == 0)
    return sl_toml_fail_at(p, start, "expected a value, found %s",
                           sl_toml_describe(p, start, d, sizeof d));
  node_t *v;
  int rc;
  if ((n == 4 && !memcmp(t, "true", 4)) || (n == 5 && !memcmp(t, "false", 5))) {
    if ((rc = sl_toml_node_new(p, SL_TOML_BOOL, at, start, depth, &v)) < 0) return rc;
    v->v.u.b = n == 4;
    *out = v;
    return 0;
  }
  size_t s = (t[0] == '+' || t[0] == '-') ? 1 : 0;
  if (n - s == 3 && (!memcmp(t + s, "inf", 3) || !memcmp(t + s, "nan", 3))) {
    if ((rc = sl_toml_node_new(p, SL_TOML_FLOAT, at, start, depth, &v)) < 0) return rc;
    v->v.u.f = t[s] == 'i' ? INFINITY : NAN;
    if (t[0] == '-') v->v.u.f = -v->v.u.f;
    *out = v;
    return 0;
  }
  if ((n >= 5 && digits(t, 4) && t[4] == '-') || (n >= 3 && digits(t, 2) && t[2] == ':'))
    return parse_datetime(p, t, n, start, at, depth, out);
  return parse_number(p, t, n, start, at, depth, out);
}

/* ---- formatting ---- */

size_t sl_toml_datetime_format(const sl_toml_value_t *v, char *buf, size_t buflen) {
  char tmp[64];
  size_t o = 0;
  if (!buflen) return 0;
  buf[0] = '\0';
  if (!v) return 0;
  const sl_toml_datetime_t *dt = &v->u.dt;
  bool date = false, time = false;
  switch (v->type) {
    case SL_TOML_DATETIME:
    case SL_TOML_DATETIME_LOCAL:
      date = time = true;
      break;
    case SL_TOML_DATE_LOCAL:
      date = true;
      break;
    case SL_TOML_TIME_LOCAL:
      time = true;
      break;
    default:
      return 0;
  }
  if (date)
    o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%04d-%02d-%02d", dt->year, dt->month, dt->day);
  if (date && time) tmp[o++] = 'T';
  if (time) {
    o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%02d:%02d:%02d", dt->hour, dt->minute,
                          dt->second);
    /* Milli-, micro- or nanoseconds: the shortest that holds the value. */
    int ns = dt->nanosecond;
    if (ns % 1000000 == 0 && ns)
      o += (size_t)snprintf(tmp + o, sizeof tmp - o, ".%03d", ns / 1000000);
    else if (ns % 1000 == 0 && ns)
      o += (size_t)snprintf(tmp + o, sizeof tmp - o, ".%06d", ns / 1000);
    else if (ns)
      o += (size_t)snprintf(tmp + o, sizeof tmp - o, ".%09d", ns);
  }
  if (v->type == SL_TOML_DATETIME) {
    int off = dt->offset_minutes;
    if (off == 0)
      o += (size_t)snprintf(tmp + o, sizeof tmp - o, "Z");
    else
      o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%c%02d:%02d", off < 0 ? '-' : '+',
                            abs(off) / 60, abs(off) % 60);
  }
  if (o >= buflen) o = buflen - 1;
  memcpy(buf, tmp, o);
  buf[o] = '\0';
  return o;
}
