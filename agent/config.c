/* Builds sl_config_t from a validated TOML document.  Runs once at start
 * (and on reload) on the main thread. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "error.h"

static const sl_toml_value_t *path_get(const sl_toml_value_t *t, const char *a, const char *b,
                                       const char *c) {
  const char *keys[] = {a, b, c};
  for (int i = 0; i < 3 && t && keys[i]; i++) t = sl_toml_get(t, keys[i]);
  return t;
}

static char *str_or_null(const sl_toml_value_t *t, const char *key) {
  const sl_toml_value_t *v = sl_toml_get(t, key);
  return v && v->type == SL_TOML_STRING ? strdup(v->u.str.ptr) : NULL;
}

static bool get_bool(const sl_toml_value_t *t, const char *key) {
  const sl_toml_value_t *v = sl_toml_get(t, key);
  return v && v->type == SL_TOML_BOOL && v->u.b;
}

static int64_t get_int(const sl_toml_value_t *t, const char *key) {
  const sl_toml_value_t *v = sl_toml_get(t, key);
  return v && v->type == SL_TOML_INTEGER ? v->u.i : 0;
}

static uint64_t get_size(const sl_toml_value_t *t, const char *key) {
  const sl_toml_value_t *v = sl_toml_get(t, key);
  uint64_t b = 0;
  if (v && v->type == SL_TOML_INTEGER) return (uint64_t)v->u.i;
  if (v && v->type == SL_TOML_STRING) sl_size_parse(v->u.str.ptr, &b, NULL, 0);
  return b;
}

static int64_t get_duration(const sl_toml_value_t *t, const char *key) {
  const sl_toml_value_t *v = sl_toml_get(t, key);
  int64_t ns = 0;
  if (v && v->type == SL_TOML_STRING) sl_duration_parse(v->u.str.ptr, &ns, NULL, 0);
  return ns;
}

static void build_forward(sl_config_t *c, const sl_toml_value_t *fw, sl_diag_t *d) {
  sl_forward_config_t *f = &c->forward;
  f->enabled = get_bool(fw, "enabled");
  const sl_toml_value_t *l = sl_toml_get(fw, "listen");
  size_t n = l->type == SL_TOML_ARRAY ? l->u.arr.len : 1;
  f->listen = calloc(n, sizeof *f->listen);
  for (size_t i = 0; f->listen && i < n; i++) {
    const sl_toml_value_t *a = l->type == SL_TOML_ARRAY ? l->u.arr.items[i] : l;
    sl_addr_parse(a->u.str.ptr, &f->listen[f->n_listen++], NULL, 0);
  }
  f->chunk_size_limit = get_size(fw, "chunk_size_limit");
  f->chunk_size_warn_limit = get_size(fw, "chunk_size_warn_limit");
  f->decompression_size_limit = get_size(fw, "decompression_size_limit");
  f->max_depth = (int)get_int(fw, "max_depth");
  f->max_connections = (int)get_int(fw, "max_connections");
  f->idle_timeout_ns = get_duration(fw, "idle_timeout");
  f->skip_invalid_event = get_bool(fw, "skip_invalid_event");
  f->tag_prefix = str_or_null(fw, "tag_prefix");
  f->source_address_key = str_or_null(fw, "source_address_key");
  f->source_hostname_key = str_or_null(fw, "source_hostname_key");
  f->deny_keepalive = get_bool(fw, "deny_keepalive");

  const sl_toml_value_t *sec = sl_toml_get(fw, "security");
  f->shared_key = str_or_null(sec, "shared_key");
  f->self_hostname = str_or_null(sec, "self_hostname");
  if (!f->self_hostname) {
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    f->self_hostname = strdup(host);
  }
  f->user_auth = get_bool(sec, "user_auth");
  const sl_toml_value_t *users = sl_toml_get(sec, "users");
  if (users && users->type == SL_TOML_ARRAY && users->u.arr.len) {
    f->users = calloc(users->u.arr.len, sizeof *f->users);
    for (size_t i = 0; f->users && i < users->u.arr.len; i++) {
      f->users[i].username = str_or_null(users->u.arr.items[i], "username");
      f->users[i].password = str_or_null(users->u.arr.items[i], "password");
      f->n_users++;
    }
  }
  if (f->user_auth && !f->n_users)
    sl_diag_add(d, c->file, sec->line, sec->col,
                "input.forward.security: user_auth = true needs at least one [[input.forward.security.users]]");
  if ((f->user_auth || f->n_users) && !f->shared_key)
    sl_diag_add(d, c->file, sec->line, sec->col,
                "input.forward.security: user authentication needs shared_key (the handshake carries it)");
  if (f->chunk_size_warn_limit > f->chunk_size_limit) f->chunk_size_warn_limit = f->chunk_size_limit;

  const sl_toml_value_t *tls = sl_toml_get(fw, "tls");
  if (tls && tls->type == SL_TOML_TABLE && tls->u.tab.len)
    sl_diag_add(d, c->file, tls->u.tab.items[0].line, tls->u.tab.items[0].col,
                "input.forward.tls: TLS is not implemented in this version of sluice");
}

static void build_kafka(sl_config_t *c, const sl_toml_value_t *k, sl_diag_t *d) {
  sl_kafka_config_t *kc = &c->kafka;
  kc->enabled = true;
  const sl_toml_value_t *b = sl_toml_get(k, "brokers");
  sl_buf_t buf = {0};
  size_t n = b->type == SL_TOML_ARRAY ? b->u.arr.len : 1;
  for (size_t i = 0; i < n; i++) {
    const sl_toml_value_t *s = b->type == SL_TOML_ARRAY ? b->u.arr.items[i] : b;
    if (strcmp(s->u.str.ptr, "embedded") == 0) kc->embedded = true;
    if (i) sl_buf_putc(&buf, ',');
    sl_buf_puts(&buf, s->u.str.ptr);
  }
  sl_buf_putc(&buf, 0);
  kc->brokers = buf.data;
  if (n == 0) sl_diag_add(d, c->file, b->line, b->col, "kafka.brokers: must name at least one broker");
  if (kc->embedded && n != 1)
    sl_diag_add(d, c->file, b->line, b->col, "kafka.brokers: \"embedded\" cannot be combined with other brokers");
  kc->client_id = str_or_null(k, "client_id");
  kc->default_topic = str_or_null(k, "default_topic");
  kc->embedded_partitions = (int)get_int(k, "embedded_partitions");
  const sl_toml_value_t *rb = sl_toml_get(k, "resume_below");
  kc->resume_below = rb && rb->type == SL_TOML_FLOAT ? rb->u.f : 0.5;
  if (kc->resume_below <= 0 || kc->resume_below >= 1)
    sl_diag_add(d, c->file, rb->line, rb->col, "kafka.resume_below: must be between 0 and 1 (exclusive)");
  const sl_toml_value_t *p = sl_toml_get(k, "properties");
  if (p && p->type == SL_TOML_TABLE && p->u.tab.len) {
    kc->properties = calloc(p->u.tab.len, sizeof *kc->properties);
    kc->property_lines = calloc(p->u.tab.len, sizeof *kc->property_lines);
    for (size_t i = 0; kc->properties && kc->property_lines && i < p->u.tab.len; i++) {
      const sl_toml_kv_t *kv = &p->u.tab.items[i];
      sl_buf_t v = {0};
      const sl_toml_value_t *x = kv->value;
      char tmp[64];
      if (x->type == SL_TOML_STRING) sl_buf_append(&v, x->u.str.ptr, x->u.str.len);
      else if (x->type == SL_TOML_INTEGER) snprintf(tmp, sizeof tmp, "%lld", (long long)x->u.i), sl_buf_puts(&v, tmp);
      else if (x->type == SL_TOML_FLOAT) snprintf(tmp, sizeof tmp, "%g", x->u.f), sl_buf_puts(&v, tmp);
      else if (x->type == SL_TOML_BOOL) sl_buf_puts(&v, x->u.b ? "true" : "false");
      sl_buf_putc(&v, 0);
      kc->properties[i].key = strdup(kv->key);
      kc->properties[i].value = v.data;
      kc->property_lines[i] = kv->line;
      kc->n_properties++;
    }
  }
  if (kc->default_topic) {
    sl_topic_tmpl_t *t = NULL;
    char err[256];
    if (sl_topic_tmpl_compile(kc->default_topic, &t, err, sizeof err) || !sl_topic_tmpl_is_fixed(t)) {
      const sl_toml_value_t *v = sl_toml_get(k, "default_topic");
      sl_diag_add(d, c->file, v->line, v->col, "kafka.default_topic: %s",
                  t ? "must be a fixed topic name, not a template" : err);
    }
    sl_topic_tmpl_free(t);
  }
}

static void build_routes(sl_config_t *c, const sl_toml_value_t *routes, sl_diag_t *d) {
  if (!routes || routes->type != SL_TOML_ARRAY || !routes->u.arr.len) return;
  c->routes = calloc(routes->u.arr.len, sizeof *c->routes);
  if (!c->routes) return;
  for (size_t i = 0; i < routes->u.arr.len; i++) {
    const sl_toml_value_t *t = routes->u.arr.items[i];
    sl_route_t *r = &c->routes[c->n_routes++];
    char err[256];
    const sl_toml_value_t *m = sl_toml_get(t, "match");
    if (sl_tag_pattern_compile(m->u.str.ptr, &r->match, err, sizeof err))
      sl_diag_add(d, c->file, m->line, m->col, "route[%zu].match: %s", i, err);
    const sl_toml_value_t *tp = sl_toml_get(t, "topic");
    r->topic_text = strdup(tp->u.str.ptr);
    if (sl_topic_tmpl_compile(tp->u.str.ptr, &r->topic, err, sizeof err))
      sl_diag_add(d, c->file, tp->line, tp->col, "route[%zu].topic: %s", i, err);
    const sl_toml_value_t *f = sl_toml_get(t, "format");
    r->format = strcmp(f->u.str.ptr, "msgpack") == 0 ? SL_FORMAT_MSGPACK : SL_FORMAT_JSON;
    const sl_toml_value_t *key = sl_toml_get(t, "key");
    if (key && sl_field_path_parse(key->u.str.ptr, &r->key))
      sl_diag_add(d, c->file, key->line, key->col, "route[%zu].key: \"%s\" is not a field path like \"user.id\"",
                  i, key->u.str.ptr);
    r->tag_key = str_or_null(t, "tag_key");
    r->time_key = str_or_null(t, "time_key");
    const sl_toml_value_t *tf = sl_toml_get(t, "time_format");
    r->time_rfc3339 = strcmp(tf->u.str.ptr, "rfc3339") == 0;
  }
}

/* librdkafka judges its own properties; its message goes out with the
 * property's line.  Runs even when other keys are wrong, so that every error
 * is listed at once. */
static void check_kafka_properties(const sl_toml_value_t *doc, const char *file, sl_diag_t *d) {
  const sl_toml_value_t *p = sl_toml_get(sl_toml_get(doc, "kafka"), "properties");
  if (!p || p->type != SL_TOML_TABLE) return;
  rd_kafka_conf_t *probe = rd_kafka_conf_new();
  for (size_t i = 0; i < p->u.tab.len; i++) {
    const sl_toml_kv_t *kv = &p->u.tab.items[i];
    char value[64], err[512];
    const char *v = value;
    switch (kv->value->type) {
    case SL_TOML_STRING: v = kv->value->u.str.ptr; break;
    case SL_TOML_INTEGER: snprintf(value, sizeof value, "%lld", (long long)kv->value->u.i); break;
    case SL_TOML_FLOAT: snprintf(value, sizeof value, "%g", kv->value->u.f); break;
    case SL_TOML_BOOL: v = kv->value->u.b ? "true" : "false"; break;
    default: continue; /* the schema reports the type */
    }
    if (rd_kafka_conf_set(probe, kv->key, v, err, sizeof err) != RD_KAFKA_CONF_OK)
      sl_diag_add(d, file, kv->line, kv->col, "kafka.properties.\"%s\": %s", kv->key, err);
    /* Acks to clients rest on a delivery report for every record from a
     * broker that has it in all in-sync replicas. */
    else if (strcmp(kv->key, "delivery.report.only.error") == 0 && strcmp(v, "true") == 0)
      sl_diag_add(d, file, kv->line, kv->col,
                  "kafka.properties.\"%s\": sluice acks a chunk only on its records' delivery reports; "
                  "this setting would leave every chunk unacked",
                  kv->key);
    else if ((strcmp(kv->key, "acks") == 0 || strcmp(kv->key, "request.required.acks") == 0) &&
             strcmp(v, "all") != 0 && strcmp(v, "-1") != 0)
      sl_diag_add(d, file, kv->line, kv->col,
                  "kafka.properties.\"%s\": must be \"all\" (or -1): sluice acks a chunk to its client only "
                  "once Kafka has it in every in-sync replica",
                  kv->key);
  }
  rd_kafka_conf_destroy(probe);
}

int sl_config_load(const char *path, sl_config_t **out, sl_diag_t *d) {
  char err[1024];
  sl_config_t *c = calloc(1, sizeof *c);
  if (!c) return SL_ENOMEM;
  c->file = strdup(path);
  int r = sl_toml_parse_file(path, &c->doc, err, sizeof err);
  if (r) {
    sl_diag_add_line(d, err);
    goto fail;
  }
  size_t before = d->n;
  sl_schema_validate(&sl_schema_root, c->doc, path, d);
  check_kafka_properties(c->doc, path, d);
  if (d->n > before) {
    r = SL_ECONFIG;
    goto fail;
  }
  const sl_toml_value_t *log = sl_toml_get(c->doc, "log");
  c->log_level = (sl_log_level_t)sl_log_level_parse(sl_toml_get(log, "level")->u.str.ptr);
  c->log_json = strcmp(sl_toml_get(log, "format")->u.str.ptr, "json") == 0;
  const sl_toml_value_t *http = sl_toml_get(c->doc, "http");
  c->http_enabled = get_bool(http, "enabled");
  sl_addr_parse(sl_toml_get(http, "listen")->u.str.ptr, &c->http_listen, NULL, 0);
  build_forward(c, path_get(c->doc, "input", "forward", NULL), d);
  const sl_toml_value_t *k = sl_toml_get(c->doc, "kafka");
  if (k) build_kafka(c, k, d);
  build_routes(c, sl_toml_get(c->doc, "route"), d);
  if (d->n > before) {
    r = SL_ECONFIG;
    goto fail;
  }
  *out = c;
  return 0;
fail:
  sl_config_free(c);
  return r ? r : SL_ECONFIG;
}

void sl_config_free(sl_config_t *c) {
  if (!c) return;
  sl_forward_config_t *f = &c->forward;
  free(f->listen);
  free(f->tag_prefix);
  free(f->source_address_key);
  free(f->source_hostname_key);
  free(f->shared_key);
  free(f->self_hostname);
  for (size_t i = 0; i < f->n_users; i++) {
    free(f->users[i].username);
    free(f->users[i].password);
  }
  free(f->users);
  sl_kafka_config_t *k = &c->kafka;
  free(k->brokers);
  free(k->client_id);
  free(k->default_topic);
  for (size_t i = 0; i < k->n_properties; i++) {
    free(k->properties[i].key);
    free(k->properties[i].value);
  }
  free(k->properties);
  free(k->property_lines);
  for (size_t i = 0; i < c->n_routes; i++) sl_route_free(&c->routes[i]);
  free(c->routes);
  sl_toml_free(c->doc);
  free(c->file);
  free(c);
}
