/* A Kafka consumer-group member on the loop, for the jobs stage: librdkafka
 * configured from [kafka] (and a job's own properties), subscribed to a
 * list of topics, served through the Kafka bridge.  It knows nothing of who
 * uses it: records, assignments with each partition's committed offset and
 * commit metadata, revocations, commit results and the end of its close go
 * up through the callbacks it was given.  Offsets are committed only when
 * the owner says so (sl_kafka_consumer_commit), each with its metadata (the
 * job's watermark, jobs/watermark.h).  Loop thread only: librdkafka's own
 * threads never call into sluice, and no call here waits on the network. */
#ifndef SL_KAFKA_CONSUMER_H
#define SL_KAFKA_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config_schema.h"
#include "core/metrics.h"
#include "kafka/kafka_bridge.h"
#include "kafka/kafka_conf.h"

typedef struct sl_kafka_consumer sl_kafka_consumer_t;
struct rd_kafka_message_s;

/* No committed offset (RD_KAFKA_OFFSET_INVALID). */
#define SL_KAFKA_OFFSET_NONE (-1001)

/* Records handed up per serve pass at most; past it the consumer yields the
 * loop and goes on in the next iteration, so that one busy consumer cannot
 * hold the loop for long. */
#define SL_KAFKA_CONSUMER_SERVE_MAX 10000

/* One partition with an offset and commit metadata.
 * In on_assign: `offset` is the group's committed offset (the next record
 * the consumer reads) or SL_KAFKA_OFFSET_NONE, and metadata/metadata_len
 * what was committed with it (NULL, 0 when nothing was, or when it could
 * not be fetched: see sl_kafka_consumer_new); all borrowed for the call.
 * In on_revoke: only topic and partition mean anything.
 * To sl_kafka_consumer_commit: `offset` is the next record to read after a
 * restart (the last one done + 1), metadata (may be NULL) is copied. */
typedef struct {
  const char *topic;
  int32_t partition;
  int64_t offset;
  const void *metadata;
  size_t metadata_len;
} sl_kafka_partition_t;

/* One record, borrowed for the on_records call.  `msg` is librdkafka's
 * message, for what this struct leaves out (headers:
 * rd_kafka_message_headers). */
typedef struct {
  const char *topic;
  int32_t partition;
  int64_t offset;
  int64_t timestamp_ms; /* -1 when the record has none */
  const void *key;      /* NULL when the record has none */
  size_t key_len;
  const void *value; /* NULL for a tombstone */
  size_t value_len;
  const struct rd_kafka_message_s *msg;
} sl_kafka_record_t;

typedef struct {
  /* Records in partition order as fetched, at most SL_KAFKA_CONSUMER_SERVE_MAX
   * per call.  Never after on_revoke of their partition. */
  void (*on_records)(void *arg, const sl_kafka_record_t *records, size_t n);
  /* Partitions now this consumer's, with their committed offsets and
   * metadata; the first of their records follows.  n may be 0 (an empty
   * assignment is news too: the group has settled). */
  void (*on_assign)(void *arg, const sl_kafka_partition_t *parts, size_t n);
  /* Partitions no longer this consumer's (a rebalance, an error of the
   * group, or the close): no record of theirs follows.  `lost`: they were
   * taken without a clean hand-over (the session expired), so another member
   * may own them already and a commit of theirs may fail. */
  void (*on_revoke)(void *arg, const sl_kafka_partition_t *parts, size_t n, bool lost);
  /* Once, when librdkafka reports a fatal error.  May be NULL. */
  void (*on_fatal)(void *arg, const char *reason);
  void *arg;
} sl_kafka_consumer_cbs_t;

/* Creates the consumer and subscribes it to `topics` (n_topics names, each
 * borrowed) as a member of `group_id` (borrowed).  Properties: consumer
 * defaults (enable.auto.commit=false and enable.auto.offset.store=false:
 * only the owner's commits count; auto.offset.reset=earliest: a new job's
 * group starts from the oldest record Kafka holds, so a first deployment
 * aggregates what is retained rather than only what arrives after it),
 * then client.id and [kafka.properties] from `k`, then `properties` (may be
 * NULL; e.g. [job.properties]) on top, so every default can be overridden.
 * On failure returns SL_EKAFKA (a refused property, or librdkafka could not
 * start the client) or SL_ENOMEM with one line per problem in `d`, and
 * *out is untouched.  `cbs` is copied; loop, bridge and metrics are
 * borrowed and must outlive the consumer. */
int sl_kafka_consumer_new(uv_loop_t *loop, sl_kafka_bridge_t *bridge, sl_metrics_t *metrics,
                          const sl_kafka_conf_t *k, const char *bootstrap, const char *file,
                          const sl_kv_list_t *properties, const char *group_id,
                          const char *const *topics, size_t n_topics,
                          const sl_kafka_consumer_cbs_t *cbs, sl_kafka_consumer_t **out,
                          sl_diag_t *d);

/* Commits parts[0..n) (offsets and metadata; copied) to the group,
 * asynchronously.  Returns 0, and on_committed(arg, err) comes once: err 0
 * when Kafka stored every partition's offset, SL_EKAFKA when it did not
 * (logged and counted here), SL_ECANCELED when the consumer closed first.
 * Returns SL_ECANCELED once closing, SL_ENOMEM, or SL_EKAFKA when
 * librdkafka refused the request; on_committed is then not called. */
int sl_kafka_consumer_commit(sl_kafka_consumer_t *c, const sl_kafka_partition_t *parts, size_t n,
                             void (*on_committed)(void *arg, int err), void *arg);

/* Stops fetching from every assigned partition, and from partitions
 * assigned later, until sl_kafka_consumer_resume: for backpressure.
 * Records already fetched may still come.  Idempotent. */
void sl_kafka_consumer_pause(sl_kafka_consumer_t *c);
void sl_kafka_consumer_resume(sl_kafka_consumer_t *c);
/* Pauses or resumes fetching one partition only (a partition far ahead of
 * the others).  A partition paused so stays paused through
 * sl_kafka_consumer_resume, and one resumed while the whole consumer is
 * paused waits for that resume; a revocation forgets it.  0, or -1 (logged)
 * when librdkafka refuses or out of memory. */
int sl_kafka_consumer_pause_partition(sl_kafka_consumer_t *c, const char *topic, int32_t partition, bool pause);

/* Partitions assigned now. */
size_t sl_kafka_consumer_assigned(const sl_kafka_consumer_t *c);

/* The partition's low and high watermarks (first offset, offset after the
 * last record) as the latest fetch response told, without asking the
 * network.  0, or -1 when not known yet (nothing fetched). */
int sl_kafka_consumer_offsets(const sl_kafka_consumer_t *c, const char *topic, int32_t partition, int64_t *low,
                              int64_t *high);

/* Leaves the group asynchronously (rd_kafka_consumer_close_queue): the
 * assignment is revoked (on_revoke, then no more records), commits still
 * in flight report SL_ECANCELED if Kafka has not answered, and then
 * on_closed(arg) comes once, from a later loop iteration (never from inside
 * this call).  Call once; safe from inside the consumer's callbacks. */
void sl_kafka_consumer_close(sl_kafka_consumer_t *c, void (*on_closed)(void *arg), void *arg);

/* Detaches from the bridge and destroys the client (joining librdkafka's
 * threads; the group was left by the close).  Call after on_closed, or
 * when the loop will not run again.  Accepts NULL. */
void sl_kafka_consumer_free(sl_kafka_consumer_t *c);

#endif
