/* What the elasticsearch sink sends and what the answers mean: index names
 * from a template (strftime on the row's window start, and ${field}s),
 * bulk items (an action line and the row's JSON), the _bulk response read
 * item by item and each item's status sorted into OK, RETRY and FATAL,
 * the error and `GET /` bodies, and gzip.  Pure: no sockets, no loop;
 * rows are read only through the host's row functions, so it can be
 * tested with a fake host and fuzzed (es_bulk_response_fuzz). */
#ifndef ES_BULK_H
#define ES_BULK_H

#include <sluice/sink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plug_text.h"

/* ---- index names ------------------------------------------------------------------ */

/* A compiled index template: literal text, formatted with strftime on the
 * window start (UTC), and ${field} placeholders, copied as the field's
 * value (never formatted: a '%' in a value stays).  Owned; es_index_free
 * releases it. */
typedef struct es_index es_index_t;

/* 0 and *out, or -1 with the reason in err (an unclosed or empty ${}, a
 * '%' ending the text, an empty template). */
int es_index_compile(const char *text, es_index_t **out, char *err, size_t errlen);
void es_index_free(es_index_t *t);

/* Appends the index of row to out (window start: host->row_window_start,
 * Unix ms; 0 for a late record).  -1 with why when a field is missing,
 * null, a map or an array, or when out of memory ("out of memory"). */
int es_index_render(const es_index_t *t, const sluice_host_t *host, const sluice_row_t *row,
                    pt_buf_t *out, char *why, size_t whylen);

/* ---- bulk requests -------------------------------------------------------------- */

enum { ES_OP_INDEX = 0, ES_OP_CREATE };

/* Appends one bulk item to body: the action line
 * {"index":{"_index":"...","_id":"..."}} (id NULL: none, Elasticsearch
 * makes one) and the document, each ended by '\n'.  The document is the
 * row's JSON as the host gives it (one object, no newline).  0, or -1
 * with why (the index is not UTF-8, out of memory). */
int es_bulk_item(int op, const char *index, size_t index_len, const char *id, const char *doc,
                 size_t doc_len, pt_buf_t *body, char *why, size_t whylen);

/* ---- responses -------------------------------------------------------------------- */

/* One item of a _bulk response. */
typedef struct {
  int status;  /* its HTTP status; 0 when the item had none */
  char *error; /* owned (free): "type: reason" of its error, or NULL */
} es_item_t;

/* Reads a _bulk response body that answers n documents into items[0..n)
 * (zeroed by the caller; es_items_clear frees their errors).  0, or -1
 * with why: not JSON, no "items" array, or not n of them (the caller then
 * knows nothing of any item). */
int es_bulk_response(const char *body, size_t len, size_t n, es_item_t *items, char *why,
                     size_t whylen);
void es_items_clear(es_item_t *items, size_t n);

/* An item's fate: 2xx OK; 409 on create (the document with this _id is
 * already there: written before) OK; 429 and 5xx RETRY (the cluster is
 * busy or a shard is unavailable); other 4xx (a mapping error, a bad
 * index name) and anything else FATAL. */
sluice_status_t es_item_outcome(int status, int op);

/* The fate of every row of a request answered with `status` and no item
 * to read: 408, 429 and 5xx RETRY (busy, timed out), 401 and 403 RETRY
 * (credentials can be fixed on the cluster without restarting sluice),
 * 404 RETRY (a proxy's path, a node starting), other 4xx FATAL (the body
 * itself was refused), anything else RETRY. */
sluice_status_t es_request_outcome(long status);

/* The reason an error body gives, written to out (NUL-terminated):
 * {"error":{"type":..,"reason":..}} as "type: reason", a string error as
 * itself, anything else as its first bytes with control characters
 * replaced. */
void es_error_text(const char *body, size_t len, char *out, size_t outlen);

/* From the body of `GET /`: the version ("8.11.0"; "opensearch 2.11.0"
 * when the distribution says so) and the cluster name.  0, or -1 when the
 * body is not the answer of an Elasticsearch (no version.number). */
int es_root_info(const char *body, size_t len, char *version, size_t vlen, char *cluster,
                 size_t clen);

/* ---- compression and URLs ---------------------------------------------------------- */

/* in[0..n) gzipped into out (replacing what it held).  0 or -1. */
int es_gzip(const void *in, size_t n, pt_buf_t *out);

/* A `hosts` entry as a base URL without a trailing '/': "es1:9200" gets
 * "http://"; "https://x/prefix/" keeps its scheme and path.  Returns an
 * owned string (free), or NULL with why (empty, another scheme, no host,
 * out of memory). */
char *es_base_url(const char *host, char *why, size_t whylen);

/* The _bulk URL of a base URL: base + "/_bulk?filter_path=..." (+
 * "&pipeline=<escaped>").  Owned (free), or NULL when out of memory. */
char *es_bulk_url(const char *base, const char *pipeline);

/* ---- fuzzing ------------------------------------------------------------------------ */

/* A libFuzzer-style entry point for the response parser: reads data as a
 * _bulk response, for as many documents as it holds items and for one
 * more, then as an error body and a `GET /` body.  Never crashes or leaks
 * on any input; returns 0. */
int es_bulk_response_fuzz(const uint8_t *data, size_t size);

#endif
