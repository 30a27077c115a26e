"""The jobs stage end to end against the independent reference
(test/helpers/job_reference.py): one sluice takes generated records from a
real fluent client (Debian's python3-fluent-logger) on its forward input,
routes them to two 4-partition topics keyed by service (one JSON, one
msgpack), and runs tumbling, hopping, session, early-emitting and
processing-time jobs over them into a file sink.  Every final row must be
the reference's row (count/sum/min/max/avg/first/last exactly,
count_distinct within 5 %, percentiles within 1 %), every late record
counted and handed to the late sink, and the metrics must agree.

The records: in order, out of order by less than 2 s, an hour late every
101st, some with a missing or null field, values of mixed types, a nested
group key.  Which partition's records the consumer reads first is not under
the test's control, so the data are made so that it does not matter: the
lateness (5 s) exceeds the disorder, late records are far beyond it, event
times are distinct (first/last), and the route keys every record by `svc`,
which leaves partition 2 without records (an idle partition).  Records with
`hb` are control records every job filters out: warm-ups before the data
(the watermark then shows every job assigned, the empty partition idle and
the others not), and heartbeats an hour ahead after it (the other
partitions go idle, so every window closes)."""
import json
import os
import struct
import subprocess
from datetime import datetime, timezone
import time
import zlib

import msgpack

from fluent import sender as fluent_sender
from harness import Broker, Sluice, Tap, tempdir, wait_for
from job_reference import BASE_MS, generate, index_rows, is_num, mismatches, reference, rfc3339, row_key

t = Tap()
tmp = tempdir("sluice-jobs-pipeline-")
ROWS = os.path.join(tmp, "rows.jsonl")
LATE = {"json": os.path.join(tmp, "late-json.jsonl"), "mp": os.path.join(tmp, "late-mp.jsonl")}
PARTITIONS = 4
SVCS = "abcd"
N = 3000
LATENESS = 5000
IDLE = "2s"


def partition_of(rec):
    """librdkafka's default partitioner for a keyed record: CRC-32 of the
    key, modulo the partitions."""
    return zlib.crc32(rec["svc"].encode()) % PARTITIONS


EMPTY = sorted(set(range(PARTITIONS)) - {partition_of({"svc": s}) for s in SVCS})
assert EMPTY, "SVCS must leave a partition without records"

RECORDS = generate(n=N, seed=11, svcs=SVCS, jitter=999, late_by=3_600_000, distinct=True, mixed=True)

# ---- the jobs, as configured and as the reference sees them --------------------

FULL_AGGS = ('{ n = "count()", nl = "count(lat)", s = "sum(lat)", mn = "min(lat)", mx = "max(lat)", '
             'a = "avg(lat)", f = "first(lat)", l = "last(lat)", d = "count_distinct(user)", '
             'p = "percentile(lat, 0.9)" }')


def full_aggs(q):
    return dict(n=("count", None), nl=("countf", "lat"), s=("sum", "lat"), mn=("min", "lat"), mx=("max", "lat"),
                a=("avg", "lat"), f=("first", "lat"), l=("last", "lat"), d=("distinct", "user"),
                p=("pct", "lat", q))


def errors_where(r):
    return (isinstance(r.get("status"), int) and r["status"] >= 500) or r.get("svc") == "c"


JOBS = {
    # Kafka timestamps (the forward event time), a nested group key that is
    # sometimes missing, a filter that mixed types fail.
    "tumbling": dict(kind="tumbling", size=10000, lateness=LATENESS, keys=("svc", "req.path"), where=errors_where,
                     aggs=full_aggs(0.9), topic="json",
                     conf=f'''where = '(status >= 500 or svc == "c") and not exists(hb)'
group_by = ["svc", "req.path"]
window = {{ type = "tumbling", size = "10s" }}
aggregates = {FULL_AGGS}
late_sink = "late_json"'''),
    # The same job over the msgpack topic.
    "tumbling_mp": dict(kind="tumbling", size=10000, lateness=LATENESS, keys=("svc", "req.path"),
                        where=errors_where, aggs=full_aggs(0.9), topic="mp",
                        conf=f'''format = "msgpack"
where = '(status >= 500 or svc == "c") and not exists(hb)'
group_by = ["svc", "req.path"]
window = {{ type = "tumbling", size = "10s" }}
aggregates = {FULL_AGGS}
late_sink = "late_mp"'''),
    # Event time from a record field in epoch ms.
    "hopping": dict(kind="hopping", size=30000, advance=10000, lateness=LATENESS, keys=("svc",),
                    where=lambda r: True, topic="json",
                    aggs=dict(n=("count", None), s=("sum", "lat"), mn=("min", "lat"), mx=("max", "lat"),
                              a=("avg", "lat"), f=("first", "lat"), l=("last", "lat"), d=("distinct", "user"),
                              p=("pct", "lat", 0.5)),
                    conf='''where = 'not exists(hb)'
time = { field = "ts", format = "epoch_ms" }
group_by = ["svc"]
window = { type = "hopping", size = "30s", advance = "10s" }
aggregates = { n = "count()", s = "sum(lat)", mn = "min(lat)", mx = "max(lat)", a = "avg(lat)", f = "first(lat)", l = "last(lat)", d = "count_distinct(user)", p = "percentile(lat, 0.5)" }'''),
    # Sessions of a key whose records are spread over partitions (users
    # are not the route key); event time from an RFC 3339 field; a missing
    # user is a null key.
    "session": dict(kind="session", gap=3000, lateness=LATENESS, keys=("user",), where=lambda r: "lat" in r,
                    topic="json",
                    aggs=dict(n=("count", None), s=("sum", "lat"), mn=("min", "lat"), mx=("max", "lat"),
                              a=("avg", "lat"), f=("first", "lat"), l=("last", "lat"), p=("pct", "lat", 0.99)),
                    conf='''where = 'exists(lat) and not exists(hb)'
time = { field = "at", format = "rfc3339" }
group_by = ["user"]
window = { type = "session", gap = "3s" }
aggregates = { n = "count()", s = "sum(lat)", mn = "min(lat)", mx = "max(lat)", a = "avg(lat)", f = "first(lat)", l = "last(lat)", p = "percentile(lat, 0.99)" }'''),
    # Early rows every 200 ms, overwritten by the final row of their id.
    "early": dict(kind="tumbling", size=10000, lateness=LATENESS, keys=("svc",), where=lambda r: True, topic="json",
                  aggs=dict(n=("count", None), s=("sum", "lat"), l=("last", "lat"), d=("distinct", "user")),
                  conf='''where = 'not exists(hb)'
group_by = ["svc"]
window = { type = "tumbling", size = "10s" }
emit = { every = "200ms" }
aggregates = { n = "count()", s = "sum(lat)", l = "last(lat)", d = "count_distinct(user)" }'''),
}
TOPIC = {"json": "ev.json", "mp": "ev.mp"}

CONFIG = [f'''[log]
level = "info"
[http]
listen = "127.0.0.1:0"
[input.forward]
listen = "127.0.0.1:0"
[kafka]
brokers = "{{bootstrap}}"

[[route]]
match = "ev.json"
topic = "ev.json"
key = "svc"

[[route]]
match = "ev.mp"
topic = "ev.mp"
format = "msgpack"
key = "svc"

[[sink]]
name = "out"
plugin = "file"
path = "{ROWS}"

[[sink]]
name = "late_json"
plugin = "file"
path = "{LATE["json"]}"

[[sink]]
name = "late_mp"
plugin = "file"
path = "{LATE["mp"]}"

# Processing time: windows follow the clock, so only the totals are known.
[[job]]
name = "proc"
topics = ["ev.json"]
time = "processing"
where = 'not exists(hb)'
window = {{ type = "tumbling", size = "1s" }}
aggregates = {{ n = "count()", s = "sum(lat)" }}
sinks = ["out"]
''']
for name, job in JOBS.items():
    CONFIG.append(f'''
[[job]]
name = "{name}"
topics = ["{TOPIC[job["topic"]]}"]
allowed_lateness = "5s"
idle_timeout = "{IDLE}"
commit_interval = "200ms"
sinks = ["out"]
{job["conf"]}
''')
CONFIG = "".join(CONFIG)

# ---- what the reference expects --------------------------------------------------

WANT = {}
for name, job in JOBS.items():
    late = []
    rows, n_late = reference(job, RECORDS, partition_of, late)
    WANT[name] = dict(rows=rows, late=n_late, late_records=late,
                      filtered=sum(1 for _, r in RECORDS if not job["where"](r)))
LAT_SUM = sum(r["lat"] for _, r in RECORDS if is_num(r.get("lat")))


def job_metrics(name, m=None):
    """{"rows_total": value, ...}: the sluice_job_* metrics of one job."""
    prefix = "sluice_job_"
    return {k[len(prefix):].split("{")[0]: v for k, v in (m or s.metrics()).items()
            if k.startswith(prefix) and f'{{sluice_job="{name}"}}' in k}


def every_job(pred, names=tuple(JOBS)):
    """Whether pred(metrics of the job) holds for every named job, from one
    reading of /metrics."""
    m = s.metrics()
    return all(pred(job_metrics(n, m)) for n in names)


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def event_time(ms):
    """A forward EventTime for a whole number of ms: the client would turn
    a float into nanoseconds with rounding errors, so it gets the exact
    value (fluent-logger sends it as it is)."""
    return msgpack.ExtType(0, struct.pack(">II", ms // 1000, ms % 1000 * 1000000))


def control(ms, svc="a"):
    """A record every job filters out, on the partition of svc."""
    return {"hb": 1, "svc": svc, "ts": ms, "at": rfc3339(ms), "status": 0, "user": "hb"}


def check_wait(desc, pred, timeout, detail):
    try:
        wait_for(pred, timeout, desc)
        return t.ok(True, desc)
    except TimeoutError as e:
        return t.ok(False, desc, f"{e}\n{detail()}")


def partition_ends(bootstrap, topic):
    args = ["kcat", "-Q", "-b", bootstrap]
    for p in range(PARTITIONS):
        args += ["-t", f"{topic}:{p}:-1"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=20).stdout
    ends = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == topic and parts[2] == "offset":
            ends[int(parts[1].strip("[]"))] = int(parts[3])
    return ends


broker = Broker(topics=[f"{TOPIC['json']}:{PARTITIONS}", f"{TOPIC['mp']}:{PARTITIONS}"])
s = Sluice(CONFIG.replace("{bootstrap}", broker.bootstrap))
sender = fluent_sender.FluentSender("ev", host="127.0.0.1", port=s.port, nanosecond_precision=True, timeout=10)
sent_control = 0


def send(ms, rec):
    for label in ("json", "mp"):
        if not sender.emit_with_time(label, event_time(ms), rec):
            raise RuntimeError(f"fluent-logger could not send: {sender.last_error}")


def all_metrics():
    """What a failed wait shows: each job's counters, and the log's warnings."""
    m = s.metrics()
    out = []
    for n in ["proc", *JOBS]:
        j = job_metrics(n, m)
        out.append(f"{n}: " + " ".join(f"{k}={j.get(k, 0):g}" for k in (
            "records_total", "records_filtered_total", "records_late_total", "rows_total", "early_rows_total",
            "rows_pending", "open_windows", "assigned_partitions", "watermark_seconds")))
    return "\n".join(out + [l for l in s.log.text().splitlines() if " warn " in l or " error " in l][-10:])


def finish():
    sender.close()
    t.eq(s.stop(), 0, "sluice stops cleanly")
    broker.stop()
    t.done()


# 1. Warm-up records on every partition the data will use, sent again until
# every event-time job's watermark shows them: the jobs are then assigned,
# the empty partition counts as idle, and the others do not (a partition
# idle when the data start would be judged against a watermark that another
# partition's first burst of records had already moved on).
WARM = BASE_MS - 30000
WARM_SVCS = sorted({partition_of({"svc": x}): x for x in SVCS}.values())
last_warm = [0.0]


def warmed_up():
    global sent_control
    if every_job(lambda j: j.get("watermark_seconds") == (WARM - LATENESS) / 1e3):
        return True
    if time.monotonic() - last_warm[0] > 0.25:
        for x in WARM_SVCS:
            send(WARM, control(WARM, x))
            sent_control += 1
        last_warm[0] = time.monotonic()
    return False


if not check_wait("every job is assigned and its watermark follows the warm-up records", warmed_up, 30,
                  all_metrics):
    finish()

# 2. The records, in the generated order, through fluent-logger.
for ms, rec in RECORDS:
    send(ms, rec)
check_wait(f"every job reads the {N} records",
           lambda: every_job(lambda j: j.get("records_total") == N + sent_control, ["proc", *JOBS]), 30, all_metrics)
ends = {k: partition_ends(broker.bootstrap, v) for k, v in TOPIC.items()}
t.ok(all(all((ends[k].get(p, 0) == 0) == (p in EMPTY) for p in range(PARTITIONS)) for k in TOPIC),
     f"keyed by svc, the records fill every partition but {EMPTY}", ends)

# 3. Heartbeats an hour ahead on one partition, sent again until every window
# is closed, so that this partition is never idle when the others are (when
# all are idle the watermark stays).
last_beat = [0.0]


def closed():
    global sent_control
    m = s.metrics()
    done = all(j.get("open_windows") == 0 and j.get("rows_total", 0) >= len(WANT[n]["rows"])
               and j.get("rows_pending") == 0 for n, j in ((n, job_metrics(n, m)) for n in JOBS))
    proc = [r for r in read_lines(ROWS) if r.get("job") == "proc"]
    done = done and sum(r["n"] for r in proc) >= N and job_metrics("proc", m).get("rows_pending") == 0
    if not done and time.monotonic() - last_beat[0] > 0.5:
        ms = BASE_MS + 3600_000 + sent_control
        send(ms, control(ms))
        sent_control += 1
        last_beat[0] = time.monotonic()
    return done


check_wait("the heartbeat ahead closes every window, and the sinks have every row", closed, 30, all_metrics)
check_wait("every job reads the control records too",
           lambda: every_job(lambda j: j.get("records_total") == N + sent_control, ["proc", *JOBS]), 20, all_metrics)

# 4. The rows against the reference.
lines = read_lines(ROWS)
t.eq(s.metric('sluice_sink_rows_total{sink="out"}'), float(len(lines)),
     "sluice_sink_rows_total counts every line of the file")
t.ok(all(isinstance(r.get("id"), str) and len(r["id"]) == 16 and int(r["id"], 16) >= 0 for r in lines),
     "every row has a 16 hex digit id", [r.get("id") for r in lines[:5]])

for name, job in JOBS.items():
    want = WANT[name]
    mine = [r for r in lines if r.get("job") == name]
    by_id = {}
    for r in mine:
        by_id.setdefault(r["id"], []).append(r)
    t.ok(all(len({row_key(job, r) for r in rs}) == 1 for rs in by_id.values()),
         f"{name}: an id always names the same (window, key)",
         [rs for rs in by_id.values() if len({row_key(job, r) for r in rs}) > 1][:3])
    final = [rs[-1] for rs in by_id.values()]
    got = index_rows(job, final)
    m = job_metrics(name)
    if name == "early":
        repeated = [i for i, rs in by_id.items() if len(rs) > 1]
        t.ok(repeated and m.get("early_rows_total", 0) >= len(repeated),
             f"early: {len(repeated)} ids have early rows before their final row "
             f"({m.get('early_rows_total', 0):g} early rows)", m)
        t.eq(len(mine), m.get("rows_total", 0) + m.get("early_rows_total", 0),
             "early: the file holds every final and early row the metrics count")
        early_keys = {row_key(job, r) for rs in by_id.values() for r in rs[:-1]}
        t.ok(early_keys <= set(want["rows"]), "early: early rows only for windows that close with a final row",
             sorted(early_keys - set(want["rows"]), key=repr)[:5])
    else:
        t.eq(len(mine), len(by_id), f"{name}: one row per id")
    t.eq(len(got), len(final), f"{name}: one final row per (window, key)")
    t.eq(sorted(got, key=repr), sorted(want["rows"], key=repr),
         f"{name}: the same (window, key) rows as the reference ({len(want['rows'])})")
    bad = mismatches(name, want["rows"], got)
    t.ok(not bad, f"{name}: every aggregate matches the reference", "\n".join(map(repr, bad[:10])))
    t.eq((m.get("rows_total"), m.get("records_late_total"), m.get("records_filtered_total")),
         (float(len(want["rows"])), float(want["late"]), float(want["filtered"] + sent_control)),
         f"{name}: metrics count {len(want['rows'])} rows, {want['late']} late records, "
         f"{want['filtered']} + {sent_control} control records filtered")
    t.eq((m.get("open_windows"), m.get("state_keys"), m.get("rows_pending")), (0.0, 0.0, 0.0),
         f"{name}: no window, state or pending row left")
    t.ok(m.get("commits_total", 0) >= 1, f"{name}: offsets are committed", m)

for fmt in ("json", "mp"):
    name = "tumbling" if fmt == "json" else "tumbling_mp"
    got = read_lines(LATE[fmt])
    want = WANT[name]["late_records"]
    t.ok(want and sorted(json.dumps(g, sort_keys=True) for g in got)
         == sorted(json.dumps(r, sort_keys=True) for r in want),
         f"{name}: the late sink has the {len(want)} late records as sent", got[:3])

proc = [r for r in lines if r.get("job") == "proc"]
t.eq((sum(r["n"] for r in proc), sum(r["s"] or 0 for r in proc)), (N, LAT_SUM),
     "proc: over its rows, processing time counts every record once and sums every latency")
t.eq(len({r["id"] for r in proc}), len(proc), "proc: one row per id")
wall = datetime.now(timezone.utc)
starts = sorted(datetime.fromisoformat(r["window_start"].replace("Z", "+00:00")) for r in proc)
t.ok(proc and abs((starts[0] - wall).total_seconds()) < 600 and abs((starts[-1] - wall).total_seconds()) < 600,
     "proc: processing-time windows are on the wall clock", [r["window_start"] for r in proc[:3]])
finish()
