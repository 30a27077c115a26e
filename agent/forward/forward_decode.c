/* Forward Protocol v1 decoding: frames a connection's byte stream into
 * top-level msgpack values and interprets each value as a Message, Forward,
 * PackedForward or CompressedPackedForward event message.  Pure code with no
 * I/O; it runs on the loop thread, one decoder per connection.
 *
 * An unpacker allocates memory for every element a header declares before it
 * has seen the elements, so a small incremental scanner walks each value's
 * bytes first and proves it complete, within chunk_size_limit and within
 * max_depth; it also sums the memory the value's arrays and maps need.  Only
 * then does build() turn the proven bytes into msgpack_objects, in one
 * allocation of exactly that size, with strings pointing into the bytes.
 * Frames share the decoder's input buffer instead of copying it (see
 * block_t), so a frame costs one small allocation in the common case. */
#include "forward/forward_decode.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/error.h"

/* msgpack-c's unpacker holds at most this many open containers; a deeper
 * value would fail inside it, so the scanner never lets one through. */
#define SL_FWD_DEPTH_CAP 32 /* MSGPACK_EMBED_STACK_SIZE in unpack_define.h */

/* Forward mode nests an entry at depth 3 ([tag, [[time, record]]]); packed
 * entries are scanned as if at the same place, so a record is accepted or
 * refused alike whether it came as Forward or as PackedForward. */
#define SL_FWD_PACKED_BASE_DEPTH 2

/* ---- the scanner ---------------------------------------------------------- */

/* Walks one msgpack value incrementally.  `left[i]` counts the elements still
 * to come at nesting level i (level 0 holds the value itself); `pending` is
 * their sum.  Every pending element takes at least one byte, which bounds the
 * value's size from below before its bytes arrive. */
typedef struct {
  uint64_t left[SL_FWD_DEPTH_CAP + 1]; /* max_depth - base + 1 levels used */
  int top;    /* levels in use */
  int base;   /* nesting depth of the value's parent */
  int max_depth;
  uint64_t pending;
  size_t pos;    /* offset of the next element from the value's start */
  bool done;     /* every element seen; complete once pos bytes are here */
  size_t objbytes; /* memory build() needs for the arrays' and maps' elements */
  uint64_t values;     /* values declared so far, the value itself included */
  uint64_t max_values; /* 0: no limit */
} scan_t;

static void scan_init(scan_t *s, int max_depth, int base, size_t max_values) {
  memset(s, 0, sizeof(*s));
  s->max_values = max_values;
  if (max_depth > SL_FWD_DEPTH_CAP) max_depth = SL_FWD_DEPTH_CAP;
  s->max_depth = max_depth;
  s->base = base;
}

static void scan_reset(scan_t *s) {
  s->top = 1;
  s->left[0] = 1;
  s->pending = 1;
  s->pos = 0;
  s->done = false;
  s->objbytes = 0;
  s->values = 1;
}

static uint64_t be_read(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = (v << 8) | p[i];
  return v;
}

/* Advances over the bytes p[0..avail) of the value.  Returns 1 when the value
 * is complete (its size is s->pos), 0 when more bytes are needed, or
 * SL_EMSGPACK, SL_ETOOBIG, SL_EDEPTH. */
static int scan_step(scan_t *s, const uint8_t *p, size_t avail, size_t limit) {
  while (!s->done) {
    if (s->pos >= avail) return 0;
    uint8_t b = p[s->pos];
    int hdr = 1;       /* type byte + length bytes (+ ext type byte) */
    int lenb = 0;      /* how many of them give a big-endian length */
    uint64_t payload = 0;
    uint64_t count = 0;
    bool container = false;

    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
      /* fixint, nil, bool */
    } else if (b <= 0x8f) {
      container = true, count = (uint64_t)(b & 0x0f) * 2;
    } else if (b <= 0x9f) {
      container = true, count = b & 0x0f;
    } else if (b <= 0xbf) {
      payload = b & 0x1f;
    } else {
      switch (b) {
      case 0xc4: case 0xd9: lenb = 1; break;            /* bin8, str8 */
      case 0xc5: case 0xda: lenb = 2; break;            /* bin16, str16 */
      case 0xc6: case 0xdb: lenb = 4; break;            /* bin32, str32 */
      case 0xc7: lenb = 1, hdr = 1; break;              /* ext8 */
      case 0xc8: lenb = 2, hdr = 1; break;              /* ext16 */
      case 0xc9: lenb = 4, hdr = 1; break;              /* ext32 */
      case 0xca: payload = 4; break;                    /* float32 */
      case 0xcb: payload = 8; break;                    /* float64 */
      case 0xcc: case 0xd0: payload = 1; break;
      case 0xcd: case 0xd1: payload = 2; break;
      case 0xce: case 0xd2: payload = 4; break;
      case 0xcf: case 0xd3: payload = 8; break;
      case 0xd4: payload = 2; break;                    /* fixext: type + data */
      case 0xd5: payload = 3; break;
      case 0xd6: payload = 5; break;
      case 0xd7: payload = 9; break;
      case 0xd8: payload = 17; break;
      case 0xdc: case 0xde: lenb = 2, container = true; break;
      case 0xdd: case 0xdf: lenb = 4, container = true; break;
      default: return SL_EMSGPACK; /* 0xc1, never used */
      }
      hdr += lenb;
      if (b >= 0xc7 && b <= 0xc9) hdr += 1; /* the ext type byte */
    }

    /* The pending count includes this element; once it starts it is
     * replaced by its header, payload and children. */
    uint64_t rest = s->pending - 1;
    if ((uint64_t)s->pos + (uint64_t)hdr + rest > limit) return SL_ETOOBIG;
    if (avail - s->pos < (size_t)hdr) return 0;
    if (lenb) {
      uint64_t n = be_read(p + s->pos + 1, lenb);
      if (container)
        count = (b == 0xde || b == 0xdf) ? n * 2 : n;
      else
        payload = n;
    }
    if ((uint64_t)s->pos + (uint64_t)hdr + payload + count + rest > limit) return SL_ETOOBIG;

    /* Commit the element: the scan never comes back to this header. */
    s->left[s->top - 1]--;
    s->pending--;
    s->pos += (size_t)hdr + (size_t)payload;
    if (container) {
      if (s->base + s->top > s->max_depth) return SL_EDEPTH;
      s->values += count;
      if (s->max_values && s->values > s->max_values) return SL_EVALUES;
      /* count is bounded by the size limit, so this cannot overflow. */
      s->objbytes += (size_t)count * sizeof(msgpack_object); /* a map's kv is two objects */
      if (count > 0) {
        s->left[s->top++] = count;
        s->pending += count;
        continue;
      }
    }
    while (s->top > 0 && s->left[s->top - 1] == 0) s->top--;
    if (s->top == 0) s->done = true;
  }
  return s->pos <= avail ? 1 : 0;
}

/* ---- building objects from proven bytes ------------------------------------ */

_Static_assert(sizeof(msgpack_object_kv) == 2 * sizeof(msgpack_object),
               "scan_t.objbytes counts a map's pair as two objects");

static int64_t be_signed(const uint8_t *p, int n) {
  uint64_t v = be_read(p, n);
  int shift = 64 - 8 * n;
  return (int64_t)(v << shift) >> shift;
}

/* Builds the object encoded at p, which scan_step has proved well-formed,
 * complete and no deeper than SL_FWD_DEPTH_CAP (so the recursion is bounded),
 * with the same types and values msgpack_unpack gives.  Arrays' and maps'
 * elements are carved from *mem, which holds the scan's objbytes.  Strings,
 * bin and ext point into the bytes.  Returns the end of the value. */
static const uint8_t *build(const uint8_t *p, msgpack_object *o, char **mem) {
  uint8_t b = *p++;
  uint32_t n;
  if (b <= 0x7f) {
    o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    o->via.u64 = b;
    return p;
  }
  if (b >= 0xe0) {
    o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
    o->via.i64 = (int8_t)b;
    return p;
  }
  if (b <= 0x8f) {
    n = b & 0x0f;
    goto map;
  }
  if (b <= 0x9f) {
    n = b & 0x0f;
    goto array;
  }
  if (b <= 0xbf) {
    n = b & 0x1f;
    goto str;
  }
  switch (b) {
  case 0xc0:
    o->type = MSGPACK_OBJECT_NIL;
    return p;
  case 0xc2: case 0xc3:
    o->type = MSGPACK_OBJECT_BOOLEAN;
    o->via.boolean = b == 0xc3;
    return p;
  case 0xc4: case 0xc5: case 0xc6: {
    int lb = 1 << (b - 0xc4);
    n = (uint32_t)be_read(p, lb);
    p += lb;
    o->type = MSGPACK_OBJECT_BIN;
    o->via.bin.ptr = (const char *)p;
    o->via.bin.size = n;
    return p + n;
  }
  case 0xc7: case 0xc8: case 0xc9: {
    int lb = 1 << (b - 0xc7);
    n = (uint32_t)be_read(p, lb);
    p += lb;
    goto ext;
  }
  case 0xca: {
    union { uint32_t i; float f; } u = {.i = (uint32_t)be_read(p, 4)};
    o->type = MSGPACK_OBJECT_FLOAT32;
    o->via.f64 = u.f;
    return p + 4;
  }
  case 0xcb: {
    union { uint64_t i; double d; } u = {.i = be_read(p, 8)};
    o->type = MSGPACK_OBJECT_FLOAT64;
    o->via.f64 = u.d;
    return p + 8;
  }
  case 0xcc: case 0xcd: case 0xce: case 0xcf: {
    int lb = 1 << (b - 0xcc);
    o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    o->via.u64 = be_read(p, lb);
    return p + lb;
  }
  case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
    int lb = 1 << (b - 0xd0);
    int64_t v = be_signed(p, lb);
    if (v < 0) {
      o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
      o->via.i64 = v;
    } else {
      o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
      o->via.u64 = (uint64_t)v;
    }
    return p + lb;
  }
  case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
    n = 1u << (b - 0xd4);
    goto ext;
  case 0xd9: case 0xda: case 0xdb: {
    int lb = 1 << (b - 0xd9);
    n = (uint32_t)be_read(p, lb);
    p += lb;
    goto str;
  }
  case 0xdc: case 0xdd: {
    int lb = 2 << (b - 0xdc);
    n = (uint32_t)be_read(p, lb);
    p += lb;
    goto array;
  }
  default: { /* 0xde, 0xdf; the scanner let nothing else through */
    int lb = 2 << (b - 0xde);
    n = (uint32_t)be_read(p, lb);
    p += lb;
    goto map;
  }
  }
str:
  o->type = MSGPACK_OBJECT_STR;
  o->via.str.ptr = (const char *)p;
  o->via.str.size = n;
  return p + n;
ext:
  o->type = MSGPACK_OBJECT_EXT;
  o->via.ext.type = (int8_t)p[0];
  o->via.ext.ptr = (const char *)p + 1;
  o->via.ext.size = n;
  return p + 1 + n;
array: {
  msgpack_object *a = (msgpack_object *)*mem;
  if (n) *mem += (size_t)n * sizeof(*a); /* NULL when nothing has elements */
  o->type = MSGPACK_OBJECT_ARRAY;
  o->via.array.size = n;
  o->via.array.ptr = a;
  for (uint32_t i = 0; i < n; i++) p = build(p, &a[i], mem);
  return p;
}
map: {
  msgpack_object_kv *kv = (msgpack_object_kv *)*mem;
  if (n) *mem += (size_t)n * sizeof(*kv);
  o->type = MSGPACK_OBJECT_MAP;
  o->via.map.size = n;
  o->via.map.ptr = kv;
  for (uint32_t i = 0; i < n; i++) {
    p = build(p, &kv[i].key, mem);
    p = build(p, &kv[i].val, mem);
  }
  return p;
}
}

/* ---- framing --------------------------------------------------------------- */

/* The decoder's input buffer.  Frames point into it instead of copying their
 * bytes, and hold a reference; the decoder writes only past `len`, and moves
 * or reuses bytes only while it holds the sole reference.  So a frame held
 * back (ingest keeps stalled messages) stays valid, and once frames are
 * freed the same buffer serves the next ones without a new allocation. */
typedef struct {
  size_t refs; /* the decoder's, plus one per live frame */
  size_t cap;
  char data[];
} block_t;

/* An emptied buffer up to this size is kept for the next bytes; a larger one
 * (left by one big message) is given back. */
#define SL_FWD_KEEP_BUF (256 * 1024)

static void block_unref(block_t *b) {
  if (b && --b->refs == 0) free(b);
}

struct sl_fwd_decoder {
  sl_fwd_limits_t lim;
  block_t *blk;   /* NULL until bytes arrive */
  size_t len;     /* bytes in blk */
  size_t start;   /* first byte not yet returned in a frame */
  scan_t scan;
  bool scanning;  /* a value has started at `start` */
  int err;        /* sticky: the stream is unusable after an error */
};

sl_fwd_decoder_t *sl_fwd_decoder_new(const sl_fwd_limits_t *limits) {
  sl_fwd_decoder_t *d = calloc(1, sizeof(*d));
  if (!d) return NULL;
  d->lim = *limits;
  scan_init(&d->scan, d->lim.max_depth, 0, d->lim.max_values);
  return d;
}

void sl_fwd_decoder_free(sl_fwd_decoder_t *d) {
  if (!d) return;
  block_unref(d->blk);
  free(d);
}

/* Called when every buffered byte has been returned: starts over at the
 * beginning of the buffer if no frame uses it, or lets frames keep it. */
static void drained(sl_fwd_decoder_t *d) {
  if (!d->blk) return;
  if (d->blk->refs == 1 && d->blk->cap <= SL_FWD_KEEP_BUF) {
    d->len = d->start = 0;
    return;
  }
  block_unref(d->blk);
  d->blk = NULL;
  d->len = d->start = 0;
}

int sl_fwd_decoder_feed(sl_fwd_decoder_t *d, const char *buf, size_t len) {
  if (d->err) return 0; /* nothing more will be decoded; don't hold bytes */
  if (d->start == d->len) drained(d);
  block_t *b = d->blk;
  if (!b || b->cap - d->len < len) {
    /* No room at the end: move the unconsumed bytes to the front of this
     * buffer if no frame uses it and they fit, else to a new one. */
    size_t rest = d->len - d->start;
    if (len > SIZE_MAX / 2 - rest) return SL_ENOMEM;
    size_t need = rest + len;
    if (b && b->refs == 1 && b->cap >= need) {
      memmove(b->data, b->data + d->start, rest);
    } else {
      size_t cap = 256;
      while (cap < need) cap *= 2;
      block_t *nb = malloc(sizeof(*nb) + cap);
      if (!nb) return SL_ENOMEM;
      nb->refs = 1;
      nb->cap = cap;
      if (rest) memcpy(nb->data, b->data + d->start, rest);
      block_unref(b);
      d->blk = b = nb;
    }
    d->len = rest;
    d->start = 0;
  }
  if (len) memcpy(b->data + d->len, buf, len);
  d->len += len;
  return 0;
}

size_t sl_fwd_decoder_buffered(const sl_fwd_decoder_t *d) { return d->len - d->start; }

void sl_fwd_frame_free(sl_fwd_frame_t *f) {
  free(f->objects);
  block_unref(f->bytes);
  memset(f, 0, sizeof(*f));
}

int sl_fwd_decoder_next(sl_fwd_decoder_t *d, sl_fwd_frame_t *out) {
  if (d->err) return d->err;
  if (!d->scanning) {
    while (d->start < d->len && (uint8_t)d->blk->data[d->start] == 0xc0) d->start++; /* keepalive */
    if (d->start == d->len) {
      drained(d);
      return 0;
    }
    scan_reset(&d->scan);
    d->scanning = true;
  }
  const uint8_t *data = (const uint8_t *)d->blk->data + d->start;
  int r = scan_step(&d->scan, data, d->len - d->start, d->lim.chunk_size_limit);
  if (r <= 0) {
    if (r < 0) d->err = r;
    return r;
  }
  size_t size = d->scan.pos;
  char *mem = NULL;
  if (d->scan.objbytes && !(mem = malloc(d->scan.objbytes))) {
    d->err = SL_ENOMEM;
    return SL_ENOMEM;
  }
  out->objects = mem;
  build(data, &out->root, &mem);
  out->size = size;
  out->bytes = d->blk;
  d->blk->refs++;
  d->start += size;
  d->scanning = false;
  return 1;
}

/* ---- interpretation ------------------------------------------------------- */

static bool is_bytes(const msgpack_object *o) {
  return o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN;
}

/* STR and BIN share their layout in msgpack_object. */
static const char *bytes_ptr(const msgpack_object *o) {
  return o->type == MSGPACK_OBJECT_STR ? o->via.str.ptr : o->via.bin.ptr;
}

static size_t bytes_len(const msgpack_object *o) {
  return o->type == MSGPACK_OBJECT_STR ? o->via.str.size : o->via.bin.size;
}

static bool bytes_eq(const msgpack_object *o, const char *s) {
  size_t n = strlen(s);
  return is_bytes(o) && bytes_len(o) == n && memcmp(bytes_ptr(o), s, n) == 0;
}

int sl_fwd_time_parse(const msgpack_object *o, int64_t *sec, uint32_t *nsec) {
  if (o->type == MSGPACK_OBJECT_ARRAY) {
    /* v1.5: [EventTime, {metadata}]; the metadata is not kept. */
    if (o->via.array.size != 2 || o->via.array.ptr[1].type != MSGPACK_OBJECT_MAP ||
        o->via.array.ptr[0].type == MSGPACK_OBJECT_ARRAY)
      return SL_EBADENTRY;
    o = &o->via.array.ptr[0];
  }
  if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
    if (o->via.u64 > INT64_MAX) return SL_EBADENTRY;
    *sec = (int64_t)o->via.u64;
    *nsec = 0;
    return 0;
  }
  if (o->type == MSGPACK_OBJECT_EXT && o->via.ext.type == 0 && o->via.ext.size == 8) {
    const uint8_t *p = (const uint8_t *)o->via.ext.ptr;
    uint32_t ns = (uint32_t)be_read(p + 4, 4);
    if (ns >= 1000000000u) return SL_EBADENTRY;
    *sec = (int64_t)be_read(p, 4);
    *nsec = ns;
    return 0;
  }
  return SL_EBADENTRY;
}

static int parse_options(const msgpack_object *opt, sl_fwd_message_t *msg,
                         const msgpack_object **compressed) {
  *compressed = NULL;
  if (!opt || opt->type == MSGPACK_OBJECT_NIL) return 0;
  if (opt->type != MSGPACK_OBJECT_MAP) return SL_EBADOPTION;
  for (uint32_t i = 0; i < opt->via.map.size; i++) {
    const msgpack_object *k = &opt->via.map.ptr[i].key;
    const msgpack_object *v = &opt->via.map.ptr[i].val;
    if (bytes_eq(k, "chunk")) {
      if (!is_bytes(v) || bytes_len(v) > SL_FWD_CHUNK_MAX) return SL_EBADOPTION;
      msg->chunk = bytes_ptr(v);
      msg->chunk_len = bytes_len(v);
    } else if (bytes_eq(k, "size")) {
      if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return SL_EBADOPTION;
      msg->has_size = true;
      msg->size = v->via.u64;
    } else if (bytes_eq(k, "fluent_signal")) {
      if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
        msg->fluent_signal = (int64_t)v->via.u64;
      else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        msg->fluent_signal = v->via.i64;
      else
        return SL_EBADOPTION;
    } else if (bytes_eq(k, "compressed")) {
      if (!is_bytes(v)) return SL_EBADOPTION;
      *compressed = v;
    }
  }
  return 0;
}

/* Checks one [time, record] pair (time and record given apart) and appends
 * it, or counts it as skipped, or fails the message. */
static int add_entry(sl_fwd_message_t *msg, size_t *cap, const msgpack_object *time,
                     const msgpack_object *record, const sl_fwd_limits_t *lim) {
  int64_t sec = 0;
  uint32_t nsec = 0;
  bool nil_time = time && time->type == MSGPACK_OBJECT_NIL;
  if (!time || !record || record->type != MSGPACK_OBJECT_MAP ||
      (!nil_time && sl_fwd_time_parse(time, &sec, &nsec) < 0)) {
    if (!lim->skip_invalid_event) return SL_EBADENTRY;
    msg->n_skipped++;
    return 0;
  }
  /* fluentd's in_forward stamps an entry whose time is nil or 0 (an empty
   * EventTime included) with the time it arrived. */
  if (nil_time || sec == 0) {
    if (lim->now) {
      lim->now(&sec, &nsec);
    } else {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      sec = ts.tv_sec;
      nsec = (uint32_t)ts.tv_nsec;
    }
  }
  if (msg->n_entries == *cap) {
    size_t ncap = *cap ? *cap * 2 : 8;
    sl_fwd_entry_t *e = realloc(msg->entries, ncap * sizeof(*e));
    if (!e) return SL_ENOMEM;
    msg->entries = e;
    *cap = ncap;
  }
  msg->entries[msg->n_entries++] = (sl_fwd_entry_t){sec, nsec, record};
  return 0;
}

static int add_pair(sl_fwd_message_t *msg, size_t *cap, const msgpack_object *e,
                    const sl_fwd_limits_t *lim) {
  if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2)
    return add_entry(msg, cap, NULL, NULL, lim);
  return add_entry(msg, cap, &e->via.array.ptr[0], &e->via.array.ptr[1], lim);
}

/* Gunzips a payload of one or more concatenated gzip members into
 * msg->inflated, never holding more than the limit plus one byte. */
static int gunzip(const char *in, size_t in_len, size_t limit, sl_fwd_message_t *msg) {
  if (in_len == 0 || in_len > UINT_MAX) return SL_EBADGZIP;
  z_stream zs;
  memset(&zs, 0, sizeof(zs));
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return SL_ENOMEM;
  size_t hard = limit < SIZE_MAX ? limit + 1 : limit; /* one byte over proves a bomb */
  size_t cap = in_len * 4 < 64 * 1024 ? 64 * 1024 : in_len * 4;
  if (cap > hard) cap = hard;
  size_t len = 0;
  char *out = malloc(cap);
  int r = 0;
  if (!out) {
    r = SL_ENOMEM;
    goto done;
  }
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)in_len;
  for (;;) {
    if (len == cap) {
      if (cap == hard) {
        r = SL_EBOMB;
        goto done;
      }
      size_t ncap = cap * 2 > hard || cap * 2 < cap ? hard : cap * 2;
      char *p = realloc(out, ncap);
      if (!p) {
        r = SL_ENOMEM;
        goto done;
      }
      out = p;
      cap = ncap;
    }
    size_t room = cap - len;
    if (room > UINT_MAX) room = UINT_MAX;
    zs.next_out = (Bytef *)out + len;
    zs.avail_out = (uInt)room;
    int z = inflate(&zs, Z_NO_FLUSH);
    len += room - zs.avail_out;
    if (len > limit) {
      r = SL_EBOMB;
      goto done;
    }
    if (z == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      /* Another member follows (gzip allows concatenation). */
      if (inflateReset(&zs) != Z_OK) {
        r = SL_EBADGZIP;
        goto done;
      }
      continue;
    }
    if (z == Z_MEM_ERROR) {
      r = SL_ENOMEM;
      goto done;
    }
    if (z == Z_OK) continue;
    if (z == Z_BUF_ERROR && zs.avail_out == 0) continue; /* grow and retry */
    r = SL_EBADGZIP; /* data error, or input ended inside a member */
    goto done;
  }
  msg->inflated = out;
  msg->decoded_bytes = len;
  out = NULL;
done:
  free(out);
  inflateEnd(&zs);
  return r;
}

/* Splits a PackedForward payload into entries.  A first pass scans every
 * entry (size and depth bounded by what is left of the payload), counting
 * them and the memory their arrays and maps need; one allocation then holds
 * all of them and the entry list is sized once.  A second pass builds the
 * proven entries in order.  An entry the scan refuses ends the payload: the
 * entries before it are still checked first, so the first problem in
 * payload order decides the error, as it would entry by entry. */
static int parse_packed(const char *p, size_t len, const sl_fwd_limits_t *lim,
                        sl_fwd_message_t *msg) {
  scan_t s;
  scan_init(&s, lim->max_depth, SL_FWD_PACKED_BASE_DEPTH, 0);
  size_t n = 0, objbytes = 0, off = 0;
  uint64_t values = 0;
  int scan_err = 0;
  while (off < len) {
    scan_reset(&s);
    /* Each entry may use what the entries before it left of the budget. */
    if (lim->max_values) {
      if (values >= lim->max_values) {
        scan_err = SL_EVALUES;
        break;
      }
      s.max_values = lim->max_values - values;
    }
    int r = scan_step(&s, (const uint8_t *)p + off, len - off, len - off);
    /* Within a payload, "larger than what is left" means truncated. */
    if (r == 0 || r == SL_ETOOBIG) r = SL_EMSGPACK;
    if (r < 0) {
      scan_err = r;
      break;
    }
    off += s.pos;
    objbytes += s.objbytes;
    values += s.values;
    n++;
  }
  size_t proven = off;
  if (n) {
    msg->entries = malloc(n * sizeof(*msg->entries));
    if (!msg->entries) return SL_ENOMEM;
  }
  char *mem = NULL;
  if (objbytes && !(msg->objects = mem = malloc(objbytes))) return SL_ENOMEM;
  size_t cap = n;
  const uint8_t *q = (const uint8_t *)p, *end = q + proven;
  while (q < end) {
    msgpack_object e;
    q = build(q, &e, &mem);
    int r = add_pair(msg, &cap, &e, lim);
    if (r < 0) return r;
  }
  return scan_err;
}

int sl_fwd_message_parse(const msgpack_object *root, const sl_fwd_limits_t *lim,
                         sl_fwd_message_t *msg) {
  memset(msg, 0, sizeof(*msg));
  if (root->type != MSGPACK_OBJECT_ARRAY) return SL_ENOTARRAY;
  uint32_t n = root->via.array.size;
  const msgpack_object *a = root->via.array.ptr;
  if (n < 2) return SL_EBADMODE;
  if (!is_bytes(&a[0])) return SL_EBADTAG;
  if (lim->max_tag && bytes_len(&a[0]) > lim->max_tag) return SL_ETAGSIZE;
  const msgpack_object *second = &a[1];
  const msgpack_object *compressed = NULL;
  size_t cap = 0;
  int r;
  msg->tag = bytes_ptr(&a[0]);
  msg->tag_len = bytes_len(&a[0]);

  /* An array in the second slot is Forward's entry list, unless it starts
   * with a non-array: then it is a v1.5 [EventTime, {metadata}] time of a
   * Message. */
  bool forward = second->type == MSGPACK_OBJECT_ARRAY &&
                 (second->via.array.size == 0 ||
                  second->via.array.ptr[0].type == MSGPACK_OBJECT_ARRAY);

  if (forward || is_bytes(second)) {
    r = SL_EBADMODE;
    if (n > 3) goto fail;
    r = parse_options(n == 3 ? &a[2] : NULL, msg, &compressed);
    if (r) goto fail;
    if (forward) {
      msg->mode = SL_FWD_FORWARD;
      for (uint32_t i = 0; i < second->via.array.size && r == 0; i++)
        r = add_pair(msg, &cap, &second->via.array.ptr[i], lim);
    } else {
      const char *p = bytes_ptr(second);
      size_t len = bytes_len(second);
      msg->mode = SL_FWD_PACKED;
      if (compressed && bytes_eq(compressed, "gzip")) {
        msg->mode = SL_FWD_COMPRESSED_PACKED;
        r = gunzip(p, len, lim->decompression_size_limit, msg);
        if (r) goto fail;
        p = msg->inflated;
        len = msg->decoded_bytes;
      } else if (compressed && !bytes_eq(compressed, "text")) {
        r = SL_EBADOPTION;
        goto fail;
      } else {
        msg->decoded_bytes = len;
      }
      r = parse_packed(p, len, lim, msg);
    }
  } else {
    r = SL_EBADMODE;
    if (n != 3 && n != 4) goto fail;
    msg->mode = SL_FWD_MESSAGE;
    r = parse_options(n == 4 ? &a[3] : NULL, msg, &compressed);
    if (r == 0) r = add_entry(msg, &cap, &a[1], &a[2], lim);
  }
  if (r) goto fail;
  if (msg->has_size) msg->size_mismatch = msg->size != (uint64_t)(msg->n_entries + msg->n_skipped);
  return 0;
fail:
  sl_fwd_message_free(msg);
  return r;
}

void sl_fwd_message_free(sl_fwd_message_t *msg) {
  free(msg->entries);
  free(msg->objects);
  free(msg->inflated);
  memset(msg, 0, sizeof(*msg));
}
