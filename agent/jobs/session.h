/* Session windows of one group key: the open sessions, kept sorted, and
 * what adding an event does to them (create one, grow one, or merge the two
 * it bridges).  Pure; a set belongs to the thread of the job that owns the
 * key.
 *
 * A session is [first event, last event + gap): two events are in the same
 * session when a chain of events less than `gap` apart links them.  Each
 * event opens the window [t, t + gap) and joins every session that window
 * overlaps, so an out-of-order event before a session extends it backwards,
 * and one between two sessions merges them (at most two: sessions are at
 * least gap long and do not overlap).  The caller keeps one partial
 * aggregate per session behind `agg`; this module moves the pointers and
 * says when two aggregates must be merged, and never looks inside them. */
#ifndef SL_SESSION_H
#define SL_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs/window.h"

typedef struct {
  sl_window_t w; /* [first event, last event + gap) */
  void *agg;     /* the caller's, set and freed by the caller; NULL when new */
} sl_session_t;

/* Open sessions of one key, sorted by start; each ends at or before the next
 * one starts.  Embedded in the caller's per-key state. */
typedef struct {
  sl_session_t *items; /* owned; read-only for the caller, except items[i].agg */
  size_t n, cap;
} sl_session_set_t;

typedef enum {
  SL_SESSION_CREATED, /* a new session: its agg is NULL, the caller sets it */
  SL_SESSION_JOINED,  /* an existing session, perhaps grown at either end */
  SL_SESSION_MERGED,  /* the event bridged two sessions, now one */
} sl_session_what_t;

typedef struct {
  sl_session_what_t what;
  /* The event's session: set->items[index], valid until the set changes. */
  size_t index;
  /* MERGED only: the later of the two sessions, already removed from the
   * set.  The caller merges absorbed.agg into items[index].agg (which was
   * the earlier session's) and frees it. */
  sl_session_t absorbed;
} sl_session_add_t;

/* An empty set; no allocation. */
void sl_session_init(sl_session_set_t *set);
/* Frees the array, not the aggregates: release those first (items[0..n)). */
void sl_session_close(sl_session_set_t *set);

/* Adds an event at t (clamped like sl_window_assign) to the sessions of gap
 * gap_ms.  Returns 0 and fills *res; SL_ERANGE when gap_ms is outside
 * (0, SL_WINDOW_MAX_MS]; SL_ENOMEM when a new session does not fit.  On
 * error the set is unchanged.  Lateness is the caller's: sessions the
 * watermark has passed should have been popped, and an event whose own
 * window [t, t + gap) ended at or before the watermark not added. */
int sl_session_add(sl_session_set_t *set, int64_t gap_ms, int64_t t, sl_session_add_t *res);

/* Removes the earliest session if the watermark has reached its end
 * (end <= watermark) and returns it in *out (its agg now the caller's);
 * false when none has closed.  Call until false: sessions close in order. */
bool sl_session_pop_closed(sl_session_set_t *set, int64_t watermark, sl_session_t *out);

/* The earliest end among the open sessions (the watermark at which the next
 * one closes); INT64_MAX when there is none. */
int64_t sl_session_next_end(const sl_session_set_t *set);

#endif
