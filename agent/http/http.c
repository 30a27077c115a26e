/* The operator's endpoint (http.h): a libuv TCP server whose requests are
 * read by http_request.c (Node's http_parser) under its limits.
 *
 * A connection answers one request at a time: bytes that arrive while an
 * answer is being written wait in `pending` (reading stops past HEAD_MAX of
 * them), and are read as the next request once it is out, if the client
 * keeps the connection.  From its accept, and again from the end of each
 * answer, a client has REQUEST_TIMEOUT_MS to send a whole request and take
 * the answer; past it the connection is closed (a client that never sends
 * one, or sends it a byte at a time, holds a slot no longer than that).  At
 * most MAX_CONNS connections are open.  Loop thread only (the main loop). */
#include "http/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/process_stats.h"
#include "http/http_request.h"
#include "http/http_status.h"
#include "kafka/kafka_stats.h"
#include "sl_build.h"

#define HEAD_MAX 8192
#define MAX_CONNS 64            /* scrapers and probes; more are refused */
#define REQUEST_TIMEOUT_MS 5000 /* to send a request and take its answer */
#define READ_CHUNK 4096

typedef struct http_conn http_conn_t;

typedef struct sl_http sl_http_t;

struct sl_http {
  uv_tcp_t listener;
  uv_loop_t *loop;
  const sl_config_t *cfg;
  sl_metrics_t *metrics;
  sl_stage_host_t host;
  bool stopping; /* the daemon is draining: stages report "stopping" */
  bool closing;
  void (*on_closed)(void *arg);
  void *on_closed_arg;
  int handles; /* open handles: the listener and two per connection */
  int n_conns;
  http_conn_t *conns;
  sl_metrics_source_t *process; /* the process's figures, published at each scrape */
  sl_metric_family_t *requests; /* {handler, code} */
  sl_metric_t *dropped_timeout, *dropped_limit;
};

struct http_conn {
  uv_tcp_t tcp;
  uv_timer_t timeout;
  uv_write_t write;
  sl_http_t *http;
  http_conn_t *prev, *next;
  sl_http_request_t req;
  sl_buf_t pending; /* bytes after the request being answered */
  sl_buf_t out;     /* the answer being written */
  char rbuf[READ_CHUNK];
  int refs;
  unsigned served; /* answers written */
  bool reading, writing, keep_alive, closing;
};

/* What a handler answers. */
typedef struct {
  int code;
  const char *ctype;
  sl_buf_t body;
} answer_t;

/* ---- connections ------------------------------------------------------------------ */

static void http_unref(sl_http_t *h) {
  if (--h->handles == 0 && h->closing && h->on_closed) {
    void (*cb)(void *) = h->on_closed;
    h->on_closed = NULL;
    cb(h->on_closed_arg);
  }
}

static void on_conn_closed(uv_handle_t *hd) {
  http_conn_t *c = hd->data;
  sl_http_t *http = c->http;
  if (--c->refs == 0) {
    if (c->prev)
      c->prev->next = c->next;
    else
      http->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    http->n_conns--;
    sl_buf_free(&c->pending);
    sl_buf_free(&c->out);
    free(c);
  }
  http_unref(http);
}

static void conn_close(http_conn_t *c) {
  if (c->closing) return;
  c->closing = true;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
  uv_close((uv_handle_t *)&c->timeout, on_conn_closed);
}

static void peer_name(http_conn_t *c, char *name, size_t len) {
  struct sockaddr_storage ss;
  int n = sizeof ss;
  char ip[64] = "?";
  int port = 0;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &n) == 0) {
    uv_ip_name((struct sockaddr *)&ss, ip, sizeof ip);
    port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
  }
  snprintf(name, len, strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, port);
}

static void on_timeout(uv_timer_t *t) {
  http_conn_t *c = t->data;
  /* A kept connection with nothing sent since its last answer is idle,
   * not slow: it just closes. */
  if (c->served == 0 || c->writing || c->req.head_len > 0) {
    char peer[96];
    peer_name(c, peer, sizeof peer);
    sl_metric_inc(c->http->dropped_timeout);
    sl_log_rl(SL_LOG_WARN, "http", "closed the connection from %s: %s within %d s", peer,
              c->writing ? "the answer was not taken" : "no whole request", REQUEST_TIMEOUT_MS / 1000);
  }
  conn_close(c);
}

static void set_reading(http_conn_t *c, bool on);
static void consume(http_conn_t *c, const char *data, size_t len);

/* Keeps bytes that came while answering; reading stops once they are as
 * many as a request head may be. */
static void keep_pending(http_conn_t *c, const char *data, size_t len) {
  if (!len || !c->keep_alive) return;
  if (sl_buf_append(&c->pending, data, len)) {
    conn_close(c);
    return;
  }
  if (c->pending.len >= HEAD_MAX) set_reading(c, false);
}

static void on_written(uv_write_t *req, int status) {
  http_conn_t *c = req->data;
  c->writing = false;
  c->served++;
  if (status < 0 || c->closing || !c->keep_alive) {
    conn_close(c);
    return;
  }
  sl_http_request_init(&c->req, HEAD_MAX);
  sl_buf_reset(&c->out);
  uv_timer_start(&c->timeout, on_timeout, REQUEST_TIMEOUT_MS, 0);
  sl_buf_t p = c->pending;
  c->pending = (sl_buf_t){0};
  consume(c, p.data, p.len);
  sl_buf_free(&p);
  if (!c->closing && !c->writing) set_reading(c, true);
}

/* Writes the answer; HEAD gets the head alone (with the body's length). */
static void respond(http_conn_t *c, answer_t *a, bool head_only) {
  char head[512];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: %s\r\n\r\n", a->code,
                   http_status_str((enum http_status)a->code), a->ctype, a->body.len,
                   a->code == 405 ? "Allow: GET, HEAD\r\n" : "", c->keep_alive ? "keep-alive" : "close");
  sl_buf_reset(&c->out);
  if (sl_buf_append(&c->out, head, (size_t)n) || (!head_only && sl_buf_append(&c->out, a->body.data, a->body.len))) {
    conn_close(c);
    return;
  }
  uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
  c->write.data = c;
  c->writing = true;
  if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written)) {
    c->writing = false;
    conn_close(c);
  }
}

/* ---- handlers --------------------------------------------------------------------- */

static void text(answer_t *a, int code, const char *body) {
  a->code = code;
  a->ctype = "text/plain; charset=utf-8";
  if (sl_buf_puts(&a->body, body) || sl_buf_putc(&a->body, '\n')) a->code = 500;
}

/* The registry's text, the process's figures read just now among it. */
static int metrics_text(sl_http_t *h, sl_buf_t *out) {
  sl_process_stats_t ps;
  sl_process_stats_read(&ps);
  if (h->process) sl_process_stats_publish(&ps, SL_VERSION, h->process);
  return sl_metrics_render(h->metrics, out);
}

/* Ready: the daemon's answer (started, not stopping, every sink up), and,
 * with [kafka], some broker reachable. */
static bool readiness(sl_http_t *h, char *why, size_t len) {
  if (!h->host.is_ready(h->host.arg, why, len)) return false;
  return !h->cfg->kafka.enabled || sl_kafka_stats_ready(why, len);
}

static void serve_metrics(sl_http_t *h, answer_t *a) {
  if (metrics_text(h, &a->body)) {
    sl_buf_reset(&a->body);
    text(a, 500, "out of memory");
    return;
  }
  a->code = 200;
  a->ctype = "text/plain; version=0.0.4; charset=utf-8";
}

static void serve_healthz(sl_http_t *h, answer_t *a) {
  (void)h;
  text(a, 200, "ok");
}

static void serve_readyz(sl_http_t *h, answer_t *a) {
  char why[512] = "";
  if (readiness(h, why, sizeof why))
    text(a, 200, "ready");
  else
    text(a, 503, why);
}

static void serve_status(sl_http_t *h, answer_t *a) {
  char why[512] = "";
  bool ready = readiness(h, why, sizeof why);
  const char *state = h->stopping ? "stopping" : "running";
  sl_status_stage_t stages[3];
  size_t n = 0;
  stages[n++] = (sl_status_stage_t){"http", state};
  if (h->cfg->input.forward.enabled) stages[n++] = (sl_status_stage_t){"ingest", state};
  if (h->cfg->jobs.n) stages[n++] = (sl_status_stage_t){"jobs", state};
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  sl_status_info_t info = {.version = SL_VERSION,
                           .now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9,
                           .ready = ready,
                           .reason = ready ? NULL : why,
                           .stages = stages,
                           .n_stages = n};
  sl_buf_t metrics = {0};
  int r = metrics_text(h, &metrics);
  if (!r) r = sl_status_json(metrics.data, metrics.len, &info, &a->body);
  sl_buf_free(&metrics);
  if (r) {
    sl_buf_reset(&a->body);
    text(a, 500, "out of memory");
    return;
  }
  a->code = 200;
  a->ctype = "application/json";
}

static const struct {
  const char *path;
  const char *handler; /* the label of sluice_http_requests_total */
  void (*serve)(sl_http_t *h, answer_t *a);
} routes[] = {
    {"/metrics", "metrics", serve_metrics},
    {"/healthz", "healthz", serve_healthz},
    {"/readyz", "readyz", serve_readyz},
    {"/api/v1/status", "status", serve_status},
};

static void count(sl_http_t *h, const char *handler, int code) {
  char c[8];
  snprintf(c, sizeof c, "%d", code);
  sl_metric_inc(sl_metric_child(h->requests, (const char *const[]){handler, c}));
}

/* Answers the request that just ended (whole, or refused). */
static void answer(http_conn_t *c) {
  sl_http_t *h = c->http;
  sl_http_request_t *r = &c->req;
  answer_t a = {0};
  const char *handler = "other";
  uv_timer_start(&c->timeout, on_timeout, REQUEST_TIMEOUT_MS, 0);
  if (r->state == SL_HTTP_REQ_REFUSED) {
    char peer[96];
    peer_name(c, peer, sizeof peer);
    sl_log_rl(SL_LOG_WARN, "http", "refused a request from %s: %d %s (%s)", peer, r->status,
              http_status_str((enum http_status)r->status), r->why);
    c->keep_alive = false;
    text(&a, r->status, r->why);
  } else {
    c->keep_alive = r->keep_alive && !h->closing;
    for (size_t i = 0; i < sizeof routes / sizeof *routes && !a.code; i++)
      if (strcmp(r->path, routes[i].path) == 0) {
        handler = routes[i].handler;
        routes[i].serve(h, &a);
      }
    if (!a.code) {
      sl_log(SL_LOG_DEBUG, "http", "no such path: %s", r->path);
      text(&a, 404, "not found: /metrics, /healthz, /readyz and /api/v1/status are served");
    }
  }
  count(h, handler, a.code);
  respond(c, &a, r->state == SL_HTTP_REQ_COMPLETE && r->method == SL_HTTP_HEAD);
  sl_buf_free(&a.body);
}

/* Reads requests from bytes (as many as end in them), answering each. */
static void consume(http_conn_t *c, const char *data, size_t len) {
  while (len && !c->writing && !c->closing) {
    size_t used = sl_http_request_feed(&c->req, data, len);
    data += used;
    len -= used;
    if (c->req.state != SL_HTTP_REQ_MORE) answer(c);
  }
  if (!c->closing) keep_pending(c, data, len);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  http_conn_t *c = hd->data;
  *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  http_conn_t *c = s->data;
  if (c->closing || nread == 0) return;
  if (nread < 0) {
    /* A client that sent its request and shut its side still gets the
     * answer being written. */
    if (nread == UV_EOF && c->writing)
      c->keep_alive = false;
    else
      conn_close(c);
    return;
  }
  if (c->writing)
    keep_pending(c, buf->base, (size_t)nread);
  else
    consume(c, buf->base, (size_t)nread);
}

static void set_reading(http_conn_t *c, bool on) {
  if (c->reading == on) return;
  c->reading = on;
  int r = on ? uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) : uv_read_stop((uv_stream_t *)&c->tcp);
  if (r) conn_close(c);
}

static void on_refused_closed(uv_handle_t *h) { free(h); }

static void on_connection(uv_stream_t *server, int status) {
  sl_http_t *http = server->data;
  if (status < 0) return;
  http_conn_t *c = http->closing || http->n_conns >= MAX_CONNS ? NULL : calloc(1, sizeof *c);
  if (!c) {
    /* Accept and close: an unaccepted connection would stop the listener. */
    if (!http->closing) {
      sl_metric_inc(http->dropped_limit);
      sl_log_rl(SL_LOG_WARN, "http", "refused a connection: %d are open (the most served at once)", MAX_CONNS);
    }
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t) return;
    uv_tcp_init(server->loop, t);
    uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_refused_closed);
    return;
  }
  c->http = http;
  sl_http_request_init(&c->req, HEAD_MAX);
  uv_tcp_init(server->loop, &c->tcp);
  uv_timer_init(server->loop, &c->timeout);
  c->tcp.data = c->timeout.data = c;
  c->refs = 2;
  http->handles += 2;
  c->next = http->conns;
  if (c->next) c->next->prev = c;
  http->conns = c;
  http->n_conns++;
  uv_timer_start(&c->timeout, on_timeout, REQUEST_TIMEOUT_MS, 0);
  if (uv_accept(server, (uv_stream_t *)&c->tcp))
    conn_close(c);
  else
    set_reading(c, true);
}

/* ---- the stage -------------------------------------------------------------------- */

static int stage_start(void *self) {
  sl_http_t *h = self;
  const sl_addr_t *addr = &h->cfg->http.listen;
  char name[300];
  sl_addr_format(addr, name, sizeof name);
  struct sockaddr_storage ss;
  int r;
  if (strchr(addr->host, ':'))
    r = uv_ip6_addr(addr->host, addr->port, (struct sockaddr_in6 *)&ss);
  else
    r = uv_ip4_addr(strcmp(addr->host, "localhost") == 0 ? "127.0.0.1" : addr->host, addr->port,
                    (struct sockaddr_in *)&ss);
  if (r) {
    sl_log(SL_LOG_ERROR, "http", "cannot listen on %s: the host must be an IP address", name);
    return r;
  }
  if ((r = uv_tcp_bind(&h->listener, (struct sockaddr *)&ss, 0)) ||
      (r = uv_listen((uv_stream_t *)&h->listener, 128, on_connection))) {
    sl_log(SL_LOG_ERROR, "http", "cannot listen on %s: %s", name, uv_strerror(r));
    return r;
  }
  int len = sizeof ss;
  uv_tcp_getsockname(&h->listener, (struct sockaddr *)&ss, &len);
  sl_addr_t bound = *addr;
  bound.port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
  sl_addr_format(&bound, name, sizeof name);
  sl_log(SL_LOG_INFO, "http", "listening on http://%s (/metrics, /healthz, /readyz, /api/v1/status)", name);
  return 0;
}

/* Scrapes and probes go on while the other stages drain; /readyz already
 * answers 503 then (the host is not ready once stopping). */
static void stage_stop_intake(void *self) {
  sl_http_t *h = self;
  h->stopping = true;
}

static size_t stage_inflight(void *self, char *what, size_t len) {
  (void)self;
  (void)what;
  (void)len;
  return 0;
}

static void on_listener_closed(uv_handle_t *hd) { http_unref(hd->data); }

static void stage_close(void *self, void (*on_closed)(void *arg), void *arg) {
  sl_http_t *h = self;
  h->closing = true;
  h->on_closed = on_closed;
  h->on_closed_arg = arg;
  uv_close((uv_handle_t *)&h->listener, on_listener_closed);
  for (http_conn_t *c = h->conns; c; c = c->next) conn_close(c);
}

static void stage_free(void *self) {
  sl_http_t *h = self;
  sl_metrics_source_free(h->process);
  free(h);
}

static const sl_stage_ops_t http_ops = {
    .name = "http",
    .start = stage_start,
    .stop_intake = stage_stop_intake,
    .inflight = stage_inflight,
    .close = stage_close,
    .free = stage_free,
};

static const char *const request_labels[] = {"handler", "code", NULL};
static const char *const dropped_labels[] = {"reason", NULL};

static void register_metrics(sl_http_t *h) {
  h->requests = sl_metrics_family(
      h->metrics, &(sl_metric_desc_t){.type = SL_METRIC_COUNTER,
                                      .name = "sluice_http_requests_total",
                                      .help = "Requests the HTTP endpoint answered, by handler (metrics, healthz, "
                                              "readyz, status, other) and status code.",
                                      .labels = request_labels});
  sl_metric_family_t *dropped = sl_metrics_family(
      h->metrics, &(sl_metric_desc_t){.type = SL_METRIC_COUNTER,
                                      .name = "sluice_http_connections_dropped_total",
                                      .help = "HTTP connections closed by sluice: reason=timeout (no whole request, "
                                              "or the answer not taken, in 5 s), limit (64 already open).",
                                      .labels = dropped_labels});
  h->dropped_timeout = sl_metric_child(dropped, (const char *const[]){"timeout", NULL});
  h->dropped_limit = sl_metric_child(dropped, (const char *const[]){"limit", NULL});
}

int sl_http_stage_new(const sl_stage_env_t *env, sl_stage_t *out) {
  *out = (sl_stage_t){0};
  if (!env->cfg->http.enabled) return 0;
  sl_http_t *h = calloc(1, sizeof *h);
  if (!h) return SL_ENOMEM;
  h->loop = env->loop;
  h->cfg = env->cfg;
  h->metrics = env->metrics;
  h->host = env->host;
  register_metrics(h);
  h->process = sl_metrics_source_new(env->metrics); /* NULL (ENOMEM): no process figures */
  uv_tcp_init(env->loop, &h->listener);
  h->listener.data = h;
  h->handles = 1; /* the listener itself */
  *out = (sl_stage_t){.ops = &http_ops, .self = h};
  return 0;
}
