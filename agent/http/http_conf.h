/* The [http] section: its option table and the struct it fills.  Pure. */
#ifndef SL_HTTP_CONF_H
#define SL_HTTP_CONF_H

#include <stdbool.h>

#include "config/config_schema.h"

typedef struct {
  bool enabled;
  sl_addr_t listen;
} sl_http_conf_t;

extern const sl_section_t sl_http_section;

#endif
