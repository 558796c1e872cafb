#!/bin/sh
# Stop the radosgw, OSD and monitor that rgw-up.sh started in DIR (by their pid files).
C=$(realpath -m "$1")
for n in client.rgw osd.0 mon.a; do
  [ -f "$C/run/$n.pid" ] || continue
  p=$(cat "$C/run/$n.pid")
  kill "$p" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
done
exit 0
