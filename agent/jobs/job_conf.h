/* The [[job]] section: its option table and the struct it fills.  The
 * jobs stage itself comes later; its config is validated and bound now.
 * Pure. */
#ifndef SL_JOB_CONF_H
#define SL_JOB_CONF_H

#include <stdint.h>

#include "config/config_schema.h"

typedef struct {
  int type; /* 0 tumbling, 1 hopping, 2 session */
  int64_t size_ns;
  int64_t advance_ns;
  int64_t gap_ns;
} sl_window_conf_t;

typedef struct {
  char *name; /* owned */
  sl_str_list_t topics;
  char *where; /* owned or NULL */
  sl_str_list_t group_by;
  sl_window_conf_t window;
  int time; /* 0 event, 1 processing */
  int64_t allowed_lateness_ns;
  sl_kv_list_t aggregates;
  sl_str_list_t sinks;
  int64_t max_keys;
} sl_job_conf_t;

extern const sl_section_t sl_job_section;

#endif
