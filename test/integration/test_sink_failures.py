"""The sink host against a sink that fails on command (test/plugins/flaky.c,
loaded from plugin_dirs): retries with backoff, on_failure = drop and
dead_letter for rows the sink refuses, on_failure = block holding the job's
commits while the sink is down (the proof that offsets are committed only
after the sinks confirmed: SIGKILL while blocked, restart, every window's
row arrives whole), and a sink that never answers at shutdown.  Records go
in through sluice's forward input and a route; rows are checked against a
computation of their own (this file), the flaky output files, the metrics
and the dead-letter topic read back with kcat."""
import datetime
import json
import os
import re
import signal
import time

from harness import SLUICE, Broker, Sluice, Tap, kcat_consume, sluice_cat, tempdir, wait_for

t = Tap()
tmp = tempdir("sluice-sink-failures-")
PLUGIN_DIR = os.environ.get("TEST_PLUGIN_DIR") or os.path.join(os.path.dirname(os.path.abspath(SLUICE)), "..",
                                                               "test", "plugins")
if not os.path.exists(os.path.join(PLUGIN_DIR, "flaky.so")):
    t.skip_all(f"no flaky.so in {PLUGIN_DIR} (build the tests: ninja -C build)")

broker = Broker()
for topic in ("fail", "fail.dlq", "fail.gone", "blk", "hang"):
    broker._cmd(f"topic {topic} 1")  # one partition: offsets are the order records were sent in

BASE = 1_700_000_000_000  # a multiple of the 10 s window
WIN = 10_000


def rfc3339(ms):
    d = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def records(windows, services, per=3, seed=0):
    """`per` records per (window, service), in event-time order."""
    out = []
    for w in windows:
        for i in range(per):
            for k, svc in enumerate(services):
                out.append({"ts": BASE + w * WIN + i * 1000 + k, "svc": svc, "v": seed + w * 100 + i * 10 + k})
    return sorted(out, key=lambda r: r["ts"])


def reference(job, recs, closed_before):
    """{(job, window_start, svc): {"n", "s", "window_end"}} for the windows
    starting before `closed_before` (the ones the watermark closed)."""
    rows = {}
    for r in recs:
        start = (r["ts"] - BASE) // WIN * WIN + BASE
        if start >= closed_before:
            continue
        row = rows.setdefault((job, rfc3339(start), r["svc"]), {"window_end": rfc3339(start + WIN), "n": 0, "s": 0})
        row["n"] += 1
        row["s"] += r["v"]
    return rows


def read_rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def key_of(row):
    return (row["job"], row["window_start"], row["svc"])


def fields_of(row):
    return {"window_end": row["window_end"], "n": row["n"], "s": row["s"]}


def check_rows(rows, want, what):
    """Every row once, each equal to its reference row."""
    keys = [key_of(r) for r in rows]
    dups = sorted({k for k in keys if keys.count(k) > 1})
    bad = [(key_of(r), fields_of(r), want.get(key_of(r))) for r in rows if want.get(key_of(r)) != fields_of(r)]
    missing = sorted(k for k in want if k not in keys)
    t.ok(not dups and not bad and not missing,
         f"{what}: every row exactly once, whole ({len(rows)} written, {len(want)} expected)",
         f"duplicated: {dups[:3]}\nwrong: {bad[:3]}\nmissing: {missing[:3]}")


def by_id_sorted(rows):
    return sorted(rows, key=lambda r: r["id"])


def send(s, tag, recs):
    r = sluice_cat(s.port, tag, recs)
    assert r.returncode == 0, r.stderr


def config(job, sinks, extra_top="", job_extra=""):
    return f"""plugin_dirs = ["{PLUGIN_DIR}"]
{extra_top}
[http]
listen = "127.0.0.1:0"
[input.forward]
listen = "127.0.0.1:0"
[kafka]
brokers = "{broker.bootstrap}"
[[route]]
match = "**"
topic = "{job}"

[[job]]
name = "{job}"
topics = ["{job}"]
group_by = ["svc"]
time = {{ field = "ts", format = "epoch_ms" }}
window = {{ type = "tumbling", size = "10s" }}
commit_interval = "100ms"
aggregates = {{ n = "count()", s = "sum(v)" }}
sinks = [{", ".join('"%s"' % s for s in sinks)}]
{job_extra}
[job.properties]
"session.timeout.ms" = "6000"     # a SIGKILLed member leaves the group within 6 s
"heartbeat.interval.ms" = "500"
"""


def dump(s, what):
    """Context for a failed wait."""
    print(f"# {what}: log tail:\n# " + s.log.text()[-2500:].replace("\n", "\n# "))
    print("# " + repr({k: v for k, v in s.metrics().items() if ("sink" in k or "job" in k) and "_bucket" not in k}))


def metric_of(s, name, **labels):
    return s.metric(name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}")


# ---- retries, drop and dead letters: one job, four sinks -------------------------------
# retry: the first 3 writes fail; drop and dead: rows of svc "poison" are
# refused for good; gone: always down, each row given up after one retry.
POISON = '"svc":"poison"'
out_retry, out_drop, out_dead, out_gone = (os.path.join(tmp, n + ".jsonl") for n in ("retry", "drop", "dead", "gone"))
always_down = os.path.join(tmp, "always-down")
open(always_down, "w").close()
cfg = config("fail", ["retry", "drop", "dead", "gone"]) + f"""
[[sink]]
name = "retry"
plugin = "flaky"
path = "{out_retry}"
fail_first = 3
initial_backoff = "10ms"
max_backoff = "40ms"

[[sink]]
name = "drop"
plugin = "flaky"
path = "{out_drop}"
fatal_match = '{POISON}'
on_failure = "drop"
max_retries = 1

[[sink]]
name = "dead"
plugin = "flaky"
path = "{out_dead}"
fatal_match = '{POISON}'
on_failure = "dead_letter"
dead_letter_topic = "fail.dlq"

[[sink]]
name = "gone"
plugin = "flaky"
path = "{out_gone}"
control = "{always_down}"
initial_backoff = "10ms"
on_failure = "dead_letter"
dead_letter_topic = "fail.gone"
max_retries = 1
"""
s = Sluice(cfg)
recs = (records([0, 2], ["a", "b", "c"]) + records([1, 3], ["a", "b", "c", "poison"], seed=7))
recs.sort(key=lambda r: r["ts"])
closer = {"ts": BASE + 5 * WIN, "svc": "a", "v": 0}  # closes windows 0-3
send(s, "app.fail", recs + [closer])
want = reference("fail", recs, BASE + 4 * WIN)
n_poison = sum(1 for k in want if k[2] == "poison")
try:
    wait_for(lambda: metric_of(s, "sluice_sink_rows_total", sink="retry") == len(want)
             and metric_of(s, "sluice_sink_rows_dropped_total", sink="drop") == n_poison
             and metric_of(s, "sluice_sink_rows_dead_lettered_total", sink="dead") == n_poison
             and metric_of(s, "sluice_sink_rows_dead_lettered_total", sink="gone") == len(want)
             and metric_of(s, "sluice_job_rows_pending", sluice_job="fail") == 0, 40, "every sink to be done")
except TimeoutError:
    dump(s, "retries, drop, dead letters")
    raise

rows_retry = read_rows(out_retry)
check_rows(rows_retry, want, "fail_first = 3")
retries = metric_of(s, "sluice_sink_retries_total", sink="retry")
err_retry = metric_of(s, "sluice_sink_errors_total", sink="retry", kind="retry")
t.ok(retries > 0 and err_retry == retries,
     "retried rows are counted: sluice_sink_retries_total = sluice_sink_errors_total{kind=\"retry\"} > 0",
     f"retries {retries}, errors {err_retry}")
t.eq(metric_of(s, "sluice_sink_flaky_failed_writes_total", sink="retry"), 3.0,
     "exactly the first 3 plugin writes failed (the plugin's own counter, labelled by sink)")
t.eq(metric_of(s, "sluice_sink_errors_total", sink="retry", kind="fatal"), 0.0, "no fatal error on the retry sink")
t.eq(metric_of(s, "sluice_sink_up", sink="retry"), 1.0, "sluice_sink_up is 1 again after the retries")
t.ok(s.log.seen(r"sink:flaky:retry: \d+ rows not written \(retry 1 in \d+ ms\): flaky: fail_first", 5),
     "the retry is logged with the plugin's message", s.log.text()[-1500:])

ids = {key_of(r): r["id"] for r in rows_retry}
poison_ids = sorted(ids[k] for k in want if k[2] == "poison")
clean = {k: v for k, v in want.items() if k[2] != "poison"}

rows_drop = read_rows(out_drop)
check_rows(rows_drop, clean, "on_failure = drop: the other rows")
t.eq(metric_of(s, "sluice_sink_rows_dropped_total", sink="drop"), float(n_poison),
     f"the {n_poison} rows matching fatal_match are dropped and counted")
t.eq(metric_of(s, "sluice_sink_errors_total", sink="drop", kind="fatal"), float(n_poison),
     "and counted as fatal errors")
logged = sorted(re.findall(r"sink:flaky:drop: row ([0-9a-f]{16}) of job fail dropped: flaky: the row matches "
                           r"fatal_match", s.log.text()))
t.eq(logged, poison_ids, "each dropped row is logged with its id, its job and the plugin's message")

rows_dead = read_rows(out_dead)
check_rows(rows_dead, clean, "on_failure = dead_letter: the other rows")
t.eq(metric_of(s, "sluice_sink_rows_dead_lettered_total", sink="dead"), float(n_poison),
     "the rows matching fatal_match are counted as dead-lettered")
msgs = kcat_consume(broker.bootstrap, "fail.dlq", n_poison)
by_id = {r["id"]: r for r in rows_retry}
good = []
for m in msgs:
    value = json.loads(m["value"])
    headers = dict(h.split("=", 1) for h in m["headers"].split(",") if "=" in h)
    good.append(m["key"] == value.get("id") and value == by_id.get(m["key"])
                and headers.get("sluice.error") == "flaky: the row matches fatal_match"
                and headers.get("sluice.sink") == "dead" and headers.get("sluice.job") == "fail")
t.ok(len(msgs) == n_poison and all(good) and sorted(m["key"] for m in msgs) == poison_ids,
     "the refused rows are in the dead-letter topic: key = the row id, value = the row's JSON, headers "
     "sluice.error, sluice.sink and sluice.job", msgs)
rows_gone = kcat_consume(broker.bootstrap, "fail.gone", len(want))
t.eq(read_rows(out_gone), [], "a sink that is always down writes nothing")
t.eq(metric_of(s, "sluice_sink_errors_total", sink="gone", kind="retry"), 2.0 * len(want),
     "max_retries = 1: each row fails twice (the first write and one retry)")
t.eq(metric_of(s, "sluice_sink_retries_total", sink="gone"), float(len(want)), "each row is retried once")
t.ok(sorted(json.loads(m["value"])["id"] for m in rows_gone) == sorted(ids.values())
     and all(f"sluice.error=flaky: down while {always_down} exists" in m["headers"] for m in rows_gone),
     "then dead-lettered, with the plugin's retryable error in sluice.error", rows_gone[:2])
t.eq(metric_of(s, "sluice_sink_up", sink="gone"), 0.0, "sluice_sink_up is 0 for the sink that is down")
try:
    s.wait_metric('sluice_job_checkpoint_watermark_seconds{sluice_job="fail"}', lambda v: v >= (BASE + 4 * WIN) / 1e3)
    committed = True
except TimeoutError:
    committed = False
t.ok(committed, "dropped and dead-lettered rows count as done: the job commits past their windows")
t.eq(s.stop(), 0, "stops cleanly")

# ---- on_failure = block: a sink that is down holds the commits ----------------------
# Two sinks: "down" fails while the control file exists; "mirror" always
# works, so the rows it writes while "down" is down show what "down" must
# write after the restart.
ctl = os.path.join(tmp, "down")
out_down, out_mirror = os.path.join(tmp, "down.jsonl"), os.path.join(tmp, "mirror.jsonl")
cfg = config("blk", ["down", "mirror"]) + f"""
[[sink]]
name = "down"
plugin = "flaky"
path = "{out_down}"
control = "{ctl}"
initial_backoff = "20ms"
max_backoff = "100ms"

[[sink]]
name = "mirror"
plugin = "flaky"
path = "{out_mirror}"
"""
s = Sluice(cfg)
phase1 = records([0], ["a", "b"])
first_w1 = {"ts": BASE + WIN, "svc": "a", "v": 1000}  # opens window 1, closes window 0
k0 = len(phase1)  # the offset of first_w1
send(s, "app.blk", phase1 + [first_w1])
w0_end = (BASE + WIN) / 1e3
try:
    s.wait_metric('sluice_job_checkpoint_watermark_seconds{sluice_job="blk"}', lambda v: v == w0_end, 30)
except TimeoutError:
    dump(s, "window 0 committed")
    raise
t.eq(len(read_rows(out_down)), 2, "window 0 is written and committed while the sink is up")

open(ctl, "w").close()  # the sink goes down
phase2 = records([1, 2], ["a", "b"], seed=3)
send(s, "app.blk", phase2 + [{"ts": BASE + 3 * WIN, "svc": "a", "v": 0}])  # closes windows 1 and 2
all_blk = phase1 + [first_w1] + phase2
want_blk = reference("blk", all_blk, BASE + 3 * WIN)
n_blocked = len(want_blk) - 2
s.wait_metric('sluice_sink_rows_total{sink="mirror"}', lambda v: v == len(want_blk), 30)
s.wait_metric('sluice_job_rows_pending{sluice_job="blk"}', lambda v: v == n_blocked)
s.wait_metric('sluice_sink_up{sink="down"}', lambda v: v == 0)
errs = metric_of(s, "sluice_sink_errors_total", sink="down", kind="retry")
# Several retries and commit intervals (100 ms) go by.
s.wait_metric('sluice_sink_errors_total{sink="down",kind="retry"}', lambda v: v >= errs + 3 * n_blocked, 20)
t.eq(metric_of(s, "sluice_job_rows_pending", sluice_job="blk"), float(n_blocked),
     "while the sink is down, its rows stay pending (on_failure = block retries without end)")
# The checkpoint watermark may creep up to just before window 1's end (no
# window ends in between), never past it.
t.ok(metric_of(s, "sluice_job_checkpoint_watermark_seconds", sluice_job="blk") < (BASE + 2 * WIN) / 1e3,
     "the checkpoint watermark committed does not cover window 1",
     metric_of(s, "sluice_job_checkpoint_watermark_seconds", sluice_job="blk"))
t.eq(metric_of(s, "sluice_sink_rows_total", sink="down"), 2.0, "the down sink wrote nothing more")
t.ok(s.log.seen(r"sink:flaky:down: \d+ rows not written \(retry \d+ in \d+ ms\): flaky: down while", 5),
     "the failing sink's retries are logged")
mirror_before = read_rows(out_mirror)
s.kill()  # SIGKILL while blocked
os.unlink(ctl)  # and the sink is up again

s = Sluice(cfg)
try:
    m = s.log.wait(r"job blk: partition blk/0 assigned at committed offset (\d+)", 30)
except (TimeoutError, EOFError):
    dump(s, "restart")
    raise
t.eq(int(m.group(1)), k0, "after the SIGKILL the group resumes at the first record of window 1 (not past the "
     "windows the sink did not confirm)")
try:
    s.wait_metric('sluice_sink_rows_total{sink="down"}', lambda v: v == n_blocked, 30)
    s.wait_metric('sluice_job_rows_pending{sluice_job="blk"}', lambda v: v == 0)
except TimeoutError:
    dump(s, "rows after the restart")
    raise
rows_down = read_rows(out_down)
check_rows(rows_down, want_blk, "block, SIGKILL, restart: the down sink")
blocked_rows = [r for r in mirror_before if r["window_start"] != rfc3339(BASE)]
t.eq(by_id_sorted(rows_down[2:]), by_id_sorted(blocked_rows),
     "the rows written after the restart are the rows the other sink wrote before the crash: same ids, same values")
mirror_after = read_rows(out_mirror)
t.eq(by_id_sorted(mirror_after[len(mirror_before):]), by_id_sorted(blocked_rows),
     "the working sink gets windows 1 and 2 again (same ids, so they overwrite), and window 0 not again")
t.eq(s.stop(), 0, "stops cleanly")

# ---- a sink that never answers, at shutdown ------------------------------------------
out_hang = os.path.join(tmp, "hang.jsonl")
sink_hang = f"""
[[sink]]
name = "hung"
plugin = "flaky"
path = "{out_hang}"
hang = true
"""
cfg = config("hang", ["hung"], extra_top='shutdown_timeout = "2s"') + sink_hang
s = Sluice(cfg)
recs_hang = records([0, 1], ["a", "b", "c"])
send(s, "app.hang", recs_hang + [{"ts": BASE + 2 * WIN, "svc": "a", "v": 0}])
want_hang = reference("hang", recs_hang, BASE + 2 * WIN)
try:
    s.wait_metric('sluice_job_rows_pending{sluice_job="hang"}', lambda v: v == len(want_hang), 30)
except TimeoutError:
    dump(s, "hung rows")
    raise
t.eq(metric_of(s, "sluice_sink_queue_rows", sink="hung"), float(len(want_hang)), "the hung sink holds every row")
began = time.monotonic()
code = s.stop(signal.SIGTERM, timeout=20)
took = time.monotonic() - began
t.eq(code, 1, "SIGTERM with a hung sink: exit 1")
t.ok(1.5 <= took < 8, f"it ends after shutdown_timeout = 2s ({took:.1f} s)")
t.ok(s.log.seen(rf"drain timed out: jobs: {len(want_hang)} rows wait for their sinks", 5),
     "the log names the jobs stage's unfinished rows", s.log.text()[-1500:])
t.eq(read_rows(out_hang), [], "nothing was written")

s = Sluice(cfg.replace("hang = true", "hang = false"))
try:
    s.wait_metric('sluice_sink_rows_total{sink="hung"}', lambda v: v == len(want_hang), 30)
except TimeoutError:
    dump(s, "after the hang")
    raise
check_rows(read_rows(out_hang), want_hang, "restarted with hang = false: the windows are emitted again")
t.eq(s.stop(), 0, "stops cleanly")

broker.stop()
t.done()
