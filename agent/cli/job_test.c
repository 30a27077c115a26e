/* `sluice job test`: runs one configured job over a file of JSON lines, as
 * if they came from one Kafka partition read at their event times, and
 * prints the result rows as JSON lines.  Each line is converted to msgpack
 * (jansson -> msgpack) and fed to the engine, which is advanced after every
 * record, so the rows come out when the job would emit them.  Main thread,
 * a command-line tool. */
#include "cli/job_test.h"

#include "cli/cli_common.h"
#include "jobs/record_decode.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "daemon/config.h"
#include "jobs/engine.h"
#include "jobs/event_time.h"
#include "jobs/path.h"

#define EXIT_FAIL 1
#define EXIT_CONFIG 2
#define EXIT_USAGE 64

static const char usage_job[] =
    "usage: sluice job test -c FILE --job NAME --input FILE\n"
    "\n"
    "Runs the [[job]] NAME of the config over INPUT, JSON lines, without Kafka, and prints\n"
    "each result row as a JSON line on stdout, in the order the job emits them.\n"
    "A line is a record, whose event time is the job's time_field or else the line's \"time\"\n"
    "key, or {\"time\": T, \"record\": {...}}; T is epoch seconds or RFC 3339 text.  Records\n"
    "are read as one partition at their event times (processing-time jobs use them as the\n"
    "clock), and every window still open at the end is closed.  Counters go to stderr.\n"
    "\n"
    "  -c, --config FILE   config file (TOML)\n"
    "  -j, --job NAME      the job to run\n"
    "  -i, --input FILE    JSON lines (- for stdin)\n"
    "  -h, --help          this help\n"
    "\n"
    "Exit codes: 0 ok, 1 unreadable input, 2 invalid configuration or unknown job, 64 usage error.\n";

typedef struct {
  sl_buf_t out;
  int err;
} printer_t;

static void on_row(const sl_job_row_t *row, void *arg) {
  printer_t *p = arg;
  sl_buf_reset(&p->out);
  int r = sl_job_row_to_json(row, &p->out);
  if (!r) r = sl_buf_putc(&p->out, '\n');
  if (r) {
    p->err = r;
    return;
  }
  fwrite(p->out.data, 1, p->out.len, stdout);
}

/* The event time of a line: the record's time_field when the job has one,
 * else `t` (the line's "time"). */
static int line_time(const sl_job_conf_t *jc, const sl_path_t *time_path, const msgpack_object *rec,
                     const msgpack_object *t, int64_t *ms) {
  if (time_path->n) return sl_time_from_value(sl_path_lookup(time_path, rec), (sl_time_format_t)jc->time_format, ms);
  if (!t) return SL_ESYNTAX;
  return sl_time_from_value(t, t->type == MSGPACK_OBJECT_STR ? SL_TIME_RFC3339 : SL_TIME_EPOCH, ms);
}

static int run(const sl_job_conf_t *jc, sl_job_t *job, FILE *in, const char *input) {
  int rc = 0;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  long lineno = 0;
  sl_buf_t mp = {0};
  printer_t pr = {0};
  msgpack_unpacked unp;
  msgpack_unpacked_init(&unp);
  sl_path_t time_path = {0};
  if (jc->time_field && jc->time != 1 && sl_path_parse(jc->time_field, &time_path, NULL)) {
    fprintf(stderr, "sluice job test: cannot read time_field\n");
    rc = EXIT_CONFIG;
    goto done;
  }
  while ((n = getline(&line, &cap, in)) >= 0) {
    lineno++;
    if (strspn(line, " \t\r\n") == (size_t)n) continue;
    json_error_t je;
    json_t *doc = json_loadb(line, (size_t)n, 0, &je);
    if (!doc || !json_is_object(doc)) {
      fprintf(stderr, "%s:%ld: %s\n", input, lineno, doc ? "not a JSON object" : je.text);
      json_decref(doc);
      rc = EXIT_FAIL;
      goto done;
    }
    /* Packs [time or nil, record]. */
    json_t *rec = json_object_get(doc, "record"), *tj = json_object_get(doc, "time");
    if (!json_is_object(rec)) rec = doc;
    sl_buf_reset(&mp);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &mp, sl_buf_msgpack_write);
    msgpack_pack_array(&pk, 2);
    if (tj)
      sl_json_pack(&pk, tj);
    else
      msgpack_pack_nil(&pk);
    sl_json_pack(&pk, rec);
    json_decref(doc);
    size_t off = 0;
    if (msgpack_unpack_next(&unp, mp.data, mp.len, &off) != MSGPACK_UNPACK_SUCCESS) {
      fprintf(stderr, "%s:%ld: cannot convert the record\n", input, lineno);
      rc = EXIT_FAIL;
      goto done;
    }
    const msgpack_object *pair = unp.data.via.array.ptr;
    const msgpack_object *t = pair[0].type == MSGPACK_OBJECT_NIL ? NULL : &pair[0];
    int64_t ms;
    if (line_time(jc, &time_path, &pair[1], t, &ms)) {
      fprintf(stderr, "%s:%ld: no readable event time (%s)\n", input, lineno,
              time_path.n ? "time_field" : "\"time\": epoch seconds or RFC 3339");
      rc = EXIT_FAIL;
      goto done;
    }
    int r = sl_job_feed(job, 0, -1, &pair[1], ms, ms);
    if (r == SL_JOB_LATE) r = 0;
    if (!r) sl_job_advance(job, ms, on_row, &pr);
    if (r || pr.err) {
      fprintf(stderr, "%s:%ld: %s\n", input, lineno, sl_strerror(r ? r : pr.err));
      rc = EXIT_FAIL;
      goto done;
    }
  }
  if (ferror(in)) {
    fprintf(stderr, "%s: read error after line %ld\n", input, lineno);
    rc = EXIT_FAIL;
    goto done;
  }
  sl_job_finish(job, on_row, &pr);
  if (pr.err) {
    fprintf(stderr, "%s: %s\n", input, sl_strerror(pr.err));
    rc = EXIT_FAIL;
  }
  sl_job_stats_t st;
  sl_job_stats(job, &st);
  fprintf(stderr,
          "sluice job test: %" PRIu64 " records, %" PRIu64 " filtered, %" PRIu64 " late, %" PRIu64
          " bad time, %" PRIu64 " keys dropped, %" PRIu64 " rows\n",
          st.records_in, st.filtered, st.late, st.bad_time, st.keys_dropped, st.rows_emitted);
done:
  fflush(stdout);
  sl_path_free(&time_path);
  msgpack_unpacked_destroy(&unp);
  sl_buf_free(&mp);
  sl_buf_free(&pr.out);
  free(line);
  return rc;
}

static int cmd_test(int argc, char **argv) {
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'},
      {"job", required_argument, NULL, 'j'},
      {"input", required_argument, NULL, 'i'},
      {"help", no_argument, NULL, 'h'},
      {0},
  };
  const char *file = NULL, *name = NULL, *input = NULL;
  int ch;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "c:j:i:h", longopts, NULL)) != -1) {
    switch (ch) {
    case 'c': file = optarg; break;
    case 'j': name = optarg; break;
    case 'i': input = optarg; break;
    case 'h': fputs(usage_job, stdout); return 0;
    default: fputs(usage_job, stderr); return EXIT_USAGE;
    }
  }
  if (!file || !name || !input || optind != argc) {
    fputs(usage_job, stderr);
    return EXIT_USAGE;
  }
  sl_config_t *cfg = sl_cli_load_config(file);
  if (!cfg) return EXIT_CONFIG;
  const sl_job_conf_t *jc = NULL;
  for (size_t i = 0; i < cfg->jobs.n; i++) {
    const sl_job_conf_t *c = (const sl_job_conf_t *)cfg->jobs.items + i;
    if (!strcmp(c->name, name)) jc = c;
  }
  int rc = EXIT_CONFIG;
  sl_job_t *job = NULL;
  FILE *in = NULL;
  if (!jc) {
    fprintf(stderr, "%s: no [[job]] named \"%s\"\n", file, name);
    goto done;
  }
  sl_job_error_t err;
  int r = sl_job_new(jc, &job, &err);
  if (r) {
    fprintf(stderr, "%s: job %s: %s: %s\n", file, name, r == SL_ECONFIG ? err.option : "compile",
            r == SL_ECONFIG ? err.msg : sl_strerror(r));
    goto done;
  }
  in = strcmp(input, "-") ? fopen(input, "r") : stdin;
  if (!in) {
    fprintf(stderr, "%s: cannot open: %m\n", input);
    rc = EXIT_FAIL;
    goto done;
  }
  rc = run(jc, job, in, input);
done:
  if (in && in != stdin) fclose(in);
  sl_job_free(job);
  sl_config_free(cfg);
  return rc;
}

int sl_job_cli_main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "test")) return cmd_test(argc - 1, argv + 1);
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    fputs(usage_job, stdout);
    return 0;
  }
  fputs(usage_job, stderr);
  return EXIT_USAGE;
}
