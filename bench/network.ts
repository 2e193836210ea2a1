// bench/network: what networking costs, berth and its peers side by side in one run, on the
// same busybox rootfs, traffic only to 127.0.0.1 and to the bench's own containers:
//   1. Network setup cost: the median create + start + wait + remove of `true` on the default
//      bridge minus the same with --network none. berthd and a private dockerd over their
//      Docker APIs with one keep-alive client each; podman (netavark, runc) through its CLI
//      (it has no daemon to ask). All interleaved. Target: berth adds ≤ 10 ms.
//   2. HTTP through a port published on 127.0.0.1 vs the same server reached on the
//      container's own address: native/bench-httpd (one thread, epoll, keep-alive, a fixed
//      200; copied into the image) driven by wrk, bounded (fixed duration and connections),
//      published and direct alternating, medians. Ratio published/direct; target ≥ 0.95.
// The berth daemon runs the engine and the Docker API on private roots with the bench's own
// bridge (berthbench0, 10.199.110.0/24) and nft table (berthbench). The private dockerd
// (test/helpers/dockerd.ts, overlay2) gets its default network on a bench bridge
// (berthbenchdk0, 172.31.250.0/24) with Docker's iptables rules and userland proxy; while it
// runs the host's iptables FORWARD policy is DROP (Docker sets it); its rules, chains, bridge
// and that policy are put back when it stops. --no-docker leaves it out.
// Usage: node dist/bench/network.js [--runs N] [--seconds S] [--rounds R] [--wrk-threads T] [--no-docker] [--keep]
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { makeRootfs } from '../test/helpers/bundle.js';
import { berthdSkipReason } from '../test/helpers/berthd.js';
import { dockerSkipReason, startDocker, type PrivateDocker } from '../test/helpers/dockerd.js';
import { detachMountsUnder } from '../test/helpers/leaks.js';
import { REPO } from '../test/helpers/runtime.js';
import { UnixHttp } from './helpers/unix-http.js';
import { describe, median, msSince, timeCommand, which } from './helpers/measure.js';

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '5' },
    'wrk-threads': { type: 'string', default: '1' },
    'no-docker': { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
function wholeNumber(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${flag} wants a whole number of at least ${min}, not "${text}"`);
  return n;
}
const RUNS = wholeNumber('runs', flags.runs, 1);
const SECONDS = wholeNumber('seconds', flags.seconds, 1);
const ROUNDS = wholeNumber('rounds', flags.rounds, 1);
// 2 cores: wrk and the server compete; one wrk thread over 8 connections leaves the server a core.
const WRK_THREADS = wholeNumber('wrk-threads', flags['wrk-threads'], 1);
const WRK_CONNECTIONS = 8;
const IMAGE = 'bench/busybox:1';
const PODMAN_IMAGE = 'localhost/bench/busybox:1';
const BRIDGE = 'berthbench0';
const TABLE = 'berthbench';
const DOCKER_BRIDGE = { name: 'berthbenchdk0', address: '172.31.250.1/24' };
const HTTPD_BIN = join(REPO, 'native', 'build', 'bench-httpd');
// The server on the last cpu and wrk on the others (taskset), unless --no-pin or one cpu.
const CPUS = availableParallelism();
const PIN = !flags['no-pin'] && CPUS > 1 && which('taskset') !== undefined;
const HTTPD = ['/bin/bench-httpd', '80', ...(PIN ? [String(CPUS - 1)] : [])];

type Cleanup = () => Promise<void> | void;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The engine and the Docker API on private roots with the bench's network settings. */
async function startDaemon(work: string, cleanups: Cleanup[]): Promise<{ http: UnixHttp; socket: string }> {
  const runRoot = join(work, 'run');
  const socket = join(runRoot, 'd.sock');
  mkdirSync(runRoot, { recursive: true });
  const script = join(work, 'launch.mjs');
  writeFileSync(
    script,
    `const [engineUrl, apiUrl, json] = process.argv.slice(2);
const { BerthEngine } = await import(engineUrl);
const { startDockerApi } = await import(apiUrl);
const o = JSON.parse(json);
const engine = await BerthEngine.open({ ...o.engine, warn: (m) => console.error('warn', m) });
const api = await startDockerApi({ engine, socketPath: o.socket, log: () => undefined });
const stop = () => api.close().then(() => engine.close()).finally(() => process.exit(0));
process.on('SIGTERM', stop);
`,
  );
  const opts = { socket, engine: { root: join(work, 'root'), runRoot, network: { defaultBridge: { subnet: '10.199.110.0/24', bridge: BRIDGE }, nftTable: TABLE } } };
  const url = (p: string): string => pathToFileURL(join(REPO, 'dist', 'src', p)).href;
  const log = openSync(join(work, 'daemon.log'), 'a');
  const child: ChildProcess = spawn(process.execPath, [script, url('engine/engine.js'), url('api/docker/index.js'), JSON.stringify(opts)], { stdio: ['ignore', log, log] });
  closeSync(log);
  const http = new UnixHttp(socket);
  cleanups.push(async () => {
    const list = await http.call('GET', '/containers/json?all=1').catch(() => undefined);
    for (const c of list ? (JSON.parse(list.body.toString()) as { Id: string }[]) : []) await http.call('DELETE', `/containers/${c.Id}?force=1`).catch(() => undefined);
    http.close();
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    detachMountsUnder(join(runRoot, 'netns'));
    spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
    spawnSync('nft', ['delete', 'table', 'inet', TABLE], { stdio: 'ignore' });
  });
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`the berth daemon exited: ${readFileSync(join(work, 'daemon.log'), 'utf8').slice(-2000)}`);
    if (existsSync(socket) && (await http.call('GET', '/_ping').then((r) => r.status === 200, () => false))) return { http, socket };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the berth daemon did not answer within 15 s');
}

async function importImage(http: UnixHttp, tar: string, socket: string): Promise<void> {
  const docker = which('docker');
  if (!docker) throw new Error('bench/network needs the docker CLI to import the image');
  execFileSync(docker, ['import', '--change', 'CMD ["/bin/sh"]', tar, IMAGE], { env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(tmpdir(), 'berth-bench-docker-config') }, stdio: 'ignore' });
  await http.expect(200, 'GET', `/images/${IMAGE}/json`);
}

/** A request on the keep-alive client, sent again once when the daemon had just closed the idle socket. */
async function expect(http: UnixHttp, status: number, method: string, path: string, body?: unknown): Promise<{ body: Buffer }> {
  try {
    return await http.expect(status, method, path, body);
  } catch (err) {
    if (!['EPIPE', 'ECONNRESET'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    return http.expect(status, method, path, body);
  }
}

/** create + start + wait + remove over the API. */
async function apiRun(http: UnixHttp, networkMode: string): Promise<number> {
  const start = process.hrtime.bigint();
  const c = await expect(http, 201, 'POST', '/containers/create', { Image: IMAGE, Cmd: ['true'], HostConfig: { NetworkMode: networkMode } });
  const id = (JSON.parse(c.body.toString()) as { Id: string }).Id;
  await http.expect(204, 'POST', `/containers/${id}/start`);
  const w = await http.expect(200, 'POST', `/containers/${id}/wait`);
  if ((JSON.parse(w.body.toString()) as { StatusCode: number }).StatusCode !== 0) throw new Error(`container ${id.slice(0, 12)} failed`);
  await http.expect(204, 'DELETE', `/containers/${id}`);
  return msSince(start);
}

/** Runs each named measurement RUNS times, interleaved (round r starts with entry r). */
async function interleave(entries: [string, () => Promise<number>][]): Promise<Map<string, number>> {
  const samples = new Map<string, number[]>(entries.map(([n]) => [n, []]));
  for (let r = 0; r < RUNS; r++) {
    for (let k = 0; k < entries.length; k++) {
      const [name, fn] = entries[(r + k) % entries.length]!;
      samples.get(name)!.push(await fn());
    }
  }
  return new Map([...samples].map(([n, xs]) => [n, median(xs)]));
}

/** Requests per second against url: wrk, bounded by duration and connections. */
function throughput(wrk: string, url: string): number {
  const argv = [wrk, '-t', String(WRK_THREADS), '-c', String(WRK_CONNECTIONS), '-d', `${SECONDS}s`, url];
  if (PIN) argv.unshift(which('taskset')!, '-c', CPUS === 2 ? '0' : `0-${CPUS - 2}`);
  const out = execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!m) throw new Error(`wrk printed no Requests/sec: ${out}`);
  const errors = /Socket errors:.*|Non-2xx or 3xx responses:.*/.exec(out);
  if (errors) throw new Error(`wrk against ${url}: ${errors[0]}`);
  return Number(m[1]);
}

interface HttpResult {
  label: string;
  published: number;
  direct: number;
  /** published/direct of each round (the two measured back to back), sorted. */
  ratios: number[];
}

/**
 * ROUNDS alternating measurements (after a warm-up of each), so that a busy moment of the
 * shared machine hits both; the ratio is taken per round (back-to-back pairs), then the median.
 */
function publishedVsDirect(wrk: string, label: string, published: string, direct: string): HttpResult {
  throughput(wrk, published);
  throughput(wrk, direct);
  const pub: number[] = [];
  const dir: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      pub.push(throughput(wrk, published));
      dir.push(throughput(wrk, direct));
    } else {
      dir.push(throughput(wrk, direct));
      pub.push(throughput(wrk, published));
    }
  }
  return { label, published: median(pub), direct: median(dir), ratios: pub.map((p, i) => p / dir[i]!).sort((a, b) => a - b) };
}

/** Starts the HTTP server with 80/tcp published on 127.0.0.1:port over a Docker API; returns its id and address. */
async function apiHttpd(http: UnixHttp, name: string, port: number): Promise<{ id: string; ip: string }> {
  const c = await expect(http, 201, 'POST', `/containers/create?name=${name}`, {
    Image: IMAGE,
    Cmd: HTTPD,
    ExposedPorts: { '80/tcp': {} },
    HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] } },
  });
  const id = (JSON.parse(c.body.toString()) as { Id: string }).Id;
  await expect(http, 204, 'POST', `/containers/${id}/start`);
  const inspect = JSON.parse((await expect(http, 200, 'GET', `/containers/${id}/json`)).body.toString()) as { NetworkSettings: { IPAddress: string } };
  if (!inspect.NetworkSettings.IPAddress) throw new Error(`container ${name} has no IPAddress in inspect`);
  return { id, ip: inspect.NetworkSettings.IPAddress };
}

/** Until the server answers at url (it starts in the background). */
async function waitHttp(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not answer within 5 s`);
}

function podmanArgv(work: string): string[] | undefined {
  const podman = which('podman');
  const runc = which('runc');
  if (!podman || !runc) return undefined;
  const pw = join(work, 'podman');
  for (const d of ['root', 'run', 'tmp']) mkdirSync(join(pw, d), { recursive: true });
  return [podman, '--root', join(pw, 'root'), '--runroot', join(pw, 'run'), '--tmpdir', join(pw, 'tmp'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--storage-driver', 'overlay', '--runtime', runc];
}

/** The hard limit of /proc/self/limits' row `name` (as bench/engine passes it to podman). */
function hostHardLimit(name: string): string | undefined {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(name));
  return line?.slice(name.length).trim().split(/\s+/)[1];
}

function podmanRunArgs(): string[] {
  // runc here is refused podman's defaults above the host's hard limits (as in bench/engine).
  const nofile = hostHardLimit('Max open files');
  return [...(nofile ? ['--ulimit', `nofile=${nofile}:${nofile}`] : []), '--ulimit', 'nproc=4096:4096'];
}

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
}

async function main(): Promise<void> {
  const skip = berthdSkipReason();
  if (skip) throw new Error(`bench/network: ${skip}`);
  if (!existsSync(HTTPD_BIN)) throw new Error(`bench/network: ${HTTPD_BIN} is missing; build it with make -s -C native`);
  // Peers may make host tables the bench cannot tell from anyone else's: reported, left alone.
  const nftTables = (): string[] => spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? [];
  const tablesBefore = nftTables();
  const work = mkdtempSync(join(tmpdir(), 'berth-bench-net-'));
  const cleanups: Cleanup[] = [
    () => {
      detachMountsUnder(work);
      if (flags.keep) console.log(`kept ${work}`);
      else rmSync(work, { recursive: true, force: true });
    },
  ];
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.splice(0).reverse()) await Promise.resolve(fn()).catch((err: unknown) => console.error(`bench: cleanup: ${describe(err)}`));
  };
  const onSignal = (sig: NodeJS.Signals): void => void cleanup().finally(() => process.exit(128 + (constants.signals[sig] ?? 0)));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const notes: string[] = [];
  try {
    const rootfs = join(work, 'rootfs');
    makeRootfs(rootfs);
    copyFileSync(HTTPD_BIN, join(rootfs, 'bin', 'bench-httpd'));
    chmodSync(join(rootfs, 'bin', 'bench-httpd'), 0o755);
    const tar = join(work, 'rootfs.tar');
    execFileSync('tar', ['-C', rootfs, '-cf', tar, '.']);
    const { http, socket } = await startDaemon(work, cleanups);
    await importImage(http, tar, socket);
    const podman = podmanArgv(work);
    if (podman) {
      cleanups.push(() => {
        spawnSync(podman[0]!, [...podman.slice(1), 'rm', '-a', '-f', '-t', '0'], { stdio: 'ignore', timeout: 60_000 });
        spawnSync(podman[0]!, [...podman.slice(1), 'rmi', '-a', '-f'], { stdio: 'ignore', timeout: 60_000 });
        detachMountsUnder(join(work, 'podman'));
      });
      execFileSync(podman[0]!, [...podman.slice(1), 'import', '-q', tar, PODMAN_IMAGE], { stdio: 'ignore', timeout: 60_000 });
    } else notes.push('podman: not measured (podman or runc not installed)');
    let dockerd: PrivateDocker | undefined;
    let dockerHttp: UnixHttp | undefined;
    const dockerSkip = flags['no-docker'] ? '--no-docker' : dockerSkipReason({ bridge: true });
    if (dockerSkip) notes.push(`dockerd: not measured (${dockerSkip})`);
    else {
      const d = await startDocker({ label: 'bench-net', storageDriver: 'overlay2', workDir: join(work, 'docker'), bridge: DOCKER_BRIDGE });
      dockerd = d;
      cleanups.push(async () => {
        dockerHttp?.close();
        const problems = await d.stop();
        if (problems.length > 0) console.error(`bench: private dockerd left:\n${problems.join('\n')}`);
      });
      const imported = await d.docker(['import', '--change', 'CMD ["/bin/sh"]', tar, IMAGE]);
      if (imported.code !== 0) throw new Error(`docker import into the private dockerd failed: ${imported.stderr}`);
      dockerHttp = new UnixHttp(join(d.work, 'docker.sock'));
    }

    // 1. setup cost
    const apis: [string, UnixHttp][] = [['berthd', http], ...(dockerHttp ? [['dockerd', dockerHttp] as [string, UnixHttp]] : [])];
    for (let i = 0; i < 3; i++) {
      for (const [, h] of apis) {
        await apiRun(h, 'bridge');
        await apiRun(h, 'none');
      }
    }
    const entries: [string, () => Promise<number>][] = [];
    for (const [name, h] of apis) entries.push([`${name} bridge`, () => apiRun(h, 'bridge')], [`${name} none`, () => apiRun(h, 'none')]);
    if (podman) {
      const run = (net: string[]) => (): Promise<number> => timeCommand([...podman, 'run', '--rm', ...net, ...podmanRunArgs(), PODMAN_IMAGE, 'true'], { timeoutMs: 60_000 });
      entries.push(['podman bridge', run([])], ['podman none', run(['--network', 'none'])]);
    }
    const med = await interleave(entries);
    const pairs: [string, string][] = [['berthd (API)', 'berthd']];
    if (dockerHttp) pairs.push(['dockerd (API, docker-proxy)', 'dockerd']);
    if (podman) pairs.push(['podman (CLI, netavark)', 'podman']);
    const added = (key: string): number => med.get(`${key} bridge`)! - med.get(`${key} none`)!;
    const setupTable: string[] = [];
    const w = [28, 10, 10, 10, 12, 16];
    setupTable.push(row(['engine', 'bridge', 'none', 'added', 'bridge/none', 'added vs berth'], w));
    for (const [label, key] of pairs) {
      const bm = med.get(`${key} bridge`)!;
      const nm = med.get(`${key} none`)!;
      setupTable.push(row([label, bm.toFixed(1), nm.toFixed(1), (bm - nm).toFixed(1), (bm / nm).toFixed(2), key === 'berthd' ? '' : added('berthd') >= 5 ? `${(added(key) / added('berthd')).toFixed(1)}×` : 'n/a (berth < 5 ms)'], w));
    }
    console.log(`network setup cost: create+start+wait+remove of \`true\`, median of ${RUNS} interleaved runs (ms)`);
    for (const l of setupTable) console.log(l);
    const berthAdded = added('berthd');
    console.log(`berth adds ${berthAdded.toFixed(1)} ms per run on the default bridge (target ≤ 10 ms): ${berthAdded <= 10 ? 'met' : 'NOT met'}`);
    console.log('');

    // 2. HTTP through a published port vs direct
    const wrk = which('wrk');
    if (!wrk) {
      notes.push('HTTP: not measured (wrk is not installed: apt-get install wrk)');
    } else {
      const results: HttpResult[] = [];
      const servers: [string, UnixHttp][] = [['berth (nftables DNAT)', http], ...(dockerHttp ? [['dockerd (docker-proxy)', dockerHttp] as [string, UnixHttp]] : [])];
      for (const [label, h] of servers) {
        const port = await freePort();
        const { id, ip } = await apiHttpd(h, `bench-httpd-${process.pid}`, port);
        try {
          await waitHttp(`http://${ip}/`);
          await waitHttp(`http://127.0.0.1:${port}/`);
          results.push(publishedVsDirect(wrk, label, `http://127.0.0.1:${port}/`, `http://${ip}/`));
        } finally {
          await expect(h, 204, 'DELETE', `/containers/${id}?force=1`);
        }
      }
      if (podman) {
        const pport = await freePort();
        const name = `bench-httpd-${process.pid}`;
        execFileSync(podman[0]!, [...podman.slice(1), 'run', '-d', '--name', name, '-p', `127.0.0.1:${pport}:80`, ...podmanRunArgs(), PODMAN_IMAGE, ...HTTPD], { stdio: 'ignore', timeout: 60_000 });
        try {
          const pip = execFileSync(podman[0]!, [...podman.slice(1), 'inspect', '-f', '{{.NetworkSettings.IPAddress}}', name], { encoding: 'utf8' }).trim();
          await waitHttp(`http://${pip}/`);
          await waitHttp(`http://127.0.0.1:${pport}/`);
          results.push(publishedVsDirect(wrk, 'podman (netavark DNAT)', `http://127.0.0.1:${pport}/`, `http://${pip}/`));
        } finally {
          spawnSync(podman[0]!, [...podman.slice(1), 'rm', '-f', '-t', '0', name], { stdio: 'ignore', timeout: 60_000 });
        }
      }
      console.log(`HTTP requests/s to bench-httpd (epoll, keep-alive), median of ${ROUNDS} alternating rounds of wrk -t${WRK_THREADS} -c${WRK_CONNECTIONS} -d${SECONDS}s${PIN ? `, wrk pinned to cpu ${CPUS === 2 ? '0' : `0-${CPUS - 2}`}, the server to cpu ${CPUS - 1}` : ''};`);
      console.log('ratio: median of the rounds\' published/direct (lowest–highest)');
      const w2 = [26, 14, 14, 18];
      console.log(row(['engine', '127.0.0.1:port', 'container IP', 'ratio'], w2));
      for (const r of results) {
        const range = `${r.ratios[0]!.toFixed(2)}–${r.ratios[r.ratios.length - 1]!.toFixed(2)}`;
        console.log(row([r.label, r.published.toFixed(0), r.direct.toFixed(0), `${median(r.ratios).toFixed(2)} (${range})`], w2));
      }
      const ratio = median(results[0]!.ratios);
      console.log(`berth published/direct ${ratio.toFixed(2)} (target ≥ 0.95): ${ratio >= 0.95 ? 'met' : 'NOT met'}`);
    }
    if (dockerd) notes.push(`dockerd: default bridge ${DOCKER_BRIDGE.name} ${DOCKER_BRIDGE.address}, iptables on, userland proxy on (127.0.0.1 goes through docker-proxy), overlay2`);
    for (const n of notes) console.log(`note: ${n}`);
  } finally {
    await cleanup();
    const appeared = nftTables().filter((t) => !tablesBefore.includes(t));
    if (appeared.length > 0) console.log(`note: nft tables appeared during the run (left alone): ${appeared.join(', ')}`);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

await main();
