/* The Kafka consumer against librdkafka's mock cluster, on a real uv loop
 * through the bridge: every record of a 4-partition topic arrives once, in
 * order, on the loop thread; a commit with metadata is what a second member
 * of the group is assigned (offsets and metadata) and resumes from; pause
 * holds records back until resume; and two members of one group split the
 * partitions, with the rebalance reported to both, under the eager and the
 * cooperative protocol.
 *
 * Every wait is for an event under a deadline; the only fixed wait shows
 * that a paused consumer receives nothing.  The mock cluster keeps a member
 * that left until its session times out, hence session.timeout.ms=6000. */
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
#include "jobs/watermark.h"
#include "kafka/kafka_bridge.h"
#include "kafka/kafka_conf.h"
#include "kafka/kafka_consumer.h"
#include "tap.h"
#include "test_loop.h"

#define TOPIC "sluice-jobs-in"
#define NPART 4
#define DEADLINE_MS 30000

static pthread_t loop_thread;

typedef struct {
  test_loop_t tl;
  sl_metrics_t *metrics;
  sl_kafka_bridge_t *bridge;
  rd_kafka_t *mock_host, *producer;
  rd_kafka_mock_cluster_t *mock;
  const char *bootstrap;
} fixture_t;

/* One consumer and what its callbacks saw. */
typedef struct {
  fixture_t *fx;
  sl_kafka_consumer_t *c;
  size_t received;
  size_t per_part[NPART];
  int64_t first_off[NPART], next_off[NPART]; /* next_off: last seen + 1 */
  size_t out_of_order, foreign, off_loop;
  bool owned[NPART];
  int assigns, revokes, closed;
  size_t assigned_parts; /* partitions named by on_assign calls */
  size_t revoked_parts;  /* and by on_revoke calls */
  int partial_revokes;   /* revocations that named fewer partitions than were owned */
  int64_t assign_offset[NPART];
  char assign_meta[NPART][SL_WATERMARK_META_MAX + 8];
  int commits_ok, commits_failed;
} cons_t;

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
    topic_err = rd_kafka_mock_topic_create(fx->mock, TOPIC, NPART, 1);
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", fx->bootstrap, err, sizeof err);
    rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof err);
    if (!(fx->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err)))
      rd_kafka_conf_destroy(conf);
  }
  bool up = fx->bridge && fx->mock && fx->producer && topic_err == RD_KAFKA_RESP_ERR_NO_ERROR;
  ok(up, "%s: bridge, mock cluster and test producer up", name);
  return up;
}

static void fixture_teardown(fixture_t *fx, const char *name) {
  if (fx->bridge) sl_kafka_bridge_close(fx->bridge, NULL, NULL);
  uv_close((uv_handle_t *)&fx->tl.deadline, NULL);
  uv_run(&fx->tl.loop, UV_RUN_DEFAULT);
  sl_kafka_bridge_free(fx->bridge);
  is_int(uv_loop_close(&fx->tl.loop), 0, "%s: the loop closes with no handle left", name);
  if (fx->producer) rd_kafka_destroy(fx->producer);
  if (fx->mock) rd_kafka_mock_cluster_destroy(fx->mock);
  if (fx->mock_host) rd_kafka_destroy(fx->mock_host);
  sl_metrics_free(fx->metrics);
}

/* `per_part` records to each partition (blocking: the test's own producer,
 * not the loop's); returns how many Kafka acknowledged. */
static size_t produce(fixture_t *fx, size_t per_part) {
  for (size_t i = 0; i < per_part * NPART; i++) {
    char v[32];
    int n = snprintf(v, sizeof v, "record-%zu", i);
    rd_kafka_producev(fx->producer, RD_KAFKA_V_TOPIC(TOPIC),
                      RD_KAFKA_V_PARTITION((int32_t)(i % NPART)), RD_KAFKA_V_VALUE(v, (size_t)n),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  }
  rd_kafka_flush(fx->producer, 10000);
  return rd_kafka_outq_len(fx->producer) == 0 ? per_part * NPART : 0;
}

static void on_records(void *arg, const sl_kafka_record_t *r, size_t n) {
  cons_t *k = arg;
  if (!pthread_equal(pthread_self(), loop_thread)) k->off_loop++;
  for (size_t i = 0; i < n; i++) {
    int p = r[i].partition;
    if (p < 0 || p >= NPART || strcmp(r[i].topic, TOPIC) != 0 || !k->owned[p]) {
      k->foreign++;
      continue;
    }
    if (k->per_part[p] == 0)
      k->first_off[p] = r[i].offset;
    else if (r[i].offset != k->next_off[p])
      k->out_of_order++;
    k->next_off[p] = r[i].offset + 1;
    k->per_part[p]++;
    k->received++;
  }
  check_done(k->fx);
}

static void on_assign(void *arg, const sl_kafka_partition_t *parts, size_t n) {
  cons_t *k = arg;
  k->assigns++;
  k->assigned_parts += n;
  for (size_t i = 0; i < n; i++) {
    int p = parts[i].partition;
    if (p < 0 || p >= NPART) continue;
    k->owned[p] = true;
    k->assign_offset[p] = parts[i].offset;
    size_t len = parts[i].metadata_len < SL_WATERMARK_META_MAX ? parts[i].metadata_len
                                                               : SL_WATERMARK_META_MAX;
    if (parts[i].metadata) memcpy(k->assign_meta[p], parts[i].metadata, len);
    k->assign_meta[p][parts[i].metadata ? len : 0] = '\0';
  }
  check_done(k->fx);
}

static size_t owned(const cons_t *k);

static void on_revoke(void *arg, const sl_kafka_partition_t *parts, size_t n, bool lost) {
  cons_t *k = arg;
  (void)lost;
  k->revokes++;
  k->revoked_parts += n;
  if (n < owned(k)) k->partial_revokes++;
  for (size_t i = 0; i < n; i++)
    if (parts[i].partition >= 0 && parts[i].partition < NPART) k->owned[parts[i].partition] = false;
  check_done(k->fx);
}

static void on_fatal(void *arg, const char *reason) {
  (void)arg;
  printf("# fatal consumer error: %s\n", reason);
}

static void on_committed(void *arg, int err) {
  cons_t *k = arg;
  if (err)
    k->commits_failed++;
  else
    k->commits_ok++;
  check_done(k->fx);
}

static void on_closed(void *arg) {
  cons_t *k = arg;
  k->closed++;
  check_done(k->fx);
}

#define KV(k, v) \
  { .key = (char *)(k), .value = (char *)(v) }

static bool consumer_start(fixture_t *fx, cons_t *k, const char *group, const char *strategy) {
  sl_diag_t d = {0};
  sl_kafka_conf_t kc;
  memset(&kc, 0, sizeof kc);
  kc.resume_below = 0.5;
  sl_kv_t props[] = {
      KV("session.timeout.ms", "6000"),
      KV("heartbeat.interval.ms", "1000"),
      KV("partition.assignment.strategy", strategy),
  };
  sl_kv_list_t pl = {.items = props, .n = sizeof props / sizeof props[0]};
  sl_kafka_consumer_cbs_t cbs = {.on_records = on_records,
                                 .on_assign = on_assign,
                                 .on_revoke = on_revoke,
                                 .on_fatal = on_fatal,
                                 .arg = k};
  const char *topics[] = {TOPIC};
  memset(k, 0, sizeof *k);
  k->fx = fx;
  int r = sl_kafka_consumer_new(&fx->tl.loop, fx->bridge, fx->metrics, &kc, fx->bootstrap, "test.toml",
                                &pl, group, topics, 1, &cbs, &k->c, &d);
  for (size_t i = 0; i < d.n; i++) printf("# %s\n", d.lines[i]);
  sl_diag_free(&d);
  if (r) k->c = NULL;
  return r == 0;
}

static size_t owned(const cons_t *k) {
  size_t n = 0;
  for (int p = 0; p < NPART; p++) n += k->owned[p];
  return n;
}

typedef struct {
  cons_t *k;
  size_t want;
} want_t;

static bool all_owned_and_received(void *arg) {
  want_t *w = arg;
  return owned(w->k) == NPART && w->k->received >= w->want;
}

static bool one_commit(void *arg) {
  cons_t *k = arg;
  return k->commits_ok + k->commits_failed > 0;
}

static bool received_want(void *arg) {
  want_t *w = arg;
  return w->k->received >= w->want;
}

static bool closed(void *arg) {
  return ((cons_t *)arg)->closed > 0;
}

static bool consumer_close(fixture_t *fx, cons_t *k) {
  if (!k->c) return false;
  sl_kafka_consumer_close(k->c, on_closed, k);
  bool ok_ = wait_until(fx, closed, k, DEADLINE_MS);
  sl_kafka_consumer_free(k->c);
  k->c = NULL;
  return ok_;
}

/* Consume everything, commit half of each partition with a watermark, close;
 * a second member of the group is assigned those offsets and metadata and
 * reads exactly the rest; pause holds new records back until resume. */
static void commit_and_resume(void) {
  const char *name = "resume";
  enum { PER = 100, MORE = 10 };
  static const int64_t commit_at[NPART] = {40, 50, 60, 70};
  fixture_t fx;
  cons_t *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
  if (fixture_setup(&fx, name) && a && b) {
    is_int(produce(&fx, PER), PER * NPART, "%s: %d records produced", name, PER * NPART);
    ok(consumer_start(&fx, a, "resume-group", "range"), "%s: first consumer created", name);
    want_t w = {a, PER * NPART};
    ok(wait_until(&fx, all_owned_and_received, &w, DEADLINE_MS),
       "%s: the first consumer is assigned all %d partitions and receives all %d records", name,
       NPART, PER * NPART);
    is_int(a->assigned_parts, NPART, "%s: on_assign named %d partitions", name, NPART);
    int none = 0;
    for (int p = 0; p < NPART; p++)
      none += a->assign_offset[p] == SL_KAFKA_OFFSET_NONE && a->assign_meta[p][0] == '\0';
    is_int(none, NPART, "%s: a new group has no committed offset or metadata", name);
    int whole = 0;
    for (int p = 0; p < NPART; p++) whole += a->per_part[p] == PER && a->first_off[p] == 0;
    is_int(whole, NPART, "%s: each partition delivered from offset 0, %d records", name, PER);
    is_int(a->out_of_order + a->foreign, 0, "%s: in offset order, none from a partition not owned",
           name);
    is_int(a->off_loop, 0, "%s: records handed up on the loop thread", name);
    is_int(test_metric(fx.metrics, "sluice_kafka_consumed_total"), PER * NPART, "%s: consumed_total %d",
           name, PER * NPART);
    is_int(test_metric(fx.metrics, "sluice_kafka_assigned_partitions"), NPART, "%s: assigned gauge %d",
           name, NPART);
    is_int(sl_kafka_consumer_assigned(a->c), NPART, "%s: sl_kafka_consumer_assigned says %d", name,
           NPART);

    char meta[NPART][SL_WATERMARK_META_MAX];
    sl_kafka_partition_t parts[NPART];
    for (int p = 0; p < NPART; p++) {
      sl_watermark_meta_format(1700000000000LL + 1000 * p, meta[p], sizeof meta[p]);
      parts[p] = (sl_kafka_partition_t){.topic = TOPIC,
                                        .partition = p,
                                        .offset = commit_at[p],
                                        .metadata = meta[p],
                                        .metadata_len = strlen(meta[p])};
    }
    is_int(sl_kafka_consumer_commit(a->c, parts, NPART, on_committed, a), 0, "%s: commit accepted",
           name);
    ok(wait_until(&fx, one_commit, a, DEADLINE_MS), "%s: on_committed comes", name);
    is_int(a->commits_ok, 1, "%s: the commit succeeded", name);
    is_int(test_metric(fx.metrics, "sluice_kafka_commits_total"), 1, "%s: commits_total 1", name);

    int revokes_before = a->revokes;
    ok(consumer_close(&fx, a), "%s: the first consumer closes", name);
    is_int(a->closed, 1, "%s: on_closed once", name);
    ok(a->revokes > revokes_before && owned(a) == 0, "%s: the close revoked its partitions", name);
    is_int(test_metric(fx.metrics, "sluice_kafka_assigned_partitions"), 0,
           "%s: assigned gauge back to 0", name);

    ok(consumer_start(&fx, b, "resume-group", "range"), "%s: second consumer created", name);
    size_t rest = 0;
    for (int p = 0; p < NPART; p++) rest += PER - (size_t)commit_at[p];
    want_t wb = {b, rest};
    ok(wait_until(&fx, all_owned_and_received, &wb, DEADLINE_MS),
       "%s: the second consumer is assigned all partitions and receives the %zu uncommitted "
       "records",
       name, rest);
    int offsets_ok = 0, meta_ok = 0, from_commit = 0;
    for (int p = 0; p < NPART; p++) {
      offsets_ok += b->assign_offset[p] == commit_at[p];
      meta_ok += strcmp(b->assign_meta[p], meta[p]) == 0;
      from_commit +=
          b->first_off[p] == commit_at[p] && b->per_part[p] == PER - (size_t)commit_at[p];
      if (b->assign_offset[p] != commit_at[p] || strcmp(b->assign_meta[p], meta[p]) != 0)
        printf("#   partition %d assigned at %lld with \"%s\"\n", p, (long long)b->assign_offset[p],
               b->assign_meta[p]);
    }
    is_int(offsets_ok, NPART, "%s: on_assign carries each partition's committed offset", name);
    is_int(meta_ok, NPART, "%s: on_assign carries each partition's committed metadata", name);
    is_int(from_commit, NPART, "%s: each partition resumes exactly at its committed offset", name);
    int64_t wm = 0;
    is_int(sl_watermark_meta_parse(b->assign_meta[2], strlen(b->assign_meta[2]), &wm, NULL), 0,
           "%s: the metadata parses as a watermark", name);
    is_int(wm, 1700000000000LL + 2000, "%s: partition 2's watermark survived the restart", name);

    is_int(sl_kafka_consumer_pause_partition(b->c, TOPIC, 0, true), 0, "%s: partition 0 paused alone", name);
    sl_kafka_consumer_pause(b->c);
    size_t before = b->received, p0 = b->per_part[0];
    is_int(produce(&fx, MORE), MORE * NPART, "%s: %d more records produced while paused", name,
           MORE * NPART);
    run_for(&fx, 1500);
    is_int(b->received, before, "%s: nothing arrives while paused", name);
    sl_kafka_consumer_resume(b->c);
    want_t wr = {b, before + MORE * (NPART - 1)};
    ok(wait_until(&fx, received_want, &wr, DEADLINE_MS), "%s: after resume the other partitions' %d records arrive",
       name, MORE * (NPART - 1));
    run_for(&fx, 1000);
    is_int(b->per_part[0], p0, "%s: partition 0, paused alone, stays paused through the resume", name);
    is_int(sl_kafka_consumer_pause_partition(b->c, TOPIC, 0, false), 0, "%s: partition 0 resumed", name);
    wr.want = before + MORE * NPART;
    ok(wait_until(&fx, received_want, &wr, DEADLINE_MS), "%s: then its %d records arrive too", name, MORE);
    is_int(b->out_of_order + b->foreign, 0, "%s: still in order, none foreign", name);
    ok(consumer_close(&fx, b), "%s: the second consumer closes", name);
    ok(test_metric(fx.metrics, "sluice_kafka_rebalances_total") >= 4,
       "%s: rebalances counted (an assign and a revoke per consumer)", name);
  } else {
    ok(0, "%s: set up", name);
  }
  if (a && a->c) consumer_close(&fx, a);
  if (b && b->c) consumer_close(&fx, b);
  fixture_teardown(&fx, name);
  free(a);
  free(b);
}

/* When the look-up of committed offsets fails, the partitions are still
 * assigned (without metadata) and librdkafka resumes them from the
 * committed offsets itself: nothing is read twice, nothing skipped. */
static void lookup_fails(void) {
  const char *name = "lookup fails";
  enum { PER = 10, AT = 5, OFFSET_FETCH = 9 /* Kafka's ApiKey */ };
  fixture_t fx;
  cons_t *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
  if (fixture_setup(&fx, name) && a && b) {
    is_int(produce(&fx, PER), PER * NPART, "%s: %d records produced", name, PER * NPART);
    ok(consumer_start(&fx, a, "fallback-group", "range"), "%s: first consumer created", name);
    want_t w = {a, PER * NPART};
    ok(wait_until(&fx, all_owned_and_received, &w, DEADLINE_MS),
       "%s: the first consumer reads everything", name);
    char meta[SL_WATERMARK_META_MAX];
    sl_watermark_meta_format(42, meta, sizeof meta);
    sl_kafka_partition_t parts[NPART];
    for (int p = 0; p < NPART; p++)
      parts[p] = (sl_kafka_partition_t){.topic = TOPIC,
                                        .partition = p,
                                        .offset = AT,
                                        .metadata = meta,
                                        .metadata_len = strlen(meta)};
    is_int(sl_kafka_consumer_commit(a->c, parts, NPART, on_committed, a), 0, "%s: commit accepted",
           name);
    ok(wait_until(&fx, one_commit, a, DEADLINE_MS) && a->commits_ok == 1,
       "%s: the commit succeeded", name);
    ok(consumer_close(&fx, a), "%s: the first consumer closes", name);

    /* The next OffsetFetch is the second consumer's look-up. */
    rd_kafka_mock_push_request_errors(fx.mock, OFFSET_FETCH, 1,
                                      RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED);
    ok(consumer_start(&fx, b, "fallback-group", "range"), "%s: second consumer created", name);
    want_t wb = {b, (PER - AT) * NPART};
    ok(wait_until(&fx, all_owned_and_received, &wb, DEADLINE_MS),
       "%s: the second consumer is assigned everything and reads the uncommitted records", name);
    int bare = 0, resumed = 0;
    for (int p = 0; p < NPART; p++) {
      bare += b->assign_offset[p] == SL_KAFKA_OFFSET_NONE && b->assign_meta[p][0] == '\0';
      resumed += b->first_off[p] == AT && b->per_part[p] == PER - AT;
    }
    is_int(bare, NPART, "%s: on_assign reports no offset and no metadata", name);
    is_int(resumed, NPART, "%s: each partition still resumes at its committed offset", name);
    ok(consumer_close(&fx, b), "%s: the second consumer closes", name);
  } else {
    ok(0, "%s: set up", name);
  }
  if (a && a->c) consumer_close(&fx, a);
  if (b && b->c) consumer_close(&fx, b);
  fixture_teardown(&fx, name);
  free(a);
  free(b);
}

static bool split(void *arg) {
  cons_t **k = arg;
  size_t n0 = owned(k[0]), n1 = owned(k[1]);
  bool disjoint = true;
  for (int p = 0; p < NPART; p++) disjoint &= !(k[0]->owned[p] && k[1]->owned[p]);
  return n0 > 0 && n1 > 0 && n0 + n1 == NPART && disjoint;
}

static bool first_owns_all(void *arg) {
  return owned(arg) == NPART;
}

typedef struct {
  cons_t *k[2];
  size_t want;
} pair_t;

static bool both_received(void *arg) {
  pair_t *w = arg;
  return w->k[0]->received + w->k[1]->received >= w->want;
}

static bool both_closed(void *arg) {
  cons_t **k = arg;
  return k[0]->closed && k[1]->closed;
}

/* Two members of one group: the second's join takes partitions from the
 * first (a revocation on the first, an assignment on each), the partitions
 * are split between them, and each record goes to its partition's owner. */
static void two_members(const char *name, const char *strategy) {
  enum { PER = 50 };
  fixture_t fx;
  cons_t *k[2] = {calloc(1, sizeof(cons_t)), calloc(1, sizeof(cons_t))};
  if (fixture_setup(&fx, name) && k[0] && k[1]) {
    ok(consumer_start(&fx, k[0], "split-group", strategy), "%s: first member created", name);
    ok(wait_until(&fx, first_owns_all, k[0], DEADLINE_MS),
       "%s: the first member owns all %d partitions", name, NPART);
    int revokes_before = k[0]->revokes, assigns_before = k[0]->assigns;
    size_t revoked_before = k[0]->revoked_parts;
    bool coop = strcmp(strategy, "cooperative-sticky") == 0;
    ok(consumer_start(&fx, k[1], "split-group", strategy), "%s: second member created", name);
    ok(wait_until(&fx, split, k, DEADLINE_MS),
       "%s: the partitions are split between the two members", name);
    printf("#   first owns %zu, second owns %zu\n", owned(k[0]), owned(k[1]));
    ok(k[0]->revokes > revokes_before, "%s: the first member heard a revocation", name);
    ok(k[0]->assigns > assigns_before, "%s: the first member heard an assignment after the join",
       name);
    /* Eager gives everything back at each revocation (the group may take
     * more than one round to settle, each one revoking all); cooperative
     * gives up only what moves, once. */
    if (coop)
      is_int(k[0]->revoked_parts - revoked_before, NPART / 2, "%s: the first member's revocations named %d "
             "partitions in all", name, NPART / 2);
    else
      ok(k[0]->partial_revokes == 0 && k[0]->revoked_parts - revoked_before >= NPART,
         "%s: each revocation of the first member named every partition it owned (%zu in all)", name,
         k[0]->revoked_parts - revoked_before);
    ok(k[1]->assigns > 0, "%s: the second member heard its assignment", name);
    is_int(test_metric(fx.metrics, "sluice_kafka_assigned_partitions"), NPART,
           "%s: assigned gauge %d across both members", name, NPART);

    is_int(produce(&fx, PER), PER * NPART, "%s: %d records produced", name, PER * NPART);
    pair_t w = {{k[0], k[1]}, PER * NPART};
    ok(wait_until(&fx, both_received, &w, DEADLINE_MS), "%s: all %d records arrive", name,
       PER * NPART);
    ok(k[0]->received > 0 && k[1]->received > 0, "%s: both members received records", name);
    is_int(k[0]->received + k[1]->received, PER * NPART, "%s: no record twice", name);
    is_int(k[0]->foreign + k[1]->foreign + k[0]->out_of_order + k[1]->out_of_order, 0,
           "%s: each record went to its partition's owner, in order", name);

    if (k[0]->c && k[1]->c) {
      sl_kafka_consumer_close(k[0]->c, on_closed, k[0]);
      sl_kafka_consumer_close(k[1]->c, on_closed, k[1]);
      ok(wait_until(&fx, both_closed, k, DEADLINE_MS), "%s: both members close", name);
      sl_kafka_consumer_free(k[0]->c);
      sl_kafka_consumer_free(k[1]->c);
      k[0]->c = k[1]->c = NULL;
    }
  } else {
    ok(0, "%s: set up", name);
  }
  for (int i = 0; i < 2; i++)
    if (k[i] && k[i]->c) consumer_close(&fx, k[i]);
  fixture_teardown(&fx, name);
  free(k[0]);
  free(k[1]);
}

int main(void) {
  loop_thread = pthread_self();
  commit_and_resume();
  lookup_fails();
  two_members("split eager", "range");
  two_members("split cooperative", "cooperative-sticky");
  return tap_done();
}
