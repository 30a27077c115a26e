/* The agent's counters and gauges, declared once in a table that also gives
 * their Prometheus names, labels and help, and their text exposition.
 * Updated and read on the loop thread only. */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stdint.h>

#include "buf.h"

/* X(ID, name, labels, type, help) */
#define SL_METRICS_MAP(X)                                                                          \
  X(FWD_CONN_ACCEPTED, "sluice_forward_connections_total", "", "counter",                           \
    "Forward connections accepted.")                                                               \
  X(FWD_CONN_REJECTED, "sluice_forward_connections_rejected_total", "", "counter",                  \
    "Forward connections closed at accept because max_connections was reached.")                   \
  X(FWD_CONN_IDLE, "sluice_forward_connections_idle_closed_total", "", "counter",                   \
    "Forward connections closed after idle_timeout.")                                              \
  X(FWD_CONN_ACTIVE, "sluice_forward_connections", "", "gauge", "Open forward connections.")       \
  X(FWD_MESSAGES, "sluice_forward_messages_total", "", "counter",                                   \
    "Forward messages (requests) decoded.")                                                        \
  X(FWD_RECORDS, "sluice_forward_records_total", "", "counter", "Records received.")               \
  X(FWD_BYTES, "sluice_forward_bytes_total", "", "counter", "Bytes read from forward clients.")    \
  X(FWD_ACKS, "sluice_forward_acks_total", "", "counter", "Acks sent.")                            \
  X(FWD_ERR_MSGPACK, "sluice_forward_errors_total", "reason=\"malformed_msgpack\"", "counter",      \
    "Forward messages rejected, by reason.")                                                       \
  X(FWD_ERR_TOOBIG, "sluice_forward_errors_total", "reason=\"chunk_size_limit\"", "counter", "")  \
  X(FWD_ERR_DEPTH, "sluice_forward_errors_total", "reason=\"max_depth\"", "counter", "")          \
  X(FWD_ERR_NOTARRAY, "sluice_forward_errors_total", "reason=\"not_array\"", "counter", "")       \
  X(FWD_ERR_BADTAG, "sluice_forward_errors_total", "reason=\"bad_tag\"", "counter", "")           \
  X(FWD_ERR_BADMODE, "sluice_forward_errors_total", "reason=\"bad_mode\"", "counter", "")         \
  X(FWD_ERR_BADOPTION, "sluice_forward_errors_total", "reason=\"bad_option\"", "counter", "")     \
  X(FWD_ERR_BADGZIP, "sluice_forward_errors_total", "reason=\"bad_gzip\"", "counter", "")         \
  X(FWD_ERR_BOMB, "sluice_forward_errors_total", "reason=\"decompression_size_limit\"", "counter", \
    "")                                                                                            \
  X(FWD_ERR_BADENTRY, "sluice_forward_errors_total", "reason=\"invalid_event\"", "counter", "")   \
  X(FWD_INVALID_EVENTS, "sluice_forward_invalid_events_skipped_total", "", "counter",               \
    "Entries skipped because their time or record had the wrong type (skip_invalid_event).")      \
  X(FWD_SIZE_MISMATCH, "sluice_forward_size_mismatch_total", "", "counter",                         \
    "Messages whose size option differed from their entry count.")                                 \
  X(FWD_LARGE, "sluice_forward_large_messages_total", "", "counter",                                \
    "Messages larger than chunk_size_warn_limit (accepted).")                                      \
  X(FWD_SIGNAL_DROPPED, "sluice_forward_signal_dropped_total", "", "counter",                       \
    "Messages with fluent_signal other than 0 (metrics, traces) acked and dropped.")               \
  X(FWD_AUTH_FAIL_KEY, "sluice_forward_auth_failures_total", "reason=\"shared_key mismatch\"",      \
    "counter", "Handshakes refused, by reason.")                                                   \
  X(FWD_AUTH_FAIL_USER, "sluice_forward_auth_failures_total",                                      \
    "reason=\"username/password mismatch\"", "counter", "")                                       \
  X(FWD_AUTH_FAIL_PING, "sluice_forward_auth_failures_total", "reason=\"invalid ping message\"",    \
    "counter", "")                                                                                 \
  X(FWD_HEARTBEATS, "sluice_forward_heartbeats_total", "", "counter", "UDP heartbeats answered.")  \
  X(FWD_PAUSES, "sluice_forward_pauses_total", "", "counter",                                       \
    "Times reading from forward clients was paused because the producer queue was full.")         \
  X(FWD_PAUSED, "sluice_forward_paused", "", "gauge", "1 while reading is paused (backpressure).") \
  X(FWD_WRITE_BLOCKED, "sluice_forward_unread_replies_pauses_total", "", "counter",                 \
    "Times a connection stopped being read because 1 MiB of its acks waited unread.")              \
  X(ROUTE_UNMATCHED, "sluice_route_unmatched_records_total", "", "counter",                         \
    "Records whose tag matched no route and no default_topic: dropped.")                           \
  X(ROUTE_TEMPLATE, "sluice_route_template_errors_total", "", "counter",                            \
    "Records dropped because the route's topic template or key could not be filled.")             \
  X(KAFKA_PRODUCED, "sluice_kafka_produced_total", "", "counter", "Records handed to librdkafka.") \
  X(KAFKA_DELIVERED, "sluice_kafka_delivered_total", "", "counter",                                 \
    "Records Kafka acknowledged.")                                                                 \
  X(KAFKA_FAILED, "sluice_kafka_delivery_failed_total", "", "counter",                              \
    "Records Kafka failed for good (their chunk is not acked, so the client re-sends).")           \
  X(KAFKA_REJECTED, "sluice_kafka_produce_rejected_total", "", "counter",                           \
    "Records librdkafka refused at produce time (e.g. larger than message.max.bytes).")            \
  X(KAFKA_QUEUE_FULL, "sluice_kafka_queue_full_total", "", "counter",                               \
    "Times librdkafka's queue was full.")                                                          \
  X(KAFKA_INFLIGHT, "sluice_kafka_inflight_records", "", "gauge",                                   \
    "Records produced and not yet acknowledged by Kafka.")                                         \
  X(ACK_PENDING, "sluice_forward_pending_acks", "", "gauge", "Chunks waiting for Kafka before their ack.") \
  X(PRINTED, "sluice_print_records_total", "", "counter",                                           \
    "Records written to stdout (print mode, no [kafka] section).")

typedef enum {
#define SL_METRIC_ENUM(id, name, labels, type, help) SL_M_##id,
  SL_METRICS_MAP(SL_METRIC_ENUM)
#undef SL_METRIC_ENUM
      SL_M__COUNT
} sl_metric_id_t;

extern uint64_t sl_metrics[SL_M__COUNT];

#define sl_metric_inc(id) (sl_metrics[SL_M_##id]++)
#define sl_metric_add(id, n) (sl_metrics[SL_M_##id] += (n))
#define sl_metric_set(id, v) (sl_metrics[SL_M_##id] = (v))
#define sl_metric_dec(id) (sl_metrics[SL_M_##id]--)

/* Appends the Prometheus text exposition of every metric. */
int sl_metrics_render(sl_buf_t *out);

#endif
