/* Unit tests for agent/json_encode.c: every mapping rule with the exact JSON
 * text expected.  UTF-8 replacement expectations match Python's
 * bytes.decode("utf-8", "replace"); base64 ones match base64.b64encode. */
#include <math.h>
#include <stdint.h>

#include "ingest/json_encode.h"
#include "tap.h"

static sl_buf_t out;

/* Encodes `o` and returns the JSON text (valid until the next call). */
static const char *enc(const msgpack_object *o) {
  sl_buf_reset(&out);
  int r = sl_json_encode(&out, o);
  if (r) return "<error>";
  sl_buf_putc(&out, '\0');
  return out.data;
}

static const char *enc_str(const char *s, size_t len) {
  sl_buf_reset(&out);
  if (sl_json_encode_string(&out, s, len)) return "<error>";
  sl_buf_putc(&out, '\0');
  return out.data;
}

static const char *enc_key(const msgpack_object *k) {
  sl_buf_reset(&out);
  if (sl_json_encode_key(&out, k)) return "<error>";
  sl_buf_putc(&out, '\0');
  return out.data;
}

/* Packs with `fill`, unpacks, encodes. */
static const char *enc_packed(void (*fill)(msgpack_packer *)) {
  static char text[4096];
  sl_buf_t mp = {0};
  msgpack_packer pk;
  msgpack_packer_init(&pk, &mp, sl_buf_msgpack_write);
  fill(&pk);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0;
  const char *res = "<unpack error>";
  if (msgpack_unpack_next(&u, mp.data, mp.len, &off) == MSGPACK_UNPACK_SUCCESS) {
    res = enc(&u.data);
    snprintf(text, sizeof text, "%s", res);
    res = text;
  }
  msgpack_unpacked_destroy(&u);
  sl_buf_free(&mp);
  return res;
}

static msgpack_object o_nil(void) {
  return (msgpack_object){.type = MSGPACK_OBJECT_NIL};
}
static msgpack_object o_bool(bool b) {
  return (msgpack_object){.type = MSGPACK_OBJECT_BOOLEAN, .via.boolean = b};
}
static msgpack_object o_u(uint64_t v) {
  return (msgpack_object){.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = v};
}
static msgpack_object o_i(int64_t v) {
  return (msgpack_object){.type = MSGPACK_OBJECT_NEGATIVE_INTEGER, .via.i64 = v};
}
static msgpack_object o_f64(double d) {
  return (msgpack_object){.type = MSGPACK_OBJECT_FLOAT64, .via.f64 = d};
}
static msgpack_object o_f32(float f) {
  return (msgpack_object){.type = MSGPACK_OBJECT_FLOAT32, .via.f64 = (double)f};
}
static msgpack_object o_str(const char *s, size_t n) {
  return (msgpack_object){.type = MSGPACK_OBJECT_STR, .via.str = {(uint32_t)n, s}};
}
static msgpack_object o_bin(const char *s, size_t n) {
  return (msgpack_object){.type = MSGPACK_OBJECT_BIN, .via.bin = {(uint32_t)n, s}};
}
static msgpack_object o_ext(int8_t t, const char *s, size_t n) {
  return (msgpack_object){.type = MSGPACK_OBJECT_EXT, .via.ext = {t, (uint32_t)n, s}};
}
#define S(lit) lit, sizeof(lit) - 1

static void fill_nested(msgpack_packer *pk) {
  msgpack_pack_map(pk, 3);
  msgpack_pack_str_with_body(pk, "a", 1);
  msgpack_pack_array(pk, 3);
  msgpack_pack_int(pk, 1);
  msgpack_pack_array(pk, 0);
  msgpack_pack_map(pk, 1);
  msgpack_pack_str_with_body(pk, "x", 1);
  msgpack_pack_nil(pk);
  msgpack_pack_str_with_body(pk, "b", 1);
  msgpack_pack_map(pk, 0);
  msgpack_pack_str_with_body(pk, "c\n", 2);
  msgpack_pack_true(pk);
}

static void fill_nonstr_keys(msgpack_packer *pk) {
  msgpack_pack_map(pk, 6);
  msgpack_pack_int(pk, 1);
  msgpack_pack_str_with_body(pk, "one", 3);
  msgpack_pack_int(pk, -2);
  msgpack_pack_nil(pk);
  msgpack_pack_true(pk);
  msgpack_pack_int(pk, 0);
  msgpack_pack_nil(pk);
  msgpack_pack_int(pk, 0);
  msgpack_pack_bin_with_body(pk, "\x00\x01", 2);
  msgpack_pack_int(pk, 0);
  msgpack_pack_array(pk, 2);
  msgpack_pack_str_with_body(pk, "q\"", 2);
  msgpack_pack_map(pk, 1);
  msgpack_pack_int(pk, 7);
  msgpack_pack_int(pk, 8);
  msgpack_pack_int(pk, 0);
}

/* msgpack-c's unpacker stops at depth 32, so deep values are built by hand:
 * `n` nested one-element arrays around a 1. */
static msgpack_object deep[SL_JSON_MAX_DEPTH + 2];
static const msgpack_object *make_deep(int n) {
  for (int i = 0; i < n; i++) {
    deep[i].type = MSGPACK_OBJECT_ARRAY;
    deep[i].via.array.size = 1;
    deep[i].via.array.ptr = &deep[i + 1];
  }
  deep[n] = (msgpack_object){.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = 1};
  return &deep[0];
}

static void test_scalars(void) {
  msgpack_object o;
  o = o_nil();
  is_str(enc(&o), "null", "nil");
  o = o_bool(true);
  is_str(enc(&o), "true", "true");
  o = o_bool(false);
  is_str(enc(&o), "false", "false");
  o = o_u(0);
  is_str(enc(&o), "0", "zero");
  o = o_u(UINT64_MAX);
  is_str(enc(&o), "18446744073709551615", "UINT64_MAX exact");
  o = o_i(-1);
  is_str(enc(&o), "-1", "-1");
  o = o_i(INT64_MIN);
  is_str(enc(&o), "-9223372036854775808", "INT64_MIN exact");
}

static void test_floats(void) {
  msgpack_object o;
  o = o_f64(0.1);
  is_str(enc(&o), "0.1", "0.1 shortest");
  o = o_f64(0.1 + 0.2);
  is_str(enc(&o), "0.30000000000000004", "0.1+0.2 needs 17 digits");
  o = o_f64(1.0 / 3.0);
  is_str(enc(&o), "0.3333333333333333", "1/3 needs 16 digits");
  o = o_f64(1.0);
  is_str(enc(&o), "1.0", "integral double keeps .0");
  o = o_f64(-0.0);
  is_str(enc(&o), "-0.0", "negative zero");
  o = o_f64(9007199254740992.0);
  is_str(enc(&o), "9007199254740992.0", "2^53");
  o = o_f64(1e300);
  is_str(enc(&o), "1e+300", "large exponent");
  o = o_f64(5e-324);
  is_str(enc(&o), "5e-324", "smallest subnormal: the shortest text that reads back");
  o = o_f64(NAN);
  is_str(enc(&o), "null", "NaN -> null");
  o = o_f64(INFINITY);
  is_str(enc(&o), "null", "+Inf -> null");
  o = o_f64(-INFINITY);
  is_str(enc(&o), "null", "-Inf -> null");
  o = o_f32(0.1f);
  is_str(enc(&o), "0.1", "float32 0.1 from its float value");
  o = o_f32(16777216.0f);
  is_str(enc(&o), "16777216.0", "float32 2^24");
  o = o_f32(3.14159274f);
  is_str(enc(&o), "3.1415927", "float32 pi needs 8 digits");
  o = o_f32(NAN);
  is_str(enc(&o), "null", "float32 NaN -> null");
}

static void test_strings(void) {
  is_str(enc_str(S("")), "\"\"", "empty string");
  is_str(enc_str(S("plain")), "\"plain\"", "plain");
  is_str(enc_str(S("q\"b\\s/")), "\"q\\\"b\\\\s/\"", "quote and backslash");
  is_str(enc_str(S("\n\t\r\b\f")), "\"\\n\\t\\r\\b\\f\"", "short escapes");
  is_str(enc_str(S("\x01\x1f\x7f")), "\"\\u0001\\u001f\x7f\"", "controls as \\u00XX, DEL kept");
  is_str(enc_str("a\0b", 3), "\"a\\u0000b\"", "NUL byte");
  is_str(enc_str(S("\xe2\x82\xac \xf0\x9f\x98\x80 \xc3\xa9")),
         "\"\xe2\x82\xac \xf0\x9f\x98\x80 \xc3\xa9\"", "valid UTF-8 passed through");
  is_str(enc_str(S("\xef\xbf\xbf\xf4\x8f\xbf\xbf")), "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"",
         "U+FFFF and U+10FFFF valid");
  is_str(enc_str(S("a\xff"
                   "b")),
         "\"a\xef\xbf\xbd"
         "b\"",
         "0xFF replaced");
  is_str(enc_str(S("\x80\x80")), "\"\xef\xbf\xbd\xef\xbf\xbd\"", "stray continuations: one each");
  is_str(enc_str(S("\xc0\x80")), "\"\xef\xbf\xbd\xef\xbf\xbd\"", "overlong 2-byte NUL");
  is_str(enc_str(S("\xe0\x80\xaf")), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"", "overlong 3-byte");
  is_str(enc_str(S("\xed\xa0\x80")), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"",
         "surrogate U+D800");
  is_str(enc_str(S("\xf4\x90\x80\x80")), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"",
         "above U+10FFFF");
  is_str(enc_str(S("\xf8\x88\x80\x80\x80")),
         "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"", "5-byte form");
  is_str(enc_str(S("x\xe2\x82")), "\"x\xef\xbf\xbd\"", "truncated 3-byte at end: one U+FFFD");
  is_str(enc_str(S("\xf0\x9f\x98y")), "\"\xef\xbf\xbdy\"", "truncated 4-byte before ASCII");
  is_str(enc_str(S("\xe2\x82\n")), "\"\xef\xbf\xbd\\n\"", "truncated sequence then escape");
  msgpack_object o = o_str(S("k\"v"));
  is_str(enc(&o), "\"k\\\"v\"", "str object");
}

static void test_bin_ext(void) {
  msgpack_object o;
  o = o_bin(S(""));
  is_str(enc(&o), "\"\"", "empty bin");
  o = o_bin(S("\x00\x01"));
  is_str(enc(&o), "\"AAE=\"", "bin 2 bytes");
  o = o_bin(S("abc"));
  is_str(enc(&o), "\"YWJj\"", "bin 3 bytes");
  o = o_bin(S("abcd"));
  is_str(enc(&o), "\"YWJjZA==\"", "bin 4 bytes");
  o = o_bin(S("\xff\xfe\xfd\xfc\xfb"));
  is_str(enc(&o), "\"//79/Ps=\"", "bin high bytes");
  o = o_ext(0, S("abc"));
  is_str(enc(&o), "\"YWJj\"", "ext: base64 of payload only");
}

static void test_containers(void) {
  is_str(enc_packed(fill_nested), "{\"a\":[1,[],{\"x\":null}],\"b\":{},\"c\\n\":true}", "nested");
  is_str(enc_packed(fill_nonstr_keys),
         "{\"1\":\"one\",\"-2\":null,\"true\":0,\"null\":0,\"AAE=\":0,"
         "\"[\\\"q\\\\\\\"\\\",{\\\"7\\\":8}]\":0}",
         "non-string keys rendered as strings");
  msgpack_object k;
  k = o_f64(1.5);
  is_str(enc_key(&k), "\"1.5\"", "float key");
  k = o_str(S("a\tb"));
  is_str(enc_key(&k), "\"a\\tb\"", "str key escaped");

  char want[512] = "";
  for (int i = 0; i < SL_JSON_MAX_DEPTH; i++) strcat(want, "[");
  strcat(want, "1");
  for (int i = 0; i < SL_JSON_MAX_DEPTH; i++) strcat(want, "]");
  is_str(enc(make_deep(SL_JSON_MAX_DEPTH)), want, "nesting at the limit accepted");
  is_str(enc(make_deep(SL_JSON_MAX_DEPTH + 1)), "<error>", "nesting past the limit rejected");

  /* A map whose key is a deep array: the key's nesting counts too. */
  msgpack_object_kv kv = {*make_deep(SL_JSON_MAX_DEPTH), o_nil()};
  msgpack_object m = {.type = MSGPACK_OBJECT_MAP, .via.map = {1, &kv}};
  is_str(enc(&m), "<error>", "depth inside a map key counts");
  kv.key = *make_deep(SL_JSON_MAX_DEPTH - 1);
  is_int(sl_json_encode(&out, &m), 0, "map + key nesting at the limit accepted");

  /* Container keys inside a container key: written "{...}" / "[...]",
   * so that the text grows linearly, not doubling its escapes per level. */
  msgpack_object_kv in_kv = {o_str(S("a")), o_nil()};
  msgpack_object in_map = {.type = MSGPACK_OBJECT_MAP, .via.map = {1, &in_kv}};
  msgpack_object_kv mid_kv = {in_map, o_nil()};
  msgpack_object mid_map = {.type = MSGPACK_OBJECT_MAP, .via.map = {1, &mid_kv}};
  msgpack_object_kv top_kv = {mid_map, o_nil()};
  msgpack_object top = {.type = MSGPACK_OBJECT_MAP, .via.map = {1, &top_kv}};
  is_str(enc(&top), "{\"{\\\"{...}\\\":null}\":null}", "a map key inside a map key is \"{...}\"");
  static msgpack_object_kv chain[40];
  static msgpack_object maps[40];
  for (int i = 0; i < 40; i++) {
    chain[i] = (msgpack_object_kv){i ? maps[i - 1] : o_str(S("x")), o_nil()};
    maps[i] = (msgpack_object){.type = MSGPACK_OBJECT_MAP, .via.map = {1, &chain[i]}};
  }
  sl_buf_reset(&out);
  int rr = sl_json_encode(&out, &maps[30]);
  ok(rr == 0 && out.len < 64, "31 levels of map keys in map keys: short output (%zu bytes)", out.len);

  /* An error leaves the buffer as it was. */
  sl_buf_t b = {0};
  sl_buf_puts(&b, "keep");
  is_int(sl_json_encode(&b, make_deep(SL_JSON_MAX_DEPTH + 1)), SL_EDEPTH, "too deep -> SL_EDEPTH");
  is_int(b.len, 4, "buffer restored after error");
  sl_buf_free(&b);
}

int main(void) {
  test_scalars();
  test_floats();
  test_strings();
  test_bin_ext();
  test_containers();
  sl_buf_free(&out);
  return tap_done();
}
