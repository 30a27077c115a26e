"""Loading sink plugins as an operator meets it: `sluice check` and `sluice
run` name what is wrong with a [[sink]]'s plugin at file:line:col (not
found, with the folders searched; not a plugin; built for another ABI; a
file that calls itself by another name; the plugin's create failing;
unknown or mistyped plugin options), and `sluice plugins` lists what the
search path holds.  The plugins are test/plugins/flaky.c built three
ways: flaky.so, flaky_nosym.so (no descriptor symbol) and flaky_abi99.so
(built for ABI 99.0)."""
import os
import shutil
import subprocess

from harness import SLUICE, Broker, Sluice, Tap, tempdir

t = Tap()
tmp = tempdir("sluice-plugin-load-")
PLUGIN_DIR = os.environ.get("TEST_PLUGIN_DIR") or os.path.join(os.path.dirname(os.path.abspath(SLUICE)), "..",
                                                               "test", "plugins")
if not os.path.exists(os.path.join(PLUGIN_DIR, "flaky_abi99.so")):
    t.skip_all(f"no test plugins in {PLUGIN_DIR} (build the tests: ninja -C build)")
# The build tree's own plugins/ folder, searched last when the binary is the build tree's.
BUILD_PLUGINS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(SLUICE))), "plugins")
EXTRA = os.path.join(tmp, "extra")  # on SLUICE_PLUGIN_PATH, empty
os.mkdir(EXTRA)
ENV = dict(os.environ, SLUICE_PLUGIN_PATH=EXTRA)


def run(*args, env=ENV):
    return subprocess.run([SLUICE, *args], capture_output=True, text=True, timeout=30, env=env)


def write(name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def line_of(text, needle, nth=0):
    """1-based line number of the nth line starting with needle."""
    found = [i + 1 for i, l in enumerate(text.splitlines()) if l.startswith(needle)]
    return found[nth]


JOB = """
[[job]]
name = "j"
topics = ["t"]
window = { type = "tumbling", size = "1m" }
aggregates = { n = "count()" }
sinks = [%s]
"""

# ---- check: every load error at its [[sink]], all listed at once ------------------
text = f"""plugin_dirs = ["{PLUGIN_DIR}"]
[kafka]
brokers = ["127.0.0.1:9"]
[[sink]]
name = "a"
plugin = "nosuch"
[[sink]]
name = "b"
plugin = "flaky_nosym"
[[sink]]
name = "c"
plugin = "flaky_abi99"
[[sink]]
name = "d"
plugin = "flaky"
path = "{tmp}/d.jsonl"
fail_frist = 2
max_retrys = 3
hang = "yes"
""" + JOB % '"a", "b", "c", "d"'
bad = write("bad.toml", text)
plug = [line_of(text, 'plugin = "', i) for i in range(4)]
r = run("check", "-c", bad)
t.eq(r.returncode, 2, "check: a config with plugin errors exits 2")
want = {
    "plugin not found, with every folder searched in order (plugin_dirs, SLUICE_PLUGIN_PATH, the installed folder, "
    "the build tree's plugins/)":
    f'{bad}:{plug[0]}:10: sink[0].plugin: unknown sink plugin "nosuch": no nosuch.so in {PLUGIN_DIR}, {EXTRA}, ',
    "a shared object without the descriptor symbol is not a sluice plugin":
    f"{bad}:{plug[1]}:10: sink[1].plugin: {PLUGIN_DIR}/flaky_nosym.so is not a sluice sink plugin: it has no "
    "sluice_sink_plugin symbol",
    "an ABI mismatch names the plugin's ABI and the agent's":
    f"{bad}:{plug[2]}:10: sink[2].plugin: {PLUGIN_DIR}/flaky_abi99.so: built for sink plugin ABI 99.2, this "
    "sluice has 1.2",
    "an unknown plugin option, with did-you-mean from the plugin's own table":
    f'{bad}:{line_of(text, "fail_frist")}:1: sink[3]: unknown key "fail_frist" (did you mean "fail_first"?)',
    "an unknown host option of a plugin's sink, with did-you-mean":
    f'{bad}:{line_of(text, "max_retrys")}:1: sink[3]: unknown key "max_retrys" (did you mean "max_retries"?)',
    "a plugin option of the wrong type":
    f'{bad}:{line_of(text, "hang")}:8: sink[3].hang: expected a boolean',
}
for what, msg in want.items():
    t.ok(msg in r.stderr, f"check: {what}", f"want: {msg}\ngot:\n{r.stderr}")
nf = next((l for l in r.stderr.splitlines() if "nosuch.so in" in l), "")
t.ok(nf.endswith(f", {BUILD_PLUGINS}") and "sluice/plugins, " in nf,
     "the not-found message also lists the installed plugin folder and the build tree's", nf)
t.ok(f"{bad}: 6 errors" in r.stderr, "all six errors are listed in one run", r.stderr)

r = run("run", "-c", bad)
t.ok(r.returncode == 2 and all(msg in r.stderr for msg in want.values()),
     "run: the same errors, exit 2 before starting", r.stderr)

# A file that calls itself by another name.
other = os.path.join(tmp, "other")
os.mkdir(other)
shutil.copy(os.path.join(PLUGIN_DIR, "flaky.so"), os.path.join(other, "renamed.so"))
text = f"""plugin_dirs = ["{other}"]
[kafka]
brokers = ["127.0.0.1:9"]
[[sink]]
name = "x"
plugin = "renamed"
path = "{tmp}/x.jsonl"
""" + JOB % '"x"'
renamed = write("renamed.toml", text)
r = run("check", "-c", renamed)
t.ok(r.returncode == 2 and f'{renamed}:6:10: sink[0].plugin: {other}/renamed.so calls itself "flaky", not "renamed"'
     in r.stderr, "a plugin is found by its file name and must carry that name", r.stderr)

# SLUICE_PLUGIN_PATH alone finds a plugin.
text = f"""[kafka]
brokers = ["127.0.0.1:9"]
[[sink]]
name = "x"
plugin = "flaky"
path = "{tmp}/x.jsonl"
""" + JOB % '"x"'
by_env = write("by_env.toml", text)
r = run("check", "-c", by_env, env=dict(os.environ, SLUICE_PLUGIN_PATH=f"{EXTRA}:{PLUGIN_DIR}"))
t.ok(r.returncode == 0 and r.stdout.strip() == f"{by_env}: ok", "a plugin on SLUICE_PLUGIN_PATH is found",
     r.stdout + r.stderr)
r = run("check", "-c", by_env, env=dict(os.environ, SLUICE_PLUGIN_PATH=""))
t.ok(r.returncode == 2 and 'unknown sink plugin "flaky"' in r.stderr, "... and not without it", r.stderr)

# ---- the plugin's create fails: reported by run at the [[sink]] -------------------
broker = Broker()
text = f"""plugin_dirs = ["{PLUGIN_DIR}"]
[http]
listen = "127.0.0.1:0"
[input.forward]
listen = "127.0.0.1:0"
[kafka]
brokers = "{broker.bootstrap}"

[[sink]]
name = "e"
plugin = "flaky"
path = "/nonexistent/dir/e.jsonl"
""" + JOB % '"e"'
cant = write("cant.toml", text)
r = run("check", "-c", cant)
t.ok(r.returncode == 0, "check accepts a sink whose file cannot be opened (check makes no instance)", r.stderr)
s = Sluice(text, wait_ready=False, extra_env={"SLUICE_PLUGIN_PATH": ""})
code = s.p.wait(30)
t.eq(code, 1, "run: the plugin's create fails: exit 1")
sink_line = line_of(text, "[[sink]]")
t.ok(s.log.seen(rf"error jobs: {s.config}:{sink_line}:1: sink\[0\]: flaky: cannot open /nonexistent/dir/e\.jsonl "
                r"for writing: No such file or directory", 5),
     "the plugin's own message, at file:line:col of the [[sink]] table", s.log.text()[-1500:])
broker.stop()

# ---- sluice plugins ---------------------------------------------------------------------
text = f'plugin_dirs = ["{PLUGIN_DIR}"]\n[kafka]\nbrokers = ["127.0.0.1:9"]\n'
listing = write("listing.toml", text)
r = run("plugins", "-c", listing)
t.eq(r.returncode, 0, "sluice plugins -c: exit 0")
first = r.stdout.splitlines()[0] if r.stdout else ""
t.ok(first.startswith(f"search path: {PLUGIN_DIR} {EXTRA} ") and first.endswith(f" {BUILD_PLUGINS}"),
     "it prints the search path: plugin_dirs first, then SLUICE_PLUGIN_PATH, ..., the build tree's plugins/", first)
t.ok(f"\nflaky 0.3.1 (ABI 1.2) {PLUGIN_DIR}/flaky.so\n  Test sink that fails on command" in r.stdout,
     "flaky is listed with its version, ABI, file and description", r.stdout)
opts = {l.split()[0]: l for l in r.stdout.split("\nflaky ", 1)[-1].split("\n\n")[0].splitlines()[2:]}
t.ok(list(opts) == ["path", "fail_first", "fatal_match", "hang", "control", "stall", "block"]
     and "required" in opts["path"] and "default  0" in opts["fail_first"] and "default  false" in opts["hang"]
     and "unset" in opts["control"] and "every write fails" in opts["control"],
     "with each option: required or its default, and its help", r.stdout)
t.ok(f"\nfile 1.0.0 (ABI 1.2) {BUILD_PLUGINS}/file.so" in r.stdout, "the file plugin of the build tree is listed too",
     r.stdout)
t.ok(f"{PLUGIN_DIR}/flaky_nosym.so is not a sluice sink plugin: it has no sluice_sink_plugin symbol" in r.stderr
     and f"{PLUGIN_DIR}/flaky_abi99.so: built for sink plugin ABI 99.2, this sluice has 1.2" in r.stderr,
     "the broken files are reported with the reason", r.stderr)
t.ok("flaky_nosym" not in r.stdout and "flaky_abi99" not in r.stdout, "and are not listed as plugins", r.stdout)

r = run("reference", env=dict(os.environ, SLUICE_PLUGIN_PATH=""))
t.ok(r.returncode == 0 and "Sink plugin `file`" in r.stdout and "flaky" not in r.stdout,
     "sluice reference does not see the test plugins (they are not in build/plugins)", r.stderr)
t.done()
