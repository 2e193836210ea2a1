// A private Docker: Debian's containerd and dockerd with every root, socket and state dir in
// one work dir, no iptables, no bridge (unless asked for: `bridge`), and every container under a cgroup parent named after
// the run, so that nothing is shared with a Docker the host may run and everything can be
// found again. stop() removes the containers, stops both daemons, reaps what they left and
// returns what could not be cleaned or should not have appeared on the host, for the caller
// to assert on. BERTH_TEST_DOCKER_LOGS=<dir> keeps the daemons' logs there.
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, sleep, type RunResult } from './runtime.js';
import { describeLeaks, detachMountsUnder, findLeaks, reapLeaks } from './leaks.js';

const DAEMON_START_MS = 30_000;
const DAEMON_STOP_MS = 20_000;
const CMD_MS = 120_000;
/** Where containerd 1.6 puts shim sockets whatever its root and state are (compiled in). */
const SHIM_SOCKETS = '/run/containerd/s';
/** Paths the daemons make outside their configured dirs, children first; removed if new. */
const HOST_DIRS = [SHIM_SOCKETS, '/run/containerd', '/run/docker/plugins', '/run/docker'];

function which(cmd: string): string | undefined {
  for (const d of (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) if (existsSync(join(d, cmd))) return join(d, cmd);
  return undefined;
}

const BINS = {
  dockerd: which('dockerd'),
  containerd: which('containerd'),
  'containerd-shim-runc-v2': which('containerd-shim-runc-v2'),
  runc: which('runc'),
  // Debian's client matches its daemon; any other client negotiates the API version down.
  docker: existsSync('/usr/bin/docker') ? '/usr/bin/docker' : which('docker'),
  // Only for `bridge`: Docker's own default network, its rules and its proxy.
  iptables: which('iptables'),
  'iptables-save': which('iptables-save'),
  'iptables-restore': which('iptables-restore'),
  'docker-proxy': which('docker-proxy'),
  ip: which('ip'),
};

/**
 * Why a private Docker cannot run here, or false. Containers need the shim, and runc unless
 * they all run with a runtime of `PrivateDockerOptions.runtimes` (`runc: false`); images alone
 * (`containers: false`) need neither.
 */
export function dockerSkipReason(needs: { containers?: boolean; runc?: boolean; bridge?: boolean } = {}): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  const containers = needs.containers ?? true;
  const runc = containers && (needs.runc ?? true);
  const wanted: (keyof typeof BINS)[] = ['dockerd', 'containerd', 'docker'];
  if (containers) wanted.push('containerd-shim-runc-v2');
  if (runc) wanted.push('runc');
  if (needs.bridge) wanted.push('iptables', 'iptables-save', 'iptables-restore', 'docker-proxy', 'ip');
  const missing = wanted.filter((n) => !BINS[n]);
  return missing.length > 0 ? `not installed: ${missing.join(', ')} (apt-get install docker.io containerd${runc ? ' runc' : ''})` : false;
}

export interface PrivateDockerOptions {
  /** Names the temp dir, the cgroup parent and the kept logs. */
  label: string;
  /**
   * vfs (the default) copies each layer: slow, but it needs no kernel support and mounts
   * nothing. overlay2 is Docker's default, the one to measure Docker by.
   */
  storageDriver?: 'vfs' | 'overlay2';
  /** OCI runtimes by name, for `docker run --runtime <name>`; runc stays the default. */
  runtimes?: Record<string, string>;
  /** Where everything goes, kept by stop() for the caller (who may want the logs); default a temp dir that stop() removes. */
  workDir?: string;
  /**
   * Docker's default bridge network the way Docker runs it (iptables rules, masquerade,
   * userland proxy), on a test bridge made here instead of docker0/172.17.0.0/16. Off (the
   * default): no bridge, no iptables. stop() removes the bridge and the iptables rules and
   * chains dockerd added (those naming DOCKER, the bridge or its subnet: never anyone
   * else's), and puts back the FORWARD policy and net.ipv4.ip_forward Docker changes.
   * While the daemon runs, the host's iptables FORWARD policy is DROP (Docker sets it).
   */
  bridge?: DockerBridgeOptions;
}

export interface DockerBridgeOptions {
  /** The bridge to make (must not exist), e.g. `berthtestdk0`. */
  name: string;
  /** The bridge's address with its prefix, e.g. `172.31.250.1/24`; containers get the rest. */
  address: string;
  /** Docker's userland proxy for published ports (Docker's default: true). */
  userlandProxy?: boolean;
}

export interface PrivateDocker {
  /** The dir holding everything (daemon roots, logs, client config). */
  work: string;
  /** The cgroup every container's cgroup is made under (`/<cgroupParent>/<id>`). */
  cgroupParent: string;
  /** The client's environment for this daemon, for running the CLI some other way. */
  env: NodeJS.ProcessEnv;
  /** The client's argv for these arguments (with `env`), for running the CLI some other way. */
  argv(args: string[]): string[];
  /** Runs the docker CLI against this daemon; never rejects on a failing command. */
  docker(args: string[], opts?: { timeoutMs?: number; input?: string | Buffer }): Promise<RunResult>;
  /** Stops everything and removes the temp dir (not a given workDir); returns problems (empty when clean). */
  stop(): Promise<string[]>;
}

interface Daemon {
  name: string;
  child: ChildProcess;
  log: string;
  exited: Promise<void>;
  running: boolean;
}

/** What the daemons could leave on the host outside the work dir, whatever they are told. */
interface HostSnapshot {
  berthCgroups: string[];
  links: string[];
  dirs: Record<string, boolean>;
  etcDockerKey: boolean;
}

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

function containerdConfig(work: string): string {
  const q = (s: string): string => JSON.stringify(s);
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

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (!existsSync(socket)) return resolve(false);
    const req = request({ socketPath: socket, path: '/_ping', timeout: 2_000 }, (res) => {
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

const IPTABLES_TABLES = ['filter', 'nat'] as const;

/** One table of `iptables-save`: chain → policy ('-' for user chains), and the rule lines. */
interface IptablesTable {
  chains: Map<string, string>;
  rules: string[];
}

function iptablesSave(table: string): IptablesTable {
  const out = execFileSync(BINS['iptables-save']!, ['-t', table], { encoding: 'utf8', timeout: 20_000 });
  const chains = new Map<string, string>();
  const rules: string[] = [];
  for (const line of out.split('\n')) {
    const chain = /^:(\S+) (\S+)/.exec(line);
    if (chain) chains.set(chain[1]!, chain[2]!);
    else if (line.startsWith('-A ')) rules.push(line);
  }
  return { chains, rules };
}

interface HostNetState {
  bridge: DockerBridgeOptions;
  before: Record<string, IptablesTable>;
  ipForward: string;
}

const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';

/** Records what Docker will change, then makes the bridge; undoes its own part on failure. */
function setUpBridge(bridge: DockerBridgeOptions): HostNetState {
  if (existsSync(join('/sys/class/net', bridge.name))) throw new Error(`private docker: network interface ${bridge.name} already exists; remove it (ip link del ${bridge.name}) or choose another bridge name`);
  const before = Object.fromEntries(IPTABLES_TABLES.map((t) => [t, iptablesSave(t)]));
  const ipForward = readFileSync(IP_FORWARD, 'utf8').trim();
  try {
    execFileSync(BINS.ip!, ['-batch', '-'], {
      input: [`link add ${bridge.name} type bridge`, `addr add ${bridge.address} dev ${bridge.name}`, `link set ${bridge.name} up`, ''].join('\n'),
      stdio: ['pipe', 'ignore', 'pipe'],
      timeout: 20_000,
    });
  } catch (err) {
    spawnSync(BINS.ip!, ['link', 'del', bridge.name], { stdio: 'ignore' });
    throw new Error(`private docker: cannot make bridge ${bridge.name} with ${bridge.address}: ${String((err as { stderr?: Buffer }).stderr ?? err)}`);
  }
  return { bridge, before, ipForward };
}

function ipv4(text: string): number | undefined {
  const o = text.split('.').map(Number);
  return o.length === 4 && o.every((x) => Number.isInteger(x) && x >= 0 && x <= 255) ? o.reduce((a, x) => a * 256 + x, 0) : undefined;
}

/** Whether an iptables address word ("172.31.250.2/32", "172.31.250.0/24") lies in the subnet of cidr ("172.31.250.1/24"). */
function inSubnet(word: string, cidr: string): boolean {
  const [addr, bits] = cidr.split('/');
  const [waddr, wbits = '32'] = word.split('/');
  const n = Number(bits);
  const a = ipv4(addr!);
  const w = ipv4(waddr!);
  if (a === undefined || w === undefined || Number(wbits) < n) return false;
  const size = 2 ** (32 - n);
  return Math.floor(a / size) === Math.floor(w / size);
}

/**
 * Removes the bridge and what dockerd added to iptables, restores the FORWARD policy and
 * ip_forward; returns what could not be done. A rule or chain is dockerd's when it is new and
 * names DOCKER, the bridge or its subnet: others (netavark's, say) added meanwhile stay.
 */
function restoreHostNet(state: HostNetState): string[] {
  const problems: string[] = [];
  const { name } = state.bridge;
  const ours = (line: string): boolean => /DOCKER/.test(line) || line.split(/\s+/).some((w) => w === name || inSubnet(w, state.bridge.address));
  const restore = (table: string, lines: string[]): void => {
    if (lines.length === 0) return;
    try {
      execFileSync(BINS['iptables-restore']!, ['--noflush'], { input: `*${table}\n${lines.join('\n')}\nCOMMIT\n`, stdio: ['pipe', 'ignore', 'pipe'], timeout: 20_000 });
    } catch {
      // One by one, so that one rule changed meanwhile does not keep the others.
      for (const l of lines) {
        try {
          execFileSync(BINS['iptables-restore']!, ['--noflush'], { input: `*${table}\n${l}\nCOMMIT\n`, stdio: ['pipe', 'ignore', 'pipe'], timeout: 20_000 });
        } catch (e) {
          problems.push(`iptables -t ${table}: cannot undo Docker's "${l}": ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`);
        }
      }
    }
  };
  for (const table of IPTABLES_TABLES) {
    const before = state.before[table]!;
    let now: IptablesTable;
    try {
      now = iptablesSave(table);
    } catch (e) {
      problems.push(`iptables-save -t ${table}: ${String(e)}`);
      continue;
    }
    const newChains = [...now.chains.keys()].filter((c) => !before.chains.has(c) && c.startsWith('DOCKER'));
    // Rules that were there before are counted off one by one (a duplicate may be new).
    const left = new Map<string, number>();
    for (const r of before.rules) left.set(r, (left.get(r) ?? 0) + 1);
    const deletes: string[] = [];
    for (const r of now.rules) {
      const n = left.get(r) ?? 0;
      if (n > 0) {
        left.set(r, n - 1);
        continue;
      }
      const chain = r.split(' ')[1]!;
      if (newChains.includes(chain) || !ours(r)) continue;
      deletes.push(`-D${r.slice(2)}`);
    }
    restore(table, deletes.reverse());
    restore(table, [...newChains.map((c) => `-F ${c}`), ...newChains.map((c) => `-X ${c}`)]);
    for (const [chain, policy] of before.chains) {
      if (policy === '-' || now.chains.get(chain) === policy) continue;
      try {
        execFileSync(BINS.iptables!, ['-t', table, '-P', chain, policy], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
      } catch (e) {
        problems.push(`iptables -t ${table} -P ${chain} ${policy}: ${String(e)}`);
      }
    }
  }
  try {
    if (readFileSync(IP_FORWARD, 'utf8').trim() !== state.ipForward) writeFileSync(IP_FORWARD, state.ipForward);
  } catch (e) {
    problems.push(`${IP_FORWARD}: cannot restore ${state.ipForward}: ${String(e)}`);
  }
  if (existsSync(join('/sys/class/net', name))) {
    try {
      execFileSync(BINS.ip!, ['link', 'del', name], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
    } catch (e) {
      problems.push(`ip link del ${name}: ${String(e)}`);
    }
  }
  return problems;
}

export async function startDocker(options: PrivateDockerOptions): Promise<PrivateDocker> {
  const { label, storageDriver = 'vfs', runtimes = {} } = options;
  const note = (msg: string): void => void process.stderr.write(`private docker ${label}: ${msg}\n`);
  const hostBefore = snapshotHost();
  const startedAt = Math.floor(Date.now() / 1000) - 1;
  const ownsWork = options.workDir === undefined;
  const work = options.workDir ?? mkdtempSync(join(tmpdir(), `berth-test-${label}-docker-`));
  const cgroupParent = `berth-test-${label}-${process.pid}`;
  for (const d of ['containerd/root', 'containerd/state', 'docker/data', 'docker/exec', 'client']) mkdirSync(join(work, d), { recursive: true });
  const socket = join(work, 'docker.sock');
  const containerdSocket = join(work, 'containerd.sock');
  const daemons: Daemon[] = [];
  const bridgeNet = options.bridge;
  let hostNet: HostNetState | undefined;

  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(work, 'client') };
  delete env['DOCKER_CONTEXT'];
  delete env['DOCKER_TLS_VERIFY'];
  const argv = (args: string[]): string[] => [BINS.docker!, ...args];
  const docker = (args: string[], opts: { timeoutMs?: number; input?: string | Buffer } = {}): Promise<RunResult> =>
    runCommand(BINS.docker!, args, work, { timeoutMs: opts.timeoutMs ?? CMD_MS, env, input: opts.input });

  const startDaemon = (name: string, bin: string, args: string[]): Daemon => {
    const log = join(work, `${name}.log`);
    const fd = openSync(log, 'w');
    try {
      const child = spawn(bin, args, { stdio: ['ignore', fd, fd], cwd: work });
      const d: Daemon = { name, child, log, running: true, exited: Promise.resolve() };
      d.exited = new Promise((resolve) => {
        const done = (): void => {
          d.running = false;
          resolve();
        };
        child.on('exit', done);
        child.on('error', done);
      });
      daemons.push(d);
      return d;
    } finally {
      closeSync(fd);
    }
  };
  const logTail = (d: Daemon): string => {
    try {
      return readFileSync(d.log, 'utf8').split('\n').slice(-30).join('\n');
    } catch {
      return '(no log)';
    }
  };
  const waitReady = async (d: Daemon, ready: () => Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + DAEMON_START_MS;
    while (!(await ready())) {
      if (!d.running) throw new Error(`${d.name} exited while starting (exit ${d.child.exitCode}, signal ${d.child.signalCode}); log:\n${logTail(d)}`);
      if (Date.now() > deadline) throw new Error(`${d.name} not ready after ${DAEMON_START_MS} ms; log:\n${logTail(d)}`);
      await sleep(100);
    }
  };
  const stopDaemon = async (d: Daemon): Promise<void> => {
    if (!d.running) return;
    d.child.kill('SIGTERM');
    const timer = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
    if ((await Promise.race([d.exited.then(() => 'exited' as const), timer(DAEMON_STOP_MS)])) === 'timeout') {
      note(`${d.name} ignored SIGTERM for ${DAEMON_STOP_MS} ms; sending SIGKILL`);
      d.child.kill('SIGKILL');
      await Promise.race([d.exited, timer(5_000)]);
    }
  };

  const stop = async (): Promise<string[]> => {
    const problems: string[] = [];
    // Every container made (--rm ones included), so that no cgroup, process or shim socket of
    // one may remain wherever the runtime put it.
    const containerIds: string[] = [];
    if (daemons.some((d) => d.name === 'dockerd' && d.running)) {
      const ev = await docker(
        ['events', '--since', String(startedAt), '--until', (Date.now() / 1000).toFixed(3), '--filter', 'type=container', '--filter', 'event=create', '--format', '{{.ID}}'],
        { timeoutMs: 20_000 },
      );
      containerIds.push(...new Set(ev.stdout.split('\n').filter((l) => /^[0-9a-f]{64}$/.test(l))));
      const ps = await docker(['ps', '-aq'], { timeoutMs: 20_000 });
      const left = ps.stdout.split('\n').filter(Boolean);
      if (left.length > 0) await docker(['rm', '-f', ...left], { timeoutMs: 30_000 });
    }
    for (const d of [...daemons].reverse()) await stopDaemon(d);
    for (const d of daemons) if (d.running) problems.push(`${d.name} (pid ${d.child.pid}) survived SIGKILL`);

    if (hostNet) {
      problems.push(...restoreHostNet(hostNet));
      hostNet = undefined;
    }
    // Shims exit once their task is deleted; give stragglers a moment before calling them leaks.
    const scope = { paths: [work], ids: containerIds, roots: [] };
    let leaks = findLeaks(scope);
    for (let i = 0; i < 40 && leaks.length > 0; i++) {
      await sleep(100);
      leaks = findLeaks(scope);
    }
    if (leaks.length > 0) problems.push(describeLeaks(leaks));
    reapLeaks(leaks);

    // Docker leaves the (empty) cgroup parent behind in every hierarchy, as it does with runc.
    for (const h of existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup') : []) {
      const dir = join('/sys/fs/cgroup', h, cgroupParent);
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
      for (const d of daemons) writeFileSync(join(keep, `${label}-${d.name}.log`), readFileSync(d.log));
    }
    try {
      detachMountsUnder(work);
      if (ownsWork) rmSync(work, { recursive: true, force: true });
    } catch (e) {
      problems.push(String(e));
    }
    // A shim's socket is named after sha256("<containerd address>/<namespace>/<id>"); the shim
    // removes it when it exits.
    for (const id of containerIds) {
      const s = join(SHIM_SOCKETS, createHash('sha256').update(containerdSocket, 'utf8').update(`/moby/${id}`).digest('hex'));
      if (!existsSync(s)) continue;
      problems.push(`shim socket ${s} of container ${id} remains`);
      rmSync(s, { force: true });
    }
    for (const d of HOST_DIRS) {
      if (hostBefore.dirs[d] || !existsSync(d)) continue;
      try {
        rmdirSync(d);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // Another private daemon may be using the dir right now: shim sockets not ours (ours
        // were looked for by name above), and the host dirs in it kept for that reason, are
        // its. Anything else was left by ours.
        const entries = code === 'ENOTEMPTY' ? readdirSync(d) : [];
        const unexplained = d === SHIM_SOCKETS ? [] : entries.filter((n) => !HOST_DIRS.includes(join(d, n)));
        if (code !== 'ENOTEMPTY' || unexplained.length > 0) problems.push(`${d} was made by the daemons and cannot be removed (${code}): ${entries.join(', ')}`);
      }
    }

    const now = snapshotHost();
    // Other berth tests may make berth-oci's default parent (/sys/fs/cgroup/*/berth) meanwhile;
    // these containers are known by their parent and their ids, wherever they are.
    const newCgroups = now.berthCgroups.filter((c) => !hostBefore.berthCgroups.includes(c));
    const ours = newCgroups.filter((c) => c.includes(cgroupParent) || containerIds.some((id) => c.includes(id)));
    if (ours.length > 0) problems.push(`berth cgroups appeared: ${ours.join(', ')}`);
    if (newCgroups.length > ours.length) note(`other berth cgroups appeared meanwhile: ${newCgroups.filter((c) => !ours.includes(c)).join(', ')}`);
    const newLinks = now.links.filter((l) => !hostBefore.links.includes(l));
    if (newLinks.length > 0) problems.push(`network interfaces appeared: ${newLinks.join(', ')}`);
    if (now.etcDockerKey && !hostBefore.etcDockerKey) problems.push('/etc/docker/key.json appeared');
    const late = findLeaks({ paths: [work], ids: [cgroupParent, ...containerIds], roots: [] });
    if (late.length > 0) problems.push(describeLeaks(late));
    reapLeaks(late);
    return problems;
  };

  try {
    if (bridgeNet) hostNet = setUpBridge(bridgeNet);
    const containerdToml = join(work, 'containerd.toml');
    writeFileSync(containerdToml, containerdConfig(work));
    const ctrd = startDaemon('containerd', BINS.containerd!, ['--config', containerdToml]);
    await waitReady(ctrd, async () => existsSync(containerdSocket) && /containerd successfully booted/.test(readFileSync(ctrd.log, 'utf8')));
    // The key file dockerd 20.10 would otherwise write to /etc/docker/key.json.
    const daemonJson = join(work, 'daemon.json');
    writeFileSync(daemonJson, JSON.stringify({ 'deprecated-key-path': join(work, 'docker', 'key.json') }));
    const dockerd = startDaemon('dockerd', BINS.dockerd!, [
      '--config-file', daemonJson,
      '--containerd', containerdSocket,
      '--data-root', join(work, 'docker', 'data'),
      '--exec-root', join(work, 'docker', 'exec'),
      '--pidfile', join(work, 'docker', 'docker.pid'),
      '-H', `unix://${socket}`,
      ...(bridgeNet
        ? ['--iptables=true', '--ip6tables=false', '--ip-masq=true', `--bridge=${bridgeNet.name}`, `--userland-proxy=${bridgeNet.userlandProxy ?? true}`]
        : ['--iptables=false', '--ip6tables=false', '--ip-masq=false', '--bridge=none', '--userland-proxy=false']),
      `--storage-driver=${storageDriver}`,
      '--exec-opt', 'native.cgroupdriver=cgroupfs',
      '--cgroup-parent', `/${cgroupParent}`,
      ...Object.entries(runtimes).flatMap(([name, path]) => ['--add-runtime', `${name}=${path}`]),
    ]);
    await waitReady(dockerd, () => ping(socket));
  } catch (err) {
    const problems = await stop();
    if (problems.length > 0) (err as Error).message += `\ncleanup: ${problems.join('\n')}`;
    throw err;
  }
  return { work, cgroupParent, env, argv, docker, stop };
}
