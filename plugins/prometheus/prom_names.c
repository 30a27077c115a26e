/* Names and label values of the prometheus sink (prom_names.h).  Pure. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup under -std=c11 */
#endif

#include "prom_names.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool name_char(char c, bool first, bool label) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (c == ':') return !label;
  return !first && c >= '0' && c <= '9';
}

bool prom_valid_name(const char *s, bool label) {
  if (!s || !*s || (label && !strncmp(s, "__", 2))) return false;
  for (size_t i = 0; s[i]; i++)
    if (!name_char(s[i], i == 0, label)) return false;
  return true;
}

char *prom_sanitize_name(const char *s, size_t n, bool label) {
  bool digit = n && s[0] >= '0' && s[0] <= '9';
  bool reserved = label && n >= 2 && s[0] == '_' && s[1] == '_';
  size_t pre = digit || reserved || !n ? 1 : 0;
  char *out = malloc(pre + n + 1);
  if (!out) return NULL;
  if (pre) out[0] = reserved ? 'x' : '_';
  for (size_t i = 0; i < n; i++) out[pre + i] = name_char(s[i], false, label) ? s[i] : '_';
  out[pre + n] = '\0';
  return out;
}

char *prom_label_text(const sluice_value_t *v) {
  char num[40];
  switch (v->type) {
  case SLUICE_VALUE_STRING: {
    char *out = malloc(v->len + 1);
    if (!out) return NULL;
    memcpy(out, v->s, v->len);
    out[v->len] = '\0';
    /* A NUL inside the value would end it early: make it visible. */
    for (size_t i = 0; i < v->len; i++)
      if (!out[i]) out[i] = '?';
    return out;
  }
  case SLUICE_VALUE_INT: snprintf(num, sizeof num, "%" PRId64, v->i); break;
  case SLUICE_VALUE_FLOAT:
    if (v->f > -0x1p53 && v->f < 0x1p53 && v->f == (double)(int64_t)v->f) {
      snprintf(num, sizeof num, "%" PRId64, (int64_t)v->f);
    } else {
      for (int prec = 15; prec <= 17; prec++) {
        snprintf(num, sizeof num, "%.*g", prec, v->f);
        if (strtod(num, NULL) == v->f) break;
      }
    }
    break;
  case SLUICE_VALUE_BOOL: snprintf(num, sizeof num, "%s", v->b ? "true" : "false"); break;
  default: num[0] = '\0'; break;
  }
  return strdup(num);
}

bool prom_sample_value(const sluice_value_t *v, double *out) {
  switch (v->type) {
  case SLUICE_VALUE_INT: *out = (double)v->i; return true;
  case SLUICE_VALUE_FLOAT: *out = v->f; return true;
  case SLUICE_VALUE_BOOL: *out = v->b ? 1 : 0; return true;
  default: return false;
  }
}
