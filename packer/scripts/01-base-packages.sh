#!/bin/sh
# OS packages every image needs. Env: PG_MAJOR, PG_SOURCE (pgdg|debian), WITH_KERNEL (1 for
# local VM images that boot a Debian kernel; Firecracker supplies its own).
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  ca-certificates iproute2 kmod procps util-linux e2fsprogs openssl zstd curl gnupg
if [ "${WITH_KERNEL:-0}" = 1 ]; then
  apt-get install -y -qq --no-install-recommends linux-image-amd64 initramfs-tools
fi
