/* HTTP requests on the jobs loop: libcurl's multi-socket interface driven
 * by uv_poll (one per socket curl opens) and one uv_timer (curl's timeout),
 * so no request blocks and connections are reused between requests.  Knows
 * nothing of Elasticsearch beyond the headers every request carries (JSON,
 * authentication, TLS settings).  Runs on the loop given to es_http_init. */
#ifndef ES_HTTP_H
#define ES_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "es_bulk.h"

/* What every request carries; the strings are borrowed until es_http_close
 * has completed (the host's options). */
typedef struct {
  const char *username, *password; /* basic authentication (both, or neither) */
  const char *api_key;             /* Authorization: ApiKey <api_key> */
  const char *bearer;              /* Authorization: Bearer <bearer> */
  const char *ca_file;             /* CA bundle for https; NULL: the system's */
  bool verify;                     /* check the server's certificate and name */
  long timeout_ms;                 /* the whole request, connecting included */
  long max_host_connections;
} es_http_opts_t;

/* How a request ended.  Borrowed by the callback, gone after it. */
typedef struct {
  bool canceled;    /* es_http_close came first: nothing else is set */
  bool transport;   /* no HTTP answer (refused, reset, timed out, TLS): see error */
  bool timed_out;   /* transport: no answer within timeout_ms */
  long status;      /* the HTTP status, when !transport */
  const char *body; /* the answer's body (len bytes, NUL-terminated) */
  size_t len;
  const char *error; /* transport: curl's reason */
  double seconds;    /* from start to end */
} es_http_result_t;

typedef void (*es_http_cb)(void *arg, const es_http_result_t *r);

/* Embedded in its owner; zeroed before es_http_init. */
typedef struct es_http {
  void *multi; /* CURLM * */
  uv_loop_t *loop;
  uv_timer_t timer;
  es_http_opts_t opts;
  struct curl_slist *auth_header; /* Authorization, made once */
  struct es_sock *socks;          /* open polls, for closing */
  struct es_req *reqs;            /* in flight */
  int closing_handles;
  void (*on_closed)(void *arg);
  void *closed_arg;
} es_http_t;

/* 0, or -1 with the reason in err (curl cannot be initialised). */
int es_http_init(es_http_t *h, uv_loop_t *loop, const es_http_opts_t *opts, char *err,
                 size_t errlen);

/* Starts a request: GET when body is NULL, else POST of body (taken, freed
 * when the request ends) as application/x-ndjson, with Content-Encoding:
 * gzip when gzipped.  0: cb(arg, result) is called once, on the loop,
 * never from inside this call; -1 (out of memory): cb is not called and
 * body is freed all the same. */
int es_http_send(es_http_t *h, const char *url, pt_buf_t *body, bool gzipped, es_http_cb cb,
                 void *arg);

/* Requests in flight. */
size_t es_http_in_flight(const es_http_t *h);

/* Cancels the requests in flight (their callbacks are called with
 * canceled, from inside this call), closes the connections and the
 * handles, then calls on_closed(arg) from a later loop turn. */
void es_http_close(es_http_t *h, void (*on_closed)(void *arg), void *arg);

#endif
