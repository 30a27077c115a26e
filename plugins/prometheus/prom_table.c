/* The prometheus sink's series table (prom_table.h).  Pure.
 *
 * Entries are found by a hash of their key (the metric prefix and the
 * labels, NUL-separated, in the row's order: the sink builds labels in a
 * fixed order) and kept in order of arrival, which is the order the sink
 * publishes them in. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup under -std=c11 */
#endif

#include "prom_table.h"

#include <stdlib.h>
#include <string.h>

/* A metric prefix and the end of the newest final window it showed. */
typedef struct group {
  struct group *next;
  char *metric;
  int64_t newest_end;
} group_t;

struct prom_table {
  size_t max_series;
  bool window_mode;
  int64_t expire_ms;
  prom_series_t *head, *tail;
  size_t n;
  prom_series_t **index;
  size_t index_size; /* a power of two */
  group_t *groups;
};

prom_table_t *prom_table_new(size_t max_series, bool window_mode, int64_t expire_ms) {
  prom_table_t *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->max_series = max_series;
  t->window_mode = window_mode;
  t->expire_ms = expire_ms;
  t->index_size = 64;
  if (!(t->index = calloc(t->index_size, sizeof *t->index))) {
    free(t);
    return NULL;
  }
  return t;
}

void prom_parts_clear(sluice_label_t *labels, size_t n_labels, prom_value_t *values, size_t n_values,
                      prom_hist_t *hists, size_t n_hists) {
  for (size_t i = 0; i < n_labels; i++) {
    free((char *)labels[i].name);
    free((char *)labels[i].value);
  }
  for (size_t i = 0; i < n_values; i++) free(values[i].name);
  for (size_t i = 0; i < n_hists; i++) {
    free(hists[i].name);
    free(hists[i].column);
    free(hists[i].cumulative);
  }
}

static void values_free(prom_series_t *e) {
  prom_parts_clear(NULL, 0, e->values, e->n_values, e->hists, e->n_hists);
  free(e->values);
  free(e->hists);
  free(e->job);
  e->values = NULL;
  e->hists = NULL;
  e->job = NULL;
  e->n_values = e->n_hists = 0;
}

static void series_free(prom_series_t *e) {
  if (!e) return;
  values_free(e);
  prom_parts_clear(e->labels, e->n_labels, NULL, 0, NULL, 0);
  free(e->labels);
  free(e->metric);
  free(e->key);
  free(e);
}

void prom_table_free(prom_table_t *t) {
  if (!t) return;
  for (prom_series_t *e = t->head, *next; e; e = next) {
    next = e->next;
    series_free(e);
  }
  for (group_t *g = t->groups, *next; g; g = next) {
    next = g->next;
    free(g->metric);
    free(g);
  }
  free(t->index);
  free(t);
}

size_t prom_table_size(const prom_table_t *t) { return t->n; }
const prom_series_t *prom_table_first(const prom_table_t *t) { return t->head; }

/* The key: metric, then each label's name and value, each ending in NUL. */
static char *make_key(const prom_row_t *row, size_t *len) {
  size_t n = strlen(row->metric) + 1;
  for (size_t i = 0; i < row->n_labels; i++) n += strlen(row->labels[i].name) + strlen(row->labels[i].value) + 2;
  char *k = malloc(n), *p = k;
  if (!k) return NULL;
  p = stpcpy(p, row->metric) + 1;
  for (size_t i = 0; i < row->n_labels; i++) {
    p = stpcpy(p, row->labels[i].name) + 1;
    p = stpcpy(p, row->labels[i].value) + 1;
  }
  *len = n;
  return k;
}

static uint64_t hash_bytes(const char *p, size_t n) {
  uint64_t h = 14695981039346656037ULL;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

static prom_series_t *find(const prom_table_t *t, const char *key, size_t len, uint64_t h) {
  for (prom_series_t *e = t->index[h & (t->index_size - 1)]; e; e = e->hnext)
    if (e->hash == h && e->key_len == len && !memcmp(e->key, key, len)) return e;
  return NULL;
}

static void index_grow(prom_table_t *t) {
  if (t->n < t->index_size) return;
  size_t size = t->index_size * 2;
  prom_series_t **index = calloc(size, sizeof *index);
  if (!index) return; /* chains get longer, lookups stay right */
  for (prom_series_t *e = t->head; e; e = e->next) {
    e->hnext = index[e->hash & (size - 1)];
    index[e->hash & (size - 1)] = e;
  }
  free(t->index);
  t->index = index;
  t->index_size = size;
}

static void unlink_series(prom_table_t *t, prom_series_t *e) {
  for (prom_series_t **at = &t->index[e->hash & (t->index_size - 1)]; *at; at = &(*at)->hnext)
    if (*at == e) {
      *at = e->hnext;
      break;
    }
  if (e->prev)
    e->prev->next = e->next;
  else
    t->head = e->next;
  if (e->next)
    e->next->prev = e->prev;
  else
    t->tail = e->prev;
  t->n--;
  series_free(e);
}

static group_t *group_of(prom_table_t *t, const char *metric) {
  for (group_t *g = t->groups; g; g = g->next)
    if (!strcmp(g->metric, metric)) return g;
  group_t *g = calloc(1, sizeof *g);
  if (!g || !(g->metric = strdup(metric))) {
    free(g);
    return NULL;
  }
  g->newest_end = INT64_MIN;
  g->next = t->groups;
  t->groups = g;
  return g;
}

/* A final row of a later window: the metric's entries of earlier windows
 * go (window mode). */
static void purge_before(prom_table_t *t, const char *metric, int64_t end) {
  for (prom_series_t *e = t->head, *next; e; e = next) {
    next = e->next;
    if (e->window_end < end && !strcmp(e->metric, metric)) unlink_series(t, e);
  }
}

/* Copies the row's values and histograms into e (emptied first).  0 or -1
 * (out of memory: e holds none). */
static int copy_values(prom_series_t *e, const prom_row_t *row) {
  values_free(e);
  if (!(e->job = strdup(row->job ? row->job : ""))) return -1;
  if (row->n_values && !(e->values = calloc(row->n_values, sizeof *e->values))) goto fail;
  for (; e->n_values < row->n_values; e->n_values++) {
    prom_value_t *v = &e->values[e->n_values];
    if (!(v->name = strdup(row->values[e->n_values].name))) goto fail;
    v->value = row->values[e->n_values].value;
  }
  if (row->n_hists && !(e->hists = calloc(row->n_hists, sizeof *e->hists))) goto fail;
  for (; e->n_hists < row->n_hists; e->n_hists++) {
    const prom_hist_t *src = &row->hists[e->n_hists];
    prom_hist_t *h = &e->hists[e->n_hists];
    h->sum = src->sum;
    h->name = strdup(src->name);
    h->column = strdup(src->column);
    h->cumulative = malloc((row->n_bounds + 1) * sizeof *h->cumulative);
    if (!h->name || !h->column || !h->cumulative) {
      e->n_hists++; /* so that values_free frees what was made */
      goto fail;
    }
    memcpy(h->cumulative, src->cumulative, (row->n_bounds + 1) * sizeof *h->cumulative);
  }
  e->n_bounds = row->n_bounds;
  return 0;
fail:
  values_free(e);
  return -1;
}

static prom_series_t *series_new(const prom_row_t *row, char *key, size_t len, uint64_t h) {
  prom_series_t *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->key = key;
  e->key_len = len;
  e->hash = h;
  if (!(e->metric = strdup(row->metric)) ||
      (row->n_labels && !(e->labels = calloc(row->n_labels, sizeof *e->labels))))
    goto fail;
  for (; e->n_labels < row->n_labels; e->n_labels++) {
    sluice_label_t *l = &e->labels[e->n_labels];
    l->name = strdup(row->labels[e->n_labels].name);
    l->value = strdup(row->labels[e->n_labels].value);
    if (!l->name || !l->value) {
      e->n_labels++;
      goto fail;
    }
  }
  return e;
fail:
  e->key = NULL; /* the caller's still */
  series_free(e);
  return NULL;
}

prom_outcome_t prom_table_apply(prom_table_t *t, const prom_row_t *row, int64_t now_ms) {
  group_t *g = t->window_mode ? group_of(t, row->metric) : NULL;
  if (t->window_mode && !g) return PROM_NOMEM;
  if (g && row->window_end < g->newest_end) return PROM_OLDER;
  size_t len;
  char *key = make_key(row, &len);
  if (!key) return PROM_NOMEM;
  uint64_t h = hash_bytes(key, len);
  prom_series_t *e = find(t, key, len, h);
  if (e && row->window_start < e->window_start) {
    free(key);
    return PROM_OLDER;
  }
  bool existed = e != NULL;
  if (g && row->final && row->window_end > g->newest_end) {
    g->newest_end = row->window_end;
    purge_before(t, row->metric, row->window_end);
    e = find(t, key, len, h); /* it may have gone with its window */
  }
  prom_outcome_t out = PROM_REPLACED;
  if (e) {
    free(key);
    if (e->id != row->id && e->window_start == row->window_start) out = PROM_COLLIDED;
  } else {
    if (t->n >= t->max_series) {
      free(key);
      return PROM_DROPPED;
    }
    if (!(e = series_new(row, key, len, h))) {
      free(key);
      return PROM_NOMEM;
    }
    index_grow(t);
    e->hnext = t->index[h & (t->index_size - 1)];
    t->index[h & (t->index_size - 1)] = e;
    e->prev = t->tail;
    if (t->tail)
      t->tail->next = e;
    else
      t->head = e;
    t->tail = e;
    t->n++;
    out = existed ? PROM_REPLACED : PROM_ADDED;
  }
  e->id = row->id;
  e->window_start = row->window_start;
  e->window_end = row->window_end;
  e->updated_ms = now_ms;
  if (copy_values(e, row)) {
    unlink_series(t, e);
    return PROM_NOMEM;
  }
  return out;
}

size_t prom_table_expire(prom_table_t *t, int64_t now_ms) {
  if (!t->expire_ms) return 0;
  size_t n = 0;
  for (prom_series_t *e = t->head, *next; e; e = next) {
    next = e->next;
    if (now_ms - e->updated_ms >= t->expire_ms) {
      unlink_series(t, e);
      n++;
    }
  }
  return n;
}
