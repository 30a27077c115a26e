/* The where language: every operator, precedence, the type rules of
 * expr.h (missing, mixed types, null, exact numeric comparison, truthiness,
 * arithmetic yielding missing), regexes with and without JIT, in lists,
 * exists, nested paths and odd keys, and the column and message of
 * malformed expressions.
 *
 * Speed: `status >= 500 and path =~ "^/api/"` on a 6-field record is timed
 * at the end and printed as a TAP comment ("# bench: N ns/record"); half of
 * the records fail the status test, half reach the regex.  Measured on the
 * development machine (2 cores, debugoptimized -O2, gcc 12 and clang 14,
 * PCRE2 10.42): about 25 ns/record; about 35 when every record reaches the
 * regex, 60 with the regex interpreted (SL_EXPR_NO_JIT); no heap allocation
 * per record (valgrind's count is the same for 10 and 10,000 evaluations).
 * SL_BENCH_N sets the number of evaluations (default 200,000). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "core/error.h"
#include "jobs/expr.h"
#include "jobs_record.h"
#include "tap.h"

static unsigned compile_flags;

/* 1 when `expr` matches `record`, 0 when not, -1 when it does not compile. */
static int M(const char *expr, const char *record) {
  sl_expr_t *e = NULL;
  sl_expr_error_t err;
  if (sl_expr_compile_with(expr, compile_flags, &e, &err)) {
    printf("#   '%s' did not compile: %d: %s\n", expr, err.col, err.msg);
    return -1;
  }
  msgpack_object r = rec(record);
  int m = sl_expr_match(e, &r);
  sl_expr_free(e);
  return m;
}

/* `s` printable for a TAP line: bytes outside printable ASCII (newlines
 * too) as \xNN.  Four results may be in use at once. */
static const char *show(const char *s) {
  static char bufs[4][512];
  static int next;
  char *b = bufs[next++ & 3];
  size_t k = 0;
  for (; *s && k + 5 < sizeof bufs[0]; s++) {
    unsigned char c = (unsigned char)*s;
    if (c >= 0x20 && c < 0x7f)
      b[k++] = (char)c;
    else
      k += (size_t)snprintf(b + k, 5, "\\x%02x", c);
  }
  b[k] = 0;
  return b;
}

#define YES(expr, record) is_int(M(expr, record), 1, "%s  on %s", show(expr), show(record))
#define NO(expr, record) is_int(M(expr, record), 0, "not: %s  on %s", show(expr), show(record))

/* "col: message" of a compile error, or "compiled". */
static const char *E(const char *expr) {
  static char out[320];
  sl_expr_t *e = (sl_expr_t *)&out;
  sl_expr_error_t err;
  int r = sl_expr_compile(expr, &e, &err);
  if (r == 0) {
    sl_expr_free(e);
    return "compiled";
  }
  snprintf(out, sizeof out, "%d: %s%s", err.col, err.msg,
           r != SL_ESYNTAX ? " (not SL_ESYNTAX)" : e ? " (out not NULL)" : "");
  return out;
}

#define ERR(expr, want) is_str(E(expr), want, "error for: %s", show(expr))

static const char *R = "{'i': 1, 'two': 2, 'f': 2.5, 's': 'abc', 't': true, 'fa': false, "
                       "'n': null, 'zero': 0, 'empty': '', 'neg': -7, 'arr': [1, 2], "
                       "'map': {'k': 'v'}}";

static void literals_and_truthiness(void) {
  YES("true", "{}");
  NO("false", "{}");
  NO("null", "{}");
  YES("0", "{}");
  YES("\"\"", "{}");
  YES("1.5", "{}");
  /* rule 11 on fields */
  YES("i", R);
  YES("zero", R);
  YES("empty", R);
  YES("t", R);
  NO("fa", R);
  NO("n", R);
  NO("missing", R);
  YES("arr", R);
  YES("map", R);
  YES("not missing", R);
  YES("not n", R);
  YES("not fa", R);
  NO("not zero", R);
  NO("not empty", R);
  YES("i and s", R);
  NO("i and n", R);
  NO("missing or fa or n", R);
  YES("missing or zero", R);
  NO("i and s and t and missing", R);
  YES("fa or n or missing or empty", R);
  YES("(i and s) == true", R);
  NO("(i and fa) == true", R);
  YES("(i or fa) == true", R);
}

static void comparisons(void) {
  YES("i == 1", R);
  NO("i == 2", R);
  YES("i != 2", R);
  NO("i != 1", R);
  YES("i < 2", R);
  NO("i < 1", R);
  YES("i <= 1", R);
  NO("i <= 0", R);
  YES("two > 1", R);
  NO("two > 2", R);
  YES("two >= 2", R);
  NO("two >= 3", R);
  YES("neg < -6", R);
  YES("neg == -7", R);
  /* rule 5: int and float compared by value, exactly */
  YES("i == 1.0", R);
  YES("f > 2", R);
  YES("f < 3", R);
  YES("f == 2.5", R);
  YES("f == 5 / 2", R);
  YES("x == 2.5", "{'x': 2.5f}");
  YES("x == 9007199254740993 and x > 9007199254740992.0", "{'x': 9007199254740993}");
  NO("x == 9007199254740992.0", "{'x': 9007199254740993}");
  YES("x < 9223372036854775808.0", "{'x': 9223372036854775807}");
  YES("x == -9223372036854775808.0 and x > -9223372036854777856.0",
      "{'x': -9223372036854775808}");
  YES("u > 9223372036854775807", "{'u': 18446744073709551615}");
  YES("u == 18446744073709551615", "{'u': 18446744073709551615}");
  YES("-0.5 < 0 and -0.5 > -1", "{}");
  YES("x < 0 and x > -1", "{'x': -0.5}");
  NO("x == nan or x < 1 or x > 1 or x <= 1 or x >= 1 or x == x", "{'x': nan}");
  YES("x != 1 and x != x", "{'x': nan}");
  /* rule 6: strings bytewise, bools == and != only */
  YES("s == \"abc\"", R);
  NO("s == \"abd\"", R);
  YES("s != \"ab\"", R);
  YES("s < \"abd\" and s > \"ab\" and s >= \"abc\" and s <= \"abc\"", R);
  YES("\"Z\" < \"a\"", "{}");
  YES("\"\" < \"a\"", "{}");
  YES("x == \"\xff\" and x > \"z\"", "{'x': b'\\xff'}");
  YES("b == \"bytes\"", "{'b': b'bytes'}");
  YES("empty == \"\"", R);
  YES("t == true and fa == false and t != false", R);
  NO("t < true or t <= true or t > fa or t >= true", R);
  /* rules 2 and 3: missing and mixed types */
  NO("missing == 1", R);
  NO("missing != 1", R);
  NO("missing < 1 or missing <= 1 or missing > 1 or missing >= 1", R);
  NO("missing == missing", R);
  YES("not (missing == 1)", R);
  NO("s == 1", R);
  NO("s != 1", R);
  NO("s < 1 or s > 1", R);
  NO("x == \"500\"", "{'x': 500}");
  NO("x != \"500\"", "{'x': 500}");
  NO("t == 1", R);
  NO("t != 1", R);
  NO("zero == false", R);
  NO("arr == arr", R);
  NO("arr != 1", R);
  NO("map == map or map != map", R);
  /* rule 4: null */
  YES("n == null", R);
  NO("n != null", R);
  NO("missing == null", R);
  NO("missing != null", R);
  NO("i == null", R);
  YES("i != null", R);
  YES("s != null and arr != null and map != null and fa != null", R);
  NO("n < null or n <= null or n >= null", R);
  NO("n < 1 or n > 1 or n == 0", R);
  YES("null == null", "{}");
}

static void arithmetic(void) {
  YES("i + 1 == 2", R);
  YES("i - 3 == -2", R);
  YES("two * 4 == 8", R);
  YES("7 / 2 == 3.5", "{}");
  YES("6 / 2 == 3", "{}");
  /* An exact quotient stays int64, so adding to it is exact beyond 2^53
   * (as a double, 9007199254740994.0 + 1 rounds to ...996). */
  YES("18014398509481988 / 2 + 1 == 9007199254740995", "{}");
  YES("9007199254740993 + 0 == 9007199254740993", "{}");
  YES("7 % 3 == 1", "{}");
  YES("-7 % 3 == -1", "{}");
  YES("neg % 3 == -1", R);
  YES("7.5 % 2 == 1.5", "{}");
  YES("f * 2 == 5", R);
  YES("f + i == 3.5", R);
  YES("9223372036854775807 + 1 > 9223372036854775807", "{}");
  YES("-9223372036854775807 - 2 < -9223372036854775807", "{}");
  YES("4611686018427387904 * 4 == 18446744073709551616.0", "{}");
  YES("x / -1 > 0", "{'x': -9223372036854775808}");
  YES("x % -1 == 0", "{'x': -9223372036854775808}");
  YES("-x > 0", "{'x': -9223372036854775808}");
  YES("-i == -1", R);
  YES("- -i == 1", R);
  YES("-(i + 1) == -2", R);
  YES("-f == -2.5", R);
  /* rule 10: non-numbers and division by zero yield missing */
  NO("i / 0 == i / 0", R);
  NO("i / 0 != 1", R);
  NO("i / 0 == null", R);
  YES("not exists(x) and not (i / 0)", R);
  NO("i % 0 == 0 or i % 0 != 0", R);
  NO("f / 0.0 == 1 or f / 0.0 != 1", R);
  NO("f % 0 == 1 or f % 0 != 1", R);
  NO("s + 1 == 1 or s + 1 != 1", R);
  NO("1 + s == 1 or 1 + s != 1", R);
  NO("t + 1 == 2 or t + 1 != 2", R);
  NO("n + 1 == 1 or n + 1 != 1 or n + 1 == null", R);
  NO("missing + 1 == 1 or missing + 1 != 1", R);
  NO("-s == 1 or -s != 1 or -n == null", R);
  NO("s * 2", R);
  NO("\"a\" + \"b\" == \"ab\"", "{}");
}

static void precedence(void) {
  YES("1 + 2 * 3 == 7", "{}");
  YES("(1 + 2) * 3 == 9", "{}");
  YES("2 * 3 % 4 == 2", "{}");
  YES("10 - 4 - 3 == 3", "{}");
  YES("8 / 4 / 2 == 1", "{}");
  YES("-2 * 3 == -6", "{}");
  YES("2 - -2 == 4", "{}");
  YES("1 + 1 == 2 and 2 * 2 == 4", "{}");
  /* not binds looser than comparisons: not (i == 2), not (not i) == 2 */
  YES("not i == 2", R);
  YES("not not i == 1", R);
  /* and binds tighter than or */
  YES("true or false and false", "{}");
  NO("(true or false) and false", "{}");
  YES("false and false or true", "{}");
  /* not binds tighter than and/or */
  NO("not false and false", "{}");
  YES("not (false and false)", "{}");
  YES("not true or true", "{}");
  YES("i == 1 or s == 2 and t == false", R);
  NO("(i == 1 or s == 2) and t == false", R);
  YES("i + 1 > 1 and s =~ \"b\"", R);
  YES("i in [0, 1] and not s in [\"x\"]", R);
  YES("(((i)) == ((1)))", R);
}

static void in_lists(void) {
  YES("i in [1, 2, 3]", R);
  NO("i in [2, 3]", R);
  YES("i in [1.0]", R);
  YES("f in [2.5]", R);
  YES("neg in [-7, 7]", R);
  YES("s in [\"x\", \"abc\"]", R);
  NO("s in [\"ab\", \"abcd\"]", R);
  YES("t in [true]", R);
  NO("fa in [true, 0, null]", R);
  YES("n in [null]", R);
  NO("i in [\"1\", true]", R);
  NO("missing in [1, null]", R);
  NO("i in []", R);
  YES("i not in [2, 3]", R);
  NO("i not in [1, 2]", R);
  YES("i not in []", R);
  NO("missing not in [1]", R);
  NO("missing not in []", R);
  YES("s not in [1, 2]", R); /* rule 7: unlike != */
  YES("n not in [1]", R);
  NO("n not in [null]", R);
  YES("not i in [2]", R);
  YES("i + 1 in [2]", R);
  YES("x in [\"b\\\"q\"]", "{'x': 'b\"q'}");
}

static void exists_and_paths(void) {
  YES("exists(i)", R);
  YES("exists(n)", R);
  NO("exists(missing)", R);
  YES("not exists(missing)", R);
  YES("exists(map.k)", R);
  NO("exists(map.x)", R);
  YES("exists(arr[1])", R);
  NO("exists(arr[2])", R);
  NO("exists(s.x)", R);
  YES("exists( [\"map\"][\"k\"] )", R);
  YES("exists (i)", R);
  const char *rq = "{'req': {'path': '/api/v1', 'headers': {'x-id': ['a', 'b', 'c']}}, "
                   "'@timestamp': 1700000000, 'odd key': 'x', 'q\"k': 3, 'null': 9}";
  YES("req.headers[\"x-id\"][2] == \"c\"", rq);
  NO("req.headers[\"x-id\"][3] == \"c\"", rq);
  YES("req[\"path\"] == \"/api/v1\"", rq);
  YES("[\"@timestamp\"] > 1600000000", rq);
  YES("[\"odd key\"] == \"x\"", rq);
  YES("[\"q\\\"k\"] == 3", rq);
  YES("[\"null\"] == 9", rq);
  YES("arr[0] == 1 and arr[1] == 2", R);
  NO("arr[5] == 1 or arr[5] != 1", R);
  NO("map[0] == 1 or arr.k == 1", R);
  YES("in_x == 1 and notx == 2 and order == 3 and trueish", "{'in_x': 1, 'notx': 2, 'order': 3, 'trueish': 1}");
  YES("i==1", R);
  is_int(M("i\t==\n1", R), 1, "tabs and newlines separate tokens");
  msgpack_object r = rec(R);
  sl_expr_t *e = NULL;
  sl_expr_error_t err;
  sl_expr_compile("missing == 1 or i == 1", &e, &err);
  ok(e && sl_expr_match(e, NULL) == false, "a NULL record is an empty one");
  ok(e && sl_expr_match(e, &r) == true, "the same expression on a record");
  sl_expr_free(e);
  sl_expr_free(NULL);
}

static void regexes(void) {
  const char *p = "{'path': '/api/users/42', 'other': '/static/api/x', 'i': 5, 'u': 'h\xc3\xa9', "
                  "'bad': b'\\xffx', 'b': b'/api/bin', 'e': '', 'n': null}";
  YES("path =~ \"^/api/\"", p);
  NO("other =~ \"^/api/\"", p);
  YES("other =~ \"/api/\"", p);
  YES("path =~ \"/42$\"", p);
  NO("path =~ \"^/api/$\"", p);
  YES("path =~ \"^/api/users/\\d+$\"", p);
  YES("path =~ \"^/api/users/\\\\d+$\"", p);
  YES("path =~ \"(?i)^/API/\"", p);
  NO("path =~ \"^/API/\"", p);
  YES("path =~ \"a.i\"", p);
  NO("path =~ \"a\\\\.i\"", p);
  YES("path !~ \"^/static\"", p);
  NO("path !~ \"^/api\"", p);
  YES("b =~ \"^/api/bin$\"", p);
  YES("e =~ \"^$\"", p);
  NO("e =~ \"x\"", p);
  YES("e !~ \"x\"", p);
  YES("u =~ \"^h.$\"", p);  /* UTF mode: é is one character */
  YES("u =~ \"^h\xc3\xa9$\"", p);
  YES("bad =~ \"x$\"", p);  /* invalid UTF-8 subjects still match */
  NO("bad =~ \"^.x$\"", p); /* ... but the invalid byte is no character */
  YES("bad !~ \"^.x$\"", p);
  NO("i =~ \"5\"", p);
  NO("i !~ \"5\"", p);
  NO("n =~ \"\" or n !~ \"x\"", p);
  NO("missing =~ \"\" or missing !~ \"x\"", p);
  YES("not (missing =~ \"x\")", p);
  YES("path =~ \"^/api/\" and other =~ \"api\" and path !~ \"static\"", p);
  /* Catastrophic backtracking hits the match limit and counts as false for
   * both operators.  20 a's take a few million steps: past sluice's limit
   * (1M), within PCRE2's default (10M). */
  const char *evil = "{'s': 'aaaaaaaaaaaaaaaaaaaa!'}";
  NO("s =~ \"^(a+)+$\"", evil);
  NO("s !~ \"^(a+)+$\"", evil);
}

static void jit(void) {
  uint32_t have = 0;
  pcre2_config(PCRE2_CONFIG_JIT, &have);
  sl_expr_t *e = NULL;
  sl_expr_error_t err;
  is_int(sl_expr_compile("a =~ \"x\" or b !~ \"y\" or c == 1", &e, &err), 0, "two regexes compile");
  is_int(sl_expr_regex_count(e), 2, "two regexes counted");
  is_int(sl_expr_jit_count(e), have ? 2 : 0, "JIT used where PCRE2 has it (%s)",
         have ? "it has" : "it has not");
  sl_expr_free(e);
  is_int(sl_expr_compile_with("a =~ \"x\"", SL_EXPR_NO_JIT, &e, &err), 0, "compiles without JIT");
  is_int(sl_expr_jit_count(e), 0, "SL_EXPR_NO_JIT interprets");
  sl_expr_free(e);
  /* The regex tests again, interpreted. */
  compile_flags = SL_EXPR_NO_JIT;
  regexes();
  compile_flags = 0;
}

static void errors(void) {
  ERR("", "1: empty expression");
  ERR("   ", "4: empty expression");
  ERR("a ==", "5: unexpected end of expression");
  ERR("a == 1)", "7: unexpected \")\"");
  ERR("(a == 1", "8: expected \")\" to close the \"(\" at column 1");
  ERR("exist(a)", "1: unknown function \"exist\"");
  ERR("x and lower(a)", "7: unknown function \"lower\"");
  ERR("a =~ 5", "6: expected a string after =~");
  ERR("a !~ b", "6: expected a string after !~");
  ERR("a =~", "5: expected a string after =~");
  ERR("a = 1", "3: unexpected \"=\" (compare with \"==\")");
  ERR("a && b", "3: unexpected \"&&\" (use \"and\")");
  ERR("a || b", "3: unexpected \"||\" (use \"or\")");
  ERR("!a", "1: unexpected \"!\" (negate with \"not\")");
  ERR("a == \"abc", "6: unterminated string");
  ERR("a < b < c", "7: comparisons do not chain (join them with \"and\")");
  ERR("a == 1 != 2", "8: comparisons do not chain (join them with \"and\")");
  ERR("a in 1", "6: expected \"[\" after \"in\"");
  ERR("a in [1, b]", "10: \"in\" lists hold only literals (numbers, strings, true, false, null)");
  ERR("a in [1 2]", "9: expected \",\" or \"]\" in the list");
  ERR("a in [1,]", "9: unexpected \"]\"");
  ERR("a not in (1)", "10: expected \"[\" after \"in\"");
  ERR("a[-1] == 1", "3: negative array indexes are not supported (indexes count from 0)");
  ERR("a[0 == 1", "4: expected \"]\"");
  ERR("a..b", "3: expected a field name after \".\" (quote odd keys as [\"key\"], index arrays "
              "as [0])");
  ERR("a == 1 b", "8: unexpected \"b\"");
  ERR("a $ b", "3: unexpected character \"$\"");
  ERR("a == \xc3\xa9", "6: unexpected byte 0xc3");
  ERR("exists(1)", "8: exists() takes a field path");
  ERR("exists(null)", "8: exists() takes a field path");
  ERR("exists(a b)", "10: expected \")\" after the path in exists()");
  ERR("a == 1.", "6: invalid number \"1.\"");
  ERR("a == 5abc", "6: invalid number \"5abc\"");
  ERR("not", "4: unexpected end of expression");
  ERR("and", "1: unexpected \"and\"");
  ERR("a and or b", "7: unexpected \"or\"");
  ERR("a == \"x\" \"y\"", "10: unexpected string");
  ERR("in [1]", "1: unexpected \"in\"");
  ERR("a not b", "3: unexpected \"not\"");
  ERR(".5 > a", "1: unexpected character \".\"");
  is_str(E("a ==\n  )"), "8: unexpected \")\"", "columns count bytes, newlines included");
  is_str(E("path =~ \"(\""), "9: invalid regex: missing closing parenthesis (at offset 1 of the pattern)",
         "a bad regex points at its literal with PCRE2's message");
  is_str(E("x == 1 and y =~ \"a{2,1}\""),
         "17: invalid regex: numbers out of order in {} quantifier (at offset 5 of the pattern)",
         "another bad regex");
  is_str(E("y =~ \"\\xff\""), "compiled", "\\xff in a regex is PCRE2's escape");
  ok(strncmp(E("y =~ \"\xff\""), "6: invalid regex: UTF-8 error", 29) == 0,
     "a regex that is not UTF-8 is refused (%s)", E("y =~ \"\xff\""));

  /* Nesting limits: parentheses, not, unary minus, long arithmetic chains. */
  char deep[1024];
  int k = 0;
  for (int i = 0; i < 200; i++) deep[k++] = '(';
  deep[k++] = '1';
  for (int i = 0; i < 200; i++) deep[k++] = ')';
  deep[k] = 0;
  const char *m = E(deep);
  ok(strncmp(m, "129: expression nested too deeply", 33) == 0,
     "200 parentheses are too deep, at the 129th (%s)", m);
  k = 0;
  for (int i = 0; i < 100; i++) deep[k++] = '(';
  deep[k++] = '1';
  for (int i = 0; i < 100; i++) deep[k++] = ')';
  deep[k] = 0;
  is_str(E(deep), "compiled", "100 parentheses are fine");
  k = 0;
  for (int i = 0; i < 200; i++) k += snprintf(deep + k, sizeof deep - (size_t)k, "not ");
  snprintf(deep + k, sizeof deep - (size_t)k, "a");
  ok(strstr(E(deep), "nested too deeply") != NULL, "200 nots are too deep");
  k = snprintf(deep, sizeof deep, "a");
  for (int i = 0; i < 200; i++) k += snprintf(deep + k, sizeof deep - (size_t)k, "+1");
  ok(strstr(E(deep), "nested too deeply") != NULL, "a chain of 200 additions is too deep");
  /* and/or chains are flat, so a long one is fine. */
  static char wide[8192];
  k = snprintf(wide, sizeof wide, "x == 0");
  for (int i = 1; i < 500; i++) k += snprintf(wide + k, sizeof wide - (size_t)k, " or x == %d", i);
  sl_expr_t *e = NULL;
  sl_expr_error_t err;
  is_int(sl_expr_compile(wide, &e, &err), 0, "500 or-ed comparisons compile");
  msgpack_object r1 = rec("{'x': 499}"), r2 = rec("{'x': 500}");
  ok(e && sl_expr_match(e, &r1) && !sl_expr_match(e, &r2), "and match the last term only");
  sl_expr_free(e);
  is_int(sl_expr_compile("a ==", &e, NULL), SL_ESYNTAX, "err may be NULL");
  ok(e == NULL, "out is NULL after an error");
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void bench(void) {
  msgpack_object recs[2] = {
      rec("{'host': 'web-1', 'method': 'GET', 'path': '/api/orders/17', 'status': 503, "
          "'bytes': 5120, 'duration': 0.0421}"),
      rec("{'host': 'web-2', 'method': 'GET', 'path': '/static/app.js', 'status': 200, "
          "'bytes': 80211, 'duration': 0.0012}"),
  };
  sl_expr_t *e = NULL;
  sl_expr_error_t err;
  is_int(sl_expr_compile("status >= 500 and path =~ \"^/api/\"", &e, &err), 0, "bench compiles");
  long n = getenv("SL_BENCH_N") ? atol(getenv("SL_BENCH_N")) : 200000;
  long hits = 0;
  double t0 = now_ns();
  for (long i = 0; i < n; i++) hits += sl_expr_match(e, &recs[i & 1]);
  double t1 = now_ns();
  is_int(hits, n / 2, "bench: every other record matches");
  printf("# bench: %.1f ns/record (%ld records, %zu of %zu regexes JIT-compiled)\n",
         n ? (t1 - t0) / (double)n : 0.0, n, sl_expr_jit_count(e), sl_expr_regex_count(e));
  sl_expr_free(e);
}

int main(void) {
  literals_and_truthiness();
  comparisons();
  arithmetic();
  precedence();
  in_lists();
  exists_and_paths();
  regexes();
  jit();
  errors();
  bench();
  rec_cleanup();
  return tap_done();
}
