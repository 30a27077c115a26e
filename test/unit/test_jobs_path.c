/* Field paths: parsing (names, quoted keys with escapes, indexes), the
 * canonical text and its round trip, lookups through maps and arrays with
 * STR and BIN keys, and where malformed paths are reported. */
#include <stdlib.h>

#include "core/error.h"
#include "jobs/path.h"
#include "jobs_record.h"
#include "tap.h"

/* The canonical text of `text`, or "ERR@col". */
static const char *fmt(const char *text) {
  static char out[256];
  sl_path_t p;
  int col = 0;
  int r = sl_path_parse(text, &p, &col);
  if (r) {
    snprintf(out, sizeof out, "ERR@%d", col);
    return out;
  }
  sl_buf_t b = {0};
  if (sl_path_format(&p, &b))
    snprintf(out, sizeof out, "format failed");
  else
    snprintf(out, sizeof out, "%.*s", (int)b.len, b.data);
  sl_buf_free(&b);
  sl_path_free(&p);
  return out;
}

/* Parses `text` and looks it up in `record`. */
static const msgpack_object *look(const char *text, const msgpack_object *record) {
  sl_path_t p;
  int col;
  if (sl_path_parse(text, &p, &col)) return NULL;
  const msgpack_object *o = sl_path_lookup(&p, record);
  sl_path_free(&p);
  return o;
}

static bool is_str_obj(const msgpack_object *o, const char *s) {
  return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
         memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static void parsing(void) {
  sl_path_t p;
  int col = -1;
  is_int(sl_path_parse("a.b.c", &p, &col), 0, "a.b.c parses");
  is_int(p.n, 3, "three steps");
  ok(p.n == 3 && strcmp(p.steps[0].key, "a") == 0 && strcmp(p.steps[2].key, "c") == 0,
     "steps are the names in order");
  sl_path_free(&p);
  is_int(p.n, 0, "free zeroes the path");
  ok(p.steps == NULL, "free clears the steps");
  sl_path_free(&p); /* a zeroed path is accepted */

  is_int(sl_path_parse("req.headers[\"x-id\"][2]", &p, &col), 0, "mixed path parses");
  ok(p.n == 4 && strcmp(p.steps[2].key, "x-id") == 0 && p.steps[2].len == 4,
     "quoted key step holds the unquoted key");
  ok(p.n == 4 && p.steps[3].key == NULL && p.steps[3].index == 2, "index step");
  sl_path_free(&p);

  is_int(sl_path_parse("a[\"q\\\"k\\\\\"]", &p, &col), 0, "escaped quote and backslash parse");
  ok(p.n == 2 && strcmp(p.steps[1].key, "q\"k\\") == 0, "escapes decoded: q\"k\\");
  sl_path_free(&p);

  is_int(sl_path_parse("[\"a\\tb\\n\"]", &p, &col), 0, "control escapes");
  ok(p.n == 1 && strcmp(p.steps[0].key, "a\tb\n") == 0, "\\t and \\n decoded");
  sl_path_free(&p);

  is_int(sl_path_parse("[\"\\d+\"]", &p, &col), 0, "unknown escape accepted");
  ok(p.n == 1 && strcmp(p.steps[0].key, "\\d+") == 0, "unknown escape kept as written");
  sl_path_free(&p);

  is_int(sl_path_parse("[\"\"]", &p, &col), 0, "empty key");
  ok(p.n == 1 && p.steps[0].len == 0 && p.steps[0].key[0] == 0, "empty key step");
  sl_path_free(&p);

  is_int(sl_path_parse("[\"@timestamp\"]", &p, &col), 0, "a path may start with a bracket");
  ok(p.n == 1 && strcmp(p.steps[0].key, "@timestamp") == 0, "first step is the quoted key");
  sl_path_free(&p);
  is_int(sl_path_parse("[0][1]", &p, &col), 0, "a path of indexes");
  ok(p.n == 2 && p.steps[1].index == 1, "second index");
  sl_path_free(&p);
  is_int(sl_path_parse("a[4294967295]", &p, &col), 0, "largest index");
  ok(p.n == 2 && p.steps[1].index == 4294967295u, "largest index value");
  sl_path_free(&p);
  is_int(sl_path_parse("_x9.Y_", &p, &col), 0, "underscores and digits in names");
  sl_path_free(&p);

  size_t used = 0;
  const char *why = NULL;
  is_int(sl_path_scan("a.b[1] == 3", &used, &p, &col, &why), 0, "scan reads a prefix");
  is_int(used, 6, "scan stops before the space");
  sl_path_free(&p);
  is_int(sl_path_scan("a-b", &used, &p, &col, &why), 0, "scan stops at '-'");
  is_int(used, 1, "'-' is not part of a name");
  sl_path_free(&p);
}

/* Each malformed path: the column and, through sl_path_scan, the reason. */
static void bad(const char *text, int want_col, const char *want_why) {
  sl_path_t p = {(sl_path_step_t *)&p, 99};
  int col = -1;
  is_int(sl_path_parse(text, &p, &col), SL_ESYNTAX, "'%s' rejected", text);
  is_int(col, want_col, "'%s' error column", text);
  ok(p.n == 0 && p.steps == NULL, "'%s' leaves the path zeroed", text);
  if (want_why) {
    size_t used;
    const char *why = NULL;
    int r = sl_path_scan(text, &used, &p, &col, &why);
    ok(r == SL_ESYNTAX && why && strstr(why, want_why), "'%s' reason mentions %s (got %s)", text,
       want_why, why ? why : "none");
  }
}

static void errors(void) {
  bad("", 1, "expected a field name");
  bad(".a", 1, "expected a field name");
  bad("1a", 1, "expected a field name");
  bad("a.", 3, "after \".\"");
  bad("a..b", 3, "after \".\"");
  bad("a.0", 3, "[0]");
  bad("a[", 3, "array index or a quoted key");
  bad("a[0", 4, "expected \"]\"");
  bad("a[x]", 3, "array index or a quoted key");
  bad("a[-1]", 3, "negative array indexes");
  bad("a[\"x", 3, "unterminated string");
  bad("a[\"x\\\"]", 3, "unterminated string");
  bad("a[\"x\"", 6, "expected \"]\"");
  bad("a[ 0]", 3, NULL);
  bad("a[4294967296]", 3, "too large");
  bad("a b", 2, NULL);
  bad("a.b-c", 4, NULL);
  bad("a.b ", 4, NULL);
}

static void format(void) {
  is_str(fmt("a.b.c"), "a.b.c", "plain names");
  is_str(fmt("req[\"path\"]"), "req.path", "quoted name formats bare");
  is_str(fmt("req.headers[\"x-id\"][2]"), "req.headers[\"x-id\"][2]", "odd key and index");
  is_str(fmt("[\"@timestamp\"]"), "[\"@timestamp\"]", "odd first key");
  is_str(fmt("[3].a"), "[3].a", "index first");
  is_str(fmt("a[\"0\"]"), "a[\"0\"]", "digit key stays quoted");
  is_str(fmt("a[\"\"]"), "a[\"\"]", "empty key quoted");
  is_str(fmt("a[\"q\\\"k\\\\\"]"), "a[\"q\\\"k\\\\\"]", "quote and backslash escaped");
  is_str(fmt("a[\"x\\ny\\t\"]"), "a[\"x\\ny\\t\"]", "control characters escaped");
  is_str(fmt("a[\"\\d\"]"), "a[\"\\\\d\"]", "a kept backslash formats escaped");
  is_str(fmt("a[\"h\xc3\xa9\"]"), "a[\"h\xc3\xa9\"]", "non-ASCII key quoted, bytes as is");

  /* Round trip: the canonical text parses to the same steps. */
  const char *texts[] = {"a[\"q\\\"k\\\\\"].b[7][\"x y\"]", "[\"\\d\"]", "_a[\"\\r\"]"};
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    sl_path_t p1, p2;
    int col;
    sl_path_parse(texts[i], &p1, &col);
    sl_buf_t b = {0};
    sl_path_format(&p1, &b);
    sl_buf_putc(&b, 0);
    int r = sl_path_parse(b.data, &p2, &col);
    bool same = r == 0 && p1.n == p2.n;
    for (size_t j = 0; same && j < p1.n; j++) {
      const sl_path_step_t *x = &p1.steps[j], *y = &p2.steps[j];
      same = (x->key == NULL) == (y->key == NULL) &&
             (x->key ? x->len == y->len && memcmp(x->key, y->key, x->len) == 0
                     : x->index == y->index);
    }
    ok(same, "'%s' round-trips through '%s'", texts[i], b.data);
    sl_buf_free(&b);
    sl_path_free(&p1);
    sl_path_free(&p2);
  }
}

static void lookup(void) {
  msgpack_object r = rec(
      "{'req': {'path': '/api', 'headers': {'x-id': ['a', 'b', 'c']}}, 'n': null, "
      "b'bk': 'from bin key', 'q\"k': 1, 7: 'int key', 's': 'str', 'dup': 'first', "
      "'dup': 'second', '': 'empty', 'arr': [[10, 11], {'k': 'in array'}]}");
  ok(is_str_obj(look("req.path", &r), "/api"), "nested map");
  ok(is_str_obj(look("req[\"path\"]", &r), "/api"), "quoted step looks up the same key");
  ok(is_str_obj(look("req.headers[\"x-id\"][2]", &r), "c"), "odd key then index");
  ok(is_str_obj(look("req.headers[\"x-id\"][0]", &r), "a"), "index 0");
  ok(look("req.headers[\"x-id\"][3]", &r) == NULL, "index past the end is missing");
  ok(look("req.nope", &r) == NULL, "missing key");
  ok(look("nope.deeper", &r) == NULL, "missing parent");
  const msgpack_object *n = look("n", &r);
  ok(n && n->type == MSGPACK_OBJECT_NIL, "a null value is present");
  ok(look("n.x", &r) == NULL, "a key into null is missing");
  ok(is_str_obj(look("bk", &r), "from bin key"), "BIN map keys match");
  ok(is_str_obj(look("[\"q\\\"k\"]", &r), "q\"k") == false && look("[\"q\\\"k\"]", &r) &&
         look("[\"q\\\"k\"]", &r)->type == MSGPACK_OBJECT_POSITIVE_INTEGER,
     "escaped quote key matches");
  ok(look("[\"7\"]", &r) == NULL, "integer map keys never match");
  ok(look("s.x", &r) == NULL, "a key into a string is missing");
  ok(look("s[0]", &r) == NULL, "an index into a string is missing");
  ok(look("req[0]", &r) == NULL, "an index into a map is missing");
  ok(look("arr.k", &r) == NULL, "a key into an array is missing");
  ok(is_str_obj(look("dup", &r), "first"), "the first of duplicate keys wins");
  ok(is_str_obj(look("[\"\"]", &r), "empty"), "empty key");
  const msgpack_object *a = look("arr[0][1]", &r);
  ok(a && a->type == MSGPACK_OBJECT_POSITIVE_INTEGER && a->via.u64 == 11, "nested arrays");
  ok(is_str_obj(look("arr[1].k", &r), "in array"), "map inside an array");
  ok(look("req.pat", &r) == NULL && look("req.pathx", &r) == NULL, "prefixes do not match");

  msgpack_object top = rec("[{'a': 1}]");
  ok(look("[0].a", &top) != NULL, "a path into a top-level array");
  ok(look("a", &top) == NULL, "a key into a top-level array is missing");
  sl_path_t p;
  int col;
  sl_path_parse("a", &p, &col);
  ok(sl_path_lookup(&p, NULL) == NULL, "a NULL record is missing");
  sl_path_free(&p);
}

int main(void) {
  parsing();
  errors();
  format();
  lookup();
  rec_cleanup();
  return tap_done();
}
