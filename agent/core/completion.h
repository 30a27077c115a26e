/* A completion: one piece of work made of parts that finish separately —
 * a forward chunk whose records Kafka acknowledges one by one (then the ack
 * is written), later a batch of sink writes (then offsets are committed).
 *
 *   hold     one more part is outstanding
 *   settle   one part finished, ok or not
 *   seal     no more parts will be held
 *
 * When it is sealed and nothing is outstanding, on_done runs exactly once,
 * with ok = every settled part was ok.  Pure; not thread-safe: every call
 * for one completion comes from one thread (its loop). */
#ifndef SL_COMPLETION_H
#define SL_COMPLETION_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sl_completion sl_completion_t;

/* May free the memory that holds `c` (the completion is done with it). */
typedef void (*sl_completion_cb)(sl_completion_t *c, bool ok, void *arg);

/* Embedded in its owner; the fields are private. */
struct sl_completion {
  size_t pending;
  bool failed, sealed, done;
  bool abandoned; /* nobody waits for the outcome any more */
  sl_completion_cb on_done;
  void *arg;
};

void sl_completion_init(sl_completion_t *c, sl_completion_cb on_done, void *arg);
void sl_completion_hold(sl_completion_t *c);
/* Settling more parts than were held is a programming error (aborts). */
void sl_completion_settle(sl_completion_t *c, bool ok);
void sl_completion_seal(sl_completion_t *c);
/* Shorthand for a part that failed before it started: hold + settle(false). */
void sl_completion_fail(sl_completion_t *c);

/* The one waiting for the outcome is gone (a forward client disconnected
 * before its ack): parts not started yet need not be started.  The
 * completion still runs its course; on_done is still called once. */
static inline void sl_completion_abandon(sl_completion_t *c) { c->abandoned = true; }
static inline bool sl_completion_abandoned(const sl_completion_t *c) { return c->abandoned; }

/* Parts outstanding (for tests and status). */
static inline size_t sl_completion_pending(const sl_completion_t *c) { return c->pending; }

#endif
