/* systemd's service notifications (sd_notify(3)): READY=1, STATUS= lines,
 * RELOADING=1, STOPPING=1 and watchdog pings, sent to the socket systemd
 * names in NOTIFY_SOCKET.  Without it (not started by systemd, or not
 * Type=notify) every call does nothing and says nothing.  Main thread. */
#ifndef SL_NOTIFY_H
#define SL_NOTIFY_H

#include <stdint.h>

/* Sends newline-separated assignments ("READY=1\nSTATUS=ready"); a failure
 * to send is logged once at debug level and otherwise ignored: systemd
 * would only miss a state, the daemon goes on. */
void sl_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The interval at which to send WATCHDOG=1 (half of WATCHDOG_USEC, in ms)
 * when systemd asks this process for watchdog pings; 0 when it does not. */
uint64_t sl_notify_watchdog_ms(void);

#endif
