/* The aggregate text: `fn(field)` and `percentile(field, q)` into an
 * sl_agg_spec_t, with the column and reason of an error (see agg.h).  Pure;
 * any thread.  The field path is scanned, not parsed: quotes and bracket
 * pairs only keep its commas and parentheses from ending it, so the path
 * module owns the path syntax. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "jobs/agg.h"

static const struct {
  const char *name;
  sl_agg_fn_t fn;
  int args; /* 1 (a field) or 2 (a field and a quantile) */
} fns[] = {
    {"count", SL_AGG_COUNT, 1}, /* count() is SL_AGG_COUNT_ALL */
    {"sum", SL_AGG_SUM, 1},
    {"min", SL_AGG_MIN, 1},
    {"max", SL_AGG_MAX, 1},
    {"avg", SL_AGG_AVG, 1},
    {"first", SL_AGG_FIRST, 1},
    {"last", SL_AGG_LAST, 1},
    {"count_distinct", SL_AGG_COUNT_DISTINCT, 1},
    {"percentile", SL_AGG_PERCENTILE, 2},
    {"redis_hll", SL_AGG_REDIS_HLL, 1},
};

const char *sl_agg_fn_name(sl_agg_fn_t fn) {
  if (fn == SL_AGG_COUNT_ALL) return "count";
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
    if (fns[i].fn == fn) return fns[i].name;
  return "?";
}

static int parse_error(sl_agg_error_t *err, const char *text, const char *at, int code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int parse_error(sl_agg_error_t *err, const char *text, const char *at, int code,
                       const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->column = (int)(at - text) + 1;
  }
  return code;
}

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  return p;
}

static bool is_ident(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Scans one argument from p: up to ',' or ')' outside quotes and bracket
 * pairs.  Sets *end to that delimiter (or to the NUL).  Returns 0, or an
 * error for an unterminated quote or unbalanced brackets. */
static int scan_arg(const char *text, const char *p, const char **end, sl_agg_error_t *err) {
  char stack[32];
  const char *opened[32];
  int depth = 0;
  for (; *p; p++) {
    char c = *p;
    if (c == '"' || c == '\'') {
      const char *q = p++;
      while (*p && *p != c) {
        if (*p == '\\' && p[1]) p++;
        p++;
      }
      if (!*p) return parse_error(err, text, q, SL_ESYNTAX, "unterminated %c quote", c);
    } else if (c == '(' || c == '[' || c == '{') {
      if (depth == (int)sizeof stack)
        return parse_error(err, text, p, SL_ESYNTAX, "brackets nested too deeply");
      stack[depth] = c == '(' ? ')' : c == '[' ? ']' : '}';
      opened[depth++] = p;
    } else if (c == ')' || c == ']' || c == '}') {
      if (depth == 0) {
        if (c == ')') break;
        return parse_error(err, text, p, SL_ESYNTAX, "unbalanced '%c'", c);
      }
      if (stack[depth - 1] != c)
        return parse_error(err, text, p, SL_ESYNTAX, "'%c' closes '%c'", c, *opened[depth - 1]);
      depth--;
    } else if (c == ',' && depth == 0) {
      break;
    }
  }
  if (depth)
    return parse_error(err, text, opened[depth - 1], SL_ESYNTAX, "unclosed '%c'",
                       *opened[depth - 1]);
  *end = p;
  return 0;
}

/* Parses the quantile text [p, end): a plain decimal number in (0, 1). */
static int parse_q(const char *text, const char *p, const char *end, double *q,
                   sl_agg_error_t *err) {
  char buf[64];
  size_t n = (size_t)(end - p);
  bool digit = false;
  for (const char *c = p; c < end; c++) {
    if (*c >= '0' && *c <= '9')
      digit = true;
    else if (!strchr(".eE+-", *c))
      n = sizeof buf; /* reject below */
  }
  if (!digit || n >= sizeof buf)
    return parse_error(err, text, p, SL_ESYNTAX, "expected a quantile between 0 and 1, as 0.99");
  memcpy(buf, p, n);
  buf[n] = 0;
  char *stop;
  double v = strtod(buf, &stop);
  if (*stop)
    return parse_error(err, text, p, SL_ESYNTAX, "expected a quantile between 0 and 1, as 0.99");
  if (!(v > 0 && v < 1))
    return parse_error(err, text, p, SL_ERANGE,
                       "quantile %s is not strictly between 0 and 1 (0.99 is the 99th "
                       "percentile)",
                       buf);
  *q = v;
  return 0;
}

static int parse(const char *text, sl_agg_spec_t *out, sl_agg_error_t *err) {
  const char *p = skip_ws(text), *name = p;
  while (is_ident(*p)) p++;
  size_t len = (size_t)(p - name);
  if (!len) return parse_error(err, text, name, SL_ESYNTAX, "expected an aggregate function");
  size_t i = 0;
  while (i < sizeof fns / sizeof fns[0] &&
         !(strlen(fns[i].name) == len && memcmp(fns[i].name, name, len) == 0))
    i++;
  if (i == sizeof fns / sizeof fns[0])
    return parse_error(err, text, name, SL_ESYNTAX,
                       "unknown aggregate function '%.*s' (count, sum, min, max, avg, first, "
                       "last, count_distinct, percentile, redis_hll)",
                       (int)(len > 40 ? 40 : len), name);
  const char *fname = fns[i].name;
  p = skip_ws(p);
  if (*p != '(') return parse_error(err, text, p, SL_ESYNTAX, "expected '(' after %s", fname);
  p = skip_ws(p + 1);
  out->fn = fns[i].fn;

  /* Arguments, as text spans. */
  const char *arg[3], *arg_end[3];
  int nargs = 0;
  if (*p != ')') {
    for (;;) {
      const char *end = p;
      int r = scan_arg(text, p, &end, err);
      if (r) return r;
      if (nargs == 3)
        return parse_error(err, text, p, SL_ESYNTAX, "too many arguments to %s", fname);
      const char *e = end;
      while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) e--;
      if (e == p) return parse_error(err, text, p, SL_ESYNTAX, "empty argument to %s", fname);
      arg[nargs] = p;
      arg_end[nargs++] = e;
      if (!*end) return parse_error(err, text, end, SL_ESYNTAX, "expected ')' to close %s(", fname);
      p = end + 1;
      if (*end == ')') break;
      p = skip_ws(p);
    }
  } else {
    p++;
  }
  const char *after = skip_ws(p);
  if (*after)
    return parse_error(err, text, after, SL_ESYNTAX, "unexpected text after %s(...)", fname);

  if (out->fn == SL_AGG_COUNT &&
      (nargs == 0 || (nargs == 1 && arg_end[0] - arg[0] == 1 && *arg[0] == '*'))) {
    out->fn = SL_AGG_COUNT_ALL;
    return 0;
  }
  if (nargs != fns[i].args) {
    const char *at = nargs > fns[i].args ? arg[fns[i].args] : name;
    if (fns[i].args == 2)
      return parse_error(err, text, at, SL_ESYNTAX,
                         "percentile takes a field and a quantile: percentile(f, 0.99)");
    return parse_error(err, text, at, SL_ESYNTAX, "%s takes one field: %s(f)%s", fname, fname,
                       out->fn == SL_AGG_COUNT ? " or count()" : "");
  }
  size_t flen = (size_t)(arg_end[0] - arg[0]);
  if (flen >= SL_AGG_FIELD_MAX)
    return parse_error(err, text, arg[0], -ENAMETOOLONG, "field path longer than %d bytes",
                       SL_AGG_FIELD_MAX - 1);
  memcpy(out->field, arg[0], flen);
  out->field[flen] = 0;
  if (out->fn == SL_AGG_PERCENTILE) return parse_q(text, arg[1], arg_end[1], &out->q, err);
  return 0;
}

int sl_agg_parse(const char *text, sl_agg_spec_t *out, sl_agg_error_t *err) {
  memset(out, 0, sizeof *out);
  int r = parse(text, out, err);
  if (r) memset(out, 0, sizeof *out);
  return r;
}
