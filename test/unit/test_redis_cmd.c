/* The redis sink's pure parts (plugins/redis/redis_cmd.c, redis_guard.c),
 * compiled in with a fake host of rows: key templates and their errors,
 * values as Redis text, each mode's commands argument by argument, JSON
 * members for map values, error replies sorted into RETRY and FATAL, auth
 * errors recognised, and the guard's verdicts over the orders the host's
 * retries can take. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <math.h>
#include <sluice/sink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/redis/redis_cmd.h"
#include "../../plugins/redis/redis_guard.h"
#include "tap.h"

/* ---- a fake host: a row is a list of fields and its JSON ------------------------- */

typedef struct {
  const char *name;
  sluice_value_t v;
} field_t;

struct sluice_row {
  const field_t *f;
  size_t n;
  const char *json;
  sluice_row_kind_t kind;
  const char *hll_name, *hll; /* one redis_hll aggregate, its bytes a string here */
};

static bool h_row_get(const sluice_row_t *row, const char *name, sluice_value_t *v) {
  for (size_t i = 0; i < row->n; i++)
    if (strcmp(row->f[i].name, name) == 0) {
      *v = row->f[i].v;
      return true;
    }
  return false;
}

static size_t h_row_nfields(const sluice_row_t *row) {
  return row->n;
}

static const char *h_row_field(const sluice_row_t *row, size_t i, sluice_value_t *v) {
  if (i >= row->n) return NULL;
  *v = row->f[i].v;
  return row->f[i].name;
}

static const char *h_row_json(const sluice_row_t *row, size_t *len) {
  *len = strlen(row->json);
  return row->json;
}

static sluice_row_kind_t h_row_kind(const sluice_row_t *row) {
  return row->kind;
}

static const void *h_row_hll(const sluice_row_t *row, const char *name, size_t *len) {
  if (!row->hll_name || strcmp(row->hll_name, name)) return NULL;
  *len = strlen(row->hll);
  return row->hll;
}

static const sluice_host_t host = {.row_get = h_row_get,
                                   .row_nfields = h_row_nfields,
                                   .row_field = h_row_field,
                                   .row_json = h_row_json,
                                   .row_kind = h_row_kind,
                                   .row_hll = h_row_hll};

#define STR(x) \
  { .type = SLUICE_VALUE_STRING, .s = (x), .len = sizeof(x) - 1 }
#define INT(x) \
  { .type = SLUICE_VALUE_INT, .i = (x) }
#define FLT(x) \
  { .type = SLUICE_VALUE_FLOAT, .f = (x) }
#define BOOL(x) \
  { .type = SLUICE_VALUE_BOOL, .b = (x) }
#define NUL \
  { .type = SLUICE_VALUE_NULL }
#define OTHER \
  { .type = SLUICE_VALUE_OTHER }

static const field_t fields[] = {
    {"id", STR("00000000000000aa")},
    {"window_start", STR("2023-11-14T22:13:00.000Z")},
    {"page", STR("home")},
    {"region", NUL},
    {"n", INT(42)},
    {"avg", FLT(0.1)},
    {"up", BOOL(true)},
    {"tags", OTHER},
};
static const sluice_row_t row = {
    fields, sizeof fields / sizeof *fields,
    "{\"id\":\"00000000000000aa\",\"window_start\":\"2023-11-14T22:13:00.000Z\",\"page\":\"home\","
    "\"region\":null,\"n\":42,\"avg\":0.1,\"up\":true,\"tags\":{\"a\":[1,\"}\\\"\"],\"b\":{}}}",
    SLUICE_ROW_FINAL, NULL, NULL};

/* Command i of c as one line, decoded from its RESP: arguments separated
 * by '|' (a NUL shown as '0'); "(bad resp)" when the encoding is wrong. */
static const char *cmd_text(rs_cmds_t *c, size_t i) {
  static char out[1024];
  pt_buf_t b = {0};
  if (rs_cmds_resp(c, i, &b)) return "(error)";
  const char *p = b.p, *end = b.p + b.len;
  size_t n = 0, argc = 0;
  if (sscanf(p, "*%zu\r\n", &argc) != 1) goto bad;
  p = strchr(p, '\n') + 1;
  for (size_t k = 0; k < argc; k++) {
    size_t len;
    if (p >= end || sscanf(p, "$%zu\r\n", &len) != 1) goto bad;
    p = strchr(p, '\n') + 1;
    if (p + len + 2 > end || p[len] != '\r' || p[len + 1] != '\n') goto bad;
    if (k) out[n++] = '|';
    for (size_t j = 0; j < len && n < sizeof out - 2; j++) out[n++] = p[j] ? p[j] : '0';
    p += len + 2;
  }
  if (p != end) goto bad;
  out[n] = '\0';
  pt_buf_free(&b);
  return out;
bad:
  pt_buf_free(&b);
  return "(bad resp)";
}

static const char *render(const char *tmpl, char *why, size_t whylen) {
  static char out[256];
  pt_tmpl_t *t;
  if (pt_tmpl_compile(tmpl, "key", &t, why, whylen)) return NULL;
  pt_buf_t b = {0};
  int r = pt_tmpl_render(t, &host, &row, &b, why, whylen);
  snprintf(out, sizeof out, "%.*s", (int)b.len, b.p ? b.p : "");
  pt_buf_free(&b);
  pt_tmpl_free(t);
  return r ? NULL : out;
}

int main(void) {
  char why[256];

  /* Templates. */
  is_str(render("pv:${page}", why, sizeof why), "pv:home", "a field in a template");
  is_str(render("${page}:${n}:${avg}:${up}:x", why, sizeof why), "home:42:0.1:true:x",
         "strings, integers, floats (shortest), bools");
  is_str(render("fixed", why, sizeof why), "fixed", "a template without fields");
  is_str(render("e:${window_start}", why, sizeof why), "e:2023-11-14T22:13:00.000Z",
         "window_start as RFC 3339");
  ok(!render("k:${nope}", why, sizeof why) &&
         strstr(why, "key \"k:${nope}\": the row has no field \"nope\""),
     "a missing field names the template and the field (%s)", why);
  ok(!render("k:${region}", why, sizeof why) && strstr(why, "field \"region\" is null"),
     "a null field (%s)", why);
  ok(!render("k:${tags}", why, sizeof why) && strstr(why, "a map or an array"), "a map field (%s)",
     why);
  ok(!render("k:${page", why, sizeof why) && strstr(why, "unclosed"), "an unclosed ${ (%s)", why);
  ok(!render("k:${}", why, sizeof why) && strstr(why, "empty"), "an empty ${} (%s)", why);
  ok(!render("k:${a${b}}", why, sizeof why) && strstr(why, "cannot hold"), "a nested ${ (%s)", why);

  /* Floats: the row's JSON text when it has the field, else the shortest
   * %g form that reads back. */
  field_t ff[] = {{"a", FLT(293.92857142857144)},
                  {"b", FLT(0.30000000000000004)},
                  {"c", FLT(1e21)},
                  {"d", FLT(-2.5)},
                  {"e", FLT(0.1)}};
  sluice_row_t frow = {ff, 5, "{\"e\":1e-1}", SLUICE_ROW_FINAL, NULL, NULL};
  pt_buf_t fb = {0};
  for (size_t i = 0; i < 5; i++) {
    rs_value_text(&host, &frow, ff[i].name, &ff[i].v, &fb);
    pt_buf_append(&fb, " ", 1);
  }
  pt_buf_append(&fb, "", 1);
  is_str(fb.p, "293.92857142857144 0.30000000000000004 1e+21 -2.5 1e-1 ",
         "floats: shortest digits that read back, or the JSON's own text");
  pt_buf_free(&fb);

  /* JSON members (for map and array values). */
  size_t ml = 0;
  const char *m = rs_json_member(row.json, strlen(row.json), "tags", &ml);
  ok(m && ml == strlen("{\"a\":[1,\"}\\\"\"],\"b\":{}}") &&
         strncmp(m, "{\"a\":[1,\"}\\\"\"],\"b\":{}}", ml) == 0,
     "a map member's JSON, past a string holding a brace and a quote");
  m = rs_json_member(row.json, strlen(row.json), "avg", &ml);
  ok(m && ml == 3 && strncmp(m, "0.1", 3) == 0, "a number member");
  ok(!rs_json_member(row.json, strlen(row.json), "nope", &ml), "no such member");
  const char *esc = "{\"a\\\"b\":1,\"x\":2}";
  m = rs_json_member(esc, strlen(esc), "a\"b", &ml);
  ok(m && ml == 1 && *m == '1', "an escaped member name");

  /* Commands. */
  pt_tmpl_t *key, *member;
  pt_tmpl_compile("pv:${page}", "key", &key, why, sizeof why);
  pt_tmpl_compile("${page}", "member", &member, why, sizeof why);
  rs_cmds_t c = {0};
  rs_spec_t spec = {.mode = RS_MODE_SET, .key = key};
  ok(rs_row_commands(&spec, &host, &row, &c, why, sizeof why) == 0 && c.ncmds == 1,
     "set: one command");
  char want[1024];
  snprintf(want, sizeof want, "SET|pv:home|%s", row.json);
  is_str(cmd_text(&c, 0), want, "set: SET key json");
  spec.ttl_ms = 60000;
  rs_row_commands(&spec, &host, &row, &c, why, sizeof why);
  snprintf(want, sizeof want, "SET|pv:home|%s|PX|60000", row.json);
  is_str(cmd_text(&c, 0), want, "set with a ttl: SET key json PX ms");
  ok(c.ident_len == 7 && memcmp(c.text.p + c.ident_off, "pv:home", 7) == 0,
     "set: the key is what it overwrites");

  spec.mode = RS_MODE_HASH;
  ok(rs_row_commands(&spec, &host, &row, &c, why, sizeof why) == 0 && c.ncmds == 3,
     "hash: three commands");
  is_str(cmd_text(&c, 0),
         "HSET|pv:home|id|00000000000000aa|window_start|2023-11-14T22:13:00.000Z|page|home|n|42|"
         "avg|0.1|up|true|"
         "tags|{\"a\":[1,\"}\\\"\"],\"b\":{}}",
         "hash: HSET of every non-null field (a map as its JSON)");
  is_str(cmd_text(&c, 1), "HDEL|pv:home|region", "hash: HDEL of the null fields");
  is_str(cmd_text(&c, 2), "PEXPIRE|pv:home|60000", "hash: PEXPIRE for the ttl");

  spec = (rs_spec_t){.mode = RS_MODE_ZADD, .key = key, .member = member, .score_field = "avg"};
  ok(rs_row_commands(&spec, &host, &row, &c, why, sizeof why) == 0 && c.ncmds == 1,
     "zadd: one command");
  is_str(cmd_text(&c, 0), "ZADD|pv:home|0.1|home", "zadd: ZADD key score member");
  ok(c.ident_len == 12 && memcmp(c.text.p + c.ident_off, "pv:home\0home", 12) == 0,
     "zadd: key and member are what it overwrites");
  spec.score_field = "page";
  ok(rs_row_commands(&spec, &host, &row, &c, why, sizeof why) && strstr(why, "not a number"),
     "zadd: a string score is refused (%s)", why);
  spec.score_field = "nope";
  ok(rs_row_commands(&spec, &host, &row, &c, why, sizeof why) && strstr(why, "no field \"nope\""),
     "zadd: a missing score field is refused (%s)", why);
  field_t nanf[] = {{"page", STR("p")}, {"s", FLT(NAN)}};
  sluice_row_t nanrow = {nanf, 2, "{}", SLUICE_ROW_FINAL, NULL, NULL};
  spec.score_field = "s";
  ok(rs_row_commands(&spec, &host, &nanrow, &c, why, sizeof why) != 0,
     "zadd: a NaN score is refused");

  /* HyperLogLogs: SET <key>:<field> after the mode's commands. */
  sluice_row_t hrow = row;
  hrow.hll_name = "visitors";
  hrow.hll = "HYLL-bytes";
  char *one[] = {"visitors"}, *two[] = {"visitors", "buyers"};
  spec = (rs_spec_t){.mode = RS_MODE_SET, .key = key, .ttl_ms = 5000, .hll_fields = one, .n_hll = 1};
  ok(rs_row_commands(&spec, &host, &hrow, &c, why, sizeof why) == 0 && c.ncmds == 2, "hll_fields: two commands");
  snprintf(want, sizeof want, "SET|pv:home|%s|PX|5000", row.json);
  is_str(cmd_text(&c, 0), want, "hll_fields: the row's SET first");
  is_str(cmd_text(&c, 1), "SET|pv:home:visitors|HYLL-bytes|PX|5000", "hll_fields: SET <key>:<field> hll PX ttl");
  ok(c.ident_len == 7 && memcmp(c.text.p + c.ident_off, "pv:home", 7) == 0,
     "hll_fields: the row's key still identifies what it overwrites");
  spec.hll_fields = two;
  spec.n_hll = 2;
  ok(rs_row_commands(&spec, &host, &hrow, &c, why, sizeof why) && strstr(why, "no redis_hll aggregate \"buyers\""),
     "hll_fields: a row without that redis_hll aggregate is refused (%s)", why);
  hrow.kind = SLUICE_ROW_LATE;
  ok(rs_row_commands(&spec, &host, &hrow, &c, why, sizeof why) == 0 && c.ncmds == 1,
     "hll_fields: a late record is written without HyperLogLogs");
  rs_cmds_free(&c);
  pt_tmpl_free(key);
  pt_tmpl_free(member);

  /* Replies. */
#define CLASSIFY(s) rs_classify_error(s, strlen(s))
  is_int(CLASSIFY("WRONGTYPE Operation against a key holding the wrong kind of value"),
         SLUICE_FATAL, "WRONGTYPE");
  is_int(CLASSIFY("ERR syntax error"), SLUICE_FATAL, "ERR");
  is_int(CLASSIFY("NOPERM this user has no permissions"), SLUICE_FATAL, "NOPERM");
  is_int(CLASSIFY("LOADING Redis is loading the dataset in memory"), SLUICE_RETRY, "LOADING");
  is_int(CLASSIFY("BUSY Redis is busy running a script."), SLUICE_RETRY, "BUSY");
  is_int(CLASSIFY("BUSYKEY Target key name already exists."), SLUICE_FATAL, "BUSYKEY is not BUSY");
  is_int(CLASSIFY("OOM command not allowed when used memory > 'maxmemory'."), SLUICE_RETRY, "OOM");
  is_int(CLASSIFY("READONLY You can't write against a read only replica."), SLUICE_RETRY,
         "READONLY");
  is_int(CLASSIFY("MISCONF Redis is configured to save RDB snapshots"), SLUICE_RETRY, "MISCONF");
  is_int(CLASSIFY("TRYAGAIN"), SLUICE_RETRY, "a bare TRYAGAIN");
#define AUTH(s) rs_is_auth_error(s, strlen(s))
  ok(AUTH("WRONGPASS invalid username-password pair or user is disabled."),
     "WRONGPASS is an auth error");
  ok(AUTH("NOAUTH Authentication required."), "NOAUTH is an auth error");
  ok(AUTH("ERR invalid password"), "invalid password is an auth error");
  ok(!AUTH("ERR DB index is out of range"), "a bad db is not");

  /* The guard: rows A (place 1) and B (place 5) of one key, retried in
   * the orders the host's timers can take. */
  rs_guard_t *g = rs_guard_new(100);
  uint64_t seq = 99;
  is_int(rs_guard_check(g, "k", 1, 1, 11, &seq), RS_GUARD_FRESH, "nothing failed: fresh");
  is_int(seq, 99, "a fresh row keeps its place");
  ok(rs_guard_failed(g, "k", 1, 1, 11, 1, 0) == 0 && rs_guard_failed(g, "k", 1, 2, 22, 5, 0) == 0,
     "A and B failed");
  ok(rs_guard_watches(g, "k", 1) && !rs_guard_watches(g, "j", 1), "the guard watches k only");
  is_int(rs_guard_check(g, "k", 1, 2, 22, &seq), RS_GUARD_RETRY, "B comes back first: written");
  is_int(seq, 5, "B keeps its first place");
  rs_guard_written(g, "k", 1, 5);
  is_int(rs_guard_check(g, "k", 1, 1, 11, &seq), RS_GUARD_STALE, "then A: stale, not written");
  ok(!rs_guard_watches(g, "k", 1) && rs_guard_records(g) == 0, "nothing left");

  rs_guard_failed(g, "k", 1, 1, 11, 1, 0);
  rs_guard_failed(g, "k", 1, 2, 22, 5, 0);
  is_int(rs_guard_check(g, "k", 1, 1, 11, &seq), RS_GUARD_RETRY, "A comes back first: written");
  rs_guard_written(g, "k", 1, 1);
  is_int(rs_guard_check(g, "k", 1, 2, 22, &seq), RS_GUARD_RETRY, "then B: written too");
  rs_guard_written(g, "k", 1, 5);

  rs_guard_failed(g, "k", 1, 1, 11, 1, 0);
  rs_guard_written(g, "k", 1, 7); /* a fresh row C written while A waits */
  is_int(rs_guard_check(g, "k", 1, 1, 11, &seq), RS_GUARD_STALE,
         "A after a fresh newer row: stale");
  rs_guard_failed(g, "k", 1, 1, 11, 8, 0);
  is_int(rs_guard_check(g, "k", 1, 1, 99, &seq), RS_GUARD_FRESH,
         "the same id with other content (an early row, then the final one) is a new row");
  is_int(rs_guard_check(g, "k", 1, 1, 11, &seq), RS_GUARD_RETRY,
         "the waiting one still is a retry");

  for (uint64_t i = 0; i < 100; i++) rs_guard_failed(g, "x", 1, i, i, i + 10, 1000);
  ok(rs_guard_failed(g, "y", 1, 1, 1, 1, 2000) == -1, "a full guard refuses more");
  ok(rs_guard_failed(g, "y", 1, 1, 1, 1, 1000 + 11 * 60 * 1000) == 0 && rs_guard_records(g) == 1,
     "rows waiting over 10 minutes (given up by the host) are forgotten when full");
  for (int i = 0; i < 1000; i++) {
    char k[16];
    snprintf(k, sizeof k, "key%d", i);
    rs_guard_failed(g, k, strlen(k), 1, 1, 1, 1000 + 11 * 60 * 1000);
  }
  ok(rs_guard_watches(g, "y", 1), "the table grows and finds its keys");
  rs_guard_free(g);
  return tap_done();
}
