/* An LD_PRELOAD library that counts heap allocations (malloc, calloc,
 * realloc, posix_memalign, aligned_alloc) by who called them: sluice's own
 * code (the executable), librdkafka, or anything else (libc, libuv, ...).
 * On SIGUSR2 it writes the three counts, one line
 * "sluice N librdkafka N other N", to the file named by $ALLOC_COUNT_OUT,
 * so a test can read them before and after a load and divide by the
 * records sent.  Counting is lock-free; the attribution uses the caller's
 * return address against the address ranges of the executable and of
 * librdkafka, found once with dl_iterate_phdr. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

enum { WHO_SLUICE, WHO_RDKAFKA, WHO_OTHER, WHO_N };

typedef struct {
  uintptr_t lo, hi;
} range_t;

static _Atomic uint64_t counts[WHO_N];
static range_t exe[8], rdk[8];
static int n_exe, n_rdk;
static atomic_int ready; /* 0 not yet, 1 finding ranges, 2 ready */

static int on_object(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  (void)data;
  int is_exe = info->dlpi_name == NULL || info->dlpi_name[0] == 0;
  int is_rdk = !is_exe && strstr(info->dlpi_name, "librdkafka") != NULL;
  if (!is_exe && !is_rdk) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
    range_t r = {info->dlpi_addr + ph->p_vaddr, info->dlpi_addr + ph->p_vaddr + ph->p_memsz};
    if (is_exe && n_exe < 8) exe[n_exe++] = r;
    if (is_rdk && n_rdk < 8) rdk[n_rdk++] = r;
  }
  return 0;
}

static void count(void *ret) {
  int expect = 0;
  if (atomic_load(&ready) != 2) {
    /* dl_iterate_phdr may allocate: only the first caller looks, and
     * allocations meanwhile count as "other". */
    if (!atomic_compare_exchange_strong(&ready, &expect, 1)) {
      atomic_fetch_add_explicit(&counts[WHO_OTHER], 1, memory_order_relaxed);
      return;
    }
    dl_iterate_phdr(on_object, NULL);
    atomic_store(&ready, 2);
  }
  uintptr_t a = (uintptr_t)ret;
  int who = WHO_OTHER;
  for (int i = 0; i < n_exe; i++)
    if (a >= exe[i].lo && a < exe[i].hi) who = WHO_SLUICE;
  for (int i = 0; i < n_rdk; i++)
    if (a >= rdk[i].lo && a < rdk[i].hi) who = WHO_RDKAFKA;
  atomic_fetch_add_explicit(&counts[who], 1, memory_order_relaxed);
}

void *malloc(size_t n) {
  count(__builtin_return_address(0));
  return __libc_malloc(n);
}

void *calloc(size_t a, size_t b) {
  count(__builtin_return_address(0));
  return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n) {
  count(__builtin_return_address(0));
  return __libc_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n) {
  count(__builtin_return_address(0));
  void *p = __libc_memalign(align, n);
  if (!p) return 12; /* ENOMEM */
  *out = p;
  return 0;
}

void *aligned_alloc(size_t align, size_t n) {
  count(__builtin_return_address(0));
  return __libc_memalign(align, n);
}

/* Async-signal-safe: digits by hand, one write(2). */
static char *put_u64(char *p, uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) *p++ = tmp[--n];
  return p;
}

static void on_usr2(int sig) {
  (void)sig;
  const char *path = getenv("ALLOC_COUNT_OUT");
  if (!path) return;
  char line[128], *p = line;
  static const char *const names[WHO_N] = {"sluice ", " librdkafka ", " other "};
  for (int i = 0; i < WHO_N; i++) {
    size_t l = strlen(names[i]);
    memcpy(p, names[i], l);
    p = put_u64(p + l, atomic_load_explicit(&counts[i], memory_order_relaxed));
  }
  *p++ = '\n';
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t w = write(fd, line, (size_t)(p - line));
  (void)w;
  close(fd);
}

__attribute__((constructor)) static void setup(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr2;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR2, &sa, NULL);
}
