/* Per-key session sets.  Pure.
 *
 * The sessions are a sorted array rather than a tree: a key usually has one
 * open session, a few when events arrive out of order, and a lookup is a
 * binary search on the ends (sorted too, as the sessions do not overlap). */
#include "jobs/session.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void sl_session_init(sl_session_set_t *set) { *set = (sl_session_set_t){0}; }

void sl_session_close(sl_session_set_t *set) {
  if (!set) return;
  free(set->items);
  *set = (sl_session_set_t){0};
}

/* The first session that ends after t: the only candidates to overlap
 * [t, t + gap) are it and the one after it. */
static size_t first_ending_after(const sl_session_set_t *set, int64_t t) {
  size_t lo = 0, hi = set->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (set->items[mid].w.end > t)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

static int insert_at(sl_session_set_t *set, size_t i, sl_session_t s) {
  if (set->n == set->cap) {
    size_t cap = set->cap ? set->cap * 2 : 1;
    sl_session_t *items = realloc(set->items, cap * sizeof *items);
    if (!items) return SL_ENOMEM;
    set->items = items;
    set->cap = cap;
  }
  memmove(&set->items[i + 1], &set->items[i], (set->n - i) * sizeof *set->items);
  set->items[i] = s;
  set->n++;
  return 0;
}

static void remove_at(sl_session_set_t *set, size_t i) {
  memmove(&set->items[i], &set->items[i + 1], (set->n - i - 1) * sizeof *set->items);
  set->n--;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

int sl_session_add(sl_session_set_t *set, int64_t gap_ms, int64_t t, sl_session_add_t *res) {
  if (gap_ms <= 0 || gap_ms > SL_WINDOW_MAX_MS) return SL_ERANGE;
  if (t > SL_WINDOW_TIME_LIMIT) t = SL_WINDOW_TIME_LIMIT;
  if (t < -SL_WINDOW_TIME_LIMIT) t = -SL_WINDOW_TIME_LIMIT;
  sl_window_t own = {t, t + gap_ms};
  size_t i = first_ending_after(set, t);

  /* Sessions from i on end after t, so they overlap [t, t + gap) when they
   * start before t + gap. */
  if (i == set->n || set->items[i].w.start >= own.end) {
    int r = insert_at(set, i, (sl_session_t){own, NULL});
    if (r) return r;
    *res = (sl_session_add_t){.what = SL_SESSION_CREATED, .index = i};
    return 0;
  }
  sl_session_t *s = &set->items[i];
  s->w.start = min64(s->w.start, own.start);
  if (i + 1 < set->n && set->items[i + 1].w.start < own.end) {
    sl_session_t later = set->items[i + 1];
    s->w.end = max64(later.w.end, own.end);
    remove_at(set, i + 1);
    *res = (sl_session_add_t){.what = SL_SESSION_MERGED, .index = i, .absorbed = later};
    return 0;
  }
  s->w.end = max64(s->w.end, own.end);
  *res = (sl_session_add_t){.what = SL_SESSION_JOINED, .index = i};
  return 0;
}

bool sl_session_pop_closed(sl_session_set_t *set, int64_t watermark, sl_session_t *out) {
  if (!set->n || set->items[0].w.end > watermark) return false;
  *out = set->items[0];
  remove_at(set, 0);
  return true;
}

int64_t sl_session_next_end(const sl_session_set_t *set) {
  return set->n ? set->items[0].w.end : INT64_MAX;
}
