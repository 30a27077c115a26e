/* The operator's HTTP endpoint: GET /metrics (Prometheus text), /healthz
 * (the process is up) and /readyz (every stage started).  A deliberately
 * small HTTP/1.0-style server: one request per connection.  Loop thread
 * only. */
#ifndef SL_HTTP_H
#define SL_HTTP_H

#include <stdbool.h>
#include <uv.h>

#include "units.h"

typedef struct sl_http sl_http_t;

/* Binds and listens; logs the bound address.  -errno on failure. */
int sl_http_start(uv_loop_t *loop, const sl_addr_t *addr, sl_http_t **out);
void sl_http_set_ready(sl_http_t *h, bool ready);
/* Closes the listener and open connections; frees itself when closed. */
void sl_http_close(sl_http_t *h);

#endif
