/* A growable byte buffer used by encoders (JSON, msgpack replies) and by the
 * I/O code that hands bytes to sockets.  Header-only; not thread-safe. */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef struct {
  char *data; /* owned; free with sl_buf_free */
  size_t len;
  size_t cap;
} sl_buf_t;

static inline int sl_buf_reserve(sl_buf_t *b, size_t more) {
  if (b->len + more <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + more) cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) return SL_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

static inline int sl_buf_append(sl_buf_t *b, const void *p, size_t n) {
  int r = sl_buf_reserve(b, n);
  if (r) return r;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

static inline int sl_buf_putc(sl_buf_t *b, char c) { return sl_buf_append(b, &c, 1); }

static inline int sl_buf_puts(sl_buf_t *b, const char *s) { return sl_buf_append(b, s, strlen(s)); }

/* msgpack_packer write callback: msgpack_packer_init(&pk, buf, sl_buf_msgpack_write). */
static inline int sl_buf_msgpack_write(void *data, const char *p, size_t n) {
  return sl_buf_append((sl_buf_t *)data, p, n) ? -1 : 0;
}

static inline void sl_buf_reset(sl_buf_t *b) { b->len = 0; }

static inline void sl_buf_free(sl_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

#endif
