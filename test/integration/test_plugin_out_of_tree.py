"""A sink plugin built out of tree, the way a plugin author builds one: this
build is installed (`meson install --destdir`) into a temporary folder, the
SDK's example (examples/sink_lines/example.c, the `lines` plugin) is
compiled against that staged prefix alone with `pkg-config sluice-plugin`
(the compiler's dependency list proves which sink.h it read), and the build
tree's sluice loads the result from `plugin_dirs`: `sluice plugins` lists it
with its options, `sluice check` validates them, and a job over the mock
broker writes its rows through it.  The rows are checked against a file
sink fed the same rows (same ids, fields in the same order, same values);
a row whose line is too long is refused by the plugin alone (row_done
FATAL) and dropped by the host (on_failure = "drop"); a late record reaches
the plugin as a late_sink; the plugin's counter and gauge are on /metrics
labelled by the sink's name.

Environment (test/meson.build): BUILDDIR, SRCDIR, MESON, PKG_CONFIG,
PLUGIN_CC (the build's C compiler command), SLUICE, MOCK_BROKER."""
import json
import os
import re
import shlex
import subprocess
from datetime import datetime, timezone

from harness import SLUICE, SRCDIR, Broker, Sluice, Tap, sluice_cat, tempdir, wait_for

t = Tap()
BUILDDIR = os.environ["BUILDDIR"]
MESON = os.environ.get("MESON", "meson")
PKG_CONFIG = os.environ.get("PKG_CONFIG", "pkg-config")
CC = shlex.split(os.environ.get("PLUGIN_CC", "cc"))
EXAMPLE = os.path.join(SRCDIR, "examples", "sink_lines", "example.c")
tmp = tempdir("sluice-plugin-oot-")

# ---- install this build into a staging folder ------------------------------------------

stage = os.path.join(tmp, "stage")
r = subprocess.run([MESON, "install", "-C", BUILDDIR, "--no-rebuild", "--quiet", "--destdir", stage],
                   capture_output=True, text=True, timeout=120)
if not t.ok(r.returncode == 0, "meson install --destdir stages the build", r.stdout + r.stderr):
    t.done()
with open(os.path.join(BUILDDIR, "meson-info", "intro-buildoptions.json")) as f:
    opts = {o["name"]: o["value"] for o in json.load(f)}
prefix = stage + opts["prefix"]
pcdir = os.path.join(prefix, opts["libdir"], "pkgconfig")
t.ok(os.path.isfile(os.path.join(pcdir, "sluice-plugin.pc")), "sluice-plugin.pc is installed in <libdir>/pkgconfig")
t.ok(os.path.isfile(os.path.join(prefix, opts["includedir"], "sluice", "sink.h")),
     "the SDK header is installed as <includedir>/sluice/sink.h")

# ---- compile the example against the staged prefix only ----------------------------------

# PKG_CONFIG_LIBDIR replaces the default search path: only the staged .pc is
# seen.  The .pc names the configured prefix (/usr/local), so it is moved
# with --define-variable, as for any relocated install.  (--define-prefix
# guesses the prefix from the .pc's folder, assuming <prefix>/lib/pkgconfig,
# and is one level off with a multiarch libdir such as lib/x86_64-linux-gnu.)
pc_env = dict(os.environ, PKG_CONFIG_LIBDIR=pcdir, PKG_CONFIG_PATH="")


def pkg_config(*args):
    return subprocess.run([PKG_CONFIG, f"--define-variable=prefix={prefix}", *args, "sluice-plugin"],
                          capture_output=True, text=True, env=pc_env, timeout=30)


r = pkg_config("--cflags", "--libs")
t.ok(r.returncode == 0, "pkg-config finds sluice-plugin in the staged prefix", r.stderr)
flags = shlex.split(r.stdout)
include_dirs = [f[2:] for f in flags if f.startswith("-I")]
t.ok(include_dirs and all(os.path.realpath(d).startswith(os.path.realpath(stage) + os.sep) for d in include_dirs),
     "its include path points into the staged prefix, not the source tree", flags)
r = pkg_config("--variable=plugindir")
t.eq(r.stdout.strip(), os.path.join(prefix, opts["libdir"], "sluice", "plugins"),
     "plugindir names the installed plugin folder")

plugdir = os.path.join(tmp, "plugins")
os.mkdir(plugdir)
so = os.path.join(plugdir, "lines.so")
deps = os.path.join(tmp, "lines.d")
# The build command of example.c's comment, with warnings as errors and the
# compiler's list of the headers it read.
r = subprocess.run([*CC, "-shared", "-fPIC", "-o", so, EXAMPLE, *flags,
                    "-std=c11", "-Wall", "-Wextra", "-Werror", "-MD", "-MF", deps],
                   capture_output=True, text=True, timeout=120)
if not t.ok(r.returncode == 0, "the example compiles with -Wall -Wextra -Werror against the staged SDK",
            r.stdout + r.stderr):
    t.done()
with open(deps) as f:
    headers = f.read().replace("\\\n", " ").split()
sink_h = [os.path.realpath(h) for h in headers if h.endswith("sluice/sink.h")]
t.ok(len(sink_h) == 1 and sink_h[0].startswith(os.path.realpath(stage) + os.sep),
     "the compiler read the staged sluice/sink.h", sink_h)
src_root = os.path.realpath(SRCDIR) + os.sep
from_tree = [h for h in headers if os.path.realpath(h).startswith(src_root) and not h.endswith("example.c")]
t.eq(from_tree, [], "and no header of the source tree")

# ---- sluice plugins, sluice check ------------------------------------------------------------

broker = Broker()
broker._cmd("topic ev 1")
LINES = os.path.join(tmp, "rows.txt")
JSON = os.path.join(tmp, "rows.jsonl")
MAX_LINE = 200
CONFIG = f"""
plugin_dirs = ["{plugdir}"]
[http]
listen = "127.0.0.1:0"
[input.forward]
listen = "127.0.0.1:0"
[kafka]
brokers = "{broker.bootstrap}"

[[route]]
match = "ev"
topic = "ev"

[[job]]
name = "oot"
topics = ["ev"]
time = {{ field = "ts", format = "epoch_ms" }}
group_by = ["svc"]
window = {{ type = "tumbling", size = "10s" }}
aggregates = {{ n = "count()", s = "sum(lat)", a = "avg(lat)" }}
sinks = ["lines_out", "json_out"]
late_sink = "lines_out"
commit_interval = "200ms"

[[sink]]
name = "lines_out"
plugin = "lines"
path = "{LINES}"
max_line = {MAX_LINE}
on_failure = "drop"
flush_interval = "200ms"

[[sink]]
name = "json_out"
plugin = "file"
path = "{JSON}"
"""
conf = os.path.join(tmp, "sluice.toml")
with open(conf, "w") as f:
    f.write(CONFIG)

r = subprocess.run([SLUICE, "plugins", "-c", conf], capture_output=True, text=True, timeout=30)
t.eq(r.returncode, 0, "sluice plugins -c CONFIG exits 0")
m = re.search(r"^lines (\S+) \(ABI (\d+\.\d+)\) (\S+)\n  (.*)$", r.stdout, re.M)
t.ok(m and m.group(3) == so, "sluice plugins lists lines.so from plugin_dirs", r.stdout + r.stderr)
t.ok(m and m.group(1) == "1.0.0" and m.group(2) == "1.2" and "the SDK's example" in m.group(4),
     "with its version, ABI and description", m and m.group(0))
for opt, what in [("path", r"required\s+File the lines are appended to\."),
                  ("truncate", r"default\s+false\s+Empty the file"),
                  ("max_line", r'default\s+"64KiB"\s+Longest line written')]:
    t.ok(re.search(rf"^  {opt}\s+{what}", r.stdout, re.M), f"and its option {opt}", r.stdout)

r = subprocess.run([SLUICE, "check", "-c", conf], capture_output=True, text=True, timeout=30)
t.eq(r.returncode, 0, "sluice check accepts the plugin's options")
bad = os.path.join(tmp, "bad.toml")
with open(bad, "w") as f:
    f.write(CONFIG.replace(f"max_line = {MAX_LINE}", "max_lines = 10"))
r = subprocess.run([SLUICE, "check", "-c", bad], capture_output=True, text=True, timeout=30)
t.ok(r.returncode == 2 and re.search(r"max_lines.*did you mean .*max_line", r.stderr),
     "and points at a misspelt plugin option with a suggestion", r.stderr)

# ---- rows through the plugin ----------------------------------------------------------------

BASE = 1_700_000_000_000  # a multiple of the 10 s window


def rec(ms, svc, lat):
    r = {"ts": BASE + ms, "lat": lat}
    if svc is not None:
        r["svc"] = svc
    return r


LONG = "z" * 300  # its line is longer than max_line
records = [rec(0, "a", 10), rec(1000, "a", 20), rec(2000, "a", 25), rec(3000, "b c", 1.5),
           rec(4000, None, 7), rec(5000, LONG, 1),  # window [0 s, 10 s): rows a, "b c", null, LONG
           rec(12000, "a", 3),                      # window [10 s, 20 s): row a
           rec(60000, "a", 0)]                      # moves the watermark past both
s = Sluice(CONFIG)
t.ok(s.log.seen(r"sink:lines:lines_out.*appending to " + re.escape(LINES)),
     "the plugin's log line carries the agent's component sink:lines:<name>", s.log.text()[-1500:])
r = sluice_cat(s.port, "ev", records, ["--ack"])
t.ok(r.returncode == 0, "records sent with sluice cat", r.stderr)
s.wait_metric('sluice_job_rows_total{sluice_job="oot"}', lambda v: v == 5, 30)


def lines_of(path, n):
    wait_for(lambda: os.path.exists(path) and open(path).read().count("\n") >= n, 20, f"{n} lines in {path}")
    with open(path) as f:
        return f.read().splitlines()


rows = [json.loads(l) for l in lines_of(JSON, 5)]
s.wait_metric('sluice_sink_rows_dropped_total{sink="lines_out"}', lambda v: v == 1)
lines = lines_of(LINES, 4)
t.eq(len(lines), 4, "the plugin wrote a line for each row but the refused one")
t.eq(s.metric('sluice_sink_errors_total{sink="lines_out",kind="fatal"}'), 1,
     "the refused row counts as a fatal error of the sink")
t.eq(s.metric('sluice_sink_rows_total{sink="lines_out"}'), 4, "the host counts the 4 rows the plugin wrote")
t.ok(s.log.seen(r"sink:lines:lines_out.*dropped: its line is longer than max_line \(200 bytes\)"),
     "the host logs the drop with the plugin's row_done message", s.log.text()[-1500:])
t.ok(not any(LONG in l for l in lines), "the refused row is not in the file")


def iso(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_value(text):
    if text == "null":
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def typed(k, v):
    """(key, type, value): 7 and 7.0 are not the same value here."""
    return (k, type(v).__name__, v)


def parse_line(line):
    """(job, window, id, [(key, type, value), ...]) of one line; shlex
    undoes the quotes around values with spaces."""
    words = shlex.split(line)
    assert words[2].startswith("id="), line
    pairs = (w.split("=", 1) for w in words[3:])
    return words[0], words[1], words[2][3:], [typed(k, parse_value(v)) for k, v in pairs]


by_id = {}
for l in lines:
    job, window, rid, fields = parse_line(l)
    by_id[rid] = (job, window, fields)
want = {}
for row in rows:
    if row.get("svc") == LONG:
        continue
    items = list(row.items())
    t.eq([k for k, _ in items[:4]], ["id", "job", "window_start", "window_end"],
         f"row {row['id']}: id, job and the window come first")
    want[row["id"]] = (row["job"], row["window_start"], [typed(k, v) for k, v in items[4:]])
t.eq(sorted(by_id), sorted(want), "the plugin's rows have the ids of the file sink's (row_id_hex)")
t.eq(by_id, want, "and the same job, window start, group keys and aggregates, in order and of the same types "
     "(row_field, row_get)")
windows = sorted({w for _, w, _ in by_id.values()})
t.eq(windows, [iso(BASE), iso(BASE + 10000)], "window starts are the windows' RFC 3339 starts")

b_c = next(i for i, r in by_id.items() if ("svc", "str", "b c") in r[2])
t.ok(f'oot {iso(BASE)} id={b_c} svc="b c" n=1 s=1.5 a=1.5' in lines,
     "a line reads `job window_start id=... key=value`, a value with a space quoted", lines)
null_row = next(i for i, r in by_id.items() if ("svc", "NoneType", None) in r[2])
t.ok(f"oot {iso(BASE)} id={null_row} svc=null n=1 s=7 a=7.0" in lines,
     "a missing group key is null; a float reads as one (7.0), an integer as an integer (7)", lines)

s.wait_metric('sluice_sink_lines_written_total{sink="lines_out"}', lambda v: v == 4)
t.eq(s.metric('sluice_sink_lines_written_total{sink="lines_out"}'), 4,
     "the plugin's counter is on /metrics, labelled with the sink's name")
t.eq(s.metric('sluice_sink_lines_window_end_seconds{sink="lines_out"}'), (BASE + 20000) / 1000,
     "and its gauge: the end of the newest window written")

# A late record: its window was emitted before it was read.
r = sluice_cat(s.port, "ev", [rec(500, "a", 99)], ["--ack"])
s.wait_metric('sluice_job_records_late_total{sluice_job="oot"}', lambda v: v == 1)
lines = lines_of(LINES, 5)
late = [l for l in lines if l.startswith("oot late ")]
t.ok(len(late) == 1 and re.fullmatch(rf"oot late id=[0-9a-f]{{16}} ts={BASE + 500} lat=99 svc=a", late[0]),
     "a late record reaches the plugin as a late_sink: no window, the record's own fields", lines)
s.wait_metric('sluice_sink_lines_written_total{sink="lines_out"}', lambda v: v == 5)
# Every 200 ms a flush, each completed with write_done like the writes.
s.wait_metric('sluice_sink_write_seconds_count{sink="lines_out"}', lambda v: v >= 8)
t.ok(True, "flushes (flush_interval) and writes complete through write_done")
t.ok(not s.log.seen(r"flush failed", 0.5), "no flush failed")

t.eq(s.stop(), 0, "sluice stops cleanly: the plugin's destroy completes")
with open(LINES) as f:
    t.eq(len(f.read().splitlines()), 5, "the file keeps its 5 lines")
t.ok(not s.log.seen(r"(?i)leak|sanitizer|abort", 0.1), "no sanitizer report", s.log.text()[-1500:])
broker.stop()
t.done()
