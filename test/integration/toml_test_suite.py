#!/usr/bin/env python3
"""Runs a TOML decoder against the toml-test corpus and prints TAP.

    toml_test_suite.py DECODER CASES_DIR

CASES_DIR holds files-toml-1.0.0 (the list of cases) and the valid/ and
invalid/ trees of https://github.com/toml-lang/toml-test.  Every listed
valid/*.toml must decode to JSON equal to the .json beside it (compared the
way toml-test compares: structure, type tags, and scalar values by value);
every listed invalid/*.toml must make the decoder exit non-zero.
Standard library only, so that it runs on any python3.
"""

import json
import math
import os
import re
import subprocess
import sys

TIMEOUT = 10  # seconds per case; a hang is a failure, not a stuck suite

DT_RE = re.compile(
    r"^(?:(\d{4})-(\d{2})-(\d{2}))?"  # date
    r"(?:[Tt ]?(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?)?"  # time
    r"(Z|z|[+-]\d{2}:\d{2})?$"  # offset
)


def norm_datetime(s):
    """A comparable tuple for any RFC 3339 spelling of a date/time: 'T', 't'
    or ' ' separators, 'Z'/'z'/'+00:00', and fractional seconds compared at
    nanosecond precision (what the decoders keep) with trailing zeros
    ignored."""
    m = DT_RE.match(s)
    if not m or (m.group(1) is None and m.group(4) is None):
        return ("unparsable", s)
    y, mo, d, h, mi, sec, frac, off = m.groups()
    frac = (frac or "")[:9].ljust(9, "0")
    if off is None:
        offset = None
    elif off in ("Z", "z"):
        offset = 0
    else:
        sign = -1 if off[0] == "-" else 1
        offset = sign * (int(off[1:3]) * 60 + int(off[4:6]))
    return (y, mo, d, h, mi, sec, frac, offset)


def is_tagged(v):
    return (
        isinstance(v, dict)
        and set(v.keys()) == {"type", "value"}
        and isinstance(v["type"], str)
        and isinstance(v["value"], str)
    )


def scalar_equal(typ, got, want):
    if typ == "integer":
        return int(got) == int(want)
    if typ == "float":
        g, w = float(got), float(want)
        if math.isnan(g) or math.isnan(w):
            return math.isnan(g) and math.isnan(w)
        return g == w
    if typ in ("datetime", "datetime-local", "date-local", "time-local"):
        return norm_datetime(got) == norm_datetime(want)
    if typ == "bool":
        return got == want and got in ("true", "false")
    return got == want


def compare(got, want, path="$"):
    """None when equal, else a description of the first difference."""
    if is_tagged(want):
        if not is_tagged(got):
            return "%s: want a %s, got %s" % (path, want["type"], json.dumps(got)[:80])
        if got["type"] != want["type"]:
            return "%s: want type %s, got %s" % (path, want["type"], got["type"])
        if not scalar_equal(want["type"], got["value"], want["value"]):
            return "%s: want %r, got %r" % (path, want["value"], got["value"])
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict) or is_tagged(got):
            return "%s: want a table, got %s" % (path, json.dumps(got)[:80])
        if set(got) != set(want):
            return "%s: keys differ: missing %s, unexpected %s" % (
                path, sorted(set(want) - set(got)), sorted(set(got) - set(want)))
        for k in want:
            r = compare(got[k], want[k], "%s.%s" % (path, k))
            if r:
                return r
        return None
    if isinstance(want, list):
        if not isinstance(got, list):
            return "%s: want an array, got %s" % (path, json.dumps(got)[:80])
        if len(got) != len(want):
            return "%s: want %d elements, got %d" % (path, len(want), len(got))
        for i, (g, w) in enumerate(zip(got, want)):
            r = compare(g, w, "%s[%d]" % (path, i))
            if r:
                return r
        return None
    return "%s: unexpected value in the expected JSON: %r" % (path, want)


def run(decoder, path):
    try:
        p = subprocess.run([decoder, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, b"", b"timed out after %d s" % TIMEOUT
    return p.returncode, p.stdout, p.stderr


def check_valid(decoder, toml_path):
    rc, out, err = run(decoder, toml_path)
    if rc != 0:
        return "decoder rejected it (exit %s): %s" % (rc, err.decode("utf-8", "replace").strip())
    try:
        got = json.loads(out.decode("utf-8"))
    except ValueError as e:
        return "decoder printed invalid JSON: %s" % e
    with open(toml_path[:-5] + ".json", encoding="utf-8") as f:
        want = json.load(f)
    return compare(got, want)


def check_invalid(decoder, toml_path):
    rc, out, err = run(decoder, toml_path)
    if rc is None:
        return "decoder timed out"
    if rc == 0:
        return "decoder accepted it: %s" % out.decode("utf-8", "replace").strip()[:200]
    if rc < 0:
        return "decoder crashed with signal %d" % -rc
    return None


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: toml_test_suite.py DECODER CASES_DIR\n")
        return 2
    decoder, cases = sys.argv[1], sys.argv[2]
    listing = os.path.join(cases, "files-toml-1.0.0")
    if not os.path.isfile(listing):
        print("1..0 # SKIP toml-test cases not found at %s" % cases)
        return 0
    with open(listing, encoding="utf-8") as f:
        names = [l.strip() for l in f if l.strip().endswith(".toml")]

    n = valid_ok = invalid_ok = failed = 0
    for name in names:
        path = os.path.join(cases, name)
        if name.startswith("valid/"):
            why = check_valid(decoder, path)
        elif name.startswith("invalid/"):
            why = check_invalid(decoder, path)
        else:
            continue
        n += 1
        if why is None:
            print("ok %d - %s" % (n, name))
            if name.startswith("valid/"):
                valid_ok += 1
            else:
                invalid_ok += 1
        else:
            failed += 1
            print("not ok %d - %s" % (n, name))
            for line in why.splitlines():
                print("#   %s" % line)
    print("1..%d" % n)
    print("# toml-test: %d valid passed, %d invalid rejected, %d failed" %
          (valid_ok, invalid_ok, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
