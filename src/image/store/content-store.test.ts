import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isBerthError } from '../../errors.js';
import { readProcStat } from '../../host/proc.js';
import { ContentStore, type BlobOpener } from './content-store.js';

function tempRoot(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-content-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function digestOf(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

interface SourceOptions {
  chunk?: number;
  /** Stop producing (without ending) at this byte; onStall runs once. */
  stallAt?: number;
  onStall?(): void;
  /** Fail with a network-like error at this byte. */
  failAt?: number;
  /** Bytes to append past the data (a server sending too much). */
  extra?: number;
  /** End cleanly at this byte (a truncated response). */
  endAt?: number;
  produced?: { bytes: number };
}

/** A pull-based stream of data from `offset`, as an HTTP body would be. */
function source(data: Buffer, offset: number, o: SourceOptions = {}): Readable {
  const chunk = o.chunk ?? 64 * 1024;
  const total = data.length + (o.extra ?? 0);
  let pos = offset;
  let stalled = false;
  return new Readable({
    highWaterMark: chunk,
    read() {
      if (o.failAt !== undefined && pos >= o.failAt) {
        this.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
        return;
      }
      if (o.stallAt !== undefined && pos >= o.stallAt) {
        if (!stalled) {
          stalled = true;
          setImmediate(() => o.onStall?.());
        }
        return;
      }
      const end = Math.min(total, o.endAt ?? total, pos + chunk, o.stallAt ?? Infinity, o.failAt ?? Infinity);
      if (pos >= end) {
        this.push(null);
        return;
      }
      const out = end <= data.length ? data.subarray(pos, end) : Buffer.concat([data.subarray(pos, Math.min(end, data.length)), Buffer.alloc(end - Math.max(pos, data.length), 1)]);
      pos = end;
      if (o.produced) o.produced.bytes += out.length;
      this.push(out);
    },
  });
}

function opener(data: Buffer, offsets: number[], o: SourceOptions = {}): BlobOpener {
  return async (offset) => {
    offsets.push(offset);
    return source(data, offset, o);
  };
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function blobFiles(root: string): string[] {
  const dir = join(root, 'blobs', 'sha256');
  return existsSync(dir) ? readdirSync(dir) : [];
}

function ingestEntries(root: string): string[] {
  const dir = join(root, 'ingest');
  return existsSync(dir) ? readdirSync(dir) : [];
}

test('put commits a verified blob under blobs/<alg>/<hex>; has/info/read/readBuffer/list/delete', async (t) => {
  const root = tempRoot(t);
  const cs = new ContentStore(root);
  const data = Buffer.from('{"hello":"world"}');
  const digest = digestOf(data);
  assert.equal(await cs.has(digest), false);
  await cs.put({ digest, size: data.length }, data);
  await cs.put({ digest }, data.toString()); // idempotent, string accepted
  assert.equal(cs.path(digest), join(root, 'blobs', 'sha256', digest.slice(7)));
  assert.deepEqual(readFileSync(cs.path(digest)), data);
  assert.deepEqual(await cs.info(digest), { digest, size: data.length });
  assert.deepEqual(await cs.readBuffer(digest), data);
  assert.deepEqual(await collect(cs.read(digest)), data);
  assert.deepEqual(await collect(cs.read(digest, { start: 3 })), data.subarray(3));
  const listed = [];
  for await (const b of cs.list()) listed.push(b);
  assert.deepEqual(listed, [{ digest, size: data.length }]);
  assert.deepEqual(ingestEntries(root), [], 'no temp file left');
  await cs.delete(digest);
  await cs.delete(digest);
  assert.equal(await cs.has(digest), false);
  assert.throws(() => cs.read(digest), (e) => isBerthError(e, 'NotFound'));
  await assert.rejects(cs.readBuffer(digest), (e) => isBerthError(e, 'NotFound'));
});

test('put refuses a wrong digest or size and stores nothing', async (t) => {
  const root = tempRoot(t);
  const cs = new ContentStore(root);
  const data = Buffer.from('abc');
  const wrong = digestOf(Buffer.from('abd'));
  await assert.rejects(cs.put({ digest: wrong }, data, { source: 'registry x' }), (e) => {
    assert.ok(isBerthError(e, 'InvalidArgument'));
    assert.equal(e.message, `blob ${wrong} from registry x: digest mismatch (got ${digestOf(data)})`);
    return true;
  });
  await assert.rejects(cs.put({ digest: digestOf(data), size: 4 }, data), /size mismatch/);
  await assert.rejects(cs.put({ digest: 'sha256:nothex' }, data), (e) => isBerthError(e, 'InvalidArgument'));
  assert.deepEqual(blobFiles(root), []);
});

test('readBuffer detects a blob corrupted on disk', async (t) => {
  const cs = new ContentStore(tempRoot(t));
  const data = Buffer.from('original');
  const digest = digestOf(data);
  await cs.put({ digest }, data);
  writeFileSync(cs.path(digest), 'tampered');
  await assert.rejects(cs.readBuffer(digest), (e) => isBerthError(e, 'Internal') && /corrupt/.test(e.message));
});

test('ingest streams, verifies and commits; progress and consume see every byte', async (t) => {
  const root = tempRoot(t);
  const cs = new ContentStore(root);
  const data = randomBytes(700_000);
  const digest = digestOf(data);
  const offsets: number[] = [];
  const progress: number[] = [];
  let consumed: Buffer | undefined;
  await cs.ingest({ digest, size: data.length }, opener(data, offsets, { chunk: 50_000 }), {
    onProgress: (done, total) => {
      assert.equal(total, data.length);
      progress.push(done);
    },
    consume: async (s) => {
      consumed = await collect(s);
    },
  });
  assert.deepEqual(offsets, [0]);
  assert.deepEqual(consumed, data);
  assert.equal(progress.at(-1), data.length);
  assert.deepEqual(readFileSync(cs.path(digest)), data);
  assert.deepEqual(ingestEntries(root), [], 'ingest dir removed after commit');

  // Present already: no download, consume reads the stored blob.
  let again: Buffer | undefined;
  await cs.ingest({ digest, size: data.length }, opener(data, offsets), { consume: async (s) => void (again = await collect(s)) });
  assert.deepEqual(offsets, [0]);
  assert.deepEqual(again, data);
  await assert.rejects(cs.ingest({ digest, size: data.length + 1 }, opener(data, offsets)), /size mismatch/);
});

test('ingest: a digest mismatch fails, commits nothing and discards the partial', async (t) => {
  const root = tempRoot(t);
  const cs = new ContentStore(root);
  const data = randomBytes(200_000);
  const served = Buffer.from(data);
  served[1000] ^= 0xff;
  const digest = digestOf(data);
  await assert.rejects(cs.ingest({ digest, size: data.length }, opener(served, []), { source: 'http://127.0.0.1:5000/v2/x/blobs/' + digest }), (e) => {
    assert.ok(isBerthError(e, 'InvalidArgument'));
    assert.equal(e.message, `blob ${digest} from http://127.0.0.1:5000/v2/x/blobs/${digest}: digest mismatch (got ${digestOf(served)})`);
    return true;
  });
  assert.deepEqual(blobFiles(root), []);
  assert.deepEqual(ingestEntries(root), [], 'partial discarded');
});

test('ingest: more bytes than expected fail early and the partial is discarded', async (t) => {
  const root = tempRoot(t);
  const cs = new ContentStore(root);
  const data = randomBytes(100_000);
  const produced = { bytes: 0 };
  await assert.rejects(
    cs.ingest({ digest: digestOf(data), size: data.length }, opener(data, [], { extra: 50_000_000, chunk: 16_384, produced })),
    (e) => isBerthError(e, 'InvalidArgument') && /more than the expected 100000 bytes/.test(e.message),
  );
  assert.ok(produced.bytes < 1_000_000, `stopped early (read ${produced.bytes} bytes)`);
  assert.deepEqual(blobFiles(root), []);
  assert.deepEqual(ingestEntries(root), []);
});

test('ingest: a truncated body keeps the partial; a descriptor size larger than the content is a mismatch', async (t) => {
  const root = tempRoot(t);
  const cs = new ContentStore(root);
  const data = randomBytes(300_000);
  const digest = digestOf(data);
  await assert.rejects(cs.ingest({ digest, size: data.length }, opener(data, [], { endAt: 100_000 })), (e) => isBerthError(e, 'Unavailable') && /ended after 100000 of 300000/.test(e.message));
  assert.equal(statSync(join(root, 'ingest', `sha256-${digest.slice(7)}`, 'data')).size, 100_000);
  const offsets: number[] = [];
  await cs.ingest({ digest, size: data.length }, opener(data, offsets));
  assert.deepEqual(offsets, [100_000]);
  assert.deepEqual(readFileSync(cs.path(digest)), data);

  const small = randomBytes(1000);
  await assert.rejects(cs.ingest({ digest: digestOf(small), size: 2000 }, opener(small, [])), (e) => isBerthError(e, 'InvalidArgument') && /size mismatch: the content has 1000 bytes/.test(e.message));
  assert.deepEqual(ingestEntries(root), []);
});

test('ingest: an abort keeps the partial; the next ingest resumes from its length and consume still gets byte 0 on', async (t) => {
  const root = tempRoot(t);
  const cs = new ContentStore(root);
  const data = randomBytes(1_000_000);
  const digest = digestOf(data);
  const ac = new AbortController();
  await assert.rejects(
    cs.ingest({ digest, size: data.length }, opener(data, [], { chunk: 32_768, stallAt: 600_000, onStall: () => ac.abort() }), { signal: ac.signal }),
    (e) => (e as Error).name === 'AbortError',
  );
  const partial = join(root, 'ingest', `sha256-${digest.slice(7)}`, 'data');
  const kept = statSync(partial).size;
  assert.ok(kept > 0 && kept <= 600_000, `partial of ${kept} bytes kept`);
  assert.ok(!existsSync(join(root, 'ingest', `sha256-${digest.slice(7)}`, 'lock')), 'lock released');
  assert.deepEqual(blobFiles(root), []);

  const offsets: number[] = [];
  let consumed: Buffer | undefined;
  await cs.ingest({ digest, size: data.length }, opener(data, offsets), { consume: async (s) => void (consumed = await collect(s)) });
  assert.deepEqual(offsets, [kept]);
  assert.deepEqual(consumed, data);
  assert.deepEqual(readFileSync(cs.path(digest)), data);
  assert.deepEqual(ingestEntries(root), []);
});

test('ingest: a network error keeps the partial and a fresh store resumes it', async (t) => {
  const root = tempRoot(t);
  const data = randomBytes(500_000);
  const digest = digestOf(data);
  await assert.rejects(new ContentStore(root).ingest({ digest, size: data.length }, opener(data, [], { failAt: 200_000, chunk: 50_000 })), /ECONNRESET/);
  const offsets: number[] = [];
  await new ContentStore(root).ingest({ digest, size: data.length }, opener(data, offsets));
  assert.deepEqual(offsets, [200_000]);
  assert.deepEqual(readFileSync(new ContentStore(root).path(digest)), data);
});

test('ingest: a partial longer than the blob is garbage and the download starts over', async (t) => {
  const root = tempRoot(t);
  const data = randomBytes(10_000);
  const digest = digestOf(data);
  const dir = join(root, 'ingest', `sha256-${digest.slice(7)}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'data'), randomBytes(20_000));
  const offsets: number[] = [];
  await new ContentStore(root).ingest({ digest, size: data.length }, opener(data, offsets));
  assert.deepEqual(offsets, [0]);
});

test('ingest: a failing consumer fails the ingest with its error and keeps the partial', async (t) => {
  const root = tempRoot(t);
  const cs = new ContentStore(root);
  const data = randomBytes(4_000_000);
  const digest = digestOf(data);
  const boom = new Error('unpack failed: bad tar header');
  await assert.rejects(
    cs.ingest({ digest, size: data.length }, opener(data, []), {
      consume: async (s) => {
        let n = 0;
        for await (const c of s) {
          n += (c as Buffer).length;
          if (n > 300_000) throw boom;
        }
      },
    }),
    (e) => e === boom,
  );
  assert.deepEqual(blobFiles(root), []);
  assert.ok(existsSync(join(root, 'ingest', `sha256-${digest.slice(7)}`, 'data')), 'partial kept');
});

test('ingest: a consumer that stops reading early does not stall the download', async (t) => {
  const cs = new ContentStore(tempRoot(t));
  const data = randomBytes(3_000_000);
  const digest = digestOf(data);
  await cs.ingest({ digest, size: data.length }, opener(data, []), {
    consume: async (s) => {
      for await (const c of s) if ((c as Buffer).length > 0) break;
    },
  });
  assert.equal(await cs.has(digest), true);
});

test('ingest: a slow consumer paces the download (backpressure)', async (t) => {
  const cs = new ContentStore(tempRoot(t));
  const data = randomBytes(16 * 1024 * 1024);
  const digest = digestOf(data);
  const produced = { bytes: 0 };
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let consumed = 0;
  const running = cs.ingest({ digest, size: data.length }, opener(data, [], { produced }), {
    consume: async (s) => {
      await gate;
      for await (const c of s) consumed += (c as Buffer).length;
    },
  });
  // Give the download every chance to run ahead of the stalled consumer.
  for (let i = 0; i < 50; i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(produced.bytes < 4 * 1024 * 1024, `download paused while the consumer did not read (produced ${produced.bytes})`);
  release();
  await running;
  assert.equal(consumed, data.length);
});

test('concurrent ingests of one digest share one download', async (t) => {
  const root = tempRoot(t);
  const cs = new ContentStore(root);
  const other = new ContentStore(root);
  const data = randomBytes(1_500_000);
  const digest = digestOf(data);
  const offsets: number[] = [];
  const results: Buffer[] = [];
  const consume = async (s: Readable): Promise<void> => void results.push(await collect(s));
  await Promise.all([
    cs.ingest({ digest, size: data.length }, opener(data, offsets, { chunk: 16_384 }), { consume }),
    cs.ingest({ digest, size: data.length }, opener(data, offsets), { consume }),
    other.ingest({ digest, size: data.length }, opener(data, offsets), { consume }),
  ]);
  assert.deepEqual(offsets, [0], 'one download');
  assert.equal(results.length, 3);
  for (const r of results) assert.deepEqual(r, data);
});

test('a waiter takes over when the first ingest is aborted, resuming its partial', async (t) => {
  const root = tempRoot(t);
  const cs = new ContentStore(root);
  const data = randomBytes(800_000);
  const digest = digestOf(data);
  const ac = new AbortController();
  const offsets: number[] = [];
  const first = cs.ingest({ digest, size: data.length }, opener(data, offsets, { chunk: 20_000, stallAt: 400_000, onStall: () => ac.abort() }), { signal: ac.signal });
  let got: Buffer | undefined;
  const second = cs.ingest({ digest, size: data.length }, opener(data, offsets), { consume: async (s) => void (got = await collect(s)) });
  await assert.rejects(first, (e) => (e as Error).name === 'AbortError');
  await second;
  assert.equal(offsets.length, 2);
  assert.equal(offsets[0], 0);
  assert.ok(offsets[1]! > 0, 'the second resumed the partial');
  assert.deepEqual(got, data);
});

test('a waiter shares the error of a download that failed on its own', async (t) => {
  const root = tempRoot(t);
  const cs = new ContentStore(root);
  const data = randomBytes(300_000);
  const bad = randomBytes(300_000);
  const digest = digestOf(data);
  const offsets: number[] = [];
  const results = await Promise.allSettled([
    cs.ingest({ digest, size: data.length }, opener(bad, offsets, { chunk: 10_000 })),
    cs.ingest({ digest, size: data.length }, opener(data, offsets)),
  ]);
  assert.deepEqual(offsets, [0]);
  for (const r of results) assert.ok(r.status === 'rejected' && /digest mismatch/.test(String(r.reason)));
});

async function withSleeper<T>(fn: (pid: number, startTime: number | undefined, stop: () => Promise<void>) => Promise<T>): Promise<T> {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  await new Promise((r) => child.once('spawn', r));
  const pid = child.pid!;
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async (): Promise<void> => {
    child.kill('SIGKILL');
    await exited;
  };
  try {
    return await fn(pid, readProcStat(pid)?.startTime, stop);
  } finally {
    await stop();
  }
}

test('across processes: a live lock holder is waited for; its commit ends the wait without a download', async (t) => {
  const root = tempRoot(t);
  const cs = new ContentStore(root);
  const data = randomBytes(10_000);
  const digest = digestOf(data);
  const dir = join(root, 'ingest', `sha256-${digest.slice(7)}`);
  mkdirSync(dir, { recursive: true });
  await withSleeper(async (pid, startTime) => {
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid, startTime, nonce: 'other' }));
    const offsets: number[] = [];
    let got: Buffer | undefined;
    const waiting = cs.ingest({ digest, size: data.length }, opener(data, offsets), { consume: async (s) => void (got = await collect(s)) });
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(offsets, [], 'no download while another process holds the lock');
    mkdirSync(join(root, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(cs.path(digest), data);
    await waiting;
    assert.deepEqual(offsets, []);
    assert.deepEqual(got, data);
  });
});

test('across processes: the lock of a dead process is taken over and its partial resumed', async (t) => {
  const root = tempRoot(t);
  const cs = new ContentStore(root);
  const data = randomBytes(50_000);
  const digest = digestOf(data);
  const dir = join(root, 'ingest', `sha256-${digest.slice(7)}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'data'), data.subarray(0, 20_000));
  await withSleeper(async (pid, startTime, stop) => {
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid, startTime, nonce: 'other' }));
    const entries = await cs.ingests();
    assert.equal(entries.length, 1);
    assert.equal(entries[0]!.locked, true);
    assert.equal(entries[0]!.digest, digest);
    assert.equal(entries[0]!.bytes, 20_000);
    assert.equal(await cs.removeIngest(entries[0]!.name), false, 'a live lock protects the entry');
    const offsets: number[] = [];
    const waiting = cs.ingest({ digest, size: data.length }, opener(data, offsets));
    await new Promise((r) => setTimeout(r, 50));
    await stop();
    await waiting;
    assert.deepEqual(offsets, [20_000]);
  });
  assert.deepEqual(readFileSync(cs.path(digest)), data);
  assert.deepEqual(ingestEntries(root), []);
});

test('ingests() and removeIngest() report and remove abandoned entries', async (t) => {
  const root = tempRoot(t);
  const cs = new ContentStore(root);
  const data = randomBytes(1000);
  const digest = digestOf(data);
  await assert.rejects(cs.ingest({ digest, size: data.length }, opener(data, [], { failAt: 500, chunk: 100 })), /ECONNRESET/);
  mkdirSync(join(root, 'ingest'), { recursive: true });
  writeFileSync(join(root, 'ingest', 'put-999999999-1-1'), 'leftover of a dead put');
  const old = new Date(Date.now() - 48 * 3600 * 1000);
  utimesSync(join(root, 'ingest', 'put-999999999-1-1'), old, old);
  const entries = (await cs.ingests()).sort((a, b) => a.name.localeCompare(b.name));
  assert.deepEqual(
    entries.map((e) => ({ name: e.name, digest: e.digest, bytes: e.bytes, locked: e.locked })),
    [
      { name: 'put-999999999-1-1', digest: undefined, bytes: 22, locked: false },
      { name: `sha256-${digest.slice(7)}`, digest, bytes: 500, locked: false },
    ],
  );
  assert.ok(entries[0]!.modifiedMs <= old.getTime() + 1000);
  for (const e of entries) assert.equal(await cs.removeIngest(e.name), true);
  assert.deepEqual(ingestEntries(root), []);
  assert.equal(await cs.removeIngest('sha256-' + 'a'.repeat(64)), true, 'already gone');
});
