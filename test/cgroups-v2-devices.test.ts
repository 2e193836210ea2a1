// The cgroup v2 device controller end to end: berth's generated eBPF program, loaded by
// berth-exec (OP_DEVICE_BPF) on a real cgroup2 directory, decides which device nodes a
// process inside may open. Root; skipped when the host has no writable cgroup2 mount.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmdirSync, mkdirSync } from 'node:fs';
import { compileDeviceProgram, discoverCgroupHostSync } from '../src/runtime/cgroups/index.js';
import { launch, exitCodeOf } from '../src/runtime/exec-channel.js';
import { Op, type Plan } from '../src/runtime/plan.js';
import type { DeviceCgroup } from '../src/runtime/spec.js';

const host = discoverCgroupHostSync();
const v2 = host.v2?.mountPoint;
const skip =
  process.getuid?.() !== 0 ? 'needs root' : !v2 ? 'this host has no cgroup2 mount' : !existsSync('/bin/busybox') ? 'needs /bin/busybox' : false;
const dirs: string[] = [];

after(() => {
  for (const d of dirs) if (existsSync(d)) rmdirSync(d);
  for (const d of dirs) assert.ok(!existsSync(d), `${d} left behind`);
});

async function runUnder(rules: DeviceCgroup[], script: string): Promise<{ code: number; out: string }> {
  const dir = `${v2}/berth-devtest-${process.pid}-${dirs.length}`;
  mkdirSync(dir);
  dirs.push(dir);
  const plan: Plan = [
    { op: Op.CGROUP_JOIN, args: [dir] },
    { op: Op.DEVICE_BPF, args: [dir, compileDeviceProgram(rules), 'Apache-2.0'] },
    { op: Op.CLONE, args: [0] },
    { op: Op.FOREGROUND, args: [] },
    { op: Op.CHILD, args: [] },
    { op: Op.CLOSE_FDS, args: [3] },
    { op: Op.EXEC, args: ['/', 4, '/bin/busybox', 'sh', '-c', script, 'PATH=/bin:/usr/bin'] },
  ];
  const launched = await launch({ plan, foreground: true, stdio: ['ignore', 'pipe', 'pipe'], timeoutMs: 20_000 });
  const chunks: Buffer[] = [];
  launched.stdout!.on('data', (d: Buffer) => chunks.push(d));
  launched.stderr!.on('data', (d: Buffer) => chunks.push(d));
  const code = exitCodeOf(await launched.exited);
  return { code, out: Buffer.concat(chunks).toString() };
}

const probe = (dev: string) => `if head -c1 ${dev} >/dev/null 2>&1; then echo ${dev}=ok; else echo ${dev}=denied; fi`;

test('v2 device program: the last matching rule wins, unmatched devices are denied', { skip }, async () => {
  const { code, out } = await runUnder(
    [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // null
      { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' }, // urandom
      { allow: false, type: 'c', major: 1, minor: 9, access: 'r' }, // …but not reading it
    ],
    `${probe('/dev/null')}; ${probe('/dev/zero')}; ${probe('/dev/urandom')}`,
  );
  assert.equal(code, 0, out);
  assert.match(out, /\/dev\/null=ok/);
  assert.match(out, /\/dev\/zero=denied/);
  assert.match(out, /\/dev\/urandom=denied/);
});

test('v2 device program: allow-all with one deny', { skip }, async () => {
  const { out } = await runUnder(
    [
      { allow: true, access: 'rwm' },
      { allow: false, type: 'c', major: 1, minor: 5, access: 'rwm' },
    ],
    `${probe('/dev/null')}; ${probe('/dev/zero')}`,
  );
  assert.match(out, /\/dev\/null=ok/);
  assert.match(out, /\/dev\/zero=denied/);
});

test('the device program is gone with its cgroup', { skip }, () => {
  for (const d of dirs) if (existsSync(d)) rmdirSync(d);
  for (const d of dirs) assert.ok(!existsSync(d));
  assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes('berth-devtest'));
});
