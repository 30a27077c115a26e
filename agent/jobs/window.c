/* Window assignment and the window spec check.  Pure.
 *
 * Everything is floor division: C's '/' truncates toward zero, which would
 * put t = -1 in the window [0, size) instead of [-size, 0). */
#include "jobs/window.h"

#include "core/error.h"

#define NS_PER_MS INT64_C(1000000)

static int64_t clamp_time(int64_t t) {
  if (t > SL_WINDOW_TIME_LIMIT) return SL_WINDOW_TIME_LIMIT;
  if (t < -SL_WINDOW_TIME_LIMIT) return -SL_WINDOW_TIME_LIMIT;
  return t;
}

/* floor(a / b) for b > 0. */
static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b < 0) q--;
  return q;
}

/* Start of the latest window of the grid `step` that starts at or before t. */
static int64_t align_down(int64_t t, int64_t step) { return floor_div(t, step) * step; }

/* Which option a failed check is about, so that the config error can point
 * at it. */
typedef enum { AT_TABLE, AT_SIZE, AT_ADVANCE, AT_GAP } at_t;

static int fail(const char **why, at_t *at, at_t where, const char *msg) {
  if (why) *why = msg;
  *at = where;
  return SL_ECONFIG;
}

/* A missing option has no position of its own: the table stands for it. */
static int check(const sl_window_spec_t *s, const char **why, at_t *at) {
  switch (s->type) {
  case SL_WINDOW_TUMBLING:
    if (s->size_ms <= 0) return fail(why, at, AT_TABLE, "tumbling windows need a size above 0");
    if (s->advance_ms) return fail(why, at, AT_ADVANCE, "advance is only for hopping windows");
    if (s->gap_ms) return fail(why, at, AT_GAP, "gap is only for session windows");
    break;
  case SL_WINDOW_HOPPING:
    if (s->size_ms <= 0) return fail(why, at, AT_TABLE, "hopping windows need a size above 0");
    if (s->advance_ms <= 0)
      return fail(why, at, AT_TABLE, "hopping windows need an advance above 0");
    if (s->gap_ms) return fail(why, at, AT_GAP, "gap is only for session windows");
    break;
  case SL_WINDOW_SESSION:
    if (s->gap_ms <= 0) return fail(why, at, AT_TABLE, "session windows need a gap above 0");
    if (s->size_ms) return fail(why, at, AT_SIZE, "session windows take a gap, not a size");
    if (s->advance_ms) return fail(why, at, AT_ADVANCE, "advance is only for hopping windows");
    break;
  default: return fail(why, at, AT_TABLE, "unknown window type");
  }
  if (s->size_ms > SL_WINDOW_MAX_MS) return fail(why, at, AT_SIZE, "size is longer than 100 years");
  if (s->advance_ms > SL_WINDOW_MAX_MS)
    return fail(why, at, AT_ADVANCE, "advance is longer than 100 years");
  if (s->gap_ms > SL_WINDOW_MAX_MS) return fail(why, at, AT_GAP, "gap is longer than 100 years");
  if (s->type == SL_WINDOW_HOPPING && sl_window_max_count(s) > SL_WINDOW_MAX_OVERLAP)
    return fail(why, at, AT_ADVANCE,
                "size / advance is above 1000: each record would update more than 1000 "
                "windows (raise advance)");
  return 0;
}

int sl_window_spec_check(const sl_window_spec_t *spec, const char **why) {
  at_t at;
  return check(spec, why, &at);
}

/* ns to ms, refusing fractions of a millisecond rather than rounding them
 * away silently. */
static int to_ms(int64_t ns, int64_t *ms) {
  if (ns % NS_PER_MS) return -1;
  *ms = ns / NS_PER_MS;
  return 0;
}

int sl_window_spec_from_conf(const sl_window_conf_t *conf, sl_window_spec_t *out, const char **why,
                             const void **field) {
  sl_window_spec_t s = {.type = (sl_window_type_t)conf->type};
  at_t at = AT_TABLE;
  int r;
  if (to_ms(conf->size_ns, &s.size_ms))
    r = fail(why, &at, AT_SIZE, "size must be a whole number of milliseconds");
  else if (to_ms(conf->advance_ns, &s.advance_ms))
    r = fail(why, &at, AT_ADVANCE, "advance must be a whole number of milliseconds");
  else if (to_ms(conf->gap_ns, &s.gap_ms))
    r = fail(why, &at, AT_GAP, "gap must be a whole number of milliseconds");
  else
    r = check(&s, why, &at);
  if (field) {
    const void *const by_at[] = {conf, &conf->size_ns, &conf->advance_ns, &conf->gap_ns};
    *field = r ? by_at[at] : NULL;
  }
  if (!r) *out = s;
  return r;
}

/* Durations the arithmetic below is safe with (a checked spec has them). */
static int ok_ms(int64_t d) { return d > 0 && d <= SL_WINDOW_MAX_MS; }

size_t sl_window_max_count(const sl_window_spec_t *spec) {
  if (spec->type != SL_WINDOW_HOPPING) return 1;
  if (!ok_ms(spec->size_ms) || !ok_ms(spec->advance_ms)) return 0;
  return (size_t)((spec->size_ms + spec->advance_ms - 1) / spec->advance_ms);
}

size_t sl_window_assign(const sl_window_spec_t *spec, int64_t t, sl_window_t *out, size_t cap) {
  t = clamp_time(t);
  switch (spec->type) {
  case SL_WINDOW_TUMBLING: {
    if (!ok_ms(spec->size_ms)) return 0;
    int64_t start = align_down(t, spec->size_ms);
    if (cap) out[0] = (sl_window_t){start, start + spec->size_ms};
    return 1;
  }
  case SL_WINDOW_HOPPING: {
    int64_t size = spec->size_ms, adv = spec->advance_ms;
    if (!ok_ms(size) || !ok_ms(adv)) return 0;
    /* [s, s + size) contains t when t - size < s <= t: the multiples of
       * advance in that range, from the one just above t - size. */
    int64_t first = align_down(t - size, adv) + adv, last = align_down(t, adv);
    if (first > last) return 0;
    size_t n = (size_t)((last - first) / adv) + 1;
    for (size_t i = 0; i < n && i < cap; i++) {
      int64_t s = first + (int64_t)i * adv;
      out[i] = (sl_window_t){s, s + size};
    }
    return n;
  }
  case SL_WINDOW_SESSION:
    if (!ok_ms(spec->gap_ms)) return 0;
    if (cap) out[0] = (sl_window_t){t, t + spec->gap_ms};
    return 1;
  }
  return 0;
}

int64_t sl_window_last_end(const sl_window_spec_t *spec, int64_t t) {
  t = clamp_time(t);
  switch (spec->type) {
  case SL_WINDOW_TUMBLING:
    if (ok_ms(spec->size_ms)) return align_down(t, spec->size_ms) + spec->size_ms;
    break;
  case SL_WINDOW_HOPPING:
    if (ok_ms(spec->size_ms) && ok_ms(spec->advance_ms))
      return align_down(t, spec->advance_ms) + spec->size_ms;
    break;
  case SL_WINDOW_SESSION:
    if (ok_ms(spec->gap_ms)) return t + spec->gap_ms;
    break;
  }
  /* A spec that fails the check: no window, so nothing can be late. */
  return INT64_MAX;
}
