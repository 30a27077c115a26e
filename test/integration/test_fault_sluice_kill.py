"""Fault injection: sluice is killed with SIGKILL while a client streams
records with acks, and started again on the same port.  The client
(helpers/resend_client.py) keeps each PackedForward chunk until its ack
and, when its connection is lost (or an ack is 3 s late), connects again
(refused until the new sluice listens) and re-sends every chunk not acked,
as fluentd's out_forward does.  Two kills:

  1. while chunks wait for Kafka (the broker answers 300 ms late, so
     records are in the producer and acks pending when the kill comes);
  2. in the middle of the steady stream.

In the end every chunk is acked, every record of an acked chunk is in
Kafka (read back with kcat, unique ids), nothing else is, and a record is
there twice only when its chunk was re-sent (counted and printed).  A kill
during a job is test_jobs_crash.py's: four SIGKILLs mid-stream, and every
row written equals the reference row of its id."""
import os
import sys

from harness import SRCDIR, Broker, Sluice, Tap, high_watermarks, kcat_consume, wait_for
from resend_client import ResendingClient, check_delivery

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import check, ids_in, sluice_config  # noqa: E402

t = Tap()
TOPIC = "fault.kill"
ROUTE = f'\n[[route]]\nmatch = "fault.**"\ntopic = "{TOPIC}"\n'
STEADY = 40  # chunks acked between kills: the stream runs again


def on_port(config, port):
    """The config with the forward input on a fixed port: a restarted
    sluice must be where its clients are configured to send."""
    return config.replace('[input.forward]\nlisten = "127.0.0.1:0"', f'[input.forward]\nlisten = "127.0.0.1:{port}"')


broker = Broker(topics=[f"{TOPIC}:3"])
config = sluice_config(broker.bootstrap, ROUTE)
s = Sluice(config)
port = s.port
config = on_port(config, port)
client = ResendingClient(port, f"{TOPIC}.stream", records_per_chunk=50, window=8, chunks_per_s=20, ack_timeout=3.0)


def kill_and_restart(what, in_flight):
    """SIGKILLs sluice (once records wait for Kafka, when in_flight) and
    starts a new one on the same port; the stream must go on."""
    global s
    if in_flight:
        broker.rtt(300)
        check(t, f"{what}: chunks wait for Kafka when the kill comes (5 acks pending, 200 records in flight)",
              lambda: wait_for(lambda: s.metric("sluice_forward_pending_acks") >= 5
                               and s.metric("sluice_kafka_inflight_records") >= 200, 20, "chunks in flight"))
    lost = client.disconnects + client.timeouts
    s.kill()
    if in_flight:
        broker.rtt(0)
    check(t, f"{what}: the client sees its connection lost",
          lambda: wait_for(lambda: client.disconnects + client.timeouts > lost, 20, "the client to notice"))
    s = Sluice(config)
    t.eq(s.port, port, f"{what}: the new sluice listens on the same port")
    back = client.acked_count()
    check(t, f"{what}: the client connects again, re-sends, and the acks resume ({STEADY} more chunks)",
          lambda: wait_for(lambda: client.acked_count() >= back + STEADY, 60, "acks after the restart"))


try:
    client.start()
    check(t, f"before the kills: the stream's chunks are acked ({STEADY} chunks)",
          lambda: wait_for(lambda: client.acked_count() >= STEADY, 30, "the first acks"))
    kill_and_restart("kill -9 with records in flight", True)
    kill_and_restart("kill -9 mid-stream", False)

    t.ok(client.finish(60), "the client stops sending: every chunk it sent is acked in the end", client.stats())
    stats = client.stats()
    print(f"# client: {stats}", flush=True)
    bound = sum(client.times_sent.values()) * client.per_chunk
    msgs = kcat_consume(broker.bootstrap, TOPIC, bound, timeout=60)
    held = high_watermarks(broker.bootstrap, TOPIC)
    t.eq(len(msgs), held, f"read back every record the topic holds ({held})")
    dups = check_delivery(t, client, ids_in(msgs), "after two kills")
    print(f"# {stats['chunks']} chunks of {client.per_chunk} records sent, {stats['resent_chunks']} re-sent "
          f"({stats['resends']} re-sends, {stats['connect_failures']} connections refused while sluice was down); "
          f"Kafka holds {held} records: {held - dups} unique, {dups} duplicates", flush=True)
    t.eq(s.stop(), 0, "the last sluice stops cleanly")
finally:
    client.stopping = "now"
    s.kill()
    broker.stop()
t.done()
