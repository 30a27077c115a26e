"""Fault injection: a sink that blocks.  A jobs-only sluice reads a topic
that another sluice fills through its forward input; its job (1 s tumbling
windows on the records' `ts`, ten services) writes every window's rows to
a file sink and to the `flaky` test plugin (test/plugins/flaky.c) with
on_failure = "block":

  1. the flaky sink stalls (its `stall` file exists: writes wait without
     an answer).  Windows keep closing; once 64 batches wait, the job
     stops reading (sluice_job_paused = 1, consumer paused).  Then 40,000
     more records go into Kafka: the job reads none of them, and its
     resident memory does not grow with them (the bound is stated below);
  2. the stall ends but the sink fails every write (its `control` file):
     the rows run out of max_retries and, on_failure = "block", are
     retried without end: none dropped, none dead-lettered;
  3. the sink comes back: reading resumes, and every row of every window
     arrives in the flaky sink's file exactly once, equal to the file
     sink's and to an independent computation (helpers/job_reference.py).

Memory bound: while paused, the job holds at most 64 batches of rows and
what the consumer had fetched; librdkafka fetches nothing for a paused
partition.  The test states it as: the jobs process's VmRSS grows by less
than 2 MiB from the moment it paused to the end of the 40,000 records
(~10 MB of JSON: a fifth of their size), and its peak (VmHWM) stays
under 64 MiB."""
import json
import os
import sys

from harness import SLUICE, Broker, Sluice, Tap, high_watermarks, tempdir, wait_for
from job_reference import index_rows, mismatches, reference

t = Tap()
PLUGIN_DIR = os.environ.get("TEST_PLUGIN_DIR") or os.path.join(os.path.dirname(os.path.abspath(SLUICE)), "..",
                                                               "test", "plugins")
if not os.path.exists(os.path.join(PLUGIN_DIR, "flaky.so")):
    t.skip_all(f"no flaky.so in {PLUGIN_DIR} (build the tests)")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "kafka"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "forward"))
from fwdlib import rss_kib  # noqa: E402
from kafkatest import ForwardClient, sluice_config  # noqa: E402

tmp = tempdir("sluice-fault-slow-")
BASE = 1_700_000_000_000
SERVICES = ["svc%d" % i for i in range(10)]
EXTRA_WINDOWS, EXTRA_PER_SVC = 400, 10  # 40,000 records sent while the job is paused
PAD = "x" * 200  # the paused phase's records carry it: ~10 MB of JSON in all
RSS_GROWTH_KIB = 2 * 1024
RSS_PEAK_KIB = 64 * 1024
MAX_RETRIES = 2

stall = os.path.join(tmp, "stall")
down = os.path.join(tmp, "down")
out_slow, out_ref = os.path.join(tmp, "slow.jsonl"), os.path.join(tmp, "ref.jsonl")
open(stall, "w").close()

broker = Broker()
broker._cmd("topic slow 1")  # one partition: every record moves the watermark
ingest = Sluice(sluice_config(broker.bootstrap, '[[route]]\nmatch = "**"\ntopic = "slow"\n'))
jobs = Sluice(f"""plugin_dirs = ["{PLUGIN_DIR}"]
shutdown_timeout = "5s"
[http]
listen = "127.0.0.1:0"
[input.forward]
enabled = false
[kafka]
brokers = "{broker.bootstrap}"

[[job]]
name = "slow"
topics = ["slow"]
group_by = ["svc"]
time = {{ field = "ts", format = "epoch_ms" }}
window = {{ type = "tumbling", size = "1s" }}
aggregates = {{ n = "count()", s = "sum(v)" }}
commit_interval = "100ms"
sinks = ["ref", "slow"]

[[sink]]
name = "ref"
plugin = "file"
path = "{out_ref}"

[[sink]]
name = "slow"
plugin = "flaky"
path = "{out_slow}"
stall = "{stall}"
control = "{down}"
on_failure = "block"
max_retries = {MAX_RETRIES}
initial_backoff = "20ms"
max_backoff = "200ms"
""")
JOB = {"kind": "tumbling", "size": 1000, "lateness": 0, "keys": ["svc"], "where": lambda r: True,
       "aggs": {"n": ("count", None), "s": ("sum", "v")}}
sent = []
client = ForwardClient(ingest.port, timeout=20)
next_window = 0


def job_metric(name):
    return jobs.metric(f'{name}{{sluice_job="slow"}}')


def sink_metric(name):
    return jobs.metric(f'{name}{{sink="slow"}}')


def send_window(per_svc, pad=None):
    """The next window's records (per_svc a service), one acked chunk."""
    global next_window
    w = next_window
    next_window += 1
    recs = [dict({"ts": BASE + w * 1000 + j * (900 // per_svc) + k, "svc": svc, "v": w * 7 + j * 3 + k},
                 **({"pad": pad} if pad else {}))
            for j in range(per_svc) for k, svc in enumerate(SERVICES)]
    recs.sort(key=lambda r: r["ts"])
    chunk = f"w{w}"
    client.send_packed("app.slow", [(0, r) for r in recs], chunk=chunk)
    client.wait_ack(chunk, 20)
    sent.extend((r["ts"], r) for r in recs)


def read_rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


# ---- 1. the sink stalls: backpressure reaches the consumer ------------------------------
baseline = rss_kib(jobs.p.pid)
try:
    # Windows close one a round; each closing is one batch for the sinks.
    wait_for(lambda: send_window(2) or job_metric("sluice_job_paused") == 1, 120, "the job to pause")
    paused = True
except TimeoutError:
    paused = False
t.ok(paused, f"stalled sink: after {next_window} windows the job stops reading (sluice_job_paused = 1)",
     {k: v for k, v in jobs.metrics().items() if "slow" in k and "bucket" not in k})
t.ok(jobs.log.seen(r"warn +jobs: job slow: \d+ batches wait for the sinks: reading paused", 10),
     "the pause is logged")
t.eq(sink_metric("sluice_sink_rows_total"), 0.0, "the stalled sink has written nothing")
read_at_pause = job_metric("sluice_job_records_total")
held = high_watermarks(broker.bootstrap, "slow")
rss_paused = rss_kib(jobs.p.pid)
samples = [rss_paused]
for _ in range(EXTRA_WINDOWS):
    send_window(EXTRA_PER_SVC, PAD)
    if next_window % 20 == 0:
        samples.append(rss_kib(jobs.p.pid))
in_kafka = high_watermarks(broker.bootstrap, "slow")
extra = in_kafka - held
read = job_metric("sluice_job_records_total")
t.ok(extra == EXTRA_WINDOWS * EXTRA_PER_SVC * len(SERVICES) and read <= held,
     f"paused: {extra} more records reach Kafka and the job reads none of them (it read {read:.0f}, "
     f"{read_at_pause:.0f} at the pause; Kafka holds {in_kafka})")
t.eq(job_metric("sluice_job_paused"), 1.0, "still paused: the sink still stalls")
rss_end = rss_kib(jobs.p.pid)
peak = int(open(f"/proc/{jobs.p.pid}/status").read().split("VmHWM:")[1].split()[0])
size = sum(len(json.dumps(r, separators=(",", ":"))) for _, r in sent if "pad" in r)
print(f"# jobs process VmRSS: {baseline} KiB at start, {rss_paused} KiB at the pause, {rss_end} KiB after "
      f"{extra} more records ({size // 1024} KiB of JSON; max of {len(samples)} samples {max(samples)} KiB); "
      f"VmHWM {peak} KiB; "
      f"{job_metric('sluice_job_rows_pending'):.0f} rows pending", flush=True)
t.ok(max(samples + [rss_end]) - rss_paused < RSS_GROWTH_KIB,
     f"paused: VmRSS grows by {max(samples + [rss_end]) - rss_paused} KiB while {extra} records wait in Kafka "
     f"(bound {RSS_GROWTH_KIB} KiB)")
t.ok(peak < RSS_PEAK_KIB, f"VmHWM {peak} KiB stays under {RSS_PEAK_KIB} KiB")

# ---- 2. the stall ends, the sink fails: on_failure = block retries without end ----------
open(down, "w").close()
os.unlink(stall)
before = sink_metric("sluice_sink_retries_total")
try:
    wait_for(lambda: sink_metric("sluice_sink_retries_total") >= before + 3 * (MAX_RETRIES + 1), 30,
             "retries past max_retries")
    retried = True
except TimeoutError:
    retried = False
t.ok(retried and sink_metric("sluice_sink_rows_dropped_total") == 0
     and sink_metric("sluice_sink_rows_dead_lettered_total") == 0 and sink_metric("sluice_sink_rows_total") == 0,
     f"failing sink, on_failure = block: rows retried past max_retries = {MAX_RETRIES} without end, none dropped",
     {k: v for k, v in jobs.metrics().items() if 'sink="slow"' in k and "bucket" not in k})
t.eq(job_metric("sluice_job_paused"), 1.0, "the job stays paused while its sink fails")

# ---- 3. the sink is back: every row arrives ---------------------------------------------
os.unlink(down)
# A record far ahead closes every window sent.
client.send_packed("app.slow", [(0, {"ts": BASE + 10 ** 7, "svc": "sentinel", "v": 0})], chunk="end")
client.wait_ack("end", 20)
want, late = reference(JOB, sent)
try:
    wait_for(lambda: len(read_rows(out_slow)) >= len(want) and job_metric("sluice_job_rows_pending") == 0, 90,
             "every row in the flaky sink")
except TimeoutError:
    pass
t.eq(job_metric("sluice_job_paused"), 0.0, "the sink back: the job reads again (sluice_job_paused = 0)")
rows = read_rows(out_slow)
got = index_rows(JOB, rows)
ref_rows = read_rows(out_ref)
t.ok(len(rows) == len(want) and set(got) == set(want) and not mismatches("slow", want, got) and late == 0,
     f"every row arrives in the blocked sink exactly once: {len(rows)} rows of {next_window} windows, equal to the "
     f"reference's {len(want)}", mismatches("slow", want, got)[:3])
t.eq(sorted(r["id"] for r in rows), sorted(r["id"] for r in ref_rows), "the same rows as the file sink")
t.eq(sink_metric("sluice_sink_rows_dropped_total"), 0.0, "no row dropped")
client.close()
t.eq(jobs.stop(), 0, "the jobs sluice stops cleanly")
ingest.stop()
broker.stop()
t.done()
