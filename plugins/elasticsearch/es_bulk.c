/* Bulk bodies, index names and _bulk answers (es_bulk.h).  Pure; runs
 * wherever it is called (the jobs loop, in the plugin).
 *
 * Why the document is the row's JSON as it comes: the host already
 * encodes the row once, with its own shortest numbers, and re-encoding it
 * through jansson would only cost time and could change a number's text.
 * The action line is built with jansson, because the index name comes
 * from row fields and must be escaped.
 *
 * Why a template is split before strftime runs: a field's value may hold
 * a '%' (or be "%Y"), which must reach the index name as it is; so only
 * the literal parts go through strftime. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup, gmtime_r under -std=c11 */
#endif

#include "es_bulk.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

/* ---- index templates -------------------------------------------------------------- */

struct es_index {
  pt_tmpl_t *t;
};

void es_index_free(es_index_t *t) {
  if (!t) return;
  pt_tmpl_free(t->t);
  free(t);
}

int es_index_compile(const char *text, es_index_t **out, char *err, size_t errlen) {
  *out = NULL;
  if (!text || !*text) {
    snprintf(err, errlen, "index is empty");
    return -1;
  }
  es_index_t *t = calloc(1, sizeof *t);
  if (!t) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (pt_tmpl_compile(text, "index", &t->t, err, errlen)) goto fail;
  for (size_t i = 0; i < pt_tmpl_nparts(t->t); i++) {
    const pt_part_t *part = pt_tmpl_part(t->t, i);
    if (part->field) continue;
    /* A '%' that ends a literal part formats nothing: strftime's
     * behaviour is undefined there. */
    size_t pct = 0;
    for (size_t k = part->len; k > 0 && part->text[k - 1] == '%'; k--) pct++;
    if (pct % 2) {
      snprintf(err, errlen, "index \"%s\": a '%%' ends the text before %s (write %%%% for a '%%')", text,
               i + 1 < pt_tmpl_nparts(t->t) ? "a ${field}" : "the end");
      goto fail;
    }
  }
  *out = t;
  return 0;
fail:
  es_index_free(t);
  return -1;
}

static int append_strftime(const char *fmt, const struct tm *tm, pt_buf_t *out) {
  char stack[256];
  size_t cap = sizeof stack;
  char *b = stack;
  for (;;) {
    size_t n = strftime(b, cap, fmt, tm);
    /* 0 is either "did not fit" or an empty result (%p in some locales):
     * a buffer 16 times the format's length holds any real result. */
    if (n || cap > 16 * strlen(fmt) + 256) {
      int r = pt_buf_append(out, b, n);
      if (b != stack) free(b);
      return r;
    }
    cap *= 4;
    char *nb = b == stack ? malloc(cap) : realloc(b, cap);
    if (!nb) {
      if (b != stack) free(b);
      return -1;
    }
    b = nb;
  }
}

int es_index_render(const es_index_t *t, const sluice_host_t *host, const sluice_row_t *row,
                    pt_buf_t *out, char *why, size_t whylen) {
  struct tm tm;
  bool have_tm = false;
  for (size_t i = 0; i < pt_tmpl_nparts(t->t); i++) {
    const pt_part_t *part = pt_tmpl_part(t->t, i);
    if (part->field) {
      if (pt_field_text(t->t, part->text, host, row, out, why, whylen)) return -1;
      continue;
    }
    if (!memchr(part->text, '%', part->len)) {
      if (pt_buf_append(out, part->text, part->len)) goto nomem;
      continue;
    }
    if (!have_tm) {
      int64_t ms = host->row_window_start(row);
      time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
      if (!gmtime_r(&secs, &tm)) {
        snprintf(why, whylen, "index \"%s\": the window start %" PRId64 " ms is out of range",
                 pt_tmpl_source(t->t), ms);
        return -1;
      }
      have_tm = true;
    }
    if (append_strftime(part->text, &tm, out)) goto nomem;
  }
  return 0;
nomem:
  snprintf(why, whylen, "out of memory");
  return -1;
}

/* ---- bulk items ------------------------------------------------------------------- */

static int dump_cb(const char *buf, size_t size, void *data) {
  return pt_buf_append(data, buf, size);
}

int es_bulk_item(int op, const char *index, size_t index_len, const char *id, const char *doc,
                 size_t doc_len, pt_buf_t *body, char *why, size_t whylen) {
  size_t mark = body->len;
  json_t *meta = json_object();
  json_t *name = json_stringn(index, index_len);
  json_t *action = json_object();
  int r = -1;
  if (!meta || !action) goto nomem;
  if (!name) {
    snprintf(why, whylen, "the index name \"%.*s\" is not valid UTF-8", (int)index_len, index);
    goto out;
  }
  if (json_object_set(meta, "_index", name) ||
      (id && json_object_set_new(meta, "_id", json_string(id))) ||
      json_object_set(action, op == ES_OP_CREATE ? "create" : "index", meta))
    goto nomem;
  if (json_dump_callback(action, dump_cb, body, JSON_COMPACT) || pt_buf_append(body, "\n", 1) ||
      pt_buf_append(body, doc, doc_len) || pt_buf_append(body, "\n", 1))
    goto nomem;
  r = 0;
  goto out;
nomem:
  snprintf(why, whylen, "out of memory");
out:
  if (r) body->len = mark;
  json_decref(name);
  json_decref(meta);
  json_decref(action);
  return r;
}

/* ---- responses ---------------------------------------------------------------------- */

void es_items_clear(es_item_t *items, size_t n) {
  for (size_t i = 0; items && i < n; i++) {
    free(items[i].error);
    items[i] = (es_item_t){0};
  }
}

/* "type: reason" of an error value (an object, or a string). */
static char *error_string(json_t *err) {
  char b[1024];
  if (json_is_string(err)) {
    snprintf(b, sizeof b, "%s", json_string_value(err));
  } else if (json_is_object(err)) {
    const char *type = json_string_value(json_object_get(err, "type"));
    const char *reason = json_string_value(json_object_get(err, "reason"));
    json_t *cause = json_object_get(err, "caused_by");
    const char *ctype = json_string_value(json_object_get(cause, "type"));
    const char *creason = json_string_value(json_object_get(cause, "reason"));
    int n = snprintf(b, sizeof b, "%s: %s", type ? type : "error",
                     reason ? reason : "(no reason given)");
    if ((ctype || creason) && n > 0 && (size_t)n < sizeof b)
      snprintf(b + n, sizeof b - (size_t)n, " (caused by %s: %s)", ctype ? ctype : "error",
               creason ? creason : "(no reason given)");
  } else {
    return NULL;
  }
  return strdup(b);
}

int es_bulk_response(const char *body, size_t len, size_t n, es_item_t *items, char *why,
                     size_t whylen) {
  json_error_t jerr;
  json_t *root = json_loadb(body ? body : "", len, JSON_DECODE_ANY, &jerr);
  if (!root) {
    snprintf(why, whylen, "the answer is not JSON (%s at byte %d)", jerr.text, jerr.position);
    return -1;
  }
  int r = -1;
  json_t *arr = json_object_get(root, "items");
  if (!json_is_array(arr)) {
    snprintf(why, whylen, "the answer has no \"items\" array");
    goto out;
  }
  if (json_array_size(arr) != n) {
    snprintf(why, whylen, "the answer has %zu items for %zu documents", json_array_size(arr), n);
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    /* {"index": {"_id": .., "status": 201, "error": {..}}}: one key, the
     * action's name. */
    json_t *item = json_array_get(arr, i);
    const char *key;
    json_t *res = NULL, *v;
    json_object_foreach(item, key, v) {
      res = v;
      break;
    }
    json_t *st = json_object_get(res, "status");
    items[i].status =
        json_is_integer(st) && json_integer_value(st) >= 0 && json_integer_value(st) < 1000
            ? (int)json_integer_value(st)
            : 0;
    free(items[i].error);
    items[i].error = error_string(json_object_get(res, "error"));
  }
  r = 0;
out:
  json_decref(root);
  return r;
}

sluice_status_t es_item_outcome(int status, int op) {
  if (status >= 200 && status < 300) return SLUICE_OK;
  if (status == 409 && op == ES_OP_CREATE) return SLUICE_OK;
  if (status == 429 || (status >= 500 && status < 600)) return SLUICE_RETRY;
  return SLUICE_FATAL;
}

sluice_status_t es_request_outcome(long status) {
  if (status >= 200 && status < 300) return SLUICE_OK;
  if (status == 401 || status == 403 || status == 404 || status == 408 || status == 429)
    return SLUICE_RETRY;
  if (status >= 400 && status < 500) return SLUICE_FATAL;
  return SLUICE_RETRY;
}

void es_error_text(const char *body, size_t len, char *out, size_t outlen) {
  if (!outlen) return;
  out[0] = '\0';
  json_t *root = body && len ? json_loadb(body, len, JSON_DECODE_ANY, NULL) : NULL;
  char *s = root ? error_string(json_object_get(root, "error")) : NULL;
  json_decref(root);
  if (s) {
    snprintf(out, outlen, "%s", s);
    free(s);
    return;
  }
  size_t n = 0;
  for (size_t i = 0; body && i < len && n + 1 < outlen && i < 200; i++) {
    unsigned char c = (unsigned char)body[i];
    out[n++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
  }
  while (n && out[n - 1] == ' ') n--;
  out[n] = '\0';
}

int es_root_info(const char *body, size_t len, char *version, size_t vlen, char *cluster,
                 size_t clen) {
  json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
  json_t *ver = json_object_get(root, "version");
  const char *num = json_string_value(json_object_get(ver, "number"));
  const char *dist = json_string_value(json_object_get(ver, "distribution"));
  const char *name = json_string_value(json_object_get(root, "cluster_name"));
  int r = -1;
  if (num) {
    if (dist && strcmp(dist, "elasticsearch") != 0)
      snprintf(version, vlen, "%s %s", dist, num);
    else
      snprintf(version, vlen, "%s", num);
    snprintf(cluster, clen, "%s", name ? name : "?");
    r = 0;
  }
  json_decref(root);
  return r;
}

/* ---- gzip and URLs ----------------------------------------------------------------------- */

int es_gzip(const void *in, size_t n, pt_buf_t *out) {
  z_stream z = {0};
  out->len = 0;
  /* 15 + 16: a gzip header and trailer, not zlib's. */
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return -1;
  uLong bound = deflateBound(&z, (uLong)n);
  int r = -1;
  if (out->cap < bound) {
    char *p = realloc(out->p, bound);
    if (!p) goto out;
    out->p = p;
    out->cap = bound;
  }
  z.next_in = (Bytef *)(uintptr_t)in;
  z.avail_in = (uInt)n;
  z.next_out = (Bytef *)out->p;
  z.avail_out = (uInt)out->cap;
  if (n > UINT32_MAX || deflate(&z, Z_FINISH) != Z_STREAM_END) goto out;
  out->len = z.total_out;
  r = 0;
out:
  deflateEnd(&z);
  return r;
}

char *es_base_url(const char *host, char *why, size_t whylen) {
  const char *rest = host;
  const char *scheme = "http://";
  if (strncmp(host, "http://", 7) == 0) {
    rest = host + 7;
  } else if (strncmp(host, "https://", 8) == 0) {
    rest = host + 8;
    scheme = "https://";
  } else if (strstr(host, "://")) {
    snprintf(why, whylen, "host \"%s\": only http:// and https:// are known", host);
    return NULL;
  }
  size_t len = strlen(rest);
  while (len && rest[len - 1] == '/') len--;
  if (!len || rest[0] == '/') {
    snprintf(why, whylen, "host \"%s\" names no server (write \"http://es1:9200\")", host);
    return NULL;
  }
  size_t sl = strlen(scheme);
  char *url = malloc(sl + len + 1);
  if (!url) {
    snprintf(why, whylen, "out of memory");
    return NULL;
  }
  memcpy(url, scheme, sl);
  memcpy(url + sl, rest, len);
  url[sl + len] = '\0';
  return url;
}

char *es_bulk_url(const char *base, const char *pipeline) {
  /* filter_path: the answer carries only what is read, not every item's
   * _index, _version, _shards and _seq_no. */
  static const char path[] =
      "/_bulk?filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason,"
      "items.*.error.caused_by.type,items.*.error.caused_by.reason";
  pt_buf_t b = {0};
  int r = pt_buf_append(&b, base, strlen(base)) | pt_buf_append(&b, path, sizeof path - 1);
  if (pipeline) {
    r |= pt_buf_append(&b, "&pipeline=", 10);
    for (const unsigned char *p = (const unsigned char *)pipeline; *p; p++) {
      char e[4];
      if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '-' || *p == '_' || *p == '.' || *p == '~')
        r |= pt_buf_append(&b, p, 1);
      else
        r |= pt_buf_append(&b, e, (size_t)snprintf(e, sizeof e, "%%%02X", *p));
    }
  }
  r |= pt_buf_append(&b, "", 1);
  if (r) {
    pt_buf_free(&b);
    return NULL;
  }
  return b.p;
}

/* ---- fuzzing -------------------------------------------------------------------------------- */

int es_bulk_response_fuzz(const uint8_t *data, size_t size) {
  const char *body = (const char *)data;
  size_t n = 0;
  json_t *root = json_loadb(body, size, JSON_DECODE_ANY, NULL);
  n = json_array_size(json_object_get(root, "items"));
  json_decref(root);
  if (n > 4096) n = 4096;
  es_item_t *items = calloc(n + 1, sizeof *items);
  if (!items) return 0;
  char why[256], text[512], ver[64], cl[64];
  for (size_t k = n; k <= n + 1; k++) {
    if (es_bulk_response(body, size, k, items, why, sizeof why) == 0)
      for (size_t i = 0; i < k; i++) (void)es_item_outcome(items[i].status, (int)(i & 1));
    es_items_clear(items, n + 1);
  }
  free(items);
  es_error_text(body, size, text, sizeof text);
  (void)es_root_info(body, size, ver, sizeof ver, cl, sizeof cl);
  return 0;
}
