"""A TEST DOUBLE of Elasticsearch, for the elasticsearch sink's tests: no
Elasticsearch server is packaged for this machine.  It is a threaded
http.server (HTTP/1.1, keep-alive) on 127.0.0.1 that follows the real
APIs only as far as the sink uses them:

* `GET /`: the root document of an Elasticsearch 8 node (name,
  cluster_name, version.number, tagline).
* `POST /_bulk` and `POST /<index>/_bulk`: the body is NDJSON (gzip when
  Content-Encoding says so), each item an action line
  `{"index"|"create"|"delete": {"_index": .., "_id": ..}}` followed by a
  source line (a JSON object) for index and create.  A body that breaks
  those rules (not JSON, an unknown action, a source line missing or not
  an object, no index, no final newline) is refused whole with 400 as
  Elasticsearch does.  Documents are stored by index and _id: `index`
  overwrites (201 created, then 200 updated), `create` of an _id already
  there is a 409 version_conflict_engine_exception, an action without _id
  gets a generated one.  The answer has `took`, `errors` and one item per
  action in order, with `_index`, `_id`, `_version`, `result`, `status`,
  and `error` {type, reason} for failed items.  Query parameters
  (filter_path, pipeline) are recorded, not applied: the real filter_path
  only removes members the sink does not read.
* Not covered: mappings (a "mapping error" is a rule, below), versions,
  refresh, routing, update scripts, searches, authentication checks
  (the Authorization header is recorded), TLS.

Control, for tests (paths a real node does not have):

* `POST /_double/rules` `[{"match": {"field": value, ...}, "index": prefix,
  "status": 429|400|503..., "times": n}]`: items whose source has those
  field values (and whose index starts with prefix) are answered with that
  status and an error (es_rejected_execution_exception for 429,
  mapper_parsing_exception for 400, unavailable_shards_exception for 5xx)
  and not stored, the first n times (absent: always).  Replaces the rules.
* `POST /_double/mode` `{"mode": "ok" | "unavailable" | "hang"}`:
  unavailable answers every request (GET / too) with 503 and an error
  body, no items; hang reads the request and never answers (until the
  mode changes, then the connection is closed without an answer).
* `GET /_double/docs`: `{index: {_id: source}}`; `GET /_double/stats`:
  requests, gzip bodies, per index/_id how many times an action named it,
  statuses answered, headers seen, query strings.

`EsDouble` runs one in a thread of the test process; `stop()` closes the
listening socket (connections are refused) and `start()` listens again on
the same port, keeping the stored documents.  `python3 es_double.py
[port]` runs one alone."""
import gzip
import http.server
import json
import socketserver
import sys
import threading
import urllib.request
import uuid


class _State:
    def __init__(self):
        self.lock = threading.Lock()
        self.docs = {}  # index -> {_id: source}
        self.versions = {}
        self.rules = []
        self.mode = "ok"
        self.mode_changed = threading.Condition(self.lock)
        self.stats = {"requests": 0, "bulk_requests": 0, "gzip_bodies": 0, "attempts": {}, "statuses": {},
                      "queries": [], "auth": [], "hung": 0}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "es-double"

    def log_message(self, fmt, *args):
        pass

    @property
    def st(self):
        return self.server.state

    def _send(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            with self.st.lock:
                self.st.stats["gzip_bodies"] += 1
            body = gzip.decompress(body)
        return body

    def _gate(self):
        """Applies the mode; True when the request is answered here."""
        with self.st.lock:
            self.st.stats["requests"] += 1
            if self.headers.get("Authorization"):
                self.st.stats["auth"].append(self.headers.get("Authorization"))
            mode = self.st.mode
            if mode == "hang":
                self.st.stats["hung"] += 1
                while self.st.mode == "hang":
                    self.st.mode_changed.wait()
                self.close_connection = True
                return True
        if mode == "unavailable":
            self._send(503, {"error": {"type": "cluster_block_exception",
                                       "reason": "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered];"},
                             "status": 503})
            return True
        return False

    # ---- the API ------------------------------------------------------------------------

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/_double/docs":
            with self.st.lock:
                return self._send(200, self.st.docs)
        if path == "/_double/stats":
            with self.st.lock:
                return self._send(200, self.st.stats)
        if self._gate():
            return
        if path == "/":
            return self._send(200, {"name": "es-double", "cluster_name": "sluice-test",
                                    "cluster_uuid": "double", "version": {"number": "8.11.0",
                                                                           "build_flavor": "default"},
                                    "tagline": "You Know, for Search"})
        self._send(404, {"error": {"type": "no_handler", "reason": f"no handler for GET {path}"}, "status": 404})

    def do_POST(self):
        path, _, query = self.path.partition("?")
        if path.startswith("/_double/"):
            body = json.loads(self._read_body() or b"null")
            with self.st.lock:
                if path == "/_double/rules":
                    self.st.rules = [dict(r, used=0) for r in body]
                elif path == "/_double/mode":
                    self.st.mode = body["mode"]
                    self.st.mode_changed.notify_all()
                else:
                    return self._send(404, {"error": "no such control"})
            return self._send(200, {"ok": True})
        if self._gate():
            return
        parts = [p for p in path.split("/") if p]
        if parts and parts[-1] == "_bulk" and len(parts) <= 2:
            body = self._read_body()
            with self.st.lock:
                self.st.stats["bulk_requests"] += 1
                self.st.stats["queries"].append(query)
            return self._bulk(parts[0] if len(parts) == 2 else None, body)
        self._send(404, {"error": {"type": "no_handler", "reason": f"no handler for POST {path}"}, "status": 404})

    def _bad(self, reason):
        self._send(400, {"error": {"type": "illegal_argument_exception", "reason": reason}, "status": 400})

    def _bulk(self, path_index, body):
        if body and not body.endswith(b"\n"):
            return self._bad("The bulk request must be terminated by a newline [\\n]")
        lines = body.split(b"\n")[:-1] if body else []
        actions = []
        i = 0
        while i < len(lines):
            if not lines[i].strip():
                i += 1
                continue
            try:
                action = json.loads(lines[i])
            except ValueError:
                return self._bad(f"Malformed action/metadata line [{i + 1}], expected a JSON object")
            if not isinstance(action, dict) or len(action) != 1:
                return self._bad(f"Malformed action/metadata line [{i + 1}], expected one action")
            (op, meta), = action.items()
            if op not in ("index", "create", "delete") or not isinstance(meta, dict):
                return self._bad(f"Malformed action/metadata line [{i + 1}], unknown action [{op}]")
            index = meta.get("_index", path_index)
            if not index:
                return self._bad(f"Validation Failed: 1: index is missing for request [{i + 1}];")
            source = None
            if op != "delete":
                if i + 1 >= len(lines):
                    return self._bad(f"Validation Failed: 1: source is missing for request [{i + 1}];")
                try:
                    source = json.loads(lines[i + 1])
                except ValueError:
                    return self._bad(f"failed to parse source line [{i + 2}]")
                if not isinstance(source, dict):
                    return self._bad(f"source line [{i + 2}] is not a JSON object")
                i += 1
            i += 1
            actions.append((op, index, meta.get("_id"), source))
        items = []
        with self.st.lock:
            for op, index, _id, source in actions:
                items.append({op: self._item(op, index, _id, source)})
        errors = any(list(it.values())[0]["status"] >= 300 for it in items)
        self._send(200, {"took": 1, "errors": errors, "items": items})

    def _rule_for(self, index, source):
        for r in self.st.rules:
            if r.get("index") and not index.startswith(r["index"]):
                continue
            if any(source.get(k) != v for k, v in r.get("match", {}).items()):
                continue
            if r.get("times") is not None and r["used"] >= r["times"]:
                continue
            r["used"] += 1
            return r
        return None

    def _item(self, op, index, _id, source):
        st = self.st
        key = f"{index}/{_id}"
        st.stats["attempts"][key] = st.stats["attempts"].get(key, 0) + 1
        res = {"_index": index, "_id": _id}
        rule = self._rule_for(index, source) if source is not None else None
        if rule:
            status = rule["status"]
            kind = ("es_rejected_execution_exception" if status == 429 else
                    "mapper_parsing_exception" if status == 400 else "unavailable_shards_exception")
            reason = ("rejected execution of coordinating operation" if status == 429 else
                      "failed to parse field [n] of type [long] in document with id '%s'" % _id if status == 400
                      else "primary shard is not active")
            res.update(status=status, error={"type": kind, "reason": reason})
        elif op == "delete":
            gone = st.docs.get(index, {}).pop(_id, None)
            res.update(status=200 if gone is not None else 404, result="deleted" if gone is not None else "not_found")
        else:
            docs = st.docs.setdefault(index, {})
            if _id is None:
                _id = res["_id"] = uuid.uuid4().hex[:20]
            if op == "create" and _id in docs:
                res.update(status=409, error={
                    "type": "version_conflict_engine_exception",
                    "reason": f"[{_id}]: version conflict, document already exists (current version [1])"})
            else:
                existed = _id in docs
                docs[_id] = source
                v = st.versions[key] = st.versions.get(key, 0) + 1
                res.update(status=200 if existed else 201, result="updated" if existed else "created",
                           _version=v)
        s = str(res["status"])
        st.stats["statuses"][s] = st.stats["statuses"].get(s, 0) + 1
        return res


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class EsDouble:
    """One double in a thread; `url` is its base URL."""

    def __init__(self, port=0):
        self.state = _State()
        self.port = port
        self.server = None
        self.start()

    def start(self):
        self.server = _Server(("127.0.0.1", self.port), _Handler)
        self.server.state = self.state
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        """Closes the listening socket: new connections are refused."""
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    # Control through the HTTP endpoints, as another process would.
    def _post(self, path, obj):
        req = urllib.request.Request(self.url + path, data=json.dumps(obj).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def _get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def rules(self, rules):
        return self._post("/_double/rules", rules)

    def mode(self, mode):
        return self._post("/_double/mode", {"mode": mode})

    def docs(self):
        return self._get("/_double/docs")

    def stats(self):
        return self._get("/_double/stats")


if __name__ == "__main__":
    d = EsDouble(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(f"es-double listening on {d.url}", flush=True)
    threading.Event().wait()
