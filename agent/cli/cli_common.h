/* What several `sluice` commands share: loading the config with every
 * error listed on stderr.  Main thread of the command-line tool. */
#ifndef SL_CLI_COMMON_H
#define SL_CLI_COMMON_H

#include "daemon/config.h"

/* Loads `file`; on failure writes every problem and a count to stderr and
 * returns NULL (exit code 2 for the caller). */
sl_config_t *sl_cli_load_config(const char *file);

#endif
