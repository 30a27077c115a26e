/* What the registry's two halves share: the text of the Prometheus
 * exposition (format 0.0.4) that both write, and the registry's view of a
 * published set.  Internal to agent/core/metrics*.c; any thread (pure
 * functions over their arguments). */
#ifndef SL_METRICS_TEXT_H
#define SL_METRICS_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/metrics.h"

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names (colon true); label names
 * without ':'. */
bool sl_metrics_valid_name(const char *s, bool colon);

/* A sample value: integral values as integers, others with the fewest
 * digits that read back as the same double; NaN, +Inf, -Inf. */
int sl_metrics_put_double(sl_buf_t *b, double v);

/* HELP text escapes \ and newline; label values (quote) also ". */
int sl_metrics_put_escaped(sl_buf_t *b, const char *s, bool quote);

/* "# HELP name help\n# TYPE name type\n". */
int sl_metrics_put_header(sl_buf_t *b, const char *name, const char *help, sl_metric_type_t type);

/* Whether two families would write the same sample name: the same name, or
 * a histogram's _bucket, _sum or _count that is the other's name. */
bool sl_metrics_names_clash(const char *a, sl_metric_type_t ta, const char *b, sl_metric_type_t tb);

/* A published set as the registry renders it: family i's name, type, help
 * and its samples' lines (HELP and TYPE not included). */
size_t sl_metrics_set_nfamilies(const sl_metrics_set_t *s);
const char *sl_metrics_set_family_name(const sl_metrics_set_t *s, size_t i, sl_metric_type_t *type);
int sl_metrics_set_render_family(const sl_metrics_set_t *s, size_t i, sl_buf_t *out);

#endif
