/* The redis sink's guard against stale retries: a row that failed and is
 * written again later must not overwrite a newer row for the same key that
 * was written meanwhile.
 *
 * Why the sink needs it: the host retries failed rows on timers of their
 * own (one per caller's write, each with its own backoff and jitter), so
 * when Redis comes back, the rows of an older window may reach the sink
 * after those of a newer one.  The sink writes in the order it is given;
 * the guard remembers, per key (what a row overwrites: its key, and its
 * member in zadd mode), the rows that failed and their place in the order
 * the rows first came in, and the place of the newest row written since.
 * A failed row that comes back after a newer row for its key was written
 * is stale: the sink reports it written without sending it.
 *
 * A row is known again by its id and a hash of its JSON (an early row and
 * the final row of one window share the id).  The guard holds state only
 * for keys with rows waiting for a retry, at most max_records rows; rows
 * the host gave up (on_failure = "drop") are forgotten after 10 minutes.
 * Pure. */
#ifndef REDIS_GUARD_H
#define REDIS_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rs_guard rs_guard_t;

/* NULL when out of memory.  rs_guard_free releases it (NULL is fine). */
rs_guard_t *rs_guard_new(size_t max_records);
void rs_guard_free(rs_guard_t *g);

/* Rows waiting for a retry, over every key. */
size_t rs_guard_records(const rs_guard_t *g);

/* Whether key has rows waiting for a retry (only then does rs_guard_check
 * need the row's hash). */
bool rs_guard_watches(const rs_guard_t *g, const char *key, size_t len);

enum { RS_GUARD_FRESH = 0, RS_GUARD_RETRY, RS_GUARD_STALE };

/* A row about to be written, with *seq its place in the order rows came
 * in.  RS_GUARD_FRESH: not a row that failed before (*seq unchanged).
 * RS_GUARD_RETRY: one that failed before and may be written (*seq set to
 * its first place).  RS_GUARD_STALE: one that failed before, and a newer
 * row for key was written since: do not write it.  Either way the row is
 * no longer waiting (rs_guard_failed again if it fails again). */
int rs_guard_check(rs_guard_t *g, const char *key, size_t len, uint64_t id, uint64_t hash,
                   uint64_t *seq);

/* A row of place seq was written. */
void rs_guard_written(rs_guard_t *g, const char *key, size_t len, uint64_t seq);

/* A row of place seq failed and will be retried.  0, or -1 when the guard
 * is full (or out of memory): the row is then not guarded. */
int rs_guard_failed(rs_guard_t *g, const char *key, size_t len, uint64_t id, uint64_t hash,
                    uint64_t seq, uint64_t now_ms);

#endif
