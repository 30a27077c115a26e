/* The `kafka` sink plugin: each row one Kafka record, produced with the
 * agent's own producer through host->kafka_produce (idempotent, acks=all,
 * the [kafka] section's brokers and properties), so the plugin links no
 * Kafka client.  A write completes once Kafka has reported on every one of
 * its records.  Runs on the jobs loop; sees only the SDK header.
 *
 * Why the key is the row id, and fixed: a window the job computes again
 * (after a crash, a rebalance, or a replay under a new group_id) gives
 * each row the same id, so the replayed records carry the same keys.  On a
 * compacted topic one record per window and group key survives; a reader
 * of a plain topic can drop the repeats by key.  Retries (a record whose
 * delivery failed is produced again) are covered the same way.
 *
 * Why rows fail, and how: the topic is a template, rendered per row.  A
 * field it names that the row lacks, or that is null, a map or an array,
 * or a rendered name Kafka would refuse (a character outside [A-Za-z0-9._-],
 * more than 249 characters) can never work, so that row alone is FATAL.  A
 * record the producer could not queue (queue full) or that Kafka did not
 * take is RETRY; one the producer refused (too large, no [kafka] section)
 * is FATAL.  The other rows of the write go on.  `${job}` falls back to
 * the row's job when the row has no `job` field (a late record sent to a
 * late_sink carries only its own fields).
 *
 * destroy cannot take back records handed to the producer: it waits for
 * their delivery reports (the agent closes its producer only after the
 * sinks, so they come), completes those writes with their real outcome,
 * then releases the instance.  The host may call write or destroy from
 * inside write_done, so the instance is never freed while one of its own
 * reports is on the stack. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup under -std=c11 */
#endif

#include <sluice/sink.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plug_text.h"

#define TOPIC_MAX 249 /* Kafka's limit on a topic name */

enum { FORMAT_JSON, FORMAT_MSGPACK };

typedef struct {
  char *topic; /* owned by the host */
  int format;
} kafka_conf_t;

static const sluice_opt_t kafka_opts[] = {
    {.name = "topic",
     .type = SLUICE_OPT_STRING,
     .flags = SLUICE_OPT_REQUIRED,
     .offset = offsetof(kafka_conf_t, topic),
     .help = "Topic of each row's record. `${field}` is replaced by the row's field (`job`, "
             "a group key, an aggregate): \"results.${job}\", \"pv.${page}\". A row without "
             "the field, or with null, a map or an array there, fails for good (FATAL). "
             "`${job}` also names the job of a late record (late_sink)."},
    {.name = "format",
     .type = SLUICE_OPT_ENUM,
     .def = "\"json\"",
     .choices = "json|msgpack",
     .offset = offsetof(kafka_conf_t, format),
     .help = "Record value: the row as one JSON object, or as a msgpack map. The key is always "
             "the row id (16 hex digits): a replayed window gives the same keys, so a compacted "
             "topic keeps one record per window and group key."},
    {0},
};

typedef struct kwrite kwrite_t;

/* The arg of one record's delivery report. */
typedef struct {
  kwrite_t *kw;
  size_t i; /* the row's index in its write */
} delivery_t;

/* A write in progress.  Owned by the instance from write until it is
 * completed. */
struct kwrite {
  kwrite_t *next_ready; /* in the instance's ready queue */
  struct kafka_sink *s;
  sluice_write_t *w; /* the host's; gone after write_done */
  size_t pending;    /* records whose delivery report has not come */
  delivery_t rows[];
};

typedef struct kafka_sink {
  const sluice_host_t *host; /* borrowed until destroyed */
  sluice_ctx_t *ctx;         /* borrowed until destroyed */
  char *template;            /* owned: the topic option, for messages */
  pt_tmpl_t *topic;          /* owned: the template */
  char *fixed_topic; /* owned: the topic when the template names no field */
  int format;
  /* Writes that have nothing left to wait for and are completed from the
   * timer: write must never complete from inside its own call. */
  kwrite_t *ready_head, *ready_tail;
  sluice_timer_t *ready_timer;
  size_t open_writes; /* accepted and not yet completed */
  size_t in_flight;   /* records produced and not yet reported */
  bool closing;
  int reporting; /* write_done calls on the stack: the instance must stay */
  sluice_metric_t *m_in_flight;
} kafka_sink_t;

/* ---- the topic template ------------------------------------------------------- */

static bool topic_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

/* The first character Kafka refuses in a topic name, or NULL. */
static const char *bad_topic_char(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (!topic_char(s[i])) return s + i;
  return NULL;
}

/* Compiles `topic`; a `$` not followed by `{` is literal text (and then
 * refused as a topic character). */
static int parse_topic(kafka_sink_t *s, const char *topic, char *err, size_t errlen) {
  if (!*topic) return pt_fail(err, errlen, "topic is empty");
  if (pt_tmpl_compile(topic, "topic", &s->topic, err, errlen)) return -1;
  for (size_t i = 0; i < pt_tmpl_nparts(s->topic); i++) {
    const pt_part_t *part = pt_tmpl_part(s->topic, i);
    const char *bad = part->field ? NULL : bad_topic_char(part->text, part->len);
    if (bad)
      return pt_fail(err, errlen,
                     "topic \"%s\": '%c' cannot be in a Kafka topic name (letters, digits, "
                     "'.', '_' and '-')",
                     topic, *bad);
  }
  if (pt_tmpl_has_fields(s->topic)) return 0;
  if (strlen(topic) > TOPIC_MAX || !strcmp(topic, ".") || !strcmp(topic, ".."))
    return pt_fail(err, errlen, "topic \"%s\" is not a valid Kafka topic name", topic);
  if (!(s->fixed_topic = strdup(topic))) return pt_fail(err, errlen, "out of memory");
  return 0;
}

/* The row's topic (in out, TOPIC_MAX + 1 bytes, or the fixed topic), or
 * NULL with the reason in why. */
static const char *render_topic(const kafka_sink_t *s, const sluice_row_t *row, char *out,
                                char *why, size_t whylen) {
  if (s->fixed_topic) return s->fixed_topic;
  pt_buf_t b = {0};
  const char *topic = NULL;
  for (size_t i = 0; i < pt_tmpl_nparts(s->topic); i++) {
    const pt_part_t *part = pt_tmpl_part(s->topic, i);
    size_t at = b.len;
    if (!part->field) {
      if (pt_buf_append(&b, part->text, part->len)) {
        snprintf(why, whylen, "out of memory");
        goto done;
      }
      continue;
    }
    if (pt_field_text(s->topic, part->text, s->host, row, &b, why, whylen)) goto done;
    const char *bad = bad_topic_char(b.p + at, b.len - at);
    if (bad) {
      snprintf(why, whylen, "topic \"%s\": field \"%s\" is \"%.*s\": '%c' cannot be in a Kafka topic name",
               s->template, part->text, b.len - at > 64 ? 64 : (int)(b.len - at), b.p + at, *bad);
      goto done;
    }
  }
  if (b.len > TOPIC_MAX) {
    snprintf(why, whylen, "topic \"%s\": the topic name would be longer than %d characters", s->template,
             TOPIC_MAX);
    goto done;
  }
  if (b.len) memcpy(out, b.p, b.len);
  out[b.len] = '\0';
  if (!strcmp(out, ".") || !strcmp(out, "..") || b.len == 0) {
    snprintf(why, whylen, "topic \"%s\": \"%s\" is not a valid Kafka topic name", s->template, out);
    goto done;
  }
  topic = out;
done:
  pt_buf_free(&b);
  return topic;
}

/* ---- instances ------------------------------------------------------------------- */

static void free_sink(kafka_sink_t *s) {
  pt_tmpl_free(s->topic);
  free(s->fixed_topic);
  free(s->template);
  free(s);
}

static void on_ready_timer(void *arg);

static int kafka_create(const sluice_host_t *host, sluice_ctx_t *ctx, const void *conf_, void *loop,
                        void **self, char *err, size_t errlen) {
  const kafka_conf_t *conf = conf_;
  (void)loop;
  *self = NULL;
  if (host->abi_major != SLUICE_SINK_ABI_MAJOR)
    return pt_fail(err, errlen, "the agent's sink ABI is %u.%u, the kafka sink's %d.%d",
                   (unsigned)host->abi_major, (unsigned)host->abi_minor, SLUICE_SINK_ABI_MAJOR,
                   SLUICE_SINK_ABI_MINOR);
  kafka_sink_t *s = calloc(1, sizeof *s);
  if (!s) return pt_fail(err, errlen, "out of memory");
  s->host = host;
  s->ctx = ctx;
  s->format = conf->format;
  if (!(s->template = strdup(conf->topic))) {
    free_sink(s);
    return pt_fail(err, errlen, "out of memory");
  }
  if (parse_topic(s, conf->topic, err, errlen)) {
    free_sink(s);
    return -1;
  }
  if (!(s->ready_timer = host->timer_new(ctx, on_ready_timer, s))) {
    free_sink(s);
    return pt_fail(err, errlen, "out of memory");
  }
  /* Rows written and failed are the host's metrics already
   * (sluice_sink_rows_total, sluice_sink_errors_total). */
  s->m_in_flight = host->gauge(ctx, "sluice_sink_kafka_in_flight",
                               "Records of the kafka sink waiting for their delivery report.");
  *self = s;
  return 0;
}

/* The last step: the host may free ctx in destroyed, so nothing of the
 * instance is touched after it. */
static void release(kafka_sink_t *s) {
  const sluice_host_t *host = s->host;
  sluice_ctx_t *ctx = s->ctx;
  host->timer_free(s->ready_timer);
  free_sink(s);
  host->destroyed(ctx);
}

static void maybe_release(kafka_sink_t *s) {
  if (s->closing && !s->open_writes && !s->reporting) release(s);
}

/* Reports kw (rows with an outcome of their own keep it) and frees it; s
 * may be freed on return. */
static void complete(kwrite_t *kw) {
  kafka_sink_t *s = kw->s;
  s->open_writes--;
  s->reporting++;
  s->host->write_done(kw->w, SLUICE_OK, NULL);
  s->reporting--;
  free(kw);
  maybe_release(s);
}

static void on_ready_timer(void *arg) {
  kafka_sink_t *s = arg;
  s->reporting++; /* held while the queue is drained */
  while (s->ready_head) {
    kwrite_t *kw = s->ready_head;
    s->ready_head = kw->next_ready;
    if (!s->ready_head) s->ready_tail = NULL;
    complete(kw);
  }
  s->reporting--;
  maybe_release(s);
}

static void defer_complete(kafka_sink_t *s, kwrite_t *kw) {
  if (s->ready_tail)
    s->ready_tail->next_ready = kw;
  else
    s->ready_head = kw;
  s->ready_tail = kw;
  s->host->timer_start(s->ready_timer, 0);
}

static void on_delivered(void *arg, sluice_status_t status, const char *message) {
  delivery_t *d = arg;
  kwrite_t *kw = d->kw;
  kafka_sink_t *s = kw->s;
  s->in_flight--;
  s->host->metric_set(s->m_in_flight, (double)s->in_flight);
  if (status != SLUICE_OK) {
    char why[512];
    snprintf(why, sizeof why, "kafka: record not delivered: %s",
             message ? message : "no reason given");
    /* The producer gave up on it (RETRY): producing it again may work. */
    s->host->row_done(kw->w, d->i,
                      status == SLUICE_FATAL || status == SLUICE_CANCELED ? status : SLUICE_RETRY,
                      why);
  }
  if (--kw->pending == 0) complete(kw);
}

/* Produces row i of kw, or gives the row its outcome when it cannot be. */
static void produce_row(kafka_sink_t *s, kwrite_t *kw, const sluice_row_t *row, size_t i) {
  const sluice_host_t *h = s->host;
  char topic_buf[TOPIC_MAX + 1], why[512], msg[600];
  const char *topic = render_topic(s, row, topic_buf, why, sizeof why);
  if (!topic) {
    snprintf(msg, sizeof msg, "kafka: %s", why);
    h->row_done(kw->w, i, SLUICE_FATAL, msg);
    return;
  }
  size_t len = 0;
  const void *value = s->format == FORMAT_MSGPACK ? h->row_msgpack(row, &len)
                                                  : (const void *)h->row_json(row, &len);
  if (!value) {
    /* The host could not encode the row (out of memory). */
    h->row_done(kw->w, i, SLUICE_RETRY, "kafka: the row could not be encoded");
    return;
  }
  const char *job = h->row_job(row);
  const char *names[] = {"sluice.job"};
  const char *values[] = {job ? job : ""};
  kw->rows[i] = (delivery_t){.kw = kw, .i = i};
  int r = h->kafka_produce(s->ctx, topic, h->row_id_hex(row), 16, value, len, names, values, 1,
                           on_delivered, &kw->rows[i]);
  if (r == 0) {
    kw->pending++;
    s->in_flight++;
    return;
  }
  if (r == SLUICE_RETRY) {
    h->row_done(kw->w, i, SLUICE_RETRY, "kafka: the producer's queue is full");
    return;
  }
  snprintf(msg, sizeof msg,
           "kafka: the producer refused the record for topic %s (too large for the broker's "
           "message.max.bytes, or no [kafka] section)",
           topic);
  h->row_done(kw->w, i, SLUICE_FATAL, msg);
}

static int kafka_write(void *self, sluice_write_t *w, const sluice_row_t *const *rows, size_t n) {
  kafka_sink_t *s = self;
  if (s->closing) return -1;
  kwrite_t *kw = calloc(1, sizeof *kw + n * sizeof kw->rows[0]);
  if (!kw) return -1;
  kw->s = s;
  kw->w = w;
  kw->pending = 1; /* held while the rows are produced */
  s->open_writes++;
  for (size_t i = 0; i < n; i++) produce_row(s, kw, rows[i], i);
  s->host->metric_set(s->m_in_flight, (double)s->in_flight);
  /* A write none of whose records went out (all refused, or no rows) has
   * no report to wait for; it is completed from the loop, never from
   * inside write. */
  if (--kw->pending == 0) defer_complete(s, kw);
  return 0;
}

static void kafka_destroy(void *self) {
  kafka_sink_t *s = self;
  s->closing = true;
  if (s->open_writes)
    s->host->log(s->ctx, SLUICE_LOG_INFO,
                 "closing: waiting for %zu records' delivery reports (%zu writes)", s->in_flight,
                 s->open_writes);
  /* Called from inside write_done, or with writes open: the completion
   * that brings open_writes to 0 releases the instance. */
  maybe_release(s);
}

__attribute__((visibility("default"))) const sluice_sink_plugin_t sluice_sink_plugin = {
    SLUICE_SINK_PLUGIN_HEADER,
    .name = "kafka",
    .version = "1.0.0",
    .description = "Rows as Kafka records (key: the row id) through the agent's producer.",
    .options = kafka_opts,
    .conf_size = sizeof(kafka_conf_t),
    .create = kafka_create,
    .write = kafka_write,
    /* No flush: a write completes only once Kafka has its records, so
     * nothing is held back to flush. */
    .flush = NULL,
    .destroy = kafka_destroy,
};
