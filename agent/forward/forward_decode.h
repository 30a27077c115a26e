/* Forward Protocol v1 decoding, pure: bytes from a connection in, framed
 * msgpack values and interpreted event messages out.  No sockets, no loop,
 * so it is unit-tested and fuzzed directly.  Runs on the loop thread (one
 * decoder per connection). */
#ifndef SL_FORWARD_DECODE_H
#define SL_FORWARD_DECODE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  size_t chunk_size_limit;         /* largest top-level message, bytes */
  size_t decompression_size_limit; /* largest gunzipped PackedForward payload */
  int max_depth;                   /* deepest nesting of arrays/maps, >= 2;
                                      the top-level array is depth 1; values
                                      above 32 act as 32 (msgpack-c's stack) */
  bool skip_invalid_event;         /* true: skip a bad entry; false: reject message */
  /* Most msgpack values (every element of every array and map, keys
   * included) a message may decode to, its PackedForward entries counted
   * too; each costs a msgpack_object (24 bytes) however small its encoding,
   * so this bounds the memory of a decoded message.  Checked while scanning,
   * before anything is allocated.  0: no limit. */
  size_t max_values;
  /* The current time, given to entries whose time is nil or 0 (as fluentd's
   * in_forward does).  NULL: the real-time clock. */
  void (*now)(int64_t *sec, uint32_t *nsec);
  /* Longest tag; every record carries a copy in Kafka (its fluent.tag
   * header).  0: no limit. */
  size_t max_tag;
} sl_fwd_limits_t;

/* Longest `chunk` option: clients send 24 bytes (base64 of 16); each
 * pending ack keeps a copy, so a longer one is refused (SL_EBADOPTION). */
#define SL_FWD_CHUNK_MAX 256

/* ---- framing: a byte stream into top-level msgpack values ---------------- */

typedef struct sl_fwd_decoder sl_fwd_decoder_t;

/* One top-level value, owned by the frame until sl_fwd_frame_free.  `root`
 * and what it points to stay valid until then, whatever the decoder does
 * meanwhile (more frames taken, more bytes fed, the decoder freed).  Strings
 * point into the decoder's input buffer, which the frame shares rather than
 * copies; the buffer is freed with the last frame (or decoder) using it.
 * A frame is freed on the thread of its decoder. */
typedef struct {
  msgpack_object root;
  size_t size; /* encoded bytes of this value */
  /* internal */
  void *objects; /* arrays and maps reachable from root, one allocation */
  void *bytes;   /* the shared input buffer the strings point into */
} sl_fwd_frame_t;

/* Returns NULL on ENOMEM.  Limits are copied. */
sl_fwd_decoder_t *sl_fwd_decoder_new(const sl_fwd_limits_t *limits);
void sl_fwd_decoder_free(sl_fwd_decoder_t *d); /* accepts NULL */

/* Appends bytes (copied).  0, or SL_ENOMEM. */
int sl_fwd_decoder_feed(sl_fwd_decoder_t *d, const char *buf, size_t len);

/* Takes the next complete top-level value.  Returns 1 and fills *out, 0 when
 * more bytes are needed, or a negative error after which the stream is
 * unusable: SL_EMSGPACK (invalid bytes), SL_ETOOBIG (the value is, or is
 * declared to be, larger than chunk_size_limit; detected as soon as the bytes
 * or the headers prove it, without buffering the whole value), SL_EDEPTH,
 * SL_EVALUES (its headers declare more than max_values values).
 * A bare nil between messages is skipped (keepalive), never returned. */
int sl_fwd_decoder_next(sl_fwd_decoder_t *d, sl_fwd_frame_t *out);

/* Bytes buffered and not yet returned as a frame. */
size_t sl_fwd_decoder_buffered(const sl_fwd_decoder_t *d);

void sl_fwd_frame_free(sl_fwd_frame_t *f); /* accepts a zeroed frame */

/* ---- interpretation: a frame into an event message ----------------------- */

typedef enum {
  SL_FWD_MESSAGE = 1,       /* [tag, time, record, option?] */
  SL_FWD_FORWARD,           /* [tag, [[time, record], ...], option?] */
  SL_FWD_PACKED,            /* [tag, bin|str, option?] */
  SL_FWD_COMPRESSED_PACKED, /* [tag, bin|str, {compressed: "gzip"}] */
} sl_fwd_mode_t;

typedef struct {
  int64_t sec;
  uint32_t nsec;
  const msgpack_object *record; /* a MAP; points into the message's zones */
} sl_fwd_entry_t;

typedef struct {
  sl_fwd_mode_t mode;
  const char *tag; /* not NUL-terminated; points into the frame's zone */
  size_t tag_len;
  sl_fwd_entry_t *entries; /* owned by the message */
  size_t n_entries;
  size_t n_skipped;  /* entries skipped as invalid (skip_invalid_event) */
  /* options */
  const char *chunk; /* NULL when no chunk option; else its bytes */
  size_t chunk_len;
  bool has_size;
  uint64_t size;      /* the `size` option, when has_size */
  bool size_mismatch; /* has_size and size != entries in the message */
  int64_t fluent_signal; /* 0 when absent */
  /* internal: unpacked PackedForward entries' arrays and maps, decompressed data */
  void *objects;
  char *inflated;
  size_t decoded_bytes; /* bytes after decompression, for accounting */
} sl_fwd_message_t;

/* Interprets a frame's root as an event message.  Returns 0 and fills *msg
 * (free with sl_fwd_message_free, before the frame), or a negative error with
 * *msg left freeable: SL_ENOTARRAY, SL_EBADTAG, SL_EBADMODE, SL_EBADOPTION,
 * SL_EBADGZIP, SL_EBOMB, SL_EMSGPACK (packed entries malformed), SL_EDEPTH,
 * SL_ETAGSIZE (tag longer than max_tag), SL_EBADOPTION also for a chunk
 * longer than SL_FWD_CHUNK_MAX,
 * SL_EVALUES (packed entries declaring more than max_values values),
 * SL_EBADENTRY (an invalid entry and !skip_invalid_event).
 * Packed entries are depth-checked as if nested where Forward mode nests its
 * entries (an entry is depth 3), so a record fits the limit in both modes
 * alike.  `size_mismatch` compares `size` with n_entries + n_skipped. */
int sl_fwd_message_parse(const msgpack_object *root, const sl_fwd_limits_t *limits,
                         sl_fwd_message_t *msg);
void sl_fwd_message_free(sl_fwd_message_t *msg); /* accepts a zeroed message */

/* Reads an EventTime ext (type 0, 8 bytes: be32 sec, be32 nsec) or an
 * integer; v1.5's [EventTime, {metadata}] array too.  0 or SL_EBADENTRY.
 * (Entries whose time is nil or 0 get the current time instead: that is
 * sl_fwd_message_parse's doing, not this function's.) */
int sl_fwd_time_parse(const msgpack_object *o, int64_t *sec, uint32_t *nsec);

#endif
