/* Result rows as JSON (engine.h, sl_job_row_to_json): the form `sluice job
 * test` prints and the sinks will send.  Pure; any thread. */
#include <inttypes.h>
#include <stdio.h>

#include "core/error.h"
#include "ingest/json_encode.h"
#include "jobs/engine.h"
#include "jobs/event_time.h"

static int put_field(sl_buf_t *out, const char *name) {
  int r = sl_buf_putc(out, ',');
  if (!r) r = sl_json_encode_string(out, name, strlen(name));
  if (!r) r = sl_buf_putc(out, ':');
  return r;
}

static int put_time(sl_buf_t *out, const char *name, int64_t ms) {
  char t[SL_TIME_RFC3339_MAX];
  sl_time_format_rfc3339(ms, t);
  int r = put_field(out, name);
  if (!r) r = sl_json_encode_string(out, t, strlen(t));
  return r;
}

static int put_result(sl_buf_t *out, const sl_agg_result_t *v) {
  msgpack_object o = {.type = MSGPACK_OBJECT_NIL};
  switch (v->kind) {
  case SL_AGG_NULL: break;
  case SL_AGG_INT:
    o.type = v->u.i < 0 ? MSGPACK_OBJECT_NEGATIVE_INTEGER : MSGPACK_OBJECT_POSITIVE_INTEGER;
    o.via.i64 = v->u.i;
    break;
  case SL_AGG_DOUBLE:
    o.type = MSGPACK_OBJECT_FLOAT64;
    o.via.f64 = v->u.d;
    break;
  case SL_AGG_VALUE: o = v->u.v; break;
  }
  return sl_json_encode(out, &o);
}

int sl_job_row_to_json(const sl_job_row_t *row, sl_buf_t *out) {
  size_t len0 = out->len;
  char id[24];
  snprintf(id, sizeof id, "%016" PRIx64, row->id);
  int r = sl_buf_puts(out, "{\"id\":");
  if (!r) r = sl_json_encode_string(out, id, 16);
  if (!r) r = put_field(out, "job");
  if (!r) r = sl_json_encode_string(out, row->job, strlen(row->job));
  if (!r) r = put_time(out, "window_start", row->window_start);
  if (!r) r = put_time(out, "window_end", row->window_end);
  for (size_t i = 0; i < row->n_keys && !r; i++) {
    r = put_field(out, row->key_names[i]);
    if (!r) r = sl_json_encode(out, &row->key_values[i]);
  }
  for (size_t i = 0; i < row->n_aggs && !r; i++) {
    r = put_field(out, row->agg_names[i]);
    if (!r) r = put_result(out, &row->agg_values[i]);
  }
  if (!r) r = sl_buf_putc(out, '}');
  if (r) out->len = len0;
  return r;
}
