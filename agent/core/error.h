/* Error codes shared by every module of the agent.
 *
 * Fallible functions return 0 on success and a negative value on failure:
 * either -errno or one of the SL_E* codes below.  The table is the single
 * source for the code, its symbolic name and its message. */
#ifndef SL_ERROR_H
#define SL_ERROR_H

#include <stddef.h>

#define SL_ERRNO_MAP(X)                                                        \
  X(CONFIG, -1001, "invalid configuration")                                   \
  X(SYNTAX, -1002, "syntax error")                                            \
  X(RANGE, -1003, "value out of range")                                       \
  X(UNIT, -1004, "missing or unknown unit")                                   \
  X(ADDR, -1005, "invalid address")                                           \
  X(NOMEM, -1006, "out of memory")                                            \
  X(MSGPACK, -1100, "malformed msgpack")                                      \
  X(TOOBIG, -1101, "message larger than chunk_size_limit")                    \
  X(DEPTH, -1102, "nesting deeper than the maximum depth")                    \
  X(NOTARRAY, -1103, "top-level value is not an array")                       \
  X(BADTAG, -1104, "tag is not a string")                                     \
  X(BADENTRY, -1105, "entry has a time or record of the wrong type")          \
  X(BADGZIP, -1106, "invalid gzip payload")                                   \
  X(BOMB, -1107, "decompressed payload larger than decompression_size_limit") \
  X(BADMODE, -1108, "message matches no forward mode")                        \
  X(BADOPTION, -1109, "option is not a map")                                  \
  X(VALUES, -1110, "message decodes to more values than decoded_values_limit") \
  X(TAGSIZE, -1111, "tag longer than tag_size_limit")                         \
  X(AUTH, -1200, "authentication failed")                                     \
  X(BADPING, -1201, "invalid ping message")                                   \
  X(NOROUTE, -1300, "tag matches no route")                                   \
  X(TEMPLATE, -1301, "topic template could not be filled")                   \
  X(KAFKA, -1400, "kafka error")                                              \
  X(QUEUEFULL, -1401, "kafka producer queue full")                            \
  X(CANCELED, -1500, "operation canceled")                                    \
  X(BADSTATE, -1600, "malformed serialised aggregate state")                  \
  X(PLUGIN, -1700, "the sink plugin refused the request")

enum {
#define SL_ERR_ENUM(name, code, msg) SL_E##name = (code),
  SL_ERRNO_MAP(SL_ERR_ENUM)
#undef SL_ERR_ENUM
};

/* Message for an error code (SL_E* or -errno); never NULL, static storage. */
const char *sl_strerror(int err);
/* Writes a message into err (when err and errlen are non-zero) and returns
 * code: `return sl_err_printf(err, errlen, SL_ESYNTAX, "bad %s", x);`. */
int sl_err_printf(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Symbolic name ("SL_ETOOBIG", "ENOENT"); never NULL, static storage. */
const char *sl_err_name(int err);

#endif
