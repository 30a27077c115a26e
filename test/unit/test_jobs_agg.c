/* Unit tests for agent/jobs/agg.c: the aggregate text (every function,
 * spacing, quoted and bracketed paths, errors with their columns), each
 * function's update against values computed here, the merge of partials of
 * random splits against one pass (bit for bit for the exact functions), the
 * documented corner cases (integer overflow, exact float sums, int/float
 * ties, first/last ties and owned copies, skipped values), and the memory a
 * key's states use.  Field paths are resolved by a dotted lookup of this
 * file's own, as the engine will resolve them with the path module. */
#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>

#include "core/error.h"
#include "jobs/agg.h"
#include "jobs/redis_hll.h"
#include "tap.h"

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state = 1;

static uint64_t rng(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double uniform01(void) {
  return (double)(rng() >> 11) * 0x1p-53;
}

/* "a.b.c" in nested maps with string keys; NULL when absent. */
static const msgpack_object *lookup(const msgpack_object *rec, const char *path) {
  const msgpack_object *o = rec;
  while (*path) {
    const char *dot = strchr(path, '.');
    size_t len = dot ? (size_t)(dot - path) : strlen(path);
    if (o->type != MSGPACK_OBJECT_MAP) return NULL;
    const msgpack_object *next = NULL;
    for (uint32_t i = 0; i < o->via.map.size && !next; i++) {
      const msgpack_object *k = &o->via.map.ptr[i].key;
      if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == len &&
          !memcmp(k->via.str.ptr, path, len))
        next = &o->via.map.ptr[i].val;
    }
    if (!next) return NULL;
    o = next;
    path += len + (dot ? 1 : 0);
  }
  return o;
}

static sl_agg_spec_t spec_of(const char *text) {
  sl_agg_spec_t s;
  sl_agg_error_t e = {0};
  if (sl_agg_parse(text, &s, &e)) {
    printf("# cannot parse %s: %d: %s\n", text, e.column, e.msg);
    abort();
  }
  return s;
}

static sl_agg_state_t *state_new(const sl_agg_spec_t *s) {
  sl_agg_state_t *st = aligned_alloc(SL_AGG_STATE_ALIGN, sl_agg_state_size(s));
  sl_agg_init(s, st);
  return st;
}

static void state_del(const sl_agg_spec_t *s, sl_agg_state_t *st) {
  sl_agg_free(s, st);
  free(st);
}

static int results_equal(const sl_agg_result_t *a, const sl_agg_result_t *b) {
  if (a->kind != b->kind) return 0;
  switch (a->kind) {
    case SL_AGG_NULL:
      return 1;
    case SL_AGG_INT:
      return a->u.i == b->u.i;
    case SL_AGG_DOUBLE:
      return memcmp(&a->u.d, &b->u.d, sizeof(double)) == 0;
    case SL_AGG_VALUE:
      return msgpack_object_equal(a->u.v, b->u.v);
  }
  return 0;
}

static void result_str(const sl_agg_result_t *r, char *buf, size_t len) {
  switch (r->kind) {
    case SL_AGG_NULL:
      snprintf(buf, len, "null");
      break;
    case SL_AGG_INT:
      snprintf(buf, len, "%lld", (long long)r->u.i);
      break;
    case SL_AGG_DOUBLE:
      snprintf(buf, len, "%.17g", r->u.d);
      break;
    case SL_AGG_VALUE:
      msgpack_object_print_buffer(buf, len, r->u.v);
      break;
  }
}

/* Values of one text, one at a time: "[1, 2.5, \"x\"]" style built by hand
 * through a packer. */
typedef struct {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_unpacked up;
} pack_t;

static void pack_begin(pack_t *p) {
  msgpack_sbuffer_init(&p->sb);
  msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
  msgpack_unpacked_init(&p->up);
}

/* Unpacks what was packed (one value) and returns it. */
static const msgpack_object *pack_end(pack_t *p) {
  size_t off = 0;
  if (msgpack_unpack_next(&p->up, p->sb.data, p->sb.size, &off) != MSGPACK_UNPACK_SUCCESS) abort();
  return &p->up.data;
}

static void pack_free(pack_t *p) {
  msgpack_unpacked_destroy(&p->up);
  msgpack_sbuffer_destroy(&p->sb);
}

static void pack_str(msgpack_packer *pk, const char *s) {
  msgpack_pack_str(pk, strlen(s));
  msgpack_pack_str_body(pk, s, strlen(s));
}

/* ---- parsing ------------------------------------------------------------ */

static void parses(const char *text, sl_agg_fn_t fn, const char *field, double q) {
  sl_agg_spec_t s;
  sl_agg_error_t e = {0};
  int r = sl_agg_parse(text, &s, &e);
  char qs[32] = "";
  if (fn == SL_AGG_PERCENTILE) snprintf(qs, sizeof qs, ", %g", q);
  ok(r == 0 && s.fn == fn && strcmp(s.field, field) == 0 && s.q == q, "'%s' parses as %s(%s%s)",
     text, sl_agg_fn_name(fn), field, qs);
  if (r) printf("#   error %d at %d: %s\n", r, e.column, e.msg);
}

static void refused(const char *text, int code, int column, const char *words) {
  sl_agg_spec_t s;
  memset(&s, 0x55, sizeof s);
  sl_agg_error_t e = {0};
  int r = sl_agg_parse(text, &s, &e);
  ok(r == code && e.column == column && strstr(e.msg, words) && s.fn == 0,
     "'%s' refused (%s) at column %d: %s", text, sl_err_name(code), column, e.msg);
  if (r != code || e.column != column)
    printf("#   got %s at column %d\n", sl_err_name(r), e.column);
}

static void test_parse(void) {
  parses("count()", SL_AGG_COUNT_ALL, "", 0);
  parses("  count ( * )  ", SL_AGG_COUNT_ALL, "", 0);
  parses("count(user)", SL_AGG_COUNT, "user", 0);
  parses("sum(bytes)", SL_AGG_SUM, "bytes", 0);
  parses("min( req.latency_ms )", SL_AGG_MIN, "req.latency_ms", 0);
  parses("max(a.b)", SL_AGG_MAX, "a.b", 0);
  parses("avg(x)", SL_AGG_AVG, "x", 0);
  parses("first(msg)", SL_AGG_FIRST, "msg", 0);
  parses("last(msg)", SL_AGG_LAST, "msg", 0);
  parses("count_distinct(user.id)", SL_AGG_COUNT_DISTINCT, "user.id", 0);
  parses("redis_hll(user.id)", SL_AGG_REDIS_HLL, "user.id", 0);
  parses("percentile(latency, 0.99)", SL_AGG_PERCENTILE, "latency", 0.99);
  parses("percentile(latency,.5)", SL_AGG_PERCENTILE, "latency", 0.5);
  parses("percentile( latency , 9.99e-1 )", SL_AGG_PERCENTILE, "latency", 0.999);
  /* The path is kept as written, whatever syntax the path module uses. */
  parses("sum(a[\"x,y)\"].b)", SL_AGG_SUM, "a[\"x,y)\"].b", 0);
  parses("last('it''s')", SL_AGG_LAST, "'it''s'", 0);
  parses("max(a['q\\'(,'])", SL_AGG_MAX, "a['q\\'(,']", 0);
  parses("sum(len(a, b))", SL_AGG_SUM, "len(a, b)", 0);
  parses("avg(tags{0})", SL_AGG_AVG, "tags{0}", 0);

  refused("", SL_ESYNTAX, 1, "expected an aggregate function");
  refused("  (x)", SL_ESYNTAX, 3, "expected an aggregate function");
  refused("median(x)", SL_ESYNTAX, 1, "unknown aggregate function 'median'");
  refused("SUM(x)", SL_ESYNTAX, 1, "unknown aggregate function 'SUM'");
  refused("sum x", SL_ESYNTAX, 5, "expected '(' after sum");
  refused("sum(x", SL_ESYNTAX, 6, "expected ')' to close sum(");
  refused("sum(x) y", SL_ESYNTAX, 8, "unexpected text after sum(...)");
  refused("sum()", SL_ESYNTAX, 1, "sum takes one field: sum(f)");
  refused("count(a, b)", SL_ESYNTAX, 10, "count takes one field: count(f) or count()");
  refused("sum(a,)", SL_ESYNTAX, 7, "empty argument to sum");
  refused("sum( , a)", SL_ESYNTAX, 6, "empty argument to sum");
  refused("avg(a, b, c, d)", SL_ESYNTAX, 14, "too many arguments to avg");
  refused("percentile(x)", SL_ESYNTAX, 1, "percentile takes a field and a quantile");
  refused("percentile(x, 1)", SL_ERANGE, 15, "quantile 1 is not strictly between 0 and 1");
  refused("percentile(x, 0)", SL_ERANGE, 15, "not strictly between 0 and 1");
  refused("percentile(x, 99)", SL_ERANGE, 15, "0.99 is the 99th percentile");
  refused("percentile(x, -0.5)", SL_ERANGE, 15, "not strictly between");
  refused("percentile(x, nan)", SL_ESYNTAX, 15, "expected a quantile between 0 and 1");
  refused("percentile(x, 0x0.8)", SL_ESYNTAX, 15, "expected a quantile");
  refused("percentile(x, 0.5.5)", SL_ESYNTAX, 15, "expected a quantile");
  refused("sum(a[\"b)", SL_ESYNTAX, 7, "unterminated \" quote");
  refused("sum(a[b)", SL_ESYNTAX, 8, "')' closes '['");
  refused("sum(a[b", SL_ESYNTAX, 6, "unclosed '['");
  refused("sum(a])", SL_ESYNTAX, 6, "unbalanced ']'");
  refused("sum(a[b})", SL_ESYNTAX, 8, "'}' closes '['");
  char longf[SL_AGG_FIELD_MAX + 16];
  snprintf(longf, sizeof longf, "sum(%0*d)", SL_AGG_FIELD_MAX, 0);
  refused(longf, -ENAMETOOLONG, 5, "field path longer than 255 bytes");
  snprintf(longf, sizeof longf, "sum(%0*d)", SL_AGG_FIELD_MAX - 1, 0);
  sl_agg_spec_t s;
  ok(sl_agg_parse(longf, &s, NULL) == 0 && strlen(s.field) == SL_AGG_FIELD_MAX - 1,
     "a field path of 255 bytes fits");
  ok(sl_agg_parse("nope", &s, NULL) == SL_ESYNTAX, "err may be NULL");

  /* Random texts from the grammar's characters: an answer, never a crash,
   * and an error column within the text. */
  static const char alphabet[] = "sumaxcontd_percil()[]{},'\"\\ .0159e-";
  rng_state = 77;
  int sane = 1, parsed = 0;
  for (int i = 0; i < 20000; i++) {
    char text[24];
    int len = (int)(rng() % (sizeof text - 1));
    for (int k = 0; k < len; k++) text[k] = alphabet[rng() % (sizeof alphabet - 1)];
    if (i % 4 == 0 && len > 6)
      memcpy(text, i % 8 ? "sum(" : "percentile(x,", i % 8 ? 4 : 13 > len ? 4 : 13);
    text[len] = 0;
    sl_agg_error_t e = {0};
    int r = sl_agg_parse(text, &s, &e);
    if (r == 0)
      parsed++;
    else if (r > 0 || e.column < 1 || e.column > len + 1 || !e.msg[0])
      sane = 0;
  }
  ok(sane, "20000 random texts: each parses (%d did) or fails with a column inside it", parsed);
}

/* ---- data sets ---------------------------------------------------------- */

#define N_REC 3000

typedef struct {
  msgpack_sbuffer sb;
  msgpack_unpacked up;
  const msgpack_object *rec; /* N_REC maps */
  int64_t t[N_REC];
} dataset_t;

/* Packs N_REC records {id, v, d, s, w: {x, tags}} with values of every
 * kind in v (integers small and huge, floats over 10 orders of magnitude,
 * numeric strings, booleans, nil, absent) and event times that either
 * repeat (ties) or are all distinct. */
static void dataset_make(dataset_t *ds, uint64_t seed, int unique_times) {
  rng_state = seed;
  msgpack_packer pk;
  msgpack_sbuffer_init(&ds->sb);
  msgpack_packer_init(&pk, &ds->sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, N_REC);
  for (int i = 0; i < N_REC; i++) {
    ds->t[i] = unique_times ? i : (int64_t)(rng() % 400);
    int kind = (int)(rng() % 20);
    msgpack_pack_map(&pk, kind < 2 ? 4 : 5);
    pack_str(&pk, "id");
    msgpack_pack_int64(&pk, i);
    if (kind >= 2) { /* kinds 0, 1: no v */
      pack_str(&pk, "v");
      if (kind < 9) {
        int64_t v = (int64_t)(rng() % 2000001) - 1000000;
        if (kind == 2) v = (int64_t)(rng() >> 2) * (rng() & 1 ? 1 : -1); /* up to 2^62 */
        msgpack_pack_int64(&pk, v);
      } else if (kind < 16) {
        double v = uniform01() * pow(10, (int)(rng() % 11) - 5) * (rng() & 1 ? 1 : -1);
        if (kind == 15) v = (double)(int64_t)(rng() % 2000) - 1000; /* integral floats */
        msgpack_pack_double(&pk, v);
      } else if (kind == 16) {
        pack_str(&pk, "12");
      } else if (kind == 17) {
        msgpack_pack_true(&pk);
      } else if (kind == 18) {
        msgpack_pack_nil(&pk);
      } else {
        msgpack_pack_uint64(&pk, 7); /* a repeated small value */
      }
    }
    pack_str(&pk, "d"); /* dyadic: every partial sum is exact in a double */
    msgpack_pack_double(&pk, (double)((int64_t)(rng() % 2000001) - 1000000) / 64);
    pack_str(&pk, "s");
    char txt[32];
    snprintf(txt, sizeof txt, "msg-%d-%s", i, i % 3 ? "x" : "longer text value");
    pack_str(&pk, txt);
    pack_str(&pk, "w");
    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "x");
    msgpack_pack_int64(&pk, (int64_t)(rng() % 100));
    pack_str(&pk, "tags");
    msgpack_pack_array(&pk, 2);
    pack_str(&pk, i % 2 ? "a" : "b");
    msgpack_pack_int64(&pk, i % 5);
  }
  msgpack_unpacked_init(&ds->up);
  size_t off = 0;
  if (msgpack_unpack_next(&ds->up, ds->sb.data, ds->sb.size, &off) != MSGPACK_UNPACK_SUCCESS)
    abort();
  ds->rec = ds->up.data.via.array.ptr;
}

static void dataset_free(dataset_t *ds) {
  msgpack_unpacked_destroy(&ds->up);
  msgpack_sbuffer_destroy(&ds->sb);
}

static int update(const sl_agg_spec_t *s, sl_agg_state_t *st, const dataset_t *ds, int i) {
  return sl_agg_update(s, st, s->field[0] ? lookup(&ds->rec[i], s->field) : NULL, ds->t[i]);
}

static void single_pass(const sl_agg_spec_t *s, const dataset_t *ds, sl_agg_result_t *out,
                        sl_agg_state_t **keep) {
  sl_agg_state_t *st = state_new(s);
  for (int i = 0; i < N_REC; i++)
    if (update(s, st, ds, i)) abort();
  sl_agg_result(s, st, out);
  *keep = st; /* the result may point into it */
}

static const char *all_specs[] = {
    "count()",
    "count(v)",
    "sum(v)",
    "min(v)",
    "max(v)",
    "avg(v)",
    "first(v)",
    "last(v)",
    "count_distinct(v)",
    "percentile(v, 0.9)",
    "sum(id)",
    "sum(d)",
    "avg(d)",
    "min(w.x)",
    "first(s)",
    "last(s)",
    "first(w)",
    "last(w.tags)",
    "count_distinct(w)",
    "count_distinct(s)",
    "percentile(d, 0.5)",
    "redis_hll(v)",
    "redis_hll(w)",
    "redis_hll(s)",
};
#define N_SPECS (sizeof all_specs / sizeof all_specs[0])

/* Splits the records into `parts` partials: contiguous runs at random cut
 * points (arrival order kept: merged left to right), or scattered at random
 * and merged in a random order.  Returns whether the merged result equals
 * the single-pass one. */
static int split_equal(const sl_agg_spec_t *s, const dataset_t *ds, int parts, int scatter,
                       const sl_agg_result_t *want, uint64_t want_skipped, char *got_txt,
                       size_t got_len) {
  sl_agg_state_t *part[8];
  int cut[9];
  for (int p = 0; p < parts; p++) part[p] = state_new(s);
  cut[0] = 0;
  cut[parts] = N_REC;
  for (int p = 1; p < parts; p++) cut[p] = (int)(rng() % (N_REC + 1));
  for (int p = 1; p < parts; p++) /* sort the cuts */
    for (int q = p; q > 1 && cut[q] < cut[q - 1]; q--) {
      int t = cut[q];
      cut[q] = cut[q - 1];
      cut[q - 1] = t;
    }
  int err = 0;
  for (int p = 0; p < parts; p++)
    for (int i = cut[p]; i < cut[p + 1]; i++)
      err |= update(s, part[scatter ? (int)(rng() % parts) : p], ds, i);
  int order[8];
  for (int p = 0; p < parts; p++) order[p] = p;
  if (scatter)
    for (int p = parts - 1; p > 0; p--) {
      int q = (int)(rng() % (p + 1)), t = order[p];
      order[p] = order[q];
      order[q] = t;
    }
  sl_agg_state_t *m = state_new(s);
  for (int p = 0; p < parts; p++) err |= sl_agg_merge(s, m, part[order[p]]);
  sl_agg_result_t got;
  sl_agg_result(s, m, &got);
  int same = !err && results_equal(&got, want) && sl_agg_skipped(s, m) == want_skipped;
  result_str(&got, got_txt, got_len);
  for (int p = 0; p < parts; p++) state_del(s, part[p]);
  state_del(s, m);
  return same;
}

static void test_merge_splits(void) {
  dataset_t ties, unique;
  dataset_make(&ties, 42, 0);
  dataset_make(&unique, 43, 1);
  for (size_t k = 0; k < N_SPECS; k++) {
    sl_agg_spec_t s = spec_of(all_specs[k]);
    for (int pass = 0; pass < 2; pass++) {
      const dataset_t *ds = pass ? &unique : &ties;
      sl_agg_result_t want;
      sl_agg_state_t *keep;
      single_pass(&s, ds, &want, &keep);
      char want_txt[256], got_txt[256] = "";
      result_str(&want, want_txt, sizeof want_txt);
      int all = 1;
      rng_state = 1000 + k;
      for (int trial = 0; trial < 6 && all; trial++) {
        int parts = 2 + trial % 5;
        all = split_equal(&s, ds, parts, pass, &want, sl_agg_skipped(&s, keep), got_txt,
                          sizeof got_txt);
      }
      ok(all, "%s: merged %s partials equal one pass (%s)%s%s", all_specs[k],
         pass ? "scattered (distinct times)" : "contiguous (tied times)", want_txt,
         all ? "" : " got ", all ? "" : got_txt);
      state_del(&s, keep);
    }
  }
  dataset_free(&ties);
  dataset_free(&unique);
}

/* ---- single-pass results against values computed here ------------------- */

typedef struct {
  int has;
  int is_int; /* else long double exact value of a double */
  long double v;
} ref_num_t;

static void test_against_reference(void) {
  dataset_t ds;
  dataset_make(&ds, 42, 0);
  int64_t present = 0, skipped = 0, numeric = 0;
  long double dsum = 0;
  int64_t idsum = 0;
  ref_num_t mn = {0}, mx = {0};
  int first = -1, last = -1;
  for (int i = 0; i < N_REC; i++) {
    const msgpack_object *v = lookup(&ds.rec[i], "v");
    idsum += i;
    dsum += lookup(&ds.rec[i], "d")->via.f64;
    if (!v || v->type == MSGPACK_OBJECT_NIL) continue;
    present++;
    if (first < 0 || ds.t[i] < ds.t[first]) first = i;
    if (last < 0 || ds.t[i] >= ds.t[last]) last = i;
    ref_num_t n = {1, 0, 0};
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
      n.is_int = 1;
      n.v = (long double)v->via.u64;
    } else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
      n.is_int = 1;
      n.v = (long double)v->via.i64;
    } else if (v->type == MSGPACK_OBJECT_FLOAT64) {
      n.v = v->via.f64;
    } else {
      skipped++;
      continue;
    }
    numeric++;
    if (!mn.has || n.v < mn.v || (n.v == mn.v && n.is_int && !mn.is_int)) mn = n;
    if (!mx.has || n.v > mx.v || (n.v == mx.v && n.is_int && !mx.is_int)) mx = n;
  }
  struct {
    const char *spec;
    sl_agg_kind_t kind;
    long double want;
    uint64_t skipped;
  } cases[] = {
      {"count()", SL_AGG_INT, N_REC, 0},
      {"count(v)", SL_AGG_INT, present, 0},
      {"sum(id)", SL_AGG_INT, idsum, 0},
      {"sum(d)", SL_AGG_DOUBLE, dsum, 0},
      {"avg(d)", SL_AGG_DOUBLE, (double)dsum / N_REC, 0},
      {"min(v)", mn.is_int ? SL_AGG_INT : SL_AGG_DOUBLE, mn.v, skipped},
      {"max(v)", mx.is_int ? SL_AGG_INT : SL_AGG_DOUBLE, mx.v, skipped},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    sl_agg_spec_t s = spec_of(cases[k].spec);
    sl_agg_result_t r;
    sl_agg_state_t *st;
    single_pass(&s, &ds, &r, &st);
    long double got = r.kind == SL_AGG_INT ? (long double)r.u.i : r.u.d;
    ok(r.kind == cases[k].kind && got == cases[k].want &&
           sl_agg_skipped(&s, st) == cases[k].skipped,
       "%s = %.17Lg (skipped %llu)", cases[k].spec, cases[k].want,
       (unsigned long long)cases[k].skipped);
    if (r.kind != cases[k].kind || got != cases[k].want)
      printf("#   got kind %d, %.17Lg\n", r.kind, got);
    state_del(&s, st);
  }
  ok(skipped > 0 && numeric > 0, "the data set has numeric and non-numeric values (%lld skipped)",
     (long long)skipped);

  /* first/last: the earliest / latest time, ties by arrival. */
  const char *pick[] = {"first(v)", "last(v)"};
  for (int k = 0; k < 2; k++) {
    sl_agg_spec_t s = spec_of(pick[k]);
    sl_agg_result_t r;
    sl_agg_state_t *st;
    single_pass(&s, &ds, &r, &st);
    int at = k ? last : first;
    ok(r.kind == SL_AGG_VALUE && msgpack_object_equal(r.u.v, *lookup(&ds.rec[at], "v")),
       "%s is record %d's value (time %lld, ties by arrival)", pick[k], at, (long long)ds.t[at]);
    state_del(&s, st);
  }

  /* percentile: within 1 % of the exact value of rank floor(q (n - 1)). */
  double *xs = malloc(sizeof(double) * N_REC);
  int n = 0;
  for (int i = 0; i < N_REC; i++) {
    const msgpack_object *v = lookup(&ds.rec[i], "v");
    if (!v) continue;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) xs[n++] = (double)v->via.u64;
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) xs[n++] = (double)v->via.i64;
    if (v->type == MSGPACK_OBJECT_FLOAT64) xs[n++] = v->via.f64;
  }
  for (int i = 1; i < n; i++) /* insertion sort: small n */
    for (int j = i; j > 0 && xs[j] < xs[j - 1]; j--) {
      double t = xs[j];
      xs[j] = xs[j - 1];
      xs[j - 1] = t;
    }
  const char *pct[] = {"percentile(v, 0.5)", "percentile(v, 0.9)", "percentile(v, 0.99)",
                       "percentile(v, 0.999)"};
  for (int k = 0; k < 4; k++) {
    sl_agg_spec_t s = spec_of(pct[k]);
    sl_agg_result_t r;
    sl_agg_state_t *st;
    single_pass(&s, &ds, &r, &st);
    double want = xs[(int)(s.q * (n - 1))];
    ok(r.kind == SL_AGG_DOUBLE && fabs(r.u.d - want) <= 0.01 * fabs(want) * (1 + 1e-9) &&
           sl_agg_skipped(&s, st) == (uint64_t)skipped,
       "%s = %.6g, exact %.6g", pct[k], r.u.d, want);
    state_del(&s, st);
  }
  free(xs);

  /* count_distinct: exact count of distinct canonical values (by hash). */
  uint64_t *hs = malloc(sizeof(uint64_t) * N_REC);
  int nh = 0;
  for (int i = 0; i < N_REC; i++) {
    const msgpack_object *v = lookup(&ds.rec[i], "v");
    if (v && v->type != MSGPACK_OBJECT_NIL) hs[nh++] = sl_agg_value_hash(v);
  }
  int distinct = 0;
  for (int i = 0; i < nh; i++) {
    int seen = 0;
    for (int j = 0; j < i && !seen; j++) seen = hs[j] == hs[i];
    distinct += !seen;
  }
  free(hs);
  sl_agg_spec_t s = spec_of("count_distinct(v)");
  sl_agg_result_t r;
  sl_agg_state_t *st;
  single_pass(&s, &ds, &r, &st);
  ok(r.kind == SL_AGG_INT && fabs((double)r.u.i / distinct - 1) <= 3 * 0.01625,
     "count_distinct(v) = %lld, exact %d", (long long)r.u.i, distinct);
  state_del(&s, st);
  dataset_free(&ds);
}

/* ---- documented corner cases -------------------------------------------- */

typedef enum { V_END, V_INT, V_UINT, V_DBL, V_STR, V_TRUE, V_NIL, V_ABSENT } vk_t;
typedef struct {
  vk_t k;
  int64_t i;
  uint64_t u;
  double d;
  const char *s;
} val_t;

#define I(x) \
  { V_INT, (x), 0, 0, NULL }
#define U(x) \
  { V_UINT, 0, (x), 0, NULL }
#define D(x) \
  { V_DBL, 0, 0, (x), NULL }
#define S(x) \
  { V_STR, 0, 0, 0, (x) }
#define T \
  { V_TRUE, 0, 0, 0, NULL }
#define NIL \
  { V_NIL, 0, 0, 0, NULL }
#define ABSENT \
  { V_ABSENT, 0, 0, 0, NULL }

/* Feeds the values (times 0, 1, 2...) to a fresh state and returns it. */
static sl_agg_state_t *feed(const sl_agg_spec_t *s, const val_t *vals) {
  sl_agg_state_t *st = state_new(s);
  for (int i = 0; vals[i].k != V_END; i++) {
    pack_t p;
    pack_begin(&p);
    switch (vals[i].k) {
      case V_INT:
        msgpack_pack_int64(&p.pk, vals[i].i);
        break;
      case V_UINT:
        msgpack_pack_uint64(&p.pk, vals[i].u);
        break;
      case V_DBL:
        msgpack_pack_double(&p.pk, vals[i].d);
        break;
      case V_STR:
        pack_str(&p.pk, vals[i].s);
        break;
      case V_TRUE:
        msgpack_pack_true(&p.pk);
        break;
      default:
        msgpack_pack_nil(&p.pk);
        break;
    }
    const msgpack_object *o = pack_end(&p);
    if (sl_agg_update(s, st, vals[i].k == V_ABSENT ? NULL : o, i)) abort();
    pack_free(&p);
  }
  return st;
}

static void expect_int(const char *spec, const val_t *vals, int64_t want, uint64_t skipped) {
  sl_agg_spec_t s = spec_of(spec);
  sl_agg_state_t *st = feed(&s, vals);
  sl_agg_result_t r;
  sl_agg_result(&s, st, &r);
  ok(r.kind == SL_AGG_INT && r.u.i == want && sl_agg_skipped(&s, st) == skipped,
     "%s gives the integer %lld (skipped %llu)", spec, (long long)want,
     (unsigned long long)skipped);
  if (r.kind != SL_AGG_INT || r.u.i != want) {
    char b[128];
    result_str(&r, b, sizeof b);
    printf("#   got %s (kind %d), skipped %llu\n", b, r.kind,
           (unsigned long long)sl_agg_skipped(&s, st));
  }
  state_del(&s, st);
}

static void expect_double(const char *spec, const val_t *vals, double want, const char *why) {
  sl_agg_spec_t s = spec_of(spec);
  sl_agg_state_t *st = feed(&s, vals);
  sl_agg_result_t r;
  sl_agg_result(&s, st, &r);
  ok(r.kind == SL_AGG_DOUBLE && (r.u.d == want || (isnan(want) && isnan(r.u.d))),
     "%s gives %.17g: %s", spec, want, why);
  if (r.kind != SL_AGG_DOUBLE || r.u.d != want) {
    char b[128];
    result_str(&r, b, sizeof b);
    printf("#   got %s (kind %d)\n", b, r.kind);
  }
  state_del(&s, st);
}

static void expect_null(const char *spec, const val_t *vals, const char *why) {
  sl_agg_spec_t s = spec_of(spec);
  sl_agg_state_t *st = feed(&s, vals);
  sl_agg_result_t r;
  sl_agg_result(&s, st, &r);
  ok(r.kind == SL_AGG_NULL, "%s gives null: %s", spec, why);
  state_del(&s, st);
}

static void test_numbers(void) {
  const val_t empty[] = {{V_END, 0, 0, 0, NULL}};
  const val_t nothing[] = {NIL, ABSENT, S("5"), T, {V_END, 0, 0, 0, NULL}};
  expect_int("count()", nothing, 4, 0);
  expect_int("count(v)", nothing, 2, 0);
  expect_int("count(v)", empty, 0, 0);
  expect_null("sum(v)", nothing, "no numeric value");
  expect_null("avg(v)", empty, "no value");
  expect_null("min(v)", nothing, "no numeric value");
  expect_null("percentile(v, 0.5)", nothing, "no numeric value");
  expect_null("first(v)", (const val_t[]){NIL, ABSENT, {V_END, 0, 0, 0, NULL}},
              "nil and absent are not values");
  expect_int("count_distinct(v)", (const val_t[]){NIL, ABSENT, {V_END, 0, 0, 0, NULL}}, 0, 0);

  /* Skipped: non-numeric values, counted; nil and absent are not. */
  expect_int("sum(v)", (const val_t[]){I(1), S("12"), T, NIL, ABSENT, I(2), {V_END, 0, 0, 0, NULL}},
             3, 2);
  expect_int("min(v)", (const val_t[]){I(5), S("1"), I(3), {V_END, 0, 0, 0, NULL}}, 3, 1);
  expect_double("avg(v)", (const val_t[]){I(1), I(2), S("x"), {V_END, 0, 0, 0, NULL}}, 1.5,
                "integers average to a double");
  expect_double("sum(v)",
                (const val_t[]){I(1), D(INFINITY), D(NAN), D(2.5), {V_END, 0, 0, 0, NULL}}, 3.5,
                "NaN and infinities are skipped");

  /* Integer sums: exact in 128 bits, an integer while they fit int64. */
  expect_int("sum(v)",
             (const val_t[]){I(INT64_MAX), I(INT64_MAX), I(-INT64_MAX), {V_END, 0, 0, 0, NULL}},
             INT64_MAX, 0);
  expect_int("sum(v)",
             (const val_t[]){U(UINT64_MAX), I(INT64_MIN), I(-INT64_MAX), {V_END, 0, 0, 0, NULL}}, 0,
             0);
  expect_int("sum(v)", (const val_t[]){I(INT64_MIN), I(-1), I(1), {V_END, 0, 0, 0, NULL}},
             INT64_MIN, 0);
  expect_double("sum(v)", (const val_t[]){I(INT64_MAX), I(INT64_MAX), {V_END, 0, 0, 0, NULL}},
                0x1p64, "an integer sum past int64 becomes the nearest double");
  expect_double("sum(v)",
                (const val_t[]){I(INT64_MIN), I(INT64_MIN), I(-1), {V_END, 0, 0, 0, NULL}}, -0x1p64,
                "negative too, correctly rounded");
  expect_double("avg(v)", (const val_t[]){U(UINT64_MAX), U(UINT64_MAX), {V_END, 0, 0, 0, NULL}},
                0x1p64, "the average of huge unsigned integers");

  /* Float sums: exact, rounded once. */
  val_t tenth[11];
  for (int i = 0; i < 10; i++) tenth[i] = (val_t)D(0.1);
  tenth[10] = (val_t){V_END, 0, 0, 0, NULL};
  expect_double("sum(v)", tenth, 1.0,
                "ten times 0.1 is 1 (a running double sum gives 0.9999999999999999)");
  expect_double("sum(v)", (const val_t[]){D(1e100), D(1.0), D(-1e100), {V_END, 0, 0, 0, NULL}}, 1.0,
                "1e100 + 1 - 1e100 is 1 (a running double sum gives 0)");
  expect_double("sum(v)", (const val_t[]){I(9007199254740993), D(0.5), {V_END, 0, 0, 0, NULL}},
                9007199254740994.0,
                "2^53+1 + 0.5 rounds to 2^53+2, not 2^53 as converting the integer first would");
  expect_double("sum(v)", (const val_t[]){D(1), D(0x1p-53), {V_END, 0, 0, 0, NULL}}, 1.0,
                "1 + 2^-53: exactly half an ulp rounds to even (1)");
  expect_double("sum(v)", (const val_t[]){D(1), D(0x1p-53), D(0x1p-106), {V_END, 0, 0, 0, NULL}},
                1 + 0x1p-52, "1 + 2^-53 + 2^-106: just above half an ulp rounds up");
  expect_double("sum(v)", (const val_t[]){I(3), D(0.0), {V_END, 0, 0, 0, NULL}}, 3.0,
                "any float makes the sum a double");
  expect_double("sum(v)",
                (const val_t[]){D(1.7e308), D(1.7e308), D(-1.7e308), {V_END, 0, 0, 0, NULL}},
                1.7e308, "no intermediate overflow: 1.7e308 + 1.7e308 - 1.7e308");
  expect_double("sum(v)", (const val_t[]){D(1.7e308), D(1.7e308), {V_END, 0, 0, 0, NULL}}, INFINITY,
                "a sum beyond DBL_MAX reads as +inf");
  expect_double("avg(v)", (const val_t[]){D(-1.7e308), D(-1.7e308), {V_END, 0, 0, 0, NULL}},
                -INFINITY, "so does an average whose sum is beyond -DBL_MAX (documented)");
  expect_double(
      "sum(v)",
      (const val_t[]){D(5e-324), D(5e-324), D(-1e-300), D(1e-300), {V_END, 0, 0, 0, NULL}}, 1e-323,
      "subnormals are exact");
  expect_double("avg(v)", (const val_t[]){D(0.1), D(0.2), I(3), {V_END, 0, 0, 0, NULL}}, 3.3 / 3,
                "mixed average");

  /* min/max: exact comparison across integers and floats. */
  expect_int("max(v)",
             (const val_t[]){D(9007199254740992.0), I(9007199254740993), {V_END, 0, 0, 0, NULL}},
             9007199254740993, 0);
  expect_double("max(v)", (const val_t[]){I(INT64_MAX), D(0x1p63), {V_END, 0, 0, 0, NULL}}, 0x1p63,
                "2^63 (a float) is above INT64_MAX, though (double)INT64_MAX == 2^63");
  expect_int("min(v)", (const val_t[]){D(0x1p63), I(INT64_MAX), {V_END, 0, 0, 0, NULL}}, INT64_MAX,
             0);
  expect_int("min(v)", (const val_t[]){D(-2.5), I(-3), D(-2.9), {V_END, 0, 0, 0, NULL}}, -3, 0);
  expect_double("min(v)", (const val_t[]){I(-2), D(-2.5), I(-1), {V_END, 0, 0, 0, NULL}}, -2.5,
                "a float minimum");
  expect_int("max(v)", (const val_t[]){D(3.0), I(3), {V_END, 0, 0, 0, NULL}}, 3, 0);
  expect_int("max(v)", (const val_t[]){I(3), D(3.0), {V_END, 0, 0, 0, NULL}}, 3, 0);
  expect_int("min(v)", (const val_t[]){D(-0.0), I(0), {V_END, 0, 0, 0, NULL}}, 0, 0);
  sl_agg_spec_t s = spec_of("max(v)");
  sl_agg_state_t *st =
      feed(&s, (const val_t[]){I(-1), U(UINT64_MAX), D(1.8e19), {V_END, 0, 0, 0, NULL}});
  sl_agg_result_t r;
  sl_agg_result(&s, st, &r);
  ok(r.kind == SL_AGG_VALUE && r.u.v.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
         r.u.v.via.u64 == UINT64_MAX,
     "max(v) of UINT64_MAX is that msgpack unsigned integer (above 1.8e19)");
  state_del(&s, st);
  st = feed(&s, (const val_t[]){I(-1), U(UINT64_MAX), D(1.9e19), {V_END, 0, 0, 0, NULL}});
  sl_agg_result(&s, st, &r);
  ok(r.kind == SL_AGG_DOUBLE && r.u.d == 1.9e19, "max(v): 1.9e19 is above UINT64_MAX");
  state_del(&s, st);
  s = spec_of("percentile(v, 0.5)");
  st = feed(&s, (const val_t[]){I(10), I(20), I(30), S("x"), {V_END, 0, 0, 0, NULL}});
  sl_agg_result(&s, st, &r);
  ok(r.kind == SL_AGG_DOUBLE && fabs(r.u.d - 20) <= 0.2 && sl_agg_skipped(&s, st) == 1,
     "percentile(v, 0.5) of 10, 20, 30 and a string: %.6g, within 1 %% of 20", r.u.d);
  state_del(&s, st);
}

static void test_distinct_values(void) {
  expect_int("count_distinct(v)", (const val_t[]){I(3), D(3.0), U(3), I(3), {V_END, 0, 0, 0, NULL}},
             1, 0);
  expect_int("count_distinct(v)",
             (const val_t[]){I(3), S("3"), T, I(1), D(3.5), D(-0.0), I(0), {V_END, 0, 0, 0, NULL}},
             6, 0);
  expect_int("count_distinct(v)",
             (const val_t[]){D(NAN), D(-NAN), D(INFINITY), D(-INFINITY), {V_END, 0, 0, 0, NULL}}, 3,
             0);
  /* Maps in any key order are the same value; arrays keep their order. */
  pack_t a, b, c, d, e;
  pack_begin(&a);
  msgpack_pack_map(&a.pk, 2);
  pack_str(&a.pk, "x");
  msgpack_pack_int(&a.pk, 1);
  pack_str(&a.pk, "y");
  msgpack_pack_int(&a.pk, 2);
  pack_begin(&b);
  msgpack_pack_map(&b.pk, 2);
  pack_str(&b.pk, "y");
  msgpack_pack_double(&b.pk, 2.0);
  pack_str(&b.pk, "x");
  msgpack_pack_int(&b.pk, 1);
  pack_begin(&c);
  msgpack_pack_array(&c.pk, 2);
  msgpack_pack_int(&c.pk, 1);
  msgpack_pack_int(&c.pk, 2);
  pack_begin(&d);
  msgpack_pack_array(&d.pk, 2);
  msgpack_pack_int(&d.pk, 2);
  msgpack_pack_int(&d.pk, 1);
  pack_begin(&e);
  msgpack_pack_bin(&e.pk, 1);
  msgpack_pack_bin_body(&e.pk, "x", 1);
  uint64_t ha = sl_agg_value_hash(pack_end(&a)), hb = sl_agg_value_hash(pack_end(&b));
  uint64_t hc = sl_agg_value_hash(pack_end(&c)), hd = sl_agg_value_hash(pack_end(&d));
  msgpack_object sx = {.type = MSGPACK_OBJECT_STR, .via.str = {1, "x"}};
  ok(ha == hb, "value hash: {x:1, y:2} == {y:2.0, x:1}");
  ok(hc != hd, "value hash: [1, 2] != [2, 1]");
  ok(sl_agg_value_hash(pack_end(&e)) != sl_agg_value_hash(&sx),
     "value hash: bin \"x\" != str \"x\"");
  pack_free(&a);
  pack_free(&b);
  pack_free(&c);
  pack_free(&d);
  pack_free(&e);
}

/* first/last keep their own copy: the record may be freed. */
/* redis_hll adds each value's text, as PFADD would be given it: checked
 * against a sketch built from those texts directly. */
static void test_redis_hll_elements(void) {
  sl_agg_spec_t s = spec_of("redis_hll(v)");
  const val_t vals[] = {I(3), D(3.0), U(3), S("3"), D(-0.0), I(0), D(4.5), D(1e20), D(NAN), D(-NAN),
                        D(INFINITY), D(-INFINITY), T, I(-12), S(""), NIL, ABSENT, {V_END, 0, 0, 0, NULL}};
  sl_agg_state_t *st = feed(&s, vals);
  sl_redis_hll_t want = {0};
  const char *texts[] = {"3", "0", "4.5", "1e+20", "nan", "inf", "-inf", "true", "-12", ""};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) sl_redis_hll_add(&want, texts[i], strlen(texts[i]));
  const sl_redis_hll_t *got = sl_agg_redis_hll(&s, st);
  sl_buf_t a = {0}, b = {0};
  ok(got && !sl_redis_hll_to_redis(got, &a) && !sl_redis_hll_to_redis(&want, &b) && a.len == b.len &&
         !memcmp(a.data, b.data, a.len),
     "redis_hll: 3, 3.0 and \"3\" are the element \"3\"; -0.0 is \"0\", 4.5, 1e+20, nan, inf, true as their text");
  sl_agg_result_t r;
  sl_agg_result(&s, st, &r);
  ok(r.kind == SL_AGG_INT && r.u.i == 10, "redis_hll: 10 elements counted (%lld)", (long long)r.u.i);
  sl_buf_free(&a);
  sl_buf_free(&b);
  sl_redis_hll_free(&want);
  state_del(&s, st);

  /* A map as its JSON text: key order matters here. */
  pack_t m;
  pack_begin(&m);
  msgpack_pack_map(&m.pk, 2);
  pack_str(&m.pk, "x");
  msgpack_pack_int(&m.pk, 1);
  pack_str(&m.pk, "y");
  msgpack_pack_array(&m.pk, 1);
  msgpack_pack_double(&m.pk, 2.5);
  st = state_new(&s);
  sl_agg_update(&s, st, pack_end(&m), 0);
  sl_redis_hll_t w2 = {0};
  const char *json = "{\"x\":1,\"y\":[2.5]}";
  sl_redis_hll_add(&w2, json, strlen(json));
  ok(sl_redis_hll_count(sl_agg_redis_hll(&s, st)) == 1 && sl_redis_hll_count(&w2) == 1, "redis_hll: a map is one element");
  sl_buf_free(&a);
  sl_redis_hll_to_redis(sl_agg_redis_hll(&s, st), &a);
  sl_redis_hll_to_redis(&w2, &b);
  ok(a.len == b.len && !memcmp(a.data, b.data, a.len), "redis_hll: a map's element is its JSON text");
  sl_buf_free(&a);
  sl_buf_free(&b);
  sl_redis_hll_free(&w2);
  pack_free(&m);
  state_del(&s, st);
  sl_agg_spec_t other = spec_of("count_distinct(v)");
  st = state_new(&other);
  ok(sl_agg_redis_hll(&other, st) == NULL, "count_distinct has no Redis HyperLogLog");
  state_del(&other, st);
}

static void test_pick_ownership(void) {
  sl_agg_spec_t last = spec_of("last(v)"), first = spec_of("first(v)");
  sl_agg_state_t *l = state_new(&last), *f = state_new(&first);
  int err = 0;
  for (int i = 0; i < 3; i++) {
    pack_t p;
    pack_begin(&p);
    msgpack_pack_map(&p.pk, 2);
    pack_str(&p.pk, "msg");
    pack_str(&p.pk, i == 1 ? "the second, at the same time" : "other");
    pack_str(&p.pk, "n");
    msgpack_pack_array(&p.pk, 2);
    msgpack_pack_int(&p.pk, i);
    msgpack_pack_bin(&p.pk, 3);
    msgpack_pack_bin_body(&p.pk, "\x00\x01\x02", 3);
    const msgpack_object *o = pack_end(&p);
    err |= sl_agg_update(&last, l, o, i == 2 ? 5 : 10); /* times 10, 10, 5 */
    err |= sl_agg_update(&first, f, o, i == 0 ? 10 : 10);
    /* Scribble over the record before freeing it. */
    memset(p.sb.data, 0xAA, p.sb.size);
    msgpack_unpacked_destroy(&p.up);
    msgpack_sbuffer_destroy(&p.sb);
  }
  sl_agg_result_t r;
  sl_agg_result(&last, l, &r);
  char buf[256];
  result_str(&r, buf, sizeof buf);
  is_str(buf, "{\"msg\"=>\"the second, at the same time\", \"n\"=>[1, \"\\x00\\x01\\x02\"]}",
         "last: the later of two equal times wins, an earlier time does not; its copy outlives the "
         "record");
  sl_agg_result(&first, f, &r);
  result_str(&r, buf, sizeof buf);
  is_str(buf, "{\"msg\"=>\"other\", \"n\"=>[0, \"\\x00\\x01\\x02\"]}",
         "first: the earlier arrival of equal times");

  /* Merge: src counts as the later arrival. */
  sl_agg_state_t *l2 = state_new(&last);
  const val_t later[] = {S("from src"), {V_END, 0, 0, 0, NULL}};
  sl_agg_state_t *src = feed(&last, later); /* time 0 */
  err |= sl_agg_merge(&last, l2, src);
  sl_agg_result(&last, l2, &r);
  ok(r.kind == SL_AGG_VALUE && r.u.v.type == MSGPACK_OBJECT_STR && r.u.v.via.str.size == 8,
     "last: merge into an empty state takes src's value");
  err |= sl_agg_merge(&last, l, src); /* src's time 0 < 10: not later */
  sl_agg_result(&last, l, &r);
  ok(r.kind == SL_AGG_VALUE && r.u.v.type == MSGPACK_OBJECT_MAP,
     "last: merge keeps dst's later value");
  state_del(&last, src);
  state_del(&last, l2);

  /* The buffer is reused while the kept values fit. */
  sl_agg_spec_t ls = spec_of("last(v)");
  sl_agg_state_t *st = state_new(&ls);
  const char *texts[] = {"a fairly long string value to start", "short", "mid length", "x",
                         "a string longer than the first one by far, surely"};
  size_t bytes[5];
  for (int i = 0; i < 5; i++) {
    const val_t v[] = {S(texts[i]), {V_END, 0, 0, 0, NULL}};
    sl_agg_state_t *one = feed(&ls, v);
    err |= sl_agg_merge(&ls, st, one); /* same time 0: each is later */
    state_del(&ls, one);
    bytes[i] = sl_agg_bytes(&ls, st);
  }
  sl_agg_result(&ls, st, &r);
  ok(!err && bytes[1] == bytes[0] && bytes[2] == bytes[0] && bytes[3] == bytes[0] &&
         bytes[4] > bytes[0] && r.u.v.via.str.size == strlen(texts[4]),
     "last: shorter values reuse the buffer (%zu bytes), a longer one grows it (%zu)", bytes[0],
     bytes[4]);
  state_del(&ls, st);
  state_del(&last, l);
  state_del(&first, f);
}

/* ---- memory ------------------------------------------------------------- */

static void test_memory(void) {
  /* No heap for count, sum, min, max, avg over many values. */
  const char *cheap[] = {"count()", "count(v)", "sum(v)", "min(v)", "max(v)", "avg(v)"};
  rng_state = 5;
  for (size_t k = 0; k < sizeof cheap / sizeof cheap[0]; k++) {
    sl_agg_spec_t s = spec_of(cheap[k]);
    sl_agg_state_t *st = state_new(&s);
    int err = 0;
    for (int i = 0; i < 20000; i++) {
      msgpack_object o = {.type = MSGPACK_OBJECT_FLOAT64};
      o.via.f64 = uniform01() * pow(10, (int)(rng() % 13) - 6);
      if (i % 3 == 0) {
        o.type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o.via.i64 = -(int64_t)(rng() % 1000000) - 1;
      }
      err |= sl_agg_update(&s, st, &o, i);
    }
    ok(!err && sl_agg_bytes(&s, st) == sl_agg_state_size(&s),
       "%s: 20000 values over 12 orders of magnitude, no heap (%zu bytes inline)", cheap[k],
       sl_agg_state_size(&s));
    state_del(&s, st);
  }

  /* A key with count() + avg + percentile + count_distinct. */
  const char *key_specs[] = {"count()", "avg(latency)", "percentile(latency, 0.99)",
                             "count_distinct(user)"};
  size_t few = 0, many = 0, inline_total = 0;
  for (int pass = 0; pass < 2; pass++) {
    size_t total = 0;
    int n = pass ? 100000 : 3;
    rng_state = 17;
    for (int k = 0; k < 4; k++) {
      sl_agg_spec_t s = spec_of(key_specs[k]);
      sl_agg_state_t *st = state_new(&s);
      for (int i = 0; i < n; i++) {
        msgpack_object o;
        if (k == 3) {
          o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
          o.via.u64 = rng() % 50000; /* user ids */
        } else {
          o.type = MSGPACK_OBJECT_FLOAT64;
          o.via.f64 = exp(log(20) + 1.2 * (uniform01() + uniform01() + uniform01() - 1.5)); /* ms */
        }
        sl_agg_update(&s, st, &o, i);
      }
      total += sl_agg_bytes(&s, st);
      if (!pass) inline_total += sl_agg_state_size(&s);
      state_del(&s, st);
    }
    if (pass)
      many = total;
    else
      few = total;
  }
  printf(
      "# state bytes per key, count()+avg+percentile+count_distinct: inline %zu; with 3 values "
      "%zu; "
      "with 100000 values %zu\n",
      inline_total, few, many);
  ok(few <= inline_total + 64, "a key with 3 values uses %zu bytes (inline %zu)", few,
     inline_total);
  ok(many <= inline_total + 4096 + 2048 * 12,
     "a key with 100000 values uses %zu bytes (HLL dense + buckets)", many);
}

int main(void) {
  test_parse();
  test_numbers();
  test_distinct_values();
  test_redis_hll_elements();
  test_pick_ownership();
  test_against_reference();
  test_merge_splits();
  test_memory();
  return tap_done();
}
