/* The jobs engine: compiling (errors name the option and column), feeding
 * and closing tumbling and session windows, partials per partition merged
 * at close and dropped on revoke, lateness, max_keys, processing time,
 * the row's JSON and id. */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/engine.h"
#include "jobs/watermark.h"
#include "tap.h"

#define S (INT64_C(1000000000))

static char *gb_items[2];
static sl_kv_t agg_items[3];

static sl_job_conf_t conf(const char *where, const char *key, int type, const char *agg) {
  sl_job_conf_t c = {0};
  c.name = "j";
  c.where = (char *)where;
  gb_items[0] = (char *)key;
  c.group_by = (sl_str_list_t){gb_items, key ? 1 : 0};
  c.window.type = type;
  if (type == 2)
    c.window.gap_ns = 10 * S;
  else
    c.window.size_ns = 10 * S;
  agg_items[0] = (sl_kv_t){.key = "n", .value = "count()"};
  agg_items[1] = (sl_kv_t){.key = "s", .value = (char *)(agg ? agg : "sum(v)")};
  c.aggregates = (sl_kv_list_t){agg_items, 2};
  c.max_keys = 100;
  c.idle_timeout_ns = 30 * S;
  return c;
}

/* A record {"k": k, "v": v}; its strings point into a buffer kept until
 * the end. */
static msgpack_zone zone;
static char *kept[16];
static int n_kept;
static msgpack_object rec(const char *k, int64_t v) {
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 2);
  msgpack_pack_str_with_body(&pk, "k", 1);
  msgpack_pack_str_with_body(&pk, k, strlen(k));
  msgpack_pack_str_with_body(&pk, "v", 1);
  msgpack_pack_int64(&pk, v);
  msgpack_object o;
  size_t off = 0;
  msgpack_unpack(sb.data, sb.size, &off, &zone, &o);
  kept[n_kept++] = msgpack_sbuffer_release(&sb);
  return o;
}

typedef struct {
  int n;
  char json[8][512];
} rows_t;

static void on_row(const sl_job_row_t *row, void *arg) {
  rows_t *r = arg;
  sl_buf_t b = {0};
  if (r->n < 8 && !sl_job_row_to_json(row, &b)) {
    memcpy(r->json[r->n], b.data, b.len < 511 ? b.len : 511);
    r->json[r->n][b.len < 511 ? b.len : 511] = 0;
  }
  r->n++;
  sl_buf_free(&b);
}

int main(void) {
  msgpack_zone_init(&zone, 4096);
  sl_job_t *job = NULL;
  sl_job_error_t err;

  sl_job_conf_t c = conf("v >= )", "k", 0, NULL);
  ok(sl_job_new(&c, &job, &err) == SL_ECONFIG && job == NULL, "a bad where does not compile");
  is_str(err.option, "where", "the error names the option");
  ok(err.field == &c.where && strstr(err.msg, "column 6") != NULL, "and the column: %s", err.msg);
  c = conf(NULL, "a..b", 0, NULL);
  ok(sl_job_new(&c, &job, &err) == SL_ECONFIG && !strcmp(err.option, "group_by"), "a bad group_by path: %s",
     err.msg);
  c = conf(NULL, "k", 0, "mean(v)");
  ok(sl_job_new(&c, &job, &err) == SL_ECONFIG && err.entry == &agg_items[1], "an unknown aggregate: %s", err.msg);
  c = conf(NULL, "n", 0, NULL);
  ok(sl_job_new(&c, &job, &err) == SL_ECONFIG && strstr(err.msg, "already"), "a key named like an aggregate: %s",
     err.msg);
  c = conf(NULL, "k", 0, NULL);
  c.window.size_ns = 0;
  ok(sl_job_new(&c, &job, &err) == SL_ECONFIG && !strcmp(err.option, "window"), "a bad window: %s", err.msg);

  /* Tumbling, two partitions: partials merged at close. */
  c = conf("v > 0", "k", 0, NULL);
  ok(sl_job_new(&c, &job, &err) == 0, "a good job compiles");
  rows_t rows = {0};
  msgpack_object a1 = rec("a", 1), a2 = rec("a", 2), b5 = rec("b", 5), neg = rec("a", -1);
  ok(sl_job_feed(job, 0, -1, &a1, 1000, 1000) == 0, "feed p0");
  ok(sl_job_feed(job, 1, -1, &a2, 2000, 1000) == 0, "feed p1");
  sl_job_feed(job, 1, -1, &b5, 3000, 1000);
  sl_job_feed(job, 0, -1, &neg, 3000, 1000);
  sl_job_stats_t st;
  sl_job_stats(job, &st);
  is_int(st.filtered, 1, "where filtered one");
  is_int(st.state_keys, 2, "two (window, key) cells");
  ok(st.state_bytes > 0, "state bytes counted");
  sl_job_advance(job, 1000, on_row, &rows);
  is_int(rows.n, 0, "nothing closes before the watermark passes the end");
  sl_job_feed(job, 0, -1, &a1, 10500, 1000);
  sl_job_advance(job, 1000, on_row, &rows);
  is_int(rows.n, 0, "one partition past the end is not enough");
  sl_job_feed(job, 1, -1, &a1, 10000, 1000);
  sl_job_advance(job, 1000, on_row, &rows);
  is_int(rows.n, 2, "both past: the window closes, one row per key");
  ok(strstr(rows.json[0], "\"job\":\"j\",\"window_start\":\"1970-01-01T00:00:00.000Z\","
                          "\"window_end\":\"1970-01-01T00:00:10.000Z\",\"k\":\"a\",\"n\":2,\"s\":3}") != NULL,
     "row of a merges both partitions: %s", rows.json[0]);
  ok(strstr(rows.json[1], "\"k\":\"b\",\"n\":1,\"s\":5}") != NULL, "row of b: %s", rows.json[1]);
  ok(!strncmp(rows.json[0], "{\"id\":\"", 7) && rows.json[0][23] == '"', "the id is 16 hex digits");
  sl_job_feed(job, 0, -1, &a1, 5000, 1000);
  sl_job_stats(job, &st);
  is_int(st.late, 1, "a record for the emitted window is late");
  /* Revoke drops partition 1's partial of the open window. */
  sl_job_revoke(job, 1);
  rows.n = 0;
  sl_job_finish(job, on_row, &rows);
  is_int(rows.n, 1, "finish closes the open window");
  ok(strstr(rows.json[0], "\"n\":1,") != NULL, "without the revoked partition's record: %s", rows.json[0]);
  sl_job_free(job);

  /* max_keys. */
  c = conf(NULL, "k", 0, NULL);
  c.max_keys = 1;
  sl_job_new(&c, &job, &err);
  sl_job_feed(job, 0, -1, &a1, 1000, 0);
  sl_job_feed(job, 0, -1, &b5, 1000, 0);
  sl_job_stats(job, &st);
  is_int(st.keys_dropped, 1, "a key beyond max_keys is dropped and counted");
  rows.n = 0;
  sl_job_finish(job, on_row, &rows);
  is_int(rows.n, 1, "only the kept key has a row");
  sl_job_free(job);

  /* Sessions: two events 5 s apart share a session, a third 30 s later opens
   * another; processing time uses now. */
  c = conf(NULL, "k", 2, NULL);
  c.time = 1;
  sl_job_new(&c, &job, &err);
  rows.n = 0;
  sl_job_feed(job, 0, -1, &a1, 0, 1000);
  sl_job_advance(job, 1000, on_row, &rows);
  sl_job_feed(job, 0, -1, &a2, 0, 6000);
  sl_job_advance(job, 6000, on_row, &rows);
  is_int(rows.n, 0, "the session is open");
  sl_job_advance(job, 16000, on_row, &rows);
  is_int(rows.n, 1, "processing time closes it at last event + gap");
  ok(strstr(rows.json[0], "\"window_start\":\"1970-01-01T00:00:01.000Z\",\"window_end\":\"1970-01-01T00:00:16.000Z\"") &&
         strstr(rows.json[0], "\"n\":2,\"s\":3}"),
     "one session of both events: %s", rows.json[0]);
  sl_job_free(job);

  msgpack_zone_destroy(&zone);
  for (int i = 0; i < n_kept; i++) free(kept[i]);
  return tap_done();
}
