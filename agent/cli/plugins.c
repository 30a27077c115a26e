/* `sluice plugins` and the plugins' part of `sluice reference`. */
#include "cli/plugins.h"

#include <dirent.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_common.h"
#include "sinks/plugin_load.h"

#define EXIT_USAGE 64
#define MAX_FOUND 64

static const char usage_plugins[] =
    "usage: sluice plugins [-c FILE]\n"
    "\n"
    "Lists the sink plugins found on the search path (the config's plugin_dirs with -c, then\n"
    "SLUICE_PLUGIN_PATH, then the installed plugin folder), each with its version, file and\n"
    "options; a file that is not a usable plugin is listed with the reason.\n"
    "\n"
    "  -c, --config FILE   take plugin_dirs from this config\n"
    "  -h, --help          this help\n";

static int by_name(const void *a, const void *b) {
  const sl_plugin_t *x = *(const sl_plugin_t *const *)a, *y = *(const sl_plugin_t *const *)b;
  return strcmp(x->d->name, y->d->name);
}

/* Loads every *.so on the search path; the plugins into found (sorted),
 * problems to `problems` when not NULL.  Returns how many were found. */
static size_t scan(const sl_plugin_t **found, size_t max, FILE *problems) {
  const char *dirs[32];
  size_t nd = sl_plugin_search_path(dirs, 32), n = 0;
  for (size_t i = 0; i < nd; i++) {
    DIR *d = opendir(dirs[i]);
    if (!d) continue;
    struct dirent *e;
    while ((e = readdir(d))) {
      size_t l = strlen(e->d_name);
      if (l < 4 || strcmp(e->d_name + l - 3, ".so")) continue;
      char path[PATH_MAX], err[1024];
      snprintf(path, sizeof path, "%s/%s", dirs[i], e->d_name);
      const sl_plugin_t *p = sl_plugin_load_path(path, err, sizeof err);
      if (!p) {
        if (problems) fprintf(problems, "%s\n", err);
        continue;
      }
      bool dup = false;
      for (size_t k = 0; k < n; k++) dup |= found[k] == p;
      if (!dup && n < max) found[n++] = p;
    }
    closedir(d);
  }
  qsort(found, n, sizeof *found, by_name);
  return n;
}

void sl_plugins_reference(FILE *out) {
  const sl_plugin_t *found[MAX_FOUND];
  size_t n = scan(found, MAX_FOUND, NULL);
  for (size_t i = 0; i < n; i++) {
    fprintf(out, "\n#### Sink plugin `%s`\n\n%s Options of a `[[sink]]` with `plugin = \"%s\"`, beside the keys above.\n",
            found[i]->d->name, found[i]->d->description ? found[i]->d->description : "", found[i]->d->name);
    sl_schema_reference_section(&found[i]->section, "", out);
  }
}

int sl_plugins_cli_main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'},
      {"help", no_argument, NULL, 'h'},
      {0},
  };
  const char *file = NULL;
  int ch;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
    switch (ch) {
    case 'c': file = optarg; break;
    case 'h': fputs(usage_plugins, stdout); return 0;
    default: fputs(usage_plugins, stderr); return EXIT_USAGE;
    }
  }
  if (optind != argc) {
    fputs(usage_plugins, stderr);
    return EXIT_USAGE;
  }
  if (file) {
    sl_config_t *cfg = sl_cli_load_config(file);
    if (!cfg) return 2;
    sl_config_free(cfg); /* its plugin_dirs are set */
  }
  const sl_plugin_t *found[MAX_FOUND];
  size_t n = scan(found, MAX_FOUND, stderr);
  const char *dirs[32];
  size_t nd = sl_plugin_search_path(dirs, 32);
  printf("search path:");
  for (size_t i = 0; i < nd; i++) printf(" %s", dirs[i]);
  printf("\n");
  for (size_t i = 0; i < n; i++) {
    const sl_plugin_t *p = found[i];
    printf("\n%s %s (ABI %u.%u) %s\n  %s\n", p->d->name, p->d->version ? p->d->version : "?", p->d->abi_major,
           p->d->abi_minor, p->path, p->d->description ? p->d->description : "");
    for (const sl_opt_t *o = p->opts; o->name; o++)
      printf("  %-18s %s%s%s  %s\n", o->name, (o->flags & SL_OPT_REQUIRED) ? "required" : "default ",
             (o->flags & SL_OPT_REQUIRED) ? "" : " ", (o->flags & SL_OPT_REQUIRED) ? "" : (o->def ? o->def : "unset"),
             o->help ? o->help : "");
  }
  if (!n) printf("\nno plugin found\n");
  return 0;
}
