/* The [kafka] option table, bound to sl_kafka_conf_t, its cross-option
 * checks, and the librdkafka conf built from it.  [kafka.properties] are
 * judged by librdkafka itself at validation, so a bad property is reported
 * with its line beside every other error.  Main thread. */
#include "kafka/kafka_conf.h"

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Acks to clients rest on a delivery report for every record, from a broker
 * that has it in all in-sync replicas: properties that break that are
 * refused. */
static const char *refused_reason(const char *key, const char *v) {
  if (strcmp(key, "delivery.report.only.error") == 0 && strcmp(v, "true") == 0)
    return "sluice acks a chunk only on its records' delivery reports; this setting would leave every chunk "
           "unacked";
  if ((strcmp(key, "acks") == 0 || strcmp(key, "request.required.acks") == 0) && strcmp(v, "all") != 0 &&
      strcmp(v, "-1") != 0)
    return "must be \"all\" (or -1): sluice acks a chunk to its client only once Kafka has it in every "
           "in-sync replica";
  return NULL;
}

static void check_properties(const sl_toml_value_t *p, const char *file, const char *path, sl_diag_t *d) {
  if (p->type != SL_TOML_TABLE) return; /* the schema reports the type */
  rd_kafka_conf_t *probe = rd_kafka_conf_new();
  for (size_t i = 0; i < p->u.tab.len; i++) {
    const sl_toml_kv_t *kv = &p->u.tab.items[i];
    char value[64], err[512];
    const char *v = value;
    switch (kv->value->type) {
    case SL_TOML_STRING: v = kv->value->u.str.ptr; break;
    case SL_TOML_INTEGER: snprintf(value, sizeof value, "%lld", (long long)kv->value->u.i); break;
    case SL_TOML_FLOAT: snprintf(value, sizeof value, "%.17g", kv->value->u.f); break;
    case SL_TOML_BOOL: v = kv->value->u.b ? "true" : "false"; break;
    default: continue; /* the schema reports the type */
    }
    const char *why = NULL;
    if (rd_kafka_conf_set(probe, kv->key, v, err, sizeof err) != RD_KAFKA_CONF_OK)
      why = err;
    else
      why = refused_reason(kv->key, v);
    if (why) sl_diag_add(d, file, kv->line, kv->col, "%s.\"%s\": %s", path, kv->key, why);
  }
  rd_kafka_conf_destroy(probe);
}

static const sl_opt_t kafka_opts[] = {
    {.name = "brokers", .type = SL_OPT_STRING_LIST, .flags = SL_OPT_REQUIRED, .offset = offsetof(sl_kafka_conf_t, brokers),
     .help = "Bootstrap brokers (`host:port`), or `\"embedded\"` for an in-process mock cluster that keeps "
             "nothing across restarts (demo and trials only)."},
    {.name = "client_id", .type = SL_OPT_STRING, .def = "\"sluice\"", .offset = offsetof(sl_kafka_conf_t, client_id),
     .help = "Kafka client.id."},
    {.name = "default_topic", .type = SL_OPT_STRING, .offset = offsetof(sl_kafka_conf_t, default_topic),
     .help = "Topic for records whose tag matches no route. Unset: such records are counted and dropped."},
    {.name = "embedded_partitions", .type = SL_OPT_INT, .def = "3", .min = 1, .max = 64,
     .offset = offsetof(sl_kafka_conf_t, embedded_partitions),
     .help = "Partitions of each topic created in the embedded cluster."},
    {.name = "resume_below", .type = SL_OPT_FLOAT, .def = "0.5", .unit = "fraction",
     .offset = offsetof(sl_kafka_conf_t, resume_below),
     .help = "After the producer queue filled up, reading from clients resumes when it is below this fraction "
             "of `queue.buffering.max.messages`."},
    {.name = "properties", .type = SL_OPT_MAP, .offset = offsetof(sl_kafka_conf_t, properties),
     .check = check_properties,
     .help = "librdkafka properties passed verbatim (security.protocol, sasl.*, ssl.*, compression.type, "
             "linger.ms, ...). They override the defaults: acks=all, enable.idempotence=true, "
             "compression.type=lz4, queue.buffering.max.messages=100000, queue.buffering.max.kbytes=262144, "
             "message.timeout.ms=0 (never give up), statistics.interval.ms=5000 (read for "
             "sluice_kafka_brokers_up, the producer queue gauges and /readyz; 0 turns them off). `acks` other than all and `delivery.report.only.error = "
             "true` are refused: acks to clients depend on them."},
    {0},
};

/* Kafka's own rules for a topic name; NULL when `name` follows them. */
static const char *topic_name_problem(const char *name) {
  if (strstr(name, "${")) return "must be a fixed topic name, not a template";
  size_t n = strlen(name);
  if (n == 0 || n > 249) return "a topic name has 1 to 249 characters";
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return "\".\" and \"..\" are not topic names";
  if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
    return "topic names use only letters, digits, '.', '_' and '-'";
  return NULL;
}

static void kafka_finish(void *conf, sl_bind_ctx_t *ctx) {
  sl_kafka_conf_t *k = conf;
  k->enabled = true;
  size_t len = 1;
  for (size_t i = 0; i < k->brokers.n; i++) {
    len += strlen(k->brokers.items[i]) + 1;
    if (strcmp(k->brokers.items[i], "embedded") == 0) k->embedded = true;
  }
  if (!(k->bootstrap = calloc(1, len))) return;
  for (size_t i = 0; i < k->brokers.n; i++) {
    if (i) strcat(k->bootstrap, ",");
    strcat(k->bootstrap, k->brokers.items[i]);
  }
  if (k->brokers.n == 0) sl_bind_error(ctx, &k->brokers, "must name at least one broker");
  if (k->embedded && k->brokers.n != 1)
    sl_bind_error(ctx, &k->brokers, "\"embedded\" cannot be combined with other brokers");
  if (k->resume_below <= 0 || k->resume_below >= 1)
    sl_bind_error(ctx, &k->resume_below, "must be between 0 and 1 (exclusive)");
  const char *why = k->default_topic ? topic_name_problem(k->default_topic) : NULL;
  if (why) sl_bind_error(ctx, &k->default_topic, "%s", why);
}

static void kafka_release(void *conf) {
  sl_kafka_conf_t *k = conf;
  free(k->bootstrap);
  k->bootstrap = NULL;
}

const sl_section_t sl_kafka_section = {
    .name = "kafka",
    .opts = kafka_opts,
    .help = "The Kafka cluster. Without this section, the forward input writes records to stdout as JSON "
            "lines (print mode).",
    .size = sizeof(sl_kafka_conf_t),
    .finish = kafka_finish,
    .release = kafka_release,
};

rd_kafka_conf_t *sl_kafka_conf_build(const sl_kafka_conf_t *k, const char *const *defaults, const char *file,
                                     sl_diag_t *d) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char err[512];
  for (size_t i = 0; defaults && defaults[i]; i += 2)
    rd_kafka_conf_set(conf, defaults[i], defaults[i + 1], err, sizeof err);
  if (k->client_id) rd_kafka_conf_set(conf, "client.id", k->client_id, err, sizeof err);
  size_t before = d->n;
  for (size_t i = 0; i < k->properties.n; i++) {
    const sl_kv_t *p = &k->properties.items[i];
    if (rd_kafka_conf_set(conf, p->key, p->value, err, sizeof err) != RD_KAFKA_CONF_OK)
      sl_diag_add(d, file, p->line, 1, "kafka.properties.\"%s\": %s", p->key, err);
  }
  if (d->n > before) {
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  return conf;
}

bool sl_kafka_conf_stats_enabled(const rd_kafka_conf_t *conf) {
  char v[32];
  size_t n = sizeof v;
  return rd_kafka_conf_get(conf, "statistics.interval.ms", v, &n) == RD_KAFKA_CONF_OK && strtol(v, NULL, 10) > 0;
}
