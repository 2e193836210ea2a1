// kill -9 of a process writing to the image store, at random points and mid-download,
// leaves a consistent store: every blob hashes to its name, every record and lease parses,
// and a fresh ContentStore resumes each partial download and completes it.
//
// The same file is the writer: started with BERTH_STORE_CRASH_ROOT set, it ingests, puts
// and records images in a loop until it is killed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createCipheriv, createHash, randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { writeJsonAtomic } from '../src/host/fs-atomic.js';
import { ContentStore } from '../src/image/store/content-store.js';
import { collectGarbage } from '../src/image/store/gc.js';
import { ImageStore } from '../src/image/store/image-store.js';
import { LeaseStore } from '../src/image/store/leases.js';
import { MediaType, type Descriptor } from '../src/image/types.js';

const KILLS = 20;
const CHUNK = 32 * 1024;

/** Deterministic content of a blob, so the test can serve what the killed writer was fetching. */
function blobData(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Serves data from offset in small chunks, yielding to the event loop between them. */
function slowSource(data: Buffer, offset: number, stallAt = Infinity): Readable {
  let pos = offset;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      if (pos >= stallAt) return;
      setImmediate(() => {
        const end = Math.min(data.length, pos + CHUNK, stallAt);
        if (pos >= data.length) this.push(null);
        else if (end > pos) {
          const out = data.subarray(pos, end);
          pos = end;
          this.push(out);
        }
      });
    },
  });
}

async function runWriter(root: string, planDir: string, stall: boolean): Promise<void> {
  const content = new ContentStore(root);
  const images = new ImageStore(root);
  const leases = new LeaseStore(root);
  process.stdout.write('ready\n');
  for (let i = 0; ; i++) {
    const size = randomInt(100_000, 1_500_000);
    const seed = randomBytes(8).toString('hex');
    const data = blobData(seed, size);
    const layer: Descriptor = { mediaType: MediaType.ociLayerGzip, digest: sha256(data), size };
    writeJsonAtomic(join(planDir, `${layer.digest.slice(7)}.json`), { seed, size });
    const lease = await leases.create();
    lease.add({ type: 'content', id: layer.digest });
    const half = Math.floor(size / 2);
    let told = false;
    await content.ingest(layer, async (offset) => slowSource(data, offset, stall && i === 0 ? half : Infinity), {
      onProgress(done) {
        if (stall && i === 0 && done >= half && !told) {
          told = true;
          void tellWhenOnDisk(join(root, 'ingest', `sha256-${layer.digest.slice(7)}`, 'data'), half);
        }
      },
    });
    const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] }, seq: i }));
    const config: Descriptor = { mediaType: MediaType.ociConfig, digest: sha256(configBytes), size: configBytes.length };
    lease.add({ type: 'content', id: config.digest });
    await content.put(config, configBytes);
    const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [layer] }));
    const manifest: Descriptor = { mediaType: MediaType.ociManifest, digest: sha256(manifestBytes), size: manifestBytes.length };
    lease.add({ type: 'content', id: manifest.digest });
    await content.put(manifest, manifestBytes);
    const name = `localhost:5000/crash/img${i % 4}:latest`;
    await images.put({ name, target: manifest, labels: { seq: String(i) } });
    if (i % 3 === 2) await images.delete(`localhost:5000/crash/img${(i + 1) % 4}:latest`);
    await lease.release();
  }
}

/** Prints "stalled" once the partial holds `bytes` (writes trail the progress reports). */
async function tellWhenOnDisk(file: string, bytes: number): Promise<void> {
  while (statSync(file).size < bytes) await new Promise((r) => setTimeout(r, 5));
  process.stdout.write('stalled\n');
}

const writerRoot = process.env.BERTH_STORE_CRASH_ROOT;
if (writerRoot !== undefined) {
  await runWriter(writerRoot, process.env.BERTH_STORE_CRASH_PLANS!, process.env.BERTH_STORE_CRASH_STALL === '1');
} else {
  test(`kill -9 of a store writer, ${KILLS} times, leaves a consistent and resumable store`, async (t) => {
    const base = mkdtempSync(join(tmpdir(), 'berth-store-crash-'));
    t.after(() => rmSync(base, { recursive: true, force: true }));
    const root = join(base, 'store');
    const plans = join(base, 'plans');
    mkdirSync(plans, { recursive: true });
    let resumed = 0;
    let completed = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const stall = kill % 2 === 0;
      await killWriter(root, plans, stall);
      const r = await checkStore(root, plans);
      resumed += r.resumed;
      completed += r.completed;
    }
    t.diagnostic(`${completed} partial downloads completed after a kill, ${resumed} of them resumed from a kept partial`);
    assert.ok(resumed >= KILLS / 2, `every kill during a stalled download left a partial to resume (resumed ${resumed})`);

    // With every writer dead its leases protect nothing; records still protect their images.
    const content = new ContentStore(root);
    const images = new ImageStore(root);
    const leases = new LeaseStore(root);
    // Age 0: what is left in ingest/ now is only what a writer killed right after a commit left.
    const gc = await collectGarbage({ content, images, leases, ingestMaxAgeMs: 0 });
    assert.deepEqual(gc.warnings, []);
    assert.deepEqual(await leases.list(), []);
    for (const record of await images.list()) {
      const manifest = JSON.parse((await content.readBuffer(record.target.digest)).toString()) as { config: Descriptor; layers: Descriptor[] };
      for (const d of [manifest.config, ...manifest.layers]) assert.ok(await content.has(d.digest), `${record.name}: ${d.digest} kept`);
    }
    for (const dir of [images.dir, leases.dir]) {
      if (existsSync(dir)) assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], `no temp files left in ${dir}`);
    }
    assert.deepEqual(existsSync(join(root, 'ingest')) ? readdirSync(join(root, 'ingest')) : [], []);
  });
}

/** Runs a writer and SIGKILLs it: mid-download when stalling, else after a random delay. */
async function killWriter(root: string, plans: string, stall: boolean): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env, BERTH_STORE_CRASH_ROOT: root, BERTH_STORE_CRASH_PLANS: plans, BERTH_STORE_CRASH_STALL: stall ? '1' : '0' };
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const waitFor = (word: string): Promise<void> =>
    new Promise((resolveWait, rejectWait) => {
      let out = '';
      const timer = setTimeout(() => rejectWait(new Error(`writer never printed "${word}": ${stderr}`)), 60_000);
      const onData = (c: Buffer): void => {
        out += c.toString();
        if (out.includes(`${word}\n`)) {
          clearTimeout(timer);
          child.stdout.off('data', onData);
          resolveWait();
        }
      };
      child.stdout.on('data', onData);
      void exited.then(() => {
        clearTimeout(timer);
        rejectWait(new Error(`writer exited before "${word}": ${stderr}`));
      });
    });
  try {
    if (stall) await waitFor('stalled');
    else {
      await waitFor('ready');
      await new Promise((r) => setTimeout(r, randomInt(0, 400)));
    }
  } finally {
    child.kill('SIGKILL');
  }
  const how = await exited;
  assert.equal(how.signal, 'SIGKILL', `the writer died of the kill, not of an error: ${stderr}`);
}

/** Asserts the invariants, then resumes every partial download with a fresh ContentStore. */
async function checkStore(root: string, plans: string): Promise<{ resumed: number; completed: number }> {
  const blobs = join(root, 'blobs');
  if (existsSync(blobs)) {
    for (const alg of readdirSync(blobs)) {
      assert.equal(alg, 'sha256', `only algorithm directories in ${blobs}`);
      for (const hex of readdirSync(join(blobs, alg))) {
        assert.match(hex, /^[0-9a-f]{64}$/, `only committed blobs in ${join(blobs, alg)}`);
        assert.equal(sha256(readFileSync(join(blobs, alg, hex))), `sha256:${hex}`, `blob ${hex} hashes to its name`);
      }
    }
  }
  const images = new ImageStore(root);
  const scan = await images.scan();
  assert.deepEqual(scan.problems, [], 'every image record parses');
  const leases = await new LeaseStore(root).scan();
  assert.deepEqual(leases.problems, [], 'every lease parses');

  const content = new ContentStore(root);
  let resumed = 0;
  let completed = 0;
  for (const entry of await content.ingests()) {
    assert.equal(entry.locked, false, `${entry.path} is not locked by the dead writer`);
    if (entry.digest === undefined) continue;
    const plan = JSON.parse(readFileSync(join(plans, `${entry.digest.slice(7)}.json`), 'utf8')) as { seed: string; size: number };
    const data = blobData(plan.seed, plan.size);
    const dataFile = join(entry.path, 'data');
    const kept = existsSync(dataFile) ? statSync(dataFile).size : 0;
    // Killed between the commit (rename) and the removal of its ingest directory.
    const stored = await content.has(entry.digest);
    const offsets: number[] = [];
    let consumed = 0;
    await content.ingest(
      { digest: entry.digest, size: plan.size },
      async (offset) => {
        offsets.push(offset);
        return Readable.from([data.subarray(offset)]);
      },
      {
        consume: async (s) => {
          for await (const c of s) consumed += (c as Buffer).length;
        },
      },
    );
    assert.deepEqual(offsets, stored || kept === plan.size ? [] : [kept], 'the download resumed at the kept length');
    assert.equal(consumed, plan.size, 'the consumer got the whole blob');
    assert.deepEqual(readFileSync(content.path(entry.digest)), data);
    if (stored) continue;
    completed++;
    if (kept > 0) resumed++;
  }
  return { resumed, completed };
}
