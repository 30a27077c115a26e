/* libcurl's multi-socket interface on a libuv loop (es_http.h), after
 * curl's docs/examples/multi-uv.c.  Runs on the jobs loop.
 *
 * Why a poll is stopped inside curl's CURL_POLL_REMOVE: curl closes the
 * socket right after telling us, and an fd must never be closed while a
 * uv_poll watches it (the number may come back for another socket).  The
 * poll's memory lives until its close callback, so a late notice from
 * curl about the same socket is harmless.
 *
 * Why completions are read after each curl_multi_socket_action, not in a
 * curl callback: removing an easy handle and calling the owner (who may
 * start another request) is only safe outside curl's own call chain. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "es_http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct es_sock {
  uv_poll_t poll;
  curl_socket_t fd;
  es_http_t *h;
  struct es_sock *next, *prev;
} es_sock_t;

typedef struct es_req {
  struct es_req *next, *prev;
  es_http_t *h;
  CURL *easy;
  struct curl_slist *headers;
  pt_buf_t body, answer;
  es_http_cb cb;
  void *arg;
  uint64_t started;
  char errbuf[CURL_ERROR_SIZE];
} es_req_t;

/* ---- sockets and the timer ----------------------------------------------------------- */

static void drain(es_http_t *h);

static void on_sock_closed(uv_handle_t *handle) {
  es_sock_t *sk = handle->data;
  es_http_t *h = sk->h;
  free(sk);
  if (--h->closing_handles == 0 && h->on_closed && !h->multi) h->on_closed(h->closed_arg);
}

static void sock_close(es_sock_t *sk) {
  es_http_t *h = sk->h;
  if (sk->prev)
    sk->prev->next = sk->next;
  else
    h->socks = sk->next;
  if (sk->next) sk->next->prev = sk->prev;
  uv_poll_stop(&sk->poll);
  h->closing_handles++;
  uv_close((uv_handle_t *)&sk->poll, on_sock_closed);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  es_sock_t *sk = p->data;
  es_http_t *h = sk->h;
  int flags = 0;
  if (status < 0) flags |= CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  int running = 0;
  curl_multi_socket_action(h->multi, sk->fd, flags, &running);
  drain(h);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)easy;
  es_http_t *h = userp;
  es_sock_t *sk = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (sk) {
      curl_multi_assign(h->multi, fd, NULL);
      sock_close(sk);
    }
    return 0;
  }
  if (!sk) {
    sk = calloc(1, sizeof *sk);
    if (!sk) return -1;
    if (uv_poll_init_socket(h->loop, &sk->poll, fd)) {
      free(sk);
      return -1;
    }
    sk->fd = fd;
    sk->h = h;
    sk->poll.data = sk;
    sk->next = h->socks;
    if (h->socks) h->socks->prev = sk;
    h->socks = sk;
    curl_multi_assign(h->multi, fd, sk);
  }
  int ev = 0;
  if (what & CURL_POLL_IN) ev |= UV_READABLE;
  if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
  uv_poll_start(&sk->poll, ev, on_poll);
  return 0;
}

static void on_timeout(uv_timer_t *t) {
  es_http_t *h = t->data;
  int running = 0;
  curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  drain(h);
}

static int on_timer_set(CURLM *multi, long ms, void *userp) {
  (void)multi;
  es_http_t *h = userp;
  if (ms < 0)
    uv_timer_stop(&h->timer);
  else
    uv_timer_start(&h->timer, on_timeout, (uint64_t)ms, 0);
  return 0;
}

/* ---- requests --------------------------------------------------------------------------- */

static void req_unlink(es_req_t *r) {
  es_http_t *h = r->h;
  if (r->prev)
    r->prev->next = r->next;
  else
    h->reqs = r->next;
  if (r->next) r->next->prev = r->prev;
}

static void req_free(es_req_t *r) {
  if (r->easy) curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->headers);
  pt_buf_free(&r->body);
  pt_buf_free(&r->answer);
  free(r);
}

static void finish(es_req_t *r, CURLcode code) {
  es_http_t *h = r->h;
  es_http_result_t res = {0};
  res.seconds = (double)(uv_hrtime() - r->started) / 1e9;
  if (code == CURLE_OK) {
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
  } else {
    res.transport = true;
    res.timed_out = code == CURLE_OPERATION_TIMEDOUT;
    res.error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(code);
  }
  if (pt_buf_append(&r->answer, "", 1) == 0) r->answer.len--;
  res.body = r->answer.p ? r->answer.p : "";
  res.len = r->answer.len;
  curl_multi_remove_handle(h->multi, r->easy);
  req_unlink(r);
  r->cb(r->arg, &res);
  req_free(r);
}

static void drain(es_http_t *h) {
  CURLMsg *msg;
  int left;
  while (h->multi && (msg = curl_multi_info_read(h->multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    es_req_t *r = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    if (r) finish(r, msg->data.result);
  }
}

static size_t on_data(char *p, size_t size, size_t n, void *arg) {
  es_req_t *r = arg;
  /* A body past 64 MiB is no answer of _bulk's: stop reading (curl then
   * fails the transfer). */
  if (r->answer.len + size * n > 64u << 20 || pt_buf_append(&r->answer, p, size * n)) return 0;
  return size * n;
}

int es_http_send(es_http_t *h, const char *url, pt_buf_t *body, bool gzipped, es_http_cb cb,
                 void *arg) {
  es_req_t *r = calloc(1, sizeof *r);
  if (!r) {
    if (body) pt_buf_free(body);
    return -1;
  }
  r->h = h;
  r->cb = cb;
  r->arg = arg;
  if (body) {
    r->body = *body;
    *body = (pt_buf_t){0};
  }
  const es_http_opts_t *o = &h->opts;
  CURL *e = r->easy = curl_easy_init();
  struct curl_slist *hd = NULL, *t;
#define ADD(x)                                        \
  do {                                                \
    if (!(t = curl_slist_append(hd, (x)))) goto fail; \
    hd = t;                                           \
  } while (0)
  if (!e) goto fail;
  ADD("Accept: application/json");
  ADD("Expect:"); /* no 100-continue round trip before each body */
  if (body) ADD("Content-Type: application/x-ndjson");
  if (body && gzipped) ADD("Content-Encoding: gzip");
  for (struct curl_slist *a = h->auth_header; a; a = a->next) ADD(a->data);
#undef ADD
  r->headers = hd;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->timeout_ms);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  if (o->username) {
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERNAME, o->username);
    curl_easy_setopt(e, CURLOPT_PASSWORD, o->password ? o->password : "");
  }
  if (o->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, o->verify ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o->verify ? 2L : 0L);
  if (body) {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.p ? r->body.p : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
  }
  r->started = uv_hrtime();
  r->next = h->reqs;
  if (h->reqs) h->reqs->prev = r;
  h->reqs = r;
  if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
    req_unlink(r);
    goto fail;
  }
  return 0;
fail:
  if (!r->headers) curl_slist_free_all(hd);
  req_free(r);
  return -1;
}

size_t es_http_in_flight(const es_http_t *h) {
  size_t n = 0;
  for (const es_req_t *r = h->reqs; r; r = r->next) n++;
  return n;
}

/* ---- life ----------------------------------------------------------------------------------- */

int es_http_init(es_http_t *h, uv_loop_t *loop, const es_http_opts_t *opts, char *err,
                 size_t errlen) {
  h->loop = loop;
  h->opts = *opts;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(err, errlen, "cannot initialise libcurl");
    return -1;
  }
  char line[4096];
  if (opts->api_key || opts->bearer) {
    snprintf(line, sizeof line, "Authorization: %s %s", opts->api_key ? "ApiKey" : "Bearer",
             opts->api_key ? opts->api_key : opts->bearer);
    if (!(h->auth_header = curl_slist_append(NULL, line))) goto nomem;
  }
  if (!(h->multi = curl_multi_init())) goto nomem;
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, opts->max_host_connections);
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  return 0;
nomem:
  snprintf(err, errlen, "out of memory");
  curl_slist_free_all(h->auth_header);
  h->auth_header = NULL;
  return -1;
}

static void on_timer_closed(uv_handle_t *handle) {
  es_http_t *h = handle->data;
  if (--h->closing_handles == 0 && h->on_closed) h->on_closed(h->closed_arg);
}

void es_http_close(es_http_t *h, void (*on_closed)(void *arg), void *arg) {
  while (h->reqs) {
    es_req_t *r = h->reqs;
    curl_multi_remove_handle(h->multi, r->easy);
    req_unlink(r);
    es_http_result_t res = {.canceled = true, .body = "", .error = "canceled"};
    r->cb(r->arg, &res);
    req_free(r);
  }
  /* Stop watching every socket before curl closes them. */
  while (h->socks) {
    curl_multi_assign(h->multi, h->socks->fd, NULL);
    sock_close(h->socks);
  }
  uv_timer_stop(&h->timer);
  curl_multi_cleanup(h->multi);
  h->multi = NULL;
  curl_slist_free_all(h->auth_header);
  h->auth_header = NULL;
  h->on_closed = on_closed;
  h->closed_arg = arg;
  h->closing_handles++;
  uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}
