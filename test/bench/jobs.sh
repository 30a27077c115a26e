#!/usr/bin/env bash
# Jobs benchmark, one job throughout: tumbling 10 s windows, group_by
# service (KEYS distinct values), count() + avg(latency_ms) +
# percentile(latency_ms, 0.99) + count_distinct(user_id), over ~120-byte
# msgpack access records (~145 bytes as JSON) whose event times move 10 s
# every WINDOW records.
#
#  1. engine   the engine alone, fed from memory on one thread
#              (jobs_engine.c): decode -> sl_job_feed, sl_job_advance every
#              10,000 records with the rows turned into JSON; records/s for
#              msgpack and for JSON, and state bytes per group key with one
#              full window open.  Goal: >= 1,000,000 msgpack records/s.
#  2. e2e      N msgpack records (key = service, Kafka timestamp = event
#              time) in a PARTITIONS-partition topic of the mock broker, read
#              from the beginning with a fresh consumer group each time, in
#              alternating rounds by
#                ceiling  a bare librdkafka consumer loop (jobs_ceiling.c)
#                sluice   `sluice run` with only the [[job]] (format =
#                         "msgpack", time = "event", a file sink), until
#                         the job's sluice_job_records_total shows every
#                         record, timed from its /metrics by
#                         sluice_kafka_consumed_total (counted after each
#                         pass of <= 10,000 records is handed to the job;
#                         the job's own counters move only every ~250 ms)
#                variant  the same sluice with [job.properties] VARIANT_PROPS
#                         (a diagnosis, not part of the ratio; VARIANT=0 skips)
#              Rates count from each one's first record to its last (the
#              group join, ~3 s on the mock broker, is reported apart).
#              Goal: sluice / ceiling >= 0.8.
#
#   bash test/bench/jobs.sh            # from anywhere; builds what it needs
#
# Environment: PARTS (default "engine e2e"), ENGINE_N (records, default
# 3000000), N (e2e records, default 3000000: the mock broker keeps only
# ~5 MB per partition, ~4.4M of these records over 48 partitions; the fill
# checks that none was dropped), ROUNDS (default 5), PARTITIONS (default 48),
# KEYS (default 10000), WINDOW (records per 10 s window, default 250000),
# VARIANT (1), VARIANT_PROPS (default '"queued.min.messages" = "1000000"'),
# PROFILE=1 (perf record the engine's msgpack run and one more sluice run;
# reports in $BUILD/bench/perf-jobs-*.txt), BUILD (default build-bench).
set -euo pipefail

PARTS=${PARTS:-engine e2e}
ENGINE_N=${ENGINE_N:-3000000}
N=${N:-3000000}
ROUNDS=${ROUNDS:-5}
PARTITIONS=${PARTITIONS:-48}
KEYS=${KEYS:-10000}
WINDOW=${WINDOW:-250000}
VARIANT=${VARIANT:-1}
VARIANT_PROPS=${VARIANT_PROPS:-'"queued.min.messages" = "1000000"'}
TOPIC="jobs"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$SRC/build-bench}
OUT=$BUILD/bench
mkdir -p "$OUT"

# ---- build ----------------------------------------------------------------
build_failed() {
  tail -30 "$OUT/jobs-build.log" >&2
  echo "jobs.sh: the build failed (log: $OUT/jobs-build.log)" >&2
  exit 1
}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$SRC" --buildtype=release >"$OUT/jobs-build.log" 2>&1 || build_failed
ninja -C "$BUILD" agent/sluice plugins/file.so test/mock_broker agent/libsluice_pure.a >"$OUT/jobs-build.log" 2>&1 || build_failed
# shellcheck disable=SC2046
gcc -O2 -g -Wall -Wextra -std=c11 -D_GNU_SOURCE -I"$SRC/agent" -I"$BUILD" -o "$OUT/jobs_engine" \
  "$SRC/test/bench/jobs_engine.c" "$BUILD/agent/libsluice_pure.a" \
  $(pkg-config --cflags --libs msgpack jansson zlib libcrypto libpcre2-8 libxxhash) -lm -lpthread
# shellcheck disable=SC2046
gcc -O2 -Wall -Wextra -std=c11 -D_GNU_SOURCE -o "$OUT/jobs_ceiling" "$SRC/test/bench/jobs_ceiling.c" \
  $(pkg-config --cflags --libs rdkafka)
SLUICE=$BUILD/agent/sluice
ENGINE=$OUT/jobs_engine
CEILING=$OUT/jobs_ceiling
GEN=(-k "$KEYS" -w "$WINDOW")

TMP=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
# field NAME LINE: the value of NAME=value in a key=value line.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sys_busy() { awk 'NR == 1 {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
TCK=$(getconf CLK_TCK)
now() { date +%s.%N; }

echo "jobs bench: $(nproc) cores; job: tumbling 10s, group_by service ($KEYS keys), count + avg + p99 + count_distinct"
echo "jobs bench: load before starting: $(cut -d' ' -f1-3 /proc/loadavg)"
SUMMARY=()

# ---- 1. the engine alone --------------------------------------------------
if [[ " $PARTS " == *" engine "* ]]; then
  echo
  echo "== 1. engine alone: $ENGINE_N records, $WINDOW per 10 s window, advance every 10000, one thread"
  "$ENGINE" -n "$ENGINE_N" "${GEN[@]}" -D -R >"$TMP/engine.out" 2>"$TMP/engine.err" ||
    { cat "$TMP/engine.err" >&2; exit 1; }
  sed 's/^jobs_engine: /  /' "$TMP/engine.err" | uniq
  while read -r line; do
    f=$(field format "$line")
    printf "  %-7s %9.0f records/s  (%.2fs; values %.0f bytes; decode alone %.0f/s; %d rows, %.0f bytes each)\n" \
      "$f" "$(field rate "$line")" "$(field seconds "$line")" "$(field value_bytes "$line")" \
      "$(field decode_rate "$line")" "$(field rows "$line")" "$(field row_bytes "$line")"
  done <"$TMP/engine.out"
  line=$(grep -m1 '^format=msgpack' "$TMP/engine.out")
  [ "$(field state_keys "$line")" != 0 ] || echo "  (no state measured: ENGINE_N must exceed WINDOW)"
  printf "  state with one full window open (%d open): %d keys, %d bytes: %.0f bytes/key (engine's count); %d bytes/key of heap\n" \
    "$(field open_windows "$line")" "$(field state_keys "$line")" "$(field state_bytes "$line")" \
    "$(field bytes_per_key "$line")" "$(field heap_per_key "$line")"
  MP=$(field rate "$line")
  JS=$(field rate "$(grep -m1 '^format=json' "$TMP/engine.out" || true)")
  awk -v r="$MP" 'BEGIN { printf "  goal >= 1000000 msgpack records/s: %s\n", (r >= 1e6 ? "met" : "MISSED") }'
  SUMMARY+=("engine: msgpack $MP rec/s, json ${JS:-?} rec/s, $(field bytes_per_key "$line") bytes/key (heap $(field heap_per_key "$line"))")
  if [ "${PROFILE:-0}" = 1 ]; then
    # Sampling only the timed loop: jobs_engine turns perf on and off
    # through its control fifos (perf record --control).
    mkfifo "$TMP/perf.ctl" "$TMP/perf.ack"
    exec {ctl}<>"$TMP/perf.ctl" {ack}<>"$TMP/perf.ack"
    PERF_CTL_FD=$ctl PERF_ACK_FD=$ack perf record -q --control "fd:$ctl,$ack" -D -1 --call-graph dwarf,16384 \
      -F 1999 -o "$OUT/perf-jobs-engine.data" "$ENGINE" -n "$ENGINE_N" "${GEN[@]}" -f msgpack >/dev/null 2>&1 || true
    exec {ctl}>&- {ack}>&-
    {
      echo "== self time by symbol"
      perf report -i "$OUT/perf-jobs-engine.data" --no-children -g none --sort dso,symbol --stdio 2>/dev/null |
        grep -v '^#' | grep . | head -40 || true
      echo "== inclusive time"
      perf report -i "$OUT/perf-jobs-engine.data" --children -g none --sort symbol --stdio 2>/dev/null |
        grep -v '^#' | grep . | grep -v ' 0x0000' | head -60 || true
    } >"$OUT/perf-jobs-engine.txt"
    echo "  profile: $OUT/perf-jobs-engine.txt (the timed msgpack loop only)"
  fi
fi

[[ " $PARTS " == *" e2e "* ]] || { printf '\n== summary\n'; printf '%s\n' "${SUMMARY[@]}"; exit 0; }

# ---- 2. end to end --------------------------------------------------------
echo
echo "== 2. end to end: $N msgpack records in $PARTITIONS partitions, $ROUNDS alternating rounds"
# wait_for FILE REGEX SECONDS: waits until a line of FILE matches; prints it.
wait_for() {
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    if grep -m1 -E "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "jobs.sh: timed out waiting for /$2/ in $1" >&2
  cat "$1" >&2
  return 1
}
mkfifo "$TMP/broker.in"
"$BUILD/test/mock_broker" -t "$TOPIC:$PARTITIONS" <"$TMP/broker.in" >"$TMP/broker.out" 2>&1 &
BROKER_PID=$!
pids+=("$BROKER_PID")
exec 9>"$TMP/broker.in"
BOOTSTRAP=$(wait_for "$TMP/broker.out" '^bootstrap ' 10 | awk '{print $2}')

"$ENGINE" -E -n "$N" "${GEN[@]}" | "$CEILING" produce -b "$BOOTSTRAP" -t "$TOPIC" >"$TMP/fill.out" || {
  cat "$TMP/fill.out" >&2
  echo "jobs.sh: the broker did not keep every record (low_max > 0: over its ~5 MB per partition); lower N" >&2
  exit 1
}
echo "  filled: $(cat "$TMP/fill.out")"

# write_config FILE GROUP [PROPERTIES]
write_config() {
  cat >"$1" <<EOF
[log]
level = "${LOG_LEVEL:-info}"
[http]
listen = "127.0.0.1:0"
[input.forward]
enabled = false
[kafka]
brokers = ["$BOOTSTRAP"]

[[sink]]
name = "out"
plugin = "file"
path = "$TMP/rows.jsonl"

[[job]]
name = "bench"
topics = ["$TOPIC"]
format = "msgpack"
time = "event"
group_id = "$2"
group_by = ["service"]
window = { type = "tumbling", size = "10s" }
aggregates = { n = "count()", avg_latency = "avg(latency_ms)", p99_latency = "percentile(latency_ms, 0.99)", users = "count_distinct(user_id)" }
sinks = ["out"]
EOF
  [ -z "${3:-}" ] || printf '[job.properties]\n%s\n' "$3" >>"$1"
}

# Each run appends "kind rate mid_rate first cpu broker_cpu other rows" to
# $RUNS: first = seconds to the first record (group join); cpu = the
# process's CPU seconds over the counted span (sluice: over the watch);
# other = cores used meanwhile by processes not in the bench.
run_ceiling() {
  local b0 b1 s0 s1 t0 t1 out
  b0=$(cpu_ticks "$BROKER_PID") s0=$(sys_busy) t0=$(now)
  out=$("$CEILING" consume -b "$BOOTSTRAP" -t "$TOPIC" -n "$N" -g "ceiling-$1")
  t1=$(now) s1=$(sys_busy) b1=$(cpu_ticks "$BROKER_PID")
  awk -v r="$(field rate "$out")" -v m="$(field mid_rate "$out")" -v f="$(field first "$out")" \
    -v c="$(field cpu "$out")" -v b0="$b0" -v b1="$b1" -v s0="$s0" -v s1="$s1" -v t0="$t0" -v t1="$t1" \
    -v tck="$TCK" 'BEGIN {
      # the ceiling reports its CPU over the counted span only: the join is small and counted as other
      own = c + (b1 - b0) / tck
      printf "ceiling %s %s %s %s %.2f %.2f -\n", r, m, f, c, (b1 - b0) / tck, ((s1 - s0) / tck - own) / (t1 - t0) }' >>"$RUNS"
}
run_sluice() { # run_sluice KIND GROUP [PROPERTIES]
  local kind=$1 pid port c0 c1 b0 b1 s0 s1 t0 t1 out
  write_config "$TMP/sluice.toml" "$2" "${3:-}"
  : >"$TMP/rows.jsonl"
  LOG=$TMP/$2.log # a new file: the old one could be read before the shell truncates it
  b0=$(cpu_ticks "$BROKER_PID") s0=$(sys_busy) t0=$(now)
  "$SLUICE" run -c "$TMP/sluice.toml" >"$LOG" 2>&1 9>&- &
  pid=$!
  pids+=("$pid")
  port=$(wait_for "$LOG" 'http: listening on http://127\.0\.0\.1:[0-9]+' 10 |
    sed -E 's/.*http:\/\/127\.0\.0\.1:([0-9]+).*/\1/')
  c0=$(cpu_ticks "$pid")
  out=$("$CEILING" watch -u "127.0.0.1:$port" -m sluice_kafka_consumed_total \
    -e 'sluice_job_records_total{sluice_job="bench"}' -n "$N") || {
    echo "jobs.sh: $kind run failed (sluice pid $pid, http port $port); its log ends:" >&2
    tail -20 "$LOG" >&2
    exit 1
  }
  c1=$(cpu_ticks "$pid")
  METRICS=$(curl -s "http://127.0.0.1:$port/metrics" | grep -E '^sluice_job_' || true)
  kill -TERM "$pid"
  wait "$pid" || echo "jobs.sh: sluice (pid $pid) exited with status $?" >&2
  t1=$(now) s1=$(sys_busy) b1=$(cpu_ticks "$BROKER_PID")
  awk -v k="$kind" -v r="$(field rate "$out")" -v m="$(field mid_rate "$out")" -v f="$(field first "$out")" \
    -v c0="$c0" -v c1="$c1" -v b0="$b0" -v b1="$b1" -v s0="$s0" -v s1="$s1" -v t0="$t0" -v t1="$t1" \
    -v tck="$TCK" -v rows="$(wc -l <"$TMP/rows.jsonl")" 'BEGIN {
      own = (c1 - c0) / tck + (b1 - b0) / tck
      printf "%s %s %s %s %.2f %.2f %.2f %d\n", k, r, m, f, (c1 - c0) / tck, (b1 - b0) / tck,
        ((s1 - s0) / tck - own) / (t1 - t0), rows }' >>"$RUNS"
}
metric() { sed -n "s/^$1{sluice_job=\"bench\"} //p" <<<"$METRICS"; }

RUNS=$TMP/runs
: >"$RUNS"
: >"$TMP/ratios"
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then
    run_ceiling "$r-$$"
    run_sluice sluice "sluice-$r-$$"
    if [ "$VARIANT" = 1 ]; then run_sluice variant "variant-$r-$$" "$VARIANT_PROPS"; fi
  else
    if [ "$VARIANT" = 1 ]; then run_sluice variant "variant-$r-$$" "$VARIANT_PROPS"; fi
    run_sluice sluice "sluice-$r-$$"
    run_ceiling "$r-$$"
  fi
  tail -n $((VARIANT == 1 ? 3 : 2)) "$RUNS" | awk -v r="$r" '
    $1 == "ceiling" { c = $2; cs = sprintf("ceiling %8.0f/s (join %.1fs, cpu %.2fs)", $2, $4, $5) }
    $1 == "sluice"  { s = $2; ss = sprintf("sluice %8.0f/s (join %.1fs, cpu %.2fs, rows %d)", $2, $4, $5, $8) }
    $1 == "variant" { v = $2 }
    { o += $7; n++ }
    END { printf "  round %d: %s   %s   ratio %.2f", r, cs, ss, s / c
          if (v) printf "   variant %8.0f/s (%.2f)", v, v / c
          printf "   other load %.2f cores\n", o / n
          print s / c > "/dev/stderr" }' 2>>"$TMP/ratios"
done

CM=$(awk '$1 == "ceiling" {print $2}' "$RUNS" | median)
SM=$(awk '$1 == "sluice" {print $2}' "$RUNS" | median)
CMM=$(awk '$1 == "ceiling" {print $3}' "$RUNS" | median)
SMM=$(awk '$1 == "sluice" {print $3}' "$RUNS" | median)
RM=$(median <"$TMP/ratios")
echo
awk -v c="$CM" -v s="$SM" -v r="$RM" -v cm="$CMM" -v sm="$SMM" 'BEGIN {
  printf "  median ceiling (bare librdkafka consumer): %8.0f records/s   (middle 80%%: %.0f)\n", c, cm
  printf "  median sluice run with the job:            %8.0f records/s   (middle 80%%: %.0f)\n", s, sm
  printf "  ratio of the medians %.2f, median of the per-round ratios %.2f (goal >= 0.8: %s)\n", s / c, r,
    (r >= 0.8 ? "met" : "MISSED") }'
if [ "$VARIANT" = 1 ]; then
  VM=$(awk '$1 == "variant" {print $2}' "$RUNS" | median)
  awk -v v="$VM" -v c="$CM" -v p="$VARIANT_PROPS" 'BEGIN {
    printf "  median variant (%s): %.0f records/s, %.2f of the ceiling\n", p, v, v / c }'
fi
awk -v n="$N" '{cpu[$1] += $5; k[$1]++; b[$1] += $6} $1 == "sluice" {rows = $8} END {
  printf "  CPU per record (mean): ceiling %.2f us (+ broker %.2f us); sluice %.2f us (+ broker %.2f us)",
    cpu["ceiling"] / k["ceiling"] * 1e6 / n, b["ceiling"] / k["ceiling"] * 1e6 / n,
    cpu["sluice"] / k["sluice"] * 1e6 / n, b["sluice"] / k["sluice"] * 1e6 / n
  if (k["variant"]) printf "; variant %.2f us (+ broker %.2f us)", cpu["variant"] / k["variant"] * 1e6 / n,
    b["variant"] / k["variant"] * 1e6 / n
  printf "\n  (sluice: its whole process from start to the last record, group join included; the ceiling: from its first record)\n"
  printf "  rows written per sluice run: %d (closed windows x keys; the last window stays open)\n", rows }' "$RUNS"
OL=$(awk '{o += $7} END {printf "%.2f", o / NR}' "$RUNS")
awk -v o="$OL" 'BEGIN { if (o > 0.15) printf "  WARNING: other processes used %.2f cores on average during the runs: numbers are not clean\n", o }'
SK=$(metric sluice_job_state_keys) SB=$(metric sluice_job_state_bytes)
echo "  sluice at the end (last run): open windows $(metric sluice_job_open_windows), state $SK keys," \
  "$SB bytes ($(awk -v k="$SK" -v b="$SB" 'BEGIN {printf "%.0f", k ? b / k : 0}') bytes/key)"
SUMMARY+=("e2e: ceiling $CM rec/s, sluice $SM rec/s, ratio $(awk -v c="$CM" -v s="$SM" 'BEGIN {printf "%.2f", s / c}') (per-round median $(printf '%.2f' "$RM"))${VM:+, variant $VM rec/s}")

# profile_sluice NAME [PROPERTIES]: one more sluice run under perf (dwarf
# call graphs: the release build has no frame pointers); the report is
# $OUT/perf-jobs-NAME.txt.
profile_sluice() {
  local pid port perf_pid data=$OUT/perf-jobs-$1.data
  write_config "$TMP/sluice.toml" "profile-$1-$$" "${2:-}"
  "$SLUICE" run -c "$TMP/sluice.toml" >"$TMP/profile-$1.log" 2>&1 9>&- &
  pid=$!
  pids+=("$pid")
  port=$(wait_for "$TMP/profile-$1.log" 'http: listening on http://127\.0\.0\.1:[0-9]+' 10 |
    sed -E 's/.*http:\/\/127\.0\.0\.1:([0-9]+).*/\1/')
  perf record -q --call-graph dwarf,16384 -F 999 -o "$data" -p "$pid" 2>/dev/null &
  perf_pid=$!
  "$CEILING" watch -u "127.0.0.1:$port" -m sluice_kafka_consumed_total \
    -e 'sluice_job_records_total{sluice_job="bench"}' -n "$N" >/dev/null
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
  kill -TERM "$pid"
  wait "$pid" || true
  {
    echo "== samples by thread"
    perf report -i "$data" --no-children -g none --sort pid,comm --stdio 2>/dev/null | grep -v '^#' | grep . || true
    echo "== self time by symbol"
    perf report -i "$data" --no-children -g none --sort comm,dso,symbol --stdio 2>/dev/null |
      grep -v '^#' | grep . | head -40 || true
    echo "== inclusive time, sluice threads"
    perf report -i "$data" --children -g none --comm sluice --sort symbol --stdio 2>/dev/null |
      grep -v '^#' | grep . | grep -v ' 0x0000' | head -60 || true
  } >"$OUT/perf-jobs-$1.txt"
  echo "  profile: $OUT/perf-jobs-$1.txt"
}

if [ "${PROFILE:-0}" = 1 ]; then
  echo
  profile_sluice sluice
  [ "$VARIANT" != 1 ] || profile_sluice variant "$VARIANT_PROPS"
  # Where the default run waits: librdkafka's fetch log (debug = "fetch").
  LOG_LEVEL=debug write_config "$TMP/sluice.toml" "fetchlog-$$" '"debug" = "fetch"'
  "$SLUICE" run -c "$TMP/sluice.toml" >"$TMP/fetch.log" 2>&1 9>&- &
  pid=$!
  pids+=("$pid")
  port=$(wait_for "$TMP/fetch.log" 'http: listening on http://127\.0\.0\.1:[0-9]+' 10 |
    sed -E 's/.*http:\/\/127\.0\.0\.1:([0-9]+).*/\1/')
  "$CEILING" watch -u "127.0.0.1:$port" -m sluice_kafka_consumed_total \
    -e 'sluice_job_records_total{sluice_job="bench"}' -n "$N" >/dev/null
  kill -TERM "$pid"
  wait "$pid" || true
  cp "$TMP/fetch.log" "$OUT/jobs-fetch.log"
  grep 'toppar(s)' "$TMP/fetch.log" | awk -v refused="$(grep -c 'not fetchable: queued.min' "$TMP/fetch.log")" '{
      split($1, a, "T"); split(a[2], b, ":"); t = b[1] * 3600 + b[2] * 60 + b[3]
      if (n++) { if (t - p > 0.1) { g++; gs += t - p } } else f = t; p = t }
    END { printf "  fetch log: %d fetch requests over %.1fs; %d gaps over 100 ms between them, %.1fs in all;", n, p - f, g, gs
          printf " partitions refused for queued.min.messages %d times (%s)\n", refused, "'"$OUT/jobs-fetch.log"'" }'
fi

echo
echo "== summary"
printf '%s\n' "${SUMMARY[@]}"
