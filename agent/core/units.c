/* Parsing and formatting of durations, sizes and addresses.  Pure. */
#include "core/units.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* Reads an unsigned decimal integer at *p; false on overflow. */
static bool read_u64(const char **p, uint64_t *v) {
  uint64_t x = 0;
  while (isdigit((unsigned char)**p)) {
    unsigned d = (unsigned)(**p - '0');
    if (x > (UINT64_MAX - d) / 10) return false;
    x = x * 10 + d;
    (*p)++;
  }
  *v = x;
  return true;
}

static const struct {
  const char *name;
  int64_t ns;
} duration_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"ms", 1000000},
    {"s", 1000000000LL},
    {"m", 60LL * 1000000000LL},
    {"h", 3600LL * 1000000000LL},
    {"d", 86400LL * 1000000000LL},
};

int sl_duration_parse(const char *s, int64_t *ns, char *err, size_t errlen) {
  const char *p = s;
  int64_t total = 0;
  if (*p == '-') return sl_err_printf(err, errlen, SL_ERANGE, "duration \"%s\" is negative", s);
  if (!*p) return sl_err_printf(err, errlen, SL_ESYNTAX, "empty duration%s", "");
  while (*p) {
    if (!isdigit((unsigned char)*p))
      return sl_err_printf(err, errlen, SL_ESYNTAX,
                  "\"%s\" is not a duration (expected a number and a unit, e.g. \"500ms\", \"10s\", \"5m\")", s);
    uint64_t n;
    if (!read_u64(&p, &n)) return sl_err_printf(err, errlen, SL_ERANGE, "duration \"%s\" is too large", s);
    if (*p == '.')
      return sl_err_printf(err, errlen, SL_ESYNTAX,
                  "duration \"%s\" has a fraction; use a smaller unit (e.g. \"1500ms\")", s);
    const char *u = p;
    while (isalpha((unsigned char)*p)) p++;
    size_t ulen = (size_t)(p - u);
    if (ulen == 0)
      return sl_err_printf(err, errlen, SL_EUNIT,
                  "duration \"%s\" has no unit (use ns, us, ms, s, m, h or d)", s);
    int64_t mult = 0;
    for (size_t i = 0; i < sizeof duration_units / sizeof duration_units[0]; i++)
      if (strlen(duration_units[i].name) == ulen && memcmp(duration_units[i].name, u, ulen) == 0)
        mult = duration_units[i].ns;
    if (!mult)
      return sl_err_printf(err, errlen, SL_EUNIT,
                  "duration \"%s\" has an unknown unit (use ns, us, ms, s, m, h or d)", s);
    if (n > (uint64_t)(INT64_MAX / mult) || (int64_t)n * mult > INT64_MAX - total)
      return sl_err_printf(err, errlen, SL_ERANGE, "duration \"%s\" is too large", s);
    total += (int64_t)n * mult;
  }
  *ns = total;
  return 0;
}

static const struct {
  const char *name;
  uint64_t mult;
} size_units[] = {
    {"B", 1},
    {"KB", 1000ULL},
    {"MB", 1000000ULL},
    {"GB", 1000000000ULL},
    {"TB", 1000000000000ULL},
    {"KiB", 1ULL << 10},
    {"MiB", 1ULL << 20},
    {"GiB", 1ULL << 30},
    {"TiB", 1ULL << 40},
    {"k", 1ULL << 10},
    {"m", 1ULL << 20},
    {"g", 1ULL << 30},
    {"t", 1ULL << 40},
};

int sl_size_parse(const char *s, uint64_t *bytes, char *err, size_t errlen) {
  const char *p = s;
  if (*p == '-') return sl_err_printf(err, errlen, SL_ERANGE, "size \"%s\" is negative", s);
  if (!isdigit((unsigned char)*p))
    return sl_err_printf(err, errlen, SL_ESYNTAX,
                "\"%s\" is not a size (expected a number and a unit, e.g. \"64KiB\", \"8MiB\")", s);
  uint64_t whole, frac = 0, frac_div = 1;
  if (!read_u64(&p, &whole)) return sl_err_printf(err, errlen, SL_ERANGE, "size \"%s\" is too large", s);
  if (*p == '.') {
    p++;
    if (!isdigit((unsigned char)*p))
      return sl_err_printf(err, errlen, SL_ESYNTAX, "size \"%s\" has a malformed fraction", s);
    while (isdigit((unsigned char)*p)) {
      if (frac_div < 1000000000ULL) {
        frac = frac * 10 + (uint64_t)(*p - '0');
        frac_div *= 10;
      }
      p++;
    }
  }
  while (*p == ' ') p++;
  if (!*p)
    return sl_err_printf(err, errlen, SL_EUNIT, "size \"%s\" has no unit (use B, KiB, MiB, GiB, KB, MB, GB)", s);
  uint64_t mult = 0;
  for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++)
    if (strcmp(size_units[i].name, p) == 0) mult = size_units[i].mult;
  if (!mult)
    return sl_err_printf(err, errlen, SL_EUNIT,
                "size \"%s\" has an unknown unit (use B, KiB, MiB, GiB, KB, MB, GB)", s);
  if (whole > UINT64_MAX / mult) return sl_err_printf(err, errlen, SL_ERANGE, "size \"%s\" is too large", s);
  *bytes = whole * mult + (uint64_t)((long double)frac * mult / frac_div);
  return 0;
}

void sl_duration_format(int64_t ns, char *buf, size_t len) {
  for (int i = (int)(sizeof duration_units / sizeof duration_units[0]) - 1; i > 0; i--) {
    if (ns != 0 && ns % duration_units[i].ns == 0) {
      snprintf(buf, len, "%" PRId64 "%s", ns / duration_units[i].ns, duration_units[i].name);
      return;
    }
  }
  snprintf(buf, len, "%" PRId64 "%s", ns, ns ? "ns" : "s");
}

void sl_size_format(uint64_t bytes, char *buf, size_t len) {
  static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (i < 4 && bytes && bytes % 1024 == 0) {
    bytes /= 1024;
    i++;
  }
  snprintf(buf, len, "%" PRIu64 "%s", bytes, names[i]);
}

static int parse_port(const char *p, const char *s, int *port, char *err, size_t errlen) {
  if (!*p) return sl_err_printf(err, errlen, SL_EADDR, "address \"%s\" has an empty port", s);
  uint64_t v;
  const char *q = p;
  if (!isdigit((unsigned char)*q) || !read_u64(&q, &v) || *q || v > 65535)
    return sl_err_printf(err, errlen, SL_EADDR, "address \"%s\" has a bad port (expected 0-65535)", s);
  *port = (int)v;
  return 0;
}

int sl_addr_parse(const char *s, sl_addr_t *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (strncmp(s, "unix:", 5) == 0 || s[0] == '/' || s[0] == '.') {
    const char *path = strncmp(s, "unix:", 5) == 0 ? s + 5 : s;
    if (!*path) return sl_err_printf(err, errlen, SL_EADDR, "address \"%s\" has an empty socket path", s);
    if (strlen(path) >= sizeof out->path)
      return sl_err_printf(err, errlen, SL_EADDR, "unix socket path \"%s\" is longer than 107 bytes", s);
    out->kind = SL_ADDR_UNIX;
    strcpy(out->path, path);
    return 0;
  }
  out->kind = SL_ADDR_TCP;
  const char *colon;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close) return sl_err_printf(err, errlen, SL_EADDR, "address \"%s\" has an unclosed '['", s);
    size_t hl = (size_t)(close - s - 1);
    if (hl == 0 || hl >= sizeof out->host)
      return sl_err_printf(err, errlen, SL_EADDR, "address \"%s\" has an empty or too long host", s);
    memcpy(out->host, s + 1, hl);
    if (close[1] != ':')
      return sl_err_printf(err, errlen, SL_EADDR, "address \"%s\" has no port (expected \"[host]:port\")", s);
    return parse_port(close + 2, s, &out->port, err, errlen);
  }
  colon = strrchr(s, ':');
  if (!colon)
    return sl_err_printf(err, errlen, SL_EADDR, "address \"%s\" has no port (expected \"host:port\")", s);
  if (memchr(s, ':', (size_t)(colon - s)))
    return sl_err_printf(err, errlen, SL_EADDR, "IPv6 address \"%s\" must be written as \"[addr]:port\"", s);
  size_t hl = (size_t)(colon - s);
  if (hl == 0 || hl >= sizeof out->host)
    return sl_err_printf(err, errlen, SL_EADDR, "address \"%s\" has an empty or too long host", s);
  memcpy(out->host, s, hl);
  return parse_port(colon + 1, s, &out->port, err, errlen);
}

void sl_addr_format(const sl_addr_t *a, char *buf, size_t len) {
  if (a->kind == SL_ADDR_UNIX)
    snprintf(buf, len, "unix:%s", a->path);
  else if (strchr(a->host, ':'))
    snprintf(buf, len, "[%s]:%d", a->host, a->port);
  else
    snprintf(buf, len, "%s:%d", a->host, a->port);
}
