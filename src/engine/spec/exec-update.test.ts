import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Spec } from '../../runtime/spec.js';
import { buildExecProcess } from './exec.js';
import { applyResourceUpdate } from './update.js';

const facts = { cgroupV2: false, cpuCount: 2 };
const spec: Spec = {
  ociVersion: '1.2.0',
  process: {
    user: { uid: 0, gid: 0 },
    args: ['sleep', '100'],
    cwd: '/srv',
    capabilities: { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'] },
    rlimits: [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 10 }],
    noNewPrivileges: true,
    oomScoreAdj: 5,
  },
};

test('exec: container env with the exec Env over it, user, cwd, caps', (t) => {
  const rootfs = mkdtempSync(join(tmpdir(), 'berth-spec-exec-'));
  t.after(() => rmSync(rootfs, { recursive: true }));
  mkdirSync(join(rootfs, 'etc'));
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\napp:x:100:101::/home/app:/bin/sh\n');
  const config = { Hostname: 'web', Env: ['A=1', 'PATH=/bin'], User: '' };
  const p = buildExecProcess({ request: { Cmd: ['ls'], Env: ['A=2'], Tty: true, ConsoleSize: [24, 80] }, config, hostConfig: {}, spec, rootfs });
  assert.deepEqual(p.env, ['PATH=/bin', 'HOSTNAME=web', 'TERM=xterm', 'A=2', 'HOME=/root']);
  assert.equal(p.cwd, '/srv');
  assert.deepEqual(p.consoleSize, { height: 24, width: 80 });
  assert.equal(p.noNewPrivileges, true);
  assert.deepEqual(p.capabilities!.bounding, ['CAP_KILL']);
  assert.equal(p.oomScoreAdj, 5);
  const q = buildExecProcess({ request: { Cmd: ['id'], User: 'app', WorkingDir: '/tmp', Privileged: true }, config, hostConfig: {}, spec, rootfs });
  assert.deepEqual(q.user, { uid: 100, gid: 101 });
  assert.equal(q.cwd, '/tmp');
  assert.ok(q.capabilities!.bounding!.includes('CAP_SYS_ADMIN'));
  assert.throws(() => buildExecProcess({ request: { Cmd: [] }, config, hostConfig: {}, spec, rootfs }), /no exec command specified/);
  assert.throws(() => buildExecProcess({ request: { Cmd: ['x'], User: 'ghost' }, config, hostConfig: {}, spec, rootfs }), /User: unable to find user ghost/);
});

test('update: resources change, other fields are refused', () => {
  const created = applyResourceUpdate({}, { Memory: 64 << 20 }, facts);
  assert.equal(created.hostConfig.MemorySwap, 128 << 20);
  const up = applyResourceUpdate(created.hostConfig, { Memory: 256 << 20, PidsLimit: 10 }, facts);
  assert.deepEqual(up.resources.memory, { limit: 256 << 20, swap: 512 << 20 });
  assert.deepEqual(up.resources.pids, { limit: 10 });
  const cpu = applyResourceUpdate({ CpuPeriod: 50000, CpuQuota: 25000 }, { NanoCpus: 1e9 }, facts);
  assert.deepEqual(cpu.resources.cpu, { period: 100000, quota: 100000 });
  assert.throws(() => applyResourceUpdate({}, { Privileged: true }, facts), /HostConfig.Privileged: cannot be changed/);
  assert.throws(() => applyResourceUpdate({}, { Memory: 1 }, facts), /Minimum memory limit/);
  assert.throws(() => applyResourceUpdate({ AutoRemove: true }, { RestartPolicy: { Name: 'always' } }, facts), /AutoRemove/);
});
