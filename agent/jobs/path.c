/* Field paths: parsing, canonical text and lookup in msgpack records.  Pure.
 * Parsing runs when a job is configured; lookups run on the jobs thread for
 * every record, so they compare key lengths before bytes and never
 * allocate. */
#include "jobs/path.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static bool name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* The byte an escape pair stands for, or 0 when the pair is kept as is. */
static char unescape(char c) {
  switch (c) {
  case '"': return '"';
  case '\\': return '\\';
  case 'n': return '\n';
  case 'r': return '\r';
  case 't': return '\t';
  default: return 0;
  }
}

static int syntax(int *err_col, const char **why, int col, const char *reason) {
  if (err_col) *err_col = col;
  if (why) *why = reason;
  return SL_ESYNTAX;
}

int sl_path_unquote(const char *text, size_t *used, char **out, uint32_t *len, int *err_col,
                    const char **why) {
  /* Two passes: the first finds the end and the decoded length, so the
   * string is allocated once. */
  size_t i = 1, n = 0;
  for (;;) {
    char c = text[i];
    if (c == 0 || (c == '\\' && text[i + 1] == 0))
      return syntax(err_col, why, 1, "unterminated string");
    if (c == '"') break;
    if (c == '\\') {
      n += unescape(text[i + 1]) ? 1 : 2;
      i += 2;
    } else {
      n++;
      i++;
    }
  }
  if (n > UINT32_MAX) return syntax(err_col, why, 1, "string too long");
  char *s = malloc(n + 1);
  if (!s) return SL_ENOMEM;
  size_t o = 0;
  for (size_t j = 1; j < i;) {
    if (text[j] == '\\') {
      char u = unescape(text[j + 1]);
      if (u) {
        s[o++] = u;
      } else {
        s[o++] = '\\';
        s[o++] = text[j + 1];
      }
      j += 2;
    } else {
      s[o++] = text[j++];
    }
  }
  s[o] = 0;
  *used = i + 1;
  *out = s;
  *len = (uint32_t)n;
  return 0;
}

static int add_step(sl_path_t *p, size_t *cap, sl_path_step_t step) {
  if (p->n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 4;
    sl_path_step_t *s = realloc(p->steps, ncap * sizeof *s);
    if (!s) return SL_ENOMEM;
    p->steps = s;
    *cap = ncap;
  }
  p->steps[p->n++] = step;
  return 0;
}

/* A name at text[i] (name_start already checked); advances *i. */
static int add_name(sl_path_t *p, size_t *cap, const char *text, size_t *i) {
  size_t s = *i, e = s + 1;
  while (name_char(text[e])) e++;
  sl_path_step_t step = {strndup(text + s, e - s), (uint32_t)(e - s), 0};
  if (!step.key) return SL_ENOMEM;
  int r = add_step(p, cap, step);
  if (r) {
    free(step.key);
    return r;
  }
  *i = e;
  return 0;
}

/* A bracketed step at text[*i] == '['; advances *i past the ']'. */
static int add_bracket(sl_path_t *p, size_t *cap, const char *text, size_t *i, int *err_col,
                       const char **why) {
  size_t j = *i + 1;
  sl_path_step_t step = {0};
  int r;
  if (text[j] == '"') {
    size_t used;
    int col;
    if ((r = sl_path_unquote(text + j, &used, &step.key, &step.len, &col, why))) {
      if (err_col) *err_col = (int)j + col;
      return r;
    }
    j += used;
  } else if (is_digit(text[j])) {
    uint64_t v = 0;
    size_t s = j;
    while (is_digit(text[j])) {
      v = v * 10 + (uint64_t)(text[j] - '0');
      if (v > UINT32_MAX) return syntax(err_col, why, (int)s + 1, "array index too large");
      j++;
    }
    step.index = (uint32_t)v;
  } else if (text[j] == '-') {
    return syntax(err_col, why, (int)j + 1,
                  "negative array indexes are not supported (indexes count from 0)");
  } else {
    return syntax(err_col, why, (int)j + 1, "expected an array index or a quoted key after \"[\"");
  }
  if (text[j] != ']') {
    free(step.key);
    return syntax(err_col, why, (int)j + 1, "expected \"]\"");
  }
  if ((r = add_step(p, cap, step))) {
    free(step.key);
    return r;
  }
  *i = j + 1;
  return 0;
}

int sl_path_scan(const char *text, size_t *used, sl_path_t *out, int *err_col, const char **why) {
  memset(out, 0, sizeof *out);
  size_t cap = 0, i = 0;
  int r;
  if (name_start(text[0])) {
    r = add_name(out, &cap, text, &i);
  } else if (text[0] == '[') {
    r = add_bracket(out, &cap, text, &i, err_col, why);
  } else {
    r = syntax(err_col, why, 1, "expected a field name");
  }
  while (!r) {
    if (text[i] == '.') {
      i++;
      if (!name_start(text[i])) {
        r = syntax(err_col, why, (int)i + 1,
                   "expected a field name after \".\" (quote odd keys as [\"key\"], "
                   "index arrays as [0])");
        break;
      }
      r = add_name(out, &cap, text, &i);
    } else if (text[i] == '[') {
      r = add_bracket(out, &cap, text, &i, err_col, why);
    } else {
      *used = i;
      return 0;
    }
  }
  sl_path_free(out);
  return r;
}

int sl_path_parse(const char *text, sl_path_t *out, int *err_col) {
  size_t used;
  int r = sl_path_scan(text, &used, out, err_col, NULL);
  if (r) return r;
  if (text[used]) {
    sl_path_free(out);
    if (err_col) *err_col = (int)used + 1;
    return SL_ESYNTAX;
  }
  return 0;
}

const msgpack_object *sl_path_lookup(const sl_path_t *path, const msgpack_object *record) {
  const msgpack_object *cur = record;
  for (size_t i = 0; cur && i < path->n; i++) {
    const sl_path_step_t *s = &path->steps[i];
    if (!s->key) {
      if (cur->type != MSGPACK_OBJECT_ARRAY || s->index >= cur->via.array.size) return NULL;
      cur = &cur->via.array.ptr[s->index];
      continue;
    }
    if (cur->type != MSGPACK_OBJECT_MAP) return NULL;
    const msgpack_object_kv *kv = cur->via.map.ptr;
    const msgpack_object_kv *end = kv + cur->via.map.size;
    cur = NULL;
    for (; kv < end; kv++) {
      /* STR and BIN share the layout {size, ptr} in msgpack-c's union but
       * are read by name to avoid relying on it. */
      if (kv->key.type == MSGPACK_OBJECT_STR) {
        if (kv->key.via.str.size == s->len && memcmp(kv->key.via.str.ptr, s->key, s->len) == 0) {
          cur = &kv->val;
          break;
        }
      } else if (kv->key.type == MSGPACK_OBJECT_BIN) {
        if (kv->key.via.bin.size == s->len && memcmp(kv->key.via.bin.ptr, s->key, s->len) == 0) {
          cur = &kv->val;
          break;
        }
      }
    }
  }
  return cur;
}

static bool is_name(const sl_path_step_t *s) {
  if (!s->len || !name_start(s->key[0])) return false;
  for (uint32_t i = 1; i < s->len; i++)
    if (!name_char(s->key[i])) return false;
  return true;
}

int sl_path_format(const sl_path_t *path, sl_buf_t *out) {
  int r = 0;
  for (size_t i = 0; i < path->n && !r; i++) {
    const sl_path_step_t *s = &path->steps[i];
    if (!s->key) {
      char b[16];
      snprintf(b, sizeof b, "[%" PRIu32 "]", s->index);
      r = sl_buf_puts(out, b);
    } else if (is_name(s)) {
      if (i > 0) r = sl_buf_putc(out, '.');
      if (!r) r = sl_buf_append(out, s->key, s->len);
    } else {
      r = sl_buf_puts(out, "[\"");
      for (uint32_t j = 0; j < s->len && !r; j++) {
        char c = s->key[j];
        switch (c) {
        case '"': r = sl_buf_puts(out, "\\\""); break;
        case '\\': r = sl_buf_puts(out, "\\\\"); break;
        case '\n': r = sl_buf_puts(out, "\\n"); break;
        case '\r': r = sl_buf_puts(out, "\\r"); break;
        case '\t': r = sl_buf_puts(out, "\\t"); break;
        default: r = sl_buf_putc(out, c); break;
        }
      }
      if (!r) r = sl_buf_puts(out, "\"]");
    }
  }
  return r;
}

void sl_path_free(sl_path_t *path) {
  for (size_t i = 0; i < path->n; i++) free(path->steps[i].key);
  free(path->steps);
  path->steps = NULL;
  path->n = 0;
}
