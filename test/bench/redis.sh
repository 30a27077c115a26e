#!/usr/bin/env bash
# Redis sink benchmark: rows/s the redis plugin writes to a local
# redis-server, beside redis-benchmark sending the same commands (the
# ceiling), in alternating rounds against the same server.
#
#  plugin   test/bench/redis_driver.c: redis.so loaded with dlopen and
#           driven by a minimal fake host, as the agent drives it: writes of
#           BATCH rows (the [[sink]] batch_size), INFLIGHT writes handed over
#           at a time (the plugin pipelines one write's commands and starts
#           the next when every reply is in), key "pv:${page}" over KEYS
#           distinct pages; a row is a job's row of 8 fields (~190 bytes of
#           JSON).  Timed from the first write to the last write_done.
#             set   SET pv:<page> <the row's JSON>
#             hash  HSET pv:<page> id .. job .. window_start .. window_end ..
#                   page .. n .. s .. avg ..
#  ceiling  redis-benchmark -c 1 -P BATCH -n ROWS -r KEYS with the same
#           command and the same bytes (one connection, like the plugin;
#           BATCH commands pipelined, then their replies awaited).
#
# Each line reports the median of ROUNDS rounds and plugin / ceiling.
#
#   bash test/bench/redis.sh            # from anywhere; builds what it needs
#
# Environment: ROWS (default 1000000), BATCH (1000), KEYS (10000), INFLIGHT
# (4), ROUNDS (5), MODES ("set hash"), BUILD (default build-bench: a release
# build of its own).
set -euo pipefail

ROWS=${ROWS:-1000000}
BATCH=${BATCH:-1000}
KEYS=${KEYS:-10000}
INFLIGHT=${INFLIGHT:-4}
ROUNDS=${ROUNDS:-5}
MODES=${MODES:-set hash}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$SRC/build-bench}
OUT=$BUILD/bench
mkdir -p "$OUT"

for tool in redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "redis.sh: no $tool (apt-get install redis-server)" >&2; exit 1; }
done

# ---- build ----------------------------------------------------------------
build_failed() {
  tail -30 "$OUT/redis-build.log" >&2
  echo "redis.sh: the build failed (log: $OUT/redis-build.log)" >&2
  exit 1
}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$SRC" --buildtype=release >"$OUT/redis-build.log" 2>&1 || build_failed
ninja -C "$BUILD" plugins/redis.so >"$OUT/redis-build.log" 2>&1 || build_failed
# shellcheck disable=SC2046
gcc -O2 -Wall -Wextra -std=c11 -I"$SRC/plugins/sdk" -o "$OUT/redis_driver" "$SRC/test/bench/redis_driver.c" \
  $(pkg-config --cflags --libs libuv) -ldl
DRIVER=$OUT/redis_driver
PLUGIN=$BUILD/plugins/redis.so

# ---- a redis-server of its own, on a free loopback port -----------------------
TMP=$(mktemp -d)
REDIS_PID=
cleanup() {
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
for _ in 1 2 3 4 5; do
  PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" --protected-mode no \
    >"$TMP/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 100); do
    redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
    kill -0 "$REDIS_PID" 2>/dev/null || break
    sleep 0.05
  done
  redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
  wait "$REDIS_PID" 2>/dev/null || true
  REDIS_PID=
done
[ -n "$REDIS_PID" ] || { cat "$TMP/redis.log" >&2; echo "redis.sh: redis-server did not start" >&2; exit 1; }

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

plugin_rate() {
  local out
  out=$("$DRIVER" "$PLUGIN" "$PORT" "$1" "$ROWS" "$BATCH" "$KEYS" "$INFLIGHT")
  awk '{ for (i = 1; i < NF; i++) if ($i == "rows_per_s") print $(i + 1) }' <<<"$out"
}

ceiling_rate() {
  local -a cmd
  if [ "$1" = set ]; then
    cmd=(SET pv:page__rand_int__ "$("$DRIVER" --print-row set)")
  else
    mapfile -t fields < <("$DRIVER" --print-row hash)
    cmd=(HSET pv:page__rand_int__ "${fields[@]}")
  fi
  redis-benchmark -p "$PORT" -c 1 -P "$BATCH" -n "$ROWS" -r "$KEYS" --csv "${cmd[@]}" |
    awk -F'","' 'END { printf "%d\n", $(NF - 6) }'
}

echo "redis sink: $ROWS rows per round, batch $BATCH, $INFLIGHT writes handed over at a time, $KEYS keys," \
  "$ROUNDS rounds; $(redis-server --version | awk '{ print $1, $2, $3 }')"
for mode in $MODES; do
  : >"$TMP/plugin" && : >"$TMP/ceiling"
  for _ in $(seq "$ROUNDS"); do
    redis-cli -p "$PORT" flushall >/dev/null
    plugin_rate "$mode" >>"$TMP/plugin"
    redis-cli -p "$PORT" flushall >/dev/null
    ceiling_rate "$mode" >>"$TMP/ceiling"
  done
  p=$(median <"$TMP/plugin")
  c=$(median <"$TMP/ceiling")
  printf '%-5s plugin %9.0f rows/s   redis-benchmark -c 1 -P %s %9.0f req/s   plugin/ceiling %.2f   (rounds: plugin %s; ceiling %s)\n' \
    "$mode" "$p" "$BATCH" "$c" "$(awk -v p="$p" -v c="$c" 'BEGIN { print p / c }')" \
    "$(tr '\n' ' ' <"$TMP/plugin" | sed 's/ $//')" "$(tr '\n' ' ' <"$TMP/ceiling" | sed 's/ $//')"
done
