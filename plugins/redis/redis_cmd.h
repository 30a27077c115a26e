/* What the redis sink sends for a row, and what a reply means: key
 * templates ("pv:${page}") filled from the row's fields, a field's value as
 * Redis text, the commands of each mode (SET, HSET, ZADD, with PEXPIRE or
 * SET's PX for the ttl), and error replies sorted into retryable and
 * permanent.  Pure: no sockets, no loop; reads rows only through the host's
 * row functions, so that it can be tested with a fake host. */
#ifndef REDIS_CMD_H
#define REDIS_CMD_H

#include <sluice/sink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer; zeroed is empty.  rs_buf_free releases it. */
typedef struct {
  char *p;
  size_t len, cap;
} rs_buf_t;

int rs_buf_append(rs_buf_t *b, const void *data, size_t n); /* 0 or -1 (out of memory) */
void rs_buf_free(rs_buf_t *b);

/* A compiled template: literal text and ${field} placeholders.  Owned;
 * rs_tmpl_free releases it. */
typedef struct rs_tmpl rs_tmpl_t;

/* 0 and *out, or -1 with the reason in err ("unclosed \"${\"", "empty
 * \"${}\"").  `what` names the option in the reason ("key"). */
int rs_tmpl_compile(const char *text, const char *what, rs_tmpl_t **out, char *err, size_t errlen);
void rs_tmpl_free(rs_tmpl_t *t);

/* Appends the template filled from row to out.  -1 when a field is
 * missing, null, a map or an array (why says which and names the
 * template), or when out of memory. */
int rs_tmpl_render(const rs_tmpl_t *t, const sluice_host_t *host, const sluice_row_t *row,
                   rs_buf_t *out, char *why, size_t whylen);

/* A value as Redis text, appended to out: a string as its bytes, an
 * integer in decimal, a float as the row's JSON writes it (else in the
 * shortest %g form that reads back), a bool as true/false, a map or array
 * as its JSON taken from the row's JSON (`name` finds it there).  -1 for
 * null, or out of memory. */
int rs_value_text(const sluice_host_t *host, const sluice_row_t *row, const char *name,
                  const sluice_value_t *v, rs_buf_t *out);

/* The JSON text of a top-level member of a JSON object, or NULL. */
const char *rs_json_member(const char *json, size_t len, const char *name, size_t *vlen);

enum { RS_MODE_SET = 0, RS_MODE_HASH, RS_MODE_ZADD };

#define RS_MAX_HLL 8 /* hll_fields at most */

/* How rows become commands; borrowed by rs_row_commands. */
typedef struct {
  int mode;
  const rs_tmpl_t *key;
  const rs_tmpl_t *member; /* zadd */
  const char *score_field; /* zadd */
  uint64_t ttl_ms;         /* 0: none */
  char *const *hll_fields; /* redis_hll aggregates SET as HyperLogLogs at "<key>:<field>" */
  size_t n_hll;            /* at most RS_MAX_HLL */
} rs_spec_t;

#define RS_MAX_CMDS (3 + RS_MAX_HLL) /* commands per row at most */

/* The commands of one row: each command's arguments as (offset, length)
 * into text, so that the buffer may grow while they are built, or as the
 * host's bytes; rs_cmds_resp encodes one once it is complete.  Reused row
 * after row (rs_cmds_reset); rs_cmds_free releases it. */
typedef struct {
  rs_buf_t text;
  size_t *off, *len; /* every argument of every command */
  size_t nargs, cap;
  size_t first[RS_MAX_CMDS + 1]; /* command i: arguments first[i] .. first[i + 1] */
  size_t ncmds;
  size_t key_off, key_len;     /* the rendered key, in text */
  size_t ident_off, ident_len; /* what identifies what the row overwrites: the key (and member) */
  rs_buf_t resp;               /* scratch for rs_cmds_resp's caller */
} rs_cmds_t;

void rs_cmds_reset(rs_cmds_t *c);
void rs_cmds_free(rs_cmds_t *c);

/* Builds the commands writing row as spec says: the mode's, then for each
 * of hll_fields (rows of windows only, not late records) SET
 * "<key>:<field>" to the aggregate's HyperLogLog (host->row_hll, ABI 1.2),
 * with PX for the ttl.  0, or -1 with why (a template's field is missing,
 * the score is not a number, a row without such a redis_hll field, out of
 * memory): the row cannot be written as it is. */
int rs_row_commands(const rs_spec_t *spec, const sluice_host_t *host, const sluice_row_t *row,
                    rs_cmds_t *c, char *why, size_t whylen);

/* Command i in the Redis protocol (RESP: "*<n>\r\n" then "$<len>\r\n<arg>\r\n"
 * for each argument), written over out.  0, or -1 when out of memory. */
int rs_cmds_resp(const rs_cmds_t *c, size_t i, rs_buf_t *out);

/* An error reply ("WRONGTYPE Operation against ...") sorted: SLUICE_RETRY
 * when the same command may work later (the server is loading, busy, out
 * of memory, read-only, failing over), SLUICE_FATAL when it will not
 * (WRONGTYPE, a syntax error, a denied command). */
sluice_status_t rs_classify_error(const char *msg, size_t len);

/* Whether an error reply says the credentials are wrong or missing. */
bool rs_is_auth_error(const char *msg, size_t len);

/* FNV-1a, for telling a row written again from a newer one. */
uint64_t rs_hash(const void *data, size_t len);

#endif
