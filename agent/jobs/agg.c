/* Aggregate functions' states: one layout per function, their update,
 * merge and result, exact numeric comparison, first/last copies and the
 * canonical value hash (see agg.h for the semantics; the text is parsed in
 * agg_parse.c).  Pure; one thread per state.
 *
 * Sums are exact (exact_sum.h) so that the merge of any split of the
 * values gives the single-pass result bit for bit; min and max compare
 * integers and floats exactly, without converting either. */
#include "jobs/agg.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/dtoa.h"
#include "core/error.h"
#include "ingest/json_encode.h"
#include "jobs/ddsketch.h"
#include "jobs/exact_sum.h"
#include "jobs/hll.h"
#include "jobs/redis_hll.h"

/* ---- states ------------------------------------------------------------- */

typedef struct {
  uint64_t n;       /* values aggregated */
  uint64_t skipped; /* values of the wrong type */
} hdr_t;

typedef struct {
  hdr_t h;
  uint64_t nf; /* float values among h.n */
  sl_exact_sum_t x;
} sum_t;

typedef enum { NUM_I64, NUM_U64, NUM_F64 } num_kind_t;

typedef struct {
  num_kind_t kind;
  union {
    int64_t i;
    uint64_t u; /* > INT64_MAX only */
    double d;   /* finite, never -0.0 */
  } u;
} num_t;

typedef struct {
  hdr_t h;
  num_t v;
} minmax_t;

typedef struct {
  hdr_t h;
  int64_t t;
  msgpack_object v; /* strings and containers point into buf */
  void *buf;
  size_t cap;
} pick_t;

typedef struct {
  hdr_t h;
  sl_hll_t hll;
} distinct_t;

typedef struct {
  hdr_t h;
  sl_redis_hll_t hll;
} redis_hll_t;

typedef struct {
  hdr_t h;
  sl_dds_t dds;
} pct_t;

_Static_assert(sizeof(sum_t) <= SL_AGG_STATE_MAX && sizeof(pick_t) <= SL_AGG_STATE_MAX &&
                   sizeof(distinct_t) <= SL_AGG_STATE_MAX && sizeof(pct_t) <= SL_AGG_STATE_MAX &&
                   sizeof(minmax_t) <= SL_AGG_STATE_MAX && sizeof(redis_hll_t) <= SL_AGG_STATE_MAX,
               "SL_AGG_STATE_MAX covers every state");

#define ROUND_UP(n) (((n) + SL_AGG_STATE_ALIGN - 1) / SL_AGG_STATE_ALIGN * SL_AGG_STATE_ALIGN)

size_t sl_agg_state_size(const sl_agg_spec_t *spec) {
  switch (spec->fn) {
    case SL_AGG_SUM:
    case SL_AGG_AVG:
      return ROUND_UP(sizeof(sum_t));
    case SL_AGG_MIN:
    case SL_AGG_MAX:
      return ROUND_UP(sizeof(minmax_t));
    case SL_AGG_FIRST:
    case SL_AGG_LAST:
      return ROUND_UP(sizeof(pick_t));
    case SL_AGG_COUNT_DISTINCT:
      return ROUND_UP(sizeof(distinct_t));
    case SL_AGG_REDIS_HLL:
      return ROUND_UP(sizeof(redis_hll_t));
    case SL_AGG_PERCENTILE:
      return ROUND_UP(sizeof(pct_t));
    case SL_AGG_COUNT_ALL:
    case SL_AGG_COUNT:
      break;
  }
  return ROUND_UP(sizeof(hdr_t));
}

void sl_agg_init(const sl_agg_spec_t *spec, sl_agg_state_t *st) {
  memset(st, 0, sl_agg_state_size(spec));
  if (spec->fn == SL_AGG_PERCENTILE)
    sl_dds_init(&((pct_t *)st)->dds, SL_DDS_DEFAULT_ALPHA, SL_DDS_DEFAULT_MAX_BINS);
}

/* ---- numbers ------------------------------------------------------------ */

/* Reads a numeric msgpack value; false for anything else or a non-finite
 * float. */
static bool num_read(const msgpack_object *o, num_t *out) {
  switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
      if (o->via.u64 > INT64_MAX) {
        out->kind = NUM_U64;
        out->u.u = o->via.u64;
      } else {
        out->kind = NUM_I64;
        out->u.i = (int64_t)o->via.u64;
      }
      return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
      out->kind = NUM_I64;
      out->u.i = o->via.i64;
      return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
      if (!isfinite(o->via.f64)) return false;
      out->kind = NUM_F64;
      out->u.d = o->via.f64 == 0 ? 0.0 : o->via.f64;
      return true;
    default:
      return false;
  }
}

/* -1, 0 or 1 as a < b, a == b, a > b. */
#define CMP3(a, b) (((a) > (b)) - ((a) < (b)))

/* Exact comparison of a finite double with an int64. */
static int cmp_d_i(double d, int64_t i) {
  if (d < -0x1p63) return -1;
  if (d >= 0x1p63) return 1;
  int64_t t = (int64_t)d; /* toward zero: in range, and d - t is exact */
  if (t != i) return t < i ? -1 : 1;
  double frac = d - (double)t;
  return CMP3(frac, 0.0);
}

/* Exact comparison of a finite double with a uint64 above INT64_MAX. */
static int cmp_d_u(double d, uint64_t u) {
  if (d < 0x1p63) return -1;
  if (d >= 0x1p64) return 1;
  uint64_t t = (uint64_t)d; /* d is an integer here */
  return CMP3(t, u);
}

static int num_cmp(const num_t *a, const num_t *b) {
  switch (a->kind) {
    case NUM_I64:
      if (b->kind == NUM_I64) return CMP3(a->u.i, b->u.i);
      if (b->kind == NUM_U64) return -1;
      return -cmp_d_i(b->u.d, a->u.i);
    case NUM_U64:
      if (b->kind == NUM_I64) return 1;
      if (b->kind == NUM_U64) return CMP3(a->u.u, b->u.u);
      return -cmp_d_u(b->u.d, a->u.u);
    case NUM_F64:
      break;
  }
  if (b->kind == NUM_I64) return cmp_d_i(a->u.d, b->u.i);
  if (b->kind == NUM_U64) return cmp_d_u(a->u.d, b->u.u);
  return CMP3(a->u.d, b->u.d);
}

/* Whether candidate c replaces the kept v (want < 0: min, > 0: max).  Equal
 * values: an integer replaces a float, so the order of arrival never shows. */
static bool num_better(const num_t *c, const num_t *v, int want) {
  int r = num_cmp(c, v);
  if (r == 0) return v->kind == NUM_F64 && c->kind != NUM_F64;
  return want < 0 ? r < 0 : r > 0;
}

static double num_double(const num_t *n) {
  switch (n->kind) {
    case NUM_I64:
      return (double)n->u.i;
    case NUM_U64:
      return (double)n->u.u;
    case NUM_F64:
      break;
  }
  return n->u.d;
}

/* ---- sums ------------------------------------------------------------- */

static int sum_add_num(sum_t *s, const num_t *v) {
  switch (v->kind) {
    case NUM_I64:
      return sl_exact_sum_add_int(&s->x, v->u.i);
    case NUM_U64:
      return sl_exact_sum_add_uint(&s->x, v->u.u);
    case NUM_F64:
      break;
  }
  int r = sl_exact_sum_add_double(&s->x, v->u.d);
  if (!r) s->nf++;
  return r;
}

static int sum_merge(sum_t *d, const sum_t *s) {
  int r = sl_exact_sum_merge(&d->x, &s->x);
  if (r) return r;
  d->nf += s->nf;
  return 0;
}

static void sum_result(const sl_agg_spec_t *spec, const sum_t *s, sl_agg_result_t *out) {
  out->kind = SL_AGG_NULL;
  if (!s->h.n) return;
  if (spec->fn == SL_AGG_SUM && !s->nf && sl_exact_sum_int64(&s->x, &out->u.i)) {
    out->kind = SL_AGG_INT;
    return;
  }
  double total = sl_exact_sum_double(&s->x);
  out->kind = SL_AGG_DOUBLE;
  out->u.d = spec->fn == SL_AGG_AVG ? total / (double)s->h.n : total;
}

/* ---- min and max -------------------------------------------------------- */

static void minmax_update(minmax_t *m, const num_t *v, int want) {
  if (!m->h.n || num_better(v, &m->v, want)) m->v = *v;
  m->h.n++;
}

static void minmax_merge(minmax_t *d, const minmax_t *s, int want) {
  if (s->h.n && (!d->h.n || num_better(&s->v, &d->v, want))) d->v = s->v;
  d->h.n += s->h.n;
  d->h.skipped += s->h.skipped;
}

static void minmax_result(const minmax_t *m, sl_agg_result_t *out) {
  if (!m->h.n) {
    out->kind = SL_AGG_NULL;
  } else if (m->v.kind == NUM_I64) {
    out->kind = SL_AGG_INT;
    out->u.i = m->v.u.i;
  } else if (m->v.kind == NUM_F64) {
    out->kind = SL_AGG_DOUBLE;
    out->u.d = m->v.u.d;
  } else {
    out->kind = SL_AGG_VALUE;
    memset(&out->u.v, 0, sizeof out->u.v);
    out->u.v.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    out->u.v.via.u64 = m->v.u.u;
  }
}

/* ---- first and last: owned deep copies ---------------------------------- */

/* Bytes a deep copy of o needs: nodes (arrays' elements, maps' pairs) and
 * raw bytes (strings, binaries, extensions), counted apart so that the
 * nodes come first, aligned. */
static void copy_size(const msgpack_object *o, size_t *nodes, size_t *raw) {
  switch (o->type) {
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN:
      *raw += o->via.str.size;
      break;
    case MSGPACK_OBJECT_EXT:
      *raw += o->via.ext.size;
      break;
    case MSGPACK_OBJECT_ARRAY:
      *nodes += (size_t)o->via.array.size * sizeof(msgpack_object);
      for (uint32_t i = 0; i < o->via.array.size; i++) copy_size(&o->via.array.ptr[i], nodes, raw);
      break;
    case MSGPACK_OBJECT_MAP:
      *nodes += (size_t)o->via.map.size * sizeof(msgpack_object_kv);
      for (uint32_t i = 0; i < o->via.map.size; i++) {
        copy_size(&o->via.map.ptr[i].key, nodes, raw);
        copy_size(&o->via.map.ptr[i].val, nodes, raw);
      }
      break;
    default:
      break;
  }
}

typedef struct {
  char *node; /* next free node byte */
  char *raw;  /* next free raw byte */
} copy_cursor_t;

static void copy_into(msgpack_object *dst, const msgpack_object *o, copy_cursor_t *c) {
  *dst = *o;
  switch (o->type) {
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN:
      dst->via.str.ptr = ""; /* empty: no buffer may exist */
      if (!o->via.str.size) break;
      memcpy(c->raw, o->via.str.ptr, o->via.str.size);
      dst->via.str.ptr = c->raw;
      c->raw += o->via.str.size;
      break;
    case MSGPACK_OBJECT_EXT:
      dst->via.ext.ptr = "";
      if (!o->via.ext.size) break;
      memcpy(c->raw, o->via.ext.ptr, o->via.ext.size);
      dst->via.ext.ptr = c->raw;
      c->raw += o->via.ext.size;
      break;
    case MSGPACK_OBJECT_ARRAY: {
      dst->via.array.ptr = NULL;
      if (!o->via.array.size) break;
      msgpack_object *a = (msgpack_object *)(void *)c->node;
      c->node += (size_t)o->via.array.size * sizeof *a;
      dst->via.array.ptr = a;
      for (uint32_t i = 0; i < o->via.array.size; i++) copy_into(&a[i], &o->via.array.ptr[i], c);
      break;
    }
    case MSGPACK_OBJECT_MAP: {
      dst->via.map.ptr = NULL;
      if (!o->via.map.size) break;
      msgpack_object_kv *kv = (msgpack_object_kv *)(void *)c->node;
      c->node += (size_t)o->via.map.size * sizeof *kv;
      dst->via.map.ptr = kv;
      for (uint32_t i = 0; i < o->via.map.size; i++) {
        copy_into(&kv[i].key, &o->via.map.ptr[i].key, c);
        copy_into(&kv[i].val, &o->via.map.ptr[i].val, c);
      }
      break;
    }
    default:
      break;
  }
}

/* Makes p keep a copy of o; reuses p's buffer when it is large enough. */
static int pick_keep(pick_t *p, const msgpack_object *o, int64_t t) {
  size_t nodes = 0, raw = 0;
  copy_size(o, &nodes, &raw);
  size_t need = nodes + raw;
  if (need > p->cap) {
    void *buf = malloc(need);
    if (!buf) return SL_ENOMEM;
    free(p->buf);
    p->buf = buf;
    p->cap = need;
  }
  copy_cursor_t c = {.node = p->buf, .raw = need ? (char *)p->buf + nodes : NULL};
  copy_into(&p->v, o, &c);
  p->t = t;
  return 0;
}

/* Whether a value at time t replaces the kept one (first: strictly earlier;
 * last: not earlier, the later arrival winning ties). */
static bool pick_takes(const sl_agg_spec_t *spec, const pick_t *p, int64_t t) {
  if (!p->h.n) return true;
  return spec->fn == SL_AGG_FIRST ? t < p->t : t >= p->t;
}

/* ---- canonical hash ----------------------------------------------------- */

enum {
  TAG_NIL = 1,
  TAG_BOOL,
  TAG_INT,
  TAG_UINT,
  TAG_FLOAT,
  TAG_STR,
  TAG_BIN,
  TAG_EXT,
  TAG_ARRAY,
  TAG_MAP,
  TAG_ENTRY,
  TAG_DEEP,
};

#define HASH_DEPTH 64

static uint64_t hash_u64(uint64_t v, uint64_t tag) {
  uint8_t b[8];
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
  return XXH3_64bits_withSeed(b, sizeof b, tag);
}

static uint64_t hash_pair(uint64_t a, uint64_t b, uint64_t tag) {
  uint8_t buf[16];
  for (int i = 0; i < 8; i++) {
    buf[i] = (uint8_t)(a >> (8 * i));
    buf[8 + i] = (uint8_t)(b >> (8 * i));
  }
  return XXH3_64bits_withSeed(buf, sizeof buf, tag);
}

static uint64_t hash_number(double d) {
  if (d == 0) return hash_u64(0, TAG_INT);
  if (isnan(d)) return hash_u64(0x7ff8000000000000ull, TAG_FLOAT);
  if (d == nearbyint(d) && d >= -0x1p63 && d < 0x1p64) {
    if (d < 0x1p63) return hash_u64((uint64_t)(int64_t)d, TAG_INT);
    return hash_u64((uint64_t)d, TAG_UINT);
  }
  uint64_t bits;
  memcpy(&bits, &d, sizeof bits);
  return hash_u64(bits, TAG_FLOAT);
}

static uint64_t value_hash(const msgpack_object *v, int depth) {
  switch (v->type) {
    case MSGPACK_OBJECT_NIL:
      return hash_u64(0, TAG_NIL);
    case MSGPACK_OBJECT_BOOLEAN:
      return hash_u64(v->via.boolean ? 1 : 0, TAG_BOOL);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
      return hash_u64(v->via.u64, v->via.u64 > INT64_MAX ? TAG_UINT : TAG_INT);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
      return hash_u64((uint64_t)v->via.i64, TAG_INT);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
      return hash_number(v->via.f64);
    case MSGPACK_OBJECT_STR:
      return XXH3_64bits_withSeed(v->via.str.ptr, v->via.str.size, TAG_STR);
    case MSGPACK_OBJECT_BIN:
      return XXH3_64bits_withSeed(v->via.bin.ptr, v->via.bin.size, TAG_BIN);
    case MSGPACK_OBJECT_EXT:
      return hash_pair((uint64_t)(uint8_t)v->via.ext.type,
                       XXH3_64bits_withSeed(v->via.ext.ptr, v->via.ext.size, TAG_EXT), TAG_EXT);
    case MSGPACK_OBJECT_ARRAY: {
      if (depth >= HASH_DEPTH) return hash_pair(TAG_ARRAY, v->via.array.size, TAG_DEEP);
      uint64_t h = hash_u64(v->via.array.size, TAG_ARRAY);
      for (uint32_t i = 0; i < v->via.array.size; i++)
        h = hash_pair(h, value_hash(&v->via.array.ptr[i], depth + 1), TAG_ARRAY);
      return h;
    }
    case MSGPACK_OBJECT_MAP: {
      if (depth >= HASH_DEPTH) return hash_pair(TAG_MAP, v->via.map.size, TAG_DEEP);
      /* A sum of the entries' hashes does not depend on their order. */
      uint64_t sum = 0;
      for (uint32_t i = 0; i < v->via.map.size; i++)
        sum += hash_pair(value_hash(&v->via.map.ptr[i].key, depth + 1),
                         value_hash(&v->via.map.ptr[i].val, depth + 1), TAG_ENTRY);
      return hash_pair(v->via.map.size, sum, TAG_MAP);
    }
  }
  return hash_u64(v->type, TAG_DEEP);
}

uint64_t sl_agg_value_hash(const msgpack_object *v) {
  return value_hash(v, 0);
}

/* ---- redis_hll's elements ------------------------------------------------ */

/* Adds a value to a Redis HyperLogLog as the text PFADD would be given
 * (agg.h).  Numbers and strings need no heap; containers and extensions
 * are written as JSON into a buffer of their own.  0, SL_ENOMEM, or
 * SL_EDEPTH for a container nested too deeply for JSON (not added). */
static int redis_hll_add(sl_redis_hll_t *h, const msgpack_object *v) {
  char num[SL_DTOA_BUF];
  size_t n;
  switch (v->type) {
    case MSGPACK_OBJECT_STR:
      return sl_redis_hll_add(h, v->via.str.ptr, v->via.str.size);
    case MSGPACK_OBJECT_BIN:
      return sl_redis_hll_add(h, v->via.bin.ptr, v->via.bin.size);
    case MSGPACK_OBJECT_BOOLEAN:
      return v->via.boolean ? sl_redis_hll_add(h, "true", 4) : sl_redis_hll_add(h, "false", 5);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
      n = sl_dtoa_u64(v->via.u64, num);
      return sl_redis_hll_add(h, num, n);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
      n = sl_dtoa_i64(v->via.i64, num);
      return sl_redis_hll_add(h, num, n);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: {
      double d = v->via.f64;
      if (isnan(d)) return sl_redis_hll_add(h, "nan", 3);
      if (d == nearbyint(d) && d >= -0x1p63 && d < 0x1p63) {
        n = sl_dtoa_i64((int64_t)d, num); /* 3.0 is 3, -0.0 is 0 */
      } else if (d == nearbyint(d) && d >= 0x1p63 && d < 0x1p64) {
        n = sl_dtoa_u64((uint64_t)d, num);
      } else {
        n = v->type == MSGPACK_OBJECT_FLOAT32 ? sl_dtoa_float((float)d, num, 0) : sl_dtoa_double(d, num, 0);
      }
      return sl_redis_hll_add(h, num, n);
    }
    default:
      break;
  }
  sl_buf_t json = {0};
  int r = sl_json_encode(&json, v);
  if (!r) r = sl_redis_hll_add(h, json.data ? json.data : "", json.len);
  sl_buf_free(&json);
  return r;
}

/* ---- dispatch ----------------------------------------------------------- */

int sl_agg_update(const sl_agg_spec_t *spec, sl_agg_state_t *st, const msgpack_object *value,
                  int64_t event_time_ms) {
  hdr_t *h = (hdr_t *)st;
  if (spec->fn == SL_AGG_COUNT_ALL) {
    h->n++;
    return 0;
  }
  if (!value || value->type == MSGPACK_OBJECT_NIL) return 0;
  num_t num;
  switch (spec->fn) {
    case SL_AGG_COUNT:
      h->n++;
      return 0;
    case SL_AGG_FIRST:
    case SL_AGG_LAST: {
      pick_t *p = (pick_t *)st;
      if (pick_takes(spec, p, event_time_ms)) {
        int r = pick_keep(p, value, event_time_ms);
        if (r) return r;
      }
      h->n++;
      return 0;
    }
    case SL_AGG_COUNT_DISTINCT: {
      int r = sl_hll_add_hash(&((distinct_t *)st)->hll, sl_agg_value_hash(value));
      if (r) return r;
      h->n++;
      return 0;
    }
    case SL_AGG_REDIS_HLL: {
      int r = redis_hll_add(&((redis_hll_t *)st)->hll, value);
      if (r == SL_EDEPTH) {
        h->skipped++;
        return 0;
      }
      if (r) return r;
      h->n++;
      return 0;
    }
    case SL_AGG_SUM:
    case SL_AGG_AVG:
    case SL_AGG_MIN:
    case SL_AGG_MAX:
    case SL_AGG_PERCENTILE:
      break;
    case SL_AGG_COUNT_ALL:
      return 0;
  }
  if (!num_read(value, &num)) {
    h->skipped++;
    return 0;
  }
  switch (spec->fn) {
    case SL_AGG_SUM:
    case SL_AGG_AVG: {
      sum_t *s = (sum_t *)st;
      int r = sum_add_num(s, &num);
      if (r) return r;
      h->n++;
      return 0;
    }
    case SL_AGG_MIN:
      minmax_update((minmax_t *)st, &num, -1);
      return 0;
    case SL_AGG_MAX:
      minmax_update((minmax_t *)st, &num, 1);
      return 0;
    default:
      break;
  }
  int r = sl_dds_add(&((pct_t *)st)->dds, num_double(&num));
  if (r) return r;
  h->n++;
  return 0;
}

int sl_agg_merge(const sl_agg_spec_t *spec, sl_agg_state_t *dst, const sl_agg_state_t *src) {
  hdr_t *d = (hdr_t *)dst;
  const hdr_t *s = (const hdr_t *)src;
  int r = 0;
  switch (spec->fn) {
    case SL_AGG_COUNT_ALL:
    case SL_AGG_COUNT:
      break;
    case SL_AGG_SUM:
    case SL_AGG_AVG:
      r = sum_merge((sum_t *)dst, (const sum_t *)src);
      break;
    case SL_AGG_MIN:
      minmax_merge((minmax_t *)dst, (const minmax_t *)src, -1);
      return 0;
    case SL_AGG_MAX:
      minmax_merge((minmax_t *)dst, (const minmax_t *)src, 1);
      return 0;
    case SL_AGG_FIRST:
    case SL_AGG_LAST: {
      const pick_t *sp = (const pick_t *)src;
      if (sp->h.n && pick_takes(spec, (pick_t *)dst, sp->t))
        r = pick_keep((pick_t *)dst, &sp->v, sp->t);
      break;
    }
    case SL_AGG_COUNT_DISTINCT:
      r = sl_hll_merge(&((distinct_t *)dst)->hll, &((const distinct_t *)src)->hll);
      break;
    case SL_AGG_REDIS_HLL:
      r = sl_redis_hll_merge(&((redis_hll_t *)dst)->hll, &((const redis_hll_t *)src)->hll);
      break;
    case SL_AGG_PERCENTILE:
      r = sl_dds_merge(&((pct_t *)dst)->dds, &((const pct_t *)src)->dds);
      break;
  }
  if (r) return r;
  d->n += s->n;
  d->skipped += s->skipped;
  return 0;
}

void sl_agg_result(const sl_agg_spec_t *spec, const sl_agg_state_t *st, sl_agg_result_t *out) {
  const hdr_t *h = (const hdr_t *)st;
  memset(out, 0, sizeof *out);
  switch (spec->fn) {
    case SL_AGG_COUNT_ALL:
    case SL_AGG_COUNT:
      out->kind = SL_AGG_INT;
      out->u.i = (int64_t)h->n;
      return;
    case SL_AGG_SUM:
    case SL_AGG_AVG:
      sum_result(spec, (const sum_t *)st, out);
      return;
    case SL_AGG_MIN:
    case SL_AGG_MAX:
      minmax_result((const minmax_t *)st, out);
      return;
    case SL_AGG_FIRST:
    case SL_AGG_LAST:
      if (h->n) {
        out->kind = SL_AGG_VALUE;
        out->u.v = ((const pick_t *)st)->v;
      }
      return;
    case SL_AGG_COUNT_DISTINCT:
      out->kind = SL_AGG_INT;
      out->u.i = h->n ? llround(sl_hll_estimate(&((const distinct_t *)st)->hll)) : 0;
      return;
    case SL_AGG_REDIS_HLL:
      out->kind = SL_AGG_INT;
      out->u.i = (int64_t)sl_redis_hll_count(&((const redis_hll_t *)st)->hll);
      return;
    case SL_AGG_PERCENTILE:
      if (h->n && sl_dds_quantile(&((const pct_t *)st)->dds, spec->q, &out->u.d) == 0)
        out->kind = SL_AGG_DOUBLE;
      return;
  }
}

const sl_dds_t *sl_agg_sketch(const sl_agg_spec_t *spec, const sl_agg_state_t *st) {
  return spec->fn == SL_AGG_PERCENTILE ? &((const pct_t *)st)->dds : NULL;
}

const sl_redis_hll_t *sl_agg_redis_hll(const sl_agg_spec_t *spec, const sl_agg_state_t *st) {
  return spec->fn == SL_AGG_REDIS_HLL ? &((const redis_hll_t *)st)->hll : NULL;
}

uint64_t sl_agg_skipped(const sl_agg_spec_t *spec, const sl_agg_state_t *st) {
  (void)spec;
  return ((const hdr_t *)st)->skipped;
}

size_t sl_agg_bytes(const sl_agg_spec_t *spec, const sl_agg_state_t *st) {
  size_t n = sl_agg_state_size(spec);
  switch (spec->fn) {
    case SL_AGG_SUM:
    case SL_AGG_AVG:
      return n + sl_exact_sum_heap_bytes(&((const sum_t *)st)->x);
    case SL_AGG_FIRST:
    case SL_AGG_LAST:
      return n + ((const pick_t *)st)->cap;
    case SL_AGG_COUNT_DISTINCT:
      return n + sl_hll_heap_bytes(&((const distinct_t *)st)->hll);
    case SL_AGG_REDIS_HLL:
      return n + sl_redis_hll_heap_bytes(&((const redis_hll_t *)st)->hll);
    case SL_AGG_PERCENTILE:
      return n + sl_dds_heap_bytes(&((const pct_t *)st)->dds);
    default:
      return n;
  }
}

void sl_agg_free(const sl_agg_spec_t *spec, sl_agg_state_t *st) {
  switch (spec->fn) {
    case SL_AGG_SUM:
    case SL_AGG_AVG:
      sl_exact_sum_free(&((sum_t *)st)->x);
      break;
    case SL_AGG_FIRST:
    case SL_AGG_LAST:
      free(((pick_t *)st)->buf);
      break;
    case SL_AGG_COUNT_DISTINCT:
      sl_hll_free(&((distinct_t *)st)->hll);
      break;
    case SL_AGG_REDIS_HLL:
      sl_redis_hll_free(&((redis_hll_t *)st)->hll);
      break;
    case SL_AGG_PERCENTILE:
      sl_dds_free(&((pct_t *)st)->dds);
      break;
    default:
      break;
  }
  sl_agg_init(spec, st);
}
