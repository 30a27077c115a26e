"""A real Prometheus server for tests (Debian's `prometheus` package):
started on a free loopback port with a temporary data folder, scraping the
given targets every second and loading the given rule files; queried
through its HTTP API.  The process is cleaned up with the harness's."""
import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request

import harness
from harness import LineReader, free_port, tempdir, wait_for

PROMETHEUS = shutil.which("prometheus")


def available():
    return bool(PROMETHEUS)


class Prometheus:
    def __init__(self, targets, job="sluice", rule_files=(), tries=5):
        """targets: ["127.0.0.1:PORT", ...], scraped as job `job`."""
        self.dir = tempdir("sluice-prometheus-")
        self.config = os.path.join(self.dir, "prometheus.yml")
        conf = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [os.path.abspath(f) for f in rule_files],
                "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}]}
        with open(self.config, "w") as f:
            json.dump(conf, f)  # YAML is a superset of JSON
        for _ in range(tries):
            self.port = free_port()
            self.p = subprocess.Popen(
                [PROMETHEUS, f"--config.file={self.config}", f"--storage.tsdb.path={self.dir}/data",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            harness._procs.append(self.p)
            self.out = LineReader(self.p.stdout)
            if wait_for(lambda: self.p.poll() is not None or self._ready(), 60, "prometheus to start") \
                    and self.p.poll() is None:
                return
            if "address already in use" not in self.out.text():
                raise RuntimeError("prometheus did not start:\n" + self.out.text())
        raise RuntimeError("prometheus found no free port")

    def _ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path, **params):
        """GET /api/v1/<path>; returns the `data` of a successful answer,
        raises with Prometheus's error otherwise."""
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr):
        """An instant vector query: [(labels, float value)]."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]

    def value(self, expr):
        """The single value of a query, None when it has no result."""
        res = self.query(expr)
        return res[0][1] if len(res) == 1 else None

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
