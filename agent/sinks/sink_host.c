/* The sink host: the registry of sink types, instances made from [[sink]]
 * tables, and the retry/metrics wrapper around every write.  Jobs loop
 * only (the registry: at start).
 *
 * Why errors are rewritten: the plugin's table is validated on its own (the
 * schema code sees it as a document's top level), so its messages name
 * "top level" and bare keys; they are re-prefixed with the table's path
 * ("sink[1].mode") to read like every other config error. */
#include "sinks/sink_host.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "sinks/sink_conf.h"

/* ---- registry -------------------------------------------------------------- */

static const sl_sink_type_t *const builtin_types[] = {&sl_file_sink_type};
#define N_BUILTIN (sizeof builtin_types / sizeof builtin_types[0])
#define MAX_EXTRA 16
static const sl_sink_type_t *extra_types[MAX_EXTRA];
static size_t n_extra;

const sl_sink_type_t *sl_sink_type_find(const char *name) {
  for (size_t i = 0; i < N_BUILTIN; i++)
    if (strcmp(builtin_types[i]->name, name) == 0) return builtin_types[i];
  for (size_t i = 0; i < n_extra; i++)
    if (strcmp(extra_types[i]->name, name) == 0) return extra_types[i];
  return NULL;
}

int sl_sink_type_register(const sl_sink_type_t *type) {
  if (sl_sink_type_find(type->name)) return -EEXIST;
  if (n_extra == MAX_EXTRA) return SL_ENOMEM;
  extra_types[n_extra++] = type;
  return 0;
}

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

/* ---- instances --------------------------------------------------------------- */

/* One accepted write, until it is reported.  The timer is initialised only
 * for a write that needs a retry; then the request is freed in its close
 * callback. */
typedef struct req {
  struct req *prev, *next;
  sl_sink_t *s;
  const sl_sink_batch_t *batch; /* borrowed from the caller until done */
  sl_sink_done_cb done;
  void *arg;
  unsigned attempts;
  int64_t backoff_ms; /* before the next retry */
  uv_timer_t retry_timer;
  bool timer_init, waiting;
} req_t;

struct sl_sink {
  const sl_sink_type_t *type;
  void *self; /* owned: the type's instance */
  char *name; /* owned */
  char component[96]; /* "sink:file:reports", for the log */
  uv_loop_t *loop;
  sl_sink_retry_t retry;
  sl_metric_t *rows, *batches, *retries, *failures, *in_flight_gauge;
  req_t *reqs; /* accepted, not reported */
  size_t n_reqs;
  size_t timers_closing;
  bool closing, inner_closed, closed;
  void (*on_closed)(void *arg);
  void *on_closed_arg;
};

static sl_metric_t *labelled(sl_metrics_t *m, sl_metric_type_t type, const char *name, const char *help,
                             const char *sink) {
  static const char *const labels[] = {"sink", NULL};
  sl_metric_family_t *f =
      sl_metrics_family(m, &(sl_metric_desc_t){.type = type, .name = name, .help = help, .labels = labels});
  return sl_metric_child(f, (const char *const[]){sink});
}

/* The validation table for a type: name and plugin, then the type's own
 * options, closed (an unknown key is an error).  Free the result. */
static sl_opt_t *combined_opts(const sl_sink_type_t *type) {
  size_t n = 0, k = 0;
  for (const sl_opt_t *o = sl_sink_section.opts; o->name; o++) n++;
  for (const sl_opt_t *o = type->options ? type->options->opts : NULL; o && o->name; o++) n++;
  sl_opt_t *all = calloc(n + 1, sizeof *all);
  if (!all) return NULL;
  for (const sl_opt_t *o = sl_sink_section.opts; o->name; o++) all[k++] = *o;
  for (const sl_opt_t *o = type->options ? type->options->opts : NULL; o && o->name; o++) all[k++] = *o;
  return all;
}

static void list_types(char *buf, size_t len) {
  size_t off = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < N_BUILTIN + n_extra && off < len; i++) {
    const sl_sink_type_t *t = i < N_BUILTIN ? builtin_types[i] : extra_types[i - N_BUILTIN];
    int w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", t->name);
    if (w < 0) break;
    off += (size_t)w;
  }
}

/* What a [[sink]] table binds to, before an instance is made of it. */
typedef struct {
  sl_sink_conf_t base;
  const sl_sink_type_t *type;
  sl_opt_t *opts;
  void *conf; /* the plugin's options struct, or NULL */
} prepared_t;

/* Validates `table` (the common keys, then the plugin's own options) and
 * binds it, errors into tmp.  0, SL_ECONFIG or SL_ENOMEM; release with
 * unprepare in every case. */
static int prepare(sl_toml_value_t *table, const char *file, sl_diag_t *tmp, prepared_t *p) {
  if (sl_schema_validate(&sl_sink_section, table, file, tmp) ||
      sl_schema_bind(&sl_sink_section, table, &p->base, file, tmp))
    return SL_ECONFIG;
  p->type = sl_sink_type_find(p->base.plugin);
  if (!p->type) {
    const sl_toml_value_t *v = sl_toml_get(table, "plugin");
    char known[256];
    list_types(known, sizeof known);
    sl_diag_add(tmp, file, v ? v->line : table->line, v ? v->col : table->col,
                "plugin: unknown sink plugin \"%s\" (known: %s)", p->base.plugin, known);
    return SL_ECONFIG;
  }
  if (!(p->opts = combined_opts(p->type))) return SL_ENOMEM;
  sl_section_t section = {
      .name = p->type->name,
      .opts = p->opts,
      .children = p->type->options ? p->type->options->children : NULL,
  };
  if (sl_schema_validate(&section, table, file, tmp)) return SL_ECONFIG;
  const sl_section_t *o = p->type->options;
  if (o && !(p->conf = calloc(1, o->size ? o->size : 1))) return SL_ENOMEM;
  if (o && sl_schema_bind(o, table, p->conf, file, tmp)) return SL_ECONFIG;
  return 0;
}

static void unprepare(prepared_t *p) {
  if (p->conf) {
    sl_schema_unbind(p->type->options, p->conf);
    if (p->type->options->release) p->type->options->release(p->conf);
    free(p->conf);
  }
  free(p->opts);
  sl_schema_unbind(&sl_sink_section, &p->base);
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

int sl_sink_new(sl_toml_value_t *table, const char *file, const char *path, uv_loop_t *loop,
                sl_metrics_t *metrics, const sl_sink_retry_t *retry, sl_sink_t **out, sl_diag_t *d) {
  sl_diag_t tmp = {0};
  prepared_t p = {0};
  sl_sink_t *s = NULL;
  *out = NULL;
  if (!path) path = "sink";
  int rc = prepare(table, file, &tmp, &p);
  if (rc) goto fail;

  /* Everything that can fail is done before the instance exists: an
   * instance cannot be freed but after its asynchronous close. */
  rc = SL_ENOMEM;
  if (!(s = calloc(1, sizeof *s)) || !(s->name = strdup(p.base.name))) goto fail;
  char err[512] = "";
  rc = p.type->create(p.conf, loop, metrics, p.base.name, &s->self, err, sizeof err);
  if (rc) {
    sl_diag_add(&tmp, file, table->line, table->col, "top level: %s", err[0] ? err : sl_strerror(rc));
    goto fail;
  }
  s->type = p.type;
  s->loop = loop;
  s->retry = retry ? *retry : SL_SINK_RETRY_DEFAULT;
  if (s->retry.initial_backoff_ms < 1) s->retry.initial_backoff_ms = 1;
  if (s->retry.max_backoff_ms < s->retry.initial_backoff_ms) s->retry.max_backoff_ms = s->retry.initial_backoff_ms;
  snprintf(s->component, sizeof s->component, "sink:%s:%s", p.type->name, s->name);
  s->rows = labelled(metrics, SL_METRIC_COUNTER, "sluice_sink_rows_total", "Rows written, by sink.", s->name);
  s->batches =
      labelled(metrics, SL_METRIC_COUNTER, "sluice_sink_batches_total", "Batches written, by sink.", s->name);
  s->retries = labelled(metrics, SL_METRIC_COUNTER, "sluice_sink_retries_total",
                        "Writes repeated after a retryable error, by sink.", s->name);
  s->failures = labelled(metrics, SL_METRIC_COUNTER, "sluice_sink_failures_total",
                         "Batches given up on (fatal error, or retries used up), by sink.", s->name);
  s->in_flight_gauge = labelled(metrics, SL_METRIC_GAUGE, "sluice_sink_in_flight",
                                "Batches accepted and not yet reported, by sink.", s->name);
  *out = s;
  s = NULL;
  rc = 0;

fail:
  if (s) free(s->name);
  free(s);
  unprepare(&p);
  if (tmp.n) move_diag(d, &tmp, file, path);
  sl_diag_free(&tmp);
  return rc;
}

const char *sl_sink_name(const sl_sink_t *s) { return s->name; }
const sl_sink_type_t *sl_sink_type(const sl_sink_t *s) { return s->type; }
size_t sl_sink_in_flight(const sl_sink_t *s) { return s->n_reqs; }

static void maybe_closed(sl_sink_t *s) {
  if (!s->closing || !s->inner_closed || s->timers_closing || s->n_reqs || s->closed) return;
  s->closed = true;
  if (s->on_closed) s->on_closed(s->on_closed_arg);
}

static void on_timer_closed(uv_handle_t *h) {
  req_t *q = h->data;
  sl_sink_t *s = q->s;
  free(q);
  s->timers_closing--;
  maybe_closed(s);
}

static void unlink_req(req_t *q) {
  sl_sink_t *s = q->s;
  if (q->prev)
    q->prev->next = q->next;
  else
    s->reqs = q->next;
  if (q->next) q->next->prev = q->prev;
  s->n_reqs--;
  sl_gauge_dec(s->in_flight_gauge);
}

/* Reports the write's outcome to its caller and lets the request go. */
static void report(req_t *q, int status, const char *message) {
  sl_sink_t *s = q->s;
  unlink_req(q);
  if (q->timer_init) s->timers_closing++;
  q->done(q->arg, status, message);
  if (q->timer_init)
    uv_close((uv_handle_t *)&q->retry_timer, on_timer_closed);
  else
    free(q);
  maybe_closed(s);
}

static void on_attempt_done(void *arg, int status, const char *message);

static void on_retry_timer(uv_timer_t *t) {
  req_t *q = t->data;
  sl_sink_t *s = q->s;
  q->waiting = false;
  q->attempts++;
  int r = s->type->write(s->self, q->batch, on_attempt_done, q);
  if (r == 0) return;
  char msg[256];
  snprintf(msg, sizeof msg, "cannot retry the write: %s", sl_strerror(r));
  if (r == SL_ECANCELED) {
    report(q, SL_SINK_CANCELED, msg);
    return;
  }
  sl_metric_inc(s->failures);
  report(q, SL_SINK_FATAL, msg);
}

static void on_attempt_done(void *arg, int status, const char *message) {
  req_t *q = arg;
  sl_sink_t *s = q->s;
  char msg[512];
  switch (status) {
  case SL_SINK_OK:
    sl_metric_add(s->rows, q->batch->n);
    sl_metric_inc(s->batches);
    report(q, SL_SINK_OK, NULL);
    return;
  case SL_SINK_CANCELED: report(q, SL_SINK_CANCELED, message); return;
  case SL_SINK_RETRY:
    if (s->closing) {
      snprintf(msg, sizeof msg, "not retried, the sink is closing: %s", message ? message : "retryable error");
      report(q, SL_SINK_CANCELED, msg);
      return;
    }
    if (s->retry.max_attempts && q->attempts >= s->retry.max_attempts) {
      snprintf(msg, sizeof msg, "gave up after %u attempts: %s", q->attempts,
               message ? message : "retryable error");
      sl_metric_inc(s->failures);
      report(q, SL_SINK_RETRY, msg);
      return;
    }
    if (!q->timer_init) {
      uv_timer_init(s->loop, &q->retry_timer);
      q->retry_timer.data = q;
      q->timer_init = true;
      q->backoff_ms = s->retry.initial_backoff_ms;
    }
    sl_log_rl(SL_LOG_WARN, s->component, "write of %zu rows failed (attempt %u), retrying in %lld ms: %s",
              q->batch->n, q->attempts, (long long)q->backoff_ms, message ? message : "retryable error");
    sl_metric_inc(s->retries);
    q->waiting = true;
    uv_timer_start(&q->retry_timer, on_retry_timer, (uint64_t)q->backoff_ms, 0);
    q->backoff_ms = q->backoff_ms > s->retry.max_backoff_ms / 2 ? s->retry.max_backoff_ms : q->backoff_ms * 2;
    return;
  default:
    sl_metric_inc(s->failures);
    report(q, SL_SINK_FATAL, message ? message : "fatal sink error");
    return;
  }
}

int sl_sink_write(sl_sink_t *s, const sl_sink_batch_t *batch, sl_sink_done_cb done, void *arg) {
  if (s->closing) return SL_ECANCELED;
  req_t *q = calloc(1, sizeof *q);
  if (!q) return SL_ENOMEM;
  *q = (req_t){.s = s, .batch = batch, .done = done, .arg = arg, .attempts = 1};
  int r = s->type->write(s->self, batch, on_attempt_done, q);
  if (r) {
    free(q);
    return r;
  }
  q->next = s->reqs;
  if (s->reqs) s->reqs->prev = q;
  s->reqs = q;
  s->n_reqs++;
  sl_gauge_inc(s->in_flight_gauge);
  return 0;
}

int sl_sink_flush(sl_sink_t *s, sl_sink_done_cb done, void *arg) {
  if (s->closing) return SL_ECANCELED;
  return s->type->flush(s->self, done, arg);
}

static void on_inner_closed(void *arg) {
  sl_sink_t *s = arg;
  s->inner_closed = true;
  maybe_closed(s);
}

void sl_sink_close(sl_sink_t *s, void (*on_closed)(void *arg), void *arg) {
  s->closing = true;
  s->on_closed = on_closed;
  s->on_closed_arg = arg;
  /* Waiting for a retry: the sink does not hold them, so they end here. */
  for (req_t *q = s->reqs, *next; q; q = next) {
    next = q->next;
    if (!q->waiting) continue;
    uv_timer_stop(&q->retry_timer);
    q->waiting = false;
    report(q, SL_SINK_CANCELED, "the sink closed before the write could be retried");
  }
  s->type->close(s->self, on_inner_closed, s);
}

void sl_sink_free(sl_sink_t *s) {
  if (!s) return;
  s->type->free(s->self);
  free(s->name);
  free(s);
}
