/* The `file` sink plugin: rows as JSON lines appended to a file (or
 * stdout), written in order with uv_fs_write on libuv's thread pool, one
 * request in flight at a time (pool requests could otherwise overtake each
 * other), each write reported only once its bytes, and with fsync = true
 * their fsync, are done.  Runs on the jobs loop; sees only the SDK header.
 *
 * Why a failed write truncates: a batch is one buffer, and a write can
 * fail after part of it reached the file (ENOSPC half way).  A retry
 * rewrites the whole batch, so the partial bytes are cut back first (the
 * sink tracks the size it wrote; the file is the sink's alone); a torn line
 * would otherwise break every reader of the file.  When the cut fails too,
 * the outcome is FATAL.
 *
 * Errors: ENOSPC, EDQUOT, EIO, EAGAIN, EINTR and ENOMEM are RETRY (space
 * or the device may come back); anything else (EBADF, EFBIG, EROFS, EPIPE,
 * EINVAL, ...) is FATAL: the same write would fail the same way.
 *
 * destroy cancels the queued writes at once and lets the one in flight (a
 * thread-pool write cannot be taken back) finish and report its real
 * outcome; then the file is closed (stdout is left open), the instance
 * freed, and host->destroyed follows.  The host may call write or destroy
 * from inside write_done, so an instance is never freed while one of its
 * own reports is still on the stack. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup, fstat, O_CLOEXEC under -std=c11 */
#endif

#include <errno.h>
#include <fcntl.h>
#include <sluice/sink.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

enum { MODE_APPEND, MODE_TRUNCATE };

typedef struct {
  char *path; /* owned by the host */
  bool fsync;
  int mode;
} file_conf_t;

static const sluice_opt_t file_opts[] = {
    {.name = "path",
     .type = SLUICE_OPT_STRING,
     .flags = SLUICE_OPT_REQUIRED,
     .offset = offsetof(file_conf_t, path),
     .help = "File the rows are appended to, one JSON object per line; \"-\" for stdout."},
    {.name = "fsync",
     .type = SLUICE_OPT_BOOL,
     .def = "false",
     .offset = offsetof(file_conf_t, fsync),
     .help = "fsync the file after each batch, before the batch is reported written."},
    {.name = "mode",
     .type = SLUICE_OPT_ENUM,
     .def = "\"append\"",
     .choices = "append|truncate",
     .offset = offsetof(file_conf_t, mode),
     .help = "`append` to what the file holds, or `truncate` it when the sink starts."},
    {0},
};

typedef enum { OP_WRITE, OP_FLUSH } op_kind_t;

/* A queued write or flush.  The bytes are a copy, so the rows are read
 * only inside write (the ABI would allow longer). */
typedef struct op {
  struct op *next;
  op_kind_t kind;
  sluice_write_t *w; /* the host's; gone after write_done */
  char *bytes;       /* owned; NULL when len is 0 */
  size_t len;
  size_t off;             /* written so far */
  sluice_status_t status; /* the outcome, set when an error ends the op */
  char message[256];
} op_t;

typedef enum { IDLE, WRITING, SYNCING, CUTTING, CLOSING_FD } state_t;

typedef struct {
  const sluice_host_t *host; /* borrowed until destroyed */
  sluice_ctx_t *ctx;         /* borrowed until destroyed */
  uv_loop_t *loop;
  char *path; /* owned */
  uv_file fd;
  bool own_fd;  /* false for stdout */
  bool regular; /* a regular file: fsync and truncation apply */
  bool fsync;
  uint64_t size;     /* bytes in the file, as far as this sink wrote them */
  uint64_t op_start; /* size when the op in flight started */
  uv_fs_t req;
  state_t state;
  bool closing;
  int reporting; /* write_done calls on the stack: destroy must not free */
  op_t *head, *tail;
  sluice_metric_t *bytes_total;
} file_sink_t;

static sluice_status_t classify(int uverr) {
  switch (uverr) {
    case UV_ENOSPC:
    case -EDQUOT: /* libuv's errors are -errno on Unix; not every libuv names this one */
    case UV_EIO:
    case UV_EAGAIN:
    case UV_EINTR:
    case UV_ENOMEM:
      return SLUICE_RETRY;
    default:
      return SLUICE_FATAL;
  }
}

/* Fills err and returns code (negative: a libuv error). */
static int fail_create(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_create(char *err, size_t errlen, int code, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

static int file_create(const sluice_host_t *host, sluice_ctx_t *ctx, const void *conf_, void *loop,
                       void **self, char *err, size_t errlen) {
  const file_conf_t *conf = conf_;
  *self = NULL;
  if (host->abi_major != SLUICE_SINK_ABI_MAJOR)
    return fail_create(err, errlen, UV_EINVAL,
                       "the agent's sink ABI is %u.%u, the file sink's %d.%d",
                       (unsigned)host->abi_major, (unsigned)host->abi_minor, SLUICE_SINK_ABI_MAJOR,
                       SLUICE_SINK_ABI_MINOR);
  file_sink_t *s = calloc(1, sizeof *s);
  if (!s || !(s->path = strdup(conf->path))) {
    free(s);
    return fail_create(err, errlen, UV_ENOMEM, "out of memory");
  }
  s->host = host;
  s->ctx = ctx;
  s->loop = loop;
  s->fsync = conf->fsync;
  s->req.data = s;
  if (strcmp(conf->path, "-") == 0) {
    s->fd = STDOUT_FILENO;
  } else {
    /* O_APPEND in both modes: after a partial batch is cut back, the
     * retry must land at the new end, and ftruncate does not move the file
     * offset (without O_APPEND the retry would leave a hole of NULs). */
    int flags =
        O_WRONLY | O_CREAT | O_CLOEXEC | O_APPEND | (conf->mode == MODE_TRUNCATE ? O_TRUNC : 0);
    uv_fs_t open_req;
    int fd = uv_fs_open(NULL, &open_req, conf->path, flags, 0644, NULL);
    uv_fs_req_cleanup(&open_req);
    if (fd < 0) {
      int r = fail_create(err, errlen, fd, "cannot open %s for writing: %s", conf->path,
                          uv_strerror(fd));
      free(s->path);
      free(s);
      return r;
    }
    s->fd = fd;
    s->own_fd = true;
  }
  struct stat st;
  if (fstat(s->fd, &st) == 0 && S_ISREG(st.st_mode)) {
    s->regular = true;
    s->size = (uint64_t)st.st_size;
  }
  s->bytes_total =
      host->counter(ctx, "sluice_sink_file_bytes_total", "Bytes the file sink wrote, by sink.");
  *self = s;
  return 0;
}

static void start_op(file_sink_t *s);
static void finish_close(file_sink_t *s);

/* Reports op and frees it; the host may call write or destroy meanwhile. */
static void report(file_sink_t *s, op_t *op, sluice_status_t status) {
  s->reporting++;
  s->host->write_done(op->w, status, status == SLUICE_OK ? NULL : op->message);
  s->reporting--;
  free(op->bytes);
  free(op);
}

/* Takes the head op off the queue and reports it: after this the op is
 * gone, and the host may have queued new writes. */
static void complete_head(file_sink_t *s, sluice_status_t status) {
  op_t *op = s->head;
  s->head = op->next;
  if (!s->head) s->tail = NULL;
  s->state = IDLE;
  report(s, op, status);
}

static void fail_op(file_sink_t *s, op_t *op, int uverr, const char *what) {
  op->status = classify(uverr);
  snprintf(op->message, sizeof op->message, "cannot %s %s: %s", what, s->path, uv_strerror(uverr));
}

/* After the head op ended (either way): report it, then go on.  s may be
 * freed on return. */
static void after_op(file_sink_t *s, sluice_status_t status) {
  complete_head(s, status);
  if (!s->closing)
    start_op(s);
  else if (s->state == IDLE)
    finish_close(s);
  /* else the host wrote, then destroyed, from inside write_done: the op it
   * started is in flight, and its end finishes the close. */
}

static void on_cut(uv_fs_t *req) {
  file_sink_t *s = req->data;
  int r = (int)req->result;
  uv_fs_req_cleanup(req);
  op_t *op = s->head;
  if (r < 0) {
    size_t n = strlen(op->message);
    snprintf(op->message + n, sizeof op->message - n, "; cutting the partial batch failed too: %s",
             uv_strerror(r));
    op->status = SLUICE_FATAL;
    s->size += op->off; /* the partial bytes stay */
  }
  after_op(s, op->status);
}

static void on_synced(uv_fs_t *req) {
  file_sink_t *s = req->data;
  int r = (int)req->result;
  uv_fs_req_cleanup(req);
  op_t *op = s->head;
  if (r < 0) {
    fail_op(s, op, r, "fsync");
    after_op(s, op->status);
    return;
  }
  after_op(s, SLUICE_OK);
}

static void start_sync(file_sink_t *s) {
  op_t *op = s->head;
  int r = uv_fs_fsync(s->loop, &s->req, s->fd, on_synced);
  if (r < 0) {
    /* libuv refuses a request only for bad arguments, so this does not
     * happen from inside write or flush in practice. */
    fail_op(s, op, r, "fsync");
    after_op(s, op->status);
    return;
  }
  s->state = SYNCING;
}

static void write_more(file_sink_t *s);

static void on_written(uv_fs_t *req) {
  file_sink_t *s = req->data;
  ssize_t r = req->result;
  uv_fs_req_cleanup(req);
  op_t *op = s->head;
  if (r < 0) {
    fail_op(s, op, (int)r, "write");
    if (op->off > 0 && s->regular) {
      int c = uv_fs_ftruncate(s->loop, &s->req, s->fd, (int64_t)s->op_start, on_cut);
      if (c == 0) {
        s->state = CUTTING;
        return;
      }
      op->status = SLUICE_FATAL;
    }
    if (op->off > 0) s->size += op->off;
    after_op(s, op->status);
    return;
  }
  op->off += (size_t)r;
  s->host->metric_add(s->bytes_total, (double)r);
  if (op->off < op->len) {
    write_more(s);
    return;
  }
  s->size += op->off;
  if (s->fsync && s->regular) {
    start_sync(s);
    return;
  }
  after_op(s, SLUICE_OK);
}

/* Called from on_written or start_op; a refusal by libuv is reported as the
 * op's outcome.  An empty batch is written too (0 bytes), so that its
 * write_done still comes from the loop, never from inside write. */
static void write_more(file_sink_t *s) {
  op_t *op = s->head;
  uv_buf_t buf = uv_buf_init(op->bytes ? op->bytes + op->off : "", (unsigned)(op->len - op->off));
  int r = uv_fs_write(s->loop, &s->req, s->fd, &buf, 1, -1, on_written);
  if (r < 0) {
    fail_op(s, op, r, "write");
    after_op(s, op->status);
    return;
  }
  s->state = WRITING;
}

static void start_op(file_sink_t *s) {
  if (s->state != IDLE || !s->head) return;
  op_t *op = s->head;
  s->op_start = s->size;
  if (op->kind == OP_FLUSH && s->regular) {
    start_sync(s);
    return;
  }
  /* A flush of a non-file (stdout) has nothing to sync: a 0-byte write
   * still completes it from the loop, after the writes before it. */
  write_more(s);
}

static int enqueue(file_sink_t *s, op_t *op) {
  if (s->tail)
    s->tail->next = op;
  else
    s->head = op;
  s->tail = op;
  start_op(s);
  return 0;
}

/* One line per row: the row's JSON and "\n", all rows in one buffer. */
static int file_write(void *self, sluice_write_t *w, const sluice_row_t *const *rows, size_t n) {
  file_sink_t *s = self;
  if (s->closing) return UV_ECANCELED;
  op_t *op = calloc(1, sizeof *op);
  if (!op) return UV_ENOMEM;
  *op = (op_t){.kind = OP_WRITE, .w = w};
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    size_t len;
    /* No JSON for a row: the host could not encode it (out of memory);
     * refusing makes it a RETRY. */
    if (!s->host->row_json(rows[i], &len) || len >= SIZE_MAX - total) goto fail;
    total += len + 1;
  }
  if (total > 0 && !(op->bytes = malloc(total))) goto fail;
  for (size_t i = 0; i < n; i++) {
    size_t len;
    const char *json = s->host->row_json(rows[i], &len);
    memcpy(op->bytes + op->len, json, len);
    op->len += len;
    op->bytes[op->len++] = '\n';
  }
  return enqueue(s, op);
fail:
  free(op->bytes);
  free(op);
  return UV_ENOMEM;
}

static int file_flush(void *self, sluice_write_t *w) {
  file_sink_t *s = self;
  if (s->closing) return UV_ECANCELED;
  op_t *op = calloc(1, sizeof *op);
  if (!op) return UV_ENOMEM;
  *op = (op_t){.kind = OP_FLUSH, .w = w};
  return enqueue(s, op);
}

/* The last step: the host may free ctx in destroyed, so nothing of the
 * instance is touched after it. */
static void release(file_sink_t *s) {
  const sluice_host_t *host = s->host;
  sluice_ctx_t *ctx = s->ctx;
  free(s->path);
  free(s);
  host->destroyed(ctx);
}

static void on_fd_closed(uv_fs_t *req) {
  file_sink_t *s = req->data;
  uv_fs_req_cleanup(req);
  release(s);
}

static void cancel(file_sink_t *s, op_t *op) {
  snprintf(op->message, sizeof op->message, "sink closed before %s was written", s->path);
  report(s, op, SLUICE_CANCELED);
}

/* Once nothing is in flight: cancel what waits, close the fd, release. */
static void finish_close(file_sink_t *s) {
  while (s->head) {
    op_t *op = s->head;
    s->head = op->next;
    if (!s->head) s->tail = NULL;
    cancel(s, op);
  }
  if (s->own_fd && uv_fs_close(s->loop, &s->req, s->fd, on_fd_closed) == 0) {
    s->state = CLOSING_FD;
    return;
  }
  release(s);
}

static void file_destroy(void *self) {
  file_sink_t *s = self;
  s->closing = true;
  if (s->state == IDLE) {
    /* Called from inside write_done: the after_op that is reporting
     * finishes the close once the host's callback has returned. */
    if (!s->reporting) finish_close(s);
    return;
  }
  /* The op in flight ends in after_op, which finishes the close; what
   * waits behind it is cancelled now rather than after it. */
  op_t *rest = s->head->next;
  s->head->next = NULL;
  s->tail = s->head;
  while (rest) {
    op_t *op = rest;
    rest = op->next;
    cancel(s, op);
  }
}

__attribute__((visibility("default"))) const sluice_sink_plugin_t sluice_sink_plugin = {
    SLUICE_SINK_PLUGIN_HEADER, .name = "file",
    .version = "1.0.0",        .description = "JSON lines appended to a file or stdout.",
    .options = file_opts,      .conf_size = sizeof(file_conf_t),
    .create = file_create,     .write = file_write,
    .flush = file_flush,       .destroy = file_destroy,
};
