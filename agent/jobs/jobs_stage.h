/* The jobs stage: every [[job]] as a Kafka consumer group feeding its
 * engine (jobs/engine.h), the result rows written to the job's sinks
 * (sinks/sink_host.h), and offsets committed only as far as the rows are
 * confirmed (sl_job_checkpoint), with the checkpoint watermark as commit
 * metadata.  Hosted on a loop thread of its own (daemon/stage_thread.h),
 * so that a slow job or sink never delays a forward ack.
 *
 * Per job, on the jobs loop:
 *   records   decoded (the job's format), fed to the engine; the engine is
 *             advanced after each delivery and on a tick (idle partitions,
 *             processing time), and each advance's rows become one batch
 *             written to every sink of the job;
 *   confirm   when every sink has reported a batch, its emission is
 *             confirmed (a sink that refuses it for good is logged and
 *             counted, and the rows are not retried);
 *   commit    every commit_interval: per assigned partition the offset
 *             sl_job_checkpoint allows, with "sluice1 wm=<W>";
 *   assign    each partition starts at its committed offset with the
 *             committed W as its floor, so windows already emitted are not
 *             rebuilt from part of their records;
 *   revoke    commit what is safe, then drop the partition's state;
 *   pressure  past 64 batches in flight the consumer pauses (and no
 *             partition counts as idle meanwhile), resuming below 16;
 *   drain     stop reading, wait for the sinks, commit, leave the group;
 *             open windows are rebuilt by the next start. */
#ifndef SL_JOBS_STAGE_H
#define SL_JOBS_STAGE_H

#include "daemon/stage.h"

/* The stage for env->cfg's jobs, on a loop thread of its own; out->ops is
 * NULL when the config has no [[job]].  0, or a negative error (logged). */
int sl_jobs_stage_new(const sl_stage_env_t *env, sl_stage_t *out);

/* The same, on env->loop (what the thread hosts). */
int sl_jobs_one_new(const sl_stage_env_t *env, sl_stage_t *out);

#endif
