/* libFuzzer target: the TOML parser (config/toml.c).  The input is a
 * document; a parsed tree is walked (every date/time formatted, every key
 * looked up again) and freed.  Aborts when a failure comes without its
 * "line:col: reason" message, or a parsed tree breaks the header's
 * promises (a root that is not a table, a key that lookup cannot find). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"
#include "core/error.h"

#define CHECK(cond, ...)                              \
  do {                                                \
    if (!(cond)) {                                    \
      fprintf(stderr, "fuzz_toml: " __VA_ARGS__);     \
      fputc('\n', stderr);                            \
      abort();                                        \
    }                                                 \
  } while (0)

static void walk(const sl_toml_value_t *v, int depth) {
  CHECK(depth <= 130, "tree deeper than the parser's limit");
  CHECK(v->line >= 0 && v->col >= 0, "negative position");
  char buf[64];
  switch (v->type) {
  case SL_TOML_DATETIME: case SL_TOML_DATETIME_LOCAL: case SL_TOML_DATE_LOCAL: case SL_TOML_TIME_LOCAL:
    CHECK(sl_toml_datetime_format(v, buf, sizeof buf) > 0, "date/time formats to nothing");
    break;
  case SL_TOML_STRING:
    CHECK(v->u.str.ptr && v->u.str.ptr[v->u.str.len] == 0, "string not NUL-terminated");
    break;
  case SL_TOML_ARRAY:
    for (size_t i = 0; i < v->u.arr.len; i++) walk(v->u.arr.items[i], depth + 1);
    break;
  case SL_TOML_TABLE:
    for (size_t i = 0; i < v->u.tab.len; i++) {
      const sl_toml_kv_t *kv = &v->u.tab.items[i];
      CHECK(kv->key && kv->key[kv->key_len] == 0, "key not NUL-terminated");
      /* Keys holding a NUL cannot be looked up by a C string. */
      if (strlen(kv->key) == kv->key_len) CHECK(sl_toml_get_kv(v, kv->key) != NULL, "key \"%s\" not found", kv->key);
      walk(kv->value, depth + 1);
    }
    break;
  default:
    break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sl_toml_value_t *root = NULL;
  char err[512];
  err[0] = 0;
  int r = sl_toml_parse((const char *)data, size, "fuzz.toml", &root, err, sizeof err);
  if (r) {
    CHECK(r == SL_ESYNTAX, "parse returned %d", r);
    CHECK(strncmp(err, "fuzz.toml:", 10) == 0, "error without position: \"%s\"", err);
    sl_toml_free(root);
    return 0;
  }
  CHECK(root && root->type == SL_TOML_TABLE, "root is not a table");
  walk(root, 0);
  sl_toml_free(root);
  return 0;
}
