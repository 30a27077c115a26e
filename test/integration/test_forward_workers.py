"""`[input.forward] workers = 2`: two event-loop threads accept on the same
port (picked at run time: the second binds what the first got), each with
its own producer.  16 clients with acks spread over both; every chunk is
acked, every record is in Kafka exactly once, unix-socket clients are
served by the first worker, SIGTERM drains both and exits 0, and a worker
that cannot start stops the agent with exit 1."""
import os
import socket
import sys
import threading

import msgpack

from harness import SRCDIR, Broker, Sluice, Tap, high_watermarks, tempdir

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import ForwardClient, event_time, sluice_config  # noqa: E402

t = Tap()
broker = Broker(topics=["wk:3"])
sock = os.path.join(tempdir(), "fwd.sock")


def config(listen):
    """Two workers on `listen` (TOML value text)."""
    return sluice_config(broker.bootstrap, '[[route]]\nmatch = "**"\ntopic = "wk"\n',
                         forward=f"workers = 2\nlisten = {listen}\n").replace(
        '[input.forward]\nlisten = "127.0.0.1:0"\n', "[input.forward]\n")


s = Sluice(config(f'["127.0.0.1:0", "{sock}"]'))
t.ok(s.port and s.port > 0, f"forward port picked at run time ({s.port})")
t.ok(s.log.seen(r"ingest: 2 forward workers accepting"), "the log says two workers accept")

CLIENTS, CHUNKS, PER = 16, 10, 100
results = {}


def client(k):
    c = ForwardClient(s.port)
    for j in range(CHUNKS):
        c.send_packed("wk.t", [(event_time(1700000000, i), {"k": k, "j": j, "i": i}) for i in range(PER)],
                      chunk=f"c{k}-{j}")
    try:
        results[k] = all(c.wait_ack(f"c{k}-{j}", 30) for j in range(CHUNKS))
    except TimeoutError:
        results[k] = False
    c.close()


threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
for th in threads:
    th.start()
for th in threads:
    th.join(90)
t.ok(len(results) == CLIENTS and all(results.values()), f"all {CLIENTS * CHUNKS} chunks of {CLIENTS} clients acked",
     results)
t.eq(high_watermarks(broker.bootstrap, "wk"), CLIENTS * CHUNKS * PER, "Kafka holds every record once")
m = s.metrics()
w1 = m.get('sluice_forward_worker_connections_total{worker="forward-1"}', 0)
w2 = m.get('sluice_forward_worker_connections_total{worker="forward-2"}', 0)
t.ok(w1 > 0 and w2 > 0 and w1 + w2 == CLIENTS, f"connections spread over both workers ({w1:.0f} + {w2:.0f})")
t.eq(m.get("sluice_kafka_inflight_records"), 0.0, "nothing left in flight (the gauge sums both producers)")

u = ForwardClient.__new__(ForwardClient)  # the same client, over the unix socket
u.sock = socket.socket(socket.AF_UNIX)
u.sock.settimeout(10)
u.sock.connect(sock)
u.unpacker = msgpack.Unpacker(raw=False)
u.acks = []
u.raw = b""
u.send_packed("wk.unix", [(event_time(1700000001, 0), {"via": "unix"})], chunk="unix-1")
t.ok(u.wait_ack("unix-1", 20), "a unix-socket client is served (by the first worker)")
u.close()

t.eq(s.stop(), 0, "SIGTERM drains both workers and exits 0")
t.ok(s.log.seen(r"drained: ingest: forward-1: every record handed to Kafka was acknowledged; forward-2: every"),
     "the closing line speaks for each worker")

# Workers cannot bind a port another process holds (without SO_REUSEPORT):
# the agent stops with exit 1 and names the address.
holder = socket.socket()
holder.bind(("127.0.0.1", 0))
holder.listen()
busy = holder.getsockname()[1]
s2 = Sluice(config(f'"127.0.0.1:{busy}"'), wait_ready=False)
rc = s2.p.wait(20)
t.eq(rc, 1, "a port another process holds: exit 1")
t.ok(s2.log.seen(rf"cannot listen on 127\.0\.0\.1:{busy}"), "the log names the address")
holder.close()
broker.stop()
t.done()
