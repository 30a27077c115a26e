#!/bin/sh
# meson install step: puts the example config at SYSCONFDIR/sluice/sluice.toml
# unless a config is already there: an operator's edited file is never
# overwritten (the Debian package marks it a conffile instead).
# Usage: install-config.sh SOURCE SYSCONFDIR
set -eu
dest="${DESTDIR:-}$2/sluice/sluice.toml"
if [ -e "$dest" ]; then
  echo "install-config: keeping $dest"
else
  install -D -m 0644 "$1" "$dest"
  echo "install-config: installed $dest"
fi
