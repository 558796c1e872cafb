#!/bin/sh
# PostgreSQL server $PG_MAJOR from PGDG (production) or Debian (local builds). No cluster is
# created: beyond-pg makes its own on the data volume.
set -eu
export DEBIAN_FRONTEND=noninteractive
: "${PG_MAJOR:?}" "${PG_SOURCE:?}"
mkdir -p /etc/postgresql-common
echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
if [ "$PG_SOURCE" = pgdg ]; then
  . /etc/os-release
  install -d /usr/share/postgresql-common/pgdg
  curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc https://www.postgresql.org/media/keys/ACCC4CF8.asc
  echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt ${VERSION_CODENAME}-pgdg main" \
    > /etc/apt/sources.list.d/pgdg.list
  apt-get update -qq
fi
apt-get install -y -qq --no-install-recommends "postgresql-$PG_MAJOR"
test -x "/usr/lib/postgresql/$PG_MAJOR/bin/postgres" || { echo "02: postgresql-$PG_MAJOR did not install a server" >&2; exit 1; }
