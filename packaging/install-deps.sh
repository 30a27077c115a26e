#!/usr/bin/env bash
# Installs every build and test dependency of sluice on Debian 12, as root
# (or through sudo).  Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

# libclang-rt-14-dev: clang's sanitizer and libFuzzer runtimes (test/fuzz),
# only recommended by clang.
build_pkgs=(meson ninja-build pkg-config gcc clang libclang-rt-14-dev
  librdkafka-dev libmsgpack-dev libuv1-dev libhiredis-dev libcurl4-openssl-dev
  libjansson-dev zlib1g-dev libssl-dev libpcre2-dev libxxhash-dev libhttp-parser-dev libsystemd-dev)
test_pkgs=(kafkacat curl python3 python3-msgpack python3-fluent-logger valgrind prometheus redis-server systemd
  debhelper lintian openssl)

missing=()
for p in "${build_pkgs[@]}" "${test_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js runs the npm fluent-logger client; keep one that is already there.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then missing+=(nodejs npm); fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The npm client the integration tests use (exact version in package.json).
if [ ! -d test/node/node_modules/fluent-logger ]; then
  echo "install-deps: installing npm fluent-logger"
  (cd test/node && npm install --no-audit --no-fund --no-package-lock --silent >/dev/null)
fi
echo "install-deps: done"
