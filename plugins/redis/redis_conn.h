/* The redis sink's connection: one hiredis async context attached to the
 * jobs loop, made ready (AUTH, SELECT, PING) and made again when it fails,
 * with a backoff.  Runs on the jobs loop; the sink (redis.c) owns it and
 * sends its commands on `ac` while the state is RS_CONN_READY.
 *
 * Attempts.  An attempt resolves the host name on libuv's thread pool
 * (hiredis would block in getaddrinfo), connects to its addresses in turn
 * until one takes the connection, then sends AUTH (the ACL form with a
 * username), SELECT and PING in one pipeline; it succeeds with the PING's
 * answer, all within connect_timeout.  A failed attempt is logged with the
 * address and the reason (a refused AUTH at ERROR, naming what to check)
 * and the next comes after a doubling backoff, 100 ms to 5 s, jittered.  A
 * connection that was ready and is lost is made again at once.
 *
 * Every change of state (ready, an attempt failed, the connection lost)
 * is reported through on_change, which may come from inside a hiredis
 * callback or from inside rs_conn_start or rs_conn_fail: it should only
 * take note (the sink starts a timer).  Replies still due when the
 * connection goes have been called with NULL by then. */
#ifndef REDIS_CONN_H
#define REDIS_CONN_H

#include <hiredis/async.h>
#include <netinet/in.h>
#include <sluice/sink.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef enum { RS_CONN_DOWN, RS_CONN_RESOLVING, RS_CONN_CONNECTING, RS_CONN_READY } rs_conn_state_t;

#define RS_CONN_MAX_ADDRS 8

typedef struct {
  const sluice_host_t *host; /* borrowed, like ctx and loop, until closed */
  sluice_ctx_t *ctx;
  uv_loop_t *loop;
  const char *address;             /* host:port, [v6]:port, host, /path, unix:/path; copied */
  const char *username, *password; /* copied; NULL: none */
  int64_t db;
  uint64_t connect_timeout_ms;
  void (*on_change)(void *arg);
  void *arg;
} rs_conn_opts_t;

/* Embedded in its owner.  The owner reads state, ac (the context while
 * ready), attempts (failed attempts in a row) and last_error; the rest is
 * the connection's. */
typedef struct rs_conn {
  rs_conn_state_t state;
  redisAsyncContext *ac;
  unsigned attempts;
  char last_error[256];
  char *where; /* the address as written */

  const sluice_host_t *host;
  sluice_ctx_t *ctx;
  uv_loop_t *loop;
  char *hostname, *port_text, *unix_path, *username, *password;
  int port;
  int64_t db;
  uint64_t connect_timeout_ms;
  void (*on_change)(void *arg);
  void *arg;
  int handshake_left;
  uv_getaddrinfo_t gai;
  bool resolving, resolve_abandoned;
  char addrs[RS_CONN_MAX_ADDRS][INET6_ADDRSTRLEN];
  int naddrs, addr_i;
  uv_timer_t reconnect_timer, connect_timer;
  int handles_open;
  bool closing;
  void (*on_closed)(void *arg);
  sluice_metric_t *m_connected, *m_failures;
} rs_conn_t;

/* Checks the address and makes the timers (safe before the loop runs).
 * 0, or -1 with the reason in err; then nothing needs closing. */
int rs_conn_init(rs_conn_t *c, const rs_conn_opts_t *o, char *err, size_t errlen);

/* Starts the first attempt. */
void rs_conn_start(rs_conn_t *c);

/* The owner gave up on the connection (a reply did not come): it is
 * dropped now, replies still due are called with NULL, and the next
 * attempt comes after the backoff. */
void rs_conn_fail(rs_conn_t *c, const char *why);

/* Drops the connection, stops the attempts, and calls on_closed(arg) once
 * nothing of it is left on the loop (its handles closed, its lookup
 * answered); then its memory may go.  on_change is not called again. */
void rs_conn_close(rs_conn_t *c, void (*on_closed)(void *arg));

#endif
