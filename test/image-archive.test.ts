// Image import and export as root: an image from a busybox directory (every entry kind,
// owners, modes, xattrs), `docker import` of tarballs, Docker archives and OCI layouts
// round-tripping through berth, malformed archives refused with the entry named, and the
// real Docker: `docker load` of a berth-saved image that then runs, and `docker save` of it
// loaded back into berth with the same config digest. Docker runs privately (temp dirs);
// those tests skip when docker, dockerd or containerd are not installed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, createReadStream, createWriteStream, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { isBerthError } from '../src/errors.js';
import { lsetxattr } from '../src/host/sys.js';
import { loadDockerArchive, saveDockerArchive } from '../src/image/archive/docker-archive.js';
import { imageFromDirectory } from '../src/image/archive/from-directory.js';
import { importRootfsTarball } from '../src/image/archive/import-rootfs.js';
import { loadOciLayout, saveOciLayout, type ArchiveStores } from '../src/image/archive/oci-layout.js';
import { parseImageConfig, parseManifest } from '../src/image/image-config.js';
import { ContentStore } from '../src/image/store/content-store.js';
import { ImageStore } from '../src/image/store/image-store.js';
import { LeaseStore } from '../src/image/store/leases.js';
import type { Descriptor, ImageConfig, ImageManifest } from '../src/image/types.js';
import { decompress } from '../src/image/unpack/decompress.js';
import { readTar, TarWriter, type TarEntry } from '../src/image/unpack/tar.js';
import { dockerSkipReason, startDocker, type PrivateDocker } from './helpers/dockerd.js';
import { show } from './helpers/runtime.js';

const ROOT_SKIP: string | false = process.getuid?.() !== 0 ? 'needs root' : false;
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'echo', 'cat', 'ls', 'true', 'id'];
const CAPABILITY = Buffer.from('0100000200040000000000000000000000000000', 'hex'); // v2, cap_net_raw effective+permitted

let work = '';
let storeCount = 0;

function stores(): ArchiveStores {
  const root = join(work, `store-${++storeCount}`);
  return { content: new ContentStore(root), images: new ImageStore(root), leases: new LeaseStore(root) };
}

/** A busybox tree with one of each entry kind, odd owners and modes, and xattrs. */
function busyboxTree(dir: string): void {
  for (const d of ['bin', 'etc', 'dev', 'tmp', 'srv/data']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync(BUSYBOX, join(dir, 'bin', 'busybox'));
  chmodSync(join(dir, 'bin', 'busybox'), 0o755);
  for (const a of APPLETS) symlinkSync('busybox', join(dir, 'bin', a));
  writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(dir, 'srv', 'data', 'owned'), 'owned by 1000:2000\n');
  chownSync(join(dir, 'srv', 'data', 'owned'), 1000, 2000);
  writeFileSync(join(dir, 'srv', 'setuid'), '#!/bin/sh\n');
  chmodSync(join(dir, 'srv', 'setuid'), 0o4755);
  linkSync(join(dir, 'srv', 'data', 'owned'), join(dir, 'srv', 'hardlink'));
  chmodSync(join(dir, 'tmp'), 0o1777);
  execFileSync('mknod', [join(dir, 'dev', 'null'), 'c', '1', '3']);
  execFileSync('mknod', [join(dir, 'dev', 'loop9'), 'b', '7', '9']);
  execFileSync('mkfifo', [join(dir, 'srv', 'fifo')]);
  lsetxattr(join(dir, 'srv', 'setuid'), 'security.capability', CAPABILITY);
  lsetxattr(join(dir, 'etc', 'passwd'), 'user.berth.test', Buffer.from('yes'));
  utimesSync(join(dir, 'etc', 'passwd'), 1_600_000_000, 1_600_000_000);
}

async function layerEntries(s: ArchiveStores, layer: Descriptor): Promise<Map<string, TarEntry>> {
  const out = new Map<string, TarEntry>();
  for await (const { entry, body } of readTar(decompress(s.content.read(layer.digest)))) {
    out.set(entry.name, entry);
    body.resume();
  }
  return out;
}

async function manifestOf(s: ArchiveStores, digest: string): Promise<ImageManifest> {
  return parseManifest(await s.content.readBuffer(digest), digest);
}

async function configOf(s: ArchiveStores, m: ImageManifest): Promise<ImageConfig> {
  return parseImageConfig(await s.content.readBuffer(m.config.digest), m.config.digest);
}

async function saveTo(file: string, write: (out: Writable) => Promise<void>): Promise<string> {
  await write(createWriteStream(file));
  return file;
}

/** A tar of the given entries (bodies as strings or buffers). */
async function tarOf(entries: Array<{ name: string; body?: string | Buffer; type?: TarEntry['type']; linkname?: string }>): Promise<Buffer> {
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  const collecting = (async () => {
    for await (const c of w as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const e of entries) {
    const body = typeof e.body === 'string' ? Buffer.from(e.body) : e.body;
    await w.add({ name: e.name, type: e.type ?? 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: body?.length ?? 0, linkname: e.linkname }, body);
  }
  await w.finish();
  await collecting;
  return Buffer.concat(chunks);
}

function sha256(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

async function rejectsWith(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isBerthError(err, 'InvalidArgument'), `expected InvalidArgument, got ${String(err)}`);
    assert.match((err as Error).message, re);
    return true;
  });
}

let treeDir = '';
let source: ArchiveStores;
let busyboxDigest = '';

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'berth-test-archive-'));
  if (ROOT_SKIP) return;
  treeDir = join(work, 'rootfs');
  busyboxTree(treeDir);
  source = stores();
  const img = await imageFromDirectory(treeDir, source, { name: 'berth-test/busybox:1', config: { Cmd: ['sh'], Env: ['PATH=/bin'] } });
  busyboxDigest = img.digest;
});

after(() => {
  rmSync(work, { recursive: true, force: true });
});

test('imageFromDirectory: every entry kind, owner, mode, mtime and xattr; deterministic', { skip: ROOT_SKIP }, async () => {
  const record = await source.images.get('docker.io/berth-test/busybox:1');
  assert.equal(record?.target.digest, busyboxDigest);
  const m = await manifestOf(source, busyboxDigest);
  assert.equal(m.layers.length, 1);
  assert.equal(m.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  const config = await configOf(source, m);
  assert.deepEqual(config.config?.Cmd, ['sh']);
  assert.equal(config.os, 'linux');
  assert.equal(config.rootfs.diff_ids.length, 1);
  assert.equal(config.history?.length, 1);

  const entries = await layerEntries(source, m.layers[0]!);
  assert.equal(entries.get('bin/busybox')?.type, 'file');
  assert.equal(entries.get('bin/busybox')?.mode, 0o755);
  assert.equal(entries.get('bin/sh')?.type, 'symlink');
  assert.equal(entries.get('bin/sh')?.linkname, 'busybox');
  assert.equal(entries.get('srv/setuid')?.mode, 0o4755);
  assert.deepEqual(entries.get('srv/setuid')?.xattrs?.['security.capability'], CAPABILITY);
  assert.deepEqual(entries.get('etc/passwd')?.xattrs?.['user.berth.test'], Buffer.from('yes'));
  assert.equal(entries.get('etc/passwd')?.mtime, 1_600_000_000);
  assert.equal(entries.get('srv/data/owned')?.uid, 1000);
  assert.equal(entries.get('srv/data/owned')?.gid, 2000);
  const links = ['srv/data/owned', 'srv/hardlink'].map((n) => entries.get(n)!);
  assert.deepEqual(links.map((e) => e.type), ['file', 'hardlink']);
  assert.equal(links[1]!.linkname, 'srv/data/owned');
  assert.equal(entries.get('dev/null')?.type, 'char');
  assert.deepEqual([entries.get('dev/null')?.devmajor, entries.get('dev/null')?.devminor], [1, 3]);
  assert.equal(entries.get('dev/loop9')?.type, 'block');
  assert.deepEqual([entries.get('dev/loop9')?.devmajor, entries.get('dev/loop9')?.devminor], [7, 9]);
  assert.equal(entries.get('srv/fifo')?.type, 'fifo');
  assert.equal(entries.get('tmp/')?.mode, 0o1777);
  const names = [...entries.keys()];
  assert.deepEqual(names, [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))), 'entries in bytewise order');

  const again = await imageFromDirectory(treeDir, stores(), { name: 'x:1', created: config.created });
  assert.equal(again.diffId, config.rootfs.diff_ids[0], 'the same tree gives the same diffID');
  assert.equal(again.layer.digest, m.layers[0]!.digest, 'and the same compressed layer');
});

test('docker archive: save → load within berth keeps config and layers; a second save is identical', { skip: ROOT_SKIP }, async () => {
  const file = await saveTo(join(work, 'bb.docker.tar'), (out) => saveDockerArchive(['berth-test/busybox:1'], source, out));
  const listing = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const f of ['manifest.json', 'index.json', 'oci-layout', 'repositories']) assert.ok(listing.includes(f), `${f} in ${listing.join(' ')}`);
  const target = stores();
  const loaded = await loadDockerArchive(createReadStream(file), target);
  assert.equal(loaded.images.length, 1);
  assert.equal(loaded.images[0]!.name, 'docker.io/berth-test/busybox:1');
  const m1 = await manifestOf(source, busyboxDigest);
  const m2 = await manifestOf(target, loaded.images[0]!.digest);
  assert.equal(m2.config.digest, m1.config.digest);
  assert.equal(m2.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar', 'the archive carries the layer uncompressed');
  const config = await configOf(source, m1);
  assert.equal(m2.layers[0]!.digest, config.rootfs.diff_ids[0]);
  const file2 = await saveTo(join(work, 'bb2.docker.tar'), (out) => saveDockerArchive(['berth-test/busybox:1'], target, out));
  assert.equal(sha256(readFileSync(file2)), sha256(readFileSync(file)), 'saving the loaded image gives the same bytes');
  const again = await loadDockerArchive(createReadStream(file2), target);
  assert.equal(again.images[0]!.digest, loaded.images[0]!.digest);
});

test('docker archive: several names, untagged by digest, shared layers written once', { skip: ROOT_SKIP }, async () => {
  await source.images.put({ name: 'docker.io/berth-test/busybox:alias', target: (await source.images.get('docker.io/berth-test/busybox:1'))!.target });
  const file = await saveTo(join(work, 'multi.tar'), (out) =>
    saveDockerArchive(['berth-test/busybox:1', 'berth-test/busybox:alias', `berth-test/busybox@${busyboxDigest}`], source, out),
  );
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], { encoding: 'utf8' })) as Array<{ RepoTags: string[] }>;
  assert.equal(manifest.length, 1);
  assert.deepEqual(manifest[0]!.RepoTags, ['berth-test/busybox:1', 'berth-test/busybox:alias']);
  const loaded = await loadDockerArchive(createReadStream(file), stores());
  assert.deepEqual(loaded.images.map((i) => i.name), ['docker.io/berth-test/busybox:1', 'docker.io/berth-test/busybox:alias']);
  await assert.rejects(saveDockerArchive(['nope:1'], source, createWriteStream(join(work, 'nope.tar'))), (e: unknown) => isBerthError(e, 'NotFound'));
});

test('OCI layout: directory and tar round trips keep the manifest digest', { skip: ROOT_SKIP }, async () => {
  const dir = join(work, 'layout');
  await saveOciLayout(['berth-test/busybox:1'], source, { dir });
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  assert.equal(index.manifests[0]!.annotations?.['io.containerd.image.name'], 'docker.io/berth-test/busybox:1');
  assert.equal(index.manifests[0]!.annotations?.['org.opencontainers.image.ref.name'], '1');
  const fromDir = await loadOciLayout(dir, stores());
  assert.deepEqual(fromDir.images, [{ name: 'docker.io/berth-test/busybox:1', digest: busyboxDigest }]);

  const tar = await saveTo(join(work, 'layout.tar'), (out) => saveOciLayout(['berth-test/busybox:1'], source, { tar: out }));
  const fromFile = await loadOciLayout(tar, stores());
  assert.deepEqual(fromFile.images, [{ name: 'docker.io/berth-test/busybox:1', digest: busyboxDigest }]);
  const fromStream = await loadOciLayout(createReadStream(tar), stores(), { name: 'other/name:2' });
  assert.deepEqual(fromStream.images, [{ name: 'docker.io/berth-test/busybox:1', digest: busyboxDigest }], 'a full name annotation wins');
  // The same tar through the Docker loader (Docker ≥ 25 accepts OCI layouts too).
  const viaDocker = await loadDockerArchive(createReadStream(tar), stores());
  assert.equal(viaDocker.images[0]!.digest, busyboxDigest);

  // A blob whose bytes do not match its name is refused.
  const m = await manifestOf(source, busyboxDigest);
  const configFile = join(dir, 'blobs', 'sha256', m.config.digest.slice(7));
  const original = readFileSync(configFile);
  writeFileSync(configFile, Buffer.from(original.toString('utf8').replace('"linux"', '"linuX"')));
  try {
    await rejectsWith(loadOciLayout(dir, stores()), /digest mismatch/);
  } finally {
    writeFileSync(configFile, original);
  }
});

test('import: plain, gzip and zstd tarballs with changes; not a tar is refused', { skip: ROOT_SKIP }, async () => {
  const plain = join(work, 'rootfs.tar');
  execFileSync('tar', ['-C', treeDir, '--xattrs', '-cf', plain, '.']);
  execFileSync('gzip', ['-k', '-f', plain]);
  execFileSync('zstd', ['-q', '-f', plain, '-o', `${plain}.zst`]);
  const s = stores();
  const results = [];
  for (const f of [plain, `${plain}.gz`, `${plain}.zst`]) {
    results.push(
      await importRootfsTarball(createReadStream(f), s, {
        name: 'imported:latest',
        changes: { Cmd: ['/bin/sh'], Env: ['A=1'], ExposedPorts: { '80': {} }, WorkingDir: '/srv', Labels: { a: 'b' } },
        message: 'from a test',
        created: '2024-01-01T00:00:00Z',
      }),
    );
  }
  assert.equal(new Set(results.map((r) => r.diffId)).size, 1, 'the same diffID whatever the compression');
  assert.equal(new Set(results.map((r) => r.digest)).size, 1, 'and, with a fixed time, the same image');
  assert.equal(results[0]!.diffId, sha256(readFileSync(plain)));
  const m = await manifestOf(s, results[0]!.digest);
  const config = await configOf(s, m);
  assert.deepEqual(config.config, { Cmd: ['/bin/sh'], Env: ['A=1'], WorkingDir: '/srv', ExposedPorts: { '80/tcp': {} }, Labels: { a: 'b' } });
  assert.equal(config.history?.[0]?.comment, 'from a test');
  assert.equal((await s.images.get('docker.io/library/imported:latest'))?.target.digest, results[0]!.digest);
  assert.equal((await layerEntries(s, m.layers[0]!)).get('./bin/busybox')?.mode, 0o755);

  await rejectsWith(importRootfsTarball(Readable.from([Buffer.alloc(4096, 'x')]), s), /import: tarball/);
  await rejectsWith(importRootfsTarball(createReadStream(plain), s, { changes: { Env: ['NOEQUALS'] } }), /Env\[0\]/);
});

test('malformed docker archives are refused, naming the entry', { skip: ROOT_SKIP }, async () => {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256('layer')] } }));
  const configName = `${sha256(config).slice(7)}.json`;
  const manifest = (layers: string[]) => JSON.stringify([{ Config: configName, RepoTags: ['bad:1'], Layers: layers }]);
  const load = (b: Buffer) => loadDockerArchive(Readable.from([b]), stores());

  await rejectsWith(load(await tarOf([{ name: configName, body: config }, { name: 'x/layer.tar', body: 'layer' }])), /manifest\.json is missing/);
  await rejectsWith(load(await tarOf([{ name: 'manifest.json', body: manifest(['x/layer.tar']) }, { name: configName, body: config }])), /layer "x\/layer\.tar" is not in the archive/);
  await rejectsWith(
    load(await tarOf([{ name: 'manifest.json', body: manifest(['x/layer.tar']) }, { name: configName, body: config }, { name: '../evil', body: 'x' }])),
    /"\.\.\/evil" has a "\.\." component/,
  );
  await rejectsWith(load(await tarOf([{ name: 'manifest.json', body: manifest(['../x/layer.tar']) }, { name: configName, body: config }])), /Layers\[0\].*"\.\.\/x\/layer\.tar"/);
  await rejectsWith(
    load(await tarOf([{ name: 'x/layer.tar', body: 'other' }, { name: configName, body: config }, { name: 'manifest.json', body: manifest(['x/layer.tar']) }])),
    /layer "x\/layer\.tar" has diffID sha256:[0-9a-f]{64}, but config .* says/,
  );
  await rejectsWith(
    load(await tarOf([{ name: 'manifest.json', body: manifest(['x/layer.tar']) }, { name: configName, body: config }, { name: 'x/layer.tar', type: 'symlink', linkname: '../../etc/passwd' }])),
    /link target "\.\.\/\.\.\/etc\/passwd" is outside the archive/,
  );
  await rejectsWith(load(await tarOf([{ name: `blobs/sha256/${'0'.repeat(64)}`, body: 'not that' }])), /tar entry "blobs\/sha256\/0+": digest mismatch/);
  await rejectsWith(load(Buffer.from('definitely not a tar archive, but long enough to look like a header'.repeat(20))), /docker archive/);
  // The layer in the good case loads (so the refusals above are about what they say).
  const good = await load(await tarOf([{ name: 'x/layer.tar', body: 'layer' }, { name: configName, body: config }, { name: 'manifest.json', body: manifest(['x/layer.tar']) }]));
  assert.equal(good.images[0]!.name, 'docker.io/library/bad:1');
});

// --- the real Docker ---

const DOCKER_SKIP = ROOT_SKIP || dockerSkipReason();
if (DOCKER_SKIP) process.stderr.write(`image-archive.test: docker round trip skipped: ${DOCKER_SKIP}\n`);

test('real docker: docker load of a berth-saved image runs; docker save loads back into berth', { skip: DOCKER_SKIP }, async () => {
  let dockerd: PrivateDocker | undefined;
  let problems: string[] = [];
  try {
    dockerd = await startDocker({ label: 'archive' });
    const file = await saveTo(join(work, 'for-docker.tar'), (out) => saveDockerArchive(['berth-test/busybox:1'], source, out));
    const load = await dockerd.docker(['load', '-i', file]);
    assert.equal(load.code, 0, show(load));
    assert.match(load.stdout, /Loaded image: berth-test\/busybox:1/, show(load));
    const m = await manifestOf(source, busyboxDigest);
    const inspect = await dockerd.docker(['image', 'inspect', '-f', '{{.Id}}', 'berth-test/busybox:1']);
    assert.equal(inspect.stdout.trim(), m.config.digest, 'Docker gives the image our config digest as its ID');
    const run = await dockerd.docker(['run', '--rm', '--network', 'none', 'berth-test/busybox:1', 'echo', 'ok']);
    assert.equal(run.code, 0, show(run));
    assert.equal(run.stdout, 'ok\n');

    const saved = join(work, 'from-docker.tar');
    const save = await dockerd.docker(['save', '-o', saved, 'berth-test/busybox:1']);
    assert.equal(save.code, 0, show(save));
    const target = stores();
    const loaded = await loadDockerArchive(createReadStream(saved), target);
    assert.equal(loaded.images.length, 1);
    assert.equal(loaded.images[0]!.name, 'docker.io/berth-test/busybox:1');
    const back = await manifestOf(target, loaded.images[0]!.digest);
    assert.equal(back.config.digest, m.config.digest, 'the same config digest after docker save');
    const config = await configOf(target, back);
    assert.deepEqual(back.layers.map((l) => l.digest), config.rootfs.diff_ids);

    // And an image Docker made itself (docker import) comes across too.
    if (existsSync(join(work, 'rootfs.tar'))) {
      const imp = await dockerd.docker(['import', '-c', 'CMD ["sh"]', join(work, 'rootfs.tar'), 'docker-made:1']);
      assert.equal(imp.code, 0, show(imp));
      const saved2 = join(work, 'docker-made.tar');
      assert.equal((await dockerd.docker(['save', '-o', saved2, 'docker-made:1'])).code, 0);
      const got = await loadDockerArchive(createReadStream(saved2), target);
      assert.equal(got.images[0]!.name, 'docker.io/library/docker-made:1');
      const gm = await manifestOf(target, got.images[0]!.digest);
      assert.deepEqual((await configOf(target, gm)).config?.Cmd, ['sh']);
    }
  } finally {
    if (dockerd) problems = await dockerd.stop();
  }
  assert.deepEqual(problems, [], 'the private docker left things behind');
});

test('no temp dirs left by archive operations', { skip: ROOT_SKIP }, () => {
  const left = readdirSync(tmpdir()).filter((n) => /^berth-(archive|save|layer)-/.test(n));
  assert.deepEqual(left, []);
});
