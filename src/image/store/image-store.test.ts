import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { isBerthError } from '../../errors.js';
import { sha256Digest } from '../digest.js';
import { MediaType, type Descriptor } from '../types.js';
import { ImageStore } from './image-store.js';

function tempRoot(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-images-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function desc(content: string): Descriptor {
  return { mediaType: MediaType.ociManifest, digest: sha256Digest(content), size: content.length };
}

test('put/get/list/delete round trip; names become safe file names', async (t) => {
  const root = tempRoot(t);
  const store = new ImageStore(root);
  const names = [
    'docker.io/library/busybox:latest',
    `[::1]:5000/a/b:t@${sha256Digest('x')}`,
    'h:5000/a/b:t',
  ];
  for (const [i, name] of names.entries()) await store.put({ name, target: desc(String(i)), labels: { n: String(i) } });
  const files = readdirSync(join(root, 'images'));
  assert.equal(files.length, 3);
  for (const f of files) assert.match(f, /^[A-Za-z0-9%._~!*'()-]+\.json$/);
  assert.equal(basename(store.file(names[0]!)), 'docker.io%2Flibrary%2Fbusybox%3Alatest.json');
  const rec = await store.get(names[1]!);
  assert.equal(rec?.name, names[1]);
  assert.deepEqual(rec?.target, desc('1'));
  assert.deepEqual(rec?.labels, { n: '1' });
  assert.deepEqual((await store.list()).map((r) => r.name), [...names].sort());
  assert.equal(await store.get('docker.io/library/other:latest'), undefined);
  assert.equal(await store.delete(names[0]!), true);
  assert.equal(await store.delete(names[0]!), false);
  assert.equal(await store.get(names[0]!), undefined);
  assert.equal((await store.list()).length, 2);
});

test('put keeps createdAt of an existing record and moves updatedAt', async (t) => {
  const store = new ImageStore(tempRoot(t));
  const name = 'docker.io/library/alpine:3';
  const first = await store.put({ name, target: desc('a') });
  await new Promise((r) => setTimeout(r, 5));
  const second = await store.put({ name, target: desc('b') });
  assert.equal(second.createdAt, first.createdAt);
  assert.ok(second.updatedAt > first.updatedAt);
  assert.deepEqual((await store.get(name))?.target, desc('b'));
  const [x, y] = await Promise.all([store.put({ name, target: desc('c') }), store.put({ name, target: desc('d') })]);
  assert.equal(x.createdAt, first.createdAt);
  assert.equal(y.createdAt, first.createdAt);
});

test('very long names are stored under a hash and still listed by name', async (t) => {
  const root = tempRoot(t);
  const store = new ImageStore(root);
  const name = `registry.example.com:5000/${'a/'.repeat(120)}x:${'t'.repeat(128)}`;
  await store.put({ name, target: desc('long') });
  const [file] = readdirSync(join(root, 'images'));
  assert.match(file!, /^sha256-[0-9a-f]{64}\.json$/);
  assert.equal((await store.get(name))?.name, name);
  assert.deepEqual((await store.list()).map((r) => r.name), [name]);
});

test('put validates the name and the descriptor', async (t) => {
  const store = new ImageStore(tempRoot(t));
  await assert.rejects(store.put({ name: '', target: desc('a') }), (e) => isBerthError(e, 'InvalidArgument'));
  await assert.rejects(store.put({ name: 'x/y:z', target: { ...desc('a'), digest: 'sha256:123' } }), (e) => isBerthError(e, 'InvalidArgument') && /digest/.test(e.message));
  await assert.rejects(store.put({ name: 'x/y:z', target: { ...desc('a'), size: -1 } }), (e) => isBerthError(e, 'InvalidArgument') && /size/.test(e.message));
});

test('an unreadable record is reported by scan, skipped by list, an error for get', async (t) => {
  const root = tempRoot(t);
  const store = new ImageStore(root);
  await store.put({ name: 'docker.io/library/ok:1', target: desc('ok') });
  mkdirSync(join(root, 'images'), { recursive: true });
  writeFileSync(store.file('docker.io/library/bad:1'), '{"name": "docker.io/libr');
  writeFileSync(join(root, 'images', '.docker.io%2Flibrary%2Fok%3A1.json.123.tmp'), 'temp of an atomic write');
  const { records, problems } = await store.scan();
  assert.deepEqual(records.map((r) => r.name), ['docker.io/library/ok:1']);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!.reason, /not JSON/);
  assert.deepEqual((await store.list()).map((r) => r.name), ['docker.io/library/ok:1']);
  await assert.rejects(store.get('docker.io/library/bad:1'), (e) => isBerthError(e, 'Internal'));
});
