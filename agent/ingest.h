/* The ingest stage between the forward input and Kafka: routes each record
 * by tag, encodes it (JSON or msgpack, with injected tag/time/peer keys) and
 * hands it to the producer, or to stdout in print mode; ties acks to
 * delivery and drives backpressure.  Loop thread only. */
#ifndef SL_INGEST_H
#define SL_INGEST_H

#include <stdbool.h>
#include <uv.h>

#include "config.h"
#include "forward_server.h"

typedef struct sl_kafka_producer sl_kafka_producer_t;

int sl_ingest_new(const sl_config_t *cfg, sl_kafka_producer_t *producer, sl_ingest_t **out);
void sl_ingest_free(sl_ingest_t *in);

/* The server whose connections are paused when the producer is full. */
void sl_ingest_set_server(sl_ingest_t *in, sl_fwd_server_t *server);

/* Takes one decoded message.  `tracker` (may be NULL: no ack wanted) is held
 * for each record produced and sealed when the message is fully handed on.
 * Returns 0 when the message was fully handed on (the caller frees frame and
 * msg), or 1 when the producer is full: ingest then took *frame and *msg
 * (the caller must not free them), paused the server and finishes the
 * message when the producer drains. */
int sl_ingest_submit(sl_ingest_t *in, const sl_fwd_peer_t *peer, sl_fwd_frame_t *frame,
                     sl_fwd_message_t *msg, sl_ack_tracker_t *tracker);

/* Called by the producer as its queue drains: retries stalled messages and
 * resumes the server below the low-water mark. */
void sl_ingest_on_drain(sl_ingest_t *in);

/* Messages stalled waiting for queue space. */
size_t sl_ingest_stalled(const sl_ingest_t *in);

#endif
