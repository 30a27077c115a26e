/* The daemon: owns the libuv loop, the metrics registry and the Kafka
 * bridge, starts the stages the config enables in order, and on
 * SIGINT/SIGTERM (or a stage's fatal error) stops their intake, waits for
 * their work in hand, then closes them in reverse order.  Main thread. */
#ifndef SL_DAEMON_H
#define SL_DAEMON_H

#include "daemon/config.h"

/* Runs until stopped.  Returns the process exit code: 0 after a clean
 * drain, 1 when a stage could not start, failed for good, or left work
 * unfinished at the drain deadline. */
int sl_daemon_run(const sl_config_t *cfg);

#endif
