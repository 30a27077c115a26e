/* Counter storage and the Prometheus text exposition.  Loop thread only. */
#include "metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

uint64_t sl_metrics[SL_M__COUNT];

static const struct {
  const char *name, *labels, *type, *help;
} metric_info[] = {
#define SL_METRIC_INFO(id, name, labels, type, help) {name, labels, type, help},
    SL_METRICS_MAP(SL_METRIC_INFO)
#undef SL_METRIC_INFO
};

int sl_metrics_render(sl_buf_t *out) {
  char line[512];
  const char *prev = "";
  for (int i = 0; i < SL_M__COUNT; i++) {
    int n;
    if (strcmp(prev, metric_info[i].name) != 0) {
      n = snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", metric_info[i].name,
                   metric_info[i].help, metric_info[i].name, metric_info[i].type);
      if (sl_buf_append(out, line, (size_t)n)) return SL_ENOMEM;
      prev = metric_info[i].name;
    }
    if (*metric_info[i].labels)
      n = snprintf(line, sizeof line, "%s{%s} %" PRIu64 "\n", metric_info[i].name,
                   metric_info[i].labels, sl_metrics[i]);
    else
      n = snprintf(line, sizeof line, "%s %" PRIu64 "\n", metric_info[i].name, sl_metrics[i]);
    if (sl_buf_append(out, line, (size_t)n)) return SL_ENOMEM;
  }
  return 0;
}
