/* The process's own figures, read from /proc/self at scrape time and
 * published to the metrics registry as a set (metrics.h): resident memory,
 * CPU seconds, open and maximum file descriptors, start time, and build
 * information.
 *
 * A published set rather than families of the registry because they are
 * read, not counted: the registry's counters hold whole numbers, and CPU
 * time is a counter of fractional seconds.  Any thread; reading /proc is a
 * few small file reads. */
#ifndef SL_PROCESS_STATS_H
#define SL_PROCESS_STATS_H

#include "core/metrics.h"

typedef struct {
  double resident_bytes; /* NaN: unreadable */
  double cpu_seconds;    /* user + system */
  double open_fds;       /* NaN: unreadable */
  double max_fds;        /* the soft limit; +Inf when unlimited */
  double start_time;     /* Unix time, seconds; NaN: unreadable */
} sl_process_stats_t;

/* Fills *out from /proc/self and getrusage/getrlimit.  A figure that
 * cannot be read is NaN (and left out of the text). */
void sl_process_stats_read(sl_process_stats_t *out);

/* Shows sluice_process_* and sluice_build_info{version} from s in src's
 * place in the registry's output.  0 or SL_ENOMEM (src keeps what it
 * showed). */
int sl_process_stats_publish(const sl_process_stats_t *s, const char *version, sl_metrics_source_t *src);

/* The start time from the contents of /proc/self/stat and /proc/stat,
 * with ticks clock ticks a second; NaN when they do not say.  (Exposed for
 * the unit test.) */
double sl_process_start_time(const char *self_stat, const char *proc_stat, long ticks);

#endif
