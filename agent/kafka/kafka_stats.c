/* The clients' statistics and their union (kafka_stats.h).  A client's
 * document is read outside the lock into its spare view, then swapped in
 * under the lock, so the lock is held only to count.  The union is by
 * host:port because librdkafka lists one broker several times (as a
 * bootstrap entry, by node id, as the group coordinator).  Any thread. */
#include "kafka/kafka_stats.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"

struct sl_kafka_stats_client {
  sl_kafka_stats_client_t *prev, *next;
  char name[64];
  bool producer;
  bool reported; /* a document was read */
  bool bad_logged;
  sl_kafka_stats_t *view, *spare; /* owned */
  sl_metric_t *brokers_up, *queue_messages, *queue_bytes;
  double messages_published, bytes_published; /* this client's share of the queue gauges */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sl_kafka_stats_client_t *clients; /* under lock */
static size_t last_up = SIZE_MAX;         /* under lock: the union last published */

/* Adds name to set (n entries) unless it is there; false when full. */
static bool set_add(char (*set)[SL_KAFKA_STATS_NAME_MAX], size_t *n, const char *name) {
  for (size_t i = 0; i < *n; i++)
    if (strcmp(set[i], name) == 0) return true;
  if (*n == SL_KAFKA_STATS_MAX_BROKERS) return false;
  snprintf(set[(*n)++], SL_KAFKA_STATS_NAME_MAX, "%s", name);
  return true;
}

static int64_t int_field(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

int sl_kafka_stats_parse(const char *json, size_t len, sl_kafka_stats_t *out) {
  memset(out, 0, sizeof *out);
  json_t *root = json_loadb(json, len, 0, NULL);
  json_t *brokers = json_object_get(root, "brokers");
  if (!json_is_object(brokers)) {
    json_decref(root);
    return SL_ESYNTAX;
  }
  const char *key;
  json_t *b;
  json_object_foreach(brokers, key, b) {
    const char *node = json_string_value(json_object_get(b, "nodename"));
    const char *source = json_string_value(json_object_get(b, "source"));
    const char *state = json_string_value(json_object_get(b, "state"));
    if (!node || !*node || strlen(node) >= SL_KAFKA_STATS_NAME_MAX || (source && strcmp(source, "internal") == 0))
      continue;
    set_add(out->known, &out->n_known, node);
    if (state && strcmp(state, "UP") == 0) set_add(out->up, &out->n_up, node);
  }
  out->msg_cnt = int_field(root, "msg_cnt");
  out->msg_size = int_field(root, "msg_size");
  json_decref(root);
  return 0;
}

/* Under lock: the union over the clients that reported; n_reported how
 * many did. */
static void union_locked(size_t *n_up, size_t *n_known, size_t *n_reported) {
  static char up[SL_KAFKA_STATS_MAX_BROKERS][SL_KAFKA_STATS_NAME_MAX];
  static char known[SL_KAFKA_STATS_MAX_BROKERS][SL_KAFKA_STATS_NAME_MAX];
  *n_up = *n_known = *n_reported = 0;
  for (sl_kafka_stats_client_t *c = clients; c; c = c->next) {
    if (!c->reported) continue;
    (*n_reported)++;
    for (size_t i = 0; i < c->view->n_up; i++) set_add(up, n_up, c->view->up[i]);
    for (size_t i = 0; i < c->view->n_known; i++) set_add(known, n_known, c->view->known[i]);
  }
}

/* Under lock: the union to every client's gauge (the same series, unless
 * clients were given different registries), and its changes to the log. */
static void publish_locked(void) {
  size_t up, known, reported;
  union_locked(&up, &known, &reported);
  for (sl_kafka_stats_client_t *c = clients; c; c = c->next) sl_gauge_set(c->brokers_up, (double)up);
  if (!reported || up == last_up) return;
  if (up == 0)
    sl_log(SL_LOG_WARN, "kafka", "no Kafka broker is reachable (librdkafka statistics: 0 of %zu up); /readyz "
           "answers 503 until one is", known);
  else if (last_up == 0)
    sl_log(SL_LOG_INFO, "kafka", "Kafka brokers reachable again (%zu of %zu up)", up, known);
  last_up = up;
}

sl_kafka_stats_client_t *sl_kafka_stats_join(sl_metrics_t *metrics, const char *name, bool producer) {
  sl_kafka_stats_client_t *c = calloc(1, sizeof *c);
  if (!c || !(c->view = calloc(1, sizeof *c->view)) || !(c->spare = calloc(1, sizeof *c->spare))) {
    if (c) free(c->view);
    free(c);
    return NULL;
  }
  snprintf(c->name, sizeof c->name, "%s", name);
  c->producer = producer;
  c->brokers_up = sl_metrics_gauge(metrics, "sluice_kafka_brokers_up",
                                   "Kafka brokers (distinct host:port) that some Kafka client of this process has "
                                   "a connection in state UP to, per librdkafka's statistics.");
  c->queue_messages = sl_metrics_gauge(metrics, "sluice_kafka_producer_queue_messages",
                                       "Records in the Kafka producers' queues, not yet acknowledged (librdkafka "
                                       "statistics msg_cnt).");
  c->queue_bytes = sl_metrics_gauge(metrics, "sluice_kafka_producer_queue_bytes",
                                    "Bytes of the records in the Kafka producers' queues (librdkafka statistics "
                                    "msg_size).");
  pthread_mutex_lock(&lock);
  c->next = clients;
  if (clients) clients->prev = c;
  clients = c;
  pthread_mutex_unlock(&lock);
  return c;
}

/* A client's share of a gauge summed over producers. */
static void share(sl_metric_t *g, double *published, double now) {
  if (now == *published) return;
  sl_gauge_add(g, now - *published);
  *published = now;
}

void sl_kafka_stats_report(sl_kafka_stats_client_t *c, const char *json, size_t len) {
  if (!c) return;
  if (sl_kafka_stats_parse(json, len, c->spare) != 0) {
    if (!c->bad_logged)
      sl_log(SL_LOG_WARN, "kafka", "%s: librdkafka statistics not understood (no \"brokers\" object): ignored",
             c->name);
    c->bad_logged = true;
    return;
  }
  if (c->producer) {
    share(c->queue_messages, &c->messages_published, (double)c->spare->msg_cnt);
    share(c->queue_bytes, &c->bytes_published, (double)c->spare->msg_size);
  }
  pthread_mutex_lock(&lock);
  sl_kafka_stats_t *v = c->view;
  c->view = c->spare;
  c->spare = v;
  c->reported = true;
  publish_locked();
  pthread_mutex_unlock(&lock);
}

void sl_kafka_stats_leave(sl_kafka_stats_client_t *c) {
  if (!c) return;
  share(c->queue_messages, &c->messages_published, 0);
  share(c->queue_bytes, &c->bytes_published, 0);
  pthread_mutex_lock(&lock);
  if (c->prev)
    c->prev->next = c->next;
  else
    clients = c->next;
  if (c->next) c->next->prev = c->prev;
  if (clients)
    publish_locked();
  else
    last_up = SIZE_MAX;
  pthread_mutex_unlock(&lock);
  free(c->view);
  free(c->spare);
  free(c);
}

int sl_kafka_stats_ready(char *why, size_t len) {
  pthread_mutex_lock(&lock);
  size_t up, known, reported;
  union_locked(&up, &known, &reported);
  bool joined = clients != NULL;
  pthread_mutex_unlock(&lock);
  if (!joined || !reported || up > 0) return 1;
  snprintf(why, len, "Kafka: no broker reachable (librdkafka statistics: 0 of %zu up)", known);
  return 0;
}
