/* Typed config values written as strings: durations ("500ms", "1m30s"),
 * sizes ("64KiB", "8MiB") and listen addresses ("0.0.0.0:24224",
 * "[::1]:24224", "/run/sluice/fwd.sock").  Pure. */
#ifndef SL_UNITS_H
#define SL_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Duration: one or more <integer><unit> pairs, unit one of ns us ms s m h d
 * ("1h30m", "250ms").  Stores nanoseconds.  Errors (with a reason written to
 * err): SL_EUNIT (missing/unknown unit), SL_ERANGE (negative, overflow),
 * SL_ESYNTAX. */
int sl_duration_parse(const char *s, int64_t *ns, char *err, size_t errlen);

/* Size: <integer>[.<fraction>]<unit>, unit B, KB MB GB TB (powers of 1000),
 * KiB MiB GiB TiB (powers of 1024), or fluentd's k m g t (powers of 1024).
 * Stores bytes, rounded down. */
int sl_size_parse(const char *s, uint64_t *bytes, char *err, size_t errlen);

/* Formats for `check --print` and logs: the largest exact unit. */
void sl_duration_format(int64_t ns, char *buf, size_t len);
void sl_size_format(uint64_t bytes, char *buf, size_t len);

typedef enum { SL_ADDR_TCP = 1, SL_ADDR_UNIX } sl_addr_kind_t;

typedef struct {
  sl_addr_kind_t kind;
  char host[256]; /* TCP: IPv4/IPv6 literal (no brackets) or host name */
  int port;       /* TCP: 0..65535 (0: the kernel picks one) */
  char path[108]; /* UNIX: socket path */
} sl_addr_t;

/* "host:port", "[v6]:port", "/abs/path.sock" or "unix:path".  SL_EADDR with
 * the reason (missing port, bad port, unbalanced brackets, path too long). */
int sl_addr_parse(const char *s, sl_addr_t *out, char *err, size_t errlen);

/* "127.0.0.1:24224", "[::1]:24224", "unix:/run/x.sock". */
void sl_addr_format(const sl_addr_t *a, char *buf, size_t len);

#endif
