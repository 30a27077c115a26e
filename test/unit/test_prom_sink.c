/* The prometheus sink's pure parts (plugins/prometheus): names and label
 * values, histogram buckets from sketch bins (the user's bounds and the
 * sketch's own grid), and the series table (which row replaces which, the
 * newest window, the cap, collisions, expiry).  Built from the plugin's
 * sources with the SDK header only. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/prometheus/prom_buckets.h"
#include "../../plugins/prometheus/prom_names.h"
#include "../../plugins/prometheus/prom_table.h"
#include "tap.h"

static void names(void) {
  ok(prom_valid_name("api_errors:rate5m", false), "a metric name with a colon");
  ok(!prom_valid_name("api-errors", false) && !prom_valid_name("9x", false) && !prom_valid_name("", false),
     "a dash, a leading digit, an empty name: not metric names");
  ok(prom_valid_name("req_method", true) && !prom_valid_name("a:b", true) && !prom_valid_name("__x", true),
     "label names: no colon, no leading __");
  struct {
    const char *in;
    bool label;
    const char *want;
  } cases[] = {
      {"req.method", true, "req_method"}, {"99th", false, "_99th"}, {"p99 ms", false, "p99_ms"},
      {"__name__", true, "x__name__"},    {"", true, "_"},          {"a:b", true, "a_b"},
      {"a:b", false, "a:b"},              {"é", false, "__"},      {"api-errors", false, "api_errors"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *got = prom_sanitize_name(cases[i].in, strlen(cases[i].in), cases[i].label);
    is_str(got, cases[i].want, "sanitised %s name of \"%s\"", cases[i].label ? "label" : "metric", cases[i].in);
    ok(got && prom_valid_name(got, cases[i].label), "... which Prometheus takes");
    free(got);
  }
}

static void label_values(void) {
  struct {
    sluice_value_t v;
    const char *want;
  } cases[] = {
      {{.type = SLUICE_VALUE_STRING, .s = "/cart?x=\"1\"", .len = 11}, "/cart?x=\"1\""},
      {{.type = SLUICE_VALUE_STRING, .s = "a\0b", .len = 3}, "a?b"},
      {{.type = SLUICE_VALUE_INT, .i = -42}, "-42"},
      {{.type = SLUICE_VALUE_FLOAT, .f = 2.0}, "2"},
      {{.type = SLUICE_VALUE_FLOAT, .f = 0.1}, "0.1"},
      {{.type = SLUICE_VALUE_FLOAT, .f = 1e300}, "1e+300"},
      {{.type = SLUICE_VALUE_BOOL, .b = true}, "true"},
      {{.type = SLUICE_VALUE_NULL}, ""},
      {{.type = SLUICE_VALUE_OTHER}, ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *got = prom_label_text(&cases[i].v);
    is_str(got, cases[i].want, "label text %zu", i);
    free(got);
  }
  double x;
  ok(prom_sample_value(&(sluice_value_t){.type = SLUICE_VALUE_INT, .i = 7}, &x) && x == 7, "an integer sample");
  ok(prom_sample_value(&(sluice_value_t){.type = SLUICE_VALUE_BOOL, .b = false}, &x) && x == 0, "a boolean as 0");
  ok(!prom_sample_value(&(sluice_value_t){.type = SLUICE_VALUE_STRING, .s = "1", .len = 1}, &x) &&
         !prom_sample_value(&(sluice_value_t){.type = SLUICE_VALUE_NULL}, &x),
     "a string or null is no sample");
}

/* ---- buckets ---- */

#define ALPHA 0.01
static double gamma_(void) { return (1 + ALPHA) / (1 - ALPHA); }

/* The DDSketch bin of x > 0: (gamma^(i-1), gamma^i], i = ceil(log_gamma x). */
static sluice_bin_t bin_of(double x, uint64_t count) {
  double lg = log1p(2 * ALPHA / (1 - ALPHA));
  int i = (int)ceil(log(x) / lg);
  return (sluice_bin_t){exp((i - 1) * lg), exp(i * lg), count};
}

static void layouts(void) {
  prom_layout_t l;
  is_int(prom_layout_explicit(&l, (const double[]){1, 1}, 2), -1, "explicit bounds must ascend");
  is_int(prom_layout_explicit(&l, (const double[]){1, INFINITY}, 2), -1, "... and be finite");
  is_int(prom_layout_explicit(&l, NULL, 0), -1, "... and be there");
  is_int(prom_layout_grid(&l, ALPHA, 0, 10, 40), -1, "a grid needs min > 0");
  is_int(prom_layout_grid(&l, ALPHA, 10, 10, 40), -1, "... and max > min");
  is_int(prom_layout_grid(&l, ALPHA, 1, 10, 2), -1, "... and at least 3 buckets");

  /* 1..1000 spans ln(1000)/ln(gamma) = 345 sketch edges: k = 1 fits 400. */
  is_int(prom_layout_grid(&l, ALPHA, 1, 1000, 400), 0, "a grid of the sketch's edges");
  is_int(l.k, 1, "k = 1 when every edge fits");
  ok(l.bounds[0] <= 1 && l.bounds[l.n - 1] >= 1000 && l.n <= 400, "covers [1, 1000] in %zu bounds", l.n);
  bool ratio = true;
  for (size_t i = 1; i < l.n; i++) ratio &= fabs(l.bounds[i] / l.bounds[i - 1] - gamma_()) < 1e-9;
  ok(ratio, "consecutive bounds gamma apart");
  prom_layout_free(&l);

  is_int(prom_layout_grid(&l, ALPHA, 0.001, 100000, 40), 0, "the default grid");
  ok(l.n <= 40 && l.bounds[0] <= 0.001 && l.bounds[l.n - 1] >= 100000, "at most 40 bounds over [0.001, 1e5]: %zu, k %u",
     l.n, l.k);
  double lg = log1p(2 * ALPHA / (1 - ALPHA));
  bool aligned = true;
  for (size_t i = 0; i < l.n; i++) {
    double e = log(l.bounds[i]) / lg / l.k;
    aligned &= fabs(e - round(e)) < 1e-6;
  }
  ok(aligned, "every bound is a sketch edge gamma^(k j)");
  prom_layout_t again;
  prom_layout_grid(&again, ALPHA, 0.001, 100000, 40);
  ok(again.n == l.n && !memcmp(again.bounds, l.bounds, l.n * sizeof *l.bounds),
     "the same options give the same bounds (instances can be summed)");
  prom_layout_free(&again);
  prom_layout_free(&l);
  is_int(prom_layout_grid(&l, ALPHA, 0.5, 2, 3), 0, "a range across 1 in 3 bounds");
  ok(l.n == 3 && l.bounds[0] <= 0.5 && l.bounds[2] >= 2, "... covers it");
  prom_layout_free(&l);
}

static void histograms(void) {
  /* Values 1..1000, one each, as sketch bins. */
  sluice_bin_t bins[1100];
  size_t nb = 0;
  double exact_sum = 0;
  for (int v = 1; v <= 1000; v++) {
    sluice_bin_t b = bin_of(v, 1);
    exact_sum += v;
    if (nb && fabs(bins[nb - 1].upper - b.upper) < 1e-9 * b.upper)
      bins[nb - 1].count++;
    else
      bins[nb++] = b;
  }
  prom_layout_t l;
  prom_layout_grid(&l, ALPHA, 1, 1000, 400);
  uint64_t cum[500];
  double sum;
  prom_histogram(&l, bins, nb, cum, &sum);
  bool exact = true;
  for (size_t i = 0; i < l.n; i++) {
    uint64_t want = 0;
    for (int v = 1; v <= 1000; v++) {
      sluice_bin_t b = bin_of(v, 1);
      if (b.upper <= l.bounds[i] * (1 + 1e-12)) want++;
    }
    if (cum[i] != want) {
      exact = false;
      printf("# le=%g: %llu, want %llu\n", l.bounds[i], (unsigned long long)cum[i], (unsigned long long)want);
    }
  }
  ok(exact, "on the sketch's grid each bin is counted in its own bucket");
  is_int(cum[l.n], 1000, "+Inf holds every value");
  ok(fabs(sum - exact_sum) <= ALPHA * exact_sum, "the sum of the bins' middles is within 1%% (%.1f vs %.1f)", sum,
     exact_sum);
  prom_layout_free(&l);

  prom_layout_explicit(&l, (const double[]){-10, 0, 5, 100}, 4);
  sluice_bin_t mixed[] = {
      {-20.4, -20, 2}, /* middle -20.2: at or below -10 */
      {-0.0102, -0.01, 1},
      {0, 0, 3},            /* zeros */
      bin_of(5, 4),         /* middle within 1% of 5: at le=5 or the next */
      bin_of(50, 1),
      bin_of(1e6, 2),       /* past every bound: +Inf only */
  };
  uint64_t c[5];
  prom_histogram(&l, mixed, 6, c, &sum);
  double mid5 = prom_bin_middle(&mixed[3]);
  uint64_t want5 = mid5 <= 5 ? 10 : 6;
  ok(c[0] == 2 && c[1] == 6 && c[2] == want5 && c[3] == 11 && c[4] == 13,
     "user bounds: negatives, zeros, a bin by its middle, +Inf (%llu %llu %llu %llu %llu)", (unsigned long long)c[0],
     (unsigned long long)c[1], (unsigned long long)c[2], (unsigned long long)c[3], (unsigned long long)c[4]);
  ok(fabs(prom_bin_middle(&mixed[0]) + 20.2) < 0.01, "a negative bin's middle is negative");
  prom_layout_free(&l);
}

/* ---- the table ---- */

static prom_outcome_t put(prom_table_t *t, const char *metric, const char *page, uint64_t id, int64_t start,
                          bool final, double n, int64_t now) {
  sluice_label_t l[] = {{"page", page}};
  prom_value_t v[] = {{"n", n}};
  prom_row_t r = {.metric = metric, .job = "pv", .id = id, .window_start = start, .window_end = start + 10,
                  .final = final, .labels = l, .n_labels = 1, .values = v, .n_values = 1};
  return prom_table_apply(t, &r, now);
}

/* "page=value ..." of the table, in order, for metric m. */
static const char *shown(prom_table_t *t) {
  static char out[512];
  out[0] = '\0';
  for (const prom_series_t *e = prom_table_first(t); e; e = e->next) {
    size_t at = strlen(out);
    snprintf(out + at, sizeof out - at, "%s%s:%s=%g@%lld", at ? " " : "", e->metric, e->labels[0].value,
             e->values[0].value, (long long)e->window_start);
  }
  return out;
}

static void table_window(void) {
  prom_table_t *t = prom_table_new(3, true, 0);
  is_int(put(t, "pv", "/a", 1, 0, true, 5, 0), PROM_ADDED, "a row adds its label set");
  is_int(put(t, "pv", "/b", 2, 0, true, 6, 0), PROM_ADDED, "another");
  is_int(put(t, "pv", "/a", 1, 0, true, 5, 0), PROM_REPLACED, "the same row again replaces (a retry)");
  is_int(put(t, "pv", "/a", 3, 10, true, 7, 0), PROM_REPLACED, "the next window's row for /a");
  is_str(shown(t), "pv:/a=7@10", "the newest window only: /b had no record in it and is gone");
  is_int(put(t, "pv", "/b", 2, 0, true, 6, 0), PROM_OLDER, "a row of an older window is ignored");
  is_int(put(t, "pv", "/c", 4, 20, false, 1, 0), PROM_ADDED, "an early row of an open window");
  is_str(shown(t), "pv:/a=7@10 pv:/c=1@20", "is shown beside the closed window");
  is_int(put(t, "pv", "/a", 5, 20, false, 2, 0), PROM_REPLACED, "an early row replaces the closed one of its key");
  is_int(put(t, "pv", "/a", 5, 20, true, 3, 0), PROM_REPLACED, "and its final row the early one");
  is_int(put(t, "pv", "/d", 6, 20, true, 4, 0), PROM_ADDED, "a third label set");
  is_int(put(t, "pv", "/e", 7, 20, true, 4, 0), PROM_DROPPED, "a fourth is past max_series = 3");
  is_int(put(t, "pv", "/d", 8, 20, true, 9, 0), PROM_COLLIDED, "another row of the window with /d's labels");
  is_str(shown(t), "pv:/a=3@20 pv:/c=1@20 pv:/d=9@20", "replaced it (the newest row wins)");
  is_int(put(t, "other", "/a", 9, 0, true, 1, 0), PROM_DROPPED, "the cap counts every metric's label sets");
  is_int(put(t, "pv", "/a", 10, 30, true, 1, 0), PROM_REPLACED, "window 30 for /a");
  is_int(put(t, "other", "/a", 9, 0, true, 1, 0), PROM_ADDED, "room again: window 20's /c and /d left");
  is_str(shown(t), "pv:/a=1@30 other:/a=1@0", "each metric shows its own newest window");
  is_int(prom_table_expire(t, 1000000), 0, "expire 0: nothing expires");
  prom_table_free(t);
}

static void table_latest(void) {
  prom_table_t *t = prom_table_new(10, false, 1000);
  put(t, "pv", "/a", 1, 0, true, 5, 0);
  put(t, "pv", "/b", 2, 0, true, 6, 500);
  put(t, "pv", "/a", 3, 10, true, 7, 900);
  is_str(shown(t), "pv:/a=7@10 pv:/b=6@0", "latest: each key keeps its newest row");
  is_int(put(t, "pv", "/a", 1, 0, true, 5, 950), PROM_OLDER, "an older window is still ignored");
  is_int(prom_table_expire(t, 1499), 0, "nothing expires before its time");
  is_int(prom_table_expire(t, 1500), 1, "/b expires 1 s after its row");
  is_str(shown(t), "pv:/a=7@10", "/a, updated later, stays");
  is_int(prom_table_size(t), 1, "one label set left");
  prom_table_free(t);

  /* Values and histograms are copied. */
  t = prom_table_new(10, true, 0);
  uint64_t cum[] = {1, 3, 4};
  prom_hist_t h[] = {{"lat", "p99", cum, 12.5}};
  char name[] = "n";
  prom_value_t v[] = {{name, 2}};
  sluice_label_t l[] = {{"page", "/a"}, {"env", "prod"}};
  prom_row_t r = {.metric = "pv", .job = "pv", .id = 1, .window_start = 0, .window_end = 10, .final = true,
                  .labels = l, .n_labels = 2, .values = v, .n_values = 1, .hists = h, .n_hists = 1, .n_bounds = 2};
  prom_table_apply(t, &r, 0);
  cum[0] = 99;
  name[0] = 'x';
  const prom_series_t *e = prom_table_first(t);
  ok(e && e->n_hists == 1 && e->hists[0].cumulative[0] == 1 && e->hists[0].cumulative[2] == 4 &&
         e->hists[0].sum == 12.5 && !strcmp(e->hists[0].column, "p99") && !strcmp(e->values[0].name, "n") &&
         e->n_labels == 2 && !strcmp(e->labels[1].value, "prod"),
     "a series holds copies of its row's labels, values and histograms");
  prom_table_free(t);
}

int main(void) {
  names();
  label_values();
  layouts();
  histograms();
  table_window();
  table_latest();
  return tap_done();
}
