/* Unit tests for agent/forward/forward_tls.c: the server side of TLS over
 * memory BIOs, driven by an OpenSSL client that also talks through memory
 * BIOs, so that the test decides how the bytes are cut: one byte at a
 * time through the handshake, records split anywhere, plaintext read into
 * a buffer smaller than a record.  The certificates are made here (P-256,
 * self-signed) and written to a temporary folder. */
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "forward/forward_tls.h"
#include "tap.h"

static char dir[] = "/tmp/sluice-tls-unit-XXXXXX";
static char cert_path[64], key_path[64], renewed_path[64];

/* A self-signed certificate for localhost valid for `days`, and its key. */
static void make_cert(const char *cert_file, const char *key_file, long days) {
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), days);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), days * 86400);
  X509_set_pubkey(x, key);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, key, EVP_sha256());
  FILE *f = fopen(cert_file, "w");
  PEM_write_X509(f, x);
  fclose(f);
  f = fopen(key_file, "w");
  PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
  fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
}

typedef struct {
  SSL_CTX *ctx;
  SSL *ssl;
  BIO *in, *out; /* the client's: in = what the server sent */
} client_t;

static void client_init(client_t *c, int max_version) {
  c->ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_max_proto_version(c->ctx, max_version);
  c->ssl = SSL_new(c->ctx);
  c->in = BIO_new(BIO_s_mem());
  c->out = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(c->in, -1);
  BIO_set_mem_eof_return(c->out, -1);
  SSL_set_bio(c->ssl, c->in, c->out);
  SSL_set_connect_state(c->ssl);
}

static void client_free(client_t *c) {
  SSL_free(c->ssl);
  SSL_CTX_free(c->ctx);
}

/* Moves what the client wrote to the server in pieces of `piece` bytes,
 * reading the server's plaintext into `got` (cap `cap` per read), and
 * what the server answers back to the client.  Returns the last status. */
static sl_fwd_tls_status_t pump(client_t *c, sl_fwd_tls_t *s, size_t piece, size_t cap, char *got, size_t *got_len) {
  sl_fwd_tls_status_t st = SL_FWD_TLS_OK;
  char buf[65536], *rbuf = malloc(cap);
  for (int round = 0; round < 1000 && st == SL_FWD_TLS_OK; round++) {
    SSL_do_handshake(c->ssl); /* a no-op once done */
    int n = BIO_read(c->out, buf, sizeof buf);
    size_t back = sl_fwd_tls_pending(s);
    if (n <= 0 && !back) break;
    for (int at = 0; at < n && st == SL_FWD_TLS_OK; at += (int)piece) {
      size_t len = (size_t)n - (size_t)at < piece ? (size_t)n - (size_t)at : piece;
      st = sl_fwd_tls_feed(s, buf + at, len);
      for (size_t r = 1; st == SL_FWD_TLS_OK && r;) {
        st = sl_fwd_tls_read(s, rbuf, cap, &r);
        if (got && r) {
          memcpy(got + *got_len, rbuf, r);
          *got_len += r;
        }
      }
    }
    while ((back = sl_fwd_tls_pending(s))) {
      size_t m = sl_fwd_tls_take(s, buf, back < sizeof buf ? back : sizeof buf);
      BIO_write(c->in, buf, (int)m);
    }
  }
  free(rbuf);
  return st;
}

static size_t client_read_all(client_t *c, char *dst, size_t cap) {
  size_t n = 0, r = 0;
  while (n < cap && SSL_read_ex(c->ssl, dst + n, cap - n, &r) == 1) n += r;
  ERR_clear_error();
  return n;
}

static sl_fwd_tls_conf_t conf_for(const char *cert) {
  return (sl_fwd_tls_conf_t){.cert_file = (char *)cert, .key_file = key_path};
}

static void handshake_byte_by_byte(sl_fwd_tls_ctx_t *ctx, int version, const char *what) {
  client_t c;
  client_init(&c, version);
  sl_fwd_tls_t *s = sl_fwd_tls_new(ctx);
  /* Written before the handshake: held until it completes. */
  ok(sl_fwd_tls_write(s, "early", 5) == SL_FWD_TLS_OK && !sl_fwd_tls_handshake_done(s),
     "%s: a write before the handshake is held", what);
  sl_fwd_tls_status_t st = pump(&c, s, 1, 16384, NULL, NULL);
  ok(st == SL_FWD_TLS_OK && sl_fwd_tls_handshake_done(s) && SSL_is_init_finished(c.ssl),
     "%s: the handshake completes with every byte fed alone", what);
  char got[16] = "";
  size_t n = client_read_all(&c, got, sizeof got - 1);
  ok(n == 5 && memcmp(got, "early", 5) == 0, "%s: the held write reaches the client after it", what);
  char desc[256];
  sl_fwd_tls_describe(s, desc, sizeof desc);
  ok(strstr(desc, version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2") && strstr(desc, "client certificate -"),
     "%s: described as \"%s\"", what, desc);
  sl_fwd_tls_free(s);
  client_free(&c);
}

static void records_cut_anywhere(sl_fwd_tls_ctx_t *ctx) {
  client_t c;
  client_init(&c, TLS1_3_VERSION);
  sl_fwd_tls_t *s = sl_fwd_tls_new(ctx);
  pump(&c, s, 4096, 16384, NULL, NULL);
  /* 100 KB of plaintext (seven records), fed in 1000-byte pieces that cut
   * records anywhere, read back 777 bytes at a time. */
  size_t total = 100 * 1000;
  char *sent = malloc(total), *got = malloc(total + 1);
  for (size_t i = 0; i < total; i++) sent[i] = (char)(i * 7 + i / 251);
  size_t w = 0, got_len = 0;
  ok(SSL_write_ex(c.ssl, sent, total, &w) == 1 && w == total, "the client writes 100 KB");
  sl_fwd_tls_status_t st = pump(&c, s, 1000, 777, got, &got_len);
  ok(st == SL_FWD_TLS_OK && got_len == total && memcmp(sent, got, total) == 0,
     "100 KB cut into 1000-byte pieces arrive whole, read 777 bytes at a time");
  /* Fifty replies, each a record of its own. */
  for (int i = 0; i < 50; i++) sl_fwd_tls_write(s, "ack!", 4);
  pump(&c, s, 4096, 16384, NULL, NULL);
  size_t n = client_read_all(&c, got, total);
  ok(n == 200 && memcmp(got, "ack!ack!", 8) == 0, "fifty replies reach the client (%zu bytes)", n);
  /* The client's close_notify ends the session; ours answers it. */
  SSL_shutdown(c.ssl);
  st = pump(&c, s, 4096, 16384, NULL, NULL);
  ok(st == SL_FWD_TLS_CLOSED, "the client's close_notify is SL_FWD_TLS_CLOSED");
  sl_fwd_tls_shutdown(s);
  pump(&c, s, 4096, 16384, NULL, NULL);
  client_read_all(&c, got, total);
  ok(SSL_get_shutdown(c.ssl) & SSL_RECEIVED_SHUTDOWN, "the server's close_notify reaches the client");
  free(sent);
  free(got);
  sl_fwd_tls_free(s);
  client_free(&c);
}

static void failures(sl_fwd_tls_ctx_t *ctx) {
  char text[320];
  sl_fwd_tls_t *s = sl_fwd_tls_new(ctx);
  /* A forward Message in plain msgpack: [ "tag", 1, {} ]. */
  static const char plain[] = "\x93\xa3tag\x01\x80";
  size_t n;
  sl_fwd_tls_status_t st = sl_fwd_tls_feed(s, plain, sizeof plain - 1);
  if (st == SL_FWD_TLS_OK) st = sl_fwd_tls_read(s, text, sizeof text, &n);
  sl_fwd_tls_err_t why = sl_fwd_tls_failure(s, text, sizeof text);
  ok(st == SL_FWD_TLS_FAILED && why == SL_FWD_TLS_ERR_NOT_TLS, "plain msgpack fails as not_tls");
  ok(strstr(text, "not a TLS handshake") && strstr(text, "error:"), "with OpenSSL's reason: %s", text);
  is_str(sl_fwd_tls_err_label(why), "not_tls", "its label");
  ok(sl_fwd_tls_write(s, "x", 1) == SL_FWD_TLS_FAILED, "a failed session takes no more writes");
  sl_fwd_tls_free(s);

  /* A TLS 1.1 client against min_version 1.2. */
  client_t c;
  client_init(&c, TLS1_1_VERSION);
  SSL_set_security_level(c.ssl, 0);
  SSL_set_min_proto_version(c.ssl, TLS1_1_VERSION);
  SSL_set_cipher_list(c.ssl, "DEFAULT@SECLEVEL=0");
  s = sl_fwd_tls_new(ctx);
  st = pump(&c, s, 4096, 16384, NULL, NULL);
  why = sl_fwd_tls_failure(s, text, sizeof text);
  ok(st == SL_FWD_TLS_FAILED && why == SL_FWD_TLS_ERR_PROTOCOL_VERSION, "TLS 1.1 fails as protocol_version: %s",
     text);
  ERR_clear_error();
  SSL_do_handshake(c.ssl);
  ok(ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION,
     "the client is told why: a protocol_version alert");
  ERR_clear_error();
  sl_fwd_tls_free(s);
  client_free(&c);
}

static void contexts(sl_fwd_tls_ctx_t *ctx) {
  char err[512];
  sl_fwd_tls_ctx_t *bad = NULL;
  sl_fwd_tls_conf_t missing = conf_for("/nonexistent/server.crt");
  ok(sl_fwd_tls_ctx_new(&missing, &bad, err, sizeof err) < 0 && !bad, "a missing cert_file is an error");
  ok(strstr(err, "cert_file \"/nonexistent/server.crt\"") && strstr(err, "No such file"), "naming it: %s", err);
  sl_fwd_tls_conf_t mismatch = conf_for(renewed_path); /* the renewed cert has a key of its own */
  ok(sl_fwd_tls_ctx_new(&mismatch, &bad, err, sizeof err) < 0 && strstr(err, "is not the key of cert_file"),
     "a key that is not the certificate's: %s", err);
  sl_fwd_tls_conf_t nociphers = conf_for(cert_path);
  nociphers.ciphers = "NOSUCH";
  ok(sl_fwd_tls_ctx_new(&nociphers, &bad, err, sizeof err) < 0 && strstr(err, "ciphers \"NOSUCH\""),
     "ciphers that match nothing: %s", err);

  long long now = (long long)time(NULL), before = sl_fwd_tls_cert_expiry(ctx);
  ok(before > now + 86400 && before <= now + 2 * 86400 + 60, "the certificate's expiry: in 2 days");
  ok(sl_fwd_tls_reload(ctx, &mismatch, err, sizeof err) < 0 && sl_fwd_tls_cert_expiry(ctx) == before,
     "a reload that fails keeps the context in use");
}

int main(void) {
  if (!mkdtemp(dir)) return 1;
  snprintf(cert_path, sizeof cert_path, "%s/server.crt", dir);
  snprintf(key_path, sizeof key_path, "%s/server.key", dir);
  snprintf(renewed_path, sizeof renewed_path, "%s/renewed.crt", dir);
  make_cert(cert_path, key_path, 2);
  char renewed_key[64];
  snprintf(renewed_key, sizeof renewed_key, "%s/renewed.key", dir);
  make_cert(renewed_path, renewed_key, 9);

  sl_fwd_tls_conf_t conf = conf_for(cert_path);
  sl_fwd_tls_ctx_t *ctx = NULL;
  char err[512] = "";
  ok(sl_fwd_tls_ctx_new(&conf, &ctx, err, sizeof err) == 0 && ctx, "a context from a certificate and key %s", err);
  handshake_byte_by_byte(ctx, TLS1_3_VERSION, "TLS 1.3");
  handshake_byte_by_byte(ctx, TLS1_2_VERSION, "TLS 1.2");
  records_cut_anywhere(ctx);
  failures(ctx);
  contexts(ctx);

  /* A reload that works: the renewed certificate and its own key. */
  sl_fwd_tls_conf_t renewed = {.cert_file = renewed_path, .key_file = renewed_key};
  ok(sl_fwd_tls_reload(ctx, &renewed, err, sizeof err) == 0, "a reload with a renewed certificate %s", err);
  long long now = (long long)time(NULL);
  ok(sl_fwd_tls_cert_expiry(ctx) > now + 8 * 86400, "the expiry is the renewed certificate's (9 days)");
  handshake_byte_by_byte(ctx, TLS1_3_VERSION, "after the reload");
  sl_fwd_tls_ctx_free(ctx);

  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) return 1;
  return tap_done();
}
