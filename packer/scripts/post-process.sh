#!/bin/sh
# Exported container filesystem (tar) → ext4 rootfs image sized to its content. Tiering and
# `bless --hot-set` are GlideFS steps run by the platform's pipeline on this file.
#   post-process.sh IN.tar OUT.ext4
set -eu
in=$1; out=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xf "$in" -C "$work"
size=$(du -sm "$work" | cut -f1)
rm -f "$out"
truncate -s "$(( size * 13 / 10 + 256 ))M" "$out"
mkfs.ext4 -q -F -L beyond-root -d "$work" "$out"
echo "post-process: $out (${size}M of files)"
