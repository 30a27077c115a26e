/* Completions: on_done runs exactly once, only when the completion is sealed
 * and every held part has settled, whatever the order; ok reports whether
 * every part was ok; the callback may free the completion's memory; settling
 * more parts than were held aborts the process. */
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/completion.h"
#include "tap.h"

/* What on_done saw. */
typedef struct {
  int calls;
  bool ok;
  sl_completion_t *c;
  void *arg;
} seen_t;

static void on_done(sl_completion_t *c, bool ok, void *arg) {
  seen_t *s = arg;
  s->calls++;
  s->ok = ok;
  s->c = c;
  s->arg = arg;
}

static void seal_then_settle(void) {
  sl_completion_t c;
  seen_t s = {0};
  sl_completion_init(&c, on_done, &s);
  is_int(sl_completion_pending(&c), 0, "a new completion has nothing pending");
  sl_completion_hold(&c);
  sl_completion_hold(&c);
  sl_completion_hold(&c);
  is_int(sl_completion_pending(&c), 3, "three holds: three pending");
  sl_completion_seal(&c);
  is_int(s.calls, 0, "sealed with parts outstanding: not done");
  sl_completion_settle(&c, true);
  is_int(sl_completion_pending(&c), 2, "one settled: two pending");
  sl_completion_settle(&c, true);
  is_int(s.calls, 0, "one part still outstanding: not done");
  is_int(sl_completion_pending(&c), 1, "one pending");
  sl_completion_settle(&c, true);
  is_int(s.calls, 1, "sealed, last part settled: done once");
  ok(s.ok, "every part ok: ok is true");
  ok(s.c == &c, "on_done gets the completion");
  ok(s.arg == &s, "on_done gets the arg given to init");
  is_int(sl_completion_pending(&c), 0, "nothing pending when done");
  sl_completion_seal(&c);
  is_int(s.calls, 1, "sealing again does not run on_done a second time");
}

static void settle_then_seal(void) {
  sl_completion_t c;
  seen_t s = {0};
  sl_completion_init(&c, on_done, &s);
  sl_completion_hold(&c);
  sl_completion_hold(&c);
  sl_completion_settle(&c, true);
  sl_completion_settle(&c, true);
  is_int(sl_completion_pending(&c), 0, "both settled: nothing pending");
  is_int(s.calls, 0, "all settled but not sealed: not done (more parts may come)");
  /* Parts may still be held after everything so far settled. */
  sl_completion_hold(&c);
  is_int(sl_completion_pending(&c), 1, "a part held after the others settled counts");
  sl_completion_settle(&c, true);
  is_int(s.calls, 0, "still not sealed: not done");
  sl_completion_seal(&c);
  is_int(s.calls, 1, "seal after every part settled: done at the seal, once");
  ok(s.ok, "every part ok: ok is true");
}

static void seal_empty(void) {
  sl_completion_t c;
  seen_t s = {0};
  sl_completion_init(&c, on_done, &s);
  is_int(s.calls, 0, "init alone does not complete");
  sl_completion_seal(&c);
  is_int(s.calls, 1, "sealed with nothing held: done at once");
  ok(s.ok, "no parts: ok is true");
}

static void failures(void) {
  sl_completion_t c;
  seen_t s = {0};

  /* A failed part in the middle, later parts ok: still failed. */
  sl_completion_init(&c, on_done, &s);
  sl_completion_hold(&c);
  sl_completion_hold(&c);
  sl_completion_hold(&c);
  sl_completion_seal(&c);
  sl_completion_settle(&c, true);
  sl_completion_settle(&c, false);
  sl_completion_settle(&c, true);
  is_int(s.calls, 1, "one failed part among three: done once");
  ok(!s.ok, "one failed part: ok is false even though the last one was ok");

  /* The failed part settled before the seal. */
  s = (seen_t){0};
  sl_completion_init(&c, on_done, &s);
  sl_completion_hold(&c);
  sl_completion_hold(&c);
  sl_completion_settle(&c, false);
  sl_completion_settle(&c, true);
  sl_completion_seal(&c);
  is_int(s.calls, 1, "failure settled before the seal: done at the seal");
  ok(!s.ok, "failure settled before the seal is remembered");

  /* Only the last part fails. */
  s = (seen_t){0};
  sl_completion_init(&c, on_done, &s);
  sl_completion_hold(&c);
  sl_completion_hold(&c);
  sl_completion_seal(&c);
  sl_completion_settle(&c, true);
  sl_completion_settle(&c, false);
  is_int(s.calls, 1, "last part failed: done once");
  ok(!s.ok, "last part failed: ok is false");

  /* init resets a used completion. */
  s = (seen_t){0};
  sl_completion_init(&c, on_done, &s);
  sl_completion_seal(&c);
  ok(s.calls == 1 && s.ok, "re-initialised after a failure: no failure carried over");
}

static void fail_shorthand(void) {
  sl_completion_t c;
  seen_t s = {0};

  sl_completion_init(&c, on_done, &s);
  sl_completion_fail(&c);
  is_int(sl_completion_pending(&c), 0, "fail: held and settled, nothing pending");
  is_int(s.calls, 0, "fail before the seal: not done yet");
  sl_completion_seal(&c);
  is_int(s.calls, 1, "seal after a fail: done once");
  ok(!s.ok, "fail makes ok false");

  s = (seen_t){0};
  sl_completion_init(&c, on_done, &s);
  sl_completion_hold(&c);
  sl_completion_fail(&c);
  is_int(sl_completion_pending(&c), 1, "fail leaves other held parts pending");
  sl_completion_seal(&c);
  is_int(s.calls, 0, "a held part is still outstanding: not done");
  sl_completion_settle(&c, true);
  is_int(s.calls, 1, "last held part settles: done once");
  ok(!s.ok, "the earlier fail still makes ok false");

  /* fail counts as a part: it must not let a sealed completion with parts
   * outstanding finish early. */
  s = (seen_t){0};
  sl_completion_init(&c, on_done, &s);
  sl_completion_hold(&c);
  sl_completion_seal(&c);
  sl_completion_fail(&c);
  is_int(s.calls, 0, "fail after the seal with a part outstanding: not done");
  is_int(sl_completion_pending(&c), 1, "the outstanding part is still pending");
  sl_completion_settle(&c, true);
  ok(s.calls == 1 && !s.ok, "done once, failed, when the outstanding part settles");
}

/* ---- the callback frees the completion's memory ------------------------- */

typedef struct {
  int id;
  sl_completion_t done; /* not first: freeing through arg, not through c */
  int *freed;
} job_t;

static void job_done(sl_completion_t *c, bool ok, void *arg) {
  job_t *j = arg;
  (void)c;
  (void)ok;
  (*j->freed)++;
  free(j);
}

/* Run with valgrind to see that nothing reads or writes the completion after
 * on_done returned (it lives in freed memory by then). */
static void callback_frees_heap(void) {
  int freed = 0;
  job_t *j = calloc(1, sizeof *j);
  j->freed = &freed;
  sl_completion_init(&j->done, job_done, j);
  sl_completion_hold(&j->done);
  sl_completion_hold(&j->done);
  sl_completion_seal(&j->done);
  sl_completion_settle(&j->done, true);
  sl_completion_settle(&j->done, true); /* frees j */
  is_int(freed, 1, "on_done freed the job at the last settle");

  freed = 0;
  j = calloc(1, sizeof *j);
  j->freed = &freed;
  sl_completion_init(&j->done, job_done, j);
  sl_completion_hold(&j->done);
  sl_completion_settle(&j->done, false);
  sl_completion_seal(&j->done); /* frees j */
  is_int(freed, 1, "on_done freed the job at the seal");

  freed = 0;
  j = calloc(1, sizeof *j);
  j->freed = &freed;
  sl_completion_init(&j->done, job_done, j);
  sl_completion_fail(&j->done);
  sl_completion_seal(&j->done); /* frees j */
  is_int(freed, 1, "on_done freed the job at the seal after a fail");
}

/* The same without valgrind: the job sits alone in a page that on_done
 * unmaps, so any access to the completion after on_done kills the process.
 * Each case runs in a child so that such a crash is a failed check. */
static void page_done(sl_completion_t *c, bool ok, void *arg) {
  (void)ok;
  (void)arg;
  munmap(c, (size_t)sysconf(_SC_PAGESIZE));
}

static int run_child(void (*fn)(void)) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    fn();
    _exit(0);
  }
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
  return st;
}

static sl_completion_t *page_completion(void) {
  void *p = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) _exit(3);
  sl_completion_t *c = p;
  sl_completion_init(c, page_done, NULL);
  return c;
}

static void unmap_at_settle(void) {
  sl_completion_t *c = page_completion();
  sl_completion_hold(c);
  sl_completion_seal(c);
  sl_completion_settle(c, true);
}

static void unmap_at_seal(void) {
  sl_completion_t *c = page_completion();
  sl_completion_hold(c);
  sl_completion_settle(c, true);
  sl_completion_seal(c);
}

static void unmap_at_fail(void) {
  sl_completion_t *c = page_completion();
  sl_completion_hold(c);
  sl_completion_seal(c);
  sl_completion_fail(c);
  sl_completion_settle(c, true);
}

/* Control: on_done really unmaps the page (a new mapping that must not
 * replace anything fits exactly there), so an access after on_done would
 * crash the child. */
static void unmap_is_real(void) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  sl_completion_t *c = page_completion();
  sl_completion_seal(c);
  void *q = mmap(c, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  _exit(q == (void *)c ? 0 : 7);
}

static void callback_unmaps_page(void) {
  int st = run_child(unmap_at_settle);
  ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
     "completion memory unmapped by on_done at the last settle: no access after");
  st = run_child(unmap_at_seal);
  ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
     "completion memory unmapped by on_done at the seal: no access after");
  st = run_child(unmap_at_fail);
  ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
     "completion memory unmapped by on_done after a fail: no access after");
  st = run_child(unmap_is_real);
  ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
     "control: the page holding the completion is gone after on_done");
}

/* ---- settling more than held aborts ------------------------------------- */

static seen_t child_seen;

static void settle_unheld(void) {
  sl_completion_t c;
  sl_completion_init(&c, on_done, &child_seen);
  sl_completion_settle(&c, true);
  _exit(child_seen.calls ? 4 : 0); /* not reached when it aborts */
}

static void settle_twice(void) {
  sl_completion_t c;
  sl_completion_init(&c, on_done, &child_seen);
  sl_completion_hold(&c);
  sl_completion_settle(&c, true);
  sl_completion_settle(&c, true);
  _exit(0);
}

static void settle_after_done(void) {
  sl_completion_t c;
  sl_completion_init(&c, on_done, &child_seen);
  sl_completion_hold(&c);
  sl_completion_seal(&c);
  sl_completion_settle(&c, true);
  if (child_seen.calls != 1) _exit(5);
  sl_completion_settle(&c, true);
  _exit(0);
}

static void settle_as_held(void) {
  sl_completion_t c;
  sl_completion_init(&c, on_done, &child_seen);
  sl_completion_hold(&c);
  sl_completion_hold(&c);
  sl_completion_settle(&c, true);
  sl_completion_settle(&c, false);
  sl_completion_seal(&c);
  _exit(child_seen.calls == 1 ? 0 : 6);
}

/* Runs fn in a child with its stderr in a pipe; returns the wait status and
 * what the child wrote to stderr. */
static int run_child_stderr(void (*fn)(void), char *out, size_t len) {
  int fds[2];
  out[0] = 0;
  if (pipe(fds)) return -1;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    close(fds[0]);
    dup2(fds[1], 2);
    fn();
    _exit(0);
  }
  close(fds[1]);
  size_t n = 0;
  ssize_t r;
  while (n + 1 < len && (r = read(fds[0], out + n, len - 1 - n)) > 0) n += (size_t)r;
  out[n] = 0;
  close(fds[0]);
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
  return st;
}

static void over_settle(void) {
  char err[4096];
  int st = run_child_stderr(settle_unheld, err, sizeof err);
  ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "settle with nothing held: SIGABRT");
  ok(strstr(err, "settled more parts than were held") != NULL,
     "settle with nothing held: says why on stderr");
  st = run_child_stderr(settle_twice, err, sizeof err);
  ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "two settles for one hold: SIGABRT");
  st = run_child_stderr(settle_after_done, err, sizeof err);
  ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "settle after done: SIGABRT");
  ok(strstr(err, "completion") != NULL, "settle after done: the log line names the component");
  /* Control: as many settles as holds exits normally. */
  st = run_child_stderr(settle_as_held, err, sizeof err);
  ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "as many settles as holds: no abort, done once");
}

int main(void) {
  seal_then_settle();
  settle_then_seal();
  seal_empty();
  failures();
  fail_shorthand();
  callback_frees_heap();
  callback_unmaps_page();
  over_settle();
  return tap_done();
}
