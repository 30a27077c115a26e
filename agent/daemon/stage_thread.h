/* Runs a stage on a libuv loop thread of its own, seen by the daemon as an
 * ordinary stage on the main loop.  The inner stage is created and started
 * on the main thread before its loop runs (so binding and early errors stay
 * synchronous), then its thread runs the loop; afterwards the two threads
 * share only atomics and two uv_async handles: commands go to the thread,
 * its news (closed, a fatal error) come back.  Forward workers use it now;
 * the jobs stage will run the same way.  Main thread, except where said. */
#ifndef SL_STAGE_THREAD_H
#define SL_STAGE_THREAD_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/stage.h"

/* Creates `create`'s stage on a new loop, with a Kafka bridge of its own
 * when env has Kafka.  `env` is copied (the loop and bridge replaced);
 * everything it points to must outlive the stage.  `name` is a static
 * string ("forward-1").  out->ops is NULL when `create` leaves the stage
 * off.  0 or a negative error (logged). */
int sl_stage_thread_new(const sl_stage_env_t *env, const char *name,
                        int (*create)(const sl_stage_env_t *env, sl_stage_t *out), sl_stage_t *out);

/* How many running loop threads have not turned their loop for over
 * limit_ms (closing ones aside), with "the jobs thread (12.3 s), ..." in
 * what; also sets each one's sluice_loop_heartbeat_age_seconds.  Main
 * thread. */
size_t sl_stage_threads_stalled(uint64_t limit_ms, char *what, size_t len);

/* The stage the thread hosts, for calls made before start (main thread). */
sl_stage_t *sl_stage_thread_inner(const sl_stage_t *st);

#endif
