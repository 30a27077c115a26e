/* The jobs engine: compiling (errors name the option and column), feeding
 * and closing tumbling and session windows, partials per partition merged
 * at close and dropped on revoke, lateness, max_keys, processing time,
 * the row's JSON and id; checkpoints (per partition, the watermark W and
 * the offset a restart must read again, through emission, confirmation,
 * filtering, lateness, revocation and the session guard), restarts and
 * restarts of restarts from a checkpoint compared row by row with the
 * uninterrupted run, rebalances (a partition taken over with an older
 * commit is rebuilt, others keep their floors), and early rows (peek). */
#include <msgpack.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
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
static char *kept[1024];
static int n_kept;
static msgpack_object rec(const char *k, int64_t v) {
  if (n_kept == (int)(sizeof kept / sizeof *kept)) abort(); /* a bug in the test */
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

/* ---- checkpoints ----------------------------------------------------------- */

#define MSNS (INT64_C(1000000))
#define NONE SL_WATERMARK_NONE
/* Offsets asked of sl_job_checkpoint: partitions 0 and 1, and 2 that is
 * never fed (always -1). */
#define NP 3

/* A job on key k with count() as n and sum(v) as s; durations in ms. */
static sl_job_conf_t wconf(int type, int64_t size_ms, int64_t advance_ms, int64_t gap_ms, int64_t lateness_ms,
                           const char *where) {
  sl_job_conf_t c = conf(where, "k", type, NULL);
  c.window.size_ns = size_ms * MSNS;
  c.window.advance_ns = advance_ms * MSNS;
  c.window.gap_ns = gap_ms * MSNS;
  c.allowed_lateness_ns = lateness_ms * MSNS;
  return c;
}

static sl_job_t *new_job(const sl_job_conf_t *c) {
  sl_job_t *job = NULL;
  sl_job_error_t err;
  if (sl_job_new(c, &job, &err)) {
    printf("Bail out! job does not compile: %s: %s\n", err.option, err.msg);
    exit(1);
  }
  return job;
}

/* Feeds {"k": k, "v": v} at processing time 0 (no partition ever idles). */
static int feed(sl_job_t *job, int p, int64_t off, const char *k, int64_t v, int64_t t) {
  msgpack_object o = rec(k, v);
  return sl_job_feed(job, p, off, &o, t, 0);
}

/* Rows kept whole: the key and the first two aggregates (n, s) for the
 * checks by hand, the JSON for comparing runs. */
typedef struct {
  uint64_t id, seq; /* seq: the emission's, set once advance returns (0: early) */
  int64_t start, end;
  char key[8];
  int64_t n, s;
  char json[256];
} crow_t;

typedef struct {
  crow_t v[128];
  size_t n;
  bool overflow;
} crows_t;

static void on_crow(const sl_job_row_t *row, void *arg) {
  crows_t *rs = arg;
  if (rs->n == sizeof rs->v / sizeof *rs->v) {
    rs->overflow = true;
    return;
  }
  crow_t *r = &rs->v[rs->n++];
  memset(r, 0, sizeof *r);
  r->id = row->id;
  r->start = row->window_start;
  r->end = row->window_end;
  if (row->n_keys && row->key_values[0].type == MSGPACK_OBJECT_STR) {
    uint32_t len = row->key_values[0].via.str.size;
    if (len >= sizeof r->key) len = sizeof r->key - 1;
    memcpy(r->key, row->key_values[0].via.str.ptr, len);
  }
  r->n = row->n_aggs > 0 && row->agg_values[0].kind == SL_AGG_INT ? row->agg_values[0].u.i : -1;
  r->s = row->n_aggs > 1 && row->agg_values[1].kind == SL_AGG_INT ? row->agg_values[1].u.i : -1;
  sl_buf_t b = {0};
  if (!sl_job_row_to_json(row, &b)) {
    size_t len = b.len < sizeof r->json - 1 ? b.len : sizeof r->json - 1;
    memcpy(r->json, b.data, len);
  }
  sl_buf_free(&b);
}

/* Advances at processing time now and tags the rows with the emission. */
static uint64_t advance(sl_job_t *job, int64_t now, crows_t *rs) {
  size_t before = rs->n;
  uint64_t seq = sl_job_advance(job, now, on_crow, rs);
  for (size_t i = before; i < rs->n; i++) rs->v[i].seq = seq;
  return seq;
}

static uint64_t finish(sl_job_t *job, crows_t *rs) {
  size_t before = rs->n;
  uint64_t seq = sl_job_finish(job, on_crow, rs);
  for (size_t i = before; i < rs->n; i++) rs->v[i].seq = seq;
  return seq;
}

/* Row i is (start, end, key, n, s). */
static bool row_is(const crows_t *rs, size_t i, int64_t start, int64_t end, const char *key, int64_t n, int64_t s) {
  if (i >= rs->n) {
    printf("#   no row %zu (%zu rows)\n", i, rs->n);
    return false;
  }
  const crow_t *r = &rs->v[i];
  bool same = r->start == start && r->end == end && !strcmp(r->key, key) && r->n == n && r->s == s;
  if (!same)
    printf("#   got  [%lld, %lld) %s n=%lld s=%lld\n#   want [%lld, %lld) %s n=%lld s=%lld\n", (long long)r->start,
           (long long)r->end, r->key, (long long)r->n, (long long)r->s, (long long)start, (long long)end, key,
           (long long)n, (long long)s);
  return same;
}

/* The last row of an id: with late_policy = "update" a window's row is
 * emitted again, and the last one is what a sink keeps. */
static const crow_t *row_by_id(const crows_t *rs, uint64_t id) {
  for (size_t i = rs->n; i-- > 0;)
    if (rs->v[i].id == id) return &rs->v[i];
  return NULL;
}

/* Records behind the watermark are part of the test data (late_policy =
 * "update" runs): the uninterrupted run need not be on time. */
static bool late_data;
static uint64_t late_updates; /* by the uninterrupted runs */

/* The last checkpoint: W and offset of partitions 0, 1 and 2 (2 is never
 * fed nor assigned: always NONE and -1). */
static int64_t ck_wms[NP], ck_off[NP];
static int ck_r;

/* Takes a checkpoint into ck_wms, ck_off. */
static void ckpt(sl_job_t *job) {
  for (int i = 0; i < NP; i++) {
    ck_wms[i] = 7; /* every slot must be written */
    ck_off[i] = -7;
  }
  ck_r = sl_job_checkpoint(job, ck_wms, ck_off, NP);
}

/* A watermark as text, NONE spelt out. */
static const char *wm_text(int64_t w, char *buf, size_t len) {
  if (w == NONE) return "NONE";
  snprintf(buf, len, "%lld", (long long)w);
  return buf;
}

/* The last checkpoint was W {w0, w1, NONE}, offsets {o0, o1, -1}. */
static bool ckpt_is(int64_t w0, int64_t w1, int64_t o0, int64_t o1) {
  bool same = ck_r == 0 && ck_wms[0] == w0 && ck_wms[1] == w1 && ck_wms[2] == NONE && ck_off[0] == o0 &&
              ck_off[1] == o1 && ck_off[2] == -1;
  if (!same) {
    char b[5][24];
    printf("#   got  r=%d W {%s, %s, %s} offsets {%lld, %lld, %lld}\n", ck_r, wm_text(ck_wms[0], b[0], 24),
           wm_text(ck_wms[1], b[1], 24), wm_text(ck_wms[2], b[2], 24), (long long)ck_off[0], (long long)ck_off[1],
           (long long)ck_off[2]);
    printf("#   want r=0 W {%s, %s, NONE} offsets {%lld, %lld, -1}\n", wm_text(w0, b[3], 24), wm_text(w1, b[4], 24),
           (long long)o0, (long long)o1);
  }
  return same;
}

static uint64_t emissions(const sl_job_t *job) {
  sl_job_stats_t st;
  sl_job_stats(job, &st);
  return st.emissions;
}

static int64_t job_wm(const sl_job_t *job) {
  sl_job_stats_t st;
  sl_job_stats(job, &st);
  return st.watermark;
}

/* 1 and 2: tumbling 10 s windows, no lateness, two partitions; offsets of
 * partition 0 from 100, of partition 1 from 200.  Both partitions have
 * records in every window closed here, so their W are the same. */
static void test_ckpt_tumbling(void) {
  sl_job_conf_t c = wconf(SL_WINDOW_TUMBLING, 10000, 0, 0, 0, NULL);
  sl_job_t *job = new_job(&c);
  crows_t *rs = calloc(1, sizeof *rs);

  ckpt(job);
  ok(ckpt_is(NONE, NONE, -1, -1), "tumbling: a fresh job: no partition assigned, no W, no offset held");
  /* [0, 10s) gets p0@100 (a:1, 1 s) and p1@200 (a:2, 2 s). */
  is_int(feed(job, 0, 100, "a", 1, 1000), 0, "feed p0@100");
  is_int(feed(job, 1, 200, "a", 2, 2000), 0, "feed p1@200");
  ckpt(job);
  ok(ckpt_is(NONE, NONE, 100, 200),
     "before any advance: W NONE (each partition assigned by its first record, with no watermark), "
     "offsets = first fed");
  /* Watermark min(1 s, 2 s) = 1 s: nothing closes; advance raises both
   * floors to it, and with no emission and no session W is the floor. */
  is_int(advance(job, 0, rs), 0, "advance closes nothing: returns 0");
  ckpt(job);
  ok(ckpt_is(1000, 1000, 100, 200),
     "W = the floors, raised to the job watermark 1000; offsets the open window's first");
  /* p0@101 (b:3, 3 s) into [0, 10s); p1@201 (b:4, 12 s) and p0@102 (a:5,
   * 11 s) into [10s, 20s). */
  feed(job, 0, 101, "b", 3, 3000);
  feed(job, 1, 201, "b", 4, 12000);
  feed(job, 0, 102, "a", 5, 11000);
  ckpt(job);
  ok(ckpt_is(1000, 1000, 100, 200), "later records of the open windows do not move the offsets; W waits for advance");

  /* 2. Watermark min(11 s, 12 s) = 11 s closes [0, 10s): a = 1 + 2 (two
   * partitions), b = 3. */
  uint64_t s1 = advance(job, 0, rs);
  ok(s1 > 0, "the window closes: an emission sequence number (%llu)", (unsigned long long)s1);
  is_int(rs->n, 2, "two rows");
  ok(row_is(rs, 0, 0, 10000, "a", 2, 3) && row_is(rs, 1, 0, 10000, "b", 1, 3), "rows a (n 2, s 3) and b (n 1, s 3)");
  /* Unconfirmed, with records of both partitions: both W < 10000, the
   * closed window's end, and its records (p0@100, p1@200) stay
   * uncommitted. */
  ckpt(job);
  ok(ckpt_is(9999, 9999, 100, 200), "not confirmed: W 9999 (below the end 10000) for both, offsets still 100 and 200");
  is_int(emissions(job), 1, "the emission is kept");
  is_int(advance(job, 0, rs), 0, "an advance that closes nothing returns 0");
  sl_job_confirm(job, s1 + 1000); /* unknown: ignored */
  ckpt(job);
  ok(ckpt_is(9999, 9999, 100, 200), "confirming an unknown seq changes nothing");
  sl_job_confirm(job, s1);
  /* Confirmed: W = the floors, 11000; offsets are the open window [10s,
   * 20s)'s first: p0@102, p1@201. */
  ckpt(job);
  ok(ckpt_is(11000, 11000, 102, 201), "confirmed: W 11000, offsets = the next open window's first (102, 201)");
  is_int(emissions(job), 0, "and the emission is forgotten");

  /* -1 when a partition holds nothing: p1 goes idle (last seen at 0, idle
   * after 30 s), p0@103 (a:6, 25 s) read at 30 s; the watermark is then p0's
   * 25 s and closes [10s, 20s): b = 4 (p1), a = 5 (p0).  The idle p1 is
   * still assigned: its floor is raised to 25000 too. */
  msgpack_object a6 = rec("a", 6);
  is_int(sl_job_feed(job, 0, 103, &a6, 25000, 30000), 0, "feed p0@103 at 30 s");
  size_t n0 = rs->n;
  uint64_t s2 = advance(job, 30000, rs);
  ok(s2 > s1, "p1 idle: [10s, 20s) closes, a later sequence number (%llu)", (unsigned long long)s2);
  ok(rs->n == n0 + 2 && row_is(rs, n0, 10000, 20000, "b", 1, 4) && row_is(rs, n0 + 1, 10000, 20000, "a", 1, 5),
     "rows b (n 1, s 4) and a (n 1, s 5)");
  ckpt(job);
  /* W from the floors 25000 down to below the unconfirmed end 20000: the
   * emission has records of both partitions. */
  ok(ckpt_is(19999, 19999, 102, 201), "before its confirmation W 19999 (< 20000) and the offsets stay 102, 201");
  sl_job_confirm(job, s2);
  ckpt(job);
  ok(ckpt_is(25000, 25000, 103, -1), "confirmed: W 25000 (p1's floor too), p0 at its open record 103, p1 -1");
  is_int(emissions(job), 0, "no emission kept");
  /* finish closes [20s, 30s), which ends after p0's W: kept even when
   * confirmed, a restart with W 25000 rebuilds it from p0@103. */
  n0 = rs->n;
  uint64_t s3 = finish(job, rs);
  ok(s3 > s2 && rs->n == n0 + 1 && row_is(rs, n0, 20000, 30000, "a", 1, 6), "finish: [20s, 30s) a (n 1, s 6)");
  sl_job_confirm(job, s3);
  ckpt(job);
  ok(ckpt_is(25000, 25000, 103, -1), "after finish, confirmed: W 25000, p0@103 held for the window ending at 30000");
  is_int(emissions(job), 1, "that emission is kept");
  ok(!rs->overflow, "rows fit");
  sl_job_free(job);
  free(rs);
}

/* 2b: one W for the job.  [0, 10s) closes with p0's records alone; while
 * it is unconfirmed, every partition's W is 9999: a window or session with
 * records of several partitions must be skipped for all of them or rebuilt
 * from all of them, so W is not computed partition by partition. */
static void test_ckpt_per_partition(void) {
  sl_job_conf_t c = wconf(SL_WINDOW_TUMBLING, 10000, 0, 0, 0, NULL);
  sl_job_t *job = new_job(&c);
  crows_t *rs = calloc(1, sizeof *rs);
  feed(job, 0, 0, "a", 1, 1000);
  feed(job, 1, 0, "b", 2, 12000);
  feed(job, 0, 1, "a", 3, 13000);
  /* Watermark min(13 s, 12 s) = 12 s closes [0, 10s): a 1 (p0 only). */
  uint64_t s1 = advance(job, 0, rs);
  ok(s1 > 0 && rs->n == 1 && row_is(rs, 0, 0, 10000, "a", 1, 1), "per partition: [0, 10s) closes with p0's a alone");
  ckpt(job);
  ok(ckpt_is(9999, 9999, 0, 0), "unconfirmed: W 9999 for both partitions; offsets 0, 0");
  sl_job_confirm(job, s1);
  ckpt(job);
  ok(ckpt_is(12000, 12000, 1, 0), "confirmed: W 12000 for both, offsets of the open [10s, 20s): 1, 0");
  sl_job_free(job);
  free(rs);
}

/* 3: filtered and late records hold nothing back. */
static void test_ckpt_filtered_late(void) {
  sl_job_conf_t c = wconf(SL_WINDOW_TUMBLING, 10000, 0, 0, 0, "v > 0");
  sl_job_t *job = new_job(&c);
  crows_t *rs = calloc(1, sizeof *rs);
  is_int(feed(job, 0, 0, "a", 1, 1000), 0, "feed p0@0 (a:1, 1 s)");
  is_int(feed(job, 1, 50, "a", -1, 2000), 0, "a filtered record returns 0 (p1@50)");
  is_int(feed(job, 1, 51, "a", 3, 4000), 0, "feed p1@51 (a:3, 4 s)");
  ckpt(job);
  ok(ckpt_is(NONE, NONE, 0, 51), "the filtered p1@50 is not held: offsets 0, 51");
  /* Filtered records move the watermark: min(10.5 s, 10.6 s) closes [0, 10s). */
  feed(job, 0, 1, "a", -2, 10500);
  feed(job, 1, 52, "a", -3, 10600);
  uint64_t s1 = advance(job, 0, rs);
  ok(s1 > 0 && rs->n == 1 && row_is(rs, 0, 0, 10000, "a", 2, 4), "[0, 10s) closes: a n 2, s 4");
  sl_job_confirm(job, s1);
  ckpt(job);
  ok(ckpt_is(10500, 10500, -1, -1), "confirmed: W 10500, nothing held (p0@1, p1@52 were filtered)");
  is_int(feed(job, 0, 2, "a", 7, 5000), SL_JOB_LATE, "a record for [0, 10s) is late: SL_JOB_LATE");
  sl_job_stats_t st;
  sl_job_stats(job, &st);
  is_int(st.late, 1, "counted in late");
  is_int(st.filtered, 3, "three filtered");
  ckpt(job);
  ok(ckpt_is(10500, 10500, -1, -1), "the late p0@2 holds nothing");
  is_int(feed(job, 0, 3, "a", 2, 10700), 0, "p0@3 (10.7 s) opens [10s, 20s)");
  is_int(feed(job, 0, 4, "a", -4, 10800), 0, "p0@4 filtered");
  ckpt(job);
  ok(ckpt_is(10500, 10500, 3, -1), "offsets 3, -1");
  sl_job_free(job);

  /* Hopping 30 s every 10 s: a record late for some of its windows only is
   * not late; it updates (and is held by) the open ones. */
  c = wconf(SL_WINDOW_HOPPING, 30000, 10000, 0, 0, NULL);
  job = new_job(&c);
  rs->n = 0;
  feed(job, 0, 0, "a", 1, 25000); /* [0, 30s), [10s, 40s), [20s, 50s) */
  is_int(advance(job, 0, rs), 0, "hopping: watermark 25 s closes nothing");
  /* 5 s: [-20s, 10s) and [-10s, 20s) end at or before 25 s, [0, 30s) is open. */
  is_int(feed(job, 0, 1, "a", 2, 5000), 0, "a record late for two of its three windows returns 0");
  sl_job_stats(job, &st);
  is_int(st.late, 0, "and is not counted late");
  uint64_t s = finish(job, rs);
  ok(s > 0 && rs->n == 3 && row_is(rs, 0, 0, 30000, "a", 2, 3) && row_is(rs, 1, 10000, 40000, "a", 1, 1) &&
         row_is(rs, 2, 20000, 50000, "a", 1, 1),
     "finish: [0, 30s) a n 2 s 3, [10s, 40s) n 1 s 1, [20s, 50s) n 1 s 1: none for the closed hops");
  sl_job_free(job);
  free(rs);
}

/* 4: revoking a partition clears its offsets, in open windows and in
 * emissions, and its W (it is no longer assigned). */
static void test_ckpt_revoke(void) {
  sl_job_conf_t c = wconf(SL_WINDOW_TUMBLING, 10000, 0, 0, 0, NULL);
  sl_job_t *job = new_job(&c);
  crows_t *rs = calloc(1, sizeof *rs);
  feed(job, 0, 10, "a", 1, 1000);
  feed(job, 1, 20, "b", 2, 2000);
  feed(job, 0, 11, "a", 3, 12000);
  feed(job, 1, 21, "b", 4, 13000);
  /* Watermark 12 s closes [0, 10s): a 1, b 2. */
  uint64_t s1 = advance(job, 0, rs);
  ok(s1 > 0 && rs->n == 2 && row_is(rs, 0, 0, 10000, "a", 1, 1) && row_is(rs, 1, 0, 10000, "b", 1, 2),
     "revoke: [0, 10s) closes");
  ckpt(job);
  ok(ckpt_is(9999, 9999, 10, 20), "unconfirmed: W 9999 for both, offsets 10, 20");
  sl_job_revoke(job, 1);
  ckpt(job);
  ok(ckpt_is(9999, NONE, 10, -1), "p1 revoked: W NONE, its offsets cleared (the emission's and the open window's)");
  /* [10s, 20s) has p0's a:3 only: p1's b:4 went with the revocation. */
  uint64_t s2 = finish(job, rs);
  ok(s2 > s1 && rs->n == 3 && row_is(rs, 2, 10000, 20000, "a", 1, 3), "finish: [10s, 20s) a n 1 s 3, no b");
  sl_job_confirm(job, s1);
  sl_job_confirm(job, s2);
  ckpt(job);
  ok(ckpt_is(12000, NONE, 11, -1), "confirmed: p0's W 12000, p0@11 held by [10s, 20s) (ends after it)");
  sl_job_free(job);
  free(rs);
}

/* 5: session windows (gap 10 s, no lateness): an open session whose start +
 * gap is at or below the watermark limits the W of the partitions with
 * records in it to start + gap - 1, else a restart would find its first
 * record late and rebuild part of it.  One W for the job: a's guard
 * limits p1's W too, although a has no record of p1 (a session may hold
 * records of several partitions). */
static void test_ckpt_session_guard(void) {
  sl_job_conf_t c = wconf(SL_WINDOW_SESSION, 0, 0, 10000, 0, NULL);
  sl_job_t *job = new_job(&c);
  crows_t *rs = calloc(1, sizeof *rs);
  feed(job, 0, 10, "a", 1, 0);    /* a: [0, 10s) */
  feed(job, 0, 11, "a", 2, 8000); /* a: [0, 18s) */
  feed(job, 1, 20, "b", 3, 1000); /* b: [1s, 11s) */
  is_int(advance(job, 0, rs), 0, "session: watermark min(8 s, 1 s) = 1 s closes nothing");
  ckpt(job);
  ok(ckpt_is(1000, 1000, 10, 20), "guards 10000 (a, p0) and 11000 (b, p1) are above the floors: W 1000");
  feed(job, 0, 12, "a", 3, 16000); /* a: [0, 26s) */
  feed(job, 1, 21, "b", 4, 17000); /* b: [1s, 11s), [17s, 27s) */
  /* Watermark 16 s closes b [1s, 11s). */
  uint64_t s1 = advance(job, 0, rs);
  ok(s1 > 0 && rs->n == 1 && row_is(rs, 0, 1000, 11000, "b", 1, 3), "b [1s, 11s) closes: n 1 s 3");
  /* Unconfirmed: W = min(16000, b's end 11000 - 1, a's guard 0 + 10000 -
   * 1) = 9999.  Held: a's p0@10, the emission's p1@20 (b's open p1@21 is
   * later). */
  ckpt(job);
  ok(ckpt_is(9999, 9999, 10, 20), "W 9999 (a's guard) for both partitions; offsets 10, 20");
  sl_job_confirm(job, s1);
  /* Confirmed: W stays 9999 (a's guard), below b [1s, 11s)'s end, so its
   * emission is kept and p1@20 still held (a restart rebuilds b from it). */
  ckpt(job);
  ok(ckpt_is(9999, 9999, 10, 20), "confirmed: W 9999 (a's guard); b [1s, 11s)'s p1@20 still held");
  is_int(emissions(job), 1, "b's emission is kept: W is below its end");
  feed(job, 0, 13, "a", 5, 30000); /* a: [0, 26s), [30s, 40s) */
  feed(job, 1, 22, "b", 6, 31000); /* b: [17s, 27s), [31s, 41s) */
  /* Watermark 30 s closes a [0, 26s) (1 + 2 + 3) and b [17s, 27s). */
  size_t n0 = rs->n;
  uint64_t s2 = advance(job, 0, rs);
  ok(s2 > s1 && rs->n == n0 + 2 && row_is(rs, n0, 0, 26000, "a", 3, 6) && row_is(rs, n0 + 1, 17000, 27000, "b", 1, 4),
     "a [0, 26s) n 3 s 6 and b [17s, 27s) n 1 s 4 close");
  /* Unconfirmed: W < 26000 (the emission's earliest end); the emission
   * ends after that and holds a session with guard 0 + 10000: W 9999, not
   * below the last checkpoint's.  Held: p0@10 (a), p1@20 (b's first
   * emission, ending after W). */
  ckpt(job);
  ok(ckpt_is(9999, 9999, 10, 20), "unconfirmed sessions: W 9999 (a's guard), offsets 10, 20");
  sl_job_confirm(job, s2);
  ckpt(job);
  ok(ckpt_is(30000, 30000, 13, 22), "confirmed: W = the floors 30000, offsets of the open sessions 13, 22");
  is_int(emissions(job), 0, "both emissions forgotten");
  sl_job_free(job);
  free(rs);
}

/* 5b: a session with records of two partitions (key b, on both) must be
 * rebuilt whole or skipped whole by a restart: either every partition in
 * it has a W below its guard (start + gap), or none.  Gap 10 s, no
 * lateness.  b [1s, 15s) gets p0@0 and p1@1 and closes; p1 keeps an open
 * session a [0, 26s) (p1@0 at 0 s), so p1's W stays at 9999: b, ending at
 * 15000 > 9999, is kept for p1 and a restart rebuilds p1's part of it.
 * p0's W must then be below b's guard 11000 too, else the restart takes
 * p0@0 (1 s) as late and emits b [5s, 15s) n 1 from p1's record alone, a
 * row the job never emitted, next to the b [1s, 15s) n 2 already out. */
static void test_ckpt_session_shared(void) {
  sl_job_conf_t c = wconf(SL_WINDOW_SESSION, 0, 0, 10000, 0, NULL);
  sl_job_t *job = new_job(&c);
  crows_t *rs = calloc(1, sizeof *rs), *rb = calloc(1, sizeof *rb);
  feed(job, 1, 0, "a", 1, 0);     /* a: [0, 10s) */
  feed(job, 0, 0, "b", 2, 1000);  /* b: [1s, 11s) */
  feed(job, 1, 1, "b", 3, 5000);  /* b: [1s, 15s), both partitions */
  feed(job, 1, 2, "a", 4, 9000);  /* a: [0, 19s) */
  feed(job, 0, 1, "c", 5, 16000); /* c: [16s, 26s) */
  feed(job, 1, 3, "a", 6, 16000); /* a: [0, 26s) */
  /* Watermark 16 s closes b [1s, 15s). */
  uint64_t s1 = advance(job, 0, rs);
  ok(s1 > 0 && rs->n == 1 && row_is(rs, 0, 1000, 15000, "b", 2, 5), "shared session: b [1s, 15s) n 2 s 5 closes");
  sl_job_confirm(job, s1);
  ckpt(job);
  int64_t w0 = ck_wms[0], w1 = ck_wms[1], o0 = ck_off[0], o1 = ck_off[1];
  ok(ck_r == 0 && w1 == 9999 && o0 == 0 && o1 == 0,
     "p1's W 9999 (a's guard 10000), offsets 0, 0 (b kept): W %lld, %lld", (long long)w0, (long long)w1);
  ok(w0 < 11000, "p0's W is below b's guard 11000 too, b having p0's record (got %lld)", (long long)w0);
  finish(job, rs);

  /* A restart from that commit. */
  sl_job_t *b = new_job(&c);
  sl_job_assign(b, 0, w0, 0);
  sl_job_assign(b, 1, w1, 0);
  feed(b, 1, 0, "a", 1, 0);
  feed(b, 0, 0, "b", 2, 1000);
  feed(b, 1, 1, "b", 3, 5000);
  feed(b, 1, 2, "a", 4, 9000);
  feed(b, 0, 1, "c", 5, 16000);
  feed(b, 1, 3, "a", 6, 16000);
  finish(b, rb);
  size_t bad = 0;
  char why[200] = "";
  for (size_t i = 0; i < rb->n; i++) {
    const crow_t *mine = row_by_id(rs, rb->v[i].id);
    if (mine && !strcmp(mine->json, rb->v[i].json)) continue;
    if (!bad++)
      snprintf(why, sizeof why, "[%lld, %lld) %s n %lld s %lld", (long long)rb->v[i].start, (long long)rb->v[i].end,
               rb->v[i].key, (long long)rb->v[i].n, (long long)rb->v[i].s);
  }
  ok(bad == 0, "a restart from it emits only the job's rows: %s", bad ? why : "same");
  sl_job_free(b);
  sl_job_free(job);
  free(rs);
  free(rb);
}

/* 6: restarts.  A run reads a stream of two partitions (both assigned at
 * processing time 0), advances after every record and confirms each
 * emission `lag` records later, and checkpoints before every record and
 * at the end (before finish).  Per partition, W and the offset a restart
 * would read from never go back, and W is never below what the partition
 * was assigned.  Each checkpoint is turned into what the jobs stage would
 * commit (see commit() in jobs_stage.c): partition p's W with its offset,
 * or, at -1, with the offset after the last record of p delivered, or
 * nothing (the previous commit stays) when none was.
 *
 * Job A reads the stream from the start; job B restarts from A's commit
 * before record `ck`: each partition assigned its own W, and read again
 * from its committed offset (in A's order); job C restarts from B's commit
 * in the same way.  Every record is at or after A's watermark when read
 * (out of order only within the lateness), so that A's rows do not depend
 * on when it advanced.  Then: a restarted job emits no row for a window
 * ending at or before every partition's W, each of its rows equals A's row
 * of the same id (JSON text: window, key, aggregates; never a partial
 * row), and every row of the job it restarts from that was not confirmed
 * at the checkpoint comes again from it. */
typedef struct {
  int p;
  int64_t off;
  const char *k;
  int64_t v, t;
} ev_t;

/* Tumbling 10 s, or hopping 30 s every 10 s; lateness 5 s.  The job's
 * watermark after each record (min over partitions of the highest time -
 * 5 s) is on the right. */
static const ev_t evs_win[] = {
    {0, 100, "a", 1, 1000},   /*  0: NONE (p1 has no record yet) */
    {1, 200, "b", 2, 3000},   /*  1: -4000 */
    {0, 101, "b", 3, 8000},   /*  2: -2000 */
    {1, 201, "a", 4, 12000},  /*  3:  3000 */
    {0, 102, "b", 5, 6000},   /*  4:  3000  out of order */
    {0, 103, "a", 6, 16000},  /*  5:  7000 */
    {1, 202, "a", 7, 9000},   /*  6:  7000  out of order */
    {1, 203, "b", 8, 21000},  /*  7: 11000  tumbling [0, 10s) closes */
    {0, 104, "b", 9, 14000},  /*  8: 11000  out of order */
    {0, 105, "a", 10, 27000}, /*  9: 16000 */
    {1, 204, "a", 11, 18000}, /* 10: 16000  out of order */
    {1, 205, "b", 12, 33000}, /* 11: 22000  [10s, 20s) closes */
    {0, 106, "b", 13, 24000}, /* 12: 22000  out of order */
    {0, 107, "a", 14, 38000}, /* 13: 28000  [20s, 30s) closes */
};

/* Sessions of gap 3 s, lateness 5 s; the sessions after each record and
 * the watermark. */
static const ev_t evs_sess[] = {
    {0, 100, "a", 1, 1000},   /*  0: a [1000, 4000)                 NONE */
    {1, 200, "a", 2, 2500},   /*  1: a [1000, 5500)                 -4000 */
    {0, 101, "b", 3, 2000},   /*  2: b [2000, 5000)                 -3000 */
    {1, 201, "b", 4, 9000},   /*  3: b + [9000, 12000)              -3000 */
    {0, 102, "a", 5, 4000},   /*  4: a [1000, 7000)                 -1000 */
    {0, 103, "a", 6, 12000},  /*  5: a + [12000, 15000)              4000 */
    {1, 202, "a", 7, 10500},  /*  6: a [10500, 15000); 5500 closes b [2000, 5000) */
    {1, 203, "b", 8, 5600},   /*  7: b + [5600, 8600)                5500 */
    {0, 104, "b", 9, 7000},   /*  8: b [5600, 12000) (bridges two)   5500 */
    {1, 204, "a", 10, 16000}, /*  9: a + [16000, 19000); 7000 closes a [1000, 7000) */
    {0, 105, "a", 11, 13000}, /* 10: a [10500, 16000)               7000 */
    {0, 106, "b", 12, 20000}, /* 11: b + [20000, 23000)            11000 */
    {1, 205, "b", 13, 11500}, /* 12: b [5600, 14500)               11000 */
    {1, 206, "a", 14, 25000}, /* 13: a + [25000, 28000); 15000 closes b [5600, 14500) */
    {0, 107, "a", 15, 17500}, /* 14: a [16000, 20500)              15000 */
    {0, 108, "a", 16, 30000}, /* 15: a + [30000, 33000); 20000 closes a [10500, 16000) */
};

#define MAX_EVS 48
#define MAX_SEQ 64

/* Failed checks; the first is described in why, after ctx (what was run). */
typedef struct {
  size_t bad;
  char ctx[200], why[640]; /* ctx, ": ", a message of up to 400 */
} report_t;

static void problem(report_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(report_t *r, const char *fmt, ...) {
  if (r->bad++) return;
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(r->why, sizeof r->why, "%s%s%s", r->ctx, r->ctx[0] ? ": " : "", msg);
}

/* A run's checkpoint before reading record i, and what it commits. */
typedef struct {
  int64_t wm[NP], off[NP];               /* sl_job_checkpoint's answer */
  int64_t commit_wm[NP], commit_off[NP]; /* what a restart starts from; commit_off -1: from the beginning */
  bool confirmed[MAX_SEQ];               /* emissions confirmed by then */
} ck_t;

/* Where a run starts, and how it goes. */
typedef struct {
  int64_t wm[NP];  /* assigned to partitions 0 and 1 (and 2, never fed, when with_p2) at processing time 0 */
  int64_t off[NP]; /* the first offset read of each partition; -1: all of it */
  bool with_p2;
  int64_t now;        /* processing time of every read and advance */
  size_t lag;         /* an emission is confirmed `lag` records after it */
  size_t advance_at;  /* no advance after reading records before this one */
  bool fresh;         /* from the start: every record must be on time (checks the test data) */
} start_t;

typedef struct {
  start_t start;
  crows_t rows;
  ck_t ck[MAX_EVS + 1]; /* [n]: after the last record, before finish */
} run_t;

static void run(const char *who, const sl_job_conf_t *c, const ev_t *evs, const msgpack_object *recs, size_t n,
                const start_t *s, run_t *out, report_t *rep) {
  memset(out, 0, sizeof *out);
  out->start = *s;
  sl_job_t *job = new_job(c);
  for (int p = 0; p < NP; p++)
    if (p < 2 || s->with_p2) sl_job_assign(job, p, s->wm[p], 0);
  uint64_t seqs[MAX_EVS];
  size_t seq_step[MAX_EVS], n_seqs = 0;
  bool confirmed[MAX_SEQ] = {0};
  int64_t prev_w[NP], commit_wm[NP], commit_off[NP], last_off[NP];
  for (int p = 0; p < NP; p++) {
    prev_w[p] = NONE;
    commit_wm[p] = s->wm[p];
    commit_off[p] = s->off[p];
    last_off[p] = -1;
  }
  for (size_t i = 0; i <= n; i++) {
    ck_t *k = &out->ck[i];
    if (sl_job_checkpoint(job, k->wm, k->off, NP)) problem(rep, "%s: checkpoint before record %zu failed", who, i);
    memcpy(k->confirmed, confirmed, sizeof confirmed);
    for (int p = 0; p < NP; p++) {
      if (p < 2 && k->wm[p] < prev_w[p])
        problem(rep, "%s: partition %d's W went back from %lld to %lld before record %zu", who, p,
                (long long)prev_w[p], (long long)k->wm[p], i);
      if (p < 2 && k->wm[p] < s->wm[p])
        problem(rep, "%s: partition %d's W %lld is below the %lld it was assigned, before record %zu", who, p,
                (long long)k->wm[p], (long long)s->wm[p], i);
      prev_w[p] = k->wm[p];
      int64_t off = k->off[p] >= 0 ? k->off[p] : last_off[p] >= 0 ? last_off[p] + 1 : -1;
      if (off >= 0) {
        if (off < commit_off[p]) {
          problem(rep, "%s: partition %d's restart offset went back from %lld to %lld before record %zu", who, p,
                  (long long)commit_off[p], (long long)off, i);
          off = commit_off[p]; /* as the stage does */
        }
        commit_wm[p] = k->wm[p];
        commit_off[p] = off;
      }
      k->commit_wm[p] = commit_wm[p];
      k->commit_off[p] = commit_off[p];
    }
    if (i == n) break;
    const ev_t *e = &evs[i];
    if (s->off[e->p] >= 0 && e->off < s->off[e->p]) continue;
    if (s->fresh && !late_data && job_wm(job) != NONE && e->t < job_wm(job))
      problem(rep, "test data: record %zu (t %lld) is behind %s's watermark %lld", i, (long long)e->t, who,
              (long long)job_wm(job));
    int r = sl_job_feed(job, e->p, e->off, &recs[i], e->t, s->now);
    if (r && ((s->fresh && !late_data) || r != SL_JOB_LATE))
      problem(rep, "%s: record %zu: feed returned %d", who, i, r);
    last_off[e->p] = e->off;
    if (i < s->advance_at) continue;
    uint64_t q = advance(job, s->now, &out->rows);
    if (q && (q >= MAX_SEQ || n_seqs == MAX_EVS))
      problem(rep, "%s: seq %llu out of the test's range", who, (unsigned long long)q);
    else if (q) {
      seqs[n_seqs] = q;
      seq_step[n_seqs++] = i;
    }
    for (size_t k2 = 0; k2 < n_seqs; k2++)
      if (!confirmed[seqs[k2]] && seq_step[k2] + s->lag <= i) {
        sl_job_confirm(job, seqs[k2]);
        confirmed[seqs[k2]] = true;
      }
  }
  if (late_data && s->fresh) {
    sl_job_stats_t st;
    sl_job_stats(job, &st);
    late_updates += st.late_updates;
  }
  finish(job, &out->rows);
  sl_job_free(job);
  if (out->rows.overflow) problem(rep, "%s: too many rows for the test", who);
  for (size_t i = 0; i < out->rows.n && c->late_policy != 2; i++)
    if (row_by_id(&out->rows, out->rows.v[i].id) != &out->rows.v[i])
      problem(rep, "%s: two rows of id %016llx", who, (unsigned long long)out->rows.v[i].id);
}

/* A run restarted from what `from` committed before record i. */
static start_t start_at(const run_t *from, size_t i) {
  start_t s = {.now = 0};
  for (int p = 0; p < NP; p++) {
    s.wm[p] = from->ck[i].commit_wm[p];
    s.off[p] = from->ck[i].commit_off[p];
  }
  return s;
}

/* x restarted from `from`'s commit before record i; a is the run from the
 * start whose rows are the truth. */
static void check_restart(const char *who, const run_t *a, const run_t *from, size_t i, const run_t *x,
                          report_t *rep) {
  int64_t low = x->start.wm[0] < x->start.wm[1] ? x->start.wm[0] : x->start.wm[1];
  for (size_t k = 0; k < x->rows.n; k++) {
    const crow_t *rx = &x->rows.v[k];
    if (row_by_id(&x->rows, rx->id) != rx) continue; /* emitted again later: the last one counts */
    const crow_t *ra = row_by_id(&a->rows, rx->id);
    if (low != NONE && rx->end <= low)
      problem(rep, "%s emitted [%lld, %lld) %s, ending at or before every partition's W (%lld, %lld)", who,
              (long long)rx->start, (long long)rx->end, rx->key, (long long)x->start.wm[0],
              (long long)x->start.wm[1]);
    else if (!ra)
      problem(rep, "%s emitted [%lld, %lld) %s (n %lld s %lld), which A did not", who, (long long)rx->start,
              (long long)rx->end, rx->key, (long long)rx->n, (long long)rx->s);
    else if (strcmp(ra->json, rx->json))
      problem(rep, "%s's row differs from A's:\n#     A %s\n#     %s %s", who, ra->json, who, rx->json);
  }
  for (size_t k = 0; k < from->rows.n; k++) {
    const crow_t *rf = &from->rows.v[k];
    if (rf->seq < MAX_SEQ && from->ck[i].confirmed[rf->seq]) continue;
    if (!row_by_id(&x->rows, rf->id))
      problem(rep, "%s lost the row [%lld, %lld) %s (n %lld), not confirmed at the checkpoint", who,
              (long long)rf->start, (long long)rf->end, rf->key, (long long)rf->n);
  }
}

typedef struct {
  run_t a, b, c;
  report_t rep;
} restart_t;

static void run_a(restart_t *r, const sl_job_conf_t *c, const ev_t *evs, const msgpack_object *recs, size_t n,
                  size_t lag) {
  start_t s = {.lag = lag, .fresh = true};
  for (int p = 0; p < NP; p++) {
    s.wm[p] = NONE;
    s.off[p] = -1;
  }
  run("A", c, evs, recs, n, &s, &r->a, &r->rep);
}

/* B from A's commit before record ck. */
static void run_b(restart_t *r, const sl_job_conf_t *c, const ev_t *evs, const msgpack_object *recs, size_t n,
                  size_t ck) {
  start_t s = start_at(&r->a, ck);
  run("B", c, evs, recs, n, &s, &r->b, &r->rep);
  check_restart("B", &r->a, &r->a, ck, &r->b, &r->rep);
}

/* C from B's commit before record m. */
static void run_c(restart_t *r, const sl_job_conf_t *c, const ev_t *evs, const msgpack_object *recs, size_t n,
                  size_t m) {
  start_t s = start_at(&r->b, m);
  run("C", c, evs, recs, n, &s, &r->c, &r->rep);
  check_restart("C", &r->a, &r->b, m, &r->c, &r->rep);
}

/* A, B from A's commit before record ck, and C from each of B's commits
 * from record ck on. */
static void restart_run(const sl_job_conf_t *c, const ev_t *evs, const msgpack_object *recs, size_t n, size_t ck,
                        size_t lag, restart_t *r) {
  memset(&r->rep, 0, sizeof r->rep);
  run_a(r, c, evs, recs, n, lag);
  run_b(r, c, evs, recs, n, ck);
  for (size_t m = ck; m <= n; m++) {
    snprintf(r->rep.ctx, sizeof r->rep.ctx, "C from B's commit before record %zu", m);
    run_c(r, c, evs, recs, n, m);
  }
  r->rep.ctx[0] = '\0';
}

static bool b_row(const restart_t *r, size_t i, int64_t start, int64_t end, const char *key, int64_t n, int64_t s) {
  return row_is(&r->b.rows, i, start, end, key, n, s);
}

static bool b_has(const restart_t *r, int64_t start, const char *key, int64_t n, int64_t s) {
  for (size_t i = 0; i < r->b.rows.n; i++)
    if (r->b.rows.v[i].start == start && !strcmp(r->b.rows.v[i].key, key))
      return r->b.rows.v[i].n == n && r->b.rows.v[i].s == s;
  return false;
}

static bool b_has_end(const restart_t *r, int64_t end) {
  for (size_t i = 0; i < r->b.rows.n; i++)
    if (r->b.rows.v[i].end == end) return true;
  return false;
}

/* A's checkpoint before record ck was W {w0, w1}, offsets {o0, o1}. */
static bool ck_of(const restart_t *r, size_t ck, int64_t w0, int64_t w1, int64_t o0, int64_t o1) {
  ck_r = 0;
  memcpy(ck_wms, r->a.ck[ck].wm, sizeof ck_wms);
  memcpy(ck_off, r->a.ck[ck].off, sizeof ck_off);
  return ckpt_is(w0, w1, o0, o1);
}

/* Restarts before every record and at the end, with confirmations 0, 1 and
 * 2 records late; C from every commit of B. */
static void restart_sweep(const char *name, const sl_job_conf_t *c, const ev_t *evs, size_t n) {
  msgpack_object recs[MAX_EVS];
  for (size_t i = 0; i < n; i++) recs[i] = rec(evs[i].k, evs[i].v);
  restart_t *r = calloc(1, sizeof *r);
  for (size_t lag = 0; lag <= 2; lag++) {
    size_t runs = 0;
    memset(&r->rep, 0, sizeof r->rep);
    run_a(r, c, evs, recs, n, lag);
    for (size_t ck = 0; ck <= n; ck++) {
      snprintf(r->rep.ctx, sizeof r->rep.ctx, "B from A's commit before record %zu", ck);
      run_b(r, c, evs, recs, n, ck);
      runs++;
      for (size_t m = ck; m <= n; m++) {
        snprintf(r->rep.ctx, sizeof r->rep.ctx, "B from A's commit before record %zu, C from B's before %zu", ck, m);
        run_c(r, c, evs, recs, n, m);
        runs++;
      }
    }
    ok(!r->rep.bad, "%s, confirmations %zu late: %zu restarts, their rows equal A's, none lost, W never back", name,
       lag, runs);
    if (r->rep.bad) printf("#   %zu failed; first: %s\n", r->rep.bad, r->rep.why);
  }
  free(r);
}

/* The same over pseudo-random streams (a fixed-seed LCG): three keys, two
 * partitions, each record at most the lateness behind its partition's
 * highest time (so never behind the watermark).  keyed: the partition
 * follows from the key (a, b, c on p0; d, e, f on p1), as in a topic keyed
 * by the group key; else every key is on both partitions. */
static uint64_t lcg_state;
static unsigned lcg(unsigned n) {
  lcg_state = lcg_state * 6364136223846793005u + 1442695040888963407u;
  return (unsigned)(lcg_state >> 33) % n;
}

/* late: also late records (late_policy = "update" runs; keyed): about one
 * in five at the time of an earlier record of their partition, however far
 * the watermark has moved since, so that their window has existed;
 * max_lateness_update is longer than any stream here, so every one updates
 * its window's row, and every restart's last row of each id must equal the
 * uninterrupted run's. */
static void restart_fuzz_late(const char *name, const sl_job_conf_t *c, int64_t lateness, int64_t step, bool keyed,
                              bool late) {
  static const char *keys[] = {"a", "b", "c", "d", "e", "f"};
  msgpack_object table[6][10];
  for (int k = 0; k < 6; k++)
    for (int v = 0; v < 10; v++) table[k][v] = rec(keys[k], v);
  ev_t evs[MAX_EVS];
  msgpack_object recs[MAX_EVS];
  restart_t *r = calloc(1, sizeof *r);
  size_t runs = 0, bad = 0, n_late = 0;
  char why[900] = "";
  late_data = late;
  for (uint64_t seed = 1; seed <= 30; seed++) {
    lcg_state = seed;
    int64_t top[2] = {0, 0}, next_off[2] = {0, 1000};
    size_t n = 20 + lcg(MAX_EVS - 20);
    for (size_t i = 0; i < n; i++) {
      int p = (int)lcg(2);
      int k = (int)lcg(3) + (keyed ? 3 * p : 0), v = (int)lcg(10);
      int64_t t = top[p] - lateness + (int64_t)lcg((unsigned)(lateness + step));
      size_t back = late && i > 3 && lcg(4) == 0 ? lcg((unsigned)i / 2) : i;
      if (back < i && evs[back].p == p) {
        t = evs[back].t;
        n_late++;
      }
      if (t > top[p]) top[p] = t;
      evs[i] = (ev_t){p, next_off[p]++, keys[k], v, t};
      recs[i] = table[k][v];
    }
    for (size_t lag = 0; lag <= 2; lag++) {
      memset(&r->rep, 0, sizeof r->rep);
      snprintf(r->rep.ctx, sizeof r->rep.ctx, "seed %llu, lag %zu", (unsigned long long)seed, lag);
      run_a(r, c, evs, recs, n, lag);
      for (size_t ck = 0; ck <= n; ck++) {
        snprintf(r->rep.ctx, sizeof r->rep.ctx, "seed %llu, lag %zu, B from A's commit before record %zu",
                 (unsigned long long)seed, lag, ck);
        run_b(r, c, evs, recs, n, ck);
        runs++;
        /* C from B's commit at its start, half-way and at the end. */
        size_t ms[3] = {ck, ck + (n - ck) / 2, n};
        for (int i = 0; i < 3; i++) {
          snprintf(r->rep.ctx, sizeof r->rep.ctx,
                   "seed %llu, lag %zu, B from A's commit before record %zu, C from B's before %zu",
                   (unsigned long long)seed, lag, ck, ms[i]);
          run_c(r, c, evs, recs, n, ms[i]);
          runs++;
        }
      }
      if (r->rep.bad && !bad) snprintf(why, sizeof why, "%s", r->rep.why);
      bad += r->rep.bad;
    }
  }
  late_data = false;
  if (late)
    ok(!bad && late_updates > 30, "%s, random streams with %zu records sent late (%llu updated a closed window): "
       "%zu restarts, last rows equal", name, n_late, (unsigned long long)late_updates, runs);
  else
    ok(!bad, "%s, random streams%s: %zu restarts consistent", name, keyed ? " keyed by partition" : "", runs);
  late_updates = 0;
  if (bad) printf("#   %zu failed; first: %s\n", bad, why);
  free(r);
}

static void restart_fuzz(const char *name, const sl_job_conf_t *c, int64_t lateness, int64_t step, bool keyed) {
  restart_fuzz_late(name, c, lateness, step, keyed, false);
}

/* late_policy = "update": a late record within max_lateness_update updates
 * its closed window, whose row is emitted again under the same id; after
 * that, records are late as before.  Kept windows hold the checkpoint back
 * like open ones. */
static void test_late_update(void) {
  sl_job_conf_t c = wconf(SL_WINDOW_TUMBLING, 10000, 0, 0, 0, NULL);
  c.late_policy = 2;
  c.max_lateness_update_ns = 30000 * MSNS;
  sl_job_t *job = new_job(&c);
  crows_t *rs = calloc(1, sizeof *rs);
  feed(job, 0, 100, "a", 1, 1000);
  feed(job, 0, 101, "b", 2, 2000);
  feed(job, 0, 102, "a", 3, 12000);
  uint64_t s1 = advance(job, 0, rs);
  ok(s1 && rs->n == 2 && row_is(rs, 0, 0, 10000, "a", 1, 1) && row_is(rs, 1, 0, 10000, "b", 1, 2),
     "update: [0, 10s) closes at watermark 12 s: a (n 1), b (n 1)");
  sl_job_confirm(job, s1);
  is_int(feed(job, 0, 103, "a", 10, 5000), 0, "a record for the closed window is taken, not late");
  sl_job_stats_t st;
  sl_job_stats(job, &st);
  ok(st.late == 0 && st.late_updates == 1, "counted as a late update (%llu), not as late (%llu)",
     (unsigned long long)st.late_updates, (unsigned long long)st.late);
  ckpt(job);
  ok(ckpt_is(9999, NONE, 100, -1), "the kept window holds the checkpoint: W below its end, offset its first record");
  uint64_t s2 = advance(job, 0, rs);
  ok(s2 > s1 && rs->n == 3 && row_is(rs, 2, 0, 10000, "a", 2, 11) && rs->v[2].id == rs->v[0].id,
     "the next advance emits a's row again, same id, with the late record: n 2, s 11");
  is_int(advance(job, 0, rs), 0, "and nothing more while nothing changes");
  feed(job, 0, 104, "c", 7, 9000);
  advance(job, 0, rs);
  ok(rs->n == 4 && row_is(rs, 3, 0, 10000, "c", 1, 7), "a new key for the closed window: its first row");
  /* The watermark passes 10 s + 30 s: the window is freed. */
  feed(job, 0, 105, "a", 1, 40000);
  advance(job, 0, rs);
  is_int(feed(job, 0, 106, "a", 1, 6000), SL_JOB_LATE, "past max_lateness_update: late");
  sl_job_stats(job, &st);
  is_int(st.late, 1, "and counted as late");
  sl_job_confirm(job, s2);
  for (uint64_t q = s2; q < s2 + 8; q++) sl_job_confirm(job, q);
  ckpt(job);
  ok(ck_r == 0 && ck_wms[0] >= 10000, "once it is freed the checkpoint passes it (W %lld)", (long long)ck_wms[0]);
  sl_job_free(job);

  /* A session job cannot use it. */
  c = wconf(SL_WINDOW_SESSION, 0, 0, 10000, 0, NULL);
  c.late_policy = 2;
  sl_job_error_t err;
  job = NULL;
  ok(sl_job_new(&c, &job, &err) == SL_ECONFIG && !strcmp(err.option, "late_policy") && !job,
     "late_policy = update with sessions does not compile: %s", err.msg);

  /* Restarts: every last row equals the uninterrupted run's. */
  c = wconf(SL_WINDOW_TUMBLING, 10000, 0, 0, 3000, NULL);
  c.late_policy = 2;
  c.max_lateness_update_ns = 3600000 * MSNS;
  restart_fuzz_late("update, tumbling", &c, 3000, 2500, true, true);
  c = wconf(SL_WINDOW_HOPPING, 20000, 10000, 0, 3000, NULL);
  c.late_policy = 2;
  c.max_lateness_update_ns = 3600000 * MSNS;
  restart_fuzz_late("update, hopping", &c, 3000, 2500, true, true);
  free(rs);
}

static void test_restarts(void) {
  restart_t *r = calloc(1, sizeof *r);
  msgpack_object recs[MAX_EVS];
  size_t nw = sizeof evs_win / sizeof *evs_win, ns = sizeof evs_sess / sizeof *evs_sess;

  /* Tumbling, restart before record 9 (A confirmed [0, 10s) at record 7):
   * floors 11000, nothing unconfirmed: W 11000 for both; open [10s, 20s)
   * from p0@103 and p1@201.  B reads p0 from 103 (records 5 8 9 12 13) and
   * p1 from 201 (3 6 7 10 11); record 6 (9 s) is late for B: its window
   * ended at or before p1's W.  B's rows: [10s, 20s) a 4+6+11, b 9; [20s,
   * 30s) b 8+13, a 10; [30s, 40s) b 12, a 14. */
  sl_job_conf_t c = wconf(SL_WINDOW_TUMBLING, 10000, 0, 0, 5000, NULL);
  for (size_t i = 0; i < nw; i++) recs[i] = rec(evs_win[i].k, evs_win[i].v);
  restart_run(&c, evs_win, recs, nw, 9, 0, r);
  ok(!r->rep.bad, "tumbling restart before record 9: %s", r->rep.bad ? r->rep.why : "consistent");
  ok(ck_of(r, 9, 11000, 11000, 103, 201), "tumbling: checkpoint W 11000, 11000, offsets 103, 201");
  ok(r->b.rows.n == 6 && b_row(r, 0, 10000, 20000, "a", 3, 21) && b_row(r, 1, 10000, 20000, "b", 1, 9) &&
         b_row(r, 2, 20000, 30000, "b", 2, 21) && b_row(r, 3, 20000, 30000, "a", 1, 10) &&
         b_row(r, 4, 30000, 40000, "b", 1, 12) && b_row(r, 5, 30000, 40000, "a", 1, 14),
     "tumbling: B's six rows, none for [0, 10s)");
  /* Confirmations one record late: before record 8, [0, 10s) (records of
   * both partitions) is emitted but not confirmed: W 9999 for both and its
   * records held (p0@100, p1@200); B emits it again whole: a 1+7, b
   * 2+3+5. */
  restart_run(&c, evs_win, recs, nw, 8, 1, r);
  ok(!r->rep.bad, "tumbling restart before record 8, unconfirmed: %s", r->rep.bad ? r->rep.why : "consistent");
  ok(ck_of(r, 8, 9999, 9999, 100, 200), "tumbling: checkpoint W 9999, 9999, offsets 100, 200");
  ok(r->b.rows.n == 8 && b_row(r, 0, 0, 10000, "a", 2, 8) && b_row(r, 1, 0, 10000, "b", 3, 10),
     "tumbling: B emits [0, 10s) again, whole");
  restart_sweep("tumbling", &c, evs_win, nw);

  /* Hopping 30 s every 10 s, before record 9: [-20s, 10s) was emitted and
   * confirmed at record 7 (watermark 11000): W 11000 for both; [-10s, 20s)
   * is open with every record so far: offsets 100, 200.  B skips [-20s,
   * 10s) and rebuilds [0, 30s): a 1+4+6+7+10+11 = 39, b 2+3+5+8+9+13 = 40. */
  c = wconf(SL_WINDOW_HOPPING, 30000, 10000, 0, 5000, NULL);
  restart_run(&c, evs_win, recs, nw, 9, 0, r);
  ok(!r->rep.bad, "hopping restart before record 9: %s", r->rep.bad ? r->rep.why : "consistent");
  ok(ck_of(r, 9, 11000, 11000, 100, 200), "hopping: checkpoint W 11000, 11000, offsets 100, 200");
  ok(!b_has_end(r, 10000) && b_has(r, -10000, "a", 5, 29) && b_has(r, 0, "a", 6, 39) && b_has(r, 0, "b", 6, 40),
     "hopping: B has no [-20s, 10s), [-10s, 20s) a 1+4+6+7+11, [0, 30s) a 39 and b 40");
  restart_sweep("hopping", &c, evs_win, nw);

  /* Sessions, gap 3 s, before record 13: floors 11000; a [1000, 7000) and
   * b [2000, 5000) emitted and confirmed; open: a [10500, 16000) (p0@103
   * p1@202 p0@105), a [16000, 19000) (p1@204), b [5600, 14500) (p1@201
   * p1@203 p0@104 p1@205), b [20000, 23000) (p0@106).  b [5600, 14500) has
   * records of both partitions and start + gap = 8600 <= 11000: W 8599 for
   * both.  Offsets 103, 201.  B reads p0 from 103 and p1 from 201; record
   * 7 (b at 5600, 5600 + 3000 > 8599) is not late, so b [5600, 14500) is
   * rebuilt whole. */
  c = wconf(SL_WINDOW_SESSION, 0, 0, 3000, 5000, NULL);
  for (size_t i = 0; i < ns; i++) recs[i] = rec(evs_sess[i].k, evs_sess[i].v);
  restart_run(&c, evs_sess, recs, ns, 13, 0, r);
  ok(!r->rep.bad, "session restart before record 13: %s", r->rep.bad ? r->rep.why : "consistent");
  ok(ck_of(r, 13, 8599, 8599, 103, 201), "session: checkpoint W 8599 (the guard of b [5600, 14500)), offsets 103, 201");
  ok(r->b.rows.n == 6 && b_row(r, 0, 5600, 14500, "b", 4, 8 + 9 + 4 + 13) &&
         b_row(r, 1, 10500, 16000, "a", 3, 6 + 7 + 11) && b_row(r, 2, 20000, 23000, "b", 1, 12) &&
         b_row(r, 3, 16000, 20500, "a", 2, 10 + 15) && b_row(r, 4, 25000, 28000, "a", 1, 14) &&
         b_row(r, 5, 30000, 33000, "a", 1, 16),
     "session: B's six rows, whole; none for a [1000, 7000) or b [2000, 5000)");
  /* Before record 9: a [1000, 7000) is open, with records of both
   * partitions, and its start + gap = 4000 <= 5500: W 3999 for both; b
   * [2000, 5000) (p0@101 alone), emitted and confirmed, ends after p0's W
   * and is kept: offsets 100, 200. */
  restart_run(&c, evs_sess, recs, ns, 9, 0, r);
  ok(!r->rep.bad, "session restart before record 9: %s", r->rep.bad ? r->rep.why : "consistent");
  ok(ck_of(r, 9, 3999, 3999, 100, 200), "session: checkpoint W 3999 (the guard of a [1000, 7000)), offsets 100, 200");
  ok(b_has(r, 1000, "a", 3, 1 + 2 + 5) && b_has(r, 2000, "b", 1, 3),
     "session: B emits a [1000, 7000) and b [2000, 5000) again");
  restart_sweep("session", &c, evs_sess, ns);
  free(r);

  c = wconf(SL_WINDOW_TUMBLING, 10000, 0, 0, 5000, NULL);
  restart_fuzz("tumbling", &c, 5000, 4000, false);
  c = wconf(SL_WINDOW_HOPPING, 30000, 10000, 0, 5000, NULL);
  restart_fuzz("hopping", &c, 5000, 4000, false);
  c = wconf(SL_WINDOW_SESSION, 0, 0, 3000, 5000, NULL);
  restart_fuzz("session", &c, 5000, 4000, false);
  restart_fuzz("session", &c, 5000, 4000, true);
  c = wconf(SL_WINDOW_SESSION, 0, 0, 1000, 5000, NULL); /* gaps well below the lateness */
  restart_fuzz("session (gap 1 s)", &c, 5000, 2000, false);
  c = wconf(SL_WINDOW_SESSION, 0, 0, 8000, 2000, NULL); /* long sessions */
  restart_fuzz("session (gap 8 s, lateness 2 s)", &c, 2000, 9000, false);
  restart_fuzz("session (gap 8 s, lateness 2 s)", &c, 2000, 9000, true);
  c = wconf(SL_WINDOW_HOPPING, 30000, 10000, 0, 0, NULL);
  restart_fuzz("hopping (no lateness)", &c, 0, 5000, false);
}

/* Two restarts in a row, A then B from A's commit then C from B's, where B
 * has no job watermark of its own when it commits: before its first
 * sl_job_advance, or while an assigned partition without commit metadata
 * (an empty partition, which the stage never commits) has had no record
 * and is not idle.  B's W must then be what each partition was assigned
 * (the floor), not NONE: B skipped, as emitted before, the windows ending
 * at or before A's W, and a C that took nothing as emitted would rebuild
 * such a window from the part of its records at or after the offsets,
 * emitting a partial row under the complete row's id.
 * Here: A's checkpoint before record 9 is W 11000 for both, offsets 103,
 * 201 (see test_restarts).  B reads p0 from 103 and p1 from 201, skipping
 * record 6 (p1@202, a:7 at 9 s) as late.  A C with no watermark would put
 * record 6 into [0, 10s): a row of n 1, s 7 with the id of A's row a [0,
 * 10s) n 2, s 8 (records 0 and 6). */
static void test_restart_twice(void) {
  msgpack_object recs[MAX_EVS];
  size_t nw = sizeof evs_win / sizeof *evs_win;
  for (size_t i = 0; i < nw; i++) recs[i] = rec(evs_win[i].k, evs_win[i].v);
  sl_job_conf_t c = wconf(SL_WINDOW_TUMBLING, 10000, 0, 0, 5000, NULL);
  restart_t *r = calloc(1, sizeof *r);
  run_a(r, &c, evs_win, recs, nw, 0);
  ok(!r->rep.bad && ck_of(r, 9, 11000, 11000, 103, 201), "twice: A's checkpoint W 11000, 11000, offsets 103, 201");

  /* B reads records 3, 5 and 6 without advancing; its commit before
   * record 7. */
  start_t s = start_at(&r->a, 9);
  s.advance_at = 7;
  run("B", &c, evs_win, recs, nw, &s, &r->b, &r->rep);
  check_restart("B", &r->a, &r->a, 9, &r->b, &r->rep);
  const ck_t *k = &r->b.ck[7];
  ok(k->off[0] == 103 && k->off[1] == 201, "twice: B's early checkpoint holds 103, 201");
  ok(k->wm[0] == 11000 && k->wm[1] == 11000, "twice: B's checkpoint before its first advance: W %lld, %lld (11000)",
     (long long)k->wm[0], (long long)k->wm[1]);
  run_c(r, &c, evs_win, recs, nw, 7);
  ok(!r->rep.bad, "twice: C, restarted from it, emits no partial row: %s", r->rep.bad ? r->rep.why : "none");

  /* The same with partition 2 assigned without metadata: B advances after
   * every record, but the job watermark stays NONE while partition 2 is
   * not idle (processing time 0, idle after 30 s); its commit at the end. */
  s = start_at(&r->a, 9);
  s.with_p2 = true;
  run("B", &c, evs_win, recs, nw, &s, &r->b, &r->rep);
  check_restart("B", &r->a, &r->a, 9, &r->b, &r->rep);
  k = &r->b.ck[nw];
  ok(k->off[0] == 103 && k->off[1] == 201, "twice, empty p2: B's checkpoint holds 103, 201");
  ok(k->wm[0] == 11000 && k->wm[1] == 11000, "twice, empty p2 not idle: B's W %lld, %lld (11000)", (long long)k->wm[0],
     (long long)k->wm[1]);
  bool at_finish = r->b.rows.n == 6;
  for (size_t i = 0; i < r->b.rows.n; i++) at_finish = at_finish && r->b.rows.v[i].seq == r->b.rows.v[0].seq;
  ok(at_finish, "twice, empty p2: B emits its six rows at finish only (%zu)", r->b.rows.n);
  run_c(r, &c, evs_win, recs, nw, nw);
  ok(!r->rep.bad, "twice, empty p2: C emits no partial row: %s", r->rep.bad ? r->rep.why : "none");

  /* Once partition 2 is idle (B reads at 30 s, 30 s after the
   * assignment), B's watermark exists and the chain is sound. */
  s.now = 30000;
  run("B", &c, evs_win, recs, nw, &s, &r->b, &r->rep);
  check_restart("B", &r->a, &r->a, 9, &r->b, &r->rep);
  k = &r->b.ck[nw];
  ok(k->wm[0] >= 11000 && k->wm[1] >= 11000, "twice, p2 idle: B's W %lld, %lld >= 11000", (long long)k->wm[0],
     (long long)k->wm[1]);
  for (size_t m = 9; m <= nw; m++) run_c(r, &c, evs_win, recs, nw, m);
  ok(!r->rep.bad, "twice, p2 idle: C's rows equal A's from each of B's commits: %s",
     r->rep.bad ? r->rep.why : "none");
  free(r);
}

/* 6b: rebalances.  A partition assigned with a checkpoint watermark below
 * the job's (taken over from an instance whose commit was older) moves
 * the job's watermark back to it: its records from the committed offset on
 * are rebuilt into windows, not judged late, while each partition's
 * records are judged against that partition's own floor.  Keys are
 * partition-distinct, as in a topic keyed by the group key: a rebuilt
 * window then holds the whole of its keys' records. */

/* The last row of each id in rs equals the row of that id in ref, and
 * every row of ref is there (whole: JSON text); the first difference is
 * described in why.  Keys in `keys` only (all when NULL). */
static size_t final_rows_differ(const crows_t *ref, const crows_t *rs, const char *keys, char *why, size_t len) {
  size_t bad = 0;
  for (size_t i = 0; i < ref->n; i++) {
    const crow_t *want = &ref->v[i];
    if (keys && !strstr(keys, want->key)) continue;
    const crow_t *got = NULL;
    for (size_t k = 0; k < rs->n; k++)
      if (rs->v[k].id == want->id) got = &rs->v[k];
    if (got && !strcmp(got->json, want->json)) continue;
    if (!bad++)
      snprintf(why, len, "[%lld, %lld) %s: want n %lld s %lld, got %s%lld s %lld", (long long)want->start,
               (long long)want->end, want->key, (long long)want->n, (long long)want->s, got ? "n " : "no row, ",
               got ? (long long)got->n : 0, got ? (long long)got->s : 0);
  }
  for (size_t k = 0; k < rs->n; k++)
    if ((!keys || strstr(keys, rs->v[k].key)) && !row_by_id(ref, rs->v[k].id) && !bad++)
      snprintf(why, len, "[%lld, %lld) %s: a row the reference does not have", (long long)rs->v[k].start,
               (long long)rs->v[k].end, rs->v[k].key);
  return bad;
}

/* Job A owns p0 (key a) and p1 (key b), tumbling 10 s, no lateness. */
static void test_rebalance(void) {
  sl_job_conf_t c = wconf(SL_WINDOW_TUMBLING, 10000, 0, 0, 0, NULL);
  sl_job_t *job = new_job(&c), *ref = new_job(&c);
  crows_t *rs = calloc(1, sizeof *rs), *rr = calloc(1, sizeof *rr);
  char why[200] = "";
  sl_job_assign(job, 0, NONE, 0);
  sl_job_assign(job, 1, NONE, 0);
  feed(job, 0, 0, "a", 1, 1000);
  feed(job, 1, 0, "b", 2, 2000);
  feed(job, 0, 1, "a", 3, 12000);
  feed(job, 1, 1, "b", 4, 13000);
  /* Watermark 12 s closes [0, 10s): a 1, b 2. */
  uint64_t s1 = advance(job, 0, rs);
  ok(s1 > 0 && rs->n == 2 && row_is(rs, 0, 0, 10000, "a", 1, 1) && row_is(rs, 1, 0, 10000, "b", 1, 2),
     "rebalance: [0, 10s) closes: a 1, b 2");
  sl_job_confirm(job, s1);
  ckpt(job);
  ok(ckpt_is(12000, 12000, 1, 1), "the commit p1 will come back with: W 12000 at offset 1");
  int64_t p1_wm = ck_wms[1], p1_off = ck_off[1];
  feed(job, 0, 2, "a", 5, 22000);
  feed(job, 1, 2, "b", 6, 21000);
  /* Watermark 21 s closes [10s, 20s): a 3, b 4. */
  uint64_t s2 = advance(job, 0, rs);
  ok(s2 > s1 && rs->n == 4 && row_is(rs, 2, 10000, 20000, "a", 1, 3) && row_is(rs, 3, 10000, 20000, "b", 1, 4),
     "[10s, 20s) closes: a 3, b 4");
  uint64_t b_id = rs->v[3].id;
  sl_job_confirm(job, s2);
  ckpt(job);
  ok(ckpt_is(21000, 21000, 2, 2), "W 21000 for both, offsets 2, 2");

  /* p1 goes, and comes back with the older commit: the job's watermark
   * steps back to 12000, p0 keeps its floor (and W) 21000. */
  sl_job_revoke(job, 1);
  is_int(sl_job_assign(job, 1, p1_wm, 0), 0, "p1 assigned again with W 12000");
  is_int(job_wm(job), 12000, "the job's watermark steps back to p1's 12000");
  ckpt(job);
  ok(ckpt_is(21000, 12000, 2, -1), "checkpoint: p0's W stays 21000, p1's is what it was assigned, nothing of p1 held");
  /* p1's records from offset 1 again: [10s, 20s) ends after p1's floor. */
  is_int(feed(job, 1, p1_off, "b", 4, 13000), 0, "p1@1 (13 s), of the closed [10s, 20s), is aggregated, not late");
  is_int(feed(job, 1, p1_off + 1, "b", 6, 21000), 0, "p1@2 (21 s)");
  /* A record of p0 for [10s, 20s) is still late: p0's floor is 21000. */
  is_int(feed(job, 0, 3, "a", 7, 15000), SL_JOB_LATE, "p0@3 (15 s) is late for p0's floor 21000");
  sl_job_stats_t st;
  sl_job_stats(job, &st);
  is_int(st.late, 1, "one late record: p0's");
  ckpt(job);
  ok(ckpt_is(21000, 12000, 2, 1), "p1's rebuilt [10s, 20s) holds p1@1");
  /* Watermark min(22 s, 21 s) closes the rebuilt [10s, 20s): b alone (a's
   * row was emitted, and p0's late a:7 is not in it), the same row and id
   * as before. */
  size_t n0 = rs->n;
  uint64_t s3 = advance(job, 0, rs);
  ok(s3 > s2 && rs->n == n0 + 1 && row_is(rs, n0, 10000, 20000, "b", 1, 4) && rs->v[n0].id == b_id,
     "the rebuilt [10s, 20s) emits b 4 again, same id; no row for a");
  /* Unconfirmed: the emission has p1's records only. */
  ckpt(job);
  ok(ckpt_is(21000, 19999, 2, 1), "unconfirmed: p0's W stays 21000, p1's 19999 (its rebuilt window ends at 20000)");
  sl_job_confirm(job, s3);
  ckpt(job);
  ok(ckpt_is(21000, 21000, 2, 2), "confirmed: W 21000 for both, offsets 2, 2");
  finish(job, rs);
  ok(rs->n == n0 + 3 && row_is(rs, n0 + 1, 20000, 30000, "a", 1, 5) && row_is(rs, n0 + 2, 20000, 30000, "b", 1, 6),
     "finish: [20s, 30s) a 5, b 6 (p1@2 counted once: its first partial went with the revocation)");

  /* The job that owned both from the start, fed the same records. */
  feed(ref, 0, 0, "a", 1, 1000);
  feed(ref, 1, 0, "b", 2, 2000);
  feed(ref, 0, 1, "a", 3, 12000);
  feed(ref, 1, 1, "b", 4, 13000);
  advance(ref, 0, rr);
  feed(ref, 0, 2, "a", 5, 22000);
  feed(ref, 1, 2, "b", 6, 21000);
  advance(ref, 0, rr);
  feed(ref, 0, 3, "a", 7, 15000);
  finish(ref, rr);
  size_t bad = final_rows_differ(rr, rs, NULL, why, sizeof why);
  ok(bad == 0 && rr->n == 6, "the last row of each id equals the job's that owned both from the start (%s)",
     bad ? why : "same");
  sl_job_free(job);
  sl_job_free(ref);
  free(rs);
  free(rr);
}

/* Two instances: A owns p0 (keys a, c), B owns p1 (keys b, d); tumbling
 * 10 s, lateness 2 s.  A runs ahead; B commits and then goes, and its
 * partition moves to A with B's last commit.  A's rows for b and d then
 * equal what one job owning both partitions from the start emits, and A's
 * rows for its own keys are neither changed nor emitted twice. */
static const ev_t evs_p0[] = {
    {0, 0, "a", 1, 1000},  {0, 1, "c", 2, 4000},  {0, 2, "a", 3, 9000},  {0, 3, "c", 4, 12000},
    {0, 4, "a", 5, 15000}, {0, 5, "a", 6, 21000}, {0, 6, "c", 7, 19500}, {0, 7, "a", 8, 33000},
    {0, 8, "c", 9, 41000}, {0, 9, "a", 10, 45000},
};
static const ev_t evs_p1[] = {
    {1, 0, "b", 1, 2000},  {1, 1, "d", 2, 6000},  {1, 2, "b", 3, 11000}, {1, 3, "d", 4, 10500},
    {1, 4, "b", 5, 18000}, {1, 5, "d", 6, 24000}, {1, 6, "b", 7, 23000}, {1, 7, "b", 8, 27000},
    {1, 8, "d", 9, 31000}, {1, 9, "b", 10, 38000},
};

static void test_rebalance_takeover(void) {
  size_t n0 = sizeof evs_p0 / sizeof *evs_p0, n1 = sizeof evs_p1 / sizeof *evs_p1;
  msgpack_object r0[16], r1[16];
  for (size_t i = 0; i < n0; i++) r0[i] = rec(evs_p0[i].k, evs_p0[i].v);
  for (size_t i = 0; i < n1; i++) r1[i] = rec(evs_p1[i].k, evs_p1[i].v);
  sl_job_conf_t c = wconf(SL_WINDOW_TUMBLING, 10000, 0, 0, 2000, NULL);
  sl_job_t *a = new_job(&c), *b = new_job(&c), *ref = new_job(&c);
  crows_t *ra = calloc(1, sizeof *ra), *rb = calloc(1, sizeof *rb), *rr = calloc(1, sizeof *rr);
  char why[200] = "";

  /* The reference: both partitions from the start. */
  for (size_t i = 0; i < n0; i++) sl_job_feed(ref, 0, evs_p0[i].off, &r0[i], evs_p0[i].t, 0);
  for (size_t i = 0; i < n1; i++) sl_job_feed(ref, 1, evs_p1[i].off, &r1[i], evs_p1[i].t, 0);
  finish(ref, rr);

  /* A reads all of p0: watermark 43 s, [0, 10s) to [30s, 40s) closed. */
  sl_job_assign(a, 0, NONE, 0);
  for (size_t i = 0; i < n0; i++) {
    sl_job_feed(a, 0, evs_p0[i].off, &r0[i], evs_p0[i].t, 0);
    uint64_t s = advance(a, 0, ra);
    if (s) sl_job_confirm(a, s);
  }
  is_int(job_wm(a), 43000, "takeover: A's watermark 43 s");
  /* B reads p1 up to p1@6 (23 s): watermark 22 s, [0, 10s) and [10s, 20s)
   * closed and confirmed; its last commit: W 22000 at offset 5 (d 24 s of
   * the open [20s, 30s)). */
  sl_job_assign(b, 1, NONE, 0);
  for (size_t i = 0; i <= 6; i++) {
    sl_job_feed(b, 1, evs_p1[i].off, &r1[i], evs_p1[i].t, 0);
    uint64_t s = advance(b, 0, rb);
    if (s) sl_job_confirm(b, s);
  }
  ckpt(b);
  ok(ck_r == 0 && ck_wms[1] == 22000 && ck_off[1] == 5, "B's last commit: W %lld at offset %lld (22000 at 5)",
     (long long)ck_wms[1], (long long)ck_off[1]);
  int64_t wm1 = ck_wms[1], off1 = ck_off[1];
  size_t b_rows = rb->n;
  sl_job_free(b);

  /* p1 moves to A, with B's commit. */
  ckpt(a);
  int64_t a0 = ck_wms[0];
  size_t before = ra->n;
  sl_job_assign(a, 1, wm1, 0);
  is_int(job_wm(a), 22000, "A's watermark steps back to 22000");
  int64_t prev[2] = {0, 0};
  bool back = false;
  for (size_t i = 0; i < n1; i++) {
    if (evs_p1[i].off < off1) continue;
    is_int(sl_job_feed(a, 1, evs_p1[i].off, &r1[i], evs_p1[i].t, 0), 0, "A reads p1@%lld (%lld ms): not late",
           (long long)evs_p1[i].off, (long long)evs_p1[i].t);
    uint64_t s = advance(a, 0, ra);
    if (s) sl_job_confirm(a, s);
    ckpt(a);
    for (int p = 0; p < 2; p++) {
      if (ck_wms[p] < prev[p]) back = true;
      prev[p] = ck_wms[p];
    }
    if (i == 7)
      ok(ck_r == 0 && ck_wms[0] == (a0 > 25000 ? a0 : 25000) && ck_wms[1] == 25000,
         "A's W after p1@7: p0's the higher of 25000 and its checkpoint before the move (%lld), p1's 25000 "
         "(got %lld, %lld)",
         (long long)a0, (long long)ck_wms[0], (long long)ck_wms[1]);
  }
  ok(!back, "A's W of each partition never goes back while it reads p1");
  finish(a, ra);
  sl_job_stats_t st;
  sl_job_stats(a, &st);
  is_int(st.late, 0, "A counts none of p1's records late");

  /* B's rows before its commit, then A's after the move, for b and d. */
  crows_t *bd = calloc(1, sizeof *bd);
  for (size_t i = 0; i < b_rows; i++) bd->v[bd->n++] = rb->v[i];
  for (size_t i = before; i < ra->n; i++)
    if (strchr("bd", ra->v[i].key[0])) bd->v[bd->n++] = ra->v[i];
  size_t bad = final_rows_differ(rr, bd, "bd", why, sizeof why);
  ok(bad == 0, "b and d: B's rows, then A's, equal the reference's (%s)", bad ? why : "same");
  size_t after = 0;
  for (size_t i = before; i < ra->n; i++) after += strchr("bd", ra->v[i].key[0]) != NULL;
  ok(after == 4, "A emits b and d for [20s, 30s) and [30s, 40s): %zu rows", after);
  bad = final_rows_differ(rr, ra, "ac", why, sizeof why);
  ok(bad == 0, "a and c: A's rows equal the reference's (%s)", bad ? why : "same");
  size_t twice = 0;
  for (size_t i = 0; i < ra->n; i++)
    if (strchr("ac", ra->v[i].key[0]) && row_by_id(ra, ra->v[i].id) != &ra->v[i]) twice++;
  is_int(twice, 0, "A emits no row of a or c twice");
  sl_job_free(a);
  sl_job_free(ref);
  free(ra);
  free(rb);
  free(rr);
  free(bd);
}

/* After a rebalance the job's watermark is below p0's floor, so one
 * emission can close both a window rebuilt for p1 alone ([10s, 20s), below
 * p0's floor) and one with p0's records ([20s, 30s)).  p0's W must not go
 * back below 21000, what it was before: p0's committed offset 2 is before
 * p0@3, a record of [10s, 20s) that was late (a [10s, 20s) was emitted
 * from p0@1 and confirmed); with a W below 20000, a restart from that
 * commit aggregates p0@3 into a [10s, 20s) and emits, under the id of the
 * confirmed row a 3, a row a 7. */
static void test_rebalance_ckpt(void) {
  sl_job_conf_t c = wconf(SL_WINDOW_TUMBLING, 10000, 0, 0, 0, NULL);
  sl_job_t *job = new_job(&c);
  crows_t *rs = calloc(1, sizeof *rs), *rb = calloc(1, sizeof *rb);
  sl_job_assign(job, 0, NONE, 0);
  sl_job_assign(job, 1, NONE, 0);
  feed(job, 0, 0, "a", 1, 1000);
  feed(job, 1, 0, "b", 2, 2000);
  feed(job, 0, 1, "a", 3, 12000);
  feed(job, 1, 1, "b", 4, 13000);
  sl_job_confirm(job, advance(job, 0, rs));
  feed(job, 0, 2, "a", 5, 22000);
  feed(job, 1, 2, "b", 6, 21000);
  sl_job_confirm(job, advance(job, 0, rs));
  ckpt(job);
  ok(ckpt_is(21000, 21000, 2, 2), "rebalance checkpoint: W 21000 for both, offsets 2, 2 before the rebalance");
  sl_job_revoke(job, 1);
  sl_job_assign(job, 1, 12000, 0); /* p1's older commit: W 12000 at offset 1 */
  feed(job, 1, 1, "b", 4, 13000);
  feed(job, 1, 2, "b", 6, 21000);
  is_int(feed(job, 0, 3, "a", 7, 15000), SL_JOB_LATE, "p0@3 (15 s) is late for p0's floor");
  feed(job, 1, 3, "b", 8, 31000);
  feed(job, 0, 4, "a", 9, 32000);
  /* Watermark 31 s closes the rebuilt [10s, 20s) (b 4) and [20s, 30s)
   * (a 5, b 6) in one emission. */
  size_t n0 = rs->n;
  uint64_t s = advance(job, 0, rs);
  ok(s > 0 && rs->n == n0 + 3 && row_is(rs, n0, 10000, 20000, "b", 1, 4) &&
         row_is(rs, n0 + 1, 20000, 30000, "a", 1, 5) && row_is(rs, n0 + 2, 20000, 30000, "b", 1, 6),
     "one emission: [10s, 20s) b 4, [20s, 30s) a 5 and b 6");
  ckpt(job);
  int64_t w0 = ck_wms[0], o0 = ck_off[0], w1 = ck_wms[1], o1 = ck_off[1];
  ok(ck_r == 0 && w0 >= 21000 && w0 < 30000,
     "unconfirmed: p0's W does not go back below 21000 (and stays below the unconfirmed 30000): got %lld",
     (long long)w0);
  ok(o0 == 2, "p0's offset 2 (its record of [20s, 30s)): got %lld", (long long)o0);
  sl_job_confirm(job, s);
  finish(job, rs); /* A's rows of every window, for the comparison */

  /* A restart from that commit: p0 from offset 2 with W w0, p1 from o1 with w1. */
  sl_job_t *b = new_job(&c);
  sl_job_assign(b, 0, w0, 0);
  sl_job_assign(b, 1, w1, 0);
  if (o0 <= 2) feed(b, 0, 2, "a", 5, 22000);
  if (o0 <= 3) feed(b, 0, 3, "a", 7, 15000);
  if (o1 <= 1) feed(b, 1, 1, "b", 4, 13000);
  if (o1 <= 2) feed(b, 1, 2, "b", 6, 21000);
  feed(b, 1, 3, "b", 8, 31000);
  feed(b, 0, 4, "a", 9, 32000);
  finish(b, rb);
  size_t bad = 0;
  char why[300] = "";
  for (size_t i = 0; i < rb->n; i++) {
    const crow_t *mine = row_by_id(rs, rb->v[i].id);
    if (mine && !strcmp(mine->json, rb->v[i].json)) continue;
    if (!bad++)
      snprintf(why, sizeof why, "[%lld, %lld) %s n %lld s %lld, where A emitted n %lld s %lld",
               (long long)rb->v[i].start, (long long)rb->v[i].end, rb->v[i].key, (long long)rb->v[i].n,
               (long long)rb->v[i].s, mine ? (long long)mine->n : -1, mine ? (long long)mine->s : -1);
  }
  ok(bad == 0, "a restart from it emits only A's rows (W %lld, %lld; offsets %lld, %lld): %s", (long long)w0,
     (long long)w1, (long long)o0, (long long)o1, bad ? why : "same");
  sl_job_free(b);
  sl_job_free(job);
  free(rs);
  free(rb);
}

/* 7: early rows. */
static sl_kv_t peek_aggs[6] = {
    {.key = "n", .value = "count()"}, {.key = "s", .value = "sum(v)"},   {.key = "lo", .value = "min(v)"},
    {.key = "hi", .value = "max(v)"}, {.key = "f", .value = "first(v)"}, {.key = "l", .value = "last(v)"},
};

static const char *json_tail(const crow_t *r) {
  const char *p = strstr(r->json, "\"k\":");
  return p ? p : r->json;
}

static void test_peek(void) {
  sl_job_conf_t c = wconf(SL_WINDOW_TUMBLING, 10000, 0, 0, 0, NULL);
  c.aggregates = (sl_kv_list_t){peek_aggs, 6};
  sl_job_t *job = new_job(&c);
  crows_t *p1 = calloc(1, sizeof *p1), *p2 = calloc(1, sizeof *p2), *fin = calloc(1, sizeof *fin);
  feed(job, 0, 0, "a", 5, 1000);
  feed(job, 1, 0, "a", 2, 500);
  feed(job, 0, 1, "b", 7, 3000);
  feed(job, 1, 1, "a", 9, 9000);
  feed(job, 0, 2, "a", 4, 12000);
  is_int(advance(job, 0, fin), 0, "peek: watermark min(12 s, 9 s) closes nothing");
  sl_job_stats_t before, after;
  sl_job_stats(job, &before);
  ckpt(job);
  int64_t w0 = ck_wms[0], w1 = ck_wms[1], off0 = ck_off[0], off1 = ck_off[1];
  is_int(sl_job_peek(job, on_crow, p1), 0, "peek returns 0");
  /* [0, 10s): a = 5 (1 s), 2 (0.5 s), 9 (9 s); b = 7.  [10s, 20s): a = 4. */
  is_int(p1->n, 3, "one early row per open (window, key)");
  ok(p1->n == 3 && !strcmp(json_tail(&p1->v[0]), "\"k\":\"a\",\"n\":3,\"s\":16,\"lo\":2,\"hi\":9,\"f\":2,\"l\":9}") &&
         p1->v[0].start == 0,
     "[0, 10s) a: n 3, s 16, min 2, max 9, first 2 (0.5 s), last 9: %s", p1->v[0].json);
  ok(p1->n == 3 && !strcmp(json_tail(&p1->v[1]), "\"k\":\"b\",\"n\":1,\"s\":7,\"lo\":7,\"hi\":7,\"f\":7,\"l\":7}"),
     "[0, 10s) b: %s", p1->v[1].json);
  ok(p1->n == 3 && !strcmp(json_tail(&p1->v[2]), "\"k\":\"a\",\"n\":1,\"s\":4,\"lo\":4,\"hi\":4,\"f\":4,\"l\":4}") &&
         p1->v[2].start == 10000,
     "[10s, 20s) a: %s", p1->v[2].json);
  is_int(sl_job_peek(job, on_crow, p2), 0, "peek again");
  bool same = p2->n == p1->n;
  for (size_t i = 0; same && i < p1->n; i++) same = p1->v[i].id == p2->v[i].id && !strcmp(p1->v[i].json, p2->v[i].json);
  ok(same, "a second peek gives the same rows");
  sl_job_stats(job, &after);
  is_int(after.early_rows, 6, "early_rows counts both peeks");
  ok(after.state_keys == before.state_keys && after.open_windows == before.open_windows &&
         after.state_bytes == before.state_bytes && after.rows_emitted == 0 && after.emissions == before.emissions,
     "the state is unchanged (%llu keys, %llu windows, %llu bytes)", (unsigned long long)after.state_keys,
     (unsigned long long)after.open_windows, (unsigned long long)after.state_bytes);
  ckpt(job);
  ok(ckpt_is(w0, w1, off0, off1), "and so is the checkpoint (W %lld, %lld, offsets %lld, %lld)", (long long)w0,
     (long long)w1, (long long)off0, (long long)off1);
  /* One more record for [10s, 20s): a 1 at 15 s, then finish. */
  feed(job, 1, 2, "a", 1, 15000);
  uint64_t s = finish(job, fin);
  ok(s > 0 && fin->n == 3, "finish emits the three rows");
  same = fin->n == 3;
  for (size_t i = 0; same && i < 2; i++) same = fin->v[i].id == p1->v[i].id && !strcmp(fin->v[i].json, p1->v[i].json);
  ok(same, "[0, 10s)'s final rows are the early rows, id and values");
  ok(fin->n == 3 && fin->v[2].id == p1->v[2].id &&
         !strcmp(json_tail(&fin->v[2]), "\"k\":\"a\",\"n\":2,\"s\":5,\"lo\":1,\"hi\":4,\"f\":4,\"l\":1}"),
     "[10s, 20s) a, same id, now whole: n 2, s 5, min 1, max 4, first 4 (12 s), last 1 (15 s): %s", fin->v[2].json);
  sl_job_free(job);

  /* Sessions (gap 10 s): early rows of the open sessions, then the same at
   * finish. */
  c = wconf(SL_WINDOW_SESSION, 0, 0, 10000, 0, NULL);
  job = new_job(&c);
  p1->n = fin->n = 0;
  feed(job, 0, 0, "a", 1, 1000);
  feed(job, 1, 0, "a", 2, 5000);
  feed(job, 0, 1, "b", 3, 2000);
  is_int(sl_job_peek(job, on_crow, p1), 0, "session peek");
  ok(row_is(p1, 0, 1000, 15000, "a", 2, 3) && row_is(p1, 1, 2000, 12000, "b", 1, 3) && p1->n == 2,
     "early rows a [1s, 15s) n 2 s 3, b [2s, 12s) n 1 s 3");
  finish(job, fin);
  same = fin->n == 2;
  for (size_t i = 0; same && i < 2; i++) same = fin->v[i].id == p1->v[i].id && !strcmp(fin->v[i].json, p1->v[i].json);
  ok(same, "the session rows at finish equal the early rows");
  sl_job_free(job);
  free(p1);
  free(p2);
  free(fin);
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

  test_ckpt_tumbling();
  test_ckpt_per_partition();
  test_ckpt_filtered_late();
  test_ckpt_revoke();
  test_ckpt_session_guard();
  test_ckpt_session_shared();
  test_restarts();
  test_restart_twice();
  test_rebalance();
  test_rebalance_takeover();
  test_rebalance_ckpt();
  test_peek();
  test_late_update();

  msgpack_zone_destroy(&zone);
  for (int i = 0; i < n_kept; i++) free(kept[i]);
  return tap_done();
}
