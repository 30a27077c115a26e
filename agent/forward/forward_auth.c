/* The Forward Protocol v1 handshake: building HELO/PING/PONG messages and
 * checking the peer's, for both the server (forward input, loop thread) and
 * the client (`sluice cat`).  Pure: no I/O beyond the CSPRNG.  Digests are
 * compared in constant time. */
#include "forward/forward_auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char hexdig[] = "0123456789abcdef";

int sl_fwd_auth_sha512_hex(char out[SL_FWD_AUTH_HEX_SIZE], const sl_fwd_auth_bytes_t *parts,
                           size_t n) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  int r = SL_ENOMEM;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha512(), NULL)) goto done;
  for (size_t i = 0; i < n; i++)
    if (parts[i].len && !EVP_DigestUpdate(ctx, parts[i].ptr, parts[i].len)) goto done;
  if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 64) goto done;
  for (unsigned i = 0; i < mdlen; i++) {
    out[2 * i] = hexdig[md[i] >> 4];
    out[2 * i + 1] = hexdig[md[i] & 15];
  }
  out[128] = '\0';
  r = 0;
done:
  EVP_MD_CTX_free(ctx);
  return r;
}

/* ---- msgpack helpers ---------------------------------------------------- */

/* Bytes of a str or bin object; false for any other type. */
static bool get_bytes(const msgpack_object *o, const char **p, size_t *len) {
  if (o->type == MSGPACK_OBJECT_STR) {
    *p = o->via.str.ptr;
    *len = o->via.str.size;
    return true;
  }
  if (o->type == MSGPACK_OBJECT_BIN) {
    *p = o->via.bin.ptr;
    *len = o->via.bin.size;
    return true;
  }
  return false;
}

static bool bytes_eq(const char *p, size_t len, const char *s) {
  return len == strlen(s) && memcmp(p, s, len) == 0;
}

/* A received hex digest against the expected one, in constant time. */
static bool digest_eq(const char *p, size_t len, const char *want) {
  return len == SL_FWD_AUTH_HEX_SIZE - 1 && CRYPTO_memcmp(p, want, len) == 0;
}

static int pack_str(msgpack_packer *pk, const char *s, size_t len) {
  return msgpack_pack_str_with_body(pk, s, len);
}

static int pack_cstr(msgpack_packer *pk, const char *s) {
  return pack_str(pk, s, strlen(s));
}

/* Runs a sequence of msgpack_pack_* calls; any failure is an allocation
 * failure of the sl_buf_t behind the packer.  The buffer is rolled back. */
#define PACK(expr)               \
  do {                           \
    if ((expr) != 0) goto nomem; \
  } while (0)

static int shared_key_digest(char out[SL_FWD_AUTH_HEX_SIZE], const void *salt, size_t salt_len,
                             const char *host, size_t host_len, const void *nonce, size_t nonce_len,
                             const char *key) {
  sl_fwd_auth_bytes_t parts[] = {
      {salt, salt_len}, {host, host_len}, {nonce, nonce_len}, {key, strlen(key)}};
  return sl_fwd_auth_sha512_hex(out, parts, 4);
}

/* ---- server ------------------------------------------------------------- */

bool sl_fwd_auth_users_required(const sl_fwd_auth_config_t *cfg) {
  return cfg->user_auth || cfg->n_users > 0;
}

int sl_fwd_auth_session_init(sl_fwd_auth_session_t *s) {
  if (RAND_bytes(s->nonce, sizeof s->nonce) != 1) return -EIO;
  if (RAND_bytes(s->auth_salt, sizeof s->auth_salt) != 1) return -EIO;
  return 0;
}

int sl_fwd_auth_build_helo(sl_buf_t *out, const sl_fwd_auth_config_t *cfg,
                           const sl_fwd_auth_session_t *s) {
  size_t mark = out->len;
  msgpack_packer pk;
  msgpack_packer_init(&pk, out, sl_buf_msgpack_write);
  PACK(msgpack_pack_array(&pk, 2));
  PACK(pack_cstr(&pk, "HELO"));
  PACK(msgpack_pack_map(&pk, 3));
  PACK(pack_cstr(&pk, "nonce"));
  PACK(msgpack_pack_bin_with_body(&pk, s->nonce, sizeof s->nonce));
  PACK(pack_cstr(&pk, "auth"));
  if (sl_fwd_auth_users_required(cfg))
    PACK(msgpack_pack_bin_with_body(&pk, s->auth_salt, sizeof s->auth_salt));
  else
    PACK(pack_cstr(&pk, ""));
  PACK(pack_cstr(&pk, "keepalive"));
  PACK(cfg->keepalive ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
  return 0;
nomem:
  out->len = mark;
  return SL_ENOMEM;
}

/* Whether some configured user has this name and password digest.  Every
 * user is checked so timing does not reveal which names exist. */
static int check_user(const sl_fwd_auth_config_t *cfg, const sl_fwd_auth_session_t *s,
                      const char *name, size_t name_len, const char *digest, size_t digest_len,
                      bool *found) {
  *found = false;
  for (size_t i = 0; i < cfg->n_users; i++) {
    const sl_fwd_auth_user_t *u = &cfg->users[i];
    char want[SL_FWD_AUTH_HEX_SIZE];
    sl_fwd_auth_bytes_t parts[] = {
        {s->auth_salt, sizeof s->auth_salt}, {name, name_len}, {u->password, strlen(u->password)}};
    if (sl_fwd_auth_sha512_hex(want, parts, 3)) return SL_ENOMEM;
    /* Both comparisons always run (no early exit), so the time taken does not
     * tell which part was wrong. */
    bool same = (int)bytes_eq(name, name_len, u->username) & (int)digest_eq(digest, digest_len, want);
    *found |= same;
  }
  return 0;
}

int sl_fwd_auth_check_ping(const sl_fwd_auth_config_t *cfg, const sl_fwd_auth_session_t *s,
                           const msgpack_object *ping, sl_fwd_auth_ping_t *res) {
  *res = (sl_fwd_auth_ping_t){.authenticated = false, .reason = SL_FWD_AUTH_REASON_INVALID};
  const char *tag, *host, *salt, *digest, *user, *pass;
  size_t tag_len, host_len, salt_len, digest_len, user_len, pass_len;
  if (ping->type != MSGPACK_OBJECT_ARRAY || ping->via.array.size != 6) return SL_EBADPING;
  const msgpack_object *a = ping->via.array.ptr;
  if (!get_bytes(&a[0], &tag, &tag_len) || !bytes_eq(tag, tag_len, "PING") ||
      !get_bytes(&a[1], &host, &host_len) || !get_bytes(&a[2], &salt, &salt_len) ||
      !get_bytes(&a[3], &digest, &digest_len) || !get_bytes(&a[4], &user, &user_len) ||
      !get_bytes(&a[5], &pass, &pass_len))
    return SL_EBADPING;
  res->hostname = host;
  res->hostname_len = host_len;
  res->username = user;
  res->username_len = user_len;
  res->salt = salt;
  res->salt_len = salt_len;

  char want[SL_FWD_AUTH_HEX_SIZE];
  if (shared_key_digest(want, salt, salt_len, host, host_len, s->nonce, sizeof s->nonce,
                        cfg->shared_key))
    return SL_ENOMEM;
  if (!digest_eq(digest, digest_len, want)) {
    res->reason = SL_FWD_AUTH_REASON_SHARED_KEY;
    return SL_EAUTH;
  }
  if (sl_fwd_auth_users_required(cfg)) {
    bool found;
    if (check_user(cfg, s, user, user_len, pass, pass_len, &found)) return SL_ENOMEM;
    if (!found) {
      res->reason = SL_FWD_AUTH_REASON_USER;
      return SL_EAUTH;
    }
  }
  res->authenticated = true;
  res->reason = "";
  return 0;
}

int sl_fwd_auth_build_pong(sl_buf_t *out, const sl_fwd_auth_config_t *cfg,
                           const sl_fwd_auth_session_t *s, const sl_fwd_auth_ping_t *res) {
  size_t mark = out->len;
  char digest[SL_FWD_AUTH_HEX_SIZE];
  const char *host = "", *hex = "";
  if (res->authenticated) {
    host = cfg->self_hostname;
    if (shared_key_digest(digest, res->salt, res->salt_len, host, strlen(host), s->nonce,
                          sizeof s->nonce, cfg->shared_key))
      return SL_ENOMEM;
    hex = digest;
  }
  msgpack_packer pk;
  msgpack_packer_init(&pk, out, sl_buf_msgpack_write);
  PACK(msgpack_pack_array(&pk, 5));
  PACK(pack_cstr(&pk, "PONG"));
  PACK(res->authenticated ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
  PACK(pack_cstr(&pk, res->authenticated ? "" : res->reason));
  PACK(pack_cstr(&pk, host));
  PACK(pack_cstr(&pk, hex));
  return 0;
nomem:
  out->len = mark;
  return SL_ENOMEM;
}

/* ---- client ------------------------------------------------------------- */

static int dup_bytes(unsigned char **dst, size_t *dst_len, const char *p, size_t len) {
  free(*dst);
  *dst = NULL;
  *dst_len = 0;
  if (!len) return 0;
  if (!(*dst = malloc(len))) return SL_ENOMEM;
  memcpy(*dst, p, len);
  *dst_len = len;
  return 0;
}

int sl_fwd_auth_client_parse_helo(sl_fwd_auth_client_t *c, const msgpack_object *helo) {
  const char *tag, *nonce = "", *auth = "";
  size_t tag_len, nonce_len = 0, auth_len = 0;
  bool keepalive = true;
  if (helo->type != MSGPACK_OBJECT_ARRAY || helo->via.array.size != 2) return SL_ESYNTAX;
  const msgpack_object *a = helo->via.array.ptr;
  if (!get_bytes(&a[0], &tag, &tag_len) || !bytes_eq(tag, tag_len, "HELO")) return SL_ESYNTAX;
  if (a[1].type == MSGPACK_OBJECT_MAP) {
    for (uint32_t i = 0; i < a[1].via.map.size; i++) {
      const msgpack_object_kv *kv = &a[1].via.map.ptr[i];
      const char *k;
      size_t klen;
      if (!get_bytes(&kv->key, &k, &klen)) continue;
      bool nil = kv->val.type == MSGPACK_OBJECT_NIL;
      if (bytes_eq(k, klen, "nonce")) {
        if (!nil && !get_bytes(&kv->val, &nonce, &nonce_len)) return SL_ESYNTAX;
      } else if (bytes_eq(k, klen, "auth")) {
        if (!nil && !get_bytes(&kv->val, &auth, &auth_len)) return SL_ESYNTAX;
      } else if (bytes_eq(k, klen, "keepalive")) {
        if (kv->val.type != MSGPACK_OBJECT_BOOLEAN) return SL_ESYNTAX;
        keepalive = kv->val.via.boolean;
      }
    }
  } else if (a[1].type != MSGPACK_OBJECT_NIL) {
    return SL_ESYNTAX;
  }
  if (dup_bytes(&c->nonce, &c->nonce_len, nonce, nonce_len) ||
      dup_bytes(&c->auth_salt, &c->auth_salt_len, auth, auth_len))
    return SL_ENOMEM;
  c->keepalive = keepalive;
  return 0;
}

int sl_fwd_auth_client_build_ping(sl_buf_t *out, sl_fwd_auth_client_t *c,
                                  const sl_fwd_auth_client_config_t *cfg) {
  size_t mark = out->len;
  bool with_user = c->auth_salt_len > 0;
  if (with_user && (!cfg->username || !cfg->password)) return SL_EAUTH;
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) return -EIO;
  for (size_t i = 0; i < sizeof raw; i++) {
    c->salt[2 * i] = hexdig[raw[i] >> 4];
    c->salt[2 * i + 1] = hexdig[raw[i] & 15];
  }
  c->salt[32] = '\0';

  char key_hex[SL_FWD_AUTH_HEX_SIZE], pass_hex[SL_FWD_AUTH_HEX_SIZE] = "";
  if (shared_key_digest(key_hex, c->salt, 32, cfg->hostname, strlen(cfg->hostname), c->nonce,
                        c->nonce_len, cfg->shared_key))
    return SL_ENOMEM;
  if (with_user) {
    sl_fwd_auth_bytes_t parts[] = {{c->auth_salt, c->auth_salt_len},
                                   {cfg->username, strlen(cfg->username)},
                                   {cfg->password, strlen(cfg->password)}};
    if (sl_fwd_auth_sha512_hex(pass_hex, parts, 3)) return SL_ENOMEM;
  }
  msgpack_packer pk;
  msgpack_packer_init(&pk, out, sl_buf_msgpack_write);
  PACK(msgpack_pack_array(&pk, 6));
  PACK(pack_cstr(&pk, "PING"));
  PACK(pack_cstr(&pk, cfg->hostname));
  PACK(pack_str(&pk, c->salt, 32));
  PACK(pack_cstr(&pk, key_hex));
  PACK(pack_cstr(&pk, with_user ? cfg->username : ""));
  PACK(pack_cstr(&pk, pass_hex));
  return 0;
nomem:
  out->len = mark;
  return SL_ENOMEM;
}

int sl_fwd_auth_client_check_pong(const sl_fwd_auth_client_t *c,
                                  const sl_fwd_auth_client_config_t *cfg,
                                  const msgpack_object *pong, char *reason, size_t reasonlen) {
  const char *tag, *why, *host, *digest;
  size_t tag_len, why_len, host_len, digest_len;
  if (reason && reasonlen) reason[0] = '\0';
  if (pong->type != MSGPACK_OBJECT_ARRAY || pong->via.array.size != 5)
    return sl_err_printf(reason, reasonlen, SL_ESYNTAX, "invalid format for PONG message");
  const msgpack_object *a = pong->via.array.ptr;
  if (!get_bytes(&a[0], &tag, &tag_len) || !bytes_eq(tag, tag_len, "PONG") ||
      a[1].type != MSGPACK_OBJECT_BOOLEAN || !get_bytes(&a[2], &why, &why_len) ||
      !get_bytes(&a[3], &host, &host_len) || !get_bytes(&a[4], &digest, &digest_len))
    return sl_err_printf(reason, reasonlen, SL_ESYNTAX, "invalid format for PONG message");
  if (!a[1].via.boolean)
    return sl_err_printf(reason, reasonlen, SL_EAUTH, "authentication failed: %.*s", (int)why_len, why);
  if (bytes_eq(host, host_len, cfg->hostname))
    return sl_err_printf(reason, reasonlen, SL_EAUTH,
                  "same hostname between input and output: invalid configuration");
  char want[SL_FWD_AUTH_HEX_SIZE];
  if (shared_key_digest(want, c->salt, strlen(c->salt), host, host_len, c->nonce, c->nonce_len,
                        cfg->shared_key))
    return sl_err_printf(reason, reasonlen, SL_ENOMEM, "out of memory");
  if (!digest_eq(digest, digest_len, want))
    return sl_err_printf(reason, reasonlen, SL_EAUTH, "shared key mismatch");
  return 0;
}

void sl_fwd_auth_client_free(sl_fwd_auth_client_t *c) {
  if (!c) return;
  free(c->nonce);
  free(c->auth_salt);
  c->nonce = c->auth_salt = NULL;
  c->nonce_len = c->auth_salt_len = 0;
}
