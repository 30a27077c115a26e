/* A stage hosted on its own loop thread.  The daemon's calls arrive on the
 * main thread and become commands (bits in an atomic word plus a uv_async
 * wake-up) that the loop thread carries out; the thread publishes its work
 * in hand every PUBLISH_MS (and right after a command) for the drain to
 * read, and reports "closed", fatal errors and reloads done back through a
 * uv_async on the main loop.  The thread is joined when it reports closed.
 *
 * Liveness.  The publish timer also stamps a heartbeat, so the main thread
 * can tell a loop thread that stopped turning (a plugin blocking the jobs
 * loop, a deadlock) from a busy one: sl_stage_threads_stalled, which the
 * daemon's systemd watchdog asks before each ping. */
#include "daemon/stage_thread.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "kafka/kafka_bridge.h"

#define PUBLISH_MS 20
#define MAX_WATCHED 64

enum { CMD_STOP = 1, CMD_CLOSE = 2, CMD_RELOAD = 4 };

typedef struct {
  const char *name;
  sl_stage_ops_t ops; /* thread_ops under the hosted stage's name, for the daemon's log lines */
  sl_stage_t inner;
  sl_stage_host_t host; /* the daemon's */
  uv_loop_t loop;       /* the thread's */
  uv_thread_t thread;
  bool thread_started;
  sl_kafka_bridge_t *bridge;
  /* The thread's handles. */
  uv_async_t cmd;
  uv_timer_t publish;
  int thread_handles;
  /* The main loop's handle for news from the thread, open while the
   * thread runs. */
  uv_loop_t *main_loop;
  uv_async_t news;
  _Atomic unsigned cmds;       /* CMD_* bits not yet carried out */
  _Atomic size_t inflight;     /* published by the thread */
  _Atomic bool stop_seen;      /* the thread has stopped intake and published since */
  _Atomic bool closed;         /* the thread's loop has nothing left */
  _Atomic bool fatal;          /* a fatal error waits to be reported */
  _Atomic bool reloaded;       /* the inner stage's reload is done */
  _Atomic int reload_err;
  _Atomic uint64_t beat_ms;    /* the thread's last publish tick, uv_hrtime in ms */
  bool closing;                /* CMD_CLOSE sent: its beat stops, not its loop */
  sl_metric_t *m_age;          /* sluice_loop_heartbeat_age_seconds{thread} */
  /* The reload in progress: set on the main thread before CMD_RELOAD. */
  const sl_config_t *reload_next;
  void (*reload_done)(void *arg, int err);
  void *reload_arg;
  uv_mutex_t lock;             /* guards `what` and `fatal_reason` */
  char what[256];
  char fatal_reason[512];
  void (*on_closed)(void *arg);
  void *on_closed_arg;
} hosted_t;

/* ---- on the thread ---------------------------------------------------------- */

static void publish(hosted_t *h) {
  char what[256] = "";
  size_t n = h->inner.ops->inflight(h->inner.self, what, sizeof what);
  uv_mutex_lock(&h->lock);
  memcpy(h->what, what, sizeof what);
  uv_mutex_unlock(&h->lock);
  atomic_store(&h->inflight, n);
}

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

static void on_publish(uv_timer_t *t) {
  hosted_t *h = t->data;
  atomic_store(&h->beat_ms, now_ms());
  publish(h);
}

static void on_thread_handle_closed(uv_handle_t *hd) {
  hosted_t *h = hd->data;
  if (--h->thread_handles == 0 && h->bridge) sl_kafka_bridge_close(h->bridge, NULL, NULL);
}

static void on_inner_closed(void *arg) {
  hosted_t *h = arg;
  h->thread_handles = 2;
  uv_close((uv_handle_t *)&h->cmd, on_thread_handle_closed);
  uv_close((uv_handle_t *)&h->publish, on_thread_handle_closed);
}

static void on_inner_reloaded(void *arg, int err) {
  hosted_t *h = arg;
  atomic_store(&h->reload_err, err);
  atomic_store(&h->reloaded, true);
  uv_async_send(&h->news);
}

static void on_cmd(uv_async_t *a) {
  hosted_t *h = a->data;
  unsigned cmds = atomic_exchange(&h->cmds, 0);
  if (cmds & CMD_STOP) {
    h->inner.ops->stop_intake(h->inner.self);
    publish(h);
    atomic_store(&h->stop_seen, true);
  }
  if (cmds & CMD_RELOAD) h->inner.ops->reload(h->inner.self, h->reload_next, on_inner_reloaded, h);
  if (cmds & CMD_CLOSE) {
    uv_timer_stop(&h->publish);
    h->inner.ops->close(h->inner.self, on_inner_closed, h);
  }
}

static void run(void *arg) {
  hosted_t *h = arg;
  uv_run(&h->loop, UV_RUN_DEFAULT);
  atomic_store(&h->closed, true);
  uv_async_send(&h->news);
}

/* The inner stage's host: a fatal error is reported on the main loop. */
static void on_inner_fatal(void *arg, const char *stage, const char *reason) {
  hosted_t *h = arg;
  (void)stage;
  uv_mutex_lock(&h->lock);
  snprintf(h->fatal_reason, sizeof h->fatal_reason, "%s", reason);
  uv_mutex_unlock(&h->lock);
  atomic_store(&h->fatal, true);
  uv_async_send(&h->news);
}

static int inner_never_ready(void *arg, char *why, size_t len) {
  (void)arg;
  snprintf(why, len, "asked from a hosted stage");
  return 0;
}

/* ---- on the main thread ---------------------------------------------------- */

/* The threads running now, for sl_stage_threads_stalled. */
static hosted_t *watched[MAX_WATCHED];
static size_t n_watched;

static void watch(hosted_t *h, bool on) {
  if (on && n_watched < MAX_WATCHED) watched[n_watched++] = h;
  for (size_t i = 0; !on && i < n_watched; i++)
    if (watched[i] == h) watched[i] = watched[--n_watched];
}

size_t sl_stage_threads_stalled(uint64_t limit_ms, char *what, size_t len) {
  uint64_t now = now_ms();
  size_t n = 0, used = 0;
  if (len) what[0] = '\0';
  for (size_t i = 0; i < n_watched; i++) {
    hosted_t *h = watched[i];
    uint64_t beat = atomic_load(&h->beat_ms), age = now > beat ? now - beat : 0;
    if (h->closing) age = 0;
    if (h->m_age) sl_gauge_set(h->m_age, (double)age / 1000);
    if (age <= limit_ms) continue;
    n++;
    if (used < len) {
      int w = snprintf(what + used, len - used, "%sthe %s thread (%.1f s)", n > 1 ? ", " : "", h->name,
                       (double)age / 1000);
      if (w > 0) used += (size_t)w;
    }
  }
  return n;
}

static void on_news_closed(uv_handle_t *hd) {
  hosted_t *h = hd->data;
  if (h->on_closed) h->on_closed(h->on_closed_arg);
}

static void on_news(uv_async_t *a) {
  hosted_t *h = a->data;
  if (atomic_exchange(&h->fatal, false)) {
    char reason[512];
    uv_mutex_lock(&h->lock);
    memcpy(reason, h->fatal_reason, sizeof reason);
    uv_mutex_unlock(&h->lock);
    h->host.on_fatal(h->host.arg, h->name, reason);
  }
  if (atomic_exchange(&h->reloaded, false)) h->reload_done(h->reload_arg, atomic_load(&h->reload_err));
  if (atomic_load(&h->closed)) {
    watch(h, false);
    uv_thread_join(&h->thread);
    h->thread_started = false;
    uv_close((uv_handle_t *)&h->news, on_news_closed);
  }
}

static int st_start(void *self) {
  hosted_t *h = self;
  int r = h->inner.ops->start(h->inner.self);
  if (r) return r;
  publish(h);
  uv_timer_start(&h->publish, on_publish, PUBLISH_MS, PUBLISH_MS);
  uv_async_init(h->main_loop, &h->news, on_news);
  h->news.data = h;
  if ((r = uv_thread_create(&h->thread, run, h))) {
    sl_log(SL_LOG_ERROR, "agent", "cannot start the %s thread: %s", h->name, uv_strerror(r));
    uv_close((uv_handle_t *)&h->news, NULL);
    return r;
  }
  h->thread_started = true;
  atomic_store(&h->beat_ms, now_ms());
  watch(h, true);
  return 0;
}

static void command(hosted_t *h, unsigned cmd) {
  atomic_fetch_or(&h->cmds, cmd);
  uv_async_send(&h->cmd);
}

static void st_stop_intake(void *self) {
  hosted_t *h = self;
  if (h->thread_started) command(h, CMD_STOP);
}

static size_t st_inflight(void *self, char *what, size_t len) {
  hosted_t *h = self;
  /* Until the thread has stopped its intake, what it published may be from
   * before: say "busy" rather than a stale 0. */
  if (h->thread_started && !atomic_load(&h->stop_seen)) {
    snprintf(what, len, "%s is stopping its intake", h->name);
    return 1;
  }
  uv_mutex_lock(&h->lock);
  snprintf(what, len, "%s", h->what);
  uv_mutex_unlock(&h->lock);
  return atomic_load(&h->inflight);
}

static void st_outcome(void *self, char *what, size_t len) {
  hosted_t *h = self;
  /* Called once the drain is over; the inner stage no longer changes it. */
  if (h->inner.ops->outcome) h->inner.ops->outcome(h->inner.self, what, len);
}

static void st_reload(void *self, const sl_config_t *next, void (*on_done)(void *arg, int err), void *arg) {
  hosted_t *h = self;
  if (!h->thread_started || !h->inner.ops->reload) {
    on_done(arg, 0);
    return;
  }
  h->reload_next = next;
  h->reload_done = on_done;
  h->reload_arg = arg;
  command(h, CMD_RELOAD);
}

static void st_close(void *self, void (*on_closed)(void *arg), void *arg) {
  hosted_t *h = self;
  h->on_closed = on_closed;
  h->on_closed_arg = arg;
  if (h->thread_started) {
    h->closing = true;
    command(h, CMD_CLOSE);
    return;
  }
  /* Never started (this or another stage failed first): close on this
   * thread, the loop's owner until then, and run that loop to its end
   * here.  Nothing is left on the main loop, so the caller may free at
   * once. */
  uv_timer_stop(&h->publish);
  h->inner.ops->close(h->inner.self, on_inner_closed, h);
  uv_run(&h->loop, UV_RUN_DEFAULT);
  atomic_store(&h->closed, true);
  if (on_closed) on_closed(arg);
}

static void st_free(void *self) {
  hosted_t *h = self;
  if (!h) return;
  if (h->inner.ops) h->inner.ops->free(h->inner.self);
  sl_kafka_bridge_free(h->bridge);
  if (uv_loop_close(&h->loop)) sl_log(SL_LOG_WARN, "agent", "%s: its loop closed with handles open", h->name);
  uv_mutex_destroy(&h->lock);
  free(h);
}

static const sl_stage_ops_t thread_ops = {
    .name = "thread",
    .start = st_start,
    .stop_intake = st_stop_intake,
    .inflight = st_inflight,
    .outcome = st_outcome,
    .close = st_close,
    .free = st_free,
    .reload = st_reload,
};

sl_stage_t *sl_stage_thread_inner(const sl_stage_t *st) { return &((hosted_t *)st->self)->inner; }

int sl_stage_thread_new(const sl_stage_env_t *env, const char *name,
                        int (*create)(const sl_stage_env_t *env, sl_stage_t *out), sl_stage_t *out) {
  *out = (sl_stage_t){0};
  hosted_t *h = calloc(1, sizeof *h);
  if (!h) return SL_ENOMEM;
  h->name = name;
  h->host = env->host;
  int r = uv_loop_init(&h->loop);
  if (r) {
    free(h);
    return r;
  }
  uv_mutex_init(&h->lock);
  sl_stage_env_t inner_env = *env;
  inner_env.loop = &h->loop;
  inner_env.host = (sl_stage_host_t){.on_fatal = on_inner_fatal, .is_ready = inner_never_ready, .arg = h};
  if (env->bridge) {
    if (!(h->bridge = sl_kafka_bridge_new(&h->loop, env->metrics, &r))) goto fail;
    inner_env.bridge = h->bridge;
  }
  if ((r = create(&inner_env, &h->inner))) goto fail;
  if (!h->inner.ops) {
    r = 0;
    goto fail; /* left off: nothing to host */
  }
  uv_async_init(&h->loop, &h->cmd, on_cmd);
  h->cmd.data = h;
  uv_timer_init(&h->loop, &h->publish);
  h->publish.data = h;
  h->main_loop = env->loop;
  if (env->metrics) {
    static const char *const labels[] = {"thread", NULL};
    static const sl_metric_desc_t age = {
        .type = SL_METRIC_GAUGE,
        .name = "sluice_loop_heartbeat_age_seconds",
        .help = "Seconds since the thread's event loop last turned (checked every second; over a few "
                "seconds: something blocks it).",
        .labels = labels};
    h->m_age = sl_metric_child(sl_metrics_family(env->metrics, &age), (const char *const[]){name});
  }
  h->ops = thread_ops;
  h->ops.name = name;
  *out = (sl_stage_t){.ops = &h->ops, .self = h};
  return 0;
fail:
  if (h->bridge) {
    sl_kafka_bridge_close(h->bridge, NULL, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
  }
  st_free(h);
  return r;
}
