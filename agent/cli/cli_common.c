/* The pieces several commands share (cli_common.h).  Main thread of the
 * command-line tool. */
#include "cli/cli_common.h"

#include <stdio.h>
#include <string.h>

sl_config_t *sl_cli_load_config(const char *file) {
  sl_diag_t d = {0};
  sl_config_t *cfg = NULL;
  if (sl_config_load(file, &cfg, &d)) {
    for (size_t i = 0; i < d.n; i++) fprintf(stderr, "%s\n", d.lines[i]);
    fprintf(stderr, "%s: %zu error%s\n", file, d.n, d.n == 1 ? "" : "s");
  }
  sl_diag_free(&d);
  return cfg;
}

void sl_cli_pack_json(msgpack_packer *pk, json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    msgpack_pack_map(pk, json_object_size(j));
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
      msgpack_pack_str_with_body(pk, k, strlen(k));
      sl_cli_pack_json(pk, v);
    }
    break;
  }
  case JSON_ARRAY: {
    msgpack_pack_array(pk, json_array_size(j));
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v) sl_cli_pack_json(pk, v);
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
