// The engine's image half against Debian's registry on 127.0.0.1: push and pull in Docker's
// JSONMessage shapes, re-pull and re-push (Already exists / Layer already exists), and
// credentials given per call (X-Registry-Auth) to a registry with htpasswd auth.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isBerthError } from '../src/errors.js';
import { EngineImages, type ImageEvent } from '../src/engine/images.js';
import type { ProgressMessage } from '../src/engine/types.js';
import { ImageService } from '../src/image/service.js';
import { credentialStoreFrom } from '../src/image/registry/credentials.js';
import { TAR_END, tarHeader, tarPadding } from '../src/image/unpack/tar.js';
import { startRegistry, registryUnavailable, type StartedRegistry } from './helpers/registry.js';
import { mountsUnder } from './helpers/leaks.js';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot ? 'needs root (overlay snapshots keep file owners)' : registryUnavailable();

const temps: string[] = [];
const services: ImageService[] = [];

function rootfsTar(files: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, body] of Object.entries(files)) {
    const data = Buffer.from(body);
    parts.push(tarHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 1_700_000_000 }), data, tarPadding(data.length));
  }
  parts.push(TAR_END);
  return Buffer.concat(parts);
}

async function engine(): Promise<{ images: EngineImages; events: ImageEvent[]; root: string }> {
  const root = mkdtempSync(join(tmpdir(), 'berth-engine-images-'));
  temps.push(root);
  const service = await ImageService.open({ root, snapshotter: 'overlay', credentials: credentialStoreFrom({}) });
  services.push(service);
  const events: ImageEvent[] = [];
  return { images: new EngineImages(service, { events: (e) => events.push(e), containersUsing: () => [] }), events, root };
}

async function importAs(images: EngineImages, repo: string, tag: string, files: Record<string, string>): Promise<string> {
  const out: ProgressMessage[] = [];
  await images.importImage(Readable.from([rootfsTar(files)]), { repo, tag, changes: ['CMD ["/bin/sh"]'], onProgress: (m) => out.push(m) });
  return out.at(-1)!.status!;
}

function statuses(messages: ProgressMessage[], id?: string): string[] {
  return messages.filter((m) => (id === undefined ? m.id === undefined : m.id === id)).map((m) => m.status ?? '');
}

describe('engine images against a local registry', { skip }, () => {
  let registry: StartedRegistry;
  let authRegistry: StartedRegistry;

  before(async () => {
    registry = await startRegistry();
    authRegistry = await startRegistry({ auth: 'htpasswd', users: { alice: 's3cret' } });
  });

  after(async () => {
    for (const s of services) s.close();
    await registry?.stop();
    await authRegistry?.stop();
    const leaked = temps.flatMap((t) => mountsUnder([t]));
    for (const t of temps) rmSync(t, { recursive: true, force: true });
    assert.deepEqual(leaked, [], 'no mounts are left under the test roots');
  });

  test('push then pull into another store, in Docker progress shapes', async () => {
    const a = await engine();
    const repo = `${registry.host}/test/app`;
    const id = await importAs(a.images, repo, 'v1', { 'etc/motd': 'hello\n', 'bin/x': 'x'.repeat(100_000) });

    const pushed: ProgressMessage[] = [];
    await a.images.pushImage({ name: repo, tag: 'v1', onProgress: (m) => pushed.push(m) });
    assert.equal(pushed[0]!.status, `The push refers to repository [${repo}]`);
    const layerId = pushed.find((m) => m.status === 'Preparing')!.id!;
    assert.match(layerId, /^[a-f0-9]{12}$/);
    assert.deepEqual(statuses(pushed, layerId).filter((s) => s !== 'Pushing'), ['Preparing', 'Pushed']);
    assert.equal(pushed.filter((m) => m.status === 'Preparing').length, 1, 'the config blob is not listed');
    const final = pushed.find((m) => m.status?.startsWith('v1: digest: '));
    assert.match(final!.status!, /^v1: digest: sha256:[a-f0-9]{64} size: \d+$/);
    const aux = pushed.at(-1)!;
    assert.equal(aux.aux?.Tag, 'v1');
    assert.match(String(aux.aux?.Digest), /^sha256:/);
    assert.ok(a.events.some((e) => e.Action === 'push' && e.id === `${repo}:v1`));

    const again: ProgressMessage[] = [];
    await a.images.pushImage({ name: `${repo}:v1`, onProgress: (m) => again.push(m) });
    assert.deepEqual(statuses(again, layerId), ['Preparing', 'Layer already exists']);

    const b = await engine();
    const pulled: ProgressMessage[] = [];
    await b.images.pullImage({ fromImage: repo, tag: 'v1', onProgress: (m) => pulled.push(m) });
    assert.deepEqual(pulled[0], { status: 'Pulling from test/app', id: 'v1' });
    const layer = statuses(pulled, layerId);
    assert.equal(layer[0], 'Pulling fs layer');
    assert.ok(layer.includes('Downloading'));
    assert.deepEqual(layer.filter((s) => s !== 'Downloading'), ['Pulling fs layer', 'Verifying Checksum', 'Download complete', 'Extracting', 'Pull complete']);
    const downloading = pulled.find((m) => m.status === 'Downloading')!;
    assert.equal(typeof downloading.progressDetail?.current, 'number');
    assert.match(downloading.progress ?? '', /\[=*>\s*\]/);
    const tail = statuses(pulled);
    assert.match(tail.at(-2)!, /^Digest: sha256:[a-f0-9]{64}$/);
    assert.equal(tail.at(-1), `Status: Downloaded newer image for ${repo}:v1`);
    assert.ok(b.events.some((e) => e.Action === 'pull' && e.id === `${repo}:v1` && e.attributes?.name === repo));

    const inspect = await b.images.inspectImage(`${repo}:v1`);
    assert.equal(inspect.Id, id);
    assert.deepEqual(inspect.Config.Cmd, ['/bin/sh']);
    assert.deepEqual(inspect.RepoTags, [`${repo}:v1`]);
    assert.match(inspect.RepoDigests[0]!, new RegExp(`^${repo.replace(/[.]/g, '\\.')}@sha256:`));

    const repull: ProgressMessage[] = [];
    await b.images.pullImage({ fromImage: `${repo}:v1`, onProgress: (m) => repull.push(m) });
    assert.deepEqual(statuses(repull, layerId), ['Already exists']);
    assert.equal(statuses(repull).at(-1), `Status: Image is up to date for ${repo}:v1`);

    // By digest.
    const digest = /^Digest: (sha256:[a-f0-9]{64})$/.exec(tail.at(-2)!)![1]!;
    const c = await engine();
    const byDigest: ProgressMessage[] = [];
    await c.images.pullImage({ fromImage: repo, tag: digest, onProgress: (m) => byDigest.push(m) });
    assert.deepEqual(byDigest[0], { status: 'Pulling from test/app', id: digest });
    const list = await c.images.listImages({});
    assert.deepEqual(list[0]!.RepoTags, []);
    assert.deepEqual(list[0]!.RepoDigests, [`${repo}@${digest}`]);
    assert.equal((await c.images.resolveForContainer(`${repo}@${digest}`)).id, id);
  });

  test('a pull of a missing image or tag fails with the registry error', async () => {
    const a = await engine();
    await assert.rejects(
      a.images.pullImage({ fromImage: `${registry.host}/nothing/here`, tag: 'v1', onProgress: () => {} }),
      (e) => isBerthError(e, 'NotFound'),
    );
  });

  test('X-Registry-Auth credentials are used for that pull and push', async () => {
    const a = await engine();
    const repo = `${authRegistry.host}/private/app`;
    await importAs(a.images, repo, 'latest', { 'secret.txt': 'shh\n' });
    await assert.rejects(a.images.pushImage({ name: repo, onProgress: () => {} }), (e) => isBerthError(e) && e.code !== 'Internal');
    await assert.rejects(
      a.images.pushImage({ name: repo, auth: { username: 'alice', password: 'wrong', serveraddress: authRegistry.host }, onProgress: () => {} }),
      (e) => isBerthError(e),
    );
    const pushed: ProgressMessage[] = [];
    await a.images.pushImage({ name: repo, auth: { username: 'alice', password: 's3cret', serveraddress: authRegistry.host }, onProgress: (m) => pushed.push(m) });
    assert.ok(pushed.some((m) => m.status === 'Pushed'));

    const b = await engine();
    await assert.rejects(b.images.pullImage({ fromImage: repo, tag: 'latest', onProgress: () => {} }), (e) => isBerthError(e));
    const auth = { auth: Buffer.from('alice:s3cret').toString('base64'), serveraddress: authRegistry.host };
    const pulled: ProgressMessage[] = [];
    await b.images.pullImage({ fromImage: repo, tag: 'latest', auth, onProgress: (m) => pulled.push(m) });
    assert.equal(statuses(pulled).at(-1), `Status: Downloaded newer image for ${repo}:latest`);
  });

  test('push without a tag pushes every local tag of the repository (docker push -a)', async () => {
    const a = await engine();
    const repo = `${registry.host}/test/all`;
    await importAs(a.images, repo, 't1', { one: '1\n' });
    await importAs(a.images, repo, 't2', { two: '2\n' });
    const pushed: ProgressMessage[] = [];
    await a.images.pushImage({ name: repo, onProgress: (m) => pushed.push(m) });
    assert.deepEqual(pushed.filter((m) => m.aux).map((m) => m.aux?.Tag).sort(), ['t1', 't2']);
    const b = await engine();
    await b.images.pullImage({ fromImage: repo, tag: 't2', onProgress: () => {} });
    assert.deepEqual((await b.images.listImages({}))[0]!.RepoTags, [`${repo}:t2`]);
  });

  test('push of a name that does not exist locally', async () => {
    const a = await engine();
    await assert.rejects(
      a.images.pushImage({ name: `${registry.host}/none`, tag: 'x', onProgress: () => {} }),
      (e) => isBerthError(e, 'NotFound') && e.message === `An image does not exist locally with the tag: ${registry.host}/none:x`,
    );
  });
});
