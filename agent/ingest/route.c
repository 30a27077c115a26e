/* Route lookup, topic templates and route tables.  Pure; runs on the loop
 * thread. */
#include "ingest/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtoa.h"
#include "core/error.h"

typedef enum { PART_TEXT, PART_TAG, PART_TAG_PART, PART_FIELD } part_kind_t;

typedef struct {
  part_kind_t kind;
  char *text; /* PART_TEXT */
  int index;  /* PART_TAG_PART */
  sl_field_path_t field;
} tmpl_part_t;

struct sl_topic_tmpl {
  tmpl_part_t *parts;
  size_t n;
};

static int add_part(sl_topic_tmpl_t *t, tmpl_part_t p) {
  tmpl_part_t *parts = realloc(t->parts, (t->n + 1) * sizeof *parts);
  if (!parts) return SL_ENOMEM;
  t->parts = parts;
  t->parts[t->n++] = p;
  return 0;
}

void sl_topic_tmpl_free(sl_topic_tmpl_t *t) {
  if (!t) return;
  for (size_t i = 0; i < t->n; i++) {
    free(t->parts[i].text);
    sl_field_path_free(&t->parts[i].field);
  }
  free(t->parts);
  free(t);
}

bool sl_topic_tmpl_is_fixed(const sl_topic_tmpl_t *t) {
  return t->n == 1 && t->parts[0].kind == PART_TEXT;
}

static bool topic_char_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

int sl_topic_tmpl_compile(const char *text, sl_topic_tmpl_t **out, char *err, size_t errlen) {
  sl_topic_tmpl_t *t = calloc(1, sizeof *t);
  if (!t) return SL_ENOMEM;
  const char *p = text;
  int r = 0;
  if (!*p) {
    snprintf(err, errlen, "topic is empty");
    r = SL_ETEMPLATE;
    goto fail;
  }
  while (*p) {
    const char *open = strstr(p, "${");
    size_t lit = open ? (size_t)(open - p) : strlen(p);
    if (lit) {
      for (size_t i = 0; i < lit; i++)
        if (!topic_char_ok(p[i])) {
          snprintf(err, errlen, "topic \"%s\" has '%c'; topic names use only letters, digits, '.', '_' and '-'",
                   text, p[i]);
          r = SL_ETEMPLATE;
          goto fail;
        }
      tmpl_part_t part = {PART_TEXT, strndup(p, lit), 0, {0}};
      if (!part.text || (r = add_part(t, part))) {
        free(part.text);
        r = SL_ENOMEM;
        goto fail;
      }
    }
    if (!open) break;
    const char *close = strchr(open, '}');
    if (!close) {
      snprintf(err, errlen, "topic template \"%s\" has an unclosed \"${\"", text);
      r = SL_ETEMPLATE;
      goto fail;
    }
    char name[256];
    size_t nl = (size_t)(close - open - 2);
    if (nl >= sizeof name) nl = sizeof name - 1;
    memcpy(name, open + 2, nl);
    name[nl] = 0;
    tmpl_part_t part = {0};
    int idx;
    char end;
    if (strcmp(name, "tag") == 0) {
      part.kind = PART_TAG;
    } else if (sscanf(name, "tag_parts[%d%c", &idx, &end) == 2 && end == ']' &&
               name[strlen(name) - 1] == ']') {
      part.kind = PART_TAG_PART;
      part.index = idx;
    } else if (strncmp(name, "record.", 7) == 0 && name[7]) {
      part.kind = PART_FIELD;
      if (sl_field_path_parse(name + 7, &part.field)) {
        snprintf(err, errlen, "topic template \"%s\": bad field path \"%s\"", text, name + 7);
        r = SL_ETEMPLATE;
        goto fail;
      }
    } else {
      snprintf(err, errlen,
               "topic template \"%s\": unknown placeholder \"${%s}\" (use ${tag}, ${tag_parts[N]} or "
               "${record.field})",
               text, name);
      r = SL_ETEMPLATE;
      goto fail;
    }
    if ((r = add_part(t, part))) {
      sl_field_path_free(&part.field);
      goto fail;
    }
    p = close + 1;
  }
  *out = t;
  return 0;
fail:
  sl_topic_tmpl_free(t);
  return r;
}

int sl_topic_tmpl_render(const sl_topic_tmpl_t *t, const char *tag, size_t tag_len,
                         const msgpack_object *record, sl_buf_t *out, const char **why) {
  size_t start = out->len;
  for (size_t i = 0; i < t->n; i++) {
    const tmpl_part_t *p = &t->parts[i];
    int r = 0;
    switch (p->kind) {
    case PART_TEXT: r = sl_buf_puts(out, p->text); break;
    case PART_TAG: r = sl_buf_append(out, tag, tag_len); break;
    case PART_TAG_PART: {
      size_t nparts = 1;
      for (size_t j = 0; j < tag_len; j++) nparts += tag[j] == '.';
      long want = p->index < 0 ? (long)nparts + p->index : p->index;
      if (want < 0 || want >= (long)nparts) {
        *why = "tag has fewer parts than the template's ${tag_parts[N]}";
        return SL_ETEMPLATE;
      }
      size_t s = 0, k = 0;
      while (k < (size_t)want) k += tag[s++] == '.';
      size_t e = s;
      while (e < tag_len && tag[e] != '.') e++;
      r = sl_buf_append(out, tag + s, e - s);
      break;
    }
    case PART_FIELD: {
      const msgpack_object *v = sl_field_lookup(record, &p->field);
      if (!v) {
        *why = "record has no such field for the template's ${record.*}";
        return SL_ETEMPLATE;
      }
      if (sl_scalar_text(v, out)) {
        *why = "record field for the template's ${record.*} is not a string or number";
        return SL_ETEMPLATE;
      }
      break;
    }
    }
    if (r) return r;
  }
  size_t n = out->len - start;
  if (n == 0 || n > 249) {
    *why = "rendered topic name is empty or longer than 249 characters";
    return SL_ETEMPLATE;
  }
  for (size_t i = start; i < out->len; i++)
    if (!topic_char_ok(out->data[i])) {
      *why = "rendered topic name has characters other than letters, digits, '.', '_' and '-'";
      return SL_ETEMPLATE;
    }
  return 0;
}

int sl_field_path_parse(const char *text, sl_field_path_t *out) {
  memset(out, 0, sizeof *out);
  if (!*text) return SL_ESYNTAX;
  const char *p = text;
  for (;;) {
    const char *dot = strchr(p, '.');
    size_t l = dot ? (size_t)(dot - p) : strlen(p);
    if (l == 0) goto fail;
    char **parts = realloc(out->parts, (out->n + 1) * sizeof *parts);
    if (!parts) goto fail;
    out->parts = parts;
    if (!(out->parts[out->n] = strndup(p, l))) goto fail;
    out->n++;
    if (!dot) return 0;
    p = dot + 1;
  }
fail:
  sl_field_path_free(out);
  return SL_ESYNTAX;
}

void sl_field_path_free(sl_field_path_t *p) {
  for (size_t i = 0; i < p->n; i++) free(p->parts[i]);
  free(p->parts);
  p->parts = NULL;
  p->n = 0;
}

const msgpack_object *sl_field_lookup(const msgpack_object *map, const sl_field_path_t *path) {
  const msgpack_object *cur = map;
  for (size_t i = 0; i < path->n; i++) {
    if (cur->type != MSGPACK_OBJECT_MAP) return NULL;
    size_t want = strlen(path->parts[i]);
    const msgpack_object *next = NULL;
    for (uint32_t j = 0; j < cur->via.map.size; j++) {
      const msgpack_object *k = &cur->via.map.ptr[j].key;
      const char *kp = NULL;
      uint32_t kl = 0;
      if (k->type == MSGPACK_OBJECT_STR) kp = k->via.str.ptr, kl = k->via.str.size;
      else if (k->type == MSGPACK_OBJECT_BIN) kp = k->via.bin.ptr, kl = k->via.bin.size;
      if (kp && kl == want && memcmp(kp, path->parts[i], want) == 0) {
        next = &cur->via.map.ptr[j].val;
        break;
      }
    }
    if (!next) return NULL;
    cur = next;
  }
  return cur;
}

int sl_scalar_text(const msgpack_object *o, sl_buf_t *out) {
  char b[SL_DTOA_BUF];
  size_t n;
  switch (o->type) {
  case MSGPACK_OBJECT_STR: return sl_buf_append(out, o->via.str.ptr, o->via.str.size);
  case MSGPACK_OBJECT_BIN: return sl_buf_append(out, o->via.bin.ptr, o->via.bin.size);
  case MSGPACK_OBJECT_POSITIVE_INTEGER: n = sl_dtoa_u64(o->via.u64, b); break;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER: n = sl_dtoa_i64(o->via.i64, b); break;
  /* The shortest digits that read back ("0.1", not "0.10000000000000001";
   * a float32 as the float it is: "0.1", not "0.10000000149011612") in the
   * notation %.17g chose before, which keeps whole numbers below 1e17 in
   * digits ("3", "1000000000000000": a topic name cannot have a '+'). */
  case MSGPACK_OBJECT_FLOAT32: n = sl_dtoa_float((float)o->via.f64, b, SL_DTOA_AS_17G); break;
  case MSGPACK_OBJECT_FLOAT64: n = sl_dtoa_double(o->via.f64, b, SL_DTOA_AS_17G); break;
  case MSGPACK_OBJECT_BOOLEAN: return sl_buf_puts(out, o->via.boolean ? "true" : "false");
  default: return SL_ERANGE;
  }
  return sl_buf_append(out, b, n);
}

const sl_route_t *sl_route_find(const sl_route_t *routes, size_t n, const char *tag, size_t len) {
  for (size_t i = 0; i < n; i++)
    if (sl_tag_pattern_match(routes[i].match, tag, len)) return &routes[i];
  return NULL;
}

void sl_route_release(sl_route_t *r) {
  sl_tag_pattern_free(r->match);
  sl_topic_tmpl_free(r->topic);
  sl_field_path_free(&r->key);
  r->match = NULL;
  r->topic = NULL;
}

void sl_route_free(sl_route_t *r) {
  sl_route_release(r);
  free(r->match_text);
  free(r->topic_text);
  free(r->key_text);
  free(r->tag_key);
  free(r->time_key);
  memset(r, 0, sizeof *r);
}

static int strdup_opt(const char *src, char **dst) {
  *dst = NULL;
  if (src && !(*dst = strdup(src))) return SL_ENOMEM;
  return 0;
}

/* A route's strings copied and its parts compiled again, as route_conf.c's
 * finish hook compiles them from the same strings. */
static int route_copy(sl_route_t *dst, const sl_route_t *src) {
  char err[256];
  memset(dst, 0, sizeof *dst);
  dst->format = src->format;
  dst->time_format = src->time_format;
  dst->time_rfc3339 = src->time_rfc3339;
  int r = strdup_opt(src->match_text, &dst->match_text);
  if (!r) r = strdup_opt(src->topic_text, &dst->topic_text);
  if (!r) r = strdup_opt(src->key_text, &dst->key_text);
  if (!r) r = strdup_opt(src->tag_key, &dst->tag_key);
  if (!r) r = strdup_opt(src->time_key, &dst->time_key);
  if (!r && dst->match_text) r = sl_tag_pattern_compile(dst->match_text, &dst->match, err, sizeof err);
  if (!r && dst->topic_text) r = sl_topic_tmpl_compile(dst->topic_text, &dst->topic, err, sizeof err);
  if (!r && dst->key_text) r = sl_field_path_parse(dst->key_text, &dst->key);
  return r;
}

int sl_route_table_new(const sl_route_t *routes, size_t n, sl_route_table_t **out) {
  sl_route_table_t *t = calloc(1, sizeof *t);
  if (!t) return SL_ENOMEM;
  t->refs = 1;
  int r = 0;
  if (n && (!(t->routes = calloc(n, sizeof *t->routes)) || !(t->handles = calloc(n, sizeof *t->handles)))) {
    r = SL_ENOMEM;
    goto fail;
  }
  for (; t->n < n; t->n++)
    if ((r = route_copy(&t->routes[t->n], &routes[t->n]))) {
      t->n++; /* freed with the others */
      goto fail;
    }
  *out = t;
  return 0;
fail:
  sl_route_table_unref(t);
  return r;
}

void sl_route_table_ref(sl_route_table_t *t) { t->refs++; }

void sl_route_table_unref(sl_route_table_t *t) {
  if (!t || --t->refs) return;
  for (size_t i = 0; i < t->n; i++) sl_route_free(&t->routes[i]);
  free(t->routes);
  free(t->handles);
  free(t);
}
