/* The sink host: a [[sink]] table becomes an instance of the type its
 * `plugin` names, with the plugin's own options validated and bound from
 * the same table (errors at file:line:col with the table's path); writes
 * that come back RETRY are retried with doubling backoff up to a cap and
 * reach the caller once; FATAL reaches the caller once and is counted; the
 * per-sink metrics say what happened; closing cancels a write waiting for
 * its retry.
 *
 * A fake sink type, registered for the test, answers each write from a
 * timer (never from inside write), failing its first `fail_times` writes
 * with `status`.  Every wait is for callbacks under a deadline; the loop is
 * closed at the end. */
#include <errno.h>
#include <stdbool.h>
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
#include "sinks/sink_host.h"
#include "tap.h"

#define DEADLINE_MS 20000
#define MAX_ATTEMPTS 32

static uv_loop_t loop;
static uv_timer_t deadline;
static bool timed_out;

/* ---- the fake sink ------------------------------------------------------- */

typedef struct {
  int64_t fail_times;
  int status; /* 0 retry, 1 fatal */
  char *label;
} fake_conf_t;

static const sl_opt_t fake_opts[] = {
    {.name = "fail_times", .type = SL_OPT_INT, .def = "0", .min = 0, .max = 1000,
     .offset = offsetof(fake_conf_t, fail_times), .help = "Writes that fail before one succeeds."},
    {.name = "status", .type = SL_OPT_ENUM, .def = "\"retry\"", .choices = "retry|fatal",
     .offset = offsetof(fake_conf_t, status), .help = "How they fail."},
    {.name = "label", .type = SL_OPT_STRING, .offset = offsetof(fake_conf_t, label), .help = "Any text."},
    {0},
};

static const sl_section_t fake_section = {.name = "fake", .opts = fake_opts, .size = sizeof(fake_conf_t)};

/* What the last instance made was told, and what it saw. */
static struct {
  int64_t fail_times;
  int status;
  char label[64];
  char instance[64];
  int creates;
  int attempts;
  uint64_t attempt_ms[MAX_ATTEMPTS];
  size_t rows_seen;
} fake;

typedef struct {
  uv_timer_t answer; /* answers the pending write */
  bool pending, closing;
  sl_sink_done_cb done;
  void *arg;
  int64_t fail_times;
  int status;
  void (*on_closed)(void *arg);
  void *on_closed_arg;
} fake_sink_t;

static int fake_create(const void *conf_, uv_loop_t *l, sl_metrics_t *m, const char *name, void **out, char *err,
                       size_t errlen) {
  (void)m;
  const fake_conf_t *conf = conf_;
  fake.creates++;
  fake.fail_times = conf->fail_times;
  fake.status = conf->status;
  snprintf(fake.label, sizeof fake.label, "%s", conf->label ? conf->label : "(unset)");
  snprintf(fake.instance, sizeof fake.instance, "%s", name);
  if (conf->label && strcmp(conf->label, "refuse") == 0)
    return sl_err_printf(err, errlen, SL_ECONFIG, "label \"refuse\" refused");
  fake_sink_t *s = calloc(1, sizeof *s);
  s->fail_times = conf->fail_times;
  s->status = conf->status;
  uv_timer_init(l, &s->answer);
  s->answer.data = s;
  *out = s;
  return 0;
}

static void on_answer(uv_timer_t *t) {
  fake_sink_t *s = t->data;
  s->pending = false;
  bool fail = fake.attempts <= s->fail_times;
  int status = fail ? (s->status ? SL_SINK_FATAL : SL_SINK_RETRY) : SL_SINK_OK;
  s->done(s->arg, status, fail ? "fake failure" : NULL);
  uv_stop(&loop); /* the host's reaction is what the test waits for */
}

/* One write at a time is enough for the test. */
static int fake_write(void *self, const sl_sink_batch_t *batch, sl_sink_done_cb done, void *arg) {
  fake_sink_t *s = self;
  if (s->closing) return SL_ECANCELED;
  if (s->pending) return SL_ENOMEM;
  if (fake.attempts < MAX_ATTEMPTS) fake.attempt_ms[fake.attempts] = uv_now(&loop);
  fake.attempts++;
  fake.rows_seen = batch->n;
  s->pending = true;
  s->done = done;
  s->arg = arg;
  uv_timer_start(&s->answer, on_answer, 0, 0);
  return 0;
}

static int fake_flush(void *self, sl_sink_done_cb done, void *arg) {
  (void)self, (void)done, (void)arg;
  return SL_ENOMEM;
}

static void on_answer_closed(uv_handle_t *h) {
  fake_sink_t *s = h->data;
  s->on_closed(s->on_closed_arg);
}

static void fake_close(void *self, void (*on_closed)(void *arg), void *arg) {
  fake_sink_t *s = self;
  s->closing = true;
  s->on_closed = on_closed;
  s->on_closed_arg = arg;
  if (s->pending) {
    /* Reported before the close completes, as the interface says. */
    uv_timer_stop(&s->answer);
    s->pending = false;
    s->done(s->arg, SL_SINK_CANCELED, "fake closed");
  }
  uv_close((uv_handle_t *)&s->answer, on_answer_closed);
}

static void fake_free(void *self) { free(self); }

static const sl_sink_type_t fake_type = {
    .name = "fake",
    .description = "A sink that fails on demand (tests).",
    .options = &fake_section,
    .create = fake_create,
    .write = fake_write,
    .flush = fake_flush,
    .close = fake_close,
    .free = fake_free,
};

/* ---- helpers --------------------------------------------------------------- */

static struct {
  int n, status;
  char message[256];
  bool in_call;
  int early;
  int closed;
} seen;

static void on_done(void *arg, int status, const char *message) {
  (void)arg;
  if (seen.in_call) seen.early++;
  seen.n++;
  seen.status = status;
  snprintf(seen.message, sizeof seen.message, "%s", message ? message : "");
  uv_stop(&loop);
}

static void on_closed(void *arg) {
  (void)arg;
  seen.closed++;
  uv_stop(&loop);
}

static void on_deadline(uv_timer_t *t) {
  (void)t;
  timed_out = true;
  uv_stop(&loop);
}

/* Callbacks that may make cond true call uv_stop, so that a UV_RUN_ONCE
 * that ran them does not go on to block in poll. */
static void wait_for(bool (*cond)(void)) {
  uv_timer_start(&deadline, on_deadline, DEADLINE_MS, 0);
  while (!timed_out && !cond()) uv_run(&loop, UV_RUN_ONCE);
  uv_timer_stop(&deadline);
}

static bool one_done(void) { return seen.n >= 1; }
static bool closed(void) { return seen.closed >= 1; }

static sl_toml_value_t *doc;

/* The first [[sink]] table of `text`, parsed as t.toml. */
static sl_toml_value_t *sink_table(const char *text) {
  char err[256];
  sl_toml_free(doc);
  doc = NULL;
  if (sl_toml_parse(text, strlen(text), "t.toml", &doc, err, sizeof err)) {
    printf("# %s\n", err);
    return NULL;
  }
  const sl_toml_value_t *arr = sl_toml_get(doc, "sink");
  return arr && arr->type == SL_TOML_ARRAY ? arr->u.arr.items[0] : NULL;
}

/* Makes a sink from text; returns the instance or NULL with d filled. */
static sl_sink_t *make(const char *text, sl_metrics_t *m, const sl_sink_retry_t *retry, sl_diag_t *d, int *rc) {
  sl_sink_t *s = NULL;
  sl_toml_value_t *t = sink_table(text);
  *rc = t ? sl_sink_new(t, "t.toml", "sink[0]", &loop, m, retry, &s, d) : SL_ESYNTAX;
  return s;
}

static void close_and_free(sl_sink_t *s) {
  seen.closed = 0;
  sl_sink_close(s, on_closed, NULL);
  wait_for(closed);
  sl_sink_free(s);
}

static bool has_line_quiet(sl_metrics_t *m, const char *line) {
  sl_buf_t text = {0};
  sl_metrics_render(m, &text);
  sl_buf_putc(&text, '\0');
  bool found = strstr(text.data, line) != NULL;
  sl_buf_free(&text);
  return found;
}

static bool has_line(sl_metrics_t *m, const char *line) {
  sl_buf_t text = {0};
  sl_metrics_render(m, &text);
  sl_buf_putc(&text, '\0');
  bool found = strstr(text.data, line) != NULL;
  if (!found) printf("# no line \"%s\"\n", line);
  sl_buf_free(&text);
  return found;
}

static sl_sink_row_t rows[3] = {
    {.json = "{\"a\":1}", .json_len = 7, .id = 1, .job = "j"},
    {.json = "{\"a\":2}", .json_len = 7, .id = 2, .job = "j"},
    {.json = "{\"a\":3}", .json_len = 7, .id = 3, .job = "j"},
};
static const sl_sink_batch_t batch = {.rows = rows, .n = 3};

static void reset(void) {
  memset(&seen, 0, sizeof seen);
  memset(&fake, 0, sizeof fake);
}

/* ---- cases ----------------------------------------------------------------- */

static void test_options(sl_metrics_t *m) {
  sl_diag_t d = {0};
  int rc;
  reset();
  sl_sink_t *s = make("[[sink]]\nname = \"reports\"\nplugin = \"fake\"\nfail_times = 3\nlabel = \"hello\"\n", m, NULL,
                      &d, &rc);
  is_int(rc, 0, "a sink of a registered type is made from its table");
  is_int((int)d.n, 0, "without errors");
  is_int(fake.creates, 1, "create called once");
  is_int(fake.fail_times, 3, "an integer option is bound into the plugin's struct");
  is_str(fake.label, "hello", "a string option too");
  is_int(fake.status, 0, "an absent option gets its default");
  is_str(fake.instance, "reports", "create is told the instance name");
  const sl_toml_value_t *st = sl_toml_get(sl_toml_get(doc, "sink")->u.arr.items[0], "status");
  ok(st && st->type == SL_TOML_STRING && strcmp(st->u.str.ptr, "retry") == 0,
     "the default is inserted into the table, for a later print");
  if (s) {
    is_str(sl_sink_name(s), "reports", "the instance has its name");
    ok(sl_sink_type(s) == &fake_type, "and its type");
    close_and_free(s);
  }
  sl_diag_free(&d);
}

static void expect_error(sl_metrics_t *m, const char *text, const char *want, const char *what) {
  sl_diag_t d = {0};
  int rc;
  reset();
  sl_sink_t *s = make(text, m, NULL, &d, &rc);
  ok(s == NULL && rc != 0, "%s: refused", what);
  is_str(d.n ? d.lines[0] : NULL, want, "%s: the error", what);
  is_int(fake.creates, 0, "%s: create not called", what);
  for (size_t i = 1; i < d.n; i++) printf("# also: %s\n", d.lines[i]);
  sl_diag_free(&d);
}

static void test_errors(sl_metrics_t *m) {
  expect_error(m, "[[sink]]\nname = \"r\"\nplugin = \"fake\"\nfail_tims = 2\n",
               "t.toml:4:1: sink[0]: unknown key \"fail_tims\" (did you mean \"fail_times\"?)", "unknown option");
  expect_error(m, "[[sink]]\nname = \"r\"\nplugin = \"fake\"\nfail_times = \"two\"\n",
               "t.toml:4:14: sink[0].fail_times: expected an integer, got string", "wrong type");
  expect_error(m, "[[sink]]\nname = \"r\"\nplugin = \"fake\"\nfail_times = -1\n",
               "t.toml:4:14: sink[0].fail_times: -1 is out of range (0 to 1000)", "out of range");
  expect_error(m, "[[sink]]\nname = \"r\"\nplugin = \"fak\"\n",
               "t.toml:3:10: sink[0].plugin: unknown sink plugin \"fak\" (known: file, fake)", "unknown plugin");
  expect_error(m, "[[sink]]\nplugin = \"fake\"\n", "t.toml:1:1: sink[0]: missing required key \"name\"",
               "missing name");
  expect_error(m, "[[sink]]\nname = \"r\"\nplugin = \"file\"\n", "t.toml:1:1: sink[0]: missing required key \"path\"",
               "a file sink without path");
  expect_error(m, "[[sink]]\nname = \"r\"\nplugin = \"file\"\npath = \"/nonexistent-sluice/x\"\n",
               "t.toml:1:1: sink[0]: cannot open /nonexistent-sluice/x for writing: no such file or directory",
               "the plugin's create error, at the table");
}

static void test_retry(sl_metrics_t *m) {
  sl_diag_t d = {0};
  int rc;
  reset();
  sl_sink_retry_t retry = {.initial_backoff_ms = 20, .max_backoff_ms = 50};
  sl_sink_t *s = make("[[sink]]\nname = \"retrying\"\nplugin = \"fake\"\nfail_times = 4\n", m, &retry, &d, &rc);
  if (!s) {
    ok(0, "make: %s", d.n ? d.lines[0] : "?");
    sl_diag_free(&d);
    return;
  }
  seen.in_call = true;
  rc = sl_sink_write(s, &batch, on_done, NULL);
  seen.in_call = false;
  is_int(rc, 0, "write accepted");
  is_int((int)sl_sink_in_flight(s), 1, "one batch in flight");
  wait_for(one_done);
  is_int(seen.n, 1, "done reaches the caller exactly once");
  is_int(seen.status, SL_SINK_OK, "... with SL_SINK_OK");
  is_int(seen.early, 0, "... not from inside sl_sink_write");
  is_int(fake.attempts, 5, "four RETRYs, then the fifth attempt succeeds");
  is_int((int)fake.rows_seen, 3, "every attempt carries the whole batch");
  /* Backoff 20, 40, then the cap: 50, 50. */
  uint64_t want[4] = {20, 40, 50, 50};
  bool spaced = true;
  for (int i = 0; i < 4; i++) {
    uint64_t gap = fake.attempt_ms[i + 1] - fake.attempt_ms[i];
    if (gap < want[i]) spaced = false;
    printf("# gap %d: %llu ms (at least %llu)\n", i, (unsigned long long)gap, (unsigned long long)want[i]);
  }
  ok(spaced, "retries wait 20, 40, 50, 50 ms: doubling, capped");
  ok(fake.attempt_ms[4] - fake.attempt_ms[0] < 2000, "and not much longer");
  is_int((int)sl_sink_in_flight(s), 0, "nothing in flight after done");
  ok(has_line(m, "sluice_sink_retries_total{sink=\"retrying\"} 4"), "retries counted");
  ok(has_line(m, "sluice_sink_rows_total{sink=\"retrying\"} 3"), "rows counted once");
  ok(has_line(m, "sluice_sink_batches_total{sink=\"retrying\"} 1"), "the batch counted once");
  ok(has_line(m, "sluice_sink_failures_total{sink=\"retrying\"} 0"), "no failure");
  ok(has_line(m, "sluice_sink_in_flight{sink=\"retrying\"} 0"), "in-flight gauge back to 0");
  close_and_free(s);
  sl_diag_free(&d);
}

static void test_fatal(sl_metrics_t *m) {
  sl_diag_t d = {0};
  int rc;
  reset();
  sl_sink_retry_t retry = {.initial_backoff_ms = 1, .max_backoff_ms = 1};
  sl_sink_t *s =
      make("[[sink]]\nname = \"broken\"\nplugin = \"fake\"\nfail_times = 5\nstatus = \"fatal\"\n", m, &retry, &d, &rc);
  if (!s) {
    ok(0, "make");
    return;
  }
  is_int(sl_sink_write(s, &batch, on_done, NULL), 0, "write accepted");
  wait_for(one_done);
  /* Give a wrongly scheduled retry the time to show itself. */
  uv_timer_start(&deadline, on_deadline, 30, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  timed_out = false;
  is_int(seen.n, 1, "FATAL reaches the caller once");
  is_int(seen.status, SL_SINK_FATAL, "... as SL_SINK_FATAL");
  is_str(seen.message, "fake failure", "... with the sink's message");
  is_int(fake.attempts, 1, "a FATAL is not retried");
  ok(has_line(m, "sluice_sink_failures_total{sink=\"broken\"} 1"), "the failure is counted");
  ok(has_line(m, "sluice_sink_rows_total{sink=\"broken\"} 0"), "no rows counted");
  ok(has_line(m, "sluice_sink_retries_total{sink=\"broken\"} 0"), "no retries counted");
  close_and_free(s);

  /* Retries are bounded when max_attempts says so. */
  reset();
  retry = (sl_sink_retry_t){.initial_backoff_ms = 1, .max_backoff_ms = 2, .max_attempts = 3};
  s = make("[[sink]]\nname = \"tired\"\nplugin = \"fake\"\nfail_times = 100\n", m, &retry, &d, &rc);
  is_int(sl_sink_write(s, &batch, on_done, NULL), 0, "write accepted");
  wait_for(one_done);
  is_int(fake.attempts, 3, "max_attempts = 3: three attempts");
  is_int(seen.n, 1, "then one done");
  is_int(seen.status, SL_SINK_RETRY, "... reporting SL_SINK_RETRY");
  is_str(seen.message, "gave up after 3 attempts: fake failure", "... saying it gave up");
  ok(has_line(m, "sluice_sink_failures_total{sink=\"tired\"} 1"), "counted as a failure");
  ok(has_line(m, "sluice_sink_retries_total{sink=\"tired\"} 2"), "after two retries");
  close_and_free(s);
  sl_diag_free(&d);
}

static sl_metrics_t *metrics;
static bool retry_scheduled(void) { return has_line_quiet(metrics, "sluice_sink_retries_total{sink=\"patient\"} 1"); }

static void test_close_while_waiting(sl_metrics_t *m) {
  sl_diag_t d = {0};
  int rc;
  reset();
  sl_sink_retry_t retry = {.initial_backoff_ms = 60000, .max_backoff_ms = 60000};
  sl_sink_t *s = make("[[sink]]\nname = \"patient\"\nplugin = \"fake\"\nfail_times = 100\n", m, &retry, &d, &rc);
  is_int(sl_sink_write(s, &batch, on_done, NULL), 0, "write accepted");
  metrics = m;
  wait_for(retry_scheduled);
  is_int(seen.n, 0, "a RETRY waits for its timer, unreported");
  seen.closed = 0;
  seen.in_call = true;
  sl_sink_close(s, on_closed, NULL);
  seen.in_call = false;
  is_int(sl_sink_write(s, &batch, on_done, NULL), SL_ECANCELED, "a write after close is refused");
  wait_for(closed);
  is_int(seen.n, 1, "the waiting write is reported once");
  is_int(seen.status, SL_SINK_CANCELED, "... as SL_SINK_CANCELED");
  is_int(seen.closed, 1, "then the sink reports closed once");
  is_int(fake.attempts, 1, "and the write was not retried");
  ok(has_line(m, "sluice_sink_in_flight{sink=\"patient\"} 0"), "in-flight gauge back to 0");
  sl_sink_free(s);
  sl_diag_free(&d);
}

/* The built-in file sink through the host: options from the table, rows
 * in the file, counted under the sink's name. */
static void test_file_through_host(sl_metrics_t *m) {
  char dir[] = "/tmp/sluice-sink-host-XXXXXX", text[512], path[300];
  if (!mkdtemp(dir)) {
    ok(0, "mkdtemp");
    return;
  }
  snprintf(path, sizeof path, "%s/out.json", dir);
  snprintf(text, sizeof text, "[[sink]]\nname = \"lines\"\nplugin = \"file\"\npath = \"%s\"\nfsync = true\n", path);
  sl_diag_t d = {0};
  int rc;
  reset();
  sl_sink_t *s = make(text, m, NULL, &d, &rc);
  is_int(rc, 0, "a file sink made through the host");
  if (s) {
    is_int(sl_sink_write(s, &batch, on_done, NULL), 0, "write accepted");
    wait_for(one_done);
    is_int(seen.status, SL_SINK_OK, "written");
    FILE *f = fopen(path, "r");
    char got[256] = "";
    size_t n = f ? fread(got, 1, sizeof got - 1, f) : 0;
    got[n] = '\0';
    if (f) fclose(f);
    is_str(got, "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n", "the rows are in the file");
    ok(has_line(m, "sluice_sink_rows_total{sink=\"lines\"} 3"), "and counted");
    close_and_free(s);
  }
  sl_diag_free(&d);
  unlink(path);
  rmdir(dir);
}

int main(void) {
  sl_log_set_level(SL_LOG_ERROR); /* the retry warnings are expected */
  uv_loop_init(&loop);
  uv_timer_init(&loop, &deadline);
  sl_metrics_t *m = sl_metrics_new();

  ok(sl_sink_type_find("file") == &sl_file_sink_type, "the file sink is built in");
  ok(sl_sink_type_find("fake") == NULL, "the fake is unknown before it is registered");
  is_int(sl_sink_type_register(&fake_type), 0, "registering the fake");
  ok(sl_sink_type_find("fake") == &fake_type, "then it is found");
  is_int(sl_sink_type_register(&fake_type), -EEXIST, "a name is registered once");

  test_options(m);
  test_errors(m);
  test_retry(m);
  test_fatal(m);
  test_close_while_waiting(m);
  test_file_through_host(m);
  ok(!timed_out, "no wait ran into the deadline");

  sl_toml_free(doc);
  uv_close((uv_handle_t *)&deadline, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  is_int(uv_loop_close(&loop), 0, "the loop closes cleanly");
  sl_metrics_free(m);
  return tap_done();
}
