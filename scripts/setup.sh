#!/bin/sh
# Install what beyond-pg needs on a Debian-like machine, idempotently:
#   scripts/setup.sh          Deno (from npm, into .tools/) + PgBouncer
#   scripts/setup.sh test     ... plus what the test suite uses (extensions, S3 server, QEMU)
# Needs root (or sudo) only for apt-get, and only when something is missing.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
DENO_VERSION=2.9.6

if [ ! -x "$here/.tools/node_modules/.bin/deno" ] ||
  ! "$here/.tools/node_modules/.bin/deno" --version 2>/dev/null | grep -q "deno $DENO_VERSION"; then
  echo "setup: installing Deno $DENO_VERSION from npm into .tools/" >&2
  npm install --silent --no-audit --no-fund --prefix "$here/.tools" "deno@$DENO_VERSION" >&2
fi

packages="pgbouncer zstd"
if [ "${1:-}" = "test" ]; then
  major=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
  major=${major:-15}
  # Extensions Debian ships (the rest are skipped with a warning at boot), the S3 server,
  # pgBackRest for the archive benchmark's comparison, promtool, the VM toolchain, and
  # libeatmydata for WAL sinks that acknowledge on write (BEYOND_PG_SINK_ACK=write).
  packages="$packages postgresql-$major postgresql-contrib postgresql-$major-cron postgresql-$major-partman
    postgresql-$major-hypopg postgresql-$major-repack postgresql-$major-postgis-3
    postgresql-$major-postgis-3-scripts radosgw ceph-mon ceph-osd pgbackrest prometheus
    qemu-system-x86 qemu-utils debootstrap e2fsprogs openssl procps iproute2 util-linux
    libeatmydata1"
fi
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: apt-get install$missing" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >&2
fi
