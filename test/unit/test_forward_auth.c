/* Unit tests for agent/forward_auth.c.  The expected digests were computed
 * independently with Python's hashlib for these fixed inputs:
 *   nonce      = bytes(range(16))            (00 01 .. 0f)
 *   salt       = b"saltsaltsaltsalt"
 *   auth_salt  = bytes(range(0xa0, 0xb0))    (a0 a1 .. af)
 *   CLIENT_HEX = sha512(salt + b"client.example" + nonce + b"secret")
 *   SERVER_HEX = sha512(salt + b"server.example" + nonce + b"secret")
 *   ALICE_HEX  = sha512(auth_salt + b"alice" + b"wonderland")
 *   EMPTY_HEX  = sha512(b"")                                                */
#include <stdarg.h>

#include "forward/forward_auth.h"
#include "tap.h"

#define CLIENT_HEX                                                         \
  "a7d7ef56a10abc383f5d8da16d11494d85343c367d152311a714aa6153c44063413162" \
  "c9ead7fd83b37483aa702744f6017eb5b3e836350681d58aaae9dbedea"
#define SERVER_HEX                                                         \
  "c34939e353522b545f4425a7baf29f99c10702ed10c8863b85a2a3e69c08ea726eb7a0" \
  "45b7b5f1c7f7b040e142e117d6a3c000a59a9ac4fd2a9ea7a25fa4f2a1"
#define ALICE_HEX                                                          \
  "77e287eb90a2074cf5cbcbdea7c410bced3713227c45d4da9f5e13ad53852af3adb6db" \
  "c770478b589a9579539d1409aec46ec9177e82317d4f15bc33dc337bd3"
#define EMPTY_HEX                                                          \
  "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d1" \
  "3c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"

static const sl_fwd_auth_user_t users[] = {{"alice", "wonderland"}, {"bob", "builder"}};

static sl_fwd_auth_config_t cfg_plain = {"server.example", "secret", NULL, 0, false, true};
static sl_fwd_auth_config_t cfg_users = {"server.example", "secret", users, 2, false, false};

static sl_fwd_auth_session_t fixed_session(void) {
  sl_fwd_auth_session_t s;
  for (int i = 0; i < 16; i++) {
    s.nonce[i] = (unsigned char)i;
    s.auth_salt[i] = (unsigned char)(0xa0 + i);
  }
  return s;
}

/* ---- building msgpack values by hand ------------------------------------ */

/* Decodes data[0..len) into *u through a msgpack_unpacker, which copies the
 * bytes and keeps them alive with the result (msgpack_unpack_next would
 * point into the caller's buffer, which the tests reuse). */
static const msgpack_object *decode(msgpack_unpacked *u, const char *data, size_t len) {
  msgpack_unpacked_destroy(u);
  msgpack_unpacked_init(u);
  msgpack_unpacker up;
  const msgpack_object *o = NULL;
  if (!msgpack_unpacker_init(&up, len + 16)) return NULL;
  memcpy(msgpack_unpacker_buffer(&up), data, len);
  msgpack_unpacker_buffer_consumed(&up, len);
  if (msgpack_unpacker_next(&up, u) == MSGPACK_UNPACK_SUCCESS) o = &u->data;
  msgpack_unpacker_destroy(&up);
  return o;
}

/* Items: 's' str (NUL-terminated), 'b' bin (NUL-terminated), 'i' int, 'n'
 * nil, 't' true.  Packs an array of them and unpacks it into *u. */
static const msgpack_object *make(msgpack_unpacked *u, const char *kinds, ...) {
  sl_buf_t b = {0};
  msgpack_packer pk;
  msgpack_packer_init(&pk, &b, sl_buf_msgpack_write);
  va_list ap;
  va_start(ap, kinds);
  msgpack_pack_array(&pk, strlen(kinds));
  for (const char *k = kinds; *k; k++) {
    if (*k == 's') {
      const char *s = va_arg(ap, const char *);
      msgpack_pack_str_with_body(&pk, s, strlen(s));
    } else if (*k == 'b') {
      const char *s = va_arg(ap, const char *);
      msgpack_pack_bin_with_body(&pk, s, strlen(s));
    } else if (*k == 'i') {
      msgpack_pack_int(&pk, va_arg(ap, int));
    } else if (*k == 't') {
      msgpack_pack_true(&pk);
    } else {
      msgpack_pack_nil(&pk);
    }
  }
  va_end(ap);
  const msgpack_object *o = decode(u, b.data, b.len);
  sl_buf_free(&b);
  return o;
}

/* Decodes the buffer's contents and empties it for the next message. */
static const msgpack_object *unpack(msgpack_unpacked *u, sl_buf_t *b) {
  const msgpack_object *o = decode(u, b->data, b->len);
  sl_buf_reset(b);
  return o;
}

static bool obj_is(const msgpack_object *o, const char *s) {
  size_t n = strlen(s);
  return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n && memcmp(o->via.str.ptr, s, n) == 0;
}

static bool obj_is_bin(const msgpack_object *o, const void *p, size_t n) {
  return o->type == MSGPACK_OBJECT_BIN && o->via.bin.size == n && memcmp(o->via.bin.ptr, p, n) == 0;
}

static const msgpack_object *map_get(const msgpack_object *m, const char *key) {
  for (uint32_t i = 0; i < m->via.map.size; i++)
    if (obj_is(&m->via.map.ptr[i].key, key)) return &m->via.map.ptr[i].val;
  return NULL;
}

/* Checks a PONG object field by field. */
static void check_pong(const msgpack_object *o, bool auth, const char *reason, const char *host,
                       const char *hex, const char *what) {
  bool shape = o && o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 5;
  ok(shape, "%s: PONG is a 5-array", what);
  if (!shape) return;
  const msgpack_object *a = o->via.array.ptr;
  ok(obj_is(&a[0], "PONG"), "%s: tag", what);
  ok(a[1].type == MSGPACK_OBJECT_BOOLEAN && a[1].via.boolean == auth, "%s: auth_result", what);
  ok(obj_is(&a[2], reason), "%s: reason '%s'", what, reason);
  ok(obj_is(&a[3], host), "%s: server hostname '%s'", what, host);
  ok(obj_is(&a[4], hex), "%s: server digest", what);
}

/* ---- tests -------------------------------------------------------------- */

static void test_digest(void) {
  char hex[SL_FWD_AUTH_HEX_SIZE];
  is_int(sl_fwd_auth_sha512_hex(hex, NULL, 0), 0, "sha512 of nothing");
  is_str(hex, EMPTY_HEX, "sha512('') vector");
  sl_fwd_auth_session_t s = fixed_session();
  sl_fwd_auth_bytes_t parts[] = {
      {"saltsaltsaltsalt", 16}, {"client.example", 14}, {s.nonce, 16}, {"secret", 6}};
  sl_fwd_auth_sha512_hex(hex, parts, 4);
  is_str(hex, CLIENT_HEX, "shared key digest vector (parts concatenated)");
}

static void test_helo(void) {
  sl_fwd_auth_session_t s = fixed_session();
  sl_buf_t b = {0};
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);

  is_int(sl_fwd_auth_build_helo(&b, &cfg_plain, &s), 0, "build HELO (no users)");
  const msgpack_object *o = unpack(&u, &b);
  ok(o && o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 2, "HELO is a 2-array");
  ok(obj_is(&o->via.array.ptr[0], "HELO"), "HELO tag");
  const msgpack_object *m = &o->via.array.ptr[1];
  ok(m->type == MSGPACK_OBJECT_MAP && m->via.map.size == 3, "HELO options map of 3");
  ok(obj_is_bin(map_get(m, "nonce"), s.nonce, 16), "nonce is the 16 session bytes as bin");
  ok(obj_is(map_get(m, "auth"), ""), "auth is \"\" without users");
  const msgpack_object *ka = map_get(m, "keepalive");
  ok(ka && ka->type == MSGPACK_OBJECT_BOOLEAN && ka->via.boolean, "keepalive true");

  is_int(sl_fwd_auth_build_helo(&b, &cfg_users, &s), 0, "build HELO (users)");
  o = unpack(&u, &b);
  m = &o->via.array.ptr[1];
  ok(obj_is_bin(map_get(m, "auth"), s.auth_salt, 16), "auth is the salt with users");
  ka = map_get(m, "keepalive");
  ok(ka && ka->type == MSGPACK_OBJECT_BOOLEAN && !ka->via.boolean, "keepalive false");

  sl_fwd_auth_config_t forced = cfg_plain;
  forced.user_auth = true;
  ok(sl_fwd_auth_users_required(&forced), "user_auth without users still requires users");
  ok(sl_fwd_auth_users_required(&cfg_users), "users imply user auth");
  ok(!sl_fwd_auth_users_required(&cfg_plain), "no users, no user auth");

  sl_fwd_auth_session_t r1, r2;
  is_int(sl_fwd_auth_session_init(&r1), 0, "session init");
  sl_fwd_auth_session_init(&r2);
  ok(memcmp(r1.nonce, r2.nonce, 16) != 0, "nonces differ between sessions");
  ok(memcmp(r1.nonce, r1.auth_salt, 16) != 0, "nonce and auth salt differ");
  msgpack_unpacked_destroy(&u);
  sl_buf_free(&b);
}

static void test_ping_server(void) {
  sl_fwd_auth_session_t s = fixed_session();
  sl_fwd_auth_ping_t res;
  sl_buf_t b = {0};
  msgpack_unpacked u, pu;
  msgpack_unpacked_init(&u);
  msgpack_unpacked_init(&pu);
  const msgpack_object *p;

  /* Shared key only. */
  p = make(&u, "ssssss", "PING", "client.example", "saltsaltsaltsalt", CLIENT_HEX, "", "");
  is_int(sl_fwd_auth_check_ping(&cfg_plain, &s, p, &res), 0, "valid PING accepted");
  ok(res.authenticated && strcmp(res.reason, "") == 0, "authenticated, empty reason");
  ok(res.hostname_len == 14 && memcmp(res.hostname, "client.example", 14) == 0,
     "client hostname reported");
  sl_fwd_auth_build_pong(&b, &cfg_plain, &s, &res);
  check_pong(unpack(&pu, &b), true, "", "server.example", SERVER_HEX, "success");

  p = make(&u, "sbbsbb", "PING", "client.example", "saltsaltsaltsalt", CLIENT_HEX, "", "");
  is_int(sl_fwd_auth_check_ping(&cfg_plain, &s, p, &res), 0, "bin hostname/salt accepted");
  sl_fwd_auth_build_pong(&b, &cfg_plain, &s, &res);
  check_pong(unpack(&pu, &b), true, "", "server.example", SERVER_HEX, "bin salt");

  p = make(&u, "ssssss", "PING", "client.example", "saltsaltsaltsalt", CLIENT_HEX, "x", "y");
  is_int(sl_fwd_auth_check_ping(&cfg_plain, &s, p, &res), 0, "user fields ignored without auth");

  /* Wrong shared key (digest computed for another hostname). */
  p = make(&u, "ssssss", "PING", "other.example", "saltsaltsaltsalt", CLIENT_HEX, "", "");
  is_int(sl_fwd_auth_check_ping(&cfg_plain, &s, p, &res), SL_EAUTH, "digest mismatch rejected");
  is_str(res.reason, "shared_key mismatch", "reason shared_key mismatch");
  sl_fwd_auth_build_pong(&b, &cfg_plain, &s, &res);
  check_pong(unpack(&pu, &b), false, "shared_key mismatch", "", "", "shared key failure");
  sl_fwd_auth_config_t other_key = cfg_plain;
  other_key.shared_key = "Secret";
  p = make(&u, "ssssss", "PING", "client.example", "saltsaltsaltsalt", CLIENT_HEX, "", "");
  is_int(sl_fwd_auth_check_ping(&other_key, &s, p, &res), SL_EAUTH, "other server key rejects");
  p = make(&u, "ssssss", "PING", "client.example", "saltsaltsaltsalt",
           "A7D7EF56A10ABC383F5D8DA16D11494D85343C367D152311A714AA6153C44063413162"
           "C9EAD7FD83B37483AA702744F6017EB5B3E836350681D58AAAE9DBEDEA",
           "", "");
  is_int(sl_fwd_auth_check_ping(&cfg_plain, &s, p, &res), SL_EAUTH,
         "upper-case hex rejected (fluentd compares strings)");

  /* Users. */
  p = make(&u, "ssssss", "PING", "client.example", "saltsaltsaltsalt", CLIENT_HEX, "alice",
           ALICE_HEX);
  is_int(sl_fwd_auth_check_ping(&cfg_users, &s, p, &res), 0, "alice/wonderland accepted");
  ok(res.username_len == 5 && memcmp(res.username, "alice", 5) == 0, "username reported");
  sl_fwd_auth_build_pong(&b, &cfg_users, &s, &res);
  check_pong(unpack(&pu, &b), true, "", "server.example", SERVER_HEX, "user success");

  p = make(&u, "ssssss", "PING", "client.example", "saltsaltsaltsalt", CLIENT_HEX, "bob",
           ALICE_HEX);
  is_int(sl_fwd_auth_check_ping(&cfg_users, &s, p, &res), SL_EAUTH, "alice's digest for bob");
  is_str(res.reason, "username/password mismatch", "reason username/password mismatch");
  sl_fwd_auth_build_pong(&b, &cfg_users, &s, &res);
  check_pong(unpack(&pu, &b), false, "username/password mismatch", "", "", "user failure");
  p = make(&u, "ssssss", "PING", "client.example", "saltsaltsaltsalt", CLIENT_HEX, "alice",
           EMPTY_HEX);
  is_int(sl_fwd_auth_check_ping(&cfg_users, &s, p, &res), SL_EAUTH, "wrong password");
  p = make(&u, "ssssss", "PING", "client.example", "saltsaltsaltsalt", CLIENT_HEX, "", "");
  is_int(sl_fwd_auth_check_ping(&cfg_users, &s, p, &res), SL_EAUTH, "missing user");
  p = make(&u, "ssssss", "PING", "client.example", "saltsaltsaltsalt", EMPTY_HEX, "alice",
           ALICE_HEX);
  is_int(sl_fwd_auth_check_ping(&cfg_users, &s, p, &res), SL_EAUTH, "good user, bad key");
  is_str(res.reason, "shared_key mismatch", "shared key is checked first");
  sl_fwd_auth_config_t forced = cfg_plain;
  forced.user_auth = true;
  p = make(&u, "ssssss", "PING", "client.example", "saltsaltsaltsalt", CLIENT_HEX, "alice",
           ALICE_HEX);
  is_int(sl_fwd_auth_check_ping(&forced, &s, p, &res), SL_EAUTH, "user_auth with no users");
  is_str(res.reason, "username/password mismatch", "... fails as user mismatch");

  msgpack_unpacked_destroy(&u);
  msgpack_unpacked_destroy(&pu);
  sl_buf_free(&b);
}

static void bad_ping(const msgpack_object *p, const char *what) {
  sl_fwd_auth_session_t s = fixed_session();
  sl_fwd_auth_ping_t res;
  sl_buf_t b = {0};
  msgpack_unpacked pu;
  msgpack_unpacked_init(&pu);
  is_int(sl_fwd_auth_check_ping(&cfg_plain, &s, p, &res), SL_EBADPING, "malformed: %s", what);
  ok(!res.authenticated && strcmp(res.reason, "invalid ping message") == 0,
     "malformed: %s -> invalid ping message", what);
  sl_fwd_auth_build_pong(&b, &cfg_plain, &s, &res);
  check_pong(unpack(&pu, &b), false, "invalid ping message", "", "", what);
  msgpack_unpacked_destroy(&pu);
  sl_buf_free(&b);
}

static void test_ping_malformed(void) {
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  msgpack_object notarray = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = 1};
  bad_ping(&notarray, "not an array");
  bad_ping(make(&u, "sssss", "PING", "c", "s", CLIENT_HEX, ""), "5 elements");
  bad_ping(make(&u, "sssssss", "PING", "c", "s", CLIENT_HEX, "", "", ""), "7 elements");
  bad_ping(make(&u, "ssssss", "PONG", "c", "s", CLIENT_HEX, "", ""), "tag PONG");
  bad_ping(make(&u, "isssss", 1, "c", "s", CLIENT_HEX, "", ""), "integer tag");
  bad_ping(make(&u, "sissss", "PING", 7, "s", CLIENT_HEX, "", ""), "integer hostname");
  bad_ping(make(&u, "ssnsss", "PING", "c", CLIENT_HEX, "", ""), "nil salt");
  bad_ping(make(&u, "sssiss", "PING", "c", "s", 5, "", ""), "integer digest");
  bad_ping(make(&u, "ssssns", "PING", "c", "s", CLIENT_HEX, ""), "nil username");
  bad_ping(make(&u, "ssssst", "PING", "c", "s", CLIENT_HEX, ""), "boolean password digest");
  msgpack_unpacked_destroy(&u);
}

/* Runs a full handshake; returns the client's verdict. */
static int round_trip(const sl_fwd_auth_config_t *scfg, const sl_fwd_auth_client_config_t *ccfg,
                      int *server_r, char *reason) {
  sl_fwd_auth_session_t s;
  sl_fwd_auth_client_t c = {0};
  sl_fwd_auth_ping_t res;
  sl_buf_t b = {0};
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  int r = -1;
  sl_fwd_auth_session_init(&s);
  sl_fwd_auth_build_helo(&b, scfg, &s);
  if (sl_fwd_auth_client_parse_helo(&c, unpack(&u, &b))) goto done;
  if ((r = sl_fwd_auth_client_build_ping(&b, &c, ccfg))) goto done;
  *server_r = sl_fwd_auth_check_ping(scfg, &s, unpack(&u, &b), &res);
  sl_fwd_auth_build_pong(&b, scfg, &s, &res);
  r = sl_fwd_auth_client_check_pong(&c, ccfg, unpack(&u, &b), reason, 128);
done:
  sl_fwd_auth_client_free(&c);
  msgpack_unpacked_destroy(&u);
  sl_buf_free(&b);
  return r;
}

static void test_round_trip(void) {
  char reason[128];
  int sr;
  sl_fwd_auth_client_config_t cc = {"client.example", "secret", NULL, NULL};
  is_int(round_trip(&cfg_plain, &cc, &sr, reason), 0, "round trip, shared key");
  is_int(sr, 0, "... server accepted");

  cc.shared_key = "wrong";
  is_int(round_trip(&cfg_plain, &cc, &sr, reason), SL_EAUTH, "round trip, wrong key");
  is_int(sr, SL_EAUTH, "... server rejected");
  is_str(reason, "authentication failed: shared_key mismatch", "... client reason");

  cc = (sl_fwd_auth_client_config_t){"client.example", "secret", "bob", "builder"};
  is_int(round_trip(&cfg_users, &cc, &sr, reason), 0, "round trip with user bob");
  cc.password = "nope";
  is_int(round_trip(&cfg_users, &cc, &sr, reason), SL_EAUTH, "round trip with wrong password");
  is_str(reason, "authentication failed: username/password mismatch", "... client reason");
  cc.username = cc.password = NULL;
  is_int(round_trip(&cfg_users, &cc, &sr, reason), SL_EAUTH,
         "server asks for a user, client has none");

  cc = (sl_fwd_auth_client_config_t){"server.example", "secret", NULL, NULL};
  is_int(round_trip(&cfg_plain, &cc, &sr, reason), SL_EAUTH, "same hostname on both ends");
  is_str(reason, "same hostname between input and output: invalid configuration",
         "... client reason");
}

static void test_client(void) {
  sl_fwd_auth_client_t c = {0};
  sl_fwd_auth_client_config_t cc = {"client.example", "secret", NULL, NULL};
  sl_buf_t b = {0};
  msgpack_unpacked u, hu;
  msgpack_unpacked_init(&u);
  msgpack_unpacked_init(&hu);
  char reason[128];

  /* A HELO whose nonce is a str, from a server we control by hand. */
  msgpack_packer pk;
  msgpack_packer_init(&pk, &b, sl_buf_msgpack_write);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_str_with_body(&pk, "HELO", 4);
  msgpack_pack_map(&pk, 3);
  msgpack_pack_str_with_body(&pk, "nonce", 5);
  msgpack_pack_str_with_body(
      &pk, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", 16);
  msgpack_pack_str_with_body(&pk, "auth", 4);
  msgpack_pack_str_with_body(&pk, "", 0);
  msgpack_pack_str_with_body(&pk, "keepalive", 9);
  msgpack_pack_false(&pk);
  is_int(sl_fwd_auth_client_parse_helo(&c, unpack(&hu, &b)), 0, "HELO with str nonce");
  ok(c.nonce_len == 16 && c.nonce[15] == 0x0f && c.auth_salt_len == 0 && !c.keepalive,
     "nonce, auth and keepalive read");
  is_int(sl_fwd_auth_client_build_ping(&b, &c, &cc), 0, "build PING");
  const msgpack_object *p = unpack(&u, &b);
  ok(p && p->via.array.size == 6 && obj_is(&p->via.array.ptr[0], "PING") &&
         obj_is(&p->via.array.ptr[1], "client.example") && obj_is(&p->via.array.ptr[4], "") &&
         obj_is(&p->via.array.ptr[5], ""),
     "PING shape without user");
  ok(strlen(c.salt) == 32 && strspn(c.salt, "0123456789abcdef") == 32, "salt is 32 hex chars");
  sl_fwd_auth_session_t s = fixed_session();
  sl_fwd_auth_ping_t res;
  is_int(sl_fwd_auth_check_ping(&cfg_plain, &s, p, &res), 0,
         "server with the same nonce accepts the client's PING");

  /* A hand-made PONG for salt "saltsaltsaltsalt": the server vector. */
  memcpy(c.salt, "saltsaltsaltsalt", 17);
  const msgpack_object *pong;
  pong = make(&u, "stsss", "PONG", "", "server.example", SERVER_HEX);
  is_int(sl_fwd_auth_client_check_pong(&c, &cc, pong, reason, sizeof reason), 0,
         "PONG with the expected server digest");
  pong = make(&u, "stsss", "PONG", "", "server.example", CLIENT_HEX);
  is_int(sl_fwd_auth_client_check_pong(&c, &cc, pong, reason, sizeof reason), SL_EAUTH,
         "PONG with a wrong digest");
  is_str(reason, "shared key mismatch", "... reason");
  pong = make(&u, "stsbb", "PONG", "", "server.example", SERVER_HEX);
  is_int(sl_fwd_auth_client_check_pong(&c, &cc, pong, reason, sizeof reason), 0,
         "PONG with bin hostname and digest");
  pong = make(&u, "stss", "PONG", "", "server.example");
  is_int(sl_fwd_auth_client_check_pong(&c, &cc, pong, reason, sizeof reason), SL_ESYNTAX,
         "PONG of 4 elements");
  is_str(reason, "invalid format for PONG message", "... reason");
  pong = make(&u, "sssss", "PONG", "yes", "", "server.example", SERVER_HEX);
  is_int(sl_fwd_auth_client_check_pong(&c, &cc, pong, NULL, 0), SL_ESYNTAX,
         "PONG with a non-boolean result");

  /* HELO variants. */
  is_int(sl_fwd_auth_client_parse_helo(&c, make(&u, "sn", "HELO")), 0, "HELO with nil options");
  ok(c.nonce_len == 0 && c.auth_salt_len == 0 && c.keepalive, "... empty nonce, keepalive");
  is_int(sl_fwd_auth_client_parse_helo(&c, make(&u, "ss", "HELO", "x")), SL_ESYNTAX,
         "HELO with a string for options");
  is_int(sl_fwd_auth_client_parse_helo(&c, make(&u, "sn", "HELP")), SL_ESYNTAX, "not HELO");
  is_int(sl_fwd_auth_client_parse_helo(&c, make(&u, "s", "HELO")), SL_ESYNTAX, "HELO arity");

  msgpack_unpacked_destroy(&u);
  msgpack_unpacked_destroy(&hu);
  sl_fwd_auth_client_free(&c);
  sl_fwd_auth_client_free(NULL);
  sl_buf_free(&b);
}

int main(void) {
  test_digest();
  test_helo();
  test_ping_server();
  test_ping_malformed();
  test_round_trip();
  test_client();
  return tap_done();
}
