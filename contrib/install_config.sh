#!/bin/sh
# meson install script: the example configuration into the configuration folder, never
# over a file an administrator already has there.
set -eu
dir="${DESTDIR:-}$1"
mkdir -p "$dir"
if [ ! -e "$dir/dbtap.example.json" ]; then
	cp "$MESON_SOURCE_ROOT/contrib/dbtap.example.json" "$dir/dbtap.example.json"
	chmod 0644 "$dir/dbtap.example.json"
else
	echo "dbtap: $dir/dbtap.example.json exists: left as it is"
fi
