// A private Docker: Debian's containerd and dockerd with every root, socket and state dir in
// one work dir, no iptables, no bridge, and every container under a cgroup parent named after
// the run, so that nothing is shared with a Docker the host may run and everything can be
// found again. stop() removes the containers, stops both daemons, reaps what they left and
// returns what could not be cleaned or should not have appeared on the host, for the caller
// to assert on. BERTH_TEST_DOCKER_LOGS=<dir> keeps the daemons' logs there.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
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
};

/**
 * Why a private Docker cannot run here, or false. Containers need the shim, and runc unless
 * they all run with a runtime of `PrivateDockerOptions.runtimes` (`runc: false`); images alone
 * (`containers: false`) need neither.
 */
export function dockerSkipReason(needs: { containers?: boolean; runc?: boolean } = {}): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  const containers = needs.containers ?? true;
  const runc = containers && (needs.runc ?? true);
  const wanted: (keyof typeof BINS)[] = ['dockerd', 'containerd', 'docker'];
  if (containers) wanted.push('containerd-shim-runc-v2');
  if (runc) wanted.push('runc');
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
      '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--bridge=none', '--userland-proxy=false',
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
