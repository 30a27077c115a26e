/* The `where` filter language of jobs: compiled once when a job is
 * configured, then evaluated against every record on the jobs thread.  Pure.
 *
 * Syntax, from the loosest binding to the tightest:
 *   a or b                  (any number of terms; stops at the first truthy)
 *   a and b                 (any number of terms; stops at the first falsy)
 *   not a
 *   a == b   a != b   a < b   a <= b   a > b   a >= b
 *   a =~ "regex"   a !~ "regex"      (the right side must be a string literal)
 *   a in [lit, ...]   a not in [lit, ...]   (literals only; [] is allowed)
 *                                    (comparisons do not chain: a < b < c is
 *                                     an error; write a < b and b < c)
 *   a + b   a - b                    (left-associative)
 *   a * b   a / b   a % b            (left-associative)
 *   -a
 *   ( a )   literals   field paths   exists(path)
 * Literals: integers (`500`; beyond int64 they become floats), floats
 * (`1.5`, `2e3`, `1.5e-3`), negative numbers through unary minus (`-1`),
 * double-quoted strings (escapes as in jobs/path.h: \" \\ \n \r \t, any other
 * backslash pair kept, so "^/v\d+/" is the regex ^/v\d+/), true, false,
 * null.  A field path (jobs/path.h: `status`, `req.headers["x-id"][2]`,
 * `["@timestamp"]`) starts with a name or '['.  The words and, or, not, in,
 * true, false and null are reserved: a field with such a name is written
 * `["null"]`.  A name followed by '(' is a function call; the only function
 * is exists(path).  Whitespace (space, tab, CR, LF) separates tokens; a path
 * holds none.
 *
 * Values: missing, null, bool, number, string, or other (a map, array or
 * ext: present, truthy, equal to nothing).  Integers in records and
 * literals are int64 when they fit exactly, else double (a uint64 above
 * INT64_MAX becomes the nearest double); msgpack STR and BIN are both
 * strings.
 *
 * Rules (each is tested in test/unit/test_jobs_expr.c):
 *  1. A path that does not resolve (jobs/path.h, Lookup) is missing.
 *  2. Every comparison (==, !=, <, <=, >, >=, =~, !~, in, not in) with a
 *     missing operand is false.  So `x != 1` is false when x is missing,
 *     and `not (x == 1)` is true.
 *  3. Comparisons between different types are false, != included:
 *     `"500" == 500` and `"500" != 500` are both false; bools are not
 *     numbers.  The exception is null (rule 4).
 *  4. `v == null` is true only when v is present and null; `v != null` is
 *     true when v is present and not null.  null == null; null is not
 *     ordered (null <= null is false).
 *  5. Numbers compare by value, exactly, whatever mix of int64 and double:
 *     1 == 1.0, and 9007199254740993 > 9007199254740992.0.  NaN equals
 *     nothing: every comparison with NaN is false except != (true).
 *  6. Strings compare bytewise (memcmp order, a prefix sorts first).  Bools
 *     support == and != only (ordering them is false).  Others (maps,
 *     arrays) support nothing but the null rule.
 *  7. `a in [l1, l2, ...]` is true when a == li for some li (rules 2-6).
 *     `a not in [...]` is true when a is present and a == li for no li, so,
 *     unlike !=, `"x" not in [1, 2]` is true.
 *  8. `a =~ "re"` is true when a is a string and the regex matches
 *     somewhere in it (anchor with ^ and $); `a !~ "re"` when a is a string
 *     and it does not.  A non-string a makes both false, as does a match
 *     that hits PCRE2's limits (catastrophic backtracking).
 *  9. exists(path) is true when the path resolves, even to null.
 * 10. Arithmetic (+ - * / % and unary -) needs numbers; any other operand
 *     (missing, null, bool, string, other) yields missing.  int64 results
 *     stay int64; on overflow they become double.  / gives an int64 when
 *     the division is exact (6 / 2 == 3) and a double otherwise
 *     (7 / 2 == 3.5).  % on int64 keeps the dividend's sign (-7 % 3 == -1);
 *     on doubles it is fmod.  Division or % by zero (0 or 0.0) yields
 *     missing.
 * 11. and, or, not and the whole expression use truthiness: missing, null
 *     and false are falsy; everything else (0, "", maps, ...) is truthy.
 *     and/or yield bools.
 *
 * Regexes are PCRE2, compiled with the expression (UTF mode; subjects that
 * are not valid UTF-8 still match, byte sequences that are invalid never
 * match a character) and JIT-compiled when PCRE2 supports it, silently
 * interpreted otherwise.  An invalid regex is a compile error at the
 * column of its string literal, with PCRE2's message. */
#ifndef SL_EXPR_H
#define SL_EXPR_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct sl_expr sl_expr_t;

typedef struct {
  int col;       /* 1-based byte column in the text */
  char msg[256]; /* e.g. `unexpected ")"`, `unknown function "exist"` */
} sl_expr_error_t;

/* Deepest nesting accepted (parentheses, not, unary minus, and the depth of
 * the compiled tree: a chain of 128 additions is too deep; chains of and/or
 * are flat and do not count). */
#define SL_EXPR_MAX_DEPTH 128

/* sl_expr_compile_with flags. */
#define SL_EXPR_NO_JIT 1u /* interpret regexes even where JIT is available */

/* Compiles `text` (borrowed, NUL-terminated).  Returns 0 and sets *out
 * (owned; free with sl_expr_free); or SL_ESYNTAX (syntax or regex error)
 * or SL_ENOMEM, with *out NULL and *err filled (err may be NULL). */
int sl_expr_compile(const char *text, sl_expr_t **out, sl_expr_error_t *err);
int sl_expr_compile_with(const char *text, unsigned flags, sl_expr_t **out, sl_expr_error_t *err);

/* Whether `record` (borrowed; normally a map; NULL acts as an empty record)
 * passes the filter.  Never fails, and allocates nothing (except that a
 * regex interpreted without JIT may grow, once, the backtracking memory it
 * keeps, for an unusually deep match).  The compiled
 * expression keeps scratch state (PCRE2 match data), so one expression is
 * evaluated by one thread at a time; compile one per thread to share a
 * filter across threads. */
bool sl_expr_match(const sl_expr_t *e, const msgpack_object *record);

/* Regexes in the expression, and how many of them run JIT-compiled. */
size_t sl_expr_regex_count(const sl_expr_t *e);
size_t sl_expr_jit_count(const sl_expr_t *e);

void sl_expr_free(sl_expr_t *e); /* accepts NULL */

#endif
