/* `brokers = "embedded"`: librdkafka's mock cluster (a real Kafka-protocol
 * broker on loopback, inside this process) for demos and trials.  Nothing
 * survives the process.  Main thread; the cluster runs its own thread. */
#ifndef SL_KAFKA_EMBEDDED_H
#define SL_KAFKA_EMBEDDED_H

#include <stddef.h>

typedef struct sl_kafka_embedded sl_kafka_embedded_t;

/* Starts a one-broker cluster; NULL with a reason in err on failure. */
sl_kafka_embedded_t *sl_kafka_embedded_new(int partitions, char *err, size_t errlen);
/* Its bootstrap servers (owned by the cluster). */
const char *sl_kafka_embedded_bootstrap(const sl_kafka_embedded_t *e);
/* Creates `topic` with the cluster's partition count (a topic a client
 * merely asks about is created with the mock's default instead). */
void sl_kafka_embedded_create_topic(sl_kafka_embedded_t *e, const char *topic);
void sl_kafka_embedded_free(sl_kafka_embedded_t *e); /* accepts NULL */

#endif
