/* A FIFO of byte batches written to a file descriptor by uv_fs_write, one
 * request at a time so that lines keep their order (thread-pool requests
 * may otherwise run side by side).  Loop thread only. */
#include "ingest/print_out.h"

#include <stdlib.h>

#include "core/log.h"

typedef struct batch {
  struct batch *next;
  sl_buf_t bytes;
  size_t off; /* written so far */
  sl_completion_t *done;
} batch_t;

struct sl_print_out {
  uv_loop_t *loop;
  int fd;
  uv_fs_t req;
  bool writing, closing, blocked;
  batch_t *head, *tail;
  size_t pending;
  void (*on_room)(void *arg);
  void *arg;
  void (*on_closed)(void *arg);
  void *on_closed_arg;
};

sl_print_out_t *sl_print_out_new(uv_loop_t *loop, int fd, void (*on_room)(void *arg), void *arg) {
  sl_print_out_t *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  *o = (sl_print_out_t){.loop = loop, .fd = fd, .on_room = on_room, .arg = arg};
  o->req.data = o;
  return o;
}

static void finish_batch(sl_print_out_t *o, bool ok) {
  batch_t *b = o->head;
  o->head = b->next;
  if (!o->head) o->tail = NULL;
  o->pending -= b->bytes.len - b->off;
  if (b->done) sl_completion_settle(b->done, ok);
  sl_buf_free(&b->bytes);
  free(b);
}

static void start_write(sl_print_out_t *o);

static void on_written(uv_fs_t *req) {
  sl_print_out_t *o = req->data;
  ssize_t r = req->result;
  uv_fs_req_cleanup(req);
  o->writing = false;
  batch_t *b = o->head;
  if (r < 0) {
    sl_log_rl(SL_LOG_ERROR, "ingest", "cannot write records to stdout: %s; their chunk is not acked",
              uv_strerror((int)r));
    finish_batch(o, false);
  } else {
    b->off += (size_t)r;
    o->pending -= (size_t)r;
    if (b->off == b->bytes.len) finish_batch(o, true);
  }
  if (o->closing) {
    while (o->head) finish_batch(o, false);
    if (o->on_closed) o->on_closed(o->on_closed_arg);
    return;
  }
  start_write(o);
  if (o->blocked && o->pending < SL_PRINT_LOW) {
    o->blocked = false;
    o->on_room(o->arg);
  }
}

static void start_write(sl_print_out_t *o) {
  if (o->writing || !o->head) return;
  batch_t *b = o->head;
  uv_buf_t buf = uv_buf_init(b->bytes.data + b->off, (unsigned)(b->bytes.len - b->off));
  int r = uv_fs_write(o->loop, &o->req, o->fd, &buf, 1, -1, on_written);
  if (r) {
    sl_log_rl(SL_LOG_ERROR, "ingest", "cannot write records to stdout: %s; their chunk is not acked",
              uv_strerror(r));
    finish_batch(o, false);
    return;
  }
  o->writing = true;
}

bool sl_print_out_write(sl_print_out_t *o, sl_buf_t *buf, sl_completion_t *done) {
  if (buf->len == 0) {
    sl_buf_free(buf);
    return !o->blocked;
  }
  batch_t *b = calloc(1, sizeof *b);
  if (done) sl_completion_hold(done);
  if (!b || o->closing) {
    free(b);
    sl_buf_free(buf);
    if (!o->closing) sl_log_rl(SL_LOG_ERROR, "ingest", "out of memory writing records; their chunk is not acked");
    if (done) sl_completion_settle(done, false);
    return true;
  }
  b->bytes = *buf;
  *buf = (sl_buf_t){0};
  b->done = done;
  o->pending += b->bytes.len;
  if (o->tail)
    o->tail->next = b;
  else
    o->head = b;
  o->tail = b;
  start_write(o);
  if (o->pending >= SL_PRINT_HIGH) o->blocked = true;
  return !o->blocked;
}

size_t sl_print_out_pending(const sl_print_out_t *o) { return o->pending; }

void sl_print_out_close(sl_print_out_t *o, void (*on_closed)(void *arg), void *arg) {
  o->closing = true;
  o->on_closed = on_closed;
  o->on_closed_arg = arg;
  if (o->writing) return; /* on_written finishes the close */
  while (o->head) finish_batch(o, false);
  if (on_closed) on_closed(arg);
}

void sl_print_out_free(sl_print_out_t *o) { free(o); }
