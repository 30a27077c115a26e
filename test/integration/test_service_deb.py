"""The Debian packages, as an operator gets them: packaging/build-deb.sh
builds sluice and sluice-dev with dpkg-buildpackage and lintian finds no
error; the packages hold the daemon, its plugins, the unit, the config
(a conffile), the man pages and the SDK; unpacked into a scratch root,
`sluice version` runs and `sluice check` accepts the shipped config with
the shipped plugins; systemd accepts the shipped unit.  Slow (the whole
tree is compiled): suite `deb`, not run by default."""
import glob
import os
import re
import shutil
import subprocess

from harness import SRCDIR, Tap, tempdir

t = Tap()
for tool in ("dpkg-buildpackage", "dh", "lintian"):
    if not shutil.which(tool):
        t.skip_all(f"{tool} is not installed (packaging/install-deps.sh installs dpkg-dev, debhelper, lintian)")

out = tempdir("sluice-deb-")
r = subprocess.run(["bash", os.path.join(SRCDIR, "packaging", "build-deb.sh"), out], capture_output=True, text=True,
                   timeout=1500)
t.ok(r.returncode == 0, "build-deb.sh builds the packages and lintian reports no error", (r.stdout + r.stderr)[-3000:])
debs = {re.sub(r"_.*", "", os.path.basename(p)): p for p in glob.glob(os.path.join(out, "*.deb"))
        if "-dbgsym_" not in p}
t.eq(sorted(debs), ["sluice", "sluice-dev"], "two packages: sluice and sluice-dev (besides the debug symbols)")
if sorted(debs) != ["sluice", "sluice-dev"]:
    t.done()


def contents(deb):
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1].lstrip(".") for line in listing.splitlines() if not line.startswith("d")}


files = contents(debs["sluice"])
want = ["/usr/bin/sluice", "/etc/sluice/sluice.toml", "/lib/systemd/system/sluice.service",
        "/usr/share/man/man1/sluice.1.gz", "/usr/share/man/man5/sluice.toml.5.gz"]
t.eq([f for f in want if f not in files], [], "sluice holds the daemon, the config, the unit and both man pages")
plugins = sorted(os.path.basename(f) for f in files if re.match(r"/usr/lib/[^/]+/sluice/plugins/[^/]+\.so$", f))
t.eq(plugins, ["elasticsearch.so", "file.so", "kafka.so", "prometheus.so", "redis.so"], "and the five plugins in the plugin folder")
conffiles = subprocess.run(["dpkg-deb", "-I", debs["sluice"], "conffiles"], capture_output=True, text=True).stdout
t.eq(conffiles.split(), ["/etc/sluice/sluice.toml"], "the config is a conffile (an upgrade keeps the operator's edits)")
dev = contents(debs["sluice-dev"])
t.ok("/usr/include/sluice/sink.h" in dev and any(f.endswith("/pkgconfig/sluice-plugin.pc") for f in dev),
     "sluice-dev holds sluice/sink.h and sluice-plugin.pc", sorted(dev))

# ---- unpacked into a scratch root ----------------------------------------------
root = tempdir("sluice-root-")
for deb in debs.values():
    subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
sluice = os.path.join(root, "usr", "bin", "sluice")
v = subprocess.run([sluice, "version"], capture_output=True, text=True)
t.ok(v.returncode == 0 and re.match(r"sluice \d+\.\d+\.\d+$", v.stdout.strip()), "sluice version runs from it",
     v.stdout + v.stderr)
plugin_dir = glob.glob(os.path.join(root, "usr", "lib", "*", "sluice", "plugins"))[0]
conf = os.path.join(root, "etc", "sluice", "sluice.toml")
c = subprocess.run([sluice, "check", "-c", conf], capture_output=True, text=True,
                   env=dict(os.environ, SLUICE_PLUGIN_PATH=plugin_dir))
t.ok(c.returncode == 0, "sluice check accepts the shipped config with the shipped plugins", c.stdout + c.stderr)
pc = subprocess.run(["pkg-config", "--variable=plugindir", "sluice-plugin"], capture_output=True, text=True,
                    env=dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(glob.glob(
                        os.path.join(root, "usr", "lib", "*", "pkgconfig", "sluice-plugin.pc"))[0])))
t.eq(pc.stdout.strip(), plugin_dir[len(root):], "sluice-plugin.pc names the folder the plugins are in")
strings = open(sluice, "rb").read()
t.ok(plugin_dir[len(root):].encode() in strings, "the daemon searches that folder too (its compiled-in plugin folder)")

analyze = shutil.which("systemd-analyze")
if analyze:
    unit = open(os.path.join(root, "lib", "systemd", "system", "sluice.service")).read()
    path = os.path.join(tempdir(), "sluice.service")
    with open(path, "w") as f:
        f.write(unit.replace("/usr/bin/sluice", sluice))
    a = subprocess.run([analyze, "verify", "--man=no", path], capture_output=True, text=True)
    t.ok(a.returncode == 0 and not a.stderr.strip(), "systemd-analyze verify accepts the packaged unit", a.stderr)
t.done()
