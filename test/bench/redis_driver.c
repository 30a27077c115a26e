/* Drives the redis sink plugin alone, as the agent would: redis.so loaded
 * with dlopen, its options bound by name from its own table, rows of a
 * fake host (a job's row: id, job, window bounds, a page group key, four
 * aggregates; ~170 bytes of JSON) handed to it in writes of BATCH rows
 * with INFLIGHT writes outstanding, on a libuv loop.  Prints the rate from
 * the first write to the last write_done:
 *
 *   redis_driver PLUGIN PORT MODE ROWS BATCH KEYS INFLIGHT
 *   -> "rows 1000000 seconds 1.234 rows_per_s 810372"
 *
 * With `--print-row MODE`, prints instead the arguments of one row's
 * command after the key, one a line (what redis-benchmark is given for the
 * same command).  Links libuv and libdl only. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <inttypes.h>
#include <sluice/sink.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* ---- rows ------------------------------------------------------------------------ */

#define NFIELDS 8

struct sluice_row {
  char json[256];
  size_t json_len;
  char id_hex[17];
  uint64_t id;
  char page[16];
  const char *names[NFIELDS];
  sluice_value_t v[NFIELDS];
};

static void make_row(struct sluice_row *r, size_t key) {
  static const char *const names[NFIELDS] = {"id", "job", "window_start", "window_end", "page",
                                             "n",  "s",   "avg"};
  r->id = 0x9e3779b97f4a7c15ull * (key + 1);
  snprintf(r->id_hex, sizeof r->id_hex, "%016" PRIx64, r->id);
  snprintf(r->page, sizeof r->page, "page%zu", key);
  int64_t n = 42 + (int64_t)(key % 100), sum = 12345 + (int64_t)key;
  double avg = (double)sum / (double)n;
  r->json_len = (size_t)snprintf(
      r->json, sizeof r->json,
      "{\"id\":\"%s\",\"job\":\"pv\",\"window_start\":\"2023-11-14T22:13:00.000Z\","
      "\"window_end\":\"2023-11-14T22:13:10.000Z\",\"page\":\"%s\",\"n\":%" PRId64 ",\"s\":%" PRId64
      ",\"avg\":%.17g}",
      r->id_hex, r->page, n, sum, avg);
  memcpy(r->names, names, sizeof names);
#define S(x) (sluice_value_t){.type = SLUICE_VALUE_STRING, .s = (x), .len = strlen(x)}
  r->v[0] = S(r->id_hex);
  r->v[1] = S("pv");
  r->v[2] = S("2023-11-14T22:13:00.000Z");
  r->v[3] = S("2023-11-14T22:13:10.000Z");
  r->v[4] = S(r->page);
  r->v[5] = (sluice_value_t){.type = SLUICE_VALUE_INT, .i = n};
  r->v[6] = (sluice_value_t){.type = SLUICE_VALUE_INT, .i = sum};
  r->v[7] = (sluice_value_t){.type = SLUICE_VALUE_FLOAT, .f = avg};
}

/* ---- the fake host ------------------------------------------------------------------ */

struct sluice_metric {
  double v;
};
struct sluice_ctx {
  int destroyed;
};
struct sluice_write {
  size_t first, n;
};

static struct sluice_metric metric;
static struct sluice_ctx ctx;
static uv_loop_t loop;
static const sluice_sink_plugin_t *P;
static void *self;
static struct sluice_row *pool;
static size_t pool_n, rows_total, batch, sent, done_rows, failed_rows, inflight;
static const sluice_row_t **ptrs;
static uint64_t t0, t1;

static void h_log(sluice_ctx_t *c, sluice_log_level_t level, const char *fmt, ...) {
  (void)c;
  if (level > SLUICE_LOG_WARN) return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "redis_driver: plugin: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}
static sluice_metric_t *h_metric(sluice_ctx_t *c, const char *name, const char *help) {
  (void)c, (void)name, (void)help;
  return &metric;
}
static void h_metric_add(sluice_metric_t *m, double v) {
  m->v += v;
}
static void h_metric_set(sluice_metric_t *m, double v) {
  m->v = v;
}
static uint64_t h_row_id(const sluice_row_t *r) {
  return r->id;
}
static const char *h_row_id_hex(const sluice_row_t *r) {
  return r->id_hex;
}
static const char *h_row_job(const sluice_row_t *r) {
  (void)r;
  return "pv";
}
static int64_t h_row_window(const sluice_row_t *r) {
  (void)r;
  return 1700000000000;
}
static const char *h_row_json(const sluice_row_t *r, size_t *len) {
  *len = r->json_len;
  return r->json;
}
static size_t h_row_nfields(const sluice_row_t *r) {
  (void)r;
  return NFIELDS;
}
static const char *h_row_field(const sluice_row_t *r, size_t i, sluice_value_t *v) {
  if (i >= NFIELDS) return NULL;
  *v = r->v[i];
  return r->names[i];
}
static bool h_row_get(const sluice_row_t *r, const char *name, sluice_value_t *v) {
  for (size_t i = 0; i < NFIELDS; i++)
    if (strcmp(r->names[i], name) == 0) {
      *v = r->v[i];
      return true;
    }
  return false;
}
static void h_row_done(sluice_write_t *w, size_t i, sluice_status_t status, const char *message) {
  (void)w, (void)i, (void)status;
  if (failed_rows++ == 0)
    fprintf(stderr, "redis_driver: a row failed: %s\n", message ? message : "?");
}

static void submit(void);

static void h_write_done(sluice_write_t *w, sluice_status_t status, const char *message) {
  if (status != SLUICE_OK && failed_rows++ == 0)
    fprintf(stderr, "redis_driver: a write failed: %s\n", message ? message : "?");
  done_rows += w->n;
  inflight--;
  free(w);
  if (done_rows == rows_total) {
    t1 = uv_hrtime();
    P->destroy(self);
    return;
  }
  submit();
}
static void h_destroyed(sluice_ctx_t *c) {
  c->destroyed = 1;
}

static const sluice_host_t host = {
    .abi_major = SLUICE_SINK_ABI_MAJOR,
    .abi_minor = SLUICE_SINK_ABI_MINOR,
    .log = h_log,
    .counter = h_metric,
    .gauge = h_metric,
    .metric_add = h_metric_add,
    .metric_set = h_metric_set,
    .row_id = h_row_id,
    .row_id_hex = h_row_id_hex,
    .row_job = h_row_job,
    .row_window_start = h_row_window,
    .row_window_end = h_row_window,
    .row_json = h_row_json,
    .row_nfields = h_row_nfields,
    .row_field = h_row_field,
    .row_get = h_row_get,
    .row_done = h_row_done,
    .write_done = h_write_done,
    .destroyed = h_destroyed,
};

static size_t max_inflight;

/* Keeps max_inflight writes outstanding, each of the next `batch` rows of
 * the pool (cycling through it: KEYS distinct keys). */
static void submit(void) {
  while (inflight < max_inflight && sent < rows_total) {
    size_t n = rows_total - sent < batch ? rows_total - sent : batch;
    struct sluice_write *w = malloc(sizeof *w);
    *w = (struct sluice_write){sent % pool_n, n};
    sent += n;
    inflight++;
    if (P->write(self, w, ptrs + w->first, n)) {
      fprintf(stderr, "redis_driver: the plugin refused a write\n");
      exit(1);
    }
  }
}

/* ---- options, bound by name from the plugin's table ----------------------------------------- */

static void set_opt(void *conf, const char *name, const char *value) {
  for (const sluice_opt_t *o = P->options; o->name; o++) {
    if (strcmp(o->name, name) != 0) continue;
    char *at = (char *)conf + o->offset;
    switch (o->type) {
      case SLUICE_OPT_STRING:
        *(char **)at = (char *)value;
        return;
      case SLUICE_OPT_INT:
        *(int64_t *)at = strtoll(value, NULL, 10);
        return;
      case SLUICE_OPT_DURATION:
        *(int64_t *)at = strtoll(value, NULL, 10) * 1000000;
        return; /* ms */
      case SLUICE_OPT_ENUM: {
        int i = 0;
        for (const char *c = o->choices; c; c = strchr(c, '|'), c = c ? c + 1 : NULL, i++)
          if (strncmp(c, value, strlen(value)) == 0 &&
              (c[strlen(value)] == '|' || !c[strlen(value)])) {
            *(int *)at = i;
            return;
          }
        break;
      }
      default:
        break;
    }
  }
  fprintf(stderr, "redis_driver: cannot set option %s = %s\n", name, value);
  exit(2);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--print-row") == 0) {
    struct sluice_row r;
    make_row(&r, 0);
    if (strcmp(argv[2], "set") == 0) {
      printf("%s\n", r.json);
    } else {
      for (size_t i = 0; i < NFIELDS; i++) {
        char b[64];
        const sluice_value_t *v = &r.v[i];
        if (v->type == SLUICE_VALUE_STRING) snprintf(b, sizeof b, "%.*s", (int)v->len, v->s);
        if (v->type == SLUICE_VALUE_INT) snprintf(b, sizeof b, "%" PRId64, v->i);
        if (v->type == SLUICE_VALUE_FLOAT) snprintf(b, sizeof b, "%.17g", v->f);
        printf("%s\n%s\n", r.names[i], b);
      }
    }
    return 0;
  }
  if (argc != 8) {
    fprintf(stderr, "usage: redis_driver PLUGIN PORT set|hash ROWS BATCH KEYS INFLIGHT\n");
    return 2;
  }
  void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!so || !(P = dlsym(so, SLUICE_SINK_SYMBOL))) {
    fprintf(stderr, "redis_driver: %s\n", dlerror());
    return 1;
  }
  rows_total = strtoull(argv[4], NULL, 10);
  batch = strtoull(argv[5], NULL, 10);
  pool_n = strtoull(argv[6], NULL, 10);
  max_inflight = strtoull(argv[7], NULL, 10);
  if (pool_n < batch * max_inflight) pool_n = batch * max_inflight;
  /* Room to hand out `batch` consecutive rows from any start. */
  pool = calloc(pool_n, sizeof *pool);
  ptrs = calloc(pool_n + batch, sizeof *ptrs);
  for (size_t i = 0; i < pool_n; i++) make_row(&pool[i], i);
  for (size_t i = 0; i < pool_n + batch; i++) ptrs[i] = &pool[i % pool_n];
  /* Every write starts at a multiple of batch modulo pool_n; make pool_n a
   * multiple of batch so that a write never runs past ptrs. */
  pool_n -= pool_n % batch;

  void *conf = calloc(1, P->conf_size);
  char address[64];
  snprintf(address, sizeof address, "127.0.0.1:%s", argv[2]);
  set_opt(conf, "address", address);
  set_opt(conf, "key", "pv:${page}");
  set_opt(conf, "mode", argv[3]);
  set_opt(conf, "db", "0");
  set_opt(conf, "ttl", "0");
  set_opt(conf, "connect_timeout", "5000");
  set_opt(conf, "command_timeout", "10000");
  uv_loop_init(&loop);
  char err[512] = "";
  if (P->create(&host, &ctx, conf, &loop, &self, err, sizeof err)) {
    fprintf(stderr, "redis_driver: create: %s\n", err);
    return 1;
  }
  t0 = uv_hrtime();
  submit();
  uv_run(&loop, UV_RUN_DEFAULT);
  if (!ctx.destroyed || done_rows != rows_total) {
    fprintf(stderr, "redis_driver: the plugin did not finish (%zu of %zu rows)\n", done_rows,
            rows_total);
    return 1;
  }
  double secs = (double)(t1 - t0) / 1e9;
  printf("rows %zu seconds %.3f rows_per_s %.0f failed %zu\n", rows_total, secs,
         (double)rows_total / secs, failed_rows);
  uv_loop_close(&loop);
  free(conf);
  free(pool);
  free(ptrs);
  return failed_rows ? 1 : 0;
}
