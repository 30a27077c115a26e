#!/usr/bin/env python3
"""sluice.toml(5) from `sluice reference`: the configuration reference the
binary prints (Markdown: one heading and one table per section) turned into
a man page, so that the page always lists the options of the build it
ships with.  Usage: reference_to_man.py SLUICE VERSION > sluice.toml.5"""
import re
import subprocess
import sys

HEAD = r""".TH SLUICE.TOML 5 "" "sluice {version}" "File Formats"
.SH NAME
sluice.toml \- configuration file of sluice(1)
.SH SYNOPSIS
.B /etc/sluice/sluice.toml
.SH DESCRIPTION
One TOML file configures the whole daemon: the forward input, Kafka, the
routes, the jobs and the sinks.
.B sluice check \-c FILE
validates it and lists every error as
.IR file:line:col ;
.B sluice check \-c FILE \-\-print
shows it with the defaults filled in.
On SIGHUP the daemon reads it again (see sluice(1)).
.PP
Durations are strings with a unit ("500ms", "10s", "5m", "1h30m"); sizes
are strings with a unit ("64KiB", "8MiB") or a number of bytes; addresses
are "host:port", "[v6addr]:port" or a unix socket path.  Unknown keys,
wrong types and out-of-range values are errors.  Secrets are never
printed.
"""

TAIL = r""".SH FILES
.TP
.I /etc/sluice/sluice.toml
the configuration read by the systemd unit; every key documented, with its default
.TP
.I /usr/share/doc/sluice/
the README, and the demo configuration
.SH SEE ALSO
.BR sluice (1)
"""


def inline(text):
    """Markdown inline code and emphasis to troff fonts; escapes."""
    text = text.replace("\\", "\\e")
    text = re.sub(r"`([^`]*)`", r"\\fB\1\\fR", text)
    text = re.sub(r"\*\*([^*]*)\*\*", r"\\fB\1\\fR", text)
    return text


def line(text):
    """A text line troff will not take for a request."""
    text = inline(text)
    return "\\&" + text if text.startswith((".", "'")) else text


def cells(row):
    return [c.strip() for c in row.strip().strip("|").split("|")]


def convert(markdown, version):
    out = [HEAD.format(version=version).rstrip("\n")]
    for raw in markdown.splitlines():
        if raw.startswith("#### "):
            out.append(".SH " + inline(raw[5:]).upper() if raw[5:] == "Top level" else ".SS " + inline(raw[5:]))
        elif raw.startswith("|"):
            c = cells(raw)
            if c[0] in ("key", "---") or set(raw) <= set("|-"):
                continue
            key, typ, default, desc = c[0], c[1], c[2], "|".join(c[3:])
            out += [".TP", line(f"{key} ({typ}, default {default})"), line(desc)]
        elif raw.strip():
            out += [".PP", line(raw.strip())]
    return "\n".join(out) + "\n" + TAIL


def main():
    sluice, version = sys.argv[1], sys.argv[2]
    ref = subprocess.run([sluice, "reference"], capture_output=True, text=True, check=True).stdout
    sys.stdout.write(convert(ref, version))


if __name__ == "__main__":
    main()
