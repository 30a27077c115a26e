/* Waiting for events in tests that drive a real libuv loop (the Kafka
 * bridge, producer and consumer tests): run the loop until a condition
 * holds, with a deadline so a missing event fails the check instead of
 * hanging; and the value of a series as a scrape of a metrics registry
 * shows it.  Header-only, for tests. */
#ifndef SL_TEST_LOOP_H
#define SL_TEST_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/metrics.h"

typedef struct {
  uv_loop_t loop;
  uv_timer_t deadline;
  bool (*done)(void *arg); /* what the current test_loop_wait waits for */
  void *done_arg;
} test_loop_t;

/* Call after every callback a wait may be waiting for: stops the loop once
 * the condition holds. */
static inline void test_loop_check(test_loop_t *t) {
  if (t->done && t->done(t->done_arg)) uv_stop(&t->loop);
}

static inline void test_loop_on_deadline(uv_timer_t *timer) { uv_stop(timer->loop); }

/* Runs the loop until done(arg) holds or timeout_ms passed; returns
 * done(arg). */
static inline bool test_loop_wait(test_loop_t *t, bool (*done)(void *), void *arg, uint64_t timeout_ms) {
  t->done = done;
  t->done_arg = arg;
  if (!done(arg)) {
    uv_timer_start(&t->deadline, test_loop_on_deadline, timeout_ms, 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&t->deadline);
  }
  t->done = NULL;
  return done(arg);
}

/* Runs the loop for ms: only to show that something does NOT happen. */
static inline void test_loop_run_for(test_loop_t *t, uint64_t ms) {
  t->done = NULL;
  uv_timer_start(&t->deadline, test_loop_on_deadline, ms, 0);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  uv_timer_stop(&t->deadline);
}

/* The value of a series as a scrape shows it, a labelled family's series
 * summed (as PromQL's sum()); -1 when absent or when rendering failed. */
static inline long long test_metric(sl_metrics_t *r, const char *name) {
  sl_buf_t b = {0};
  long long v = -1;
  size_t n = strlen(name);
  if (sl_metrics_render(r, &b) == 0 && sl_buf_putc(&b, '\0') == 0) {
    for (const char *line = b.data; *line;) {
      const char *nl = strchr(line, '\n');
      if (strncmp(line, name, n) == 0 && (line[n] == ' ' || line[n] == '{')) {
        /* The value follows the line's last space; a labelled family's
         * series are summed. */
        const char *sp = line + n;
        for (const char *q = sp; *q && q != nl; q++)
          if (*q == ' ') sp = q;
        v = (v < 0 ? 0 : v) + strtoll(sp + 1, NULL, 10);
      }
      if (!nl) break;
      line = nl + 1;
    }
  }
  sl_buf_free(&b);
  return v;
}

#endif
