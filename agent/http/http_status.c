/* /api/v1/status from the metrics text (http_status.h): the text is read
 * into samples (name, labels, value) over a private copy, cut and
 * unescaped in place, then each section of the document picks its figures
 * by metric name and labels through a table.  Pure. */
#include "http/http_status.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define MAX_LABELS 8

typedef struct {
  const char *name;
  size_t n_labels;
  const char *key[MAX_LABELS], *val[MAX_LABELS];
  double value;
} sample_t;

typedef struct {
  char *text; /* owned: the copy the samples point into */
  sample_t *s;
  size_t n, cap;
} samples_t;

/* ---- reading the text ---------------------------------------------------------- */

static bool name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

/* A name at *p, NUL-terminated in place by the caller; NULL when none. */
static char *scan_name(char **p) {
  char *start = *p;
  if (!name_char(*start, true)) return NULL;
  while (name_char(**p, false)) (*p)++;
  return start;
}

/* A quoted label value at *p (after the opening quote): unescaped in place
 * (\\, \" and \n), NUL-terminated; NULL when it does not end on the line. */
static char *scan_value(char **p) {
  char *r = *p, *w = *p, *start = *p;
  for (; *r && *r != '\n'; r++) {
    if (*r == '"') {
      *w = 0;
      *p = r + 1;
      return start;
    }
    if (*r == '\\' && (r[1] == '\\' || r[1] == '"' || r[1] == 'n')) {
      r++;
      *w++ = *r == 'n' ? '\n' : *r;
    } else {
      *w++ = *r;
    }
  }
  return NULL;
}

/* {k="v",...} at *p; false when malformed or with too many labels. */
static bool scan_labels(char **p, sample_t *s) {
  (*p)++; /* '{' */
  while (**p != '}') {
    if (s->n_labels == MAX_LABELS) return false;
    char *k = scan_name(p);
    if (!k || **p != '=' || (*p)[1] != '"') return false;
    **p = 0;
    *p += 2;
    char *v = scan_value(p);
    if (!v) return false;
    s->key[s->n_labels] = k;
    s->val[s->n_labels++] = v;
    if (**p == ',') (*p)++;
    else if (**p != '}') return false;
  }
  (*p)++;
  return true;
}

/* One sample line (NUL-terminated); false when it is not one. */
static bool scan_line(char *line, sample_t *s) {
  char *p = line;
  memset(s, 0, sizeof *s);
  char *name = scan_name(&p);
  if (!name) return false;
  char *name_end = p;
  if (*p == '{' && !scan_labels(&p, s)) return false;
  if (*p++ != ' ') return false;
  *name_end = 0; /* after the labels were read: it may be their '{' */
  s->name = name;
  while (*p == ' ') p++;
  char *end;
  s->value = strtod(p, &end);
  return end != p;
}

static int samples_read(samples_t *ss, const char *text, size_t len) {
  memset(ss, 0, sizeof *ss);
  if (!(ss->text = malloc(len + 1))) return SL_ENOMEM;
  memcpy(ss->text, text, len);
  ss->text[len] = 0;
  for (char *line = ss->text, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    if (*line == '#' || !*line) continue;
    if (ss->n == ss->cap) {
      size_t cap = ss->cap ? ss->cap * 2 : 256;
      sample_t *s = realloc(ss->s, cap * sizeof *s);
      if (!s) return SL_ENOMEM;
      ss->s = s;
      ss->cap = cap;
    }
    if (scan_line(line, &ss->s[ss->n])) ss->n++;
  }
  return 0;
}

static void samples_free(samples_t *ss) {
  free(ss->text);
  free(ss->s);
}

/* ---- looking samples up ----------------------------------------------------------- */

static const char *label(const sample_t *s, const char *key) {
  for (size_t i = 0; i < s->n_labels; i++)
    if (strcmp(s->key[i], key) == 0) return s->val[i];
  return NULL;
}

/* Whether s is `name` with every label of kv (key, value, ..., NULL). */
static bool matches(const sample_t *s, const char *name, const char *const *kv) {
  if (strcmp(s->name, name) != 0) return false;
  for (size_t i = 0; kv && kv[i]; i += 2) {
    const char *v = label(s, kv[i]);
    if (!v || strcmp(v, kv[i + 1]) != 0) return false;
  }
  return true;
}

/* The sum of the matching samples (a family summed over the labels kv
 * leaves open); NaN when none matches. */
static double value(const samples_t *ss, const char *name, const char *const *kv) {
  double sum = NAN;
  for (size_t i = 0; i < ss->n; i++)
    if (matches(&ss->s[i], name, kv)) sum = isnan(sum) ? ss->s[i].value : sum + ss->s[i].value;
  return sum;
}

/* ---- building the document ------------------------------------------------------- */

typedef enum {
  NUMBER, /* as it is; null when missing */
  TIME,   /* Unix time; null when missing or 0 (nothing yet) */
  FLAG,   /* true when 1 */
} kind_t;

typedef struct {
  const char *key;
  const char *metric;
  kind_t kind;
} field_t;

static json_t *number(double v) {
  if (isnan(v) || isinf(v)) return json_null();
  if (v == floor(v) && fabs(v) < 0x1p53) return json_integer((json_int_t)v);
  return json_real(v);
}

static json_t *field_value(const samples_t *ss, const field_t *f, const char *const *kv) {
  double v = value(ss, f->metric, kv);
  switch (f->kind) {
  case TIME: return v > 0 ? number(v) : json_null();
  case FLAG: return isnan(v) ? json_null() : json_boolean(v == 1);
  default: return number(v);
  }
}

/* Sets each field of the table (up to a {0} entry) on o, for the samples
 * matching kv. */
static void put_fields(json_t *o, const samples_t *ss, const field_t *fields, const char *const *kv) {
  for (const field_t *f = fields; f->key; f++) json_object_set_new(o, f->key, field_value(ss, f, kv));
}

/* An object of the fields, or NULL when the text has none of them (the
 * stage they belong to is off). */
static json_t *section(const samples_t *ss, const field_t *fields) {
  bool any = false;
  for (const field_t *f = fields; f->key && !any; f++) any = !isnan(value(ss, f->metric, NULL));
  if (!any) return NULL;
  json_t *o = json_object();
  put_fields(o, ss, fields, NULL);
  return o;
}

static const field_t forward_fields[] = {
    {"connections", "sluice_forward_connections", NUMBER},
    {"connections_total", "sluice_forward_connections_total", NUMBER},
    {"records_total", "sluice_forward_records_total", NUMBER},
    {"acks_total", "sluice_forward_acks_total", NUMBER},
    {"errors_total", "sluice_forward_errors_total", NUMBER},
    {0},
};

static const field_t kafka_fields[] = {
    {"brokers_up", "sluice_kafka_brokers_up", NUMBER},
    {"producer_queue_messages", "sluice_kafka_producer_queue_messages", NUMBER},
    {"producer_queue_bytes", "sluice_kafka_producer_queue_bytes", NUMBER},
    {"inflight_records", "sluice_kafka_inflight_records", NUMBER},
    {"produced_total", "sluice_kafka_produced_total", NUMBER},
    {"delivered_total", "sluice_kafka_delivered_total", NUMBER},
    {"delivery_failed_total", "sluice_kafka_delivery_failed_total", NUMBER},
    {0},
};

static const field_t job_fields[] = {
    {"watermark_seconds", "sluice_job_watermark_seconds", TIME},
    {"checkpoint_watermark_seconds", "sluice_job_checkpoint_watermark_seconds", TIME},
    {"last_commit_timestamp_seconds", "sluice_job_last_commit_timestamp_seconds", TIME},
    {"open_windows", "sluice_job_open_windows", NUMBER},
    {"state_keys", "sluice_job_state_keys", NUMBER},
    {"state_bytes", "sluice_job_state_bytes", NUMBER},
    {"max_keys", "sluice_job_max_keys", NUMBER},
    {"records_total", "sluice_job_records_total", NUMBER},
    {"rows_total", "sluice_job_rows_total", NUMBER},
    {"windows_emitted_total", "sluice_job_windows_emitted_total", NUMBER},
    {"rows_pending", "sluice_job_rows_pending", NUMBER},
    {"assigned_partitions", "sluice_job_assigned_partitions", NUMBER},
    {"rebalances_total", "sluice_job_rebalances_total", NUMBER},
    {"paused", "sluice_job_paused", FLAG},
    {0},
};

/* The families that name a job's partitions (the jobs stage shows them
 * for assigned partitions only). */
static const field_t partition_fields[] = {
    {"committed_offset", "sluice_job_committed_offset", NUMBER},
    {"end_offset", "sluice_job_end_offset", NUMBER},
    {"lag", "sluice_job_consumer_lag", NUMBER},
    {0},
};

static const field_t sink_fields[] = {
    {"up", "sluice_sink_up", FLAG},
    {"queue_rows", "sluice_sink_queue_rows", NUMBER},
    {"in_flight", "sluice_sink_in_flight", NUMBER},
    {"rows_total", "sluice_sink_rows_total", NUMBER},
    {"errors_total", "sluice_sink_errors_total", NUMBER},
    {"retries_total", "sluice_sink_retries_total", NUMBER},
    {"rows_dropped_total", "sluice_sink_rows_dropped_total", NUMBER},
    {"rows_dead_lettered_total", "sluice_sink_rows_dead_lettered_total", NUMBER},
    {0},
};

/* Objects named by `key`'s values in the samples of `family` (in their
 * order), each with the fields for its name; extra(o, name) adds more. */
static json_t *named_list(const samples_t *ss, const char *family, const char *key, const field_t *fields,
                          void (*extra)(json_t *o, const samples_t *ss, const char *name)) {
  json_t *list = json_array();
  for (size_t i = 0; i < ss->n; i++) {
    const char *name = strcmp(ss->s[i].name, family) == 0 ? label(&ss->s[i], key) : NULL;
    if (!name) continue;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    put_fields(o, ss, fields, (const char *const[]){key, name, NULL});
    if (extra) extra(o, ss, name);
    json_array_append_new(list, o);
  }
  return list;
}

static bool listed(json_t *parts, const char *topic, json_int_t partition) {
  size_t i;
  json_t *o;
  json_array_foreach(parts, i, o) {
    if (strcmp(json_string_value(json_object_get(o, "topic")), topic) == 0 &&
        json_integer_value(json_object_get(o, "partition")) == partition)
      return true;
  }
  return false;
}

/* The job's partitions, in the order their series first appear. */
static void job_partitions(json_t *job, const samples_t *ss, const char *name) {
  json_t *parts = json_array();
  for (const field_t *f = partition_fields; f->key; f++)
    for (size_t i = 0; i < ss->n; i++) {
      const sample_t *s = &ss->s[i];
      const char *topic = label(s, "topic"), *partition = label(s, "partition");
      if (!topic || !partition || !matches(s, f->metric, (const char *const[]){"sluice_job", name, NULL})) continue;
      json_int_t id = strtoll(partition, NULL, 10);
      if (listed(parts, topic, id)) continue;
      json_t *o = json_object();
      json_object_set_new(o, "topic", json_string(topic));
      json_object_set_new(o, "partition", json_integer(id));
      put_fields(o, ss, partition_fields,
                 (const char *const[]){"sluice_job", name, "topic", topic, "partition", partition, NULL});
      json_array_append_new(parts, o);
    }
  json_object_set_new(job, "partitions", parts);
}

static json_t *stages(const sl_status_info_t *info) {
  json_t *list = json_array();
  for (size_t i = 0; i < info->n_stages; i++)
    json_array_append_new(list, json_pack("{s:s, s:s}", "name", info->stages[i].name, "state", info->stages[i].state));
  return list;
}

static void set_section(json_t *doc, const char *key, json_t *o) {
  if (o) json_object_set_new(doc, key, o);
}

static json_t *document(const samples_t *ss, const sl_status_info_t *info) {
  json_t *doc = json_object();
  double start = value(ss, "sluice_process_start_time_seconds", NULL);
  json_object_set_new(doc, "version", json_string(info->version));
  json_object_set_new(doc, "start_time_seconds", number(start));
  json_object_set_new(doc, "uptime_seconds", number(isnan(start) ? NAN : round((info->now - start) * 1e3) / 1e3));
  json_object_set_new(doc, "ready", json_boolean(info->ready));
  if (!info->ready) json_object_set_new(doc, "reason", json_string(info->reason ? info->reason : ""));
  json_object_set_new(doc, "stages", stages(info));
  set_section(doc, "forward", section(ss, forward_fields));
  set_section(doc, "kafka", section(ss, kafka_fields));
  json_object_set_new(doc, "jobs",
                      named_list(ss, "sluice_job_records_total", "sluice_job", job_fields, job_partitions));
  json_object_set_new(doc, "sinks", named_list(ss, "sluice_sink_up", "sink", sink_fields, NULL));
  return doc;
}

int sl_status_json(const char *text, size_t len, const sl_status_info_t *info, sl_buf_t *out) {
  samples_t ss;
  int r = samples_read(&ss, text, len);
  json_t *doc = r ? NULL : document(&ss, info);
  samples_free(&ss);
  if (r) return r;
  size_t n = doc ? json_dumpb(doc, NULL, 0, JSON_COMPACT) : 0;
  if (!n || sl_buf_reserve(out, n + 1)) {
    json_decref(doc);
    return SL_ENOMEM;
  }
  json_dumpb(doc, out->data + out->len, n, JSON_COMPACT);
  out->len += n;
  json_decref(doc);
  return sl_buf_putc(out, '\n');
}
