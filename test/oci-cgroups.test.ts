// Cgroups: limits from config.json on the host and inside, cgroupsPath, update,
// pause/resume, events --stats and ps.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Suite } from './helpers/suite.js';
import { show } from './helpers/runtime.js';
import type { Spec } from './helpers/bundle.js';

const s = new Suite('cg');
const rt = s.rt;
after(() => s.assertClean());

type Resources = NonNullable<NonNullable<Spec['linux']>['resources']>;

/** Where each cgroup controller (or "" for the v2 unified hierarchy) is mounted on the host. */
function hierarchies(): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-');
    if (dash < 0) continue;
    const fstype = f[dash + 1];
    if (fstype === 'cgroup2') m.set('', f[4]!);
    else if (fstype === 'cgroup') for (const o of f[dash + 3]!.split(',')) if (!m.has(o)) m.set(o, f[4]!);
  }
  return m;
}

/** The host path of a process's cgroup for a controller (v1) or the unified hierarchy (""). */
function cgroupDir(pid: number, controller: string): string | undefined {
  const h = hierarchies();
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const [, ctrls, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (ctrls === undefined || path === undefined) continue;
    const list = ctrls.split(',');
    if ((controller === '' && ctrls === '') || (controller !== '' && list.includes(controller))) {
      const mnt = h.get(controller);
      return mnt && join(mnt, path);
    }
  }
  return undefined;
}

function cgRead(pid: number, controller: string, file: string): string {
  const d = cgroupDir(pid, controller);
  assert.ok(d, `process ${pid} has a ${controller} cgroup`);
  return readFileSync(join(d, file), 'utf8').trim();
}

const isV1 = hierarchies().has('memory');

async function runDetached(edit: (sp: Spec) => void, args = ['/probe', 'sleep', '120']): Promise<{ id: string; pid: number }> {
  const b = s.bundle({ args, edit });
  const id = s.id();
  const r = await rt.run(id, b.dir, { detach: true });
  assert.equal(r.code, 0, show(r));
  return { id, pid: (await rt.state(id)).pid };
}

const LIMITS: Resources = {
  memory: { limit: 64 * 1024 * 1024 },
  pids: { limit: 50 },
  cpu: { quota: 50000, period: 100000, shares: 512, cpus: '0' },
} as Resources;

test('memory, pids and cpu limits are set on the host cgroup', async (t) => {
  if (!isV1) return t.skip('this test reads cgroup v1 files');
  const { id, pid } = await runDetached((sp) => (sp.linux!.resources = { ...sp.linux!.resources, ...LIMITS }));
  assert.equal(cgRead(pid, 'memory', 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
  assert.equal(cgRead(pid, 'pids', 'pids.max'), '50');
  assert.equal(cgRead(pid, 'cpu', 'cpu.cfs_quota_us'), '50000');
  assert.equal(cgRead(pid, 'cpu', 'cpu.cfs_period_us'), '100000');
  assert.equal(cgRead(pid, 'cpu', 'cpu.shares'), '512');
  assert.equal(cgRead(pid, 'cpuset', 'cpuset.cpus'), '0');
  for (const c of ['memory', 'pids', 'cpu', 'cpuset', 'freezer', 'devices', 'blkio']) {
    assert.match(cgroupDir(pid, c) ?? '', new RegExp(id), `${c} cgroup named after the container`);
  }
  assert.equal((await rt.delete(id, { force: true })).code, 0);
});

test('limits are visible from inside through /sys/fs/cgroup', async (t) => {
  if (!isV1) return t.skip('this test reads cgroup v1 files');
  const { report } = await s.probe({ edit: (sp) => (sp.linux!.resources = { ...sp.linux!.resources, ...LIMITS }) });
  assert.equal(report.cgroupFiles['/sys/fs/cgroup/memory/memory.limit_in_bytes'], String(64 * 1024 * 1024));
  assert.equal(report.cgroupFiles['/sys/fs/cgroup/pids/pids.max'], '50');
  assert.equal(report.cgroupFiles['/sys/fs/cgroup/cpu/cpu.cfs_quota_us'], '50000');
});

test('the pids limit is enforced', async () => {
  const b = s.bundle({
    args: ['/bin/sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do /probe sleep 5 & done; wait; echo end'],
    edit: (sp) => (sp.linux!.resources = { ...sp.linux!.resources, pids: { limit: 4 } } as Resources),
  });
  const r = await rt.run(s.id(), b.dir);
  assert.match(r.stderr, /fork|resource|again/i, `forks beyond the limit fail\n${show(r)}`);
});

test('cgroupsPath absolute and relative', async (t) => {
  if (!isV1) return t.skip('this test reads cgroup v1 paths');
  const absName = `bt-abs-${process.pid}`;
  const a = await runDetached((sp) => (sp.linux!.cgroupsPath = `/${absName}`));
  assert.equal(cgroupDir(a.pid, 'memory'), join(hierarchies().get('memory')!, absName));
  const relName = `bt-rel-${process.pid}`;
  const r = await runDetached((sp) => (sp.linux!.cgroupsPath = relName));
  assert.match(cgroupDir(r.pid, 'memory') ?? '', new RegExp(`/${relName}$`));
  assert.equal((await rt.delete(a.id, { force: true })).code, 0);
  assert.equal((await rt.delete(r.id, { force: true })).code, 0);
  const left = [absName, relName].filter((n) => existsSync(join(hierarchies().get('memory')!, n)));
  assert.deepEqual(left, [], 'delete removes the cgroups');
});

test('update changes limits (flags and --resources -)', async (t) => {
  if (!isV1) return t.skip('this test reads cgroup v1 files');
  const { id, pid } = await runDetached((sp) => (sp.linux!.resources = { ...sp.linux!.resources, ...LIMITS }));
  const u = await rt.cmd(['update', '--memory', '134217728', '--pids-limit', '60', '--cpu-quota', '20000', '--cpu-period', '100000', id]);
  assert.equal(u.code, 0, show(u));
  assert.equal(cgRead(pid, 'memory', 'memory.limit_in_bytes'), '134217728');
  assert.equal(cgRead(pid, 'pids', 'pids.max'), '60');
  assert.equal(cgRead(pid, 'cpu', 'cpu.cfs_quota_us'), '20000');
  const j = await rt.cmd(['update', '--resources', '-', id], { input: JSON.stringify({ memory: { limit: 100 * 1024 * 1024 }, pids: { limit: 70 } }) });
  assert.equal(j.code, 0, show(j));
  assert.equal(cgRead(pid, 'memory', 'memory.limit_in_bytes'), String(100 * 1024 * 1024));
  assert.equal(cgRead(pid, 'pids', 'pids.max'), '70');
  assert.equal((await rt.delete(id, { force: true })).code, 0);
});

test('pause → paused (frozen), resume → running', async () => {
  const { id, pid } = await runDetached(() => undefined);
  const p = await rt.cmd(['pause', id]);
  assert.equal(p.code, 0, show(p));
  assert.equal((await rt.state(id)).status, 'paused');
  if (isV1) assert.equal(cgRead(pid, 'freezer', 'freezer.state'), 'FROZEN');
  assert.match(readFileSync(`/proc/${pid}/status`, 'utf8'), /^State:\s+[DS]/m);
  const again = await rt.cmd(['pause', id]);
  assert.notEqual(again.code, 0, 'pausing a paused container fails');
  const r = await rt.cmd(['resume', id]);
  assert.equal(r.code, 0, show(r));
  assert.equal((await rt.state(id)).status, 'running');
  if (isV1) assert.equal(cgRead(pid, 'freezer', 'freezer.state'), 'THAWED');
  const notPaused = await rt.cmd(['resume', id]);
  assert.notEqual(notPaused.code, 0, 'resuming a running container fails');
  assert.equal((await rt.delete(id, { force: true })).code, 0);
});

test('delete --force of a paused container', async () => {
  const { id } = await runDetached(() => undefined);
  assert.equal((await rt.cmd(['pause', id])).code, 0);
  const d = await rt.delete(id, { force: true });
  assert.equal(d.code, 0, show(d));
  assert.notEqual((await rt.cmd(['state', id])).code, 0);
});

test('events --stats prints one stats object', async () => {
  const { id } = await runDetached((sp) => (sp.linux!.resources = { ...sp.linux!.resources, memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 50 } } as Resources));
  const e = await rt.cmd(['events', '--stats', id]);
  assert.equal(e.code, 0, show(e));
  const ev = JSON.parse(e.stdout.trim().split('\n')[0]!);
  assert.equal(ev.type, 'stats');
  assert.equal(ev.id, id);
  assert.ok(ev.data.pids.current >= 1, JSON.stringify(ev.data.pids));
  assert.ok(ev.data.memory.usage.usage > 0, 'memory usage reported');
  assert.equal(ev.data.memory.usage.limit, 64 * 1024 * 1024);
  assert.ok(typeof ev.data.cpu.usage.total === 'number');
  assert.equal((await rt.delete(id, { force: true })).code, 0);
});

test('ps lists the container processes (json and table)', async () => {
  const { id, pid } = await runDetached((sp) => (sp.linux!.namespaces = sp.linux!.namespaces!), ['/bin/sh', '-c', '/probe sleep 120 & wait']);
  const j = await rt.cmd(['ps', '--format', 'json', id]);
  assert.equal(j.code, 0, show(j));
  const pids = JSON.parse(j.stdout) as number[];
  assert.ok(pids.includes(pid), `${pids} includes init ${pid}`);
  assert.ok(pids.length >= 2);
  const tbl = await rt.cmd(['ps', id]);
  assert.equal(tbl.code, 0, show(tbl));
  assert.match(tbl.stdout, /PID/);
  assert.match(tbl.stdout, new RegExp(`\\b${pid}\\b`));
  assert.equal((await rt.delete(id, { force: true })).code, 0);
});
