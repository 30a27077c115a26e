/* The redis sink's connection (redis_conn.h): attempts, the handshake,
 * backoff and timeouts around one hiredis async context.  Jobs loop.
 *
 * Why the context is forgotten before it is freed: freeing it calls the
 * callbacks still due, with NULL, from inside redisAsyncFree (or, inside a
 * hiredis callback, when that returns), and a freed context's disconnect
 * callback runs too; each callback first checks that its context is still
 * c->ac, so none acts on a connection already given up.  hiredis 0.14 has
 * no timeouts of its own for async contexts: connect_timeout is a timer
 * here, and the sink's command_timeout one of its own. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup, strndup, getaddrinfo under -std=c11 */
#endif

#include "redis_conn.h"

#include <arpa/inet.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "redis_cmd.h"

#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 5000

static int fail_init(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_init(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

static void set_error(rs_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(rs_conn_t *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->last_error, sizeof c->last_error, fmt, ap);
  va_end(ap);
}

/* host:port, [v6]:port, host (port 6379), /path or unix:/path. */
static int parse_address(rs_conn_t *c, const char *a, char *err, size_t errlen) {
  if (strncmp(a, "unix:", 5) == 0) a += 5;
  if (a[0] == '/') return (c->unix_path = strdup(a)) ? 0 : fail_init(err, errlen, "out of memory");
  const char *host = a, *colon;
  size_t hl;
  if (a[0] == '[') {
    const char *close = strchr(a, ']');
    if (!close || (close[1] && close[1] != ':'))
      return fail_init(err, errlen, "address \"%s\": write an IPv6 address as [addr]:port", a);
    host = a + 1;
    hl = (size_t)(close - host);
    colon = close[1] ? close + 1 : NULL;
  } else {
    colon = strrchr(a, ':');
    if (colon && strchr(a, ':') != colon)
      return fail_init(err, errlen, "address \"%s\": write an IPv6 address as [addr]:port", a);
    hl = colon ? (size_t)(colon - a) : strlen(a);
  }
  if (hl == 0) return fail_init(err, errlen, "address \"%s\" has no host", a);
  long port = 6379;
  if (colon) {
    char *end;
    port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 1 || port > 65535)
      return fail_init(err, errlen, "address \"%s\": the port must be a number from 1 to 65535", a);
  }
  char pt[8];
  snprintf(pt, sizeof pt, "%ld", port);
  c->port = (int)port;
  if (!(c->hostname = strndup(host, hl)) || !(c->port_text = strdup(pt)))
    return fail_init(err, errlen, "out of memory");
  return 0;
}

static void free_strings(rs_conn_t *c) {
  free(c->where);
  free(c->hostname);
  free(c->port_text);
  free(c->unix_path);
  free(c->username);
  free(c->password);
}

int rs_conn_init(rs_conn_t *c, const rs_conn_opts_t *o, char *err, size_t errlen) {
  *c = (rs_conn_t){.host = o->host,
                   .ctx = o->ctx,
                   .loop = o->loop,
                   .db = o->db,
                   .connect_timeout_ms = o->connect_timeout_ms,
                   .on_change = o->on_change,
                   .arg = o->arg};
  if (!(c->where = strdup(o->address)) || (o->username && !(c->username = strdup(o->username))) ||
      (o->password && !(c->password = strdup(o->password)))) {
    free_strings(c);
    return fail_init(err, errlen, "out of memory");
  }
  if (parse_address(c, o->address, err, errlen)) {
    free_strings(c);
    return -1;
  }
  c->m_connected = c->host->gauge(c->ctx, "sluice_sink_redis_connected",
                                  "1 while the redis sink's connection is ready.");
  c->m_failures = c->host->counter(
      c->ctx, "sluice_sink_redis_connect_failures_total",
      "Connection attempts of the redis sink that failed (refused, timed out, AUTH "
      "or SELECT refused).");
  uv_timer_init(c->loop, &c->reconnect_timer);
  uv_timer_init(c->loop, &c->connect_timer);
  c->reconnect_timer.data = c->connect_timer.data = c;
  c->handles_open = 2;
  return 0;
}

/* ---- the adapter's event hooks, fixed ---------------------------------------------- */

/* The event hooks of hiredis's libuv adapter, but for one fix: hiredis
 * 0.14's redisLibuvPoll returns on an error status without telling
 * hiredis, and libuv reports a socket error (a refused connect, a reset)
 * as exactly that (UV_EBADF, the handle stopped), so the failure would
 * only be seen at a timeout.  Here hiredis is handed the events it waits
 * for, and finds the error itself when it reads or writes (as hiredis
 * 1.0's adapter does).  The adapter's attach, its handle and its cleanup
 * are used as they are. */
static void poll_cb(uv_poll_t *handle, int status, int events) {
  redisLibuvEvents *p = handle->data;
  int ev = status < 0 ? p->events : events;
  if (p->context && (ev & UV_READABLE)) redisAsyncHandleRead(p->context);
  if (p->context && (ev & UV_WRITABLE)) redisAsyncHandleWrite(p->context);
}

/* hiredis asks for writability once per command queued: the handle is
 * only restarted when what it watches changes (or libuv stopped it after
 * an error). */
static void poll_update(redisLibuvEvents *p, int events) {
  if (events == p->events && (!events || uv_is_active((uv_handle_t *)&p->handle))) return;
  p->events = events;
  if (events)
    uv_poll_start(&p->handle, events, poll_cb);
  else
    uv_poll_stop(&p->handle);
}

static void ev_add_read(void *privdata) {
  redisLibuvEvents *p = privdata;
  poll_update(p, p->events | UV_READABLE);
}

static void ev_del_read(void *privdata) {
  redisLibuvEvents *p = privdata;
  poll_update(p, p->events & ~UV_READABLE);
}

static void ev_add_write(void *privdata) {
  redisLibuvEvents *p = privdata;
  poll_update(p, p->events | UV_WRITABLE);
}

static void ev_del_write(void *privdata) {
  redisLibuvEvents *p = privdata;
  poll_update(p, p->events & ~UV_WRITABLE);
}

/* ---- attempts ------------------------------------------------------------------------- */

static void start_attempt(rs_conn_t *c);

static void on_reconnect_timer(uv_timer_t *t) {
  start_attempt(t->data);
}

/* Forgets the context and frees it (see the top of the file). */
static void drop_context(rs_conn_t *c) {
  redisAsyncContext *ac = c->ac;
  if (!ac) return;
  c->ac = NULL;
  c->host->metric_set(c->m_connected, 0);
  redisAsyncFree(ac);
}

static uint64_t backoff_ms(unsigned attempts) {
  uint64_t d = RECONNECT_MIN_MS;
  for (unsigned i = 1; i < attempts && d < RECONNECT_MAX_MS; i++) d *= 2;
  if (d > RECONNECT_MAX_MS) d = RECONNECT_MAX_MS;
  return d / 2 + (uint64_t)rand() %
                     (d / 2 + 1); /* 50-100%: sinks recovering together do not retry in step */
}

static void down(rs_conn_t *c, uint64_t delay_ms) {
  c->state = RS_CONN_DOWN;
  uv_timer_stop(&c->connect_timer);
  if (c->closing) return;
  uv_timer_start(&c->reconnect_timer, on_reconnect_timer, delay_ms, 0);
  c->on_change(c->arg);
}

/* An attempt failed (last_error says why). */
static void attempt_failed(rs_conn_t *c, bool auth) {
  drop_context(c);
  c->attempts++;
  c->host->metric_add(c->m_failures, 1);
  uint64_t delay = backoff_ms(c->attempts);
  if (auth)
    c->host->log(
        c->ctx, SLUICE_LOG_ERROR,
        "redis at %s refused the credentials: %s (check username and password; attempt %u, next in "
        "%" PRIu64 " ms)",
        c->where, c->last_error, c->attempts, delay);
  else
    c->host->log(c->ctx, SLUICE_LOG_WARN,
                 "cannot connect to redis at %s: %s (attempt %u, next in %" PRIu64 " ms)", c->where,
                 c->last_error, c->attempts, delay);
  down(c, delay);
}

static void on_next_address(uv_timer_t *t);

/* A transport failure (refused, reset) within an attempt: the next of the
 * host's addresses is tried (localhost may be ::1 and 127.0.0.1, the
 * server listening on one), from the loop rather than from inside hiredis. */
static void try_next_address(rs_conn_t *c) {
  drop_context(c);
  if (c->addr_i + 1 >= c->naddrs) {
    attempt_failed(c, false);
    return;
  }
  c->host->log(c->ctx, SLUICE_LOG_DEBUG, "redis at %s: %s on %s; trying %s", c->where,
               c->last_error, c->addrs[c->addr_i], c->addrs[c->addr_i + 1]);
  c->addr_i++;
  uv_timer_start(&c->reconnect_timer, on_next_address, 0, 0);
}

static void on_handshake(redisAsyncContext *ac, void *r, void *privdata) {
  rs_conn_t *c = ac->data;
  redisReply *reply = r;
  const char *what = privdata;
  if (!c || c->ac != ac || c->state != RS_CONN_CONNECTING) return;
  if (!reply) return; /* the connection went: on_connect or on_disconnect say so */
  if (reply->type == REDIS_REPLY_ERROR) {
    bool auth = strcmp(what, "AUTH") == 0 || rs_is_auth_error(reply->str, reply->len);
    set_error(c, "%s: %.*s", what, (int)reply->len, reply->str);
    attempt_failed(c, auth);
    return;
  }
  if (--c->handshake_left > 0) return;
  uv_timer_stop(&c->connect_timer);
  c->state = RS_CONN_READY;
  c->host->metric_set(c->m_connected, 1);
  if (c->attempts)
    c->host->log(c->ctx, SLUICE_LOG_INFO, "connected to redis at %s after %u failed attempts",
                 c->where, c->attempts);
  else
    c->host->log(c->ctx, SLUICE_LOG_DEBUG, "connected to redis at %s", c->where);
  c->attempts = 0;
  c->on_change(c->arg);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  rs_conn_t *c = ac->data;
  if (!c || c->ac != ac || status == REDIS_OK) return;
  /* hiredis frees the context when this returns. */
  set_error(c, "%s", ac->errstr[0] ? ac->errstr : "connect failed");
  c->ac = NULL;
  try_next_address(c);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  rs_conn_t *c = ac->data;
  (void)status;
  if (!c || c->ac != ac) return;
  /* hiredis frees the context when this returns; the replies still due
   * have been called with NULL. */
  c->ac = NULL;
  c->host->metric_set(c->m_connected, 0);
  if (c->state == RS_CONN_CONNECTING) {
    set_error(c, "%s", ac->errstr[0] ? ac->errstr : "connection closed by the server");
    try_next_address(c);
    return;
  }
  set_error(c, "%s", ac->errstr[0] ? ac->errstr : "closed by the server");
  c->host->log(c->ctx, SLUICE_LOG_WARN, "lost the connection to redis at %s: %s; reconnecting",
               c->where, c->last_error);
  down(c, 0);
}

/* Connects to c->addrs[c->addr_i] (or the unix path) and queues the
 * handshake. */
static void open_context(rs_conn_t *c) {
  redisAsyncContext *ac = c->unix_path ? redisAsyncConnectUnix(c->unix_path)
                                       : redisAsyncConnect(c->addrs[c->addr_i], c->port);
  if (!ac) {
    set_error(c, "out of memory");
    attempt_failed(c, false);
    return;
  }
  if (ac->err) {
    set_error(c, "%s", ac->errstr);
    redisAsyncFree(ac);
    try_next_address(c);
    return;
  }
  ac->data = c;
  if (redisLibuvAttach(ac, c->loop) != REDIS_OK) {
    set_error(c, "cannot watch the socket");
    redisAsyncFree(ac);
    attempt_failed(c, false);
    return;
  }
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  c->ac = ac;
  redisAsyncSetConnectCallback(
      ac, on_connect); /* after attaching: it waits for the socket to be writable */
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  c->handshake_left = 0;
  int r = REDIS_OK;
  if (c->password) {
    const char *argv[3] = {"AUTH", c->username ? c->username : c->password, c->password};
    size_t lens[3] = {4, strlen(argv[1]), strlen(c->password)};
    r |= redisAsyncCommandArgv(ac, on_handshake, "AUTH", c->username ? 3 : 2, argv, lens);
    c->handshake_left++;
  }
  if (c->db) {
    char db[24];
    snprintf(db, sizeof db, "%" PRId64, c->db);
    const char *argv[2] = {"SELECT", db};
    size_t lens[2] = {6, strlen(db)};
    r |= redisAsyncCommandArgv(ac, on_handshake, "SELECT", 2, argv, lens);
    c->handshake_left++;
  }
  /* PING answers once AUTH and SELECT have: it also catches a server that
   * answers every command with an error (protected mode, too many clients). */
  const char *ping = "PING";
  size_t pl = 4;
  r |= redisAsyncCommandArgv(ac, on_handshake, "PING", 1, &ping, &pl);
  c->handshake_left++;
  if (r != REDIS_OK) {
    set_error(c, "cannot queue the handshake: %s", ac->errstr[0] ? ac->errstr : "out of memory");
    attempt_failed(c, false);
  }
}

static void on_next_address(uv_timer_t *t) {
  rs_conn_t *c = t->data;
  if (!c->closing && c->state == RS_CONN_CONNECTING) open_context(c);
}

static void resolve(rs_conn_t *c);
static void maybe_closed(rs_conn_t *c);

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  rs_conn_t *c = req->data;
  c->resolving = false;
  bool abandoned = c->resolve_abandoned;
  c->resolve_abandoned = false;
  if (c->closing || abandoned) {
    uv_freeaddrinfo(res);
    maybe_closed(c);
    return;
  }
  if (status == UV_ECANCELED) { /* a lookup given up, then taken on by a new attempt */
    uv_freeaddrinfo(res);
    resolve(c);
    return;
  }
  if (status < 0 || !res) {
    set_error(c, "cannot resolve %s: %s", c->hostname, uv_strerror(status));
    uv_freeaddrinfo(res);
    attempt_failed(c, false);
    return;
  }
  c->naddrs = c->addr_i = 0;
  for (struct addrinfo *ai = res; ai && c->naddrs < RS_CONN_MAX_ADDRS; ai = ai->ai_next) {
    char ip[INET6_ADDRSTRLEN] = "";
    if (ai->ai_family == AF_INET6)
      uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, ip, sizeof ip);
    else if (ai->ai_family == AF_INET)
      uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, ip, sizeof ip);
    bool seen = !ip[0];
    for (int i = 0; i < c->naddrs && !seen; i++) seen = strcmp(c->addrs[i], ip) == 0;
    if (!seen) memcpy(c->addrs[c->naddrs++], ip, sizeof ip);
  }
  uv_freeaddrinfo(res);
  if (!c->naddrs) {
    set_error(c, "cannot resolve %s: no address", c->hostname);
    attempt_failed(c, false);
    return;
  }
  c->state = RS_CONN_CONNECTING;
  open_context(c);
}

static void resolve(rs_conn_t *c) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  c->gai.data = c;
  int r = uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->hostname, c->port_text, &hints);
  if (r < 0) {
    set_error(c, "cannot resolve %s: %s", c->hostname, uv_strerror(r));
    attempt_failed(c, false);
    return;
  }
  c->resolving = true;
}

static void on_connect_timeout(uv_timer_t *t) {
  rs_conn_t *c = t->data;
  if (c->state != RS_CONN_RESOLVING && c->state != RS_CONN_CONNECTING) return;
  if (c->resolving) {
    /* A lookup already running cannot be cancelled: its answer is
     * ignored when it comes (or taken by the next attempt). */
    uv_cancel((uv_req_t *)&c->gai);
    c->resolve_abandoned = true;
  }
  set_error(c, "not connected within connect_timeout (%" PRIu64 " ms)", c->connect_timeout_ms);
  attempt_failed(c, false);
}

static void start_attempt(rs_conn_t *c) {
  if (c->closing) return;
  uv_timer_start(&c->connect_timer, on_connect_timeout, c->connect_timeout_ms, 0);
  unsigned char addr[sizeof(struct in6_addr)];
  if (c->unix_path || inet_pton(AF_INET, c->hostname, addr) == 1 ||
      inet_pton(AF_INET6, c->hostname, addr) == 1) {
    c->state = RS_CONN_CONNECTING;
    c->naddrs = 1;
    c->addr_i = 0;
    snprintf(c->addrs[0], sizeof c->addrs[0], "%s", c->unix_path ? "" : c->hostname);
    open_context(c);
    return;
  }
  c->state = RS_CONN_RESOLVING;
  if (c->resolving) { /* the last attempt's lookup still runs: this one takes its answer */
    c->resolve_abandoned = false;
    return;
  }
  resolve(c);
}

void rs_conn_start(rs_conn_t *c) {
  start_attempt(c);
}

void rs_conn_fail(rs_conn_t *c, const char *why) {
  if (c->state != RS_CONN_READY) return;
  set_error(c, "%s", why);
  c->host->log(c->ctx, SLUICE_LOG_WARN, "redis at %s: %s; reconnecting", c->where, why);
  drop_context(c);
  c->attempts++;
  down(c, backoff_ms(c->attempts));
}

/* ---- closing ---------------------------------------------------------------------------- */

static void maybe_closed(rs_conn_t *c) {
  if (!c->closing || c->handles_open || c->resolving) return;
  free_strings(c);
  c->on_closed(c->arg);
}

static void on_handle_closed(uv_handle_t *h) {
  rs_conn_t *c = h->data;
  c->handles_open--;
  maybe_closed(c);
}

void rs_conn_close(rs_conn_t *c, void (*on_closed)(void *arg)) {
  c->closing = true;
  c->on_closed = on_closed;
  drop_context(c);
  c->state = RS_CONN_DOWN;
  if (c->resolving) uv_cancel((uv_req_t *)&c->gai);
  uv_close((uv_handle_t *)&c->reconnect_timer, on_handle_closed);
  uv_close((uv_handle_t *)&c->connect_timer, on_handle_closed);
}
