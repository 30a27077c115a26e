/* The [kafka] section: its option table, the struct it fills, and the
 * check of [kafka.properties] against librdkafka itself.  Main thread, at
 * config load. */
#ifndef SL_KAFKA_CONF_H
#define SL_KAFKA_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config_schema.h"

typedef struct {
  bool enabled;  /* the [kafka] section is present (set by its finish hook) */
  bool embedded; /* brokers = "embedded" */
  sl_str_list_t brokers;
  char *bootstrap; /* owned: brokers joined with commas */
  char *client_id;
  char *default_topic;
  int64_t embedded_partitions;
  double resume_below;
  sl_kv_list_t properties; /* verbatim for librdkafka */
} sl_kafka_conf_t;

extern const sl_section_t sl_kafka_section;

/* Fills a librdkafka conf: `defaults` (key, value pairs, NULL-terminated
 * list of pairs) first, then client.id and [kafka.properties] on top.
 * Returns NULL with one line per refused property in `d` (named with its
 * line in `file`). */
struct rd_kafka_conf_s;
struct rd_kafka_conf_s *sl_kafka_conf_build(const sl_kafka_conf_t *k, const char *const *defaults, const char *file,
                                            sl_diag_t *d);

/* Whether a client made from conf emits statistics (statistics.interval.ms
 * above 0), which kafka/kafka_stats.h reads. */
bool sl_kafka_conf_stats_enabled(const struct rd_kafka_conf_s *conf);

#endif
