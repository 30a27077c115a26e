/* sd_notify(3) from libsystemd: it reads NOTIFY_SOCKET (a path, or an
 * abstract socket written "@name") and sends one datagram per call, with
 * our credentials, which NotifyAccess=main checks.  Main thread. */
#include "daemon/notify.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "core/log.h"

void sl_notify(const char *fmt, ...) {
  static bool failed_once;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  int r = sd_notify(0, msg);
  if (r < 0 && !failed_once) {
    failed_once = true;
    sl_log(SL_LOG_DEBUG, "agent", "cannot notify systemd (NOTIFY_SOCKET): %s", strerror(-r));
  }
}

uint64_t sl_notify_watchdog_ms(void) {
  uint64_t usec = 0;
  /* > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is ours. */
  if (sd_watchdog_enabled(0, &usec) <= 0) return 0;
  uint64_t ms = usec / 2000;
  return ms ? ms : 1;
}
