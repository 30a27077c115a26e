/* The [[sink]] option table, bound to sl_sink_conf_t.  The section is open:
 * keys it does not name are the plugin's options.  Pure. */
#include "sinks/sink_conf.h"

#include <stddef.h>

static const sl_opt_t sink_opts[] = {
    {.name = "name", .type = SL_OPT_STRING, .flags = SL_OPT_REQUIRED, .offset = offsetof(sl_sink_conf_t, name),
     .help = "Name jobs refer to."},
    {.name = "plugin", .type = SL_OPT_STRING, .flags = SL_OPT_REQUIRED, .offset = offsetof(sl_sink_conf_t, plugin),
     .help = "Plugin to load (`redis` loads redis.so from `plugin_dirs`). Other keys go to the plugin."},
    {0},
};

const sl_section_t sl_sink_section = {
    .name = "sink",
    .flags = SL_SECTION_ARRAY | SL_SECTION_OPEN,
    .opts = sink_opts,
    .help = "Sinks for job results (plugins).",
    .size = sizeof(sl_sink_conf_t),
};
