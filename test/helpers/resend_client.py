"""A forward client that keeps its records the way fluentd's out_forward
does with require_ack_response: every PackedForward chunk carries a
`chunk` id and stays with the client until sluice acks it; a chunk whose
ack does not come within `ack_timeout`, or whose connection is lost, is
sent again (same chunk id, same records) on a new connection.  That is the
client half of sluice's at-least-once promise, and what the fault tests
use to check the other half: every acked record is in Kafka, none is lost,
and a record appears twice only if its chunk was sent twice.

Records are {"id": "<prefix><chunk>-<i>", "chunk": <chunk>, "i": <i>};
ids are unique per client.  The client runs in a thread of its own
(`start`), sending up to `window` chunks ahead at `chunks_per_s`, until
`finish` asks it to stop sending new chunks and wait for the last acks.
The server's port comes from `port()`, read at each connection, so a test
can restart sluice on another port."""
import os
import sys
import threading
import time
from collections import Counter

from harness import SRCDIR

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import ForwardClient, event_time  # noqa: E402


class ResendingClient:
    def __init__(self, port, tag, prefix="r", records_per_chunk=50, window=8, chunks_per_s=20.0,
                 ack_timeout=3.0):
        self.port = port if callable(port) else (lambda: port)
        self.tag = tag
        self.prefix = prefix
        self.per_chunk = records_per_chunk
        self.window = window
        self.interval = 1.0 / chunks_per_s
        self.ack_timeout = ack_timeout
        self.lock = threading.Lock()
        self.chunks = {}  # chunk number -> the entries, kept until acked
        self.sent_at = {}  # chunk number -> when it was last sent
        self.unacked = []  # chunk numbers in the order they were first sent
        self.acked = set()
        self.times_sent = Counter()  # chunk number -> sends (> 1: re-sent)
        self.ack_latency = []  # seconds from the first send to the ack
        self.first_sent = {}
        self.timeouts = 0  # connections given up because an ack was late
        self.disconnects = 0  # connections sluice closed or reset
        self.connect_failures = 0
        self.errors = []
        self.stray_acks = []
        self.next_chunk = 0
        self.conn = None
        self.stopping = False
        self.thread = None

    # ---- what the test reads ----------------------------------------------------

    def acked_count(self):
        with self.lock:
            return len(self.acked)

    def resends(self):
        with self.lock:
            return sum(n - 1 for n in self.times_sent.values())

    def stats(self):
        with self.lock:
            lat = sorted(self.ack_latency)
            return {"chunks": self.next_chunk, "acked": len(self.acked),
                    "resent_chunks": sum(1 for n in self.times_sent.values() if n > 1),
                    "resends": sum(n - 1 for n in self.times_sent.values()), "ack_timeouts": self.timeouts,
                    "disconnects": self.disconnects, "connect_failures": self.connect_failures,
                    "stray_acks": len(self.stray_acks),
                    "max_ack_s": round(lat[-1], 3) if lat else None,
                    "p50_ack_s": round(lat[len(lat) // 2], 3) if lat else None,
                    "errors": list(self.errors)}

    def record_id(self, chunk, i):
        return f"{self.prefix}{chunk}-{i}"

    # ---- running ----------------------------------------------------------------

    def start(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def finish(self, timeout=60):
        """Stops sending new chunks and waits until every chunk sent is
        acked (re-sending as needed).  True when all were acked."""
        self.stopping = True
        self.thread.join(timeout)
        alive = self.thread.is_alive()
        self.stopping = "now"  # a thread still waiting gives up
        if alive:
            self.thread.join(10)
        with self.lock:
            return not alive and not self.unacked and not self.errors

    def _run(self):
        next_send = time.monotonic()
        try:
            while self.stopping != "now":
                with self.lock:
                    if self.stopping and not self.unacked:
                        break
                if self.conn is None and not self._connect():
                    continue
                now = time.monotonic()
                if not self.stopping and now >= next_send and len(self.unacked) < self.window:
                    self._send(self._new_chunk())
                    next_send = max(next_send + self.interval, now - 1.0)
                self._read_acks()
                self._check_timeouts()
        except Exception as e:  # noqa: BLE001 - reported by finish() and errors
            self.errors.append(repr(e))
        if self.conn:
            self.conn.close()

    def _new_chunk(self):
        n = self.next_chunk
        self.next_chunk += 1
        now = int(time.time())
        entries = [(event_time(now, i), {"id": self.record_id(n, i), "chunk": n, "i": i})
                   for i in range(self.per_chunk)]
        with self.lock:
            self.chunks[n] = entries
            self.unacked.append(n)
            self.first_sent[n] = time.monotonic()
        return n

    def _connect(self):
        try:
            self.conn = ForwardClient(self.port(), timeout=self.ack_timeout)
        except OSError:
            self.connect_failures += 1
            self.conn = None
            time.sleep(min(1.0, 0.05 * 2 ** min(self.connect_failures, 5)))  # reconnect backoff, as fluentd's
            return False
        # Everything not acked goes again, oldest first.
        with self.lock:
            pending = list(self.unacked)
        for n in pending:
            if not self._send(n):
                return False
        return True

    def _send(self, n):
        """Sends chunk n; on a failed send the connection is dropped (the
        part of a frame already written dies with it)."""
        if self.conn is None:
            return False
        with self.lock:
            entries = self.chunks[n]
            self.times_sent[n] += 1
            self.sent_at[n] = time.monotonic()
        try:
            self.conn.sock.settimeout(self.ack_timeout)
            self.conn.send_packed(self.tag, entries, chunk=f"{self.prefix}{n}")
            return True
        except OSError:
            self._drop(timeout=False)
            return False

    def _read_acks(self):
        if self.conn is None:  # the send just before lost the connection
            return
        try:
            acks = self.conn.poll(0.02)
        except (EOFError, OSError):
            self._drop(timeout=False)
            return
        if not acks:
            return
        now = time.monotonic()
        with self.lock:
            for a in acks:
                n = a[len(self.prefix):]
                n = int(n) if isinstance(a, str) and a.startswith(self.prefix) and n.isdigit() else None
                if n in self.chunks:
                    self.acked.add(n)
                    self.ack_latency.append(now - self.first_sent[n])
                    del self.chunks[n]
                    self.unacked.remove(n)
                else:
                    self.stray_acks.append(a)  # for no chunk waiting on this connection
        self.conn.acks.clear()

    def _check_timeouts(self):
        if self.conn is None:
            return
        now = time.monotonic()
        with self.lock:
            late = any(now - self.sent_at[n] > self.ack_timeout for n in self.unacked)
        if late:
            self._drop(timeout=True)

    def _drop(self, timeout):
        if timeout:
            self.timeouts += 1
        else:
            self.disconnects += 1
        if self.conn:
            self.conn.close()
        self.conn = None


def check_delivery(tap, client, ids, what):
    """TAP checks of the at-least-once property for the record ids read
    back from Kafka: every record of an acked chunk is there, nothing
    else is, and every duplicate belongs to a chunk sent more than once.
    Returns the number of duplicate records."""
    got = Counter(ids)
    with client.lock:
        acked = set(client.acked)
        times_sent = Counter(client.times_sent)
        resent = {n for n, k in times_sent.items() if k > 1}
        sent = client.next_chunk
    want = {client.record_id(n, i) for n in acked for i in range(client.per_chunk)}
    lost = sorted(want - set(got))
    tap.ok(not lost, f"{what}: every record of the {len(acked)} acked chunks is in Kafka ({len(want)} unique ids)",
           f"{len(lost)} missing, e.g. {lost[:5]}")
    every = {client.record_id(n, i) for n in range(sent) for i in range(client.per_chunk)}
    strays = sorted(set(got) - every)
    tap.ok(not strays, f"{what}: Kafka holds no record the client did not send", strays[:5])
    dups = {i: k for i, k in got.items() if k > 1}
    bad = sorted((i, k) for i, k in dups.items() if k > times_sent[int(i[len(client.prefix):].split("-")[0])])
    tap.ok(not bad, f"{what}: a record is in Kafka twice only if its chunk was sent again, and at most once a send "
           f"({sum(k - 1 for k in dups.values())} duplicate records, of the {len(resent)} re-sent chunks)",
           f"(id, copies) beyond the chunk's sends: {bad[:5]}")
    return sum(k - 1 for k in dups.values())
