/* The ingest stage: the forward input, routing each record by tag, encoding
 * it (JSON or msgpack, with injected tag/time/peer keys) and handing it to
 * the Kafka producer (or to stdout in print mode, without [kafka]); acks
 * tied to delivery through each chunk's completion; backpressure from the
 * producer's queue to the forward sockets.  Loop thread only. */
#ifndef SL_INGEST_H
#define SL_INGEST_H

#include "daemon/stage.h"

/* Creates the stage from env->cfg's [input.forward], [kafka] and routes:
 * one ingest on env->loop, or with `workers = N` (N > 1, Kafka mode) N of
 * them, each on a loop thread of its own with its own producer, accepting
 * on the same TCP ports (ingest_workers.c).  out->ops is NULL when the
 * forward input is disabled.  0, or a negative error already logged. */
int sl_ingest_stage_new(const sl_stage_env_t *env, sl_stage_t *out);

/* One ingest on env->loop (ingest.c), and its forward server. */
int sl_ingest_one_new(const sl_stage_env_t *env, sl_stage_t *out);
struct sl_fwd_server *sl_ingest_one_server(const sl_stage_t *stage);

#endif
