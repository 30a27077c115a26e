/* libFuzzer target: the `where` language (jobs/expr_compile.c, expr.c).
 * The input is an expression; when it compiles it is evaluated against a
 * few fixed records (every kind of value, nested maps and arrays, odd keys)
 * and against none; an expression with regexes is compiled once more with
 * them interpreted (SL_EXPR_NO_JIT) and evaluated the same way.  Aborts on
 * an error code or column the header does not promise. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "jobs/expr.h"

#define CHECK(cond, ...)                              \
  do {                                                \
    if (!(cond)) {                                    \
      fprintf(stderr, "fuzz_expr: " __VA_ARGS__);     \
      fputc('\n', stderr);                            \
      abort();                                        \
    }                                                 \
  } while (0)

#define N_RECORDS 3
static msgpack_object records[N_RECORDS];
static msgpack_zone zone;
static sl_buf_t packed[N_RECORDS];

static void str(msgpack_packer *pk, const char *s) { msgpack_pack_str_with_body(pk, s, strlen(s)); }

static void build_records(void) {
  msgpack_packer pk;
  /* 0: an access log line with every kind of value. */
  msgpack_packer_init(&pk, &packed[0], sl_buf_msgpack_write);
  msgpack_pack_map(&pk, 16);
  str(&pk, "status"); msgpack_pack_int(&pk, 503);
  str(&pk, "path"); str(&pk, "/api/v2/users/\xc3\xa9t\xc3\xa9");
  str(&pk, "method"); str(&pk, "GET");
  str(&pk, "n"); msgpack_pack_nil(&pk);
  str(&pk, "ok"); msgpack_pack_true(&pk);
  str(&pk, "f"); msgpack_pack_double(&pk, 1.5);
  str(&pk, "f32"); msgpack_pack_float(&pk, 2.5f);
  str(&pk, "neg"); msgpack_pack_int64(&pk, -3);
  str(&pk, "big"); msgpack_pack_uint64(&pk, UINT64_MAX);
  str(&pk, "min"); msgpack_pack_int64(&pk, INT64_MIN);
  str(&pk, "nan"); msgpack_pack_double(&pk, __builtin_nan(""));
  str(&pk, "raw"); msgpack_pack_bin_with_body(&pk, "bytes\xff\x00", 7);
  str(&pk, "list"); msgpack_pack_array(&pk, 3); msgpack_pack_int(&pk, 1); str(&pk, "a"); msgpack_pack_nil(&pk);
  str(&pk, "req");
  msgpack_pack_map(&pk, 2);
  str(&pk, "headers");
  msgpack_pack_map(&pk, 2);
  str(&pk, "x-id"); msgpack_pack_array(&pk, 3); str(&pk, "a"); str(&pk, "b"); msgpack_pack_int(&pk, 7);
  str(&pk, "host"); str(&pk, "example.com");
  str(&pk, "size"); msgpack_pack_uint32(&pk, 1234);
  str(&pk, "@timestamp"); str(&pk, "2024-01-01T00:00:00Z");
  msgpack_pack_int(&pk, 7); str(&pk, "int key");
  /* 1: an empty map. */
  msgpack_packer_init(&pk, &packed[1], sl_buf_msgpack_write);
  msgpack_pack_map(&pk, 0);
  /* 2: not a map at all. */
  msgpack_packer_init(&pk, &packed[2], sl_buf_msgpack_write);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_int(&pk, 1);
  str(&pk, "status");
  msgpack_zone_init(&zone, 4096);
  for (int i = 0; i < N_RECORDS; i++) {
    size_t off = 0;
    CHECK(msgpack_unpack(packed[i].data, packed[i].len, &off, &zone, &records[i]) == MSGPACK_UNPACK_SUCCESS,
          "record %d does not unpack", i);
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  build_records();
  return 0;
}

static void run(const char *text, size_t len, unsigned flags) {
  sl_expr_t *e = NULL;
  sl_expr_error_t err;
  memset(&err, 0, sizeof err);
  int r = sl_expr_compile_with(text, flags, &e, &err);
  if (r) {
    CHECK(r == SL_ESYNTAX, "compile returned %d", r);
    CHECK(e == NULL, "failed compile left an expression");
    CHECK(err.col >= 1 && (size_t)err.col <= len + 1, "error column %d in %zu bytes", err.col, len);
    CHECK(memchr(err.msg, 0, sizeof err.msg) && err.msg[0], "no error message");
    return;
  }
  CHECK(sl_expr_jit_count(e) <= sl_expr_regex_count(e), "more JIT regexes than regexes");
  for (int i = 0; i < N_RECORDS; i++) sl_expr_match(e, &records[i]);
  sl_expr_match(e, NULL);
  bool again = !(flags & SL_EXPR_NO_JIT) && sl_expr_regex_count(e) > 0;
  sl_expr_free(e);
  if (again) run(text, len, SL_EXPR_NO_JIT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  run(text, strlen(text), 0);
  free(text);
  return 0;
}
