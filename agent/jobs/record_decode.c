/* Kafka values to the engine's records (record_decode.h). */
#include "jobs/record_decode.h"

#include <stdbool.h>
#include <stdint.h>
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

static uint64_t be(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = v << 8 | p[i];
  return v;
}

/* Whether the bytes hold as many values as their headers declare, each
 * value taking at least one byte.  msgpack-c allocates an array's or map's
 * elements when it reads the header, so five bytes declaring 2^32 - 1
 * elements would otherwise ask for 96 GiB.  Invalid or truncated bytes pass:
 * msgpack-c reports those.  One step per value; strings are skipped whole. */
static bool counts_fit(const unsigned char *p, size_t len) {
  uint64_t pending = 1; /* values still to read */
  size_t pos = 0;
  while (pending && pos < len) {
    unsigned b = p[pos];
    uint64_t head = 1, body = 0, children = 0;
    int lb = 0;
    pending--;
    if (b <= 0x7f || b >= 0xe0) {
    } else if (b <= 0x8f) {
      children = 2 * (uint64_t)(b & 0x0f);
    } else if (b <= 0x9f) {
      children = b & 0x0f;
    } else if (b <= 0xbf) {
      body = b & 0x1f;
    } else if (b >= 0xc4 && b <= 0xc9) { /* bin 8/16/32, ext 8/16/32 */
      lb = 1 << ((b - 0xc4) % 3);
      head = 1 + (uint64_t)lb + (b >= 0xc7);
    } else if (b >= 0xca && b <= 0xd3) { /* float, uint, int */
      static const unsigned char sz[] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8};
      body = sz[b - 0xca];
    } else if (b >= 0xd4 && b <= 0xd8) { /* fixext */
      body = 1 + (1u << (b - 0xd4));
    } else if (b >= 0xd9 && b <= 0xdb) { /* str 8/16/32 */
      lb = 1 << (b - 0xd9);
      head = 1 + (uint64_t)lb;
    } else if (b >= 0xdc) { /* array 16/32, map 16/32 */
      lb = 2 << ((b - 0xdc) & 1);
      head = 1 + (uint64_t)lb;
    } else if (b == 0xc1) {
      return true; /* never used: msgpack-c refuses it */
    }
    if (head > len - pos) return true;
    uint64_t n = lb ? be(p + pos + 1, lb) : 0;
    if (b >= 0xdc && b <= 0xdd) children = n;
    else if (b >= 0xde) children = 2 * n;
    else if (lb) body = n;
    if (body > len - pos - head) return true;
    pos += (size_t)(head + body);
    pending += children;
    if (pending > len - pos) return false;
  }
  return true;
}

static int unpack_map(sl_record_decoder_t *d, const char *p, size_t len, const msgpack_object **out,
                      const char **why) {
  size_t off = 0;
  if (!counts_fit((const unsigned char *)p, len)) {
    *why = "truncated msgpack (declares more values than it has bytes)";
    return SL_ESYNTAX;
  }
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
