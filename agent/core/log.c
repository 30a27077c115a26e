/* Formats and writes log lines to stderr.  Any thread: each line is built in
 * a local buffer and written with one write(2), so lines never interleave. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int sl_log_threshold = SL_LOG_INFO;
static bool log_json;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void sl_log_set_level(sl_log_level_t level) { sl_log_threshold = (int)level; }
void sl_log_set_json(bool json) { log_json = json; }

int sl_log_level_parse(const char *s) {
  for (int i = 0; i < 4; i++)
    if (strcmp(s, level_names[i]) == 0) return i;
  return -1;
}

static size_t json_escape(char *dst, size_t cap, const char *src) {
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)src; *p && n + 7 < cap; p++) {
    if (*p == '"' || *p == '\\') {
      dst[n++] = '\\';
      dst[n++] = (char)*p;
    } else if (*p < 0x20) {
      n += (size_t)snprintf(dst + n, cap - n, "\\u%04x", *p);
    } else {
      dst[n++] = (char)*p;
    }
  }
  dst[n] = 0;
  return n;
}

/* Text lines escape control characters, so that a client's tag or host
 * name with a newline cannot forge a log line: \n, \r, \t and \xNN. */
static size_t text_escape(char *dst, size_t cap, const char *src) {
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)src; *p && n + 5 < cap; p++) {
    if (*p >= 0x20 && *p != 0x7f) {
      dst[n++] = (char)*p;
      continue;
    }
    dst[n++] = '\\';
    switch (*p) {
    case '\n': dst[n++] = 'n'; break;
    case '\r': dst[n++] = 'r'; break;
    case '\t': dst[n++] = 't'; break;
    default:
      dst[n++] = 'x';
      dst[n++] = hex[*p >> 4];
      dst[n++] = hex[*p & 15];
    }
  }
  dst[n] = 0;
  return n;
}

void sl_log_write(sl_log_level_t level, const char *component, const char *fmt, ...) {
  char msg[2048], line[4608], ts[40];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);

  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct tm tm;
  gmtime_r(&now.tv_sec, &tm);
  size_t tl = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(ts + tl, sizeof ts - tl, ".%03ldZ", now.tv_nsec / 1000000);

  int n;
  if (log_json) {
    char emsg[4200];
    json_escape(emsg, sizeof emsg, msg);
    n = snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"%s\"}\n",
                 ts, level_names[level], component, emsg);
  } else {
    char emsg[4200];
    text_escape(emsg, sizeof emsg, msg);
    n = snprintf(line, sizeof line, "%s %-5s %s: %s\n", ts, level_names[level], component, emsg);
  }
  if (n < 0) return;
  if ((size_t)n >= sizeof line) {
    n = sizeof line;
    line[n - 1] = '\n';
  }
  ssize_t w = write(STDERR_FILENO, line, (size_t)n);
  (void)w;
}

int64_t sl_ratelimit_pass(sl_ratelimit_t *rl, uint32_t burst, uint32_t interval_ms) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  uint64_t ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
  if (ms - rl->window_start_ms >= interval_ms) {
    rl->window_start_ms = ms;
    rl->in_window = 0;
  }
  if (rl->in_window >= burst) {
    rl->suppressed++;
    return -1;
  }
  rl->in_window++;
  int64_t s = rl->suppressed;
  rl->suppressed = 0;
  return s;
}
