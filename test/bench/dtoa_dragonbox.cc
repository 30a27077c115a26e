// The Dragonbox side of the dtoa benchmark (test/bench/dtoa_bench.c): the
// shortest digits of a finite non-zero double or float from Debian's
// libdragonbox-dev, so that the benchmark can lay them out with the same
// code as core/dtoa.c and compare only the digit search.
#include <dragonbox/dragonbox.h>

#include <cstdint>

extern "C" void bench_dragonbox_double(double v, uint64_t *f, int *e) {
  auto d = jkj::dragonbox::to_decimal(v, jkj::dragonbox::policy::sign::ignore);
  *f = d.significand;
  *e = d.exponent;
}

extern "C" void bench_dragonbox_float(float v, uint64_t *f, int *e) {
  auto d = jkj::dragonbox::to_decimal(v, jkj::dragonbox::policy::sign::ignore);
  *f = d.significand;
  *e = d.exponent;
}
