/* The jobs engine (engine.h): compiling a job, feeding records into the
 * partial aggregates of their (partition, window, group key), and closing
 * windows into rows.  Open tumbling and hopping windows are kept in an
 * array sorted by start (their ends are then sorted too, so closing pops
 * from the front), each with a hash table of its group keys; session jobs
 * keep one table of group keys, each with its session set.  Group keys are
 * stored as the msgpack array of their values, which is both the hash-table
 * key and what the row id hashes.  Pure; one thread per job. */
#include "jobs/engine.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/error.h"
#include "jobs/engine_internal.h"
#include "jobs/event_time.h"

#define MS 1000000

/* ---- compiling ------------------------------------------------------------ */

static int fail(sl_job_error_t *err, const char *option, const void *field, const sl_kv_t *entry, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));
static int fail(sl_job_error_t *err, const char *option, const void *field, const sl_kv_t *entry, const char *fmt,
                ...) {
  if (err) {
    err->option = option;
    err->field = field;
    err->entry = entry;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return SL_ECONFIG;
}

static bool reserved_name(const char *s) {
  return !strcmp(s, "id") || !strcmp(s, "job") || !strcmp(s, "window_start") || !strcmp(s, "window_end");
}

static const char *dup_name(const sl_job_t *j, const char *s, size_t upto_keys, size_t upto_aggs) {
  for (size_t i = 0; i < upto_keys; i++)
    if (!strcmp(j->key_names[i], s)) return "a group key";
  for (size_t i = 0; i < upto_aggs; i++)
    if (!strcmp(j->agg_names[i], s)) return "an aggregate";
  return reserved_name(s) ? "a field every row has" : NULL;
}

int sl_job_new(const sl_job_conf_t *c, sl_job_t **out, sl_job_error_t *err) {
  *out = NULL;
  if (err) memset(err, 0, sizeof *err);
  sl_job_t *j = calloc(1, sizeof *j);
  if (!j) return SL_ENOMEM;
  int r = SL_ENOMEM;
  const char *why = NULL;
  const void *field = NULL;
  if (sl_window_spec_from_conf(&c->window, &j->spec, &why, &field)) {
    r = fail(err, "window", field, NULL, "%s", why);
    goto fail;
  }
  if (c->late_policy == 2 && j->spec.type == SL_WINDOW_SESSION) {
    r = fail(err, "late_policy", &c->late_policy, NULL,
             "\"update\" re-emits closed tumbling and hopping windows; a session job cannot use it");
    goto fail;
  }
  j->update_ms = c->late_policy == 2 ? c->max_lateness_update_ns / MS : 0;
  if (!(j->name = strdup(c->name ? c->name : ""))) goto fail;
  j->processing = c->time == 1;
  j->time_format = c->time_format;
  j->max_keys = c->max_keys > 0 ? (uint64_t)c->max_keys : UINT64_MAX;
  sl_watermark_init(&j->wm, c->allowed_lateness_ns / MS, c->idle_timeout_ns / MS);
  j->proc_wm = SL_WATERMARK_NONE;
  j->sess_next_end = INT64_MAX;
  msgpack_unpacked_init(&j->unp);
  if (c->where) {
    sl_expr_error_t e;
    r = sl_expr_compile(c->where, &j->where, &e);
    if (r == SL_ESYNTAX) r = fail(err, "where", &c->where, NULL, "column %d: %s", e.col, e.msg);
    if (r) goto fail;
  }
  if (c->time_field && !j->processing) {
    int col = 0;
    r = sl_path_parse(c->time_field, &j->time_path, &col);
    if (r == SL_ESYNTAX) r = fail(err, "time_field", &c->time_field, NULL, "column %d: not a field path", col);
    if (r) goto fail;
    j->has_time_field = true;
  }
  r = SL_ENOMEM;
  size_t nk = c->group_by.n, na = c->aggregates.n;
  if (nk && (!(j->key_paths = calloc(nk, sizeof *j->key_paths)) || !(j->key_names = calloc(nk, sizeof(char *)))))
    goto fail;
  j->n_keys = nk;
  if (!na) {
    r = fail(err, "aggregates", &c->aggregates, NULL, "at least one aggregate is needed");
    goto fail;
  }
  if (!(j->aggs = calloc(na, sizeof *j->aggs)) || !(j->agg_paths = calloc(na, sizeof *j->agg_paths)) ||
      !(j->agg_names = calloc(na, sizeof(char *))) || !(j->agg_off = calloc(na, sizeof *j->agg_off)) ||
      !(j->results = calloc(na, sizeof *j->results)) || !(j->sketches = calloc(na, sizeof *j->sketches)) ||
      !(j->hlls = calloc(na, sizeof *j->hlls)))
    goto fail;
  j->n_aggs = na;
  for (size_t i = 0; i < nk; i++) {
    int col = 0;
    r = sl_path_parse(c->group_by.items[i], &j->key_paths[i], &col);
    if (r == SL_ESYNTAX)
      r = fail(err, "group_by", &c->group_by, NULL, "\"%s\": column %d: not a field path", c->group_by.items[i], col);
    if (r) goto fail;
    sl_buf_t b = {0};
    if (sl_path_format(&j->key_paths[i], &b) || sl_buf_putc(&b, '\0')) {
      sl_buf_free(&b);
      r = SL_ENOMEM;
      goto fail;
    }
    j->key_names[i] = b.data;
    const char *what = dup_name(j, b.data, i, 0);
    if (what) {
      r = fail(err, "group_by", &c->group_by, NULL, "\"%s\" is already %s", b.data, what);
      goto fail;
    }
  }
  size_t off = 0;
  for (size_t i = 0; i < na; i++) {
    const sl_kv_t *kv = &c->aggregates.items[i];
    sl_agg_error_t e;
    r = sl_agg_parse(kv->value, &j->aggs[i], &e);
    if (r == SL_ENOMEM) goto fail;
    if (r) {
      r = fail(err, "aggregates", &c->aggregates, kv, "\"%s\": column %d: %s", kv->value, e.column, e.msg);
      goto fail;
    }
    if (j->aggs[i].field[0]) {
      int col = 0;
      r = sl_path_parse(j->aggs[i].field, &j->agg_paths[i], &col);
      if (r == SL_ESYNTAX)
        r = fail(err, "aggregates", &c->aggregates, kv, "\"%s\": \"%s\" is not a field path (column %d)", kv->value,
                 j->aggs[i].field, col);
      if (r) goto fail;
    }
    if (!(j->agg_names[i] = strdup(kv->key))) goto fail;
    const char *what = dup_name(j, kv->key, j->n_keys, i);
    if (what) {
      r = fail(err, "aggregates", &c->aggregates, kv, "\"%s\" is already %s", kv->key, what);
      goto fail;
    }
    j->agg_off[i] = off;
    off += sl_agg_state_size(&j->aggs[i]);
  }
  j->partial_size = SL_PARTIAL_HDR + off;
  if (!(j->tmp = aligned_alloc(SL_AGG_STATE_ALIGN, (j->partial_size + SL_AGG_STATE_ALIGN - 1) &
                                                       ~(size_t)(SL_AGG_STATE_ALIGN - 1)))) {
    r = SL_ENOMEM;
    goto fail;
  }
  *out = j;
  return 0;
fail:
  sl_job_free(j);
  return r;
}

const char *sl_job_name(const sl_job_t *job) { return job->name; }

void sl_job_late_window(const sl_job_t *job, int64_t *start, int64_t *end) {
  *start = job->late_window.start;
  *end = job->late_window.end;
}

/* ---- partials and group tables -------------------------------------------- */

static sl_agg_state_t *state_of(const sl_job_t *j, const sl_partial_t *p, size_t i) {
  return (sl_agg_state_t *)((char *)p + SL_PARTIAL_HDR + j->agg_off[i]);
}

static void partial_free(const sl_job_t *j, sl_partial_t *p) {
  for (size_t i = 0; i < j->n_aggs; i++) sl_agg_free(&j->aggs[i], state_of(j, p, i));
  free(p);
}

static void partials_free(const sl_job_t *j, sl_partial_t *p) {
  while (p) {
    sl_partial_t *next = p->next;
    partial_free(j, p);
    p = next;
  }
}

/* The partition's partial in the list at *head (kept sorted by partition),
 * created if absent; NULL when out of memory. */
static sl_partial_t *partial_get(const sl_job_t *j, sl_partial_t **head, int partition) {
  sl_partial_t **pp = head;
  while (*pp && (*pp)->partition < partition) pp = &(*pp)->next;
  if (*pp && (*pp)->partition == partition) return *pp;
  sl_partial_t *p = aligned_alloc(SL_AGG_STATE_ALIGN, (j->partial_size + 7) & ~(size_t)7);
  if (!p) return NULL;
  p->partition = partition;
  p->first_offset = -1;
  for (size_t i = 0; i < j->n_aggs; i++) sl_agg_init(&j->aggs[i], state_of(j, p, i));
  p->next = *pp;
  *pp = p;
  return p;
}

/* Moves the partials of src into *dst, merging those of the same
 * partition (src's as arriving later). */
static int partials_merge(const sl_job_t *j, sl_partial_t **dst, sl_partial_t *src) {
  int r = 0;
  while (src) {
    sl_partial_t *s = src;
    src = src->next;
    sl_partial_t **pp = dst;
    while (*pp && (*pp)->partition < s->partition) pp = &(*pp)->next;
    if (*pp && (*pp)->partition == s->partition) {
      if (s->first_offset >= 0 && ((*pp)->first_offset < 0 || s->first_offset < (*pp)->first_offset))
        (*pp)->first_offset = s->first_offset;
      for (size_t i = 0; i < j->n_aggs && !r; i++) r = sl_agg_merge(&j->aggs[i], state_of(j, *pp, i), state_of(j, s, i));
      partial_free(j, s);
    } else {
      s->next = *pp;
      *pp = s;
    }
  }
  return r;
}

static void partials_drop(const sl_job_t *j, sl_partial_t **head, int partition) {
  for (sl_partial_t **pp = head; *pp; pp = &(*pp)->next)
    if ((*pp)->partition == partition) {
      sl_partial_t *p = *pp;
      *pp = p->next;
      partial_free(j, p);
      return;
    }
}

/* ---- offsets kept back ------------------------------------------------------ */

static int offsets_note(sl_offsets_t *o, int partition, int64_t off) {
  if (off < 0) return 0;
  if ((size_t)partition >= o->n) {
    size_t n = o->n ? o->n : 8;
    while (n <= (size_t)partition) n *= 2;
    int64_t *a = realloc(o->off, n * sizeof *a);
    if (!a) return SL_ENOMEM;
    for (size_t i = o->n; i < n; i++) a[i] = -1;
    o->off = a;
    o->n = n;
  }
  if (o->off[partition] < 0 || off < o->off[partition]) o->off[partition] = off;
  return 0;
}

static int offsets_merge(sl_offsets_t *dst, const sl_offsets_t *src) {
  for (size_t i = 0; i < src->n; i++)
    if (offsets_note(dst, (int)i, src->off[i])) return SL_ENOMEM;
  return 0;
}

static void offsets_clear(sl_offsets_t *o, int partition) {
  if ((size_t)partition < o->n) o->off[partition] = -1;
}

/* Lowers out[0..n) (-1: none) to the offsets of o. */
static void offsets_lower(const sl_offsets_t *o, int64_t *out, size_t n) {
  for (size_t i = 0; i < o->n && i < n; i++)
    if (o->off[i] >= 0 && (out[i] < 0 || o->off[i] < out[i])) out[i] = o->off[i];
}

static void table_free(const sl_job_t *j, sl_gtable_t *t) {
  for (sl_group_t *g = t->head, *next; g; g = next) {
    next = g->next;
    partials_free(j, g->partials);
    for (size_t i = 0; i < g->sessions.n; i++) partials_free(j, g->sessions.items[i].agg);
    sl_session_close(&g->sessions);
    free(g);
  }
  free(t->buckets);
  memset(t, 0, sizeof *t);
}

static int table_grow(sl_gtable_t *t) {
  size_t nb = t->nb ? t->nb * 2 : 16;
  sl_group_t **b = calloc(nb, sizeof *b);
  if (!b) return SL_ENOMEM;
  for (sl_group_t *g = t->head; g; g = g->next) {
    g->hnext = b[g->hash & (nb - 1)];
    b[g->hash & (nb - 1)] = g;
  }
  free(t->buckets);
  t->buckets = b;
  t->nb = nb;
  return 0;
}

/* The group of key[0..len) in t, or NULL; *created says whether it is new.
 * Refuses (NULL, *dropped) a new key beyond max_keys. */
static sl_group_t *table_get(sl_job_t *j, sl_gtable_t *t, const char *key, size_t len, bool *dropped) {
  uint64_t h = XXH3_64bits(key, len);
  *dropped = false;
  if (t->nb)
    for (sl_group_t *g = t->buckets[h & (t->nb - 1)]; g; g = g->hnext)
      if (g->hash == h && g->key_len == len && !memcmp(g->key, key, len)) return g;
  if (t->n >= j->max_keys) {
    *dropped = true;
    return NULL;
  }
  if (t->n >= t->nb && table_grow(t)) return NULL;
  sl_group_t *g = calloc(1, sizeof *g + len);
  if (!g) return NULL;
  g->hash = h;
  g->key_len = (uint32_t)len;
  if (len) memcpy(g->key, key, len);
  sl_session_init(&g->sessions);
  g->hnext = t->buckets[h & (t->nb - 1)];
  t->buckets[h & (t->nb - 1)] = g;
  if (t->tail)
    t->tail->next = g;
  else
    t->head = g;
  t->tail = g;
  t->n++;
  return g;
}

/* Rebuilds t without the groups for which keep() is false (freed). */
static void table_filter(sl_job_t *j, sl_gtable_t *t, bool (*keep)(const sl_group_t *)) {
  sl_group_t *g = t->head;
  t->head = t->tail = NULL;
  t->n = 0;
  if (t->nb) memset(t->buckets, 0, t->nb * sizeof *t->buckets);
  while (g) {
    sl_group_t *next = g->next;
    g->next = NULL;
    if (keep(g)) {
      g->hnext = t->buckets[g->hash & (t->nb - 1)];
      t->buckets[g->hash & (t->nb - 1)] = g;
      if (t->tail)
        t->tail->next = g;
      else
        t->head = g;
      t->tail = g;
      t->n++;
    } else {
      partials_free(j, g->partials);
      for (size_t i = 0; i < g->sessions.n; i++) partials_free(j, g->sessions.items[i].agg);
      sl_session_close(&g->sessions);
      free(g);
    }
    g = next;
  }
}

static void window_free(const sl_job_t *j, sl_win_t *w) {
  if (!w) return;
  table_free(j, &w->groups);
  free(w->offsets.off);
  free(w);
}

void sl_job_free(sl_job_t *j) {
  if (!j) return;
  for (size_t i = 0; i < j->n_wins; i++) window_free(j, j->wins[i]);
  free(j->wins);
  for (size_t i = 0; i < j->n_kept; i++) window_free(j, j->kept[i]);
  free(j->kept);
  free(j->tmp);
  table_free(j, &j->sess_keys);
  for (size_t i = 0; i < j->n_emissions; i++) free(j->emissions[i].offsets.off);
  free(j->emissions);
  sl_watermark_close(&j->wm);
  sl_expr_free(j->where);
  sl_path_free(&j->time_path);
  for (size_t i = 0; i < j->n_keys; i++) {
    sl_path_free(&j->key_paths[i]);
    free(j->key_names[i]);
  }
  for (size_t i = 0; i < j->n_aggs; i++) {
    sl_path_free(&j->agg_paths[i]);
    free(j->agg_names[i]);
  }
  free(j->key_paths);
  free(j->key_names);
  free(j->aggs);
  free(j->agg_paths);
  free(j->agg_names);
  free(j->agg_off);
  free(j->results);
  free(j->sketches);
  free(j->hlls);
  sl_buf_free(&j->keybuf);
  sl_buf_free(&j->scratch);
  msgpack_unpacked_destroy(&j->unp);
  free(j->name);
  free(j);
}

/* ---- partitions ------------------------------------------------------------ */

int sl_job_assign(sl_job_t *j, int partition, int64_t initial_wm, int64_t now_ms) {
  return sl_watermark_assign(&j->wm, partition, initial_wm, now_ms);
}

void sl_job_touch(sl_job_t *j, int64_t now_ms) { sl_watermark_touch(&j->wm, now_ms); }
int64_t sl_job_drift(const sl_job_t *j, int partition, int64_t now_ms) {
  return j->processing ? 0 : sl_watermark_drift(&j->wm, partition, now_ms);
}
size_t sl_job_idle_partitions(const sl_job_t *j, int64_t now_ms) {
  return j->processing ? 0 : sl_watermark_idle_count(&j->wm, now_ms);
}
void sl_job_touch_partition(sl_job_t *j, int partition, int64_t now_ms) {
  sl_watermark_touch_one(&j->wm, partition, now_ms);
}

static bool group_has_partials(const sl_group_t *g) { return g->partials != NULL; }
static bool group_has_sessions(const sl_group_t *g) { return g->sessions.n > 0; }

static void revoke_windows(sl_job_t *j, sl_win_t **wins, size_t n, int partition) {
  for (size_t i = 0; i < n; i++) {
    sl_gtable_t *t = &wins[i]->groups;
    for (sl_group_t *g = t->head; g; g = g->next) partials_drop(j, &g->partials, partition);
    offsets_clear(&wins[i]->offsets, partition);
    j->n_cells -= t->n;
    table_filter(j, t, group_has_partials);
    j->n_cells += t->n;
  }
}

void sl_job_revoke(sl_job_t *j, int partition) {
  sl_watermark_revoke(&j->wm, partition);
  revoke_windows(j, j->wins, j->n_wins, partition);
  revoke_windows(j, j->kept, j->n_kept, partition);
  for (sl_group_t *g = j->sess_keys.head; g; g = g->next)
    for (size_t i = 0; i < g->sessions.n; i++) {
      sl_partial_t *head = g->sessions.items[i].agg;
      partials_drop(j, &head, partition);
      g->sessions.items[i].agg = head;
    }
  for (size_t i = 0; i < j->n_emissions; i++) offsets_clear(&j->emissions[i].offsets, partition);
}

/* ---- feeding ---------------------------------------------------------------- */

/* Packs the group key of `record` into j->keybuf. */
static int build_key(sl_job_t *j, const msgpack_object *record) {
  sl_buf_reset(&j->keybuf);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &j->keybuf, sl_buf_msgpack_write);
  if (msgpack_pack_array(&pk, j->n_keys)) return SL_ENOMEM;
  for (size_t i = 0; i < j->n_keys; i++) {
    const msgpack_object *v = sl_path_lookup(&j->key_paths[i], record);
    if (v ? msgpack_pack_object(&pk, *v) : msgpack_pack_nil(&pk)) return SL_ENOMEM;
  }
  return 0;
}

static int update_partial(sl_job_t *j, sl_partial_t *p, const msgpack_object *record, int64_t t) {
  for (size_t i = 0; i < j->n_aggs; i++) {
    const msgpack_object *v = j->agg_paths[i].n ? sl_path_lookup(&j->agg_paths[i], record) : NULL;
    int r = sl_agg_update(&j->aggs[i], state_of(j, p, i), v, t);
    if (r) return r;
  }
  return 0;
}

/* The open window starting at w->start, created (in start order) if
 * absent; NULL when out of memory. */
/* The index of the first of wins[0..n) (in order of start) that starts at
 * or after `start`. */
static size_t win_lower(sl_win_t *const *wins, size_t n, int64_t start) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (wins[mid]->w.start < start)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static sl_win_t *window_get(sl_job_t *j, const sl_window_t *w) {
  size_t lo = win_lower(j->wins, j->n_wins, w->start);
  if (lo < j->n_wins && j->wins[lo]->w.start == w->start) return j->wins[lo];
  if (j->n_wins == j->cap_wins) {
    size_t cap = j->cap_wins ? j->cap_wins * 2 : 8;
    sl_win_t **a = realloc(j->wins, cap * sizeof *a);
    if (!a) return NULL;
    j->wins = a;
    j->cap_wins = cap;
  }
  sl_win_t *nw = calloc(1, sizeof *nw);
  if (!nw) return NULL;
  nw->w = *w;
  memmove(j->wins + lo + 1, j->wins + lo, (j->n_wins - lo) * sizeof *j->wins);
  j->wins[lo] = nw;
  j->n_wins++;
  return nw;
}

static void note_offset(sl_partial_t *p, int64_t offset) {
  if (offset >= 0 && (p->first_offset < 0 || offset < p->first_offset)) p->first_offset = offset;
}

/* The kept (closed) window starting at `start`, or NULL. */
static sl_win_t *kept_find(const sl_job_t *j, int64_t start) {
  size_t lo = win_lower(j->kept, j->n_kept, start);
  return lo < j->n_kept && j->kept[lo]->w.start == start ? j->kept[lo] : NULL;
}

/* Updates the record's cell (its group key in j->keybuf) of window w.
 * Returns the cell's group, NULL when max_keys refused a new key (*r = 0)
 * or out of memory (*r = SL_ENOMEM, or update_partial's error). */
static sl_group_t *feed_cell(sl_job_t *j, sl_win_t *w, int partition, int64_t offset, const msgpack_object *record,
                             int64_t t, int *r) {
  bool dropped;
  size_t before = w->groups.n;
  sl_group_t *g = table_get(j, &w->groups, j->keybuf.data, j->keybuf.len, &dropped);
  *r = 0;
  if (dropped) {
    j->stats.keys_dropped++;
    return NULL;
  }
  *r = SL_ENOMEM;
  if (!g) return NULL;
  j->n_cells += w->groups.n - before;
  sl_partial_t *p = partial_get(j, &g->partials, partition);
  if (!p || offsets_note(&w->offsets, partition, offset)) return NULL;
  note_offset(p, offset);
  *r = update_partial(j, p, record, t);
  return *r ? NULL : g;
}

/* Feeds the record to each of its windows that is open (ending after the
 * partition's floor) or, with late_policy = "update", kept; *updated counts
 * the kept windows it updated. */
static int feed_windows(sl_job_t *j, int partition, int64_t offset, const msgpack_object *record, int64_t t,
                        int64_t floor, size_t *updated) {
  sl_window_t ws[SL_WINDOW_MAX_OVERLAP];
  size_t n = sl_window_assign(&j->spec, t, ws, SL_WINDOW_MAX_OVERLAP);
  if (n > SL_WINDOW_MAX_OVERLAP) n = SL_WINDOW_MAX_OVERLAP;
  for (size_t i = 0; i < n; i++) {
    bool closed = ws[i].end <= floor; /* emitted already: a window this record is late for */
    sl_win_t *w = closed ? kept_find(j, ws[i].start) : window_get(j, &ws[i]);
    if (!w && closed) continue;
    if (!w) return SL_ENOMEM;
    int r;
    sl_group_t *g = feed_cell(j, w, partition, offset, record, t, &r);
    if (r) return r;
    if (g && closed) {
      g->dirty = w->dirty = true;
      (*updated)++;
    }
  }
  return 0;
}

static int feed_session(sl_job_t *j, int partition, int64_t offset, const msgpack_object *record, int64_t t) {
  bool dropped;
  sl_group_t *g = table_get(j, &j->sess_keys, j->keybuf.data, j->keybuf.len, &dropped);
  if (dropped) {
    j->stats.keys_dropped++;
    return 0;
  }
  if (!g) return SL_ENOMEM;
  sl_session_add_t res;
  int r = sl_session_add(&g->sessions, j->spec.gap_ms, t, &res);
  if (r) return r;
  sl_session_t *s = &g->sessions.items[res.index];
  if (res.what == SL_SESSION_CREATED) j->n_cells++;
  if (res.what == SL_SESSION_MERGED) {
    j->n_cells--;
    sl_partial_t *head = s->agg;
    r = partials_merge(j, &head, res.absorbed.agg);
    s->agg = head;
    if (r) return r;
  }
  if (s->w.end < j->sess_next_end) j->sess_next_end = s->w.end;
  sl_partial_t *head = s->agg;
  sl_partial_t *p = partial_get(j, &head, partition);
  s->agg = head;
  if (!p) return SL_ENOMEM;
  note_offset(p, offset);
  return update_partial(j, p, record, t);
}

int sl_job_feed(sl_job_t *j, int partition, int64_t offset, const msgpack_object *record, int64_t event_ms,
                int64_t now_ms) {
  if (partition < 0 || partition >= SL_WATERMARK_MAX_PARTITIONS) return SL_ERANGE;
  j->stats.records_in++;
  int64_t t = event_ms;
  int64_t floor;
  if (j->processing) {
    t = now_ms;
    floor = j->proc_wm;
  } else {
    if (j->has_time_field &&
        sl_time_from_value(sl_path_lookup(&j->time_path, record), (sl_time_format_t)j->time_format, &t)) {
      j->stats.bad_time++;
      return 0;
    }
    if ((size_t)partition >= j->wm.n_parts || !j->wm.parts[partition].assigned) {
      int r = sl_watermark_assign(&j->wm, partition, SL_WATERMARK_NONE, now_ms);
      if (r) return r;
    }
    /* Every record moves its partition's watermark, filtered or late: the
     * watermark describes the stream, not what the job keeps of it. */
    sl_watermark_observe(&j->wm, partition, t, now_ms);
    floor = sl_watermark_floor(&j->wm, partition);
  }
  if (j->where && !sl_expr_match(j->where, record)) {
    j->stats.filtered++;
    return 0;
  }
  int64_t last_end = sl_window_last_end(&j->spec, t);
  bool late = last_end <= floor;
  if (late) {
    j->late_window = (sl_window_t){.start = j->spec.type == SL_WINDOW_SESSION ? t : last_end - j->spec.size_ms,
                                   .end = last_end};
    if (!j->n_kept) {
      j->stats.late++;
      return SL_JOB_LATE;
    }
  }
  int r = build_key(j, record);
  if (r) return r;
  if (j->spec.type == SL_WINDOW_SESSION) return feed_session(j, partition, offset, record, t);
  size_t updated = 0;
  r = feed_windows(j, partition, offset, record, t, floor, &updated);
  if (r) return r;
  if (updated) {
    j->stats.late_updates++;
  } else if (late) {
    j->stats.late++;
    return SL_JOB_LATE;
  }
  return 0;
}

/* ---- closing ---------------------------------------------------------------- */

/* Calls on_row with the row of group g in window w, from its merged
 * partial m. */
static void row_out(sl_job_t *j, const sl_window_t *w, const sl_group_t *g, const sl_partial_t *m, bool early,
                    sl_job_row_cb on_row, void *arg) {
  size_t off = 0;
  uint8_t le[8];
  for (int i = 0; i < 8; i++) le[i] = (uint8_t)((uint64_t)w->start >> (8 * i));
  sl_buf_reset(&j->scratch);
  if (msgpack_unpack_next(&j->unp, g->key, g->key_len, &off) != MSGPACK_UNPACK_SUCCESS ||
      sl_buf_append(&j->scratch, j->name, strlen(j->name) + 1) || sl_buf_append(&j->scratch, le, 8) ||
      sl_buf_append(&j->scratch, g->key, g->key_len)) {
    j->stats.rows_failed++;
    return;
  }
  for (size_t i = 0; i < j->n_aggs; i++) {
    sl_agg_result(&j->aggs[i], state_of(j, m, i), &j->results[i]);
    j->sketches[i] = sl_agg_sketch(&j->aggs[i], state_of(j, m, i));
    j->hlls[i] = sl_agg_redis_hll(&j->aggs[i], state_of(j, m, i));
  }
  sl_job_row_t row = {
      .job = j->name,
      .id = XXH3_64bits(j->scratch.data, j->scratch.len),
      .window_start = w->start,
      .window_end = w->end,
      .n_keys = j->n_keys,
      .key_names = (const char *const *)j->key_names,
      .key_values = j->unp.data.via.array.ptr,
      .n_aggs = j->n_aggs,
      .agg_names = (const char *const *)j->agg_names,
      .agg_values = j->results,
      .agg_sketches = j->sketches,
      .agg_hlls = j->hlls,
      .early = early,
  };
  on_row(&row, arg);
}

/* The emission the running advance records its windows in, begun on its
 * first window; NULL when out of memory (the job's checkpoints then stop:
 * j->ckpt_broken). */
static sl_emission_t *emission(sl_job_t *j, const sl_window_t *w, int64_t guard) {
  if (j->ckpt_broken) return NULL;
  if (!j->in_emission) {
    if (j->n_emissions == j->cap_emissions) {
      size_t cap = j->cap_emissions ? j->cap_emissions * 2 : 8;
      sl_emission_t *a = realloc(j->emissions, cap * sizeof *a);
      if (!a) {
        j->ckpt_broken = true;
        return NULL;
      }
      j->emissions = a;
      j->cap_emissions = cap;
    }
    j->emissions[j->n_emissions++] = (sl_emission_t){
        .seq = ++j->next_seq, .min_end = INT64_MAX, .max_end = INT64_MIN, .guard = INT64_MAX};
    j->in_emission = true;
  }
  sl_emission_t *e = &j->emissions[j->n_emissions - 1];
  if (w->end < e->min_end) e->min_end = w->end;
  if (w->end > e->max_end) e->max_end = w->end;
  if (guard < e->guard) e->guard = guard;
  return e;
}

/* Merges a cell's partials, emits its row and frees the partials. */
static void emit(sl_job_t *j, const sl_window_t *w, const sl_group_t *g, sl_partial_t *partials,
                 sl_job_row_cb on_row, void *arg) {
  if (!partials) return;
  int r = 0;
  sl_partial_t *dst = partials;
  for (sl_partial_t *p = dst->next; p && !r; p = p->next)
    for (size_t i = 0; i < j->n_aggs && !r; i++) r = sl_agg_merge(&j->aggs[i], state_of(j, dst, i), state_of(j, p, i));
  if (r)
    j->stats.rows_failed++;
  else {
    j->stats.rows_emitted++;
    row_out(j, w, g, dst, false, on_row, arg);
  }
  partials_free(j, partials);
}

/* The row of a cell merged into j->tmp, its partials left as they are (an
 * early row, or a kept window's); counted in *count. */
static void merged_row(sl_job_t *j, const sl_window_t *w, const sl_group_t *g, const sl_partial_t *partials,
                       bool early, uint64_t *count, sl_job_row_cb on_row, void *arg) {
  if (!partials) return;
  int r = 0;
  for (size_t i = 0; i < j->n_aggs; i++) sl_agg_init(&j->aggs[i], state_of(j, j->tmp, i));
  for (const sl_partial_t *p = partials; p && !r; p = p->next)
    for (size_t i = 0; i < j->n_aggs && !r; i++)
      r = sl_agg_merge(&j->aggs[i], state_of(j, j->tmp, i), state_of(j, p, i));
  if (r)
    j->stats.rows_failed++;
  else {
    (*count)++;
    row_out(j, w, g, j->tmp, early, on_row, arg);
  }
  for (size_t i = 0; i < j->n_aggs; i++) sl_agg_free(&j->aggs[i], state_of(j, j->tmp, i));
}

/* ---- kept windows (late_policy = "update") ------------------------------------ */

/* Whether the watermark has passed the window's end + max_lateness_update. */
static bool update_expired(const sl_job_t *j, const sl_win_t *w, int64_t wm) {
  int64_t until;
  if (__builtin_add_overflow(w->w.end, j->update_ms, &until)) until = INT64_MAX;
  return until <= wm;
}

/* A closed window joins the kept ones (windows close in order of start);
 * false when out of memory: it is then closed for good. */
static bool kept_push(sl_job_t *j, sl_win_t *w) {
  if (j->n_kept == j->cap_kept) {
    size_t cap = j->cap_kept ? j->cap_kept * 2 : 8;
    sl_win_t **a = realloc(j->kept, cap * sizeof *a);
    if (!a) return false;
    j->kept = a;
    j->cap_kept = cap;
  }
  j->kept[j->n_kept++] = w;
  return true;
}

/* Emits again the rows late records changed, in the running emission. */
static void emit_updates(sl_job_t *j, sl_job_row_cb on_row, void *arg) {
  for (size_t k = 0; k < j->n_kept; k++) {
    sl_win_t *w = j->kept[k];
    if (!w->dirty) continue;
    sl_emission_t *e = emission(j, &w->w, INT64_MAX);
    if (e && offsets_merge(&e->offsets, &w->offsets)) j->ckpt_broken = true;
    for (sl_group_t *g = w->groups.head; g; g = g->next) {
      if (g->dirty) merged_row(j, &w->w, g, g->partials, false, &j->stats.rows_emitted, on_row, arg);
      g->dirty = false;
    }
    w->dirty = false;
  }
}

/* Frees the kept windows no late record may update any more. */
static void purge_kept(sl_job_t *j, int64_t wm) {
  size_t done = 0;
  while (done < j->n_kept && update_expired(j, j->kept[done], wm)) {
    j->n_cells -= j->kept[done]->groups.n;
    window_free(j, j->kept[done++]);
  }
  memmove(j->kept, j->kept + done, (j->n_kept - done) * sizeof *j->kept);
  j->n_kept -= done;
}

static void close_windows(sl_job_t *j, int64_t wm, sl_job_row_cb on_row, void *arg) {
  if (j->n_kept) {
    emit_updates(j, on_row, arg);
    purge_kept(j, wm);
  }
  size_t done = 0;
  while (done < j->n_wins && j->wins[done]->w.end <= wm) {
    sl_win_t *w = j->wins[done++];
    sl_emission_t *e = emission(j, &w->w, INT64_MAX);
    if (e && offsets_merge(&e->offsets, &w->offsets)) j->ckpt_broken = true;
    if (j->update_ms && !update_expired(j, w, wm) && kept_push(j, w)) {
      for (const sl_group_t *g = w->groups.head; g; g = g->next)
        merged_row(j, &w->w, g, g->partials, false, &j->stats.rows_emitted, on_row, arg);
      continue;
    }
    for (sl_group_t *g = w->groups.head; g; g = g->next) {
      emit(j, &w->w, g, g->partials, on_row, arg);
      g->partials = NULL;
    }
    j->n_cells -= w->groups.n;
    window_free(j, w);
  }
  if (!done) return;
  memmove(j->wins, j->wins + done, (j->n_wins - done) * sizeof *j->wins);
  j->n_wins -= done;
}

static void close_sessions(sl_job_t *j, int64_t wm, sl_job_row_cb on_row, void *arg) {
  if (wm < j->sess_next_end) return;
  int64_t next = INT64_MAX;
  for (sl_group_t *g = j->sess_keys.head; g; g = g->next) {
    sl_session_t s;
    while (sl_session_pop_closed(&g->sessions, wm, &s)) {
      j->n_cells--;
      sl_emission_t *e = emission(j, &s.w, s.w.start + j->spec.gap_ms);
      for (const sl_partial_t *p = s.agg; p && e; p = p->next)
        if (offsets_note(&e->offsets, p->partition, p->first_offset)) j->ckpt_broken = true;
      emit(j, &s.w, g, s.agg, on_row, arg);
    }
    int64_t e = sl_session_next_end(&g->sessions);
    if (e < next) next = e;
  }
  j->sess_next_end = next;
  table_filter(j, &j->sess_keys, group_has_sessions);
}

static uint64_t close_upto(sl_job_t *j, int64_t wm, sl_job_row_cb on_row, void *arg) {
  j->in_emission = false;
  if (j->spec.type == SL_WINDOW_SESSION)
    close_sessions(j, wm, on_row, arg);
  else
    close_windows(j, wm, on_row, arg);
  uint64_t seq = j->in_emission ? j->emissions[j->n_emissions - 1].seq : 0;
  j->in_emission = false;
  return seq;
}

uint64_t sl_job_advance(sl_job_t *j, int64_t now_ms, sl_job_row_cb on_row, void *arg) {
  int64_t wm;
  if (j->processing) {
    wm = now_ms - j->wm.lateness_ms;
    if (wm > j->proc_wm) j->proc_wm = wm;
    wm = j->proc_wm;
  } else {
    wm = sl_watermark_get(&j->wm, now_ms);
  }
  if (wm == SL_WATERMARK_NONE) return 0;
  return close_upto(j, wm, on_row, arg);
}

uint64_t sl_job_finish(sl_job_t *j, sl_job_row_cb on_row, void *arg) { return close_upto(j, INT64_MAX, on_row, arg); }

/* ---- early rows --------------------------------------------------------------- */

int sl_job_peek(sl_job_t *j, sl_job_row_cb on_row, void *arg) {
  for (size_t w = 0; w < j->n_wins; w++)
    for (const sl_group_t *g = j->wins[w]->groups.head; g; g = g->next)
      merged_row(j, &j->wins[w]->w, g, g->partials, true, &j->stats.early_rows, on_row, arg);
  for (const sl_group_t *g = j->sess_keys.head; g; g = g->next)
    for (size_t i = 0; i < g->sessions.n; i++)
      merged_row(j, &g->sessions.items[i].w, g, g->sessions.items[i].agg, true, &j->stats.early_rows, on_row, arg);
  return 0;
}

/* ---- checkpoints -------------------------------------------------------------- */

void sl_job_confirm(sl_job_t *j, uint64_t seq) {
  for (size_t i = 0; i < j->n_emissions; i++)
    if (j->emissions[i].seq == seq) j->emissions[i].confirmed = true;
}

/* The job's checkpoint watermark W: the highest event time, at most the
 * job's watermark, such that a restart that skips the records of every
 * window ending at or before W and rebuilds the others from their records
 * emits nothing partial and loses nothing:
 *  - every emission not yet confirmed ends after W (it must be redone);
 *  - a session that may be rebuilt (open, or emitted but ending after W)
 *    has no record that W would mark late: its start + gap is above W.
 * One W for all partitions, so that a window or session with records of
 * several partitions is either skipped for all of them or rebuilt from all
 * of them. */
static int64_t checkpoint_wm(const sl_job_t *j) {
  int64_t w = j->wm.current;
  if (w == SL_WATERMARK_NONE) return w;
  /* Kept windows may still change: a restart must rebuild them. */
  if (j->n_kept && j->kept[0]->w.end <= w) w = j->kept[0]->w.end - 1;
  for (size_t i = 0; i < j->n_emissions; i++)
    if (!j->emissions[i].confirmed && j->emissions[i].min_end <= w) w = j->emissions[i].min_end - 1;
  for (const sl_group_t *g = j->sess_keys.head; g; g = g->next)
    for (size_t i = 0; i < g->sessions.n; i++) {
      int64_t guard = g->sessions.items[i].w.start + j->spec.gap_ms;
      if (guard <= w) w = guard - 1;
    }
  bool changed = true;
  while (changed) {
    changed = false;
    for (size_t i = 0; i < j->n_emissions; i++) {
      const sl_emission_t *e = &j->emissions[i];
      if (e->max_end > w && e->guard <= w) {
        w = e->guard - 1;
        changed = true;
      }
    }
  }
  return w;
}

int sl_job_checkpoint(sl_job_t *j, int64_t *wms, int64_t *offsets, size_t n) {
  for (size_t i = 0; i < n; i++) {
    offsets[i] = -1;
    wms[i] = SL_WATERMARK_NONE;
  }
  if (j->ckpt_broken) return SL_ENOMEM;
  /* Per partition, W never goes below what it was assigned, nor below its
   * previous checkpoint: what those said was emitted and confirmed still
   * is, and no record of the partition enters such a window again (its
   * floor is at least as high).  W itself can be lower after the job's
   * watermark stepped back for a partition assigned with an older
   * checkpoint.  Processing-time windows are not rebuilt as they were
   * (their records land in the windows of the restart's clock): there is
   * no W, and only what is open or not yet confirmed holds offsets back. */
  int64_t w = j->processing ? SL_WATERMARK_NONE : checkpoint_wm(j);
  for (size_t k = 0; k < n && k < j->wm.n_parts; k++) {
    sl_watermark_part_t *p = &j->wm.parts[k];
    if (!p->assigned || j->processing) continue;
    if (w > p->ckpt) p->ckpt = w;
    wms[k] = p->ckpt;
  }
  for (size_t i = 0; i < j->n_wins; i++) offsets_lower(&j->wins[i]->offsets, offsets, n);
  for (size_t i = 0; i < j->n_kept; i++) offsets_lower(&j->kept[i]->offsets, offsets, n);
  for (const sl_group_t *g = j->sess_keys.head; g; g = g->next)
    for (size_t i = 0; i < g->sessions.n; i++)
      for (const sl_partial_t *p = g->sessions.items[i].agg; p; p = p->next) {
        size_t k = (size_t)p->partition;
        if (k < n && p->first_offset >= 0 && (offsets[k] < 0 || p->first_offset < offsets[k]))
          offsets[k] = p->first_offset;
      }
  size_t kept = 0;
  for (size_t i = 0; i < j->n_emissions; i++) {
    sl_emission_t *e = &j->emissions[i];
    bool needed = !e->confirmed;
    for (size_t k = 0; k < e->offsets.n; k++) {
      if (e->offsets.off[k] < 0) continue;
      if (k >= n) {
        needed = true;
        continue;
      }
      if (e->confirmed && !j->processing && e->max_end <= wms[k]) continue;
      if (!e->confirmed || !j->processing) {
        needed = true;
        if (offsets[k] < 0 || e->offsets.off[k] < offsets[k]) offsets[k] = e->offsets.off[k];
      }
    }
    if (needed)
      j->emissions[kept++] = *e;
    else
      free(e->offsets.off);
  }
  j->n_emissions = kept;
  return 0;
}

static uint64_t partials_bytes(const sl_job_t *j, const sl_partial_t *p) {
  uint64_t bytes = 0;
  for (; p; p = p->next) {
    bytes += SL_PARTIAL_HDR;
    for (size_t i = 0; i < j->n_aggs; i++) bytes += sl_agg_bytes(&j->aggs[i], state_of(j, p, i));
  }
  return bytes;
}

static uint64_t table_bytes(const sl_job_t *j, const sl_gtable_t *t) {
  uint64_t bytes = 0;
  for (const sl_group_t *g = t->head; g; g = g->next) {
    bytes += sizeof *g + g->key_len + partials_bytes(j, g->partials);
    for (size_t s = 0; s < g->sessions.n; s++) bytes += partials_bytes(j, g->sessions.items[s].agg);
  }
  return bytes;
}

void sl_job_stats(const sl_job_t *j, sl_job_stats_t *out) {
  *out = j->stats;
  out->open_windows = j->spec.type == SL_WINDOW_SESSION ? j->n_cells : j->n_wins;
  out->state_keys = j->n_cells;
  out->emissions = j->n_emissions;
  out->watermark = j->processing ? j->proc_wm : j->wm.current;
  uint64_t bytes = table_bytes(j, &j->sess_keys);
  out->window_keys_max = 0;
  for (size_t w = 0; w < j->n_wins; w++) {
    bytes += table_bytes(j, &j->wins[w]->groups);
    if (j->wins[w]->groups.n > out->window_keys_max) out->window_keys_max = j->wins[w]->groups.n;
  }
  for (size_t w = 0; w < j->n_kept; w++) bytes += table_bytes(j, &j->kept[w]->groups);
  out->state_bytes = bytes;
}
