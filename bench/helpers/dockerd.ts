// A private containerd + dockerd for the benchmark, everything under one work dir: containerd
// root/state/sockets, dockerd data-root (overlay2, Docker's default driver), exec-root, socket
// and key file; no iptables, no bridge. The same setup as test/docker.test.ts, minus the
// runtime under test. stop() ends both, unmounts what they left under the work dir and
// removes the host dirs they made (when new and empty).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { detachMountsUnder } from '../../test/helpers/leaks.js';

/** Paths the daemons make outside their configured dirs (compiled in). */
const HOST_DIRS = ['/run/containerd/s', '/run/containerd', '/run/docker/plugins', '/run/docker'];
const START_MS = 30_000;
const STOP_MS = 20_000;

export interface DockerBinaries {
  dockerd: string;
  containerd: string;
  docker: string;
}

export interface DockerDaemons {
  socket: string;
  /** Runs the docker CLI against this daemon. */
  run(args: string[], timeoutMs?: number): { code: number; stdout: string; stderr: string };
  /** The CLI's argv and environment for this daemon (to time the CLI without a wrapper). */
  argv(args: string[]): string[];
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

interface Daemon {
  name: string;
  child: ChildProcess;
  log: string;
  exited: Promise<void>;
  running: boolean;
}

export function findDocker(): DockerBinaries | { missing: string[] } {
  const find = (cmd: string, preferred?: string): string | undefined => {
    if (preferred && existsSync(preferred)) return preferred;
    for (const d of (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) if (existsSync(join(d, cmd))) return join(d, cmd);
    return undefined;
  };
  // Debian's client matches its daemon; another client on PATH may be newer than the API.
  const found = { dockerd: find('dockerd'), containerd: find('containerd'), docker: find('docker', '/usr/bin/docker') };
  const missing = Object.entries(found).filter(([, p]) => !p).map(([n]) => n);
  return missing.length > 0 ? { missing } : (found as DockerBinaries);
}

export async function startDocker(bins: DockerBinaries, work: string): Promise<DockerDaemons> {
  const hostDirsBefore = Object.fromEntries(HOST_DIRS.map((d) => [d, existsSync(d)]));
  for (const d of ['containerd/root', 'containerd/state', 'docker/data', 'docker/exec', 'client']) mkdirSync(join(work, d), { recursive: true });
  const socket = join(work, 'docker.sock');
  const daemons: Daemon[] = [];

  const stop = async (): Promise<void> => {
    for (const d of [...daemons].reverse()) await stopDaemon(d);
    const survivors = daemons.filter((d) => d.running).map((d) => `${d.name} (pid ${d.child.pid})`);
    detachMountsUnder(work);
    for (const d of HOST_DIRS) {
      if (hostDirsBefore[d] || !existsSync(d)) continue;
      try {
        rmdirSync(d);
      } catch {
        process.stderr.write(`bench: ${d} was made by dockerd/containerd and is not empty: ${readdirSync(d).join(', ')}\n`);
      }
    }
    if (survivors.length > 0) throw new Error(`daemons survived SIGKILL: ${survivors.join(', ')}`);
  };

  try {
    const toml = join(work, 'containerd.toml');
    writeFileSync(toml, containerdConfig(work));
    const ctrd = startDaemon(daemons, work, 'containerd', bins.containerd, ['--config', toml]);
    await waitReady(ctrd, async () => existsSync(join(work, 'containerd.sock')) && /containerd successfully booted/.test(readFileSync(ctrd.log, 'utf8')));

    // dockerd 20.10 would otherwise write its key to /etc/docker/key.json.
    const daemonJson = join(work, 'daemon.json');
    writeFileSync(daemonJson, JSON.stringify({ 'deprecated-key-path': join(work, 'docker', 'key.json') }));
    const dockerd = startDaemon(daemons, work, 'dockerd', bins.dockerd, [
      '--config-file', daemonJson,
      '--containerd', join(work, 'containerd.sock'),
      '--data-root', join(work, 'docker', 'data'),
      '--exec-root', join(work, 'docker', 'exec'),
      '--pidfile', join(work, 'docker', 'docker.pid'),
      '-H', `unix://${socket}`,
      '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--bridge=none', '--userland-proxy=false',
      '--storage-driver=overlay2',
      '--exec-opt', 'native.cgroupdriver=cgroupfs',
    ]);
    await waitReady(dockerd, () => ping(socket));
  } catch (err) {
    await stop().catch((e: unknown) => process.stderr.write(`bench: cleanup after a failed docker start: ${String(e)}\n`));
    throw err;
  }

  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(work, 'client') };
  delete env['DOCKER_CONTEXT'];
  delete env['DOCKER_TLS_VERIFY'];
  return {
    socket,
    env,
    argv: (args) => [bins.docker, '-H', `unix://${socket}`, ...args],
    run(args, timeoutMs = 120_000) {
      const r = spawnSync(bins.docker, ['-H', `unix://${socket}`, ...args], { encoding: 'utf8', env, timeout: timeoutMs });
      return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
    },
    stop,
  };
}

function startDaemon(daemons: Daemon[], work: string, name: string, bin: string, args: string[]): Daemon {
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
}

function logTail(d: Daemon, lines = 30): string {
  try {
    return readFileSync(d.log, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitReady(d: Daemon, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + START_MS;
  while (!(await ready())) {
    if (!d.running) throw new Error(`${d.name} exited while starting (exit ${d.child.exitCode}, signal ${d.child.signalCode}); log:\n${logTail(d)}`);
    if (Date.now() > deadline) throw new Error(`${d.name} not ready after ${START_MS} ms; log:\n${logTail(d)}`);
    await sleep(100);
  }
}

async function stopDaemon(d: Daemon): Promise<void> {
  if (!d.running) return;
  d.child.kill('SIGTERM');
  const timer = (ms: number) => sleep(ms, 'timeout' as const, { ref: false });
  if ((await Promise.race([d.exited.then(() => 'exited' as const), timer(STOP_MS)])) === 'timeout') {
    process.stderr.write(`bench: ${d.name} ignored SIGTERM for ${STOP_MS} ms; sending SIGKILL\n`);
    d.child.kill('SIGKILL');
    await Promise.race([d.exited, timer(5_000)]);
  }
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
