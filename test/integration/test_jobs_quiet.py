"""Idleness that never drops data, and the last window of a quiet stream.

1. A lagging partition holds the watermark: partition 0 of a topic holds a
   backlog of old records that the job can only fetch slowly (1 KiB per
   fetch, every broker answer delayed past idle_timeout), while partition 1
   has a few records far ahead in event time, read at once.  Between
   fetches partition 0 is silent for longer than idle_timeout, but it has
   records unread (its consumer lag), so it never counts as idle: no record
   of it is late, and every window equals the count the test computes.
2. A partition far ahead is paused: with max_watermark_drift, a partition
   whose records run far ahead in event time is not fetched while the
   slow one catches up (sluice_job_paused_partitions shows it), then
   resumed; every record is aggregated, none late.
3. An offset committed without a checkpoint watermark (by kcat's group
   consumer, as by another tool or once the broker expired the metadata):
   the job starts from it, logs it, and takes the windows before its
   first record's as emitted: a record of such a window after it is late,
   not the start of a partial row.
4. A stream that stops: the last window is emitted once the wall clock
   passes its end + allowed_lateness + idle_timeout, not before, and
   within a few ticks after."""
import json
import math
import os
import subprocess
import sys
import time

from harness import SRCDIR, Broker, Sluice, Tap, tempdir, wait_for

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import ForwardClient, event_time  # noqa: E402

t = Tap()
tmp = tempdir("sluice-jobs-quiet-")


def kcat_produce(bootstrap, topic, partition, records):
    p = subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-p", str(partition)],
                       input="".join(json.dumps(r) + "\n" for r in records).encode(), capture_output=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr


def read_rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def job_metric(s, name, job):
    return s.metric(f'{name}{{sluice_job="{job}"}}')


def job_sluice(name, job, rows_path, forward=False, head=""):
    """A sluice running one job `name` (its options in `job`) into a file
    sink at rows_path; the forward input on a free port when `forward`."""
    return Sluice(f"""
[http]
listen = "127.0.0.1:0"
[input.forward]
{'listen = "127.0.0.1:0"' if forward else "enabled = false"}
[kafka]
brokers = "{broker.bootstrap}"
[kafka.properties]
"reconnect.backoff.max.ms" = "500"
{head}
[[job]]
name = "{name}"
aggregates = {{ n = "count()" }}
sinks = ["rows"]
{job}
[[sink]]
name = "rows"
plugin = "file"
path = "{rows_path}"
""")


# ---- 1. a lagging partition is not idle ---------------------------------------------
broker = Broker()
broker._cmd("topic backlog 2")
T0 = 1_700_000_000_000
OLD = [{"ts": T0 + i * 100, "p": 0, "i": i} for i in range(150)]        # 15 s of event time
AHEAD = [{"ts": T0 + 600_000 + i, "p": 1, "i": i} for i in range(10)]   # 10 minutes ahead
kcat_produce(broker.bootstrap, "backlog", 0, OLD)
kcat_produce(broker.bootstrap, "backlog", 1, AHEAD)
broker.rtt(1200)  # every answer, fetches included, comes 1.2 s late: longer than idle_timeout

rows_path = os.path.join(tmp, "lag-rows.jsonl")
s = job_sluice("lagging", """
topics = ["backlog"]
group_by = ["p"]
time = { field = "ts", format = "epoch_ms" }
window = { type = "tumbling", size = "5s" }
allowed_lateness = "0s"
idle_timeout = "500ms"
properties = { "max.partition.fetch.bytes" = "1024" }
""", rows_path)
n_all = len(OLD) + len(AHEAD)
wait_for(lambda: job_metric(s, "sluice_job_records_total", "lagging") >= n_all, 120,
         "the job to read the backlog")
late = job_metric(s, "sluice_job_records_late_total", "lagging")
t.eq(late, 0.0, "no record of the lagging partition is late, though it was silent past idle_timeout between fetches")
fetches = s.metric('sluice_kafka_consumed_total')
want = {}
for r in OLD:
    start = r["ts"] // 5000 * 5000
    want[start] = want.get(start, 0) + 1
# The backlog's windows close once partition 1 (far ahead) decides alone,
# after partition 0 has been read out and gone idle.
wait_for(lambda: len([r for r in read_rows(rows_path) if r["p"] == 0]) >= len(want), 30,
         "the backlog's windows")
got = {}
for r in read_rows(rows_path):
    if r["p"] == 0:
        start = int(time.mktime(time.strptime(r["window_start"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone) * 1000
        got[start] = got.get(start, 0) + r["n"]
t.eq(got, want, "every window of the lagging partition counts all of its records")
t.eq(s.stop(), 0, "sluice stops cleanly")

# ---- 2. a partition far ahead is paused ----------------------------------------------
broker._cmd("topic drift 2")
SLOW = [{"ts": T0 + i * 100, "p": 0, "i": i} for i in range(150)]       # 15 s of event time
FAST = [{"ts": T0 + i * 1000, "p": 1, "i": i} for i in range(150)]      # 150 s in as many records
kcat_produce(broker.bootstrap, "drift", 0, SLOW)
kcat_produce(broker.bootstrap, "drift", 1, FAST)
rows_path = os.path.join(tmp, "drift-rows.jsonl")
s = job_sluice("drift", """
topics = ["drift"]
group_by = ["p"]
time = { field = "ts", format = "epoch_ms" }
window = { type = "tumbling", size = "5s" }
allowed_lateness = "0s"
idle_timeout = "2s"
max_watermark_drift = "5s"
properties = { "max.partition.fetch.bytes" = "1024" }
""", rows_path)
most_paused = [0.0]


def read_all():
    most_paused[0] = max(most_paused[0], s.metric('sluice_job_paused_partitions{sluice_job="drift"}'))
    return s.metric('sluice_job_records_total{sluice_job="drift"}') >= len(SLOW) + len(FAST)


wait_for(read_all, 120, "the job to read both partitions")
t.eq(most_paused[0], 1.0, "the partition running ahead was paused while the slow one caught up")
t.ok(s.log.seen(r"job drift: partition drift/1 paused: \d+ ms ahead of the slowest", 1) and
     s.log.seen(r"job drift: partition drift/1 resumed", 10), "its pause and resume are logged")
t.eq(s.metric('sluice_job_records_late_total{sluice_job="drift"}'), 0.0, "no record of either partition is late")
wait_for(lambda: s.metric('sluice_job_paused_partitions{sluice_job="drift"}') == 0, 30, "the resume")
t.eq(s.stop(), 0, "sluice stops cleanly")
broker.rtt(0)

# ---- 3. a committed offset without a checkpoint watermark ------------------------------
broker._cmd("topic nometa 1")
OLDER = [{"ts": T0 + 1000, "k": "a"}, {"ts": T0 + 2000, "k": "a"}]          # [0, 10s), read by kcat
AFTER = [{"ts": T0 + 25000, "k": "a"}, {"ts": T0 + 3000, "k": "a"}, {"ts": T0 + 26000, "k": "a"}]
kcat_produce(broker.bootstrap, "nometa", 0, OLDER + AFTER)
p = subprocess.run(["kcat", "-C", "-b", broker.bootstrap, "-G", "sluice-nometa", "-X", "auto.offset.reset=earliest",
                    "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000",
                    "-c", str(len(OLDER)), "-e", "-q", "nometa"], capture_output=True, timeout=60)
t.eq(len(p.stdout.splitlines()), len(OLDER), "kcat read the first records in the job's group (and committed)")
rows_path = os.path.join(tmp, "nometa-rows.jsonl")
s = job_sluice("nometa", """
topics = ["nometa"]
group_by = ["k"]
time = { field = "ts", format = "epoch_ms" }
window = { type = "tumbling", size = "10s" }
allowed_lateness = "1s"
idle_timeout = "1h"
""", rows_path)
t.ok(s.log.seen(r"job nometa: partition nometa/0: committed offset 2 has no checkpoint watermark: windows before "
                r"the first record's .* are taken as emitted", 60), "the fallback is logged, with the offset")
s.wait_metric('sluice_job_records_total{sluice_job="nometa"}', lambda v: v >= len(AFTER), 30)
t.eq(s.metric('sluice_job_records_late_total{sluice_job="nometa"}'), 1.0,
     "the record of [0, 10s) after the committed offset is late")
t.eq(s.stop(), 0, "sluice stops cleanly")
t.eq([r for r in read_rows(rows_path)
      if r["window_start"] == time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(T0 // 1000))], [],
     "no partial row of [0, 10s) is emitted")

# ---- 4. the last window of a quiet stream -----------------------------------------------
broker._cmd("topic quiet 2")
rows_path = os.path.join(tmp, "quiet-rows.jsonl")
SIZE_S, LATENESS_S, IDLE_S = 2, 1, 2
s = job_sluice("quiet", f"""topics = ["quiet"]
group_by = ["svc"]
window = {{ type = "tumbling", size = "{SIZE_S}s" }}
allowed_lateness = "{LATENESS_S}s"
idle_timeout = "{IDLE_S}s"
""", rows_path, forward=True, head="""
[[route]]
match = "q.**"
topic = "quiet"
key = "svc"
""")
wait_for(lambda: s.metric('sluice_job_assigned_partitions{sluice_job="quiet"}') == 2, 30, "the job's assignment")
c = ForwardClient(s.port)
now = time.time()
sec = int(now)
recs = [(event_time(sec, i * 1000), {"svc": ["a", "b"][i % 2], "i": i}) for i in range(40)]
c.send_packed("q.app", recs, chunk="q1")
c.wait_ack("q1")
last_end = math.ceil((sec + 0.001) / SIZE_S) * SIZE_S  # the window of the records ends here (s)
bound = last_end + LATENESS_S + IDLE_S


def last_rows():
    return [r for r in read_rows(rows_path) if r["window_end"].startswith(
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(last_end)))]


wait_for(lambda: len(last_rows()) == 2, bound - time.time() + 15, "the last window's rows")
arrived = time.time()
rows = last_rows()
t.eq(sorted((r["svc"], r["n"]) for r in rows), [("a", 20), ("b", 20)],
     "the last window of the stream is emitted with all of its records")
t.ok(arrived >= bound, f"not before its end + allowed_lateness + idle_timeout "
     f"({arrived - bound:+.2f} s from that bound)")
t.ok(arrived <= bound + 3, f"and within 3 s of it ({arrived - bound:.2f} s after)")
t.eq(job_metric(s, "sluice_job_records_late_total", "quiet"), 0.0, "no record was late")
c.close()
t.eq(s.stop(), 0, "sluice stops cleanly")
broker.stop()
t.done()
