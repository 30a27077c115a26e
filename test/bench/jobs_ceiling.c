/* The jobs benchmark's Kafka side (test/bench/jobs.sh), three tools in one
 * program, each on one thread (plus librdkafka's own):
 *
 *   jobs_ceiling produce -b BOOTSTRAP -t TOPIC < stream
 *       Produces the records of `jobs_engine -E` (value, key = the service,
 *       timestamp = the event time) with sluice's producer settings (acks
 *       all, idempotence, lz4, linger 5 ms; keep in step with
 *       agent/kafka/kafka_producer.c), then checks with the partitions'
 *       watermark offsets that the broker kept every record (the mock
 *       broker drops a partition's oldest batches past about 5 MB).
 *       Prints "produced=N partitions=P low_max=L stored=S seconds=T".
 *
 *   jobs_ceiling consume -b BOOTSTRAP -t TOPIC -n N [-g GROUP] [-X key=value]...
 *       The ceiling: a bare consumer-group loop (rd_kafka_consumer_poll,
 *       from the beginning, a fresh group) with sluice's consumer
 *       properties (agent/kafka/kafka_consumer.c), touching each record's
 *       value and timestamp, until it has read N records.
 *       Prints "records=N first=F seconds=S rate=R mid_rate=M cpu=C":
 *       F seconds from start to the first record (group join), S from the
 *       first record to the last, R = N / S, M the rate over the middle
 *       80 % (from the record 10 % of N through the one at 90 %), C CPU
 *       seconds of the whole process from the first record to the last.
 *
 *   jobs_ceiling watch -u HOST:PORT -m METRIC [-e END_METRIC] -n N [-i MS] [-T SECONDS]
 *       Polls http://HOST:PORT/metrics every MS (default 10) until the
 *       line "END_METRIC VALUE" (default METRIC) shows N, and times
 *       METRIC's climb from outside the process: its first non-zero value
 *       and the first showing N, and the times it crossed 10 % and 90 % of
 *       N, interpolated between the observations around them (when the
 *       first non-zero value is past 10 % already, the middle span starts
 *       there).  Each value is exact when observed, so the time resolution
 *       is how often the process updates METRIC (sluice: the consumer's
 *       sluice_kafka_consumed_total after every pass of at most 10,000
 *       records, handed to the job before it is counted; the job's own
 *       counters only every ~250 ms, from a timer that a backlog delays).
 *       Prints "records=N first=F seconds=S rate=R mid_rate=M updates=K":
 *       F seconds from the start of the watch to the first non-zero value,
 *       S from it to the first showing N,
 *       R = (N - first value) / S, M over the middle 80 %, K the number of
 *       changes seen. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int usage(void) {
  fprintf(stderr,
          "usage: jobs_ceiling produce -b BOOTSTRAP -t TOPIC < stream\n"
          "       jobs_ceiling consume -b BOOTSTRAP -t TOPIC -n N [-g GROUP] [-X key=value]...\n"
          "       jobs_ceiling watch -u HOST:PORT -m METRIC [-e END_METRIC] -n N [-i MS] [-T "
          "SECONDS]\n");
  return 64;
}

/* ---- produce ------------------------------------------------------------------ */

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
    if (failed++ == 0)
      fprintf(stderr, "jobs_ceiling: delivery failed: %s\n", rd_kafka_err2str(m->err));
  } else {
    delivered++;
  }
}

static int read_full(void *p, size_t n) {
  return fread(p, 1, n, stdin) == n ? 0 : -1;
}

static int produce(const char *bootstrap, const char *topic) {
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  for (size_t i = 0; i < sizeof producer_defaults / sizeof producer_defaults[0]; i++)
    rd_kafka_conf_set(conf, producer_defaults[i].key, producer_defaults[i].value, err, sizeof err);
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) {
    fprintf(stderr, "jobs_ceiling: %s\n", err);
    return 1;
  }
  char *value = malloc(65536), key[65536];
  long long n = 0;
  double t0 = now_s();
  for (;;) {
    uint32_t len;
    int64_t ts;
    uint16_t klen;
    if (fread(&len, 1, 4, stdin) != 4) break;
    if (len > 65536 || read_full(&ts, 8) || read_full(&klen, 2) || read_full(key, klen) ||
        read_full(value, len)) {
      fprintf(stderr, "jobs_ceiling: truncated input\n");
      return 1;
    }
    for (;;) {
      rd_kafka_resp_err_t e =
          rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE(value, len),
                            RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        fprintf(stderr, "jobs_ceiling: produce: %s\n", rd_kafka_err2str(e));
        return 1;
      }
      rd_kafka_poll(rk, 10);
    }
    if ((++n & 1023) == 0) rd_kafka_poll(rk, 0);
  }
  while (delivered + failed < n) rd_kafka_poll(rk, 10);
  double secs = now_s() - t0;
  if (failed) return 1;

  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) || md->topic_cnt != 1) {
    fprintf(stderr, "jobs_ceiling: no metadata for %s\n", topic);
    return 1;
  }
  int parts = md->topics[0].partition_cnt;
  long long stored = 0, low_max = 0;
  for (int p = 0; p < parts; p++) {
    int64_t lo, hi;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
        rk, topic, md->topics[0].partitions[p].id, &lo, &hi, 10000);
    if (e) {
      fprintf(stderr, "jobs_ceiling: watermarks of %s[%d]: %s\n", topic, p, rd_kafka_err2str(e));
      return 1;
    }
    stored += hi - lo;
    if (lo > low_max) low_max = lo;
  }
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  printf("produced=%lld partitions=%d low_max=%lld stored=%lld seconds=%.3f\n", n, parts, low_max,
         stored, secs);
  free(value);
  rd_kafka_destroy(rk);
  return low_max == 0 && stored == n ? 0 : 2;
}

/* ---- consume ------------------------------------------------------------------ */

static int consume(const char *bootstrap, const char *topic, long long n, const char *group,
                   char **props, int n_props) {
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  /* sluice's consumer: [kafka] client_id, consumer_defaults[], then the group. */
  static const char *const defaults[] = {"client.id",
                                         "sluice",
                                         "enable.auto.commit",
                                         "false",
                                         "enable.auto.offset.store",
                                         "false",
                                         "auto.offset.reset",
                                         "earliest"};
  for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i += 2)
    rd_kafka_conf_set(conf, defaults[i], defaults[i + 1], err, sizeof err);
  for (int i = 0; i < n_props; i++) {
    char *eq = strchr(props[i], '=');
    if (!eq) return usage();
    *eq = 0;
    if (rd_kafka_conf_set(conf, props[i], eq + 1, err, sizeof err) != RD_KAFKA_CONF_OK) {
      fprintf(stderr, "jobs_ceiling: %s\n", err);
      return 64;
    }
  }
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", group, err, sizeof err);
  double t_start = now_s();
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) {
    fprintf(stderr, "jobs_ceiling: %s\n", err);
    return 1;
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, subs);
  rd_kafka_topic_partition_list_destroy(subs);
  if (e) {
    fprintf(stderr, "jobs_ceiling: subscribe: %s\n", rd_kafka_err2str(e));
    return 1;
  }
  long long got = 0, lo = n / 10, hi = n - n / 10;
  uint64_t touch = 0;
  double t_first = 0, t_lo = 0, t_hi = 0, c_first = 0, deadline = t_start + 300;
  while (got < n) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
    if (!m) {
      if (now_s() > deadline) {
        fprintf(stderr, "jobs_ceiling: timed out with %lld of %lld records\n", got, n);
        return 1;
      }
      continue;
    }
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        fprintf(stderr, "jobs_ceiling: consume: %s\n", rd_kafka_message_errstr(m));
    } else {
      rd_kafka_timestamp_type_t tt;
      touch += (uint64_t)rd_kafka_message_timestamp(m, &tt) +
               (m->len ? ((const uint8_t *)m->payload)[0] : 0);
      if (++got == 1) {
        t_first = now_s();
        c_first = cpu_s();
      }
      if (got == lo) t_lo = now_s();
      if (got == hi) t_hi = now_s();
    }
    rd_kafka_message_destroy(m);
  }
  double t_end = now_s(), cpu = cpu_s() - c_first;
  double secs = t_end - t_first;
  printf("records=%lld first=%.3f seconds=%.3f rate=%.0f mid_rate=%.0f cpu=%.3f touch=%" PRIu64
         "\n",
         n, t_first - t_start, secs, (double)n / secs,
         t_hi > t_lo ? (double)(hi - lo) / (t_hi - t_lo) : 0.0, cpu, touch & 0xff);
  fflush(stdout);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return 0;
}

/* ---- watch -------------------------------------------------------------------- */

/* The value of a metric in /metrics text; -1 when not there. */
static double value_of(const char *text, const char *metric) {
  size_t ml = strlen(metric);
  for (const char *p = text; (p = strstr(p, metric)); p += ml)
    if ((p == text || p[-1] == '\n') && p[ml] == ' ') return strtod(p + ml + 1, NULL);
  return -1;
}

/* One /metrics answer: the values of metric and end (-1 when missing). */
static void scrape(const struct sockaddr_in *sa, const char *metric, const char *end, double *v,
                   double *e) {
  *v = *e = -1;
  static char buf[1 << 20];
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return;
  if (connect(fd, (const struct sockaddr *)sa, sizeof *sa)) {
    close(fd);
    return;
  }
  static const char req[] = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
    close(fd);
    return;
  }
  size_t len = 0;
  for (ssize_t r; len < sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) != 0;) {
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    len += (size_t)r;
  }
  close(fd);
  buf[len] = 0;
  *v = value_of(buf, metric);
  *e = value_of(buf, end);
}

static int watch(const char *hostport, const char *metric, const char *end, long long n,
                 int interval_ms, double timeout) {
  char host[256];
  const char *colon = strrchr(hostport, ':');
  if (!colon || (size_t)(colon - hostport) >= sizeof host) return usage();
  memcpy(host, hostport, (size_t)(colon - hostport));
  host[colon - hostport] = 0;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return usage();
  double t_start = now_s(), t_first = 0, c_first = 0, lo = (double)(n / 10),
         hi = (double)(n - n / 10);
  double t_lo = 0, t_hi = 0, lo_c = 0, prev_t = 0, prev_c = 0;
  int updates = 0;
  struct timespec pause = {.tv_sec = interval_ms / 1000,
                           .tv_nsec = (long)(interval_ms % 1000) * 1000000};
  for (;;) {
    double c, e;
    scrape(&sa, metric, end, &c, &e);
    double t = now_s();
    if (t - t_start > timeout) {
      fprintf(stderr, "jobs_ceiling: watch: timed out at %s %.0f, %s %.0f of %lld\n", metric, c,
              end, e, n);
      return 1;
    }
    if (c > prev_c && prev_c < (double)n) { /* an update, observed at t */
      updates++;
      if (!t_first) {
        t_first = t;
        c_first = c;
      }
      /* Crossing times, interpolated between the two updates around them;
       * when the first one is past 10 % already, the span starts there,
       * with its own count. */
      if (!t_lo && c >= lo) {
        t_lo = prev_t ? prev_t + (t - prev_t) * (lo - prev_c) / (c - prev_c) : t;
        lo_c = prev_t ? lo : c;
      }
      if (!t_hi && c >= hi && prev_t) t_hi = prev_t + (t - prev_t) * (hi - prev_c) / (c - prev_c);
      prev_t = t;
      prev_c = c;
    }
    if (c >= (double)n && e >= (double)n) break;
    nanosleep(&pause, NULL);
  }
  double secs = prev_t - t_first;
  printf("records=%lld first=%.3f seconds=%.3f rate=%.0f mid_rate=%.0f updates=%d\n", n,
         t_first - t_start, secs, secs > 0 ? ((double)n - c_first) / secs : 0.0,
         t_hi > t_lo ? (hi - lo_c) / (t_hi - t_lo) : 0.0, updates);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  const char *mode = argv[1], *bootstrap = NULL, *topic = NULL, *group = NULL, *url = NULL,
             *metric = NULL, *end = NULL;
  long long n = 0;
  int interval = 10;
  double timeout = 300;
  char *props[32];
  int n_props = 0, opt;
  optind = 2;
  while ((opt = getopt(argc, argv, "b:t:n:g:X:u:m:e:i:T:")) != -1) {
    switch (opt) {
      case 'b':
        bootstrap = optarg;
        break;
      case 't':
        topic = optarg;
        break;
      case 'n':
        n = strtoll(optarg, NULL, 10);
        break;
      case 'g':
        group = optarg;
        break;
      case 'X':
        if (n_props == 32) return usage();
        props[n_props++] = optarg;
        break;
      case 'u':
        url = optarg;
        break;
      case 'm':
        metric = optarg;
        break;
      case 'e':
        end = optarg;
        break;
      case 'i':
        interval = atoi(optarg);
        break;
      case 'T':
        timeout = atof(optarg);
        break;
      default:
        return usage();
    }
  }
  if (!strcmp(mode, "produce") && bootstrap && topic) return produce(bootstrap, topic);
  if (!strcmp(mode, "consume") && bootstrap && topic && n > 0) {
    char g[64];
    if (!group) {
      snprintf(g, sizeof g, "jobs-ceiling-%ld-%d", (long)time(NULL), (int)getpid());
      group = g;
    }
    return consume(bootstrap, topic, n, group, props, n_props);
  }
  if (!strcmp(mode, "watch") && url && metric && n > 0 && interval > 0)
    return watch(url, metric, end ? end : metric, n, interval, timeout);
  return usage();
}
