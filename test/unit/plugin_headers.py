#!/usr/bin/env python3
"""Every in-tree plugin (plugins/<name>/, all but plugins/sdk and
plugins/common) sees only the SDK: its sources include <sluice/sink.h>,
system and library headers, and headers of their own folder or of
plugins/common (text helpers compiled into each plugin, held to the same
rule), never an agent header (nor the build's sl_build.h), and name nothing
of the agent (no sl_* / SL_* identifier).  The scan is only half the
proof: each plugin is then compiled and linked, with plugins/common's
sources, into a shared object with nothing but -I plugins/sdk,
-I plugins/common and libuv's cflags (no -D_GNU_SOURCE, no agent include
path), which fails on any agent header however it is spelled, and the
object may export only the descriptor.  The
shared modules meson built are checked for the same exports.  The checker
first proves on a bad plugin of its own that it can fail.

TAP output.  Usage:
  plugin_headers.py --srcdir ROOT --cc CC [--cc ARG ...] [--pkg-config PATH] [BUILT.so ...]
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile

SYMBOL = "sluice_sink_plugin"
INCLUDE = re.compile(r'^\s*#\s*include\s*(?:([<"])([^>"]*)[>"]|(.*))', re.M)
AGENT_NAME = re.compile(r"\b(?:sl|SL)_[A-Za-z0-9_]+")

n = 0


def ok(cond, desc, detail=""):
    global n
    n += 1
    print(f"{'ok' if cond else 'not ok'} {n} - {desc}")
    if not cond and detail:
        for line in str(detail).splitlines()[:40]:
            print(f"#   {line}")
    return cond


def strip_comments(text):
    """C source with comments and string literals blanked (an include
    inside a comment is not an include; a message is not an identifier)."""
    out = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    out = re.sub(r"//[^\n]*", "", out)
    return out


def strip_strings(text):
    return re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)


def plugin_dirs(plugins):
    return sorted(
        os.path.join(plugins, d)
        for d in os.listdir(plugins)
        if d not in ("sdk", "common") and os.path.isdir(os.path.join(plugins, d))
    )


def sources(folder):
    found = []
    for root, _, files in os.walk(folder):
        found += [os.path.join(root, f) for f in files if f.endswith((".c", ".h"))]
    return sorted(found)


def scan(srcdir, folder):
    """The reasons the plugin's sources break the rule; empty when clean."""
    bad = []
    for path in sources(folder):
        rel = os.path.relpath(path, srcdir)
        with open(path, encoding="utf-8") as f:
            code = strip_comments(f.read())
        for m in INCLUDE.finditer(code):
            kind, name, other = m.group(1), m.group(2), m.group(3)
            line = code.count("\n", 0, m.start()) + 1
            where = f"{rel}:{line}"
            if kind is None:
                bad.append(f"{where}: #include {other.strip()}: only <...> or \"...\" names can be checked")
            elif kind == '"':
                local = os.path.normpath(os.path.join(os.path.dirname(path), name))
                common = os.path.join(srcdir, "plugins", "common", name)
                if os.path.isabs(name) or ".." in name.split("/") or not (os.path.isfile(local) or os.path.isfile(common)):
                    bad.append(f'{where}: #include "{name}": a quoted include must be a header of the plugin\'s own '
                               'folder or of plugins/common')
            elif name.startswith("sluice/"):
                if name != "sluice/sink.h":
                    bad.append(f"{where}: #include <{name}>: the SDK is <sluice/sink.h> only")
            elif (
                os.path.exists(os.path.join(srcdir, "agent", name))
                or os.path.exists(os.path.join(srcdir, name))
                or os.path.basename(name).startswith("sl_")
            ):
                bad.append(f"{where}: #include <{name}>: an agent header")
        for m in AGENT_NAME.finditer(strip_strings(code)):
            line = code.count("\n", 0, m.start()) + 1
            bad.append(f"{rel}:{line}: {m.group(0)}: a name of the agent")
    return bad


def build(cc, uv_cflags, uv_libs, srcdir, folder, out):
    """Compiles and links the plugin's .c files with the SDK only; returns
    (ok, compiler output)."""
    cmd = (
        cc
        + ["-std=c11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-Werror=implicit-int"]
        + ["-fPIC", "-shared", "-fvisibility=hidden", "-o", out]
        + ["-I", os.path.join(srcdir, "plugins", "sdk"), "-I", os.path.join(srcdir, "plugins", "common")]
        + uv_cflags
        + [p for p in sources(folder) + sources(os.path.join(srcdir, "plugins", "common")) if p.endswith(".c")]
        + uv_libs
    )
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode == 0, " ".join(shlex.quote(c) for c in cmd) + "\n" + r.stdout + r.stderr


# What a sanitizer build adds beside the plugin's own symbols.
SANITIZER_PREFIXES = ("__odr_asan", "__asan", "__ubsan", "__sancov")


def exports(so):
    r = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True, text=True)
    if r.returncode:
        return None, r.stderr
    names = (line.split()[-1] for line in r.stdout.splitlines() if line.strip())
    return sorted(n for n in names if not n.startswith(SANITIZER_PREFIXES)), ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--srcdir", required=True)
    ap.add_argument("--cc", action="append", required=True)
    ap.add_argument("--pkg-config", default="pkg-config")
    ap.add_argument("built", nargs="*")
    args = ap.parse_args()
    srcdir = os.path.abspath(args.srcdir)
    plugins = os.path.join(srcdir, "plugins")

    cf = subprocess.run([args.pkg_config, "--cflags", "libuv"], capture_output=True, text=True)
    lf = subprocess.run([args.pkg_config, "--libs", "libuv"], capture_output=True, text=True)
    if not ok(cf.returncode == 0 and lf.returncode == 0, "pkg-config knows libuv", cf.stderr + lf.stderr):
        print(f"1..{n}")
        return 1
    uv_cflags, uv_libs = shlex.split(cf.stdout), shlex.split(lf.stdout)

    with tempfile.TemporaryDirectory(prefix="sluice-plugin-headers-") as tmp:
        # The checker itself: a plugin that includes agent headers is caught
        # by the scan and by the compile.
        canary = os.path.join(tmp, "plugins", "canary")
        os.makedirs(canary)
        os.makedirs(os.path.join(tmp, "agent", "core"))
        open(os.path.join(tmp, "agent", "core", "buf.h"), "w").close()
        with open(os.path.join(canary, "canary.c"), "w") as f:
            f.write(
                "/* #include <core/fake.h> in a comment is no include */\n"
                "#include <sluice/sink.h>\n#include <stdio.h>\n#include <core/buf.h>\n"
                '#include "../../agent/core/buf.h"\n#include <sluice/other.h>\n'
                "int canary_f(void) { return SL_ENOMEM; }\n"
            )
        bad = scan(tmp, canary)
        ok(
            len(bad) == 4
            and "<core/buf.h>: an agent header" in bad[0]
            and "a quoted include" in bad[1]
            and "<sluice/other.h>" in bad[2]
            and "SL_ENOMEM" in bad[3],
            "the scan catches an agent header, a path into the agent, another SDK name and an agent name",
            "\n".join(bad),
        )
        with open(os.path.join(canary, "canary.c"), "w") as f:
            f.write("#include <sluice/sink.h>\n#include <core/buf.h>\nint canary_f(void) { return 0; }\n")
        built, _ = build(args.cc, uv_cflags, uv_libs, srcdir, canary, os.path.join(tmp, "canary.so"))
        ok(not built, "the SDK-only compile fails on an agent header")

        bad = scan(srcdir, os.path.join(plugins, "common"))
        ok(not bad, "common: includes only <sluice/sink.h>, system and library headers", "\n".join(bad))
        folders = plugin_dirs(plugins)
        ok(folders, f"in-tree plugins: {', '.join(os.path.basename(f) for f in folders)}")
        for folder in folders:
            name = os.path.basename(folder)
            bad = scan(srcdir, folder)
            ok(not bad, f"{name}: includes only <sluice/sink.h>, system and library headers", "\n".join(bad))
            so = os.path.join(tmp, name + ".so")
            built, out = build(args.cc, uv_cflags, uv_libs, srcdir, folder, so)
            ok(built, f"{name}: compiles and links with only -I plugins/sdk and libuv's flags", out)
            if built and "warning" in out:
                for line in out.splitlines():
                    print(f"# {line}")
            syms, err = exports(so) if built else (None, "not built")
            ok(syms == [SYMBOL], f"{name}: exports only {SYMBOL}", err or f"exports: {syms}")

    for so in args.built:
        syms, err = exports(so)
        ok(syms == [SYMBOL], f"built {os.path.basename(so)} exports only {SYMBOL}", err or f"exports: {syms}")
    print(f"1..{n}")
    return 0


sys.exit(main())
