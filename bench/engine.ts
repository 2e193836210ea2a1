// bench/engine: the engine side by side in one run, all on the same busybox rootfs (imported
// into each engine's store), nothing sent anywhere but unix sockets:
//   1. `run --rm IMAGE true` end to end, N sequential runs per tool, the tools interleaved
//      (round r starts with tool r): bin/berth → berthd · node dist/src/cli/berth.js (the
//      module tree, this environment as is) · the docker CLI → berthd · the same docker CLI
//      → a private dockerd (containerd + runc, overlay2) · podman (runc, overlay) ·
//      `node -e 0` with and without NODE_EXTRA_CA_CERTS (what any Node CLI pays first).
//   2. The API without a CLI: create + start + wait + remove over the unix socket with one
//      keep-alive agent (berthd, berthd with seccomp=unconfined, dockerd), each call timed;
//      vs `runc run` of a bundle with berthd's own config.json for that container (Docker's
//      seccomp profile, masks, /etc binds) and of a minimal one (no seccomp, no binds).
//   3. C containers (`sleep 60`) created and started concurrently through the API, berthd
//      vs dockerd: containers per second; then removed concurrently (timed too).
//   4. Idle memory per running container: berth-monitor, containerd-shim-runc-v2, conmon
//      (RSS and PSS), plus each daemon's own.
// Prints medians and ratios. Everything is private (roots, sockets, cgroup parents) and
// removed at the end; leaks are reported.
// Usage: node dist/bench/engine.js [--runs N] [--concurrent C] [--idle K] [--keep]
//        node dist/bench/engine.js --profile [--runs N] [--keep]
//   --runs N        sequential runs per tool (default 20)
//   --concurrent C  containers started at once (default 50)
//   --idle K        podman containers kept running for its idle memory (default 5)
//   --profile       only berthd and runc: section 2 with berthd's CPU profiled (from after
//                   the warm-up), then where its CPU went by function and by file, and (with
//                   perf) the phases of a container start from kernel tracepoints
//   --keep          keep the work dir (berthd's debug log has every request's ms) and print it
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultSpec } from '../src/runtime/default-spec.js';
import type { Spec } from '../src/runtime/spec.js';
import { makeRootfs } from '../test/helpers/bundle.js';
import { BERTH_CLI, dockerCli, startBerthd, berthdSkipReason, type Berthd } from '../test/helpers/berthd.js';
import { dockerSkipReason, startDocker, type PrivateDocker } from '../test/helpers/dockerd.js';
import { REPO } from '../test/helpers/runtime.js';
import { detachMountsUnder, mountsUnder } from '../test/helpers/leaks.js';
import { UnixHttp } from './helpers/unix-http.js';
import { findProcesses, processMemory, type ProcMemory } from './helpers/proc-memory.js';
import { summariseProfile } from './helpers/cpu-profile.js';
import { PHASES, perfUnavailable, startPerf, startPhases } from './helpers/start-phases.js';
import { describe, median, msSince, timeCommand, which } from './helpers/measure.js';

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    concurrent: { type: 'string', default: '50' },
    idle: { type: 'string', default: '5' },
    profile: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
function wholeNumber(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${flag} wants a whole number of at least ${min}, not "${text}"`);
  return n;
}
const RUNS = wholeNumber('runs', flags.runs, 1);
const CONCURRENT = wholeNumber('concurrent', flags.concurrent, 1);
const IDLE = wholeNumber('idle', flags.idle, 0);
const IMAGE = 'bench/busybox:1';
const PODMAN_IMAGE = 'localhost/bench/busybox:1';
const RUN_TIMEOUT_MS = 60_000;
const runTimed = (argv: string[], env?: NodeJS.ProcessEnv): Promise<number> => timeCommand(argv, { env, timeoutMs: RUN_TIMEOUT_MS });
const BERTH_BIN = join(REPO, 'bin', 'berth');
const BERTH_ROW = 'berth run --rm (bin/berth → berthd)';
const BERTH_ROW_TREE = 'node dist/src/cli/berth.js run --rm (env as is)';
const RUNC_SAME = "runc run (berthd's config.json)";
const RUNC_MINIMAL = 'runc run (minimal: no seccomp/binds)';

type Cleanup = () => Promise<void> | void;

/** One timed run; `parts` are named sub-times (ms) for the breakdown. */
interface Sample {
  ms: number;
  parts?: Record<string, number>;
}

interface Tool {
  name: string;
  run(i: number): Promise<Sample>;
}

interface Series {
  samples: Map<string, Sample[]>;
  failures: Map<string, string>;
}

/** A warm-up run per tool, then `runs` rounds; round r starts with tool r (mod tools). */
async function interleave(title: string, tools: Tool[], runs: number): Promise<Series> {
  const samples = new Map<string, Sample[]>(tools.map((t) => [t.name, []]));
  const failures = new Map<string, string>();
  const once = async (tool: Tool, i: number): Promise<Sample | undefined> => {
    if (failures.has(tool.name)) return undefined;
    try {
      return await tool.run(i);
    } catch (err) {
      failures.set(tool.name, describe(err));
      console.log(`  ${tool.name}: FAILED, left out: ${describe(err)}`);
      return undefined;
    }
  };
  process.stdout.write(`${title}: warm-up`);
  for (const t of tools) await once(t, -1);
  for (let r = 0; r < runs; r++) {
    process.stdout.write(r % 5 === 0 ? ` ${r}` : '.');
    for (let k = 0; k < tools.length; k++) {
      const t = tools[(k + r) % tools.length]!;
      const s = await once(t, r);
      if (s) samples.get(t.name)!.push(s);
    }
  }
  process.stdout.write(' done\n');
  return { samples, failures };
}

function med(series: Series, name: string): number | undefined {
  const s = series.samples.get(name);
  return s && s.length > 0 && !series.failures.has(name) ? median(s.map((x) => x.ms)) : undefined;
}

function medPart(series: Series, name: string, part: string): number | undefined {
  const s = series.samples.get(name)?.map((x) => x.parts?.[part]).filter((v): v is number => v !== undefined);
  return s && s.length > 0 ? median(s) : undefined;
}

function ratio(value: number | undefined, base: number | undefined): string {
  return value !== undefined && base ? `${(value / base).toFixed(2)}x` : '-';
}

function table(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(`  ${line(header)}`);
  for (const r of rows) console.log(`  ${line(r)}`);
}

// ---------------------------------------------------------------------------------------------
// Engines

interface Engine {
  name: string;
  http: UnixHttp;
  /** Per-container processes of this engine: [comm, argv substring]. */
  perContainer: [string, string][];
  /** The daemon processes (for their own RSS). */
  daemonPids(): number[];
}

/** create + start + wait + remove, each call timed. */
async function apiRun(e: Engine, cmd: string[], hostConfig: Record<string, unknown> = {}, startMarks?: [bigint, bigint][]): Promise<Sample> {
  const start = process.hrtime.bigint();
  const c = await e.http.expect(201, 'POST', '/containers/create', { Image: IMAGE, Cmd: cmd, HostConfig: { NetworkMode: 'none', ...hostConfig } });
  const id = (JSON.parse(c.body.toString('utf8')) as { Id: string }).Id;
  const sent = process.hrtime.bigint();
  const s = await e.http.expect(204, 'POST', `/containers/${id}/start`);
  startMarks?.push([sent, process.hrtime.bigint()]);
  const w = await e.http.expect(200, 'POST', `/containers/${id}/wait`);
  const code = (JSON.parse(w.body.toString('utf8')) as { StatusCode: number }).StatusCode;
  if (code !== 0) throw new Error(`${e.name}: container ${id.slice(0, 12)} exited ${code}`);
  const r = await e.http.expect(204, 'DELETE', `/containers/${id}`);
  return { ms: msSince(start), parts: { create: c.ms, start: s.ms, wait: w.ms, remove: r.ms } };
}

interface Burst {
  startSeconds: number;
  removeSeconds: number;
  memory: ProcMemory[];
  unaccounted: string[];
}

/** `count` `sleep 60` containers created and started at once; memory read; all removed at once. */
async function burst(e: Engine, count: number, measureMemory: boolean): Promise<Burst> {
  const ids: string[] = [];
  let startSeconds = 0;
  let removeSeconds = 0;
  let memory: ProcMemory[] = [];
  const unaccounted: string[] = [];
  try {
    const start = process.hrtime.bigint();
    const results = await Promise.allSettled(
      Array.from({ length: count }, async () => {
        const c = await e.http.expect(201, 'POST', '/containers/create', { Image: IMAGE, Cmd: ['sleep', '60'], HostConfig: { NetworkMode: 'none' } });
        const id = (JSON.parse(c.body.toString('utf8')) as { Id: string }).Id;
        ids.push(id);
        await e.http.expect(204, 'POST', `/containers/${id}/start`);
      }),
    );
    startSeconds = msSince(start) / 1000;
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) throw new Error(`${e.name}: ${failed.length} of ${count} concurrent starts failed; first: ${describe(failed[0]!.reason)}`);
    if (measureMemory) {
      // Let start-up allocations settle (the shim's goroutines, the monitor's first poll).
      await new Promise((r) => setTimeout(r, 1000));
      const pids = e.perContainer.flatMap(([comm, arg]) => findProcesses(comm, arg));
      memory = pids.map(processMemory).filter((m): m is ProcMemory => m !== undefined);
      if (memory.length !== count) unaccounted.push(`${memory.length} per-container processes found for ${count} containers`);
    }
  } finally {
    const start = process.hrtime.bigint();
    const removed = await Promise.allSettled(ids.map((id) => e.http.expect(204, 'DELETE', `/containers/${id}?force=1`)));
    removeSeconds = msSince(start) / 1000;
    const bad = removed.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (bad.length > 0) console.log(`  ${e.name}: ${bad.length} removals failed; first: ${describe(bad[0]!.reason)}`);
  }
  return { startSeconds, removeSeconds, memory, unaccounted };
}

// ---------------------------------------------------------------------------------------------
// Setup

interface Setup {
  work: string;
  tar: string;
  /** berthd's own OCI config for the container (Docker's seccomp profile, /etc binds, masks). */
  bundle: string;
  /** berth's default OCI spec: no seccomp, no binds. */
  minimalBundle: string;
  berthd: Berthd;
  berth: Engine;
  berthDockerEnv: NodeJS.ProcessEnv;
  dockerd?: PrivateDocker;
  docker?: Engine;
  podman?: { argv: string[]; work: string };
  notes: string[];
}

/** A runc bundle of `rootfs` (copied) with this spec; bind sources are copied into the bundle. */
function makeRuncBundle(dir: string, rootfs: string, spec: Spec): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('cp', ['-a', rootfs, join(dir, 'rootfs')]);
  spec.root = { path: 'rootfs', readonly: spec.root?.readonly ?? false };
  for (const m of spec.mounts ?? []) {
    if (m.type !== 'bind' || !m.source) continue;
    const copy = join(dir, 'files', basename(m.source));
    mkdirSync(join(dir, 'files'), { recursive: true });
    execFileSync('cp', ['-a', m.source, copy]);
    m.source = copy;
  }
  // runc picks /<id> in each hierarchy and removes it after the run.
  if (spec.linux) delete spec.linux.cgroupsPath;
  // berth lowers limits above the host's hard limit (with a warning); runc would fail.
  const nofile = Number(hostHardLimit('Max open files'));
  for (const r of spec.process?.rlimits ?? []) {
    if (r.type === 'RLIMIT_NOFILE' && nofile > 0) {
      r.hard = Math.min(r.hard, nofile);
      r.soft = Math.min(r.soft, r.hard);
    }
  }
  // runc 1.1 knows spec 1.0.2; the configs use nothing newer.
  spec.ociVersion = '1.0.2';
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec, null, 2));
}

/** Hands `use` the OCI config berthd writes for `true` with NetworkMode none, while the
 *  container (and the files its binds name) still exists. */
async function withBerthContainerSpec(http: UnixHttp, root: string, use: (spec: Spec) => void): Promise<void> {
  const c = await http.expect(201, 'POST', '/containers/create', { Image: IMAGE, Cmd: ['true'], HostConfig: { NetworkMode: 'none' } });
  const id = (JSON.parse(c.body.toString('utf8')) as { Id: string }).Id;
  try {
    use(JSON.parse(readFileSync(join(root, 'containers', id, 'config.json'), 'utf8')) as Spec);
  } finally {
    await http.expect(204, 'DELETE', `/containers/${id}`);
  }
}

/** Podman's default ulimits can exceed this host's hard limits (runc then fails): ask for the host's. */
function hostHardLimit(name: string): string | undefined {
  const m = new RegExp(`^${name}\\s+\\S+\\s+(\\d+)`, 'm').exec(readFileSync('/proc/self/limits', 'utf8'));
  return m?.[1];
}

async function setUp(cleanups: Cleanup[], withPeers: boolean, berthdEnv?: NodeJS.ProcessEnv): Promise<Setup> {
  const notes: string[] = [];
  const work = mkdtempSync(join(tmpdir(), 'berth-bench-engine-'));
  chmodSync(work, 0o755);
  cleanups.push(() => {
    const left = mountsUnder([work]);
    if (left.length > 0) {
      console.error(`bench: mounts left under ${work}, detaching: ${left.map((m) => m.mountPoint).join(', ')}`);
      detachMountsUnder(work);
    }
    if (flags.keep) console.log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  });
  const rootfs = join(work, 'rootfs');
  makeRootfs(rootfs);
  const tar = join(work, 'rootfs.tar');
  execFileSync('tar', ['-C', rootfs, '-cf', tar, '.']);

  // startBerthd passes this process's environment on: set berthdEnv for that moment only.
  const saved = Object.fromEntries(Object.keys(berthdEnv ?? {}).map((k) => [k, process.env[k]]));
  Object.assign(process.env, berthdEnv);
  let berthd: Berthd;
  try {
    berthd = await startBerthd({ label: 'bench-engine' });
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  cleanups.push(async () => {
    const problems = await berthd.stop();
    if (problems.length > 0) console.error(`bench: berthd left things behind:\n${problems.join('\n')}`);
  });
  const imp = await berthd.docker(['import', tar, IMAGE]);
  if (imp.code !== 0) throw new Error(`docker import into berthd failed: ${imp.stderr}`);
  const berthDockerEnv: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${berthd.socket}`, DOCKER_CONFIG: join(work, 'docker-config'), DOCKER_CLI_HINTS: 'false' };
  mkdirSync(join(work, 'docker-config'));
  const berthHttp = new UnixHttp(berthd.socket);
  cleanups.push(() => berthHttp.close());
  const bundle = join(work, 'bundle');
  await withBerthContainerSpec(berthHttp, berthd.root, (spec) => makeRuncBundle(bundle, rootfs, spec));
  const minimalBundle = join(work, 'bundle-minimal');
  const minimal = defaultSpec({ args: ['true'] });
  minimal.process!.terminal = false;
  makeRuncBundle(minimalBundle, rootfs, minimal);
  const berth: Engine = {
    name: 'berthd',
    http: berthHttp,
    perContainer: [['berth-monitor', berthd.runRoot]],
    daemonPids: () => [berthd.pid()],
  };
  const setup: Setup = { work, tar, bundle, minimalBundle, berthd, berth, berthDockerEnv, notes };
  if (!withPeers) return setup;

  const skip = dockerSkipReason();
  if (skip) notes.push(`docker: skipped (${skip})`);
  else {
    const dockerd = await startDocker({ label: 'bench-engine', storageDriver: 'overlay2', workDir: join(work, 'docker') });
    cleanups.push(async () => {
      const problems = await dockerd.stop();
      if (problems.length > 0) console.error(`bench: the private docker left things behind:\n${problems.join('\n')}`);
    });
    const r = await dockerd.docker(['import', tar, IMAGE]);
    if (r.code !== 0) throw new Error(`docker import into the private dockerd failed: ${r.stderr}`);
    const http = new UnixHttp(join(dockerd.work, 'docker.sock'));
    cleanups.push(() => http.close());
    const containerdSocket = join(dockerd.work, 'containerd.sock');
    setup.dockerd = dockerd;
    setup.docker = {
      name: 'dockerd',
      http,
      // comm is cut to 15 characters.
      perContainer: [['containerd-shim', containerdSocket]],
      daemonPids: () => [...findProcesses('dockerd', dockerd.work), ...findProcesses('containerd', dockerd.work)],
    };
  }

  const podman = which('podman');
  const runc = which('runc');
  if (!podman || !runc) notes.push(`podman: skipped (${!podman ? 'podman' : 'runc'} not installed)`);
  else {
    const pw = join(work, 'podman');
    for (const d of ['root', 'run', 'tmp']) mkdirSync(join(pw, d), { recursive: true });
    const argv = [
      podman,
      '--root', join(pw, 'root'),
      '--runroot', join(pw, 'run'),
      '--tmpdir', join(pw, 'tmp'),
      '--cgroup-manager', 'cgroupfs',
      '--events-backend', 'file',
      '--storage-driver', 'overlay',
      // Debian's crun refuses this host.
      '--runtime', runc,
    ];
    cleanups.push(() => {
      spawnSync(argv[0]!, [...argv.slice(1), 'rm', '-a', '-f', '-t', '0'], { stdio: 'ignore', timeout: 60_000 });
      spawnSync(argv[0]!, [...argv.slice(1), 'rmi', '-a', '-f'], { stdio: 'ignore', timeout: 60_000 });
      detachMountsUnder(pw);
    });
    execFileSync(argv[0]!, [...argv.slice(1), 'import', '-q', tar, PODMAN_IMAGE], { stdio: 'ignore', timeout: 60_000 });
    setup.podman = { argv, work: pw };
  }
  return setup;
}

function podmanRunArgs(): string[] {
  const out = ['--network', 'none'];
  const nofile = hostHardLimit('Max open files');
  if (nofile) out.push('--ulimit', `nofile=${nofile}:${nofile}`);
  // runc is refused even the host's own hard RLIMIT_NPROC here (podman lowers its own); a
  // limit well below it works, and no run here comes near it.
  out.push('--ulimit', 'nproc=4096:4096');
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sections

async function endToEnd(s: Setup): Promise<void> {
  const docker = dockerCli();
  const tools: Tool[] = [];
  const berthEnv: NodeJS.ProcessEnv = { ...process.env, BERTH_HOST: `unix://${s.berthd.socket}` };
  const runArgs = ['run', '--rm', '--network', 'none', IMAGE, 'true'];
  // Every Node start parses this CA bundle when it is set (tens of ms here); bin/berth (the
  // launcher: one-file bundle, no CA bundle) drops it, since the CLI never speaks TLS.
  const caCerts = process.env['NODE_EXTRA_CA_CERTS'];
  const noCa: NodeJS.ProcessEnv = { ...process.env };
  delete noCa['NODE_EXTRA_CA_CERTS'];
  if (existsSync(BERTH_BIN)) tools.push({ name: BERTH_ROW, run: async () => ({ ms: await runTimed([BERTH_BIN, ...runArgs], berthEnv) }) });
  else s.notes.push(`${BERTH_BIN}: missing, the berth CLI runs as node ${BERTH_CLI}`);
  tools.push({ name: BERTH_ROW_TREE, run: async () => ({ ms: await runTimed([process.execPath, BERTH_CLI, ...runArgs], berthEnv) }) });
  if (docker) {
    tools.push({ name: 'docker run --rm (docker CLI → berthd)', run: async () => ({ ms: await runTimed([docker, 'run', '--rm', '--network', 'none', IMAGE, 'true'], s.berthDockerEnv) }) });
    // The same CLI binary for both daemons: the difference is the daemon.
    if (s.dockerd) tools.push({ name: 'docker run --rm (docker CLI → dockerd)', run: async () => ({ ms: await runTimed([docker, 'run', '--rm', '--network', 'none', IMAGE, 'true'], s.dockerd!.env) }) });
  } else s.notes.push('docker CLI: not installed, its rows skipped');
  if (s.podman) {
    const argv = [...s.podman.argv, 'run', '--rm', ...podmanRunArgs(), PODMAN_IMAGE, 'true'];
    tools.push({ name: 'podman run --rm (runc)', run: async () => ({ ms: await runTimed(argv) }) });
  }
  tools.push({ name: 'node -e 0 (Node start, no work)', run: async () => ({ ms: await runTimed([process.execPath, '-e', '0']) }) });
  if (caCerts) tools.push({ name: 'node -e 0, NODE_EXTRA_CA_CERTS unset', run: async () => ({ ms: await runTimed([process.execPath, '-e', '0'], noCa) }) });

  const series = await interleave(`1. run --rm ${IMAGE} true`, tools, RUNS);
  const dockerMs = med(series, 'docker run --rm (docker CLI → dockerd)');
  const podmanMs = med(series, 'podman run --rm (runc)');
  console.log(`\n1. run --rm ${IMAGE} true, end to end: median of ${RUNS} sequential runs, tools interleaved\n`);
  table(
    ['tool', 'ms/run', 'x docker', 'x podman'],
    tools.map((t) => {
      const m = med(series, t.name);
      return [t.name, m === undefined ? 'failed' : m.toFixed(1), ratio(m, dockerMs), ratio(m, podmanMs)];
    }),
  );
  const berthMs = med(series, BERTH_ROW) ?? med(series, BERTH_ROW_TREE);
  if (berthMs !== undefined && dockerMs) console.log(`  target berth run <= 0.25x docker run: ${berthMs / dockerMs <= 0.25 ? 'met' : 'not met'} (${(berthMs / dockerMs).toFixed(2)}x)`);
  if (caCerts) console.log(`  NODE_EXTRA_CA_CERTS=${caCerts} is set here: Node parses it at every start unless a launcher drops it`);
  for (const [name, msg] of series.failures) console.log(`  failed: ${name}: ${msg}`);
}

async function apiPath(s: Setup, runs: number): Promise<Series> {
  const tools: Tool[] = [
    { name: 'berthd API', run: () => apiRun(s.berth, ['true']) },
    { name: 'berthd API, seccomp=unconfined', run: () => apiRun(s.berth, ['true'], { SecurityOpt: ['seccomp=unconfined'] }) },
  ];
  if (s.docker) tools.push({ name: 'dockerd API', run: () => apiRun(s.docker!, ['true']) });
  const runc = which('runc');
  const runcRoot = join(s.work, 'runc-state');
  if (runc) {
    tools.push({ name: RUNC_SAME, run: async (i) => ({ ms: await runTimed([runc, '--root', runcRoot, 'run', '--bundle', s.bundle, `bench-same-${i + 1}`]) }) });
    tools.push({ name: RUNC_MINIMAL, run: async (i) => ({ ms: await runTimed([runc, '--root', runcRoot, 'run', '--bundle', s.minimalBundle, `bench-min-${i + 1}`]) }) });
  } else s.notes.push('runc: not installed, the API target has no reference');
  const series = await interleave('2. API create+start+wait+remove', tools, runs);
  const runcMs = med(series, RUNC_SAME);
  const dockerMs = med(series, 'dockerd API');
  console.log(`\n2. the API without a CLI (create + start + wait + remove, keep-alive, ${IMAGE} true): median of ${runs}\n`);
  const parts = ['create', 'start', 'wait', 'remove'];
  table(
    ['path', 'ms/run', 'x runc', 'x docker', ...parts.map((p) => `${p} ms`)],
    tools.map((t) => {
      const m = med(series, t.name);
      return [t.name, m === undefined ? 'failed' : m.toFixed(1), ratio(m, runcMs), ratio(m, dockerMs), ...parts.map((p) => medPart(series, t.name, p)?.toFixed(1) ?? '')];
    }),
  );
  const berthMs = med(series, 'berthd API');
  if (berthMs !== undefined && runcMs) console.log(`  target berthd API <= 1x runc run (same config): ${berthMs / runcMs <= 1 ? 'met' : 'not met'} (${(berthMs / runcMs).toFixed(2)}x)`);
  for (const [name, msg] of series.failures) console.log(`  failed: ${name}: ${msg}`);
  return series;
}

async function concurrency(s: Setup): Promise<void> {
  const engines = [s.berth, ...(s.docker ? [s.docker] : [])];
  const results = new Map<string, Burst>();
  console.log(`3./4. ${CONCURRENT} containers (sleep 60) created and started concurrently through the API`);
  for (const e of engines) {
    const b = await burst(e, CONCURRENT, true);
    results.set(e.name, b);
    console.log(`  ${e.name}: started in ${b.startSeconds.toFixed(2)} s, removed in ${b.removeSeconds.toFixed(2)} s`);
  }

  let podmanMemory: ProcMemory[] = [];
  if (s.podman && IDLE > 0) {
    const argv = [...s.podman.argv, 'run', '-d', ...podmanRunArgs(), PODMAN_IMAGE, 'sleep', '60'];
    try {
      for (let i = 0; i < IDLE; i++) await runTimed(argv);
      await new Promise((r) => setTimeout(r, 1000));
      podmanMemory = findProcesses('conmon', s.podman.work)
        .map(processMemory)
        .filter((m): m is ProcMemory => m !== undefined);
    } catch (err) {
      console.log(`  podman: idle containers failed, its row left out: ${describe(err)}`);
    } finally {
      spawnSync(argv[0]!, [...s.podman.argv.slice(1), 'rm', '-a', '-f', '-t', '0'], { stdio: 'ignore', timeout: 60_000 });
    }
  }

  console.log(`\n3. ${CONCURRENT} containers started at once (create + start each, all in flight together)\n`);
  const dockerRate = s.docker ? CONCURRENT / results.get('dockerd')!.startSeconds : undefined;
  table(
    ['engine', 'start s', 'containers/s', 'x docker', 'remove s'],
    engines.map((e) => {
      const b = results.get(e.name)!;
      const rate = CONCURRENT / b.startSeconds;
      return [e.name, b.startSeconds.toFixed(2), rate.toFixed(1), ratio(rate, dockerRate), b.removeSeconds.toFixed(2)];
    }),
  );

  console.log(`\n4. idle memory per running container (median over the running containers; PSS splits shared pages)\n`);
  const rows: { name: string; mem: ProcMemory[] }[] = [
    { name: 'berth-monitor (berthd)', mem: results.get('berthd')!.memory },
    ...(s.docker ? [{ name: 'containerd-shim-runc-v2 (dockerd)', mem: results.get('dockerd')!.memory }] : []),
    ...(podmanMemory.length > 0 ? [{ name: 'conmon (podman)', mem: podmanMemory }] : []),
  ];
  const rss = (name: string): number | undefined => {
    const r = rows.find((x) => x.name.startsWith(name));
    return r && r.mem.length > 0 ? median(r.mem.map((m) => m.rssKb)) : undefined;
  };
  const shimKb = rss('containerd-shim');
  const conmonKb = rss('conmon');
  table(
    ['process per container', 'n', 'RSS kB', 'PSS kB', 'x shim (RSS)', 'x conmon (RSS)'],
    rows.map((r) => {
      const rssKb = r.mem.length > 0 ? median(r.mem.map((m) => m.rssKb)) : undefined;
      const pss = r.mem.map((m) => m.pssKb).filter((v): v is number => v !== undefined);
      return [r.name, String(r.mem.length), rssKb?.toFixed(0) ?? '-', pss.length ? median(pss).toFixed(0) : '-', ratio(rssKb, shimKb), ratio(rssKb, conmonKb)];
    }),
  );
  for (const [name, b] of results) for (const u of b.unaccounted) console.log(`  ${name}: ${u}`);
  const berthKb = rss('berth-monitor');
  if (berthKb !== undefined) console.log(`  target berth-monitor < 1024 kB RSS: ${berthKb < 1024 ? 'met' : 'not met'} (${berthKb.toFixed(0)} kB)`);
  console.log('\n  daemons (fixed cost, after the bursts)');
  for (const e of engines) {
    const mem = e.daemonPids().map(processMemory).filter((m): m is ProcMemory => m !== undefined);
    console.log(`  ${e.name.padEnd(10)} ${mem.reduce((n, m) => n + m.rssKb, 0).toString().padStart(8)} kB RSS (${mem.length} process${mem.length === 1 ? '' : 'es'})`);
  }
}

async function profile(s: Setup, profDir: string): Promise<void> {
  // Warm (first-use imports, JIT) before the profiler starts.
  for (let i = 0; i < 3; i++) await apiRun(s.berth, ['true']);
  process.kill(s.berthd.pid(), 'SIGUSR2');
  await apiPath(s, RUNS);

  let profiledRuns = 2 * (RUNS + 1);
  const noPerf = perfUnavailable();
  if (noPerf) console.log(`\nstart phases: skipped (${noPerf})`);
  else {
    const perf = await startPerf(profDir);
    const marks: [bigint, bigint][] = [];
    try {
      for (let i = 0; i < RUNS; i++, profiledRuns++) await apiRun(s.berth, ['true'], {}, marks);
    } finally {
      const rows = startPhases(await perf.stop(), marks);
      console.log(`\nwhere POST /containers/{id}/start goes (kernel tracepoints via perf; median of ${rows.length} of ${marks.length} starts, default seccomp)\n`);
      if (rows.length > 0) {
        for (const [k, label] of PHASES) console.log(`  ${median(rows.map((r) => r[k]!)).toFixed(2).padStart(7)} ms  ${label}`);
        console.log(`  ${median(rows.map((r) => r['total']!)).toFixed(2).padStart(7)} ms  start, total`);
      }
    }
  }
  // berthd writes its profile when it exits: stop it now (the cleanup sees it stopped).
  const problems = await s.berthd.stop();
  if (problems.length > 0) console.error(`bench: berthd left things behind:\n${problems.join('\n')}`);
  const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error(`no .cpuprofile in ${profDir}: berthd did not write one`);
  for (const f of files) {
    const sum = summariseProfile(join(profDir, f), `${REPO}/`, 25);
    const busy = sum.totalMs - (sum.special['(idle)'] ?? 0);
    console.log(`\nberthd CPU profile ${f}: ${(sum.totalMs / 1000).toFixed(1)} s wall, ${busy.toFixed(0)} ms on CPU ` +
      `(program ${(sum.special['(program)'] ?? 0).toFixed(0)} ms, GC ${(sum.special['(garbage collector)'] ?? 0).toFixed(0)} ms); ` +
      `the ${profiledRuns} API runs above are in it`);
    console.log('\n  inclusive (ms)');
    for (const x of sum.inclusive) console.log(`  ${x.ms.toFixed(1).padStart(8)}  ${x.frame}`);
    console.log('\n  self (ms)');
    for (const x of sum.self) console.log(`  ${x.ms.toFixed(1).padStart(8)}  ${x.frame}`);
    console.log('\n  self by file (ms)');
    for (const x of sum.byFile) console.log(`  ${x.ms.toFixed(1).padStart(8)}  ${x.file}`);
  }
}

async function main(): Promise<void> {
  const skip = berthdSkipReason();
  if (skip) throw new Error(`bench/engine: ${skip}`);
  const cleanups: Cleanup[] = [];
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`bench: cleanup: ${describe(err)}`);
      }
    }
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    console.error(`bench: ${sig}, cleaning up`);
    void cleanup().finally(() => process.exit(128 + (constants.signals[sig] ?? 0)));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (flags.profile) {
      const profDir = mkdtempSync(join(tmpdir(), 'berth-bench-prof-'));
      cleanups.push(() => {
        if (flags.keep) console.log(`kept ${profDir}`);
        else rmSync(profDir, { recursive: true, force: true });
      });
      const preload = new URL('./helpers/cpu-prof-preload.js', import.meta.url).href;
      const s = await setUp(cleanups, false, { NODE_OPTIONS: `--import=${preload}`, BERTH_BENCH_CPU_PROF_DIR: profDir });
      await profile(s, profDir);
    } else {
      const s = await setUp(cleanups, true);
      for (const n of s.notes) console.log(n);
      await endToEnd(s);
      console.log('');
      await apiPath(s, RUNS);
      console.log('');
      await concurrency(s);
      for (const n of s.notes) console.log(`note: ${n}`);
    }
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

await main();
