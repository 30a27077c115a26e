"""Heap allocations per record on the ingest path, counted in the running
agent by an LD_PRELOAD counter (test/helpers/alloc_count.c) that tells
sluice's own calls from librdkafka's: after a warm-up, 100,000 records sent
as PackedForward chunks of 1,000 with acks must cost sluice's own code
(decoding, routing, encoding, acks) well under one allocation per hundred
records -- what it allocates is per message, never per record or per
value.  librdkafka's own per-record allocations (its message copy and
header list) are reported beside it."""
import os
import signal
import sys

from harness import SLUICE, SRCDIR, Broker, Sluice, Tap, tempdir, wait_for

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import sluice_config  # noqa: E402

import subprocess  # noqa: E402

t = Tap()
lib = os.environ.get("ALLOC_COUNT")
if not lib or not os.path.exists(lib):
    t.skip_all("the allocation counter library is not built")

N = 100000
out = os.path.join(tempdir(), "counts")
broker = Broker(topics=["alloc:3"])
s = Sluice(sluice_config(broker.bootstrap, '[[route]]\nmatch = "**"\ntopic = "alloc"\ntag_key = "tag"\n'),
           extra_env={"LD_PRELOAD": lib, "ALLOC_COUNT_OUT": out})


def send(n, tag):
    return subprocess.run([SLUICE, "cat", "-p", str(s.port), "--mode", "packed", "--batch", "1000", "--ack",
                           "--generate", str(n), "--size", "60", tag], capture_output=True, timeout=120)


def counts():
    if os.path.exists(out):
        os.unlink(out)
    s.p.send_signal(signal.SIGUSR2)
    wait_for(lambda: os.path.exists(out) and open(out).read().endswith("\n"), 10, "the counter's dump")
    f = open(out).read().split()
    return {f[i]: int(f[i + 1]) for i in range(0, len(f), 2)}


r = send(20000, "alloc.warm")
t.eq(r.returncode, 0, "warm-up: 20,000 records sent and acked")
before = counts()
t.ok(before["sluice"] > 0 and before["librdkafka"] > 0, "the counter sees sluice's and librdkafka's allocations",
     before)
r = send(N, "alloc.run")
t.ok(r.returncode == 0, f"{N} records sent as chunks of 1,000 and acked", r.stderr.decode())
after = counts()
per = {k: (after[k] - before[k]) / N for k in after}
print(f"# allocations per record: sluice {per['sluice']:.4f}, librdkafka {per['librdkafka']:.3f}, "
      f"other {per['other']:.4f}", flush=True)
t.ok(per["sluice"] < 0.01, f"sluice's own code: {per['sluice']:.4f} allocations per record (< 0.01: per message, "
     "not per record or value)")
t.ok(per["librdkafka"] >= 1, f"librdkafka allocates per record itself ({per['librdkafka']:.2f}): the counter "
     "attributes calls correctly")
t.eq(s.stop(), 0, "sluice exits 0")
broker.stop()
t.done()
