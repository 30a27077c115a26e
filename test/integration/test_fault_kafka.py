"""Fault injection: the Kafka broker goes away while a client streams
records with acks.  The client (helpers/resend_client.py) sends
PackedForward chunks with a `chunk` id, keeps each until its ack, and sends
it again on a new connection when the ack is 3 s late, as fluentd's
out_forward does.  Two faults, each lasting until the client has given up
waiting and re-sent at least twice (no fixed sleep):

  1. the broker goes down (the mock broker's `down`: every connection is
     closed and new ones are dropped at once), then comes back up on the
     same port with its log;
  2. the broker process is stopped (SIGSTOP: connections stay open and
     nothing answers, as a hung or paused broker), then continued.

While the broker is away no chunk is acked; once it is back the acks
resume; in the end every chunk is acked, every record of an acked chunk is
in Kafka (read back with kcat, unique ids), nothing else is, and a record
is there twice only when its chunk was re-sent (the duplicates are counted
and printed).

Why not kill the broker process and start another: librdkafka 2.0.2's mock
cluster cannot listen on a chosen port and keeps its log in memory only, so
a new process would be a Kafka that lost every record and the idempotent
producer's state, not a restarted broker."""
import os
import signal
import sys

from harness import SRCDIR, Broker, Sluice, Tap, high_watermarks, kcat_consume, wait_for
from resend_client import ResendingClient, check_delivery

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import check, ids_in, sluice_config  # noqa: E402

t = Tap()
TOPIC = "fault.kafka"
ROUTE = f'\n[[route]]\nmatch = "fault.**"\ntopic = "{TOPIC}"\n'
STEADY = 40  # chunks acked between faults: the stream runs again


def outage(s, client, what, begin, end, log_pattern=None):
    """Takes the broker away with begin(), waits until the client has
    given up on a connection and re-sent its chunks twice (acks 3 s late), brings it back with end()
    and waits until STEADY more chunks are acked."""
    gave_up = client.timeouts
    begin()
    if log_pattern:
        check(t, f"{what}: sluice logs that the broker is unreachable", lambda: s.log.wait(log_pattern, 30))
    try:
        wait_for(lambda: client.timeouts >= gave_up + 1, 30, "the client's first re-send")
        acked_then = client.acked_count()
        wait_for(lambda: client.timeouts >= gave_up + 2 and s.metric("sluice_kafka_inflight_records") > 0, 30,
                 "a second re-send, records waiting in the producer")
        acked_after = client.acked_count()
        t.ok(acked_after == acked_then, f"{what}: no chunk is acked while the broker is away, the client re-sends",
             f"acked {acked_then} -> {acked_after}; {client.stats()}")
    except TimeoutError as e:
        t.ok(False, f"{what}: the client re-sends while the broker is away", f"{e}; {client.stats()}")
    end()
    back = client.acked_count()
    check(t, f"{what}: the broker back, the acks resume ({STEADY} more chunks acked)",
          lambda: wait_for(lambda: client.acked_count() >= back + STEADY, 60, "acks after the fault"))


broker = Broker(topics=[f"{TOPIC}:3"])
s = Sluice(sluice_config(broker.bootstrap, ROUTE))
client = ResendingClient(s.port, f"{TOPIC}.stream", records_per_chunk=50, window=8, chunks_per_s=20, ack_timeout=3.0)
try:
    client.start()
    check(t, f"before the faults: the stream's chunks are acked ({STEADY} chunks)",
          lambda: wait_for(lambda: client.acked_count() >= STEADY, 30, "the first acks"))

    outage(s, client, "broker down", broker.down, broker.up, r"warn +kafka: .*(TRANSPORT|ALL_BROKERS_DOWN|refused)")
    outage(s, client, "broker process stopped (SIGSTOP)", lambda: broker.p.send_signal(signal.SIGSTOP),
           lambda: broker.p.send_signal(signal.SIGCONT))

    t.ok(client.finish(60), "the client stops sending: every chunk it sent is acked in the end", client.stats())
    stats = client.stats()
    print(f"# client: {stats}", flush=True)
    bound = sum(client.times_sent.values()) * client.per_chunk  # every send of every chunk
    msgs = kcat_consume(broker.bootstrap, TOPIC, bound, timeout=60)
    held = high_watermarks(broker.bootstrap, TOPIC)
    t.eq(len(msgs), held, f"read back every record the topic holds ({held})")
    dups = check_delivery(t, client, ids_in(msgs), "after both faults")
    print(f"# {stats['chunks']} chunks of {client.per_chunk} records sent, {stats['resent_chunks']} re-sent "
          f"({stats['resends']} re-sends); Kafka holds {held} records: {held - dups} unique, {dups} duplicates",
          flush=True)
    t.ok(s.wait_metric("sluice_forward_pending_acks", lambda v: v == 0, 20), "no ack left pending in sluice")
    t.eq(s.stop(), 0, "sluice stops cleanly")
finally:
    client.stopping = "now"
    s.kill()
    broker.p.send_signal(signal.SIGCONT)
    broker.stop()
t.done()
