#!/usr/bin/env bash
# Build the vmcontainer initramfs: an uncompressed newc cpio (the guest kernel
# has no decompressors) holding the agent as /init and the empty directories it
# mounts on.
#   build.sh AGENT_BINARY OUTPUT_FILE
# Reproducible: fixed owner (root), mode and mtime, sorted entries. The output
# is written to a temporary name beside OUTPUT_FILE, then renamed.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 AGENT_BINARY OUTPUT_FILE" >&2
  exit 2
fi
agent=$1 out=$2
[ -f "$agent" ] || { echo "$0: agent binary $agent: no such file" >&2; exit 1; }
command -v cpio >/dev/null || { echo "$0: cpio not found (Debian package cpio)" >&2; exit 1; }

stage=$(mktemp -d)
tmp="$out.tmp.$$"
trap 'rm -rf "$stage"; rm -f "$tmp"' EXIT
mkdir -p "$stage"/{dev,proc,sys,newroot,config,run}
chmod 0755 "$stage"/{dev,newroot,config,run}
chmod 0555 "$stage"/{proc,sys}
cp "$agent" "$stage/init"
chmod 0755 "$stage/init"
find "$stage" -exec touch -h -d @0 {} +

mkdir -p "$(dirname "$out")"
(cd "$stage" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
  cpio --quiet -o -H newc -R 0:0 --reproducible) > "$tmp"
mv -f "$tmp" "$out"
