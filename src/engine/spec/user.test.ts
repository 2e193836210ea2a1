import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBerthError } from '../../errors.js';
import { readFileInRoot, resolveInRoot } from './rootfs-files.js';
import { parseGroup, parsePasswd, resolveUser } from './user.js';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  '# a comment',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'app:x:1000:1000:App:/home/app:/bin/sh',
  'broken line',
  'nohome:x:1001:100::',
].join('\n');
const GROUP = ['root:x:0:', 'wheel:x:10:root,app', 'users:x:100:', 'app:x:1000:', 'docker:x:999:app', 'audio:x:29:'].join('\n');

function rootfs(files: Record<string, string> = { 'etc/passwd': PASSWD, 'etc/group': GROUP }): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-spec-user-'));
  mkdirSync(join(dir, 'etc'));
  for (const [p, text] of Object.entries(files)) writeFileSync(join(dir, p), text);
  return dir;
}

test('parsePasswd and parseGroup skip comments and malformed lines', () => {
  assert.deepEqual(parsePasswd(PASSWD).map((u) => u.name), ['root', 'daemon', 'app', 'nohome']);
  assert.deepEqual(parseGroup(GROUP).find((g) => g.name === 'wheel')?.members, ['root', 'app']);
});

test('the default user is root with its passwd home and its groups', (t) => {
  const dir = rootfs();
  t.after(() => rmSync(dir, { recursive: true }));
  assert.deepEqual(resolveUser({ rootfs: dir }), { uid: 0, gid: 0, additionalGids: [10], home: '/root', username: 'root' });
});

test('a name resolves uid, gid, home and supplementary groups', (t) => {
  const dir = rootfs();
  t.after(() => rmSync(dir, { recursive: true }));
  assert.deepEqual(resolveUser({ rootfs: dir, user: 'app' }), { uid: 1000, gid: 1000, additionalGids: [10, 999], home: '/home/app', username: 'app' });
  assert.equal(resolveUser({ rootfs: dir, user: '1000' }).username, 'app');
  assert.equal(resolveUser({ rootfs: dir, user: 'nohome' }).home, '/');
});

test('an explicit group replaces the primary group and drops membership groups', (t) => {
  const dir = rootfs();
  t.after(() => rmSync(dir, { recursive: true }));
  assert.deepEqual(resolveUser({ rootfs: dir, user: 'app:users' }), { uid: 1000, gid: 100, additionalGids: [], home: '/home/app', username: 'app' });
  assert.equal(resolveUser({ rootfs: dir, user: 'app:4242' }).gid, 4242);
  assert.equal(resolveUser({ rootfs: dir, user: '0:10' }).gid, 10);
});

test('unknown numeric ids are used as they are, unknown names are refused', (t) => {
  const dir = rootfs();
  t.after(() => rmSync(dir, { recursive: true }));
  assert.deepEqual(resolveUser({ rootfs: dir, user: '4000:4000' }), { uid: 4000, gid: 4000, additionalGids: [], home: '/' });
  assert.deepEqual(resolveUser({ rootfs: dir, user: '4000' }), { uid: 4000, gid: 0, additionalGids: [], home: '/' });
  assert.throws(() => resolveUser({ rootfs: dir, user: 'ghost' }), (e) => isBerthError(e, 'InvalidArgument') && /unable to find user ghost: no matching entries in passwd file/.test(e.message));
  assert.throws(() => resolveUser({ rootfs: dir, user: 'app:ghosts' }), /unable to find group ghosts/);
  assert.throws(() => resolveUser({ rootfs: dir, user: '99999999999' }), /uids and gids must be in range/);
  assert.throws(() => resolveUser({ rootfs: dir, user: 'app:' }), /names no group/);
});

test('without /etc/passwd numeric users work and names do not', (t) => {
  const dir = rootfs({});
  t.after(() => rmSync(dir, { recursive: true }));
  assert.deepEqual(resolveUser({ rootfs: dir, user: '' }), { uid: 0, gid: 0, additionalGids: [], home: '/' });
  assert.throws(() => resolveUser({ rootfs: dir, user: 'root' }), /unable to find user root/);
});

test('GroupAdd adds names and numbers once each', (t) => {
  const dir = rootfs();
  t.after(() => rmSync(dir, { recursive: true }));
  assert.deepEqual(resolveUser({ rootfs: dir, user: 'app', groupAdd: ['audio', '10', '5000'] }).additionalGids, [10, 999, 29, 5000]);
  assert.throws(() => resolveUser({ rootfs: dir, groupAdd: ['nosuch'] }), /GroupAdd\[0\]: unable to find group nosuch/);
});

test('a symlinked /etc/passwd pointing outside the rootfs resolves inside it', (t) => {
  const outside = mkdtempSync(join(tmpdir(), 'berth-spec-outside-'));
  writeFileSync(join(outside, 'passwd'), 'evil:x:0:0::/:/bin/sh\n');
  const dir = rootfs({ 'etc/group': GROUP });
  t.after(() => {
    rmSync(dir, { recursive: true });
    rmSync(outside, { recursive: true });
  });
  // Absolute and relative links that would climb out both land inside the rootfs.
  symlinkSync(join(outside, 'passwd'), join(dir, 'etc/passwd'));
  assert.equal(readFileInRoot(dir, '/etc/passwd'), undefined);
  assert.throws(() => resolveUser({ rootfs: dir, user: 'evil' }), /unable to find user evil/);
  rmSync(join(dir, 'etc/passwd'));
  symlinkSync(`../../../../../../..${outside}/passwd`, join(dir, 'etc/passwd'));
  assert.equal(readFileInRoot(dir, '/etc/passwd'), undefined);
  // The same path inside the rootfs is what the link means for the container.
  mkdirSync(join(dir, outside), { recursive: true });
  writeFileSync(join(dir, outside, 'passwd'), 'inside:x:5:5::/:/bin/sh\n');
  assert.equal(resolveUser({ rootfs: dir, user: 'inside' }).uid, 5);
});

test('a symlinked directory is followed within the rootfs', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-spec-user-'));
  t.after(() => rmSync(dir, { recursive: true }));
  mkdirSync(join(dir, 'real'));
  writeFileSync(join(dir, 'real/passwd'), 'u:x:7:7::/:/bin/sh\n');
  symlinkSync('/real', join(dir, 'etc'));
  assert.equal(resolveInRoot(dir, '/etc/passwd'), join(dir, 'real/passwd'));
  assert.equal(resolveUser({ rootfs: dir, user: 'u' }).uid, 7);
});

test('symlink loops and non-regular files are refused', (t) => {
  const dir = rootfs({});
  t.after(() => rmSync(dir, { recursive: true }));
  symlinkSync('/etc/passwd', join(dir, 'etc/passwd'));
  assert.throws(() => readFileInRoot(dir, '/etc/passwd'), /too many levels of symbolic links/);
  rmSync(join(dir, 'etc/passwd'));
  mkdirSync(join(dir, 'etc/passwd'));
  assert.throws(() => readFileInRoot(dir, '/etc/passwd'), /not a regular file/);
});
