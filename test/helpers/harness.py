"""Integration-test harness: runs the real sluice binary, the mock Kafka
broker, kcat and the fluent clients as processes on 127.0.0.1, with ports
chosen at run time (port 0, then read back from the logs), and waits for
events (log lines, metric values, process exits) instead of sleeping.

Tests print TAP through `Tap`.  Paths come from the environment meson sets:
SLUICE (the binary), MOCK_BROKER, SRCDIR (the source tree)."""
import atexit
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SLUICE = os.environ.get("SLUICE", "build/agent/sluice")
MOCK_BROKER = os.environ.get("MOCK_BROKER", "build/test/mock_broker")
SRCDIR = os.environ.get("SRCDIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SYSTEM_PYTHON = "/usr/bin/python3"

# Processes and folders a test leaves behind (a failed assertion, an
# exception) are cleaned up when the test exits.
_procs = []
_dirs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def tempdir(prefix="sluice-test-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _dirs.append(d)
    return d


class Tap:
    """TAP output; `done()` prints the plan and exits non-zero on failure."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, detail=None):
        self.n += 1
        if not cond:
            self.failed += 1
        print(f"{'ok' if cond else 'not ok'} {self.n} - {desc}", flush=True)
        if not cond and detail is not None:
            for line in str(detail).splitlines()[:40]:
                print(f"#   {line}", flush=True)
        return cond

    def eq(self, got, want, desc):
        return self.ok(got == want, desc, f"got:  {got!r}\nwant: {want!r}")

    def skip_all(self, why):
        print(f"1..0 # SKIP {why}", flush=True)
        sys.exit(0)

    def done(self):
        print(f"1..{self.n}", flush=True)
        sys.exit(1 if self.failed or self.n == 0 else 0)


def deadline(seconds):
    return time.monotonic() + seconds


def wait_for(pred, timeout=20.0, what="condition"):
    """Polls pred() until it returns a truthy value (returned) or raises
    TimeoutError.  Used for conditions with no event to wait on (a counter
    reaching a value): every call checks real state."""
    end = deadline(timeout)
    delay = 0.01
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


class LineReader:
    """Collects a process stream's lines in a thread; tests wait for a
    line matching a pattern."""

    def __init__(self, stream, echo_prefix=None):
        self.lines = []
        self.q = queue.Queue()
        self.cond = threading.Condition()
        self.echo_prefix = echo_prefix
        self.t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.t.start()

    def _run(self, stream):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # EOF marker
            self.cond.notify_all()

    def wait(self, pattern, timeout=20.0, start=0):
        """Returns the re.Match of the first line (from index `start`)
        matching pattern."""
        rx = re.compile(pattern)
        end = deadline(timeout)
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    i += 1
                    if line is None:
                        raise EOFError(f"stream ended before a line matching {pattern!r}")
                    m = rx.search(line)
                    if m:
                        return m
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no line matching {pattern!r} within {timeout}s")
                self.cond.wait(left)

    def seen(self, pattern, timeout=10.0):
        """Whether a line matching pattern arrives (or arrived) within
        timeout: a line the process wrote may still be on its way to the
        reader thread."""
        try:
            self.wait(pattern, timeout)
            return True
        except (TimeoutError, EOFError):
            return False

    def text(self):
        with self.cond:
            return "\n".join(l for l in self.lines if l is not None)

    def count(self, pattern):
        rx = re.compile(pattern)
        with self.cond:
            return sum(1 for l in self.lines if l is not None and rx.search(l))


class Broker:
    """The standalone mock Kafka cluster (test/helpers/mock_broker.c)."""

    def __init__(self, topics=(), brokers=1):
        args = [MOCK_BROKER, "-b", str(brokers)]
        for t in topics:
            args += ["-t", t]
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _procs.append(self.p)
        self.out = LineReader(self.p.stdout)
        self.err = LineReader(self.p.stderr)
        self.bootstrap = self.out.wait(r"^bootstrap (\S+)", 20).group(1)

    def down(self):
        self._cmd("down")

    def up(self):
        self._cmd("up")

    def rtt(self, ms):
        """Delays every broker response by ms milliseconds (0: none)."""
        self._cmd(f"rtt {ms}")

    def produce_error(self, code, n=1):
        """Fails the next n Produce requests with Kafka error `code`."""
        self._cmd(f"produce_error {code} {n}")

    def _cmd(self, cmd):
        before = self.out.count(r"^ok$")
        self.p.stdin.write((cmd + "\n").encode())
        self.p.stdin.flush()
        wait_for(lambda: self.out.count(r"^ok$") > before, 10, f"mock broker to do {cmd}")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


class Sluice:
    """A running `sluice run` with a config written from `toml` text.  The
    forward and HTTP ports are read back from its logs."""

    def __init__(self, toml, wait_ready=True, extra_env=None):
        self.dir = tempdir()
        self.config = os.path.join(self.dir, "sluice.toml")
        with open(self.config, "w") as f:
            f.write(toml)
        env = dict(os.environ)
        if extra_env:
            env.update(extra_env)
        self.p = subprocess.Popen([SLUICE, "run", "-c", self.config], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        _procs.append(self.p)
        self.out = LineReader(self.p.stdout)
        self.log = LineReader(self.p.stderr)
        self.port = None
        self.http_port = None
        if wait_ready:
            self.wait_ready()

    def wait_ready(self, timeout=20):
        m = self.log.wait(r"http: listening on http://[^ ]*:(\d+)", timeout)
        self.http_port = int(m.group(1))
        if "[input.forward]" not in open(self.config).read() or "enabled = false" not in open(self.config).read():
            try:
                m = self.log.wait(r"forward: listening on (?:unix:\S+|(?:127\.0\.0\.1|\[::1\]|0\.0\.0\.0):(\d+))",
                                  timeout)
                self.port = int(m.group(1)) if m.group(1) else None
            except (TimeoutError, EOFError):
                pass
        self.log.wait(r"agent: sluice started", timeout)

    def http(self, path):
        url = f"http://127.0.0.1:{self.http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self):
        """The /metrics exposition as {'name{labels}': value}."""
        _, body = self.http("/metrics")
        out = {}
        for line in body.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
        return out

    def metric(self, key):
        return self.metrics().get(key, 0.0)

    def metric_sum(self, name):
        """A family's series summed over their labels (PromQL's sum())."""
        return sum(v for k, v in self.metrics().items() if k == name or k.startswith(name + "{"))

    def wait_metric(self, key, pred, timeout=20):
        return wait_for(lambda: pred(self.metric(key)), timeout, f"metric {key}")

    def stop(self, sig=signal.SIGTERM, timeout=40):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def free_port():
    """Only for clients that cannot be told to use port 0; the port is
    released before use, so prefer port 0 with read-back."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def kcat_consume(bootstrap, topic, count, timeout=30):
    """Reads `count` messages from the start of every partition with kcat.
    Returns a list of dicts: topic, partition, offset, key, ts, headers,
    value (bytes)."""
    fmt = "%t\\t%p\\t%o\\t%k\\t%T\\t%h\\t%S\\n%s\\n"
    args = ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-c", str(count), "-e", "-q",
            "-f", fmt, "-X", "allow.auto.create.topics=false"]
    p = subprocess.run(args, capture_output=True, timeout=timeout)
    data = p.stdout
    msgs = []
    pos = 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        meta = data[pos:nl].decode("utf-8", "replace").split("\t")
        size = int(meta[6])
        value = data[nl + 1:nl + 1 + size]
        pos = nl + 1 + size + 1
        msgs.append({"topic": meta[0], "partition": int(meta[1]), "offset": int(meta[2]), "key": meta[3],
                     "ts": int(meta[4]), "headers": meta[5], "value": value})
    return msgs


def high_watermarks(bootstrap, topic, timeout=20):
    """Sum over partitions of the high-water marks (records in the topic;
    the mock broker trims old segments, so reading back cannot count a
    large volume).  0 when the topic does not exist."""
    md = subprocess.run(["kcat", "-L", "-J", "-b", bootstrap, "-t", topic], capture_output=True, timeout=timeout)
    if md.returncode != 0:
        raise RuntimeError(f"kcat -L failed: {md.stderr.decode()}")
    parts = []
    for t in json.loads(md.stdout).get("topics", []):
        if t.get("topic") == topic and not t.get("error"):
            parts = [p["partition"] for p in t.get("partitions", [])]
    if not parts:
        return 0
    args = ["kcat", "-Q", "-b", bootstrap]
    for part in parts:
        args += ["-t", f"{topic}:{part}:-1"]
    p = subprocess.run(args, capture_output=True, timeout=timeout)
    found = {int(m.group(1)): int(m.group(2))
             for m in re.finditer(rf"^{re.escape(topic)} \[(\d+)\] offset (-?\d+)$", p.stdout.decode(), re.M)}
    if p.returncode != 0 or sorted(found) != sorted(parts):
        raise RuntimeError(f"kcat -Q failed: {p.stdout.decode()}{p.stderr.decode()}")
    return sum(found.values())


def sluice_cat(port, tag, lines=None, args=(), timeout=60):
    inp = "".join(json.dumps(l) + "\n" for l in (lines or [])).encode()
    return subprocess.run([SLUICE, "cat", "-p", str(port), *args, tag], input=inp, capture_output=True,
                          timeout=timeout)
