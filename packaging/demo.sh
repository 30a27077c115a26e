#!/usr/bin/env bash
# README command 1: installs the dependencies, builds sluice and runs the
# demo pipeline in the foreground: forward input -> embedded Kafka -> a job
# whose rows are printed on stdout.  It sends sample events with `sluice
# cat`, shows what reached Kafka with kcat and the job's rows, and keeps
# running (Ctrl-C stops it) so you can send your own:
#   echo '{"user":"ann","path":"/"}' | build/agent/sluice cat -p 24224 --ack demo.web.access
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/install-deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=debugoptimized >/dev/null
ninja -C build >/dev/null
bin=build/agent/sluice
log=$(mktemp)
"$bin" run -c config/demo.toml 2> >(tee "$log" >&2) &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 200); do
  grep -q "agent: sluice started" "$log" && break
  kill -0 $pid 2>/dev/null || { echo "demo: sluice failed to start" >&2; exit 1; }
  sleep 0.1
done
bootstrap=$(grep -o 'EMBEDDED mock cluster, bootstrap [^ ]*' "$log" | awk '{print $NF}')

echo
echo "== sending 6 events with sluice cat (waiting for acks: each ack means Kafka has the records)"
printf '%s\n' \
  '{"user":"ann","path":"/","status":200,"latency_ms":12}' \
  '{"user":"bob","path":"/cart","status":200,"latency_ms":40}' \
  '{"user":"ann","path":"/pay","status":502,"latency_ms":900}' \
  '{"user":"cid","path":"/","status":200,"latency_ms":8}' |
  "$bin" cat -p 24224 --ack --mode packed demo.web.access
printf '%s\n' '{"job":"nightly","state":"done"}' '{"job":"hourly","state":"failed"}' |
  "$bin" cat -p 24224 --ack demo.batch

echo
echo "== what Kafka holds (kcat -b $bootstrap)"
for t in demo.web demo.other; do
  echo "-- topic $t: partition, key, timestamp, headers, value"
  kcat -C -b "$bootstrap" -t "$t" -o beginning -e -q -f '%p\t%k\t%T\t%h\t%s\n' || true
done
echo
echo "== metrics: curl -s http://127.0.0.1:24231/metrics | grep -v '^#'"
curl -s http://127.0.0.1:24231/metrics 2>/dev/null | grep -E '^sluice_(forward_records|forward_acks|kafka_delivered)' || true
echo
echo "== the job requests_per_path: one row per path every 5 s (waiting for the first rows)"
for _ in $(seq 300); do
  curl -s http://127.0.0.1:24231/metrics 2>/dev/null | grep -q '^sluice_job_rows_total{sluice_job="requests_per_path"} [1-9]' && break
  sleep 0.1
done
echo
echo "sluice keeps running (Ctrl-C to stop). Send more with:"
echo "  echo '{\"user\":\"dan\",\"path\":\"/\"}' | $bin cat -p 24224 --ack demo.web.access"
wait $pid
