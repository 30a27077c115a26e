"""Jobs across crashes and rebalances.  One sluice takes the records in
(forward -> Kafka, keyed by service, 4 partitions); jobs run in other sluice
processes that are killed with SIGKILL at random points and restarted, or
share one consumer group.  Every row any of them ever wrote must equal the
row an independent computation (this file) gives for its id: nothing lost
(every expected row is there), nothing partial (a replayed window is either
skipped as emitted, or rebuilt from all of its records).  This is the test
of the commit rule and of the watermark carried in the commit metadata."""
import json
import os
import random
import signal

from harness import Broker, Sluice, Tap, sluice_cat, tempdir, wait_for

t = Tap()
tmp = tempdir("sluice-jobs-crash-")
rnd = random.Random(int(os.environ.get("SEED", "11")))

broker = Broker()
broker._cmd("topic logs 4")

SERVICES = ["svc%02d" % i for i in range(12)]
BASE = 1_700_000_000_000
ROUNDS, PER_ROUND, STEP = 12, 600, 40  # event time advances 40 ms a record: ~4.8 min in all


def make_records():
    """Distinct event times 40 ms apart (so first/last do not depend on
    arrival order), sent in an order shuffled by up to 4 s: the jobs'
    lateness is 5 s, so no record is late however the partitions
    interleave."""
    out = [{"ts": BASE + i * STEP, "svc": rnd.choice(SERVICES), "lat": rnd.randint(1, 999), "seq": i}
           for i in range(ROUNDS * PER_ROUND)]
    return sorted(out, key=lambda r: r["ts"] + rnd.uniform(-2000, 2000))


RECORDS = make_records()
SENTINELS = [{"ts": BASE + 10 * 3600 * 1000, "svc": s, "lat": 0, "seq": -1} for s in SERVICES]

ingest = Sluice(f"""
[http]
listen = "127.0.0.1:0"
[input.forward]
listen = "127.0.0.1:0"
[kafka]
brokers = "{broker.bootstrap}"
[[route]]
match = "**"
topic = "logs"
key = "svc"
""")

JOBS = """
[[job]]
name = "per_10s"
topics = ["logs"]
where = "seq >= 0"
group_by = ["svc"]
time_field = "ts"
time_format = "epoch_ms"
window = { type = "tumbling", size = "10s" }
allowed_lateness = "5s"
idle_timeout = "10m"
commit_interval = "100ms"
aggregates = { n = "count()", s = "sum(lat)", mn = "min(lat)", mx = "max(lat)", f = "first(seq)", l = "last(seq)" }
sinks = ["out"]
[job.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"

[[job]]
name = "sessions"
topics = ["logs"]
where = "seq >= 0"
group_by = ["svc"]
time_field = "ts"
time_format = "epoch_ms"
window = { type = "session", gap = "1500ms" }
allowed_lateness = "5s"
idle_timeout = "10m"
commit_interval = "100ms"
aggregates = { n = "count()", s = "sum(lat)", f = "first(seq)", l = "last(seq)" }
sinks = ["out"]
[job.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"""


def jobs_sluice(out, instance="jobs"):
    """A sluice running the jobs as static group member `instance`: the
    same one again after a kill gets its partitions back."""
    jobs = JOBS.replace("[[job]]\n", f'[[job]]\ninstance_id = "{instance}"\n')
    return Sluice(f"""
[http]
listen = "127.0.0.1:0"
[input.forward]
enabled = false
[kafka]
brokers = "{broker.bootstrap}"
{jobs}
[[sink]]
name = "out"
plugin = "file"
path = "{out}"
""")


def rfc3339(ms):
    import datetime
    d = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def reference():
    """{(job, window_start, svc): row fields} computed without any window
    machinery beyond the definitions."""
    rows = {}
    cells = {}
    for r in RECORDS:
        start = r["ts"] // 10000 * 10000
        cells.setdefault((start, start + 10000, r["svc"]), []).append(r)
    for (start, end, svc), rs in cells.items():
        rs.sort(key=lambda r: r["ts"])
        rows[("per_10s", rfc3339(start), svc)] = dict(
            window_end=rfc3339(end), n=len(rs), s=sum(r["lat"] for r in rs), mn=min(r["lat"] for r in rs),
            mx=max(r["lat"] for r in rs), f=rs[0]["seq"], l=rs[-1]["seq"])
    by_svc = {}
    for r in RECORDS:
        by_svc.setdefault(r["svc"], []).append(r)
    for svc, rs in by_svc.items():
        rs.sort(key=lambda r: r["ts"])
        group = [rs[0]]
        for r in rs[1:] + [None]:
            if r is not None and r["ts"] < group[-1]["ts"] + 1500:
                group.append(r)
                continue
            rows[("sessions", rfc3339(group[0]["ts"]), svc)] = dict(
                window_end=rfc3339(group[-1]["ts"] + 1500), n=len(group), s=sum(g["lat"] for g in group),
                f=group[0]["seq"], l=group[-1]["seq"])
            group = [r]
    return rows


REF = reference()


def read_rows(paths):
    rows = []
    for p in paths:
        if os.path.exists(p):
            with open(p) as f:
                rows += [json.loads(l) for l in f if l.endswith("\n")]
    return rows


def key_of(row):
    return (row["job"], row["window_start"], row["svc"])


def fields_of(row):
    return {k: v for k, v in row.items() if k not in ("id", "job", "window_start", "svc")}


def check(paths, what):
    rows = read_rows(paths)
    seen = {}
    bad = []
    for row in rows:
        k = key_of(row)
        want = REF.get(k)
        got = fields_of(row)
        if want != got:
            bad.append((k, got, want))
        if k in seen and seen[k] != row["id"]:
            bad.append((k, "id changed", seen[k], row["id"]))
        seen[k] = row["id"]
    missing = [k for k in REF if k not in seen]
    t.ok(not bad, f"{what}: every row written equals the reference row of its id ({len(rows)} rows written)",
         bad[:5])
    t.ok(not missing, f"{what}: every reference row was written ({len(REF)} windows)", missing[:5])


def complete(paths):
    keys = {key_of(r) for r in read_rows(paths)}
    return all(k in keys for k in REF)


def wait_complete(paths, instances, what):
    try:
        wait_for(lambda: complete(paths), 90, what)
    except TimeoutError:
        keys = {key_of(r) for r in read_rows(paths)}
        missing = sorted(k for k in REF if k not in keys)
        print(f"# {len(missing)} of {len(REF)} rows missing, e.g. {missing[:3]}")
        for s in instances:
            print("# " + s.log.text()[-3000:].replace("\n", "\n# "))
            print("# " + repr({k: v for k, v in s.metrics().items() if "job" in k}))
        raise


def send(records):
    r = sluice_cat(ingest.port, "app.logs", records)
    assert r.returncode == 0, r.stderr


# ---- SIGKILL at random points, restart, until everything is in ----------------
out1 = os.path.join(tmp, "crash.jsonl")
js = jobs_sluice(out1)
kills = 0
for rnd_i in range(ROUNDS):
    send(RECORDS[rnd_i * PER_ROUND:(rnd_i + 1) * PER_ROUND])
    if rnd_i in (2, 5, 8, 10):
        # Let the job get somewhere first: some rows out, some commits made.
        before = js.metric('sluice_job_records_total{sluice_job="per_10s"}')
        wait_for(lambda: js.metric('sluice_job_records_total{sluice_job="per_10s"}') > before, 30, "the job to read")
        js.kill()
        kills += 1
        js = jobs_sluice(out1)
send(SENTINELS)
wait_complete([out1], [js], "every window's row after the crashes")
js.wait_metric('sluice_job_rows_pending{sluice_job="sessions"}', lambda v: v == 0)
t.ok(kills == 4, "the jobs were killed 4 times mid-stream")
check([out1], "after 4 SIGKILLs")
t.ok(js.stop() == 0, "the last jobs instance stops cleanly")

# ---- two instances in one group, one restarted midway ---------------------------
# New groups (so the whole topic is read again) and new files.
JOBS = JOBS.replace('name = "per_10s"', 'name = "per_10s"\ngroup_id = "pair-a"').replace(
    'name = "sessions"', 'name = "sessions"\ngroup_id = "pair-b"')
outa, outb = os.path.join(tmp, "a.jsonl"), os.path.join(tmp, "b.jsonl")
a = jobs_sluice(outa, "a")
b = jobs_sluice(outb, "b")
wait_for(lambda: a.metric('sluice_job_assigned_partitions{sluice_job="per_10s"}') > 0
         and b.metric('sluice_job_assigned_partitions{sluice_job="per_10s"}') > 0, 60, "both instances to get partitions")
b.kill()
b = jobs_sluice(outb, "b")
wait_complete([outa, outb], [a, b], "every window's row from the pair")
t.ok(read_rows([outa]) and read_rows([outb]), "both instances wrote rows")
check([outa, outb], "two instances, one killed and restarted")
a.stop()
b.stop()
ingest.stop()
broker.stop()
t.done()
