/* Private to forward_server.c and forward_conn.c: the server and connection
 * structs both read, and the few calls the listeners make on a connection
 * (accept, start/stop reading, process, close).  Loop thread only. */
#ifndef SL_FORWARD_CONN_H
#define SL_FORWARD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "forward/forward_auth.h"
#include "forward/forward_decode.h"
#include "forward/forward_server.h"
#include "forward/forward_tls.h"

/* One read buffer per server, shared by every connection and heartbeat
 * socket: a read callback consumes it before the next read starts. */
#define SL_FWD_READ_BUF_SIZE (256 * 1024)

typedef struct sl_fwd_listener sl_fwd_listener_t; /* forward_server.c */
typedef struct sl_ack_tracker sl_ack_tracker_t; /* forward_conn.c */

/* Reasons of sluice_forward_errors_total, one child each. */
typedef enum {
  SL_FWD_ERR_MSGPACK,
  SL_FWD_ERR_TOOBIG,
  SL_FWD_ERR_DEPTH,
  SL_FWD_ERR_NOTARRAY,
  SL_FWD_ERR_BADTAG,
  SL_FWD_ERR_BADMODE,
  SL_FWD_ERR_BADOPTION,
  SL_FWD_ERR_BADGZIP,
  SL_FWD_ERR_BOMB,
  SL_FWD_ERR_BADENTRY,
  SL_FWD_ERR_VALUES,
  SL_FWD_ERR_TAGSIZE,
  SL_FWD_ERR__COUNT
} sl_fwd_err_reason_t;

/* Reasons of sluice_forward_auth_failures_total. */
typedef enum { SL_FWD_AUTH_KEY, SL_FWD_AUTH_USER, SL_FWD_AUTH_PING, SL_FWD_AUTH__COUNT } sl_fwd_auth_reason_t;

/* The forward input's metrics, registered by sl_fwd_server_new. */
typedef struct {
  sl_metric_t *conn_accepted, *conn_rejected, *conn_idle, *conn_active;
  sl_metric_t *messages[4], *records[4]; /* by mode: sl_fwd_mode_t - 1 */
  sl_metric_t *bytes, *acks;
  sl_metric_t *errors[SL_FWD_ERR__COUNT];
  sl_metric_t *invalid_events, *size_mismatch, *large, *signal_dropped;
  sl_metric_t *auth_failures[SL_FWD_AUTH__COUNT];
  sl_metric_t *heartbeats, *pauses, *paused, *paused_us, *write_blocked, *pending_acks;
  sl_metric_t *worker_accepted; /* with workers only */
  /* With [input.forward.tls] only. */
  sl_metric_t *tls_handshakes, *tls_errors[SL_FWD_TLS_ERR__COUNT], *tls_expiry;
} sl_fwd_metrics_t;

struct sl_fwd_server {
  uv_loop_t *loop;
  const sl_forward_conf_t *cfg;
  sl_fwd_handler_t handler;
  sl_fwd_metrics_t m;
  sl_metrics_t *metrics;
  size_t pending_acks;
  sl_fwd_limits_t limits;
  sl_fwd_auth_config_t auth;
  sl_fwd_auth_user_t *users;
  sl_fwd_tls_ctx_t *tls; /* the config's, shared by every worker; NULL: plain TCP */
  sl_fwd_listener_t *listeners;
  size_t n_listeners;
  sl_fwd_conn_t *conns; /* doubly linked; a connection links and unlinks itself */
  /* Where the next resume starts: the connection after the one whose
   * message filled the queue last time, so that under sustained overload
   * every connection gets its turn.  Moved on when that connection goes. */
  sl_fwd_conn_t *resume_from;
  size_t n_conns;
  int open_handles; /* listener handles not yet closed */
  bool paused, closing;
  uint64_t paused_at; /* uv_hrtime of the pause, while paused */
  bool primary;   /* listens on unix paths and UDP heartbeats too */
  bool reuseport; /* one of several workers on the same TCP ports */
  void (*on_closed)(void *arg);
  void *on_closed_arg;
  int port;
  char rbuf[SL_FWD_READ_BUF_SIZE];
};

typedef enum {
  SL_FWD_CONN_RESOLVING,
  SL_FWD_CONN_TLS_HANDSHAKE, /* reading, but only the TLS layer sees the bytes */
  SL_FWD_CONN_AWAIT_PING,
  SL_FWD_CONN_ESTABLISHED
} sl_fwd_conn_state_t;

/* A TCP or unix stream, seen as whichever libuv type a call needs. */
typedef union {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
} sl_fwd_stream_t;

struct sl_fwd_conn {
  sl_fwd_server_t *srv;
  sl_fwd_conn_t *prev, *next;
  sl_fwd_stream_t h;
  uv_timer_t idle_timer;
  uv_getnameinfo_t nameinfo;
  sl_fwd_decoder_t *dec;
  sl_fwd_tls_t *tls; /* owned; NULL: plain */
  sl_fwd_conn_state_t state;
  sl_fwd_auth_session_t session;
  sl_ack_tracker_t *trackers;
  int refs; /* open handles and requests in flight; freed at 0 */
  int pending_writes;
  bool reading, closing, close_when_done, stalled, write_blocked, resolving;
  char address[64];
  char hostname[256];
};

/* Accepts the pending connection on listener (a TCP one when is_tcp, else
 * unix) into a new connection linked into s->conns, which frees itself once
 * closed.  SL_ENOMEM, with nothing accepted, when it cannot be allocated;
 * the caller must then accept and close it so libuv keeps watching the
 * listener. */
int sl_fwd_conn_accept(sl_fwd_server_t *s, uv_stream_t *listener, bool is_tcp);
/* Reading starts only once the handshake can begin and the write queue is
 * short; both are no-ops when already in that state. */
void sl_fwd_conn_start_reading(sl_fwd_conn_t *c);
void sl_fwd_conn_stop_reading(sl_fwd_conn_t *c);
/* Handles the frames already buffered until the server pauses or the
 * connection closes or must wait. */
void sl_fwd_conn_process(sl_fwd_conn_t *c);
/* Asynchronous; c stays valid until the loop runs its close callbacks.
 * Pending ack trackers are detached and never ack. */
void sl_fwd_conn_close(sl_fwd_conn_t *c);

/* forward_server.c: called when a connection has been freed, to report the
 * server closed once nothing is left open. */
void sl_fwd_server_maybe_closed(sl_fwd_server_t *s);

#endif
