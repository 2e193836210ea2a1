import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { isBerthError } from '../errors.js';
import { ImageService } from '../image/service.js';
import { credentialStoreFrom } from '../image/registry/credentials.js';
import { TAR_END, tarHeader, tarPadding } from '../image/unpack/tar.js';
import { writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import {
  EngineImages,
  blobUncompressedSize,
  PullProgress,
  PushProgress,
  credentialFromAuth,
  humanSize,
  parseChanges,
  parseTimestamp,
  progressBar,
  pullReference,
  referenceMatches,
  loginDomain,
  imageNameFrom,
  type ImageEvent,
} from './images.js';
import type { ProgressMessage } from './types.js';

const temps: string[] = [];
after(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

function rootfsTar(files: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, body] of Object.entries(files)) {
    const data = Buffer.from(body);
    parts.push(tarHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 1_700_000_000 }), data, tarPadding(data.length));
  }
  parts.push(TAR_END);
  return Buffer.concat(parts);
}

async function setup(users: Record<string, string[]> = {}, running: string[] = []) {
  const root = mkdtempSync(join(tmpdir(), 'berth-engine-images-'));
  temps.push(root);
  const service = await ImageService.open({ root, snapshotter: 'copy', credentials: credentialStoreFrom({}) });
  const events: ImageEvent[] = [];
  const images = new EngineImages(service, {
    events: (e) => events.push(e),
    containersUsing: (id) => users[id] ?? [],
    runningContainersUsing: (id) => (users[id] ?? []).filter((c) => running.includes(c)),
  });
  return { service, images, events, users };
}

async function importOne(images: EngineImages, opts: { repo?: string; tag?: string; changes?: string[]; files?: Record<string, string> } = {}): Promise<string> {
  const messages: ProgressMessage[] = [];
  await images.importImage(Readable.from([rootfsTar(opts.files ?? { 'hello.txt': `hi ${Math.random()}\n` })]), {
    repo: opts.repo,
    tag: opts.tag,
    changes: opts.changes,
    onProgress: (m) => messages.push(m),
  });
  const id = messages.at(-1)?.status;
  assert.match(id ?? '', /^sha256:[a-f0-9]{64}$/);
  return id!;
}

describe('progress translation', () => {
  test('humanSize and progressBar follow Docker', () => {
    assert.equal(humanSize(527), '527B');
    assert.equal(humanSize(1500), '1.5kB');
    assert.equal(humanSize(2_152_000), '2.152MB');
    assert.equal(progressBar(50, 100), `[${'='.repeat(25)}>${' '.repeat(25)}]      50B/100B`);
    assert.equal(progressBar(100, 100), `[${'='.repeat(50)}>] ${'   100B'.padStart(8)}/100B`);
    assert.equal(progressBar(1234), ' 1.234kB');
  });

  test('pull: the streaming extraction is reported after the download, as Docker orders it', () => {
    const out: ProgressMessage[] = [];
    const p = new PullProgress((m) => out.push(m), 'busybox:latest');
    p.event({ status: 'Pulling from library/busybox', id: 'latest' });
    p.event({ status: 'Already exists', id: 'aaaaaaaaaaaa' });
    p.event({ status: 'Pulling fs layer', id: 'bbbbbbbbbbbb' });
    p.event({ status: 'Waiting', id: 'bbbbbbbbbbbb' });
    p.event({ status: 'Extracting', id: 'bbbbbbbbbbbb' });
    p.event({ status: 'Downloading', id: 'bbbbbbbbbbbb', current: 10, total: 20 });
    p.event({ status: 'Downloading', id: 'bbbbbbbbbbbb', current: 20, total: 20 });
    p.event({ status: 'Download complete', id: 'bbbbbbbbbbbb' });
    p.event({ status: 'Pull complete', id: 'bbbbbbbbbbbb' });
    p.event({ status: 'Digest: sha256:abc' });
    p.event({ status: 'Status: Downloaded newer image for docker.io/library/busybox:latest' });
    assert.deepEqual(
      out.map((m) => [m.status, m.id ?? '']),
      [
        ['Pulling from library/busybox', 'latest'],
        ['Already exists', 'aaaaaaaaaaaa'],
        ['Pulling fs layer', 'bbbbbbbbbbbb'],
        ['Waiting', 'bbbbbbbbbbbb'],
        ['Downloading', 'bbbbbbbbbbbb'],
        ['Downloading', 'bbbbbbbbbbbb'],
        ['Verifying Checksum', 'bbbbbbbbbbbb'],
        ['Download complete', 'bbbbbbbbbbbb'],
        ['Extracting', 'bbbbbbbbbbbb'],
        ['Pull complete', 'bbbbbbbbbbbb'],
        ['Digest: sha256:abc', ''],
        ['Status: Downloaded newer image for busybox:latest', ''],
      ],
    );
    assert.deepEqual(out[4]!.progressDetail, { current: 10, total: 20 });
    assert.match(out[4]!.progress!, /^\[=+>\s+\]\s+10B\/20B$/);
    assert.deepEqual(out[8]!.progressDetail, { current: 20, total: 20 });
  });

  test('pull: extraction after the download (copying snapshotter) and up-to-date status', () => {
    const out: ProgressMessage[] = [];
    const p = new PullProgress((m) => out.push(m), 'h:5000/a:1');
    p.event({ status: 'Pulling from a', id: '1' });
    assert.equal(out.length, 0, 'nothing is sent before the registry answered');
    p.event({ status: 'Download complete', id: 'c' });
    p.event({ status: 'Extracting', id: 'c' });
    p.event({ status: 'Pull complete', id: 'c' });
    p.event({ status: 'Status: Image is up to date for h:5000/a:1' });
    assert.deepEqual(out.map((m) => m.status), ['Pulling from a', 'Verifying Checksum', 'Download complete', 'Extracting', 'Pull complete', 'Status: Image is up to date for h:5000/a:1']);
  });

  test('push: the config blob is hidden, progress gets a bar', () => {
    const out: ProgressMessage[] = [];
    const p = new PushProgress((m) => out.push(m), 'cfgcfgcfgcfg');
    p.event({ status: 'The push refers to repository [127.0.0.1:5000/a]' });
    p.event({ status: 'Preparing', id: 'cfgcfgcfgcfg' });
    p.event({ status: 'Preparing', id: 'layerlayer12' });
    p.event({ status: 'Pushing', id: 'layerlayer12', current: 5, total: 10 });
    p.event({ status: 'Pushed', id: 'layerlayer12' });
    assert.deepEqual(out.map((m) => m.status), ['The push refers to repository [127.0.0.1:5000/a]', 'Preparing', 'Pushing', 'Pushed']);
    assert.deepEqual(out[2]!.progressDetail, { current: 5, total: 10 });
  });
});

describe('layer sizes', () => {
  test('uncompressed size from the gzip trailer, a zstd frame header, or the plain size', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-engine-sizes-'));
    temps.push(dir);
    const plain = Buffer.alloc(300_000, 'a');
    const gz = gzipSync(plain);
    writeFileSync(join(dir, 'gz'), gz);
    assert.equal(await blobUncompressedSize(join(dir, 'gz'), gz.length), 300_000);
    // A zstd frame header: magic, FHD with a 4-byte content size and single segment, then the size.
    const zst = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0b1010_0000]), Buffer.from([0x40, 0x42, 0x0f, 0x00]), Buffer.alloc(20)]);
    writeFileSync(join(dir, 'zst'), zst);
    assert.equal(await blobUncompressedSize(join(dir, 'zst'), zst.length), 1_000_000);
    writeFileSync(join(dir, 'tar'), plain.subarray(0, 1024));
    assert.equal(await blobUncompressedSize(join(dir, 'tar'), 1024), 1024);
  });
});

describe('parsers', () => {
  test('pullReference: fromImage and tag as the Docker API combines them', () => {
    assert.deepEqual(pullReference('busybox', 'latest'), { domain: 'docker.io', path: 'library/busybox', tag: 'latest' });
    assert.deepEqual(pullReference('busybox:1.36'), { domain: 'docker.io', path: 'library/busybox', tag: '1.36' });
    assert.deepEqual(pullReference('busybox:1.36', '1.37'), { domain: 'docker.io', path: 'library/busybox', tag: '1.37' });
    const d = `sha256:${'a'.repeat(64)}`;
    assert.deepEqual(pullReference('localhost:5000/x', d), { domain: 'localhost:5000', path: 'x', digest: d });
    assert.throws(() => pullReference('busybox'), (e) => isBerthError(e, 'InvalidArgument') && /every tag/.test(e.message));
    assert.throws(() => pullReference('Bad Name', 'x'), (e) => isBerthError(e, 'InvalidArgument'));
    assert.deepEqual(pullReference('localhost:5000/x', 'v1'), { domain: 'localhost:5000', path: 'x', tag: 'v1' });
  });

  test('credentialFromAuth', () => {
    assert.equal(credentialFromAuth(undefined), undefined);
    assert.equal(credentialFromAuth({}), undefined);
    assert.deepEqual(credentialFromAuth({ username: 'u', password: 'p:q', serveraddress: 'h' }), { username: 'u', password: 'p:q' });
    assert.deepEqual(credentialFromAuth({ auth: Buffer.from('u:pw').toString('base64') }), { username: 'u', password: 'pw' });
    assert.deepEqual(credentialFromAuth({ identitytoken: 't' }), { identityToken: 't' });
    assert.throws(() => credentialFromAuth({ registrytoken: 'x' }), (e) => isBerthError(e, 'InvalidArgument'));
  });

  test('parseChanges: Dockerfile-style lines', () => {
    const c = parseChanges([
      'CMD ["/bin/sh", "-c", "echo hi"]',
      'ENTRYPOINT /entry.sh --flag',
      'ENV A=1 B="two words"',
      'ENV C three words',
      'WORKDIR /srv',
      'WORKDIR app',
      'USER 1000:1000',
      'EXPOSE 80 53/udp 8000-8001',
      'LABEL a=b "c d"=e',
      'VOLUME ["/data", "/logs"]',
      'VOLUME /cache',
      'stopsignal SIGINT',
    ]);
    assert.deepEqual(c.Cmd, ['/bin/sh', '-c', 'echo hi']);
    assert.deepEqual(c.Entrypoint, ['/bin/sh', '-c', '/entry.sh --flag']);
    assert.deepEqual(c.Env, ['A=1', 'B=two words', 'C=three words']);
    assert.equal(c.WorkingDir, '/srv/app');
    assert.equal(c.User, '1000:1000');
    assert.deepEqual(Object.keys(c.ExposedPorts!), ['80/tcp', '53/udp', '8000/tcp', '8001/tcp']);
    assert.deepEqual(c.Labels, { a: 'b', 'c d': 'e' });
    assert.deepEqual(Object.keys(c.Volumes!), ['/data', '/logs', '/cache']);
    assert.equal(c.StopSignal, 'SIGINT');
    assert.throws(() => parseChanges(['RUN echo']), (e) => isBerthError(e, 'InvalidArgument') && /RUN is not a valid change command/.test(e.message));
    assert.throws(() => parseChanges(['EXPOSE http']), (e) => isBerthError(e, 'InvalidArgument'));
    assert.throws(() => parseChanges(['CMD']), (e) => isBerthError(e, 'InvalidArgument'));
  });

  test('loginDomain and imageNameFrom', () => {
    assert.equal(loginDomain(undefined), 'docker.io');
    assert.equal(loginDomain('https://index.docker.io/v1/'), 'docker.io');
    assert.equal(loginDomain('127.0.0.1:5000'), '127.0.0.1:5000');
    assert.equal(loginDomain('http://127.0.0.1:5000/v2/'), '127.0.0.1:5000');
    assert.equal(loginDomain('Registry.Example.COM'), 'registry.example.com');
    assert.throws(() => loginDomain('bad address'), (e) => isBerthError(e, 'InvalidArgument'));
    assert.equal(imageNameFrom('app', undefined, 'commit'), 'docker.io/library/app:latest');
    assert.equal(imageNameFrom('app:1', '2', 'commit'), 'docker.io/library/app:2');
    assert.equal(imageNameFrom('localhost:5000/a/b', 'x', 'commit'), 'localhost:5000/a/b:x');
    assert.throws(() => imageNameFrom(`app@sha256:${'a'.repeat(64)}`, undefined, 'commit'), (e) => isBerthError(e, 'InvalidArgument') && /names a digest/.test(e.message));
    assert.throws(() => imageNameFrom('app', 'bad tag!', 'commit'), (e) => isBerthError(e, 'InvalidArgument'));
  });

  test('reference filter and timestamps', () => {
    assert.ok(referenceMatches('busybox', 'docker.io/library/busybox:latest'));
    assert.ok(referenceMatches('busy*', 'docker.io/library/busybox:latest'));
    assert.ok(referenceMatches('busybox:*', 'docker.io/library/busybox:1'));
    assert.ok(!referenceMatches('busybox:2', 'docker.io/library/busybox:1'));
    assert.ok(referenceMatches('127.0.0.1:5000/*', '127.0.0.1:5000/app:1'));
    assert.ok(!referenceMatches('*', '127.0.0.1:5000/app:1'));
    assert.equal(parseTimestamp('1700000000', 'until'), 1_700_000_000);
    assert.equal(parseTimestamp('2023-11-14T22:13:20Z', 'until'), 1_700_000_000);
    assert.equal(parseTimestamp('1h30m', 'until', 10_000_000), 10_000 - 5400);
    assert.throws(() => parseTimestamp('yesterday', 'until'), (e) => isBerthError(e, 'InvalidArgument'));
  });
});

describe('EngineImages over an ImageService (no registry)', () => {
  test('import, list, inspect, history, tag and events', async () => {
    const { images, events } = await setup();
    const id = await importOne(images, { repo: 'example/app', tag: 'v1', changes: ['CMD ["/hello"]', 'LABEL team=core', 'VOLUME /data', 'STOPSIGNAL SIGTERM', 'ENV X=1'] });
    const list = await images.listImages({});
    assert.equal(list.length, 1);
    assert.equal(list[0]!.Id, id);
    assert.deepEqual(list[0]!.RepoTags, ['example/app:v1']);
    assert.match(list[0]!.RepoDigests[0]!, /^example\/app@sha256:[a-f0-9]{64}$/);
    assert.deepEqual(list[0]!.Labels, { team: 'core' });
    assert.equal(list[0]!.Containers, -1);
    assert.ok(list[0]!.Size > 512, 'the uncompressed tar size');
    assert.ok(Math.abs(list[0]!.Created - Date.now() / 1000) < 3600);

    const inspect = await images.inspectImage('example/app:v1');
    assert.equal(inspect.Id, id);
    assert.deepEqual(inspect.Config.Cmd, ['/hello']);
    assert.deepEqual(inspect.Config.Env, ['X=1']);
    assert.deepEqual(inspect.Config.Volumes, { '/data': {} });
    assert.equal(inspect.Config.StopSignal, 'SIGTERM');
    assert.equal(inspect.RootFS.Type, 'layers');
    assert.equal(inspect.RootFS.Layers.length, 1);
    assert.equal(inspect.Os, 'linux');
    assert.deepEqual((await images.inspectImage(id)).Id, id);
    assert.deepEqual((await images.inspectImage(id.slice(7, 19))).Id, id);

    const history = await images.imageHistory('example/app:v1');
    assert.equal(history.length, 1);
    assert.equal(history[0]!.Id, id);
    assert.deepEqual(history[0]!.Tags, ['example/app:v1']);
    assert.equal(history[0]!.Comment, 'Imported from tarball');

    await images.tagImage('example/app:v1', 'localhost:5000/app');
    await images.tagImage(id, 'example/app', 'v2');
    const tags = (await images.listImages({}))[0]!.RepoTags.sort();
    assert.deepEqual(tags, ['example/app:v1', 'example/app:v2', 'localhost:5000/app:latest']);
    assert.deepEqual(
      events.map((e) => [e.Action, e.attributes?.name]),
      [
        ['import', id],
        ['tag', 'localhost:5000/app:latest'],
        ['tag', 'example/app:v2'],
      ],
    );
    await assert.rejects(images.tagImage('example/app:v1', `x@sha256:${'a'.repeat(64)}`), (e) => isBerthError(e, 'InvalidArgument'));
    await assert.rejects(images.inspectImage('nosuch'), (e) => isBerthError(e, 'NotFound') && e.message === 'No such image: nosuch:latest');
  });

  test('list filters', async () => {
    const { images } = await setup();
    const a = await importOne(images, { repo: 'a', changes: ['LABEL x=1'] });
    await new Promise((r) => setTimeout(r, 1100));
    const b = await importOne(images, { repo: 'b', changes: ['LABEL x=2 y=3'] });
    const dangling = await importOne(images, {});
    const ids = async (filters: Record<string, string[]>) => (await images.listImages({ filters })).map((i) => i.Id).sort();
    assert.deepEqual(await ids({ label: ['x'] }), [a, b].sort());
    assert.deepEqual(await ids({ label: ['x=2'] }), [b]);
    assert.deepEqual(await ids({ label: ['x', 'y'] }), [b]);
    assert.deepEqual(await ids({ dangling: ['true'] }), [dangling]);
    assert.deepEqual(await ids({ dangling: ['false'] }), [a, b].sort());
    assert.deepEqual(await ids({ reference: ['a'] }), [a]);
    assert.deepEqual(await ids({ reference: ['a:*', 'b'] }), [a, b].sort());
    assert.deepEqual(await ids({ since: ['a'] }), [b, dangling].sort());
    assert.deepEqual(await ids({ before: ['b'] }), [a]);
    const summary = (await images.listImages({ filters: { dangling: ['true'] } }))[0]!;
    assert.deepEqual(summary.RepoTags, ['<none>:<none>']);
    assert.deepEqual(summary.RepoDigests, ['<none>@<none>']);
    await assert.rejects(images.listImages({ filters: { bogus: ['1'] } }), (e) => isBerthError(e, 'InvalidArgument') && /bogus/.test(e.message));
    await assert.rejects(images.listImages({ filters: { dangling: ['maybe'] } }), (e) => isBerthError(e, 'InvalidArgument'));
  });

  test('reference filter: only the matching tags of an image are shown (docker images busybox:1*)', async () => {
    const { images } = await setup();
    const id = await importOne(images, { repo: 'busybox', tag: '1.36' });
    await images.tagImage(id, 'busybox', '1.35');
    await images.tagImage(id, 'busybox', 'latest');
    await images.tagImage(id, 'localhost:5000/other', 'v1');
    const list = async (reference: string[]) => (await images.listImages({ filters: { reference } })).map((i) => ({ tags: [...i.RepoTags].sort(), digests: i.RepoDigests.map((d) => d.split('@')[0]) }));
    assert.deepEqual(await list(['busybox:1*']), [{ tags: ['busybox:1.35', 'busybox:1.36'], digests: [] }]);
    // The positional of `docker images busybox` is a reference filter on the name: every busybox tag, not the other repository.
    assert.deepEqual(await list(['busybox']), [{ tags: ['busybox:1.35', 'busybox:1.36', 'busybox:latest'], digests: ['busybox'] }]);
    assert.deepEqual(await list(['localhost:5000/*']), [{ tags: ['localhost:5000/other:v1'], digests: ['localhost:5000/other'] }]);
    assert.deepEqual(await list(['busybox:latest', 'localhost:5000/other']), [{ tags: ['busybox:latest', 'localhost:5000/other:v1'], digests: ['localhost:5000/other'] }]);
    assert.deepEqual(await list(['nomatch*']), []);
    // Without the filter every name shows.
    assert.equal((await images.listImages({}))[0]!.RepoTags.length, 4);
  });

  test('a tag moved to another image leaves the old one dangling (as Docker)', async () => {
    const { images } = await setup();
    const first = await importOne(images, { repo: 'app' });
    const second = await importOne(images, { repo: 'app' });
    assert.notEqual(first, second);
    const list = await images.listImages({});
    assert.equal(list.length, 2);
    assert.deepEqual(list.find((i) => i.Id === first)!.RepoTags, ['<none>:<none>']);
    assert.deepEqual(list.find((i) => i.Id === second)!.RepoTags, ['app:latest']);
    // Tagging the dangling image names it again.
    await images.tagImage(first, 'app', 'old');
    assert.deepEqual((await images.listImages({ filters: { dangling: ['true'] } })).length, 0);
  });

  test('remove: untag, delete, conflicts with containers', async () => {
    const users: Record<string, string[]> = {};
    const { images, events } = await setup(users, ['c'.repeat(64)]);
    const id = await importOne(images, { repo: 'app', tag: '1' });
    await images.tagImage('app:1', 'app', '2');

    assert.deepEqual(await images.removeImage('app:2'), [{ Untagged: 'app:2' }]);
    await images.tagImage('app:1', 'app', '2');
    await assert.rejects(images.removeImage(id), (e) => isBerthError(e, 'Conflict') && /referenced in multiple repositories/.test(e.message));

    users[id] = ['b'.repeat(64)];
    await images.removeImage('app:2');
    await assert.rejects(
      images.removeImage('app:1'),
      (e) => isBerthError(e, 'Conflict') && e.message === `conflict: unable to remove repository reference "app:1" (must force) - container bbbbbbbbbbbb is using its referenced image ${id.slice(7, 19)}`,
    );
    await assert.rejects(images.removeImage(id), (e) => isBerthError(e, 'Conflict') && /must be forced\) - image is being used by stopped container bbbbbbbbbbbb/.test(e.message));
    // Forced by name: the name goes, the image stays for the container.
    assert.deepEqual(await images.removeImage('app:1', { force: true }), [{ Untagged: 'app:1' }]);
    assert.equal((await images.inspectImage(id)).Id, id);

    users[id] = ['c'.repeat(64)];
    await assert.rejects(images.removeImage(id, { force: true }), (e) => isBerthError(e, 'Conflict') && /cannot be forced\) - image is being used by running container cccccccccccc/.test(e.message));

    users[id] = [];
    const removed = await images.removeImage(id);
    assert.deepEqual(removed[0], { Deleted: id });
    await assert.rejects(images.inspectImage(id), (e) => isBerthError(e, 'NotFound'));
    assert.ok(events.some((e) => e.Action === 'delete' && e.id === id));
    assert.ok(events.some((e) => e.Action === 'untag' && e.id === id));

    const other = await importOne(images, { repo: 'other' });
    const r = await images.removeImage('other');
    assert.deepEqual(r.slice(0, 2), [{ Untagged: 'other:latest' }, { Deleted: other }]);
    assert.deepEqual(await images.listImages({}), []);
  });

  test('prune: dangling by default, all unused with dangling=false, label and until filters', async () => {
    const users: Record<string, string[]> = {};
    const { images } = await setup(users);
    const dangling = await importOne(images, {});
    const used = await importOne(images, { repo: 'used' });
    const kept = await importOne(images, { repo: 'kept', changes: ['LABEL keep=yes'] });
    const unused = await importOne(images, { repo: 'unused' });
    users[used] = ['d'.repeat(64)];

    let result = await images.pruneImages({});
    assert.deepEqual(result.ImagesDeleted.filter((d) => d.Deleted?.startsWith('sha256:') && d.Deleted === dangling), [{ Deleted: dangling }]);
    assert.ok(result.SpaceReclaimed > 0);
    assert.deepEqual((await images.listImages({})).map((i) => i.Id).sort(), [used, kept, unused].sort());

    result = await images.pruneImages({ dangling: ['false'], 'label!': ['keep'] });
    assert.ok(result.ImagesDeleted.some((d) => d.Untagged === 'unused:latest'));
    assert.deepEqual((await images.listImages({})).map((i) => i.Id).sort(), [used, kept].sort());

    result = await images.pruneImages({ dangling: ['false'], until: ['24h'] });
    assert.deepEqual(result.ImagesDeleted, []);
    await assert.rejects(images.pruneImages({ reference: ['x'] }), (e) => isBerthError(e, 'InvalidArgument'));
  });

  test('save and load round trip, with progress and events', async () => {
    const { images, events } = await setup();
    const id = await importOne(images, { repo: 'saved', tag: 'v1', files: { 'a.txt': 'a\n' } });
    const chunks: Buffer[] = [];
    const out = new PassThrough();
    out.on('data', (c: Buffer) => chunks.push(c));
    await images.saveImages(['saved:v1'], out);
    out.end();
    const archive = Buffer.concat(chunks);
    assert.ok(archive.length > 1024);
    assert.ok(events.some((e) => e.Action === 'save' && e.id === id));

    const other = await setup();
    const messages: ProgressMessage[] = [];
    await other.images.loadImages(Readable.from([archive]), { quiet: true, onProgress: (m) => messages.push(m) });
    assert.deepEqual(messages, [{ stream: 'Loaded image: saved:v1\n' }]);
    assert.equal((await other.images.inspectImage('saved:v1')).Id, id);
    assert.ok(other.events.some((e) => e.Action === 'load' && e.id === id));

    const verbose: ProgressMessage[] = [];
    await other.images.loadImages(Readable.from([archive]), { onProgress: (m) => verbose.push(m) });
    assert.deepEqual(verbose.at(-1), { stream: 'Loaded image: saved:v1\n' });
    await assert.rejects(images.saveImages(['nosuch'], new PassThrough()), (e) => isBerthError(e, 'NotFound'));
  });

  test('resolveForContainer', async () => {
    const { images } = await setup();
    const id = await importOne(images, { repo: 'run/me', changes: ['ENTRYPOINT ["/bin/true"]', 'WORKDIR /w'] });
    const img = await images.resolveForContainer('run/me');
    assert.equal(img.id, id);
    assert.equal(img.name, 'run/me:latest');
    assert.equal(img.ref, 'docker.io/run/me:latest');
    assert.deepEqual(img.config.Entrypoint, ['/bin/true']);
    assert.equal(img.config.WorkingDir, '/w');
    assert.equal(img.chainIds.length, 1);
    const byId = await images.resolveForContainer(id.slice(7, 19));
    assert.equal(byId.name, id);
    assert.equal(byId.ref, 'docker.io/run/me:latest');
    await assert.rejects(images.resolveForContainer('run/me', 'linux/s390x'), (e) => isBerthError(e, 'NotFound') && /does not match the specified platform/.test(e.message));
    assert.equal((await images.resolveForContainer('run/me', `linux/${img.platform.architecture}`)).id, id);
    await assert.rejects(images.resolveForContainer('busybox'), (e) => isBerthError(e, 'NotFound') && e.message === 'No such image: busybox:latest');
  });

  test('import refuses unknown change commands and a tag without repo', async () => {
    const { images } = await setup();
    await assert.rejects(
      images.importImage(Readable.from([rootfsTar({ a: 'b' })]), { changes: ['HEALTHCHECK NONE'], onProgress: () => {} }),
      (e) => isBerthError(e, 'InvalidArgument') && /HEALTHCHECK/.test(e.message),
    );
    await assert.rejects(images.importImage(Readable.from([rootfsTar({ a: 'b' })]), { tag: 'x', onProgress: () => {} }), (e) => isBerthError(e, 'InvalidArgument'));
  });
});
