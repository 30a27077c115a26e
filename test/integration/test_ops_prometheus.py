"""The monitoring files sluice ships, against a live sluice and a real
Prometheus server (Debian's prometheus package):

- packaging/prometheus/sluice-rules.yml passes `promtool check rules`, and
  `promtool test rules` shows each alert firing on the series that should
  raise it (sluice-rules.test.yml);
- every metric named by a rule or a panel of
  packaging/grafana/sluice-dashboard.json is exported by a sluice running
  an ingest route, a job and a sink;
- Prometheus scrapes that sluice (`up == 1`), counts exactly the records
  the test sent, loads the rules without an evaluation error, and runs
  every dashboard query without an error."""
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import time

from harness import SRCDIR, Broker, Sluice, Tap, tempdir, wait_for
import prometheus_server

sys.path.insert(0, os.path.join(SRCDIR, "test", "integration", "kafka"))
from kafkatest import ForwardClient, sluice_config  # noqa: E402

t = Tap()
promtool = shutil.which("promtool")
if not promtool or not prometheus_server.available():
    t.skip_all("promtool/prometheus not installed (Debian package prometheus)")

RULES_DIR = os.path.join(SRCDIR, "packaging", "prometheus")
RULES = os.path.join(RULES_DIR, "sluice-rules.yml")
DASHBOARD = os.path.join(SRCDIR, "packaging", "grafana", "sluice-dashboard.json")

# ---- the files on their own ---------------------------------------------------
p = subprocess.run([promtool, "check", "rules", RULES], capture_output=True, text=True)
t.ok(p.returncode == 0, "promtool check rules accepts sluice-rules.yml", p.stdout + p.stderr)
p = subprocess.run([promtool, "test", "rules", "sluice-rules.test.yml"], capture_output=True, text=True,
                   cwd=RULES_DIR)
t.ok(p.returncode == 0, "promtool test rules: every alert fires on its series and only there", p.stdout + p.stderr)

rule_exprs = {}
alert = None
for line in open(RULES):
    m = re.match(r"\s*- alert: (\S+)", line)
    if m:
        alert = m.group(1)
    elif alert:
        rule_exprs[alert] = rule_exprs.get(alert, "") + line
dashboard = json.load(open(DASHBOARD))
panel_exprs = {}
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        panel_exprs[f'{panel["title"]} [{target["refId"]}]'] = target["expr"]
t.ok(len(panel_exprs) >= 20, f"the dashboard has its panels' queries ({len(panel_exprs)})")
titles = " ".join(p["title"].lower() for p in dashboard["panels"])
for what in ["records in", "produce errors", "consumer lag", "records consumed", "state size",
             "sink write latency", "sink errors"]:
    t.ok(what in titles, f"the dashboard has a panel for {what}")

# ---- a live sluice: an ingest route, a job and a sink ----------------------------
tmp = tempdir("sluice-ops-")
broker = Broker(topics=["ops.logs:2"])
s = Sluice(sluice_config(broker.bootstrap, f'''
[[route]]
match = "ops.**"
topic = "ops.logs"

[[job]]
name = "per_service"
topics = ["ops.logs"]
group_by = ["svc"]
time = "processing"
window = {{ type = "tumbling", size = "1s" }}
idle_timeout = "1s"
aggregates = {{ n = "count()" }}
sinks = ["rows"]

[[sink]]
name = "rows"
plugin = "file"
path = "{tmp}/rows.jsonl"
'''))

N = 300
c = ForwardClient(s.port)
c.send_packed("ops.web", [(int(time.time()), {"svc": f"s{i % 3}", "i": i}) for i in range(N)], chunk="c1")
c.wait_ack("c1")
s.wait_metric('sluice_job_records_total{sluice_job="per_service"}', lambda v: v >= N, 30)
wait_for(lambda: sum(v for k, v in s.metrics().items() if k.startswith("sluice_job_rows_total")) > 0, 30,
         "the job's first rows")

# Every family with its labelled series: the job's partitions once their
# offsets are known, the committed offsets once the job has committed.
PER_PARTITION = ["sluice_job_consumer_lag{", "sluice_job_end_offset{", "sluice_job_committed_offset{"]
body = wait_for(lambda: (lambda b: all(f in b for f in PER_PARTITION) and b)(s.http("/metrics")[1]), 30,
                "the job's per-partition series")
types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", body, re.M))


def metrics_table(body):
    """The README's metrics table, from a live exposition: name, type,
    labels (from the samples), help."""
    helps = dict(re.findall(r"^# HELP (\S+) (.*)$", body, re.M))
    labels = {}
    for name, lab in re.findall(r"^([a-z_:][a-z0-9_:]*)\{([^}]*)\}", body, re.M):
        base = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        for k in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', lab):
            if k != "le":
                labels.setdefault(base, set()).add(k)
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for name in sorted(types):
        lab = ", ".join(f"`{k}`" for k in sorted(labels.get(name, ())))
        meaning = helps.get(name, "").replace("|", "\\|")
        rows.append(f"| `{name}` | {types[name]} | {lab} | {meaning} |")
    return "\n".join(rows) + "\n"


def alerts_table():
    """The README's alerts table, from the rules file."""
    rows = ["| alert | severity | fires when | first look |", "|---|---|---|---|"]
    for name, text in rule_exprs.items():
        sev = re.search(r"severity: (\S+)", text).group(1)
        summary = re.search(r'summary: "(.*)"', text).group(1)
        runbook = re.search(r'runbook: "(.*)"', text).group(1).replace('\\"', '"')
        summary = summary.replace("{{ ", "{{").replace(" }}", "}}").replace("|", "\\|")
        rows.append(f"| `{name}` | {sev} | {summary} | {runbook} |")
    return "\n".join(rows) + "\n"


README = os.path.join(SRCDIR, "README.md")
readme = open(README).read()
for marker, table in [("metrics-table", metrics_table(body)), ("alerts-table", alerts_table())]:
    begin, end = f"<!-- {marker}: generated by test/integration/test_ops_prometheus.py -->\n", f"<!-- /{marker} -->"
    if begin not in readme or end not in readme:
        t.ok(False, f"README has the {marker} markers")
        continue
    old = readme[readme.index(begin) + len(begin):readme.index(end)]
    if os.environ.get("SLUICE_WRITE_README") and old != table:
        readme = readme.replace(begin + old + end, begin + table + end)
        open(README, "w").write(readme)
        old = table
    t.ok(old == table, f"the README's {marker} is what a live sluice exports "
         "(SLUICE_WRITE_README=1 meson test ops_prometheus rewrites it)",
         "\n".join(l for l in difflib.unified_diff(old.splitlines(), table.splitlines(), lineterm="")))


def exported(name):
    if name in types:
        return True
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return types.get(base) == "histogram"


def names_in(expr):
    """Metric names in a PromQL expression (not label names: selectors and
    by/without/on/ignoring clauses are left out first)."""
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    return set(re.findall(r"\bsluice_[a-z0-9_]+", expr))


for what, exprs in [("alert rule", rule_exprs), ("dashboard panel", panel_exprs)]:
    for key, expr in sorted(exprs.items()):
        missing = sorted(n for n in names_in(expr) if not exported(n))
        t.ok(names_in(expr) and not missing, f"{what} {key} names only metrics sluice exports", missing)

# ---- a real Prometheus scraping it ------------------------------------------------
prom = prometheus_server.Prometheus([f"127.0.0.1:{s.http_port}"], job="sluice", rule_files=[RULES])
up = wait_for(lambda: prom.value('up{job="sluice"}'), 60, "Prometheus's first scrape of sluice")
t.eq(up, 1.0, "Prometheus scrapes sluice: up == 1")
before = prom.value("sum(sluice_forward_records_total)")
c.send_packed("ops.web", [(int(time.time()), {"svc": "s0", "i": N + i}) for i in range(N)], chunk="c2")
c.wait_ack("c2")
got = wait_for(lambda: (prom.value("sum(sluice_forward_records_total)") or 0) >= 2 * N
               and prom.value("sum(sluice_forward_records_total)"), 30, "the counter to move in Prometheus")
t.eq((before, got), (float(N), float(2 * N)), "Prometheus's sluice_forward_records_total moved with the records sent")


def rules_evaluated():
    groups = prom.api("rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    return len(rules) == len(rule_exprs) and all(r.get("lastEvaluation", "").startswith("20") for r in rules) \
        and rules


rules = wait_for(rules_evaluated, 30, "Prometheus to evaluate every rule")
bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
t.ok(not bad, f"Prometheus evaluates all {len(rules)} rules without an error", bad)
firing = [a["labels"]["alertname"] for a in prom.api("alerts")["alerts"] if a["state"] == "firing"]
t.ok(not firing, "a healthy sluice raises no alert", firing)

errors = []
for key, expr in sorted(panel_exprs.items()):
    q = expr.replace("$__rate_interval", "1m").replace("$instance", ".*").replace("$sluice_job", ".*")
    try:
        prom.query(q)
    except RuntimeError as e:
        errors.append((key, str(e)))
t.ok(not errors, f"Prometheus runs all {len(panel_exprs)} dashboard queries", errors)

c.close()
prom.stop()
t.eq(s.stop(), 0, "sluice exits cleanly")
t.done()
