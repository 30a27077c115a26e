"""The soak (test/soak/run.sh): sluice under sustained load for MINUTES,
its resident memory sampled every SAMPLE_SECONDS, and a verdict on whether
it stays flat.

One sluice runs both stages against the mock broker: the forward input
routes access-log records to a 3-partition topic, and a job (per service,
10 s tumbling windows on event time, count, avg and p99 of latency_ms,
distinct ids) reads them back and writes its rows to a file sink.  Every
second a new `sluice cat --generate RATE --shape access --ack` connection
sends the next RATE records (packed, 1,000 a chunk) and waits for every
ack; the next one starts on the next second (or at once when that one took
longer).  At the end the generator stops, Kafka's high-water marks must
equal the records acked, the job must have read them all, and sluice must
stop cleanly.

Flat: the samples after the warm-up (WARMUP_SECONDS, default a fifth of
the run, at most 60 s) are split in thirds; memory is flat when the median
VmRSS of the last third is within 5 % of the median of the first third.
Medians, not maxima: librdkafka's fetch and produce buffers make VmRSS
swing by several MiB from one sample to the next, which a leak's steady
climb outlasts and a single sample does not.  The figures (a line a minute, and the summary) go to stdout; the
exit code is 0 when every check passed."""
import os
import re
import subprocess
import sys
import time

from harness import SLUICE, SRCDIR, Broker, Sluice, high_watermarks, tempdir, wait_for

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import sluice_config  # noqa: E402

MINUTES = float(os.environ.get("MINUTES", "5"))
SAMPLE = float(os.environ.get("SAMPLE_SECONDS", "5"))
RATE = int(os.environ.get("RATE", "20000"))
WARMUP = float(os.environ.get("WARMUP_SECONDS", str(min(60.0, MINUTES * 60 / 5))))
TOLERANCE = 0.05
TOPIC = "soak"


def proc_figures(pid):
    """(VmRSS KiB, VmHWM KiB, CPU seconds of all threads)."""
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(re.search(r"VmRSS:\s+(\d+)", status).group(1)), int(re.search(r"VmHWM:\s+(\d+)", status).group(1)),
            (int(fields[11]) + int(fields[12])) / ticks)


def median(values):
    v = sorted(values)
    return (v[len(v) // 2] + v[(len(v) - 1) // 2]) / 2


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def main():
    tmp = tempdir("sluice-soak-")
    rows_path = os.path.join(tmp, "rows.jsonl")
    broker = Broker(topics=[f"{TOPIC}:3"])
    sl = Sluice(sluice_config(broker.bootstrap, f"""
[[route]]
match = "**"
topic = "{TOPIC}"
key = "service"

[[job]]
name = "per_service"
topics = ["{TOPIC}"]
group_by = ["service"]
window = {{ type = "tumbling", size = "10s" }}
allowed_lateness = "2s"
aggregates = {{ n = "count()", avg_ms = "avg(latency_ms)", p99_ms = "percentile(latency_ms, 0.99)", ids = "count_distinct(id)" }}
sinks = ["rows"]

[[sink]]
name = "rows"
plugin = "file"
path = "{rows_path}"
"""))
    print(f"soak: {MINUTES:g} min at {RATE} records/s, RSS every {SAMPLE:g} s, warm-up {WARMUP:g} s; "
          f"sluice pid {sl.p.pid}, broker {broker.bootstrap}", flush=True)

    t0 = time.monotonic()
    end = t0 + MINUTES * 60
    next_sample = t0
    next_batch = t0
    sent = 0
    failures = []
    samples = []  # (seconds, VmRSS KiB)
    rss0, _, cpu0 = proc_figures(sl.p.pid)
    while True:
        now = time.monotonic()
        if now >= next_sample:
            rss, hwm, cpu = proc_figures(sl.p.pid)
            samples.append((now - t0, rss))
            if len(samples) % max(1, int(60 / SAMPLE)) == 1:
                print(f"  {now - t0:6.0f} s  VmRSS {mib(rss):>10}  VmHWM {mib(hwm):>10}  records acked {sent:>10}  "
                      f"CPU {cpu - cpu0:7.1f} s", flush=True)
            next_sample += SAMPLE
        if now >= end:
            break
        if now >= next_batch:
            r = subprocess.run([SLUICE, "cat", "-p", str(sl.port), "--mode", "packed", "--batch", "1000", "--ack",
                                "--generate", str(RATE), "--shape", "access", "--first", str(sent + 1), "app.soak"],
                               capture_output=True, timeout=120)
            if r.returncode != 0:
                failures.append(f"sluice cat at {now - t0:.0f} s: {r.stderr.decode().strip()}")
            else:
                sent += RATE
            next_batch = max(next_batch + 1.0, time.monotonic() - 1.0)
        time.sleep(max(0.0, min(next_batch, next_sample, end) - time.monotonic()))  # pacing the load, not a wait

    elapsed = time.monotonic() - t0
    rss_end, hwm_end, cpu_end = proc_figures(sl.p.pid)
    checks = []
    in_kafka = high_watermarks(broker.bootstrap, TOPIC)
    checks.append((not failures and in_kafka == sent, f"every one of the {sent} records acked is in Kafka "
                   f"(high-water marks {in_kafka}){'; ' + failures[0] if failures else ''}"))
    try:
        wait_for(lambda: sl.metric('sluice_job_records_total{sluice_job="per_service"}') >= sent, 120, "the job to catch up")
    except TimeoutError:
        pass
    read = sl.metric('sluice_job_records_total{sluice_job="per_service"}')
    checks.append((read == sent, f"the job read all of them ({read:.0f})"))
    with open(rows_path) as f:
        rows = sum(1 for _ in f)

    after = [rss for t, rss in samples if t >= WARMUP]
    third = len(after) // 3
    if third < 2:
        checks.append((False, f"too few samples after the warm-up to judge ({len(after)}): run longer"))
    else:
        first, last = median(after[:third]), median(after[-third:])
        growth = (last - first) / first
        checks.append((growth <= TOLERANCE, f"VmRSS flat after the warm-up: median of the last third {mib(last)} "
                       f"vs the first third {mib(first)} ({growth * 100:+.1f} %, tolerance {TOLERANCE * 100:.0f} %); "
                       f"highest {mib(max(after[-third:]))} vs {mib(max(after[:third]))}"))
    rc = sl.stop()
    checks.append((rc == 0, f"sluice stops cleanly (exit {rc})"))
    broker.stop()

    print(f"soak: {elapsed:.0f} s, {sent} records acked ({sent / elapsed:.0f}/s), {rows} job rows; "
          f"sluice CPU {cpu_end - cpu0:.1f} s ({(cpu_end - cpu0) / max(sent, 1) * 1e6:.2f} us/record)")
    print(f"soak: VmRSS {mib(rss0)} at start, {mib(min(after) if after else 0)}-{mib(max(after) if after else 0)} "
          f"after the warm-up ({len(after)} samples), {mib(rss_end)} at the end; VmHWM {mib(hwm_end)}")
    print("soak: VmRSS samples (MiB, every %g s): %s" % (SAMPLE, " ".join(f"{rss / 1024:.1f}" for _, rss in samples)))
    for ok, what in checks:
        print(f"{'ok' if ok else 'FAILED'}: {what}")
    sys.exit(0 if all(ok for ok, _ in checks) else 1)


if __name__ == "__main__":
    main()
