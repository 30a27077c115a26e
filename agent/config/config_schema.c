/* Checks a parsed TOML document against the schema tables, fills in
 * defaults, prints the effective config and the Markdown reference.  Pure
 * (printing goes to a FILE the caller gives). */
#include "config/config_schema.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/units.h"

void sl_diag_add(sl_diag_t *d, const char *file, int line, int col, const char *fmt, ...) {
  char msg[1024], *out;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  int n;
  if (line > 0)
    n = asprintf(&out, "%s:%d:%d: %s", file ? file : "<config>", line, col, msg);
  else
    n = asprintf(&out, "%s: %s", file ? file : "<config>", msg);
  if (n < 0) return;
  char **lines = realloc(d->lines, (d->n + 1) * sizeof *lines);
  if (!lines) {
    free(out);
    return;
  }
  d->lines = lines;
  d->lines[d->n++] = out;
}

void sl_diag_add_line(sl_diag_t *d, const char *line) {
  char *copy = strdup(line);
  char **lines = copy ? realloc(d->lines, (d->n + 1) * sizeof *lines) : NULL;
  if (!lines) {
    free(copy);
    return;
  }
  d->lines = lines;
  d->lines[d->n++] = copy;
}

void sl_diag_free(sl_diag_t *d) {
  for (size_t i = 0; i < d->n; i++) free(d->lines[i]);
  free(d->lines);
  d->lines = NULL;
  d->n = 0;
}

size_t sl_edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return 64;
  size_t row[65];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

bool sl_schema_key_is_secret(const char *key) {
  static const char *const words[] = {"password", "passwd", "secret", "token", "api_key", "apikey",
                                      "passphrase", "credential"};
  char low[256];
  size_t n = 0;
  for (; key[n] && n < sizeof low - 1; n++) low[n] = (char)tolower((unsigned char)key[n]);
  low[n] = 0;
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strstr(low, words[i])) return true;
  return false;
}

/* ---- validation ---------------------------------------------------------- */

typedef struct {
  const char *file;
  sl_diag_t *d;
  size_t errors;
} vctx_t;

#define VERR(c, v, ...)                                         \
  do {                                                          \
    sl_diag_add((c)->d, (c)->file, (v)->line, (v)->col, __VA_ARGS__); \
    (c)->errors++;                                              \
  } while (0)

static bool is_scalar(const sl_toml_value_t *v) {
  return v->type != SL_TOML_ARRAY && v->type != SL_TOML_TABLE;
}

static const char *expected_text(const sl_opt_t *o) {
  switch (o->type) {
  case SL_OPT_STRING: return "a string";
  case SL_OPT_INT: return "an integer";
  case SL_OPT_FLOAT: return "a number";
  case SL_OPT_BOOL: return "a boolean (true or false)";
  case SL_OPT_DURATION: return "a duration string such as \"500ms\", \"10s\" or \"5m\"";
  case SL_OPT_SIZE: return "a size string such as \"64KiB\" or \"8MiB\", or an integer number of bytes";
  case SL_OPT_ADDR: return "an address string (\"host:port\", \"[v6]:port\" or a socket path)";
  case SL_OPT_ADDR_LIST: return "an address string or an array of them";
  case SL_OPT_STRING_LIST: return "a string or an array of strings";
  case SL_OPT_ENUM: return o->sub ? "a string or a table" : "a string";
  case SL_OPT_MAP: return "a table of strings, numbers and booleans";
  case SL_OPT_TABLE: return "a table";
  case SL_OPT_FLOAT_LIST: return "a number or an array of numbers";
  }
  return "?";
}

static void range_text(const sl_opt_t *o, char *buf, size_t len) {
  char a[32], b[32];
  if (o->type == SL_OPT_DURATION) {
    sl_duration_format(o->min, a, sizeof a);
    sl_duration_format(o->max, b, sizeof b);
  } else if (o->type == SL_OPT_SIZE) {
    sl_size_format((uint64_t)o->min, a, sizeof a);
    sl_size_format((uint64_t)o->max, b, sizeof b);
  } else {
    snprintf(a, sizeof a, "%lld", (long long)o->min);
    snprintf(b, sizeof b, "%lld", (long long)o->max);
  }
  if (o->max)
    snprintf(buf, len, "%s to %s", a, b);
  else
    snprintf(buf, len, "at least %s", a);
}

static void check_range(vctx_t *c, const sl_opt_t *o, const char *path, const sl_toml_value_t *v,
                        int64_t x, const char *shown) {
  if (!o->min && !o->max) return;
  if (x < o->min || (o->max && x > o->max)) {
    char r[80];
    range_text(o, r, sizeof r);
    VERR(c, v, "%s: %s is out of range (%s)", path, shown, r);
  }
}

static void check_addr(vctx_t *c, const char *path, const sl_toml_value_t *v) {
  sl_addr_t a;
  char err[256];
  if (v->type != SL_TOML_STRING) {
    VERR(c, v, "%s: expected an address string, got %s", path, sl_toml_type_name(v->type));
    return;
  }
  if (sl_addr_parse(v->u.str.ptr, &a, err, sizeof err)) VERR(c, v, "%s: %s", path, err);
}

static size_t validate_table(vctx_t *c, const sl_section_t *s, sl_toml_value_t *t, const char *path);

static void check_value(vctx_t *c, const sl_opt_t *o, const char *path, sl_toml_value_t *v) {
  char err[256];
  bool secret = o->flags & SL_OPT_SECRET;
  switch (o->type) {
  case SL_OPT_STRING:
    if (v->type != SL_TOML_STRING) goto wrong_type;
    return;
  case SL_OPT_INT:
    if (v->type != SL_TOML_INTEGER) goto wrong_type;
    {
      char shown[32];
      snprintf(shown, sizeof shown, "%lld", (long long)v->u.i);
      check_range(c, o, path, v, v->u.i, shown);
    }
    return;
  case SL_OPT_FLOAT:
    if (v->type == SL_TOML_INTEGER) {
      v->type = SL_TOML_FLOAT;
      v->u.f = (double)v->u.i;
    }
    if (v->type != SL_TOML_FLOAT) goto wrong_type;
    if (!isfinite(v->u.f)) VERR(c, v, "%s: must be a finite number", path);
    return;
  case SL_OPT_BOOL:
    if (v->type != SL_TOML_BOOL) goto wrong_type;
    return;
  case SL_OPT_DURATION: {
    if (v->type != SL_TOML_STRING) goto wrong_type;
    int64_t ns;
    if (sl_duration_parse(v->u.str.ptr, &ns, err, sizeof err)) {
      VERR(c, v, "%s: %s", path, err);
      return;
    }
    check_range(c, o, path, v, ns, v->u.str.ptr);
    return;
  }
  case SL_OPT_SIZE: {
    uint64_t b;
    if (v->type == SL_TOML_INTEGER) {
      if (v->u.i < 0) {
        VERR(c, v, "%s: size %lld is negative", path, (long long)v->u.i);
        return;
      }
      b = (uint64_t)v->u.i;
    } else if (v->type == SL_TOML_STRING) {
      if (sl_size_parse(v->u.str.ptr, &b, err, sizeof err)) {
        VERR(c, v, "%s: %s", path, err);
        return;
      }
    } else {
      goto wrong_type;
    }
    char shown[64];
    if (v->type == SL_TOML_STRING)
      snprintf(shown, sizeof shown, "%s", v->u.str.ptr);
    else
      snprintf(shown, sizeof shown, "%llu", (unsigned long long)b);
    check_range(c, o, path, v, b > INT64_MAX ? INT64_MAX : (int64_t)b, shown);
    return;
  }
  case SL_OPT_ADDR:
    if (v->type != SL_TOML_STRING) goto wrong_type;
    check_addr(c, path, v);
    return;
  case SL_OPT_ADDR_LIST:
    if (v->type == SL_TOML_STRING) {
      check_addr(c, path, v);
      return;
    }
    if (v->type != SL_TOML_ARRAY) goto wrong_type;
    if (v->u.arr.len == 0) VERR(c, v, "%s: must name at least one address", path);
    for (size_t i = 0; i < v->u.arr.len; i++) check_addr(c, path, v->u.arr.items[i]);
    return;
  case SL_OPT_STRING_LIST:
    if (v->type == SL_TOML_STRING) return;
    if (v->type != SL_TOML_ARRAY) goto wrong_type;
    for (size_t i = 0; i < v->u.arr.len; i++)
      if (v->u.arr.items[i]->type != SL_TOML_STRING)
        VERR(c, v->u.arr.items[i], "%s[%zu]: expected a string, got %s", path, i,
             sl_toml_type_name(v->u.arr.items[i]->type));
    return;
  case SL_OPT_ENUM: {
    if (v->type == SL_TOML_TABLE && o->sub) {
      validate_table(c, o->sub, v, path);
      return;
    }
    if (v->type != SL_TOML_STRING) goto wrong_type;
    size_t n = strlen(v->u.str.ptr);
    for (const char *p = o->choices; p;) {
      const char *bar = strchr(p, '|');
      size_t l = bar ? (size_t)(bar - p) : strlen(p);
      if (l == n && memcmp(p, v->u.str.ptr, n) == 0) return;
      p = bar ? bar + 1 : NULL;
    }
    char choices[256];
    snprintf(choices, sizeof choices, "%s", o->choices);
    for (char *q = choices; *q; q++)
      if (*q == '|') *q = ',';
    VERR(c, v, "%s: \"%s\" is not one of: %s", path, v->u.str.ptr, choices);
    return;
  }
  case SL_OPT_MAP:
    if (v->type != SL_TOML_TABLE) goto wrong_type;
    for (size_t i = 0; i < v->u.tab.len; i++) {
      const sl_toml_kv_t *kv = &v->u.tab.items[i];
      if (!is_scalar(kv->value) || kv->value->type >= SL_TOML_DATETIME)
        VERR(c, kv->value, "%s.%s: expected a string, number or boolean, got %s", path, kv->key,
             sl_toml_type_name(kv->value->type));
    }
    return;
  case SL_OPT_TABLE:
    if (v->type != SL_TOML_TABLE) goto wrong_type;
    validate_table(c, o->sub, v, path);
    return;
  case SL_OPT_FLOAT_LIST: {
    size_t n = v->type == SL_TOML_ARRAY ? v->u.arr.len : 1;
    if (v->type == SL_TOML_TABLE) goto wrong_type;
    for (size_t i = 0; i < n; i++) {
      sl_toml_value_t *x = v->type == SL_TOML_ARRAY ? v->u.arr.items[i] : v;
      if (x->type == SL_TOML_INTEGER) {
        x->type = SL_TOML_FLOAT;
        x->u.f = (double)x->u.i;
      }
      if (x->type != SL_TOML_FLOAT)
        VERR(c, x, "%s: expected a number, got %s", path, sl_toml_type_name(x->type));
      else if (!isfinite(x->u.f))
        VERR(c, x, "%s: must be a finite number", path);
    }
    return;
  }
  }
  return;
wrong_type:
  if (secret)
    VERR(c, v, "%s: expected %s, got %s (<redacted>)", path, expected_text(o), sl_toml_type_name(v->type));
  else
    VERR(c, v, "%s: expected %s, got %s", path, expected_text(o), sl_toml_type_name(v->type));
}

static const sl_opt_t *find_opt(const sl_section_t *s, const char *name) {
  for (const sl_opt_t *o = s->opts; o && o->name; o++)
    if (strcmp(o->name, name) == 0) return o;
  return NULL;
}

static const sl_section_t *find_child(const sl_section_t *s, const char *name) {
  SL_FOR_EACH_CHILD(s, ch)
    if (strcmp((*ch)->name, name) == 0) return *ch;
  return NULL;
}

static const char *suggest(const sl_section_t *s, const char *key) {
  const char *best = NULL;
  size_t bd = (size_t)-1;
  for (const sl_opt_t *o = s->opts; o && o->name; o++) {
    size_t d = sl_edit_distance(key, o->name);
    if (d < bd) bd = d, best = o->name;
  }
  SL_FOR_EACH_CHILD(s, ch) {
    size_t d = sl_edit_distance(key, (*ch)->name);
    if (d < bd) bd = d, best = (*ch)->name;
  }
  size_t limit = strlen(key) / 3 + 1;
  if (limit > 3) limit = 3;
  return best && bd <= limit ? best : NULL;
}

static bool section_has_required(const sl_section_t *s) {
  for (const sl_opt_t *o = s->opts; o && o->name; o++)
    if (o->flags & SL_OPT_REQUIRED) return true;
  return false;
}

/* A default has no place in the file: every value in it gets line 0, so
 * errors about it name no position. */
static void clear_positions(sl_toml_value_t *v) {
  v->line = v->col = 0;
  if (v->type == SL_TOML_ARRAY)
    for (size_t i = 0; i < v->u.arr.len; i++) clear_positions(v->u.arr.items[i]);
  if (v->type == SL_TOML_TABLE)
    for (size_t i = 0; i < v->u.tab.len; i++) {
      v->u.tab.items[i].line = v->u.tab.items[i].col = 0;
      clear_positions(v->u.tab.items[i].value);
    }
}

/* Parses a default written as TOML value text. */
static sl_toml_value_t *parse_default(const char *def) {
  char text[512], err[256];
  int n = snprintf(text, sizeof text, "v = %s\n", def);
  sl_toml_value_t *root = NULL;
  if (sl_toml_parse(text, (size_t)n, "<default>", &root, err, sizeof err)) return NULL;
  sl_toml_value_t *v = root->u.tab.items[0].value;
  root->u.tab.items[0].value = NULL;
  sl_toml_free(root);
  clear_positions(v);
  return v;
}

static size_t validate_table(vctx_t *c, const sl_section_t *s, sl_toml_value_t *t, const char *path) {
  size_t before = c->errors;
  char sub[512];
  for (size_t i = 0; i < t->u.tab.len; i++) {
    sl_toml_kv_t *kv = &t->u.tab.items[i];
    snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", kv->key);
    const sl_opt_t *o = find_opt(s, kv->key);
    if (o) {
      check_value(c, o, sub, kv->value);
      if (o->check) {
        size_t n = c->d->n;
        o->check(kv->value, c->file, sub, c->d);
        c->errors += c->d->n - n;
      }
      continue;
    }
    const sl_section_t *ch = find_child(s, kv->key);
    if (ch && (ch->flags & SL_SECTION_ARRAY)) {
      if (kv->value->type != SL_TOML_ARRAY) {
        sl_diag_add(c->d, c->file, kv->line, kv->col, "%s: expected an array of tables ([[%s]]), got %s", sub,
                    sub, sl_toml_type_name(kv->value->type));
        c->errors++;
        continue;
      }
      for (size_t j = 0; j < kv->value->u.arr.len; j++) {
        sl_toml_value_t *el = kv->value->u.arr.items[j];
        char elpath[540];
        snprintf(elpath, sizeof elpath, "%s[%zu]", sub, j);
        if (el->type != SL_TOML_TABLE)
          VERR(c, el, "%s: expected a table, got %s", elpath, sl_toml_type_name(el->type));
        else
          validate_table(c, ch, el, elpath);
      }
      continue;
    }
    if (ch) {
      if (kv->value->type != SL_TOML_TABLE) {
        sl_diag_add(c->d, c->file, kv->line, kv->col, "%s: expected a table ([%s]), got %s", sub, sub,
                    sl_toml_type_name(kv->value->type));
        c->errors++;
      } else {
        validate_table(c, ch, kv->value, sub);
      }
      continue;
    }
    if (s->flags & SL_SECTION_OPEN) continue;
    const char *hint = suggest(s, kv->key);
    if (hint)
      sl_diag_add(c->d, c->file, kv->line, kv->col, "%s: unknown key \"%s\" (did you mean \"%s\"?)",
                  *path ? path : "top level", kv->key, hint);
    else
      sl_diag_add(c->d, c->file, kv->line, kv->col, "%s: unknown key \"%s\"", *path ? path : "top level",
                  kv->key);
    c->errors++;
  }
  for (const sl_opt_t *o = s->opts; o && o->name; o++) {
    if (sl_toml_get(t, o->name)) continue;
    if (o->flags & SL_OPT_REQUIRED) {
      sl_diag_add(c->d, c->file, t->line, t->col, "%s: missing required key \"%s\"",
                  *path ? path : "top level", o->name);
      c->errors++;
    } else if (o->def) {
      sl_toml_value_t *v = parse_default(o->def);
      if (v) sl_toml_table_append(t, o->name, v);
    }
  }
  SL_FOR_EACH_CHILD(s, ch) {
    if (sl_toml_get(t, (*ch)->name) || ((*ch)->flags & SL_SECTION_ARRAY) || section_has_required(*ch))
      continue;
    sl_toml_value_t *nt = sl_toml_table_new();
    if (!nt || sl_toml_table_append(t, (*ch)->name, nt)) continue;
    snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", (*ch)->name);
    validate_table(c, *ch, nt, sub);
  }
  return c->errors - before;
}

/* Every default must be a valid value of its own option: a table's typo
 * would otherwise bind 0 without a word. */
static void check_defaults(vctx_t *c, const sl_section_t *s, const char *path) {
  char sub[512];
  for (const sl_opt_t *o = s->opts; o && o->name; o++) {
    snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", o->name);
    if (o->sub) check_defaults(c, o->sub, sub);
    if (!o->def) continue;
    sl_toml_value_t *v = parse_default(o->def);
    if (!v) {
      sl_diag_add(c->d, c->file, 0, 0, "%s: default %s is not a TOML value", sub, o->def);
      c->errors++;
      continue;
    }
    check_value(c, o, sub, v);
    sl_toml_free(v);
  }
  SL_FOR_EACH_CHILD(s, ch) {
    snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", (*ch)->name);
    check_defaults(c, *ch, sub);
  }
}

size_t sl_schema_check_defaults(const sl_section_t *root, sl_diag_t *d) {
  vctx_t c = {"<schema>", d, 0};
  check_defaults(&c, root, "");
  return c.errors;
}

size_t sl_schema_validate(const sl_section_t *root, sl_toml_value_t *doc, const char *file, sl_diag_t *d) {
  vctx_t c = {file, d, 0};
  return validate_table(&c, root, doc, "");
}

/* ---- printing the effective config --------------------------------------- */

static void print_string(FILE *out, const char *s, size_t len) {
  fputc('"', out);
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    switch (ch) {
    case '"': fputs("\\\"", out); break;
    case '\\': fputs("\\\\", out); break;
    case '\n': fputs("\\n", out); break;
    case '\t': fputs("\\t", out); break;
    case '\r': fputs("\\r", out); break;
    default:
      if (ch < 0x20 || ch == 0x7f)
        fprintf(out, "\\u%04x", ch);
      else
        fputc(ch, out);
    }
  }
  fputc('"', out);
}

static void print_key(FILE *out, const char *k) {
  bool bare = *k != 0;
  for (const char *p = k; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') bare = false;
  if (bare)
    fputs(k, out);
  else
    print_string(out, k, strlen(k));
}

/* `sub`: the schema of an inline table, whose SECRET options are redacted
 * like keys that name a secret; NULL for free-form tables. */
static void print_value(FILE *out, const sl_toml_value_t *v, bool secret, const sl_section_t *sub) {
  if (secret) {
    fputs("\"<redacted>\"", out);
    return;
  }
  switch (v->type) {
  case SL_TOML_STRING: print_string(out, v->u.str.ptr, v->u.str.len); break;
  case SL_TOML_INTEGER: fprintf(out, "%lld", (long long)v->u.i); break;
  case SL_TOML_FLOAT:
    if (isnan(v->u.f))
      fputs("nan", out);
    else if (isinf(v->u.f))
      fputs(v->u.f < 0 ? "-inf" : "inf", out);
    else {
      char b[40];
      snprintf(b, sizeof b, "%.17g", v->u.f);
      for (int prec = 1; prec <= 17; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, v->u.f);
        if (strtod(b, NULL) == v->u.f) break;
      }
      fputs(b, out);
      if (!strpbrk(b, ".eE")) fputs(".0", out);
    }
    break;
  case SL_TOML_BOOL: fputs(v->u.b ? "true" : "false", out); break;
  case SL_TOML_DATETIME:
  case SL_TOML_DATETIME_LOCAL:
  case SL_TOML_DATE_LOCAL:
  case SL_TOML_TIME_LOCAL: {
    char b[64];
    sl_toml_datetime_format(v, b, sizeof b);
    fputs(b, out);
    break;
  }
  case SL_TOML_ARRAY:
    fputc('[', out);
    for (size_t i = 0; i < v->u.arr.len; i++) {
      if (i) fputs(", ", out);
      print_value(out, v->u.arr.items[i], false, NULL);
    }
    fputc(']', out);
    break;
  case SL_TOML_TABLE:
    fputs("{ ", out);
    for (size_t i = 0; i < v->u.tab.len; i++) {
      if (i) fputs(", ", out);
      print_key(out, v->u.tab.items[i].key);
      fputs(" = ", out);
      const char *key = v->u.tab.items[i].key;
      const sl_opt_t *so = sub ? find_opt(sub, key) : NULL;
      print_value(out, v->u.tab.items[i].value,
                  sl_schema_key_is_secret(key) || (so && (so->flags & SL_OPT_SECRET)),
                  so ? so->sub : NULL);
    }
    fputs(" }", out);
    break;
  }
}

static void print_section(const sl_section_t *s, const sl_toml_value_t *t, const char *path, bool array,
                          FILE *out) {
  if (!t || t->type != SL_TOML_TABLE) return; /* an invalid document: its errors say what is wrong */
  bool any = false;
  for (const sl_opt_t *o = s->opts; o && o->name; o++) any |= sl_toml_get(t, o->name) != NULL;
  if (s->flags & SL_SECTION_OPEN) any = true;
  if (*path && (any || array)) fprintf(out, array ? "\n[[%s]]\n" : "\n[%s]\n", path);
  for (const sl_opt_t *o = s->opts; o && o->name; o++) {
    const sl_toml_value_t *v = sl_toml_get(t, o->name);
    if (!v) continue;
    print_key(out, o->name);
    fputs(" = ", out);
    print_value(out, v, o->flags & SL_OPT_SECRET, o->sub);
    fputc('\n', out);
  }
  if (s->flags & SL_SECTION_OPEN) {
    for (size_t i = 0; i < t->u.tab.len; i++) {
      const sl_toml_kv_t *kv = &t->u.tab.items[i];
      if (find_opt(s, kv->key) || find_child(s, kv->key)) continue;
      print_key(out, kv->key);
      fputs(" = ", out);
      print_value(out, kv->value, sl_schema_key_is_secret(kv->key), NULL);
      fputc('\n', out);
    }
  }
  SL_FOR_EACH_CHILD(s, ch) {
    const sl_toml_value_t *v = sl_toml_get(t, (*ch)->name);
    if (!v) continue;
    char sub[512];
    snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", (*ch)->name);
    if ((*ch)->flags & SL_SECTION_ARRAY) {
      for (size_t i = 0; v->type == SL_TOML_ARRAY && i < v->u.arr.len; i++)
        print_section(*ch, v->u.arr.items[i], sub, true, out);
    } else {
      print_section(*ch, v, sub, false, out);
    }
  }
}

void sl_schema_print(const sl_section_t *root, const sl_toml_value_t *doc, FILE *out) {
  print_section(root, doc, "", false, out);
}

/* ---- Markdown reference -------------------------------------------------- */

static const char *type_doc(const sl_opt_t *o) {
  switch (o->type) {
  case SL_OPT_STRING: return "string";
  case SL_OPT_INT: return "integer";
  case SL_OPT_FLOAT: return "number";
  case SL_OPT_BOOL: return "boolean";
  case SL_OPT_DURATION: return "duration";
  case SL_OPT_SIZE: return "size";
  case SL_OPT_ADDR: return "address";
  case SL_OPT_ADDR_LIST: return "address or array of addresses";
  case SL_OPT_STRING_LIST: return "string or array of strings";
  case SL_OPT_ENUM: return o->sub ? "enum or inline table" : "enum";
  case SL_OPT_MAP: return "table";
  case SL_OPT_TABLE: return "inline table";
  case SL_OPT_FLOAT_LIST: return "number or array of numbers";
  }
  return "?";
}

static void md_escape(FILE *out, const char *s) {
  for (; *s; s++) {
    if (*s == '|')
      fputs("\\|", out);
    else
      fputc(*s, out);
  }
}

static void reference_section(const sl_section_t *s, const char *path, FILE *out) {
  if (*path) {
    fprintf(out, (s->flags & SL_SECTION_ARRAY) ? "\n#### `[[%s]]`\n\n" : "\n#### `[%s]`\n\n", path);
    fprintf(out, "%s\n", s->help ? s->help : "");
  }
  if (s->opts && s->opts->name) {
    fputs("\n| key | type | default | description |\n|---|---|---|---|\n", out);
    for (const sl_opt_t *o = s->opts; o->name; o++) {
      fprintf(out, "| `%s` | %s | ", o->name, type_doc(o));
      if (o->flags & SL_OPT_REQUIRED)
        fputs("required", out);
      else if (o->def) {
        fputs("`", out);
        md_escape(out, o->def);
        fputs("`", out);
      } else
        fputs("unset", out);
      fputs(" | ", out);
      md_escape(out, o->help ? o->help : "");
      if (o->type == SL_OPT_ENUM) {
        fputs(" One of: ", out);
        const char *p = o->choices;
        while (p) {
          const char *bar = strchr(p, '|');
          fprintf(out, "`%.*s`%s", bar ? (int)(bar - p) : (int)strlen(p), p, bar ? ", " : ".");
          p = bar ? bar + 1 : NULL;
        }
      }
      if (o->min || o->max) {
        char r[80];
        range_text(o, r, sizeof r);
        fprintf(out, " Range: %s.", r);
      }
      if (o->flags & SL_OPT_SECRET) fputs(" Secret: never printed.", out);
      if (o->sub && o->sub->opts) {
        fputs(o->type == SL_OPT_ENUM ? " Or a table with keys: " : " Keys: ", out);
        for (const sl_opt_t *so = o->sub->opts; so->name; so++)
          fprintf(out, "`%s` (%s%s)%s", so->name, type_doc(so),
                  (so->flags & SL_OPT_REQUIRED) ? ", required" : "", so[1].name ? ", " : ".");
      }
      fputs(" |\n", out);
    }
  }
  SL_FOR_EACH_CHILD(s, ch) {
    char sub[256];
    snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", (*ch)->name);
    reference_section(*ch, sub, out);
  }
}

void sl_schema_reference_section(const sl_section_t *s, const char *path, FILE *out) {
  reference_section(s, path, out);
}

void sl_schema_reference(const sl_section_t *root, FILE *out) {
  fputs("#### Top level\n", out);
  reference_section(root, "", out);
}
