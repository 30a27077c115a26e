/* The process's figures (agent/core/process_stats.c): read from this
 * test's own process they are plausible and follow what it does (a file
 * opened, CPU spent), the start time is read past a command name with
 * spaces and parentheses, and the text is what Prometheus reads. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/process_stats.h"
#include "tap.h"

static void reading(void) {
  sl_process_stats_t a, b;
  sl_process_stats_read(&a);
  ok(a.resident_bytes > 1024 * 1024, "resident memory above 1 MiB (%.0f)", a.resident_bytes);
  ok(a.open_fds >= 3, "stdin, stdout, stderr at least (%.0f)", a.open_fds);
  ok(a.max_fds >= a.open_fds, "the limit is at least what is open (%.0f)", a.max_fds);
  time_t now = time(NULL);
  ok(fabs(a.start_time - (double)now) < 120, "started within the last two minutes (%.2f vs %lld)", a.start_time,
     (long long)now);
  int fd = open("/dev/null", O_RDONLY);
  /* Spins on clock() itself: 50 ms of CPU time, whatever the compiler keeps. */
  clock_t until = clock() + CLOCKS_PER_SEC / 20;
  while (clock() < until) {
  }
  sl_process_stats_read(&b);
  ok(b.open_fds == a.open_fds + 1, "one more file open: one more fd");
  ok(b.cpu_seconds >= a.cpu_seconds + 0.04, "50 ms of work shows in CPU seconds (%.3f -> %.3f)", a.cpu_seconds,
     b.cpu_seconds);
  ok(b.start_time == a.start_time, "the start time does not move");
  close(fd);
}

static void start_time(void) {
  /* Field 22 is the start in clock ticks after boot. */
  const char *self = "4242 (odd) (name 1 2) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 12345 1000 200";
  const char *proc = "cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n";
  ok(sl_process_start_time(self, proc, 100) == 1700000000 + 123.45, "boot time + start ticks / ticks a second");
  ok(isnan(sl_process_start_time(self, "cpu 1\n", 100)), "no btime: NaN");
  ok(isnan(sl_process_start_time("4242 (x) S 1 2", proc, 100)), "a short stat line: NaN");
  ok(isnan(sl_process_start_time(NULL, proc, 100)), "no stat: NaN");
}

static void text(void) {
  sl_process_stats_t s = {.resident_bytes = 5e6, .cpu_seconds = 1.25, .open_fds = 12, .max_fds = INFINITY,
                          .start_time = 1700000000.5};
  sl_metrics_t *m = sl_metrics_new();
  sl_metrics_source_t *src = sl_metrics_source_new(m);
  sl_buf_t b = {0};
  is_int(sl_process_stats_publish(&s, "0.1.0", src), 0, "published");
  sl_metrics_render(m, &b);
  sl_buf_putc(&b, 0);
  ok(strstr(b.data, "# TYPE sluice_process_cpu_seconds_total counter\nsluice_process_cpu_seconds_total 1.25\n") != NULL,
     "CPU seconds: a counter with its fraction");
  ok(strstr(b.data, "\nsluice_process_resident_memory_bytes 5000000\n") != NULL, "resident bytes as an integer");
  ok(strstr(b.data, "\nsluice_process_max_fds +Inf\n") != NULL, "no limit: +Inf");
  ok(strstr(b.data, "\nsluice_process_start_time_seconds 1700000000.5\n") != NULL, "start time");
  ok(strstr(b.data, "# TYPE sluice_build_info gauge\nsluice_build_info{version=\"0.1.0\"} 1\n") != NULL,
     "build info");
  sl_buf_free(&b);
  s.open_fds = NAN;
  s.cpu_seconds = 2.5;
  is_int(sl_process_stats_publish(&s, "0.1.0", src), 0, "published again without open fds");
  sl_metrics_render(m, &b);
  sl_buf_putc(&b, 0);
  ok(!strstr(b.data, "open_fds"), "a figure that could not be read is left out");
  ok(strstr(b.data, "\nsluice_process_cpu_seconds_total 2.5\n") && !strstr(b.data, " 1.25\n"),
     "the new figures replace the old");
  sl_buf_free(&b);
  sl_metrics_source_free(src);
  sl_metrics_free(m);
}

int main(void) {
  reading();
  start_time();
  text();
  return tap_done();
}
