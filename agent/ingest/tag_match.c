/* Tag pattern compiler and matcher.  A spec compiles, in one left-to-right
 * pass that follows fluentd's GlobMatchPattern token by token, into a
 * Thompson NFA; matching simulates the NFA over the tag with a state list
 * per position, so adversarial patterns like `*a*a*a*a*b` cost
 * O(len x states).  Pure code; compiled patterns are read-only. */
#include "ingest/tag_match.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

enum {
  ST_CHAR,     /* consumes byte c */
  ST_NODOT,    /* consumes any byte but '.' */
  ST_ANY,      /* consumes any byte */
  ST_EPS,      /* -> out */
  ST_SPLIT,    /* -> out and out2 (out2 may be -1) */
  ST_AT_START, /* -> out at position 0 only (regex \A) */
  ST_AT_PART,  /* -> out at the end or before a '.' (regex (?![^.])) */
  ST_MATCH,
};

typedef struct {
  uint8_t type;
  unsigned char c;
  int out, out2;
} nstate_t;

struct sl_tag_pattern {
  nstate_t *st;
  int n, cap;
  int start;
};

/* A partial NFA: entry state, and the state whose `out` is still to patch. */
typedef struct {
  int start, end;
} frag_t;

/* One brace group being compiled (level 0 is the pattern itself). */
typedef struct {
  frag_t cur; /* the alternative being built */
  int split;  /* last SPLIT of the group's alternative chain */
  int join;   /* EPS every alternative ends in */
  int group;  /* the group's entry SPLIT */
} level_t;

static int add(sl_tag_pattern_t *p, int type, unsigned char c, int out, int out2) {
  if (p->n == p->cap) {
    int cap = p->cap ? p->cap * 2 : 32;
    nstate_t *st = realloc(p->st, (size_t)cap * sizeof *st);
    if (!st) return -1;
    p->st = st;
    p->cap = cap;
  }
  p->st[p->n] = (nstate_t){(uint8_t)type, c, out, out2};
  return p->n++;
}

#define ADD(var, ...)                               \
  do {                                              \
    if (((var) = add(__VA_ARGS__)) < 0) goto nomem; \
  } while (0)

static void append(sl_tag_pattern_t *p, level_t *lv, frag_t f) {
  p->st[lv->cur.end].out = f.start;
  lv->cur.end = f.end;
}

/* A single state that consumes or asserts, then continues. */
static int single(sl_tag_pattern_t *p, level_t *lv, int type, unsigned char c) {
  int s = add(p, type, c, -1, -1);
  if (s < 0) return -1;
  append(p, lv, (frag_t){s, s});
  return 0;
}

/* (x)* for a consuming state type x. */
static int star(sl_tag_pattern_t *p, frag_t *f, int type) {
  int sp, x, e;
  ADD(sp, p, ST_SPLIT, 0, -1, -1);
  ADD(x, p, type, 0, sp, -1);
  ADD(e, p, ST_EPS, 0, -1, -1);
  p->st[sp].out = x;
  p->st[sp].out2 = e;
  *f = (frag_t){sp, e};
  return 0;
nomem:
  return -1;
}

static int star_append(sl_tag_pattern_t *p, level_t *lv, int type) {
  frag_t f;
  if (star(p, &f, type)) return -1;
  append(p, lv, f);
  return 0;
}

/* `**.`: any run ending in '.', or nothing at the very start of the tag. */
static int any_parts(sl_tag_pattern_t *p, level_t *lv) {
  frag_t loop;
  int dot, at, sp, join;
  if (star(p, &loop, ST_ANY)) return -1;
  ADD(dot, p, ST_CHAR, '.', -1, -1);
  ADD(join, p, ST_EPS, 0, -1, -1);
  ADD(at, p, ST_AT_START, 0, join, -1);
  ADD(sp, p, ST_SPLIT, 0, loop.start, at);
  p->st[loop.end].out = dot;
  p->st[dot].out = join;
  append(p, lv, (frag_t){sp, join});
  return 0;
nomem:
  return -1;
}

static int new_alternative(sl_tag_pattern_t *p, level_t *lv, int split) {
  int e;
  ADD(e, p, ST_EPS, 0, -1, -1);
  p->st[split].out = e;
  lv->cur = (frag_t){e, e};
  lv->split = split;
  return 0;
nomem:
  return -1;
}

/* Compiles the pattern spec[b..e) into *f, following fluentd's
 * GlobMatchPattern: a '.' is held back and emitted before the next token,
 * except that before `**` it becomes "at a part boundary". */
static int compile_one(sl_tag_pattern_t *p, const char *spec, size_t b, size_t e, frag_t *f,
                       char *err, size_t errlen) {
  level_t lv[SL_TAG_MAX_BRACES + 1];
  int depth = 0, s;
  bool dot = false, escape = false;
  ADD(s, p, ST_EPS, 0, -1, -1);
  lv[0] = (level_t){{s, s}, -1, -1, -1};
  for (size_t i = b; i < e;) {
    unsigned char c = (unsigned char)spec[i];
    level_t *l = &lv[depth];
    if (escape) {
      if (single(p, l, ST_CHAR, c)) goto nomem;
      escape = false;
      i++;
      continue;
    }
    if (c == '*' && i + 1 < e && spec[i + 1] == '*') {
      if (dot && single(p, l, ST_AT_PART, 0)) goto nomem;
      dot = false;
      if (i + 2 < e && spec[i + 2] == '.') {
        if (any_parts(p, l)) goto nomem;
        i += 3;
      } else {
        if (star_append(p, l, ST_ANY)) goto nomem;
        i += 2;
      }
      continue;
    }
    if (dot && single(p, l, ST_CHAR, '.')) goto nomem;
    dot = false;
    if (c == '\\') {
      escape = true;
    } else if (c == '.') {
      dot = true;
    } else if (c == '*') {
      if (star_append(p, l, ST_NODOT)) goto nomem;
    } else if (c == '{') {
      if (depth == SL_TAG_MAX_BRACES)
        return sl_err_printf(err, errlen, SL_ESYNTAX, "pattern '%.*s': braces nested deeper than %d",
                    (int)(e - b), spec + b, SL_TAG_MAX_BRACES);
      int g, j;
      ADD(g, p, ST_SPLIT, 0, -1, -1);
      ADD(j, p, ST_EPS, 0, -1, -1);
      level_t *n = &lv[++depth];
      n->join = j;
      n->group = g;
      if (new_alternative(p, n, g)) goto nomem;
    } else if (c == '}') {
      if (depth == 0)
        return sl_err_printf(err, errlen, SL_ESYNTAX, "pattern '%.*s': unbalanced '}' at offset %zu",
                    (int)(e - b), spec + b, i - b);
      p->st[l->cur.end].out = l->join;
      depth--;
      append(p, &lv[depth], (frag_t){l->group, l->join});
    } else if (c == ',' && depth > 0) {
      int sp;
      p->st[l->cur.end].out = l->join;
      ADD(sp, p, ST_SPLIT, 0, -1, -1);
      p->st[l->split].out2 = sp;
      if (new_alternative(p, l, sp)) goto nomem;
    } else if (single(p, l, ST_CHAR, c)) {
      goto nomem;
    }
    i++;
  }
  if (depth > 0)
    return sl_err_printf(err, errlen, SL_ESYNTAX, "pattern '%.*s': unbalanced '{'", (int)(e - b), spec + b);
  *f = lv[0].cur;
  return 0;
nomem:
  return sl_err_printf(err, errlen, SL_ENOMEM, "out of memory");
}

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int sl_tag_pattern_compile(const char *spec, sl_tag_pattern_t **out, char *err, size_t errlen) {
  *out = NULL;
  sl_tag_pattern_t *p = calloc(1, sizeof *p);
  if (!p) return sl_err_printf(err, errlen, SL_ENOMEM, "out of memory");
  int r, match, split = -1;
  p->start = -1;
  if ((match = add(p, ST_MATCH, 0, -1, -1)) < 0) goto nomem;
  /* Patterns are alternatives of one top-level SPLIT chain. */
  for (size_t i = 0; spec[i];) {
    if (is_space(spec[i])) {
      i++;
      continue;
    }
    size_t b = i;
    while (spec[i] && !is_space(spec[i])) i++;
    frag_t f;
    if ((r = compile_one(p, spec, b, i, &f, err, errlen))) goto fail;
    p->st[f.end].out = match;
    int sp = add(p, ST_SPLIT, 0, f.start, -1);
    if (sp < 0) goto nomem;
    if (split < 0)
      p->start = sp;
    else
      p->st[split].out2 = sp;
    split = sp;
  }
  if (p->start < 0) {
    r = sl_err_printf(err, errlen, SL_ESYNTAX, "empty tag pattern");
    goto fail;
  }
  *out = p;
  return 0;
nomem:
  r = sl_err_printf(err, errlen, SL_ENOMEM, "out of memory");
fail:
  sl_tag_pattern_free(p);
  return r;
}

void sl_tag_pattern_free(sl_tag_pattern_t *p) {
  if (!p) return;
  free(p->st);
  free(p);
}

/* ---- matching ----------------------------------------------------------- */

typedef struct {
  int *list; /* states of the current position */
  int n;
  size_t *mark; /* mark[s] == pos + 1: s already listed for pos */
} slist_t;

static void push(slist_t *l, int s, size_t pos) {
  if (s < 0 || l->mark[s] == pos + 1) return;
  l->mark[s] = pos + 1;
  l->list[l->n++] = s;
}

/* Follows epsilon edges and assertions in place; the list only grows. */
static void closure(const sl_tag_pattern_t *p, slist_t *l, size_t pos, const char *tag,
                    size_t len) {
  for (int k = 0; k < l->n; k++) {
    const nstate_t *s = &p->st[l->list[k]];
    switch (s->type) {
      case ST_EPS:
        push(l, s->out, pos);
        break;
      case ST_SPLIT:
        push(l, s->out, pos);
        push(l, s->out2, pos);
        break;
      case ST_AT_START:
        if (pos == 0) push(l, s->out, pos);
        break;
      case ST_AT_PART:
        if (pos == len || tag[pos] == '.') push(l, s->out, pos);
        break;
      default:
        break;
    }
  }
}

bool sl_tag_pattern_match(const sl_tag_pattern_t *p, const char *tag, size_t len) {
  enum { SMALL = 256 };
  int lists_small[2 * SMALL];
  size_t mark_small[SMALL];
  int *lists = lists_small;
  size_t *mark = mark_small;
  if (p->n > SMALL) {
    lists = malloc(2 * (size_t)p->n * sizeof *lists);
    mark = malloc((size_t)p->n * sizeof *mark);
    if (!lists || !mark) {
      free(lists);
      free(mark);
      return false;
    }
  }
  memset(mark, 0, (size_t)p->n * sizeof *mark);
  slist_t cur = {lists, 0, mark}, nxt = {lists + p->n, 0, mark};
  bool matched = false;
  push(&cur, p->start, 0);
  for (size_t pos = 0;; pos++) {
    closure(p, &cur, pos, tag, len);
    if (pos == len) {
      for (int k = 0; k < cur.n && !matched; k++) matched = p->st[cur.list[k]].type == ST_MATCH;
      break;
    }
    unsigned char c = (unsigned char)tag[pos];
    nxt.n = 0;
    for (int k = 0; k < cur.n; k++) {
      const nstate_t *s = &p->st[cur.list[k]];
      if ((s->type == ST_CHAR && s->c == c) || (s->type == ST_NODOT && c != '.') ||
          s->type == ST_ANY)
        push(&nxt, s->out, pos + 1);
    }
    if (nxt.n == 0) break;
    slist_t t = cur;
    cur = nxt;
    nxt = t;
  }
  if (lists != lists_small) {
    free(lists);
    free(mark);
  }
  return matched;
}
