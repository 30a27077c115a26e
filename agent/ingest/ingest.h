/* The ingest stage: the forward input, routing each record by tag, encoding
 * it (JSON or msgpack, with injected tag/time/peer keys) and handing it to
 * the Kafka producer (or to stdout in print mode, without [kafka]); acks
 * tied to delivery through each chunk's completion; backpressure from the
 * producer's queue to the forward sockets.  Loop thread only. */
#ifndef SL_INGEST_H
#define SL_INGEST_H

#include "daemon/stage.h"

/* Creates the stage from env->cfg's [input.forward], [kafka] and routes.
 * out->ops is NULL when the forward input is disabled.  0, or a negative
 * error already logged. */
int sl_ingest_stage_new(const sl_stage_env_t *env, sl_stage_t *out);

#endif
