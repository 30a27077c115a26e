"""The operator's HTTP endpoint of a running agent, as a scraper, a probe
and a misbehaving client see it: every path's status codes (200, 404, 405
with Allow, 413, 414, 431, 400, 505), HEAD without a body, keep-alive and
pipelined requests, a slow client dropped, the connection limit; the
/api/v1/status document against what the test sent (a job's watermark, open
windows, state, windows emitted, committed and end offsets per partition,
lag reaching 0); the Kafka and process metrics following the traffic; and
/readyz going 503 with the reason while the mock broker is down and back
to 200 when it is up again on the same port."""
import collections
import json
import os
import re
import socket
import subprocess
import sys
import time

from harness import SLUICE, SRCDIR, Broker, Sluice, Tap, kcat_consume, tempdir, wait_for

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import ForwardClient, event_time, sluice_config  # noqa: E402

t = Tap()
out_dir = tempdir("sluice-http-")
broker = Broker(topics=["ev:2"])

JOB = """
[[job]]
name = "{name}"
topics = ["ev"]
group_by = ["k"]
window = {{ type = "tumbling", size = "1s" }}
allowed_lateness = "{lateness}"
idle_timeout = "{idle}"
commit_interval = "100ms"
aggregates = {{ n = "count()" }}
max_keys = {max_keys}
sinks = ["out"]
[job.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"""
# "exact" never sees its partitions idle while the test runs, so its
# watermark is the lowest partition's newest record minus the lateness;
# "quiet" sees them idle a second after the last record, and then closes
# every window on the clock.  Its lateness (5 s) is above the spread of the
# records' event times (4 s): a partition counts as idle while the end
# offset its last fetch told is read, so under a heavy load one partition's
# records can be read seconds before the other's, and a smaller lateness
# would make those of the other late (README, "Idleness never drops data").
body = ('[[route]]\nmatch = "ev.**"\ntopic = "ev"\nkey = "k"\n' + JOB.format(name="exact", idle="10m", lateness="500ms", max_keys=5000) +
        JOB.format(name="quiet", idle="1s", lateness="5s", max_keys=7000) +
        f'[[sink]]\nname = "out"\nplugin = "file"\npath = "{out_dir}/rows.jsonl"\n')
started = time.time()
s = Sluice(sluice_config(broker.bootstrap, body, properties={"statistics.interval.ms": "500"}))

# ---- plain requests -------------------------------------------------------------------

calls = collections.Counter()  # (handler, code) of every request this test makes, but scrapes


class Conn:
    """A client connection that reads responses one at a time (bytes of
    the next one stay buffered)."""

    def __init__(self, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", s.http_port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _more(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(f"closed before a whole response: {self.buf!r}")
        self.buf += chunk

    def response(self, head_only=False):
        """(status, headers, body) of the next response."""
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        want = 0 if head_only else int(headers["content-length"])
        while len(self.buf) < want:
            self._more()
        body, self.buf = self.buf[:want], self.buf[want:]
        return int(lines[0].split(" ")[1]), headers, body.decode("utf-8", "replace")

    def closed(self):
        """Whether the server closes the connection with nothing more sent."""
        self.sock.settimeout(5)
        try:
            return self.buf == b"" and self.sock.recv(100) == b""
        except OSError:
            return True

    def close(self):
        self.sock.close()


def request(data, head_only=False):
    """Sends raw bytes on a new connection and reads one response:
    (status, headers, body, closed), closed saying whether the server then
    closed the connection."""
    c = Conn()
    c.send(data)
    st, headers, body = c.response(head_only)
    closed = c.closed()
    c.close()
    return st, headers, body, closed


def get(path, method="GET", extra=""):
    handler = {"/metrics": "metrics", "/healthz": "healthz", "/readyz": "readyz", "/api/v1/status": "status"}
    st, headers, text, _ = request(f"{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n".encode(),
                                   method == "HEAD")
    calls[(handler.get(path.split("?")[0], "other") if method in ("GET", "HEAD") else "other", st)] += 1
    return st, headers, text


def status_doc():
    st, headers, text = get("/api/v1/status")
    assert st == 200 and headers["content-type"] == "application/json", (st, headers)
    return json.loads(text)


def counter(key):
    return s.metrics().get(key, 0.0)


st, h, text = get("/metrics")
t.ok(st == 200 and h["content-type"].startswith("text/plain; version=0.0.4") and "# TYPE sluice_" in text,
     "GET /metrics: 200, Prometheus text 0.0.4", (st, h))
t.ok(get("/healthz")[:3:2] == (200, "ok\n"), "GET /healthz: 200 ok")
t.ok(wait_for(lambda: get("/readyz")[0] == 200, 20, "/readyz 200"), "GET /readyz: 200 once Kafka statistics "
     "show a broker up")
st, h, text = get("/api/v1/status")
t.ok(st == 200 and h["content-type"] == "application/json" and json.loads(text)["ready"] is True,
     "GET /api/v1/status: 200, JSON, ready")
st, h, text = get("/nope")
t.ok(st == 404 and "/metrics" in text, "an unknown path: 404 naming the paths served", (st, text))
t.eq(get("/metrics/")[0], 404, "a path is matched exactly: /metrics/ is 404")
t.eq(get("/metrics?name[]=x")[0], 200, "a query string is ignored")

st, h, text = get("/metrics", "POST", "Content-Length: 4\r\n\r\nabcd")
t.ok(st == 405 and h.get("allow") == "GET, HEAD", "POST: 405 with Allow: GET, HEAD", (st, h))
t.eq(get("/healthz", "DELETE")[0], 405, "DELETE: 405")

st, h, text, closed = request(b"HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", head_only=True)
calls[("metrics", 200)] += 1
t.ok(st == 200 and int(h["content-length"]) > 1000 and text == "" and closed,
     "HEAD /metrics: 200 with the body's length and no body", (st, h, text[:80]))

st, h, text, closed = request(b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
calls[("other", 413)] += 1
t.ok(st == 413 and closed, "GET with a body: 413, then the connection closes", (st, text))
st, h, text, closed = request(b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"a" * 10000 + b"\r\n\r\n")
calls[("other", 431)] += 1
t.ok(st == 431 and closed, "a 10 KB request head: 431, then the connection closes", (st, text))
st, h, text, closed = request(b"GET /" + b"p" * 2000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
calls[("other", 414)] += 1
t.ok(st == 414 and closed, "a 2000-byte target: 414", (st, text))
st, h, text, closed = request(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40)
calls[("other", 400)] += 1
t.ok(st == 400 and closed, "a TLS hello on the plain port: 400", (st, text))
st, h, text, closed = request(b"GET /metrics HTTP/2.0\r\nHost: t\r\n\r\n")
calls[("other", 505)] += 1
t.ok(st == 505 and closed, "HTTP/2.0 in a request line: 505", (st, text))
t.ok(s.log.seen(r"http: refused a request from 127\.0\.0\.1:\d+: 431 Request Header Fields Too Large"),
     "a refused request is logged with its client and status")

# Keep-alive: three requests on one connection, the last two sent at once.
c = Conn()
c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
r1 = c.response()
c.send(b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\nHEAD /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
r2 = c.response()
r3 = c.response(head_only=True) + (c.closed(),)
c.close()
calls[("healthz", 200)] += 2
calls[("readyz", 200)] += 1
t.ok(r1[0] == 200 and r1[1]["connection"] == "keep-alive" and r1[2] == "ok\n", "keep-alive: first answer, kept")
t.ok(r2[0] == 200 and r2[2] == "ready\n", "a second request on the same connection is answered")
t.ok(r3[0] == 200 and r3[1]["connection"] == "close" and r3[2] == "" and r3[3],
     "a pipelined HEAD after it: answered in order, without a body, then closed", r3)

# A slow client: half a request head, then nothing.
before = counter('sluice_http_connections_dropped_total{reason="timeout"}')
sock = socket.create_connection(("127.0.0.1", s.http_port), timeout=15)
sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n")
t0 = time.monotonic()
try:
    data = sock.recv(100)
except OSError:
    data = b""
waited = time.monotonic() - t0
sock.close()
t.ok(data == b"" and 4.0 <= waited < 10, f"a client that never finishes its request is dropped after 5 s "
     f"({waited:.1f} s), with no answer", data)
t.eq(counter('sluice_http_connections_dropped_total{reason="timeout"}') - before, 1.0,
     "counted in sluice_http_connections_dropped_total{reason=\"timeout\"}")
t.ok(s.log.seen(r"http: closed the connection from 127\.0\.0\.1:\d+: no whole request within 5 s"),
     "and logged")

# The connection limit: 64 open, the 65th is closed at once.
before = counter('sluice_http_connections_dropped_total{reason="limit"}')
held = [socket.create_connection(("127.0.0.1", s.http_port), timeout=10) for _ in range(64)]
extra = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
try:
    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    data = extra.recv(100)
except OSError:
    data = b""
extra.close()
for x in held:
    x.close()
t.eq(data, b"", "with 64 connections open a 65th is closed without an answer")


refused = 1  # the 65th, and any refused below before the server saw the 64 close


def healthy():
    global refused
    try:
        return get("/healthz")[0] == 200
    except (OSError, EOFError):
        refused += 1
        return False


t.ok(wait_for(healthy, 10, "a connection slot"), "once they close, requests are served again")
t.eq(counter('sluice_http_connections_dropped_total{reason="limit"}') - before, float(refused),
     "each connection refused is counted in sluice_http_connections_dropped_total{reason=\"limit\"}")

# ---- the status against a job's records -------------------------------------------------

N = 40
# Ahead of the clock: "quiet", idle until they come, has its watermark at
# the clock minus 6 s, and must not find them late even on a slow run.
base = int(time.time() * 1000) + 8000
sent_at = time.time()
fc = ForwardClient(s.port)
fc.send_packed("ev.app", [(event_time((base + 100 * i) // 1000, (base + 100 * i) % 1000 * 1000000),
                           {"k": f"k{i % 5}", "i": i}) for i in range(N)], chunk="c1")
t.ok(fc.wait_ack("c1", 30), "40 records sent and acked")
msgs = kcat_consume(broker.bootstrap, "ev", N)
t.eq(len(msgs), N, "read back from Kafka")
parts = collections.defaultdict(list)
for m in msgs:
    parts[m["partition"]].append(m)
for p in parts.values():
    p.sort(key=lambda m: m["offset"])
t.eq(sorted(parts), [0, 1], "the keys land in both partitions")


def window(ts):
    return ts // 1000 * 1000


def key_of(m):
    return json.loads(m["value"])["k"]


wm = min(max(m["ts"] for m in p) for p in parts.values()) - 500
closed_windows = {window(m["ts"]) for m in msgs if window(m["ts"]) + 1000 <= wm}
open_windows = {window(m["ts"]) for m in msgs} - closed_windows
open_cells = {(window(m["ts"]), key_of(m)) for m in msgs if window(m["ts"]) in open_windows}
closed_cells = {(window(m["ts"]), key_of(m)) for m in msgs if window(m["ts"]) in closed_windows}


def job(doc, name):
    return next(j for j in doc["jobs"] if j["name"] == name)


def parts_of(j):
    return {p["partition"]: p for p in j["partitions"] if p["topic"] == "ev"}


def exact_settled():
    doc = status_doc()
    j = job(doc, "exact")
    return doc if j["records_total"] == N and j["watermark_seconds"] == wm / 1000 else None


try:
    doc = wait_for(exact_settled, 30, "job exact to read every record")
except TimeoutError:
    doc = status_doc()
j = job(doc, "exact")
t.eq(j["records_total"], N, "status: job exact read the 40 records")
t.eq(j["watermark_seconds"], wm / 1000, "status: its watermark is the lowest partition's newest event time minus "
     "the lateness")
t.eq(j["open_windows"], len(open_windows), "status: windows past the watermark are open")
t.eq(j["state_keys"], len(open_cells), "status: state keys are the open (window, k) cells")
t.ok(j["state_bytes"] > 0, "status: state bytes held", j)
t.eq((j["max_keys"], job(doc, "quiet")["max_keys"]), (5000, 7000), "status: each job's max_keys")
t.eq(j["windows_emitted_total"], len(closed_windows), "status: windows before the watermark were emitted")
t.eq(j["rows_total"], len(closed_cells), "status: one row per emitted (window, k)")


def first_open_offset(p):
    """The lowest offset of a partition that still feeds an open window:
    what the job may commit at most."""
    return min((m["offset"] for m in parts[p] if window(m["ts"]) in open_windows), default=len(parts[p]))


def exact_committed():
    ps = parts_of(job(status_doc(), "exact"))
    return ps if all(ps.get(p, {}).get("committed_offset") == first_open_offset(p) for p in parts) else None


try:
    ps = wait_for(exact_committed, 20, "job exact's commits")
except TimeoutError:
    ps = parts_of(job(status_doc(), "exact"))
t.eq({p: ps.get(p, {}).get("end_offset") for p in parts}, {p: len(parts[p]) for p in parts},
     "status: each partition's end offset is the records it holds")
t.eq({p: ps.get(p, {}).get("lag") for p in parts}, {0: 0, 1: 0}, "status: lag 0 once every record is read")
t.eq({p: ps.get(p, {}).get("committed_offset") for p in parts}, {p: first_open_offset(p) for p in parts},
     "status: committed offsets stop at the first record of an open window")


def quiet_done():
    j = job(status_doc(), "quiet")
    ps = parts_of(j)
    ok = j["open_windows"] == 0 and all(ps.get(p, {}).get("committed_offset") == len(parts[p]) for p in parts)
    return j if ok else None


try:
    q = wait_for(quiet_done, 60, "job quiet to close its windows on the clock and commit")
except TimeoutError:
    q = job(status_doc(), "quiet")
qp = parts_of(q)
t.eq({p: qp.get(p, {}).get("committed_offset") for p in parts}, {p: len(parts[p]) for p in parts},
     "status: once every window closed, committed offsets reach the end offsets")
t.eq({p: qp.get(p, {}).get("lag") for p in parts}, {0: 0, 1: 0}, "status: lag 0")
t.ok(q["open_windows"] == 0 and q["state_keys"] == 0, "status: no open window, no state", q)
t.eq(q["windows_emitted_total"], len({window(m["ts"]) for m in msgs}), "status: every window emitted once")
t.eq(q["rows_total"], len({(window(m["ts"]), key_of(m)) for m in msgs}), "status: every (window, k) row")
t.ok(sent_at - 1 <= q["last_commit_timestamp_seconds"] <= time.time() + 1,
     "status: the last commit is after the records were sent", q["last_commit_timestamp_seconds"])
t.ok(q["rebalances_total"] >= 1 and q["assigned_partitions"] == 2, "status: the assignment is counted", q)

# The status and /metrics say the same.
m = s.metrics()
t.ok(m['sluice_job_records_late_total{sluice_job="quiet"}'] == m['sluice_job_records_late_total{sluice_job="exact"}'] == 0,
     "no record was late for either job")
t.eq(m['sluice_job_consumer_lag{sluice_job="quiet",topic="ev",partition="0"}'], 0.0, "/metrics: the lag per partition")
t.eq(m['sluice_job_committed_offset{sluice_job="quiet",topic="ev",partition="1"}'], float(len(parts[1])),
     "/metrics: the committed offset per partition")
t.eq(m['sluice_job_windows_emitted_total{sluice_job="quiet"}'], float(q["windows_emitted_total"]),
     "/metrics: windows emitted")
t.eq(m['sluice_job_rebalances_total{sluice_job="exact"}'], float(job(status_doc(), "exact")["rebalances_total"]),
     "/metrics: rebalances")

# ---- Kafka and process metrics ----------------------------------------------------------

t.eq(m["sluice_kafka_delivery_seconds_count"], float((N + 15) // 16),
     "one delivered record in 16 is in the delivery histogram")
t.ok(0 < m["sluice_kafka_delivery_seconds_sum"] < N * 30, "with a plausible total latency",
     m["sluice_kafka_delivery_seconds_sum"])
t.ok(not any(k.startswith("sluice_kafka_produce_errors_total{") for k in m), "no produce error")
t.ok(wait_for(lambda: s.metric("sluice_kafka_producer_queue_messages") == 0
              and s.metric("sluice_kafka_producer_queue_bytes") == 0, 10, "the producer queue to empty"),
     "producer queue gauges at 0 once delivered")
t.eq(m["sluice_kafka_brokers_up"], 1.0, "sluice_kafka_brokers_up: the one mock broker")
doc = status_doc()
t.eq(doc["kafka"]["brokers_up"], 1, "status: Kafka brokers up")
t.eq(doc["forward"]["connections"], 1, "status: the forward connection that is open")
t.eq(doc["forward"]["records_total"], N, "status: forward records")
t.eq([(x["name"], x["up"]) for x in doc["sinks"]], [("out", True)], "status: the sink, up")
t.eq(doc["sinks"][0]["rows_total"], m['sluice_sink_rows_total{sink="out"}'], "status: sink rows as in /metrics")
t.eq([x["name"] for x in doc["stages"]], ["http", "ingest", "jobs"], "status: the stages")
t.ok(all(x["state"] == "running" for x in doc["stages"]), "status: all running")
version = re.search(r"(\d+\.\d+\.\S+)", subprocess.run([SLUICE, "version"], capture_output=True,
                                                        text=True).stdout).group(1)
t.eq(doc["version"], version, "status: the version `sluice version` prints")
t.eq(m[f'sluice_build_info{{version="{version}"}}'], 1.0, "sluice_build_info{version} 1")
t.ok(0 <= doc["uptime_seconds"] <= time.time() - started + 1, "status: uptime since start", doc["uptime_seconds"])

t.ok(m["sluice_process_resident_memory_bytes"] > 4 * 1024 * 1024, "resident memory above 4 MiB",
     m["sluice_process_resident_memory_bytes"])
t.ok(10 <= m["sluice_process_open_fds"] <= m["sluice_process_max_fds"], "open fds plausible (sockets, pipes)",
     (m["sluice_process_open_fds"], m["sluice_process_max_fds"]))
t.ok(started - 5 <= m["sluice_process_start_time_seconds"] <= started + 5, "start time near when the test started it",
     (m["sluice_process_start_time_seconds"], started))
cpu = m["sluice_process_cpu_seconds_total"]
t.ok(wait_for(lambda: s.metric("sluice_process_cpu_seconds_total") > cpu, 20, "CPU time to move"),
     "CPU seconds grow (fractional counter)")

# ---- /readyz with the broker down and back ------------------------------------------------

broker.down()
try:
    st, _, text = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(get("/readyz")), 30, "/readyz 503")
except TimeoutError:
    st, _, text = get("/readyz")
t.ok(st == 503 and text.startswith("Kafka: no broker reachable"), "broker down: /readyz 503 with the reason",
     (st, text))
doc = status_doc()
t.ok(doc["ready"] is False and doc["reason"].startswith("Kafka: no broker reachable"),
     "status: not ready, with the same reason", doc.get("reason"))
t.eq(s.metric("sluice_kafka_brokers_up"), 0.0, "sluice_kafka_brokers_up 0")
t.ok(s.log.seen(r"kafka: no Kafka broker is reachable"), "logged once the last broker is gone")
t.eq(get("/healthz")[0], 200, "/healthz still 200: the process is alive")
broker.up()
t.ok(wait_for(lambda: get("/readyz")[0] == 200, 30, "/readyz 200 again"), "broker back on the same port: 200")
t.ok(s.metric("sluice_kafka_brokers_up") >= 1, "sluice_kafka_brokers_up back")
t.ok(s.log.seen(r"kafka: Kafka brokers reachable again"), "logged")

# Every request this test made is counted under its handler and status.
m = s.metrics()
counted = {(h_, int(c)): v for k, v in m.items()
           for h_, c in re.findall(r'^sluice_http_requests_total\{handler="(\w+)",code="(\d+)"\}$', k)}
want = {k: float(v) for k, v in calls.items() if k[0] != "metrics"}  # the harness scrapes too
t.eq({k: counted.get(k) for k in want}, want, "sluice_http_requests_total counts every request by handler and code")

t.eq(s.stop(), 0, "sluice exits 0")

# ---- before librdkafka's first statistics ------------------------------------------------
# The start waited for Kafka's metadata answer: until statistics come
# (every 10 minutes here), that answer stands for Kafka in /readyz.
s2 = Sluice(sluice_config(broker.bootstrap, "", properties={"statistics.interval.ms": "600000"}))
s2.log.wait(r"agent: ready", 20)
t.eq(s2.http("/readyz"), (200, "ready\n"), "/readyz is 200 as soon as the daemon is ready, before any statistics")
t.eq(s2.stop(), 0, "that sluice exits 0")
broker.stop()
t.done()
