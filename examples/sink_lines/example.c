/* An example sink plugin, "lines": each result row becomes one line of
 * text appended to a file,
 *
 *     api_errors 2023-11-14T22:13:00.000Z id=edc271329c4d3b08 service=cart req.method=POST errors=2 p99_ms=12.5
 *
 * the job's name, the window's start, the row's id, then the group keys and
 * aggregates as key=value (a string with a space, '=', '"' or a control
 * character is written in double quotes, with \" \\ and \xHH escapes).  A
 * late record, sent by a job to its late_sink, has no window:
 * `api_errors late id=... <the record's fields>`.
 *
 * It is written to be read beside plugins/sdk/sluice/sink.h: the descriptor
 * and its options table, create / write / flush / destroy, the row
 * accessors, per-row outcomes (row_done), writes completed with write_done
 * from a host timer (never from inside write), and a counter and a gauge on
 * /metrics.  It includes only <sluice/sink.h> and system headers and links
 * nothing of the agent.  Build and install it with
 *
 *     cc -shared -fPIC -o lines.so example.c $(pkg-config --cflags --libs sluice-plugin)
 *     cp lines.so /usr/local/lib/sluice-plugins/     # a folder listed in plugin_dirs
 *
 * and use it from a [[sink]] table:
 *
 *     plugin_dirs = ["/usr/local/lib/sluice-plugins"]
 *     [[sink]]
 *     name = "lines_out"
 *     plugin = "lines"          # loads lines.so
 *     path = "/var/lib/sluice/rows.txt"
 *
 * Shortcuts a production plugin would not take: it calls write(2) and
 * fdatasync(2) on the jobs loop's thread, which every job shares (a local
 * file is quick, a stalled disk would hold every job back: file.so does its
 * I/O on libuv's thread pool), and a batch that fails half way leaves its
 * first lines in the file, to be written again by the host's retry
 * (file.so cuts them back first).
 *
 * Threads: everything here runs on the jobs loop's thread, called by the
 * host or by the host's timer. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup, O_CLOEXEC, fdatasync under -std=c11 */
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sluice/sink.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- options ---------------------------------------------------------------------
 *
 * Written in the [[sink]] table beside `name` and `plugin`.  The host
 * validates them (`sluice check`: types, ranges, required keys, unknown keys
 * with suggestions) and binds each into a zeroed lines_conf_t at its
 * offset; the struct and its strings are the host's until destroy has
 * completed. */

typedef struct {
  char *path;        /* STRING: char * */
  bool truncate;     /* BOOL: bool */
  uint64_t max_line; /* SIZE: uint64_t bytes */
} lines_conf_t;

static const sluice_opt_t lines_opts[] = {
    {.name = "path",
     .type = SLUICE_OPT_STRING,
     .flags = SLUICE_OPT_REQUIRED,
     .offset = offsetof(lines_conf_t, path),
     .help = "File the lines are appended to."},
    {.name = "truncate",
     .type = SLUICE_OPT_BOOL,
     .def = "false", /* defaults are TOML value text, parsed like the user's */
     .offset = offsetof(lines_conf_t, truncate),
     .help = "Empty the file when the sink starts."},
    {.name = "max_line",
     .type = SLUICE_OPT_SIZE,
     .def = "\"64KiB\"",
     .min = 64,
     .max = 16 << 20,
     .offset = offsetof(lines_conf_t, max_line),
     .help = "Longest line written: a longer row is refused (FATAL) and the sink's on_failure applies to it."},
    {0},
};

/* ---- the instance ------------------------------------------------------------------ */

/* A write or flush whose outcome is known, waiting to be reported: the
 * host must not hear of a write from inside its call to write, so the
 * outcome waits for the report timer (the next loop turn). */
typedef struct report {
  struct report *next;
  sluice_write_t *w; /* the host's; gone after write_done */
  sluice_status_t status;
  size_t *refused; /* rows of the write (indices) refused as too long; owned */
  size_t n_refused;
  char message[256];
} report_t;

typedef struct {
  const sluice_host_t *host; /* borrowed until destroyed */
  sluice_ctx_t *ctx;         /* borrowed until destroyed */
  char *path;                /* owned: a copy, for messages */
  int fd;
  uint64_t max_line;
  sluice_timer_t *report_timer; /* owned: timer_free */
  report_t *head, *tail;        /* waiting for the report timer, in order */
  int reporting;                /* write_done calls on the stack: destroy must not free */
  bool closing;
  int64_t newest_end; /* ms */
  sluice_metric_t *lines_total, *window_end;
} lines_sink_t;

/* What the host should do with rows a failed write(2) left unwritten:
 * RETRY when space or the device may come back, FATAL when the same write
 * would fail the same way. */
static sluice_status_t classify(int err) {
  switch (err) {
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
    case EIO:
    case EAGAIN:
    case ENOMEM:
      return SLUICE_RETRY;
    default:
      return SLUICE_FATAL;
  }
}

static void on_report_timer(void *arg);

static int lines_create(const sluice_host_t *host, sluice_ctx_t *ctx, const void *conf_, void *loop, void **self,
                        char *err, size_t errlen) {
  const lines_conf_t *conf = conf_;
  (void)loop; /* the jobs loop (uv_loop_t *), for a plugin with libuv handles of its own */
  /* No version check: the loader has refused a plugin built for another
   * major version or a newer minor one, so every host function this file
   * names is there. */
  *self = NULL;
  lines_sink_t *s = calloc(1, sizeof *s);
  if (!s || !(s->path = strdup(conf->path))) {
    free(s);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  s->host = host;
  s->ctx = ctx;
  s->max_line = conf->max_line;
  /* O_APPEND: the host's retry of a failed batch lands at the end. */
  int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (conf->truncate ? O_TRUNC : 0);
  s->fd = open(conf->path, flags, 0644);
  if (s->fd < 0) {
    /* Reported by the agent at the [[sink]] table; it does not start. */
    snprintf(err, errlen, "cannot open %s: %s", conf->path, strerror(errno));
    goto fail;
  }
  if (!(s->report_timer = host->timer_new(ctx, on_report_timer, s))) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  /* Metrics are labelled sink="<the [[sink]] name>" by the host; names and
   * help are string literals, kept rather than copied. */
  s->lines_total = host->counter(ctx, "sluice_sink_lines_written_total", "Lines the lines sink wrote.");
  s->window_end = host->gauge(ctx, "sluice_sink_lines_window_end_seconds",
                              "End of the newest window the lines sink wrote (Unix time).");
  host->log(ctx, SLUICE_LOG_INFO, "appending to %s", conf->path);
  *self = s;
  return 0;
fail:
  if (s->fd >= 0) close(s->fd);
  free(s->path);
  free(s);
  return -1;
}

/* ---- formatting a row ------------------------------------------------------------- */

/* A growing buffer; `failed` once an allocation failed. */
typedef struct {
  char *p;
  size_t len, cap;
  bool failed;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n) {
  if (b->failed) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->failed = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void buf_str(buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }

/* A name or a string value (not NUL-terminated: n bytes): bare when plain,
 * else quoted, so that a line always splits back into its fields. */
static void add_text(buf_t *b, const char *s, size_t n) {
  bool plain = n > 0;
  for (size_t i = 0; i < n && plain; i++) {
    unsigned char c = (unsigned char)s[i];
    plain = c > ' ' && c != '=' && c != '"' && c != '\\' && c != 0x7f;
  }
  if (plain) {
    buf_add(b, s, n);
    return;
  }
  buf_add(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    if (c == '"' || c == '\\') {
      buf_add(b, "\\", 1);
      buf_add(b, &s[i], 1);
    } else if (c < ' ' || c == 0x7f) {
      snprintf(esc, sizeof esc, "\\x%02x", c);
      buf_str(b, esc);
    } else {
      buf_add(b, &s[i], 1);
    }
  }
  buf_add(b, "\"", 1);
}

static void add_value(buf_t *b, const sluice_value_t *v) {
  char num[40];
  switch (v->type) {
    case SLUICE_VALUE_NULL: /* also a group-key field the record did not have */
      buf_str(b, "null");
      break;
    case SLUICE_VALUE_BOOL:
      buf_str(b, v->b ? "true" : "false");
      break;
    case SLUICE_VALUE_INT:
      snprintf(num, sizeof num, "%" PRId64, v->i);
      buf_str(b, num);
      break;
    case SLUICE_VALUE_FLOAT:
      /* The shorter of 15 and 17 digits that reads back as the same
       * double, with ".0" when it would read as an integer (as in the
       * row's JSON). */
      snprintf(num, sizeof num, "%.15g", v->f);
      if (strtod(num, NULL) != v->f) snprintf(num, sizeof num, "%.17g", v->f);
      buf_str(b, num);
      if (!strpbrk(num, ".eni")) buf_str(b, ".0"); /* not 1e+20, inf, nan */
      break;
    case SLUICE_VALUE_STRING:
      add_text(b, v->s, v->len);
      break;
    case SLUICE_VALUE_OTHER: /* a map or an array: row_json or row_msgpack has it */
      buf_str(b, "{...}");
      break;
  }
}

/* Appends one row's line.  The row's fields come in a fixed order: id,
 * job, window_start, window_end (RFC 3339 strings), then the group keys and
 * the aggregates.  A late record (a job's late_sink, row_kind LATE) has
 * only the record's own fields (its bounds are those of the window it
 * missed): its line says `late` instead of a window. */
static void add_row(lines_sink_t *s, buf_t *b, const sluice_row_t *row) {
  const sluice_host_t *h = s->host;
  const char *job = h->row_job(row);
  bool late = h->row_kind(row) == SLUICE_ROW_LATE; /* ABI 1.1 */
  sluice_value_t v;
  add_text(b, job ? job : "?", job ? strlen(job) : 1);
  if (late) {
    buf_str(b, " late");
  } else if (h->row_get(row, "window_start", &v) && v.type == SLUICE_VALUE_STRING) {
    buf_add(b, " ", 1);
    buf_add(b, v.s, v.len);
  }
  buf_str(b, " id=");
  buf_str(b, h->row_id_hex(row)); /* the "id" field: the key a sink that overwrites would use */
  size_t n = h->row_nfields(row);
  if (!late && n < 4) {
    b->failed = true; /* the host could not unpack the row (out of memory) */
    return;
  }
  for (size_t i = late ? 0 : 4; i < n; i++) {
    const char *name = h->row_field(row, i, &v); /* valid until the write is completed */
    if (!name) break;
    buf_add(b, " ", 1);
    add_text(b, name, strlen(name));
    buf_add(b, "=", 1);
    add_value(b, &v);
  }
  buf_add(b, "\n", 1);
}

/* ---- writes, flushes and their reports ---------------------------------------------- */

static void queue_report(lines_sink_t *s, report_t *r) {
  if (s->tail)
    s->tail->next = r;
  else
    s->head = r;
  s->tail = r;
  s->host->timer_start(s->report_timer, 0); /* the next loop turn */
}

/* Tells the host the outcome and frees r.  Rows given their own outcome
 * with row_done keep it; write_done gives the others `status`.  The host
 * may call write or destroy from inside write_done. */
static void report(lines_sink_t *s, report_t *r) {
  char why[96];
  snprintf(why, sizeof why, "its line is longer than max_line (%" PRIu64 " bytes)", s->max_line);
  for (size_t k = 0; k < r->n_refused; k++) s->host->row_done(r->w, r->refused[k], SLUICE_FATAL, why);
  s->reporting++;
  s->host->write_done(r->w, r->status, r->status == SLUICE_OK ? NULL : r->message);
  s->reporting--;
  free(r->refused);
  free(r);
}

static int write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t k = write(fd, p, len);
    if (k < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += k;
    len -= (size_t)k;
  }
  return 0;
}

/* Formats rows[0..n) (borrowed until write_done: read here, not kept) into
 * one buffer and writes it at once; the outcome is reported later. */
static int lines_write(void *self, sluice_write_t *w, const sluice_row_t *const *rows, size_t n) {
  lines_sink_t *s = self;
  report_t *r = calloc(1, sizeof *r);
  buf_t b = {0};
  if (!r) return -1; /* refused: the host takes it as a RETRY of every row */
  r->w = w;
  r->status = SLUICE_OK;
  int64_t newest = s->newest_end;
  for (size_t i = 0; i < n && !b.failed; i++) {
    size_t mark = b.len;
    add_row(s, &b, rows[i]);
    if (b.failed) break;
    if (b.len - mark > s->max_line) {
      /* This row alone fails, for good: the others are still written. */
      b.len = mark;
      if (!r->refused && !(r->refused = malloc(n * sizeof *r->refused))) b.failed = true;
      if (r->refused) r->refused[r->n_refused++] = i;
      continue;
    }
    int64_t end = s->host->row_window_end(rows[i]);
    if (end > newest) newest = end;
  }
  if (b.failed) {
    free(b.p);
    free(r->refused);
    free(r);
    return -1;
  }
  int e = write_all(s->fd, b.p, b.len);
  free(b.p);
  if (e) {
    r->status = classify(e);
    snprintf(r->message, sizeof r->message, "cannot write to %s: %s", s->path, strerror(e));
  } else {
    s->host->metric_add(s->lines_total, (double)(n - r->n_refused));
    if (newest > s->newest_end) {
      s->newest_end = newest;
      s->host->metric_set(s->window_end, (double)newest / 1000);
    }
  }
  queue_report(s, r);
  return 0;
}

/* Called every flush_interval when the [[sink]] sets one.  Every write
 * accepted before this flush is in the file already (write is
 * synchronous), so what is left is to sync it. */
static int lines_flush(void *self, sluice_write_t *w) {
  lines_sink_t *s = self;
  report_t *r = calloc(1, sizeof *r);
  if (!r) return -1;
  r->w = w;
  r->status = SLUICE_OK;
  if (fdatasync(s->fd) != 0) {
    r->status = classify(errno);
    snprintf(r->message, sizeof r->message, "cannot sync %s: %s", s->path, strerror(errno));
  }
  queue_report(s, r);
  return 0;
}

static void finish_close(lines_sink_t *s);

/* The report timer: reports what waited when it fired.  Writes the host
 * starts from inside write_done queue behind and start the timer again. */
static void on_report_timer(void *arg) {
  lines_sink_t *s = arg;
  report_t *list = s->head;
  s->head = s->tail = NULL;
  while (list) {
    report_t *r = list;
    list = r->next;
    report(s, r);
  }
  /* destroy was called from inside write_done: finish it now that the
   * host's callback has returned. */
  if (s->closing) finish_close(s);
}

/* Every write accepted has been written already, so none is CANCELED: each
 * gets its real outcome.  Then everything is freed, and destroyed comes
 * last (the host may free ctx in it). */
static void finish_close(lines_sink_t *s) {
  while (s->head) {
    report_t *r = s->head;
    s->head = r->next;
    report(s, r);
  }
  s->tail = NULL;
  const sluice_host_t *host = s->host;
  sluice_ctx_t *ctx = s->ctx;
  host->timer_free(s->report_timer); /* its callback is never called after this */
  close(s->fd);
  free(s->path);
  free(s);
  host->destroyed(ctx);
}

/* Called once; nothing else is called after it. */
static void lines_destroy(void *self) {
  lines_sink_t *s = self;
  s->closing = true;
  if (!s->reporting) finish_close(s);
}

/* ---- the descriptor ----------------------------------------------------------------
 *
 * The one exported symbol.  SLUICE_SINK_PLUGIN_HEADER records the ABI
 * version this file was compiled against; `name` is the `plugin` value and
 * the file's name (lines.so).  flush may be NULL. */
__attribute__((visibility("default"))) const sluice_sink_plugin_t sluice_sink_plugin = {
    SLUICE_SINK_PLUGIN_HEADER,
    .name = "lines",
    .version = "1.0.0",
    .description = "Rows as text lines (job, window, id, key=value ...) appended to a file: the SDK's example.",
    .options = lines_opts,
    .conf_size = sizeof(lines_conf_t),
    .create = lines_create,
    .write = lines_write,
    .flush = lines_flush,
    .destroy = lines_destroy,
};
