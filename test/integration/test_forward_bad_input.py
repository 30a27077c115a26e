"""The forward input against bad and unusual input, byte by byte.

A raw socket client (python3-msgpack builds the bytes) sends each case to
the real sluice binary in print mode and checks what a client and an
operator would see: the ack or its absence, whether the connection closes
or stays usable, what is printed, the counter in /metrics and the log line.
Also the protocol corners a real client may use: both EventTime encodings,
v1.5 times, PackedForward as str, multi-member gzip, exact ack bytes,
keepalive nils, unknown options, a message split into 1-byte writes."""
import gzip
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "forward"))

import msgpack  # noqa: E402

import fwdlib  # noqa: E402
from fwdlib import Conn, Out, event_time, message, pack, rfc3339  # noqa: E402
from harness import Sluice, Tap  # noqa: E402

tap = Tap()
ERR = 'sluice_forward_errors_total{reason="%s"}'
LIMITS = ('chunk_size_limit = "16KiB"\nchunk_size_warn_limit = "8KiB"\n'
          'decompression_size_limit = "64KiB"\nmax_depth = 8\nskip_invalid_event = true\n')


def delta(before, after, key):
    return after.get(key, 0.0) - before.get(key, 0.0)


def closed_case(sl, what, data, reason, log_rx):
    """data must make sluice close the connection without an ack."""
    before = sl.metrics()
    mark = len(sl.log.lines)
    c = Conn(sl.port)
    try:
        c.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    tap.ok(c.wait_closed(), f"{what}: connection closed")
    tap.eq(c.received, b"", f"{what}: nothing sent back (no ack)")
    c.close()
    after = sl.metrics()
    tap.eq(delta(before, after, ERR % reason), 1.0, f"{what}: {ERR % reason} +1")
    tap.ok(fwdlib.log_has(sl, log_rx, mark), f"{what}: logged ({log_rx})")


def dropped_case(sl, what, data, key, log_rx, n=1):
    """data is one bad message with a chunk: dropped, not acked, counted,
    and the same connection still works (a following message is acked)."""
    before = sl.metrics()
    mark = len(sl.log.lines)
    out = Out(sl)
    c = Conn(sl.port)
    c.send(data)
    acked, rec = fwdlib.probe(sl, c, tag="after.bad")
    tap.ok(acked, f"{what}: no ack for it, connection stays usable: the next message is acked")
    tap.eq([r["tag"] for r in out.records(1)], ["after.bad"], f"{what}: nothing of it printed")
    c.close()
    after = sl.metrics()
    tap.eq(delta(before, after, key), float(n), f"{what}: {key} +{n}")
    tap.ok(fwdlib.log_has(sl, log_rx, mark), f"{what}: logged ({log_rx})")


def delivered_case(sl, what, data, chunk, want, key=None, log_rx=None, key_delta=1):
    """data is one message with `chunk`; want: [(tag, time text, record)]."""
    before = sl.metrics()
    mark = len(sl.log.lines)
    out = Out(sl)
    c = Conn(sl.port)
    if isinstance(data, list):  # a list of writes
        c.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in data:
            c.send(piece)
    else:
        c.send(data)
    try:
        reply = c.recv_obj()
    except (EOFError, socket.timeout) as e:
        reply = repr(e)
    tap.eq(reply, {"ack": chunk}, f"{what}: acked")
    got = out.records(len(want))
    tap.eq([(g["tag"], g["time"], g["record"]) for g in got], want, f"{what}: delivered exactly")
    c.close()
    if key:
        after = sl.metrics()
        tap.eq(delta(before, after, key), float(key_delta), f"{what}: {key} +{key_delta}")
    if log_rx:
        tap.ok(fwdlib.log_has(sl, log_rx, mark), f"{what}: logged ({log_rx})")
    return c


def nested(depth):
    v = {"leaf": 1}
    for _ in range(depth):
        v = {"d": v}
    return v


def stream_errors(sl):
    closed_case(sl, "malformed msgpack (0xc1)", b"\x93\xa3tag\xc1", "malformed_msgpack",
                r"closing connection from 127\.0\.0\.1: malformed msgpack")
    closed_case(sl, "message over chunk_size_limit",
                message("big", 1, {"m": "x" * 20000}, chunk="big-chunk"), "chunk_size_limit",
                r"closing connection from 127\.0\.0\.1: message larger than chunk_size_limit")
    # Only the header of a 4 GiB string: the declared size alone condemns it.
    closed_case(sl, "declared-huge str32 header (no body sent)", b"\x93\xa3tag\xdb\xff\xff\xff\xff",
                "chunk_size_limit", r"closing connection from 127\.0\.0\.1: message larger than chunk_size_limit")
    closed_case(sl, "nesting deeper than max_depth", message("deep", 1, nested(10), chunk="deep"), "max_depth",
                r"closing connection from 127\.0\.0\.1: nesting deeper than the maximum depth")


def message_errors(sl):
    drop = r"message from 127\.0\.0\.1 dropped \(no ack\): "
    dropped_case(sl, "top-level map", pack({"tag": "x", "chunk": "c"}), ERR % "not_array",
                 drop + "top-level value is not an array")
    dropped_case(sl, "non-string tag", pack([123, 1, {"a": 1}, {"chunk": "c"}]), ERR % "bad_tag",
                 drop + "tag is not a string")
    dropped_case(sl, "array fitting no mode", pack(["tag", 1, {"a": 1}, {"chunk": "c"}, "extra"]),
                 ERR % "bad_mode", drop + "message matches no forward mode")
    dropped_case(sl, "option not a map", pack(["tag", 1, {"a": 1}, "chunk"]), ERR % "bad_option",
                 drop + "option is not a map")
    dropped_case(sl, "bad gzip", pack(["tag", b"\x1f\x8b not really gzip", {"compressed": "gzip", "chunk": "c"}]),
                 ERR % "bad_gzip", drop + "invalid gzip payload")
    entries = pack([1, {"z": "0" * 1000}]) * 1000  # ~1 MB of entries, a few KiB gzipped
    bomb = gzip.compress(entries)
    tap.ok(len(bomb) < 16 * 1024 < 64 * 1024 < len(entries), f"gzip bomb: {len(bomb)} bytes -> {len(entries)}")
    dropped_case(sl, "gzip bomb over decompression_size_limit",
                 pack(["tag", bomb, {"compressed": "gzip", "chunk": "c"}]), ERR % "decompression_size_limit",
                 drop + "decompressed payload larger than decompression_size_limit")


def invalid_entries(sl, sl_strict):
    entries = [[1700000000, {"a": 1}], ["not-a-time", {"b": 2}], [1700000001, "not-a-map"],
               [event_time(1700000002, 3), {"c": 3}]]
    want = [("mixed", rfc3339(1700000000, 0), {"a": 1}), ("mixed", rfc3339(1700000002, 3), {"c": 3})]
    delivered_case(sl, "skip_invalid_event=true: 2 bad entries of 4",
                   pack(["mixed", entries, {"chunk": "mixed-1"}]), "mixed-1", want,
                   "sluice_forward_invalid_events_skipped_total",
                   r"2 invalid entries skipped in a message from 127\.0\.0\.1 \(tag mixed\)", key_delta=2)
    dropped_case(sl_strict, "skip_invalid_event=false: message with a bad entry",
                 pack(["mixed", entries, {"chunk": "mixed-2"}]), ERR % "invalid_event",
                 r"message from 127\.0\.0\.1 dropped \(no ack\): entry has a time or record of the wrong type")


def options(sl):
    two = [[1700000010, {"n": 1}], [1700000011, {"n": 2}]]
    want = [("sized", rfc3339(1700000010, 0), {"n": 1}), ("sized", rfc3339(1700000011, 0), {"n": 2})]
    delivered_case(sl, "size option says 5, message holds 2", pack(["sized", two, {"size": 5, "chunk": "sz"}]),
                   "sz", want, "sluice_forward_size_mismatch_total",
                   r"message from 127\.0\.0\.1 says size 5 but holds 2 entries")

    # fluent_signal: acked (the client must not re-send) but not delivered.
    before = sl.metrics()
    mark = len(sl.log.lines)
    out = Out(sl)
    c = Conn(sl.port)
    c.send(message("metrics.cpu", 1, {"cpu": 0.5}, chunk="sig", fluent_signal=1))
    tap.eq(c.recv_obj(), {"ack": "sig"}, "fluent_signal=1: acked")
    acked, _ = fwdlib.probe(sl, c, tag="after.signal")
    tap.ok(acked, "fluent_signal=1: the connection goes on")
    tap.eq([r["tag"] for r in out.records(1)], ["after.signal"], "fluent_signal=1: nothing printed for it")
    tap.eq(delta(before, sl.metrics(), "sluice_forward_signal_dropped_total"), 1.0,
           "fluent_signal=1: sluice_forward_signal_dropped_total +1")
    tap.ok(fwdlib.log_has(sl, r"message from 127\.0\.0\.1 with fluent_signal 1 .*acked and dropped", mark),
           "fluent_signal=1: logged")
    c.close()

    delivered_case(sl, "unknown options ignored",
                   pack(["unk", 1700000020, {"u": 1},
                         {"chunk": "unk", "future_option": [1, {"x": None}], "compressed_level": 9}]),
                   "unk", [("unk", rfc3339(1700000020, 0), {"u": 1})])

    # Exact ack bytes, with a chunk id ending in a newline.
    chunk = "p4QzM1nK2v9Zb0sX1yY0Yw==\n"
    c = delivered_case(sl, "ack for a chunk ending in \\n", message("ackb", 1700000030, {"a": 1}, chunk=chunk),
                       chunk, [("ackb", rfc3339(1700000030, 0), {"a": 1})])
    tap.eq(c.received, b"\x81\xa3ack" + bytes([0xa0 | len(chunk)]) + chunk.encode(),
           "ack bytes are exactly {\"ack\": chunk} (fixmap, fixstr)")

    before = sl.metrics()
    delivered_case(sl, "bare nil keepalives around a message",
                   b"\xc0\xc0" + message("ka", 1700000040, {"k": 1}, chunk="ka") + b"\xc0",
                   "ka", [("ka", rfc3339(1700000040, 0), {"k": 1})])
    after = sl.metrics()
    tap.eq(sum(delta(before, after, k) for k in after if k.startswith("sluice_forward_errors_total")), 0.0,
           "bare nil keepalives: no error counted")
    tap.eq(delta(before, after, 'sluice_forward_messages_total{mode="message"}'), 1.0,
           "bare nil keepalives: one message counted, in Message mode")


def encodings(sl):
    data = message("split", event_time(1700000050, 987654321), {"s": "split into single bytes"}, chunk="sp")
    delivered_case(sl, "message sent in 1-byte writes", [data[i:i + 1] for i in range(len(data))], "sp",
                   [("split", rfc3339(1700000050, 987654321), {"s": "split into single bytes"})])

    fixext8 = message("et.fixext8", event_time(1700000060, 123456789), {"e": 1}, chunk="fx")
    at = 1 + len(pack("et.fixext8"))
    tap.eq(fixext8[at:at + 2], b"\xd7\x00", "python3-msgpack packs the EventTime as fixext8")
    delivered_case(sl, "EventTime as fixext8", fixext8, "fx", [("et.fixext8", rfc3339(1700000060, 123456789), {"e": 1})])
    ext8 = b"\x94" + pack("et.ext8") + fwdlib.event_time_ext8(1700000061, 999999999) + pack({"e": 2}) + \
        pack({"chunk": "x8"})
    delivered_case(sl, "EventTime as ext8", ext8, "x8", [("et.ext8", rfc3339(1700000061, 999999999), {"e": 2})])
    v15 = pack(["et.v15", [event_time(1700000062, 1), {"trace_id": "abc"}], {"e": 3}, {"chunk": "v15"}])
    delivered_case(sl, "v1.5 time [EventTime, {metadata}]", v15, "v15",
                   [("et.v15", rfc3339(1700000062, 1), {"e": 3})])

    entries = [[event_time(1700000070 + i, 100 + i), {"i": i}] for i in range(3)]
    payload = b"".join(pack(e) for e in entries)
    want = [("packed.text", rfc3339(1700000070 + i, 100 + i), {"i": i}) for i in range(3)]
    as_str = b"\x93" + pack("packed.text") + msgpack.packb(payload, use_bin_type=False) + \
        pack({"compressed": "text", "chunk": "pt", "size": 3})
    tap.ok(as_str[1 + len(pack("packed.text"))] in (0xd9, 0xda), "PackedForward payload sent as str (old clients)")
    delivered_case(sl, "PackedForward as str with compressed: \"text\"", as_str, "pt", want,
                   'sluice_forward_records_total{mode="packed_forward"}', key_delta=3)

    first = b"".join(pack([event_time(1700000080 + i, 7), {"m": 1, "i": i}]) for i in range(2))
    second = b"".join(pack([event_time(1700000090 + i, 8), {"m": 2, "i": i}]) for i in range(3))
    gz = gzip.compress(first) + gzip.compress(second)
    want = ([("cpf", rfc3339(1700000080 + i, 7), {"m": 1, "i": i}) for i in range(2)] +
            [("cpf", rfc3339(1700000090 + i, 8), {"m": 2, "i": i}) for i in range(3)])
    delivered_case(sl, "CompressedPackedForward with two gzip members",
                   pack(["cpf", gz, {"compressed": "gzip", "chunk": "gz2", "size": 5}]), "gz2", want,
                   'sluice_forward_records_total{mode="compressed_packed_forward"}', key_delta=5)


sl = Sluice(fwdlib.config(forward=LIMITS))
sl_strict = Sluice(fwdlib.config(forward=LIMITS.replace("skip_invalid_event = true", "skip_invalid_event = false")))
try:
    for part, args in ((stream_errors, (sl,)), (message_errors, (sl,)), (invalid_entries, (sl, sl_strict)),
                       (options, (sl,)), (encodings, (sl,))):
        try:
            part(*args)
        except Exception as e:  # one failure, the other parts still run
            tap.ok(False, f"{part.__name__} ran to the end", f"{type(e).__name__}: {e}")
    tap.ok(sl.p.poll() is None and sl_strict.p.poll() is None, "sluice survived every bad input")
finally:
    rc1, rc2 = sl.stop(), sl_strict.stop()
tap.eq((rc1, rc2), (0, 0), "both exit 0 on SIGTERM")
tap.done()
