// bench/runtime: N sequential runs of a busybox `true` bundle, side by side in one run:
//   runc run  ·  crun run (when installed and usable)  ·  berth-oci run (CLI)  ·
//   the berth runtime library called from one long-lived Node process;
// then, when podman is installed, `podman run --rm` of the same rootfs with runc and with
// berth-oci as podman's runtime (N/5 runs each).
// Prints ms per run, ratios against runc, and peak RSS.
// Usage: node dist/bench/runtime.js [N]   (default 100; BENCH_N also works)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultSpec } from '../src/runtime/default-spec.js';
import { RuntimeContext, createContainer, deleteContainer } from '../src/runtime/operations/index.js';
import { makeRootfs } from '../test/helpers/bundle.js';

const N = Number(process.argv[2] ?? process.env.BENCH_N ?? 100);
const repo = fileURLToPath(new URL('../../', import.meta.url));
const berthOci = join(repo, 'bin/berth-oci');

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function makeBundle(): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-'));
  makeRootfs(join(dir, 'rootfs'));
  const spec = defaultSpec({ args: ['true'] });
  spec.process!.terminal = false;
  spec.process!.args = ['true'];
  // runc 1.1 knows spec 1.0.2; the config uses nothing newer.
  spec.ociVersion = '1.0.2';
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return dir;
}

function timeCli(label: string, argv: (i: number) => string[]): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const [cmd, ...args] = argv(i);
    const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
    if (r.status !== 0) throw new Error(`${label} run ${i} failed (${r.status}): ${r.stderr}`);
  }
  return Number(process.hrtime.bigint() - start) / 1e6 / N;
}

function peakRssKb(cmd: string[]): number | undefined {
  if (!existsSync('/usr/bin/time')) return undefined;
  const r = spawnSync('/usr/bin/time', ['-f', '%M', ...cmd], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const kb = Number(r.stderr.trim().split('\n').pop());
  return Number.isFinite(kb) ? kb : undefined;
}

function vmHwmKb(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function timeLibrary(bundle: string, root: string): Promise<{ ms: number; helperKb: number }> {
  const ctx = new RuntimeContext({ root });
  let helperKb = 0;
  const run = async (id: string) => {
    const { launched } = await createContainer(ctx, { id, bundle, foreground: true, startNow: true, stdio: ['ignore', 'ignore', 'inherit'] });
    helperKb = Math.max(helperKb, vmHwmKb(launched.helperPid) ?? 0);
    const status = await launched.exited;
    if (status !== 0) throw new Error(`library run ${id}: wait status ${status}`);
    await deleteContainer(ctx, id, true);
  };
  await run('warm');
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await run(`lib-${i}`);
  return { ms: Number(process.hrtime.bigint() - start) / 1e6 / N, helperKb };
}

/** podman run --rm with each runtime, on throwaway storage; ms per run by runtime. */
function timePodman(podman: string, rootfsTar: string, runtimes: Record<string, string>, n: number): Record<string, number> {
  const work = mkdtempSync(join(tmpdir(), 'berth-bench-podman-'));
  const storage = ['--root', join(work, 'storage'), '--runroot', join(work, 'run'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--storage-driver', 'vfs'];
  // Podman asks for RLIMIT_NOFILE 1048576; where the host's hard limit is lower, runc fails
  // and berth-oci clamps. Ask for what the host allows so both runtimes do the same work.
  const ulimits = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'];
  const image = 'localhost/berth-bench-busybox:latest';
  const out: Record<string, number> = {};
  try {
    execFileSync(podman, [...storage, 'import', rootfsTar, image], { stdio: 'ignore' });
    for (const [name, runtime] of Object.entries(runtimes)) {
      const args = [...storage, '--runtime', runtime, 'run', '--rm', '--network', 'none', ...ulimits, image, '/bin/true'];
      execFileSync(podman, args, { stdio: 'ignore' }); // warm-up
      const start = process.hrtime.bigint();
      for (let i = 0; i < n; i++) execFileSync(podman, args, { stdio: 'ignore', timeout: 60_000 });
      out[name] = Number(process.hrtime.bigint() - start) / 1e6 / n;
    }
  } finally {
    spawnSync(podman, [...storage, 'rm', '-a', '-f'], { stdio: 'ignore' });
    spawnSync(podman, [...storage, 'rmi', '-a', '-f'], { stdio: 'ignore' });
    spawnSync('sh', ['-c', `umount -R ${work}/storage 2>/dev/null; umount -R ${work}/run 2>/dev/null; true`]);
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}

async function main(): Promise<void> {
  const bundle = makeBundle();
  const root = mkdtempSync(join(tmpdir(), 'berth-bench-root-'));
  try {
    const rows: { name: string; ms: number }[] = [];
    const runc = which('runc');
    let runcMs: number | undefined;
    if (runc) {
      runcMs = timeCli('runc', (i) => [runc, '--root', join(root, 'runc'), 'run', '--bundle', bundle, `runc-${i}`]);
      rows.push({ name: 'runc run', ms: runcMs });
    } else console.log('runc: not installed, ratios are absolute times only');
    const crun = which('crun');
    if (crun) {
      try {
        rows.push({ name: 'crun run', ms: timeCli('crun', (i) => [crun, '--root', join(root, 'crun'), 'run', '--bundle', bundle, `crun-${i}`]) });
      } catch (err) {
        console.log(`crun: skipped (${String(err).split('\n')[0].slice(0, 200)})`);
      }
    }
    rows.push({ name: 'berth-oci run (CLI)', ms: timeCli('berth-oci', (i) => [berthOci, '--root', join(root, 'berth'), 'run', '--bundle', bundle, `cli-${i}`]) });
    const lib = await timeLibrary(bundle, join(root, 'lib'));
    rows.push({ name: 'berth library (one Node process)', ms: lib.ms });

    console.log(`\nbench/runtime: ${N} sequential runs of a busybox "true" bundle\n`);
    for (const r of rows) {
      const ratio = runcMs ? `   ${(r.ms / runcMs).toFixed(2)} x runc` : '';
      console.log(`${r.name.padEnd(34)} ${r.ms.toFixed(2).padStart(8)} ms/run${ratio}`);
    }
    console.log('\npeak RSS');
    console.log(`${'berth-exec (the per-container C)'.padEnd(34)} ${String(lib.helperKb).padStart(8)} kB  (VmHWM while the container runs)`);
    const cliKb = peakRssKb([berthOci, '--root', join(root, 'berth'), 'run', '--bundle', bundle, 'rss-cli']);
    if (cliKb) console.log(`${'berth-oci run (Node CLI)'.padEnd(34)} ${String(cliKb).padStart(8)} kB`);
    const runcKb = runc ? peakRssKb([runc, '--root', join(root, 'runc'), 'run', '--bundle', bundle, 'rss-runc']) : undefined;
    if (runcKb) console.log(`${'runc run'.padEnd(34)} ${String(runcKb).padStart(8)} kB`);
    if (!existsSync('/usr/bin/time')) console.log('(CLI peak RSS needs /usr/bin/time: apt-get install time)');

    const podman = which('podman');
    if (podman && runc) {
      const tar = join(root, 'rootfs.tar');
      execFileSync('tar', ['-C', join(bundle, 'rootfs'), '-cf', tar, '.']);
      const n = Math.max(5, Math.round(N / 5));
      const p = timePodman(podman, tar, { runc, 'berth-oci': berthOci }, n);
      console.log(`\npodman run --rm (${n} runs each, same image and storage)`);
      for (const [name, ms] of Object.entries(p)) console.log(`${`podman --runtime ${name}`.padEnd(34)} ${ms.toFixed(2).padStart(8)} ms/run   ${(ms / p.runc).toFixed(2)} x runc`);
    } else console.log('\npodman: not installed, skipped');
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(bundle, { recursive: true, force: true });
  }
}

await main();
