/* The Kafka producer: librdkafka configured from [kafka] with safe
 * defaults, its delivery reports brought into the libuv loop through
 * rd_kafka_queue_io_event_enable and a uv_poll watcher, and the embedded
 * mock cluster for `brokers = "embedded"`.  Loop thread only (librdkafka's
 * own threads never call into sluice). */
#ifndef SL_KAFKA_PRODUCER_H
#define SL_KAFKA_PRODUCER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "forward_server.h"
#include "ingest.h"

/* Creates the producer (and the embedded cluster).  On failure returns
 * SL_EKAFKA or SL_ECONFIG with one line per problem in `d` (a bad property
 * is named with its config line). */
int sl_kafka_producer_new(uv_loop_t *loop, const sl_config_t *cfg, sl_kafka_producer_t **out,
                          sl_diag_t *d);

void sl_kafka_producer_set_ingest(sl_kafka_producer_t *p, sl_ingest_t *ingest);

/* Called once, on the loop thread, when librdkafka reports a fatal error
 * (after which it accepts no record). */
void sl_kafka_producer_on_fatal(sl_kafka_producer_t *p, void (*cb)(void *arg), void *arg);

/* Hands one record to librdkafka (copied).  `topic` NUL-terminated.  The
 * tracker (may be NULL) is held now and settled by the delivery report.
 * Returns 0, SL_EQUEUEFULL (nothing held: retry later), or SL_EKAFKA when
 * librdkafka refused the record for good (logged and counted here; the
 * tracker is marked failed). */
int sl_kafka_producer_send(sl_kafka_producer_t *p, const char *topic, const void *key, size_t key_len,
                           const void *value, size_t value_len, int64_t timestamp_ms, const char *tag,
                           size_t tag_len, sl_ack_tracker_t *tracker);

/* Creates the topic handle now, so its metadata is fetched before the first
 * record (fixed route topics at start). */
void sl_kafka_producer_prepare_topic(sl_kafka_producer_t *p, const char *topic);

/* Whether the queue is below the resume (low-water) mark. */
bool sl_kafka_producer_below_low_water(const sl_kafka_producer_t *p);

/* Records handed over and not yet reported. */
size_t sl_kafka_producer_inflight(const sl_kafka_producer_t *p);

/* Closes the poll watcher and timer; on_closed once they are closed.  Then
 * sl_kafka_producer_free flushes for at most flush_ms and destroys. */
void sl_kafka_producer_close(sl_kafka_producer_t *p, void (*on_closed)(void *), void *arg);
void sl_kafka_producer_free(sl_kafka_producer_t *p, int flush_ms);

/* The bootstrap servers in use (the embedded cluster's when embedded). */
const char *sl_kafka_producer_bootstrap(const sl_kafka_producer_t *p);

#endif
