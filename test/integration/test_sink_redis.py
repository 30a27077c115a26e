"""The redis sink (plugins/redis) against real redis-server processes
(Debian's, each started here on a free loopback port without persistence).
Records go in through sluice's forward input, a route and the mock Kafka
broker; one job (1 s tumbling windows on the records' `ts`, epoch ms)
writes its rows to a file sink, the reference, and to redis sinks:

* each mode: SET of the row's JSON (a key per page and window, with a
  ttl), HSET of the fields (a key per page: the latest window; SELECTed
  db; a ttl), ZADD (a sorted set per window, page -> count, over a unix
  socket); what Redis holds equals the rows in the file, TTLs included;
* AUTH in the ACL form (username and password) to a Redis that requires
  a password;
* a key template naming a field the rows lack: every row refused (FATAL)
  with a message naming the template and the field, nothing written;
* a Redis killed (SIGKILL, so empty) and restarted while windows close:
  the rows of the outage are retried, and afterwards every key holds its
  page's latest window, none an older one (the host retries failed
  batches on timers of their own, so an older window's retry can come
  after a newer one was written: the sink must not let it overwrite).

A second job (its own consumer group) writes to sinks that cannot work: a
wrong password (an ERROR naming the sink and the reason, rows retried,
sluice_sink_up 0), an address where nothing listens (attempts with a
growing backoff, rows retried again and again, sluice_sink_up 0), a server
that accepts and never answers (connect_timeout), and one that answers the
handshake and then nothing (command_timeout)."""
import json
import os
import random
import re
import socket
import threading

from harness import Broker, Sluice, Tap, free_port, sluice_cat, tempdir, wait_for
import redis_server
from redis_server import RedisServer

t = Tap()
if not redis_server.available():
    t.skip_all("redis-server and redis-cli are not installed (apt-get install redis-server)")
tmp = tempdir("sluice-sink-redis-")
rnd = random.Random(int(os.environ.get("SEED", "7")))

BASE = 1_700_000_000_000
PAGES = ["home", "cart", "search", "about", "login", "blog"]


class Silent:
    """Accepts connections (the kernel does) and never answers."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(64)
        self.port = self.s.getsockname()[1]


class Stuck:
    """Answers the first command of each connection (the sink's PING) and
    then nothing: every write waits for replies that never come."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(64)
        self.port = self.s.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            c, _ = self.s.accept()
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _serve(c):
        try:
            if c.recv(65536):
                c.sendall(b"+PONG\r\n")
            while c.recv(65536):
                pass
        except OSError:
            pass


main = RedisServer()
latest = RedisServer()
locked = RedisServer(password="right-password")
locked.cli(["ACL", "SETUSER", "sluice", "on", ">acl-password", "~a:*", "+@all"])
nowhere = free_port()
silent = Silent()
stuck = Stuck()

broker = Broker()
broker._cmd("topic logs 1")  # one partition: every record moves the watermark
ref_path = os.path.join(tmp, "rows.jsonl")

FAST_RETRY = 'initial_backoff = "50ms"\nmax_backoff = "400ms"'
sluice = Sluice(f"""
shutdown_timeout = "5s"
[http]
listen = "127.0.0.1:0"
[input.forward]
listen = "127.0.0.1:0"
[kafka]
brokers = "{broker.bootstrap}"
[[route]]
match = "**"
topic = "logs"

[[job]]
name = "pv"
topics = ["logs"]
group_by = ["page"]
time = {{ field = "ts", format = "epoch_ms" }}
window = {{ type = "tumbling", size = "1s" }}
aggregates = {{ n = "count()", s = "sum(lat)", avg = "avg(lat)", top = "max(lat)", last_ok = "last(ok)" }}
commit_interval = "100ms"
sinks = ["ref", "r_set", "r_hash", "r_zadd", "r_missing", "r_latest", "r_acl"]

[[job]]
name = "bad"
topics = ["logs"]
group_by = ["page"]
time = {{ field = "ts", format = "epoch_ms" }}
window = {{ type = "tumbling", size = "1s" }}
aggregates = {{ n = "count()" }}
sinks = ["badpw", "nowhere", "silent", "stuck"]

[[sink]]
name = "ref"
plugin = "file"
path = "{ref_path}"

[[sink]]
name = "r_set"
plugin = "redis"
address = "127.0.0.1:{main.port}"
key = "s:${{page}}:${{window_start}}"
ttl = "1h"

[[sink]]
name = "r_hash"
plugin = "redis"
address = "127.0.0.1:{main.port}"
db = 2
mode = "hash"
key = "h:${{page}}"
ttl = "10m"

[[sink]]
name = "r_zadd"
plugin = "redis"
address = "{main.socket}"
mode = "zadd"
key = "z:${{window_start}}"
member = "${{page}}"
score_field = "n"

[[sink]]
name = "r_missing"
plugin = "redis"
address = "127.0.0.1:{main.port}"
key = "m:${{region}}"
on_failure = "drop"

[[sink]]
name = "r_latest"
plugin = "redis"
address = "localhost:{latest.port}"
key = "latest:${{page}}"
{FAST_RETRY}

[[sink]]
name = "r_acl"
plugin = "redis"
address = "127.0.0.1:{locked.port}"
username = "sluice"
password = "acl-password"
key = "a:${{page}}"

[[sink]]
name = "badpw"
plugin = "redis"
address = "127.0.0.1:{locked.port}"
password = "wrong-password"
key = "b:${{page}}"
{FAST_RETRY}

[[sink]]
name = "nowhere"
plugin = "redis"
address = "127.0.0.1:{nowhere}"
key = "n:${{page}}"
{FAST_RETRY}

[[sink]]
name = "silent"
plugin = "redis"
address = "127.0.0.1:{silent.port}"
key = "q:${{page}}"
connect_timeout = "300ms"
{FAST_RETRY}

[[sink]]
name = "stuck"
plugin = "redis"
address = "127.0.0.1:{stuck.port}"
key = "k:${{page}}"
command_timeout = "300ms"
{FAST_RETRY}
""")


def metric(name, **labels):
    return sluice.metric(name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}")


def round_records(r):
    """Window r: 1 to 4 records per page, in event-time order."""
    out = []
    for k, page in enumerate(PAGES):
        for j in range(rnd.randint(1, 4)):
            out.append({"ts": BASE + r * 1000 + j * 200 + k, "page": page, "lat": rnd.randint(1, 999),
                        "ok": rnd.choice([True, False])})
    return sorted(out, key=lambda x: x["ts"])


def send(records):
    res = sluice_cat(sluice.port, "app.pv", records, args=["--ack"])
    assert res.returncode == 0, res.stderr


def file_rows():
    if not os.path.exists(ref_path):
        return []
    with open(ref_path) as f:
        return [(l.rstrip("\n"), json.loads(l)) for l in f if l.endswith("\n")]


def rows_of_round(r):
    """The file's rows of window r."""
    start = rfc3339(BASE + r * 1000)
    return [row for _, row in file_rows() if row["window_start"] == start]


def rfc3339(ms):
    import datetime
    d = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def emitted(r):
    return len(rows_of_round(r)) == len(PAGES)


# ---- before the outage: windows 0-3 (0-2 close) --------------------------------------
ROUNDS = 12
for r in range(0, 4):
    send(round_records(r))
wait_for(lambda: emitted(2), 60, "the rows of windows 0-2 in the file")
wait_for(lambda: len(latest.keys("latest:*")) == len(PAGES), 20, "the latest:* keys")

# ---- Redis of r_latest killed; windows 3-7 close while it is down -------------------
latest.kill()
for r in range(4, 9):
    before = metric("sluice_sink_errors_total", sink="r_latest", kind="retry")
    send(round_records(r))
    wait_for(lambda: emitted(r - 1), 30, f"the rows of window {r - 1}")
    wait_for(lambda: metric("sluice_sink_errors_total", sink="r_latest", kind="retry") > before, 30,
             f"window {r - 1}'s rows to fail on the dead redis")
t.ok(sluice.log.seen(r"warn +sink:redis:r_latest: lost the connection to redis at localhost:\d+: "),
     "the lost connection is logged, naming the sink")
wait_for(lambda: metric("sluice_sink_retries_total", sink="r_latest") >= 10, 30, "retries of the outage's rows")
t.ok(metric("sluice_sink_up", sink="r_latest") == 0, "sluice_sink_up is 0 while redis is down")
status, body = sluice.http("/readyz")
t.ok(status == 503 and "sink " in body and " is down: " in body,
     "/readyz answers 503 naming a sink that is down", (status, body))

# ---- restarted (empty); windows 8-11 close, then the sentinel closes the last -------
latest.start()
for r in range(9, ROUNDS):
    send(round_records(r))
send([{"ts": BASE + 3600 * 1000, "page": "sentinel", "lat": 0, "ok": True}])
wait_for(lambda: all(emitted(r) for r in range(ROUNDS)), 60, "every window's rows in the file")
for sink in ("r_set", "r_hash", "r_zadd", "r_missing", "r_latest", "r_acl"):
    wait_for(lambda: metric("sluice_sink_queue_rows", sink=sink) == 0, 60, f"{sink} to have written every row")
t.ok(sluice.log.seen(r"info +sink:redis:r_latest: connected to redis at localhost:\d+ after \d+ failed attempts"),
     "the reconnection is logged")

rows = file_rows()
t.eq(len(rows), ROUNDS * len(PAGES), "the job's rows are in the file sink")

# ---- set: the row's JSON under s:<page>:<window_start>, ttl 1 h ----------------------
keys = [f"s:{row['page']}:{row['window_start']}" for _, row in rows]
got = main.cli(*[["GET", k] for k in keys], *[["PTTL", k] for k in keys])
values, ttls = got[:len(keys)], got[len(keys):]
t.eq([v for v in values], [line for line, _ in rows], "set: every key holds its row's JSON, as the job wrote it")
t.ok(all(3600_000 - 120_000 < x <= 3600_000 for x in ttls), "set: every key expires in (about) ttl = 1h",
     sorted(set(ttls))[:5])
t.eq(len(main.keys("s:*")), len(rows), "set: no other s:* key")


# ---- hash: the latest row's fields under h:<page> in db 2, ttl 10 m -----------------
def as_redis(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return v if isinstance(v, str) else v


def hash_equal(h, row):
    if set(h) != set(k for k, v in row.items() if v is not None):
        return False
    for k, v in row.items():
        if isinstance(v, float):
            if float(h[k]) != v:
                return False
        elif isinstance(v, bool) or isinstance(v, str):
            if h[k] != as_redis(v):
                return False
        elif isinstance(v, int) and int(h[k]) != v:
            return False
    return True


latest_row = {}
for line, row in rows:
    if row["page"] not in latest_row or row["window_start"] > latest_row[row["page"]][1]["window_start"]:
        latest_row[row["page"]] = (line, row)
hashes = main.cli(*[["HGETALL", f"h:{p}"] for p in PAGES], *[["PTTL", f"h:{p}"] for p in PAGES], db=2)
bad = [(p, h, latest_row[p][1]) for p, h in zip(PAGES, hashes[:len(PAGES)]) if not hash_equal(h, latest_row[p][1])]
t.ok(not bad, "hash: every h:<page> holds the fields of its page's latest row (numbers as text, bools as "
     "true/false)", bad[:2])
t.ok(all(600_000 - 120_000 < x <= 600_000 for x in hashes[len(PAGES):]), "hash: every key expires in (about) 10m",
     hashes[len(PAGES):])
t.eq(main.keys("h:*"), [], "hash: nothing in db 0 (SELECT 2 came first)")


# ---- zadd: z:<window_start> = {page: n}, no expiry -----------------------------------
def zset(reply):
    if reply and isinstance(reply[0], list):  # RESP3: [[member, score], ...]
        return {m: float(s) for m, s in reply}
    return {reply[i]: float(reply[i + 1]) for i in range(0, len(reply), 2)}


windows = sorted({row["window_start"] for _, row in rows})
zs = main.cli(*[["ZRANGE", f"z:{w}", 0, -1, "WITHSCORES"] for w in windows], *[["PTTL", f"z:{w}"] for w in windows])
want = {w: {row["page"]: float(row["n"]) for _, row in rows if row["window_start"] == w} for w in windows}
t.eq({w: zset(z) for w, z in zip(windows, zs[:len(windows)])}, want,
     "zadd: every window's sorted set holds each page with its count as the score")
t.ok(all(x == -1 for x in zs[len(windows):]), "zadd: no ttl, no expiry")

# ---- AUTH with a username (the user may only write a:* keys) -------------------------
got = locked.cli(*[["GET", f"a:{p}"] for p in PAGES])
t.eq(got, [latest_row[p][0] for p in PAGES], "username + password: AUTH in the ACL form, then the rows written")

# ---- a key template naming a field the rows lack --------------------------------------
t.eq(metric("sluice_sink_errors_total", sink="r_missing", kind="fatal"), float(len(rows)),
     "missing field: every row refused as FATAL")
t.ok(sluice.log.seen(r'sink:redis:r_missing\S*: .*key \\?"m:\$\{region\}\\?": the row has no field '
                     r'\\?"region\\?"'), "missing field: the message names the template and the field")
t.eq(metric("sluice_sink_rows_dropped_total", sink="r_missing"), float(len(rows)),
     "missing field: the rows follow on_failure (drop)")
t.eq(main.keys("m:*"), [], "missing field: nothing written")

# ---- the killed and restarted Redis: every key holds its page's latest window -----------
now = latest.cli(*[["GET", f"latest:{p}"] for p in PAGES])
stale = [(p, json.loads(v)["window_start"] if v else None, latest_row[p][1]["window_start"])
         for p, v in zip(PAGES, now) if v != latest_row[p][0]]
t.ok(not stale, "after the restart every latest:<page> holds its page's latest window's row (none stale)", stale)
t.eq(latest.keys(), sorted(f"latest:{p}" for p in PAGES), "and no other key")
print(f"# retried rows not written as stale: {metric('sluice_sink_redis_stale_rows_total', sink='r_latest'):.0f}, "
      f"retries: {metric('sluice_sink_retries_total', sink='r_latest'):.0f}", flush=True)
t.ok(metric("sluice_sink_up", sink="r_latest") == 1, "sluice_sink_up is 1 again")

# ---- the second job's sinks, which cannot work -------------------------------------------
t.ok(sluice.log.seen(r"error +sink:redis:badpw: redis at 127\.0\.0\.1:\d+ refused the credentials: AUTH: "
                     r"WRONGPASS .*check username and password"),
     "wrong password: an ERROR naming the sink, the server's reason and what to check")
for sink in ("badpw", "nowhere", "silent", "stuck"):
    n = metric("sluice_sink_retries_total", sink=sink)
    wait_for(lambda: metric("sluice_sink_retries_total", sink=sink) > n, 20, f"{sink}: more retries")
    t.ok(metric("sluice_sink_errors_total", sink=sink, kind="retry") > 0 and
         metric("sluice_sink_up", sink=sink) == 0 and metric("sluice_sink_rows_total", sink=sink) == 0,
         f"{sink}: rows fail as RETRY and are retried again and again; sluice_sink_up 0")
t.ok(metric("sluice_sink_redis_connected", sink="badpw") == 0 and
     metric("sluice_sink_redis_connect_failures_total", sink="badpw") >= 2, "wrong password: never connected")
delays = [int(m) for m in re.findall(r"sink:redis:nowhere: cannot connect to redis at 127\.0\.0\.1:\d+: "
                                     r"Connection refused \(attempt \d+, next in (\d+) ms\)", sluice.log.text())]
t.ok(len(delays) >= 5 and delays[:5] == sorted(delays[:5]) and delays[4] >= 400 and max(delays) <= 5000,
     "unreachable: each failed attempt logged, the next one after a doubling backoff (up to 5 s)", delays)
t.ok(sluice.log.seen(r"sink:redis:silent: cannot connect to redis at 127\.0\.0\.1:\d+: not connected within "
                     r"connect_timeout \(300 ms\)"), "a server that never answers: connect_timeout")
t.ok(sluice.log.seen(r"sink:redis:stuck: redis at 127\.0\.0\.1:\d+: no reply within command_timeout \(300 ms\)"),
     "a server that stops answering: command_timeout, then a reconnection")

# The second job's rows can never be written: the drain gives up on them
# after shutdown_timeout (exit 1, as documented), and every sink closes.
rc = sluice.stop()
t.ok(rc == 1 and sluice.log.seen(r"drain timed out: jobs: \d+ rows wait for their sinks") and
     sluice.log.seen(r"agent: stopped"), "sluice stops after shutdown_timeout, the failing sinks closed",
     sluice.log.text()[-3000:])
for srv in (main, latest, locked):
    srv.stop()
broker.stop()
t.done()
