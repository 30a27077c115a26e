/* libFuzzer target: what the redis sink makes of what a server sends.  The
 * input is a stream of RESP replies, read by hiredis's reader as the
 * sink's async context reads them; every error reply (at any depth) is
 * classified as plugins/redis/redis.c and redis_conn.c classify it
 * (rs_classify_error, rs_is_auth_error).  The raw input is classified too,
 * as an error text of any bytes, and searched as a row's JSON text for a
 * few member names (rs_json_member, which reads floats and nested values
 * from the row's JSON). */
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_cmd.h"

#define CHECK(cond, ...)                                     \
  do {                                                       \
    if (!(cond)) {                                           \
      fprintf(stderr, "fuzz_redis_reply: " __VA_ARGS__);     \
      fputc('\n', stderr);                                   \
      abort();                                               \
    }                                                        \
  } while (0)

static void classify(const char *msg, size_t len) {
  sluice_status_t s = rs_classify_error(msg, len);
  CHECK(s == SLUICE_RETRY || s == SLUICE_FATAL, "classify gave %d", (int)s);
  (void)rs_is_auth_error(msg, len);
}

static void visit(const redisReply *r, int depth) {
  CHECK(depth < 64, "reply nested too deep");
  switch (r->type) {
  case REDIS_REPLY_ERROR:
    classify(r->str, r->len);
    break;
  case REDIS_REPLY_ARRAY: /* RESP2: hiredis 0.14 reads no RESP3 aggregates */
    for (size_t i = 0; i < r->elements; i++)
      if (r->element[i]) visit(r->element[i], depth + 1);
    break;
  default:
    break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A copy of exactly the input, so that ASan sees any read past it. */
  char *text = malloc(size ? size : 1);
  if (!text) return 0;
  memcpy(text, data, size);

  /* hiredis 0.14 allocates an array's elements when it reads "*<n>", with
   * no limit (newer versions have maxelements): a server sending
   * "*2000000000" makes it ask for 16 GB.  Not the sink's code, so such
   * inputs skip the reader. */
  bool huge = false;
  for (size_t i = 0; i < size && !huge; i++) {
    if (text[i] != '*') continue;
    uint64_t n = 0;
    for (size_t k = i + 1; k < size && text[k] >= '0' && text[k] <= '9' && n <= size; k++)
      n = n * 10 + (uint64_t)(text[k] - '0');
    huge = n > size;
  }

  redisReader *rd = huge ? NULL : redisReaderCreate();
  if (rd && redisReaderFeed(rd, text, size) == REDIS_OK) {
    void *reply;
    while (redisReaderGetReply(rd, &reply) == REDIS_OK && reply) {
      visit(reply, 0);
      freeReplyObject(reply);
    }
  }
  if (rd) redisReaderFree(rd);

  classify(text, size);
  static const char *const names[] = {"score", "v", "a", "", "nested"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    size_t vlen = 0;
    const char *m = rs_json_member(text, size, names[i], &vlen);
    CHECK(!m || (m >= text && m + vlen <= text + size), "member outside the text");
  }
  free(text);
  return 0;
}
