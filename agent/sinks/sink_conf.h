/* The [[sink]] section: the keys every sink has; the rest of the table
 * belongs to the sink's plugin.  Pure. */
#ifndef SL_SINK_CONF_H
#define SL_SINK_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config_schema.h"

enum { SL_SINK_ON_FAILURE_BLOCK, SL_SINK_ON_FAILURE_DROP, SL_SINK_ON_FAILURE_DEAD_LETTER };

typedef struct {
  char *name;   /* owned */
  char *plugin; /* owned */
  int64_t batch_size;
  int64_t flush_interval_ns;
  int64_t initial_backoff_ns, max_backoff_ns;
  bool jitter;
  int64_t max_retries; /* 0: no limit */
  int64_t max_elapsed_ns; /* 0: no limit */
  int on_failure;
  char *dead_letter_topic; /* owned or NULL */
} sl_sink_conf_t;

extern const sl_section_t sl_sink_section;

#endif
