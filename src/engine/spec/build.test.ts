import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBerthError } from '../../errors.js';
import { compileCreate } from '../../runtime/compile.js';
import { validateSpec } from '../../runtime/validate.js';
import type { ContainerConfig, CreateContainerRequest, HostConfig } from '../types.js';
import { buildContainerSpec, renderContainerFiles, type SpecInput } from './build.js';
import type { HostDevice } from './host-facts.js';

const ID = '0123456789ab'.padEnd(64, 'f');
const dirs: string[] = [];
function rootfs(): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-spec-build-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'etc'));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\nwheel:x:10:root\nnogroup:x:65534:\n');
  return dir;
}
test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const DEVICES: HostDevice[] = [
  { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/sda', type: 'b', major: 8, minor: 0, fileMode: 0o660, uid: 0, gid: 6 },
];

let names = 0;
function input(request: CreateContainerRequest, more: Partial<SpecInput> = {}, image?: ContainerConfig): SpecInput {
  return {
    id: ID,
    name: 'web',
    request,
    ...(image ? { image: { config: image, id: 'sha256:' + 'e'.repeat(64), name: 'busybox' } } : {}),
    rootfs: rootfs(),
    files: { hosts: '/c/hosts', hostname: '/c/hostname', resolvConf: '/c/resolv.conf' },
    volumes: (n) => `/var/lib/berth/volumes/${n}/_data`,
    initPath: '/usr/libexec/berth/berth-init',
    cgroupsPath: '/berth/' + ID,
    hostFacts: {
      cgroupV2: false,
      cpuCount: 2,
      onlineCpus: '0-1',
      hostname: 'thehost',
      arch: 'x64',
      devices: {
        lookup: (p) => {
          const found = DEVICES.filter((d) => d.path === p || d.path.startsWith(p + '/'));
          if (found.length === 0) throw new Error('no device ' + p);
          return found;
        },
        all: () => DEVICES,
      },
    },
    hostPathKind: (p) => (p.startsWith('/missing') ? 'missing' : 'directory'),
    newVolumeName: () => String(++names).padStart(64, '0'),
    ...more,
  };
}

function build(hc: HostConfig, config: CreateContainerRequest = {}, more: Partial<SpecInput> = {}, image?: ContainerConfig) {
  return buildContainerSpec(input({ Cmd: ['sh'], ...config, HostConfig: { NetworkMode: 'none', ...hc } }, more, image));
}

/** The runtime library accepts and compiles what we build. */
function compiles(b: ReturnType<typeof build>): void {
  const spec = validateSpec(JSON.parse(JSON.stringify(b.spec)));
  compileCreate({ id: 'x', spec, bundle: '/tmp', consoleSocket: '/tmp/console.sock', host: { lastCap: 40, rlimitHard: () => 'unlimited' } });
}

function rejects(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e) => isBerthError(e, 'InvalidArgument') && re.test(e.message));
}

test('a plain container: Docker defaults, merged command, env, hostname, compiles', () => {
  const b = build({}, { Cmd: null }, {}, { Cmd: ['sh'], Env: ['FOO=bar'], WorkingDir: '/work' });
  const s = b.spec;
  assert.deepEqual(s.process!.args, ['sh']);
  assert.equal(b.path, 'sh');
  assert.deepEqual(b.args, []);
  assert.equal(s.process!.cwd, '/work');
  assert.deepEqual(s.process!.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `HOSTNAME=${ID.slice(0, 12)}`, 'FOO=bar', 'HOME=/root']);
  assert.equal(s.hostname, ID.slice(0, 12));
  assert.equal(b.config.Hostname, ID.slice(0, 12));
  assert.equal(s.process!.capabilities!.bounding!.length, 14);
  assert.equal(s.process!.noNewPrivileges, false);
  assert.deepEqual(s.process!.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 }]);
  assert.deepEqual(s.process!.user, { uid: 0, gid: 0, additionalGids: [10] });
  assert.equal(s.root!.path.startsWith(tmpdir()), true);
  assert.equal(s.root!.readonly, false);
  assert.deepEqual(s.linux!.namespaces!.map((n) => n.type).sort(), ['ipc', 'mount', 'network', 'pid', 'uts']);
  assert.equal(s.linux!.cgroupsPath, '/berth/' + ID);
  assert.ok(s.linux!.seccomp);
  assert.ok(s.linux!.maskedPaths!.includes('/proc/kcore'));
  assert.ok(s.linux!.maskedPaths!.includes('/sys/devices/virtual/powercap'));
  assert.ok(s.linux!.readonlyPaths!.includes('/proc/sys'));
  assert.deepEqual(s.linux!.resources!.devices, [{ allow: false, access: 'rwm' }]);
  assert.deepEqual(s.linux!.sysctl, { 'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.ping_group_range': '0 2147483647' });
  const dests = s.mounts!.map((m) => m.destination);
  assert.deepEqual(dests, ['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/dev/mqueue', '/dev/shm', '/etc/resolv.conf', '/etc/hostname', '/etc/hosts']);
  assert.deepEqual(s.mounts!.find((m) => m.destination === '/dev/shm')!.options, ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=67108864']);
  assert.deepEqual(s.mounts!.find((m) => m.destination === '/etc/hosts'), { destination: '/etc/hosts', type: 'bind', source: '/c/hosts', options: ['rbind', 'rprivate', 'rw'] });
  assert.equal(b.hostConfig.ShmSize, 67108864);
  assert.equal(b.hostConfig.IpcMode, 'private');
  assert.equal(b.hostConfig.CgroupnsMode, 'host');
  assert.equal(b.stopSignal, 15);
  assert.deepEqual(b.log, { driver: 'json-file', maxSize: 10 * 1024 * 1024, maxFile: 3 });
  assert.deepEqual(b.warnings, []);
  compiles(b);
});

test('no command is a Docker-shaped InvalidArgument', () => {
  rejects(() => build({}, { Cmd: null }), /no command specified/);
  rejects(() => build({}, { Entrypoint: [''], Cmd: null }, {}, { Cmd: ['sh'] }), /no command specified/);
});

test('Tty sets TERM and a terminal; User and GroupAdd resolve in the rootfs', () => {
  const b = build({ GroupAdd: ['wheel'] }, { Tty: true, User: 'nobody', Env: ['A=1'] });
  assert.equal(b.spec.process!.terminal, true);
  assert.ok(b.spec.process!.env!.includes('TERM=xterm'));
  assert.ok(b.spec.process!.env!.includes('HOME=/nonexistent'));
  assert.deepEqual(b.spec.process!.user, { uid: 65534, gid: 65534, additionalGids: [10] });
  rejects(() => build({}, { User: 'ghost' }), /Config.User: unable to find user ghost/);
  compiles(b);
});

test('WorkingDir must be absolute and is cleaned', () => {
  assert.equal(build({}, { WorkingDir: '/a/b/../c/' }).spec.process!.cwd, '/a/c');
  rejects(() => build({}, { WorkingDir: 'rel' }), /WorkingDir: the working directory 'rel' is invalid/);
});

test('Init puts berth-init in front and mounts it read-only', () => {
  const b = build({ Init: true }, { Cmd: ['sleep', '1'] }, { initArgs: ['--'] });
  assert.deepEqual(b.spec.process!.args, ['/sbin/docker-init', '--', 'sleep', '1']);
  assert.equal(b.path, 'sleep');
  assert.deepEqual(b.spec.mounts!.find((m) => m.destination === '/sbin/docker-init'), {
    destination: '/sbin/docker-init',
    type: 'bind',
    source: '/usr/libexec/berth/berth-init',
    options: ['rbind', 'ro', 'rprivate'],
  });
  compiles(b);
});

test('Binds, Mounts, Tmpfs and image VOLUMEs become mounts, MountPoints and volumes', () => {
  names = 0;
  const b = build(
    {
      Binds: ['/srv/a:/a:ro', 'named:/b', '/missing/x:/c:rshared', 'vol2:/d:nocopy,ro', '/e'],
      Mounts: [
        { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1048576, Mode: 0o1777 } },
        { Type: 'volume', Source: 'mv', Target: '/mv', VolumeOptions: { NoCopy: true, Labels: { l: 'v' } } },
        { Type: 'bind', Source: '/srv/b', Target: '/a/inner', BindOptions: { NonRecursive: true } },
      ],
      Tmpfs: { '/run': 'size=64m,mode=755,exec' },
    },
    {},
    {},
    { Cmd: ['sh'], Volumes: { '/data': {}, '/b': {} } },
  );
  const m = (d: string) => b.spec.mounts!.find((x) => x.destination === d)!;
  assert.deepEqual(m('/a'), { destination: '/a', type: 'bind', source: '/srv/a', options: ['rbind', 'ro', 'rprivate'] });
  assert.deepEqual(m('/b').source, '/var/lib/berth/volumes/named/_data');
  assert.deepEqual(m('/c').options, ['rbind', 'rw', 'rshared']);
  assert.deepEqual(m('/t'), { destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'nodev', 'size=1048576', 'mode=1777'] });
  assert.deepEqual(m('/run').options, ['noexec', 'nosuid', 'nodev', 'size=64m', 'mode=755', 'exec']);
  assert.deepEqual(m('/a/inner').options, ['bind', 'rw', 'rprivate']);
  // parents before children
  const order = b.spec.mounts!.map((x) => x.destination);
  assert.ok(order.indexOf('/a') < order.indexOf('/a/inner'));
  assert.equal(b.spec.linux!.rootfsPropagation, 'shared');
  assert.deepEqual(b.hostDirsToCreate, ['/missing/x']);
  // /b is covered by a bind, so the image VOLUME /b makes no anonymous volume.
  assert.deepEqual(
    b.volumes.map((v) => [v.destination, v.anonymous, v.copyUp, v.readOnly]),
    [
      ['/b', false, true, false],
      ['/d', false, false, true],
      ['/e', true, true, false],
      ['/mv', false, false, false],
      ['/data', true, true, false],
    ],
  );
  assert.equal(b.volumes.find((v) => v.destination === '/e')!.name, '1'.padStart(64, '0'));
  assert.deepEqual(b.volumes.find((v) => v.destination === '/mv')!.labels, { l: 'v' });
  const points = b.mounts.map((p) => `${p.Type} ${p.Destination} ${p.RW} ${p.Mode}`);
  assert.deepEqual(points, ['bind /a false ro', 'volume /b true ', 'bind /c true rshared', 'volume /d false nocopy,ro', 'volume /e true ', 'tmpfs /t true ', 'volume /mv true ', 'bind /a/inner true ', 'volume /data true ']);
  compiles(b);
});

test('mount errors name the field', () => {
  rejects(() => build({ Binds: ['/a:/x', '/b:/x'] }), /Binds\[1\]: duplicate mount point: \/x/);
  rejects(() => build({ Binds: ['/a:rel'] }), /Binds\[0\]: invalid mount path "rel"/);
  rejects(() => build({ Binds: ['/a:/'] }), /destination cannot be "\/"/);
  rejects(() => build({ Binds: ['bad name:/x'] }), /invalid characters for a local volume name/);
  rejects(() => build({ Binds: ['/a:/x:bogus'] }), /unknown option "bogus"/);
  rejects(() => build({ Binds: ['/a:/x:ro,rw'] }), /more than one/);
  rejects(() => build({ Binds: ['/a:/x:nocopy'] }), /nocopy.*volumes only/);
  rejects(() => build({ Binds: ['ab:/x:rshared'] }), /bind mounts only/);
  rejects(() => build({ Mounts: [{ Type: 'bind', Source: '/missing/y', Target: '/y' }] }), /Mounts\[0\].Source: bind source path does not exist/);
  rejects(() => build({ Mounts: [{ Type: 'npipe', Source: 'x', Target: '/y' }] }), /Mounts\[0\].Type: mount type "npipe" is not supported/);
  rejects(() => build({ Mounts: [{ Type: 'volume', Source: 'v', Target: '/y', VolumeOptions: { DriverConfig: { Name: 'nfs' } } }] }), /volume driver "nfs"/);
  rejects(() => build({ Tmpfs: { '/t': 'size=lots' } }), /invalid tmpfs size/);
  rejects(() => build({ Tmpfs: { '/t': 'bogus' } }), /unknown tmpfs option "bogus"/);
  const b = build({ Mounts: [{ Type: 'bind', Source: '/missing/z', Target: '/z', BindOptions: { CreateMountpoint: true } }] });
  assert.deepEqual(b.hostDirsToCreate, ['/missing/z']);
});

test('z/Z is ignored with a warning', () => {
  const b = build({ Binds: ['/a:/x:Z'] });
  assert.match(b.warnings[0], /Binds\[0\].*SELinux/);
});

test('user mounts replace the generated files and default mounts at the same place', () => {
  const b = build({ Binds: ['/my/hosts:/etc/hosts:ro'], Tmpfs: { '/dev/shm': 'size=1m' } });
  const hosts = b.spec.mounts!.filter((m) => m.destination === '/etc/hosts');
  assert.equal(hosts.length, 1);
  assert.equal(hosts[0].source, '/my/hosts');
  assert.deepEqual(b.spec.mounts!.filter((m) => m.destination === '/dev/shm').map((m) => m.options), [['noexec', 'nosuid', 'nodev', 'size=1m']]);
});

test('ReadonlyRootfs makes the root and the generated files read-only', () => {
  const b = build({ ReadonlyRootfs: true });
  assert.equal(b.spec.root!.readonly, true);
  assert.deepEqual(b.spec.mounts!.find((m) => m.destination === '/etc/resolv.conf')!.options, ['rbind', 'rprivate', 'ro']);
  compiles(b);
});

test('resources: memory, swap, cpus, pids, blkio, oom score', () => {
  const b = build({ Memory: 64 << 20, MemoryReservation: 32 << 20, MemorySwappiness: 10, NanoCpus: 1.5e9, CpuShares: 512, CpusetCpus: '0-1', PidsLimit: 100, BlkioWeight: 300, OomScoreAdj: 500, OomKillDisable: true });
  const r = b.spec.linux!.resources!;
  assert.deepEqual(r.memory, { limit: 64 << 20, swap: 128 << 20, reservation: 32 << 20, swappiness: 10, disableOOMKiller: true });
  assert.deepEqual(r.cpu, { period: 100000, quota: 150000, shares: 512, cpus: '0-1' });
  assert.deepEqual(r.pids, { limit: 100 });
  assert.deepEqual(r.blockIO, { weight: 300 });
  assert.equal(b.spec.process!.oomScoreAdj, 500);
  assert.equal(b.hostConfig.MemorySwap, 128 << 20);
  compiles(b);
  assert.deepEqual(build({ Memory: 64 << 20, MemorySwap: -1 }).spec.linux!.resources!.memory, { limit: 64 << 20, swap: -1 });
  assert.deepEqual(build({ CpuPeriod: 50000, CpuQuota: 25000 }).spec.linux!.resources!.cpu, { period: 50000, quota: 25000 });
  const unlimited = build({ PidsLimit: -1 });
  assert.equal(unlimited.spec.linux!.resources!.pids, undefined);
  assert.equal(unlimited.hostConfig.PidsLimit, null);
  assert.match(build({ OomKillDisable: true }).warnings.join(), /no memory limit is set/);
});

test('resources: Docker validation messages', () => {
  rejects(() => build({ Memory: 1024 }), /Minimum memory limit allowed is 6MB/);
  rejects(() => build({ MemorySwap: 100 << 20 }), /always set the Memory limit/);
  rejects(() => build({ Memory: 100 << 20, MemorySwap: 50 << 20 }), /memoryswap limit should be larger/);
  rejects(() => build({ Memory: 10 << 20, MemoryReservation: 20 << 20 }), /memory reservation limit/);
  rejects(() => build({ MemorySwappiness: 101 }), /valid memory swappiness range is 0-100/);
  rejects(() => build({ NanoCpus: 3e9 }), /Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available/);
  rejects(() => build({ NanoCpus: 1e9, CpuQuota: 50000 }), /Nano CPUs and CPU Quota/);
  rejects(() => build({ CpuPeriod: 10 }), /CPU cfs period/);
  rejects(() => build({ CpuQuota: 10 }), /CPU cfs quota/);
  rejects(() => build({ CpusetCpus: '0-3' }), /CpusetCpus: requested CPUs are not available - requested 0-3, available: 0-1/);
  rejects(() => build({ CpusetCpus: 'x' }), /invalid value "x"/);
  rejects(() => build({ BlkioWeight: 5 }), /Range of blkio weight is from 10 to 1000/);
  rejects(() => build({ OomScoreAdj: 2000 }), /range for oom score adj/);
  rejects(() => build({ KernelMemory: 1 << 30 }), /KernelMemory: a kernel memory limit is not supported/);
  rejects(() => build({ CpuRealtimeRuntime: 1000 }), /CpuRealtimeRuntime/);
  rejects(() => build({ ShmSize: -1 }), /SHM size can not be less than 0/);
});

test('cgroup v2 hosts: swappiness and OomKillDisable are discarded with warnings; private cgroupns', () => {
  const b = build({ MemorySwappiness: 10, OomKillDisable: true }, {}, { hostFacts: { cgroupV2: true, cpuCount: 1 } });
  assert.equal(b.spec.linux!.resources!.memory, undefined);
  assert.equal(b.warnings.length, 2);
  assert.ok(b.spec.linux!.namespaces!.some((n) => n.type === 'cgroup'));
  assert.equal(b.hostConfig.CgroupnsMode, 'private');
});

test('ulimits override the default nofile; bad ones are refused', () => {
  const b = build({ Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }, { Name: 'core', Soft: -1, Hard: -1 }] });
  assert.deepEqual(b.spec.process!.rlimits, [
    { type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 },
    { type: 'RLIMIT_CORE', soft: 2 ** 64 - 1, hard: 2 ** 64 - 1 },
  ]);
  compiles(b);
  rejects(() => build({ Ulimits: [{ Name: 'bogus', Soft: 1, Hard: 1 }] }), /Ulimits\[0\].Name: invalid ulimit type: bogus/);
  rejects(() => build({ Ulimits: [{ Name: 'nproc', Soft: 10, Hard: 5 }] }), /soft limit must be less than or equal to hard limit/);
});

test('sysctls: namespaced ones only, and not in the host namespaces', () => {
  const b = build({ Sysctls: { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1000', 'fs.mqueue.msg_max': '20' } });
  assert.equal(b.spec.linux!.sysctl!['net.ipv4.ip_forward'], '1');
  assert.equal(b.spec.linux!.sysctl!['kernel.shmmax'], '1000');
  compiles(b);
  rejects(() => build({ Sysctls: { 'kernel.panic': '1' } }), /Sysctls\["kernel.panic"\]: sysctl "kernel.panic" is not namespaced/);
  rejects(() => build({ NetworkMode: 'host', Sysctls: { 'net.ipv4.ip_forward': '1' } }), /not allowed in host network namespace/);
  rejects(() => build({ IpcMode: 'host', Sysctls: { 'kernel.shmmax': '1' } }), /not allowed in host IPC namespace/);
  assert.equal(build({ NetworkMode: 'host' }).spec.linux!.sysctl, undefined);
});

test('devices: a device, a directory of devices, rules, and privileged', () => {
  const b = build({ Devices: [{ PathOnHost: '/dev/fuse', PathInContainer: '', CgroupPermissions: 'rwm' }, { PathOnHost: '/dev/sda', PathInContainer: '/dev/xvda', CgroupPermissions: 'r' }], DeviceCgroupRules: ['c 1:3 rwm', 'b 8:* r'] });
  assert.deepEqual(b.spec.linux!.devices, [
    { type: 'c', path: '/dev/fuse', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
    { type: 'b', path: '/dev/xvda', major: 8, minor: 0, fileMode: 0o660, uid: 0, gid: 6 },
  ]);
  assert.deepEqual(b.spec.linux!.resources!.devices, [
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' },
    { allow: true, type: 'b', major: 8, minor: 0, access: 'r' },
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    { allow: true, type: 'b', major: 8, minor: null, access: 'r' },
  ]);
  compiles(b);
  const dir = build({ Devices: [{ PathOnHost: '/dev', PathInContainer: '/hostdev', CgroupPermissions: 'rw' }] });
  assert.deepEqual(dir.spec.linux!.devices!.map((d) => d.path), ['/hostdev/fuse', '/hostdev/sda']);
  rejects(() => build({ DeviceCgroupRules: ['x 1:2 rwm'] }), /DeviceCgroupRules\[0\]: invalid device cgroup rule/);
  rejects(() => build({ Devices: [{ PathOnHost: '/dev/fuse', PathInContainer: '', CgroupPermissions: 'rwx' }] }), /CgroupPermissions: invalid permissions/);
});

test('privileged: all capabilities and devices, no seccomp, no masked paths, /sys rw', () => {
  const b = build({ Privileged: true });
  const s = b.spec;
  assert.ok(s.process!.capabilities!.bounding!.includes('CAP_SYS_ADMIN'));
  assert.equal(s.process!.capabilities!.bounding!.length, 41);
  assert.equal(s.linux!.seccomp, undefined);
  assert.deepEqual(s.linux!.maskedPaths, []);
  assert.deepEqual(s.linux!.readonlyPaths, []);
  assert.deepEqual(s.linux!.resources!.devices, [{ allow: true, access: 'rwm' }]);
  assert.equal(s.linux!.devices!.length, 2);
  assert.ok(s.mounts!.find((m) => m.destination === '/sys')!.options!.includes('rw'));
  compiles(b);
});

test('capabilities: add, drop, ALL, unknown', () => {
  const caps = (hc: HostConfig) => build(hc).spec.process!.capabilities!.bounding!;
  const c1 = caps({ CapAdd: ['NET_ADMIN', 'cap_sys_time'], CapDrop: ['CHOWN', 'CAP_KILL'] });
  assert.ok(c1.includes('CAP_NET_ADMIN') && c1.includes('CAP_SYS_TIME'));
  assert.ok(!c1.includes('CAP_CHOWN') && !c1.includes('CAP_KILL'));
  assert.deepEqual(caps({ CapDrop: ['ALL'], CapAdd: ['NET_BIND_SERVICE'] }), ['CAP_NET_BIND_SERVICE']);
  const all = caps({ CapAdd: ['ALL'], CapDrop: ['SYS_ADMIN'] });
  assert.equal(all.length, 40);
  assert.ok(!all.includes('CAP_SYS_ADMIN'));
  // an add wins over a drop of the same capability
  assert.ok(caps({ CapAdd: ['CHOWN'], CapDrop: ['CHOWN'] }).includes('CAP_CHOWN'));
  rejects(() => build({ CapAdd: ['BOGUS'] }), /CapAdd\[0\]: unknown capability: "CAP_BOGUS"/);
  // CAP_SYS_ADMIN lets the default profile allow namespace-creating clone
  const seccomp = build({ CapAdd: ['SYS_ADMIN'] }).spec.linux!.seccomp!;
  assert.ok(!seccomp.syscalls!.some((s) => s.names.includes('clone3') && s.action === 'SCMP_ACT_ERRNO'));
});

test('SecurityOpt: no-new-privileges, seccomp, systempaths; apparmor/label only off', () => {
  assert.equal(build({ SecurityOpt: ['no-new-privileges'] }).spec.process!.noNewPrivileges, true);
  assert.equal(build({ SecurityOpt: ['no-new-privileges:true'] }).spec.process!.noNewPrivileges, true);
  assert.equal(build({ SecurityOpt: ['no-new-privileges=false'] }).spec.process!.noNewPrivileges, false);
  assert.equal(build({ SecurityOpt: ['seccomp=unconfined'] }).spec.linux!.seccomp, undefined);
  assert.equal(build({ SecurityOpt: ['seccomp:unconfined'] }).spec.linux!.seccomp, undefined);
  const sp = build({ SecurityOpt: ['systempaths=unconfined'] }).spec.linux!;
  assert.deepEqual([sp.maskedPaths, sp.readonlyPaths], [[], []]);
  build({ SecurityOpt: ['apparmor=unconfined', 'label=disable', 'label:disable'] });
  rejects(() => build({ SecurityOpt: ['apparmor=docker-default'] }), /SecurityOpt\[0\]: AppArmor profile "docker-default" is not supported/);
  rejects(() => build({ SecurityOpt: ['label=type:svirt_t'] }), /SELinux label/);
  rejects(() => build({ SecurityOpt: ['no-new-privileges=maybe'] }), /invalid --security-opt/);
  rejects(() => build({ SecurityOpt: ['bogus'] }), /SecurityOpt\[0\]: invalid --security-opt: "bogus"/);
  rejects(() => build({ SecurityOpt: ['seccomp={not json'] }), /decoding seccomp profile failed/);
});

test('SecurityOpt seccomp=<Docker profile>: archMap, includes and excludes', () => {
  const profile = {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    archMap: [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
    ],
    syscalls: [
      { names: ['read', 'write', 'exit_group', 'execve'], action: 'SCMP_ACT_ALLOW' },
      { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64'] } },
      { names: ['cacheflush'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm64'] } },
      { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }], excludes: { caps: ['CAP_SYS_ADMIN'] } },
      { name: 'chmod', action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
    ],
  };
  const s = build({ SecurityOpt: [`seccomp=${JSON.stringify(profile)}`] });
  const sc = s.spec.linux!.seccomp!;
  assert.deepEqual(sc.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  assert.deepEqual(sc.syscalls!.map((x) => x.names[0]), ['read', 'arch_prctl', 'clone', 'chmod']);
  assert.equal(sc.syscalls![3].errnoRet, 13);
  compiles(s);
  const admin = build({ CapAdd: ['SYS_ADMIN'], SecurityOpt: [`seccomp=${JSON.stringify(profile)}`] }).spec.linux!.seccomp!;
  assert.deepEqual(admin.syscalls!.map((x) => x.names[0]), ['read', 'arch_prctl', 'mount', 'chmod']);
  rejects(() => build({ SecurityOpt: [`seccomp=${JSON.stringify({ ...profile, architectures: ['SCMP_ARCH_X86_64'] })}`] }), /both 'architectures' and 'archMap'/);
});

test('MaskedPaths and ReadonlyPaths replace the defaults when given', () => {
  const l = build({ MaskedPaths: ['/proc/x'], ReadonlyPaths: [] }).spec.linux!;
  assert.deepEqual(l.maskedPaths, ['/proc/x']);
  assert.deepEqual(l.readonlyPaths, []);
  rejects(() => build({ MaskedPaths: ['rel'] }), /MaskedPaths\[0\]/);
});

test('network modes: none, host, bridge or a named network (own namespace, or the none fallback), container:', () => {
  const host = build({ NetworkMode: 'host' });
  assert.ok(!host.spec.linux!.namespaces!.some((n) => n.type === 'network'));
  assert.equal(host.spec.hostname, 'thehost');
  assert.equal(host.namespaces.network, 'host');
  compiles(host);
  assert.equal(build({ NetworkMode: 'host' }, { Hostname: 'mine' }).spec.hostname, 'mine');
  for (const [mode, expected] of [['bridge', 'bridge'], ['', 'bridge'], ['default', 'bridge'], ['mynet', 'mynet']] as const) {
    const b = build({ NetworkMode: mode, PortBindings: { '80/tcp': [{ HostPort: '8080' }] } });
    assert.equal(b.namespaces.networkMode, expected);
    assert.equal(b.namespaces.network, 'private');
    assert.ok(b.spec.linux!.namespaces!.some((n) => n.type === 'network' && n.path === undefined));
    assert.deepEqual(b.warnings, []);
  }
  const fb = build({ NetworkMode: 'default' }, {}, { bridgeFallback: 'none' });
  assert.equal(fb.namespaces.networkMode, 'none');
  assert.match(fb.warnings[0], /no network but loopback/);
  rejects(() => build({ NetworkMode: 'bridge', PortBindings: { '80/tcp': [{ HostPort: '8080' }] } }, {}, { bridgeFallback: 'none' }), /PortBindings: publishing ports is not supported/);
  assert.match(build({ NetworkMode: 'host', PortBindings: { '80/tcp': [{ HostPort: '8080' }] } }).warnings.join(), /discarded when using host network mode/);

  const asked: string[] = [];
  const resolveContainer = (ref: string, kind: string) => {
    asked.push(`${kind}:${ref}`);
    return { path: `/proc/42/ns/${kind === 'network' ? 'net' : kind}`, hostname: 'other', shmPath: '/proc/42/root/dev/shm' };
  };
  const joined = build({ NetworkMode: 'container:db', PidMode: 'container:db', IpcMode: 'container:db' }, {}, { resolveContainer });
  const nsOf = (t: string) => joined.spec.linux!.namespaces!.find((n) => n.type === t);
  assert.deepEqual(nsOf('network'), { type: 'network', path: '/proc/42/ns/net' });
  assert.deepEqual(nsOf('pid'), { type: 'pid', path: '/proc/42/ns/pid' });
  assert.deepEqual(nsOf('ipc'), { type: 'ipc', path: '/proc/42/ns/ipc' });
  assert.equal(joined.spec.hostname, 'other');
  assert.equal(joined.spec.mounts!.find((m) => m.destination === '/dev/shm')!.source, '/proc/42/root/dev/shm');
  assert.deepEqual(asked, ['network:db', 'pid:db', 'ipc:db']);
  assert.equal(joined.spec.linux!.sysctl, undefined);
  compiles(joined);
  rejects(() => build({ NetworkMode: 'container:db' }, { Hostname: 'x' }, { resolveContainer }), /conflicting options: hostname and the network mode/);
  rejects(() => build({ NetworkMode: 'container:db', Dns: ['1.1.1.1'] }, {}, { resolveContainer }), /conflicting options: dns/);
  rejects(() => build({ NetworkMode: 'container:' }, {}, { resolveContainer }), /names no container/);
});

test('pid, ipc, uts and cgroup namespace modes', () => {
  const b = build({ PidMode: 'host', IpcMode: 'host', UTSMode: 'host', CgroupnsMode: 'private' });
  const types = b.spec.linux!.namespaces!.map((n) => n.type).sort();
  assert.deepEqual(types, ['cgroup', 'mount', 'network']);
  assert.equal(b.spec.hostname, undefined);
  assert.equal(b.hostname, 'thehost');
  assert.deepEqual(b.spec.mounts!.find((m) => m.destination === '/dev/shm'), { destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'nosuid', 'noexec', 'nodev'] });
  compiles(b);
  const none = build({ IpcMode: 'none' });
  assert.equal(none.spec.mounts!.find((m) => m.destination === '/dev/shm'), undefined);
  assert.equal(build({ IpcMode: 'shareable', ShmSize: 1 << 20 }).spec.mounts!.find((m) => m.destination === '/dev/shm')!.options!.at(-1), 'size=1048576');
  rejects(() => build({ UTSMode: 'host' }, { Hostname: 'x' }), /conflicting options: hostname and the UTS mode/);
  rejects(() => build({ IpcMode: 'weird' }), /invalid IPC mode/);
  rejects(() => build({ PidMode: 'weird' }), /invalid PID mode/);
  rejects(() => build({ CgroupnsMode: 'weird' }), /invalid cgroup namespace mode/);
  rejects(() => build({ UsernsMode: 'private' }), /UsernsMode: user namespace mode "private" is not supported/);
});

test('unsupported fields are refused by name', () => {
  rejects(() => build({ VolumeDriver: 'flocker' }), /HostConfig.VolumeDriver/);
  rejects(() => build({ VolumesFrom: ['other'] }), /HostConfig.VolumesFrom/);
  rejects(() => build({ Links: ['a:b'] }), /HostConfig.Links/);
  rejects(() => build({ Runtime: 'kata' }), /HostConfig.Runtime: runtime "kata"/);
  rejects(() => build({ Isolation: 'hyperv' }), /HostConfig.Isolation/);
  rejects(() => build({ StorageOpt: { size: '10G' } }), /HostConfig.StorageOpt/);
  rejects(() => build({ Cgroup: 'container:x' }), /HostConfig.Cgroup/);
  for (const ok of [{ VolumeDriver: 'local' }, { Runtime: 'runc' }, { Isolation: 'default' }, { UsernsMode: 'host' }, { PublishAllPorts: true }]) build(ok as HostConfig);
  build({}, { MacAddress: '02:42:ac:11:00:02' });
});

test('LogConfig: json-file options, none, and refusals', () => {
  assert.deepEqual(build({ LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '5', compress: 'false' } } }).log, { driver: 'json-file', maxSize: 1 << 20, maxFile: 5 });
  assert.deepEqual(build({ LogConfig: { Type: 'none' } }).log.driver, 'none');
  assert.equal(build({ LogConfig: { Type: 'json-file', Config: { 'max-size': '-1' } } }).log.maxSize, -1);
  assert.match(build({ LogConfig: { Config: { tag: '{{.Name}}' } } }).warnings.join(), /"tag" is accepted but has no effect/);
  rejects(() => build({ LogConfig: { Type: 'syslog' } }), /LogConfig.Type: the "syslog" logging driver is not supported/);
  rejects(() => build({ LogConfig: { Config: { 'max-size': 'big' } } }), /invalid size "big"/);
  rejects(() => build({ LogConfig: { Config: { 'max-file': '0' } } }), /max-file must be a positive integer/);
  rejects(() => build({ LogConfig: { Config: { compress: 'true' } } }), /compressing rotated log files is not supported/);
  rejects(() => build({ LogConfig: { Config: { mode: 'non-blocking' } } }), /unknown log opt 'mode' for json-file log driver/);
});

test('RestartPolicy and AutoRemove', () => {
  build({ RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 } });
  rejects(() => build({ RestartPolicy: { Name: 'always', MaximumRetryCount: 3 } }), /maximum retry count cannot be used with restart policy 'always'/);
  rejects(() => build({ RestartPolicy: { Name: 'sometimes' as 'always' } }), /invalid restart policy "sometimes"/);
  rejects(() => build({ AutoRemove: true, RestartPolicy: { Name: 'always' } }), /can't create 'AutoRemove' container with restart policy 'always'/);
});

test('Config checks: healthcheck, stop signal, ports, env, hostname', () => {
  assert.equal(build({}, { StopSignal: 'SIGKILL' }).stopSignal, 9);
  assert.equal(build({}, { StopSignal: 'RTMIN+3' }).stopSignal, 37);
  assert.equal(build({}, {}, {}, { Cmd: ['sh'], StopSignal: 'SIGQUIT' }).stopSignal, 3);
  rejects(() => build({}, { StopSignal: 'SIGNOPE' }), /Config.StopSignal: invalid signal: SIGNOPE/);
  rejects(() => build({}, { Healthcheck: { Test: ['CMD'], Interval: 1 } }), /CMD needs a program/);
  rejects(() => build({}, { Healthcheck: { Test: ['CMD', 'true'], Interval: 10 } }), /Interval in Healthcheck cannot be less than 1ms/);
  rejects(() => build({}, { Healthcheck: { Test: ['CMD', 'true'], Retries: -1 } }), /Retries in Healthcheck cannot be negative/);
  rejects(() => build({}, { ExposedPorts: { '99999/tcp': {} } }), /out of range/);
  rejects(() => build({}, { ExposedPorts: { 'http': {} } }), /invalid port "http"/);
  rejects(() => build({}, { Env: ['=x'] }), /Config.Env\[0\]: invalid environment variable/);
  rejects(() => build({}, { Hostname: 'bad host' }), /Config.Hostname: invalid hostname format/);
  assert.equal(build({}, { Hostname: 'web', Domainname: 'example.com' }).spec.domainname, 'example.com');
});

test('renderContainerFiles uses the built hostname, ExtraHosts, Dns and network mode', () => {
  const b = build({ ExtraHosts: ['db:10.0.0.9'], Dns: ['9.9.9.9'] }, { Hostname: 'web' });
  const files = renderContainerFiles(b, { resolvConf: 'nameserver 127.0.0.1\nsearch lan\n' });
  assert.equal(files.hostname, 'web\n');
  assert.match(files.hosts, /^10\.0\.0\.9\tdb$/m);
  assert.equal(files.resolvConf, 'nameserver 9.9.9.9\nsearch lan\n');
  const host = renderContainerFiles(build({ NetworkMode: 'host' }), { resolvConf: 'nameserver 127.0.0.53\n', hosts: '127.0.0.1 localhost\n' });
  assert.equal(host.resolvConf, 'nameserver 127.0.0.53\n');
  assert.equal(host.hosts, '127.0.0.1 localhost\n');
});
