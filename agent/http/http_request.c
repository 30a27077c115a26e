/* A request read under limits (http_request.h).  http_parser streams: it
 * sees each byte once and calls back with pieces of the target, so nothing
 * of the request is buffered here but the target itself.  The parser is
 * paused at the end of each request (and at a refusal), so that bytes of a
 * pipelined next request are left to the caller until the answer is out.
 * Pure. */
#include "http/http_request.h"

#include <string.h>

static sl_http_request_t *req_of(http_parser *p) { return p->data; }

static void refuse(sl_http_request_t *r, int status, const char *why) {
  r->state = SL_HTTP_REQ_REFUSED;
  r->status = status;
  r->why = why;
  /* Stops the parser at this byte; one that failed has stopped already. */
  if (HTTP_PARSER_ERRNO(&r->parser) == HPE_OK) http_parser_pause(&r->parser, 1);
}

static int on_url(http_parser *p, const char *at, size_t len) {
  sl_http_request_t *r = req_of(p);
  if (r->target_len + len > SL_HTTP_TARGET_MAX) {
    r->target_too_long = true;
    refuse(r, 414, "the request target is longer than 1024 bytes");
    return 0;
  }
  memcpy(r->target + r->target_len, at, len);
  r->target_len += len;
  r->target[r->target_len] = 0;
  return 0;
}

/* The path of the target: up to '?' or '#' for origin-form ("/metrics?x"),
 * the URL's path for absolute-form ("http://host/metrics"). */
static int split_path(sl_http_request_t *r) {
  if (r->target[0] == '/') {
    size_t n = strcspn(r->target, "?#");
    memcpy(r->path, r->target, n);
    r->path[n] = 0;
    return 0;
  }
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (http_parser_parse_url(r->target, r->target_len, 0, &u) != 0) return -1;
  if (!(u.field_set & (1 << UF_PATH))) {
    strcpy(r->path, "/");
    return 0;
  }
  memcpy(r->path, r->target + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
  r->path[u.field_data[UF_PATH].len] = 0;
  return 0;
}

static bool has_body(const http_parser *p) {
  return (p->flags & F_CHUNKED) || p->uses_transfer_encoding ||
         ((p->flags & F_CONTENTLENGTH) && p->content_length > 0);
}

/* Everything that decides the answer is known here: the method, the target
 * and whether a body follows.  A refused request is answered before its
 * body is read. */
static int on_headers_complete(http_parser *p) {
  sl_http_request_t *r = req_of(p);
  if (r->state != SL_HTTP_REQ_MORE) return 0;
  r->method = p->method == HTTP_GET ? SL_HTTP_GET : p->method == HTTP_HEAD ? SL_HTTP_HEAD : SL_HTTP_OTHER;
  if (p->http_major != 1)
    refuse(r, 505, "only HTTP/1.0 and HTTP/1.1 are served");
  else if (r->method == SL_HTTP_OTHER)
    refuse(r, 405, "only GET and HEAD are served");
  else if (has_body(p))
    refuse(r, 413, "a request with a body is not served");
  else if (!r->target_len || split_path(r) != 0)
    refuse(r, 400, "the request target is not a path or URL");
  return 0;
}

static int on_message_complete(http_parser *p) {
  sl_http_request_t *r = req_of(p);
  if (r->state != SL_HTTP_REQ_MORE) return 0;
  r->state = SL_HTTP_REQ_COMPLETE;
  r->keep_alive = http_should_keep_alive(p) && !p->upgrade;
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

void sl_http_request_init(sl_http_request_t *r, size_t head_max) {
  memset(r, 0, sizeof *r);
  http_parser_init(&r->parser, HTTP_REQUEST);
  r->parser.data = r;
  r->head_max = head_max;
  r->state = SL_HTTP_REQ_MORE;
}

size_t sl_http_request_feed(sl_http_request_t *r, const char *data, size_t len) {
  if (r->state != SL_HTTP_REQ_MORE) return 0;
  /* No more than the head may still hold: a request that has not ended
   * within head_max bytes is refused whatever follows. */
  size_t room = r->head_max - r->head_len;
  size_t used = http_parser_execute(&r->parser, &settings, data, len < room ? len : room);
  r->head_len += used;
  if (r->state != SL_HTTP_REQ_MORE) return used;
  enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
  if (e != HPE_OK && e != HPE_PAUSED)
    refuse(r, 400, http_errno_description(e));
  else if (r->head_len >= r->head_max)
    refuse(r, 431, "the request head is larger than the limit");
  return used;
}
