/* The file sink, driven directly through its descriptor on a real uv loop:
 * batches queued together land in the file in order, each row once, one
 * JSON object a line, with fsync on; append keeps what the file held and
 * truncate does not; every accepted write and flush reports exactly once,
 * never from inside the call; an unwritable path fails create with its
 * name and reason; /dev/full is a retryable error; a write cut short by
 * the file size limit is cut back to the last whole batch and reported
 * fatal; and close lets the write in flight finish (reported with its real
 * outcome), cancels the queued ones, then reports closed.
 *
 * Every wait is for callbacks, under a deadline; each case ends with the
 * loop closed. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "config/config_schema.h"
#include "config/toml.h"
#include "core/error.h"
#include "core/metrics.h"
#include "sinks/sink.h"
#include "tap.h"

#define DEADLINE_MS 20000
#define MAX_CALLS 64

static const sl_sink_type_t *T = &sl_file_sink_type;
static char tmpdir[] = "/tmp/sluice-sink-file-XXXXXX";

/* What the callbacks saw: each call's token in order, with its status. */
typedef struct {
  int token[MAX_CALLS];
  int status[MAX_CALLS];
  char message[MAX_CALLS][256];
  int n;
  bool in_call; /* set around write/flush/close: done must not come then */
  int early;    /* dones that came from inside a call */
  int closed;   /* on_closed calls */
  int dones_at_close;
} seen_t;

static seen_t seen;
static uv_loop_t loop;
static uv_timer_t deadline;
static bool timed_out;

static void on_done(void *arg, int status, const char *message) {
  if (seen.in_call) seen.early++;
  if (seen.n < MAX_CALLS) {
    seen.token[seen.n] = (int)(intptr_t)arg;
    seen.status[seen.n] = status;
    snprintf(seen.message[seen.n], sizeof seen.message[0], "%s", message ? message : "");
  }
  seen.n++;
}

static void on_closed(void *arg) {
  (void)arg;
  seen.closed++;
  seen.dones_at_close = seen.n;
}

static void on_deadline(uv_timer_t *t) {
  (void)t;
  timed_out = true;
  uv_stop(&loop);
}

/* Runs the loop until `want` dones (and, if closing, on_closed) came. */
static void wait_for(int want, bool closed) {
  uv_timer_start(&deadline, on_deadline, DEADLINE_MS, 0);
  while (!timed_out && (seen.n < want || (closed && !seen.closed))) uv_run(&loop, UV_RUN_ONCE);
  uv_timer_stop(&deadline);
}

/* Binds the file sink's options from TOML text, as the host does. */
static void *bind_conf(const char *text) {
  sl_toml_value_t *doc = NULL;
  char err[256];
  if (sl_toml_parse(text, strlen(text), "t.toml", &doc, err, sizeof err)) {
    printf("# %s\n", err);
    return NULL;
  }
  sl_diag_t d = {0};
  void *conf = calloc(1, T->options->size);
  size_t n = sl_schema_validate(T->options, doc, "t.toml", &d);
  if (!n) n = sl_schema_bind(T->options, doc, conf, "t.toml", &d);
  for (size_t i = 0; i < d.n; i++) printf("# %s\n", d.lines[i]);
  sl_diag_free(&d);
  sl_toml_free(doc);
  if (n) {
    sl_schema_unbind(T->options, conf);
    free(conf);
    return NULL;
  }
  return conf;
}

static void free_conf(void *conf) {
  if (!conf) return;
  sl_schema_unbind(T->options, conf);
  free(conf);
}

/* create from TOML text; NULL with err filled on failure. */
static void *make(const char *text, sl_metrics_t *m, int *rc, char *err, size_t errlen) {
  void *conf = bind_conf(text);
  void *self = NULL;
  *rc = conf ? T->create(conf, &loop, m, "out", &self, err, errlen) : SL_ECONFIG;
  free_conf(conf);
  return self;
}

static void close_and_free(void *self) {
  seen.in_call = true;
  T->close(self, on_closed, NULL);
  seen.in_call = false;
  wait_for(seen.n, true);
  T->free(self);
}

static void reset(void) { memset(&seen, 0, sizeof seen); }

/* Rows "{"b":<batch>,"r":<row>}" with ids batch*100+row. */
typedef struct {
  char text[8][32];
  sl_sink_row_t rows[8];
  sl_sink_batch_t batch;
} test_batch_t;

static void fill(test_batch_t *b, int batch, int n) {
  for (int i = 0; i < n; i++) {
    int len = snprintf(b->text[i], sizeof b->text[i], "{\"b\":%d,\"r\":%d}", batch, i);
    b->rows[i] = (sl_sink_row_t){.json = b->text[i], .json_len = (size_t)len, .id = (uint64_t)(batch * 100 + i),
                                 .job = "job"};
  }
  b->batch = (sl_sink_batch_t){.rows = b->rows, .n = (size_t)n};
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return strdup("<missing>");
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return strdup(buf);
}

static void test_in_order(sl_metrics_t *m) {
  char path[256], conf[512], err[256] = "";
  snprintf(path, sizeof path, "%s/rows.json", tmpdir);
  FILE *f = fopen(path, "w");
  fputs("old line\n", f);
  fclose(f);
  snprintf(conf, sizeof conf, "path = \"%s\"\nfsync = true\nmode = \"truncate\"\n", path);
  reset();
  int rc;
  void *s = make(conf, m, &rc, err, sizeof err);
  is_int(rc, 0, "create with fsync and truncate");
  if (!s) return;
  /* Five batches queued at once, one of them empty, and a flush after. */
  static test_batch_t b[5];
  int sizes[5] = {3, 1, 0, 8, 2};
  int accepted = 0;
  seen.in_call = true;
  for (int i = 0; i < 5; i++) {
    fill(&b[i], i, sizes[i]);
    accepted += T->write(s, &b[i].batch, on_done, (void *)(intptr_t)i) == 0;
  }
  accepted += T->flush(s, on_done, (void *)(intptr_t)5) == 0;
  seen.in_call = false;
  is_int(accepted, 6, "five writes and a flush accepted");
  wait_for(6, false);
  ok(!timed_out, "every write reported before the deadline");
  is_int(seen.n, 6, "exactly one done per write and flush");
  is_int(seen.early, 0, "no done from inside write or flush");
  bool in_order = true, all_ok = true;
  for (int i = 0; i < 6 && i < seen.n; i++) {
    in_order &= seen.token[i] == i;
    all_ok &= seen.status[i] == SL_SINK_OK;
  }
  ok(in_order, "dones come in the order of the writes");
  ok(all_ok, "every write reported SL_SINK_OK");

  /* Read back while the sink is still open: done meant written. */
  char *got = slurp(path);
  char want[2048] = "";
  for (int i = 0; i < 5; i++)
    for (int r = 0; r < sizes[i]; r++) snprintf(want + strlen(want), sizeof want - strlen(want), "{\"b\":%d,\"r\":%d}\n", i, r);
  is_str(got, want, "the file holds every row once, in order, one per line; the old content is gone");
  free(got);

  sl_buf_t text = {0};
  sl_metrics_render(m, &text);
  sl_buf_putc(&text, '\0');
  char line[128];
  snprintf(line, sizeof line, "sluice_sink_file_bytes_total{sink=\"out\"} %zu\n", strlen(want));
  ok(strstr(text.data, line) != NULL, "bytes written counted under the sink's name");
  sl_buf_free(&text);

  close_and_free(s);
  is_int(seen.closed, 1, "on_closed once");

  /* Append keeps what is there. */
  snprintf(conf, sizeof conf, "path = \"%s\"\n", path);
  reset();
  s = make(conf, m, &rc, err, sizeof err);
  is_int(rc, 0, "create again in the default mode (append)");
  if (!s) return;
  static test_batch_t more;
  fill(&more, 9, 1);
  is_int(T->write(s, &more.batch, on_done, (void *)(intptr_t)9), 0, "write accepted");
  wait_for(1, false);
  is_int(seen.n == 1 ? seen.status[0] : -1, SL_SINK_OK, "appended");
  got = slurp(path);
  strcat(want, "{\"b\":9,\"r\":0}\n");
  is_str(got, want, "append mode adds after the rows already there");
  free(got);
  close_and_free(s);
}

static void test_create_errors(sl_metrics_t *m) {
  char err[256] = "", conf[512];
  int rc;
  reset();
  void *s = make("path = \"/nonexistent-sluice-dir/rows.json\"\n", m, &rc, err, sizeof err);
  ok(s == NULL, "no instance for a path in a missing folder");
  is_int(rc, UV_ENOENT, "create returns -ENOENT");
  is_str(err, "cannot open /nonexistent-sluice-dir/rows.json for writing: no such file or directory",
         "the error names the path and the reason");

  snprintf(conf, sizeof conf, "path = \"%s\"\n", tmpdir);
  err[0] = '\0';
  s = make(conf, m, &rc, err, sizeof err);
  ok(s == NULL && rc == UV_EISDIR, "a folder is refused with -EISDIR");
  ok(strstr(err, tmpdir) && strstr(err, "illegal operation on a directory"), "... and says so: %s", err);

  void *conf_bad = bind_conf("path = \"x\"\nmode = \"rewrite\"\n");
  ok(conf_bad == NULL, "mode is append or truncate");
  is_int(seen.n, 0, "a failed create calls nothing");
}

/* /dev/full: every write fails with ENOSPC, which is worth retrying. */
static void test_enospc(sl_metrics_t *m) {
  char err[256] = "";
  int rc;
  reset();
  void *s = make("path = \"/dev/full\"\nfsync = true\n", m, &rc, err, sizeof err);
  is_int(rc, 0, "create on /dev/full");
  if (!s) return;
  static test_batch_t b;
  fill(&b, 0, 2);
  T->write(s, &b.batch, on_done, (void *)(intptr_t)1);
  wait_for(1, false);
  is_int(seen.n, 1, "one done");
  is_int(seen.status[0], SL_SINK_RETRY, "ENOSPC is SL_SINK_RETRY");
  is_str(seen.message[0], "cannot write /dev/full: no space left on device", "with the path and reason");
  close_and_free(s);
}

/* A file size limit lets part of a batch through, then EFBIG: the part is
 * cut off so that the file ends at the last whole batch. */
static void test_partial_cut(sl_metrics_t *m) {
  char path[256], conf[512], err[256] = "";
  snprintf(path, sizeof path, "%s/limited.json", tmpdir);
  snprintf(conf, sizeof conf, "path = \"%s\"\nmode = \"truncate\"\n", path);
  reset();
  int rc;
  void *s = make(conf, m, &rc, err, sizeof err);
  if (!s) {
    ok(0, "create: %s", err);
    return;
  }
  static test_batch_t first, second;
  fill(&first, 0, 2);  /* 28 bytes */
  fill(&second, 1, 8); /* 112 bytes: crosses the limit */
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit old, lim;
  getrlimit(RLIMIT_FSIZE, &old);
  lim = old;
  lim.rlim_cur = 64;
  setrlimit(RLIMIT_FSIZE, &lim);
  T->write(s, &first.batch, on_done, (void *)(intptr_t)0);
  T->write(s, &second.batch, on_done, (void *)(intptr_t)1);
  wait_for(2, false);
  setrlimit(RLIMIT_FSIZE, &old);
  is_int(seen.n, 2, "two dones");
  is_int(seen.status[0], SL_SINK_OK, "the batch under the limit is written");
  is_int(seen.status[1], SL_SINK_FATAL, "EFBIG is SL_SINK_FATAL");
  ok(strstr(seen.message[1], "File too large") || strstr(seen.message[1], "file too large"), "... saying why: %s",
     seen.message[1]);
  char *got = slurp(path);
  is_str(got, "{\"b\":0,\"r\":0}\n{\"b\":0,\"r\":1}\n", "the partial batch was cut off: no torn line");
  free(got);
  close_and_free(s);
}

/* close with a write in flight and one queued. */
static void test_close_in_flight(sl_metrics_t *m) {
  char path[256], conf[512], err[256] = "";
  snprintf(path, sizeof path, "%s/closing.json", tmpdir);
  snprintf(conf, sizeof conf, "path = \"%s\"\nmode = \"truncate\"\nfsync = true\n", path);
  reset();
  int rc;
  void *s = make(conf, m, &rc, err, sizeof err);
  if (!s) {
    ok(0, "create: %s", err);
    return;
  }
  static test_batch_t a, b;
  fill(&a, 0, 3);
  fill(&b, 1, 3);
  seen.in_call = true;
  T->write(s, &a.batch, on_done, (void *)(intptr_t)0);
  T->write(s, &b.batch, on_done, (void *)(intptr_t)1);
  T->close(s, on_closed, NULL);
  static test_batch_t c;
  fill(&c, 2, 1);
  int late = T->write(s, &c.batch, on_done, (void *)(intptr_t)2);
  int late_flush = T->flush(s, on_done, (void *)(intptr_t)3);
  seen.in_call = false;
  is_int(late, SL_ECANCELED, "a write after close is refused with SL_ECANCELED");
  is_int(late_flush, SL_ECANCELED, "so is a flush");
  is_int(seen.closed, 0, "not closed while a write is in flight");
  wait_for(2, true);
  is_int(seen.n, 2, "one done for each write accepted before close, none for the refused ones");
  ok(seen.token[0] == 1 && seen.status[0] == SL_SINK_CANCELED, "the queued write is reported SL_SINK_CANCELED");
  ok(seen.token[1] == 0 && seen.status[1] == SL_SINK_OK, "the write in flight completes and reports OK");
  is_int(seen.dones_at_close, 2, "on_closed comes after both");
  is_int(seen.closed, 1, "on_closed once");
  is_int(seen.early, 1, "only the cancelled write reports from inside close");
  char *got = slurp(path);
  is_str(got, "{\"b\":0,\"r\":0}\n{\"b\":0,\"r\":1}\n{\"b\":0,\"r\":2}\n", "the file has the completed write only");
  free(got);
  T->free(s);

  /* Closing an idle sink. */
  reset();
  s = make(conf, m, &rc, err, sizeof err);
  close_and_free(s);
  is_int(seen.closed, 1, "an idle sink closes once");
}

int main(void) {
  if (!mkdtemp(tmpdir)) {
    printf("Bail out! mkdtemp\n");
    return 1;
  }
  uv_loop_init(&loop);
  uv_timer_init(&loop, &deadline);
  sl_metrics_t *m = sl_metrics_new();

  sl_diag_t d = {0};
  is_int(sl_schema_check_defaults(T->options, &d), 0, "the option table's defaults are valid");
  sl_diag_free(&d);
  is_str(T->name, "file", "the type is named file");

  test_in_order(m);
  test_create_errors(m);
  test_enospc(m);
  test_partial_cut(m);
  test_close_in_flight(m);
  ok(!timed_out, "no wait ran into the deadline");

  uv_close((uv_handle_t *)&deadline, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  is_int(uv_loop_close(&loop), 0, "the loop closes cleanly");
  sl_metrics_free(m);

  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
  return tap_done();
}
