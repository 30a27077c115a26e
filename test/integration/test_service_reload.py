"""SIGHUP re-reads the config file.  A new route takes effect on the
connections already open (none is dropped), on every forward worker; a
change that needs a restart is named as such and left as it was; an
invalid file is refused with each of its errors logged, and the old routes
go on working.  Logging: [log] format and level change live, JSON lines
parse (time, level, component, msg), journald gets "<N>" priorities and no
timestamps, and a burst of the same error is cut to 10 lines followed by
one "suppressed K similar messages" line."""
import json
import os
import re
import signal
import subprocess
import sys
import time

from harness import SLUICE, SRCDIR, Broker, LineReader, Sluice, Tap, tempdir, wait_for, _procs

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import ForwardClient, check, consume, event_time, ids_in, sluice_config  # noqa: E402

t = Tap()
ROUTE_A = '[[route]]\nmatch = "a.**"\ntopic = "reload.a"\n'
ROUTE_B = '[[route]]\nmatch = "b.**"\ntopic = "reload.b"\n'


def send(client, tag, rid, chunk):
    client.send_message(tag, event_time(int(time.time()), 0), {"id": rid}, chunk=chunk)
    return client.wait_ack(chunk, 15)


def rewrite(s, text):
    with open(s.config, "w") as f:
        f.write(text)


def reload(s, pattern):
    """SIGHUP, then the log line that says how it went."""
    start = len(s.log.lines)
    s.p.send_signal(signal.SIGHUP)
    return s.log.wait(pattern, 15, start=start)


broker = Broker(topics=["reload.a:1", "reload.b:1"])
WORKERS = '\nworkers = 2\n'
base = sluice_config(broker.bootstrap, ROUTE_A, forward=WORKERS)
s = Sluice(base)
try:
    clients = [ForwardClient(s.port) for _ in range(4)]
    for i, c in enumerate(clients):
        check(t, f"client {i}: a.x is routed to reload.a", lambda: send(c, "a.x", f"a-{i}", f"a-{i}"))
    # Tag b.x matches no route yet: dropped (counted) but acked.
    check(t, "b.x matches no route before the reload: counted as unmatched",
          lambda: send(clients[0], "b.x", "lost", "b-before") and
          s.wait_metric("sluice_route_unmatched_records_total", lambda v: v == 1, 10))

    # ---- a valid change: a new route, plus one that needs a restart ------------------
    rewrite(s, base.replace('listen = "127.0.0.1:0"\n' + WORKERS, 'listen = "127.0.0.1:0"\n' + WORKERS +
                            'idle_timeout = "10m"\n') + ROUTE_B)
    check(t, "SIGHUP with a new route: reloaded, one change applied and one needing a restart",
          lambda: reload(s, r"agent: reloaded .*: changes applied: 1, needing a restart: 1"))
    log = s.log.text()
    t.ok(re.search(r"info +agent: reload: route\[1\] changed: applied", log) or
         re.search(r"info +agent: reload: route changed: applied", log), "the new route is logged as applied", log[-1500:])
    t.ok(re.search(r"warn +agent: reload: input\.forward\.idle_timeout changed: needs a restart", log),
         "the forward input's change is logged as needing a restart")
    for i, c in enumerate(clients):
        check(t, f"client {i}, connected before the reload: b.x now goes to reload.b",
              lambda: send(c, "b.x", f"b-{i}", f"b-{i}"))
    t.eq(s.metric("sluice_route_unmatched_records_total"), 1.0, "nothing unmatched since the reload")
    t.eq(s.metric("sluice_forward_connections"), 4.0, "no connection was dropped by the reload")
    t.eq(sorted(ids_in(consume(broker.bootstrap, "reload.b", 4))), [f"b-{i}" for i in range(4)],
         "reload.b holds the four records sent after the reload")

    # ---- an invalid file: refused, every error logged, old routes kept ------------
    good = open(s.config).read()
    rewrite(s, good.replace('[log]\nlevel = "info"', '[log]\nlevel = "loud"\ncolour = true'))
    check(t, "an invalid file: the reload is refused (2 errors)",
          lambda: reload(s, r"error +agent: reload refused: 2 errors in .*; still running the previous config"))
    log = s.log.text()
    t.ok(re.search(r"error +agent: reload: .*sluice\.toml:2:9: log\.level: .*loud", log),
         "the bad value is logged with file:line:col", log[-1500:])
    t.ok(re.search(r'error +agent: reload: .*sluice\.toml:3:1: log: unknown key \\?"colour', log),
         "the unknown key is logged with file:line:col")
    for i, c in enumerate(clients):
        check(t, f"client {i}: still routed by the running config", lambda: send(c, "b.x", f"b2-{i}", f"b2-{i}"))
    t.eq(s.p.poll(), None, "sluice keeps running")

    # ---- [log] changes live: JSON lines, debug level -----------------------------
    rewrite(s, good.replace('[log]\nlevel = "info"', '[log]\nlevel = "debug"\nformat = "json"'))
    start = len(s.log.lines)
    s.p.send_signal(signal.SIGHUP)
    m = s.log.wait(r'"msg":"reloaded ', 15, start=start)
    line = json.loads(m.string)
    t.eq(sorted(line), ["component", "level", "msg", "time"], "after the reload, lines are JSON: time, level, component, msg")
    t.ok(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", line["time"]), "time is RFC 3339 UTC", line)
    for c in clients:
        c.close()
    ForwardClient(s.port).close()  # "connection from ...", a debug line
    check(t, "debug lines are written after the reload", lambda: s.log.wait(r'"level":"debug"', 10, start=start))
    t.eq(s.stop(), 0, "stops with exit code 0")
    after = [l for l in s.log.lines[start:] if l and l.startswith("{")]
    bad = [l for l in after if not isinstance(json.loads(l), dict)]
    t.ok(after and not bad, f"every line after it parses as a JSON object ({len(after)} lines)", bad)
finally:
    s.kill()

# ---- journald: priorities, no timestamps; a burst of one error -------------------
# JOURNAL_STREAM names the device and inode stderr is open on, as systemd
# sets it; stderr is a file here so that its inode is known in advance.
d = tempdir()
conf = os.path.join(d, "sluice.toml")
with open(conf, "w") as f:
    f.write(sluice_config(broker.bootstrap, ROUTE_A))
errpath = os.path.join(d, "stderr")
err = open(errpath, "wb")
st = os.fstat(err.fileno())
env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
p = subprocess.Popen([SLUICE, "run", "-c", conf], stdout=subprocess.DEVNULL, stderr=err, env=env)
_procs.append(p)


def log_lines():
    return open(errpath, encoding="utf-8", errors="replace").read().splitlines()


try:
    m = wait_for(lambda: next((re.search(r"forward: listening on 127\.0\.0\.1:(\d+)", l) for l in log_lines()
                                if re.search(r"forward: listening on 127\.0\.0\.1:(\d+)", l)), None), 20,
                 "the forward port in the log")
    port = int(m.group(1))
    wait_for(lambda: any("agent: ready" in l for l in log_lines()), 20, "ready")
    lines = log_lines()
    t.ok(all(re.match(r"<[3467]>(error|warn |info |debug) ", l) for l in lines),
         "under journald every line starts with its <N> priority and no timestamp", lines[:5])
    t.ok(any(l.startswith("<6>info  agent: ready") for l in lines), "info is <6>")
    # 30 messages whose tag matches no route: the same warning 30 times.
    c = ForwardClient(port)
    for i in range(30):
        c.send_message("nowhere.x", event_time(int(time.time()), 0), {"i": i}, chunk=f"n{i}")
    wait_for(lambda: len(c.poll(0.1)) == 30, 15, "30 acks")
    c.close()
    warn = r"<4>warn  route: 1 records with tag nowhere\.x dropped"
    t.eq(sum(1 for l in log_lines() if re.match(warn, l)), 10, "a burst of 30 identical warnings is cut to 10 lines")
    supp = wait_for(lambda: [l for l in log_lines() if "suppressed" in l], 15, "the suppressed line")
    t.ok(re.match(r'<4>warn  route: suppressed 20 similar messages \(at most 10 per 10 s from one place\): ".*no route matches',
                  supp[0]), "then one line says 20 similar messages were suppressed", supp)
    p.send_signal(signal.SIGTERM)
    t.eq(p.wait(20), 0, "exit code 0")
finally:
    if p.poll() is None:
        p.kill()
    err.close()
    broker.stop()
t.done()
