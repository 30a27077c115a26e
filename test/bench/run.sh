#!/usr/bin/env bash
# Producer-ceiling benchmark: sluice end to end (forward PackedForward in,
# Kafka out, acks back) against a bare librdkafka loop with the same
# producer settings, both into the same mock broker, alternating rounds,
# for each record shape in turn:
#   seq     {"seq":i,"message":"xxx…"} (~100 bytes of JSON), one connection
#   access  access-log records: id, service, status, latency_ms, message,
#           and the tag added by the route (tag_key = "tag"), ~170 bytes of
#           JSON, over 4 connections (4 `sluice cat`s in parallel, N/4 each)
#
#   bash test/bench/run.sh            # from the repository root
#
# Environment: N (records per run, default 1000000), ROUNDS (default 9),
# SHAPES (default "seq access"), SIZE (seq: cat --size, default 73: a
# ~100-byte JSON value), CONNS (connections, i.e. parallel cats; default 1
# for seq, 4 for access), BATCH (records per PackedForward message, default
# 1000), BUILD (default build-bench), CHECK=0 (skip comparing the ceiling's
# bytes with sluice's, done with kcat when it is installed), PROFILE=1 (perf
# record sluice and the ceiling during one extra run per shape; reports in
# $BUILD/bench), COMPARE=/path/to/another/sluice (an earlier build: it runs
# beside this one on the same broker, in the same alternating rounds, and
# the report adds the ratio this/that, the fairest before/after measure on a
# noisy machine), WORKERS (sluice's [input.forward] workers, default 1),
# TLS=0 (skip TLS: by default a second sluice whose forward input has
# [input.forward.tls], client certificates required, runs beside the plain
# one in the same rounds, fed by `sluice cat --tls`, and the report adds
# its rate and the ratio tls/plain).
set -euo pipefail

N=${N:-1000000}
ROUNDS=${ROUNDS:-9}
SHAPES=${SHAPES:-seq access}
SIZE=${SIZE:-73}
BATCH=${BATCH:-1000}
PARTITIONS=${PARTITIONS:-3}
TOPIC=bench
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$SRC/build-bench}
OUT=$BUILD/bench
mkdir -p "$OUT"

# ---- build ----------------------------------------------------------------
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$SRC" --buildtype=release >/dev/null
ninja -C "$BUILD" agent/sluice test/mock_broker >/dev/null
# shellcheck disable=SC2046
gcc -O2 -Wall -Wextra -std=c11 -D_GNU_SOURCE -o "$OUT/producer_ceiling" "$SRC/test/bench/producer_ceiling.c" \
  $(pkg-config --cflags --libs rdkafka)
SLUICE=$BUILD/agent/sluice
CEILING=$OUT/producer_ceiling
TLS=${TLS:-1}

TMP=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# wait_for FILE REGEX SECONDS: waits until a line of FILE matches; prints it.
wait_for() {
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    if grep -m1 -E "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "run.sh: timed out waiting for /$2/ in $1" >&2
  cat "$1" >&2
  return 1
}

# shape_args SHAPE: sets CAT_ARGS, CEIL_ARGS, TAG_KEY (the route line) and
# SHAPE_CONNS for it.
shape_args() {
  case $1 in
  seq)
    CAT_ARGS=(--shape seq --size "$SIZE") CEIL_ARGS=(-S seq -s "$SIZE") TAG_KEY=""
    SHAPE_CONNS=${CONNS:-1}
    ;;
  access)
    CAT_ARGS=(--shape access) CEIL_ARGS=(-S access) TAG_KEY='tag_key = "tag"'
    SHAPE_CONNS=${CONNS:-4}
    ;;
  *)
    echo "run.sh: unknown shape '$1' (seq, access)" >&2
    exit 64
    ;;
  esac
}
for shape in $SHAPES; do shape_args "$shape"; done

# ---- mock broker (stdin held open by a fifo; EOF stops it) ----------------
mkfifo "$TMP/broker.in"
topics=(-t "$TOPIC:$PARTITIONS")
for shape in $SHAPES; do topics+=(-t "check-$shape-ceiling:1" -t "check-$shape-sluice:1"); done
"$BUILD/test/mock_broker" "${topics[@]}" <"$TMP/broker.in" >"$TMP/broker.out" 2>&1 &
BROKER_PID=$!
pids+=("$BROKER_PID")
exec 9>"$TMP/broker.in"
BOOTSTRAP=$(wait_for "$TMP/broker.out" '^bootstrap ' 10 | awk '{print $2}')

# ---- certificates (TLS) ---------------------------------------------------
# A CA, the server's certificate for 127.0.0.1 and a client's, as an
# operator would have them (P-256 keys).
make_certs() {
  local d=$TMP/tls
  mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 2 \
      -subj "/CN=bench CA"
    for who in server client; do
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $who.key -out $who.csr -subj "/CN=$who"
    done
    echo "subjectAltName = IP:127.0.0.1" >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 \
      -extfile server.ext
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2
  ) >/dev/null 2>&1
  CAT_TLS_ARGS=(--ca "$d/ca.crt" --cert "$d/client.crt" --key "$d/client.key")
}
[ "$TLS" = 1 ] && make_certs

# ---- sluice ---------------------------------------------------------------
# write_config SHAPE: the bench's route (and the byte check's) for it.
write_config() {
  cat >"$TMP/sluice.toml" <<EOF
[log]
level = "info"
[http]
listen = "127.0.0.1:0"
[input.forward]
listen = ["127.0.0.1:0"]
workers = ${WORKERS:-1}
[kafka]
brokers = ["$BOOTSTRAP"]
[[route]]
match = "$TOPIC"
topic = "$TOPIC"
$TAG_KEY
[[route]]
match = "check"
topic = "check-$1-sluice"
$TAG_KEY
EOF
  # The same with TLS on the forward input.
  cat "$TMP/sluice.toml" - >"$TMP/sluice-tls.toml" <<EOF
[input.forward.tls]
cert_file = "$TMP/tls/server.crt"
key_file = "$TMP/tls/server.key"
ca_file = "$TMP/tls/ca.crt"
client_auth = "required"
EOF
}
# start_sluice BINARY LOG [CONFIG]: runs it; sets STARTED_PID, STARTED_PORT, STARTED_HTTP.
start_sluice() {
  "$1" run -c "${3:-$TMP/sluice.toml}" >"$2" 2>&1 9>&- &
  STARTED_PID=$!
  pids+=("$STARTED_PID")
  STARTED_PORT=$(wait_for "$2" 'forward: listening on 127\.0\.0\.1:[0-9]+' 10 |
    sed -E 's/.*listening on 127\.0\.0\.1:([0-9]+).*/\1/')
  STARTED_HTTP=$(grep -m1 -oE 'http://127\.0\.0\.1:[0-9]+' "$2")
}
stop_sluice() {
  kill -TERM "$1"
  wait "$1" || echo "run.sh: sluice (pid $1) exited with status $?" >&2
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TIMEFORMAT='%3U %3S' # for the cats: the `time` keyword has ms, /usr/bin/time 10 ms
TCK=$(getconf CLK_TCK)
now() { date +%s.%N; }
# Busy ticks of the whole machine (user nice system irq softirq steal).
sys_busy() { awk 'NR == 1 {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# Each run appends "kind n rate wall cpu broker_cpu cat_cpu other" to
# $RUNS: CPU in seconds over the run (cpu = the ceiling program's over its
# timed part, as it reports it, or sluice's), other = cores used meanwhile
# by processes not in the bench.
run_ceiling() {
  local n=$1 b0 b1 s0 s1 t0 t1
  b0=$(cpu_ticks "$BROKER_PID")
  s0=$(sys_busy)
  t0=$(now)
  "$CEILING" -b "$BOOTSTRAP" -t "$TOPIC" -n "$n" "${CEIL_ARGS[@]}" -T "$TOPIC" >"$TMP/ceiling.out"
  t1=$(now)
  s1=$(sys_busy)
  b1=$(cpu_ticks "$BROKER_PID")
  VALUE_BYTES=$(sed -E 's/.*value_bytes=([0-9.]+).*/\1/' "$TMP/ceiling.out")
  awk -v b0="$b0" -v b1="$b1" -v s0="$s0" -v s1="$s1" -v t0="$t0" -v t1="$t1" -v tck="$TCK" 'NR == 1 {
      split($0, f, /[= \/]+/) # records N seconds S rate R s value_bytes B cpu C
      own = f[11] + (b1 - b0) / tck
      printf "ceiling %s %s %s %.3f %.3f 0 %.2f\n", f[2], f[6], f[4], f[11], (b1 - b0) / tck,
        ((s1 - s0) / tck - own) / (t1 - t0) }' \
    "$TMP/ceiling.out" >>"$RUNS"
}

# Times SHAPE_CONNS parallel `sluice cat`s (record numbers shared out, so
# that together they send records 1..N like the ceiling) from their start
# until the last ack of the last one.  run_sluice N [KIND PID PORT]: the
# kind is "sluice" (default), "compare" or "tls" (the cats with --tls).
run_sluice() {
  local n=$1 kind=${2:-sluice} pid=${3:-$SLUICE_PID} port=${4:-$PORT} c0 t0 t1 c1 b0 b1 s0 s1 k each first=1
  local cats=() failed=0 tls=()
  [ "$kind" = tls ] && tls=("${CAT_TLS_ARGS[@]}")
  rm -f "$TMP"/cat*.time
  c0=$(cpu_ticks "$pid")
  b0=$(cpu_ticks "$BROKER_PID")
  s0=$(sys_busy)
  t0=$(now)
  for ((k = 0; k < SHAPE_CONNS; k++)); do
    each=$((n / SHAPE_CONNS + (k < n % SHAPE_CONNS ? 1 : 0)))
    ((each > 0)) || continue
    { time "$SLUICE" cat -p "$port" --mode packed --batch "$BATCH" --ack --timeout 300 --generate "$each" \
      --first "$first" "${CAT_ARGS[@]}" ${tls[@]+"${tls[@]}"} "$TOPIC" 2>"$TMP/cat$k.err"; } 2>"$TMP/cat$k.time" &
    cats+=("$!")
    first=$((first + each))
  done
  for p in "${cats[@]}"; do wait "$p" || failed=1; done
  t1=$(now)
  s1=$(sys_busy)
  c1=$(cpu_ticks "$pid")
  b1=$(cpu_ticks "$BROKER_PID")
  if ((failed)); then
    cat "$TMP"/cat*.err >&2
    return 1
  fi
  cat "$TMP"/cat*.time | awk -v kind="$kind" -v n="$n" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v b0="$b0" \
    -v b1="$b1" -v s0="$s0" -v s1="$s1" -v tck="$TCK" '{k += $1 + $2} END {
      own = (c1 - c0) / tck + (b1 - b0) / tck + k
      printf "%s %d %.0f %.3f %.3f %.3f %.3f %.2f\n", kind, n, n / (t1 - t0), t1 - t0, (c1 - c0) / tck, (b1 - b0) / tck, k,
        ((s1 - s0) / tck - own) / (t1 - t0) }' >>"$RUNS"
}
run_compare() { [ -z "${COMPARE:-}" ] || run_sluice "$1" compare "$COMPARE_PID" "$COMPARE_PORT"; }
run_tls() { [ "$TLS" != 1 ] || run_sluice "$1" tls "$TLS_PID" "$TLS_PORT"; }

# check_bytes SHAPE: the ceiling is only a ceiling for the same output, so
# both write 5,000 records (more than cat's access pool) to topics of their
# own, and the values and headers read back must be the same.
check_bytes() {
  [ "${CHECK:-1}" = 1 ] || return 0
  if ! command -v kcat >/dev/null; then
    echo "bench: kcat not installed: not checking that the ceiling writes sluice's bytes"
    return 0
  fi
  local side
  "$CEILING" -b "$BOOTSTRAP" -t "check-$1-ceiling" -n 5000 "${CEIL_ARGS[@]}" -T check >/dev/null
  "$SLUICE" cat -p "$PORT" --mode packed --batch "$BATCH" --ack --generate 5000 "${CAT_ARGS[@]}" check \
    2>"$TMP/check.err" || { cat "$TMP/check.err" >&2; exit 1; }
  for side in ceiling sluice; do
    kcat -C -b "$BOOTSTRAP" -t "check-$1-$side" -o beginning -e -q -f '%h %k|%s\n' | sort >"$TMP/check-$side"
  done
  if [ "$(wc -l <"$TMP/check-sluice")" != 5000 ] || ! cmp -s "$TMP/check-ceiling" "$TMP/check-sluice"; then
    echo "run.sh: $1: the ceiling's Kafka messages differ from sluice's (< ceiling, > sluice):" >&2
    diff "$TMP/check-ceiling" "$TMP/check-sluice" | head -6 >&2
    exit 1
  fi
  echo "bench: $1: ceiling and sluice write the same 5000 values and headers ($(head -1 "$TMP/check-sluice" | cut -c 1-80)…)"
}

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

profile() {
  # One more run of each under perf (dwarf call graphs: the release build
  # has no frame pointers).  Reports: $OUT/perf-{sluice,ceiling}-SHAPE.txt.
  local shape=$1 w main
  perf record -q --call-graph dwarf,16384 -F 2999 -o "$OUT/perf-sluice-$shape.data" -p "$SLUICE_PID" 2>/dev/null &
  perf_pid=$!
  sleep 0.5 # perf attaching; the run below is what gets sampled
  run_sluice "$N"
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
  perf record -q --call-graph dwarf,16384 -F 2999 -o "$OUT/perf-ceiling-$shape.data" \
    "$CEILING" -b "$BOOTSTRAP" -t "$TOPIC" -n "$N" "${CEIL_ARGS[@]}" -T "$TOPIC" >/dev/null 2>&1 || true
  for w in sluice ceiling; do
    main=sluice
    [ "$w" = ceiling ] && main=producer_ceilin # comm is cut at 15 characters
    {
      echo "== samples by thread"
      perf report -i "$OUT/perf-$w-$shape.data" --no-children -g none --sort comm --stdio 2>/dev/null | grep -v '^#' | grep . || true
      echo "== self time by symbol"
      perf report -i "$OUT/perf-$w-$shape.data" --no-children -g none --sort comm,dso,symbol --stdio 2>/dev/null |
        grep -v '^#' | grep . | head -40 || true
      echo "== inclusive time, main thread ($main)"
      perf report -i "$OUT/perf-$w-$shape.data" --children -g none --comm "$main" --sort symbol --stdio 2>/dev/null |
        grep -v '^#' | grep . | grep -v ' 0x0000' | head -80 || true
    } >"$OUT/perf-$w-$shape.txt"
  done
  echo "profiles: $OUT/perf-sluice-$shape.txt $OUT/perf-ceiling-$shape.txt"
}

echo "bench: N=$N records/run, PackedForward batches of $BATCH, $ROUNDS rounds per shape, shapes: $SHAPES"
echo "bench: broker $BOOTSTRAP (topic $TOPIC, $PARTITIONS partitions), $(nproc) cores"
: >"$TMP/summary"

for shape in $SHAPES; do
  shape_args "$shape"
  RUNS=$TMP/runs-$shape
  write_config "$shape"
  start_sluice "$SLUICE" "$TMP/sluice.log"
  SLUICE_PID=$STARTED_PID PORT=$STARTED_PORT HTTP=$STARTED_HTTP
  if [ -n "${COMPARE:-}" ]; then
    start_sluice "$COMPARE" "$TMP/compare.log"
    COMPARE_PID=$STARTED_PID COMPARE_PORT=$STARTED_PORT
  fi
  if [ "$TLS" = 1 ]; then
    start_sluice "$SLUICE" "$TMP/tls.log" "$TMP/sluice-tls.toml"
    TLS_PID=$STARTED_PID TLS_PORT=$STARTED_PORT
  fi
  check_bytes "$shape"

  # Warm-up (not counted): connections, topic metadata, producer ids, and a
  # full-size run of each so that the broker and both processes' heaps are
  # in their steady state.
  : >"$RUNS"
  run_ceiling 20000
  run_sluice 20000
  run_ceiling "$N"
  run_sluice "$N"
  run_compare 20000
  run_compare "$N"
  run_tls 20000
  run_tls "$N"
  : >"$RUNS"
  : >"$TMP/ratios"
  : >"$TMP/compare_ratios"
  : >"$TMP/tls_ratios"
  echo
  echo "== shape $shape: ~${VALUE_BYTES}-byte JSON values, $SHAPE_CONNS connection(s), sluice forward port $PORT"

  # Rounds alternate which one goes first, and the ratio is also taken per
  # round: on the 2-core VM this was written on, the ceiling's speed drifted
  # by up to 2x over tens of seconds with nothing else in ps (a spin loop
  # stayed steady), and both runs of a round see the same conditions.  Other
  # processes' CPU use is measured and reported ("other load").
  for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then
      run_ceiling "$N"
      run_sluice "$N"
      run_tls "$N"
      run_compare "$N"
    else
      run_compare "$N"
      run_tls "$N"
      run_sluice "$N"
      run_ceiling "$N"
    fi
    if [ -n "${COMPARE:-}" ]; then
      grep -E '^(sluice|compare) ' "$RUNS" | tail -2 | awk -v r="$r" '$1 == "sluice" {s = $3} $1 == "compare" {c = $3}
        END { printf "round %d: compare %8.0f rec/s   this/compare %.3f\n", r, c, s / c; print s / c > "/dev/stderr" }' \
        2>>"$TMP/compare_ratios"
    fi
    grep -E '^(ceiling|sluice) ' "$RUNS" | tail -2 | awk -v r="$r" '
      $1 == "ceiling" { c = $3; cs = sprintf("ceiling %8.0f rec/s (%.2fs, cpu %.2fs)", $3, $4, $5); o += $8 }
      $1 == "sluice"  { s = $3; ss = sprintf("sluice %8.0f rec/s (%.2fs, cpu %.2fs, cat %.2fs)", $3, $4, $5, $7); o += $8 }
      END { printf "round %d: %s   %s   ratio %.2f   other load %.2f cores\n", r, cs, ss, s / c, o / 2
            print s / c > "/dev/stderr" }' 2>>"$TMP/ratios"
    if [ "$TLS" = 1 ]; then
      grep -E '^(sluice|tls) ' "$RUNS" | tail -2 | awk -v r="$r" '$1 == "sluice" {s = $3} $1 == "tls" {t = $3; c = $5}
        END { printf "round %d: tls %8.0f rec/s (cpu %.2fs)   tls/plain %.3f\n", r, t, c, t / s; print t / s > "/dev/stderr" }' \
        2>>"$TMP/tls_ratios"
    fi
  done

  CM=$(awk '$1 == "ceiling" {print $3}' "$RUNS" | median)
  SM=$(awk '$1 == "sluice" {print $3}' "$RUNS" | median)
  RM=$(median <"$TMP/ratios")
  # CPU time per record, median of the rounds: the process's own (all its
  # threads), and the load generator's (all cats).
  UC=$(awk '$1 == "ceiling" {print $5 * 1e6 / $2}' "$RUNS" | median)
  US=$(awk '$1 == "sluice" {print $5 * 1e6 / $2}' "$RUNS" | median)
  UK=$(awk '$1 == "sluice" {print $7 * 1e6 / $2}' "$RUNS" | median)
  OL=$(awk '{o += $8} END {printf "%.2f", o / NR}' "$RUNS")
  OM=$(awk '$8 > m {m = $8} END {printf "%.2f", m}' "$RUNS")
  awk -v c="$CM" -v s="$SM" -v r="$RM" -v uc="$UC" -v us="$US" -v uk="$UK" 'BEGIN {
    printf "median ceiling (bare librdkafka loop): %.0f records/s\n", c
    printf "median sluice end to end (acked):      %.0f records/s\n", s
    printf "ratio of the medians: %.2f   median of the per-round ratios: %.2f   (goal >= 0.70)\n", s / c, r
    printf "CPU per record (median): ceiling %.2f us;  sluice %.2f us + load generator %.2f us\n", uc, us, uk }'
  awk '$3 > best[$1] {best[$1] = $3} END {
    printf "best runs: ceiling %.0f, sluice %.0f records/s, ratio %.2f\n", best["ceiling"], best["sluice"],
      best["sluice"] / best["ceiling"] }' "$RUNS"
  awk '{w[$1] += $4; p[$1] += $5; b[$1] += $6; k[$1] += $7} END {
    printf "CPU per wall second: ceiling %.2f + broker %.2f;  sluice %.2f + broker %.2f + cat %.2f (of 2 cores)\n",
      p["ceiling"] / w["ceiling"], b["ceiling"] / w["ceiling"], p["sluice"] / w["sluice"], b["sluice"] / w["sluice"],
      k["sluice"] / w["sluice"] }' "$RUNS"
  CMP=-
  if [ -n "${COMPARE:-}" ]; then
    CPM=$(awk '$1 == "compare" {print $3}' "$RUNS" | median)
    CRM=$(median <"$TMP/compare_ratios")
    CMP=$(awk -v s="$SM" -v c="$CPM" 'BEGIN {printf "%.3f", s / c}')
    awk -v s="$SM" -v c="$CPM" -v r="$CRM" 'BEGIN {
      printf "median COMPARE sluice (acked): %.0f records/s;  this/compare: ratio of the medians %.3f, median of the per-round ratios %.3f\n", c, s / c, r }'
  fi
  TLSR=-
  if [ "$TLS" = 1 ]; then
    TM=$(awk '$1 == "tls" {print $3}' "$RUNS" | median)
    TRM=$(median <"$TMP/tls_ratios")
    UT=$(awk '$1 == "tls" {print $5 * 1e6 / $2}' "$RUNS" | median)
    UKT=$(awk '$1 == "tls" {print $7 * 1e6 / $2}' "$RUNS" | median)
    TLSR=$(awk -v r="$TRM" 'BEGIN {printf "%.3f", r}')
    awk -v s="$SM" -v t="$TM" -v r="$TRM" -v us="$US" -v ut="$UT" -v uk="$UKT" 'BEGIN {
      printf "median sluice with TLS (acked): %.0f records/s;  tls/plain: ratio of the medians %.3f, median of the per-round ratios %.3f\n", t, t / s, r
      printf "CPU per record with TLS (median): sluice %.2f us (plain %.2f us) + load generator %.2f us\n", ut, us, uk }'
  fi
  awk -v o="$OL" 'BEGIN {
    if (o > 0.15) printf "WARNING: other processes used %.2f cores on average during the runs: numbers are not clean\n", o }'
  curl -s "$HTTP/metrics" 2>/dev/null | grep -E '^sluice_(forward_pauses_total|kafka_queue_full_total|kafka_failed_total) ' || true
  echo "$shape $SHAPE_CONNS $VALUE_BYTES $CM $SM $(awk -v c="$CM" -v s="$SM" 'BEGIN {printf "%.2f", s / c}') $RM $UC $US $UK $OL $OM $CMP $TLSR" \
    >>"$TMP/summary"

  [ "${PROFILE:-0}" = 1 ] && profile "$shape"
  stop_sluice "$SLUICE_PID"
  [ -z "${COMPARE:-}" ] || stop_sluice "$COMPARE_PID"
  [ "$TLS" != 1 ] || stop_sluice "$TLS_PID"
done

echo
echo "== summary: N=$N, $ROUNDS alternating rounds per shape, medians; CPU in us per record"
awk -v cmp="${COMPARE:+ this/compare}" -v tls="$TLS" 'BEGIN {
    printf "%-7s %5s %6s %12s %12s %6s %6s %8s %8s %8s %11s%s%s\n", "shape", "conns", "bytes", "ceiling/s", "sluice/s",
      "ratio", "r/rnd", "cpu:ceil", "sluice", "cat", "other(max)", cmp, tls == 1 ? " tls/plain(r/rnd)" : "" }
  { printf "%-7s %5d %6.0f %12.0f %12.0f %6.2f %6.2f %8.2f %8.2f %8.2f %5.2f(%.2f)%s%s\n", $1, $2, $3, $4, $5, $6, $7, $8,
      $9, $10, $11, $12, cmp ? "   " $13 : "", tls == 1 ? "   " $14 : "" }' "$TMP/summary"
