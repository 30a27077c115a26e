/* Byte-level helpers shared by the sketches' serialisers (hll.c,
 * ddsketch.c): LEB128 varints, zigzag, little-endian doubles.  Header-only
 * and pure.  Kept out of the sketches so both formats read alike. */
#ifndef SL_SKETCH_CODEC_H
#define SL_SKETCH_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"

/* Appends v as an unsigned LEB128 varint (1 to 10 bytes).  0 or SL_ENOMEM. */
static inline int sl_codec_put_varint(sl_buf_t *b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  do {
    uint8_t byte = v & 0x7f;
    v >>= 7;
    tmp[n++] = byte | (v ? 0x80 : 0);
  } while (v);
  return sl_buf_append(b, tmp, n);
}

/* Reads a varint at *pos, advancing it.  0, or SL_EBADSTATE when the bytes
 * end first or the value does not fit 64 bits. */
static inline int sl_codec_get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (*pos >= len) return SL_EBADSTATE;
    uint8_t byte = p[(*pos)++];
    if (shift == 63 && byte > 1) return SL_EBADSTATE;
    v |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return SL_EBADSTATE;
}

static inline uint64_t sl_codec_zigzag(int64_t v) {
  return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}
static inline int64_t sl_codec_unzigzag(uint64_t v) {
  return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* A double as its IEEE-754 bits, little-endian (8 bytes). */
static inline int sl_codec_put_double(sl_buf_t *b, double d) {
  uint64_t bits;
  uint8_t tmp[8];
  memcpy(&bits, &d, 8);
  for (int i = 0; i < 8; i++) tmp[i] = (uint8_t)(bits >> (8 * i));
  return sl_buf_append(b, tmp, 8);
}

static inline int sl_codec_get_double(const uint8_t *p, size_t len, size_t *pos, double *out) {
  if (*pos > len || len - *pos < 8) return SL_EBADSTATE;
  uint64_t bits = 0;
  for (int i = 0; i < 8; i++) bits |= (uint64_t)p[*pos + i] << (8 * i);
  *pos += 8;
  memcpy(out, &bits, 8);
  return 0;
}

#endif
