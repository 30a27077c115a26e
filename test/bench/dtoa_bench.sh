#!/usr/bin/env bash
# Builds and runs the number-formatting micro-benchmark (dtoa_bench.c):
# the old snprintf loop, core/dtoa.c's Schubfach, and Dragonbox when
# Debian's libdragonbox-dev is installed.  Not run by CI.
#
#   bash test/bench/dtoa_bench.sh     # from the repository root
#
# Environment: CC (default gcc), CXX (default g++), CFLAGS (default -O2,
# the flags of the project's default debugoptimized build), OUT (default
# build-bench/bench).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CC=${CC:-gcc}
CXX=${CXX:-g++}
CFLAGS=${CFLAGS:--O2}
OUT=${OUT:-$SRC/build-bench/bench}
mkdir -p "$OUT"

extra=()
db=$(ls -d /usr/include/dragonbox-*/ 2>/dev/null | head -n1 || true)
if [ -n "$db" ] && command -v "$CXX" >/dev/null; then
  $CXX $CFLAGS -std=c++17 -I"$db" -c "$SRC/test/bench/dtoa_dragonbox.cc" -o "$OUT/dtoa_dragonbox.o"
  extra=(-DWITH_DRAGONBOX "$OUT/dtoa_dragonbox.o" -lstdc++)
else
  echo "dtoa_bench: no libdragonbox-dev (or $CXX): Dragonbox left out" >&2
fi
# shellcheck disable=SC2086
$CC $CFLAGS -Wall -Wextra -std=c11 -D_GNU_SOURCE -I"$SRC/agent" -o "$OUT/dtoa_bench" \
  "$SRC/test/bench/dtoa_bench.c" "${extra[@]}" -lm
"$OUT/dtoa_bench"
