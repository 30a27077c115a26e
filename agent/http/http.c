/* Serves /metrics, /healthz and /readyz.  Each connection reads one request
 * head (at most 8 KiB, within 5 s), answers and closes; at most 64 at once.
 * Loop thread only. */
#include "http/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"

#define HEAD_MAX 8192
#define MAX_CONNS 64           /* scrapers and probes; more are refused */
#define REQUEST_TIMEOUT_MS 5000 /* a client must send its request by then */


typedef struct http_conn http_conn_t;

typedef struct sl_http sl_http_t;

struct sl_http {
  uv_tcp_t listener;
  uv_loop_t *loop;
  sl_addr_t addr;
  sl_metrics_t *metrics;
  sl_stage_host_t host;
  bool closing;
  void (*on_closed)(void *arg);
  void *on_closed_arg;
  int handles; /* open handles: the listener and two per connection */
  int n_conns;
  http_conn_t *conns;
};

struct http_conn {
  uv_tcp_t tcp;
  uv_timer_t timeout;
  uv_write_t write;
  sl_http_t *http;
  http_conn_t *prev, *next;
  sl_buf_t in, out;
  int refs;
  bool responded, closing;
};

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
    sl_buf_free(&c->in);
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

static void on_timeout(uv_timer_t *t) { conn_close(t->data); }

static void on_written(uv_write_t *req, int status) {
  (void)status;
  conn_close(req->data);
}

static void respond(http_conn_t *c, int code, const char *reason, const char *ctype, const char *body,
                    size_t len) {
  char head[256];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", code,
                   reason, ctype, len);
  sl_buf_append(&c->out, head, (size_t)n);
  sl_buf_append(&c->out, body, len);
  c->responded = true;
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
  c->write.data = c;
  if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written)) conn_close(c);
}

static void route(http_conn_t *c) {
  char method[8], path[256];
  if (sscanf(c->in.data, "%7s %255s", method, path) != 2) {
    respond(c, 400, "Bad Request", "text/plain", "bad request\n", 12);
    return;
  }
  if (strcmp(method, "GET") != 0) {
    respond(c, 405, "Method Not Allowed", "text/plain", "only GET\n", 9);
    return;
  }
  char *q = strchr(path, '?');
  if (q) *q = 0;
  if (strcmp(path, "/metrics") == 0) {
    sl_buf_t b = {0};
    sl_metrics_render(c->http->metrics, &b);
    respond(c, 200, "OK", "text/plain; version=0.0.4", b.data, b.len);
    sl_buf_free(&b);
  } else if (strcmp(path, "/healthz") == 0) {
    respond(c, 200, "OK", "text/plain", "ok\n", 3);
  } else if (strcmp(path, "/readyz") == 0) {
    char why[256] = "";
    if (c->http->host.is_ready(c->http->host.arg, why, sizeof why - 1)) {
      respond(c, 200, "OK", "text/plain", "ready\n", 6);
    } else {
      size_t n = strlen(why);
      why[n++] = '\n';
      respond(c, 503, "Service Unavailable", "text/plain", why, n);
    }
  } else {
    respond(c, 404, "Not Found", "text/plain", "not found\n", 10);
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  http_conn_t *c = h->data;
  if (sl_buf_reserve(&c->in, 2048)) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  *buf = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  http_conn_t *c = s->data;
  if (c->responded || c->closing) return;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  c->in.len += (size_t)nread;
  c->in.data[c->in.len] = 0;
  if (strstr(c->in.data, "\r\n\r\n") || strstr(c->in.data, "\n\n"))
    route(c);
  else if (c->in.len > HEAD_MAX)
    respond(c, 431, "Request Header Fields Too Large", "text/plain", "too large\n", 10);
}

static void on_refused_closed(uv_handle_t *h) { free(h); }

static void on_connection(uv_stream_t *server, int status) {
  sl_http_t *http = server->data;
  if (status < 0) return;
  http_conn_t *c = http->closing || http->n_conns >= MAX_CONNS ? NULL : calloc(1, sizeof *c);
  if (!c) {
    /* Accept and close: an unaccepted connection would stop the listener. */
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t) return;
    uv_tcp_init(server->loop, t);
    uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_refused_closed);
    return;
  }
  c->http = http;
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
  if (uv_accept(server, (uv_stream_t *)&c->tcp) || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read))
    conn_close(c);
}

static int stage_start(void *self) {
  sl_http_t *h = self;
  const sl_addr_t *addr = &h->addr;
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
  sl_log(SL_LOG_INFO, "http", "listening on http://%s (/metrics, /healthz, /readyz)", name);
  return 0;
}

/* Scrapes and probes go on while the other stages drain; /readyz already
 * answers 503 then (the host is not ready once stopping). */
static void stage_stop_intake(void *self) { (void)self; }

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

static void stage_free(void *self) { free(self); }

static const sl_stage_ops_t http_ops = {
    .name = "http",
    .start = stage_start,
    .stop_intake = stage_stop_intake,
    .inflight = stage_inflight,
    .close = stage_close,
    .free = stage_free,
};

int sl_http_stage_new(const sl_stage_env_t *env, sl_stage_t *out) {
  *out = (sl_stage_t){0};
  if (!env->cfg->http.enabled) return 0;
  sl_http_t *h = calloc(1, sizeof *h);
  if (!h) return SL_ENOMEM;
  h->loop = env->loop;
  h->addr = env->cfg->http.listen;
  h->metrics = env->metrics;
  h->host = env->host;
  uv_tcp_init(env->loop, &h->listener);
  h->listener.data = h;
  h->handles = 1; /* the listener itself */
  *out = (sl_stage_t){.ops = &http_ops, .self = h};
  return 0;
}
