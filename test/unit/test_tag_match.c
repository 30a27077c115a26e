/* Unit tests for agent/tag_match.c: fluentd's documented <match> examples,
 * GlobMatchPattern corner cases (checked against fluentd's regex
 * translation), compile errors, and a pathological pattern that would take
 * exponential time with a backtracking matcher. */
#include <stdlib.h>
#include <time.h>

#include "core/error.h"
#include "ingest/tag_match.h"
#include "tap.h"

/* Checks `tag` against `spec`. */
static void t(const char *spec, const char *tag, bool want) {
  sl_tag_pattern_t *p = NULL;
  char err[128] = "";
  int r = sl_tag_pattern_compile(spec, &p, err, sizeof err);
  if (r) {
    ok(0, "'%s' compiles (%s)", spec, err);
    return;
  }
  ok(sl_tag_pattern_match(p, tag, strlen(tag)) == want, "'%s' %s '%s'", spec,
     want ? "matches" : "does not match", tag);
  sl_tag_pattern_free(p);
}

static void bad(const char *spec, const char *want_msg) {
  sl_tag_pattern_t *p = (sl_tag_pattern_t *)&p;
  char err[128] = "";
  int r = sl_tag_pattern_compile(spec, &p, err, sizeof err);
  is_int(r, SL_ESYNTAX, "'%s' rejected", spec);
  ok(p == NULL, "'%s': no pattern returned", spec);
  ok(strstr(err, want_msg) != NULL, "'%s': message '%s' mentions '%s'", spec, err, want_msg);
}

static void test_documented(void) {
  /* docs.fluentd.org, "Config File Syntax: How do the match patterns work?" */
  t("a.*", "a.b", true);
  t("a.*", "a", false);
  t("a.*", "a.b.c", false);
  t("a.**", "a", true);
  t("a.**", "a.b", true);
  t("a.**", "a.b.c", true);
  t("a.**", "ab", false);
  t("a.**", "b.a", false);
  t("{a,b}", "a", true);
  t("{a,b}", "b", true);
  t("{a,b}", "c", false);
  t("a.{b,c}.*", "a.b.x", true);
  t("a.{b,c}.*", "a.c.x", true);
  t("a.{b,c}.*", "a.d.x", false);
  t("a.{b,c.**}", "a.b", true);
  t("a.{b,c.**}", "a.c", true);
  t("a.{b,c.**}", "a.c.d.e", true);
  t("a.{b,c.**}", "a.b.d", false);
  t("a b", "a", true);
  t("a b", "b", true);
  t("a b", "ab", false);
  t("a.** b.*", "a.b.c", true);
  t("a.** b.*", "b.d", true);
  t("a.** b.*", "b.d.e", false);
  t("**", "", true);
  t("**", "anything.at.all", true);
}

static void test_glob_semantics(void) {
  /* `*` is [^.]* : any characters within one part, possibly none. */
  t("*", "abc", true);
  t("*", "", true);
  t("*", "a.b", false);
  t("a.b*", "a.bcd", true);
  t("a.b*", "a.b", true);
  t("a.b*", "a.b.c", false);
  t("a.*", "a.", true);
  t("*.*", "a.b", true);
  t("a*c", "abbbc", true);
  t("a*c", "ab.bc", false);
  /* `**` as a whole part: zero or more parts. */
  t("**.b", "b", true);
  t("**.b", "x.b", true);
  t("**.b", "x.y.b", true);
  t("**.b", "xb", false);
  t("a.**.b", "a.b", true);
  t("a.**.b", "a.x.y.b", true);
  t("a.**.b", "ab", false);
  t("a.**.b", "a.xb", false);
  t("x{**.b,c}", "xb", false); /* \A only holds at the start of the tag */
  t("x{**.b,c}", "xc", true);
  /* `**` inside a part: any characters, dots included. */
  t("a**", "a", true);
  t("a**", "abc.d", true);
  t("**z", "a.b.cz", true);
  t("**z", "a.b.c", false);
  /* Literals, escapes, and fluentd's quirks. */
  t("a.b", "a.b", true);
  t("a.b", "axb", false);
  t("a.b", "a.b.c", false);
  t("a.b", "a", false);
  t("a-b+c$(d)", "a-b+c$(d)", true);
  t("a\\*b", "a*b", true);
  t("a\\*b", "axb", false);
  t("a\\.b", "a.b", true);
  t("a,b", "a,b", true);
  t("a,b", "a", false);
  t("a.", "a", true); /* fluentd drops a trailing '.' */
  t("a.", "a.", false);
  /* Braces: nesting, patterns inside alternatives, empty alternative. */
  t("{a,b.{c,d}}.e", "b.d.e", true);
  t("{a,b.{c,d}}.e", "a.e", true);
  t("{a,b.{c,d}}.e", "b.e", false);
  t("a{,.b}", "a", true);
  t("a{,.b}", "a.b", true);
  t("{a.*,**.z}", "q.r.z", true);
  t("{a.*,**.z}", "a.q", true);
  t("{a.*,**.z}", "a.q.r", false);
  /* Whitespace of any kind separates patterns. */
  t("  a\t b  ", "b", true);
  t("  a\t b  ", "a", true);
  t("  a\t b  ", " a", false);
}

static void test_errors(void) {
  bad("", "empty");
  bad(" \t ", "empty");
  bad("a.{b,c", "unbalanced '{'");
  bad("a.b}", "unbalanced '}'");
  bad("ok {a, b}", "unbalanced"); /* whitespace splits "{a," from "b}" */
  char deep[SL_TAG_MAX_BRACES * 2 + 4];
  memset(deep, '{', SL_TAG_MAX_BRACES + 1);
  memset(deep + SL_TAG_MAX_BRACES + 1, '}', SL_TAG_MAX_BRACES + 1);
  deep[2 * SL_TAG_MAX_BRACES + 2] = '\0';
  bad(deep, "nested deeper");
  /* Exactly SL_TAG_MAX_BRACES levels around an 'x' are fine. */
  memset(deep, '{', SL_TAG_MAX_BRACES);
  deep[SL_TAG_MAX_BRACES] = 'x';
  memset(deep + SL_TAG_MAX_BRACES + 1, '}', SL_TAG_MAX_BRACES);
  deep[2 * SL_TAG_MAX_BRACES + 1] = '\0';
  t(deep, "x", true);
  sl_tag_pattern_free(NULL); /* accepted: crashing here fails the test */
  char err[8];
  sl_tag_pattern_t *p;
  is_int(sl_tag_pattern_compile("{", &p, err, sizeof err), SL_ESYNTAX, "short err buffer");
  ok(strlen(err) == sizeof err - 1, "message truncated to the buffer");
  is_int(sl_tag_pattern_compile("}", &p, NULL, 0), SL_ESYNTAX, "NULL err buffer accepted");
}

static void test_pathological(void) {
  /* Backtracking would take ~C(40,20) steps on each of these. */
  char spec[256] = "", tag[4096];
  for (int i = 0; i < 20; i++) strcat(spec, "*a");
  strcat(spec, "*b");
  memset(tag, 'a', 4000);
  tag[4000] = '\0';
  sl_tag_pattern_t *p;
  is_int(sl_tag_pattern_compile(spec, &p, NULL, 0), 0, "pathological pattern compiles");
  clock_t t0 = clock();
  ok(!sl_tag_pattern_match(p, tag, 4000), "'*a*a...*b' does not match a^4000");
  tag[3999] = 'b';
  ok(sl_tag_pattern_match(p, tag, 4000), "'*a*a...*b' matches a^3999 b");
  sl_tag_pattern_free(p);

  strcpy(spec, "");
  for (int i = 0; i < 20; i++) strcat(spec, "**.");
  strcat(spec, "z");
  for (int i = 0; i < 4000; i += 2) tag[i] = 'a', tag[i + 1] = '.';
  tag[3999] = '\0';
  is_int(sl_tag_pattern_compile(spec, &p, NULL, 0), 0, "'**.**....z' compiles");
  ok(!sl_tag_pattern_match(p, tag, 3999), "'**.**....z' does not match a.a.a...a");
  sl_tag_pattern_free(p);
  double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
  ok(secs < 2.0, "pathological matches are fast (%.3fs)", secs);

  /* Large pattern: exercises the heap-allocated state lists. */
  char big[4096] = "";
  for (int i = 0; i < 300; i++) strcat(big, "x.");
  strcat(big, "*");
  is_int(sl_tag_pattern_compile(big, &p, NULL, 0), 0, "big pattern compiles");
  big[600] = 'q';
  ok(sl_tag_pattern_match(p, big, 601), "big pattern matches");
  ok(!sl_tag_pattern_match(p, big, 599), "big pattern rejects a shorter tag");
  sl_tag_pattern_free(p);
}

int main(void) {
  test_documented();
  test_glob_semantics();
  test_errors();
  test_pathological();
  return tap_done();
}
