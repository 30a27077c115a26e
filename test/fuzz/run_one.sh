#!/usr/bin/env bash
# Runs one libFuzzer target for FUZZ_SECONDS (default 60) and reports it as
# one TAP check: ok when it ran its seeds and fuzzed for the whole time
# without a crash, a leak, a timeout (an input taking over 10 s), running out
# of memory or any sanitizer report.
#   run_one.sh <target executable> <seed corpus dir> <build dir>
# New inputs the fuzzer finds go to <build dir>/fuzz-corpus/<target>/ (kept
# between runs; the seeds in the source tree are only read), crashers to
# <build dir>/crashes/<target>/, the fuzzer's output to
# <build dir>/fuzz-logs/<target>.log.  Reproduce a crasher with
#   <build dir>/test/fuzz/<target> <build dir>/crashes/<target>/crash-...
set -uo pipefail
exe=$1 seeds=$2 build=$3
name=$(basename "$exe")
secs=${FUZZ_SECONDS:-60}
work="$build/fuzz-corpus/$name"
crashes="$build/crashes/$name"
log="$build/fuzz-logs/$name.log"
mkdir -p "$work" "$crashes" "$(dirname "$log")"

echo "1..1"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# libFuzzer stops itself at -max_total_time; the outer timeout only catches
# a fuzzer that hangs outside an input.
timeout -k 10 $((secs + 300)) "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$crashes/" "$work" "$seeds" >"$log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
reports=$(grep -cE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|==ERROR:' "$log")
if [ "$rc" -eq 0 ] && [ "$reports" -eq 0 ]; then
  echo "ok 1 - $name: ${runs:-?} inputs in ${secs}s, ${cov:-cov: ?}, no crash, leak or sanitizer report"
  exit 0
fi
echo "not ok 1 - $name: exit $rc after ${runs:-?} inputs; crashers in $crashes, log in $log"
# The report: the sanitizer's or libFuzzer's first lines and the artifact.
grep -E -A30 -m1 'ERROR: |runtime error:|==[0-9]+== ' "$log" | head -60 | sed 's/^/# /'
grep -E 'Test unit written to|artifact_prefix' "$log" | sed 's/^/# /'
exit 1
