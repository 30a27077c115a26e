/* The stale-retry guard (redis_guard.h): a chained hash table from key to
 * the rows of that key waiting for a retry and the place of the newest row
 * written since.  Pure; the redis sink calls it on the jobs loop. */
#include "redis_guard.h"

#include <stdlib.h>
#include <string.h>

#define FORGET_AFTER_MS (10 * 60 * 1000)

typedef struct {
  uint64_t id, hash, seq, at_ms;
} record_t;

typedef struct entry {
  struct entry *next;
  uint64_t h;
  char *key;
  size_t len;
  uint64_t newest_written; /* place of the newest row written since the first failure; 0: none */
  record_t *recs;
  size_t n, cap;
} entry_t;

struct rs_guard {
  entry_t **buckets;
  size_t nbuckets, nentries, nrecords, max_records;
};

static uint64_t key_hash(const char *key, size_t len) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)key[i];
    h *= 1099511628211ull;
  }
  return h;
}

rs_guard_t *rs_guard_new(size_t max_records) {
  rs_guard_t *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->nbuckets = 64;
  g->max_records = max_records;
  if (!(g->buckets = calloc(g->nbuckets, sizeof *g->buckets))) {
    free(g);
    return NULL;
  }
  return g;
}

static void entry_free(entry_t *e) {
  free(e->key);
  free(e->recs);
  free(e);
}

void rs_guard_free(rs_guard_t *g) {
  if (!g) return;
  for (size_t b = 0; b < g->nbuckets; b++)
    for (entry_t *e = g->buckets[b], *next; e; e = next) {
      next = e->next;
      entry_free(e);
    }
  free(g->buckets);
  free(g);
}

size_t rs_guard_records(const rs_guard_t *g) {
  return g->nrecords;
}

static entry_t **find(const rs_guard_t *g, const char *key, size_t len, uint64_t h) {
  entry_t **at = &g->buckets[h & (g->nbuckets - 1)];
  while (*at && !((*at)->h == h && (*at)->len == len && memcmp((*at)->key, key, len) == 0))
    at = &(*at)->next;
  return at;
}

bool rs_guard_watches(const rs_guard_t *g, const char *key, size_t len) {
  return g->nentries && *find(g, key, len, key_hash(key, len));
}

static void unlink_entry(rs_guard_t *g, entry_t **at) {
  entry_t *e = *at;
  *at = e->next;
  g->nentries--;
  g->nrecords -= e->n;
  entry_free(e);
}

int rs_guard_check(rs_guard_t *g, const char *key, size_t len, uint64_t id, uint64_t hash,
                   uint64_t *seq) {
  if (!g->nentries) return RS_GUARD_FRESH;
  entry_t **at = find(g, key, len, key_hash(key, len));
  entry_t *e = *at;
  if (!e) return RS_GUARD_FRESH;
  size_t best = e->n;
  for (size_t i = 0; i < e->n; i++)
    if (e->recs[i].id == id && e->recs[i].hash == hash &&
        (best == e->n || e->recs[i].seq < e->recs[best].seq))
      best = i;
  if (best == e->n) return RS_GUARD_FRESH;
  uint64_t was = e->recs[best].seq;
  int verdict = was < e->newest_written ? RS_GUARD_STALE : RS_GUARD_RETRY;
  e->recs[best] = e->recs[--e->n];
  g->nrecords--;
  if (!e->n) unlink_entry(g, at);
  *seq = was;
  return verdict;
}

void rs_guard_written(rs_guard_t *g, const char *key, size_t len, uint64_t seq) {
  if (!g->nentries) return;
  entry_t *e = *find(g, key, len, key_hash(key, len));
  if (e && seq > e->newest_written) e->newest_written = seq;
}

/* Drops rows waiting longer than FORGET_AFTER_MS: rows the host gave up. */
static void forget_old(rs_guard_t *g, uint64_t now_ms) {
  for (size_t b = 0; b < g->nbuckets; b++) {
    entry_t **at = &g->buckets[b];
    while (*at) {
      entry_t *e = *at;
      for (size_t i = 0; i < e->n;)
        if (now_ms - e->recs[i].at_ms > FORGET_AFTER_MS) {
          e->recs[i] = e->recs[--e->n];
          g->nrecords--;
        } else {
          i++;
        }
      if (!e->n)
        unlink_entry(g, at);
      else
        at = &e->next;
    }
  }
}

static void grow(rs_guard_t *g) {
  size_t nb = g->nbuckets * 2;
  entry_t **b = calloc(nb, sizeof *b);
  if (!b) return; /* longer chains, still correct */
  for (size_t i = 0; i < g->nbuckets; i++)
    for (entry_t *e = g->buckets[i], *next; e; e = next) {
      next = e->next;
      e->next = b[e->h & (nb - 1)];
      b[e->h & (nb - 1)] = e;
    }
  free(g->buckets);
  g->buckets = b;
  g->nbuckets = nb;
}

int rs_guard_failed(rs_guard_t *g, const char *key, size_t len, uint64_t id, uint64_t hash,
                    uint64_t seq, uint64_t now_ms) {
  if (g->nrecords >= g->max_records) forget_old(g, now_ms);
  if (g->nrecords >= g->max_records) return -1;
  uint64_t h = key_hash(key, len);
  entry_t **at = find(g, key, len, h);
  entry_t *e = *at;
  if (!e) {
    if (!(e = calloc(1, sizeof *e)) || !(e->key = malloc(len ? len : 1))) {
      free(e);
      return -1;
    }
    memcpy(e->key, key, len);
    e->len = len;
    e->h = h;
    *at = e;
    g->nentries++;
  }
  if (e->n == e->cap) {
    size_t cap = e->cap ? e->cap * 2 : 2;
    record_t *r = realloc(e->recs, cap * sizeof *r);
    if (!r) {
      if (!e->n) unlink_entry(g, find(g, key, len, h));
      return -1;
    }
    e->recs = r;
    e->cap = cap;
  }
  e->recs[e->n++] = (record_t){id, hash, seq, now_ms};
  g->nrecords++;
  if (g->nentries > g->nbuckets) grow(g);
  return 0;
}
