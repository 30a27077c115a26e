"""Late records under each late_policy, one job per policy over the same
topic: records are written with the real kcat in steps, each read by the
jobs before the next, so that windows have closed when the late records
come.

- drop: late records counted, nothing else;
- sink: counted and written to late_sink, each with the window it missed;
- update: a late record within max_lateness_update updates its closed
  window and the window's row is emitted again under the same id; the last
  row of every id equals the reference over all records (those within
  max_lateness_update); a record later than that goes to late_sink.

A config with late_policy = "drop" and a late_sink is refused, and so is
"update" on a session job."""
import json
import os
import subprocess
from datetime import datetime

from harness import SLUICE, Broker, Sluice, Tap, tempdir, wait_for

t = Tap()
tmp = tempdir("sluice-jobs-late-")
broker = Broker()
broker._cmd("topic late 1")
T0 = 1_700_000_000_000 // 10000 * 10000  # a window boundary
paths = {n: os.path.join(tmp, f"{n}.jsonl") for n in ["rows", "late_sink", "late_update"]}


def kcat_produce(records):
    p = subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", "late", "-p", "0"],
                       input="".join(json.dumps(r) + "\n" for r in records).encode(), capture_output=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr


def read(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


JOB = """
[[job]]
name = "{name}"
topics = ["late"]
group_by = ["k"]
time = {{ field = "ts", format = "epoch_ms" }}
window = {{ type = "tumbling", size = "10s" }}
allowed_lateness = "0s"
idle_timeout = "1h"
aggregates = {{ n = "count()", s = "sum(v)" }}
sinks = ["rows"]
{extra}
"""
config = f"""
[http]
listen = "127.0.0.1:0"
[input.forward]
enabled = false
[kafka]
brokers = "{broker.bootstrap}"
[[sink]]
name = "rows"
plugin = "file"
path = "{paths['rows']}"
[[sink]]
name = "late_sink"
plugin = "file"
path = "{paths['late_sink']}"
[[sink]]
name = "late_update"
plugin = "file"
path = "{paths['late_update']}"
""" + JOB.format(name="drop", extra='late_policy = "drop"') \
    + JOB.format(name="sink", extra='late_sink = "late_sink"') \
    + JOB.format(name="update", extra='late_policy = "update"\nmax_lateness_update = "60s"\nlate_sink = "late_update"')

# Refused configs first.
for bad, want in [(JOB.format(name="x", extra='late_policy = "drop"\nlate_sink = "rows"'), "late_sink unused"),
                  (JOB.format(name="x", extra='late_policy = "update"').replace(
                      'type = "tumbling", size = "10s"', 'type = "session", gap = "10s"'), "session")]:
    path = os.path.join(tmp, "bad.toml")
    with open(path, "w") as f:
        f.write(config.split("[[job]]")[0] + bad)
    p = subprocess.run([SLUICE, "check", "-c", path], capture_output=True, text=True)
    t.ok(p.returncode != 0 and want in p.stderr and "late_policy" in p.stderr,
         f"sluice check refuses it: {p.stderr.strip().splitlines()[0] if p.stderr.strip() else p.stderr}")

s = Sluice(config)
JOBS = ["drop", "sink", "update"]
sent = []


def step(records):
    """Writes records and waits until every job has read all so far."""
    kcat_produce(records)
    sent.extend(records)
    for j in JOBS:
        s.wait_metric(f'sluice_job_records_total{{sluice_job="{j}"}}', lambda v: v >= len(sent), 30)
    # and the advance that follows each delivery has run: the watermark shows the newest record
    newest = max(r["ts"] for r in sent) / 1e3
    for j in JOBS:
        s.wait_metric(f'sluice_job_watermark_seconds{{sluice_job="{j}"}}', lambda v: v >= newest, 30)


def rec(k, at_s, v):
    return {"k": k, "ts": T0 + int(at_s * 1000), "v": v}


step([rec("a", 1, 1), rec("a", 2, 2), rec("b", 3, 10), rec("a", 4, 3), rec("b", 5, 20)])
step([rec("a", 25, 100)])                               # closes [0, 10s) and [10s, 20s)
LATE = [rec("a", 3, 1000), rec("a", 6, 2000), rec("c", 4, 5)]
step(LATE)                                              # late: [0, 10s) closed 15 s ago
step([rec("b", 45, 7)])                                 # the updated rows go out
TOO_LATE = [rec("a", 2, 9999)]
step([rec("b", 200, 8)])                                # [0, 10s) closed 190 s ago: past max_lateness_update
step(TOO_LATE)
step([rec("z", 300, 0)])


def reference(records):
    rows = {}
    for r in records:
        start = (r["ts"] - T0) // 10000 * 10000
        n, sm = rows.get((start, r["k"]), (0, 0))
        rows[(start, r["k"])] = (n + 1, sm + r["v"])
    return rows


def final_rows(job):
    """The last row of each id the job wrote: what a sink keeps."""
    last = {}
    for r in read(paths["rows"]):
        if r["job"] == job:
            last[r["id"]] = r
    return last


def start_of(row):
    """The row's window start in ms after T0."""
    at = datetime.fromisoformat(row["window_start"].replace("Z", "+00:00"))
    return round(at.timestamp() * 1000) - T0


def as_reference(rows):
    return {(start_of(r), r["k"]): (r["n"], r["s"]) for r in rows.values()}


on_time = [r for r in sent if r not in LATE and r not in TOO_LATE]
wait_for(lambda: all(len(final_rows(j)) >= len(reference(on_time)) - 1 for j in JOBS), 30, "the rows")

m = s.metrics()
def metric(name, job):
    return m.get(f'{name}{{sluice_job="{job}"}}', 0.0)


for j in ["drop", "sink"]:
    t.eq(as_reference(final_rows(j)), {k: v for k, v in reference(on_time).items() if k[0] < 300000},
         f"{j}: the rows are the on-time records' only")
    t.eq(metric("sluice_job_records_late_total", j), 4.0, f"{j}: the 4 late records are counted")
    key = f'sluice_job_partition_records_late_total{{sluice_job="{j}",topic="late",partition="0"}}'
    t.ok(wait_for(lambda: s.metric(key) == 4.0, 10, f"{j}'s late records by partition"),
         f"{j}: and counted by partition", s.metric(key))
    t.eq(metric("sluice_job_records_late_updated_total", j), 0.0, f"{j}: none updated a window")
late_sunk = read(paths["late_sink"])
t.eq(sorted((r["record"]["k"], r["record"]["v"]) for r in late_sunk) if late_sunk and "record" in late_sunk[0]
     else sorted((r.get("k"), r.get("v")) for r in late_sunk),
     sorted((r["k"], r["v"]) for r in LATE + TOO_LATE), "sink: late_sink has the 4 late records")

want = {k: v for k, v in reference(on_time + LATE).items() if k[0] < 300000}
got = as_reference(final_rows("update"))
t.eq(got, want, "update: the last row of each id equals the reference over all records within max_lateness_update")
a_rows = [r for r in read(paths["rows"]) if r["job"] == "update" and r["k"] == "a" and start_of(r) == 0]
t.eq([(r["n"], r["s"]) for r in a_rows], [(3, 6), (5, 3006)],
     "update: [0, 10s)'s row of a went out on time, then again with the late records")
t.eq(len({r["id"] for r in a_rows}), 1, "update: both under one id, so a sink keeps the corrected row")
t.eq(metric("sluice_job_records_late_updated_total", "update"), 3.0, "update: 3 late records updated a window")
t.eq(metric("sluice_job_records_late_total", "update"), 1.0, "update: the one past max_lateness_update is late")
t.eq([(r.get("record", r).get("k"), r.get("record", r).get("v")) for r in read(paths["late_update"])], [("a", 9999)],
     "update: and goes to its late_sink")
t.eq(s.stop(), 0, "sluice stops cleanly")
broker.stop()
t.done()
