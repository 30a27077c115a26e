/* The [[route]] option table, bound to sl_route_t, and the finish hook that
 * compiles each route's tag patterns, topic template and key path.  Pure. */
#include <stddef.h>
#include <string.h>

#include "config/config_schema.h"
#include "ingest/route.h"

static const sl_opt_t route_opts[] = {
    {.name = "match", .type = SL_OPT_STRING, .flags = SL_OPT_REQUIRED, .offset = offsetof(sl_route_t, match_text),
     .help = "fluentd tag patterns separated by spaces: `*` one part, `**` zero or more parts, `{a,b}` "
             "alternatives."},
    {.name = "topic", .type = SL_OPT_STRING, .flags = SL_OPT_REQUIRED, .offset = offsetof(sl_route_t, topic_text),
     .help = "Topic name, or a template: `${tag}`, `${tag_parts[N]}` (negative N counts from the end), "
             "`${record.field.path}`."},
    {.name = "format", .type = SL_OPT_ENUM, .def = "\"json\"", .choices = "json|msgpack",
     .offset = offsetof(sl_route_t, format), .help = "Kafka message value format."},
    {.name = "key", .type = SL_OPT_STRING, .offset = offsetof(sl_route_t, key_text),
     .help = "Record field path (`user_id`, `http.host`) whose value is the Kafka message key."},
    {.name = "tag_key", .type = SL_OPT_STRING, .offset = offsetof(sl_route_t, tag_key),
     .help = "Record key the tag is added under."},
    {.name = "time_key", .type = SL_OPT_STRING, .offset = offsetof(sl_route_t, time_key),
     .help = "Record key the event time is added under."},
    {.name = "time_format", .type = SL_OPT_ENUM, .def = "\"epoch\"", .choices = "epoch|rfc3339",
     .offset = offsetof(sl_route_t, time_format),
     .help = "How `time_key` is written: epoch seconds as a float, or RFC 3339 with nanoseconds."},
    {0},
};

static void route_finish(void *conf, sl_bind_ctx_t *ctx) {
  sl_route_t *r = conf;
  char err[256];
  if (r->match_text && sl_tag_pattern_compile(r->match_text, &r->match, err, sizeof err))
    sl_bind_error(ctx, &r->match_text, "%s", err);
  if (r->topic_text && sl_topic_tmpl_compile(r->topic_text, &r->topic, err, sizeof err))
    sl_bind_error(ctx, &r->topic_text, "%s", err);
  if (r->key_text && strstr(r->key_text, "${"))
    sl_bind_error(ctx, &r->key_text,
                  "\"%s\": the key is a record field path like \"user.id\", not a template", r->key_text);
  else if (r->key_text && sl_field_path_parse(r->key_text, &r->key))
    sl_bind_error(ctx, &r->key_text, "\"%s\" is not a field path like \"user.id\"", r->key_text);
  r->time_rfc3339 = r->time_format == 1;
}

static void route_release(void *conf) { sl_route_release(conf); }

const sl_section_t sl_route_section = {
    .name = "route",
    .flags = SL_SECTION_ARRAY,
    .opts = route_opts,
    .help = "Tag routes to Kafka topics; the first match wins.",
    .size = sizeof(sl_route_t),
    .finish = route_finish,
    .release = route_release,
};
