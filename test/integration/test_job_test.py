"""`sluice job test` against an independent reference: a few thousand
generated records (out of order within the lateness, some far too late,
missing and odd-typed fields, nested group keys) run through tumbling,
hopping and session jobs; every row must match what the reference in
test/helpers/job_reference.py computes on its own (one partition):
count/sum/min/max/avg/first/last exactly, count_distinct and percentile
within their stated error, late records in no row."""
import json
import os
import subprocess

from harness import SLUICE, Tap, tempdir
from job_reference import generate, index_rows, mismatches, reference, rfc3339

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
    got = index_rows(job, got_rows)
    t.eq(len(got_rows), len(got), f"{name}: one row per (window, key)")
    t.eq(sorted(got, key=repr), sorted(want, key=repr), f"{name}: the same (window, key) rows as the reference")
    bad = mismatches(name, want, got)
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
