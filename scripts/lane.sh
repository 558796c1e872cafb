#!/bin/sh
# Test lanes: another PostgreSQL major (and PgBouncer) in a Debian chroot, beside the host's.
# The host is bookworm (PG 15, PgBouncer 1.18); its glibc cannot run newer Debian binaries, so
# each lane is a `debootstrap --variant=minbase` rootfs of the suite that carries the major,
# made once and cached outside the checkout, rebuilt when its package list changes.
#
#   scripts/lane.sh ensure LANE            make (or reuse) the lane's rootfs; prints its path
#   scripts/lane.sh run LANE -- CMD...     run CMD in it, the checkout at /work/proj (cwd)
#   scripts/lane.sh packages LANE          the packages it installs
#
# Lanes: pg18 (testing: PostgreSQL 18, PgBouncer 1.26, pgvector), pg17 (trixie: PG 17,
# PgBouncer 1.24). Cache: $BEYOND_PG_LANE_CACHE (default /var/cache/beyond-pg/lanes). Root only.
# Inside: the host's Deno binary and its cache (DENO_DIR) are bind-mounted, /tmp is a fresh
# directory removed afterwards, the loopback network is the host's (radosgw on 7480 is reached
# there), and promtool is the host's (a static binary) when it has one.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${BEYOND_PG_LANE_CACHE:-/var/cache/beyond-pg/lanes}
DENO_BIN=$(readlink -f "$here/.tools/node_modules/.bin/deno")

lane_def() { # $1 = lane → SUITE, MAJOR
  case "$1" in
    pg18) SUITE=testing MAJOR=18 ;;
    pg17) SUITE=trixie MAJOR=17 ;;
    *) echo "lane: unknown lane '$1'; use pg18 or pg17" >&2; exit 2 ;;
  esac
}

packages() { # the lane's packages, one per line, sorted
  lane_def "$1"
  tmp=$(mktemp -d)
  "$DENO_BIN" run -A --quiet "$here/scripts/manifest-packages.ts" "$SUITE" "$MAJOR" \
    "$tmp/apt" "$tmp/github" 2>/dev/null
  {
    cat "$tmp/apt"
    # The server, PgBouncer, and what the supervisor, the tests and the benchmarks run.
    printf '%s\n' "postgresql-$MAJOR" pgbouncer zstd openssl ca-certificates procps iproute2 pgbackrest \
      util-linux e2fsprogs libeatmydata1
  } | sort -u
  rm -rf "$tmp"
}

mirror() {
  m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${m:-http://deb.debian.org/debian}"
}

ensure() {
  lane=$1
  lane_def "$lane"
  [ "$(id -u)" = 0 ] || { echo "lane: needs root (debootstrap, chroot)" >&2; exit 1; }
  pkgs=$(packages "$lane")
  key=$(printf '%s\n%s\n%s\n' "$SUITE" "$pkgs" "$(sed -n '/^ensure()/,/^}/p' "$0")" |
    sha256sum | cut -c1-16)
  dir="$CACHE/$lane"
  if [ -f "$dir/.lane-key" ] && [ "$(cat "$dir/.lane-key")" = "$key" ]; then
    echo "$dir"
    return
  fi
  mkdir -p "$CACHE"
  t0=$(date +%s)
  echo "lane $lane: building a $SUITE rootfs with PostgreSQL $MAJOR in $dir (once; ~6 min)" >&2
  rm -rf "$dir.new"
  list=$(echo "$pkgs" | tr '\n' ',' | sed 's/,$//')
  if ! debootstrap --variant=minbase --include="$list" "$SUITE" "$dir.new" "$(mirror)" \
    >"$CACHE/$lane.debootstrap.log" 2>&1; then
    tail -n 20 "$CACHE/$lane.debootstrap.log" >&2
    echo "lane $lane: debootstrap failed (log: $CACHE/$lane.debootstrap.log)" >&2
    exit 1
  fi
  test -x "$dir.new/usr/lib/postgresql/$MAJOR/bin/postgres" ||
    { echo "lane $lane: no postgres $MAJOR in the rootfs" >&2; exit 1; }
  # No cluster of Debian's: the tests make their own.
  rm -rf "$dir.new/var/lib/postgresql/$MAJOR" "$dir.new/etc/postgresql/$MAJOR"
  rm -rf "$dir.new/var/cache/apt/archives/"*.deb
  echo "$key" >"$dir.new/.lane-key"
  rm -rf "$dir.old"
  [ ! -d "$dir" ] || mv "$dir" "$dir.old"
  mv "$dir.new" "$dir"
  rm -rf "$dir.old"
  echo "lane $lane: ready in $(($(date +%s) - t0)) s ($(du -sh "$dir" | cut -f1))" >&2
  echo "$dir"
}

run() {
  lane=$1
  shift
  [ "${1:-}" = "--" ] && shift
  root=$(ensure "$lane")
  deno_dir=$("$DENO_BIN" info --json 2>/dev/null | sed -n 's/.*"denoDir": *"\([^"]*\)".*/\1/p')
  deno_dir=${deno_dir:-$HOME/.cache/deno}
  mkdir -p "$deno_dir"
  tmp=$(mktemp -d "$CACHE/$lane-tmp.XXXXXX")
  chmod 1777 "$tmp"
  promtool=$(command -v promtool || true)
  # radosgw runs on the host; the tests read its CA (and never start it: it answers).
  rgw=$(readlink -f "${BEYOND_TEST_RGW_DIR:-$here/.cache/rgw}")
  mkdir -p "$rgw"
  set +e
  unshare -m --propagation private sh -c '
    set -e
    R=$1 P=$2 D=$3 DD=$4 T=$5 PT=$6 RGW=$7; shift 7
    mkdir -p "$R/work/proj" "$R/opt/deno" "$R/opt/deno-dir" "$R/dev/shm" "$R/tmp" "$R/opt/rgw"
    mount --bind "$RGW" "$R/opt/rgw"
    mount --bind "$P" "$R/work/proj"
    mount --bind "$(dirname "$D")" "$R/opt/deno"
    mount --bind "$DD" "$R/opt/deno-dir"
    mount --bind "$T" "$R/tmp"
    mount -t proc proc "$R/proc"
    mount --bind /dev "$R/dev"
    mount --bind /sys "$R/sys"
    mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
    if [ -n "$PT" ]; then
      mkdir -p "$R/opt/host"
      touch "$R/opt/host/promtool"
      mount --bind "$PT" "$R/opt/host/promtool"
    fi
    exec chroot "$R" /usr/bin/env -i \
      PATH=/opt/deno:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin:/opt/host \
      HOME=/root LANG=C.UTF-8 DENO_DIR=/opt/deno-dir DENO_NO_UPDATE_CHECK=1 \
      BEYOND_TEST_LANE="$LANE" BEYOND_TEST_RGW_DIR=/opt/rgw \
      sh -c "cd /work/proj && exec \"\$@\"" sh "$@"
  ' sh "$root" "$here" "$DENO_BIN" "$deno_dir" "$tmp" "$promtool" "$rgw" "$@"
  rc=$?
  set -e
  rm -rf "$tmp"
  return $rc
}

usage() {
  echo "usage: scripts/lane.sh ensure|packages LANE | run LANE -- CMD..." >&2
  exit 2
}
[ $# -ge 2 ] || usage
cmd=$1 lane_arg=$2
shift 2
case "$cmd" in
  ensure) ensure "$lane_arg" ;;
  packages) packages "$lane_arg" ;;
  run)
    LANE=$lane_arg
    export LANE
    run "$lane_arg" "$@"
    ;;
  *) usage ;;
esac
