"""Ingest under pressure and at its edges, as a client and an operator see
it.  Sustained overload: every one of twelve connections gets its turn (not
only the first or last connected) and every record reaches Kafka.  A queue
full by bytes pauses once per fill, not in a flap, and everything is acked
when the broker returns.  A client that leaves while its message is held
back: what is left of its chunk is dropped and counted (it re-sends the
chunk), not produced as duplicates; without an ack request it is produced.
Stopping: shutdown_timeout purges and fails what is left and exits 1; a
second SIGTERM stops at once; a fatal producer error makes /readyz 503, does
not ack, and the closing line says records failed; SIGHUP reloads the
unchanged file (logged).  A tag cannot forge a log line.  A nil or 0 time becomes the
arrival time, as in fluentd's in_forward."""
import calendar
import os
import signal
import sys
import threading
import time

from harness import SRCDIR, Broker, Sluice, Tap, high_watermarks, wait_for

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "forward"))
import fwdlib  # noqa: E402
from kafkatest import ForwardClient, check, event_time, sluice_config  # noqa: E402

t = Tap()
ROUTE = '\n[[route]]\nmatch = "ih.**"\ntopic = "ih.${tag_parts[1]}"\n'


def entries(prefix, n, pad=None):
    now = int(time.time())
    return [(event_time(now, i), dict({"id": f"{prefix}-{i}"}, **({"pad": pad} if pad else {}))) for i in range(n)]


def warm(s, topic):
    """One acked record, so the producer knows the topic before the test
    takes the broker away or slows it."""
    c = ForwardClient(s.port)
    c.send_message(topic, event_time(int(time.time()), 0), {"id": "warm"}, chunk="warm")
    c.wait_ack("warm", 20)
    c.close()


def acks_until_closed(client, timeout):
    """Reads until sluice closes the connection (or timeout); the acks got."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            client.poll(0.2)
        except (EOFError, OSError):
            break
    return client.acks


def wait_exit(s, timeout):
    try:
        return s.p.wait(timeout)
    except Exception:
        return None


def readyz(s):
    """/readyz's status, or None when nothing answers (the process is gone)."""
    try:
        return s.http("/readyz")[0]
    except OSError:
        return None


def quietly(fn):
    """Waits for something that is not a check of its own (its outcome is
    checked after); a timeout only means the check after will tell."""
    try:
        return fn()
    except (TimeoutError, EOFError):
        return None


broker = Broker(topics=["ih.fair:3", "ih.bytes:2", "ih.held:1", "ih.nochunk:1", "ih.drain:1", "ih.second:1",
                        "ih.fatal:1", "ih.slow:1"])
sluices = []


def start(toml):
    s = Sluice(toml)
    sluices.append(s)
    return s


try:
    # ---- 1. sustained overload: every connection gets its turn ---------------------
    N_CONN, CHUNKS, PER, WINDOW = 12, 30, 20, 4
    s = start(sluice_config(broker.bootstrap, ROUTE, {"queue.buffering.max.messages": "200", "linger.ms": "0"}))
    warm(s, "ih.fair")
    broker.rtt(50)
    clients = [ForwardClient(s.port, timeout=30) for _ in range(N_CONN)]
    ack_times = [[] for _ in range(N_CONN)]  # seconds from the start, one per ack
    errors = []
    go = threading.Barrier(N_CONN)
    t0 = time.monotonic()

    def stream(i):
        """Keeps WINDOW chunks unacked at all times, like fluentd's
        require_ack_response with a few flush threads."""
        c = clients[i]
        sent = 0
        try:
            go.wait(10)
            while len(c.acks) < CHUNKS and time.monotonic() - t0 < 60:
                while sent < CHUNKS and sent - len(c.acks) < WINDOW:
                    c.send_packed("ih.fair", entries(f"f{i}.{sent}", PER), chunk=f"c{i}-{sent}")
                    sent += 1
                before = len(c.acks)
                c.poll(0.1)
                ack_times[i] += [time.monotonic() - t0] * (len(c.acks) - before)
        except Exception as e:  # noqa: BLE001 - reported as a failed check below
            errors.append(f"connection {i}: {e!r}")

    threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(N_CONN)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(90)
    broker.rtt(0)
    counts = [len(c.acks) for c in clients]
    t.ok(not errors and counts == [CHUNKS] * N_CONN,
         f"overload: all {N_CONN} connections had their {CHUNKS} chunks acked within 60 s", f"{counts} {errors}")
    t.ok(all(sorted(c.acks) == sorted(f"c{i}-{k}" for k in range(CHUNKS)) for i, c in enumerate(clients)),
         "each connection got exactly one ack per chunk it sent")
    m = s.metrics()
    t.ok(m.get("sluice_forward_pauses_total", 0) > 1, "the queue really filled up: sluice_forward_pauses_total > 1",
         m.get("sluice_forward_pauses_total"))
    elapsed = time.monotonic() - t0
    paused = m.get("sluice_forward_paused_seconds_total", 0)
    t.ok(0 < paused <= elapsed + 1 and m.get("sluice_forward_paused") == 0,
         f"sluice_forward_paused_seconds_total counts the time paused: {paused:.3f} s of {elapsed:.1f} s", paused)
    # Fair turns: by the time the luckiest connection had all its chunks
    # acked, every other one must have had several turns too.
    done_at = min((a[-1] for a in ack_times if len(a) == CHUNKS), default=None)
    if done_at is None:
        t.ok(False, "overload: every connection made progress while the fastest one finished", ack_times)
    else:
        by_then = [sum(1 for x in a if x <= done_at) for a in ack_times]
        first = ["%.2f" % a[0] if a else None for a in ack_times]
        print(f"# acks per connection at {done_at:.2f} s: {by_then}; first acks at {first}", flush=True)
        t.ok(min(by_then) >= 10,
             f"overload: when the fastest connection had all {CHUNKS} chunks acked (at {done_at:.2f} s), every "
             "connection had at least 10 acks (turns go round-robin)",
             f"acks per connection at {done_at:.2f} s (in connect order): {by_then}\n"
             f"first ack of each connection, seconds: {first}")
    for c in clients:
        c.close()
    t.eq(high_watermarks(broker.bootstrap, "ih.fair"), 1 + N_CONN * CHUNKS * PER,
         f"overload: ih.fair holds all {1 + N_CONN * CHUNKS * PER} records")
    t.eq(s.stop(), 0, "overload: sluice stops cleanly")

    # ---- 2. a queue full by bytes: pauses once per fill, all delivered -------------
    CH2, PER2, PAD = 10, 4, "x" * 8000
    s = start(sluice_config(broker.bootstrap, ROUTE, {"queue.buffering.max.kbytes": "64"}))
    warm(s, "ih.bytes")
    broker.down()
    c = ForwardClient(s.port)
    for k in range(CH2):
        c.send_packed("ih.bytes", entries(f"b{k}", PER2, PAD), chunk=f"b{k}")
    check(t, "bytes: ~8 KB records fill the 64 KiB queue: reads pause, one message held back",
          lambda: s.wait_metric("sluice_forward_paused", lambda v: v == 1, 15)
          and s.wait_metric("sluice_ingest_held_back_messages", lambda v: v == 1, 5))
    quietly(lambda: s.wait_metric("sluice_kafka_inflight_records", lambda v: v > 0, 5))
    inflight = s.metric("sluice_kafka_inflight_records")
    t.ok(0 < inflight <= 9, "bytes: the byte limit filled it: at most 64 KiB / 8 KB records in flight "
         "(far below queue.buffering.max.messages)", inflight)
    full1 = s.metric("sluice_kafka_queue_full_total")
    time.sleep(1)  # an interval over which nothing may happen
    full2 = s.metric("sluice_kafka_queue_full_total")
    t.ok(full2 - full1 <= 2, "bytes: while the broker is down, sluice_kafka_queue_full_total does not keep "
         "climbing (read 1 s apart)", f"{full1} -> {full2}")
    broker.up()
    check(t, f"bytes: broker back: all {CH2} chunks acked",
          lambda: [c.wait_ack(f"b{k}", 30) for k in range(CH2)])
    pauses = s.metric("sluice_forward_pauses_total")
    t.ok(1 <= pauses <= CH2, f"bytes: pauses do not flap: 1 <= sluice_forward_pauses_total <= {CH2} chunks", pauses)
    check(t, "bytes: reading resumes (sluice_forward_paused = 0)",
          lambda: s.wait_metric("sluice_forward_paused", lambda v: v == 0, 10))
    t.eq(high_watermarks(broker.bootstrap, "ih.bytes"), 1 + CH2 * PER2,
         f"bytes: ih.bytes holds all {1 + CH2 * PER2} records")
    c.close()
    t.eq(s.stop(), 0, "bytes: sluice stops cleanly")

    # ---- 3. a client leaves while its message is held back -------------------------
    s = start(sluice_config(broker.bootstrap, ROUTE, {"queue.buffering.max.messages": "10", "linger.ms": "0"}))
    warm(s, "ih.held")
    warm(s, "ih.nochunk")
    quietly(lambda: s.wait_metric("sluice_forward_connections", lambda v: v == 0, 10))

    def held_back_then_leave(topic, chunk):
        """Broker down, 30 records of which 10 fit the queue: the message is
        held back; then its client closes the socket and the broker comes
        back.  Returns the abandoned-records counter's increase."""
        before = s.metric("sluice_ingest_abandoned_records_total")
        broker.down()
        c = ForwardClient(s.port)
        c.send_packed(topic, entries(topic, 30), chunk=chunk)
        check(t, f"{topic}: the message is held back (sluice_ingest_held_back_messages = 1)",
              lambda: s.wait_metric("sluice_ingest_held_back_messages", lambda v: v == 1, 15))
        c.close()
        # Give sluice the chance to see the close while reads are paused
        # (the outcome is checked below, by what reaches Kafka).
        gone = quietly(lambda: s.wait_metric("sluice_forward_connections", lambda v: v == 0, 5))
        broker.up()
        check(t, f"{topic}: broker back: nothing stays held back or in flight",
              lambda: s.wait_metric("sluice_ingest_held_back_messages", lambda v: v == 0, 30)
              and s.wait_metric("sluice_kafka_inflight_records", lambda v: v == 0, 30))
        if not gone:
            print(f"# {topic}: sluice_forward_connections still counted the closed client while reads were paused")
        return s.metric("sluice_ingest_abandoned_records_total") - before

    abandoned = held_back_then_leave("ih.held", "held")
    t.ok(abandoned > 0, "with an ack request: the held-back records of the gone client are dropped and counted "
         "(sluice_ingest_abandoned_records_total > 0)", abandoned)
    in_kafka = high_watermarks(broker.bootstrap, "ih.held")
    t.eq(in_kafka, 1 + 30 - int(abandoned),
         "with an ack request: Kafka holds the records sent minus those counted abandoned (warm-up + 30 - abandoned)")
    t.ok(s.log.seen(r"warn +ingest: \d+ held-back records with tag ih\.held dropped: their client disconnected", 1),
         "with an ack request: the drop is logged")
    abandoned = held_back_then_leave("ih.nochunk", None)
    t.eq(abandoned, 0.0, "without an ack request: nothing is abandoned")
    t.eq(high_watermarks(broker.bootstrap, "ih.nochunk"), 1 + 30, "without an ack request: all 30 records reach Kafka")
    t.eq(s.stop(), 0, "held back: sluice stops cleanly")

    # ---- 4. the drain times out: purge, fail, exit 1 -------------------------------
    s = start('shutdown_timeout = "2s"\n' + sluice_config(broker.bootstrap, ROUTE))
    warm(s, "ih.drain")
    broker.down()
    c = ForwardClient(s.port)
    c.send_packed("ih.drain", entries("drain", 20), chunk="drain")
    check(t, "drain timeout: broker down, 20 records in flight",
          lambda: s.wait_metric("sluice_kafka_inflight_records", lambda v: v >= 20, 15))
    t0 = time.monotonic()
    s.p.send_signal(signal.SIGTERM)
    rc = wait_exit(s, 15)
    took = time.monotonic() - t0
    t.eq(rc, 1, "drain timeout: sluice exits 1")
    t.ok(1.5 <= took <= 8, "drain timeout: it waited shutdown_timeout (2 s), not longer than a few seconds",
         f"{took:.2f} s")
    t.ok(s.log.seen(r"error +agent: drain timed out: ingest: 20 records unacknowledged", 2),
         "drain timeout: the log says the drain timed out, with the records in hand", s.log.text())
    t.ok(s.log.seen(r"warn +ingest: 20 records were still unacknowledged by Kafka and were purged", 2),
         "drain timeout: the log says the in-flight records were purged")
    t.ok("drain" not in acks_until_closed(c, 5) and b"drain" not in c.raw, "drain timeout: the chunk is never acked",
         c.raw)
    c.close()
    broker.up()

    # ---- 5. a second signal stops at once ------------------------------------------
    s = start('shutdown_timeout = "60s"\n' + sluice_config(broker.bootstrap, ROUTE))
    warm(s, "ih.second")
    broker.down()
    c = ForwardClient(s.port)
    c.send_packed("ih.second", entries("second", 20), chunk="second")
    check(t, "second signal: broker down, 20 records in flight",
          lambda: s.wait_metric("sluice_kafka_inflight_records", lambda v: v >= 20, 15))
    s.p.send_signal(signal.SIGTERM)
    check(t, "second signal: the first SIGTERM starts the drain",
          lambda: s.log.wait(r"info +agent: SIGTERM received: draining", 10))
    t0 = time.monotonic()
    s.p.send_signal(signal.SIGTERM)
    rc = wait_exit(s, 15)
    took = time.monotonic() - t0
    t.eq(rc, 1, "second signal: sluice exits 1")
    t.ok(took < 5, "second signal: it exits at once, not after the 60 s shutdown_timeout", f"{took:.2f} s")
    t.ok(s.log.seen(r"error +agent: stopping at once: ingest: 20 records unacknowledged", 2),
         "second signal: the log says it is stopping at once", s.log.text())
    t.ok("second" not in acks_until_closed(c, 5), "second signal: the chunk is not acked", c.raw)
    c.close()
    broker.up()

    # ---- 6. a fatal producer error -------------------------------------------------
    # OUT_OF_ORDER_SEQUENCE_NUMBER (45) on a partition that already took a
    # record is fatal for librdkafka 2.0.2's idempotent producer;
    # INVALID_PRODUCER_EPOCH (47) and PRODUCER_FENCED (90) only fail the
    # records, UNKNOWN_PRODUCER_ID (59) is retried.  Every response comes
    # 3 s late, and a second chunk to another topic goes out 1.5 s after the
    # failing one: the drain then still waits ~1.5 s for it, long enough to
    # see /readyz answer 503.
    s = start(sluice_config(broker.bootstrap, ROUTE, {"linger.ms": "0"}))
    warm(s, "ih.fatal")
    warm(s, "ih.slow")
    broker.rtt(3000)
    broker.produce_error(45, 1)
    c = ForwardClient(s.port)
    c.send_packed("ih.fatal", entries("fatal", 5), chunk="fatal")
    check(t, "fatal: the chunk is in flight",
          lambda: s.wait_metric("sluice_kafka_inflight_records", lambda v: v >= 5, 15))
    time.sleep(1.5)  # spacing between the two requests, see above
    c2 = ForwardClient(s.port)
    c2.send_packed("ih.slow", entries("slow", 5), chunk="slow")
    check(t, "fatal: sluice logs a fatal producer error",
          lambda: s.log.wait(r"error +kafka: fatal producer error: .*sequence", 15))
    statuses = []

    def not_ready():
        statuses.append(readyz(s))
        return statuses[-1] == 503 or s.p.poll() is not None
    quietly(lambda: wait_for(not_ready, 10, "/readyz 503"))
    t.ok(503 in statuses, "fatal: /readyz answers 503 while it stops", statuses)
    rc = wait_exit(s, 20)
    t.eq(rc, 1, "fatal: sluice exits 1")
    t.ok("fatal" not in acks_until_closed(c, 3), "fatal: the failed chunk is not acked", c.raw)
    t.ok("slow" in acks_until_closed(c2, 3), "fatal: a chunk Kafka took during the drain is still acked", c2.raw)
    m = quietly(lambda: s.log.wait(r"info +agent: drained: ingest: (.*)", 2))
    t.ok(m is not None and "every record" not in m.group(1) and "5 records failed" in m.group(1),
         "fatal: the closing 'drained:' line says 5 records failed, not that every record was acknowledged",
         m.group(0) if m else s.log.text())
    c.close()
    c2.close()
    broker.rtt(0)

    # ---- 7. SIGHUP reloads the unchanged file: logged, nothing to apply -------------
    s = start(fwdlib.config())
    s.p.send_signal(signal.SIGHUP)
    check(t, "SIGHUP: the reload is logged (the service tests cover what it applies)",
          lambda: s.log.wait(r"info +agent: reloaded \S+: changes applied: 0, needing a restart: 0", 10))
    c = ForwardClient(s.port)
    c.send_message("ih.hup", event_time(int(time.time()), 0), {"id": "after-hup"}, chunk="hup")
    check(t, "SIGHUP: still running: a chunk sent afterwards is acked", lambda: c.wait_ack("hup", 10))
    c.close()
    t.eq(s.stop(), 0, "SIGHUP: SIGTERM afterwards exits 0")

    # ---- 8. a tag cannot forge a log line ------------------------------------------
    FORGED = "2026-01-01T00:00:00.000Z error agent: forged"
    s = start(sluice_config(broker.bootstrap))  # no route, no default_topic: the tag is logged
    c = ForwardClient(s.port)
    c.send_message("inj.x\n" + FORGED + "\x1b[2J", event_time(int(time.time()), 0), {"id": "inj"}, chunk="inj")
    check(t, "log injection: the message is acked (unmatched records are dropped and acked)",
          lambda: c.wait_ack("inj", 10))
    check(t, "log injection: the unmatched tag is logged",
          lambda: s.log.wait(r"no route matches and no default_topic", 10))
    text = s.log.text()
    t.ok(not any(line.startswith(FORGED) for line in text.splitlines()),
         "log injection: no log line starts with the forged text", text)
    t.ok(("inj.x\\n" + FORGED) in text, "log injection: the newline appears escaped (\\n) inside the real line")
    t.ok("\x1b" not in text, "log injection: no raw escape character reaches the log")
    c.close()
    t.eq(s.stop(), 0, "log injection: sluice stops cleanly")

    # ---- 9. nil or 0 time becomes the arrival time (print mode) --------------------
    s = start(fwdlib.config())
    out = fwdlib.Out(s)
    conn = fwdlib.Conn(s.port)
    before = time.time()
    conn.send(fwdlib.message("t.zero", 0, {"k": "zero"}, chunk="t0"))
    conn.send(fwdlib.message("t.nil", None, {"k": "nil"}, chunk="t1"))
    conn.send(fwdlib.message("t.et0", fwdlib.event_time(0, 0), {"k": "et0"}, chunk="t2"))
    conn.send(fwdlib.pack(["t.fwd", [[0, {"k": "fwd0"}], [None, {"k": "fwdnil"}]], {"chunk": "t3"}]))
    conn.send(fwdlib.message("t.kept", 1700000000, {"k": "kept"}, chunk="t4"))
    acks = []
    try:
        for _ in range(5):
            acks.append(conn.recv_obj(10).get("ack"))
    except Exception as e:  # noqa: BLE001 - reported by the check below
        acks.append(repr(e))
    after = time.time()
    t.eq(acks, ["t0", "t1", "t2", "t3", "t4"], "time nil/0: every message is acked")
    try:
        recs = out.records(6, 10)
    except TimeoutError:
        recs = []

    def epoch(rfc):
        return calendar.timegm(time.strptime(rfc[:19], "%Y-%m-%dT%H:%M:%S"))
    stamped = {r["record"]["k"]: epoch(r["time"]) for r in recs}
    for k in ("zero", "nil", "et0", "fwd0", "fwdnil"):
        t.ok(k in stamped and before - 5 <= stamped[k] <= after + 5,
             f"time nil/0: the '{k}' record's time is its arrival time, not 1970",
             [r for r in recs if r["record"]["k"] == k])
    t.eq(stamped.get("kept"), 1700000000, "time nil/0: a real time is kept as sent")
    conn.close()
    t.eq(s.stop(), 0, "time nil/0: sluice stops cleanly")
finally:
    for x in sluices:
        x.kill()
    broker.stop()
t.done()
