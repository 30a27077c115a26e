/* Event times read from record fields (a job's `time_field`) and written
 * into result rows: epoch seconds, epoch milliseconds and RFC 3339 text, all
 * to and from int64 milliseconds since the epoch.  Pure and stateless: any
 * thread may call it. */
#ifndef SL_EVENT_TIME_H
#define SL_EVENT_TIME_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

/* The same values as sl_job_conf_t.time_format. */
typedef enum {
  SL_TIME_EPOCH = 0,    /* seconds, integer or fractional */
  SL_TIME_RFC3339 = 1,  /* "2024-05-01T12:00:00.250Z", "...+02:00" */
  SL_TIME_EPOCH_MS = 2, /* milliseconds, integer or fractional */
} sl_time_format_t;

/* Room for "YYYY-MM-DDTHH:MM:SS.mmmZ" with any year, and its NUL. */
#define SL_TIME_RFC3339_MAX 64

/* Parses RFC 3339 text s[0..len): a date, 'T' (or 't' or one space), a time
 * with optional fraction (digits past milliseconds are truncated) and 'Z' or
 * a +hh:mm / -hh:mm offset.  Returns 0 and *ms, or SL_ESYNTAX. */
int sl_time_parse_rfc3339(const char *s, size_t len, int64_t *ms);

/* Reads a record's time value (borrowed) in `format`: numbers for the epoch
 * formats (a string is refused, as is NaN or a value beyond +-2^62 ms), a
 * string for rfc3339.  Returns 0 and *ms, or SL_ESYNTAX (wrong type or
 * text) or SL_ERANGE. */
int sl_time_from_value(const msgpack_object *v, sl_time_format_t format, int64_t *ms);

/* Writes ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" (proleptic Gregorian, UTC; years
 * outside 0..9999 are written with as many digits as they need and a sign
 * when negative).  buf holds at least SL_TIME_RFC3339_MAX bytes. */
void sl_time_format_rfc3339(int64_t ms, char *buf);

#endif
