/* The JSON of GET /api/v1/status, built from the Prometheus text of the
 * same instant (what /metrics would answer) and what only the endpoint
 * knows (version, readiness, the stages).
 *
 * Why from the text: every figure the status shows is already a metric
 * that the stage owning it keeps current from its own thread (the jobs'
 * watermarks and offsets from the jobs loop, the sinks' state from the
 * sink host, connections from the ingest loops), and the registry renders
 * them under its lock.  Reading that one rendering gives a consistent view
 * without any stage exposing its state across threads, and the status
 * never disagrees with what Prometheus scrapes.  Pure. */
#ifndef SL_HTTP_STATUS_H
#define SL_HTTP_STATUS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

typedef struct {
  const char *name;  /* "http", "ingest", "jobs" */
  const char *state; /* "running", "stopping" */
} sl_status_stage_t;

typedef struct {
  const char *version;
  double now;          /* Unix time, seconds */
  bool ready;
  const char *reason;  /* why not ready; NULL when ready */
  const sl_status_stage_t *stages;
  size_t n_stages;
} sl_status_info_t;

/* Appends the status document to out, reading the metrics from `text`
 * (Prometheus text format 0.0.4, len bytes; lines it does not understand
 * are skipped).  Figures the text lacks are left out, or null.  0 or
 * SL_ENOMEM. */
int sl_status_json(const char *text, size_t len, const sl_status_info_t *info, sl_buf_t *out);

#endif
