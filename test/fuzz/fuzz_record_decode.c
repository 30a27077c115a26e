/* libFuzzer target: a job's input record (jobs/record_decode.c) in both
 * formats a route writes: byte 0 picks JSON (even) or msgpack (odd), the
 * rest is the Kafka value.  One decoder is reused across inputs, as the
 * jobs thread reuses it.  A decoded record must be a map, a failure must
 * give a reason, and the record is encoded back to JSON (as a sink row
 * is). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "ingest/json_encode.h"
#include "jobs/record_decode.h"

#define CHECK(cond, ...)                                       \
  do {                                                         \
    if (!(cond)) {                                             \
      fprintf(stderr, "fuzz_record_decode: " __VA_ARGS__);     \
      fputc('\n', stderr);                                     \
      abort();                                                 \
    }                                                          \
  } while (0)

static sl_record_decoder_t dec;
static sl_buf_t json;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  sl_record_decoder_init(&dec);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  sl_record_format_t fmt = (data[0] & 1) ? SL_RECORD_MSGPACK : SL_RECORD_JSON;
  /* A copy of exactly the value's bytes, so that ASan sees any read past it. */
  size_t len = size - 1;
  char *value = malloc(len ? len : 1);
  if (!value) return 0;
  memcpy(value, data + 1, len);
  const msgpack_object *rec = NULL;
  const char *why = NULL;
  int r = sl_record_decode(&dec, fmt, value, len, &rec, &why);
  if (r == 0) {
    CHECK(rec && rec->type == MSGPACK_OBJECT_MAP, "decoded record is not a map");
    json.len = 0;
    int jr = sl_json_encode(&json, rec);
    CHECK(jr == 0 || jr == SL_EDEPTH, "json_encode returned %d", jr);
  } else {
    CHECK(r == SL_ESYNTAX, "decode returned %d", r);
    CHECK(why && *why, "failure without a reason");
  }
  free(value);
  return 0;
}
