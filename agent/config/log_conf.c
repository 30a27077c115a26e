/* The [log] option table, bound to sl_log_conf_t.  The level's choices are
 * in sl_log_level_t's order, so the bound index is the level.  Pure. */
#include "config/log_conf.h"

#include <stddef.h>

static const sl_opt_t log_opts[] = {
    {.name = "level", .type = SL_OPT_ENUM, .def = "\"info\"", .choices = "error|warn|info|debug",
     .offset = offsetof(sl_log_conf_t, level), .help = "Lowest level written to stderr."},
    {.name = "format", .type = SL_OPT_ENUM, .def = "\"text\"", .choices = "text|json",
     .offset = offsetof(sl_log_conf_t, format),
     .help = "Log line format: human-readable text or one JSON object per line."},
    {0},
};

const sl_section_t sl_log_section = {
    .name = "log",
    .opts = log_opts,
    .help = "Logging to stderr. Under systemd, journald stamps the lines: sluice then writes a priority prefix instead of "
             "a timestamp. SIGHUP applies changes to this section.",
    .size = sizeof(sl_log_conf_t),
};
