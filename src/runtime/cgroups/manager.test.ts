// Every translation against temp directories posing as v1, v2 and hybrid cgroupfs.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { isBerthError } from '../../errors.js';
import type { Resources } from '../spec.js';
import { kernelIo, type CgroupIo } from './cgroupfs.js';
import type { CgroupHost, CgroupMount } from './discover.js';
import { createCgroupManager } from './factory.js';
import { loadCgroupManager } from './manager.js';
import type { CgroupManager, CgroupMode } from './types.js';

const V1_SEEDS: Record<string, Record<string, string>> = {
  memory: {
    'memory.limit_in_bytes': '9223372036854771712',
    'memory.memsw.limit_in_bytes': '9223372036854771712',
    'memory.soft_limit_in_bytes': '9223372036854771712',
    'memory.kmem.tcp.limit_in_bytes': '9223372036854771712',
    'memory.swappiness': '60',
    'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
    'memory.use_hierarchy': '1',
    'memory.usage_in_bytes': '1000',
    'memory.max_usage_in_bytes': '2000',
    'memory.failcnt': '1',
    'memory.memsw.usage_in_bytes': '1500',
    'memory.stat': 'cache 10\nrss 20\n',
  },
  cpu: {
    'cpu.shares': '1024', 'cpu.cfs_period_us': '100000', 'cpu.cfs_quota_us': '-1', 'cpu.cfs_burst_us': '0',
    'cpu.rt_period_us': '1000000', 'cpu.rt_runtime_us': '0', 'cpu.idle': '0',
    'cpu.stat': 'nr_periods 5\nnr_throttled 2\nthrottled_time 300\n',
  },
  cpuacct: { 'cpuacct.usage': '12345', 'cpuacct.usage_percpu': '10000 2345 \n', 'cpuacct.stat': 'user 3\nsystem 4\n' },
  cpuset: { 'cpuset.cpus': '', 'cpuset.mems': '' },
  devices: { 'devices.allow': '', 'devices.deny': '', 'devices.list': 'a *:* rwm' },
  freezer: { 'freezer.state': 'THAWED' },
  blkio: {
    'blkio.bfq.weight': '100', 'blkio.bfq.weight_device': '',
    'blkio.throttle.read_bps_device': '', 'blkio.throttle.write_bps_device': '',
    'blkio.throttle.read_iops_device': '', 'blkio.throttle.write_iops_device': '',
    'blkio.throttle.io_service_bytes_recursive': '8:0 Read 100\n8:0 Write 200\n8:0 Sync 0\nTotal 300\n',
    'blkio.throttle.io_serviced_recursive': '8:0 Read 1\n8:0 Write 2\nTotal 3\n',
  },
  pids: { 'pids.max': 'max', 'pids.current': '3' },
  hugetlb: {
    'hugetlb.2MB.limit_in_bytes': '9223372036854771712', 'hugetlb.2MB.usage_in_bytes': '0',
    'hugetlb.2MB.max_usage_in_bytes': '2097152', 'hugetlb.2MB.failcnt': '0',
  },
  'name=systemd': {},
};

const V2_SEEDS: Record<string, Record<string, string>> = {
  base: { 'cgroup.procs': '', 'cgroup.freeze': '0', 'cgroup.events': 'populated 0\nfrozen 0\n', 'cgroup.kill': '', 'cpu.stat': 'usage_usec 1000\nuser_usec 600\nsystem_usec 400\n' },
  memory: {
    'memory.max': 'max', 'memory.swap.max': 'max', 'memory.low': '0', 'memory.high': 'max', 'memory.current': '4096',
    'memory.peak': '8192', 'memory.events': 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n', 'memory.stat': 'anon 100\nfile 50\n',
    'memory.swap.current': '10',
  },
  cpu: { 'cpu.weight': '100', 'cpu.max': 'max 100000', 'cpu.max.burst': '0', 'cpu.idle': '0', 'cpu.stat': 'usage_usec 1000\nuser_usec 600\nsystem_usec 400\nnr_periods 7\nnr_throttled 1\nthrottled_usec 5\n' },
  cpuset: { 'cpuset.cpus': '', 'cpuset.mems': '' },
  pids: { 'pids.max': 'max', 'pids.current': '2' },
  io: { 'io.weight': 'default 100', 'io.max': '', 'io.stat': '8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n' },
  hugetlb: { 'hugetlb.2MB.max': 'max', 'hugetlb.2MB.current': '4096', 'hugetlb.2MB.events': 'max 1\n' },
};

interface Fake {
  root: string;
  m: CgroupManager;
  host: CgroupHost;
  writes: [string, string][];
  io: CgroupIo;
  read(controller: string, file: string): string;
  cleanup(): void;
}

function seed(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [f, v] of Object.entries(files)) writeFileSync(`${dir}/${f}`, v);
}

/** A host of the given mode under a temp dir; seeded=false leaves the tree empty (for create/destroy). */
function fakeHost(mode: CgroupMode, opts: { seeded?: boolean; cgroupsPath?: string; failOn?: Record<string, string> } = {}): Fake {
  const root = mkdtempSync(`${tmpdir()}/berth-cgfake-`);
  const seeded = opts.seeded ?? true;
  const v1Names = mode === 'v2' ? [] : ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', ...(mode === 'v1' ? ['hugetlb'] : []), 'name=systemd'];
  const v1: CgroupMount[] = v1Names.map((c) => ({ mountPoint: `${root}/${c.replace('name=', '')}`, root: '/', controllers: [c] }));
  const v2Controllers = mode === 'v2' ? ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids'] : mode === 'hybrid' ? ['hugetlb'] : [];
  const v2: CgroupMount | undefined = mode === 'v1' ? undefined : { mountPoint: `${root}/unified`, root: '/', controllers: v2Controllers };
  for (const m of v1) mkdirSync(m.mountPoint, { recursive: true });
  if (v2) seed(v2.mountPoint, { 'cgroup.controllers': v2Controllers.join(' '), 'cgroup.subtree_control': '' });
  const own: Record<string, string> = { '': '/' };
  for (const c of v1Names) own[c] = '/';
  const host: CgroupHost = { mode, v1, v2, own };
  const writes: [string, string][] = [];
  const io: CgroupIo = {
    async write(file, data) {
      const rel = file.slice(root.length + 1);
      const failing = opts.failOn?.[rel.split('/').pop()!];
      if (failing) throw Object.assign(new Error(failing), { code: failing });
      writes.push([rel, data]);
      await kernelIo.write(file, data);
      if (file.endsWith('/cgroup.freeze')) writeFileSync(file.replace(/freeze$/, 'events'), `populated 1\nfrozen ${data}\n`);
      if (file.endsWith('/cgroup.subtree_control')) writeFileSync(file, data.replace(/\+/g, ''));
    },
  };
  const cgroupsPath = opts.cgroupsPath ?? '/berth/c1';
  const m = createCgroupManager({ cgroupsPath: opts.cgroupsPath, id: 'c1', host, io });
  if (seeded) {
    for (const mount of v1) {
      const c = mount.controllers[0];
      seed(`${mount.mountPoint}${cgroupsPath}`, { 'cgroup.procs': '', ...V1_SEEDS[c] });
      if (c === 'cpuset') {
        seed(`${mount.mountPoint}/berth`, { 'cpuset.cpus': '0-1', 'cpuset.mems': '0' });
      }
    }
    if (v2) {
      seed(`${v2.mountPoint}/berth`, { 'cgroup.controllers': v2Controllers.join(' '), 'cgroup.subtree_control': '' });
      const files = { ...V2_SEEDS.base };
      for (const c of v2Controllers) Object.assign(files, V2_SEEDS[c]);
      seed(`${v2.mountPoint}${cgroupsPath}`, files);
    }
  }
  const paths = m.paths();
  return {
    root, m, host, writes, io,
    read: (controller, file) => readFileSync(`${paths[controller]}/${file}`, 'utf8'),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

async function withFake(mode: CgroupMode, fn: (f: Fake) => Promise<void>, opts?: Parameters<typeof fakeHost>[1]): Promise<void> {
  const f = fakeHost(mode, opts);
  try {
    if (opts?.seeded !== false) await f.m.create();
    await fn(f);
  } finally {
    f.cleanup();
  }
}

function rejectsWith(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  return assert.rejects(p, (err: unknown) => {
    assert.ok(isBerthError(err), `not a BerthError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, re);
    return true;
  });
}

const MiB = 1024 * 1024;

// ---------- v1 ----------

test('v1 create copies cpuset.cpus/mems from the parent', () =>
  withFake('v1', async (f) => {
    assert.equal(f.read('cpuset', 'cpuset.cpus'), '0-1');
    assert.equal(f.read('cpuset', 'cpuset.mems'), '0');
  }));

test('v1 memory: files, lower limit before memsw, warnings for kernel', () =>
  withFake('v1', async (f) => {
    const warnings = await f.m.apply({
      memory: { limit: 100 * MiB, swap: 200 * MiB, reservation: 50 * MiB, kernel: MiB, kernelTCP: 2 * MiB, swappiness: 10, disableOOMKiller: true },
    });
    assert.equal(f.read('memory', 'memory.limit_in_bytes'), String(100 * MiB));
    assert.equal(f.read('memory', 'memory.memsw.limit_in_bytes'), String(200 * MiB));
    assert.equal(f.read('memory', 'memory.soft_limit_in_bytes'), String(50 * MiB));
    assert.equal(f.read('memory', 'memory.kmem.tcp.limit_in_bytes'), String(2 * MiB));
    assert.equal(f.read('memory', 'memory.swappiness'), '10');
    assert.equal(f.read('memory', 'memory.oom_control'), '1');
    const order = f.writes.map(([p]) => p.split('/').pop()).filter((n) => n?.includes('limit_in_bytes'));
    assert.deepEqual(order.slice(0, 2), ['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes']);
    assert.deepEqual(warnings.map((w) => w.field), ['linux.resources.memory.kernel']);
  }));

test('v1 memory: a growing limit raises memsw first', () =>
  withFake('v1', async (f) => {
    writeFileSync(`${f.m.paths().memory}/memory.limit_in_bytes`, String(100 * MiB));
    await f.m.update({ memory: { limit: 300 * MiB, swap: 400 * MiB } });
    const order = f.writes.filter(([p]) => p.startsWith('memory/')).map(([p]) => p.split('/').pop());
    assert.deepEqual(order, ['memory.memsw.limit_in_bytes', 'memory.limit_in_bytes']);
  }));

test('v1 memory errors name the field', () =>
  withFake('v1', async (f) => {
    await rejectsWith(f.m.apply({ memory: { limit: 200, swap: 100 } }), 'InvalidArgument', /^linux\.resources\.memory\.swap: 100 is below/);
    await rejectsWith(f.m.apply({ memory: { swappiness: 101 } }), 'InvalidArgument', /memory\.swappiness/);
    writeFileSync(`${f.m.paths().memory}/memory.usage_in_bytes`, String(10 * MiB));
    await rejectsWith(f.m.update({ memory: { limit: MiB, checkBeforeUpdate: true } }), 'FailedPrecondition', /memory\.limit: .* below the current usage/);
  }));

test('v1 kernel rejection becomes InvalidArgument naming field and file', () =>
  withFake('v1', async (f) => {
    await rejectsWith(f.m.apply({ pids: { limit: 5 } }), 'InvalidArgument', /^linux\.resources\.pids\.limit: writing "5" to .*\/pids\/berth\/c1\/pids\.max: EINVAL/);
  }, { failOn: { 'pids.max': 'EINVAL' } }));

test('v1 cpu, cpuset and pids', () =>
  withFake('v1', async (f) => {
    await f.m.apply({
      cpu: { shares: 512, quota: 20000, period: 50000, burst: 1000, realtimePeriod: 1000000, realtimeRuntime: 0, idle: 1, cpus: '1', mems: '0' },
      pids: { limit: 0 },
    });
    assert.equal(f.read('cpu', 'cpu.shares'), '512');
    assert.equal(f.read('cpu', 'cpu.cfs_quota_us'), '20000');
    assert.equal(f.read('cpu', 'cpu.cfs_period_us'), '50000');
    assert.equal(f.read('cpu', 'cpu.cfs_burst_us'), '1000');
    assert.equal(f.read('cpu', 'cpu.rt_period_us'), '1000000');
    assert.equal(f.read('cpu', 'cpu.idle'), '1');
    assert.equal(f.read('cpuset', 'cpuset.cpus'), '1');
    assert.equal(f.read('pids', 'pids.max'), 'max');
    const cpuFiles = f.writes.map(([p]) => p.split('/').pop());
    assert.ok(cpuFiles.indexOf('cpu.cfs_period_us') < cpuFiles.indexOf('cpu.cfs_quota_us'), 'period before quota');
    await f.m.update({ pids: { limit: 10 } });
    assert.equal(f.read('pids', 'pids.max'), '10');
  }));

test('v1 blockIO: bfq weights, throttles, leaf weight warning', () =>
  withFake('v1', async (f) => {
    const warnings = await f.m.apply({
      blockIO: {
        weight: 300, leafWeight: 10,
        weightDevice: [{ major: 8, minor: 0, weight: 400 }],
        throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1000 }, { major: 8, minor: 16, rate: 2000 }],
        throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 50 }],
      },
    });
    assert.equal(f.read('blkio', 'blkio.bfq.weight'), '300');
    assert.equal(f.read('blkio', 'blkio.bfq.weight_device'), '8:0 400');
    const reads = f.writes.filter(([p]) => p.endsWith('read_bps_device')).map(([, d]) => d);
    assert.deepEqual(reads, ['8:0 1000', '8:16 2000']);
    assert.equal(f.read('blkio', 'blkio.throttle.write_iops_device'), '8:0 50');
    assert.deepEqual(warnings.map((w) => w.field), ['linux.resources.blockIO.leafWeight']);
  }));

test('v1 blockIO weight without a weighting scheduler is FailedPrecondition', () =>
  withFake('v1', async (f) => {
    rmSync(`${f.m.paths().blkio}/blkio.bfq.weight`);
    await rejectsWith(f.m.apply({ blockIO: { weight: 300 } }), 'FailedPrecondition', /^linux\.resources\.blockIO\.weight: neither blkio\.weight nor blkio\.bfq\.weight/);
  }));

test('v1 hugetlb, and a page size the host lacks', () =>
  withFake('v1', async (f) => {
    await f.m.apply({ hugepageLimits: [{ pageSize: '2MB', limit: 4 * MiB }] });
    assert.equal(f.read('hugetlb', 'hugetlb.2MB.limit_in_bytes'), String(4 * MiB));
    await rejectsWith(
      f.m.apply({ hugepageLimits: [{ pageSize: '2MB', limit: 0 }, { pageSize: '1GB', limit: 0 }] }),
      'FailedPrecondition',
      /^linux\.resources\.hugepageLimits\[1\]: hugetlb\.1GB\.limit_in_bytes not found in .*: this host has no 1GB huge pages|^linux\.resources\.hugepageLimits\[1\]: hugetlb\.1GB\.limit_in_bytes not found in /,
    );
    await rejectsWith(f.m.apply({ hugepageLimits: [{ pageSize: '2M', limit: 0 }] }), 'InvalidArgument', /hugepageLimits\[0\]\.pageSize/);
  }));

test('v1 devices: deny all, then the rules in order', () =>
  withFake('v1', async (f) => {
    await f.m.apply({
      devices: [
        { allow: false, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
        { allow: true, type: 'c', major: 136, access: 'rwm' },
        { allow: false, type: 'c', major: 1, minor: 5, access: 'w' },
      ],
    });
    const dev = f.writes.filter(([p]) => p.startsWith('devices/')).map(([p, d]) => `${p.split('/').pop()} ${d}`);
    assert.deepEqual(dev, [
      'devices.deny a',
      'devices.deny a *:* rwm',
      'devices.allow c 1:3 rwm',
      'devices.allow c 136:* rwm',
      'devices.deny c 1:5 w',
    ]);
    assert.equal(f.m.deviceProgram(), undefined);
  }));

test('v1: network and unified need what the host lacks', () =>
  withFake('v1', async (f) => {
    await rejectsWith(f.m.apply({ network: { classID: 1 } }), 'FailedPrecondition', /^linux\.resources\.network\.classID: this host has no net_cls cgroup controller/);
    await rejectsWith(f.m.apply({ network: { priorities: [{ name: 'eth0', priority: 1 }] } }), 'FailedPrecondition', /network\.priorities: this host has no net_prio/);
    await rejectsWith(f.m.apply({ unified: { 'memory.high': '1' } }), 'FailedPrecondition', /^linux\.resources\.unified: this host has no cgroup v2 hierarchy/);
    await rejectsWith(f.m.apply({ rdma: { mlx5_0: { hcaHandles: 1 } } }), 'FailedPrecondition', /rdma: this host has no rdma/);
  }));

test('v1 network when net_cls and net_prio are mounted', async () => {
  const f = fakeHost('v1');
  try {
    const host: CgroupHost = {
      ...f.host,
      v1: [...f.host.v1, { mountPoint: `${f.root}/net`, root: '/', controllers: ['net_cls', 'net_prio'] }],
      own: { ...f.host.own, net_cls: '/', net_prio: '/' },
    };
    const m = createCgroupManager({ cgroupsPath: '/berth/c1', id: 'c1', host, io: f.io });
    seed(`${f.root}/net/berth/c1`, { 'net_cls.classid': '0', 'net_prio.ifpriomap': '' });
    await m.apply({ network: { classID: 0x100001, priorities: [{ name: 'eth0', priority: 5 }, { name: 'lo', priority: 1 }] } });
    assert.equal(readFileSync(`${f.root}/net/berth/c1/net_cls.classid`, 'utf8'), String(0x100001));
    assert.deepEqual(f.writes.filter(([p]) => p.endsWith('ifpriomap')).map(([, d]) => d), ['eth0 5', 'lo 1']);
  } finally {
    f.cleanup();
  }
});

test('v1 stats from fixture files', () =>
  withFake('v1', async (f) => {
    const s = await f.m.stats();
    assert.deepEqual(s.cpu.usage, { total: 12345, percpu: [10000, 2345], percpu_kernel: undefined, percpu_user: undefined, kernel: 4e7, user: 3e7 });
    assert.deepEqual(s.cpu.throttling, { periods: 5, throttledPeriods: 2, throttledTime: 300 });
    assert.deepEqual(s.memory.usage, { limit: 9223372036854771712, usage: 1000, max: 2000, failcnt: 1 });
    assert.equal(s.memory.swap.usage, 1500);
    assert.equal(s.memory.cache, 10);
    assert.deepEqual(s.memory.raw, { cache: 10, rss: 20 });
    assert.deepEqual(s.pids, { current: 3, limit: 0 });
    assert.deepEqual(s.blkio.ioServiceBytesRecursive, [
      { major: 8, minor: 0, op: 'Read', value: 100 },
      { major: 8, minor: 0, op: 'Write', value: 200 },
      { major: 8, minor: 0, op: 'Sync', value: 0 },
    ]);
    assert.equal(s.blkio.ioServicedRecursive.length, 2);
    assert.deepEqual(s.hugetlb, { '2MB': { usage: 0, max: 2097152, failcnt: 0 } });
    assert.equal(await f.m.oomEvents(), 2);
  }));

test('v1 freezer and process listing', () =>
  withFake('v1', async (f) => {
    assert.equal(await f.m.state(), 'thawed');
    await f.m.freeze();
    assert.equal(f.read('freezer', 'freezer.state'), 'FROZEN');
    assert.equal(await f.m.state(), 'frozen');
    await f.m.thaw();
    assert.equal(await f.m.state(), 'thawed');
    const dir = f.m.paths().freezer;
    writeFileSync(`${dir}/cgroup.procs`, '12\n7\n');
    seed(`${dir}/inner`, { 'cgroup.procs': '30\n' });
    assert.deepEqual(await f.m.pids(), [7, 12, 30]);
  }));

// ---------- v2 ----------

test('v2 create enables the controllers in every parent', () =>
  withFake('v2', async (f) => {
    const enabled = f.writes.filter(([p]) => p.endsWith('subtree_control'));
    assert.deepEqual(enabled, [
      ['unified/cgroup.subtree_control', '+cpuset +cpu +io +memory +hugetlb +pids'],
      ['unified/berth/cgroup.subtree_control', '+cpuset +cpu +io +memory +hugetlb +pids'],
    ]);
    assert.deepEqual(f.m.paths(), { unified: `${f.root}/unified/berth/c1` });
    assert.deepEqual(f.m.joinDirs(), [`${f.root}/unified/berth/c1`]);
  }));

test('v2 memory: memory.max, swap as swap-limit, memory.low, warnings for v1-only fields', () =>
  withFake('v2', async (f) => {
    const warnings = await f.m.apply({
      memory: { limit: 100 * MiB, swap: 150 * MiB, reservation: 10 * MiB, kernel: MiB, kernelTCP: MiB, swappiness: 5, disableOOMKiller: true },
    });
    assert.equal(f.read('unified', 'memory.max'), String(100 * MiB));
    assert.equal(f.read('unified', 'memory.swap.max'), String(50 * MiB));
    assert.equal(f.read('unified', 'memory.low'), String(10 * MiB));
    assert.deepEqual(warnings.map((w) => w.field.split('.').pop()), ['kernel', 'kernelTCP', 'swappiness', 'disableOOMKiller']);
    await f.m.update({ memory: { limit: -1, swap: -1 } });
    assert.equal(f.read('unified', 'memory.max'), 'max');
    assert.equal(f.read('unified', 'memory.swap.max'), 'max');
    await f.m.update({ memory: { limit: 100 * MiB, swap: 100 * MiB } });
    assert.equal(f.read('unified', 'memory.swap.max'), '0');
    await rejectsWith(f.m.apply({ memory: { limit: 200, swap: 100 } }), 'InvalidArgument', /memory\.swap: 100 is below/);
    await rejectsWith(f.m.apply({ memory: { swap: 100 } }), 'InvalidArgument', /memory\.swap: a swap limit needs a memory limit/);
  }));

test('v2 cpu: weight conversion, cpu.max keeping the other half, burst, idle; realtime refused', () =>
  withFake('v2', async (f) => {
    await f.m.apply({ cpu: { shares: 1024, quota: 20000, period: 50000, burst: 500, idle: 1, cpus: '0-1', mems: '0' } });
    assert.equal(f.read('unified', 'cpu.weight'), '39');
    assert.equal(f.read('unified', 'cpu.max'), '20000 50000');
    assert.equal(f.read('unified', 'cpu.max.burst'), '500');
    assert.equal(f.read('unified', 'cpu.idle'), '1');
    assert.equal(f.read('unified', 'cpuset.cpus'), '0-1');
    await f.m.update({ cpu: { period: 100000 } });
    assert.equal(f.read('unified', 'cpu.max'), '20000 100000');
    await f.m.update({ cpu: { quota: -1 } });
    assert.equal(f.read('unified', 'cpu.max'), 'max 100000');
    await f.m.update({ cpu: { shares: 2 } });
    assert.equal(f.read('unified', 'cpu.weight'), '1');
    await f.m.update({ cpu: { shares: 262144 } });
    assert.equal(f.read('unified', 'cpu.weight'), '10000');
    await rejectsWith(f.m.apply({ cpu: { realtimeRuntime: 100 } }), 'FailedPrecondition', /^linux\.resources\.cpu\.realtimeRuntime: cgroup v2 has no realtime/);
  }));

test('v2 pids and io (io.weight conversion, bfq as is, io.max)', () =>
  withFake('v2', async (f) => {
    await f.m.apply({
      pids: { limit: 64 },
      blockIO: {
        weight: 500,
        weightDevice: [{ major: 8, minor: 0, weight: 10 }],
        throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1000 }],
        throttleWriteBpsDevice: [{ major: 8, minor: 0, rate: 0 }],
        throttleReadIOPSDevice: [{ major: 8, minor: 0, rate: 7 }],
        throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 9 }],
      },
    });
    assert.equal(f.read('unified', 'pids.max'), '64');
    const io = f.writes.filter(([p]) => /io\.(weight|max)$/.test(p)).map(([p, d]) => `${p.split('/').pop()} ${d}`);
    assert.deepEqual(io, [
      'io.weight default 4950',
      'io.weight 8:0 1',
      'io.max 8:0 rbps=1000',
      'io.max 8:0 wbps=max',
      'io.max 8:0 riops=7',
      'io.max 8:0 wiops=9',
    ]);
    writeFileSync(`${f.m.paths().unified}/io.bfq.weight`, 'default 100');
    await f.m.update({ blockIO: { weight: 500 } });
    assert.equal(f.read('unified', 'io.bfq.weight'), '500');
  }));

test('v2 hugetlb, rdma missing, network refused', () =>
  withFake('v2', async (f) => {
    await f.m.apply({ hugepageLimits: [{ pageSize: '2MB', limit: 2 * MiB }] });
    assert.equal(f.read('unified', 'hugetlb.2MB.max'), String(2 * MiB));
    await rejectsWith(f.m.apply({ hugepageLimits: [{ pageSize: '1GB', limit: 0 }] }), 'FailedPrecondition', /^linux\.resources\.hugepageLimits\[0\]: hugetlb\.1GB\.max not found in /);
    await rejectsWith(f.m.apply({ network: { classID: 1 } }), 'FailedPrecondition', /network\.classID/);
    await rejectsWith(f.m.apply({ rdma: { mlx5_0: { hcaHandles: 1 } } }), 'FailedPrecondition', /rdma/);
  }));

test('v2 unified keys', () =>
  withFake('v2', async (f) => {
    await f.m.apply({ unified: { 'memory.high': '12345' } });
    assert.equal(f.read('unified', 'memory.high'), '12345');
    await rejectsWith(f.m.apply({ unified: { '../x': '1' } }), 'InvalidArgument', /^linux\.resources\.unified\["\.\.\/x"\]/);
    await rejectsWith(f.m.apply({ unified: { '..': '1' } }), 'InvalidArgument', /unified\["\.\."\]/);
    await rejectsWith(f.m.apply({ unified: { 'memory.nope': '1' } }), 'FailedPrecondition', /unified\["memory\.nope"\]: memory\.nope not found/);
  }));

test('v2 devices: nothing written, a program instead', () =>
  withFake('v2', async (f) => {
    const before = f.writes.length;
    await f.m.apply({ devices: [{ allow: false }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }] });
    assert.equal(f.writes.length, before);
    const prog = f.m.deviceProgram();
    assert.ok(prog && prog.length > 0 && prog.length % 8 === 0);
    // kept across serialisation, for `update` in a later invocation
    assert.deepEqual(loadCgroupManager(f.m.toJSON()).deviceProgram(), prog);
    await rejectsWith(f.m.apply({ devices: [{ allow: true, type: 'q' }] }), 'InvalidArgument', /devices\[0\]\.type/);
  }));

test('v2 stats from fixture files', () =>
  withFake('v2', async (f) => {
    const s = await f.m.stats();
    assert.deepEqual(s.cpu.usage, { total: 1e6, kernel: 4e5, user: 6e5 });
    assert.deepEqual(s.cpu.throttling, { periods: 7, throttledPeriods: 1, throttledTime: 5000 });
    assert.deepEqual(s.memory.usage, { limit: 18446744073709551615, usage: 4096, max: 8192, failcnt: 3 });
    assert.equal(s.memory.swap.usage, 4106);
    assert.equal(s.memory.cache, 50);
    assert.deepEqual(s.pids, { current: 2, limit: 0 });
    assert.deepEqual(s.blkio.ioServiceBytesRecursive, [
      { major: 8, minor: 0, op: 'Read', value: 10 },
      { major: 8, minor: 0, op: 'Write', value: 20 },
    ]);
    assert.deepEqual(s.hugetlb, { '2MB': { usage: 4096, max: 0, failcnt: 1 } });
    assert.equal(await f.m.oomEvents(), 1);
  }));

test('v2 freezer through cgroup.freeze and cgroup.events', () =>
  withFake('v2', async (f) => {
    await f.m.freeze();
    assert.equal(f.read('unified', 'cgroup.freeze'), '1');
    assert.equal(await f.m.state(), 'frozen');
    await f.m.thaw();
    assert.equal(await f.m.state(), 'thawed');
  }));

test('v2 SIGKILL goes through cgroup.kill', () =>
  withFake('v2', async (f) => {
    await f.m.kill('SIGKILL');
    assert.deepEqual(f.writes.at(-1), ['unified/berth/c1/cgroup.kill', '1']);
  }));

// ---------- hybrid ----------

test('hybrid: each controller on the side that has it', () =>
  withFake('hybrid', async (f) => {
    await f.m.apply({
      memory: { limit: 64 * MiB },
      hugepageLimits: [{ pageSize: '2MB', limit: 2 * MiB }],
      devices: [{ allow: false }],
    });
    assert.equal(f.read('memory', 'memory.limit_in_bytes'), String(64 * MiB));
    assert.equal(f.read('unified', 'hugetlb.2MB.max'), String(2 * MiB));
    assert.equal(f.read('devices', 'devices.deny'), 'a *:* rwm');
    assert.equal(f.m.deviceProgram(), undefined);
    assert.deepEqual(f.writes.filter(([p]) => p.endsWith('subtree_control')).map(([, d]) => d), ['+hugetlb', '+hugetlb']);
    assert.equal(f.m.joinDirs().length, 10);
    assert.ok(f.m.joinDirs().includes(`${f.root}/unified/berth/c1`));
    assert.equal(f.m.paths().unified, `${f.root}/unified/berth/c1`);
    const s = await f.m.stats();
    assert.equal(s.memory.usage.usage, 1000); // from v1
    assert.deepEqual(Object.keys(s.hugetlb), ['2MB']); // from v2
  }));

test('hybrid: unified keys go to the cgroup2 side', () =>
  withFake('hybrid', async (f) => {
    await f.m.apply({ unified: { 'hugetlb.2MB.max': '4096' } });
    assert.equal(f.read('unified', 'hugetlb.2MB.max'), '4096');
  }));

// ---------- lifecycle ----------

for (const mode of ['v1', 'v2', 'hybrid'] as const) {
  test(`${mode}: create then destroy leaves nothing, default parent included`, async () => {
    const f = fakeHost(mode, { seeded: false, cgroupsPath: undefined });
    try {
      await f.m.create();
      for (const d of f.m.joinDirs()) assert.ok(existsSync(d), d);
      const saved = JSON.parse(JSON.stringify(f.m.toJSON()));
      await loadCgroupManager(saved).destroy();
      for (const mount of [...f.host.v1, ...(f.host.v2 ? [f.host.v2] : [])]) {
        const left = readdirSync(mount.mountPoint, { withFileTypes: true }).filter((e) => e.isDirectory());
        assert.deepEqual(left.map((e) => e.name), [], mount.mountPoint);
      }
    } finally {
      f.cleanup();
    }
  });
}

test('destroy keeps a shared parent that another container still uses', async () => {
  const f = fakeHost('v2', { seeded: false, cgroupsPath: undefined });
  try {
    await f.m.create();
    mkdirSync(`${f.root}/unified/berth/other`);
    await f.m.destroy();
    assert.deepEqual(readdirSync(`${f.root}/unified/berth`), ['cgroup.subtree_control', 'other'].filter((n) => existsSync(`${f.root}/unified/berth/${n}`)));
    assert.ok(!existsSync(`${f.root}/unified/berth/c1`));
  } finally {
    f.cleanup();
  }
});

test('loadCgroupManager refuses an unknown format', () => {
  assert.throws(() => loadCgroupManager({ format: 'x' } as never), (e) => isBerthError(e, 'InvalidArgument'));
});

test('empty resource groups need no controller', () =>
  withFake('v1', async (f) => {
    const r: Resources = { memory: {}, cpu: {}, blockIO: {}, hugepageLimits: [], unified: {}, rdma: {} };
    assert.deepEqual(await f.m.apply(r), []);
  }));
