"""What the jobs stage does with input it cannot use, and with a sink it
cannot open: every case has a defined outcome, a counter and a log line.
Bad values are written to Kafka with the real kcat; good ones through
sluice's own forward input and routes (JSON and msgpack)."""
import json
import os
import subprocess

from harness import Broker, Sluice, Tap, sluice_cat, tempdir, wait_for

t = Tap()
tmp = tempdir("sluice-jobs-bad-")
broker = Broker()
broker._cmd("topic raw 1")
broker._cmd("topic packed 1")

BASE = 1_700_000_000_000
rows_path = os.path.join(tmp, "rows.jsonl")
late_path = os.path.join(tmp, "late.jsonl")


def kcat_produce(topic, lines):
    p = subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", topic, "-p", "0"],
                       input="".join(l + "\n" for l in lines).encode(), capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr


CONFIG = f"""
[http]
listen = "127.0.0.1:0"
[input.forward]
listen = "127.0.0.1:0"
[kafka]
brokers = "{broker.bootstrap}"
[[route]]
match = "packed.**"
topic = "packed"
format = "msgpack"

[[job]]
name = "json_job"
topics = ["raw"]
group_by = ["k"]
time = {{ field = "ts", format = "epoch_ms" }}
window = {{ type = "tumbling", size = "10s" }}
allowed_lateness = "1s"
idle_timeout = "1h"
max_keys = 2
aggregates = {{ n = "count()" }}
sinks = ["rows"]
late_sink = "late"

[[job]]
name = "msgpack_job"
topics = ["packed"]
format = "msgpack"
group_by = ["k"]
time = {{ field = "ts", format = "epoch_ms" }}
window = {{ type = "tumbling", size = "10s" }}
aggregates = {{ n = "count()" }}
sinks = ["rows"]

[[sink]]
name = "rows"
plugin = "file"
path = "{rows_path}"

[[sink]]
name = "late"
plugin = "file"
path = "{late_path}"
"""
s = Sluice(CONFIG)

good = lambda ts, k: json.dumps({"ts": BASE + ts, "k": k})
kcat_produce("raw", [
    good(0, "a"),
    "this is not json",                      # decode
    "[1, 2, 3]",                             # decode: not an object
    json.dumps({"k": "a"}),                  # time: no ts
    json.dumps({"ts": "yesterday", "k": "a"}),  # time: unreadable
    good(1000, "b"),
    good(2000, "c"),                         # a third key in one window: over max_keys = 2
    good(30000, "a"),                        # moves the watermark past [0, 10 s)
])
r = sluice_cat(s.port, "packed.x", [{"ts": BASE + 0, "k": "m"}, {"ts": BASE + 3_600_000, "k": "m"}])
t.ok(r.returncode == 0, "msgpack records sent through a msgpack route", r.stderr)
kcat_produce("packed", ['{"ts": 1, "k": "json in a msgpack topic"}'])

m = 'sluice_job_records_bad_total{sluice_job="json_job",reason="decode"}'
s.wait_metric(m, lambda v: v == 2, 30)
t.eq(s.metric(m), 2, "a value that is not a JSON object: counted as reason=decode")
t.ok(s.log.seen(r'job json_job: record raw/0@1 skipped: not JSON \(format = "json"\)'),
     "the log names the record (topic/partition@offset), why, and the job's format")
t.ok(s.log.seen(r"job json_job: record raw/0@2 skipped: not a JSON object"), "an array is not a record")
s.wait_metric('sluice_job_records_bad_total{sluice_job="json_job",reason="time"}', lambda v: v == 2)
t.ok(s.log.seen(r"job json_job: 2 records without a readable time field skipped"),
     "records without a readable time field: counted as reason=time, and logged")
s.wait_metric('sluice_job_keys_dropped_total{sluice_job="json_job"}', lambda v: v == 1)
t.ok(s.log.seen(r"job json_job: 1 window updates dropped: a window has max_keys \(2\) group keys"),
     "the third key of a window over max_keys = 2 is counted and logged")
# A record is late when its window has been emitted by the time it is read.
s.wait_metric('sluice_job_rows_total{sluice_job="json_job"}', lambda v: v == 2)
kcat_produce("raw", [good(500, "a"), good(3_600_000, "z")])  # late; then one that closes [30 s, 40 s)
s.wait_metric('sluice_job_records_late_total{sluice_job="json_job"}', lambda v: v == 1)
wait_for(lambda: os.path.exists(late_path) and open(late_path).read().count("\n") == 1, 20, "the late record")
t.eq(json.loads(open(late_path).read()), {"ts": BASE + 500, "k": "a"}, "the late record went to late_sink as it was")
s.wait_metric('sluice_job_rows_total{sluice_job="json_job"}', lambda v: v == 3)
wait_for(lambda: open(rows_path).read().count('"job":"json_job"') == 3, 20, "json_job's rows")
rows = [json.loads(l) for l in open(rows_path) if '"json_job"' in l]
t.eq(sorted((r["k"], r["n"]) for r in rows), [("a", 1), ("a", 1), ("b", 1)],
     "rows count only the good records: a and b in the first window (c dropped), a in the second")

m = 'sluice_job_records_bad_total{sluice_job="msgpack_job",reason="decode"}'
s.wait_metric(m, lambda v: v == 1, 30)
t.ok(s.log.seen(r'job msgpack_job: record packed/0@2 skipped: .* \(format = "msgpack"\)'),
     "JSON text in a msgpack job's topic: counted and logged")
s.wait_metric('sluice_job_rows_total{sluice_job="msgpack_job"}', lambda v: v == 1)
wait_for(lambda: '"k":"m"' in open(rows_path).read(), 20, "msgpack_job's row")
t.ok('"job":"msgpack_job"' in open(rows_path).read() and '"n":1' in open(rows_path).read(),
     "msgpack records are aggregated")
t.eq(s.stop(), 0, "stops cleanly after bad input")

# A sink that cannot be created: the daemon does not start, and says why.
bad = Sluice(CONFIG.replace(f'path = "{rows_path}"', 'path = "/nonexistent/dir/rows.jsonl"'), wait_ready=False)
code = bad.p.wait(30)
t.eq(code, 1, "a sink that cannot open its file: exit 1")
t.ok(bad.log.seen(r"sink\[0\].*/nonexistent/dir/rows.jsonl", 5), "the error names the sink and the file",
     bad.log.text()[-800:])
broker.stop()
t.done()
