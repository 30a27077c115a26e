#!/usr/bin/env bash
# The soak: sluice (forward input -> Kafka -> a job -> a file sink) under
# sustained load for MINUTES (default 5) against the mock broker, VmRSS
# sampled every SAMPLE_SECONDS (default 5); passes when the memory is flat
# after the warm-up (the last third's median sample within 5 % of the
# first third's), every acked record is in Kafka and the job read them all.
# Not in CI: it takes minutes.
#   bash test/soak/run.sh
#   MINUTES=30 RATE=50000 bash test/soak/run.sh
# BUILD_DIR picks the build folder (default build; set up with -Dwerror=true
# if missing); RATE is records per second (default 20000), WARMUP_SECONDS
# the warm-up (default a fifth of the run, at most 60).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=debugoptimized -Dwerror=true >/dev/null
fi
ninja -C "$build" >/dev/null || { echo "build failed"; ninja -C "$build"; exit 1; }
export SLUICE="$build/agent/sluice" MOCK_BROKER="$build/test/mock_broker" SRCDIR="$PWD"
export PYTHONPATH="$PWD/test/helpers"
exec /usr/bin/python3 test/soak/soak.py
