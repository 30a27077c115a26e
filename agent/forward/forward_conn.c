/* One forward client connection: reading and framing its bytes, the
 * handshake, handing messages to the handler, writing PONGs and acks (with the
 * ack trackers that wait for Kafka), the idle timer, pausing reads while its
 * write queue is long, and closing and freeing itself.  On a TLS listener
 * the bytes pass through the connection's TLS session (forward_tls.c) on
 * their way in and out, and nothing above the socket reads or writes knows
 * it.  Loop thread only. */
#include "forward/forward_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/error.h"
#include "core/log.h"

/* A client that does not read its acks (or PONGs) stops being read once
 * this much waits in its write queue, and is read again below half of it,
 * so unread replies cannot grow without bound. */
#define WRITE_QUEUE_HIGH (1024 * 1024)

/* A TLS record is at most 16 KiB of plaintext and some overhead. */
#define TLS_FEED_PIECE (17 * 1024)

/* One chunk whose ack waits for its completion.  Owned by itself: freed
 * when its completion is done.  Survives its connection (conn is set to
 * NULL when the connection closes first, and then no ack is written). */
struct sl_ack_tracker {
  sl_completion_t done;
  sl_fwd_server_t *srv;
  sl_fwd_conn_t *conn;
  sl_ack_tracker_t *prev, *next;
  size_t len;
  char chunk[];
};

typedef struct {
  uv_write_t req;
  sl_fwd_conn_t *conn;
  uv_buf_t buf;
  char data[];
} write_req_t;

/* ---- writes ----------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  sl_fwd_conn_t *c = w->conn;
  free(w);
  c->pending_writes--;
  if (c->write_blocked && !c->closing && uv_stream_get_write_queue_size(&c->h.stream) < WRITE_QUEUE_HIGH / 2) {
    c->write_blocked = false;
    if (!c->srv->paused && !c->close_when_done) sl_fwd_conn_start_reading(c);
  }
  if (status < 0 && status != UV_ECANCELED) {
    sl_log(SL_LOG_DEBUG, "forward", "write to %s failed: %s", c->address, uv_strerror(status));
    sl_fwd_conn_close(c);
    return;
  }
  if (c->close_when_done && !c->pending_writes && !c->trackers) sl_fwd_conn_close(c);
}

static write_req_t *write_req_new(sl_fwd_conn_t *c, size_t len) {
  write_req_t *w = malloc(sizeof *w + len);
  if (!w) return NULL;
  w->conn = c;
  w->buf = uv_buf_init(w->data, (unsigned)len);
  return w;
}

/* Queues w (taken, whatever happens). */
static int conn_send(sl_fwd_conn_t *c, write_req_t *w) {
  int r = c->closing ? UV_ECANCELED : uv_write(&w->req, &c->h.stream, &w->buf, 1, on_write);
  if (r) {
    free(w);
    return r;
  }
  c->pending_writes++;
  if (uv_stream_get_write_queue_size(&c->h.stream) >= WRITE_QUEUE_HIGH && !c->write_blocked) {
    c->write_blocked = true;
    sl_metric_inc(c->srv->m.write_blocked);
    sl_fwd_conn_stop_reading(c);
  }
  return 0;
}

/* Sends what the TLS session has produced: handshake messages, records,
 * alerts, close_notify. */
static int tls_flush(sl_fwd_conn_t *c) {
  size_t n = sl_fwd_tls_pending(c->tls);
  if (!n) return 0;
  write_req_t *w = write_req_new(c, n);
  if (!w) return SL_ENOMEM;
  sl_fwd_tls_take(c->tls, w->data, n);
  return conn_send(c, w);
}

static void tls_failed(sl_fwd_conn_t *c);

static int conn_write(sl_fwd_conn_t *c, const char *data, size_t len) {
  if (c->closing) return UV_ECANCELED;
  if (c->tls) {
    switch (sl_fwd_tls_write(c->tls, data, len)) {
    case SL_FWD_TLS_OK: return tls_flush(c);
    case SL_FWD_TLS_NOMEM: return SL_ENOMEM;
    default: tls_failed(c); return UV_ECANCELED;
    }
  }
  write_req_t *w = write_req_new(c, len);
  if (!w) return SL_ENOMEM;
  memcpy(w->data, data, len);
  return conn_send(c, w);
}

static void conn_write_ack(sl_fwd_conn_t *c, const char *chunk, size_t len) {
  sl_buf_t b = {0};
  msgpack_packer pk;
  msgpack_packer_init(&pk, &b, sl_buf_msgpack_write);
  msgpack_pack_map(&pk, 1);
  msgpack_pack_str_with_body(&pk, "ack", 3);
  msgpack_pack_str_with_body(&pk, chunk, len);
  if (b.data && conn_write(c, b.data, b.len) == 0) sl_metric_inc(c->srv->m.acks);
  sl_buf_free(&b);
}

/* ---- ack trackers ---------------------------------------------------------- */

static void on_tracker_done(sl_completion_t *done, bool ok, void *arg) {
  (void)done;
  sl_ack_tracker_t *t = arg;
  sl_fwd_conn_t *c = t->conn;
  if (c) {
    if (ok) conn_write_ack(c, t->chunk, t->len);
    if (t->prev)
      t->prev->next = t->next;
    else
      c->trackers = t->next;
    if (t->next) t->next->prev = t->prev;
  }
  t->srv->pending_acks--;
  sl_gauge_dec(t->srv->m.pending_acks);
  free(t);
  if (c && c->close_when_done && !c->trackers && !c->pending_writes) sl_fwd_conn_close(c);
}

/* NULL on ENOMEM.  The chunk bytes are copied. */
static sl_ack_tracker_t *tracker_new(sl_fwd_conn_t *conn, const char *chunk, size_t len) {
  sl_ack_tracker_t *t = calloc(1, sizeof *t + len);
  if (!t) return NULL;
  sl_completion_init(&t->done, on_tracker_done, t);
  memcpy(t->chunk, chunk, len);
  t->len = len;
  t->srv = conn->srv;
  t->conn = conn;
  t->next = conn->trackers;
  if (t->next) t->next->prev = t;
  conn->trackers = t;
  conn->srv->pending_acks++;
  sl_gauge_inc(conn->srv->m.pending_acks);
  return t;
}

/* ---- connection lifetime --------------------------------------------------- */

static void conn_unref(sl_fwd_conn_t *c) {
  if (--c->refs > 0) return;
  sl_fwd_server_t *s = c->srv;
  if (s->resume_from == c) s->resume_from = c->next;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->n_conns--;
  sl_gauge_dec(s->m.conn_active);
  sl_fwd_decoder_free(c->dec);
  sl_fwd_tls_free(c->tls);
  free(c);
  sl_fwd_server_maybe_closed(s);
}

static void on_conn_handle_closed(uv_handle_t *h) { conn_unref(h->data); }

void sl_fwd_conn_close(sl_fwd_conn_t *c) {
  if (c->closing) return;
  if (c->tls && sl_fwd_tls_handshake_done(c->tls)) {
    /* close_notify, so that the client tells this close from a cut
     * connection: uv_write sends it at once when the socket takes it. */
    sl_fwd_tls_shutdown(c->tls);
    tls_flush(c);
  }
  c->closing = true;
  for (sl_ack_tracker_t *t = c->trackers; t; t = t->next) {
    t->conn = NULL;
    sl_completion_abandon(&t->done);
  }
  c->trackers = NULL;
  if (c->resolving) uv_cancel((uv_req_t *)&c->nameinfo); /* its callback still runs */
  uv_close(&c->h.handle, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->idle_timer, on_conn_handle_closed);
}

static void conn_log_close(sl_fwd_conn_t *c, sl_log_level_t level, const char *why) {
  sl_log(level, "forward", "closing connection from %s: %s", c->address, why);
  sl_fwd_conn_close(c);
}

/* The TLS session failed (the handshake, or a record after it): counted,
 * logged with OpenSSL's reason, and closed after sending the alert that
 * tells the client why. */
static void tls_failed(sl_fwd_conn_t *c) {
  char why[320];
  sl_fwd_tls_err_t reason = sl_fwd_tls_failure(c->tls, why, sizeof why);
  sl_metric_inc(c->srv->m.tls_errors[reason]);
  sl_log_rl(SL_LOG_WARN, "forward", "closing connection from %s: TLS failed (%s): %s", c->address,
            sl_fwd_tls_err_label(reason), why);
  tls_flush(c);
  sl_fwd_conn_close(c);
}

/* During the TLS handshake this is the handshake_timeout timer: reads do
 * not restart it. */
static void on_idle(uv_timer_t *t) {
  sl_fwd_conn_t *c = t->data;
  /* A client waiting for acks or held back by backpressure is not idle. */
  if (c->trackers || c->stalled || c->srv->paused) return;
  if (c->state == SL_FWD_CONN_TLS_HANDSHAKE) {
    sl_metric_inc(c->srv->m.tls_errors[SL_FWD_TLS_ERR_HANDSHAKE_TIMEOUT]);
    sl_log_rl(SL_LOG_WARN, "forward",
              "closing connection from %s: TLS failed (%s): no complete handshake within %lld ms", c->address,
              sl_fwd_tls_err_label(SL_FWD_TLS_ERR_HANDSHAKE_TIMEOUT),
              (long long)(c->srv->cfg->tls.handshake_timeout_ns / 1000000));
    sl_fwd_conn_close(c);
    return;
  }
  sl_metric_inc(c->srv->m.conn_idle);
  conn_log_close(c, SL_LOG_INFO, "idle_timeout reached");
}

/* ---- reading and frames ---------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  sl_fwd_conn_t *c = h->data;
  *buf = uv_buf_init(c->srv->rbuf, SL_FWD_READ_BUF_SIZE);
}

static sl_fwd_err_reason_t error_reason(int r) {
  switch (r) {
  case SL_ETOOBIG: return SL_FWD_ERR_TOOBIG;
  case SL_EDEPTH: return SL_FWD_ERR_DEPTH;
  case SL_ENOTARRAY: return SL_FWD_ERR_NOTARRAY;
  case SL_EBADTAG: return SL_FWD_ERR_BADTAG;
  case SL_EBADMODE: return SL_FWD_ERR_BADMODE;
  case SL_EBADOPTION: return SL_FWD_ERR_BADOPTION;
  case SL_EBADGZIP: return SL_FWD_ERR_BADGZIP;
  case SL_EBOMB: return SL_FWD_ERR_BOMB;
  case SL_EBADENTRY: return SL_FWD_ERR_BADENTRY;
  case SL_EVALUES: return SL_FWD_ERR_VALUES;
  case SL_ETAGSIZE: return SL_FWD_ERR_TAGSIZE;
  default: return SL_FWD_ERR_MSGPACK;
  }
}

static void count_error(sl_fwd_server_t *s, int r) { sl_metric_inc(s->m.errors[error_reason(r)]); }

static void handle_ping(sl_fwd_conn_t *c, sl_fwd_frame_t *f) {
  sl_fwd_server_t *s = c->srv;
  sl_fwd_auth_ping_t res;
  int r = sl_fwd_auth_check_ping(&s->auth, &c->session, &f->root, &res);
  sl_buf_t b = {0};
  if (sl_fwd_auth_build_pong(&b, &s->auth, &c->session, &res) == 0) conn_write(c, b.data, b.len);
  sl_buf_free(&b);
  if (r == 0) {
    c->state = SL_FWD_CONN_ESTABLISHED;
    sl_log(SL_LOG_DEBUG, "forward", "%s (%.*s) authenticated", c->address, (int)res.hostname_len,
           res.hostname ? res.hostname : "");
    return;
  }
  if (r == SL_EBADPING)
    sl_metric_inc(s->m.auth_failures[SL_FWD_AUTH_PING]);
  else if (strcmp(res.reason, SL_FWD_AUTH_REASON_USER) == 0)
    sl_metric_inc(s->m.auth_failures[SL_FWD_AUTH_USER]);
  else
    sl_metric_inc(s->m.auth_failures[SL_FWD_AUTH_KEY]);
  sl_log_rl(SL_LOG_WARN, "forward", "handshake from %s refused: %s", c->address, res.reason);
  c->close_when_done = true;
  if (!c->pending_writes) sl_fwd_conn_close(c);
}

/* Returns false when processing must stop (closing or stalled). */
static bool handle_message(sl_fwd_conn_t *c, sl_fwd_frame_t *f) {
  sl_fwd_server_t *s = c->srv;
  sl_fwd_message_t msg;
  memset(&msg, 0, sizeof msg);
  int r = sl_fwd_message_parse(&f->root, &s->limits, &msg);
  if (r) {
    count_error(s, r);
    sl_log_rl(SL_LOG_WARN, "forward", "message from %s dropped (no ack): %s", c->address, sl_strerror(r));
    sl_fwd_message_free(&msg);
    sl_fwd_frame_free(f);
    if (!s->cfg->deny_keepalive) return true;
    /* deny_keepalive: one message per connection, good or bad. */
    c->close_when_done = true;
    if (!c->trackers && !c->pending_writes) sl_fwd_conn_close(c);
    return false;
  }
  unsigned mode = (unsigned)msg.mode - 1; /* a parsed message has one of the four */
  if (mode < 4) {
    sl_metric_inc(s->m.messages[mode]);
    sl_metric_add(s->m.records[mode], msg.n_entries);
  }
  if (msg.n_skipped) {
    sl_metric_add(s->m.invalid_events, msg.n_skipped);
    sl_log_rl(SL_LOG_WARN, "forward", "%zu invalid entries skipped in a message from %s (tag %.*s)",
              msg.n_skipped, c->address, (int)msg.tag_len, msg.tag);
  }
  if (f->size > s->cfg->chunk_size_warn_limit) {
    sl_metric_inc(s->m.large);
    sl_log_rl(SL_LOG_WARN, "forward", "message of %zu bytes from %s is over chunk_size_warn_limit",
              f->size, c->address);
  }
  if (msg.size_mismatch) {
    sl_metric_inc(s->m.size_mismatch);
    sl_log_rl(SL_LOG_WARN, "forward", "message from %s says size %llu but holds %zu entries", c->address,
              (unsigned long long)msg.size, msg.n_entries + msg.n_skipped);
  }
  if (s->cfg->deny_keepalive) c->close_when_done = true;
  if (msg.fluent_signal != 0) {
    sl_metric_inc(s->m.signal_dropped);
    sl_log_rl(SL_LOG_WARN, "forward",
              "message from %s with fluent_signal %lld (metrics or traces) acked and dropped: sluice "
              "carries logs",
              c->address, (long long)msg.fluent_signal);
    if (msg.chunk) conn_write_ack(c, msg.chunk, msg.chunk_len);
    sl_fwd_message_free(&msg);
    sl_fwd_frame_free(f);
    /* deny_keepalive: with no ack to write, on_write will not close it. */
    if (c->close_when_done && !c->trackers && !c->pending_writes) sl_fwd_conn_close(c);
    return !c->close_when_done;
  }
  sl_ack_tracker_t *t = NULL;
  if (msg.chunk && !(t = tracker_new(c, msg.chunk, msg.chunk_len))) {
    sl_log_rl(SL_LOG_ERROR, "forward", "out of memory; message from %s not acked", c->address);
  }
  sl_fwd_peer_t peer = {c->address, c->hostname};
  /* The handler takes the frame and the message, whatever it returns. */
  if (!s->handler.on_message(s->handler.arg, &peer, f, &msg, t ? &t->done : NULL)) {
    c->stalled = true;
    /* The next resume starts after this connection, whichever path (a
     * resume or a read) filled the queue. */
    s->resume_from = c->next ? c->next : s->conns;
    return false;
  }
  if (c->close_when_done) {
    if (!c->trackers && !c->pending_writes) sl_fwd_conn_close(c);
    return false;
  }
  return true;
}

/* close_when_done stops the loop in every state: after deny_keepalive's one
 * message, and after a refused handshake, whose client gets one PONG and no
 * answer to PINGs (further key guesses) it queued behind the first. */
void sl_fwd_conn_process(sl_fwd_conn_t *c) {
  /* Nothing is a frame before TLS is up (the decoder is fed only after). */
  if (c->state == SL_FWD_CONN_TLS_HANDSHAKE) return;
  while (!c->closing && !c->srv->paused && !c->close_when_done) {
    sl_fwd_frame_t f;
    memset(&f, 0, sizeof f);
    int r = sl_fwd_decoder_next(c->dec, &f);
    if (r == 0) return;
    if (r < 0) {
      count_error(c->srv, r);
      sl_log_rl(SL_LOG_WARN, "forward", "closing connection from %s: %s", c->address, sl_strerror(r));
      sl_fwd_conn_close(c);
      return;
    }
    if (c->state == SL_FWD_CONN_AWAIT_PING) {
      handle_ping(c, &f);
      sl_fwd_frame_free(&f);
      continue;
    }
    if (!handle_message(c, &f)) return;
  }
}

static void conn_established(sl_fwd_conn_t *c);

static void tls_handshake_done(sl_fwd_conn_t *c) {
  sl_metric_inc(c->srv->m.tls_handshakes);
  if (SL_LOG_DEBUG <= sl_log_threshold) {
    char what[400];
    sl_fwd_tls_describe(c->tls, what, sizeof what);
    sl_log(SL_LOG_DEBUG, "forward", "TLS from %s: %s", c->address, what);
  }
  uint64_t idle_ms = (uint64_t)(c->srv->cfg->idle_timeout_ns / 1000000);
  uv_timer_start(&c->idle_timer, on_idle, idle_ms, idle_ms);
  conn_established(c);
}

/* Takes bytes read from a TLS client: the plaintext they carry goes to the
 * decoder, and what TLS answers (handshake messages, alerts) to the
 * client.  Returns whether there are frames to process (false: still
 * handshaking, or the connection is closing). */
static bool tls_receive(sl_fwd_conn_t *c, const char *data, size_t len) {
  /* Fed about a record at a time and decrypted in between, so that the
   * session's input buffer (which keeps its size) never grows past two
   * records per connection.  `data` is the server's read buffer: the
   * plaintext goes to its start, over ciphertext already fed. */
  sl_fwd_tls_status_t st = SL_FWD_TLS_OK;
  for (size_t fed = 0; st == SL_FWD_TLS_OK && fed < len;) {
    size_t piece = len - fed < TLS_FEED_PIECE ? len - fed : TLS_FEED_PIECE;
    st = sl_fwd_tls_feed(c->tls, data + fed, piece);
    fed += piece;
    for (size_t n = 1; st == SL_FWD_TLS_OK && n;) {
      st = sl_fwd_tls_read(c->tls, c->srv->rbuf, fed, &n);
      if (n && sl_fwd_decoder_feed(c->dec, c->srv->rbuf, n)) st = SL_FWD_TLS_NOMEM;
    }
  }
  if (st == SL_FWD_TLS_OK || st == SL_FWD_TLS_CLOSED) {
    tls_flush(c);
    /* The forward protocol (the shared-key handshake first) starts before
     * any plaintext that came with the end of the TLS handshake is read. */
    if (c->state == SL_FWD_CONN_TLS_HANDSHAKE && sl_fwd_tls_handshake_done(c->tls)) tls_handshake_done(c);
  }
  switch (st) {
  case SL_FWD_TLS_OK: return !c->closing && c->state != SL_FWD_CONN_TLS_HANDSHAKE;
  case SL_FWD_TLS_CLOSED:
    /* What came before close_notify in the same read is handled first, as
     * the bytes before a FIN are. */
    sl_log(SL_LOG_DEBUG, "forward", "%s ended the TLS session (close_notify)", c->address);
    sl_fwd_conn_process(c);
    sl_fwd_conn_close(c);
    return false;
  case SL_FWD_TLS_NOMEM: conn_log_close(c, SL_LOG_ERROR, "out of memory"); return false;
  default: tls_failed(c); return false;
  }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  sl_fwd_conn_t *c = stream->data;
  if (nread < 0) {
    if (nread != UV_EOF)
      sl_log(SL_LOG_DEBUG, "forward", "read from %s failed: %s", c->address, uv_strerror((int)nread));
    sl_fwd_conn_close(c);
    return;
  }
  if (nread == 0) return;
  sl_metric_add(c->srv->m.bytes, (uint64_t)nread);
  if (c->state != SL_FWD_CONN_TLS_HANDSHAKE) uv_timer_again(&c->idle_timer);
  if (c->close_when_done) return; /* deny_keepalive: one message per connection */
  if (c->tls) {
    if (!tls_receive(c, buf->base, (size_t)nread)) return;
  } else if (sl_fwd_decoder_feed(c->dec, buf->base, (size_t)nread)) {
    conn_log_close(c, SL_LOG_ERROR, "out of memory");
    return;
  }
  sl_fwd_conn_process(c);
}

void sl_fwd_conn_start_reading(sl_fwd_conn_t *c) {
  if (c->reading || c->closing || c->write_blocked || c->state == SL_FWD_CONN_RESOLVING) return;
  if (uv_read_start(&c->h.stream, on_alloc, on_read) == 0) c->reading = true;
}

void sl_fwd_conn_stop_reading(sl_fwd_conn_t *c) {
  if (!c->reading) return;
  uv_read_stop(&c->h.stream);
  c->reading = false;
}

/* ---- accepting ------------------------------------------------------------- */

/* The forward protocol starts: with a shared key, the server's HELO. */
static void conn_established(sl_fwd_conn_t *c) {
  sl_fwd_server_t *s = c->srv;
  if (s->cfg->security.shared_key) {
    sl_buf_t b = {0};
    if (sl_fwd_auth_session_init(&c->session) || sl_fwd_auth_build_helo(&b, &s->auth, &c->session)) {
      sl_buf_free(&b);
      conn_log_close(c, SL_LOG_ERROR, "cannot start the handshake");
      return;
    }
    conn_write(c, b.data, b.len);
    sl_buf_free(&b);
    c->state = SL_FWD_CONN_AWAIT_PING;
  } else {
    c->state = SL_FWD_CONN_ESTABLISHED;
  }
  if (!s->paused) sl_fwd_conn_start_reading(c);
}

/* Reading may start: a TLS client's handshake first, against
 * handshake_timeout. */
static void conn_ready(sl_fwd_conn_t *c) {
  if (!c->tls) {
    conn_established(c);
    return;
  }
  c->state = SL_FWD_CONN_TLS_HANDSHAKE;
  uint64_t ms = (uint64_t)(c->srv->cfg->tls.handshake_timeout_ns / 1000000);
  uv_timer_start(&c->idle_timer, on_idle, ms, ms);
  if (!c->srv->paused) sl_fwd_conn_start_reading(c);
}

static void on_nameinfo(uv_getnameinfo_t *req, int status, const char *hostname, const char *service) {
  (void)service;
  sl_fwd_conn_t *c = req->data;
  c->resolving = false;
  if (status == 0 && hostname) snprintf(c->hostname, sizeof c->hostname, "%s", hostname);
  if (!c->closing) conn_ready(c);
  conn_unref(c);
}

int sl_fwd_conn_accept(sl_fwd_server_t *s, uv_stream_t *listener, bool is_tcp) {
  sl_fwd_conn_t *c = calloc(1, sizeof *c);
  if (!c) return SL_ENOMEM;
  if (!(c->dec = sl_fwd_decoder_new(&s->limits))) {
    free(c);
    sl_log_rl(SL_LOG_ERROR, "forward", "out of memory accepting a connection");
    return SL_ENOMEM;
  }
  c->srv = s;
  if (is_tcp)
    uv_tcp_init(s->loop, &c->h.tcp);
  else
    uv_pipe_init(s->loop, &c->h.pipe, 0);
  uv_timer_init(s->loop, &c->idle_timer);
  c->h.handle.data = c;
  c->idle_timer.data = c;
  c->refs = 2;
  c->next = s->conns;
  if (c->next) c->next->prev = c;
  s->conns = c;
  s->n_conns++;
  sl_metric_inc(s->m.conn_accepted);
  if (s->m.worker_accepted) sl_metric_inc(s->m.worker_accepted);
  sl_gauge_inc(s->m.conn_active);
  if (uv_accept(listener, &c->h.stream)) {
    sl_fwd_conn_close(c);
    return 0;
  }
  uint64_t idle_ms = (uint64_t)(s->cfg->idle_timeout_ns / 1000000);
  uv_timer_start(&c->idle_timer, on_idle, idle_ms, idle_ms);

  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (is_tcp && uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET6)
      uv_ip6_name((struct sockaddr_in6 *)&ss, c->address, sizeof c->address);
    else
      uv_ip4_name((struct sockaddr_in *)&ss, c->address, sizeof c->address);
    uv_tcp_nodelay(&c->h.tcp, 1);
  } else {
    snprintf(c->address, sizeof c->address, "unix");
  }
  snprintf(c->hostname, sizeof c->hostname, "%s", c->address);
  sl_log(SL_LOG_DEBUG, "forward", "connection from %s", c->address);
  if (is_tcp && s->tls && !(c->tls = sl_fwd_tls_new(s->tls))) {
    conn_log_close(c, SL_LOG_ERROR, "out of memory starting TLS");
    return 0;
  }

  c->state = SL_FWD_CONN_RESOLVING;
  if (is_tcp && s->cfg->source_hostname_key) {
    /* Records carry the host name, so reading waits for the lookup. */
    c->nameinfo.data = c;
    if (uv_getnameinfo(s->loop, &c->nameinfo, on_nameinfo, (struct sockaddr *)&ss, 0) == 0) {
      c->refs++;
      c->resolving = true;
      return 0;
    }
  }
  conn_ready(c);
  return 0;
}
