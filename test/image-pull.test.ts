// The image service end to end, as root: an image made from a directory, pushed to Debian's
// registry on 127.0.0.1, pulled into a fresh store, unpacked into overlay snapshots, mounted
// and run as a container with berth-oci. Faults (wrong blob, dropped connection, platforms)
// come from the in-process fake registry.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ImageService } from '../src/image/service.js';
import { credentialStoreFrom } from '../src/image/registry/credentials.js';
import { mountAll, unmountAll } from '../src/image/snapshots/mount.js';
import { sha256Digest } from '../src/image/digest.js';
import { hostPlatform } from '../src/image/registry/platform.js';
import { MediaType } from '../src/image/types.js';
import type { ProgressEvent } from '../src/image/progress.js';
import { isBerthError } from '../src/errors.js';
import { startRegistry, registryUnavailable, type StartedRegistry } from './helpers/registry.js';
import { FakeRegistry } from './helpers/fake-registry.js';
import { makeBundle, makeRootfs } from './helpers/bundle.js';
import { Runtime } from './helpers/runtime.js';
import { buildTar } from './helpers/layers.js';
import { mountsUnder } from './helpers/leaks.js';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot ? 'needs root (overlay mounts, device nodes)' : registryUnavailable();

const temps: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `berth-${prefix}-`));
  temps.push(dir);
  return dir;
}

async function openService(root = tempDir('images')): Promise<ImageService> {
  return ImageService.open({ root, snapshotter: 'overlay', credentials: credentialStoreFrom({}) });
}

/** A one-layer image in the fake registry, built by hand so each test controls every byte. */
function publishToFake(fake: FakeRegistry, repo: string, opts: { files: Record<string, string>; platform?: { os: string; architecture: string; variant?: string } }) {
  const tar = buildTarSync(opts.files);
  const layer = gzipSync(tar);
  const config = Buffer.from(
    JSON.stringify({
      architecture: opts.platform?.architecture ?? hostPlatform().architecture,
      os: opts.platform?.os ?? 'linux',
      ...(opts.platform?.variant ? { variant: opts.platform.variant } : {}),
      rootfs: { type: 'layers', diff_ids: [sha256Digest(tar)] },
      config: { Cmd: ['/bin/sh'] },
    }),
  );
  const layerBlob = fake.putBlob(repo, layer);
  const configBlob = fake.putBlob(repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, ...configBlob },
      layers: [{ mediaType: MediaType.ociLayerGzip, ...layerBlob }],
    }),
  );
  return { layer, layerDigest: layerBlob.digest, manifest, manifestDigest: sha256Digest(manifest), tar };
}

const tarCache = new Map<string, Buffer>();
function buildTarSync(files: Record<string, string>): Buffer {
  const key = JSON.stringify(files);
  const cached = tarCache.get(key);
  if (!cached) throw new Error('call prepareTars() first');
  return cached;
}
async function prepareTars(...sets: Array<Record<string, string>>): Promise<void> {
  for (const files of sets) {
    tarCache.set(
      JSON.stringify(files),
      await buildTar(Object.entries(files).map(([name, content]) => ({ name, type: 'file' as const, body: content }))),
    );
  }
}

after(() => {
  const leftover = mountsUnder(temps).map((m) => m.mountPoint);
  for (const dir of temps) {
    for (const m of mountsUnder([dir]).reverse()) {
      try {
        unmountAll(m.mountPoint);
      } catch {
        /* reported by the leak check below */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(leftover, [], 'no mount is left behind');
});

describe('pull and push against Debian\'s registry', { skip }, () => {
  let registry: StartedRegistry;
  let source: ImageService;
  const name = () => `${registry.host}/test/busybox:1`;

  before(async () => {
    registry = await startRegistry();
    source = await openService();
    const dir = tempDir('rootfs');
    makeRootfs(dir);
    writeFileSync(join(dir, 'etc', 'image-marker'), 'made by berth\n');
    await source.fromDirectory(dir, { name: name(), config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] } });
  });
  after(async () => {
    source?.close();
    await registry?.stop();
  });

  test('push, pull into a fresh store, run a container from the snapshot', async () => {
    const pushed = await source.push(name());
    assert.match(pushed.digest, /^sha256:[a-f0-9]{64}$/);

    const images = await openService();
    try {
      const events: ProgressEvent[] = [];
      const result = await images.pull(name(), { onProgress: (e) => events.push(e) });
      assert.equal(result.target.digest, pushed.digest);
      assert.equal(result.changed, true);
      assert.ok(events.some((e) => e.status === 'Pull complete'), JSON.stringify(events));
      assert.ok(events.some((e) => e.status.startsWith('Status: Downloaded newer image')));

      const again = await images.pull(name());
      assert.equal(again.changed, false, 'a second pull changes nothing');

      const image = await images.resolve(name());
      assert.deepEqual(image.view.cmd, ['/bin/sh']);
      assert.deepEqual(await images.resolve(image.id.slice(7, 19)).then((i) => i.id), image.id, 'found by ID prefix');

      const bundle = makeBundle({ args: ['/bin/cat', '/etc/image-marker'] });
      const runtime = new Runtime();
      const { mounts } = await images.prepareRootfs('pull-test', name());
      mountAll(mounts, bundle.rootfs);
      try {
        const r = await runtime.run('image-pull-test', bundle.dir);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, 'made by berth\n');
      } finally {
        await runtime.delete('image-pull-test', { force: true });
        unmountAll(bundle.rootfs);
        await images.releaseRootfs('pull-test');
        await bundle.cleanup();
        await runtime.dispose();
      }

      const removed = await images.remove(name());
      assert.deepEqual(removed.untagged, [name()]);
      assert.ok(removed.gc.removedBlobs.length >= 3, 'manifest, config and layer go');
      assert.equal((await images.ctx.snapshots.list()).length, 0, 'the layer snapshot goes too');
      await assert.rejects(images.resolve(name()), (err) => isBerthError(err, 'NotFound'));
    } finally {
      images.close();
    }
  });

  test('a missing tag is a clear NotFound', async () => {
    const images = await openService();
    try {
      await assert.rejects(images.pull(`${registry.host}/test/busybox:nope`), (err) => {
        assert.ok(isBerthError(err, 'NotFound'), String(err));
        assert.match((err as Error).message, /manifest unknown|not found/i);
        return true;
      });
      assert.equal((await images.ctx.images.list()).length, 0);
    } finally {
      images.close();
    }
  });
});

describe('pull faults (fake registry)', { skip: isRoot ? undefined : 'needs root (overlay snapshots)' }, () => {
  let fake: FakeRegistry;
  // Each test has its own layer bytes: faults are matched by digest and must not leak across tests.
  const good = { 'hello.txt': 'hello\n' };
  const dropped = { 'dropped.txt': 'x'.repeat(64 * 1024) };
  const arm = { 'arch.txt': 'riscv64\n' };
  const lied = { 'lied.txt': 'the config lies about me\n' };

  before(async () => {
    await prepareTars(good, dropped, arm, lied, { 'host.txt': 'host\n' });
    fake = await FakeRegistry.start();
  });
  after(async () => {
    await fake?.stop();
  });

  test('a registry that serves a wrong blob fails the pull and stores nothing', async () => {
    const img = publishToFake(fake, 'bad/blob', { files: good });
    fake.putManifest('bad/blob', MediaType.ociManifest, img.manifest, 'v1');
    fake.inject({ path: img.layerDigest, action: { kind: 'wrong-bytes' }, times: 100 });
    const images = await openService();
    try {
      await assert.rejects(images.pull(`${fake.host}/bad/blob:v1`), (err) => {
        assert.match((err as Error).message, /digest|mismatch/i);
        return true;
      });
      assert.equal(await images.ctx.content.has(img.layerDigest), false, 'the bad layer is not stored');
      assert.equal((await images.ctx.snapshots.list()).length, 0, 'no snapshot committed');
      assert.equal((await images.ctx.images.list()).length, 0, 'no image record');
    } finally {
      images.close();
    }
  });

  test('a dropped download resumes with Range', async () => {
    const img = publishToFake(fake, 'drop/me', { files: dropped });
    fake.putManifest('drop/me', MediaType.ociManifest, img.manifest, 'v1');
    fake.inject({ method: 'GET', path: img.layerDigest, action: { kind: 'drop-after', bytes: Math.floor(img.layer.length / 2) } });
    const images = await openService();
    try {
      await images.pull(`${fake.host}/drop/me:v1`);
      assert.ok(await images.ctx.content.has(img.layerDigest));
      const ranged = fake.requests.filter((r) => r.url.includes(img.layerDigest) && r.headers.range);
      assert.ok(ranged.length >= 1, 'the second request asked for the rest with Range');
    } finally {
      images.close();
    }
  });

  test('an index: the host platform by default, another on request, a clear error when none matches', async () => {
    const host = publishToFake(fake, 'multi/arch', { files: { 'host.txt': 'host\n' } });
    const other = publishToFake(fake, 'multi/arch', { files: arm, platform: { os: 'linux', architecture: 'riscv64' } });
    fake.putManifest('multi/arch', MediaType.ociManifest, host.manifest);
    fake.putManifest('multi/arch', MediaType.ociManifest, other.manifest);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [
          { mediaType: MediaType.ociManifest, digest: host.manifestDigest, size: host.manifest.length, platform: hostPlatform() },
          { mediaType: MediaType.ociManifest, digest: other.manifestDigest, size: other.manifest.length, platform: { os: 'linux', architecture: 'riscv64' } },
        ],
      }),
    );
    fake.putManifest('multi/arch', MediaType.ociIndex, index, 'v1');
    const images = await openService();
    try {
      const mine = await images.pull(`${fake.host}/multi/arch:v1`);
      assert.equal(mine.manifest.digest, host.manifestDigest);
      const riscv = await images.pull(`${fake.host}/multi/arch:v1`, { platform: { os: 'linux', architecture: 'riscv64' } });
      assert.equal(riscv.manifest.digest, other.manifestDigest);
      await assert.rejects(images.pull(`${fake.host}/multi/arch:v1`, { platform: { os: 'linux', architecture: 's390x' } }), (err) => {
        assert.match((err as Error).message, /s390x/);
        assert.match((err as Error).message, /riscv64/, 'the error lists what is available');
        return true;
      });
    } finally {
      images.close();
    }
  });

  test('a layer whose content does not match the config diff_id is refused', async () => {
    const img = publishToFake(fake, 'bad/diffid', { files: lied });
    const lying = Buffer.from(
      JSON.stringify({
        architecture: hostPlatform().architecture,
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [sha256Digest('something else')] },
      }),
    );
    const cfg = fake.putBlob('bad/diffid', lying);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: MediaType.ociConfig, ...cfg },
        layers: [{ mediaType: MediaType.ociLayerGzip, digest: img.layerDigest, size: img.layer.length }],
      }),
    );
    fake.putManifest('bad/diffid', MediaType.ociManifest, manifest, 'v1');
    const images = await openService();
    try {
      await assert.rejects(images.pull(`${fake.host}/bad/diffid:v1`), /image config says/);
      assert.equal((await images.ctx.snapshots.list()).length, 0);
      assert.equal((await images.ctx.images.list()).length, 0);
      const snapshotDirs = join(images.root, 'snapshots', 'overlay', 'committed');
      assert.deepEqual(existsSync(snapshotDirs) ? readdirSync(snapshotDirs) : [], []);
    } finally {
      images.close();
    }
  });

  test('cancelling a pull keeps the partial layer, and the next pull resumes it', async () => {
    const files = { 'big.bin': randomBytes(256 * 1024).toString('base64') };
    await prepareTars(files);
    const img = publishToFake(fake, 'cancel/me', { files });
    fake.putManifest('cancel/me', MediaType.ociManifest, img.manifest, 'v1');
    const half = Math.floor(img.layer.length / 2);
    fake.inject({ method: 'GET', path: img.layerDigest, action: { kind: 'stall-after', bytes: half } });
    const images = await openService();
    try {
      const abort = new AbortController();
      const pulling = images.pull(`${fake.host}/cancel/me:v1`, { signal: abort.signal });
      // Cancel once the registry has sent the half it will send (progress events are
      // throttled, so the partial file is what tells).
      const partial = join(images.ctx.content.root, 'ingest', `sha256-${img.layerDigest.slice(7)}`, 'data');
      const watcher = setInterval(() => {
        if ((statSync(partial, { throwIfNoEntry: false })?.size ?? 0) >= half) abort.abort(new Error('cancelled by the test'));
      }, 10);
      try {
        await assert.rejects(pulling, /cancelled by the test|abort/i);
      } finally {
        clearInterval(watcher);
      }
      assert.equal((await images.ctx.images.list()).length, 0, 'no record for a cancelled pull');
      await images.pull(`${fake.host}/cancel/me:v1`);
      const resumed = fake.requests.filter((r) => r.url.includes(img.layerDigest) && r.headers.range === `bytes=${half}-`);
      assert.equal(resumed.length, 1, 'the second pull asked only for the missing half');
    } finally {
      images.close();
    }
  });

  test('kill -9 in the middle of a pull leaves a store the next pull completes', async () => {
    const files = { 'killed.bin': randomBytes(256 * 1024).toString('base64') };
    await prepareTars(files);
    const img = publishToFake(fake, 'kill/me', { files });
    fake.putManifest('kill/me', MediaType.ociManifest, img.manifest, 'v1');
    fake.inject({ method: 'GET', path: img.layerDigest, action: { kind: 'stall-after', bytes: Math.floor(img.layer.length / 3) } });
    const root = tempDir('killed-pull');
    const script = join(tempDir('killer'), 'pull.mjs');
    writeFileSync(
      script,
      `const { ImageService, credentialStoreFrom } = await import(${JSON.stringify(new URL('../src/image/index.js', import.meta.url).href)});
const images = await ImageService.open({ root: ${JSON.stringify(root)}, snapshotter: 'overlay', credentials: credentialStoreFrom({}) });
await images.pull(${JSON.stringify(`${fake.host}/kill/me:v1`)}, { onProgress: (e) => { if (e.status === 'Downloading') process.stdout.write('downloading\\n'); } });
`,
    );
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((done, fail) => {
      child.stdout.on('data', () => done());
      child.on('exit', (code) => fail(new Error(`the pulling child exited early (${code})`)));
    });
    child.kill('SIGKILL');
    await new Promise((done) => child.on('exit', done));

    const images = await ImageService.open({ root, snapshotter: 'overlay', credentials: credentialStoreFrom({}) });
    try {
      assert.equal((await images.ctx.images.list()).length, 0);
      await images.pull(`${fake.host}/kill/me:v1`);
      const [summary] = await images.list();
      assert.ok(summary, 'the image is there after the second pull');
      for await (const blob of images.ctx.content.list()) {
        assert.equal(sha256Digest(readFileSync(images.ctx.content.path(blob.digest))), blob.digest, 'every blob hashes to its name');
      }
      const gc = await images.prune();
      assert.deepEqual(gc.removedBlobs, [], 'nothing of the image is garbage');
      assert.deepEqual(gc.removedLeases.length, 1, 'the dead pull\'s lease is collected');
    } finally {
      images.close();
    }
  });

  for (const kind of ['overlay', 'copy'] as const) {
    test(`two layers with a whiteout and an opaque dir, ${kind} snapshotter: the rootfs shows the merged view`, async () => {
      const lower = await buildTar([
        { name: 'gone.txt', body: 'deleted by the upper layer\n' },
        { name: 'kept.txt', body: 'kept\n' },
        { name: 'dir/', type: 'dir' },
        { name: 'dir/old.txt', body: 'hidden by the opaque marker\n' },
      ]);
      const upper = await buildTar([
        { name: '.wh.gone.txt', body: '' },
        { name: 'dir/', type: 'dir' },
        { name: 'dir/.wh..wh..opq', body: '' },
        { name: 'dir/new.txt', body: 'new\n' },
      ]);
      const repo = `layers/${kind}`;
      const layers = [lower, upper].map((tar) => ({ tar, blob: fake.putBlob(repo, gzipSync(tar)) }));
      const config = fake.putBlob(
        repo,
        JSON.stringify({ architecture: hostPlatform().architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256Digest(l.tar)) } }),
      );
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: { mediaType: MediaType.dockerConfig, ...config },
        layers: layers.map((l) => ({ mediaType: MediaType.dockerLayerGzip, ...l.blob })),
      });
      fake.putManifest(repo, MediaType.dockerManifest, manifest, 'v1');
      const images = await ImageService.open({ root: tempDir(`layers-${kind}`), snapshotter: kind, credentials: credentialStoreFrom({}) });
      const target = tempDir(`rootfs-${kind}`);
      try {
        await images.pull(`${fake.host}/${repo}:v1`);
        const { mounts } = await images.prepareRootfs('merged', `${fake.host}/${repo}:v1`);
        mountAll(mounts, target);
        try {
          assert.equal(existsSync(join(target, 'gone.txt')), false, 'the whiteout hides the lower file');
          assert.equal(readFileSync(join(target, 'kept.txt'), 'utf8'), 'kept\n');
          assert.deepEqual(readdirSync(join(target, 'dir')), ['new.txt'], 'the opaque dir hides the lower contents');
          writeFileSync(join(target, 'written.txt'), 'by the container\n');
        } finally {
          unmountAll(target);
        }
        await images.releaseRootfs('merged');
        const again = tempDir(`rootfs2-${kind}`);
        const second = await images.prepareRootfs('second', `${fake.host}/${repo}:v1`);
        mountAll(second.mounts, again);
        try {
          assert.equal(existsSync(join(again, 'written.txt')), false, 'a container\'s writes stay in its own snapshot');
        } finally {
          unmountAll(again);
          await images.releaseRootfs('second');
        }
      } finally {
        images.close();
      }
    });
  }
});
