/* toml_decode FILE: prints a TOML file as toml-test's tagged JSON on stdout,
 * or the parse error on stderr with exit status 1.  Reads stdin when FILE is
 * missing or "-".  The decoder that test/integration/toml_test_suite.py runs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"

static void put_json_string(const char *s, size_t len) {
  putchar('"');
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

static void put_tagged(const char *type, const char *value) {
  printf("{\"type\":\"%s\",\"value\":", type);
  put_json_string(value, strlen(value));
  putchar('}');
}

static void put_value(const sl_toml_value_t *v) {
  char buf[64];
  switch (v->type) {
    case SL_TOML_TABLE:
      putchar('{');
      for (size_t i = 0; i < v->u.tab.len; i++) {
        if (i) putchar(',');
        put_json_string(v->u.tab.items[i].key, v->u.tab.items[i].key_len);
        putchar(':');
        put_value(v->u.tab.items[i].value);
      }
      putchar('}');
      break;
    case SL_TOML_ARRAY:
      putchar('[');
      for (size_t i = 0; i < v->u.arr.len; i++) {
        if (i) putchar(',');
        put_value(v->u.arr.items[i]);
      }
      putchar(']');
      break;
    case SL_TOML_STRING:
      printf("{\"type\":\"string\",\"value\":");
      put_json_string(v->u.str.ptr, v->u.str.len);
      putchar('}');
      break;
    case SL_TOML_INTEGER:
      snprintf(buf, sizeof buf, "%lld", (long long)v->u.i);
      put_tagged("integer", buf);
      break;
    case SL_TOML_FLOAT:
      if (isnan(v->u.f))
        snprintf(buf, sizeof buf, "nan");
      else if (isinf(v->u.f))
        snprintf(buf, sizeof buf, "%sinf", v->u.f < 0 ? "-" : "");
      else
        snprintf(buf, sizeof buf, "%.17g", v->u.f);
      put_tagged("float", buf);
      break;
    case SL_TOML_BOOL:
      put_tagged("bool", v->u.b ? "true" : "false");
      break;
    case SL_TOML_DATETIME:
    case SL_TOML_DATETIME_LOCAL:
    case SL_TOML_DATE_LOCAL:
    case SL_TOML_TIME_LOCAL:
      sl_toml_datetime_format(v, buf, sizeof buf);
      put_tagged(v->type == SL_TOML_DATETIME         ? "datetime"
                 : v->type == SL_TOML_DATETIME_LOCAL ? "datetime-local"
                 : v->type == SL_TOML_DATE_LOCAL     ? "date-local"
                                                     : "time-local",
                 buf);
      break;
  }
}

static char *read_all(FILE *f, size_t *len) {
  size_t cap = 16384;
  char *buf = malloc(cap);
  *len = 0;
  while (buf) {
    size_t n = fread(buf + *len, 1, cap - *len, f);
    *len += n;
    if (n == 0) return ferror(f) ? (free(buf), NULL) : buf;
    if (*len == cap) {
      char *nb = realloc(buf, cap *= 2);
      if (!nb) free(buf);
      buf = nb;
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  sl_toml_value_t *root = NULL;
  char err[512];
  int rc;
  if (argc > 2) {
    fprintf(stderr, "usage: %s [FILE]\n", argv[0]);
    return 2;
  }
  if (argc == 2 && strcmp(argv[1], "-") != 0) {
    rc = sl_toml_parse_file(argv[1], &root, err, sizeof err);
  } else {
    size_t len;
    char *text = read_all(stdin, &len);
    if (!text) {
      fprintf(stderr, "<stdin>: read error\n");
      return 1;
    }
    rc = sl_toml_parse(text, len, "<stdin>", &root, err, sizeof err);
    free(text);
  }
  if (rc < 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  put_value(root);
  putchar('\n');
  sl_toml_free(root);
  return 0;
}
