#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -Dfuzz=true) in build-fuzz and runs
# each for FUZZ_SECONDS (default 60) from its seed corpus in
# test/fuzz/corpus/<target>/; fails on any crash, leak, timeout or
# sanitizer report.  Crashers are saved in build-fuzz/crashes/<target>/.
#   test/fuzz/run.sh                  every target
#   test/fuzz/run.sh forward expr     some of them
#   FUZZ_SECONDS=600 test/fuzz/run.sh
# FUZZ_BUILD_DIR picks another build folder; FUZZ_JOBS how many targets run
# at once (default: one per core).
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${FUZZ_BUILD_DIR:-build-fuzz}
export FUZZ_SECONDS=${FUZZ_SECONDS:-60}
if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" -Dfuzz=true --buildtype=debugoptimized -Dwerror=true >/dev/null || exit 1
fi
ninja -C "$build" >/dev/null || { echo "fuzz build failed"; ninja -C "$build"; exit 1; }
meson test -C "$build" --suite fuzz --print-errorlogs --num-processes "${FUZZ_JOBS:-$(nproc)}" "$@"
