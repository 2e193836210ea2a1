// A private berthd for a test: its own persistent and runtime roots in a temp dir, its socket
// there, its log kept for failures. stop() removes every container through the API, stops
// berthd, and returns what was left behind (mounts, cgroups, monitors, state) for the test
// to assert on; kill() stops berthd with SIGKILL and leaves containers running (live-restore
// tests), restart() starts a new berthd on the same roots.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, rmSync, openSync, closeSync, mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetworkConfig } from '../../src/engine/context.js';
import { REPO, runCommand, sleep, type RunResult } from './runtime.js';
import { describeLeaks, detachMountsUnder, findLeaks, reapLeaks } from './leaks.js';
import { describeNetLeaks, netLeaks, reapNetLeaks } from './net-leaks.js';

export const BERTHD = join(REPO, 'dist', 'src', 'cli', 'berthd.js');
export const BERTH_CLI = join(REPO, 'dist', 'src', 'cli', 'berth.js');
const DOCKER_CLIS = ['/usr/local/bin/docker', '/usr/bin/docker'];

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json<T = unknown>(): T;
}

export interface Berthd {
  work: string;
  root: string;
  runRoot: string;
  socket: string;
  logFile: string;
  /** The current berthd process. */
  pid(): number;
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  /** The docker CLI (28.x at /usr/local/bin, else Debian's) against this berthd. */
  docker(args: string[], opts?: { input?: string | Buffer; timeoutMs?: number; cli?: string }): Promise<RunResult>;
  /** berth's own CLI against this berthd. */
  berth(args: string[], opts?: { input?: string | Buffer; timeoutMs?: number }): Promise<RunResult>;
  /** SIGKILL berthd only (containers keep running). */
  kill(): Promise<void>;
  /** Starts berthd again on the same roots. */
  restart(): Promise<void>;
  /** Removes all containers and volumes, stops berthd, cleans up; returns leak descriptions (empty when clean). */
  stop(): Promise<string[]>;
}

export function dockerCli(): string | undefined {
  return DOCKER_CLIS.find((p) => existsSync(p));
}

export function berthdSkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'berthd needs root';
  if (!existsSync(BERTHD)) return `${BERTHD} is not built (npm run build)`;
  return false;
}

export function apiRequest(socket: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const req = request(
      {
        socketPath: socket,
        method,
        path,
        headers: { ...(data ? { 'Content-Type': Buffer.isBuffer(body) ? 'application/x-tar' : 'application/json', 'Content-Length': String(data.length) } : {}), ...headers },
        timeout: 120_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf, json: <T>() => JSON.parse(buf.toString('utf8')) as T });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** Test berthds made by this process: each gets a default bridge, subnet and nft table of its own. */
let berthdCount = 0;

/** berthd's `network` config section. */
export type TestNetworkConfig = NetworkConfig;

export async function startBerthd(opts: { label?: string; args?: string[]; network?: TestNetworkConfig } = {}): Promise<Berthd> {
  const work = mkdtempSync(join(tmpdir(), `berthd-${opts.label ?? 'test'}-`));
  const root = join(work, 'root');
  const runRoot = join(work, 'run');
  const socket = join(runRoot, 'berth.sock');
  const logFile = join(work, 'berthd.log');
  const dockerConfig = join(work, 'docker-config');
  mkdirSync(dockerConfig);
  // Never the host's berth0/10.87.0.0/16/`inet berth` (a real berthd's), and no DNS forwarding
  // to the host's resolver: names the embedded DNS does not know get SERVFAIL.
  const n = (process.pid * 7 + berthdCount++) % 250;
  const tag = `${(process.pid % 0x10000).toString(16)}${n.toString(16)}`;
  const network: TestNetworkConfig = {
    defaultBridge: { bridge: `btst${tag}`.slice(0, 15), subnet: `10.198.${n}.0/24` },
    nftTable: `berthtst_${tag}`,
    upstreams: [],
    ...opts.network,
  };
  const configFile = join(work, 'berth.json');
  writeFileSync(configFile, JSON.stringify({ network }));
  const bridge = network.defaultBridge?.bridge ?? 'berth0';
  const vethsBefore = new Set(readdirSync('/sys/class/net').filter((l) => l.startsWith('vberth')));
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const log = openSync(logFile, 'a');
    child = spawn(process.execPath, [BERTHD, '--root', root, '--run-root', runRoot, '--config', configFile, '--log-level', 'debug', ...(opts.args ?? [])], {
      stdio: ['ignore', log, log],
      detached: true,
    });
    closeSync(log);
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    for (let i = 0; i < 300; i++) {
      const gone = await Promise.race([exited, sleep(50).then(() => 'alive' as const)]);
      if (gone !== 'alive') throw new Error(`berthd exited (${gone}) before answering: ${readFileSync(logFile, 'utf8').slice(-3000)}`);
      if (existsSync(socket)) {
        const ok = await apiRequest(socket, 'GET', '/_ping').then(
          (r) => r.status === 200,
          () => false,
        );
        if (ok) return;
      }
    }
    throw new Error(`berthd did not answer /_ping within 15 s: ${readFileSync(logFile, 'utf8').slice(-3000)}`);
  };
  await launch();

  const waitExit = async (sig: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const done = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(sig);
    await Promise.race([done, sleep(15_000)]);
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await done;
  };

  const self: Berthd = {
    work,
    root,
    runRoot,
    socket,
    logFile,
    pid: () => child?.pid ?? 0,
    api: (method, path, body, headers) => apiRequest(socket, method, path, body, headers),
    docker: (args, o = {}) =>
      runCommand(o.cli ?? dockerCli() ?? 'docker', args, work, {
        input: o.input,
        timeoutMs: o.timeoutMs ?? 120_000,
        env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: dockerConfig, DOCKER_CLI_HINTS: 'false' },
      }),
    berth: (args, o = {}) =>
      runCommand(process.execPath, [BERTH_CLI, ...args], work, {
        input: o.input,
        timeoutMs: o.timeoutMs ?? 120_000,
        // A berthd that died mid-test must not be replaced by one on the host's real roots.
        env: { ...process.env, BERTH_HOST: `unix://${socket}`, BERTH_AUTOSTART: '0' },
      }),
    kill: () => waitExit('SIGKILL'),
    restart: launch,
    async stop(): Promise<string[]> {
      const problems: string[] = [];
      const ids: string[] = [];
      if (child && child.exitCode === null && child.signalCode === null) {
        try {
          const list = await apiRequest(socket, 'GET', '/containers/json?all=1');
          for (const c of list.json<{ Id: string }[]>()) {
            ids.push(c.Id);
            const r = await apiRequest(socket, 'DELETE', `/containers/${c.Id}?force=1&v=1`);
            if (r.status !== 204 && r.status !== 404) problems.push(`rm -f ${c.Id}: ${r.status} ${r.body.toString()}`);
          }
          // Networks the test made and left: their bridges would outlive berthd.
          const nets = await apiRequest(socket, 'GET', '/networks');
          for (const net of nets.json<{ Id: string; Name: string }[]>()) {
            if (['bridge', 'host', 'none'].includes(net.Name)) continue;
            const r = await apiRequest(socket, 'DELETE', `/networks/${net.Id}`);
            if (r.status !== 204 && r.status !== 404) problems.push(`network rm ${net.Name}: ${r.status} ${r.body.toString()}`);
          }
        } catch (err) {
          problems.push(`cleaning containers through the API: ${String(err)}`);
        }
      }
      await waitExit('SIGTERM');
      // Containers berthd knew of, even when it died and the API could not list them: their
      // cgroups are how a process that mentions no path of ours (a created container's init
      // runs from berth-exec's sealed memfd) is found and reaped.
      try {
        for (const id of readdirSync(join(root, 'containers'))) if (!ids.includes(id)) ids.push(id);
      } catch {
        // no containers dir: berthd never got that far
      }
      // berthd leaves its default bridge, its nft table and its netns dir (a shared bind mount)
      // in place for the next berthd, as dockerd leaves docker0: a test's berthd is gone for good.
      try {
        execFileSync('ip', ['link', 'delete', bridge], { stdio: 'ignore' });
      } catch {
        // never made
      }
      try {
        execFileSync('nft', ['delete', 'table', 'inet', network.nftTable ?? 'berth'], { stdio: 'ignore' });
      } catch {
        // never made
      }
      // A sandbox's veth goes with its namespace, which the kernel frees in the background.
      let netLeft = netLeaks({ linkPrefixes: ['vberth'], expectLinks: [...vethsBefore], netnsDirs: [join(runRoot, 'netns')] });
      for (let i = 0; i < 40 && netLeft.length > 0; i++) {
        await sleep(50);
        netLeft = netLeaks({ linkPrefixes: ['vberth'], expectLinks: [...vethsBefore], netnsDirs: [join(runRoot, 'netns')] });
      }
      if (netLeft.length > 0) {
        problems.push(describeNetLeaks(netLeft));
        reapNetLeaks(netLeft);
      }
      detachMountsUnder(join(runRoot, 'netns'));
      const scope = { paths: [work], ids, roots: [] };
      const leaks = findLeaks(scope);
      if (leaks.length > 0) {
        problems.push(describeLeaks(leaks));
        reapLeaks(leaks);
      }
      detachMountsUnder(work);
      // berthd keeps its parent cgroup (/berth, like dockerd's /docker) between containers;
      // a test's berthd is gone, so its parent goes too when no other berthd uses it.
      for (const hierarchy of readdirSync('/sys/fs/cgroup')) {
        try {
          rmdirSync(join('/sys/fs/cgroup', hierarchy, 'berth'));
        } catch {
          // absent, or still used by another container
        }
      }
      if (problems.length > 0 && process.env.BERTH_TEST_KEEP_LOGS) problems.push(`berthd log: ${logFile}`);
      else rmSync(work, { recursive: true, force: true });
      return problems;
    },
  };
  return self;
}

/**
 * Imports a busybox rootfs as IMAGE into this berthd through the docker CLI (`docker import`
 * with the given --change lines); the rootfs tar is built once per work dir.
 */
export async function importBusybox(d: Berthd, image: string, changes: string[] = ['CMD ["/bin/sh"]']): Promise<void> {
  const { makeRootfs } = await import('./bundle.js');
  const { execFileSync } = await import('node:child_process');
  const tar = join(d.work, 'busybox-rootfs.tar');
  if (!existsSync(tar)) {
    const rootfs = join(d.work, 'busybox-rootfs');
    makeRootfs(rootfs);
    execFileSync('tar', ['-C', rootfs, '-cf', tar, '.']);
    rmSync(rootfs, { recursive: true, force: true });
  }
  const r = await d.docker(['import', ...changes.flatMap((c) => ['--change', c]), tar, image]);
  if (r.code !== 0) throw new Error(`docker import ${image}: ${r.stderr}`);
}
