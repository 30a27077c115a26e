/* The producer ceiling: a bare librdkafka loop that produces what sluice
 * would produce for `sluice cat --generate N --size S TAG` (value = the JSON
 * record {"seq":i,"message":"x"*S}, timestamp = now, header fluent.tag =
 * TAG) with the same producer properties as agent/kafka_producer.c, and
 * times it from the first produce until the last delivery report.  The
 * bench compares sluice end to end against this number.  One thread (plus
 * librdkafka's own).
 *
 *   producer_ceiling -b BOOTSTRAP [-t TOPIC] [-n N] [-s SIZE] [-T TAG] [-H] [-X key=value]...
 *
 * -H leaves out the fluent.tag header (to see what the header costs); -X
 * overrides a librdkafka property.  The value is formatted by hand and the
 * timestamp read once per 1000 records, so the loop is as lean as a real
 * producer could be: it is the ceiling, not a model of sluice.
 *
 * Prints "records=N seconds=S rate=R/s value_bytes=B" on stdout; exit 0 only
 * when every record was delivered. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Keep in step with producer_defaults[] in agent/kafka_producer.c (and
 * client.id's default in agent/config_tables.c). */
static const struct {
  const char *key, *value;
} producer_defaults[] = {
    {"acks", "all"},
    {"enable.idempotence", "true"},
    {"compression.type", "lz4"},
    {"queue.buffering.max.messages", "100000"},
    {"queue.buffering.max.kbytes", "262144"},
    {"message.timeout.ms", "0"},
    {"linger.ms", "5"},
    {"client.id", "sluice"},
};

static long long delivered, failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  (void)opaque;
  if (m->err) {
    if (failed++ == 0) fprintf(stderr, "producer_ceiling: delivery failed: %s\n", rd_kafka_err2str(m->err));
  } else {
    delivered++;
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes the decimal digits of v at p; returns how many. */
static size_t put_u64(char *p, unsigned long long v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++) p[i] = tmp[n - 1 - i];
  return n;
}

static int usage(void) {
  fprintf(stderr, "usage: producer_ceiling -b BOOTSTRAP [-t TOPIC] [-n N] [-s SIZE] [-T TAG] [-H] [-X key=value]...\n");
  return 64;
}

int main(int argc, char **argv) {
  const char *bootstrap = NULL, *topic = "bench", *tag = "bench";
  long long n = 200000;
  size_t size = 73;
  int header = 1;
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  for (size_t i = 0; i < sizeof producer_defaults / sizeof producer_defaults[0]; i++)
    rd_kafka_conf_set(conf, producer_defaults[i].key, producer_defaults[i].value, err, sizeof err);
  int opt;
  while ((opt = getopt(argc, argv, "b:t:n:s:T:HX:")) != -1) {
    switch (opt) {
    case 'b': bootstrap = optarg; break;
    case 't': topic = optarg; break;
    case 'n': n = strtoll(optarg, NULL, 10); break;
    case 's': size = strtoull(optarg, NULL, 10); break;
    case 'T': tag = optarg; break;
    case 'H': header = 0; break;
    case 'X': {
      char *eq = strchr(optarg, '=');
      if (!eq) return usage();
      *eq = 0;
      if (rd_kafka_conf_set(conf, optarg, eq + 1, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "producer_ceiling: %s\n", err);
        return 64;
      }
      break;
    }
    default: return usage();
    }
  }
  if (!bootstrap || n <= 0) return usage();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) {
    fprintf(stderr, "producer_ceiling: %s\n", err);
    return 1;
  }

  /* Warm up like a running sluice is warm: connected, topic metadata known. */
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  const struct rd_kafka_metadata *md = NULL;
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fprintf(stderr, "producer_ceiling: no metadata for topic %s from %s\n", topic, bootstrap);
    return 1;
  }
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);

  char *filler = malloc(size);
  memset(filler, 'x', size);
  size_t cap = size + 64;
  char *value = malloc(cap);
  size_t tag_len = strlen(tag);
  size_t total_bytes = 0;

  static const char head[] = "{\"seq\":", mid[] = ",\"message\":\"";
  memcpy(value, head, sizeof head - 1);
  int64_t ts = 0;
  double t0 = now_s();
  for (long long i = 1; i <= n; i++) {
    /* The exact JSON sluice writes for cat's generated record. */
    size_t len = sizeof head - 1;
    len += put_u64(value + len, (unsigned long long)i);
    memcpy(value + len, mid, sizeof mid - 1);
    len += sizeof mid - 1;
    memcpy(value + len, filler, size);
    len += size;
    memcpy(value + len, "\"}", 2);
    len += 2;
    total_bytes += len;
    if (i % 1000 == 1) ts = now_ms();
    for (;;) {
      rd_kafka_resp_err_t e =
          header ? rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_VALUE(value, len), RD_KAFKA_V_TIMESTAMP(ts),
                                     RD_KAFKA_V_HEADER("fluent.tag", tag, (ssize_t)tag_len), RD_KAFKA_V_END)
                 : rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_VALUE(value, len), RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        fprintf(stderr, "producer_ceiling: produce: %s\n", rd_kafka_err2str(e));
        return 1;
      }
      rd_kafka_poll(rk, 10); /* queue full: serve reports, then retry */
    }
    if ((i & 1023) == 0) rd_kafka_poll(rk, 0);
  }
  while (delivered + failed < n) rd_kafka_poll(rk, 10);
  double secs = now_s() - t0;

  printf("records=%lld seconds=%.3f rate=%.0f/s value_bytes=%.1f\n", n, secs, (double)n / secs,
         (double)total_bytes / (double)n);
  fflush(stdout);
  free(value);
  free(filler);
  rd_kafka_flush(rk, 10000);
  rd_kafka_destroy(rk);
  return failed ? 1 : 0;
}
