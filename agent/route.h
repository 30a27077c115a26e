/* Tag routes: which Kafka topic, format and key a record goes to.  Matching
 * tags against fluentd patterns, filling topic templates from the tag and
 * the record, and looking up record fields by path.  Pure. */
#ifndef SL_ROUTE_H
#define SL_ROUTE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "tag_match.h"

typedef enum { SL_FORMAT_JSON = 0, SL_FORMAT_MSGPACK } sl_format_t;

typedef struct sl_topic_tmpl sl_topic_tmpl_t;

/* A record field path such as "http.host": the parts, owned. */
typedef struct {
  char **parts;
  size_t n;
} sl_field_path_t;

typedef struct {
  sl_tag_pattern_t *match; /* owned */
  sl_topic_tmpl_t *topic;  /* owned */
  char *topic_text;        /* owned: as written, for logs */
  sl_format_t format;
  sl_field_path_t key;     /* n == 0: no key */
  char *tag_key;           /* owned or NULL */
  char *time_key;          /* owned or NULL */
  bool time_rfc3339;
} sl_route_t;

/* "${tag}", "${tag_parts[N]}" (N may be negative: from the end),
 * "${record.a.b}" and literal text.  SL_ETEMPLATE with a reason. */
int sl_topic_tmpl_compile(const char *text, sl_topic_tmpl_t **out, char *err, size_t errlen);
void sl_topic_tmpl_free(sl_topic_tmpl_t *t);
/* true when the template has no placeholders (a fixed topic). */
bool sl_topic_tmpl_is_fixed(const sl_topic_tmpl_t *t);

/* Appends the topic to `out` (not NUL-terminated).  SL_ETEMPLATE when a tag
 * part is out of range, a field is missing or not a string/number, or the
 * result is not a valid Kafka topic name; `why` then says which. */
int sl_topic_tmpl_render(const sl_topic_tmpl_t *t, const char *tag, size_t tag_len,
                         const msgpack_object *record, sl_buf_t *out, const char **why);

int sl_field_path_parse(const char *text, sl_field_path_t *out);
void sl_field_path_free(sl_field_path_t *p);
/* The value at `path` in a map, or NULL. */
const msgpack_object *sl_field_lookup(const msgpack_object *map, const sl_field_path_t *path);

/* Appends a scalar's text form (str/bin raw, numbers in decimal, bool);
 * SL_ERANGE for nil, arrays and maps. */
int sl_scalar_text(const msgpack_object *o, sl_buf_t *out);

/* The first route whose pattern matches, or NULL. */
const sl_route_t *sl_route_find(const sl_route_t *routes, size_t n, const char *tag, size_t len);

void sl_route_free(sl_route_t *r); /* the fields, not r itself */

#endif
