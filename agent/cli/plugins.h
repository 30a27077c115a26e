/* `sluice plugins`: the sink plugins found on the search path, and their
 * part of `sluice reference`.  Main thread of the command-line tool. */
#ifndef SL_CLI_PLUGINS_H
#define SL_CLI_PLUGINS_H

#include <stdio.h>

int sl_plugins_cli_main(int argc, char **argv);

/* Appends a section per plugin found (name order) to the reference. */
void sl_plugins_reference(FILE *out);

#endif
