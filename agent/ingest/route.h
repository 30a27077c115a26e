/* Tag routes: which Kafka topic, format and key a record goes to.  Matching
 * tags against fluentd patterns, filling topic templates from the tag and
 * the record, and looking up record fields by path.  Pure. */
#ifndef SL_ROUTE_H
#define SL_ROUTE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "ingest/tag_match.h"

typedef enum { SL_FORMAT_JSON = 0, SL_FORMAT_MSGPACK } sl_format_t;

typedef struct sl_topic_tmpl sl_topic_tmpl_t;

/* A record field path such as "http.host": the parts, owned. */
typedef struct {
  char **parts;
  size_t n;
} sl_field_path_t;

typedef struct {
  /* Bound from the [[route]] table (owned): */
  char *match_text;
  char *topic_text;  /* as written, for logs */
  int format;        /* sl_format_t */
  char *key_text;
  char *tag_key;     /* or NULL */
  char *time_key;    /* or NULL */
  int time_format;   /* 0 epoch, 1 rfc3339 */
  /* Compiled by route_conf.c's finish hook (owned): */
  sl_tag_pattern_t *match;
  sl_topic_tmpl_t *topic;
  sl_field_path_t key;     /* n == 0: no key */
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

/* Frees the compiled parts (sl_route_release) and the strings; not r
 * itself. */
void sl_route_free(sl_route_t *r);
/* Frees the compiled parts only (the config binding owns the strings). */
void sl_route_release(sl_route_t *r);

/* A set of routes as one unit, so that a reload can swap every route at
 * once while messages already routed keep the set they were routed with.
 * Owns copies of its routes (compiled anew: it does not depend on the
 * config it was copied from).  `handles` has one slot per route for its
 * owner (the ingest keeps a fixed topic's producer handle there), NULL at
 * first.  Reference-counted, one thread only. */
typedef struct {
  sl_route_t *routes;
  void **handles;
  size_t n;
  unsigned refs;
} sl_route_table_t;

/* Copies routes[0..n) (bound and compiled, as the config holds them) into
 * a new table with one reference.  SL_ENOMEM, or SL_ETEMPLATE / SL_ESYNTAX
 * when a route does not compile (a route that passed the config does). */
int sl_route_table_new(const sl_route_t *routes, size_t n, sl_route_table_t **out);
void sl_route_table_ref(sl_route_table_t *t);
/* Drops a reference; the last one frees the table.  Accepts NULL. */
void sl_route_table_unref(sl_route_table_t *t);

/* The [[route]] section, bound to sl_route_t (route_conf.c). */
typedef struct sl_section sl_section_t;
extern const sl_section_t sl_route_section;

#endif
