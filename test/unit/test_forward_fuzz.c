/* Robustness test for forward_decode.c: random bytes and random mutations,
 * truncations and concatenations of valid messages of every mode, fed in
 * random split sizes.  Deterministic (fixed seeds), so a failure reproduces.
 * Asserts that nothing crashes, that only documented errors come back, and
 * that the decoder never buffers more than chunk_size_limit plus the last
 * feed; run it under valgrind to check memory as well. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/error.h"
#include "forward/forward_decode.h"
#include "tap.h"

static uint64_t rng;

static uint64_t next_rand(void) {
  /* xorshift64* */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 2685821657736338717ull;
}

static size_t below(size_t n) { return n ? (size_t)(next_rand() % n) : 0; }

/* ---- valid seeds of every mode ---- */

static sl_buf_t seeds[16];
static int n_seeds;

static void str(msgpack_packer *pk, const char *s) {
  msgpack_pack_str(pk, strlen(s));
  msgpack_pack_str_body(pk, s, strlen(s));
}

static void record(msgpack_packer *pk, int v) {
  msgpack_pack_map(pk, 2);
  str(pk, "k");
  msgpack_pack_int(pk, v);
  str(pk, "nested");
  msgpack_pack_array(pk, 2);
  msgpack_pack_map(pk, 1);
  str(pk, "x");
  msgpack_pack_double(pk, 1.5);
  msgpack_pack_bin(pk, 3);
  msgpack_pack_bin_body(pk, "\x00\x01\x02", 3);
}

static void event_time(msgpack_packer *pk, uint32_t s, uint32_t ns) {
  unsigned char b[8] = {s >> 24, s >> 16, s >> 8, s, ns >> 24, ns >> 16, ns >> 8, ns};
  msgpack_pack_ext(pk, 8, 0);
  msgpack_pack_ext_body(pk, b, 8);
}

static void entries(msgpack_packer *pk, int n) {
  for (int i = 0; i < n; i++) {
    msgpack_pack_array(pk, 2);
    if (i % 3 == 1) {
      event_time(pk, 1700000000 + i, i);
    } else if (i % 3 == 2) {
      msgpack_pack_array(pk, 2);
      event_time(pk, 1700000000 + i, i);
      msgpack_pack_map(pk, 0);
    } else {
      msgpack_pack_uint32(pk, 1700000000 + i);
    }
    record(pk, i);
  }
}

static void options(msgpack_packer *pk, const char *compressed) {
  msgpack_pack_map(pk, compressed ? 3 : 2);
  str(pk, "chunk");
  str(pk, "MTIzNDU2Nzg5MAo=");
  str(pk, "size");
  msgpack_pack_int(pk, 4);
  if (compressed) {
    str(pk, "compressed");
    str(pk, compressed);
  }
}

static msgpack_packer *seed(void) {
  static msgpack_packer pk;
  msgpack_packer_init(&pk, &seeds[n_seeds++], sl_buf_msgpack_write);
  return &pk;
}

static void gzip_into(sl_buf_t *dst, const char *p, size_t n) {
  z_stream zs;
  memset(&zs, 0, sizeof(zs));
  deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  sl_buf_reserve(dst, deflateBound(&zs, n));
  zs.next_in = (Bytef *)p;
  zs.avail_in = n;
  zs.next_out = (Bytef *)dst->data + dst->len;
  zs.avail_out = dst->cap - dst->len;
  deflate(&zs, Z_FINISH);
  dst->len += zs.total_out;
  deflateEnd(&zs);
}

static void make_seeds(void) {
  msgpack_packer *pk = seed(); /* Message */
  msgpack_pack_array(pk, 4);
  str(pk, "app.message");
  event_time(pk, 1700000000, 5);
  record(pk, 1);
  options(pk, NULL);

  pk = seed(); /* Forward */
  msgpack_pack_array(pk, 3);
  str(pk, "app.forward");
  msgpack_pack_array(pk, 4);
  entries(pk, 4);
  options(pk, NULL);

  sl_buf_t payload = {0};
  msgpack_packer pp;
  msgpack_packer_init(&pp, &payload, sl_buf_msgpack_write);
  entries(&pp, 4);

  pk = seed(); /* PackedForward, bin */
  msgpack_pack_array(pk, 3);
  str(pk, "app.packed");
  msgpack_pack_bin(pk, payload.len);
  msgpack_pack_bin_body(pk, payload.data, payload.len);
  options(pk, NULL);

  pk = seed(); /* PackedForward, str + compressed: text */
  msgpack_pack_array(pk, 3);
  str(pk, "app.text");
  msgpack_pack_str(pk, payload.len);
  msgpack_pack_str_body(pk, payload.data, payload.len);
  options(pk, "text");

  sl_buf_t gz = {0}; /* two gzip members */
  gzip_into(&gz, payload.data, payload.len / 2);
  gzip_into(&gz, payload.data + payload.len / 2, payload.len - payload.len / 2);
  pk = seed(); /* CompressedPackedForward */
  msgpack_pack_array(pk, 3);
  str(pk, "app.gzip");
  msgpack_pack_bin(pk, gz.len);
  msgpack_pack_bin_body(pk, gz.data, gz.len);
  options(pk, "gzip");

  pk = seed(); /* bare nil keepalive */
  msgpack_pack_nil(pk);

  sl_buf_free(&payload);
  sl_buf_free(&gz);
}

/* ---- the harness ---- */

typedef struct {
  long frames, messages, errors, feeds;
  long bound_violations, bad_codes, bad_frames;
} stats_t;

static stats_t st;

static bool documented_parse_error(int rc) {
  switch (rc) {
  case SL_ENOTARRAY: case SL_EBADTAG: case SL_EBADMODE: case SL_EBADOPTION:
  case SL_EBADGZIP: case SL_EBOMB: case SL_EMSGPACK: case SL_EDEPTH: case SL_EBADENTRY:
    return true;
  default:
    return false;
  }
}

/* Reads every part of a parsed message so that valgrind sees any pointer
 * that escaped its storage. */
static uint64_t touch(const sl_fwd_message_t *m) {
  uint64_t h = m->tag_len + m->n_skipped;
  for (size_t i = 0; i < m->tag_len; i++) h += (unsigned char)m->tag[i];
  for (size_t i = 0; i < m->chunk_len; i++) h += (unsigned char)m->chunk[i];
  for (size_t i = 0; i < m->n_entries; i++) {
    const msgpack_object *r = m->entries[i].record;
    h += (uint64_t)m->entries[i].sec + m->entries[i].nsec;
    if (r->type != MSGPACK_OBJECT_MAP) st.bad_frames++;
    for (uint32_t j = 0; j < r->via.map.size; j++) {
      const msgpack_object *k = &r->via.map.ptr[j].key;
      if (k->type == MSGPACK_OBJECT_STR)
        for (uint32_t c = 0; c < k->via.str.size; c++) h += (unsigned char)k->via.str.ptr[c];
    }
  }
  return h;
}

static uint64_t sink;

/* Feeds `p` in random pieces, draining after each, and checks the bound. */
static void feed_stream(const char *p, size_t n, const sl_fwd_limits_t *l, size_t max_piece) {
  sl_fwd_decoder_t *d = sl_fwd_decoder_new(l);
  size_t off = 0;
  while (off < n) {
    size_t piece = 1 + below(max_piece);
    if (piece > n - off) piece = n - off;
    sl_fwd_decoder_feed(d, p + off, piece);
    off += piece;
    st.feeds++;
    int rc;
    sl_fwd_frame_t f = {0};
    while ((rc = sl_fwd_decoder_next(d, &f)) == 1) {
      st.frames++;
      if (f.size > l->chunk_size_limit) st.bad_frames++;
      sl_fwd_message_t m;
      int pr = sl_fwd_message_parse(&f.root, l, &m);
      if (pr == 0) {
        st.messages++;
        sink += touch(&m);
      } else if (!documented_parse_error(pr)) {
        st.bad_codes++;
      }
      sl_fwd_message_free(&m);
      sl_fwd_frame_free(&f);
    }
    if (rc < 0) {
      if (rc != SL_EMSGPACK && rc != SL_ETOOBIG && rc != SL_EDEPTH) st.bad_codes++;
      st.errors++;
      break;
    }
    if (sl_fwd_decoder_buffered(d) > l->chunk_size_limit + piece) st.bound_violations++;
  }
  sl_fwd_decoder_free(d);
}

static sl_fwd_limits_t random_limits(void) {
  sl_fwd_limits_t l;
  l.chunk_size_limit = 16 + below(4096);
  l.decompression_size_limit = below(2) ? 1 << 16 : 64 + below(2048);
  l.max_depth = 2 + (int)below(40);
  l.skip_invalid_event = below(2);
  return l;
}

static void mutate(sl_buf_t *b) {
  int n = 1 + (int)below(4);
  for (int i = 0; i < n && b->len; i++) {
    size_t at = below(b->len);
    switch (below(6)) {
    case 0: b->data[at] ^= (char)(1u << below(8)); break;            /* bit flip */
    case 1: b->data[at] = (char)next_rand(); break;                  /* byte */
    case 2: b->len = at; break;                                      /* truncate */
    case 3:                                                          /* delete */
      memmove(b->data + at, b->data + at + 1, b->len - at - 1);
      b->len--;
      break;
    case 4: {                                                        /* insert */
      const char interesting[] = {(char)0xc1, (char)0xdd, (char)0xdb, (char)0xff, 0x00, (char)0x7f,
                                  (char)0xc0, (char)0x9f, (char)0xdf, (char)0xc7};
      char c = interesting[below(sizeof(interesting))];
      sl_buf_reserve(b, 1);
      memmove(b->data + at + 1, b->data + at, b->len - at);
      b->data[at] = c;
      b->len++;
      break;
    }
    default:                                                         /* 0xff run */
      for (size_t k = at; k < b->len && k < at + 4; k++) b->data[k] = (char)0xff;
      break;
    }
  }
}

int main(void) {
  make_seeds();

  /* The seeds themselves, concatenated, decode fully with generous limits. */
  sl_fwd_limits_t gen = {.chunk_size_limit = 1 << 20, .decompression_size_limit = 1 << 20, .max_depth = 16};
  sl_buf_t all = {0};
  for (int i = 0; i < n_seeds; i++) sl_buf_append(&all, seeds[i].data, seeds[i].len);
  memset(&st, 0, sizeof(st));
  rng = 0x5eed5eed5eedULL;
  for (int round = 0; round < 200; round++) feed_stream(all.data, all.len, &gen, 1 + round % 64);
  ok(st.errors == 0 && st.frames == 200L * (n_seeds - 1) && st.messages == st.frames,
     "seeds: %d messages decode in every random split (frames %ld, messages %ld, errors %ld)",
     n_seeds - 1, st.frames, st.messages, st.errors);

  /* Random bytes. */
  memset(&st, 0, sizeof(st));
  rng = 0x0123456789abcdefULL;
  sl_buf_t b = {0};
  for (int iter = 0; iter < 100000; iter++) {
    sl_buf_reset(&b);
    size_t n = below(600);
    sl_buf_reserve(&b, n);
    for (size_t i = 0; i < n; i++) b.data[i] = (char)next_rand();
    b.len = n;
    sl_fwd_limits_t l = random_limits();
    feed_stream(b.data, b.len, &l, 1 + below(128));
  }
  ok(st.bound_violations == 0, "random bytes: buffered never exceeds limit + last feed");
  ok(st.bad_codes == 0 && st.bad_frames == 0, "random bytes: only documented errors (%ld errors)",
     st.errors);

  /* Mutated, truncated and concatenated valid messages. */
  memset(&st, 0, sizeof(st));
  rng = 0xfeedfacecafebeefULL;
  for (int iter = 0; iter < 150000; iter++) {
    sl_buf_reset(&b);
    int parts = 1 + (int)below(4);
    for (int k = 0; k < parts; k++) {
      const sl_buf_t *s = &seeds[below(n_seeds)];
      sl_buf_append(&b, s->data, s->len);
    }
    if (iter % 8 != 0) mutate(&b);
    sl_fwd_limits_t l = random_limits();
    if (iter % 3 == 0) l.chunk_size_limit = 1 << 16;
    feed_stream(b.data, b.len, &l, 1 + below(iter % 2 ? 8 : 256));
  }
  ok(st.bound_violations == 0, "mutations: buffered never exceeds limit + last feed");
  ok(st.bad_codes == 0 && st.bad_frames == 0, "mutations: only documented errors");
  ok(st.messages > 1000, "mutations: many messages still parsed (%ld of %ld frames)", st.messages,
     st.frames);
  ok(st.errors > 1000, "mutations: many streams rejected (%ld)", st.errors);

  /* Long streams of valid messages against a small limit, in tiny pieces. */
  memset(&st, 0, sizeof(st));
  rng = 42;
  for (int iter = 0; iter < 50; iter++) {
    sl_buf_reset(&b);
    for (int k = 0; k < 100; k++) {
      const sl_buf_t *s = &seeds[below(n_seeds)];
      sl_buf_append(&b, s->data, s->len);
    }
    sl_fwd_limits_t l = {.chunk_size_limit = 1024, .decompression_size_limit = 1 << 16, .max_depth = 16, .skip_invalid_event = true};
    feed_stream(b.data, b.len, &l, 1 + below(2048));
  }
  ok(st.bound_violations == 0 && st.errors == 0, "long streams: bounded and error-free (%ld frames)",
     st.frames);

  printf("# sink %llu\n", (unsigned long long)sink);
  sl_buf_free(&b);
  sl_buf_free(&all);
  for (int i = 0; i < n_seeds; i++) sl_buf_free(&seeds[i]);
  return tap_done();
}
