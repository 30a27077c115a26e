/* Rows as the jobs stage hands them to the sink host, and the host's side
 * of the plugin ABI (plugins/sdk/sluice/sink.h): a row is the SDK's opaque
 * sluice_row_t, defined here.  Jobs loop only. */
#ifndef SL_SINK_H
#define SL_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/sink.h"

/* One row: its JSON object (one object, no newline), the same fields as a
 * msgpack map, and what plugins ask of it directly.  The strings are the
 * caller's (the jobs stage's batch) and must stay valid until the write
 * that carries the row is done. */
struct sluice_row {
  const char *json;
  size_t json_len;
  const char *msgpack;
  size_t msgpack_len;
  /* Right after the map (at msgpack + msgpack_len): the percentile
   * aggregates' sketches, a msgpack map of name to sl_dds_serialize bytes
   * (sl_job_row_sketches_to_msgpack); 0: none. */
  size_t sketches_len;
  uint64_t id;
  char id_hex[17];
  const char *job;
  int64_t window_start, window_end; /* ms; 0 for a late record */
  uint32_t n_keys; /* group-key fields, after id, job, window_start, window_end */
  uint8_t kind;    /* sluice_row_kind_t: final, early, a late record */
  void *fields;   /* the host's: msgpack_map unpacked on first use; freed by sl_sink_row_clear */
  void *sketches; /* the host's: sketches decoded on first use; freed by sl_sink_row_clear */
};
typedef struct sluice_row sl_sink_row_t;

/* Fills id and id_hex. */
void sl_sink_row_set_id(sl_sink_row_t *r, uint64_t id);

/* What the jobs stage knows of a row besides its bytes: the map is the
 * first msgpack_len bytes of its msgpack, the sketches the rest; how many
 * group keys it has, and its kind. */
void sl_sink_row_set_shape(sl_sink_row_t *r, size_t msgpack_len, size_t n_keys, sluice_row_kind_t kind);

/* Frees what the host cached in the row (its unpacked fields). */
void sl_sink_row_clear(sl_sink_row_t *r);

/* Rows handed to one write; borrowed until its done. */
typedef struct {
  const sl_sink_row_t *rows;
  size_t n;
} sl_sink_batch_t;

/* The outcome the host reports for one sl_sink_write or flush. */
typedef enum {
  SL_SINK_OK = SLUICE_OK,             /* every row written, or handled as on_failure says */
  SL_SINK_RETRY = SLUICE_RETRY,       /* a flush that failed */
  SL_SINK_FATAL = SLUICE_FATAL,       /* a flush that failed for good */
  SL_SINK_CANCELED = SLUICE_CANCELED, /* the sink closed first: not (all) written */
} sl_sink_status_t;

/* `message` is NULL with SL_SINK_OK; borrowed for the call. */
typedef void (*sl_sink_done_cb)(void *arg, int status, const char *message);

#endif
