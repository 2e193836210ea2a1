import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isBerthError } from '../../errors.js';
import { sha256Digest } from '../digest.js';
import { ContentStore } from '../store/content-store.js';
import { ImageStore } from '../store/image-store.js';
import { LeaseStore } from '../store/leases.js';
import { MediaType, type Descriptor, type ImageManifest } from '../types.js';
import { TarWriter, readTar } from '../unpack/tar.js';
import {
  archivePath,
  blobPath,
  digestOfBlobPath,
  layoutEntryName,
  loadOciLayout,
  nameAnnotations,
  parseOciLayoutDocument,
  saveOciLayout,
  type ArchiveStores,
} from './oci-layout.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-unit-oci-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function storesIn(dir: string): ArchiveStores {
  return { content: new ContentStore(dir), images: new ImageStore(dir), leases: new LeaseStore(dir) };
}

function invalid(re: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(isBerthError(err, 'InvalidArgument'), `expected InvalidArgument, got ${String(err)}`);
    assert.match((err as Error).message, re);
    return true;
  };
}

/** A one-layer image (a layer that is not a real tar is fine for the layout code). */
async function putImage(s: ArchiveStores, name?: string): Promise<Descriptor> {
  const layer = Buffer.from('layer bytes');
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256Digest(layer)] } }));
  await s.content.put({ digest: sha256Digest(layer) }, layer);
  await s.content.put({ digest: sha256Digest(config) }, config);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha256Digest(config), size: config.length },
    layers: [{ mediaType: MediaType.ociLayer, digest: sha256Digest(layer), size: layer.length }],
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  await s.content.put({ digest: sha256Digest(bytes) }, bytes);
  const target = { mediaType: MediaType.ociManifest, digest: sha256Digest(bytes), size: bytes.length };
  if (name) await s.images.put({ name, target });
  return target;
}

async function tarBuffer(entries: Array<{ name: string; body: string | Buffer }>): Promise<Buffer> {
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of w as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const e of entries) {
    const body = Buffer.from(e.body);
    await w.add({ name: e.name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: body.length }, body);
  }
  await w.finish();
  await done;
  return Buffer.concat(chunks);
}

test('archivePath: canonical names; ".." refused', () => {
  assert.equal(archivePath('./a//b/./c', 'x'), 'a/b/c');
  assert.equal(archivePath('/manifest.json', 'x'), 'manifest.json');
  assert.throws(() => archivePath('a/../../b', 'tar entry'), invalid(/tar entry: "a\/\.\.\/\.\.\/b" has a "\.\." component/));
});

test('blob paths and digests', () => {
  const d = sha256Digest('x');
  assert.equal(blobPath(d), `blobs/sha256/${d.slice(7)}`);
  assert.equal(digestOfBlobPath(blobPath(d)), d);
  assert.equal(digestOfBlobPath('blobs/sha256/abc'), undefined);
  assert.equal(digestOfBlobPath('blobs/md5/' + 'a'.repeat(32)), undefined);
  assert.equal(digestOfBlobPath('x/layer.tar'), undefined);
});

test('oci-layout document', () => {
  assert.equal(parseOciLayoutDocument(Buffer.from('{"imageLayoutVersion":"1.0.0"}'), 'l'), '1.0.0');
  assert.throws(() => parseOciLayoutDocument(Buffer.from('{}'), 'l'), invalid(/imageLayoutVersion is missing/));
  assert.throws(() => parseOciLayoutDocument(Buffer.from('{"imageLayoutVersion":"2.0.0"}'), 'l'), invalid(/not supported/));
  assert.throws(() => parseOciLayoutDocument(Buffer.from('nope'), 'l'), invalid(/not valid JSON/));
});

test('names: annotations written and read', () => {
  assert.deepEqual(nameAnnotations('busybox'), {
    'io.containerd.image.name': 'docker.io/library/busybox:latest',
    'org.opencontainers.image.ref.name': 'latest',
  });
  const d = (annotations?: Record<string, string>): Descriptor => ({ mediaType: MediaType.ociManifest, digest: sha256Digest('m'), size: 1, annotations });
  assert.equal(layoutEntryName(d({ 'io.containerd.image.name': 'docker.io/library/a:1', 'org.opencontainers.image.ref.name': '1' }), undefined, 'w'), 'docker.io/library/a:1');
  assert.equal(layoutEntryName(d({ 'org.opencontainers.image.ref.name': 'example.com/x/y:2' }), undefined, 'w'), 'example.com/x/y:2');
  assert.equal(layoutEntryName(d({ 'org.opencontainers.image.ref.name': 'v1' }), undefined, 'w'), undefined, 'a tag alone names nothing');
  assert.equal(layoutEntryName(d({ 'org.opencontainers.image.ref.name': 'v1' }), 'me/app', 'w'), 'docker.io/me/app:v1');
  assert.equal(layoutEntryName(d(), 'me/app', 'w'), 'docker.io/me/app:latest');
  assert.equal(layoutEntryName(d(), undefined, 'w'), undefined);
  assert.throws(() => layoutEntryName(d({ 'io.containerd.image.name': 'Bad Name' }), undefined, 'idx'), invalid(/idx: annotation io\.containerd\.image\.name: invalid reference/));
});

test('save and load a layout directory, then a tar; names kept, blobs verified', async (t) => {
  const dir = tempDir(t);
  const a = storesIn(join(dir, 'a'));
  const target = await putImage(a, 'docker.io/library/one:1');
  const layout = join(dir, 'layout');
  await saveOciLayout(['one:1'], a, { dir: layout });
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  assert.equal(index.manifests.length, 1);
  assert.equal(index.manifests[0]!.digest, target.digest);

  // Saving a second name into the same directory adds it; saving the first again replaces it.
  await a.images.put({ name: 'docker.io/library/two:2', target });
  await saveOciLayout(['two:2', 'one:1'], a, { dir: layout });
  const index2 = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  assert.deepEqual(index2.manifests.map((m) => m.annotations?.['io.containerd.image.name']).sort(), ['docker.io/library/one:1', 'docker.io/library/two:2']);

  const b = storesIn(join(dir, 'b'));
  const loaded = await loadOciLayout(layout, b);
  assert.deepEqual(loaded.images.map((i) => i.name).sort(), ['docker.io/library/one:1', 'docker.io/library/two:2']);
  assert.equal((await b.images.get('docker.io/library/two:2'))?.target.digest, target.digest);
  assert.deepEqual((await b.leases!.list()).length, 0, 'the load lease is released');

  const tarFile = join(dir, 'layout.tar');
  await saveOciLayout(['one:1'], a, { tar: createWriteStream(tarFile) });
  const names: string[] = [];
  for await (const { entry, body } of readTar(Readable.from([readFileSync(tarFile)]))) {
    names.push(entry.name);
    body.resume();
  }
  assert.ok(names.includes('oci-layout') && names.includes('index.json') && names.includes(blobPath(target.digest)), names.join(' '));
  const c = storesIn(join(dir, 'c'));
  assert.deepEqual((await loadOciLayout(tarFile, c)).images, [{ name: 'docker.io/library/one:1', digest: target.digest }]);
});

test('layout directory refusals: not a layout, a missing blob, a corrupt blob', async (t) => {
  const dir = tempDir(t);
  const a = storesIn(join(dir, 'a'));
  const target = await putImage(a, 'docker.io/library/one:1');
  const layout = join(dir, 'layout');
  await saveOciLayout(['one:1'], a, { dir: layout });
  const manifest = JSON.parse(readFileSync(join(layout, blobPath(target.digest)), 'utf8')) as ImageManifest;
  const layerFile = join(layout, blobPath(manifest.layers[0]!.digest));
  const layer = readFileSync(layerFile);

  writeFileSync(layerFile, Buffer.from('layer bytez'));
  await assert.rejects(loadOciLayout(layout, storesIn(join(dir, 'b'))), invalid(/digest mismatch/));
  rmSync(layerFile);
  await assert.rejects(loadOciLayout(layout, storesIn(join(dir, 'c'))), invalid(/layer sha256:[0-9a-f]+ \(layers\[0\] of manifest sha256:[0-9a-f]+\) is not in the layout/));
  writeFileSync(layerFile, layer);

  const empty = join(dir, 'empty');
  mkdirSync(empty);
  await assert.rejects(loadOciLayout(empty, storesIn(join(dir, 'd'))), invalid(/oci-layout file is missing/));
  await assert.rejects(saveOciLayout(['one:1'], a, { dir: join(dir, 'a') }), (e: unknown) => isBerthError(e, 'FailedPrecondition'));
  await assert.rejects(loadOciLayout(join(dir, 'nothing-here'), storesIn(join(dir, 'e'))), (e: unknown) => isBerthError(e, 'NotFound'));
});

test('oci archive stream: any entry order, untagged entries, tag-only names with a caller name', async (t) => {
  const dir = tempDir(t);
  const a = storesIn(join(dir, 'a'));
  const target = await putImage(a);
  const manifest = await a.content.readBuffer(target.digest);
  const m = JSON.parse(manifest.toString()) as ImageManifest;
  const blobs = [target, m.config, m.layers[0]!];
  const index = (annotations?: Record<string, string>) => JSON.stringify({ schemaVersion: 2, manifests: [{ ...target, annotations }] });
  const entries = async (idx: string) =>
    tarBuffer([
      { name: 'index.json', body: idx },
      ...(await Promise.all(blobs.map(async (d) => ({ name: blobPath(d.digest), body: await a.content.readBuffer(d.digest) })))),
      { name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' },
    ]);

  const untagged = await loadOciLayout(Readable.from([await entries(index())]), storesIn(join(dir, 'b')));
  assert.deepEqual(untagged.images, [{ digest: target.digest }]);
  const named = await loadOciLayout(Readable.from([await entries(index({ 'org.opencontainers.image.ref.name': 'v2' }))]), storesIn(join(dir, 'c')), { name: 'me/app' });
  assert.deepEqual(named.images, [{ name: 'docker.io/me/app:v2', digest: target.digest }]);

  const noLayout = await tarBuffer([{ name: 'index.json', body: index() }]);
  await assert.rejects(loadOciLayout(Readable.from([noLayout]), storesIn(join(dir, 'd'))), invalid(/oci-layout file is missing/));
});
