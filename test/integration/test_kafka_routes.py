"""Tag routes as an operator configures them: the first matching route
wins; `**`, `*` and `{a,b}` patterns; topics from tag parts and a record
field; unmatched records dropped (counted, logged, chunk still acked) or
sent to default_topic; a record missing the templated field dropped
(counted, logged); a record over message.max.bytes refused (no ack,
counted, logged with topic and error); and `sluice check` rejecting a bad
librdkafka property or topic template with file:line:col."""
import json
import os
import subprocess
import sys
import harness
import time

from harness import SLUICE, SRCDIR, Broker, Sluice, Tap, wait_for

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import check, ForwardClient, consume, event_time, sluice_config  # noqa: E402

t = Tap()

ROUTES = """
[[route]]
match = "app.special.*"
topic = "r.special"

[[route]]
match = "app.**"
topic = "r.app.${tag_parts[1]}"

[[route]]
match = "{web,api}.*"
topic = "r.${tag_parts[0]}.${tag_parts[-1]}"

[[route]]
match = "svc.**"
topic = "r.svc.${record.service.name}"

[[route]]
match = "*"
topic = "r.single"
"""

# tag -> topic, None: no route
CASES = [
    ("app.special.x", "r.special"),      # first match wins over app.**
    ("app.special.x.y", "r.app.special"),  # `*` is one part: only app.** matches
    ("app.db.q", "r.app.db"),
    ("web.h1", "r.web.h1"),
    ("api.v2", "r.api.v2"),
    ("lonely", "r.single"),
    ("web.h1.extra", None),              # {web,api}.* wants exactly two parts
]


def topic_ids(bootstrap, topic, want):
    msgs = consume(bootstrap, topic, want)
    return sorted(json.loads(m["value"])["id"] for m in msgs), msgs


now = int(time.time())
broker = Broker()
sluices = []
try:
    # ---- routing, templates, unmatched ------------------------------------------
    s = Sluice(sluice_config(broker.bootstrap, ROUTES))
    sluices.append(s)
    c = ForwardClient(s.port)
    chunks = []
    for i, (tag, _) in enumerate(CASES):
        for j in range(3):
            c.send_message(tag, event_time(now, j), {"id": f"{tag}#{j}"}, chunk=f"c-{i}-{j}")
            chunks.append(f"c-{i}-{j}")
    c.send_packed("svc.pay", [(event_time(now, 0), {"id": "svc#0", "service": {"name": "billing"}}),
                              (event_time(now, 1), {"id": "svc#1", "service": {"version": 2}}),
                              (event_time(now, 2), {"id": "svc#2", "service": {"name": "billing"}})],
                  chunk="c-svc")
    chunks.append("c-svc")
    check(t, "every chunk is acked, including unmatched records and a record with a missing field",
          lambda: [c.wait_ack(ch, 20) for ch in chunks])
    c.close()

    for tag, topic in CASES:
        if topic:
            ids, msgs = topic_ids(broker.bootstrap, topic, 3)
            t.ok(ids == [f"{tag}#{j}" for j in range(3)] and all(m["headers"] == f"fluent.tag={tag}" for m in msgs),
                 f"tag {tag} goes to {topic}", [(m["topic"], m["value"]) for m in msgs])
    ids, _ = topic_ids(broker.bootstrap, "r.svc.billing", 2)
    t.eq(ids, ["svc#0", "svc#2"], "topic from a record field: svc.pay with service.name=billing -> r.svc.billing")

    m = s.metrics()
    t.eq(m.get("sluice_route_unmatched_records_total"), 3.0, "the 3 unmatched records are counted")
    t.ok(s.log.seen(r"warn +route: 1 records with tag web\.h1\.extra dropped: no route matches and no "
                     r"default_topic"), "a log line says the unmatched records were dropped", s.log.text())
    t.eq(m.get("sluice_route_template_errors_total"), 1.0, "the record missing service.name is counted")
    t.ok(s.log.seen(r'warn +route: record with tag svc\.pay dropped: topic "r\.svc\.\$\{record\.service\.name\}"'), "a log line names the tag and the topic template", s.log.text())
    delivered = sum(3 for _, tp in CASES if tp) + 2
    t.eq((sum(v for k, v in m.items() if k.startswith("sluice_kafka_delivered_total{")), m.get("sluice_forward_pending_acks")),
         (float(delivered), 0.0),
         f"exactly the {delivered} routed records were delivered, no ack pending")
    t.eq(s.stop(), 0, "sluice stops cleanly")

    # ---- default_topic and a record over message.max.bytes ----------------------
    s = Sluice(sluice_config(broker.bootstrap, '\n[[route]]\nmatch = "big.**"\ntopic = "r.big"\n',
                             {"message.max.bytes": "10000"}, default_topic="r.default"))
    sluices.append(s)
    c = ForwardClient(s.port)
    c.send_message("other.thing", event_time(now, 5), {"id": "d#0", "v": 1}, chunk="c-def")
    c.send_message("big.x", event_time(now, 6), {"id": "big#0", "blob": "x" * 20000}, chunk="c-big")
    c.send_message("big.x", event_time(now, 7), {"id": "big#1"}, chunk="c-small")
    check(t, "the chunks before and after the oversized one are acked",
          lambda: c.wait_ack("c-def", 15) and c.wait_ack("c-small", 15))
    try:
        c.poll(0.2)
    except EOFError:
        pass
    t.ok("c-big" not in c.acks, "the chunk with the 20 KB record gets no ack", c.acks)
    c.close()
    ids, msgs = topic_ids(broker.bootstrap, "r.default", 1)
    t.ok(ids == ["d#0"] and msgs[0]["headers"] == "fluent.tag=other.thing"
         and json.loads(msgs[0]["value"]) == {"id": "d#0", "v": 1},
         "a tag matching no route goes to default_topic", msgs)
    ids, _ = topic_ids(broker.bootstrap, "r.big", 1)
    t.eq(ids, ["big#1"], "r.big holds only the small record")
    m = s.metrics()
    t.eq(m.get("sluice_kafka_produce_rejected_total", 0) + m.get("sluice_kafka_delivery_failed_total", 0), 1.0,
         "the oversized record is counted as refused")
    t.eq(m.get("sluice_route_unmatched_records_total"), 0.0, "with default_topic nothing is unmatched")
    t.ok(s.log.seen(r"error +kafka: record of 2\d{4} bytes to topic r\.big refused: .*too large"),
         "a log line names the topic and librdkafka's error", s.log.text())
    t.eq(s.stop(), 0, "sluice stops cleanly")

    # ---- sluice check -------------------------------------------------------------
    tmp = harness.tempdir("sluice-routes-")
    bad = os.path.join(tmp, "props.toml")
    with open(bad, "w") as f:
        f.write(f'[kafka]\nbrokers = "{broker.bootstrap}"\n[kafka.properties]\n"linger.ms" = "5"\n'
                '"no.such.property" = "1"\n"acks" = "banana"\n[[route]]\nmatch = "**"\ntopic = "logs"\n')
    r = subprocess.run([SLUICE, "check", "-c", bad], capture_output=True, text=True, timeout=20)
    lines = r.stderr.splitlines()
    t.eq(r.returncode, 2, "sluice check: bad [kafka.properties] -> exit 2")
    t.ok(f'{bad}:5:1: kafka.properties."no.such.property": No such configuration property: "no.such.property"'
         in lines and any(l.startswith(f'{bad}:6:1: kafka.properties."acks": Invalid value') for l in lines),
         "each bad property named with its line and librdkafka's message", r.stderr)
    bad = os.path.join(tmp, "tmpl.toml")
    with open(bad, "w") as f:
        f.write(f'[kafka]\nbrokers = "{broker.bootstrap}"\n\n[[route]]\nmatch = "app.**"\n'
                'topic   = "logs.${nope}"\n')
    r = subprocess.run([SLUICE, "check", "-c", bad], capture_output=True, text=True, timeout=20)
    t.eq(r.returncode, 2, "sluice check: bad topic template -> exit 2")
    t.ok(r.stderr.startswith(f'{bad}:6:11: route[0].topic: ') and "${nope}" in r.stderr,
         "the template error names file:line:col and the placeholder", r.stderr)
finally:
    for x in sluices:
        x.kill()
    broker.stop()
t.done()
