"""The redis_hll aggregate and the redis sink's hll_fields against a real
redis-server (Debian's, started here on a free loopback port), which is the
only judge of the HyperLogLogs.  Records go in through Debian's
python3-fluent-logger, a route and the mock Kafka broker; one job (1 s
tumbling windows on the records' `ts`, epoch ms, by page) counts distinct
users with redis_hll(user), and a redis sink SETs each row's JSON at
uv:<page>:<window_start> and its HyperLogLog at ...:visitors, with a ttl.

Users mix strings ("u17"), integers (17), integral floats (17.0) and the
string "17" (one element, "17"), other floats, booleans, containers, nulls
and missing fields; the test writes each value's text by the rule of
agg.h and PFADDs it to keys of its own.  For every (page, window), from an
empty one to one of about 4,500 users: sluice's key is sparse when small and
dense when large, as Redis encodes its own key of them; PFCOUNT of it is the row's count and that of the test's
key; PFMERGE of either into a copy of the other changes nothing, and Redis
re-encodes both into the same bytes (the same registers); it expires within
the ttl.  The windows of a page PFMERGEd into an hour count the distinct
elements within 3 x 0.81 %, as a key PFADDed with all of them does; PFADD
of an element already counted to sluice's key changes nothing.

`sluice check` refuses hll_fields naming an aggregate twice or more than
8, and, against the jobs that send their rows to the sink, a field the job
lacks ("nope") or one that is no redis_hll (a count(), "n"), each at the
option with a message naming the job and the field; it passes the
daemon's config and 8 redis_hll fields."""
import json
import os
import random
import re
import socket
import subprocess
from datetime import datetime, timezone

from fluent import sender as fluent_sender
from harness import SLUICE, Broker, Sluice, Tap, tempdir, wait_for
import redis_server
from redis_server import RedisServer

t = Tap()
if not redis_server.available():
    t.skip_all("redis-server and redis-cli are not installed (apt-get install redis-server)")
tmp = tempdir("sluice-jobs-redis-hll-")
rnd = random.Random(int(os.environ.get("SEED", "7")))

BASE = 1_700_000_000_000
TTL_MS = 3_600_000
RSE = 0.0081  # Redis's HyperLogLog: 1.04 / sqrt(2^14)


class RedisError(str):
    """An error reply, returned rather than raised so that a check shows it."""


class Resp:
    """A binary-safe RESP2 client: redis-cli --json cannot show a
    HyperLogLog's bytes, and pipelined PFADDs of thousands of elements are
    quicker over one connection."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.s.makefile("rb")

    def pipeline(self, cmds):
        out = bytearray()
        for c in cmds:
            out += b"*%d\r\n" % len(c)
            for a in c:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return [self._reply() for _ in cmds]

    def __call__(self, *args):
        return self.pipeline([args])[0]

    def _reply(self):
        line = self.f.readline()
        if not line.endswith(b"\r\n"):
            raise EOFError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ValueError(f"unexpected reply {line!r}")


def element(v):
    """The text sluice gives PFADD for a value (agg.h, redis_hll): None for
    a null, which is not counted."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and -2 ** 63 <= v < 2 ** 63:
            return str(int(v))
        return repr(v)
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def rfc3339(ms):
    d = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def user_value(i):
    """User i as a record carries it: every third a name ("u<i>"), the
    others a number sent as an integer, an integral float or a numeric
    string, all of them the one element "<i>"."""
    if i % 3 == 0:
        return f"u{i}"
    return rnd.choice([i, float(i), str(i)])


# ---- the records: (page, window) -> users ---------------------------------------------
# "home" has windows of 4,500 and 2,000 users (dense: the latter's sparse
# string would pass 3000 bytes), then of fewer (sparse); "cart" a
# handful, its first window every kind of value; "blog" one user; "ghost"
# only nulls and records without a user (an empty HyperLogLog).
WINDOWS = {}
home_ids = rnd.sample(range(20000), 6400)
for w, (lo, n) in enumerate([(0, 4500), (3500, 2000), (5000, 1500), (6000, 400), (6300, 60)]):
    ids = home_ids[lo:lo + n]
    users = [user_value(i) for i in ids]
    # Some users seen again, as another form of the same element.
    users += [user_value(i) for i in rnd.sample(ids, n // 8)]
    WINDOWS[("home", w)] = users
WINDOWS[("cart", 0)] = ["u17", 17, 17.0, "17", -3, -3.0, 4.5, 0.25, 1e20, True, False, True,
                        {"id": 17, "tags": ["a", "b"]}, [1, "a", None], "\u00fc17", "", None, "MISSING"]
for w in (1, 2, 3):
    WINDOWS[("cart", w)] = [user_value(i) for i in rnd.sample(range(40), rnd.randint(3, 12))]
WINDOWS[("blog", 2)] = ["u5", "u5", "u5"]
WINDOWS[("ghost", 1)] = [None, "MISSING", None]

records = []
for (page, w), users in WINDOWS.items():
    for j, u in enumerate(users):
        rec = {"ts": BASE + w * 1000 + j * 997 // len(users), "page": page}
        if u != "MISSING":
            rec["user"] = u
        records.append(rec)
records.sort(key=lambda r: r["ts"])
ELEMS = {k: {element(u) for u in users if u != "MISSING"} - {None} for k, users in WINDOWS.items()}
COUNTS = {k: len(users) for k, users in WINDOWS.items()}
assert ELEMS[("cart", 0)] >= {"u17", "17", "-3", "4.5", "0.25", "1e+20", "true", "false"}
assert len(ELEMS[("home", 0)]) > 4000

# ---- redis, the broker and sluice ---------------------------------------------------------
redis = RedisServer()
r = Resp(redis.port)
broker = Broker()
broker._cmd("topic logs 1")  # one partition: every record moves the watermark

CONFIG = """
shutdown_timeout = "5s"
[http]
listen = "127.0.0.1:0"
[input.forward]
listen = "127.0.0.1:0"
[kafka]
brokers = "{bootstrap}"
[[route]]
match = "**"
topic = "logs"

[[job]]
name = "uv"
topics = ["logs"]
group_by = ["page"]
time = {{ field = "ts", format = "epoch_ms" }}
window = {{ type = "tumbling", size = "1s" }}
aggregates = {{ visitors = "redis_hll(user)", n = "count()"{aggs} }}
commit_interval = "100ms"
sinks = ["r_uv"{sinks}]

[[sink]]
name = "r_uv"
plugin = "redis"
address = "127.0.0.1:{port}"
key = "uv:${{page}}:${{window_start}}"
hll_fields = {hll}
ttl = "1h"
"""
BAD_SINKS = """
[[sink]]
name = "r_nope"
plugin = "redis"
address = "127.0.0.1:{port}"
key = "nope:${{page}}:${{window_start}}"
hll_fields = ["nope"]

[[sink]]
name = "r_count"
plugin = "redis"
address = "127.0.0.1:{port}"
key = "cnt:${{page}}:${{window_start}}"
hll_fields = ["n"]
"""


def config(hll, aggs="", sinks="", extra=""):
    return (CONFIG + extra).format(bootstrap=broker.bootstrap, port=redis.port, hll=hll, aggs=aggs, sinks=sinks)


sluice = Sluice(config('["visitors"]'))


def metric(name, **labels):
    return sluice.metric(name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}")


# ---- sluice check ---------------------------------------------------------------------------
def check(name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    res = subprocess.run([SLUICE, "check", "-c", path], capture_output=True, text=True, timeout=30)
    return path, res


def refused(path, res, message, sink=0):
    """Exit 2 and the message at the file, line and column of the sink's hll_fields."""
    return res.returncode == 2 and re.search(rf"^{re.escape(path)}:\d+:\d+: sink\[{sink}\]\.hll_fields: "
                                             rf"{re.escape(message)}$", res.stderr, re.M)


res = subprocess.run([SLUICE, "check", "-c", sluice.config], capture_output=True, text=True, timeout=30)
t.ok(res.returncode == 0, "check: the daemon's config passes", res.stderr)
path, res = check("twice.toml", config('["visitors", "visitors"]'))
t.ok(refused(path, res, '"visitors" is named twice'),
     "check: hll_fields naming an aggregate twice is refused at the option, naming it", (res.returncode, res.stderr))
path, res = check("nine.toml", config(json.dumps([f"f{i}" for i in range(9)])))
t.ok(refused(path, res, "9 fields, at most 8"), "check: hll_fields with 9 names is refused (at most 8)",
     (res.returncode, res.stderr))
path, res = check("eight.toml", config(json.dumps([f"f{i}" for i in range(8)]),
                                      aggs="".join(f', f{i} = "redis_hll(user)"' for i in range(8))))
t.ok(res.returncode == 0, "check: 8 redis_hll fields pass", res.stderr)
path, res = check("bad.toml", config('["visitors"]', sinks=', "r_nope", "r_count"', extra=BAD_SINKS))
t.ok(refused(path, res, 'job "uv" has no aggregate "nope"', sink=1),
     "check: hll_fields naming a field the job lacks is refused at the option", (res.returncode, res.stderr))
t.ok(refused(path, res, '"n" of job "uv" is count(), not redis_hll()', sink=2),
     "check: hll_fields naming a count() is refused at the option", (res.returncode, res.stderr))
path, res = check("unused.toml", config('["visitors"]', extra=BAD_SINKS))
t.ok(res.returncode == 0, "check: a sink no job sends rows to is not checked against jobs", res.stderr)

# ---- the records, through fluent-logger; a record an hour later closes every window -----------
sender = fluent_sender.FluentSender("app", host="127.0.0.1", port=sluice.port, timeout=10)
for rec in records + [{"ts": BASE + 3600_000, "page": "sentinel", "user": "u0"}]:
    if not sender.emit("uv", rec):
        raise RuntimeError(f"fluent-logger could not send: {sender.last_error}")
sender.close()

ROWS = sorted(WINDOWS)
KEY = {k: f"uv:{k[0]}:{rfc3339(BASE + k[1] * 1000)}" for k in ROWS}
HKEY = {k: KEY[k] + ":visitors" for k in ROWS}
wait_for(lambda: r("EXISTS", *KEY.values(), *HKEY.values()) == 2 * len(ROWS), 30,
         "every row and HyperLogLog key in redis")

# ---- every (page, window): the row, sluice's HyperLogLog, and one the test PFADDs ---------------
rows = {k: json.loads(v) for k, v in zip(ROWS, r.pipeline([["GET", KEY[k]] for k in ROWS]))}
t.eq({k: (row["page"], row["n"]) for k, row in rows.items()}, {k: (k[0], COUNTS[k]) for k in ROWS},
     "every (page, window) has its row, with count() of its records")


def pfadd_key(name, elems):
    """A HyperLogLog Redis makes itself from the elements' text."""
    elems = sorted(elems)
    cmds = [["DEL", name], ["PFADD", name]]
    cmds += [["PFADD", name, *elems[i:i + 500]] for i in range(0, len(elems), 500)]
    replies = r.pipeline(cmds)
    assert not [x for x in replies if isinstance(x, RedisError)], replies
    return name


mine = {k: pfadd_key(f"test:{k[0]}:{k[1]}", ELEMS[k]) for k in ROWS}
theirs = dict(zip(ROWS, r.pipeline([["PFCOUNT", HKEY[k]] for k in ROWS])))
ours = dict(zip(ROWS, r.pipeline([["PFCOUNT", mine[k]] for k in ROWS])))
t.ok(all(isinstance(v, int) for v in theirs.values()), "PFCOUNT takes every key sluice wrote as a HyperLogLog",
     {k: v for k, v in theirs.items() if not isinstance(v, int)})
t.eq({k: rows[k]["visitors"] for k in ROWS}, theirs, "each row's visitors is PFCOUNT of its HyperLogLog key")
t.eq(theirs, ours, "... and PFCOUNT of a key the test PFADDed with the window's elements as text")
print("# distinct elements -> PFCOUNT: " + ", ".join(f"{p}/{w}: {len(ELEMS[(p, w)])} -> {theirs[(p, w)]}"
                                                     for p, w in ROWS), flush=True)
t.eq(theirs[("cart", 0)], len(ELEMS[("cart", 0)]),
     '17, 17.0 and "17" are one element, "u17" another, nulls and missing users none (cart, window 0)')
t.eq((theirs[("ghost", 1)], rows[("ghost", 1)]["visitors"]), (0, 0), "a window with only null users counts 0")

# Merging either into a copy of the other changes nothing.
cmds = []
for k in ROWS:
    cmds += [["COPY", HKEY[k], f"cp:s:{k[0]}:{k[1]}", "REPLACE"], ["PFMERGE", f"cp:s:{k[0]}:{k[1]}", mine[k]],
             ["PFCOUNT", f"cp:s:{k[0]}:{k[1]}"],
             ["COPY", mine[k], f"cp:t:{k[0]}:{k[1]}", "REPLACE"], ["PFMERGE", f"cp:t:{k[0]}:{k[1]}", HKEY[k]],
             ["PFCOUNT", f"cp:t:{k[0]}:{k[1]}"]]
got = r.pipeline(cmds)
into_theirs = {k: got[6 * i + 2] for i, k in enumerate(ROWS)}
into_ours = {k: got[6 * i + 5] for i, k in enumerate(ROWS)}
t.eq(into_theirs, theirs, "PFMERGE of the test's key into a copy of sluice's leaves its PFCOUNT unchanged")
t.eq(into_ours, ours, "PFMERGE of sluice's key into a copy of the test's leaves its PFCOUNT unchanged")

# Redis's own encoding of each one's registers (PFMERGE into a new key):
# the same bytes, so the same registers.
cmds = []
for k in ROWS:
    cmds += [["DEL", "re:s", "re:t"], ["PFMERGE", "re:s", HKEY[k]], ["PFMERGE", "re:t", mine[k]],
             ["GET", "re:s"], ["GET", "re:t"]]
got = r.pipeline(cmds)
differ = [k for i, k in enumerate(ROWS) if got[5 * i + 3] != got[5 * i + 4] or not got[5 * i + 3]]
t.ok(not differ, "Redis re-encodes sluice's registers and the test's into the same bytes (identical registers)",
     differ)

# The encodings, and the expiry.
enc = dict(zip(ROWS, r.pipeline([["GETRANGE", HKEY[k], 0, 4] for k in ROWS])))
lens = dict(zip(ROWS, r.pipeline([["STRLEN", HKEY[k]] for k in ROWS])))
small = [k for k in ROWS if len(ELEMS[k]) <= 100]
large = [k for k in ROWS if len(ELEMS[k]) >= 2000]
t.ok(small and all(enc[k] == b"HYLL\x01" and lens[k] <= 3000 for k in small),
     f"small windows ({len(small)}) are written sparse (GETRANGE 4 4 is 0x01, at most 3000 bytes)",
     {k: (enc[k], lens[k]) for k in small})
t.ok(large and all(enc[k] == b"HYLL\x00" and lens[k] == 12304 for k in large),
     f"windows of 2000 users and more ({len(large)}) are written dense (0x00, 12304 bytes)",
     {k: (enc[k], lens[k]) for k in large})
own = dict(zip(ROWS, r.pipeline([["GETRANGE", mine[k], 4, 4] for k in ROWS])))
t.eq({k: enc[k][4:] for k in ROWS}, own,
     "every key has the encoding Redis gave its own key of the same elements (sparse up to 3000 bytes)")
print("# encodings: " + ", ".join(f"{p}/{w}: {'sparse' if enc[(p, w)][4] else 'dense'} {lens[(p, w)]} B"
                                  for p, w in ROWS), flush=True)
ttls = r.pipeline([["PTTL", HKEY[k]] for k in ROWS])
t.ok(all(isinstance(x, int) and TTL_MS - 120_000 < x <= TTL_MS for x in ttls),
     "every HyperLogLog key expires within ttl = 1h (PTTL > 0, <= ttl)", ttls)

# ---- windows into an hour: PFMERGE ------------------------------------------------------------
for page in ("home", "cart"):
    keys = [k for k in ROWS if k[0] == page]
    union = set().union(*(ELEMS[k] for k in keys))
    got = r.pipeline([["DEL", f"hour:{page}"], ["PFMERGE", f"hour:{page}", *[HKEY[k] for k in keys]],
                      ["PFCOUNT", f"hour:{page}"]])[2]
    want = r("PFCOUNT", pfadd_key(f"test:hour:{page}", union))
    print(f"# {page}: {len(keys)} windows, {len(union)} distinct elements, PFCOUNT of the merge {got}", flush=True)
    t.ok(isinstance(got, int) and abs(got - len(union)) <= 3 * RSE * len(union),
         f"{page}: PFMERGE of its {len(keys)} windows counts the {len(union)} distinct elements within 3 x 0.81 %",
         got)
    t.eq(got, want, f"{page}: ... exactly as a key PFADDed with all of them")

# ---- users PFADD to sluice's keys ----------------------------------------------------------------
seen = {k: sorted(ELEMS[k])[0] for k in ROWS if ELEMS[k]}
seen[("cart", 0)] = "17"  # sent as 17, 17.0 and "17"
added = r.pipeline([["PFADD", HKEY[k], e] for k, e in seen.items()])
after = r.pipeline([["PFCOUNT", HKEY[k]] for k in seen])
t.ok(added == [0] * len(seen) and after == [theirs[k] for k in seen],
     "PFADD of an element already counted to sluice's key returns 0 and leaves PFCOUNT unchanged", added)
new = [f"new-{i}" for i in range(200)]
got = r.pipeline([["PFADD", HKEY[("cart", 1)], *new], ["PFADD", mine[("cart", 1)], *new],
                  ["PFCOUNT", HKEY[("cart", 1)]], ["PFCOUNT", mine[("cart", 1)]]])
t.ok(got[0] == 1 and got[2] == got[3], "new elements PFADDed to it count as in the test's own key", got)

t.eq(metric("sluice_sink_errors_total", sink="r_uv", kind="fatal"), 0.0, "the sink refused no row")
t.eq(len(redis.keys("uv:*")), 2 * len(ROWS), "and wrote no other uv:* key")

t.eq(sluice.stop(), 0, "sluice stops cleanly")
redis.stop()
broker.stop()
t.done()
