"""A real redis-server for tests: started on a free loopback port with no
persistence (`--save '' --appendonly no`, a temporary folder), read back
with redis-cli (`--json`: one reply a line), killed and restarted on the
same port.  Processes are cleaned up with the harness's."""
import json
import os
import shutil
import subprocess

import harness
from harness import LineReader, free_port, tempdir

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def available():
    return bool(REDIS_SERVER and REDIS_CLI)


class RedisServer:
    def __init__(self, password=None):
        self.dir = tempdir("sluice-redis-")
        self.password = password
        self.socket = os.path.join(self.dir, "redis.sock")  # it listens here too
        self.port = None
        self.p = None
        self.start()

    def start(self, tries=5):
        """Starts the server (on its old port after a kill): a port taken
        meanwhile by someone else is the only reason to pick another."""
        for _ in range(tries):
            port = self.port or free_port()
            args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--dir", self.dir, "--protected-mode", "no", "--loglevel", "notice",
                    "--unixsocket", self.socket, "--unixsocketperm", "700"]
            if self.password:
                args += ["--requirepass", self.password]
            self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            harness._procs.append(self.p)
            self.out = LineReader(self.p.stdout)
            try:
                self.out.wait(r"Ready to accept connections", 20)
                self.port = port
                return
            except EOFError:
                self.p.wait()
                if "Address already in use" not in self.out.text() or self.port:
                    raise RuntimeError("redis-server did not start:\n" + self.out.text())
        raise RuntimeError("redis-server: no free port")

    def kill(self):
        """SIGKILL: no goodbye to clients, and (no persistence) no data."""
        self.p.kill()
        self.p.wait()

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.terminate()
            self.p.wait(10)

    def cli(self, *commands, db=0):
        """Runs commands (each a list of arguments) in one redis-cli and
        returns their replies, decoded from --json."""
        def quote(a):
            return '"' + str(a).replace("\\", "\\\\").replace('"', '\\"') + '"'

        args = [REDIS_CLI, "-p", str(self.port), "-n", str(db), "--json"]
        if self.password:
            args += ["--no-auth-warning", "-a", self.password]
        stdin = "".join(" ".join(quote(a) for a in c) + "\n" for c in commands)
        r = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"redis-cli failed: {r.stderr}")
        lines = r.stdout.splitlines()
        if len(lines) != len(commands):
            raise RuntimeError(f"redis-cli: {len(commands)} commands, {len(lines)} replies:\n{r.stdout}")
        return [json.loads(l) for l in lines]

    def keys(self, pattern="*", db=0):
        return sorted(self.cli(["KEYS", pattern], db=db)[0])
