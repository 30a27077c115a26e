/* The agent's one logging module: levelled lines on stderr in text or
 * JSON, each naming its component.  Callable from any thread (a line is
 * written with a single write(2)); the level is checked before anything is
 * formatted.  Under journald (JOURNAL_STREAM names our stderr) lines carry
 * an sd-daemon "<N>" priority prefix and no timestamp of their own: the
 * journal stamps them. */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum { SL_LOG_ERROR = 0, SL_LOG_WARN, SL_LOG_INFO, SL_LOG_DEBUG } sl_log_level_t;

/* Lines above this level are not formatted.  Set from the main thread (at
 * start and on reload), read by every thread. */
extern _Atomic int sl_log_threshold;

void sl_log_set_level(sl_log_level_t level);
void sl_log_set_json(bool json);
/* Journald mode on or off: "<N>" prefixes, no timestamps. */
void sl_log_set_journal(bool journal);
/* Whether stderr is the journal's stream: JOURNAL_STREAM ("dev:inode", as
 * systemd sets it) names the file stderr is open on. */
bool sl_log_stderr_is_journal(void);
/* "error" | "warn" | "info" | "debug" -> level; -1 when unknown. */
int sl_log_level_parse(const char *s);
const char *sl_log_level_name(sl_log_level_t level);

/* component names the module and instance: "forward", "sink:redis:latest". */
void sl_log_write(sl_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sl_log(level, component, ...)                                                          \
  do {                                                                                         \
    if ((int)(level) <= atomic_load_explicit(&sl_log_threshold, memory_order_relaxed))       \
      sl_log_write(level, component, __VA_ARGS__);                                             \
  } while (0)

/* Rate limit for hot-path errors: at most `burst` lines per `interval_ms`;
 * lines beyond that are counted.  Zeroed storage is a fresh limiter; any
 * thread may use one (counts are atomics, so under a race a line more or
 * less may pass). */
typedef struct {
  _Atomic uint64_t window_start_ms;
  _Atomic uint32_t in_window;
  _Atomic uint32_t suppressed;
} sl_ratelimit_t;

/* Returns the number of lines suppressed since the last one let through
 * (>= 0) when this one may be logged, -1 when it must be dropped. */
int64_t sl_ratelimit_pass(sl_ratelimit_t *rl, uint32_t burst, uint32_t interval_ms);

/* A call site of sl_log_rl: its limiter and what the "suppressed" line
 * names.  Static storage, registered on its first suppression so that
 * sl_log_flush_suppressed finds it. */
typedef struct sl_log_site {
  sl_ratelimit_t rl;
  const char *fmt; /* the site's format string, a literal */
  /* Set when registered (under the log's lock): */
  _Atomic bool registered;
  int level;
  char component[64];
  struct sl_log_site *next;
} sl_log_site_t;

#define SL_LOG_RL_BURST 10
#define SL_LOG_RL_INTERVAL_MS 10000

/* One site's line: "suppressed K similar messages" first when the site
 * suppressed some since its last line, then the line itself, or nothing
 * when over the limit. */
void sl_log_site_write(sl_log_site_t *site, sl_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes the "suppressed K similar messages" line of every site whose
 * window has ended with lines suppressed and no line let through since.
 * Called once a second by the daemon, so that the count of a burst shows
 * even when the site stays quiet afterwards.  Any thread. */
void sl_log_flush_suppressed(void);

/* Logs at most SL_LOG_RL_BURST lines per SL_LOG_RL_INTERVAL_MS per call
 * site. */
#define sl_log_rl(level, component, fmt_, ...)                                                 \
  do {                                                                                         \
    static sl_log_site_t site_ = {.fmt = fmt_};                                                \
    if ((int)(level) <= atomic_load_explicit(&sl_log_threshold, memory_order_relaxed))       \
      sl_log_site_write(&site_, level, component, fmt_, ##__VA_ARGS__);                        \
  } while (0)

#endif
