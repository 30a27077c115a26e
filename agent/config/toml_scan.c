/* TOML lexing: offsets to line:col, error messages, UTF-8 validation,
 * whitespace and comments, the four string forms with their escapes, and
 * dotted keys.  Pure and stateless beyond the parser_t it is handed; runs on
 * whichever thread calls sl_toml_parse. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "config/toml_internal.h"

/* ---- positions and errors ---- */

void sl_toml_pos_of(parser_t *p, size_t off, int *line, int *col) {
  if (off > p->len) off = p->len;
  if (off < p->lc_off) {
    p->lc_off = 0;
    p->lc_ls = 0;
    p->lc_line = 1;
  }
  for (size_t i = p->lc_off; i < off; i++) {
    if (p->s[i] == '\n') {
      p->lc_line++;
      p->lc_ls = i + 1;
    }
  }
  p->lc_off = off;
  *line = p->lc_line;
  *col = (int)(off - p->lc_ls) + 1;
}

pos_t sl_toml_here(parser_t *p, size_t off) {
  pos_t at;
  sl_toml_pos_of(p, off, &at.line, &at.col);
  return at;
}

int sl_toml_fail_at(parser_t *p, size_t off, const char *fmt, ...) {
  if (p->rc) return p->rc;
  p->rc = SL_ESYNTAX;
  if (!p->err || !p->errlen) return p->rc;
  int line, col;
  sl_toml_pos_of(p, off, &line, &col);
  int n = p->filename ? snprintf(p->err, p->errlen, "%s:%d:%d: ", p->filename, line, col)
                      : snprintf(p->err, p->errlen, "%d:%d: ", line, col);
  if (n < 0 || (size_t)n >= p->errlen) return p->rc;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
  va_end(ap);
  return p->rc;
}

int sl_toml_fail_nomem(parser_t *p) {
  if (p->rc) return p->rc;
  p->rc = SL_ENOMEM;
  if (p->err && p->errlen) snprintf(p->err, p->errlen, "%s", sl_strerror(SL_ENOMEM));
  return p->rc;
}

/* Names the character at off for a message: 'x', "end of line", U+0001. */
const char *sl_toml_describe(const parser_t *p, size_t off, char *buf, size_t n) {
  if (off >= p->len) return "end of file";
  unsigned char c = (unsigned char)p->s[off];
  if (c == '\n' || (c == '\r' && off + 1 < p->len && p->s[off + 1] == '\n')) return "end of line";
  if (c >= 0x20 && c < 0x7f) {
    snprintf(buf, n, "'%c'", c);
  } else if (c < 0x80) {
    snprintf(buf, n, "U+%04X", c);
  } else {
    int k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if (off + (size_t)k > p->len) k = (int)(p->len - off);
    snprintf(buf, n, "'%.*s'", k, p->s + off);
  }
  return buf;
}

/* Writes a key path the way a user would write it: a.b."c d". */
const char *sl_toml_key_display(const keypath_t *k, size_t nseg, char *buf, size_t n) {
  size_t o = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < nseg && o + 1 < n; i++) {
    const seg_t *s = &k->v[i];
    bool bare = s->len > 0;
    for (size_t j = 0; j < s->len && bare; j++) bare = is_bare((unsigned char)s->s[j]);
    /* Quoted parts are shown in single quotes (double when they hold one);
     * the message already wraps the whole key in double quotes. */
    char q = !bare && memchr(s->s, '\'', s->len) ? '"' : '\'';
    if (i) buf[o++] = '.';
    if (!bare && o + 1 < n) buf[o++] = q;
    for (size_t j = 0; j < s->len && o + 1 < n; j++) {
      unsigned char c = (unsigned char)s->s[j];
      buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (!bare && o + 1 < n) buf[o++] = q;
  }
  buf[o < n ? o : n - 1] = '\0';
  return buf;
}

/* ---- string buffers and key paths ---- */

static int sbuf_put(parser_t *p, sbuf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 32;
    while (cap < b->len + n + 1) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) return sl_toml_fail_nomem(p);
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

static int sbuf_finish(parser_t *p, sbuf_t *b) {
  return b->p ? 0 : sbuf_put(p, b, "", 0); /* an empty string still owns a "" */
}

void sl_toml_keypath_clear(keypath_t *k) {
  for (size_t i = 0; i < k->n; i++) free(k->v[i].s);
  free(k->v);
  k->v = NULL;
  k->n = k->cap = 0;
}

/* ---- UTF-8, whitespace and comments ---- */

int sl_toml_check_utf8(parser_t *p) {
  const unsigned char *s = (const unsigned char *)p->s;
  size_t i = 0;
  while (i < p->len) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    unsigned cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return sl_toml_fail_at(p, i, "invalid UTF-8: unexpected byte 0x%02X", c);
    }
    if (i + n >= p->len)
      return sl_toml_fail_at(p, i, "invalid UTF-8: truncated sequence at end of file");
    for (size_t k = 1; k <= n; k++) {
      if ((s[i + k] & 0xc0) != 0x80)
        return sl_toml_fail_at(p, i, "invalid UTF-8: truncated sequence");
      cp = cp << 6 | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return sl_toml_fail_at(
          p, i, "invalid UTF-8: overlong encoding, surrogate or code point above U+10FFFF");
    i += n + 1;
  }
  return 0;
}

static bool is_ctrl(unsigned char c) {
  return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* Skips a comment up to (not including) its end of line. */
int sl_toml_skip_comment(parser_t *p) {
  if (!peek_is(p, '#')) return 0;
  for (p->pos++; p->pos < p->len && !at_newline(p); p->pos++) {
    unsigned char c = (unsigned char)p->s[p->pos];
    if (is_ctrl(c))
      return sl_toml_fail_at(p, p->pos, "control character U+%04X is not allowed in a comment", c);
  }
  return 0;
}

int sl_toml_skip_newline(parser_t *p) {
  if (peek_is(p, '\n')) {
    p->pos++;
  } else if (peek_is(p, '\r')) {
    if (!at_newline(p))
      return sl_toml_fail_at(p, p->pos, "carriage return not followed by a newline");
    p->pos += 2;
  }
  return 0;
}

/* Whitespace, newlines and comments: the filler allowed inside arrays. */
int sl_toml_skip_filler(parser_t *p) {
  int rc;
  for (;;) {
    skip_ws(p);
    if ((rc = sl_toml_skip_comment(p)) < 0) return rc;
    if (peek_is(p, '\n') || peek_is(p, '\r')) {
      if ((rc = sl_toml_skip_newline(p)) < 0) return rc;
      continue;
    }
    return 0;
  }
}

int sl_toml_expect_eol(parser_t *p, const char *after) {
  int rc;
  char d[16];
  skip_ws(p);
  if ((rc = sl_toml_skip_comment(p)) < 0) return rc;
  if (p->pos >= p->len) return 0;
  if (peek_is(p, '\n') || peek_is(p, '\r')) return sl_toml_skip_newline(p);
  return sl_toml_fail_at(p, p->pos, "expected end of line after %s, found %s", after,
                         sl_toml_describe(p, p->pos, d, sizeof d));
}

/* ---- strings ---- */

static int put_utf8(parser_t *p, sbuf_t *b, unsigned long cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (char)cp, n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
  } else {
    u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
  }
  return sbuf_put(p, b, u, n);
}

/* An escape sequence at p->pos (the backslash) of a basic string. */
static int parse_escape(parser_t *p, sbuf_t *b, size_t start) {
  size_t esc = p->pos++;
  if (p->pos >= p->len) return sl_toml_fail_at(p, start, "unterminated string");
  char c = p->s[p->pos++];
  const char *simple = NULL;
  switch (c) {
    case 'b':
      simple = "\b";
      break;
    case 't':
      simple = "\t";
      break;
    case 'n':
      simple = "\n";
      break;
    case 'f':
      simple = "\f";
      break;
    case 'r':
      simple = "\r";
      break;
    case '"':
      simple = "\"";
      break;
    case '\\':
      simple = "\\";
      break;
    case 'u':
    case 'U': {
      int nd = c == 'u' ? 4 : 8;
      unsigned long cp = 0;
      for (int i = 0; i < nd; i++) {
        int h = p->pos + (size_t)i < p->len ? hexval(p->s[p->pos + (size_t)i]) : -1;
        if (h < 0)
          return sl_toml_fail_at(p, esc, "invalid escape sequence: \\%c needs %d hex digits", c,
                                 nd);
        cp = cp << 4 | (unsigned long)h;
      }
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return sl_toml_fail_at(p, esc, "escape \\%c%.*s is not a Unicode scalar value", c, nd,
                               p->s + p->pos);
      p->pos += (size_t)nd;
      return put_utf8(p, b, cp);
    }
    default: {
      char d[16];
      p->pos--;
      if ((unsigned char)c > 0x20 && (unsigned char)c < 0x7f)
        return sl_toml_fail_at(p, esc, "invalid escape sequence '\\%c'", c);
      return sl_toml_fail_at(p, esc, "invalid escape sequence: backslash followed by %s",
                             sl_toml_describe(p, p->pos, d, sizeof d));
    }
  }
  return sbuf_put(p, b, simple, 1);
}

static int bad_char(parser_t *p, size_t start, bool multi) {
  unsigned char c = (unsigned char)p->s[p->pos];
  if (!multi && (c == '\n' || c == '\r')) return sl_toml_fail_at(p, start, "unterminated string");
  if (c == '\r') return sl_toml_fail_at(p, p->pos, "carriage return not followed by a newline");
  return sl_toml_fail_at(p, p->pos, "control character U+%04X must be escaped in a string", c);
}

/* Parses any of the four string forms at p->pos into b.  Keys pass
 * allow_multi=false. */
int sl_toml_parse_string(parser_t *p, sbuf_t *b, bool allow_multi) {
  size_t start = p->pos;
  char q = p->s[p->pos];
  bool basic = q == '"';
  bool multi = p->pos + 2 < p->len && p->s[p->pos + 1] == q && p->s[p->pos + 2] == q;
  int rc;
  if (multi && !allow_multi)
    return sl_toml_fail_at(p, start, "a multi-line string cannot be used as a key");
  if (multi) {
    p->pos += 3;
    if (peek_is(p, '\n')) {
      p->pos++;
    } else if (at_newline(p)) {
      p->pos += 2;
    }
  } else {
    p->pos++;
  }
  for (;;) {
    if (p->pos >= p->len)
      return sl_toml_fail_at(p, start,
                             multi ? "unterminated multi-line string" : "unterminated string");
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c == (unsigned char)q) {
      if (!multi) {
        p->pos++;
        break;
      }
      size_t n = 0;
      while (p->pos + n < p->len && p->s[p->pos + n] == q) n++;
      if (n < 3) {
        if ((rc = sbuf_put(p, b, p->s + p->pos, n)) < 0) return rc;
        p->pos += n;
        continue;
      }
      /* Up to two quotes may sit just before the closing delimiter. */
      size_t extra = n - 3 > 2 ? 2 : n - 3;
      if ((rc = sbuf_put(p, b, p->s + p->pos, extra)) < 0) return rc;
      p->pos += extra + 3;
      break;
    }
    if (c == '\\' && basic) {
      if (multi) {
        size_t j = p->pos + 1;
        while (j < p->len && (p->s[j] == ' ' || p->s[j] == '\t')) j++;
        if (j < p->len &&
            (p->s[j] == '\n' || (p->s[j] == '\r' && j + 1 < p->len && p->s[j + 1] == '\n'))) {
          /* Line-ending backslash: drop it and all whitespace up to the
           * next non-blank character. */
          p->pos = j;
          for (;;) {
            skip_ws(p);
            if (!at_newline(p)) break;
            p->pos += peek_is(p, '\n') ? 1 : 2;
          }
          continue;
        }
      }
      if ((rc = parse_escape(p, b, start)) < 0) return rc;
      continue;
    }
    if (multi && c == '\n') {
      rc = sbuf_put(p, b, "\n", 1);
      p->pos++;
    } else if (multi && at_newline(p)) {
      rc = sbuf_put(p, b, "\n", 1); /* CRLF is stored as LF */
      p->pos += 2;
    } else if (is_ctrl(c)) {
      return bad_char(p, start, multi);
    } else {
      rc = sbuf_put(p, b, (const char *)&c, 1);
      p->pos++;
    }
    if (rc < 0) return rc;
  }
  return sbuf_finish(p, b);
}

/* ---- keys ---- */

int sl_toml_parse_key(parser_t *p, keypath_t *k) {
  int rc;
  char d[16];
  for (;;) {
    skip_ws(p);
    seg_t seg = {NULL, 0, p->pos, sl_toml_here(p, p->pos)};
    if (peek_is(p, '"') || peek_is(p, '\'')) {
      sbuf_t b = {0};
      if ((rc = sl_toml_parse_string(p, &b, false)) < 0) {
        free(b.p);
        return rc;
      }
      seg.s = b.p;
      seg.len = b.len;
    } else if (p->pos < p->len && is_bare((unsigned char)p->s[p->pos])) {
      size_t e = p->pos;
      while (e < p->len && is_bare((unsigned char)p->s[e])) e++;
      seg.len = e - p->pos;
      seg.s = malloc(seg.len + 1);
      if (!seg.s) return sl_toml_fail_nomem(p);
      memcpy(seg.s, p->s + p->pos, seg.len);
      seg.s[seg.len] = '\0';
      p->pos = e;
    } else {
      return sl_toml_fail_at(p, p->pos, "expected a key, found %s",
                             sl_toml_describe(p, p->pos, d, sizeof d));
    }
    if (k->n == k->cap) {
      size_t cap = k->cap ? k->cap * 2 : 4;
      seg_t *v = realloc(k->v, cap * sizeof *v);
      if (!v) {
        free(seg.s);
        return sl_toml_fail_nomem(p);
      }
      k->v = v;
      k->cap = cap;
    }
    k->v[k->n++] = seg;
    if (k->n > SL_TOML_MAX_DEPTH)
      return sl_toml_fail_at(p, seg.off, "key has more than %d dotted parts", SL_TOML_MAX_DEPTH);
    skip_ws(p);
    if (!peek_is(p, '.')) return 0;
    p->pos++;
  }
}
