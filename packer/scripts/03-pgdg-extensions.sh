#!/bin/sh
# Extension packages pinned in conf/extensions.toml, listed for this source by
# scripts/manifest-packages.ts into $PACKAGES_FILE ("package[=version]" per line). A pinned
# package that the repository does not have fails the build here, not at first boot.
set -eu
export DEBIAN_FRONTEND=noninteractive
: "${PACKAGES_FILE:?}"
pkgs=$(grep -v '^#' "$PACKAGES_FILE" | sort -u | tr '\n' ' ')
[ -n "$pkgs" ] || exit 0
for p in $pkgs; do
  name=${p%%=*}
  if ! apt-cache show "$p" >/dev/null 2>&1; then
    echo "03: pinned package $p is not in the configured repositories; fix conf/extensions.toml or the repository" >&2
    exit 1
  fi
done
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $pkgs
