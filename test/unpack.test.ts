// Layer extraction as root: every entry kind with owners, modes, mtimes and xattrs, the two
// whiteout formats, and each malicious layer of the issue (refused or confined, nothing
// written outside the layer directory).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { applyLayer, type LayerFormat } from '../src/image/unpack/apply-layer.js';
import { unpackLayer } from '../src/image/unpack/unpack-layer.js';
import { lgetxattr, lsetxattr } from '../src/host/sys.js';
import { buildLayer, buildTar, compress, malicious, type LayerEntrySpec } from './helpers/layers.js';

const base = mkdtempSync(join(tmpdir(), 'berth-unpack-'));
after(() => rmSync(base, { recursive: true, force: true }));
let counter = 0;

const isRoot = process.geteuid?.() === 0;

/** A sandbox: `layer` to extract into, and `outside` (a sibling holding bait files). */
function sandbox(): { layer: string; outside: string; bait: string } {
  const root = join(base, `s${++counter}`);
  const layer = join(root, 'layer');
  const outside = join(root, 'outside');
  mkdirSync(layer, { recursive: true });
  mkdirSync(outside);
  const bait = join(outside, 'bait');
  writeFileSync(bait, 'original');
  return { layer, outside, bait };
}

/** Every path under dir with its kind and content, to compare before/after. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) {
        out.push(`${p}/ ${st.mode.toString(8)}`);
        walk(p);
      } else if (st.isSymbolicLink()) out.push(`${p} -> ${readlinkSync(p)}`);
      else out.push(`${p} ${st.mode.toString(8)} ${st.nlink} ${st.isFile() ? readFileSync(p, 'utf8') : ''}`);
    }
  };
  walk(dir);
  return out;
}

/** Relative paths under dir ('x/' for dirs, 'x=content' for files), sorted. */
function files(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (lstatSync(p).isDirectory()) out.push(`${prefix}${name}/`, ...files(p, `${prefix}${name}/`));
    else out.push(`${prefix}${name}=${readFileSync(p, 'utf8')}`);
  }
  return out;
}

function apply(tar: Buffer, dir: string, format: LayerFormat, extra: { maxBytes?: number; warnings?: string[] } = {}) {
  return applyLayer(Readable.from([tar]), { dir, format, maxBytes: extra.maxBytes, onWarning: (m) => extra.warnings?.push(m) });
}

function skipUnlessRoot(t: { skip(msg: string): void }): boolean {
  if (isRoot) return false;
  t.skip('needs root (chown, mknod, trusted/security xattrs)');
  return true;
}

// security.capability v2: cap_net_raw (bit 13) permitted+effective.
const CAP_NET_RAW = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);

const everyKind: LayerEntrySpec[] = [
  { name: './', type: 'dir', mode: 0o755, mtime: 1_000_000_001 },
  { name: './etc/', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1_000_000_002 },
  { name: './etc/conf', body: 'conf', mode: 0o640, uid: 1000, gid: 1001, mtime: 1_000_000_003 },
  { name: './bin/', type: 'dir', mtime: 1_000_000_004 },
  { name: './bin/su', body: 'su', mode: 0o4755, uid: 0, gid: 0 },
  { name: './bin/wall', body: 'wall', mode: 0o2755, uid: 0, gid: 5 },
  { name: './bin/ping', body: 'ping', mode: 0o755, uid: 1002, gid: 1002, xattrs: { 'security.capability': CAP_NET_RAW, 'user.note': 'hi' } },
  { name: './tmp/', type: 'dir', mode: 0o1777, mtime: 1_000_000_005 },
  { name: './ro/', type: 'dir', mode: 0o555, uid: 7, gid: 8, mtime: 1_000_000_006 },
  { name: './ro/inside', body: 'filled after the dir', mode: 0o444 },
  { name: './bin/sh', type: 'symlink', linkname: 'busybox', uid: 1003, gid: 1004, mtime: 1_000_000_007 },
  { name: './bin/busybox', body: 'bb', mode: 0o755 },
  { name: './bin/ash', type: 'hardlink', linkname: 'bin/busybox' },
  { name: './dev/', type: 'dir' },
  { name: './dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3, mtime: 1_000_000_008 },
  { name: './dev/loop0', type: 'block', mode: 0o660, devmajor: 7, devminor: 0, uid: 0, gid: 6 },
  { name: './dev/fifo', type: 'fifo', mode: 0o620, uid: 9, gid: 9 },
  { name: 'implicit/parent/file', body: 'no dir entries before me' },
];

for (const format of ['overlay', 'copy'] as const) {
  test(`${format}: every entry kind with owners, modes, mtimes and xattrs`, async (t) => {
    if (skipUnlessRoot(t)) return;
    const { layer } = sandbox();
    const tar = await buildTar(everyKind);
    const warnings: string[] = [];
    const r = await apply(tar, layer, format, { warnings });
    assert.equal(r.entries, everyKind.length);
    assert.equal(r.bytes, everyKind.reduce((n, e) => n + Buffer.byteLength(e.body ?? ''), 0));
    const st = (p: string) => lstatSync(join(layer, p));
    assert.equal(readFileSync(join(layer, 'etc/conf'), 'utf8'), 'conf');
    assert.equal(st('etc/conf').mode & 0o7777, 0o640);
    assert.deepEqual([st('etc/conf').uid, st('etc/conf').gid], [1000, 1001]);
    assert.equal(st('etc/conf').mtimeMs, 1_000_000_003_000);
    assert.equal(st('bin/su').mode & 0o7777, 0o4755, 'setuid survives');
    assert.equal(st('bin/wall').mode & 0o7777, 0o2755, 'setgid survives');
    assert.equal(st('bin/wall').gid, 5);
    assert.equal(st('bin/ping').uid, 1002);
    assert.deepEqual(lgetxattr(join(layer, 'bin/ping'), 'security.capability'), CAP_NET_RAW, 'security.capability survives the chown');
    assert.deepEqual(lgetxattr(join(layer, 'bin/ping'), 'user.note'), Buffer.from('hi'));
    assert.equal(st('tmp').mode & 0o7777, 0o1777);
    assert.equal(st('tmp').mtimeMs, 1_000_000_005_000);
    assert.equal(st('ro').mode & 0o7777, 0o555);
    assert.deepEqual([st('ro').uid, st('ro').gid], [7, 8]);
    assert.equal(st('ro').mtimeMs, 1_000_000_006_000, 'dir mtime set after its children');
    assert.equal(readFileSync(join(layer, 'ro/inside'), 'utf8'), 'filled after the dir');
    assert.equal(st('etc').mtimeMs, 1_000_000_002_000);
    assert.equal(st('.').mtimeMs, 1_000_000_001_000);
    assert.ok(st('bin/sh').isSymbolicLink());
    assert.equal(readlinkSync(join(layer, 'bin/sh')), 'busybox');
    assert.deepEqual([st('bin/sh').uid, st('bin/sh').gid], [1003, 1004]);
    assert.equal(st('bin/sh').mtimeMs, 1_000_000_007_000);
    assert.equal(st('bin/ash').ino, st('bin/busybox').ino, 'hard link');
    assert.equal(st('bin/busybox').nlink, 2);
    assert.ok(st('dev/null').isCharacterDevice());
    assert.equal(st('dev/null').rdev, (1 << 8) | 3);
    assert.equal(st('dev/null').mode & 0o7777, 0o666);
    assert.equal(st('dev/null').mtimeMs, 1_000_000_008_000);
    assert.ok(st('dev/loop0').isBlockDevice());
    assert.equal(st('dev/loop0').rdev, 7 << 8);
    assert.equal(st('dev/loop0').gid, 6);
    assert.ok(st('dev/fifo').isFIFO());
    assert.equal(st('dev/fifo').mode & 0o7777, 0o620);
    assert.equal(st('dev/fifo').uid, 9);
    assert.equal(readFileSync(join(layer, 'implicit/parent/file'), 'utf8'), 'no dir entries before me');
    assert.equal(st('implicit/parent').mode & 0o7777, 0o755);
    assert.deepEqual(warnings, []);
  });
}

test('overlay: whiteouts become 0/0 char devices, opaque dirs get trusted.overlay.opaque=y', async (t) => {
  if (skipUnlessRoot(t)) return;
  const { layer } = sandbox();
  const tar = await buildTar([
    { name: 'etc/', type: 'dir' },
    { name: 'etc/.wh.motd', body: '' },
    { name: 'gone/.wh.deep', body: '' },
    { name: 'var/', type: 'dir' },
    { name: 'var/keep', body: 'k' },
    { name: 'var/.wh..wh..opq', body: '' },
    { name: '.wh.toplevel', body: '' },
  ]);
  await apply(tar, layer, 'overlay');
  for (const p of ['etc/motd', 'gone/deep', 'toplevel']) {
    const st = lstatSync(join(layer, p));
    assert.ok(st.isCharacterDevice(), `${p} is a whiteout`);
    assert.equal(st.rdev, 0);
  }
  assert.ok(!existsSync(join(layer, 'etc/.wh.motd')));
  assert.deepEqual(lgetxattr(join(layer, 'var'), 'trusted.overlay.opaque'), Buffer.from('y'));
  assert.equal(lgetxattr(join(layer, 'etc'), 'trusted.overlay.opaque'), undefined);
  assert.deepEqual(readdirSync(join(layer, 'var')), ['keep']);
});

test('overlay: a layer cannot forge overlayfs xattrs', async (t) => {
  if (skipUnlessRoot(t)) return;
  const { layer } = sandbox();
  const warnings: string[] = [];
  await apply(await buildTar([{ name: 'd/', type: 'dir', xattrs: { 'trusted.overlay.redirect': '/etc', 'trusted.other': 'ok' } }]), layer, 'overlay', { warnings });
  assert.equal(lgetxattr(join(layer, 'd'), 'trusted.overlay.redirect'), undefined);
  assert.deepEqual(lgetxattr(join(layer, 'd'), 'trusted.other'), Buffer.from('ok'));
  assert.match(warnings.join('\n'), /ignored the overlayfs-private xattr trusted.overlay.redirect/);
});

test('copy: whiteouts delete from the lower content, recursively', async () => {
  const { layer } = sandbox();
  await apply(
    await buildTar([
      { name: 'etc/motd', body: 'lower' },
      { name: 'etc/keep', body: 'lower' },
      { name: 'lib/sub/deep/file', body: 'lower' },
      { name: 'lib/sub/link', type: 'symlink', linkname: '/etc' },
    ]),
    layer,
    'copy',
  );
  await apply(
    await buildTar([
      { name: 'etc/.wh.motd', body: '' },
      { name: 'lib/.wh.sub', body: '' },
      { name: 'nothere/.wh.x', body: '' },
      { name: 'etc/new', body: 'upper' },
      { name: 'etc/.wh.new', body: '' },
    ]),
    layer,
    'copy',
  );
  assert.deepEqual(readdirSync(join(layer, 'etc')).sort(), ['keep', 'new'], 'a whiteout never removes what its own layer wrote');
  assert.deepEqual(readdirSync(join(layer, 'lib')), []);
  assert.ok(!existsSync(join(layer, 'nothere')), 'no directory made for a whiteout of nothing');
});

test('copy: an opaque dir loses the lower content only, whatever the entry order', async () => {
  const { layer } = sandbox();
  await apply(
    await buildTar([
      { name: 'a/old1', body: 'lower' },
      { name: 'a/sub/old2', body: 'lower' },
      { name: 'a/sub/same', body: 'lower' },
      { name: 'a/nodirentry/old3', body: 'lower' },
      { name: 'b/old', body: 'lower' },
    ]),
    layer,
    'copy',
  );
  await apply(
    await buildTar([
      { name: 'a/', type: 'dir' },
      { name: 'a/new', body: 'upper' },
      { name: 'a/sub/', type: 'dir' },
      { name: 'a/sub/same', body: 'upper' },
      { name: 'a/nodirentry/new3', body: 'upper' },
      { name: 'a/.wh..wh..opq', body: '' },
      { name: 'a/after', body: 'upper' },
      { name: 'b/.wh..wh..opq', body: '' },
    ]),
    layer,
    'copy',
  );
  assert.deepEqual(files(join(layer, 'a')), ['after=upper', 'new=upper', 'nodirentry/', 'nodirentry/new3=upper', 'sub/', 'sub/same=upper']);
  assert.deepEqual(readdirSync(join(layer, 'b')), []);
});

test('replacing a path of another kind; a dir over a dir merges', async () => {
  const { layer } = sandbox();
  await apply(
    await buildTar([
      { name: 'was-dir/child', body: 'c' },
      { name: 'was-file', body: 'f' },
      { name: 'was-link', type: 'symlink', linkname: 'was-file' },
      { name: 'merge/lower', body: 'l' },
      { name: 'hard', body: 'shared inode' },
      { name: 'hard2', type: 'hardlink', linkname: 'hard' },
    ]),
    layer,
    'copy',
  );
  await apply(
    await buildTar([
      { name: 'was-dir', body: 'now a file' },
      { name: 'was-file/', type: 'dir' },
      { name: 'was-file/x', body: 'x' },
      { name: 'was-link', body: 'not through the link' },
      { name: 'merge/', type: 'dir' },
      { name: 'merge/upper', body: 'u' },
      { name: 'hard', body: 'replaced' },
    ]),
    layer,
    'copy',
  );
  assert.equal(readFileSync(join(layer, 'was-dir'), 'utf8'), 'now a file');
  assert.equal(readFileSync(join(layer, 'was-file/x'), 'utf8'), 'x');
  assert.ok(lstatSync(join(layer, 'was-link')).isFile());
  assert.deepEqual(readdirSync(join(layer, 'merge')).sort(), ['lower', 'upper']);
  assert.equal(readFileSync(join(layer, 'hard'), 'utf8'), 'replaced');
  assert.equal(readFileSync(join(layer, 'hard2'), 'utf8'), 'shared inode', 'the old inode is unlinked, not truncated');
});

test('copy: hard links may point into lower layers; overlay: only into the same layer', async () => {
  const { layer } = sandbox();
  await apply(await buildTar([{ name: 'lower/file', body: 'lower' }]), layer, 'copy');
  await apply(await buildTar([{ name: 'up', type: 'hardlink', linkname: 'lower/file' }]), layer, 'copy');
  assert.equal(lstatSync(join(layer, 'up')).ino, lstatSync(join(layer, 'lower/file')).ino);
  const other = sandbox();
  await assert.rejects(apply(await buildTar([{ name: 'up', type: 'hardlink', linkname: 'lower/file' }]), other.layer, 'overlay'), (err: Error) => {
    assert.match(err.message, /entry "up": hard link to "lower\/file" refused: no such file in this layer/);
    return true;
  });
});

test('symlinks in parent components resolve inside the layer', async () => {
  const { layer } = sandbox();
  await apply(
    await buildTar([
      { name: 'usr/lib/', type: 'dir' },
      { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
      { name: 'lib/libc.so', body: 'libc' },
      { name: 'abs', type: 'symlink', linkname: '/usr' },
      { name: 'abs/lib/libm.so', body: 'libm' },
    ]),
    layer,
    'copy',
  );
  assert.equal(readFileSync(join(layer, 'usr/lib/libc.so'), 'utf8'), 'libc');
  assert.equal(readFileSync(join(layer, 'usr/lib/libm.so'), 'utf8'), 'libm');
});

// ---- malicious layers: each refused or confined, and nothing outside the layer changes ----

async function expectConfined(
  tar: Buffer,
  check: (s: ReturnType<typeof sandbox>, err: unknown) => void,
  format: LayerFormat = 'overlay',
): Promise<void> {
  const s = sandbox();
  const parent = join(s.layer, '..');
  const before = snapshot(s.outside);
  let error: unknown;
  try {
    await apply(tar, s.layer, format);
  } catch (err) {
    error = err;
  }
  check(s, error);
  assert.deepEqual(snapshot(s.outside), before, 'nothing outside the layer changed');
  assert.deepEqual(readdirSync(parent).sort(), ['layer', 'outside'], 'nothing next to the layer');
  assert.equal(readFileSync(s.bait, 'utf8'), 'original');
}

test('malicious: ".." escaping the root is refused', async () => {
  const tar = await malicious.dotDot('outside/pwned');
  await expectConfined(tar, (_s, err) => {
    assert.ok(err instanceof Error, 'refused');
    assert.equal((err as Error & { code?: string }).code, 'InvalidArgument');
    assert.match((err as Error).message, /entry "a\/\.\.\/\.\.\/outside\/pwned" escapes the layer root with "\.\."/);
  });
});

test('malicious: absolute names land inside the layer', async () => {
  const probe = join(base, 'absolute-probe');
  const tar = await malicious.absolute(probe);
  await expectConfined(tar, (s, err) => {
    assert.equal(err, undefined);
    assert.equal(readFileSync(join(s.layer, probe), 'utf8'), 'pwned');
  });
  assert.ok(!existsSync(probe), 'the host path was not written');
});

test('malicious: writing through an absolute symlink pointing outside is confined', async () => {
  const s0 = sandbox();
  const tar = await malicious.symlinkThenWrite(s0.outside);
  await expectConfined(tar, (s, err) => {
    assert.equal(err, undefined);
    assert.equal(readFileSync(join(s.layer, s0.outside, 'pwned'), 'utf8'), 'pwned', 'landed under the layer');
  });
  assert.ok(!existsSync(join(s0.outside, 'pwned')));
});

test('malicious: writing through a relative symlink climbing out is confined', async () => {
  const tar = await malicious.relativeSymlinkThenWrite(6);
  await expectConfined(tar, (s, err) => {
    assert.equal(err, undefined);
    assert.equal(readFileSync(join(s.layer, 'pwned'), 'utf8'), 'pwned', '"../../.." stops at the layer root');
  });
});

test('malicious: a file entry never writes through an existing symlink of the same name', async () => {
  const s = sandbox();
  const tar = await malicious.symlinkThenSameName(s.bait);
  await apply(tar, s.layer, 'overlay');
  assert.equal(readFileSync(s.bait, 'utf8'), 'original');
  assert.ok(lstatSync(join(s.layer, 'passwd')).isFile());
  assert.equal(readFileSync(join(s.layer, 'passwd'), 'utf8'), 'pwned');
});

test('malicious: a hard link to a host file (absolute) is refused', async () => {
  const s0 = sandbox();
  const tar = await malicious.hardlinkOutside(s0.bait);
  await expectConfined(tar, (_s, err) => {
    assert.ok(err instanceof Error, 'refused');
    assert.match((err as Error).message, new RegExp(`entry "link": hard link to "${s0.bait}" refused: no such file in this layer`));
  });
  assert.equal(lstatSync(s0.bait).nlink, 1);
});

test('malicious: a hard link climbing out with ".." is refused', async () => {
  const tar = await malicious.hardlinkOutside('../outside/bait');
  await expectConfined(
    tar,
    (s, err) => {
      assert.ok(err instanceof Error, 'refused');
      assert.match((err as Error).message, /entry "link": hard link target "\.\.\/outside\/bait" escapes the layer root with "\.\."/);
      assert.equal(lstatSync(s.bait).nlink, 1);
    },
    'copy',
  );
});

test('malicious: a hard link through a symlink pointing outside is refused', async () => {
  const s0 = sandbox();
  const tar = await malicious.hardlinkThroughSymlink(s0.outside, 'bait');
  await expectConfined(
    tar,
    (_s, err) => {
      assert.ok(err instanceof Error, 'refused');
      assert.match((err as Error).message, /entry "link": hard link to "evil\/bait" refused: no such file in the tree/);
    },
    'copy',
  );
  assert.equal(lstatSync(s0.bait).nlink, 1);
});

test('malicious: a huge declared size fails cleanly (beyond the free space)', async () => {
  await expectConfined(malicious.hugeDeclaredSize(2 ** 50), (_s, err) => {
    assert.ok(err instanceof Error, 'refused');
    assert.match((err as Error).message, /entry "bomb": declares 1125899906842624 bytes, more than the \d+ bytes free under/);
  });
});

test('malicious: a declared size larger than the stream fails as truncated', async () => {
  await expectConfined(malicious.hugeDeclaredSize(10 * 1024 * 1024), (s, err) => {
    assert.ok(err instanceof Error, 'refused');
    assert.match((err as Error).message, /truncated archive: entry "bomb" \(header at offset 0\) declares 10485760 bytes but the stream ended at offset 4608/);
    assert.equal(readFileSync(join(s.layer, 'bomb')).length, 4096, 'the partial file stays inside the layer for the caller to discard');
  });
});

test('malicious: maxBytes stops a layer whose files add up beyond it', async () => {
  const s = sandbox();
  await assert.rejects(apply(malicious.manyFiles(20, 1000), s.layer, 'overlay', { maxBytes: 10_000 }), /entry "f10": 1000 bytes would bring the layer's content over its limit of 10000 bytes/);
});

test('malicious: a gzip bomb stops at maxBytes of uncompressed tar', async () => {
  const s = sandbox();
  const tar = Buffer.concat([await buildTar([{ name: 'f', body: 'x' }]), Buffer.alloc(50 * 1024 * 1024)]);
  const blob = gzipSync(tar);
  await assert.rejects(
    unpackLayer(Readable.from([blob]), { dir: s.layer, format: 'overlay', maxBytes: 1024 * 1024 }),
    /the uncompressed layer is larger than the limit of 1048576 bytes/,
  );
});

// ---- unpackLayer: decompression + diffID ----

const haveZstd = spawnSync('zstd', ['--version']).status === 0;

for (const compression of ['none', 'gzip', 'zstd'] as const) {
  test(`unpackLayer (${compression}): the diffID covers the whole tar, padding included`, async (t) => {
    if (compression === 'zstd' && !haveZstd) return t.skip('zstd is not installed');
    const s = sandbox();
    const tar = Buffer.concat([await buildTar([{ name: 'hello', body: 'world' }]), Buffer.alloc(8192)]);
    const blob = compress(tar, compression);
    const r = await unpackLayer(Readable.from([blob]), { dir: s.layer, format: 'overlay', where: `layer ${compression}` });
    assert.equal(r.diffId, `sha256:${createHash('sha256').update(tar).digest('hex')}`);
    assert.equal(r.size, tar.length);
    assert.equal(readFileSync(join(s.layer, 'hello'), 'utf8'), 'world');
  });
}

test('unpackLayer: a layer made by GNU tar (posix, xattrs) matches its diffID', async (t) => {
  if (skipUnlessRoot(t)) return;
  const s = sandbox();
  const src = join(s.outside, 'src');
  mkdirSync(join(src, 'd'), { recursive: true });
  writeFileSync(join(src, 'd/f'), 'content');
  lsetxattr(join(src, 'd/f'), 'security.capability', CAP_NET_RAW);
  const tarFile = join(s.outside, 'l.tar');
  const r0 = spawnSync('tar', ['--xattrs', '--xattrs-include=*', '--format=posix', '-C', src, '-cf', tarFile, '.']);
  assert.equal(r0.status, 0, r0.stderr.toString());
  const tar = readFileSync(tarFile);
  const r = await unpackLayer(Readable.from([gzipSync(tar)]), { dir: s.layer, format: 'overlay' });
  assert.equal(r.diffId, `sha256:${createHash('sha256').update(tar).digest('hex')}`);
  assert.deepEqual(lgetxattr(join(s.layer, 'd/f'), 'security.capability'), CAP_NET_RAW);
});

test('unpackLayer: abort stops the extraction', async () => {
  const s = sandbox();
  const { blob } = await buildLayer([{ name: 'a', body: 'a' }], 'gzip');
  const ac = new AbortController();
  const src = new Readable({ read() {} });
  src.push(blob.subarray(0, 10));
  const running = unpackLayer(src, { dir: s.layer, format: 'overlay', signal: ac.signal });
  setTimeout(() => ac.abort(new Error('cancelled by test')), 20);
  await assert.rejects(running, /cancelled by test/);
});

test('device nodes in a user namespace: EPERM says why', async (t) => {
  if (skipUnlessRoot(t)) return;
  if (spawnSync('unshare', ['-Ur', 'true']).status !== 0) return t.skip('cannot create a user namespace here');
  const s = sandbox();
  const tarFile = join(s.outside, 'dev.tar');
  writeFileSync(tarFile, await buildTar([{ name: 'null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 }]));
  const module = new URL('../src/image/unpack/apply-layer.js', import.meta.url).href;
  const script = `
    import { applyLayer } from ${JSON.stringify(module)};
    import { createReadStream } from 'node:fs';
    try { await applyLayer(createReadStream(${JSON.stringify(tarFile)}), { dir: ${JSON.stringify(s.layer)}, format: 'overlay', chown: false }); console.log('no error'); }
    catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message, hint: err.hint })); }`;
  const r = spawnSync('unshare', ['-Ur', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { code: string; message: string; hint: string };
  assert.equal(out.code, 'FailedPrecondition');
  assert.match(out.message, /entry "null": mknod char 1:3: EPERM/);
  assert.match(out.hint, /user namespace/);
});
