"""Kafka publishing end to end: real fluent clients (Debian's
python3-fluent-logger, the npm fluent-logger with acks, `sluice cat`) ->
sluice -> the mock broker, read back with kcat.  Every record must be there
exactly once with the route's topic, the key from `key = "user_id"`, the
Kafka timestamp of its event time, the `fluent.tag` header and its body, in
JSON (with tag_key/time_key injected, rfc3339 and exact epoch) and msgpack;
a 20k-record volume run is counted with high-water marks."""
import datetime
import decimal
import json
import os
import subprocess
import sys

import msgpack
from fluent import sender as fluent_sender

from harness import SRCDIR, Broker, Sluice, Tap, high_watermarks, kcat_consume, wait_for

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import HERE, event_time, sluice_cat, sluice_config  # noqa: E402

t = Tap()
BASE = 1700000000  # 2023-11-14T22:13:20Z

ROUTES = """
[[route]]
match = "*.rfc.**"
topic = "logs.json"
key = "user_id"
tag_key = "tag"
time_key = "time"
time_format = "rfc3339"

[[route]]
match = "*.epoch.**"
topic = "logs.json"
key = "user_id"
tag_key = "tag"
time_key = "time"

[[route]]
match = "*.mp.**"
topic = "logs.mp"
format = "msgpack"
key = "user_id"
tag_key = "fluent_tag"
time_key = "time"

[[route]]
match = "vol.**"
topic = "logs.vol"
format = "msgpack"
"""


def nsec_of(i):
    # Covers 0, 1 and 999999999 and digits that a double would round.
    return [0, 1, 999999999][i] if i < 3 else (i * 987654321 + 123) % 1000000000


def rfc3339(sec, ns):
    d = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}Z"


def no_dup_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"duplicate keys in {keys}")
    return dict(pairs)


expected = {}  # id -> (topic, tag, sec, nsec, record, format, time_format)


def expect(rid, topic, tag, sec, ns, record, fmt, time_format):
    expected[rid] = (topic, tag, sec, ns, record, fmt, time_format)


broker = Broker(topics=["logs.json:3", "logs.mp:2", "logs.vol:4"])
s = Sluice(sluice_config(broker.bootstrap, ROUTES, forward='source_address_key = "src"\n'))
try:
    # ---- python3-fluent-logger (no acks: wait for Kafka's delivery count) --
    py = fluent_sender.FluentSender("py", host="127.0.0.1", port=s.port, nanosecond_precision=True, timeout=10)
    sent_ok = True
    for label, topic, fmt, tf in (("rfc.a", "logs.json", "json", "rfc3339"),
                                  ("epoch.b", "logs.json", "json", "epoch"),
                                  ("mp.c", "logs.mp", "msgpack", "epoch")):
        for i in range(25):
            rec = {"id": f"py-{label}-{i}", "n": i, "nested": {"a": [1, "x", None, True], "f": 0.5},
                   "text": "h\u00e9llo \u2713 \"quoted\"\n"}
            if i != 5:  # record 5 has no key field: the Kafka key is null
                rec["user_id"] = f"u{i % 5}" if i % 2 else i * 1000
            if i == 7:  # keys that sluice injects replace the record's own
                rec.update({"tag": "spoof", "fluent_tag": "spoof", "time": "spoof", "src": "spoof"})
            sec, ns = BASE + i, nsec_of(i)
            sent_ok &= py.emit_with_time(label, event_time(sec, ns), rec)
            expect(rec["id"], topic, f"py.{label}", sec, ns, rec, fmt, tf)
    py.close()
    t.ok(sent_ok, "python3-fluent-logger sent 75 records", py.last_error)

    # ---- npm fluent-logger with requireAckResponse ----------------------------
    for tag, topic, fmt, tf in (("node.epoch.x", "logs.json", "json", "epoch"),
                                ("node.mp.y", "logs.mp", "msgpack", "epoch")):
        n = 30
        r = subprocess.run(["node", os.path.join(HERE, "send_node.js"), str(s.port), tag, str(n), str(BASE + 500)],
                           capture_output=True, text=True, timeout=40, env=dict(os.environ, SRCDIR=SRCDIR))
        t.ok(r.returncode == 0 and f"acked {n}" in r.stdout, f"node fluent-logger: {n} records to {tag} all acked",
             r.stdout + r.stderr)
        for i in range(n):
            rec = {"id": f"node-{i}", "user_id": f"u{i % 7}", "n": i, "msg": "hello from node"}
            rid = f"{tag}/node-{i}"
            expect(rid, topic, tag, BASE + 500 + i, i * 1000 + 7, rec, fmt, tf)

    total = len(expected)
    try:
        wait_for(lambda: s.metric_sum("sluice_kafka_delivered_total") >= total, 30)
    except TimeoutError:
        pass
    m = s.metrics()
    t.eq((s.metric_sum("sluice_kafka_delivered_total"), m.get("sluice_kafka_inflight_records")), (float(total), 0.0),
         f"Kafka acknowledged all {total} records, none left in flight")

    # ---- read back and compare every record -----------------------------------
    got = {}
    dupes, wrong = [], []
    for topic in ("logs.json", "logs.mp"):
        want = sum(1 for e in expected.values() if e[0] == topic)
        msgs = kcat_consume(broker.bootstrap, topic, want + 1)  # +1: a duplicate would show
        t.eq(len(msgs), want, f"{topic} holds exactly the {want} records sent")
        for msg in msgs:
            if topic == "logs.json":
                body = json.loads(msg["value"], parse_float=decimal.Decimal, object_pairs_hook=no_dup_keys)
            else:
                body = msgpack.unpackb(msg["value"], raw=False)
            rid = body.get("id", "?")
            if rid.startswith("node-"):
                rid = f"{body.get('tag', body.get('fluent_tag'))}/{rid}"
            if rid in got:
                dupes.append(rid)
            got[rid] = (msg, body)
    t.eq(dupes, [], "no record was written twice")
    t.eq(sorted(set(expected) - set(got)), [], "no record is missing")

    for rid, (topic, tag, sec, ns, rec, fmt, tf) in sorted(expected.items()):
        if rid not in got:
            continue
        msg, body = got[rid]
        problems = []
        if msg["topic"] != topic:
            problems.append(f"topic {msg['topic']} != {topic}")
        key = rec.get("user_id")
        if msg["key"] != ("" if key is None else str(key)):
            problems.append(f"key {msg['key']!r} != {key!r}")
        if msg["ts"] != sec * 1000 + ns // 1000000:
            problems.append(f"timestamp {msg['ts']} != {sec * 1000 + ns // 1000000}")
        if msg["headers"] != f"fluent.tag={tag}":
            problems.append(f"headers {msg['headers']!r}")
        want = dict(rec)
        want.pop("time", None)
        want["src"] = "127.0.0.1"
        if fmt == "json":
            want = json.loads(json.dumps(want), parse_float=decimal.Decimal)
            want["tag"] = tag
            if tf == "rfc3339":
                want["time"] = rfc3339(sec, ns)
            else:
                # An exact decimal with nine digits: no float rounding.
                want["time"] = decimal.Decimal(f"{sec}.{ns:09d}")
                if f'"time":{sec}.{ns:09d}'.encode() not in msg["value"]:
                    problems.append("epoch time is not the exact decimal text")
            if body != want:
                problems.append(f"body {body!r} != {want!r}")
        else:
            want["fluent_tag"] = tag
            tv = body.pop("time", None)
            if not isinstance(tv, float) or abs(tv - (sec + ns / 1e9)) > 1e-6:
                problems.append(f"time {tv!r}")
            if body != want:
                problems.append(f"body {body!r} != {want!r}")
        if problems:
            wrong.append(f"{rid}: " + "; ".join(problems))
    t.ok(not wrong, f"every record has its topic, key, timestamp, fluent.tag header and body "
         f"({sum(1 for e in expected.values() if e[5] == 'json')} JSON, "
         f"{sum(1 for e in expected.values() if e[5] == 'msgpack')} msgpack)", "\n".join(wrong))

    # ---- volume: 20k records, PackedForward with acks ---------------------------
    acks_before = s.metric("sluice_forward_acks_total")
    r = sluice_cat(s.port, "vol.load", ["--mode", "packed", "--ack", "--generate", "20000", "--batch", "500",
                                        "--timeout", "30"], timeout=60)
    t.ok(r.returncode == 0 and b"sent 20000 records, all acked" in r.stderr, "sluice cat: 20000 records all acked",
         r.stderr.decode())
    t.eq(s.metric("sluice_forward_acks_total") - acks_before, 40.0, "one ack per chunk: 40 acks")
    t.eq(high_watermarks(broker.bootstrap, "logs.vol"), 20000, "logs.vol high-water marks add up to 20000")
    sample = kcat_consume(broker.bootstrap, "logs.vol", 1)
    ok = len(sample) == 1
    if ok:
        body = msgpack.unpackb(sample[0]["value"], raw=False)
        ok = set(body) == {"seq", "message", "src"} and len(body["message"]) == 100 and sample[0]["key"] == ""
    t.ok(ok, "a volume record reads back as the generated msgpack map (+ src), without a key", sample[:1])
    t.eq(s.stop(), 0, "sluice stops cleanly (exit 0)")
finally:
    s.kill()
    broker.stop()
t.done()
