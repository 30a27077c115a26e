/* The [http] option table, bound to sl_http_conf_t.  Pure. */
#include "http/http_conf.h"

#include <stddef.h>

static const sl_opt_t http_opts[] = {
    {.name = "enabled", .type = SL_OPT_BOOL, .def = "true", .offset = offsetof(sl_http_conf_t, enabled),
     .help = "Serve /metrics (Prometheus), /healthz, /readyz and /api/v1/status."},
    {.name = "listen", .type = SL_OPT_ADDR, .def = "\"127.0.0.1:24231\"", .offset = offsetof(sl_http_conf_t, listen),
     .help = "Address of the HTTP endpoint. Port 0 picks a free port (logged at start)."},
    {0},
};

const sl_section_t sl_http_section = {
    .name = "http",
    .opts = http_opts,
    .help = "The operator's HTTP endpoint.",
    .size = sizeof(sl_http_conf_t),
};
