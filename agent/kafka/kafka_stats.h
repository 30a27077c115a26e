/* librdkafka's statistics (statistics.interval.ms, a JSON document per
 * client) turned into what an operator watches: the brokers each Kafka
 * client of the process has a connection UP to, and a producer's queue.
 *
 * Every client (the ingest producers, each job's consumer, the sinks'
 * producer) reports here from its own loop thread; the process's view is
 * the union of the clients': sluice_kafka_brokers_up (distinct host:port in
 * state UP), and the Kafka part of /readyz.  Producers' queues add up in
 * sluice_kafka_producer_queue_messages and _bytes.
 *
 * Any thread: one mutex guards the clients' views (a report every few
 * seconds per client).  Pure: the statistics are text, read with jansson. */
#ifndef SL_KAFKA_STATS_H
#define SL_KAFKA_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/metrics.h"

#define SL_KAFKA_STATS_MAX_BROKERS 64
#define SL_KAFKA_STATS_NAME_MAX 128 /* host:port, NUL included */

/* One statistics document, as far as sluice reads it. */
typedef struct {
  size_t n_known; /* distinct host:port of brokers (not librdkafka's internal one) */
  size_t n_up;    /* of them, those with a connection in state UP */
  char known[SL_KAFKA_STATS_MAX_BROKERS][SL_KAFKA_STATS_NAME_MAX];
  char up[SL_KAFKA_STATS_MAX_BROKERS][SL_KAFKA_STATS_NAME_MAX];
  int64_t msg_cnt;  /* messages in the producer's queues */
  int64_t msg_size; /* their bytes */
} sl_kafka_stats_t;

/* Reads a statistics document.  0, or SL_ESYNTAX when it is not a JSON
 * object with a "brokers" object (out is then zeroed).  Brokers past
 * SL_KAFKA_STATS_MAX_BROKERS, or with longer names, are left out. */
int sl_kafka_stats_parse(const char *json, size_t len, sl_kafka_stats_t *out);

typedef struct sl_kafka_stats_client sl_kafka_stats_client_t;

/* A client joins when it is created (its statistics enabled); `name`
 * (copied) names it in log lines; a producer's queue counts in the queue
 * gauges.  `metrics` is borrowed and must outlive the client.  NULL on
 * ENOMEM (the client then goes unwatched). */
sl_kafka_stats_client_t *sl_kafka_stats_join(sl_metrics_t *metrics, const char *name, bool producer);

/* The client's latest statistics document (borrowed for the call).  A
 * document that cannot be read is logged once per client and ignored.
 * Does nothing when c is NULL (the client could not join). */
void sl_kafka_stats_report(sl_kafka_stats_client_t *c, const char *json, size_t len);

/* The client is gone: its view leaves the union, its queue the gauges.
 * Accepts NULL. */
void sl_kafka_stats_leave(sl_kafka_stats_client_t *c);

/* 1 when no client has joined, when no statistics have come yet (until
 * then Kafka's reachability is the daemon's own answer: its start waits
 * for a metadata reply), or when some broker is UP for some client; else 0
 * with the reason in why ("Kafka: no broker reachable ..."). */
int sl_kafka_stats_ready(char *why, size_t len);

#endif
