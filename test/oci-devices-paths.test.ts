// /dev contents (default devices, linux.devices), masked and read-only paths, sysctls.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Suite, type ProbeReport } from './helpers/suite.js';
import { show } from './helpers/runtime.js';

const s = new Suite('dev');
const rt = s.rt;
after(() => s.assertClean());

function dev(report: ProbeReport, path: string): ProbeReport['devices'][number] | undefined {
  return report.devices.find((d) => d.path === path);
}

test('default devices and /dev symlinks', async () => {
  const { report } = await s.probe({ extra: ['--try-write', '/dev/null'] });
  const want: [string, number, number][] = [
    ['/dev/null', 1, 3],
    ['/dev/zero', 1, 5],
    ['/dev/full', 1, 7],
    ['/dev/random', 1, 8],
    ['/dev/urandom', 1, 9],
    ['/dev/tty', 5, 0],
  ];
  for (const [p, maj, min] of want) {
    const d = dev(report, p);
    assert.ok(d, `${p} exists`);
    assert.equal(d.type, 'c', `${p} is a char device`);
    assert.equal(`${d.major}:${d.minor}`, `${maj}:${min}`, p);
    assert.equal(d.mode, '0666', `${p} mode`);
  }
  assert.equal(report.writable['/dev/null'], 'ok');
  const links: Record<string, string> = {
    '/dev/fd': '/proc/self/fd',
    '/dev/stdin': '/proc/self/fd/0',
    '/dev/stdout': '/proc/self/fd/1',
    '/dev/stderr': '/proc/self/fd/2',
  };
  for (const [p, target] of Object.entries(links)) assert.equal(dev(report, p)?.target, target, p);
  const ptmx = dev(report, '/dev/ptmx');
  assert.ok(ptmx, '/dev/ptmx exists');
  assert.ok(ptmx.type === 'l' ? ptmx.target === 'pts/ptmx' : ptmx.type === 'c', JSON.stringify(ptmx));
  assert.equal(dev(report, '/dev/pts/ptmx')?.type, 'c');
  // Nothing of the host's /dev leaks in.
  assert.equal(dev(report, '/dev/vda'), undefined);
  assert.equal(dev(report, '/dev/kmsg'), undefined);
});

test('linux.devices adds nodes with type, numbers, mode and owner', async () => {
  const { report } = await s.probe({
    extra: ['--try-write', '/dev/bt-null'],
    edit: (sp) => {
      sp.linux!.devices = [
        { path: '/dev/bt-null', type: 'c', major: 1, minor: 3, fileMode: 0o620, uid: 0, gid: 5 },
        { path: '/dev/bt-owned', type: 'c', major: 1, minor: 5, fileMode: 0o600, uid: 1000, gid: 1000 },
        { path: '/dev/sub/bt-loop', type: 'b', major: 7, minor: 200, fileMode: 0o600, uid: 0, gid: 0 },
        { path: '/dev/bt-fifo', type: 'p', major: 0, minor: 0, fileMode: 0o644 },
      ] as NonNullable<typeof sp.linux>['devices'];
    },
  });
  const n = dev(report, '/dev/bt-null');
  assert.deepEqual(
    n && { type: n.type, major: n.major, minor: n.minor, mode: n.mode, uid: n.uid, gid: n.gid },
    { type: 'c', major: 1, minor: 3, mode: '0620', uid: 0, gid: 5 },
  );
  const o = dev(report, '/dev/bt-owned');
  assert.deepEqual(o && [o.major, o.minor, o.mode, o.uid, o.gid], [1, 5, '0600', 1000, 1000]);
  assert.equal(report.writable['/dev/bt-null'], 'ok', 'the cgroup allows /dev/null-class devices');
  const loop = dev(report, '/dev/sub/bt-loop');
  assert.deepEqual(loop && [loop.type, loop.major, loop.minor, loop.mode], ['b', 7, 200, '0600']);
  assert.equal(dev(report, '/dev/bt-fifo')?.type, 'p');
});

test('a device node not allowed by the device cgroup cannot be opened (kmsg, c 1:11)', async () => {
  const { report } = await s.probe({
    extra: ['--try-write', '/dev/bt-mem'],
    edit: (sp) => {
      sp.linux!.devices = [{ path: '/dev/bt-mem', type: 'c', major: 1, minor: 11, fileMode: 0o666 }] as NonNullable<typeof sp.linux>['devices'];
    },
  });
  assert.equal(report.writable['/dev/bt-mem'], 'Operation not permitted');
});

test('masked paths: files read empty, directories are empty', async () => {
  const { report } = await s.probe({
    extra: ['--read', '/proc/kcore', '--read', '/proc/keys', '--read', '/etc/secret', '--read', '/etc/secretdir/x', '--try-write', '/etc/secretdir'],
    prepare: (b) => {
      writeFileSync(join(b.rootfs, 'etc', 'secret'), 'secret');
      mkdirSync(join(b.rootfs, 'etc', 'secretdir'));
      writeFileSync(join(b.rootfs, 'etc', 'secretdir', 'x'), 'secret');
    },
    edit: (sp) => {
      sp.linux!.maskedPaths = ['/proc/kcore', '/proc/keys', '/etc/secret', '/etc/secretdir', '/does/not/exist'];
    },
  });
  const kcore = report.files['/proc/kcore']!;
  assert.ok(kcore.content === '' || kcore.errno === 2, `kcore masked (or absent on this kernel): ${JSON.stringify(kcore)}`);
  assert.equal(report.files['/proc/keys']!.content, '');
  assert.equal(report.files['/etc/secret']!.content, '');
  assert.equal(report.files['/etc/secretdir/x']!.error, 'No such file or directory');
  assert.equal(report.writable['/etc/secretdir'], 'Read-only file system');
});

test('readonly paths cannot be written', async () => {
  const { report } = await s.probe({
    extra: ['--try-write', '/proc/sys/kernel/hostname', '--try-write', '/etc', '--try-write', '/tmp', '--read', '/etc/hostname'],
    edit: (sp) => {
      sp.linux!.readonlyPaths = ['/proc/sys', '/etc', '/does/not/exist'];
    },
  });
  assert.equal(report.writable['/proc/sys/kernel/hostname'], 'Read-only file system');
  assert.equal(report.writable['/etc'], 'Read-only file system');
  assert.equal(report.writable['/tmp'], 'ok');
  assert.equal(report.files['/etc/hostname']!.content, 'bundle\n');
});

test('sysctls: net.ipv4.ip_forward in a new netns, kernel.shmmax in a new ipc ns', async () => {
  const hostShmmax = readFileSync('/proc/sys/kernel/shmmax', 'utf8').trim();
  const hostFwd = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
  const { report } = await s.probe({
    extra: ['--sysctl', 'net.ipv4.ip_forward', '--sysctl', 'kernel.shmmax', '--sysctl', 'net.ipv4.ping_group_range'],
    edit: (sp) => {
      sp.linux!.sysctl = { 'net.ipv4.ip_forward': hostFwd === '1' ? '0' : '1', 'kernel.shmmax': '4096000', 'net.ipv4.ping_group_range': '0 1000' };
    },
  });
  assert.equal(report.sysctls['net.ipv4.ip_forward'], hostFwd === '1' ? '0' : '1');
  assert.equal(report.sysctls['kernel.shmmax'], '4096000');
  assert.equal(report.sysctls['net.ipv4.ping_group_range'], '0\t1000');
  assert.equal(readFileSync('/proc/sys/kernel/shmmax', 'utf8').trim(), hostShmmax, 'host shmmax unchanged');
  assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), hostFwd, 'host ip_forward unchanged');
});

test('a net sysctl without a private network namespace is refused', async () => {
  const b = s.bundle({
    edit: (sp) => {
      sp.linux!.namespaces = sp.linux!.namespaces!.filter((n) => n.type !== 'network');
      sp.mounts = sp.mounts!.map((m) => (m.destination === '/sys' ? { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'ro'] } : m));
      sp.linux!.sysctl = { 'net.ipv4.ip_forward': '1' };
    },
  });
  const id = s.id();
  const r = await rt.run(id, b.dir);
  assert.notEqual(r.code, 0, 'refused');
  assert.match(r.stderr, /net\.ipv4\.ip_forward|sysctl/, show(r));
  assert.notEqual((await rt.cmd(['state', id])).code, 0, 'nothing left behind');
});

test('an unknown sysctl fails the container, naming it', async () => {
  const b = s.bundle({ edit: (sp) => (sp.linux!.sysctl = { 'kernel.bt_no_such_knob': '1' }) });
  const id = s.id();
  const r = await rt.run(id, b.dir);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /bt_no_such_knob/, show(r));
});

test('a file in the rootfs is visible as written by the host (sanity)', async () => {
  const b = s.bundle({ args: ['/bin/cat', '/etc/note'] });
  writeFileSync(join(b.rootfs, 'etc', 'note'), 'note\n');
  const r = await rt.run(s.id(), b.dir);
  assert.equal(r.stdout, 'note\n', show(r));
});
