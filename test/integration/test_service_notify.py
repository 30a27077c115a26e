"""sluice under systemd, with a Unix datagram socket standing in for
systemd's NOTIFY_SOCKET: READY=1 comes only once the forward port accepts
connections and Kafka answers (not while the broker is down), STATUS lines
say what the daemon does, WATCHDOG=1 pings come at half of WATCHDOG_USEC
(and not when WATCHDOG_PID names another process), and stop while the jobs
thread's loop is stuck (a sink plugin blocking it, test/plugins/flaky.c),
SIGHUP says RELOADING=1 then READY=1, SIGTERM says STOPPING=1.  And the
systemd unit passes `systemd-analyze verify`."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

from harness import SLUICE, SRCDIR, Broker, Sluice, Tap, tempdir, wait_for

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import ForwardClient, check, sluice_config  # noqa: E402

t = Tap()


class NotifySocket:
    """What systemd's notify socket receives, one datagram a message, each
    kept with the monotonic time it arrived."""

    def __init__(self):
        self.path = os.path.join(tempdir(), "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.msgs = []  # (time, {key: value})

    def _read(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return False
        fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
        self.msgs.append((time.monotonic(), fields))
        return True

    def wait(self, pred, timeout=20, start=0):
        """The first message from index `start` for which pred(fields) is
        true; its index and fields.  TimeoutError when none comes."""
        end = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.msgs):
                if pred(self.msgs[i][1]):
                    return i, self.msgs[i][1]
                i += 1
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no such notify message")
            self._read(left)

    def drain(self, seconds):
        """Collects what arrives during `seconds` (for counting pings)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._read(end - time.monotonic())

    def close(self):
        self.sock.close()


def port_accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


# ---- the unit file, as systemd reads it -----------------------------------------
analyze = shutil.which("systemd-analyze")
if analyze:
    unit_dir = tempdir()
    text = open(os.path.join(SRCDIR, "packaging", "systemd", "sluice.service")).read()
    unit = os.path.join(unit_dir, "sluice.service")
    with open(unit, "w") as f:
        f.write(text.replace("/usr/bin/sluice", os.path.abspath(SLUICE)))
    r = subprocess.run([analyze, "verify", "--man=no", unit], capture_output=True, text=True)
    t.ok(r.returncode == 0 and not r.stderr.strip(), "systemd-analyze verify accepts the unit (ExecStart: this build)",
         r.stderr)
    directives = dict(re.findall(r"(?m)^(\w+)=(.*)$", text))
    t.eq([directives.get(k) for k in ("Type", "NotifyAccess", "ExecReload", "Restart")],
         ["notify", "main", "/bin/kill -HUP $MAINPID", "on-failure"],
         "the unit: Type=notify, NotifyAccess=main, ExecReload sends SIGHUP, Restart=on-failure")
else:
    t.ok(True, "# SKIP systemd-analyze not installed (Debian package systemd)")

# ---- READY waits for the listeners and for Kafka ------------------------------
broker = Broker(topics=["n.logs:1"])
broker.down()
ns = NotifySocket()
ROUTE = '[[route]]\nmatch = "n.**"\ntopic = "n.logs"\n'
s = Sluice(sluice_config(broker.bootstrap, ROUTE), wait_ready=False,
           extra_env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "400000"})
try:
    s.wait_ready()
    i, first = ns.wait(lambda m: True)
    t.eq(first.get("STATUS"), "starting", "the first message is STATUS=starting")
    check(t, "with the broker down: STATUS says it waits for Kafka",
          lambda: "waiting for Kafka" in ns.wait(lambda m: "STATUS" in m and "Kafka" in m["STATUS"])[1]["STATUS"])
    t.ok(port_accepts(s.port), "the forward port accepts connections meanwhile")
    ns.drain(2.0)
    t.ok(not any("READY" in m for _, m in ns.msgs), "no READY=1 while Kafka cannot be reached (2 s)",
         [m for _, m in ns.msgs if "WATCHDOG" not in m])
    broker.up()
    ready_at, ready = ns.wait(lambda m: m.get("READY") == "1", 20)
    t.ok(True, "READY=1 once the broker is back")
    t.eq(ready.get("STATUS"), "ready: 0 forward connections", "READY=1 comes with STATUS=ready: 0 forward connections")
    t.ok(s.log.seen(r"kafka: cluster reachable"), "the log says the cluster is reachable")

    # ---- the watchdog: every WATCHDOG_USEC / 2 from the main loop ------------
    start = len(ns.msgs)
    ns.drain(2.0)
    pings = [at for at, m in ns.msgs[start:] if m.get("WATCHDOG") == "1"]
    gaps = sorted(b - a for a, b in zip(pings, pings[1:]))
    median = gaps[len(gaps) // 2] if gaps else 0
    t.ok(7 <= len(pings) <= 13, f"WATCHDOG_USEC=400000: {len(pings)} pings in 2 s (one every 200 ms)", pings)
    t.ok(0.15 <= median <= 0.25, f"the median gap between pings is {median * 1000:.0f} ms (200 ms asked)", gaps)

    # ---- STATUS follows the connections ------------------------------------------
    c = ForwardClient(s.port)
    check(t, "a client connects: STATUS=ready: 1 forward connections",
          lambda: ns.wait(lambda m: m.get("STATUS") == "ready: 1 forward connections", 10, start=ready_at + 1))
    c.close()
    check(t, "it leaves: STATUS=ready: 0 forward connections again",
          lambda: ns.wait(lambda m: m.get("STATUS") == "ready: 0 forward connections", 10, start=ready_at + 1))

    # ---- reload and stop -------------------------------------------------------
    mark = len(ns.msgs)
    s.p.send_signal(signal.SIGHUP)
    try:
        r_at, r = ns.wait(lambda m: m.get("RELOADING") == "1", 10, start=mark)
        t.ok(r.get("STATUS", "").startswith("reloading"), "SIGHUP: RELOADING=1 with STATUS=reloading ...", r)
        check(t, "then READY=1 again once reloaded", lambda: ns.wait(lambda m: m.get("READY") == "1", 10, start=r_at))
    except TimeoutError as e:
        t.ok(False, "SIGHUP: RELOADING=1", e)
    mark = len(ns.msgs)
    s.p.send_signal(signal.SIGTERM)
    check(t, "SIGTERM: STOPPING=1 with STATUS=draining",
          lambda: ns.wait(lambda m: m.get("STOPPING") == "1" and m.get("STATUS") == "draining", 10, start=mark))
    t.eq(s.p.wait(30), 0, "exit code 0")
finally:
    s.kill()
    ns.close()

# ---- WATCHDOG_PID naming another process: no pings -------------------------------
ns = NotifySocket()
s = Sluice(sluice_config(broker.bootstrap, ROUTE), wait_ready=False,
           extra_env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getpid())})
try:
    s.wait_ready()
    check(t, "another run: READY=1 at once with the broker up", lambda: ns.wait(lambda m: m.get("READY") == "1", 20))
    ns.drain(1.0)
    t.ok(not any("WATCHDOG" in m for _, m in ns.msgs), "WATCHDOG_PID names another process: no pings")
    t.eq(s.stop(), 0, "exit code 0")
finally:
    s.kill()
    ns.close()

# ---- a stuck jobs loop stops the pings -------------------------------------------
# A job whose sink blocks the jobs loop 7 s in its write: the pings (every
# 200 ms) stop once the loop is 5 s late (the floor of the limit, which is
# otherwise WATCHDOG_USEC), the log says which thread, and they resume
# when the loop turns again.
PLUGIN_DIR = os.environ.get("TEST_PLUGIN_DIR", "")
if os.path.exists(os.path.join(PLUGIN_DIR, "flaky.so")):
    out = os.path.join(tempdir(), "rows.jsonl")
    JOB = f"""
[[job]]
name = "stuck"
topics = ["n.logs"]
time = "processing"
window = {{ type = "tumbling", size = "1s" }}
aggregates = {{ n = "count()" }}
sinks = ["blocker"]

[[sink]]
name = "blocker"
plugin = "flaky"
path = "{out}"
block = "7s"
"""
    ns = NotifySocket()
    s = Sluice(f'plugin_dirs = ["{PLUGIN_DIR}"]\n' + sluice_config(broker.bootstrap, ROUTE + JOB), wait_ready=False,
               extra_env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "400000"})
    try:
        s.wait_ready()
        ns.wait(lambda m: m.get("READY") == "1", 20)
        c = ForwardClient(s.port)
        c.send_message("n.app", int(time.time()), {"k": 1}, chunk="s1")
        t.ok(c.wait_ack("s1", 20), "a record for the job is acked")

        def row_written():
            return os.path.exists(out) and os.path.getsize(out) > 0

        # The socket is read all along: a full one would block sd_notify.
        end = time.monotonic() + 40
        while not row_written() and time.monotonic() < end:
            ns.drain(0.25)
        t.ok(row_written(), "the blocked write completes and its row is written")
        ns.drain(1.0)
        pings = [at for at, m in ns.msgs if m.get("WATCHDOG") == "1"]
        gap = max((b - a for a, b in zip(pings, pings[1:])), default=0)
        t.ok(1.0 <= gap <= 3.5, f"the longest gap between pings is {gap:.2f} s (7 s blocked, 5 s allowed)")
        t.ok(pings and pings[-1] > time.monotonic() - 0.8, "the pings come again once the loop turns")
        t.ok(s.log.seen(r"error agent: no systemd watchdog ping: the jobs thread \(5\.\d s\) since its event loop "
                        r"last turned"), "the log says which thread holds the ping back", s.log.text()[-2000:])
        t.ok(s.log.seen(r"warn\s+agent: event loop blocked: the jobs thread \(\d+\.\d s\) since its last turn"),
             "and warns that its event loop is blocked")
        t.ok(s.metric('sluice_loop_heartbeat_age_seconds{thread="jobs"}') < 5,
             "sluice_loop_heartbeat_age_seconds{thread=\"jobs\"} is small again")
        c.close()
        t.eq(s.stop(), 0, "exit code 0")
    finally:
        s.kill()
        ns.close()
else:
    t.ok(False, f"flaky.so is in TEST_PLUGIN_DIR ({PLUGIN_DIR!r}): the build makes it")

# ---- without NOTIFY_SOCKET nothing changes ---------------------------------------
s = Sluice(sluice_config(broker.bootstrap, ROUTE), extra_env={"NOTIFY_SOCKET": "", "WATCHDOG_USEC": "100000"})
try:
    check(t, "without a notify socket it starts and says ready", lambda: s.log.wait(r"agent: ready", 20))
    t.eq(s.stop(), 0, "and stops with exit code 0")
    t.ok(not s.log.seen(r"notify|NOTIFY", 0.1), "and logs nothing about notifications", s.log.text())
finally:
    s.kill()
broker.stop()
t.done()
