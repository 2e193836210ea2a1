import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBerthError } from '../errors.js';
import {
  addonPath,
  lgetxattr,
  llistxattr,
  lsetxattr,
  mknod,
  mountOverlay,
  MOUNT_DATA_MAX,
  newMountApiUnsupported,
  overlayMountData,
  systemError,
} from './sys.js';

function withTempDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'berth-sys-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function nativeError(errno: number, syscall: string, extra: { path?: string; key?: string } = {}): Error {
  return Object.assign(new Error(syscall), { errno, syscall, ...extra });
}

test('the addon is found under native/build of the package root', () => {
  assert.match(addonPath(), /native\/build\/berth_sys\.node$/);
});

test('systemError reads like a Node fs error', () => {
  const err = systemError(1, 'mknod', '/x');
  assert.equal(err.message, "EPERM: operation not permitted, mknod '/x'");
  assert.equal(err.code, 'EPERM');
  assert.equal(err.errno, -1);
  assert.equal(err.syscall, 'mknod');
  assert.equal(err.path, '/x');
});

test('mknod makes a fifo and reports failures with code, syscall and path', () => {
  withTempDir((dir) => {
    const fifo = join(dir, 'fifo');
    mknod(fifo, constants.S_IFIFO | 0o640, 0, 0);
    const st = statSync(fifo);
    assert.ok(st.isFIFO());
    assert.equal(st.mode & 0o777, 0o640 & ~process.umask());
    const missing = join(dir, 'no/such/dir');
    assert.throws(() => mknod(missing, constants.S_IFIFO | 0o600, 0, 0), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ENOENT');
      assert.equal(err.syscall, 'mknod');
      assert.equal(err.path, missing);
      assert.equal(err.message, `ENOENT: no such file or directory, mknod '${missing}'`);
      return true;
    });
    assert.throws(() => mknod(fifo, constants.S_IFIFO, 0, 0), { code: 'EEXIST' });
  });
});

test('paths with a NUL byte are refused, not cut short', () => {
  withTempDir((dir) => {
    assert.throws(() => mknod(`${dir}/a\0b`, constants.S_IFIFO | 0o600, 0, 0), TypeError);
  });
});

test('lsetxattr, lgetxattr and llistxattr round-trip user attributes', (t) => {
  withTempDir((dir) => {
    const file = join(dir, 'f');
    writeFileSync(file, '');
    try {
      lsetxattr(file, 'user.berth.test', Buffer.from('value\0with nul'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTSUP' || (err as NodeJS.ErrnoException).code === 'EOPNOTSUPP') {
        t.skip(`${dir} does not support user xattrs`);
        return;
      }
      throw err;
    }
    lsetxattr(file, 'user.empty', Buffer.alloc(0));
    assert.deepEqual(lgetxattr(file, 'user.berth.test'), Buffer.from('value\0with nul'));
    assert.deepEqual(lgetxattr(file, 'user.empty'), Buffer.alloc(0));
    assert.equal(lgetxattr(file, 'user.absent'), undefined);
    assert.deepEqual(llistxattr(file).filter((n) => n.startsWith('user.')).sort(), ['user.berth.test', 'user.empty']);
    assert.throws(() => lgetxattr(join(dir, 'missing'), 'user.x'), { code: 'ENOENT', syscall: 'lgetxattr' });
  });
});

test('mountOverlay checks its options before touching the kernel', () => {
  const invalid = (err: unknown): boolean => isBerthError(err, 'InvalidArgument');
  assert.throws(() => mountOverlay('/nonexistent', { lower: [] }), invalid);
  assert.throws(() => mountOverlay('/nonexistent', { lower: ['/a', '/b'], upper: '/u' }), invalid);
  assert.throws(() => mountOverlay('/nonexistent', { lower: ['/a'] }), invalid);
});

test('the mount(2) fallback joins layers topmost first and keeps mount flags out of the data', () => {
  assert.equal(
    overlayMountData('/m', { lower: ['/l2', '/l1'], upper: '/u', work: '/w', options: ['index=off', 'ro', 'nodev'] }),
    'lowerdir=/l2:/l1,upperdir=/u,workdir=/w,index=off',
  );
  assert.equal(overlayMountData('/m', { lower: ['/a', '/b'] }), 'lowerdir=/a:/b');
});

test('the mount(2) fallback refuses paths it cannot express and strings over a page', () => {
  assert.throws(() => overlayMountData('/m', { lower: ['/a:b', '/c'] }), (err: unknown) => isBerthError(err, 'InvalidArgument'));
  assert.throws(() => overlayMountData('/m', { lower: ['/a,b', '/c'] }), (err: unknown) => isBerthError(err, 'InvalidArgument'));
  const lower = Array.from({ length: 200 }, (_, i) => `/var/lib/berth/snapshots/overlay/sha256-${String(i).padStart(64, '0')}/fs`);
  assert.throws(
    () => overlayMountData('/m', { lower }),
    (err: unknown) => isBerthError(err, 'FailedPrecondition') && /200 lower layers/.test(err.message) && err.message.includes(String(MOUNT_DATA_MAX)),
  );
});

test('only a missing new mount API or lowerdir+ falls back to mount(2)', () => {
  const opts = { lower: ['/top', '/bottom'] };
  const EINVAL = 22;
  const ENOSYS = 38;
  const ENOENT = 2;
  assert.equal(newMountApiUnsupported(nativeError(ENOSYS, 'fsopen'), opts), true);
  assert.equal(newMountApiUnsupported(nativeError(EINVAL, 'fsconfig', { key: 'lowerdir+', path: '/top' }), opts), true);
  assert.equal(newMountApiUnsupported(nativeError(EINVAL, 'fsconfig', { key: 'lowerdir+', path: '/bottom' }), opts), false);
  assert.equal(newMountApiUnsupported(nativeError(ENOENT, 'fsconfig', { key: 'lowerdir+', path: '/top' }), opts), false);
  assert.equal(newMountApiUnsupported(nativeError(EINVAL, 'fsconfig', { key: 'upperdir', path: '/u' }), opts), false);
  assert.equal(newMountApiUnsupported(new Error('other'), opts), false);
});
