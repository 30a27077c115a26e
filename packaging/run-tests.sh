#!/usr/bin/env bash
# README command 2: installs the dependencies, builds sluice with -Werror and
# runs every test suite (unit, integration).  The last line is the summary:
# "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
bash packaging/install-deps.sh || exit 1
build=${BUILD_DIR:-build-test}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=debugoptimized -Dwerror=true >/dev/null || exit 1
fi
ninja -C "$build" || exit 1
# The tree must also build warning-free with clang.
if command -v clang >/dev/null; then
  if [ ! -f "$build-clang/build.ninja" ]; then
    CC=clang meson setup "$build-clang" --buildtype=debugoptimized -Dwerror=true >/dev/null || exit 1
  fi
  ninja -C "$build-clang" >/dev/null || { echo "clang build failed"; ninja -C "$build-clang"; exit 1; }
fi
meson test -C "$build" --print-errorlogs --num-processes 2 --suite unit --suite integration --suite valgrind "$@"
status=$?
python3 test/summary.py "$build/meson-logs/testlog.json"
summary=$?
[ $status -eq 0 ] && [ $summary -eq 0 ]
