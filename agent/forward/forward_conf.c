/* The [input.forward] option table, bound to sl_forward_conf_t, and its
 * cross-option checks.  Pure, but for the TLS files that OpenSSL reads when
 * the [input.forward.tls] section is bound. */
#include "forward/forward_conf.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forward/forward_tls.h"

#define KiB 1024LL
#define GiB (1024LL * 1024 * 1024)
#define SEC 1000000000LL

static const sl_opt_t user_opts[] = {
    {.name = "username", .type = SL_OPT_STRING, .flags = SL_OPT_REQUIRED,
     .offset = offsetof(sl_fwd_user_conf_t, username), .help = "User name sent in PING."},
    {.name = "password", .type = SL_OPT_STRING, .flags = SL_OPT_REQUIRED | SL_OPT_SECRET,
     .offset = offsetof(sl_fwd_user_conf_t, password), .help = "The user's password."},
    {0},
};
static const sl_section_t users_section = {
    .name = "users",
    .flags = SL_SECTION_ARRAY,
    .opts = user_opts,
    .help = "Users for user authentication (`[[input.forward.security.users]]`).",
    .size = sizeof(sl_fwd_user_conf_t),
};

static const sl_opt_t security_opts[] = {
    {.name = "shared_key", .type = SL_OPT_STRING, .flags = SL_OPT_SECRET,
     .offset = offsetof(sl_fwd_security_conf_t, shared_key),
     .help = "Shared key of the HELO/PING/PONG handshake. When set, every connection must authenticate."},
    {.name = "self_hostname", .type = SL_OPT_STRING, .offset = offsetof(sl_fwd_security_conf_t, self_hostname),
     .help = "Host name sent in PONG; defaults to the machine's host name."},
    {.name = "user_auth", .type = SL_OPT_BOOL, .def = "false", .offset = offsetof(sl_fwd_security_conf_t, user_auth),
     .help = "Also require a username and password from `users`."},
    {.name = "allow_anonymous_source", .type = SL_OPT_BOOL, .def = "true",
     .offset = offsetof(sl_fwd_security_conf_t, allow_anonymous_source),
     .help = "Accept clients from any address (client allow-lists are not implemented)."},
    {0},
};

static void security_finish(void *conf, sl_bind_ctx_t *ctx) {
  sl_fwd_security_conf_t *s = conf;
  if (!s->self_hostname) {
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    s->self_hostname = strdup(host);
  }
  if (s->user_auth && !s->users.n)
    sl_bind_error(ctx, NULL, "user_auth = true needs at least one [[input.forward.security.users]]");
  if ((s->user_auth || s->users.n) && !s->shared_key)
    sl_bind_error(ctx, NULL, "user authentication needs shared_key (the handshake carries it)");
}

static const sl_child_t security_children[] = {{&users_section, offsetof(sl_fwd_security_conf_t, users)}, {0}};
static const sl_section_t security_section = {
    .name = "security",
    .opts = security_opts,
    .children = security_children,
    .help = "Forward protocol authentication.",
    .size = sizeof(sl_fwd_security_conf_t),
    .finish = security_finish,
};

static const sl_opt_t tls_opts[] = {
    {.name = "cert_file", .type = SL_OPT_STRING, .unit = "path", .offset = offsetof(sl_fwd_tls_conf_t, cert_file),
     .help = "PEM certificate chain the server presents: its certificate first, then any intermediates."},
    {.name = "key_file", .type = SL_OPT_STRING, .unit = "path", .offset = offsetof(sl_fwd_tls_conf_t, key_file),
     .help = "PEM private key of cert_file."},
    {.name = "key_passphrase", .type = SL_OPT_STRING, .flags = SL_OPT_SECRET,
     .offset = offsetof(sl_fwd_tls_conf_t, key_passphrase), .help = "Passphrase of an encrypted key_file."},
    {.name = "ca_file", .type = SL_OPT_STRING, .unit = "path", .offset = offsetof(sl_fwd_tls_conf_t, ca_file),
     .help = "PEM certificates of the CAs whose client certificates are accepted (client_auth)."},
    {.name = "client_auth", .type = SL_OPT_ENUM, .def = "\"none\"", .choices = "none|optional|required",
     .offset = offsetof(sl_fwd_tls_conf_t, client_auth),
     .help = "Client certificates: `none` (not asked for), `optional` (verified against ca_file when sent), "
             "`required` (a client without a valid one is refused)."},
    {.name = "min_version", .type = SL_OPT_ENUM, .def = "\"1.2\"", .choices = "1.2|1.3",
     .offset = offsetof(sl_fwd_tls_conf_t, min_version), .help = "Oldest TLS version accepted."},
    {.name = "ciphers", .type = SL_OPT_STRING, .offset = offsetof(sl_fwd_tls_conf_t, ciphers),
     .help = "OpenSSL cipher list for TLS 1.2 (`openssl ciphers` syntax); OpenSSL's default when unset."},
    {.name = "ciphersuites", .type = SL_OPT_STRING, .offset = offsetof(sl_fwd_tls_conf_t, ciphersuites),
     .help = "TLS 1.3 cipher suites, colon-separated (`TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256`); "
             "OpenSSL's default when unset."},
    {.name = "handshake_timeout", .type = SL_OPT_DURATION, .def = "\"10s\"", .unit = "duration",
     .min = SEC / 10, .max = 600 * SEC, .offset = offsetof(sl_fwd_tls_conf_t, handshake_timeout_ns),
     .help = "A client that has not completed the TLS handshake this long after connecting is closed."},
    {0},
};

/* Loads the files here, at bind time, so that `sluice check` reports a
 * missing file or a key that does not match as well as `sluice run`. */
static void tls_finish(void *conf, sl_bind_ctx_t *ctx) {
  sl_fwd_tls_conf_t *t = conf;
  /* Validation fills in the section's defaults whether or not the file
   * has it: TLS is on once anything but a default is set. */
  if (!t->cert_file && !t->key_file && !t->key_passphrase && !t->ca_file && !t->ciphers && !t->ciphersuites &&
      t->client_auth == SL_FWD_CLIENT_AUTH_NONE && t->min_version == SL_FWD_TLS_1_2)
    return;
  bool ok = true;
  if (!t->cert_file) ok = false, sl_bind_error(ctx, NULL, "cert_file is required with TLS");
  if (!t->key_file) ok = false, sl_bind_error(ctx, NULL, "key_file is required with TLS");
  if (t->client_auth != SL_FWD_CLIENT_AUTH_NONE && !t->ca_file)
    ok = false, sl_bind_error(ctx, &t->client_auth, "client_auth needs ca_file (the CAs client certificates are "
                                                    "checked against)");
  if (t->client_auth == SL_FWD_CLIENT_AUTH_NONE && t->ca_file)
    ok = false, sl_bind_error(ctx, &t->ca_file, "ca_file is set but client_auth is \"none\", so no client "
                                                "certificate would be checked: set client_auth = \"required\" "
                                                "(or \"optional\"), or remove ca_file");
  if (!ok) return;
  char err[512];
  if (sl_fwd_tls_ctx_new(t, &t->ctx, err, sizeof err)) sl_bind_error(ctx, NULL, "%s", err);
}

static void tls_release(void *conf) {
  sl_fwd_tls_conf_t *t = conf;
  sl_fwd_tls_ctx_free(t->ctx);
  t->ctx = NULL;
}

static const sl_section_t tls_section = {
    .name = "tls",
    .opts = tls_opts,
    .help = "TLS on the forward input's TCP listeners (every worker's), on once cert_file and key_file are "
            "set; unix sockets stay plain. The files are read at start and again on SIGHUP (from the same "
            "paths; other changes to this section need a restart).",
    .size = sizeof(sl_fwd_tls_conf_t),
    .finish = tls_finish,
    .release = tls_release,
};

static const sl_opt_t forward_opts[] = {
    {.name = "enabled", .type = SL_OPT_BOOL, .def = "true", .offset = offsetof(sl_forward_conf_t, enabled),
     .help = "Run the forward input."},
    {.name = "listen", .type = SL_OPT_ADDR_LIST, .def = "[\"0.0.0.0:24224\"]",
     .offset = offsetof(sl_forward_conf_t, listen),
     .help = "TCP addresses and unix socket paths to accept forward connections on. A UDP heartbeat socket "
             "listens on every TCP address."},
    {.name = "chunk_size_limit", .type = SL_OPT_SIZE, .def = "\"8MiB\"", .unit = "bytes", .min = 1 * KiB,
     .max = 1 * GiB, .offset = offsetof(sl_forward_conf_t, chunk_size_limit),
     .help = "Largest message accepted. A larger one is dropped without ack and the connection closed."},
    {.name = "chunk_size_warn_limit", .type = SL_OPT_SIZE, .def = "\"4MiB\"", .unit = "bytes", .min = 1 * KiB,
     .max = 1 * GiB, .offset = offsetof(sl_forward_conf_t, chunk_size_warn_limit),
     .help = "Messages larger than this are accepted with a warning."},
    {.name = "decompression_size_limit", .type = SL_OPT_SIZE, .def = "\"64MiB\"", .unit = "bytes",
     .min = 1 * KiB, .max = 4 * GiB, .offset = offsetof(sl_forward_conf_t, decompression_size_limit),
     .help = "Largest decompressed CompressedPackedForward payload; larger ones are rejected as gzip bombs."},
    {.name = "max_depth", .type = SL_OPT_INT, .def = "32", .min = 2, .max = 32,
     .offset = offsetof(sl_forward_conf_t, max_depth), .help = "Deepest nesting of arrays and maps in a message."},
    {.name = "decoded_values_limit", .type = SL_OPT_INT, .def = "1000000", .min = 1000, .max = 100000000,
     .offset = offsetof(sl_forward_conf_t, decoded_values_limit),
     .help = "Most msgpack values (array and map elements, keys included; PackedForward entries counted) "
             "one message may decode to. Each takes 24 bytes decoded however small it is on the wire, so this "
             "bounds a message's memory (about 24 bytes times this) before anything is allocated; a record of "
             "ten fields is about 21 values. A larger message is dropped without ack."},
    {.name = "tag_size_limit", .type = SL_OPT_SIZE, .def = "\"1KiB\"", .unit = "bytes", .min = 64, .max = 64 * KiB,
     .offset = offsetof(sl_forward_conf_t, tag_size_limit),
     .help = "Longest tag accepted (with tag_prefix added, it is what every record carries in Kafka). A message "
             "with a longer tag is dropped without ack."},
    {.name = "workers", .type = SL_OPT_INT, .def = "1", .min = 1, .max = 64,
     .offset = offsetof(sl_forward_conf_t, workers),
     .help = "Event-loop threads serving forward connections, each accepting on the same TCP ports "
             "(SO_REUSEPORT) with a Kafka producer of its own; a connection stays with the worker that "
             "accepted it. Unix sockets and UDP heartbeats are served by the first. Print mode uses one. "
             "max_connections applies per worker."},
    {.name = "max_connections", .type = SL_OPT_INT, .def = "1024", .min = 1, .max = 1000000,
     .offset = offsetof(sl_forward_conf_t, max_connections),
     .help = "Connections beyond this are closed at accept."},
    {.name = "idle_timeout", .type = SL_OPT_DURATION, .def = "\"5m\"", .unit = "duration", .min = 1 * SEC,
     .offset = offsetof(sl_forward_conf_t, idle_timeout_ns),
     .help = "A connection that sends nothing for this long is closed."},
    {.name = "skip_invalid_event", .type = SL_OPT_BOOL, .def = "true",
     .offset = offsetof(sl_forward_conf_t, skip_invalid_event),
     .help = "Skip (and count) an entry whose time or record has the wrong type; false rejects the whole "
             "message."},
    {.name = "tag_prefix", .type = SL_OPT_STRING, .offset = offsetof(sl_forward_conf_t, tag_prefix),
     .help = "Prepended to every tag, with a dot: `tag_prefix = \"edge\"` turns `app.web` into `edge.app.web`."},
    {.name = "source_address_key", .type = SL_OPT_STRING, .offset = offsetof(sl_forward_conf_t, source_address_key),
     .help = "Record key under which the client's IP address is added."},
    {.name = "source_hostname_key", .type = SL_OPT_STRING,
     .offset = offsetof(sl_forward_conf_t, source_hostname_key),
     .help = "Record key under which the client's host name (reverse DNS, else its address) is added."},
    {.name = "deny_keepalive", .type = SL_OPT_BOOL, .def = "false",
     .offset = offsetof(sl_forward_conf_t, deny_keepalive),
     .help = "Close the connection after each message (after its ack when one is asked for)."},
    {0},
};

static void forward_finish(void *conf, sl_bind_ctx_t *ctx) {
  (void)ctx;
  sl_forward_conf_t *f = conf;
  if (f->chunk_size_warn_limit > f->chunk_size_limit) f->chunk_size_warn_limit = f->chunk_size_limit;
}

static const sl_child_t forward_children[] = {
    {&security_section, offsetof(sl_forward_conf_t, security)},
    {&tls_section, offsetof(sl_forward_conf_t, tls)},
    {0},
};
const sl_section_t sl_forward_section = {
    .name = "forward",
    .opts = forward_opts,
    .children = forward_children,
    .help = "The fluentd Forward Protocol v1 input.",
    .size = sizeof(sl_forward_conf_t),
    .finish = forward_finish,
};
