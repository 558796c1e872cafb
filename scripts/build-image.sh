#!/bin/sh
# Build a bootable image locally: a Debian rootfs made by debootstrap and provisioned
# by the same packer/scripts the production Packer template runs, with our build as
# /sbin/init, as an ext4 file; plus the Debian kernel and a small initramfs for QEMU.
#
#   scripts/build-image.sh [OUT]        (default .cache/image; needs root)
#
# Env: SUITE (testing: PostgreSQL 18, PgBouncer 1.26, pgvector — the default; trixie: PG 17;
# bookworm: PG 15), PG_MAJOR (default: the suite's), MIRROR (this machine's Debian mirror),
# DIST (a built dist/ to install; default: build one),
# TEST_HOOKS (a directory copied to /etc/beyond-pg-test/hooks, for the e2e tests).
# The provisioned base (everything but our build and the seed) is cached in OUT/base.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(realpath -m "${1:-$here/.cache/image}")
SUITE=${SUITE:-testing}
case "$SUITE" in
  testing) default_major=18 ;;
  trixie) default_major=17 ;;
  bookworm) default_major=15 ;;
  *) echo "build-image: SUITE=$SUITE is not one of testing, trixie, bookworm" >&2; exit 2 ;;
esac
PG_MAJOR=${PG_MAJOR:-$default_major}
PG_SOURCE=debian
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
DENO="$here/.tools/node_modules/.bin/deno"
t0=$(date +%s)
say() { echo "build-image: [$(( $(date +%s) - t0 ))s] $*" >&2; }
[ "$(id -u)" = 0 ] || { echo "build-image: needs root (debootstrap, chroot, mkfs)" >&2; exit 1; }
mkdir -p "$OUT"

chroot_mounts() { # $1 = rootfs; mount what provisioning needs (postgres runs for the seed)
  mount -t proc proc "$1/proc"; mount -t sysfs sysfs "$1/sys"
  mount --bind /dev "$1/dev"; mount -t tmpfs tmpfs "$1/dev/shm"; mount -t tmpfs tmpfs "$1/tmp"
}
chroot_umounts() {
  for m in tmp dev/shm dev sys proc; do umount "$1/$m" 2>/dev/null || umount -l "$1/$m" 2>/dev/null || true; done
}

run_script() { # $1 = rootfs, $2 = script name; env passed explicitly
  say "running $2"
  chroot "$1" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    PG_MAJOR="$PG_MAJOR" PG_SOURCE="$PG_SOURCE" WITH_KERNEL=1 \
    PACKAGES_FILE=/tmp/build/packages.txt GITHUB_FILE=/tmp/build/github.txt \
    BEYOND_PG_DIST=/tmp/build/dist BEYOND_PG_CONF=/tmp/build/conf \
    sh "/tmp/build/scripts/$2"
}

stage() { # copy build inputs into the chroot's /tmp/build (a tmpfs while mounted)
  mkdir -p "$1/tmp/build"
  cp -a "$here/packer/scripts" "$1/tmp/build/scripts"
  cp -a "$here/conf" "$1/tmp/build/conf"
  cp "$OUT/packages.txt" "$OUT/github.txt" "$1/tmp/build/"
}

"$DENO" run -A --quiet "$here/scripts/manifest-packages.ts" "$SUITE" "$PG_MAJOR" "$OUT/packages.txt" "$OUT/github.txt"
key=$(cat "$here"/packer/scripts/0[1-5]*.sh "$here/packer/scripts/07-config.sh" "$here/packer/scripts/08-mmds.sh" \
  "$OUT/packages.txt" "$OUT/github.txt" | sha256sum | cut -c1-16)-$PG_MAJOR-$SUITE

# 1. The provisioned base, cached by the hash of what makes it.
if [ ! -f "$OUT/base.$key.done" ]; then
  rm -rf "$OUT/base" "$OUT"/base.*.done
  say "debootstrap $SUITE from $MIRROR"
  debootstrap --variant=minbase "$SUITE" "$OUT/base" "$MIRROR" > "$OUT/debootstrap.log" 2>&1 ||
    { tail -20 "$OUT/debootstrap.log" >&2; exit 1; }
  chroot_mounts "$OUT/base"
  trap 'chroot_umounts "$OUT/base"' EXIT
  stage "$OUT/base"
  # A mirror may serve testing's Release past its Valid-Until (a snapshot): the local build
  # accepts that while it installs, and the image does not keep the exception.
  echo 'Acquire::Check-Valid-Until "false";' > "$OUT/base/etc/apt/apt.conf.d/00beyond-build"
  for s in 01-base-packages.sh 02-postgres-install.sh 03-pgdg-extensions.sh 04-beyond-extensions.sh \
    05-pgbouncer-install.sh 07-config.sh 08-mmds.sh; do
    run_script "$OUT/base" "$s"
  done
  # Kernel and a small initramfs (virtio and ext4 only) for the QEMU harness.
  K=$(ls "$OUT/base/usr/lib/modules" | sort | tail -n 1)
  cp -a "$OUT/base/etc/initramfs-tools" "$OUT/base/etc/initramfs-tools-min"
  sed -i 's/^MODULES=.*/MODULES=list/' "$OUT/base/etc/initramfs-tools-min/initramfs.conf"
  printf '%s\n' virtio_mmio virtio_pci virtio_blk virtio_net ext4 >> "$OUT/base/etc/initramfs-tools-min/modules"
  chroot "$OUT/base" mkinitramfs -d /etc/initramfs-tools-min -o /tmp/initrd-min.img "$K"
  cp "$OUT/base/tmp/initrd-min.img" "$OUT/initrd.img"
  cp "$OUT/base/boot/vmlinuz-$K" "$OUT/vmlinuz"
  rm -rf "$OUT/base/tmp/build"
  rm -f "$OUT/base/etc/apt/apt.conf.d/00beyond-build"
  chroot_umounts "$OUT/base"
  trap - EXIT
  touch "$OUT/base.$key.done"
  say "base ready ($(du -sh "$OUT/base" | cut -f1))"
fi

# 2. Our build on a copy of the base, the seed, cleanup.
if [ -z "${DIST:-}" ]; then
  say "building beyond-pg"
  (cd "$here" && "$DENO" task --quiet build) >&2
  DIST="$here/dist"
fi
rm -rf "$OUT/rootfs"
cp -a --reflink=auto "$OUT/base" "$OUT/rootfs"
chroot_mounts "$OUT/rootfs"
trap 'chroot_umounts "$OUT/rootfs"' EXIT
stage "$OUT/rootfs"
cp -a "$DIST" "$OUT/rootfs/tmp/build/dist"
for s in 06-beyond-pg-install.sh 09-seed.sh 10-cleanup.sh; do run_script "$OUT/rootfs" "$s"; done
if [ -n "${TEST_HOOKS:-}" ]; then
  mkdir -p "$OUT/rootfs/etc/beyond-pg-test"
  cp -a "$TEST_HOOKS" "$OUT/rootfs/etc/beyond-pg-test/hooks"
  # Hooks run as root and must be root's alone, whoever checked the repository out.
  chown -R 0:0 "$OUT/rootfs/etc/beyond-pg-test"
  chmod -R go-w "$OUT/rootfs/etc/beyond-pg-test"
fi
chroot_umounts "$OUT/rootfs"
trap - EXIT

# 3. The ext4 image.
size=$(du -sm "$OUT/rootfs" | cut -f1)
rm -f "$OUT/rootfs.ext4"
truncate -s "$(( size * 13 / 10 + 256 ))M" "$OUT/rootfs.ext4"
mkfs.ext4 -q -F -L beyond-root -d "$OUT/rootfs" "$OUT/rootfs.ext4"
say "image ready: $OUT/rootfs.ext4 ($(du -h "$OUT/rootfs.ext4" | cut -f1) used, rootfs ${size}M), kernel $OUT/vmlinuz, initrd $OUT/initrd.img"
