/* The jobs engine alone, fed from memory on one thread: one job (tumbling
 * 10 s windows, group_by service with KEYS distinct values, count() +
 * avg(latency_ms) + percentile(latency_ms, 0.99) + count_distinct(user_id))
 * over N pre-generated access records, encoded once as msgpack and once as
 * JSON.  The timed loop is what the jobs stage does per Kafka record:
 * sl_record_decode -> sl_job_feed, and every ADVANCE records sl_job_advance
 * with each row turned into JSON (sl_job_row_to_json), the emission
 * confirmed and a checkpoint taken.  Event times advance by 10 s every
 * WINDOW records, so windows close regularly.
 *
 *   jobs_engine [-n N] [-k KEYS] [-u USERS] [-w WINDOW] [-a ADVANCE] [-p PARTS]
 *               [-f msgpack,json] [-D] [-R]
 *   jobs_engine -E [-n N] [-k KEYS] [-u USERS] [-w WINDOW]   > stream
 *
 * Prints one line per format:
 *   format=F records=N seconds=S rate=R value_bytes=B rows=.. open_windows=..
 *   state_keys=K state_bytes=SB bytes_per_key=SB/K heap_per_key=H decode_rate=D
 * state_* from sl_job_stats just before the first record of the third
 * window (the second is then the only one open, and full; with only two
 * windows, of the second; none with one); heap_per_key is the malloc'd
 * bytes in use then, beyond those at sl_job_new, per key (what the state
 * really costs, hash tables and allocator rounding included).  The stats
 * call is not timed.  -D also times a decode-only pass (decode_rate; 0
 * without it); -R prints the first row to stderr.  PARTS > 1 feeds
 * partition hash(key) % PARTS, as a keyed topic would.  PERF_CTL_FD and
 * PERF_ACK_FD in the environment: see perf_ctl.
 *
 * -E writes the msgpack records to stdout instead, for jobs_ceiling's
 * producer: per record a little-endian u32 value length, i64 event time
 * (ms), u16 key length, the key (the service) and the value. */
#include <inttypes.h>
#include <malloc.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "jobs/engine.h"
#include "jobs/job_conf.h"
#include "jobs/record_decode.h"

#define WINDOW_MS 10000
#define BASE_MS INT64_C(1700000000000) /* 2023-11-14T22:13:20Z: a multiple of 10 s */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

/* Under `perf record --control fd:CTL,ACK -D -1` with PERF_CTL_FD=CTL and
 * PERF_ACK_FD=ACK in the environment, only the timed loops are sampled. */
static void perf_ctl(const char *cmd) {
  const char *ctl = getenv("PERF_CTL_FD"), *ack = getenv("PERF_ACK_FD");
  if (!ctl || !ack) return;
  char buf[16];
  if (write(atoi(ctl), cmd, strlen(cmd)) < 0 || read(atoi(ack), buf, sizeof buf) < 0)
    perror("jobs_engine: perf control");
}

/* ---- records ------------------------------------------------------------------ */

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}
static uint64_t rnd(uint64_t *s) {
  return mix64(*s += 0x9e3779b97f4a7c15u);
}
static unsigned pick(uint64_t *s, unsigned n) {
  return (unsigned)(rnd(s) % n);
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
static const char *const services[] = {
    "checkout", "cart",   "catalog", "search",  "auth",  "payments", "shipping", "front",
    "ledger",   "notify", "profile", "reviews", "stock", "pricing",  "media",    "gateway"};
static const char *const methods[] = {"GET", "GET",  "GET",  "GET", "GET",
                                      "GET", "POST", "POST", "PUT", "DELETE"};
static const char *const resources[] = {"orders",   "users",    "products", "carts",
                                        "sessions", "invoices", "reviews",  "stock"};

/* Every record's fields; strings are the fixed-size texts below. */
typedef struct {
  char service[24], user[16], path[48], host[12];
  const char *method;
  unsigned key; /* which service */
  unsigned status;
  unsigned latency_us; /* latency_ms = latency_us / 1000.0 */
} fields_t;

static void gen(uint64_t *s, unsigned keys, unsigned users, fields_t *f) {
  unsigned k = f->key = pick(s, keys);
  snprintf(f->service, sizeof f->service, "%s-%04u", services[k % COUNT(services)],
           k / (unsigned)COUNT(services));
  snprintf(f->user, sizeof f->user, "u%08" PRIx64, mix64(pick(s, users)) & 0xffffffffu);
  unsigned r = pick(s, 100);
  f->status = r < 90 ? 200 : r < 97 ? 404 : 500;
  unsigned band = pick(s, 100);
  f->latency_us = band < 50   ? 100 + pick(s, 19900)
                  : band < 85 ? 20000 + pick(s, 180000)
                  : band < 97 ? 200000 + pick(s, 800000)
                              : 1000000 + pick(s, 1000001);
  f->method = methods[pick(s, COUNT(methods))];
  snprintf(f->path, sizeof f->path, "/api/v1/%s/%u", resources[pick(s, COUNT(resources))],
           pick(s, 10000000));
  snprintf(f->host, sizeof f->host, "web-%02u", pick(s, 40));
}

static int json_of(const fields_t *f, char *out, size_t cap) {
  return snprintf(out, cap,
                  "{\"service\":\"%s\",\"user_id\":\"%s\",\"latency_ms\":%u.%03u,\"status\":%u,"
                  "\"method\":\"%s\","
                  "\"path\":\"%s\",\"host\":\"%s\"}",
                  f->service, f->user, f->latency_us / 1000, f->latency_us % 1000, f->status,
                  f->method, f->path, f->host);
}

static void pack_str(msgpack_packer *pk, const char *s) {
  msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void msgpack_of(const fields_t *f, msgpack_packer *pk) {
  msgpack_pack_map(pk, 7);
  pack_str(pk, "service");
  pack_str(pk, f->service);
  pack_str(pk, "user_id");
  pack_str(pk, f->user);
  pack_str(pk, "latency_ms");
  msgpack_pack_double(pk, f->latency_us / 1000.0);
  pack_str(pk, "status");
  msgpack_pack_uint32(pk, f->status);
  pack_str(pk, "method");
  pack_str(pk, f->method);
  pack_str(pk, "path");
  pack_str(pk, f->path);
  pack_str(pk, "host");
  pack_str(pk, f->host);
}

/* N values back to back; value i is data[off[i], off[i + 1]). */
typedef struct {
  sl_buf_t data;
  size_t *off;
} recs_t;

typedef struct {
  size_t n;
  unsigned keys, users, window, parts;
  recs_t mp, json;
  uint32_t *part; /* partition of record i */
} input_t;

static int64_t event_ms(const input_t *in, size_t i) {
  return BASE_MS + (int64_t)(i / in->window) * WINDOW_MS +
         (int64_t)((i % in->window) * WINDOW_MS / in->window);
}

static void die(const char *what) {
  fprintf(stderr, "jobs_engine: %s\n", what);
  exit(1);
}

static void generate(input_t *in, bool want_json) {
  uint64_t s = 0x5eed;
  in->mp.off = malloc((in->n + 1) * sizeof(size_t));
  in->json.off = malloc((in->n + 1) * sizeof(size_t));
  in->part = malloc(in->n * sizeof(uint32_t));
  if (!in->mp.off || !in->json.off || !in->part) die("out of memory");
  msgpack_packer pk;
  msgpack_packer_init(&pk, &in->mp.data, sl_buf_msgpack_write);
  for (size_t i = 0; i < in->n; i++) {
    fields_t f;
    gen(&s, in->keys, in->users, &f);
    in->mp.off[i] = in->mp.data.len;
    msgpack_of(&f, &pk);
    in->part[i] = (uint32_t)(mix64(f.key) % in->parts);
    if (want_json) {
      char buf[256];
      int n = json_of(&f, buf, sizeof buf);
      in->json.off[i] = in->json.data.len;
      if (sl_buf_append(&in->json.data, buf, (size_t)n)) die("out of memory");
    }
  }
  in->mp.off[in->n] = in->mp.data.len;
  in->json.off[in->n] = in->json.data.len;
}

/* -E: the records for the producer (see the top). */
static void emit_stream(input_t *in) {
  uint64_t s = 0x5eed;
  sl_buf_t v = {0}, frame = {0};
  msgpack_packer pk;
  msgpack_packer_init(&pk, &v, sl_buf_msgpack_write);
  for (size_t i = 0; i < in->n; i++) {
    fields_t f;
    gen(&s, in->keys, in->users, &f);
    sl_buf_reset(&v);
    msgpack_of(&f, &pk);
    uint32_t len = (uint32_t)v.len;
    int64_t ts = event_ms(in, i);
    uint16_t klen = (uint16_t)strlen(f.service);
    if (sl_buf_append(&frame, &len, 4) || sl_buf_append(&frame, &ts, 8) ||
        sl_buf_append(&frame, &klen, 2) || sl_buf_append(&frame, f.service, klen) ||
        sl_buf_append(&frame, v.data, v.len))
      die("out of memory");
    if (frame.len > (1 << 20) || i + 1 == in->n) {
      if (fwrite(frame.data, 1, frame.len, stdout) != frame.len) die("write error");
      sl_buf_reset(&frame);
    }
  }
  if (fflush(stdout)) die("write error");
  sl_buf_free(&v);
  sl_buf_free(&frame);
}

/* ---- the job ------------------------------------------------------------------ */

static char *group_by[] = {"service"};
static sl_kv_t aggs[] = {
    {.key = "n", .value = "count()"},
    {.key = "avg_latency", .value = "avg(latency_ms)"},
    {.key = "p99_latency", .value = "percentile(latency_ms, 0.99)"},
    {.key = "users", .value = "count_distinct(user_id)"},
};
static char *topics[] = {"bench"};
static char *sinks[] = {"out"};

static sl_job_conf_t job_conf(void) {
  sl_job_conf_t c = {0};
  c.name = "bench";
  c.topics = (sl_str_list_t){topics, 1};
  c.group_by = (sl_str_list_t){group_by, 1};
  c.window.type = 0; /* tumbling */
  c.window.size_ns = (int64_t)WINDOW_MS * 1000000;
  c.aggregates = (sl_kv_list_t){aggs, COUNT(aggs)};
  c.sinks = (sl_str_list_t){sinks, 1};
  c.max_keys = 100000; /* the option's default */
  c.idle_timeout_ns = INT64_C(30) * 1000000000;
  c.commit_interval_ns = 1000000000;
  c.format = 1;
  return c;
}

typedef struct {
  sl_buf_t json;
  uint64_t rows, bytes;
  bool show; /* -R: the first row to stderr */
} rows_t;

static void on_row(const sl_job_row_t *row, void *arg) {
  rows_t *r = arg;
  sl_buf_reset(&r->json);
  if (sl_job_row_to_json(row, &r->json)) die("row to JSON failed");
  if (r->show && !r->rows)
    fprintf(stderr, "jobs_engine: first row: %.*s\n", (int)r->json.len, r->json.data);
  r->rows++;
  r->bytes += r->json.len;
}

typedef struct {
  double seconds, decode_seconds;
  rows_t rows;
  sl_job_stats_t at; /* at the measuring point */
  size_t heap_per_key;
  bool measured;
} result_t;

__attribute__((noinline)) static void run(const input_t *in, sl_record_format_t fmt,
                                          size_t advance_every, bool decode_pass, result_t *res) {
  const recs_t *rs = fmt == SL_RECORD_MSGPACK ? &in->mp : &in->json;
  sl_job_conf_t c = job_conf();
  c.format = (int)fmt;
  sl_job_t *job = NULL;
  sl_job_error_t err;
  if (sl_job_new(&c, &job, &err)) {
    fprintf(stderr, "jobs_engine: the job does not compile: %s: %s\n", err.option, err.msg);
    exit(1);
  }
  sl_record_decoder_t dec;
  sl_record_decoder_init(&dec);
  bool show = res->rows.show;
  memset(res, 0, sizeof *res);
  res->rows.show = show;

  if (decode_pass) {
    uint64_t sink = 0;
    double t0 = now_s();
    for (size_t i = 0; i < in->n; i++) {
      const msgpack_object *o;
      const char *why;
      if (sl_record_decode(&dec, fmt, rs->data.data + rs->off[i], rs->off[i + 1] - rs->off[i], &o,
                           &why))
        die(why);
      sink += o->via.map.size;
    }
    res->decode_seconds = now_s() - t0;
    if (sink != (uint64_t)in->n * 7) die("decode pass: wrong maps");
  }

  int64_t *offsets = calloc(in->parts, sizeof *offsets);
  int64_t *ck_wm = calloc(in->parts, sizeof *ck_wm), *ck_off = calloc(in->parts, sizeof *ck_off);
  if (!offsets || !ck_wm || !ck_off) die("out of memory");
  size_t heap0 = heap_in_use();
  /* The first record of the third window (of the second when there are
   * only two). */
  size_t measure_at = in->n > 2 * (size_t)in->window ? 2 * (size_t)in->window : in->window;
  double excluded = 0;
  int64_t now = wall_ms();
  perf_ctl("enable\n");
  double t0 = now_s();
  for (size_t i = 0; i < in->n; i++) {
    if (i == measure_at) {
      double s0 = now_s();
      sl_job_stats(job, &res->at);
      size_t heap = heap_in_use();
      res->heap_per_key = res->at.state_keys ? (heap - heap0) / res->at.state_keys : 0;
      res->measured = true;
      excluded += now_s() - s0;
    }
    const msgpack_object *o;
    const char *why;
    if (sl_record_decode(&dec, fmt, rs->data.data + rs->off[i], rs->off[i + 1] - rs->off[i], &o,
                         &why))
      die(why);
    uint32_t p = in->part[i];
    int r = sl_job_feed(job, (int)p, offsets[p]++, o, event_ms(in, i), now);
    if (r) die(r == SL_JOB_LATE ? "a record came late" : sl_strerror(r));
    if ((i + 1) % advance_every == 0) {
      now = wall_ms();
      uint64_t seq = sl_job_advance(job, now, on_row, &res->rows);
      if (seq) sl_job_confirm(job, seq);
      if (sl_job_checkpoint(job, ck_wm, ck_off, in->parts)) die("checkpoint: out of memory");
    }
  }
  res->seconds = now_s() - t0 - excluded;
  perf_ctl("disable\n");
  sl_job_finish(job, on_row, &res->rows);
  sl_job_stats_t end;
  sl_job_stats(job, &end);
  if (end.records_in != in->n || end.late || end.keys_dropped || end.rows_failed)
    die("records lost in the job");
  sl_buf_free(&res->rows.json);
  sl_record_decoder_free(&dec);
  sl_job_free(job);
  free(offsets);
  free(ck_wm);
  free(ck_off);
}

static int usage(void) {
  fprintf(stderr,
          "usage: jobs_engine [-n N] [-k KEYS] [-u USERS] [-w WINDOW] [-a ADVANCE] [-p PARTS]\n"
          "                   [-f msgpack,json] [-D] [-R] [-E]\n");
  return 64;
}

int main(int argc, char **argv) {
  input_t in = {.n = 3000000, .keys = 10000, .users = 100000, .window = 250000, .parts = 1};
  size_t advance_every = 10000;
  const char *formats = "msgpack,json";
  bool decode_pass = false, emit = false, show_row = false;
  int opt;
  while ((opt = getopt(argc, argv, "n:k:u:w:a:p:f:DER")) != -1) {
    switch (opt) {
      case 'n':
        in.n = strtoull(optarg, NULL, 10);
        break;
      case 'k':
        in.keys = (unsigned)strtoul(optarg, NULL, 10);
        break;
      case 'u':
        in.users = (unsigned)strtoul(optarg, NULL, 10);
        break;
      case 'w':
        in.window = (unsigned)strtoul(optarg, NULL, 10);
        break;
      case 'a':
        advance_every = strtoull(optarg, NULL, 10);
        break;
      case 'p':
        in.parts = (unsigned)strtoul(optarg, NULL, 10);
        break;
      case 'f':
        formats = optarg;
        break;
      case 'D':
        decode_pass = true;
        break;
      case 'E':
        emit = true;
        break;
      case 'R':
        show_row = true;
        break;
      default:
        return usage();
    }
  }
  if (!in.n || !in.keys || !in.users || !in.window || !advance_every || !in.parts ||
      in.parts > 4096)
    return usage();
  if (emit) {
    emit_stream(&in);
    return 0;
  }
  bool want_json = strstr(formats, "json") != NULL;
  double g0 = now_s();
  generate(&in, want_json);
  fprintf(stderr, "jobs_engine: %zu records generated in %.1fs (msgpack %.1f MB%s)\n", in.n,
          now_s() - g0, in.mp.data.len / 1e6, want_json ? ", JSON too" : "");

  static const struct {
    const char *name;
    sl_record_format_t fmt;
  } fmts[] = {{"msgpack", SL_RECORD_MSGPACK}, {"json", SL_RECORD_JSON}};
  for (size_t f = 0; f < COUNT(fmts); f++) {
    if (!strstr(formats, fmts[f].name)) continue;
    const recs_t *rs = fmts[f].fmt == SL_RECORD_MSGPACK ? &in.mp : &in.json;
    result_t res = {.rows.show = show_row};
    run(&in, fmts[f].fmt, advance_every, decode_pass, &res);
    const sl_job_stats_t *a = &res.at;
    printf("format=%s records=%zu seconds=%.3f rate=%.0f value_bytes=%.1f rows=%" PRIu64
           " row_bytes=%.1f "
           "open_windows=%" PRIu64 " state_keys=%" PRIu64 " state_bytes=%" PRIu64
           " bytes_per_key=%.0f "
           "heap_per_key=%zu decode_rate=%.0f\n",
           fmts[f].name, in.n, res.seconds, (double)in.n / res.seconds,
           (double)rs->data.len / (double)in.n, res.rows.rows,
           res.rows.rows ? (double)res.rows.bytes / (double)res.rows.rows : 0.0,
           res.measured ? a->open_windows : 0, a->state_keys, a->state_bytes,
           a->state_keys ? (double)a->state_bytes / (double)a->state_keys : 0.0, res.heap_per_key,
           res.decode_seconds > 0 ? (double)in.n / res.decode_seconds : 0.0);
    fflush(stdout);
  }
  sl_buf_free(&in.mp.data);
  sl_buf_free(&in.json.data);
  free(in.mp.off);
  free(in.json.off);
  free(in.part);
  return 0;
}
