/* Requests read under the endpoint's limits (agent/http/http_request.c):
 * what is complete, what is refused with which status, and where a
 * pipelined request's bytes start. */
#include <stdio.h>
#include <string.h>

#include "http/http_request.h"
#include "tap.h"

#define HEAD_MAX 8192

/* Feeds all of s at once; returns the bytes used. */
static size_t feed_all(sl_http_request_t *r, const char *s) {
  sl_http_request_init(r, HEAD_MAX);
  return sl_http_request_feed(r, s, strlen(s));
}

/* Feeds s one byte at a time, as a slow client sends it. */
static size_t feed_bytes(sl_http_request_t *r, const char *s) {
  sl_http_request_init(r, HEAD_MAX);
  size_t used = 0, n = strlen(s);
  while (used < n && r->state == SL_HTTP_REQ_MORE) used += sl_http_request_feed(r, s + used, 1);
  return used;
}

static void complete_requests(void) {
  sl_http_request_t r;
  const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  is_int(feed_all(&r, get), strlen(get), "a whole GET is used up");
  is_int(r.state, SL_HTTP_REQ_COMPLETE, "GET /metrics is complete");
  is_int(r.method, SL_HTTP_GET, "method GET");
  is_str(r.path, "/metrics", "path /metrics");
  ok(r.keep_alive, "HTTP/1.1 keeps the connection by default");

  feed_all(&r, "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
  ok(r.state == SL_HTTP_REQ_COMPLETE && !r.keep_alive, "Connection: close is honoured");
  feed_all(&r, "GET /healthz HTTP/1.0\r\n\r\n");
  ok(r.state == SL_HTTP_REQ_COMPLETE && !r.keep_alive, "HTTP/1.0 closes by default");
  feed_all(&r, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  ok(r.keep_alive, "HTTP/1.0 with Connection: keep-alive keeps it");

  feed_all(&r, "HEAD /readyz HTTP/1.1\r\n\r\n");
  ok(r.state == SL_HTTP_REQ_COMPLETE && r.method == SL_HTTP_HEAD, "HEAD is complete, method HEAD");
  feed_all(&r, "GET /api/v1/status?pretty=1#x HTTP/1.1\r\n\r\n");
  is_str(r.path, "/api/v1/status", "the query is not part of the path");
  is_str(r.target, "/api/v1/status?pretty=1#x", "the target is kept as sent");
  feed_all(&r, "GET http://127.0.0.1:24231/metrics?a HTTP/1.1\r\n\r\n");
  ok(r.state == SL_HTTP_REQ_COMPLETE, "an absolute-form target is read");
  is_str(r.path, "/metrics", "its path is the URL's path");
  feed_all(&r, "GET /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  is_int(r.state, SL_HTTP_REQ_COMPLETE, "Content-Length: 0 is no body");

  const char *slow = "GET /metrics HTTP/1.1\r\nUser-Agent: Prometheus/2.42.0\r\nAccept: text/plain\r\n\r\n";
  is_int(feed_bytes(&r, slow), strlen(slow), "a request sent a byte at a time is used up");
  ok(r.state == SL_HTTP_REQ_COMPLETE && strcmp(r.path, "/metrics") == 0, "and read the same");
  feed_all(&r, "GET /metrics HTTP/1.1\r\nHost: x\r\n");
  is_int(r.state, SL_HTTP_REQ_MORE, "a head without its blank line needs more");
}

static void pipelined(void) {
  sl_http_request_t r;
  const char *first = "GET /healthz HTTP/1.1\r\n\r\n";
  char two[256];
  snprintf(two, sizeof two, "%sHEAD /readyz HTTP/1.1\r\n\r\n", first);
  size_t used = feed_all(&r, two);
  is_int(used, strlen(first), "the first of two pipelined requests ends where the second starts");
  is_str(r.path, "/healthz", "first path");
  is_int(sl_http_request_feed(&r, two + used, strlen(two) - used), 0, "a complete request takes no more bytes");
  sl_http_request_init(&r, HEAD_MAX);
  sl_http_request_feed(&r, two + used, strlen(two) - used);
  ok(r.state == SL_HTTP_REQ_COMPLETE && r.method == SL_HTTP_HEAD && strcmp(r.path, "/readyz") == 0,
     "the second is read after init");
}

static void refused(const char *req, int status, const char *desc) {
  sl_http_request_t r;
  feed_all(&r, req);
  ok(r.state == SL_HTTP_REQ_REFUSED && r.status == status, "%s: %d", desc, status);
  if (r.state != SL_HTTP_REQ_REFUSED || r.status != status) printf("#   state %d status %d\n", r.state, r.status);
  ok(r.why && *r.why && !strchr(r.why, '\n'), "%s: a one-line reason", desc);
}

static void limits(void) {
  refused("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 405, "POST");
  refused("DELETE /metrics HTTP/1.1\r\n\r\n", 405, "DELETE");
  refused("OPTIONS * HTTP/1.1\r\n\r\n", 405, "OPTIONS");
  refused("GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 413, "GET with a body");
  refused("GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 413, "GET with a chunked body");
  refused("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, "a TLS hello");
  refused("GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n", 400, "a header line without a colon");
  refused("GET /metrics HTTP/9.9\r\n\r\n", 505, "an unknown HTTP version");

  static char big[HEAD_MAX * 2];
  int n = snprintf(big, sizeof big, "GET /metrics HTTP/1.1\r\nX-Big: ");
  memset(big + n, 'a', HEAD_MAX);
  strcpy(big + n + HEAD_MAX, "\r\n\r\n");
  sl_http_request_t r;
  size_t used = feed_all(&r, big);
  ok(r.state == SL_HTTP_REQ_REFUSED && r.status == 431, "a head over 8 KiB: 431");
  is_int(used, HEAD_MAX, "no byte past the limit is read");
  sl_http_request_init(&r, HEAD_MAX);
  for (size_t i = 0; r.state == SL_HTTP_REQ_MORE && i < strlen(big); i += 100)
    sl_http_request_feed(&r, big + i, 100);
  ok(r.state == SL_HTTP_REQ_REFUSED && r.status == 431, "the same in pieces: 431");

  /* A head of exactly the limit is served. */
  const char *pre = "GET /metrics HTTP/1.1\r\nX-Pad: ", *post = "\r\n\r\n";
  size_t pad = HEAD_MAX - strlen(pre) - strlen(post);
  n = snprintf(big, sizeof big, "%s", pre);
  memset(big + n, 'b', pad);
  strcpy(big + n + pad, post);
  is_int(strlen(big), HEAD_MAX, "a head of exactly 8192 bytes");
  feed_all(&r, big);
  is_int(r.state, SL_HTTP_REQ_COMPLETE, "is complete");

  n = snprintf(big, sizeof big, "GET /");
  memset(big + n, 'p', SL_HTTP_TARGET_MAX);
  strcpy(big + n + SL_HTTP_TARGET_MAX, " HTTP/1.1\r\n\r\n");
  refused(big, 414, "a target over 1024 bytes");
  n = snprintf(big, sizeof big, "GET /");
  memset(big + n, 'p', SL_HTTP_TARGET_MAX - 1);
  strcpy(big + n + SL_HTTP_TARGET_MAX - 1, " HTTP/1.1\r\n\r\n");
  feed_all(&r, big);
  ok(r.state == SL_HTTP_REQ_COMPLETE && strlen(r.path) == SL_HTTP_TARGET_MAX, "a target of 1024 bytes is read");
}

int main(void) {
  complete_requests();
  pipelined();
  limits();
  return tap_done();
}
