/* Job watermarks over partitions, lateness, and the commit metadata.  Pure.
 *
 * The partition table is indexed by id and scanned whole on every get: a job
 * owns tens of partitions, not thousands, and the engine asks once per batch
 * of records, not per record. */
#include "jobs/watermark.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* a - b and a + b, stopping at the ends of int64 instead of overflowing. */
static int64_t sat_sub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) return b > 0 ? INT64_MIN : INT64_MAX;
  return r;
}

static int64_t sat_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

void sl_watermark_init(sl_watermark_t *wm, int64_t lateness_ms, int64_t idle_timeout_ms) {
  *wm = (sl_watermark_t){
      .lateness_ms = lateness_ms > 0 ? lateness_ms : 0,
      .idle_timeout_ms = idle_timeout_ms > 0 ? idle_timeout_ms : 0,
      .current = SL_WATERMARK_NONE,
  };
}

void sl_watermark_close(sl_watermark_t *wm) {
  if (!wm) return;
  free(wm->parts);
  wm->parts = NULL;
  wm->n_parts = 0;
}

static sl_watermark_part_t *part(const sl_watermark_t *wm, int partition) {
  if (partition < 0 || (size_t)partition >= wm->n_parts) return NULL;
  sl_watermark_part_t *p = &wm->parts[partition];
  return p->assigned ? p : NULL;
}

int sl_watermark_assign(sl_watermark_t *wm, int partition, int64_t initial, int64_t now_ms) {
  if (partition < 0 || partition >= SL_WATERMARK_MAX_PARTITIONS) return SL_ERANGE;
  size_t id = (size_t)partition;
  if (id >= wm->n_parts) {
    size_t n = wm->n_parts ? wm->n_parts : 16;
    while (n <= id) n *= 2;
    sl_watermark_part_t *parts = realloc(wm->parts, n * sizeof *parts);
    if (!parts) return SL_ENOMEM;
    memset(&parts[wm->n_parts], 0, (n - wm->n_parts) * sizeof *parts);
    wm->parts = parts;
    wm->n_parts = n;
  }
  bool from_first = initial == SL_WATERMARK_FROM_FIRST;
  if (from_first) initial = SL_WATERMARK_NONE;
  wm->parts[id] = (sl_watermark_part_t){.wm = initial, .floor = initial, .last_seen = now_ms, .ckpt = initial,
                                         .assigned = true, .from_first = from_first};
  /* Its records from the committed offset on may belong to windows this
   * job closed already (for its other partitions): the job's watermark
   * steps back to the partition's, so that those windows are rebuilt and
   * closed again rather than the records taken as late. */
  if (initial < wm->current) wm->current = initial;
  return 0;
}

void sl_watermark_revoke(sl_watermark_t *wm, int partition) {
  sl_watermark_part_t *p = part(wm, partition);
  if (p) *p = (sl_watermark_part_t){0};
}

int sl_watermark_observe(sl_watermark_t *wm, int partition, int64_t event_ms, int64_t now_ms) {
  sl_watermark_part_t *p = part(wm, partition);
  if (!p) return SL_ERANGE;
  int64_t own = sat_sub(event_ms, wm->lateness_ms);
  if (own > p->wm) p->wm = own;
  if (p->from_first) {
    p->from_first = false;
    if (own > p->floor) p->floor = own;
    if (own > p->ckpt) p->ckpt = own;
  }
  p->last_seen = now_ms;
  return 0;
}

static bool is_idle(const sl_watermark_t *wm, const sl_watermark_part_t *p, int64_t now_ms) {
  return wm->idle_timeout_ms && sat_add(p->last_seen, wm->idle_timeout_ms) <= now_ms;
}

int64_t sl_watermark_get(sl_watermark_t *wm, int64_t now_ms) {
  bool any = false, assigned = false;
  int64_t low = INT64_MAX;
  for (size_t i = 0; i < wm->n_parts; i++) {
    const sl_watermark_part_t *p = &wm->parts[i];
    if (!p->assigned) continue;
    assigned = true;
    if (is_idle(wm, p, now_ms)) continue;
    any = true;
    if (p->wm < low) low = p->wm;
  }
  /* Every partition quiet (and none behind: the caller touches those): the
   * stream has gone quiet, and its last windows close on the processing
   * clock once it passes their end + lateness + idle_timeout. */
  if (!any && assigned) low = sat_sub(sat_sub(now_ms, wm->idle_timeout_ms), wm->lateness_ms);
  if (low != INT64_MAX && low > wm->current) wm->current = low;
  /* Windows ending at or before it are closed now: for every partition
   * assigned, its records of those windows are late from here on. */
  for (size_t i = 0; i < wm->n_parts; i++)
    if (wm->parts[i].assigned && wm->parts[i].floor < wm->current) wm->parts[i].floor = wm->current;
  return wm->current;
}

int64_t sl_watermark_drift(const sl_watermark_t *wm, int partition, int64_t now_ms) {
  const sl_watermark_part_t *p = part(wm, partition);
  if (!p || p->wm == SL_WATERMARK_NONE || is_idle(wm, p, now_ms)) return 0;
  int64_t low = p->wm;
  for (size_t i = 0; i < wm->n_parts; i++) {
    const sl_watermark_part_t *q = &wm->parts[i];
    if (q->assigned && q->wm != SL_WATERMARK_NONE && !is_idle(wm, q, now_ms) && q->wm < low) low = q->wm;
  }
  return sat_sub(p->wm, low);
}

size_t sl_watermark_idle_count(const sl_watermark_t *wm, int64_t now_ms) {
  size_t n = 0;
  for (size_t i = 0; i < wm->n_parts; i++) n += wm->parts[i].assigned && is_idle(wm, &wm->parts[i], now_ms);
  return n;
}

int64_t sl_watermark_next_idle(const sl_watermark_t *wm) {
  int64_t next = INT64_MAX;
  if (!wm->idle_timeout_ms) return next;
  for (size_t i = 0; i < wm->n_parts; i++) {
    const sl_watermark_part_t *p = &wm->parts[i];
    if (!p->assigned) continue;
    int64_t at = sat_add(p->last_seen, wm->idle_timeout_ms);
    if (at < next) next = at;
  }
  return next;
}

int64_t sl_watermark_floor(const sl_watermark_t *wm, int partition) {
  const sl_watermark_part_t *p = part(wm, partition);
  return p ? p->floor : wm->current;
}

bool sl_watermark_is_late(const sl_watermark_t *wm, int partition, const sl_window_spec_t *spec,
                          int64_t event_ms) {
  return sl_window_last_end(spec, event_ms) <= sl_watermark_floor(wm, partition);
}

/* ---- commit metadata ------------------------------------------------- */

#define META_MAGIC "sluice"
#define META_VERSION 1

int sl_watermark_meta_format(int64_t wm_ms, char *buf, size_t len) {
  if (len < SL_WATERMARK_META_MAX) {
    if (len) buf[0] = '\0';
    return SL_ERANGE;
  }
  snprintf(buf, len, META_MAGIC "%d wm=%lld", META_VERSION, (long long)wm_ms);
  return 0;
}

/* A decimal int64 in s[0..n): optional '-', digits only, no overflow. */
static bool parse_i64(const char *s, size_t n, int64_t *out) {
  bool neg = n && s[0] == '-';
  size_t i = neg;
  if (i == n || n - i > 19) return false;
  uint64_t v = 0;
  for (; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (v > (uint64_t)INT64_MAX + neg) return false;
  if (!neg)
    *out = (int64_t)v;
  else
    *out = v > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)v;
  return true;
}

static int bad(int64_t *wm_ms, const char **why, const char *msg) {
  *wm_ms = SL_WATERMARK_NONE;
  if (why) *why = msg;
  return SL_ESYNTAX;
}

int sl_watermark_meta_parse(const void *meta, size_t len, int64_t *wm_ms, const char **why) {
  const char *s = meta;
  *wm_ms = SL_WATERMARK_NONE;
  if (!s) return 0;
  /* A writer that counted the C string's terminator. */
  while (len && s[len - 1] == '\0') len--;
  if (!len) return 0;
  size_t magic = sizeof META_MAGIC - 1;
  if (len < magic || memcmp(s, META_MAGIC, magic) != 0)
    return bad(wm_ms, why, "commit metadata not written by sluice");

  /* Space-separated tokens: the version, then key=value fields. */
  size_t i = magic, tok = i;
  while (i < len && s[i] != ' ') i++;
  int64_t version;
  if (!parse_i64(s + tok, i - tok, &version) || version < 1)
    return bad(wm_ms, why, "commit metadata has a malformed version");
  if (version != META_VERSION)
    return bad(wm_ms, why, "commit metadata is of another version of sluice");
  bool found = false;
  int64_t value = SL_WATERMARK_NONE;
  while (i < len) {
    i++; /* the space */
    tok = i;
    while (i < len && s[i] != ' ') i++;
    const char *t = s + tok;
    size_t n = i - tok;
    const char *eq = n ? memchr(t, '=', n) : NULL;
    if (!eq || eq == t) return bad(wm_ms, why, "commit metadata has a malformed field");
    if (eq - t == 2 && memcmp(t, "wm", 2) == 0) {
      if (found) return bad(wm_ms, why, "commit metadata has two watermarks");
      if (!parse_i64(eq + 1, n - 3, &value))
        return bad(wm_ms, why, "commit metadata has a malformed watermark");
      found = true;
    }
  }
  if (!found) return bad(wm_ms, why, "commit metadata has no watermark");
  *wm_ms = value;
  return 0;
}

void sl_watermark_touch(sl_watermark_t *wm, int64_t now_ms) {
  for (size_t i = 0; i < wm->n_parts; i++)
    if (wm->parts[i].assigned && wm->parts[i].last_seen < now_ms) wm->parts[i].last_seen = now_ms;
}

void sl_watermark_touch_one(sl_watermark_t *wm, int partition, int64_t now_ms) {
  sl_watermark_part_t *p = part(wm, partition);
  if (p && p->last_seen < now_ms) p->last_seen = now_ms;
}

int64_t sl_watermark_assigned(const void *meta, size_t len, int64_t offset, bool processing, const char **why) {
  const char *s = meta, *bad_why = NULL;
  int64_t wm;
  if (why) *why = NULL;
  while (s && len && s[len - 1] == '\0') len--;
  bool present = s && len;
  if (sl_watermark_meta_parse(meta, len, &wm, &bad_why)) {
    present = false;
    if (why) *why = bad_why;
  }
  if (processing) return SL_WATERMARK_NONE;
  if (!present) return offset >= 0 ? SL_WATERMARK_FROM_FIRST : SL_WATERMARK_NONE;
  return wm;
}
