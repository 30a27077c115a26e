"""The elasticsearch sink (plugins/elasticsearch) against the Elasticsearch
test double (test/helpers/es_double.py: the _bulk API's rules, stored
documents, chosen items rejected, 503s, hangs).  Records go in through
sluice's forward input, a route and the mock Kafka broker; one job (1 s
tumbling windows on the records' `ts`, epoch ms, six windows before
midnight UTC and six after) writes its rows to a file sink, the
reference, and to elasticsearch sinks:

* main: index "sluice-${job}-%Y.%m.%d": every row stored once, _id = the
  row id, the document = the row's JSON, in the index of its window
  start's day (two daily indices); the startup GET / logs the version;
* gz: gzip bodies, operation = "create", at most 2 documents per request;
* r429: the double answers 429 to the first 3 "cart" items and 503 to the
  first 2 "search" items: only those are sent again, each id ends stored
  once;
* dl: a 400 mapping error for every "bad" row: on_failure = "dead_letter",
  the rows are in the dead-letter topic (read with kcat) with the reason,
  the others stored;
* fo: hosts = [a port where nothing listens, the double]: failover;
* down: a double that is not listening when sluice starts (a warning
  from the startup check, rows retried) and listens later: every row
  arrives;
* hang: a double that reads requests and never answers (request_timeout
  300ms: timeouts, rows retried), then answers: every row arrives."""
import datetime
import json
import os
import random

from harness import Broker, Sluice, Tap, free_port, kcat_consume, sluice_cat, tempdir, wait_for
from es_double import EsDouble

t = Tap()
tmp = tempdir("sluice-sink-es-")
rnd = random.Random(int(os.environ.get("SEED", "7")))

MIDNIGHT = 1_700_006_400_000  # 2023-11-15T00:00:00Z
BASE = MIDNIGHT - 6_000
ROUNDS = 12
PAGES = ["home", "cart", "search", "bad"]

es = EsDouble()
down = EsDouble()
down.stop()
hang = EsDouble()
hang.mode("hang")
es.rules([{"index": "r429-", "match": {"page": "cart"}, "status": 429, "times": 3},
          {"index": "r429-", "match": {"page": "search"}, "status": 503, "times": 2},
          {"index": "dl-", "match": {"page": "bad"}, "status": 400}])
nowhere = free_port()

broker = Broker()
broker._cmd("topic logs 1")  # one partition: every record moves the watermark
broker._cmd("topic es.dlq 1")
ref_path = os.path.join(tmp, "rows.jsonl")
FAST_RETRY = 'initial_backoff = "50ms"\nmax_backoff = "400ms"'

sluice = Sluice(f"""
shutdown_timeout = "5s"
[http]
listen = "127.0.0.1:0"
[input.forward]
listen = "127.0.0.1:0"
[kafka]
brokers = "{broker.bootstrap}"
[[route]]
match = "**"
topic = "logs"

[[job]]
name = "pv"
topics = ["logs"]
group_by = ["page"]
time = {{ field = "ts", format = "epoch_ms" }}
window = {{ type = "tumbling", size = "1s" }}
aggregates = {{ n = "count()", s = "sum(lat)", avg = "avg(lat)", last_ok = "last(ok)" }}
commit_interval = "100ms"
sinks = ["ref", "main", "gz", "r429", "dl", "fo", "down", "hang"]

[[sink]]
name = "ref"
plugin = "file"
path = "{ref_path}"

[[sink]]
name = "main"
plugin = "elasticsearch"
hosts = "{es.url}"
index = "sluice-${{job}}-%Y.%m.%d"

[[sink]]
name = "gz"
plugin = "elasticsearch"
hosts = ["{es.url}/"]
index = "gz-%Y.%m.%d"
operation = "create"
compress = "gzip"
max_batch_docs = 2
api_key = "a2V5OnNlY3JldA=="

[[sink]]
name = "r429"
plugin = "elasticsearch"
hosts = ["{es.url}"]
index = "r429-%Y.%m.%d"
{FAST_RETRY}

[[sink]]
name = "dl"
plugin = "elasticsearch"
hosts = ["{es.url}"]
index = "dl-%Y.%m.%d"
on_failure = "dead_letter"
dead_letter_topic = "es.dlq"

[[sink]]
name = "fo"
plugin = "elasticsearch"
hosts = ["http://127.0.0.1:{nowhere}", "{es.url}"]
index = "fo-%Y.%m.%d"
{FAST_RETRY}

[[sink]]
name = "down"
plugin = "elasticsearch"
hosts = ["{down.url}"]
index = "down-%Y.%m.%d"
request_timeout = "2s"
{FAST_RETRY}

[[sink]]
name = "hang"
plugin = "elasticsearch"
hosts = ["{hang.url}"]
index = "hang-%Y.%m.%d"
request_timeout = "300ms"
{FAST_RETRY}
""")


def metric(name, **labels):
    return sluice.metric(name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}")


def day(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc).strftime("%Y.%m.%d")


def row_day(row):
    return row["window_start"][:10].replace("-", ".")


def file_rows():
    if not os.path.exists(ref_path):
        return []
    with open(ref_path) as f:
        return [json.loads(l) for l in f if l.endswith("\n")]


# ---- the startup check ---------------------------------------------------------------
t.ok(sluice.log.seen(rf"info +sink:elasticsearch:main: Elasticsearch 8\.11\.0 \(cluster sluice-test\) at "
                     rf"http://127\.0\.0\.1:{es.port}$"), "the startup GET / logs the version, the cluster and the host")
t.ok(sluice.log.seen(rf"warn +sink:elasticsearch:down: Elasticsearch at http://127\.0\.0\.1:{down.port} did not "
                     r"answer GET /: .*(?:refused|connect).*; rows are retried until it answers"),
     "a host not listening at start: a warning, and sluice runs on (create did not wait)")
t.ok(sluice.log.seen(rf"warn +sink:elasticsearch:hang: Elasticsearch at http://127\.0\.0\.1:{hang.port} did not "
                     r"answer GET /: .*\(request_timeout\)"), "a host that never answers: a warning after request_timeout")

# ---- the records: 12 windows, each page in each ----------------------------------------
records = []
for r in range(ROUNDS):
    for k, page in enumerate(PAGES):
        for j in range(rnd.randint(1, 3)):
            records.append({"ts": BASE + r * 1000 + j * 200 + k, "page": page, "lat": rnd.randint(1, 999),
                            "ok": rnd.choice([True, False])})
records.sort(key=lambda x: x["ts"])
records.append({"ts": BASE + 3600 * 1000, "page": "sentinel", "lat": 0, "ok": True})  # closes the 12
res = sluice_cat(sluice.port, "app.pv", records, args=["--ack"])
assert res.returncode == 0, res.stderr
wait_for(lambda: len(file_rows()) == ROUNDS * len(PAGES), 40, "every window's rows in the file")
rows = file_rows()
by_id = {row["id"]: row for row in rows}
t.eq(len(by_id), len(rows), "the job's rows have distinct ids")

# ---- down and hang: failing, then back ----------------------------------------------
wait_for(lambda: metric("sluice_sink_retries_total", sink="down") >= 2, 20, "retries on the host that is down")
wait_for(lambda: metric("sluice_sink_retries_total", sink="hang") >= 2, 20, "retries on the host that hangs")
t.ok(metric("sluice_sink_rows_total", sink="down") == 0 and metric("sluice_sink_up", sink="down") == 0,
     "down: no row written while the host is down; sluice_sink_up 0")
t.ok(sluice.log.seen(rf"sink:elasticsearch:hang: .*elasticsearch at http://127\.0\.0\.1:{hang.port}: no answer "
                     r"within request_timeout \(300 ms\)"), "hang: the request times out and its rows are retried")
down.start()
hang.mode("ok")

SINKS = ["main", "gz", "r429", "dl", "fo", "down", "hang"]
for sink in SINKS:
    wait_for(lambda: metric("sluice_sink_queue_rows", sink=sink) == 0, 30, f"{sink} to have written every row")
t.ok(sluice.log.seen(rf"info +sink:elasticsearch:down: Elasticsearch at http://127\.0\.0\.1:{down.port} answers "
                     r"again"), "down: the host answering again is logged")

docs = es.docs()


def check_store(store, prefix, want_rows, desc):
    """store (the double's documents) holds exactly want_rows in
    prefix-<day> indices, _id = the row id, the document = the row."""
    want = {}
    for row in want_rows:
        want.setdefault(f"{prefix}{row_day(row)}", {})[row["id"]] = row
    got = {ix: d for ix, d in store.items() if ix.startswith(prefix)}
    t.ok(got == want, desc, f"indices got {sorted(got)} want {sorted(want)}; "
         f"docs got {sum(len(d) for d in got.values())} want {len(want_rows)}")


# ---- main: one document per row, daily indices from the window start --------------------
check_store(docs, "sluice-pv-", rows, "main: the stored documents equal the rows one to one, _id = the row id")
t.eq(sorted(ix for ix in docs if ix.startswith("sluice-pv-")), [f"sluice-pv-{day(BASE)}", f"sluice-pv-{day(MIDNIGHT)}"],
     "main: daily indices named from each row's window start (UTC), ${job} filled in")
t.eq(sorted(len(docs[f"sluice-pv-{day(ms)}"]) for ms in (BASE, MIDNIGHT)), [6 * len(PAGES)] * 2,
     "main: six windows' rows on each side of midnight")

# ---- gz: gzipped bodies, create, 2 documents per request ---------------------------------
check_store(docs, "gz-", rows, "gz: every row stored once with operation = create")
stats = es.stats()
t.ok(stats["gzip_bodies"] >= len(rows) // 2, "gz: the bodies came gzipped (Content-Encoding: gzip), "
     "at most 2 documents each", stats["gzip_bodies"])
t.ok("ApiKey a2V5OnNlY3JldA==" in stats["auth"], "gz: api_key sent as Authorization: ApiKey")
t.ok(all("filter_path=" in q for q in stats["queries"]), "bulk requests ask only for what the sink reads (filter_path)")

# ---- r429: only the rejected items are sent again ------------------------------------------
check_store(docs, "r429-", rows, "r429: every row stored once in the end")
attempts = {k.split("/", 1)[1]: n for k, n in stats["attempts"].items() if k.startswith("r429-")}
extra = {i: n - 1 for i, n in attempts.items() if n > 1}
t.ok(sorted(attempts) == sorted(by_id) and all(by_id[i]["page"] in ("cart", "search") for i in extra)
     and sum(n for i, n in extra.items() if by_id[i]["page"] == "cart") == 3
     and sum(n for i, n in extra.items() if by_id[i]["page"] == "search") == 2,
     "r429: the 3 items answered 429 and the 2 answered 503 were sent again, no other item",
     {by_id[i]["page"] + ":" + i: n for i, n in extra.items()})
t.eq(metric("sluice_sink_elasticsearch_items_retried_total", sink="r429"), 5.0,
     "r429: the retried items are counted")
t.eq(metric("sluice_sink_errors_total", sink="r429", kind="fatal"), 0.0, "r429: no row refused")

# ---- dl: mapping errors are dead-lettered ----------------------------------------------------
bad = sorted(row["id"] for row in rows if row["page"] == "bad")
check_store(docs, "dl-", [row for row in rows if row["page"] != "bad"], "dl: the rows without a mapping error stored")
wait_for(lambda: metric("sluice_sink_rows_dead_lettered_total", sink="dl") == len(bad), 20, "the dead letters")
msgs = kcat_consume(broker.bootstrap, "es.dlq", len(bad))
good = []
for m in msgs:
    headers = dict(h.split("=", 1) for h in m["headers"].split(",") if "=" in h)
    good.append(json.loads(m["value"]) == by_id.get(m["key"]) and headers.get("sluice.sink") == "dl"
                and "(status 400): mapper_parsing_exception: failed to parse field [n]" in headers.get("sluice.error", ""))
t.ok(len(msgs) == len(bad) and all(good) and sorted(m["key"] for m in msgs) == bad,
     "dl: each row refused with a 400 is in the dead-letter topic with Elasticsearch's reason", msgs[:2])
t.eq(metric("sluice_sink_elasticsearch_items_rejected_total", sink="dl"), float(len(bad)),
     "dl: the refused items are counted")
t.ok(sluice.log.seen(r"warn +sink:elasticsearch:dl: \d+ of \d+ documents refused for good \(on_failure applies\), the "
                     r"first: elasticsearch refused document [0-9a-f]{16} \(status 400\): mapper_parsing_exception: "),
     "dl: the reason is logged")

# ---- fo: the first host refuses connections, the second takes the rows ---------------------
check_store(docs, "fo-", rows, "fo: every row stored through the second host")
t.ok(sluice.log.seen(rf"warn +sink:elasticsearch:fo: Elasticsearch at http://127\.0\.0\.1:{nowhere}: .*; trying "
                     r"the next host"), "fo: the failover is logged")

# ---- down and hang: everything arrived once they answered ----------------------------------
check_store(down.docs(), "down-", rows, "down then up: every row stored once the host listens again")
check_store(hang.docs(), "hang-", rows, "hang then answering: every row stored")
t.ok(metric("sluice_sink_elasticsearch_request_failures_total", sink="hang") > 0,
     "hang: the timed-out requests are counted")

rc = sluice.stop()
t.ok(rc == 0 and sluice.log.seen(r"agent: stopped"), "sluice stops cleanly, every sink closed", sluice.log.text()[-2000:])
for d in (es, down, hang):
    d.stop()
broker.stop()
t.done()
