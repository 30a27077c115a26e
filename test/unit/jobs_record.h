/* Test records for the jobs unit tests, written in a JSON-like shorthand
 * and packed with msgpack_packer, then unpacked with msgpack_unpack:
 *   {'status': 500, 'path': '/api/x', 'n': null, 'ok': true,
 *    'f': 1.5, 'f32': 2.5f, 'neg': -3, 'big': 18446744073709551615,
 *    'nan': nan, 'raw': b'bytes\xff', 'list': [1, 'a'], b'binkey': 1, 7: 'int key'}
 * Strings are single-quoted (\' \\ and \xNN escapes); b'..' is BIN; a number
 * with '.', 'e' or a trailing 'f' is a float64 (float32 with 'f'); other
 * numbers are integers.  Aborts on malformed shorthand: a bug in the test. */
#ifndef SL_TEST_JOBS_RECORD_H
#define SL_TEST_JOBS_RECORD_H

#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static msgpack_zone rec_zone;
static msgpack_sbuffer *rec_bufs[1024];
static size_t rec_n;

static void rec_die(const char *why, const char *at) {
  fprintf(stderr, "bad test record (%s) at: %s\n", why, at);
  abort();
}

static const char *rec_ws(const char *p) {
  while (*p == ' ') p++;
  return p;
}

/* Items in the container whose opening bracket is p[-1]. */
static unsigned rec_count(const char *p) {
  int depth = 0;
  unsigned n = 0;
  bool any = false;
  for (; *p; p++) {
    if (*p == '\'') {
      for (p++; *p && *p != '\''; p++)
        if (*p == '\\') p++;
      any = true;
    } else if (*p == '{' || *p == '[') {
      depth++;
      any = true;
    } else if (*p == '}' || *p == ']') {
      if (depth-- == 0) return any ? n + 1 : 0;
    } else if (*p == ',' && depth == 0) {
      n++;
    } else if (*p != ' ') {
      any = true;
    }
  }
  rec_die("unclosed container", p);
  return 0;
}

static const char *rec_value(msgpack_packer *pk, const char *p);

static const char *rec_string(msgpack_packer *pk, const char *p, bool bin) {
  char buf[4096];
  size_t n = 0;
  for (p++; *p != '\''; p++) {
    if (!*p || n == sizeof buf) rec_die("unterminated string", p);
    if (*p == '\\' && p[1] == 'x') {
      char hex[3] = {p[2], p[3], 0};
      buf[n++] = (char)strtol(hex, NULL, 16);
      p += 3;
    } else {
      if (*p == '\\') p++;
      buf[n++] = *p;
    }
  }
  if (bin)
    msgpack_pack_bin_with_body(pk, buf, n);
  else
    msgpack_pack_str_with_body(pk, buf, n);
  return p + 1;
}

static const char *rec_container(msgpack_packer *pk, const char *p, bool map) {
  unsigned n = rec_count(p + 1);
  if (map)
    msgpack_pack_map(pk, n);
  else
    msgpack_pack_array(pk, n);
  p = rec_ws(p + 1);
  for (unsigned i = 0; i < n; i++) {
    p = rec_value(pk, p);
    if (map) {
      p = rec_ws(p);
      if (*p != ':') rec_die("expected ':'", p);
      p = rec_value(pk, p + 1);
    }
    p = rec_ws(p);
    if (i + 1 < n) {
      if (*p != ',') rec_die("expected ','", p);
      p = rec_ws(p + 1);
    }
  }
  if (*p != (map ? '}' : ']')) rec_die("expected a closing bracket", p);
  return p + 1;
}

static const char *rec_value(msgpack_packer *pk, const char *p) {
  p = rec_ws(p);
  if (*p == '{') return rec_container(pk, p, true);
  if (*p == '[') return rec_container(pk, p, false);
  if (*p == '\'') return rec_string(pk, p, false);
  if (p[0] == 'b' && p[1] == '\'') return rec_string(pk, p + 1, true);
  if (strncmp(p, "null", 4) == 0) return msgpack_pack_nil(pk), p + 4;
  if (strncmp(p, "true", 4) == 0) return msgpack_pack_true(pk), p + 4;
  if (strncmp(p, "false", 5) == 0) return msgpack_pack_false(pk), p + 5;
  if (strncmp(p, "nan", 3) == 0) return msgpack_pack_double(pk, NAN), p + 3;
  const char *e = p;
  if (*e == '-') e++;
  while ((*e >= '0' && *e <= '9') || *e == '.' || *e == 'e' || *e == 'E' ||
         ((*e == '-' || *e == '+') && (e[-1] == 'e' || e[-1] == 'E')))
    e++;
  if (e == p) rec_die("unknown value", p);
  if (*e == 'f') return msgpack_pack_float(pk, strtof(p, NULL)), e + 1;
  if (strpbrk(p, ".eE") && strpbrk(p, ".eE") < e) return msgpack_pack_double(pk, strtod(p, NULL)), e;
  if (*p == '-') return msgpack_pack_int64(pk, strtoll(p, NULL, 10)), e;
  return msgpack_pack_uint64(pk, strtoull(p, NULL, 10)), e;
}

/* The record written in `text`; valid until rec_cleanup. */
static msgpack_object rec(const char *text) {
  if (rec_n == 0) msgpack_zone_init(&rec_zone, 4096);
  if (rec_n == sizeof rec_bufs / sizeof *rec_bufs) rec_die("too many records", text);
  msgpack_sbuffer *sb = rec_bufs[rec_n++] = msgpack_sbuffer_new();
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  const char *end = rec_ws(rec_value(&pk, text));
  if (*end) rec_die("trailing text", end);
  msgpack_object o;
  if (msgpack_unpack(sb->data, sb->size, NULL, &rec_zone, &o) != MSGPACK_UNPACK_SUCCESS)
    rec_die("did not unpack", text);
  return o;
}

static void rec_cleanup(void) {
  for (size_t i = 0; i < rec_n; i++) msgpack_sbuffer_free(rec_bufs[i]);
  if (rec_n) msgpack_zone_destroy(&rec_zone);
  rec_n = 0;
}

#endif
