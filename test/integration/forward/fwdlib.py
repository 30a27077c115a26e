"""Helpers shared by the forward-input integration tests: a config builder,
a raw forward client over a real socket (python3-msgpack builds the bytes),
hand-made EventTime encodings, and waits on sluice's stdout (print mode) and
/metrics.  Everything waits for an event or a state change with a timeout."""
import json
import socket
import struct
import time

import msgpack

import harness

T = 20.0  # default timeout of every wait, generous for a noisy 2-core machine


def config(forward="", security="", listen='["127.0.0.1:0"]', extra=""):
    """A print-mode config (no [kafka]): records go to stdout as JSON lines."""
    text = ('[log]\nlevel = "info"\n[http]\nlisten = "127.0.0.1:0"\n'
            f'[input.forward]\nlisten = {listen}\n{forward}\n')
    if security:
        text += f"[input.forward.security]\n{security}\n"
    return text + extra


def event_time(sec, nsec):
    """EventTime as python3-msgpack packs it: fixext8 (0xd7), type 0."""
    return msgpack.ExtType(0, struct.pack(">II", sec, nsec))


def event_time_ext8(sec, nsec):
    """The same EventTime as ext8 (0xc7 0x08 0x00): raw bytes."""
    return b"\xc7\x08\x00" + struct.pack(">II", sec, nsec)


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def rfc3339(sec, nsec):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{nsec:09d}Z"


class Conn:
    """A raw forward client.  Keeps every byte received so tests can check
    exact bytes as well as decoded objects."""

    def __init__(self, port=None, path=None, host="127.0.0.1", family=socket.AF_INET, timeout=T):
        if path:
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.settimeout(timeout)
            self.s.connect(path)
        else:
            self.s = socket.socket(family, socket.SOCK_STREAM)
            self.s.settimeout(timeout)
            self.s.connect((host, port))
        self.received = b""
        self.unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        self.eof = False

    def send(self, data):
        self.s.sendall(data)

    def _recv(self, timeout):
        self.s.settimeout(max(timeout, 0.01))
        try:
            data = self.s.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.received += data
        self.unpacker.feed(data)
        return True

    def recv_obj(self, timeout=T):
        """The next msgpack value from the server.  Raises EOFError when the
        server closes first, socket.timeout on timeout."""
        end = time.monotonic() + timeout
        while True:
            try:
                return next(self.unpacker)
            except StopIteration:
                pass
            if self.eof:
                raise EOFError("server closed the connection")
            left = end - time.monotonic()
            if left <= 0:
                raise socket.timeout("no reply within %.0fs" % timeout)
            self._recv(left)

    def wait_closed(self, timeout=T):
        """Reads until the server closes; returns True when it did within
        timeout (bytes read meanwhile stay in self.received)."""
        end = time.monotonic() + timeout
        while not self.eof:
            left = end - time.monotonic()
            if left <= 0:
                return False
            try:
                self._recv(left)
            except socket.timeout:
                return False
        return True

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class Out:
    """sluice's stdout in print mode, read from a mark on."""

    def __init__(self, sl):
        self.sl = sl
        self.mark = len(sl.out.lines)

    def lines(self):
        return [l for l in self.sl.out.lines[self.mark:] if l is not None]

    def records(self, n, timeout=T):
        """Waits for n JSON lines after the mark and returns them parsed."""
        harness.wait_for(lambda: len(self.lines()) >= n, timeout, f"{n} records on stdout")
        return [json.loads(l) for l in self.lines()]


def message(tag, t, record, chunk=None, **opts):
    o = dict(opts)
    if chunk is not None:
        o["chunk"] = chunk
    return pack([tag, t, record, o] if o else [tag, t, record])


def ack_bytes(chunk):
    return pack({"ack": chunk})


def probe(sl, conn, tag="probe", chunk="probe-chunk", timeout=T):
    """Sends a good Message with a chunk on conn and returns (acked?, the
    printed record or None).  Proves the connection and the server work."""
    out = Out(sl)
    conn.send(message(tag, event_time(1700000000, 1), {"probe": True}, chunk=chunk))
    try:
        reply = conn.recv_obj(timeout)
    except (EOFError, socket.timeout, OSError):
        return False, None
    if reply != {"ack": chunk}:
        return False, None
    # Lines of earlier connections may still be on their way to stdout
    # (written off the loop, in order): the probe's is the one with its tag.
    def mine(r):  # the tag as sent, or with a tag_prefix in front
        return r["tag"] == tag or r["tag"].endswith("." + tag)

    harness.wait_for(lambda: any(mine(json.loads(l)) for l in out.lines()), timeout, f"the {tag} record")
    return True, next(r for r in map(json.loads, out.lines()) if mine(r))


def metric_at_least(sl, key, n, timeout=T):
    """Waits until metric key >= n; returns True, or False on timeout."""
    try:
        sl.wait_metric(key, lambda v: v >= n, timeout)
        return True
    except TimeoutError:
        return False


def log_has(sl, pattern, start=0, timeout=T):
    try:
        sl.log.wait(pattern, timeout, start)
        return True
    except (TimeoutError, EOFError):
        return False


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
