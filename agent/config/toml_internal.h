/* What the TOML parser's files share: the node every value is allocated as,
 * the parser state, and the lexing, error and scalar helpers that toml.c
 * (document building), toml_scan.c (lexing) and toml_scalar.c (bare
 * scalars) call across.  Private to those three files; pure, no threads. */
#ifndef SL_TOML_INTERNAL_H
#define SL_TOML_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "config/toml.h"

/* Arrays and inline tables recurse, and sl_toml_free recurses over every kind
 * of nesting, so the depth of the tree is capped rather than the stack left
 * to chance. */
#define SL_TOML_MAX_DEPTH 128

/* Every value the parser allocates is a node; the public value comes first so
 * that a node pointer is a value pointer and free() works on either. */
typedef struct {
  sl_toml_value_t v;
  unsigned flags; /* how it came to exist (toml.c) */
  int depth;
  size_t cap;
  /* Tables past HASH_MIN keys (toml.c) also get an open-addressing index
   * (item index + 1, 0 = empty) so that big files do not parse in quadratic
   * time. */
  size_t *hidx, hcap;
} node_t;

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

/* ---- character tests, inline for the lexer's inner loops ---- */

static inline bool peek_is(const parser_t *p, char c) {
  return p->pos < p->len && p->s[p->pos] == c;
}

static inline bool at_newline(const parser_t *p) {
  return peek_is(p, '\n') || (peek_is(p, '\r') && p->pos + 1 < p->len && p->s[p->pos + 1] == '\n');
}

static inline void skip_ws(parser_t *p) {
  while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t')) p->pos++;
}

static inline bool is_bare(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

static inline int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* ---- positions and errors (toml_scan.c) ---- */

/* 1-based line and byte column of offset off. */
void sl_toml_pos_of(parser_t *p, size_t off, int *line, int *col);
pos_t sl_toml_here(parser_t *p, size_t off);
/* Record SL_ESYNTAX with "<file>:<line>:<col>: <message>" (or SL_ENOMEM)
 * and return it; only the first failure is kept, later calls return it. */
__attribute__((format(printf, 3, 4))) int sl_toml_fail_at(parser_t *p, size_t off, const char *fmt,
                                                          ...);
int sl_toml_fail_nomem(parser_t *p);
/* Names the character at off ('x', "end of line", U+0001); returns buf or a
 * literal. */
const char *sl_toml_describe(const parser_t *p, size_t off, char *buf, size_t n);
/* The first nseg parts of k as a user would write them: a.b."c d". */
const char *sl_toml_key_display(const keypath_t *k, size_t nseg, char *buf, size_t n);

/* ---- lexing (toml_scan.c); all return 0 or a recorded error ---- */

int sl_toml_check_utf8(parser_t *p);
int sl_toml_skip_comment(parser_t *p);
int sl_toml_skip_newline(parser_t *p);
int sl_toml_skip_filler(parser_t *p);
int sl_toml_expect_eol(parser_t *p, const char *after);
/* Any of the four string forms at p->pos into b (b->p owned by the caller,
 * also on failure); keys pass allow_multi=false. */
int sl_toml_parse_string(parser_t *p, sbuf_t *b, bool allow_multi);
/* A dotted key at p->pos appended to k; free k with sl_toml_keypath_clear,
 * also on failure. */
int sl_toml_parse_key(parser_t *p, keypath_t *k);
void sl_toml_keypath_clear(keypath_t *k);

/* ---- nodes (toml.c) ---- */

/* A zeroed node of the given type at `at`; fails past SL_TOML_MAX_DEPTH
 * (reported at off).  *out is owned by the caller. */
int sl_toml_node_new(parser_t *p, sl_toml_type_t type, pos_t at, size_t off, int depth,
                     node_t **out);

/* ---- bare scalars (toml_scalar.c) ---- */

/* A boolean, number or date/time at p->pos; *out is owned by the caller. */
int sl_toml_parse_bare_value(parser_t *p, int depth, node_t **out);

#endif
