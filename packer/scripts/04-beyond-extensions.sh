#!/bin/sh
# beyond_auth / beyond_queue: .deb assets from their GitHub Releases, as pinned in
# conf/extensions.toml ("github" entries, listed into $GITHUB_FILE as "repo@tag name").
# A missing asset fails the build (curl -f).
set -eu
: "${PG_MAJOR:?}"
[ -s "${GITHUB_FILE:-/nonexistent}" ] || { echo "04: no GitHub-released extensions for this source"; exit 0; }
arch=$(dpkg --print-architecture)
while read -r spec name; do
  repo=${spec%@*}; tag=${spec#*@}; version=${tag#v}
  deb="postgresql-${PG_MAJOR}-$(echo "$name" | tr _ -)_${version}_${arch}.deb"
  url="https://github.com/${repo}/releases/download/${tag}/${deb}"
  echo "04: $url"
  curl -fsSL -o "/tmp/$deb" "$url"
  apt-get install -y -qq --no-install-recommends "/tmp/$deb"
  rm -f "/tmp/$deb"
done < "$GITHUB_FILE"
