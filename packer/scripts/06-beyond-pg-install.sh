#!/bin/sh
# beyond-pg itself: the build (compiled binary, or bundle + runtime + launcher) from
# $BEYOND_PG_DIST, /usr/local/bin/beyond-pg, /sbin/init → beyond-pg, and the hook directories.
set -eu
: "${BEYOND_PG_DIST:?}" "${PG_MAJOR:?}"
rm -rf /usr/local/lib/beyond-pg
mkdir -p /usr/local/lib/beyond-pg
cp -a "$BEYOND_PG_DIST"/. /usr/local/lib/beyond-pg/
ln -sf /usr/local/lib/beyond-pg/beyond-pg /usr/local/bin/beyond-pg
rm -f /sbin/init
ln -s /usr/local/bin/beyond-pg /sbin/init
# Hooks run as root: their directory must be root's alone (Debian makes /etc/postgresql
# postgres's, so they live under /etc/beyond-pg).
for d in pre-start post-start pre-stop pre-fork; do
  install -d -o root -g root -m 0755 "/etc/beyond-pg/hooks/$d.d"
done
# A bundle build: warm Deno's caches for the installed path now, so no boot starts cold.
# Every command's code is loaded once (through the launcher: V8's code cache holds only for the
# same flags); a boot whose chunks are cold spends ~30 ms more CPU before postgres is ready.
if [ -f /usr/local/lib/beyond-pg/js/main.js ]; then
  mkdir -p /usr/local/lib/beyond-pg/deno-cache
  DENO_DIR=/usr/local/lib/beyond-pg/deno-cache /usr/local/bin/beyond-pg warm
fi
/usr/local/bin/beyond-pg version
