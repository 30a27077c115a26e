/* The job watermark over partitions: the slowest active partition decides,
 * lateness holds it back, idle partitions let go and re-join, rebalances add
 * and remove partitions; it decreases only when a partition is assigned
 * with a lower watermark, every other partition keeping its floor; late
 * records are judged against their own partition's floor; and the commit
 * metadata that carries it across a restart. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "jobs/watermark.h"
#include "tap.h"

#define NONE SL_WATERMARK_NONE

static void min_over_partitions(void) {
  sl_watermark_t wm;
  sl_watermark_init(&wm, 0, 0);
  is_int(sl_watermark_get(&wm, 0), NONE, "no partition: no watermark");
  is_int(sl_watermark_assign(&wm, 0, NONE, 0), 0, "assign 0");
  is_int(sl_watermark_assign(&wm, 1, NONE, 0), 0, "assign 1");
  sl_watermark_observe(&wm, 0, 100, 1);
  is_int(sl_watermark_get(&wm, 1), NONE, "a partition without records holds it back");
  sl_watermark_observe(&wm, 1, 50, 2);
  is_int(sl_watermark_get(&wm, 2), 50, "the slower partition decides");
  sl_watermark_observe(&wm, 1, 200, 3);
  is_int(sl_watermark_get(&wm, 3), 100, "then the other one");
  sl_watermark_observe(&wm, 0, 90, 4);
  is_int(sl_watermark_get(&wm, 4), 100, "an older record does not lower a partition's watermark");
  sl_watermark_observe(&wm, 0, 150, 5);
  is_int(sl_watermark_get(&wm, 5), 150, "min(150, 200)");
  is_int(sl_watermark_observe(&wm, 2, 1000, 6), SL_ERANGE, "a record of an unassigned partition");
  is_int(sl_watermark_get(&wm, 6), 150, "changes nothing");
  sl_watermark_close(&wm);
  sl_watermark_close(&wm);
  ok(wm.parts == NULL, "close may be repeated");
}

static void lateness(void) {
  sl_watermark_t wm;
  sl_watermark_init(&wm, 30, 0);
  sl_watermark_assign(&wm, 0, NONE, 0);
  sl_watermark_observe(&wm, 0, 1000, 0);
  is_int(sl_watermark_get(&wm, 0), 970, "watermark = max event time - allowed lateness");

  sl_window_spec_t tum = {.type = SL_WINDOW_TUMBLING, .size_ms = 100};
  ok(!sl_watermark_is_late(&wm, 0, &tum, 900), "[900,1000) ends after 970: on time");
  ok(sl_watermark_is_late(&wm, 0, &tum, 869), "[800,900) ended before 970: late");
  sl_watermark_observe(&wm, 0, 1030, 0);
  is_int(sl_watermark_get(&wm, 0), 1000, "1030 - 30");
  ok(sl_watermark_is_late(&wm, 0, &tum, 999), "a window ending exactly at the watermark is done");
  ok(!sl_watermark_is_late(&wm, 0, &tum, 1000), "the next one is open");

  sl_window_spec_t hop = {.type = SL_WINDOW_HOPPING, .size_ms = 100, .advance_ms = 50};
  ok(!sl_watermark_is_late(&wm, 0, &hop, 960), "hopping: [950,1050) is still open");
  ok(sl_watermark_is_late(&wm, 0, &hop, 949), "[850,950) and [900,1000) both done: late");
  sl_window_spec_t ses = {.type = SL_WINDOW_SESSION, .gap_ms = 40};
  ok(sl_watermark_is_late(&wm, 0, &ses, 960), "session: 960 + gap 40 is not after 1000: late");
  ok(!sl_watermark_is_late(&wm, 0, &ses, 961), "961 + 40 is");
  sl_watermark_close(&wm);

  sl_watermark_init(&wm, INT64_MAX, 0);
  sl_watermark_assign(&wm, 0, NONE, 0);
  sl_watermark_observe(&wm, 0, -5, 0);
  is_int(sl_watermark_get(&wm, 0), NONE, "a huge lateness saturates instead of wrapping");
  sl_watermark_close(&wm);
}

static void idle(void) {
  sl_watermark_t wm;
  sl_watermark_init(&wm, 0, 1000);
  sl_watermark_assign(&wm, 0, NONE, 0);
  sl_watermark_assign(&wm, 1, NONE, 0);
  sl_watermark_observe(&wm, 0, 100, 0);
  sl_watermark_observe(&wm, 1, 50, 0);
  sl_watermark_observe(&wm, 0, 300, 500);
  is_int(sl_watermark_next_idle(&wm), 1000, "partition 1 turns idle at 1000");
  is_int(sl_watermark_get(&wm, 999), 50, "partition 1 holds it 999 ms after its last record");
  is_int(sl_watermark_get(&wm, 1000), 300, "and lets go at idle_timeout");

  sl_window_spec_t tum = {.type = SL_WINDOW_TUMBLING, .size_ms = 10};
  sl_watermark_observe(&wm, 1, 60, 1200);
  is_int(sl_watermark_get(&wm, 1200), 300,
         "a re-joining partition behind it does not pull it back");
  ok(sl_watermark_is_late(&wm, 1, &tum, 60), "and its old record is late");
  sl_watermark_observe(&wm, 1, 290, 1300);
  sl_watermark_observe(&wm, 0, 400, 1300);
  is_int(sl_watermark_get(&wm, 1300), 300, "it holds the watermark back again (290: stays 300)");
  sl_watermark_observe(&wm, 1, 350, 1400);
  is_int(sl_watermark_get(&wm, 1400), 350, "and decides it when it is the slowest: 350");

  sl_watermark_observe(&wm, 0, 500, 1500);
  is_int(sl_watermark_get(&wm, 2399), 350, "partition 0 active: it holds the watermark");
  is_int(sl_watermark_get(&wm, 2500), 1500 - 0,
         "all idle from 2400: the quiet stream follows the clock, now - idle_timeout - lateness = 1500");
  ok(sl_watermark_is_late(&wm, 0, &tum, 1499), "so its last windows closed (a record at 1499 is late)");
  is_int(sl_watermark_get(&wm, 100000), 99000, "and it keeps following the clock while all are quiet");
  sl_watermark_observe(&wm, 0, 500, 100001);
  is_int(sl_watermark_get(&wm, 100001), 99000, "an old record on a partition coming back does not pull it back");
  sl_watermark_observe(&wm, 1, 200000, 100002);
  sl_watermark_observe(&wm, 0, 150000, 100002);
  is_int(sl_watermark_get(&wm, 100002), 150000, "records ahead of it take over again: the slowest active, 150000");
  sl_watermark_close(&wm);

  /* With lateness, a window [s, e) of a quiet stream closes at e + lateness + idle_timeout. */
  sl_watermark_init(&wm, 2000, 5000);
  sl_watermark_assign(&wm, 0, NONE, 0);
  sl_watermark_observe(&wm, 0, 59000, 59000);
  sl_window_spec_t minute = {.type = SL_WINDOW_TUMBLING, .size_ms = 60000};
  is_int(sl_watermark_get(&wm, 64000), 57000, "quiet for 5 s less 1 ms: the last record's watermark");
  ok(!sl_watermark_is_late(&wm, 0, &minute, 59000), "the minute [0, 60 s) is open");
  is_int(sl_watermark_get(&wm, 66999), 59999, "at 60 + 2 + 5 s less 1 ms: 59999");
  ok(!sl_watermark_is_late(&wm, 0, &minute, 59000), "still open");
  is_int(sl_watermark_get(&wm, 67000), 60000, "at end + lateness + idle_timeout: 60000");
  ok(sl_watermark_is_late(&wm, 0, &minute, 59000), "the minute is closed");
  sl_watermark_close(&wm);

  /* A partition assigned with no record yet goes idle from its assignment. */
  sl_watermark_init(&wm, 0, 1000);
  sl_watermark_assign(&wm, 0, NONE, 0);
  sl_watermark_observe(&wm, 0, 100, 0);
  sl_watermark_assign(&wm, 1, NONE, 500);
  sl_watermark_observe(&wm, 0, 200, 1200);
  is_int(sl_watermark_get(&wm, 1200), NONE, "a new partition holds it until idle_timeout ...");
  is_int(sl_watermark_next_idle(&wm), 1500, "(due at 1500)");
  is_int(sl_watermark_get(&wm, 1500), 200, "... after its assignment");
  sl_watermark_close(&wm);

  sl_watermark_init(&wm, 0, 0);
  sl_watermark_assign(&wm, 0, NONE, 0);
  sl_watermark_assign(&wm, 1, NONE, 0);
  sl_watermark_observe(&wm, 0, 100, 0);
  sl_watermark_observe(&wm, 1, 50, 0);
  is_int(sl_watermark_get(&wm, INT64_MAX), 50, "idle_timeout 0: never idle");
  is_int(sl_watermark_next_idle(&wm), INT64_MAX, "and no idle deadline");
  sl_watermark_close(&wm);
}

static void drift(void) {
  sl_watermark_t wm;
  sl_watermark_init(&wm, 1000, 500);
  sl_watermark_assign(&wm, 0, NONE, 0);
  sl_watermark_assign(&wm, 1, NONE, 0);
  sl_watermark_assign(&wm, 2, NONE, 0);
  sl_watermark_observe(&wm, 0, 10000, 0);
  is_int(sl_watermark_drift(&wm, 0, 0), 0, "drift: alone with a record, partition 0 is not ahead of anyone");
  sl_watermark_observe(&wm, 1, 4000, 0);
  is_int(sl_watermark_drift(&wm, 0, 0), 6000, "6 s ahead of partition 1 (partition 2 has no record: not counted)");
  is_int(sl_watermark_drift(&wm, 1, 0), 0, "the slowest is 0 ahead");
  is_int(sl_watermark_drift(&wm, 2, 0), 0, "and one without a record too");
  is_int(sl_watermark_drift(&wm, 7, 0), 0, "an unknown partition is 0 ahead");
  sl_watermark_observe(&wm, 0, 12000, 400);
  sl_watermark_observe(&wm, 2, 12000, 400);
  is_int(sl_watermark_idle_count(&wm, 400), 0, "none idle at 400 ms");
  is_int(sl_watermark_idle_count(&wm, 500), 1, "partition 1 (last record at 0) idle at 500 ms");
  is_int(sl_watermark_drift(&wm, 0, 500), 0, "an idle slow partition does not count: no drift");
  sl_watermark_touch_one(&wm, 1, 500);
  is_int(sl_watermark_drift(&wm, 0, 500), 8000, "touched (records unread), it counts again: 8 s");
  sl_watermark_close(&wm);
}

/* An offset committed without a checkpoint watermark: the partition's
 * first record sets its floor. */
static void from_first(void) {
  sl_watermark_t wm;
  sl_window_spec_t tum = {.type = SL_WINDOW_TUMBLING, .size_ms = 10000};
  sl_watermark_init(&wm, 2000, 0);
  sl_watermark_assign(&wm, 0, SL_WATERMARK_FROM_FIRST, 0);
  is_int(sl_watermark_floor(&wm, 0), NONE, "from first: no floor before a record");
  ok(!sl_watermark_is_late(&wm, 0, &tum, 100), "nothing is late yet");
  sl_watermark_observe(&wm, 0, 25000, 0);
  is_int(sl_watermark_floor(&wm, 0), 23000, "its first record (25 s) sets the floor: 25 s - lateness = 23 s");
  ok(sl_watermark_is_late(&wm, 0, &tum, 9999), "a record of [0, 10s) is late: that window counts as emitted");
  ok(sl_watermark_is_late(&wm, 0, &tum, 15000), "and so is [10s, 20s): it ended before 23 s");
  ok(!sl_watermark_is_late(&wm, 0, &tum, 21000), "[20s, 30s), the first record's window, is open");
  sl_watermark_observe(&wm, 0, 40000, 0);
  is_int(sl_watermark_floor(&wm, 0), 23000, "later records do not move the floor (only the job's watermark does)");
  sl_watermark_close(&wm);
}

static void rebalance(void) {
  sl_watermark_t wm;
  sl_watermark_init(&wm, 0, 0);
  sl_watermark_assign(&wm, 0, NONE, 0);
  sl_watermark_assign(&wm, 7, NONE, 0);
  sl_watermark_observe(&wm, 0, 100, 0);
  sl_watermark_observe(&wm, 7, 40, 0);
  is_int(sl_watermark_get(&wm, 0), 40, "partition 7 is the slowest");
  sl_watermark_revoke(&wm, 7);
  is_int(sl_watermark_get(&wm, 0), 100, "revoked, it no longer holds the watermark back");
  is_int(sl_watermark_observe(&wm, 7, 500, 0), SL_ERANGE, "its records are refused");
  sl_watermark_assign(&wm, 7, 60, 0);
  is_int(sl_watermark_get(&wm, 0), 60, "assigned back behind: the watermark steps back to its 60");
  is_int(sl_watermark_floor(&wm, 0), 100, "partition 0 keeps its floor 100");
  is_int(sl_watermark_floor(&wm, 7), 60, "partition 7's is what it was assigned");
  sl_watermark_observe(&wm, 7, 150, 0);
  sl_watermark_observe(&wm, 0, 120, 0);
  is_int(sl_watermark_get(&wm, 0), 120, "it moves again when both pass it");
  ok(sl_watermark_floor(&wm, 0) == 120 && sl_watermark_floor(&wm, 7) == 120, "and raises both floors to 120");
  sl_watermark_revoke(&wm, 0);
  sl_watermark_revoke(&wm, 7);
  sl_watermark_revoke(&wm, 9);
  sl_watermark_revoke(&wm, -1);
  sl_watermark_revoke(&wm, 100000);
  is_int(sl_watermark_get(&wm, 0), 120, "no partition left: it stays (unknown revokes ignored)");

  is_int(sl_watermark_assign(&wm, -1, NONE, 0), SL_ERANGE, "id -1 refused");
  is_int(sl_watermark_assign(&wm, SL_WATERMARK_MAX_PARTITIONS, NONE, 0), SL_ERANGE,
         "id 4096 refused");
  is_int(sl_watermark_assign(&wm, SL_WATERMARK_MAX_PARTITIONS - 1, 500, 0), 0, "id 4095 assigned");
  is_int(sl_watermark_get(&wm, 0), 500, "with its initial watermark");
  sl_watermark_close(&wm);
}

/* Random operations against a model recomputed from scratch: the watermark
 * is max(previous, min over active partitions), stepped back to what a
 * partition is assigned when that is lower; it decreases only then.  Each
 * assigned partition's floor is what it was assigned, raised to the
 * watermark at every get. */
static uint64_t rng_state = 0x2545f4914f6cdd1du;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static void monotonic(void) {
  enum { P = 6 };
  int bad = 0, decreased = 0, lowered = 0, bad_floor = 0;
  for (int round = 0; round < 200; round++) {
    sl_watermark_t wm;
    int64_t lateness = (int64_t)(rnd() % 50), idle_to = (int64_t)(rnd() % 3) * 100;
    sl_watermark_init(&wm, lateness, idle_to);
    bool assigned[P] = {0};
    int64_t pwm[P], seen[P], floor[P], model = NONE, prev = NONE, now = 0;
    for (int step = 0; step < 300; step++) {
      int p = (int)(rnd() % P);
      bool stepped_back = false;
      now += (int64_t)(rnd() % 60);
      switch (rnd() % 8) {
      case 0:
        if (!assigned[p]) {
          int64_t init = rnd() % 2 ? NONE : (int64_t)(rnd() % 1000);
          sl_watermark_assign(&wm, p, init, now);
          assigned[p] = true;
          pwm[p] = floor[p] = init;
          seen[p] = now;
          if (init < model) {
            model = init;
            stepped_back = true;
          }
        }
        break;
      case 1:
        sl_watermark_revoke(&wm, p);
        assigned[p] = false;
        break;
      default:
        if (assigned[p]) {
          int64_t t = (int64_t)(rnd() % 2000);
          sl_watermark_observe(&wm, p, t, now);
          if (t - lateness > pwm[p]) pwm[p] = t - lateness;
          seen[p] = now;
        }
      }
      int64_t low = INT64_MAX;
      bool any_assigned = false;
      for (int i = 0; i < P; i++) {
        any_assigned |= assigned[i];
        if (assigned[i] && !(idle_to && seen[i] + idle_to <= now) && pwm[i] < low) low = pwm[i];
      }
      if (low == INT64_MAX && any_assigned) low = now - idle_to - lateness; /* all quiet: the clock */
      if (low != INT64_MAX && low > model) model = low;
      int64_t got = sl_watermark_get(&wm, now);
      if (got != model) bad++;
      if (got < prev) {
        if (stepped_back)
          lowered++;
        else
          decreased++;
      }
      prev = got;
      /* Idle partitions too: they are still the job's. */
      for (int i = 0; i < P; i++) {
        if (!assigned[i]) continue;
        if (floor[i] < model) floor[i] = model;
        if (sl_watermark_floor(&wm, i) != floor[i]) bad_floor++;
      }
    }
    sl_watermark_close(&wm);
  }
  is_int(bad, 0, "random assign/revoke/records/idle: the model's watermark");
  is_int(decreased, 0, "never decreasing but by an assignment below it");
  ok(lowered > 0, "assignments below it did lower it (%d times)", lowered);
  is_int(bad_floor, 0, "every assigned partition's floor: its assigned watermark, raised to the job's at each get");
}

/* A restart: the partition starts with the watermark its commit carried, and
 * records of windows emitted before the restart are skipped even while
 * another partition holds the job's watermark lower. */
static void restart(void) {
  sl_watermark_t wm;
  sl_watermark_init(&wm, 0, 0);
  sl_window_spec_t tum = {.type = SL_WINDOW_TUMBLING, .size_ms = 100};
  sl_watermark_assign(&wm, 0, 1000, 0);
  sl_watermark_assign(&wm, 1, NONE, 0);
  is_int(sl_watermark_get(&wm, 0), NONE, "partition 1 has no watermark yet");
  is_int(sl_watermark_floor(&wm, 0), 1000, "partition 0's floor is its restored watermark");
  is_int(sl_watermark_floor(&wm, 1), NONE, "partition 1's is its own: none");
  ok(sl_watermark_is_late(&wm, 0, &tum, 950), "re-read record of [900,1000), emitted: skipped");
  ok(!sl_watermark_is_late(&wm, 0, &tum, 1000), "[1000,1100) was not emitted: aggregated");
  ok(!sl_watermark_is_late(&wm, 1, &tum, 950), "the same window on partition 1 is open");
  sl_watermark_observe(&wm, 1, 1200, 0);
  is_int(sl_watermark_get(&wm, 0), 1000, "min(restored 1000, 1200)");
  sl_watermark_observe(&wm, 0, 1500, 0);
  is_int(sl_watermark_get(&wm, 0), 1200, "then the records decide");
  is_int(sl_watermark_floor(&wm, 0), 1200, "get raised the floor to the job's watermark once above");
  is_int(sl_watermark_floor(&wm, 99), 1200, "and is the job's for an unknown partition");
  sl_watermark_close(&wm);
}

/* A partition taken over with an older commit: the job's watermark steps
 * back to it, so that its records are rebuilt into windows, while the
 * other partitions keep their floors and their records stay late. */
static void rebalance_back(void) {
  sl_watermark_t wm;
  sl_window_spec_t tum = {.type = SL_WINDOW_TUMBLING, .size_ms = 100};
  sl_watermark_init(&wm, 0, 0);
  sl_watermark_assign(&wm, 0, NONE, 0);
  sl_watermark_assign(&wm, 1, NONE, 0);
  sl_watermark_observe(&wm, 0, 500, 0);
  sl_watermark_observe(&wm, 1, 800, 0);
  is_int(sl_watermark_get(&wm, 0), 500, "two partitions: 500");
  ok(sl_watermark_floor(&wm, 0) == 500 && sl_watermark_floor(&wm, 1) == 500, "get raises both floors to 500");
  sl_watermark_observe(&wm, 0, 900, 0);
  is_int(sl_watermark_get(&wm, 0), 800, "then 800");
  sl_watermark_revoke(&wm, 1);
  is_int(sl_watermark_get(&wm, 0), 900, "partition 1 revoked: 900");
  is_int(sl_watermark_floor(&wm, 0), 900, "partition 0's floor 900");
  is_int(sl_watermark_assign(&wm, 1, 300, 0), 0, "partition 1 assigned again with an older 300");
  is_int(wm.current, 300, "the job's watermark steps back to 300 at once");
  is_int(sl_watermark_get(&wm, 0), 300, "and stays there while partition 1 is at 300");
  is_int(sl_watermark_floor(&wm, 0), 900, "partition 0's floor stays 900");
  is_int(sl_watermark_floor(&wm, 1), 300, "partition 1's is 300");
  ok(sl_watermark_is_late(&wm, 0, &tum, 850), "a record of partition 0 in [800,900) is late for its floor");
  ok(!sl_watermark_is_late(&wm, 1, &tum, 850), "the same window is open for partition 1's records");
  ok(sl_watermark_is_late(&wm, 1, &tum, 250), "[200,300) is done for partition 1 too");
  is_int(sl_watermark_assign(&wm, 2, 5000, 0), 0, "partition 2 assigned ahead, at 5000");
  is_int(wm.current, 300, "a higher watermark does not raise the job's");
  sl_watermark_observe(&wm, 1, 1000, 0);
  is_int(sl_watermark_get(&wm, 0), 900, "min(900, 1000, 5000)");
  ok(sl_watermark_floor(&wm, 0) == 900 && sl_watermark_floor(&wm, 1) == 900 && sl_watermark_floor(&wm, 2) == 5000,
     "get raises every floor below 900 to it, and leaves 5000");
  sl_watermark_assign(&wm, 3, NONE, 0);
  is_int(wm.current, NONE, "a partition with no watermark takes the job's back to none");
  ok(sl_watermark_floor(&wm, 0) == 900 && sl_watermark_floor(&wm, 3) == NONE, "floors: 900 stays; none for it");
  ok(sl_watermark_is_late(&wm, 0, &tum, 850) && !sl_watermark_is_late(&wm, 3, &tum, 850),
     "late for partition 0, not for partition 3");
  sl_watermark_close(&wm);

  /* An idle partition is still assigned: get raises its floor too. */
  sl_watermark_init(&wm, 0, 100);
  sl_watermark_assign(&wm, 0, NONE, 0);
  sl_watermark_assign(&wm, 1, NONE, 0);
  sl_watermark_observe(&wm, 0, 500, 100);
  is_int(sl_watermark_get(&wm, 100), 500, "partition 1 idle: partition 0 decides, 500");
  is_int(sl_watermark_floor(&wm, 1), 500, "the idle partition's floor is raised to 500");
  ok(sl_watermark_is_late(&wm, 1, &tum, 450), "and its record of [400,500) is late when it wakes");
  sl_watermark_close(&wm);
}

static void meta(void) {
  char buf[SL_WATERMARK_META_MAX];
  const int64_t values[] = {0, -1, 1700000000123, INT64_MAX, INT64_MIN, -86400000};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    int64_t back = 12345;
    const char *why = "unset";
    int r = sl_watermark_meta_format(values[i], buf, sizeof buf);
    int p = sl_watermark_meta_parse(buf, strlen(buf), &back, &why);
    ok(r == 0 && p == 0 && back == values[i], "round trip of %lld through \"%s\"",
       (long long)values[i], buf);
  }
  sl_watermark_meta_format(1700000000123, buf, sizeof buf);
  is_str(buf, "sluice1 wm=1700000000123", "the format is versioned and readable");
  char small[SL_WATERMARK_META_MAX - 1] = "x";
  is_int(sl_watermark_meta_format(5, small, sizeof small), SL_ERANGE, "a short buffer is refused");
  is_str(small, "", "and left empty");

  /* What an assigned partition starts from. */
  char none_meta[SL_WATERMARK_META_MAX];
  sl_watermark_meta_format(NONE, none_meta, sizeof none_meta);
  const char *reason = "x";
  is_int(sl_watermark_assigned(none_meta, strlen(none_meta), 5, false, &reason), NONE,
         "sluice's own commit without a watermark yet: none, not the first record's");
  ok(reason == NULL, "and nothing to say about it");
  is_int(sl_watermark_assigned("sluice1 wm=1000", 15, 5, false, &reason), 1000, "sluice's watermark: kept");
  is_int(sl_watermark_assigned(NULL, 0, 5, false, &reason), SL_WATERMARK_FROM_FIRST,
         "a committed offset without metadata: from the first record");
  is_int(sl_watermark_assigned("\0", 1, 5, false, &reason), SL_WATERMARK_FROM_FIRST, "nor with a lone terminator");
  is_int(sl_watermark_assigned("kcat was here", 13, 5, false, &reason), SL_WATERMARK_FROM_FIRST,
         "metadata not sluice's: from the first record");
  ok(reason && strstr(reason, "not written by sluice"), "saying why (%s)", reason ? reason : "");
  is_int(sl_watermark_assigned(NULL, 0, -1, false, &reason), NONE, "no committed offset: none");
  is_int(sl_watermark_assigned(NULL, 0, 5, true, &reason), NONE, "processing time: none, whatever was committed");
  is_int(sl_watermark_assigned("sluice1 wm=1000", 15, 5, true, &reason), NONE, "even with a watermark");

  int64_t w = 7;
  const char *why = NULL;
  is_int(sl_watermark_meta_parse(NULL, 0, &w, &why), 0, "no metadata is not an error");
  is_int(w, NONE, "it means no watermark");
  w = 7;
  is_int(sl_watermark_meta_parse("", 0, &w, &why), 0, "empty metadata neither");
  is_int(w, NONE, "no watermark");
  is_int(sl_watermark_meta_parse("\0", 1, &w, &why), 0, "a lone terminator neither");
  is_int(sl_watermark_meta_parse("sluice1 wm=42\0", 14, &w, &why), 0,
         "a counted terminator is fine");
  is_int(w, 42, "wm=42");
  is_int(sl_watermark_meta_parse("sluice1 wm=42 extra=1", 21, &w, &why), 0,
         "later fields are skipped");
  is_int(w, 42, "wm=42");
  is_int(sl_watermark_meta_parse("sluice1 x=y wm=-3", 17, &w, &why), 0, "in any order");
  is_int(w, -3, "wm=-3");
  is_int(sl_watermark_meta_parse("sluice1 wm=42garbage", 13, &w, &why), 0, "len is respected");
  is_int(w, 42, "wm=42");

  static const struct {
    const char *text;
    size_t len; /* 0: strlen */
    const char *why;
  } bad[] = {
      {"hello", 0, "commit metadata not written by sluice"},
      {"slu", 0, "commit metadata not written by sluice"},
      {"sluice", 0, "commit metadata has a malformed version"},
      {"sluice1", 0, "commit metadata has no watermark"},
      {"sluicex wm=1", 0, "commit metadata has a malformed version"},
      {"sluice0 wm=1", 0, "commit metadata has a malformed version"},
      {"sluice-1 wm=1", 0, "commit metadata has a malformed version"},
      {"sluice 1 wm=1", 0, "commit metadata has a malformed version"},
      {"sluice2 wm=1", 0, "commit metadata is of another version of sluice"},
      {"sluice1 wm=", 0, "commit metadata has a malformed watermark"},
      {"sluice1 wm=-", 0, "commit metadata has a malformed watermark"},
      {"sluice1 wm=12x", 0, "commit metadata has a malformed watermark"},
      {"sluice1 wm=+5", 0, "commit metadata has a malformed watermark"},
      {"sluice1 wm= 5", 0, "commit metadata has a malformed watermark"},
      {"sluice1 wm=9223372036854775808", 0, "commit metadata has a malformed watermark"},
      {"sluice1 wm=-9223372036854775809", 0, "commit metadata has a malformed watermark"},
      {"sluice1 wm=99999999999999999999", 0, "commit metadata has a malformed watermark"},
      {"sluice1 wm=5 wm=6", 0, "commit metadata has two watermarks"},
      {"sluice1  wm=5", 0, "commit metadata has a malformed field"},
      {"sluice1 wm=5 ", 0, "commit metadata has a malformed field"},
      {"sluice1 =5", 0, "commit metadata has a malformed field"},
      {"sluice1 wm5", 0, "commit metadata has a malformed field"},
      {"sluice1 wm=5\0x", 14, "commit metadata has a malformed watermark"},
      {"sluice1 WM=5", 0, "commit metadata has no watermark"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t len = bad[i].len ? bad[i].len : strlen(bad[i].text);
    w = 7;
    why = NULL;
    int r = sl_watermark_meta_parse(bad[i].text, len, &w, &why);
    ok(r == SL_ESYNTAX && w == NONE, "garbage \"%s\" is refused and means no watermark",
       bad[i].text);
    is_str(why, bad[i].why, "with the reason");
  }
  is_int(sl_watermark_meta_parse("junk", 4, &w, NULL), SL_ESYNTAX, "why may be NULL");

  /* Random bytes and mutations of a valid text: always one of the two
   * answers, and a successful parse only for text that says wm=. */
  int odd = 0;
  for (int i = 0; i < 20000; i++) {
    char m[40];
    size_t len = rnd() % sizeof m;
    if (i % 2) {
      memcpy(m, "sluice1 wm=1234567", 18);
      if (len < 18) len = 18;
      for (size_t k = 18; k < len; k++) m[k] = "0123456789 =wm-x"[rnd() % 16];
      m[rnd() % len] = (char)(rnd() & 0xff);
    } else {
      for (size_t k = 0; k < len; k++) m[k] = (char)(rnd() & 0xff);
    }
    int r = sl_watermark_meta_parse(m, len, &w, &why);
    if (r != 0 && r != SL_ESYNTAX) odd++;
    if (r == SL_ESYNTAX && w != NONE) odd++;
    if (r == 0 && w != NONE && !memmem(m, len, "wm=", 3)) odd++;
  }
  is_int(odd, 0, "random and mutated metadata: parsed or refused, never anything else");
}

/* A partition with records not read yet (the reader's lag) is touched
 * each tick: its silence is not idleness, so it keeps holding the
 * watermark; touched partitions alone, never the others. */
static void lagging(void) {
  sl_watermark_t wm;
  sl_watermark_init(&wm, 0, 1000);
  sl_watermark_assign(&wm, 0, NONE, 0);
  sl_watermark_assign(&wm, 1, NONE, 0);
  sl_watermark_observe(&wm, 0, 100, 0);
  sl_watermark_observe(&wm, 1, 50, 0);
  sl_watermark_observe(&wm, 0, 5000, 1500);
  sl_watermark_touch_one(&wm, 1, 1400); /* partition 1 is behind */
  is_int(sl_watermark_get(&wm, 1500), 50, "a lagging partition is not idle: it holds the watermark at 50");
  is_int(sl_watermark_next_idle(&wm), 2400, "it turns idle 1000 ms after its last touch");
  is_int(sl_watermark_get(&wm, 2400), 5000, "once it is caught up and quiet, it lets go");
  sl_watermark_touch_one(&wm, 7, 3000); /* unknown partition: ignored */
  sl_watermark_close(&wm);
}

int main(void) {
  lagging();
  min_over_partitions();
  lateness();
  idle();
  drift();
  from_first();
  rebalance();
  monotonic();
  restart();
  rebalance_back();
  meta();
  return tap_done();
}
