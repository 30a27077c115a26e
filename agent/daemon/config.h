/* The whole config file: the root section placing every module's section,
 * and sl_config_t, the struct it fills.  Loading = parse the TOML, check it
 * against the tables (every error listed with file:line:col), bind it to
 * sl_config_t.  Main thread, at start. */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include "config/config_schema.h"
#include "config/log_conf.h"
#include "forward/forward_conf.h"
#include "http/http_conf.h"
#include "ingest/route.h"
#include "jobs/job_conf.h"
#include "kafka/kafka_conf.h"
#include "sinks/sink_conf.h"

typedef struct {
  sl_forward_conf_t forward;
} sl_input_conf_t;

typedef struct {
  char *file;           /* owned: the config file's path */
  sl_toml_value_t *doc; /* owned: the validated document, defaults filled in */
  sl_str_list_t plugin_dirs;
  int64_t shutdown_timeout_ns;
  sl_log_conf_t log;
  sl_http_conf_t http;
  sl_input_conf_t input;
  sl_kafka_conf_t kafka; /* .enabled: the section is present */
  sl_conf_array_t routes; /* of sl_route_t */
  sl_conf_array_t jobs;   /* of sl_job_conf_t */
  sl_conf_array_t sinks;  /* of sl_sink_conf_t */
} sl_config_t;

/* The schema of the whole file. */
extern const sl_section_t sl_schema_root;

/* Reads, validates and binds the config.  Returns 0 and *out (free with
 * sl_config_free), or a negative error with every problem in `d`. */
int sl_config_load(const char *path, sl_config_t **out, sl_diag_t *d);
void sl_config_free(sl_config_t *c); /* accepts NULL */

static inline const sl_route_t *sl_config_routes(const sl_config_t *c) { return c->routes.items; }

#endif
