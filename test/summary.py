#!/usr/bin/env python3
"""Sums the results of `meson test` runs from their testlog.json files.

Every test speaks TAP; each "ok"/"not ok" line counts as one check.  A test
program that failed without reporting a failing check (a crash, a timeout)
counts as one failure; a skipped program as one skip.  Prints one line per
failing program, then "N passed, N failed, N skipped"; exits 1 on any
failure or when nothing ran."""
import json
import re
import sys

logs = sys.argv[1:] or ["build/meson-logs/testlog.json"]
passed = failed = skipped = 0
bad = []
ran = 0
for line in (l for log in logs for l in open(log)):
    t = json.loads(line)
    ran += 1
    out = t.get("stdout") or ""
    ok = len(re.findall(r"^ok \d+", out, re.M))
    nok = len(re.findall(r"^not ok \d+", out, re.M))
    tap_skip = len(re.findall(r"^ok \d+.*# SKIP", out, re.M | re.I))
    result = t.get("result")
    if result == "SKIP":
        skipped += 1
        continue
    passed += ok - tap_skip
    skipped += tap_skip
    failed += nok
    if result not in ("OK", "EXPECTEDFAIL"):
        if nok == 0:
            failed += 1
        bad.append(f"{t['name']}: {result}")
for b in bad:
    print("FAILED", b)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or ran == 0 else 0)
