/* Serves /metrics, /healthz and /readyz.  Each connection reads one request
 * head (at most 8 KiB), answers and closes.  Loop thread only. */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"
#include "log.h"
#include "metrics.h"

#define HEAD_MAX 8192

static void on_listener_closed(uv_handle_t *hd);

struct sl_http {
  uv_tcp_t listener;
  bool ready, closing;
  int conns;
};

typedef struct {
  uv_tcp_t tcp;
  uv_write_t write;
  sl_http_t *http;
  sl_buf_t in, out;
  bool responded;
} http_conn_t;

static void on_conn_closed(uv_handle_t *h) {
  http_conn_t *c = h->data;
  sl_http_t *http = c->http;
  sl_buf_free(&c->in);
  sl_buf_free(&c->out);
  free(c);
  if (--http->conns == 0 && http->closing) free(http);
}

static void on_written(uv_write_t *req, int status) {
  (void)status;
  http_conn_t *c = req->data;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
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
  if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written))
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
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
    sl_metrics_render(&b);
    respond(c, 200, "OK", "text/plain; version=0.0.4", b.data, b.len);
    sl_buf_free(&b);
  } else if (strcmp(path, "/healthz") == 0) {
    respond(c, 200, "OK", "text/plain", "ok\n", 3);
  } else if (strcmp(path, "/readyz") == 0) {
    if (c->http->ready)
      respond(c, 200, "OK", "text/plain", "ready\n", 6);
    else
      respond(c, 503, "Service Unavailable", "text/plain", "starting\n", 9);
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
  if (c->responded) return;
  if (nread < 0) {
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    return;
  }
  c->in.len += (size_t)nread;
  c->in.data[c->in.len] = 0;
  if (strstr(c->in.data, "\r\n\r\n") || strstr(c->in.data, "\n\n"))
    route(c);
  else if (c->in.len > HEAD_MAX)
    respond(c, 431, "Request Header Fields Too Large", "text/plain", "too large\n", 10);
}

static void on_connection(uv_stream_t *server, int status) {
  sl_http_t *http = server->data;
  if (status < 0) return;
  http_conn_t *c = calloc(1, sizeof *c);
  if (!c) return;
  c->http = http;
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  http->conns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read))
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

int sl_http_start(uv_loop_t *loop, const sl_addr_t *addr, sl_http_t **out) {
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
  sl_http_t *h = calloc(1, sizeof *h);
  if (!h) return SL_ENOMEM;
  uv_tcp_init(loop, &h->listener);
  h->listener.data = h;
  h->conns = 1; /* the listener itself */
  if ((r = uv_tcp_bind(&h->listener, (struct sockaddr *)&ss, 0)) ||
      (r = uv_listen((uv_stream_t *)&h->listener, 128, on_connection))) {
    sl_log(SL_LOG_ERROR, "http", "cannot listen on %s: %s", name, uv_strerror(r));
    sl_http_close(h);
    *out = NULL;
    return r;
  }
  int len = sizeof ss;
  uv_tcp_getsockname(&h->listener, (struct sockaddr *)&ss, &len);
  sl_addr_t bound = *addr;
  bound.port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
  sl_addr_format(&bound, name, sizeof name);
  sl_log(SL_LOG_INFO, "http", "listening on http://%s (/metrics, /healthz, /readyz)", name);
  *out = h;
  return 0;
}

void sl_http_set_ready(sl_http_t *h, bool ready) {
  if (h) h->ready = ready;
}

static void on_listener_closed(uv_handle_t *hd) {
  sl_http_t *h = hd->data;
  if (--h->conns == 0) free(h);
}

void sl_http_close(sl_http_t *h) {
  if (!h) return;
  h->closing = true;
  uv_close((uv_handle_t *)&h->listener, on_listener_closed);
}
