/* msgpack -> JSON encoding, pure: a decoded msgpack_object in, JSON text
 * appended to a growable buffer out.  Used wherever records leave sluice as
 * JSON (Kafka values, sinks, `sluice cat`).  Thread-agnostic: no globals.
 *
 * Mapping:
 *   nil -> null; bool -> true/false; integers -> exact decimal (full uint64
 *   and int64 range); float64 -> shortest text that strtod() reads back to
 *   the same double, float32 -> shortest text that strtof() reads back to the
 *   same float, with ".0" appended when the text would otherwise look like an
 *   integer; NaN and +-Inf -> null (JSON has no such numbers);
 *   str -> JSON string, valid UTF-8 passed through, each maximal ill-formed
 *   subsequence (Unicode "best practice", as Python's errors="replace")
 *   replaced by U+FFFD; bin -> standard base64 (with padding) in a string;
 *   ext -> base64 of the payload only (the type byte is dropped);
 *   array/map -> JSON array/object; map keys go through sl_json_encode_key.
 * Floats are formatted with snprintf, so LC_NUMERIC must stay "C" (the
 * daemon never calls setlocale for it). */
#ifndef SL_JSON_ENCODE_H
#define SL_JSON_ENCODE_H

#include <msgpack.h>
#include <stddef.h>

#include "core/buf.h"

/* Deepest nesting of arrays/maps accepted (including containers inside map
 * keys).  The forward decoder already bounds depth lower; this is a guard. */
#define SL_JSON_MAX_DEPTH 64

/* Appends the JSON text of `o` (borrowed) to `out`.  Returns 0, SL_ENOMEM or
 * SL_EDEPTH; on error `out` is restored to its previous length. */
int sl_json_encode(sl_buf_t *out, const msgpack_object *o);

/* Appends `s[0..len)` as a quoted, escaped JSON string (see UTF-8 rules
 * above).  Returns 0 or SL_ENOMEM (then `out` is restored). */
int sl_json_encode_string(sl_buf_t *out, const char *s, size_t len);

/* Appends a map key, always as a JSON string: str as sl_json_encode_string;
 * bin and ext as their base64 string; any other type as its JSON text
 * inside a string (1 -> "1", true -> "true", [1,2] -> "[1,2]").  Returns 0,
 * SL_ENOMEM or SL_EDEPTH (then `out` is restored). */
int sl_json_encode_key(sl_buf_t *out, const msgpack_object *k);

#endif
