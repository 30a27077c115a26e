"""The prometheus sink (plugins/prometheus) in a real daemon.  Records go in
through sluice's forward input (python3-fluent-logger), a route and the
mock Kafka broker to four jobs on 1 s tumbling windows; a file sink keeps
their rows, the reference.  Then /metrics is scraped:

* the gauges of the newest closed window equal its rows in the file (every
  aggregate, booleans as 1/0, a constant label), and a page that had no
  record in that window has no series any more; `promtool check metrics`
  accepts the whole exposition;
* the percentile's histogram (`histograms`): _count equals the row's count,
  the buckets are the sketch's own edges;
* max_series: two label sets shown, the rest counted in
  sluice_sink_prometheus_series_dropped_total (as many as the windows' rows
  past the cap);
* labels that do not identify a row (a job grouped by page and method,
  shown by page) and a string aggregate: counted in
  sluice_sink_prometheus_label_collisions_total and
  sluice_sink_prometheus_fields_skipped_total, with a log line;
* early rows (emit = { every }): ignored and counted by default, shown
  with early = true;
* a real Prometheus server scrapes sluice: its API returns the gauges, and
  histogram_quantile(0.99, ...) per page and summed over pages is within
  one bucket's width (the sketch's 2.02 % with these options) of the exact
  percentile of the window's values;
* bad options are refused by `sluice check`, and `sluice plugins` lists
  the plugin's options."""
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys

from fluent import sender as fluent_sender

from harness import SLUICE, SRCDIR, Broker, Sluice, Tap, tempdir, wait_for
from job_reference import parse_rfc3339
import prometheus_server

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import event_time, sluice_config  # noqa: E402

t = Tap()
promtool = shutil.which("promtool")
if not promtool or not prometheus_server.available():
    t.skip_all("promtool and prometheus are not installed (Debian package prometheus)")
tmp = tempdir("sluice-sink-prometheus-")
rnd = random.Random(int(os.environ.get("SEED", "11")))

BASE = 1_700_000_000_000  # a whole second
ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
# Pages per window: /old only in window 1, /c missing from window 1, many
# records in window 3 (the newest to close).
PAGES = {0: ["/a", "/b", "/c", "/d"], 1: ["/a", "/b", "/old"], 2: ["/b", "/a", "/c", "/e"], 3: ["/a", "/b", "/c"]}
PER_PAGE = {0: 3, 1: 4, 2: 2, 3: 160}

records = []  # (ms, record) in sending order
for w, pages in PAGES.items():
    n = PER_PAGE[w] * len(pages)
    for i in range(n):
        page = pages[i % len(pages)]
        lat = rnd.lognormvariate(3, 1)
        lat = round(lat, 2) if i % 3 else int(lat) + 1  # floats and integers
        records.append((BASE + w * 1000 + i * 900 // n, {"page": page, "method": ["GET", "POST"][i % 2],
                                                         "lat": lat, "ok": i % 4 != 0, "user": f"u{i % 7}"}))
# Closes window 3 (the watermark passes its end); window 5 stays open.
records.append((BASE + 5500, {"page": "/tick", "method": "GET", "lat": 1, "ok": True, "user": "t"}))

ROWS = os.path.join(tmp, "rows.jsonl")
HIST = 'histograms = { latency_p99 = "latency" }\nbucket_min = 1\nbucket_max = 10000\nmax_buckets = 500'
JOBS = f"""
[[route]]
match = "**"
topic = "logs"

[[job]]
name = "pv"
topics = ["logs"]
group_by = ["page"]
window = {{ type = "tumbling", size = "1s" }}
aggregates = {{ n = "count()", latency_avg = "avg(lat)", latency_p99 = "percentile(lat, 0.99)", ok = "last(ok)" }}
sinks = ["ref", "prom", "capped"]

[[job]]
name = "pm"
topics = ["logs"]
group_by = ["page", "method"]
window = {{ type = "tumbling", size = "1s" }}
aggregates = {{ n = "count()", who = "last(user)" }}
sinks = ["ref", "by_page"]

[[job]]
name = "live"
topics = ["logs"]
group_by = ["page"]
window = {{ type = "tumbling", size = "1s" }}
aggregates = {{ n = "count()" }}
emit = {{ every = "100ms" }}
sinks = ["closed_only", "with_early"]

[[sink]]
name = "ref"
plugin = "file"
path = "{ROWS}"

[[sink]]
name = "prom"
plugin = "prometheus"
const_labels = {{ env = "test" }}
{HIST}

[[sink]]
name = "capped"
plugin = "prometheus"
metric = "pvcap"
values = ["n"]
max_series = 2

[[sink]]
name = "by_page"
plugin = "prometheus"
labels = ["page"]

[[sink]]
name = "closed_only"
plugin = "prometheus"

[[sink]]
name = "with_early"
plugin = "prometheus"
metric = "live_early"
early = true
"""


def read_rows():
    if not os.path.exists(ROWS):
        return []
    with open(ROWS) as f:
        return [json.loads(line) for line in f if line.strip()]


def parse_exposition(body):
    """{(name, frozenset(labels)): value} and {name: type}."""
    samples, types = {}, {}
    rx = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
    lrx = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in body.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
        if not line or line.startswith("#"):
            continue
        m = rx.match(line)
        labels = frozenset(lrx.findall(m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples, types


def series(samples, name, **want):
    """{labels dict as frozenset: value} of `name` whose labels include want."""
    w = set(want.items())
    return {k[1]: v for k, v in samples.items() if k[0] == name and w <= set(k[1])}


def scrape():
    return parse_exposition(s.http("/metrics")[1])[0]


broker = Broker()
broker._cmd("topic logs 1")  # one partition: records in sending order, every one moves the watermark
s = Sluice(sluice_config(broker.bootstrap, JOBS))
sender = fluent_sender.FluentSender("ev", host="127.0.0.1", port=s.port, nanosecond_precision=True, timeout=10)
for ms, rec in records:
    if not sender.emit_with_time("page", event_time(ms // 1000, ms % 1000 * 1000000), rec):
        raise RuntimeError(f"fluent-logger could not send: {sender.last_error}")
sender.close()

rows = {}


def all_rows_in():
    """Every window's rows of pv and pm in the file, and handed to every
    prometheus sink of theirs."""
    got = read_rows()
    for job in ("pv", "pm"):
        rows[job] = [r for r in got if r["job"] == job]
    want_pv = sum(len(p) for p in PAGES.values())
    m = s.metrics()
    return (len(rows["pv"]) == want_pv and {parse_rfc3339(r["window_start"]) for r in rows["pm"]} ==
            {BASE + w * 1000 for w in PAGES} and
            m.get('sluice_sink_rows_total{sink="prom"}') == want_pv and
            m.get('sluice_sink_rows_total{sink="capped"}') == want_pv and
            m.get('sluice_sink_rows_total{sink="by_page"}') == len(rows["pm"]))


try:
    wait_for(all_rows_in, 60, "the windows' rows in the file and in the prometheus sinks")
    t.ok(True, "every window's rows reach the file sink and the prometheus sinks")
except TimeoutError as e:
    t.ok(False, "every window's rows reach the file sink and the prometheus sinks", f"{e}\n{s.log.text()[-3000:]}")
    s.stop()
    t.done()

NEWEST = BASE + 3000
newest = {r["page"]: r for r in rows["pv"] if parse_rfc3339(r["window_start"]) == NEWEST}
t.eq(sorted(newest), PAGES[3], "the newest closed window has the pages sent in it")

# 1. The gauges are the newest window's rows.
body = s.http("/metrics")[1]
samples, types = parse_exposition(body)
p = subprocess.run([promtool, "check", "metrics"], input=body.encode(), capture_output=True, timeout=30)
t.ok(p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(),
     "promtool check metrics accepts the exposition with the sinks' series", p.stdout.decode() + p.stderr.decode())
for name in ("pv_n", "pv_latency_avg", "pv_latency_p99", "pv_ok"):
    t.eq(types.get(name), "gauge", f"{name} is a gauge")
t.eq(types.get("pv_latency"), "histogram", "pv_latency is a histogram")
wrong = []
for page, r in newest.items():
    lab = frozenset({("page", page), ("env", "test")})
    for col, want in (("n", r["n"]), ("latency_avg", r["latency_avg"]), ("latency_p99", r["latency_p99"]),
                      ("ok", 1.0 if r["ok"] else 0.0)):
        got = samples.get((f"pv_{col}", lab))
        if got != want:
            wrong.append(f"pv_{col}{{page={page}}}: {got} != {want}")
t.ok(not wrong, f"every gauge of the {len(newest)} pages equals its row in the file, exactly", "\n".join(wrong))
shown = {dict(k)["page"] for k in series(samples, "pv_n")}
t.eq(shown, set(newest), "only the newest window's pages have series: /old, /d and /e went with their windows")
t.eq(samples.get(("sluice_sink_prometheus_series", frozenset({("sink", "prom")}))), float(len(newest)),
     "sluice_sink_prometheus_series counts them")

# 2. The histogram: count and buckets.
counts_ok, edges_ok = True, True
for page, r in newest.items():
    lab = {("page", page), ("env", "test")}
    count = samples.get(("pv_latency_count", frozenset(lab)))
    inf = samples.get(("pv_latency_bucket", frozenset(lab | {("le", "+Inf")})))
    counts_ok &= count == r["n"] == inf
    les = sorted(float(dict(k)["le"]) for k in series(samples, "pv_latency_bucket", page=page) if dict(k)["le"] != "+Inf")
    edges_ok &= les[0] <= 1 and les[-1] >= 10000 and all(abs(b / a - GAMMA) < 1e-9 for a, b in zip(les, les[1:]))
t.ok(counts_ok, "each page's histogram counts the window's values: _count = le=+Inf = the row's n")
t.ok(edges_ok, "its buckets are the sketch's edges, gamma = 1.0202 apart, over [1, 10000]")

# 3. max_series.
capped = series(samples, "pvcap_n")
dropped_want = sum(max(0, len(p) - 2) for p in PAGES.values())
t.eq(len(capped), 2, "max_series = 2: two label sets shown")
t.ok(all(dict(k)["page"] in newest for k in capped), "both of the newest window")
t.eq(samples.get(("sluice_sink_prometheus_series_dropped_total", frozenset({("sink", "capped")}))),
     float(dropped_want), f"the {dropped_want} rows past the cap counted in sluice_sink_prometheus_series_dropped_total")
t.ok(s.log.seen(r"warn  sink:prometheus:capped: \d+ rows of new label sets not shown: max_series \(2\)", 5),
     "and logged")

# 4. Labels that do not identify a row, and a string aggregate.
by_window = {}
for r in rows["pm"]:
    by_window.setdefault(r["window_start"], []).append(r["page"])
collisions = sum(len(pages) - len(set(pages)) for pages in by_window.values())
m = s.metrics()
t.eq(m.get('sluice_sink_prometheus_label_collisions_total{sink="by_page"}'), float(collisions),
     f"rows sharing their labels within a window: {collisions} collisions counted")
t.eq(m.get('sluice_sink_prometheus_fields_skipped_total{sink="by_page"}'), float(len(rows["pm"])),
     "the string aggregate of every row skipped and counted")
t.ok(s.log.seen(r"sink:prometheus:by_page: \d+ fields skipped: values: field who is not a number \(job pm\)", 5),
     "with a log line naming the field and the job")
t.ok(s.log.seen(r"sink:prometheus:by_page: \d+ rows share their labels", 5), "collisions logged")
t.eq(len(series(samples, "pm_n")), len(newest), "one series per page of the newest window")

# 5. Early rows.
def early_shown():
    return scrape().get(("live_early_n", frozenset({("page", "/tick")})))


t.ok(wait_for(lambda: early_shown() == 1.0, 20, "the open window's early row"),
     "early = true: the open window's early row is shown (/tick: 1)")
samples = scrape()
t.ok(("live_n", frozenset({("page", "/tick")})) not in samples and
     {dict(k)["page"]: v for k, v in series(samples, "live_n").items()} == {p: r["n"] for p, r in newest.items()},
     "early = false: only closed windows, the same as the pv job's counts")
t.ok(samples.get(("sluice_sink_prometheus_rows_ignored_total", frozenset({("sink", "closed_only")}))) > 0,
     "early rows ignored and counted")

# 6. A real Prometheus scrapes sluice.
prom = prometheus_server.Prometheus([f"127.0.0.1:{s.http_port}"])


def all_scraped():
    got = {r[0].get("page"): r[1] for r in prom.query('pv_n{env="test"}')}
    return got if got == {p: float(r["n"]) for p, r in newest.items()} else None


try:
    wait_for(all_scraped, 60, "Prometheus to scrape the gauges")
    t.ok(True, "Prometheus's API returns every gauge with its row's value")
except TimeoutError as e:
    t.ok(False, "Prometheus's API returns every gauge with its row's value", f"{e}: {prom.query('pv_n')}")

values = {p: sorted(rec["lat"] for ms, rec in records if BASE + 3000 <= ms < BASE + 4000 and rec["page"] == p)
          for p in newest}
values[None] = sorted(v for p in newest for v in values[p])


def within_bucket(got, vals, q=0.99):
    """Prometheus's rank is q n: its answer lies in the bucket of the value of
    rank ceil(q n), so within one bucket's width (gamma - 1 with these
    options) of it."""
    x = vals[math.ceil(q * len(vals)) - 1]
    return got is not None and abs(got - x) <= (GAMMA - 1) * x, x


bad = []
for page in newest:
    got = prom.value(f'histogram_quantile(0.99, pv_latency_bucket{{page="{page}"}})')
    good, x = within_bucket(got, values[page])
    if not good:
        bad.append(f"{page}: {got} vs {x}")
t.ok(not bad, "histogram_quantile(0.99) of each page is within a bucket (2.02 %) of the exact percentile", bad)
got = prom.value("histogram_quantile(0.99, sum by (le) (pv_latency_bucket))")
good, x = within_bucket(got, values[None])
t.ok(good, f"summed over pages too: {got} vs the exact {x} of all {len(values[None])} values")
t.eq(prom.value("sum(pv_latency_count)"), float(len(values[None])), "sum(pv_latency_count) is every value")
prom.stop()

# 7. Bad options, refused by sluice check; the plugin listed.
BAD = [
    ('buckets = [5, 1]', r"sink\[0\]\.buckets: 1 is not above 5"),
    ('metric = "api-errors"', r'sink\[0\]\.metric: "api-errors" is not a Prometheus metric name'),
    ('const_labels = { __x = "1" }', r'sink\[0\]\.const_labels: "__x" is not a Prometheus label name'),
    ('histograms = { p = "a b" }', r'sink\[0\]\.histograms: "a b" \(for p\) is not a name'),
    ('max_buckets = 2', r"sink\[0\]\.max_buckets: 2 is out of range \(3 to 2000\)"),
    ('bucket_min = 10\nbucket_max = 5', r"sink\[0\]\.bucket_max: 5 is not above bucket_min \(10\)"),
    ('buckets = ["1"]', r"sink\[0\]\.buckets: expected a number, got string"),
]
for i, (opt, want) in enumerate(BAD):
    path = os.path.join(tmp, f"bad{i}.toml")
    with open(path, "w") as f:
        f.write(f'[[sink]]\nname = "p"\nplugin = "prometheus"\n{opt}\n')
    r = subprocess.run([SLUICE, "check", "-c", path], capture_output=True, text=True, timeout=30)
    t.ok(r.returncode == 2 and re.search(want, r.stdout + r.stderr), f"sluice check refuses {opt!r}",
         r.stdout + r.stderr)
r = subprocess.run([SLUICE, "plugins"], capture_output=True, text=True, timeout=30)
t.ok(re.search(r"^prometheus 1\.0\.0 \(ABI 1\.\d+\) ", r.stdout, re.M) and
     all(re.search(rf"^  {o} ", r.stdout, re.M) for o in ("metric", "histograms", "max_series", "expire")),
     "sluice plugins lists the prometheus plugin and its options", r.stdout)

t.eq(s.stop(), 0, "sluice stops cleanly")
broker.stop()
t.done()
