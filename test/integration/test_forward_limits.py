"""The forward input's limits and listeners, with the real sluice binary:
max_connections, idle_timeout, deny_keepalive, the UDP heartbeat, harmless
connect-and-close, tag_prefix and the source address/hostname keys, unix
socket and [::1] listeners, and a fuzz-style run of many connections with
random and truncated bytes after which sluice must still answer and stay
within a memory bound."""
import gzip
import os
import random
import socket
import sys
import harness
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "forward"))

from fluent import sender as fluent_sender  # noqa: E402

import fwdlib  # noqa: E402
from fwdlib import T, Conn, Out, event_time, message, pack, rfc3339  # noqa: E402
from harness import Sluice, Tap, wait_for  # noqa: E402

tap = Tap()
RSS_LIMIT_KIB = 200 * 1024


def skip(desc, why):
    tap.ok(True, f"{desc} # SKIP {why}")


def ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def connections_and_heartbeat():
    sl = Sluice(fwdlib.config(forward="max_connections = 3\n"))
    conns = []
    try:
        for _ in range(3):
            conns.append(Conn(sl.port))
        sl.wait_metric("sluice_forward_connections", lambda v: v == 3, T)
        before = sl.metric("sluice_forward_connections_rejected_total")
        mark = len(sl.log.lines)
        extra = Conn(sl.port)
        tap.ok(extra.wait_closed(), "max_connections=3: a 4th connection is closed at once")
        extra.close()
        tap.eq(sl.metric("sluice_forward_connections_rejected_total") - before, 1.0,
               "max_connections: sluice_forward_connections_rejected_total +1")
        tap.ok(fwdlib.log_has(sl, r"forward: connection refused: max_connections \(3\) reached", mark),
               "max_connections: logged")
        acked, _ = fwdlib.probe(sl, conns[0], tag="held.0")
        tap.ok(acked, "max_connections: the 3 held connections keep working")
        conns.pop().close()
        sl.wait_metric("sluice_forward_connections", lambda v: v == 2, T)
        c = Conn(sl.port)
        acked, _ = fwdlib.probe(sl, c, tag="after.free")
        tap.ok(acked, "max_connections: once one closes, a new connection is served")
        conns.append(c)
        for c in conns:
            c.close()
        conns = []
        sl.wait_metric("sluice_forward_connections", lambda v: v == 0, T)

        # UDP heartbeat on the forward port, as fluentd's out_forward sends.
        before = sl.metric("sluice_forward_heartbeats_total")
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(3)
        reply = None
        for _ in range(5):  # a datagram may be lost; resend, never wait blindly
            u.sendto(b"\x00", ("127.0.0.1", sl.port))
            try:
                reply, _ = u.recvfrom(64)
                break
            except socket.timeout:
                pass
        u.close()
        tap.eq(reply, b"\x00", "UDP heartbeat to the forward port is answered")
        tap.ok(sl.metric("sluice_forward_heartbeats_total") - before >= 1, "sluice_forward_heartbeats_total counts it")

    finally:
        for c in conns:
            c.close()
        sl.stop()


def idle_timeout():
    sl = Sluice(fwdlib.config(forward='idle_timeout = "1s"\n'))
    try:
        before = sl.metric("sluice_forward_connections_idle_closed_total")
        mark = len(sl.log.lines)
        c = Conn(sl.port)
        tap.ok(c.wait_closed(T), "idle_timeout=1s: a silent connection is closed")
        c.close()
        tap.eq(sl.metric("sluice_forward_connections_idle_closed_total") - before, 1.0,
               "idle_timeout: sluice_forward_connections_idle_closed_total +1")
        tap.ok(fwdlib.log_has(sl, r"closing connection from 127\.0\.0\.1: idle_timeout reached", mark),
               "idle_timeout: logged")

    finally:
        sl.stop()


def deny_keepalive():
    # Default idle_timeout (5 min): every close seen here is deny_keepalive's.
    sl = Sluice(fwdlib.config(forward="deny_keepalive = true\n"))
    try:
        out = Out(sl)
        c = Conn(sl.port)
        c.send(message("ka.one", 1700000100, {"n": 1}, chunk="k1") +
               message("ka.two", 1700000101, {"n": 2}, chunk="k2"))
        tap.eq(c.recv_obj(), {"ack": "k1"}, "deny_keepalive: the first message is acked")
        tap.ok(c.wait_closed(), "deny_keepalive: then the connection is closed")
        tap.eq(c.received, pack({"ack": "k1"}), "deny_keepalive: the second message of the connection is not acked")
        c.close()
        recs = out.records(1)
        tap.eq([r["tag"] for r in recs], ["ka.one"], "deny_keepalive: only the first message is delivered")

        c = Conn(sl.port)
        c.send(message("ka.nochunk", 1700000102, {"n": 3}))
        tap.ok(c.wait_closed(), "deny_keepalive: closed after a message without chunk too")
        c.close()
        c = Conn(sl.port)
        c.send(message("ka.signal", 1700000103, {"n": 4}, fluent_signal=1))
        tap.ok(c.wait_closed(), "deny_keepalive: closed after a fluent_signal message without chunk")
        c.close()
        tap.eq(sl.metric("sluice_forward_connections_idle_closed_total"), 0.0,
               "deny_keepalive: none of these closes was the idle timeout")
    finally:
        sl.stop()


def keys_and_listeners():
    tmp = harness.tempdir("sluice-fwd-")
    path = os.path.join(tmp, "fwd.sock")
    v6 = ipv6_loopback()
    listen = f'["127.0.0.1:0", "{path}"' + (', "[::1]:0"]' if v6 else "]")
    fwd = 'tag_prefix = "edge"\nsource_address_key = "src_ip"\nsource_hostname_key = "src_host"\n'
    sl = Sluice(fwdlib.config(forward=fwd, listen=listen))
    try:
        out = Out(sl)
        c = Conn(sl.port)
        c.send(message("app.web", event_time(1700000200, 42), {"msg": "hi", "src_ip": "spoofed"}, chunk="kv"))
        tap.eq(c.recv_obj(), {"ack": "kv"}, "keys: acked")
        c.close()
        host4 = socket.getnameinfo(("127.0.0.1", 0), 0)[0]
        rec = out.records(1)[0]
        tap.eq(rec, {"tag": "edge.app.web", "time": rfc3339(1700000200, 42),
                     "record": {"msg": "hi", "src_ip": "127.0.0.1", "src_host": host4}},
               "tag_prefix prepended; source address and host name injected (overriding the client's value)")

        # unix socket: the python fluent-logger's unix:// transport.
        tap.ok(fwdlib.log_has(sl, r"forward: listening on unix:" + path.replace(".", r"\.")), "listening on the unix socket")
        out = Out(sl)
        s = fluent_sender.FluentSender("unixapp", host="unix://" + path, nanosecond_precision=True, timeout=T)
        tap.ok(s.emit_with_time("log", 1700000201.5, {"via": "unix"}), "python fluent-logger sends over the unix socket")
        s.close()
        rec = out.records(1)[0]
        tap.eq((rec["tag"], rec["time"], rec["record"].get("via")),
               ("edge.unixapp.log", rfc3339(1700000201, 500000000), "unix"), "record over the unix socket delivered")
        c = Conn(path=path)
        acked, _ = fwdlib.probe(sl, c, tag="unix.ack")
        tap.ok(acked, "unix socket: acks work")
        c.close()

        if not v6:
            skip("listening on [::1]", "no IPv6 loopback")
            skip("record over [::1] delivered with src_ip ::1", "no IPv6 loopback")
        else:
            m = sl.log.wait(r"forward: listening on \[::1\]:(\d+)", T)
            port6 = int(m.group(1))
            tap.ok(port6 > 0, f"listening on [::1]:{port6}")
            out = Out(sl)
            c = Conn(port6, host="::1", family=socket.AF_INET6)
            c.send(message("v6", 1700000202, {"n": 6}, chunk="v6"))
            tap.eq(c.recv_obj(), {"ack": "v6"}, "[::1]: acked")
            c.close()
            host6 = socket.getnameinfo(("::1", 0, 0, 0), 0)[0]
            rec = out.records(1)[0]
            tap.eq(rec["record"], {"n": 6, "src_ip": "::1", "src_host": host6},
                   "record over [::1] delivered with src_ip ::1")
    finally:
        sl.stop()
        try:
            os.unlink(path)
        except OSError:
            pass
        os.rmdir(tmp)


def fuzz_inputs(rng, n):
    """Random, truncated and corrupted forward traffic, reproducible."""
    good = [
        message("fz", event_time(1700000300, 5), {"a": "b" * 100, "n": [1, 2, {"x": None}]}, chunk="fzc"),
        pack(["fz", [[1700000300, {"i": i}] for i in range(50)], {"chunk": "fw", "size": 50}]),
        pack(["fz", b"".join(pack([1700000300, {"i": i}]) for i in range(50)), {"chunk": "pf"}]),
        pack(["fz", gzip.compress(b"".join(pack([1700000300, {"i": i}]) for i in range(50))),
              {"compressed": "gzip", "chunk": "gz"}]),
        pack(["PING", "h", "salt", "digest", "", ""]),
    ]
    for i in range(n):
        kind = i % 4
        size = rng.randint(1, 64 * 1024)
        if kind == 0:  # random bytes
            yield rng.randbytes(size)
        elif kind == 1:  # valid messages, truncated anywhere
            data = b"".join(rng.choice(good) for _ in range(rng.randint(1, 30)))
            yield data[:rng.randint(1, len(data))]
        elif kind == 2:  # valid messages with flipped bytes
            data = bytearray(b"".join(rng.choice(good) for _ in range(rng.randint(1, 30))))
            for _ in range(rng.randint(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            yield bytes(data)
        else:  # container and length headers declaring a lot
            heads = [b"\xdd\xff\xff\xff\xff", b"\xdf\x7f\xff\xff\xff", b"\xdb\x00\x10\x00\x00", b"\x9f" * 40,
                     b"\xc6\x00\x00\xff\xff", b"\x93\xa2fz\xc9\x00\x01\x00\x00\x00", b"\x92\xa2fz\xdc\xff\xff"]
            yield b"".join(rng.choice(heads) for _ in range(rng.randint(1, 50)))


def churn_and_fuzz():
    sl = Sluice(fwdlib.config())
    try:
        # Connect and close at once, many times: no error, nothing printed.
        before = sl.metrics()
        out = Out(sl)
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", sl.port), T)
            s.close()
        sl.wait_metric("sluice_forward_connections_total",
                       lambda v: v >= before["sluice_forward_connections_total"] + 20, T)
        sl.wait_metric("sluice_forward_connections", lambda v: v == 0, T)
        c = Conn(sl.port)
        acked, _ = fwdlib.probe(sl, c, tag="after.empty")
        tap.ok(acked, "20 connect-and-close: a following message is acked")
        c.close()
        after = sl.metrics()
        tap.eq(sum(after[k] - before.get(k, 0) for k in after if k.startswith("sluice_forward_errors_total")), 0.0,
               "connect-and-close counts no error")
        tap.eq([r["tag"] for r in out.records(1)], ["after.empty"], "connect-and-close prints nothing")
        rng = random.Random(20240611)
        inputs = list(fuzz_inputs(rng, 300))
        failures = []

        def worker(k):
            for data in inputs[k::4]:
                try:
                    s = socket.create_connection(("127.0.0.1", sl.port), T)
                    s.settimeout(T)
                    s.sendall(data)
                    s.shutdown(socket.SHUT_WR)
                    # Drain what the server answers (acks, PONGs) until it
                    # closes or has nothing more to say.
                    s.settimeout(0.2)
                    try:
                        while s.recv(65536):
                            pass
                    except (socket.timeout, ConnectionResetError):
                        pass
                    s.close()
                except (ConnectionRefusedError, socket.timeout) as e:
                    failures.append(repr(e))
                except OSError:
                    pass  # the server closed a connection it rejected (reset, not connected): fine

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        tap.ok(not any(t.is_alive() for t in threads) and not failures,
               f"fuzz: {len(inputs)} connections with random/truncated bytes sent "
               f"({sum(map(len, inputs)) // 1024} KiB)", failures[:5])
        tap.ok(sl.p.poll() is None, "fuzz: sluice is still running")
        status, body = sl.http("/healthz")
        tap.eq(status, 200, "fuzz: /healthz answers 200")
        # Every fuzz connection has been read to its end (and whatever valid
        # records it held printed) before the probe looks at stdout.
        sl.wait_metric("sluice_forward_connections", lambda v: v == 0, T)
        c = Conn(sl.port)
        acked, rec = fwdlib.probe(sl, c, tag="after.fuzz")
        tap.ok(acked and rec["tag"] == "after.fuzz", "fuzz: a good message is acked afterwards")
        c.close()
        m = sl.metrics()
        errors = sum(v for k, v in m.items() if k.startswith("sluice_forward_errors_total"))
        tap.ok(errors > 0 and m.get("sluice_forward_connections_total", 0) >= len(inputs) + 1,
               f"fuzz: reached the decoder ({errors:.0f} errors counted over "
               f"{m.get('sluice_forward_connections_total', 0):.0f} connections)")
        rss = fwdlib.rss_kib(sl.p.pid)
        tap.ok(0 < rss < RSS_LIMIT_KIB, f"fuzz: VmRSS {rss} KiB stays under {RSS_LIMIT_KIB} KiB")
        try:
            closed = wait_for(lambda: sl.metric("sluice_forward_connections") == 0, T, "fuzz connections to close")
        except TimeoutError:
            closed = False
        tap.ok(closed, "fuzz: every connection closed", f"{sl.metric('sluice_forward_connections')} still open")
    finally:
        rc = sl.stop()
    tap.eq(rc, 0, "fuzz: sluice exits 0 on SIGTERM afterwards")


def unread_acks():
    """A client that sends chunk after chunk without reading its acks is
    no longer read once 1 MiB of acks waits for it; once it reads, every
    ack arrives and nothing was lost."""
    sl = Sluice(fwdlib.config())
    n = 60000
    try:
        c = Conn(sl.port)
        data = b"".join(message("unread.acks", event_time(1700000000, i), {"i": i}, chunk=f"c{i:06d}-" + "x" * 120)
                        for i in range(n))
        sender = threading.Thread(target=c.send, args=(data,), daemon=True)
        sender.start()
        tap.ok(fwdlib.metric_at_least(sl, "sluice_forward_unread_replies_pauses_total", 1),
               "unread acks: reading stops once 1 MiB of acks waits unread")
        acks = set()
        for _ in range(n):
            acks.add(c.recv_obj(T)["ack"])
        sender.join(T)
        tap.eq(len(acks), n, f"unread acks: all {n} acks arrive once the client reads")
        tap.ok(fwdlib.metric_at_least(sl, "sluice_print_records_total", n), "unread acks: every record handed on")
        c.close()
    finally:
        sl.stop()


for part in (connections_and_heartbeat, idle_timeout, deny_keepalive, keys_and_listeners, churn_and_fuzz,
             unread_acks):
    try:
        part()
    except Exception as e:  # one failure, the other parts still run
        tap.ok(False, f"{part.__name__} ran to the end", f"{type(e).__name__}: {e}")
tap.done()
