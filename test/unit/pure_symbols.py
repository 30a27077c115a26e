#!/usr/bin/env python3
"""The pure library (libsluice_pure.a) must not reference libuv or
librdkafka, and inside the daemon's libraries only the logging module writes
to stderr: every undefined symbol of every object is checked with nm.  TAP
output; arguments: the pure archive, then the I/O archive."""
import os
import subprocess
import sys

FORBIDDEN = ("uv_", "rd_kafka_")


def main():
    archive = sys.argv[1]
    out = subprocess.run(["nm", "-A", "-u", archive], capture_output=True, text=True)
    n = 0

    def ok(cond, desc, detail=""):
        nonlocal n
        n += 1
        print(f"{'ok' if cond else 'not ok'} {n} - {desc}")
        if not cond and detail:
            for line in detail.splitlines()[:40]:
                print(f"#   {line}")
        return cond

    ok(out.returncode == 0, "nm reads the pure library", out.stderr)
    undefined = [line.split()[-1] for line in out.stdout.splitlines() if line.strip()]
    objects = {line.split(":")[1] for line in out.stdout.splitlines() if line.count(":") >= 2}
    ok(len(objects) >= 10, f"the archive holds the pure modules ({len(objects)} objects with references)")
    ok("inflate" in undefined, "nm sees the library's real references (zlib's inflate, from the decoder)")
    bad = sorted({line for line in out.stdout.splitlines() if line.split()[-1].startswith(FORBIDDEN)})
    ok(not bad, "no object of the pure library references uv_* or rd_kafka_*", "\n".join(bad))

    writers = []
    for archive in sys.argv[1:]:
        out = subprocess.run(["nm", "-A", "-u", archive], capture_output=True, text=True)
        ok(out.returncode == 0, f"nm reads {os.path.basename(archive)}", out.stderr)
        for line in out.stdout.splitlines():
            parts = line.split()
            if parts and parts[-1] in ("stderr", "perror", "psignal") and "core_log.c.o" not in line:
                writers.append(line)
    ok(not writers, "only the logging module writes to stderr in the daemon's libraries", "\n".join(writers))
    print(f"1..{n}")
    return 0


sys.exit(main())
