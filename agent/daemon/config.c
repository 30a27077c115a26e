/* The root of the config: where each module's section sits in sl_config_t,
 * and loading (parse, validate, bind).  Main thread. */
#include "daemon/config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "jobs/agg.h"
#include "sinks/sink_host.h"

static const sl_child_t input_children[] = {
    {&sl_forward_section, offsetof(sl_input_conf_t, forward)},
    {0},
};
static const sl_section_t input_section = {
    .name = "input",
    .children = input_children,
    .help = "Inputs.",
    .size = sizeof(sl_input_conf_t),
};

static const sl_opt_t root_opts[] = {
    {.name = "plugin_dirs", .type = SL_OPT_STRING_LIST, .def = "[]", .offset = offsetof(sl_config_t, plugin_dirs),
     .help = "Folders searched for sink plugins, before the installed plugin folder."},
    {.name = "shutdown_timeout", .type = SL_OPT_DURATION, .def = "\"30s\"", .unit = "duration", .min = 0,
     .max = 3600 * 1000000000LL, .offset = offsetof(sl_config_t, shutdown_timeout_ns),
     .help = "On SIGTERM or SIGINT, how long to wait for records in flight to be acknowledged (and their "
             "chunks acked) before giving up on them and exiting 1. A second signal gives up at once."},
    {0},
};

static const sl_child_t root_children[] = {
    {&sl_log_section, offsetof(sl_config_t, log)},
    {&sl_http_section, offsetof(sl_config_t, http)},
    {&input_section, offsetof(sl_config_t, input)},
    {&sl_kafka_section, offsetof(sl_config_t, kafka)},
    {&sl_route_section, offsetof(sl_config_t, routes)},
    {&sl_job_section, offsetof(sl_config_t, jobs)},
    {&sl_sink_section, offsetof(sl_config_t, sinks)},
    {0},
};

static bool sink_named(const sl_config_t *c, const char *name) {
  for (size_t i = 0; i < c->sinks.n; i++)
    if (!strcmp(((const sl_sink_conf_t *)c->sinks.items)[i].name, name)) return true;
  return false;
}

/* What no single section can check: names that refer across sections. */
static void root_finish(void *conf, sl_bind_ctx_t *ctx) {
  const sl_config_t *c = conf;
  const sl_sink_conf_t *sinks = c->sinks.items;
  for (size_t i = 0; i < c->sinks.n; i++)
    for (size_t k = 0; k < i; k++)
      if (!strcmp(sinks[i].name, sinks[k].name))
        sl_bind_error(ctx, &sinks[i].name, "sink \"%s\" is defined twice", sinks[i].name);
  const sl_job_conf_t *jobs = c->jobs.items;
  for (size_t i = 0; i < c->jobs.n; i++) {
    const sl_job_conf_t *j = &jobs[i];
    for (size_t k = 0; k < i; k++)
      if (!strcmp(j->name, jobs[k].name)) sl_bind_error(ctx, &j->name, "job \"%s\" is defined twice", j->name);
    for (size_t k = 0; k < j->sinks.n; k++)
      if (!sink_named(c, j->sinks.items[k]))
        sl_bind_error(ctx, &j->sinks, "no [[sink]] is named \"%s\"", j->sinks.items[k]);
    if (j->late_sink && !sink_named(c, j->late_sink))
      sl_bind_error(ctx, &j->late_sink, "no [[sink]] is named \"%s\"", j->late_sink);
    if (!c->kafka.enabled)
      sl_bind_error(ctx, &j->name, "job \"%s\" reads Kafka: the config needs a [kafka] section", j->name);
  }
}

const sl_section_t sl_schema_root = {
    .finish = root_finish,
    .name = "",
    .opts = root_opts,
    .children = root_children,
    .help = "Top level.",
    .size = sizeof(sl_config_t),
};

/* Each sink's check_job against each job that names it in `sinks`. */
static int check_sinks_jobs(const sl_config_t *c, const sl_toml_value_t *sinks, const char *path, sl_diag_t *d) {
  const sl_job_conf_t *jobs = c->jobs.items;
  int r = 0;
  for (size_t k = 0; k < c->jobs.n; k++) {
    const sl_job_conf_t *j = &jobs[k];
    size_t n = j->aggregates.n;
    const char **names = calloc(n + 1, sizeof *names), **fns = calloc(n + 1, sizeof *fns);
    if (!names || !fns) {
      free(names);
      free(fns);
      return SL_ENOMEM;
    }
    /* A job whose aggregates do not parse has its own errors already. */
    bool parsed = true;
    for (size_t a = 0; a < n && parsed; a++) {
      sl_agg_spec_t spec;
      parsed = sl_agg_parse(j->aggregates.items[a].value, &spec, NULL) == 0;
      names[a] = j->aggregates.items[a].key;
      fns[a] = parsed ? sl_agg_fn_name(spec.fn) : NULL;
    }
    sluice_job_info_t info = {.name = j->name, .n_aggregates = n, .aggregates = names, .functions = fns};
    for (size_t i = 0; parsed && i < sinks->u.arr.len; i++) {
      const sl_toml_value_t *name = sl_toml_get(sinks->u.arr.items[i], "name");
      bool named = false;
      for (size_t s = 0; name && name->type == SL_TOML_STRING && s < j->sinks.n && !named; s++)
        named = !strcmp(j->sinks.items[s], name->u.str.ptr);
      if (!named) continue;
      char at[32];
      snprintf(at, sizeof at, "sink[%zu]", i);
      int e = sl_sink_check_job(sinks->u.arr.items[i], path, at, &info, d);
      if (e && !r) r = e;
    }
    free(names);
    free(fns);
  }
  return r;
}

int sl_config_load(const char *path, sl_config_t **out, sl_diag_t *d) {
  char err[1024];
  sl_config_t *c = calloc(1, sizeof *c);
  if (!c) return SL_ENOMEM;
  int r = 0;
  if (!(c->file = strdup(path))) {
    r = SL_ENOMEM;
    goto fail;
  }
  if ((r = sl_toml_parse_file(path, &c->doc, err, sizeof err))) {
    sl_diag_add_line(d, err);
    goto fail;
  }
  /* Bound only when valid: the finish hooks may rely on every value having
   * its type and range.  Each sink's own options (as its plugin defines
   * them) are checked beside the binding, so that every error is listed. */
  if (sl_schema_validate(&sl_schema_root, c->doc, path, d)) {
    r = SL_ECONFIG;
    goto fail;
  }
  if (sl_schema_bind(&sl_schema_root, c->doc, c, path, d)) r = SL_ECONFIG;
  sl_plugin_set_dirs(&c->plugin_dirs);
  const sl_toml_value_t *sinks = sl_toml_get(c->doc, "sink");
  for (size_t i = 0; sinks && sinks->type == SL_TOML_ARRAY && i < sinks->u.arr.len; i++) {
    char at[32];
    snprintf(at, sizeof at, "sink[%zu]", i);
    int e = sl_sink_check(sinks->u.arr.items[i], path, at, d);
    if (e && !r) r = e;
  }
  if (!r && sinks && sinks->type == SL_TOML_ARRAY) r = check_sinks_jobs(c, sinks, path, d);
  if (r) goto fail;
  *out = c;
  return 0;
fail:
  sl_config_free(c);
  return r ? r : SL_ECONFIG;
}

void sl_config_free(sl_config_t *c) {
  if (!c) return;
  sl_schema_unbind(&sl_schema_root, c);
  sl_toml_free(c->doc);
  free(c->file);
  free(c);
}
