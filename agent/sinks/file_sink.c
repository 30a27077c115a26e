/* The built-in `file` sink: rows as JSON lines appended to a file (or
 * stdout), written in order with uv_fs_write on libuv's thread pool, one
 * request in flight at a time (pool requests could otherwise overtake each
 * other), each write reported only once its bytes, and with fsync = true
 * their fsync, are done.  Jobs loop only.
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
 * close cancels the queued writes at once and lets the one in flight (a
 * thread-pool write cannot be taken back) finish and report its real
 * outcome; then the file is closed (stdout is left open) and on_closed
 * follows. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "sinks/sink.h"

enum { MODE_APPEND, MODE_TRUNCATE };

typedef struct {
  char *path; /* owned by the binding */
  bool fsync;
  int mode;
} file_conf_t;

static const sl_opt_t file_opts[] = {
    {.name = "path", .type = SL_OPT_STRING, .flags = SL_OPT_REQUIRED, .offset = offsetof(file_conf_t, path),
     .help = "File the rows are appended to, one JSON object per line; \"-\" for stdout."},
    {.name = "fsync", .type = SL_OPT_BOOL, .def = "false", .offset = offsetof(file_conf_t, fsync),
     .help = "fsync the file after each batch, before the batch is reported written."},
    {.name = "mode", .type = SL_OPT_ENUM, .def = "\"append\"", .choices = "append|truncate",
     .offset = offsetof(file_conf_t, mode),
     .help = "`append` to what the file holds, or `truncate` it when the sink starts."},
    {0},
};

static const sl_section_t file_section = {
    .name = "file",
    .opts = file_opts,
    .help = "Options of the file sink.",
    .size = sizeof(file_conf_t),
};

typedef enum { OP_WRITE, OP_FLUSH } op_kind_t;

/* A queued write or flush.  The bytes are a copy, so a batch is borrowed
 * only until write returns (the interface allows longer). */
typedef struct op {
  struct op *next;
  op_kind_t kind;
  sl_buf_t bytes;
  size_t off; /* written so far */
  int status; /* the outcome, set when an error ends the op */
  char message[256];
  sl_sink_done_cb done;
  void *arg;
} op_t;

typedef enum { IDLE, WRITING, SYNCING, CUTTING, CLOSING_FD } state_t;

typedef struct {
  uv_loop_t *loop;
  char *path; /* owned */
  uv_file fd;
  bool own_fd;  /* false for stdout */
  bool regular; /* a regular file: fsync and truncation apply */
  bool fsync;
  uint64_t size; /* bytes in the file, as far as this sink wrote them */
  uint64_t op_start; /* size when the op in flight started */
  uv_fs_t req;
  state_t state;
  bool closing;
  op_t *head, *tail;
  void (*on_closed)(void *arg);
  void *on_closed_arg;
  sl_metric_t *bytes_total;
} file_sink_t;

static int classify(int uverr) {
  switch (uverr) {
  case UV_ENOSPC:
  case -EDQUOT: /* libuv's errors are -errno on Unix; not every libuv names this one */
  case UV_EIO:
  case UV_EAGAIN:
  case UV_EINTR:
  case UV_ENOMEM: return SL_SINK_RETRY;
  default: return SL_SINK_FATAL;
  }
}

static int file_create(const void *conf_, uv_loop_t *loop, sl_metrics_t *metrics, const char *instance_name,
                       void **out, char *err, size_t errlen) {
  const file_conf_t *conf = conf_;
  *out = NULL;
  file_sink_t *s = calloc(1, sizeof *s);
  if (!s || !(s->path = strdup(conf->path))) {
    free(s);
    return sl_err_printf(err, errlen, SL_ENOMEM, "out of memory");
  }
  s->loop = loop;
  s->fsync = conf->fsync;
  s->req.data = s;
  if (strcmp(conf->path, "-") == 0) {
    s->fd = STDOUT_FILENO;
  } else {
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (conf->mode == MODE_TRUNCATE ? O_TRUNC : O_APPEND);
    uv_fs_t open_req;
    int fd = uv_fs_open(NULL, &open_req, conf->path, flags, 0644, NULL);
    uv_fs_req_cleanup(&open_req);
    if (fd < 0) {
      int r = sl_err_printf(err, errlen, fd, "cannot open %s for writing: %s", conf->path, uv_strerror(fd));
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
  if (metrics) {
    static const char *const labels[] = {"sink", NULL};
    sl_metric_family_t *f = sl_metrics_family(
        metrics, &(sl_metric_desc_t){.type = SL_METRIC_COUNTER,
                                     .name = "sluice_sink_file_bytes_total",
                                     .help = "Bytes the file sink wrote, by sink.",
                                     .labels = labels});
    s->bytes_total = sl_metric_child(f, (const char *const[]){instance_name});
  }
  *out = s;
  return 0;
}

static void start_op(file_sink_t *s);
static void finish_close(file_sink_t *s);

/* Takes the head op off the queue and reports it: after this the op is
 * gone, and done may queue new writes. */
static void complete_head(file_sink_t *s, int status) {
  op_t *op = s->head;
  s->head = op->next;
  if (!s->head) s->tail = NULL;
  s->state = IDLE;
  op->done(op->arg, status, status == SL_SINK_OK ? NULL : op->message);
  sl_buf_free(&op->bytes);
  free(op);
}

static void fail_op(file_sink_t *s, op_t *op, int uverr, const char *what) {
  op->status = classify(uverr);
  snprintf(op->message, sizeof op->message, "cannot %s %s: %s", what, s->path, uv_strerror(uverr));
}

/* After the head op ended (either way): report it, then go on. */
static void after_op(file_sink_t *s, int status) {
  complete_head(s, status);
  if (s->closing)
    finish_close(s);
  else
    start_op(s);
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
    op->status = SL_SINK_FATAL;
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
  after_op(s, SL_SINK_OK);
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
      op->status = SL_SINK_FATAL;
    }
    if (op->off > 0) s->size += op->off;
    after_op(s, op->status);
    return;
  }
  op->off += (size_t)r;
  if (s->bytes_total) sl_metric_add(s->bytes_total, (uint64_t)r);
  if (op->off < op->bytes.len) {
    write_more(s);
    return;
  }
  s->size += op->off;
  if (s->fsync && s->regular) {
    start_sync(s);
    return;
  }
  after_op(s, SL_SINK_OK);
}

/* Called from on_written or start_op; a refusal by libuv is reported as the
 * op's outcome.  An empty batch is written too (0 bytes), so that its done
 * still comes from the loop, never from inside write. */
static void write_more(file_sink_t *s) {
  op_t *op = s->head;
  uv_buf_t buf = uv_buf_init(op->bytes.data ? op->bytes.data + op->off : "", (unsigned)(op->bytes.len - op->off));
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

static int file_write(void *self, const sl_sink_batch_t *batch, sl_sink_done_cb done, void *arg) {
  file_sink_t *s = self;
  if (s->closing) return SL_ECANCELED;
  op_t *op = calloc(1, sizeof *op);
  if (!op) return SL_ENOMEM;
  *op = (op_t){.kind = OP_WRITE, .done = done, .arg = arg};
  size_t total = 0;
  for (size_t i = 0; i < batch->n; i++) total += batch->rows[i].json_len + 1;
  if (sl_buf_reserve(&op->bytes, total)) {
    free(op);
    return SL_ENOMEM;
  }
  for (size_t i = 0; i < batch->n; i++) {
    sl_buf_append(&op->bytes, batch->rows[i].json, batch->rows[i].json_len);
    sl_buf_putc(&op->bytes, '\n');
  }
  return enqueue(s, op);
}

static int file_flush(void *self, sl_sink_done_cb done, void *arg) {
  file_sink_t *s = self;
  if (s->closing) return SL_ECANCELED;
  op_t *op = calloc(1, sizeof *op);
  if (!op) return SL_ENOMEM;
  *op = (op_t){.kind = OP_FLUSH, .done = done, .arg = arg};
  return enqueue(s, op);
}

static void on_fd_closed(uv_fs_t *req) {
  file_sink_t *s = req->data;
  uv_fs_req_cleanup(req);
  s->state = IDLE;
  s->on_closed(s->on_closed_arg);
}

/* Once nothing is in flight: cancel what waits, close the fd, report. */
static void finish_close(file_sink_t *s) {
  while (s->head) {
    snprintf(s->head->message, sizeof s->head->message, "sink closed before %s was written", s->path);
    complete_head(s, SL_SINK_CANCELED);
  }
  if (s->own_fd && uv_fs_close(s->loop, &s->req, s->fd, on_fd_closed) == 0) {
    s->state = CLOSING_FD;
    return;
  }
  s->on_closed(s->on_closed_arg);
}

static void file_close(void *self, void (*on_closed)(void *arg), void *arg) {
  file_sink_t *s = self;
  s->closing = true;
  s->on_closed = on_closed;
  s->on_closed_arg = arg;
  if (s->state == IDLE) {
    finish_close(s);
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
    snprintf(op->message, sizeof op->message, "sink closed before %s was written", s->path);
    op->done(op->arg, SL_SINK_CANCELED, op->message);
    sl_buf_free(&op->bytes);
    free(op);
  }
}

static void file_free(void *self) {
  file_sink_t *s = self;
  if (!s) return;
  free(s->path);
  free(s);
}

const sl_sink_type_t sl_file_sink_type = {
    .name = "file",
    .description = "JSON lines appended to a file or stdout.",
    .options = &file_section,
    .create = file_create,
    .write = file_write,
    .flush = file_flush,
    .close = file_close,
    .free = file_free,
};
