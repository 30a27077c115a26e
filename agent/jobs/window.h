/* Window arithmetic on event time: which tumbling or hopping windows hold a
 * record, the check of a window spec, and when a record's last window ends
 * (what lateness is judged by).  Pure and stateless, so any thread may call
 * it; sessions, which need state per group key, are in session.h.
 *
 * Times are int64 milliseconds since the epoch (a Kafka record's
 * timestamp).  Windows are half-open, [start, end), and aligned to the
 * epoch: a record at exactly a window's end belongs to the next window.  So
 * that no sum can overflow, event times are clamped to
 * +-SL_WINDOW_TIME_LIMIT (about 146 million years) and durations are capped
 * at SL_WINDOW_MAX_MS by the spec check. */
#ifndef SL_WINDOW_H
#define SL_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "jobs/job_conf.h"

#define SL_WINDOW_TIME_LIMIT (INT64_C(1) << 62)
/* Longest size, advance or gap: 100 years of 366 days. */
#define SL_WINDOW_MAX_MS (INT64_C(100) * 366 * 86400000)
/* Most hopping windows one record may fall into (size / advance, rounded
 * up): every one of them is updated per record. */
#define SL_WINDOW_MAX_OVERLAP 1000

/* The same values as sl_window_conf_t.type. */
typedef enum {
  SL_WINDOW_TUMBLING = 0,
  SL_WINDOW_HOPPING = 1,
  SL_WINDOW_SESSION = 2,
} sl_window_type_t;

/* A window definition in milliseconds.  Options a type does not use are 0. */
typedef struct {
  sl_window_type_t type;
  int64_t size_ms;    /* tumbling, hopping */
  int64_t advance_ms; /* hopping */
  int64_t gap_ms;     /* session */
} sl_window_spec_t;

/* [start, end) in ms. */
typedef struct {
  int64_t start, end;
} sl_window_t;

/* Checks a spec: size > 0 (tumbling, hopping), advance > 0 (hopping), gap > 0
 * (session), none above SL_WINDOW_MAX_MS, no option the type does not use
 * (an `advance` on a tumbling window is a mistake, not a no-op), and at most
 * SL_WINDOW_MAX_OVERLAP hopping windows per record.  Returns 0, or
 * SL_ECONFIG and sets *why (may be NULL) to a static sentence. */
int sl_window_spec_check(const sl_window_spec_t *spec, const char **why);

/* Converts the bound [[job]] window (nanoseconds) to a checked spec, for the
 * job section's finish hook.  Returns 0, or SL_ECONFIG with *why as above
 * (a duration that is not a whole number of milliseconds is also refused)
 * and *field (may be NULL) pointing at the offending member of *conf, or at
 * conf itself when the table as a whole is wrong: what sl_bind_error takes.
 * *out is written only on success. */
int sl_window_spec_from_conf(const sl_window_conf_t *conf, sl_window_spec_t *out, const char **why,
                             const void **field);

/* The windows that contain t, in increasing order of start.  Returns their
 * number and writes the first `cap` of them to out (like snprintf, so a
 * return above cap means out was too small; sl_window_max_count gives a
 * size that always fits).  Tumbling: always 1.  Hopping: windows start at
 * multiples of advance, so 0 (advance > size, t in a gap) up to
 * ceil(size / advance).  Session: 1, the window the record alone would
 * open, [t, t + gap); sessions proper are merged by session.h.  A spec
 * that fails sl_window_spec_check has no windows (returns 0). */
size_t sl_window_assign(const sl_window_spec_t *spec, int64_t t, sl_window_t *out, size_t cap);

/* The most windows sl_window_assign can return for this spec. */
size_t sl_window_max_count(const sl_window_spec_t *spec);

/* The end of the last window a record at t belongs to: tumbling and hopping,
 * the end of the latest window starting at or before t (for a hopping t in a
 * gap, a window that ended before t); session, t + gap.  A record is late
 * when this is at or before the watermark: every window it could update has
 * already been emitted. */
int64_t sl_window_last_end(const sl_window_spec_t *spec, int64_t t);

#endif
