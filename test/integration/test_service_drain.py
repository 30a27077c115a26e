"""A graceful stop loses no acknowledged record.  A client with acks is
mid-stream (PackedForward chunks with chunk ids, Kafka slowed so records
are in flight) when SIGTERM arrives: sluice exits 0; every record of every
chunk it acked is in Kafka; the client sends the chunks without an ack
again to a restarted sluice, and then every record is there.  A second
signal stops at once with exit code 1, and the chunk in flight is not
acked (its client keeps it)."""
import os
import signal
import sys
import time

from harness import SRCDIR, Broker, Sluice, Tap, wait_for

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import ForwardClient, check, consume, event_time, ids_in, sluice_config  # noqa: E402

t = Tap()
TOPIC = "drain.logs"
ROUTE = f'[[route]]\nmatch = "drain.**"\ntopic = "{TOPIC}"\n'
CHUNKS = 60
PER_CHUNK = 25


def chunk_entries(c):
    now = int(time.time())
    return [(event_time(now, j), {"id": f"c{c}-r{j}"}) for j in range(PER_CHUNK)]


class Sender:
    """The client's side of at-least-once: every chunk has an id; a chunk
    is done when its ack came, and whatever has no ack is sent again."""

    def __init__(self):
        self.acked = set()

    def collect(self, client, timeout):
        try:
            client.poll(timeout)
        except EOFError:
            pass
        self.acked |= {a for a in client.acks}

    def send(self, client, chunks):
        for c in chunks:
            try:
                client.send_packed("drain.app", chunk_entries(c), chunk=f"chunk-{c}")
            except OSError:
                return False  # the server has closed: the rest waits for the next run
            self.collect(client, 0)
        return True


broker = Broker(topics=[f"{TOPIC}:2"])
sender = Sender()
s = Sluice(sluice_config(broker.bootstrap, ROUTE))
try:
    # Each Produce answered 150 ms late: records stay in flight for a while.
    broker.rtt(150)
    client = ForwardClient(s.port)
    sender.send(client, range(CHUNKS // 2))
    check(t, "records are in flight when SIGTERM comes",
          lambda: s.wait_metric("sluice_kafka_inflight_records", lambda v: v > 0, 10))
    acked_before = len(sender.acked)
    s.p.send_signal(signal.SIGTERM)
    # The client goes on sending while sluice drains.
    sender.send(client, range(CHUNKS // 2, CHUNKS))
    end = time.monotonic() + 30
    while s.p.poll() is None and time.monotonic() < end:
        sender.collect(client, 0.1)
    sender.collect(client, 0.5)
    rc = s.p.wait(10)
    t.eq(rc, 0, "SIGTERM mid-stream: sluice drains and exits 0")
    t.ok(s.log.seen(r"agent: SIGTERM received: draining") and
         s.log.seen(r"drained: ingest: every record handed to Kafka was acknowledged"),
         "the log says it drained and every record handed to Kafka was acknowledged", s.log.text()[-2000:])
    t.ok(len(sender.acked) > acked_before,
         f"chunks in flight at SIGTERM were acked during the drain ({acked_before} before, {len(sender.acked)} after)")
    unacked = [c for c in range(CHUNKS) if f"chunk-{c}" not in sender.acked]
    t.ok(unacked, f"{len(unacked)} chunks sent after SIGTERM got no ack (the client keeps them)")
    client.close()
    broker.rtt(0)

    acked_ids = {f"c{c}-r{j}" for c in range(CHUNKS) if f"chunk-{c}" in sender.acked for j in range(PER_CHUNK)}
    in_kafka = set(ids_in(consume(broker.bootstrap, TOPIC, len(acked_ids))))
    t.eq(sorted(acked_ids - in_kafka), [], f"every record of the {len(sender.acked)} acked chunks is in Kafka")

    # ---- restart: the client sends what has no ack ------------------------------
    s = Sluice(sluice_config(broker.bootstrap, ROUTE))
    client = ForwardClient(s.port)
    sender.send(client, unacked)
    wait_for(lambda: sender.collect(client, 0.1) or all(f"chunk-{c}" in sender.acked for c in unacked), 30,
             "acks of the chunks sent again")
    t.eq(sorted(set(f"chunk-{c}" for c in range(CHUNKS)) - sender.acked), [],
         "after the restart every chunk sent again is acked")
    client.close()
    all_ids = {f"c{c}-r{j}" for c in range(CHUNKS) for j in range(PER_CHUNK)}
    in_kafka = set(ids_in(consume(broker.bootstrap, TOPIC, len(all_ids), extra=len(all_ids))))
    t.eq(sorted(all_ids - in_kafka), [], f"all {len(all_ids)} records are in Kafka, none lost")
    t.eq(s.stop(), 0, "the second run stops with exit code 0")

    # ---- a second signal: at once, exit code 1 -------------------------------------
    s = Sluice(sluice_config(broker.bootstrap, ROUTE))
    broker.down()
    client = ForwardClient(s.port)
    client.send_packed("drain.app", chunk_entries(999), chunk="chunk-stuck")
    check(t, "broker down: the chunk's records are in flight",
          lambda: s.wait_metric("sluice_kafka_inflight_records", lambda v: v >= PER_CHUNK, 10))
    s.p.send_signal(signal.SIGTERM)
    check(t, "first SIGTERM: draining", lambda: s.log.wait(r"agent: SIGTERM received: draining", 10))
    started = time.monotonic()
    s.p.send_signal(signal.SIGTERM)
    rc = s.p.wait(20)
    took = time.monotonic() - started
    t.eq(rc, 1, "second SIGTERM: exit code 1")
    t.ok(took < 10, f"it stops at once rather than after shutdown_timeout (30 s): {took:.1f} s")
    t.ok(s.log.seen(r"warn +agent: second signal: stopping at once"), "the log says so", s.log.text()[-1500:])
    try:
        client.poll(0.2)
    except EOFError:
        pass
    t.ok("chunk-stuck" not in client.acks, "the chunk in flight was not acked: its client sends it again")
    client.close()
    broker.up()
finally:
    s.kill()
    broker.stop()
t.done()
