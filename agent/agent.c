/* Wires the stages together on one libuv loop and runs it.  Shutdown on
 * SIGINT/SIGTERM: stop accepting and reading, wait (up to 30 s) for Kafka to
 * acknowledge what is in flight so those chunks are still acked, then close
 * every handle and leave the loop.  Main thread. */
#include "agent.h"

#include <signal.h>
#include <stdlib.h>
#include <uv.h>

#include "error.h"
#include "forward_server.h"
#include "http.h"
#include "ingest.h"
#include "kafka_producer.h"
#include "log.h"

#define DRAIN_TIMEOUT_MS 30000

typedef struct {
  const sl_config_t *cfg;
  uv_loop_t loop;
  uv_signal_t sigint, sigterm;
  uv_timer_t drain_timer;
  uint64_t drain_deadline;
  sl_http_t *http;
  sl_kafka_producer_t *producer;
  sl_ingest_t *ingest;
  sl_fwd_server_t *server;
  bool stopping;
  int exit_code;
} agent_t;

static void on_server_closed(void *arg) {
  agent_t *a = arg;
  if (a->producer) sl_kafka_producer_close(a->producer, NULL, NULL);
  uv_close((uv_handle_t *)&a->drain_timer, NULL);
}

static void finish(agent_t *a) {
  uv_timer_stop(&a->drain_timer);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  sl_http_close(a->http);
  a->http = NULL;
  if (a->server)
    sl_fwd_server_close(a->server, on_server_closed, a);
  else
    on_server_closed(a);
}

static void on_drain_tick(uv_timer_t *t) {
  agent_t *a = t->data;
  size_t inflight = a->producer ? sl_kafka_producer_inflight(a->producer) : 0;
  size_t stalled = a->ingest ? sl_ingest_stalled(a->ingest) : 0;
  if (inflight == 0 && stalled == 0) {
    sl_log(SL_LOG_INFO, "agent", "drained: every record handed to Kafka was acknowledged");
    finish(a);
    return;
  }
  if (uv_now(&a->loop) >= a->drain_deadline) {
    sl_log(SL_LOG_ERROR, "agent",
           "drain timed out with %zu records unacknowledged by Kafka and %zu messages held back; their "
           "chunks were not acked, so clients will re-send them",
           inflight, stalled);
    a->exit_code = 1;
    finish(a);
  }
}

static void begin_stop(agent_t *a) {
  sl_http_set_ready(a->http, false);
  if (a->server) {
    sl_fwd_server_stop_accepting(a->server);
    sl_fwd_server_pause(a->server);
    /* From here on nothing is read; ingest must not undo the pause when
     * the producer drains. */
    if (a->ingest) sl_ingest_set_server(a->ingest, NULL);
  }
  a->drain_deadline = uv_now(&a->loop) + DRAIN_TIMEOUT_MS;
  uv_timer_start(&a->drain_timer, on_drain_tick, 0, 50);
}

static void on_signal(uv_signal_t *s, int signum) {
  agent_t *a = s->data;
  if (a->stopping) {
    sl_log(SL_LOG_WARN, "agent", "second signal: stopping without waiting for Kafka");
    a->drain_deadline = 0;
    return;
  }
  a->stopping = true;
  sl_log(SL_LOG_INFO, "agent", "%s received: draining", signum == SIGINT ? "SIGINT" : "SIGTERM");
  begin_stop(a);
}

/* librdkafka accepts no record after a fatal error: stop taking any, report
 * not ready, and exit 1 so that systemd restarts a fresh producer. */
static void on_kafka_fatal(void *arg) {
  agent_t *a = arg;
  a->exit_code = 1;
  if (a->stopping) return;
  a->stopping = true;
  sl_log(SL_LOG_ERROR, "agent", "stopping after the fatal Kafka error (exit code 1)");
  begin_stop(a);
}

int sl_agent_run(const sl_config_t *cfg) {
  agent_t a = {.cfg = cfg};
  int r = uv_loop_init(&a.loop);
  if (r) {
    sl_log(SL_LOG_ERROR, "agent", "cannot create the event loop: %s", uv_strerror(r));
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  uv_signal_init(&a.loop, &a.sigint);
  uv_signal_init(&a.loop, &a.sigterm);
  a.sigint.data = a.sigterm.data = &a;
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  uv_timer_init(&a.loop, &a.drain_timer);
  a.drain_timer.data = &a;

  if (cfg->http_enabled && (r = sl_http_start(&a.loop, &cfg->http_listen, &a.http))) goto fail;
  if (cfg->kafka.enabled) {
    sl_diag_t d = {0};
    if ((r = sl_kafka_producer_new(&a.loop, cfg, &a.producer, &d))) {
      for (size_t i = 0; i < d.n; i++) sl_log(SL_LOG_ERROR, "kafka", "%s", d.lines[i]);
      sl_diag_free(&d);
      goto fail;
    }
    sl_kafka_producer_on_fatal(a.producer, on_kafka_fatal, &a);
  }
  if (cfg->forward.enabled) {
    if ((r = sl_ingest_new(cfg, a.producer, &a.ingest))) goto fail;
    if (a.producer) sl_kafka_producer_set_ingest(a.producer, a.ingest);
    if (!a.producer)
      sl_log(SL_LOG_WARN, "agent",
             "no [kafka] section: print mode, records are written to stdout as JSON lines and acked "
             "once written");
    if ((r = sl_fwd_server_new(&a.loop, &cfg->forward, a.ingest, &a.server))) goto fail;
    sl_ingest_set_server(a.ingest, a.server);
    if ((r = sl_fwd_server_start(a.server))) goto fail;
  }
  sl_http_set_ready(a.http, true);
  sl_log(SL_LOG_INFO, "agent", "sluice started");
  uv_run(&a.loop, UV_RUN_DEFAULT);
  goto out;

fail:
  a.exit_code = 1;
  finish(&a);
  uv_run(&a.loop, UV_RUN_DEFAULT);
out:
  sl_fwd_server_free(a.server);
  sl_ingest_free(a.ingest);
  sl_kafka_producer_free(a.producer, 0);
  r = uv_loop_close(&a.loop);
  if (r) sl_log(SL_LOG_WARN, "agent", "event loop closed with handles still open");
  sl_log(SL_LOG_INFO, "agent", "stopped");
  return a.exit_code;
}
