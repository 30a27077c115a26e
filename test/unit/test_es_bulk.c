/* The elasticsearch sink's pure parts (plugins/elasticsearch/es_bulk.c),
 * compiled in with a fake host of rows: index templates (strftime on the
 * window start in UTC, ${field}s copied as they are, errors), bulk items
 * (action line, _id, create, escaping, the row's JSON as the source),
 * _bulk answers read item by item and their statuses sorted, whole
 * answers sorted, error and `GET /` bodies, gzip round trips, host URLs,
 * and the fuzz entry point on odd inputs. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <sluice/sink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../../plugins/elasticsearch/es_bulk.h"
#include "tap.h"

/* ---- a fake host: a row is its fields, its JSON and its window start ------------- */

typedef struct {
  const char *name;
  sluice_value_t v;
} field_t;

struct sluice_row {
  const field_t *f;
  size_t n;
  int64_t start;
};

static bool h_row_get(const sluice_row_t *row, const char *name, sluice_value_t *v) {
  for (size_t i = 0; i < row->n; i++)
    if (strcmp(row->f[i].name, name) == 0) {
      *v = row->f[i].v;
      return true;
    }
  return false;
}

static int64_t h_window_start(const sluice_row_t *row) {
  return row->start;
}

static const sluice_host_t host = {.row_get = h_row_get, .row_window_start = h_window_start};

#define STR(x) \
  { .type = SLUICE_VALUE_STRING, .s = (x), .len = sizeof(x) - 1 }

static const field_t fields[] = {
    {"job", STR("pv")},
    {"page", STR("home%Y")},
    {"n", {.type = SLUICE_VALUE_INT, .i = 42}},
    {"avg", {.type = SLUICE_VALUE_FLOAT, .f = 0.1}},
    {"up", {.type = SLUICE_VALUE_BOOL, .b = true}},
    {"region", {.type = SLUICE_VALUE_NULL}},
    {"tags", {.type = SLUICE_VALUE_OTHER}},
};
/* 2023-11-14T23:59:59.500Z */
static const sluice_row_t row = {fields, sizeof fields / sizeof *fields, 1700006399500};
static const sluice_row_t late = {fields, sizeof fields / sizeof *fields, 0};

static const char *render(const char *tmpl, const sluice_row_t *r, char *why, size_t whylen) {
  static char out[512];
  es_index_t *t;
  if (es_index_compile(tmpl, &t, why, whylen)) return NULL;
  pt_buf_t b = {0};
  int rc = es_index_render(t, &host, r, &b, why, whylen);
  es_index_free(t);
  if (rc) {
    pt_buf_free(&b);
    return NULL;
  }
  snprintf(out, sizeof out, "%.*s", (int)b.len, b.p);
  pt_buf_free(&b);
  return out;
}

static void test_index(void) {
  char why[256] = "";
  is_str(render("sluice-%Y.%m.%d", &row, why, sizeof why), "sluice-2023.11.14",
         "strftime on the window start, in UTC");
  is_str(render("${job}-%Y.%m.%d-%H", &row, why, sizeof why), "pv-2023.11.14-23",
         "a field and a date");
  is_str(render("x-${page}", &row, why, sizeof why), "x-home%Y",
         "a field's value is not formatted");
  is_str(render("${n}-${avg}-${up}", &row, why, sizeof why), "42-0.1-true",
         "numbers and booleans as text");
  is_str(render("plain", &row, why, sizeof why), "plain", "no placeholder, no '%%'");
  is_str(render("100%%-%Y", &row, why, sizeof why), "100%-2023", "%%%% is a '%%'");
  is_str(render("late-%Y.%m.%d", &late, why, sizeof why), "late-1970.01.01",
         "a late record: window start 0");
  ok(!render("m-${region}", &row, why, sizeof why) && strstr(why, "\"region\" is null"),
     "a null field is refused: %s", why);
  ok(!render("m-${tags}", &row, why, sizeof why) && strstr(why, "map or an array"),
     "a map field is refused: %s", why);
  ok(!render("m-${nope}", &row, why, sizeof why) && strstr(why, "no field \"nope\""),
     "a missing field is refused: %s", why);
  es_index_t *t = NULL;
  ok(es_index_compile("a-${x", &t, why, sizeof why) && strstr(why, "unclosed"), "unclosed ${: %s",
     why);
  ok(es_index_compile("a-${}", &t, why, sizeof why) && strstr(why, "empty"), "empty ${}: %s", why);
  ok(es_index_compile("a-%", &t, why, sizeof why) && strstr(why, "'%' ends"), "a trailing %%: %s",
     why);
  ok(es_index_compile("a-%${job}", &t, why, sizeof why), "a '%%' before a field");
  ok(es_index_compile("", &t, why, sizeof why) && strstr(why, "empty"), "an empty index: %s", why);
  ok(!t, "no template made on error");
}

static const char *item(int op, const char *index, const char *id, const char *doc) {
  static char out[1024];
  char why[128];
  pt_buf_t b = {0};
  pt_buf_append(&b, "x", 1); /* appended after what is there */
  if (es_bulk_item(op, index, strlen(index), id, doc, strlen(doc), &b, why, sizeof why)) {
    snprintf(out, sizeof out, "(error: %s; len %zu)", why, b.len);
  } else {
    snprintf(out, sizeof out, "%.*s", (int)b.len, b.p);
  }
  pt_buf_free(&b);
  return out;
}

static void test_items(void) {
  is_str(
      item(ES_OP_INDEX, "sluice-2023.11.14", "00000000000000aa", "{\"n\":1}"),
      "x{\"index\":{\"_index\":\"sluice-2023.11.14\",\"_id\":\"00000000000000aa\"}}\n{\"n\":1}\n",
      "index: action line with _index and _id, then the row's JSON");
  is_str(item(ES_OP_CREATE, "ds", "00000000000000bb", "{}"),
         "x{\"create\":{\"_index\":\"ds\",\"_id\":\"00000000000000bb\"}}\n{}\n", "create");
  is_str(item(ES_OP_INDEX, "a\"b\\c\n", NULL, "{}"),
         "x{\"index\":{\"_index\":\"a\\\"b\\\\c\\n\"}}\n{}\n",
         "no _id when id = false; the index name escaped");
  is_str(item(ES_OP_INDEX, "bad\xff", "1", "{}"),
         "(error: the index name \"bad\xff\" is not valid UTF-8; len 1)",
         "an index that is not UTF-8 is refused, the body left as it was");
}

static void test_response(void) {
  char why[256] = "";
  es_item_t it[4] = {{0}};
  const char *ok_body =
      "{\"took\":3,\"errors\":true,\"items\":[{\"index\":{\"_id\":\"a\",\"status\":201}},"
      "{\"index\":{\"status\":429,\"error\":{\"type\":\"es_rejected_execution_exception\","
      "\"reason\":\"busy\"}}},"
      "{\"create\":{\"status\":409,\"error\":{\"type\":\"version_conflict_engine_exception\","
      "\"reason\":\"exists\"}}},"
      "{\"index\":{\"status\":400,\"error\":{\"type\":\"mapper_parsing_exception\",\"reason\":"
      "\"failed to parse\","
      "\"caused_by\":{\"type\":\"number_format_exception\",\"reason\":\"For input string: "
      "\\\"x\\\"\"}}}}]}";
  ok(es_bulk_response(ok_body, strlen(ok_body), 4, it, why, sizeof why) == 0,
     "a _bulk answer of 4 items");
  is_int(it[0].status, 201, "item 0: 201");
  ok(!it[0].error, "item 0: no error");
  is_int(it[1].status, 429, "item 1: 429");
  is_str(it[1].error, "es_rejected_execution_exception: busy", "item 1: type: reason");
  is_int(it[2].status, 409, "item 2: 409");
  is_str(it[3].error,
         "mapper_parsing_exception: failed to parse (caused by number_format_exception: For input "
         "string: \"x\")",
         "item 3: the cause follows");
  es_items_clear(it, 4);
  ok(!it[3].error && !it[3].status, "cleared");
  ok(es_bulk_response(ok_body, strlen(ok_body), 3, it, why, sizeof why) &&
         strstr(why, "4 items for 3"),
     "a count that does not match the documents: %s", why);
  ok(es_bulk_response("<html>", 6, 1, it, why, sizeof why) && strstr(why, "not JSON"),
     "not JSON: %s", why);
  ok(es_bulk_response("{\"errors\":false}", 16, 1, it, why, sizeof why) &&
         strstr(why, "no \"items\""),
     "no items: %s", why);
  const char *filtered =
      "{\"errors\":false,\"items\":[{\"index\":{\"status\":200}},{\"index\":{}}]}";
  ok(es_bulk_response(filtered, strlen(filtered), 2, it, why, sizeof why) == 0 &&
         it[0].status == 200 && it[1].status == 0,
     "filter_path answers; an item without status reads as 0");
  es_items_clear(it, 4);

  is_int(es_item_outcome(200, ES_OP_INDEX), SLUICE_OK, "200 ok");
  is_int(es_item_outcome(201, ES_OP_CREATE), SLUICE_OK, "201 ok");
  is_int(es_item_outcome(409, ES_OP_CREATE), SLUICE_OK, "409 on create: the _id is there, ok");
  is_int(es_item_outcome(409, ES_OP_INDEX), SLUICE_FATAL, "409 on index: fatal");
  is_int(es_item_outcome(429, ES_OP_INDEX), SLUICE_RETRY, "429 retry");
  is_int(es_item_outcome(503, ES_OP_INDEX), SLUICE_RETRY, "503 retry");
  is_int(es_item_outcome(400, ES_OP_INDEX), SLUICE_FATAL, "400 fatal");
  is_int(es_item_outcome(404, ES_OP_INDEX), SLUICE_FATAL,
         "404 (an index that cannot be made) fatal");
  is_int(es_item_outcome(0, ES_OP_INDEX), SLUICE_FATAL, "no status: fatal");
  is_int(es_request_outcome(503), SLUICE_RETRY, "whole request 503: retry");
  is_int(es_request_outcome(429), SLUICE_RETRY, "whole request 429: retry");
  is_int(es_request_outcome(401), SLUICE_RETRY,
         "whole request 401: retry (credentials fixed on the cluster)");
  is_int(es_request_outcome(400), SLUICE_FATAL, "whole request 400: fatal");
  is_int(es_request_outcome(413), SLUICE_FATAL, "whole request 413: fatal");

  char text[256];
  const char *eb =
      "{\"error\":{\"type\":\"cluster_block_exception\",\"reason\":\"blocked\"},\"status\":503}";
  es_error_text(eb, strlen(eb), text, sizeof text);
  is_str(text, "cluster_block_exception: blocked", "error body: type: reason");
  const char *se = "{\"error\":\"Incorrect HTTP method\"}";
  es_error_text(se, strlen(se), text, sizeof text);
  is_str(text, "Incorrect HTTP method", "error body: a string");
  es_error_text("<html>\n<b>502</b>\n", 18, text, sizeof text);
  is_str(text, "<html> <b>502</b>", "error body: not JSON, control characters replaced");

  char ver[64], cl[64];
  const char *root =
      "{\"name\":\"n1\",\"cluster_name\":\"prod\",\"version\":{\"number\":\"8.11.0\"}}";
  ok(es_root_info(root, strlen(root), ver, sizeof ver, cl, sizeof cl) == 0 &&
         !strcmp(ver, "8.11.0") && !strcmp(cl, "prod"),
     "GET /: version and cluster");
  const char *os =
      "{\"cluster_name\":\"c\",\"version\":{\"distribution\":\"opensearch\",\"number\":\"2.11.0\"}"
      "}";
  ok(es_root_info(os, strlen(os), ver, sizeof ver, cl, sizeof cl) == 0 &&
         !strcmp(ver, "opensearch 2.11.0"),
     "GET /: OpenSearch named: %s", ver);
  ok(es_root_info("{}", 2, ver, sizeof ver, cl, sizeof cl) == -1,
     "GET /: no version, not Elasticsearch");
}

static void test_gzip_urls(void) {
  const char *in = "{\"index\":{}}\n{\"a\":1}\n{\"index\":{}}\n{\"a\":1}\n";
  pt_buf_t z = {0};
  ok(es_gzip(in, strlen(in), &z) == 0 && z.len > 10 && (unsigned char)z.p[0] == 0x1f &&
         (unsigned char)z.p[1] == 0x8b,
     "gzip: a gzip header");
  char back[256];
  z_stream s = {0};
  inflateInit2(&s, 16 + 15);
  s.next_in = (Bytef *)z.p;
  s.avail_in = (uInt)z.len;
  s.next_out = (Bytef *)back;
  s.avail_out = sizeof back;
  int r = inflate(&s, Z_FINISH);
  ok(r == Z_STREAM_END && s.total_out == strlen(in) && !memcmp(back, in, strlen(in)),
     "gzip: inflates back");
  inflateEnd(&s);
  pt_buf_free(&z);

  char why[128];
  char *u = es_base_url("es1:9200", why, sizeof why);
  is_str(u, "http://es1:9200", "a bare host gets http://");
  free(u);
  u = es_base_url("https://es.example/prefix//", why, sizeof why);
  is_str(u, "https://es.example/prefix", "https and a path prefix kept, trailing '/' dropped");
  char *b = es_bulk_url(u, "my pipe/1");
  ok(b &&
         strncmp(b, "https://es.example/prefix/_bulk?filter_path=errors,items.*.status,", 66) ==
             0 &&
         strstr(b, "&pipeline=my%20pipe%2F1"),
     "the _bulk URL: filter_path, the pipeline escaped: %s", b);
  free(b);
  free(u);
  ok(!es_base_url("ftp://x", why, sizeof why) && strstr(why, "only http"), "another scheme: %s",
     why);
  ok(!es_base_url("http:///", why, sizeof why) && strstr(why, "names no server"), "no server: %s",
     why);
}

static void test_fuzz_entry(void) {
  const char *inputs[] = {
      "",
      "{",
      "null",
      "[]",
      "{\"items\":{}}",
      "{\"items\":[1,\"x\",null,[],{\"index\":[]},{\"index\":{\"status\":\"200\"}}]}",
      "{\"items\":[{\"index\":{\"status\":-5,\"error\":{\"type\":1,\"reason\":[]}}}]}",
      "{\"items\":[{\"index\":{\"status\":99999999999999,\"error\":{\"caused_by\":7}}}]}",
      "{\"error\":{\"type\":\"t\"},\"version\":{\"number\":5}}"};
  for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++)
    es_bulk_response_fuzz((const uint8_t *)inputs[i], strlen(inputs[i]));
  const uint8_t nul[] = {'{', 0, '}'};
  es_bulk_response_fuzz(nul, sizeof nul);
  ok(1, "the fuzz entry point survives odd answers");
}

int main(void) {
  test_index();
  test_items();
  test_response();
  test_gzip_urls();
  test_fuzz_entry();
  return tap_done();
}
