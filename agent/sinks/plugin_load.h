/* Sink plugins: finding name.so along the search path, loading it, checking
 * its descriptor against the agent's ABI, and its options as the core
 * option machinery sees them.  The registry is process-wide, filled at
 * start on the main thread (the config check, then the jobs stage's start,
 * before the jobs thread runs) and only read afterwards.
 *
 * Search path, in order: the config's `plugin_dirs`, the folders of the
 * SLUICE_PLUGIN_PATH environment variable (colon-separated), the installed
 * plugin folder (SL_PLUGIN_DIR), and, when the running executable is the
 * one in the build tree, the build tree's plugins/ folder. */
#ifndef SL_PLUGIN_LOAD_H
#define SL_PLUGIN_LOAD_H

#include <stddef.h>

#include "config/config_schema.h"
#include "sluice/sink.h"

typedef struct {
  const sluice_sink_plugin_t *d;
  char *path;            /* owned: where it was loaded from ("(built in)" for registered ones) */
  sl_opt_t *opts;        /* owned: d->options as core options, zero-terminated */
  sl_section_t section;  /* the options as a section (binds a struct of d->conf_size) */
} sl_plugin_t;

/* Sets the config's plugin_dirs (copied), searched first. */
void sl_plugin_set_dirs(const sl_str_list_t *dirs);

/* The search path: up to max folders into out (static strings or the
 * copies above); returns how many. */
size_t sl_plugin_search_path(const char **out, size_t max);

/* The plugin `name`, loaded on first use.  NULL with a message in err
 * (errlen bytes) when: it is not found (the folders searched are listed),
 * it cannot be loaded (dlerror), it has no descriptor symbol ("not a
 * sluice sink plugin"), its ABI does not fit ("built for ABI 2.0, this
 * sluice has 1.0"), its name is not the file's, or its option table is
 * malformed. */
const sl_plugin_t *sl_plugin_find(const char *name, char *err, size_t errlen);

/* Loads the plugin at `path` (for `sluice plugins`), or NULL with err. */
const sl_plugin_t *sl_plugin_load_path(const char *path, char *err, size_t errlen);

/* Adds a descriptor linked into the process (tests).  0, or -1 when the
 * name is taken or it does not check (err). */
int sl_plugin_register(const sluice_sink_plugin_t *d, char *err, size_t errlen);

#endif
