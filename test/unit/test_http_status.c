/* /api/v1/status from a metrics text (agent/http/http_status.c): each
 * figure lands where the document says, labels are unescaped, figures the
 * text lacks are null or left out, and lines it cannot read are skipped. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "http/http_status.h"
#include "tap.h"

static const char metrics_text[] =
    "# HELP sluice_forward_connections Open connections.\n"
    "# TYPE sluice_forward_connections gauge\n"
    "sluice_forward_connections 3\n"
    "sluice_forward_records_total 1200\n"
    "sluice_kafka_brokers_up 2\n"
    "sluice_job_records_total{sluice_job=\"clicks\"} 500\n"
    "sluice_job_records_total{sluice_job=\"we\\\"ird\\\\job\"} 7\n"
    "sluice_job_watermark_seconds{sluice_job=\"clicks\"} 1700000010.5\n"
    "sluice_job_watermark_seconds{sluice_job=\"we\\\"ird\\\\job\"} 0\n"
    "sluice_job_open_windows{sluice_job=\"clicks\"} 2\n"
    "sluice_job_state_keys{sluice_job=\"clicks\"} 40\n"
    "sluice_job_state_bytes{sluice_job=\"clicks\"} 8192\n"
    "sluice_job_paused{sluice_job=\"clicks\"} 0\n"
    "sluice_job_last_commit_timestamp_seconds{sluice_job=\"clicks\"} 1700000020\n"
    "sluice_job_committed_offset{sluice_job=\"clicks\",topic=\"logs\",partition=\"0\"} 250\n"
    "sluice_job_end_offset{sluice_job=\"clicks\",topic=\"logs\",partition=\"0\"} 300\n"
    "sluice_job_consumer_lag{sluice_job=\"clicks\",topic=\"logs\",partition=\"0\"} 0\n"
    "sluice_job_end_offset{sluice_job=\"clicks\",topic=\"logs\",partition=\"1\"} 99\n"
    "sluice_sink_up{sink=\"redis\"} 0\n"
    "sluice_sink_queue_rows{sink=\"redis\"} 12\n"
    "sluice_sink_errors_total{sink=\"redis\",kind=\"retry\"} 4\n"
    "sluice_sink_errors_total{sink=\"redis\",kind=\"fatal\"} 1\n"
    "sluice_sink_write_seconds_bucket{sink=\"redis\",le=\"+Inf\"} 9\n"
    "this line is not a sample\n"
    "sluice_broken{sluice_job=\"x} 1\n"
    "sluice_process_start_time_seconds 1700000000\n";

static json_t *status(const char *text, const sl_status_info_t *info) {
  sl_buf_t b = {0};
  int r = sl_status_json(text, strlen(text), info, &b);
  json_t *doc = r ? NULL : json_loadb(b.data, b.len, 0, NULL);
  ok(r == 0 && doc && b.len && b.data[b.len - 1] == '\n', "the document is JSON ending in a newline");
  sl_buf_free(&b);
  return doc;
}

static double num(json_t *o, const char *path) {
  /* path: "a.b.c" through objects */
  char buf[128];
  snprintf(buf, sizeof buf, "%s", path);
  json_t *v = o;
  for (char *k = strtok(buf, "."); k && v; k = strtok(NULL, ".")) v = json_object_get(v, k);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_t *find(json_t *list, const char *key, const char *name) {
  size_t i;
  json_t *o;
  json_array_foreach(list, i, o) if (json_is_string(json_object_get(o, key)) &&
                                     strcmp(json_string_value(json_object_get(o, key)), name) == 0) return o;
  return NULL;
}

int main(void) {
  sl_status_stage_t stages[] = {{"http", "running"}, {"jobs", "running"}};
  sl_status_info_t info = {.version = "1.2.3", .now = 1700000060.25, .ready = false, .reason = "sink redis is down",
                           .stages = stages, .n_stages = 2};
  json_t *doc = status(metrics_text, &info);
  is_str(json_string_value(json_object_get(doc, "version")), "1.2.3", "version");
  ok(num(doc, "uptime_seconds") == 60.25, "uptime from the process start time");
  ok(json_is_false(json_object_get(doc, "ready")), "not ready");
  is_str(json_string_value(json_object_get(doc, "reason")), "sink redis is down", "with the reason");
  is_int(json_array_size(json_object_get(doc, "stages")), 2, "two stages");
  is_str(json_string_value(json_object_get(json_array_get(json_object_get(doc, "stages"), 1), "name")), "jobs",
         "in order");
  ok(num(doc, "forward.connections") == 3 && num(doc, "forward.records_total") == 1200, "forward connections, records");
  ok(num(doc, "kafka.brokers_up") == 2, "kafka brokers up");
  ok(json_is_null(json_object_get(json_object_get(doc, "kafka"), "producer_queue_messages")),
     "a figure the text lacks is null");

  json_t *jobs = json_object_get(doc, "jobs");
  is_int(json_array_size(jobs), 2, "two jobs");
  json_t *clicks = find(jobs, "name", "clicks");
  ok(clicks && num(clicks, "watermark_seconds") == 1700000010.5, "watermark (seconds, fractional)");
  ok(num(clicks, "open_windows") == 2 && num(clicks, "state_keys") == 40 && num(clicks, "state_bytes") == 8192,
     "open windows, state keys and bytes");
  ok(json_is_false(json_object_get(clicks, "paused")), "not paused");
  ok(num(clicks, "last_commit_timestamp_seconds") == 1700000020, "last commit time");
  json_t *weird = find(jobs, "name", "we\"ird\\job");
  ok(weird != NULL, "a job name with a quote and a backslash is unescaped");
  ok(weird && json_is_null(json_object_get(weird, "watermark_seconds")), "a watermark of 0 (none yet) is null");
  ok(weird && num(weird, "records_total") == 7, "its records");

  json_t *parts = json_object_get(clicks, "partitions");
  is_int(json_array_size(parts), 2, "two partitions");
  json_t *p0 = json_array_get(parts, 0), *p1 = json_array_get(parts, 1);
  is_str(json_string_value(json_object_get(p0, "topic")), "logs", "topic");
  ok(json_is_integer(json_object_get(p0, "partition")) && num(p0, "partition") == 0, "partition as a number");
  ok(num(p0, "committed_offset") == 250 &&
         num(p0, "end_offset") == 300 && num(p0, "lag") == 0,
     "committed vs end offset and lag");
  ok(json_is_integer(json_object_get(p0, "end_offset")), "offsets are integers");
  ok(json_is_null(json_object_get(p1, "committed_offset")) && num(p1, "end_offset") == 99 &&
         json_is_null(json_object_get(p1, "lag")),
     "a partition without a committed offset: null, its end offset known");

  json_t *sink = find(json_object_get(doc, "sinks"), "name", "redis");
  ok(sink && json_is_false(json_object_get(sink, "up")), "sink down");
  ok(num(sink, "queue_rows") == 12 && num(sink, "errors_total") == 5, "sink queue, errors summed over kinds");
  json_decref(doc);

  info.ready = true;
  info.reason = NULL;
  doc = status("sluice_print_records_total 3\n", &info);
  ok(json_is_true(json_object_get(doc, "ready")) && !json_object_get(doc, "reason"), "ready: no reason");
  ok(!json_object_get(doc, "forward") && !json_object_get(doc, "kafka"), "stages that are off leave no section");
  ok(json_array_size(json_object_get(doc, "jobs")) == 0 && json_array_size(json_object_get(doc, "sinks")) == 0,
     "no jobs, no sinks: empty lists");
  ok(json_is_null(json_object_get(doc, "uptime_seconds")), "no start time: uptime null");
  json_decref(doc);

  doc = status("", &info);
  ok(doc != NULL, "an empty text still gives a document");
  json_decref(doc);
  return tap_done();
}
