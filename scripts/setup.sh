#!/usr/bin/env bash
# Installs everything berth needs on Debian 12 (as root) and builds it. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=(gcc make libc6-dev libseccomp-dev pkg-config busybox-static runc iproute2 procps docker.io containerd python3 podman time
  docker-registry apache2-utils openssl zstd tar gzip
  nftables iptables containernetworking-plugins docker-compose wrk util-linux)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Again whenever package-lock.json changed since the last install (a new dependency).
if [ ! -d node_modules/typescript ] || [ ! -x node_modules/.bin/esbuild ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "setup: building native/ and TypeScript"
make -s -C native
node node_modules/typescript/bin/tsc -p tsconfig.json
# The CLI as one CommonJS file: Node 20 spends ~1 ms per ES module it resolves and more
# to start its ESM loader; one CJS bundle starts in about half the time of the module tree.
for cli in berth-oci berth; do
  node_modules/.bin/esbuild "src/cli/$cli.ts" --bundle --platform=node --format=cjs --target=node20 \
    --outfile="dist/$cli.cjs" --log-level=warning \
    --banner:js="const __berth_import_meta_url = require('url').pathToFileURL(__filename).href;" \
    --define:import.meta.url=__berth_import_meta_url
  # A code cache of the previous bundle would only be rejected; bin/launch.cjs makes a new one.
  rm -f "dist/$cli.cjs.cache"
done
