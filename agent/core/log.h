/* The agent's one logging module: levelled, timestamped lines on stderr in
 * text or JSON.  Callable from any thread (a line is written with a single
 * write(2)); the level is checked before anything is formatted. */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { SL_LOG_ERROR = 0, SL_LOG_WARN, SL_LOG_INFO, SL_LOG_DEBUG } sl_log_level_t;

extern int sl_log_threshold; /* lines above this level are not formatted */

void sl_log_set_level(sl_log_level_t level);
void sl_log_set_json(bool json);
/* "error" | "warn" | "info" | "debug" -> level; -1 when unknown. */
int sl_log_level_parse(const char *s);

/* component names the module and instance: "forward", "sink:redis:latest". */
void sl_log_write(sl_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sl_log(level, component, ...)                                      \
  do {                                                                     \
    if ((int)(level) <= sl_log_threshold) sl_log_write(level, component, __VA_ARGS__); \
  } while (0)

/* Rate limit for hot-path errors: at most `burst` lines per `interval_ms`;
 * lines beyond that are counted and the count is reported with the next line
 * that is let through. */
typedef struct {
  uint64_t window_start_ms;
  uint32_t in_window;
  uint32_t suppressed;
} sl_ratelimit_t;

/* Returns the number of lines suppressed since the last one let through
 * (>= 0) when this one may be logged, -1 when it must be dropped. */
int64_t sl_ratelimit_pass(sl_ratelimit_t *rl, uint32_t burst, uint32_t interval_ms);

/* Logs at most 10 lines per 10 s per call site. */
#define sl_log_rl(level, component, fmt, ...)                                          \
  do {                                                                                 \
    static sl_ratelimit_t rl_;                                                         \
    if ((int)(level) <= sl_log_threshold) {                                            \
      int64_t s_ = sl_ratelimit_pass(&rl_, 10, 10000);                                 \
      if (s_ > 0)                                                                      \
        sl_log_write(level, component, fmt " (%lld similar lines suppressed)",         \
                     ##__VA_ARGS__, (long long)s_);                                    \
      else if (s_ == 0)                                                                \
        sl_log_write(level, component, fmt, ##__VA_ARGS__);                            \
    }                                                                                  \
  } while (0)

#endif
