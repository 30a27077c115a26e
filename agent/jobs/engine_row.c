/* Result rows as JSON (engine.h, sl_job_row_to_json), the form `sluice job
 * test` prints and sinks write, and as a msgpack map of the same fields
 * (sl_job_row_to_msgpack), which sink plugins read field by field.  Pure;
 * any thread. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

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

static msgpack_object result_object(const sl_agg_result_t *v) {
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
  return o;
}

static int put_result(sl_buf_t *out, const sl_agg_result_t *v) {
  msgpack_object o = result_object(v);
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

static int pack_str(msgpack_packer *pk, const char *s) {
  size_t n = strlen(s);
  return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

int sl_job_row_to_msgpack(const sl_job_row_t *row, sl_buf_t *out) {
  size_t len0 = out->len;
  char id[24], start[SL_TIME_RFC3339_MAX], end[SL_TIME_RFC3339_MAX];
  snprintf(id, sizeof id, "%016" PRIx64, row->id);
  sl_time_format_rfc3339(row->window_start, start);
  sl_time_format_rfc3339(row->window_end, end);
  msgpack_packer pk;
  msgpack_packer_init(&pk, out, sl_buf_msgpack_write);
  int r = msgpack_pack_map(&pk, 4 + row->n_keys + row->n_aggs) || pack_str(&pk, "id") || pack_str(&pk, id) ||
          pack_str(&pk, "job") || pack_str(&pk, row->job) || pack_str(&pk, "window_start") ||
          pack_str(&pk, start) || pack_str(&pk, "window_end") || pack_str(&pk, end);
  for (size_t i = 0; i < row->n_keys && !r; i++)
    r = pack_str(&pk, row->key_names[i]) || msgpack_pack_object(&pk, row->key_values[i]);
  for (size_t i = 0; i < row->n_aggs && !r; i++) {
    msgpack_object o = result_object(&row->agg_values[i]);
    r = pack_str(&pk, row->agg_names[i]) || msgpack_pack_object(&pk, o);
  }
  if (r) {
    out->len = len0;
    return SL_ENOMEM;
  }
  return 0;
}

int sl_job_row_sketches_to_msgpack(const sl_job_row_t *row, sl_buf_t *out) {
  size_t len0 = out->len, n = 0;
  for (size_t i = 0; i < row->n_aggs; i++)
    if ((row->agg_sketches && row->agg_sketches[i]) || (row->agg_hlls && row->agg_hlls[i])) n++;
  if (!n) return 0;
  msgpack_packer pk;
  msgpack_packer_init(&pk, out, sl_buf_msgpack_write);
  sl_buf_t bytes = {0};
  int r = msgpack_pack_map(&pk, n);
  for (size_t i = 0; i < row->n_aggs && !r; i++) {
    const sl_dds_t *dds = row->agg_sketches ? row->agg_sketches[i] : NULL;
    const sl_redis_hll_t *hll = row->agg_hlls ? row->agg_hlls[i] : NULL;
    if (!dds && !hll) continue;
    sl_buf_reset(&bytes);
    r = (dds ? sl_dds_serialize(dds, &bytes) : sl_redis_hll_to_redis(hll, &bytes)) ||
        pack_str(&pk, row->agg_names[i]) || msgpack_pack_bin(&pk, bytes.len) ||
        msgpack_pack_bin_body(&pk, bytes.data, bytes.len);
  }
  sl_buf_free(&bytes);
  if (r) {
    out->len = len0;
    return SL_ENOMEM;
  }
  return 0;
}
