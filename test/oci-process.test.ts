// The container process as configured: user, groups, umask, cwd, env, args, hostname,
// rlimits, capabilities, noNewPrivileges, oomScoreAdj — all checked from inside by the probe.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Suite, capMask, capNames } from './helpers/suite.js';
import { show } from './helpers/runtime.js';

const s = new Suite('proc');
const rt = s.rt;
after(() => s.assertClean());

/** The host's own [soft, hard] for a /proc/self/limits row. */
function hostLimit(row: string): [string, string] {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(row));
  if (!line) throw new Error(`no ${row} in /proc/self/limits`);
  const cols = line.slice(row.length).trim().split(/\s+/);
  return [cols[0]!, cols[1]!];
}

test('args, env and cwd', async () => {
  const { report } = await s.probe({
    extra: ['--read', '/etc/hostname'],
    edit: (sp) => {
      sp.process!.env = ['PATH=/bin', 'FOO=bar baz', 'EMPTY='];
      sp.process!.cwd = '/tmp';
    },
  });
  assert.deepEqual(report.argv, ['/probe', 'report', '--read', '/etc/hostname']);
  assert.ok(report.env.includes('FOO=bar baz'), JSON.stringify(report.env));
  assert.ok(report.env.includes('EMPTY='));
  assert.ok(report.env.includes('PATH=/bin'));
  assert.equal(report.cwd, '/tmp');
});

test('a cwd that does not exist is created', async () => {
  const { report } = await s.probe({ edit: (sp) => (sp.process!.cwd = '/new/dir') });
  assert.equal(report.cwd, '/new/dir');
});

test('user: uid, gid, additionalGids, umask', async () => {
  const { report } = await s.probe({
    edit: (sp) => (sp.process!.user = { uid: 1000, gid: 1000, additionalGids: [2000, 100], umask: 0o027 }),
  });
  assert.equal(report.uid, 1000);
  assert.equal(report.euid, 1000);
  assert.equal(report.gid, 1000);
  assert.equal(report.egid, 1000);
  assert.deepEqual([...report.groups].filter((g) => g !== 1000).sort((a, b) => a - b), [100, 2000]);
  assert.equal(report.umask, '0027');
});

test('root user has no supplementary groups unless configured; default umask 0022', async () => {
  const { report } = await s.probe({ edit: (sp) => (sp.process!.user = { uid: 0, gid: 0 }) });
  assert.equal(report.uid, 0);
  assert.deepEqual(report.groups.filter((g) => g !== 0), []);
  assert.equal(report.umask, '0022');
});

test('hostname and domainname in a new uts namespace', async (t) => {
  const { report } = await s.probe({
    edit: (sp) => {
      sp.hostname = 'berth-host';
      sp.domainname = 'example.org';
    },
  });
  assert.equal(report.hostname, 'berth-host');
  if (rt.isRunc) return t.skip('runc 1.1.5 ignores domainname (added in runc 1.2)');
  assert.equal(report.domainname, 'example.org');
});

test('rlimits are applied (soft and hard)', async () => {
  const { report } = await s.probe({
    edit: (sp) => {
      sp.process!.rlimits = [
        { type: 'RLIMIT_NOFILE', soft: 512, hard: 1024 },
        { type: 'RLIMIT_CORE', soft: 0, hard: 4096 },
        { type: 'RLIMIT_NPROC', soft: 300, hard: 400 },
        { type: 'RLIMIT_MSGQUEUE', soft: 8192, hard: 8192 },
      ];
    },
  });
  assert.deepEqual(report.rlimits['RLIMIT_NOFILE'], { soft: 512, hard: 1024 });
  assert.deepEqual(report.rlimits['RLIMIT_CORE'], { soft: 0, hard: 4096 });
  assert.deepEqual(report.rlimits['RLIMIT_NPROC'], { soft: 300, hard: 400 });
  assert.deepEqual(report.rlimits['RLIMIT_MSGQUEUE'], { soft: 8192, hard: 8192 });
});

test('an rlimit above the host hard limit is clamped with a warning', async (t) => {
  if (rt.isRunc) return t.skip('runc 1.1.5 fails with EPERM instead of clamping (no CAP_SYS_RESOURCE here)');
  const hard = Number(hostLimit('Max open files')[1]);
  const b = s.bundle({
    args: ['/probe', 'report'],
    edit: (sp) => (sp.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: hard + 1000, hard: hard + 1000 }]),
  });
  const r = await rt.run(s.id(), b.dir);
  assert.equal(r.code, 0, show(r));
  const report = JSON.parse(r.stdout);
  assert.deepEqual(report.rlimits.RLIMIT_NOFILE, { soft: hard, hard });
  assert.match(r.stderr, /RLIMIT_NOFILE/, 'a warning names the clamped limit');
});

test('capabilities: all five sets exactly as configured (root)', async () => {
  const caps = {
    bounding: ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_SETUID', 'CAP_SETGID'],
    permitted: ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
    effective: ['CAP_CHOWN', 'CAP_KILL'],
    inheritable: ['CAP_KILL', 'CAP_NET_BIND_SERVICE'],
    ambient: ['CAP_KILL'],
  };
  const { report } = await s.probe({ edit: (sp) => (sp.process!.capabilities = caps) });
  for (const k of ['bounding', 'permitted', 'inheritable', 'ambient'] as const) {
    assert.equal(report.capabilities[k], capMask(caps[k]), `${k}: got ${capNames(report.capabilities[k]).join(',')}`);
  }
  // execve by uid 0 (without SECBIT_NOROOT) raises effective to permitted: the kernel's rule, not the runtime's.
  assert.equal(report.capabilities.effective, capMask(caps.permitted), `effective: got ${capNames(report.capabilities.effective).join(',')}`);
});

test('capabilities for a non-root user (ambient carries them over)', async () => {
  const set = ['CAP_NET_BIND_SERVICE', 'CAP_KILL'];
  const { report } = await s.probe({
    edit: (sp) => {
      sp.process!.user = { uid: 1000, gid: 1000 };
      sp.process!.capabilities = { bounding: set, permitted: set, effective: set, inheritable: set, ambient: set };
    },
  });
  for (const k of ['bounding', 'permitted', 'effective', 'inheritable', 'ambient'] as const) {
    assert.equal(report.capabilities[k], capMask(set), `${k}: got ${capNames(report.capabilities[k]).join(',')}`);
  }
});

test('no capabilities at all', async () => {
  const { report } = await s.probe({ edit: (sp) => (sp.process!.capabilities = {}) });
  for (const k of ['bounding', 'permitted', 'effective', 'inheritable', 'ambient'] as const) {
    assert.equal(report.capabilities[k], '0000000000000000', k);
  }
});

test('noNewPrivileges true and false', async () => {
  const on = await s.probe({ edit: (sp) => (sp.process!.noNewPrivileges = true) });
  assert.equal(on.report.noNewPrivs, 1);
  const off = await s.probe({ edit: (sp) => (sp.process!.noNewPrivileges = false) });
  assert.equal(off.report.noNewPrivs, 0);
});

test('oomScoreAdj positive', async () => {
  const { report } = await s.probe({ edit: (sp) => (sp.process!.oomScoreAdj = 500) });
  assert.equal(report.oomScoreAdj, 500);
});

test('oomScoreAdj negative below what the host allows is clamped with a warning', async (t) => {
  if (rt.isRunc) return t.skip('runc 1.1.5 fails with EACCES instead of clamping (no CAP_SYS_RESOURCE here)');
  const b = s.bundle({ args: ['/probe', 'report'], edit: (sp) => (sp.process!.oomScoreAdj = -500) });
  const r = await rt.run(s.id(), b.dir);
  assert.equal(r.code, 0, show(r));
  const report = JSON.parse(r.stdout);
  assert.ok(report.oomScoreAdj > -500 && report.oomScoreAdj <= 0, `clamped: ${report.oomScoreAdj}`);
  assert.match(r.stderr, /oom/i, 'a warning about oomScoreAdj');
});

test('the process runs as pid 1 of its pid namespace with no parent inside', async () => {
  const { report } = await s.probe();
  assert.equal(report.pid, 1);
  assert.equal(report.ppid, 0);
});

test('personality, I/O priority, scheduler policy and cpu affinity', async (t) => {
  if (rt.isRunc) return t.skip('runc 1.1.5 predates ioPriority, scheduler and execCPUAffinity');
  const b = s.bundle({
    args: ['/bin/sh', '-c', 'uname -m; ionice -p $$; taskset -p $$; grep -E "^policy" /proc/self/sched'],
    edit: (sp) => {
      sp.linux!.personality = { domain: 'LINUX32' };
      sp.process!.ioPriority = { class: 'IOPRIO_CLASS_BE', priority: 6 };
      sp.process!.scheduler = { policy: 'SCHED_BATCH', nice: 3 };
      sp.process!.execCPUAffinity = { final: '0' };
    },
  });
  const r = await rt.run(s.id(), b.dir);
  assert.equal(r.code, 0, show(r));
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0]!, /^i[3-6]86$/, 'LINUX32 personality');
  assert.match(r.stdout, /best-effort: prio 6/);
  assert.match(r.stdout, /affinity mask: 1\b/);
  assert.match(r.stdout, /policy\s*:\s*3/, 'SCHED_BATCH is policy 3');
});

test('a scheduler policy the host refuses is a clear error', async (t) => {
  if (rt.isRunc) return t.skip('runc 1.1.5 predates the scheduler setting');
  const b = s.bundle({
    args: ['/bin/true'],
    edit: (sp) => (sp.process!.scheduler = { policy: 'SCHED_DEADLINE', runtime: 10, deadline: 5, period: 1 }),
  });
  const r = await rt.run(s.id(), b.dir);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /sched_setattr policy 6/, show(r));
});
