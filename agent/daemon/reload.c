/* The reload's comparison of two configs: a walk over both validated TOML
 * trees naming every path whose value differs, and the split between what
 * the running daemon applies and what waits for a restart.  Main thread. */
#include "daemon/reload.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"

#define MAX_PATH 512
/* A reload naming more changes than this says how many more there were. */
#define MAX_LINES 40

static bool scalar_equal(const sl_toml_value_t *a, const sl_toml_value_t *b) {
  switch (a->type) {
  case SL_TOML_STRING: return a->u.str.len == b->u.str.len && !memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len);
  case SL_TOML_INTEGER: return a->u.i == b->u.i;
  case SL_TOML_FLOAT: return a->u.f == b->u.f;
  case SL_TOML_BOOL: return a->u.b == b->u.b;
  default: return !memcmp(&a->u.dt, &b->u.dt, sizeof a->u.dt);
  }
}

static bool equal(const sl_toml_value_t *a, const sl_toml_value_t *b) {
  if (a->type != b->type) return false;
  if (a->type == SL_TOML_ARRAY) {
    if (a->u.arr.len != b->u.arr.len) return false;
    for (size_t i = 0; i < a->u.arr.len; i++)
      if (!equal(a->u.arr.items[i], b->u.arr.items[i])) return false;
    return true;
  }
  if (a->type == SL_TOML_TABLE) {
    if (a->u.tab.len != b->u.tab.len) return false;
    for (size_t i = 0; i < a->u.tab.len; i++) {
      const sl_toml_value_t *o = sl_toml_get(b, a->u.tab.items[i].key);
      if (!o || !equal(a->u.tab.items[i].value, o)) return false;
    }
    return true;
  }
  return scalar_equal(a, b);
}

static bool is_table_array(const sl_toml_value_t *v) {
  return v->type == SL_TOML_ARRAY && v->u.arr.len && v->u.arr.items[0]->type == SL_TOML_TABLE;
}

typedef struct {
  void (*on_change)(void *arg, const char *path);
  void *arg;
  char path[MAX_PATH];
} walk_t;

static void walk(walk_t *w, size_t plen, const sl_toml_value_t *a, const sl_toml_value_t *b);

/* Each key of `from` that `other` lacks or holds another value for; with
 * `missing_only`, only the keys `other` lacks. */
static void walk_keys(walk_t *w, size_t plen, const sl_toml_value_t *from, const sl_toml_value_t *other,
                      bool missing_only) {
  for (size_t i = 0; i < from->u.tab.len; i++) {
    const sl_toml_kv_t *kv = &from->u.tab.items[i];
    const sl_toml_value_t *o = sl_toml_get(other, kv->key);
    if (missing_only && o) continue;
    int n = snprintf(w->path + plen, MAX_PATH - plen, "%s%s", plen ? "." : "", kv->key);
    size_t end = n < 0 || (size_t)n >= MAX_PATH - plen ? MAX_PATH - 1 : plen + (size_t)n;
    if (!o)
      w->on_change(w->arg, w->path);
    else
      walk(w, end, kv->value, o);
    w->path[plen] = 0;
  }
}

static void walk(walk_t *w, size_t plen, const sl_toml_value_t *a, const sl_toml_value_t *b) {
  if (a->type != b->type) {
    w->on_change(w->arg, w->path);
    return;
  }
  if (a->type == SL_TOML_TABLE) {
    walk_keys(w, plen, a, b, false);
    walk_keys(w, plen, b, a, true);
    return;
  }
  if (a->type != SL_TOML_ARRAY) {
    if (!scalar_equal(a, b)) w->on_change(w->arg, w->path);
    return;
  }
  /* [[route]], [[job]], [[sink]]: entry by entry when the count is the
   * same, so that the change is named down to its key. */
  if (a->u.arr.len != b->u.arr.len || !is_table_array(a)) {
    if (!equal(a, b)) w->on_change(w->arg, w->path);
    return;
  }
  for (size_t i = 0; i < a->u.arr.len; i++) {
    int n = snprintf(w->path + plen, MAX_PATH - plen, "[%zu]", i);
    size_t end = n < 0 || (size_t)n >= MAX_PATH - plen ? MAX_PATH - 1 : plen + (size_t)n;
    walk(w, end, a->u.arr.items[i], b->u.arr.items[i]);
    w->path[plen] = 0;
  }
}

void sl_toml_diff(const sl_toml_value_t *a, const sl_toml_value_t *b,
                  void (*on_change)(void *arg, const char *path), void *arg) {
  walk_t w = {.on_change = on_change, .arg = arg};
  walk(&w, 0, a, b);
}

/* The top-level keys whose changes apply while running. */
static const char *const live_keys[] = {"log", "route", "shutdown_timeout"};

static bool is_live(const char *path) {
  size_t n = strcspn(path, ".[");
  for (size_t i = 0; i < sizeof live_keys / sizeof live_keys[0]; i++)
    if (strlen(live_keys[i]) == n && !strncmp(path, live_keys[i], n)) return true;
  return false;
}

typedef struct {
  sl_reload_plan_t *plan;
  bool live; /* this walk looks for the live settings (else: the others) */
  size_t lines;
} plan_walk_t;

static void on_change(void *arg, const char *path) {
  plan_walk_t *pw = arg;
  if (is_live(path) != pw->live) return;
  if (!pw->live) {
    pw->plan->restart++;
    if (pw->lines++ < MAX_LINES)
      sl_log(SL_LOG_WARN, "agent", "reload: %s changed: needs a restart to take effect (kept as it was)", path);
    return;
  }
  pw->plan->applied++;
  pw->plan->log |= !strncmp(path, "log", 3);
  pw->plan->routes |= !strncmp(path, "route", 5);
  pw->plan->shutdown_timeout |= !strcmp(path, "shutdown_timeout");
  if (pw->lines++ < MAX_LINES) sl_log(SL_LOG_INFO, "agent", "reload: %s changed: applied", path);
}

void sl_reload_plan(const sl_config_t *running, const sl_config_t *live, const sl_config_t *next,
                    sl_reload_plan_t *plan) {
  *plan = (sl_reload_plan_t){0};
  plan_walk_t pw = {.plan = plan, .live = true};
  sl_toml_diff(live->doc, next->doc, on_change, &pw);
  pw.live = false;
  sl_toml_diff(running->doc, next->doc, on_change, &pw);
  if (pw.lines > MAX_LINES)
    sl_log(SL_LOG_WARN, "agent", "reload: %zu more settings changed (not listed)", pw.lines - MAX_LINES);
}
