/* The operator's HTTP endpoint: GET (or HEAD) /metrics (Prometheus text
 * 0.0.4: the registry and the process's own figures), /healthz (the
 * process is up), /readyz (every stage started, none stopping, every sink
 * up, and with [kafka] some broker reachable; 503 with the reason
 * otherwise) and /api/v1/status (JSON, http_status.h).  HTTP/1.1 with
 * keep-alive, requests read by Node's http_parser under limits
 * (http_request.h); other paths 404, other methods 405.  Counted in
 * sluice_http_requests_total{handler,code} and
 * sluice_http_connections_dropped_total{reason}.  Runs as a stage of the
 * daemon.  Loop thread only. */
#ifndef SL_HTTP_H
#define SL_HTTP_H

#include "daemon/stage.h"

/* Creates the stage from env->cfg's [http]; out->ops is NULL when it is
 * disabled.  /readyz asks env->host.is_ready. */
int sl_http_stage_new(const sl_stage_env_t *env, sl_stage_t *out);

#endif
