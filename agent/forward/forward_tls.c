/* TLS for the forward input with OpenSSL: contexts built from the config
 * (and rebuilt on reload), and per-connection sessions whose SSL object
 * reads from and writes to memory BIOs, so that the connection code moves
 * the bytes on its own loop.  Why memory BIOs and not SSL_set_fd: libuv
 * owns the socket (its reads, its write queue, backpressure), and an SSL
 * object on the fd would read behind its back.  Contexts: any thread;
 * a session: its connection's loop thread. */
#include "forward/forward_tls.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509err.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/buf.h"
#include "core/error.h"

struct sl_fwd_tls_ctx {
  pthread_mutex_t lock; /* guards ssl_ctx and expiry */
  SSL_CTX *ssl_ctx;
  long long expiry;
};

struct sl_fwd_tls {
  SSL *ssl;
  BIO *in, *out; /* owned by ssl */
  sl_buf_t pending; /* plaintext SSL_write could not take yet */
  bool seen_input, looks_tls, failed;
  sl_fwd_tls_err_t reason;
  char reason_text[300];
};

const char *sl_fwd_tls_err_label(sl_fwd_tls_err_t reason) {
  static const char *const labels[] = {
#define SL_FWD_TLS_ERR_LABEL(name, label) [SL_FWD_TLS_ERR_##name] = label,
      SL_FWD_TLS_ERR_MAP(SL_FWD_TLS_ERR_LABEL)
#undef SL_FWD_TLS_ERR_LABEL
  };
  return reason < SL_FWD_TLS_ERR__COUNT ? labels[reason] : "protocol";
}

/* ---- contexts ------------------------------------------------------------ */

/* OpenSSL's text for the oldest error in this thread's queue (the cause;
 * later entries say where it surfaced), and an empty queue after. */
static void take_openssl_error(char *buf, size_t len) {
  unsigned long e = ERR_get_error();
  if (e)
    ERR_error_string_n(e, buf, len);
  else
    snprintf(buf, len, "no reason given by OpenSSL");
  ERR_clear_error();
}

typedef struct {
  const char *pass; /* key_passphrase, or NULL */
  bool asked;       /* OpenSSL asked for it: the key is encrypted */
} passphrase_t;

/* Reads the key's passphrase from the config and never prompts on a
 * terminal, as OpenSSL's default callback would for an encrypted key. */
static int passphrase_cb(char *buf, int size, int rwflag, void *arg) {
  (void)rwflag;
  passphrase_t *p = arg;
  p->asked = true;
  if (!p->pass) return 0;
  size_t n = strlen(p->pass);
  if (n >= (size_t)size) return 0;
  memcpy(buf, p->pass, n);
  return (int)n;
}

static long long cert_expiry(SSL_CTX *ctx) {
  X509 *cert = SSL_CTX_get0_certificate(ctx);
  struct tm tm;
  if (!cert || ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return 0;
  return (long long)timegm(&tm);
}

static int load_failed(SSL_CTX *ctx, char *err, size_t errlen, const char *fmt, const char *a, const char *b) {
  char why[256], what[512];
  take_openssl_error(why, sizeof why);
  snprintf(what, sizeof what, fmt, a, b);
  SSL_CTX_free(ctx);
  return sl_err_printf(err, errlen, SL_ECONFIG, "%s: %s", what, why);
}

/* Loading the key also checks it against the certificate. */
static int key_failed(SSL_CTX *ctx, const sl_fwd_tls_conf_t *c, const passphrase_t *pw, char *err, size_t errlen) {
  unsigned long e = ERR_peek_error();
  if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
    return load_failed(ctx, err, errlen, "key_file \"%s\" is not the key of cert_file \"%s\"", c->key_file,
                       c->cert_file);
  const char *hint = !pw->asked ? ""
                     : pw->pass  ? " (is key_passphrase right?)"
                                 : " (it is encrypted: set key_passphrase)";
  return load_failed(ctx, err, errlen, "key_file \"%s\": cannot load the private key%s", c->key_file, hint);
}

/* OpenSSL reads a PEM file to its end: a device or a FIFO named by
 * mistake (/dev/zero, /dev/stdin) would hang the start. */
#define PEM_FILE_MAX (8 * 1024 * 1024)

static int check_file(const char *option, const char *path, char *err, size_t errlen) {
  struct stat st;
  if (stat(path, &st)) return 0; /* OpenSSL says why, with the file's name */
  if (!S_ISREG(st.st_mode))
    return sl_err_printf(err, errlen, SL_ECONFIG, "%s \"%s\": not a regular file", option, path);
  if (st.st_size > PEM_FILE_MAX)
    return sl_err_printf(err, errlen, SL_ECONFIG, "%s \"%s\": %lld bytes, larger than a PEM file of certificates "
                         "or a key can be (8 MiB)", option, path, (long long)st.st_size);
  return 0;
}

static int verify_mode(int client_auth) {
  switch (client_auth) {
  case SL_FWD_CLIENT_AUTH_OPTIONAL: return SSL_VERIFY_PEER;
  case SL_FWD_CLIENT_AUTH_REQUIRED: return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  default: return SSL_VERIFY_NONE;
  }
}

static int build(const sl_fwd_tls_conf_t *c, SSL_CTX **out, char *err, size_t errlen) {
  int r;
  if ((r = check_file("cert_file", c->cert_file, err, errlen)) ||
      (r = check_file("key_file", c->key_file, err, errlen)) ||
      (c->ca_file && (r = check_file("ca_file", c->ca_file, err, errlen))))
    return r;
  ERR_clear_error();
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return load_failed(NULL, err, errlen, "cannot create a TLS context%s%s", "", "");
  SSL_CTX_set_min_proto_version(ctx, c->min_version == SL_FWD_TLS_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
  /* Client-initiated renegotiation costs the server a handshake for each
   * request: refused (the connection goes on). */
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  /* Idle connections give their record buffers back; a write left pending
   * is retried from sl_buf_t storage that may move. */
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  passphrase_t pw = {.pass = c->key_passphrase};
  SSL_CTX_set_default_passwd_cb(ctx, passphrase_cb);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, &pw);
  if (SSL_CTX_use_certificate_chain_file(ctx, c->cert_file) != 1)
    return load_failed(ctx, err, errlen, "cert_file \"%s\": cannot load the certificate chain%s", c->cert_file,
                       "");
  if (SSL_CTX_use_PrivateKey_file(ctx, c->key_file, SSL_FILETYPE_PEM) != 1)
    return key_failed(ctx, c, &pw, err, errlen);
  if (SSL_CTX_check_private_key(ctx) != 1)
    return load_failed(ctx, err, errlen, "key_file \"%s\" is not the key of cert_file \"%s\"", c->key_file,
                       c->cert_file);
  if (c->ca_file) {
    if (SSL_CTX_load_verify_locations(ctx, c->ca_file, NULL) != 1)
      return load_failed(ctx, err, errlen, "ca_file \"%s\": cannot load the CA certificates%s", c->ca_file, "");
    /* The CAs the server names in its CertificateRequest, so that a client
     * holding several certificates picks one these accept. */
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(c->ca_file);
    if (names) SSL_CTX_set_client_CA_list(ctx, names);
  }
  SSL_CTX_set_verify(ctx, verify_mode(c->client_auth), NULL);
  if (c->ciphers && SSL_CTX_set_cipher_list(ctx, c->ciphers) != 1)
    return load_failed(ctx, err, errlen, "ciphers \"%s\": no usable cipher%s", c->ciphers, "");
  if (c->ciphersuites && SSL_CTX_set_ciphersuites(ctx, c->ciphersuites) != 1)
    return load_failed(ctx, err, errlen, "ciphersuites \"%s\": not a list of TLS 1.3 cipher suites%s",
                       c->ciphersuites, "");
  /* Resumed sessions are only accepted by the context that issued them
   * (OpenSSL refuses resumption with client verification without one). */
  static const unsigned char sid_ctx[] = "sluice-forward";
  SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
  /* The passphrase holder lives on this stack: the context must not keep it. */
  SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
  ERR_clear_error();
  *out = ctx;
  return 0;
}

int sl_fwd_tls_ctx_new(const sl_fwd_tls_conf_t *conf, sl_fwd_tls_ctx_t **out, char *err, size_t errlen) {
  *out = NULL;
  sl_fwd_tls_ctx_t *t = calloc(1, sizeof *t);
  if (!t) return sl_err_printf(err, errlen, SL_ENOMEM, "out of memory");
  int r = build(conf, &t->ssl_ctx, err, errlen);
  if (r) {
    free(t);
    return r;
  }
  pthread_mutex_init(&t->lock, NULL);
  t->expiry = cert_expiry(t->ssl_ctx);
  *out = t;
  return 0;
}

int sl_fwd_tls_reload(sl_fwd_tls_ctx_t *t, const sl_fwd_tls_conf_t *conf, char *err, size_t errlen) {
  SSL_CTX *fresh;
  int r = build(conf, &fresh, err, errlen);
  if (r) return r;
  long long expiry = cert_expiry(fresh);
  pthread_mutex_lock(&t->lock);
  SSL_CTX *old = t->ssl_ctx;
  t->ssl_ctx = fresh;
  t->expiry = expiry;
  pthread_mutex_unlock(&t->lock);
  SSL_CTX_free(old); /* sessions opened on it hold references of their own */
  return 0;
}

long long sl_fwd_tls_cert_expiry(sl_fwd_tls_ctx_t *t) {
  pthread_mutex_lock(&t->lock);
  long long e = t->expiry;
  pthread_mutex_unlock(&t->lock);
  return e;
}

void sl_fwd_tls_ctx_free(sl_fwd_tls_ctx_t *t) {
  if (!t) return;
  SSL_CTX_free(t->ssl_ctx);
  pthread_mutex_destroy(&t->lock);
  free(t);
}

/* ---- sessions ------------------------------------------------------------ */

sl_fwd_tls_t *sl_fwd_tls_new(sl_fwd_tls_ctx_t *ctx) {
  sl_fwd_tls_t *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  pthread_mutex_lock(&ctx->lock);
  t->ssl = SSL_new(ctx->ssl_ctx);
  pthread_mutex_unlock(&ctx->lock);
  t->in = BIO_new(BIO_s_mem());
  t->out = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->in || !t->out) {
    BIO_free(t->in);
    BIO_free(t->out);
    SSL_free(t->ssl);
    free(t);
    ERR_clear_error();
    return NULL;
  }
  /* An empty BIO means "more later", not end of stream. */
  BIO_set_mem_eof_return(t->in, -1);
  BIO_set_mem_eof_return(t->out, -1);
  SSL_set_bio(t->ssl, t->in, t->out);
  SSL_set_accept_state(t->ssl);
  return t;
}

void sl_fwd_tls_free(sl_fwd_tls_t *t) {
  if (!t) return;
  SSL_free(t->ssl);
  sl_buf_free(&t->pending);
  free(t);
}

static sl_fwd_tls_err_t classify(const sl_fwd_tls_t *t, unsigned long e) {
  /* Every TLS connection opens with a handshake record (content type 22);
   * a client speaking plain forward sends a msgpack array first. */
  if (!t->looks_tls) return SL_FWD_TLS_ERR_NOT_TLS;
  if (ERR_GET_LIB(e) != ERR_LIB_SSL) return SL_FWD_TLS_ERR_PROTOCOL;
  int reason = ERR_GET_REASON(e);
  switch (reason) {
  case SSL_R_UNSUPPORTED_PROTOCOL:
  case SSL_R_VERSION_TOO_LOW:
  case SSL_R_WRONG_VERSION_NUMBER: return SL_FWD_TLS_ERR_PROTOCOL_VERSION;
  case SSL_R_NO_SHARED_CIPHER: return SL_FWD_TLS_ERR_NO_SHARED_CIPHER;
  case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE: return SL_FWD_TLS_ERR_NO_CLIENT_CERT;
  case SSL_R_CERTIFICATE_VERIFY_FAILED:
    return SSL_get_verify_result(t->ssl) == X509_V_ERR_CERT_HAS_EXPIRED ? SL_FWD_TLS_ERR_CLIENT_CERT_EXPIRED
                                                                         : SL_FWD_TLS_ERR_CLIENT_CERT_REJECTED;
  default:
    /* Alerts received from the peer are reasons SSL_AD_REASON_OFFSET + the
     * alert's code. */
    if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) return SL_FWD_TLS_ERR_PEER_ALERT;
    return SL_FWD_TLS_ERR_PROTOCOL;
  }
}

/* Records why the session failed, from this thread's error queue (which it
 * leaves empty). */
static sl_fwd_tls_status_t fail(sl_fwd_tls_t *t) {
  unsigned long e = ERR_peek_error(), ssl_e = 0;
  for (int i = 0; (ssl_e = ERR_peek_error()) && ERR_GET_LIB(ssl_e) != ERR_LIB_SSL && i < 16; i++) ERR_get_error();
  if (ssl_e) e = ssl_e;
  t->failed = true;
  t->reason = classify(t, e);
  char why[256] = "the peer closed the connection during the handshake";
  if (e) ERR_error_string_n(e, why, sizeof why);
  long verify = SSL_get_verify_result(t->ssl);
  if (t->reason == SL_FWD_TLS_ERR_CLIENT_CERT_EXPIRED || t->reason == SL_FWD_TLS_ERR_CLIENT_CERT_REJECTED)
    snprintf(t->reason_text, sizeof t->reason_text, "%s (%s)", why, X509_verify_cert_error_string(verify));
  else if (t->reason == SL_FWD_TLS_ERR_NOT_TLS)
    snprintf(t->reason_text, sizeof t->reason_text, "not a TLS handshake (plain forward protocol?): %s", why);
  else
    snprintf(t->reason_text, sizeof t->reason_text, "%s", why);
  ERR_clear_error();
  return SL_FWD_TLS_FAILED;
}

static sl_fwd_tls_status_t flush_pending(sl_fwd_tls_t *t) {
  while (t->pending.len && SSL_is_init_finished(t->ssl)) {
    ERR_clear_error();
    int r = SSL_write(t->ssl, t->pending.data, t->pending.len > INT_MAX ? INT_MAX : (int)t->pending.len);
    if (r > 0) {
      memmove(t->pending.data, t->pending.data + r, t->pending.len - (size_t)r);
      t->pending.len -= (size_t)r;
      continue;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return SL_FWD_TLS_OK;
    return fail(t);
  }
  return SL_FWD_TLS_OK;
}

sl_fwd_tls_status_t sl_fwd_tls_feed(sl_fwd_tls_t *t, const char *data, size_t len) {
  if (!len) return SL_FWD_TLS_OK;
  if (!t->seen_input) {
    t->seen_input = true;
    t->looks_tls = (unsigned char)data[0] == 22;
  }
  while (len) {
    int chunk = len > INT_MAX ? INT_MAX : (int)len;
    int w = BIO_write(t->in, data, chunk);
    if (w <= 0) {
      ERR_clear_error();
      return SL_FWD_TLS_NOMEM;
    }
    data += w;
    len -= (size_t)w;
  }
  return SL_FWD_TLS_OK;
}

sl_fwd_tls_status_t sl_fwd_tls_read(sl_fwd_tls_t *t, char *buf, size_t cap, size_t *n) {
  *n = 0;
  if (t->failed) return SL_FWD_TLS_FAILED;
  ERR_clear_error();
  int r = SSL_read(t->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
  if (r > 0) {
    *n = (size_t)r;
    return flush_pending(t);
  }
  switch (SSL_get_error(t->ssl, r)) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE: return flush_pending(t);
  case SSL_ERROR_ZERO_RETURN: return SL_FWD_TLS_CLOSED;
  default: return fail(t);
  }
}

sl_fwd_tls_status_t sl_fwd_tls_write(sl_fwd_tls_t *t, const char *data, size_t len) {
  if (t->failed) return SL_FWD_TLS_FAILED;
  if (!t->pending.len && SSL_is_init_finished(t->ssl) && len <= INT_MAX) {
    ERR_clear_error();
    int r = SSL_write(t->ssl, data, (int)len);
    if (r > 0) return SL_FWD_TLS_OK; /* no partial writes: all of it */
    int e = SSL_get_error(t->ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return fail(t);
  }
  if (sl_buf_append(&t->pending, data, len)) return SL_FWD_TLS_NOMEM;
  return flush_pending(t);
}

void sl_fwd_tls_shutdown(sl_fwd_tls_t *t) {
  if (t->failed || !SSL_is_init_finished(t->ssl)) return;
  ERR_clear_error();
  SSL_shutdown(t->ssl);
  ERR_clear_error();
}

size_t sl_fwd_tls_pending(const sl_fwd_tls_t *t) { return BIO_ctrl_pending(t->out); }

size_t sl_fwd_tls_take(sl_fwd_tls_t *t, char *buf, size_t len) {
  int r = BIO_read(t->out, buf, len > INT_MAX ? INT_MAX : (int)len);
  return r > 0 ? (size_t)r : 0;
}

bool sl_fwd_tls_handshake_done(const sl_fwd_tls_t *t) { return !t->failed && SSL_is_init_finished(t->ssl); }

sl_fwd_tls_err_t sl_fwd_tls_failure(const sl_fwd_tls_t *t, char *text, size_t len) {
  snprintf(text, len, "%s", t->reason_text);
  return t->reason;
}

void sl_fwd_tls_describe(const sl_fwd_tls_t *t, char *buf, size_t len) {
  char subject[256] = "-";
  X509 *peer = SSL_get1_peer_certificate(t->ssl);
  if (peer) {
    X509_NAME_oneline(X509_get_subject_name(peer), subject, sizeof subject);
    X509_free(peer);
  }
  snprintf(buf, len, "%s %s, client certificate %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl),
           subject);
}
