/* The operator's HTTP endpoint: GET /metrics (Prometheus text), /healthz
 * (the process is up) and /readyz (every stage started, none stopping).  A
 * deliberately small HTTP/1.0-style server: one request per connection.
 * Runs as a stage of the daemon.  Loop thread only. */
#ifndef SL_HTTP_H
#define SL_HTTP_H

#include "daemon/stage.h"

/* Creates the stage from env->cfg's [http]; out->ops is NULL when it is
 * disabled.  /readyz asks env->host.is_ready. */
int sl_http_stage_new(const sl_stage_env_t *env, sl_stage_t *out);

#endif
