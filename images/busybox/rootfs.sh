#!/usr/bin/env bash
# A busybox root filesystem tarball from Debian's busybox-static:
#   rootfs.sh OUTPUT.tar
# /bin/busybox plus a symlink per applet, /etc/passwd and /etc/group with root and
# nobody, empty /tmp /root /home /proc /sys /dev. Import it with
#   vmcontainer import OUTPUT.tar busybox
set -euo pipefail
out=$1
bb=/bin/busybox
[ -x "$bb" ] || { echo "rootfs.sh: $bb missing: apt-get install busybox-static" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,proc,sys,dev,var}
chmod 1777 "$stage/tmp"; chmod 700 "$stage/root"
cp "$bb" "$stage/bin/busybox"
for applet in $("$bb" --list-full); do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$stage/$(dirname "$applet")"
  ln -sf /bin/busybox "$stage/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > "$stage/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$stage/etc/group"
tar --numeric-owner --owner=0 --group=0 -C "$stage" -cf "$out.tmp" . && mv "$out.tmp" "$out"
