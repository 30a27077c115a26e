/* Routes: first match wins, topic templates, field paths, key text. */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "ingest/route.h"
#include "tap.h"

static msgpack_object record(msgpack_zone *z, const char *json_like_kv[][2], size_t n, msgpack_sbuffer *sb) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, n);
  for (size_t i = 0; i < n; i++) {
    msgpack_pack_str_with_body(&pk, json_like_kv[i][0], strlen(json_like_kv[i][0]));
    if (strcmp(json_like_kv[i][0], "num") == 0)
      msgpack_pack_int64(&pk, -42);
    else if (strcmp(json_like_kv[i][0], "http") == 0) {
      msgpack_pack_map(&pk, 1);
      msgpack_pack_str_with_body(&pk, "host", 4);
      msgpack_pack_str_with_body(&pk, json_like_kv[i][1], strlen(json_like_kv[i][1]));
    } else
      msgpack_pack_str_with_body(&pk, json_like_kv[i][1], strlen(json_like_kv[i][1]));
  }
  msgpack_object o;
  msgpack_unpack(sb->data, sb->size, NULL, z, &o);
  return o;
}

static const char *render(const char *tmpl, const char *tag, const msgpack_object *rec, int *rc) {
  static char out[512];
  char err[256];
  sl_topic_tmpl_t *t = NULL;
  out[0] = 0;
  *rc = sl_topic_tmpl_compile(tmpl, &t, err, sizeof err);
  if (*rc) {
    snprintf(out, sizeof out, "%s", err);
    return out;
  }
  sl_buf_t b = {0};
  const char *why = NULL;
  *rc = sl_topic_tmpl_render(t, tag, strlen(tag), rec, &b, &why);
  if (*rc)
    snprintf(out, sizeof out, "%s", why);
  else
    snprintf(out, sizeof out, "%.*s", (int)b.len, b.data);
  sl_buf_free(&b);
  sl_topic_tmpl_free(t);
  return out;
}

int main(void) {
  msgpack_zone z;
  msgpack_zone_init(&z, 1024);
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  const char *kv[][2] = {{"service", "api"}, {"http", "example.org"}, {"num", ""}, {"bad", "a/b"}};
  msgpack_object rec = record(&z, kv, 4, &sb);
  int rc;

  is_str(render("logs.app", "app.web", &rec, &rc), "logs.app", "fixed topic");
  is_str(render("logs.${tag}", "app.web", &rec, &rc), "logs.app.web", "${tag}");
  is_str(render("${tag_parts[0]}-${tag_parts[-1]}", "app.web.access", &rec, &rc), "app-access",
         "tag parts from the start and the end");
  is_str(render("t.${tag_parts[3]}", "app.web", &rec, &rc), "tag has fewer parts than the template's ${tag_parts[N]}",
         "tag part out of range");
  is_int(rc, SL_ETEMPLATE, "out of range is SL_ETEMPLATE");
  is_str(render("svc.${record.service}", "x", &rec, &rc), "svc.api", "record field");
  is_str(render("h.${record.http.host}", "x", &rec, &rc), "h.example.org", "nested record field");
  is_str(render("n${record.num}", "x", &rec, &rc), "n-42", "numeric field");
  is_str(render("x.${record.missing}", "x", &rec, &rc), "record has no such field for the template's ${record.*}",
         "missing field");
  render("x.${record.bad}", "x", &rec, &rc);
  is_int(rc, SL_ETEMPLATE, "a rendered name with '/' is refused");
  is_str(render("logs.${nope}", "x", &rec, &rc),
         "topic template \"logs.${nope}\": unknown placeholder \"${nope}\" (use ${tag}, ${tag_parts[N]} or "
         "${record.field})",
         "unknown placeholder refused at compile time");
  is_str(render("logs.${tag", "x", &rec, &rc), "topic template \"logs.${tag\" has an unclosed \"${\"", "unclosed");
  is_str(render("logs app", "x", &rec, &rc),
         "topic \"logs app\" has ' '; topic names use only letters, digits, '.', '_' and '-'", "bad literal");

  sl_route_t routes[3];
  memset(routes, 0, sizeof routes);
  char err[128];
  const char *pats[] = {"app.web.* nginx.*", "app.**", "**"};
  for (int i = 0; i < 3; i++) sl_tag_pattern_compile(pats[i], &routes[i].match, err, sizeof err);
  ok(sl_route_find(routes, 3, "app.web.x", 9) == &routes[0], "first match wins");
  ok(sl_route_find(routes, 3, "nginx.a", 7) == &routes[0], "second pattern of a route");
  ok(sl_route_find(routes, 3, "app.db.x", 8) == &routes[1], "falls through to the next route");
  ok(sl_route_find(routes, 3, "other", 5) == &routes[2], "catch-all");
  ok(sl_route_find(routes, 2, "other", 5) == NULL, "no match");
  for (int i = 0; i < 3; i++) sl_route_free(&routes[i]);

  /* A route table (what a reload swaps in) is a copy: it matches and
   * renders like its source after the source is gone. */
  sl_route_t src[2];
  memset(src, 0, sizeof src);
  src[0].match_text = strdup("app.**");
  src[0].topic_text = strdup("logs.${tag_parts[1]}");
  src[0].key_text = strdup("http.host");
  src[1].match_text = strdup("**");
  src[1].topic_text = strdup("other");
  for (int i = 0; i < 2; i++) {
    sl_tag_pattern_compile(src[i].match_text, &src[i].match, err, sizeof err);
    sl_topic_tmpl_compile(src[i].topic_text, &src[i].topic, err, sizeof err);
  }
  sl_field_path_parse(src[0].key_text, &src[0].key);
  sl_route_table_t *table = NULL;
  is_int(sl_route_table_new(src, 2, &table), 0, "a route table is made from the config's routes");
  for (int i = 0; i < 2; i++) sl_route_free(&src[i]);
  ok(table && table->n == 2 && table->refs == 1 && !table->handles[0] && !table->handles[1],
     "two routes, one reference, no handles yet");
  const sl_route_t *hit = sl_route_find(table->routes, table->n, "app.web", 7);
  ok(hit == &table->routes[0] && hit->key.n == 2, "the copy matches and keeps its key path");
  sl_buf_t topic = {0};
  const char *why = NULL;
  is_int(sl_topic_tmpl_render(hit->topic, "app.web", 7, &rec, &topic, &why), 0, "the copy's template renders");
  ok(topic.len == 8 && memcmp(topic.data, "logs.web", 8) == 0, "to logs.web");
  sl_buf_free(&topic);
  ok(sl_route_find(table->routes, table->n, "x", 1) == &table->routes[1], "the catch-all copied too");
  sl_route_table_ref(table);
  sl_route_table_unref(table);
  is_int((int)table->refs, 1, "a held reference keeps the table");
  sl_route_table_unref(table);
  sl_route_table_unref(NULL);

  sl_field_path_t p;
  is_int(sl_field_path_parse("http.host", &p), 0, "field path parses");
  const msgpack_object *v = sl_field_lookup(&rec, &p);
  ok(v && v->type == MSGPACK_OBJECT_STR && v->via.str.size == 11, "lookup nested field");
  sl_field_path_free(&p);
  is_int(sl_field_path_parse("a..b", &p), SL_ESYNTAX, "empty path part refused");
  sl_buf_t b = {0};
  msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
  is_int(sl_scalar_text(&nil, &b), SL_ERANGE, "nil has no key text");
  sl_buf_free(&b);

  msgpack_sbuffer_destroy(&sb);
  msgpack_zone_destroy(&z);
  return tap_done();
}
