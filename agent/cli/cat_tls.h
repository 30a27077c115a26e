/* `sluice cat --tls`: the client side of TLS on cat's blocking socket.
 * It verifies the server's certificate against --ca (else the system's
 * CAs) and the name or address cat connected to, and presents --cert and
 * --key when given.  Main thread of the command-line tool. */
#ifndef SL_CAT_TLS_H
#define SL_CAT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct sl_cat_tls sl_cat_tls_t;

typedef struct {
  const char *ca_file, *cert_file, *key_file; /* NULL: none */
  const char *host; /* the name or address checked against the certificate */
  bool verify;      /* false: any certificate (--no-verify) */
} sl_cat_tls_opts_t;

/* Runs the handshake on the connected socket fd (borrowed: closed by the
 * caller after sl_cat_tls_free).  0 and *out, or -1 with the reason in err
 * (OpenSSL's, and the verification result when that failed). */
int sl_cat_tls_connect(int fd, const sl_cat_tls_opts_t *o, sl_cat_tls_t **out, char *err, size_t errlen);
/* Writes all n bytes: 0, or -1 when the connection failed. */
int sl_cat_tls_write(sl_cat_tls_t *t, const char *p, size_t n);
/* Reads what arrived: > 0 bytes, 0 at the end of the stream or on error,
 * -1 when the records read held no data (a session ticket): poll again. */
ssize_t sl_cat_tls_read(sl_cat_tls_t *t, char *buf, size_t len);
/* Whether decrypted bytes wait inside OpenSSL (poll would not see them). */
bool sl_cat_tls_buffered(const sl_cat_tls_t *t);
/* OpenSSL's reason when a read ended the stream with an error (an alert
 * from the server), else NULL.  Accepts NULL. */
const char *sl_cat_tls_error(const sl_cat_tls_t *t);
/* Sends close_notify and frees; accepts NULL. */
void sl_cat_tls_free(sl_cat_tls_t *t);

#endif
