/* The [[job]] option table, bound to sl_job_conf_t.  Pure. */
#include "jobs/job_conf.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/engine.h"

#define MS 1000000LL

static const sl_opt_t window_opts[] = {
    {.name = "type", .type = SL_OPT_ENUM, .choices = "tumbling|hopping|session", .flags = SL_OPT_REQUIRED,
     .offset = offsetof(sl_window_conf_t, type), .help = "Window kind."},
    {.name = "size", .type = SL_OPT_DURATION, .unit = "duration", .min = 1 * MS,
     .offset = offsetof(sl_window_conf_t, size_ns), .help = "Window length (tumbling, hopping)."},
    {.name = "advance", .type = SL_OPT_DURATION, .unit = "duration", .min = 1 * MS,
     .offset = offsetof(sl_window_conf_t, advance_ns), .help = "Hop (hopping)."},
    {.name = "gap", .type = SL_OPT_DURATION, .unit = "duration", .min = 1 * MS,
     .offset = offsetof(sl_window_conf_t, gap_ns), .help = "Inactivity gap (session)."},
    {0},
};
static const sl_section_t window_schema = {
    .name = "window", .opts = window_opts, .help = "Window definition.", .size = sizeof(sl_window_conf_t)};

static const sl_opt_t time_opts[] = {
    {.name = "field", .type = SL_OPT_STRING, .flags = SL_OPT_REQUIRED, .offset = offsetof(sl_time_conf_t, field),
     .help = "Record field (a path) holding the event time."},
    {.name = "format", .type = SL_OPT_ENUM, .def = "\"epoch\"", .choices = "epoch|rfc3339|epoch_ms",
     .offset = offsetof(sl_time_conf_t, format), .help = "How the field is written."},
    {0},
};
static const sl_section_t time_schema = {
    .name = "time", .opts = time_opts, .help = "Event time from a record field.", .size = sizeof(sl_time_conf_t)};

static const sl_opt_t emit_opts[] = {
    {.name = "every", .type = SL_OPT_DURATION, .flags = SL_OPT_REQUIRED, .unit = "duration", .min = 10 * MS,
     .max = 86400 * 1000 * (int64_t)MS, .offset = 0, .help = "How often open windows' rows are sent."},
    {0},
};
static const sl_section_t emit_schema = {
    .name = "emit", .opts = emit_opts, .help = "Early results.", .size = sizeof(int64_t)};

static const sl_opt_t job_opts[] = {
    {.name = "name", .type = SL_OPT_STRING, .flags = SL_OPT_REQUIRED, .offset = offsetof(sl_job_conf_t, name),
     .help = "Job name, part of every result id."},
    {.name = "topics", .type = SL_OPT_STRING_LIST, .flags = SL_OPT_REQUIRED, .offset = offsetof(sl_job_conf_t, topics),
     .help = "Source topics."},
    {.name = "where", .type = SL_OPT_STRING, .offset = offsetof(sl_job_conf_t, where), .help = "Filter expression."},
    {.name = "group_by", .type = SL_OPT_STRING_LIST, .def = "[]", .offset = offsetof(sl_job_conf_t, group_by),
     .help = "Group key fields."},
    {.name = "window", .type = SL_OPT_TABLE, .flags = SL_OPT_REQUIRED, .sub = &window_schema,
     .offset = offsetof(sl_job_conf_t, window),
     .help = "`{ type = \"tumbling\", size = \"10s\" }`; hopping adds `advance`, session uses `gap`."},
    {.name = "time", .type = SL_OPT_ENUM, .def = "\"event\"", .choices = "event|processing", .sub = &time_schema,
     .offset = offsetof(sl_job_conf_t, time), .sub_offset = offsetof(sl_job_conf_t, time_tab),
     .help = "Which clock assigns windows: `\"event\"` (the Kafka timestamp, which ingest sets from the "
             "forward event time), `\"processing\"` (the jobs thread's clock), or "
             "`{ field = \"ts\", format = \"epoch\" }` (a record field: `epoch` seconds, `epoch_ms`, "
             "`rfc3339`)."},
    {.name = "allowed_lateness", .type = SL_OPT_DURATION, .def = "\"0s\"", .unit = "duration",
     .offset = offsetof(sl_job_conf_t, allowed_lateness_ns),
     .help = "How long after a window's end late records still update it."},
    {.name = "aggregates", .type = SL_OPT_MAP, .flags = SL_OPT_REQUIRED, .offset = offsetof(sl_job_conf_t, aggregates),
     .help = "Output field = aggregate expression (count, sum, min, max, avg, first, last, count_distinct, "
             "percentile, redis_hll)."},
    {.name = "sinks", .type = SL_OPT_STRING_LIST, .flags = SL_OPT_REQUIRED, .offset = offsetof(sl_job_conf_t, sinks),
     .help = "Names of `[[sink]]`s."},
    {.name = "max_keys", .type = SL_OPT_INT, .def = "100000", .min = 1, .max = 100000000,
     .offset = offsetof(sl_job_conf_t, max_keys), .help = "Group keys kept per window."},
    {.name = "time_field", .type = SL_OPT_STRING, .offset = offsetof(sl_job_conf_t, time_field),
     .help = "Same as `time = { field = ... }` (with `time_format`)."},
    {.name = "time_format", .type = SL_OPT_ENUM, .def = "\"epoch\"", .choices = "epoch|rfc3339|epoch_ms",
     .offset = offsetof(sl_job_conf_t, time_format), .help = "How `time_field` is written."},
    {.name = "emit", .type = SL_OPT_ENUM, .def = "\"final\"", .choices = "final", .sub = &emit_schema,
     .offset = offsetof(sl_job_conf_t, emit), .sub_offset = offsetof(sl_job_conf_t, emit_every_ns),
     .help = "When rows are sent: `\"final\"`, once when the window closes; or `{ every = \"10s\" }`, also "
             "the current rows of open windows that often (early results, overwritten by the final row of the "
             "same id)."},
    {.name = "format", .type = SL_OPT_ENUM, .def = "\"json\"", .choices = "json|msgpack",
     .offset = offsetof(sl_job_conf_t, format), .help = "How the topics' values are written (a route's `format`)."},
    {.name = "late_sink", .type = SL_OPT_STRING, .offset = offsetof(sl_job_conf_t, late_sink),
     .help = "A `[[sink]]` that receives late records (as JSON), besides counting them."},
    {.name = "late_policy", .type = SL_OPT_ENUM, .def = "\"sink\"", .choices = "sink|drop|update",
     .offset = offsetof(sl_job_conf_t, late_policy),
     .help = "What a record too late for its window does: `sink` (to `late_sink`, or dropped and counted without "
             "one), `drop` (counted only), `update` (updates its closed window, if it closed no more than "
             "`max_lateness_update` ago, and re-emits that window's row under the same id; later ones as `sink`)."},
    {.name = "max_lateness_update", .type = SL_OPT_DURATION, .def = "\"10m\"", .unit = "duration", .min = MS,
     .max = 7 * 24 * 3600 * 1000 * (int64_t)MS, .offset = offsetof(sl_job_conf_t, max_lateness_update_ns),
     .help = "With `late_policy = \"update\"`: how long after a window closed (by the watermark) a late record "
             "still updates it; closed windows' state is kept that long."},
    {.name = "commit_interval", .type = SL_OPT_DURATION, .def = "\"1s\"", .unit = "duration", .min = 10 * MS,
     .max = 3600 * 1000 * (int64_t)MS, .offset = offsetof(sl_job_conf_t, commit_interval_ns),
     .help = "How often the job commits its safe offsets (and checkpoint watermark) to Kafka."},
    {.name = "properties", .type = SL_OPT_MAP, .offset = offsetof(sl_job_conf_t, properties),
     .help = "librdkafka consumer properties for this job, over `[kafka.properties]` (e.g. "
             "`\"auto.offset.reset\" = \"latest\"`, `\"session.timeout.ms\"`)."},
    {.name = "group_id", .type = SL_OPT_STRING, .offset = offsetof(sl_job_conf_t, group_id),
     .help = "Kafka consumer group (default `sluice-<name>`)."},
    {.name = "instance_id", .type = SL_OPT_STRING, .offset = offsetof(sl_job_conf_t, instance_id),
     .help = "Static group membership (`group.instance.id`): a restart within `session.timeout.ms` gets the same "
             "partitions back and moves none of the other members'. Default: the host name; each sluice of one "
             "job's group needs its own; `\"\"` turns static membership off."},
    {.name = "max_watermark_drift", .type = SL_OPT_DURATION, .def = "\"0s\"", .unit = "duration",
     .offset = offsetof(sl_job_conf_t, max_watermark_drift_ns),
     .help = "A partition whose event-time watermark runs this far ahead of the slowest active partition is not "
             "read until the others are within half of it, so that its windows do not pile up (0: no limit)."},
    {.name = "idle_timeout", .type = SL_OPT_DURATION, .def = "\"30s\"", .unit = "duration",
     .offset = offsetof(sl_job_conf_t, idle_timeout_ns),
     .help = "A partition without records for this long stops holding the watermark back."},
    {0},
};

/* Compiles the job once, so that a bad window, filter, group key or
 * aggregate is reported at its option (an aggregate at its map entry); the
 * compiled job itself is not kept. */
static void job_finish(void *conf, sl_bind_ctx_t *ctx) {
  sl_job_conf_t *j = conf;
  if (j->time == 2) { /* time = { field = ..., format = ... } */
    j->time = 0;
    if (j->time_field) {
      sl_bind_error(ctx, &j->time_field, "the time field is given twice: use time = { field = ... } alone");
      return;
    }
    j->time_field = strdup(j->time_tab.field);
    j->time_format = j->time_tab.format;
    if (!j->time_field) {
      sl_bind_error(ctx, NULL, "out of memory");
      return;
    }
  }
  if (j->late_policy == 1 && j->late_sink) {
    sl_bind_error(ctx, &j->late_policy, "late_policy = \"drop\" leaves late_sink unused: remove one of them");
    return;
  }
  sl_job_t *job = NULL;
  sl_job_error_t err;
  int r = sl_job_new(j, &job, &err);
  sl_job_free(job);
  if (r == SL_ECONFIG && err.entry)
    sl_bind_error_at(ctx, err.entry->line, err.entry->col, "aggregates.%s: %s", err.entry->key, err.msg);
  else if (r == SL_ECONFIG)
    sl_bind_error(ctx, err.field, "%s", err.msg);
  else if (r)
    sl_bind_error(ctx, NULL, "cannot compile the job: out of memory");
}

const sl_section_t sl_job_section = {
    .name = "job",
    .flags = SL_SECTION_ARRAY,
    .opts = job_opts,
    .help = "Windowed aggregation jobs: each a consumer group over its topics, results to its sinks (try one "
            "over a file with `sluice job test`).",
    .size = sizeof(sl_job_conf_t),
    .finish = job_finish,
};
