/* TOML 1.0 documents: validates the whole text as UTF-8, then walks it once
 * with a hand-written recursive-descent parser, building sl_toml_value_t
 * trees (tables, arrays, arrays of tables, dotted keys, and the rules on what
 * may be redefined).  Owns the public API of toml.h but for date/time
 * formatting; lexing is in toml_scan.c, bare scalars in toml_scalar.c.
 * Pure (sl_toml_parse_file is the only I/O); safe to call from any thread as
 * it keeps no global state. */
#include "config/toml.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml_internal.h"

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

/* Tables with at least this many keys get a hash index (node_t.hidx). */
#define HASH_MIN 16

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

int sl_toml_node_new(parser_t *p, sl_toml_type_t type, pos_t at, size_t off, int depth,
                     node_t **out) {
  *out = NULL;
  if (depth > SL_TOML_MAX_DEPTH)
    return sl_toml_fail_at(p, off, "nesting deeper than %d levels", SL_TOML_MAX_DEPTH);
  node_t *n = calloc(1, sizeof *n);
  if (!n) return sl_toml_fail_nomem(p);
  n->v.type = type;
  n->depth = depth;
  n->v.line = at.line;
  n->v.col = at.col;
  *out = n;
  return 0;
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
  if (!idx) return sl_toml_fail_nomem(p);
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
  return sl_toml_fail_nomem(p);
}

/* Appends v to array a, taking v (freed on failure). */
static int arr_push(parser_t *p, node_t *a, node_t *v) {
  if (a->v.u.arr.len == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 8;
    sl_toml_value_t **items = realloc(a->v.u.arr.items, cap * sizeof *items);
    if (!items) {
      free_value(&v->v);
      return sl_toml_fail_nomem(p);
    }
    a->v.u.arr.items = items;
    a->cap = cap;
  }
  a->v.u.arr.items[a->v.u.arr.len++] = &v->v;
  return 0;
}

/* ---- values ---- */

static int parse_value(parser_t *p, int depth, node_t **out);
static int parse_keyval(parser_t *p, node_t *base);

static int parse_array(parser_t *p, int depth, node_t **out) {
  size_t start = p->pos;
  node_t *a;
  char d[16];
  int rc = sl_toml_node_new(p, SL_TOML_ARRAY, sl_toml_here(p, start), start, depth, &a);
  if (rc < 0) return rc;
  a->flags = A_STATIC;
  p->pos++;
  for (;;) {
    if ((rc = sl_toml_skip_filler(p)) < 0) goto fail;
    if (peek_is(p, ']')) break;
    if (p->pos >= p->len) {
      int line, col;
      sl_toml_pos_of(p, start, &line, &col);
      rc = sl_toml_fail_at(p, p->pos, "unterminated array (opened at %d:%d)", line, col);
      goto fail;
    }
    node_t *v;
    if ((rc = parse_value(p, depth + 1, &v)) < 0) goto fail;
    if ((rc = arr_push(p, a, v)) < 0) goto fail;
    if ((rc = sl_toml_skip_filler(p)) < 0) goto fail;
    if (peek_is(p, ',')) {
      p->pos++;
      continue;
    }
    if (peek_is(p, ']')) break;
    if (p->pos >= p->len) {
      int line, col;
      sl_toml_pos_of(p, start, &line, &col);
      rc = sl_toml_fail_at(p, p->pos, "unterminated array (opened at %d:%d)", line, col);
    } else {
      rc = sl_toml_fail_at(p, p->pos, "expected ',' or ']' in array, found %s",
                           sl_toml_describe(p, p->pos, d, sizeof d));
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
  int rc = sl_toml_node_new(p, SL_TOML_TABLE, sl_toml_here(p, start), start, depth, &t);
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
          rc = sl_toml_fail_at(p, p->pos - 1, "trailing comma is not allowed in an inline table");
          goto fail;
        }
        continue;
      }
      if (peek_is(p, '}')) break;
      if (p->pos >= p->len || at_newline(p) || peek_is(p, '\r')) {
        int line, col;
        sl_toml_pos_of(p, start, &line, &col);
        rc = sl_toml_fail_at(p, p->pos,
                             "unterminated inline table (opened at %d:%d); an inline table must be "
                             "on one line",
                             line, col);
      } else {
        rc = sl_toml_fail_at(p, p->pos, "expected ',' or '}' in inline table, found %s",
                             sl_toml_describe(p, p->pos, d, sizeof d));
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

static int parse_value(parser_t *p, int depth, node_t **out) {
  *out = NULL;
  if (peek_is(p, '"') || peek_is(p, '\'')) {
    size_t start = p->pos;
    pos_t at = sl_toml_here(p, start);
    sbuf_t b = {0};
    node_t *v;
    int rc = sl_toml_parse_string(p, &b, true);
    if (rc == 0) rc = sl_toml_node_new(p, SL_TOML_STRING, at, start, depth, &v);
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
    if (depth > SL_TOML_MAX_DEPTH)
      return sl_toml_fail_at(p, p->pos, "nesting deeper than %d levels", SL_TOML_MAX_DEPTH);
    return parse_array(p, depth, out);
  }
  if (peek_is(p, '{')) {
    if (depth > SL_TOML_MAX_DEPTH)
      return sl_toml_fail_at(p, p->pos, "nesting deeper than %d levels", SL_TOML_MAX_DEPTH);
    return parse_inline_table(p, depth, out);
  }
  return sl_toml_parse_bare_value(p, depth, out);
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
  int rc = sl_toml_parse_key(p, &k);
  if (rc < 0) goto out;
  skip_ws(p);
  if (!peek_is(p, '=')) {
    rc = sl_toml_fail_at(p, p->pos, "expected '=' after key \"%s\", found %s",
                         sl_toml_key_display(&k, k.n, kd, sizeof kd),
                         sl_toml_describe(p, p->pos, d, sizeof d));
    goto out;
  }
  p->pos++;
  skip_ws(p);
  node_t *t = base;
  for (size_t i = 0; i + 1 < k.n; i++) {
    sl_toml_kv_t *kv = tab_find(t, k.v[i].s, k.v[i].len);
    if (!kv) {
      node_t *nt;
      if ((rc = sl_toml_node_new(p, SL_TOML_TABLE, k.v[i].at, k.v[i].off, t->depth + 1, &nt)) < 0)
        goto out;
      nt->flags = T_DOTTED;
      if ((rc = tab_add(p, t, &k.v[i], k.v[i].at, nt)) < 0) goto out;
      t = nt;
      continue;
    }
    node_t *n = (node_t *)kv->value;
    if (n->v.type != SL_TOML_TABLE || !(n->flags & T_DOTTED)) {
      rc = sl_toml_fail_at(
          p, k.v[i].off, "cannot add keys to \"%s\" with a dotted key: it is %s at %d:%d",
          sl_toml_key_display(&k, i + 1, kd, sizeof kd), origin(n), kv->line, kv->col);
      goto out;
    }
    t = n;
  }
  const seg_t *last = &k.v[k.n - 1];
  sl_toml_kv_t *kv = tab_find(t, last->s, last->len);
  if (kv) {
    rc = sl_toml_fail_at(p, last->off, "duplicate key \"%s\" (first defined at %d:%d)",
                         sl_toml_key_display(&k, k.n, kd, sizeof kd), kv->line, kv->col);
    goto out;
  }
  if (p->pos >= p->len || at_newline(p) || peek_is(p, '#')) {
    rc = sl_toml_fail_at(p, p->pos, "missing value for key \"%s\"",
                         sl_toml_key_display(&k, k.n, kd, sizeof kd));
    goto out;
  }
  node_t *v;
  if ((rc = parse_value(p, t->depth + 1, &v)) < 0) goto out;
  rc = tab_add(p, t, last, last->at, v);
out:
  sl_toml_keypath_clear(&k);
  return rc;
}

/* [a.b.c] or [[a.b.c]]: makes p->cur the table that following keys fill. */
static int parse_header(parser_t *p) {
  size_t start = p->pos;
  pos_t at = sl_toml_here(p, start);
  bool aot = p->pos + 1 < p->len && p->s[p->pos + 1] == '[';
  keypath_t k = {0};
  char kd[256], d[16];
  int rc;
  p->pos += aot ? 2 : 1;
  if ((rc = sl_toml_parse_key(p, &k)) < 0) goto out;
  skip_ws(p);
  if (!peek_is(p, ']') || (aot && (p->pos + 1 >= p->len || p->s[p->pos + 1] != ']'))) {
    rc = sl_toml_fail_at(p, p->pos, "expected '%s' to close the table header, found %s",
                         aot ? "]]" : "]", sl_toml_describe(p, p->pos, d, sizeof d));
    goto out;
  }
  p->pos += aot ? 2 : 1;
  if ((rc = sl_toml_expect_eol(p, "the table header")) < 0) goto out;

  node_t *t = p->root;
  for (size_t i = 0; i + 1 < k.n; i++) {
    sl_toml_kv_t *kv = tab_find(t, k.v[i].s, k.v[i].len);
    if (!kv) {
      node_t *nt;
      if ((rc = sl_toml_node_new(p, SL_TOML_TABLE, at, start, t->depth + 1, &nt)) < 0) goto out;
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
      rc = sl_toml_fail_at(p, k.v[i].off, "cannot define a table under \"%s\": it is %s at %d:%d",
                           sl_toml_key_display(&k, i + 1, kd, sizeof kd), origin(n), kv->line,
                           kv->col);
      goto out;
    }
  }
  const seg_t *last = &k.v[k.n - 1];
  sl_toml_kv_t *kv = tab_find(t, last->s, last->len);
  node_t *n = kv ? (node_t *)kv->value : NULL;
  sl_toml_key_display(&k, k.n, kd, sizeof kd);
  if (!aot) {
    if (!n) {
      if ((rc = sl_toml_node_new(p, SL_TOML_TABLE, at, start, t->depth + 1, &n)) < 0) goto out;
      n->flags = T_HEADER;
      if ((rc = tab_add(p, t, last, at, n)) < 0) goto out;
    } else if (n->v.type == SL_TOML_TABLE && n->flags == T_IMPLICIT) {
      n->flags = T_HEADER;
      kv->line = n->v.line = at.line;
      kv->col = n->v.col = at.col;
    } else if (n->v.type == SL_TOML_TABLE && n->flags == T_HEADER) {
      rc = sl_toml_fail_at(p, start, "table [%s] is defined twice (first at %d:%d)", kd, kv->line,
                           kv->col);
      goto out;
    } else {
      rc = sl_toml_fail_at(p, start, "cannot define table [%s]: \"%s\" is already %s at %d:%d", kd,
                           kd, origin(n), kv->line, kv->col);
      goto out;
    }
    p->cur = n;
  } else {
    if (!n) {
      if ((rc = sl_toml_node_new(p, SL_TOML_ARRAY, at, start, t->depth + 1, &n)) < 0) goto out;
      n->flags = A_TABLES;
      if ((rc = tab_add(p, t, last, at, n)) < 0) goto out;
    } else if (n->v.type != SL_TOML_ARRAY || !(n->flags & A_TABLES)) {
      rc = sl_toml_fail_at(p, start,
                           "cannot define array of tables [[%s]]: \"%s\" is already %s at %d:%d",
                           kd, kd, origin(n), kv->line, kv->col);
      goto out;
    }
    node_t *e;
    if ((rc = sl_toml_node_new(p, SL_TOML_TABLE, at, start, n->depth + 1, &e)) < 0) goto out;
    e->flags = T_HEADER;
    if ((rc = arr_push(p, n, e)) < 0) goto out;
    p->cur = e;
  }
out:
  sl_toml_keypath_clear(&k);
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
    rc = sl_toml_fail_at(&p, 0, "file larger than %d bytes", INT_MAX);
    goto fail;
  }
  if ((rc = sl_toml_check_utf8(&p)) < 0) goto fail;
  if ((rc = sl_toml_node_new(&p, SL_TOML_TABLE, sl_toml_here(&p, 0), 0, 0, &r)) < 0) goto fail;
  r->flags = T_HEADER;
  p.root = p.cur = r;
  if (p.len >= 3 && !memcmp(p.s, "\xef\xbb\xbf", 3)) p.pos = 3;
  for (;;) {
    skip_ws(&p);
    if (p.pos >= p.len) break;
    if (peek_is(&p, '#')) {
      if ((rc = sl_toml_skip_comment(&p)) < 0) goto fail;
    } else if (peek_is(&p, '\n') || peek_is(&p, '\r')) {
      if ((rc = sl_toml_skip_newline(&p)) < 0) goto fail;
    } else if (peek_is(&p, '[')) {
      if ((rc = parse_header(&p)) < 0) goto fail;
    } else {
      if ((rc = parse_keyval(&p, p.cur)) < 0) goto fail;
      if ((rc = sl_toml_expect_eol(&p, "the value")) < 0) goto fail;
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
