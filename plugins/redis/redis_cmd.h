/* What the redis sink sends for a row, and what a reply means: key
 * templates ("pv:${page}", plug_text.h) filled from the row's fields, a
 * field's value as Redis text, the commands of each mode (SET, HSET, ZADD, with PEXPIRE or
 * SET's PX for the ttl), and error replies sorted into retryable and
 * permanent.  Pure: no sockets, no loop; reads rows only through the host's
 * row functions, so that it can be tested with a fake host. */
#ifndef REDIS_CMD_H
#define REDIS_CMD_H

#include <sluice/sink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plug_text.h"

/* A value as Redis text, appended to out: a string as its bytes, an
 * integer in decimal, a float as the row's JSON writes it (else in the
 * shortest %g form that reads back), a bool as true/false, a map or array
 * as its JSON taken from the row's JSON (`name` finds it there).  -1 for
 * null, or out of memory. */
int rs_value_text(const sluice_host_t *host, const sluice_row_t *row, const char *name,
                  const sluice_value_t *v, pt_buf_t *out);

/* The JSON text of a top-level member of a JSON object, or NULL. */
const char *rs_json_member(const char *json, size_t len, const char *name, size_t *vlen);

enum { RS_MODE_SET = 0, RS_MODE_HASH, RS_MODE_ZADD };

#define RS_MAX_HLL 8 /* hll_fields at most */

/* How rows become commands; borrowed by rs_row_commands. */
typedef struct {
  int mode;
  const pt_tmpl_t *key;
  const pt_tmpl_t *member; /* zadd */
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
  pt_buf_t text;
  size_t *off, *len; /* every argument of every command */
  size_t nargs, cap;
  size_t first[RS_MAX_CMDS + 1]; /* command i: arguments first[i] .. first[i + 1] */
  size_t ncmds;
  size_t key_off, key_len;     /* the rendered key, in text */
  size_t ident_off, ident_len; /* what identifies what the row overwrites: the key (and member) */
  pt_buf_t resp;               /* scratch for rs_cmds_resp's caller */
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
int rs_cmds_resp(const rs_cmds_t *c, size_t i, pt_buf_t *out);

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
