/* The `redis` sink plugin: each row written to Redis under a key filled
 * from its fields (SET of the row's JSON, HSET of its fields, or ZADD of a
 * score and member), through hiredis's async API attached to the jobs loop
 * with hiredis's libuv adapter: no blocking call, no thread of its own.
 * A job's redis_hll aggregates named in hll_fields are also SET, each at
 * "<key>:<field>", as Redis's own HyperLogLog strings (the host's row_hll),
 * for users to PFMERGE and PFCOUNT.
 * Sees only the SDK header.  This file: the descriptor, the options, and
 * the queue of writes; redis_conn.c makes the connection (and makes it
 * again), redis_cmd.c the commands, redis_guard.c keeps retries from
 * overwriting newer rows.
 *
 * Order.  Writes are queued and carried out one at a time: a write's
 * commands are pipelined, and the next write starts only when every reply
 * of this one has arrived, so two rows for one key reach Redis in the
 * order the host gave them.  The host's retries can still give them out of
 * order: redis_guard.h says how the sink keeps a retried row from
 * overwriting a newer one.
 *
 * Failures.  An error reply fails its row: WRONGTYPE and other refusals
 * are FATAL, a server loading, busy, out of memory or read-only is RETRY
 * (redis_cmd.c).  A lost connection, or no reply within command_timeout,
 * fails the rows still without a reply as RETRY (the write may or may not
 * have been applied; writing it again overwrites), and the connection is
 * made again.  While attempts to connect fail, writes fail RETRY at once
 * with the attempt's error, and the host retries them on its own backoff.
 *
 * Lifetimes.  Every report to the host (write_done) is made from the
 * sink's `kick` timer, never from inside a hiredis callback or from inside
 * write, so the host may write or destroy from inside write_done.  The
 * instance is freed once its handles and its connection are closed. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup under -std=c11 */
#endif

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <sluice/sink.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "redis_cmd.h"
#include "redis_conn.h"
#include "redis_guard.h"

#define MS 1000000LL
#define GUARD_MAX_RECORDS 1000000

typedef struct {
  char *address, *username, *password; /* owned by the host */
  int64_t db;
  char *key;
  int mode;
  char *score_field, *member;
  int64_t ttl_ns, connect_timeout_ns, command_timeout_ns;
  sluice_str_list_t hll_fields;
} redis_conf_t;

static const sluice_opt_t redis_opts[] = {
    {.name = "address",
     .type = SLUICE_OPT_STRING,
     .def = "\"127.0.0.1:6379\"",
     .offset = offsetof(redis_conf_t, address),
     .help = "Redis server: `host:port` (a name, an IPv4 address or `[IPv6]:port`; the port "
             "defaults to 6379), or the path of a unix socket (`/run/redis/redis.sock`)."},
    {.name = "username",
     .type = SLUICE_OPT_STRING,
     .offset = offsetof(redis_conf_t, username),
     .help = "ACL user (Redis 6 and later): authenticates with `AUTH username password`. "
             "Needs password."},
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
             "`\"errors:${service}:${window_start}\"`. A row whose field is missing or null is "
             "refused (FATAL)."},
    {.name = "mode",
     .type = SLUICE_OPT_ENUM,
     .def = "\"set\"",
     .choices = "set|hash|zadd",
     .offset = offsetof(redis_conf_t, mode),
     .help = "`set`: SET the key to the row's JSON; `hash`: HSET one hash field per row field "
             "(null fields are deleted); `zadd`: ZADD `member` with the score from `score_field` "
             "to the sorted set at the key."},
    {.name = "score_field",
     .type = SLUICE_OPT_STRING,
     .offset = offsetof(redis_conf_t, score_field),
     .help = "mode = \"zadd\": the numeric field of the row that is the member's score "
             "(`errors`)."},
    {.name = "member",
     .type = SLUICE_OPT_STRING,
     .offset = offsetof(redis_conf_t, member),
     .help = "mode = \"zadd\": the member, a template like `key` (`\"${service}\"`)."},
    {.name = "hll_fields",
     .type = SLUICE_OPT_STRING_LIST,
     .offset = offsetof(redis_conf_t, hll_fields),
     .help = "The job's redis_hll aggregates also written as native Redis HyperLogLogs: each "
             "SET at `<key>:<field>` (`[\"visitors\"]` with key `\"uv:${page}:${window_start}\"` "
             "writes `uv:home:2026-11-26T10:00:00.000Z:visitors`), for PFMERGE of windows into "
             "hours and days and PFCOUNT. At most 8."},
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
     .help = "Longest wait for a connection to be ready: name resolution, TCP connect, AUTH, "
             "SELECT."},
    {.name = "command_timeout",
     .type = SLUICE_OPT_DURATION,
     .def = "\"10s\"",
     .min = 1 * MS,
     .max = 3600LL * 1000 * MS,
     .offset = offsetof(redis_conf_t, command_timeout_ns),
     .help = "Longest wait for the next reply while a write's replies are due; past it the "
             "connection is dropped, the rows without a reply are retried, and the sink "
             "reconnects."},
    {0},
};

/* ---- state --------------------------------------------------------------------- */

typedef struct redis_sink redis_sink_t;
typedef struct op op_t;

/* What a row of a write became. */
typedef struct {
  sluice_status_t status;      /* OK until a command of the row fails */
  char *msg;                   /* owned; the first failure's (NULL: the write's op->lost) */
  uint64_t seq;                /* its place in the order rows came in (redis_guard.h) */
  size_t ident_off, ident_len; /* in op->idents */
  bool stale;                  /* not written: a newer row for its key was (redis_guard.h) */
} row_t;

/* A reply's privdata: the write and the row it is for. */
typedef struct {
  op_t *op;
  size_t row;
} cmd_ref_t;

/* A queued write.  The rows are the host's until write_done. */
struct op {
  op_t *next;
  redis_sink_t *s;
  sluice_write_t *w;
  const sluice_row_t *const *rows;
  size_t n;
  bool started;
  size_t pending; /* replies still due */
  row_t *row;
  cmd_ref_t *refs;
  pt_buf_t idents; /* each row's key (and member) */
  char lost[768];  /* why the rows without a reply failed */
};

struct redis_sink {
  const sluice_host_t *host; /* borrowed until destroyed */
  sluice_ctx_t *ctx;
  uv_loop_t *loop;
  rs_conn_t conn;
  pt_tmpl_t *key, *member;
  char *score_field;
  rs_spec_t spec;
  uint64_t command_timeout_ms;
  uv_timer_t kick, command_timer;
  int handles_open;
  bool conn_open;
  op_t *head, *tail;
  bool closing, closed_handles;
  rs_cmds_t cmds; /* scratch for building a row's commands */
  rs_guard_t *guard;
  uint64_t next_seq;
  bool guard_full_logged;
  sluice_metric_t *m_stale;
};

static void on_kick(uv_timer_t *t);
static void kick(redis_sink_t *s) {
  uv_timer_start(&s->kick, on_kick, 0, 0);
}
static void on_conn_change(void *arg) {
  kick(arg);
}

/* ---- creating ------------------------------------------------------------------ */

/* What the option table cannot say; shared by `sluice check` and create. */
static int redis_check(const void *conf_, char *err, size_t errlen) {
  const redis_conf_t *conf = conf_;
  if (conf->username && !conf->password) return pt_fail(err, errlen, "username: needs password");
  if (conf->mode == RS_MODE_ZADD && (!conf->score_field || !conf->member))
    return pt_fail(err, errlen, "mode: \"zadd\" needs score_field and member");
  if (conf->mode != RS_MODE_ZADD && (conf->score_field || conf->member))
    return pt_fail(err, errlen, "%s: is for mode = \"zadd\"", conf->score_field ? "score_field" : "member");
  if (conf->hll_fields.n > RS_MAX_HLL)
    return pt_fail(err, errlen, "hll_fields: %zu fields, at most %d", conf->hll_fields.n, RS_MAX_HLL);
  for (size_t i = 0; i < conf->hll_fields.n; i++) {
    if (!*conf->hll_fields.items[i]) return pt_fail(err, errlen, "hll_fields: an empty name");
    for (size_t k = 0; k < i; k++)
      if (!strcmp(conf->hll_fields.items[i], conf->hll_fields.items[k]))
        return pt_fail(err, errlen, "hll_fields: \"%s\" is named twice", conf->hll_fields.items[i]);
  }
  pt_tmpl_t *t = NULL;
  int r = pt_tmpl_compile(conf->key, "key", &t, err, errlen);
  pt_tmpl_free(t);
  if (!r && conf->member) {
    r = pt_tmpl_compile(conf->member, "member", &t, err, errlen);
    pt_tmpl_free(t);
  }
  return r ? -1 : 0;
}

/* Each of hll_fields must be one of the job's redis_hll aggregates: else
 * every row of the job would be refused. */
static int redis_check_job(const void *conf_, const sluice_job_info_t *job, char *err, size_t errlen) {
  const redis_conf_t *conf = conf_;
  for (size_t i = 0; i < conf->hll_fields.n; i++) {
    const char *want = conf->hll_fields.items[i], *fn = NULL;
    for (size_t a = 0; a < job->n_aggregates && !fn; a++)
      if (!strcmp(job->aggregates[a], want)) fn = job->functions[a];
    if (fn && !strcmp(fn, "redis_hll")) continue;
    if (fn)
      return pt_fail(err, errlen, "hll_fields: \"%s\" of job \"%s\" is %s(), not redis_hll()", want, job->name,
                     fn);
    return pt_fail(err, errlen, "hll_fields: job \"%s\" has no aggregate \"%s\"", job->name, want);
  }
  return 0;
}

static void sink_free(redis_sink_t *s) {
  free(s->score_field);
  pt_tmpl_free(s->key);
  pt_tmpl_free(s->member);
  rs_cmds_free(&s->cmds);
  rs_guard_free(s->guard);
  free(s);
}

static int redis_create(const sluice_host_t *host, sluice_ctx_t *ctx, const void *conf_, void *loop,
                        void **self, char *err, size_t errlen) {
  const redis_conf_t *conf = conf_;
  *self = NULL;
  if (host->abi_major != SLUICE_SINK_ABI_MAJOR)
    return pt_fail(err, errlen, "the agent's sink ABI is %u.%u, the redis sink's %d.%d",
                   (unsigned)host->abi_major, (unsigned)host->abi_minor, SLUICE_SINK_ABI_MAJOR,
                   SLUICE_SINK_ABI_MINOR);
  if (redis_check(conf, err, errlen)) return -1;
  if (conf->hll_fields.n && host->abi_minor < 2)
    return pt_fail(err, errlen, "hll_fields: the agent's sink ABI is %u.%u; it needs 1.2",
                   (unsigned)host->abi_major, (unsigned)host->abi_minor);
  redis_sink_t *s = calloc(1, sizeof *s);
  if (!s) return pt_fail(err, errlen, "out of memory");
  s->host = host;
  s->ctx = ctx;
  s->loop = loop;
  s->command_timeout_ms = (uint64_t)(conf->command_timeout_ns / MS);
  if ((conf->score_field && !(s->score_field = strdup(conf->score_field))) ||
      !(s->guard = rs_guard_new(GUARD_MAX_RECORDS))) {
    pt_fail(err, errlen, "out of memory");
    goto fail;
  }
  if (pt_tmpl_compile(conf->key, "key", &s->key, err, errlen) ||
      (conf->member && pt_tmpl_compile(conf->member, "member", &s->member, err, errlen)))
    goto fail;
  uint64_t ttl_ms = (uint64_t)(conf->ttl_ns / MS);
  if (conf->ttl_ns > 0 && ttl_ms == 0) ttl_ms = 1;
  s->spec = (rs_spec_t){.mode = conf->mode,
                        .key = s->key,
                        .member = s->member,
                        .score_field = s->score_field,
                        .ttl_ms = ttl_ms,
                        .hll_fields = conf->hll_fields.items,
                        .n_hll = conf->hll_fields.n};
  rs_conn_opts_t co = {.host = host,
                       .ctx = ctx,
                       .loop = loop,
                       .address = conf->address,
                       .username = conf->username,
                       .password = conf->password,
                       .db = conf->db,
                       .connect_timeout_ms = (uint64_t)(conf->connect_timeout_ns / MS),
                       .on_change = on_conn_change,
                       .arg = s};
  if (rs_conn_init(&s->conn, &co, err, errlen)) goto fail;
  s->conn_open = true;
  s->m_stale = host->counter(
      ctx, "sluice_sink_redis_stale_rows_total",
      "Retried rows the redis sink did not write because a newer row for their key was "
      "written meanwhile.");
  /* The loop does not run yet: handles made now are safe, and the first
   * connection attempt starts with it. */
  uv_timer_init(s->loop, &s->kick);
  uv_timer_init(s->loop, &s->command_timer);
  s->kick.data = s->command_timer.data = s;
  s->handles_open = 2;
  rs_conn_start(&s->conn);
  *self = s;
  return 0;
fail:
  sink_free(s);
  return -1;
}

/* ---- writing ---------------------------------------------------------------------- */

static void on_command_timeout(uv_timer_t *t);

/* Gives row i a failure; msg NULL: the write's shared op->lost. */
static void row_fail(op_t *op, size_t i, sluice_status_t st, const char *msg) {
  row_t *r = &op->row[i];
  /* FATAL outweighs RETRY: writing the row again would fail again. */
  if (r->status == SLUICE_FATAL || (r->status == SLUICE_RETRY && st == SLUICE_RETRY)) return;
  r->status = st;
  free(r->msg);
  r->msg = msg ? strdup(msg) : NULL;
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata) {
  cmd_ref_t *ref = privdata;
  op_t *op = ref->op;
  redisReply *reply = r;
  redis_sink_t *s = op->s;
  if (!reply) {
    /* The connection went before the reply came: the row may or may not
     * have been written. */
    if (!op->lost[0])
      snprintf(op->lost, sizeof op->lost, "connection to redis at %s lost before the reply: %s",
               s->conn.where,
               ac->errstr[0]           ? ac->errstr
               : s->conn.last_error[0] ? s->conn.last_error
                                       : "closed");
    row_fail(op, ref->row, SLUICE_RETRY, NULL);
  } else if (reply->type == REDIS_REPLY_ERROR) {
    char msg[512];
    snprintf(msg, sizeof msg, "redis: %.*s (key %.*s)", (int)reply->len, reply->str,
             (int)op->row[ref->row].ident_len, op->idents.p + op->row[ref->row].ident_off);
    row_fail(op, ref->row, rs_classify_error(reply->str, reply->len), msg);
  }
  if (--op->pending == 0) {
    uv_timer_stop(&s->command_timer);
    kick(s);
  } else if (reply && s->conn.ac == ac) {
    uv_timer_start(&s->command_timer, on_command_timeout, s->command_timeout_ms, 0);
  }
}

static void on_command_timeout(uv_timer_t *t) {
  redis_sink_t *s = t->data;
  if (!s->head || !s->head->pending) return;
  char why[64];
  snprintf(why, sizeof why, "no reply within command_timeout (%" PRIu64 " ms)",
           s->command_timeout_ms);
  snprintf(s->head->lost, sizeof s->head->lost, "redis at %s: %s", s->conn.where, why);
  /* The replies still due are called with NULL now. */
  rs_conn_fail(&s->conn, why);
}

/* Builds each row's commands into s->cmds in turn and decides its fate:
 * a row that cannot be written (a template's field missing) fails FATAL,
 * one the guard finds stale is done as written; for the others, `each`
 * is called with the row's commands built.  0, or -1 when out of memory. */
static int admit_rows(redis_sink_t *s, op_t *op,
                      void (*each)(redis_sink_t *s, op_t *op, size_t i)) {
  op->started = true;
  op->s = s;
  op->row = calloc(op->n ? op->n : 1, sizeof *op->row);
  op->refs = calloc(op->n ? op->n : 1, sizeof *op->refs);
  if (!op->row || !op->refs) return -1;
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
    row->ident_off = op->idents.len;
    if (pt_buf_append(&op->idents, s->cmds.text.p + s->cmds.ident_off, s->cmds.ident_len)) {
      row_fail(op, i, SLUICE_RETRY, "out of memory");
      continue;
    }
    row->ident_len = s->cmds.ident_len;
    const char *ident = op->idents.p + row->ident_off;
    if (rs_guard_watches(s->guard, ident, row->ident_len)) {
      size_t jl = 0;
      const char *json = s->host->row_json(sr, &jl);
      int v = rs_guard_check(s->guard, ident, row->ident_len, s->host->row_id(sr),
                             rs_hash(json, jl), &row->seq);
      if (v == RS_GUARD_STALE) {
        row->stale = true;
        s->host->metric_add(s->m_stale, 1);
        s->host->log(s->ctx, SLUICE_LOG_DEBUG,
                     "row %s not written again: a newer row for its key was written",
                     s->host->row_id_hex(sr));
        continue;
      }
    }
    each(s, op, i);
  }
  return 0;
}

static void send_row(redis_sink_t *s, op_t *op, size_t i) {
  for (size_t k = 0; k < s->cmds.ncmds; k++) {
    redisAsyncContext *ac = s->conn.ac;
    if (!ac || rs_cmds_resp(&s->cmds, k, &s->cmds.resp) ||
        redisAsyncFormattedCommand(ac, on_reply, &op->refs[i], s->cmds.resp.p, s->cmds.resp.len) !=
            REDIS_OK) {
      row_fail(op, i, SLUICE_RETRY, ac ? "cannot queue the command" : "connection to redis lost");
      return;
    }
    op->pending++;
  }
}

static void unsent_row(redis_sink_t *s, op_t *op, size_t i) {
  (void)s;
  row_fail(op, i, SLUICE_RETRY, NULL);
}

/* Sends the commands of op's rows in one pipeline. */
static void start_op(redis_sink_t *s, op_t *op) {
  if (admit_rows(s, op, send_row)) return;
  if (op->pending) uv_timer_start(&s->command_timer, on_command_timeout, s->command_timeout_ms, 0);
}

/* Fails op's rows, not connected: they go through the guard all the same,
 * so that a retried row keeps its place and a stale one is not retried. */
static void fail_op(redis_sink_t *s, op_t *op) {
  snprintf(op->lost, sizeof op->lost, "not connected to redis at %s: %s", s->conn.where,
           s->conn.last_error);
  admit_rows(s, op, unsent_row);
}

/* Reports op to the host and frees it; the host may write or destroy from
 * inside write_done (destroy only marks the sink closing).  `all`: every
 * row's outcome, for a write never started (cancelled). */
static void complete(redis_sink_t *s, op_t *op, sluice_status_t all, const char *msg) {
  sluice_write_t *w = op->w;
  if (op->started && (!op->row || !op->refs)) {
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
    const char *why = r->msg ? r->msg : op->lost[0] ? op->lost : "out of memory";
    if (r->status == SLUICE_OK) {
      if (r->ident_len && !r->stale) rs_guard_written(s->guard, ident, r->ident_len, r->seq);
      continue;
    }
    if (r->status == SLUICE_RETRY && r->ident_len) {
      size_t jl = 0;
      const char *json = s->host->row_json(op->rows[i], &jl);
      if (rs_guard_failed(s->guard, ident, r->ident_len, s->host->row_id(op->rows[i]),
                          rs_hash(json, jl), r->seq, now) &&
          !s->guard_full_logged) {
        s->guard_full_logged = true;
        s->host->log(
            s->ctx, SLUICE_LOG_WARN,
            "more than %d rows wait for a retry: a retried row may now overwrite a newer one",
            GUARD_MAX_RECORDS);
      }
    }
    failed++;
    if (r->status > worst) worst = r->status;
    if (!first) first = why;
    s->host->row_done(w, i, r->status, why);
  }
  if (all != SLUICE_OK)
    s->host->write_done(w, all, msg);
  else if (failed && failed == op->n)
    s->host->write_done(w, worst, first);
  else
    s->host->write_done(w, SLUICE_OK, NULL);
  for (size_t i = 0; op->row && i < op->n; i++) free(op->row[i].msg);
  free(op->row);
  free(op->refs);
  pt_buf_free(&op->idents);
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
      complete(s, pop(s), SLUICE_CANCELED,
               "the redis sink was closed before the rows were written");
      continue;
    }
    if (s->conn.state == RS_CONN_READY) {
      start_op(s, op);
      continue; /* done at once when no command was sent */
    }
    if (s->conn.state == RS_CONN_DOWN && s->conn.attempts) {
      fail_op(s, op);
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

static void maybe_release(redis_sink_t *s) {
  if (!s->handles_open && !s->conn_open) release(s);
}

static void on_handle_closed(uv_handle_t *h) {
  redis_sink_t *s = h->data;
  s->handles_open--;
  maybe_release(s);
}

static void on_conn_closed(void *arg) {
  redis_sink_t *s = arg;
  s->conn_open = false;
  maybe_release(s);
}

/* Nothing is queued or in flight any more. */
static void finish_close(redis_sink_t *s) {
  if (s->closed_handles) return;
  s->closed_handles = true;
  uv_close((uv_handle_t *)&s->kick, on_handle_closed);
  uv_close((uv_handle_t *)&s->command_timer, on_handle_closed);
  rs_conn_close(&s->conn, on_conn_closed);
}

static void redis_destroy(void *self) {
  redis_sink_t *s = self;
  s->closing = true;
  kick(s);
}

__attribute__((visibility("default"))) const sluice_sink_plugin_t sluice_sink_plugin = {
    SLUICE_SINK_PLUGIN_HEADER,
    .name = "redis",
    .version = "1.0.0",
    .description =
        "Rows to Redis (SET of the JSON, HSET of the fields, or ZADD) under a key from their "
        "fields; redis_hll aggregates as native HyperLogLogs.",
    .options = redis_opts,
    .conf_size = sizeof(redis_conf_t),
    .create = redis_create,
    .write = redis_write,
    .destroy = redis_destroy,
    .check = redis_check,
    .check_job = redis_check_job,
};
