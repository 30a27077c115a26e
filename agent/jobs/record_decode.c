/* Kafka values to the engine's records (record_decode.h). */
#include "jobs/record_decode.h"

#include <string.h>

#include "core/error.h"

void sl_json_pack(msgpack_packer *pk, json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    msgpack_pack_map(pk, json_object_size(j));
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
      msgpack_pack_str_with_body(pk, k, strlen(k));
      sl_json_pack(pk, v);
    }
    break;
  }
  case JSON_ARRAY: {
    msgpack_pack_array(pk, json_array_size(j));
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v) sl_json_pack(pk, v);
    break;
  }
  case JSON_STRING: msgpack_pack_str_with_body(pk, json_string_value(j), json_string_length(j)); break;
  case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(j)); break;
  case JSON_REAL: msgpack_pack_double(pk, json_real_value(j)); break;
  case JSON_TRUE: msgpack_pack_true(pk); break;
  case JSON_FALSE: msgpack_pack_false(pk); break;
  case JSON_NULL: msgpack_pack_nil(pk); break;
  }
}

void sl_record_decoder_init(sl_record_decoder_t *d) {
  memset(d, 0, sizeof *d);
  msgpack_unpacked_init(&d->unp);
}

void sl_record_decoder_free(sl_record_decoder_t *d) {
  sl_buf_free(&d->packed);
  msgpack_unpacked_destroy(&d->unp);
}

static int unpack_map(sl_record_decoder_t *d, const char *p, size_t len, const msgpack_object **out,
                      const char **why) {
  size_t off = 0;
  msgpack_unpack_return r = msgpack_unpack_next(&d->unp, p, len, &off);
  if (r == MSGPACK_UNPACK_CONTINUE) {
    *why = "truncated msgpack";
    return SL_ESYNTAX;
  }
  if (r != MSGPACK_UNPACK_SUCCESS) {
    /* msgpack-c reports a value nested past its stack (32 levels) as
     * NOMEM, as it does a failed allocation. */
    *why = r == MSGPACK_UNPACK_NOMEM_ERROR ? "nested deeper than 32 levels (or out of memory)" : "not msgpack";
    return SL_ESYNTAX;
  }
  if (off != len) {
    *why = "trailing bytes after the msgpack value";
    return SL_ESYNTAX;
  }
  if (d->unp.data.type != MSGPACK_OBJECT_MAP) {
    *why = "not a msgpack map";
    return SL_ESYNTAX;
  }
  *out = &d->unp.data;
  return 0;
}

int sl_record_decode(sl_record_decoder_t *d, sl_record_format_t format, const void *data, size_t len,
                     const msgpack_object **out, const char **why) {
  *out = NULL;
  *why = NULL;
  if (!data) {
    *why = "no value (a tombstone)";
    return SL_ESYNTAX;
  }
  if (format == SL_RECORD_MSGPACK) return unpack_map(d, data, len, out, why);
  json_error_t je;
  json_t *doc = json_loadb(data, len, 0, &je);
  if (!doc || !json_is_object(doc)) {
    *why = doc ? "not a JSON object" : "not JSON";
    json_decref(doc);
    return SL_ESYNTAX;
  }
  sl_buf_reset(&d->packed);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &d->packed, sl_buf_msgpack_write);
  sl_json_pack(&pk, doc);
  json_decref(doc);
  return unpack_map(d, d->packed.data, d->packed.len, out, why);
}
