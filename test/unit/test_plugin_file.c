/* The file sink plugin as the agent will see it: file.so loaded with
 * dlopen (its path is argv[1]), its descriptor read through the SDK header
 * only, and driven on a real uv loop by a fake host defined here (rows of
 * our own, write_done and destroyed recording what came).  Checks: the
 * descriptor and its option table; batches queued together land in the
 * file in order, each row once, one JSON object a line, with fsync on, also
 * when the host writes from inside write_done; append keeps what the file
 * held and truncate does not; a flush comes after the writes before it;
 * every accepted write reports exactly once, never from inside the call;
 * an unwritable path fails create with its name and reason; /dev/full is
 * RETRY; a write cut short by the file size limit is cut back to the last
 * whole batch and reported FATAL, and the host's retry of the same batch
 * leaves every line whole and once; stdout is written and left open; and
 * destroy lets the write in flight finish with its real outcome, cancels
 * the queued ones, then calls destroyed, also when called from inside
 * write_done.
 *
 * Links libuv and libdl only: nothing of the agent.  Every wait is for
 * callbacks, under a deadline; the loop is closed cleanly at the end. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strndup */
#endif
#include <dlfcn.h>
#include <signal.h>
#include <sluice/sink.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "tap.h"

#define DEADLINE_MS 20000
#define MAX_CALLS 64

static const sluice_sink_plugin_t *P;
static char tmpdir[] = "/tmp/sluice-plugin-file-XXXXXX";
static uv_loop_t loop;
static uv_timer_t deadline;
static bool timed_out;

/* ---- the fake host ------------------------------------------------------------ */

struct sluice_row {
  char json[32];
  size_t len;
  uint64_t id;
};

struct sluice_metric {
  const char *name, *help;
  double value;
};

struct sluice_ctx {
  struct sluice_metric metric; /* the one counter the plugin registers */
  int counters;                /* host->counter calls */
  int destroyed;
  int dones_at_destroy;
};

/* One write or flush handed to the plugin: a token to know it by, and
 * whether it was completed already (a second write_done is a failure). */
struct sluice_write {
  int token;
  int done;
};

/* Host functions the file sink has no reason to call, over every case. */
static int unexpected;

/* What the host saw: each write_done's token in order, with its status. */
static struct {
  int token[MAX_CALLS];
  int status[MAX_CALLS];
  char message[MAX_CALLS][256];
  int n;
  bool in_call; /* set around write/flush/destroy: write_done must not come then */
  int early;    /* write_dones from inside a call */
  int twice;    /* write_dones for a write already completed */
  int after_destroyed;
  /* Host behaviour inside write_done: */
  int write_on;   /* token whose write_done writes write_extra */
  int destroy_on; /* token whose write_done destroys the sink */
  struct sluice_write *write_extra;
  const sluice_row_t *const *extra_rows;
  size_t extra_n;
  void *self;
  struct sluice_ctx *ctx;
} seen;

static void h_log(sluice_ctx_t *ctx, sluice_log_level_t level, const char *fmt, ...) {
  (void)ctx;
  va_list ap;
  va_start(ap, fmt);
  printf("# plugin log %d: ", (int)level);
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
}

static sluice_metric_t *h_counter(sluice_ctx_t *ctx, const char *name, const char *help) {
  ctx->counters++;
  ctx->metric = (struct sluice_metric){.name = name, .help = help};
  return &ctx->metric;
}

static sluice_metric_t *h_gauge(sluice_ctx_t *ctx, const char *name, const char *help) {
  (void)name, (void)help;
  unexpected++;
  return &ctx->metric;
}

static void h_metric_add(sluice_metric_t *m, double v) {
  if (v < 0) unexpected++;
  m->value += v;
}

static void h_metric_set(sluice_metric_t *m, double v) {
  (void)m, (void)v;
  unexpected++;
}

static sluice_timer_t *h_timer_new(sluice_ctx_t *ctx, void (*cb)(void *arg), void *arg) {
  (void)ctx, (void)cb, (void)arg;
  unexpected++;
  return NULL;
}

static void h_timer(sluice_timer_t *t) {
  (void)t;
  unexpected++;
}

static void h_timer_start(sluice_timer_t *t, uint64_t ms) {
  (void)t, (void)ms;
  unexpected++;
}

static uint64_t h_row_id(const sluice_row_t *row) {
  return row->id;
}

static const char *h_row_id_hex(const sluice_row_t *row) {
  static char hex[17];
  snprintf(hex, sizeof hex, "%016llx", (unsigned long long)row->id);
  return hex;
}

static const char *h_row_job(const sluice_row_t *row) {
  (void)row;
  return "job";
}

static int64_t h_row_window(const sluice_row_t *row) {
  (void)row;
  return 0;
}

static const char *h_row_json(const sluice_row_t *row, size_t *len) {
  *len = row->len;
  return row->json;
}

static const void *h_row_msgpack(const sluice_row_t *row, size_t *len) {
  (void)row;
  *len = 0;
  unexpected++;
  return NULL;
}

static size_t h_row_nfields(const sluice_row_t *row) {
  (void)row;
  return 0;
}

static const char *h_row_field(const sluice_row_t *row, size_t i, sluice_value_t *v) {
  (void)row, (void)i, (void)v;
  return NULL;
}

static bool h_row_get(const sluice_row_t *row, const char *name, sluice_value_t *v) {
  (void)row, (void)name, (void)v;
  return false;
}

static void h_row_done(sluice_write_t *w, size_t i, sluice_status_t status, const char *message) {
  (void)w, (void)i, (void)status, (void)message;
  unexpected++;
}

static void h_write_done(sluice_write_t *w, sluice_status_t status, const char *message) {
  if (seen.in_call) seen.early++;
  if (w->done++) seen.twice++;
  if (seen.ctx && seen.ctx->destroyed) seen.after_destroyed++;
  if (seen.n < MAX_CALLS) {
    seen.token[seen.n] = w->token;
    seen.status[seen.n] = (int)status;
    snprintf(seen.message[seen.n], sizeof seen.message[0], "%s", message ? message : "");
  }
  seen.n++;
  if (w->token == seen.write_on && seen.write_extra &&
      P->write(seen.self, seen.write_extra, seen.extra_rows, seen.extra_n) != 0)
    printf("# the write from inside write_done was refused\n");
  if (w->token == seen.destroy_on) P->destroy(seen.self);
}

static void h_destroyed(sluice_ctx_t *ctx) {
  if (ctx->destroyed++) seen.after_destroyed++;
  ctx->dones_at_destroy = seen.n;
}

static const sluice_host_t host = {
    .abi_major = SLUICE_SINK_ABI_MAJOR,
    .abi_minor = SLUICE_SINK_ABI_MINOR,
    .log = h_log,
    .counter = h_counter,
    .gauge = h_gauge,
    .metric_add = h_metric_add,
    .metric_set = h_metric_set,
    .timer_new = h_timer_new,
    .timer_start = h_timer_start,
    .timer_stop = h_timer,
    .timer_free = h_timer,
    .row_id = h_row_id,
    .row_id_hex = h_row_id_hex,
    .row_job = h_row_job,
    .row_window_start = h_row_window,
    .row_window_end = h_row_window,
    .row_json = h_row_json,
    .row_msgpack = h_row_msgpack,
    .row_nfields = h_row_nfields,
    .row_field = h_row_field,
    .row_get = h_row_get,
    .row_done = h_row_done,
    .write_done = h_write_done,
    .destroyed = h_destroyed,
};

/* ---- options, bound as the host does ------------------------------------------ */

static const sluice_opt_t *find_opt(const char *name) {
  for (const sluice_opt_t *o = P->options; o && o->name; o++)
    if (strcmp(o->name, name) == 0) return o;
  return NULL;
}

/* Sets one option from TOML value text ("\"x\"", "true", "\"append\""), for
 * the types the file sink uses.  Returns 0, or -1 for a bad value. */
static int set_opt(void *conf, const sluice_opt_t *o, const char *text) {
  char *field = (char *)conf + o->offset;
  size_t n = strlen(text);
  switch (o->type) {
    case SLUICE_OPT_STRING: {
      if (n < 2 || text[0] != '"' || text[n - 1] != '"') return -1;
      char **p = (char **)(void *)field;
      free(*p);
      *p = strndup(text + 1, n - 2);
      return 0;
    }
    case SLUICE_OPT_BOOL:
      if (strcmp(text, "true") && strcmp(text, "false")) return -1;
      *(bool *)(void *)field = strcmp(text, "true") == 0;
      return 0;
    case SLUICE_OPT_ENUM: {
      if (n < 2 || text[0] != '"' || text[n - 1] != '"' || !o->choices) return -1;
      int i = 0;
      for (const char *c = o->choices;; i++) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n - 2 && strncmp(c, text + 1, len) == 0) {
          *(int *)(void *)field = i;
          return 0;
        }
        if (!bar) return -1;
        c = bar + 1;
      }
    }
    default:
      return -1;
  }
}

static void free_conf(void *conf) {
  if (!conf) return;
  for (const sluice_opt_t *o = P->options; o->name; o++)
    if (o->type == SLUICE_OPT_STRING) free(*(char **)(void *)((char *)conf + o->offset));
  free(conf);
}

/* The bound options: defaults, then the pairs given (name, value text, ...,
 * NULL).  NULL when a name or value is bad. */
static void *bind_conf(const char *name, ...) {
  void *conf = calloc(1, P->conf_size);
  for (const sluice_opt_t *o = P->options; o->name; o++)
    if (o->def && set_opt(conf, o, o->def)) goto fail;
  va_list ap;
  va_start(ap, name);
  for (; name; name = va_arg(ap, const char *)) {
    const char *value = va_arg(ap, const char *);
    const sluice_opt_t *o = find_opt(name);
    if (!o || set_opt(conf, o, value)) {
      va_end(ap);
      goto fail;
    }
  }
  va_end(ap);
  return conf;
fail:
  free_conf(conf);
  return NULL;
}

/* ---- driving the plugin ------------------------------------------------------ */

static void on_deadline(uv_timer_t *t) {
  (void)t;
  timed_out = true;
  uv_stop(&loop);
}

/* Runs the loop until `want` write_dones (and, if destroyed, destroyed)
 * came. */
static void wait_for(int want, bool destroyed) {
  uv_timer_start(&deadline, on_deadline, DEADLINE_MS, 0);
  while (!timed_out && (seen.n < want || (destroyed && !seen.ctx->destroyed)))
    uv_run(&loop, UV_RUN_ONCE);
  uv_timer_stop(&deadline);
}

static void reset(struct sluice_ctx *ctx) {
  memset(&seen, 0, sizeof seen);
  memset(ctx, 0, sizeof *ctx);
  seen.ctx = ctx;
  seen.write_on = seen.destroy_on = -1;
}

/* create with the options given; the conf is kept (the host owns it until
 * destroy has completed) and freed by destroy_and_wait. */
static void *make(struct sluice_ctx *ctx, void *conf, int *rc, char *err, size_t errlen) {
  void *self = NULL;
  *rc = conf ? P->create(&host, ctx, conf, &loop, &self, err, errlen) : -1;
  seen.self = self;
  return self;
}

static void destroy_and_wait(void *self, void *conf) {
  seen.in_call = true;
  P->destroy(self);
  seen.in_call = false;
  wait_for(seen.n, true);
  free_conf(conf);
}

/* Rows {"b":<batch>,"r":<row>} with ids batch*100+row. */
typedef struct {
  struct sluice_row row[8];
  const sluice_row_t *rows[8];
  size_t n;
  struct sluice_write w;
} test_batch_t;

static void fill(test_batch_t *b, int batch, int n, int token) {
  for (int i = 0; i < n; i++) {
    int len = snprintf(b->row[i].json, sizeof b->row[i].json, "{\"b\":%d,\"r\":%d}", batch, i);
    b->row[i].len = (size_t)len;
    b->row[i].id = (uint64_t)(batch * 100 + i);
    b->rows[i] = &b->row[i];
  }
  b->n = (size_t)n;
  b->w = (struct sluice_write){.token = token};
}

static int write_batch(void *self, test_batch_t *b) {
  return P->write(self, &b->w, b->rows, b->n);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return strdup("<missing>");
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  for (size_t i = 0; i < n; i++)
    if (buf[i] == '\0') buf[i] = '@'; /* a hole shows */
  buf[n] = '\0';
  fclose(f);
  return strdup(buf);
}

static void append_rows(char *want, size_t size, int batch, int n) {
  for (int r = 0; r < n; r++)
    snprintf(want + strlen(want), size - strlen(want), "{\"b\":%d,\"r\":%d}\n", batch, r);
}

/* ---- the cases ----------------------------------------------------------------- */

static void test_descriptor(void) {
  is_int(P->abi_major, SLUICE_SINK_ABI_MAJOR, "built for ABI major %d", SLUICE_SINK_ABI_MAJOR);
  is_int(P->abi_minor, SLUICE_SINK_ABI_MINOR, "and minor %d", SLUICE_SINK_ABI_MINOR);
  is_str(P->name, "file", "named file");
  is_str(P->version, "1.0.0", "version 1.0.0");
  is_str(P->description, "JSON lines appended to a file or stdout.",
         "the description is the built-in sink's");
  ok(P->create && P->write && P->flush && P->destroy, "create, write, flush and destroy are set");

  const sluice_opt_t *path = find_opt("path"), *fsync = find_opt("fsync"), *mode = find_opt("mode");
  size_t n = 0;
  for (const sluice_opt_t *o = P->options; o && o->name; o++) n++;
  is_int(n, 3, "three options");
  ok(path && path->type == SLUICE_OPT_STRING && path->flags == SLUICE_OPT_REQUIRED && !path->def,
     "path: a required string without default");
  is_str(path ? path->help : NULL,
         "File the rows are appended to, one JSON object per line; \"-\" for stdout.",
         "path's help");
  ok(fsync && fsync->type == SLUICE_OPT_BOOL && fsync->flags == 0, "fsync: a bool");
  is_str(fsync ? fsync->def : NULL, "false", "fsync defaults to false");
  is_str(fsync ? fsync->help : NULL,
         "fsync the file after each batch, before the batch is reported written.", "fsync's help");
  ok(mode && mode->type == SLUICE_OPT_ENUM && mode->flags == 0, "mode: an enum");
  is_str(mode ? mode->choices : NULL, "append|truncate", "mode is append or truncate");
  is_str(mode ? mode->def : NULL, "\"append\"", "mode defaults to append");
  is_str(mode ? mode->help : NULL,
         "`append` to what the file holds, or `truncate` it when the sink starts.", "mode's help");
  bool fits = true;
  for (const sluice_opt_t *o = P->options; o && o->name; o++) {
    size_t size = o->type == SLUICE_OPT_STRING ? sizeof(char *)
                  : o->type == SLUICE_OPT_BOOL ? sizeof(bool)
                                               : sizeof(int);
    fits &= o->offset + size <= P->conf_size;
  }
  ok(fits && P->conf_size > 0, "every option's field lies inside conf_size (%zu)", P->conf_size);
  void *conf = bind_conf(NULL);
  ok(conf != NULL, "the defaults bind");
  free_conf(conf);
  conf = bind_conf("path", "\"x\"", "mode", "\"rewrite\"", NULL);
  ok(conf == NULL, "mode = \"rewrite\" does not");
  free_conf(conf);
}

static void test_in_order(void) {
  char path[256], err[256] = "", quoted[300];
  snprintf(path, sizeof path, "%s/rows.json", tmpdir);
  snprintf(quoted, sizeof quoted, "\"%s\"", path);
  FILE *f = fopen(path, "w");
  fputs("old line\n", f);
  fclose(f);
  struct sluice_ctx ctx;
  reset(&ctx);
  int rc;
  void *conf = bind_conf("path", quoted, "fsync", "true", "mode", "\"truncate\"", NULL);
  void *s = make(&ctx, conf, &rc, err, sizeof err);
  is_int(rc, 0, "create with fsync and truncate");
  if (!s) {
    free_conf(conf);
    return;
  }
  is_int(ctx.counters, 1, "one counter registered");
  is_str(ctx.metric.name, "sluice_sink_file_bytes_total", "named sluice_sink_file_bytes_total");
  is_str(ctx.metric.help, "Bytes the file sink wrote, by sink.", "with the built-in sink's help");

  /* Five batches queued at once, one of them empty, and a flush after; on
   * the first one's write_done the host writes a sixth, which must still
   * come after the flush. */
  static test_batch_t b[5], extra;
  int sizes[5] = {3, 1, 0, 8, 2};
  fill(&extra, 6, 2, 6);
  seen.write_on = 0;
  seen.write_extra = &extra.w;
  seen.extra_rows = extra.rows;
  seen.extra_n = extra.n;
  struct sluice_write flush = {.token = 5};
  int accepted = 0;
  seen.in_call = true;
  for (int i = 0; i < 5; i++) {
    fill(&b[i], i, sizes[i], i);
    accepted += write_batch(s, &b[i]) == 0;
  }
  accepted += P->flush(s, &flush) == 0;
  seen.in_call = false;
  is_int(accepted, 6, "five writes and a flush accepted");
  wait_for(7, false);
  ok(!timed_out, "every write reported before the deadline");
  is_int(seen.n, 7, "exactly one write_done per write and flush");
  is_int(seen.early, 0, "none from inside write or flush");
  is_int(seen.twice, 0, "none twice");
  bool in_order = true, all_ok = true;
  for (int i = 0; i < 7 && i < seen.n; i++) {
    in_order &= seen.token[i] == i;
    all_ok &= seen.status[i] == SLUICE_OK;
  }
  ok(in_order,
     "write_dones come in the order of the writes, the one written from inside write_done last");
  ok(all_ok, "every write reported SLUICE_OK");

  /* Read back while the sink is still open: write_done meant written. */
  char *got = slurp(path);
  char want[2048] = "";
  for (int i = 0; i < 5; i++) append_rows(want, sizeof want, i, sizes[i]);
  append_rows(want, sizeof want, 6, 2);
  is_str(got, want,
         "the file holds every row once, in order, one per line; the old content is gone");
  free(got);
  is_int((long long)ctx.metric.value, (long long)strlen(want), "every byte written is counted");

  destroy_and_wait(s, conf);
  is_int(ctx.destroyed, 1, "destroyed once");
  is_int(seen.after_destroyed, 0, "nothing after destroyed");

  /* Append (the default) keeps what is there. */
  reset(&ctx);
  conf = bind_conf("path", quoted, NULL);
  s = make(&ctx, conf, &rc, err, sizeof err);
  is_int(rc, 0, "create again in the default mode (append)");
  if (!s) {
    free_conf(conf);
    return;
  }
  static test_batch_t more;
  fill(&more, 9, 1, 9);
  is_int(write_batch(s, &more), 0, "write accepted");
  wait_for(1, false);
  is_int(seen.n == 1 ? seen.status[0] : -1, SLUICE_OK, "appended");
  got = slurp(path);
  strcat(want, "{\"b\":9,\"r\":0}\n");
  is_str(got, want, "append mode adds after the rows already there");
  free(got);
  is_int((long long)ctx.metric.value, 14, "the new instance counts its own bytes");
  destroy_and_wait(s, conf);
  is_int(ctx.destroyed, 1, "destroyed once");
}

static void test_create_errors(void) {
  char err[256] = "", quoted[300];
  int rc;
  struct sluice_ctx ctx;
  reset(&ctx);
  void *conf = bind_conf("path", "\"/nonexistent-sluice-dir/rows.json\"", NULL);
  void *s = make(&ctx, conf, &rc, err, sizeof err);
  free_conf(conf);
  ok(s == NULL, "no instance for a path in a missing folder");
  ok(rc != 0, "create fails (%d)", rc);
  is_str(err,
         "cannot open /nonexistent-sluice-dir/rows.json for writing: no such file or directory",
         "the error names the path and the reason");

  snprintf(quoted, sizeof quoted, "\"%s\"", tmpdir);
  conf = bind_conf("path", quoted, NULL);
  err[0] = '\0';
  s = make(&ctx, conf, &rc, err, sizeof err);
  free_conf(conf);
  ok(s == NULL && rc != 0, "a folder is refused");
  ok(strstr(err, tmpdir) && strstr(err, "illegal operation on a directory"), "... and says so: %s",
     err);
  ok(seen.n == 0 && ctx.destroyed == 0 && ctx.counters == 0, "a failed create calls nothing back");
}

/* /dev/full: every write fails with ENOSPC, which is worth retrying. */
static void test_enospc(void) {
  char err[256] = "";
  int rc;
  struct sluice_ctx ctx;
  reset(&ctx);
  void *conf = bind_conf("path", "\"/dev/full\"", "fsync", "true", NULL);
  void *s = make(&ctx, conf, &rc, err, sizeof err);
  is_int(rc, 0, "create on /dev/full");
  if (!s) {
    free_conf(conf);
    return;
  }
  static test_batch_t b;
  fill(&b, 0, 2, 1);
  write_batch(s, &b);
  wait_for(1, false);
  is_int(seen.n, 1, "one write_done");
  is_int(seen.status[0], SLUICE_RETRY, "ENOSPC is SLUICE_RETRY");
  is_str(seen.message[0], "cannot write /dev/full: no space left on device",
         "with the path and reason");
  is_int((long long)ctx.metric.value, 0, "no byte counted");
  destroy_and_wait(s, conf);
  is_int(ctx.destroyed, 1, "destroyed once");
}

/* A file size limit lets part of a batch through, then EFBIG: the part is
 * cut off so that the file ends at the last whole batch, and the host's
 * retry of the same batch, once the limit is lifted, adds it whole. */
static void test_partial_cut(void) {
  char path[256], quoted[300], err[256] = "";
  snprintf(path, sizeof path, "%s/limited.json", tmpdir);
  snprintf(quoted, sizeof quoted, "\"%s\"", path);
  struct sluice_ctx ctx;
  reset(&ctx);
  int rc;
  void *conf = bind_conf("path", quoted, "mode", "\"truncate\"", NULL);
  void *s = make(&ctx, conf, &rc, err, sizeof err);
  if (!s) {
    ok(0, "create: %s", err);
    free_conf(conf);
    return;
  }
  static test_batch_t first, second;
  fill(&first, 0, 2, 0);  /* 28 bytes */
  fill(&second, 1, 8, 1); /* 112 bytes: crosses the limit */
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit old, lim;
  getrlimit(RLIMIT_FSIZE, &old);
  lim = old;
  lim.rlim_cur = 64;
  setrlimit(RLIMIT_FSIZE, &lim);
  write_batch(s, &first);
  write_batch(s, &second);
  wait_for(2, false);
  setrlimit(RLIMIT_FSIZE, &old);
  is_int(seen.n, 2, "two write_dones");
  is_int(seen.status[0], SLUICE_OK, "the batch under the limit is written");
  is_int(seen.status[1], SLUICE_FATAL, "EFBIG is SLUICE_FATAL");
  ok(strstr(seen.message[1], "ile too large") != NULL, "... saying why: %s", seen.message[1]);
  char *got = slurp(path);
  is_str(got, "{\"b\":0,\"r\":0}\n{\"b\":0,\"r\":1}\n",
         "the partial batch was cut off: no torn line");
  free(got);
  is_int((long long)ctx.metric.value, 64, "the bytes that did reach the file are counted");

  /* The host tries the same rows again (a new write handle). */
  second.w = (struct sluice_write){.token = 2};
  is_int(write_batch(s, &second), 0, "the retry is accepted");
  wait_for(3, false);
  is_int(seen.n == 3 ? seen.status[2] : -1, SLUICE_OK, "and written");
  char want[512] = "";
  append_rows(want, sizeof want, 0, 2);
  append_rows(want, sizeof want, 1, 8);
  got = slurp(path);
  is_str(got, want, "the file holds both batches whole, each row once");
  free(got);
  destroy_and_wait(s, conf);
  is_int(ctx.destroyed, 1, "destroyed once");
}

/* "-": rows on stdout (as TAP comments here), fsync and flush without a
 * file to sync, and destroy leaves stdout open. */
static void test_stdout(void) {
  char err[256] = "";
  int rc;
  struct sluice_ctx ctx;
  reset(&ctx);
  void *conf = bind_conf("path", "\"-\"", "fsync", "true", NULL);
  void *s = make(&ctx, conf, &rc, err, sizeof err);
  is_int(rc, 0, "create on stdout");
  if (!s) {
    free_conf(conf);
    return;
  }
  fflush(stdout);
  static test_batch_t b;
  fill(&b, 0, 1, 0);
  snprintf(b.row[0].json, sizeof b.row[0].json, "# a row on stdout");
  b.row[0].len = strlen(b.row[0].json);
  struct sluice_write flush = {.token = 1};
  write_batch(s, &b);
  P->flush(s, &flush);
  wait_for(2, false);
  ok(seen.n == 2 && seen.token[0] == 0 && seen.token[1] == 1, "the write, then the flush");
  ok(seen.status[0] == SLUICE_OK && seen.status[1] == SLUICE_OK, "both OK");
  is_int((long long)ctx.metric.value, strlen("# a row on stdout\n"), "the line's bytes counted");
  destroy_and_wait(s, conf);
  is_int(ctx.destroyed, 1, "destroyed once");
  fflush(stdout);
  ok(write(STDOUT_FILENO, "# stdout still open\n", 20) == 20, "stdout is left open");
}

/* destroy with a write in flight and a write and a flush queued. */
static void test_destroy_in_flight(void) {
  char path[256], quoted[300], err[256] = "";
  snprintf(path, sizeof path, "%s/closing.json", tmpdir);
  snprintf(quoted, sizeof quoted, "\"%s\"", path);
  struct sluice_ctx ctx;
  reset(&ctx);
  int rc;
  void *conf = bind_conf("path", quoted, "mode", "\"truncate\"", "fsync", "true", NULL);
  void *s = make(&ctx, conf, &rc, err, sizeof err);
  if (!s) {
    ok(0, "create: %s", err);
    free_conf(conf);
    return;
  }
  static test_batch_t a, b;
  fill(&a, 0, 3, 0);
  fill(&b, 1, 3, 1);
  struct sluice_write flush = {.token = 2};
  seen.in_call = true;
  write_batch(s, &a);
  write_batch(s, &b);
  P->flush(s, &flush);
  P->destroy(s);
  seen.in_call = false;
  is_int(ctx.destroyed, 0, "not destroyed while a write is in flight");
  wait_for(3, true);
  is_int(seen.n, 3, "one write_done for each write and flush");
  ok(seen.token[0] == 1 && seen.status[0] == SLUICE_CANCELED,
     "the queued write is reported SLUICE_CANCELED");
  ok(seen.token[1] == 2 && seen.status[1] == SLUICE_CANCELED, "so is the queued flush");
  ok(strncmp(seen.message[0], "sink closed before ", 19) == 0 && strstr(seen.message[0], path),
     "... saying so, with the path: %s", seen.message[0]);
  ok(seen.token[2] == 0 && seen.status[2] == SLUICE_OK,
     "the write in flight completes and reports OK");
  is_int(seen.early, 2, "only the cancelled ones report from inside destroy");
  is_int(ctx.dones_at_destroy, 3, "destroyed comes after all three");
  is_int(ctx.destroyed, 1, "destroyed once");
  is_int(seen.after_destroyed, 0, "nothing after destroyed");
  char *got = slurp(path);
  is_str(got, "{\"b\":0,\"r\":0}\n{\"b\":0,\"r\":1}\n{\"b\":0,\"r\":2}\n",
         "the file has the completed write only");
  free(got);
  free_conf(conf);

  /* Destroying an idle sink. */
  reset(&ctx);
  conf = bind_conf("path", quoted, NULL);
  s = make(&ctx, conf, &rc, err, sizeof err);
  if (!s) {
    free_conf(conf);
    return;
  }
  destroy_and_wait(s, conf);
  is_int(ctx.destroyed, 1, "an idle sink is destroyed once");
  is_int(seen.n, 0, "with no write_done");
}

/* The host destroys the sink from inside a write_done, with a write still
 * queued: the queued one is cancelled, destroyed comes once, and nothing
 * touches the freed instance (valgrind would tell). */
static void test_destroy_from_write_done(void) {
  char path[256], quoted[300], err[256] = "";
  snprintf(path, sizeof path, "%s/reentrant.json", tmpdir);
  snprintf(quoted, sizeof quoted, "\"%s\"", path);
  for (int with_extra = 0; with_extra < 2; with_extra++) {
    struct sluice_ctx ctx;
    reset(&ctx);
    int rc;
    void *conf = bind_conf("path", quoted, "mode", "\"truncate\"", NULL);
    void *s = make(&ctx, conf, &rc, err, sizeof err);
    if (!s) {
      ok(0, "create: %s", err);
      free_conf(conf);
      return;
    }
    /* Second round: the host first writes, then destroys, from inside
     * write_done.  That write queues behind b, which starts at once (from
     * inside write_done): b is in flight and completes for real, the new
     * one waits and is cancelled. */
    static test_batch_t a, b, extra;
    fill(&a, 0, 1, 0);
    fill(&b, 1, 1, 1);
    fill(&extra, 2, 1, 2);
    seen.destroy_on = 0;
    if (with_extra) {
      seen.write_on = 0;
      seen.write_extra = &extra.w;
      seen.extra_rows = extra.rows;
      seen.extra_n = extra.n;
    }
    write_batch(s, &a);
    write_batch(s, &b);
    wait_for(with_extra ? 3 : 2, true);
    const char *round = with_extra ? "writing, then destroying" : "destroying";
    ok(!timed_out && ctx.destroyed == 1, "%s from inside write_done: destroyed once", round);
    ok(seen.n >= 2 && seen.token[0] == 0 && seen.status[0] == SLUICE_OK, "the first write OK");
    if (with_extra) {
      ok(seen.n == 3 && seen.token[1] == 2 && seen.status[1] == SLUICE_CANCELED,
         "the write queued from inside write_done is cancelled");
      ok(seen.token[2] == 1 && seen.status[2] == SLUICE_OK, "the one it started completes OK");
    } else {
      ok(seen.n == 2 && seen.token[1] == 1 && seen.status[1] == SLUICE_CANCELED,
         "the queued one cancelled");
    }
    is_int(ctx.dones_at_destroy, seen.n, "destroyed after every write_done");
    is_int(seen.after_destroyed + seen.twice, 0, "nothing twice, nothing after destroyed");
    char *got = slurp(path);
    is_str(got, with_extra ? "{\"b\":0,\"r\":0}\n{\"b\":1,\"r\":0}\n" : "{\"b\":0,\"r\":0}\n",
           "the file has the completed writes");
    free(got);
    free_conf(conf);
  }
}

int main(int argc, char **argv) {
  const char *so = argc > 1 ? argv[1] : getenv("SLUICE_FILE_PLUGIN");
  if (!so) {
    printf("Bail out! usage: test_plugin_file path/to/file.so\n");
    return 1;
  }
  void *dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    printf("Bail out! dlopen %s: %s\n", so, dlerror());
    return 1;
  }
  P = dlsym(dl, SLUICE_SINK_SYMBOL);
  ok(P != NULL, "file.so exports %s", SLUICE_SINK_SYMBOL);
  if (!P) {
    dlclose(dl);
    return tap_done();
  }
  ok(!dlsym(dl, "file_create") && !dlsym(dl, "classify") && !dlsym(dl, "file_opts"),
     "and not its internal functions");
  if (!mkdtemp(tmpdir)) {
    printf("Bail out! mkdtemp\n");
    return 1;
  }
  uv_loop_init(&loop);
  uv_timer_init(&loop, &deadline);

  test_descriptor();
  test_in_order();
  test_create_errors();
  test_enospc();
  test_partial_cut();
  test_stdout();
  test_destroy_in_flight();
  test_destroy_from_write_done();
  ok(!timed_out, "no wait ran into the deadline");
  is_int(unexpected, 0, "the plugin called no host function it has no use for");

  uv_close((uv_handle_t *)&deadline, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  is_int(uv_loop_close(&loop), 0, "the loop closes cleanly: no request of the plugin left");
  dlclose(dl);

  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
  return tap_done();
}
