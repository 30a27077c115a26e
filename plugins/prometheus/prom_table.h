/* The prometheus sink's series table: what the sink shows, one entry per
 * label set (a metric prefix and its labels: a job's group key, as the
 * sink names it), each with the values and histograms of the newest row
 * it got.  Pure; used by one thread (the jobs loop).
 *
 * What replaces what.  A row replaces its label set's entry when its
 * window starts at or after the entry's (a row written again, an early row
 * then its final one); a row of an older window is ignored (a retry or a
 * replay that comes after a newer window).  In window mode a metric shows
 * only its newest closed window: when a final row of a later window comes,
 * the metric's entries of earlier windows are removed, so a key that had
 * no record in the newest window has no series.  In latest mode each label
 * set keeps its newest row.  In both, expire (if set) removes an entry no
 * row updated for that long.  max_series bounds the entries: a row that
 * would add one more is dropped (and counted by the caller). */
#ifndef PROM_TABLE_H
#define PROM_TABLE_H

#include <sluice/sink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  char *name; /* family suffix (owned in a series; borrowed in a row) */
  double value;
} prom_value_t;

typedef struct {
  char *name;   /* family suffix */
  char *column; /* the aggregate it came from */
  uint64_t *cumulative; /* n_bounds + 1 */
  double sum;
} prom_hist_t;

/* A row as the table takes it; everything borrowed for the call and
 * copied. */
typedef struct {
  const char *metric; /* family prefix */
  const char *job;
  uint64_t id;
  int64_t window_start, window_end; /* ms */
  bool final;
  const sluice_label_t *labels;
  size_t n_labels;
  const prom_value_t *values;
  size_t n_values;
  const prom_hist_t *hists;
  size_t n_hists;
  size_t n_bounds; /* of every histogram */
} prom_row_t;

/* A series set as shown: read its fields, change nothing. */
typedef struct prom_series {
  struct prom_series *prev, *next; /* in order of arrival */
  struct prom_series *hnext;
  uint64_t hash;
  char *key; /* metric and labels, NUL-separated; key_len bytes */
  size_t key_len;
  char *metric, *job;
  uint64_t id;
  int64_t window_start, window_end, updated_ms;
  sluice_label_t *labels; /* owned names and values */
  size_t n_labels;
  prom_value_t *values;
  size_t n_values;
  prom_hist_t *hists;
  size_t n_hists, n_bounds;
} prom_series_t;

typedef enum {
  PROM_ADDED,    /* a new label set */
  PROM_REPLACED, /* the label set's entry, by a row of the same key or window order */
  PROM_COLLIDED, /* replaced the entry of another row of the same window: two group keys with the same labels */
  PROM_OLDER,    /* ignored: an older window than the one shown */
  PROM_DROPPED,  /* ignored: max_series label sets are shown */
  PROM_NOMEM,
} prom_outcome_t;

/* Frees the strings (and counts) the labels, values and histograms own,
 * not the arrays themselves; any count may be 0. */
void prom_parts_clear(sluice_label_t *labels, size_t n_labels, prom_value_t *values, size_t n_values,
                      prom_hist_t *hists, size_t n_hists);

typedef struct prom_table prom_table_t;

/* NULL when out of memory.  expire_ms 0: never. */
prom_table_t *prom_table_new(size_t max_series, bool window_mode, int64_t expire_ms);
void prom_table_free(prom_table_t *t); /* accepts NULL */

prom_outcome_t prom_table_apply(prom_table_t *t, const prom_row_t *row, int64_t now_ms);

/* Removes the entries no row updated since now_ms - expire; returns how
 * many. */
size_t prom_table_expire(prom_table_t *t, int64_t now_ms);

size_t prom_table_size(const prom_table_t *t);
const prom_series_t *prom_table_first(const prom_table_t *t); /* then ->next; NULL at the end */

#endif
