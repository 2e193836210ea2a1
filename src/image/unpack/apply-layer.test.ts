// Without root: name normalisation, and format 'copy' extraction with owners left alone.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer, normalizeEntryName } from './apply-layer.js';
import { TarWriter, type TarEntry } from './tar.js';

const base = mkdtempSync(join(tmpdir(), 'berth-apply-'));
// Read-only directories made by the tests would stop a non-root rm.
after(() => {
  spawnSync('chmod', ['-R', 'u+w', base]);
  rmSync(base, { recursive: true, force: true });
});
let n = 0;

function freshDir(): string {
  const d = join(base, `d${++n}`, 'layer');
  mkdirSync(d, { recursive: true });
  return d;
}

async function tar(entries: Array<Partial<TarEntry> & { name: string; body?: string }>): Promise<Buffer> {
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of w) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const body = e.body === undefined ? undefined : Buffer.from(e.body);
    const type = e.type ?? (e.linkname !== undefined ? 'symlink' : 'file');
    await w.add({ mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: 1_600_000_000, ...e, type, size: body?.length ?? 0 }, body);
  }
  await w.finish();
  await done;
  return Buffer.concat(chunks);
}

const apply = (t: Buffer, dir: string) => applyLayer(Readable.from([t]), { dir, format: 'copy', chown: false });

test('normalizeEntryName', () => {
  assert.deepEqual(normalizeEntryName('./a/b/'), ['a', 'b']);
  assert.deepEqual(normalizeEntryName('/etc//passwd'), ['etc', 'passwd']);
  assert.deepEqual(normalizeEntryName('a/../b'), ['b']);
  assert.deepEqual(normalizeEntryName('./'), []);
  assert.throws(() => normalizeEntryName('a/../../b', 'layer L'), /^BerthError: layer L: entry "a\/\.\.\/\.\.\/b" escapes the layer root with "\.\."$/);
  assert.throws(() => normalizeEntryName('..'), /escapes the layer root/);
  assert.throws(() => normalizeEntryName('a\0b'), /NUL byte/);
});

test('files, dirs, symlinks and hard links; dir modes applied at the end', async () => {
  const dir = freshDir();
  const r = await apply(
    await tar([
      { name: 'ro/', type: 'dir', mode: 0o555 },
      { name: 'ro/file', body: 'inside a read-only dir', mode: 0o600 },
      { name: 'ro/link', linkname: 'file' },
      { name: 'hard', type: 'hardlink', linkname: 'ro/file' },
      { name: 'x/y/z', body: 'implicit parents' },
    ]),
    dir,
  );
  assert.deepEqual(r, { entries: 5, bytes: 38 });
  assert.equal(lstatSync(join(dir, 'ro')).mode & 0o777, 0o555);
  assert.equal(lstatSync(join(dir, 'ro')).mtimeMs, 1_600_000_000_000);
  assert.equal(readFileSync(join(dir, 'hard'), 'utf8'), 'inside a read-only dir');
  assert.equal(lstatSync(join(dir, 'ro/file')).mode & 0o777, 0o600);
  assert.ok(lstatSync(join(dir, 'ro/link')).isSymbolicLink());
  assert.equal(readFileSync(join(dir, 'x/y/z'), 'utf8'), 'implicit parents');
});

test('confinement: symlinked parents resolve inside dir; escapes are refused', async () => {
  const dir = freshDir();
  const outside = join(dir, '..', 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'bait'), 'original');
  await apply(
    await tar([
      { name: 'abs', linkname: outside },
      { name: 'abs/new', body: 'confined' },
      { name: 'rel', linkname: '../../../..' },
      { name: 'rel/top', body: 'at the root' },
    ]),
    dir,
  );
  assert.deepEqual(readdirSync(outside), ['bait']);
  assert.equal(readFileSync(join(dir, outside, 'new'), 'utf8'), 'confined');
  assert.equal(readFileSync(join(dir, 'top'), 'utf8'), 'at the root');
  await assert.rejects(apply(await tar([{ name: '../outside/bait', body: 'x' }]), dir), /entry "\.\.\/outside\/bait" escapes the layer root/);
  await assert.rejects(apply(await tar([{ name: 'h', type: 'hardlink', linkname: 'abs/bait' }]), dir), /hard link to "abs\/bait" refused: no such file in the tree/);
  assert.equal(readFileSync(join(outside, 'bait'), 'utf8'), 'original');
});

test('copy-format whiteouts and opaque dirs', async () => {
  const dir = freshDir();
  await apply(await tar([{ name: 'a/old', body: 'o' }, { name: 'a/keep/x', body: 'o' }, { name: 'gone/deep/f', body: 'o' }]), dir);
  await apply(
    await tar([
      { name: 'a/keep/', type: 'dir' },
      { name: 'a/.wh..wh..opq', body: '' },
      { name: 'a/new', body: 'n' },
      { name: '.wh.gone', body: '' },
    ]),
    dir,
  );
  assert.deepEqual(readdirSync(dir).sort(), ['a']);
  assert.deepEqual(readdirSync(join(dir, 'a')).sort(), ['keep', 'new']);
  assert.deepEqual(readdirSync(join(dir, 'a/keep')), []);
});

test('errors name the layer and the entry; the target must be a directory', async () => {
  await assert.rejects(applyLayer(Readable.from([Buffer.alloc(1024)]), { dir: join(base, 'missing'), format: 'copy' }), /cannot extract into .*missing: not a directory/);
  const dir = freshDir();
  await assert.rejects(
    applyLayer(Readable.from([await tar([{ name: 'f', body: 'x' }, { name: 'f/child', body: 'y' }])]), { dir, format: 'copy', chown: false, where: 'layer sha256:1234' }),
    /^BerthError: layer sha256:1234: entry "f\/child": its parent "f" is not a directory$/,
  );
});

test('abort between entries', async () => {
  const dir = freshDir();
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  await assert.rejects(applyLayer(Readable.from([await tar([{ name: 'f', body: 'x' }])]), { dir, format: 'copy', signal: ac.signal }), /stop/);
});
