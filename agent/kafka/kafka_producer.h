/* A Kafka producer on the loop: librdkafka configured from [kafka] with
 * defaults that make an acknowledged record durable (acks=all, idempotence,
 * never give up), served through the Kafka bridge.  It knows nothing of who
 * calls it: each record carries an opaque pointer that comes back in
 * on_delivery, and the owner hears of room in a full queue and of fatal
 * errors through the callbacks it gave.  Loop thread only (librdkafka's own
 * threads never call into sluice). */
#ifndef SL_KAFKA_PRODUCER_H
#define SL_KAFKA_PRODUCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config_schema.h"
#include "core/metrics.h"
#include "kafka/kafka_bridge.h"
#include "kafka/kafka_conf.h"

typedef struct sl_kafka_producer sl_kafka_producer_t;

typedef struct {
  /* Once per record accepted by sl_kafka_producer_send, on the loop:
   * err 0 when Kafka has it, else SL_EKAFKA (logged and counted here). */
  void (*on_delivery)(void *arg, void *msg_opaque, int err);
  /* After a send returned SL_EQUEUEFULL: once, when the records in flight
   * are back below resume_below of both queue.buffering.max.messages and
   * queue.buffering.max.kbytes (librdkafka refuses at either limit). */
  void (*on_room)(void *arg);
  /* Once, when librdkafka reports a fatal error (it takes no more records);
   * `reason` is valid during the call.  May be NULL. */
  void (*on_fatal)(void *arg, const char *reason);
  void *arg;
} sl_kafka_producer_cbs_t;

/* Creates the producer for `bootstrap` (borrowed) with `k`'s properties.
 * On failure returns SL_EKAFKA (a refused property, or librdkafka could not
 * start the client) or SL_ENOMEM, with one line per problem in `d`.  `cbs` is copied; the bridge and metrics are borrowed and must
 * outlive the producer. */
int sl_kafka_producer_new(sl_kafka_bridge_t *bridge, sl_metrics_t *metrics, const sl_kafka_conf_t *k,
                          const char *bootstrap, const char *file, const sl_kafka_producer_cbs_t *cbs,
                          sl_kafka_producer_t **out, sl_diag_t *d);

/* A record header (name NUL-terminated, value of value_len bytes). */
typedef struct {
  const char *name;
  const void *value;
  size_t value_len;
} sl_kafka_header_t;

/* Hands one record to librdkafka (copied).  `topic` NUL-terminated.
 * Returns 0 (on_delivery will report it), SL_EQUEUEFULL (nothing taken:
 * retry after on_room), or SL_EKAFKA when librdkafka refused the record for
 * good (logged and counted here; on_delivery will not be called). */
int sl_kafka_producer_send(sl_kafka_producer_t *p, const char *topic, const void *key, size_t key_len,
                           const void *value, size_t value_len, int64_t timestamp_ms,
                           const sl_kafka_header_t *header, void *msg_opaque);

/* A topic's handle, created now (so its metadata is fetched before the
 * first record) and kept by the producer; NULL when librdkafka refuses the
 * name or the producer's cache of handles is full.  Valid until the
 * producer is freed.  For fixed topics: sl_kafka_producer_send_to then
 * skips the look-up by name. */
/* As sl_kafka_producer_send, with n_headers headers (copied).
 * timestamp_ms < 0: now. */
int sl_kafka_producer_send_headers(sl_kafka_producer_t *p, const char *topic, const void *key, size_t key_len,
                                   const void *value, size_t value_len, int64_t timestamp_ms,
                                   const sl_kafka_header_t *headers, size_t n_headers, void *msg_opaque);

typedef struct sl_kafka_topic sl_kafka_topic_t;
sl_kafka_topic_t *sl_kafka_producer_topic(sl_kafka_producer_t *p, const char *topic);

/* sl_kafka_producer_send to a topic handle (not NULL). */
int sl_kafka_producer_send_to(sl_kafka_producer_t *p, sl_kafka_topic_t *topic, const void *key, size_t key_len,
                              const void *value, size_t value_len, int64_t timestamp_ms,
                              const sl_kafka_header_t *header, void *msg_opaque);

/* Gives up on every record not yet acknowledged (rd_kafka_purge of the
 * queue and of requests in flight) and serves their delivery reports now,
 * each with SL_EKAFKA, waiting at most 5 s for librdkafka to hand them back.
 * For the end of a drain that timed out. */
void sl_kafka_producer_purge(sl_kafka_producer_t *p);

/* Records handed over and not yet reported. */
size_t sl_kafka_producer_inflight(const sl_kafka_producer_t *p);

/* Detaches from the bridge, waits up to flush_ms for records in flight
 * (their reports are dropped: the loop is gone), destroys.  Accepts NULL. */
void sl_kafka_producer_free(sl_kafka_producer_t *p, int flush_ms);

#endif
