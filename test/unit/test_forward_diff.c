/* Differential test of forward_decode.c's framing against msgpack-c's own
 * unpacker.  The decoder scans and builds its msgpack_objects itself instead
 * of calling msgpack_unpack, and promises the same types and values as
 * msgpack-c; a consumer (a sink, a route) reads those objects as if msgpack-c
 * had made them.  This test holds the decoder to that on random values of
 * every type and header width (written byte by byte, since msgpack_pack_*
 * always picks the narrowest width), fed whole, split at random points and
 * truncated, and on random and mutated bytes, where both decoders must agree
 * on "complete value / needs more bytes / invalid".
 *
 * Deterministic for a given seed: the seed is printed, and SEED=<n> in the
 * environment (decimal or 0x-hex) replays a run. */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "forward/forward_decode.h"
#include "tap.h"

#define N_VALUES 20000  /* random values compared whole, truncated and streamed */
#define MAX_NEST 12     /* deepest nesting of a generated value (before wrapping) */
#define N_RANDOM 20000  /* random byte strings */
#define N_MUTATED 10000 /* mutated valid values */
#define MAX_DIAG 5      /* failures described in full per section */

/* The limits under test.  msgpack-c has no size limit, so chunk_size_limit
 * is as large as it goes and SL_ETOOBIG never comes into it; max_depth is
 * msgpack-c's own nesting limit (MSGPACK_EMBED_STACK_SIZE), so both refuse
 * the same values for depth. */
static const sl_fwd_limits_t limits = {
    .chunk_size_limit = SIZE_MAX,
    .decompression_size_limit = 1 << 20,
    .max_depth = 32,
    .skip_invalid_event = true,
    .max_values = 0,
    .now = NULL,
};

/* ---- randomness ---------------------------------------------------------- */

static uint64_t rng;

static uint64_t next_rand(void) {
  /* splitmix64 */
  uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t below(uint64_t n) { return n ? next_rand() % n : 0; }
static bool one_in(uint64_t n) { return below(n) == 0; }

/* ---- byte buffers -------------------------------------------------------- */

typedef struct {
  uint8_t *p;
  size_t len, cap;
} bytes_t;

static void reserve(bytes_t *b, size_t more) {
  if (b->cap - b->len >= more) return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap - b->len < more) cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) abort();
  b->p = p;
  b->cap = cap;
}

static void put(bytes_t *b, const void *src, size_t n) {
  reserve(b, n);
  if (n) memcpy(b->p + b->len, src, n);
  b->len += n;
}

static void put1(bytes_t *b, uint8_t c) { put(b, &c, 1); }

static void put_be(bytes_t *b, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; i--) put1(b, (uint8_t)(v >> (8 * i)));
}

static void put_random(bytes_t *b, size_t n) {
  reserve(b, n);
  for (size_t i = 0; i < n; i++) b->p[b->len++] = (uint8_t)next_rand();
}

static void bytes_free(bytes_t *b) {
  free(b->p);
  memset(b, 0, sizeof(*b));
}

/* ---- generating values of every type and width --------------------------- */

enum {
  S_POSFIX, S_NEGFIX, S_NIL, S_FALSE, S_TRUE,
  S_U8, S_U16, S_U32, S_U64, S_I8, S_I16, S_I32, S_I64, S_F32, S_F64,
  S_FIXSTR, S_STR8, S_STR16, S_STR32, S_BIN8, S_BIN16, S_BIN32,
  S_FIXEXT1, S_FIXEXT2, S_FIXEXT4, S_FIXEXT8, S_FIXEXT16, S_EXT8, S_EXT16, S_EXT32,
  C_FIXARRAY, C_ARRAY16, C_ARRAY32, C_FIXMAP, C_MAP16, C_MAP32,
  N_KINDS
};

static const char *const kind_name[N_KINDS] = {
    "positive fixint", "negative fixint", "nil", "false", "true",
    "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
    "float32", "float64", "fixstr", "str8", "str16", "str32", "bin8", "bin16",
    "bin32", "fixext1", "fixext2", "fixext4", "fixext8", "fixext16", "ext8",
    "ext16", "ext32", "fixarray", "array16", "array32", "fixmap", "map16", "map32",
};

static size_t made[N_KINDS];     /* how many of each kind were generated */
static size_t made_wide[N_KINDS]; /* containers with more than 15 elements */

static uint64_t width_max(int bits) { return bits == 64 ? UINT64_MAX : (1ull << bits) - 1; }

/* An unsigned value of `bits` bits that favours the edges: 0, 1, the
 * width's maximum, and every narrower width's maximum and one past it
 * (127/128, 255/256, 65535/65536, ...). */
static uint64_t some_uint(int bits) {
  uint64_t max = width_max(bits);
  switch (below(6)) {
  case 0: return max - below(2);
  case 1: return below(2);
  case 2: {
    int w = 1 + (int)below((uint64_t)bits); /* a width up to this one */
    return (width_max(w) + below(2)) & max;
  }
  default: return next_rand() & width_max(1 + (int)below((uint64_t)bits));
  }
}

/* A signed value of `bits` bits, favouring 0, -1, the width's extremes and
 * the extremes of every narrower width (-32/-33, 127/128, -128/-129, ...). */
static int64_t some_int(int bits) {
  int64_t max = (int64_t)width_max(bits - 1), min = -max - 1;
  switch (below(6)) {
  case 0: return max - (int64_t)below(2);
  case 1: return min + (int64_t)below(2);
  case 2: return -(int64_t)below(2);
  case 3: {
    int64_t e = (int64_t)1 << below((uint64_t)bits - 1); /* at most 2^(bits-2) */
    int64_t c[4] = {e - 1, e, -e, -e - 1};
    return c[below(4)];
  }
  case 4: return -32 - (int64_t)below(2);
  default: {
    uint64_t v = next_rand() & width_max(1 + (int)below((uint64_t)bits));
    return one_in(2) ? (int64_t)(v >> 1) : -(int64_t)(v >> 1) - 1;
  }
  }
}

static uint32_t some_f32(void) {
  static const uint32_t special[] = {
      0x00000000, 0x80000000, /* 0.0, -0.0 */
      0x7f800000, 0xff800000, /* inf, -inf */
      0x7fc00000, 0xffc00000, 0x7f800001, 0x7fbfffff, /* NaNs, signalling too */
      0x00000001, 0x807fffff, 0x00800000, 0x7f7fffff, /* subnormal, min, max */
      0x3f800000, 0xbfc00000,                         /* 1.0, -1.5 */
  };
  switch (below(3)) {
  case 0: return special[below(sizeof(special) / sizeof(special[0]))];
  case 1: return (uint32_t)next_rand();
  default: {
    float f = (float)((double)(int64_t)next_rand() / (double)(1ull << below(64)));
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
  }
  }
}

static uint64_t some_f64(void) {
  static const uint64_t special[] = {
      0x0000000000000000ull, 0x8000000000000000ull, /* 0.0, -0.0 */
      0x7ff0000000000000ull, 0xfff0000000000000ull, /* inf, -inf */
      0x7ff8000000000000ull, 0xfff8000000000001ull, 0x7ff0000000000001ull, /* NaNs */
      0x0000000000000001ull, 0x000fffffffffffffull, 0x0010000000000000ull,
      0x7fefffffffffffffull, 0x3ff0000000000000ull, 0xbff8000000000000ull,
  };
  switch (below(3)) {
  case 0: return special[below(sizeof(special) / sizeof(special[0]))];
  case 1: return next_rand();
  default: {
    double d = (double)(int64_t)next_rand() / (double)(1ull << below(64));
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
  }
  }
}

/* A payload length a field of maximum `max` can hold: mostly short, some
 * at the field's own edge (31, 255) or around the 8-bit edge, rarely past
 * the 16-bit edge, so wide fields also carry payloads that need them. */
static uint64_t some_len(uint64_t max) {
  uint64_t r = below(2000), n;
  if (r == 0)
    n = 65535 + below(3);
  else if (r < 60)
    n = max <= 255 ? max : 256;
  else if (r < 200)
    n = 250 + below(12);
  else if (r < 400)
    n = below(600);
  else
    n = below(24);
  return n > max ? max : n;
}

static int8_t some_ext_type(void) {
  static const int8_t special[] = {0, -1, -128, 127, 1, -2};
  return one_in(2) ? special[below(6)] : (int8_t)next_rand();
}

static void gen_scalar(bytes_t *b, int kind) {
  made[kind]++;
  switch (kind) {
  case S_POSFIX: put1(b, (uint8_t)(one_in(4) ? 127 * below(2) : below(128))); break;
  case S_NEGFIX: put1(b, (uint8_t)(0xe0 + (one_in(4) ? 31 * below(2) : below(32)))); break;
  case S_NIL: put1(b, 0xc0); break;
  case S_FALSE: put1(b, 0xc2); break;
  case S_TRUE: put1(b, 0xc3); break;
  case S_U8: case S_U16: case S_U32: case S_U64: {
    int n = 1 << (kind - S_U8);
    put1(b, (uint8_t)(0xcc + (kind - S_U8)));
    put_be(b, some_uint(8 * n), n);
    break;
  }
  case S_I8: case S_I16: case S_I32: case S_I64: {
    int n = 1 << (kind - S_I8);
    put1(b, (uint8_t)(0xd0 + (kind - S_I8)));
    put_be(b, (uint64_t)some_int(8 * n), n);
    break;
  }
  case S_F32: put1(b, 0xca), put_be(b, some_f32(), 4); break;
  case S_F64: put1(b, 0xcb), put_be(b, some_f64(), 8); break;
  case S_FIXSTR: {
    uint64_t n = some_len(31);
    put1(b, (uint8_t)(0xa0 | n));
    put_random(b, n);
    break;
  }
  case S_STR8: case S_STR16: case S_STR32:
  case S_BIN8: case S_BIN16: case S_BIN32: {
    bool str = kind <= S_STR32;
    int w = str ? kind - S_STR8 : kind - S_BIN8;
    int n = 1 << w;
    uint64_t len = some_len(width_max(8 * n));
    put1(b, (uint8_t)((str ? 0xd9 : 0xc4) + w));
    put_be(b, len, n);
    put_random(b, len);
    break;
  }
  case S_FIXEXT1: case S_FIXEXT2: case S_FIXEXT4: case S_FIXEXT8: case S_FIXEXT16:
    put1(b, (uint8_t)(0xd4 + (kind - S_FIXEXT1)));
    put1(b, (uint8_t)some_ext_type());
    put_random(b, (size_t)1 << (kind - S_FIXEXT1));
    break;
  case S_EXT8: case S_EXT16: case S_EXT32: {
    int n = 1 << (kind - S_EXT8);
    uint64_t len = some_len(width_max(8 * n));
    put1(b, (uint8_t)(0xc7 + (kind - S_EXT8)));
    put_be(b, len, n);
    put1(b, (uint8_t)some_ext_type());
    put_random(b, len);
    break;
  }
  default: abort();
  }
}

/* One byte values, for the elements of wide containers. */
static void gen_tiny(bytes_t *b) {
  static const int k[] = {S_POSFIX, S_NEGFIX, S_NIL, S_FALSE, S_TRUE};
  gen_scalar(b, k[below(5)]);
}

static void gen_value(bytes_t *b, int depth, int nest, int *budget);

static void gen_container(bytes_t *b, int kind, int depth, int nest, int *budget) {
  bool map = kind >= C_FIXMAP;
  int w = map ? kind - C_FIXMAP : kind - C_FIXARRAY; /* 0 fix, 1 16-bit, 2 32-bit */
  uint64_t n;
  bool wide = w > 0 && one_in(150);
  if (wide) {
    n = w == 2 && one_in(8) ? 65536 + below(4) : 16 + below(300);
    made_wide[kind]++;
  } else {
    uint64_t most = *budget > 15 ? 15 : (uint64_t)(*budget > 0 ? *budget : 0);
    n = below(most + 1);
    if (w > 0 && one_in(20)) n = 0;
  }
  made[kind]++;
  if (w == 0) put1(b, (uint8_t)((map ? 0x80 : 0x90) | n));
  else if (w == 1) put1(b, map ? 0xde : 0xdc), put_be(b, n, 2);
  else put1(b, map ? 0xdf : 0xdd), put_be(b, n, 4);
  for (uint64_t i = 0; i < n * (map ? 2 : 1); i++) {
    if (wide)
      gen_tiny(b);
    else
      gen_value(b, depth + 1, nest, budget);
  }
}

/* A value whose containers nest at most `nest` deep; `budget` bounds the
 * number of values a container is allowed to declare. */
static void gen_value(bytes_t *b, int depth, int nest, int *budget) {
  (*budget)--;
  if (depth < nest && *budget > 0 && one_in(3))
    gen_container(b, C_FIXARRAY + (int)below(6), depth, nest, budget);
  else
    gen_scalar(b, (int)below(S_EXT32 + 1));
}

/* A top-level value.  Half are wrapped in a one-element array, and every
 * value starting with nil is: a bare nil between messages is a keepalive the
 * decoder skips, where msgpack-c returns it. */
static void gen_top(bytes_t *b) {
  bytes_t v = {0};
  int budget = one_in(10) ? 1 + (int)below(400) : 1 + (int)below(64);
  gen_value(&v, 0, (int)below(MAX_NEST + 1), &budget);
  if (v.p[0] == 0xc0 || one_in(2)) put1(b, 0x91);
  put(b, v.p, v.len);
  bytes_free(&v);
}

/* ---- comparing trees ----------------------------------------------------- */

static size_t nodes_compared;

/* msgpack_object_equal's comparison made stricter: floats compare by their
 * bits (so -0.0 differs from 0.0 and a NaN equals itself), and sizes, types
 * and bytes of strings, bin and ext are all compared. */
static bool same_obj(const msgpack_object *a, const msgpack_object *b) {
  nodes_compared++;
  if (a->type != b->type) return false;
  switch (a->type) {
  case MSGPACK_OBJECT_NIL: return true;
  case MSGPACK_OBJECT_BOOLEAN: return a->via.boolean == b->via.boolean;
  case MSGPACK_OBJECT_POSITIVE_INTEGER: return a->via.u64 == b->via.u64;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER: return a->via.i64 == b->via.i64;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64: return memcmp(&a->via.f64, &b->via.f64, sizeof(double)) == 0;
  case MSGPACK_OBJECT_STR:
    return a->via.str.size == b->via.str.size &&
           (a->via.str.size == 0 || memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0);
  case MSGPACK_OBJECT_BIN:
    return a->via.bin.size == b->via.bin.size &&
           (a->via.bin.size == 0 || memcmp(a->via.bin.ptr, b->via.bin.ptr, a->via.bin.size) == 0);
  case MSGPACK_OBJECT_EXT:
    return a->via.ext.type == b->via.ext.type && a->via.ext.size == b->via.ext.size &&
           (a->via.ext.size == 0 || memcmp(a->via.ext.ptr, b->via.ext.ptr, a->via.ext.size) == 0);
  case MSGPACK_OBJECT_ARRAY:
    if (a->via.array.size != b->via.array.size) return false;
    for (uint32_t i = 0; i < a->via.array.size; i++)
      if (!same_obj(&a->via.array.ptr[i], &b->via.array.ptr[i])) return false;
    return true;
  case MSGPACK_OBJECT_MAP:
    if (a->via.map.size != b->via.map.size) return false;
    for (uint32_t i = 0; i < a->via.map.size; i++)
      if (!same_obj(&a->via.map.ptr[i].key, &b->via.map.ptr[i].key) ||
          !same_obj(&a->via.map.ptr[i].val, &b->via.map.ptr[i].val))
        return false;
    return true;
  }
  return false; /* a type msgpack-c never makes */
}

static bool has_nan(const msgpack_object *o) {
  switch (o->type) {
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64: return isnan(o->via.f64);
  case MSGPACK_OBJECT_ARRAY:
    for (uint32_t i = 0; i < o->via.array.size; i++)
      if (has_nan(&o->via.array.ptr[i])) return true;
    return false;
  case MSGPACK_OBJECT_MAP:
    for (uint32_t i = 0; i < o->via.map.size; i++)
      if (has_nan(&o->via.map.ptr[i].key) || has_nan(&o->via.map.ptr[i].val)) return true;
    return false;
  default: return false;
  }
}

/* The frame matches what msgpack-c made of ref_size bytes: the same tree by
 * same_obj, and by msgpack_object_equal itself (which calls NaN unequal to
 * everything, itself included). */
static bool agree(const sl_fwd_frame_t *f, const msgpack_object *ref, size_t ref_size) {
  return f->size == ref_size && same_obj(&f->root, ref) &&
         msgpack_object_equal(f->root, *ref) == !has_nan(ref);
}

/* ---- diagnostics ---------------------------------------------------------- */

static void hex(const char *label, const uint8_t *p, size_t n) {
  printf("#   %s (%zu bytes):", label, n);
  for (size_t i = 0; i < n && i < 96; i++) printf(" %02x", p[i]);
  printf("%s\n", n > 96 ? " ..." : "");
}

/* msgpack-c's rendering of an object, its strings' raw bytes made printable
 * so that a newline in one cannot break the TAP output. */
static void show(const char *label, const msgpack_object *o) {
  char buf[400] = "";
  msgpack_object_print_buffer(buf, sizeof(buf), *o);
  for (char *c = buf; *c; c++)
    if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) *c = '.';
  printf("#   %s: %s\n", label, buf);
}

static const char *unpack_name(int r) {
  switch (r) {
  case MSGPACK_UNPACK_SUCCESS: return "SUCCESS";
  case MSGPACK_UNPACK_EXTRA_BYTES: return "EXTRA_BYTES";
  case MSGPACK_UNPACK_CONTINUE: return "CONTINUE";
  case MSGPACK_UNPACK_PARSE_ERROR: return "PARSE_ERROR";
  case MSGPACK_UNPACK_NOMEM_ERROR: return "NOMEM_ERROR";
  }
  return "?";
}

static void show_next(const char *label, int r) {
  printf("#   %s: %d%s%s\n", label, r, r < 0 ? " " : "", r < 0 ? sl_err_name(r) : "");
}

/* msgpack-c's verdict on p[*off..len); advances *off only on success, and
 * sets *used to the bytes consumed. */
static int ref_next(msgpack_unpacked *u, const uint8_t *p, size_t len, size_t *off, size_t *used) {
  size_t o = *off;
  int r = msgpack_unpack_next(u, (const char *)p, len, &o);
  *used = 0;
  if (r == MSGPACK_UNPACK_SUCCESS) {
    *used = o - *off;
    *off = o;
  }
  return r;
}

static sl_fwd_decoder_t *decoder_new(void) {
  sl_fwd_decoder_t *d = sl_fwd_decoder_new(&limits);
  if (!d) abort();
  return d;
}

static void feed(sl_fwd_decoder_t *d, const uint8_t *p, size_t n) {
  if (sl_fwd_decoder_feed(d, (const char *)p, n) != 0) abort();
}

/* ---- the comparator can tell what it must tell ---------------------------- */

/* Decodes `a` with the project's decoder and `b` with msgpack-c and says
 * whether agree() finds them the same. */
static bool pair_agrees(const char *a, size_t alen, const char *b, size_t blen) {
  sl_fwd_decoder_t *d = decoder_new();
  feed(d, (const uint8_t *)a, alen);
  sl_fwd_frame_t f = {0};
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0, used;
  bool same = false;
  if (sl_fwd_decoder_next(d, &f) == 1 &&
      ref_next(&u, (const uint8_t *)b, blen, &off, &used) == MSGPACK_UNPACK_SUCCESS)
    same = agree(&f, &u.data, used);
  sl_fwd_frame_free(&f);
  msgpack_unpacked_destroy(&u);
  sl_fwd_decoder_free(d);
  return same;
}

#define PAIR(a, b) pair_agrees(a, sizeof(a) - 1, b, sizeof(b) - 1)

static void test_comparator(void) {
  ok(PAIR("\x92\xca\x3f\xc0\x00\x00\xcd\x01\x00", "\x92\xca\x3f\xc0\x00\x00\xcd\x01\x00"),
     "comparison: [float32 1.5, uint16 256] agrees with itself");
  ok(!PAIR("\x91\xca\x3f\xc0\x00\x00", "\x91\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00"),
     "comparison: float32 1.5 differs from float64 1.5");
  ok(!PAIR("\x91\xcb\x00\x00\x00\x00\x00\x00\x00\x00", "\x91\xcb\x80\x00\x00\x00\x00\x00\x00\x00"),
     "comparison: 0.0 differs from -0.0 (msgpack_object_equal alone would call them equal)");
  ok(PAIR("\x91\xcb\x7f\xf8\x00\x00\x00\x00\x00\x01", "\x91\xcb\x7f\xf8\x00\x00\x00\x00\x00\x01"),
     "comparison: a NaN agrees with the same NaN");
  ok(!PAIR("\x91\xcb\x7f\xf8\x00\x00\x00\x00\x00\x01", "\x91\xcb\x7f\xf8\x00\x00\x00\x00\x00\x02"),
     "comparison: NaNs with different payloads differ");
  ok(!PAIR("\x91\xa2\x61\x62", "\x91\xc4\x02\x61\x62"), "comparison: str \"ab\" differs from bin \"ab\"");
  ok(!PAIR("\x91\xd4\x01\x00", "\x91\xd4\x02\x00"), "comparison: ext type 1 differs from ext type 2");
  ok(!PAIR("\x91\xd4\x01\x00", "\x91\xd4\x01\x01"), "comparison: ext bytes are compared");
  ok(!PAIR("\x91\x01", "\x91\xcc\x01"),
     "comparison: the same tree from a different number of bytes differs (frame size)");
  ok(!PAIR("\x92\x01\x02", "\x92\x01\x03"), "comparison: array elements are compared");
  ok(!PAIR("\x81\x01\x02", "\x81\x03\x02"), "comparison: map keys are compared");
  ok(!PAIR("\x91\xff", "\x91\xd0\xfe"), "comparison: -1 differs from -2");
}

/* ---- whole values --------------------------------------------------------- */

static bytes_t vals[N_VALUES];

static void test_whole(void) {
  nodes_compared = 0;
  size_t gen_bad = 0, bad = 0, diag = 0;
  sl_fwd_decoder_t *d = decoder_new();
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  for (int i = 0; i < N_VALUES; i++) {
    const bytes_t *v = &vals[i];
    size_t off = 0, used;
    int r = ref_next(&u, v->p, v->len, &off, &used);
    if (r != MSGPACK_UNPACK_SUCCESS || used != v->len) {
      if (gen_bad++ < MAX_DIAG) {
        printf("# value %d: msgpack-c says %s after %zu bytes\n", i, unpack_name(r), used);
        hex("input", v->p, v->len);
      }
      continue;
    }
    feed(d, v->p, v->len);
    sl_fwd_frame_t f = {0};
    int p = sl_fwd_decoder_next(d, &f);
    bool same = p == 1 && agree(&f, &u.data, used);
    sl_fwd_frame_t extra = {0};
    int p2 = p == 1 ? sl_fwd_decoder_next(d, &extra) : 0; /* nothing more */
    if (p2 == 1) sl_fwd_frame_free(&extra);
    if (!same || p2 != 0) {
      if (diag++ < MAX_DIAG) {
        printf("# value %d: the decoders disagree\n", i);
        hex("input", v->p, v->len);
        show_next("sl_fwd_decoder_next", p);
        if (p == 1) printf("#   frame size %zu, msgpack-c consumed %zu\n", f.size, used);
        if (p == 1) show("project  ", &f.root);
        show("msgpack-c", &u.data);
        if (p2 != 0) show_next("then sl_fwd_decoder_next", p2);
      }
      bad++;
      sl_fwd_frame_free(&f);
      sl_fwd_decoder_free(d);
      d = decoder_new(); /* an error is sticky */
      continue;
    }
    sl_fwd_frame_free(&f);
  }
  msgpack_unpacked_destroy(&u);
  sl_fwd_decoder_free(d);
  is_int(gen_bad, 0, "msgpack-c decodes each of the %d generated values whole", N_VALUES);
  is_int(bad, 0, "%d values fed whole: the project's frame has msgpack-c's tree, types and size",
         N_VALUES);
  printf("# compared %d values, %zu msgpack objects\n", N_VALUES, nodes_compared);
}

/* Every type and header width was generated, so the comparisons covered them. */
static void test_coverage(void) {
  int missing = 0;
  for (int k = 0; k < N_KINDS; k++) {
    if (made[k] < 50) {
      printf("#   only %zu %s generated\n", made[k], kind_name[k]);
      missing++;
    }
  }
  is_int(missing, 0, "every type and header width was generated at least 50 times");
  int narrow = 0;
  for (int k = C_ARRAY16; k <= C_MAP32; k++) {
    if (k == C_FIXMAP) continue;
    if (made_wide[k] == 0) {
      printf("#   no %s with more than 15 elements generated\n", kind_name[k]);
      narrow++;
    }
  }
  is_int(narrow, 0, "array16/32 and map16/32 also carried more than 15 elements");
}

/* ---- truncated values ----------------------------------------------------- */

static void test_truncated(void) {
  size_t bad = 0, diag = 0, prefixes = 0;
  sl_fwd_decoder_t *d = decoder_new();
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  for (int i = 0; i < N_VALUES; i++) {
    const bytes_t *v = &vals[i];
    if (v->len < 2) continue;
    size_t tries = v->len <= 40 ? v->len - 1 : 6;
    for (size_t t = 0; t < tries; t++) {
      size_t k = v->len <= 40 ? t + 1 : 1 + below(v->len - 1);
      prefixes++;
      size_t off = 0, used;
      int r = ref_next(&u, v->p, k, &off, &used);
      feed(d, v->p, k);
      sl_fwd_frame_t f = {0};
      int p = sl_fwd_decoder_next(d, &f);
      int p2 = 0;
      bool same = false;
      if (p == 0) {
        /* The rest of the bytes complete the same value. */
        feed(d, v->p + k, v->len - k);
        off = 0;
        ref_next(&u, v->p, v->len, &off, &used);
        p2 = sl_fwd_decoder_next(d, &f);
        same = p2 == 1 && agree(&f, &u.data, used);
      }
      if (r != MSGPACK_UNPACK_CONTINUE || p != 0 || !same) {
        if (diag++ < MAX_DIAG) {
          printf("# value %d cut after %zu bytes\n", i, k);
          hex("input", v->p, v->len);
          printf("#   msgpack-c on the prefix: %s\n", unpack_name(r));
          show_next("sl_fwd_decoder_next on the prefix", p);
          if (p == 0) show_next("sl_fwd_decoder_next with the rest", p2);
        }
        bad++;
        sl_fwd_frame_free(&f);
        sl_fwd_decoder_free(d);
        d = decoder_new();
        continue;
      }
      sl_fwd_frame_free(&f);
    }
  }
  msgpack_unpacked_destroy(&u);
  sl_fwd_decoder_free(d);
  is_int(bad, 0,
         "%zu proper prefixes: need more bytes (0) in both decoders, never a frame, and the "
         "rest completes the value",
         prefixes);
}

/* ---- a stream split at random points -------------------------------------- */

typedef struct {
  sl_fwd_frame_t f;
  size_t idx; /* which value it should be */
} held_t;

#define N_HELD 8

typedef struct {
  const char *what;
  bytes_t s;      /* the whole stream */
  size_t *starts; /* where each value starts in it */
  held_t held[N_HELD];
  int n_held;
  msgpack_unpacked u;
  size_t bad, diag;
} stream_t;

/* Checks a random held frame against msgpack-c's decoding of its value in
 * the whole stream, and frees it. */
static void release(stream_t *st) {
  int h = (int)below((uint64_t)st->n_held);
  held_t x = st->held[h];
  st->held[h] = st->held[--st->n_held];
  size_t off = st->starts[x.idx], used;
  int r = ref_next(&st->u, st->s.p, st->s.len, &off, &used);
  if (r != MSGPACK_UNPACK_SUCCESS || !agree(&x.f, &st->u.data, used)) {
    if (st->diag++ < MAX_DIAG) {
      printf("# %s: frame %zu differs from msgpack-c's value at offset %zu\n", st->what, x.idx,
             st->starts[x.idx]);
      hex("value", st->s.p + st->starts[x.idx], x.f.size);
      printf("#   frame size %zu, msgpack-c %s consumed %zu\n", x.f.size, unpack_name(r), used);
      show("project  ", &x.f.root);
      if (r == MSGPACK_UNPACK_SUCCESS) show("msgpack-c", &st->u.data);
    }
    st->bad++;
  }
  sl_fwd_frame_free(&x.f);
}

/* Feeds the first n values, some after a few keepalive nils, in pieces of
 * random size (at most max_chunk), holding up to N_HELD frames across later
 * feeds before checking them: a frame must stay intact while its decoder
 * moves on, as ingest holds back stalled messages. */
static void test_stream(int n, size_t max_chunk, const char *what) {
  stream_t st = {.what = what};
  st.starts = malloc((size_t)n * sizeof(*st.starts));
  if (!st.starts) abort();
  for (int i = 0; i < n; i++) {
    if (one_in(4))
      for (uint64_t k = 1 + below(3); k > 0; k--) put1(&st.s, 0xc0);
    st.starts[i] = st.s.len;
    put(&st.s, vals[i].p, vals[i].len);
  }
  put1(&st.s, 0xc0);
  msgpack_unpacked_init(&st.u);

  sl_fwd_decoder_t *d = decoder_new();
  size_t pos = 0, frames = 0, feeds = 0;
  int err = 0;
  while (pos < st.s.len && !err) {
    size_t chunk;
    switch (below(4)) {
    case 0: chunk = 1 + below(8); break;
    case 1: chunk = 1 + below(64); break;
    case 2: chunk = 1 + below(1024); break;
    default: chunk = 1 + below(16384); break;
    }
    if (chunk > max_chunk) chunk = 1 + below(max_chunk);
    if (chunk > st.s.len - pos) chunk = st.s.len - pos;
    feed(d, st.s.p + pos, chunk);
    pos += chunk;
    feeds++;
    for (;;) {
      if (st.n_held == N_HELD) release(&st);
      sl_fwd_frame_t f = {0};
      int p = sl_fwd_decoder_next(d, &f);
      if (p == 0) break;
      if (p < 0) {
        if (st.diag++ < MAX_DIAG) {
          printf("# %s: after %zu of %zu bytes, at frame %zu\n", what, pos, st.s.len, frames);
          show_next("sl_fwd_decoder_next", p);
        }
        st.bad++;
        err = p;
        break;
      }
      if (frames == (size_t)n) { /* more frames than values: counted below */
        frames++;
        sl_fwd_frame_free(&f);
        continue;
      }
      st.held[st.n_held++] = (held_t){f, frames++};
    }
    while (st.n_held > 0 && one_in(3)) release(&st);
  }
  while (st.n_held > 0) release(&st);
  sl_fwd_frame_t f = {0};
  int last = sl_fwd_decoder_next(d, &f);
  if (last == 1) sl_fwd_frame_free(&f);
  is_int(st.bad, 0, "%s: %d values in %zu feeds give frames equal to msgpack-c's values", what,
         n, feeds);
  is_int(frames, n, "%s: one frame per value, the keepalive nils skipped", what);
  ok(last == 0 && sl_fwd_decoder_buffered(d) == 0, "%s: nothing left over at the end", what);
  msgpack_unpacked_destroy(&st.u);
  sl_fwd_decoder_free(d);
  free(st.starts);
  bytes_free(&st.s);
}

/* ---- random and mutated bytes -------------------------------------------- */

enum { END_CLEAN, END_MORE, END_INVALID, END_DEPTH, END_EXT32_MAX, END_DISAGREE, N_ENDS };

static const char *const end_name[N_ENDS] = {
    "all complete", "needs more", "invalid", "too deep", "ext32 of 0xffffffff bytes", "disagree"};

/* msgpack-c refuses an ext32 header declaring 0xffffffff bytes, a valid
 * header: it adds the type byte to the length in 32 bits, which wraps to 0,
 * and a 0 length is its "no type byte" error (MSGPACK_CS_EXT_32 in
 * unpack_template.h, template_callback_ext in unpack.c).  The project's
 * decoder waits for the bytes, as the format says; with a real
 * chunk_size_limit it refuses them as too big.  Not comparable, so such an
 * input is counted apart: msgpack-c stopped on the last length byte of it. */
static bool ext32_max_at(const uint8_t *x, size_t len, size_t start) {
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t stop = start;
  int r = msgpack_unpack_next(&u, (const char *)x, len, &stop);
  msgpack_unpacked_destroy(&u);
  return r == MSGPACK_UNPACK_PARSE_ERROR && stop >= 4 && stop < len && x[stop - 4] == 0xc9 &&
         x[stop - 3] == 0xff && x[stop - 2] == 0xff && x[stop - 1] == 0xff && x[stop] == 0xff;
}

/* Runs both decoders over the whole of x, value by value, and says how the
 * stream ended if they agreed all along: every value the same (msgpack-c's
 * top-level nils being keepalives the project skips), then both needing
 * more bytes, or both refusing the bytes.  msgpack-c reports nesting deeper
 * than its stack as NOMEM_ERROR, the project as SL_EDEPTH. */
static int compare_stream(const uint8_t *x, size_t len, size_t *frames, size_t *diag) {
  sl_fwd_decoder_t *d = decoder_new();
  feed(d, x, len);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0, used;
  int end = END_DISAGREE;
  for (;;) {
    size_t start = off;
    int r = ref_next(&u, x, len, &off, &used);
    if (r == MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_NIL) continue;
    sl_fwd_frame_t f = {0};
    int p = sl_fwd_decoder_next(d, &f);
    bool same;
    if (r == MSGPACK_UNPACK_SUCCESS) {
      same = p == 1 && agree(&f, &u.data, used);
      if (same) (*frames)++;
    } else if (r == MSGPACK_UNPACK_CONTINUE) {
      same = p == 0;
      end = start == len ? END_CLEAN : END_MORE;
    } else {
      /* Errors are sticky: asked again, the decoder says the same. */
      int again = p < 0 ? sl_fwd_decoder_next(d, &(sl_fwd_frame_t){0}) : 0;
      same = again == p && ((r == MSGPACK_UNPACK_PARSE_ERROR && p == SL_EMSGPACK) ||
                            (r == MSGPACK_UNPACK_NOMEM_ERROR && p == SL_EDEPTH));
      end = r == MSGPACK_UNPACK_PARSE_ERROR ? END_INVALID : END_DEPTH;
      if (p == 0 && ext32_max_at(x, len, start)) same = true, end = END_EXT32_MAX;
    }
    if (!same) {
      end = END_DISAGREE;
      if ((*diag)++ < MAX_DIAG) {
        printf("# the decoders disagree on the value at offset %zu\n", start);
        hex("input", x, len);
        printf("#   msgpack-c: %s, %zu bytes\n", unpack_name(r), used);
        show_next("sl_fwd_decoder_next", p);
        if (p == 1) printf("#   frame size %zu\n", f.size);
        if (p == 1) show("project  ", &f.root);
        if (r == MSGPACK_UNPACK_SUCCESS) show("msgpack-c", &u.data);
      }
    }
    if (p == 1) sl_fwd_frame_free(&f);
    if (!same || r != MSGPACK_UNPACK_SUCCESS) break;
  }
  msgpack_unpacked_destroy(&u);
  sl_fwd_decoder_free(d);
  return end;
}

/* msgpack-c allocates an array's or map's elements as soon as it has read
 * the header (24 bytes each, 48 a pair), so a random array32/map32 header
 * could ask it for hundreds of gigabytes.  Capping those counts at 16 bits
 * keeps the headers but bounds what msgpack-c allocates. */
static void cap_counts(bytes_t *x) {
  for (size_t i = 0; i < x->len; i++) {
    if (x->p[i] != 0xdd && x->p[i] != 0xdf) continue;
    for (size_t j = i + 1; j < x->len && j <= i + 2; j++) x->p[j] = 0;
  }
}

static uint8_t some_byte(void) {
  switch (below(4)) {
  case 0: return (uint8_t)(0xc0 + below(0x20)); /* every variable header, 0xc1 too */
  case 1: return (uint8_t)below(4);             /* small lengths and counts */
  case 2: { static const uint8_t b[] = {0x80, 0x81, 0x8f, 0x90, 0x91, 0x9f, 0xa0, 0xa3, 0xbf, 0x7f, 0xe0, 0xff};
    return b[below(sizeof(b))]; }
  default: return (uint8_t)next_rand();
  }
}

static void mutate(bytes_t *x) {
  for (uint64_t m = 1 + below(3); m > 0; m--) {
    size_t i = below(x->len);
    switch (below(6)) {
    case 0: x->p[i] = (uint8_t)next_rand(); break;
    case 1: x->p[i] = some_byte(); break;
    case 2: x->p[i] = 0xc1; break;
    case 3: x->len = i + 1; break; /* truncate */
    case 4: /* delete a byte */
      if (x->len > 1) memmove(x->p + i, x->p + i + 1, x->len - i - 1), x->len--;
      break;
    default: { /* insert a byte */
      reserve(x, 1);
      memmove(x->p + i + 1, x->p + i, x->len - i);
      x->p[i] = some_byte();
      x->len++;
      break;
    }
    }
  }
}

static void test_random_bytes(void) {
  size_t ends[N_ENDS] = {0}, frames = 0, diag = 0, inputs = 0;
  bytes_t x = {0}, w = {0};
  for (int i = 0; i < N_RANDOM + N_MUTATED; i++) {
    x.len = 0;
    if (i < N_RANDOM) {
      size_t n = 1 + below(48);
      for (size_t k = 0; k < n; k++) put1(&x, some_byte());
    } else {
      const bytes_t *v = &vals[below(N_VALUES)];
      for (int t = 0; t < 8 && v->len > 2048; t++) v = &vals[below(N_VALUES)];
      if (v->len > 2048) continue;
      put(&x, v->p, v->len);
      mutate(&x);
    }
    cap_counts(&x);
    /* As it is, and as the one element of an array, where a leading nil is
     * a value for both decoders rather than a keepalive. */
    w.len = 0;
    put1(&w, 0x91);
    put(&w, x.p, x.len);
    ends[compare_stream(x.p, x.len, &frames, &diag)]++;
    ends[compare_stream(w.p, w.len, &frames, &diag)]++;
    inputs += 2;
  }
  bytes_free(&x);
  bytes_free(&w);
  printf("# %zu random or mutated inputs, %zu frames:", inputs, frames);
  for (int e = 0; e < N_ENDS; e++) printf(" %s %zu%s", end_name[e], ends[e], e + 1 < N_ENDS ? "," : "\n");
  is_int(ends[END_DISAGREE], 0,
         "random and mutated bytes: both decoders give the same values, then both need more "
         "bytes or both refuse");
  ok(ends[END_CLEAN] >= 100 && ends[END_MORE] >= 100 && ends[END_INVALID] >= 100 && frames >= 1000,
     "random and mutated bytes reached complete values, truncations and invalid bytes alike");
}

/* ---- nesting at msgpack-c's limit ------------------------------------------ */

/* `levels` nested containers of random kinds, each holding the next (as an
 * array element, a map key or a map value), the innermost empty. */
static void nest_rec(bytes_t *b, int levels) {
  if (levels == 0) return;
  uint64_t n = levels == 1 ? 0 : 1;
  bool map = levels > 1 && one_in(2);
  switch (below(3)) {
  case 0: put1(b, (uint8_t)((map ? 0x80 : 0x90) | n)); break;
  case 1: put1(b, map ? 0xde : 0xdc), put_be(b, n, 2); break;
  default: put1(b, map ? 0xdf : 0xdd), put_be(b, n, 4); break;
  }
  if (!map) {
    nest_rec(b, levels - 1);
  } else if (one_in(2)) { /* the nesting goes on in the key */
    nest_rec(b, levels - 1);
    gen_scalar(b, (int)below(S_EXT32 + 1));
  } else {
    gen_scalar(b, (int)below(S_EXT32 + 1));
    nest_rec(b, levels - 1);
  }
}

static void test_depth(void) {
  size_t diag = 0;
  for (int levels = 30; levels <= 35; levels++) {
    size_t agreed = 0, expected = 0, frames = 0;
    for (int t = 0; t < 40; t++) {
      bytes_t b = {0};
      nest_rec(&b, levels);
      size_t f0 = frames;
      int end = compare_stream(b.p, b.len, &frames, &diag);
      agreed += end != END_DISAGREE;
      expected += levels <= 32 ? end == END_CLEAN && frames == f0 + 1 : end == END_DEPTH;
      bytes_free(&b);
    }
    is_int(agreed, 40, "%d nested containers: both decoders agree (40 variants)", levels);
    is_int(expected, 40, "%d nested containers: %s", levels,
           levels <= 32 ? "decoded (max_depth 32)" : "refused as too deep by both");
  }
}

int main(void) {
  const char *env = getenv("SEED");
  uint64_t seed = env && *env ? strtoull(env, NULL, 0) : 0x5eed2024ull;
  rng = seed;
  printf("# seed %" PRIu64 " (set SEED=<n> to replay another)\n", seed);

  for (int i = 0; i < N_VALUES; i++) gen_top(&vals[i]);
  size_t total = 0;
  for (int i = 0; i < N_VALUES; i++) total += vals[i].len;
  printf("# %d values, %zu bytes\n", N_VALUES, total);

  test_comparator();
  test_whole();
  test_coverage();
  test_truncated();
  test_stream(N_VALUES, SIZE_MAX, "stream in random pieces");
  test_stream(2000, 16, "stream in pieces of 1 to 16 bytes");
  test_random_bytes();
  test_depth();

  for (int i = 0; i < N_VALUES; i++) bytes_free(&vals[i]);
  return tap_done();
}
