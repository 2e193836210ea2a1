// RegistryClient against a real registry (docker/distribution 2.8 on 127.0.0.1: anonymous,
// htpasswd and token auth) with an image built here, and against the fault-injecting fake
// for what a healthy registry never does (drops, wrong bytes, redirects, 429).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { isBerthError } from '../src/errors.js';
import type { Reference } from '../src/image/reference.js';
import type { Credential, CredentialStore } from '../src/image/registry/credentials.js';
import { RegistryClient, type RegistryClientOptions } from '../src/image/registry/client.js';
import { parsePlatform, selectManifest } from '../src/image/registry/platform.js';
import { MediaType, type Descriptor, type ImageIndex, type ImageManifest } from '../src/image/types.js';
import { FakeRegistry } from './helpers/fake-registry.js';
import { registryUnavailable, startRegistry, type StartedRegistry } from './helpers/registry.js';

const skip = registryUnavailable();
const started: StartedRegistry[] = [];
const fakes: FakeRegistry[] = [];
const clients: RegistryClient[] = [];
const work = mkdtempSync(join(tmpdir(), 'berth-regtest-'));

after(async () => {
  for (const c of clients) c.close();
  for (const r of started) await r.stop();
  for (const f of fakes) await f.stop();
  rmSync(work, { recursive: true, force: true });
});

function sha256(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function client(opts: RegistryClientOptions = {}): RegistryClient {
  const c = new RegistryClient({ retryDelayMs: 5, maxRetryDelayMs: 100, ...opts });
  clients.push(c);
  return c;
}

function creds(map: Record<string, Credential>): CredentialStore {
  return { get: (d) => map[d] };
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

interface Blob {
  desc: Descriptor;
  bytes: Buffer;
}

interface TestImage {
  layer: Blob;
  configs: Blob[];
  manifests: Blob[];
  index: Blob;
}

function blob(mediaType: string, bytes: Buffer): Blob {
  return { desc: { mediaType, digest: sha256(bytes), size: bytes.length }, bytes };
}

/** A one-layer image for linux/amd64 and linux/arm64/v8 (same layer), made with tar(1). */
function buildImage(): TestImage {
  const root = join(work, 'rootfs');
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc', 'hello.txt'), 'hello from berth\n');
  writeFileSync(join(root, 'random.bin'), randomBytes(200_000));
  const tar = execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', root, '-cf', '-', '.'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const layer = blob(MediaType.ociLayerGzip, gzipSync(tar));
  const platforms = [parsePlatform('linux/amd64'), parsePlatform('linux/arm64/v8')];
  const configs = platforms.map((p) =>
    blob(
      MediaType.ociConfig,
      Buffer.from(JSON.stringify({ architecture: p.architecture, os: p.os, variant: p.variant, config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [sha256(tar)] } })),
    ),
  );
  const manifests = configs.map((c) => {
    const m: ImageManifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: c.desc, layers: [layer.desc] };
    return blob(MediaType.ociManifest, Buffer.from(JSON.stringify(m)));
  });
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: manifests.map((m, i) => ({ ...m.desc, platform: platforms[i] })),
  };
  return { layer, configs, manifests, index: blob(MediaType.ociIndex, Buffer.from(JSON.stringify(index))) };
}

let image: TestImage;
before(() => {
  image = buildImage();
});

/** Pushes the image: blobs, both manifests by digest, then the index under `tag`. */
async function pushImage(c: RegistryClient, ref: Reference): Promise<string> {
  for (const b of [image.layer, ...image.configs]) {
    await c.pushBlob(ref, b.desc, () => Readable.from([b.bytes]));
  }
  for (const m of image.manifests) await c.putManifest({ ...ref, tag: undefined, digest: m.desc.digest }, m.desc.mediaType, m.bytes);
  return c.putManifest(ref, image.index.desc.mediaType, image.index.bytes);
}

test('plain registry: push an image and an index, pull by tag and digest, select platforms', { skip }, async () => {
  const reg = await startRegistry();
  started.push(reg);
  const c = client();
  const ref: Reference = { domain: reg.host, path: 'berth/test-image', tag: 'v1' };
  assert.equal(await pushImage(c, ref), image.index.desc.digest);

  const top = await c.getManifest(ref);
  assert.equal(top.descriptor.mediaType, MediaType.ociIndex);
  assert.equal(top.descriptor.digest, image.index.desc.digest);
  assert.deepEqual(top.bytes, image.index.bytes);
  assert.equal(top.endpoint.baseUrl, `http://${reg.host}`);

  const index = JSON.parse(top.bytes.toString()) as ImageIndex;
  const arm = selectManifest(index, parsePlatform('linux/arm64'), 'test image');
  assert.equal(arm.digest, image.manifests[1]!.desc.digest);
  const amd = selectManifest(index, parsePlatform('linux/amd64'), 'test image');
  assert.equal(amd.digest, image.manifests[0]!.desc.digest);
  assert.throws(() => selectManifest(index, parsePlatform('linux/s390x'), 'test image'), /no image for platform linux\/s390x; the index has linux\/amd64, linux\/arm64\/v8/);

  const child = await c.getManifest({ ...ref, digest: arm.digest });
  assert.equal(child.descriptor.mediaType, MediaType.ociManifest);
  assert.deepEqual(child.bytes, image.manifests[1]!.bytes);
  const manifest = JSON.parse(child.bytes.toString()) as ImageManifest;
  const config = await c.fetchBlob(ref, manifest.config, { verify: true });
  assert.deepEqual(await collect(config.stream), image.configs[1]!.bytes);

  const whole = await c.fetchBlob(ref, image.layer.desc, { verify: true });
  assert.equal(whole.offset, 0);
  assert.deepEqual(await collect(whole.stream), image.layer.bytes);
  const tail = await c.fetchBlob(ref, image.layer.desc, { offset: 1234 });
  assert.equal(tail.offset, 1234, 'distribution honours Range');
  assert.deepEqual(await collect(tail.stream), image.layer.bytes.subarray(1234));

  assert.equal(await c.blobExists(ref, image.layer.desc.digest), true);
  assert.equal(await c.blobExists(ref, sha256('not there')), false);
  assert.equal(await c.pushBlob(ref, image.layer.desc, () => Readable.from([image.layer.bytes])), 'exists');
  const other: Reference = { domain: reg.host, path: 'berth/other', tag: 'x' };
  assert.equal(await c.pushBlob(other, image.layer.desc, () => Readable.from([image.layer.bytes]), { mountFrom: ref }), 'mounted');
  assert.equal(await c.blobExists(other, image.layer.desc.digest), true);

  const ep = await c.ping(reg.host);
  assert.equal(ep.baseUrl, `http://${reg.host}`);
});

test('plain registry: chunked upload of a larger blob, then a Range read of it', { skip }, async () => {
  const reg = await startRegistry();
  started.push(reg);
  const c = client();
  const ref: Reference = { domain: reg.host, path: 'berth/chunked', tag: 'v1' };
  const big = blob(MediaType.ociLayer, randomBytes(3 * 1024 * 1024 + 17));
  const seen: number[] = [];
  const result = await c.pushBlob(ref, big.desc, () => Readable.from([big.bytes.subarray(0, 100_000), big.bytes.subarray(100_000)]), {
    chunkSize: 1024 * 1024,
    onProgress: (done) => seen.push(done),
  });
  assert.equal(result, 'uploaded');
  assert.deepEqual(seen, [1, 2, 3].map((n) => n * 1024 * 1024).concat([big.desc.size]));
  const tail = await c.fetchBlob(ref, big.desc, { offset: big.desc.size - 10 });
  assert.equal(tail.offset, big.desc.size - 10);
  assert.deepEqual(await collect(tail.stream), big.bytes.subarray(-10));
});

test('plain registry: a missing manifest or blob is NotFound with the registry message', { skip }, async () => {
  const reg = await startRegistry();
  started.push(reg);
  const c = client();
  await assert.rejects(c.getManifest({ domain: reg.host, path: 'berth/none', tag: 'nope' }), (e: unknown) => {
    assert.ok(isBerthError(e, 'NotFound'), String(e));
    assert.match(e.message, /^manifest unknown: NAME_UNKNOWN: repository name not known to registry|^manifest unknown: MANIFEST_UNKNOWN/);
    assert.match(e.message, new RegExp(`pull ${reg.host}/berth/none:nope, GET /v2/berth/none/manifests/nope`));
    return true;
  });
  const ref: Reference = { domain: reg.host, path: 'berth/test-image', tag: 'v1' };
  await pushImage(c, ref);
  await assert.rejects(c.getManifest({ ...ref, tag: 'missing' }), (e: unknown) => isBerthError(e, 'NotFound') && /MANIFEST_UNKNOWN/.test(e.message));
  const missing: Descriptor = { mediaType: MediaType.ociLayer, digest: sha256('missing'), size: 7 };
  await assert.rejects(c.fetchBlob(ref, missing), (e: unknown) => isBerthError(e, 'NotFound') && /^blob sha256:[a-f0-9]+ unknown: BLOB_UNKNOWN/.test(e.message));
});

test('htpasswd registry: push and pull with the right password; a wrong one is a clear 401', { skip }, async () => {
  const reg = await startRegistry({ auth: 'htpasswd', users: { alice: 'wonderland' } });
  started.push(reg);
  const ref: Reference = { domain: reg.host, path: 'private/app', tag: 'v1' };
  const good = client({ credentials: creds({ [reg.host]: { username: 'alice', password: 'wonderland' } }) });
  await good.ping(reg.host);
  await pushImage(good, ref);
  assert.equal((await good.getManifest(ref)).descriptor.digest, image.index.desc.digest);

  const wrong = client({ credentials: creds({ [reg.host]: { username: 'alice', password: 'looking-glass' } }) });
  await assert.rejects(wrong.getManifest(ref), (e: unknown) => {
    assert.ok(isBerthError(e, 'FailedPrecondition'), String(e));
    assert.match(e.message, /^unauthorized: UNAUTHORIZED: authentication required/);
    assert.match(e.message, new RegExp(`pull ${reg.host}/private/app:v1`));
    assert.match(e.describe(), /docker login/);
    return true;
  });
  await assert.rejects(wrong.ping(reg.host), /unauthorized/);
  await assert.rejects(client().getManifest(ref), (e: unknown) => isBerthError(e, 'FailedPrecondition') && /^unauthorized/.test(e.message));
});

test('token registry: bearer tokens from the token server, cached per scope; wrong password refused', { skip }, async () => {
  const reg = await startRegistry({ auth: 'token', users: { bob: 'builder' } });
  started.push(reg);
  const ref: Reference = { domain: reg.host, path: 'team/app', tag: 'v1' };
  const c = client({ credentials: creds({ [reg.host]: { username: 'bob', password: 'builder' } }) });
  await pushImage(c, ref);
  const pushTokens = reg.tokenServer!.issued;
  assert.ok(pushTokens >= 1 && pushTokens <= 2, `tokens for the push: ${pushTokens}`);
  const top = await c.getManifest(ref);
  assert.equal(top.descriptor.digest, image.index.desc.digest);
  await c.getManifest({ ...ref, digest: image.manifests[0]!.desc.digest });
  const { stream } = await c.fetchBlob(ref, image.layer.desc, { verify: true });
  assert.deepEqual(await collect(stream), image.layer.bytes);
  assert.equal(reg.tokenServer!.issued, pushTokens + 1, 'one more token (pull scope) for the whole pull');

  const wrong = client({ credentials: creds({ [reg.host]: { username: 'bob', password: 'nope' } }) });
  await assert.rejects(wrong.getManifest(ref), (e: unknown) => {
    assert.ok(isBerthError(e, 'FailedPrecondition'), String(e));
    assert.match(e.message, /^unauthorized: the token service refused the credentials of "bob": incorrect username or password/);
    return true;
  });
  assert.ok(reg.tokenServer!.denied >= 1);
  // Anonymous: the token server grants nothing, so the registry refuses with its own message.
  await assert.rejects(client().getManifest(ref), (e: unknown) => isBerthError(e, 'FailedPrecondition') && /^unauthorized: UNAUTHORIZED/.test(e.message));
});

test('token registry: anonymous pull allowed, push refused', { skip }, async () => {
  const reg = await startRegistry({ auth: 'token', users: { bob: 'builder' }, anonymousPull: true });
  started.push(reg);
  const ref: Reference = { domain: reg.host, path: 'public/app', tag: 'v1' };
  await pushImage(client({ credentials: creds({ [reg.host]: { username: 'bob', password: 'builder' } }) }), ref);
  const anon = client();
  assert.equal((await anon.getManifest(ref)).descriptor.digest, image.index.desc.digest);
  await assert.rejects(anon.putManifest({ ...ref, tag: 'v2' }, image.index.desc.mediaType, image.index.bytes), /^BerthError: unauthorized/);
});

test('fake registry: retries, 429, redirect, resume, wrong digest', async () => {
  const f = await FakeRegistry.start({ auth: { scheme: 'bearer', users: { u: 'p' } } });
  fakes.push(f);
  const repo = 'lib/img';
  const layer = f.putBlob(repo, image.layer.bytes);
  const m = image.manifests[0]!;
  f.putBlob(repo, image.configs[0]!.bytes);
  const digest = f.putManifest(repo, m.desc.mediaType, m.bytes, 'v1');
  const ref: Reference = { domain: f.host, path: repo, tag: 'v1' };
  const c = client({ credentials: creds({ [f.host]: { username: 'u', password: 'p' } }), retries: 3 });

  f.inject({ path: '/manifests/v1', action: { kind: 'status', status: 500 } });
  f.inject({ path: '/manifests/v1', action: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } });
  assert.equal((await c.getManifest(ref)).descriptor.digest, digest);
  assert.equal(f.count({ path: '/manifests/v1' }), 4, '401, 500, 429, then 200');

  f.inject({ path: '/blobs/', method: 'GET', action: { kind: 'redirect' } });
  f.inject({ path: '/blobs/', server: 'storage', action: { kind: 'drop-after', bytes: 5000 } });
  const first = await c.fetchBlob(ref, image.layer.desc);
  const got: Buffer[] = [];
  await assert.rejects(
    (async () => {
      for await (const chunk of first.stream as AsyncIterable<Buffer>) got.push(chunk);
    })(),
    /broke off after 5000 of/,
  );
  const rest = await c.fetchBlob(ref, image.layer.desc, { offset: 5000 });
  assert.equal(rest.offset, 5000);
  assert.deepEqual(Buffer.concat([...got, await collect(rest.stream)]), image.layer.bytes);
  assert.equal(layer.digest, image.layer.desc.digest);

  f.inject({ path: '/blobs/', action: { kind: 'wrong-bytes' } });
  const bad = await c.fetchBlob(ref, image.layer.desc, { verify: true });
  await assert.rejects(collect(bad.stream), (e: unknown) => isBerthError(e, 'FailedPrecondition') && e.message.includes(`blob ${image.layer.desc.digest}: the registry sent content with digest`));
  f.inject({ path: '/manifests/', action: { kind: 'wrong-bytes' } });
  await assert.rejects(c.getManifest({ ...ref, digest }), /the content has digest .* but we asked for/);
});

test('stop() leaves no registry process or temp dir behind', { skip }, async () => {
  const reg = await startRegistry({ auth: 'token', users: { a: 'b' } });
  assert.ok(existsSync(reg.dir));
  await reg.stop();
  assert.equal(existsSync(reg.dir), false);
  assert.throws(() => process.kill(reg.pid, 0), /ESRCH/);
});
