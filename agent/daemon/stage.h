/* The shape every stage has, so that the daemon starts, drains and stops
 * them in order without knowing what each does:
 *
 *   create       from the config (done by each stage's *_stage_new)
 *   start        bind, connect; 0 or a negative error (logged by the stage)
 *   stop_intake  take no new work; finish what is in hand
 *   inflight     how much work is still in hand (0: drained), described
 *                in `what` for the drain's log line
 *   outcome      what became of the work, for the daemon's closing line
 *   close        close every handle; on_closed once, on the loop
 *   free         after the loop has ended
 *   reload       (optional) apply what can change live from a reloaded
 *                config, on SIGHUP
 *
 * News goes up through sl_stage_host_t.  Loop thread only. */
#ifndef SL_STAGE_H
#define SL_STAGE_H

#include <stddef.h>
#include <uv.h>

#include "core/metrics.h"
#include "daemon/config.h"

typedef struct {
  const char *name;
  int (*start)(void *self);
  void (*stop_intake)(void *self);
  size_t (*inflight)(void *self, char *what, size_t len);
  /* What became of the work (for the last log line); may be NULL. */
  void (*outcome)(void *self, char *what, size_t len);
  void (*close)(void *self, void (*on_closed)(void *arg), void *arg);
  void (*free)(void *self);
  /* Applies what of the stage can change while it runs from `next` (a
   * reloaded config, already validated), called on the loop thread that
   * owns the stage, between two of its events; what it cannot change live
   * it leaves as it is (the daemon says what needs a restart).  `next` is
   * borrowed until on_done, which is called exactly once, on the daemon's
   * loop thread (possibly before reload returns), with 0 or a negative
   * error that the stage has logged (it then keeps what it had).  Never
   * called while stopping.  NULL: nothing of the stage changes live.  A
   * forward stage reloading its TLS certificate, or the jobs stage its
   * sinks, would do it here. */
  void (*reload)(void *self, const sl_config_t *next, void (*on_done)(void *arg, int err), void *arg);
} sl_stage_ops_t;

typedef struct {
  const sl_stage_ops_t *ops; /* NULL: the config leaves the stage off */
  void *self;
} sl_stage_t;

/* What a stage tells the daemon. */
typedef struct {
  /* The stage cannot go on (e.g. a fatal Kafka error): the daemon drains
   * and exits 1.  `reason` is valid during the call. */
  void (*on_fatal)(void *arg, const char *stage, const char *reason);
  /* Whether every stage has started, none is stopping and every sink is
   * up (for /readyz); when not, why in `why` (len bytes). */
  int (*is_ready)(void *arg, char *why, size_t len);
  void *arg;
} sl_stage_host_t;

struct sl_kafka_bridge;
struct sl_kafka_embedded;

/* Everything a stage is created from; borrowed, and valid until the stage
 * is freed. */
typedef struct {
  uv_loop_t *loop;
  const sl_config_t *cfg;
  sl_metrics_t *metrics;
  struct sl_kafka_bridge *bridge;     /* NULL without [kafka] */
  const char *bootstrap;              /* Kafka bootstrap servers, or NULL */
  struct sl_kafka_embedded *embedded; /* the embedded cluster, or NULL */
  sl_stage_host_t host;
} sl_stage_env_t;

#endif
