/* The [[job]] section: its option table and the struct it fills.  Its
 * finish hook compiles the job once (jobs/engine.h) so that `sluice check`
 * reports a bad filter, group key, aggregate or window at its position; the
 * compiled job is freed right away (the jobs stage compiles its own).
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
  char *field; /* owned */
  int format;  /* sl_time_format_t */
} sl_time_conf_t;

typedef struct {
  char *name; /* owned */
  sl_str_list_t topics;
  char *where; /* owned or NULL */
  sl_str_list_t group_by;
  sl_window_conf_t window;
  int time; /* 0 event, 1 processing (2, the table form, becomes 0 with time_field set) */
  sl_time_conf_t time_tab; /* time = { field, format } */
  int64_t allowed_lateness_ns;
  sl_kv_list_t aggregates;
  sl_str_list_t sinks;
  int64_t max_keys;
  char *time_field; /* owned or NULL: the record field holding the event time */
  int time_format;  /* sl_time_format_t: 0 epoch, 1 rfc3339, 2 epoch_ms */
  int emit;         /* 0 final, 1 { every = ... } */
  char *group_id;   /* owned or NULL: the consumer group (default: sluice-<name>) */
  char *instance_id; /* owned or NULL: group.instance.id (default: the host name; "" for none) */
  int64_t idle_timeout_ns;
  int64_t emit_every_ns;     /* emit = { every }; 0: final rows only */
  int format;                /* 0 json, 1 msgpack */
  char *late_sink;           /* owned or NULL */
  int late_policy;           /* 0 sink, 1 drop, 2 update */
  int64_t max_lateness_update_ns;
  int64_t max_watermark_drift_ns; /* 0: no limit */
  int64_t commit_interval_ns;
  sl_kv_list_t properties;   /* [job.properties] */
} sl_job_conf_t;

extern const sl_section_t sl_job_section;

#endif
