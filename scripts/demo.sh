#!/usr/bin/env bash
# The berth demo: sets everything up, starts berthd (the daemon) on a private socket, makes
# a busybox image from what this machine has (Debian's busybox-static), and runs containers
# through it with the berth CLI and the real docker CLI: a web server on a bridge network
# with its port published on 127.0.0.1, a second container that finds it by name, logs,
# exec, stats, berthd killed with SIGKILL while the server keeps serving, then everything
# removed. Needs root; no internet.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
repo=$PWD
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
run_root=/run/berth-demo-$$
export BERTH_HOST="unix://$run_root/berth.sock" BERTH_AUTOSTART=0
berth() { "$repo/bin/berth" "$@"; }
berthd_pid=
# The demo's own default bridge and nft table, so that a berthd already running on this host
# (berth0, table inet berth) is left alone.
cat >"$work/berth.json" <<'JSON'
{ "network": { "defaultBridge": { "bridge": "berthdemo0" }, "nftTable": "berthdemo" } }
JSON
start_berthd() {
  node "$repo/dist/src/cli/berthd.js" --root "$work/root" --run-root "$run_root" --config "$work/berth.json" >>"$work/berthd.log" 2>&1 &
  berthd_pid=$!
  for _ in $(seq 100); do [ -S "$run_root/berth.sock" ] && berth version >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "berthd did not start:"; cat "$work/berthd.log"; exit 1
}
cleanup() {
  berth rm -f $(berth ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  berth network rm demo-net >/dev/null 2>&1 || true
  [ -n "$berthd_pid" ] && kill "$berthd_pid" 2>/dev/null && wait "$berthd_pid" 2>/dev/null || true
  # berthd keeps its bridge, table and netns dir for its next start (as dockerd keeps docker0);
  # the demo's berthd has no next start.
  ip link delete berthdemo0 2>/dev/null || true
  nft delete table inet berthdemo 2>/dev/null || true
  umount -l "$run_root/netns" 2>/dev/null || true
  [ -n "${BERTH_DEMO_KEEP:-}" ] && { echo "kept $work"; return; }
  rm -rf "$work" "$run_root"
}
trap cleanup EXIT

say "berthd: root $work/root, API on $run_root/berth.sock"
start_berthd
berth version

say "an image from /bin/busybox (no registry, no internet): berth import"
mkdir -p "$work/rootfs"/{bin,proc,sys,dev,tmp,etc,www,root}
cp /bin/busybox "$work/rootfs/bin/"
for a in sh echo cat ls id hostname sleep ps uname httpd wget date head tail nslookup grep; do ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
echo 'root:x:0:' >"$work/rootfs/etc/group"
echo '<h1>hello from a berth container</h1>' >"$work/rootfs/www/index.html"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
berth import --change 'CMD ["/bin/sh"]' "$work/rootfs.tar" demo/busybox:1
berth images

say "berth run --rm: output and exit code come back"
berth run --rm demo/busybox:1 sh -c 'echo "hello from $(hostname), pid $$, uid $(id -u)"; exit 3' || echo "exit code: $?"

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
say "a bridge network, and a web server on it with its port 80 published on 127.0.0.1:$port"
berth network create demo-net
berth run -d --name web --network demo-net --memory 64m --restart unless-stopped -p "127.0.0.1:$port:80" demo/busybox:1 httpd -f -v -p 80 -h /www
berth ps
berth port web
for _ in $(seq 50); do wget -q -O - "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.1; done

say "another container on the network finds the server by name (berth's embedded DNS)"
berth run --rm --network demo-net demo/busybox:1 sh -c 'nslookup web | grep -A1 ^Name; wget -q -O - http://web/'

say "exec, logs, stats"
berth exec web sh -c 'echo "inside: $(ps | wc -l) processes, hostname $(hostname)"'
berth logs web | tail -n 3
berth stats --no-stream web

say "berthd killed with SIGKILL: the container keeps serving (its monitor holds it)"
kill -9 "$berthd_pid"; wait "$berthd_pid" 2>/dev/null || true
wget -q -O - "http://127.0.0.1:$port/"
start_berthd
berth ps --format '{{.Names}}: {{.Status}}'

say "the docker CLI speaks to berthd too"
if command -v docker >/dev/null; then DOCKER_HOST="$BERTH_HOST" docker ps; else echo "(no docker CLI installed)"; fi

say "stop and remove"
berth stop web
berth rm web
berth network rm demo-net
berth ps -a
