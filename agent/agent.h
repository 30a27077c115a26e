/* The daemon: owns the libuv loop, starts the stages the config enables
 * (HTTP, Kafka producer, ingest, forward input), and stops them on
 * SIGINT/SIGTERM after draining.  Main thread. */
#ifndef SL_AGENT_H
#define SL_AGENT_H

#include "config.h"

/* Runs until stopped.  Returns the process exit code: 0 after a clean
 * drain, 1 when a stage could not start or records were left unacked. */
int sl_agent_run(const sl_config_t *cfg);

#endif
