/* The Kafka bridge and producer with a real librdkafka client against
 * librdkafka's mock cluster (a Kafka-protocol peer on loopback, hosted by a
 * client of its own), driven by a real uv loop: delivery reports come back
 * once each on the loop thread, on_room fires once when a full queue has
 * drained to the resume mark, a record refused at send never reports, one
 * wake-up pipe serves every attached client, and an attachment may detach
 * itself or a sibling from inside a serve callback.
 *
 * The mock cluster rather than a stub because what can go wrong here lives
 * between librdkafka's threads, its queues and the loop.  Every wait is for
 * an event, under a 20 s deadline; every case ends with the loop closed. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/metrics.h"
#include "kafka/kafka_bridge.h"
#include "kafka/kafka_conf.h"
#include "kafka/kafka_producer.h"
#include "tap.h"
#include "test_loop.h"

#define TOPIC "sluice-test"
#define DEADLINE_MS 20000
#define MAX_RECORDS 1000
#define BIG_VALUE 20000

static pthread_t loop_thread; /* the thread that calls uv_run */
static char value_bytes[BIG_VALUE];

/* One loop, one metrics registry, one bridge, and a one-broker mock
 * cluster with TOPIC on it. */
typedef struct {
  test_loop_t tl;
  int bridge_closed;
  sl_metrics_t *metrics;
  sl_kafka_bridge_t *bridge;
  rd_kafka_t *mock_host;
  rd_kafka_mock_cluster_t *mock;
  const char *bootstrap; /* the mock cluster's; valid while it lives */
} fixture_t;

/* One producer and what its callbacks saw.  Record i is sent with
 * &reports_of[i] as its opaque, so a report names its record. */
typedef struct {
  fixture_t *fx;
  sl_kafka_producer_t *p;
  unsigned char reports_of[MAX_RECORDS];
  size_t reports, failed, stray, off_loop;
  size_t want; /* reports the current wait waits for */
  int rooms;
  size_t inflight_at_room;
} client_t;

static void check_done(fixture_t *fx) { test_loop_check(&fx->tl); }

static bool wait_until(fixture_t *fx, bool (*done)(void *), void *arg, uint64_t timeout_ms) {
  return test_loop_wait(&fx->tl, done, arg, timeout_ms);
}

static void run_for(fixture_t *fx, uint64_t ms) { test_loop_run_for(&fx->tl, ms); }


static bool fixture_setup(fixture_t *fx, const char *name) {
  char err[512];
  int r = 0;
  memset(fx, 0, sizeof *fx);
  uv_loop_init(&fx->tl.loop);
  uv_timer_init(&fx->tl.loop, &fx->tl.deadline);
  fx->metrics = sl_metrics_new();
  if (fx->metrics) fx->bridge = sl_kafka_bridge_new(&fx->tl.loop, fx->metrics, &r);
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  if (!(fx->mock_host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err))) {
    printf("# mock host: %s\n", err);
    rd_kafka_conf_destroy(conf);
  }
  if (fx->mock_host) fx->mock = rd_kafka_mock_cluster_new(fx->mock_host, 1);
  rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR__FAIL;
  if (fx->mock) {
    fx->bootstrap = rd_kafka_mock_cluster_bootstraps(fx->mock);
    topic_err = rd_kafka_mock_topic_create(fx->mock, TOPIC, 1, 1);
  }
  bool up = fx->bridge && fx->mock && topic_err == RD_KAFKA_RESP_ERR_NO_ERROR;
  ok(up, "%s: bridge and mock cluster up", name);
  return up;
}

static void on_bridge_closed(void *arg) {
  ((fixture_t *)arg)->bridge_closed++;
}

/* The daemon's order: close the bridge's handles and run the loop dry,
 * then free the producers (they detach), then the bridge. */
static void fixture_teardown(fixture_t *fx, const char *name, client_t *const *clients, size_t n) {
  if (fx->bridge) sl_kafka_bridge_close(fx->bridge, on_bridge_closed, fx);
  uv_close((uv_handle_t *)&fx->tl.deadline, NULL);
  uv_run(&fx->tl.loop, UV_RUN_DEFAULT);
  if (fx->bridge)
    is_int(fx->bridge_closed, 1, "%s: the bridge reports its handles closed once", name);
  for (size_t i = 0; i < n; i++) sl_kafka_producer_free(clients[i]->p, 0);
  sl_kafka_bridge_free(fx->bridge);
  is_int(uv_loop_close(&fx->tl.loop), 0, "%s: the loop closes with no handle left", name);
  if (fx->mock) rd_kafka_mock_cluster_destroy(fx->mock);
  if (fx->mock_host) rd_kafka_destroy(fx->mock_host);
  sl_metrics_free(fx->metrics);
}

static void on_delivery(void *arg, void *msg_opaque, int err) {
  client_t *c = arg;
  unsigned char *slot = msg_opaque;
  if (!pthread_equal(pthread_self(), loop_thread)) c->off_loop++;
  if (slot >= c->reports_of && slot < c->reports_of + MAX_RECORDS)
    (*slot)++;
  else
    c->stray++;
  c->reports++;
  if (err) c->failed++;
  check_done(c->fx);
}

static void on_room(void *arg) {
  client_t *c = arg;
  c->rooms++;
  c->inflight_at_room = sl_kafka_producer_inflight(c->p);
  check_done(c->fx);
}

/* No case expects one: shown for whoever reads a failure. */
static void on_fatal(void *arg, const char *reason) {
  (void)arg;
  printf("# fatal producer error: %s\n", reason);
}

#define KV(k, v) \
  { .key = (char *)(k), .value = (char *)(v) }

static sl_kafka_conf_t conf_of(sl_kv_t *props, size_t n, double resume_below) {
  sl_kafka_conf_t k;
  memset(&k, 0, sizeof k);
  k.resume_below = resume_below;
  k.properties.items = props;
  k.properties.n = n;
  return k;
}

static bool client_start(fixture_t *fx, client_t *c, const sl_kafka_conf_t *k) {
  sl_diag_t d = {0};
  sl_kafka_producer_cbs_t cbs = {
      .on_delivery = on_delivery, .on_room = on_room, .on_fatal = on_fatal, .arg = c};
  c->fx = fx;
  int r = sl_kafka_producer_new(fx->bridge, fx->metrics, k, fx->bootstrap, "test.toml", &cbs, &c->p,
                                &d);
  for (size_t i = 0; i < d.n; i++) printf("# %s\n", d.lines[i]);
  sl_diag_free(&d);
  if (r) c->p = NULL;
  return r == 0;
}

/* Record i: key "key-<i>", value_len bytes, a header on odd records so
 * both produce paths run. */
static int send_record(client_t *c, size_t i, size_t value_len) {
  char key[32];
  int kl = snprintf(key, sizeof key, "key-%zu", i);
  sl_kafka_header_t h = {.name = "source", .value = "test", .value_len = 4};
  return sl_kafka_producer_send(c->p, TOPIC, key, (size_t)kl, value_bytes, value_len, 0,
                                i % 2 ? &h : NULL, &c->reports_of[i]);
}

/* Records in [from, to) reported exactly once. */
static size_t reported_once(const client_t *c, size_t from, size_t to) {
  size_t n = 0;
  for (size_t i = from; i < to; i++) n += c->reports_of[i] == 1;
  return n;
}

static bool client_reported(void *arg) {
  client_t *c = arg;
  return c->reports >= c->want;
}

static bool room_seen(void *arg) {
  return ((client_t *)arg)->rooms > 0;
}

/* 1000 records: each opaque back once, ok, on the loop thread, and the
 * counters a scrape shows agree. */
static void delivery_on_the_loop(void) {
  const char *name = "delivery";
  enum { N = 1000 };
  fixture_t fx;
  client_t *c = calloc(1, sizeof *c);
  sl_kv_t props[] = {KV("linger.ms", "0")};
  sl_kafka_conf_t k = conf_of(props, 1, 0.5);
  if (fixture_setup(&fx, name) && c && client_start(&fx, c, &k)) {
    size_t refused = 0;
    for (size_t i = 0; i < N; i++) refused += send_record(c, i, 100) != 0;
    is_int(refused, 0, "%s: all %d sends accepted", name, N);
    c->want = N;
    ok(wait_until(&fx, client_reported, c, DEADLINE_MS), "%s: %d reports arrive within 20 s", name,
       N);
    is_int(reported_once(c, 0, N), N, "%s: every opaque came back exactly once", name);
    is_int(c->stray, 0, "%s: no report carries an opaque that was not sent", name);
    is_int(c->failed, 0, "%s: every report says err 0", name);
    is_int(c->off_loop, 0, "%s: every callback ran on the loop thread", name);
    is_int(sl_kafka_producer_inflight(c->p), 0, "%s: nothing in flight after the reports", name);
    is_int(test_metric(fx.metrics, "sluice_kafka_delivered_total"), N, "%s: delivered_total %d", name,
           N);
    is_int(test_metric(fx.metrics, "sluice_kafka_produced_total"), N, "%s: produced_total %d", name, N);
    is_int(test_metric(fx.metrics, "sluice_kafka_missed_wakeups_total"), 0,
           "%s: the safety net found no unannounced event", name);
    ok(test_metric(fx.metrics, "sluice_kafka_wakeups_total") > 0, "%s: the pipe woke the loop", name);
  } else {
    ok(0, "%s: producer created", name);
  }
  client_t *clients[] = {c};
  fixture_teardown(&fx, name, clients, c ? 1 : 0);
  free(c);
}

/* A 20-record queue with the broker down fills; on_room waits for the
 * broker, then fires once, at or below the resume mark; nothing is lost. */
static void room_after_full_queue(void) {
  const char *name = "room";
  enum { QMAX = 20, RESUME_MARK = 10 };
  fixture_t fx;
  client_t *c = calloc(1, sizeof *c);
  sl_kv_t props[] = {
      KV("queue.buffering.max.messages", "20"),
      KV("linger.ms", "0"),
      /* The producer retries the broker it lost quickly once it is back. */
      KV("reconnect.backoff.ms", "10"),
      KV("reconnect.backoff.max.ms", "100"),
  };
  sl_kafka_conf_t k = conf_of(props, sizeof props / sizeof props[0], 0.5);
  bool up = fixture_setup(&fx, name);
  if (up) rd_kafka_mock_broker_set_down(fx.mock, 1);
  if (up && c && client_start(&fx, c, &k)) {
    size_t accepted = 0;
    int r = 0;
    while (accepted < QMAX + 5 && (r = send_record(c, accepted, 100)) == 0) accepted++;
    is_int(r, SL_EQUEUEFULL, "%s: a send into the full queue returns SL_EQUEUEFULL", name);
    is_int(accepted, QMAX, "%s: the queue took queue.buffering.max.messages records first", name);

    run_for(&fx, 300);
    is_int(c->rooms, 0, "%s: no on_room while the broker is down", name);
    is_int(c->reports, 0, "%s: no record reported while the broker is down", name);

    rd_kafka_mock_broker_set_up(fx.mock, 1);
    ok(wait_until(&fx, room_seen, c, DEADLINE_MS), "%s: on_room fires once the broker is back",
       name);
    ok(c->inflight_at_room <= RESUME_MARK, "%s: at on_room at most %d records were in flight", name,
       RESUME_MARK);
    if (c->inflight_at_room > RESUME_MARK) printf("#   in flight: %zu\n", c->inflight_at_room);

    is_int(send_record(c, accepted, 100), 0, "%s: a send after on_room is accepted", name);
    c->want = accepted + 1;
    ok(wait_until(&fx, client_reported, c, DEADLINE_MS), "%s: every record is reported", name);
    is_int(reported_once(c, 0, accepted + 1), accepted + 1,
           "%s: each record sent, before the full queue and after on_room, reported once", name);
    is_int(c->failed, 0, "%s: all of them delivered ok", name);
    is_int(c->rooms, 1, "%s: on_room fired exactly once", name);
  } else {
    ok(0, "%s: producer created", name);
  }
  client_t *clients[] = {c};
  fixture_teardown(&fx, name, clients, c ? 1 : 0);
  free(c);
}

/* The producer's topic settings reach the topic handles it keeps: with
 * message.timeout.ms = 1000 in the properties and the broker down, a record
 * sent by topic name and one sent with two headers both fail after a
 * second, not after librdkafka's default of five minutes. */
static void topic_settings_kept(void) {
  const char *name = "topic settings";
  fixture_t fx;
  client_t *c = calloc(1, sizeof *c);
  sl_kv_t props[] = {KV("message.timeout.ms", "1000"), KV("linger.ms", "0")};
  sl_kafka_conf_t k = conf_of(props, 2, 0.5);
  bool up = fixture_setup(&fx, name);
  if (up) rd_kafka_mock_broker_set_down(fx.mock, 1);
  if (up && c && client_start(&fx, c, &k)) {
    sl_kafka_header_t hs[2] = {{.name = "a", .value = "1", .value_len = 1}, {.name = "b", .value = "2", .value_len = 1}};
    int r = send_record(c, 0, 100) |
            sl_kafka_producer_send_headers(c->p, TOPIC, "k", 1, value_bytes, 100, 0, hs, 2, &c->reports_of[1]);
    is_int(r, 0, "%s: both records accepted with the broker down", name);
    c->want = 2;
    ok(wait_until(&fx, client_reported, c, 10000), "%s: both are reported within 10 s", name);
    is_int(c->failed, 2, "%s: both failed after message.timeout.ms", name);
    is_int(test_metric(fx.metrics, "sluice_kafka_produced_total"), 2, "%s: produced_total 2", name);
  } else {
    ok(0, "%s: producer created", name);
  }
  client_t *clients[] = {c};
  fixture_teardown(&fx, name, clients, c ? 1 : 0);
  free(c);
}

static bool record_reported(void *arg) {
  return ((client_t *)arg)->reports_of[1] > 0;
}

/* A record over message.max.bytes: SL_EKAFKA at send, never a report,
 * counted as rejected; the producer goes on. */
static void refused_record(void) {
  const char *name = "refused";
  fixture_t fx;
  client_t *c = calloc(1, sizeof *c);
  sl_kv_t props[] = {KV("message.max.bytes", "10000"), KV("linger.ms", "0")};
  sl_kafka_conf_t k = conf_of(props, 2, 0.5);
  if (fixture_setup(&fx, name) && c && client_start(&fx, c, &k)) {
    is_int(send_record(c, 0, BIG_VALUE), SL_EKAFKA, "%s: a %d-byte record returns SL_EKAFKA", name,
           BIG_VALUE);
    is_int(sl_kafka_producer_inflight(c->p), 0, "%s: the refused record is not in flight", name);
    is_int(send_record(c, 1, 100), 0, "%s: a normal record after it is accepted", name);
    ok(wait_until(&fx, record_reported, c, DEADLINE_MS), "%s: the normal record is reported", name);
    is_int(c->failed, 0, "%s: and delivered ok", name);
    is_int(c->reports_of[0], 0, "%s: the refused record is never reported", name);
    is_int(c->reports, 1, "%s: one report in all", name);
    is_int(test_metric(fx.metrics, "sluice_kafka_produce_rejected_total"), 1,
           "%s: produce_rejected_total 1", name);
    is_int(test_metric(fx.metrics, "sluice_kafka_produced_total"), 1, "%s: produced_total 1", name);
  } else {
    ok(0, "%s: producer created", name);
  }
  client_t *clients[] = {c};
  fixture_teardown(&fx, name, clients, c ? 1 : 0);
  free(c);
}

static bool both_reported(void *arg) {
  client_t **c = arg;
  return c[0]->reports >= c[0]->want && c[1]->reports >= c[1]->want;
}

/* Two producers on one bridge: one pipe wakes the loop for both. */
static void two_clients_one_bridge(void) {
  const char *name = "two clients";
  enum { M = 300 };
  fixture_t fx;
  client_t *c[2] = {calloc(1, sizeof(client_t)), calloc(1, sizeof(client_t))};
  sl_kv_t props[] = {KV("linger.ms", "0")};
  sl_kafka_conf_t k = conf_of(props, 1, 0.5);
  if (fixture_setup(&fx, name) && c[0] && c[1] && client_start(&fx, c[0], &k) &&
      client_start(&fx, c[1], &k)) {
    size_t refused = 0;
    for (size_t i = 0; i < M; i++) {
      refused += send_record(c[0], i, 100) != 0;
      refused += send_record(c[1], i, 100) != 0;
    }
    is_int(refused, 0, "%s: all sends accepted", name);
    c[0]->want = c[1]->want = M;
    ok(wait_until(&fx, both_reported, c, DEADLINE_MS), "%s: both clients' reports arrive", name);
    is_int(reported_once(c[0], 0, M), M, "%s: the first client's records each reported once", name);
    is_int(reported_once(c[1], 0, M), M, "%s: the second client's records each reported once",
           name);
    is_int(c[0]->failed + c[1]->failed + c[0]->stray + c[1]->stray, 0, "%s: all ok, none stray",
           name);
    is_int(test_metric(fx.metrics, "sluice_kafka_delivered_total"), 2 * M,
           "%s: delivered_total counts both clients", name);
    /* Were a wake-up to serve only some attachments, the others' events
     * would wait for the safety net, which counts them here. */
    is_int(test_metric(fx.metrics, "sluice_kafka_missed_wakeups_total"), 0,
           "%s: every event was served on its wake-up", name);
  } else {
    ok(0, "%s: producers created", name);
  }
  fixture_teardown(&fx, name, c, c[0] && c[1] ? 2 : c[0] ? 1 : 0);
  free(c[0]);
  free(c[1]);
}

/* A bare attachment on an rd_kafka_queue_new queue.  The first call of a
 * `detacher` detaches itself and its sibling and destroys both queues, as
 * the header allows once detached. */
typedef struct raw_attach {
  fixture_t *fx;
  sl_kafka_attach_t *attach;
  rd_kafka_queue_t *queue;
  struct raw_attach *sibling;
  bool detacher, detached;
  int calls, late_calls; /* late: after it was detached */
  long long wakeups_at_detach;
} raw_attach_t;

static void raw_detach(raw_attach_t *r) {
  if (r->detached) return;
  sl_kafka_bridge_detach(r->attach);
  rd_kafka_queue_destroy(r->queue);
  r->detached = true;
}

static size_t serve_raw(void *arg) {
  raw_attach_t *r = arg;
  if (r->detached) {
    r->late_calls++;
    return 0;
  }
  r->calls++;
  size_t n = 0;
  for (rd_kafka_event_t *ev; (ev = rd_kafka_queue_poll(r->queue, 0)); n++)
    rd_kafka_event_destroy(ev);
  if (r->detacher) {
    raw_detach(r);
    raw_detach(r->sibling);
    r->wakeups_at_detach = test_metric(r->fx->metrics, "sluice_kafka_wakeups_total");
    check_done(r->fx);
  }
  return n;
}

static bool raw_detached(void *arg) {
  return ((raw_attach_t *)arg)->detached;
}

static void detach_inside_serve(void) {
  const char *name = "detach in serve";
  enum { M = 200 };
  fixture_t fx;
  client_t *c = calloc(1, sizeof *c);
  raw_attach_t self = {.fx = &fx, .detacher = true}, sibling = {.fx = &fx};
  self.sibling = &sibling;
  sl_kv_t props[] = {KV("linger.ms", "0")};
  sl_kafka_conf_t k = conf_of(props, 1, 0.5);
  if (fixture_setup(&fx, name) && c && client_start(&fx, c, &k)) {
    sibling.queue = rd_kafka_queue_new(fx.mock_host);
    self.queue = rd_kafka_queue_new(fx.mock_host);
    sibling.attach = sl_kafka_bridge_attach(fx.bridge, NULL, sibling.queue, serve_raw, &sibling);
    self.attach = sl_kafka_bridge_attach(fx.bridge, NULL, self.queue, serve_raw, &self);
    ok(self.attach && sibling.attach, "%s: two bare queues attached", name);
    ok(wait_until(&fx, raw_detached, &self, DEADLINE_MS),
       "%s: the detaching attachment is served and detaches", name);

    for (size_t i = 0; i < M; i++) send_record(c, i, 100);
    c->want = M;
    ok(wait_until(&fx, client_reported, c, DEADLINE_MS),
       "%s: the producer attached alongside still gets its reports", name);
    is_int(reported_once(c, 0, M), M, "%s: each of its records reported once", name);
    ok(test_metric(fx.metrics, "sluice_kafka_wakeups_total") > self.wakeups_at_detach,
       "%s: the loop was woken after the detach", name);
    is_int(self.calls, 1, "%s: the attachment that detached itself was served once", name);
    is_int(self.late_calls + sibling.late_calls, 0,
           "%s: no detached attachment is served again, not even later in the same pass", name);
  } else {
    ok(0, "%s: producer created", name);
  }
  /* Only when a check above failed are they still attached. */
  if (self.queue) raw_detach(&self);
  if (sibling.queue) raw_detach(&sibling);
  client_t *clients[] = {c};
  fixture_teardown(&fx, name, clients, c ? 1 : 0);
  free(c);
}

int main(void) {
  loop_thread = pthread_self();
  memset(value_bytes, 'v', sizeof value_bytes);
  delivery_on_the_loop();
  room_after_full_queue();
  topic_settings_kept();
  refused_record();
  two_clients_one_bridge();
  detach_inside_serve();
  return tap_done();
}
