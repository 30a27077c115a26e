"""The README's memory bound, checked against the agent's real peak: the
agent runs with small limits so that the formula's number fits this machine,
is sent the worst inputs the README names, and its VmHWM (peak resident set,
from /proc) must stay under baseline + the formula's terms.

The inputs, on all max_connections connections where they can be:
  a. gzip bombs of tiny [0,{}] entries, one within decompression_size_limit
     (refused by decoded_values_limit) and one of ~65 KB over it (refused by
     decompression_size_limit); each connection is kept and acks a good chunk
     afterwards;
  b. Forward messages of ~chunk_size_limit whose headers declare exactly
     decoded_values_limit values (accepted, acked), and one declaring one more
     (refused, connection closed);
  c. a frame of just under chunk_size_limit left unfinished on every
     connection but one;
  d. with the broker down, the producer queue filled to
     queue.buffering.max.messages and nearly to queue.buffering.max.kbytes
     with chunked records, one 8 MiB (inflated) message held back; then the
     broker comes back and every chunk is acked.
Then, each on a fresh agent, the per-record copies the queue's byte limit
does not count:
  e. the tag: librdkafka copies it into every record's fluent.tag header,
     and its queue.buffering.max.kbytes counts only record values; a tag
     over tag_size_limit is refused, a full queue of records under a tag at
     the limit stays within the bound;
  f. chunk ids: each pending chunk keeps a copy of its id until Kafka has
     its records; an id over 256 bytes is refused, a full queue of chunks
     with 256-byte ids stays within the bound.
And with [input.forward.tls]:
  g. 256 idle TLS connections (handshake done) cost at most the formula's
     TLS term each, and c's unfinished frames sent over TLS on every
     connection stay within the bound with that term.
The numbers (baseline, peak, bound and its terms) are printed as TAP
comments."""
import gzip
import os
import socket
import ssl
import subprocess
import sys
import threading

import msgpack

from harness import SRCDIR, Broker, Sluice, Tap, tempdir, wait_for

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import ForwardClient, sluice_config  # noqa: E402

T = 20.0
KiB = 1024
MiB = 1024 * 1024

MAX_CONN = 16
CHUNK = 1 * MiB
VALUES = 100000
DECOMP = 8 * MiB
Q_KBYTES = 16384
Q_MSGS = 20000
TAG_MAX = 1 * KiB  # tag_size_limit's default

FORWARD = (f"max_connections = {MAX_CONN}\n"
           f'chunk_size_limit = "{CHUNK // MiB}MiB"\n'
           f'chunk_size_warn_limit = "{CHUNK // MiB}MiB"\n'
           f"decoded_values_limit = {VALUES}\n"
           f'decompression_size_limit = "{DECOMP // MiB}MiB"\n')
PROPS = {"queue.buffering.max.kbytes": str(Q_KBYTES), "queue.buffering.max.messages": str(Q_MSGS)}
TOPIC = "mem"
ROUTE = f'\n[[route]]\nmatch = "**"\ntopic = "{TOPIC}"\n'

# Before decoded_values_limit budgeted packed entries, every entry of an
# inflated payload was decoded: two 24-byte msgpack_objects ([time, record]).
PRE_FIX_BYTES_PER_ENTRY = 48

tap = Tap()


def note(text):
    print(f"# {text}", flush=True)


def proc_kib(pid, field):
    """A kB field of /proc/PID/status (VmHWM: peak resident set; VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


TLS_PER_CONN = 64 * KiB  # the formula's TLS term, per connection


def bound_terms(tls=False):
    """The README's "Memory." formula, term by term, in bytes."""
    return [("max_connections x 64 KiB (TLS)", MAX_CONN * TLS_PER_CONN)] * tls + [
        ("max_connections x (chunk_size_limit + 1.3 MiB)", MAX_CONN * (CHUNK + 1.3 * MiB)),
        ("2 x (32 B x decoded_values_limit + decompression_size_limit + chunk_size_limit)",
         2 * (32 * VALUES + DECOMP + CHUNK)),
        ("6 x chunk_size_limit", 6 * CHUNK),
        ("queue.buffering.max.kbytes x 1024", Q_KBYTES * 1024),
        ("queue.buffering.max.messages x (640 B + tag_size_limit)", Q_MSGS * (640 + TAG_MAX)),
    ]


def bound_kib(baseline_kib, tls=False):
    return baseline_kib + int(sum(b for _, b in bound_terms(tls)) / KiB)


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def values_of(obj):
    """The values sluice's decoder budgets for obj: the value itself and,
    inside every array and map, each element (a map's pair counts two)."""
    if isinstance(obj, (list, tuple)):
        return 1 + sum(values_of(x) for x in obj)
    if isinstance(obj, dict):
        return 1 + sum(values_of(k) + values_of(v) for k, v in obj.items())
    return 1


def error_count(sl, reason):
    return sl.metric(f'sluice_forward_errors_total{{reason="{reason}"}}')


def gzip_message(tag, payload, chunk):
    return pack([tag, gzip.compress(payload, 6), {"compressed": "gzip", "chunk": chunk}])


def dense_forward(tag, values, size, chunk):
    """A Forward message of exactly `size` bytes whose headers declare
    exactly `values` values: [0,{}] entries (32 decoded bytes a value: two
    objects and an entry slot for three values), an array of fixints to land
    on the count, and a string (one value) to fill the bytes."""
    pad = {"p": "", "a": []}
    entries = [[0, {}]] * ((values - 64) // 3) + [[0, pad]]
    msg = [tag, entries, {"chunk": chunk}]
    pad["a"] = [1] * (values - values_of(msg))
    room = size - len(pack(msg))
    pad["p"] = "x" * (room - 4)  # "" packs in 1 byte, a str32 of n in n + 5
    data = pack(msg)
    assert values_of(msg) == values and len(data) == size, (values_of(msg), len(data))
    return data, len(entries)


def partial_frame(tag, size):
    """All but the last 200 bytes of a [tag, bin, options] message of `size`
    bytes: the decoder must keep them, waiting for the rest of the bin."""
    head = pack([tag, b"", {"chunk": "never"}])
    data = pack([tag, b"\0" * (size - len(head) - 3), {"chunk": "never"}])  # 2-byte bin8 -> 5-byte bin32
    assert len(data) == size
    return data[:-200]


def send_each(pairs):
    """Sends every (client, bytes) from its own thread, so that a client
    whose bytes sluice stops reading (backpressure) does not hold up the
    others.  Returns the errors."""
    errors = []

    def send(c, data):
        try:
            c.sock.settimeout(T)
            c.sock.sendall(data)
        except OSError as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=send, args=p) for p in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2 * T)
        if t.is_alive():
            errors.append("a send did not finish")
    return errors


def acked(c, chunk, timeout=T):
    try:
        return bool(c.wait_ack(chunk, timeout))
    except TimeoutError:
        return False


def closed_by_server(c, timeout=T):
    def eof():
        try:
            c.poll(0.05)
            return False
        except EOFError:
            return True
    try:
        return wait_for(eof, timeout, "the server to close the connection")
    except TimeoutError:
        return False


def metric_reaches(sl, key, pred, timeout=T):
    try:
        sl.wait_metric(key, pred, timeout)
        return True
    except TimeoutError:
        return False


def start_agent(broker):
    sl = Sluice(sluice_config(broker.bootstrap, ROUTE, PROPS, forward=FORWARD))
    return sl, proc_kib(sl.p.pid, "VmHWM")


def check_peak(sl, baseline, what, tls=False):
    peak = proc_kib(sl.p.pid, "VmHWM")
    bound = bound_kib(baseline, tls)
    note(f"{what}: baseline VmHWM {baseline} KiB, peak VmHWM {peak} KiB, bound {bound} KiB "
         f"(peak - baseline = {peak - baseline} KiB of {bound - baseline} KiB allowed)")
    tap.ok(peak <= bound, f"{what}: VmHWM {peak} KiB <= the README's bound {bound} KiB",
           f"peak {peak} KiB exceeds baseline {baseline} KiB + terms {bound - baseline} KiB "
           f"by {peak - bound} KiB")
    return peak


# ---- a-d on one agent ----------------------------------------------------------


def bombs(sl, conns):
    """a. Two gzip bombs of [0,{}] entries on every connection."""
    entry = b"\x92\x00\x80"  # [0, {}]
    within_entries = DECOMP // len(entry)
    within = gzip_message("mem.bomb", entry * within_entries, "a-within")
    over_entries = 64 * MiB // len(entry) + 1
    over = gzip_message("mem.bomb", entry * over_entries, "a-over")
    note(f"a: within-limit bomb {len(within)} bytes -> {within_entries * len(entry)} inflated bytes, "
         f"{within_entries} entries; over-limit bomb {len(over)} bytes -> {over_entries * len(entry)} bytes")
    tap.ok(len(over) < 80 * KiB and over_entries * len(entry) > DECOMP,
           f"a: the over-limit bomb is {len(over)} bytes of gzip inflating past decompression_size_limit")
    before = {r: error_count(sl, r) for r in ("decoded_values_limit", "decompression_size_limit")}
    errors = send_each([(c, within + over + pack(["mem.good", 0, {"i": i}, {"chunk": f"a-good-{i}"}]))
                        for i, c in enumerate(conns)])
    tap.ok(not errors, f"a: both bombs and a good chunk sent on all {MAX_CONN} connections", errors)
    ok = [acked(c, f"a-good-{i}") for i, c in enumerate(conns)]
    tap.ok(all(ok), "a: every connection is kept and acks its good chunk after the bombs", ok)
    tap.eq([a for c in conns for a in c.acks if not a.startswith("a-good-")], [], "a: no bomb is acked")
    for reason in before:
        tap.eq(error_count(sl, reason) - before[reason], float(MAX_CONN),
               f'a: sluice_forward_errors_total{{reason="{reason}"}} counts the {MAX_CONN} bombs')
    tap.eq(sl.metric("sluice_forward_connections"), float(MAX_CONN), f"a: all {MAX_CONN} connections still open")
    return within_entries


def dense(sl, conns):
    """b. A Forward message at decoded_values_limit on every connection at
    once (more records than the queue holds: one is held back while the
    others' frames wait in their decoders), then one value over it."""
    at, n_entries = dense_forward("mem.dense", VALUES, CHUNK - 16, "b-at")
    over, _ = dense_forward("mem.dense", VALUES + 1, CHUNK - 16, "b-over")
    note(f"b: {len(at)}-byte Forward message declaring {VALUES} values ({n_entries} records); "
         f"another declaring {VALUES + 1}")
    pauses = sl.metric("sluice_forward_pauses_total")
    delivered = sl.metric_sum("sluice_kafka_delivered_total")
    errors = send_each([(c, at) for c in conns])
    tap.ok(not errors, f"b: the at-limit message sent on all {MAX_CONN} connections", errors)
    ok = [acked(c, "b-at", 2 * T) for c in conns]
    tap.ok(all(ok), f"b: all {MAX_CONN} at-limit messages are accepted and acked", ok)
    tap.ok(sl.metric("sluice_forward_pauses_total") > pauses,
           "b: they overfilled the producer queue (reading paused, a message held back)")
    got = sl.metric_sum("sluice_kafka_delivered_total") - delivered
    tap.ok(got >= MAX_CONN * n_entries, f"b: Kafka acknowledged their {got:.0f} records ({MAX_CONN} x {n_entries})")
    before = error_count(sl, "decoded_values_limit")
    errors = send_each([(conns[0], over)])
    tap.ok(not errors and closed_by_server(conns[0]),
           "b: one value over decoded_values_limit: the connection is closed", errors)
    tap.eq(error_count(sl, "decoded_values_limit") - before, 1.0,
           'b: sluice_forward_errors_total{reason="decoded_values_limit"} +1')
    tap.ok("b-over" not in conns[0].acks, "b: the over-limit message is not acked")
    conns[0].close()


def partials_and_full_queue(sl, broker, conns):
    """c and d: an unfinished frame on 15 connections, then with the broker
    down the 16th fills the producer queue; one message is held back."""
    part = partial_frame("mem.partial", CHUNK - 16)
    read = sl.metric("sluice_forward_bytes_total")
    errors = send_each([(c, part) for c in conns[1:]])
    tap.ok(not errors and metric_reaches(sl, "sluice_forward_bytes_total",
                                         lambda v: v >= read + len(part) * len(conns[1:])),
           f"c: sluice read an unfinished {len(part)}-byte frame on {len(conns) - 1} connections", errors)

    broker.down()
    filler = ForwardClient(sl.port)
    # Values of 838 JSON bytes: 20000 of them fill both queue limits at once.
    entry = pack([0, {"p": "x" * 830}])
    per_msg = DECOMP // len(entry)
    payload = entry * per_msg
    fills = [gzip_message("mem.fill", payload, f"d-{k}") for k in range(3)]
    note(f"d: 3 messages of {len(fills[0])} gzip bytes, each {len(payload)} inflated bytes, {per_msg} records "
         f"of 838 JSON bytes")
    full = sl.metric("sluice_kafka_queue_full_total")
    errors = send_each([(filler, b"".join(fills))])
    tap.ok(not errors, "d: sent the queue-filling messages with the broker down", errors)
    # The in-flight gauge follows the producer's serve (at least every
    # 100 ms), so it is waited for like the others.
    held = (metric_reaches(sl, "sluice_forward_paused", lambda v: v == 1) and
            metric_reaches(sl, "sluice_ingest_held_back_messages", lambda v: v == 1) and
            metric_reaches(sl, "sluice_kafka_inflight_records", lambda v: v >= Q_MSGS - 1))
    m = sl.metrics()
    inflight = m.get("sluice_kafka_inflight_records", 0)
    tap.ok(held and inflight >= Q_MSGS - 1 and m.get("sluice_kafka_queue_full_total", 0) > full,
           f"d: the queue is full ({inflight:.0f} records of {Q_MSGS}, ~{inflight * 838 / MiB:.1f} MiB of "
           f"{Q_KBYTES // 1024} MiB), reading paused, one message held back",
           {k: v for k, v in m.items() if "paused" in k or "held_back" in k or "inflight" in k})
    tap.eq(filler.poll(0.1), [], "d: no chunk is acked while the broker is down")
    tap.eq(sl.metric("sluice_forward_connections"), float(MAX_CONN),
           f"d: the {MAX_CONN - 1} connections with unfinished frames are still open")
    peak_held = proc_kib(sl.p.pid, "VmHWM")
    note(f"d: VmHWM with everything held: {peak_held} KiB (VmRSS {proc_kib(sl.p.pid, 'VmRSS')} KiB)")

    broker.up()
    ok = [acked(filler, f"d-{k}", 2 * T) for k in range(3)]
    tap.ok(all(ok), "d: broker back: the 3 chunks are acked", ok)
    tap.ok(metric_reaches(sl, "sluice_kafka_inflight_records", lambda v: v == 0) and
           metric_reaches(sl, "sluice_forward_paused", lambda v: v == 0),
           "d: the queue drains and reading resumes")
    return filler


def worst_inputs(broker):
    sl, baseline = start_agent(broker)
    conns = []
    try:
        for name, b in bound_terms():
            note(f"bound term: {name} = {b / MiB:.1f} MiB")
        note(f"baseline VmHWM right after start: {baseline} KiB; bound = {bound_kib(baseline)} KiB")
        conns = [ForwardClient(sl.port) for _ in range(MAX_CONN)]
        tap.ok(metric_reaches(sl, "sluice_forward_connections", lambda v: v == MAX_CONN),
               f"{MAX_CONN} connections open (max_connections)")
        within_entries = bombs(sl, conns)
        dense(sl, conns)
        filler = partials_and_full_queue(sl, broker, conns)
        conns.append(filler)
        peak = check_peak(sl, baseline, "a-d")
        driven = Q_KBYTES + (MAX_CONN - 1) * CHUNK // KiB
        tap.ok(peak - baseline >= driven,
               f"a-d: the attack raised the peak by {peak - baseline} KiB, at least the queue's payloads and the "
               f"unfinished frames ({driven} KiB): the measurement saw the inputs held")

        bound = bound_kib(baseline)
        pre_fix = MAX_CONN * within_entries * PRE_FIX_BYTES_PER_ENTRY // KiB
        note(f"pre-fix amplification: {MAX_CONN} x {within_entries} entries x {PRE_FIX_BYTES_PER_ENTRY} B "
             f"= {pre_fix} KiB, against the bound {bound} KiB and the peak {peak} KiB")
        tap.ok(bound * 10 < pre_fix,
               f"the bound ({bound} KiB) is far below what the bombs decoded entry by entry would take "
               f"({pre_fix} KiB): the check can see that amplification")

        for c in conns[1:MAX_CONN]:
            c.close()
        tap.ok(metric_reaches(sl, "sluice_forward_connections", lambda v: v == 1),
               "the connections with unfinished frames close cleanly")
        after = ForwardClient(sl.port)
        conns.append(after)
        after.send_message("mem.after", 0, {"after": True}, chunk="after")
        tap.ok(acked(after, "after"), "after the attack a new connection's good chunk is acked")
        filler.send_message("mem.after", 0, {"after": True}, chunk="after-filler")
        tap.ok(acked(filler, "after-filler"), "after the attack the filling connection still works")
    finally:
        for c in conns:
            c.close()
        rc = sl.stop()
    tap.eq(rc, 0, "sluice exits 0 on SIGTERM after the attack")


# ---- e, f: per-record copies the queue limits do not count ----------------------


def held_copies(broker, what, frames, n_records, chunks):
    """Sends frames with the broker down, waits until their n_records
    records are in the producer, reads the peak, then lets them drain."""
    sl, baseline = start_agent(broker)
    try:
        c = ForwardClient(sl.port)
        c.send_message("mem.warm", 0, {"warm": True}, chunk="warm")
        tap.ok(acked(c, "warm"), f"{what}: warm-up chunk acked")
        broker.down()
        errors = send_each([(c, b"".join(frames))])
        tap.ok(not errors and metric_reaches(sl, "sluice_kafka_inflight_records", lambda v: v >= n_records),
               f"{what}: {n_records} records ({sum(map(len, frames))} bytes on the wire) wait in the producer",
               errors)
        m = sl.metrics()
        note(f"{what}: paused={m.get('sluice_forward_paused')}, queue_full_total="
             f"{m.get('sluice_kafka_queue_full_total')}, inflight={m.get('sluice_kafka_inflight_records')}")
        check_peak(sl, baseline, what)
        if not chunks:
            c.close()  # its acks are not the point; closing abandons them
        broker.up()
        if chunks:
            ok = [acked(c, ch, 2 * T) for ch in chunks]
            tap.ok(all(ok), f"{what}: broker back: the chunk is acked", ok)
            c.close()
        tap.ok(metric_reaches(sl, "sluice_kafka_inflight_records", lambda v: v == 0, 2 * T) and
               metric_reaches(sl, "sluice_forward_pending_acks", lambda v: v == 0),
               f"{what}: broker back: every record delivered, no chunk left pending")
    finally:
        rc = sl.stop()
    tap.eq(rc, 0, f"{what}: sluice exits 0 on SIGTERM")


def refused(broker, what, frame, reason):
    """A frame the limits refuse: counted under its reason, no ack, and the
    connection still acks a good chunk."""
    sl, _ = start_agent(broker)
    try:
        c = ForwardClient(sl.port)
        c.sock.sendall(frame)
        tap.ok(metric_reaches(sl, f'sluice_forward_errors_total{{reason="{reason}"}}', lambda v: v == 1),
               f"{what}: refused, counted under reason {reason}")
        c.send_message("mem.after", 0, {"after": True}, chunk="after")
        tap.ok(acked(c, "after"), f"{what}: the connection is kept and acks a good chunk")
        tap.ok("big" not in c.acks, f"{what}: the refused message is not acked", c.acks)
        c.close()
    finally:
        rc = sl.stop()
    tap.eq(rc, 0, f"{what}: sluice exits 0 on SIGTERM")


def long_tag(broker):
    """e. A 64 KiB tag is refused (every record would carry a copy); a full
    queue of records under a tag of tag_size_limit bytes stays within the
    bound (its copies are the formula's tag_size_limit term)."""
    refused(broker, "e (64 KiB tag)", pack(["mem." + "t" * (64 * KiB - 4), [[0, {}]] * 10, {"chunk": "big"}]),
            "tag_size_limit")
    n = Q_MSGS
    tag = "mem." + "t" * (TAG_MAX - 4)
    frame = pack([tag, [[0, {}]] * n, {"chunk": "e"}])
    note(f"e: one {len(frame)}-byte Forward message, tag of {len(tag)} bytes, {n} records of {{}}: "
         f"{n * len(tag) // KiB} KiB of headers")
    held_copies(broker, "e (tag at the limit)", [frame], n, ["e"])


def long_chunk_ids(broker):
    """f. A 128 KiB chunk id is refused; Q_MSGS one-record messages with
    256-byte ids (the longest accepted) stay within the bound."""
    refused(broker, "f (128 KiB chunk id)", pack(["mem.chunk", 0, {}, {"chunk": "c" * (128 * KiB)}]), "bad_option")
    n = Q_MSGS
    frames = [pack(["mem.chunk", 0, {}, {"chunk": f"f-{i:05d}-".ljust(256, "c")}]) for i in range(n)]
    note(f"f: {n} Message-mode messages of {len(frames[0])} bytes, each with a chunk id of 256 bytes")
    # The client leaves before the broker comes back: the point is the
    # peak while every id waits.
    held_copies(broker, "f (256-byte chunk ids)", frames, n, [])


# ---- g: TLS ------------------------------------------------------------------------


class TlsClient:
    """A forward client over TLS (the handshake done when made); .sock as
    ForwardClient's, for send_each."""

    def __init__(self, port):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=T))

    def close(self):
        self.sock.close()


def tls_agent(broker, max_conn):
    d = tempdir("sluice-mem-tls-")
    key, crt = os.path.join(d, "server.key"), os.path.join(d, "server.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    forward = (FORWARD.replace(f"max_connections = {MAX_CONN}", f"max_connections = {max_conn}") +
               f'[input.forward.tls]\ncert_file = "{crt}"\nkey_file = "{key}"\n')
    sl = Sluice(sluice_config(broker.bootstrap, ROUTE, PROPS, forward=forward))
    return sl, proc_kib(sl.p.pid, "VmHWM")


def tls_connections(broker):
    """g. What an idle TLS connection costs, then the unfinished frames of c
    over TLS against the bound with its TLS term."""
    n = 256
    sl, _ = tls_agent(broker, n)
    conns = []
    try:
        before = proc_kib(sl.p.pid, "VmRSS")
        conns = [TlsClient(sl.port) for _ in range(n)]
        tap.ok(metric_reaches(sl, "sluice_forward_tls_handshakes_total", lambda v: v >= n),
               f"g: {n} TLS connections made (handshakes counted)")
        after = proc_kib(sl.p.pid, "VmRSS")
        per = (after - before) * KiB / n
        note(f"g: VmRSS {before} KiB before, {after} KiB with {n} idle TLS connections: {per / KiB:.1f} KiB each")
        tap.ok(per <= TLS_PER_CONN, f"g: an idle TLS connection costs {per / KiB:.1f} KiB, within the formula's "
                                    f"{TLS_PER_CONN // KiB} KiB")
    finally:
        for c in conns:
            c.close()
        tap.eq(sl.stop(), 0, "g: sluice exits 0")

    sl, baseline = tls_agent(broker, MAX_CONN)
    conns = []
    try:
        conns = [TlsClient(sl.port) for _ in range(MAX_CONN)]
        part = partial_frame("mem.tls", CHUNK - 16)
        errors = send_each([(c, part) for c in conns])
        tap.ok(not errors and metric_reaches(sl, "sluice_forward_bytes_total",
                                             lambda v: v >= len(part) * MAX_CONN),
               f"g: sluice read an unfinished {len(part)}-byte frame over TLS on {MAX_CONN} connections", errors)
        check_peak(sl, baseline, "g (TLS, unfinished frames)", tls=True)
    finally:
        for c in conns:
            c.close()
        tap.eq(sl.stop(), 0, "g: sluice exits 0 after the TLS frames")


broker = Broker(topics=[f"{TOPIC}:2"])
try:
    for part in (worst_inputs, long_tag, long_chunk_ids, tls_connections):
        try:
            part(broker)
        except Exception as e:  # one failure, the other parts still run
            tap.ok(False, f"{part.__name__} ran to the end", f"{type(e).__name__}: {e}")
finally:
    broker.stop()
tap.done()
