/* `sluice cat`: a forward-protocol client like fluent-cat.  Reads JSON lines
 * from stdin (or generates records for load tests) and sends them to a
 * forward server as Message or PackedForward (optionally gzip), doing the
 * shared-key handshake and waiting for acks when asked.  Blocking sockets on
 * the main thread: a command-line tool, not part of the daemon. */
#include "cli/cat.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <msgpack.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "cli/cat_tls.h"
#include "cli/cli_common.h"
#include "jobs/record_decode.h"
#include "core/buf.h"
#include "core/error.h"
#include "forward/forward_auth.h"
#include "forward/forward_decode.h"

static const char usage[] =
    "usage: sluice cat [options] TAG\n"
    "\n"
    "Sends JSON objects read from stdin, one per line, to a forward server under TAG.\n"
    "Each record gets the current time (EventTime, nanoseconds).\n"
    "\n"
    "  -H, --host HOST         server host (default 127.0.0.1)\n"
    "  -p, --port PORT         server port (default 24224)\n"
    "  -u, --unix PATH         connect to a unix socket instead\n"
    "  -m, --mode MODE         message | forward | packed (default message)\n"
    "  -z, --gzip              with packed: CompressedPackedForward\n"
    "  -b, --batch N           records per forward/packed message (default 1000)\n"
    "  -a, --ack               ask for an ack per message and wait for all of them\n"
    "  -k, --shared-key KEY    do the HELO/PING/PONG handshake with this key\n"
    "      --username USER     user for user authentication\n"
    "      --password PASS     password for user authentication\n"
    "      --self-hostname H   host name sent in PING (default: this host's)\n"
    "  -t, --timeout SECONDS   give up waiting for acks after this long (default 60)\n"
    "  -g, --generate N        send N generated records (see --shape) instead of stdin\n"
    "      --shape SHAPE       what --generate sends: seq (default), {\"seq\":i,\"message\":\"xx...\"}\n"
    "                          with --size x's; access, access-log records (id, service, status,\n"
    "                          latency_ms, message: ~155 bytes as JSON) from a fixed pool, unique ids\n"
    "      --first I           number of the first generated record (default 1), so that parallel\n"
    "                          generators can share out one sequence: record I is the same record\n"
    "                          whichever process sends it\n"
    "  -s, --size BYTES        seq: size of a generated record's message field (default 100)\n"
    "      --tls               connect with TLS; the server's certificate must be valid for HOST\n"
    "      --ca FILE           CA certificates (PEM) the server's must chain to (default: the system's)\n"
    "      --cert FILE         client certificate (PEM) for servers that ask for one\n"
    "      --key FILE          its private key (PEM)\n"
    "      --no-verify         accept any server certificate (trials only)\n"
    "  -h, --help              this help\n"
    "\n"
    "Exit codes: 0 everything sent (and acked with --ack), 1 failure, 64 usage error.\n";

typedef enum { MODE_MESSAGE, MODE_FORWARD, MODE_PACKED } mode_t_;
typedef enum { SHAPE_SEQ, SHAPE_ACCESS } shape_t;

typedef struct {
  const char *host, *port, *unix_path, *tag;
  mode_t_ mode;
  bool gzip, ack;
  size_t batch;
  const char *shared_key, *username, *password, *self_hostname;
  int timeout_s;
  long long generate;
  uint64_t first;
  shape_t shape;
  size_t size;
  bool tls;
  sl_cat_tls_opts_t tls_opts;
} cat_opts_t;

typedef struct {
  int fd;
  sl_cat_tls_t *tls; /* NULL: plain */
  sl_fwd_decoder_t *dec;
  size_t acks_wanted, acks_got;
  uint64_t chunk_seq;
  int timeout_ms;
} cat_conn_t;

static int die(const char *fmt, const char *arg) {
  fprintf(stderr, "sluice cat: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  return 1;
}

static int connect_to(const cat_opts_t *o) {
  if (o->unix_path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", o->unix_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
      if (fd >= 0) close(fd);
      return -1;
    }
    return fd;
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
  if (getaddrinfo(o->host, o->port, &hints, &res)) return -1;
  int fd = -1;
  for (ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    if (fd >= 0) close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

static int write_all(cat_conn_t *c, const char *p, size_t n) {
  if (c->tls) return sl_cat_tls_write(c->tls, p, n);
  int fd = c->fd;
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads until one frame is available or the timeout passes.  1 frame, 0
 * timeout/EOF, <0 error. */
static int read_frame(cat_conn_t *c, sl_fwd_frame_t *f, int timeout_ms) {
  for (;;) {
    int r = sl_fwd_decoder_next(c->dec, f);
    if (r) return r;
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    if (!c->tls || !sl_cat_tls_buffered(c->tls)) {
      r = poll(&pfd, 1, timeout_ms);
      if (r <= 0) return r < 0 && errno == EINTR ? 0 : r;
    }
    char buf[4096];
    ssize_t n = c->tls ? sl_cat_tls_read(c->tls, buf, sizeof buf) : read(c->fd, buf, sizeof buf);
    if (n == -1 && c->tls) continue; /* a record with no data: poll again */
    if (n <= 0) return 0;
    sl_fwd_decoder_feed(c->dec, buf, (size_t)n);
  }
}

static int handshake(cat_conn_t *c, const cat_opts_t *o) {
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  sl_fwd_auth_client_config_t cc = {o->self_hostname ? o->self_hostname : host, o->shared_key, o->username,
                                    o->password};
  sl_fwd_auth_client_t ac = {0};
  sl_fwd_frame_t f = {0};
  sl_buf_t b = {0};
  int r = 1;
  char reason[256] = "";
  if (read_frame(c, &f, c->timeout_ms) != 1) {
    die("no HELO from the server%s", "");
    goto out;
  }
  if (sl_fwd_auth_client_parse_helo(&ac, &f.root)) {
    die("the server's HELO is malformed%s", "");
    goto out;
  }
  sl_fwd_frame_free(&f);
  if (sl_fwd_auth_client_build_ping(&b, &ac, &cc) || write_all(c, b.data, b.len)) {
    die("cannot send PING (does the server want --username/--password?)%s", "");
    goto out;
  }
  if (read_frame(c, &f, c->timeout_ms) != 1) {
    die("no PONG from the server%s", "");
    goto out;
  }
  if (sl_fwd_auth_client_check_pong(&ac, &cc, &f.root, reason, sizeof reason)) {
    die("handshake failed: %s", reason);
    goto out;
  }
  r = 0;
out:
  sl_fwd_frame_free(&f);
  sl_buf_free(&b);
  sl_fwd_auth_client_free(&ac);
  return r;
}

static void pack_event_time(msgpack_packer *pk) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  unsigned char b[8];
  uint32_t s = (uint32_t)ts.tv_sec, n = (uint32_t)ts.tv_nsec;
  for (int i = 0; i < 4; i++) {
    b[i] = (unsigned char)(s >> (24 - 8 * i));
    b[4 + i] = (unsigned char)(n >> (24 - 8 * i));
  }
  msgpack_pack_ext(pk, 8, 0);
  msgpack_pack_ext_body(pk, b, 8);
}

static int gzip_buf(const sl_buf_t *in, sl_buf_t *out) {
  z_stream z = {0};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return -1;
  sl_buf_reserve(out, deflateBound(&z, in->len));
  z.next_in = (Bytef *)in->data;
  z.avail_in = (uInt)in->len;
  z.next_out = (Bytef *)out->data;
  z.avail_out = (uInt)out->cap;
  int r = deflate(&z, Z_FINISH);
  out->len = z.total_out;
  deflateEnd(&z);
  return r == Z_STREAM_END ? 0 : -1;
}

/* Packs the option map; returns nothing.  The chunk id is unique per
 * message on this connection. */
static void pack_options(msgpack_packer *pk, cat_conn_t *c, const cat_opts_t *o, size_t n_entries) {
  int n = 1 + (o->ack ? 1 : 0) + (o->gzip && o->mode == MODE_PACKED ? 1 : 0);
  msgpack_pack_map(pk, (size_t)n);
  msgpack_pack_str_with_body(pk, "size", 4);
  msgpack_pack_uint64(pk, n_entries);
  if (o->ack) {
    char id[48];
    int l = snprintf(id, sizeof id, "sluice-cat-%d-%llu", (int)getpid(), (unsigned long long)c->chunk_seq++);
    msgpack_pack_str_with_body(pk, "chunk", 5);
    msgpack_pack_str_with_body(pk, id, (size_t)l);
    c->acks_wanted++;
  }
  if (o->gzip && o->mode == MODE_PACKED) {
    msgpack_pack_str_with_body(pk, "compressed", 10);
    msgpack_pack_str_with_body(pk, "gzip", 4);
  }
}

/* Collects acks that have arrived; blocks until all are in when wait_all. */
static int collect_acks(cat_conn_t *c, bool wait_all) {
  while (c->acks_got < c->acks_wanted) {
    sl_fwd_frame_t f = {0};
    int r = read_frame(c, &f, wait_all ? c->timeout_ms : 0);
    if (r <= 0) return wait_all ? -1 : 0;
    if (f.root.type == MSGPACK_OBJECT_MAP) c->acks_got++;
    sl_fwd_frame_free(&f);
  }
  return 0;
}

/* Sends records[0..n) (msgpack maps in `recs`, offsets in `offs`). */
static int send_batch(cat_conn_t *c, const cat_opts_t *o, const sl_buf_t *recs, const size_t *offs, size_t n) {
  sl_buf_t msg = {0}, entries = {0}, gz = {0};
  msgpack_packer pk, pe;
  msgpack_packer_init(&pk, &msg, sl_buf_msgpack_write);
  int r = 0;
  if (o->mode == MODE_MESSAGE) {
    for (size_t i = 0; i < n && !r; i++) {
      sl_buf_reset(&msg);
      msgpack_pack_array(&pk, 4);
      msgpack_pack_str_with_body(&pk, o->tag, strlen(o->tag));
      pack_event_time(&pk);
      sl_buf_append(&msg, recs->data + offs[i], offs[i + 1] - offs[i]);
      pack_options(&pk, c, o, 1);
      r = write_all(c, msg.data, msg.len);
    }
  } else {
    msgpack_packer_init(&pe, &entries, sl_buf_msgpack_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_str_with_body(&pk, o->tag, strlen(o->tag));
    if (o->mode == MODE_FORWARD) msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
      msgpack_packer *dst = o->mode == MODE_FORWARD ? &pk : &pe;
      msgpack_pack_array(dst, 2);
      pack_event_time(dst);
      sl_buf_append(o->mode == MODE_FORWARD ? &msg : &entries, recs->data + offs[i], offs[i + 1] - offs[i]);
    }
    if (o->mode == MODE_PACKED) {
      const sl_buf_t *payload = &entries;
      if (o->gzip) {
        if (gzip_buf(&entries, &gz)) r = -1;
        payload = &gz;
      }
      msgpack_pack_bin(&pk, payload->len);
      msgpack_pack_bin_body(&pk, payload->data, payload->len);
    }
    pack_options(&pk, c, o, n);
    if (!r) r = write_all(c, msg.data, msg.len);
  }
  sl_buf_free(&msg);
  sl_buf_free(&entries);
  sl_buf_free(&gz);
  if (!r && o->ack) r = collect_acks(c, false);
  return r;
}

/* ---- generated records ------------------------------------------------------
 * The access shape looks like a web service's access log.  The bench runs
 * cat beside the agent on two cores, so generating must cost next to
 * nothing: a pool of packed records is built once, and record i is a copy
 * of pool[i % ACCESS_POOL] with a fresh id, hex(mix64(i)) (mix64 is a
 * bijection, so ids never repeat).  Fixed seed, no libm: the same i is the
 * same record in every process, and test/bench/producer_ceiling.c builds
 * the same records from a copy of this code (keep the two in step; the
 * bench compares their bytes in Kafka). */

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

/* The next record of the pool's sequence: status 90% 200, 7% 404, 3% 500;
 * latency from 0.1 ms to 2 s, half of it under 20 ms, 3% over 1 s. */
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

typedef struct {
  sl_buf_t recs;                /* ACCESS_POOL packed maps, back to back */
  size_t offs[ACCESS_POOL + 1]; /* record j is recs.data[offs[j] .. offs[j + 1]) */
  size_t id_at;                 /* where the 16 id digits start in every record */
} access_pool_t;

static void access_pool_build(access_pool_t *p) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, &p->recs, sl_buf_msgpack_write);
  uint64_t state = 0x5eed;
  for (size_t j = 0; j < ACCESS_POOL; j++) {
    access_rec_t r;
    access_rec_next(&state, &r);
    p->offs[j] = p->recs.len;
    msgpack_pack_map(&pk, 5);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_str(&pk, 16);
    p->id_at = p->recs.len - p->offs[j];
    msgpack_pack_str_body(&pk, "0000000000000000", 16);
    msgpack_pack_str_with_body(&pk, "service", 7);
    msgpack_pack_str_with_body(&pk, r.service, strlen(r.service));
    msgpack_pack_str_with_body(&pk, "status", 6);
    msgpack_pack_int64(&pk, r.status);
    msgpack_pack_str_with_body(&pk, "latency_ms", 10);
    msgpack_pack_double(&pk, r.latency_us / 1000.0);
    msgpack_pack_str_with_body(&pk, "message", 7);
    msgpack_pack_str_with_body(&pk, r.message, r.message_len);
  }
  p->offs[ACCESS_POOL] = p->recs.len;
}

/* Appends generated record i to `recs`. */
static void generate(const cat_opts_t *o, const access_pool_t *pool, const char *filler, uint64_t i,
                     sl_buf_t *recs) {
  if (o->shape == SHAPE_ACCESS) {
    size_t j = i & (ACCESS_POOL - 1), at = recs->len;
    sl_buf_append(recs, pool->recs.data + pool->offs[j], pool->offs[j + 1] - pool->offs[j]);
    put_hex16(recs->data + at + pool->id_at, mix64(i));
    return;
  }
  msgpack_packer pk;
  msgpack_packer_init(&pk, recs, sl_buf_msgpack_write);
  msgpack_pack_map(&pk, 2);
  msgpack_pack_str_with_body(&pk, "seq", 3);
  msgpack_pack_int64(&pk, (int64_t)i);
  msgpack_pack_str_with_body(&pk, "message", 7);
  msgpack_pack_str_with_body(&pk, filler, o->size);
}

static int parse_opts(int argc, char **argv, cat_opts_t *o) {
  static const struct option longopts[] = {
      {"host", required_argument, NULL, 'H'},       {"port", required_argument, NULL, 'p'},
      {"unix", required_argument, NULL, 'u'},       {"mode", required_argument, NULL, 'm'},
      {"gzip", no_argument, NULL, 'z'},             {"batch", required_argument, NULL, 'b'},
      {"ack", no_argument, NULL, 'a'},              {"shared-key", required_argument, NULL, 'k'},
      {"username", required_argument, NULL, 1},     {"password", required_argument, NULL, 2},
      {"self-hostname", required_argument, NULL, 3}, {"timeout", required_argument, NULL, 't'},
      {"generate", required_argument, NULL, 'g'},   {"size", required_argument, NULL, 's'},
      {"shape", required_argument, NULL, 4},        {"first", required_argument, NULL, 5},
      {"tls", no_argument, NULL, 6},                {"ca", required_argument, NULL, 7},
      {"cert", required_argument, NULL, 8},         {"key", required_argument, NULL, 9},
      {"no-verify", no_argument, NULL, 10},         {"help", no_argument, NULL, 'h'},
      {0},
  };
  *o = (cat_opts_t){
      .host = "127.0.0.1", .port = "24224", .batch = 1000, .timeout_s = 60, .first = 1, .size = 100,
      .tls_opts = {.verify = true}};
  int ch;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "H:p:u:m:zb:ak:t:g:s:h", longopts, NULL)) != -1) {
    switch (ch) {
    case 'H': o->host = optarg; break;
    case 'p': o->port = optarg; break;
    case 'u': o->unix_path = optarg; break;
    case 'm':
      if (strcmp(optarg, "message") == 0) o->mode = MODE_MESSAGE;
      else if (strcmp(optarg, "forward") == 0) o->mode = MODE_FORWARD;
      else if (strcmp(optarg, "packed") == 0) o->mode = MODE_PACKED;
      else return 64;
      break;
    case 'z': o->gzip = true; break;
    case 'b': o->batch = strtoull(optarg, NULL, 10); break;
    case 'a': o->ack = true; break;
    case 'k': o->shared_key = optarg; break;
    case 1: o->username = optarg; break;
    case 2: o->password = optarg; break;
    case 3: o->self_hostname = optarg; break;
    case 't': o->timeout_s = atoi(optarg); break;
    case 'g': o->generate = strtoll(optarg, NULL, 10); break;
    case 's': o->size = strtoull(optarg, NULL, 10); break;
    case 4:
      if (strcmp(optarg, "seq") == 0) o->shape = SHAPE_SEQ;
      else if (strcmp(optarg, "access") == 0) o->shape = SHAPE_ACCESS;
      else return 64;
      break;
    case 5: o->first = strtoull(optarg, NULL, 10); break;
    case 6: o->tls = true; break;
    case 7: o->tls_opts.ca_file = optarg; break;
    case 8: o->tls_opts.cert_file = optarg; break;
    case 9: o->tls_opts.key_file = optarg; break;
    case 10: o->tls_opts.verify = false; break;
    case 'h': fputs(usage, stdout); exit(0);
    default: return 64;
    }
  }
  if (optind != argc - 1 || !o->batch || o->timeout_s <= 0) return 64;
  /* A certificate is no use without TLS: asking for one turns it on. */
  const sl_cat_tls_opts_t *t = &o->tls_opts;
  o->tls = o->tls || t->ca_file || t->cert_file || t->key_file || !t->verify;
  if (o->tls && (o->unix_path || !t->cert_file != !t->key_file)) return 64;
  o->tls_opts.host = o->host;
  o->tag = argv[optind];
  return 0;
}

int sl_cat_main(int argc, char **argv) {
  cat_opts_t o;
  if (parse_opts(argc, argv, &o)) {
    fputs(usage, stderr);
    return 64;
  }
  sl_fwd_limits_t lim = {.chunk_size_limit = 1 << 20, .decompression_size_limit = 1 << 20, .max_depth = 8,
                         .skip_invalid_event = true};
  cat_conn_t c = {.fd = connect_to(&o), .dec = sl_fwd_decoder_new(&lim), .timeout_ms = o.timeout_s * 1000};
  if (c.fd < 0) {
    sl_fwd_decoder_free(c.dec);
    return die("cannot connect: %s", strerror(errno));
  }
  int rc = 1;
  char err[512];
  if (o.tls && sl_cat_tls_connect(c.fd, &o.tls_opts, &c.tls, err, sizeof err)) {
    die("%s", err);
    goto out;
  }
  if (o.shared_key && handshake(&c, &o)) goto out;

  sl_buf_t recs = {0};
  size_t *offs = malloc((o.batch + 1) * sizeof *offs), n = 0;
  msgpack_packer pk;
  msgpack_packer_init(&pk, &recs, sl_buf_msgpack_write);
  char *line = NULL, *filler = NULL;
  access_pool_t *pool = NULL;
  size_t cap = 0;
  long long lineno = 0, sent = 0;
  if (o.generate && o.shape == SHAPE_SEQ) {
    filler = malloc(o.size + 1);
    memset(filler, 'x', o.size);
    filler[o.size] = 0;
  }
  if (o.generate && o.shape == SHAPE_ACCESS) {
    pool = calloc(1, sizeof *pool);
    access_pool_build(pool);
  }
  offs[0] = 0;
  for (;;) {
    if (o.generate) {
      if (lineno >= o.generate) break;
      generate(&o, pool, filler, o.first + (uint64_t)lineno, &recs);
      lineno++;
    } else {
      ssize_t l = getline(&line, &cap, stdin);
      if (l < 0) break;
      lineno++;
      json_error_t jerr;
      json_t *j = json_loadb(line, (size_t)l, JSON_DECODE_ANY, &jerr);
      if (!j || !json_is_object(j)) {
        fprintf(stderr, "sluice cat: stdin line %lld: not a JSON object%s%s\n", lineno, j ? "" : ": ",
                j ? "" : jerr.text);
        json_decref(j);
        continue;
      }
      sl_json_pack(&pk, j);
      json_decref(j);
    }
    offs[++n] = recs.len;
    if (n == o.batch) {
      if (send_batch(&c, &o, &recs, offs, n)) goto send_failed;
      sent += (long long)n;
      n = 0;
      sl_buf_reset(&recs);
    }
  }
  if (n && send_batch(&c, &o, &recs, offs, n)) goto send_failed;
  sent += (long long)n;
  if (o.ack && collect_acks(&c, true)) {
    fprintf(stderr, "sluice cat: %zu of %zu acks received before the timeout%s%s\n", c.acks_got, c.acks_wanted,
            sl_cat_tls_error(c.tls) ? ": TLS: " : "", sl_cat_tls_error(c.tls) ? sl_cat_tls_error(c.tls) : "");
    goto free_all;
  }
  fprintf(stderr, "sluice cat: sent %lld records%s\n", sent, o.ack ? ", all acked" : "");
  rc = 0;
  goto free_all;
send_failed:
  fprintf(stderr, "sluice cat: the connection failed after %lld records%s%s\n", sent,
          sl_cat_tls_error(c.tls) ? ": TLS: " : "", sl_cat_tls_error(c.tls) ? sl_cat_tls_error(c.tls) : "");
free_all:
  free(line);
  free(filler);
  if (pool) sl_buf_free(&pool->recs);
  free(pool);
  free(offs);
  sl_buf_free(&recs);
out:
  sl_cat_tls_free(c.tls);
  close(c.fd);
  sl_fwd_decoder_free(c.dec);
  return rc;
}
