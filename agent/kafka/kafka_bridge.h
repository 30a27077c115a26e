/* The bridge between librdkafka and one libuv loop, for any number of
 * librdkafka clients (producers now; consumers and sink producers later).
 *
 * librdkafka's own threads queue events (delivery reports, errors, logs,
 * rebalances, messages) on a client's queues.  Each attached queue writes a
 * byte to the bridge's pipe when it turns non-empty
 * (rd_kafka_queue_io_event_enable); a uv_poll on the pipe wakes the loop,
 * and the bridge calls every attachment's `serve` there, so every callback
 * of every client runs on the loop thread and none blocks it.  A 100 ms
 * safety-net poll serves them too and counts, in
 * sluice_kafka_missed_wakeups_total, the times it found events no wake-up
 * had announced, so a lost wake-up shows instead of hiding.
 *
 * The bridge knows nothing of who uses a client: news goes up through each
 * attachment's serve callback.  Loop thread only. */
#ifndef SL_KAFKA_BRIDGE_H
#define SL_KAFKA_BRIDGE_H

#include <stddef.h>
#include <uv.h>

#include "core/metrics.h"

typedef struct sl_kafka_bridge sl_kafka_bridge_t;
typedef struct sl_kafka_attach sl_kafka_attach_t;
struct rd_kafka_s;
struct rd_kafka_queue_s;
struct rd_kafka_conf_s;

/* NULL with *err set (-errno) when the pipe cannot be made.  `metrics` is
 * borrowed and must outlive the bridge. */
sl_kafka_bridge_t *sl_kafka_bridge_new(uv_loop_t *loop, sl_metrics_t *metrics, int *err);

/* Routes a client's log lines to sl_log on the loop (instead of librdkafka's
 * threads writing to stderr): call on the conf before rd_kafka_new, then
 * attach the client's main queue. */
void sl_kafka_bridge_prepare_conf(struct rd_kafka_conf_s *conf);

/* Serves `queue` (borrowed; the caller keeps its reference and must detach
 * before destroying it) whenever it has events: `serve(arg)` must serve
 * them all (rd_kafka_poll(rk, 0), rd_kafka_queue_poll until empty, ...) and
 * return how many it served.  When `rk` is given, its log queue is moved to
 * its main queue, so attach the main queue of a client prepared with
 * sl_kafka_bridge_prepare_conf.  Returns NULL on ENOMEM. */
sl_kafka_attach_t *sl_kafka_bridge_attach(sl_kafka_bridge_t *b, struct rd_kafka_s *rk,
                                          struct rd_kafka_queue_s *queue, size_t (*serve)(void *arg),
                                          void *arg);

/* Stops serving the queue (its wake-ups go nowhere); frees the attachment.
 * Safe from inside a serve callback. */
void sl_kafka_bridge_detach(sl_kafka_attach_t *a);

/* Closes the uv handles; on_closed (may be NULL) once they are closed.
 * Clients may stay attached through the close (their wake-ups then go
 * unserved); every one must detach before sl_kafka_bridge_free. */
void sl_kafka_bridge_close(sl_kafka_bridge_t *b, void (*on_closed)(void *arg), void *arg);
void sl_kafka_bridge_free(sl_kafka_bridge_t *b); /* accepts NULL */

#endif
