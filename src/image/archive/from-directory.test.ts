import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isBerthError } from '../../errors.js';
import { sha256Digest } from '../digest.js';
import { ContentStore } from '../store/content-store.js';
import { ImageStore } from '../store/image-store.js';
import type { ImageConfig, ImageManifest } from '../types.js';
import { readTar, type TarEntry } from '../unpack/tar.js';
import { directoryTar, imageFromDirectory, splitDevice } from './from-directory.js';
import type { ArchiveStores } from './oci-layout.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-unit-fromdir-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function tree(dir: string): void {
  mkdirSync(join(dir, 'b', 'deep'), { recursive: true });
  mkdirSync(join(dir, 'a'));
  writeFileSync(join(dir, 'a', 'file'), 'content\n');
  chmodSync(join(dir, 'a', 'file'), 0o640);
  utimesSync(join(dir, 'a', 'file'), 1_500_000_000.75, 1_500_000_000.75);
  linkSync(join(dir, 'a', 'file'), join(dir, 'b', 'link'));
  symlinkSync('/etc/passwd', join(dir, 'b', 'abs-symlink'));
  symlinkSync('../a', join(dir, 'b', 'dir-symlink'));
  writeFileSync(join(dir, 'b', 'deep', 'Z'), '');
  writeFileSync(join(dir, 'b', 'deep', 'a'), '');
  execFileSync('mkfifo', [join(dir, 'fifo')]);
}

async function entries(dir: string): Promise<{ list: TarEntry[]; bytes: Buffer }> {
  const chunks: Buffer[] = [];
  for await (const c of directoryTar(dir, { xattrs: false }) as AsyncIterable<Buffer>) chunks.push(c);
  const bytes = Buffer.concat(chunks);
  const list: TarEntry[] = [];
  for await (const { entry, body } of readTar(Readable.from([bytes]))) {
    list.push(entry);
    body.resume();
  }
  return { list, bytes };
}

test('splitDevice: glibc major/minor', () => {
  assert.deepEqual(splitDevice(0x0103n), { major: 1, minor: 3 });
  assert.deepEqual(splitDevice(0x0709n), { major: 7, minor: 9 });
  // major 259, minor 65536 (large numbers spill into the high bits)
  const rdev = (259n & 0xfffn) << 8n | ((259n & ~0xfffn) << 32n) | (65536n & 0xffn) | ((65536n & ~0xffn) << 12n);
  assert.deepEqual(splitDevice(rdev), { major: 259, minor: 65536 });
});

test('directoryTar: bytewise order, kinds, links not followed, hardlinks, whole-second mtimes; deterministic', async (t) => {
  const dir = tempDir(t);
  tree(dir);
  const { list, bytes } = await entries(dir);
  assert.deepEqual(
    list.map((e) => `${e.type} ${e.name}${e.linkname ? ` -> ${e.linkname}` : ''}`),
    [
      'dir a/',
      'file a/file',
      'dir b/',
      'symlink b/abs-symlink -> /etc/passwd',
      'dir b/deep/',
      'file b/deep/Z',
      'file b/deep/a',
      'symlink b/dir-symlink -> ../a',
      'hardlink b/link -> a/file',
      'fifo fifo',
    ],
  );
  const file = list.find((e) => e.name === 'a/file')!;
  assert.equal(file.mode, 0o640);
  assert.equal(file.mtime, 1_500_000_000);
  assert.equal(file.size, 8);
  const again = await entries(dir);
  assert.equal(sha256Digest(again.bytes), sha256Digest(bytes), 'the same tree, the same tar');
});

test('imageFromDirectory: stored image, record and config', async (t) => {
  const dir = tempDir(t);
  const root = join(dir, 'root');
  mkdirSync(root);
  tree(root);
  const s: ArchiveStores = { content: new ContentStore(join(dir, 'store')), images: new ImageStore(join(dir, 'store')) };
  const img = await imageFromDirectory(root, s, { name: 'local/tree:1', config: { Entrypoint: ['/a/file'] }, created: '2021-01-01T00:00:00Z' });
  assert.equal(img.name, 'docker.io/local/tree:1');
  const manifest = JSON.parse((await s.content.readBuffer(img.digest)).toString()) as ImageManifest;
  const config = JSON.parse((await s.content.readBuffer(manifest.config.digest)).toString()) as ImageConfig;
  assert.deepEqual(config.config, { Entrypoint: ['/a/file'] });
  assert.deepEqual(config.rootfs.diff_ids, [img.diffId]);
  assert.match(config.history?.[0]?.created_by ?? '', /image from directory/);
  await assert.rejects(imageFromDirectory(join(dir, 'missing'), s, { name: 'x:1' }), (e: unknown) => isBerthError(e, 'NotFound'));
  await assert.rejects(imageFromDirectory(join(root, 'a', 'file'), s, { name: 'x:1' }), (e: unknown) => isBerthError(e, 'InvalidArgument'));
});

test('directoryTar: an unreadable file fails with the path named', { skip: process.getuid?.() === 0 ? 'root reads everything' : false }, async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'secret'), 'x');
  chmodSync(join(dir, 'secret'), 0);
  await assert.rejects(entries(dir), (e: unknown) => isBerthError(e, 'FailedPrecondition') && /secret/.test((e as Error).message));
});
