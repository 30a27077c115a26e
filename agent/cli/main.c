/* The `sluice` command line: run, check, cat, job, plugins, reference, version.  Parses
 * arguments and hands over to the module that does the work; runs on the
 * main thread.
 *
 * Exit codes: 0 success; 1 runtime failure (cannot listen, Kafka fatal
 * error, lost acks at shutdown); 2 invalid configuration; 64 usage error. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cat.h"
#include "cli/plugins.h"
#include "cli/cli_common.h"
#include "cli/job_test.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "core/log.h"
#include "sl_build.h"

#define EXIT_CONFIG 2
#define EXIT_USAGE 64

static const char usage_main[] =
    "usage: sluice <command> [options]\n"
    "\n"
    "sluice takes fluentd's forward protocol in and publishes to Kafka.\n"
    "\n"
    "commands:\n"
    "  run -c FILE          run the daemon in the foreground\n"
    "  check -c FILE        validate a config file (--print: show the effective config)\n"
    "  cat [options] TAG    send JSON lines from stdin to a forward server\n"
    "  job test -c FILE --job NAME --input FILE\n"
    "                       run one job over a file of JSON lines, without Kafka\n"
    "  plugins [-c FILE]    list the sink plugins found, with their options\n"
    "  reference            print the config reference (Markdown), sink plugins included\n"
    "  version              print the version\n"
    "\n"
    "Run `sluice <command> --help` for a command's options.\n"
    "Exit codes: 0 ok, 1 runtime failure, 2 invalid configuration, 64 usage error.\n";

static const char usage_run[] =
    "usage: sluice run -c FILE\n"
    "\n"
    "Runs the daemon in the foreground until SIGINT or SIGTERM, which drain and stop it\n"
    "(a second one stops it at once, exit code 1).  SIGHUP reloads FILE: [log], the routes\n"
    "and shutdown_timeout apply live; other changes are logged as needing a restart; an\n"
    "invalid file is refused and the running config kept.  Logs go to stderr (under\n"
    "journald: with <N> priorities, without timestamps).  Under systemd (Type=notify) it\n"
    "reports READY=1, STATUS= lines and watchdog pings.\n"
    "\n"
    "  -c, --config FILE   config file (TOML)\n"
    "  -h, --help          this help\n"
    "\n"
    "Exit codes: 0 stopped cleanly, 1 runtime failure, 2 invalid configuration, 64 usage error.\n";

static const char usage_check[] =
    "usage: sluice check -c FILE [--print]\n"
    "\n"
    "Validates a config file and lists every error as file:line:col: key: reason.\n"
    "\n"
    "  -c, --config FILE   config file (TOML)\n"
    "  -p, --print         print the effective config (defaults filled in, secrets redacted)\n"
    "  -h, --help          this help\n"
    "\n"
    "Exit codes: 0 valid, 2 invalid, 64 usage error.\n";

static int parse_config_args(int argc, char **argv, const char *usage, const char **file, bool *print) {
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'},
      {"print", no_argument, NULL, 'p'},
      {"help", no_argument, NULL, 'h'},
      {0},
  };
  int ch;
  optind = 1;
  while ((ch = getopt_long(argc, argv, print ? "c:ph" : "c:h", longopts, NULL)) != -1) {
    switch (ch) {
    case 'c': *file = optarg; break;
    case 'p':
      if (!print) goto bad;
      *print = true;
      break;
    case 'h': fputs(usage, stdout); exit(0);
    default: goto bad;
    }
  }
  if (!*file || optind != argc) goto bad;
  return 0;
bad:
  fputs(usage, stderr);
  return EXIT_USAGE;
}

static int cmd_check(int argc, char **argv) {
  const char *file = NULL;
  bool print = false;
  int r = parse_config_args(argc, argv, usage_check, &file, &print);
  if (r) return r;
  sl_config_t *cfg = sl_cli_load_config(file);
  if (!cfg) return EXIT_CONFIG;
  if (print)
    sl_schema_print(&sl_schema_root, cfg->doc, stdout);
  else
    printf("%s: ok\n", file);
  sl_config_free(cfg);
  return 0;
}

static int cmd_run(int argc, char **argv) {
  const char *file = NULL;
  int r = parse_config_args(argc, argv, usage_run, &file, NULL);
  if (r) return r;
  sl_log_set_journal(sl_log_stderr_is_journal());
  sl_config_t *cfg = sl_cli_load_config(file);
  if (!cfg) return EXIT_CONFIG;
  sl_log_set_level((sl_log_level_t)cfg->log.level);
  sl_log_set_json(cfg->log.format == 1);
  r = sl_daemon_run(cfg);
  sl_config_free(cfg);
  return r;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage_main, stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "run") == 0) return cmd_run(argc - 1, argv + 1);
  if (strcmp(cmd, "check") == 0) return cmd_check(argc - 1, argv + 1);
  if (strcmp(cmd, "cat") == 0) return sl_cat_main(argc - 1, argv + 1);
  if (strcmp(cmd, "job") == 0) return sl_job_cli_main(argc - 1, argv + 1);
  if (strcmp(cmd, "plugins") == 0) return sl_plugins_cli_main(argc - 1, argv + 1);
  if (strcmp(cmd, "reference") == 0) {
    sl_schema_reference(&sl_schema_root, stdout);
    sl_plugins_reference(stdout);
    return 0;
  }
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
    printf("sluice %s\n", SL_VERSION);
    return 0;
  }
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    fputs(usage_main, stdout);
    return 0;
  }
  fprintf(stderr, "sluice: unknown command \"%s\"\n\n%s", cmd, usage_main);
  return EXIT_USAGE;
}
