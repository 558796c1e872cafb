#!/bin/sh
# The seed: a cluster prepared now (initdb + the manifest's extensions) that first boot copies
# instead of running initdb. Needs /proc and /dev/shm in the build environment.
set -eu
: "${PG_MAJOR:?}"
BEYOND_PG_SEED_DIR=/usr/lib/beyond-pg/seed BEYOND_PG_RUN_DIR=/tmp/beyond-pg-seed-run \
  BEYOND_PG_SOCKET_DIR=/tmp/beyond-pg-seed-sock BEYOND_PG_DATA_ROOT=/tmp/beyond-pg-seed-unused \
  BEYOND_MMDS_URL=off /usr/local/bin/beyond-pg seed
rm -rf /tmp/beyond-pg-seed-*
test -f "/usr/lib/beyond-pg/seed/$PG_MAJOR/seed.json"
