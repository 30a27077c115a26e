"""TLS on the forward input ([input.forward.tls]) against real clients.

Certificates are made here with the `openssl` command: a CA, the server's
(for localhost and 127.0.0.1, its key also encrypted), a client's, an
expired client's (`openssl ca` with dates in the past) and one from an
unrelated CA.  Debian's `openssl s_client` carries msgpack bytes built with
python3-msgpack, the npm fluent-logger uses its `tls` option, and `sluice
cat --tls` its own; records with acks must arrive in Kafka (mock broker,
read with kcat) under their tag.  Every bad handshake (no client
certificate, wrong CA, expired, TLS 1.1, plain text, a stalled handshake)
must close the connection with a counter and one log line, and the loop
must go on serving others meanwhile.  The shared-key handshake runs inside
TLS, and bad files are startup errors naming the file."""
import calendar
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import msgpack

import harness
from harness import SLUICE, Broker, Sluice, Tap, kcat_consume, wait_for

sys.path.insert(0, os.path.join(harness.SRCDIR, "test", "integration", "forward"))
import fwdlib  # noqa: E402

tap = Tap()
T = 20.0
NODE_CLIENT = os.path.join(harness.SRCDIR, "test", "node", "tls_client.js")
TLS_ERR = 'sluice_forward_tls_errors_total{reason="%s"}'
HANDSHAKES = "sluice_forward_tls_handshakes_total"
KEY = "tls-and-key"
PASS = "hunter2"

for tool in ("openssl", "kcat", "node"):
    if subprocess.run(["which", tool], capture_output=True).returncode:
        tap.skip_all(f"{tool} is not installed (packaging/install-deps.sh)")

# ---- certificates ------------------------------------------------------------

D = harness.tempdir("sluice-tls-")


def p(name):
    return os.path.join(D, name)


def openssl(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, cwd=D)
    if r.returncode:
        raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr.decode()}")


def new_key_and_csr(name, cn):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p(name + ".key"),
            "-out", p(name + ".csr"), "-subj", f"/CN={cn}")


def make_ca(name, cn):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            p(name + ".key"), "-out", p(name + ".crt"), "-days", "2", "-subj", f"/CN={cn}")


def sign(name, ca, ext=None):
    args = ["x509", "-req", "-in", p(name + ".csr"), "-CA", p(ca + ".crt"), "-CAkey", p(ca + ".key"),
            "-CAcreateserial", "-out", p(name + ".crt"), "-days", "2"]
    if ext:
        with open(p(name + ".ext"), "w") as f:
            f.write(ext)
        args += ["-extfile", p(name + ".ext")]
    openssl(*args)


def sign_expired(name, ca):
    """`openssl ca` takes explicit dates: a certificate that ended in 2020."""
    with open(p("ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial.txt\n"
                "default_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n")
    open(p("index.txt"), "w").close()
    with open(p("serial.txt"), "w") as f:
        f.write("1000\n")
    openssl("ca", "-batch", "-config", p("ca.cnf"), "-cert", p(ca + ".crt"), "-keyfile", p(ca + ".key"), "-in",
            p(name + ".csr"), "-out", p(name + ".crt"), "-startdate", "20200101000000Z", "-enddate",
            "20200201000000Z", "-notext")


make_ca("ca", "sluice test CA")
make_ca("other-ca", "unrelated CA")
new_key_and_csr("server", "localhost")
sign("server", "ca", "subjectAltName = DNS:localhost, IP:127.0.0.1\n")
openssl("pkey", "-in", p("server.key"), "-aes256", "-passout", f"pass:{PASS}", "-out", p("server-enc.key"))
new_key_and_csr("client", "client-1")
sign("client", "ca")
new_key_and_csr("expired", "client-expired")
sign_expired("expired", "ca")
new_key_and_csr("rogue", "client-rogue")
sign("rogue", "other-ca")
GOOD = ["-cert", p("client.crt"), "-key", p("client.key")]  # s_client's options
CAT_GOOD = ["--cert", p("client.crt"), "--key", p("client.key")]


def tls_section(client_auth="required", key="server.key", extra=""):
    text = f'[input.forward.tls]\ncert_file = "{p("server.crt")}"\nkey_file = "{p(key)}"\n'
    if client_auth != "none":
        text += f'ca_file = "{p("ca.crt")}"\nclient_auth = "{client_auth}"\n'
    return text + extra


def config(bootstrap, forward="", tls="", security=""):
    text = ('[log]\nlevel = "info"\n[http]\nlisten = "127.0.0.1:0"\n'
            f'[input.forward]\nlisten = ["127.0.0.1:0"]\n{forward}\n')
    if security:
        text += f"[input.forward.security]\n{security}\n"
    text += tls
    return text + f'[kafka]\nbrokers = "{bootstrap}"\n[[route]]\nmatch = "**"\ntopic = "tls.logs"\n'


# ---- clients -----------------------------------------------------------------

def message(tag, record, chunk):
    return msgpack.packb([tag, int(time.time()), record, {"chunk": chunk}], use_bin_type=True)


class SClient:
    """`openssl s_client -quiet` with the forward bytes on its stdin: what
    the server sends back (after the handshake) comes out on its stdout.
    Closing its stdin sends close_notify (-no_ign_eof)."""

    def __init__(self, port, *args):
        self.p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-quiet",
                                   "-no_ign_eof", "-verify_return_error", "-CAfile", p("ca.crt"), *args],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for chunk in iter(lambda: self.p.stdout.read1(65536), b""):
            self.out += chunk

    def send(self, data):
        try:
            self.p.stdin.write(data)
            self.p.stdin.flush()
        except BrokenPipeError:
            pass

    def wait_out(self, want, timeout=T):
        """Waits until stdout holds `want` bytes or s_client ends."""
        try:
            wait_for(lambda: len(self.out) >= len(want) or self.p.poll() is not None, timeout, "s_client")
        except TimeoutError:
            pass
        return self.out

    def finish(self, timeout=T):
        """Closes stdin; returns (exit code, stdout, stderr)."""
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.reader.join(5)
        return self.p.returncode, self.out, self.p.stderr.read().decode(errors="replace")


def sclient_ack(port, tag, chunk, *args):
    """Sends one Message with a chunk; returns (the bytes that came back,
    s_client's exit code, its stderr)."""
    c = SClient(port, *args)
    c.send(message(tag, {"via": "s_client", "chunk": chunk}, chunk))
    c.wait_out(fwdlib.ack_bytes(chunk))
    rc, out, err = c.finish()
    return out, rc, err


def one_flight(port, data, cert=True):
    """Python's ssl over memory BIOs: after the server's handshake messages,
    the client's Finished, `data` and close_notify leave in one send, so
    that the server reads them together."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(p("ca.crt"))
    if cert:
        ctx.load_cert_chain(p("client.crt"), p("client.key"))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    sock = socket.create_connection(("127.0.0.1", port), timeout=T)
    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                incoming.write(sock.recv(65536))
        tls.write(data)
        try:
            tls.unwrap()
        except ssl.SSLWantReadError:
            pass
        sock.sendall(outgoing.read())
        while sock.recv(65536):  # until the server closes
            pass
    except OSError:
        pass
    finally:
        sock.close()


def cat(port, tag, n, *args, timeout=60):
    return subprocess.run([SLUICE, "cat", "-p", str(port), "--ack", "--generate", str(n), "--mode", "packed",
                           "--batch", "50", "--timeout", "20", *args, tag], capture_output=True, timeout=timeout)


def node(port, tag, records, cert=True, shared_key=None):
    job = {"port": port, "tag": tag, "ca": p("ca.crt"), "records": records}
    if cert:
        job.update(cert=p("client.crt"), key=p("client.key"))
    if shared_key:
        job["sharedKey"] = shared_key
    import json
    r = subprocess.run(["node", NODE_CLIENT, json.dumps(job)], capture_output=True, timeout=60)
    lines = [json.loads(l) for l in r.stdout.decode().splitlines() if l.startswith("{")]
    return r.returncode, lines, r.stderr.decode()


def tags_in_kafka(bootstrap, count):
    """{fluent.tag header: number of records} of the first `count`
    records of the topic."""
    out = {}
    for m in kcat_consume(bootstrap, "tls.logs", count):
        tag = re.search(r"fluent\.tag=([^,]*)", m["headers"])
        out[tag.group(1) if tag else None] = out.get(tag.group(1) if tag else None, 0) + 1
    return out


def refused(sl, reason, what, run):
    """run() makes a bad client connect; its connection must be closed,
    counted under `reason` and logged once with the peer and OpenSSL's
    reason."""
    key = TLS_ERR % reason
    before = sl.metric(key)
    mark = len(sl.log.lines)
    result = run()
    tap.ok(fwdlib.metric_at_least(sl, key, before + 1), f"{what}: counted in {key}", sl.metrics().get(key))
    line = rf"warn  forward: closing connection from 127\.0\.0\.1: TLS failed \({reason}\): \S"
    seen = fwdlib.log_has(sl, line, mark)
    tap.ok(seen and sum(1 for x in sl.log.lines[mark:] if re.search(line, x)) == 1,
           f"{what}: one log line names the peer and the reason", sl.log.text()[-600:])
    return result


# ---- a server that requires client certificates --------------------------

def required_client_auth(broker):
    sl = Sluice(config(broker.bootstrap, forward="workers = 2",
                       tls=tls_section(extra='handshake_timeout = "1s"\n')))
    try:
        tap.ok(sl.log.seen(r"forward: listening on 127\.0\.0\.1:\d+ \(tls, udp heartbeat\)"),
               "the listen line says the port speaks TLS")
        want = {}
        # openssl s_client: one Message with a chunk, TLS 1.3 and 1.2.
        for version in ("-tls1_3", "-tls1_2"):
            chunk = f"sclient{version}"
            out, rc, err = sclient_ack(sl.port, f"tls.sclient{version}", chunk, version, *GOOD)
            tap.eq(out, fwdlib.ack_bytes(chunk), f"s_client {version} with a client certificate: the ack comes back"
                   + ("" if out else f" ({err[-300:]})"))
            want[f"tls.sclient{version}"] = 1

        # The npm fluent-logger with tls: true.
        recs = [{"label": ["web", "db"][i % 2], "data": {"i": i, "msg": f"node {i}"}} for i in range(20)]
        rc, lines, err = node(sl.port, "tls.node", recs)
        tap.eq((rc, lines), (0, [{"acked": 20}]), "npm fluent-logger (tls: true, tlsOptions): 20 records acked"
               + ("" if rc == 0 else f" ({err[-300:]})"))
        want.update({"tls.node.web": 10, "tls.node.db": 10})

        # sluice cat --tls, in 12 connections: with workers = 2 each worker
        # gets some (the kernel spreads them), and every one speaks TLS.
        oks = 0
        for i in range(12):
            r = cat(sl.port, "tls.cat", 100, "--ca", p("ca.crt"), *CAT_GOOD)
            oks += r.returncode == 0
            if r.returncode:
                tap.ok(False, "sluice cat --tls", r.stderr.decode())
        tap.eq(oks, 12, "sluice cat --tls --cert --key: 12 runs of 100 records, all acked")
        want["tls.cat"] = 1200
        m = sl.metrics()
        per_worker = [v for k, v in m.items() if k.startswith("sluice_forward_worker_connections_total{")]
        tap.ok(len(per_worker) == 2 and min(per_worker) > 0,
               "both workers accepted TLS connections (every one completed its handshake)", per_worker)

        total = sum(want.values())
        got = tags_in_kafka(broker.bootstrap, total)
        tap.eq(got, want, f"all {total} acked records are in Kafka under their tags (fluent.tag header)")
        tap.eq(sl.metric(HANDSHAKES), 15.0, f"{HANDSHAKES} counts the 15 handshakes")
        handshakes = sl.metric(HANDSHAKES)

        # Refused clients.
        def no_cert():
            return sclient_ack(sl.port, "tls.nocert", "nocert")

        out, rc, err = refused(sl, "no_client_cert", "s_client without a certificate", no_cert)
        tap.ok(out == b"" and rc != 0 and "certificate required" in err,
               "without a certificate: no ack, s_client is told 'certificate required'", (out, rc, err[-300:]))
        rc, lines, err = refused(sl, "no_client_cert", "npm fluent-logger without a certificate",
                                 lambda: node(sl.port, "tls.node", recs[:1], cert=False))
        tap.ok(rc == 1 and lines and "error" in lines[-1], "npm fluent-logger without a certificate: an error, no ack",
               (rc, lines, err))
        r = refused(sl, "no_client_cert", "sluice cat without a certificate",
                    lambda: cat(sl.port, "tls.cat", 1, "--ca", p("ca.crt")))
        tap.ok(r.returncode == 1 and b"certificate required" in r.stderr,
               "sluice cat without a certificate: exit 1, says the server required one", r.stderr.decode())

        out, rc, err = refused(sl, "client_cert_rejected", "a client certificate of another CA",
                               lambda: sclient_ack(sl.port, "tls.rogue", "rogue", "-cert", p("rogue.crt"),
                                                   "-key", p("rogue.key")))
        tap.ok(out == b"" and "unknown ca" in err, "wrong CA: no ack, s_client is told 'unknown ca'", err[-300:])
        tap.ok(sl.log.seen(r"TLS failed \(client_cert_rejected\): .*certificate verify failed \(unable to get local "
                           r"issuer certificate\)"), "the log line has OpenSSL's verification result")

        out, rc, err = refused(sl, "client_cert_expired", "an expired client certificate",
                               lambda: sclient_ack(sl.port, "tls.expired", "expired", "-cert", p("expired.crt"),
                                                   "-key", p("expired.key")))
        tap.ok(out == b"" and "certificate expired" in err, "expired: no ack, s_client is told 'certificate expired'",
               err[-300:])

        # TLS 1.1: SECLEVEL=0 lets the client offer it, so the refusal is
        # the server's (min_version = "1.2").
        out, rc, err = refused(sl, "protocol_version", "a TLS 1.1 client",
                               lambda: sclient_ack(sl.port, "tls.old", "old", "-tls1_1", "-cipher",
                                                   "DEFAULT@SECLEVEL=0", *GOOD))
        tap.ok(out == b"" and "protocol version" in err, "TLS 1.1: refused with a protocol_version alert", err[-300:])

        # Plain forward protocol to the TLS port.
        def plain():
            c = fwdlib.Conn(sl.port)
            c.send(message("tls.plain", {"plain": True}, "plain"))
            closed = c.wait_closed()
            c.close()
            return closed, c.received

        closed, received = refused(sl, "not_tls", "plain forward protocol to the TLS port", plain)
        tap.ok(closed and fwdlib.ack_bytes("plain") not in received, "plain text: closed, never acked",
               received[:80])

        # A handshake that stalls (the TCP connection opens, then nothing)
        # is closed after handshake_timeout; meanwhile others are served.
        def stalled():
            c = fwdlib.Conn(sl.port)
            t0 = time.monotonic()
            out, rc, _ = sclient_ack(sl.port, "tls.meanwhile", "meanwhile", *GOOD)
            closed = c.wait_closed(T)
            took = time.monotonic() - t0
            c.close()
            return took, closed, out

        took, closed, out = refused(sl, "handshake_timeout", "a stalled handshake", stalled)
        tap.eq(out, fwdlib.ack_bytes("meanwhile"), "while a handshake stalls, another client is served and acked")
        tap.ok(closed and 0.9 <= took < 10, f"the stalled connection is closed after handshake_timeout = 1s "
                                            f"(took {took:.2f}s)")
        # Half a ClientHello, then silence: the same.
        def half_hello():
            c = fwdlib.Conn(sl.port)
            c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            closed = c.wait_closed(T)
            c.close()
            return closed

        tap.ok(refused(sl, "handshake_timeout", "half a ClientHello, then nothing", half_hello),
               "half a ClientHello: closed after handshake_timeout")
        tap.eq(sl.metric(HANDSHAKES), handshakes + 1, f"{HANDSHAKES} counts only completed handshakes")

        # A TLS 1.2 client asking to renegotiate (s_client's "R" command):
        # refused with a no_renegotiation alert, which OpenSSL's client
        # answers by giving up.
        def renegotiate():
            c = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{sl.port}", "-tls1_2", "-CAfile",
                                  p("ca.crt"), *GOOD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT)
            c.stdin.write(b"R\n")
            c.stdin.flush()
            try:
                out = c.communicate(timeout=T)[0]
            except subprocess.TimeoutExpired:
                c.kill()
                out = c.communicate()[0]
            return out.decode(errors="replace")

        out = refused(sl, "peer_alert", "a client that asks to renegotiate", renegotiate)
        tap.ok("RENEGOTIATING" in out and "no renegotiation" in out,
               "renegotiation is refused (no_renegotiation alert)", out[-400:])

        # The end of the handshake, a message and close_notify in one read:
        # the message is handled before the connection closes.
        msgs = 'sluice_forward_messages_total{mode="message"}'
        before = sl.metric(msgs)
        one_flight(sl.port, message("tls.flight", {"one": "flight"}, "flight"))
        tap.ok(fwdlib.metric_at_least(sl, msgs, before + 1),
               "Finished, a message and close_notify in one read: the message is handled")

        # After all that the server is as it was.
        out, rc, err = sclient_ack(sl.port, "tls.after", "after", *GOOD)
        tap.eq(out, fwdlib.ack_bytes("after"), "after the refused clients a good one is still acked")
        tap.eq(sl.metric("sluice_forward_tls_certificate_expiry_timestamp_seconds"), not_after(p("server.crt")),
               "the certificate's expiry is on /metrics")
        tap.eq(sl.stop(), 0, "sluice stops cleanly with TLS connections behind it")
    finally:
        sl.stop()


# ---- optional client certificates, the shared key inside TLS ----------------

def optional_client_auth_with_shared_key(broker):
    security = f'shared_key = "{KEY}"\nself_hostname = "tls-server"'
    tls = tls_section("optional", key="server-enc.key",
                      extra=f'key_passphrase = "{PASS}"\nmin_version = "1.3"\n')
    sl = Sluice(config(broker.bootstrap, tls=tls, security=security))
    try:
        r = cat(sl.port, "tls.key", 10, "--ca", p("ca.crt"), "--shared-key", KEY)
        tap.ok(r.returncode == 0, "client_auth = optional: sluice cat without a certificate, shared key inside "
                                  "TLS: acked (the key's passphrase was used)", r.stderr.decode())
        r = cat(sl.port, "tls.key", 10, "-H", "localhost", "--ca", p("ca.crt"), "--shared-key", KEY, *CAT_GOOD)
        tap.ok(r.returncode == 0, "with a certificate, to the name localhost: acked", r.stderr.decode())
        rc, lines, err = node(sl.port, "tls.node-key", [{"label": "x", "data": {"k": 1}}], cert=False,
                              shared_key=KEY)
        tap.eq((rc, lines), (0, [{"acked": 1}]), "npm fluent-logger: TLS and the shared-key handshake, acked"
               + ("" if rc == 0 else f" ({err[-300:]})"))
        fail_key = 'sluice_forward_auth_failures_total{reason="shared_key mismatch"}'
        # A message right behind the TLS handshake, without the forward
        # handshake: taken as the (invalid) PING, never as a message.
        ping_fail = 'sluice_forward_auth_failures_total{reason="invalid ping message"}'
        msgs = 'sluice_forward_messages_total{mode="message"}'
        before = sl.metric(msgs)
        one_flight(sl.port, message("tls.sneak", {"no": "key"}, "sneak"), cert=False)
        tap.ok(fwdlib.metric_at_least(sl, ping_fail, 1), "a message sent with the end of the TLS handshake still "
                                                         "meets the shared-key handshake: refused as a PING")
        tap.eq(sl.metric(msgs), before, "and it is not taken as a message")
        r = cat(sl.port, "tls.key", 1, "--ca", p("ca.crt"), "--shared-key", "wrong")
        tap.ok(r.returncode == 1 and b"shared_key mismatch" in r.stderr,
               "a wrong shared key inside TLS is refused by the forward handshake", r.stderr.decode())
        tap.ok(fwdlib.metric_at_least(sl, fail_key, 1), f"{fail_key} counts it")
        r = refused(sl, "client_cert_rejected", "optional: a certificate of another CA is still checked",
                    lambda: cat(sl.port, "tls.key", 1, "--ca", p("ca.crt"), "--shared-key", KEY, "--cert",
                                p("rogue.crt"), "--key", p("rogue.key")))
        tap.ok(r.returncode == 1, "and the client is refused", r.stderr.decode())
        out, rc, err = refused(sl, "protocol_version", "min_version = 1.3: a TLS 1.2 client",
                               lambda: sclient_ack(sl.port, "tls.v12", "v12", "-tls1_2", *GOOD))
        tap.ok(out == b"" and "protocol version" in err, "TLS 1.2 against min_version = \"1.3\": refused with a "
               "protocol_version alert", err[-300:])
        r = cat(sl.port, "tls.key", 1, "--ca", p("other-ca.crt"), "--shared-key", KEY)
        tap.ok(r.returncode == 1 and b"certificate verify failed" in r.stderr,
               "sluice cat checks the server: a CA that did not sign it fails the handshake", r.stderr.decode())
        tap.ok(fwdlib.metric_at_least(sl, TLS_ERR % "peer_alert", 1),
               "the client's alert (it distrusts the server) is counted as peer_alert")
        r = subprocess.run([SLUICE, "cat", "-p", str(sl.port), "--ack", "tls.key"], input=b'{"a":1}\n',
                           capture_output=True, timeout=30)
        tap.ok(r.returncode == 1, "sluice cat without --tls to a TLS port fails", r.stderr.decode())
        tap.ok(fwdlib.metric_at_least(sl, TLS_ERR % "not_tls", 1), "and is counted as not_tls")
        tap.eq(sl.stop(), 0, "sluice stops cleanly")
    finally:
        sl.stop()


# ---- SIGHUP: certificates read again ----------------------------------------

def not_after(path):
    out = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-enddate"], capture_output=True,
                         text=True).stdout.strip().split("=", 1)[1]
    return float(calendar.timegm(time.strptime(out, "%b %d %H:%M:%S %Y GMT")))


def replace_file(path, data):
    with open(path + ".new", "wb") as f:
        f.write(data)
    os.rename(path + ".new", path)


def reload_certificates(broker):
    sl = Sluice(config(broker.bootstrap, forward="workers = 2", tls=tls_section()))
    expiry = "sluice_forward_tls_certificate_expiry_timestamp_seconds"
    original = open(p("server.crt"), "rb").read()
    try:
        tap.eq(sl.metric(expiry), not_after(p("server.crt")), "the expiry gauge is the certificate's notAfter")
        # A renewed certificate (same key, 5 days) at the same path.
        openssl("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial",
                "-out", p("renewed.crt"), "-days", "5", "-extfile", p("server.ext"))
        replace_file(p("server.crt"), open(p("renewed.crt"), "rb").read())
        mark = len(sl.log.lines)
        sl.p.send_signal(signal.SIGHUP)
        tap.ok(fwdlib.log_has(sl, r"info  forward: TLS reloaded from \S*server\.crt \(valid until \S+\); new "
                                  r"connections use it", mark), "SIGHUP: the certificate is read again, and logged")
        renewed = not_after(p("renewed.crt"))
        tap.ok(fwdlib.metric_at_least(sl, expiry, renewed), "the expiry gauge moves to the renewed certificate's "
                                                             "notAfter", sl.metric(expiry))
        out, rc, err = sclient_ack(sl.port, "tls.renewed", "renewed", *GOOD)
        tap.eq(out, fwdlib.ack_bytes("renewed"), "a new connection after the reload is served and acked")
        tap.ok(sl.log.count(r"TLS reloaded from") == 1, "with workers = 2 it is read once (they share it)")

        # A broken file: the reload is refused and the certificate in use stays.
        replace_file(p("server.crt"), b"not a certificate\n")
        mark = len(sl.log.lines)
        sl.p.send_signal(signal.SIGHUP)
        tap.ok(fwdlib.log_has(sl, r'error agent: reload: .*cert_file "\S*server\.crt": cannot load the certificate '
                                  r"chain: error:", mark), "a bad file at reload: refused, naming the file and the "
                                                           "reason")
        tap.ok(fwdlib.log_has(sl, r"reload refused", mark), "and the previous config stays")
        out, rc, err = sclient_ack(sl.port, "tls.kept", "kept", *GOOD)
        tap.eq(out, fwdlib.ack_bytes("kept"), "new connections still get the certificate in use")
        tap.eq(sl.metric(expiry), not_after(p("renewed.crt")), "and the gauge still shows it")
        tap.eq(sl.stop(), 0, "sluice stops cleanly after the reloads")
    finally:
        replace_file(p("server.crt"), original)
        sl.stop()


# ---- bad files -------------------------------------------------------------

def startup_errors(broker):
    cases = [
        ("a missing cert_file", tls_section(extra="").replace(p("server.crt"), p("nope.crt")),
         r'cert_file "[^"]*nope\.crt": cannot load the certificate chain: error:\S+:system library::No such file'),
        ("an encrypted key without key_passphrase", tls_section(key="server-enc.key"),
         r'key_file "[^"]*server-enc\.key": cannot load the private key \(it is encrypted: set key_passphrase\)'),
        ("a key that is not the certificate's", tls_section(key="client.key"),
         r'key_file "[^"]*client\.key" is not the key of cert_file "[^"]*server\.crt": .*key values mismatch'),
        ("a ca_file with no certificate", tls_section().replace(p("ca.crt"), p("server.key")),
         r'ca_file "[^"]*server\.key": cannot load the CA certificates'),
        ("a device instead of a file (it would never end)", tls_section().replace(p("ca.crt"), "/dev/zero"),
         r'ca_file "/dev/zero": not a regular file'),
        ("client_auth without ca_file", tls_section("none", extra='client_auth = "required"\n'),
         r"client_auth needs ca_file"),
        ("ciphers that match nothing", tls_section(extra='ciphers = "NOSUCHCIPHER"\n'),
         r'ciphers "NOSUCHCIPHER": no usable cipher'),
    ]
    for what, tls, pattern in cases:
        path = os.path.join(D, "bad.toml")
        with open(path, "w") as f:
            f.write(config(broker.bootstrap, tls=tls))
        r = subprocess.run([SLUICE, "check", "-c", path], capture_output=True, text=True, timeout=30)
        tap.ok(r.returncode != 0 and re.search(r"bad\.toml:\d+:\d+: input\.forward\.tls(\.\w+)?: " + pattern, r.stderr),
               f"sluice check: {what} is an error naming the file and the reason", r.stderr)
    r = subprocess.run([SLUICE, "run", "-c", path], capture_output=True, text=True, timeout=30)
    tap.ok(r.returncode != 0 and re.search(pattern, r.stderr), "sluice run refuses to start with it too", r.stderr)


broker = Broker(topics=["tls.logs:1"])
try:
    required_client_auth(broker)
    optional_client_auth_with_shared_key(broker)
    reload_certificates(broker)
    startup_errors(broker)
finally:
    broker.stop()
tap.done()
