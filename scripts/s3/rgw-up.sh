#!/bin/sh
# A one-node Ceph cluster (1 monitor, 1 BlueStore OSD on a sparse file, no manager, auth off,
# pool size 1) plus radosgw on 127.0.0.1 — a real S3-compatible server for the tests and
# benchmarks. Idempotent: a second call restarts a stopped cluster.
#   rgw-up.sh DIR [HTTP_PORT [HTTPS_PORT]]     access key "test", secret "testtesttest"
# DIR must be on a filesystem with O_DIRECT (ext4: yes; tmpfs: no).
# Needs: apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd
set -eu
C=$(realpath -m "$1"); PORT=${2:-7480}; TLS_PORT=${3:-}
export CEPH_CONF="$C/ceph.conf"
frontend="beast endpoint=127.0.0.1:$PORT"
if [ -n "$TLS_PORT" ]; then
  if [ ! -f "$C/tls.crt" ]; then
    # A CA (what clients trust: $C/ca.crt) and a leaf for 127.0.0.1 signed by it.
    mkdir -p "$C"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
      -keyout "$C/ca.key" -out "$C/ca.crt" -subj "/CN=rgw test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$C/tls.key" -out "$C/tls.csr" -subj /CN=localhost 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$C/tls.ext"
    openssl x509 -req -in "$C/tls.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial -days 365 \
      -sha256 -extfile "$C/tls.ext" -out "$C/tls.crt" 2>/dev/null
  fi
  frontend="$frontend ssl_endpoint=127.0.0.1:$TLS_PORT ssl_certificate=$C/tls.crt ssl_private_key=$C/tls.key"
fi
if [ ! -f "$C/ceph.conf" ]; then
  mkdir -p "$C"/run "$C"/log "$C"/mon "$C"/osd/ceph-0
  FSID=$(cat /proc/sys/kernel/random/uuid)
  cat > "$C/ceph.conf" <<CONF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
run dir = $C/run
admin socket = $C/run/\$name.asok
pid file = $C/run/\$name.pid
log file = $C/log/\$name.log
mon data = $C/mon/\$cluster-\$id
osd data = $C/osd/\$cluster-\$id
keyring = $C/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
osd crush chooseleaf type = 0
mon data avail warn = 1
mon data avail crit = 0
[osd]
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 21474836480
osd memory target = 939524096
[client.rgw]
rgw frontends = $frontend
CONF
  ceph-authtool --create-keyring "$C/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$C/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' >/dev/null
  ceph-authtool "$C/keyring" --gen-key -n client.rgw --cap mon 'allow rw' --cap osd 'allow rwx' >/dev/null
  monmaptool --create --fsid "$FSID" --addv a '[v2:127.0.0.1:3300,v1:127.0.0.1:6789]' "$C/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$C/monmap" --keyring "$C/keyring"
  ceph-mon -i a
  OSDUUID=$(cat /proc/sys/kernel/random/uuid)
  timeout 60 ceph osd new "$OSDUUID" >/dev/null
  ceph-osd -i 0 --mkfs --osd-uuid "$OSDUUID" 2>/dev/null
  NEW=1
else
  sed -i "s|^rgw frontends = .*|rgw frontends = $frontend|" "$C/ceph.conf"
  ceph-mon -i a
fi
ceph-osd -i 0 2>/dev/null
for _ in $(seq 1 150); do timeout 5 ceph osd stat 2>/dev/null | grep -q '1 up' && break; sleep 0.2; done
radosgw -n client.rgw
for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.2; done
if [ "${NEW:-0}" = 1 ]; then
  timeout 60 radosgw-admin -n client.rgw --admin-socket= user create --uid=test --display-name=test \
    --access-key=test --secret=testtesttest >/dev/null
fi
curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && echo "radosgw ready on http://127.0.0.1:$PORT${TLS_PORT:+ and https://127.0.0.1:$TLS_PORT} (access key test / secret testtesttest)"
