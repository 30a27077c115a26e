/* The sink host (sink_host.h): instances of plugins, the host functions of
 * the SDK, and batching, retries and failure handling around every write.
 * Jobs loop only (sl_sink_check: at start).
 *
 * A caller's write (a req) is carried out in rounds: each round hands the
 * rows still to write to the plugin in writes of at most batch_size rows
 * (sluice_write_t), and collects each row's outcome.  Rows that came back
 * RETRY go into the next round after the backoff; rows given up go to
 * on_failure; the req is reported when nothing of it is in flight, waiting
 * or left.
 *
 * Why errors are rewritten: the plugin's table is validated on its own (the
 * schema code sees it as a document's top level), so its messages name
 * "top level" and bare keys; they are re-prefixed with the table's path
 * ("sink[1].mode") to read like every other config error. */
#include "sinks/sink_host.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "jobs/ddsketch.h"
#include "kafka/kafka_producer.h"
#include "sinks/sink_conf.h"

#define NS_PER_MS 1000000

/* ---- errors ---------------------------------------------------------------- */

static bool is_path_char(char c) {
  return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.' || c == '[' || c == ']';
}

/* Moves tmp's lines into d, each "file:line:col: <rest>" with `path`
 * put before the key path the rest starts with. */
static void move_diag(sl_diag_t *d, sl_diag_t *tmp, const char *file, const char *path) {
  const char *f = file ? file : "<config>";
  size_t fl = strlen(f);
  for (size_t i = 0; i < tmp->n; i++) {
    const char *line = tmp->lines[i], *q = line;
    if (strncmp(line, f, fl) == 0 && line[fl] == ':') {
      q = line + fl + 1;
      const char *r = q;
      while (isdigit((unsigned char)*r)) r++;
      if (r > q && *r == ':') {
        r++;
        while (isdigit((unsigned char)*r)) r++;
        if (*r == ':') q = r + 1;
      }
      if (*q == ' ') q++;
    }
    int head = (int)(q - line);
    size_t tok = 0;
    while (is_path_char(q[tok])) tok++;
    char *out;
    int n;
    if (strncmp(q, "top level: ", 11) == 0)
      n = asprintf(&out, "%.*s%s: %s", head, line, path, q + 11);
    else if (tok && q[tok] == ':' && q[tok + 1] == ' ')
      n = asprintf(&out, "%.*s%s.%s", head, line, path, q);
    else
      n = asprintf(&out, "%.*s%s: %s", head, line, path, q);
    if (n >= 0) {
      sl_diag_add_line(d, out);
      free(out);
    }
  }
  sl_diag_free(tmp);
}

/* ---- validating and binding ------------------------------------------------- */

/* What a [[sink]] table binds to, before an instance is made of it. */
typedef struct {
  sl_sink_conf_t base;
  const sl_plugin_t *plugin;
  sl_opt_t *opts; /* the host's keys and the plugin's, for validation */
  void *conf;     /* the plugin's options struct */
  bool bound;
} prepared_t;

static sl_opt_t *combined_opts(const sl_plugin_t *p) {
  size_t n = 0, k = 0;
  for (const sl_opt_t *o = sl_sink_section.opts; o->name; o++) n++;
  for (const sl_opt_t *o = p->opts; o->name; o++) n++;
  sl_opt_t *all = calloc(n + 1, sizeof *all);
  if (!all) return NULL;
  for (const sl_opt_t *o = sl_sink_section.opts; o->name; o++) all[k++] = *o;
  for (const sl_opt_t *o = p->opts; o->name; o++) all[k++] = *o;
  return all;
}

/* Reports a plugin check's message: at the table's key when it starts
 * with one and ": ", else at the table. */
static int report_check(char *err, size_t errlen, const sl_toml_value_t *table, const char *file, sl_diag_t *tmp) {
  if (!err[0]) snprintf(err, errlen, "the plugin's check failed");
  size_t k = strcspn(err, ": ");
  const sl_toml_value_t *at = table;
  if (err[k] == ':' && err[k + 1] == ' ' && k < 128) {
    char key[128];
    memcpy(key, err, k);
    key[k] = '\0';
    const sl_toml_value_t *v = sl_toml_get(table, key);
    if (v) at = v;
    sl_diag_add(tmp, file, at->line, at->col, "%s", err);
  } else {
    sl_diag_add(tmp, file, at->line, at->col, "top level: %s", err);
  }
  return SL_ECONFIG;
}

/* The plugin's own check (ABI 1.1). */
static int plugin_check(const sl_plugin_t *pl, const void *conf, const sl_toml_value_t *table, const char *file,
                        sl_diag_t *tmp) {
  char err[512] = "";
  if (pl->d->abi_minor < 1 || !pl->d->check || !pl->d->check(conf, err, sizeof err)) return 0;
  return report_check(err, sizeof err, table, file, tmp);
}

static int prepare(sl_toml_value_t *table, const char *file, sl_diag_t *tmp, prepared_t *p) {
  if (sl_schema_validate(&sl_sink_section, table, file, tmp) ||
      sl_schema_bind(&sl_sink_section, table, &p->base, file, tmp))
    return SL_ECONFIG;
  char err[1024];
  if (!(p->plugin = sl_plugin_find(p->base.plugin, err, sizeof err))) {
    const sl_toml_value_t *v = sl_toml_get(table, "plugin");
    sl_diag_add(tmp, file, v ? v->line : table->line, v ? v->col : table->col, "plugin: %s", err);
    return SL_ECONFIG;
  }
  if (!(p->opts = combined_opts(p->plugin))) return SL_ENOMEM;
  sl_section_t section = {.name = p->plugin->d->name, .opts = p->opts};
  if (sl_schema_validate(&section, table, file, tmp)) return SL_ECONFIG;
  if (!(p->conf = calloc(1, p->plugin->section.size ? p->plugin->section.size : 1))) return SL_ENOMEM;
  p->bound = true;
  if (sl_schema_bind(&p->plugin->section, table, p->conf, file, tmp)) return SL_ECONFIG;
  return plugin_check(p->plugin, p->conf, table, file, tmp);
}

static void unprepare(prepared_t *p) {
  if (p->bound) sl_schema_unbind(&p->plugin->section, p->conf);
  free(p->conf);
  free(p->opts);
  sl_schema_unbind(&sl_sink_section, &p->base);
  memset(p, 0, sizeof *p);
}

int sl_sink_check(sl_toml_value_t *table, const char *file, const char *path, sl_diag_t *d) {
  sl_diag_t tmp = {0};
  prepared_t p = {0};
  int rc = prepare(table, file, &tmp, &p);
  unprepare(&p);
  if (tmp.n) move_diag(d, &tmp, file, path ? path : "sink");
  sl_diag_free(&tmp);
  return rc;
}

int sl_sink_check_job(sl_toml_value_t *table, const char *file, const char *path, const sluice_job_info_t *job,
                      sl_diag_t *d) {
  sl_diag_t tmp = {0}, seen = {0};
  prepared_t p = {0};
  int rc = 0;
  /* The table's own problems are sl_sink_check's to report. */
  if (!prepare(table, file, &seen, &p) && p.plugin->d->abi_minor >= 2 && p.plugin->d->check_job) {
    char err[512] = "";
    if (p.plugin->d->check_job(p.conf, job, err, sizeof err)) rc = report_check(err, sizeof err, table, file, &tmp);
  }
  unprepare(&p);
  if (tmp.n) move_diag(d, &tmp, file, path ? path : "sink");
  sl_diag_free(&tmp);
  sl_diag_free(&seen);
  return rc;
}

/* ---- instances --------------------------------------------------------------- */

enum { ROW_PENDING = 0, ROW_DONE = 1 };
#define ROW_UNSET 0xff

typedef struct req req_t;

struct sluice_write {
  struct sl_sink *s;
  req_t *q;   /* NULL for a flush */
  size_t n;   /* rows */
  size_t *idx; /* row i of this write is q's row idx[i] */
  const sluice_row_t **rows;
  uint8_t *row_st;
  char **row_msg; /* per row, its own failure message (row_done), or NULL; made on first use */
  uint64_t started;
  bool completed;
  sl_sink_done_cb flush_done;
  void *flush_arg;
};

/* A caller's write, until reported. */
struct req {
  req_t *prev, *next;
  struct sl_sink *s;
  const sl_sink_batch_t *batch;
  sl_sink_done_cb done;
  void *arg;
  uint8_t *st;     /* per row: ROW_PENDING, ROW_DONE */
  size_t left;     /* rows not done */
  size_t *again;   /* rows for the next round */
  size_t n_again;
  unsigned round;  /* retries so far */
  unsigned writes; /* plugin writes in flight */
  unsigned letters; /* dead letters in flight */
  uint64_t first_ms;
  int64_t backoff_ms;
  uv_timer_t timer;
  bool timer_init, waiting, canceled, reported, started;
  char msg[256];
};

struct sluice_ctx { /* the sink itself: the plugin's handle on the host */
  int dummy;
};

/* A plugin's metric: the registry's child and what kind it is (a
 * counter holds an integer, a gauge a double).  Kept by the sink. */
struct sluice_metric {
  struct sluice_metric *next;
  sl_metric_t *m;
  bool counter;
};

typedef struct sl_sink {
  struct sluice_ctx ctx; /* first: a ctx pointer is the sink's */
  const sl_plugin_t *plugin;
  void *self;
  void *plugin_conf; /* the bound options struct given to create */
  char *name;
  char component[96];
  sl_sink_env_t env;
  sl_sink_conf_t conf; /* the host options (strings not kept) */
  char *dead_letter_topic;
  req_t *reqs, *reqs_tail; /* oldest first */
  size_t n_reqs;
  uint64_t queued_rows;
  uv_timer_t flush_timer;
  bool flush_timer_init;
  unsigned handles_closing;
  bool closing, destroy_called, destroyed, closed;
  sl_ratelimit_t plugin_rl, drop_rl; /* per sink, so that one sink's lines do not hide another's */
  struct sluice_metric *plugin_metrics;
  sl_metrics_source_t *source; /* the plugin's published metric set; made on first use */
  char clash_logged[128];      /* the family set_publish last said it left out */
  struct delivery *deliveries; /* records out with the producer */
  bool up; /* the last plugin write succeeded (counted in sinks_down when not) */
  void (*on_closed)(void *arg);
  void *on_closed_arg;
  sl_metric_t *m_rows, *m_batches, *m_err_retry, *m_err_fatal, *m_retries, *m_dropped, *m_dead, *m_latency,
      *m_queue, *m_in_flight, *m_up;
} sl_sink_t_;

#define SINK(ctx) ((sl_sink_t_ *)(ctx))

static const sluice_host_t host_api;
static void on_flush_timer(uv_timer_t *t);

static sl_metric_t *labelled(sl_metrics_t *m, sl_metric_type_t type, const char *name, const char *help,
                             const char *sink) {
  static const char *const labels[] = {"sink", NULL};
  sl_metric_family_t *f =
      sl_metrics_family(m, &(sl_metric_desc_t){.type = type, .name = name, .help = help, .labels = labels});
  return sl_metric_child(f, (const char *const[]){sink});
}

/* Sinks whose last write failed, process-wide, for /readyz (read from the
 * main thread, written on the jobs thread). */
static _Atomic int sinks_down;
static uv_mutex_t down_lock;
static uv_once_t down_once = UV_ONCE_INIT;
static char down_why[256];
static void down_init(void) { uv_mutex_init(&down_lock); }

static void set_up(sl_sink_t_ *s, bool up, const char *why) {
  sl_gauge_set(s->m_up, up ? 1 : 0);
  if (up == s->up) return;
  s->up = up;
  uv_once(&down_once, down_init);
  if (!up) {
    uv_mutex_lock(&down_lock);
    snprintf(down_why, sizeof down_why, "sink %.60s is down: %.120s", s->name, why ? why : "its last write failed");
    uv_mutex_unlock(&down_lock);
  }
  atomic_fetch_add(&sinks_down, up ? -1 : 1);
}

int sl_sinks_all_up(char *why, size_t len) {
  if (atomic_load(&sinks_down) <= 0) return 1;
  uv_once(&down_once, down_init);
  uv_mutex_lock(&down_lock);
  snprintf(why, len, "%s", down_why);
  uv_mutex_unlock(&down_lock);
  return 0;
}

static const double latency_buckets[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30};

static void free_plugin_metrics(sl_sink_t_ *s) {
  for (struct sluice_metric *m = s->plugin_metrics, *next; m; m = next) {
    next = m->next;
    free(m);
  }
  s->plugin_metrics = NULL;
}

int sl_sink_new(sl_toml_value_t *table, const char *file, const char *path, const sl_sink_env_t *env,
                sl_sink_t **out, sl_diag_t *d) {
  sl_diag_t tmp = {0};
  prepared_t p = {0};
  sl_sink_t_ *s = NULL;
  *out = NULL;
  if (!path) path = "sink";
  int rc = prepare(table, file, &tmp, &p);
  if (rc) goto fail;
  rc = SL_ENOMEM;
  if (!(s = calloc(1, sizeof *s)) || !(s->name = strdup(p.base.name))) goto fail;
  if (p.base.dead_letter_topic && !(s->dead_letter_topic = strdup(p.base.dead_letter_topic))) goto fail;
  s->plugin = p.plugin;
  s->env = *env;
  s->conf = p.base;
  s->conf.name = s->conf.plugin = s->conf.dead_letter_topic = NULL;
  snprintf(s->component, sizeof s->component, "sink:%s:%s", p.plugin->d->name, s->name);
  sl_metrics_t *m = env->metrics;
  s->m_rows = labelled(m, SL_METRIC_COUNTER, "sluice_sink_rows_total", "Rows the sink wrote.", s->name);
  s->m_batches = labelled(m, SL_METRIC_COUNTER, "sluice_sink_batches_total", "Plugin writes that succeeded.",
                          s->name);
  static const char *const err_labels[] = {"sink", "kind", NULL};
  sl_metric_family_t *ef = sl_metrics_family(
      m, &(sl_metric_desc_t){.type = SL_METRIC_COUNTER, .name = "sluice_sink_errors_total",
                             .help = "Rows a plugin write failed, by kind (retry: may work again; fatal: refused).",
                             .labels = err_labels});
  s->m_err_retry = sl_metric_child(ef, (const char *const[]){s->name, "retry"});
  s->m_err_fatal = sl_metric_child(ef, (const char *const[]){s->name, "fatal"});
  s->m_retries = labelled(m, SL_METRIC_COUNTER, "sluice_sink_retries_total",
                          "Rows handed to the plugin again after a retryable error.", s->name);
  s->m_dropped = labelled(m, SL_METRIC_COUNTER, "sluice_sink_rows_dropped_total",
                          "Rows given up with on_failure = \"drop\".", s->name);
  s->m_dead = labelled(m, SL_METRIC_COUNTER, "sluice_sink_rows_dead_lettered_total",
                       "Rows given up and written to the dead-letter topic.", s->name);
  static const char *const sink_label[] = {"sink", NULL};
  s->m_latency = sl_metric_child(
      sl_metrics_family(m, &(sl_metric_desc_t){.type = SL_METRIC_HISTOGRAM, .name = "sluice_sink_write_seconds",
                                               .help = "Time from a plugin write to its completion.",
                                               .labels = sink_label, .buckets = latency_buckets,
                                               .n_buckets = sizeof latency_buckets / sizeof *latency_buckets}),
      (const char *const[]){s->name});
  s->m_queue = labelled(m, SL_METRIC_GAUGE, "sluice_sink_queue_rows", "Rows accepted and not yet done.", s->name);
  s->m_in_flight = labelled(m, SL_METRIC_GAUGE, "sluice_sink_in_flight",
                            "Writes of jobs accepted and not yet reported.", s->name);
  s->m_up = labelled(m, SL_METRIC_GAUGE, "sluice_sink_up", "1 when the sink's last write succeeded, else 0.",
                     s->name);
  sl_gauge_set(s->m_up, 1);
  s->up = true;
  char err[512] = "";
  if (p.plugin->d->create(&host_api, &s->ctx, p.conf, env->loop, &s->self, err, sizeof err)) {
    sl_diag_add(&tmp, file, table->line, table->col, "top level: %s", err[0] ? err : "the plugin's create failed");
    rc = SL_ECONFIG;
    goto fail;
  }
  if (s->conf.flush_interval_ns > 0 && p.plugin->d->flush) {
    uv_timer_init(env->loop, &s->flush_timer);
    s->flush_timer.data = s;
    s->flush_timer_init = true;
    uint64_t every = (uint64_t)(s->conf.flush_interval_ns / NS_PER_MS);
    uv_timer_start(&s->flush_timer, on_flush_timer, every ? every : 1, every ? every : 1);
  }
  s->plugin_conf = p.conf; /* the plugin's until destroy has completed */
  p.conf = NULL;
  p.bound = false;
  *out = (sl_sink_t *)s;
  s = NULL;
  rc = 0;
fail:
  if (s) {
    free_plugin_metrics(s); /* made by a create that then failed */
    free(s->name);
    free(s->dead_letter_topic);
    free(s);
  }
  unprepare(&p);
  if (tmp.n) move_diag(d, &tmp, file, path);
  sl_diag_free(&tmp);
  return rc;
}

const char *sl_sink_name(const sl_sink_t *s) { return ((const sl_sink_t_ *)s)->name; }
const sl_plugin_t *sl_sink_plugin(const sl_sink_t *s) { return ((const sl_sink_t_ *)s)->plugin; }
size_t sl_sink_in_flight(const sl_sink_t *s) { return ((const sl_sink_t_ *)s)->n_reqs; }

/* ---- caller writes ----------------------------------------------------------- */

static void maybe_closed(sl_sink_t_ *s) {
  if (!s->closing || !s->destroyed || s->handles_closing || s->n_reqs || s->closed) return;
  s->closed = true;
  if (s->on_closed) s->on_closed(s->on_closed_arg);
}

static void on_handle_closed(uv_handle_t *h) {
  sl_sink_t_ *s = h->data;
  s->handles_closing--;
  maybe_closed(s);
}

static void on_req_timer_closed(uv_handle_t *h) {
  req_t *q = h->data;
  sl_sink_t_ *s = q->s;
  free(q);
  s->handles_closing--;
  maybe_closed(s);
}

static void req_free(req_t *q) {
  sl_sink_t_ *s = q->s;
  free(q->st);
  free(q->again);
  if (q->timer_init) {
    s->handles_closing++;
    uv_close((uv_handle_t *)&q->timer, on_req_timer_closed);
  } else {
    free(q);
  }
}

static void start_next(sl_sink_t_ *s);
static void on_retry_timer(uv_timer_t *t);

/* Reports q once nothing of it is in flight, waiting or left. */
static void maybe_report(req_t *q) {
  if (q->reported || q->writes || q->letters || q->waiting || (q->left && !q->canceled)) return;
  if (q->n_again && !q->canceled) return;
  sl_sink_t_ *s = q->s;
  q->reported = true;
  if (q->prev)
    q->prev->next = q->next;
  else
    s->reqs = q->next;
  if (q->next)
    q->next->prev = q->prev;
  else
    s->reqs_tail = q->prev;
  s->n_reqs--;
  s->queued_rows -= q->left;
  sl_gauge_set(s->m_queue, (double)s->queued_rows);
  sl_gauge_dec(s->m_in_flight);
  q->done(q->arg, q->canceled ? SL_SINK_CANCELED : SL_SINK_OK, q->canceled ? q->msg : NULL);
  req_free(q);
  if (!s->closing) start_next(s);
  maybe_closed(s);
}

/* Starts the oldest write if it has not started: a sink writes the jobs'
 * writes one after another, in the order they came, so that a write
 * waiting for a retry is never overtaken by a later one (which may hold a
 * newer row for the same key, that the retry would then overwrite). */
static void start_next(sl_sink_t_ *s) {
  req_t *q = s->reqs;
  if (!q || q->started) return;
  q->started = true;
  uv_timer_start(&q->timer, on_retry_timer, 0, 0);
}

static void row_finished(req_t *q, size_t i) {
  if (q->st[i] == ROW_DONE) return;
  q->st[i] = ROW_DONE;
  q->left--;
  q->s->queued_rows--;
  sl_gauge_set(q->s->m_queue, (double)q->s->queued_rows);
}

static void start_round(req_t *q);
static void start_next(sl_sink_t_ *s);

static void on_retry_timer(uv_timer_t *t) {
  req_t *q = t->data;
  q->waiting = false;
  q->round++;
  sl_metric_add(q->s->m_retries, q->n_again);
  start_round(q);
}

static void schedule_retry(req_t *q) {
  sl_sink_t_ *s = q->s;
  if (s->closing) {
    q->canceled = true;
    snprintf(q->msg, sizeof q->msg, "not retried, the sink is closing");
    q->n_again = 0;
    maybe_report(q);
    return;
  }
  if (!q->timer_init) {
    uv_timer_init(s->env.loop, &q->timer);
    q->timer.data = q;
    q->timer_init = true;
    q->backoff_ms = s->conf.initial_backoff_ns / NS_PER_MS;
  }
  int64_t wait = q->backoff_ms;
  if (s->conf.jitter && wait > 1) wait = wait / 2 + (int64_t)((uint64_t)rand() % (uint64_t)(wait / 2 + 1));
  int64_t max = s->conf.max_backoff_ns / NS_PER_MS;
  q->backoff_ms = q->backoff_ms > max / 2 ? max : q->backoff_ms * 2;
  sl_log_rl(SL_LOG_WARN, s->component, "%zu rows not written (retry %u in %lld ms): %s", q->n_again, q->round + 1,
            (long long)wait, q->msg[0] ? q->msg : "retryable error");
  q->waiting = true;
  uv_timer_start(&q->timer, on_retry_timer, (uint64_t)wait, 0);
}

/* ---- dead letters -------------------------------------------------------------- */

/* A record the sink handed the shared producer, until its report.  At
 * close, those still out are detached from their writer (kind 0: the req;
 * kind 1: the plugin's done, called with SLUICE_CANCELED then), so that a
 * Kafka that never answers cannot hold the close; the report that may come
 * later only frees it. */
typedef struct delivery {
  struct delivery *prev, *next;
  sl_sink_t_ *s;
  int kind; /* 0: a dead letter; 1: a plugin's kafka_produce */
  req_t *q;
  size_t row;
  void (*done)(void *arg, sluice_status_t status, const char *message);
  void *arg;
} delivery_t;

static void delivery_link(delivery_t *dl) {
  sl_sink_t_ *s = dl->s;
  dl->next = s->deliveries;
  if (s->deliveries) s->deliveries->prev = dl;
  s->deliveries = dl;
}

static void delivery_unlink(delivery_t *dl) {
  if (!dl->s) return;
  if (dl->prev)
    dl->prev->next = dl->next;
  else
    dl->s->deliveries = dl->next;
  if (dl->next) dl->next->prev = dl->prev;
  dl->s = NULL;
}

static void again(req_t *q, size_t i) { q->again[q->n_again++] = i; }

static void give_up(req_t *q, size_t i, const char *why) {
  sl_sink_t_ *s = q->s;
  const sl_sink_row_t *row = &q->batch->rows[i];
  if (s->conf.on_failure == SL_SINK_ON_FAILURE_DEAD_LETTER && s->env.producer) {
    delivery_t *dl = calloc(1, sizeof *dl);
    const char *names[] = {"sluice.error", "sluice.sink", "sluice.job"};
    const char *values[] = {why, s->name, row->job ? row->job : ""};
    sl_kafka_header_t hs[3];
    for (int k = 0; k < 3; k++) hs[k] = (sl_kafka_header_t){names[k], values[k], strlen(values[k])};
    int r = dl ? 0 : SL_ENOMEM;
    if (dl) {
      *dl = (delivery_t){.s = s, .kind = 0, .q = q, .row = i};
      r = sl_kafka_producer_send_headers(s->env.producer, s->dead_letter_topic, row->id_hex, 16, row->json,
                                         row->json_len, -1, hs, 3, dl);
    }
    if (!r) {
      delivery_link(dl);
      q->letters++;
      if (sl_ratelimit_pass(&s->drop_rl, 10, 10000) >= 0)
        sl_log_write(SL_LOG_WARN, s->component, "row %s of job %s to dead-letter topic %s: %s", row->id_hex,
                     row->job ? row->job : "?", s->dead_letter_topic, why);
      return;
    }
    free(dl);
    sl_log_rl(SL_LOG_ERROR, s->component, "cannot write a row to dead-letter topic %s (%s): trying the sink again",
              s->dead_letter_topic, sl_strerror(r));
    again(q, i);
    return;
  }
  if (s->conf.on_failure != SL_SINK_ON_FAILURE_DROP)
    sl_log_rl(SL_LOG_ERROR, s->component, "no Kafka producer for dead letters: row dropped");
  if (sl_ratelimit_pass(&s->drop_rl, 10, 10000) >= 0)
    sl_log_write(SL_LOG_ERROR, s->component, "row %s of job %s dropped: %s", row->id_hex, row->job ? row->job : "?",
                 why);
  sl_metric_inc(s->m_dropped);
  row_finished(q, i);
}

void sl_sink_kafka_delivered(void *msg_opaque, int err) {
  delivery_t *dl = msg_opaque;
  if (!dl->s) { /* detached at close */
    free(dl);
    return;
  }
  delivery_unlink(dl);
  if (dl->kind == 1) {
    dl->done(dl->arg, err ? SLUICE_RETRY : SLUICE_OK, err ? "Kafka did not take the record" : NULL);
    free(dl);
    return;
  }
  req_t *q = dl->q;
  size_t row = dl->row;
  free(dl);
  q->letters--;
  if (err) {
    sl_log_rl(SL_LOG_ERROR, q->s->component, "a dead letter was not delivered: trying the sink again");
    again(q, row);
  } else {
    sl_metric_inc(q->s->m_dead);
    row_finished(q, row);
  }
  if (!q->letters && !q->writes && q->n_again && !q->waiting) {
    schedule_retry(q);
    return;
  }
  maybe_report(q);
}

/* ---- rounds --------------------------------------------------------------------- */

static bool gives_up(const req_t *q, int status) {
  const sl_sink_t_ *s = q->s;
  if (s->conf.on_failure == SL_SINK_ON_FAILURE_BLOCK) return false;
  if (status == SLUICE_FATAL) return true;
  if (s->conf.max_retries && q->round >= (uint64_t)s->conf.max_retries) return true;
  return s->conf.max_elapsed_ns &&
         (int64_t)(uv_now(s->env.loop) - q->first_ms) >= s->conf.max_elapsed_ns / NS_PER_MS;
}

static void write_free(sluice_write_t *w) {
  if (!w) return;
  for (size_t i = 0; w->row_msg && i < w->n; i++) free(w->row_msg[i]);
  free(w->row_msg);
  free(w->idx);
  free(w->rows);
  free(w->row_st);
  free(w);
}

/* The outcome of one plugin write of q's rows. */
static void round_write_done(sluice_write_t *w, int status, const char *message) {
  req_t *q = w->q;
  sl_sink_t_ *s = q->s;
  size_t ok = 0;
  for (size_t i = 0; i < w->n; i++) {
    int st = w->row_st[i] != ROW_UNSET ? w->row_st[i] : status;
    size_t row = w->idx[i];
    switch (st) {
    case SLUICE_OK:
      ok++;
      row_finished(q, row);
      break;
    case SLUICE_CANCELED:
      q->canceled = true;
      snprintf(q->msg, sizeof q->msg, "the sink was closed before writing every row");
      break;
    default: {
      const char *why = w->row_msg && w->row_msg[i] ? w->row_msg[i] : message ? message : "write failed";
      sl_metric_inc(st == SLUICE_FATAL ? s->m_err_fatal : s->m_err_retry);
      snprintf(q->msg, sizeof q->msg, "%s", why);
      if (s->closing && st == SLUICE_RETRY) {
        q->canceled = true;
      } else if (gives_up(q, st)) {
        give_up(q, row, why);
      } else {
        if (st == SLUICE_FATAL)
          sl_log_rl(SL_LOG_ERROR, s->component, "row %s refused (on_failure = \"block\": retried): %s",
                    q->batch->rows[row].id_hex, why);
        again(q, row);
      }
    }
    }
  }
  sl_metric_add(s->m_rows, ok);
  if (ok == w->n) sl_metric_inc(s->m_batches);
  set_up(s, ok == w->n, q->msg[0] ? q->msg : message);
  q->writes--;
  write_free(w);
  if (!q->writes && !q->letters && q->n_again && !q->canceled) {
    schedule_retry(q);
    return;
  }
  maybe_report(q);
}

/* Hands the rows to write (all of them, or those of q->again) to the
 * plugin in writes of at most batch_size. */
static void start_round(req_t *q) {
  sl_sink_t_ *s = q->s;
  size_t n = 0, *todo = NULL;
  if (q->round == 0) {
    n = q->batch->n;
  } else {
    todo = q->again;
    n = q->n_again;
    q->again = malloc((q->batch->n ? q->batch->n : 1) * sizeof *q->again);
    q->n_again = 0;
    if (!q->again) { /* keep the old list and try again later */
      q->again = todo;
      q->n_again = n;
      schedule_retry(q);
      return;
    }
  }
  size_t bs = (size_t)s->conf.batch_size;
  q->writes++; /* held while the writes are started */
  for (size_t at = 0; at < n; at += bs) {
    size_t k = n - at < bs ? n - at : bs;
    sluice_write_t *w = calloc(1, sizeof *w);
    if (w) {
      w->idx = malloc(k * sizeof *w->idx);
      w->rows = malloc(k * sizeof *w->rows);
      w->row_st = malloc(k);
    }
    if (!w || !w->idx || !w->rows || !w->row_st) {
      write_free(w);
      for (size_t i = 0; i < k; i++) again(q, todo ? todo[at + i] : at + i);
      snprintf(q->msg, sizeof q->msg, "out of memory");
      continue;
    }
    *w = (sluice_write_t){.s = s, .q = q, .n = k, .idx = w->idx, .rows = w->rows, .row_st = w->row_st,
                          .started = uv_hrtime()};
    memset(w->row_st, ROW_UNSET, k);
    for (size_t i = 0; i < k; i++) {
      w->idx[i] = todo ? todo[at + i] : at + i;
      w->rows[i] = &q->batch->rows[w->idx[i]];
    }
    q->writes++;
    /* A refusal is a RETRY of every row: counted, and given up as
     * max_retries, max_elapsed and on_failure say (q->writes is held, so
     * this reports nothing). */
    if (s->plugin->d->write(s->self, w, w->rows, k)) round_write_done(w, SLUICE_RETRY, "the plugin refused the write");
  }
  free(todo);
  q->writes--;
  if (!q->writes && !q->letters && q->n_again) {
    schedule_retry(q);
    return;
  }
  maybe_report(q);
}

int sl_sink_write(sl_sink_t *s_, const sl_sink_batch_t *batch, sl_sink_done_cb done, void *arg) {
  sl_sink_t_ *s = (sl_sink_t_ *)s_;
  if (s->closing) return SL_ECANCELED;
  req_t *q = calloc(1, sizeof *q);
  if (!q) return SL_ENOMEM;
  *q = (req_t){.s = s, .batch = batch, .done = done, .arg = arg, .left = batch->n,
               .first_ms = uv_now(s->env.loop)};
  q->st = calloc(batch->n ? batch->n : 1, 1);
  q->again = malloc((batch->n ? batch->n : 1) * sizeof *q->again);
  if (!q->st || !q->again) {
    free(q->st);
    free(q->again);
    free(q);
    return SL_ENOMEM;
  }
  /* In arrival order; only the oldest is being written (see start_next). */
  q->prev = s->reqs_tail;
  if (s->reqs_tail)
    s->reqs_tail->next = q;
  else
    s->reqs = q;
  s->reqs_tail = q;
  s->n_reqs++;
  s->queued_rows += batch->n;
  sl_gauge_set(s->m_queue, (double)s->queued_rows);
  sl_gauge_inc(s->m_in_flight);
  /* Reported from a later loop turn at the earliest: done never runs from
   * inside sl_sink_write, even when the plugin completes at once. */
  q->waiting = true;
  uv_timer_init(s->env.loop, &q->timer);
  q->timer.data = q;
  q->timer_init = true;
  q->backoff_ms = s->conf.initial_backoff_ns / NS_PER_MS;
  q->round = (unsigned)-1; /* on_retry_timer makes it 0 */
  if (s->reqs == q) start_next(s);
  return 0;
}

/* ---- flushes --------------------------------------------------------------------- */

static void flush_write_done(sluice_write_t *w, int status, const char *message) {
  sl_sink_done_cb done = w->flush_done;
  void *arg = w->flush_arg;
  write_free(w);
  done(arg, status, message);
}

int sl_sink_flush(sl_sink_t *s_, sl_sink_done_cb done, void *arg) {
  sl_sink_t_ *s = (sl_sink_t_ *)s_;
  if (s->closing) return SL_ECANCELED;
  if (!s->plugin->d->flush) return SL_EPLUGIN;
  sluice_write_t *w = calloc(1, sizeof *w);
  if (!w) return SL_ENOMEM;
  *w = (sluice_write_t){.s = s, .flush_done = done, .flush_arg = arg, .started = uv_hrtime()};
  if (s->plugin->d->flush(s->self, w)) {
    free(w);
    return SL_EPLUGIN;
  }
  return 0;
}

static void on_timed_flush_done(void *arg, int status, const char *message) {
  sl_sink_t_ *s = arg;
  if (status != SL_SINK_OK) sl_log_rl(SL_LOG_WARN, s->component, "flush failed: %s", message ? message : "?");
}

static void on_flush_timer(uv_timer_t *t) {
  sl_sink_t_ *s = t->data;
  sl_sink_flush((sl_sink_t *)s, on_timed_flush_done, s);
}

/* ---- closing ----------------------------------------------------------------------- */

void sl_sink_close(sl_sink_t *s_, void (*on_closed)(void *arg), void *arg) {
  sl_sink_t_ *s = (sl_sink_t_ *)s_;
  s->closing = true;
  s->on_closed = on_closed;
  s->on_closed_arg = arg;
  if (s->flush_timer_init) {
    s->handles_closing++;
    uv_close((uv_handle_t *)&s->flush_timer, on_handle_closed);
  }
  /* Records out with the producer: their writers stop waiting for them. */
  while (s->deliveries) {
    delivery_t *dl = s->deliveries;
    delivery_unlink(dl);
    if (dl->kind == 1) {
      dl->done(dl->arg, SLUICE_CANCELED, "the sink is closing");
    } else {
      dl->q->letters--;
      dl->q->canceled = true;
      snprintf(dl->q->msg, sizeof dl->q->msg, "the sink closed before its dead letters were delivered");
    }
  }
  for (req_t *q = s->reqs, *next; q; q = next) {
    next = q->next;
    if (q->canceled && !q->waiting) maybe_report(q);
  }
  /* Waiting for a retry: the plugin does not hold them, so they end here. */
  for (req_t *q = s->reqs, *next; q; q = next) {
    next = q->next;
    if (!q->waiting) continue;
    uv_timer_stop(&q->timer);
    q->waiting = false;
    q->canceled = true;
    q->n_again = 0;
    snprintf(q->msg, sizeof q->msg, "the sink closed before the rows could be written");
    maybe_report(q);
  }
  s->destroy_called = true;
  s->plugin->d->destroy(s->self);
}

void sl_sink_free(sl_sink_t *s_) {
  sl_sink_t_ *s = (sl_sink_t_ *)s_;
  if (!s) return;
  if (!s->up) atomic_fetch_add(&sinks_down, -1);
  if (s->plugin_conf) {
    sl_schema_unbind(&s->plugin->section, s->plugin_conf);
    free(s->plugin_conf);
  }
  free_plugin_metrics(s);
  sl_metrics_source_free(s->source);
  free(s->name);
  free(s->dead_letter_topic);
  free(s);
}

/* ---- the host functions of the SDK ---------------------------------------------------- */

static void h_log(sluice_ctx_t *ctx, sluice_log_level_t level, const char *fmt, ...) {
  sl_sink_t_ *s = SINK(ctx);
  if ((int)level > sl_log_threshold) return;
  if (level <= SLUICE_LOG_WARN && sl_ratelimit_pass(&s->plugin_rl, 20, 10000) < 0) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  sl_log_write((sl_log_level_t)level, s->component, "%s", line);
}

static sluice_metric_t *plugin_metric(sluice_ctx_t *ctx, sl_metric_type_t type, const char *name, const char *help) {
  sl_sink_t_ *s = SINK(ctx);
  static sluice_metric_t overflow; /* when out of memory: updates go nowhere */
  sluice_metric_t *pm = calloc(1, sizeof *pm);
  if (!pm) return &overflow;
  pm->m = labelled(s->env.metrics, type, name, help, s->name);
  pm->counter = type == SL_METRIC_COUNTER;
  pm->next = s->plugin_metrics;
  s->plugin_metrics = pm;
  return pm;
}

static sluice_metric_t *h_counter(sluice_ctx_t *ctx, const char *name, const char *help) {
  return plugin_metric(ctx, SL_METRIC_COUNTER, name, help);
}

static sluice_metric_t *h_gauge(sluice_ctx_t *ctx, const char *name, const char *help) {
  return plugin_metric(ctx, SL_METRIC_GAUGE, name, help);
}

static void h_metric_add(sluice_metric_t *pm, double v) {
  if (!pm->m) return;
  if (pm->counter) {
    if (v > 0) sl_metric_add(pm->m, (uint64_t)v);
  } else {
    sl_gauge_add(pm->m, v);
  }
}

static void h_metric_set(sluice_metric_t *pm, double v) {
  if (pm->m && !pm->counter) sl_gauge_set(pm->m, v);
}

struct sluice_timer {
  uv_timer_t t;
  void (*cb)(void *arg);
  void *arg;
};

static void on_plugin_timer(uv_timer_t *t) {
  struct sluice_timer *pt = t->data;
  pt->cb(pt->arg);
}

static sluice_timer_t *h_timer_new(sluice_ctx_t *ctx, void (*cb)(void *arg), void *arg) {
  struct sluice_timer *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  uv_timer_init(SINK(ctx)->env.loop, &t->t);
  t->t.data = t;
  t->cb = cb;
  t->arg = arg;
  return t;
}

static void h_timer_start(sluice_timer_t *t, uint64_t ms) { uv_timer_start(&t->t, on_plugin_timer, ms, 0); }
static void h_timer_stop(sluice_timer_t *t) { uv_timer_stop(&t->t); }
static void on_plugin_timer_closed(uv_handle_t *h) { free(h->data); }
static void h_timer_free(sluice_timer_t *t) {
  if (t) uv_close((uv_handle_t *)&t->t, on_plugin_timer_closed);
}

static uint64_t h_row_id(const sluice_row_t *r) { return r->id; }
static const char *h_row_id_hex(const sluice_row_t *r) { return r->id_hex; }
static const char *h_row_job(const sluice_row_t *r) { return r->job; }
static int64_t h_row_window_start(const sluice_row_t *r) { return r->window_start; }
static int64_t h_row_window_end(const sluice_row_t *r) { return r->window_end; }
static const char *h_row_json(const sluice_row_t *r, size_t *len) {
  if (len) *len = r->json_len;
  return r->json;
}
static const void *h_row_msgpack(const sluice_row_t *r, size_t *len) {
  if (len) *len = r->msgpack_len;
  return r->msgpack;
}

/* The row's map, unpacked on first use (kept in the row until
 * sl_sink_row_clear). */
static const msgpack_object *row_map(const sluice_row_t *r_) {
  sluice_row_t *r = (sluice_row_t *)r_;
  if (!r->fields) {
    msgpack_unpacked *u = malloc(sizeof *u);
    if (!u) return NULL;
    msgpack_unpacked_init(u);
    size_t off = 0;
    if (!r->msgpack ||
        msgpack_unpack_next(u, r->msgpack, r->msgpack_len, &off) != MSGPACK_UNPACK_SUCCESS ||
        u->data.type != MSGPACK_OBJECT_MAP) {
      msgpack_unpacked_destroy(u);
      free(u);
      return NULL;
    }
    r->fields = u;
  }
  return &((msgpack_unpacked *)r->fields)->data;
}

static void sketches_free(void *list);

void sl_sink_row_clear(sl_sink_row_t *r) {
  sketches_free(r->sketches);
  r->sketches = NULL;
  if (!r->fields) return;
  msgpack_unpacked_destroy(r->fields);
  free(r->fields);
  r->fields = NULL;
}

void sl_sink_row_set_shape(sl_sink_row_t *r, size_t msgpack_len, size_t n_keys, sluice_row_kind_t kind) {
  size_t total = r->msgpack_len + r->sketches_len; /* so that it may be called again */
  r->sketches_len = total - msgpack_len;
  r->msgpack_len = msgpack_len;
  r->n_keys = (uint32_t)n_keys;
  r->kind = (uint8_t)kind;
}

void sl_sink_row_set_id(sl_sink_row_t *r, uint64_t id) {
  r->id = id;
  snprintf(r->id_hex, sizeof r->id_hex, "%016" PRIx64, id);
}

static void to_value(const msgpack_object *o, sluice_value_t *v) {
  memset(v, 0, sizeof *v);
  switch (o->type) {
  case MSGPACK_OBJECT_NIL: v->type = SLUICE_VALUE_NULL; break;
  case MSGPACK_OBJECT_BOOLEAN:
    v->type = SLUICE_VALUE_BOOL;
    v->b = o->via.boolean;
    break;
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    if (o->via.u64 > INT64_MAX) {
      v->type = SLUICE_VALUE_FLOAT;
      v->f = (double)o->via.u64;
    } else {
      v->type = SLUICE_VALUE_INT;
      v->i = (int64_t)o->via.u64;
    }
    break;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    v->type = SLUICE_VALUE_INT;
    v->i = o->via.i64;
    break;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    v->type = SLUICE_VALUE_FLOAT;
    v->f = o->via.f64;
    break;
  case MSGPACK_OBJECT_STR:
    v->type = SLUICE_VALUE_STRING;
    v->s = o->via.str.ptr;
    v->len = o->via.str.size;
    break;
  case MSGPACK_OBJECT_BIN:
    v->type = SLUICE_VALUE_STRING;
    v->s = o->via.bin.ptr;
    v->len = o->via.bin.size;
    break;
  default: v->type = SLUICE_VALUE_OTHER; break;
  }
}

static size_t h_row_nfields(const sluice_row_t *r) {
  const msgpack_object *m = row_map(r);
  return m ? m->via.map.size : 0;
}

static const char *h_row_field(const sluice_row_t *r, size_t i, sluice_value_t *v) {
  const msgpack_object *m = row_map(r);
  if (!m || i >= m->via.map.size) return NULL;
  const msgpack_object_kv *kv = &m->via.map.ptr[i];
  to_value(&kv->val, v);
  /* Keys are packed NUL-free strings by the engine; the NUL is not there,
   * so hand out a copy kept in the unpacked zone. */
  if (kv->key.type != MSGPACK_OBJECT_STR) return "";
  msgpack_unpacked *u = r->fields;
  char *name = msgpack_zone_malloc(u->zone, kv->key.via.str.size + 1);
  if (!name) return "";
  memcpy(name, kv->key.via.str.ptr, kv->key.via.str.size);
  name[kv->key.via.str.size] = '\0';
  return name;
}

static bool h_row_get(const sluice_row_t *r, const char *name, sluice_value_t *v) {
  const msgpack_object *m = row_map(r);
  size_t n = strlen(name);
  for (size_t i = 0; m && i < m->via.map.size; i++) {
    const msgpack_object *k = &m->via.map.ptr[i].key;
    if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && !memcmp(k->via.str.ptr, name, n)) {
      to_value(&m->via.map.ptr[i].val, v);
      return true;
    }
  }
  return false;
}

static void h_row_done(sluice_write_t *w, size_t i, sluice_status_t status, const char *message) {
  if (!w->q || i >= w->n) return;
  w->row_st[i] = (uint8_t)status;
  if (status == SLUICE_OK || !message) return;
  if (!w->row_msg && !(w->row_msg = calloc(w->n, sizeof *w->row_msg))) return;
  free(w->row_msg[i]);
  w->row_msg[i] = strdup(message);
}

static void h_write_done(sluice_write_t *w, sluice_status_t status, const char *message) {
  if (w->completed) return;
  w->completed = true;
  sl_histogram_observe(w->s->m_latency, (double)(uv_hrtime() - w->started) / 1e9);
  if (!w->q) {
    flush_write_done(w, status, message);
    return;
  }
  round_write_done(w, status, message);
}

static void h_destroyed(sluice_ctx_t *ctx) {
  sl_sink_t_ *s = SINK(ctx);
  s->destroyed = true;
  sl_metrics_source_free(s->source); /* its series leave with it */
  s->source = NULL;
  maybe_closed(s);
}

static int h_kafka_produce(sluice_ctx_t *ctx, const char *topic, const void *key, size_t key_len, const void *value,
                           size_t value_len, const char *const *names, const char *const *values, size_t n,
                           void (*done)(void *arg, sluice_status_t status, const char *message), void *arg) {
  sl_sink_t_ *s = SINK(ctx);
  if (!s->env.producer) return SLUICE_FATAL;
  sl_kafka_header_t hs[16];
  if (n > 16) return SLUICE_FATAL;
  for (size_t i = 0; i < n; i++) hs[i] = (sl_kafka_header_t){names[i], values[i], strlen(values[i])};
  delivery_t *dl = calloc(1, sizeof *dl);
  if (!dl) return SLUICE_RETRY;
  *dl = (delivery_t){.s = s, .kind = 1, .done = done, .arg = arg};
  int r = sl_kafka_producer_send_headers(s->env.producer, topic, key, key_len, value, value_len, -1, hs, n, dl);
  if (!r) {
    delivery_link(dl);
    return 0;
  }
  free(dl);
  return r == SL_EQUEUEFULL ? SLUICE_RETRY : SLUICE_FATAL;
}

/* ---- ABI 1.1: row shapes, sketches, metric sets ---------------------------------- */

static sluice_row_kind_t h_row_kind(const sluice_row_t *r) { return (sluice_row_kind_t)r->kind; }

static size_t h_row_nkeys(const sluice_row_t *r) { return r->n_keys; }

/* A sketch of a row, decoded on first use and kept in the row (freed by
 * sl_sink_row_clear), so that its bins live as long as the row. */
typedef struct sketch_entry {
  struct sketch_entry *next;
  char *name;
  sluice_sketch_t sk;
  sluice_bin_t *bins;
} sketch_entry_t;

static void sketches_free(void *list) {
  for (sketch_entry_t *e = list, *next; e; e = next) {
    next = e->next;
    free(e->name);
    free(e->bins);
    free(e);
  }
}

/* The sketch bytes of the row's aggregate `name`, or NULL. */
static const char *find_sketch(const sluice_row_t *r, const char *name, size_t *len) {
  if (!r->sketches_len || !r->msgpack) return NULL;
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0, n = strlen(name);
  const char *found = NULL;
  if (msgpack_unpack_next(&u, r->msgpack + r->msgpack_len, r->sketches_len, &off) == MSGPACK_UNPACK_SUCCESS &&
      u.data.type == MSGPACK_OBJECT_MAP)
    for (uint32_t i = 0; i < u.data.via.map.size && !found; i++) {
      const msgpack_object_kv *kv = &u.data.via.map.ptr[i];
      if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == n && !memcmp(kv->key.via.str.ptr, name, n) &&
          kv->val.type == MSGPACK_OBJECT_BIN) {
        /* The bytes point into the row's buffer, not the unpacked zone. */
        found = kv->val.via.bin.ptr;
        *len = kv->val.via.bin.size;
      }
    }
  msgpack_unpacked_destroy(&u);
  return found;
}

static sketch_entry_t *decode_sketch(const char *name, const char *bytes, size_t len) {
  sl_dds_t d;
  size_t used;
  sketch_entry_t *e = NULL;
  if (sl_dds_deserialize(&d, bytes, len, &used)) return NULL;
  size_t n = sl_dds_bins(&d, NULL, 0);
  sl_dds_bin_t *bins = malloc((n ? n : 1) * sizeof *bins);
  if (bins && (e = calloc(1, sizeof *e)) && (e->name = strdup(name)) &&
      (e->bins = malloc((n ? n : 1) * sizeof *e->bins))) {
    sl_dds_bins(&d, bins, n);
    for (size_t i = 0; i < n; i++) e->bins[i] = (sluice_bin_t){bins[i].lower, bins[i].upper, bins[i].count};
    e->sk = (sluice_sketch_t){.relative_accuracy = d.alpha, .count = sl_dds_count(&d), .min = d.min, .max = d.max,
                              .n_bins = n, .bins = e->bins};
  } else if (e) {
    sketches_free(e);
    e = NULL;
  }
  free(bins);
  sl_dds_free(&d);
  return e;
}

static bool h_row_sketch(const sluice_row_t *r_, const char *name, sluice_sketch_t *out) {
  sluice_row_t *r = (sluice_row_t *)r_;
  sketch_entry_t *e = r->sketches;
  while (e && strcmp(e->name, name)) e = e->next;
  if (!e) {
    size_t len = 0;
    const char *bytes = find_sketch(r, name, &len);
    if (!bytes || !(e = decode_sketch(name, bytes, len))) return false;
    e->next = r->sketches;
    r->sketches = e;
  }
  if (!e->sk.count) return false;
  *out = e->sk;
  return true;
}

/* ---- ABI 1.2 ---- */

static const void *h_row_hll(const sluice_row_t *r, const char *name, size_t *len) {
  size_t n = 0;
  const char *bytes = find_sketch(r, name, &n);
  if (!bytes || n < 4 || memcmp(bytes, "HYLL", 4) != 0) return NULL;
  *len = n;
  return bytes;
}

/* The SDK's sets and labels are the registry's. */
_Static_assert(sizeof(sluice_label_t) == sizeof(sl_metric_label_t) &&
                   offsetof(sluice_label_t, value) == offsetof(sl_metric_label_t, value),
               "label layout");
#define MSET(set) ((sl_metrics_set_t *)(set))

static sluice_metric_set_t *h_set_new(sluice_ctx_t *ctx) {
  (void)ctx;
  return (sluice_metric_set_t *)sl_metrics_set_new();
}

static int h_set_family(sluice_metric_set_t *set, sluice_metric_type_t type, const char *name, const char *help) {
  static const sl_metric_type_t types[] = {SL_METRIC_COUNTER, SL_METRIC_GAUGE, SL_METRIC_HISTOGRAM};
  if (!set || (unsigned)type > SLUICE_METRIC_HISTOGRAM) return -EINVAL;
  return sl_metrics_set_family(MSET(set), types[type], name, help);
}

static int h_set_value(sluice_metric_set_t *set, int family, const sluice_label_t *labels, size_t n, double v) {
  if (!set) return -EINVAL;
  return sl_metrics_set_value(MSET(set), family, (const sl_metric_label_t *)labels, n, v);
}

static int h_set_histogram(sluice_metric_set_t *set, int family, const sluice_label_t *labels, size_t n,
                           const double *bounds, const uint64_t *cumulative, size_t n_bounds, double sum) {
  if (!set) return -EINVAL;
  return sl_metrics_set_histogram(MSET(set), family, (const sl_metric_label_t *)labels, n, bounds, cumulative,
                                  n_bounds, sum);
}

static int h_set_publish(sluice_ctx_t *ctx, sluice_metric_set_t *set) {
  sl_sink_t_ *s = SINK(ctx);
  if (!s->source && !(s->source = sl_metrics_source_new(s->env.metrics))) {
    sl_metrics_set_free(MSET(set));
    sl_log_rl(SL_LOG_ERROR, s->component, "cannot publish metrics: out of memory");
    return 0;
  }
  char clash[128] = "";
  int left_out = sl_metrics_source_publish(s->source, MSET(set), clash, sizeof clash);
  if (left_out && strcmp(clash, s->clash_logged)) {
    snprintf(s->clash_logged, sizeof s->clash_logged, "%s", clash);
    sl_log_write(SL_LOG_WARN, s->component,
                 "%d metric families left out of /metrics, %s first: the agent or another sink exposes that "
                 "name already",
                 left_out, clash);
  }
  return left_out;
}

static void h_set_free(sluice_metric_set_t *set) { sl_metrics_set_free(MSET(set)); }

static const sluice_host_t host_api = {
    .abi_major = SLUICE_SINK_ABI_MAJOR,
    .abi_minor = SLUICE_SINK_ABI_MINOR,
    .log = h_log,
    .counter = h_counter,
    .gauge = h_gauge,
    .metric_add = h_metric_add,
    .metric_set = h_metric_set,
    .timer_new = h_timer_new,
    .timer_start = h_timer_start,
    .timer_stop = h_timer_stop,
    .timer_free = h_timer_free,
    .row_id = h_row_id,
    .row_id_hex = h_row_id_hex,
    .row_job = h_row_job,
    .row_window_start = h_row_window_start,
    .row_window_end = h_row_window_end,
    .row_json = h_row_json,
    .row_msgpack = h_row_msgpack,
    .row_nfields = h_row_nfields,
    .row_field = h_row_field,
    .row_get = h_row_get,
    .row_done = h_row_done,
    .write_done = h_write_done,
    .destroyed = h_destroyed,
    .kafka_produce = h_kafka_produce,
    .row_kind = h_row_kind,
    .row_nkeys = h_row_nkeys,
    .row_sketch = h_row_sketch,
    .set_new = h_set_new,
    .set_family = h_set_family,
    .set_value = h_set_value,
    .set_histogram = h_set_histogram,
    .set_publish = h_set_publish,
    .set_free = h_set_free,
    .row_hll = h_row_hll,
};
