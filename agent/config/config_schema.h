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

#include "config/toml.h"
#include "core/units.h"

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
  SL_OPT_ENUM,        /* a string from `choices`; with `sub`, or a table of that schema */
  SL_OPT_MAP,         /* a table of scalar values under free-form keys */
  SL_OPT_TABLE,       /* a (usually inline) table with its own schema: `sub` */
  SL_OPT_FLOAT_LIST,  /* one number or an array of numbers */
} sl_opt_type_t;

enum {
  SL_OPT_REQUIRED = 1 << 0,
  SL_OPT_SECRET = 1 << 1, /* never printed: <redacted> */
};

enum {
  SL_SECTION_ARRAY = 1 << 0, /* [[name]]: an array of tables */
  SL_SECTION_OPEN = 1 << 1,  /* keys outside the table are allowed (plugin options) */
};

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

typedef struct sl_section sl_section_t;
typedef struct sl_bind_ctx sl_bind_ctx_t;

/* What each option type fills in the section's struct, at `offset`:
 *   STRING, ENUM-less text      char * (owned; NULL when unset)
 *   INT                         int64_t
 *   FLOAT                       double
 *   BOOL                        bool
 *   DURATION                    int64_t nanoseconds
 *   SIZE                        uint64_t bytes
 *   ADDR                        sl_addr_t
 *   ADDR_LIST                   sl_addr_list_t
 *   STRING_LIST                 sl_str_list_t
 *   ENUM                        int: the index of the value in `choices`;
 *                               with `sub`, a table sets it to the number
 *                               of choices and binds at `sub_offset`
 *   MAP                         sl_kv_list_t
 *   FLOAT_LIST                  sl_float_list_t
 *   TABLE                       a struct bound with `sub` (its own offsets) */
typedef struct {
  const char *name;
  sl_opt_type_t type;
  const char *def; /* default as TOML value text, parsed like user input; NULL: none */
  const char *unit;
  int64_t min, max; /* INT: value; DURATION: ns; SIZE: bytes; both 0: unbounded */
  const char *choices; /* ENUM: "a|b|c" */
  unsigned flags;
  const sl_section_t *sub; /* TABLE; ENUM: the schema of its table form */
  const char *help;
  size_t offset; /* of the field it fills, in the section's struct */
  size_t sub_offset; /* ENUM with sub: where its table form's struct is */
  /* Extra check of the raw value, run during validation (whatever else is
   * wrong, so that every error is listed at once); reports with
   * sl_diag_add.  NULL: none. */
  void (*check)(const sl_toml_value_t *v, const char *file, const char *path, sl_diag_t *d);
} sl_opt_t;

/* A child section and where its struct sits in the parent's struct (an
 * sl_conf_array_t there for SL_SECTION_ARRAY).  The parent places its
 * children, so a module's section can be embedded anywhere. */
typedef struct {
  const sl_section_t *section;
  size_t offset;
} sl_child_t;

struct sl_section {
  const char *name; /* key in the parent table */
  unsigned flags;
  const sl_opt_t *opts; /* terminated by a zeroed entry; may be NULL */
  const sl_child_t *children; /* terminated by a zeroed entry; may be NULL */
  const char *help;
  size_t size; /* of the struct it fills (each element's, for arrays) */
  /* After the section and its children are bound: checks that involve
   * several options, and derived state (compiled patterns).  Reports with
   * sl_bind_error.  Runs only for sections present in the document.  NULL:
   * none. */
  void (*finish)(void *conf, sl_bind_ctx_t *ctx);
  /* Frees what finish built (the bound options themselves are freed by
   * sl_schema_unbind).  Must accept a struct whose finish did not run or
   * stopped half way.  NULL: none. */
  void (*release)(void *conf);
};

/* for (each child section ch of s): ch is a const sl_section_t *const *. */
#define SL_FOR_EACH_CHILD(s, ch)                                                          \
  for (const sl_child_t *ch##_it = (s)->children; ch##_it && ch##_it->section; ch##_it++) \
    for (const sl_section_t *const *ch = &ch##_it->section; ch; ch = NULL)

/* A bound [[array]] section: `n` structs of the section's size. */
typedef struct {
  void *items; /* owned */
  size_t n;
} sl_conf_array_t;

typedef struct {
  char **items; /* owned, each owned */
  size_t n;
} sl_str_list_t;

typedef struct {
  sl_addr_t *items; /* owned */
  size_t n;
} sl_addr_list_t;

typedef struct {
  double *items; /* owned */
  size_t n;
} sl_float_list_t;

/* One entry of a MAP option: the key and the value's text ("true", "5",
 * "lz4"), with its position for later errors. */
typedef struct {
  char *key;   /* owned */
  char *value; /* owned */
  int line, col;
} sl_kv_t;

typedef struct {
  sl_kv_t *items; /* owned */
  size_t n;
} sl_kv_list_t;


/* Checks `doc` against the schema, reporting every problem into `d`
 * (unknown keys with a suggestion, wrong types, out-of-range values, missing
 * required keys), and inserts the defaults of absent options into the
 * document so that later readers see the effective config.  Returns the
 * number of errors added. */
size_t sl_schema_validate(const sl_section_t *root, sl_toml_value_t *doc, const char *file,
                          sl_diag_t *d);

/* Checks every option's default against the option itself (type, range,
 * choices), for tables written by hand: the daemon's in a test, a plugin's
 * when it is loaded.  Returns the number of errors added. */
size_t sl_schema_check_defaults(const sl_section_t *root, sl_diag_t *d);

/* Writes the effective config (defaults filled in, secrets redacted) as
 * TOML. */
void sl_schema_print(const sl_section_t *root, const sl_toml_value_t *doc, FILE *out);

/* Writes the Markdown reference of every section and option. */
void sl_schema_reference(const sl_section_t *root, FILE *out);
/* One section's part of it, under the heading `path` ("" for none). */
void sl_schema_reference_section(const sl_section_t *s, const char *path, FILE *out);

/* Levenshtein distance, for "did you mean". */
size_t sl_edit_distance(const char *a, const char *b);

/* Whether a free-form key (kafka.properties, sink options) names a secret. */
bool sl_schema_key_is_secret(const char *key);

/* ---- binding (config_bind.c) ---------------------------------------- */

/* Fills `conf` (a zeroed struct of root->size) from a validated document:
 * every option at its offset, every child section in its struct, array
 * sections as sl_conf_array_t; then runs the finish hooks (children before
 * their parent).  Returns the number of errors the hooks reported into `d`.
 * Whatever happens, release `conf` with sl_schema_unbind. */
size_t sl_schema_bind(const sl_section_t *root, const sl_toml_value_t *doc, void *conf, const char *file,
                      sl_diag_t *d);

/* Frees what binding and the finish hooks put into `conf` (not conf
 * itself); accepts a struct bound half way or not at all. */
void sl_schema_unbind(const sl_section_t *root, void *conf);

/* For finish hooks: reports an error at the option that filled `field` (a
 * pointer into the struct being finished) or at the child section whose
 * struct `field` is, as "file:line:col: path: msg"; with NULL or a field
 * nothing filled, at the section being finished. */
void sl_bind_error(sl_bind_ctx_t *ctx, const void *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same at an explicit position (a MAP entry's line and col). */
void sl_bind_error_at(sl_bind_ctx_t *ctx, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The config file's name, for hooks that report through other channels. */
const char *sl_bind_file(const sl_bind_ctx_t *ctx);

#endif
