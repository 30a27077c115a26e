"""Fault injection at the network edge, everything at once: while a
well-behaved client streams chunks with acks (helpers/resend_client.py,
which would re-send a chunk whose ack is late), sluice (max_connections =
2000, chunk_size_limit = 1 MiB) is also given

  * idle connections up to max_connections (open, never a byte);
  * slowloris: 25 connections trickling a message a byte at a time, and 25
    holding an unfinished 900 KiB frame;
  * oversized messages: connection after connection sending a 2 MiB
    message (closed as soon as the header proves it is over
    chunk_size_limit), at least 40;
  * random bytes: connection after connection of 1 to 64 KiB of noise, at
    least 300;
  * two clients that send chunk after chunk and never read their acks.

The abuse goes on until the client has had 100 more chunks acked.  Its
chunks are all acked, each within 5 s and none re-sent, and its records
are all in Kafka (read back with kcat); every kind of abuse is closed and
counted where the README's "Bad input" table says; at max_connections
one more connection is refused and counted; and sluice's peak resident
memory stays under 128 MiB (measured and printed: ~45 MiB here, of which
the 25 unfinished frames are ~22 MiB and an idle connection ~2.5 KiB; the
README's worst-case formula for these limits is ~4.6 GB, reached only if
every connection held a full frame).

test_forward_limits.py and test_memory_bound.py check each input alone
(and the README's worst-case formula); this is them together, with a
client that must be served throughout.

The test needs about 2,300 file descriptors on each side: it raises its
soft RLIMIT_NOFILE to the hard limit (sluice inherits it) and, if that is
still too low, lowers max_connections and says so."""
import os
import random
import resource
import socket
import struct
import sys
import threading
import time

from harness import SRCDIR, Broker, Sluice, Tap, high_watermarks, kcat_consume, wait_for
from resend_client import ResendingClient, check_delivery

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "forward"))
from fwdlib import message, pack, rss_kib  # noqa: E402
from kafkatest import check, ids_in, sluice_config  # noqa: E402

t = Tap()
MAX_CONN = 2000
KiB, MiB = 1024, 1024 * 1024
ACK_DEADLINE = 5.0  # seconds, for any one ack of the well-behaved client
RSS_BOUND_KIB = 128 * 1024
TOPIC = "fault.edge"
SLOW_TRICKLE, SLOW_PARTIAL, OVERSIZED, RANDOM, UNREAD = 25, 25, 40, 300, 2
ABUSED_ACKS = 100  # the abuse goes on until the client has had this many more chunks acked

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want_fds = MAX_CONN + 300
if soft < want_fds:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want_fds, soft)), hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
max_conn = min(MAX_CONN, soft - 300)
print(f"# RLIMIT_NOFILE: soft {soft}, hard {hard}; max_connections = {max_conn}"
      + ("" if max_conn == MAX_CONN else f" (not {MAX_CONN}: too few descriptors)"), flush=True)

broker = Broker(topics=[f"{TOPIC}:2", "fault.other:2"])
FORWARD = f'max_connections = {max_conn}\nchunk_size_limit = "1MiB"\nchunk_size_warn_limit = "1MiB"\n'
ROUTES = f'\n[[route]]\nmatch = "{TOPIC}.good"\ntopic = "{TOPIC}"\n[[route]]\nmatch = "**"\ntopic = "fault.other"\n'
s = Sluice(sluice_config(broker.bootstrap, ROUTES, forward=FORWARD))
baseline = rss_kib(s.p.pid)
held = []  # sockets kept open to the end
stop = threading.Event()  # the end of the test
abuse_done = threading.Event()  # the short-lived abusers stop (after at least their counts)
failures = []
done = {"oversized": 0, "oversized_closed": 0, "noise": 0, "noise_closed": 0}
done_lock = threading.Lock()


def connect():
    c = socket.create_connection(("127.0.0.1", s.port), 20)
    c.settimeout(20)
    return c


def errors(reason):
    return s.metric(f'sluice_forward_errors_total{{reason="{reason}"}}')


def bin32_frame_head(tag, size):
    """The start of a PackedForward message whose entries are a bin32 of
    `size` bytes: [tag, bin32(size) ..."""
    return b"\x93" + pack(tag) + b"\xc6" + struct.pack(">I", size)


def trickle():
    """Slowloris: each connection gets one more byte of a good message
    every 50 ms, never reaching its end before the test stops."""
    msg = message("fault.slow", 0, {"pad": "s" * 4000}, chunk="never")
    conns = [connect() for _ in range(SLOW_TRICKLE)]
    held.extend(conns)
    at = 0
    while not stop.is_set() and at < len(msg) - 1:
        for c in conns:
            c.sendall(msg[at:at + 1])
        at += 1
        stop.wait(0.05)


def partial():
    """Unfinished 900 KiB frames, held open."""
    data = bin32_frame_head("fault.partial", 1000 * KiB) + b"p" * (900 * KiB)
    for _ in range(SLOW_PARTIAL):
        c = connect()
        c.sendall(data)
        held.append(c)


def closed_by_sluice(c, sent_all):
    """Reads what sluice answers until it closes the connection: True when
    it did (or had already: the send failed), False when it was still open
    after 5 s."""
    c.settimeout(5)
    try:
        while c.recv(65536):
            pass
        closed = True
    except socket.timeout:
        closed = False
    except OSError:
        closed = True
    c.close()
    return closed or not sent_all


def send_once(data, half_close):
    """A connection that sends data (then its EOF when half_close) and
    waits for sluice to close it.  Returns whether sluice did."""
    c = connect()
    try:
        c.sendall(data)
        if half_close:
            c.shutdown(socket.SHUT_WR)
        sent = True
    except OSError:
        sent = False  # closed by sluice mid-send: the point
    return closed_by_sluice(c, sent)


def tally(kind, closed):
    with done_lock:
        done[kind] += 1
        done[kind + "_closed"] += closed
    abuse_done.wait(0.01)  # at most ~100 connections a second a thread: abuse, not a CPU burner


def oversized():
    data = bin32_frame_head("fault.big", 2 * MiB) + b"b" * (2 * MiB)
    while done["oversized"] < OVERSIZED or not abuse_done.is_set():
        tally("oversized", send_once(data, False))


def noise(seed):
    rng = random.Random(seed)
    while done["noise"] < RANDOM or not abuse_done.is_set():
        tally("noise", send_once(rng.randbytes(rng.randint(1 * KiB, 64 * KiB)), True))


def unread(k):
    """Chunks with 200-byte ids, acks never read; sluice stops reading
    this connection once 1 MiB of acks waits, so sendall blocks: then the
    connection is only held."""
    c = connect()
    held.append(c)
    c.settimeout(3)
    i = 0
    try:
        while not stop.is_set():
            c.sendall(message("fault.unread", 0, {"i": i}, chunk=f"u{k}-{i:08d}-".ljust(200, "u")))
            i += 1
    except (socket.timeout, OSError):
        pass


def run(fn, *args):
    def body():
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - reported as a failed check
            failures.append(f"{fn.__name__}: {e!r}")
    th = threading.Thread(target=body, daemon=True)
    th.start()
    return th


good = ResendingClient(s.port, f"{TOPIC}.good", prefix="g", records_per_chunk=20, window=4, chunks_per_s=10,
                       ack_timeout=ACK_DEADLINE)
try:
    good.start()
    check(t, "the well-behaved client is served before the abuse",
          lambda: wait_for(lambda: good.acked_count() >= 10, 20, "its first acks"))
    before = {r: errors(r) for r in ("chunk_size_limit", "malformed_msgpack")}

    # Idle connections up to the limit, minus room for the others.
    room = 1 + SLOW_TRICKLE + SLOW_PARTIAL + UNREAD + 4  # the good client, the held abusers, 4 short-lived at once
    rss_before_idle = rss_kib(s.p.pid)
    idle = [connect() for _ in range(max_conn - room)]
    held.extend(idle)
    check(t, f"{len(idle)} idle connections open", lambda: s.wait_metric(
        "sluice_forward_connections", lambda v: v >= len(idle) + 1, 30))
    per_idle = (rss_kib(s.p.pid) - rss_before_idle) / len(idle)
    acked_before = good.acked_count()
    threads = [run(trickle), run(partial), run(oversized), run(noise, 1), run(noise, 2)]
    threads += [run(unread, k) for k in range(UNREAD)]
    check(t, f"the client keeps being served during the abuse ({ABUSED_ACKS} more chunks acked)",
          lambda: wait_for(lambda: good.acked_count() >= acked_before + ABUSED_ACKS, 60, "acks under abuse"))
    abuse_done.set()
    for th in threads[1:5]:  # the short-lived abusers and the partial frames
        th.join(60)
    check(t, "unread acks: sluice stops reading the clients that never read (1 MiB of acks waiting)",
          lambda: s.wait_metric("sluice_forward_unread_replies_pauses_total", lambda v: v >= UNREAD, 30))
    m = s.metrics()
    t.ok(not failures and not any(th.is_alive() for th in threads[1:5]),
         f"every abuser ran: {SLOW_TRICKLE} trickling, {SLOW_PARTIAL} partial frames, {done['oversized']} "
         f"oversized, {done['noise']} of random bytes, {UNREAD} never reading", failures)
    t.ok(done["oversized_closed"] == done["oversized"] and
         errors("chunk_size_limit") - before["chunk_size_limit"] >= done["oversized"],
         f"each of the {done['oversized']} oversized messages: connection closed by sluice and counted under "
         'sluice_forward_errors_total{reason="chunk_size_limit"}', done)
    noise_errors = sum(v for k, v in m.items() if k.startswith("sluice_forward_errors_total")) - sum(before.values()) \
        - done["oversized"]
    t.ok(done["noise_closed"] == done["noise"] and noise_errors > done["noise"] / 2,
         f"random bytes: every one of the {done['noise']} connections closed, {noise_errors:.0f} decoder errors "
         "counted", done)

    # Top up to exactly max_connections, then one more is refused.
    wait_for(lambda: s.metric("sluice_forward_connections") <= max_conn - 4, 30, "short-lived connections to close")
    top = [connect() for _ in range(int(max_conn - s.metric("sluice_forward_connections")))]
    held.extend(top)
    check(t, f"max_connections ({max_conn}) connections open at once", lambda: s.wait_metric(
        "sluice_forward_connections", lambda v: v == max_conn, 30))
    rejected = s.metric("sluice_forward_connections_rejected_total")
    over = connect()
    over.settimeout(10)
    try:
        refused = over.recv(1) == b""
    except OSError:
        refused = True
    over.close()
    t.ok(refused and s.metric("sluice_forward_connections_rejected_total") == rejected + 1,
         "one connection over max_connections is closed at once and counted")

    more = good.acked_count()
    check(t, "with every slot taken and the abusers holding theirs, the client's chunks are still acked",
          lambda: wait_for(lambda: good.acked_count() >= more + 20, 30, "acks at the limit"))
    peak = int(open(f"/proc/{s.p.pid}/status").read().split("VmHWM:")[1].split()[0])
    rss = rss_kib(s.p.pid)
    stop.set()
    t.ok(good.finish(30), "the well-behaved client stops: every chunk it sent is acked", good.stats())
    stats = good.stats()
    t.ok(stats["resends"] == 0 and stats["max_ack_s"] is not None and stats["max_ack_s"] < ACK_DEADLINE,
         f"every one of its {stats['acked']} chunks acked within {ACK_DEADLINE:.0f} s, none re-sent "
         f"(slowest {stats['max_ack_s']} s, median {stats['p50_ack_s']} s)", stats)
    msgs = kcat_consume(broker.bootstrap, TOPIC, stats["acked"] * good.per_chunk + 1000, timeout=60)
    check_delivery(t, good, ids_in(msgs), "the well-behaved client")
    print(f"# sluice VmRSS: {baseline} KiB at start, {per_idle:.1f} KiB per idle connection, {rss} KiB with "
          f"{max_conn} connections open and the abusers holding theirs; peak (VmHWM) {peak} KiB", flush=True)
    t.ok(peak < RSS_BOUND_KIB, f"sluice's peak resident memory {peak} KiB stays under {RSS_BOUND_KIB} KiB")
    for c in held:
        c.close()
    t.ok(s.wait_metric("sluice_forward_connections", lambda v: v == 0, 30), "every connection closes")
    t.eq(s.stop(), 0, "sluice stops cleanly")
finally:
    stop.set()
    good.stopping = "now"
    for c in held:
        c.close()
    s.kill()
    broker.stop()
t.done()
