/* TOML 1.0 parser: validates the whole document as UTF-8, then walks it once
 * with a hand-written recursive-descent parser into sl_toml_value_t trees.
 * Pure (sl_toml_parse_file is the only I/O); safe to call from any thread as
 * it keeps no global state. */
#include "toml.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Arrays and inline tables recurse, and sl_toml_free recurses over every kind
 * of nesting, so the depth of the tree is capped rather than the stack left
 * to chance. */
#define MAX_DEPTH 128

/* How a table or an array came to exist decides what may later be added to
 * it (TOML 1.0, "Table" and "Array of Tables"). */
enum {
  T_IMPLICIT = 1 << 0, /* prefix of a [header]; a later [header] may define it once */
  T_HEADER = 1 << 1,   /* defined by [header] or an element of [[header]] */
  T_DOTTED = 1 << 2,   /* created by a dotted key; only dotted keys may extend it */
  T_INLINE = 1 << 3,   /* { ... }: sealed when the brace closes */
  A_STATIC = 1 << 4,   /* [ ... ] value: sealed */
  A_TABLES = 1 << 5,   /* array of tables: [[header]] appends to it */
};

/* Every value the parser allocates is a node; the public value comes first so
 * that a node pointer is a value pointer and free() works on either. */
typedef struct {
  sl_toml_value_t v;
  unsigned flags;
  int depth;
  size_t cap;
  /* Tables past HASH_MIN keys also get an open-addressing index (item index
   * + 1, 0 = empty) so that big files do not parse in quadratic time. */
  size_t *hidx, hcap;
} node_t;

#define HASH_MIN 16

/* A line:col computed when the parser is at the spot: positions are asked
 * for in text order so that the line cache only ever moves forward. */
typedef struct {
  int line, col;
} pos_t;

typedef struct {
  char *s;
  size_t len;
  size_t off; /* where the segment was written */
  pos_t at;
} seg_t;

typedef struct {
  seg_t *v;
  size_t n, cap;
} keypath_t;

typedef struct {
  char *p;
  size_t len, cap;
} sbuf_t;

typedef struct {
  const char *s;
  size_t len, pos;
  const char *filename;
  char *err;
  size_t errlen;
  int rc;
  node_t *root, *cur;
  /* line cache for offset -> line:col; lookups move forward almost always */
  size_t lc_off, lc_ls;
  int lc_line;
} parser_t;

/* ---- positions and errors ---- */

static void pos_of(parser_t *p, size_t off, int *line, int *col) {
  if (off > p->len) off = p->len;
  if (off < p->lc_off) {
    p->lc_off = 0;
    p->lc_ls = 0;
    p->lc_line = 1;
  }
  for (size_t i = p->lc_off; i < off; i++) {
    if (p->s[i] == '\n') {
      p->lc_line++;
      p->lc_ls = i + 1;
    }
  }
  p->lc_off = off;
  *line = p->lc_line;
  *col = (int)(off - p->lc_ls) + 1;
}

static pos_t here(parser_t *p, size_t off) {
  pos_t at;
  pos_of(p, off, &at.line, &at.col);
  return at;
}

__attribute__((format(printf, 3, 4))) static int fail_at(parser_t *p, size_t off, const char *fmt,
                                                         ...) {
  if (p->rc) return p->rc;
  p->rc = SL_ESYNTAX;
  if (!p->err || !p->errlen) return p->rc;
  int line, col;
  pos_of(p, off, &line, &col);
  int n = p->filename ? snprintf(p->err, p->errlen, "%s:%d:%d: ", p->filename, line, col)
                      : snprintf(p->err, p->errlen, "%d:%d: ", line, col);
  if (n < 0 || (size_t)n >= p->errlen) return p->rc;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
  va_end(ap);
  return p->rc;
}

static int fail_nomem(parser_t *p) {
  if (p->rc) return p->rc;
  p->rc = SL_ENOMEM;
  if (p->err && p->errlen) snprintf(p->err, p->errlen, "%s", sl_strerror(SL_ENOMEM));
  return p->rc;
}

/* Names the character at off for a message: 'x', "end of line", U+0001. */
static const char *describe(const parser_t *p, size_t off, char *buf, size_t n) {
  if (off >= p->len) return "end of file";
  unsigned char c = (unsigned char)p->s[off];
  if (c == '\n' || (c == '\r' && off + 1 < p->len && p->s[off + 1] == '\n')) return "end of line";
  if (c >= 0x20 && c < 0x7f) {
    snprintf(buf, n, "'%c'", c);
  } else if (c < 0x80) {
    snprintf(buf, n, "U+%04X", c);
  } else {
    int k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if (off + (size_t)k > p->len) k = (int)(p->len - off);
    snprintf(buf, n, "'%.*s'", k, p->s + off);
  }
  return buf;
}

static bool is_bare(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

/* Writes a key path the way a user would write it: a.b."c d". */
static const char *key_display(const keypath_t *k, size_t nseg, char *buf, size_t n) {
  size_t o = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < nseg && o + 1 < n; i++) {
    const seg_t *s = &k->v[i];
    bool bare = s->len > 0;
    for (size_t j = 0; j < s->len && bare; j++) bare = is_bare((unsigned char)s->s[j]);
    /* Quoted parts are shown in single quotes (double when they hold one);
     * the message already wraps the whole key in double quotes. */
    char q = !bare && memchr(s->s, '\'', s->len) ? '"' : '\'';
    if (i) buf[o++] = '.';
    if (!bare && o + 1 < n) buf[o++] = q;
    for (size_t j = 0; j < s->len && o + 1 < n; j++) {
      unsigned char c = (unsigned char)s->s[j];
      buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (!bare && o + 1 < n) buf[o++] = q;
  }
  buf[o < n ? o : n - 1] = '\0';
  return buf;
}

/* ---- memory ---- */

static void free_value(sl_toml_value_t *v) {
  if (!v) return;
  switch (v->type) {
    case SL_TOML_STRING:
      free(v->u.str.ptr);
      break;
    case SL_TOML_ARRAY:
      for (size_t i = 0; i < v->u.arr.len; i++) free_value(v->u.arr.items[i]);
      free(v->u.arr.items);
      break;
    case SL_TOML_TABLE:
      for (size_t i = 0; i < v->u.tab.len; i++) {
        free(v->u.tab.items[i].key);
        free_value(v->u.tab.items[i].value);
      }
      free(v->u.tab.items);
      free(((node_t *)v)->hidx);
      break;
    default:
      break;
  }
  free(v);
}

void sl_toml_free(sl_toml_value_t *v) {
  free_value(v);
}

static int node_new(parser_t *p, sl_toml_type_t type, pos_t at, size_t off, int depth,
                    node_t **out) {
  *out = NULL;
  if (depth > MAX_DEPTH) return fail_at(p, off, "nesting deeper than %d levels", MAX_DEPTH);
  node_t *n = calloc(1, sizeof *n);
  if (!n) return fail_nomem(p);
  n->v.type = type;
  n->depth = depth;
  n->v.line = at.line;
  n->v.col = at.col;
  *out = n;
  return 0;
}

static int sbuf_put(parser_t *p, sbuf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 32;
    while (cap < b->len + n + 1) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) return fail_nomem(p);
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

static int sbuf_finish(parser_t *p, sbuf_t *b) {
  return b->p ? 0 : sbuf_put(p, b, "", 0); /* an empty string still owns a "" */
}

static void keypath_clear(keypath_t *k) {
  for (size_t i = 0; i < k->n; i++) free(k->v[i].s);
  free(k->v);
  k->v = NULL;
  k->n = k->cap = 0;
}

static size_t hash_key(const char *k, size_t n) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 1099511628211ULL;
  return (size_t)h;
}

static sl_toml_kv_t *tab_find(const node_t *t, const char *key, size_t len) {
  sl_toml_kv_t *items = t->v.u.tab.items;
  if (!t->hidx) {
    for (size_t i = 0; i < t->v.u.tab.len; i++)
      if (items[i].key_len == len && memcmp(items[i].key, key, len) == 0) return &items[i];
    return NULL;
  }
  for (size_t h = hash_key(key, len) & (t->hcap - 1); t->hidx[h]; h = (h + 1) & (t->hcap - 1)) {
    sl_toml_kv_t *kv = &items[t->hidx[h] - 1];
    if (kv->key_len == len && memcmp(kv->key, key, len) == 0) return kv;
  }
  return NULL;
}

static void hash_insert(node_t *t, size_t i) {
  const sl_toml_kv_t *kv = &t->v.u.tab.items[i];
  size_t h = hash_key(kv->key, kv->key_len) & (t->hcap - 1);
  while (t->hidx[h]) h = (h + 1) & (t->hcap - 1);
  t->hidx[h] = i + 1;
}

/* Indexes the key just appended; keeps the load factor at most 1/2. */
static int tab_index(parser_t *p, node_t *t) {
  size_t len = t->v.u.tab.len;
  if (len < HASH_MIN) return 0;
  if (t->hidx && len * 2 <= t->hcap) {
    hash_insert(t, len - 1);
    return 0;
  }
  size_t cap = t->hcap ? t->hcap : 64;
  while (cap < len * 4) cap *= 2;
  size_t *idx = calloc(cap, sizeof *idx);
  if (!idx) return fail_nomem(p);
  free(t->hidx);
  t->hidx = idx;
  t->hcap = cap;
  for (size_t i = 0; i < len; i++) hash_insert(t, i);
  return 0;
}

/* Appends key -> v to table t, taking v (freed on failure). */
static int tab_add(parser_t *p, node_t *t, const seg_t *k, pos_t at, node_t *v) {
  if (t->v.u.tab.len == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 8;
    sl_toml_kv_t *items = realloc(t->v.u.tab.items, cap * sizeof *items);
    if (!items) goto nomem;
    t->v.u.tab.items = items;
    t->cap = cap;
  }
  char *key = malloc(k->len + 1);
  if (!key) goto nomem;
  memcpy(key, k->s, k->len);
  key[k->len] = '\0';
  sl_toml_kv_t *kv = &t->v.u.tab.items[t->v.u.tab.len++];
  kv->key = key;
  kv->key_len = k->len;
  kv->line = at.line;
  kv->col = at.col;
  kv->value = &v->v;
  return tab_index(p, t);
nomem:
  free_value(&v->v);
  return fail_nomem(p);
}

/* Appends v to array a, taking v (freed on failure). */
static int arr_push(parser_t *p, node_t *a, node_t *v) {
  if (a->v.u.arr.len == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 8;
    sl_toml_value_t **items = realloc(a->v.u.arr.items, cap * sizeof *items);
    if (!items) {
      free_value(&v->v);
      return fail_nomem(p);
    }
    a->v.u.arr.items = items;
    a->cap = cap;
  }
  a->v.u.arr.items[a->v.u.arr.len++] = &v->v;
  return 0;
}

/* ---- lexical helpers ---- */

static int check_utf8(parser_t *p) {
  const unsigned char *s = (const unsigned char *)p->s;
  size_t i = 0;
  while (i < p->len) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    unsigned cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return fail_at(p, i, "invalid UTF-8: unexpected byte 0x%02X", c);
    }
    if (i + n >= p->len) return fail_at(p, i, "invalid UTF-8: truncated sequence at end of file");
    for (size_t k = 1; k <= n; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return fail_at(p, i, "invalid UTF-8: truncated sequence");
      cp = cp << 6 | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return fail_at(p, i,
                     "invalid UTF-8: overlong encoding, surrogate or code point above U+10FFFF");
    i += n + 1;
  }
  return 0;
}

static bool peek_is(const parser_t *p, char c) {
  return p->pos < p->len && p->s[p->pos] == c;
}

static bool at_newline(const parser_t *p) {
  return peek_is(p, '\n') || (peek_is(p, '\r') && p->pos + 1 < p->len && p->s[p->pos + 1] == '\n');
}

static void skip_ws(parser_t *p) {
  while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t')) p->pos++;
}

static bool is_ctrl(unsigned char c) {
  return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* Skips a comment up to (not including) its end of line. */
static int skip_comment(parser_t *p) {
  if (!peek_is(p, '#')) return 0;
  for (p->pos++; p->pos < p->len && !at_newline(p); p->pos++) {
    unsigned char c = (unsigned char)p->s[p->pos];
    if (is_ctrl(c))
      return fail_at(p, p->pos, "control character U+%04X is not allowed in a comment", c);
  }
  return 0;
}

static int skip_newline(parser_t *p) {
  if (peek_is(p, '\n')) {
    p->pos++;
  } else if (peek_is(p, '\r')) {
    if (!at_newline(p)) return fail_at(p, p->pos, "carriage return not followed by a newline");
    p->pos += 2;
  }
  return 0;
}

/* Whitespace, newlines and comments: the filler allowed inside arrays. */
static int skip_filler(parser_t *p) {
  int rc;
  for (;;) {
    skip_ws(p);
    if ((rc = skip_comment(p)) < 0) return rc;
    if (peek_is(p, '\n') || peek_is(p, '\r')) {
      if ((rc = skip_newline(p)) < 0) return rc;
      continue;
    }
    return 0;
  }
}

static int expect_eol(parser_t *p, const char *after) {
  int rc;
  char d[16];
  skip_ws(p);
  if ((rc = skip_comment(p)) < 0) return rc;
  if (p->pos >= p->len) return 0;
  if (peek_is(p, '\n') || peek_is(p, '\r')) return skip_newline(p);
  return fail_at(p, p->pos, "expected end of line after %s, found %s", after,
                 describe(p, p->pos, d, sizeof d));
}

/* ---- strings ---- */

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int put_utf8(parser_t *p, sbuf_t *b, unsigned long cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (char)cp, n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
  } else {
    u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
  }
  return sbuf_put(p, b, u, n);
}

/* An escape sequence at p->pos (the backslash) of a basic string. */
static int parse_escape(parser_t *p, sbuf_t *b, size_t start) {
  size_t esc = p->pos++;
  if (p->pos >= p->len) return fail_at(p, start, "unterminated string");
  char c = p->s[p->pos++];
  const char *simple = NULL;
  switch (c) {
    case 'b':
      simple = "\b";
      break;
    case 't':
      simple = "\t";
      break;
    case 'n':
      simple = "\n";
      break;
    case 'f':
      simple = "\f";
      break;
    case 'r':
      simple = "\r";
      break;
    case '"':
      simple = "\"";
      break;
    case '\\':
      simple = "\\";
      break;
    case 'u':
    case 'U': {
      int nd = c == 'u' ? 4 : 8;
      unsigned long cp = 0;
      for (int i = 0; i < nd; i++) {
        int h = p->pos + (size_t)i < p->len ? hexval(p->s[p->pos + (size_t)i]) : -1;
        if (h < 0)
          return fail_at(p, esc, "invalid escape sequence: \\%c needs %d hex digits", c, nd);
        cp = cp << 4 | (unsigned long)h;
      }
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return fail_at(p, esc, "escape \\%c%.*s is not a Unicode scalar value", c, nd,
                       p->s + p->pos);
      p->pos += (size_t)nd;
      return put_utf8(p, b, cp);
    }
    default: {
      char d[16];
      p->pos--;
      if ((unsigned char)c > 0x20 && (unsigned char)c < 0x7f)
        return fail_at(p, esc, "invalid escape sequence '\\%c'", c);
      return fail_at(p, esc, "invalid escape sequence: backslash followed by %s",
                     describe(p, p->pos, d, sizeof d));
    }
  }
  return sbuf_put(p, b, simple, 1);
}

static int bad_char(parser_t *p, size_t start, bool multi) {
  unsigned char c = (unsigned char)p->s[p->pos];
  if (!multi && (c == '\n' || c == '\r')) return fail_at(p, start, "unterminated string");
  if (c == '\r') return fail_at(p, p->pos, "carriage return not followed by a newline");
  return fail_at(p, p->pos, "control character U+%04X must be escaped in a string", c);
}

/* Parses any of the four string forms at p->pos into b.  Keys pass
 * allow_multi=false. */
static int parse_string(parser_t *p, sbuf_t *b, bool allow_multi) {
  size_t start = p->pos;
  char q = p->s[p->pos];
  bool basic = q == '"';
  bool multi = p->pos + 2 < p->len && p->s[p->pos + 1] == q && p->s[p->pos + 2] == q;
  int rc;
  if (multi && !allow_multi)
    return fail_at(p, start, "a multi-line string cannot be used as a key");
  if (multi) {
    p->pos += 3;
    if (peek_is(p, '\n')) {
      p->pos++;
    } else if (at_newline(p)) {
      p->pos += 2;
    }
  } else {
    p->pos++;
  }
  for (;;) {
    if (p->pos >= p->len)
      return fail_at(p, start, multi ? "unterminated multi-line string" : "unterminated string");
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c == (unsigned char)q) {
      if (!multi) {
        p->pos++;
        break;
      }
      size_t n = 0;
      while (p->pos + n < p->len && p->s[p->pos + n] == q) n++;
      if (n < 3) {
        if ((rc = sbuf_put(p, b, p->s + p->pos, n)) < 0) return rc;
        p->pos += n;
        continue;
      }
      /* Up to two quotes may sit just before the closing delimiter. */
      size_t extra = n - 3 > 2 ? 2 : n - 3;
      if ((rc = sbuf_put(p, b, p->s + p->pos, extra)) < 0) return rc;
      p->pos += extra + 3;
      break;
    }
    if (c == '\\' && basic) {
      if (multi) {
        size_t j = p->pos + 1;
        while (j < p->len && (p->s[j] == ' ' || p->s[j] == '\t')) j++;
        if (j < p->len &&
            (p->s[j] == '\n' || (p->s[j] == '\r' && j + 1 < p->len && p->s[j + 1] == '\n'))) {
          /* Line-ending backslash: drop it and all whitespace up to the
           * next non-blank character. */
          p->pos = j;
          for (;;) {
            skip_ws(p);
            if (!at_newline(p)) break;
            p->pos += peek_is(p, '\n') ? 1 : 2;
          }
          continue;
        }
      }
      if ((rc = parse_escape(p, b, start)) < 0) return rc;
      continue;
    }
    if (multi && c == '\n') {
      rc = sbuf_put(p, b, "\n", 1);
      p->pos++;
    } else if (multi && at_newline(p)) {
      rc = sbuf_put(p, b, "\n", 1); /* CRLF is stored as LF */
      p->pos += 2;
    } else if (is_ctrl(c)) {
      return bad_char(p, start, multi);
    } else {
      rc = sbuf_put(p, b, (const char *)&c, 1);
      p->pos++;
    }
    if (rc < 0) return rc;
  }
  return sbuf_finish(p, b);
}

/* ---- keys ---- */

static int parse_key(parser_t *p, keypath_t *k) {
  int rc;
  char d[16];
  for (;;) {
    skip_ws(p);
    seg_t seg = {NULL, 0, p->pos, here(p, p->pos)};
    if (peek_is(p, '"') || peek_is(p, '\'')) {
      sbuf_t b = {0};
      if ((rc = parse_string(p, &b, false)) < 0) {
        free(b.p);
        return rc;
      }
      seg.s = b.p;
      seg.len = b.len;
    } else if (p->pos < p->len && is_bare((unsigned char)p->s[p->pos])) {
      size_t e = p->pos;
      while (e < p->len && is_bare((unsigned char)p->s[e])) e++;
      seg.len = e - p->pos;
      seg.s = malloc(seg.len + 1);
      if (!seg.s) return fail_nomem(p);
      memcpy(seg.s, p->s + p->pos, seg.len);
      seg.s[seg.len] = '\0';
      p->pos = e;
    } else {
      return fail_at(p, p->pos, "expected a key, found %s", describe(p, p->pos, d, sizeof d));
    }
    if (k->n == k->cap) {
      size_t cap = k->cap ? k->cap * 2 : 4;
      seg_t *v = realloc(k->v, cap * sizeof *v);
      if (!v) {
        free(seg.s);
        return fail_nomem(p);
      }
      k->v = v;
      k->cap = cap;
    }
    k->v[k->n++] = seg;
    if (k->n > MAX_DEPTH)
      return fail_at(p, seg.off, "key has more than %d dotted parts", MAX_DEPTH);
    skip_ws(p);
    if (!peek_is(p, '.')) return 0;
    p->pos++;
  }
}

/* ---- values ---- */

static int parse_value(parser_t *p, int depth, node_t **out);
static int parse_keyval(parser_t *p, node_t *base);

static int parse_array(parser_t *p, int depth, node_t **out) {
  size_t start = p->pos;
  node_t *a;
  char d[16];
  int rc = node_new(p, SL_TOML_ARRAY, here(p, start), start, depth, &a);
  if (rc < 0) return rc;
  a->flags = A_STATIC;
  p->pos++;
  for (;;) {
    if ((rc = skip_filler(p)) < 0) goto fail;
    if (peek_is(p, ']')) break;
    if (p->pos >= p->len) {
      int line, col;
      pos_of(p, start, &line, &col);
      rc = fail_at(p, p->pos, "unterminated array (opened at %d:%d)", line, col);
      goto fail;
    }
    node_t *v;
    if ((rc = parse_value(p, depth + 1, &v)) < 0) goto fail;
    if ((rc = arr_push(p, a, v)) < 0) goto fail;
    if ((rc = skip_filler(p)) < 0) goto fail;
    if (peek_is(p, ',')) {
      p->pos++;
      continue;
    }
    if (peek_is(p, ']')) break;
    if (p->pos >= p->len) {
      int line, col;
      pos_of(p, start, &line, &col);
      rc = fail_at(p, p->pos, "unterminated array (opened at %d:%d)", line, col);
    } else {
      rc = fail_at(p, p->pos, "expected ',' or ']' in array, found %s",
                   describe(p, p->pos, d, sizeof d));
    }
    goto fail;
  }
  p->pos++;
  *out = a;
  return 0;
fail:
  free_value(&a->v);
  return rc;
}

static int parse_inline_table(parser_t *p, int depth, node_t **out) {
  size_t start = p->pos;
  node_t *t;
  char d[16];
  int rc = node_new(p, SL_TOML_TABLE, here(p, start), start, depth, &t);
  if (rc < 0) return rc;
  p->pos++;
  skip_ws(p);
  if (!peek_is(p, '}')) {
    for (;;) {
      if ((rc = parse_keyval(p, t)) < 0) goto fail;
      skip_ws(p);
      if (peek_is(p, ',')) {
        p->pos++;
        skip_ws(p);
        if (peek_is(p, '}')) {
          rc = fail_at(p, p->pos - 1, "trailing comma is not allowed in an inline table");
          goto fail;
        }
        continue;
      }
      if (peek_is(p, '}')) break;
      if (p->pos >= p->len || at_newline(p) || peek_is(p, '\r')) {
        int line, col;
        pos_of(p, start, &line, &col);
        rc = fail_at(p, p->pos,
                     "unterminated inline table (opened at %d:%d); an inline table must be "
                     "on one line",
                     line, col);
      } else {
        rc = fail_at(p, p->pos, "expected ',' or '}' in inline table, found %s",
                     describe(p, p->pos, d, sizeof d));
      }
      goto fail;
    }
  }
  p->pos++;
  t->flags = T_INLINE;
  *out = t;
  return 0;
fail:
  free_value(&t->v);
  return rc;
}

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
  if (why) return fail_at(p, off, "invalid date/time \"%.*s\": %s", (int)n, t, why);
  node_t *v;
  int rc = node_new(p, type, at, off, depth, &v);
  if (rc < 0) return rc;
  v->v.u.dt = dt;
  *out = v;
  return 0;
}

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
    if (i) return fail_at(p, off, "a sign is not allowed on \"%.*s\"", (int)n, t);
    i += 2;
  }
  size_t ds = i;
  int nd = scan_digits(t, n, &i, base);
  if (nd < 0) goto underscore;
  if (nd == 0) goto bad;
  if (base == 10 && t[ds] == '0' && nd > 1)
    return fail_at(p, off, "leading zeros are not allowed in \"%.*s\"", (int)n, t);
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
    if (o + 1 >= sizeof buf) return fail_at(p, off, "float \"%.*s\" is too long", (int)n, t);
    buf[o] = '\0';
    double f = strtod(buf, NULL);
    if (isinf(f)) return fail_at(p, off, "float \"%.*s\" is out of range", (int)n, t);
    if ((rc = node_new(p, SL_TOML_FLOAT, at, off, depth, &v)) < 0) return rc;
    v->v.u.f = f;
  } else {
    /* Accumulate the magnitude unsigned: -9223372036854775808 fits. */
    uint64_t m = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t k = ds; k < n; k++) {
      if (t[k] == '_') continue;
      uint64_t dgt = (uint64_t)hexval(t[k]);
      if (m > (lim - dgt) / (uint64_t)base)
        return fail_at(p, off, "integer \"%.*s\" is out of range for a 64-bit integer", (int)n, t);
      m = m * (uint64_t)base + dgt;
    }
    if ((rc = node_new(p, SL_TOML_INTEGER, at, off, depth, &v)) < 0) return rc;
    v->v.u.i = neg ? (int64_t)(0 - m) : (int64_t)m;
  }
  *out = v;
  return 0;
underscore:
  return fail_at(p, off, "an underscore in \"%.*s\" must be between two digits", (int)n, t);
bad:
  return fail_at(p, off, "invalid value \"%.*s\"", (int)n, t);
}

static bool is_tok(char c) {
  return is_bare((unsigned char)c) || c == '+' || c == '.' || c == ':';
}

/* Booleans, numbers and dates: everything not introduced by a delimiter. */
static int parse_bare_value(parser_t *p, int depth, node_t **out) {
  size_t start = p->pos;
  pos_t at = here(p, start);
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
    return fail_at(p, start, "expected a value, found %s", describe(p, start, d, sizeof d));
  node_t *v;
  int rc;
  if ((n == 4 && !memcmp(t, "true", 4)) || (n == 5 && !memcmp(t, "false", 5))) {
    if ((rc = node_new(p, SL_TOML_BOOL, at, start, depth, &v)) < 0) return rc;
    v->v.u.b = n == 4;
    *out = v;
    return 0;
  }
  size_t s = (t[0] == '+' || t[0] == '-') ? 1 : 0;
  if (n - s == 3 && (!memcmp(t + s, "inf", 3) || !memcmp(t + s, "nan", 3))) {
    if ((rc = node_new(p, SL_TOML_FLOAT, at, start, depth, &v)) < 0) return rc;
    v->v.u.f = t[s] == 'i' ? INFINITY : NAN;
    if (t[0] == '-') v->v.u.f = -v->v.u.f;
    *out = v;
    return 0;
  }
  if ((n >= 5 && digits(t, 4) && t[4] == '-') || (n >= 3 && digits(t, 2) && t[2] == ':'))
    return parse_datetime(p, t, n, start, at, depth, out);
  return parse_number(p, t, n, start, at, depth, out);
}

static int parse_value(parser_t *p, int depth, node_t **out) {
  *out = NULL;
  if (peek_is(p, '"') || peek_is(p, '\'')) {
    size_t start = p->pos;
    pos_t at = here(p, start);
    sbuf_t b = {0};
    node_t *v;
    int rc = parse_string(p, &b, true);
    if (rc == 0) rc = node_new(p, SL_TOML_STRING, at, start, depth, &v);
    if (rc < 0) {
      free(b.p);
      return rc;
    }
    v->v.u.str.ptr = b.p;
    v->v.u.str.len = b.len;
    *out = v;
    return 0;
  }
  if (peek_is(p, '[')) {
    if (depth > MAX_DEPTH) return fail_at(p, p->pos, "nesting deeper than %d levels", MAX_DEPTH);
    return parse_array(p, depth, out);
  }
  if (peek_is(p, '{')) {
    if (depth > MAX_DEPTH) return fail_at(p, p->pos, "nesting deeper than %d levels", MAX_DEPTH);
    return parse_inline_table(p, depth, out);
  }
  return parse_bare_value(p, depth, out);
}

/* ---- tables ---- */

/* What a key already holds, for "it is <origin> at L:C" messages. */
static const char *origin(const node_t *n) {
  switch (n->v.type) {
    case SL_TOML_ARRAY:
      return n->flags & A_TABLES ? "an array of tables defined" : "an array defined";
    case SL_TOML_TABLE:
      if (n->flags & T_INLINE) return "an inline table defined";
      if (n->flags & T_DOTTED) return "a table defined by dotted keys";
      if (n->flags & T_IMPLICIT) return "a table implied by the header";
      return "a table defined by the header";
    case SL_TOML_INTEGER:
      return "an integer defined";
    case SL_TOML_STRING:
      return "a string defined";
    case SL_TOML_FLOAT:
      return "a float defined";
    case SL_TOML_BOOL:
      return "a boolean defined";
    default:
      return "a date/time defined";
  }
}

/* key = value into base (the current [table], or an inline table). */
static int parse_keyval(parser_t *p, node_t *base) {
  keypath_t k = {0};
  char kd[256], d[16];
  int rc = parse_key(p, &k);
  if (rc < 0) goto out;
  skip_ws(p);
  if (!peek_is(p, '=')) {
    rc = fail_at(p, p->pos, "expected '=' after key \"%s\", found %s",
                 key_display(&k, k.n, kd, sizeof kd), describe(p, p->pos, d, sizeof d));
    goto out;
  }
  p->pos++;
  skip_ws(p);
  node_t *t = base;
  for (size_t i = 0; i + 1 < k.n; i++) {
    sl_toml_kv_t *kv = tab_find(t, k.v[i].s, k.v[i].len);
    if (!kv) {
      node_t *nt;
      if ((rc = node_new(p, SL_TOML_TABLE, k.v[i].at, k.v[i].off, t->depth + 1, &nt)) < 0) goto out;
      nt->flags = T_DOTTED;
      if ((rc = tab_add(p, t, &k.v[i], k.v[i].at, nt)) < 0) goto out;
      t = nt;
      continue;
    }
    node_t *n = (node_t *)kv->value;
    if (n->v.type != SL_TOML_TABLE || !(n->flags & T_DOTTED)) {
      rc = fail_at(p, k.v[i].off, "cannot add keys to \"%s\" with a dotted key: it is %s at %d:%d",
                   key_display(&k, i + 1, kd, sizeof kd), origin(n), kv->line, kv->col);
      goto out;
    }
    t = n;
  }
  const seg_t *last = &k.v[k.n - 1];
  sl_toml_kv_t *kv = tab_find(t, last->s, last->len);
  if (kv) {
    rc = fail_at(p, last->off, "duplicate key \"%s\" (first defined at %d:%d)",
                 key_display(&k, k.n, kd, sizeof kd), kv->line, kv->col);
    goto out;
  }
  if (p->pos >= p->len || at_newline(p) || peek_is(p, '#')) {
    rc = fail_at(p, p->pos, "missing value for key \"%s\"", key_display(&k, k.n, kd, sizeof kd));
    goto out;
  }
  node_t *v;
  if ((rc = parse_value(p, t->depth + 1, &v)) < 0) goto out;
  rc = tab_add(p, t, last, last->at, v);
out:
  keypath_clear(&k);
  return rc;
}

/* [a.b.c] or [[a.b.c]]: makes p->cur the table that following keys fill. */
static int parse_header(parser_t *p) {
  size_t start = p->pos;
  pos_t at = here(p, start);
  bool aot = p->pos + 1 < p->len && p->s[p->pos + 1] == '[';
  keypath_t k = {0};
  char kd[256], d[16];
  int rc;
  p->pos += aot ? 2 : 1;
  if ((rc = parse_key(p, &k)) < 0) goto out;
  skip_ws(p);
  if (!peek_is(p, ']') || (aot && (p->pos + 1 >= p->len || p->s[p->pos + 1] != ']'))) {
    rc = fail_at(p, p->pos, "expected '%s' to close the table header, found %s", aot ? "]]" : "]",
                 describe(p, p->pos, d, sizeof d));
    goto out;
  }
  p->pos += aot ? 2 : 1;
  if ((rc = expect_eol(p, "the table header")) < 0) goto out;

  node_t *t = p->root;
  for (size_t i = 0; i + 1 < k.n; i++) {
    sl_toml_kv_t *kv = tab_find(t, k.v[i].s, k.v[i].len);
    if (!kv) {
      node_t *nt;
      if ((rc = node_new(p, SL_TOML_TABLE, at, start, t->depth + 1, &nt)) < 0) goto out;
      nt->flags = T_IMPLICIT;
      if ((rc = tab_add(p, t, &k.v[i], at, nt)) < 0) goto out;
      t = nt;
      continue;
    }
    node_t *n = (node_t *)kv->value;
    if (n->v.type == SL_TOML_TABLE && !(n->flags & T_INLINE)) {
      t = n;
    } else if (n->v.type == SL_TOML_ARRAY && (n->flags & A_TABLES)) {
      t = (node_t *)n->v.u.arr.items[n->v.u.arr.len - 1];
    } else {
      rc = fail_at(p, k.v[i].off, "cannot define a table under \"%s\": it is %s at %d:%d",
                   key_display(&k, i + 1, kd, sizeof kd), origin(n), kv->line, kv->col);
      goto out;
    }
  }
  const seg_t *last = &k.v[k.n - 1];
  sl_toml_kv_t *kv = tab_find(t, last->s, last->len);
  node_t *n = kv ? (node_t *)kv->value : NULL;
  key_display(&k, k.n, kd, sizeof kd);
  if (!aot) {
    if (!n) {
      if ((rc = node_new(p, SL_TOML_TABLE, at, start, t->depth + 1, &n)) < 0) goto out;
      n->flags = T_HEADER;
      if ((rc = tab_add(p, t, last, at, n)) < 0) goto out;
    } else if (n->v.type == SL_TOML_TABLE && n->flags == T_IMPLICIT) {
      n->flags = T_HEADER;
      kv->line = n->v.line = at.line;
      kv->col = n->v.col = at.col;
    } else if (n->v.type == SL_TOML_TABLE && n->flags == T_HEADER) {
      rc = fail_at(p, start, "table [%s] is defined twice (first at %d:%d)", kd, kv->line, kv->col);
      goto out;
    } else {
      rc = fail_at(p, start, "cannot define table [%s]: \"%s\" is already %s at %d:%d", kd, kd,
                   origin(n), kv->line, kv->col);
      goto out;
    }
    p->cur = n;
  } else {
    if (!n) {
      if ((rc = node_new(p, SL_TOML_ARRAY, at, start, t->depth + 1, &n)) < 0) goto out;
      n->flags = A_TABLES;
      if ((rc = tab_add(p, t, last, at, n)) < 0) goto out;
    } else if (n->v.type != SL_TOML_ARRAY || !(n->flags & A_TABLES)) {
      rc = fail_at(p, start, "cannot define array of tables [[%s]]: \"%s\" is already %s at %d:%d",
                   kd, kd, origin(n), kv->line, kv->col);
      goto out;
    }
    node_t *e;
    if ((rc = node_new(p, SL_TOML_TABLE, at, start, n->depth + 1, &e)) < 0) goto out;
    e->flags = T_HEADER;
    if ((rc = arr_push(p, n, e)) < 0) goto out;
    p->cur = e;
  }
out:
  keypath_clear(&k);
  return rc;
}

/* ---- entry points ---- */

int sl_toml_parse(const char *text, size_t len, const char *filename, sl_toml_value_t **root,
                  char *err, size_t errlen) {
  parser_t p = {.s = text ? text : "",
                .len = text ? len : 0,
                .filename = filename,
                .err = err,
                .errlen = errlen,
                .lc_line = 1};
  node_t *r = NULL;
  int rc;
  *root = NULL;
  if (err && errlen) err[0] = '\0';
  if (p.len > INT_MAX) {
    rc = fail_at(&p, 0, "file larger than %d bytes", INT_MAX);
    goto fail;
  }
  if ((rc = check_utf8(&p)) < 0) goto fail;
  if ((rc = node_new(&p, SL_TOML_TABLE, here(&p, 0), 0, 0, &r)) < 0) goto fail;
  r->flags = T_HEADER;
  p.root = p.cur = r;
  if (p.len >= 3 && !memcmp(p.s, "\xef\xbb\xbf", 3)) p.pos = 3;
  for (;;) {
    skip_ws(&p);
    if (p.pos >= p.len) break;
    if (peek_is(&p, '#')) {
      if ((rc = skip_comment(&p)) < 0) goto fail;
    } else if (peek_is(&p, '\n') || peek_is(&p, '\r')) {
      if ((rc = skip_newline(&p)) < 0) goto fail;
    } else if (peek_is(&p, '[')) {
      if ((rc = parse_header(&p)) < 0) goto fail;
    } else {
      if ((rc = parse_keyval(&p, p.cur)) < 0) goto fail;
      if ((rc = expect_eol(&p, "the value")) < 0) goto fail;
    }
  }
  *root = &r->v;
  return 0;
fail:
  free_value(r ? &r->v : NULL);
  return rc;
}

int sl_toml_parse_file(const char *path, sl_toml_value_t **root, char *err, size_t errlen) {
  *root = NULL;
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int rc;
  if (!f) goto ioerr;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 16384;
      char *nb = realloc(buf, cap);
      if (!nb) {
        errno = ENOMEM;
        goto ioerr;
      }
      buf = nb;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0) {
      if (ferror(f)) goto ioerr;
      break;
    }
  }
  fclose(f);
  rc = sl_toml_parse(buf, len, path, root, err, errlen);
  free(buf);
  return rc;
ioerr:
  rc = errno ? -errno : -EIO;
  if (err && errlen) snprintf(err, errlen, "%s: %s", path, strerror(-rc));
  if (f) fclose(f);
  free(buf);
  return rc;
}

const sl_toml_kv_t *sl_toml_get_kv(const sl_toml_value_t *t, const char *key) {
  if (!t || !key || t->type != SL_TOML_TABLE) return NULL;
  return tab_find((const node_t *)t, key, strlen(key)); /* every value is a node */
}

const sl_toml_value_t *sl_toml_get(const sl_toml_value_t *t, const char *key) {
  const sl_toml_kv_t *kv = sl_toml_get_kv(t, key);
  return kv ? kv->value : NULL;
}

const char *sl_toml_type_name(sl_toml_type_t t) {
  switch (t) {
    case SL_TOML_STRING:
      return "string";
    case SL_TOML_INTEGER:
      return "integer";
    case SL_TOML_FLOAT:
      return "float";
    case SL_TOML_BOOL:
      return "boolean";
    case SL_TOML_DATETIME:
      return "datetime";
    case SL_TOML_DATETIME_LOCAL:
      return "local datetime";
    case SL_TOML_DATE_LOCAL:
      return "local date";
    case SL_TOML_TIME_LOCAL:
      return "local time";
    case SL_TOML_ARRAY:
      return "array";
    case SL_TOML_TABLE:
      return "table";
  }
  return "unknown";
}

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

/* ---- building documents (the config schema adds defaults) ---- */

sl_toml_value_t *sl_toml_table_new(void) {
  node_t *n = calloc(1, sizeof *n);
  if (!n) return NULL;
  n->v.type = SL_TOML_TABLE;
  return &n->v;
}

int sl_toml_table_append(sl_toml_value_t *t, const char *key, sl_toml_value_t *v) {
  parser_t p;
  memset(&p, 0, sizeof p);
  seg_t k;
  memset(&k, 0, sizeof k);
  k.s = (char *)key;
  k.len = strlen(key);
  pos_t at;
  memset(&at, 0, sizeof at);
  return tab_add(&p, (node_t *)t, &k, at, (node_t *)v);
}
