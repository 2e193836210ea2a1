// Mounts: bind ro/rw, rbind, propagation, tmpfs, proc, sysfs, devpts, mqueue, cgroup;
// readonly rootfs, rootfsPropagation and --no-pivot.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Suite, mountAt, type ProbeReport } from './helpers/suite.js';
import { show } from './helpers/runtime.js';

const s = new Suite('mnt');
const rt = s.rt;
after(() => s.assertClean());

/** Whether the host mount that holds path is shared (mountinfo optional field shared:N). */
function hostMountShared(path: string): boolean {
  let best: string[] | undefined;
  let bestLen = -1;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const mp = f[4];
    if (mp && (path === mp || path.startsWith(mp === '/' ? '/' : `${mp}/`)) && mp.length > bestLen) {
      best = f.slice(6, f.indexOf('-'));
      bestLen = mp.length;
    }
  }
  return best?.some((x) => x.startsWith('shared:')) ?? false;
}

function opts(m: ProbeReport['mounts'][number] | undefined): string[] {
  assert.ok(m, 'mount exists');
  return m.options.split(',');
}

test('bind mounts: ro and rw', async () => {
  const holder = s.bundle({ args: ['/bin/true'] });
  const ro = holder.hostDir('ro');
  const rw = holder.hostDir('rw');
  writeFileSync(join(ro, 'file'), 'read me');
  const { report } = await s.probe({
    extra: ['--read', '/mnt/ro/file', '--try-write', '/mnt/ro', '--try-write', '/mnt/rw'],
    edit: (sp) => {
      sp.mounts!.push({ destination: '/mnt/ro', type: 'bind', source: ro, options: ['bind', 'ro'] });
      sp.mounts!.push({ destination: '/mnt/rw', type: 'bind', source: rw, options: ['bind', 'rw'] });
    },
  });
  assert.equal(report.files['/mnt/ro/file']!.content, 'read me');
  assert.equal(report.writable['/mnt/ro'], 'Read-only file system');
  assert.equal(report.writable['/mnt/rw'], 'ok');
  assert.ok(opts(mountAt(report, '/mnt/ro')).includes('ro'));
  assert.ok(opts(mountAt(report, '/mnt/rw')).includes('rw'));
});

test('bind mount of a file, and with nosuid,nodev,noexec', async () => {
  const holder = s.bundle({ args: ['/bin/true'] });
  const d = holder.hostDir('f');
  writeFileSync(join(d, 'cfg'), 'config');
  const { report } = await s.probe({
    extra: ['--read', '/etc/cfg'],
    edit: (sp) => {
      sp.mounts!.push({ destination: '/etc/cfg', type: 'bind', source: join(d, 'cfg'), options: ['bind', 'ro'] });
      sp.mounts!.push({ destination: '/mnt/x', type: 'bind', source: d, options: ['bind', 'nosuid', 'nodev', 'noexec'] });
    },
  });
  assert.equal(report.files['/etc/cfg']!.content, 'config');
  const o = opts(mountAt(report, '/mnt/x'));
  for (const f of ['nosuid', 'nodev', 'noexec']) assert.ok(o.includes(f), `${f} in ${o}`);
});

test('bind vs rbind: submounts come along only with rbind', async () => {
  const holder = s.bundle({ args: ['/bin/true'] });
  const src = holder.hostDir('tree');
  const sub = join(src, 'sub');
  mkdirSync(sub);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'bt-sub', sub]);
  try {
    writeFileSync(join(sub, 'inner'), 'inner');
    const { report } = await s.probe({
      extra: ['--read', '/mnt/b/sub/inner', '--read', '/mnt/r/sub/inner'],
      edit: (sp) => {
        sp.mounts!.push({ destination: '/mnt/b', type: 'bind', source: src, options: ['bind'] });
        sp.mounts!.push({ destination: '/mnt/r', type: 'bind', source: src, options: ['rbind'] });
      },
    });
    assert.equal(report.files['/mnt/b/sub/inner']!.error, 'No such file or directory');
    assert.equal(report.files['/mnt/r/sub/inner']!.content, 'inner');
    assert.equal(mountAt(report, '/mnt/r/sub')?.fstype, 'tmpfs');
  } finally {
    execFileSync('umount', [sub]);
  }
});

test('bind mount propagation flags: rshared, rslave, rprivate', async () => {
  const holder = s.bundle({ args: ['/bin/true'] });
  const src = holder.hostDir('prop');
  const { report } = await s.probe({
    edit: (sp) => {
      sp.mounts!.push({ destination: '/mnt/shared', type: 'bind', source: src, options: ['rbind', 'rshared'] });
      sp.mounts!.push({ destination: '/mnt/private', type: 'bind', source: src, options: ['rbind', 'rprivate'] });
    },
  });
  assert.ok(mountAt(report, '/mnt/shared')!.propagation.some((p) => p.startsWith('shared:')), JSON.stringify(mountAt(report, '/mnt/shared')));
  assert.deepEqual(mountAt(report, '/mnt/private')!.propagation, []);
});

test('tmpfs with size and mode', async () => {
  const { report } = await s.probe({
    extra: ['--try-write', '/mnt/t'],
    edit: (sp) => sp.mounts!.push({ destination: '/mnt/t', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'size=1m', 'mode=0750'] }),
  });
  const m = mountAt(report, '/mnt/t');
  assert.equal(m?.fstype, 'tmpfs');
  const so = m!.superOptions.split(',');
  assert.ok(so.includes('size=1024k'), m!.superOptions);
  assert.ok(so.includes('mode=750'), m!.superOptions);
  assert.ok(opts(m).includes('nosuid'));
  assert.equal(report.writable['/mnt/t'], 'ok');
});

test('default filesystems: proc, sysfs ro, devpts, mqueue, shm, cgroup ro', async () => {
  const { report } = await s.probe({ extra: ['--try-write', '/sys/kernel', '--read', '/proc/self/comm'] });
  assert.equal(mountAt(report, '/proc')?.fstype, 'proc');
  assert.equal(report.files['/proc/self/comm']!.content, 'probe\n');
  const sys = mountAt(report, '/sys');
  assert.equal(sys?.fstype, 'sysfs');
  assert.ok(opts(sys).includes('ro'));
  const pts = mountAt(report, '/dev/pts');
  assert.equal(pts?.fstype, 'devpts');
  assert.ok(pts!.superOptions.includes('ptmxmode=666'), pts!.superOptions);
  assert.equal(mountAt(report, '/dev/mqueue')?.fstype, 'mqueue');
  assert.equal(mountAt(report, '/dev/shm')?.fstype, 'tmpfs');
  const cg = report.mounts.filter((m) => m.mountPoint.startsWith('/sys/fs/cgroup') && m.fstype.startsWith('cgroup'));
  assert.ok(cg.length > 0, 'cgroup filesystems mounted');
  for (const m of cg) assert.ok(m.options.split(',').includes('ro'), `${m.mountPoint} is ro`);
});

test('the rootfs is the bundle rootfs (files inside are visible, host ones are not)', async () => {
  const { report } = await s.probe({ extra: ['--read', '/etc/hostname', '--read', '/etc/os-release'] });
  assert.equal(report.files['/etc/hostname']!.content, 'bundle\n');
  assert.ok(report.files['/etc/os-release']!.error, 'the host /etc is not visible');
});

test('readonly rootfs', async () => {
  const { report } = await s.probe({
    extra: ['--try-write', '/', '--try-write', '/tmp', '--try-write', '/dev/shm'],
    edit: (sp) => (sp.root!.readonly = true),
  });
  assert.ok(opts(mountAt(report, '/')).includes('ro'));
  assert.equal(report.writable['/'], 'Read-only file system');
  assert.equal(report.writable['/tmp'], 'Read-only file system');
  assert.equal(report.writable['/dev/shm'], 'ok', 'mounts on top stay writable');
});

for (const [prop, want] of [
  ['shared', /^shared:/],
  ['slave', /^master:/],
  ['private', null],
] as const) {
  test(`rootfsPropagation ${prop}`, async (t) => {
    if (rt.isRunc && want) return t.skip('runc 1.1.5 leaves / private here (the host / is a private mount)');
    if (prop === 'slave' && !hostMountShared(s.bundle({ args: ['/bin/true'] }).dir))
      return t.skip('the host mount under the bundle is private: a slave needs a shared master to follow, so / stays private');
    const { report } = await s.probe({ edit: (sp) => (sp.linux!.rootfsPropagation = prop) });
    const root = mountAt(report, '/');
    assert.ok(root);
    if (want) assert.ok(root.propagation.some((p) => want.test(p)), `/ propagation ${JSON.stringify(root.propagation)}`);
    else assert.deepEqual(root.propagation, []);
  });
}

test('mounts made inside the container do not appear on the host', async () => {
  const b = s.bundle({
    args: ['/bin/sh', '-c', 'mkdir -p /mnt/in && mount -t tmpfs bt-inner /mnt/in && echo done'],
    edit: (sp) => {
      for (const k of ['bounding', 'permitted', 'effective'] as const) sp.process!.capabilities![k]!.push('CAP_SYS_ADMIN');
    },
  });
  const r = await rt.run(s.id(), b.dir);
  assert.equal(r.code, 0, show(r));
  assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes('bt-inner'));
});

test('--no-pivot runs the container with the rootfs moved to /', async () => {
  const b = s.bundle({ args: ['/probe', 'report', '--read', '/etc/hostname'] });
  const id = s.id();
  const r = await rt.run(id, b.dir, { noPivot: true });
  assert.equal(r.code, 0, show(r));
  const report = JSON.parse(r.stdout) as ProbeReport;
  assert.equal(report.files['/etc/hostname']!.content, 'bundle\n');
  assert.equal(report.cwd, '/');
  assert.ok(mountAt(report, '/proc'));
});

test('a mount destination escaping the rootfs through a symlink stays inside', async () => {
  const holder = s.bundle({ args: ['/bin/true'] });
  const src = holder.hostDir('esc');
  writeFileSync(join(src, 'marker'), 'x');
  const b = s.bundle({
    args: ['/probe', 'report'],
    edit: (sp) => sp.mounts!.push({ destination: '/evil/target', type: 'bind', source: src, options: ['bind'] }),
  });
  // /evil → / on the host if followed naively; must resolve inside the rootfs.
  execFileSync('ln', ['-s', '/', join(b.rootfs, 'evil')]);
  const outside = join(holder.dir, 'bt-escape-check');
  const r = await rt.run(s.id(), b.dir);
  assert.ok(!existsSync('/target/marker'), 'nothing was mounted on the host /target');
  assert.ok(!existsSync(outside));
  if (r.code === 0) {
    const report = JSON.parse(r.stdout) as ProbeReport;
    assert.ok(mountAt(report, '/target'), 'mounted at /target inside the rootfs');
  }
});
