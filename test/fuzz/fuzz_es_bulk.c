/* libFuzzer target: the Elasticsearch sink's readers of what the server
 * answers (plugins/elasticsearch/es_bulk.c): the input as a _bulk
 * response for as many documents as it holds items and for one more, as
 * an error body and as a `GET /` body (es_bulk_response_fuzz).  Any crash,
 * leak or sanitizer report fails. */
#include <stddef.h>
#include <stdint.h>

#include "es_bulk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return es_bulk_response_fuzz(data, size); }
