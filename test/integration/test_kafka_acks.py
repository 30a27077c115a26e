"""Acks are tied to Kafka delivery: with the broker down a chunk is not
acked; when it comes back the ack arrives and nothing was lost.  A client
that leaves before its ack leaves no stuck state; SIGTERM drains what is in
flight (and reads nothing new) before exiting 0; a full producer queue
pauses reading (TCP backpressure) and everything arrives after; a kill -9
and restart loses nothing that was acked."""
import json
import os
import signal
import sys
import time

from harness import SRCDIR, Broker, Sluice, Tap, high_watermarks, wait_for

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import check, ForwardClient, consume, event_time, ids_in, sluice_cat, sluice_config  # noqa: E402

t = Tap()
ROUTE = '\n[[route]]\nmatch = "acks.**"\ntopic = "acks.${tag_parts[1]}"\n'


def entries(prefix, n):
    now = int(time.time())
    return [(event_time(now, i), {"id": f"{prefix}-{i}", "n": i}) for i in range(n)]


def no_ack_now(client, chunk, desc):
    """The chunk's ack has not come (whatever already arrived is read)."""
    try:
        acks = client.poll(0.3)
    except EOFError:
        acks = client.acks
    t.ok(chunk not in acks and not client.raw, desc, f"bytes received: {client.raw!r}")


broker = Broker(topics=["acks.down:2", "acks.drain:2", "acks.bp:3", "acks.restart:2"])
sluices = []
try:
    # ---- broker down: no ack until Kafka has the records ------------------------
    s = Sluice(sluice_config(broker.bootstrap, ROUTE))
    sluices.append(s)
    warm = ForwardClient(s.port)
    warm.send_packed("acks.down", entries("warm", 1), chunk="c-warm")
    check(t, "with the broker up, a chunk is acked", lambda: warm.wait_ack("c-warm", 15))
    warm.close()

    broker.down()
    c1 = ForwardClient(s.port)
    c1.send_packed("acks.down", entries("d", 50), chunk="c-down")
    check(t, "broker down: the 50 records wait in the producer (inflight >= 50, one pending ack)",
          lambda: s.wait_metric("sluice_kafka_inflight_records", lambda v: v >= 50, 15)
          and s.wait_metric("sluice_forward_pending_acks", lambda v: v >= 1, 5))
    check(t, "sluice logs that the broker is unreachable",
          lambda: s.log.wait(r"warn +kafka: .*(TRANSPORT|ALL_BROKERS_DOWN)", 15))
    no_ack_now(c1, "c-down", "no ack bytes while the broker is down")

    # A client that leaves before its ack.
    c2 = ForwardClient(s.port)
    c2.send_packed("acks.down", entries("g", 20), chunk="c-gone")
    check(t, "a second client's 20 records wait too (two pending acks)",
          lambda: s.wait_metric("sluice_forward_pending_acks", lambda v: v >= 2, 15)
          and s.wait_metric("sluice_kafka_inflight_records", lambda v: v >= 70, 5))
    c2.close()
    check(t, "the leaving client's connection is closed by sluice",
          lambda: s.wait_metric("sluice_forward_connections", lambda v: v == 1, 10))

    broker.up()
    check(t, "broker back: the held chunk is acked", lambda: c1.wait_ack("c-down", 30))
    t.eq(c1.acks, ["c-down"], "exactly one ack, for the chunk sent")
    check(t, "no ack stays pending (the gone client's chunk settled too)",
          lambda: s.wait_metric("sluice_forward_pending_acks", lambda v: v == 0, 20))
    t.eq(s.metric("sluice_kafka_inflight_records"), 0.0, "nothing left in flight")
    msgs = consume(broker.bootstrap, "acks.down", 71)
    ids = ids_in(msgs)
    want = {"warm-0"} | {f"d-{i}" for i in range(50)} | {f"g-{i}" for i in range(20)}
    t.eq(sorted(want - set(ids)), [], "reading acks.down back: all 71 unique record ids, none lost")
    c3 = ForwardClient(s.port)
    c3.send_message("acks.down", event_time(int(time.time()), 0), {"id": "after"}, chunk="c-after")
    check(t, "a new chunk after the outage is acked promptly", lambda: c3.wait_ack("c-after", 10))
    c3.close()

    # ---- SIGTERM drains what is in flight, reads nothing new --------------------
    broker.down()
    c4 = ForwardClient(s.port)
    c4.send_packed("acks.drain", entries("t", 30), chunk="c-drain")
    check(t, "broker down: 30 records in flight before SIGTERM",
          lambda: s.wait_metric("sluice_kafka_inflight_records", lambda v: v >= 30, 15))
    s.p.send_signal(signal.SIGTERM)
    check(t, "SIGTERM: sluice says it is draining", lambda: s.log.wait(r"agent: SIGTERM received: draining", 10))
    c4.send_packed("acks.drain", entries("late", 5), chunk="c-late")
    broker.up()
    check(t, "the in-flight chunk is acked during the drain", lambda: c4.wait_ack("c-drain", 30))
    try:
        rc = s.p.wait(35)
    except Exception:
        rc = None
    t.eq(rc, 0, "sluice exits 0 after the drain")
    t.ok(s.log.seen(r"drained: ingest: every record handed to Kafka was acknowledged"), "the drain is logged",
         s.log.text())
    try:
        c4.poll(1)
    except EOFError:
        pass
    t.ok("c-late" not in c4.acks, "a chunk sent after SIGTERM is not acked (the client keeps it to re-send)",
         c4.acks)
    c4.close()
    drained = ids_in(consume(broker.bootstrap, "acks.drain", 30))
    t.eq(sorted(set(drained)), sorted(f"t-{i}" for i in range(30)),
         "acks.drain holds the 30 drained records and none sent after SIGTERM")

    # ---- backpressure: a full producer queue pauses reading ---------------------
    s = Sluice(sluice_config(broker.bootstrap, ROUTE, {"queue.buffering.max.messages": "1000"}))
    sluices.append(s)
    r = sluice_cat(s.port, "acks.bp", ["--ack"], lines=[{"id": "bp-warm"}], timeout=20)
    t.ok(r.returncode == 0, "backpressure run: warm-up record acked", r.stderr)
    broker.down()
    cat = sluice_cat(s.port, "acks.bp", ["--mode", "packed", "--ack", "--generate", "5000", "--batch", "100",
                                         "--timeout", "40"], background=True)
    check(t, "queue full: sluice pauses reading (sluice_forward_paused = 1)",
          lambda: s.wait_metric("sluice_forward_paused", lambda v: v == 1, 20))
    m = s.metrics()
    t.ok(m.get("sluice_forward_pauses_total", 0) >= 1 and m.get("sluice_kafka_queue_full_total", 0) >= 1,
         "pauses_total and queue_full_total count it", m)
    t.ok(m.get("sluice_kafka_inflight_records", 0) <= 1000, "no more than the queue's 1000 records in flight",
         m.get("sluice_kafka_inflight_records"))
    t.ok(cat.poll() is None, "the sending client is held back, not failed")
    broker.up()
    try:
        out, err = cat.communicate(timeout=45)
    except Exception:
        cat.kill()
        out, err = cat.communicate()
    t.ok(cat.returncode == 0 and b"sent 5000 records, all acked" in err, "after up: all 50 chunks acked",
         err.decode())
    check(t, "reading resumes: sluice_forward_paused back to 0",
          lambda: s.wait_metric("sluice_forward_paused", lambda v: v == 0, 10))
    t.eq(high_watermarks(broker.bootstrap, "acks.bp"), 5001, "acks.bp high-water marks: all 5001 records")

    # ---- kill -9 and restart: acked data survives, the new run adds to it -------
    r = sluice_cat(s.port, "acks.restart", ["--ack", "--mode", "forward"],
                   lines=[{"id": f"r1-{i}"} for i in range(100)], timeout=20)
    t.ok(r.returncode == 0, "first run: 100 records acked", r.stderr)
    s.kill()
    t.eq(high_watermarks(broker.bootstrap, "acks.restart"), 100, "after kill -9 the broker still holds the 100 records")
    s = Sluice(sluice_config(broker.bootstrap, ROUTE))
    sluices.append(s)
    r = sluice_cat(s.port, "acks.restart", ["--ack", "--mode", "forward"],
                   lines=[{"id": f"r2-{i}"} for i in range(100)], timeout=20)
    t.ok(r.returncode == 0, "second run: 100 records acked", r.stderr)
    ids = ids_in(consume(broker.bootstrap, "acks.restart", 200))
    t.eq(sorted(set(ids)), sorted([f"r1-{i}" for i in range(100)] + [f"r2-{i}" for i in range(100)]),
         "acks.restart holds the records of both runs")
    t.eq(s.stop(), 0, "second sluice stops cleanly")
finally:
    for x in sluices:
        x.kill()
    broker.stop()
t.done()
