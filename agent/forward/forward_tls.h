/* TLS beneath a forward connection.  A context is the SSL_CTX built from
 * [input.forward.tls] (certificate chain, key, client verification,
 * versions, ciphers); a session is one connection's SSL object between two
 * memory BIOs: the connection hands it the bytes it read and writes out the
 * bytes it produces.  Nothing here touches a socket or the loop, so a
 * handshake never blocks and needs no thread of its own.
 *
 * A context may be used from any thread: the ingest workers share one, and
 * a reload swaps its SSL_CTX under a lock (sessions already open keep the
 * one they started with: OpenSSL counts its references).  A session
 * belongs to its connection's loop thread. */
#ifndef SL_FORWARD_TLS_H
#define SL_FORWARD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "forward/forward_conf.h"

typedef struct sl_fwd_tls_ctx sl_fwd_tls_ctx_t;
typedef struct sl_fwd_tls sl_fwd_tls_t;

/* Reasons of sluice_forward_tls_errors_total, one child each. */
#define SL_FWD_TLS_ERR_MAP(X)                                                      \
  X(NOT_TLS, "not_tls")                           /* plain text to a TLS port */ \
  X(PROTOCOL_VERSION, "protocol_version")         /* below min_version */        \
  X(NO_SHARED_CIPHER, "no_shared_cipher")                                        \
  X(NO_CLIENT_CERT, "no_client_cert")             /* client_auth = "required" */ \
  X(CLIENT_CERT_EXPIRED, "client_cert_expired")                                  \
  X(CLIENT_CERT_REJECTED, "client_cert_rejected") /* unknown CA, bad chain... */ \
  X(PEER_ALERT, "peer_alert")                     /* e.g. it distrusts ours */   \
  X(HANDSHAKE_TIMEOUT, "handshake_timeout")                                      \
  X(PROTOCOL, "protocol")                         /* anything else */

typedef enum {
#define SL_FWD_TLS_ERR_ENUM(name, label) SL_FWD_TLS_ERR_##name,
  SL_FWD_TLS_ERR_MAP(SL_FWD_TLS_ERR_ENUM)
#undef SL_FWD_TLS_ERR_ENUM
  SL_FWD_TLS_ERR__COUNT
} sl_fwd_tls_err_t;

/* The reason's label on /metrics ("not_tls"). */
const char *sl_fwd_tls_err_label(sl_fwd_tls_err_t reason);

/* ---- contexts ------------------------------------------------------------ */

/* Builds a context from `conf` (read during the call only).  Returns 0, or
 * SL_ECONFIG with a message in err naming the option, the file and
 * OpenSSL's reason. */
int sl_fwd_tls_ctx_new(const sl_fwd_tls_conf_t *conf, sl_fwd_tls_ctx_t **out, char *err, size_t errlen);
/* Builds a new SSL_CTX from `conf` (a reloaded config's section, or the
 * same one: the certificate, key and CA files are read again) that new
 * connections use from then on.  On failure (SL_ECONFIG, message in err as
 * above) the context in force stays.  Any thread. */
int sl_fwd_tls_reload(sl_fwd_tls_ctx_t *ctx, const sl_fwd_tls_conf_t *conf, char *err, size_t errlen);
/* The certificate's notAfter, in seconds since the epoch (0 when unknown). */
long long sl_fwd_tls_cert_expiry(sl_fwd_tls_ctx_t *ctx);
void sl_fwd_tls_ctx_free(sl_fwd_tls_ctx_t *ctx); /* accepts NULL */

/* ---- sessions ------------------------------------------------------------ */

typedef enum {
  SL_FWD_TLS_OK,     /* go on (read: plaintext returned, or none until more input) */
  SL_FWD_TLS_CLOSED, /* the peer sent close_notify */
  SL_FWD_TLS_FAILED, /* handshake or record error: see sl_fwd_tls_failure */
  SL_FWD_TLS_NOMEM,
} sl_fwd_tls_status_t;

/* A server-side session on ctx's current SSL_CTX; NULL when out of memory. */
sl_fwd_tls_t *sl_fwd_tls_new(sl_fwd_tls_ctx_t *ctx);
void sl_fwd_tls_free(sl_fwd_tls_t *t); /* accepts NULL */

/* Takes bytes read from the peer (copied). */
sl_fwd_tls_status_t sl_fwd_tls_feed(sl_fwd_tls_t *t, const char *data, size_t len);
/* Advances the handshake and decrypts what was fed: up to cap bytes of
 * plaintext in buf, their count in *n (0: nothing until more is fed).
 * Call until *n is 0, then send what sl_fwd_tls_take produces: handshake
 * messages and alerts come out of here too. */
sl_fwd_tls_status_t sl_fwd_tls_read(sl_fwd_tls_t *t, char *buf, size_t cap, size_t *n);
/* Encrypts plaintext (copied).  Before the handshake completes (or while
 * OpenSSL wants to read first) it waits here and goes out once it can. */
sl_fwd_tls_status_t sl_fwd_tls_write(sl_fwd_tls_t *t, const char *data, size_t len);
/* Queues close_notify (after a completed handshake only). */
void sl_fwd_tls_shutdown(sl_fwd_tls_t *t);
/* Bytes waiting to be sent to the peer, and taking them (up to len;
 * returns how many were copied). */
size_t sl_fwd_tls_pending(const sl_fwd_tls_t *t);
size_t sl_fwd_tls_take(sl_fwd_tls_t *t, char *buf, size_t len);

bool sl_fwd_tls_handshake_done(const sl_fwd_tls_t *t);
/* After SL_FWD_TLS_FAILED: the reason, and OpenSSL's text for the log
 * (with the certificate verification result when that failed). */
sl_fwd_tls_err_t sl_fwd_tls_failure(const sl_fwd_tls_t *t, char *text, size_t len);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", and the client certificate's subject
 * ("-" without one), for the debug line of a completed handshake. */
void sl_fwd_tls_describe(const sl_fwd_tls_t *t, char *buf, size_t len);

#endif
