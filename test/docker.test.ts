// Docker driving the runtime under test: Debian's dockerd + containerd with
// `--add-runtime berth=<runtime>`, then run (output, cgroup, exit codes), run -d / exec /
// ps / update / logs / stop / rm, -t and -it through a terminal, and --memory / --pids-limit.
// Both daemons are private to this file: containerd with its root, state, sockets and config
// in a temp dir; dockerd with its own data-root, exec-root, socket and key file, no iptables,
// no bridge, vfs storage, and a cgroup parent that names this run. The image is a tar of the
// busybox test rootfs (`docker import`, no registry). Skips when the binaries are absent.
// BERTH_TEST_DOCKER_LOGS=<dir> keeps the daemons' logs there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, existsSync, rmSync, rmdirSync, openSync, closeSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeRootfs } from './helpers/bundle.js';
import { runCommand, runtimeBin, show, sleep, type RunResult } from './helpers/runtime.js';
import { detachMountsUnder, findLeaks, reapLeaks, describeLeaks, type Leak } from './helpers/leaks.js';

function which(cmd: string): string | undefined {
  for (const d of (process.env['PATH'] ?? '/usr/bin:/bin').split(':')) if (existsSync(join(d, cmd))) return join(d, cmd);
  return undefined;
}

const DOCKERD = which('dockerd');
const CONTAINERD = which('containerd');
const SHIM = which('containerd-shim-runc-v2');
// Debian's client matches its daemon; any other client negotiates the API version down.
const DOCKER = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : which('docker');
const SCRIPT = which('script');

const missing = [
  ['dockerd', DOCKERD],
  ['containerd', CONTAINERD],
  ['containerd-shim-runc-v2', SHIM],
  ['docker', DOCKER],
].filter(([, p]) => !p).map(([n]) => n);
const SKIP: string | false =
  process.getuid?.() !== 0 ? 'needs root' : missing.length > 0 ? `not installed: ${missing.join(', ')} (apt-get install docker.io containerd)` : false;
const SKIP_TTY: string | false = SKIP || (SCRIPT ? false : 'script(1) (util-linux) is missing');
if (SKIP) process.stderr.write(`docker.test: skipped: ${SKIP}\n`);

const IMAGE = 'berth-test-busybox:latest';
/** The cgroup parent of every container: named after this run, removed at the end. */
const CGROUP_PARENT = `berth-test-docker-${process.pid}`;
/** Paths the daemons make outside their configured dirs (compiled in); removed if new. */
const HOST_DIRS = ['/run/containerd/s', '/run/containerd', '/run/docker/plugins', '/run/docker'];
const DAEMON_START_MS = 30_000;
const DAEMON_STOP_MS = 20_000;
const CMD_MS = 60_000;

let work = '';
let dockerSock = '';
let startedAt = 0;

interface HostSnapshot {
  berthCgroups: string[];
  links: string[];
  dirs: Record<string, boolean>;
  etcDockerKey: boolean;
}
let hostBefore: HostSnapshot | undefined;

function berthCgroups(): string[] {
  try {
    return execFileSync('find', ['/sys/fs/cgroup', '-maxdepth', '3', '-name', '*berth*'], { encoding: 'utf8', timeout: 20_000 })
      .split('\n')
      .filter(Boolean)
      .sort();
  } catch {
    return [];
  }
}

function snapshotHost(): HostSnapshot {
  return {
    berthCgroups: berthCgroups(),
    links: readdirSync('/sys/class/net').sort(),
    dirs: Object.fromEntries(HOST_DIRS.map((d) => [d, existsSync(d)])),
    etcDockerKey: existsSync('/etc/docker/key.json'),
  };
}

// --- the daemons ---

interface Daemon {
  name: string;
  child: ChildProcess;
  log: string;
  exited: Promise<void>;
  running: boolean;
}
const daemons: Daemon[] = [];

function startDaemon(name: string, bin: string, args: string[]): Daemon {
  const log = join(work, `${name}.log`);
  const fd = openSync(log, 'w');
  try {
    const child = spawn(bin, args, { stdio: ['ignore', fd, fd], cwd: work });
    const d: Daemon = { name, child, log, running: true, exited: Promise.resolve() };
    d.exited = new Promise((resolve) => {
      child.on('exit', () => {
        d.running = false;
        resolve();
      });
      child.on('error', () => {
        d.running = false;
        resolve();
      });
    });
    daemons.push(d);
    return d;
  } finally {
    closeSync(fd);
  }
}

function logTail(d: Daemon, lines = 30): string {
  try {
    return readFileSync(d.log, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitReady(d: Daemon, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + DAEMON_START_MS;
  while (!(await ready())) {
    if (!d.running) throw new Error(`${d.name} exited while starting (exit ${d.child.exitCode}, signal ${d.child.signalCode}); log:\n${logTail(d)}`);
    if (Date.now() > deadline) throw new Error(`${d.name} not ready after ${DAEMON_START_MS} ms; log:\n${logTail(d)}`);
    await sleep(100);
  }
}

async function stopDaemon(d: Daemon): Promise<void> {
  if (!d.running) return;
  d.child.kill('SIGTERM');
  const timer = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
  if ((await Promise.race([d.exited.then(() => 'exited' as const), timer(DAEMON_STOP_MS)])) === 'timeout') {
    process.stderr.write(`docker.test: ${d.name} ignored SIGTERM for ${DAEMON_STOP_MS} ms; sending SIGKILL\n`);
    d.child.kill('SIGKILL');
    await Promise.race([d.exited, timer(5_000)]);
  }
}

/** GET /_ping on dockerd's socket: true once the API answers. */
function dockerPing(): Promise<boolean> {
  return new Promise((resolve) => {
    if (!existsSync(dockerSock)) return resolve(false);
    const req = request({ socketPath: dockerSock, path: '/_ping', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

function containerdConfig(): string {
  const q = (s: string) => JSON.stringify(s);
  // Off: CRI (would serve Kubernetes and touch /etc/cni), the snapshotters that probe host
  // devices or kernel modules, and "opt" (it makes /var/lib/containerd/opt).
  return [
    'version = 2',
    `root = ${q(join(work, 'containerd', 'root'))}`,
    `state = ${q(join(work, 'containerd', 'state'))}`,
    'disabled_plugins = [',
    '  "io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",',
    '  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",',
    '  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",',
    '  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",',
    ']',
    '[grpc]',
    `  address = ${q(join(work, 'containerd.sock'))}`,
    '[ttrpc]',
    `  address = ${q(join(work, 'containerd.sock.ttrpc'))}`,
    '[debug]',
    '  address = ""',
    '',
  ].join('\n');
}

// --- the client ---

async function docker(args: string[], timeoutMs = CMD_MS): Promise<RunResult> {
  return runCommand(DOCKER!, args, work, { timeoutMs, env: clientEnv() });
}

function clientEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${dockerSock}`, DOCKER_CONFIG: join(work, 'client') };
  delete env['DOCKER_CONTEXT'];
  delete env['DOCKER_TLS_VERIFY'];
  return env;
}

const RUN = ['--runtime', 'berth', '--network', 'none'];

function shellQuote(args: string[]): string {
  return args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
}

/** Runs a docker command line inside `script`'s pty (24x80), so the client has a terminal. */
async function dockerInTerminal(args: string[]): Promise<RunResult> {
  const cmd = `stty rows 24 cols 80; exec ${shellQuote([DOCKER!, ...args])}`;
  return runCommand(SCRIPT!, ['-qec', cmd, '/dev/null'], work, { timeoutMs: CMD_MS, env: clientEnv() });
}

// --- set-up and tear-down ---

before(async () => {
  if (SKIP) return;
  hostBefore = snapshotHost();
  startedAt = Math.floor(Date.now() / 1000) - 1;
  work = mkdtempSync(join(tmpdir(), 'berth-test-docker-'));
  for (const d of ['containerd/root', 'containerd/state', 'docker/data', 'docker/exec', 'client']) mkdirSync(join(work, d), { recursive: true });
  dockerSock = join(work, 'docker.sock');

  const containerdToml = join(work, 'containerd.toml');
  writeFileSync(containerdToml, containerdConfig());
  const ctrd = startDaemon('containerd', CONTAINERD!, ['--config', containerdToml]);
  await waitReady(ctrd, async () => existsSync(join(work, 'containerd.sock')) && /containerd successfully booted/.test(readFileSync(ctrd.log, 'utf8')));

  // The key file dockerd 20.10 would otherwise write to /etc/docker/key.json.
  const daemonJson = join(work, 'daemon.json');
  writeFileSync(daemonJson, JSON.stringify({ 'deprecated-key-path': join(work, 'docker', 'key.json') }));
  const dockerd = startDaemon('dockerd', DOCKERD!, [
    '--config-file', daemonJson,
    '--containerd', join(work, 'containerd.sock'),
    '--data-root', join(work, 'docker', 'data'),
    '--exec-root', join(work, 'docker', 'exec'),
    '--pidfile', join(work, 'docker', 'docker.pid'),
    '-H', `unix://${dockerSock}`,
    '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--bridge=none', '--userland-proxy=false',
    '--storage-driver=vfs',
    '--exec-opt', 'native.cgroupdriver=cgroupfs',
    '--cgroup-parent', `/${CGROUP_PARENT}`,
    '--add-runtime', `berth=${runtimeBin()}`,
  ]);
  await waitReady(dockerd, dockerPing);

  const rootfs = join(work, 'rootfs');
  makeRootfs(rootfs);
  const tar = join(work, 'rootfs.tar');
  execFileSync('tar', ['-C', rootfs, '-cf', tar, '.'], { timeout: 30_000 });
  rmSync(rootfs, { recursive: true, force: true });
  const r = await docker(['import', tar, IMAGE]);
  assert.equal(r.code, 0, show(r));
});

after(async () => {
  if (SKIP || !work) return;
  const problems: string[] = [];
  // Every container this file made (--rm ones included), so that no cgroup or process of
  // one may remain wherever the runtime put it.
  const containerIds: string[] = [];
  if (daemons.some((d) => d.name === 'dockerd' && d.running)) {
    const ev = await docker(
      ['events', '--since', String(startedAt), '--until', (Date.now() / 1000).toFixed(3), '--filter', 'type=container', '--filter', 'event=create', '--format', '{{.ID}}'],
      20_000,
    );
    containerIds.push(...new Set(ev.stdout.split('\n').filter((l) => /^[0-9a-f]{64}$/.test(l))));
    const ps = await docker(['ps', '-aq'], 20_000);
    const left = ps.stdout.split('\n').filter(Boolean);
    if (left.length > 0) await docker(['rm', '-f', ...left], 30_000);
  }
  for (const d of [...daemons].reverse()) await stopDaemon(d);
  for (const d of daemons) if (d.running) problems.push(`${d.name} (pid ${d.child.pid}) survived SIGKILL`);

  // Shims exit once their task is deleted; give stragglers a moment before calling them leaks.
  const scope = { paths: [work], ids: [...containerIds], roots: [] };
  let leaks: Leak[] = findLeaks(scope);
  for (let i = 0; i < 40 && leaks.length > 0; i++) {
    await sleep(100);
    leaks = findLeaks(scope);
  }
  reapLeaks(leaks);

  // Docker leaves the (empty) cgroup parent behind in every hierarchy, as it does with runc.
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const dir = join('/sys/fs/cgroup', h, CGROUP_PARENT);
    if (!existsSync(dir)) continue;
    try {
      rmdirSync(dir);
    } catch (e) {
      problems.push(`cgroup ${dir} cannot be removed (${(e as NodeJS.ErrnoException).code}): a container's cgroup or process remains`);
    }
  }
  const keep = process.env['BERTH_TEST_DOCKER_LOGS'];
  if (keep) {
    mkdirSync(keep, { recursive: true });
    for (const d of daemons) cpSync(d.log, join(keep, `${d.name}.log`));
  }
  try {
    detachMountsUnder(work);
    rmSync(work, { recursive: true, force: true });
  } catch (e) {
    problems.push(String(e));
  }
  // A shim's socket is /run/containerd/s/<sha256 of "<containerd address>/<namespace>/<id>">
  // (containerd 1.6); the shim removes it when it exits.
  for (const id of containerIds) {
    const sock = join('/run/containerd/s', createHash('sha256').update(join(work, 'containerd.sock'), 'utf8').update(`/moby/${id}`).digest('hex'));
    if (!existsSync(sock)) continue;
    problems.push(`shim socket ${sock} of container ${id} remains`);
    rmSync(sock, { force: true });
  }
  // containerd puts shim sockets in /run/containerd/s and dockerd scans /run/docker/plugins
  // whatever their roots are; remove those dirs if they are new and empty.
  for (const d of HOST_DIRS) {
    if (hostBefore!.dirs[d] || !existsSync(d)) continue;
    try {
      rmdirSync(d);
    } catch (e) {
      problems.push(`${d} was made by the test and is not empty (${(e as NodeJS.ErrnoException).code}): ${readdirSync(d).join(', ')}`);
    }
  }

  const now = snapshotHost();
  // Other berth tests running at the same time may make berth-oci's default parent
  // (/sys/fs/cgroup/*/berth); this file's containers are found by id below wherever they are.
  const newCgroups = now.berthCgroups.filter((c) => !hostBefore!.berthCgroups.includes(c));
  const ours = newCgroups.filter((c) => c.includes(CGROUP_PARENT) || containerIds.some((id) => c.includes(id)));
  if (ours.length > 0) problems.push(`berth cgroups appeared: ${ours.join(', ')}`);
  if (newCgroups.length > ours.length) process.stderr.write(`docker.test: note: other berth cgroups appeared meanwhile: ${newCgroups.filter((c) => !ours.includes(c)).join(', ')}\n`);
  const newLinks = now.links.filter((l) => !hostBefore!.links.includes(l));
  if (newLinks.length > 0) problems.push(`network interfaces appeared: ${newLinks.join(', ')}`);
  if (now.etcDockerKey && !hostBefore!.etcDockerKey) problems.push('/etc/docker/key.json appeared');
  const late = findLeaks({ paths: [work], ids: [CGROUP_PARENT, ...containerIds], roots: [] });
  reapLeaks(late);
  assert.equal([describeLeaks(leaks), describeLeaks(late), ...problems].filter(Boolean).join('\n'), '', 'the docker tests left things behind');
});

// --- the tests ---

test('docker run --rm: output, the cgroup parent, exit codes', { skip: SKIP }, async () => {
  const r = await docker(['run', '--rm', ...RUN, IMAGE, 'sh', '-c', 'echo hi; cat /proc/1/cgroup']);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /^hi\n/);
  assert.match(r.stdout, new RegExp(`:/${CGROUP_PARENT}/[0-9a-f]{64}$`, 'm'), 'pid 1 is in the cgroup dockerd asked for');
  const e = await docker(['run', '--rm', ...RUN, IMAGE, 'sh', '-c', 'exit 7']);
  assert.equal(e.code, 7, show(e));
});

test('docker run -d, exec, ps, update, logs, stop, rm', { skip: SKIP }, async () => {
  const r = await docker(['run', '-d', ...RUN, IMAGE, 'sh', '-c', 'echo started; exec sleep 300']);
  assert.equal(r.code, 0, show(r));
  const id = r.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/, show(r));
  const e = await docker(['exec', id, 'sh', '-c', 'echo in']);
  assert.equal(e.code, 0, show(e));
  assert.equal(e.stdout, 'in\n');
  const code = await docker(['exec', id, 'sh', '-c', 'exit 5']);
  assert.equal(code.code, 5, show(code));

  const ps = await docker(['exec', id, 'ps']);
  assert.equal(ps.code, 0, show(ps));
  assert.match(ps.stdout, /^\s*1\s+\S+\s+sleep 300\s*$/m, `pid 1 is the container's process\n${ps.stdout}`);
  const procs = ps.stdout.split('\n').slice(1).filter(Boolean);
  assert.ok(procs.length <= 3, `ps sees only the container's processes (sleep, ps)\n${ps.stdout}`);
  assert.doesNotMatch(ps.stdout, /dockerd|containerd/);

  if (!SKIP_TTY) {
    const t = await dockerInTerminal(['exec', '-t', id, 'tty']);
    assert.equal(t.code, 0, show(t));
    assert.match(t.stdout, /\/dev\/pts\/\d+/, show(t));
  }

  // Docker sends cpu.shares 0 ("not set"): the container keeps the kernel's default 1024.
  const cpuFile = '/sys/fs/cgroup/cpu/cpu.shares';
  const before = await docker(['exec', id, 'cat', cpuFile]);
  assert.equal(before.code, 0, show(before));
  assert.equal(before.stdout.trim(), '1024', `cpu.shares of a container without --cpu-shares\n${show(before)}`);
  // `docker update` sends every memory and cpu field, 0 for those it leaves alone.
  const up = await docker(['update', '--memory', '96m', '--memory-swap', '-1', '--cpu-shares', '512', id]);
  assert.equal(up.code, 0, show(up));
  const after = await docker(['exec', id, 'cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes', cpuFile]);
  assert.equal(after.code, 0, show(after));
  assert.deepEqual(after.stdout.split('\n').filter(Boolean), [String(96 * 1024 * 1024), '512'], show(after));
  const pids = await docker(['update', '--pids-limit', '40', id]);
  assert.equal(pids.code, 0, show(pids));
  const kept = await docker(['exec', id, 'cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/pids/pids.max']);
  assert.deepEqual(kept.stdout.split('\n').filter(Boolean), [String(96 * 1024 * 1024), '40'], `an update of pids keeps the memory limit\n${show(kept)}`);

  const logs = await docker(['logs', id]);
  assert.equal(logs.code, 0, show(logs));
  assert.equal(logs.stdout, 'started\n');

  // sleep as pid 1 has no SIGTERM handler, so the kernel ignores SIGTERM: SIGKILL after 2 s.
  const s = await docker(['stop', '-t', '2', id]);
  assert.equal(s.code, 0, show(s));
  const st = await docker(['inspect', '-f', '{{.State.Running}} {{.State.ExitCode}}', id]);
  assert.equal(st.code, 0, show(st));
  assert.match(st.stdout.trim(), /^false (137|143)$/, show(st));

  const rm = await docker(['rm', id]);
  assert.equal(rm.code, 0, show(rm));
  const gone = await docker(['ps', '-aq', '--no-trunc']);
  assert.ok(!gone.stdout.includes(id), 'docker rm removed the container');
  for (const h of ['memory', 'pids', 'cpu']) {
    const dir = join('/sys/fs/cgroup', h, CGROUP_PARENT, id);
    assert.ok(!existsSync(dir), `the runtime removed ${dir}`);
  }
});

test('docker run -t through a terminal', { skip: SKIP_TTY }, async () => {
  // The client sends its terminal size after the start; wait for it rather than race it.
  const waitSize = 'i=0; while [ $i -lt 100 ]; do s=$(stty size 2>/dev/null); case "$s" in [1-9]*) break;; esac; sleep 0.05; i=$((i+1)); done';
  const r = await dockerInTerminal(['run', '--rm', '-t', ...RUN, IMAGE, 'sh', '-c', `tty; ${waitSize}; echo "size=$s"; exit 3`]);
  assert.equal(r.code, 3, show(r));
  assert.match(r.stdout, /\/dev\/(pts\/0|console)\b/, show(r));
  assert.match(r.stdout, /size=24 80/, `the terminal size reached the container\n${show(r)}`);
});

test('docker run -it: what is typed reaches the container', { skip: SKIP_TTY }, async () => {
  const cmd = `stty rows 24 cols 80; exec ${shellQuote([DOCKER!, 'run', '--rm', '-i', '-t', ...RUN, IMAGE, 'sh', '-c', 'echo ready; read x; echo "got=$x"'])}`;
  const child = spawn(SCRIPT!, ['-qec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: clientEnv(), cwd: work });
  child.stdin!.on('error', () => undefined);
  let out = '';
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  const timer = setTimeout(() => child.kill('SIGKILL'), CMD_MS);
  try {
    let typed = false;
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (!typed && /ready/.test(out)) {
        typed = true;
        child.stdin!.write('hello\n');
      }
    });
    const code = await exited;
    const shown = `exit=${code}\nstdout: ${out}\nstderr: ${err}`;
    assert.equal(code, 0, shown);
    assert.match(out, /got=hello/, shown);
  } finally {
    clearTimeout(timer);
    child.stdin!.destroy();
  }
});

test('docker run --memory --pids-limit: the container sees its limits', { skip: SKIP }, async () => {
  const read = (v1: string, v2: string) => `cat ${v1} 2>/dev/null || cat ${v2}`;
  const r = await docker([
    'run', '--rm', ...RUN, '--memory', '64m', '--pids-limit', '50', IMAGE, 'sh', '-c',
    `${read('/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/memory.max')}; ${read('/sys/fs/cgroup/pids/pids.max', '/sys/fs/cgroup/pids.max')}`,
  ]);
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(r.stdout.split('\n').filter(Boolean), [String(64 * 1024 * 1024), '50'], show(r));
});

test('docker run --privileged: capabilities the host withholds are left out, not fatal', { skip: SKIP }, async () => {
  const r = await docker(['run', '--rm', ...RUN, '--privileged', IMAGE, 'sh', '-c', 'grep CapEff /proc/self/status']);
  // runc 1.1.5 fails with capset EPERM where the host withholds a capability
  if (runtimeBin().endsWith('/runc') && r.code !== 0) return;
  assert.equal(r.code, 0, show(r));
  const eff = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(r.stdout)![1]}`);
  const bnd = BigInt(`0x${/CapBnd:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`);
  assert.equal(eff & ~bnd, 0n, "nothing outside berth's own bounding set");
  assert.ok(eff & (1n << 21n), 'CAP_SYS_ADMIN, as --privileged asks');
});
