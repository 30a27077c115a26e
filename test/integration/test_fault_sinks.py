"""Fault injection on the sinks: a real redis-server and the Elasticsearch
test double (helpers/es_double.py) go away while a job writes to them, and
come back.  Records go in through the forward input and the mock broker;
one job (1 s tumbling windows on the records' `ts`) writes every window's
rows to a file sink, to Redis (SET, one key per page and window) and to two
Elasticsearch sinks (operation index and create, _id = the row id):

  1. stopped and started again on the same port, keeping their data, as a
     service restart does: Redis with SHUTDOWN SAVE (its RDB is loaded at
     start), the double with its listener and every open connection
     closed, as when its process exits;
  2. frozen: Redis stopped with SIGSTOP (connections open, no replies:
     command_timeout), the double hanging every request (request_timeout),
     then both answer again;
  3. answers lost: the double stores every document of a _bulk request
     and cuts the connection instead of answering (a node dying right
     after it indexed), so the sinks must write those rows again.

Windows close during each outage.  In the end the file's rows equal an
independent computation (helpers/job_reference.py), Redis holds exactly
those rows, each under its key, and each Elasticsearch index holds exactly
one document per row, _id = the row id, the document = the row: rows
written again after a failure overwrite (index) or are answered 409 and
taken as done (create), never stored twice.  How many rows were written
more than once is printed."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading

import es_double
import redis_server
from es_double import EsDouble
from harness import SRCDIR, Broker, Sluice, Tap, sluice_cat, tempdir, wait_for
from job_reference import index_rows, mismatches, reference, rfc3339
from redis_server import REDIS_CLI, RedisServer

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import sluice_config  # noqa: E402

t = Tap()
if not redis_server.available():
    t.skip_all("redis-server and redis-cli are not installed (apt-get install redis-server)")
tmp = tempdir("sluice-fault-sinks-")

BASE = 1_700_000_000_000
PAGES = ["home", "cart", "search", "about"]
ROUNDS = 16
SINKS = ["redis", "es", "es_create"]


class _Server(es_double._Server):
    """The double's server, knowing its open connections so that a stop
    can close them too."""

    def __init__(self, *args):
        self.open = set()
        self.open_lock = threading.Lock()
        super().__init__(*args)

    def process_request(self, request, client_address):
        with self.open_lock:
            self.open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.open_lock:
            self.open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        pass  # a request cut by stop() is the point, not an error

    def cut(self):
        with self.open_lock:
            for s in self.open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Handler(es_double._Handler):
    """Applies every request; while the server's lose_answers is set, cuts
    the connection instead of answering a _bulk request: the documents are
    stored and the sink never learns it (a node dying right after it
    indexed), so it must write them again."""

    def _send(self, status, obj):
        if self.server.lose_answers and self.path.split("?")[0].endswith("/_bulk"):
            self.server.lost += 1
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        super()._send(status, obj)


class EsNode(EsDouble):
    """The double as a node that can stop whole: stop() also closes every
    open connection (EsDouble's leaves them served), as a process exiting
    does; the documents stay, as a node's data on disk.  lose_answers():
    see _Handler."""

    def start(self):
        self.server = _Server(("127.0.0.1", self.port), _Handler)
        self.server.state = self.state
        self.server.lose_answers = getattr(self, "losing", False)
        self.server.lost = 0
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        server = self.server
        super().stop()
        server.cut()

    def lose_answers(self, on):
        self.losing = self.server.lose_answers = on


def redis_restart_stop(r):
    """SHUTDOWN SAVE: Redis writes its RDB and exits; start() loads it."""
    subprocess.run([REDIS_CLI, "-p", str(r.port), "SHUTDOWN", "SAVE"], capture_output=True, timeout=30)
    r.p.wait(30)


redis = RedisServer()
es = EsNode()
broker = Broker()
broker._cmd("topic logs 1")  # one partition: every record moves the watermark
ref_path = os.path.join(tmp, "rows.jsonl")
RETRY = 'initial_backoff = "50ms"\nmax_backoff = "400ms"'

sluice = Sluice(sluice_config(broker.bootstrap, f"""
[[route]]
match = "**"
topic = "logs"

[[job]]
name = "pv"
topics = ["logs"]
group_by = ["page"]
time = {{ field = "ts", format = "epoch_ms" }}
window = {{ type = "tumbling", size = "1s" }}
aggregates = {{ n = "count()", s = "sum(lat)", top = "max(lat)" }}
commit_interval = "100ms"
sinks = ["ref", "redis", "es", "es_create"]

[[sink]]
name = "ref"
plugin = "file"
path = "{ref_path}"

[[sink]]
name = "redis"
plugin = "redis"
address = "127.0.0.1:{redis.port}"
key = "pv:${{page}}:${{window_start}}"
connect_timeout = "1s"
command_timeout = "1s"
{RETRY}

[[sink]]
name = "es"
plugin = "elasticsearch"
hosts = ["{es.url}"]
index = "pv-%Y.%m.%d"
request_timeout = "1s"
{RETRY}

[[sink]]
name = "es_create"
plugin = "elasticsearch"
hosts = ["{es.url}"]
index = "pvc-%Y.%m.%d"
operation = "create"
request_timeout = "1s"
{RETRY}
"""))

JOB = {"kind": "tumbling", "size": 1000, "lateness": 0, "keys": ["page"], "where": lambda r: True,
       "aggs": {"n": ("count", None), "s": ("sum", "lat"), "top": ("max", "lat")}}
sent = []  # (ts, record) in sending order, for the reference


def metric(name, sink):
    return sluice.metric(f'{name}{{sink="{sink}"}}')


def send_round(r):
    """Window r: 1 to 3 records a page, in event-time order."""
    recs = []
    for k, page in enumerate(PAGES):
        for j in range(1 + (r + k) % 3):
            recs.append({"ts": BASE + r * 1000 + j * 300 + k, "page": page, "lat": (r * 37 + k * 11 + j) % 500})
    recs.sort(key=lambda x: x["ts"])
    res = sluice_cat(sluice.port, "app.pv", recs, args=["--ack"])
    assert res.returncode == 0, res.stderr
    sent.extend((x["ts"], x) for x in recs)


def file_rows():
    if not os.path.exists(ref_path):
        return []
    with open(ref_path) as f:
        return [(line.rstrip("\n"), json.loads(line)) for line in f if line.endswith("\n")]


def emitted(r):
    start = BASE + r * 1000
    return sum(1 for _, row in file_rows() if row["window_start"] == rfc3339(start)) == len(PAGES)


def outage(what, stop, restart, rounds, failing, sinks=SINKS):
    """stop(); the rounds' windows close (the previous round's rows leave)
    while the sinks' writes fail and are retried; restart()."""
    before = {s: metric("sluice_sink_retries_total", s) for s in sinks}
    stop()
    for r in rounds:
        send_round(r)
        wait_for(lambda: emitted(r - 1), 30, f"the rows of window {r - 1} in the file")
    try:
        wait_for(lambda: all(metric("sluice_sink_retries_total", s) > before[s] for s in sinks), 30,
                 "the sinks' writes to fail")
        ok = True
    except TimeoutError:
        ok = False
    t.ok(ok and all(metric("sluice_sink_rows_total", s) <= written[s] for s in sinks),
         f"{what}: windows {rounds[0] - 1}-{rounds[-1] - 1} close, the writes of {', '.join(sinks)} fail and are "
         "retried, none is counted written", {s: (metric("sluice_sink_rows_total", s), written[s]) for s in sinks})
    restart()
    for s in SINKS:
        wait_for(lambda: metric("sluice_sink_queue_rows", s) == 0, 60, f"{s} to catch up after: {what}")
    written.update({s: metric("sluice_sink_rows_total", s) for s in SINKS})
    if failing:
        t.ok(sluice.log.seen(failing, 20), f"{what}: the failure is logged, naming the sink")


# ---- before: windows 0-2 close ----------------------------------------------------------
for r in range(0, 4):
    send_round(r)
wait_for(lambda: emitted(2), 60, "the rows of windows 0-2 in the file")
for s in SINKS:
    wait_for(lambda: metric("sluice_sink_queue_rows", s) == 0 and metric("sluice_sink_rows_total", s) >= 3 * len(PAGES),
             30, f"{s} to write windows 0-2")
written = {s: metric("sluice_sink_rows_total", s) for s in SINKS}
t.ok(all(v == written["redis"] for v in written.values()), "before the faults every sink has written the same rows",
     written)


# ---- 1. stopped and started again, data kept --------------------------------------------
ports = (redis.port, es.port)


def stop_both():
    redis_restart_stop(redis)
    es.stop()


def start_both():
    redis.start()
    es.start()


outage("stopped (SHUTDOWN SAVE; listener and connections closed)", stop_both, start_both, range(4, 8),
       r"warn +sink:redis:redis: lost the connection to redis at 127\.0\.0\.1:\d+")
t.eq((redis.port, es.port), ports, "both came back on their ports")
t.ok(all(metric("sluice_sink_up", s) == 1 for s in SINKS), "after the restart every sink is up again (sluice_sink_up)")


# ---- 2. frozen: no replies, then replies again ------------------------------------------
def freeze():
    redis.p.send_signal(signal.SIGSTOP)
    es.mode("hang")


def thaw():
    redis.p.send_signal(signal.SIGCONT)
    es.mode("ok")


outage("frozen (SIGSTOP; every request hangs)", freeze, thaw, range(8, 11),
       r"sink:redis:redis: redis at 127\.0\.0\.1:\d+: no reply within command_timeout")

# ---- 3. Elasticsearch stores the documents and the answers are lost ----------------------
outage("answers lost (documents stored, connection cut before the answer)", lambda: es.lose_answers(True),
       lambda: es.lose_answers(False), range(11, 13), None, ["es", "es_create"])
t.ok(es.server.lost > 0, f"answers lost: {es.server.lost} _bulk requests were applied and never answered")

# ---- after: the last windows, then a sentinel closes them -------------------------------
for r in range(13, ROUNDS):
    send_round(r)
sentinel = {"ts": BASE + 3600 * 1000, "page": "sentinel", "lat": 0}
res = sluice_cat(sluice.port, "app.pv", [sentinel], args=["--ack"])
assert res.returncode == 0, res.stderr
wait_for(lambda: all(emitted(r) for r in range(ROUNDS)), 60, "every window's rows in the file")
for s in SINKS:
    wait_for(lambda: metric("sluice_sink_queue_rows", s) == 0, 60, f"{s} to have written every row")

rows = file_rows()
want, late = reference(JOB, sent)
want = {k: v for k, v in want.items() if k[1] != "sentinel"}
got = index_rows(JOB, [row for _, row in rows])
t.ok(len(rows) == len(want) == ROUNDS * len(PAGES) and set(got) == set(want) and not mismatches("pv", want, got)
     and late == 0, f"the file sink's {len(rows)} rows equal the reference's {len(want)}, once each",
     mismatches("pv", want, got)[:3])

# Redis: exactly the rows, each under its key.
keys = [f"pv:{row['page']}:{row['window_start']}" for _, row in rows]
values = redis.cli(*[["GET", k] for k in keys])
t.eq(values, [line for line, _ in rows], "Redis: every row's key holds the row's JSON as the job wrote it")
t.eq(len(redis.keys("pv:*")), len(rows), "Redis: no other key")

# Elasticsearch: one document per row, _id = the row id, in both indices.
docs = es.docs()
by_id = {row["id"]: row for _, row in rows}
for prefix in ("pv-", "pvc-"):
    stored = {}
    for ix, d in docs.items():
        if ix.startswith(prefix):
            for _id, doc in d.items():
                stored.setdefault(_id, []).append(doc)
    twice = {i: n for i, n in stored.items() if len(n) > 1}
    t.ok(not twice and sorted(stored) == sorted(by_id) and all(stored[i][0] == by_id[i] for i in by_id),
         f"Elasticsearch {prefix}*: exactly one document per row ({len(stored)}), _id = the row id, the document = "
         "the row", f"{len(stored)} ids stored, {len(by_id)} rows; stored twice: {list(twice)[:3]}")
stats = es.stats()
again = {p: sum(1 for k, n in stats["attempts"].items() if k.startswith(p) and n > 1) for p in ("pv-", "pvc-")}
t.ok(again["pv-"] > 0 and again["pvc-"] > 0 and stats["statuses"].get("409", 0) > 0,
     "rows stored and written again (answers lost) were overwritten (index) or answered 409 (create)",
     (again, stats["statuses"]))
print(f"# rows written more than once, stored once: Elasticsearch index {again['pv-']}, create {again['pvc-']} "
      f"(409 answers: {stats['statuses'].get('409', 0)}); retries: "
      + ", ".join(f"{s} {metric('sluice_sink_retries_total', s):.0f}" for s in SINKS), flush=True)

t.eq(sluice.stop(), 0, "sluice stops cleanly")
es.stop()
redis.stop()
broker.stop()
t.done()
