/* TLS for `sluice cat` with OpenSSL straight on the blocking socket: a
 * command-line client has no loop to bridge to, so SSL_set_fd is enough.
 * Main thread. */
#include "cli/cat_tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sl_cat_tls {
  SSL_CTX *ctx;
  SSL *ssl;
  char error[256]; /* why the stream ended, when TLS said */
};

static int failed(sl_cat_tls_t *t, char *err, size_t errlen, const char *what, const char *file) {
  char why[256] = "no reason given by OpenSSL";
  unsigned long e = ERR_get_error();
  if (e) ERR_error_string_n(e, why, sizeof why);
  long verify = t->ssl ? SSL_get_verify_result(t->ssl) : X509_V_OK;
  if (verify != X509_V_OK)
    snprintf(err, errlen, "%s%s: %s (%s)", what, file, why, X509_verify_cert_error_string(verify));
  else
    snprintf(err, errlen, "%s%s: %s", what, file, why);
  ERR_clear_error();
  sl_cat_tls_free(t);
  return -1;
}

static bool is_ip(const char *host) {
  unsigned char a[16];
  return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

int sl_cat_tls_connect(int fd, const sl_cat_tls_opts_t *o, sl_cat_tls_t **out, char *err, size_t errlen) {
  sl_cat_tls_t *t = calloc(1, sizeof *t);
  if (!t || !(t->ctx = SSL_CTX_new(TLS_client_method()))) return failed(t, err, errlen, "cannot start TLS", "");
  SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
  /* SSL_read returns after a record without data (TLS 1.3 session
   * tickets) instead of blocking for the next ack. */
  SSL_CTX_clear_mode(t->ctx, SSL_MODE_AUTO_RETRY);
  if (o->ca_file ? SSL_CTX_load_verify_locations(t->ctx, o->ca_file, NULL) != 1
                 : SSL_CTX_set_default_verify_paths(t->ctx) != 1)
    return failed(t, err, errlen, "cannot load the CA certificates ", o->ca_file ? o->ca_file : "");
  if (o->cert_file && SSL_CTX_use_certificate_chain_file(t->ctx, o->cert_file) != 1)
    return failed(t, err, errlen, "cannot load the certificate ", o->cert_file);
  if (o->key_file && SSL_CTX_use_PrivateKey_file(t->ctx, o->key_file, SSL_FILETYPE_PEM) != 1)
    return failed(t, err, errlen, "cannot load the key ", o->key_file);
  SSL_CTX_set_verify(t->ctx, o->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
  if (!(t->ssl = SSL_new(t->ctx)) || SSL_set_fd(t->ssl, fd) != 1)
    return failed(t, err, errlen, "cannot start TLS", "");
  X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);
  if (is_ip(o->host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, o->host);
  } else {
    SSL_set_tlsext_host_name(t->ssl, o->host);
    X509_VERIFY_PARAM_set1_host(param, o->host, 0);
  }
  if (SSL_connect(t->ssl) != 1) return failed(t, err, errlen, "TLS handshake failed", "");
  *out = t;
  return 0;
}

int sl_cat_tls_write(sl_cat_tls_t *t, const char *p, size_t n) {
  while (n) {
    size_t w = 0;
    if (SSL_write_ex(t->ssl, p, n, &w) != 1) return -1;
    p += w;
    n -= w;
  }
  return 0;
}

ssize_t sl_cat_tls_read(sl_cat_tls_t *t, char *buf, size_t len) {
  size_t n = 0;
  if (SSL_read_ex(t->ssl, buf, len, &n) == 1) return (ssize_t)n;
  int e = SSL_get_error(t->ssl, 0);
  unsigned long why = ERR_get_error();
  if (why) ERR_error_string_n(why, t->error, sizeof t->error);
  ERR_clear_error();
  return e == SSL_ERROR_WANT_READ ? -1 : 0;
}

bool sl_cat_tls_buffered(const sl_cat_tls_t *t) { return SSL_pending(t->ssl) > 0; }

const char *sl_cat_tls_error(const sl_cat_tls_t *t) { return t && t->error[0] ? t->error : NULL; }

void sl_cat_tls_free(sl_cat_tls_t *t) {
  if (!t) return;
  if (t->ssl && SSL_is_init_finished(t->ssl)) SSL_shutdown(t->ssl);
  SSL_free(t->ssl);
  SSL_CTX_free(t->ctx);
  free(t);
}
