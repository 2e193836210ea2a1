import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { isBerthError } from '../../errors.js';
import { sha256Digest } from '../digest.js';
import { ContentStore } from '../store/content-store.js';
import { ImageStore } from '../store/image-store.js';
import { MediaType, type ImageManifest } from '../types.js';
import { TarWriter, readTar } from '../unpack/tar.js';
import {
  dockerArchiveManifestDocument,
  layerMediaType,
  loadArchive,
  loadDockerArchive,
  parseDockerArchiveManifest,
  repositoriesDocument,
  saveDockerArchive,
} from './docker-archive.js';
import type { ArchiveStores } from './oci-layout.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-unit-docker-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function storesIn(dir: string): ArchiveStores {
  return { content: new ContentStore(dir), images: new ImageStore(dir) };
}

function invalid(re: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(isBerthError(err, 'InvalidArgument'), `expected InvalidArgument, got ${String(err)}`);
    assert.match((err as Error).message, re);
    return true;
  };
}

async function tarBuffer(entries: Array<{ name: string; body?: string | Buffer; type?: 'file' | 'symlink'; linkname?: string }>): Promise<Buffer> {
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of w as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const e of entries) {
    const body = e.body === undefined ? undefined : Buffer.from(e.body);
    await w.add({ name: e.name, type: e.type ?? 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: body?.length ?? 0, linkname: e.linkname }, body);
  }
  await w.finish();
  await done;
  return Buffer.concat(chunks);
}

/** A small real layer tar (one file) and a config naming it. */
async function legacyArchive(opts: { gzipLayer?: boolean; tags?: string[] | null } = {}): Promise<{ tar: Buffer; diffId: string; config: Buffer; layer: Buffer }> {
  const plain = await tarBuffer([{ name: 'hello.txt', body: 'hello\n' }]);
  const diffId = sha256Digest(plain);
  const layer = opts.gzipLayer ? gzipSync(plain) : plain;
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/hello'] }, rootfs: { type: 'layers', diff_ids: [diffId] } }));
  const configName = `${sha256Digest(config).slice(7)}.json`;
  const id = 'a'.repeat(64);
  // Legacy order: the layer dir comes first, manifest.json last; a second image shares the layer by symlink.
  const tar = await tarBuffer([
    { name: `${id}/VERSION`, body: '1.0' },
    { name: `${id}/json`, body: '{}' },
    { name: `${id}/layer.tar`, body: layer },
    { name: `${'b'.repeat(64)}/layer.tar`, type: 'symlink', linkname: `../${id}/layer.tar` },
    { name: configName, body: config },
    { name: 'manifest.json', body: JSON.stringify([{ Config: configName, RepoTags: opts.tags === undefined ? ['hello:1', 'example.com:5000/x/hello:2'] : opts.tags, Layers: [`${'b'.repeat(64)}/layer.tar`] }]) },
    { name: 'repositories', body: '{}' },
  ]);
  return { tar, diffId, config, layer };
}

test('manifest.json: parsed and validated with the JSON path in messages', () => {
  const ok = parseDockerArchiveManifest(Buffer.from(JSON.stringify([{ Config: './c.json', RepoTags: null, Layers: ['x/layer.tar'] }])));
  assert.deepEqual(ok, [{ Config: 'c.json', RepoTags: null, Layers: ['x/layer.tar'] }]);
  assert.throws(() => parseDockerArchiveManifest(Buffer.from('{}')), invalid(/manifest\.json: expected an array of images, got object/));
  assert.throws(() => parseDockerArchiveManifest(Buffer.from('[]')), invalid(/lists no images/));
  assert.throws(() => parseDockerArchiveManifest(Buffer.from('[{"Layers":[]}]')), invalid(/manifest\.json\[0\]\.Config/));
  assert.throws(() => parseDockerArchiveManifest(Buffer.from('[{"Config":"c","Layers":[1]}]')), invalid(/\[0\]\.Layers: expected an array of paths/));
  assert.throws(() => parseDockerArchiveManifest(Buffer.from('[{"Config":"c","Layers":[],"RepoTags":"a"}]')), invalid(/\[0\]\.RepoTags/));
  assert.throws(() => parseDockerArchiveManifest(Buffer.from('[{"Config":"../c","Layers":[]}]')), invalid(/\[0\]\.Config: "\.\.\/c" has a "\.\." component/));
  assert.throws(() => parseDockerArchiveManifest(Buffer.from('[{"Config":"c","Layers":["a/../../b"]}]')), invalid(/\[0\]\.Layers\[0\]/));
  assert.throws(() => parseDockerArchiveManifest(Buffer.from('[')), invalid(/not valid JSON/));
});

test('documents written: manifest.json, repositories, media types', () => {
  const doc = JSON.parse(dockerArchiveManifestDocument([{ Config: 'blobs/sha256/c', RepoTags: ['a:1'], Layers: ['blobs/sha256/l'] }]).toString());
  assert.deepEqual(doc, [{ Config: 'blobs/sha256/c', RepoTags: ['a:1'], Layers: ['blobs/sha256/l'] }]);
  const repos = JSON.parse(repositoriesDocument([
    { name: 'docker.io/library/busybox:latest', topLayer: 'ab' },
    { name: 'docker.io/library/busybox:1', topLayer: 'ab' },
    { name: 'example.com:5000/x/y:2', topLayer: 'cd' },
  ]).toString());
  assert.deepEqual(repos, { busybox: { latest: 'ab', '1': 'ab' }, 'example.com:5000/x/y': { '2': 'cd' } });
  assert.equal(layerMediaType('none'), MediaType.ociLayer);
  assert.equal(layerMediaType('gzip'), MediaType.ociLayerGzip);
  assert.equal(layerMediaType('zstd'), MediaType.ociLayerZstd);
});

test('load a legacy archive (layer before manifest.json, layer by symlink): records, manifest, diffID', async (t) => {
  const dir = tempDir(t);
  const s = storesIn(dir);
  const { tar, diffId, config } = await legacyArchive();
  const events: string[] = [];
  const result = await loadDockerArchive(Readable.from([tar]), s, { onProgress: (e) => events.push(e.status) });
  assert.deepEqual(result.images.map((i) => i.name), ['docker.io/library/hello:1', 'example.com:5000/x/hello:2']);
  assert.ok(events.includes('Loaded image: hello:1'), events.join(', '));
  const manifest = JSON.parse((await s.content.readBuffer(result.images[0]!.digest)).toString()) as ImageManifest;
  assert.equal(manifest.mediaType, MediaType.ociManifest);
  assert.equal(manifest.config.digest, sha256Digest(config));
  assert.deepEqual(manifest.layers, [{ mediaType: MediaType.ociLayer, digest: diffId, size: manifest.layers[0]!.size }]);
  assert.ok(await s.content.has(diffId));
});

test('load: a gzip layer is stored compressed, checked against its uncompressed diffID; untagged images', async (t) => {
  const dir = tempDir(t);
  const s = storesIn(dir);
  const { tar, diffId, layer } = await legacyArchive({ gzipLayer: true, tags: null });
  const result = await loadDockerArchive(Readable.from([tar]), s);
  assert.equal(result.images.length, 1);
  assert.equal(result.images[0]!.name, undefined);
  const manifest = JSON.parse((await s.content.readBuffer(result.images[0]!.digest)).toString()) as ImageManifest;
  assert.deepEqual(manifest.layers[0], { mediaType: MediaType.ociLayerGzip, digest: sha256Digest(layer), size: layer.length });
  assert.notEqual(manifest.layers[0]!.digest, diffId);
  assert.deepEqual(await s.images.list(), []);
});

test('save decompresses layers, and loads back to the same manifest', async (t) => {
  const dir = tempDir(t);
  const a = storesIn(join(dir, 'a'));
  const { tar, diffId } = await legacyArchive({ gzipLayer: true });
  await loadDockerArchive(Readable.from([tar]), a);
  const file = join(dir, 'out.tar');
  await saveDockerArchive(['hello:1'], a, createWriteStream(file));
  const entries = new Map<string, Buffer>();
  for await (const { entry, body } of readTar(Readable.from([readFileSync(file)]))) {
    const chunks: Buffer[] = [];
    for await (const c of body as AsyncIterable<Buffer>) chunks.push(c);
    entries.set(entry.name, Buffer.concat(chunks));
  }
  const manifest = JSON.parse(entries.get('manifest.json')!.toString()) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
  assert.deepEqual(manifest[0]!.RepoTags, ['hello:1']);
  assert.deepEqual(manifest[0]!.Layers, [`blobs/sha256/${diffId.slice(7)}`]);
  assert.equal(sha256Digest(entries.get(manifest[0]!.Layers[0]!)!), diffId, 'the layer is written uncompressed');
  const index = JSON.parse(entries.get('index.json')!.toString()) as { manifests: Array<{ digest: string; annotations: Record<string, string> }> };
  assert.equal(index.manifests[0]!.annotations['io.containerd.image.name'], 'docker.io/library/hello:1');
  assert.ok(entries.has(`blobs/sha256/${index.manifests[0]!.digest.slice(7)}`));
  assert.deepEqual(JSON.parse(entries.get('repositories')!.toString()), { hello: { '1': diffId.slice(7) } });

  const b = storesIn(join(dir, 'b'));
  const again = await loadArchive(file, b);
  assert.equal(again.images[0]!.digest, index.manifests[0]!.digest, "the archive's own OCI manifest is used");
});

test('load refusals name the entry', async (t) => {
  const dir = tempDir(t);
  const { config, layer } = await legacyArchive();
  const configName = `${sha256Digest(config).slice(7)}.json`;
  const manifest = (c: string, layers: string[]) => JSON.stringify([{ Config: c, RepoTags: ['x:1'], Layers: layers }]);
  let n = 0;
  const load = async (entries: Parameters<typeof tarBuffer>[0]) => loadDockerArchive(Readable.from([await tarBuffer(entries)]), storesIn(join(dir, `s${++n}`)));
  await assert.rejects(load([{ name: configName, body: config }]), invalid(/docker archive: manifest\.json is missing/));
  await assert.rejects(load([{ name: 'manifest.json', body: manifest('nope.json', []) }]), invalid(/manifest\.json\[0\]\.Config: "nope\.json" is not in the archive/));
  await assert.rejects(load([{ name: 'manifest.json', body: manifest(configName, ['l.tar']) }, { name: configName, body: config }]), invalid(/layer "l\.tar" is not in the archive/));
  await assert.rejects(load([{ name: 'manifest.json', body: manifest(configName, []) }, { name: configName, body: config }]), invalid(/0 layers, but config .* lists 1 diff_ids/));
  await assert.rejects(
    load([{ name: 'manifest.json', body: manifest(configName, ['l.tar']) }, { name: configName, body: config }, { name: 'l.tar', body: Buffer.concat([layer, Buffer.alloc(512)]) }]),
    invalid(/layer "l\.tar" has diffID sha256:[0-9a-f]{64}, but config ".*\.json" says sha256:/),
  );
  await assert.rejects(load([{ name: 'a/../../x', body: 'x' }]), invalid(/tar entry: "a\/\.\.\/\.\.\/x" has a "\.\." component/));
  await assert.rejects(load([{ name: 'l.tar', type: 'symlink', linkname: '../outside' }]), invalid(/tar entry "l\.tar": link target "\.\.\/outside" is outside the archive/));
  await assert.rejects(load([{ name: 'manifest.json', body: manifest(configName, ['l.tar']) }, { name: 'l.tar', type: 'symlink', linkname: 'l.tar' }, { name: configName, body: config }]), invalid(/too many levels of links/));
  await assert.rejects(load([{ name: 'manifest.json', body: '[{"Config": 1}]' }]), invalid(/manifest\.json\[0\]\.Config/));
  await assert.rejects(loadDockerArchive(Readable.from([Buffer.alloc(0)]), storesIn(join(dir, 'empty'))), invalid(/empty/));
  await assert.rejects(load([{ name: 'manifest.json', body: manifest(configName, []) }, { name: configName, body: '{"os":"linux"}' }]), invalid(/architecture/));
});

test('load: cancelled by its signal', async (t) => {
  const dir = tempDir(t);
  const { tar } = await legacyArchive();
  const controller = new AbortController();
  controller.abort(new Error('stop'));
  await assert.rejects(loadDockerArchive(Readable.from([tar]), storesIn(dir), { signal: controller.signal }), (e: unknown) => isBerthError(e, 'Unavailable'));
});

test('save refuses unknown names with NotFound', async (t) => {
  const dir = tempDir(t);
  const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
  const out = sink();
  await assert.rejects(saveDockerArchive(['missing:1'], storesIn(dir), out), (e: unknown) => isBerthError(e, 'NotFound'));
  assert.ok(out.destroyed, 'the output is destroyed on failure');
  await assert.rejects(saveDockerArchive([], storesIn(dir), sink()), (e: unknown) => isBerthError(e, 'InvalidArgument'));
});

test('save fails cleanly when a layer blob is missing mid-way; the output is destroyed', async (t) => {
  const dir = tempDir(t);
  const s = storesIn(dir);
  const { tar, diffId } = await legacyArchive();
  await loadDockerArchive(Readable.from([tar]), s);
  await s.content.delete(diffId);
  const chunks: Buffer[] = [];
  const out = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) });
  out.on('error', () => undefined);
  await assert.rejects(saveDockerArchive(['hello:1'], s, out), (e: unknown) => isBerthError(e, 'FailedPrecondition') && /missing from the content store/.test((e as Error).message));
  assert.ok(out.destroyed);
  await assert.rejects(loadArchive(join(dir, 'no-such.tar'), s), (e: unknown) => isBerthError(e, 'NotFound'));
});

test('an image recorded as an index: save picks the platform among the manifests present', async (t) => {
  const dir = tempDir(t);
  const s = storesIn(join(dir, 'a'));
  const { tar } = await legacyArchive();
  const loaded = await loadDockerArchive(Readable.from([tar]), s);
  const manifestDesc = { mediaType: MediaType.ociManifest, digest: loaded.images[0]!.digest, size: (await s.content.info(loaded.images[0]!.digest))!.size };
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      { ...manifestDesc, digest: sha256Digest('arm64 manifest never fetched'), platform: { os: 'linux', architecture: 'arm64' } },
      { ...manifestDesc, platform: { os: 'linux', architecture: 'amd64' } },
    ],
  }));
  await s.content.put({ digest: sha256Digest(index) }, index);
  await s.images.put({ name: 'docker.io/library/multi:1', target: { mediaType: MediaType.ociIndex, digest: sha256Digest(index), size: index.length } });

  const file = join(dir, 'multi.tar');
  await saveDockerArchive(['multi:1'], s, createWriteStream(file), { platform: { os: 'linux', architecture: 'amd64' } });
  const b = storesIn(join(dir, 'b'));
  const back = await loadArchive(file, b);
  assert.deepEqual(back.images, [{ name: 'docker.io/library/multi:1', digest: manifestDesc.digest }]);

  const other = new Writable({ write: (_c, _e, cb) => cb() });
  await assert.rejects(saveDockerArchive(['multi:1'], s, other, { platform: { os: 'linux', architecture: 's390x' } }), /s390x|platform/);

  // As an OCI layout the index is kept as it is, with the absent platform left out.
  const { loadOciLayout, saveOciLayout } = await import('./oci-layout.js');
  const layout = join(dir, 'layout');
  await saveOciLayout(['multi:1'], s, { dir: layout });
  const c = storesIn(join(dir, 'c'));
  assert.deepEqual((await loadOciLayout(layout, c)).images, [{ name: 'docker.io/library/multi:1', digest: sha256Digest(index) }]);
});
