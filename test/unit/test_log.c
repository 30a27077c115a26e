/* The log module as an operator reads it: text lines escape control
 * characters (a client's tag cannot forge a line), JSON lines escape for
 * JSON (with its time, level, component and message), one line per call,
 * the level threshold, journald's priority prefixes without timestamps,
 * and rate-limited lines. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "tap.h"

/* Captures what the log writes to fd 2 during fn(). */
static char captured[65536];

static const char *capture(void (*fn)(void)) {
  int fds[2];
  if (pipe(fds)) return "";
  int saved = dup(STDERR_FILENO);
  dup2(fds[1], STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fds[1]);
  ssize_t n = read(fds[0], captured, sizeof captured - 1);
  close(fds[0]);
  captured[n > 0 ? n : 0] = 0;
  return captured;
}

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

static void forged_text(void) {
  sl_log(SL_LOG_WARN, "forward", "tag %s dropped", "app\n2026-01-01T00:00:00.000Z error agent: forged\x1b[2J\x7f");
}

static void quoted_json(void) {
  sl_log(SL_LOG_WARN, "forward", "tag %s\tdropped \"x\" \\", "a\nb");
}

static void levels(void) {
  sl_log(SL_LOG_DEBUG, "t", "debug line");
  sl_log(SL_LOG_INFO, "t", "info line");
}

static void burst(void) {
  for (int i = 0; i < 25; i++) sl_log_rl(SL_LOG_WARN, "t", "burst %d", i);
}

int main(void) {
  sl_log_set_level(SL_LOG_INFO);
  const char *out = capture(forged_text);
  is_int(count_lines(out), 1, "a message with newlines stays one text line");
  ok(strstr(out, "tag app\\n2026-01-01T00:00:00.000Z error agent: forged\\x1b[2J\\x7f dropped\n") != NULL,
     "newline, escape and DEL are written escaped (\\n, \\x1b, \\x7f): %s", out);
  ok(strstr(out, " warn  forward: ") != NULL, "the line names its level and component");

  sl_log_set_json(true);
  out = capture(quoted_json);
  is_int(count_lines(out), 1, "JSON: one line");
  ok(strstr(out, "\"msg\":\"tag a\\u000ab\\u0009dropped \\\"x\\\" \\\\\"}") != NULL, "JSON: newline, tab, quote, backslash escaped: %s",
     out);
  ok(strstr(out, "\"level\":\"warn\",\"component\":\"forward\"") != NULL, "JSON: level and component fields");
  ok(starts_with(out, "{\"time\":\"20") && strstr(out, "Z\",\"level\""), "JSON: the time first, in UTC: %s", out);
  sl_log_set_journal(true);
  out = capture(quoted_json);
  ok(starts_with(out, "<4>{\"level\":\"warn\""), "JSON under journald: <4> and no time: %s", out);
  sl_log_set_json(false);
  out = capture(forged_text);
  ok(starts_with(out, "<4>warn  forward: tag app\\n"), "text under journald: <4>, no timestamp: %s", out);
  out = capture(levels);
  ok(starts_with(out, "<6>info  t: info line\n"), "info is <6>: %s", out);
  sl_log_set_journal(false);

  out = capture(levels);
  ok(strstr(out, "info line") && !strstr(out, "debug line"), "lines above the threshold are not written");

  out = capture(burst);
  is_int(count_lines(out), 10, "a hot-path burst of 25 lines is cut to 10 per 10 s");
  ok(strstr(out, "burst 9\n") && !strstr(out, "burst 10"), "the first 10 pass, the rest are suppressed");
  return tap_done();
}
