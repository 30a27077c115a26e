/* What a reloaded config changes, setting by setting: the key paths whose
 * value differs (defaults filled in, so writing out a default is no
 * change), each either applied while running (the [log] section, the
 * routes, shutdown_timeout) or needing a restart (everything else: the
 * listeners, Kafka, jobs, sinks, plugin_dirs).  Each change is logged with
 * its path, never its value (a value may be a secret).  Main thread. */
#ifndef SL_RELOAD_H
#define SL_RELOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/config.h"

typedef struct {
  bool log;              /* [log] changed: apply it */
  bool routes;           /* [[route]] changed: the ingest swaps its tables */
  bool shutdown_timeout; /* applies to the next drain */
  size_t applied;        /* settings applied live */
  size_t restart;        /* settings that need a restart */
} sl_reload_plan_t;

/* Compares `next` with `live` (the config whose live settings are in
 * effect) for what applies live, and with `running` (the one the daemon
 * started with) for what needs a restart, so that a change not yet in
 * effect is named at every reload until the restart.  Logs one line per
 * changed setting. */
void sl_reload_plan(const sl_config_t *running, const sl_config_t *live, const sl_config_t *next,
                    sl_reload_plan_t *plan);

/* Calls on_change(arg, path) for each key path whose value differs between
 * two TOML trees ("kafka.brokers", "route[1].topic", "job": an array of
 * tables whose length changed).  Pure. */
void sl_toml_diff(const sl_toml_value_t *a, const sl_toml_value_t *b,
                  void (*on_change)(void *arg, const char *path), void *arg);

#endif
