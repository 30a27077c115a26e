/* The [log] section: its option table and the struct it fills (the logging
 * module in core/ stays free of the config machinery).  Pure. */
#ifndef SL_LOG_CONF_H
#define SL_LOG_CONF_H

#include "config/config_schema.h"

typedef struct {
  int level;  /* sl_log_level_t */
  int format; /* 0 text, 1 json */
} sl_log_conf_t;

extern const sl_section_t sl_log_section;

#endif
