// RegistryClient against the in-process fake registry (no root, loopback only).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { createServer } from 'node:net';
import { isBerthError } from '../../errors.js';
import { FakeRegistry, sha256 } from '../../../test/helpers/fake-registry.js';
import { MediaType, type Descriptor } from '../types.js';
import type { Reference } from '../reference.js';
import type { Credential, CredentialStore } from './credentials.js';
import { RegistryClient, type RegistryClientOptions } from './client.js';

const fakes: FakeRegistry[] = [];
const clients: RegistryClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const f of fakes) await f.stop();
});

async function fake(opts: Parameters<typeof FakeRegistry.start>[0] = {}): Promise<FakeRegistry> {
  const f = await FakeRegistry.start(opts);
  fakes.push(f);
  return f;
}

function client(opts: RegistryClientOptions = {}): RegistryClient {
  const c = new RegistryClient({ retryDelayMs: 1, maxRetryDelayMs: 50, ...opts });
  clients.push(c);
  return c;
}

function creds(map: Record<string, Credential>): CredentialStore {
  return { get: (domain) => map[domain] };
}

function ref(f: FakeRegistry, path: string, tag?: string, digest?: string): Reference {
  const r: Reference = { domain: f.host, path };
  if (tag) r.tag = tag;
  if (digest) r.digest = digest;
  return r;
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

/** A small image in the fake: one blob (the "layer"), a config and a manifest tagged v1. */
function seedImage(f: FakeRegistry, repo: string, layerBytes = Buffer.alloc(100_000, 'x')) {
  const layer = f.putBlob(repo, layerBytes);
  const config = f.putBlob(repo, JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, ...config },
    layers: [{ mediaType: MediaType.ociLayerGzip, ...layer }],
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = f.putManifest(repo, MediaType.ociManifest, bytes, 'v1');
  const layerDesc: Descriptor = { mediaType: MediaType.ociLayerGzip, ...layer };
  return { layer: layerDesc, layerBytes, manifestBytes: bytes, manifestDigest: digest };
}

test('getManifest by tag and by digest returns the bytes, media type and computed digest', async () => {
  const f = await fake();
  const img = seedImage(f, 'a/b');
  const c = client();
  const byTag = await c.getManifest(ref(f, 'a/b', 'v1'));
  assert.deepEqual(byTag.bytes, img.manifestBytes);
  assert.deepEqual(byTag.descriptor, { mediaType: MediaType.ociManifest, digest: img.manifestDigest, size: img.manifestBytes.length });
  assert.equal(byTag.endpoint.baseUrl, `http://${f.host}`);
  const byDigest = await c.getManifest(ref(f, 'a/b', undefined, img.manifestDigest));
  assert.equal(byDigest.descriptor.digest, img.manifestDigest);
  const accept = String(f.requests.find((r) => r.url.includes('/manifests/'))?.headers.accept);
  for (const t of [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest, MediaType.dockerManifestV1Signed]) {
    assert.ok(accept.includes(t), `Accept names ${t}: ${accept}`);
  }
});

test('getManifest falls back to the document mediaType when Content-Type is generic', async () => {
  const f = await fake();
  const idx = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.dockerManifestList, manifests: [] }));
  f.putManifest('x', 'application/json', idx, 'list');
  const bare = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
  f.putManifest('x', 'application/json', bare, 'bare');
  const c = client();
  assert.equal((await c.getManifest(ref(f, 'x', 'list'))).descriptor.mediaType, MediaType.dockerManifestList);
  assert.equal((await c.getManifest(ref(f, 'x', 'bare'))).descriptor.mediaType, MediaType.ociIndex);
});

test('a manifest whose bytes do not match the digest is refused', async () => {
  const f = await fake();
  const img = seedImage(f, 'a/b');
  const c = client();
  f.inject({ path: '/manifests/', action: { kind: 'wrong-bytes' }, times: 10 });
  await assert.rejects(c.getManifest(ref(f, 'a/b', undefined, img.manifestDigest)), (e: unknown) => {
    assert.ok(isBerthError(e, 'FailedPrecondition'));
    assert.match(e.message, /the content has digest sha256:[a-f0-9]{64}, but we asked for sha256:/);
    return true;
  });
  await assert.rejects(c.getManifest(ref(f, 'a/b', 'v1')), /but the registry said \(Docker-Content-Digest\)/);
});

test('a manifest download that breaks off is retried', async () => {
  const f = await fake();
  const img = seedImage(f, 'a/b');
  const c = client();
  f.inject({ path: '/manifests/v1', action: { kind: 'drop-after', bytes: 10 } });
  assert.deepEqual((await c.getManifest(ref(f, 'a/b', 'v1'))).bytes, img.manifestBytes);
  assert.equal(f.count({ path: '/manifests/v1' }), 2);
});

test('schema 1 manifests are refused by name', async () => {
  const f = await fake();
  f.putManifest('old', MediaType.dockerManifestV1Signed, JSON.stringify({ schemaVersion: 1, name: 'old', tag: 't', fsLayers: [] }), 't');
  f.putManifest('old', 'application/json', JSON.stringify({ schemaVersion: 1, name: 'old', tag: 'u', fsLayers: [] }), 'u');
  const c = client();
  for (const tag of ['t', 'u']) {
    await assert.rejects(c.getManifest(ref(f, 'old', tag)), (e: unknown) => isBerthError(e, 'FailedPrecondition') && /schema 1/.test(e.message));
  }
});

test('a missing manifest is NotFound with the registry message, reference and path', async () => {
  const f = await fake();
  const c = client();
  await assert.rejects(c.getManifest(ref(f, 'no/such', 'tag')), (e: unknown) => {
    assert.ok(isBerthError(e, 'NotFound'));
    assert.equal(e.message, `manifest unknown: MANIFEST_UNKNOWN: manifest unknown {"Tag":"tag"} (pull ${f.host}/no/such:tag, GET /v2/no/such/manifests/tag)`);
    return true;
  });
});

test('bearer auth: one token per scope, reused, then refreshed when it expires', async () => {
  const f = await fake({ auth: { scheme: 'bearer', users: { alice: 's3cret' }, expiresIn: 1 } });
  const img = seedImage(f, 'team/app');
  const c = client({ credentials: creds({ [f.host]: { username: 'alice', password: 's3cret' } }) });
  await c.getManifest(ref(f, 'team/app', 'v1'));
  await c.getManifest(ref(f, 'team/app', 'v1'));
  assert.ok(await c.blobExists(ref(f, 'team/app'), img.layer.digest));
  assert.equal(f.tokenRequests, 1, 'the pull token is cached');
  const tokenReq = f.requests.find((r) => r.server === 'token')!;
  assert.match(tokenReq.url, /service=fake-registry/);
  assert.match(tokenReq.url, /scope=repository%3Ateam%2Fapp%3Apull/);
  assert.match(String(tokenReq.headers.authorization), /^Basic /);
  // expires_in 1 s: the client renews instead of using a dead token.
  await new Promise((r) => setTimeout(r, 1100));
  await c.getManifest(ref(f, 'team/app', 'v1'));
  assert.equal(f.tokenRequests, 2);
});

test('bearer auth: access_token field, anonymous pull and concurrent requests share one token fetch', async () => {
  const f = await fake({ auth: { scheme: 'bearer', anonymousPull: true, tokenField: 'access_token' } });
  const img = seedImage(f, 'pub');
  const c = client();
  await Promise.all([1, 2, 3, 4].map(() => c.fetchBlob(ref(f, 'pub'), img.layer).then((r) => collect(r.stream))));
  assert.equal(f.tokenRequests, 1);
  // No push rights for anonymous: the registry refuses again with a fresh token, and we say so.
  await assert.rejects(
    c.putManifest(ref(f, 'pub', 'v2'), MediaType.ociManifest, img.manifestBytes),
    (e: unknown) => isBerthError(e, 'FailedPrecondition') && /^unauthorized: UNAUTHORIZED: authentication required/.test(e.message) && /docker login/.test(e.describe()),
  );
});

test('bearer auth: a token service that fails for a moment is retried', async () => {
  const f = await fake({ auth: { scheme: 'bearer', users: { alice: 's3cret' } } });
  seedImage(f, 'team/app');
  const c = client({ credentials: creds({ [f.host]: { username: 'alice', password: 's3cret' } }) });
  f.inject({ server: 'token', action: { kind: 'status', status: 503 } });
  await c.getManifest(ref(f, 'team/app', 'v1'));
  assert.equal(f.tokenRequests, 2);
});

test('bearer auth: wrong password gives the token service message', async () => {
  const f = await fake({ auth: { scheme: 'bearer', users: { alice: 's3cret' } } });
  seedImage(f, 'team/app');
  const c = client({ credentials: creds({ [f.host]: { username: 'alice', password: 'wrong' } }) });
  await assert.rejects(c.getManifest(ref(f, 'team/app', 'v1')), (e: unknown) => {
    assert.ok(isBerthError(e, 'FailedPrecondition'));
    assert.match(e.message, /^unauthorized: the token service refused the credentials of "alice": incorrect username or password/);
    assert.match(e.message, new RegExp(`pull ${f.host}/team/app:v1`));
    return true;
  });
});

test('identity token: OAuth2 refresh_token grant by POST', async () => {
  const f = await fake({ auth: { scheme: 'bearer', identityTokens: { 'refresh-abc': 'bob' } } });
  seedImage(f, 'team/app');
  const c = client({ credentials: creds({ [f.host]: { identityToken: 'refresh-abc' } }) });
  await c.getManifest(ref(f, 'team/app', 'v1'));
  const tokenReq = f.requests.find((r) => r.server === 'token')!;
  assert.equal(tokenReq.method, 'POST');
  assert.equal(tokenReq.headers['content-type'], 'application/x-www-form-urlencoded');
  const bad = client({ credentials: creds({ [f.host]: { identityToken: 'nope' } }) });
  await assert.rejects(bad.getManifest(ref(f, 'team/app', 'v1')), /unauthorized: the token service refused the identity token: unknown refresh token/);
});

test('basic auth: credentials sent after the challenge; a wrong password is a clear 401', async () => {
  const f = await fake({ auth: { scheme: 'basic', users: { alice: 'pw' } } });
  seedImage(f, 'r');
  const ok = client({ credentials: creds({ [f.host]: { username: 'alice', password: 'pw' } }) });
  await ok.getManifest(ref(f, 'r', 'v1'));
  await ok.getManifest(ref(f, 'r', 'v1'));
  assert.equal(f.count({ method: 'GET', path: '/manifests/' }), 3, 'one 401, then authenticated right away');
  const wrong = client({ credentials: creds({ [f.host]: { username: 'alice', password: 'bad' } }) });
  await assert.rejects(wrong.getManifest(ref(f, 'r', 'v1')), (e: unknown) => isBerthError(e, 'FailedPrecondition') && /^unauthorized: UNAUTHORIZED/.test(e.message));
  const none = client();
  await assert.rejects(none.getManifest(ref(f, 'r', 'v1')), /^BerthError: unauthorized/);
  await assert.rejects(none.ping(f.host).then(() => wrong.ping(f.host)), /unauthorized/);
});

test('retries: 500 then OK, 429 with Retry-After, and a clear error when retries run out', async () => {
  const f = await fake();
  seedImage(f, 'r');
  const c = client({ retries: 2 });
  f.inject({ path: '/manifests/v1', action: { kind: 'status', status: 500 } });
  await c.getManifest(ref(f, 'r', 'v1'));
  f.inject({ path: '/manifests/v1', action: { kind: 'status', status: 429, headers: { 'retry-after': '0' } } });
  await c.getManifest(ref(f, 'r', 'v1'));
  f.inject({ path: '/manifests/v1', times: 3, action: { kind: 'status', status: 503, body: '{"errors":[{"code":"UNAVAILABLE","message":"down for maintenance"}]}' } });
  await assert.rejects(c.getManifest(ref(f, 'r', 'v1')), (e: unknown) => isBerthError(e, 'Unavailable') && /HTTP 503: UNAVAILABLE: down for maintenance/.test(e.message));
  f.inject({ path: '/manifests/v1', times: 3, action: { kind: 'status', status: 429, headers: { 'retry-after': '0' } } });
  await assert.rejects(c.getManifest(ref(f, 'r', 'v1')), (e: unknown) => isBerthError(e, 'Unavailable') && /^rate limited/.test(e.message));
});

test('connection refused is Unavailable and names the registry', async () => {
  const port = await freePort();
  const c = client({ retries: 1 });
  await assert.rejects(c.getManifest({ domain: `127.0.0.1:${port}`, path: 'a', tag: 't' }), (e: unknown) => {
    assert.ok(isBerthError(e, 'Unavailable'));
    assert.match(e.message, new RegExp(`cannot reach http://127.0.0.1:${port}: ECONNREFUSED`));
    return true;
  });
});

test('blob redirects are followed without sending our Authorization to the other host', async () => {
  const f = await fake({ auth: { scheme: 'bearer', users: { u: 'p' } } });
  const img = seedImage(f, 'r');
  const c = client({ credentials: creds({ [f.host]: { username: 'u', password: 'p' } }) });
  f.inject({ path: '/blobs/', method: 'GET', action: { kind: 'redirect' } });
  const { stream, offset } = await c.fetchBlob(ref(f, 'r'), img.layer);
  assert.equal(offset, 0);
  assert.deepEqual(await collect(stream), img.layerBytes);
  const storage = f.requests.filter((r) => r.server === 'storage');
  assert.equal(storage.length, 1);
  assert.equal(storage[0]!.headers.authorization, undefined);
  const registryGet = f.requests.filter((r) => r.server === 'registry' && r.url.includes('/blobs/')).at(-1)!;
  assert.match(String(registryGet.headers.authorization), /^Bearer /);
});

test('Range: resume from an offset, and offset 0 when the registry ignores Range', async () => {
  const f = await fake();
  const img = seedImage(f, 'r');
  const c = client();
  const part = await c.fetchBlob(ref(f, 'r'), img.layer, { offset: 40_000 });
  assert.equal(part.offset, 40_000);
  assert.deepEqual(await collect(part.stream), img.layerBytes.subarray(40_000));
  assert.equal(f.requests.at(-1)!.headers.range, 'bytes=40000-');
  f.inject({ path: '/blobs/', action: { kind: 'ignore-range' } });
  const whole = await c.fetchBlob(ref(f, 'r'), img.layer, { offset: 40_000 });
  assert.equal(whole.offset, 0);
  assert.deepEqual(await collect(whole.stream), img.layerBytes);
});

test('a dropped download errors the stream with how far it got; fetching from there completes it', async () => {
  const f = await fake();
  const layerBytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
  const img = seedImage(f, 'r', layerBytes);
  const c = client();
  f.inject({ path: '/blobs/', action: { kind: 'drop-after', bytes: 70_000 } });
  const first = await c.fetchBlob(ref(f, 'r'), img.layer);
  const got: Buffer[] = [];
  await assert.rejects(
    (async () => {
      for await (const chunk of first.stream as AsyncIterable<Buffer>) got.push(chunk);
    })(),
    (e: unknown) => isBerthError(e, 'Unavailable') && /broke off after 70000 of 300000 bytes/.test(e.message),
  );
  const have = Buffer.concat(got);
  assert.equal(have.length, 70_000);
  const rest = await c.fetchBlob(ref(f, 'r'), img.layer, { offset: have.length });
  assert.equal(rest.offset, have.length);
  assert.deepEqual(Buffer.concat([have, await collect(rest.stream)]), layerBytes);
});

test('a download that stalls fails after the idle timeout instead of hanging', async () => {
  const f = await fake();
  const img = seedImage(f, 'r');
  const c = client({ idleTimeoutMs: 300 });
  f.inject({ path: '/blobs/', action: { kind: 'stall-after', bytes: 1000 } });
  const r = await c.fetchBlob(ref(f, 'r'), img.layer);
  await assert.rejects(collect(r.stream), (e: unknown) => isBerthError(e, 'Unavailable') && /broke off after 1000 of 100000 bytes/.test(e.message));
});

test('a blob HEAD answered with a redirect counts as present', async () => {
  const f = await fake();
  const img = seedImage(f, 'r');
  const c = client();
  f.inject({ method: 'HEAD', path: '/blobs/', action: { kind: 'redirect' } });
  assert.equal(await c.blobExists(ref(f, 'r'), img.layer.digest), true);
  assert.equal(f.count({ server: 'storage' }), 0);
});

test('wrong blob bytes: verify reports the digest; a wrong size is caught without it', async () => {
  const f = await fake();
  const img = seedImage(f, 'r');
  const c = client();
  f.inject({ path: '/blobs/', action: { kind: 'wrong-bytes' } });
  const r = await c.fetchBlob(ref(f, 'r'), img.layer, { verify: true });
  await assert.rejects(collect(r.stream), (e: unknown) => isBerthError(e, 'FailedPrecondition') && /sent content with digest sha256:/.test(e.message));
  await assert.rejects(
    c.fetchBlob(ref(f, 'r'), { ...img.layer, size: img.layer.size + 1 }),
    (e: unknown) => isBerthError(e, 'FailedPrecondition') && /announced 100000 bytes/.test(e.message),
  );
  f.inject({ path: '/blobs/', action: { kind: 'status', status: 500 }, times: 10 });
  await assert.rejects(c.blobExists(ref(f, 'r'), img.layer.digest), /HTTP 500/);
  f.faults.length = 0;
  assert.equal(await c.blobExists(ref(f, 'r'), sha256('nothing')), false);
});

test('mirrors are tried first and skipped on 404, connection errors and for pushes', async () => {
  const registry = await fake();
  const mirror = await fake();
  const img = seedImage(registry, 'lib/app');
  seedImage(mirror, 'lib/other');
  const dead = await freePort();
  const c = client({ retries: 0, hosts: { mirrors: { [registry.host]: [`http://127.0.0.1:${dead}`, `http://${mirror.host}`] } } });
  const got = await c.getManifest(ref(registry, 'lib/app', 'v1'));
  assert.equal(got.endpoint.baseUrl, `http://${registry.host}`);
  assert.equal(mirror.count({ path: '/v2/lib/app/manifests/v1' }), 1, 'the mirror was asked first');
  seedImage(mirror, 'lib/app');
  const fromMirror = await c.getManifest(ref(registry, 'lib/app', 'v1'));
  assert.equal(fromMirror.endpoint.mirror, true);
  const pushed = await c.putManifest(ref(registry, 'lib/app', 'v9'), MediaType.ociManifest, img.manifestBytes);
  assert.equal(pushed, img.manifestDigest);
  assert.equal(mirror.count({ method: 'PUT' }), 0, 'pushes never go to a mirror');
  assert.ok(registry.getManifest('lib/app', 'v9'));
});

test('pushBlob: exists, monolithic, chunked, mount, and a retry after a failed upload', async () => {
  const f = await fake({ auth: { scheme: 'bearer', users: { u: 'p' } } });
  const c = client({ credentials: creds({ [f.host]: { username: 'u', password: 'p' } }) });
  const data = Buffer.from(Array.from({ length: 50_000 }, (_, i) => (i * 7) % 256));
  const desc: Descriptor = { mediaType: MediaType.ociLayer, digest: sha256(data), size: data.length };
  const open = () => Readable.from([data.subarray(0, 1000), data.subarray(1000)]);
  const progress: number[] = [];
  assert.equal(await c.pushBlob(ref(f, 'dst'), desc, open, { onProgress: (done) => progress.push(done) }), 'uploaded');
  assert.ok(f.hasBlob('dst', desc.digest));
  assert.equal(progress.at(-1), data.length);
  assert.equal(f.count({ method: 'PUT', path: '/blobs/uploads/' }), 1);
  assert.equal(await c.pushBlob(ref(f, 'dst'), desc, open), 'exists');

  assert.equal(await c.pushBlob(ref(f, 'chunked'), desc, open, { chunkSize: 16_384 }), 'uploaded');
  assert.equal(f.count({ method: 'PATCH' }), 4);
  const ranges = f.requests.filter((r) => r.method === 'PATCH').map((r) => r.headers['content-range']);
  assert.deepEqual(ranges, ['0-16383', '16384-32767', '32768-49151', '49152-49999']);
  assert.ok(f.hasBlob('chunked', desc.digest));

  assert.equal(await c.pushBlob(ref(f, 'mounted'), desc, open, { mountFrom: ref(f, 'dst') }), 'mounted');
  assert.ok(f.hasBlob('mounted', desc.digest));
  const mountToken = f.requests.filter((r) => r.server === 'token').at(-1)!;
  assert.match(decodeURIComponent(mountToken.url), /scope=repository:mounted:pull,push&scope=repository:dst:pull|scope=repository:dst:pull&scope=repository:mounted:pull,push/);
  // Mount source without the blob: the registry starts a normal upload instead.
  assert.equal(await c.pushBlob(ref(f, 'mounted2'), desc, open, { mountFrom: ref(f, 'empty') }), 'uploaded');

  f.inject({ method: 'PUT', path: '/blobs/uploads/', action: { kind: 'status', status: 500 } });
  assert.equal(await c.pushBlob(ref(f, 'retried'), desc, open), 'uploaded');
  assert.ok(f.hasBlob('retried', desc.digest));

  await assert.rejects(
    c.pushBlob(ref(f, 'short'), { ...desc, size: desc.size + 5 }, open),
    (e: unknown) => isBerthError(e, 'InvalidArgument') && /has 50000 bytes, its descriptor says 50005/.test(e.message),
  );
});

test('putManifest refuses bytes that do not match the digest of the reference', async () => {
  const f = await fake();
  const c = client();
  await assert.rejects(c.putManifest(ref(f, 'r', undefined, sha256('other')), MediaType.ociManifest, Buffer.from('{}')), (e: unknown) => isBerthError(e, 'InvalidArgument'));
  const digest = await c.putManifest(ref(f, 'r', undefined, sha256('{}')), MediaType.ociManifest, Buffer.from('{}'));
  assert.equal(digest, sha256('{}'));
  assert.equal(f.count({ method: 'PUT', path: `/manifests/${digest}` }), 1);
});

test('an aborted signal stops a request', async () => {
  const f = await fake();
  seedImage(f, 'r');
  const c = client();
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(c.getManifest(ref(f, 'r', 'v1'), { signal: ac.signal }), (e: unknown) => (e as Error).name === 'AbortError');
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
