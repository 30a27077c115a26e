/* The event-time watermark of one job over the partitions it owns, which
 * records are too late for it, and the commit metadata that carries it
 * across a restart.  Pure; a watermark belongs to its job's thread.
 *
 * Each partition has its own watermark: the highest event time it has
 * delivered minus allowed_lateness (never below what it was assigned with).
 * The job's watermark is the lowest of them, so a window closes only when
 * every partition has moved past its end plus the lateness; it never goes
 * backwards.  A partition that has had no record for idle_timeout (on the
 * caller's processing clock) stops holding it back until its next record,
 * so that a quiet partition does not stall every window.  A partition with
 * records still unread is never idle (the caller touches it).  When all are
 * idle the stream has gone quiet, and the watermark follows the processing
 * clock: now - idle_timeout - lateness, so the last windows close once the
 * clock passes their end + lateness + idle_timeout.
 *
 * Across a restart and a rebalance: each partition has a floor, the
 * watermark up to which its records' windows are done (emitted before a
 * restart, or closed by this job while it owned the partition).  The engine
 * commits each partition's offset with a checkpoint watermark no higher
 * than what is emitted and confirmed (sl_watermark_meta_format), and on
 * assignment the partition gets it as its floor (sl_watermark_meta_parse):
 * records re-read after the committed offset whose windows end at or before
 * it are recognised as emitted and skipped (sl_watermark_floor), while the
 * job's watermark steps back so that the windows after it are rebuilt. */
#ifndef SL_WATERMARK_H
#define SL_WATERMARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs/window.h"

/* Partition ids run from 0 to SL_WATERMARK_MAX_PARTITIONS - 1; the engine
 * numbers its (topic, partition) pairs densely. */
#define SL_WATERMARK_MAX_PARTITIONS 4096

/* "sluice1 wm=-9223372036854775808" and its NUL. */
#define SL_WATERMARK_META_MAX 32

/* No watermark: nothing is known, nothing is late. */
#define SL_WATERMARK_NONE INT64_MIN
/* Assigned with a committed offset but no checkpoint watermark (metadata
 * missing or expired): the partition's floor becomes its own watermark
 * after its first record (that record's time - lateness), so that windows
 * before the first record's are taken as closed rather than emitted again
 * from the part of their records after the committed offset. */
#define SL_WATERMARK_FROM_FIRST (INT64_MIN + 1)

typedef struct {
  int64_t wm;        /* max(assigned, highest event time - lateness) */
  int64_t floor;     /* windows ending at or before it are done for this partition's records: emitted
                        before a restart (what it was assigned with), or closed by this job since */
  int64_t last_seen; /* processing time of the last record, or of assignment */
  int64_t ckpt;      /* the engine's last checkpoint watermark for it (assigned: initial) */
  bool assigned;
  bool from_first;   /* assigned SL_WATERMARK_FROM_FIRST, no record yet */
} sl_watermark_part_t;

typedef struct {
  int64_t lateness_ms;
  int64_t idle_timeout_ms; /* 0: partitions never count as idle */
  int64_t current;         /* the job's watermark as of the last sl_watermark_get */
  sl_watermark_part_t *parts; /* owned; indexed by partition id, n_parts long */
  size_t n_parts;
} sl_watermark_t;

/* No partition and no watermark yet; allocates nothing.  Negative arguments
 * count as 0. */
void sl_watermark_init(sl_watermark_t *wm, int64_t lateness_ms, int64_t idle_timeout_ms);
/* Frees the partition table; accepts a zeroed struct. */
void sl_watermark_close(sl_watermark_t *wm);

/* The partition is now the job's (a rebalance, or start), with watermark
 * `initial` (from its commit metadata; SL_WATERMARK_NONE if nothing was
 * committed, SL_WATERMARK_FROM_FIRST for an offset without one) and
 * counted active from now_ms.  Assigning an assigned partition starts it
 * afresh.  The job's watermark steps back to `initial` if that is lower:
 * the partition's records from its committed offset on may belong to
 * windows the job closed already for its other partitions, which are then
 * rebuilt for them (the other partitions' floors stay where they were).
 * Returns 0, SL_ERANGE for an id out of range, SL_ENOMEM. */
int sl_watermark_assign(sl_watermark_t *wm, int partition, int64_t initial, int64_t now_ms);

/* The partition is no longer the job's: it stops holding the watermark
 * back.  Unknown ids are ignored. */
void sl_watermark_revoke(sl_watermark_t *wm, int partition);

/* A record of the partition with event time event_ms, read at now_ms; late
 * records count too (they show the partition is alive).  Returns 0, or
 * SL_ERANGE when the partition is not assigned (nothing changes). */
int sl_watermark_observe(sl_watermark_t *wm, int partition, int64_t event_ms, int64_t now_ms);

/* The job's watermark at now_ms (SL_WATERMARK_NONE before any): the lowest
 * watermark of the assigned partitions that are not idle; when every
 * assigned partition is idle, now_ms - idle_timeout - lateness; the
 * previous value if that is higher or no partition is assigned.  Windows that end at
 * or before it are complete; every assigned partition's floor is raised to
 * it. */
int64_t sl_watermark_get(sl_watermark_t *wm, int64_t now_ms);

/* Counts every assigned partition active at now_ms, as if each had just
 * delivered a record: while the reader holds the partitions back
 * (backpressure), their silence is not idleness. */
void sl_watermark_touch(sl_watermark_t *wm, int64_t now_ms);

/* The same for one partition: it has records the reader has not read yet
 * (a consumer lag), so its silence is not idleness either. */
void sl_watermark_touch_one(sl_watermark_t *wm, int partition, int64_t now_ms);

/* The processing time at which an active partition next turns idle (and the
 * watermark may jump): when to call sl_watermark_get again without a new
 * record.  INT64_MAX when none will. */
int64_t sl_watermark_next_idle(const sl_watermark_t *wm);

/* How far the partition's watermark is ahead of the slowest active
 * partition's at now_ms (0 when it is the slowest, idle, or has none yet;
 * partitions without a record yet do not count): what
 * max_watermark_drift bounds. */
int64_t sl_watermark_drift(const sl_watermark_t *wm, int partition, int64_t now_ms);

/* Assigned partitions idle at now_ms. */
size_t sl_watermark_idle_count(const sl_watermark_t *wm, int64_t now_ms);

/* What a record of the partition is judged against: its floor, the higher
 * of the watermark it was assigned (windows emitted before a restart) and
 * the job's watermark at each sl_watermark_get since (windows this job
 * closed while it owned the partition).  A window ending at or before it
 * must not be updated by the record. */
int64_t sl_watermark_floor(const sl_watermark_t *wm, int partition);

/* Whether a record of the partition at event_ms is late: every window it
 * belongs to (for sessions, its own [t, t + gap)) ended at or before
 * sl_watermark_floor.  A late record is dropped and counted, not
 * aggregated.  For hopping windows a record that is not late may still have
 * some windows at or below the floor: skip those one by one. */
bool sl_watermark_is_late(const sl_watermark_t *wm, int partition, const sl_window_spec_t *spec,
                          int64_t event_ms);

/* Writes the commit metadata for watermark `wm_ms` ("sluice1 wm=<ms>") into
 * buf.  Returns 0, or SL_ERANGE when buf is smaller than
 * SL_WATERMARK_META_MAX (buf then holds ""). */
int sl_watermark_meta_format(int64_t wm_ms, char *buf, size_t len);

/* Reads commit metadata (meta[0..len), not necessarily NUL-terminated, as
 * Kafka returns it).  Returns 0 with *wm_ms set, or with *wm_ms =
 * SL_WATERMARK_NONE when there is no metadata (NULL or empty).  Returns
 * SL_ESYNTAX when it is not ours or is malformed, with *wm_ms =
 * SL_WATERMARK_NONE and *why (may be NULL) a static sentence to log: the
 * partition then starts without a watermark, so already emitted windows may
 * be emitted again rather than records lost.  Version 1 ignores fields
 * other than wm=, so later ones can be added without a new version. */
int sl_watermark_meta_parse(const void *meta, size_t len, int64_t *wm_ms, const char **why);

/* What a partition assigned at committed `offset` (-1: none) with commit
 * metadata meta[0..len) starts from, for sl_job_assign: the checkpoint
 * watermark sluice wrote (SL_WATERMARK_NONE too, when it had none yet);
 * SL_WATERMARK_FROM_FIRST for a committed offset whose metadata is missing
 * or not sluice's (another consumer, an older version, metadata expired
 * with the broker's offsets.retention.minutes); SL_WATERMARK_NONE without
 * a committed offset, and always for processing-time jobs, which have no
 * watermark.  *why (may be NULL) is set to why the metadata could not be
 * read, or NULL when it was read or there was none. */
int64_t sl_watermark_assigned(const void *meta, size_t len, int64_t offset, bool processing, const char **why);

#endif
