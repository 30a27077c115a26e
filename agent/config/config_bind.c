/* Binds a validated TOML document to the structs the option tables
 * describe: each option's value goes to its field by offset, so no module
 * reads an option by its name.  Also frees what it bound, and gives finish
 * hooks errors positioned at the option behind a field.  Pure; runs at
 * start (and on reload) on the main thread. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_schema.h"
#include "core/error.h"

/* Where each bound field came from, for sl_bind_error. */
typedef struct {
  const void *owner; /* the struct the field is in */
  const void *field; /* an option's field, or a child section's struct */
  char *path; /* owned: "input.forward.security.shared_key" */
  int line, col;
} bound_pos_t;

struct sl_bind_ctx {
  const char *file;
  sl_diag_t *d;
  size_t errors;
  bound_pos_t *pos;
  size_t n_pos, cap_pos;
  /* The section whose finish hook runs: errors about no particular field. */
  const char *section_path;
  int section_line, section_col;
  const void *finishing; /* that section's struct */
};

static void remember(sl_bind_ctx_t *ctx, const void *owner, const void *field, const char *path, int line,
                     int col) {
  if (ctx->n_pos == ctx->cap_pos) {
    size_t cap = ctx->cap_pos ? ctx->cap_pos * 2 : 64;
    bound_pos_t *p = realloc(ctx->pos, cap * sizeof *p);
    if (!p) return; /* errors then point at the section: still correct, less precise */
    ctx->pos = p;
    ctx->cap_pos = cap;
  }
  char *copy = strdup(path);
  if (!copy) return;
  ctx->pos[ctx->n_pos++] = (bound_pos_t){owner, field, copy, line, col};
}

static void report(sl_bind_ctx_t *ctx, int line, int col, const char *path, const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (path && *path)
    sl_diag_add(ctx->d, ctx->file, line, col, "%s: %s", path, msg);
  else
    sl_diag_add(ctx->d, ctx->file, line, col, "%s", msg);
  ctx->errors++;
}

/* A field's address can be shared: an inline table's struct and its first
 * option, a child section's struct and its first option.  The entry owned by
 * the struct being finished is meant, and of those the outermost (recorded
 * first); otherwise the latest entry for that address. */
static const bound_pos_t *find_pos(const sl_bind_ctx_t *ctx, const void *field) {
  if (!field) return NULL;
  for (size_t i = 0; i < ctx->n_pos; i++)
    if (ctx->pos[i].field == field && ctx->pos[i].owner == ctx->finishing) return &ctx->pos[i];
  for (size_t i = ctx->n_pos; i-- > 0;)
    if (ctx->pos[i].field == field) return &ctx->pos[i];
  return NULL;
}

void sl_bind_error(sl_bind_ctx_t *ctx, const void *field, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const bound_pos_t *p = find_pos(ctx, field);
  if (p)
    report(ctx, p->line, p->col, p->path, fmt, ap);
  else
    report(ctx, ctx->section_line, ctx->section_col, ctx->section_path, fmt, ap);
  va_end(ap);
}

void sl_bind_error_at(sl_bind_ctx_t *ctx, int line, int col, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(ctx, line, col, NULL, fmt, ap);
  va_end(ap);
}

const char *sl_bind_file(const sl_bind_ctx_t *ctx) { return ctx->file; }

/* ---- values ---------------------------------------------------------------- */

/* The text librdkafka-style consumers of a MAP want: strings as they are,
 * numbers in decimal, booleans as true/false. */
static char *scalar_text(const sl_toml_value_t *v) {
  char tmp[64];
  switch (v->type) {
  case SL_TOML_STRING: return strdup(v->u.str.ptr);
  case SL_TOML_INTEGER: snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i); break;
  case SL_TOML_FLOAT:
    /* The shortest text that reads back as the same double: 0.1, not
     * 0.10000000000000001. */
    for (int prec = 1; prec <= 17; prec++) {
      snprintf(tmp, sizeof tmp, "%.*g", prec, v->u.f);
      if (strtod(tmp, NULL) == v->u.f) break;
    }
    break;
  case SL_TOML_BOOL: return strdup(v->u.b ? "true" : "false");
  default: return NULL;
  }
  return strdup(tmp);
}

static int enum_index(const char *choices, const char *value) {
  size_t n = strlen(value);
  int i = 0;
  for (const char *p = choices; p; i++) {
    const char *bar = strchr(p, '|');
    size_t l = bar ? (size_t)(bar - p) : strlen(p);
    if (l == n && memcmp(p, value, n) == 0) return i;
    p = bar ? bar + 1 : NULL;
  }
  return 0;
}

static size_t list_len(const sl_toml_value_t *v) { return v->type == SL_TOML_ARRAY ? v->u.arr.len : 1; }
static const sl_toml_value_t *list_item(const sl_toml_value_t *v, size_t i) {
  return v->type == SL_TOML_ARRAY ? v->u.arr.items[i] : v;
}

static void bind_section(sl_bind_ctx_t *ctx, const sl_section_t *s, const sl_toml_value_t *t, char *conf,
                         const char *path);

static void bind_opt(sl_bind_ctx_t *ctx, const sl_opt_t *o, const sl_toml_value_t *v, char *conf,
                     const char *path) {
  void *field = conf + o->offset;
  remember(ctx, conf, field, path, v->line, v->col);
  switch (o->type) {
  case SL_OPT_STRING:
    if (v->type == SL_TOML_STRING) *(char **)field = strdup(v->u.str.ptr);
    break;
  case SL_OPT_INT:
    if (v->type == SL_TOML_INTEGER) *(int64_t *)field = v->u.i;
    break;
  case SL_OPT_FLOAT:
    if (v->type == SL_TOML_FLOAT) *(double *)field = v->u.f;
    if (v->type == SL_TOML_INTEGER) *(double *)field = (double)v->u.i;
    break;
  case SL_OPT_BOOL:
    if (v->type == SL_TOML_BOOL) *(bool *)field = v->u.b;
    break;
  case SL_OPT_DURATION:
    if (v->type == SL_TOML_STRING) sl_duration_parse(v->u.str.ptr, (int64_t *)field, NULL, 0);
    break;
  case SL_OPT_SIZE:
    if (v->type == SL_TOML_INTEGER) *(uint64_t *)field = (uint64_t)v->u.i;
    if (v->type == SL_TOML_STRING) sl_size_parse(v->u.str.ptr, (uint64_t *)field, NULL, 0);
    break;
  case SL_OPT_ADDR:
    if (v->type == SL_TOML_STRING) sl_addr_parse(v->u.str.ptr, (sl_addr_t *)field, NULL, 0);
    break;
  case SL_OPT_ADDR_LIST: {
    sl_addr_list_t *l = field;
    size_t n = list_len(v);
    if (!n || !(l->items = calloc(n, sizeof *l->items))) break;
    for (size_t i = 0; i < n; i++)
      if (list_item(v, i)->type == SL_TOML_STRING)
        sl_addr_parse(list_item(v, i)->u.str.ptr, &l->items[l->n++], NULL, 0);
    break;
  }
  case SL_OPT_STRING_LIST: {
    sl_str_list_t *l = field;
    size_t n = list_len(v);
    if (!n || !(l->items = calloc(n, sizeof *l->items))) break;
    for (size_t i = 0; i < n; i++) {
      const sl_toml_value_t *x = list_item(v, i);
      if (x->type == SL_TOML_STRING && (l->items[l->n] = strdup(x->u.str.ptr))) l->n++;
    }
    break;
  }
  case SL_OPT_ENUM:
    if (v->type == SL_TOML_STRING) *(int *)field = enum_index(o->choices, v->u.str.ptr);
    if (v->type == SL_TOML_TABLE && o->sub) {
      int n = 1;
      for (const char *p = o->choices; (p = strchr(p, '|')); p++) n++;
      *(int *)field = n;
      bind_section(ctx, o->sub, v, conf + o->sub_offset, path);
    }
    break;
  case SL_OPT_MAP: {
    sl_kv_list_t *l = field;
    if (v->type != SL_TOML_TABLE || !v->u.tab.len || !(l->items = calloc(v->u.tab.len, sizeof *l->items)))
      break;
    for (size_t i = 0; i < v->u.tab.len; i++) {
      const sl_toml_kv_t *kv = &v->u.tab.items[i];
      sl_kv_t *e = &l->items[l->n];
      e->key = strdup(kv->key);
      e->value = scalar_text(kv->value);
      e->line = kv->line;
      e->col = kv->col;
      if (!e->key || !e->value) {
        free(e->key);
        free(e->value);
        continue;
      }
      l->n++;
    }
    break;
  }
  case SL_OPT_TABLE:
    if (v->type == SL_TOML_TABLE && o->sub) bind_section(ctx, o->sub, v, field, path);
    break;
  case SL_OPT_FLOAT_LIST: {
    sl_float_list_t *l = field;
    size_t n = list_len(v);
    if (!n || !(l->items = calloc(n, sizeof *l->items))) break;
    for (size_t i = 0; i < n; i++)
      if (list_item(v, i)->type == SL_TOML_FLOAT) l->items[l->n++] = list_item(v, i)->u.f;
    break;
  }
  }
}

static void bind_section(sl_bind_ctx_t *ctx, const sl_section_t *s, const sl_toml_value_t *t, char *conf,
                         const char *path) {
  char sub[512];
  for (const sl_opt_t *o = s->opts; o && o->name; o++) {
    const sl_toml_value_t *v = sl_toml_get(t, o->name);
    if (!v) continue;
    snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", o->name);
    bind_opt(ctx, o, v, conf, sub);
  }
  for (const sl_child_t *cp = s->children; cp && cp->section; cp++) {
    const sl_section_t *ch = cp->section;
    const sl_toml_value_t *v = sl_toml_get(t, ch->name);
    if (!v) continue;
    snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", ch->name);
    remember(ctx, conf, conf + cp->offset, sub, v->line, v->col);
    if (!(ch->flags & SL_SECTION_ARRAY)) {
      if (v->type == SL_TOML_TABLE) bind_section(ctx, ch, v, conf + cp->offset, sub);
      continue;
    }
    sl_conf_array_t *arr = (sl_conf_array_t *)(conf + cp->offset);
    if (v->type != SL_TOML_ARRAY || !v->u.arr.len || !(arr->items = calloc(v->u.arr.len, ch->size))) continue;
    for (size_t i = 0; i < v->u.arr.len; i++) {
      char elpath[540];
      snprintf(elpath, sizeof elpath, "%s[%zu]", sub, i);
      /* n counts elements handed to bind_section, so unbind frees them all. */
      arr->n++;
      if (v->u.arr.items[i]->type == SL_TOML_TABLE)
        bind_section(ctx, ch, v->u.arr.items[i], (char *)arr->items + i * ch->size, elpath);
    }
  }
  if (s->finish) {
    const char *saved_path = ctx->section_path;
    int saved_line = ctx->section_line, saved_col = ctx->section_col;
    const void *saved_finishing = ctx->finishing;
    ctx->section_path = path;
    ctx->section_line = t->line;
    ctx->section_col = t->col;
    ctx->finishing = conf;
    s->finish(conf, ctx);
    ctx->section_path = saved_path;
    ctx->section_line = saved_line;
    ctx->section_col = saved_col;
    ctx->finishing = saved_finishing;
  }
}

size_t sl_schema_bind(const sl_section_t *root, const sl_toml_value_t *doc, void *conf, const char *file,
                      sl_diag_t *d) {
  sl_bind_ctx_t ctx = {.file = file, .d = d, .section_path = ""};
  bind_section(&ctx, root, doc, conf, "");
  for (size_t i = 0; i < ctx.n_pos; i++) free(ctx.pos[i].path);
  free(ctx.pos);
  return ctx.errors;
}

/* ---- unbinding ------------------------------------------------------------- */

static void unbind_opt(const sl_opt_t *o, char *conf) {
  void *field = conf + o->offset;
  switch (o->type) {
  case SL_OPT_STRING: {
    char **p = field;
    free(*p);
    *p = NULL;
    break;
  }
  case SL_OPT_ADDR_LIST: {
    sl_addr_list_t *l = field;
    free(l->items);
    *l = (sl_addr_list_t){0};
    break;
  }
  case SL_OPT_STRING_LIST: {
    sl_str_list_t *l = field;
    for (size_t i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    *l = (sl_str_list_t){0};
    break;
  }
  case SL_OPT_MAP: {
    sl_kv_list_t *l = field;
    for (size_t i = 0; i < l->n; i++) {
      free(l->items[i].key);
      free(l->items[i].value);
    }
    free(l->items);
    *l = (sl_kv_list_t){0};
    break;
  }
  case SL_OPT_TABLE:
    if (o->sub) sl_schema_unbind(o->sub, field);
    break;
  case SL_OPT_FLOAT_LIST: {
    sl_float_list_t *l = field;
    free(l->items);
    *l = (sl_float_list_t){0};
    break;
  }
  case SL_OPT_ENUM:
    if (o->sub) sl_schema_unbind(o->sub, conf + o->sub_offset);
    break;
  default: break;
  }
}

void sl_schema_unbind(const sl_section_t *s, void *conf_) {
  char *conf = conf_;
  if (!conf) return;
  if (s->release) s->release(conf);
  for (const sl_child_t *cp = s->children; cp && cp->section; cp++) {
    const sl_section_t *ch = cp->section;
    if (!(ch->flags & SL_SECTION_ARRAY)) {
      sl_schema_unbind(ch, conf + cp->offset);
      continue;
    }
    sl_conf_array_t *arr = (sl_conf_array_t *)(conf + cp->offset);
    for (size_t i = 0; i < arr->n; i++) sl_schema_unbind(ch, (char *)arr->items + i * ch->size);
    free(arr->items);
    *arr = (sl_conf_array_t){0};
  }
  for (const sl_opt_t *o = s->opts; o && o->name; o++) unbind_opt(o, conf);
}
