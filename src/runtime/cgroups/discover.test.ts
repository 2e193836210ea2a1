import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBerthError } from '../../errors.js';
import { classify, parseCgroupHost, parseCgroupMounts, parseProcCgroup } from './discover.js';
import { cgroupDir, createCgroupManager } from './factory.js';

export const HYBRID_MOUNTINFO = `22 1 0:21 / / rw,relatime - overlay overlay rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
export const HYBRID_PROC_CGROUP = `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/15dbed
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`;
const V2_MOUNTINFO = `24 1 0:22 / / rw - ext4 /dev/sda1 rw
30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;
const V1_MOUNTINFO = `25 24 0:23 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/systemd rw shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
28 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw shared:12 - cgroup cgroup rw,cpu,cpuacct
29 25 0:27 / /sys/fs/cgroup/memory rw shared:13 - cgroup cgroup rw,memory
30 25 0:28 /docker/abc /sys/fs/cgroup/pids rw shared:14 - cgroup cgroup rw,pids
31 25 0:28 / /mnt/pids\\040again rw shared:14 - cgroup cgroup rw,pids
`;

test('hybrid host: v1 controllers plus cgroup2 with hugetlb', () => {
  const host = parseCgroupHost({ mountinfo: HYBRID_MOUNTINFO, procSelfCgroup: HYBRID_PROC_CGROUP, v2Controllers: 'hugetlb\n' });
  assert.equal(host.mode, 'hybrid');
  assert.equal(host.v1.length, 9);
  assert.deepEqual(host.v1.find((m) => m.mountPoint === '/sys/fs/cgroup/systemd')?.controllers, ['name=systemd']);
  assert.deepEqual(host.v2, { mountPoint: '/sys/fs/cgroup/unified', root: '/', controllers: ['hugetlb'] });
  assert.equal(host.own.memory, '/process_api/15dbed');
  assert.equal(host.own['name=systemd'], '/');
  assert.equal(host.own[''], '/');
});

test('pure v2 host', () => {
  const host = parseCgroupHost({ mountinfo: V2_MOUNTINFO, procSelfCgroup: '0::/user.slice/session-1.scope\n', v2Controllers: 'cpuset cpu io memory hugetlb pids rdma misc' });
  assert.equal(host.mode, 'v2');
  assert.deepEqual(host.v1, []);
  assert.deepEqual(host.v2?.controllers, ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc']);
  assert.equal(host.own[''], '/user.slice/session-1.scope');
});

test('pure v1 host: co-mounted controllers, mount options filtered, first mount wins, escapes', () => {
  const { v1, v2 } = parseCgroupMounts(V1_MOUNTINFO);
  assert.equal(v2, undefined);
  assert.deepEqual(v1.map((m) => m.controllers), [['name=systemd'], ['cpu', 'cpuacct'], ['memory'], ['pids']]);
  assert.equal(v1[1].mountPoint, '/sys/fs/cgroup/cpu,cpuacct');
  assert.equal(v1[3].root, '/docker/abc');
  assert.equal(classify(v1, v2), 'v1');
  assert.equal(parseCgroupMounts('31 25 0:28 / /mnt/a\\040b rw - cgroup cgroup rw,pids').v1[0].mountPoint, '/mnt/a b');
});

test('no cgroup mount at all is a clear error', () => {
  assert.throws(() => classify([], undefined), (e) => isBerthError(e, 'FailedPrecondition'));
});

test('/proc/self/cgroup with co-mounted controllers', () => {
  assert.deepEqual(parseProcCgroup('4:cpu,cpuacct:/a\n0::/b\n'), { cpu: '/a', cpuacct: '/a', '': '/b' });
});

test('cgroup directories: absolute, relative to our own cgroup, and under a mount root', () => {
  const m = { mountPoint: '/sys/fs/cgroup/memory', root: '/', controllers: ['memory'] };
  assert.equal(cgroupDir(m, '/process_api/x', '/berth/c1'), '/sys/fs/cgroup/memory/berth/c1');
  assert.equal(cgroupDir(m, '/process_api/x', 'c1'), '/sys/fs/cgroup/memory/process_api/x/c1');
  const nested = { mountPoint: '/sys/fs/cgroup/pids', root: '/docker/abc', controllers: ['pids'] };
  assert.equal(cgroupDir(nested, '/docker/abc/sub', 'c1'), '/sys/fs/cgroup/pids/sub/c1');
});

test('createCgroupManager lays out every hierarchy; default path is /berth/<id>', () => {
  const host = parseCgroupHost({ mountinfo: HYBRID_MOUNTINFO, procSelfCgroup: HYBRID_PROC_CGROUP, v2Controllers: 'hugetlb' });
  const m = createCgroupManager({ cgroupsPath: undefined, id: 'c1', host });
  const p = m.paths();
  assert.equal(p.memory, '/sys/fs/cgroup/memory/berth/c1');
  assert.equal(p['name=systemd'], '/sys/fs/cgroup/systemd/berth/c1');
  assert.equal(p.unified, '/sys/fs/cgroup/unified/berth/c1');
  assert.equal(m.joinDirs().length, 10);
  assert.ok(m.procsFiles().includes('/sys/fs/cgroup/unified/berth/c1/cgroup.procs'));
  const rel = createCgroupManager({ cgroupsPath: 'sub/c1', id: 'c1', host });
  assert.equal(rel.paths().memory, '/sys/fs/cgroup/memory/process_api/15dbed/sub/c1');
  assert.equal(rel.paths().cpu, '/sys/fs/cgroup/cpu/sub/c1');
});

test('createCgroupManager refuses systemd, ".." and bad ids', () => {
  const host = parseCgroupHost({ mountinfo: V2_MOUNTINFO, procSelfCgroup: '0::/\n', v2Controllers: 'memory' });
  assert.throws(
    () => createCgroupManager({ cgroupsPath: 'system.slice:berth:c1', id: 'c1', host, systemd: true, systemdRunning: () => false }),
    (e) => isBerthError(e, 'FailedPrecondition') && e.message === 'systemd cgroup driver is not supported: this host has no systemd running; drop --systemd-cgroup',
  );
  assert.throws(() => createCgroupManager({ cgroupsPath: '/a/../../etc', id: 'c1', host }), (e) => isBerthError(e, 'InvalidArgument') && /cgroupsPath/.test(e.message));
  assert.throws(() => createCgroupManager({ cgroupsPath: undefined, id: '../x', host }), (e) => isBerthError(e, 'InvalidArgument'));
  assert.throws(() => createCgroupManager({ cgroupsPath: '/', id: 'c1', host }), (e) => isBerthError(e, 'InvalidArgument'));
});
