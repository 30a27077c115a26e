/* msgpack_object -> JSON text.  Containers are walked with an explicit
 * stack of SL_JSON_MAX_DEPTH frames, so a hostile record cannot blow the C
 * stack; the only re-entry is a container used as a map key, which gets the
 * remaining depth budget.  Pure code, any thread. */
#include "ingest/json_encode.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtoa.h"

static int encode_value(sl_buf_t *out, const msgpack_object *root, int depth_left);
static int encode_key(sl_buf_t *out, const msgpack_object *k, int depth_left);

/* ---- numbers ------------------------------------------------------------ */

static int put_u64(sl_buf_t *out, uint64_t v) {
  int r = sl_buf_reserve(out, SL_DTOA_BUF);
  if (r) return r;
  out->len += sl_dtoa_u64(v, out->data + out->len);
  return 0;
}

static int put_i64(sl_buf_t *out, int64_t v) {
  int r = sl_buf_reserve(out, SL_DTOA_BUF);
  if (r) return r;
  out->len += sl_dtoa_i64(v, out->data + out->len);
  return 0;
}

/* The shortest text that reads back to the same value, in %g's layout,
 * with ".0" when it would otherwise read as an integer downstream ("1.0",
 * not "1"); non-finite values have no JSON form and become null. */
static int put_float(sl_buf_t *out, double d, int is_f32) {
  if (!isfinite(d)) return sl_buf_append(out, "null", 4);
  int r = sl_buf_reserve(out, SL_DTOA_BUF);
  if (r) return r;
  char *p = out->data + out->len;
  out->len += is_f32 ? sl_dtoa_float((float)d, p, SL_DTOA_POINT_ZERO)
                     : sl_dtoa_double(d, p, SL_DTOA_POINT_ZERO);
  return 0;
}

/* ---- strings ------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at s (1..4), or the negated
 * length of its maximal ill-formed prefix (-1..-3) to replace by one U+FFFD. */
static int utf8_seq(const unsigned char *s, size_t len) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  int need;
  unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0)
      lo = 0xA0; /* overlong */
    else if (c == 0xED)
      hi = 0x9F; /* surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0)
      lo = 0x90; /* overlong */
    else if (c == 0xF4)
      hi = 0x8F; /* above U+10FFFF */
  } else {
    return -1; /* stray continuation, C0/C1 overlong lead, F5..FF */
  }
  for (int i = 1; i <= need; i++) {
    if ((size_t)i >= len) return -i;
    unsigned char b = s[i];
    if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -i;
  }
  return need + 1;
}

static const char hexdig[] = "0123456789abcdef";

/* Byte classes for string escaping: 0 is copied verbatim; E needs an escape
 * (controls, '"', '\\'); U starts or continues a multi-byte UTF-8 sequence and
 * is validated by utf8_seq. */
enum { E = 1, U = 2 };
static const unsigned char str_class[256] = {
    E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E,
    0, 0, E, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, E, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
    U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
    U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
    U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
};

/* The short escape letter of a byte of class E, or 0 for \u00XX. */
static const char short_esc[0x60] = {
    ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n',  ['\r'] = 'r',
    ['\t'] = 't', ['"'] = '"',  ['\\'] = '\\',
};

/* True when none of the 8 bytes at s needs attention (all are printable
 * ASCII other than '"' and '\\').  The tests may report a byte above a real
 * hit as a hit too; the byte loop that follows sorts that out. */
static inline bool plain8(const unsigned char *s) {
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  uint64_t v;
  memcpy(&v, s, 8);
  uint64_t q = v ^ (ones * '"'), bs = v ^ (ones * '\\');
  uint64_t hit = v | ((v - ones * 0x20) & ~v) | ((q - ones) & ~q) | ((bs - ones) & ~bs);
  return (hit & highs) == 0;
}

/* Copies runs of verbatim bytes (ASCII and well-formed UTF-8) with one
 * memcpy each.  Room for the string copied 1:1 and both quotes is reserved
 * up front; only escapes and replacements, which grow the text, reserve more. */
static int encode_string(sl_buf_t *out, const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  int r = sl_buf_reserve(out, len + 2);
  if (r) return r;
  char *p = out->data + out->len;
  *p++ = '"';
  size_t i = 0, run = 0; /* s[run..i) is a pending run copied verbatim */
  for (;;) {
    while (i + 8 <= len && plain8(s + i)) i += 8;
    while (i < len && str_class[s[i]] == 0) i++;
    if (i == len) break;
    unsigned char c = s[i];
    int n = 1;
    if (str_class[c] == U) {
      n = utf8_seq(s + i, len - i);
      if (n > 1) {
        i += (size_t)n;
        continue;
      }
    }
    memcpy(p, s + run, i - run);
    p += i - run;
    /* At most 6 bytes for this one, 1:1 for the rest, and the closing quote. */
    size_t used = (size_t)(p - out->data);
    if (out->cap - used < 6 + (len - i)) {
      out->len = used;
      if ((r = sl_buf_reserve(out, 6 + (len - i)))) return r;
      p = out->data + used;
    }
    if (n < 0) {
      memcpy(p, "\xEF\xBF\xBD", 3); /* U+FFFD */
      p += 3;
      i += (size_t)-n;
    } else if (short_esc[c]) {
      *p++ = '\\';
      *p++ = short_esc[c];
      i++;
    } else {
      memcpy(p, "\\u00", 4);
      p[4] = hexdig[c >> 4];
      p[5] = hexdig[c & 15];
      p += 6;
      i++;
    }
    run = i;
  }
  if (i > run) { /* s is NULL for msgpack-c's empty strings */
    memcpy(p, s + run, i - run);
    p += i - run;
  }
  *p++ = '"';
  out->len = (size_t)(p - out->data);
  return 0;
}

static int encode_base64(sl_buf_t *out, const char *str, size_t len) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *s = (const unsigned char *)str;
  int r = sl_buf_reserve(out, (len + 2) / 3 * 4 + 2);
  if (r) return r;
  char *p = out->data + out->len;
  *p++ = '"';
  size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
    *p++ = tbl[v >> 18];
    *p++ = tbl[(v >> 12) & 63];
    *p++ = tbl[(v >> 6) & 63];
    *p++ = tbl[v & 63];
  }
  if (i < len) {
    uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0);
    *p++ = tbl[v >> 18];
    *p++ = tbl[(v >> 12) & 63];
    *p++ = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
    *p++ = '=';
  }
  *p++ = '"';
  out->len = (size_t)(p - out->data);
  return 0;
}

/* ---- values ------------------------------------------------------------- */

static int encode_scalar(sl_buf_t *out, const msgpack_object *o) {
  switch (o->type) {
    case MSGPACK_OBJECT_NIL:
      return sl_buf_append(out, "null", 4);
    case MSGPACK_OBJECT_BOOLEAN:
      return o->via.boolean ? sl_buf_append(out, "true", 4) : sl_buf_append(out, "false", 5);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
      return put_u64(out, o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
      return put_i64(out, o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
      return put_float(out, o->via.f64, 1);
    case MSGPACK_OBJECT_FLOAT64:
      return put_float(out, o->via.f64, 0);
    case MSGPACK_OBJECT_STR:
      return encode_string(out, o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
      return encode_base64(out, o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_EXT:
      return encode_base64(out, o->via.ext.ptr, o->via.ext.size);
    default:
      return sl_buf_append(out, "null", 4); /* unknown type: never emit invalid JSON */
  }
}

typedef struct {
  const msgpack_object *o; /* an array or map being walked */
  uint32_t i;              /* index of the element being emitted */
} frame_t;

static int is_container(const msgpack_object *o) {
  return o->type == MSGPACK_OBJECT_ARRAY || o->type == MSGPACK_OBJECT_MAP;
}

static uint32_t container_size(const msgpack_object *o) {
  return o->type == MSGPACK_OBJECT_ARRAY ? o->via.array.size : o->via.map.size;
}

/* Emits the key of element i when walking a map, and returns the value to
 * emit next.  `depth_left` is the budget left for a container key. */
static int child(sl_buf_t *out, const frame_t *f, int depth_left, const msgpack_object **next) {
  if (f->o->type == MSGPACK_OBJECT_ARRAY) {
    *next = &f->o->via.array.ptr[f->i];
    return 0;
  }
  const msgpack_object_kv *kv = &f->o->via.map.ptr[f->i];
  int r = encode_key(out, &kv->key, depth_left);
  if (!r) r = sl_buf_putc(out, ':');
  *next = &kv->val;
  return r;
}

static int encode_value(sl_buf_t *out, const msgpack_object *root, int depth_left) {
  frame_t stack[SL_JSON_MAX_DEPTH];
  int sp = 0, r;
  const msgpack_object *cur = root;
  for (;;) {
    if (is_container(cur)) {
      int is_arr = cur->type == MSGPACK_OBJECT_ARRAY;
      if (sp >= depth_left) return SL_EDEPTH;
      if (container_size(cur) == 0) {
        if ((r = sl_buf_append(out, is_arr ? "[]" : "{}", 2))) return r;
      } else {
        if ((r = sl_buf_putc(out, is_arr ? '[' : '{'))) return r;
        stack[sp] = (frame_t){cur, 0};
        sp++;
        if ((r = child(out, &stack[sp - 1], depth_left - sp, &cur))) return r;
        continue;
      }
    } else if ((r = encode_scalar(out, cur))) {
      return r;
    }
    /* `cur` is complete: close finished containers, move to the next sibling. */
    for (;;) {
      if (sp == 0) return 0;
      frame_t *f = &stack[sp - 1];
      if (++f->i < container_size(f->o)) {
        if ((r = sl_buf_putc(out, ','))) return r;
        if ((r = child(out, f, depth_left - sp, &cur))) return r;
        break;
      }
      if ((r = sl_buf_putc(out, f->o->type == MSGPACK_OBJECT_ARRAY ? ']' : '}'))) return r;
      sp--;
    }
  }
}

static int encode_key(sl_buf_t *out, const msgpack_object *k, int depth_left) {
  switch (k->type) {
    case MSGPACK_OBJECT_STR:
      return encode_string(out, k->via.str.ptr, k->via.str.size);
    case MSGPACK_OBJECT_BIN:
    case MSGPACK_OBJECT_EXT:
      return encode_scalar(out, k); /* already a JSON string */
    case MSGPACK_OBJECT_ARRAY:
    case MSGPACK_OBJECT_MAP: {
      /* Rare: render the container, then quote its text.  A container key
       * inside that text is written as "{...}" or "[...]": quoting text
       * that holds quoted text doubles its backslashes at each level, and
       * keys nested in keys would grow the output exponentially. */
      static _Thread_local int in_key;
      if (in_key) return sl_buf_puts(out, k->type == MSGPACK_OBJECT_MAP ? "\"{...}\"" : "\"[...]\"");
      sl_buf_t tmp = {0};
      in_key = 1;
      int r = encode_value(&tmp, k, depth_left);
      in_key = 0;
      if (!r) r = encode_string(out, tmp.data, tmp.len);
      sl_buf_free(&tmp);
      return r;
    }
    default: {
      /* Scalars' JSON text (digits, null, true, false) needs no escaping. */
      int r = sl_buf_putc(out, '"');
      if (!r) r = encode_scalar(out, k);
      if (!r) r = sl_buf_putc(out, '"');
      return r;
    }
  }
}

/* ---- public ------------------------------------------------------------- */

int sl_json_encode(sl_buf_t *out, const msgpack_object *o) {
  size_t mark = out->len;
  int r = encode_value(out, o, SL_JSON_MAX_DEPTH);
  if (r) out->len = mark;
  return r;
}

int sl_json_encode_string(sl_buf_t *out, const char *s, size_t len) {
  size_t mark = out->len;
  int r = encode_string(out, s, len);
  if (r) out->len = mark;
  return r;
}

int sl_json_encode_key(sl_buf_t *out, const msgpack_object *k) {
  size_t mark = out->len;
  int r = encode_key(out, k, SL_JSON_MAX_DEPTH);
  if (r) out->len = mark;
  return r;
}
