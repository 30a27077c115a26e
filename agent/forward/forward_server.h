/* The forward input's I/O: listeners (TCP, unix, UDP heartbeat), one
 * connection object per client running the handshake, decoding, acks,
 * limits and backpressure.  It knows nothing of what happens to a message:
 * each goes up through the handler the owner gave, with a completion that
 * writes the ack once sealed and settled.  Loop thread only. */
#ifndef SL_FORWARD_SERVER_H
#define SL_FORWARD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "core/completion.h"
#include "core/metrics.h"
#include "forward/forward_conf.h"
#include "forward/forward_decode.h"

typedef struct sl_fwd_server sl_fwd_server_t;
typedef struct sl_fwd_conn sl_fwd_conn_t;

/* Where a message came from, for source_address_key/source_hostname_key.
 * Both strings are valid during the on_message call only. */
typedef struct {
  const char *address;  /* "127.0.0.1", "::1" or "unix" */
  const char *hostname; /* reverse-resolved, else the address */
} sl_fwd_peer_t;

typedef struct {
  /* One decoded message.  Takes *frame and *msg (always: the handler frees
   * them, now or later).  `done` is NULL when the client asked for no ack;
   * otherwise the handler holds it once per part it hands on, settles each,
   * and seals it once the message is fully handed on: then the ack is
   * written if every part was ok (and the connection is still open).
   * `done` belongs to the server: it stays valid until sealed and settled,
   * even if its connection closes first.  Returns false when the handler
   * cannot take more now (it then pauses the server, and resumes it when it
   * can): the connection stops handling the frames it has buffered. */
  bool (*on_message)(void *arg, const sl_fwd_peer_t *peer, sl_fwd_frame_t *frame, sl_fwd_message_t *msg,
                     sl_completion_t *done);
  void *arg;
} sl_fwd_handler_t;

/* `cfg`, `metrics` borrowed: they outlive the server.  `handler` copied. */
int sl_fwd_server_new(uv_loop_t *loop, const sl_forward_conf_t *cfg, sl_metrics_t *metrics,
                      const sl_fwd_handler_t *handler, sl_fwd_server_t **out);
/* Makes the server one of several workers on the same TCP ports
 * (SO_REUSEPORT), before it starts: the primary also listens on unix
 * socket paths and for UDP heartbeats; a secondary binds the ports the
 * `follow` server (the primary, started) bound, so port 0 works.  Each
 * connection stays with the worker that accepted it. */
void sl_fwd_server_set_worker(sl_fwd_server_t *s, bool primary, const sl_fwd_server_t *follow, const char *name);
/* Binds every listen address; logs each bound address.  -errno with a log
 * line naming the address on failure. */
int sl_fwd_server_start(sl_fwd_server_t *s);
/* Stops (resumes) reading from every connection; frames already buffered
 * wait too.  Nothing is dropped while paused. */
void sl_fwd_server_pause(sl_fwd_server_t *s);
void sl_fwd_server_resume(sl_fwd_server_t *s);
bool sl_fwd_server_paused(const sl_fwd_server_t *s);
/* While reads are paused a disconnect is not read: this looks at every
 * connection whose message is held back and closes those whose client has
 * gone (hung up, or shut down its side), so that their held-back
 * completions are abandoned before anything more of them is produced. */
void sl_fwd_server_reap_gone(sl_fwd_server_t *s);
/* Closes the listeners; open connections stay. */
void sl_fwd_server_stop_accepting(sl_fwd_server_t *s);
/* Closes everything; on_closed is called once every handle is closed, then
 * the server may be freed with sl_fwd_server_free. */
void sl_fwd_server_close(sl_fwd_server_t *s, void (*on_closed)(void *arg), void *arg);
void sl_fwd_server_free(sl_fwd_server_t *s);
/* The first bound TCP port (for logs and tests using port 0). */
int sl_fwd_server_port(const sl_fwd_server_t *s);
/* SIGHUP: reads the certificate, key and CA files of `conf` (borrowed for
 * the call; the running config's section: its paths and settings stay, the
 * daemon names a change to them as needing a restart) again into the
 * context that new connections use; open connections keep theirs.
 * Workers share one context: only the primary reloads it.  0 when it is
 * done (or there is no TLS); on failure the context in use stays and the
 * error is logged, naming the file and OpenSSL's reason.  Any thread. */
int sl_fwd_server_reload_tls(sl_fwd_server_t *s, const sl_forward_conf_t *conf);
/* Chunks whose ack waits for their completion. */
size_t sl_fwd_server_pending_acks(const sl_fwd_server_t *s);

#endif
