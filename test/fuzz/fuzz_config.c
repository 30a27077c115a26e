/* libFuzzer target: the config schema of the whole sluice.toml
 * (daemon/config.c's sl_schema_root and every section it places): the input
 * is parsed as TOML, validated (unknown keys, types, ranges, defaults
 * filled in), printed as the effective config, and, when valid, bound to
 * sl_config_t with every finish hook run (routes, jobs with their where
 * expressions and aggregates, sinks, the forward input, Kafka properties),
 * then unbound.  As sl_config_load, minus the file and the plugins' own
 * option checks (which load the plugins).  Aborts on an error message
 * without file:line:col. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"
#include "core/log.h"
#include "daemon/config.h"

#define CHECK(cond, ...)                                \
  do {                                                  \
    if (!(cond)) {                                      \
      fprintf(stderr, "fuzz_config: " __VA_ARGS__);     \
      fputc('\n', stderr);                              \
      abort();                                          \
    }                                                   \
  } while (0)

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  devnull = fopen("/dev/null", "w");
  return 0;
}

/* Every message names the file ("fuzz.toml:line:col: ...", or "fuzz.toml: "
 * for one with no position). */
static void check_diag(const sl_diag_t *d) {
  for (size_t i = 0; i < d->n; i++)
    CHECK(strncmp(d->lines[i], "fuzz.toml:", 10) == 0, "message without position: \"%s\"", d->lines[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sl_toml_value_t *doc = NULL;
  char err[512];
  if (sl_toml_parse((const char *)data, size, "fuzz.toml", &doc, err, sizeof err)) return 0;
  sl_diag_t d = {0};
  size_t errors = sl_schema_validate(&sl_schema_root, doc, "fuzz.toml", &d);
  CHECK(errors <= d.n, "%zu errors but %zu messages", errors, d.n);
  check_diag(&d);
  if (devnull) sl_schema_print(&sl_schema_root, doc, devnull);
  if (!errors) {
    sl_config_t *c = calloc(1, sizeof *c);
    CHECK(c, "out of memory");
    sl_schema_bind(&sl_schema_root, doc, c, "fuzz.toml", &d);
    check_diag(&d);
    sl_schema_unbind(&sl_schema_root, c);
    free(c);
  }
  sl_diag_free(&d);
  sl_toml_free(doc);
  return 0;
}
