#!/bin/sh
# Smaller image: no package lists, docs, man pages or locales; kernel modules pruned to what
# the VM loads, with their dependencies (modprobe -D resolves them).
set -eu
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/info/* /var/cache/debconf/*-old
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'C*' -exec rm -rf {} + 2>/dev/null || true
KEEP_MODULES="zram lz4 lz4_compress evdev button vsock_loopback vmw_vsock_virtio_transport"
for k in /usr/lib/modules/*; do
  [ -d "$k/kernel" ] || continue
  kver=$(basename "$k")
  files=$(for m in $KEEP_MODULES; do modprobe -S "$kver" -D "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}'; done | sort -u)
  keep=$(mktemp -d)
  for f in $files; do
    rel=${f#*/"$kver"/}
    mkdir -p "$keep/$(dirname "$rel")"
    cp -a "$f" "$keep/$rel"
  done
  rm -rf "$k/kernel"
  if [ -d "$keep/kernel" ]; then mv "$keep/kernel" "$k/kernel"; fi
  rm -rf "$keep"
  depmod "$kver"
done
