"""The forward input against real third-party clients and the handshake.

Debian's python3-fluent-logger (Message mode, EventTime) and the npm
fluent-logger package (acks, shared-key and user handshake) send records to
the real sluice binary in print mode; every tag, time (to the nanosecond)
and record must come out on stdout exactly as sent.  A raw-socket client
checks the HELO/PING/PONG bytes, with digests computed here with hashlib, and
the auth failure counters."""
import hashlib
import json
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "forward"))

from fluent import sender as fluent_sender  # noqa: E402

import fwdlib  # noqa: E402
import harness  # noqa: E402
from fwdlib import T, Conn, Out, pack  # noqa: E402
from harness import Sluice, Tap  # noqa: E402

tap = Tap()
NODE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "forward", "node_client.js")
NODE_MODULE = os.path.join(harness.SRCDIR, "test", "node", "node_modules", "fluent-logger")
KEY = "s3cret-key"
SELF_HOST = "sluice-under-test"
AUTH_FAIL = 'sluice_forward_auth_failures_total{reason="%s"}'


def sha512_hex(*parts):
    h = hashlib.sha512()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
    return h.hexdigest()


def run_node(port, tag, records, security, timeout=60):
    job = {"port": port, "tag": tag, "security": security, "records": records}
    env = dict(os.environ, FLUENT_LOGGER_DIR=NODE_MODULE)
    p = subprocess.run(["node", NODE_SCRIPT, json.dumps(job)], capture_output=True, timeout=timeout, env=env)
    lines = [json.loads(l) for l in p.stdout.decode().splitlines() if l.startswith("{")]
    return p.returncode, lines, p.stderr.decode()


def expect_records(got, want, what):
    """got: printed JSON lines; want: (tag, time text, record) in order."""
    tap.eq(len(got), len(want), f"{what}: {len(want)} records printed")
    tap.eq([(g["tag"], g["time"], g["record"]) for g in got], want,
           f"{what}: every tag, timestamp (ns) and record arrives exactly as sent, in order")


def python_fluent_logger():
    sl = Sluice(fwdlib.config())
    try:
        out = Out(sl)
        s = fluent_sender.FluentSender("pyapp", host="127.0.0.1", port=sl.port, nanosecond_precision=True,
                                       timeout=T)
        # Times that are exact in binary floating point, so the client's
        # EventTime(float) carries a known nanosecond count; plus an integer
        # time (Message mode with plain seconds).
        cases = [  # (label, time sent, expected (sec, nsec), record)
            ("web", 1700000000.5, (1700000000, 500000000), {"msg": "hello", "status": 200, "latency_ms": 12.25}),
            ("web", 1700000001.25, (1700000001, 250000000),
             {"nested": {"a": [1, 2, {"b": None}], "ok": True}, "neg": -42}),
            ("db", 1700000002.0078125, (1700000002, 7812500),
             {"unicode": "h\u00e9llo \u2713 \u65e5\u672c", "big": 2 ** 63 - 1, "empty": {}}),
            ("db", 4294967295.75, (4294967295, 750000000), {"list": ["x", 1.5, False], "s": ""}),
            ("int", 1700000004, (1700000004, 0), {"plain_seconds": 1}),
        ]
        want = []
        for label, ts, (sec, nsec), rec in cases:
            ok = s.emit_with_time(label, ts, rec)
            tap.ok(ok, f"python fluent-logger: emit {label} at {ts!r} succeeds", s.last_error)
            if isinstance(ts, float):
                sent = struct.unpack(">II", fluent_sender.EventTime(ts).data)
                tap.eq(sent, (sec, nsec), f"the client sends EventTime {sec}.{nsec:09d} for {ts!r}")
            want.append((f"pyapp.{label}", fwdlib.rfc3339(sec, nsec), rec))
        s.close()
        expect_records(out.records(len(cases)), want, "python fluent-logger")
        m = sl.metrics()
        tap.eq(m.get('sluice_forward_records_total{mode="message"}'), float(len(cases)),
               "sluice_forward_records_total counts them, in Message mode (one record an emit)")
        tap.eq(m.get("sluice_print_records_total"), float(len(cases)), "sluice_print_records_total counts them")
    finally:
        sl.stop()


def node_records(n, base_sec):
    nsecs = [0, 1, 999999999, 123456789, 500000000]
    recs = []
    for i in range(n):
        recs.append({"label": ["api", "worker"][i % 2], "sec": base_sec + i, "nsec": nsecs[i % len(nsecs)],
                     "data": {"i": i, "msg": f"record {i}", "user": {"id": 1000 + i, "tags": ["a", "b"]},
                              "ratio": i / 4, "ok": i % 3 == 0}})
    return recs


def node_want(tag, recs):
    return [(f"{tag}.{r['label']}", fwdlib.rfc3339(r["sec"], r["nsec"]), r["data"]) for r in recs]


def shared_key_tests():
    sl = Sluice(fwdlib.config(security=f'shared_key = "{KEY}"\nself_hostname = "{SELF_HOST}"'))
    try:
        # npm fluent-logger with acks and the shared-key handshake.  The
        # client itself checks the PONG's digest of the server.
        recs = node_records(20, 1700001000)
        out = Out(sl)
        rc, lines, err = run_node(sl.port, "nodeapp", recs, {"clientHostname": "node-client", "sharedKey": KEY})
        tap.eq(rc, 0, "npm fluent-logger: handshake accepted and the run completes")
        tap.eq(sorted(l["acked"] for l in lines if "acked" in l), list(range(20)),
               "npm fluent-logger: every one of the 20 records is acked" + ("" if rc == 0 else f" ({err[-300:]})"))
        expect_records(out.records(20), node_want("nodeapp", recs), "npm fluent-logger")
        tap.ok(sl.metric("sluice_forward_acks_total") >= 20, "sluice_forward_acks_total counts the acks")

        # Raw client: HELO, a correct PING, PONG bytes and digest.
        c = Conn(sl.port)
        helo = c.recv_obj()
        tap.ok(isinstance(helo, list) and len(helo) == 2 and helo[0] == "HELO", "HELO is [\"HELO\", {options}]",
               helo)
        opts = helo[1]
        nonce = opts.get("nonce")
        tap.ok(isinstance(nonce, bytes) and len(nonce) == 16, "HELO nonce is 16 bytes of bin", opts)
        tap.eq((opts.get("auth"), opts.get("keepalive")), ("", True), "HELO without user auth: auth \"\", keepalive")
        salt = "0123456789abcdef0123456789abcdef"
        c.send(pack(["PING", "raw-client", salt, sha512_hex(salt, "raw-client", nonce, KEY), "", ""]))
        pong = c.recv_obj()
        tap.eq(pong, ["PONG", True, "", SELF_HOST, sha512_hex(salt, SELF_HOST, nonce, KEY)],
               "correct PING: PONG true with the server's digest (hashlib)")
        acked, rec = fwdlib.probe(sl, c, tag="raw.auth")
        tap.ok(acked and rec["tag"] == "raw.auth", "after the handshake a message is printed and acked", rec)
        c.close()

        # Raw client, wrong key: exact PONG bytes, closed, counted, logged.
        key_fail = AUTH_FAIL % "shared_key mismatch"
        before = sl.metric(key_fail)
        mark = len(sl.log.lines)
        out = Out(sl)
        c = Conn(sl.port)
        nonce = c.recv_obj()[1]["nonce"]
        c.send(pack(["PING", "raw-client", salt, sha512_hex(salt, "raw-client", nonce, "wrong-key"), "", ""])
               + fwdlib.message("must.not.pass", 1, {"x": 1}, chunk="c1"))
        helo_len = len(c.received)
        tap.ok(c.wait_closed(), "wrong shared key: connection closed after PONG")
        tap.eq(c.received[helo_len:], pack(["PONG", False, "shared_key mismatch", "", ""]),
               "wrong shared key: PONG bytes are exactly [\"PONG\", false, \"shared_key mismatch\", \"\", \"\"]")
        tap.ok(fwdlib.metric_at_least(sl, key_fail, before + 1), f"{key_fail} counts it")
        tap.ok(fwdlib.log_has(sl, r"forward: handshake from 127\.0\.0\.1 refused: shared_key mismatch", mark),
               "the refusal is logged with the reason")
        c.close()

        # A refused client gets one PONG and nothing more: a second PING in
        # the same write (now with the right key) is not answered.
        c = Conn(sl.port)
        nonce = c.recv_obj()[1]["nonce"]
        helo_len = len(c.received)
        c.send(pack(["PING", "raw-client", salt, sha512_hex(salt, "raw-client", nonce, "guess-1"), "", ""])
               + pack(["PING", "raw-client", salt, sha512_hex(salt, "raw-client", nonce, KEY), "", ""]))
        tap.ok(c.wait_closed(), "refused handshake with a second PING queued: connection closed")
        tap.eq(c.received[helo_len:], pack(["PONG", False, "shared_key mismatch", "", ""]),
               "only the first PING is answered: no second try on a refused connection")
        c.close()

        # npm client with the wrong key sees the reason and sends nothing.
        before = sl.metric(key_fail)
        rc, lines, err = run_node(sl.port, "nodeapp", node_records(2, 1700002000),
                                  {"clientHostname": "node-client", "sharedKey": "not-the-key"})
        errs = [l.get("error", "") for l in lines]
        tap.ok(rc != 0 and any("shared_key mismatch" in e for e in errs),
               "npm fluent-logger with a wrong key fails with \"shared_key mismatch\"", (rc, lines, err[-300:]))
        tap.ok(fwdlib.metric_at_least(sl, key_fail, before + 1), f"{key_fail} counts the npm client too")

        # Malformed PING.
        ping_fail = AUTH_FAIL % "invalid ping message"
        c = Conn(sl.port)
        c.recv_obj()
        helo_len = len(c.received)
        c.send(pack(["PING", "raw-client"]))
        tap.ok(c.wait_closed(), "malformed PING: connection closed")
        tap.eq(c.received[helo_len:], pack(["PONG", False, "invalid ping message", "", ""]),
               "malformed PING: PONG [false, \"invalid ping message\", \"\", \"\"]")
        tap.ok(fwdlib.metric_at_least(sl, ping_fail, 1), f"{ping_fail} counts it")
        c.close()
        tap.eq(out.lines(), [], "nothing from a refused client is printed")
    finally:
        sl.stop()


def user_auth_tests():
    sec = (f'shared_key = "{KEY}"\nself_hostname = "{SELF_HOST}"\nuser_auth = true\n'
           '[[input.forward.security.users]]\nusername = "alice"\npassword = "pw-alice"\n'
           '[[input.forward.security.users]]\nusername = "bob"\npassword = "pw-bob"\n')
    sl = Sluice(fwdlib.config(security=sec))
    try:
        salt = "fedcba9876543210fedcba9876543210"
        c = Conn(sl.port)
        helo = c.recv_obj()
        nonce, auth = helo[1]["nonce"], helo[1]["auth"]
        tap.ok(isinstance(auth, bytes) and len(auth) == 16, "user auth: HELO carries a 16-byte auth salt", helo)
        c.send(pack(["PING", "raw-client", salt, sha512_hex(salt, "raw-client", nonce, KEY), "bob",
                     sha512_hex(auth, "bob", "pw-bob")]))
        tap.eq(c.recv_obj(), ["PONG", True, "", SELF_HOST, sha512_hex(salt, SELF_HOST, nonce, KEY)],
               "user auth: right username/password accepted")
        acked, rec = fwdlib.probe(sl, c, tag="raw.user")
        tap.ok(acked, "user auth: message acked after the handshake", rec)
        c.close()

        user_fail = AUTH_FAIL % "username/password mismatch"
        for who, pw in (("alice", "pw-bob"), ("mallory", "pw-alice")):
            c = Conn(sl.port)
            helo = c.recv_obj()
            nonce, auth = helo[1]["nonce"], helo[1]["auth"]
            helo_len = len(c.received)
            c.send(pack(["PING", "raw-client", salt, sha512_hex(salt, "raw-client", nonce, KEY), who,
                         sha512_hex(auth, who, pw)]))
            tap.ok(c.wait_closed(), f"user auth: {who} with a wrong password: connection closed")
            tap.eq(c.received[helo_len:], pack(["PONG", False, "username/password mismatch", "", ""]),
                   f"user auth: {who}: PONG [false, \"username/password mismatch\", \"\", \"\"]")
            c.close()
        tap.ok(fwdlib.metric_at_least(sl, user_fail, 2), f"{user_fail} counts both")

        out = Out(sl)
        recs = node_records(3, 1700003000)
        rc, lines, err = run_node(sl.port, "nodeuser", recs, {"clientHostname": "node-client", "sharedKey": KEY,
                                                              "username": "alice", "password": "pw-alice"})
        tap.eq(rc, 0, "npm fluent-logger with username/password: accepted, all acked" +
               ("" if rc == 0 else f" ({lines} {err[-300:]})"))
        expect_records(out.records(3), node_want("nodeuser", recs), "npm fluent-logger with user auth")
        rc, lines, err = run_node(sl.port, "nodeuser", recs, {"clientHostname": "node-client", "sharedKey": KEY,
                                                              "username": "alice", "password": "nope"})
        tap.ok(rc != 0 and any("username/password mismatch" in l.get("error", "") for l in lines),
               "npm fluent-logger with a wrong password fails with \"username/password mismatch\"", (rc, lines))
    finally:
        sl.stop()


for part in (python_fluent_logger, shared_key_tests, user_auth_tests):
    try:
        part()
    except Exception as e:  # a crash in one part is one failure, the others still run
        tap.ok(False, f"{part.__name__} ran to the end", f"{type(e).__name__}: {e}")
tap.done()
