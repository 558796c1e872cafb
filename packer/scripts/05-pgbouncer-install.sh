#!/bin/sh
# PgBouncer (supervised by beyond-pg, not by an init system), and libeatmydata for `wal-sink`
# with BEYOND_PG_SINK_ACK=write (pg_receivewal's fsync made a no-op; the sink fsyncs itself).
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends pgbouncer libeatmydata1
rm -f /etc/pgbouncer/userlist.txt
