#!/usr/bin/env bash
# Build the vmcontainer guest kernel: an uncompressed vmlinux (PVH entry) from
# Debian's linux-source-6.1 plus guest.config, no modules.
#   build.sh SOURCE_TARBALL OUTPUT_DIR [WORK_DIR]
# Writes OUTPUT_DIR/vmlinux and OUTPUT_DIR/config. Prints make's progress lines
# ("  CC      kernel/fork.o") on stdout; the caller turns them into a progress bar.
# Exit status non-zero on any failure, including a fragment option that
# olddefconfig dropped (a dependency missing from the fragment).
set -euo pipefail
src_tar=$1 out=$2 work=${3:-$(mktemp -d)}
here=$(cd "$(dirname "$0")" && pwd)
fragment=$here/guest.config
mkdir -p "$work" "$out"
if [ ! -f "$work/linux/Makefile" ]; then
  echo "  EXTRACT $src_tar"
  mkdir -p "$work/linux"
  tar -xf "$src_tar" -C "$work/linux" --strip-components=1
fi
cd "$work/linux"
for p in "$here"/patches/*.patch; do
  [ -e "$p" ] || continue
  stamp=".applied-$(basename "$p")"
  [ -e "$stamp" ] || { echo "  PATCH   $(basename "$p")"; patch -p1 -s < "$p"; touch "$stamp"; }
done
make -s ARCH=x86_64 KCONFIG_ALLCONFIG="$fragment" allnoconfig
# Every option the fragment asks for must have survived.
missing=0
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*) grep -qxF "$line" .config || { echo "config: wanted $line, got: $(grep -E "^(# )?${line%%=*}[= ]" .config || echo unset)" >&2; missing=1; } ;;
    "# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}; grep -qE "^$opt=" .config && { echo "config: wanted $opt off" >&2; missing=1; } ;;
  esac
done < "$fragment"
[ "$missing" = 0 ] || exit 3
make ARCH=x86_64 -j"$(nproc)" vmlinux
cp vmlinux "$out/vmlinux.tmp" && mv "$out/vmlinux.tmp" "$out/vmlinux"
cp .config "$out/config"
