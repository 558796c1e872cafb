#!/bin/sh
# Metadata (MMDS): nothing to install — beyond-pg (PID 1) adds the link-local route
# (169.254.169.254 dev eth0) and reads the metadata itself, as the base rootfs's init does.
set -eu
mkdir -p /run/beyond/tls
