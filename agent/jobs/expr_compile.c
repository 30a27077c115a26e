/* The where language's compiler: a lexer and a recursive-descent parser
 * that build the node tree expr.c evaluates, compiling each regex (and
 * JIT-compiling it where PCRE2 can) on the way.  Pure; runs when a job is
 * configured.  Errors carry the byte column and a reason. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "jobs/expr_internal.h"

/* Ceilings on a single regex match: a catastrophic pattern costs a record at
 * most this much, then counts as no match (expr.h, rule 8). */
#define MATCH_LIMIT 1000000
#define HEAP_LIMIT_KIB 4096

static int grow(void **arr, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return 0;
  size_t ncap = *cap ? *cap * 2 : 8;
  void *p = realloc(*arr, ncap * size);
  if (!p) return SL_ENOMEM;
  *arr = p;
  *cap = ncap;
  return 0;
}

/* ---- lexer ------------------------------------------------------------ */

typedef enum {
  T_EOF,
  T_NUM,
  T_STR,
  T_NAME,
  T_LPAREN,
  T_RPAREN,
  T_LBRACK,
  T_RBRACK,
  T_COMMA,
  T_EQ,
  T_NE,
  T_LT,
  T_LE,
  T_GT,
  T_GE,
  T_MATCH,
  T_NMATCH,
  T_PLUS,
  T_MINUS,
  T_STAR,
  T_SLASH,
  T_PERCENT,
} tok_kind_t;

typedef struct {
  tok_kind_t kind;
  size_t start, len; /* bytes of text */
  val_t v;           /* T_NUM, T_STR (the string is owned by the expression) */
} tok_t;

typedef struct {
  const char *text;
  size_t pos; /* where the next token's scan starts */
  tok_t tok;  /* the current token */
  sl_expr_t *e;
  sl_expr_error_t *err;
  unsigned flags;
  int nesting;
} parser_t;

static int fail(parser_t *p, size_t at, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(parser_t *p, size_t at, int code, const char *fmt, ...) {
  if (p->err) {
    p->err->col = (int)at + 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

static int oom(parser_t *p) { return fail(p, p->tok.start, SL_ENOMEM, "out of memory"); }

/* Same alphabet as jobs/path.c's names. */
static bool name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int lex_number(parser_t *p, size_t i) {
  const char *s = p->text;
  size_t j = i;
  bool is_float = false;
  while (is_digit(s[j])) j++;
  if (s[j] == '.' && is_digit(s[j + 1])) {
    is_float = true;
    for (j++; is_digit(s[j]);) j++;
  }
  if (s[j] == 'e' || s[j] == 'E') {
    size_t k = j + 1;
    if (s[k] == '+' || s[k] == '-') k++;
    if (is_digit(s[k])) {
      is_float = true;
      for (j = k; is_digit(s[j]);) j++;
    }
  }
  if (name_char(s[j]) || s[j] == '.') {
    size_t k = j + 1;
    while (name_char(s[k]) || s[k] == '.') k++;
    return fail(p, i, SL_ESYNTAX, "invalid number \"%.*s\"", (int)(k - i > 40 ? 40 : k - i),
                s + i);
  }
  tok_t *t = &p->tok;
  t->kind = T_NUM;
  t->len = j - i;
  if (!is_float) {
    uint64_t v = 0;
    for (size_t k = i; k < j && !is_float; k++) {
      if (v > (UINT64_MAX - 9) / 10) is_float = true;
      v = v * 10 + (uint64_t)(s[k] - '0');
    }
    if (!is_float && v <= INT64_MAX) {
      t->v = v_int((int64_t)v);
      p->pos = j;
      return 0;
    }
  }
  /* strtod reads the C locale's '.', which the daemon never changes. */
  char buf[64];
  if (j - i >= sizeof buf) return fail(p, i, SL_ESYNTAX, "number too long");
  memcpy(buf, s + i, j - i);
  buf[j - i] = 0;
  t->v = v_dbl(strtod(buf, NULL));
  p->pos = j;
  return 0;
}

static int lex_string(parser_t *p, size_t i) {
  sl_expr_t *e = p->e;
  size_t used;
  char *s;
  uint32_t len;
  int col;
  const char *why;
  int r = sl_path_unquote(p->text + i, &used, &s, &len, &col, &why);
  if (r == SL_ENOMEM) return oom(p);
  if (r) return fail(p, i + (size_t)col - 1, r, "%s", why);
  if (grow((void **)&e->strs, &e->cap_strs, e->n_strs, sizeof *e->strs)) {
    free(s);
    return oom(p);
  }
  e->strs[e->n_strs++] = s;
  p->tok.kind = T_STR;
  p->tok.len = used;
  p->tok.v = (val_t){.t = V_STR, .len = len, .s = s};
  p->pos = i + used;
  return 0;
}

/* Reads the next token into p->tok. */
static int lex(parser_t *p) {
  const char *s = p->text;
  size_t i = p->pos;
  while (is_space(s[i])) i++;
  tok_t *t = &p->tok;
  memset(t, 0, sizeof *t);
  t->start = i;
  char c = s[i];
  if (c == 0) {
    t->kind = T_EOF;
    p->pos = i;
    return 0;
  }
  if (name_start(c)) {
    size_t j = i + 1;
    while (name_char(s[j])) j++;
    t->kind = T_NAME;
    t->len = j - i;
    p->pos = j;
    return 0;
  }
  if (is_digit(c)) return lex_number(p, i);
  if (c == '"') return lex_string(p, i);
  char d = s[i + 1];
  size_t len = 1;
  switch (c) {
  case '(': t->kind = T_LPAREN; break;
  case ')': t->kind = T_RPAREN; break;
  case '[': t->kind = T_LBRACK; break;
  case ']': t->kind = T_RBRACK; break;
  case ',': t->kind = T_COMMA; break;
  case '+': t->kind = T_PLUS; break;
  case '-': t->kind = T_MINUS; break;
  case '*': t->kind = T_STAR; break;
  case '/': t->kind = T_SLASH; break;
  case '%': t->kind = T_PERCENT; break;
  case '<':
    t->kind = d == '=' ? T_LE : T_LT;
    len = d == '=' ? 2 : 1;
    break;
  case '>':
    t->kind = d == '=' ? T_GE : T_GT;
    len = d == '=' ? 2 : 1;
    break;
  case '=':
    if (d != '=' && d != '~')
      return fail(p, i, SL_ESYNTAX, "unexpected \"=\" (compare with \"==\")");
    t->kind = d == '=' ? T_EQ : T_MATCH;
    len = 2;
    break;
  case '!':
    if (d != '=' && d != '~') return fail(p, i, SL_ESYNTAX, "unexpected \"!\" (negate with \"not\")");
    t->kind = d == '=' ? T_NE : T_NMATCH;
    len = 2;
    break;
  default:
    if ((c == '&' || c == '|') && d == c)
      return fail(p, i, SL_ESYNTAX, "unexpected \"%c%c\" (use \"%s\")", c, c,
                  c == '&' ? "and" : "or");
    if (c > 0x20 && c < 0x7f) return fail(p, i, SL_ESYNTAX, "unexpected character \"%c\"", c);
    return fail(p, i, SL_ESYNTAX, "unexpected byte 0x%02x", (unsigned)(unsigned char)c);
  }
  t->len = len;
  p->pos = i + len;
  return 0;
}

static bool tok_is(const parser_t *p, const char *word) {
  const tok_t *t = &p->tok;
  return t->kind == T_NAME && strlen(word) == t->len &&
         memcmp(p->text + t->start, word, t->len) == 0;
}

static bool is_reserved(const parser_t *p) {
  static const char *const words[] = {"and", "or", "not", "in", "true", "false", "null"};
  for (size_t i = 0; i < sizeof words / sizeof *words; i++)
    if (tok_is(p, words[i])) return true;
  return false;
}

static int unexpected(parser_t *p) {
  const tok_t *t = &p->tok;
  switch (t->kind) {
  case T_EOF: return fail(p, t->start, SL_ESYNTAX, "unexpected end of expression");
  case T_STR: return fail(p, t->start, SL_ESYNTAX, "unexpected string");
  default:
    return fail(p, t->start, SL_ESYNTAX, "unexpected \"%.*s\"", (int)(t->len > 40 ? 40 : t->len),
                p->text + t->start);
  }
}

/* ---- parser ----------------------------------------------------------- */

static uint16_t depth_of(const parser_t *p, uint32_t i) { return p->e->nodes[i].depth; }

/* Appends a node whose children are already set; `at` is where an error
 * about it points. */
static int add_node(parser_t *p, node_t n, size_t at, uint32_t *out) {
  sl_expr_t *e = p->e;
  if (n.depth > SL_EXPR_MAX_DEPTH)
    return fail(p, at, SL_ESYNTAX, "expression nested too deeply (more than %d levels)",
                SL_EXPR_MAX_DEPTH);
  if (grow((void **)&e->nodes, &e->cap_nodes, e->n_nodes, sizeof *e->nodes)) return oom(p);
  e->nodes[e->n_nodes] = n;
  *out = (uint32_t)e->n_nodes++;
  return 0;
}

static int unary_node(parser_t *p, int op, uint32_t a, size_t at, uint32_t *out) {
  node_t n = {.op = (uint8_t)op, .a = a, .depth = (uint16_t)(depth_of(p, a) + 1)};
  return add_node(p, n, at, out);
}

static int binary_node(parser_t *p, int op, uint32_t a, uint32_t b, size_t at, uint32_t *out) {
  uint16_t d = depth_of(p, a) > depth_of(p, b) ? depth_of(p, a) : depth_of(p, b);
  node_t n = {.op = (uint8_t)op, .a = a, .b = b, .depth = (uint16_t)(d + 1)};
  return add_node(p, n, at, out);
}

static int enter(parser_t *p) {
  if (++p->nesting > SL_EXPR_MAX_DEPTH)
    return fail(p, p->tok.start, SL_ESYNTAX, "expression nested too deeply (more than %d levels)",
                SL_EXPR_MAX_DEPTH);
  return 0;
}

static int parse_or(parser_t *p, uint32_t *out);

/* A path starting at the current token (a name or '['). */
static int parse_path(parser_t *p, int op, uint32_t *out) {
  size_t at = p->tok.start, used;
  int col;
  const char *why;
  node_t n = {.op = (uint8_t)op, .depth = 1};
  int r = sl_path_scan(p->text + at, &used, &n.path, &col, &why);
  if (r == SL_ENOMEM) return oom(p);
  if (r) return fail(p, at + (size_t)col - 1, r, "%s", why);
  if ((r = add_node(p, n, at, out))) {
    sl_path_free(&n.path);
    return r;
  }
  p->pos = at + used;
  return lex(p);
}

/* A name followed by '(' at the current token. */
static int parse_call(parser_t *p, uint32_t *out) {
  size_t at = p->tok.start;
  if (!tok_is(p, "exists"))
    return fail(p, at, SL_ESYNTAX, "unknown function \"%.*s\"",
                (int)(p->tok.len > 40 ? 40 : p->tok.len), p->text + at);
  int r;
  if ((r = lex(p)) || (r = lex(p))) return r; /* the name, then '(' */
  if (!(p->tok.kind == T_LBRACK || (p->tok.kind == T_NAME && !is_reserved(p))))
    return fail(p, p->tok.start, SL_ESYNTAX, "exists() takes a field path");
  if ((r = parse_path(p, OP_EXISTS, out))) return r;
  if (p->tok.kind != T_RPAREN)
    return fail(p, p->tok.start, SL_ESYNTAX, "expected \")\" after the path in exists()");
  return lex(p);
}

static int parse_primary(parser_t *p, uint32_t *out) {
  tok_t *t = &p->tok;
  size_t at = t->start;
  int r;
  switch (t->kind) {
  case T_NUM:
  case T_STR: {
    node_t n = {.op = OP_LIT, .depth = 1, .lit = t->v};
    if ((r = add_node(p, n, at, out))) return r;
    return lex(p);
  }
  case T_LPAREN:
    if ((r = enter(p)) || (r = lex(p)) || (r = parse_or(p, out))) return r;
    if (p->tok.kind != T_RPAREN)
      return fail(p, p->tok.start, SL_ESYNTAX, "expected \")\" to close the \"(\" at column %zu",
                  at + 1);
    p->nesting--;
    return lex(p);
  case T_LBRACK: return parse_path(p, OP_PATH, out);
  case T_NAME: {
    node_t n = {.op = OP_LIT, .depth = 1};
    if (tok_is(p, "true") || tok_is(p, "false")) {
      n.lit = v_bool(tok_is(p, "true"));
    } else if (tok_is(p, "null")) {
      n.lit.t = V_NULL;
    } else if (is_reserved(p)) {
      return unexpected(p);
    } else {
      size_t j = at + t->len;
      while (is_space(p->text[j])) j++;
      if (p->text[j] == '(') return parse_call(p, out);
      return parse_path(p, OP_PATH, out);
    }
    if ((r = add_node(p, n, at, out))) return r;
    return lex(p);
  }
  default: return unexpected(p);
  }
}

static int parse_unary(parser_t *p, uint32_t *out) {
  if (p->tok.kind != T_MINUS) return parse_primary(p, out);
  size_t at = p->tok.start;
  uint32_t a;
  int r;
  if ((r = enter(p)) || (r = lex(p)) || (r = parse_unary(p, &a))) return r;
  p->nesting--;
  node_t *n = &p->e->nodes[a];
  /* Fold a negative literal, so `-1` in a list or a comparison is a
   * constant. */
  if (n->op == OP_LIT && n->lit.t == V_INT && n->lit.i != INT64_MIN) {
    n->lit.i = -n->lit.i;
    *out = a;
    return 0;
  }
  if (n->op == OP_LIT && n->lit.t == V_DBL) {
    n->lit.d = -n->lit.d;
    *out = a;
    return 0;
  }
  return unary_node(p, OP_NEG, a, at, out);
}

static int parse_mul(parser_t *p, uint32_t *out) {
  int r = parse_unary(p, out);
  while (!r) {
    tok_kind_t k = p->tok.kind;
    int op = k == T_STAR ? OP_MUL : k == T_SLASH ? OP_DIV : k == T_PERCENT ? OP_MOD : -1;
    if (op < 0) break;
    size_t at = p->tok.start;
    uint32_t b;
    if ((r = lex(p)) || (r = parse_unary(p, &b))) break;
    r = binary_node(p, op, *out, b, at, out);
  }
  return r;
}

static int parse_add(parser_t *p, uint32_t *out) {
  int r = parse_mul(p, out);
  while (!r) {
    tok_kind_t k = p->tok.kind;
    int op = k == T_PLUS ? OP_ADD : k == T_MINUS ? OP_SUB : -1;
    if (op < 0) break;
    size_t at = p->tok.start;
    uint32_t b;
    if ((r = lex(p)) || (r = parse_mul(p, &b))) break;
    r = binary_node(p, op, *out, b, at, out);
  }
  return r;
}

/* Whether the text after the current token starts with the word `in`. */
static bool followed_by_in(const parser_t *p) {
  const char *s = p->text + p->tok.start + p->tok.len;
  while (is_space(*s)) s++;
  return s[0] == 'i' && s[1] == 'n' && !name_char(s[2]);
}

/* The comparison operator at the current token: its mask for OP_CMP, or
 * OP_* codes for the others (as negative numbers), or 0. */
enum { CMP_MATCH = -1, CMP_NMATCH = -2, CMP_IN = -3, CMP_NOTIN = -4 };

static int cmp_operator(const parser_t *p) {
  switch (p->tok.kind) {
  case T_EQ: return R_EQUAL;
  case T_NE: return R_LT | R_GT | R_NE;
  case T_LT: return R_LT;
  case T_LE: return R_LT | R_EQ;
  case T_GT: return R_GT;
  case T_GE: return R_GT | R_EQ;
  case T_MATCH: return CMP_MATCH;
  case T_NMATCH: return CMP_NMATCH;
  case T_NAME:
    if (tok_is(p, "in")) return CMP_IN;
    if (tok_is(p, "not") && followed_by_in(p)) return CMP_NOTIN;
    return 0;
  default: return 0;
  }
}

static int parse_regex(parser_t *p, int op, uint32_t a, uint32_t *out) {
  sl_expr_t *e = p->e;
  const char *name = op == OP_MATCH ? "=~" : "!~";
  int r = lex(p);
  if (r) return r;
  if (p->tok.kind != T_STR)
    return fail(p, p->tok.start, SL_ESYNTAX, "expected a string after %s", name);
  size_t at = p->tok.start;
  if (grow((void **)&e->rx, &e->cap_rx, e->n_rx, sizeof *e->rx)) return oom(p);
  if (!e->mctx) {
    if (!(e->mctx = pcre2_match_context_create(NULL))) return oom(p);
    pcre2_set_match_limit(e->mctx, MATCH_LIMIT);
    pcre2_set_heap_limit(e->mctx, HEAP_LIMIT_KIB);
  }
  uint32_t options = 0;
#ifdef PCRE2_MATCH_INVALID_UTF
  options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
#endif
  int code;
  PCRE2_SIZE offset;
  rx_t rx = {0};
  rx.code = pcre2_compile((PCRE2_SPTR)p->tok.v.s, p->tok.v.len, options, &code, &offset, NULL);
  if (!rx.code) {
    PCRE2_UCHAR msg[160];
    if (pcre2_get_error_message(code, msg, sizeof msg) < 0) strcpy((char *)msg, "unknown error");
    return fail(p, at, SL_ESYNTAX, "invalid regex: %s (at offset %zu of the pattern)",
                (const char *)msg, (size_t)offset);
  }
  if (!(p->flags & SL_EXPR_NO_JIT)) rx.jit = pcre2_jit_compile(rx.code, PCRE2_JIT_COMPLETE) == 0;
  if (!(rx.md = pcre2_match_data_create(1, NULL))) {
    pcre2_code_free(rx.code);
    return oom(p);
  }
  /* The interpreter keeps its backtracking memory in the match data: one
   * match now, so the first record does not pay for it. */
  pcre2_match(rx.code, (PCRE2_SPTR) "", 0, 0, 0, rx.md, e->mctx);
  e->rx[e->n_rx] = rx;
  node_t n = {.op = (uint8_t)op, .a = a, .b = (uint32_t)e->n_rx++};
  n.depth = (uint16_t)(depth_of(p, a) + 1);
  if ((r = add_node(p, n, at, out))) return r;
  return lex(p);
}

static int parse_list(parser_t *p, int op, uint32_t a, size_t at, uint32_t *out) {
  sl_expr_t *e = p->e;
  int r = lex(p); /* past in */
  if (r) return r;
  if (p->tok.kind != T_LBRACK)
    return fail(p, p->tok.start, SL_ESYNTAX, "expected \"[\" after \"in\"");
  if ((r = lex(p))) return r;
  size_t first = e->n_lits;
  while (p->tok.kind != T_RBRACK) {
    val_t v;
    size_t vat = p->tok.start;
    bool neg = p->tok.kind == T_MINUS;
    if (neg && (r = lex(p))) return r;
    if (p->tok.kind == T_NUM) {
      v = p->tok.v;
      if (neg) v = v.t == V_INT && v.i != INT64_MIN ? v_int(-v.i) : v_dbl(-(v.t == V_INT ? (double)v.i : v.d));
    } else if (!neg && p->tok.kind == T_STR) {
      v = p->tok.v;
    } else if (!neg && (tok_is(p, "true") || tok_is(p, "false"))) {
      v = v_bool(tok_is(p, "true"));
    } else if (!neg && tok_is(p, "null")) {
      v = (val_t){.t = V_NULL};
    } else {
      return fail(p, vat, SL_ESYNTAX,
                  "\"in\" lists hold only literals (numbers, strings, true, false, null)");
    }
    if (grow((void **)&e->lits, &e->cap_lits, e->n_lits, sizeof *e->lits)) return oom(p);
    e->lits[e->n_lits++] = v;
    if ((r = lex(p))) return r;
    if (p->tok.kind == T_COMMA) {
      if ((r = lex(p))) return r;
      if (p->tok.kind == T_RBRACK) return unexpected(p);
    } else if (p->tok.kind != T_RBRACK) {
      return fail(p, p->tok.start, SL_ESYNTAX, "expected \",\" or \"]\" in the list");
    }
  }
  node_t n = {.op = (uint8_t)op, .a = a, .b = (uint32_t)first, .n = (uint32_t)(e->n_lits - first)};
  n.depth = (uint16_t)(depth_of(p, a) + 1);
  if ((r = add_node(p, n, at, out))) return r;
  return lex(p);
}

static int parse_cmp(parser_t *p, uint32_t *out) {
  uint32_t a;
  int r = parse_add(p, &a);
  if (r) return r;
  int c = cmp_operator(p);
  size_t at = p->tok.start;
  switch (c) {
  case 0: *out = a; return 0;
  case CMP_MATCH: r = parse_regex(p, OP_MATCH, a, out); break;
  case CMP_NMATCH: r = parse_regex(p, OP_NMATCH, a, out); break;
  case CMP_IN: r = parse_list(p, OP_IN, a, at, out); break;
  case CMP_NOTIN:
    if (!(r = lex(p))) r = parse_list(p, OP_NOTIN, a, at, out); /* past not */
    break;
  default: {
    uint32_t b;
    if ((r = lex(p)) || (r = parse_add(p, &b))) return r;
    if ((r = binary_node(p, OP_CMP, a, b, at, out))) return r;
    p->e->nodes[*out].mask = (uint8_t)c;
  }
  }
  if (r) return r;
  if (cmp_operator(p))
    return fail(p, p->tok.start, SL_ESYNTAX, "comparisons do not chain (join them with \"and\")");
  return 0;
}

static int parse_not(parser_t *p, uint32_t *out) {
  if (!tok_is(p, "not")) return parse_cmp(p, out);
  size_t at = p->tok.start;
  uint32_t a;
  int r;
  if ((r = enter(p)) || (r = lex(p)) || (r = parse_not(p, &a))) return r;
  p->nesting--;
  return unary_node(p, OP_NOT, a, at, out);
}

/* `sub` { word sub } as one flat AND/OR node. */
static int parse_chain(parser_t *p, const char *word, int op, int (*sub)(parser_t *, uint32_t *),
                       uint32_t *out) {
  sl_expr_t *e = p->e;
  int r = sub(p, out);
  if (r || !tok_is(p, word)) return r;
  size_t at = p->tok.start;
  /* Terms may hold chains of their own, which claim kids while this one is
   * parsed, so the terms gather here and are copied out at the end. */
  uint32_t *terms = NULL;
  size_t n = 0, cap = 0;
  uint16_t depth = 0;
  for (r = 0; !r;) {
    if (grow((void **)&terms, &cap, n, sizeof *terms)) {
      r = oom(p);
      break;
    }
    terms[n++] = *out;
    if (depth_of(p, *out) > depth) depth = depth_of(p, *out);
    if (!tok_is(p, word)) break;
    if ((r = lex(p))) break;
    r = sub(p, out);
  }
  if (!r) {
    size_t first = e->n_kids;
    for (size_t i = 0; i < n && !r; i++) {
      if (grow((void **)&e->kids, &e->cap_kids, e->n_kids, sizeof *e->kids))
        r = oom(p);
      else
        e->kids[e->n_kids++] = terms[i];
    }
    node_t node = {.op = (uint8_t)op, .a = (uint32_t)first, .n = (uint32_t)n};
    node.depth = (uint16_t)(depth + 1);
    if (!r) r = add_node(p, node, at, out);
  }
  free(terms);
  return r;
}

static int parse_and(parser_t *p, uint32_t *out) { return parse_chain(p, "and", OP_AND, parse_not, out); }

static int parse_or(parser_t *p, uint32_t *out) { return parse_chain(p, "or", OP_OR, parse_and, out); }

int sl_expr_compile_with(const char *text, unsigned flags, sl_expr_t **out, sl_expr_error_t *err) {
  *out = NULL;
  if (err) {
    err->col = 0;
    err->msg[0] = 0;
  }
  parser_t p = {.text = text, .err = err, .flags = flags};
  if (!(p.e = calloc(1, sizeof *p.e))) return fail(&p, 0, SL_ENOMEM, "out of memory");
  int r = lex(&p);
  if (!r && p.tok.kind == T_EOF) r = fail(&p, p.tok.start, SL_ESYNTAX, "empty expression");
  if (!r) r = parse_or(&p, &p.e->root);
  if (!r && p.tok.kind != T_EOF) r = unexpected(&p);
  if (r) {
    sl_expr_free(p.e);
    return r;
  }
  *out = p.e;
  return 0;
}

int sl_expr_compile(const char *text, sl_expr_t **out, sl_expr_error_t *err) {
  return sl_expr_compile_with(text, 0, out, err);
}
