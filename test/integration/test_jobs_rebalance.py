"""Calm rebalances: jobs use the cooperative-sticky assignor and static
group membership (instance_id), so
- a second member joining takes only the partitions it gets: the first
  member revokes those and keeps reading the others (no stop-the-world
  revocation of all of them);
- a member that restarts within session.timeout.ms gets its own
  partitions back and no partition of the other member is revoked.
Two sluice processes run the same job against the mock broker.  (The
librdkafka 2.0 mock cluster acts neither on a static member's return nor
on a dynamic member's LeaveGroup: there the restarted member gets its
partitions back once the old one times out either way, so the second
point would hold without static membership too; against a real broker it
is static membership that keeps the group from rebalancing.)"""
import os
import signal
import time

from harness import Broker, Sluice, Tap, tempdir, wait_for

t = Tap()
tmp = tempdir("sluice-jobs-rebalance-")
broker = Broker()
broker._cmd("topic rb 4")


def member(instance):
    return Sluice(f"""
[http]
listen = "127.0.0.1:0"
[input.forward]
enabled = false
[kafka]
brokers = "{broker.bootstrap}"

[[job]]
name = "rb"
topics = ["rb"]
instance_id = "{instance}"
group_by = ["k"]
window = {{ type = "tumbling", size = "10s" }}
aggregates = {{ n = "count()" }}
sinks = ["rows"]
[job.properties]
"session.timeout.ms" = "10000"
"heartbeat.interval.ms" = "500"

[[sink]]
name = "rows"
plugin = "file"
path = "{os.path.join(tmp, instance + '.jsonl')}"
""")


def assigned(s):
    return s.metric('sluice_job_assigned_partitions{sluice_job="rb"}')


a = member("a")
wait_for(lambda: assigned(a) == 4, 60, "a to own all 4 partitions")
t.ok(a.log.seen(r"job rb: reading 1 topic as group sluice-rb, instance a", 1), "a joins as static member a")
b = member("b")
wait_for(lambda: assigned(a) == 2 and assigned(b) == 2, 90, "the partitions to be shared 2 and 2")
t.ok(a.log.seen(r"job rb: 2 partitions revoked", 1) and not a.log.count(r"job rb: 4 partitions revoked"),
     "cooperative: a revoked only the 2 partitions b got, never all 4")

mark = a.log.count(r"partitions? (revoked|lost)|assigned at|assigned; no committed")
t.eq(b.stop(signal.SIGTERM), 0, "b stops (a static member does not leave the group)")
b = member("b")
restarted = time.monotonic()
t.ok(b.log.seen(r"job rb: reading 1 topic as group sluice-rb, instance b", 10),
     "b comes back as the same static member b (what makes a restart calm on a real broker)")
try:
    wait_for(lambda: assigned(b) == 2, 90, "b, restarted within session.timeout.ms, to get its partitions back")
except TimeoutError:
    print("# A:\n" + a.log.text()[-3000:] + "\n# B:\n" + b.log.text()[-3000:])
    raise
print(f"# b got its partitions back {time.monotonic() - restarted:.1f} s after its restart")
t.eq(assigned(a), 2.0, "a still owns its 2 partitions")
t.eq(a.log.count(r"partitions? (revoked|lost)|assigned at|assigned; no committed"), mark,
     "and saw no revocation nor assignment while b restarted")
b.stop()
a.stop()
broker.stop()
t.done()
