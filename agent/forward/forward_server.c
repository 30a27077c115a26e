/* The forward input's listeners: TCP and unix stream sockets (with a UDP
 * heartbeat socket beside each TCP one), accepting connections up to
 * max_connections, pausing and resuming every connection, and closing it
 * all.  Each connection is forward_conn.c's.  Loop thread only. */
#include "forward/forward_server.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "forward/forward_conn.h"
#include "core/log.h"

struct sl_fwd_listener {
  sl_fwd_server_t *srv;
  sl_addr_t addr;
  int bound_port;  /* TCP: the port bound (port 0 resolved) */
  int follow_port; /* a secondary worker binds the primary's port */
  sl_fwd_stream_t h;
  uv_udp_t udp;
  bool has_stream, has_udp;
};

/* ---- accepting ------------------------------------------------------------- */

static void on_rejected_closed(uv_handle_t *h) { free(h); }

static void on_connection(uv_stream_t *server, int status) {
  sl_fwd_listener_t *l = server->data;
  sl_fwd_server_t *s = l->srv;
  if (status < 0) {
    sl_log_rl(SL_LOG_WARN, "forward", "accept failed: %s", uv_strerror(status));
    return;
  }
  bool is_tcp = l->addr.kind == SL_ADDR_TCP;
  bool full = s->n_conns >= (size_t)s->cfg->max_connections;
  if (!s->closing && !full && sl_fwd_conn_accept(s, server, is_tcp) == 0) return;
  /* Accept and close: a connection left unaccepted would stop libuv from
   * watching the listener. */
  uv_handle_t *h = malloc(is_tcp ? sizeof(uv_tcp_t) : sizeof(uv_pipe_t));
  if (!h) return;
  if (is_tcp)
    uv_tcp_init(s->loop, (uv_tcp_t *)h);
  else
    uv_pipe_init(s->loop, (uv_pipe_t *)h, 0);
  uv_accept(server, (uv_stream_t *)h);
  uv_close(h, on_rejected_closed);
  if (full && !s->closing) {
    sl_metric_inc(s->m.conn_rejected);
    sl_log_rl(SL_LOG_WARN, "forward", "connection refused: max_connections (%lld) reached",
              (long long)s->cfg->max_connections);
  }
}

/* UDP heartbeat: fluentd's out_forward sends a datagram and expects one
 * back from in_forward; answer with a single NUL byte like in_forward. */
static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  sl_fwd_listener_t *l = h->data;
  *buf = uv_buf_init(l->srv->rbuf, 1024);
}

static void on_udp_sent(uv_udp_send_t *req, int status) {
  (void)status;
  free(req);
}

static void on_udp_recv(uv_udp_t *udp, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                        unsigned flags) {
  (void)buf;
  (void)flags;
  if (nread < 0 || !addr) return;
  static char zero = 0;
  uv_udp_send_t *req = malloc(sizeof *req);
  if (!req) return;
  uv_buf_t b = uv_buf_init(&zero, 1);
  if (uv_udp_send(req, udp, &b, 1, addr, on_udp_sent)) {
    free(req);
    return;
  }
  sl_fwd_listener_t *l = udp->data;
  sl_metric_inc(l->srv->m.heartbeats);
}

/* ---- the server ------------------------------------------------------------ */

static void register_metrics(sl_fwd_metrics_t *m, sl_metrics_t *r) {
  m->conn_accepted = sl_metrics_counter(r, "sluice_forward_connections_total", "Forward connections accepted.");
  m->conn_rejected = sl_metrics_counter(r, "sluice_forward_connections_rejected_total",
                                        "Forward connections closed at accept because max_connections was "
                                        "reached.");
  m->conn_idle = sl_metrics_counter(r, "sluice_forward_connections_idle_closed_total",
                                    "Forward connections closed after idle_timeout.");
  m->conn_active = sl_metrics_gauge(r, "sluice_forward_connections", "Open forward connections.");
  static const char *const mode[] = {"mode", NULL};
  static const char *const modes[4] = {"message", "forward", "packed_forward", "compressed_packed_forward"};
  sl_metric_family_t *messages = sl_metrics_family(
      r, &(sl_metric_desc_t){.type = SL_METRIC_COUNTER, .name = "sluice_forward_messages_total",
                             .help = "Forward messages (requests) decoded, by the protocol's mode.", .labels = mode});
  sl_metric_family_t *records = sl_metrics_family(
      r, &(sl_metric_desc_t){.type = SL_METRIC_COUNTER, .name = "sluice_forward_records_total",
                             .help = "Records received, by the mode of their message.", .labels = mode});
  for (int i = 0; i < 4; i++) {
    m->messages[i] = sl_metric_child(messages, (const char *const[]){modes[i]});
    m->records[i] = sl_metric_child(records, (const char *const[]){modes[i]});
  }
  m->bytes = sl_metrics_counter(r, "sluice_forward_bytes_total", "Bytes read from forward clients.");
  m->acks = sl_metrics_counter(r, "sluice_forward_acks_total", "Acks sent.");

  static const char *const reason[] = {"reason", NULL};
  static const char *const err_reasons[SL_FWD_ERR__COUNT] = {
      [SL_FWD_ERR_MSGPACK] = "malformed_msgpack",  [SL_FWD_ERR_TOOBIG] = "chunk_size_limit",
      [SL_FWD_ERR_DEPTH] = "max_depth",            [SL_FWD_ERR_NOTARRAY] = "not_array",
      [SL_FWD_ERR_BADTAG] = "bad_tag",             [SL_FWD_ERR_BADMODE] = "bad_mode",
      [SL_FWD_ERR_BADOPTION] = "bad_option",       [SL_FWD_ERR_BADGZIP] = "bad_gzip",
      [SL_FWD_ERR_BOMB] = "decompression_size_limit", [SL_FWD_ERR_BADENTRY] = "invalid_event",
      [SL_FWD_ERR_VALUES] = "decoded_values_limit",   [SL_FWD_ERR_TAGSIZE] = "tag_size_limit",
  };
  sl_metric_family_t *errors = sl_metrics_family(
      r, &(sl_metric_desc_t){.type = SL_METRIC_COUNTER, .name = "sluice_forward_errors_total",
                             .help = "Forward messages rejected, by reason.", .labels = reason});
  for (int i = 0; i < SL_FWD_ERR__COUNT; i++)
    m->errors[i] = sl_metric_child(errors, (const char *const[]){err_reasons[i]});

  m->invalid_events = sl_metrics_counter(r, "sluice_forward_invalid_events_skipped_total",
                                         "Entries skipped because their time or record had the wrong type "
                                         "(skip_invalid_event).");
  m->size_mismatch = sl_metrics_counter(r, "sluice_forward_size_mismatch_total",
                                        "Messages whose size option differed from their entry count.");
  m->large = sl_metrics_counter(r, "sluice_forward_large_messages_total",
                                "Messages larger than chunk_size_warn_limit (accepted).");
  m->signal_dropped = sl_metrics_counter(r, "sluice_forward_signal_dropped_total",
                                         "Messages with fluent_signal other than 0 (metrics, traces) acked and "
                                         "dropped.");
  static const char *const auth_reasons[SL_FWD_AUTH__COUNT] = {
      [SL_FWD_AUTH_KEY] = "shared_key mismatch",
      [SL_FWD_AUTH_USER] = "username/password mismatch",
      [SL_FWD_AUTH_PING] = "invalid ping message",
  };
  sl_metric_family_t *auth = sl_metrics_family(
      r, &(sl_metric_desc_t){.type = SL_METRIC_COUNTER, .name = "sluice_forward_auth_failures_total",
                             .help = "Handshakes refused, by reason.", .labels = reason});
  for (int i = 0; i < SL_FWD_AUTH__COUNT; i++)
    m->auth_failures[i] = sl_metric_child(auth, (const char *const[]){auth_reasons[i]});
  m->heartbeats = sl_metrics_counter(r, "sluice_forward_heartbeats_total", "UDP heartbeats answered.");
  m->pauses = sl_metrics_counter(r, "sluice_forward_pauses_total",
                                 "Times reading from forward clients was paused because the producer queue was "
                                 "full.");
  m->paused = sl_metrics_gauge(r, "sluice_forward_paused", "1 while reading is paused (backpressure).");
  m->paused_us = sl_metric_child(
      sl_metrics_family(r, &(sl_metric_desc_t){.type = SL_METRIC_COUNTER,
                                               .name = "sluice_forward_paused_seconds_total",
                                               .help = "Time reading from forward clients was paused "
                                                       "(backpressure), summed over workers; counted as each "
                                                       "pause ends.",
                                               .per_unit = 1000000}),
      NULL);
  m->write_blocked = sl_metrics_counter(r, "sluice_forward_unread_replies_pauses_total",
                                        "Times a connection stopped being read because 1 MiB of its acks waited "
                                        "unread.");
  m->pending_acks = sl_metrics_gauge(r, "sluice_forward_pending_acks", "Chunks waiting for Kafka before their ack.");
}

static void register_tls_metrics(sl_fwd_metrics_t *m, sl_metrics_t *r) {
  m->tls_handshakes = sl_metrics_counter(r, "sluice_forward_tls_handshakes_total",
                                         "TLS handshakes completed on the forward input.");
  static const char *const reason[] = {"reason", NULL};
  sl_metric_family_t *errors = sl_metrics_family(
      r, &(sl_metric_desc_t){.type = SL_METRIC_COUNTER, .name = "sluice_forward_tls_errors_total",
                             .help = "Forward connections closed because TLS failed, by reason.", .labels = reason});
  for (int i = 0; i < SL_FWD_TLS_ERR__COUNT; i++)
    m->tls_errors[i] = sl_metric_child(errors, (const char *const[]){sl_fwd_tls_err_label((sl_fwd_tls_err_t)i)});
  m->tls_expiry = sl_metrics_gauge(r, "sluice_forward_tls_certificate_expiry_timestamp_seconds",
                                   "When the forward input's TLS certificate (cert_file) expires, in Unix time.");
}

int sl_fwd_server_new(uv_loop_t *loop, const sl_forward_conf_t *cfg, sl_metrics_t *metrics,
                      const sl_fwd_handler_t *handler, sl_fwd_server_t **out) {
  const sl_fwd_security_conf_t *sec = &cfg->security;
  const sl_fwd_user_conf_t *users = sec->users.items;
  sl_fwd_server_t *s = calloc(1, sizeof *s);
  if (!s) return SL_ENOMEM;
  s->loop = loop;
  s->cfg = cfg;
  s->handler = *handler;
  s->metrics = metrics;
  register_metrics(&s->m, metrics);
  if ((s->tls = cfg->tls.ctx)) {
    register_tls_metrics(&s->m, metrics);
    sl_gauge_set(s->m.tls_expiry, (double)sl_fwd_tls_cert_expiry(s->tls));
  }
  s->limits.chunk_size_limit = cfg->chunk_size_limit;
  s->limits.decompression_size_limit = cfg->decompression_size_limit;
  s->limits.max_depth = (int)cfg->max_depth;
  s->limits.max_values = (size_t)cfg->decoded_values_limit;
  s->limits.max_tag = (size_t)cfg->tag_size_limit;
  s->limits.skip_invalid_event = cfg->skip_invalid_event;
  if (sec->users.n) {
    s->users = calloc(sec->users.n, sizeof *s->users);
    if (!s->users) {
      free(s);
      return SL_ENOMEM;
    }
    for (size_t i = 0; i < sec->users.n; i++) {
      s->users[i].username = users[i].username;
      s->users[i].password = users[i].password;
    }
  }
  s->auth.self_hostname = sec->self_hostname;
  s->auth.shared_key = sec->shared_key;
  s->auth.users = s->users;
  s->auth.n_users = sec->users.n;
  s->auth.user_auth = sec->user_auth;
  s->auth.keepalive = !cfg->deny_keepalive;
  s->listeners = calloc(cfg->listen.n, sizeof *s->listeners);
  if (!s->listeners) {
    free(s->users);
    free(s);
    return SL_ENOMEM;
  }
  s->n_listeners = cfg->listen.n;
  s->primary = true;
  *out = s;
  return 0;
}

size_t sl_fwd_server_pending_acks(const sl_fwd_server_t *s) { return s->pending_acks; }

static int resolve(uv_loop_t *loop, const sl_addr_t *a, struct sockaddr_storage *ss) {
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  char port[8];
  snprintf(port, sizeof port, "%d", a->port);
  uv_getaddrinfo_t req;
  int r = uv_getaddrinfo(loop, &req, NULL, a->host, port, &hints);
  if (r) return r;
  res = req.addrinfo;
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  uv_freeaddrinfo(res);
  return 0;
}

static bool unix_socket_alive(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  bool alive = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  close(fd);
  return alive;
}

static int listen_one(sl_fwd_server_t *s, sl_fwd_listener_t *l) {
  char name[300];
  sl_addr_format(&l->addr, name, sizeof name);
  int r;
  if (l->addr.kind == SL_ADDR_UNIX) {
    /* A unix socket path has one owner: the primary worker. */
    if (!s->primary) return 0;
    struct stat st;
    if (stat(l->addr.path, &st) == 0 && S_ISSOCK(st.st_mode)) {
      /* A stale socket from a previous run is replaced; a live one (another
       * instance answers on it) is not. */
      if (unix_socket_alive(l->addr.path)) {
        sl_log(SL_LOG_ERROR, "forward", "cannot listen on %s: another process is listening there", name);
        return UV_EADDRINUSE;
      }
      unlink(l->addr.path);
    }
    uv_pipe_init(s->loop, &l->h.pipe, 0);
    l->h.handle.data = l;
    l->has_stream = true;
    s->open_handles++;
    if ((r = uv_pipe_bind(&l->h.pipe, l->addr.path)) ||
        (r = uv_listen(&l->h.stream, 511, on_connection))) {
      sl_log(SL_LOG_ERROR, "forward", "cannot listen on %s: %s", name, uv_strerror(r));
      return r;
    }
    sl_log(SL_LOG_INFO, "forward", "listening on %s", name);
    return 0;
  }
  struct sockaddr_storage ss;
  if ((r = resolve(s->loop, &l->addr, &ss))) {
    sl_log(SL_LOG_ERROR, "forward", "cannot resolve %s: %s", name, uv_strerror(r));
    return r;
  }
  if (l->follow_port) {
    if (ss.ss_family == AF_INET6)
      ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)l->follow_port);
    else
      ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)l->follow_port);
  }
  uv_tcp_init(s->loop, &l->h.tcp);
  l->h.handle.data = l;
  l->has_stream = true;
  s->open_handles++;
  if (s->reuseport) {
    /* Several workers accept on one port: the kernel spreads connections
     * over their sockets (SO_REUSEPORT; libuv 1.44 cannot set it). */
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, (struct sockaddr *)&ss,
             ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in))) {
      r = -errno;
      if (fd >= 0) close(fd);
      sl_log(SL_LOG_ERROR, "forward", "cannot listen on %s: %s", name, uv_strerror(r));
      return r;
    }
    if ((r = uv_tcp_open(&l->h.tcp, fd))) {
      close(fd);
      sl_log(SL_LOG_ERROR, "forward", "cannot listen on %s: %s", name, uv_strerror(r));
      return r;
    }
  } else if ((r = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss, 0))) {
    sl_log(SL_LOG_ERROR, "forward", "cannot listen on %s: %s", name, uv_strerror(r));
    return r;
  }
  if ((r = uv_listen(&l->h.stream, 511, on_connection))) {
    sl_log(SL_LOG_ERROR, "forward", "cannot listen on %s: %s", name, uv_strerror(r));
    return r;
  }
  int len = sizeof ss;
  uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &len);
  int port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
  if (!s->port) s->port = port;
  l->bound_port = port;
  sl_addr_t bound = l->addr;
  bound.port = port;
  sl_addr_format(&bound, name, sizeof name);
  if (!s->primary) {
    sl_log(SL_LOG_DEBUG, "forward", "worker listening on %s too", name);
    return 0;
  }
  uv_udp_init(s->loop, &l->udp);
  l->udp.data = l;
  l->has_udp = true;
  s->open_handles++;
  if ((r = uv_udp_bind(&l->udp, (struct sockaddr *)&ss, 0)) ||
      (r = uv_udp_recv_start(&l->udp, on_udp_alloc, on_udp_recv))) {
    sl_log(SL_LOG_ERROR, "forward", "cannot listen for UDP heartbeats on %s: %s", name, uv_strerror(r));
    return r;
  }
  sl_log(SL_LOG_INFO, "forward", "listening on %s (%s, udp heartbeat)", name, s->tls ? "tls" : "tcp");
  return 0;
}

void sl_fwd_server_set_worker(sl_fwd_server_t *s, bool primary, const sl_fwd_server_t *follow, const char *name) {
  s->primary = primary;
  s->reuseport = true;
  static const char *const worker[] = {"worker", NULL};
  sl_metric_family_t *f = sl_metrics_family(
      s->metrics, &(sl_metric_desc_t){.type = SL_METRIC_COUNTER, .name = "sluice_forward_worker_connections_total",
                                       .help = "Forward connections accepted, by worker ([input.forward] workers).",
                                       .labels = worker});
  s->m.worker_accepted = sl_metric_child(f, (const char *const[]){name});
  for (size_t i = 0; follow && i < s->n_listeners && i < follow->n_listeners; i++)
    s->listeners[i].follow_port = follow->listeners[i].bound_port;
}

int sl_fwd_server_start(sl_fwd_server_t *s) {
  for (size_t i = 0; i < s->n_listeners; i++) {
    sl_fwd_listener_t *l = &s->listeners[i];
    l->srv = s;
    l->addr = s->cfg->listen.items[i];
    int r = listen_one(s, l);
    if (r) return r;
  }
  return 0;
}

int sl_fwd_server_port(const sl_fwd_server_t *s) { return s->port; }

int sl_fwd_server_reload_tls(sl_fwd_server_t *s, const sl_forward_conf_t *conf) {
  /* Workers share the context: the first one reloads it for all. */
  if (!s->tls || !s->primary) return 0;
  char err[512];
  int r = sl_fwd_tls_reload(s->tls, &conf->tls, err, sizeof err);
  if (r) {
    sl_log(SL_LOG_ERROR, "forward", "TLS not reloaded, the certificate in use stays: %s", err);
    return r;
  }
  long long expiry = sl_fwd_tls_cert_expiry(s->tls);
  sl_gauge_set(s->m.tls_expiry, (double)expiry);
  char when[32] = "?";
  struct tm tm;
  time_t t = (time_t)expiry;
  if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  sl_log(SL_LOG_INFO, "forward", "TLS reloaded from %s (valid until %s); new connections use it", conf->tls.cert_file,
         when);
  return 0;
}

void sl_fwd_server_pause(sl_fwd_server_t *s) {
  if (s->paused) return;
  s->paused = true;
  s->paused_at = uv_hrtime();
  sl_metric_inc(s->m.pauses);
  sl_gauge_inc(s->m.paused);
  for (sl_fwd_conn_t *c = s->conns; c; c = c->next) sl_fwd_conn_stop_reading(c);
}

/* Visits every connection once, in list order, starting at resume_from and
 * wrapping around.  When a connection's message fills the queue again (the
 * server is paused from inside), the next resume starts after it. */
void sl_fwd_server_resume(sl_fwd_server_t *s) {
  if (!s->paused) return;
  s->paused = false;
  sl_gauge_dec(s->m.paused);
  sl_metric_add(s->m.paused_us, (uv_hrtime() - s->paused_at) / 1000);
  sl_fwd_conn_t *first = s->resume_from ? s->resume_from : s->conns;
  size_t n = s->n_conns;
  sl_fwd_conn_t *c = first;
  for (size_t i = 0; i < n && c && !s->paused; i++) {
    /* The next one is taken first: c may close while it is processed (it
     * stays linked until its handles are closed, on a later loop turn). */
    sl_fwd_conn_t *next = c->next ? c->next : s->conns;
    c->stalled = false;
    /* Frames that arrived before the pause go first. */
    sl_fwd_conn_process(c);
    if (!s->paused && !c->close_when_done) sl_fwd_conn_start_reading(c);
    if (s->paused) {
      s->resume_from = next;
      return;
    }
    c = next;
  }
}

bool sl_fwd_server_paused(const sl_fwd_server_t *s) { return s->paused; }

void sl_fwd_server_reap_gone(sl_fwd_server_t *s) {
  for (sl_fwd_conn_t *c = s->conns; c; c = c->next) {
    uv_os_fd_t fd;
    if (!c->stalled || c->closing || uv_fileno(&c->h.handle, &fd)) continue;
    /* POLLRDHUP tells a peer's close even with unread bytes before it. */
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
      sl_log(SL_LOG_DEBUG, "forward", "%s left while its message was held back", c->address);
      sl_fwd_conn_close(c);
    }
  }
}

static void on_listener_closed(uv_handle_t *h) {
  sl_fwd_listener_t *l = h->data;
  l->srv->open_handles--;
  sl_fwd_server_maybe_closed(l->srv);
}

void sl_fwd_server_stop_accepting(sl_fwd_server_t *s) {
  for (size_t i = 0; i < s->n_listeners; i++) {
    sl_fwd_listener_t *l = &s->listeners[i];
    if (l->has_stream) {
      l->has_stream = false;
      uv_close(&l->h.handle, on_listener_closed);
      if (l->addr.kind == SL_ADDR_UNIX) unlink(l->addr.path);
    }
    if (l->has_udp) {
      l->has_udp = false;
      uv_close((uv_handle_t *)&l->udp, on_listener_closed);
    }
  }
}

void sl_fwd_server_maybe_closed(sl_fwd_server_t *s) {
  if (s->closing && !s->conns && !s->open_handles && s->on_closed) {
    void (*cb)(void *) = s->on_closed;
    s->on_closed = NULL;
    cb(s->on_closed_arg);
  }
}

void sl_fwd_server_close(sl_fwd_server_t *s, void (*on_closed)(void *arg), void *arg) {
  s->closing = true;
  s->on_closed = on_closed;
  s->on_closed_arg = arg;
  sl_fwd_server_stop_accepting(s);
  for (sl_fwd_conn_t *c = s->conns; c; c = c->next) sl_fwd_conn_close(c);
  sl_fwd_server_maybe_closed(s);
}

void sl_fwd_server_free(sl_fwd_server_t *s) {
  if (!s) return;
  free(s->listeners);
  free(s->users);
  free(s);
}
