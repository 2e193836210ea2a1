// A private Docker for tests: Debian's containerd and dockerd with every root, socket and
// state dir in one temp dir (the same start-up as test/docker.test.ts, reduced to what image
// tests need: vfs storage, no iptables, no bridge, the default runtime runc, a cgroup parent
// named after the run). stop() removes containers, stops both daemons, reaps leftovers and
// returns what could not be cleaned, for the test to assert on.
import { spawn, type ChildProcess } from 'node:child_process';
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
/** Paths the daemons make outside their configured dirs (compiled in); removed if new. */
const HOST_DIRS = ['/run/containerd/s', '/run/containerd', '/run/docker/plugins', '/run/docker'];

function which(cmd: string): string | undefined {
  for (const d of (process.env['PATH'] ?? '/usr/bin:/bin').split(':')) if (existsSync(join(d, cmd))) return join(d, cmd);
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

/** Why a private Docker cannot run here, or false. */
export function dockerSkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  const missing = Object.entries(BINS).filter(([, p]) => !p).map(([n]) => n);
  return missing.length > 0 ? `not installed: ${missing.join(', ')} (apt-get install docker.io containerd runc)` : false;
}

interface Daemon {
  name: string;
  child: ChildProcess;
  log: string;
  exited: Promise<void>;
  running: boolean;
}

export interface PrivateDocker {
  /** The temp dir holding everything (daemon roots, logs, client config). */
  work: string;
  /** Runs the docker CLI against this daemon; never rejects on a failing command. */
  docker(args: string[], opts?: { timeoutMs?: number; input?: string | Buffer }): Promise<RunResult>;
  /** Stops everything and removes the temp dir; returns problems (empty when clean). */
  stop(): Promise<string[]>;
}

export async function startDocker(label: string): Promise<PrivateDocker> {
  const work = mkdtempSync(join(tmpdir(), `berth-test-${label}-docker-`));
  const hostDirsBefore = Object.fromEntries(HOST_DIRS.map((d) => [d, existsSync(d)]));
  const cgroupParent = `berth-test-${label}-${process.pid}`;
  const startedAt = Math.floor(Date.now() / 1000) - 1;
  for (const d of ['containerd/root', 'containerd/state', 'docker/data', 'docker/exec', 'client']) mkdirSync(join(work, d), { recursive: true });
  const sock = join(work, 'docker.sock');
  const daemons: Daemon[] = [];

  const startDaemon = (name: string, bin: string, args: string[]): Daemon => {
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
      if (!d.running) throw new Error(`${d.name} exited while starting (exit ${d.child.exitCode}); log:\n${logTail(d)}`);
      if (Date.now() > deadline) throw new Error(`${d.name} not ready after ${DAEMON_START_MS} ms; log:\n${logTail(d)}`);
      await sleep(100);
    }
  };
  const stopDaemon = async (d: Daemon): Promise<void> => {
    if (!d.running) return;
    d.child.kill('SIGTERM');
    const timer = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
    if ((await Promise.race([d.exited.then(() => 'exited' as const), timer(DAEMON_STOP_MS)])) === 'timeout') {
      d.child.kill('SIGKILL');
      await Promise.race([d.exited, timer(5_000)]);
    }
  };
  const ping = (): Promise<boolean> =>
    new Promise((resolve) => {
      if (!existsSync(sock)) return resolve(false);
      const req = request({ socketPath: sock, path: '/_ping', timeout: 2_000 }, (res) => {
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
  const clientEnv = (): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: join(work, 'client') };
    delete env['DOCKER_CONTEXT'];
    delete env['DOCKER_TLS_VERIFY'];
    return env;
  };
  const docker = (args: string[], opts: { timeoutMs?: number; input?: string | Buffer } = {}): Promise<RunResult> =>
    runCommand(BINS.docker!, args, work, { timeoutMs: opts.timeoutMs ?? CMD_MS, env: clientEnv(), input: opts.input });

  const stop = async (): Promise<string[]> => {
    const problems: string[] = [];
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
    // Docker leaves the (empty) cgroup parent behind, as docker.test notes; it is removed below.
    const scope = { paths: [work], ids: containerIds, roots: [] };
    let leaks = findLeaks(scope);
    for (let i = 0; i < 40 && leaks.length > 0; i++) {
      await sleep(100);
      leaks = findLeaks(scope);
    }
    if (leaks.length > 0) problems.push(describeLeaks(leaks));
    reapLeaks(leaks);
    for (const h of existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup') : []) {
      const dir = join('/sys/fs/cgroup', h, cgroupParent);
      if (!existsSync(dir)) continue;
      try {
        rmdirSync(dir);
      } catch (e) {
        problems.push(`cgroup ${dir} cannot be removed (${(e as NodeJS.ErrnoException).code})`);
      }
    }
    const keep = process.env['BERTH_TEST_DOCKER_LOGS'];
    if (keep) {
      mkdirSync(keep, { recursive: true });
      for (const d of daemons) writeFileSync(join(keep, `${label}-${d.name}.log`), readFileSync(d.log));
    }
    try {
      detachMountsUnder(work);
      rmSync(work, { recursive: true, force: true });
    } catch (e) {
      problems.push(String(e));
    }
    for (const id of containerIds) {
      // containerd 1.6 names a shim's socket after sha256("<address>/<namespace>/<id>"); the shim removes it.
      const s = join('/run/containerd/s', createHash('sha256').update(join(work, 'containerd.sock'), 'utf8').update(`/moby/${id}`).digest('hex'));
      if (existsSync(s)) {
        problems.push(`shim socket ${s} of container ${id} remains`);
        rmSync(s, { force: true });
      }
    }
    for (const d of HOST_DIRS) {
      if (hostDirsBefore[d] || !existsSync(d)) continue;
      try {
        rmdirSync(d);
      } catch (e) {
        // Another test's daemon may be using it right now; only an empty dir is ours to remove.
        if ((e as NodeJS.ErrnoException).code !== 'ENOTEMPTY') problems.push(`${d}: ${(e as NodeJS.ErrnoException).code}`);
      }
    }
    return problems;
  };

  try {
    const q = (s: string) => JSON.stringify(s);
    const containerdToml = join(work, 'containerd.toml');
    writeFileSync(
      containerdToml,
      [
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
      ].join('\n'),
    );
    const ctrd = startDaemon('containerd', BINS.containerd!, ['--config', containerdToml]);
    await waitReady(ctrd, async () => existsSync(join(work, 'containerd.sock')) && /containerd successfully booted/.test(readFileSync(ctrd.log, 'utf8')));
    // The key file dockerd 20.10 would otherwise write to /etc/docker/key.json.
    const daemonJson = join(work, 'daemon.json');
    writeFileSync(daemonJson, JSON.stringify({ 'deprecated-key-path': join(work, 'docker', 'key.json') }));
    const dockerd = startDaemon('dockerd', BINS.dockerd!, [
      '--config-file', daemonJson,
      '--containerd', join(work, 'containerd.sock'),
      '--data-root', join(work, 'docker', 'data'),
      '--exec-root', join(work, 'docker', 'exec'),
      '--pidfile', join(work, 'docker', 'docker.pid'),
      '-H', `unix://${sock}`,
      '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--bridge=none', '--userland-proxy=false',
      '--storage-driver=vfs',
      '--exec-opt', 'native.cgroupdriver=cgroupfs',
      '--cgroup-parent', `/${cgroupParent}`,
    ]);
    await waitReady(dockerd, ping);
  } catch (err) {
    const problems = await stop();
    if (problems.length > 0) (err as Error).message += `\ncleanup: ${problems.join('\n')}`;
    throw err;
  }
  return { work, docker, stop };
}
