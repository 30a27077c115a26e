#!/usr/bin/env bash
# Builds the Debian packages sluice and sluice-dev from this checkout
# (the files git tracks, as they are in the working tree) with
# `dpkg-buildpackage -us -uc -b`, then checks them with lintian (any error
# fails).  The .deb files land in OUT (default build-deb/).  A minute or two
# on 2 cores: the whole tree is compiled and its unit tests run
# (DEB_BUILD_OPTIONS=nocheck skips them).
#   bash packaging/build-deb.sh [OUT]
#   apt-get install ./build-deb/sluice_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build-deb}")
for tool in dpkg-buildpackage dh lintian; do
  command -v "$tool" >/dev/null || { echo "build-deb: $tool is missing (apt-get install dpkg-dev debhelper lintian)" >&2; exit 1; }
done
version=$(sed -n "s/^  version: '\(.*\)',$/\1/p" meson.build)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src="$work/sluice-$version"
mkdir -p "$src"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$src"
cp -r packaging/debian "$src/debian"
(cd "$src" && dpkg-buildpackage -us -uc -b)
mkdir -p "$out"
rm -f "$out"/sluice*.deb "$out"/sluice*.changes "$out"/sluice*.buildinfo
mv "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out"/
echo "build-deb: lintian"
lintian --fail-on error --suppress-tags-from-file /dev/null "$out"/sluice_*.changes
ls -l "$out"/*.deb
