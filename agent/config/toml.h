/* TOML 1.0 parser: text in, a tree of values out, every key and value
 * carrying the line and column where it was written so that the config
 * schema can report errors as file:line:col.  Pure; no I/O but
 * sl_toml_parse_file.
 *
 * Lines and columns are 1-based; a column counts bytes from the start of the
 * line (a tab is one byte, "é" two), in error messages as in the tree, the
 * way gcc reports columns. */
#ifndef SL_TOML_H
#define SL_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  SL_TOML_STRING,
  SL_TOML_INTEGER,
  SL_TOML_FLOAT,
  SL_TOML_BOOL,
  SL_TOML_DATETIME,       /* offset date-time: 1979-05-27T07:32:00Z */
  SL_TOML_DATETIME_LOCAL, /* 1979-05-27T07:32:00 */
  SL_TOML_DATE_LOCAL,     /* 1979-05-27 */
  SL_TOML_TIME_LOCAL,     /* 07:32:00 */
  SL_TOML_ARRAY,
  SL_TOML_TABLE,
} sl_toml_type_t;

typedef struct sl_toml_value sl_toml_value_t;

typedef struct {
  int year, month, day;     /* set for DATETIME, DATETIME_LOCAL, DATE_LOCAL */
  int hour, minute, second; /* set for DATETIME, DATETIME_LOCAL, TIME_LOCAL */
  int nanosecond;           /* fractional seconds, truncated to ns */
  int offset_minutes;       /* DATETIME only; 0 for Z */
} sl_toml_datetime_t;

typedef struct {
  char *key; /* owned, NUL-terminated (a key may also contain NUL: see key_len) */
  size_t key_len;
  int line, col; /* where the key was written (1-based); for a table created
                    by a [header] the header's position */
  sl_toml_value_t *value; /* owned */
} sl_toml_kv_t;

struct sl_toml_value {
  sl_toml_type_t type;
  int line, col; /* where the value starts (1-based) */
  union {
    struct {
      char *ptr; /* owned, NUL-terminated; may hold NUL bytes (see len) */
      size_t len;
    } str;
    int64_t i;
    double f;
    bool b;
    sl_toml_datetime_t dt;
    struct {
      sl_toml_value_t **items; /* owned */
      size_t len;
    } arr;
    struct {
      sl_toml_kv_t *items; /* owned, in the order the keys were defined */
      size_t len;
    } tab;
  } u;
};

/* Parses `text` (len bytes, need not be NUL-terminated).  On success returns
 * 0 and sets *root to a TABLE owned by the caller (free with sl_toml_free).
 * On failure returns SL_ESYNTAX and writes one message to err:
 * "<filename>:<line>:<col>: <what is wrong>" (filename may be NULL: then
 * "<line>:<col>: ..."); SL_ENOMEM when memory runs out.  Trees nested deeper
 * than 128 levels (arrays, tables, dotted keys) are rejected, and so are
 * floats that overflow to infinity (write inf for that). */
int sl_toml_parse(const char *text, size_t len, const char *filename, sl_toml_value_t **root,
                  char *err, size_t errlen);

/* Reads and parses a file; -errno (with a message in err) when it cannot be
 * read. */
int sl_toml_parse_file(const char *path, sl_toml_value_t **root, char *err, size_t errlen);

/* An empty TABLE at line 0 (not from a file); free with sl_toml_free. */
sl_toml_value_t *sl_toml_table_new(void);

/* Appends key = v to TABLE t (key copied), taking v, which must come from
 * this module (sl_toml_parse, sl_toml_table_new); v is freed on failure.
 * The caller makes sure the key is not there yet.  0 or SL_ENOMEM. */
int sl_toml_table_append(sl_toml_value_t *t, const char *key, sl_toml_value_t *v);

/* Accepts NULL. */
void sl_toml_free(sl_toml_value_t *v);

/* Looks up `key` in a TABLE; NULL when absent or when t is not a table. */
const sl_toml_value_t *sl_toml_get(const sl_toml_value_t *t, const char *key);
const sl_toml_kv_t *sl_toml_get_kv(const sl_toml_value_t *t, const char *key);

/* "string", "integer", "float", "boolean", "datetime", "local datetime",
 * "local date", "local time", "array", "table". */
const char *sl_toml_type_name(sl_toml_type_t t);

/* Formats a date/time value the way TOML writes it (RFC 3339, 'T'
 * separator, fractional seconds only when non-zero, as 3, 6 or 9 digits).
 * Writes at most buflen-1 bytes and a NUL; returns the bytes written, 0 for
 * a value that is not a date/time. */
size_t sl_toml_datetime_format(const sl_toml_value_t *v, char *buf, size_t buflen);

#endif
