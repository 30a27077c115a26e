/* libFuzzer target: a forward connection's byte stream, driven the way
 * forward_conn.c drives it: fed to the decoder in pieces, every frame taken
 * as soon as it is complete; with a shared key set, frames go through the
 * handshake (PING checked, PONG built) until one authenticates, and a
 * refused one ends the stream; then each frame is parsed as an event
 * message (every mode, CompressedPackedForward's gzip included) and its
 * records encoded as JSON, as ingest does.  Small limits, so that the
 * fuzzer reaches them.  The sluice cat side of the handshake (HELO and
 * PONG parsing) reads the same frames.
 *
 * Input: byte 0 = flags (bit 0 skip_invalid_event, bit 1 shared key, bit 2
 * users, bits 3-4 which limits), byte 1 = feed piece size (0: all at once),
 * then the stream.  Aborts when the decoder breaks a documented promise
 * (an undocumented error code, a frame over chunk_size_limit, more
 * buffered than the limit plus the last piece). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "forward/forward_auth.h"
#include "forward/forward_decode.h"
#include "ingest/json_encode.h"

#define CHECK(cond, ...)                                 \
  do {                                                   \
    if (!(cond)) {                                       \
      fprintf(stderr, "fuzz_forward: " __VA_ARGS__);     \
      fputc('\n', stderr);                               \
      abort();                                           \
    }                                                    \
  } while (0)

static void fixed_now(int64_t *sec, uint32_t *nsec) {
  *sec = 1700000000;
  *nsec = 0;
}

static const sl_fwd_limits_t limit_sets[4] = {
    {.chunk_size_limit = 4096, .decompression_size_limit = 8192, .max_depth = 8, .max_values = 512,
     .max_tag = 64, .now = fixed_now},
    {.chunk_size_limit = 512, .decompression_size_limit = 256, .max_depth = 4, .max_values = 64,
     .max_tag = 16, .now = fixed_now},
    {.chunk_size_limit = 65536, .decompression_size_limit = 65536, .max_depth = 32, .max_values = 0,
     .max_tag = 0, .now = fixed_now},
    {.chunk_size_limit = 64, .decompression_size_limit = 64, .max_depth = 2, .max_values = 8,
     .max_tag = 4, .now = fixed_now},
};

/* test/fuzz/make_corpus.py computes the seed PINGs from these. */
static const sl_fwd_auth_user_t users[] = {{"alice", "wonderland"}, {"bob", "builder"}};
static const sl_fwd_auth_session_t session = {.nonce = "0123456789abcdef",
                                              .auth_salt = "fedcba9876543210"};

static bool decode_error(int r) { return r == SL_EMSGPACK || r == SL_ETOOBIG || r == SL_EDEPTH || r == SL_EVALUES; }

static bool parse_error(int r) {
  switch (r) {
  case SL_ENOTARRAY: case SL_EBADTAG: case SL_EBADMODE: case SL_EBADOPTION: case SL_EBADGZIP:
  case SL_EBOMB: case SL_EMSGPACK: case SL_EDEPTH: case SL_ETAGSIZE: case SL_EVALUES:
  case SL_EBADENTRY:
    return true;
  default:
    return false;
  }
}

static void client_side(const msgpack_object *root) {
  sl_fwd_auth_client_t c = {0};
  if (sl_fwd_auth_client_parse_helo(&c, root) == 0) sl_fwd_auth_client_free(&c);
  /* A PONG as the client that sent a PING after the fixed HELO would see it. */
  sl_fwd_auth_client_t sent = {0};
  sent.nonce = (unsigned char *)session.nonce;
  sent.nonce_len = sizeof session.nonce;
  memcpy(sent.salt, "00112233445566778899aabbccddeeff", 33);
  sl_fwd_auth_client_config_t cfg = {.hostname = "client", .shared_key = "secret"};
  char reason[256];
  sl_fwd_auth_client_check_pong(&sent, &cfg, root, reason, sizeof reason);
}

/* Returns false when the connection would be closed. */
static bool handle_ping(const sl_fwd_auth_config_t *auth, const sl_fwd_frame_t *f, bool *established) {
  sl_fwd_auth_ping_t res;
  int r = sl_fwd_auth_check_ping(auth, &session, &f->root, &res);
  CHECK(r == 0 || r == SL_EBADPING || r == SL_EAUTH, "check_ping returned %d", r);
  CHECK(res.reason != NULL, "check_ping left no reason");
  sl_buf_t b = {0};
  int pr = sl_fwd_auth_build_pong(&b, auth, &session, &res);
  CHECK(pr == 0 && b.len > 0, "build_pong failed: %d", pr);
  sl_buf_free(&b);
  if (r == 0) *established = true;
  return r == 0;
}

static void handle_message(const sl_fwd_frame_t *f, const sl_fwd_limits_t *l, sl_buf_t *json) {
  sl_fwd_message_t msg;
  memset(&msg, 0, sizeof msg);
  int r = sl_fwd_message_parse(&f->root, l, &msg);
  CHECK(r == 0 || parse_error(r), "message_parse returned %d", r);
  if (r == 0) {
    CHECK(msg.mode >= SL_FWD_MESSAGE && msg.mode <= SL_FWD_COMPRESSED_PACKED, "mode %d", (int)msg.mode);
    CHECK(!l->max_tag || msg.tag_len <= l->max_tag, "tag of %zu bytes", msg.tag_len);
    CHECK(msg.chunk_len <= SL_FWD_CHUNK_MAX, "chunk of %zu bytes", msg.chunk_len);
    for (size_t i = 0; i < msg.n_entries; i++) {
      const msgpack_object *rec = msg.entries[i].record;
      CHECK(rec && rec->type == MSGPACK_OBJECT_MAP, "entry %zu is not a map", i);
      sl_buf_reset(json);
      int jr = sl_json_encode(json, rec);
      CHECK(jr == 0 || jr == SL_EDEPTH, "json_encode returned %d", jr);
    }
  }
  sl_fwd_message_free(&msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint8_t flags = data[0];
  size_t piece = data[1] ? data[1] : size;
  data += 2;
  size -= 2;
  sl_fwd_limits_t l = limit_sets[(flags >> 3) & 3];
  l.skip_invalid_event = flags & 1;
  bool handshake = flags & 2;
  sl_fwd_auth_config_t auth = {.self_hostname = "server", .shared_key = "secret", .keepalive = true};
  if (flags & 4) {
    auth.users = users;
    auth.n_users = 2;
  }
  bool established = !handshake;

  sl_fwd_decoder_t *d = sl_fwd_decoder_new(&l);
  CHECK(d, "decoder_new failed");
  sl_buf_t json = {0};
  bool open = true;
  for (size_t off = 0; open && off < size;) {
    size_t n = size - off < piece ? size - off : piece;
    CHECK(sl_fwd_decoder_feed(d, (const char *)data + off, n) == 0, "feed failed");
    off += n;
    for (;;) {
      sl_fwd_frame_t f;
      memset(&f, 0, sizeof f);
      int r = sl_fwd_decoder_next(d, &f);
      if (r == 0) break;
      if (r < 0) {
        CHECK(decode_error(r), "decoder_next returned %d", r);
        open = false;
        break;
      }
      CHECK(f.size <= l.chunk_size_limit, "frame of %zu bytes over the limit %zu", f.size,
            l.chunk_size_limit);
      if (handshake) client_side(&f.root);
      if (!established)
        open = handle_ping(&auth, &f, &established);
      else
        handle_message(&f, &l, &json);
      sl_fwd_frame_free(&f);
      if (!open) break;
    }
    if (open)
      CHECK(sl_fwd_decoder_buffered(d) <= l.chunk_size_limit + n, "%zu bytes buffered (limit %zu)",
            sl_fwd_decoder_buffered(d), l.chunk_size_limit);
  }
  sl_buf_free(&json);
  sl_fwd_decoder_free(d);
  return 0;
}
