/* A standalone Kafka broker for integration tests and benchmarks:
 * librdkafka's mock cluster (a real Kafka-protocol peer on loopback) in its
 * own process, so the agent can be killed and restarted while the broker
 * keeps its data.
 *
 *   mock_broker [-b BROKERS] [-t TOPIC:PARTITIONS]...
 *
 * Prints "bootstrap <host:port,...>" on stdout once listening, then reads
 * commands from stdin, one per line, answering "ok" to each:
 *   down        take every broker down (connections refused)
 *   up          bring them back
 *   topic T P   create topic T with P partitions
 *   rtt MS      delay every broker's responses by MS milliseconds (0: none)
 *   produce_error CODE N
 *               fail the next N Produce requests with Kafka error CODE
 *               (45 OUT_OF_ORDER_SEQUENCE_NUMBER on a partition that has
 *               taken a record is fatal to librdkafka 2.0's idempotent
 *               producer; 47 and 90 only fail the records)
 * Exits on SIGTERM/SIGINT or when stdin closes. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv) {
  int brokers = 1, opt;
  char *topics[64];
  int n_topics = 0;
  while ((opt = getopt(argc, argv, "b:t:")) != -1) {
    if (opt == 'b')
      brokers = atoi(optarg);
    else if (opt == 't' && n_topics < 64)
      topics[n_topics++] = optarg;
    else {
      fprintf(stderr, "usage: mock_broker [-b BROKERS] [-t TOPIC:PARTITIONS]...\n");
      return 64;
    }
  }
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) {
    fprintf(stderr, "mock_broker: %s\n", err);
    return 1;
  }
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mc) {
    fprintf(stderr, "mock_broker: cannot create the mock cluster\n");
    return 1;
  }
  for (int i = 0; i < n_topics; i++) {
    char *colon = strrchr(topics[i], ':');
    int parts = colon ? atoi(colon + 1) : 1;
    if (colon) *colon = 0;
    rd_kafka_mock_topic_create(mc, topics[i], parts > 0 ? parts : 1, brokers < 3 ? brokers : 3);
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(mc));
  fflush(stdout);

  char line[512];
  while (!stop && fgets(line, sizeof line, stdin)) {
    char t[256];
    int p, ms, code, n;
    if (strncmp(line, "down", 4) == 0) {
      for (int b = 1; b <= brokers; b++) rd_kafka_mock_broker_set_down(mc, b);
    } else if (strncmp(line, "up", 2) == 0) {
      for (int b = 1; b <= brokers; b++) rd_kafka_mock_broker_set_up(mc, b);
    } else if (sscanf(line, "rtt %d", &ms) == 1) {
      for (int b = 1; b <= brokers; b++) rd_kafka_mock_broker_set_rtt(mc, b, ms);
    } else if (sscanf(line, "produce_error %d %d", &code, &n) == 2 && n > 0 && n <= 64) {
      rd_kafka_resp_err_t errs[64];
      for (int i = 0; i < n; i++) errs[i] = (rd_kafka_resp_err_t)code;
      rd_kafka_mock_push_request_errors_array(mc, 0 /* Produce */, (size_t)n, errs);
    } else if (sscanf(line, "topic %255s %d", t, &p) == 2) {
      rd_kafka_mock_topic_create(mc, t, p, brokers < 3 ? brokers : 3);
    } else {
      printf("error unknown command\n");
      fflush(stdout);
      continue;
    }
    printf("ok\n");
    fflush(stdout);
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
