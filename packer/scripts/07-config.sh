#!/bin/sh
# Static configuration. PostgreSQL's own files (conf.d/, pg_hba.conf, pgbouncer.ini) are
# rendered by beyond-pg at every boot from the VM's metadata and resources, so only the
# kernel settings and the manifest for reference are installed here.
set -eu
: "${BEYOND_PG_CONF:?}"
install -D -m 0644 "$BEYOND_PG_CONF/sysctl.d/99-postgres.conf" /etc/sysctl.d/99-postgres.conf
install -D -m 0644 "$BEYOND_PG_CONF/extensions.toml" /etc/beyond-pg/extensions.toml
echo beyond-pg > /etc/hostname
