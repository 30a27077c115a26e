/* The config schema: each kind of error with its exact message and
 * position, defaults filled in, secrets never printed, the reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_schema.h"
#include "daemon/config.h"
#include "tap.h"
#include "config/toml.h"

/* Validates `text` and returns the diagnostics joined by newlines (static
 * buffer), or "" when valid. */
static const char *check(const char *text, sl_toml_value_t **keep) {
  static char out[4096];
  char err[512];
  sl_toml_value_t *doc = NULL;
  out[0] = 0;
  if (sl_toml_parse(text, strlen(text), "t.toml", &doc, err, sizeof err)) {
    snprintf(out, sizeof out, "parse: %s", err);
    return out;
  }
  sl_diag_t d = {0};
  sl_schema_validate(&sl_schema_root, doc, "t.toml", &d);
  for (size_t i = 0; i < d.n; i++) {
    strncat(out, d.lines[i], sizeof out - strlen(out) - 2);
    if (i + 1 < d.n) strcat(out, "\n");
  }
  sl_diag_free(&d);
  if (keep)
    *keep = doc;
  else
    sl_toml_free(doc);
  return out;
}

static const char *print(sl_toml_value_t *doc) {
  static char *buf;
  size_t len;
  free(buf);
  FILE *f = open_memstream(&buf, &len);
  sl_schema_print(&sl_schema_root, doc, f);
  fclose(f);
  return buf;
}

static void errors(void) {
  is_str(check("[input.forward]\nlistn = \"0.0.0.0:1\"\n", NULL),
         "t.toml:2:1: input.forward: unknown key \"listn\" (did you mean \"listen\"?)",
         "unknown key: position and suggestion");
  is_str(check("[log]\nverbosity = 3\n", NULL), "t.toml:2:1: log: unknown key \"verbosity\"",
         "unknown key without a close match: no suggestion");
  is_str(check("[kafak]\nbrokers = \"embedded\"\n", NULL),
         "t.toml:1:1: top level: unknown key \"kafak\" (did you mean \"kafka\"?)",
         "misspelt section suggested");
  is_str(check("[input.forward]\nmax_connections = \"many\"\n", NULL),
         "t.toml:2:19: input.forward.max_connections: expected an integer, got string", "wrong type");
  is_str(check("[input.forward]\nmax_connections = 0\n", NULL),
         "t.toml:2:19: input.forward.max_connections: 0 is out of range (1 to 1000000)", "integer out of range");
  is_str(check("[input.forward]\nchunk_size_limit = \"2GiB\"\n", NULL),
         "t.toml:2:20: input.forward.chunk_size_limit: 2GiB is out of range (1KiB to 1GiB)", "size out of range");
  is_str(check("[input.forward]\nidle_timeout = \"10\"\n", NULL),
         "t.toml:2:16: input.forward.idle_timeout: duration \"10\" has no unit (use ns, us, ms, s, m, h or d)",
         "duration without unit");
  is_str(check("[input.forward]\nidle_timeout = \"-1s\"\n", NULL),
         "t.toml:2:16: input.forward.idle_timeout: duration \"-1s\" is negative", "negative duration");
  is_str(check("[input.forward]\nlisten = [\"0.0.0.0:99999\"]\n", NULL),
         "t.toml:2:11: input.forward.listen: address \"0.0.0.0:99999\" has a bad port (expected 0-65535)",
         "bad port in an address list, at the element");
  is_str(check("[input.forward]\nlisten = 24224\n", NULL),
         "t.toml:2:10: input.forward.listen: expected an address string or an array of them, got integer",
         "address of the wrong type");
  is_str(check("[log]\nlevel = \"verbose\"\n", NULL),
         "t.toml:2:9: log.level: \"verbose\" is not one of: error,warn,info,debug", "enum value");
  is_str(check("[kafka]\nbrokers = \"embedded\"\n[[route]]\nmatch = \"**\"\n", NULL),
         "t.toml:3:1: route[0]: missing required key \"topic\"", "missing required key at the table header");
  is_str(check("[kafka]\nclient_id = \"x\"\n", NULL), "t.toml:1:1: kafka: missing required key \"brokers\"",
         "missing required key in a section");
  is_str(check("route = 3\n", NULL), "t.toml:1:1: route: expected an array of tables ([[route]]), got integer",
         "array-of-tables section given a scalar");
  is_str(check("[kafka]\nbrokers = \"embedded\"\n[kafka.properties]\n\"linger.ms\" = [1]\n", NULL),
         "t.toml:4:15: kafka.properties.linger.ms: expected a string, number or boolean, got array",
         "property of the wrong type");
  is_str(check("[[job]]\nname = \"j\"\ntopics = [\"t\"]\nwindow = { type = \"rolling\" }\n"
               "aggregates = { n = \"count()\" }\nsinks = [\"s\"]\n",
               NULL),
         "t.toml:4:19: job[0].window.type: \"rolling\" is not one of: tumbling,hopping,session",
         "nested inline table checked against its own schema");
  is_str(check("[input.forward.security]\nshared_key = 42\n", NULL),
         "t.toml:2:14: input.forward.security.shared_key: expected a string, got integer (<redacted>)",
         "secret of the wrong type: value not shown");
  const char *many = check("[input.forward]\nlistn = \"x\"\nmax_depth = 99\n[log]\nlevel = 1\n", NULL);
  ok(strstr(many, "2:1:") && strstr(many, "3:13:") && strstr(many, "5:9:"), "every error is listed");
  is_str(check("[[sink]]\nname = \"r\"\nplugin = \"redis\"\naddress = \"127.0.0.1:6379\"\n", NULL), "",
         "sinks take plugin options");
}

static void defaults_and_print(void) {
  sl_toml_value_t *doc = NULL;
  is_str(check("[input.forward]\nlisten = \"127.0.0.1:0\"\n[input.forward.security]\nshared_key = \"s3cret\"\n"
               "[[input.forward.security.users]]\nusername = \"u\"\npassword = \"pw-value\"\n"
               "[kafka]\nbrokers = [\"k1:9092\"]\n[kafka.properties]\n\"sasl.password\" = \"hunter2\"\n"
               "\"linger.ms\" = 10\n",
               &doc),
         "", "a valid config");
  const sl_toml_value_t *fw = sl_toml_get(sl_toml_get(doc, "input"), "forward");
  const sl_toml_value_t *v = sl_toml_get(fw, "chunk_size_limit");
  ok(v && v->type == SL_TOML_STRING && strcmp(v->u.str.ptr, "8MiB") == 0, "default chunk_size_limit filled in");
  v = sl_toml_get(sl_toml_get(doc, "log"), "level");
  ok(v && strcmp(v->u.str.ptr, "info") == 0, "absent [log] section created with its defaults");
  const char *p = print(doc);
  ok(strstr(p, "shared_key = \"<redacted>\"") != NULL, "--print redacts shared_key");
  ok(strstr(p, "password = \"<redacted>\"") != NULL, "--print redacts a user's password");
  ok(strstr(p, "\"sasl.password\" = \"<redacted>\"") != NULL, "--print redacts secret librdkafka properties");
  ok(!strstr(p, "s3cret") && !strstr(p, "pw-value") && !strstr(p, "hunter2"), "no secret appears anywhere");
  ok(strstr(p, "\"linger.ms\" = 10") != NULL, "ordinary properties are printed");
  ok(strstr(p, "[[input.forward.security.users]]\nusername = \"u\"") != NULL, "arrays of tables printed");
  ok(strstr(p, "idle_timeout = \"5m\"") != NULL, "defaults printed");

  /* The printed config is itself valid and prints the same. */
  char *copy = strdup(p);
  sl_toml_value_t *doc2 = NULL;
  is_str(check(copy, &doc2), "", "printed config validates");
  ok(doc2 && strcmp(print(doc2), copy) == 0, "printing is stable");
  free(copy);
  sl_toml_free(doc2);
  sl_toml_free(doc);
}

static void reference(void) {
  char *buf;
  size_t len;
  FILE *f = open_memstream(&buf, &len);
  sl_schema_reference(&sl_schema_root, f);
  fclose(f);
  const char *want[] = {"#### `[input.forward]`", "#### `[[route]]`", "#### `[kafka]`", "| `chunk_size_limit` | size | `\"8MiB\"` |",
                        "Secret: never printed."};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) ok(strstr(buf, want[i]) != NULL, "reference has %s", want[i]);
  free(buf);
  is_int(sl_edit_distance("listn", "listen"), 1, "edit distance");
  ok(sl_schema_key_is_secret("ssl.key.password") && !sl_schema_key_is_secret("ssl.key.location"),
     "secret key detection");
}

/* Every default in the daemon's tables is a valid value of its option; a
 * broken one (here: an enum default not among the choices, a size below the
 * minimum) is reported. */
static void defaults_valid(void) {
  sl_diag_t d = {0};
  is_int((int)sl_schema_check_defaults(&sl_schema_root, &d), 0, "every built-in default is valid%s%s",
         d.n ? ": " : "", d.n ? d.lines[0] : "");
  sl_diag_free(&d);
  static const sl_opt_t bad_opts[] = {
      {.name = "mode", .type = SL_OPT_ENUM, .def = "\"fast\"", .choices = "set|hash"},
      {.name = "buffer", .type = SL_OPT_SIZE, .def = "\"1KiB\"", .min = 4096, .max = 1 << 20},
      {0},
  };
  static const sl_section_t bad = {.name = "plugin", .opts = bad_opts};
  is_int((int)sl_schema_check_defaults(&bad, &d), 2, "two broken defaults found");
  ok(d.n == 2 && strstr(d.lines[0], "mode: \"fast\" is not one of: set,hash") &&
         strstr(d.lines[1], "buffer: 1KiB is out of range"),
     "each named with its key and reason");
  sl_diag_free(&d);
}

int main(void) {
  defaults_valid();
  errors();
  defaults_and_print();
  reference();
  return tap_done();
}
