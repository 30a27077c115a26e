/* Finding, loading and checking sink plugins (plugin_load.h). */
#include "sinks/plugin_load.h"

#include <dlfcn.h>
#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sl_build.h"

#define MAX_PLUGINS 64
#define MAX_DIRS 32

static sl_plugin_t *plugins[MAX_PLUGINS];
static size_t n_plugins;
static char *config_dirs[MAX_DIRS];
static size_t n_config_dirs;

void sl_plugin_set_dirs(const sl_str_list_t *dirs) {
  for (size_t i = 0; i < n_config_dirs; i++) free(config_dirs[i]);
  n_config_dirs = 0;
  for (size_t i = 0; dirs && i < dirs->n && n_config_dirs < MAX_DIRS / 2; i++)
    if ((config_dirs[n_config_dirs] = strdup(dirs->items[i]))) n_config_dirs++;
}

/* The build tree's plugins/ folder, when this executable is the build
 * tree's; else NULL. */
static const char *build_dir(void) {
  static char dir[PATH_MAX];
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return NULL;
  exe[n] = '\0';
  size_t bl = strlen(SL_BUILD_ROOT);
  if (strncmp(exe, SL_BUILD_ROOT, bl) != 0 || exe[bl] != '/') return NULL;
  snprintf(dir, sizeof dir, "%s/plugins", SL_BUILD_ROOT);
  return dir;
}

size_t sl_plugin_search_path(const char **out, size_t max) {
  static char env_copy[4096];
  size_t n = 0;
  for (size_t i = 0; i < n_config_dirs && n < max; i++) out[n++] = config_dirs[i];
  const char *env = getenv("SLUICE_PLUGIN_PATH");
  if (env && *env) {
    snprintf(env_copy, sizeof env_copy, "%s", env);
    for (char *save = NULL, *d = strtok_r(env_copy, ":", &save); d && n < max; d = strtok_r(NULL, ":", &save))
      out[n++] = d;
  }
  if (n < max) out[n++] = SL_PLUGIN_DIR;
  const char *b = build_dir();
  if (b && n < max) out[n++] = b;
  return n;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

static sl_opt_type_t core_type(sluice_opt_type_t t, bool *ok) {
  *ok = true;
  switch (t) {
  case SLUICE_OPT_STRING: return SL_OPT_STRING;
  case SLUICE_OPT_INT: return SL_OPT_INT;
  case SLUICE_OPT_FLOAT: return SL_OPT_FLOAT;
  case SLUICE_OPT_BOOL: return SL_OPT_BOOL;
  case SLUICE_OPT_DURATION: return SL_OPT_DURATION;
  case SLUICE_OPT_SIZE: return SL_OPT_SIZE;
  case SLUICE_OPT_ENUM: return SL_OPT_ENUM;
  case SLUICE_OPT_STRING_LIST: return SL_OPT_STRING_LIST;
  case SLUICE_OPT_MAP: return SL_OPT_MAP;
  case SLUICE_OPT_FLOAT_LIST: return SL_OPT_FLOAT_LIST;
  }
  *ok = false;
  return SL_OPT_STRING;
}

/* The binder fills the SDK's structs as the core's: they must agree. */
_Static_assert(sizeof(sluice_str_list_t) == sizeof(sl_str_list_t), "str list layout");
_Static_assert(sizeof(sluice_kv_t) == sizeof(sl_kv_t) && offsetof(sluice_kv_t, value) == offsetof(sl_kv_t, value) &&
                   offsetof(sluice_kv_t, line) == offsetof(sl_kv_t, line) &&
                   offsetof(sluice_kv_t, col) == offsetof(sl_kv_t, col),
               "kv layout");
_Static_assert(sizeof(sluice_kv_list_t) == sizeof(sl_kv_list_t), "kv list layout");
_Static_assert(sizeof(sluice_float_list_t) == sizeof(sl_float_list_t), "float list layout");

/* The bytes an option of type t fills in the options struct (sink.h). */
static size_t field_size(sluice_opt_type_t t) {
  switch (t) {
  case SLUICE_OPT_STRING: return sizeof(char *);
  case SLUICE_OPT_INT:
  case SLUICE_OPT_DURATION: return sizeof(int64_t);
  case SLUICE_OPT_FLOAT: return sizeof(double);
  case SLUICE_OPT_BOOL: return sizeof(bool);
  case SLUICE_OPT_SIZE: return sizeof(uint64_t);
  case SLUICE_OPT_ENUM: return sizeof(int);
  case SLUICE_OPT_STRING_LIST: return sizeof(sluice_str_list_t);
  case SLUICE_OPT_MAP: return sizeof(sluice_kv_list_t);
  case SLUICE_OPT_FLOAT_LIST: return sizeof(sluice_float_list_t);
  }
  return 1;
}

/* Checks the descriptor and builds the core view of its options. */
static sl_plugin_t *adopt(const sluice_sink_plugin_t *d, const char *path, char *err, size_t errlen) {
  if (d->abi_major != SLUICE_SINK_ABI_MAJOR || d->abi_minor > SLUICE_SINK_ABI_MINOR) {
    fail(err, errlen, "%s: built for sink plugin ABI %u.%u, this sluice has %d.%d (a plugin must have the same "
         "major version and at most the same minor version)", path, d->abi_major, d->abi_minor,
         SLUICE_SINK_ABI_MAJOR, SLUICE_SINK_ABI_MINOR);
    return NULL;
  }
  if (!d->name || !*d->name || !d->create || !d->write || !d->destroy) {
    fail(err, errlen, "%s: its descriptor lacks a name, create, write or destroy", path);
    return NULL;
  }
  size_t n = 0;
  for (const sluice_opt_t *o = d->options; o && o->name; o++) n++;
  sl_plugin_t *p = calloc(1, sizeof *p);
  if (!p || !(p->path = strdup(path)) || !(p->opts = calloc(n + 1, sizeof *p->opts))) goto nomem;
  for (size_t i = 0; i < n; i++) {
    const sluice_opt_t *o = &d->options[i];
    bool ok;
    sl_opt_t *c = &p->opts[i];
    *c = (sl_opt_t){.name = o->name, .type = core_type(o->type, &ok), .def = o->def, .min = o->min, .max = o->max,
                    .choices = o->choices, .flags = o->flags & (SLUICE_OPT_REQUIRED | SLUICE_OPT_SECRET),
                    .help = o->help, .offset = o->offset};
    if (c->type == SL_OPT_DURATION) c->unit = "duration";
    if (c->type == SL_OPT_SIZE) c->unit = "size";
    /* The whole field, not only its first byte, must lie in the struct:
     * the binder writes field_size bytes at the offset. */
    bool inside = ok && o->offset < d->conf_size && field_size(o->type) <= d->conf_size - o->offset;
    if (!ok || (c->type == SL_OPT_ENUM && !o->choices) || !inside) {
      fail(err, errlen, "%s: option \"%s\" has %s", path, o->name,
           !ok ? "an unknown type" : c->type == SL_OPT_ENUM ? "no choices" : "a field outside conf_size");
      goto fail;
    }
  }
  p->d = d;
  p->section = (sl_section_t){.name = d->name, .opts = p->opts, .help = d->description, .size = d->conf_size};
  /* A default that does not check would fail every config that leaves
   * the option out, reported at the user's table. */
  sl_diag_t dd = {0};
  if (sl_schema_check_defaults(&p->section, &dd)) {
    const char *line = dd.n ? dd.lines[0] : "?";
    if (!strncmp(line, "<schema>: ", 10)) line += 10;
    fail(err, errlen, "%s: the default of %s", path, line);
    sl_diag_free(&dd);
    goto fail;
  }
  sl_diag_free(&dd);
  return p;
nomem:
  fail(err, errlen, "%s: out of memory", path);
fail:
  if (p) {
    free(p->path);
    free(p->opts);
  }
  free(p);
  return NULL;
}

static const sl_plugin_t *add(sl_plugin_t *p, char *err, size_t errlen) {
  if (n_plugins == MAX_PLUGINS) {
    fail(err, errlen, "too many plugins (%d)", MAX_PLUGINS);
    free(p->path);
    free(p->opts);
    free(p);
    return NULL;
  }
  plugins[n_plugins++] = p;
  return p;
}

static const sl_plugin_t *loaded(const char *name) {
  for (size_t i = 0; i < n_plugins; i++)
    if (!strcmp(plugins[i]->d->name, name)) return plugins[i];
  return NULL;
}

const sl_plugin_t *sl_plugin_load_path(const char *path, char *err, size_t errlen) {
  for (size_t i = 0; i < n_plugins; i++)
    if (!strcmp(plugins[i]->path, path)) return plugins[i];
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    fail(err, errlen, "cannot load %s: %s", path, dlerror());
    return NULL;
  }
  const sluice_sink_plugin_t *d = dlsym(dl, SLUICE_SINK_SYMBOL);
  if (!d) {
    fail(err, errlen, "%s is not a sluice sink plugin: it has no %s symbol", path, SLUICE_SINK_SYMBOL);
    dlclose(dl);
    return NULL;
  }
  sl_plugin_t *p = adopt(d, path, err, errlen);
  if (!p) {
    dlclose(dl);
    return NULL;
  }
  const sl_plugin_t *same = loaded(d->name);
  if (same) {
    fail(err, errlen, "%s: a plugin named \"%s\" is loaded already, from %s", path, d->name, same->path);
    free(p->path);
    free(p->opts);
    free(p);
    dlclose(dl);
    return NULL;
  }
  /* Kept loaded for the life of the process: its code runs until exit. */
  return add(p, err, errlen);
}

const sl_plugin_t *sl_plugin_find(const char *name, char *err, size_t errlen) {
  const sl_plugin_t *p = loaded(name);
  if (p) return p;
  for (const char *c = name; *c; c++)
    if (*c == '/' || *c == '.') {
      fail(err, errlen, "\"%s\" is not a plugin name (a plugin is found by name in plugin_dirs)", name);
      return NULL;
    }
  const char *dirs[MAX_DIRS];
  size_t n = sl_plugin_search_path(dirs, MAX_DIRS);
  char searched[1024] = "";
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.so", dirs[i], name);
    int w = snprintf(searched + off, sizeof searched - off, "%s%s", i ? ", " : "", dirs[i]);
    if (w > 0 && (size_t)w < sizeof searched - off) off += (size_t)w;
    if (access(path, F_OK) != 0) continue;
    p = sl_plugin_load_path(path, err, errlen);
    if (p && strcmp(p->d->name, name)) {
      fail(err, errlen, "%s calls itself \"%s\", not \"%s\"", path, p->d->name, name);
      return NULL;
    }
    return p;
  }
  fail(err, errlen, "unknown sink plugin \"%s\": no %s.so in %s", name, name, searched);
  return NULL;
}

int sl_plugin_register(const sluice_sink_plugin_t *d, char *err, size_t errlen) {
  if (d->name && loaded(d->name)) return fail(err, errlen, "a plugin named \"%s\" is loaded already", d->name);
  sl_plugin_t *p = adopt(d, "(built in)", err, errlen);
  if (!p) return -1;
  return add(p, err, errlen) ? 0 : -1;
}
