/* Forward Protocol v1 handshake (HELO / PING / PONG), pure: msgpack values
 * in, msgpack bytes out, no sockets.  The server half is driven by the
 * forward input on the loop thread (one session per connection); the client
 * half by `sluice cat`.  Behaviour and failure reasons follow fluentd's
 * in_forward / out_forward:
 *
 *   server -> HELO  ["HELO", {"nonce": bin(16), "auth": bin(16) | "",
 *                             "keepalive": bool}]
 *   client -> PING  ["PING", client_hostname, shared_key_salt,
 *                    hex(sha512(shared_key_salt + client_hostname + nonce +
 *                               shared_key)),
 *                    username, hex(sha512(auth_salt + username + password))]
 *                   (username and password digest are "" without user auth)
 *   server -> PONG  ["PONG", true, "", server_hostname,
 *                    hex(sha512(shared_key_salt + server_hostname + nonce +
 *                               shared_key))]
 *               or  ["PONG", false, reason, "", ""]
 *
 * Byte strings received (nonce, salts, names, digests) may be msgpack str or
 * bin; their bytes are used either way. */
#ifndef SL_FORWARD_AUTH_H
#define SL_FORWARD_AUTH_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

#define SL_FWD_AUTH_NONCE_LEN 16 /* server nonce and auth salt, bytes */
#define SL_FWD_AUTH_HEX_SIZE 129 /* hex SHA-512 plus NUL */

/* Failure reasons sent in PONG, exactly as fluentd's in_forward. */
#define SL_FWD_AUTH_REASON_SHARED_KEY "shared_key mismatch"
#define SL_FWD_AUTH_REASON_USER "username/password mismatch"
#define SL_FWD_AUTH_REASON_INVALID "invalid ping message"

/* One contiguous piece of input to a digest. */
typedef struct {
  const void *ptr;
  size_t len;
} sl_fwd_auth_bytes_t;

/* out = lowercase hex SHA-512 of the concatenation of parts[0..n).
 * Returns 0 or SL_ENOMEM (libcrypto failure). */
int sl_fwd_auth_sha512_hex(char out[SL_FWD_AUTH_HEX_SIZE], const sl_fwd_auth_bytes_t *parts,
                           size_t n);

/* ---- server ------------------------------------------------------------- */

typedef struct {
  const char *username; /* borrowed */
  const char *password; /* borrowed */
} sl_fwd_auth_user_t;

/* All pointers borrowed; they must outlive every session using the config. */
typedef struct {
  const char *self_hostname; /* sent in PONG and hashed into its digest */
  const char *shared_key;
  const sl_fwd_auth_user_t *users;
  size_t n_users;
  bool user_auth; /* require username/password; implied when n_users > 0 */
  bool keepalive; /* advertised in HELO */
} sl_fwd_auth_config_t;

/* Per-connection secrets, generated when the connection is accepted. */
typedef struct {
  unsigned char nonce[SL_FWD_AUTH_NONCE_LEN];
  unsigned char auth_salt[SL_FWD_AUTH_NONCE_LEN];
} sl_fwd_auth_session_t;

/* Outcome of sl_fwd_auth_check_ping.  Pointers borrow from the PING object
 * and stay valid as long as its msgpack zone. */
typedef struct {
  bool authenticated;
  const char *reason;   /* static; "" when authenticated */
  const char *hostname; /* client hostname (for logs); NULL if malformed */
  size_t hostname_len;
  const char *username; /* NULL if malformed */
  size_t username_len;
  const char *salt; /* client's shared_key_salt, needed by the PONG */
  size_t salt_len;
} sl_fwd_auth_ping_t;

/* Whether PINGs must carry a valid username/password (user_auth set, or
 * any users configured). */
bool sl_fwd_auth_users_required(const sl_fwd_auth_config_t *cfg);

/* Fills the nonce and auth salt from the CSPRNG.  0 or -EIO. */
int sl_fwd_auth_session_init(sl_fwd_auth_session_t *s);

/* Appends the HELO message.  0 or SL_ENOMEM. */
int sl_fwd_auth_build_helo(sl_buf_t *out, const sl_fwd_auth_config_t *cfg,
                           const sl_fwd_auth_session_t *s);

/* Validates a PING (`ping` borrowed) and fills *res.  Returns 0 when
 * authenticated; SL_EBADPING for a malformed message (reason "invalid ping
 * message"); SL_EAUTH for a wrong shared key or user (reason as above);
 * SL_ENOMEM on libcrypto failure.  *res is filled in every case, so a PONG
 * can always be built from it. */
int sl_fwd_auth_check_ping(const sl_fwd_auth_config_t *cfg, const sl_fwd_auth_session_t *s,
                           const msgpack_object *ping, sl_fwd_auth_ping_t *res);

/* Appends the PONG answering `res`.  0 or SL_ENOMEM. */
int sl_fwd_auth_build_pong(sl_buf_t *out, const sl_fwd_auth_config_t *cfg,
                           const sl_fwd_auth_session_t *s, const sl_fwd_auth_ping_t *res);

/* ---- client ------------------------------------------------------------- */

/* All borrowed.  username/password may be NULL when the server does not
 * ask for them. */
typedef struct {
  const char *hostname;
  const char *shared_key;
  const char *username;
  const char *password;
} sl_fwd_auth_client_config_t;

/* Client handshake state; zero-initialise, release with
 * sl_fwd_auth_client_free. */
typedef struct {
  unsigned char *nonce; /* owned copy from HELO */
  size_t nonce_len;
  unsigned char *auth_salt; /* owned copy from HELO; empty: no user auth */
  size_t auth_salt_len;
  bool keepalive;
  char salt[33]; /* our shared_key_salt: 32 hex chars, as out_forward sends */
} sl_fwd_auth_client_t;

/* Reads a HELO (`helo` borrowed).  Like out_forward, a missing or nil
 * options map, nonce or auth counts as empty; keepalive defaults to true.
 * Returns 0, SL_ESYNTAX (not a HELO, or fields of the wrong type) or
 * SL_ENOMEM. */
int sl_fwd_auth_client_parse_helo(sl_fwd_auth_client_t *c, const msgpack_object *helo);

/* Picks a fresh salt and appends the PING.  Returns 0, SL_EAUTH when the
 * server asks for a user and cfg has none, -EIO (CSPRNG) or SL_ENOMEM. */
int sl_fwd_auth_client_build_ping(sl_buf_t *out, sl_fwd_auth_client_t *c,
                                  const sl_fwd_auth_client_config_t *cfg);

/* Checks a PONG (`pong` borrowed).  Returns 0 when the server accepted us
 * and proved it knows the shared key; SL_ESYNTAX for a malformed PONG;
 * SL_EAUTH when rejected, when the server hostname equals ours, or on a
 * digest mismatch; SL_ENOMEM.  On failure writes out_forward's message to
 * reason (may be NULL): "invalid format for PONG message",
 * "authentication failed: <server reason>", "same hostname between input
 * and output: invalid configuration", "shared key mismatch". */
int sl_fwd_auth_client_check_pong(const sl_fwd_auth_client_t *c,
                                  const sl_fwd_auth_client_config_t *cfg,
                                  const msgpack_object *pong, char *reason, size_t reasonlen);

void sl_fwd_auth_client_free(sl_fwd_auth_client_t *c); /* accepts NULL */

#endif
