import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBerthError } from '../../errors.js';
import { LeaseStore, leaseLive, type LeaseRecord } from './leases.js';

function tempRoot(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-leases-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a lease records its resources on disk until released', async (t) => {
  const root = tempRoot(t);
  const store = new LeaseStore(root);
  const lease = await store.create();
  const file = join(root, 'leases', `${lease.id}.json`);
  lease.add({ type: 'content', id: 'sha256:' + 'a'.repeat(64) });
  lease.add({ type: 'snapshot', id: 'sha256:' + 'b'.repeat(64) });
  lease.add({ type: 'content', id: 'sha256:' + 'a'.repeat(64) });
  const onDisk = JSON.parse(readFileSync(file, 'utf8')) as LeaseRecord;
  assert.equal(onDisk.id, lease.id);
  assert.equal(onDisk.owner.pid, process.pid);
  assert.deepEqual(onDisk.resources, [
    { type: 'content', id: 'sha256:' + 'a'.repeat(64) },
    { type: 'snapshot', id: 'sha256:' + 'b'.repeat(64) },
  ]);
  assert.deepEqual(await store.get(lease.id), onDisk);
  assert.deepEqual((await store.list()).map((l) => l.id), [lease.id]);
  assert.equal(leaseLive(onDisk), true);
  await lease.release();
  await lease.release();
  assert.equal(existsSync(file), false);
  assert.throws(() => lease.add({ type: 'content', id: 'x' }), /after release/);
  assert.deepEqual(await store.list(), []);
});

test('createLease(id, {expiresAt}); ids are unique and validated', async (t) => {
  const store = new LeaseStore(tempRoot(t));
  const expires = new Date(Date.now() + 3600_000);
  const lease = await store.createLease('pull-1', { expiresAt: expires });
  assert.equal(lease.id, 'pull-1');
  const rec = (await store.get('pull-1'))!;
  assert.equal(rec.expiresAt, expires.toISOString());
  assert.equal(leaseLive(rec), true);
  assert.equal(leaseLive(rec, new Date(expires.getTime() + 1)), false);
  await assert.rejects(store.createLease('pull-1'), (e) => isBerthError(e, 'AlreadyExists'));
  await assert.rejects(store.createLease('../x'), (e) => isBerthError(e, 'InvalidArgument'));
  await assert.rejects(store.create({ expiresAt: 'soon' }), (e) => isBerthError(e, 'InvalidArgument'));
  assert.equal(await store.delete('pull-1'), true);
  assert.equal(await store.delete('pull-1'), false);
});

test('a lease without expiry dies with its process', () => {
  const done = spawnSync('true');
  const rec: LeaseRecord = { id: 'x', createdAt: new Date().toISOString(), owner: { pid: done.pid! }, resources: [] };
  assert.equal(leaseLive(rec), false);
  assert.equal(leaseLive({ ...rec, expiresAt: new Date(Date.now() + 60_000).toISOString() }), true, 'an expiry outlives the process');
});
