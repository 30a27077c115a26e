/* Print mode's output: records as JSON lines on stdout, written in order
 * without blocking the loop (uv_fs_write on libuv's thread pool, one write
 * in flight at a time), each batch settling its completion once written, so
 * that a chunk is acked only when its lines are out.  When more than
 * SL_PRINT_HIGH bytes wait, the owner is told to hold back; on_room comes
 * when they are below SL_PRINT_LOW.  Loop thread only. */
#ifndef SL_PRINT_OUT_H
#define SL_PRINT_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "core/buf.h"
#include "core/completion.h"

#define SL_PRINT_HIGH (4u << 20)
#define SL_PRINT_LOW (1u << 20)

typedef struct sl_print_out sl_print_out_t;

/* Writes to `fd` (borrowed; stdout).  on_room(arg) as above.  NULL on
 * ENOMEM. */
sl_print_out_t *sl_print_out_new(uv_loop_t *loop, int fd, void (*on_room)(void *arg), void *arg);

/* Queues buf's bytes (taken: *buf is left empty).  `done` (may be NULL) is
 * held now and settled when they are written (false on a write error).
 * Returns true while fewer than SL_PRINT_HIGH bytes wait, false when the
 * caller should hold back until on_room. */
bool sl_print_out_write(sl_print_out_t *o, sl_buf_t *buf, sl_completion_t *done);

/* Bytes queued or being written. */
size_t sl_print_out_pending(const sl_print_out_t *o);

/* Fails what has not started, waits for the write in flight (a thread-pool
 * write cannot be cancelled), then on_closed once.  Then
 * sl_print_out_free. */
void sl_print_out_close(sl_print_out_t *o, void (*on_closed)(void *arg), void *arg);
void sl_print_out_free(sl_print_out_t *o); /* accepts NULL */

#endif
