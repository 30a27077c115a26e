/* The process's figures (process_stats.h), read the way Prometheus's own
 * client libraries read them, so that dashboards built for those read
 * sluice's the same: /proc/self/statm for resident memory, getrusage for
 * CPU time, the entries of /proc/self/fd, RLIMIT_NOFILE, and the start
 * time from the boot time and the process's start in clock ticks.  Any
 * thread. */
#include "core/process_stats.h"

#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/error.h"

/* The file's first size-1 bytes, NUL-terminated; false when unreadable. */
static bool read_small(const char *path, char *buf, size_t size) {
  FILE *f = fopen(path, "re");
  if (!f) return false;
  size_t n = fread(buf, 1, size - 1, f);
  fclose(f);
  buf[n] = 0;
  return n > 0;
}

static double resident_bytes(void) {
  char buf[256];
  unsigned long long size, resident;
  if (!read_small("/proc/self/statm", buf, sizeof buf) || sscanf(buf, "%llu %llu", &size, &resident) != 2)
    return NAN;
  return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

static double cpu_seconds(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return NAN;
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return NAN;
  double n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

static double max_fds(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return NAN;
  return rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur;
}

double sl_process_start_time(const char *self_stat, const char *proc_stat, long ticks) {
  /* The command name (field 2) is in parentheses and may hold spaces or
   * parentheses itself: fields are counted from the last ')'. */
  const char *p = self_stat ? strrchr(self_stat, ')') : NULL;
  const char *bt = proc_stat ? strstr(proc_stat, "\nbtime ") : NULL;
  if (!p || !bt || ticks <= 0) return NAN;
  p++;
  for (int field = 3; field <= 22; field++) {
    while (*p == ' ') p++;
    if (!*p) return NAN;
    if (field == 22) break;
    p += strcspn(p, " ");
  }
  char *end;
  unsigned long long start_ticks = strtoull(p, &end, 10), boot = strtoull(bt + 7, NULL, 10);
  if (end == p || boot == 0) return NAN;
  return (double)boot + (double)start_ticks / (double)ticks;
}

static double start_time(void) {
  char self[1024], proc[8192];
  if (!read_small("/proc/self/stat", self, sizeof self) || !read_small("/proc/stat", proc, sizeof proc)) return NAN;
  return sl_process_start_time(self, proc, sysconf(_SC_CLK_TCK));
}

void sl_process_stats_read(sl_process_stats_t *out) {
  out->resident_bytes = resident_bytes();
  out->cpu_seconds = cpu_seconds();
  out->open_fds = open_fds();
  out->max_fds = max_fds();
  out->start_time = start_time();
}

/* One family of one sample; nothing when v is NaN. */
static int put(sl_metrics_set_t *set, sl_metric_type_t type, const char *name, const char *help, double v,
               const sl_metric_label_t *label) {
  if (isnan(v)) return 0;
  int f = sl_metrics_set_family(set, type, name, help);
  return f < 0 ? f : sl_metrics_set_value(set, f, label, label ? 1 : 0, v);
}

int sl_process_stats_publish(const sl_process_stats_t *s, const char *version, sl_metrics_source_t *src) {
  sl_metrics_set_t *set = sl_metrics_set_new();
  if (!set) return SL_ENOMEM;
  sl_metric_label_t v = {"version", version};
  if (put(set, SL_METRIC_GAUGE, "sluice_process_resident_memory_bytes", "Resident memory of the process.",
          s->resident_bytes, NULL) ||
      put(set, SL_METRIC_COUNTER, "sluice_process_cpu_seconds_total", "User and system CPU time the process used.",
          s->cpu_seconds, NULL) ||
      put(set, SL_METRIC_GAUGE, "sluice_process_open_fds", "File descriptors the process has open.", s->open_fds,
          NULL) ||
      put(set, SL_METRIC_GAUGE, "sluice_process_max_fds", "The process's limit of open file descriptors (soft).",
          s->max_fds, NULL) ||
      put(set, SL_METRIC_GAUGE, "sluice_process_start_time_seconds", "When the process started (Unix time).",
          s->start_time, NULL) ||
      put(set, SL_METRIC_GAUGE, "sluice_build_info", "The running build (always 1).", 1, &v)) {
    sl_metrics_set_free(set);
    return SL_ENOMEM;
  }
  sl_metrics_source_publish(src, set, NULL, 0);
  return 0;
}
