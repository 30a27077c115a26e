/* Rows into Redis commands, and error replies sorted (redis_cmd.h).  Pure;
 * runs wherever it is called (the jobs loop, in the plugin).
 *
 * Why arguments are offsets, or pointers into the row: one row's commands
 * are built into one buffer that grows as it goes, so an argument cannot
 * be a pointer into it until the row is done; and the bulky parts (the
 * row's JSON, string values, field names) are the host's, valid until the
 * write completes, so they are pointed at rather than copied.
 *
 * Why the sink encodes RESP itself: hiredis formats an argv with
 * sdscatfmt, argument by argument, which took a third of the sink's time
 * in hash mode; the arguments are at hand, and the protocol is a count
 * and a length before each (redisAsyncFormattedCommand takes the bytes). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "redis_cmd.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- values ------------------------------------------------------------------------- */

static void skip_ws(const char **p, const char *end) {
  while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')) (*p)++;
}

/* Past a string starting at *p ('"'); false when unterminated. */
static bool skip_string(const char **p, const char *end) {
  const char *q = *p + 1;
  while (q < end && *q != '"') q += *q == '\\' ? 2 : 1;
  if (q >= end) return false;
  *p = q + 1;
  return true;
}

static bool skip_value(const char **p, const char *end) {
  if (*p >= end) return false;
  if (**p == '"') return skip_string(p, end);
  if (**p == '{' || **p == '[') {
    int depth = 0;
    while (*p < end) {
      char c = **p;
      if (c == '"') {
        if (!skip_string(p, end)) return false;
        continue;
      }
      if (c == '{' || c == '[') depth++;
      if (c == '}' || c == ']') depth--;
      (*p)++;
      if (depth == 0) return true;
    }
    return false;
  }
  while (*p < end && **p != ',' && **p != '}' && **p != ']' && **p != ' ' && **p != '\n') (*p)++;
  return true;
}

/* Whether the JSON string [s, e) (without its quotes) spells name; the
 * common escapes are decoded, a \u escape never matches. */
static bool key_is(const char *s, const char *e, const char *name) {
  while (s < e) {
    char c = *s++;
    if (c == '\\') {
      if (s >= e) return false;
      switch (*s++) {
        case 'n':
          c = '\n';
          break;
        case 't':
          c = '\t';
          break;
        case 'r':
          c = '\r';
          break;
        case 'b':
          c = '\b';
          break;
        case 'f':
          c = '\f';
          break;
        case '"':
          c = '"';
          break;
        case '\\':
          c = '\\';
          break;
        case '/':
          c = '/';
          break;
        default:
          return false;
      }
    }
    if (*name == '\0' || *name++ != c) return false; /* a NUL in the key is not the name's end */
  }
  return *name == '\0';
}

const char *rs_json_member(const char *json, size_t len, const char *name, size_t *vlen) {
  const char *p = json, *end = json + len;
  skip_ws(&p, end);
  if (p >= end || *p++ != '{') return NULL;
  for (;;) {
    skip_ws(&p, end);
    if (p >= end || *p != '"') return NULL;
    const char *ks = p + 1;
    if (!skip_string(&p, end)) return NULL;
    const char *ke = p - 1;
    skip_ws(&p, end);
    if (p >= end || *p++ != ':') return NULL;
    skip_ws(&p, end);
    const char *vs = p;
    if (!skip_value(&p, end)) return NULL;
    if (key_is(ks, ke, name)) {
      *vlen = (size_t)(p - vs);
      return vs;
    }
    skip_ws(&p, end);
    if (p >= end || *p++ != ',') return NULL;
  }
}

/* A float as the row's JSON writes it (the agent's shortest digits,
 * found faster than printf finds them), or else its shortest %g form. */
static int float_text(const sluice_host_t *host, const sluice_row_t *row, const char *name,
                      double d, pt_buf_t *out) {
  size_t jl = 0, ml = 0;
  const char *json = name ? host->row_json(row, &jl) : NULL;
  const char *m = json ? rs_json_member(json, jl, name, &ml) : NULL;
  if (m && ml && ml < 32 && (*m == '-' || (*m >= '0' && *m <= '9')))
    return pt_buf_append(out, m, ml);
  char b[64];
  return pt_buf_append(out, b, pt_shortest(d, b, sizeof b));
}

int rs_value_text(const sluice_host_t *host, const sluice_row_t *row, const char *name,
                  const sluice_value_t *v, pt_buf_t *out) {
  char b[64];
  switch (v->type) {
    case SLUICE_VALUE_STRING:
      return pt_buf_append(out, v->s, v->len);
    case SLUICE_VALUE_INT:
      return pt_buf_append(out, b, (size_t)snprintf(b, sizeof b, "%" PRId64, v->i));
    case SLUICE_VALUE_FLOAT:
      return float_text(host, row, name, v->f, out);
    case SLUICE_VALUE_BOOL:
      return pt_buf_puts(out, v->b ? "true" : "false");
    case SLUICE_VALUE_OTHER: {
      size_t jl = 0, ml = 0;
      const char *json = host->row_json(row, &jl);
      const char *m = json ? rs_json_member(json, jl, name, &ml) : NULL;
      return m ? pt_buf_append(out, m, ml) : -1;
    }
    default:
      return -1;
  }
}

/* ---- commands ---------------------------------------------------------------------- */

void rs_cmds_reset(rs_cmds_t *c) {
  c->text.len = 0;
  c->nargs = c->ncmds = 0;
  c->key_off = c->key_len = c->ident_off = c->ident_len = 0;
}

void rs_cmds_free(rs_cmds_t *c) {
  pt_buf_free(&c->text);
  pt_buf_free(&c->resp);
  free(c->off);
  free(c->len);
  *c = (rs_cmds_t){0};
}

/* An argument is text[off, off + len), or, with the top bit of len set,
 * the host's bytes at the pointer stored in off. */
#define EXTERNAL ((size_t)1 << (sizeof(size_t) * 8 - 1))

static int push_arg(rs_cmds_t *c, size_t off, size_t len) {
  if (c->nargs == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 32;
    size_t *o = realloc(c->off, cap * sizeof *o);
    if (!o) return -1;
    c->off = o;
    size_t *l = realloc(c->len, cap * sizeof *l);
    if (!l) return -1;
    c->len = l;
    c->cap = cap;
  }
  c->off[c->nargs] = off;
  c->len[c->nargs] = len;
  c->nargs++;
  return 0;
}

static int arg_text(rs_cmds_t *c, const char *s, size_t n) {
  size_t at = c->text.len;
  return pt_buf_append(&c->text, s, n) || push_arg(c, at, n);
}

static int arg_ext(rs_cmds_t *c, const char *s, size_t n) {
  if (n & EXTERNAL) return -1;
  return push_arg(c, (size_t)(uintptr_t)s, n | EXTERNAL);
}

static int arg_key(rs_cmds_t *c) {
  return push_arg(c, c->key_off, c->key_len);
}

static int arg_u64(rs_cmds_t *c, uint64_t v) {
  char b[24];
  return arg_text(c, b, (size_t)snprintf(b, sizeof b, "%" PRIu64, v));
}

static void begin_cmd(rs_cmds_t *c) {
  c->first[c->ncmds] = c->nargs;
}
static void end_cmd(rs_cmds_t *c) {
  c->first[++c->ncmds] = c->nargs;
}

static int pexpire(rs_cmds_t *c, uint64_t ttl_ms) {
  if (!ttl_ms) return 0;
  begin_cmd(c);
  if (arg_text(c, "PEXPIRE", 7) || arg_key(c) || arg_u64(c, ttl_ms)) return -1;
  end_cmd(c);
  return 0;
}

static int set_cmds(const rs_spec_t *spec, const sluice_host_t *host, const sluice_row_t *row,
                    rs_cmds_t *c) {
  size_t jl = 0;
  const char *json = host->row_json(row, &jl);
  if (!json) return -1;
  begin_cmd(c);
  if (arg_text(c, "SET", 3) || arg_key(c) || arg_ext(c, json, jl)) return -1;
  if (spec->ttl_ms && (arg_text(c, "PX", 2) || arg_u64(c, spec->ttl_ms))) return -1;
  end_cmd(c);
  return 0;
}

/* HSET of every non-null field, then HDEL of the null ones (so that the
 * hash holds the row, not a value left by an older one), then PEXPIRE. */
static int hash_cmds(const rs_spec_t *spec, const sluice_host_t *host, const sluice_row_t *row,
                     rs_cmds_t *c) {
  size_t nf = host->row_nfields(row), nulls = 0;
  begin_cmd(c);
  if (arg_text(c, "HSET", 4) || arg_key(c)) return -1;
  for (size_t i = 0; i < nf; i++) {
    sluice_value_t v = {0};
    const char *name = host->row_field(row, i, &v);
    if (!name) break;
    if (v.type == SLUICE_VALUE_NULL) {
      nulls++;
      continue;
    }
    if (arg_ext(c, name, strlen(name))) return -1;
    if (v.type == SLUICE_VALUE_STRING) {
      if (arg_ext(c, v.s ? v.s : "", v.len)) return -1;
    } else {
      size_t at = c->text.len;
      if (rs_value_text(host, row, name, &v, &c->text) || push_arg(c, at, c->text.len - at))
        return -1;
    }
  }
  end_cmd(c);
  if (nulls) {
    begin_cmd(c);
    if (arg_text(c, "HDEL", 4) || arg_key(c)) return -1;
    for (size_t i = 0; i < nf; i++) {
      sluice_value_t v = {0};
      const char *name = host->row_field(row, i, &v);
      if (!name) break;
      if (v.type == SLUICE_VALUE_NULL && arg_ext(c, name, strlen(name))) return -1;
    }
    end_cmd(c);
  }
  return pexpire(c, spec->ttl_ms);
}

/* SET of each hll_fields aggregate's HyperLogLog at "<key>:<field>".  0,
 * -1 out of memory, or 1 with why. */
static int hll_cmds(const rs_spec_t *spec, const sluice_host_t *host, const sluice_row_t *row,
                    rs_cmds_t *c, char *why, size_t whylen) {
  for (size_t i = 0; i < spec->n_hll; i++) {
    const char *name = spec->hll_fields[i];
    size_t len = 0;
    const void *hll = host->row_hll(row, name, &len);
    if (!hll) {
      snprintf(why, whylen, "hll_fields: the row has no redis_hll aggregate \"%s\"", name);
      return 1;
    }
    begin_cmd(c);
    if (arg_text(c, "SET", 3)) return -1;
    /* The key is rendered again rather than copied: text may move. */
    size_t at = c->text.len;
    if (pt_tmpl_render(spec->key, host, row, &c->text, why, whylen) || pt_buf_append(&c->text, ":", 1) ||
        pt_buf_puts(&c->text, name) || push_arg(c, at, c->text.len - at) || arg_ext(c, hll, len))
      return -1;
    if (spec->ttl_ms && (arg_text(c, "PX", 2) || arg_u64(c, spec->ttl_ms))) return -1;
    end_cmd(c);
  }
  return 0;
}

int rs_row_commands(const rs_spec_t *spec, const sluice_host_t *host, const sluice_row_t *row,
                    rs_cmds_t *c, char *why, size_t whylen) {
  rs_cmds_reset(c);
  if (pt_tmpl_render(spec->key, host, row, &c->text, why, whylen)) return -1;
  c->key_off = c->ident_off = 0;
  c->key_len = c->ident_len = c->text.len;
  int r = 0;
  switch (spec->mode) {
    case RS_MODE_SET:
      r = set_cmds(spec, host, row, c);
      break;
    case RS_MODE_HASH:
      r = hash_cmds(spec, host, row, c);
      break;
    case RS_MODE_ZADD: {
      /* The member follows the key after a NUL: key, NUL, member is what
       * a ZADD overwrites. */
      if (pt_buf_append(&c->text, "", 1)) goto nomem;
      size_t mo = c->text.len;
      if (pt_tmpl_render(spec->member, host, row, &c->text, why, whylen)) return -1;
      size_t ml = c->text.len - mo;
      c->ident_len = c->text.len;
      sluice_value_t v = {0};
      if (!host->row_get(row, spec->score_field, &v)) {
        snprintf(why, whylen, "score_field: the row has no field \"%s\"", spec->score_field);
        return -1;
      }
      if ((v.type != SLUICE_VALUE_INT && v.type != SLUICE_VALUE_FLOAT) ||
          (v.type == SLUICE_VALUE_FLOAT && isnan(v.f))) {
        snprintf(why, whylen, "score_field: field \"%s\" is not a number", spec->score_field);
        return -1;
      }
      begin_cmd(c);
      if (arg_text(c, "ZADD", 4) || arg_key(c)) goto nomem;
      size_t so = c->text.len;
      int r2 = v.type == SLUICE_VALUE_INT
                   ? rs_value_text(host, row, spec->score_field, &v, &c->text)
               : isinf(v.f) ? pt_buf_puts(&c->text, v.f > 0 ? "+inf" : "-inf")
                            : float_text(host, row, spec->score_field, v.f, &c->text);
      if (r2 || push_arg(c, so, c->text.len - so) || push_arg(c, mo, ml)) goto nomem;
      end_cmd(c);
      r = pexpire(c, spec->ttl_ms);
      break;
    }
    default:
      r = -1;
  }
  if (r) goto nomem;
  if (spec->n_hll && host->row_kind(row) != SLUICE_ROW_LATE) {
    r = hll_cmds(spec, host, row, c, why, whylen);
    if (r > 0) return -1;
    if (r) goto nomem;
  }
  return 0;
nomem:
  snprintf(why, whylen, "out of memory");
  return -1;
}

/* Appends "<prefix><n>\r\n". */
static int put_len(pt_buf_t *out, char prefix, size_t n) {
  char b[24];
  size_t k = sizeof b;
  b[--k] = '\n';
  b[--k] = '\r';
  do {
    b[--k] = (char)('0' + n % 10);
    n /= 10;
  } while (n);
  b[--k] = prefix;
  return pt_buf_append(out, b + k, sizeof b - k);
}

int rs_cmds_resp(const rs_cmds_t *c, size_t i, pt_buf_t *out) {
  out->len = 0;
  size_t a = c->first[i], n = c->first[i + 1] - a;
  if (put_len(out, '*', n)) return -1;
  for (size_t k = a; k < a + n; k++) {
    size_t len = c->len[k] & ~EXTERNAL;
    const char *p =
        c->len[k] & EXTERNAL ? (const char *)(uintptr_t)c->off[k] : c->text.p + c->off[k];
    if (put_len(out, '$', len) || pt_buf_append(out, p, len) || pt_buf_append(out, "\r\n", 2))
      return -1;
  }
  return 0;
}

/* ---- replies ------------------------------------------------------------------------- */

static bool first_word_is(const char *msg, size_t len, const char *word) {
  size_t n = strlen(word);
  return len >= n && memcmp(msg, word, n) == 0 && (len == n || msg[n] == ' ');
}

sluice_status_t rs_classify_error(const char *msg, size_t len) {
  /* Conditions of the server that pass: a dataset still loading, a script
   * running, memory full, a replica or a failover in progress, a failed
   * background save refusing writes, a lost authentication. */
  static const char *const retry[] = {"LOADING",     "BUSY",     "TRYAGAIN",     "MASTERDOWN",
                                      "CLUSTERDOWN", "READONLY", "NOREPLICAS",   "MISCONF",
                                      "OOM",         "NOAUTH",   "NOMASTERLINK", NULL};
  for (const char *const *w = retry; *w; w++)
    if (first_word_is(msg, len, *w)) return SLUICE_RETRY;
  return SLUICE_FATAL;
}

bool rs_is_auth_error(const char *msg, size_t len) {
  if (first_word_is(msg, len, "WRONGPASS") || first_word_is(msg, len, "NOAUTH")) return true;
  static const char needle[] = "password";
  for (size_t i = 0; i + sizeof needle - 1 <= len; i++)
    if (strncmp(msg + i, needle, sizeof needle - 1) == 0) return true;
  return false;
}

uint64_t rs_hash(const void *data, size_t len) {
  const unsigned char *p = data;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}
