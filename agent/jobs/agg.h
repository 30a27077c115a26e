/* The aggregate functions of a job: parsing their text, and the mergeable
 * partial state that the jobs stage keeps per (partition, window, group key).
 * Owns each state's inline part and whatever heap it holds; knows nothing of
 * windows, keys or field paths (the engine resolves the field text returned
 * by sl_agg_parse with the path module and passes the value in).  Pure; a
 * state is used by one thread at a time.
 *
 * Functions (names lower case; f is a field path, its text kept as written):
 *   count()  count(*)  every update, whatever the value
 *   count(f)           values present and not nil
 *   sum(f)  avg(f)  min(f)  max(f)
 *                      numeric values: msgpack integers (signed and unsigned
 *                      64-bit) and floats; anything else (strings, even
 *                      "12", booleans, containers) and NaN or infinite floats
 *                      are skipped and counted (sl_agg_skipped); nil and
 *                      absent values are ignored, not counted as skipped
 *   first(f)  last(f)  the value with the earliest (latest) event time; on
 *                      equal times first keeps the earlier arrival and last
 *                      takes the later one.  A merge treats src as arriving
 *                      after dst, which is arrival order when a job merges
 *                      partials in the order it read them.  Any non-nil value
 *                      (strings, containers...) is kept, as a deep copy
 *   count_distinct(f)  distinct non-nil values, estimated with HyperLogLog
 *                      (hll.h: near exact up to 512 distinct, 1.6 % RSE
 *                      above).  Values are compared by sl_agg_value_hash:
 *                      3 and 3.0 are the same value, "3" and 3 are not
 *   redis_hll(f)       distinct non-nil values, counted with Redis's own
 *                      HyperLogLog (redis_hll.h: 0.81 % RSE, exactly
 *                      PFCOUNT of the same elements), whose registers a
 *                      sink can store as a native Redis HyperLogLog.  An
 *                      element is the value's text, as PFADD would be
 *                      given it: a string's (or binary's) bytes, an
 *                      integer in decimal, an integral float as that
 *                      integer (3.0 is "3"), another float in its
 *                      shortest round-trip form ("4.5", "1e+20"; NaN is
 *                      "nan", infinities "inf" and "-inf"), true and
 *                      false as those words, and containers and
 *                      extensions as their JSON text (so map key order
 *                      matters here, and "3" and 3 are one element);
 *                      containers nested past 64 levels are skipped and
 *                      counted (sl_agg_skipped)
 *   percentile(f, q)   the q-quantile (0 < q < 1, as a decimal number) of
 *                      the numeric values, within 1 % relative error
 *                      (ddsketch.h, alpha = 1 %, 2048 buckets per sign)
 *
 * Exactness: count, sum, avg, min, max, first and last are exact and their
 * merge is exact, so merging the partials of any split of the values gives
 * the single-pass result bit for bit (first/last: with the arrival order
 * above).  sum and avg add integers and floats without any rounding
 * (exact_sum.h: a fixed-point accumulator that widens as needed, so an
 * integer sum never overflows) and round once, correctly, when the result
 * is read; a sum beyond +-DBL_MAX reads as +-inf.  The sketches' merges are
 * exact too: a merged sketch answers exactly as one built in one pass.
 *
 * Results: count, count_distinct and redis_hll give an integer (0 when nothing was
 * seen); the others give null when no value was aggregated.  sum gives an
 * integer while every value was an integer and the sum fits int64, else a
 * double (an integer sum past int64 becomes the double nearest to it).
 * avg and percentile give a double; min and max the extreme value as it was
 * (an integer, a double, or for an unsigned integer above INT64_MAX a
 * msgpack positive integer); first and last the kept msgpack value.  On
 * equal values min and max prefer an integer to a float (3 over 3.0), so
 * the choice does not depend on arrival order.
 *
 * Memory: no allocation per update for count, sum, avg, min and max (sum and
 * avg take heap only for floats spanning more than 191 binary orders of
 * magnitude, say 1e-20 and 1e30 in one sum, and at most 320 bytes); first
 * and last allocate only when the kept value changes to a string, binary or
 * container larger than the buffer they already hold; the sketches allocate
 * as they grow (sparse HLL list, DDSketch buckets), up to 4 KiB (HLL dense),
 * 16 KiB (Redis HLL dense) and 2 x 2048 x 12 bytes (DDSketch) per state. */
#ifndef SL_AGG_H
#define SL_AGG_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs/ddsketch.h"
#include "jobs/redis_hll.h"

typedef enum {
  SL_AGG_COUNT_ALL = 1, /* count() */
  SL_AGG_COUNT,         /* count(f) */
  SL_AGG_SUM,
  SL_AGG_MIN,
  SL_AGG_MAX,
  SL_AGG_AVG,
  SL_AGG_FIRST,
  SL_AGG_LAST,
  SL_AGG_COUNT_DISTINCT,
  SL_AGG_PERCENTILE,
  SL_AGG_REDIS_HLL,
} sl_agg_fn_t;

/* Longest field path text, NUL included. */
#define SL_AGG_FIELD_MAX 256

/* A parsed aggregate; a plain value (copy it freely, nothing to free). */
typedef struct {
  sl_agg_fn_t fn;
  char field[SL_AGG_FIELD_MAX]; /* the path as written, trimmed; "" for count() */
  double q;                     /* percentile only */
} sl_agg_spec_t;

typedef struct {
  int column;    /* 1-based byte column in the parsed text */
  char msg[160]; /* what is wrong there */
} sl_agg_error_t;

/* Parses `text` (borrowed, NUL-terminated): `fn(args)` with optional spaces
 * around the name, the parentheses and the commas.  The field path is
 * everything up to the next ',' or ')' outside quotes ('...' or "...", with
 * backslash escapes) and outside (), [] and {} pairs, trimmed, so that the
 * path module may use any of those.  Returns 0 and fills *out; or
 * SL_ESYNTAX (unknown function, wrong arguments, unbalanced quotes or
 * brackets, trailing text), SL_ERANGE (percentile's q not strictly between 0
 * and 1) or -ENAMETOOLONG (field path of SL_AGG_FIELD_MAX bytes or more),
 * and fills *err (may be NULL) with the column and a message. */
int sl_agg_parse(const char *text, sl_agg_spec_t *out, sl_agg_error_t *err);

/* The function's name as written ("count_distinct"). */
const char *sl_agg_fn_name(sl_agg_fn_t fn);

/* A state: an opaque block of sl_agg_state_size(spec) bytes, aligned to
 * SL_AGG_STATE_ALIGN, that the engine places (several per key, back to
 * back) and that sl_agg_init prepares.  It may own heap memory, released by
 * sl_agg_free. */
typedef struct sl_agg_state sl_agg_state_t;

#define SL_AGG_STATE_ALIGN 8
#define SL_AGG_STATE_MAX 128 /* no state is larger */

/* Bytes of the inline part, a multiple of SL_AGG_STATE_ALIGN. */
size_t sl_agg_state_size(const sl_agg_spec_t *spec);

/* Prepares an empty state; does not allocate. */
void sl_agg_init(const sl_agg_spec_t *spec, sl_agg_state_t *st);

/* Adds one record's value: value is the field's value (borrowed; only read
 * during the call; must not point into this state), or NULL when the record
 * has no such field; count() ignores it.  event_time_ms orders first and
 * last.  0, or SL_ENOMEM with the state unchanged. */
int sl_agg_update(const sl_agg_spec_t *spec, sl_agg_state_t *st, const msgpack_object *value,
                  int64_t event_time_ms);

/* dst += src, both states of this spec; src is only read.  0, or SL_ENOMEM
 * (dst then holds dst's values and possibly part of src's: discard it). */
int sl_agg_merge(const sl_agg_spec_t *spec, sl_agg_state_t *dst, const sl_agg_state_t *src);

typedef enum {
  SL_AGG_NULL = 0,
  SL_AGG_INT,    /* u.i */
  SL_AGG_DOUBLE, /* u.d */
  SL_AGG_VALUE,  /* u.v: a msgpack value */
} sl_agg_kind_t;

typedef struct {
  sl_agg_kind_t kind;
  union {
    int64_t i;
    double d;
    msgpack_object v; /* first/last: points into the state (valid until its
                         next update, merge or free); min/max: a standalone
                         positive integer */
  } u;
} sl_agg_result_t;

void sl_agg_result(const sl_agg_spec_t *spec, const sl_agg_state_t *st, sl_agg_result_t *out);

/* The DDSketch of a percentile state (borrowed: valid until the state's
 * next update, merge or free); NULL for the other functions. */
const sl_dds_t *sl_agg_sketch(const sl_agg_spec_t *spec, const sl_agg_state_t *st);

/* The Redis HyperLogLog of a redis_hll state (borrowed, as above); NULL
 * for the other functions. */
const sl_redis_hll_t *sl_agg_redis_hll(const sl_agg_spec_t *spec, const sl_agg_state_t *st);

/* Values skipped for their type (non-numeric for sum, avg, min, max and
 * percentile; containers nested too deeply for redis_hll; always 0 for the
 * others). */
uint64_t sl_agg_skipped(const sl_agg_spec_t *spec, const sl_agg_state_t *st);

/* Memory the state uses: its inline size plus the heap it owns. */
size_t sl_agg_bytes(const sl_agg_spec_t *spec, const sl_agg_state_t *st);

/* Releases the state's heap; the state is then empty, as after sl_agg_init. */
void sl_agg_free(const sl_agg_spec_t *spec, sl_agg_state_t *st);

/* A 64-bit hash of a value's canonical form, equal for values that
 * count_distinct treats as equal: numbers by their value (an integral float
 * as the integer: 3.0 == 3, -0.0 == 0; all NaNs alike), strings, binaries
 * and extensions by type and bytes (a string never equals a binary), arrays
 * by their elements in order, maps by their entries in any order (key order
 * does not matter).  Containers nested deeper than 64 levels hash by type
 * and size only.  Stable across runs and machines (XXH3 over little-endian
 * canonical bytes), so HLL sketches stay comparable across restarts. */
uint64_t sl_agg_value_hash(const msgpack_object *v);

#endif
