/* The producer ceiling: a bare librdkafka loop that produces what sluice
 * would produce for `sluice cat --generate N --shape SHAPE TAG`, with the
 * same producer properties as agent/kafka_producer.c, and times it from the
 * first produce until the last delivery report.  The bench compares sluice
 * end to end against this number.  One thread (plus librdkafka's own).
 *
 *   producer_ceiling -b BOOTSTRAP [-t TOPIC] [-n N] [-S seq|access] [-s SIZE] [-T TAG] [-H]
 *                    [-X key=value]...
 *
 * Values are the JSON sluice writes for cat's generated records 1..N:
 *   seq     {"seq":i,"message":"x"*SIZE} (a route without tag_key)
 *   access  {"id":…,"service":…,"status":…,"latency_ms":…,"message":…,"tag":TAG}, cat's
 *           access-log records (built by a copy of cat's generator) with the tag added
 *           last, as a route with tag_key = "tag" adds it
 * Timestamp = now, header fluent.tag = TAG.  -H leaves out the header (to
 * see what it costs); -X overrides a librdkafka property.  Values are
 * formatted by hand (access: from a pre-built pool, only the id changes) and
 * the timestamp is read once per 1000 records, so the loop is as lean as a
 * real producer could be: it is the ceiling, not a model of sluice.
 *
 * Prints "records=N seconds=S rate=R/s value_bytes=B cpu=C" on stdout (C:
 * CPU seconds of all its threads over those S seconds); exit 0 only when
 * every record was delivered. */
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/* CPU seconds of the whole process (all threads, librdkafka's included). */
static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
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

/* ---- the access shape -------------------------------------------------------
 * A copy of the generator in agent/cli/cat.c (keep in step; run.sh compares
 * both sides' bytes in Kafka before it measures): record i is
 * pool[i % ACCESS_POOL] with id hex(mix64(i)). */

#define ACCESS_POOL 4096 /* a power of two */

static const char *const access_services[] = {"checkout", "cart",     "catalog",  "search",
                                              "auth",     "payments", "shipping", "frontend"};
static const char *const access_methods[] = {"GET", "GET",  "GET",  "GET", "GET",
                                             "GET", "POST", "POST", "PUT", "DELETE"};
static const char *const access_resources[] = {"orders",   "users",    "products", "carts",
                                               "sessions", "invoices", "reviews",  "stock"};
static const char *const access_agents[] = {"curl/8.5.0", "okhttp/4.12.0", "Go-http-client/2.0",
                                            "python-requests/2.31", "Mozilla/5.0"};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
  const char *service;
  unsigned status;
  unsigned latency_us; /* latency_ms = latency_us / 1000.0: three decimals */
  char message[96];
  size_t message_len;
} access_rec_t;

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *state) { return mix64(*state += 0x9e3779b97f4a7c15u); }

static unsigned pick(uint64_t *state, unsigned n) { return (unsigned)(splitmix64(state) % n); }

static void access_rec_next(uint64_t *state, access_rec_t *r) {
  r->service = access_services[pick(state, COUNT(access_services))];
  unsigned s = pick(state, 100);
  r->status = s < 90 ? 200 : s < 97 ? 404 : 500;
  unsigned band = pick(state, 100);
  r->latency_us = band < 50   ? 100 + pick(state, 19900)
                  : band < 85 ? 20000 + pick(state, 180000)
                  : band < 97 ? 200000 + pick(state, 800000)
                              : 1000000 + pick(state, 1000001);
  const char *method = access_methods[pick(state, COUNT(access_methods))];
  const char *resource = access_resources[pick(state, COUNT(access_resources))];
  unsigned object = pick(state, 10000000);
  unsigned ip1 = pick(state, 256);
  unsigned ip2 = pick(state, 256);
  unsigned ip3 = 1 + pick(state, 254);
  const char *agent = access_agents[pick(state, COUNT(access_agents))];
  int n = snprintf(r->message, sizeof r->message, "%s /api/v1/%s/%u client=10.%u.%u.%u ua=%s",
                   method, resource, object, ip1, ip2, ip3, agent);
  r->message_len = (size_t)n;
}

static void put_hex16(char *p, uint64_t v) {
  static const char hex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; i--, v >>= 4) p[i] = hex[v & 15];
}

/* A double as agent/ingest/json_encode.c writes it (put_float): the
 * shortest of %.15g..%.17g that reads back, ".0" added to integers. */
static size_t put_double(char *p, double d) {
  if (!isfinite(d)) return (size_t)sprintf(p, "null");
  int n = 0;
  for (int prec = 15; prec <= 17; prec++) {
    n = sprintf(p, "%.*g", prec, d);
    if (strtod(p, NULL) == d) break;
  }
  if (!strpbrk(p, ".eE")) n += sprintf(p + n, ".0");
  return (size_t)n;
}

/* True when JSON would write s as is between quotes (no escapes). */
static int json_plain(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x80 || *s == '"' || *s == '\\') return 0;
  return 1;
}

typedef struct {
  char *json[ACCESS_POOL]; /* owned; the value sluice writes, id digits to fill in */
  size_t len[ACCESS_POOL];
} access_pool_t;

#define ACCESS_ID_AT 7 /* strlen("{\"id\":\"") */

/* Builds the pool of JSON values; 0 ok, -1 when TAG would need escaping (not
 * supported: the values are not escaped). */
static int access_pool_build(access_pool_t *p, const char *tag) {
  if (!json_plain(tag)) return -1;
  uint64_t state = 0x5eed;
  for (size_t j = 0; j < ACCESS_POOL; j++) {
    access_rec_t r;
    access_rec_next(&state, &r);
    char lat[40];
    put_double(lat, r.latency_us / 1000.0);
    /* cat's strings are plain ASCII, which the encoder copies verbatim. */
    size_t cap = 128 + r.message_len + strlen(tag);
    p->json[j] = malloc(cap);
    int n = snprintf(p->json[j], cap,
                     "{\"id\":\"0000000000000000\",\"service\":\"%s\",\"status\":%u,"
                     "\"latency_ms\":%s,\"message\":\"%s\",\"tag\":\"%s\"}",
                     r.service, r.status, lat, r.message, tag);
    p->len[j] = (size_t)n;
  }
  return 0;
}

static int usage(void) {
  fprintf(stderr,
          "usage: producer_ceiling -b BOOTSTRAP [-t TOPIC] [-n N] [-S seq|access] [-s SIZE] [-T TAG] [-H]\n"
          "                        [-X key=value]...\n");
  return 64;
}

int main(int argc, char **argv) {
  const char *bootstrap = NULL, *topic = "bench", *tag = "bench";
  long long n = 200000;
  size_t size = 73;
  int header = 1, access = 0;
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  for (size_t i = 0; i < sizeof producer_defaults / sizeof producer_defaults[0]; i++)
    rd_kafka_conf_set(conf, producer_defaults[i].key, producer_defaults[i].value, err, sizeof err);
  int opt;
  while ((opt = getopt(argc, argv, "b:t:n:S:s:T:HX:")) != -1) {
    switch (opt) {
    case 'b': bootstrap = optarg; break;
    case 't': topic = optarg; break;
    case 'n': n = strtoll(optarg, NULL, 10); break;
    case 'S':
      if (strcmp(optarg, "access") == 0) access = 1;
      else if (strcmp(optarg, "seq") == 0) access = 0;
      else return usage();
      break;
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

  static access_pool_t pool;
  if (access && access_pool_build(&pool, tag)) {
    fprintf(stderr, "producer_ceiling: -T %s: a tag that JSON escapes is not supported\n", tag);
    return 64;
  }
  char *filler = malloc(size);
  memset(filler, 'x', size);
  size_t cap = size + 64;
  char *value = malloc(cap);
  size_t tag_len = strlen(tag);
  size_t total_bytes = 0;

  static const char head[] = "{\"seq\":", mid[] = ",\"message\":\"";
  memcpy(value, head, sizeof head - 1);
  int64_t ts = 0;
  double t0 = now_s(), c0 = cpu_s();
  for (long long i = 1; i <= n; i++) {
    /* The exact JSON sluice writes for cat's generated record i. */
    const char *v = value;
    size_t len;
    if (access) {
      size_t j = (size_t)i & (ACCESS_POOL - 1);
      put_hex16(pool.json[j] + ACCESS_ID_AT, mix64((uint64_t)i));
      v = pool.json[j];
      len = pool.len[j];
    } else {
      len = sizeof head - 1;
      len += put_u64(value + len, (unsigned long long)i);
      memcpy(value + len, mid, sizeof mid - 1);
      len += sizeof mid - 1;
      memcpy(value + len, filler, size);
      len += size;
      memcpy(value + len, "\"}", 2);
      len += 2;
    }
    total_bytes += len;
    if (i % 1000 == 1) ts = now_ms();
    for (;;) {
      rd_kafka_resp_err_t e =
          header ? rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_VALUE((void *)v, len), RD_KAFKA_V_TIMESTAMP(ts),
                                     RD_KAFKA_V_HEADER("fluent.tag", tag, (ssize_t)tag_len), RD_KAFKA_V_END)
                 : rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_VALUE((void *)v, len), RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_END);
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
  double secs = now_s() - t0, cpu = cpu_s() - c0;

  printf("records=%lld seconds=%.3f rate=%.0f/s value_bytes=%.1f cpu=%.3f\n", n, secs, (double)n / secs,
         (double)total_bytes / (double)n, cpu);
  fflush(stdout);
  free(value);
  free(filler);
  for (size_t j = 0; access && j < ACCESS_POOL; j++) free(pool.json[j]);
  rd_kafka_flush(rk, 10000);
  rd_kafka_destroy(rk);
  return failed ? 1 : 0;
}
