"""Shared pieces of the Kafka publishing tests (test_kafka_*.py): a raw
forward-protocol client that can send a chunk and watch for its ack without
blocking, EventTime values with exact nanoseconds, sluice configs pointed at
a mock broker, and reading topics back with kcat."""
import json
import os
import socket
import struct
import subprocess
import sys

import msgpack

from harness import SLUICE, kcat_consume, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))


def event_time(sec, nsec):
    """A forward-protocol EventTime (ext type 0) with exact nanoseconds."""
    return msgpack.ExtType(0, struct.pack(">II", sec, nsec))


def sluice_config(bootstrap, body="", properties=None, default_topic=None, level="info", forward=""):
    """A config with run-time ports (logged, read back by harness.Sluice)
    and a short reconnect backoff so a broker coming back is seen within
    a second rather than librdkafka's default ten."""
    props = {"reconnect.backoff.max.ms": "500"}
    props.update(properties or {})
    out = [f'[log]\nlevel = "{level}"\n', '[http]\nlisten = "127.0.0.1:0"\n',
           '[input.forward]\nlisten = "127.0.0.1:0"\n' + forward, f'[kafka]\nbrokers = "{bootstrap}"\n']
    if default_topic:
        out.append(f'default_topic = "{default_topic}"\n')
    out.append("[kafka.properties]\n")
    out += [f'"{k}" = "{v}"\n' for k, v in props.items()]
    out.append(body)
    return "".join(out)


class ForwardClient:
    """A forward client on a plain socket: sends Message or PackedForward
    frames with a chunk option and collects the acks that came back,
    without ever blocking longer than asked."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.unpacker = msgpack.Unpacker(raw=False)
        self.acks = []
        self.raw = b""

    def send_message(self, tag, time, record, chunk=None):
        frame = [tag, time, record] + ([{"chunk": chunk}] if chunk else [])
        self.sock.sendall(msgpack.packb(frame, use_bin_type=True))

    def send_packed(self, tag, entries, chunk=None):
        """entries: [(time, record)]."""
        payload = b"".join(msgpack.packb([t, r], use_bin_type=True) for t, r in entries)
        opts = {"size": len(entries)}
        if chunk:
            opts["chunk"] = chunk
        self.sock.sendall(msgpack.packb([tag, payload, opts], use_bin_type=True))

    def poll(self, timeout=0.0):
        """Reads whatever arrived within `timeout`; returns the acks so far.
        Raises EOFError when the server closed the connection."""
        self.sock.settimeout(timeout if timeout > 0 else 0.0001)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, BlockingIOError):
            return self.acks
        except ConnectionResetError:
            data = b""
        if not data:
            raise EOFError("server closed the connection")
        self.raw += data
        self.unpacker.feed(data)
        for obj in self.unpacker:
            if isinstance(obj, dict) and "ack" in obj:
                self.acks.append(obj["ack"])
        return self.acks

    def wait_ack(self, chunk, timeout=20):
        def got():
            try:
                return chunk in self.poll(0.05)
            except EOFError:
                return chunk in self.acks
        return wait_for(got, timeout, f"ack of chunk {chunk}")

    def close(self):
        self.sock.close()


def consume(bootstrap, topic, want, extra=10, timeout=20):
    """Reads a topic from the start once `want` records are readable (they
    are when their chunks were acked); reads up to want + extra so that
    duplicates and strays show."""
    got = []

    def enough():
        got[:] = kcat_consume(bootstrap, topic, want + extra, timeout=timeout)
        return len(got) >= want
    try:
        wait_for(enough, timeout, f"{want} records in {topic}")
    except TimeoutError:
        pass
    return got


def ids_in(msgs, field="id"):
    """The `field` of every JSON record read back."""
    return [json.loads(m["value"])[field] for m in msgs]


def sluice_cat(port, tag, args=(), lines=None, timeout=60, background=False):
    cmd = [SLUICE, "cat", "-p", str(port), *args, tag]
    inp = "".join(json.dumps(l) + "\n" for l in (lines or [])).encode()
    if background:
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdin.write(inp)
        p.stdin.close()
        p.stdin = None  # so that communicate() does not flush it
        return p
    return subprocess.run(cmd, input=inp, capture_output=True, timeout=timeout)


def check(tap, desc, fn):
    """One TAP check that fn() returns something true (the awaited ack, log
    line or metric): a wait that times out or a stream that ends -> not ok,
    with the reason."""
    try:
        got = fn()
        tap.ok(bool(got), desc, f"returned {got!r}")
    except (TimeoutError, EOFError) as e:
        tap.ok(False, desc, e)
