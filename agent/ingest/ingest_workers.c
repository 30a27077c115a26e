/* `[input.forward] workers = N`: N ingest stages, each hosted on a loop
 * thread of its own (stage_thread.c) with its own forward server and Kafka
 * producer, all accepting on the same TCP ports.  Seen by the daemon as one
 * stage: started in order (the first binds, the others bind the ports it
 * got, so port 0 works), stopped and closed together, their work in hand
 * summed.  Main thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "daemon/stage_thread.h"
#include "forward/forward_server.h"
#include "ingest/ingest.h"

typedef struct {
  size_t n;
  sl_stage_t *workers; /* hosted stages, owned */
  char (*names)[16];   /* "forward-1", ...: the workers' names, owned */
  size_t closing;      /* workers not yet closed */
  size_t reloading;    /* workers not yet done with a reload */
  int reload_err;      /* the first worker's error */
  void (*on_reloaded)(void *arg, int err);
  void *on_reloaded_arg;
  void (*on_closed)(void *arg);
  void *on_closed_arg;
} workers_t;

static sl_fwd_server_t *server_of(const sl_stage_t *hosted) {
  return sl_ingest_one_server(sl_stage_thread_inner(hosted));
}

static int w_start(void *self) {
  workers_t *w = self;
  sl_fwd_server_t *primary = server_of(&w->workers[0]);
  for (size_t i = 0; i < w->n; i++) {
    /* The primary has bound (and resolved port 0) before the others copy
     * its ports; its thread only runs connections, the ports stay put. */
    sl_fwd_server_set_worker(server_of(&w->workers[i]), i == 0, i == 0 ? NULL : primary, w->names[i]);
    int r = w->workers[i].ops->start(w->workers[i].self);
    if (r) return r;
  }
  sl_log(SL_LOG_INFO, "ingest", "%zu forward workers accepting", w->n);
  return 0;
}

static void w_stop_intake(void *self) {
  workers_t *w = self;
  for (size_t i = 0; i < w->n; i++) w->workers[i].ops->stop_intake(w->workers[i].self);
}

static size_t w_inflight(void *self, char *what, size_t len) {
  workers_t *w = self;
  size_t total = 0, used = 0;
  what[0] = 0;
  for (size_t i = 0; i < w->n; i++) {
    char one[256] = "";
    size_t n = w->workers[i].ops->inflight(w->workers[i].self, one, sizeof one);
    total += n;
    if (n && used < len) used += (size_t)snprintf(what + used, len - used, "%s%s: %s", used ? "; " : "", w->names[i], one);
  }
  return total;
}

static void w_outcome(void *self, char *what, size_t len) {
  workers_t *w = self;
  size_t used = 0;
  what[0] = 0;
  for (size_t i = 0; i < w->n && used < len; i++) {
    char one[256] = "";
    w->workers[i].ops->outcome(w->workers[i].self, one, sizeof one);
    used += (size_t)snprintf(what + used, len - used, "%s%s: %s", i ? "; " : "", w->names[i], one);
  }
}

static void on_worker_closed(void *arg) {
  workers_t *w = arg;
  if (--w->closing == 0) w->on_closed(w->on_closed_arg);
}

static void w_close(void *self, void (*on_closed)(void *arg), void *arg) {
  workers_t *w = self;
  w->on_closed = on_closed;
  w->on_closed_arg = arg;
  w->closing = w->n;
  for (size_t i = 0; i < w->n; i++) w->workers[i].ops->close(w->workers[i].self, on_worker_closed, w);
}

static void on_worker_reloaded(void *arg, int err) {
  workers_t *w = arg;
  if (err && !w->reload_err) w->reload_err = err;
  if (--w->reloading == 0) w->on_reloaded(w->on_reloaded_arg, w->reload_err);
}

/* Each worker swaps its routes on its own thread. */
static void w_reload(void *self, const sl_config_t *next, void (*on_done)(void *arg, int err), void *arg) {
  workers_t *w = self;
  w->on_reloaded = on_done;
  w->on_reloaded_arg = arg;
  w->reload_err = 0;
  w->reloading = w->n;
  for (size_t i = 0; i < w->n; i++) w->workers[i].ops->reload(w->workers[i].self, next, on_worker_reloaded, w);
}

static void w_free(void *self) {
  workers_t *w = self;
  if (!w) return;
  for (size_t i = 0; i < w->n; i++)
    if (w->workers[i].ops) w->workers[i].ops->free(w->workers[i].self);
  free(w->workers);
  free(w->names);
  free(w);
}

static const sl_stage_ops_t workers_ops = {
    .name = "ingest",
    .start = w_start,
    .stop_intake = w_stop_intake,
    .inflight = w_inflight,
    .outcome = w_outcome,
    .close = w_close,
    .free = w_free,
    .reload = w_reload,
};

int sl_ingest_stage_new(const sl_stage_env_t *env, sl_stage_t *out) {
  const sl_forward_conf_t *f = &env->cfg->input.forward;
  *out = (sl_stage_t){0};
  if (!f->enabled) return 0;
  if (f->workers <= 1 || !env->cfg->kafka.enabled) {
    if (f->workers > 1)
      sl_log(SL_LOG_WARN, "ingest", "print mode serves forward clients with one worker (workers = %lld ignored)",
             (long long)f->workers);
    return sl_ingest_one_new(env, out);
  }
  workers_t *w = calloc(1, sizeof *w);
  if (!w || !(w->workers = calloc((size_t)f->workers, sizeof *w->workers)) ||
      !(w->names = calloc((size_t)f->workers, sizeof *w->names))) {
    if (w) free(w->workers);
    free(w);
    return SL_ENOMEM;
  }
  /* workers <= 64 (the option's range); the modulo says so to the compiler. */
  for (int i = 0; i < (int)f->workers; i++) snprintf(w->names[i], sizeof w->names[i], "forward-%d", (i + 1) % 100);
  int r = 0;
  for (; w->n < (size_t)f->workers; w->n++)
    if ((r = sl_stage_thread_new(env, w->names[w->n], sl_ingest_one_new, &w->workers[w->n]))) {
      /* The ones made so far were never started: close them (on this
       * thread) before freeing. */
      w->closing = w->n;
      for (size_t i = 0; i < w->n; i++) w->workers[i].ops->close(w->workers[i].self, NULL, NULL);
      w_free(w);
      return r;
    }
  *out = (sl_stage_t){.ops = &workers_ops, .self = w};
  return 0;
}
