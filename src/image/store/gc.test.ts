import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainIds, sha256Digest } from '../digest.js';
import { MediaType, type Descriptor, type Digest } from '../types.js';
import { ContentStore } from './content-store.js';
import { collectGarbage, type GcSnapshots } from './gc.js';
import { ImageStore } from './image-store.js';
import { LeaseStore } from './leases.js';

function tempRoot(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-gc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function putBlob(cs: ContentStore, data: Buffer | string, mediaType: string): Promise<Descriptor> {
  const buf = Buffer.from(data);
  const digest = sha256Digest(buf);
  await cs.put({ digest, size: buf.length }, buf);
  return { mediaType, digest, size: buf.length };
}

async function putJson(cs: ContentStore, doc: unknown, mediaType: string): Promise<Descriptor> {
  return putBlob(cs, JSON.stringify(doc), mediaType);
}

/** An image: layers and config stored, the manifest stored; returns its descriptors and chain. */
async function makeImage(cs: ContentStore, seed: string): Promise<{ manifest: Descriptor; config: Descriptor; layers: Descriptor[]; chain: Digest[] }> {
  const layers = [await putBlob(cs, `layer-1-${seed}`, MediaType.ociLayerGzip), await putBlob(cs, `layer-2-${seed}`, MediaType.ociLayerGzip)];
  const diffIds = [sha256Digest(`diff-1-${seed}`), sha256Digest(`diff-2-${seed}`)];
  const config = await putJson(cs, { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } }, MediaType.ociConfig);
  const manifest = await putJson(cs, { schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers }, MediaType.ociManifest);
  return { manifest, config, layers, chain: chainIds(diffIds) };
}

class FakeSnapshots implements GcSnapshots {
  readonly items = new Map<string, { kind: 'committed' | 'active'; parent?: string }>();
  readonly removed: string[] = [];

  add(key: string, kind: 'committed' | 'active', parent?: string): void {
    this.items.set(key, { kind, parent });
  }

  chain(keys: string[]): void {
    keys.forEach((k, i) => this.add(k, 'committed', i === 0 ? undefined : keys[i - 1]));
  }

  async list(): Promise<Array<{ key: string; kind: 'committed' | 'active'; parent?: string }>> {
    return [...this.items].map(([key, v]) => ({ key, ...v }));
  }

  async remove(key: string): Promise<void> {
    for (const [k, v] of this.items) if (v.parent === key) throw new Error(`snapshot ${key} still has child ${k}`);
    this.items.delete(key);
    this.removed.push(key);
  }
}

function deadPid(): number {
  return spawnSync('true').pid!;
}

async function has(cs: ContentStore, d: Descriptor | Digest): Promise<boolean> {
  return cs.has(typeof d === 'string' ? d : d.digest);
}

test('gc keeps what images, leases and containers use and removes the rest', async (t) => {
  const root = tempRoot(t);
  const content = new ContentStore(root);
  const images = new ImageStore(root);
  const leases = new LeaseStore(root);
  const snaps = new FakeSnapshots();

  // An index with one fetched platform and one never fetched.
  const a = await makeImage(content, 'a');
  const missingChild = { mediaType: MediaType.ociManifest, digest: sha256Digest('arm64 manifest never fetched'), size: 10, platform: { os: 'linux', architecture: 'arm64' } };
  const index = await putJson(content, { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [a.manifest, missingChild] }, MediaType.ociIndex);
  await images.put({ name: 'docker.io/library/a:1', target: index });
  // A Docker schema-2 image referenced directly by its manifest.
  const b = await makeImage(content, 'b');
  await images.put({ name: 'docker.io/library/b:1', target: { ...b.manifest, mediaType: MediaType.dockerManifest } });
  // Garbage: an untagged image and a stray blob.
  const orphan = await makeImage(content, 'orphan');
  const stray = await putBlob(content, randomBytes(1000), 'application/octet-stream');
  // A pull in progress: a leased blob and snapshot. A dead pull's lease protects nothing.
  const pulling = await putBlob(content, 'layer being pulled', MediaType.ociLayerGzip);
  const lease = await leases.create();
  lease.add({ type: 'content', id: pulling.digest });
  lease.add({ type: 'snapshot', id: 'sha256:' + 'c'.repeat(64) });
  const abandoned = await putBlob(content, 'layer of a killed pull', MediaType.ociLayerGzip);
  mkdirSync(leases.dir, { recursive: true });
  writeFileSync(
    join(leases.dir, 'dead.json'),
    JSON.stringify({ id: 'dead', createdAt: new Date().toISOString(), owner: { pid: deadPid() }, resources: [{ type: 'content', id: abandoned.digest }] }),
  );

  snaps.chain(a.chain);
  snaps.chain(b.chain);
  snaps.chain(orphan.chain);
  snaps.add('sha256:' + 'c'.repeat(64), 'committed');
  // A container's rootfs on top of layers no image references any more.
  snaps.chain(['sha256:' + 'd'.repeat(64), 'sha256:' + 'e'.repeat(64)]);
  snaps.add('container-1', 'active', 'sha256:' + 'e'.repeat(64));

  const before = [...snaps.items.keys()];
  const dry = await collectGarbage({ content, images, leases, snapshots: snaps, dryRun: true });
  assert.deepEqual([...snaps.items.keys()], before, 'dry run removes nothing');
  assert.equal(await has(content, stray), true);
  assert.ok(existsSync(join(leases.dir, 'dead.json')));

  const result = await collectGarbage({ content, images, leases, snapshots: snaps });
  assert.deepEqual(result.warnings, []);
  assert.deepEqual(dry.removedBlobs.sort(), result.removedBlobs.sort());
  assert.deepEqual(dry.removedSnapshots, result.removedSnapshots);
  const expectedGone = [orphan.manifest, orphan.config, ...orphan.layers, stray, abandoned];
  assert.deepEqual(result.removedBlobs.sort(), expectedGone.map((d) => d.digest).sort());
  assert.equal(result.reclaimedBytes, expectedGone.reduce((n, d) => n + d.size, 0));
  for (const d of expectedGone) assert.equal(await has(content, d), false);
  for (const d of [index, a.manifest, a.config, ...a.layers, b.manifest, b.config, ...b.layers, pulling]) assert.equal(await has(content, d), true, d.digest);
  assert.deepEqual(result.removedSnapshots, [orphan.chain[1], orphan.chain[0]], 'children first');
  assert.deepEqual(result.removedLeases, ['dead']);
  assert.ok(!existsSync(join(leases.dir, 'dead.json')));
  assert.ok(snaps.items.has('container-1') && snaps.items.has('sha256:' + 'e'.repeat(64)) && snaps.items.has('sha256:' + 'd'.repeat(64)));

  await lease.release();
  const second = await collectGarbage({ content, images, leases, snapshots: snaps });
  assert.deepEqual(second.removedBlobs, [pulling.digest]);
  assert.deepEqual(second.removedSnapshots, ['sha256:' + 'c'.repeat(64)]);
});

test('gc survives corrupt documents and reports them', async (t) => {
  const root = tempRoot(t);
  const content = new ContentStore(root);
  const images = new ImageStore(root);
  const leases = new LeaseStore(root);
  const notJson = await putBlob(content, 'this is no manifest {', MediaType.ociManifest);
  await images.put({ name: 'docker.io/library/broken:1', target: notJson });
  const noLayers = await putJson(content, { schemaVersion: 2, config: 'nope', layers: 'nope' }, MediaType.ociManifest);
  await images.put({ name: 'docker.io/library/odd:1', target: noLayers });
  const badIndex = await putJson(content, { schemaVersion: 2, manifests: [42, { digest: 'md5:abc' }] }, MediaType.ociIndex);
  await images.put({ name: 'docker.io/library/idx:1', target: badIndex });
  await images.put({ name: 'docker.io/library/gone:1', target: { mediaType: MediaType.ociManifest, digest: sha256Digest('never stored'), size: 1 } });
  // A blob whose bytes no longer match its name.
  const tampered = await putJson(content, { schemaVersion: 2, layers: [] }, MediaType.ociManifest);
  await images.put({ name: 'docker.io/library/tampered:1', target: tampered });
  writeFileSync(content.path(tampered.digest), 'garbage');
  const stray = await putBlob(content, 'stray', 'application/octet-stream');

  const result = await collectGarbage({ content, images, leases });
  const w = result.warnings.join('\n');
  assert.match(w, /broken:1: blob sha256:[0-9a-f]+ \(application\/vnd\.oci\.image\.manifest\.v1\+json\) skipped: Unexpected token/);
  assert.match(w, /odd:1: blob .*: manifest without a config descriptor/);
  assert.match(w, /odd:1: blob .*: manifest without a layers array/);
  assert.match(w, /idx:1: blob .*: manifests\[0\] is not a descriptor/);
  assert.match(w, /"md5:abc" is not a digest/);
  assert.match(w, /gone:1: its target sha256:[0-9a-f]+ is not in the content store/);
  assert.match(w, /tampered:1: blob .* skipped: .*corrupt/);
  assert.deepEqual(result.removedBlobs, [stray.digest]);
  assert.equal(await content.has(notJson.digest), true, 'a referenced blob stays even when unreadable');
});

test('an unreadable image record stops the sweep', async (t) => {
  const root = tempRoot(t);
  const content = new ContentStore(root);
  const images = new ImageStore(root);
  const leases = new LeaseStore(root);
  const stray = await putBlob(content, 'maybe referenced by the broken record', 'application/octet-stream');
  mkdirSync(images.dir, { recursive: true });
  writeFileSync(join(images.dir, 'docker.io%2Flibrary%2Fx%3A1.json'), '{"name":');
  const snaps = new FakeSnapshots();
  snaps.add('sha256:' + 'f'.repeat(64), 'committed');
  const result = await collectGarbage({ content, images, leases, snapshots: snaps });
  assert.deepEqual(result.removedBlobs, []);
  assert.deepEqual(result.removedSnapshots, []);
  assert.equal(await content.has(stray.digest), true);
  assert.match(result.warnings.join('\n'), /docker\.io%2Flibrary%2Fx%3A1\.json is unreadable/);
  assert.match(result.warnings.join('\n'), /no blobs or snapshots removed/);
});

test('gc removes stale ingest entries and dead temp files, keeps fresh or locked ones', async (t) => {
  const root = tempRoot(t);
  const content = new ContentStore(root);
  const images = new ImageStore(root);
  const leases = new LeaseStore(root);
  const ingest = join(root, 'ingest');
  const old = new Date(Date.now() - 48 * 3600 * 1000);
  const entry = (hexChar: string, lockPid?: number): string => {
    const dir = join(ingest, `sha256-${hexChar.repeat(64)}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'data'), 'x'.repeat(100));
    if (lockPid !== undefined) writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: lockPid, nonce: 'n' }));
    return dir;
  };
  const stale = entry('1');
  const staleDeadLock = entry('2', deadPid());
  const liveLock = entry('3', process.ppid);
  const fresh = entry('4');
  for (const dir of [stale, staleDeadLock, liveLock]) {
    utimesSync(join(dir, 'data'), old, old);
    utimesSync(dir, old, old);
  }
  mkdirSync(images.dir, { recursive: true });
  const deadTemp = join(images.dir, `.docker.io%2Fx%3A1.json.${deadPid()}.tmp`);
  const liveTemp = join(images.dir, `.docker.io%2Fy%3A1.json.${process.pid}.tmp`);
  writeFileSync(deadTemp, '{');
  writeFileSync(liveTemp, '{');

  const result = await collectGarbage({ content, images, leases });
  assert.deepEqual(result.removedIngests.sort(), [`sha256-${'1'.repeat(64)}`, `sha256-${'2'.repeat(64)}`]);
  assert.equal(result.reclaimedBytes, 200);
  assert.ok(!existsSync(stale) && !existsSync(staleDeadLock));
  assert.ok(existsSync(liveLock) && existsSync(fresh));
  assert.ok(!existsSync(deadTemp));
  assert.ok(existsSync(liveTemp));

  const all = await collectGarbage({ content, images, leases, ingestMaxAgeMs: 0, now: new Date(Date.now() + 1000) });
  assert.deepEqual(all.removedIngests, [`sha256-${'4'.repeat(64)}`]);
});
