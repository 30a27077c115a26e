/* The typed configuration the stages read: built from a TOML document that
 * passed the schema (so every option has its value or default).  Semantic
 * checks that need more than one option (tag patterns, topic templates, TLS
 * not yet available) are made here and reported with file:line:col. */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_schema.h"
#include "log.h"
#include "route.h"
#include "units.h"

typedef struct {
  char *username; /* owned */
  char *password; /* owned, secret */
} sl_user_t;

typedef struct {
  bool enabled;
  sl_addr_t *listen; /* owned array */
  size_t n_listen;
  uint64_t chunk_size_limit;
  uint64_t chunk_size_warn_limit;
  uint64_t decompression_size_limit;
  int max_depth;
  int max_connections;
  int64_t idle_timeout_ns;
  bool skip_invalid_event;
  char *tag_prefix; /* owned or NULL */
  char *source_address_key;
  char *source_hostname_key;
  bool deny_keepalive;
  /* [input.forward.security] */
  char *shared_key; /* NULL: no handshake */
  char *self_hostname;
  bool user_auth;
  sl_user_t *users;
  size_t n_users;
} sl_forward_config_t;

typedef struct {
  char *key; /* owned */
  char *value;
} sl_kv_t;

typedef struct {
  bool enabled; /* the [kafka] section is present */
  bool embedded;
  char *brokers; /* comma-separated, owned */
  char *client_id;
  char *default_topic;
  int embedded_partitions;
  double resume_below;
  sl_kv_t *properties; /* owned, verbatim for librdkafka */
  size_t n_properties;
  int *property_lines; /* line of each property in the file, for errors */
} sl_kafka_config_t;

typedef struct {
  char *file; /* owned: the config file's path */
  sl_log_level_t log_level;
  bool log_json;
  bool http_enabled;
  sl_addr_t http_listen;
  sl_forward_config_t forward;
  sl_kafka_config_t kafka;
  sl_route_t *routes; /* owned array */
  size_t n_routes;
  sl_toml_value_t *doc; /* the validated document, defaults filled in */
} sl_config_t;

/* Reads, validates and builds the config.  Returns 0 and *out (free with
 * sl_config_free), or a negative error with every problem in `d`. */
int sl_config_load(const char *path, sl_config_t **out, sl_diag_t *d);
void sl_config_free(sl_config_t *c); /* accepts NULL */

#endif
