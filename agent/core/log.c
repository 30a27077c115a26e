/* Formats and writes log lines to stderr.  Any thread: each line is built in
 * a local buffer and written with one write(2), so lines never interleave;
 * the settings are atomics set by the main thread (at start, on reload). */
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Atomic int sl_log_threshold = SL_LOG_INFO;
static _Atomic bool log_json;
static _Atomic bool log_journal;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
/* sd-daemon(3) priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
static const char level_prefix[] = {'3', '4', '6', '7'};

/* Sites that suppressed a line, for sl_log_flush_suppressed. */
static pthread_mutex_t sites_lock = PTHREAD_MUTEX_INITIALIZER;
static sl_log_site_t *sites;

void sl_log_set_level(sl_log_level_t level) { atomic_store(&sl_log_threshold, (int)level); }
void sl_log_set_json(bool json) { atomic_store(&log_json, json); }
void sl_log_set_journal(bool journal) { atomic_store(&log_journal, journal); }

bool sl_log_stderr_is_journal(void) {
  const char *env = getenv("JOURNAL_STREAM");
  unsigned long long dev, ino;
  struct stat st;
  if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st)) return false;
  return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int sl_log_level_parse(const char *s) {
  for (int i = 0; i < 4; i++)
    if (strcmp(s, level_names[i]) == 0) return i;
  return -1;
}

const char *sl_log_level_name(sl_log_level_t level) { return level_names[level]; }

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

/* "2024-05-01T10:00:00.123Z", or "" under journald (it stamps lines). */
static void timestamp(char *ts, size_t len) {
  ts[0] = 0;
  if (atomic_load_explicit(&log_journal, memory_order_relaxed)) return;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct tm tm;
  gmtime_r(&now.tv_sec, &tm);
  size_t tl = strftime(ts, len, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(ts + tl, len - tl, ".%03ldZ", now.tv_nsec / 1000000);
}

static void write_line(sl_log_level_t level, const char *component, const char *msg) {
  char line[4608], ts[40], prefix[4] = "";
  char emsg[4200];
  timestamp(ts, sizeof ts);
  if (atomic_load_explicit(&log_journal, memory_order_relaxed))
    snprintf(prefix, sizeof prefix, "<%c>", level_prefix[level]);
  int n;
  if (atomic_load_explicit(&log_json, memory_order_relaxed)) {
    char ecomp[200];
    json_escape(emsg, sizeof emsg, msg);
    json_escape(ecomp, sizeof ecomp, component);
    n = snprintf(line, sizeof line, "%s{%s%s%s\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"%s\"}\n", prefix,
                 ts[0] ? "\"time\":\"" : "", ts, ts[0] ? "\"," : "", level_names[level], ecomp, emsg);
  } else {
    text_escape(emsg, sizeof emsg, msg);
    n = snprintf(line, sizeof line, "%s%s%s%-5s %s: %s\n", prefix, ts, ts[0] ? " " : "", level_names[level],
                 component, emsg);
  }
  if (n < 0) return;
  if ((size_t)n >= sizeof line) {
    n = sizeof line;
    line[n - 1] = '\n';
  }
  ssize_t w = write(STDERR_FILENO, line, (size_t)n);
  (void)w;
}

static void write_va(sl_log_level_t level, const char *component, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void write_va(sl_log_level_t level, const char *component, const char *fmt, va_list ap) {
  char msg[2048];
  vsnprintf(msg, sizeof msg, fmt, ap);
  write_line(level, component, msg);
}

void sl_log_write(sl_log_level_t level, const char *component, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  write_va(level, component, fmt, ap);
  va_end(ap);
}

static uint64_t now_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

int64_t sl_ratelimit_pass(sl_ratelimit_t *rl, uint32_t burst, uint32_t interval_ms) {
  uint64_t ms = now_ms();
  uint64_t start = atomic_load_explicit(&rl->window_start_ms, memory_order_relaxed);
  /* One thread opens the new window; the others count in it. */
  if (ms - start >= interval_ms &&
      atomic_compare_exchange_strong_explicit(&rl->window_start_ms, &start, ms, memory_order_relaxed,
                                              memory_order_relaxed))
    atomic_store_explicit(&rl->in_window, 0, memory_order_relaxed);
  if (atomic_fetch_add_explicit(&rl->in_window, 1, memory_order_relaxed) >= burst) {
    atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
    return -1;
  }
  return atomic_exchange_explicit(&rl->suppressed, 0, memory_order_relaxed);
}

static void site_register(sl_log_site_t *site, sl_log_level_t level, const char *component) {
  pthread_mutex_lock(&sites_lock);
  if (!atomic_load(&site->registered)) {
    site->level = (int)level;
    snprintf(site->component, sizeof site->component, "%s", component);
    site->next = sites;
    sites = site;
    atomic_store(&site->registered, true);
  }
  pthread_mutex_unlock(&sites_lock);
}

static void write_suppressed(sl_log_level_t level, const char *component, uint64_t n, const char *fmt) {
  char msg[600];
  snprintf(msg, sizeof msg, "suppressed %llu similar messages (at most %d per %d s from one place)%s%s%s",
           (unsigned long long)n, SL_LOG_RL_BURST, SL_LOG_RL_INTERVAL_MS / 1000, fmt ? ": \"" : "",
           fmt ? fmt : "", fmt ? "\"" : "");
  write_line(level, component, msg);
}

void sl_log_site_write(sl_log_site_t *site, sl_log_level_t level, const char *component, const char *fmt, ...) {
  int64_t suppressed = sl_ratelimit_pass(&site->rl, SL_LOG_RL_BURST, SL_LOG_RL_INTERVAL_MS);
  if (suppressed < 0) {
    if (!atomic_load_explicit(&site->registered, memory_order_acquire)) site_register(site, level, component);
    return;
  }
  if (suppressed > 0) write_suppressed(level, component, (uint64_t)suppressed, NULL);
  va_list ap;
  va_start(ap, fmt);
  write_va(level, component, fmt, ap);
  va_end(ap);
}

void sl_log_flush_suppressed(void) {
  uint64_t ms = now_ms();
  pthread_mutex_lock(&sites_lock);
  for (sl_log_site_t *s = sites; s; s = s->next) {
    if (!atomic_load_explicit(&s->rl.suppressed, memory_order_relaxed) ||
        ms - atomic_load_explicit(&s->rl.window_start_ms, memory_order_relaxed) < SL_LOG_RL_INTERVAL_MS)
      continue;
    uint32_t n = atomic_exchange_explicit(&s->rl.suppressed, 0, memory_order_relaxed);
    if (n) write_suppressed((sl_log_level_t)s->level, s->component, n, s->fmt);
  }
  pthread_mutex_unlock(&sites_lock);
}
