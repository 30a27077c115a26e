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

typedef struct {
  char *cert_file;
  char *key_file;
  char *key_passphrase;
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
