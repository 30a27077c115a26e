/* What the where language's two files share: the value a subexpression
 * evaluates to, the node tree and the compiled expression.  expr_compile.c
 * builds it, expr.c evaluates and frees it.  Private to those files; pure. */
#ifndef SL_EXPR_INTERNAL_H
#define SL_EXPR_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs/expr.h"
#include "jobs/path.h"

typedef enum { V_MISSING, V_NULL, V_BOOL, V_INT, V_DBL, V_STR, V_OTHER } vtype_t;

typedef struct {
  uint8_t t; /* vtype_t */
  bool b;
  uint32_t len; /* V_STR */
  union {
    int64_t i;
    double d;
    const char *s; /* V_STR; not NUL-terminated */
  };
} val_t;

static inline val_t v_bool(bool b) { return (val_t){.t = V_BOOL, .b = b}; }

static inline val_t v_dbl(double d) { return (val_t){.t = V_DBL, .d = d}; }

static inline val_t v_int(int64_t i) { return (val_t){.t = V_INT, .i = i}; }

/* Comparison outcomes, as bits so each operator is a mask (rules 2-6):
 * EQ and LT/GT for ordered types; UEQ equal but unordered (null, bools); NE
 * different but unordered (bools, null against a value, NaN).  0: not
 * comparable, every operator false. */
enum { R_LT = 1, R_EQ = 2, R_GT = 4, R_UEQ = 8, R_NE = 16 };
#define R_EQUAL (R_EQ | R_UEQ)

typedef enum {
  OP_LIT,
  OP_PATH,
  OP_EXISTS,
  OP_NOT,
  OP_AND,
  OP_OR,
  OP_CMP,
  OP_MATCH,
  OP_NMATCH,
  OP_IN,
  OP_NOTIN,
  OP_ADD,
  OP_SUB,
  OP_MUL,
  OP_DIV,
  OP_MOD,
  OP_NEG,
} op_t;

/* Children are indexes into sl_expr.nodes.  AND/OR: kids[a .. a+n).
 * IN/NOTIN: operand a, literals lits[b .. b+n).  MATCH/NMATCH: operand a,
 * regex b.  CMP: a, b and the mask of outcomes that make it true. */
typedef struct {
  uint8_t op;
  uint8_t mask;
  uint16_t depth;
  uint32_t a, b, n;
  union {
    val_t lit;
    sl_path_t path;
  };
} node_t;

typedef struct {
  pcre2_code *code;
  pcre2_match_data *md; /* the per-expression scratch state (expr.h) */
  bool jit;
} rx_t;

struct sl_expr {
  node_t *nodes;
  uint32_t *kids;
  val_t *lits;
  rx_t *rx;
  char **strs; /* string literals; V_STR values point into them */
  size_t n_nodes, n_kids, n_lits, n_rx, n_strs;
  size_t cap_nodes, cap_kids, cap_lits, cap_rx, cap_strs;
  pcre2_match_context *mctx;
  uint32_t root;
};

#endif
