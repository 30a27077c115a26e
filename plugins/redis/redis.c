/* The `redis` sink plugin: each row written to Redis under a key filled
 * from its fields (SET of the row's JSON, HSET of its fields, or ZADD of a
 * score and member), through hiredis's async API attached to the jobs loop
 * with hiredis's libuv adapter: no blocking call, no thread of its own.
 * Sees only the SDK header.
 *
 * Order.  Writes are queued and carried out one at a time: a write's
 * commands are pipelined, and the next write starts only when every reply
 * of this one has arrived, so two rows for one key reach Redis in the
 * order the host gave them.  The host's retries can still give them out of
 * order (redis_guard.h says how the sink keeps a retried row from
 * overwriting a newer one).
 *
 * Failures.  An error reply fails its row: WRONGTYPE and other refusals
 * are FATAL, a server loading, busy, out of memory or read-only is RETRY
 * (redis_cmd.c).  A lost connection, or no reply within command_timeout,
 * fails the rows still without a reply as RETRY (a write may or may not
 * have been applied; writing it again is harmless, it overwrites), and the
 * sink reconnects: at once after a connection that worked, then with a
 * doubling backoff (100 ms to 5 s, jittered) while attempts fail.  While
 * attempts fail, writes fail RETRY and the host retries them on its own
 * backoff.  Each failed attempt is logged (a refused AUTH at ERROR) with
 * the address and the reason.
 *
 * Connecting.  The host name is resolved on libuv's thread pool (hiredis
 * would block in getaddrinfo), then hiredis connects to the address;
 * AUTH (the ACL form with a username), SELECT and a PING follow in the
 * same pipeline, and the connection is ready when the PING's answer
 * comes.  connect_timeout bounds it all: hiredis 0.14 has no timeouts of
 * its own for async contexts, so both timeouts are timers of the sink.
 *
 * Lifetimes.  Every report to the host (write_done) is made from the
 * sink's `kick` timer, never from inside a hiredis callback or from inside
 * write, so the host may write or destroy from inside write_done.  The
 * hiredis context is freed by hiredis after its disconnect callback, or by
 * the sink (redisAsyncFree) outside hiredis's callbacks; the sink forgets
 * it first, so callbacks that run during the free see a context that is
 * no longer the sink's.  The instance is freed once its uv handles are
 * closed and no name resolution is running. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup, getaddrinfo under -std=c11 */
#endif

#include <arpa/inet.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sluice/sink.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include <hiredis/adapters/libuv.h>

#include "redis_cmd.h"
#include "redis_guard.h"

#define MS 1000000LL
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 5000
#define GUARD_MAX_RECORDS 1000000
#define MAX_ADDRS 8

typedef struct {
  char *address, *username, *password; /* owned by the host */
  int64_t db;
  char *key;
  int mode;
  char *score_field, *member;
  int64_t ttl_ns, connect_timeout_ns, command_timeout_ns;
} redis_conf_t;

static const sluice_opt_t redis_opts[] = {
    {.name = "address",
     .type = SLUICE_OPT_STRING,
     .def = "\"127.0.0.1:6379\"",
     .offset = offsetof(redis_conf_t, address),
     .help = "Redis server: `host:port` (a name, an IPv4 address or `[IPv6]:port`; the port defaults to 6379), "
             "or the path of a unix socket (`/run/redis/redis.sock`)."},
    {.name = "username",
     .type = SLUICE_OPT_STRING,
     .offset = offsetof(redis_conf_t, username),
     .help = "ACL user (Redis 6 and later): authenticates with `AUTH username password`. Needs password."},
    {.name = "password",
     .type = SLUICE_OPT_STRING,
     .flags = SLUICE_OPT_SECRET,
     .offset = offsetof(redis_conf_t, password),
     .help = "Password sent with AUTH on each connection (`requirepass`, or the ACL user's)."},
    {.name = "db",
     .type = SLUICE_OPT_INT,
     .def = "0",
     .min = 0,
     .max = 1000000,
     .offset = offsetof(redis_conf_t, db),
     .help = "Database number, selected with SELECT on each connection."},
    {.name = "key",
     .type = SLUICE_OPT_STRING,
     .flags = SLUICE_OPT_REQUIRED,
     .offset = offsetof(redis_conf_t, key),
     .help = "Key of each row, a template of the row's fields: `\"pv:${page}\"`, "
             "`\"errors:${service}:${window_start}\"`. A row whose field is missing or null is refused (FATAL)."},
    {.name = "mode",
     .type = SLUICE_OPT_ENUM,
     .def = "\"set\"",
     .choices = "set|hash|zadd",
     .offset = offsetof(redis_conf_t, mode),
     .help = "`set`: SET the key to the row's JSON; `hash`: HSET one hash field per row field (null fields are "
             "deleted); `zadd`: ZADD `member` with the score from `score_field` to the sorted set at the key."},
    {.name = "score_field",
     .type = SLUICE_OPT_STRING,
     .offset = offsetof(redis_conf_t, score_field),
     .help = "mode = \"zadd\": the numeric field of the row that is the member's score (`errors`)."},
    {.name = "member",
     .type = SLUICE_OPT_STRING,
     .offset = offsetof(redis_conf_t, member),
     .help = "mode = \"zadd\": the member, a template like `key` (`\"${service}\"`)."},
    {.name = "ttl",
     .type = SLUICE_OPT_DURATION,
     .def = "\"0s\"",
     .min = 0,
     .max = 365LL * 86400 * 1000 * MS,
     .offset = offsetof(redis_conf_t, ttl_ns),
     .help = "Expiry set on the key with each write (SET ... PX, or PEXPIRE); 0: none."},
    {.name = "connect_timeout",
     .type = SLUICE_OPT_DURATION,
     .def = "\"5s\"",
     .min = 1 * MS,
     .max = 3600LL * 1000 * MS,
     .offset = offsetof(redis_conf_t, connect_timeout_ns),
     .help = "Longest wait for a connection to be ready: name resolution, TCP connect, AUTH, SELECT."},
    {.name = "command_timeout",
     .type = SLUICE_OPT_DURATION,
     .def = "\"10s\"",
     .min = 1 * MS,
     .max = 3600LL * 1000 * MS,
     .offset = offsetof(redis_conf_t, command_timeout_ns),
     .help = "Longest wait for the next reply while a write's replies are due; past it the connection is "
             "dropped, the rows without a reply are retried, and the sink reconnects."},
    {0},
};

/* ---- state --------------------------------------------------------------------- */

typedef struct redis_sink redis_sink_t;
typedef struct op op_t;

/* What a row of a write became. */
typedef struct {
  sluice_status_t status; /* OK until a command of the row fails */
  char *msg;              /* owned; the first failure's */
  uint64_t seq;           /* its place in the order rows came in (redis_guard.h) */
  size_t ident_off, ident_len; /* in op->idents */
  bool sent, failed_conn, stale;
} row_t;

/* A reply's privdata: the write and the row it is for. */
typedef struct {
  op_t *op;
  size_t row;
} cmd_ref_t;

/* A queued write.  The rows are the host's until write_done. */
struct op {
  op_t *next;
  sluice_write_t *w;
  const sluice_row_t *const *rows;
  size_t n;
  bool started;
  size_t pending; /* replies still due */
  row_t *row;
  cmd_ref_t *refs;
  rs_buf_t idents; /* each row's key (and member) */
  char lost[768];  /* why the rows without a reply failed */
};

typedef enum { CONN_DOWN, CONN_RESOLVING, CONN_CONNECTING, CONN_READY } conn_state_t;

struct redis_sink {
  const sluice_host_t *host; /* borrowed until destroyed */
  sluice_ctx_t *ctx;
  uv_loop_t *loop;

  /* Where and how, copied from the options. */
  char *where; /* the address as written, for logs */
  char *hostname, *port_text, *unix_path;
  int port;
  char *username, *password;
  int64_t db;
  rs_tmpl_t *key, *member;
  char *score_field;
  rs_spec_t spec;
  uint64_t connect_timeout_ms, command_timeout_ms;

  conn_state_t state;
  redisAsyncContext *ac; /* NULL unless connecting or ready */
  int handshake_left;    /* replies of AUTH, SELECT, PING still due */
  uv_getaddrinfo_t gai;
  bool resolving, resolve_abandoned;
  char addrs[MAX_ADDRS][INET6_ADDRSTRLEN]; /* the host's addresses, tried in turn within an attempt */
  int naddrs, addr_i;
  unsigned attempts; /* failed connection attempts in a row */
  char last_error[256];

  uv_timer_t kick, reconnect_timer, connect_timer, command_timer;
  int handles_open;

  op_t *head, *tail;
  bool closing, closed_handles, released;
  rs_cmds_t cmds;    /* scratch for building a row's commands */
  rs_guard_t *guard;
  uint64_t next_seq;
  bool guard_full_logged;

  sluice_metric_t *m_connected, *m_connect_failures, *m_stale;
};

static void on_kick(uv_timer_t *t);
static void kick(redis_sink_t *s) { uv_timer_start(&s->kick, on_kick, 0, 0); }

/* ---- creating ------------------------------------------------------------------ */

static int fail_create(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_create(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* host:port, [v6]:port, host (port 6379), /path or unix:/path. */
static int parse_address(redis_sink_t *s, const char *a, char *err, size_t errlen) {
  if (strncmp(a, "unix:", 5) == 0) a += 5;
  if (a[0] == '/') return (s->unix_path = strdup(a)) ? 0 : fail_create(err, errlen, "out of memory");
  const char *host = a, *colon;
  size_t hl;
  if (a[0] == '[') {
    const char *close = strchr(a, ']');
    if (!close || (close[1] && close[1] != ':'))
      return fail_create(err, errlen, "address \"%s\": write an IPv6 address as [addr]:port", a);
    host = a + 1;
    hl = (size_t)(close - host);
    colon = close[1] ? close + 1 : NULL;
  } else {
    colon = strrchr(a, ':');
    if (colon && strchr(a, ':') != colon)
      return fail_create(err, errlen, "address \"%s\": write an IPv6 address as [addr]:port", a);
    hl = colon ? (size_t)(colon - a) : strlen(a);
  }
  if (hl == 0) return fail_create(err, errlen, "address \"%s\" has no host", a);
  long port = 6379;
  if (colon) {
    char *end;
    port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 1 || port > 65535)
      return fail_create(err, errlen, "address \"%s\": the port must be a number from 1 to 65535", a);
  }
  char pt[8];
  snprintf(pt, sizeof pt, "%ld", port);
  s->port = (int)port;
  if (!(s->hostname = strndup(host, hl)) || !(s->port_text = strdup(pt)))
    return fail_create(err, errlen, "out of memory");
  return 0;
}

static void sink_free(redis_sink_t *s) {
  free(s->where);
  free(s->hostname);
  free(s->port_text);
  free(s->unix_path);
  free(s->username);
  free(s->password);
  free(s->score_field);
  rs_tmpl_free(s->key);
  rs_tmpl_free(s->member);
  rs_cmds_free(&s->cmds);
  rs_guard_free(s->guard);
  free(s);
}

static void start_connect(redis_sink_t *s);

static int redis_create(const sluice_host_t *host, sluice_ctx_t *ctx, const void *conf_, void *loop, void **self,
                        char *err, size_t errlen) {
  const redis_conf_t *conf = conf_;
  *self = NULL;
  if (host->abi_major != SLUICE_SINK_ABI_MAJOR)
    return fail_create(err, errlen, "the agent's sink ABI is %u.%u, the redis sink's %d.%d",
                       (unsigned)host->abi_major, (unsigned)host->abi_minor, SLUICE_SINK_ABI_MAJOR,
                       SLUICE_SINK_ABI_MINOR);
  redis_sink_t *s = calloc(1, sizeof *s);
  if (!s) return fail_create(err, errlen, "out of memory");
  s->host = host;
  s->ctx = ctx;
  s->loop = loop;
  s->db = conf->db;
  s->connect_timeout_ms = (uint64_t)(conf->connect_timeout_ns / MS);
  s->command_timeout_ms = (uint64_t)(conf->command_timeout_ns / MS);
  if (conf->username && !conf->password) {
    fail_create(err, errlen, "username needs password");
    goto fail;
  }
  if (conf->mode == RS_MODE_ZADD && (!conf->score_field || !conf->member)) {
    fail_create(err, errlen, "mode = \"zadd\" needs score_field and member");
    goto fail;
  }
  if (conf->mode != RS_MODE_ZADD && (conf->score_field || conf->member)) {
    fail_create(err, errlen, "score_field and member are for mode = \"zadd\"");
    goto fail;
  }
  if (!(s->where = strdup(conf->address)) || (conf->username && !(s->username = strdup(conf->username))) ||
      (conf->password && !(s->password = strdup(conf->password))) ||
      (conf->score_field && !(s->score_field = strdup(conf->score_field))) ||
      !(s->guard = rs_guard_new(GUARD_MAX_RECORDS))) {
    fail_create(err, errlen, "out of memory");
    goto fail;
  }
  if (parse_address(s, conf->address, err, errlen) || rs_tmpl_compile(conf->key, "key", &s->key, err, errlen) ||
      (conf->member && rs_tmpl_compile(conf->member, "member", &s->member, err, errlen)))
    goto fail;
  uint64_t ttl_ms = (uint64_t)(conf->ttl_ns / MS);
  if (conf->ttl_ns > 0 && ttl_ms == 0) ttl_ms = 1;
  s->spec = (rs_spec_t){.mode = conf->mode, .key = s->key, .member = s->member, .score_field = s->score_field,
                        .ttl_ms = ttl_ms};
  s->m_connected = host->gauge(ctx, "sluice_sink_redis_connected", "1 while the redis sink's connection is ready.");
  s->m_connect_failures = host->counter(ctx, "sluice_sink_redis_connect_failures_total",
                                        "Connection attempts of the redis sink that failed (refused, timed out, "
                                        "AUTH or SELECT refused).");
  s->m_stale = host->counter(ctx, "sluice_sink_redis_stale_rows_total",
                             "Retried rows the redis sink did not write because a newer row for their key was "
                             "written meanwhile.");
  /* The loop does not run yet: handles made now are safe, and the first
   * connection starts with it. */
  uv_timer_init(s->loop, &s->kick);
  uv_timer_init(s->loop, &s->reconnect_timer);
  uv_timer_init(s->loop, &s->connect_timer);
  uv_timer_init(s->loop, &s->command_timer);
  s->kick.data = s->reconnect_timer.data = s->connect_timer.data = s->command_timer.data = s;
  s->handles_open = 4;
  start_connect(s);
  *self = s;
  return 0;
fail:
  sink_free(s);
  return -1;
}

/* ---- connecting ------------------------------------------------------------------- */

/* The event hooks of hiredis's libuv adapter, but for one fix: hiredis
 * 0.14's redisLibuvPoll returns on an error status without telling
 * hiredis, and libuv reports a socket error (a refused connect, a reset)
 * as exactly that (UV_EBADF, the handle stopped), so the failure would
 * only be seen at a timeout.  Here hiredis is handed the events it waits
 * for, and finds the error itself when it reads or writes (as hiredis 1.0's
 * adapter does).  The adapter's attach, its handle and its cleanup are
 * used as they are. */
static void poll_cb(uv_poll_t *handle, int status, int events) {
  redisLibuvEvents *p = handle->data;
  int ev = status < 0 ? p->events : events;
  if (p->context && (ev & UV_READABLE)) redisAsyncHandleRead(p->context);
  if (p->context && (ev & UV_WRITABLE)) redisAsyncHandleWrite(p->context);
}

static void poll_update(redisLibuvEvents *p) {
  if (p->events)
    uv_poll_start(&p->handle, p->events, poll_cb);
  else
    uv_poll_stop(&p->handle);
}

static void ev_add_read(void *privdata) {
  redisLibuvEvents *p = privdata;
  p->events |= UV_READABLE;
  poll_update(p);
}

static void ev_del_read(void *privdata) {
  redisLibuvEvents *p = privdata;
  p->events &= ~UV_READABLE;
  poll_update(p);
}

static void ev_add_write(void *privdata) {
  redisLibuvEvents *p = privdata;
  p->events |= UV_WRITABLE;
  poll_update(p);
}

static void ev_del_write(void *privdata) {
  redisLibuvEvents *p = privdata;
  p->events &= ~UV_WRITABLE;
  poll_update(p);
}

static void on_connect_timeout(uv_timer_t *t);
static void on_reconnect_timer(uv_timer_t *t);

static void set_error(redis_sink_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(redis_sink_t *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->last_error, sizeof s->last_error, fmt, ap);
  va_end(ap);
}

/* Forgets the context and frees it; its pending callbacks run now (or,
 * inside a hiredis callback, when that returns) and find it is not the
 * sink's any more. */
static void drop_context(redis_sink_t *s) {
  redisAsyncContext *ac = s->ac;
  if (!ac) return;
  s->ac = NULL;
  s->host->metric_set(s->m_connected, 0);
  redisAsyncFree(ac);
}

static void schedule_reconnect(redis_sink_t *s, uint64_t delay_ms) {
  s->state = CONN_DOWN;
  if (s->closing) return;
  uv_timer_start(&s->reconnect_timer, on_reconnect_timer, delay_ms, 0);
}

static uint64_t backoff_ms(unsigned attempts) {
  uint64_t d = RECONNECT_MIN_MS;
  for (unsigned i = 1; i < attempts && d < RECONNECT_MAX_MS; i++) d *= 2;
  if (d > RECONNECT_MAX_MS) d = RECONNECT_MAX_MS;
  return d / 2 + (uint64_t)rand() % (d / 2 + 1); /* 50-100%: sinks recovering together do not retry in step */
}

/* An attempt failed (last_error says why): the writes waiting fail, and
 * the next attempt comes after the backoff. */
static void attempt_failed(redis_sink_t *s, bool auth) {
  uv_timer_stop(&s->connect_timer);
  drop_context(s);
  s->attempts++;
  s->host->metric_add(s->m_connect_failures, 1);
  uint64_t delay = backoff_ms(s->attempts);
  if (auth)
    s->host->log(s->ctx, SLUICE_LOG_ERROR,
                 "redis at %s refused the credentials: %s (check username and password; attempt %u, next in "
                 "%" PRIu64 " ms)",
                 s->where, s->last_error, s->attempts, delay);
  else
    s->host->log(s->ctx, SLUICE_LOG_WARN, "cannot connect to redis at %s: %s (attempt %u, next in %" PRIu64 " ms)",
                 s->where, s->last_error, s->attempts, delay);
  schedule_reconnect(s, delay);
  kick(s);
}

static void try_next_address(redis_sink_t *s);

static void on_handshake(redisAsyncContext *ac, void *r, void *privdata) {
  redis_sink_t *s = ac->data;
  redisReply *reply = r;
  const char *what = privdata;
  if (!s || s->ac != ac || s->state != CONN_CONNECTING) return;
  if (!reply) return; /* the connection went: on_connect or on_disconnect say so */
  if (reply->type == REDIS_REPLY_ERROR) {
    bool auth = strcmp(what, "AUTH") == 0 || rs_is_auth_error(reply->str, reply->len);
    set_error(s, "%s: %.*s", what, (int)reply->len, reply->str);
    attempt_failed(s, auth);
    return;
  }
  if (--s->handshake_left > 0) return;
  uv_timer_stop(&s->connect_timer);
  s->state = CONN_READY;
  s->host->metric_set(s->m_connected, 1);
  if (s->attempts)
    s->host->log(s->ctx, SLUICE_LOG_INFO, "connected to redis at %s after %u failed attempts", s->where,
                 s->attempts);
  else
    s->host->log(s->ctx, SLUICE_LOG_DEBUG, "connected to redis at %s", s->where);
  s->attempts = 0;
  kick(s);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  redis_sink_t *s = ac->data;
  if (!s || s->ac != ac || status == REDIS_OK) return;
  /* hiredis frees the context when this returns. */
  set_error(s, "%s", ac->errstr[0] ? ac->errstr : "connect failed");
  s->ac = NULL;
  try_next_address(s);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  redis_sink_t *s = ac->data;
  (void)status;
  if (!s || s->ac != ac) return;
  /* hiredis frees the context when this returns; the replies still due
   * have been called with NULL. */
  s->ac = NULL;
  s->host->metric_set(s->m_connected, 0);
  if (s->state == CONN_CONNECTING) {
    set_error(s, "%s", ac->errstr[0] ? ac->errstr : "connection closed by the server");
    try_next_address(s);
    return;
  }
  s->host->log(s->ctx, SLUICE_LOG_WARN, "lost the connection to redis at %s: %s; reconnecting", s->where,
               ac->errstr[0] ? ac->errstr : "closed by the server");
  uv_timer_stop(&s->command_timer);
  schedule_reconnect(s, 0);
  kick(s);
}

/* Connects to s->addrs[s->addr_i] (or the unix path) and queues the
 * handshake. */
static void open_context(redis_sink_t *s) {
  const char *ip = s->addrs[s->addr_i];
  redisAsyncContext *ac = s->unix_path ? redisAsyncConnectUnix(s->unix_path) : redisAsyncConnect(ip, s->port);
  if (!ac) {
    set_error(s, "out of memory");
    attempt_failed(s, false);
    return;
  }
  if (ac->err) {
    set_error(s, "%s", ac->errstr);
    redisAsyncFree(ac);
    try_next_address(s);
    return;
  }
  ac->data = s;
  if (redisLibuvAttach(ac, s->loop) != REDIS_OK) {
    set_error(s, "cannot watch the socket");
    redisAsyncFree(ac);
    attempt_failed(s, false);
    return;
  }
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  s->ac = ac;
  s->state = CONN_CONNECTING;
  redisAsyncSetConnectCallback(ac, on_connect); /* after attaching: it waits for the socket to be writable */
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  s->handshake_left = 0;
  int r = REDIS_OK;
  if (s->password) {
    const char *argv[3] = {"AUTH", s->username ? s->username : s->password, s->password};
    size_t lens[3] = {4, strlen(argv[1]), strlen(s->password)};
    r |= redisAsyncCommandArgv(ac, on_handshake, "AUTH", s->username ? 3 : 2, argv, lens);
    s->handshake_left++;
  }
  if (s->db) {
    char db[24];
    snprintf(db, sizeof db, "%" PRId64, s->db);
    const char *argv[2] = {"SELECT", db};
    size_t lens[2] = {6, strlen(db)};
    r |= redisAsyncCommandArgv(ac, on_handshake, "SELECT", 2, argv, lens);
    s->handshake_left++;
  }
  /* PING answers once AUTH and SELECT have: it also catches a server that
   * answers every command with an error (protected mode, too many clients). */
  const char *ping = "PING";
  size_t pl = 4;
  r |= redisAsyncCommandArgv(ac, on_handshake, "PING", 1, &ping, &pl);
  s->handshake_left++;
  if (r != REDIS_OK) {
    set_error(s, "cannot queue the handshake: %s", ac->errstr[0] ? ac->errstr : "out of memory");
    attempt_failed(s, false);
  }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  redis_sink_t *s = req->data;
  s->resolving = false;
  bool abandoned = s->resolve_abandoned;
  s->resolve_abandoned = false;
  if (s->closing || abandoned || status == UV_ECANCELED) {
    uv_freeaddrinfo(res);
    if (s->closing) kick(s); /* the close waits for this */
    return;
  }
  if (status < 0 || !res) {
    set_error(s, "cannot resolve %s: %s", s->hostname, uv_strerror(status));
    uv_freeaddrinfo(res);
    attempt_failed(s, false);
    return;
  }
  s->naddrs = s->addr_i = 0;
  for (struct addrinfo *ai = res; ai && s->naddrs < MAX_ADDRS; ai = ai->ai_next) {
    char ip[INET6_ADDRSTRLEN] = "";
    if (ai->ai_family == AF_INET6)
      uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, ip, sizeof ip);
    else if (ai->ai_family == AF_INET)
      uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, ip, sizeof ip);
    bool seen = !ip[0];
    for (int i = 0; i < s->naddrs && !seen; i++) seen = strcmp(s->addrs[i], ip) == 0;
    if (!seen) memcpy(s->addrs[s->naddrs++], ip, sizeof ip);
  }
  uv_freeaddrinfo(res);
  if (!s->naddrs) {
    set_error(s, "cannot resolve %s: no address", s->hostname);
    attempt_failed(s, false);
    return;
  }
  open_context(s);
}

static void on_next_address(uv_timer_t *t) {
  redis_sink_t *s = t->data;
  if (s->closing || s->state != CONN_CONNECTING) return;
  open_context(s);
}

/* A transport failure (refused, reset) within an attempt: the host's next
 * address is tried (localhost may be ::1 and 127.0.0.1, the server
 * listening on one), from the loop rather than from inside hiredis. */
static void try_next_address(redis_sink_t *s) {
  drop_context(s);
  if (s->addr_i + 1 >= s->naddrs) {
    attempt_failed(s, false);
    return;
  }
  s->host->log(s->ctx, SLUICE_LOG_DEBUG, "redis at %s: %s on %s; trying %s", s->where, s->last_error,
               s->addrs[s->addr_i], s->addrs[s->addr_i + 1]);
  s->addr_i++;
  s->state = CONN_CONNECTING;
  uv_timer_start(&s->reconnect_timer, on_next_address, 0, 0);
}

static void start_connect(redis_sink_t *s) {
  if (s->closing) return;
  uv_timer_start(&s->connect_timer, on_connect_timeout, s->connect_timeout_ms, 0);
  unsigned char addr[sizeof(struct in6_addr)];
  if (s->unix_path || inet_pton(AF_INET, s->hostname, addr) == 1 || inet_pton(AF_INET6, s->hostname, addr) == 1) {
    s->state = CONN_CONNECTING;
    s->naddrs = 1;
    s->addr_i = 0;
    snprintf(s->addrs[0], sizeof s->addrs[0], "%s", s->unix_path ? "" : s->hostname);
    open_context(s);
    return;
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  s->gai.data = s;
  int r = uv_getaddrinfo(s->loop, &s->gai, on_resolved, s->hostname, s->port_text, &hints);
  if (r < 0) {
    set_error(s, "cannot resolve %s: %s", s->hostname, uv_strerror(r));
    attempt_failed(s, false);
    return;
  }
  s->resolving = true;
  s->state = CONN_RESOLVING;
}

static void on_reconnect_timer(uv_timer_t *t) { start_connect(t->data); }

static void on_connect_timeout(uv_timer_t *t) {
  redis_sink_t *s = t->data;
  if (s->state == CONN_READY || s->state == CONN_DOWN) return;
  if (s->state == CONN_RESOLVING) {
    /* A lookup already running cannot be cancelled: its answer is
     * ignored when it comes. */
    uv_cancel((uv_req_t *)&s->gai);
    s->resolve_abandoned = true;
  }
  set_error(s, "not connected within connect_timeout (%" PRIu64 " ms)", s->connect_timeout_ms);
  attempt_failed(s, false);
}

/* ---- writing ---------------------------------------------------------------------- */

static void on_command_timeout(uv_timer_t *t);

static void row_fail(op_t *op, size_t i, sluice_status_t st, const char *msg) {
  row_t *r = &op->row[i];
  /* FATAL outweighs RETRY: writing the row again would fail again. */
  if (r->status == SLUICE_FATAL || (r->status == SLUICE_RETRY && st == SLUICE_RETRY)) return;
  r->status = st;
  free(r->msg);
  r->msg = strdup(msg);
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata) {
  cmd_ref_t *ref = privdata;
  op_t *op = ref->op;
  redisReply *reply = r;
  redis_sink_t *s = ac->data;
  if (!reply) {
    /* The connection went before the reply came: the row may or may not
     * have been written. */
    if (!op->lost[0])
      snprintf(op->lost, sizeof op->lost, "connection to redis at %s lost before the reply: %s", s->where,
               ac->errstr[0] ? ac->errstr : s->last_error[0] ? s->last_error : "closed");
    op->row[ref->row].failed_conn = true;
    row_fail(op, ref->row, SLUICE_RETRY, op->lost);
  } else if (reply->type == REDIS_REPLY_ERROR) {
    char msg[512];
    snprintf(msg, sizeof msg, "redis: %.*s (key %.*s)", (int)reply->len, reply->str,
             (int)op->row[ref->row].ident_len, op->idents.p + op->row[ref->row].ident_off);
    row_fail(op, ref->row, rs_classify_error(reply->str, reply->len), msg);
  }
  if (--op->pending == 0) {
    uv_timer_stop(&s->command_timer);
    kick(s);
  } else if (reply && s->ac == ac) {
    uv_timer_start(&s->command_timer, on_command_timeout, s->command_timeout_ms, 0);
  }
}

static void on_command_timeout(uv_timer_t *t) {
  redis_sink_t *s = t->data;
  if (!s->ac || !s->head || !s->head->pending) return;
  set_error(s, "no reply within command_timeout (%" PRIu64 " ms)", s->command_timeout_ms);
  s->host->log(s->ctx, SLUICE_LOG_WARN, "redis at %s: %s; reconnecting", s->where, s->last_error);
  snprintf(s->head->lost, sizeof s->head->lost, "redis at %s: %s", s->where, s->last_error);
  /* The replies still due are called with NULL now. */
  drop_context(s);
  s->attempts++;
  schedule_reconnect(s, backoff_ms(s->attempts));
  kick(s);
}

/* Sends the commands of op's rows in one pipeline.  Rows that cannot be
 * written (a template's field missing) fail FATAL without a command; rows
 * the guard finds stale are done without one. */
static void start_op(redis_sink_t *s, op_t *op) {
  op->started = true;
  op->row = calloc(op->n ? op->n : 1, sizeof *op->row);
  op->refs = calloc(op->n ? op->n : 1, sizeof *op->refs);
  if (!op->row || !op->refs) {
    snprintf(op->lost, sizeof op->lost, "out of memory");
    return;
  }
  char why[512];
  for (size_t i = 0; i < op->n; i++) {
    row_t *row = &op->row[i];
    const sluice_row_t *sr = op->rows[i];
    row->seq = ++s->next_seq;
    op->refs[i] = (cmd_ref_t){op, i};
    if (rs_row_commands(&s->spec, s->host, sr, &s->cmds, why, sizeof why)) {
      char msg[640];
      snprintf(msg, sizeof msg, "row %s not written: %s", s->host->row_id_hex(sr), why);
      row_fail(op, i, strcmp(why, "out of memory") == 0 ? SLUICE_RETRY : SLUICE_FATAL, msg);
      continue;
    }
    const char *ident = s->cmds.text.p + s->cmds.ident_off;
    row->ident_off = op->idents.len;
    row->ident_len = s->cmds.ident_len;
    if (rs_buf_append(&op->idents, ident, s->cmds.ident_len)) {
      row->ident_len = 0;
      row_fail(op, i, SLUICE_RETRY, "out of memory");
      continue;
    }
    ident = op->idents.p + row->ident_off;
    if (rs_guard_watches(s->guard, ident, row->ident_len)) {
      size_t jl = 0;
      const char *json = s->host->row_json(sr, &jl);
      int v = rs_guard_check(s->guard, ident, row->ident_len, s->host->row_id(sr), rs_hash(json, jl), &row->seq);
      if (v == RS_GUARD_STALE) {
        row->stale = true;
        s->host->metric_add(s->m_stale, 1);
        s->host->log(s->ctx, SLUICE_LOG_DEBUG, "row %s not written again: a newer row for its key was written",
                     s->host->row_id_hex(sr));
        continue;
      }
    }
    for (size_t k = 0; k < s->cmds.ncmds; k++) {
      const char **argv;
      const size_t *lens;
      int argc;
      if (!s->ac || rs_cmds_argv(&s->cmds, k, &argv, &lens, &argc) ||
          redisAsyncCommandArgv(s->ac, on_reply, &op->refs[i], argc, argv, lens) != REDIS_OK) {
        row_fail(op, i, SLUICE_RETRY, s->ac ? "cannot queue the command" : "connection to redis lost");
        break;
      }
      row->sent = true;
      op->pending++;
    }
  }
  if (op->pending) uv_timer_start(&s->command_timer, on_command_timeout, s->command_timeout_ms, 0);
}

/* Reports op to the host and frees it; the host may write or destroy from
 * inside write_done (destroy only marks the sink closing). */
static void complete(redis_sink_t *s, op_t *op, sluice_status_t all, const char *msg) {
  sluice_write_t *w = op->w;
  if (op->started && !op->row) {
    all = SLUICE_RETRY;
    msg = "out of memory";
  }
  size_t failed = 0;
  sluice_status_t worst = SLUICE_OK;
  const char *first = NULL;
  uint64_t now = uv_now(s->loop);
  for (size_t i = 0; all == SLUICE_OK && i < op->n; i++) {
    row_t *r = &op->row[i];
    const char *ident = op->idents.p + r->ident_off;
    if (r->status == SLUICE_OK) {
      if (r->ident_len && !r->stale) rs_guard_written(s->guard, ident, r->ident_len, r->seq);
      continue;
    }
    if (r->status == SLUICE_RETRY && r->ident_len) {
      size_t jl = 0;
      const char *json = s->host->row_json(op->rows[i], &jl);
      if (rs_guard_failed(s->guard, ident, r->ident_len, s->host->row_id(op->rows[i]), rs_hash(json, jl), r->seq,
                          now) &&
          !s->guard_full_logged) {
        s->guard_full_logged = true;
        s->host->log(s->ctx, SLUICE_LOG_WARN,
                     "more than %d rows wait for a retry: a retried row may now overwrite a newer one",
                     GUARD_MAX_RECORDS);
      }
    }
    failed++;
    if (r->status > worst) worst = r->status;
    if (!first) first = r->msg;
    s->host->row_done(w, i, r->status, r->msg ? r->msg : "out of memory");
  }
  if (all != SLUICE_OK)
    s->host->write_done(w, all, msg);
  else if (failed && failed == op->n)
    s->host->write_done(w, worst, first ? first : "out of memory");
  else
    s->host->write_done(w, SLUICE_OK, NULL);
  for (size_t i = 0; op->row && i < op->n; i++) free(op->row[i].msg);
  free(op->row);
  free(op->refs);
  rs_buf_free(&op->idents);
  free(op);
}

static op_t *pop(redis_sink_t *s) {
  op_t *op = s->head;
  s->head = op->next;
  if (!s->head) s->tail = NULL;
  return op;
}

static void finish_close(redis_sink_t *s);

/* Moves the queue on: reports the head write once its replies are in,
 * starts the next when connected, fails the waiting ones while attempts
 * to connect fail, cancels them when closing. */
static void on_kick(uv_timer_t *t) {
  redis_sink_t *s = t->data;
  while (s->head) {
    op_t *op = s->head;
    if (op->started) {
      if (op->pending) return;
      complete(s, pop(s), SLUICE_OK, NULL);
      continue;
    }
    if (s->closing) {
      complete(s, pop(s), SLUICE_CANCELED, "the redis sink was closed before the rows were written");
      continue;
    }
    if (s->state == CONN_READY) {
      start_op(s, op);
      continue; /* done at once when no command was sent */
    }
    if (s->state == CONN_DOWN && s->attempts) {
      char msg[640];
      snprintf(msg, sizeof msg, "not connected to redis at %s: %s", s->where, s->last_error);
      complete(s, pop(s), SLUICE_RETRY, msg);
      continue;
    }
    return; /* connecting */
  }
  if (s->closing) finish_close(s);
}

static int redis_write(void *self, sluice_write_t *w, const sluice_row_t *const *rows, size_t n) {
  redis_sink_t *s = self;
  if (s->closing) return -1;
  op_t *op = calloc(1, sizeof *op);
  if (!op) return -1;
  op->w = w;
  op->rows = rows;
  op->n = n;
  if (s->tail)
    s->tail->next = op;
  else
    s->head = op;
  s->tail = op;
  kick(s);
  return 0;
}

/* ---- closing -------------------------------------------------------------------------- */

static void release(redis_sink_t *s) {
  const sluice_host_t *host = s->host;
  sluice_ctx_t *ctx = s->ctx;
  sink_free(s);
  host->destroyed(ctx);
}

static void on_handle_closed(uv_handle_t *h) {
  redis_sink_t *s = h->data;
  if (--s->handles_open == 0 && !s->resolving) release(s);
}

/* Nothing is queued or in flight any more. */
static void finish_close(redis_sink_t *s) {
  if (s->closed_handles) return;
  drop_context(s);
  if (s->resolving) {
    uv_cancel((uv_req_t *)&s->gai);
    return; /* on_resolved kicks again */
  }
  s->closed_handles = true;
  uv_close((uv_handle_t *)&s->kick, on_handle_closed);
  uv_close((uv_handle_t *)&s->reconnect_timer, on_handle_closed);
  uv_close((uv_handle_t *)&s->connect_timer, on_handle_closed);
  uv_close((uv_handle_t *)&s->command_timer, on_handle_closed);
}

static void redis_destroy(void *self) {
  redis_sink_t *s = self;
  s->closing = true;
  uv_timer_stop(&s->reconnect_timer);
  uv_timer_stop(&s->connect_timer);
  kick(s);
}

__attribute__((visibility("default"))) const sluice_sink_plugin_t sluice_sink_plugin = {
    SLUICE_SINK_PLUGIN_HEADER,
    .name = "redis",
    .version = "1.0.0",
    .description = "Rows to Redis (SET of the JSON, HSET of the fields, or ZADD) under a key from their fields.",
    .options = redis_opts,
    .conf_size = sizeof(redis_conf_t),
    .create = redis_create,
    .write = redis_write,
    .destroy = redis_destroy,
};
