/* fluentd tag patterns, as written in `<match>` and in sluice's routes.
 * Pure code; a compiled pattern is immutable, so any thread may match with
 * it concurrently.
 *
 * A spec is one or more patterns separated by whitespace; a tag matches the
 * spec when it matches any of them.  Within a pattern (fluentd's
 * GlobMatchPattern):
 *   *       any run of characters other than '.' (possibly empty), so `a.*`
 *           matches `a.b` and not `a` or `a.b.c`;
 *   **      any run of characters including '.'; written as a whole part it
 *           means zero or more parts: `a.**` matches `a`, `a.b`, `a.b.c`, and
 *           `**.b` and `a.**.b` match `b` and `a.b` as well;
 *   {x,y}   alternatives, each itself a pattern (`{a,b.*}.c`), may nest;
 *   \c      the character c literally;
 *   anything else matches itself.
 * Like fluentd, a '.' ending a pattern is ignored (`a.` matches `a`) and ','
 * outside braces is literal.  Unlike fluentd, unbalanced braces are rejected
 * rather than read literally.  Matching runs a Thompson NFA: time
 * O(tag length x pattern length), never exponential. */
#ifndef SL_TAG_MATCH_H
#define SL_TAG_MATCH_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sl_tag_pattern sl_tag_pattern_t;

/* Deepest nesting of {...} accepted. */
#define SL_TAG_MAX_BRACES 32

/* Compiles `spec` (borrowed, NUL-terminated).  On success returns 0 and sets
 * *out (owned; free with sl_tag_pattern_free).  On failure returns
 * SL_ESYNTAX (empty spec, unbalanced or too deeply nested braces) or
 * SL_ENOMEM, leaves *out NULL, and writes a message to err (may be NULL). */
int sl_tag_pattern_compile(const char *spec, sl_tag_pattern_t **out, char *err, size_t errlen);

/* Whether tag[0..len) matches.  Returns false also if memory for a very
 * large pattern cannot be allocated. */
bool sl_tag_pattern_match(const sl_tag_pattern_t *p, const char *tag, size_t len);

void sl_tag_pattern_free(sl_tag_pattern_t *p); /* accepts NULL */

#endif
