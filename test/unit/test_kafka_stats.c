/* librdkafka statistics as sluice reads them (agent/kafka/kafka_stats.c):
 * brokers counted once per host:port, the internal one left out, the union
 * over clients in sluice_kafka_brokers_up and /readyz's answer, and the
 * producers' queues summed. */
#include <string.h>

#include "core/metrics.h"
#include "kafka/kafka_stats.h"
#include "tap.h"

/* What librdkafka 2.0 writes for a consumer: a bootstrap entry, the same
 * broker by node id, the group coordinator (a logical broker), and the
 * internal one; trimmed to the fields sluice reads. */
static const char consumer_up[] =
    "{\"name\":\"sluice#consumer-2\",\"type\":\"consumer\",\"msg_cnt\":0,\"msg_size\":0,\"brokers\":{"
    "\"127.0.0.1:9092/bootstrap\":{\"nodename\":\"127.0.0.1:9092\",\"nodeid\":-1,\"source\":\"configured\","
    "\"state\":\"UP\"},"
    "\"127.0.0.1:9092/1\":{\"nodename\":\"127.0.0.1:9092\",\"nodeid\":1,\"source\":\"learned\",\"state\":\"UP\"},"
    "\"127.0.0.1:9093/2\":{\"nodename\":\"127.0.0.1:9093\",\"nodeid\":2,\"source\":\"learned\",\"state\":\"INIT\"},"
    "\"GroupCoordinator\":{\"nodename\":\"127.0.0.1:9092\",\"nodeid\":1,\"source\":\"logical\",\"state\":\"UP\"},"
    "\":0/internal\":{\"nodename\":\"\",\"nodeid\":-1,\"source\":\"internal\",\"state\":\"UP\"}}}";

static const char producer_down[] =
    "{\"type\":\"producer\",\"msg_cnt\":120,\"msg_size\":6000,\"brokers\":{"
    "\"127.0.0.1:9092/1\":{\"nodename\":\"127.0.0.1:9092\",\"source\":\"learned\",\"state\":\"DOWN\"},"
    "\"127.0.0.1:9094/3\":{\"nodename\":\"127.0.0.1:9094\",\"source\":\"learned\",\"state\":\"CONNECT\"}}}";

static const char producer_up[] =
    "{\"type\":\"producer\",\"msg_cnt\":20,\"msg_size\":900,\"brokers\":{"
    "\"127.0.0.1:9094/3\":{\"nodename\":\"127.0.0.1:9094\",\"source\":\"learned\",\"state\":\"UP\"}}}";

static double gauge(sl_metrics_t *m, const char *name) {
  return sl_gauge_get(sl_metrics_gauge(m, name, "x"));
}

static void parsing(void) {
  static sl_kafka_stats_t s;
  is_int(sl_kafka_stats_parse(consumer_up, strlen(consumer_up), &s), 0, "a consumer's statistics are read");
  is_int(s.n_known, 2, "two brokers by host:port (bootstrap, node id and coordinator are one)");
  is_int(s.n_up, 1, "one of them UP");
  is_str(s.up[0], "127.0.0.1:9092", "the one UP");
  is_int(sl_kafka_stats_parse(producer_down, strlen(producer_down), &s), 0, "a producer's statistics are read");
  ok(s.n_up == 0 && s.n_known == 2 && s.msg_cnt == 120 && s.msg_size == 6000, "none UP; its queue");
  ok(sl_kafka_stats_parse("{\"brokers\":[]}", 14, &s) != 0, "brokers not an object: refused");
  ok(sl_kafka_stats_parse("not json", 8, &s) != 0 && s.n_known == 0, "not JSON: refused, nothing kept");
}

static void union_and_readiness(void) {
  sl_metrics_t *m = sl_metrics_new();
  char why[256] = "";
  ok(sl_kafka_stats_ready(why, sizeof why), "no client: ready (nothing needs Kafka)");

  sl_kafka_stats_client_t *cons = sl_kafka_stats_join(m, "consumer", false);
  sl_kafka_stats_client_t *prod = sl_kafka_stats_join(m, "producer", true);
  ok(sl_kafka_stats_ready(why, sizeof why),
     "joined, nothing reported yet: ready (the daemon's start waited for a metadata answer)");

  sl_kafka_stats_report(prod, producer_down, strlen(producer_down));
  ok(!sl_kafka_stats_ready(why, sizeof why), "the producer reaches no broker: not ready");
  is_str(why, "Kafka: no broker reachable (librdkafka statistics: 0 of 2 up)", "the reason names the count");
  ok(gauge(m, "sluice_kafka_brokers_up") == 0, "sluice_kafka_brokers_up 0");
  ok(gauge(m, "sluice_kafka_producer_queue_messages") == 120 && gauge(m, "sluice_kafka_producer_queue_bytes") == 6000,
     "the producer's queue in the gauges");

  sl_kafka_stats_report(cons, consumer_up, strlen(consumer_up));
  ok(sl_kafka_stats_ready(why, sizeof why), "the consumer reaches one: ready");
  ok(gauge(m, "sluice_kafka_brokers_up") == 1, "brokers up: 1");
  ok(gauge(m, "sluice_kafka_producer_queue_messages") == 120, "a consumer's statistics leave the queue gauges alone");

  sl_kafka_stats_report(prod, producer_up, strlen(producer_up));
  ok(gauge(m, "sluice_kafka_brokers_up") == 2, "the union over clients: 2 brokers up");
  ok(gauge(m, "sluice_kafka_producer_queue_messages") == 20 && gauge(m, "sluice_kafka_producer_queue_bytes") == 900,
     "the queue gauges follow the latest report");

  sl_kafka_stats_client_t *prod2 = sl_kafka_stats_join(m, "producer-2", true);
  sl_kafka_stats_report(prod2, producer_down, strlen(producer_down));
  ok(gauge(m, "sluice_kafka_producer_queue_messages") == 140, "two producers' queues add up");
  sl_kafka_stats_report(prod2, "garbage", 7);
  ok(gauge(m, "sluice_kafka_producer_queue_messages") == 140, "a document not understood changes nothing");
  sl_kafka_stats_leave(prod2);
  ok(gauge(m, "sluice_kafka_producer_queue_messages") == 20, "a producer that leaves takes its queue along");

  sl_kafka_stats_report(prod, producer_down, strlen(producer_down));
  sl_kafka_stats_leave(cons);
  ok(!sl_kafka_stats_ready(why, sizeof why) && gauge(m, "sluice_kafka_brokers_up") == 0,
     "the client that reached a broker leaves: not ready, 0 up");
  sl_kafka_stats_leave(prod);
  ok(sl_kafka_stats_ready(why, sizeof why), "every client gone: ready again");
  sl_kafka_stats_leave(NULL);
  sl_kafka_stats_report(NULL, producer_up, strlen(producer_up));
  ok(1, "leave and report accept NULL");
  sl_metrics_free(m);
}

int main(void) {
  parsing();
  union_and_readiness();
  return tap_done();
}
