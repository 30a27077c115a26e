/* The where language's evaluation: what a record's fields are worth as
 * values, how values compare and add up, and the walk over the compiled tree
 * (expr_compile.c builds it).  Pure; runs on the jobs thread, one thread at
 * a time per expression.
 *
 * Why a tree and not bytecode: a filter is a handful of nodes, and walking
 * them costs less than looking the fields up in the record, so the tree is
 * kept simple and the work goes into not allocating.  Values live on the C
 * stack and point into the record or into the compiled expression; regex
 * match data is made once per regex at compile time; and/or chains are flat
 * so long ones do not nest. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/expr_internal.h"

/* ---- values ----------------------------------------------------------- */

static const val_t MISSING = {.t = V_MISSING};

static val_t from_object(const msgpack_object *o) {
  if (!o) return MISSING;
  switch (o->type) {
  case MSGPACK_OBJECT_NIL: return (val_t){.t = V_NULL};
  case MSGPACK_OBJECT_BOOLEAN: return v_bool(o->via.boolean);
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    return o->via.u64 <= INT64_MAX ? v_int((int64_t)o->via.u64) : v_dbl((double)o->via.u64);
  case MSGPACK_OBJECT_NEGATIVE_INTEGER: return v_int(o->via.i64);
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64: return v_dbl(o->via.f64);
  case MSGPACK_OBJECT_STR:
    /* An empty string may come with a NULL pointer; PCRE2 wants a real one. */
    return (val_t){.t = V_STR, .len = o->via.str.size, .s = o->via.str.ptr ? o->via.str.ptr : ""};
  case MSGPACK_OBJECT_BIN:
    return (val_t){.t = V_STR, .len = o->via.bin.size, .s = o->via.bin.ptr ? o->via.bin.ptr : ""};
  default: return (val_t){.t = V_OTHER};
  }
}

static bool truthy(val_t v) {
  return !(v.t == V_MISSING || v.t == V_NULL || (v.t == V_BOOL && !v.b));
}

static bool is_num(val_t v) { return v.t == V_INT || v.t == V_DBL; }

static int cmp_i_d(int64_t i, double d) {
  if (isnan(d)) return R_NE;
  /* Doubles at or beyond +-2^63 lie outside int64; inside, compare the
   * integral part as int64 (exact) and let the fraction break the tie. */
  if (d >= 9223372036854775808.0) return R_LT;
  if (d < -9223372036854775808.0) return R_GT;
  int64_t di = (int64_t)d;
  if (i != di) return i < di ? R_LT : R_GT;
  double t = (double)di;
  return d > t ? R_LT : d < t ? R_GT : R_EQ;
}

static int flip(int r) { return r == R_LT ? R_GT : r == R_GT ? R_LT : r; }

static int cmp_vals(val_t a, val_t b) {
  if (a.t == V_MISSING || b.t == V_MISSING) return 0;
  if (a.t == V_NULL || b.t == V_NULL) return a.t == b.t ? R_UEQ : R_NE;
  if (a.t == V_INT && b.t == V_INT) return a.i < b.i ? R_LT : a.i > b.i ? R_GT : R_EQ;
  if (a.t == V_DBL && b.t == V_DBL) {
    if (a.d < b.d) return R_LT;
    if (a.d > b.d) return R_GT;
    return a.d == b.d ? R_EQ : R_NE; /* NaN */
  }
  if (a.t == V_INT && b.t == V_DBL) return cmp_i_d(a.i, b.d);
  if (a.t == V_DBL && b.t == V_INT) return flip(cmp_i_d(b.i, a.d));
  if (a.t != b.t) return 0;
  if (a.t == V_BOOL) return a.b == b.b ? R_UEQ : R_NE;
  if (a.t == V_STR) {
    uint32_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.s, b.s, n) : 0;
    if (c == 0) c = a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
    return c < 0 ? R_LT : c > 0 ? R_GT : R_EQ;
  }
  return 0; /* maps, arrays, exts */
}

void sl_expr_free(sl_expr_t *e) {
  if (!e) return;
  for (size_t i = 0; i < e->n_nodes; i++)
    if (e->nodes[i].op == OP_PATH || e->nodes[i].op == OP_EXISTS) sl_path_free(&e->nodes[i].path);
  for (size_t i = 0; i < e->n_rx; i++) {
    pcre2_match_data_free(e->rx[i].md);
    pcre2_code_free(e->rx[i].code);
  }
  for (size_t i = 0; i < e->n_strs; i++) free(e->strs[i]);
  pcre2_match_context_free(e->mctx);
  free(e->nodes);
  free(e->kids);
  free(e->lits);
  free(e->rx);
  free(e->strs);
  free(e);
}

size_t sl_expr_regex_count(const sl_expr_t *e) { return e->n_rx; }

size_t sl_expr_jit_count(const sl_expr_t *e) {
  size_t n = 0;
  for (size_t i = 0; i < e->n_rx; i++) n += e->rx[i].jit;
  return n;
}

/* ---- evaluation ------------------------------------------------------- */

static val_t arith(int op, val_t a, val_t b) {
  if (!is_num(a) || !is_num(b)) return MISSING;
  if (a.t == V_INT && b.t == V_INT) {
    int64_t r;
    switch (op) {
    case OP_ADD:
      if (!__builtin_add_overflow(a.i, b.i, &r)) return v_int(r);
      break;
    case OP_SUB:
      if (!__builtin_sub_overflow(a.i, b.i, &r)) return v_int(r);
      break;
    case OP_MUL:
      if (!__builtin_mul_overflow(a.i, b.i, &r)) return v_int(r);
      break;
    case OP_DIV:
      if (b.i == 0) return MISSING;
      if (b.i == -1) {
        if (a.i == INT64_MIN) break;
        return v_int(-a.i);
      }
      if (a.i % b.i == 0) return v_int(a.i / b.i);
      break;
    case OP_MOD:
      if (b.i == 0) return MISSING;
      return v_int(b.i == -1 ? 0 : a.i % b.i);
    }
    /* Overflow or an inexact quotient: fall through to doubles. */
  }
  double x = a.t == V_INT ? (double)a.i : a.d;
  double y = b.t == V_INT ? (double)b.i : b.d;
  switch (op) {
  case OP_ADD: return v_dbl(x + y);
  case OP_SUB: return v_dbl(x - y);
  case OP_MUL: return v_dbl(x * y);
  case OP_DIV: return y == 0 ? MISSING : v_dbl(x / y);
  default: return y == 0 ? MISSING : v_dbl(fmod(x, y));
  }
}

static val_t eval(const sl_expr_t *e, uint32_t i, const msgpack_object *rec) {
  const node_t *n = &e->nodes[i];
  switch ((op_t)n->op) {
  case OP_LIT: return n->lit;
  case OP_PATH: return from_object(sl_path_lookup(&n->path, rec));
  case OP_EXISTS: return v_bool(sl_path_lookup(&n->path, rec) != NULL);
  case OP_NOT: return v_bool(!truthy(eval(e, n->a, rec)));
  case OP_AND:
    for (uint32_t k = 0; k < n->n; k++)
      if (!truthy(eval(e, e->kids[n->a + k], rec))) return v_bool(false);
    return v_bool(true);
  case OP_OR:
    for (uint32_t k = 0; k < n->n; k++)
      if (truthy(eval(e, e->kids[n->a + k], rec))) return v_bool(true);
    return v_bool(false);
  case OP_CMP: {
    val_t l = eval(e, n->a, rec);
    if (l.t == V_MISSING) return v_bool(false);
    return v_bool((cmp_vals(l, eval(e, n->b, rec)) & n->mask) != 0);
  }
  case OP_MATCH:
  case OP_NMATCH: {
    val_t l = eval(e, n->a, rec);
    if (l.t != V_STR) return v_bool(false);
    const rx_t *rx = &e->rx[n->b];
    int rc = pcre2_match(rx->code, (PCRE2_SPTR)l.s, l.len, 0, 0, rx->md, e->mctx);
    if (rc >= 0) return v_bool(n->op == OP_MATCH);
    return v_bool(rc == PCRE2_ERROR_NOMATCH && n->op == OP_NMATCH);
  }
  case OP_IN:
  case OP_NOTIN: {
    val_t l = eval(e, n->a, rec);
    if (l.t == V_MISSING) return v_bool(false);
    bool found = false;
    for (uint32_t k = 0; k < n->n && !found; k++)
      found = (cmp_vals(l, e->lits[n->b + k]) & R_EQUAL) != 0;
    return v_bool(found == (n->op == OP_IN));
  }
  case OP_NEG: {
    val_t v = eval(e, n->a, rec);
    if (v.t == V_DBL) return v_dbl(-v.d);
    if (v.t != V_INT) return MISSING;
    return v.i == INT64_MIN ? v_dbl(-(double)v.i) : v_int(-v.i);
  }
  case OP_ADD:
  case OP_SUB:
  case OP_MUL:
  case OP_DIV:
  case OP_MOD: {
    val_t l = eval(e, n->a, rec);
    if (!is_num(l)) return MISSING;
    return arith(n->op, l, eval(e, n->b, rec));
  }
  }
  return MISSING;
}

bool sl_expr_match(const sl_expr_t *e, const msgpack_object *record) {
  return truthy(eval(e, e->root, record));
}
