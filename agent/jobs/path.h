/* Field paths into msgpack records, as jobs write them in `where` and
 * `group_by`: `a.b.c`, `a["odd key"]`, `a[0]` and combinations such as
 * `req.headers["x-id"][2]`.  Pure.  A path is parsed once (when the config
 * is read) and is then immutable: any thread may look up with it, and a
 * lookup allocates nothing.
 *
 * Grammar (no spaces anywhere inside a path):
 *   path  = first { "." name | "[" index "]" | "[" string "]" }
 *   first = name | "[" index "]" | "[" string "]"
 *   name  = [A-Za-z_][A-Za-z0-9_]*        (ASCII; other keys are quoted)
 *   index = [0-9]+                         (at most 4294967295; a negative
 *                                           index is a syntax error: there
 *                                           is no counting from the end)
 *   string = a double-quoted string: \" is a quote, \\ a backslash, \n \r
 *            \t the control characters; any other backslash pair is kept as
 *            written (both characters), so regexes read naturally in the
 *            where language, which uses the same strings.
 * So `a.0` is an error (write `a[0]`), and keys holding '-', '@', '.',
 * spaces or non-ASCII are written `["x-id"]`.
 *
 * Lookup: a name or string step needs a map and takes the value of the first
 * key whose bytes equal the step's (keys of type STR or BIN; other key types
 * never match); an index step needs an array and an index below its size.
 * Anything else (a wrong container type, a missing key, an index past the
 * end) makes the path missing. */
#ifndef SL_PATH_H
#define SL_PATH_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* One step: a map key (key != NULL) or an array index (key == NULL). */
typedef struct {
  char *key;      /* owned, NUL-terminated (keys from text hold no NUL) */
  uint32_t len;   /* key bytes */
  uint32_t index; /* when key == NULL */
} sl_path_step_t;

typedef struct {
  sl_path_step_t *steps; /* owned; free with sl_path_free */
  size_t n;              /* >= 1 once parsed */
} sl_path_t;

/* Parses the whole of `text` (borrowed).  Returns 0 and fills *out (free with
 * sl_path_free), or SL_ESYNTAX with *err_col set to the 1-based byte column
 * of the problem (may be NULL), or SL_ENOMEM.  *out is zeroed on failure. */
int sl_path_parse(const char *text, sl_path_t *out, int *err_col);

/* Reads the longest path at the start of `text` and stops before the first
 * character that cannot continue it (how the where language reads paths
 * inside expressions; use it also to get a reason).  Returns 0, sets *used to
 * the bytes read and fills *out; or SL_ESYNTAX with *err_col (1-based,
 * relative to text) and *why (static text, e.g. `expected "]"`); or
 * SL_ENOMEM.  err_col and why may be NULL. */
int sl_path_scan(const char *text, size_t *used, sl_path_t *out, int *err_col, const char **why);

/* Reads a double-quoted string at text[0] == '"' with the escapes above.
 * Returns 0, sets *used (quotes included), *out (owned, NUL-terminated;
 * free()) and *len; or SL_ESYNTAX (unterminated: *err_col 1, at the opening
 * quote) or SL_ENOMEM. */
int sl_path_unquote(const char *text, size_t *used, char **out, uint32_t *len, int *err_col,
                    const char **why);

/* The value at `path` in `record` (both borrowed), or NULL when missing (see
 * Lookup above).  The result points into record.  A NULL record is missing. */
const msgpack_object *sl_path_lookup(const sl_path_t *path, const msgpack_object *record);

/* Appends the canonical text to `out` (not NUL-terminated): names joined by
 * '.', other keys as ["..."] with '"', '\' and the three control characters
 * escaped, indexes as [N].  sl_path_parse reads it back to the same path;
 * `a["b"]` and `a.b` both format as `a.b`.  0 or SL_ENOMEM. */
int sl_path_format(const sl_path_t *path, sl_buf_t *out);

/* Frees the steps and zeroes *path; accepts a zeroed path. */
void sl_path_free(sl_path_t *path);

#endif
