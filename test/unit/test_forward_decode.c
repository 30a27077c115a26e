/* Unit tests for forward_decode.c: stream framing (splits, keepalives, early
 * limit failures) and the interpretation of every Forward Protocol mode.
 * Inputs are built with msgpack_packer and zlib, or written byte by byte
 * where a specific header width matters. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/error.h"
#include "forward/forward_decode.h"
#include "tap.h"

static sl_fwd_limits_t lim(void) {
  return (sl_fwd_limits_t){.chunk_size_limit = 1 << 20,
                           .decompression_size_limit = 1 << 20,
                           .max_depth = 16,
                           .skip_invalid_event = true};
}

/* ---- building inputs ---- */

static sl_buf_t out;
static msgpack_packer pk;

static void reset(void) {
  sl_buf_reset(&out);
  msgpack_packer_init(&pk, &out, sl_buf_msgpack_write);
}

static void str(const char *s) {
  msgpack_pack_str(&pk, strlen(s));
  msgpack_pack_str_body(&pk, s, strlen(s));
}

static void bin(const void *p, size_t n) {
  msgpack_pack_bin(&pk, n);
  msgpack_pack_bin_body(&pk, p, n);
}

static void raw(const void *p, size_t n) { sl_buf_append(&out, p, n); }

/* EventTime as fixext8 (d7 00 ...), the encoding msgpack_pack_ext picks. */
static void event_time(uint32_t sec, uint32_t nsec) {
  unsigned char b[8] = {sec >> 24, sec >> 16, sec >> 8, sec, nsec >> 24, nsec >> 16, nsec >> 8, nsec};
  msgpack_pack_ext(&pk, 8, 0);
  msgpack_pack_ext_body(&pk, b, 8);
}

/* {"k": v} */
static void record(int v) {
  msgpack_pack_map(&pk, 1);
  str("k");
  msgpack_pack_int(&pk, v);
}

/* [time, {"k": v}] */
static void entry(uint32_t t, int v) {
  msgpack_pack_array(&pk, 2);
  msgpack_pack_uint32(&pk, t);
  record(v);
}

static int record_k(const sl_fwd_entry_t *e) {
  const msgpack_object *r = e->record;
  if (r->type != MSGPACK_OBJECT_MAP || r->via.map.size != 1) return -999;
  return (int)r->via.map.ptr[0].val.via.i64;
}

static sl_buf_t gzip_bytes(const void *p, size_t n) {
  sl_buf_t g = {0};
  z_stream zs;
  memset(&zs, 0, sizeof(zs));
  deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  sl_buf_reserve(&g, deflateBound(&zs, n));
  zs.next_in = (Bytef *)p;
  zs.avail_in = n;
  zs.next_out = (Bytef *)g.data;
  zs.avail_out = g.cap;
  deflate(&zs, Z_FINISH);
  g.len = zs.total_out;
  deflateEnd(&zs);
  return g;
}

/* ---- decoding helpers ---- */

typedef struct {
  sl_fwd_decoder_t *d;
  sl_fwd_frame_t f;
  sl_fwd_message_t m;
  int next_rc, parse_rc;
} run_t;

/* Feeds the current `out` in one piece, takes one frame and parses it. */
static void run_with(run_t *r, sl_fwd_limits_t l) {
  memset(r, 0, sizeof(*r));
  r->d = sl_fwd_decoder_new(&l);
  sl_fwd_decoder_feed(r->d, out.data, out.len);
  r->next_rc = sl_fwd_decoder_next(r->d, &r->f);
  r->parse_rc = r->next_rc == 1 ? sl_fwd_message_parse(&r->f.root, &l, &r->m) : r->next_rc;
}

static void run(run_t *r) { run_with(r, lim()); }

static void done(run_t *r) {
  sl_fwd_message_free(&r->m);
  sl_fwd_frame_free(&r->f);
  sl_fwd_decoder_free(r->d);
}

/* The error (or 0) of feeding raw bytes and asking for a frame. */
static int next_of(const void *p, size_t n, sl_fwd_limits_t l, size_t *buffered) {
  sl_fwd_decoder_t *d = sl_fwd_decoder_new(&l);
  sl_fwd_frame_t f = {0};
  sl_fwd_decoder_feed(d, p, n);
  int rc = sl_fwd_decoder_next(d, &f);
  if (buffered) *buffered = sl_fwd_decoder_buffered(d);
  sl_fwd_frame_free(&f);
  sl_fwd_decoder_free(d);
  return rc;
}

/* ---- tests ---- */

static void test_message_mode(void) {
  run_t r;
  reset();
  msgpack_pack_array(&pk, 3);
  str("app.web");
  msgpack_pack_uint32(&pk, 1700000000);
  record(7);
  run(&r);
  is_int(r.next_rc, 1, "message: one frame");
  is_int(r.f.size, out.len, "message: frame size is the encoded size");
  is_int(r.parse_rc, 0, "message: parses");
  is_int(r.m.mode, SL_FWD_MESSAGE, "message: mode");
  ok(r.m.tag_len == 7 && memcmp(r.m.tag, "app.web", 7) == 0, "message: tag");
  is_int(r.m.n_entries, 1, "message: one entry");
  is_int(r.m.entries[0].sec, 1700000000, "message: seconds");
  is_int(r.m.entries[0].nsec, 0, "message: integer time has no ns");
  is_int(record_k(&r.m.entries[0]), 7, "message: record");
  ok(r.m.chunk == NULL && !r.m.has_size && r.m.fluent_signal == 0, "message: no options");
  done(&r);
}

static void test_forward_mode(void) {
  run_t r;
  reset();
  msgpack_pack_array(&pk, 3);
  str("fwd");
  msgpack_pack_array(&pk, 2);
  entry(10, 1);
  entry(11, 2);
  msgpack_pack_map(&pk, 2);
  str("size");
  msgpack_pack_uint8(&pk, 2);
  str("chunk");
  str("Y2h1bmsx\n");
  run(&r);
  is_int(r.parse_rc, 0, "forward: parses");
  is_int(r.m.mode, SL_FWD_FORWARD, "forward: mode");
  is_int(r.m.n_entries, 2, "forward: two entries");
  ok(r.m.entries[0].sec == 10 && r.m.entries[1].sec == 11, "forward: times in order");
  ok(record_k(&r.m.entries[0]) == 1 && record_k(&r.m.entries[1]) == 2, "forward: records in order");
  ok(r.m.has_size && r.m.size == 2 && !r.m.size_mismatch, "forward: size option matches");
  ok(r.m.chunk_len == 9 && memcmp(r.m.chunk, "Y2h1bmsx\n", 9) == 0,
     "forward: chunk bytes exact, trailing newline kept");
  done(&r);
}

/* A Forward message split at every byte boundary, and fed one byte at a
 * time, decodes to the same frame as when fed whole. */
static void test_split_everywhere(void) {
  reset();
  msgpack_pack_array(&pk, 3);
  str("split.tag");
  msgpack_pack_array(&pk, 3);
  entry(100, 1);
  msgpack_pack_array(&pk, 2);
  event_time(101, 5);
  record(2);
  entry(102, 3);
  msgpack_pack_map(&pk, 1);
  str("chunk");
  str("abc");

  sl_fwd_limits_t l = lim();
  run_t whole;
  run(&whole);
  ok(whole.parse_rc == 0 && whole.m.n_entries == 3, "split: reference parses");

  int bad = 0;
  for (size_t k = 0; k <= out.len; k++) {
    sl_fwd_decoder_t *d = sl_fwd_decoder_new(&l);
    sl_fwd_frame_t f = {0};
    sl_fwd_decoder_feed(d, out.data, k);
    int rc = sl_fwd_decoder_next(d, &f);
    if (k < out.len && rc != 0) bad++;
    if (rc == 0) {
      sl_fwd_decoder_feed(d, out.data + k, out.len - k);
      rc = sl_fwd_decoder_next(d, &f);
    }
    if (rc != 1 || f.size != out.len || !msgpack_object_equal(f.root, whole.f.root)) bad++;
    sl_fwd_message_t m;
    if (rc == 1 && (sl_fwd_message_parse(&f.root, &l, &m) != 0 || m.n_entries != 3 ||
                    m.entries[1].nsec != 5 || m.chunk_len != 3))
      bad++;
    if (rc == 1) sl_fwd_message_free(&m);
    if (sl_fwd_decoder_buffered(d) != 0) bad++;
    sl_fwd_frame_free(&f);
    sl_fwd_decoder_free(d);
  }
  is_int(bad, 0, "split: identical frames at all %zu split points", out.len + 1);

  sl_fwd_decoder_t *d = sl_fwd_decoder_new(&l);
  sl_fwd_frame_t f = {0};
  int frames = 0, early = 0;
  for (size_t i = 0; i < out.len; i++) {
    sl_fwd_decoder_feed(d, out.data + i, 1);
    int rc = sl_fwd_decoder_next(d, &f);
    if (rc == 1) {
      frames++;
      if (i != out.len - 1 || !msgpack_object_equal(f.root, whole.f.root)) early++;
      sl_fwd_frame_free(&f);
    } else if (rc != 0) {
      early++;
    }
  }
  ok(frames == 1 && early == 0, "split: byte-at-a-time feed yields the frame on the last byte");
  sl_fwd_decoder_free(d);
  done(&whole);
}

/* Many messages and keepalive nils in one feed come out one by one. */
static void test_many_in_one_feed(void) {
  reset();
  unsigned char nil = 0xc0;
  raw(&nil, 1);
  raw(&nil, 1);
  for (int i = 0; i < 5; i++) {
    msgpack_pack_array(&pk, 3);
    str("many");
    msgpack_pack_uint32(&pk, 1000 + i);
    record(i);
    raw(&nil, 1);
  }
  sl_fwd_limits_t l = lim();
  sl_fwd_decoder_t *d = sl_fwd_decoder_new(&l);
  sl_fwd_decoder_feed(d, out.data, out.len);
  int got = 0, in_order = 1, rc;
  sl_fwd_frame_t f = {0};
  while ((rc = sl_fwd_decoder_next(d, &f)) == 1) {
    sl_fwd_message_t m;
    if (sl_fwd_message_parse(&f.root, &l, &m) != 0 || m.entries[0].sec != 1000 + got ||
        record_k(&m.entries[0]) != got)
      in_order = 0;
    sl_fwd_message_free(&m);
    sl_fwd_frame_free(&f);
    got++;
  }
  is_int(rc, 0, "many: ends asking for more bytes");
  is_int(got, 5, "many: five frames, nils skipped");
  ok(in_order, "many: frames in order");
  is_int(sl_fwd_decoder_buffered(d), 0, "many: nothing left buffered");

  /* A long-lived connection: the buffer does not keep what was returned. */
  size_t max_buffered = 0;
  for (int i = 0; i < 2000; i++) {
    sl_fwd_decoder_feed(d, out.data, out.len / 2);
    while (sl_fwd_decoder_next(d, &f) == 1) sl_fwd_frame_free(&f);
    if (sl_fwd_decoder_buffered(d) > max_buffered) max_buffered = sl_fwd_decoder_buffered(d);
    sl_fwd_decoder_feed(d, out.data + out.len / 2, out.len - out.len / 2);
    while (sl_fwd_decoder_next(d, &f) == 1) sl_fwd_frame_free(&f);
  }
  ok(max_buffered < out.len && sl_fwd_decoder_buffered(d) == 0,
     "many: buffered bytes stay below one feed over 2000 rounds");
  sl_fwd_decoder_free(d);
}

static void test_event_time(void) {
  run_t r;
  /* fixext8 */
  reset();
  msgpack_pack_array(&pk, 3);
  str("t");
  event_time(1700000001, 123456789);
  record(1);
  run(&r);
  ok(r.parse_rc == 0 && r.m.entries[0].sec == 1700000001 && r.m.entries[0].nsec == 123456789,
     "event time: fixext8 keeps seconds and nanoseconds");
  done(&r);

  /* ext8 with length 8: c7 08 00 <sec> <nsec> */
  reset();
  msgpack_pack_array(&pk, 3);
  str("t");
  const unsigned char ext8[] = {0xc7, 0x08, 0x00, 0x65, 0x53, 0xf1, 0x01, 0x00, 0x00, 0x03, 0xe7};
  raw(ext8, sizeof(ext8));
  record(1);
  run(&r);
  ok(r.parse_rc == 0 && r.m.entries[0].sec == 0x6553f101 && r.m.entries[0].nsec == 999,
     "event time: ext8 keeps seconds and nanoseconds");
  done(&r);

  /* v1.5: [EventTime, {metadata}] in a Message and in a Forward entry */
  reset();
  msgpack_pack_array(&pk, 3);
  str("t");
  msgpack_pack_array(&pk, 2);
  event_time(42, 7);
  msgpack_pack_map(&pk, 1);
  str("meta");
  str("x");
  record(3);
  run(&r);
  ok(r.parse_rc == 0 && r.m.mode == SL_FWD_MESSAGE && r.m.n_entries == 1 &&
         r.m.entries[0].sec == 42 && r.m.entries[0].nsec == 7 && record_k(&r.m.entries[0]) == 3,
     "event time: v1.5 metadata time in Message mode");
  done(&r);

  reset();
  msgpack_pack_array(&pk, 2);
  str("t");
  msgpack_pack_array(&pk, 1);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_array(&pk, 2);
  event_time(43, 8);
  msgpack_pack_map(&pk, 0);
  record(4);
  run(&r);
  ok(r.parse_rc == 0 && r.m.mode == SL_FWD_FORWARD && r.m.n_entries == 1 &&
         r.m.entries[0].sec == 43 && r.m.entries[0].nsec == 8 && record_k(&r.m.entries[0]) == 4,
     "event time: v1.5 metadata time in a Forward entry");
  done(&r);

  int64_t s;
  uint32_t ns;
  msgpack_object o = {.type = MSGPACK_OBJECT_NEGATIVE_INTEGER, .via.i64 = -5};
  is_int(sl_fwd_time_parse(&o, &s, &ns), SL_EBADENTRY, "event time: negative integer refused");
  o.type = MSGPACK_OBJECT_FLOAT64;
  o.via.f64 = 1.5;
  is_int(sl_fwd_time_parse(&o, &s, &ns), SL_EBADENTRY, "event time: float refused");
  const char nsbad[8] = {0, 0, 0, 1, 0x3b, (char)0x9a, (char)0xca, 0x00}; /* 1e9 ns */
  o.type = MSGPACK_OBJECT_EXT;
  o.via.ext.type = 0;
  o.via.ext.size = 8;
  o.via.ext.ptr = nsbad;
  is_int(sl_fwd_time_parse(&o, &s, &ns), SL_EBADENTRY, "event time: nsec >= 1e9 refused");
  o.via.ext.type = 1;
  is_int(sl_fwd_time_parse(&o, &s, &ns), SL_EBADENTRY, "event time: ext type 1 refused");
}

/* The payload [time, record] stream shared by the packed tests. */
static sl_buf_t packed_payload(void) {
  reset();
  entry(200, 1);
  msgpack_pack_array(&pk, 2);
  event_time(201, 9);
  record(2);
  entry(202, 3);
  sl_buf_t p = {0};
  sl_buf_append(&p, out.data, out.len);
  return p;
}

static void check_packed(run_t *r, sl_fwd_mode_t mode, const char *what) {
  ok(r->parse_rc == 0 && r->m.mode == mode && r->m.n_entries == 3 && r->m.entries[0].sec == 200 &&
         r->m.entries[1].sec == 201 && r->m.entries[1].nsec == 9 && record_k(&r->m.entries[2]) == 3,
     "%s: three entries decoded", what);
}

static void test_packed(void) {
  sl_buf_t p = packed_payload();
  run_t r;

  reset();
  msgpack_pack_array(&pk, 2);
  str("packed");
  bin(p.data, p.len);
  run(&r);
  check_packed(&r, SL_FWD_PACKED, "packed bin");
  is_int(r.m.decoded_bytes, p.len, "packed bin: decoded bytes");
  done(&r);

  reset();
  msgpack_pack_array(&pk, 2);
  str("packed");
  msgpack_pack_str(&pk, p.len);
  msgpack_pack_str_body(&pk, p.data, p.len); /* not UTF-8: taken as bytes */
  run(&r);
  check_packed(&r, SL_FWD_PACKED, "packed str");
  done(&r);

  /* What fluentd's out_forward sends: str32 and compressed: "text". */
  reset();
  msgpack_pack_array(&pk, 3);
  str("packed");
  unsigned char h[5] = {0xdb, p.len >> 24, p.len >> 16, p.len >> 8, p.len};
  raw(h, 5);
  raw(p.data, p.len);
  msgpack_pack_map(&pk, 3);
  str("chunk");
  bin("\x01\x02\n", 3);
  str("size");
  msgpack_pack_uint8(&pk, 3);
  str("compressed");
  str("text");
  run(&r);
  check_packed(&r, SL_FWD_PACKED, "packed str32 + compressed:text");
  ok(r.m.chunk_len == 3 && memcmp(r.m.chunk, "\x01\x02\n", 3) == 0 && !r.m.size_mismatch,
     "packed str32: bin chunk bytes exact");
  done(&r);

  /* Truncated entry in the payload. */
  reset();
  msgpack_pack_array(&pk, 2);
  str("packed");
  bin(p.data, p.len - 1);
  run(&r);
  is_int(r.parse_rc, SL_EMSGPACK, "packed: truncated entry -> SL_EMSGPACK");
  done(&r);

  /* Reserved byte inside the payload. */
  reset();
  msgpack_pack_array(&pk, 2);
  str("packed");
  bin("\x92\x01\xc1", 3);
  run(&r);
  is_int(r.parse_rc, SL_EMSGPACK, "packed: 0xc1 in payload -> SL_EMSGPACK");
  done(&r);

  /* Packed entries share the depth limit: with max_depth 6, a record that
   * nests 3 more levels fails as it would in Forward mode. */
  sl_fwd_limits_t l = lim();
  l.max_depth = 6;
  sl_buf_t deep = {0};
  for (int depth = 2; depth <= 3; depth++) {
    reset();
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_map(&pk, 1); /* record: depth 4 as in Forward */
    str("a");
    for (int i = 0; i < depth; i++) msgpack_pack_array(&pk, 1);
    msgpack_pack_uint8(&pk, 0);
    sl_buf_reset(&deep);
    sl_buf_append(&deep, out.data, out.len);
    reset();
    msgpack_pack_array(&pk, 2);
    str("packed");
    bin(deep.data, deep.len);
    run_with(&r, l);
    if (depth == 2)
      is_int(r.parse_rc, 0, "packed: entry at the depth limit accepted");
    else
      is_int(r.parse_rc, SL_EDEPTH, "packed: entry beyond the depth limit -> SL_EDEPTH");
    done(&r);
  }
  sl_buf_free(&deep);

  /* A payload that is not a valid [time, record] entry is an invalid entry. */
  reset();
  msgpack_pack_array(&pk, 2);
  str("packed");
  bin("\x05\x92\x01\x80", 4); /* 5, then [1, {}] */
  run(&r);
  ok(r.parse_rc == 0 && r.m.n_entries == 1 && r.m.n_skipped == 1, "packed: bad entry skipped");
  done(&r);
  sl_buf_free(&p);
}

static void test_gzip(void) {
  sl_buf_t p = packed_payload();
  run_t r;

  /* Two gzip members: the first entry, then the other two. */
  reset();
  entry(200, 1);
  size_t first = out.len;
  sl_buf_t g1 = gzip_bytes(p.data, first);
  sl_buf_t g2 = gzip_bytes(p.data + first, p.len - first);
  sl_buf_t both = {0};
  sl_buf_append(&both, g1.data, g1.len);
  sl_buf_append(&both, g2.data, g2.len);
  reset();
  msgpack_pack_array(&pk, 3);
  str("gz");
  bin(both.data, both.len);
  msgpack_pack_map(&pk, 1);
  str("compressed");
  str("gzip");
  run(&r);
  check_packed(&r, SL_FWD_COMPRESSED_PACKED, "gzip two members");
  is_int(r.m.decoded_bytes, p.len, "gzip: decoded bytes are the inflated size");
  done(&r);

  /* Truncated gzip, garbage, and garbage after a good member. */
  const struct {
    const char *p;
    size_t n;
    const char *what;
  } bad[] = {
      {both.data, both.len - 3, "gzip truncated -> SL_EBADGZIP"},
      {"not gzip at all", 15, "gzip garbage -> SL_EBADGZIP"},
      {"", 0, "gzip empty payload -> SL_EBADGZIP"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    reset();
    msgpack_pack_array(&pk, 3);
    str("gz");
    bin(bad[i].p, bad[i].n);
    msgpack_pack_map(&pk, 1);
    str("compressed");
    str("gzip");
    run(&r);
    is_int(r.parse_rc, SL_EBADGZIP, "%s", bad[i].what);
    done(&r);
  }
  sl_buf_t tail = {0};
  sl_buf_append(&tail, g1.data, g1.len);
  sl_buf_append(&tail, "junk", 4);
  reset();
  msgpack_pack_array(&pk, 3);
  str("gz");
  bin(tail.data, tail.len);
  msgpack_pack_map(&pk, 1);
  str("compressed");
  str("gzip");
  run(&r);
  is_int(r.parse_rc, SL_EBADGZIP, "gzip: junk after a member -> SL_EBADGZIP");
  done(&r);

  /* A bomb: 4 MiB of 'a' in a record compresses to a few KiB. */
  size_t big = 4 << 20;
  char *a = malloc(big);
  memset(a, 'a', big);
  reset();
  msgpack_pack_array(&pk, 2);
  msgpack_pack_uint8(&pk, 1);
  msgpack_pack_map(&pk, 1);
  str("m");
  msgpack_pack_str(&pk, big);
  msgpack_pack_str_body(&pk, a, big);
  sl_buf_t gb = gzip_bytes(out.data, out.len);
  size_t inflated = out.len;
  reset();
  msgpack_pack_array(&pk, 3);
  str("gz");
  bin(gb.data, gb.len);
  msgpack_pack_map(&pk, 1);
  str("compressed");
  str("gzip");
  ok(out.len < 64 * 1024, "gzip bomb: compressed message is small (%zu bytes)", out.len);
  sl_fwd_limits_t l = lim();
  run_with(&r, l);
  is_int(r.parse_rc, SL_EBOMB, "gzip bomb over decompression_size_limit -> SL_EBOMB");
  done(&r);
  l.decompression_size_limit = inflated;
  run_with(&r, l);
  ok(r.parse_rc == 0 && r.m.n_entries == 1 && r.m.decoded_bytes == inflated,
     "gzip: payload of exactly decompression_size_limit accepted");
  done(&r);
  l.decompression_size_limit = inflated - 1;
  run_with(&r, l);
  is_int(r.parse_rc, SL_EBOMB, "gzip: one byte over the limit -> SL_EBOMB");
  done(&r);

  /* Unknown compression is refused. */
  reset();
  msgpack_pack_array(&pk, 3);
  str("gz");
  bin(p.data, p.len);
  msgpack_pack_map(&pk, 1);
  str("compressed");
  str("zstd");
  run(&r);
  is_int(r.parse_rc, SL_EBADOPTION, "compressed: unknown value -> SL_EBADOPTION");
  done(&r);

  free(a);
  sl_buf_free(&gb);
  sl_buf_free(&tail);
  sl_buf_free(&g1);
  sl_buf_free(&g2);
  sl_buf_free(&both);
  sl_buf_free(&p);
}

/* Wide headers where narrow ones would do are still valid msgpack. */
static void test_wide_headers(void) {
  run_t r;
  reset();
  const unsigned char b[] = {
      0xdd, 0, 0, 0, 2,                          /* array32 of 2 */
      0xd9, 1, 't',                              /* str8 tag */
      0xdc, 0, 1,                                /* array16 of 1 entry */
      0xdd, 0, 0, 0, 2,                          /* array32 entry */
      0xcf, 0, 0, 0, 0, 0, 0, 0, 9,              /* uint64 time */
      0xdf, 0, 0, 0, 1, 0xda, 0, 1, 'k', 0xd3, 0, 0, 0, 0, 0, 0, 0, 5, /* map32 {str16: int64} */
  };
  raw(b, sizeof(b));
  run(&r);
  ok(r.parse_rc == 0 && r.m.mode == SL_FWD_FORWARD && r.m.n_entries == 1 &&
         r.m.entries[0].sec == 9 && record_k(&r.m.entries[0]) == 5 && r.m.tag_len == 1,
     "wide headers: array32/str8/array16/uint64/map32/int64 accepted");
  done(&r);

  reset();
  const unsigned char m[] = {0xdd, 0, 0, 0, 3, 0xc4, 2, 'a', 'b', 0x01, 0xde, 0, 0};
  raw(m, sizeof(m));
  run(&r);
  ok(r.parse_rc == 0 && r.m.mode == SL_FWD_MESSAGE && r.m.tag_len == 2 &&
         memcmp(r.m.tag, "ab", 2) == 0 && r.m.entries[0].record->via.map.size == 0,
     "wide headers: bin tag, array32 Message, empty map16 record");
  done(&r);
}

static void test_framing_errors(void) {
  sl_fwd_limits_t l = lim();
  size_t buffered;

  /* Only the header of a 1 GiB str32 is fed. */
  const unsigned char big_str[] = {0x92, 0xdb, 0x40, 0x00, 0x00, 0x00};
  is_int(next_of(big_str, sizeof(big_str), l, &buffered), SL_ETOOBIG,
         "str32 declaring 1 GiB -> SL_ETOOBIG from the header alone");
  ok(buffered <= sizeof(big_str), "str32: nothing beyond the header buffered");
  const unsigned char big_bin[] = {0xc6, 0x00, 0x20, 0x00, 0x00};
  is_int(next_of(big_bin, sizeof(big_bin), l, NULL), SL_ETOOBIG, "bin32 declaring 2 MiB -> SL_ETOOBIG");

  /* A header cut short already proves too much only when even its bytes
   * cannot fit; a partial header alone needs more bytes. */
  is_int(next_of(big_str, 3, l, NULL), 0, "str32: partial header needs more bytes");

  const unsigned char big_arr[] = {0xdd, 0x80, 0x00, 0x00, 0x00};
  is_int(next_of(big_arr, sizeof(big_arr), l, NULL), SL_ETOOBIG,
         "array32 declaring 2^31 elements -> SL_ETOOBIG immediately");
  const unsigned char big_map[] = {0x93, 0xa1, 't', 0xdf, 0x00, 0x08, 0x00, 0x00};
  is_int(next_of(big_map, sizeof(big_map), l, NULL), SL_ETOOBIG,
         "nested map32 declaring 2^19 pairs (2^20 elements) -> SL_ETOOBIG");
  /* Pending siblings count too: [array32 of 2^19, one more] needs at least
   * 1 + 5 + 2^19 + 1 bytes. */
  const unsigned char two[] = {0x92, 0xdd, 0x00, 0x08, 0x00, 0x00};
  l.chunk_size_limit = (1 << 19) + 6;
  is_int(next_of(two, sizeof(two), l, NULL), SL_ETOOBIG,
         "array32 plus a pending sibling exceeding the limit -> SL_ETOOBIG");
  l.chunk_size_limit = (1 << 19) + 7;
  is_int(next_of(two, sizeof(two), l, NULL), 0, "the same at exactly the limit needs more bytes");
  l = lim();

  /* Exactly at the limit passes; one byte less fails. */
  reset();
  msgpack_pack_array(&pk, 3);
  str("t");
  msgpack_pack_uint8(&pk, 1);
  record(1);
  l.chunk_size_limit = out.len;
  is_int(next_of(out.data, out.len, l, NULL), 1, "message of exactly chunk_size_limit accepted");
  l.chunk_size_limit = out.len - 1;
  is_int(next_of(out.data, out.len, l, NULL), SL_ETOOBIG, "one byte over chunk_size_limit -> SL_ETOOBIG");
  l = lim();

  /* Depth: arrays nested max_depth deep pass; one deeper fails as soon as
   * its header arrives. */
  l.max_depth = 8;
  unsigned char nest[16];
  memset(nest, 0x91, sizeof(nest));
  nest[8] = 0x01;
  is_int(next_of(nest, 9, l, NULL), 1, "depth: 8 nested arrays accepted with max_depth 8");
  is_int(next_of(nest, 9, l, NULL), 1, "depth: (repeat) stable");
  memset(nest, 0x91, sizeof(nest));
  is_int(next_of(nest, 9, l, NULL), SL_EDEPTH, "depth: 9th array header -> SL_EDEPTH");
  nest[8] = 0x90; /* an empty array is nesting too */
  is_int(next_of(nest, 9, l, NULL), SL_EDEPTH, "depth: empty 9th array -> SL_EDEPTH");
  l = lim();

  const unsigned char c1[] = {0xc1};
  is_int(next_of(c1, 1, l, NULL), SL_EMSGPACK, "0xc1 at top level -> SL_EMSGPACK");
  const unsigned char c1n[] = {0x93, 0xa1, 't', 0xc1};
  is_int(next_of(c1n, sizeof(c1n), l, NULL), SL_EMSGPACK, "0xc1 nested -> SL_EMSGPACK");

  /* The error is sticky and later feeds are not buffered. */
  sl_fwd_decoder_t *d = sl_fwd_decoder_new(&l);
  sl_fwd_frame_t f = {0};
  sl_fwd_decoder_feed(d, (const char *)c1, 1);
  int rc1 = sl_fwd_decoder_next(d, &f);
  sl_fwd_decoder_feed(d, "\x90", 1);
  int rc2 = sl_fwd_decoder_next(d, &f);
  ok(rc1 == SL_EMSGPACK && rc2 == SL_EMSGPACK, "errors are sticky");
  sl_fwd_decoder_free(d);

  /* Keepalive nils alone produce nothing. */
  const unsigned char nils[] = {0xc0, 0xc0, 0xc0};
  is_int(next_of(nils, 3, l, &buffered), 0, "nil keepalives skipped");
  is_int(buffered, 0, "nil keepalives not buffered");
}

static void test_interpretation_errors(void) {
  run_t r;
  reset();
  msgpack_pack_map(&pk, 0);
  run(&r);
  ok(r.next_rc == 1 && r.parse_rc == SL_ENOTARRAY, "top-level map -> SL_ENOTARRAY");
  done(&r);
  reset();
  msgpack_pack_int(&pk, 5);
  run(&r);
  is_int(r.parse_rc, SL_ENOTARRAY, "top-level integer -> SL_ENOTARRAY");
  done(&r);

  reset();
  msgpack_pack_array(&pk, 3);
  msgpack_pack_int(&pk, 1);
  msgpack_pack_int(&pk, 2);
  record(1);
  run(&r);
  is_int(r.parse_rc, SL_EBADTAG, "integer tag -> SL_EBADTAG");
  done(&r);

  reset();
  msgpack_pack_array(&pk, 1);
  str("t");
  run(&r);
  is_int(r.parse_rc, SL_EBADMODE, "[tag] -> SL_EBADMODE");
  done(&r);
  reset();
  msgpack_pack_array(&pk, 5);
  str("t");
  msgpack_pack_int(&pk, 1);
  record(1);
  msgpack_pack_nil(&pk);
  msgpack_pack_nil(&pk);
  run(&r);
  is_int(r.parse_rc, SL_EBADMODE, "five-element Message -> SL_EBADMODE");
  done(&r);
  reset();
  msgpack_pack_array(&pk, 4);
  str("t");
  bin("", 0);
  msgpack_pack_nil(&pk);
  msgpack_pack_nil(&pk);
  run(&r);
  is_int(r.parse_rc, SL_EBADMODE, "four-element PackedForward -> SL_EBADMODE");
  done(&r);
  reset();
  msgpack_pack_array(&pk, 2);
  str("t");
  msgpack_pack_int(&pk, 1);
  run(&r);
  is_int(r.parse_rc, SL_EBADMODE, "Message without record -> SL_EBADMODE");
  done(&r);

  reset();
  msgpack_pack_array(&pk, 3);
  str("t");
  msgpack_pack_array(&pk, 1);
  entry(1, 1);
  msgpack_pack_int(&pk, 5);
  run(&r);
  is_int(r.parse_rc, SL_EBADOPTION, "option not a map -> SL_EBADOPTION");
  done(&r);
  reset();
  msgpack_pack_array(&pk, 4);
  str("t");
  msgpack_pack_int(&pk, 1);
  record(1);
  msgpack_pack_nil(&pk);
  run(&r);
  ok(r.parse_rc == 0 && r.m.n_entries == 1 && r.m.chunk == NULL, "nil option treated as absent");
  done(&r);

  /* Options: size mismatch, fluent_signal, unknown keys, chunk as str. */
  reset();
  msgpack_pack_array(&pk, 4);
  str("t");
  msgpack_pack_int(&pk, 1);
  record(1);
  msgpack_pack_map(&pk, 4);
  str("size");
  msgpack_pack_int(&pk, 5);
  str("fluent_signal");
  msgpack_pack_int(&pk, 2);
  str("whatever");
  msgpack_pack_array(&pk, 0);
  str("chunk");
  str("c\n");
  run(&r);
  ok(r.parse_rc == 0 && r.m.has_size && r.m.size == 5 && r.m.size_mismatch,
     "size option 5 for one entry flags a mismatch");
  is_int(r.m.fluent_signal, 2, "fluent_signal read");
  ok(r.m.chunk_len == 2 && memcmp(r.m.chunk, "c\n", 2) == 0, "chunk str bytes exact");
  done(&r);
  reset();
  msgpack_pack_array(&pk, 4);
  str("t");
  msgpack_pack_int(&pk, 1);
  record(1);
  msgpack_pack_map(&pk, 1);
  str("chunk");
  msgpack_pack_int(&pk, 3);
  run(&r);
  is_int(r.parse_rc, SL_EBADOPTION, "chunk of the wrong type -> SL_EBADOPTION");
  done(&r);
}

static void bad_forward(void) {
  reset();
  msgpack_pack_array(&pk, 3);
  str("t");
  msgpack_pack_array(&pk, 6);
  entry(1, 1);
  msgpack_pack_array(&pk, 2); /* string time */
  str("x");
  record(2);
  msgpack_pack_array(&pk, 2); /* record not a map */
  msgpack_pack_int(&pk, 3);
  str("r");
  msgpack_pack_int(&pk, 4); /* not an array */
  msgpack_pack_array(&pk, 3); /* three elements */
  msgpack_pack_int(&pk, 5);
  record(5);
  msgpack_pack_nil(&pk);
  entry(6, 6);
  msgpack_pack_map(&pk, 1);
  str("size");
  msgpack_pack_int(&pk, 6);
}

static void test_bad_entries(void) {
  run_t r;
  sl_fwd_limits_t l = lim();
  bad_forward();
  run_with(&r, l);
  ok(r.parse_rc == 0 && r.m.n_entries == 2 && r.m.n_skipped == 4 && r.m.entries[0].sec == 1 &&
         r.m.entries[1].sec == 6,
     "bad entries skipped and counted (skip_invalid_event)");
  ok(!r.m.size_mismatch, "size counts skipped entries too");
  done(&r);
  l.skip_invalid_event = false;
  run_with(&r, l);
  is_int(r.parse_rc, SL_EBADENTRY, "bad entries reject the message without skip_invalid_event");
  ok(r.m.entries == NULL && r.m.n_entries == 0, "rejected message left freed");
  done(&r);

  reset();
  msgpack_pack_array(&pk, 3);
  str("t");
  msgpack_pack_int(&pk, -1);
  record(1);
  run(&r);
  ok(r.parse_rc == 0 && r.m.n_entries == 0 && r.m.n_skipped == 1, "Message with negative time skipped");
  done(&r);
  run_with(&r, l);
  is_int(r.parse_rc, SL_EBADENTRY, "Message with negative time rejected without skip");
  done(&r);
  reset();
  msgpack_pack_array(&pk, 3);
  str("t");
  msgpack_pack_int(&pk, 1);
  str("not a map");
  run_with(&r, l);
  is_int(r.parse_rc, SL_EBADENTRY, "Message with a string record rejected without skip");
  done(&r);
}

/* decoded_values_limit: a message declaring more values than the budget is
 * refused from its headers, before its objects are allocated; packed
 * entries share one budget for the whole message. */
static void test_values_limit(void) {
  run_t r;
  sl_fwd_limits_t l = lim();
  /* [tag, [[t, {k: v}] x 10]]: the root, its 2 elements, 10 entries, and
   * per entry its time and record (2) and the record's key and value (2):
   * 1 + 2 + 10 + 10 * 4 = 53 values. */
  reset();
  msgpack_pack_array(&pk, 2);
  str("fwd");
  msgpack_pack_array(&pk, 10);
  for (int i = 0; i < 10; i++) entry(1, i);
  l.max_values = 53;
  run_with(&r, l);
  ok(r.next_rc == 1 && r.parse_rc == 0 && r.m.n_entries == 10, "forward: exactly the budget (53 values) accepted");
  done(&r);
  l.max_values = 52;
  run_with(&r, l);
  is_int(r.next_rc, SL_EVALUES, "forward: one value over the budget -> SL_EVALUES while framing");
  done(&r);

  /* A header declaring 2^32-1 elements is refused by the budget although
   * the bytes of the elements have not arrived. */
  reset();
  msgpack_pack_array(&pk, 2);
  str("fwd");
  raw("\xdd\xff\xff\xff\xff", 5);
  l.max_values = 1000;
  l.chunk_size_limit = SIZE_MAX;
  run_with(&r, l);
  is_int(r.next_rc, SL_EVALUES, "a declared 4-billion-element array is refused from its header alone");
  done(&r);

  /* Packed: 1000 entries of [0, {}] (3 values each) in a gzip payload of a
   * few bytes: the budget refuses the message without building them. */
  sl_buf_t payload = {0};
  for (int i = 0; i < 1000; i++) sl_buf_append(&payload, "\x92\x00\x80", 3);
  sl_buf_t gz = gzip_bytes(payload.data, payload.len);
  l = lim();
  for (int pass = 0; pass < 2; pass++) {
    reset();
    msgpack_pack_array(&pk, 3);
    str("packed");
    bin(gz.data, gz.len);
    msgpack_pack_map(&pk, 1);
    str("compressed");
    str("gzip");
    l.max_values = pass == 0 ? 3000 : 2999;
    run_with(&r, l);
    if (pass == 0)
      ok(r.parse_rc == 0 && r.m.n_entries == 1000, "packed: 1000 entries of 3 values fit a budget of 3000");
    else
      is_int(r.parse_rc, SL_EVALUES, "packed: the same with a budget of 2999 -> SL_EVALUES");
    done(&r);
  }
  sl_buf_free(&gz);
  sl_buf_free(&payload);
}

static void fixed_now(int64_t *sec, uint32_t *nsec) {
  *sec = 1800000000;
  *nsec = 42;
}

/* As fluentd's in_forward: a time of nil or 0 (an integer, or an EventTime
 * whose seconds are 0) becomes the time the entry arrived. */
static void test_zero_time(void) {
  run_t r;
  sl_fwd_limits_t l = lim();
  l.now = fixed_now;
  const char *what[] = {"nil", "integer 0", "EventTime(0, 5)", "integer 7"};
  for (int k = 0; k < 4; k++) {
    reset();
    msgpack_pack_array(&pk, 3);
    str("t");
    if (k == 0) msgpack_pack_nil(&pk);
    if (k == 1) msgpack_pack_uint8(&pk, 0);
    if (k == 2) event_time(0, 5);
    if (k == 3) msgpack_pack_uint8(&pk, 7);
    record(1);
    run_with(&r, l);
    int64_t want_sec = k == 3 ? 7 : 1800000000;
    uint32_t want_nsec = k == 3 ? 0 : 42;
    ok(r.parse_rc == 0 && r.m.n_entries == 1 && r.m.entries[0].sec == want_sec && r.m.entries[0].nsec == want_nsec,
       "message with time %s -> %s", what[k], k == 3 ? "kept" : "the arrival time");
    done(&r);
  }
  /* Without an injected clock the real time is used, not 1970. */
  reset();
  msgpack_pack_array(&pk, 3);
  str("t");
  msgpack_pack_nil(&pk);
  record(1);
  run(&r);
  ok(r.parse_rc == 0 && r.m.n_entries == 1 && r.m.entries[0].sec > 1700000000, "nil time with the real clock");
  done(&r);
  /* Forward mode entries too. */
  reset();
  msgpack_pack_array(&pk, 2);
  str("t");
  msgpack_pack_array(&pk, 2);
  entry(0, 1);
  entry(9, 2);
  run_with(&r, l);
  ok(r.parse_rc == 0 && r.m.n_entries == 2 && r.m.entries[0].sec == 1800000000 && r.m.entries[1].sec == 9,
     "forward: entry with time 0 stamped, the other kept");
  done(&r);
}

/* A tag over max_tag and a chunk over SL_FWD_CHUNK_MAX are refused: every
 * record carries the tag into Kafka, every pending ack keeps the chunk. */
static void test_tag_and_chunk_size(void) {
  run_t r;
  sl_fwd_limits_t l = lim();
  l.max_tag = 8;
  for (int k = 0; k < 2; k++) {
    reset();
    msgpack_pack_array(&pk, 3);
    str(k ? "123456789" : "12345678");
    msgpack_pack_uint8(&pk, 1);
    record(1);
    run_with(&r, l);
    is_int(r.parse_rc, k ? SL_ETAGSIZE : 0, k ? "tag one byte over max_tag -> SL_ETAGSIZE" : "tag of max_tag bytes");
    done(&r);
  }
  char chunk[SL_FWD_CHUNK_MAX + 2];
  for (int k = 0; k < 2; k++) {
    memset(chunk, 'c', sizeof chunk);
    chunk[SL_FWD_CHUNK_MAX + k] = 0;
    reset();
    msgpack_pack_array(&pk, 4);
    str("t");
    msgpack_pack_uint8(&pk, 1);
    record(1);
    msgpack_pack_map(&pk, 1);
    str("chunk");
    str(chunk);
    run(&r);
    is_int(r.parse_rc, k ? SL_EBADOPTION : 0,
           k ? "chunk one byte over SL_FWD_CHUNK_MAX -> SL_EBADOPTION" : "chunk of SL_FWD_CHUNK_MAX bytes");
    done(&r);
  }
}

int main(void) {
  test_tag_and_chunk_size();
  test_zero_time();
  test_values_limit();
  test_message_mode();
  test_forward_mode();
  test_split_everywhere();
  test_many_in_one_feed();
  test_event_time();
  test_packed();
  test_gzip();
  test_wide_headers();
  test_framing_errors();
  test_interpretation_errors();
  test_bad_entries();
  sl_buf_free(&out);
  return tap_done();
}
