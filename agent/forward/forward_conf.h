/* The [input.forward] section: its option table and the struct it fills.
 * Pure: data and the checks that involve several options. */
#ifndef SL_FORWARD_CONF_H
#define SL_FORWARD_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config_schema.h"

typedef struct {
  char *username; /* owned */
  char *password; /* owned, secret */
} sl_fwd_user_conf_t;

typedef struct {
  char *shared_key;    /* owned; NULL: no handshake */
  char *self_hostname; /* owned; the machine's host name when unset */
  bool user_auth;
  bool allow_anonymous_source;
  sl_conf_array_t users; /* of sl_fwd_user_conf_t */
} sl_fwd_security_conf_t;

typedef enum { SL_FWD_CLIENT_AUTH_NONE, SL_FWD_CLIENT_AUTH_OPTIONAL, SL_FWD_CLIENT_AUTH_REQUIRED } sl_fwd_client_auth_t;
typedef enum { SL_FWD_TLS_1_2, SL_FWD_TLS_1_3 } sl_fwd_tls_version_t;

struct sl_fwd_tls_ctx;

typedef struct {
  char *cert_file;      /* owned, as are the strings below; NULL when unset */
  char *key_file;
  char *key_passphrase; /* secret */
  char *ca_file;
  int client_auth;      /* sl_fwd_client_auth_t */
  int min_version;      /* sl_fwd_tls_version_t */
  char *ciphers;
  char *ciphersuites;
  int64_t handshake_timeout_ns;
  /* Built by the section's finish (the files are read then, so that
   * `sluice check` reports a bad one); owned.  NULL: no TLS. */
  struct sl_fwd_tls_ctx *ctx;
} sl_fwd_tls_conf_t;

typedef struct {
  bool enabled;
  sl_addr_list_t listen;
  uint64_t chunk_size_limit;
  uint64_t chunk_size_warn_limit;
  uint64_t decompression_size_limit;
  int64_t max_depth;
  int64_t decoded_values_limit;
  uint64_t tag_size_limit;
  int64_t max_connections;
  int64_t workers;
  int64_t idle_timeout_ns;
  bool skip_invalid_event;
  char *tag_prefix; /* owned or NULL, as are the two below */
  char *source_address_key;
  char *source_hostname_key;
  bool deny_keepalive;
  sl_fwd_security_conf_t security;
  sl_fwd_tls_conf_t tls;
} sl_forward_conf_t;

/* [input.forward], placed in the [input] section by the config root. */
extern const sl_section_t sl_forward_section;

#endif
