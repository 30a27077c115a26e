/* The [[sink]] section: the keys every sink has; the rest of the table
 * belongs to the sink's plugin.  Pure. */
#ifndef SL_SINK_CONF_H
#define SL_SINK_CONF_H

#include "config/config_schema.h"

typedef struct {
  char *name;   /* owned */
  char *plugin; /* owned */
} sl_sink_conf_t;

extern const sl_section_t sl_sink_section;

#endif
