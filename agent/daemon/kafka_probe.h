/* Readiness waits for Kafka: a short-lived client of its own asks the
 * cluster for its metadata, off the loop (librdkafka's metadata call
 * blocks), again every second until the cluster answers, then reports on
 * the loop.  It uses the [kafka] section's properties, so a cluster that
 * needs TLS or SASL is asked the way the producer asks it.  Main thread. */
#ifndef SL_KAFKA_PROBE_H
#define SL_KAFKA_PROBE_H

#include <uv.h>

#include "kafka/kafka_conf.h"

typedef struct sl_kafka_probe sl_kafka_probe_t;

/* Starts asking.  on_reachable(arg, brokers) is called once on `loop` when
 * the cluster answered (brokers: how many it named), unless the probe is
 * stopped first.  `k`, `bootstrap` and `file` are borrowed until then.
 * 0, or SL_ENOMEM / a uv error (on_reachable is then never called). */
int sl_kafka_probe_start(uv_loop_t *loop, const sl_kafka_conf_t *k, const char *bootstrap, const char *file,
                         void (*on_reachable)(void *arg, int brokers), void *arg, sl_kafka_probe_t **out);

/* Stops asking: on_reachable is not called after this.  The probe frees
 * itself on the loop once its last request (at most a second) has
 * returned; the loop keeps running until then.  Accepts NULL. */
void sl_kafka_probe_stop(sl_kafka_probe_t *p);

#endif
