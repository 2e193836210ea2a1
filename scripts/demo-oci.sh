#!/usr/bin/env bash
# The runtime and image-library demo (the main demo is scripts/demo.sh): sets everything up, builds a bundle from Debian's busybox-static, and
# runs containers with berth-oci (the runc-compatible runtime): a foreground run, then the
# create → start → exec → kill → delete lifecycle. Needs root; no internet.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
oci() { bin/berth-oci --root "$root" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
root="$work/state"
cleanup() {
  for id in $(bin/berth-oci --root "$root" list -q 2>/dev/null); do bin/berth-oci --root "$root" delete -f "$id" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

say "building a bundle in $work/bundle from /bin/busybox"
mkdir -p "$work/bundle/rootfs"/{bin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$work/bundle/rootfs/bin/"
for a in sh echo cat ls id hostname sleep ps uname mount grep wc; do ln -s busybox "$work/bundle/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/bundle/rootfs/etc/passwd"
echo 'root:x:0:' >"$work/bundle/rootfs/etc/group"
(cd "$work/bundle" && "$OLDPWD/bin/berth-oci" spec)
node -e '
  const fs = require("fs"); const f = process.argv[1]; const c = JSON.parse(fs.readFileSync(f));
  c.process.terminal = false;
  c.process.args = ["sh", "-c", "echo \"hello from $(hostname): I am pid $$, uid $(id -u)\"; echo \"my processes:\"; ps -o pid,comm; echo \"my mounts:\"; mount | wc -l"];
  c.linux.resources = { ...c.linux.resources, memory: { limit: 67108864 }, pids: { limit: 64 } };
  fs.writeFileSync(f, JSON.stringify(c, null, 2));
' "$work/bundle/config.json"

say "berth-oci run (foreground; exit code passes through)"
oci run --bundle "$work/bundle" demo-run

say "create → state (created) → start → state (running)"
node -e '
  const fs = require("fs"); const f = process.argv[1]; const c = JSON.parse(fs.readFileSync(f));
  c.process.args = ["sleep", "300"]; fs.writeFileSync(f, JSON.stringify(c, null, 2));
' "$work/bundle/config.json"
oci create --bundle "$work/bundle" demo
oci state demo | grep -E '"(status|pid)"'
oci start demo
oci state demo | grep -E '"status"'

say "exec into it: the container sees only its own processes"
oci exec demo ps -o pid,comm
say "its cgroup limits, from the host"
cat /sys/fs/cgroup/memory/berth/demo/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/berth/demo/memory.max
oci list

say "kill → stopped → delete"
oci kill demo KILL
for _ in $(seq 50); do oci state demo | grep -q '"stopped"' && break; sleep 0.1; done
oci state demo | grep -E '"status"'
oci delete demo
oci list

say "images: a directory becomes an image; push, pull, unpack into overlay snapshots, run"
mkdir -p "$work/image-src"/{bin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$work/image-src/bin/"
for a in sh echo cat ls; do ln -s busybox "$work/image-src/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/image-src/etc/passwd"
echo 'a busybox image berth made, pushed and pulled' >"$work/image-src/etc/motd"
node scripts/image-demo.mjs "$work"

say "done: nothing is left behind (state, cgroups and mounts are gone)"
