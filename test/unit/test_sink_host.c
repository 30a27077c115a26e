/* The sink host (agent/sinks/sink_host.c) driven through the plugin ABI by
 * plugins linked into the test and registered with sl_plugin_register:
 *
 *   fake      writes complete later, from a uv timer, with the outcome the
 *             test scripts per call and per row (row_done, write_done);
 *             it records every row it was handed, and has an option of
 *             each type;
 *   failing   its create fails (after making a metric);
 *   noflush   the fake without a flush.
 *
 * What is checked: the checks of a registered descriptor (ABI, options
 * inside conf_size, defaults), the [[sink]] table's validation (sl_sink_new
 * and sl_sink_check alike), batching, per-row retries with a doubling
 * backoff, writes the plugin refuses, on_failure drop / block / dead_letter
 * (without a producer), the host
 * functions (rows, metrics, timers, logging), flush, and closing (writes
 * waiting for a retry canceled at once, writes in flight completed by the
 * plugin's destroy, on_closed once after destroyed(), nothing called
 * after).  Backoffs are measured in loop time (uv_now), loosely.  Every
 * wait is for an event under a deadline; the loop is closed at the end. */
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "config/config_schema.h"
#include "config/toml.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "jobs/ddsketch.h"
#include "jobs/engine.h"
#include "jobs/redis_hll.h"
#include "sinks/plugin_load.h"
#include "sinks/sink_host.h"
#include "sl_build.h"
#include "tap.h"
#include "test_loop.h"

#define DEADLINE_MS 20000
#define MAX_ROWS 2600
#define MAX_CALLS 64
#define MAX_LIVE 16

static test_loop_t tl;
static sl_metrics_t *metrics;

/* ---- what the plugins saw --------------------------------------------------------- */

typedef struct fake fake_t;

static struct {
  const sluice_host_t *host; /* as given to the last create */
  fake_t *last;              /* the last instance made */
  int creates, destroys, destroyed_calls, flushes, failing_creates;
  int bad_calls; /* calls on an instance that is not (or no longer) alive */
  /* The last create's options, copied. */
  char label[64], tags[128];
  int64_t count, delay_ns;
  double ratio;
  bool flag;
  uint64_t buffer;
  int mode;
  size_t n_tags;
  char label_at_destroy[64]; /* the options struct read again in destroy */
  /* Plugin writes, in the order they came. */
  unsigned n_calls;
  struct {
    size_t n;
    uint64_t first_id, last_id;
    uint64_t at; /* uv_now */
    long long dropped_then; /* sluice_sink_rows_dropped_total of `probe_sink` */
  } calls[MAX_CALLS];
  unsigned writes_of[MAX_ROWS]; /* by row id */
  unsigned completions;         /* plugin writes completed */
  int seq, destroyed_seq;       /* event order */
} fk;

/* The scripted outcome of row `id` at its attempt-th write (1-based):
 * given with row_done unless OK.  NULL: every row OK. */
static sluice_status_t (*script_row)(uint64_t id, unsigned attempt);
/* When set: write_done's status for the call-th plugin write (0-based),
 * without row_done. */
static sluice_status_t (*script_whole)(unsigned call);
static sluice_status_t flush_status;
static const char *flush_message;
static const char *probe_sink; /* whose dropped counter each write records */
static int refuse_writes;       /* plugin writes refused (write returns non-zero); -1: all */

static long long series(const char *family, const char *sink, const char *more);

static void reset(void) {
  memset(&fk, 0, sizeof fk);
  script_row = NULL;
  script_whole = NULL;
  flush_status = SLUICE_OK;
  flush_message = NULL;
  probe_sink = NULL;
  refuse_writes = 0;
}

/* ---- the fake plugin ---------------------------------------------------------------- */

typedef struct {
  char *label;
  int64_t count;
  double ratio;
  bool flag;
  int64_t delay_ns; /* before a write completes */
  uint64_t buffer;
  int mode;
  sluice_str_list_t tags;
  bool hold;         /* writes complete only in destroy */
  bool host_timers;  /* complete from a host timer, and call destroyed() from inside destroy */
} fake_conf_t;

static const sluice_opt_t fake_opts[] = {
    {.name = "label", .type = SLUICE_OPT_STRING, .def = "\"none\"", .help = "Any text.",
     .offset = offsetof(fake_conf_t, label)},
    {.name = "count", .type = SLUICE_OPT_INT, .def = "5", .min = 0, .max = 100, .help = "A number.",
     .offset = offsetof(fake_conf_t, count)},
    {.name = "ratio", .type = SLUICE_OPT_FLOAT, .def = "0.5", .help = "A float.", .offset = offsetof(fake_conf_t, ratio)},
    {.name = "flag", .type = SLUICE_OPT_BOOL, .def = "false", .help = "A bool.", .offset = offsetof(fake_conf_t, flag)},
    {.name = "delay", .type = SLUICE_OPT_DURATION, .def = "\"0s\"", .help = "Before a write completes.",
     .offset = offsetof(fake_conf_t, delay_ns)},
    {.name = "buffer", .type = SLUICE_OPT_SIZE, .def = "\"4KiB\"", .help = "A size.",
     .offset = offsetof(fake_conf_t, buffer)},
    {.name = "mode", .type = SLUICE_OPT_ENUM, .def = "\"fast\"", .choices = "fast|slow|odd", .help = "A choice.",
     .offset = offsetof(fake_conf_t, mode)},
    {.name = "tags", .type = SLUICE_OPT_STRING_LIST, .help = "Strings.", .offset = offsetof(fake_conf_t, tags)},
    {.name = "hold", .type = SLUICE_OPT_BOOL, .def = "false", .help = "Writes complete in destroy only.",
     .offset = offsetof(fake_conf_t, hold)},
    {.name = "host_timers", .type = SLUICE_OPT_BOOL, .def = "false", .help = "Host timers, destroyed() in destroy.",
     .offset = offsetof(fake_conf_t, host_timers)},
    {0},
};

/* A plugin write or flush not completed yet. */
typedef struct pending {
  struct pending *next;
  sluice_write_t *w;
  bool flush;
  unsigned call;
  size_t n;
  sluice_status_t *st; /* per row (writes without script_whole) */
  sluice_status_t whole;
} pending_t;

struct fake {
  const sluice_host_t *host;
  sluice_ctx_t *ctx;
  const fake_conf_t *conf;
  uv_timer_t answer;    /* without host_timers */
  sluice_timer_t *htimer; /* with host_timers */
  pending_t *head, **tail;
  sluice_metric_t *things, *level;
  bool destroying;
};

static fake_t *live[MAX_LIVE];

static bool is_live(const fake_t *f) {
  for (int i = 0; i < MAX_LIVE; i++)
    if (f && live[i] == f) return true;
  return false;
}

static void set_live(fake_t *f, bool on) {
  for (int i = 0; i < MAX_LIVE; i++)
    if (on ? !live[i] : live[i] == f) {
      live[i] = on ? f : NULL;
      return;
    }
}

static void complete(fake_t *f, pending_t *p) {
  fk.completions += !p->flush;
  if (p->flush) {
    f->host->write_done(p->w, flush_status, flush_status == SLUICE_OK ? NULL : flush_message);
  } else {
    for (size_t i = 0; p->st && i < p->n; i++)
      if (p->st[i] != SLUICE_OK) f->host->row_done(p->w, i, p->st[i], "row refused by the fake");
    f->host->write_done(p->w, p->whole, p->whole == SLUICE_OK ? NULL : "write failed in the fake");
  }
  free(p->st);
  free(p);
  test_loop_check(&tl);
}

/* Completes what is pending now (not what these completions write). */
static void complete_pending(fake_t *f) {
  pending_t *p = f->head;
  f->head = NULL;
  f->tail = &f->head;
  while (p) {
    pending_t *next = p->next;
    complete(f, p);
    p = next;
  }
}

static void on_answer(uv_timer_t *t) { complete_pending(t->data); }
static void on_host_answer(void *arg) { complete_pending(arg); }

static void kick(fake_t *f) {
  if (f->conf->hold) return;
  uint64_t ms = (uint64_t)(f->conf->delay_ns / 1000000);
  if (f->htimer)
    f->host->timer_start(f->htimer, ms);
  else
    uv_timer_start(&f->answer, on_answer, ms, 0);
}

static void enqueue(fake_t *f, pending_t *p) {
  *f->tail = p;
  f->tail = &p->next;
  kick(f);
}

static int fake_create(const sluice_host_t *host, sluice_ctx_t *ctx, const void *conf_, void *loop, void **self,
                       char *err, size_t errlen) {
  (void)err, (void)errlen;
  const fake_conf_t *conf = conf_;
  fk.creates++;
  fk.host = host;
  snprintf(fk.label, sizeof fk.label, "%s", conf->label ? conf->label : "(null)");
  fk.count = conf->count;
  fk.ratio = conf->ratio;
  fk.flag = conf->flag;
  fk.delay_ns = conf->delay_ns;
  fk.buffer = conf->buffer;
  fk.mode = conf->mode;
  fk.n_tags = conf->tags.n;
  fk.tags[0] = '\0';
  for (size_t i = 0; i < conf->tags.n; i++) {
    size_t at = strlen(fk.tags);
    snprintf(fk.tags + at, sizeof fk.tags - at, "%s%s", i ? "," : "", conf->tags.items[i]);
  }
  fake_t *f = calloc(1, sizeof *f);
  if (!f) return 1;
  f->host = host;
  f->ctx = ctx;
  f->conf = conf;
  f->tail = &f->head;
  if (conf->host_timers) {
    f->htimer = host->timer_new(ctx, on_host_answer, f);
  } else {
    uv_timer_init(loop, &f->answer);
    f->answer.data = f;
  }
  f->things = host->counter(ctx, "fake_things_total", "Things the fake counted.");
  f->level = host->gauge(ctx, "fake_level", "A level the fake set.");
  set_live(f, true);
  fk.last = f;
  *self = f;
  return 0;
}

static int fake_write(void *self, sluice_write_t *w, const sluice_row_t *const *rows, size_t n) {
  fake_t *f = self;
  if (!is_live(f) || f->destroying) {
    fk.bad_calls++;
    return 1;
  }
  const sluice_host_t *h = f->host;
  unsigned call = fk.n_calls++;
  if (call < MAX_CALLS) {
    fk.calls[call].n = n;
    fk.calls[call].first_id = n ? h->row_id(rows[0]) : 0;
    fk.calls[call].last_id = n ? h->row_id(rows[n - 1]) : 0;
    fk.calls[call].at = uv_now(&tl.loop);
    fk.calls[call].dropped_then = probe_sink ? series("sluice_sink_rows_dropped_total", probe_sink, NULL) : -1;
  }
  for (size_t i = 0; i < n; i++) {
    uint64_t id = h->row_id(rows[i]);
    if (id < MAX_ROWS) fk.writes_of[id]++;
  }
  if (refuse_writes) {
    if (refuse_writes > 0) refuse_writes--;
    return 1;
  }
  pending_t *p = calloc(1, sizeof *p);
  if (!p) return 1;
  *p = (pending_t){.w = w, .call = call, .n = n};
  if (script_whole) {
    p->whole = script_whole(call);
  } else {
    p->st = calloc(n ? n : 1, sizeof *p->st);
    if (!p->st) {
      free(p);
      return 1;
    }
  }
  for (size_t i = 0; p->st && script_row && i < n; i++) {
    uint64_t id = h->row_id(rows[i]);
    p->st[i] = script_row(id, id < MAX_ROWS ? fk.writes_of[id] : 1);
  }
  enqueue(f, p);
  test_loop_check(&tl);
  return 0;
}

static int fake_flush(void *self, sluice_write_t *w) {
  fake_t *f = self;
  if (!is_live(f) || f->destroying) {
    fk.bad_calls++;
    return 1;
  }
  fk.flushes++;
  pending_t *p = calloc(1, sizeof *p);
  if (!p) return 1;
  *p = (pending_t){.w = w, .flush = true};
  enqueue(f, p);
  test_loop_check(&tl);
  return 0;
}

static void fake_gone(fake_t *f) {
  sluice_ctx_t *ctx = f->ctx;
  const sluice_host_t *h = f->host;
  set_live(f, false);
  free(f);
  fk.destroyed_calls++;
  fk.destroyed_seq = ++fk.seq;
  h->destroyed(ctx);
}

static void on_answer_closed(uv_handle_t *h) { fake_gone(h->data); }

static void fake_destroy(void *self) {
  fake_t *f = self;
  if (!is_live(f) || f->destroying) {
    fk.bad_calls++;
    return;
  }
  f->destroying = true;
  fk.destroys++;
  /* The options are still the plugin's here. */
  snprintf(fk.label_at_destroy, sizeof fk.label_at_destroy, "%s", f->conf->label ? f->conf->label : "(null)");
  /* Every write it accepted is in flight: each completes with its outcome. */
  complete_pending(f);
  if (f->htimer) {
    f->host->timer_free(f->htimer);
    fake_gone(f); /* from inside destroy */
  } else {
    uv_close((uv_handle_t *)&f->answer, on_answer_closed);
  }
}

static const sluice_sink_plugin_t fake_plugin = {
    SLUICE_SINK_PLUGIN_HEADER,
    .name = "fake",
    .version = "0.1",
    .description = "Completes writes as the test scripts them.",
    .options = fake_opts,
    .conf_size = sizeof(fake_conf_t),
    .create = fake_create,
    .write = fake_write,
    .flush = fake_flush,
    .destroy = fake_destroy,
};

/* The fake without a flush. */
static const sluice_sink_plugin_t noflush_plugin = {
    SLUICE_SINK_PLUGIN_HEADER,
    .name = "noflush",
    .options = fake_opts,
    .conf_size = sizeof(fake_conf_t),
    .create = fake_create,
    .write = fake_write,
    .destroy = fake_destroy,
};

/* ---- a plugin whose create fails ------------------------------------------------------ */

typedef struct {
  char *path;
} failing_conf_t;

static const sluice_opt_t failing_opts[] = {
    {.name = "path", .type = SLUICE_OPT_STRING, .flags = SLUICE_OPT_REQUIRED, .help = "A file it cannot open.",
     .offset = offsetof(failing_conf_t, path)},
    {0},
};

static int failing_create(const sluice_host_t *host, sluice_ctx_t *ctx, const void *conf_, void *loop, void **self,
                          char *err, size_t errlen) {
  (void)loop, (void)self;
  const failing_conf_t *conf = conf_;
  fk.failing_creates++;
  /* Host objects made before failing are the host's to free. */
  host->metric_add(host->counter(ctx, "failing_opens_total", "Opens the failing plugin tried."), 1);
  snprintf(err, errlen, "cannot open %s: no such file or directory", conf->path);
  return 1;
}

static int never_write(void *self, sluice_write_t *w, const sluice_row_t *const *rows, size_t n) {
  (void)self, (void)w, (void)rows, (void)n;
  fk.bad_calls++;
  return 1;
}

static void never_destroy(void *self) {
  (void)self;
  fk.bad_calls++;
}

static const sluice_sink_plugin_t failing_plugin = {
    SLUICE_SINK_PLUGIN_HEADER,
    .name = "failing",
    .options = failing_opts,
    .conf_size = sizeof(failing_conf_t),
    .create = failing_create,
    .write = never_write,
    .destroy = never_destroy,
};

/* ---- helpers ------------------------------------------------------------------------------ */

/* The value of `family{sink="<sink>"<more>}` on a scrape; -1 when absent. */
static double series_f(const char *family, const char *sink, const char *more) {
  char name[256];
  snprintf(name, sizeof name, "%s{sink=\"%s\"%s}", family, sink, more ? more : "");
  sl_buf_t b = {0};
  double v = -1;
  size_t n = strlen(name);
  if (sl_metrics_render(metrics, &b) == 0 && sl_buf_putc(&b, '\0') == 0) {
    for (const char *line = b.data; line && *line;) {
      if (strncmp(line, name, n) == 0 && line[n] == ' ') {
        v = strtod(line + n + 1, NULL);
        break;
      }
      line = strchr(line, '\n');
      if (line) line++;
    }
  }
  sl_buf_free(&b);
  return v;
}

static long long series(const char *family, const char *sink, const char *more) {
  return (long long)series_f(family, sink, more);
}

typedef struct {
  int n, status, early;
  char msg[256];
  uint64_t at;
  unsigned completions_then;
} result_t;

static bool in_sink_call; /* inside sl_sink_write or sl_sink_flush */

static void on_done(void *arg, int status, const char *message) {
  result_t *r = arg;
  r->n++;
  r->early += in_sink_call;
  r->status = status;
  snprintf(r->msg, sizeof r->msg, "%s", message ? message : "");
  r->at = uv_now(&tl.loop);
  r->completions_then = fk.completions;
  test_loop_check(&tl);
}

/* Runs the loop until done(arg), under the deadline; a wait that ran into
 * it is counted (its condition may still hold, late). */
static int deadlines_hit;

static bool wait_until(bool (*done)(void *), void *arg, uint64_t timeout_ms) {
  uint64_t start = uv_now(&tl.loop);
  bool r = test_loop_wait(&tl, done, arg, timeout_ms);
  uv_update_time(&tl.loop);
  if (uv_now(&tl.loop) - start >= timeout_ms) deadlines_hit++;
  return r;
}

static bool is_done(void *arg) { return ((result_t *)arg)->n > 0; }

static int write_rows(sl_sink_t *s, const sl_sink_batch_t *b, result_t *r) {
  memset(r, 0, sizeof *r);
  in_sink_call = true;
  int rc = sl_sink_write(s, b, on_done, r);
  in_sink_call = false;
  return rc;
}

static bool wait_done(result_t *r) { return wait_until(is_done, r, DEADLINE_MS); }

static bool calls_reached(void *arg) { return fk.n_calls >= *(unsigned *)arg; }
static bool completions_reached(void *arg) { return fk.completions >= *(unsigned *)arg; }

static struct {
  int n, seq;
} closed;

static void on_closed(void *arg) {
  (void)arg;
  closed.n++;
  closed.seq = ++fk.seq;
  test_loop_check(&tl);
}

static bool is_closed(void *arg) {
  (void)arg;
  return closed.n > 0;
}

static void close_sink(sl_sink_t *s) {
  memset(&closed, 0, sizeof closed);
  sl_sink_close(s, on_closed, NULL);
  wait_until(is_closed, NULL, DEADLINE_MS);
  sl_sink_free(s);
}

static sl_toml_value_t *doc;

/* The first [[sink]] table of `text`, parsed as t.toml (kept in `doc`). */
static sl_toml_value_t *sink_table(const char *text) {
  char err[256];
  sl_toml_free(doc);
  doc = NULL;
  if (sl_toml_parse(text, strlen(text), "t.toml", &doc, err, sizeof err)) {
    printf("# %s\n", err);
    return NULL;
  }
  const sl_toml_value_t *arr = sl_toml_get(doc, "sink");
  return arr && arr->type == SL_TOML_ARRAY && arr->u.arr.len ? arr->u.arr.items[0] : NULL;
}

static sl_sink_t *make(const char *text, sl_diag_t *d, int *rc) {
  sl_sink_env_t env = {.loop = &tl.loop, .metrics = metrics, .producer = NULL};
  sl_sink_t *s = NULL;
  sl_toml_value_t *t = sink_table(text);
  *rc = t ? sl_sink_new(t, "t.toml", "sink[0]", &env, &s, d) : SL_ESYNTAX;
  for (size_t i = 0; i < d->n; i++) printf("# %s\n", d->lines[i]);
  return s;
}

/* Makes a sink that must be made. */
static sl_sink_t *make_ok(const char *text) {
  sl_diag_t d = {0};
  int rc;
  sl_sink_t *s = make(text, &d, &rc);
  if (!s) ok(0, "making a sink: %s", d.n ? d.lines[0] : sl_strerror(rc));
  sl_diag_free(&d);
  return s;
}

/* Captures what the log writes to fd 2 between the two calls. */
static FILE *cap_file;
static int cap_saved = -1;

static void capture_start(void) {
  fflush(stderr);
  cap_file = tmpfile();
  cap_saved = dup(STDERR_FILENO);
  if (cap_file) dup2(fileno(cap_file), STDERR_FILENO);
}

static const char *capture_end(void) {
  static char text[16384];
  text[0] = '\0';
  fflush(stderr);
  dup2(cap_saved, STDERR_FILENO);
  close(cap_saved);
  if (!cap_file) return text;
  rewind(cap_file);
  size_t n = fread(text, 1, sizeof text - 1, cap_file);
  text[n] = '\0';
  fclose(cap_file);
  cap_file = NULL;
  return text;
}

/* Rows 0..MAX_ROWS-1: row i has id i. */
static sl_sink_row_t rows[MAX_ROWS];
static char rows_json[MAX_ROWS][24];

static void rows_init(void) {
  for (int i = 0; i < MAX_ROWS; i++) {
    int n = snprintf(rows_json[i], sizeof rows_json[i], "{\"i\":%d}", i);
    rows[i] = (sl_sink_row_t){.json = rows_json[i], .json_len = (size_t)n, .job = "j", .window_start = 1000,
                              .window_end = 2000};
    sl_sink_row_set_id(&rows[i], (uint64_t)i);
  }
}

/* ---- registration ------------------------------------------------------------------------ */

typedef struct {
  int32_t a, b;
} small_conf_t;

static void test_register(void) {
  char err[512] = "";
  is_int(sl_plugin_register(&fake_plugin, err, sizeof err), 0, "the fake registers%s%s", *err ? ": " : "", err);
  is_int(sl_plugin_register(&noflush_plugin, err, sizeof err), 0, "noflush registers");
  is_int(sl_plugin_register(&failing_plugin, err, sizeof err), 0, "failing registers");
  is_int(sl_plugin_register(&fake_plugin, err, sizeof err), -1, "a name registers once");
  is_str(err, "a plugin named \"fake\" is loaded already", "... and says so");
  const sl_plugin_t *p = sl_plugin_find("fake", err, sizeof err);
  ok(p && p->d == &fake_plugin, "a registered plugin is found by name");
  is_str(p ? p->path : NULL, "(built in)", "... as built in");

  static const sluice_sink_plugin_t future = {.abi_major = SLUICE_SINK_ABI_MAJOR + 1, .abi_minor = 0,
                                              .name = "future", .create = fake_create, .write = fake_write,
                                              .destroy = fake_destroy};
  is_int(sl_plugin_register(&future, err, sizeof err), -1, "another major ABI is refused");
  char want[256];
  snprintf(want, sizeof want, "built for sink plugin ABI %d.0, this sluice has %d.%d", SLUICE_SINK_ABI_MAJOR + 1,
           SLUICE_SINK_ABI_MAJOR, SLUICE_SINK_ABI_MINOR);
  ok(strstr(err, want) != NULL, "... naming both versions: %s", err);
  static const sluice_sink_plugin_t newer = {.abi_major = SLUICE_SINK_ABI_MAJOR, .abi_minor = SLUICE_SINK_ABI_MINOR + 1,
                                             .name = "newer", .create = fake_create, .write = fake_write,
                                             .destroy = fake_destroy};
  is_int(sl_plugin_register(&newer, err, sizeof err), -1, "a newer minor ABI is refused");
  static const sluice_sink_plugin_t no_write = {SLUICE_SINK_PLUGIN_HEADER, .name = "nowrite", .create = fake_create,
                                                .destroy = fake_destroy};
  is_int(sl_plugin_register(&no_write, err, sizeof err), -1, "a descriptor without write is refused");
  ok(strstr(err, "lacks a name, create, write or destroy") != NULL, "... saying what it lacks: %s", err);

  /* An int64 option at offset 4 of an 8-byte struct would be bound past
   * its end. */
  static const sluice_opt_t outside_opts[] = {
      {.name = "b", .type = SLUICE_OPT_INT, .offset = offsetof(small_conf_t, b)},
      {0},
  };
  static const sluice_sink_plugin_t outside = {SLUICE_SINK_PLUGIN_HEADER, .name = "outside", .options = outside_opts,
                                               .conf_size = sizeof(small_conf_t), .create = fake_create,
                                               .write = fake_write, .destroy = fake_destroy};
  is_int(sl_plugin_register(&outside, err, sizeof err), -1, "an option that does not fit in conf_size is refused");
  ok(strstr(err, "option \"b\"") != NULL, "... naming it: %s", err);

  static const sluice_opt_t bad_default_opts[] = {
      {.name = "mode", .type = SLUICE_OPT_ENUM, .def = "\"fast\"", .choices = "set|hash",
       .offset = offsetof(small_conf_t, a)},
      {0},
  };
  static const sluice_sink_plugin_t bad_default = {SLUICE_SINK_PLUGIN_HEADER, .name = "baddefault",
                                                   .options = bad_default_opts, .conf_size = sizeof(small_conf_t),
                                                   .create = fake_create, .write = fake_write,
                                                   .destroy = fake_destroy};
  is_int(sl_plugin_register(&bad_default, err, sizeof err), -1, "an option whose default does not check is refused");
  ok(strstr(err, "mode") && strstr(err, "\"fast\" is not one of: set,hash"), "... naming it: %s", err);
  ok(sl_plugin_find("baddefault", err, sizeof err) == NULL, "... and is not registered");
}

/* ---- validation ---------------------------------------------------------------------------- */

/* sl_sink_new refuses `text` with `want` as its first error line, without
 * calling create; sl_sink_check gives the same lines. */
static void expect_error(const char *text, const char *want, const char *what) {
  sl_diag_t d = {0}, dc = {0};
  int rc;
  reset();
  sl_sink_t *s = make(text, &d, &rc);
  ok(s == NULL && rc == SL_ECONFIG, "%s: refused", what);
  is_str(d.n ? d.lines[0] : NULL, want, "%s: the error", what);
  sl_toml_value_t *t = sink_table(text);
  rc = t ? sl_sink_check(t, "t.toml", "sink[0]", &dc) : SL_ESYNTAX;
  bool same = rc == SL_ECONFIG && dc.n == d.n;
  for (size_t i = 0; same && i < d.n; i++) same = strcmp(d.lines[i], dc.lines[i]) == 0;
  ok(same, "%s: sl_sink_check says the same", what);
  is_int(fk.creates + fk.failing_creates, 0, "%s: create called by neither", what);
  if (s) close_sink(s);
  sl_diag_free(&d);
  sl_diag_free(&dc);
}

static void test_validation(void) {
  sl_diag_t d = {0};
  int rc;
  reset();
  sl_sink_t *s = make("[[sink]]\nname = \"typed\"\nplugin = \"fake\"\nlabel = \"hello\"\ncount = 7\nratio = 2.5\n"
                      "flag = true\ndelay = \"250ms\"\nbuffer = \"2MiB\"\nmode = \"odd\"\ntags = [\"a\", \"b\"]\n",
                      &d, &rc);
  is_int(rc, 0, "a sink of a registered plugin is made from its table");
  is_int((int)d.n, 0, "without errors");
  is_int(fk.creates, 1, "create called once");
  is_str(fk.label, "hello", "STRING bound");
  is_int(fk.count, 7, "INT bound");
  ok(fk.ratio == 2.5, "FLOAT bound");
  ok(fk.flag, "BOOL bound");
  is_int(fk.delay_ns, 250000000, "DURATION bound in ns");
  is_int((long long)fk.buffer, 2 << 20, "SIZE bound in bytes");
  is_int(fk.mode, 2, "ENUM bound as the index of its choice");
  is_int((int)fk.n_tags, 2, "STRING_LIST bound");
  is_str(fk.tags, "a,b", "... with its strings");
  if (s) {
    is_str(sl_sink_name(s), "typed", "the instance has its name");
    ok(sl_sink_plugin(s) && sl_sink_plugin(s)->d == &fake_plugin, "and its plugin");
    close_sink(s);
    is_str(fk.label_at_destroy, "hello", "the options struct lives until destroy");
  }
  sl_diag_free(&d);

  reset();
  s = make("[[sink]]\nname = \"defaults\"\nplugin = \"fake\"\n", &d, &rc);
  is_str(fk.label, "none", "absent options get their defaults: STRING");
  is_int(fk.count, 5, "INT");
  ok(fk.ratio == 0.5 && !fk.flag && fk.delay_ns == 0 && fk.buffer == 4096 && fk.mode == 0 && fk.n_tags == 0,
     "FLOAT, BOOL, DURATION, SIZE, ENUM, STRING_LIST");
  if (s) close_sink(s);
  sl_diag_free(&d);

  expect_error("[[sink]]\nname = \"r\"\nplugin = \"nosuch\"\n",
               "t.toml:3:10: sink[0].plugin: unknown sink plugin \"nosuch\": no nosuch.so in /tmp/sluice-test-a, "
               "/tmp/sluice-test-b, " SL_PLUGIN_DIR ", " SL_BUILD_ROOT "/plugins",
               "unknown plugin");
  expect_error("[[sink]]\nname = \"r\"\nplugin = \"fake\"\nlable = \"x\"\n",
               "t.toml:4:1: sink[0]: unknown key \"lable\" (did you mean \"label\"?)", "unknown plugin key");
  expect_error("[[sink]]\nname = \"r\"\nplugin = \"fake\"\nbatch_sise = 10\n",
               "t.toml:4:1: sink[0]: unknown key \"batch_sise\" (did you mean \"batch_size\"?)", "unknown host key");
  expect_error("[[sink]]\nname = \"r\"\nplugin = \"fake\"\ncount = \"two\"\n",
               "t.toml:4:9: sink[0].count: expected an integer, got string", "a plugin key of the wrong type");
  expect_error("[[sink]]\nname = \"r\"\nplugin = \"fake\"\nbatch_size = true\n",
               "t.toml:4:14: sink[0].batch_size: expected an integer, got boolean", "a host key of the wrong type");
  expect_error("[[sink]]\nname = \"r\"\nplugin = \"fake\"\ncount = 101\n",
               "t.toml:4:9: sink[0].count: 101 is out of range (0 to 100)", "a plugin key out of range");
  expect_error("[[sink]]\nname = \"r\"\nplugin = \"fake\"\nmode = \"quick\"\n",
               "t.toml:4:8: sink[0].mode: \"quick\" is not one of: fast,slow,odd", "an enum value not among choices");
  expect_error("[[sink]]\nplugin = \"fake\"\n", "t.toml:1:1: sink[0]: missing required key \"name\"",
               "a missing host key");
  expect_error("[[sink]]\nname = \"r\"\nplugin = \"failing\"\n",
               "t.toml:1:1: sink[0]: missing required key \"path\"", "a missing plugin key");
  expect_error("[[sink]]\nname = \"r\"\nplugin = \"fake\"\non_failure = \"dead_letter\"\n",
               "t.toml:4:14: sink[0].on_failure: on_failure = \"dead_letter\" needs dead_letter_topic",
               "dead_letter without dead_letter_topic");
  expect_error("[[sink]]\nname = \"r\"\nplugin = \"fake\"\ninitial_backoff = \"2s\"\nmax_backoff = \"1s\"\n",
               "t.toml:5:15: sink[0].max_backoff: max_backoff is below initial_backoff",
               "max_backoff < initial_backoff");

  /* create's error, at the [[sink]] table; check does not create. */
  reset();
  const char *text = "# sinks\n\n[[sink]]\nname = \"broken\"\nplugin = \"failing\"\npath = \"/nonexistent/x\"\n";
  s = make(text, &d, &rc);
  ok(!s && rc == SL_ECONFIG, "a failing create refuses the sink");
  is_int(fk.failing_creates, 1, "create was called");
  is_str(d.n ? d.lines[0] : NULL, "t.toml:3:1: sink[0]: cannot open /nonexistent/x: no such file or directory",
         "its error is reported at the [[sink]] table");
  is_int((int)d.n, 1, "once");
  sl_diag_free(&d);
  sl_toml_value_t *t = sink_table(text);
  is_int(t ? sl_sink_check(t, "t.toml", "sink[0]", &d) : -1, 0, "sl_sink_check finds nothing wrong with it");
  is_int(fk.failing_creates, 1, "... without creating");
  sl_diag_free(&d);
}

/* ---- batching ------------------------------------------------------------------------------- */

static void test_batching(void) {
  reset();
  sl_sink_t *s = make_ok("[[sink]]\nname = \"batches\"\nplugin = \"fake\"\nbatch_size = 1000\n");
  if (!s) return;
  sl_sink_batch_t b = {.rows = rows, .n = 2500};
  result_t r;
  is_int(write_rows(s, &b, &r), 0, "a write of 2500 rows is accepted");
  is_int(r.n, 0, "done is not called from inside sl_sink_write");
  is_int((int)sl_sink_in_flight(s), 1, "one caller write in flight");
  ok(wait_done(&r), "done comes");
  is_int(r.n, 1, "once");
  is_int(r.early, 0, "never from inside sl_sink_write");
  is_int(r.status, SL_SINK_OK, "SL_SINK_OK");
  is_int(fk.n_calls, 3, "the plugin got three writes");
  ok(fk.calls[0].n == 1000 && fk.calls[1].n == 1000 && fk.calls[2].n == 500, "of 1000, 1000 and 500 rows");
  ok(fk.calls[0].first_id == 0 && fk.calls[0].last_id == 999 && fk.calls[1].first_id == 1000 &&
         fk.calls[1].last_id == 1999 && fk.calls[2].first_id == 2000 && fk.calls[2].last_id == 2499,
     "in order");
  is_int(r.completions_then, 3, "done came after the three writes completed");
  bool once = true;
  for (int i = 0; i < 2500; i++) once = once && fk.writes_of[i] == 1;
  ok(once, "every row written once");
  is_int((int)sl_sink_in_flight(s), 0, "nothing in flight after done");
  is_int(series("sluice_sink_rows_total", "batches", NULL), 2500, "sluice_sink_rows_total counts the rows");
  is_int(series("sluice_sink_batches_total", "batches", NULL), 3, "sluice_sink_batches_total the plugin writes");
  is_int(series("sluice_sink_queue_rows", "batches", NULL), 0, "sluice_sink_queue_rows back to 0");
  is_int(series("sluice_sink_in_flight", "batches", NULL), 0, "sluice_sink_in_flight back to 0");
  ok(series("sluice_sink_write_seconds_count", "batches", NULL) == 3, "sluice_sink_write_seconds observed each write");

  /* An empty write is reported too, without a plugin write. */
  b.n = 0;
  is_int(write_rows(s, &b, &r), 0, "an empty write is accepted");
  ok(wait_done(&r) && r.status == SL_SINK_OK && r.early == 0, "and reported SL_SINK_OK, later");
  is_int(fk.n_calls, 3, "without a plugin write");
  close_sink(s);
}

/* ---- per-row retries -------------------------------------------------------------------------- */

static sluice_status_t retry_257_once(uint64_t id, unsigned attempt) {
  return (id == 2 || id == 5 || id == 7) && attempt == 1 ? SLUICE_RETRY : SLUICE_OK;
}

static sluice_status_t first_two_whole_retry(unsigned call) { return call < 2 ? SLUICE_RETRY : SLUICE_OK; }

static void test_row_retries(void) {
  reset();
  sl_sink_t *s = make_ok("[[sink]]\nname = \"rowretry\"\nplugin = \"fake\"\ninitial_backoff = \"50ms\"\n"
                         "max_backoff = \"1s\"\njitter = false\n");
  if (!s) return;
  script_row = retry_257_once;
  sl_sink_batch_t b = {.rows = rows, .n = 10};
  result_t r;
  is_int(write_rows(s, &b, &r), 0, "a write of 10 rows is accepted");
  ok(wait_done(&r), "done comes");
  is_int(r.n, 1, "once");
  is_int(r.status, SL_SINK_OK, "SL_SINK_OK");
  is_int(fk.n_calls, 2, "two plugin writes");
  ok(fk.calls[1].n == 3 && fk.calls[1].first_id == 2 && fk.calls[1].last_id == 7,
     "the second carries only the three rows marked RETRY");
  ok(fk.writes_of[2] == 2 && fk.writes_of[5] == 2 && fk.writes_of[7] == 2, "those written twice");
  bool rest = true;
  for (int i = 0; i < 10; i++)
    if (i != 2 && i != 5 && i != 7) rest = rest && fk.writes_of[i] == 1;
  ok(rest, "the others once");
  uint64_t gap = fk.calls[1].at - fk.calls[0].at;
  printf("# retry after %" PRIu64 " ms\n", gap);
  ok(gap >= 50 && gap < 1000, "after about initial_backoff (50 ms): %" PRIu64 " ms", gap);
  is_int(r.completions_then, 2, "done only once every row is written");
  is_int(series("sluice_sink_retries_total", "rowretry", NULL), 3, "sluice_sink_retries_total: 3 rows again");
  is_int(series("sluice_sink_errors_total", "rowretry", ",kind=\"retry\""), 3, "errors_total{kind=\"retry\"}: 3");
  is_int(series("sluice_sink_errors_total", "rowretry", ",kind=\"fatal\""), 0, "errors_total{kind=\"fatal\"}: 0");
  is_int(series("sluice_sink_rows_total", "rowretry", NULL), 10, "sluice_sink_rows_total: each row once");
  is_int(series("sluice_sink_batches_total", "rowretry", NULL), 1, "one plugin write wrote all its rows");
  is_int(series("sluice_sink_up", "rowretry", NULL), 1, "sluice_sink_up: 1 after a write that succeeded");

  /* A whole write completed RETRY (no row_done): all of its rows again. */
  reset();
  script_whole = first_two_whole_retry;
  b.n = 4;
  is_int(write_rows(s, &b, &r), 0, "a write of 4 rows is accepted");
  ok(wait_done(&r) && r.status == SL_SINK_OK, "done: SL_SINK_OK");
  is_int(fk.n_calls, 3, "written three times: the whole write failed twice");
  ok(fk.calls[1].n == 4 && fk.calls[2].n == 4, "each time with every row");
  is_int(series("sluice_sink_retries_total", "rowretry", NULL), 3 + 8, "retries counted per row");
  is_int(series("sluice_sink_rows_total", "rowretry", NULL), 14, "rows counted once written");
  close_sink(s);
}

/* ---- backoff ------------------------------------------------------------------------------------ */

static sluice_status_t retry_six_times(uint64_t id, unsigned attempt) {
  (void)id;
  return attempt <= 6 ? SLUICE_RETRY : SLUICE_OK;
}

static void test_backoff(void) {
  reset();
  sl_sink_t *s = make_ok("[[sink]]\nname = \"backoff\"\nplugin = \"fake\"\ninitial_backoff = \"40ms\"\n"
                         "max_backoff = \"200ms\"\njitter = false\n");
  if (!s) return;
  script_row = retry_six_times;
  sl_sink_batch_t b = {.rows = rows, .n = 1};
  result_t r;
  is_int(write_rows(s, &b, &r), 0, "accepted");
  ok(wait_done(&r) && r.status == SL_SINK_OK, "done after six retries");
  is_int(fk.n_calls, 7, "seven attempts");
  /* 40, 80, 160, then the cap: 200, 200, 200. */
  const uint64_t want[6] = {40, 80, 160, 200, 200, 200};
  uint64_t g[6];
  bool at_least = true;
  for (int i = 0; i < 6; i++) {
    g[i] = fk.calls[i + 1].at - fk.calls[i].at;
    printf("# gap %d: %" PRIu64 " ms (backoff %" PRIu64 ")\n", i, g[i], want[i]);
    at_least = at_least && g[i] >= want[i];
  }
  ok(at_least, "no retry before its backoff");
  ok(g[1] > g[0] && g[2] > g[1] && g[3] > g[2], "the wait grows");
  ok(g[1] >= g[0] * 3 / 2 && g[2] >= g[1] * 3 / 2, "... doubling (loosely)");
  bool capped = true;
  for (int i = 3; i < 6; i++) capped = capped && g[i] < 400;
  ok(capped, "up to max_backoff, where it stays");
  ok(g[5] + 100 > g[3] && g[3] + 100 > g[5], "... the same at the cap (loosely)");
  close_sink(s);

  /* With jitter, a wait is 50-100% of the backoff: never below half. */
  reset();
  s = make_ok("[[sink]]\nname = \"jitter\"\nplugin = \"fake\"\ninitial_backoff = \"60ms\"\nmax_backoff = \"60ms\"\n");
  if (!s) return;
  script_row = retry_six_times;
  is_int(write_rows(s, &b, &r), 0, "accepted (jitter)");
  ok(wait_done(&r) && r.status == SL_SINK_OK, "done (jitter)");
  bool half = fk.n_calls == 7;
  for (int i = 0; half && i < 6; i++) half = fk.calls[i + 1].at - fk.calls[i].at >= 30;
  ok(half, "with jitter, no wait below half the backoff");
  close_sink(s);
}

/* ---- on_failure ----------------------------------------------------------------------------------- */

static sluice_status_t row0_retry_row1_fatal(uint64_t id, unsigned attempt) {
  (void)attempt;
  return id == 0 ? SLUICE_RETRY : id == 1 ? SLUICE_FATAL : SLUICE_OK;
}

static sluice_status_t row0_retry(uint64_t id, unsigned attempt) {
  (void)attempt;
  return id == 0 ? SLUICE_RETRY : SLUICE_OK;
}

static sluice_status_t row0_fatal_four_times(uint64_t id, unsigned attempt) {
  return id == 0 && attempt <= 4 ? SLUICE_FATAL : SLUICE_OK;
}

static sluice_status_t row0_fatal(uint64_t id, unsigned attempt) {
  (void)attempt;
  return id == 0 ? SLUICE_FATAL : SLUICE_OK;
}

static void test_drop(void) {
  reset();
  sl_sink_t *s = make_ok("[[sink]]\nname = \"dropper\"\nplugin = \"fake\"\non_failure = \"drop\"\nmax_retries = 2\n"
                         "initial_backoff = \"5ms\"\nmax_backoff = \"5ms\"\n");
  if (!s) return;
  script_row = row0_retry_row1_fatal;
  probe_sink = "dropper";
  sl_sink_batch_t b = {.rows = rows, .n = 4};
  result_t r;
  is_int(write_rows(s, &b, &r), 0, "accepted");
  ok(wait_done(&r), "done comes");
  is_int(r.n, 1, "once");
  is_int(r.status, SL_SINK_OK, "SL_SINK_OK: the rows given up are handled");
  is_int(fk.writes_of[0], 3, "a row failing RETRY forever is written 3 times (max_retries = 2)");
  is_int(fk.writes_of[1], 1, "a FATAL row once");
  ok(fk.writes_of[2] == 1 && fk.writes_of[3] == 1, "the others once");
  is_int(fk.calls[1].dropped_then, 1, "the FATAL row was dropped at once, before the first retry");
  is_int(series("sluice_sink_rows_dropped_total", "dropper", NULL), 2, "both counted in rows_dropped_total");
  is_int(series("sluice_sink_errors_total", "dropper", ",kind=\"retry\""), 3, "errors{kind=\"retry\"}: 3");
  is_int(series("sluice_sink_errors_total", "dropper", ",kind=\"fatal\""), 1, "errors{kind=\"fatal\"}: 1");
  is_int(series("sluice_sink_retries_total", "dropper", NULL), 2, "retries_total: 2");
  is_int(series("sluice_sink_rows_total", "dropper", NULL), 2, "rows_total: the 2 written");
  is_int(series("sluice_sink_up", "dropper", NULL), 0, "sluice_sink_up: 0 after a write that failed");
  close_sink(s);

  /* max_elapsed instead of max_retries. */
  reset();
  s = make_ok("[[sink]]\nname = \"elapsed\"\nplugin = \"fake\"\non_failure = \"drop\"\nmax_elapsed = \"100ms\"\n"
              "initial_backoff = \"30ms\"\nmax_backoff = \"30ms\"\njitter = false\n");
  if (!s) return;
  script_row = row0_retry;
  b.n = 2;
  is_int(write_rows(s, &b, &r), 0, "accepted (max_elapsed)");
  ok(wait_done(&r) && r.status == SL_SINK_OK, "done: SL_SINK_OK");
  uint64_t span = r.at - fk.calls[0].at;
  printf("# %u attempts, done after %" PRIu64 " ms\n", fk.writes_of[0], span);
  ok(fk.writes_of[0] >= 2 && fk.writes_of[0] <= 5, "the RETRY row was tried a few times (%u)", fk.writes_of[0]);
  ok(span >= 100, "then given up once max_elapsed had passed (%" PRIu64 " ms)", span);
  is_int(series("sluice_sink_rows_dropped_total", "elapsed", NULL), 1, "and counted dropped");
  is_int(fk.writes_of[1], 1, "the other row written once");
  close_sink(s);
}

static void test_block(void) {
  reset();
  sl_sink_t *s = make_ok("[[sink]]\nname = \"blocker\"\nplugin = \"fake\"\non_failure = \"block\"\nmax_retries = 1\n"
                         "initial_backoff = \"2ms\"\nmax_backoff = \"4ms\"\n");
  if (!s) return;
  script_row = row0_fatal_four_times;
  sl_sink_batch_t b = {.rows = rows, .n = 3};
  result_t r;
  is_int(write_rows(s, &b, &r), 0, "accepted");
  ok(wait_done(&r) && r.status == SL_SINK_OK, "done: SL_SINK_OK once the fake accepts the row");
  is_int(fk.writes_of[0], 5, "a FATAL row is retried (beyond max_retries) until accepted");
  ok(fk.writes_of[1] == 1 && fk.writes_of[2] == 1, "the others written once");
  is_int(series("sluice_sink_rows_dropped_total", "blocker", NULL), 0, "nothing dropped");
  is_int(series("sluice_sink_errors_total", "blocker", ",kind=\"fatal\""), 4, "errors{kind=\"fatal\"}: 4");
  is_int(series("sluice_sink_rows_total", "blocker", NULL), 3, "every row written");
  close_sink(s);
}

/* A write the plugin refuses (write returns non-zero) is a RETRY of its
 * rows: retried, and given up as on_failure says. */
static void test_refused(void) {
  reset();
  sl_sink_t *s = make_ok("[[sink]]\nname = \"refused\"\nplugin = \"fake\"\ninitial_backoff = \"2ms\"\n"
                         "max_backoff = \"4ms\"\n");
  if (!s) return;
  refuse_writes = 2;
  sl_sink_batch_t b = {.rows = rows, .n = 3};
  result_t r;
  is_int(write_rows(s, &b, &r), 0, "accepted (plugin refuses twice)");
  ok(wait_done(&r) && r.status == SL_SINK_OK && r.early == 0, "done: SL_SINK_OK once the plugin takes the write");
  is_int(fk.n_calls, 3, "two refusals, then the write");
  is_int(series("sluice_sink_errors_total", "refused", ",kind=\"retry\""), 6, "each refused row counted a retry error");
  is_int(series("sluice_sink_rows_total", "refused", NULL), 3, "the rows written");
  close_sink(s);

  reset();
  s = make_ok("[[sink]]\nname = \"refusedrop\"\nplugin = \"fake\"\non_failure = \"drop\"\nmax_retries = 2\n"
              "initial_backoff = \"2ms\"\nmax_backoff = \"4ms\"\n");
  if (!s) return;
  refuse_writes = -1;
  is_int(write_rows(s, &b, &r), 0, "accepted (plugin refuses every write)");
  ok(wait_done(&r) && r.status == SL_SINK_OK, "done: SL_SINK_OK, the rows given up");
  is_int(fk.n_calls, 3, "tried 3 times (max_retries = 2)");
  is_int(series("sluice_sink_rows_dropped_total", "refusedrop", NULL), 3, "then dropped");
  close_sink(s);
}

/* The dead-letter path itself (rows to the topic through the producer, with
 * the sluice.error, sluice.sink and sluice.job headers) is tested end to end
 * against a Kafka cluster in the integration tests; here, without a
 * producer, rows given up are dropped with an error. */
static void test_dead_letter_without_producer(void) {
  reset();
  sl_sink_t *s = make_ok("[[sink]]\nname = \"dlq\"\nplugin = \"fake\"\non_failure = \"dead_letter\"\n"
                         "dead_letter_topic = \"dead\"\nmax_retries = 1\ninitial_backoff = \"2ms\"\n");
  if (!s) return;
  script_row = row0_fatal;
  sl_sink_batch_t b = {.rows = rows, .n = 2};
  result_t r;
  capture_start();
  int rc = write_rows(s, &b, &r);
  bool done = wait_done(&r);
  const char *log = capture_end();
  is_int(rc, 0, "accepted");
  ok(done && r.status == SL_SINK_OK, "done: SL_SINK_OK");
  is_int(fk.writes_of[0], 1, "the FATAL row is not retried");
  is_int(series("sluice_sink_rows_dropped_total", "dlq", NULL), 1, "it is dropped");
  is_int(series("sluice_sink_rows_dead_lettered_total", "dlq", NULL), 0, "not dead-lettered");
  ok(strstr(log, "sink:fake:dlq: no Kafka producer for dead letters: row dropped") != NULL,
     "with an error saying why");
  close_sink(s);
}

/* ---- host functions -------------------------------------------------------------------------------- */

static void pack_str(msgpack_packer *pk, const char *s) {
  msgpack_pack_str(pk, strlen(s));
  msgpack_pack_str_body(pk, s, strlen(s));
}

static void test_rows(const sluice_host_t *h) {
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 13);
  pack_str(&pk, "id"), pack_str(&pk, "000000000000002a");
  pack_str(&pk, "job"), pack_str(&pk, "j1");
  pack_str(&pk, "window_start"), pack_str(&pk, "2023-11-14T22:13:20.000Z");
  pack_str(&pk, "window_end"), pack_str(&pk, "2023-11-14T22:14:20.000Z");
  pack_str(&pk, "host"), pack_str(&pk, "web-1");
  pack_str(&pk, "code"), msgpack_pack_int64(&pk, 200);
  pack_str(&pk, "neg"), msgpack_pack_int64(&pk, -7);
  pack_str(&pk, "avg"), msgpack_pack_double(&pk, 2.25);
  pack_str(&pk, "ok"), msgpack_pack_true(&pk);
  pack_str(&pk, "none"), msgpack_pack_nil(&pk);
  pack_str(&pk, "nested"), msgpack_pack_map(&pk, 1), pack_str(&pk, "a"), msgpack_pack_int64(&pk, 1);
  pack_str(&pk, "list"), msgpack_pack_array(&pk, 2), msgpack_pack_int64(&pk, 1), msgpack_pack_int64(&pk, 2);
  pack_str(&pk, "big"), msgpack_pack_uint64(&pk, UINT64_MAX);
  static const char json[] = "{\"id\":\"000000000000002a\",\"job\":\"j1\"}"; /* shortened: read as given */
  sl_sink_row_t row = {.json = json, .json_len = sizeof json - 1, .msgpack = sb.data, .msgpack_len = sb.size,
                       .job = "j1", .window_start = 1700000000000, .window_end = 1700000060000};
  sl_sink_row_set_id(&row, 42);

  is_int((long long)h->row_id(&row), 42, "row_id");
  is_str(h->row_id_hex(&row), "000000000000002a", "row_id_hex: 16 lowercase hex digits");
  is_str(h->row_job(&row), "j1", "row_job");
  is_int(h->row_window_start(&row), 1700000000000, "row_window_start");
  is_int(h->row_window_end(&row), 1700000060000, "row_window_end");
  size_t len = 0;
  ok(h->row_json(&row, &len) == json && len == sizeof json - 1, "row_json: the row's JSON and its length");
  ok(h->row_msgpack(&row, &len) == sb.data && len == sb.size, "row_msgpack: the map and its length");
  is_int((int)h->row_nfields(&row), 13, "row_nfields");

  static const char *const names[] = {"id",   "job", "window_start", "window_end", "host", "code", "neg",
                                      "avg",  "ok",  "none",         "nested",     "list", "big"};
  static const sluice_value_type_t types[] = {
      SLUICE_VALUE_STRING, SLUICE_VALUE_STRING, SLUICE_VALUE_STRING, SLUICE_VALUE_STRING, SLUICE_VALUE_STRING,
      SLUICE_VALUE_INT,    SLUICE_VALUE_INT,    SLUICE_VALUE_FLOAT,  SLUICE_VALUE_BOOL,   SLUICE_VALUE_NULL,
      SLUICE_VALUE_OTHER,  SLUICE_VALUE_OTHER,  SLUICE_VALUE_FLOAT};
  bool fields_ok = true;
  for (size_t i = 0; i < 13; i++) {
    sluice_value_t v;
    const char *name = h->row_field(&row, i, &v);
    if (!name || strcmp(name, names[i]) || v.type != types[i]) {
      printf("# field %zu: %s type %d\n", i, name ? name : "(null)", name ? (int)v.type : -1);
      fields_ok = false;
    }
  }
  ok(fields_ok, "row_field: names (NUL-terminated) and types in order");
  sluice_value_t v;
  ok(h->row_field(&row, 13, &v) == NULL, "row_field past the end: NULL");
  ok(h->row_get(&row, "code", &v) && v.type == SLUICE_VALUE_INT && v.i == 200, "row_get int");
  ok(h->row_get(&row, "neg", &v) && v.type == SLUICE_VALUE_INT && v.i == -7, "row_get negative int");
  ok(h->row_get(&row, "avg", &v) && v.type == SLUICE_VALUE_FLOAT && v.f == 2.25, "row_get float");
  ok(h->row_get(&row, "host", &v) && v.type == SLUICE_VALUE_STRING && v.len == 5 && !memcmp(v.s, "web-1", 5),
     "row_get string (pointer and length)");
  ok(h->row_get(&row, "ok", &v) && v.type == SLUICE_VALUE_BOOL && v.b, "row_get bool");
  ok(h->row_get(&row, "none", &v) && v.type == SLUICE_VALUE_NULL, "row_get null");
  ok(h->row_get(&row, "nested", &v) && v.type == SLUICE_VALUE_OTHER, "row_get nested map: OTHER");
  ok(h->row_get(&row, "list", &v) && v.type == SLUICE_VALUE_OTHER, "row_get array: OTHER");
  ok(h->row_get(&row, "big", &v) && v.type == SLUICE_VALUE_FLOAT && v.f == (double)UINT64_MAX,
     "row_get: an unsigned integer past INT64_MAX is a FLOAT");
  ok(!h->row_get(&row, "missing", &v), "row_get of a missing field: false");
  ok(!h->row_get(&row, "hos", &v) && !h->row_get(&row, "hostx", &v), "row_get matches whole names only");
  sl_sink_row_clear(&row);
  sl_sink_row_clear(&row); /* twice: a no-op */
  ok(h->row_get(&row, "code", &v) && v.i == 200, "the fields again after sl_sink_row_clear");
  sl_sink_row_clear(&row);

  sl_sink_row_t bare = {.json = "{}", .json_len = 2, .job = "j2"};
  sl_sink_row_set_id(&bare, UINT64_MAX);
  is_str(h->row_id_hex(&bare), "ffffffffffffffff", "row_id_hex of the largest id");
  is_int((int)h->row_nfields(&bare), 0, "a row without msgpack has no fields");
  ok(h->row_field(&bare, 0, &v) == NULL && !h->row_get(&bare, "id", &v), "... none to read");
  sl_sink_row_clear(&bare);
  msgpack_sbuffer_destroy(&sb);
}

static void on_plugin_timer(void *arg) {
  (*(int *)arg)++;
  test_loop_check(&tl);
}

static bool fired_once(void *arg) { return *(int *)arg >= 1; }

static void test_host_functions(void) {
  reset();
  sl_sink_t *s = make_ok("[[sink]]\nname = \"hostfns\"\nplugin = \"fake\"\n");
  if (!s || !fk.last) return;
  fake_t *f = fk.last;
  const sluice_host_t *h = f->host;
  ok(h->abi_major == SLUICE_SINK_ABI_MAJOR && h->abi_minor == SLUICE_SINK_ABI_MINOR, "the host table's ABI");
  test_rows(h);

  /* Metrics: made in create, labelled with the sink's name. */
  h->metric_add(f->things, 3);
  h->metric_add(f->things, 2);
  h->metric_add(f->things, -4); /* a counter never goes down */
  h->metric_set(f->level, 2.5);
  h->metric_add(f->level, -1);
  is_int(series("fake_things_total", "hostfns", NULL), 5, "a plugin's counter on the render, sink=\"hostfns\"");
  ok(series_f("fake_level", "hostfns", NULL) == 1.5, "a plugin's gauge too (set, then add)");
  h->metric_set(f->things, 100); /* not for a counter */
  is_int(series("fake_things_total", "hostfns", NULL), 5, "metric_set does not touch a counter");

  /* Timers. */
  int fired = 0;
  sluice_timer_t *t = h->timer_new(f->ctx, on_plugin_timer, &fired);
  ok(t != NULL, "timer_new");
  h->timer_start(t, 20);
  ok(wait_until(fired_once, &fired, DEADLINE_MS), "a timer fires");
  test_loop_run_for(&tl, 40);
  is_int(fired, 1, "once");
  h->timer_start(t, 20);
  h->timer_stop(t);
  test_loop_run_for(&tl, 50);
  is_int(fired, 1, "timer_stop stops it");
  h->timer_start(t, 10);
  h->timer_free(t);
  test_loop_run_for(&tl, 50);
  is_int(fired, 1, "timer_free stops it for good");

  /* Logging: the agent's lines, component sink:<plugin>:<name>. */
  sl_log_set_level(SL_LOG_INFO);
  capture_start();
  h->log(f->ctx, SLUICE_LOG_WARN, "hello %d", 7);
  h->log(f->ctx, SLUICE_LOG_INFO, "info %s", "line");
  h->log(f->ctx, SLUICE_LOG_DEBUG, "not shown");
  const char *log = capture_end();
  sl_log_set_level(SL_LOG_ERROR);
  ok(strstr(log, " warn  sink:fake:hostfns: hello 7\n") != NULL, "log: a warning, with its component");
  ok(strstr(log, "sink:fake:hostfns: info line\n") != NULL, "log: an info line");
  ok(strstr(log, "not shown") == NULL, "log: lines above the threshold are not written");

  /* Kafka without a producer. */
  int calls = 0;
  is_int(h->kafka_produce(f->ctx, "t", "k", 1, "v", 1, NULL, NULL, 0, NULL, &calls), SLUICE_FATAL,
         "kafka_produce without [kafka]: SLUICE_FATAL");
  close_sink(s);
  ok(series("fake_things_total", "hostfns", NULL) == 5, "a plugin's metric stays on the render after its sink");
}

/* ---- flush ------------------------------------------------------------------------------------------- */

static bool flushes_reached(void *arg) { return fk.flushes >= *(int *)arg; }

static void test_flush(void) {
  reset();
  sl_sink_t *s = make_ok("[[sink]]\nname = \"flusher\"\nplugin = \"fake\"\n");
  if (!s) return;
  result_t r;
  flush_status = SLUICE_FATAL;
  flush_message = "disk full";
  memset(&r, 0, sizeof r);
  in_sink_call = true;
  int rc = sl_sink_flush(s, on_done, &r);
  in_sink_call = false;
  is_int(rc, 0, "sl_sink_flush accepted");
  is_int(fk.flushes, 1, "the plugin's flush called");
  ok(wait_done(&r), "done comes");
  ok(r.n == 1 && r.early == 0, "once, not from inside sl_sink_flush");
  is_int(r.status, SL_SINK_FATAL, "with the plugin's outcome");
  is_str(r.msg, "disk full", "and its message");
  flush_status = SLUICE_OK;
  memset(&r, 0, sizeof r);
  is_int(sl_sink_flush(s, on_done, &r), 0, "a second flush");
  ok(wait_done(&r) && r.status == SL_SINK_OK && r.msg[0] == '\0', "SL_SINK_OK, without a message");
  close_sink(s);

  /* flush_interval: the host calls flush on its own, until close. */
  reset();
  s = make_ok("[[sink]]\nname = \"ticker\"\nplugin = \"fake\"\nflush_interval = \"20ms\"\n");
  if (!s) return;
  int three = 3;
  ok(wait_until(flushes_reached, &three, DEADLINE_MS), "flush_interval: the plugin's flush is called");
  close_sink(s);
  int after = fk.flushes;
  test_loop_run_for(&tl, 60);
  is_int(fk.flushes, after, "not after close");

  reset();
  s = make_ok("[[sink]]\nname = \"noflush\"\nplugin = \"noflush\"\nflush_interval = \"10ms\"\n");
  if (!s) return;
  memset(&r, 0, sizeof r);
  is_int(sl_sink_flush(s, on_done, &r), SL_EPLUGIN, "a plugin without flush: sl_sink_flush refused");
  test_loop_run_for(&tl, 30);
  is_int(r.n, 0, "and done is never called");
  close_sink(s);
  is_int(fk.bad_calls, 0, "no plugin call on a dead instance");
}

/* ---- close ---------------------------------------------------------------------------------------------- */

static sluice_status_t rows_0_1_retry_once(uint64_t id, unsigned attempt) {
  return id <= 1 && attempt == 1 ? SLUICE_RETRY : SLUICE_OK;
}


static void test_close(void) {
  /* A write waiting for its retry. */
  reset();
  sl_sink_t *s = make_ok("[[sink]]\nname = \"waiter\"\nplugin = \"fake\"\ninitial_backoff = \"60s\"\n"
                         "max_backoff = \"60s\"\n");
  if (!s) return;
  script_row = row0_retry;
  sl_sink_batch_t b = {.rows = rows, .n = 3};
  result_t r;
  is_int(write_rows(s, &b, &r), 0, "accepted");
  unsigned one = 1;
  ok(wait_until(completions_reached, &one, DEADLINE_MS), "the first plugin write completed");
  test_loop_run_for(&tl, 20);
  is_int(r.n, 0, "a write with a RETRY row waits for its retry, unreported");
  is_int(series("sluice_sink_queue_rows", "waiter", NULL), 1, "sluice_sink_queue_rows: the row not written");
  memset(&closed, 0, sizeof closed);
  sl_sink_close(s, on_closed, NULL);
  is_int(r.n, 1, "close reports it at once");
  is_int(r.status, SL_SINK_CANCELED, "SL_SINK_CANCELED");
  printf("# %s\n", r.msg);
  result_t r2;
  is_int(write_rows(s, &b, &r2), SL_ECANCELED, "a write after close is refused");
  memset(&r2, 0, sizeof r2);
  is_int(sl_sink_flush(s, on_done, &r2), SL_ECANCELED, "a flush after close too");
  ok(wait_until(is_closed, NULL, DEADLINE_MS), "on_closed comes");
  is_int(closed.n, 1, "once");
  is_int(fk.destroyed_calls, 1, "after the plugin called destroyed()");
  ok(closed.seq > fk.destroyed_seq, "... in that order");
  is_int(fk.writes_of[0], 1, "the row was not retried");
  is_int(series("sluice_sink_in_flight", "waiter", NULL), 0, "sluice_sink_in_flight back to 0");
  is_int(series("sluice_sink_queue_rows", "waiter", NULL), 0, "sluice_sink_queue_rows back to 0");
  sl_sink_free(s);
  test_loop_run_for(&tl, 20);
  is_int(r.n, 1, "done came only once");

  /* A write just accepted, not yet handed to the plugin. */
  reset();
  s = make_ok("[[sink]]\nname = \"early\"\nplugin = \"fake\"\n");
  if (!s) return;
  is_int(write_rows(s, &b, &r), 0, "accepted");
  memset(&closed, 0, sizeof closed);
  sl_sink_close(s, on_closed, NULL);
  ok(r.n == 1 && r.status == SL_SINK_CANCELED, "closed before its first plugin write: SL_SINK_CANCELED at once");
  ok(wait_until(is_closed, NULL, DEADLINE_MS) && closed.n == 1, "on_closed once");
  is_int(fk.n_calls, 0, "the plugin never saw the write");
  sl_sink_free(s);

  /* A sink writes the jobs' writes in the order they came, one after
   * another: B waits behind A, which is in flight inside the plugin.  At
   * close A completes with the plugin's outcome, and B, never handed over,
   * is canceled. */
  reset();
  s = make_ok("[[sink]]\nname = \"inflight\"\nplugin = \"fake\"\nhold = true\ninitial_backoff = \"1ms\"\n");
  if (!s) return;
  sl_sink_batch_t ba = {.rows = rows, .n = 2}, bb = {.rows = rows + 2, .n = 2};
  result_t ra, rb;
  is_int(write_rows(s, &ba, &ra), 0, "write A accepted");
  is_int(write_rows(s, &bb, &rb), 0, "write B accepted");
  ok(wait_until(calls_reached, &one, DEADLINE_MS), "write A in flight in the plugin");
  test_loop_run_for(&tl, 20);
  ok(ra.n == 0 && rb.n == 0, "neither completed yet");
  is_int((int)fk.n_calls, 1, "write B waits behind A: not handed to the plugin");
  is_int((int)sl_sink_in_flight(s), 2, "two caller writes in flight");
  memset(&closed, 0, sizeof closed);
  sl_sink_close(s, on_closed, NULL);
  is_int(fk.destroys, 1, "close destroys the plugin");
  ok(ra.n == 1 && ra.status == SL_SINK_OK, "write A: the plugin's OK");
  ok(rb.n == 1 && rb.status == SL_SINK_CANCELED, "write B: canceled, never written");
  ok(wait_until(is_closed, NULL, DEADLINE_MS), "on_closed comes");
  ok(closed.n == 1 && closed.seq > fk.destroyed_seq, "once, after destroyed()");
  is_int(fk.n_calls, 1, "nothing else written");
  is_int(series("sluice_sink_rows_total", "inflight", NULL), 2, "write A's rows counted");
  sl_sink_free(s);

  /* Order across a retry: A's rows fail once; B, written later, reaches the
   * plugin only after A's retry has succeeded (else B's newer rows could
   * be overwritten by A's older ones). */
  reset();
  s = make_ok("[[sink]]\nname = \"ordered\"\nplugin = \"fake\"\ninitial_backoff = \"5ms\"\njitter = false\n");
  if (!s) return;
  script_row = rows_0_1_retry_once;
  is_int(write_rows(s, &ba, &ra), 0, "write A accepted");
  is_int(write_rows(s, &bb, &rb), 0, "write B accepted");
  ok(wait_done(&ra) && wait_done(&rb) && ra.status == SL_SINK_OK && rb.status == SL_SINK_OK, "both written");
  ok(fk.n_calls == 3 && fk.calls[0].first_id == rows[0].id && fk.calls[1].first_id == rows[0].id &&
         fk.calls[2].first_id == rows[2].id,
     "the plugin saw A, A again, then B (%u calls)", fk.n_calls);
  memset(&closed, 0, sizeof closed);
  sl_sink_close(s, on_closed, NULL);
  ok(wait_until(is_closed, NULL, DEADLINE_MS), "closed");
  sl_sink_free(s);

  /* A plugin that calls destroyed() from inside destroy, on host timers. */
  reset();
  s = make_ok("[[sink]]\nname = \"syncdestroy\"\nplugin = \"fake\"\nhost_timers = true\ndelay = \"5ms\"\n");
  if (!s) return;
  is_int(write_rows(s, &b, &r), 0, "accepted (host timers)");
  ok(wait_done(&r) && r.status == SL_SINK_OK, "written through a host timer");
  is_int(write_rows(s, &b, &r2), 0, "a second write");
  unsigned two = 2;
  ok(wait_until(calls_reached, &two, DEADLINE_MS), "in flight");
  memset(&closed, 0, sizeof closed);
  sl_sink_close(s, on_closed, NULL);
  ok(r2.n == 1 && r2.status == SL_SINK_OK, "the write in flight completed in destroy: SL_SINK_OK");
  ok(wait_until(is_closed, NULL, DEADLINE_MS), "on_closed comes");
  ok(closed.n == 1 && closed.seq > fk.destroyed_seq, "once, after destroyed()");
  sl_sink_free(s);

  /* The same plugin, never written to: on_closed may come from inside
   * sl_sink_close, still once and after destroyed(). */
  reset();
  s = make_ok("[[sink]]\nname = \"idle\"\nplugin = \"fake\"\nhost_timers = true\n");
  if (!s) return;
  memset(&closed, 0, sizeof closed);
  sl_sink_close(s, on_closed, NULL);
  ok(wait_until(is_closed, NULL, DEADLINE_MS), "an idle sink closes");
  ok(closed.n == 1 && closed.seq > fk.destroyed_seq, "on_closed once, after destroyed()");
  sl_sink_free(s);

  test_loop_run_for(&tl, 50);
  is_int(closed.n, 1, "on_closed never again");
  is_int(fk.bad_calls, 0, "nothing called on a plugin instance after its destroy");
}

/* ---- ABI 1.1 ------------------------------------------------------------------------------ */

/* A 1.1 plugin: MAP and FLOAT_LIST options and a check that refuses
 * bounds out of order; and a 1.0 plugin whose check field is set but must
 * not be read. */
typedef struct {
  sluice_kv_list_t labels;
  sluice_float_list_t bounds;
} typed11_conf_t;

static struct {
  const sluice_host_t *host;
  int checks, old_checks;
  char labels[128];
  double bounds[8];
  size_t n_bounds;
} t11;

static int t11_check(const void *conf_, char *err, size_t errlen) {
  const typed11_conf_t *c = conf_;
  t11.checks++;
  for (size_t i = 1; i < c->bounds.n; i++)
    if (!(c->bounds.items[i - 1] < c->bounds.items[i])) {
      snprintf(err, errlen, "bounds: %g is not above %g", c->bounds.items[i], c->bounds.items[i - 1]);
      return 1;
    }
  return 0;
}

static int old_check(const void *conf, char *err, size_t errlen) {
  (void)conf, (void)err, (void)errlen;
  t11.old_checks++;
  return 1;
}

static int t11_create(const sluice_host_t *host, sluice_ctx_t *ctx, const void *conf_, void *loop, void **self,
                      char *err, size_t errlen) {
  (void)loop, (void)err, (void)errlen;
  const typed11_conf_t *c = conf_;
  t11.host = host;
  t11.labels[0] = '\0';
  for (size_t i = 0; c && i < c->labels.n; i++) {
    size_t at = strlen(t11.labels);
    snprintf(t11.labels + at, sizeof t11.labels - at, "%s%s=%s", i ? "," : "", c->labels.items[i].key,
             c->labels.items[i].value);
  }
  t11.n_bounds = c ? c->bounds.n : 0;
  for (size_t i = 0; i < t11.n_bounds && i < 8; i++) t11.bounds[i] = c->bounds.items[i];
  *self = ctx;
  return 0;
}

/* The 1.0 plugin has no options: its conf is no typed11_conf_t. */
static int old10_create(const sluice_host_t *host, sluice_ctx_t *ctx, const void *conf, void *loop, void **self,
                        char *err, size_t errlen) {
  (void)conf;
  return t11_create(host, ctx, NULL, loop, self, err, errlen);
}

static int t11_write(void *self, sluice_write_t *w, const sluice_row_t *const *rows, size_t n) {
  (void)self, (void)w, (void)rows, (void)n;
  return 1;
}

static void t11_destroy(void *self) { t11.host->destroyed(self); }

static const sluice_opt_t t11_opts[] = {
    {.name = "labels", .type = SLUICE_OPT_MAP, .offset = offsetof(typed11_conf_t, labels), .help = "l"},
    {.name = "bounds", .type = SLUICE_OPT_FLOAT_LIST, .def = "[0.5, 1]", .offset = offsetof(typed11_conf_t, bounds),
     .help = "b"},
    {0},
};

static const sluice_sink_plugin_t t11_plugin = {
    SLUICE_SINK_PLUGIN_HEADER, .name = "typed11", .version = "1", .options = t11_opts,
    .conf_size = sizeof(typed11_conf_t), .create = t11_create, .write = t11_write, .destroy = t11_destroy,
    .check = t11_check};

static const sluice_sink_plugin_t old_plugin = {
    .abi_major = 1, .abi_minor = 0, .name = "old10", .version = "1", .create = old10_create, .write = t11_write,
    .destroy = t11_destroy, .check = old_check};

static void test_abi_1_1_options(void) {
  char err[512] = "";
  is_int(sl_plugin_register(&t11_plugin, err, sizeof err), 0, "a 1.1 plugin with MAP and FLOAT_LIST options registers%s%s",
         *err ? ": " : "", err);
  is_int(sl_plugin_register(&old_plugin, err, sizeof err), 0, "a 1.0 plugin still registers%s%s", *err ? ": " : "",
         err);
  reset();
  sl_sink_t *s = make_ok("[[sink]]\nname = \"t11\"\nplugin = \"typed11\"\nlabels = { env = \"prod\", n = 3 }\n"
                         "bounds = [1, 2.5, 10]\n");
  is_str(t11.labels, "env=prod,n=3", "a MAP option binds its keys and values' text");
  ok(t11.n_bounds == 3 && t11.bounds[0] == 1 && t11.bounds[1] == 2.5 && t11.bounds[2] == 10,
     "a FLOAT_LIST binds integers and floats as doubles");
  ok(t11.checks >= 1, "the plugin's check ran");
  if (s) close_sink(s);
  s = make_ok("[[sink]]\nname = \"t11b\"\nplugin = \"typed11\"\nbounds = 4\n");
  ok(t11.n_bounds == 1 && t11.bounds[0] == 4, "a FLOAT_LIST given one number");
  if (s) close_sink(s);
  expect_error("[[sink]]\nname = \"t11\"\nplugin = \"typed11\"\nbounds = [1, \"2\"]\n",
               "t.toml:4:14: sink[0].bounds: expected a number, got string", "a FLOAT_LIST with a string");
  expect_error("[[sink]]\nname = \"t11\"\nplugin = \"typed11\"\nlabels = { a = [1] }\n",
               "t.toml:4:16: sink[0].labels.a: expected a string, number or boolean, got array",
               "a MAP with an array value");
  expect_error("[[sink]]\nname = \"t11\"\nplugin = \"typed11\"\nbounds = [1, 5, 3]\n",
               "t.toml:4:10: sink[0].bounds: 3 is not above 5", "the plugin's check, reported at its key");
  int before = t11.old_checks;
  s = make_ok("[[sink]]\nname = \"old\"\nplugin = \"old10\"\n");
  ok(s != NULL && t11.old_checks == before, "a 1.0 plugin's descriptor is read only as far as 1.0: no check");
  if (s) close_sink(s);
}

static bool rendered_has(const char *needle) {
  sl_buf_t b = {0};
  bool found = sl_metrics_render(metrics, &b) == 0 && sl_buf_putc(&b, '\0') == 0 && strstr(b.data, needle);
  sl_buf_free(&b);
  return found;
}

static void test_abi_1_1_host(void) {
  reset();
  sl_sink_t *s = make_ok("[[sink]]\nname = \"sets\"\nplugin = \"fake\"\n");
  fake_t *f1 = fk.last;
  sl_sink_t *s2 = make_ok("[[sink]]\nname = \"sets2\"\nplugin = \"fake\"\n");
  if (!s || !s2) return;
  fake_t *f2 = fk.last;
  const sluice_host_t *h = fk.host;

  /* A row as the jobs stage makes it: the map, then the sketches. */
  sl_dds_t d;
  sl_dds_init(&d, SL_DDS_DEFAULT_ALPHA, SL_DDS_DEFAULT_MAX_BINS);
  static const double values[] = {-40, -3, 0, 0, 1, 2, 2, 2.5, 100, 1000, 1000.5};
  size_t nv = sizeof values / sizeof *values;
  for (size_t i = 0; i < nv; i++) sl_dds_add(&d, values[i]);
  sl_buf_t sk = {0};
  sl_dds_serialize(&d, &sk);
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 6);
  pack_str(&pk, "id"), pack_str(&pk, "000000000000002a");
  pack_str(&pk, "job"), pack_str(&pk, "j1");
  pack_str(&pk, "window_start"), pack_str(&pk, "2023-11-14T22:13:20.000Z");
  pack_str(&pk, "window_end"), pack_str(&pk, "2023-11-14T22:14:20.000Z");
  pack_str(&pk, "page"), pack_str(&pk, "/cart");
  pack_str(&pk, "p99"), msgpack_pack_double(&pk, 1000);
  size_t map_len = sb.size;
  msgpack_pack_map(&pk, 1);
  pack_str(&pk, "p99"), msgpack_pack_bin(&pk, sk.len), msgpack_pack_bin_body(&pk, sk.data, sk.len);
  sl_sink_row_t row = {.json = "{}", .json_len = 2, .msgpack = sb.data, .msgpack_len = sb.size, .job = "j1",
                       .window_start = 1700000000000, .window_end = 1700000060000};
  sl_sink_row_set_shape(&row, map_len, 1, SLUICE_ROW_FINAL);
  size_t len;
  ok(h->row_msgpack(&row, &len) == sb.data && len == map_len, "row_msgpack: the map alone, not the sketches after it");
  is_int((int)h->row_nfields(&row), 6, "row_nfields: the map's");
  is_int((int)h->row_nkeys(&row), 1, "row_nkeys");
  is_int(h->row_kind(&row), SLUICE_ROW_FINAL, "row_kind: a final row");
  sl_sink_row_set_shape(&row, map_len, 1, SLUICE_ROW_EARLY);
  is_int(h->row_kind(&row), SLUICE_ROW_EARLY, "row_kind: an early row");
  sl_sink_row_t late = {.json = "{}", .json_len = 2, .job = "j1", .window_start = 1, .window_end = 2};
  sl_sink_row_set_shape(&late, 0, 0, SLUICE_ROW_LATE);
  is_int(h->row_kind(&late), SLUICE_ROW_LATE, "row_kind: a late record, with the window it missed");

  sluice_sketch_t sketch;
  ok(h->row_sketch(&row, "p99", &sketch), "row_sketch of a percentile field");
  is_int((long long)sketch.count, (long long)nv, "its count");
  ok(sketch.min == -40 && sketch.max == 1000.5 && sketch.relative_accuracy == 0.01, "its exact min, max and accuracy");
  uint64_t total = 0;
  bool ascending = true, holds = true;
  for (size_t i = 0; i < sketch.n_bins; i++) {
    const sluice_bin_t *b = &sketch.bins[i];
    total += b->count;
    if (i && !(sketch.bins[i - 1].upper <= b->lower)) ascending = false;
    if (!(b->lower <= b->upper)) ascending = false;
  }
  for (size_t k = 0; k < nv; k++) { /* each value lies in a bin, within 1 % of the bin's middle */
    bool in = false;
    for (size_t i = 0; i < sketch.n_bins && !in; i++) {
      const sluice_bin_t *b = &sketch.bins[i];
      double mid = b->lower == b->upper ? 0 : 2 * b->lower * b->upper / (b->lower + b->upper);
      in = values[k] >= b->lower && values[k] <= b->upper && fabs(mid - values[k]) <= 0.01 * fabs(values[k]) + 1e-12;
    }
    if (!in) {
      holds = false;
      printf("# %g is in no bin\n", values[k]);
    }
  }
  ok(total == nv && ascending, "bins ascending, their counts summing to the count (%zu bins)", sketch.n_bins);
  ok(holds, "every value lies in a bin, within the accuracy of its middle");
  const sluice_bin_t *first = sketch.bins;
  ok(h->row_sketch(&row, "p99", &sketch) && sketch.bins == first, "asked again: the same bins, decoded once");
  ok(!h->row_sketch(&row, "page", &sketch) && !h->row_sketch(&late, "p99", &sketch),
     "no sketch for another field or a row without sketches");
  sl_sink_row_clear(&row);
  ok(h->row_sketch(&row, "p99", &sketch) && sketch.count == nv, "after sl_sink_row_clear, decoded again");
  sl_sink_row_clear(&row);
  msgpack_sbuffer_destroy(&sb);
  sl_buf_free(&sk);
  sl_dds_free(&d);

  /* Metric sets, published by two sinks. */
  sluice_ctx_t *ctx1 = f1->ctx;
  sluice_metric_set_t *set = h->set_new(ctx1);
  int fam = h->set_family(set, SLUICE_METRIC_GAUGE, "pv_requests", "Requests of the newest window.");
  ok(fam >= 0, "set_family");
  is_int(h->set_family(set, SLUICE_METRIC_GAUGE, "pv requests", "h") < 0, 1, "set_family refuses a bad name");
  sluice_label_t l[] = {{"page", "/cart"}, {"env", "pr\"od"}};
  is_int(h->set_value(set, fam, l, 2, 12), 0, "set_value");
  is_int(h->set_value(set, fam, l, 2, 13) < 0, 1, "set_value refuses the same labels twice");
  int hf = h->set_family(set, SLUICE_METRIC_HISTOGRAM, "pv_latency", "Latency.");
  is_int(h->set_histogram(set, hf, l, 1, (const double[]){10}, (const uint64_t[]){2, 3}, 1, 41), 0, "set_histogram");
  is_int(h->set_publish(ctx1, set), 0, "set_publish: nothing left out");
  ok(rendered_has("pv_requests{page=\"/cart\",env=\"pr\\\"od\"} 12\n") &&
         rendered_has("pv_latency_bucket{page=\"/cart\",le=\"10\"} 2\npv_latency_bucket{page=\"/cart\",le=\"+Inf\"} 3\n"),
     "the published series are on /metrics, as given (no sink label)");
  capture_start();
  sluice_metric_set_t *other = h->set_new(f2->ctx);
  h->set_value(other, h->set_family(other, SLUICE_METRIC_GAUGE, "pv_requests", "h"), NULL, 0, 1);
  h->set_value(other, h->set_family(other, SLUICE_METRIC_GAUGE, "sluice_sink_up", "h"), NULL, 0, 1);
  int left = h->set_publish(f2->ctx, other);
  const char *log = capture_end();
  is_int(left, 2, "another sink's families of names taken are left out");
  ok(strstr(log, "2 metric families left out of /metrics, pv_requests first") != NULL, "and logged: %s", log);
  ok(!rendered_has("pv_requests 1\n"), "... and not rendered");
  sluice_metric_set_t *next = h->set_new(ctx1);
  h->set_value(next, h->set_family(next, SLUICE_METRIC_GAUGE, "pv_requests", "h"), (sluice_label_t[]){{"page", "/x"}},
               1, 5);
  h->set_publish(ctx1, next);
  ok(rendered_has("pv_requests{page=\"/x\"} 5\n") && !rendered_has("page=\"/cart\""),
     "a new set replaces the sink's old one: the old series are gone");
  sluice_metric_set_t *unused = h->set_new(ctx1);
  h->set_free(unused);
  close_sink(s);
  ok(!rendered_has("pv_requests"), "a destroyed sink's series leave /metrics");
  close_sink(s2);
}

/* row_hll on a row whose sketches the engine's own encoder wrote: a
 * redis_hll field gives Redis's string, nothing else does. */
static void test_abi_1_2_host(void) {
  reset();
  sl_sink_t *s = make_ok("[[sink]]\nname = \"hll\"\nplugin = \"fake\"\n");
  if (!s) return;
  const sluice_host_t *h = fk.host;
  ok(h->abi_minor >= 2 && h->row_hll, "the host table has row_hll (ABI 1.2)");
  sl_redis_hll_t hll = {0};
  for (int i = 0; i < 40; i++) {
    char e[16];
    sl_redis_hll_add(&hll, e, (size_t)snprintf(e, sizeof e, "u%d", i));
  }
  sl_dds_t d;
  sl_dds_init(&d, SL_DDS_DEFAULT_ALPHA, SL_DDS_DEFAULT_MAX_BINS);
  sl_dds_add(&d, 12.5);
  const char *names[] = {"visitors", "p99", "n"};
  sl_agg_result_t vals[3] = {{.kind = SL_AGG_INT, .u.i = 40}, {.kind = SL_AGG_DOUBLE, .u.d = 12.5},
                             {.kind = SL_AGG_INT, .u.i = 40}};
  const sl_dds_t *dds[3] = {NULL, &d, NULL};
  const sl_redis_hll_t *hlls[3] = {&hll, NULL, NULL};
  sl_job_row_t jr = {.job = "j", .id = 7, .window_start = 0, .window_end = 1000, .n_aggs = 3, .agg_names = names,
                     .agg_values = vals, .agg_sketches = dds, .agg_hlls = hlls};
  sl_buf_t b = {0}, want = {0};
  int r = sl_job_row_to_msgpack(&jr, &b);
  size_t map_len = b.len;
  r |= sl_job_row_sketches_to_msgpack(&jr, &b) | sl_redis_hll_to_redis(&hll, &want);
  sl_sink_row_t row = {.json = "{}", .json_len = 2, .msgpack = b.data, .msgpack_len = b.len, .job = "j"};
  sl_sink_row_set_shape(&row, map_len, 0, SLUICE_ROW_FINAL);
  size_t len = 0;
  const void *got = h->row_hll(&row, "visitors", &len);
  ok(!r && got && len == want.len && !memcmp(got, want.data, len), "row_hll: the redis_hll field as Redis's string");
  len = 99;
  ok(!h->row_hll(&row, "p99", &len) && !h->row_hll(&row, "n", &len) && !h->row_hll(&row, "nope", &len) && len == 99,
     "row_hll: NULL for a percentile, a count and a missing name");
  sluice_sketch_t sk;
  ok(h->row_sketch(&row, "p99", &sk) && sk.count == 1 && !h->row_sketch(&row, "visitors", &sk),
     "row_sketch still finds the percentile and not the HyperLogLog");
  sl_sink_row_clear(&row);
  sl_buf_free(&b);
  sl_buf_free(&want);
  sl_dds_free(&d);
  sl_redis_hll_free(&hll);
  close_sink(s);
}

int main(void) {
  sl_log_set_level(SL_LOG_ERROR); /* retries and drops are expected */
  setenv("SLUICE_PLUGIN_PATH", "/tmp/sluice-test-a:/tmp/sluice-test-b", 1);
  uv_loop_init(&tl.loop);
  uv_timer_init(&tl.loop, &tl.deadline);
  metrics = sl_metrics_new();
  rows_init();

  test_register();
  test_validation();
  test_batching();
  test_row_retries();
  test_backoff();
  test_drop();
  test_block();
  test_refused();
  test_dead_letter_without_producer();
  test_host_functions();
  test_abi_1_1_options();
  test_abi_1_1_host();
  test_abi_1_2_host();
  test_flush();
  test_close();

  is_int(deadlines_hit, 0, "no wait ran into its deadline");
  sl_toml_free(doc);
  for (int i = 0; i < MAX_ROWS; i++) sl_sink_row_clear(&rows[i]);
  uv_close((uv_handle_t *)&tl.deadline, NULL);
  uv_run(&tl.loop, UV_RUN_DEFAULT);
  is_int(uv_loop_close(&tl.loop), 0, "the loop closes cleanly: no handle left behind");
  sl_metrics_free(metrics);
  return tap_done();
}
