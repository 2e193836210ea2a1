// Docker driving the runtime under test: a private Debian dockerd + containerd (see
// helpers/dockerd.ts) with `--add-runtime berth=<runtime>`, then run (output, cgroup, exit
// codes), run -d / exec / ps / update / logs / stop / rm, -t and -it through a terminal, and
// --memory / --pids-limit. The image is a tar of the busybox test rootfs (`docker import`, no
// registry). Skips when the binaries are absent. BERTH_TEST_DOCKER_LOGS=<dir> keeps the
// daemons' logs there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, rmSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeRootfs } from './helpers/bundle.js';
import { dockerSkipReason, startDocker, type PrivateDocker } from './helpers/dockerd.js';
import { runCommand, runtimeBin, show, type RunResult } from './helpers/runtime.js';

function which(cmd: string): string | undefined {
  for (const d of (process.env['PATH'] ?? '/usr/bin:/bin').split(':')) if (existsSync(join(d, cmd))) return join(d, cmd);
  return undefined;
}

const SCRIPT = which('script');
// Every container here runs with --runtime berth, so runc need not be installed.
const SKIP = dockerSkipReason({ runc: false });
const SKIP_TTY: string | false = SKIP || (SCRIPT ? false : 'script(1) (util-linux) is missing');
if (SKIP) process.stderr.write(`docker.test: skipped: ${SKIP}\n`);

const IMAGE = 'berth-test-busybox:latest';
const CMD_MS = 60_000;

let dockerd: PrivateDocker | undefined;

function docker(args: string[], timeoutMs = CMD_MS): Promise<RunResult> {
  return dockerd!.docker(args, { timeoutMs });
}

const RUN = ['--runtime', 'berth', '--network', 'none'];

function shellQuote(args: string[]): string {
  return args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
}

/** script(1)'s arguments to run a docker command line in its pty (24x80), so the client has a terminal. */
function inTerminal(args: string[]): string[] {
  return ['-qec', `stty rows 24 cols 80; exec ${shellQuote(dockerd!.argv(args))}`, '/dev/null'];
}

async function dockerInTerminal(args: string[]): Promise<RunResult> {
  return runCommand(SCRIPT!, inTerminal(args), dockerd!.work, { timeoutMs: CMD_MS, env: dockerd!.env });
}

// --- set-up and tear-down ---

before(async () => {
  if (SKIP) return;
  dockerd = await startDocker({ label: 'docker', runtimes: { berth: runtimeBin() } });
  const rootfs = join(dockerd.work, 'rootfs');
  makeRootfs(rootfs);
  const tar = join(dockerd.work, 'rootfs.tar');
  execFileSync('tar', ['-C', rootfs, '-cf', tar, '.'], { timeout: 30_000 });
  rmSync(rootfs, { recursive: true, force: true });
  const r = await docker(['import', tar, IMAGE]);
  assert.equal(r.code, 0, show(r));
});

after(async () => {
  if (!dockerd) return;
  const problems = await dockerd.stop();
  assert.equal(problems.join('\n'), '', 'the docker tests left things behind');
});

// --- the tests ---

test('docker run --rm: output, the cgroup parent, exit codes', { skip: SKIP }, async () => {
  const r = await docker(['run', '--rm', ...RUN, IMAGE, 'sh', '-c', 'echo hi; cat /proc/1/cgroup']);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /^hi\n/);
  assert.match(r.stdout, new RegExp(`:/${dockerd!.cgroupParent}/[0-9a-f]{64}$`, 'm'), 'pid 1 is in the cgroup dockerd asked for');
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
    const dir = join('/sys/fs/cgroup', h, dockerd!.cgroupParent, id);
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
  const scriptArgs = inTerminal(['run', '--rm', '-i', '-t', ...RUN, IMAGE, 'sh', '-c', 'echo ready; read x; echo "got=$x"']);
  const child = spawn(SCRIPT!, scriptArgs, { stdio: ['pipe', 'pipe', 'pipe'], env: dockerd!.env, cwd: dockerd!.work });
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
