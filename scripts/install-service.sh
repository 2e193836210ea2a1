#!/usr/bin/env bash
# Installs contrib/berthd.service as /etc/systemd/system/berthd.service, running berthd from
# this checkout (built by scripts/setup.sh), and enables it. Root; needs systemd.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
command -v systemctl >/dev/null || { echo "install-service: systemd is not running here; start berthd with: node $repo/dist/src/cli/berthd.js" >&2; exit 1; }
bash scripts/setup.sh >/dev/null
sed "s#^ExecStart=.*#ExecStart=$(command -v node) $repo/dist/src/cli/berthd.js#" contrib/berthd.service >/etc/systemd/system/berthd.service
systemctl daemon-reload
systemctl enable --now berthd.service
echo "berthd is running: DOCKER_HOST=unix:///run/berth/berth.sock docker ps, or $repo/bin/berth ps"
