/* Binding options to struct fields, seen from a plugin: a sink's option
 * table (every option type, defaults, ranges, a secret, a required key, a
 * child section, an [[array]] section, finish and release hooks) is
 * validated and bound against TOML texts; each value must land in its
 * field, errors must name the file, line, column and key path, unbinding
 * must free everything (run under valgrind --leak-check=full), and the
 * reference generated from the table must list every option. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config_schema.h"
#include "config/toml.h"
#include "core/units.h"
#include "tap.h"


#define MS 1000000LL
#define SEC 1000000000LL

/* ---- the plugin's table ---------------------------------------------------
 * What a Redis-like sink would hand the host. */

typedef struct {
  char *user;
  char *password;
  char *signing_key;
  int64_t pool;
} auth_conf_t;

typedef struct {
  bool enabled;
  int64_t depth;
} pipeline_conf_t;

typedef struct {
  char *name;
  int64_t weight;
  sl_addr_t addr;
  char *label; /* built by shard_finish, freed by shard_release */
} shard_conf_t;

typedef struct {
  char *key_prefix;
  int64_t db;
  double sample_rate;
  double retry_backoff;
  bool tls;
  int64_t timeout_ns;
  uint64_t buffer;
  sl_addr_t server;
  sl_addr_list_t replicas;
  sl_str_list_t channels;
  int mode; /* MODE_* */
  sl_kv_list_t options;
  sl_kv_list_t labels;
  auth_conf_t auth;
  char *token;
  pipeline_conf_t pipeline;
  sl_conf_array_t shards; /* of shard_conf_t */
  char *key_format;       /* built by redis_finish, freed by redis_release */
} redis_conf_t;

enum { MODE_SET, MODE_LIST, MODE_STREAM };

/* The host's struct: the plugin's section sits after a host option, so a
 * wrong child offset would show. */
typedef struct {
  int64_t workers;
  redis_conf_t redis;
} host_conf_t;

/* Which finish hooks ran, in order. */
static char finish_log[256];
static char bind_file_seen[64];

static void log_finish(const char *what) {
  strncat(finish_log, what, sizeof finish_log - strlen(finish_log) - 1);
  strncat(finish_log, " ", sizeof finish_log - strlen(finish_log) - 1);
}

static void auth_finish(void *conf, sl_bind_ctx_t *ctx) {
  auth_conf_t *a = conf;
  log_finish("auth");
  if (a->user && !a->password) sl_bind_error(ctx, &a->user, "user needs a password");
}

static const sl_opt_t auth_opts[] = {
    {.name = "user",
     .type = SL_OPT_STRING,
     .offset = offsetof(auth_conf_t, user),
     .help = "User name."},
    {.name = "password",
     .type = SL_OPT_STRING,
     .flags = SL_OPT_SECRET,
     .offset = offsetof(auth_conf_t, password),
     .help = "Password."},
    {.name = "signing_key",
     .type = SL_OPT_STRING,
     .flags = SL_OPT_SECRET,
     .offset = offsetof(auth_conf_t, signing_key),
     .help = "HMAC key for signed commands."},
    {.name = "pool",
     .type = SL_OPT_INT,
     .def = "2",
     .min = 1,
     .max = 100,
     .offset = offsetof(auth_conf_t, pool),
     .help = "Authenticated connections kept open."},
    {0},
};
static const sl_section_t auth_section = {.name = "auth",
                                          .opts = auth_opts,
                                          .help = "Authentication.",
                                          .size = sizeof(auth_conf_t),
                                          .finish = auth_finish};

static void pipeline_finish(void *conf, sl_bind_ctx_t *ctx) {
  (void)conf;
  log_finish("pipeline");
  snprintf(bind_file_seen, sizeof bind_file_seen, "%s", sl_bind_file(ctx));
}

static const sl_opt_t pipeline_opts[] = {
    {.name = "enabled",
     .type = SL_OPT_BOOL,
     .def = "true",
     .offset = offsetof(pipeline_conf_t, enabled),
     .help = "Pipeline commands."},
    {.name = "depth",
     .type = SL_OPT_INT,
     .def = "4",
     .min = 1,
     .max = 64,
     .offset = offsetof(pipeline_conf_t, depth),
     .help = "Commands in flight."},
    {0},
};
static const sl_section_t pipeline_section = {.name = "pipeline",
                                              .opts = pipeline_opts,
                                              .help = "Command pipelining.",
                                              .size = sizeof(pipeline_conf_t),
                                              .finish = pipeline_finish};

static void shard_finish(void *conf, sl_bind_ctx_t *ctx) {
  shard_conf_t *s = conf;
  log_finish("shard");
  if (asprintf(&s->label, "%s/%lld", s->name, (long long)s->weight) < 0) s->label = NULL;
  if (strchr(s->name, ' ')) sl_bind_error(ctx, &s->name, "shard names cannot contain spaces");
  if (s->weight > 1 && !s->addr.kind) sl_bind_error(ctx, NULL, "a weighted shard needs addr");
}

static void shard_release(void *conf) {
  shard_conf_t *s = conf;
  free(s->label);
  s->label = NULL;
}

static const sl_opt_t shard_opts[] = {
    {.name = "name",
     .type = SL_OPT_STRING,
     .flags = SL_OPT_REQUIRED,
     .offset = offsetof(shard_conf_t, name),
     .help = "Shard name."},
    {.name = "weight",
     .type = SL_OPT_INT,
     .def = "1",
     .min = 1,
     .offset = offsetof(shard_conf_t, weight),
     .help = "Share of the keys."},
    {.name = "addr",
     .type = SL_OPT_ADDR,
     .offset = offsetof(shard_conf_t, addr),
     .help = "Shard server."},
    {0},
};
static const sl_section_t shard_section = {.name = "shard",
                                           .flags = SL_SECTION_ARRAY,
                                           .opts = shard_opts,
                                           .help = "Key shards.",
                                           .size = sizeof(shard_conf_t),
                                           .finish = shard_finish,
                                           .release = shard_release};

static void redis_finish(void *conf, sl_bind_ctx_t *ctx) {
  redis_conf_t *r = conf;
  log_finish("redis");
  if (asprintf(&r->key_format, "%s{tag}", r->key_prefix) < 0) r->key_format = NULL;
  if (r->tls && r->server.kind == SL_ADDR_UNIX)
    sl_bind_error(ctx, &r->server, "tls needs a TCP address, not a socket path");
  if (r->mode == MODE_SET && r->replicas.n > 1)
    sl_bind_error(ctx, NULL, "mode \"set\" cannot use replicas");
  for (size_t i = 0; i < r->options.n; i++)
    if (strcmp(r->options.items[i].key, "retries") == 0 && atoi(r->options.items[i].value) > 10)
      sl_bind_error_at(ctx, r->options.items[i].line, r->options.items[i].col,
                       "redis.options.retries: at most 10");
  /* token is never filled when absent (no default): the error falls back to
   * the section. */
  if (r->tls && !r->token) sl_bind_error(ctx, &r->token, "tls needs a token");
  /* Errors about a whole TABLE option and about a child section. */
  if (r->auth.pool > 4 * r->pipeline.depth)
    sl_bind_error(ctx, &r->auth, "pool %lld is more than 4 per command in flight",
                  (long long)r->auth.pool);
  if (r->mode == MODE_STREAM && r->pipeline.enabled)
    sl_bind_error(ctx, &r->pipeline, "streams cannot be pipelined");
  if (r->buffer < (uint64_t)r->pipeline.depth * 1024 * 1024)
    sl_bind_error(ctx, &r->buffer, "too small for %lld commands in flight",
                  (long long)r->pipeline.depth);
}

static void redis_release(void *conf) {
  redis_conf_t *r = conf;
  free(r->key_format);
  r->key_format = NULL;
}

static const sl_opt_t redis_opts[] = {
    {.name = "key_prefix",
     .type = SL_OPT_STRING,
     .def = "\"sluice:\"",
     .offset = offsetof(redis_conf_t, key_prefix),
     .help = "Prefix of every key."},
    {.name = "db",
     .type = SL_OPT_INT,
     .def = "3",
     .min = 0,
     .max = 15,
     .offset = offsetof(redis_conf_t, db),
     .help = "Database number."},
    {.name = "sample_rate",
     .type = SL_OPT_FLOAT,
     .def = "0.25",
     .offset = offsetof(redis_conf_t, sample_rate),
     .help = "Share of records written."},
    {.name = "retry_backoff",
     .type = SL_OPT_FLOAT,
     .def = "2",
     .offset = offsetof(redis_conf_t, retry_backoff),
     .help = "Factor between retry delays."},
    {.name = "tls",
     .type = SL_OPT_BOOL,
     .def = "false",
     .offset = offsetof(redis_conf_t, tls),
     .help = "Use TLS."},
    {.name = "timeout",
     .type = SL_OPT_DURATION,
     .def = "\"1500ms\"",
     .unit = "duration",
     .min = 1 * MS,
     .max = 60 * SEC,
     .offset = offsetof(redis_conf_t, timeout_ns),
     .help = "Command timeout."},
    {.name = "buffer",
     .type = SL_OPT_SIZE,
     .def = "\"8MiB\"",
     .unit = "size",
     .min = 1024,
     .max = 1LL << 30,
     .offset = offsetof(redis_conf_t, buffer),
     .help = "Output buffer."},
    {.name = "server",
     .type = SL_OPT_ADDR,
     .flags = SL_OPT_REQUIRED,
     .offset = offsetof(redis_conf_t, server),
     .help = "Primary server."},
    {.name = "replicas",
     .type = SL_OPT_ADDR_LIST,
     .def = "\"127.0.0.1:6380\"",
     .offset = offsetof(redis_conf_t, replicas),
     .help = "Replica servers."},
    {.name = "channels",
     .type = SL_OPT_STRING_LIST,
     .def = "[\"events\", \"audit\"]",
     .offset = offsetof(redis_conf_t, channels),
     .help = "Channels to publish to."},
    {.name = "mode",
     .type = SL_OPT_ENUM,
     .def = "\"list\"",
     .choices = "set|list|stream",
     .offset = offsetof(redis_conf_t, mode),
     .help = "Data structure written."},
    {.name = "options",
     .type = SL_OPT_MAP,
     .offset = offsetof(redis_conf_t, options),
     .help = "Client options passed through."},
    {.name = "labels",
     .type = SL_OPT_MAP,
     .def = "{ app = \"sluice\" }",
     .offset = offsetof(redis_conf_t, labels),
     .help = "Labels added to every key."},
    {.name = "auth",
     .type = SL_OPT_TABLE,
     .sub = &auth_section,
     .offset = offsetof(redis_conf_t, auth),
     .help = "Credentials."},
    {.name = "token",
     .type = SL_OPT_STRING,
     .flags = SL_OPT_SECRET,
     .offset = offsetof(redis_conf_t, token),
     .help = "Access token."},
    {0},
};
static const sl_child_t redis_children[] = {
    {&pipeline_section, offsetof(redis_conf_t, pipeline)},
    {&shard_section, offsetof(redis_conf_t, shards)},
    {0},
};
static const sl_section_t redis_section = {.name = "redis",
                                           .opts = redis_opts,
                                           .children = redis_children,
                                           .help = "Redis sink.",
                                           .size = sizeof(redis_conf_t),
                                           .finish = redis_finish,
                                           .release = redis_release};

/* The host places the plugin's section. */
static const sl_opt_t host_opts[] = {
    {.name = "workers",
     .type = SL_OPT_INT,
     .def = "2",
     .min = 1,
     .max = 64,
     .offset = offsetof(host_conf_t, workers),
     .help = "Worker threads."},
    {0},
};
static const sl_child_t host_children[] = {{&redis_section, offsetof(host_conf_t, redis)}, {0}};
static const sl_section_t host_section = {.name = "",
                                          .opts = host_opts,
                                          .children = host_children,
                                          .help = "Top level.",
                                          .size = sizeof(host_conf_t)};

/* ---- helpers ---------------------------------------------------------------- */

typedef struct {
  size_t verrors, berrors;
  bool bound;
  char diag[4096]; /* every diagnostic line, joined with newlines */
} load_t;

static void join(sl_diag_t *d, char *out, size_t len) {
  out[0] = 0;
  for (size_t i = 0; i < d->n; i++) {
    if (i) strncat(out, "\n", len - strlen(out) - 1);
    strncat(out, d->lines[i], len - strlen(out) - 1);
  }
}

/* Parses, validates and, when valid, binds `text` into the zeroed *h, the
 * way the daemon loads its file.  The document is freed before the fields
 * are read: bound values must be owned copies.  The caller unbinds. */
static load_t load(const char *text, host_conf_t *h) {
  load_t l = {0};
  char err[512];
  sl_toml_value_t *doc = NULL;
  memset(h, 0, sizeof *h);
  finish_log[0] = 0;
  if (sl_toml_parse(text, strlen(text), "t.toml", &doc, err, sizeof err)) {
    snprintf(l.diag, sizeof l.diag, "parse: %s", err);
    l.verrors = 1;
    return l;
  }
  sl_diag_t d = {0};
  l.verrors = sl_schema_validate(&host_section, doc, "t.toml", &d);
  if (!l.verrors) {
    l.berrors = sl_schema_bind(&host_section, doc, h, "t.toml", &d);
    l.bound = true;
  }
  join(&d, l.diag, sizeof l.diag);
  sl_diag_free(&d);
  sl_toml_free(doc);
  return l;
}

static bool is_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i]) return false;
  return true;
}

/* ---- every field holds the value written ------------------------------------ */

static const char full_text[] =
    "workers = 8\n"                                                                     /* 1 */
    "[redis]\n"                                                                         /* 2 */
    "key_prefix = \"app:\"\n"                                                           /* 3 */
    "db = 15\n"                                                                         /* 4 */
    "sample_rate = 0.5\n"                                                               /* 5 */
    "tls = true\n"                                                                      /* 6 */
    "timeout = \"1s250ms\"\n"                                                           /* 7 */
    "buffer = \"64MiB\"\n"                                                              /* 8 */
    "server = \"10.1.2.3:6379\"\n"                                                      /* 9 */
    "replicas = [\"10.1.2.4:6379\", \"[::1]:6380\", \"/run/r.sock\"]\n"                 /* 10 */
    "channels = \"alerts\"\n"                                                           /* 11 */
    "mode = \"stream\"\n"                                                               /* 12 */
    "options = { \"tcp.nodelay\" = true, retries = 3, codec = \"lz4\", ratio = 0.5 }\n" /* 13 */
    "auth = { user = \"svc\", password = \"hunter2\", pool = 8 }\n"                     /* 14 */
    "token = \"t0k\"\n"                                                                 /* 15 */
    "[redis.pipeline]\n"                                                                /* 16 */
    "enabled = false\n"                                                                 /* 17 */
    "depth = 64\n"                                                                      /* 18 */
    "[[redis.shard]]\n"                                                                 /* 19 */
    "name = \"a\"\n"                                                                    /* 20 */
    "weight = 5\n"                                                                      /* 21 */
    "addr = \"/run/a.sock\"\n"                                                          /* 22 */
    "[[redis.shard]]\n"                                                                 /* 23 */
    "name = \"b\"\n";                                                                   /* 24 */

static void every_field(void) {
  host_conf_t h;
  load_t l = load(full_text, &h);
  is_str(l.diag, "", "full config: no errors");
  ok(l.bound && l.verrors == 0 && l.berrors == 0, "full config: validated and bound");
  redis_conf_t *r = &h.redis;

  is_int(h.workers, 8, "host option before the plugin's section: INT");
  is_str(r->key_prefix, "app:", "STRING");
  is_int(r->db, 15, "INT at the top of its range");
  ok(r->sample_rate == 0.5, "FLOAT");
  ok(r->tls == true, "BOOL");
  is_int(r->timeout_ns, 1250 * MS, "DURATION \"1s250ms\" in ns");
  is_int(r->buffer, 64ULL << 20, "SIZE \"64MiB\" in bytes");
  ok(r->server.kind == SL_ADDR_TCP && strcmp(r->server.host, "10.1.2.3") == 0 &&
         r->server.port == 6379,
     "ADDR host:port");

  is_int(r->replicas.n, 3, "ADDR_LIST array: three addresses");
  if (r->replicas.n == 3) {
    ok(r->replicas.items[0].kind == SL_ADDR_TCP &&
           strcmp(r->replicas.items[0].host, "10.1.2.4") == 0 && r->replicas.items[0].port == 6379,
       "ADDR_LIST[0] IPv4");
    ok(r->replicas.items[1].kind == SL_ADDR_TCP && strcmp(r->replicas.items[1].host, "::1") == 0 &&
           r->replicas.items[1].port == 6380,
       "ADDR_LIST[1] IPv6 without brackets");
    ok(r->replicas.items[2].kind == SL_ADDR_UNIX &&
           strcmp(r->replicas.items[2].path, "/run/r.sock") == 0,
       "ADDR_LIST[2] socket path");
  }

  is_int(r->channels.n, 1, "STRING_LIST given one string: one item");
  if (r->channels.n == 1) is_str(r->channels.items[0], "alerts", "STRING_LIST single string");
  is_int(r->mode, MODE_STREAM, "ENUM binds the index of \"stream\" in set|list|stream");

  is_int(r->options.n, 4, "MAP: four entries");
  if (r->options.n == 4) {
    const sl_kv_t *e = r->options.items;
    ok(strcmp(e[0].key, "tcp.nodelay") == 0 && strcmp(e[0].value, "true") == 0,
       "MAP quoted key, bool as text");
    ok(e[0].line == 13 && e[0].col == 13, "MAP entry 0 at 13:13 (got %d:%d)", e[0].line, e[0].col);
    ok(strcmp(e[1].key, "retries") == 0 && strcmp(e[1].value, "3") == 0,
       "MAP integer as decimal text");
    ok(e[1].line == 13 && e[1].col == 35, "MAP entry 1 at 13:35 (got %d:%d)", e[1].line, e[1].col);
    ok(strcmp(e[2].key, "codec") == 0 && strcmp(e[2].value, "lz4") == 0, "MAP string as it is");
    ok(e[2].line == 13 && e[2].col == 48, "MAP entry 2 at 13:48 (got %d:%d)", e[2].line, e[2].col);
    ok(strcmp(e[3].key, "ratio") == 0 && strcmp(e[3].value, "0.5") == 0, "MAP float as text");
  }

  is_str(r->auth.user, "svc", "TABLE sub-option STRING");
  is_str(r->auth.password, "hunter2", "TABLE sub-option SECRET bound in clear for the plugin");
  is_int(r->auth.pool, 8, "TABLE sub-option INT");
  is_str(r->token, "t0k", "SECRET STRING");

  ok(r->pipeline.enabled == false, "child section BOOL false overrides default true");
  is_int(r->pipeline.depth, 64, "child section INT");

  is_int(r->shards.n, 2, "[[array]] section: two elements");
  if (r->shards.n == 2) {
    shard_conf_t *s = r->shards.items;
    is_str(s[0].name, "a", "shard[0].name");
    is_int(s[0].weight, 5, "shard[0].weight");
    ok(s[0].addr.kind == SL_ADDR_UNIX && strcmp(s[0].addr.path, "/run/a.sock") == 0,
       "shard[0].addr");
    is_str(s[1].name, "b", "shard[1].name");
    is_int(s[1].weight, 1, "shard[1].weight from its default, per element");
    ok(s[1].addr.kind == 0, "shard[1].addr unset");
    is_str(s[0].label, "a/5", "shard finish hook ran on element 0");
    is_str(s[1].label, "b/1", "shard finish hook ran on element 1");
  }
  is_str(r->key_format, "app:{tag}", "section finish hook saw the bound values");
  is_str(finish_log, "auth pipeline shard shard redis ",
         "finish hooks: children before their parent");
  is_str(bind_file_seen, "t.toml", "sl_bind_file names the config file");

  sl_schema_unbind(&host_section, &h);
  ok(!r->key_prefix && !r->token && !r->auth.user && !r->key_format && !r->replicas.items &&
         !r->channels.items && !r->options.items && !r->shards.items && r->shards.n == 0,
     "unbind frees and clears every owned field");
}

/* ---- defaults ---------------------------------------------------------------- */

static void defaults(void) {
  host_conf_t h;
  load_t l = load("[redis]\nserver = \"/run/redis.sock\"\n", &h);
  is_str(l.diag, "", "minimal config: no errors");
  redis_conf_t *r = &h.redis;
  is_int(h.workers, 2, "default INT \"2\" of the host");
  is_str(r->key_prefix, "sluice:", "default STRING");
  is_int(r->db, 3, "default INT");
  ok(r->sample_rate == 0.25, "default FLOAT \"0.25\"");
  ok(r->retry_backoff == 2.0, "default FLOAT written as an integer \"2\"");
  ok(r->tls == false, "default BOOL");
  is_int(r->timeout_ns, 1500 * MS, "default DURATION \"1500ms\" parsed as user input");
  is_int(r->buffer, 8388608, "default SIZE \"8MiB\" binds 8388608");
  ok(r->server.kind == SL_ADDR_UNIX && strcmp(r->server.path, "/run/redis.sock") == 0,
     "ADDR socket path");
  ok(r->replicas.n == 1 && r->replicas.items[0].kind == SL_ADDR_TCP &&
         strcmp(r->replicas.items[0].host, "127.0.0.1") == 0 && r->replicas.items[0].port == 6380,
     "default ADDR_LIST written as a single string");
  ok(r->channels.n == 2 && strcmp(r->channels.items[0], "events") == 0 &&
         strcmp(r->channels.items[1], "audit") == 0,
     "default STRING_LIST written as an array");
  is_int(r->mode, MODE_LIST, "default ENUM \"list\" binds index 1");
  ok(r->options.n == 0 && !r->options.items, "absent MAP without default: empty");
  ok(r->labels.n == 1 && strcmp(r->labels.items[0].key, "app") == 0 &&
         strcmp(r->labels.items[0].value, "sluice") == 0,
     "default MAP written as an inline table");
  if (r->labels.n == 1)
    ok(r->labels.items[0].line == 0 && r->labels.items[0].col == 0, "default MAP entry has no position in the user's file (got %d:%d)",
            r->labels.items[0].line, r->labels.items[0].col);
  ok(!r->auth.user && r->auth.pool == 0, "absent TABLE without default: not bound");
  ok(!r->token, "absent STRING without default: NULL");
  ok(r->pipeline.enabled == true && r->pipeline.depth == 4, "absent child section: its defaults");
  ok(r->shards.n == 0 && !r->shards.items, "absent [[array]] section: no elements");
  is_str(finish_log, "pipeline redis ",
         "finish hooks of absent TABLE and array sections do not run");
  is_str(r->key_format, "sluice:{tag}", "finish hook saw the default");
  sl_schema_unbind(&host_section, &h);

  /* Defaults inside an inline TABLE that is written. */
  l = load("[redis]\nserver = \"h:1\"\nauth = { user = \"u\", password = \"p\" }\n", &h);
  is_str(l.diag, "", "TABLE without its optional key: no errors");
  is_int(h.redis.auth.pool, 2, "default of a TABLE sub-option");
  sl_schema_unbind(&host_section, &h);

  /* A SIZE written as an integer number of bytes, an ADDR_LIST as one
   * string, a STRING_LIST as an array. */
  l = load(
      "[redis]\nserver = \"h:1\"\nbuffer = 4194304\nreplicas = \"[::1]:7000\"\n"
      "channels = [\"x\", \"y\", \"z\"]\nmode = \"set\"\nsample_rate = 1\n",
      &h);
  is_str(l.diag, "", "integer size, single address, string array: no errors");
  is_int(h.redis.buffer, 4194304, "SIZE as an integer");
  ok(h.redis.replicas.n == 1 && strcmp(h.redis.replicas.items[0].host, "::1") == 0 &&
         h.redis.replicas.items[0].port == 7000,
     "ADDR_LIST from a single string");
  ok(h.redis.channels.n == 3 && strcmp(h.redis.channels.items[2], "z") == 0,
     "STRING_LIST from an array");
  is_int(h.redis.mode, MODE_SET, "ENUM first choice binds 0");
  ok(h.redis.sample_rate == 1.0, "FLOAT written as an integer");
  sl_schema_unbind(&host_section, &h);

  /* The plugin's section has a required key: when absent it is neither
   * created nor bound. */
  l = load("workers = 1\n", &h);
  is_str(l.diag, "", "plugin section absent: no errors");
  ok(h.redis.server.kind == 0 && !h.redis.key_prefix && !h.redis.key_format,
     "absent section with a required key: not bound");
  is_str(finish_log, "", "absent section: no finish hook ran");
  sl_schema_unbind(&host_section, &h);
}

/* ---- validation errors --------------------------------------------------------- */

static void range_errors(void) {
  host_conf_t h;
  load_t l = load(
      "[redis]\n"             /* 1 */
      "server = \"h:1\"\n"    /* 2 */
      "db = 16\n"             /* 3 */
      "timeout = \"2m\"\n"    /* 4 */
      "buffer = 512\n"        /* 5 */
      "auth = { pool = 0 }\n" /* 6 */
      "[redis.pipeline]\n"    /* 7 */
      "depth = 65\n"          /* 8 */
      "[[redis.shard]]\n"     /* 9 */
      "name = \"a\"\n"        /* 10 */
      "[[redis.shard]]\n"     /* 11 */
      "name = \"b\"\n"        /* 12 */
      "weight = 0\n",         /* 13 */
      &h);
  is_str(l.diag,
         "t.toml:3:6: redis.db: 16 is out of range (0 to 15)\n"
         "t.toml:4:11: redis.timeout: 2m is out of range (1ms to 1m)\n"
         "t.toml:5:10: redis.buffer: 512 is out of range (1KiB to 1GiB)\n"
         "t.toml:6:17: redis.auth.pool: 0 is out of range (1 to 100)\n"
         "t.toml:8:9: redis.pipeline.depth: 65 is out of range (1 to 64)\n"
         "t.toml:13:10: redis.shard[1].weight: 0 is out of range (at least 1)",
         "range errors: every one, with position, key path, value and range");
  is_int(l.verrors, 6, "validation counts six errors");
  ok(!l.bound, "invalid config is not bound");
  ok(is_zero(&h, sizeof h), "struct left zeroed");
  /* Validation failed, bind never ran: unbinding the zeroed struct must be
   * harmless (valgrind checks the rest). */
  sl_schema_unbind(&host_section, &h);
  ok(is_zero(&h, sizeof h), "unbind of a never-bound struct leaves it zeroed");

  l = load("[redis]\nserver = \"h:1\"\ndb = -1\nbuffer = \"2GiB\"\ntimeout = \"500us\"\n", &h);
  is_str(l.diag,
         "t.toml:3:6: redis.db: -1 is out of range (0 to 15)\n"
         "t.toml:4:10: redis.buffer: 2GiB is out of range (1KiB to 1GiB)\n"
         "t.toml:5:11: redis.timeout: 500us is out of range (1ms to 1m)",
         "below the minimum, size string above the maximum, duration below the minimum");
  sl_schema_unbind(&host_section, &h);

  l = load(
      "[redis]\nserver = \"h:1\"\ndb = 0\nbuffer = \"1GiB\"\ntimeout = \"1ms\"\n"
      "[[redis.shard]]\nname = \"a\"\nweight = 1000000\naddr = \"h:2\"\n",
      &h);
  is_str(l.diag, "", "values at the edges of their ranges are accepted");
  ok(h.redis.db == 0 && h.redis.buffer == 1ULL << 30 && h.redis.timeout_ns == MS,
     "edge values bound");
  sl_schema_unbind(&host_section, &h);

  l = load("[redis]\nmode = \"hash\"\n", &h);
  is_str(l.diag,
         "t.toml:2:8: redis.mode: \"hash\" is not one of: set,list,stream\n"
         "t.toml:1:1: redis: missing required key \"server\"",
         "enum value and missing REQUIRED key at the section header");
  sl_schema_unbind(&host_section, &h);

  l = load("[redis]\nserver = \"h:1\"\n[[redis.shard]]\nweight = 2\n", &h);
  is_str(l.diag, "t.toml:3:1: redis.shard[0]: missing required key \"name\"",
         "missing REQUIRED key in an array element, at its [[header]]");
  sl_schema_unbind(&host_section, &h);
}

/* ---- finish-hook errors -------------------------------------------------------- */

static void finish_errors(void) {
  host_conf_t h;
  load_t l = load(
      "[redis]\n"                       /* 1 */
      "tls = true\n"                    /* 2 */
      "mode = \"set\"\n"                /* 3 */
      "replicas = [\"a:1\", \"b:2\"]\n" /* 4 */
      "server = \"/run/redis.sock\"\n"  /* 5 */
      "options = { retries = 30 }\n"    /* 6 */
      "auth = { user = \"svc\" }\n"     /* 7 */
      "[[redis.shard]]\n"               /* 8 */
      "name = \"ok\"\n"                 /* 9 */
      "[[redis.shard]]\n"               /* 10 */
      "name = \"has space\"\n"          /* 11 */
      "weight = 3\n",                   /* 12 */
      &h);
  is_int(l.verrors, 0, "cross-field errors pass validation");
  ok(l.bound, "bound");
  is_str(l.diag,
         "t.toml:7:17: redis.auth.user: user needs a password\n"
         "t.toml:11:8: redis.shard[1].name: shard names cannot contain spaces\n"
         "t.toml:10:1: redis.shard[1]: a weighted shard needs addr\n"
         "t.toml:5:10: redis.server: tls needs a TCP address, not a socket path\n"
         "t.toml:1:1: redis: mode \"set\" cannot use replicas\n"
         "t.toml:6:13: redis.options.retries: at most 10\n"
         "t.toml:1:1: redis: tls needs a token",
         "finish-hook errors: at the option behind the field, in TABLEs and array elements; "
         "at the section for NULL and for a field no option filled; at a MAP entry");
  is_int(l.berrors, 7, "bind returns the number of hook errors");
  /* The hooks allocated (labels, key_format) before reporting; unbind frees
   * them even though binding failed. */
  ok(h.redis.key_format && h.redis.shards.n == 2, "state built by the hooks is there to free");
  sl_schema_unbind(&host_section, &h);
  ok(!h.redis.key_format && !h.redis.shards.items, "unbind after failed hooks frees their state");

  /* An error about a whole TABLE option is at that option, not at its
   * first key (which shares the address). */
  l = load("[redis]\nserver = \"h:1\"\nauth = { user = \"u\", password = \"p\", pool = 20 }\n", &h);
  ok(strcmp(l.diag, "t.toml:3:8: redis.auth: pool 20 is more than 4 per command in flight") == 0, "error about a TABLE field names the TABLE option (got \"%s\")", l.diag);
  sl_schema_unbind(&host_section, &h);

  /* An error about a child section's struct is at that section's table,
   * not at the child's first option (which shares the address). */
  l = load("[redis]\nserver = \"h:1\"\nmode = \"stream\"\n[redis.pipeline]\ndepth = 2\n", &h);
  ok(strcmp(l.diag, "t.toml:4:1: redis.pipeline: streams cannot be pipelined") == 0,
     "error about a child section's struct is at that section (got \"%s\")", l.diag);
  sl_schema_unbind(&host_section, &h);

  /* An error about an option the user did not write (its default) has no
   * position in the file, only the key path. */
  l = load("[redis]\nserver = \"h:1\"\n[redis.pipeline]\ndepth = 16\n", &h);
  is_str(l.diag, "t.toml: redis.buffer: too small for 16 commands in flight",
         "error at a defaulted option: key path, no invented position");
  sl_schema_unbind(&host_section, &h);

  /* The same option written: its position. */
  l = load("[redis]\nserver = \"h:1\"\nbuffer = \"2MiB\"\n[redis.pipeline]\ndepth = 16\n", &h);
  is_str(l.diag, "t.toml:3:10: redis.buffer: too small for 16 commands in flight",
         "error at a written option: its position");
  sl_schema_unbind(&host_section, &h);
}

/* ---- the reference --------------------------------------------------------------- */

static void reference(void) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  sl_schema_reference(&host_section, f);
  fclose(f);
  /* One row per option: key, type, default (or required/unset), help and
   * range. */
  static const char *const rows[] = {
      "| `workers` | integer | `2` | Worker threads. Range: 1 to 64. |",
      "| `key_prefix` | string | `\"sluice:\"` | Prefix of every key. |",
      "| `db` | integer | `3` | Database number. Range: 0 to 15. |",
      "| `sample_rate` | number | `0.25` | Share of records written. |",
      "| `retry_backoff` | number | `2` | Factor between retry delays. |",
      "| `tls` | boolean | `false` | Use TLS. |",
      "| `timeout` | duration | `\"1500ms\"` | Command timeout. Range: 1ms to 1m. |",
      "| `buffer` | size | `\"8MiB\"` | Output buffer. Range: 1KiB to 1GiB. |",
      "| `server` | address | required | Primary server. |",
      "| `replicas` | address or array of addresses | `\"127.0.0.1:6380\"` | Replica servers. |",
      "| `channels` | string or array of strings | `[\"events\", \"audit\"]` | Channels to publish "
      "to. |",
      "| `mode` | enum | `\"list\"` | Data structure written. One of: `set`, `list`, `stream`. |",
      "| `options` | table | unset | Client options passed through. |",
      "| `labels` | table | `{ app = \"sluice\" }` | Labels added to every key. |",
      "| `auth` | inline table | unset | Credentials. Keys: `user` (string), `password` (string), "
      "`signing_key` (string), `pool` "
      "(integer). |",
      "| `token` | string | unset | Access token. Secret: never printed. |",
      "\n#### `[redis]`\n\nRedis sink.\n",
      "\n#### `[redis.pipeline]`\n\nCommand pipelining.\n",
      "| `depth` | integer | `4` | Commands in flight. Range: 1 to 64. |",
      "\n#### `[[redis.shard]]`\n\nKey shards.\n",
      "| `name` | string | required | Shard name. |",
      "| `weight` | integer | `1` | Share of the keys. Range: at least 1. |",
      "| `addr` | address | unset | Shard server. |",
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    const char *shown = rows[i] + strspn(rows[i], "\n#| ");
    ok(buf && strstr(buf, rows[i]) != NULL, "reference lists %.*s", (int)strcspn(shown, "|\n"),
       shown);
  }
  ok(buf && strncmp(buf, "#### Top level\n", 15) == 0, "reference starts at the top level");
  /* Sections in order: the plugin after the host's options, the child
   * before the array. */
  const char *a = buf ? strstr(buf, "`[redis]`") : NULL,
             *b = buf ? strstr(buf, "`[redis.pipeline]`") : NULL,
             *c = buf ? strstr(buf, "`[[redis.shard]]`") : NULL;
  ok(a && b && c && a < b && b < c, "sections in table order");
  ok(buf && !strstr(buf, "hunter2"), "no value leaks into the reference");
  free(buf);
}

/* The effective config shows what was bound, with secrets redacted. */
static void print_redacts(void) {
  char err[256];
  sl_toml_value_t *doc = NULL;
  const char *text =
      "[redis]\nserver = \"h:1\"\ntoken = \"t0k3n\"\nauth = { user = \"u\", password = "
      "\"hunter2\", signing_key = \"s1gn\" }\n";
  if (sl_toml_parse(text, strlen(text), "t.toml", &doc, err, sizeof err)) {
    ok(0, "parse for print: %s", err);
    return;
  }
  sl_diag_t d = {0};
  is_int(sl_schema_validate(&host_section, doc, "t.toml", &d), 0, "print: valid");
  sl_diag_free(&d);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  sl_schema_print(&host_section, doc, f);
  fclose(f);
  ok(strstr(buf, "token = \"<redacted>\"") != NULL, "print: SECRET option redacted");
  ok(!strstr(buf, "t0k3n") && !strstr(buf, "hunter2"), "print: no secret value appears");
  ok(strstr(buf, "buffer = \"8MiB\"") != NULL, "print: defaults filled in");
  ok(!strstr(buf, "s1gn"), "print: SECRET option inside a TABLE redacted");
  free(buf);
  sl_toml_free(doc);
}

/* `sluice plugins` prints a plugin's table as the plugin wrote it; an option
 * without help text must not bring the host down. */
static const sl_opt_t terse_opts[] = {{.name = "x", .type = SL_OPT_INT, .offset = 0}, {0}};
static const sl_section_t terse_section = {.name = "", .opts = terse_opts, .size = sizeof(int64_t)};

static void reference_without_help(void) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    FILE *f = fopen("/dev/null", "w");
    if (!f) _exit(2);
    sl_schema_reference(&terse_section, f);
    fclose(f);
    _exit(0);
  }
  int st = -1;
  waitpid(pid, &st, 0);
  ok(pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "reference of an option without help does not crash");
}

int main(void) {
  every_field();
  defaults();
  range_errors();
  finish_errors();
  reference();
  print_redacts();
  reference_without_help();
  return tap_done();
}
