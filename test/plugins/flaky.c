/* The `flaky` sink plugin, for tests: a sink that fails on command.  It
 * appends the rows it accepts to `path` (one JSON line each, written
 * synchronously with write(2) when the write completes, and only when it
 * succeeds, so a retried write never leaves a copy behind), and fails as
 * its options say:
 *
 *   fail_first   the first N plugin writes complete RETRY;
 *   control      while this file exists, every write completes RETRY (a
 *                test makes the sink "down" and "up" by creating and
 *                removing it);
 *   fatal_match  rows whose JSON contains this text get FATAL (row_done),
 *                the others of the write are written;
 *   hang         writes never complete; destroy completes them CANCELED;
 *   stall        while this file exists, writes wait unanswered (a slow
 *                sink that blocks; checked every STALL_POLL_MS), then are
 *                carried out as the other options say;
 *   block        each write blocks the jobs loop this long before it is
 *                accepted (a plugin that wrongly blocks its loop).
 *
 * Writes are completed from a host timer (never from inside write), in the
 * order they came.  Runs on the jobs loop; sees only the SDK header and
 * system headers, like any plugin built out of tree.
 *
 * Built three ways (test/plugins/meson.build): flaky.so; with
 * -DFLAKY_NO_DESCRIPTOR, a shared object without the descriptor symbol;
 * with -DFLAKY_ABI_MAJOR=99, one built for another ABI. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup under -std=c11 */
#endif

#include <errno.h>
#include <fcntl.h>
#include <sluice/sink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef FLAKY_NAME
#define FLAKY_NAME "flaky"
#endif
#ifndef FLAKY_ABI_MAJOR
#define FLAKY_ABI_MAJOR SLUICE_SINK_ABI_MAJOR
#endif
#define STALL_POLL_MS 20

typedef struct {
  char *path; /* owned by the host, like the other strings */
  int64_t fail_first;
  char *fatal_match;
  bool hang;
  char *control;
  char *stall;
  int64_t block_ns;
} flaky_conf_t;

static const sluice_opt_t flaky_opts[] = {
    {.name = "path",
     .type = SLUICE_OPT_STRING,
     .flags = SLUICE_OPT_REQUIRED,
     .offset = offsetof(flaky_conf_t, path),
     .help = "File the accepted rows are appended to, one JSON object per line."},
    {.name = "fail_first",
     .type = SLUICE_OPT_INT,
     .def = "0",
     .min = 0,
     .max = 1000000000,
     .offset = offsetof(flaky_conf_t, fail_first),
     .help = "The first N writes fail with a retryable error."},
    {.name = "fatal_match",
     .type = SLUICE_OPT_STRING,
     .offset = offsetof(flaky_conf_t, fatal_match),
     .help = "Rows whose JSON contains this text are refused for good (FATAL)."},
    {.name = "hang",
     .type = SLUICE_OPT_BOOL,
     .def = "false",
     .offset = offsetof(flaky_conf_t, hang),
     .help = "Writes never complete, until the sink is destroyed (then CANCELED)."},
    {.name = "control",
     .type = SLUICE_OPT_STRING,
     .offset = offsetof(flaky_conf_t, control),
     .help = "While this file exists, every write fails with a retryable error."},
    {.name = "stall",
     .type = SLUICE_OPT_STRING,
     .offset = offsetof(flaky_conf_t, stall),
     .help = "While this file exists, writes wait without an answer (a sink that blocks)."},
    {.name = "block",
     .type = SLUICE_OPT_DURATION,
     .def = "\"0s\"",
     .min = 0,
     .max = 600000000000LL,
     .offset = offsetof(flaky_conf_t, block_ns),
     .help = "Each write blocks the jobs loop this long (sleeping inside write)."},
    {0},
};

/* A write accepted and not yet completed. */
typedef struct op {
  struct op *next;
  sluice_write_t *w; /* the host's; gone after write_done */
  const sluice_row_t *const *rows;
  size_t n;
} op_t;

typedef struct {
  const sluice_host_t *host; /* borrowed until destroyed */
  sluice_ctx_t *ctx;
  int fd;
  char *path, *fatal_match, *control, *stall; /* owned copies */
  bool hang;
  int64_t block_ns;
  int64_t fail_left;
  sluice_timer_t *timer;
  bool timer_armed;
  op_t *head, *tail;
  bool closing;
  int reporting; /* completions on the stack: destroy must not free */
  sluice_metric_t *m_failed;
} flaky_t;

static void on_timer(void *arg);

static int flaky_create(const sluice_host_t *host, sluice_ctx_t *ctx, const void *conf_, void *loop, void **self,
                        char *err, size_t errlen) {
  const flaky_conf_t *conf = conf_;
  (void)loop;
  *self = NULL;
  if (host->abi_major != SLUICE_SINK_ABI_MAJOR) {
    snprintf(err, errlen, "the agent's sink ABI is %u.%u, flaky's %d.%d", (unsigned)host->abi_major,
             (unsigned)host->abi_minor, SLUICE_SINK_ABI_MAJOR, SLUICE_SINK_ABI_MINOR);
    return -1;
  }
  flaky_t *f = calloc(1, sizeof *f);
  if (!f) goto nomem;
  f->fd = -1;
  f->host = host;
  f->ctx = ctx;
  f->hang = conf->hang;
  f->block_ns = conf->block_ns;
  f->fail_left = conf->fail_first;
  if (!(f->path = strdup(conf->path)) || (conf->fatal_match && !(f->fatal_match = strdup(conf->fatal_match))) ||
      (conf->control && !(f->control = strdup(conf->control))) || (conf->stall && !(f->stall = strdup(conf->stall))))
    goto nomem;
  f->fd = open(conf->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (f->fd < 0) {
    snprintf(err, errlen, "flaky: cannot open %s for writing: %s", conf->path, strerror(errno));
    goto fail;
  }
  if (!(f->timer = host->timer_new(ctx, on_timer, f))) goto nomem;
  f->m_failed = host->counter(ctx, "sluice_sink_flaky_failed_writes_total", "Writes flaky failed on purpose.");
  host->log(ctx, SLUICE_LOG_INFO, "writing to %s (fail_first %lld%s%s%s%s%s%s)", f->path, (long long)f->fail_left,
            f->hang ? ", hang" : "", f->control ? ", control " : "", f->control ? f->control : "",
            f->fatal_match ? ", fatal_match set" : "", f->stall ? ", stall " : "", f->stall ? f->stall : "");
  *self = f;
  return 0;
nomem:
  snprintf(err, errlen, "flaky: out of memory");
fail:
  if (f) {
    if (f->fd >= 0) close(f->fd);
    free(f->path);
    free(f->fatal_match);
    free(f->control);
    free(f->stall);
    free(f);
  }
  return -1;
}

/* Writes all of buf, or fails with errno set. */
static int write_all(int fd, const char *buf, size_t len) {
  while (len) {
    ssize_t r = write(fd, buf, len);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += r;
    len -= (size_t)r;
  }
  return 0;
}

/* Whether text[0..len) contains the NUL-terminated needle. */
static bool contains(const char *text, size_t len, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; n && i + n <= len; i++)
    if (!memcmp(text + i, needle, n)) return true;
  return false;
}

/* The outcome of one write: rows matching fatal_match FATAL, the others
 * appended (or the whole write RETRY).  Returns the status for write_done
 * and fills msg. */
static sluice_status_t carry_out(flaky_t *f, op_t *op, char *msg, size_t msglen) {
  if (f->control && access(f->control, F_OK) == 0) {
    snprintf(msg, msglen, "flaky: down while %s exists", f->control);
    return SLUICE_RETRY;
  }
  if (f->fail_left > 0) {
    f->fail_left--;
    snprintf(msg, msglen, "flaky: fail_first, %lld failures left", (long long)f->fail_left);
    return SLUICE_RETRY;
  }
  size_t total = 0;
  for (size_t i = 0; i < op->n; i++) {
    size_t len;
    f->host->row_json(op->rows[i], &len);
    total += len + 1;
  }
  char *buf = malloc(total ? total : 1);
  if (!buf) {
    snprintf(msg, msglen, "flaky: out of memory");
    return SLUICE_RETRY;
  }
  size_t at = 0;
  for (size_t i = 0; i < op->n; i++) {
    size_t len;
    const char *json = f->host->row_json(op->rows[i], &len);
    if (f->fatal_match && contains(json, len, f->fatal_match)) {
      f->host->row_done(op->w, i, SLUICE_FATAL, "flaky: the row matches fatal_match");
      continue;
    }
    memcpy(buf + at, json, len);
    at += len;
    buf[at++] = '\n';
  }
  off_t before = lseek(f->fd, 0, SEEK_END);
  int r = write_all(f->fd, buf, at);
  int e = errno;
  free(buf);
  if (r) {
    /* Nothing of a failed write stays: a retry writes it whole. */
    if (before >= 0 && ftruncate(f->fd, before) != 0) {
      snprintf(msg, msglen, "flaky: cannot write %s: %s (and cannot cut it back)", f->path, strerror(e));
      return SLUICE_FATAL;
    }
    snprintf(msg, msglen, "flaky: cannot write %s: %s", f->path, strerror(e));
    return SLUICE_RETRY;
  }
  return SLUICE_OK;
}

static void release(flaky_t *f);

/* Completes op (taken off the queue already) as status says; the host may
 * call write or destroy from inside. */
static void complete(flaky_t *f, op_t *op, sluice_status_t status, const char *msg) {
  if (status != SLUICE_OK && status != SLUICE_CANCELED) f->host->metric_add(f->m_failed, 1);
  f->reporting++;
  f->host->write_done(op->w, status, status == SLUICE_OK ? NULL : msg);
  f->reporting--;
  free(op);
}

static void cancel_all(flaky_t *f) {
  while (f->head) {
    op_t *op = f->head;
    f->head = op->next;
    if (!f->head) f->tail = NULL;
    complete(f, op, SLUICE_CANCELED, "flaky: destroyed before the write completed");
  }
}

static void on_timer(void *arg) {
  flaky_t *f = arg;
  f->timer_armed = false;
  if (f->head && !f->closing && f->stall && access(f->stall, F_OK) == 0) {
    f->timer_armed = true; /* look again later; the writes wait */
    f->host->timer_start(f->timer, STALL_POLL_MS);
    return;
  }
  while (f->head && !f->closing && !f->hang) {
    op_t *op = f->head;
    f->head = op->next;
    if (!f->head) f->tail = NULL;
    char msg[512] = "";
    sluice_status_t st = carry_out(f, op, msg, sizeof msg);
    complete(f, op, st, msg);
  }
  if (f->closing) {
    cancel_all(f);
    release(f);
  }
}

static void arm(flaky_t *f) {
  if (f->timer_armed || f->hang) return;
  f->timer_armed = true;
  f->host->timer_start(f->timer, 0);
}

static int flaky_write(void *self, sluice_write_t *w, const sluice_row_t *const *rows, size_t n) {
  flaky_t *f = self;
  if (f->closing) return -1;
  if (f->block_ns) {
    struct timespec ts = {.tv_sec = f->block_ns / 1000000000, .tv_nsec = f->block_ns % 1000000000};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
  }
  op_t *op = calloc(1, sizeof *op);
  if (!op) return -1;
  *op = (op_t){.w = w, .rows = rows, .n = n};
  if (f->tail)
    f->tail->next = op;
  else
    f->head = op;
  f->tail = op;
  arm(f);
  return 0;
}

/* The last step: the host may free ctx in destroyed. */
static void release(flaky_t *f) {
  const sluice_host_t *host = f->host;
  sluice_ctx_t *ctx = f->ctx;
  host->timer_free(f->timer);
  if (f->fd >= 0) close(f->fd);
  free(f->path);
  free(f->fatal_match);
  free(f->control);
  free(f->stall);
  free(f);
  host->destroyed(ctx);
}

static void flaky_destroy(void *self) {
  flaky_t *f = self;
  f->closing = true;
  if (f->reporting) return; /* the completion on the stack finishes the close */
  if (f->timer_armed) {
    /* on_timer cancels the rest and releases: the timer would otherwise
     * be freed from under a start that has not fired yet. */
    return;
  }
  cancel_all(f);
  release(f);
}

#ifdef FLAKY_NO_DESCRIPTOR
/* Not a plugin: exports something, but not the descriptor. */
__attribute__((visibility("default"))) const sluice_sink_plugin_t flaky_not_the_descriptor = {
#else
__attribute__((visibility("default"))) const sluice_sink_plugin_t sluice_sink_plugin = {
#endif
    .abi_major = FLAKY_ABI_MAJOR,
    .abi_minor = SLUICE_SINK_ABI_MINOR,
    .name = FLAKY_NAME,
    .version = "0.3.1",
    .description = "Test sink that fails on command (retries, fatal rows, hangs).",
    .options = flaky_opts,
    .conf_size = sizeof(flaky_conf_t),
    .create = flaky_create,
    .write = flaky_write,
    .destroy = flaky_destroy,
};
