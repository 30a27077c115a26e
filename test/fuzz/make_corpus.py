#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into corpus/<target>/: a few
small valid inputs each (and a few near misses), deterministic, so that
running it again changes nothing.  Regression inputs (corpus/*/regress-*)
are kept as they are.  Needs python3-msgpack.
    test/fuzz/make_corpus.py"""
import gzip
import hashlib
import os
import struct

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def pk(v):
    return msgpack.packb(v, use_bin_type=True)


def event_time(sec, nsec):
    return msgpack.ExtType(0, struct.pack(">II", sec, nsec))


# ---- forward: flags byte, piece byte, stream (see fuzz_forward.c) ----
def fwd(name, stream, flags=0, piece=0):
    put("forward", name, bytes([flags, piece]) + stream)


rec = {"k": 1, "msg": "hello", "nested": [{"x": 1.5}, b"\x00\x01"]}
entries = [[1700000000, rec], [event_time(1700000001, 5), rec], [[event_time(1700000002, 0), {}], rec], [None, rec]]
opts = {"chunk": "MTIzNDU2Nzg5MAo=", "size": 4}
packed = b"".join(pk(e) for e in entries)
message = pk(["app.message", event_time(1700000000, 5), rec, {"chunk": "YWJj"}])
forward = pk(["app.forward", entries, opts])
fwd("message", message)
fwd("forward", forward, flags=1, piece=7)
fwd("packed_bin", pk(["app.packed", packed, opts]))
fwd("packed_str", pk(["app.text", packed.decode("latin-1"), dict(opts, compressed="text")]), piece=3)
gz = gzip.compress(packed[: len(packed) // 2], mtime=0) + gzip.compress(packed[len(packed) // 2:], mtime=0)
fwd("gzip", pk(["app.gzip", gz, dict(opts, compressed="gzip")]))
fwd("gzip_small_limits", pk(["app.gzip", gz, dict(opts, compressed="gzip")]), flags=8 | 1, piece=16)
bomb = gzip.compress(pk([[1, {"a": "x" * 20000}]]), mtime=0)
fwd("gzip_bomb", pk(["app.gzip", bomb, {"compressed": "gzip"}]))
fwd("keepalive_then_message", pk(None) + message + pk(None) + message, piece=1)
fwd("signal", pk(["app.m", packed, {"fluent_signal": 2, "chunk": "eHl6"}]))
fwd("deep", pk(["t", 1, {"a": [[[[[[{"b": 1}]]]]]]}]), flags=16)

# The handshake (fuzz_forward.c: nonce, auth salt, shared key, users).
NONCE, AUTH_SALT, KEY = b"0123456789abcdef", b"fedcba9876543210", b"secret"


def sha(*parts):
    return hashlib.sha512(b"".join(parts)).hexdigest()


def ping(host=b"client", salt=b"salt0123", key=KEY, user=b"", password=None):
    pw = sha(AUTH_SALT, user, password) if password is not None else ""
    return pk(["PING", host, salt, sha(salt, host, NONCE, key), user, pw])


fwd("ping_then_messages", ping() + message + forward, flags=2, piece=32)
fwd("ping_user", ping(user=b"alice", password=b"wonderland") + message, flags=2 | 4)
fwd("ping_bad_user", ping(user=b"alice", password=b"rabbit") + message, flags=2 | 4)
fwd("ping_bad_key", ping(key=b"wrong") + message, flags=2)
fwd("ping_malformed", pk(["PING", "client", 3]) + message, flags=2)
fwd("helo", pk(["HELO", {"nonce": NONCE, "auth": b"", "keepalive": True}]), flags=2)
server_digest = sha(b"00112233445566778899aabbccddeeff", b"server", NONCE, KEY)
fwd("pong", pk(["PONG", True, "", "server", server_digest]), flags=2)
fwd("pong_refused", pk(["PONG", False, "shared_key mismatch", "", ""]), flags=2)

# ---- toml: the shipped configs and a few of toml-test's valid files ----
for f in ("sluice.toml", "demo.toml"):
    put("toml", f, open(os.path.join(ROOT, "config", f), "rb").read())
put("toml", "types.toml", """# every kind of value
s = "basic \\u00e9 \\t"
l = 'literal'
ml = \"\"\"
multi
line\"\"\"
mll = '''raw\\n'''
i = 0x_ff
i2 = -1_000
o = 0o17
b = 0b101
f = 6.02e23
inf = -inf
nan = nan
t = true
odt = 1979-05-27T07:32:00.999999-07:00
ldt = 1979-05-27T07:32:00
ld = 1979-05-27
lt = 07:32:00.5
arr = [1, [2, "x"], {a = 1}]
inline = {x.y = 1, "q k" = 2}
a.b.c = 1
[t1]
k = 1
[[aot]]
n = 1
[[aot]]
n = 2
[aot.sub]
z = 3
""")
put("toml", "error.toml", "[a]\nb = \n")

# ---- config: the shipped configs and sections with every option kind ----
for f in ("sluice.toml", "demo.toml"):
    put("config", f, open(os.path.join(ROOT, "config", f), "rb").read())
put("config", "small.toml", """shutdown_timeout = "5s"
plugin_dirs = ["/tmp/p"]
[log]
level = "debug"
[input.forward]
listen = ["127.0.0.1:24224", "unix:/tmp/s.sock"]
chunk_size_limit = "8MiB"
idle_timeout = "1m"
[input.forward.security]
shared_key = "secret"
self_hostname = "agent"
[[input.forward.security.users]]
username = "alice"
password = "x"
[kafka]
brokers = "embedded"
[kafka.properties]
"linger.ms" = "5"
[[route]]
match = "app.**"
topic = "logs-${tag}"
[[job]]
name = "errors"
topics = ["logs-app"]
format = "msgpack"
where = 'status >= 500 and path =~ "^/api/"'
window = { type = "hopping", size = "1m", advance = "10s" }
time = { field = "ts", format = "epoch" }
group_by = ["path", 'a["odd key"][0]']
aggregates = { n = "count()", p99 = "percentile(latency, 0.99)", s = "sum(bytes)", u = "count_distinct(user)" }
emit = { every = "10s" }
sinks = ["out"]
[[sink]]
name = "out"
plugin = "file"
path = "/tmp/out.jsonl"
""")
put("config", "errors.toml", "[input.forward]\nlistn = 1\nmax_connections = 0\n[kafak]\n")

# ---- expr: expressions of test_jobs_expr.c's kinds ----
exprs = [
    'status >= 500 and path =~ "^/api/"',
    'not (method == "GET") or n == null',
    'req.headers["x-id"][2] == 7 and exists(req.headers.host)',
    '["@timestamp"] != null and size % 7 > 1',
    'status in [500, 502, 503] and method not in ["HEAD"]',
    '-neg * 2 + f / 0.5 - big >= min',
    'path !~ "(a+)+$" or raw == "bytes"',
    'f32 == 2.5 and nan != nan and list[1] == "a"',
    '9007199254740993 + 0 == 9007199254740993',
    '(a == 1',
    'exist(a)',
    'x < y < z',
]
for i, e in enumerate(exprs):
    put("expr", "e%02d" % i, e)

# ---- json_encode: msgpack values of every type ----
vals = [
    {"s": "caf\u00e9", "bin": b"\x00\xff", "i": -1, "u": 2**64 - 1, "f": 0.1, "n": None, "b": True,
     "a": [1, [2, [3]]], 1: "int key", b"bk": 2, 1.5: "float key"},
    msgpack.ExtType(5, b"ext payload"),
    [float("nan"), float("inf"), -0.0, 1e300, 5e-324],
]
for i, v in enumerate(vals):
    put("json_encode", "v%d" % i, pk(v))
put("json_encode", "float32", b"\xca\x40\x20\x00\x00")  # 2.5f
put("json_encode", "bad_utf8", pk(b"\xc3\x28 \xed\xa0\x80 \xf0\x9f\x98".decode("latin-1")))
put("json_encode", "map_key_map", b"\x81\x81\x01\x02\x03")  # {{1: 2}: 3}

# ---- record_decode: byte 0 even = JSON, odd = msgpack ----
put("record_decode", "json", b"\x00" + b'{"status": 500, "path": "/api/x", "f": 1.5, "a": [1, {"b": null}], "t": true}')
put("record_decode", "json_not_object", b"\x00[1, 2]")
put("record_decode", "json_big", b'\x00{"u": 18446744073709551615, "i": -9223372036854775808, "e": 1e400}')
put("record_decode", "msgpack", b"\x01" + pk({"status": 500, "raw": b"\x00", "nested": {"x": [1, 2.5]}}))
put("record_decode", "msgpack_trailing", b"\x01" + pk({"a": 1}) + b"\xc0")
put("record_decode", "msgpack_truncated", b"\x01" + pk({"a": "hello"})[:-2])

# ---- redis_reply: RESP2/RESP3 replies, error texts, a row's JSON ----
replies = {
    "ok": b"+OK\r\n:1\r\n$5\r\nhello\r\n$-1\r\n",
    "wrongtype": b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    "loading": b"-LOADING Redis is loading the dataset in memory\r\n-OOM command not allowed\r\n",
    "auth": b"-WRONGPASS invalid username-password pair or user is disabled.\r\n-NOAUTH Authentication required.\r\n",
    "pipeline": b"*3\r\n+OK\r\n-READONLY You can't write against a read only replica.\r\n:0\r\n",
    "nested": b"*2\r\n*2\r\n+k\r\n-BUSY script\r\n$-1\r\n*-1\r\n",
    "json_row": b'{"v": 1.25, "score": -3e2, "nested": {"a": [1, "]"]}, "s": "q\\"x"}',
}
for n, v in replies.items():
    put("redis_reply", n, v)
