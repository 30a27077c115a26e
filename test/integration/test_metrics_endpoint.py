"""/metrics as Prometheus sees it: the real `promtool check metrics` accepts
the exposition of a running agent that has published records to Kafka,
refused a handshake and rejected bad input; every metric name the README
documents is there with its type; values follow what happened."""
import os
import shutil
import subprocess
import sys

from harness import SRCDIR, Broker, Sluice, Tap, wait_for

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import ForwardClient, event_time, sluice_config  # noqa: E402

t = Tap()
promtool = shutil.which("promtool")
if not promtool:
    t.skip_all("promtool not installed (Debian package prometheus)")

# name -> type, for every metric the ingest stage has always exposed.
EXPECTED = {
    "sluice_forward_connections_total": "counter",
    "sluice_forward_connections_rejected_total": "counter",
    "sluice_forward_connections_idle_closed_total": "counter",
    "sluice_forward_connections": "gauge",
    "sluice_forward_messages_total": "counter",
    "sluice_forward_records_total": "counter",
    "sluice_forward_bytes_total": "counter",
    "sluice_forward_acks_total": "counter",
    "sluice_forward_errors_total": "counter",
    "sluice_forward_invalid_events_skipped_total": "counter",
    "sluice_forward_size_mismatch_total": "counter",
    "sluice_forward_large_messages_total": "counter",
    "sluice_forward_signal_dropped_total": "counter",
    "sluice_forward_auth_failures_total": "counter",
    "sluice_forward_heartbeats_total": "counter",
    "sluice_forward_pauses_total": "counter",
    "sluice_forward_paused": "gauge",
    "sluice_forward_paused_seconds_total": "counter",
    "sluice_forward_unread_replies_pauses_total": "counter",
    "sluice_forward_pending_acks": "gauge",
    "sluice_route_unmatched_records_total": "counter",
    "sluice_route_template_errors_total": "counter",
    "sluice_kafka_produced_total": "counter",
    "sluice_kafka_delivered_total": "counter",
    "sluice_kafka_delivery_failed_total": "counter",
    "sluice_kafka_produce_rejected_total": "counter",
    "sluice_kafka_queue_full_total": "counter",
    "sluice_kafka_inflight_records": "gauge",
    "sluice_kafka_wakeups_total": "counter",
    "sluice_kafka_missed_wakeups_total": "counter",
    "sluice_print_records_total": "counter",
    "sluice_ingest_held_back_messages": "gauge",
    "sluice_ingest_abandoned_records_total": "counter",
    "sluice_kafka_brokers_up": "gauge",
    "sluice_kafka_producer_queue_messages": "gauge",
    "sluice_kafka_producer_queue_bytes": "gauge",
    "sluice_kafka_delivery_seconds": "histogram",
    "sluice_kafka_produce_errors_total": "counter",
    "sluice_http_requests_total": "counter",
    "sluice_http_connections_dropped_total": "counter",
    "sluice_process_resident_memory_bytes": "gauge",
    "sluice_process_cpu_seconds_total": "counter",
    "sluice_process_open_fds": "gauge",
    "sluice_process_max_fds": "gauge",
    "sluice_process_start_time_seconds": "gauge",
    "sluice_build_info": "gauge",
}
REASONS = ["malformed_msgpack", "chunk_size_limit", "max_depth", "not_array", "bad_tag", "bad_mode",
           "bad_option", "bad_gzip", "decompression_size_limit", "invalid_event", "decoded_values_limit", "tag_size_limit"]

broker = Broker(topics=["m.logs:2"])
s = Sluice(sluice_config(broker.bootstrap, '[[route]]\nmatch = "m.**"\ntopic = "m.logs"\n',
                         properties={"message.max.bytes": "10000"}))

c = ForwardClient(s.port)
c.send_packed("m.app", [(event_time(1700000000, i), {"i": i}) for i in range(50)], chunk="m-1")
t.ok(c.wait_ack("m-1", 20), "a 50-record chunk is acked after Kafka has it")
bad = ForwardClient(s.port)
bad.sock.sendall(b"\x91\xc0")  # [nil]: an array that fits no forward mode
s.wait_metric('sluice_forward_errors_total{reason="bad_mode"}', lambda v: v == 1)
s.wait_metric('sluice_kafka_delivered_total{topic="m.logs"}', lambda v: v == 50)

status, body = s.http("/metrics")
t.eq(status, 200, "/metrics answers 200")
p = subprocess.run([promtool, "check", "metrics"], input=body.encode(), capture_output=True, timeout=30)
t.ok(p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(),
     "promtool check metrics finds no problem in the live exposition", p.stdout.decode() + p.stderr.decode())

types = {}
for line in body.splitlines():
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ", 3)
        types[name] = kind
missing = {n: k for n, k in EXPECTED.items() if types.get(n) != k}
t.ok(not missing, f"all {len(EXPECTED)} documented metrics are exposed with their types", missing)
t.eq(body.count("# TYPE sluice_forward_errors_total "), 1, "a labelled family has one TYPE line")
m = s.metrics()
t.ok(all(f'sluice_forward_errors_total{{reason="{r}"}}' in m for r in REASONS),
     "every error reason is exposed from the start (0 until it happens)", sorted(k for k in m if "errors" in k))
t.eq(m['sluice_forward_errors_total{reason="bad_mode"}'], 1.0, "the bad message is counted under its reason")
t.eq(m['sluice_forward_records_total{mode="packed_forward"}'], 50.0, "records received counted by mode")
t.eq(m['sluice_forward_messages_total{mode="packed_forward"}'], 1.0, "one PackedForward message")
t.ok(all(f'sluice_forward_messages_total{{mode="{x}"}}' in m for x in ("message", "forward", "compressed_packed_forward")),
     "every mode is exposed from the start")
t.eq(m['sluice_kafka_produced_total{topic="m.logs"}'], 50.0, "records produced counted, by topic")
t.eq(m["sluice_kafka_inflight_records"], 0.0, "nothing in flight once acked")
# One delivered record in 16 is timed: the 1st, 17th, 33rd and 49th.
t.eq(m["sluice_kafka_delivery_seconds_count"], 4.0, "one acknowledged record in 16 timed in the delivery histogram")
t.eq(m['sluice_kafka_delivery_seconds_bucket{le="+Inf"}'], 4.0, "its +Inf bucket holds them all")
t.eq(m["sluice_forward_acks_total"], 1.0, "one ack sent")
t.eq(m["sluice_forward_connections"], 2.0, "two open connections")
t.eq(m["sluice_kafka_missed_wakeups_total"], 0.0, "no Kafka wake-up was lost")
t.ok(m["sluice_kafka_wakeups_total"] > 0, "Kafka events woke the loop")

# A record larger than message.max.bytes is refused at produce time, and a
# Produce request the broker fails (47, INVALID_PRODUCER_EPOCH: not
# appended) fails its record: each is counted by topic and librdkafka's
# error name, and neither chunk is acked.
c.send_message("m.big", event_time(1700000001, 0), {"pad": "x" * 20000}, chunk="m-big")
too_big = 'sluice_kafka_produce_errors_total{topic="m.logs",error="MSG_SIZE_TOO_LARGE"}'
t.ok(wait_for(lambda: s.metric(too_big) == 1, 20, "the refusal"), "a record over message.max.bytes: counted")
broker.produce_error(47, 1)
c.send_message("m.app", event_time(1700000002, 0), {"i": 50}, chunk="m-2")
failed = 'sluice_kafka_produce_errors_total{topic="m.logs",error="INVALID_PRODUCER_EPOCH"}'
t.ok(wait_for(lambda: s.metric(failed) == 1, 20, "the failed delivery"), "a record the broker failed: counted")
m = s.metrics()
t.ok(m["sluice_kafka_produce_rejected_total"] == 1 and m["sluice_kafka_delivery_failed_total"] == 1,
     "and in the unlabelled totals")
t.eq(m["sluice_kafka_delivery_seconds_count"], 4.0, "a failed record is not timed as delivered")
t.ok(c.poll(0.2) == ["m-1"], "neither chunk is acked", c.acks)
t.ok(s.log.seen(r"record of \d+ bytes to topic m\.logs refused: ") and
     s.log.seen(r"record to topic m\.logs failed: "), "both are logged with the topic")
p = subprocess.run([promtool, "check", "metrics"], input=s.http("/metrics")[1].encode(), capture_output=True,
                   timeout=30)
t.ok(p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(),
     "promtool check metrics accepts the labelled error series", p.stdout.decode() + p.stderr.decode())

c.close()
bad.close()
t.ok(wait_for(lambda: s.metric("sluice_forward_connections") == 0, 10, "connections to close"),
     "closed connections bring the gauge back to 0")

t.eq(s.stop(), 0, "sluice exits 0")
broker.stop()
t.done()
