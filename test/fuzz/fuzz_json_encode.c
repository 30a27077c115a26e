/* libFuzzer target: the msgpack -> JSON encoder (ingest/json_encode.c).
 * The input is a sequence of msgpack values (framed by the forward
 * decoder), each encoded as a value and as a map key.  Every text produced must be JSON that jansson reads back
 * (integers read as reals, so that the full uint64 range passes; \u0000 in
 * an object key, which jansson refuses, let through), a key
 * must be a JSON string, and a failure must leave the buffer as it was. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "forward/forward_decode.h"
#include "ingest/json_encode.h"

#define CHECK(cond, ...)                                     \
  do {                                                       \
    if (!(cond)) {                                           \
      fprintf(stderr, "fuzz_json_encode: " __VA_ARGS__);     \
      fputc('\n', stderr);                                   \
      abort();                                               \
    }                                                        \
  } while (0)

static void check_json(const sl_buf_t *b, size_t from, bool key) {
  json_error_t jerr;
  json_t *j = json_loadb(b->data + from, b->len - from,
                         JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
  /* jansson refuses \u0000 in an object key, which JSON allows. */
  if (!j && strstr(jerr.text, "NUL byte in object key")) return;
  CHECK(j, "invalid JSON (%s at %d): %.*s", jerr.text, jerr.position, (int)(b->len - from),
        b->data + from);
  CHECK(!key || json_is_string(j), "a key that is not a string: %.*s", (int)(b->len - from), b->data + from);
  json_decref(j);
}

/* Values come framed by the forward decoder, as ingest gets them: its
 * scanner refuses a header declaring more than the input can hold before
 * anything is allocated (msgpack-c's unpacker would allocate it). */
static const sl_fwd_limits_t limits = {.chunk_size_limit = 1 << 20, .max_depth = 32, .max_values = 1 << 16};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sl_fwd_decoder_t *d = sl_fwd_decoder_new(&limits);
  CHECK(d, "decoder_new failed");
  CHECK(sl_fwd_decoder_feed(d, (const char *)data, size) == 0, "feed failed");
  sl_buf_t b = {0};
  sl_buf_append(&b, "[", 1);
  sl_fwd_frame_t f;
  memset(&f, 0, sizeof f);
  for (int n = 0; n < 64 && sl_fwd_decoder_next(d, &f) == 1; n++) {
    size_t mark = b.len;
    int r = sl_json_encode(&b, &f.root);
    CHECK(r == 0 || r == SL_EDEPTH, "encode returned %d", r);
    CHECK(r == 0 || b.len == mark, "failed encode left %zu bytes", b.len - mark);
    if (r == 0) check_json(&b, mark, false);
    b.len = mark;
    r = sl_json_encode_key(&b, &f.root);
    CHECK(r == 0 || r == SL_EDEPTH, "encode_key returned %d", r);
    CHECK(r == 0 || b.len == mark, "failed encode_key left %zu bytes", b.len - mark);
    if (r == 0) check_json(&b, mark, true);
    b.len = mark;
    sl_fwd_frame_free(&f);
    memset(&f, 0, sizeof f);
  }
  sl_fwd_frame_free(&f);
  /* The raw input as a string too (the UTF-8 repair). */
  size_t mark = b.len;
  CHECK(sl_json_encode_string(&b, (const char *)data, size) == 0, "encode_string failed");
  check_json(&b, mark, true);
  sl_buf_free(&b);
  sl_fwd_decoder_free(d);
  return 0;
}
