/* The declarative config schema: every section and option of sluice.toml in
 * static tables (name, type, default, unit, range, help), and the code that
 * checks a parsed TOML document against them, fills in defaults, prints the
 * effective config and generates the README's reference.  Pure. */
#ifndef SL_CONFIG_SCHEMA_H
#define SL_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "toml.h"

typedef enum {
  SL_OPT_STRING,
  SL_OPT_INT,
  SL_OPT_FLOAT,
  SL_OPT_BOOL,
  SL_OPT_DURATION,    /* "500ms", "10s" */
  SL_OPT_SIZE,        /* "64KiB" or an integer number of bytes */
  SL_OPT_ADDR,        /* "host:port", "[v6]:port", "/path.sock" */
  SL_OPT_ADDR_LIST,   /* one address or an array of them */
  SL_OPT_STRING_LIST, /* one string or an array of strings */
  SL_OPT_ENUM,        /* a string from `choices` */
  SL_OPT_MAP,         /* a table of scalar values under free-form keys */
  SL_OPT_TABLE,       /* a (usually inline) table with its own schema: `sub` */
} sl_opt_type_t;

enum {
  SL_OPT_REQUIRED = 1 << 0,
  SL_OPT_SECRET = 1 << 1, /* never printed: <redacted> */
};

enum {
  SL_SECTION_ARRAY = 1 << 0, /* [[name]]: an array of tables */
  SL_SECTION_OPEN = 1 << 1,  /* keys outside the table are allowed (plugin options) */
};

typedef struct sl_section sl_section_t;

typedef struct {
  const char *name;
  sl_opt_type_t type;
  const char *def; /* default as TOML value text, parsed like user input; NULL: none */
  const char *unit;
  int64_t min, max; /* INT: value; DURATION: ns; SIZE: bytes; both 0: unbounded */
  const char *choices; /* ENUM: "a|b|c" */
  unsigned flags;
  const sl_section_t *sub; /* TABLE */
  const char *help;
} sl_opt_t;

struct sl_section {
  const char *name; /* key in the parent table */
  unsigned flags;
  const sl_opt_t *opts; /* terminated by a zeroed entry; may be NULL */
  const sl_section_t *const *children; /* NULL-terminated; may be NULL */
  const char *help;
};

/* The schema of the whole file. */
extern const sl_section_t sl_schema_root;

/* Errors collected during validation, each "file:line:col: key: reason". */
typedef struct {
  char **lines;
  size_t n;
} sl_diag_t;

void sl_diag_add(sl_diag_t *d, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Adds a line as it is (an error that already names file:line:col). */
void sl_diag_add_line(sl_diag_t *d, const char *line);
void sl_diag_free(sl_diag_t *d);

/* Checks `doc` against the schema, reporting every problem into `d`
 * (unknown keys with a suggestion, wrong types, out-of-range values, missing
 * required keys), and inserts the defaults of absent options into the
 * document so that later readers see the effective config.  Returns the
 * number of errors added. */
size_t sl_schema_validate(const sl_section_t *root, sl_toml_value_t *doc, const char *file,
                          sl_diag_t *d);

/* Writes the effective config (defaults filled in, secrets redacted) as
 * TOML. */
void sl_schema_print(const sl_section_t *root, const sl_toml_value_t *doc, FILE *out);

/* Writes the Markdown reference of every section and option. */
void sl_schema_reference(const sl_section_t *root, FILE *out);

/* Levenshtein distance, for "did you mean". */
size_t sl_edit_distance(const char *a, const char *b);

/* Whether a free-form key (kafka.properties, sink options) names a secret. */
bool sl_schema_key_is_secret(const char *key);

#endif
