/* Window assignment (tumbling, hopping), the window spec check, and session
 * windows: which windows a record lands in, checked against brute force, and
 * what out-of-order events do to sessions. */
#include <stdint.h>
#include <stdlib.h>

#include "core/error.h"
#include "jobs/session.h"
#include "jobs/window.h"
#include "tap.h"

/* A fixed xorshift generator, so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static int64_t rnd_in(int64_t lo, int64_t hi) {
  return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static sl_window_spec_t tumbling(int64_t size) {
  return (sl_window_spec_t){.type = SL_WINDOW_TUMBLING, .size_ms = size};
}
static sl_window_spec_t hopping(int64_t size, int64_t advance) {
  return (sl_window_spec_t){.type = SL_WINDOW_HOPPING, .size_ms = size, .advance_ms = advance};
}

/* The one tumbling window of t, as "start end" for messages. */
static sl_window_t tumble(int64_t size, int64_t t) {
  sl_window_spec_t s = tumbling(size);
  sl_window_t w = {-1, -1};
  size_t n = sl_window_assign(&s, t, &w, 1);
  if (n != 1) w = (sl_window_t){-2, -2};
  return w;
}

static void tumbling_windows(void) {
  sl_window_t w = tumble(10, 0);
  ok(w.start == 0 && w.end == 10, "t=0 is in [0,10)");
  w = tumble(10, 9);
  ok(w.start == 0 && w.end == 10, "t=9 is in [0,10)");
  w = tumble(10, 10);
  ok(w.start == 10 && w.end == 20, "t=10, a window's end, is in the next window [10,20)");
  w = tumble(10, -1);
  ok(w.start == -10 && w.end == 0, "t=-1 is in [-10,0), not [0,10)");
  w = tumble(10, -10);
  ok(w.start == -10 && w.end == 0, "t=-10 is in [-10,0)");
  w = tumble(10, -11);
  ok(w.start == -20 && w.end == -10, "t=-11 is in [-20,-10)");
  w = tumble(60000, 1700000000123);
  is_int(w.start, 1699999980000, "a minute window of a real timestamp starts on the minute");
  is_int(w.end, 1700000040000, "and ends a minute later");
  w = tumble(86400000, -86400000 * 3 - 5);
  is_int(w.start, -86400000 * 4, "day windows before the epoch are aligned to midnight");

  int bad = 0;
  for (int i = 0; i < 20000; i++) {
    int64_t size = rnd_in(1, 1000), t = rnd_in(-100000, 100000);
    w = tumble(size, t);
    int64_t mod = ((w.start % size) + size) % size;
    if (!(w.start <= t && t < w.end && w.end - w.start == size && mod == 0)) bad++;
  }
  is_int(bad, 0, "random t and size: one aligned window of that size holds t");

  /* Far outside any real timestamp: clamped, never overflowing. */
  w = tumble(1000, INT64_MIN);
  ok(w.start <= -SL_WINDOW_TIME_LIMIT && w.end > -SL_WINDOW_TIME_LIMIT && w.end - w.start == 1000,
     "INT64_MIN is clamped to the earliest window");
  w = tumble(1000, INT64_MAX);
  ok(w.start <= SL_WINDOW_TIME_LIMIT && w.end > SL_WINDOW_TIME_LIMIT, "INT64_MAX is clamped");

  sl_window_spec_t s = tumbling(10);
  is_int(sl_window_max_count(&s), 1, "a tumbling record has one window");
  is_int(sl_window_last_end(&s, 10), 20, "last end of t=10 is 20");
  is_int(sl_window_last_end(&s, -1), 0, "last end of t=-1 is 0");
}

/* Compares sl_window_assign with every window of the grid tested one by
 * one; returns 0 when they agree. */
static int hop_differs(int64_t size, int64_t adv, int64_t t) {
  sl_window_spec_t s = hopping(size, adv);
  sl_window_t got[64];
  size_t n = sl_window_assign(&s, t, got, 64);
  if (n > sl_window_max_count(&s) || n > 64) return 1;
  size_t want = 0;
  int64_t last_start = INT64_MIN;
  for (int64_t k = (t - size) / adv - 3; k <= t / adv + 3; k++) {
    int64_t st = k * adv;
    if (st <= t && st > last_start) last_start = st;
    if (!(st <= t && t < st + size)) continue;
    if (want >= n || got[want].start != st || got[want].end != st + size) return 1;
    want++;
  }
  if (want != n) return 1;
  if (sl_window_last_end(&s, t) != last_start + size) return 1;
  return 0;
}

static void hopping_windows(void) {
  sl_window_spec_t s = hopping(10, 5);
  sl_window_t w[8];
  size_t n = sl_window_assign(&s, 7, w, 8);
  ok(n == 2 && w[0].start == 0 && w[0].end == 10 && w[1].start == 5 && w[1].end == 15,
     "size 10 advance 5: t=7 is in [0,10) and [5,15)");
  n = sl_window_assign(&s, 10, w, 8);
  ok(n == 2 && w[0].start == 5 && w[1].start == 10, "t=10 left [0,10): in [5,15) and [10,20)");
  n = sl_window_assign(&s, -1, w, 8);
  ok(n == 2 && w[0].start == -10 && w[1].start == -5, "t=-1 is in [-10,0) and [-5,5)");
  is_int(sl_window_max_count(&s), 2, "size 10 advance 5: at most 2 windows");

  s = hopping(10, 3);
  n = sl_window_assign(&s, 0, w, 8);
  ok(n == 4 && w[0].start == -9 && w[3].start == 0, "size 10 advance 3: t=0 is in 4 windows");
  n = sl_window_assign(&s, 2, w, 8);
  ok(n == 3 && w[0].start == -6 && w[2].start == 0, "t=2 is in 3 (size not a multiple of advance)");
  is_int(sl_window_max_count(&s), 4, "size 10 advance 3: at most 4 windows");

  s = hopping(3, 10);
  n = sl_window_assign(&s, 2, w, 8);
  ok(n == 1 && w[0].start == 0 && w[0].end == 3, "size 3 advance 10: t=2 is in [0,3)");
  is_int(sl_window_assign(&s, 3, w, 8), 0, "t=3 falls in the gap between windows");
  is_int(sl_window_assign(&s, 9, w, 8), 0, "t=9 too");
  n = sl_window_assign(&s, -8, w, 8);
  ok(n == 1 && w[0].start == -10, "t=-8 is in [-10,-7)");
  is_int(sl_window_assign(&s, -7, w, 8), 0, "t=-7 is in a gap");
  is_int(sl_window_last_end(&s, 5), 3, "a record in a gap: its last window ended before it");

  /* out too small: the count is still the full count, and no more is written. */
  s = hopping(10, 2);
  sl_window_t one[2] = {{0, 0}, {-77, -77}};
  n = sl_window_assign(&s, 5, one, 1);
  ok(n == 5 && one[0].start == -4 && one[1].start == -77, "cap 1: returns 5, writes 1");
  is_int(sl_window_assign(&s, 5, NULL, 0), 5, "cap 0 counts");

  int bad = 0;
  for (int i = 0; i < 20000; i++) {
    int64_t size = rnd_in(1, 40), adv = rnd_in(1, 40), t = rnd_in(-300, 300);
    if (hop_differs(size, adv, t)) {
      if (bad++ < 5)
        printf("#   differs: size %lld advance %lld t %lld\n", (long long)size, (long long)adv,
               (long long)t);
    }
  }
  is_int(bad, 0, "random size/advance/t: exactly the windows containing t, in order");
  bad = 0;
  for (int64_t t = -50; t <= 50; t++)
    for (int64_t size = 1; size <= 12; size++)
      for (int64_t adv = 1; adv <= 12; adv++) bad += hop_differs(size, adv, t);
  is_int(bad, 0, "every size and advance up to 12 around the epoch");
}

typedef struct {
  sl_window_spec_t spec;
  const char *why; /* NULL: valid */
} spec_case_t;

static void spec_check(void) {
  const spec_case_t cases[] = {
      {{SL_WINDOW_TUMBLING, 1000, 0, 0}, NULL},
      {{SL_WINDOW_HOPPING, 1000, 250, 0}, NULL},
      {{SL_WINDOW_HOPPING, 1000, 300, 0}, NULL},
      {{SL_WINDOW_HOPPING, 100, 1000, 0}, NULL},
      {{SL_WINDOW_SESSION, 0, 0, 5000}, NULL},
      {{SL_WINDOW_HOPPING, 1000, 1, 0}, NULL},
      {{SL_WINDOW_TUMBLING, 0, 0, 0}, "tumbling windows need a size above 0"},
      {{SL_WINDOW_TUMBLING, -5, 0, 0}, "tumbling windows need a size above 0"},
      {{SL_WINDOW_TUMBLING, 1000, 500, 0}, "advance is only for hopping windows"},
      {{SL_WINDOW_TUMBLING, 1000, 0, 10}, "gap is only for session windows"},
      {{SL_WINDOW_HOPPING, 0, 10, 0}, "hopping windows need a size above 0"},
      {{SL_WINDOW_HOPPING, 1000, 0, 0}, "hopping windows need an advance above 0"},
      {{SL_WINDOW_HOPPING, 1000, -1, 0}, "hopping windows need an advance above 0"},
      {{SL_WINDOW_HOPPING, 1001, 1, 0},
       "size / advance is above 1000: each record would update more than 1000 windows "
       "(raise advance)"},
      {{SL_WINDOW_SESSION, 0, 0, 0}, "session windows need a gap above 0"},
      {{SL_WINDOW_SESSION, 100, 0, 10}, "session windows take a gap, not a size"},
      {{SL_WINDOW_SESSION, 0, 5, 10}, "advance is only for hopping windows"},
      {{SL_WINDOW_TUMBLING, SL_WINDOW_MAX_MS + 1, 0, 0}, "size is longer than 100 years"},
      {{SL_WINDOW_SESSION, 0, 0, INT64_MAX}, "gap is longer than 100 years"},
      {{(sl_window_type_t)7, 10, 0, 0}, "unknown window type"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *why = NULL;
    int r = sl_window_spec_check(&cases[i].spec, &why);
    if (!cases[i].why) {
      is_int(r, 0, "spec %zu is valid", i);
    } else {
      is_int(r, SL_ECONFIG, "spec %zu is refused", i);
      is_str(why, cases[i].why, "spec %zu says why", i);
    }
  }
  sl_window_spec_t s = tumbling(0);
  is_int(sl_window_spec_check(&s, NULL), SL_ECONFIG, "why may be NULL");
  is_int(sl_window_assign(&s, 5, NULL, 0), 0, "an invalid spec has no windows");
  is_int(sl_window_last_end(&s, 5), INT64_MAX, "so no record of it is late");
}

static void spec_from_conf(void) {
  const int64_t ms = 1000000;
  sl_window_conf_t c = {.type = 1, .size_ns = 10000 * ms, .advance_ns = 2500 * ms};
  sl_window_spec_t s = {0};
  const char *why = NULL;
  const void *field = &c;
  is_int(sl_window_spec_from_conf(&c, &s, &why, &field), 0, "10s hopping by 2.5s converts");
  ok(s.type == SL_WINDOW_HOPPING && s.size_ms == 10000 && s.advance_ms == 2500 && s.gap_ms == 0,
     "into milliseconds");
  ok(field == NULL, "no field on success");

  c = (sl_window_conf_t){.type = 0, .size_ns = 1500 * 1000};
  s = (sl_window_spec_t){.size_ms = -42};
  is_int(sl_window_spec_from_conf(&c, &s, &why, &field), SL_ECONFIG, "1500us is refused");
  is_str(why, "size must be a whole number of milliseconds", "a fraction of a ms is named");
  ok(field == &c.size_ns, "at the size option");
  is_int(s.size_ms, -42, "out untouched on failure");

  c = (sl_window_conf_t){.type = 0, .size_ns = 1000 * ms, .advance_ns = 10 * ms};
  is_int(sl_window_spec_from_conf(&c, &s, &why, &field), SL_ECONFIG, "tumbling with advance");
  ok(field == &c.advance_ns, "points at advance");
  c = (sl_window_conf_t){.type = 2, .size_ns = 1000 * ms, .gap_ns = 10 * ms};
  is_int(sl_window_spec_from_conf(&c, &s, &why, &field), SL_ECONFIG, "session with size");
  ok(field == &c.size_ns, "points at size");
  c = (sl_window_conf_t){.type = 1, .size_ns = 1000 * ms};
  is_int(sl_window_spec_from_conf(&c, &s, &why, &field), SL_ECONFIG, "hopping without advance");
  is_str(why, "hopping windows need an advance above 0", "names the missing advance");
  ok(field == &c, "a missing option points at the window table");
  c = (sl_window_conf_t){.type = 1, .size_ns = 10000 * ms, .advance_ns = 1 * ms};
  is_int(sl_window_spec_from_conf(&c, &s, NULL, NULL), SL_ECONFIG, "10000 overlapping windows");
}

/* ---- sessions ---------------------------------------------------------- */

static int sessions_are(const sl_session_set_t *set, const int64_t *bounds, size_t n) {
  if (set->n != n) return 0;
  for (size_t i = 0; i < n; i++)
    if (set->items[i].w.start != bounds[2 * i] || set->items[i].w.end != bounds[2 * i + 1])
      return 0;
  return 1;
}

static void sessions_basic(void) {
  sl_session_set_t set;
  sl_session_init(&set);
  sl_session_add_t r;
  int a = 1, b = 2;
  const int64_t gap = 10;

  is_int(sl_session_add(&set, gap, 100, &r), 0, "first event");
  ok(r.what == SL_SESSION_CREATED && r.index == 0, "creates a session");
  ok(sessions_are(&set, (int64_t[]){100, 110}, 1), "[100,110)");
  ok(set.items[0].agg == NULL, "with no aggregate yet");
  set.items[0].agg = &a;

  is_int(sl_session_add(&set, gap, 105, &r), 0, "event within the gap");
  ok(r.what == SL_SESSION_JOINED && r.index == 0, "joins it");
  ok(sessions_are(&set, (int64_t[]){100, 115}, 1), "and extends it to [100,115)");
  ok(set.items[0].agg == &a, "keeping its aggregate");

  sl_session_add(&set, gap, 91, &r);
  ok(r.what == SL_SESSION_JOINED && sessions_are(&set, (int64_t[]){91, 115}, 1),
     "an earlier event within the gap extends it backwards to [91,115)");

  sl_session_add(&set, gap, 115, &r);
  ok(r.what == SL_SESSION_CREATED && r.index == 1 &&
         sessions_are(&set, (int64_t[]){91, 115, 115, 125}, 2),
     "an event exactly at the end starts a new session");
  set.items[1].agg = &b;
  sl_session_add(&set, gap, 81, &r);
  ok(r.what == SL_SESSION_CREATED && r.index == 0 &&
         sessions_are(&set, (int64_t[]){81, 91, 91, 115, 115, 125}, 3),
     "an event exactly gap before the start starts a new session, first in order");
  ok(set.items[1].agg == &a && set.items[2].agg == &b, "aggregates move with their sessions");

  /* 114 is within the gap of both [91,115) and [115,125): they merge. */
  sl_session_add(&set, gap, 114, &r);
  ok(r.what == SL_SESSION_MERGED && r.index == 1, "a bridging event merges the two sessions");
  ok(r.absorbed.agg == &b && r.absorbed.w.start == 115 && r.absorbed.w.end == 125,
     "reports the later one, whose aggregate the caller merges");
  ok(set.items[1].agg == &a, "into the earlier one's");
  ok(sessions_are(&set, (int64_t[]){81, 91, 91, 125}, 2), "now [81,91) and [91,125)");

  int c = 3;
  set.items[0].agg = &c;
  sl_session_add(&set, gap, 85, &r);
  ok(r.what == SL_SESSION_MERGED && r.index == 0 && r.absorbed.agg == &a,
     "85, inside [81,91) and within the gap of [91,125), merges them too");
  ok(sessions_are(&set, (int64_t[]){81, 125}, 1) && set.items[0].agg == &c, "one session [81,125)");

  int64_t next = sl_session_next_end(&set);
  is_int(next, 125, "closes at watermark 125");
  sl_session_t out;
  ok(!sl_session_pop_closed(&set, 124, &out), "not closed at 124");
  sl_session_add(&set, gap, 300, &r);
  ok(sl_session_pop_closed(&set, 125, &out) && out.w.start == 81 && out.w.end == 125,
     "closed at 125, handed back");
  ok(!sl_session_pop_closed(&set, 125, &out), "the later session stays open");
  is_int(sl_session_next_end(&set), 310, "next end 310");
  ok(sl_session_pop_closed(&set, INT64_MAX, &out) && set.n == 0, "the last one closes");
  is_int(sl_session_next_end(&set), INT64_MAX, "none left");

  is_int(sl_session_add(&set, 0, 5, &r), SL_ERANGE, "gap 0 refused");
  is_int(sl_session_add(&set, SL_WINDOW_MAX_MS + 1, 5, &r), SL_ERANGE, "huge gap refused");
  ok(set.n == 0, "refusals leave the set alone");
  is_int(sl_session_add(&set, gap, INT64_MAX, &r), 0, "an absurd time is clamped");
  ok(set.items[0].w.end == SL_WINDOW_TIME_LIMIT + gap, "not overflowing");
  sl_session_close(&set);
  sl_session_close(&set);
  ok(set.items == NULL && set.n == 0, "close frees and may be repeated");
}

/* Events in any order end up in the sessions a batch computes from the
 * sorted events (split where neighbours are gap or more apart), and the
 * counts the caller keeps through created/merged reports add up. */
#define MAX_EVENTS 200

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int sessions_random_once(void) {
  int64_t ev[MAX_EVENTS], sorted[MAX_EVENTS];
  long counts[MAX_EVENTS]; /* the "aggregates": one count per created session */
  size_t n = (size_t)rnd_in(1, MAX_EVENTS);
  int64_t gap = rnd_in(1, 30), span = rnd_in(1, 3000);
  for (size_t i = 0; i < n; i++) sorted[i] = ev[i] = rnd_in(-span, span);
  qsort(sorted, n, sizeof *sorted, cmp_i64);

  sl_session_set_t set;
  sl_session_init(&set);
  size_t made = 0;
  for (size_t i = 0; i < n; i++) {
    sl_session_add_t r;
    if (sl_session_add(&set, gap, ev[i], &r)) return 1;
    if (r.what == SL_SESSION_CREATED) {
      counts[made] = 0;
      set.items[r.index].agg = &counts[made++];
    } else if (r.what == SL_SESSION_MERGED) {
      *(long *)set.items[r.index].agg += *(long *)r.absorbed.agg;
      *(long *)r.absorbed.agg = -1000000; /* freed: must not be seen again */
    }
    (*(long *)set.items[r.index].agg)++;
    for (size_t k = 0; k + 1 < set.n; k++)
      if (set.items[k].w.end > set.items[k + 1].w.start) return 2;
  }
  /* The batch answer. */
  size_t k = 0, first = 0;
  int bad = 0;
  for (size_t i = 1; i <= n; i++) {
    if (i < n && sorted[i] - sorted[i - 1] < gap) continue;
    if (k >= set.n) return 3;
    const sl_session_t *s = &set.items[k++];
    if (s->w.start != sorted[first] || s->w.end != sorted[i - 1] + gap) bad = 4;
    if (*(long *)s->agg != (long)(i - first)) bad = 5;
    first = i;
  }
  if (k != set.n) bad = 6;
  sl_session_close(&set);
  return bad;
}

static void sessions_random(void) {
  int bad = 0;
  for (int i = 0; i < 2000; i++) {
    int r = sessions_random_once();
    if (r && bad++ < 3) printf("#   round %d: failure %d\n", i, r);
  }
  is_int(bad, 0, "random events in random order: the batch sessions, with their counts");
}

int main(void) {
  tumbling_windows();
  hopping_windows();
  spec_check();
  spec_from_conf();
  sessions_basic();
  sessions_random();
  return tap_done();
}
