// Podman driving the runtime under test (`podman --runtime`): run, exec, stop, and an
// interactive -t run. Uses its own podman storage in temp dirs and an image imported from
// a tar of the busybox test rootfs (no registry needed). Skips when podman is absent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeRootfs } from './helpers/bundle.js';
import { runCommand, runtimeBin, show, isRunc, type RunResult } from './helpers/runtime.js';
import { detachMountsUnder, findLeaks, reapLeaks, describeLeaks } from './helpers/leaks.js';

function which(cmd: string): string | undefined {
  for (const d of (process.env['PATH'] ?? '/usr/bin:/bin').split(':')) if (existsSync(join(d, cmd))) return join(d, cmd);
  return undefined;
}

const PODMAN = which('podman');
const SKIP = PODMAN ? false : 'podman is not installed';
const IMAGE = 'localhost/berth-test-busybox:latest';
let work = '';
let storage: string[] = [];
const names: string[] = [];
// Podman asks for RLIMIT_NOFILE 1048576; runc 1.1.5 cannot raise it here (no CAP_SYS_RESOURCE)
// and fails, while berth-oci clamps it with a warning. Give runc the host's limits.
const RUN_FLAGS = isRunc() ? ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'] : [];

async function podman(args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return runCommand(PODMAN!, [...storage, '--runtime', runtimeBin(), ...args], work, { timeoutMs: opts.timeoutMs ?? 60_000 });
}

before(async () => {
  if (!PODMAN) return;
  work = mkdtempSync(join(tmpdir(), 'berth-test-podman-'));
  storage = [
    '--root', join(work, 'storage'),
    '--runroot', join(work, 'run'),
    '--cgroup-manager', 'cgroupfs',
    '--events-backend', 'file',
    '--storage-driver', 'vfs',
  ];
  const rootfs = join(work, 'rootfs');
  makeRootfs(rootfs);
  const tar = join(work, 'rootfs.tar');
  execFileSync('tar', ['-C', rootfs, '-cf', tar, '.']);
  const r = await podman(['import', tar, IMAGE]);
  assert.equal(r.code, 0, show(r));
});

after(async () => {
  if (!PODMAN) return;
  for (const n of names) await podman(['rm', '-f', '-t', '0', n]);
  await podman(['rmi', '-f', IMAGE]);
  const scope = { paths: [work], ids: names, roots: [] };
  const leaks = findLeaks(scope);
  reapLeaks(leaks);
  await runCommand(PODMAN, [...storage, 'system', 'reset', '-f'], tmpdir()).catch(() => undefined);
  detachMountsUnder(work);
  rmSync(work, { recursive: true, force: true });
  assert.equal(describeLeaks(leaks), '', 'podman tests left things behind');
});

test('podman run --rm with the runtime', { skip: SKIP }, async () => {
  const r = await podman(['run', ...RUN_FLAGS, '--rm', IMAGE, '/probe', 'report']);
  assert.equal(r.code, 0, show(r));
  const report = JSON.parse(r.stdout);
  assert.equal(report.pid, 1);
  const code = await podman(['run', ...RUN_FLAGS, '--rm', IMAGE, '/bin/sh', '-c', 'exit 3']);
  assert.equal(code.code, 3, show(code));
});

test('podman run -d, exec, stop, rm', { skip: SKIP }, async () => {
  const name = `bt-podman-${process.pid}`;
  names.push(name);
  const r = await podman(['run', ...RUN_FLAGS, '-d', '--name', name, IMAGE, '/probe', 'signals']);
  assert.equal(r.code, 0, show(r));
  const e = await podman(['exec', name, '/bin/echo', 'from-exec']);
  assert.equal(e.code, 0, show(e));
  assert.equal(e.stdout, 'from-exec\n');
  const s = await podman(['stop', '-t', '5', name]);
  assert.equal(s.code, 0, show(s));
  const logs = await podman(['logs', name]);
  assert.match(logs.stdout, /SIGTERM/, 'stop delivered SIGTERM to the process');
  const rm = await podman(['rm', name]);
  assert.equal(rm.code, 0, show(rm));
});

test('podman run -it through a terminal', { skip: SKIP || (which('script') ? false : 'script(1) is missing') }, async () => {
  const cmd = [PODMAN!, ...storage, '--runtime', runtimeBin(), 'run', ...RUN_FLAGS, '--rm', '-t', IMAGE, '/bin/sh', '-c', 'tty; echo tty-ok']
    .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
    .join(' ');
  const r = await runCommand('script', ['-qec', cmd, '/dev/null'], work, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /\/dev\/pts\/0/);
  assert.match(r.stdout, /tty-ok/);
});
