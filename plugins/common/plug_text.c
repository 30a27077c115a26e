/* Buffers, shortest numbers and ${field} templates for the sink plugins
 * (plug_text.h).  Pure; any thread.
 *
 * Why a template keeps the option's name: its errors reach an operator
 * either at start (`key "pv:${page": ...`) or per row in a dead letter or
 * a log line, and both must say which option to fix. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup under -std=c11 */
#endif

#include "plug_text.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffers ------------------------------------------------------------------ */

int pt_buf_append(pt_buf_t *b, const void *data, size_t n) {
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
      if (cap > SIZE_MAX / 2) return -1;
      cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, data, n);
  b->len += n;
  return 0;
}

int pt_buf_puts(pt_buf_t *b, const char *s) {
  return pt_buf_append(b, s, strlen(s));
}

void pt_buf_free(pt_buf_t *b) {
  free(b->p);
  *b = (pt_buf_t){0};
}

size_t pt_shortest(double d, char *b, size_t cap) {
  int n = 0;
  for (int prec = 1; prec <= 17; prec++) {
    n = snprintf(b, cap, "%.*g", prec, d);
    if (prec == 17 || strtod(b, NULL) == d) break;
  }
  return n > 0 ? (size_t)n : 0;
}

int pt_fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* ---- templates ------------------------------------------------------------------ */

struct pt_tmpl {
  char *source; /* as written, for messages */
  char *what;   /* the option's name */
  pt_part_t *parts;
  size_t n;
  bool fields;
};

void pt_tmpl_free(pt_tmpl_t *t) {
  if (!t) return;
  for (size_t i = 0; i < t->n; i++) free((char *)t->parts[i].text);
  free(t->parts);
  free(t->source);
  free(t->what);
  free(t);
}

static int add_part(pt_tmpl_t *t, const char *text, size_t len, bool field) {
  pt_part_t *parts = realloc(t->parts, (t->n + 1) * sizeof *parts);
  if (!parts) return -1;
  t->parts = parts;
  char *copy = malloc(len + 1);
  if (!copy) return -1;
  memcpy(copy, text, len);
  copy[len] = '\0';
  t->parts[t->n++] = (pt_part_t){copy, len, field};
  t->fields |= field;
  return 0;
}

int pt_tmpl_compile(const char *text, const char *what, pt_tmpl_t **out, char *err, size_t errlen) {
  *out = NULL;
  pt_tmpl_t *t = calloc(1, sizeof *t);
  if (!t || !(t->source = strdup(text)) || !(t->what = strdup(what))) goto nomem;
  const char *p = text;
  while (*p) {
    const char *open = strstr(p, "${");
    size_t lit = open ? (size_t)(open - p) : strlen(p);
    if (lit && add_part(t, p, lit, false)) goto nomem;
    if (!open) break;
    const char *close = strchr(open + 2, '}');
    if (!close) {
      snprintf(err, errlen, "%s \"%s\" has an unclosed \"${\"", what, text);
      goto fail;
    }
    if (close == open + 2) {
      snprintf(err, errlen, "%s \"%s\" has an empty \"${}\": write ${field} with a field of the row", what, text);
      goto fail;
    }
    if (memchr(open + 2, '$', (size_t)(close - open - 2))) {
      snprintf(err, errlen, "%s \"%s\": a placeholder cannot hold another one", what, text);
      goto fail;
    }
    if (add_part(t, open + 2, (size_t)(close - open - 2), true)) goto nomem;
    p = close + 1;
  }
  *out = t;
  return 0;
nomem:
  snprintf(err, errlen, "out of memory");
fail:
  pt_tmpl_free(t);
  return -1;
}

const char *pt_tmpl_source(const pt_tmpl_t *t) { return t->source; }
size_t pt_tmpl_nparts(const pt_tmpl_t *t) { return t->n; }
const pt_part_t *pt_tmpl_part(const pt_tmpl_t *t, size_t i) { return &t->parts[i]; }
bool pt_tmpl_has_fields(const pt_tmpl_t *t) { return t->fields; }

int pt_field_text(const pt_tmpl_t *t, const char *name, const sluice_host_t *host, const sluice_row_t *row,
                  pt_buf_t *out, char *why, size_t whylen) {
  sluice_value_t v = {0};
  if (!host->row_get(row, name, &v)) {
    /* A late record (to a job's late_sink) has its own fields only; its
     * job is still known. */
    const char *job = strcmp(name, "job") ? NULL : host->row_job(row);
    if (!job) {
      snprintf(why, whylen, "%s \"%s\": the row has no field \"%s\"", t->what, t->source, name);
      return -1;
    }
    v = (sluice_value_t){.type = SLUICE_VALUE_STRING, .s = job, .len = strlen(job)};
  }
  char b[64];
  int r;
  switch (v.type) {
    case SLUICE_VALUE_STRING:
      r = pt_buf_append(out, v.s, v.len);
      break;
    case SLUICE_VALUE_INT:
      r = pt_buf_append(out, b, (size_t)snprintf(b, sizeof b, "%" PRId64, v.i));
      break;
    case SLUICE_VALUE_BOOL:
      r = pt_buf_puts(out, v.b ? "true" : "false");
      break;
    case SLUICE_VALUE_FLOAT:
      if (!isfinite(v.f)) {
        snprintf(why, whylen, "%s \"%s\": field \"%s\" is not a finite number", t->what, t->source, name);
        return -1;
      }
      r = pt_buf_append(out, b, pt_shortest(v.f, b, sizeof b));
      break;
    default:
      snprintf(why, whylen, "%s \"%s\": field \"%s\" is %s", t->what, t->source, name,
               v.type == SLUICE_VALUE_NULL ? "null (missing in the records)" : "a map or an array");
      return -1;
  }
  if (r) snprintf(why, whylen, "out of memory");
  return r;
}

int pt_tmpl_render(const pt_tmpl_t *t, const sluice_host_t *host, const sluice_row_t *row, pt_buf_t *out, char *why,
                   size_t whylen) {
  for (size_t i = 0; i < t->n; i++) {
    const pt_part_t *part = &t->parts[i];
    if (part->field) {
      if (pt_field_text(t, part->text, host, row, out, why, whylen)) return -1;
    } else if (pt_buf_append(out, part->text, part->len)) {
      snprintf(why, whylen, "out of memory");
      return -1;
    }
  }
  return 0;
}
