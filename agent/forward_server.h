/* The forward input's I/O: listeners (TCP, unix, UDP heartbeat), one
 * connection object per client running the handshake, decoding, acks,
 * limits and backpressure.  Loop thread only. */
#ifndef SL_FORWARD_SERVER_H
#define SL_FORWARD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "config.h"
#include "forward_decode.h"

typedef struct sl_fwd_server sl_fwd_server_t;
typedef struct sl_fwd_conn sl_fwd_conn_t;
typedef struct sl_ingest sl_ingest_t;

/* Where a message came from, for source_address_key/source_hostname_key. */
typedef struct {
  const char *address;  /* "127.0.0.1", "::1" or "unix" */
  const char *hostname; /* reverse-resolved, else the address */
} sl_fwd_peer_t;

/* One chunk waiting for Kafka: counts its records down, then acks.  Owned by
 * itself: freed when settled and sealed.  Survives its connection (conn is
 * set to NULL when the connection closes first). */
typedef struct sl_ack_tracker sl_ack_tracker_t;

/* NULL on ENOMEM. chunk bytes are copied. */
sl_ack_tracker_t *sl_ack_tracker_new(sl_fwd_conn_t *conn, const char *chunk, size_t len);
void sl_ack_tracker_hold(sl_ack_tracker_t *t);              /* one more record in flight */
void sl_ack_tracker_settle(sl_ack_tracker_t *t, bool ok);   /* one record done */
void sl_ack_tracker_seal(sl_ack_tracker_t *t);              /* no more records will be held */

int sl_fwd_server_new(uv_loop_t *loop, const sl_forward_config_t *cfg, sl_ingest_t *ingest,
                      sl_fwd_server_t **out);
/* Binds every listen address; logs each bound address.  -errno with a log
 * line naming the address on failure. */
int sl_fwd_server_start(sl_fwd_server_t *s);
/* Stops (resumes) reading from every connection; frames already buffered
 * wait too.  Nothing is dropped while paused. */
void sl_fwd_server_pause(sl_fwd_server_t *s);
void sl_fwd_server_resume(sl_fwd_server_t *s);
bool sl_fwd_server_paused(const sl_fwd_server_t *s);
/* Closes the listeners; open connections stay. */
void sl_fwd_server_stop_accepting(sl_fwd_server_t *s);
/* Closes everything; on_closed is called once every handle is closed, then
 * the server may be freed with sl_fwd_server_free. */
void sl_fwd_server_close(sl_fwd_server_t *s, void (*on_closed)(void *arg), void *arg);
void sl_fwd_server_free(sl_fwd_server_t *s);
/* The first bound TCP port (for logs and tests using port 0). */
int sl_fwd_server_port(const sl_fwd_server_t *s);

#endif
