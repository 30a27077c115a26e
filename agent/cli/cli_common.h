/* What several `sluice` commands share: loading the config with every
 * error listed on stderr, and JSON (jansson) turned into msgpack.  Main
 * thread of the command-line tool. */
#ifndef SL_CLI_COMMON_H
#define SL_CLI_COMMON_H

#include <jansson.h>
#include <msgpack.h>

#include "daemon/config.h"

/* Loads `file`; on failure writes every problem and a count to stderr and
 * returns NULL (exit code 2 for the caller). */
sl_config_t *sl_cli_load_config(const char *file);

/* Packs a JSON value as the msgpack value of the same shape (objects as
 * maps, integers as ints, reals as doubles). */
void sl_cli_pack_json(msgpack_packer *pk, json_t *j);

#endif
