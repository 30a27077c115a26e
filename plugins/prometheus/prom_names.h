/* Names and label values of the prometheus sink: a row's field names and a
 * job's name made into Prometheus metric and label names, and a row's
 * values into label text.  Pure; any thread. */
#ifndef PROM_NAMES_H
#define PROM_NAMES_H

#include <sluice/sink.h>
#include <stdbool.h>
#include <stddef.h>

/* Whether s is a metric name Prometheus takes ([a-zA-Z_:][a-zA-Z0-9_:]*)
 * or a label name (label: [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__"). */
bool prom_valid_name(const char *s, bool label);

/* s (n bytes) as a metric name (label: a label name): every byte outside
 * the allowed set becomes '_', a leading digit is preceded by '_', a label
 * name starting with "__" (Prometheus keeps those) by 'x', and an empty
 * name is "_".  `req.method` -> `req_method`, `99th` -> `_99th`.  Returns
 * a string to free, or NULL when out of memory. */
char *prom_sanitize_name(const char *s, size_t n, bool label);

/* A row value as label text: a string as it is (the registry escapes it),
 * an integer in decimal, a float in the fewest digits that read back as it
 * (integral ones as integers: 2.0 -> "2"), a boolean "true" / "false",
 * null, a map or an array "" (an empty value: Prometheus reads the label as
 * absent).  Returns a string to free, or NULL when out of memory. */
char *prom_label_text(const sluice_value_t *v);

/* A row value as a sample value: integers and floats as numbers, booleans
 * as 1 and 0.  False for null, strings, maps and arrays. */
bool prom_sample_value(const sluice_value_t *v, double *out);

#endif
