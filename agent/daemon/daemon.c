/* Runs the stages on one libuv loop.  Start: each stage in the table's
 * order; a stage that cannot start stops the daemon.  Ready (for systemd's
 * READY=1) once every stage has started and Kafka has answered a metadata
 * request.  Stop (signal or fatal error): every stage stops its intake,
 * the daemon polls their work in hand until it is 0 or shutdown_timeout
 * passed, then closes the stages in reverse order, then the Kafka bridge
 * and its own handles, and the loop ends.  SIGHUP reloads the config file:
 * refused whole when invalid, else the live settings are applied (the
 * stages' reload op) and the others named as needing a restart.  The
 * watchdog ping and the STATUS line come from this loop; the ping is held
 * back while a stage's loop thread has stopped turning (stage_thread.h), so
 * that systemd restarts a process whose jobs or worker loop is stuck, not
 * only one whose main loop is.  Main thread. */
#include "daemon/daemon.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "core/error.h"
#include "core/log.h"
#include "daemon/kafka_probe.h"
#include "daemon/notify.h"
#include "daemon/reload.h"
#include "daemon/stage.h"
#include "daemon/stage_thread.h"
#include "http/http.h"
#include "ingest/ingest.h"
#include "jobs/jobs_stage.h"
#include "kafka/kafka_bridge.h"
#include "kafka/kafka_embedded.h"
#include "sinks/plugin_load.h"
#include "sinks/sink_host.h"

#define DRAIN_POLL_MS 50
#define STATUS_MS 1000
#define STALL_WARN_MS 5000 /* a loop thread this late is logged */

/* In start order; stopped in reverse. */
static int (*const stage_new[])(const sl_stage_env_t *env, sl_stage_t *out) = {
    sl_http_stage_new,
    sl_ingest_stage_new,
    sl_jobs_stage_new,
};
#define N_STAGES (sizeof stage_new / sizeof stage_new[0])

typedef struct {
  const sl_config_t *cfg; /* the one the stages were started with */
  sl_config_t *live;      /* owned: the last reloaded config applied (NULL: cfg) */
  sl_config_t *next;      /* owned: the reloaded config while the stages apply it */
  size_t reloads_pending; /* stages not yet done with `next` */
  bool reload_again;      /* a SIGHUP came during a reload */
  int64_t shutdown_timeout_ns;
  uv_loop_t loop;
  uv_signal_t sigint, sigterm, sighup;
  uv_timer_t drain_timer, status_timer, watchdog_timer;
  uint64_t drain_deadline;
  uint64_t stall_limit_ms; /* a loop thread this late holds back the watchdog ping */
  sl_kafka_probe_t *probe;
  sl_metric_t *connections; /* the forward input's gauge, for STATUS */
  double status_connections;
  bool ready;
  sl_metrics_t *metrics;
  sl_kafka_embedded_t *embedded;
  sl_kafka_bridge_t *bridge;
  sl_stage_t stages[N_STAGES];
  size_t n_created;
  size_t closing; /* stages closed so far, from the last */
  bool started, stopping, abandon, closing_started;
  int exit_code;
} daemon_t;

static void close_next_stage(void *arg);

/* Everything is closed but the daemon's own handles. */
static void finish(daemon_t *d) {
  if (d->bridge) sl_kafka_bridge_close(d->bridge, NULL, NULL);
  uv_close((uv_handle_t *)&d->drain_timer, NULL);
  uv_close((uv_handle_t *)&d->status_timer, NULL);
  uv_close((uv_handle_t *)&d->watchdog_timer, NULL);
  uv_close((uv_handle_t *)&d->sigint, NULL);
  uv_close((uv_handle_t *)&d->sigterm, NULL);
  uv_close((uv_handle_t *)&d->sighup, NULL);
}

/* Closes the stages one after another, the last created first. */
static void close_next_stage(void *arg) {
  daemon_t *d = arg;
  while (d->closing < d->n_created) {
    sl_stage_t *s = &d->stages[d->n_created - 1 - d->closing++];
    if (s->ops) {
      s->ops->close(s->self, close_next_stage, d);
      return;
    }
  }
  finish(d);
}

static void close_all(daemon_t *d) {
  uv_timer_stop(&d->drain_timer);
  sl_kafka_probe_stop(d->probe);
  d->probe = NULL;
  if (d->closing_started) return;
  d->closing_started = true;
  close_next_stage(d);
}

static void on_drain_tick(uv_timer_t *t) {
  daemon_t *d = t->data;
  size_t total = 0;
  char what[N_STAGES][256];
  for (size_t i = 0; i < d->n_created; i++) {
    sl_stage_t *s = &d->stages[i];
    what[i][0] = 0;
    if (s->ops) total += s->ops->inflight(s->self, what[i], sizeof what[i]);
  }
  if (total == 0) {
    for (size_t i = 0; i < d->n_created; i++) {
      sl_stage_t *s = &d->stages[i];
      if (!s->ops || !s->ops->outcome) continue;
      s->ops->outcome(s->self, what[i], sizeof what[i]);
      sl_log(SL_LOG_INFO, "agent", "drained: %s: %s", s->ops->name, what[i]);
    }
    close_all(d);
    return;
  }
  if (uv_now(&d->loop) < d->drain_deadline) return;
  for (size_t i = 0; i < d->n_created; i++)
    if (d->stages[i].ops && what[i][0])
      sl_log(SL_LOG_ERROR, "agent", "%s: %s: %s", d->abandon ? "stopping at once" : "drain timed out",
             d->stages[i].ops->name, what[i]);
  sl_log(SL_LOG_ERROR, "agent", "unfinished chunks were not acked, so clients will re-send them");
  d->exit_code = 1;
  close_all(d);
}

static void begin_stop(daemon_t *d) {
  d->stopping = true;
  sl_kafka_probe_stop(d->probe);
  d->probe = NULL;
  sl_notify("STOPPING=1\nSTATUS=draining");
  for (size_t i = 0; i < d->n_created; i++)
    if (d->stages[i].ops) d->stages[i].ops->stop_intake(d->stages[i].self);
  d->drain_deadline = uv_now(&d->loop) + (uint64_t)(d->shutdown_timeout_ns / 1000000);
  uv_timer_start(&d->drain_timer, on_drain_tick, 0, DRAIN_POLL_MS);
}

static void on_signal(uv_signal_t *s, int signum) {
  daemon_t *d = s->data;
  if (d->stopping) {
    sl_log(SL_LOG_WARN, "agent", "second signal: stopping at once, without waiting for work in hand (exit code 1)");
    d->drain_deadline = 0;
    d->abandon = true;
    d->exit_code = 1;
    on_drain_tick(&d->drain_timer);
    return;
  }
  sl_log(SL_LOG_INFO, "agent", "%s received: draining", signum == SIGINT ? "SIGINT" : "SIGTERM");
  begin_stop(d);
}

/* ---- readiness and status ------------------------------------------------- */

static void notify_ready(daemon_t *d) {
  d->status_connections = sl_gauge_get(d->connections);
  sl_notify("READY=1\nSTATUS=ready: %.0f forward connections", d->status_connections);
}

static void became_ready(daemon_t *d) {
  d->ready = true;
  sl_log(SL_LOG_INFO, "agent", "ready");
  notify_ready(d);
}

static void on_kafka_reachable(void *arg, int brokers) {
  daemon_t *d = arg;
  d->probe = NULL;
  sl_log(SL_LOG_INFO, "kafka", "cluster reachable: metadata names %d brokers", brokers);
  became_ready(d);
}

/* Once a second: the loop threads' heartbeats, the STATUS line when the
 * number of connections changed, and the count of log lines the rate
 * limits suppressed. */
static void on_status_tick(uv_timer_t *t) {
  daemon_t *d = t->data;
  char what[512];
  if (sl_stage_threads_stalled(STALL_WARN_MS, what, sizeof what))
    sl_log_rl(SL_LOG_WARN, "agent", "event loop blocked: %s since its last turn", what);
  sl_log_flush_suppressed();
  double n = sl_gauge_get(d->connections);
  if (!d->ready || d->stopping || d->next || n == d->status_connections) return;
  d->status_connections = n;
  sl_notify("STATUS=ready: %.0f forward connections", n);
}

/* From this loop, so a main loop that stops turning stops the pings and
 * systemd restarts the process; so does a loop thread that stopped. */
static void on_watchdog_tick(uv_timer_t *t) {
  daemon_t *d = t->data;
  char what[512];
  if (sl_stage_threads_stalled(d->stall_limit_ms, what, sizeof what)) {
    sl_log_rl(SL_LOG_ERROR, "agent", "no systemd watchdog ping: %s since its event loop last turned", what);
    return;
  }
  sl_notify("WATCHDOG=1");
}

static void start_watchdog(daemon_t *d) {
  uint64_t ms = sl_notify_watchdog_ms();
  if (!ms) return;
  d->stall_limit_ms = 2 * ms > STALL_WARN_MS ? 2 * ms : STALL_WARN_MS;
  sl_log(SL_LOG_INFO, "agent", "systemd watchdog: pinging every %llu ms while every loop thread turns within %llu ms",
         (unsigned long long)ms, (unsigned long long)d->stall_limit_ms);
  uv_timer_start(&d->watchdog_timer, on_watchdog_tick, 0, ms);
}

/* Every stage has started: ready now, or once Kafka answers. */
static void wait_ready(daemon_t *d) {
  const sl_kafka_conf_t *k = &d->cfg->kafka;
  if (!k->enabled) {
    became_ready(d);
    return;
  }
  const char *bootstrap = d->embedded ? sl_kafka_embedded_bootstrap(d->embedded) : k->bootstrap;
  sl_notify("STATUS=starting: waiting for Kafka at %s", bootstrap);
  int r = sl_kafka_probe_start(&d->loop, k, bootstrap, d->cfg->file, on_kafka_reachable, d, &d->probe);
  if (r) {
    sl_log(SL_LOG_ERROR, "kafka", "cannot ask Kafka for its metadata (%s): ready without it", sl_strerror(r));
    became_ready(d);
  }
}

/* ---- reload ------------------------------------------------------------------ */

static void reload(daemon_t *d);

static const sl_config_t *live_config(const daemon_t *d) { return d->live ? d->live : d->cfg; }

static void reload_finished(daemon_t *d) {
  sl_config_free(d->live);
  d->live = d->next;
  d->next = NULL;
  if (d->stopping) return;
  if (d->ready) notify_ready(d);
  if (d->reload_again) {
    d->reload_again = false;
    reload(d);
  }
}

static void on_stage_reloaded(void *arg, int err) {
  daemon_t *d = arg;
  (void)err; /* logged by the stage, which keeps what it had */
  if (--d->reloads_pending == 0) reload_finished(d);
}

static void log_refused(const sl_config_t *cfg, const sl_diag_t *diag) {
  for (size_t i = 0; i < diag->n; i++) sl_log(SL_LOG_ERROR, "agent", "reload: %s", diag->lines[i]);
  sl_log(SL_LOG_ERROR, "agent", "reload refused: %zu error%s in %s; still running the previous config", diag->n,
         diag->n == 1 ? "" : "s", cfg->file);
}

/* Reads the file again; applies it, or keeps everything as it is. */
static void reload(daemon_t *d) {
  const sl_config_t *live = live_config(d);
  sl_notify("RELOADING=1\nSTATUS=reloading %s", d->cfg->file);
  sl_log(SL_LOG_INFO, "agent", "SIGHUP received: reloading %s", d->cfg->file);
  sl_diag_t diag = {0};
  sl_config_t *next = NULL;
  int r = sl_config_load(d->cfg->file, &next, &diag);
  sl_plugin_set_dirs(&d->cfg->plugin_dirs); /* loading set the new file's */
  if (r) {
    log_refused(d->cfg, &diag);
    sl_diag_free(&diag);
    if (d->ready) notify_ready(d);
    return;
  }
  sl_diag_free(&diag);
  sl_reload_plan_t plan;
  sl_reload_plan(d->cfg, live, next, &plan);
  if (plan.log) {
    sl_log_set_level((sl_log_level_t)next->log.level);
    sl_log_set_json(next->log.format == 1);
  }
  d->shutdown_timeout_ns = next->shutdown_timeout_ns;
  sl_log(SL_LOG_INFO, "agent", "reloaded %s: changes applied: %zu, needing a restart: %zu", d->cfg->file,
         plan.applied, plan.restart);
  /* Every stage hears of it (a stage applies what it can; the ingest swaps
   * its routes); `next` lives until the last one is done. */
  d->next = next;
  d->reloads_pending = 1;
  for (size_t i = 0; i < d->n_created; i++) {
    sl_stage_t *s = &d->stages[i];
    if (!s->ops || !s->ops->reload) continue;
    d->reloads_pending++;
    s->ops->reload(s->self, next, on_stage_reloaded, d);
  }
  on_stage_reloaded(d, 0);
}

static void on_sighup(uv_signal_t *s, int signum) {
  daemon_t *d = s->data;
  (void)signum;
  if (d->stopping || !d->started) {
    sl_log(SL_LOG_WARN, "agent", "SIGHUP received while %s: not reloading", d->stopping ? "stopping" : "starting");
    return;
  }
  if (d->next) {
    sl_log(SL_LOG_INFO, "agent", "SIGHUP received during a reload: reloading again once it is done");
    d->reload_again = true;
    return;
  }
  reload(d);
}

/* A stage cannot go on (librdkafka takes no record after a fatal error):
 * stop taking any, report not ready, and exit 1 so that systemd restarts a
 * fresh process. */
static void on_stage_fatal(void *arg, const char *stage, const char *reason) {
  daemon_t *d = arg;
  d->exit_code = 1;
  if (d->stopping) return;
  sl_log(SL_LOG_ERROR, "agent", "stopping after a fatal error in %s: %s (exit code 1)", stage, reason);
  begin_stop(d);
}

static int is_ready(void *arg, char *why, size_t len) {
  daemon_t *d = arg;
  if (!d->started || d->stopping) {
    snprintf(why, len, "%s", d->stopping ? "stopping" : "starting");
    return 0;
  }
  return sl_sinks_all_up(why, len);
}

/* The process-wide parts the stages share: the embedded cluster and the
 * Kafka bridge. */
static int setup_shared(daemon_t *d, sl_stage_env_t *env) {
  const sl_kafka_conf_t *k = &d->cfg->kafka;
  if (!k->enabled) return 0;
  env->bootstrap = k->bootstrap;
  if (k->embedded) {
    char err[512];
    if (!(d->embedded = sl_kafka_embedded_new((int)k->embedded_partitions, err, sizeof err))) {
      sl_log(SL_LOG_ERROR, "kafka", "cannot start the embedded cluster: %s", err);
      return SL_EKAFKA;
    }
    env->bootstrap = sl_kafka_embedded_bootstrap(d->embedded);
    env->embedded = d->embedded;
    sl_log(SL_LOG_WARN, "kafka",
           "using the EMBEDDED mock cluster, bootstrap %s ; records live in this process only and are lost when "
           "it stops (not durable; for demos and trials)",
           env->bootstrap);
  }
  int r = 0;
  if (!(d->bridge = sl_kafka_bridge_new(&d->loop, d->metrics, &r))) {
    sl_log(SL_LOG_ERROR, "kafka", "cannot create the Kafka bridge: %s", sl_strerror(r));
    return r;
  }
  env->bridge = d->bridge;
  return 0;
}

int sl_daemon_run(const sl_config_t *cfg) {
  daemon_t d = {.cfg = cfg, .shutdown_timeout_ns = cfg->shutdown_timeout_ns};
  int r = uv_loop_init(&d.loop);
  if (r) {
    sl_log(SL_LOG_ERROR, "agent", "cannot create the event loop: %s", uv_strerror(r));
    return 1;
  }
  if (!(d.metrics = sl_metrics_new())) {
    sl_log(SL_LOG_ERROR, "agent", "out of memory");
    uv_loop_close(&d.loop);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  uv_signal_init(&d.loop, &d.sigint);
  uv_signal_init(&d.loop, &d.sigterm);
  d.sigint.data = d.sigterm.data = &d;
  uv_signal_start(&d.sigint, on_signal, SIGINT);
  uv_signal_start(&d.sigterm, on_signal, SIGTERM);
  uv_signal_init(&d.loop, &d.sighup);
  d.sighup.data = &d;
  uv_signal_start(&d.sighup, on_sighup, SIGHUP);
  uv_timer_init(&d.loop, &d.drain_timer);
  d.drain_timer.data = &d;
  uv_timer_init(&d.loop, &d.status_timer);
  d.status_timer.data = &d;
  uv_timer_init(&d.loop, &d.watchdog_timer);
  d.watchdog_timer.data = &d;
  sl_notify("STATUS=starting");
  start_watchdog(&d);

  sl_stage_env_t env = {
      .loop = &d.loop,
      .cfg = cfg,
      .metrics = d.metrics,
      .host = {.on_fatal = on_stage_fatal, .is_ready = is_ready, .arg = &d},
  };
  if ((r = setup_shared(&d, &env))) goto fail;
  for (; d.n_created < N_STAGES; d.n_created++)
    if ((r = stage_new[d.n_created](&env, &d.stages[d.n_created]))) goto fail;
  for (size_t i = 0; i < d.n_created; i++)
    if (d.stages[i].ops && (r = d.stages[i].ops->start(d.stages[i].self))) goto fail;
  d.started = true;
  d.connections = sl_metrics_gauge(d.metrics, "sluice_forward_connections", "Open forward connections.");
  sl_log(SL_LOG_INFO, "agent", "sluice started");
  uv_timer_start(&d.status_timer, on_status_tick, STATUS_MS, STATUS_MS);
  wait_ready(&d);
  uv_run(&d.loop, UV_RUN_DEFAULT);
  goto out;

fail:
  d.exit_code = 1;
  d.stopping = true;
  close_all(&d);
  uv_run(&d.loop, UV_RUN_DEFAULT);
out:
  for (size_t i = d.n_created; i-- > 0;)
    if (d.stages[i].ops) d.stages[i].ops->free(d.stages[i].self);
  sl_kafka_bridge_free(d.bridge);
  sl_kafka_embedded_free(d.embedded);
  sl_metrics_free(d.metrics);
  sl_config_free(d.live);
  sl_config_free(d.next);
  r = uv_loop_close(&d.loop);
  if (r) sl_log(SL_LOG_WARN, "agent", "event loop closed with handles still open");
  sl_log(SL_LOG_INFO, "agent", "stopped");
  return d.exit_code;
}
