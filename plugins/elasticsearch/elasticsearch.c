/* The `elasticsearch` sink plugin: rows as documents through the _bulk
 * API, each under the row's id as its _id, so that a row written again
 * overwrites itself instead of making a duplicate.  Requests go through
 * libcurl's multi-socket interface on the jobs loop (es_http.c); bodies and
 * answers are es_bulk.c's.  Sees only the SDK header.  This file: the
 * descriptor, the options, the queue of writes cut into bulk requests,
 * hosts and failover, the startup check.
 *
 * Items.  Each item of an answer decides its row: 2xx written; 429 and 5xx
 * RETRY (only those rows: the host writes them again after its backoff);
 * 409 on create counts as written (that _id is there); other 4xx FATAL
 * with Elasticsearch's reason (the host drops or dead-letters the row as
 * on_failure says).  A request without an answer to read (refused,
 * reset, timed out, 5xx or 429 for the whole request) fails all its rows
 * RETRY, and a transport failure or a 5xx moves the sink to the next host.
 *
 * Order.  The host writes one batch at a time (its writes may be cut in
 * several, in flight together); a write's rows are cut into requests of
 * at most max_batch_docs documents and max_batch_bytes, started in the
 * order the writes came, at most max_in_flight at a time.
 *
 * Lifetimes.  Every report to the host (write_done) is made from the
 * sink's `kick` timer, never from inside a curl callback or from inside
 * write, so the host may write or destroy from inside write_done.  The
 * instance is freed once the requests in flight have ended and the
 * handles are closed. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <inttypes.h>
#include <sluice/sink.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "es_bulk.h"
#include "es_http.h"

#define MS 1000000LL

typedef struct {
  sluice_str_list_t hosts; /* owned by the host, like every string here */
  char *index;
  int operation;
  bool id;
  char *pipeline;
  char *username, *password, *api_key, *bearer;
  char *ca_file;
  bool verify;
  int compress;
  int64_t max_batch_docs;
  uint64_t max_batch_bytes;
  int64_t max_in_flight;
  int64_t request_timeout_ns;
} es_conf_t;

enum { COMPRESS_NONE = 0, COMPRESS_GZIP };

static const sluice_opt_t es_opts[] = {
    {.name = "hosts",
     .type = SLUICE_OPT_STRING_LIST,
     .def = "[\"http://127.0.0.1:9200\"]",
     .offset = offsetof(es_conf_t, hosts),
     .help = "Elasticsearch nodes, `http://` or `https://` (a path prefix is kept). Requests go to "
             "the first; a request that gets no answer, or a 5xx, moves the sink to the next."},
    {.name = "index",
     .type = SLUICE_OPT_STRING,
     .def = "\"sluice-%Y.%m.%d\"",
     .offset = offsetof(es_conf_t, index),
     .help = "Index of each row: strftime on the row's window start (UTC; `%Y.%m.%d`: daily "
             "indices) and `${field}` for row fields (`\"${job}-%Y.%m\"`). A row whose field is "
             "missing or null is refused (FATAL)."},
    {.name = "operation",
     .type = SLUICE_OPT_ENUM,
     .def = "\"index\"",
     .choices = "index|create",
     .offset = offsetof(es_conf_t, operation),
     .help = "`index`: a row written again replaces its document; `create` (data streams): a "
             "document already there is kept, and its 409 counts as written."},
    {.name = "id",
     .type = SLUICE_OPT_BOOL,
     .def = "true",
     .offset = offsetof(es_conf_t, id),
     .help = "Use the row id as `_id`, so a row written again (a retry, a replay) overwrites "
             "itself. false: Elasticsearch makes ids, and a retried row may be stored twice."},
    {.name = "pipeline",
     .type = SLUICE_OPT_STRING,
     .offset = offsetof(es_conf_t, pipeline),
     .help = "Ingest pipeline every document goes through (`?pipeline=`)."},
    {.name = "username",
     .type = SLUICE_OPT_STRING,
     .offset = offsetof(es_conf_t, username),
     .help = "User for HTTP basic authentication. Needs password."},
    {.name = "password",
     .type = SLUICE_OPT_STRING,
     .flags = SLUICE_OPT_SECRET,
     .offset = offsetof(es_conf_t, password),
     .help = "Password for HTTP basic authentication."},
    {.name = "api_key",
     .type = SLUICE_OPT_STRING,
     .flags = SLUICE_OPT_SECRET,
     .offset = offsetof(es_conf_t, api_key),
     .help = "API key, sent as `Authorization: ApiKey <api_key>` (the base64 `encoded` value "
             "Elasticsearch gives)."},
    {.name = "bearer",
     .type = SLUICE_OPT_STRING,
     .flags = SLUICE_OPT_SECRET,
     .offset = offsetof(es_conf_t, bearer),
     .help = "Token sent as `Authorization: Bearer <bearer>`. One of username, api_key, bearer."},
    {.name = "ca_file",
     .type = SLUICE_OPT_STRING,
     .offset = offsetof(es_conf_t, ca_file),
     .help = "PEM file of the CAs that sign the nodes' certificates (https); unset: the system's."},
    {.name = "verify",
     .type = SLUICE_OPT_BOOL,
     .def = "true",
     .offset = offsetof(es_conf_t, verify),
     .help = "Check the nodes' certificates and names (https). false: for tests only."},
    {.name = "compress",
     .type = SLUICE_OPT_ENUM,
     .def = "\"none\"",
     .choices = "none|gzip",
     .offset = offsetof(es_conf_t, compress),
     .help = "`gzip`: bulk bodies sent gzipped (`Content-Encoding: gzip`)."},
    {.name = "max_batch_docs",
     .type = SLUICE_OPT_INT,
     .def = "1000",
     .min = 1,
     .max = 100000,
     .offset = offsetof(es_conf_t, max_batch_docs),
     .help = "Most documents in one bulk request; a write of more rows is cut into several."},
    {.name = "max_batch_bytes",
     .type = SLUICE_OPT_SIZE,
     .def = "\"5MiB\"",
     .min = 1024,
     .max = 1LL << 30,
     .offset = offsetof(es_conf_t, max_batch_bytes),
     .help = "Largest bulk body before compression (a single larger document goes alone)."},
    {.name = "max_in_flight",
     .type = SLUICE_OPT_INT,
     .def = "4",
     .min = 1,
     .max = 64,
     .offset = offsetof(es_conf_t, max_in_flight),
     .help = "Bulk requests in flight at once (each on its own connection, reused)."},
    {.name = "request_timeout",
     .type = SLUICE_OPT_DURATION,
     .def = "\"30s\"",
     .min = 1 * MS,
     .max = 3600LL * 1000 * MS,
     .offset = offsetof(es_conf_t, request_timeout_ns),
     .help = "Longest wait for a request's answer, connecting included; past it the request's "
             "rows are retried and the sink moves to the next host."},
    {0},
};

/* ---- state ------------------------------------------------------------------------- */

typedef struct es_sink es_sink_t;

/* A queued write.  The rows are the host's until write_done. */
typedef struct op {
  struct op *next;
  sluice_write_t *w;
  const sluice_row_t *const *rows;
  size_t n;
  size_t next_row; /* rows before it are in a request, or failed before one */
  size_t out;      /* its requests in flight */
  uint8_t *st;     /* each row's outcome (sluice_status_t) */
  char **msg;      /* each row's failure message, owned; NULL: none */
} op_t;

/* One bulk request: documents of one write. */
typedef struct {
  es_sink_t *s;
  op_t *op;
  size_t *rows; /* item i is row rows[i] of op */
  size_t n;
  size_t host;
} bulk_t;

typedef struct {
  char *base, *bulk_url, *root_url; /* owned */
  bool failing;                     /* its last request got no answer, or a 5xx */
} es_host_t;

struct es_sink {
  const sluice_host_t *host; /* borrowed until destroyed */
  sluice_ctx_t *ctx;
  uv_loop_t *loop;
  es_http_t http;
  bool http_open;
  es_index_t *index;
  int op;
  bool use_id, gzip;
  size_t max_docs, max_bytes, max_in_flight;
  uint64_t timeout_ms;
  es_host_t *hosts;
  size_t nhosts, cur;
  size_t in_flight; /* bulk requests */
  uv_timer_t kick;
  bool kick_open;
  op_t *head, *tail;
  bool closing, closed;
  pt_buf_t scratch, body;
  sluice_metric_t *m_requests, *m_req_failed, *m_items_retry, *m_items_rejected, *m_bytes;
};

static void on_kick(uv_timer_t *t);
static void kick(es_sink_t *s) {
  if (!s->closed) uv_timer_start(&s->kick, on_kick, 0, 0);
}

/* ---- creating ------------------------------------------------------------------------ */

static void sink_free(es_sink_t *s) {
  for (size_t i = 0; s->hosts && i < s->nhosts; i++) {
    free(s->hosts[i].base);
    free(s->hosts[i].bulk_url);
    free(s->hosts[i].root_url);
  }
  free(s->hosts);
  es_index_free(s->index);
  pt_buf_free(&s->scratch);
  pt_buf_free(&s->body);
  free(s);
}

static void probe(es_sink_t *s, size_t i);

static int es_create(const sluice_host_t *host, sluice_ctx_t *ctx, const void *conf_, void *loop,
                     void **self, char *err, size_t errlen) {
  const es_conf_t *conf = conf_;
  *self = NULL;
  if (host->abi_major != SLUICE_SINK_ABI_MAJOR)
    return pt_fail(err, errlen, "the agent's sink ABI is %u.%u, the elasticsearch sink's %d.%d",
                   (unsigned)host->abi_major, (unsigned)host->abi_minor, SLUICE_SINK_ABI_MAJOR,
                   SLUICE_SINK_ABI_MINOR);
  if (!conf->hosts.n) return pt_fail(err, errlen, "hosts is empty");
  if (!!conf->username + !!conf->api_key + !!conf->bearer > 1)
    return pt_fail(err, errlen, "username, api_key and bearer exclude one another: write one");
  if (!!conf->username != !!conf->password)
    return pt_fail(err, errlen,
                   conf->username ? "username needs password" : "password needs username");
  es_sink_t *s = calloc(1, sizeof *s);
  if (!s) return pt_fail(err, errlen, "out of memory");
  s->host = host;
  s->ctx = ctx;
  s->loop = loop;
  s->op = conf->operation == 1 ? ES_OP_CREATE : ES_OP_INDEX;
  s->use_id = conf->id;
  s->gzip = conf->compress == COMPRESS_GZIP;
  s->max_docs = (size_t)conf->max_batch_docs;
  s->max_bytes = (size_t)conf->max_batch_bytes;
  s->max_in_flight = (size_t)conf->max_in_flight;
  s->timeout_ms = (uint64_t)(conf->request_timeout_ns / MS);
  if (!s->timeout_ms) s->timeout_ms = 1;
  if (es_index_compile(conf->index, &s->index, err, errlen)) goto fail;
  s->nhosts = conf->hosts.n;
  if (!(s->hosts = calloc(s->nhosts, sizeof *s->hosts))) goto nomem;
  for (size_t i = 0; i < s->nhosts; i++) {
    es_host_t *h = &s->hosts[i];
    if (!(h->base = es_base_url(conf->hosts.items[i], err, errlen))) goto fail;
    if (!(h->bulk_url = es_bulk_url(h->base, conf->pipeline)) ||
        !(h->root_url = malloc(strlen(h->base) + 2)))
      goto nomem;
    sprintf(h->root_url, "%s/", h->base);
  }
  es_http_opts_t ho = {.username = conf->username,
                       .password = conf->password,
                       .api_key = conf->api_key,
                       .bearer = conf->bearer,
                       .ca_file = conf->ca_file,
                       .verify = conf->verify,
                       .timeout_ms = (long)s->timeout_ms,
                       .max_host_connections = (long)s->max_in_flight + 1};
  if (es_http_init(&s->http, loop, &ho, err, errlen)) goto fail;
  s->http_open = true;
  uv_timer_init(loop, &s->kick);
  s->kick.data = s;
  s->kick_open = true;
  s->m_requests = host->counter(ctx, "sluice_sink_elasticsearch_requests_total",
                                "Bulk requests the elasticsearch sink sent.");
  s->m_req_failed = host->counter(
      ctx, "sluice_sink_elasticsearch_request_failures_total",
      "Bulk requests without items to read (no answer, a timeout, a 5xx or 429 for the whole "
      "request): every row of them retried.");
  s->m_items_retry = host->counter(ctx, "sluice_sink_elasticsearch_items_retried_total",
                                   "Documents Elasticsearch answered with 429 or 5xx: retried.");
  s->m_items_rejected = host->counter(
      ctx, "sluice_sink_elasticsearch_items_rejected_total",
      "Documents Elasticsearch refused for good (a 4xx such as a mapping error): FATAL.");
  s->m_bytes = host->counter(ctx, "sluice_sink_elasticsearch_sent_bytes_total",
                             "Bulk body bytes sent (after compression).");
  /* The loop does not run yet: the checks start with it; create never
   * waits for a node. */
  for (size_t i = 0; i < s->nhosts; i++) probe(s, i);
  *self = s;
  return 0;
nomem:
  pt_fail(err, errlen, "out of memory");
fail:
  sink_free(s);
  return -1;
}

/* ---- the startup check: GET / on every host ------------------------------------------ */

typedef struct {
  es_sink_t *s;
  size_t i;
} probe_t;

static void on_probe(void *arg, const es_http_result_t *r) {
  probe_t *p = arg;
  es_sink_t *s = p->s;
  const char *where = s->hosts[p->i].base;
  free(p);
  if (r->canceled) return;
  char version[128], cluster[128], why[512];
  if (r->transport) {
    s->host->log(s->ctx, SLUICE_LOG_WARN,
                 "Elasticsearch at %s did not answer GET /: %s%s; rows are retried until it "
                 "answers",
                 where, r->error, r->timed_out ? " (request_timeout)" : "");
    return;
  }
  if (r->status == 200 &&
      es_root_info(r->body, r->len, version, sizeof version, cluster, sizeof cluster) == 0) {
    s->host->log(s->ctx, SLUICE_LOG_INFO, "Elasticsearch %s (cluster %s) at %s", version, cluster,
                 where);
    return;
  }
  es_error_text(r->body, r->len, why, sizeof why);
  s->host->log(s->ctx, SLUICE_LOG_WARN,
               "%s answered GET / with HTTP %ld%s%s: is it Elasticsearch%s?", where, r->status,
               why[0] ? ": " : "", why,
               r->status == 401 || r->status == 403 ? ", and are the credentials right" : "");
}

static void probe(es_sink_t *s, size_t i) {
  probe_t *p = malloc(sizeof *p);
  if (!p) return;
  *p = (probe_t){s, i};
  if (es_http_send(&s->http, s->hosts[i].root_url, NULL, false, on_probe, p)) free(p);
}

/* ---- writing --------------------------------------------------------------------------- */

/* Gives row i of op its outcome (each row is in one request at most). */
static void row_set(op_t *op, size_t i, sluice_status_t st, const char *msg) {
  op->st[i] = (uint8_t)st;
  free(op->msg[i]);
  op->msg[i] = msg ? strdup(msg) : NULL;
}

static void bulk_free(bulk_t *b) {
  free(b->rows);
  free(b);
}

static void host_failed(es_sink_t *s, size_t i, const char *why) {
  es_host_t *h = &s->hosts[i];
  if (!h->failing)
    s->host->log(s->ctx, SLUICE_LOG_WARN, "Elasticsearch at %s: %s%s", h->base, why,
                 s->nhosts > 1 && s->cur == i ? "; trying the next host" : "");
  h->failing = true;
  if (s->cur == i) s->cur = (i + 1) % s->nhosts;
}

static void host_answered(es_sink_t *s, size_t i) {
  es_host_t *h = &s->hosts[i];
  if (h->failing)
    s->host->log(s->ctx, SLUICE_LOG_INFO, "Elasticsearch at %s answers again", h->base);
  h->failing = false;
}

/* The rows of an answer with items: each its own outcome. */
static void read_items(es_sink_t *s, bulk_t *b, es_item_t *items) {
  op_t *op = b->op;
  char msg[1400], first[1400] = "";
  size_t retried = 0, rejected = 0;
  for (size_t k = 0; k < b->n; k++) {
    sluice_status_t st = es_item_outcome(items[k].status, s->op);
    if (st != SLUICE_OK) {
      snprintf(msg, sizeof msg, "elasticsearch %s document %s (status %d): %s",
               st == SLUICE_RETRY ? "could not take" : "refused",
               s->host->row_id_hex(op->rows[b->rows[k]]), items[k].status,
               items[k].error ? items[k].error : "no reason given");
      if (st == SLUICE_RETRY)
        retried++;
      else if (rejected++ == 0)
        memcpy(first, msg, sizeof msg);
    }
    row_set(op, b->rows[k], st, st == SLUICE_OK ? NULL : msg);
  }
  /* Logged here, once per request: the host logs a dropped row, not
   * one it dead-letters. */
  if (rejected)
    s->host->log(s->ctx, SLUICE_LOG_WARN,
                 "%zu of %zu documents refused for good (%s), the first: %s", rejected, b->n,
                 "on_failure applies", first);
  s->host->metric_add(s->m_items_retry, (double)retried);
  s->host->metric_add(s->m_items_rejected, (double)rejected);
}

static void on_bulk(void *arg, const es_http_result_t *r) {
  bulk_t *b = arg;
  es_sink_t *s = b->s;
  const char *where = s->hosts[b->host].base;
  char why[1024], msg[1400];
  s->in_flight--;
  b->op->out--;
  es_item_t *items = NULL;
  sluice_status_t st = SLUICE_RETRY;
  if (r->canceled) {
    snprintf(msg, sizeof msg, "the elasticsearch sink was closed before the answer came");
  } else if (r->transport) {
    if (r->timed_out)
      snprintf(why, sizeof why, "no answer within request_timeout (%" PRIu64 " ms)", s->timeout_ms);
    else
      snprintf(why, sizeof why, "%s", r->error);
    snprintf(msg, sizeof msg, "elasticsearch at %s: %s", where, why);
    host_failed(s, b->host, why);
  } else if (r->status / 100 == 2) {
    if (!(items = calloc(b->n ? b->n : 1, sizeof *items))) {
      snprintf(msg, sizeof msg, "out of memory");
    } else if (es_bulk_response(r->body, r->len, b->n, items, why, sizeof why) == 0) {
      host_answered(s, b->host);
      read_items(s, b, items);
      st = SLUICE_OK;
    } else {
      /* Not known to be written: written again, each _id overwrites. */
      snprintf(msg, sizeof msg, "elasticsearch at %s: unreadable _bulk answer: %s", where, why);
    }
  } else {
    st = es_request_outcome(r->status);
    es_error_text(r->body, r->len, why, sizeof why);
    char what[1100];
    snprintf(what, sizeof what, "answered HTTP %ld%s%s", r->status, why[0] ? ": " : "", why);
    snprintf(msg, sizeof msg, "elasticsearch at %s %s", where, what);
    if (r->status >= 500)
      host_failed(s, b->host, what);
    else
      host_answered(s, b->host);
    if (r->status == 401 || r->status == 403)
      s->host->log(s->ctx, SLUICE_LOG_ERROR, "%s (check username and password, api_key or bearer)",
                   msg);
  }
  if (st != SLUICE_OK) {
    if (!r->canceled) s->host->metric_add(s->m_req_failed, 1);
    for (size_t k = 0; k < b->n; k++) row_set(b->op, b->rows[k], st, msg);
  }
  if (items) es_items_clear(items, b->n);
  free(items);
  bulk_free(b);
  kick(s);
}

/* Builds and sends the next request of op's rows (up to max_batch_docs
 * documents, max_batch_bytes).  Rows that cannot be written (the index
 * template's field is missing) fail FATAL on the way. */
static void send_bulk(es_sink_t *s, op_t *op) {
  bulk_t *b = calloc(1, sizeof *b);
  size_t cap = op->n - op->next_row < s->max_docs ? op->n - op->next_row : s->max_docs;
  if (!b || !(b->rows = malloc(cap * sizeof *b->rows))) {
    free(b);
    for (; op->next_row < op->n; op->next_row++)
      row_set(op, op->next_row, SLUICE_RETRY, "out of memory");
    return;
  }
  b->s = s;
  b->op = op;
  b->host = s->cur;
  pt_buf_t *body = &s->body;
  body->len = 0;
  char why[512], msg[700];
  while (op->next_row < op->n && b->n < cap) {
    size_t i = op->next_row;
    const sluice_row_t *row = op->rows[i];
    s->scratch.len = 0;
    size_t mark = body->len;
    size_t jl = 0;
    const char *json = s->host->row_json(row, &jl);
    if (es_index_render(s->index, s->host, row, &s->scratch, why, sizeof why) ||
        es_bulk_item(s->op, s->scratch.p, s->scratch.len,
                     s->use_id ? s->host->row_id_hex(row) : NULL, json, jl, body, why,
                     sizeof why)) {
      snprintf(msg, sizeof msg, "row %s not written: %s", s->host->row_id_hex(row), why);
      row_set(op, i, strcmp(why, "out of memory") == 0 ? SLUICE_RETRY : SLUICE_FATAL, msg);
      op->next_row++;
      continue;
    }
    if (body->len > s->max_bytes && b->n) {
      body->len = mark; /* goes in the next request */
      break;
    }
    b->rows[b->n++] = i;
    op->next_row++;
  }
  if (!b->n) {
    bulk_free(b);
    return;
  }
  pt_buf_t send = {0};
  if (s->gzip) {
    if (es_gzip(body->p, body->len, &send)) {
      pt_buf_free(&send);
      for (size_t k = 0; k < b->n; k++)
        row_set(op, b->rows[k], SLUICE_RETRY, "cannot gzip the bulk body");
      bulk_free(b);
      return;
    }
  } else {
    send = *body; /* taken; the scratch body starts again empty */
    *body = (pt_buf_t){0};
  }
  size_t bytes = send.len;
  if (es_http_send(&s->http, s->hosts[b->host].bulk_url, &send, s->gzip, on_bulk, b)) {
    for (size_t k = 0; k < b->n; k++) row_set(op, b->rows[k], SLUICE_RETRY, "out of memory");
    bulk_free(b);
    return;
  }
  s->host->metric_add(s->m_requests, 1);
  s->host->metric_add(s->m_bytes, (double)bytes);
  s->in_flight++;
  op->out++;
}

/* Reports op to the host and frees it; the host may write or destroy from
 * inside write_done (destroy only marks the sink closing). */
static void complete(es_sink_t *s, op_t *op) {
  size_t failed = 0;
  sluice_status_t worst = SLUICE_OK;
  const char *first = NULL;
  for (size_t i = 0; i < op->n; i++) {
    if (op->st[i] == SLUICE_OK) continue;
    failed++;
    if (op->st[i] > worst) worst = op->st[i];
    const char *why = op->msg[i] ? op->msg[i]
                      : op->st[i] == SLUICE_CANCELED
                          ? "the elasticsearch sink was closed before the row was written"
                          : "not written";
    if (!first) first = why;
    s->host->row_done(op->w, i, op->st[i], why);
  }
  if (failed && failed == op->n)
    s->host->write_done(op->w, worst, first);
  else
    s->host->write_done(op->w, SLUICE_OK, NULL);
  for (size_t i = 0; i < op->n; i++) free(op->msg[i]);
  free(op->msg);
  free(op->st);
  free(op);
}

static void finish_close(es_sink_t *s);

/* Moves the queue on: starts requests in the writes' order while fewer
 * than max_in_flight are out, reports each write whose rows all have an
 * outcome, cancels the rows not sent when closing. */
static void on_kick(uv_timer_t *t) {
  es_sink_t *s = t->data;
  for (op_t *op = s->head; op && !s->closing && s->in_flight < s->max_in_flight; op = op->next)
    while (op->next_row < op->n && s->in_flight < s->max_in_flight) send_bulk(s, op);
  op_t **pp = &s->head, *prev = NULL;
  while (*pp) {
    op_t *op = *pp;
    if (s->closing)
      for (; op->next_row < op->n; op->next_row++) row_set(op, op->next_row, SLUICE_CANCELED, NULL);
    if (op->next_row < op->n || op->out) {
      prev = op;
      pp = &op->next;
      continue;
    }
    *pp = op->next;
    if (s->tail == op) s->tail = prev;
    complete(s, op);
  }
  if (s->closing && !s->head) finish_close(s);
}

static int es_write(void *self, sluice_write_t *w, const sluice_row_t *const *rows, size_t n) {
  es_sink_t *s = self;
  if (s->closing) return -1;
  op_t *op = calloc(1, sizeof *op);
  if (!op) return -1;
  op->w = w;
  op->rows = rows;
  op->n = n;
  op->st = malloc(n ? n : 1);
  op->msg = calloc(n ? n : 1, sizeof *op->msg);
  if (!op->st || !op->msg) {
    free(op->st);
    free(op->msg);
    free(op);
    return -1;
  }
  /* Rows not yet answered are RETRY: not written, or not known to be. */
  memset(op->st, SLUICE_RETRY, n);
  if (s->tail)
    s->tail->next = op;
  else
    s->head = op;
  s->tail = op;
  kick(s);
  return 0;
}

/* ---- closing ------------------------------------------------------------------------------ */

static void maybe_release(es_sink_t *s) {
  if (s->kick_open || s->http_open) return;
  const sluice_host_t *host = s->host;
  sluice_ctx_t *ctx = s->ctx;
  sink_free(s);
  host->destroyed(ctx);
}

static void on_kick_closed(uv_handle_t *h) {
  es_sink_t *s = h->data;
  s->kick_open = false;
  maybe_release(s);
}

static void on_http_closed(void *arg) {
  es_sink_t *s = arg;
  s->http_open = false;
  maybe_release(s);
}

/* Nothing is queued or in flight any more but the startup checks, which
 * are canceled. */
static void finish_close(es_sink_t *s) {
  if (s->closed) return;
  s->closed = true;
  uv_close((uv_handle_t *)&s->kick, on_kick_closed);
  es_http_close(&s->http, on_http_closed, s);
}

static void es_destroy(void *self) {
  es_sink_t *s = self;
  s->closing = true;
  kick(s);
}

__attribute__((visibility("default"))) const sluice_sink_plugin_t sluice_sink_plugin = {
    SLUICE_SINK_PLUGIN_HEADER,
    .name = "elasticsearch",
    .version = "1.0.0",
    .description =
        "Rows as documents through the _bulk API, _id = the row id; only the items "
        "that can succeed are retried.",
    .options = es_opts,
    .conf_size = sizeof(es_conf_t),
    .create = es_create,
    .write = es_write,
    .destroy = es_destroy,
};
