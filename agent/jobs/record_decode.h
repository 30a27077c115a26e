/* A job's input record: a Kafka value in the format the route wrote (a JSON
 * object, or a msgpack map) turned into the msgpack object the engine
 * reads; and JSON (jansson) packed as msgpack, which `sluice cat` and
 * `sluice job test` use too.  Pure. */
#ifndef SL_RECORD_DECODE_H
#define SL_RECORD_DECODE_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>

#include "core/buf.h"

typedef enum { SL_RECORD_JSON = 0, SL_RECORD_MSGPACK = 1 } sl_record_format_t;

/* Packs a JSON value as the msgpack value of the same shape (objects as
 * maps in their order, integers as ints, reals as doubles). */
void sl_json_pack(msgpack_packer *pk, json_t *j);

/* Reusable buffers of one decoder (one thread). */
typedef struct {
  sl_buf_t packed; /* JSON values packed as msgpack */
  msgpack_unpacked unp;
} sl_record_decoder_t;

void sl_record_decoder_init(sl_record_decoder_t *d);
void sl_record_decoder_free(sl_record_decoder_t *d);

/* Decodes data[0..len) (borrowed; a msgpack record's strings point into it,
 * so it must outlive the use of *out).  Returns 0 with *out valid until the
 * next call, or SL_ESYNTAX with *why a static reason ("not a JSON object",
 * "not a msgpack map", "truncated msgpack", "trailing bytes after the
 * msgpack value"). */
int sl_record_decode(sl_record_decoder_t *d, sl_record_format_t format, const void *data, size_t len,
                     const msgpack_object **out, const char **why);

#endif
