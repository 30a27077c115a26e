/* The pieces several commands share (cli_common.h).  Main thread of the
 * command-line tool. */
#include "cli/cli_common.h"

#include <stdio.h>
#include <string.h>

sl_config_t *sl_cli_load_config(const char *file) {
  sl_diag_t d = {0};
  sl_config_t *cfg = NULL;
  if (sl_config_load(file, &cfg, &d)) {
    for (size_t i = 0; i < d.n; i++) fprintf(stderr, "%s\n", d.lines[i]);
    fprintf(stderr, "%s: %zu error%s\n", file, d.n, d.n == 1 ? "" : "s");
  }
  sl_diag_free(&d);
  return cfg;
}

