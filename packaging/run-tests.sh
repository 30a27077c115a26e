#!/usr/bin/env bash
# README command 2: installs the dependencies, builds sluice with -Werror and
# runs every test suite (unit, integration, valgrind; then unit and
# integration again under AddressSanitizer and UBSan; then each libFuzzer
# target for FUZZ_SECONDS, default 20).  The last line is the summary:
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
# The same unit and integration tests once more with AddressSanitizer
# (leaks included) and UndefinedBehaviorSanitizer, any report fatal.
if [ ! -f "$build-asan/build.ninja" ]; then
  meson setup "$build-asan" --buildtype=debugoptimized -Dwerror=true -Db_sanitize=address,undefined \
    -Db_lundef=false -Dc_args=-fno-sanitize-recover=undefined >/dev/null || exit 1
fi
ninja -C "$build-asan" >/dev/null || { echo "sanitizer build failed"; ninja -C "$build-asan"; exit 1; }
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  meson test -C "$build-asan" --print-errorlogs --num-processes 2 --suite unit --suite integration --no-suite native "$@"
asan_status=$?
# Each libFuzzer target (test/fuzz) for FUZZ_SECONDS (20 here), from its
# seed corpus: one check per target, failed by any crash, leak, timeout
# or sanitizer report (crashers in $build-fuzz/crashes/).
rm -f "$build-fuzz/meson-logs/testlog.json"
FUZZ_BUILD_DIR="$build-fuzz" FUZZ_SECONDS=${FUZZ_SECONDS:-20} bash test/fuzz/run.sh
fuzz_status=$?
fuzz_log=()
[ -f "$build-fuzz/meson-logs/testlog.json" ] && fuzz_log=("$build-fuzz/meson-logs/testlog.json")
python3 test/summary.py "$build/meson-logs/testlog.json" "$build-asan/meson-logs/testlog.json" "${fuzz_log[@]}"
summary=$?
[ $status -eq 0 ] && [ $asan_status -eq 0 ] && [ $fuzz_status -eq 0 ] && [ $summary -eq 0 ]
