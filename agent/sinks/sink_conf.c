/* The [[sink]] option table, bound to sl_sink_conf_t: the keys every sink
 * has (its name, its plugin, and how the host batches, retries and gives
 * up).  The section is open: keys it does not name are the plugin's
 * options.  Pure. */
#include "sinks/sink_conf.h"

#include <stddef.h>

#define MS 1000000LL

static const sl_opt_t sink_opts[] = {
    {.name = "name", .type = SL_OPT_STRING, .flags = SL_OPT_REQUIRED, .offset = offsetof(sl_sink_conf_t, name),
     .help = "Name jobs refer to."},
    {.name = "plugin", .type = SL_OPT_STRING, .flags = SL_OPT_REQUIRED, .offset = offsetof(sl_sink_conf_t, plugin),
     .help = "Plugin to load (`file` loads file.so from `plugin_dirs`, then the installed plugin folder). Keys "
             "not listed here go to the plugin (`sluice plugins` lists each plugin's)."},
    {.name = "batch_size", .type = SL_OPT_INT, .def = "1000", .min = 1, .max = 1000000,
     .offset = offsetof(sl_sink_conf_t, batch_size), .help = "Rows handed to the plugin in one write at most."},
    {.name = "flush_interval", .type = SL_OPT_DURATION, .def = "\"0s\"", .unit = "duration", .min = 0,
     .max = 3600 * 1000 * MS, .offset = offsetof(sl_sink_conf_t, flush_interval_ns),
     .help = "How often the plugin's flush is called (for plugins that buffer); 0: never."},
    {.name = "initial_backoff", .type = SL_OPT_DURATION, .def = "\"100ms\"", .unit = "duration", .min = 1 * MS,
     .max = 3600 * 1000 * MS, .offset = offsetof(sl_sink_conf_t, initial_backoff_ns),
     .help = "Wait before the first retry of rows that failed with a retryable error."},
    {.name = "max_backoff", .type = SL_OPT_DURATION, .def = "\"30s\"", .unit = "duration", .min = 1 * MS,
     .max = 3600 * 1000 * MS, .offset = offsetof(sl_sink_conf_t, max_backoff_ns),
     .help = "The doubling wait between retries stops growing here."},
    {.name = "jitter", .type = SL_OPT_BOOL, .def = "true", .offset = offsetof(sl_sink_conf_t, jitter),
     .help = "Wait a random 50-100% of each backoff, so that sinks recovering together do not retry in step."},
    {.name = "max_retries", .type = SL_OPT_INT, .def = "0", .min = 0, .max = 1000000000,
     .offset = offsetof(sl_sink_conf_t, max_retries),
     .help = "Retries of a row before it is given up (see on_failure); 0: no limit."},
    {.name = "max_elapsed", .type = SL_OPT_DURATION, .def = "\"0s\"", .unit = "duration", .min = 0,
     .max = 7 * 86400 * 1000 * MS, .offset = offsetof(sl_sink_conf_t, max_elapsed_ns),
     .help = "Time after a row's first attempt when it is given up (see on_failure); 0: no limit."},
    {.name = "on_failure", .type = SL_OPT_ENUM, .def = "\"block\"", .choices = "block|drop|dead_letter",
     .offset = offsetof(sl_sink_conf_t, on_failure),
     .help = "Rows the sink refuses for good, or that ran out of retries: `block` retries them without end "
             "(the job stops committing, and pauses reading once the sink is far enough behind, until the sink "
             "takes them); `drop` counts and logs them; `dead_letter` writes them to `dead_letter_topic` in "
             "Kafka with the error and the sink's name in headers."},
    {.name = "dead_letter_topic", .type = SL_OPT_STRING, .offset = offsetof(sl_sink_conf_t, dead_letter_topic),
     .help = "The Kafka topic of on_failure = \"dead_letter\"."},
    {0},
};

static void sink_finish(void *conf, sl_bind_ctx_t *ctx) {
  sl_sink_conf_t *s = conf;
  if (s->on_failure == SL_SINK_ON_FAILURE_DEAD_LETTER && !s->dead_letter_topic)
    sl_bind_error(ctx, &s->on_failure, "on_failure = \"dead_letter\" needs dead_letter_topic");
  if (s->max_backoff_ns < s->initial_backoff_ns)
    sl_bind_error(ctx, &s->max_backoff_ns, "max_backoff is below initial_backoff");
}

const sl_section_t sl_sink_section = {
    .name = "sink",
    .flags = SL_SECTION_ARRAY | SL_SECTION_OPEN,
    .opts = sink_opts,
    .help = "Sinks for job results: each an instance of a plugin.",
    .size = sizeof(sl_sink_conf_t),
    .finish = sink_finish,
};
