/* One HTTP/1.x request read with Node's http_parser (libhttp-parser-dev)
 * under the endpoint's limits: a head of at most head_max bytes (431), a
 * target of at most SL_HTTP_TARGET_MAX bytes (414), no body (413), GET or
 * HEAD only (405), HTTP/1.x (505); anything else malformed 400.  Fed bytes as they arrive, it says when the request is
 * whole, or what to answer when it is refused.  Pure: no socket, no loop. */
#ifndef SL_HTTP_REQUEST_H
#define SL_HTTP_REQUEST_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>

#define SL_HTTP_TARGET_MAX 1024

typedef enum { SL_HTTP_GET, SL_HTTP_HEAD, SL_HTTP_OTHER } sl_http_method_t;

typedef enum {
  SL_HTTP_REQ_MORE,     /* needs more bytes */
  SL_HTTP_REQ_COMPLETE, /* a whole request: method, path, keep_alive */
  SL_HTTP_REQ_REFUSED,  /* answer `status` (why says why) and close */
} sl_http_req_state_t;

typedef struct {
  http_parser parser;
  size_t head_max;
  size_t head_len; /* bytes of the request used so far */
  sl_http_req_state_t state;
  int status;      /* refused: 400, 405, 413, 414, 431 or 505 */
  const char *why; /* refused: static text, one line */
  sl_http_method_t method;
  bool keep_alive; /* complete: the client wants the connection kept */
  bool target_too_long;
  size_t target_len;
  char target[SL_HTTP_TARGET_MAX + 1]; /* as sent: "/metrics?x=1" or absolute */
  char path[SL_HTTP_TARGET_MAX + 1];   /* complete: its path alone, "/metrics" */
} sl_http_request_t;

/* Ready for a request's first byte (also the next one on a kept
 * connection). */
void sl_http_request_init(sl_http_request_t *r, size_t head_max);

/* Feeds bytes while the state is SL_HTTP_REQ_MORE and returns how many
 * were used: fewer than len when the request ended (completed or refused)
 * before them; the rest belong to the next request, if any.  Returns 0
 * once the state is no longer MORE. */
size_t sl_http_request_feed(sl_http_request_t *r, const char *data, size_t len);

#endif
