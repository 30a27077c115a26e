/* One pipe, one uv_poll and one safety-net timer per loop, shared by every
 * attached librdkafka queue.  A wake-up serves every attachment: serving an
 * empty queue costs little, and one pipe keeps the fd count independent of
 * the number of clients.  Loop thread only. */
#include "kafka/kafka_bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/log.h"

#define SAFETY_POLL_MS 100

struct sl_kafka_attach {
  sl_kafka_bridge_t *bridge;
  sl_kafka_attach_t *prev, *next;
  rd_kafka_queue_t *queue;
  size_t (*serve)(void *arg);
  void *arg;
  bool detached; /* detached during a serve pass: freed after it */
};

struct sl_kafka_bridge {
  uv_loop_t *loop;
  int pipefd[2];
  uv_poll_t wake_poll;
  uv_timer_t safety_timer;
  int open_handles;
  sl_kafka_attach_t *attached;
  int serving; /* nesting depth of serve_all */
  bool reap;   /* an attachment was detached while serving */
  void (*on_closed)(void *arg);
  void *on_closed_arg;
  sl_metric_t *wakeups, *missed;
};

static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  sl_log_level_t l = level <= 3 ? SL_LOG_ERROR : level <= 5 ? SL_LOG_WARN : SL_LOG_DEBUG;
  sl_log(l, "kafka", "librdkafka %s %s: %s", rd_kafka_name(rk), fac, buf);
}

void sl_kafka_bridge_prepare_conf(rd_kafka_conf_t *conf) {
  char err[256];
  rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
  rd_kafka_conf_set(conf, "log.queue", "true", err, sizeof err);
}

/* Pipe bytes only say "look"; how many arrived does not matter. */
static bool drain_pipe(sl_kafka_bridge_t *b) {
  char buf[256];
  bool any = false;
  while (read(b->pipefd[0], buf, sizeof buf) > 0) any = true;
  return any;
}

static size_t serve_all(sl_kafka_bridge_t *b) {
  size_t served = 0;
  b->serving++;
  for (sl_kafka_attach_t *a = b->attached; a; a = a->next)
    if (!a->detached) served += a->serve(a->arg);
  if (--b->serving == 0 && b->reap) {
    b->reap = false;
    for (sl_kafka_attach_t *a = b->attached, *next; a; a = next) {
      next = a->next;
      if (a->detached) sl_kafka_bridge_detach(a);
    }
  }
  return served;
}

static void on_wake(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  sl_kafka_bridge_t *b = h->data;
  drain_pipe(b);
  sl_metric_inc(b->wakeups);
  serve_all(b);
}

static bool pipe_has_bytes(const sl_kafka_bridge_t *b) {
  int n = 0;
  return ioctl(b->pipefd[0], FIONREAD, &n) == 0 && n > 0;
}

static void on_safety_poll(uv_timer_t *t) {
  sl_kafka_bridge_t *b = t->data;
  /* A byte in the pipe means the wake-up is on its way: not a lost one.
   * librdkafka writes it when it queues the event, so an event served here
   * that was queued after the first look has its byte in the pipe by now;
   * the second look only peeks, leaving that byte to wake the loop. */
  bool announced = drain_pipe(b);
  size_t served = serve_all(b);
  if (served > 0 && !announced && !pipe_has_bytes(b)) {
    sl_metric_inc(b->missed);
    sl_log_rl(SL_LOG_WARN, "kafka", "the safety-net poll found Kafka events no wake-up announced");
  }
}

sl_kafka_bridge_t *sl_kafka_bridge_new(uv_loop_t *loop, sl_metrics_t *metrics, int *err) {
  sl_kafka_bridge_t *b = calloc(1, sizeof *b);
  if (!b) {
    *err = -ENOMEM;
    return NULL;
  }
  b->loop = loop;
  if (pipe2(b->pipefd, O_NONBLOCK | O_CLOEXEC)) {
    *err = -errno;
    free(b);
    return NULL;
  }
  b->wakeups = sl_metrics_counter(metrics, "sluice_kafka_wakeups_total",
                                  "Times a Kafka client's queue woke the event loop.");
  b->missed = sl_metrics_counter(metrics, "sluice_kafka_missed_wakeups_total",
                                 "Times the 100 ms safety-net poll found Kafka events that no wake-up had "
                                 "announced (should stay 0).");
  uv_poll_init(loop, &b->wake_poll, b->pipefd[0]);
  b->wake_poll.data = b;
  uv_poll_start(&b->wake_poll, UV_READABLE, on_wake);
  uv_timer_init(loop, &b->safety_timer);
  b->safety_timer.data = b;
  uv_timer_start(&b->safety_timer, on_safety_poll, SAFETY_POLL_MS, SAFETY_POLL_MS);
  b->open_handles = 2;
  return b;
}

sl_kafka_attach_t *sl_kafka_bridge_attach(sl_kafka_bridge_t *b, rd_kafka_t *rk, rd_kafka_queue_t *queue,
                                          size_t (*serve)(void *arg), void *arg) {
  sl_kafka_attach_t *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  *a = (sl_kafka_attach_t){.bridge = b, .queue = queue, .serve = serve, .arg = arg};
  a->next = b->attached;
  if (a->next) a->next->prev = a;
  b->attached = a;
  if (rk) rd_kafka_set_log_queue(rk, NULL);
  rd_kafka_queue_io_event_enable(queue, b->pipefd[1], "1", 1);
  /* Events queued before the fd was set announced nothing: look now. */
  char one = 1;
  ssize_t w = write(b->pipefd[1], &one, 1);
  (void)w;
  return a;
}

void sl_kafka_bridge_detach(sl_kafka_attach_t *a) {
  if (!a) return;
  sl_kafka_bridge_t *b = a->bridge;
  if (!a->detached) {
    a->detached = true;
    rd_kafka_queue_io_event_enable(a->queue, -1, NULL, 0);
  }
  if (b->serving) {
    b->reap = true;
    return;
  }
  if (a->prev)
    a->prev->next = a->next;
  else
    b->attached = a->next;
  if (a->next) a->next->prev = a->prev;
  free(a);
}

static void on_handle_closed(uv_handle_t *h) {
  sl_kafka_bridge_t *b = h->data;
  if (--b->open_handles == 0 && b->on_closed) b->on_closed(b->on_closed_arg);
}

void sl_kafka_bridge_close(sl_kafka_bridge_t *b, void (*on_closed)(void *arg), void *arg) {
  b->on_closed = on_closed;
  b->on_closed_arg = arg;
  uv_close((uv_handle_t *)&b->wake_poll, on_handle_closed);
  uv_close((uv_handle_t *)&b->safety_timer, on_handle_closed);
}

void sl_kafka_bridge_free(sl_kafka_bridge_t *b) {
  if (!b) return;
  close(b->pipefd[0]);
  close(b->pipefd[1]);
  free(b);
}
