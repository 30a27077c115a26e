/* The TOML parser as a config author meets it: where keys and values are
 * reported, the exact error messages for common mistakes, lookups and
 * date/time formatting.  Conformance is covered by the toml-test suite
 * (test/integration/toml_test_suite.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tap.h"
#include "config/toml.h"

static sl_toml_value_t *parse(const char *text, char *err, size_t errlen) {
  sl_toml_value_t *root = NULL;
  int rc = sl_toml_parse(text, strlen(text), "sluice.toml", &root, err, errlen);
  return rc == 0 ? root : NULL;
}

/* Parses text that must fail and returns the message. */
static const char *error_of(const char *text) {
  static char err[512];
  sl_toml_value_t *root = NULL;
  err[0] = '\0';
  int rc = sl_toml_parse(text, strlen(text), "sluice.toml", &root, err, sizeof err);
  if (rc != SL_ESYNTAX || root) {
    sl_toml_free(root);
    return "(accepted or wrong code)";
  }
  return err;
}

static void positions(void) {
  char err[256];
  const char *text =
      "# sluice\n"
      "[input.forward]\n"
      "  listen = \"0.0.0.0:24224\"\n"
      "chunk_size_limit =   \"8MiB\"\n"
      "\n"
      "[[sink]]\n"
      "name = \"latest\"\n"
      "opts = { db = 2, tls.verify = true }\n";
  sl_toml_value_t *root = parse(text, err, sizeof err);
  ok(root != NULL, "config parses");
  if (!root) {
    printf("# %s\n", err);
    return;
  }
  const sl_toml_kv_t *input = sl_toml_get_kv(root, "input");
  ok(input && input->value->type == SL_TOML_TABLE, "[input.forward] implies table input");
  const sl_toml_kv_t *fwd = sl_toml_get_kv(input ? input->value : NULL, "forward");
  ok(fwd != NULL, "input.forward exists");
  if (fwd) {
    is_int(fwd->line, 2, "a header table's key is at the header: line");
    is_int(fwd->col, 1, "a header table's key is at the header: col");
  }
  const sl_toml_kv_t *listen = sl_toml_get_kv(fwd ? fwd->value : NULL, "listen");
  ok(listen != NULL, "listen found");
  if (listen) {
    is_int(listen->line, 3, "indented key line");
    is_int(listen->col, 3, "indented key col (bytes, 1-based)");
    is_int(listen->value->line, 3, "value line");
    is_int(listen->value->col, 12, "value col points at the opening quote");
    is_str(listen->value->u.str.ptr, "0.0.0.0:24224", "string value");
    is_int(listen->value->u.str.len, 13, "string length");
  }
  const sl_toml_value_t *limit = sl_toml_get(fwd ? fwd->value : NULL, "chunk_size_limit");
  ok(limit && limit->line == 4 && limit->col == 22, "value after extra spaces at 4:22");

  const sl_toml_value_t *sinks = sl_toml_get(root, "sink");
  ok(sinks && sinks->type == SL_TOML_ARRAY && sinks->u.arr.len == 1, "[[sink]] is an array of 1");
  if (sinks && sinks->u.arr.len == 1) {
    const sl_toml_value_t *s0 = sinks->u.arr.items[0];
    is_int(s0->line, 6, "array-of-tables element at its header line");
    const sl_toml_value_t *opts = sl_toml_get(s0, "opts");
    ok(opts && opts->type == SL_TOML_TABLE && opts->col == 8, "inline table at its brace");
    const sl_toml_kv_t *tls = sl_toml_get_kv(opts, "tls");
    ok(tls && tls->line == 8 && tls->col == 18, "dotted key part 'tls' at 8:18");
    const sl_toml_kv_t *verify = sl_toml_get_kv(tls ? tls->value : NULL, "verify");
    ok(verify && verify->col == 22 && verify->value->type == SL_TOML_BOOL && verify->value->u.b,
       "dotted key part 'verify' at 8:22 holds true");
  }
  sl_toml_free(root);
}

static void lookups(void) {
  char err[256];
  sl_toml_value_t *root = parse("a = 1\n\"b.c\" = 2\n\"\" = 3\n", err, sizeof err);
  ok(root != NULL, "quoted keys parse");
  ok(sl_toml_get(root, "a") && sl_toml_get(root, "a")->u.i == 1, "get a");
  ok(sl_toml_get(root, "b.c") && sl_toml_get(root, "b.c")->u.i == 2,
     "get takes one key, not a path: \"b.c\" is a quoted key");
  ok(sl_toml_get(root, "b") == NULL, "no table b was created by the quoted key");
  ok(sl_toml_get(root, "") && sl_toml_get(root, "")->u.i == 3, "empty quoted key");
  ok(sl_toml_get(root, "missing") == NULL, "absent key is NULL");
  ok(sl_toml_get(sl_toml_get(root, "a"), "x") == NULL, "get on a non-table is NULL");
  ok(sl_toml_get(NULL, "a") == NULL, "get on NULL is NULL");
  ok(root && root->u.tab.len == 3 && strcmp(root->u.tab.items[1].key, "b.c") == 0,
     "keys kept in definition order");
  sl_toml_free(root);
  sl_toml_free(NULL);
  is_str(sl_toml_type_name(SL_TOML_DATETIME_LOCAL), "local datetime", "type name");

  /* Big tables are indexed: lookups and duplicate checks still hold. */
  char text[8192] = "[big]\n";
  for (int i = 0; i < 200; i++) snprintf(text + strlen(text), 64, "k%d = %d\n", i, i);
  root = parse(text, err, sizeof err);
  const sl_toml_value_t *big = sl_toml_get(root, "big");
  ok(big && big->u.tab.len == 200, "200 keys");
  ok(sl_toml_get(big, "k137") && sl_toml_get(big, "k137")->u.i == 137, "lookup in a big table");
  ok(sl_toml_get(big, "k200") == NULL, "absent key in a big table");
  sl_toml_free(root);
  strcat(text, "k99 = 0\n");
  is_str(error_of(text), "sluice.toml:202:1: duplicate key \"k99\" (first defined at 101:1)",
         "duplicate in a big table");
}

static void values(void) {
  char err[256];
  sl_toml_value_t *root = parse(
      "i = -9_223_372_036_854_775_808\n"
      "h = 0xdead_BEEF\n"
      "o = 0o755\n"
      "b = 0b1010\n"
      "f = -6.02e+23\n"
      "n = -nan\n"
      "inf = -inf\n"
      "s = \"tab\\there \\u00e9 \\U0001F600\"\n"
      "ml = \"\"\"\r\n  one \\\r\n     two\r\n\"\"\"\n"
      "lit = 'C:\\path'\n"
      "mixed = [1, \"two\", [3.0], {x = 4}]\n",
      err, sizeof err);
  ok(root != NULL, "values parse");
  if (!root) {
    printf("# %s\n", err);
    return;
  }
  ok(sl_toml_get(root, "i")->u.i == INT64_MIN, "INT64_MIN with underscores");
  is_int(sl_toml_get(root, "h")->u.i, 0xdeadbeef, "hex, mixed case");
  is_int(sl_toml_get(root, "o")->u.i, 0755, "octal");
  is_int(sl_toml_get(root, "b")->u.i, 10, "binary");
  ok(sl_toml_get(root, "f")->u.f == -6.02e23, "float with exponent");
  ok(isnan(sl_toml_get(root, "n")->u.f), "-nan");
  ok(isinf(sl_toml_get(root, "inf")->u.f) && sl_toml_get(root, "inf")->u.f < 0, "-inf");
  is_str(sl_toml_get(root, "s")->u.str.ptr, "tab\there \xc3\xa9 \xf0\x9f\x98\x80", "escapes");
  is_str(sl_toml_get(root, "ml")->u.str.ptr, "  one two\n",
         "multi-line: first CRLF trimmed, line-ending backslash, CRLF stored as LF");
  is_str(sl_toml_get(root, "lit")->u.str.ptr, "C:\\path", "literal string keeps backslash");
  const sl_toml_value_t *m = sl_toml_get(root, "mixed");
  ok(m && m->u.arr.len == 4 && m->u.arr.items[1]->type == SL_TOML_STRING &&
         m->u.arr.items[3]->type == SL_TOML_TABLE,
     "arrays may mix types (TOML 1.0)");
  sl_toml_free(root);

  root = parse("s = \"a\\u0000b\"\n", err, sizeof err);
  ok(root && sl_toml_get(root, "s")->u.str.len == 3 && sl_toml_get(root, "s")->u.str.ptr[1] == 0,
     "\\u0000 keeps its NUL; len says 3");
  sl_toml_free(root);
}

static void datetimes(void) {
  char err[256], buf[64];
  sl_toml_value_t *root = parse(
      "odt = 1979-05-27 07:32:00.5+05:30\n"
      "z = 1979-05-27t07:32:00z\n"
      "ldt = 1979-05-27T00:32:00.999999\n"
      "ld = 2024-02-29\n"
      "lt = 07:32:00.123456789123\n",
      err, sizeof err);
  ok(root != NULL, "date/times parse");
  if (!root) {
    printf("# %s\n", err);
    return;
  }
  const sl_toml_value_t *v = sl_toml_get(root, "odt");
  is_int(v->type, SL_TOML_DATETIME, "space separator gives an offset datetime");
  is_int(v->u.dt.offset_minutes, 330, "offset +05:30");
  is_int(v->u.dt.nanosecond, 500000000, ".5 s");
  sl_toml_datetime_format(v, buf, sizeof buf);
  is_str(buf, "1979-05-27T07:32:00.500+05:30", "offset datetime formats with T and ms");
  sl_toml_datetime_format(sl_toml_get(root, "z"), buf, sizeof buf);
  is_str(buf, "1979-05-27T07:32:00Z", "lowercase t and z; no fraction when zero");
  sl_toml_datetime_format(sl_toml_get(root, "ldt"), buf, sizeof buf);
  is_str(buf, "1979-05-27T00:32:00.999999", "local datetime, microseconds");
  is_int(sl_toml_get(root, "ld")->type, SL_TOML_DATE_LOCAL, "local date");
  sl_toml_datetime_format(sl_toml_get(root, "ld"), buf, sizeof buf);
  is_str(buf, "2024-02-29", "leap day");
  sl_toml_datetime_format(sl_toml_get(root, "lt"), buf, sizeof buf);
  is_str(buf, "07:32:00.123456789", "local time, truncated to nanoseconds");
  size_t n = sl_toml_datetime_format(sl_toml_get(root, "ld"), buf, 5);
  ok(n == 4 && strcmp(buf, "2024") == 0, "format truncates to the buffer");
  is_int(sl_toml_datetime_format(root, buf, sizeof buf), 0, "format of a non-date is empty");
  sl_toml_free(root);
}

static void errors(void) {
  is_str(error_of("a = 1\nlisten \"0.0.0.0\"\n"),
         "sluice.toml:2:8: expected '=' after key \"listen\", found '\"'", "missing '='");
  is_str(error_of("[input]\nname = \"abc\n"), "sluice.toml:2:8: unterminated string",
         "unterminated string points at the opening quote");
  is_str(error_of("x = \"\"\"abc\n\n"), "sluice.toml:1:5: unterminated multi-line string",
         "unterminated multi-line string");
  is_str(error_of("[[route]]\nmatch = \"app.**\"\n\ntopic = \"a\"\ntopic = \"b\"\n"),
         "sluice.toml:5:1: duplicate key \"topic\" (first defined at 4:1)", "duplicate key");
  is_str(error_of("s = \"C:\\temp\\x\"\n"), "sluice.toml:1:13: invalid escape sequence '\\x'",
         "bad escape, at the backslash");
  is_str(error_of("s = \"\\uD800\"\n"),
         "sluice.toml:1:6: escape \\uD800 is not a Unicode scalar value", "surrogate escape");
  is_str(error_of("n = 9223372036854775808\n"),
         "sluice.toml:1:5: integer \"9223372036854775808\" is out of range for a 64-bit integer",
         "integer overflow");
  is_str(error_of("n = 0x8000_0000_0000_0000\n"),
         "sluice.toml:1:5: integer \"0x8000_0000_0000_0000\" is out of range for a 64-bit integer",
         "hex overflow");
  is_str(error_of("n = 012\n"), "sluice.toml:1:5: leading zeros are not allowed in \"012\"",
         "leading zero");
  is_str(error_of("n = 1__000\n"),
         "sluice.toml:1:5: an underscore in \"1__000\" must be between two digits", "double _");
  is_str(error_of("[a]\nx = 1\n[b]\n[a]\n"),
         "sluice.toml:4:1: table [a] is defined twice (first at 1:1)", "table defined twice");
  is_str(error_of("w = { size = \"10s\" }\nw.type = \"tumbling\"\n"),
         "sluice.toml:2:1: cannot add keys to \"w\" with a dotted key: it is an inline table "
         "defined at 1:1",
         "inline tables are sealed");
  is_str(error_of("a = [1]\n[[a]]\n"),
         "sluice.toml:2:1: cannot define array of tables [[a]]: \"a\" is already an array "
         "defined at 1:1",
         "a static array cannot be extended by [[a]]");
  is_str(error_of("d = 2023-02-29\n"),
         "sluice.toml:1:5: invalid date/time \"2023-02-29\": day out of range", "no Feb 29");
  is_str(error_of("a = 1 b = 2\n"),
         "sluice.toml:1:7: expected end of line after the value, found 'b'", "two keys on a line");
  is_str(error_of("a = \n"), "sluice.toml:1:5: missing value for key \"a\"", "missing value");
  is_str(error_of("a = 1 # bell \x07\n"),
         "sluice.toml:1:14: control character U+0007 is not allowed in a comment",
         "control character in a comment");
  is_str(error_of("a = \"\xc3\x28\"\n"), "sluice.toml:1:6: invalid UTF-8: truncated sequence",
         "invalid UTF-8");
  is_str(error_of("a = 1\r\nb = 2\rc = 3\n"),
         "sluice.toml:2:6: carriage return not followed by a newline", "lone CR");
  is_str(error_of("t = {a = 1,}\n"),
         "sluice.toml:1:11: trailing comma is not allowed in an inline table", "trailing comma");

  char err[64];
  sl_toml_value_t *root = NULL;
  sl_toml_parse("x", 1, NULL, &root, err, sizeof err);
  is_str(err, "1:2: expected '=' after key \"x\", found end of file", "no filename: line:col only");
  is_int(sl_toml_parse("x", 1, NULL, &root, NULL, 0), SL_ESYNTAX, "err buffer may be NULL");
  ok(root == NULL, "root is NULL after an error");
}

static void nesting(void) {
  /* Deep arrays must fail with a message, not with a stack overflow. */
  size_t depth = 100000;
  char *text = malloc(depth * 2 + 8);
  memcpy(text, "a = ", 4);
  memset(text + 4, '[', depth);
  memset(text + 4 + depth, ']', depth);
  text[4 + 2 * depth] = '\0';
  const char *e = error_of(text);
  ok(strstr(e, "nesting deeper than 128 levels") != NULL, "deep arrays rejected: %s", e);
  free(text);

  /* A long dotted key nests tables too. */
  text = malloc(depth * 2 + 8);
  for (size_t i = 0; i < depth; i++) memcpy(text + 2 * i, "a.", 2);
  memcpy(text + 2 * depth - 1, " = 1", 5);
  e = error_of(text);
  ok(strstr(e, "more than 128 dotted parts") != NULL, "long dotted key rejected: %s", e);
  free(text);

  /* 100 levels are fine. */
  char ok_text[256] = "a = ";
  for (int i = 0; i < 100; i++) strcat(ok_text, "[");
  for (int i = 0; i < 100; i++) strcat(ok_text, "]");
  sl_toml_value_t *root = NULL;
  char err[128];
  is_int(sl_toml_parse(ok_text, strlen(ok_text), NULL, &root, err, sizeof err), 0,
         "100 nested arrays parse");
  sl_toml_free(root);
}

static void files(void) {
  char err[256];
  sl_toml_value_t *root = NULL;
  int rc = sl_toml_parse_file("/nonexistent/sluice.toml", &root, err, sizeof err);
  is_int(rc, -2 /* -ENOENT */, "missing file is -ENOENT");
  is_str(err, "/nonexistent/sluice.toml: No such file or directory", "missing file message");
}

int main(void) {
  positions();
  lookups();
  values();
  datetimes();
  errors();
  nesting();
  files();
  return tap_done();
}
