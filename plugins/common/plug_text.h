/* Text the sink plugins build alike: a growable byte buffer, the shortest
 * decimal of a double, error messages, and `${field}` templates (a Redis key, an index
 * name, a topic) filled from a row's fields.  Compiled into each plugin
 * that uses it (plugins/common), never exported; like the plugins, it
 * sees only the SDK header.  Pure: no I/O, any thread. */
#ifndef PLUG_TEXT_H
#define PLUG_TEXT_H

#include <sluice/sink.h>
#include <stdbool.h>
#include <stddef.h>

/* A growable byte buffer; zeroed is empty.  pt_buf_free releases it. */
typedef struct {
  char *p;
  size_t len, cap;
} pt_buf_t;

int pt_buf_append(pt_buf_t *b, const void *data, size_t n); /* 0 or -1 (out of memory) */
int pt_buf_puts(pt_buf_t *b, const char *s);
void pt_buf_free(pt_buf_t *b);

/* Writes the fewest significant digits that strtod reads back as d (in
 * %g's layout) into b (at least 32 bytes); returns the length. */
size_t pt_shortest(double d, char *b, size_t cap);

/* Writes the message into err (errlen bytes; none when NULL) and returns
 * -1: for a create or check that fails with a reason. */
int pt_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A compiled template: literal text and ${field} placeholders, in order.
 * Owned; pt_tmpl_free releases it. */
typedef struct pt_tmpl pt_tmpl_t;

typedef struct {
  const char *text; /* NUL-terminated: the literal, or the field's name */
  size_t len;
  bool field;
} pt_part_t;

/* 0 and *out, or -1 with the reason in err, which names the option `what`
 * ("key"): an unclosed "${", an empty "${}", a "${" inside a placeholder,
 * or out of memory. */
int pt_tmpl_compile(const char *text, const char *what, pt_tmpl_t **out, char *err, size_t errlen);
void pt_tmpl_free(pt_tmpl_t *t); /* accepts NULL */

const char *pt_tmpl_source(const pt_tmpl_t *t); /* as written */
size_t pt_tmpl_nparts(const pt_tmpl_t *t);
const pt_part_t *pt_tmpl_part(const pt_tmpl_t *t, size_t i);
bool pt_tmpl_has_fields(const pt_tmpl_t *t);

/* Appends the text of the row's field `name` to out: a string's bytes, an
 * integer in decimal, a finite float's shortest digits, true or false;
 * `job`, which a late record lacks among its fields, is its job.  -1 with
 * why, naming the template, when the row has no such field or it is null,
 * not finite, a map or an array, or when out of memory ("out of memory"). */
int pt_field_text(const pt_tmpl_t *t, const char *name, const sluice_host_t *host, const sluice_row_t *row,
                  pt_buf_t *out, char *why, size_t whylen);

/* Appends the whole template filled from row: the literals as written,
 * the fields as pt_field_text.  0, or -1 with why as pt_field_text. */
int pt_tmpl_render(const pt_tmpl_t *t, const sluice_host_t *host, const sluice_row_t *row, pt_buf_t *out, char *why,
                   size_t whylen);

#endif
