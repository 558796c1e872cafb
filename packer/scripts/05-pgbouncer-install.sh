#!/bin/sh
# PgBouncer (supervised by beyond-pg, not by an init system).
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends pgbouncer
rm -f /etc/pgbouncer/userlist.txt
