"""`sluice job test` against an independent reference: a few thousand
generated records (out of order within the lateness, some far too late,
missing and odd-typed fields, nested group keys) run through tumbling,
hopping and session jobs; every row must match what this file computes on
its own: count/sum/min/max/avg/first/last exactly, count_distinct and
percentile within their stated error, late records in no row."""
import json
import math
import os
import random
import subprocess
from datetime import datetime, timezone

from harness import SLUICE, Tap, tempdir

t = Tap()
tmp = tempdir("sluice-jobtest-")

CONFIG = """
[kafka]
brokers = "127.0.0.1:9092"

[[sink]]
name = "out"
plugin = "file"
path = "-"

[[job]]
name = "tumbling"
topics = ["logs"]
where = 'status >= 500 or svc == "c"'
group_by = ["svc", "req.path"]
window = { type = "tumbling", size = "10s" }
allowed_lateness = "5s"
aggregates = { n = "count()", nl = "count(lat)", s = "sum(lat)", mn = "min(lat)", mx = "max(lat)", a = "avg(lat)", f = "first(lat)", l = "last(lat)", d = "count_distinct(user)", p = "percentile(lat, 0.9)" }
sinks = ["out"]

[[job]]
name = "hopping"
topics = ["logs"]
group_by = ["svc"]
time_field = "ts"
time_format = "epoch_ms"
window = { type = "hopping", size = "30s", advance = "10s" }
allowed_lateness = "5s"
aggregates = { n = "count()", s = "sum(lat)", mn = "min(lat)", mx = "max(lat)", a = "avg(lat)", f = "first(lat)", l = "last(lat)", d = "count_distinct(user)", p = "percentile(lat, 0.5)" }
sinks = ["out"]

[[job]]
name = "session"
topics = ["logs"]
where = 'exists(lat)'
group_by = ["user"]
window = { type = "session", gap = "3s" }
allowed_lateness = "2s"
aggregates = { n = "count()", s = "sum(lat)", mn = "min(lat)", mx = "max(lat)", a = "avg(lat)", f = "first(lat)", l = "last(lat)", p = "percentile(lat, 0.99)" }
sinks = ["out"]
"""

JOBS = {
    "tumbling": dict(kind="tumbling", size=10000, lateness=5000, keys=("svc", "req.path"),
                     where=lambda r: (isinstance(r.get("status"), int) and r["status"] >= 500) or r.get("svc") == "c",
                     aggs=dict(n=("count", None), nl=("countf", "lat"), s=("sum", "lat"), mn=("min", "lat"),
                               mx=("max", "lat"), a=("avg", "lat"), f=("first", "lat"), l=("last", "lat"),
                               d=("distinct", "user"), p=("pct", "lat", 0.9))),
    "hopping": dict(kind="hopping", size=30000, advance=10000, lateness=5000, keys=("svc",), where=lambda r: True,
                    aggs=dict(n=("count", None), s=("sum", "lat"), mn=("min", "lat"), mx=("max", "lat"),
                              a=("avg", "lat"), f=("first", "lat"), l=("last", "lat"), d=("distinct", "user"),
                              p=("pct", "lat", 0.5))),
    "session": dict(kind="session", gap=3000, lateness=2000, keys=("user",), where=lambda r: "lat" in r,
                    aggs=dict(n=("count", None), s=("sum", "lat"), mn=("min", "lat"), mx=("max", "lat"),
                              a=("avg", "lat"), f=("first", "lat"), l=("last", "lat"), p=("pct", "lat", 0.99))),
}


def rfc3339(ms):
    d = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def generate(n=3000, seed=7):
    rnd = random.Random(seed)
    base = 1_700_000_000_000
    out = []
    for i in range(n):
        ts = base + i * 137 + rnd.randint(-2000, 2000)
        if i % 101 == 50:
            ts -= 60000  # far beyond every job's lateness
        rec = {"ts": ts, "svc": rnd.choice("abc"), "status": rnd.choice([200, 404, 500, 503]),
               "user": "u%d" % rnd.randrange(40)}
        if rnd.random() < 0.8:
            rec["req"] = {"path": rnd.choice(["/x", "/y", "/z"])}
        roll = rnd.random()
        if roll < 0.85:
            rec["lat"] = rnd.randint(1, 5000)
        elif roll < 0.9:
            rec["lat"] = None
        elif roll < 0.93:
            rec["lat"] = "12"  # a string: counted by count(lat), skipped by the numeric ones
        out.append((ts, rec))
    return out


def lookup(rec, path):
    v = rec
    for step in path.split("."):
        if not isinstance(v, dict) or step not in v:
            return None
        v = v[step]
    return v


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Cell:
    def __init__(self):
        self.items = []  # (time, arrival, record)


def reference(job, records):
    """Rows as {(window_start, key...): (window_end, {agg: value})}, and the late count."""
    wm = None  # as of the last advance
    max_t = None
    windows = {}  # (start, end) -> {key: Cell}
    sessions = {}  # key -> [[start, end, Cell]]
    rows = {}
    late = 0

    def emit(start, end, key, cell):
        rows[(start,) + key] = (end, aggregate(job, cell))

    def close(upto):
        for w in sorted(windows):
            if w[1] <= upto:
                for key, cell in windows.pop(w).items():
                    emit(w[0], w[1], key, cell)
        for key, ss in sessions.items():
            for s in [s for s in ss if s[1] <= upto]:
                ss.remove(s)
                emit(s[0], s[1], key, s[2])

    for arrival, (ts, rec) in enumerate(records):
        floor = wm if wm is not None else -(1 << 63)
        max_t = ts if max_t is None else max(max_t, ts)
        if job["where"](rec):
            key = tuple(lookup(rec, k) for k in job["keys"])
            kind = job["kind"]
            if kind == "tumbling":
                start = ts // job["size"] * job["size"]
                wins = [(start, start + job["size"])]
                last_end = start + job["size"]
            elif kind == "hopping":
                adv, size = job["advance"], job["size"]
                last = ts // adv * adv
                wins = [(s, s + size) for s in range(last - size + adv, last + 1, adv) if s <= ts < s + size]
                last_end = last + size
            else:
                last_end = ts + job["gap"]
            if last_end <= floor:
                late += 1
            elif kind == "session":
                ss = sessions.setdefault(key, [])
                start, end = ts, ts + job["gap"]
                cell = Cell()
                for s in [s for s in ss if s[0] < end and ts < s[1]]:
                    ss.remove(s)
                    start, end = min(start, s[0]), max(end, s[1])
                    cell.items += s[2].items
                cell.items.append((ts, arrival, rec))
                ss.append([start, end, cell])
            else:
                for w in wins:
                    if w[1] > floor:
                        windows.setdefault(w, {}).setdefault(key, Cell()).items.append((ts, arrival, rec))
        cand = max_t - job["lateness"]
        wm = cand if wm is None else max(wm, cand)
        close(wm)
    close(1 << 62)
    return rows, late


def aggregate(job, cell):
    out = {}
    for name, spec in job["aggs"].items():
        fn, field = spec[0], spec[1]
        vals = [(ts, arr, lookup(r, field)) for ts, arr, r in cell.items] if field else []
        present = [(ts, arr, v) for ts, arr, v in vals if v is not None]
        nums = [v for _, _, v in present if is_num(v)]
        if fn == "count":
            out[name] = len(cell.items)
        elif fn == "countf":
            out[name] = len(present)
        elif fn == "sum":
            out[name] = sum(nums) if nums else None
        elif fn == "min":
            out[name] = min(nums) if nums else None
        elif fn == "max":
            out[name] = max(nums) if nums else None
        elif fn == "avg":
            out[name] = sum(nums) / len(nums) if nums else None
        elif fn == "first":
            out[name] = min(present, key=lambda x: (x[0], x[1]))[2] if present else None
        elif fn == "last":
            out[name] = max(present, key=lambda x: (x[0], x[1]))[2] if present else None
        elif fn == "distinct":
            out[name] = ("approx", len(set(v for _, _, v in present)))
        elif fn == "pct":
            out[name] = ("pct", sorted(nums), spec[2])
    return out


def matches(want, got):
    if isinstance(want, tuple) and want[0] == "approx":
        return isinstance(got, int) and abs(got - want[1]) <= max(2, 0.05 * want[1])
    if isinstance(want, tuple) and want[0] == "pct":
        vals, q = want[1], want[2]
        if not vals:
            return got is None
        rank = q * (len(vals) - 1)
        lo, hi = vals[math.floor(rank)], vals[math.ceil(rank)]
        return isinstance(got, float) and lo * 0.99 - 1e-9 <= got <= hi * 1.01 + 1e-9
    if isinstance(want, float) and isinstance(got, (int, float)):
        return got == want
    return type(got) == type(want) and got == want


records = generate()
inp = os.path.join(tmp, "input.jsonl")
with open(inp, "w") as f:
    for i, (ts, rec) in enumerate(records):
        # Both line forms: the wrapped one with RFC 3339 time, and a bare
        # record whose "time" key is epoch seconds (an exact decimal).
        if i % 2:
            f.write(json.dumps({"time": rfc3339(ts), "record": rec}) + "\n")
        else:
            f.write(json.dumps(rec)[:-1] + ', "time": %d.%03d}\n' % (ts // 1000, ts % 1000))
cfg = os.path.join(tmp, "jobs.toml")
with open(cfg, "w") as f:
    f.write(CONFIG)

r = subprocess.run([SLUICE, "check", "-c", cfg], capture_output=True, text=True, timeout=60)
t.ok(r.returncode == 0, "the jobs config passes check", r.stderr)


def run(job, path=inp):
    return subprocess.run([SLUICE, "job", "test", "-c", cfg, "--job", job, "--input", path],
                          capture_output=True, text=True, timeout=120)


for name, job in JOBS.items():
    r = run(name)
    if not t.ok(r.returncode == 0, f"{name}: job test exits 0", r.stderr):
        continue
    got_rows = [json.loads(line) for line in r.stdout.splitlines()]
    want, late = reference(job, records)
    t.ok(late > 0 and f" {late} late," in r.stderr, f"{name}: {late} late records counted", r.stderr)
    got = {}
    for row in got_rows:
        key = tuple(row.get(k) for k in job["keys"])
        start = int(datetime.strptime(row["window_start"], "%Y-%m-%dT%H:%M:%S.%fZ")
                    .replace(tzinfo=timezone.utc).timestamp() * 1000 + 0.5)
        got[(start,) + key] = row
    t.eq(len(got_rows), len(got), f"{name}: one row per (window, key)")
    t.eq(sorted(got, key=repr), sorted(want, key=repr), f"{name}: the same (window, key) rows as the reference")
    bad = []
    for k, (end, aggs) in want.items():
        row = got.get(k)
        if row is None:
            continue
        if row["window_end"] != rfc3339(end) or row["job"] != name:
            bad.append((k, "window_end/job", row))
        for a, w in aggs.items():
            if not matches(w, row.get(a)):
                bad.append((k, a, w if not isinstance(w, tuple) or w[0] != "pct" else w[1][:5], row.get(a)))
    t.ok(not bad, f"{name}: every aggregate matches the reference ({len(want)} rows)", "\n".join(map(repr, bad[:10])))
    ids = [row["id"] for row in got_rows]
    t.ok(len(set(ids)) == len(ids) and all(len(i) == 16 and int(i, 16) >= 0 for i in ids),
         f"{name}: ids are 16 hex digits, one per row")
    r2 = run(name)
    t.eq([json.loads(line)["id"] for line in r2.stdout.splitlines()], ids, f"{name}: a second run gives the same ids")

# Errors: an unknown job, bad input lines, usage.
r = run("nope")
t.ok(r.returncode == 2 and "nope" in r.stderr, "an unknown job: exit 2, named", r.stderr)
badinp = os.path.join(tmp, "bad.jsonl")
with open(badinp, "w") as f:
    f.write('{"time": 1, "svc": "a"}\n{"svc": \n')
r = run("tumbling", badinp)
t.ok(r.returncode == 1 and "bad.jsonl:2:" in r.stderr, "invalid JSON: exit 1 naming the line", r.stderr)
with open(badinp, "w") as f:
    f.write('{"svc": "a"}\n')
r = run("tumbling", badinp)
t.ok(r.returncode == 1 and "bad.jsonl:1:" in r.stderr and "time" in r.stderr, "no time: exit 1 naming the line",
     r.stderr)
r = subprocess.run([SLUICE, "job", "test", "-c", cfg], capture_output=True, text=True, timeout=30)
t.ok(r.returncode == 64 and "usage:" in r.stderr, "missing --job and --input: usage, exit 64", r.stderr)
r = subprocess.run([SLUICE, "job", "test", "--help"], capture_output=True, text=True, timeout=30)
t.ok(r.returncode == 0 and "usage: sluice job test" in r.stdout, "job test --help", r.stderr)
t.done()
