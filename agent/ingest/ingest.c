/* The ingest stage: for each record of a decoded forward message, find the
 * route, build the Kafka message (value in JSON or msgpack with the
 * configured keys injected, key from a record field, timestamp = event time,
 * header fluent.tag) and produce it; or print it in print mode.  When the
 * producer is full the rest of the message waits here, the forward server is
 * paused, and both resume when the producer reports room.  Each chunk's
 * completion is held once per record produced, settled by its delivery
 * report, and sealed once the message is fully handed on.  Loop thread
 * only. */
#include "ingest/ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/dtoa.h"
#include "core/error.h"
#include "core/log.h"
#include "forward/forward_server.h"
#include "ingest/json_encode.h"
#include "ingest/print_out.h"
#include "kafka/kafka_embedded.h"
#include "kafka/kafka_producer.h"

/* Encode buffers larger than this are given back after use. */
#define BIG_BUFFER (1024 * 1024)

/* A message that did not fit into the producer queue yet. */
typedef struct stalled {
  struct stalled *next;
  sl_fwd_frame_t frame;
  sl_fwd_message_t msg;
  size_t next_entry;
  const sl_route_t *route; /* in `table`, or the default route */
  sl_route_table_t *table; /* a reference: the routes it was routed with */
  sl_completion_t *done;
  char *tag; /* owned, NUL-terminated, with tag_prefix */
  size_t tag_len;
  char address[64];
  char hostname[256];
} stalled_t;

typedef struct {
  const sl_config_t *cfg;
  const sl_forward_conf_t *fwd;
  sl_route_table_t *routes; /* a reference; its handles: fixed topics' producer handles */
  struct sl_kafka_embedded *embedded;
  sl_stage_host_t host;
  sl_kafka_producer_t *producer; /* NULL: print mode */
  sl_print_out_t *print;         /* print mode's stdout */
  sl_fwd_server_t *server;
  uint64_t records_failed; /* since start: not acked because Kafka (or stdout) failed them */
  void (*on_closed)(void *arg);
  void *on_closed_arg;
  stalled_t *stalled_head, *stalled_tail;
  size_t n_stalled;
  bool paused_reads; /* this stage paused the server for backpressure */
  bool stopping;     /* stop_intake: reads stay paused for good */
  sl_buf_t value, key, topic, tagbuf;
  sl_route_t default_route; /* for default_topic: json, no key */
  /* default_topic's handle, so a record's topic is not looked up by name
   * (the routes' are in their table). */
  sl_kafka_topic_t *default_topic;
  struct {
    sl_metric_t *unmatched, *template_errors, *printed, *held_back, *abandoned;
  } m;
} ingest_t;

static void stalled_free(stalled_t *s) {
  sl_fwd_message_free(&s->msg);
  sl_fwd_frame_free(&s->frame);
  sl_route_table_unref(s->table);
  free(s->tag);
  free(s);
}

/* ---- encoding -------------------------------------------------------------- */

static void format_rfc3339(int64_t sec, uint32_t nsec, char *buf, size_t len) {
  time_t t = (time_t)sec;
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, len - n, ".%09" PRIu32 "Z", nsec);
}

/* "<sec>.<9 digits of ns>", exact, without printf (once per record when a
 * route sets time_key).  buf holds at least SL_DTOA_BUF + 11 bytes. */
static void format_epoch(int64_t sec, uint32_t nsec, char *buf) {
  size_t n = sl_dtoa_i64(sec, buf);
  buf[n++] = '.';
  for (int i = 8; i >= 0; i--, nsec /= 10) buf[n + (size_t)i] = (char)('0' + nsec % 10);
  buf[n + 9] = '\0';
}

typedef struct {
  const char *key;
  size_t key_len;
  const char *str;
  size_t len;
  bool number; /* str is the exact decimal text of a number (epoch time) */
} extra_t;

/* Collects the keys injected into every record of this message. */
static size_t collect_extras(const ingest_t *in, const sl_route_t *r, const sl_fwd_peer_t *peer,
                             const char *tag, size_t tag_len, const char *time_text, extra_t *x) {
  const sl_forward_conf_t *f = in->fwd;
  size_t n = 0;
  if (r && r->tag_key) x[n++] = (extra_t){r->tag_key, strlen(r->tag_key), tag, tag_len, false};
  if (r && r->time_key)
    x[n++] = (extra_t){r->time_key, strlen(r->time_key), time_text, strlen(time_text), !r->time_rfc3339};
  if (f->source_address_key)
    x[n++] = (extra_t){f->source_address_key, strlen(f->source_address_key), peer->address, strlen(peer->address),
                       false};
  if (f->source_hostname_key)
    x[n++] = (extra_t){f->source_hostname_key, strlen(f->source_hostname_key), peer->hostname,
                       strlen(peer->hostname), false};
  return n;
}

static bool key_overridden(const msgpack_object *k, const extra_t *x, size_t nx) {
  if (k->type != MSGPACK_OBJECT_STR) return false;
  for (size_t i = 0; i < nx; i++)
    if (x[i].key_len == k->via.str.size && memcmp(x[i].key, k->via.str.ptr, k->via.str.size) == 0)
      return true;
  return false;
}

static int encode_json(sl_buf_t *out, const msgpack_object *rec, const extra_t *x, size_t nx) {
  int r = sl_buf_putc(out, '{');
  bool first = true;
  for (uint32_t i = 0; !r && i < rec->via.map.size; i++) {
    const msgpack_object_kv *kv = &rec->via.map.ptr[i];
    if (key_overridden(&kv->key, x, nx)) continue;
    if (!first) r = sl_buf_putc(out, ',');
    first = false;
    if (!r) r = sl_json_encode_key(out, &kv->key);
    if (!r) r = sl_buf_putc(out, ':');
    if (!r) r = sl_json_encode(out, &kv->val);
  }
  for (size_t i = 0; !r && i < nx; i++) {
    if (!first) r = sl_buf_putc(out, ',');
    first = false;
    if (!r) r = sl_json_encode_string(out, x[i].key, x[i].key_len);
    if (!r) r = sl_buf_putc(out, ':');
    if (r) break;
    /* The epoch time goes out as its exact decimal text: a JSON number with
     * all nine digits of nanoseconds, which a double could not carry. */
    r = x[i].number ? sl_buf_append(out, x[i].str, x[i].len) : sl_json_encode_string(out, x[i].str, x[i].len);
  }
  if (!r) r = sl_buf_putc(out, '}');
  return r;
}

static int encode_msgpack(sl_buf_t *out, const msgpack_object *rec, const extra_t *x, size_t nx) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, out, sl_buf_msgpack_write);
  uint32_t kept = 0;
  for (uint32_t i = 0; i < rec->via.map.size; i++) kept += !key_overridden(&rec->via.map.ptr[i].key, x, nx);
  int r = msgpack_pack_map(&pk, kept + (uint32_t)nx);
  for (uint32_t i = 0; !r && i < rec->via.map.size; i++) {
    const msgpack_object_kv *kv = &rec->via.map.ptr[i];
    if (key_overridden(&kv->key, x, nx)) continue;
    r = msgpack_pack_object(&pk, kv->key);
    if (!r) r = msgpack_pack_object(&pk, kv->val);
  }
  for (size_t i = 0; !r && i < nx; i++) {
    r = msgpack_pack_str_with_body(&pk, x[i].key, x[i].key_len);
    if (!r)
      r = x[i].number ? msgpack_pack_double(&pk, strtod(x[i].str, NULL))
                      : msgpack_pack_str_with_body(&pk, x[i].str, x[i].len);
  }
  return r ? SL_ENOMEM : 0;
}

/* ---- producing ------------------------------------------------------------- */

/* Produces entry `e`.  0 (produced, or dropped with a count), or
 * SL_EQUEUEFULL. */
static int produce_entry(ingest_t *in, const sl_route_table_t *table, const sl_route_t *route, const sl_fwd_entry_t *e,
                         const char *tag, size_t tag_len, const sl_fwd_peer_t *peer, sl_completion_t *done) {
  char time_text[48];
  if (route && route->time_key) {
    if (route->time_rfc3339)
      format_rfc3339(e->sec, e->nsec, time_text, sizeof time_text);
    else
      format_epoch(e->sec, e->nsec, time_text);
  }
  extra_t extras[4];
  size_t nx = collect_extras(in, route, peer, tag, tag_len, time_text, extras);

  const char *topic = route->topic_text;
  if (!sl_topic_tmpl_is_fixed(route->topic)) {
    const char *why = NULL;
    sl_buf_reset(&in->topic);
    if (sl_topic_tmpl_render(route->topic, tag, tag_len, e->record, &in->topic, &why) ||
        sl_buf_putc(&in->topic, 0)) {
      sl_metric_inc(in->m.template_errors);
      sl_log_rl(SL_LOG_WARN, "route", "record with tag %.*s dropped: topic \"%s\": %s", (int)tag_len, tag,
                route->topic_text, why ? why : "out of memory");
      return 0;
    }
    topic = in->topic.data;
  }
  sl_buf_reset(&in->key);
  bool has_key = false;
  if (route->key.n) {
    const msgpack_object *kv = sl_field_lookup(e->record, &route->key);
    if (kv && kv->type != MSGPACK_OBJECT_NIL) {
      if (sl_scalar_text(kv, &in->key) && sl_json_encode(&in->key, kv)) {
        sl_log_rl(SL_LOG_ERROR, "route", "cannot encode the key of a record with tag %.*s: out of memory",
                  (int)tag_len, tag);
        if (done) sl_completion_fail(done);
        return 0;
      }
      has_key = true;
    }
  }
  sl_buf_reset(&in->value);
  int r = route->format == SL_FORMAT_MSGPACK ? encode_msgpack(&in->value, e->record, extras, nx)
                                             : encode_json(&in->value, e->record, extras, nx);
  if (r) {
    sl_log_rl(SL_LOG_ERROR, "route", "cannot encode a record with tag %.*s: %s", (int)tag_len, tag,
              sl_strerror(r));
    if (done) sl_completion_fail(done);
    return 0;
  }
  /* Times past year 292 million would overflow in ms; Kafka gets the
   * largest timestamp instead. */
  int64_t ts_ms = e->sec > INT64_MAX / 1000 - 1 ? INT64_MAX : e->sec * 1000 + e->nsec / 1000000;
  sl_kafka_header_t header = {"fluent.tag", tag, tag_len};
  sl_kafka_topic_t *fixed =
      route == &in->default_route ? in->default_topic : table->handles[route - table->routes];
  const void *k = has_key ? in->key.data : NULL;
  size_t klen = has_key ? in->key.len : 0;
  r = fixed && topic == route->topic_text
          ? sl_kafka_producer_send_to(in->producer, fixed, k, klen, in->value.data, in->value.len, ts_ms, &header, done)
          : sl_kafka_producer_send(in->producer, topic, k, klen, in->value.data, in->value.len, ts_ms, &header, done);
  /* librdkafka copied the value; a buffer grown by one huge record is not
   * kept for the ones after it. */
  if (in->value.cap > BIG_BUFFER) sl_buf_free(&in->value);
  if (r == 0) {
    if (done) sl_completion_hold(done);
    return 0;
  }
  if (r == SL_EQUEUEFULL) return r;
  /* Refused for good (logged and counted by the producer): no ack. */
  if (done) sl_completion_fail(done);
  return 0;
}

/* Appends one record's line to `b`; SL_ENOMEM when it could not. */
static int print_entry(ingest_t *in, sl_buf_t *b, const sl_fwd_entry_t *e, const char *tag, size_t tag_len,
                       const sl_fwd_peer_t *peer) {
  char time_text[48];
  format_rfc3339(e->sec, e->nsec, time_text, sizeof time_text);
  extra_t extras[4];
  size_t nx = collect_extras(in, NULL, peer, tag, tag_len, time_text, extras);
  int r = sl_buf_puts(b, "{\"tag\":");
  if (!r) r = sl_json_encode_string(b, tag, tag_len);
  if (!r) r = sl_buf_puts(b, ",\"time\":\"");
  if (!r) r = sl_buf_puts(b, time_text);
  if (!r) r = sl_buf_puts(b, "\",\"record\":");
  if (!r) r = encode_json(b, e->record, extras, nx);
  if (!r) r = sl_buf_puts(b, "}\n");
  return r;
}

/* Print mode: the message's lines go out in one batch; the chunk is acked
 * once they are written.  Returns false when stdout is behind. */
static bool print_message(ingest_t *in, const sl_fwd_message_t *msg, const char *tag, size_t tag_len,
                          const sl_fwd_peer_t *peer, sl_completion_t *done) {
  sl_buf_t lines = {0};
  for (size_t i = 0; i < msg->n_entries; i++) {
    if (print_entry(in, &lines, &msg->entries[i], tag, tag_len, peer)) {
      sl_log_rl(SL_LOG_ERROR, "ingest", "out of memory printing records with tag %.*s; their chunk is not acked",
                (int)tag_len, tag);
      sl_buf_free(&lines);
      if (done) sl_completion_fail(done);
      return true;
    }
  }
  sl_metric_add(in->m.printed, msg->n_entries);
  return sl_print_out_write(in->print, &lines, done);
}

/* Produces entries from *next on.  0 when all are done, 1 when the queue is
 * full (*next says where to go on). */
static int run_entries(ingest_t *in, const sl_route_table_t *table, const sl_route_t *route, sl_fwd_message_t *msg,
                       size_t *next, const char *tag, size_t tag_len, const sl_fwd_peer_t *peer,
                       sl_completion_t *done) {
  for (; *next < msg->n_entries; (*next)++)
    if (produce_entry(in, table, route, &msg->entries[*next], tag, tag_len, peer, done) == SL_EQUEUEFULL) return 1;
  return 0;
}

static const sl_route_t *route_for(ingest_t *in, const char *tag, size_t tag_len, size_t n_records) {
  const sl_route_t *r = sl_route_find(in->routes->routes, in->routes->n, tag, tag_len);
  if (r) return r;
  if (in->default_route.topic) return &in->default_route;
  sl_metric_add(in->m.unmatched, n_records);
  sl_log_rl(SL_LOG_WARN, "route", "%zu records with tag %.*s dropped: no route matches and no default_topic",
            n_records, (int)tag_len, tag);
  return NULL;
}

static void fail_and_seal(sl_completion_t *done) {
  if (!done) return;
  sl_completion_fail(done);
  sl_completion_seal(done);
}

/* The forward server's handler.  Returns false when the message had to be
 * held back (the producer is full): the server is paused then. */
static bool on_message(void *arg, const sl_fwd_peer_t *peer, sl_fwd_frame_t *frame, sl_fwd_message_t *msg,
                       sl_completion_t *done) {
  ingest_t *in = arg;
  const char *tag = msg->tag;
  size_t tag_len = msg->tag_len;
  const char *prefix = in->fwd->tag_prefix;
  if (prefix) {
    sl_buf_reset(&in->tagbuf);
    if (sl_buf_puts(&in->tagbuf, prefix) || sl_buf_putc(&in->tagbuf, '.') ||
        sl_buf_append(&in->tagbuf, tag, tag_len)) {
      sl_log_rl(SL_LOG_ERROR, "ingest", "out of memory prefixing a tag; the message is not acked");
      fail_and_seal(done);
      goto handed_on;
    }
    tag = in->tagbuf.data;
    tag_len = in->tagbuf.len;
  }
  if (!in->producer) {
    bool room = print_message(in, msg, tag, tag_len, peer, done);
    if (done) sl_completion_seal(done);
    if (!room && !in->stopping && !sl_fwd_server_paused(in->server)) {
      sl_log(SL_LOG_INFO, "ingest", "stdout is behind: pausing reads from forward clients");
      sl_fwd_server_pause(in->server);
      in->paused_reads = true;
    }
    goto handed_on;
  }
  const sl_route_t *route = route_for(in, tag, tag_len, msg->n_entries);
  size_t next = 0;
  if (!route ||
      (!in->stalled_head && run_entries(in, in->routes, route, msg, &next, tag, tag_len, peer, done) == 0)) {
    if (done) sl_completion_seal(done);
    goto handed_on;
  }
  /* The queue is full (or others wait already): keep the rest, in order. */
  stalled_t *s = calloc(1, sizeof *s);
  if (!s || !(s->tag = strndup(tag, tag_len))) {
    free(s);
    sl_log_rl(SL_LOG_ERROR, "ingest", "out of memory holding a message back; it will not be acked");
    fail_and_seal(done);
    goto handed_on;
  }
  s->frame = *frame;
  s->msg = *msg;
  s->next_entry = next;
  s->route = route;
  s->table = in->routes;
  sl_route_table_ref(s->table);
  s->done = done;
  s->tag_len = tag_len;
  snprintf(s->address, sizeof s->address, "%s", peer->address);
  snprintf(s->hostname, sizeof s->hostname, "%s", peer->hostname);
  if (in->stalled_tail)
    in->stalled_tail->next = s;
  else
    in->stalled_head = s;
  in->stalled_tail = s;
  in->n_stalled++;
  sl_gauge_inc(in->m.held_back);
  if (!in->stopping && !sl_fwd_server_paused(in->server)) {
    sl_log(SL_LOG_INFO, "ingest", "producer queue full: pausing reads from forward clients");
    sl_fwd_server_pause(in->server);
    in->paused_reads = true;
  }
  return false;
handed_on:
  sl_fwd_message_free(msg);
  sl_fwd_frame_free(frame);
  return true;
}

/* The producer's queue is below its resume mark again: finish the messages
 * held back, in order, then read from clients again. */
static void on_room(void *arg) {
  ingest_t *in = arg;
  if (in->stalled_head) sl_fwd_server_reap_gone(in->server);
  while (in->stalled_head) {
    stalled_t *s = in->stalled_head;
    sl_fwd_peer_t peer = {s->address, s->hostname};
    if (s->done && sl_completion_abandoned(s->done)) {
      /* Its client left without the ack and will send the chunk again:
       * producing the rest now would only duplicate it. */
      size_t left = s->msg.n_entries - s->next_entry;
      sl_metric_add(in->m.abandoned, left);
      sl_log_rl(SL_LOG_WARN, "ingest",
                "%zu held-back records with tag %.*s dropped: their client disconnected before its ack (it "
                "sends the chunk again)",
                left, (int)s->tag_len, s->tag);
      sl_completion_fail(s->done);
    } else if (run_entries(in, s->table, s->route, &s->msg, &s->next_entry, s->tag, s->tag_len, &peer, s->done)) {
      return;
    }
    if (s->done) sl_completion_seal(s->done);
    in->stalled_head = s->next;
    if (!in->stalled_head) in->stalled_tail = NULL;
    in->n_stalled--;
    sl_gauge_dec(in->m.held_back);
    stalled_free(s);
  }
  /* Resume only a pause of our own, and not once stopping: the drain keeps
   * reads paused for good. */
  if (in->paused_reads && !in->stopping) {
    in->paused_reads = false;
    sl_log(SL_LOG_INFO, "ingest", "producer queue drained: resuming reads from forward clients");
    sl_fwd_server_resume(in->server);
  }
}

static void on_delivery(void *arg, void *msg_opaque, int err) {
  ingest_t *in = arg;
  if (err) in->records_failed++;
  if (msg_opaque) sl_completion_settle(msg_opaque, err == 0);
}

static void on_fatal(void *arg, const char *reason) {
  ingest_t *in = arg;
  in->host.on_fatal(in->host.arg, "ingest", reason);
}

/* ---- the stage ------------------------------------------------------------- */

static int stage_start(void *self) {
  ingest_t *in = self;
  return sl_fwd_server_start(in->server);
}

static void stage_stop_intake(void *self) {
  ingest_t *in = self;
  in->stopping = true;
  in->paused_reads = false;
  sl_fwd_server_stop_accepting(in->server);
  sl_fwd_server_pause(in->server);
}

static size_t stage_inflight(void *self, char *what, size_t len) {
  ingest_t *in = self;
  if (in->print) {
    size_t bytes = sl_print_out_pending(in->print);
    snprintf(what, len, "%zu bytes of records not yet written to stdout", bytes);
    return bytes;
  }
  size_t inflight = sl_kafka_producer_inflight(in->producer);
  snprintf(what, len, "%zu records unacknowledged by Kafka and %zu messages held back", inflight, in->n_stalled);
  return inflight + in->n_stalled;
}

static void stage_outcome(void *self, char *what, size_t len) {
  ingest_t *in = self;
  const char *where = in->producer ? "Kafka" : "stdout";
  if (in->records_failed)
    snprintf(what, len, "%llu records failed in %s since the start; their chunks were not acked (clients re-send them)",
             (unsigned long long)in->records_failed, where);
  else
    snprintf(what, len, "every record handed to %s was acknowledged", where);
}

/* Fails what is held back (no ack: the clients re-send it), so that every
 * chunk's completion is done before the server and its trackers go. */
static void fail_held_back(ingest_t *in) {
  while (in->stalled_head) {
    stalled_t *s = in->stalled_head;
    in->stalled_head = s->next;
    in->records_failed += s->msg.n_entries - s->next_entry;
    fail_and_seal(s->done);
    stalled_free(s);
  }
  in->stalled_tail = NULL;
  sl_gauge_add(in->m.held_back, -(double)in->n_stalled);
  in->n_stalled = 0;
}

static void on_print_closed(void *arg) {
  ingest_t *in = arg;
  in->on_closed(in->on_closed_arg);
}

static void on_server_closed(void *arg) {
  ingest_t *in = arg;
  if (in->print)
    sl_print_out_close(in->print, on_print_closed, in);
  else
    in->on_closed(in->on_closed_arg);
}

/* After the drain (or its deadline): whatever is still in flight is purged,
 * its delivery reports fail its chunks, and only then the connections and
 * their ack trackers close. */
static void stage_close(void *self, void (*on_closed)(void *arg), void *arg) {
  ingest_t *in = self;
  in->on_closed = on_closed;
  in->on_closed_arg = arg;
  fail_held_back(in);
  if (in->producer && sl_kafka_producer_inflight(in->producer)) {
    size_t n = sl_kafka_producer_inflight(in->producer);
    sl_kafka_producer_purge(in->producer);
    sl_log(SL_LOG_WARN, "ingest", "%zu records were still unacknowledged by Kafka and were purged; %zu remain",
           n, sl_kafka_producer_inflight(in->producer));
  }
  sl_fwd_server_close(in->server, on_server_closed, in);
}

static void stage_free(void *self) {
  ingest_t *in = self;
  if (!in) return;
  fail_held_back(in);
  sl_kafka_producer_free(in->producer, 0);
  sl_print_out_free(in->print);
  sl_fwd_server_free(in->server);
  sl_buf_free(&in->value);
  sl_buf_free(&in->key);
  sl_buf_free(&in->topic);
  sl_buf_free(&in->tagbuf);
  sl_route_free(&in->default_route);
  sl_route_table_unref(in->routes);
  free(in);
}

/* The routes of `cfg` as this ingest's table: fixed topics exist (embedded)
 * and have their producer handles (and metadata) before the first record. */
static int routes_new(ingest_t *in, const sl_config_t *cfg, sl_route_table_t **out) {
  sl_route_table_t *t;
  int r = sl_route_table_new(sl_config_routes(cfg), cfg->routes.n, &t);
  if (r) return r;
  for (size_t i = 0; in->producer && i < t->n; i++) {
    if (!sl_topic_tmpl_is_fixed(t->routes[i].topic)) continue;
    if (in->embedded) sl_kafka_embedded_create_topic(in->embedded, t->routes[i].topic_text);
    t->handles[i] = sl_kafka_producer_topic(in->producer, t->routes[i].topic_text);
  }
  *out = t;
  return 0;
}

/* Swaps the route table between two messages: a message held back keeps
 * the table it was routed with.  TLS certificates are read again (for new
 * connections) from the paths the ingest started with. */
static void stage_reload(void *self, const sl_config_t *next, void (*on_done)(void *arg, int err), void *arg) {
  ingest_t *in = self;
  sl_route_table_t *t;
  int r = routes_new(in, next, &t);
  if (r) {
    sl_log(SL_LOG_ERROR, "ingest", "cannot apply the reloaded routes (%s); keeping the %zu routes in use",
           sl_strerror(r), in->routes->n);
  } else {
    sl_route_table_unref(in->routes);
    in->routes = t;
  }
  int tls = sl_fwd_server_reload_tls(in->server, in->fwd);
  on_done(arg, r ? r : tls);
}

static const sl_stage_ops_t ingest_ops = {
    .name = "ingest",
    .start = stage_start,
    .stop_intake = stage_stop_intake,
    .inflight = stage_inflight,
    .outcome = stage_outcome,
    .close = stage_close,
    .free = stage_free,
    .reload = stage_reload,
};

struct sl_fwd_server *sl_ingest_one_server(const sl_stage_t *stage) { return ((ingest_t *)stage->self)->server; }

int sl_ingest_one_new(const sl_stage_env_t *env, sl_stage_t *out) {
  const sl_config_t *cfg = env->cfg;
  *out = (sl_stage_t){0};
  if (!cfg->input.forward.enabled) return 0;
  ingest_t *in = calloc(1, sizeof *in);
  if (!in) return SL_ENOMEM;
  in->cfg = cfg;
  in->fwd = &cfg->input.forward;
  in->embedded = env->embedded;
  in->host = env->host;
  sl_metrics_t *r = env->metrics;
  in->m.unmatched = sl_metrics_counter(r, "sluice_route_unmatched_records_total",
                                       "Records whose tag matched no route and no default_topic: dropped.");
  in->m.template_errors = sl_metrics_counter(r, "sluice_route_template_errors_total",
                                             "Records dropped because the route's topic template or key could "
                                             "not be filled.");
  in->m.printed = sl_metrics_counter(r, "sluice_print_records_total",
                                     "Records written to stdout (print mode, no [kafka] section).");
  in->m.held_back = sl_metrics_gauge(r, "sluice_ingest_held_back_messages",
                                     "Messages held back because the producer queue was full (at most one: "
                                     "reading stops meanwhile).");
  in->m.abandoned = sl_metrics_counter(r, "sluice_ingest_abandoned_records_total",
                                       "Held-back records dropped because their client disconnected before its "
                                       "ack (it sends the chunk again).");
  int err = 0;
  const sl_kafka_conf_t *k = &cfg->kafka;
  if (k->enabled) {
    if (k->default_topic) {
      char why[256];
      in->default_route.topic_text = strdup(k->default_topic);
      if (!in->default_route.topic_text ||
          (err = sl_topic_tmpl_compile(k->default_topic, &in->default_route.topic, why, sizeof why)))
        goto fail;
    }
    if (env->embedded && k->default_topic) sl_kafka_embedded_create_topic(env->embedded, k->default_topic);
    sl_diag_t d = {0};
    sl_kafka_producer_cbs_t cbs = {.on_delivery = on_delivery, .on_room = on_room, .on_fatal = on_fatal, .arg = in};
    err = sl_kafka_producer_new(env->bridge, env->metrics, k, env->bootstrap, cfg->file, &cbs, &in->producer, &d);
    for (size_t i = 0; i < d.n; i++) sl_log(SL_LOG_ERROR, "kafka", "%s", d.lines[i]);
    sl_diag_free(&d);
    if (err) goto fail;
    if (k->default_topic) in->default_topic = sl_kafka_producer_topic(in->producer, k->default_topic);
  } else {
    sl_log(SL_LOG_WARN, "ingest",
           "no [kafka] section: print mode, records are written to stdout as JSON lines and acked once written");
    if (!(in->print = sl_print_out_new(env->loop, STDOUT_FILENO, on_room, in))) {
      err = SL_ENOMEM;
      goto fail;
    }
  }
  if ((err = routes_new(in, cfg, &in->routes))) goto fail;
  sl_fwd_handler_t handler = {.on_message = on_message, .arg = in};
  if ((err = sl_fwd_server_new(env->loop, in->fwd, env->metrics, &handler, &in->server))) goto fail;
  *out = (sl_stage_t){.ops = &ingest_ops, .self = in};
  return 0;
fail:
  if (err == SL_ENOMEM) sl_log(SL_LOG_ERROR, "ingest", "out of memory");
  stage_free(in);
  return err;
}
