import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { isBerthError } from '../../errors.js';
import { sha256Digest } from '../digest.js';
import { ContentStore } from '../store/content-store.js';
import { ImageStore } from '../store/image-store.js';
import { MediaType, type ImageConfig, type ImageManifest } from '../types.js';
import { TarWriter } from '../unpack/tar.js';
import { imageConfigDocument, imageName, importRootfsTarball, mediaTypes, normalisePort, resolvePlatform, validateChanges } from './import-rootfs.js';
import type { ArchiveStores } from './oci-layout.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-unit-import-'));
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

async function rootfsTar(): Promise<Buffer> {
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of w as AsyncIterable<Buffer>) chunks.push(c);
  })();
  await w.add({ name: 'bin/', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 });
  await w.add({ name: 'bin/hello', type: 'file', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 6 }, Buffer.from('hello\n'));
  await w.finish();
  await done;
  return Buffer.concat(chunks);
}

test('changes: validated, ports normalised', () => {
  assert.deepEqual(validateChanges({ Cmd: ['a'], Entrypoint: ['b'], Env: ['A=1', 'B='], WorkingDir: '/w', User: '1:2', ExposedPorts: { '80': {}, '53/udp': {} }, Labels: { k: 'v' } }, 'c'), {
    Cmd: ['a'],
    Entrypoint: ['b'],
    Env: ['A=1', 'B='],
    WorkingDir: '/w',
    User: '1:2',
    ExposedPorts: { '80/tcp': {}, '53/udp': {} },
    Labels: { k: 'v' },
  });
  assert.deepEqual(validateChanges({}, 'c'), {});
  assert.throws(() => validateChanges({ Env: ['=1'] }, 'changes'), invalid(/changes\.Env\[0\]: "=1" is not NAME=value/));
  assert.throws(() => validateChanges({ WorkingDir: 'rel' }, 'changes'), invalid(/WorkingDir: "rel" is not an absolute path/));
  assert.throws(() => validateChanges({ Cmd: 'sh' as unknown as string[] }, 'changes'), invalid(/changes\.Cmd/));
  assert.equal(normalisePort('8080', 'p'), '8080/tcp');
  assert.equal(normalisePort('9/sctp', 'p'), '9/sctp');
  for (const bad of ['0', '65536', '80/icmp', 'http', '']) assert.throws(() => normalisePort(bad, 'p'), invalid(/is not a port/));
});

test('config document: platform, history, diff_ids; empty config omitted', () => {
  const doc = imageConfigDocument({
    diffIds: [sha256Digest('x')],
    platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
    created: '2024-01-01T00:00:00.000Z',
    history: [{ created: '2024-01-01T00:00:00.000Z', comment: 'c' }],
  });
  assert.deepEqual(doc, {
    architecture: 'arm',
    created: '2024-01-01T00:00:00.000Z',
    history: [{ created: '2024-01-01T00:00:00.000Z', comment: 'c' }],
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [sha256Digest('x')] },
    variant: 'v7',
  });
  assert.equal(resolvePlatform('linux/arm64').architecture, 'arm64');
  assert.equal(resolvePlatform(undefined).os, 'linux');
  assert.equal(mediaTypes('docker').manifest, MediaType.dockerManifest);
  assert.equal(mediaTypes('oci').layerGzip, MediaType.ociLayerGzip);
  assert.equal(imageName('busybox', 'n'), 'docker.io/library/busybox:latest');
  assert.throws(() => imageName(`busybox@${sha256Digest('x')}`, 'name'), invalid(/names a digest/));
  assert.throws(() => imageName('Bad', 'name'), invalid(/name: invalid reference/));
});

test('import: one gzip layer, diffID of the plain tar, record, reproducible with a fixed time', async (t) => {
  const dir = tempDir(t);
  const s = storesIn(dir);
  const tar = await rootfsTar();
  const opts = { name: 'hello:1', changes: { Cmd: ['/bin/hello'] }, platform: 'linux/amd64', created: '2020-02-02T00:00:00Z' };
  const a = await importRootfsTarball(Readable.from([tar]), s, opts);
  const b = await importRootfsTarball(Readable.from([gzipSync(tar)]), s, opts);
  assert.equal(a.digest, b.digest);
  assert.equal(a.diffId, sha256Digest(tar));
  assert.equal(a.name, 'docker.io/library/hello:1');
  const manifest = JSON.parse((await s.content.readBuffer(a.digest)).toString()) as ImageManifest;
  assert.equal(manifest.layers[0]!.mediaType, MediaType.ociLayerGzip);
  const layer = await s.content.readBuffer(manifest.layers[0]!.digest);
  assert.deepEqual(layer.subarray(0, 2), Buffer.from([0x1f, 0x8b]));
  const config = JSON.parse((await s.content.readBuffer(manifest.config.digest)).toString()) as ImageConfig;
  assert.deepEqual(config.config, { Cmd: ['/bin/hello'] });
  assert.equal(config.created, '2020-02-02T00:00:00.000Z');
  assert.equal(config.history?.[0]?.comment, 'Imported from tarball');
  assert.equal((await s.images.get('docker.io/library/hello:1'))?.target.digest, a.digest);

  const docker = await importRootfsTarball(Readable.from([tar]), s, { format: 'docker' });
  const dm = JSON.parse((await s.content.readBuffer(docker.digest)).toString()) as ImageManifest;
  assert.equal(dm.mediaType, MediaType.dockerManifest);
  assert.equal(dm.config.mediaType, MediaType.dockerConfig);
  assert.equal(docker.name, undefined);
});

test('import refusals: not a tar, a truncated tar, a bad name (before any work)', async (t) => {
  const dir = tempDir(t);
  const s = storesIn(dir);
  const tar = await rootfsTar();
  await assert.rejects(importRootfsTarball(Readable.from([Buffer.alloc(2048, 'z')]), s), invalid(/import: tarball/));
  await assert.rejects(importRootfsTarball(Readable.from([tar.subarray(0, 700)]), s), invalid(/import: tarball/));
  await assert.rejects(importRootfsTarball(Readable.from([tar]), s, { name: 'UPPER' }), invalid(/import: name/));
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(importRootfsTarball(Readable.from([tar]), s, { signal: controller.signal }));
  assert.deepEqual(readdirSync(tmpdir()).filter((n) => n.startsWith('berth-layer-')), [], 'no staging dir left');
});
