"""The `sluice` command line as an operator meets it: exit codes, help,
`check` errors with file:line:col, `--print` redaction, the example configs,
the README's generated reference, and `run` starting and stopping."""
import os
import signal
import subprocess
import sys

from harness import SLUICE, SRCDIR, Sluice, Tap, tempdir

t = Tap()
tmp = tempdir("sluice-cli-")


def run(*args, stdin=None):
    return subprocess.run([SLUICE, *args], capture_output=True, text=True, input=stdin, timeout=30)


def write(name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


r = run("version")
t.ok(r.returncode == 0 and r.stdout.startswith("sluice "), "version prints the version, exit 0", r)
for cmd in (["--help"], ["run", "--help"], ["check", "--help"], ["cat", "--help"]):
    r = run(*cmd)
    t.ok(r.returncode == 0 and "usage: sluice" in r.stdout, f"`sluice {' '.join(cmd)}` prints usage, exit 0", r)
for cmd, why in (([], "no command"), (["frobnicate"], "unknown command"), (["check"], "check without -c"),
                 (["run", "-c"], "run with -c missing its argument"), (["cat"], "cat without a tag"),
                 (["check", "-c", "x", "extra"], "stray argument")):
    r = run(*cmd)
    t.ok(r.returncode == 64 and "usage:" in r.stderr, f"{why}: usage on stderr, exit 64", r)

for name in ("sluice.toml", "demo.toml"):
    path = os.path.join(SRCDIR, "config", name)
    r = run("check", "-c", path)
    t.ok(r.returncode == 0 and r.stdout.strip() == f"{path}: ok", f"config/{name} passes check", r.stderr)

bad = write("bad.toml", '[log]\nlevel = "info"\n\n[input.forward]\nlistn = "0.0.0.0:1"\n')
r = run("check", "-c", bad)
t.eq(r.returncode, 2, "unknown key: exit 2")
t.eq(r.stderr.splitlines()[0] if r.stderr else "",
     f'{bad}:5:1: input.forward: unknown key "listn" (did you mean "listen"?)',
     "unknown key named with file, line, column and the suggestion")

many = write("many.toml", '[input.forward]\nmax_connections = 0\nidle_timeout = "10"\n'
             '[kafka]\nclient_id = "x"\n[[route]]\nmatch = "**"\ntopic = "logs.${nope}"\n')
r = run("check", "-c", many)
lines = r.stderr.splitlines()
t.eq(r.returncode, 2, "several errors: exit 2")
t.ok(any(l.startswith(f"{many}:2:19: input.forward.max_connections: 0 is out of range") for l in lines)
     and any(l.startswith(f"{many}:3:16: input.forward.idle_timeout: duration \"10\" has no unit") for l in lines)
     and any(l.startswith(f"{many}:4:1: kafka: missing required key \"brokers\"") for l in lines)
     and lines[-1] == f"{many}: 3 errors", "every schema error listed, with a count", r.stderr)

tmpl = write("tmpl.toml", '[kafka]\nbrokers = "embedded"\n[[route]]\nmatch = "**"\ntopic = "logs.${nope}"\n')
r = run("check", "-c", tmpl)
t.ok(r.returncode == 2 and f"{tmpl}:5:9: route[0].topic: topic template" in r.stderr,
     "bad topic template: exit 2 at its position", r.stderr)

deft = write("deft.toml", '[kafka]\nbrokers = "embedded"\ndefault_topic = "logs.${tag}"\n')
r = run("check", "-c", deft)
t.ok(r.returncode == 2 and f"{deft}:3:17: kafka.default_topic: must be a fixed topic name, not a template"
     in r.stderr, "a templated default_topic is refused at its position", r.stderr)
deft = write("deft2.toml", '[kafka]\nbrokers = "embedded"\ndefault_topic = "logs/all"\n')
r = run("check", "-c", deft)
t.ok(r.returncode == 2 and f"{deft}:3:17: kafka.default_topic: topic names use only letters" in r.stderr,
     "a default_topic Kafka cannot hold is refused", r.stderr)
users = write("users.toml", '[input.forward.security]\nuser_auth = true\n')
r = run("check", "-c", users)
t.ok(r.returncode == 2 and f"{users}:1:1: input.forward.security: user_auth = true needs at least one" in r.stderr
     and "user authentication needs shared_key" in r.stderr, "user_auth without users or key: both errors, at the section",
     r.stderr)

syntax = write("syntax.toml", '[log]\nlevel = "info\n')
r = run("check", "-c", syntax)
t.ok(r.returncode == 2 and r.stderr.startswith(f"{syntax}:2:9: unterminated string"),
     "TOML syntax error with file:line:col", r.stderr)
r = run("check", "-c", os.path.join(tmp, "missing.toml"))
t.ok(r.returncode == 2 and "No such file or directory" in r.stderr, "missing file: exit 2 with the reason", r.stderr)

tls = write("tls.toml", '[input.forward.tls]\ncert_file = "/x.crt"\n')
r = run("check", "-c", tls)
t.ok(r.returncode == 2 and "input.forward.tls: key_file is required with TLS" in r.stderr,
     "TLS without key_file refused clearly", r.stderr)

secret = write("secret.toml", '[input.forward.security]\nshared_key = "tops3cret"\n'
               '[kafka]\nbrokers = ["127.0.0.1:9"]\n[kafka.properties]\n"sasl.password" = "hunter2"\n')
r = run("check", "-c", secret, "--print")
t.ok(r.returncode == 0 and 'shared_key = "<redacted>"' in r.stdout and "tops3cret" not in r.stdout
     and "hunter2" not in r.stdout, "--print redacts secrets", r.stdout)
t.ok('chunk_size_limit = "8MiB"' in r.stdout and 'acks' not in r.stdout.split("[kafka.properties]")[0],
     "--print shows defaults", r.stdout)
printed = write("printed.toml", r.stdout)
r2 = run("check", "-c", printed)
t.eq(r2.returncode, 0, "the printed config is itself valid")

badprop = write("badprop.toml", '[kafka]\nbrokers = ["127.0.0.1:9"]\n[kafka.properties]\n"linger.ms" = 5\n'
                '"no.such.property" = "x"\n')
r = run("check", "-c", badprop)
t.ok(r.returncode == 2 and f'{badprop}:5:1: kafka.properties."no.such.property": No such configuration property'
     in r.stderr, "librdkafka's error for a bad property, with the config line", r.stderr)

both = write("both.toml", '[kafka]\nbrokers = ["127.0.0.1:9"]\n[kafka.properties]\n"acks" = "sometimes"\n'
             '[[route]]\nmatch = "**"\ntopic = "t"\nformat = "xml"\n')
r = run("check", "-c", both)
t.ok(r.returncode == 2 and f'{both}:4:1: kafka.properties."acks": ' in r.stderr and f"{both}:8:10: route[0].format"
     in r.stderr, "a bad librdkafka property is listed beside the other errors", r.stderr)

unsafe = write("unsafe.toml", '[kafka]\nbrokers = ["127.0.0.1:9"]\n[kafka.properties]\n"acks" = 1\n'
               '"delivery.report.only.error" = true\n')
r = run("check", "-c", unsafe)
t.ok(r.returncode == 2 and f'{unsafe}:4:1: kafka.properties."acks": must be "all"' in r.stderr
     and f'{unsafe}:5:1: kafka.properties."delivery.report.only.error": sluice acks a chunk only' in r.stderr,
     "properties that would break ack-after-Kafka are refused", r.stderr)

sinks = write("sinks.toml", '[kafka]\nbrokers = ["127.0.0.1:9"]\n'
              '[[sink]]\nname = "out"\nplugin = "file"\npth = "/tmp/x"\n'
              '[[sink]]\nname = "r"\nplugin = "nosuch"\n'
              '[[job]]\nname = "j"\ntopics = ["t"]\nwindow = { type = "tumbling", size = "1m" }\n'
              'aggregates = { n = "count()" }\nsinks = ["out", "gone"]\n')
r = run("check", "-c", sinks)
t.ok(r.returncode == 2 and f'{sinks}:6:1: sink[0]: unknown key "pth" (did you mean "path"?)' in r.stderr
     and f'{sinks}:9:10: sink[1].plugin: unknown sink plugin "nosuch"' in r.stderr,
     "check validates each sink's own options and plugin name", r.stderr)
ok_sinks = write("sinks_ok.toml", '[kafka]\nbrokers = ["127.0.0.1:9"]\n[[sink]]\nname = "out"\nplugin = "file"\n'
                 'path = "/tmp/x"\n[[job]]\nname = "j"\ntopics = ["t"]\n'
                 'window = { type = "tumbling", size = "1m" }\naggregates = { n = "count()" }\n'
                 'sinks = ["out", "gone"]\nlate_sink = "nope"\n')
r = run("check", "-c", ok_sinks)
t.ok(r.returncode == 2 and f'{ok_sinks}:12:9: job[0].sinks: no [[sink]] is named "gone"' in r.stderr
     and f'{ok_sinks}:13:13: job[0].late_sink: no [[sink]] is named "nope"' in r.stderr,
     "a job naming a sink that does not exist is an error at the job's option", r.stderr)

tkey = write("tkey.toml", '[kafka]\nbrokers = ["127.0.0.1:9"]\n[[route]]\nmatch = "**"\ntopic = "t"\n'
             'key = "${svc}"\n')
r = run("check", "-c", tkey)
t.ok(r.returncode == 2 and f'{tkey}:6:7: route[0].key: "${{svc}}": the key is a record field path like "user.id", '
     'not a template' in r.stderr, "a route key written as a template is refused (it is a field path)", r.stderr)

r = subprocess.run([sys.executable, os.path.join(SRCDIR, "test", "readme_reference.py"), SLUICE],
                   capture_output=True, text=True)
t.eq(r.returncode, 0, "README's configuration reference matches `sluice reference` (regenerate with --write)")

# run: invalid config exits 2 before starting; a clean SIGTERM/SIGINT exits 0.
r = run("run", "-c", bad)
t.ok(r.returncode == 2 and "unknown key" in r.stderr, "run with an invalid config: exit 2", r.stderr)
for sig in (signal.SIGTERM, signal.SIGINT):
    s = Sluice('[http]\nlisten = "127.0.0.1:0"\n[input.forward]\nlisten = ["127.0.0.1:0"]\n')
    status, body = s.http("/readyz")
    t.ok(status == 200, "readyz answers 200 once started")
    t.eq(s.stop(sig), 0, f"{signal.Signals(sig).name} stops run with exit 0")
    t.ok(s.log.wait(r"agent: stopped$", 10) is not None, "the last log line says stopped")

# sluice cat: handshake, acks, modes; print mode shows what arrived.
s = Sluice('[http]\nlisten = "127.0.0.1:0"\n[input.forward]\nlisten = ["127.0.0.1:0"]\n'
           '[input.forward.security]\nshared_key = "k3y"\nself_hostname = "srv"\n')
recs = [{"n": i, "msg": f"m{i}"} for i in range(5)]
stdin = "".join(__import__("json").dumps(x) + "\n" for x in recs) + "not json\n"
for mode, extra in (("message", []), ("forward", []), ("packed", []), ("packed", ["--gzip"])):
    r = run("cat", "-p", str(s.port), "--shared-key", "k3y", "--ack", "--mode", mode, *extra, "cli.cat", stdin=stdin)
    t.ok(r.returncode == 0 and "sent 5 records, all acked" in r.stderr and "stdin line 6: not a JSON object" in r.stderr,
         f"cat --mode {mode} {' '.join(extra)}: handshake, 5 records acked, bad line reported", r.stderr)
got = []
for _ in range(20):
    line = s.out.wait(r"^\{", 10, start=len(got))
    got.append(__import__("json").loads(line.string))
t.eq([g["record"] for g in got], recs * 4, "every record arrived once per mode, in order")
t.ok(all(g["tag"] == "cli.cat" for g in got), "tag kept")
r = run("cat", "-p", str(s.port), "--shared-key", "wrong", "--ack", "cli.cat", stdin=stdin)
t.ok(r.returncode == 1 and "handshake failed: authentication failed: shared_key mismatch" in r.stderr,
     "cat with a wrong key: exit 1 with the server's reason", r.stderr)
s.stop()

# An HTTP client that connects and says nothing neither blocks shutdown
# nor lives past the request timeout.
import socket
s = Sluice('[http]\nlisten = "127.0.0.1:0"\n[input.forward]\nlisten = ["127.0.0.1:0"]\n')
idle = socket.create_connection(("127.0.0.1", s.http_port), 5)
status, _ = s.http("/healthz")
t.eq(status, 200, "healthz answers beside an idle HTTP connection")
t.eq(s.stop(timeout=15), 0, "SIGTERM with an idle HTTP connection open: exit 0")
idle.close()

# A unix socket another instance listens on is not taken over.
sock = os.path.join(tmp, "fwd.sock")
s1 = Sluice(f'[http]\nlisten = "127.0.0.1:0"\n[input.forward]\nlisten = ["{sock}"]\n')
s2 = Sluice(f'[http]\nlisten = "127.0.0.1:0"\n[input.forward]\nlisten = ["{sock}"]\n', wait_ready=False)
t.eq(s2.p.wait(20), 1, "second instance on a live unix socket: exit 1")
t.ok(s2.log.seen(r"cannot listen on unix:.*fwd\.sock: another process is listening there"),
     "it says another process listens there", s2.log.text())
r = run("cat", "-u", sock, "cli.unix", stdin='{"a":1}\n')
t.ok(r.returncode == 0, "the first instance still answers on its socket", r.stderr)
s1.stop()

# A port already in use: exit 1 and a line naming the address.
s1 = Sluice('[http]\nlisten = "127.0.0.1:0"\n[input.forward]\nlisten = ["127.0.0.1:0"]\n')
s2 = Sluice(f'[http]\nlisten = "127.0.0.1:0"\n[input.forward]\nlisten = ["127.0.0.1:{s1.port}"]\n', wait_ready=False)
code = s2.p.wait(20)
t.eq(code, 1, "listen address in use: exit 1")
t.ok(s2.log.seen(rf"cannot listen on 127\.0\.0\.1:{s1.port}: address already in use"),
     "the error names the address", s2.log.text())
s1.stop()
t.done()
