/* The metrics registry: the exact text a scrape sees, the cap on label
 * sets, and exact totals when several threads update and create children
 * at once. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "tap.h"

/* The whole exposition, NUL-terminated; free() it.  NULL when rendering
 * failed, which makes the comparison that follows fail. */
static char *render(sl_metrics_t *r) {
  sl_buf_t b = {0};
  if (sl_metrics_render(r, &b) || sl_buf_putc(&b, '\0')) {
    sl_buf_free(&b);
    return NULL;
  }
  return b.data;
}

static void render_is(sl_metrics_t *r, const char *want, const char *what) {
  char *got = render(r);
  is_str(got, want, "%s", what);
  free(got);
}

static void counter(void) {
  sl_metrics_t *r = sl_metrics_new();
  sl_metric_t *c = sl_metrics_counter(r, "sluice_test_things_total", "Things counted.");
  render_is(r,
            "# HELP sluice_test_things_total Things counted.\n"
            "# TYPE sluice_test_things_total counter\n"
            "sluice_test_things_total 0\n",
            "a counter renders 0 before its first update");
  sl_metric_add(c, 41);
  sl_metric_inc(c);
  is_int(sl_metric_get(c), 42, "counter reads back 42");
  sl_metric_add(c, UINT64_C(18446744073709551573)); /* 42 + this = 2^64 - 1 */
  render_is(r,
            "# HELP sluice_test_things_total Things counted.\n"
            "# TYPE sluice_test_things_total counter\n"
            "sluice_test_things_total 18446744073709551615\n",
            "counter prints the full u64 range as an unsigned integer");

  sl_metric_t *again = sl_metrics_counter(r, "sluice_test_things_total", "Other help.");
  ok(again == c, "registering the same counter again returns the same child");
  render_is(r,
            "# HELP sluice_test_things_total Things counted.\n"
            "# TYPE sluice_test_things_total counter\n"
            "sluice_test_things_total 18446744073709551615\n",
            "a second registration adds no second HELP/TYPE and keeps the first help");
  sl_metrics_free(r);
}

static void gauge(void) {
  static const struct {
    double v;
    const char *text;
  } cases[] = {
      {7, "7"},
      {2.5, "2.5"},
      {-3, "-3"},
      {0.1, "0.1"},
      {1.0 / 3, "0.3333333333333333"},
      {0.005, "0.005"},
      {-0.0, "0"},
      {9007199254740991.0, "9007199254740991"},
      {9007199254740992.0, "9007199254740992"},
      {1e300, "1e+300"},
      {-1.5e-7, "-1.5e-07"},
      {NAN, "NaN"},
      {INFINITY, "+Inf"},
      {-INFINITY, "-Inf"},
  };
  sl_metrics_t *r = sl_metrics_new();
  sl_metric_t *g = sl_metrics_gauge(r, "sluice_test_level", "A level.");
  render_is(
      r, "# HELP sluice_test_level A level.\n# TYPE sluice_test_level gauge\nsluice_test_level 0\n",
      "a gauge renders 0 before its first update");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sl_gauge_set(g, cases[i].v);
    char want[256];
    snprintf(want, sizeof want,
             "# HELP sluice_test_level A level.\n# TYPE sluice_test_level gauge\n"
             "sluice_test_level %s\n",
             cases[i].text);
    char what[64];
    snprintf(what, sizeof what, "gauge set to %s renders %s", cases[i].text, cases[i].text);
    render_is(r, want, what);
  }

  sl_gauge_set(g, 10);
  sl_gauge_add(g, -0.25);
  ok(sl_gauge_get(g) == 9.75, "gauge 10 - 0.25 reads back 9.75");
  sl_gauge_dec(g);
  sl_gauge_dec(g);
  sl_gauge_inc(g);
  ok(sl_gauge_get(g) == 8.75, "gauge after dec, dec, inc reads back 8.75");
  sl_gauge_set(g, 0);
  sl_gauge_add(g, -12);
  render_is(
      r,
      "# HELP sluice_test_level A level.\n# TYPE sluice_test_level gauge\nsluice_test_level -12\n",
      "gauge decreased below zero renders -12");
  sl_metrics_free(r);
}

static void labelled(void) {
  static const char *const labels[] = {"listener", "reason", NULL};
  static const sl_metric_desc_t d = {
      .type = SL_METRIC_COUNTER,
      .name = "sluice_test_errors_total",
      .help = "Errors, by listener and reason.",
      .labels = labels,
  };
  sl_metrics_t *r = sl_metrics_new();
  sl_metric_family_t *f = sl_metrics_family(r, &d);
  ok(f != NULL, "labelled family registered");
  ok(sl_metrics_family(r, &d) == f, "get-or-create returns the same family");
  render_is(r,
            "# HELP sluice_test_errors_total Errors, by listener and reason.\n"
            "# TYPE sluice_test_errors_total counter\n",
            "a labelled family without children renders only HELP and TYPE");

  char listener[16] = "tcp";
  sl_metric_t *a = sl_metric_child(f, (const char *const[]){listener, "bad_tag"});
  strcpy(listener, "XXX"); /* values are copied: this must not show */
  sl_metric_t *b = sl_metric_child(f, (const char *const[]){"unix", "a\"b\\c\nd"});
  ok(a != b, "two label sets are two children");
  ok(sl_metric_child(f, (const char *const[]){"tcp", "bad_tag"}) == a,
     "the same label values return the same child");
  ok(sl_metric_child(f, (const char *const[]){"tcpbad", "_tag"}) != a,
     "values that concatenate alike are another child");
  sl_metric_add(a, 3);
  sl_metric_inc(b);
  render_is(r,
            "# HELP sluice_test_errors_total Errors, by listener and reason.\n"
            "# TYPE sluice_test_errors_total counter\n"
            "sluice_test_errors_total{listener=\"tcp\",reason=\"bad_tag\"} 3\n"
            "sluice_test_errors_total{listener=\"unix\",reason=\"a\\\"b\\\\c\\nd\"} 1\n"
            "sluice_test_errors_total{listener=\"tcpbad\",reason=\"_tag\"} 0\n",
            "children render in creation order with \\, \" and newline escaped");

  sl_metric_t *h = sl_metrics_counter(r, "sluice_test_help_total", "Back\\slash and\nnewline.");
  sl_metric_inc(h);
  char *got = render(r);
  ok(got && strstr(got,
                   "# HELP sluice_test_help_total Back\\\\slash and\\nnewline.\n"
                   "# TYPE sluice_test_help_total counter\nsluice_test_help_total 1\n"),
     "help text escapes backslash and newline, and follows the earlier family");
  free(got);
  sl_metrics_free(r);
}

static const double bounds[] = {0.005, 0.5, 1, 2.5};

static void histogram(void) {
  static const sl_metric_desc_t plain = {
      .type = SL_METRIC_HISTOGRAM,
      .name = "sluice_test_seconds",
      .help = "Durations.",
      .buckets = bounds,
      .n_buckets = 4,
  };
  static const char *const labels[] = {"sink", NULL};
  static const sl_metric_desc_t by_sink = {
      .type = SL_METRIC_HISTOGRAM,
      .name = "sluice_test_sink_seconds",
      .help = "Durations by sink.",
      .labels = labels,
      .buckets = bounds,
      .n_buckets = 4,
  };
  sl_metrics_t *r = sl_metrics_new();
  sl_metric_t *m = sl_metric_child(sl_metrics_family(r, &plain), NULL);
  const double obs[] = {0.25, 0.5, 0.75, 3, 10};
  for (size_t i = 0; i < 5; i++) sl_histogram_observe(m, obs[i]);
  is_int(atomic_load(&m->count), 5, "histogram counts 5 observations");
  is_int(atomic_load(&m->bucket[1]), 2, "0.25 and 0.5 land in le=0.5 (bounds are inclusive)");
  is_int(atomic_load(&m->bucket[4]), 2, "3 and 10 land in +Inf");

  sl_metric_family_t *fs = sl_metrics_family(r, &by_sink);
  sl_metric_t *k = sl_metric_child(fs, (const char *const[]){"kafka"});
  sl_histogram_observe(k, 0.001);
  sl_histogram_observe(k, 1);
  render_is(r,
            "# HELP sluice_test_seconds Durations.\n"
            "# TYPE sluice_test_seconds histogram\n"
            "sluice_test_seconds_bucket{le=\"0.005\"} 0\n"
            "sluice_test_seconds_bucket{le=\"0.5\"} 2\n"
            "sluice_test_seconds_bucket{le=\"1\"} 3\n"
            "sluice_test_seconds_bucket{le=\"2.5\"} 3\n"
            "sluice_test_seconds_bucket{le=\"+Inf\"} 5\n"
            "sluice_test_seconds_sum 14.5\n"
            "sluice_test_seconds_count 5\n"
            "# HELP sluice_test_sink_seconds Durations by sink.\n"
            "# TYPE sluice_test_sink_seconds histogram\n"
            "sluice_test_sink_seconds_bucket{sink=\"kafka\",le=\"0.005\"} 1\n"
            "sluice_test_sink_seconds_bucket{sink=\"kafka\",le=\"0.5\"} 1\n"
            "sluice_test_sink_seconds_bucket{sink=\"kafka\",le=\"1\"} 2\n"
            "sluice_test_sink_seconds_bucket{sink=\"kafka\",le=\"2.5\"} 2\n"
            "sluice_test_sink_seconds_bucket{sink=\"kafka\",le=\"+Inf\"} 2\n"
            "sluice_test_sink_seconds_sum{sink=\"kafka\"} 1.001\n"
            "sluice_test_sink_seconds_count{sink=\"kafka\"} 2\n",
            "histograms render cumulative buckets, sum and count, labels before le");
  sl_metrics_free(r);
}

static void cap(void) {
  static const char *const labels[] = {"tag", NULL};
  static const sl_metric_desc_t d = {
      .type = SL_METRIC_COUNTER,
      .name = "sluice_test_capped_total",
      .help = "Capped.",
      .labels = labels,
      .max_children = 2,
  };
  static const sl_metric_desc_t d2 = {
      .type = SL_METRIC_GAUGE,
      .name = "sluice_test_capped_gauge",
      .help = "Capped gauge.",
      .labels = labels,
      .max_children = 1,
  };
  sl_log_set_level(SL_LOG_ERROR); /* the cap's warning is expected here */
  sl_metrics_t *r = sl_metrics_new();
  sl_metric_family_t *f = sl_metrics_family(r, &d);
  sl_metric_t *a = sl_metric_child(f, (const char *const[]){"a"});
  sl_metric_t *b = sl_metric_child(f, (const char *const[]){"b"});
  sl_metric_t *c = sl_metric_child(f, (const char *const[]){"c"});
  ok(c != NULL && c != a && c != b, "a third label set past a cap of 2 gets the overflow child");
  sl_metric_inc(a);
  sl_metric_add(c, 100);
  static const char *const capped_text =
      "# HELP sluice_test_capped_total Capped.\n"
      "# TYPE sluice_test_capped_total counter\n"
      "sluice_test_capped_total{tag=\"a\"} 1\n"
      "sluice_test_capped_total{tag=\"b\"} 0\n";
  static const char *const dropped_head =
      "# HELP sluice_metrics_series_dropped_total Label sets not created because their metric "
      "family reached its cap of children.\n"
      "# TYPE sluice_metrics_series_dropped_total counter\n";
  char want[1024];
  snprintf(want, sizeof want, "%s%s%s", capped_text, dropped_head,
           "sluice_metrics_series_dropped_total{family=\"sluice_test_capped_total\"} 1\n");
  render_is(r, want, "the overflow child is not rendered and the drop renders 1");

  ok(sl_metric_child(f, (const char *const[]){"d"}) == c, "every label set past the cap shares it");
  snprintf(want, sizeof want, "%s%s%s", capped_text, dropped_head,
           "sluice_metrics_series_dropped_total{family=\"sluice_test_capped_total\"} 2\n");
  render_is(r, want, "a second drop renders 2");
  ok(sl_metric_child(f, (const char *const[]){"a"}) == a,
     "an existing label set is still found past the cap");
  ok(sl_metric_child(f, (const char *const[]){"b"}) == b, "and so is the other");

  sl_metric_family_t *g = sl_metrics_family(r, &d2);
  sl_metric_t *x = sl_metric_child(g, (const char *const[]){"x"});
  for (int i = 0; i < 3; i++) sl_metric_child(g, (const char *const[]){i == 1 ? "y" : "z"});
  sl_gauge_set(x, 4);
  snprintf(want, sizeof want, "%s%s%s%s%s", capped_text, dropped_head,
           "sluice_metrics_series_dropped_total{family=\"sluice_test_capped_total\"} 2\n"
           "sluice_metrics_series_dropped_total{family=\"sluice_test_capped_gauge\"} 3\n",
           "# HELP sluice_test_capped_gauge Capped gauge.\n"
           "# TYPE sluice_test_capped_gauge gauge\n",
           "sluice_test_capped_gauge{tag=\"x\"} 4\n");
  render_is(r, want,
            "the dropped-series counter has one child per overflowing family, "
            "and is registered after the first family that overflowed");
  sl_metrics_free(r);
  sl_log_set_level(SL_LOG_INFO);
}

/* Runs register() in a child process and checks that it aborts after
 * logging a line containing `logged`. */
static void aborts(void (*reg)(void), const char *logged, const char *what) {
  int fds[2];
  if (pipe(fds) != 0) {
    ok(0, "pipe for %s", what);
    return;
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    reg();
    _exit(0);
  }
  close(fds[1]);
  char log[1024] = "";
  size_t n = 0;
  ssize_t k;
  while ((k = read(fds[0], log + n, sizeof log - 1 - n)) > 0) n += (size_t)k;
  log[n] = '\0';
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "%s aborts", what);
  ok(strstr(log, logged) != NULL, "%s logs why", what);
  if (!strstr(log, logged)) printf("#   log was: %s\n", log);
}

static const char *const one_label[] = {"a", NULL};
static const char *const other_label[] = {"b", NULL};
static const double other_bounds[] = {0.005, 0.5, 1, 5};

static void register_twice(sl_metric_desc_t first, sl_metric_desc_t second) {
  sl_metrics_t *r = sl_metrics_new();
  sl_metrics_family(r, &first);
  sl_metrics_family(r, &second);
}

static void type_clash(void) {
  register_twice((sl_metric_desc_t){.type = SL_METRIC_COUNTER, .name = "x_total", .help = "h"},
                 (sl_metric_desc_t){.type = SL_METRIC_GAUGE, .name = "x_total", .help = "h"});
}
static void label_clash(void) {
  register_twice((sl_metric_desc_t){.name = "x_total", .help = "h", .labels = one_label},
                 (sl_metric_desc_t){.name = "x_total", .help = "h", .labels = other_label});
}
static void label_count_clash(void) {
  register_twice((sl_metric_desc_t){.name = "x_total", .help = "h", .labels = one_label},
                 (sl_metric_desc_t){.name = "x_total", .help = "h"});
}
static void bucket_clash(void) {
  register_twice(
      (sl_metric_desc_t){
          .type = SL_METRIC_HISTOGRAM, .name = "x", .help = "h", .buckets = bounds, .n_buckets = 4},
      (sl_metric_desc_t){.type = SL_METRIC_HISTOGRAM,
                         .name = "x",
                         .help = "h",
                         .buckets = other_bounds,
                         .n_buckets = 4});
}
static void bad_name(void) {
  sl_metrics_t *r = sl_metrics_new();
  sl_metrics_counter(r, "sluice-dashes_total", "h");
}

static void conflicts(void) {
  aborts(type_clash, "family x_total registered again", "same name with another type");
  aborts(label_clash, "family x_total registered again", "same name with other label names");
  aborts(label_count_clash, "family x_total registered again", "same name without its labels");
  aborts(bucket_clash, "family x registered again", "same histogram with other buckets");
  aborts(bad_name, "invalid metric name", "a name Prometheus would reject");
}

/* ---- Threads ---- */

enum { INCS = 1000000, GAUGE_ADDS = 200000, OBSERVES = 100000, VALUES = 200, ROUNDS = 50 };

typedef struct {
  pthread_barrier_t *start;
  sl_metric_t *counter, *gauge, *hist;
  sl_metric_family_t *fam;
  sl_metric_t *seen[VALUES];
  int changed; /* lookups that returned another pointer than the first */
} worker_t;

static void *update(void *arg) {
  worker_t *w = arg;
  pthread_barrier_wait(w->start);
  for (int i = 0; i < INCS; i++) {
    sl_metric_inc(w->counter);
    if (i < GAUGE_ADDS) sl_gauge_add(w->gauge, 1);
    if (i < OBSERVES) sl_histogram_observe(w->hist, i % 2 ? 4 : 0.25);
  }
  return NULL;
}

static void *create(void *arg) {
  worker_t *w = arg;
  char v[16];
  pthread_barrier_wait(w->start);
  for (int round = 0; round < ROUNDS; round++)
    for (int i = 0; i < VALUES; i++) {
      snprintf(v, sizeof v, "v%d", i);
      sl_metric_t *m = sl_metric_child(w->fam, (const char *const[]){v});
      if (round == 0)
        w->seen[i] = m;
      else if (m != w->seen[i])
        w->changed++;
      sl_metric_inc(m);
    }
  return NULL;
}

static void run_two(void *(*fn)(void *), worker_t w[2]) {
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, 2);
  pthread_t t[2];
  for (int i = 0; i < 2; i++) {
    w[i].start = &start;
    pthread_create(&t[i], NULL, fn, &w[i]);
  }
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&start);
}

static void concurrent_updates(void) {
  static const double one[] = {1};
  static const sl_metric_desc_t hd = {.type = SL_METRIC_HISTOGRAM,
                                      .name = "t_seconds",
                                      .help = "h",
                                      .buckets = one,
                                      .n_buckets = 1};
  sl_metrics_t *r = sl_metrics_new();
  worker_t w[2] = {{0}};
  w[0].counter = w[1].counter = sl_metrics_counter(r, "t_total", "h");
  w[0].gauge = w[1].gauge = sl_metrics_gauge(r, "t_gauge", "h");
  w[0].hist = w[1].hist = sl_metric_child(sl_metrics_family(r, &hd), NULL);
  run_two(update, w);
  is_int(sl_metric_get(w[0].counter), 2 * INCS, "two threads' counter increments all count");
  ok(sl_gauge_get(w[0].gauge) == 2.0 * GAUGE_ADDS, "two threads' gauge adds all count");
  if (sl_gauge_get(w[0].gauge) != 2.0 * GAUGE_ADDS)
    printf("#   got %.17g\n", sl_gauge_get(w[0].gauge));
  render_is(r,
            "# HELP t_total h\n# TYPE t_total counter\nt_total 2000000\n"
            "# HELP t_gauge h\n# TYPE t_gauge gauge\nt_gauge 400000\n"
            "# HELP t_seconds h\n# TYPE t_seconds histogram\n"
            "t_seconds_bucket{le=\"1\"} 100000\n"
            "t_seconds_bucket{le=\"+Inf\"} 200000\n"
            "t_seconds_sum 425000\n"
            "t_seconds_count 200000\n",
            "two threads' histogram observations all count, in buckets, sum and count");
  is_int(atomic_load(&w[0].hist->count), 2 * OBSERVES, "histogram count field is exact");
  sl_metrics_free(r);
}

static void concurrent_children(void) {
  static const char *const labels[] = {"v", NULL};
  static const sl_metric_desc_t d = {
      .type = SL_METRIC_COUNTER, .name = "t_children_total", .help = "h", .labels = labels};
  sl_metrics_t *r = sl_metrics_new();
  worker_t w[2] = {{0}};
  w[0].fam = w[1].fam = sl_metrics_family(r, &d);
  run_two(create, w);
  int differ = 0, wrong = 0;
  for (int i = 0; i < VALUES; i++) {
    if (w[0].seen[i] != w[1].seen[i]) differ++;
    if (sl_metric_get(w[0].seen[i]) != 2 * ROUNDS) wrong++;
  }
  is_int(differ, 0, "both threads got the same child for each label value");
  is_int(w[0].changed + w[1].changed, 0, "later lookups return the first child");
  is_int(wrong, 0, "every child counts both threads' increments (%d each)", 2 * ROUNDS);
  char *got = render(r);
  int lines = 0, samples = 0;
  for (const char *p = got; p && *p; p = strchr(p, '\n') + 1) {
    lines++;
    if (strncmp(p, "t_children_total{v=\"", 20) == 0) samples++;
  }
  is_int(samples, VALUES, "each label value rendered once");
  is_int(lines, VALUES + 2, "and nothing else but HELP and TYPE (no drops)");
  free(got);
  sl_metrics_free(r);
}

/* ---- Published sets ---- */

static void set_samples(void) {
  sl_metrics_t *r = sl_metrics_new();
  sl_metrics_source_t *src = sl_metrics_source_new(r);
  sl_metrics_set_t *s = sl_metrics_set_new();
  int g = sl_metrics_set_family(s, SL_METRIC_GAUGE, "pv_count", "Rows' count.");
  int h = sl_metrics_set_family(s, SL_METRIC_HISTOGRAM, "pv_latency", "Latency.");
  ok(g == 0 && h == 1, "families get indices in order of addition");
  is_int(sl_metrics_set_family(s, SL_METRIC_GAUGE, "pv_count", "again"), g, "the same name and type: the same family");
  is_int(sl_metrics_set_family(s, SL_METRIC_COUNTER, "pv_count", "h"), -EEXIST, "the same name, another type: refused");
  is_int(sl_metrics_set_family(s, SL_METRIC_GAUGE, "pv_latency_bucket", "h"), -EEXIST,
         "a name a histogram's samples use: refused");
  is_int(sl_metrics_set_family(s, SL_METRIC_GAUGE, "9lives", "h"), -EINVAL, "an invalid metric name: refused");
  is_int(sl_metrics_set_family(s, SL_METRIC_GAUGE, "x", NULL), -EINVAL, "no help: refused");

  sl_metric_label_t l1[] = {{"page", "/cart"}, {"env", "prod"}};
  is_int(sl_metrics_set_value(s, g, l1, 2, 42), 0, "a gauge sample");
  sl_metric_label_t l1r[] = {{"env", "prod"}, {"page", "/cart"}};
  is_int(sl_metrics_set_value(s, g, l1r, 2, 1), -EEXIST, "the same labels in another order: refused");
  sl_metric_label_t esc[] = {{"page", "a\"b\\c\nd"}, {"env", "bad\xff\xc0utf8\xe2\x82"}};
  is_int(sl_metrics_set_value(s, g, esc, 2, 0.25), 0, "a sample with values to escape");
  sl_metric_label_t dup[] = {{"page", "x"}, {"page", "y"}};
  is_int(sl_metrics_set_value(s, g, dup, 2, 1), -EINVAL, "a label name twice: refused");
  sl_metric_label_t reserved[] = {{"__name__", "x"}};
  is_int(sl_metrics_set_value(s, g, reserved, 1, 1), -EINVAL, "a reserved label name: refused");
  sl_metric_label_t badname[] = {{"req.path", "x"}};
  is_int(sl_metrics_set_value(s, g, badname, 1, 1), -EINVAL, "an invalid label name: refused");
  is_int(sl_metrics_set_value(s, h, l1, 2, 1), -EINVAL, "a value sample to a histogram family: refused");

  double bounds[] = {1, 2.5};
  uint64_t cum[] = {3, 7, 9};
  is_int(sl_metrics_set_histogram(s, h, l1, 2, bounds, cum, 2, 20.5), 0, "a histogram sample");
  uint64_t down[] = {3, 2, 9};
  is_int(sl_metrics_set_histogram(s, h, l1r, 2, bounds, down, 2, 1), -EINVAL, "decreasing counts: refused");
  double unsorted[] = {2.5, 1};
  is_int(sl_metrics_set_histogram(s, h, l1r, 2, unsorted, cum, 2, 1), -EINVAL, "bounds out of order: refused");
  sl_metric_label_t le[] = {{"le", "1"}};
  is_int(sl_metrics_set_histogram(s, h, le, 1, bounds, cum, 2, 1), -EINVAL, "le in a histogram's labels: refused");
  is_int(sl_metrics_set_histogram(s, h, NULL, 0, NULL, (uint64_t[]){4}, 0, 8), 0,
         "a histogram with only +Inf, no labels");
  is_int(sl_metrics_set_samples(s), 4, "four samples kept");

  render_is(r, "", "nothing shows before the set is published");
  is_int(sl_metrics_source_publish(src, s, NULL, 0), 0, "published, no clash");
  render_is(r,
            "# HELP pv_count Rows' count.\n# TYPE pv_count gauge\n"
            "pv_count{page=\"/cart\",env=\"prod\"} 42\n"
            "pv_count{page=\"a\\\"b\\\\c\\nd\",env=\"bad\xef\xbf\xbd\xef\xbf\xbdutf8\xef\xbf\xbd\xef\xbf\xbd\"} 0.25\n"
            "# HELP pv_latency Latency.\n# TYPE pv_latency histogram\n"
            "pv_latency_bucket{page=\"/cart\",env=\"prod\",le=\"1\"} 3\n"
            "pv_latency_bucket{page=\"/cart\",env=\"prod\",le=\"2.5\"} 7\n"
            "pv_latency_bucket{page=\"/cart\",env=\"prod\",le=\"+Inf\"} 9\n"
            "pv_latency_sum{page=\"/cart\",env=\"prod\"} 20.5\n"
            "pv_latency_count{page=\"/cart\",env=\"prod\"} 9\n"
            "pv_latency_bucket{le=\"+Inf\"} 4\n"
            "pv_latency_sum 8\n"
            "pv_latency_count 4\n",
            "the set renders with escaped values, invalid UTF-8 replaced, histogram lines in order");

  sl_metrics_set_t *s2 = sl_metrics_set_new();
  sl_metrics_set_value(s2, sl_metrics_set_family(s2, SL_METRIC_GAUGE, "pv_count", "Rows' count."),
                       (sl_metric_label_t[]){{"page", "/home"}}, 1, 7);
  sl_metrics_source_publish(src, s2, NULL, 0);
  render_is(r, "# HELP pv_count Rows' count.\n# TYPE pv_count gauge\npv_count{page=\"/home\"} 7\n",
            "a new set replaces the old one whole: its series and families are gone");
  sl_metrics_source_publish(src, NULL, NULL, 0);
  render_is(r, "", "publishing nothing shows nothing");
  sl_metrics_source_free(src);
  sl_metrics_free(r);
}

static void set_clashes(void) {
  sl_metrics_t *r = sl_metrics_new();
  sl_metrics_counter(r, "sluice_rows_total", "h");
  sl_metrics_source_t *a = sl_metrics_source_new(r), *b = sl_metrics_source_new(r);
  sl_metrics_set_t *s = sl_metrics_set_new();
  sl_metrics_set_value(s, sl_metrics_set_family(s, SL_METRIC_GAUGE, "sluice_rows_total", "h"), NULL, 0, 1);
  sl_metrics_set_value(s, sl_metrics_set_family(s, SL_METRIC_GAUGE, "mine", "h"), NULL, 0, 2);
  char clash[64] = "";
  is_int(sl_metrics_source_publish(a, s, clash, sizeof clash), 1, "one family clashes with the registry's");
  is_str(clash, "sluice_rows_total", "and its name is reported");
  sl_metrics_set_t *t = sl_metrics_set_new();
  sl_metrics_set_histogram(t, sl_metrics_set_family(t, SL_METRIC_HISTOGRAM, "mine_again", "h"), NULL, 0, NULL,
                           (uint64_t[]){1}, 0, 1);
  sl_metrics_set_value(t, sl_metrics_set_family(t, SL_METRIC_GAUGE, "mine", "h"), NULL, 0, 3);
  sl_metrics_set_value(t, sl_metrics_set_family(t, SL_METRIC_GAUGE, "theirs", "h"), NULL, 0, 4);
  clash[0] = '\0';
  is_int(sl_metrics_source_publish(b, t, clash, sizeof clash), 1, "another source's family name clashes");
  is_str(clash, "mine", "and is named");
  render_is(r,
            "# HELP sluice_rows_total h\n# TYPE sluice_rows_total counter\nsluice_rows_total 0\n"
            "# HELP mine h\n# TYPE mine gauge\nmine 2\n"
            "# HELP mine_again h\n# TYPE mine_again histogram\nmine_again_bucket{le=\"+Inf\"} 1\n"
            "mine_again_sum 1\nmine_again_count 1\n"
            "# HELP theirs h\n# TYPE theirs gauge\ntheirs 4\n",
            "each name shows once: the registry's first, then the first source's");
  sl_metrics_gauge(r, "theirs", "registered later");
  char *got = render(r);
  ok(got && !strstr(got, "theirs 4") && strstr(got, "theirs 0"),
     "a registry family registered after a set was published wins over it");
  free(got);
  sl_metrics_source_free(a);
  sl_metrics_source_free(b);
  sl_metrics_free(r);
}

typedef struct {
  sl_metrics_source_t *src;
  atomic_int stop;
  int published;
} publisher_t;

/* Publishes sets of 50 series, each with every series at the set's
 * number, as fast as it can. */
static void *publish_loop(void *arg) {
  publisher_t *p = arg;
  for (int n = 1; !atomic_load(&p->stop) || n < 100; n++) {
    sl_metrics_set_t *s = sl_metrics_set_new();
    int f = sl_metrics_set_family(s, SL_METRIC_GAUGE, "gen", "h");
    for (int k = 0; k < 50; k++) {
      char v[16];
      snprintf(v, sizeof v, "%d", k);
      sl_metrics_set_value(s, f, (sl_metric_label_t[]){{"k", v}}, 1, n);
    }
    sl_metrics_source_publish(p->src, s, NULL, 0);
    p->published = n;
  }
  return NULL;
}

static void set_concurrent(void) {
  sl_metrics_t *r = sl_metrics_new();
  publisher_t p = {.src = sl_metrics_source_new(r)};
  pthread_t t;
  pthread_create(&t, NULL, publish_loop, &p);
  int torn = 0, scrapes = 0;
  for (; scrapes < 2000; scrapes++) {
    char *got = render(r);
    int lines = 0;
    long first = -1;
    for (const char *q = got; q && (q = strstr(q, "gen{k=\"")); q++) {
      long v = strtol(strchr(q, ' ') + 1, NULL, 10);
      if (first < 0) first = v;
      if (v != first) torn++;
      lines++;
    }
    if (lines != 0 && lines != 50) torn++;
    free(got);
  }
  atomic_store(&p.stop, 1);
  pthread_join(t, NULL);
  is_int(torn, 0, "%d scrapes during %d publications each saw one whole set", scrapes, p.published);
  sl_metrics_source_free(p.src);
  sl_metrics_free(r);
}

/* A counter of microseconds shown in seconds (per_unit). */
static void scaled_counter(void) {
  sl_metrics_t *r = sl_metrics_new();
  sl_metric_t *c = sl_metric_child(
      sl_metrics_family(r, &(sl_metric_desc_t){.type = SL_METRIC_COUNTER, .name = "sluice_test_waited_seconds_total",
                                               .help = "Waited.", .per_unit = 1000000}),
      NULL);
  sl_metric_add(c, 1500000);
  sl_metric_add(c, 250);
  render_is(r,
            "# HELP sluice_test_waited_seconds_total Waited.\n"
            "# TYPE sluice_test_waited_seconds_total counter\n"
            "sluice_test_waited_seconds_total 1.50025\n",
            "a counter of microseconds renders seconds");
  is_int(sl_metric_get(c), 1500250, "and counts microseconds");
  sl_metrics_free(r);
}

int main(void) {
  counter();
  scaled_counter();
  gauge();
  labelled();
  histogram();
  cap();
  conflicts();
  concurrent_updates();
  concurrent_children();
  set_samples();
  set_clashes();
  set_concurrent();
  return tap_done();
}
