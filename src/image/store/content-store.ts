// Content-addressed blob storage. A blob becomes visible under blobs/<alg>/<hex> only after
// its digest and size were verified and its data fsynced: the rename out of ingest/ is the
// commit point, so a kill -9 at any instant leaves either no blob or a correct one.
//
// Layout under root:
//   blobs/<alg>/<hex>            committed, verified blobs
//   ingest/<alg>-<hex>/data      a partial download, kept for resume
//   ingest/<alg>-<hex>/lock      {pid, startTime, nonce} of the process writing `data`
//   ingest/put-<pid>-<start>-<n> the temp file of one put()
import { createReadStream, statSync } from 'node:fs';
import { link, mkdir, open, readFile, readdir, rename, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { randomBytes, type Hash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { BerthError } from '../../errors.js';
import { processAlive, readProcStat } from '../../host/proc.js';
import { digestHasher, isDigest, parseDigest } from '../digest.js';
import { fsyncDir } from '../../host/fs-atomic.js';
import type { Digest } from '../types.js';

export interface BlobInfo {
  digest: Digest;
  size: number;
}

/**
 * Opens the blob's data starting at byte `offset` (0 for a fresh download, the kept
 * partial's length on resume). The returned stream must start exactly at `offset`: when
 * the server ignores a Range request, the opener skips the first `offset` bytes itself
 * (or throws). It should stop when `signal` aborts; the store also destroys the stream then.
 */
export type BlobOpener = (offset: number, signal: AbortSignal) => Promise<Readable>;

export interface IngestOptions {
  signal?: AbortSignal;
  onProgress?(done: number, total: number): void;
  /**
   * Receives the WHOLE blob from byte 0 while it is being stored (a kept partial is replayed
   * first, then live data), or the stored blob when it was already present. ingest resolves
   * only when this consumer also finished; if it throws, the ingest fails (the partial is
   * kept). The download waits for the consumer: the slower of disk and consumer sets the pace.
   * The data reaches the consumer before the digest is verified: a mismatch fails the ingest.
   */
  consume?(stream: Readable): Promise<void>;
  /** Where the data comes from (a URL, a file), for error messages. */
  source?: string;
}

/** One entry of ingest/: a partial download or a put's temp file. */
export interface IngestEntry {
  name: string;
  path: string;
  /** The blob being ingested (undefined for a put's temp file). */
  digest?: Digest;
  bytes: number;
  /** Latest modification of the entry or its data. */
  modifiedMs: number;
  /** A live process (this one included) is writing it. */
  locked: boolean;
}

interface LockOwner {
  pid: number;
  startTime?: number;
  nonce: string;
}

/** How a shared in-process download ended, for the callers waiting on it. */
type DownloadOutcome = { ok: true } | { ok: false; error: unknown; ownFailure: boolean };

const READ_CHUNK = 1 << 20;
const WRITE_QUEUE_LIMIT = 4 << 20;
const LOCK_POLL_MS = { first: 25, max: 250 };

const selfStartTime = readProcStat(process.pid)?.startTime;
/** Nonces of the ingest locks this process holds: a lock naming our pid is live only if listed. */
const heldLocks = new Set<string>();
/** Downloads running in this process, by `<root>\0<digest>`: a second ingest waits for the first. */
const inflight = new Map<string, Promise<DownloadOutcome>>();
let putCounter = 0;

export class ContentStore {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  path(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest, 'blob');
    return join(this.root, 'blobs', algorithm, hex);
  }

  async has(digest: Digest): Promise<boolean> {
    return (await this.info(digest)) !== undefined;
  }

  async info(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const st = await stat(this.path(digest));
      return st.isFile() ? { digest, size: st.size } : undefined;
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  read(digest: Digest, opts: { start?: number } = {}): Readable {
    const file = this.path(digest);
    try {
      statSync(file);
    } catch (err) {
      throw notFound(digest, err);
    }
    return createReadStream(file, { start: opts.start ?? 0, highWaterMark: 256 * 1024 });
  }

  /** The whole blob, re-verified: callers parse these bytes, so disk corruption must not pass. */
  async readBuffer(digest: Digest): Promise<Buffer> {
    let data: Buffer;
    try {
      data = await readFile(this.path(digest));
    } catch (err) {
      if (errno(err) === 'ENOENT') throw notFound(digest, err);
      throw err;
    }
    const got = digestHasher(digest).update(data).digest('hex');
    if (got !== parseDigest(digest).hex) {
      throw new BerthError('Internal', `blob ${digest} at ${this.path(digest)} is corrupt: its content hashes to ${parseDigest(digest).algorithm}:${got}`, {
        hint: 'delete the file and pull the image again',
      });
    }
    return data;
  }

  async put(expected: { digest: Digest; size?: number }, data: Buffer | string, opts: { source?: string } = {}): Promise<void> {
    const { algorithm, hex } = parseDigest(expected.digest, 'put: expected digest');
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const source = opts.source ?? 'put';
    const got = digestHasher(expected.digest).update(bytes).digest('hex');
    if (got !== hex) throw mismatch(expected.digest, source, `${algorithm}:${got}`);
    if (expected.size !== undefined && expected.size !== bytes.length) {
      throw sizeMismatch(expected.digest, source, `the content has ${bytes.length} bytes, the descriptor says ${expected.size}`);
    }
    if (await this.has(expected.digest)) return;
    const ingestRoot = join(this.root, 'ingest');
    await mkdir(ingestRoot, { recursive: true });
    const tmp = join(ingestRoot, `put-${process.pid}-${selfStartTime ?? 0}-${++putCounter}`);
    try {
      const fh = await open(tmp, 'w', 0o644);
      try {
        await writeAll(fh, bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.commitFile(tmp, expected.digest);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Downloads a blob through `open` unless it is already stored. Concurrent ingests of one
   * digest share a download: in this process the later callers wait for the first (and
   * their `consume` then reads the committed blob); across processes a lock file in the
   * ingest directory does the same, and a lock whose owner died is taken over.
   *
   * Failures: a digest or size mismatch throws InvalidArgument and discards the partial
   * (it is garbage); an abort, a network error or a failing consumer keeps the partial, and
   * the next ingest resumes from its length. An abort rethrows `signal.reason`.
   */
  async ingest(expected: { digest: Digest; size: number }, open: BlobOpener, opts: IngestOptions = {}): Promise<void> {
    parseDigest(expected.digest, 'ingest: expected digest');
    if (!Number.isSafeInteger(expected.size) || expected.size < 0) {
      throw new BerthError('InvalidArgument', `ingest of blob ${expected.digest}: size ${expected.size} is not a byte count`);
    }
    try {
      await this.ingestShared(expected, open, opts);
    } catch (err) {
      throw err instanceof ConsumerFailure ? err.original : err;
    }
  }

  private async ingestShared(expected: { digest: Digest; size: number }, open: BlobOpener, opts: IngestOptions): Promise<void> {
    const key = `${this.root}\0${expected.digest}`;
    for (;;) {
      opts.signal?.throwIfAborted();
      const running = inflight.get(key);
      if (running) {
        const outcome = await abortable(running, opts.signal);
        // Another caller's abort or failing consumer says nothing about the blob: try again
        // (resuming its partial). Anything else happens to us too: share the error.
        if (!outcome.ok && !outcome.ownFailure) throw outcome.error;
        continue;
      }
      // Registered before the first await, so that callers in the same tick find it. Waiters
      // go on as soon as the blob is stored, not when this caller's consumer is done.
      let settle!: (outcome: DownloadOutcome) => void;
      const shared = new Promise<DownloadOutcome>((r) => (settle = r));
      inflight.set(key, shared);
      const stored = (): void => {
        if (inflight.get(key) === shared) inflight.delete(key);
        settle({ ok: true });
      };
      try {
        const present = await this.info(expected.digest);
        if (present) {
          stored();
          return await this.deliverStored(expected, present, opts);
        }
        await this.download(expected, open, opts, stored);
        stored();
      } catch (error) {
        settle({ ok: false, error, ownFailure: opts.signal?.aborted === true || error instanceof ConsumerFailure });
        throw error;
      } finally {
        if (inflight.get(key) === shared) inflight.delete(key);
      }
      return;
    }
  }

  async delete(digest: Digest): Promise<void> {
    try {
      await unlink(this.path(digest));
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw err;
    }
  }

  async *list(): AsyncIterable<BlobInfo> {
    const blobs = join(this.root, 'blobs');
    for (const algorithm of await readdirOrEmpty(blobs)) {
      for (const hex of await readdirOrEmpty(join(blobs, algorithm))) {
        const digest = `${algorithm}:${hex}`;
        if (!isDigest(digest)) continue;
        try {
          const st = await stat(join(blobs, algorithm, hex));
          if (st.isFile()) yield { digest, size: st.size };
        } catch (err) {
          if (errno(err) !== 'ENOENT') throw err;
        }
      }
    }
  }

  /** The entries of ingest/ with their age and whether a live process owns them (for gc). */
  async ingests(): Promise<IngestEntry[]> {
    const dir = join(this.root, 'ingest');
    const out: IngestEntry[] = [];
    for (const name of await readdirOrEmpty(dir)) {
      const path = join(dir, name);
      let st;
      try {
        st = await stat(path);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        const digest = ingestDigest(name);
        let bytes = 0;
        let modifiedMs = st.mtimeMs;
        try {
          const data = await stat(join(path, 'data'));
          bytes = data.size;
          modifiedMs = Math.max(modifiedMs, data.mtimeMs);
        } catch {
          // no data yet
        }
        const owner = await readLock(join(path, 'lock'));
        out.push({ name, path, digest, bytes, modifiedMs, locked: owner ? lockLive(owner) : false });
      } else {
        const m = /^put-(\d+)-(\d+)-\d+$/.exec(name);
        const locked = m !== null && processAlive(Number(m[1]), Number(m[2]) || undefined);
        out.push({ name, path, bytes: st.size, modifiedMs: st.mtimeMs, locked });
      }
    }
    return out;
  }

  /** Removes one ingest entry unless a live process owns it; false when it was busy. */
  async removeIngest(name: string): Promise<boolean> {
    if (name.includes('/') || name === '.' || name === '..') throw new Error(`removeIngest: bad entry name ${name}`);
    const path = join(this.root, 'ingest', name);
    if (ingestDigest(name) === undefined) {
      const entry = (await this.ingests()).find((e) => e.name === name);
      if (entry?.locked) return false;
      await rm(path, { recursive: true, force: true });
      return true;
    }
    let lock: string | undefined;
    try {
      lock = await tryLock(path);
    } catch (err) {
      if (errno(err) === 'ENOENT') return true;
      throw err;
    }
    if (lock === undefined) return false;
    await rm(path, { recursive: true, force: true });
    heldLocks.delete(lock);
    return true;
  }

  private async deliverStored(expected: { digest: Digest; size: number }, present: BlobInfo, opts: IngestOptions): Promise<void> {
    if (present.size !== expected.size) {
      throw sizeMismatch(expected.digest, opts.source ?? 'the store', `the stored blob has ${present.size} bytes, the descriptor says ${expected.size}`);
    }
    opts.onProgress?.(present.size, present.size);
    if (!opts.consume) return;
    try {
      await opts.consume(this.read(expected.digest));
    } catch (err) {
      throw new ConsumerFailure(err);
    }
  }

  private ingestDir(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.root, 'ingest', `${algorithm}-${hex}`);
  }

  /** Fetches the blob (or waits for the process that does); `stored` runs once it is committed. */
  private async download(expected: { digest: Digest; size: number }, open: BlobOpener, opts: IngestOptions, stored: () => void): Promise<void> {
    const dir = this.ingestDir(expected.digest);
    const nonce = await this.lockOrWait(dir, expected.digest, opts.signal);
    if (nonce === undefined) {
      const present = await this.info(expected.digest);
      if (!present) throw new BerthError('Unavailable', `blob ${expected.digest} was deleted right after another process stored it`, { hint: 'retry' });
      stored();
      return this.deliverStored(expected, present, opts);
    }
    const state = { committed: false, stored };
    let keep = true;
    let present: BlobInfo | undefined;
    try {
      // The previous owner may have committed just before it let go of the lock.
      present = await this.info(expected.digest);
      if (!present) await this.fetchInto(dir, expected, open, { ...opts, state });
      keep = false;
    } catch (err) {
      keep = !state.committed && !discardErrors.has(err as object);
      throw err;
    } finally {
      heldLocks.delete(nonce);
      // Cleanup after a commit or a discard may race another process that already took the
      // directory over; its own checks cope with whatever is left, so errors here are moot.
      if (keep) await unlink(join(dir, 'lock')).catch(() => undefined);
      else await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
    if (present) {
      stored();
      await this.deliverStored(expected, present, opts);
    }
  }

  /** Takes the ingest lock; undefined when another process committed the blob while we waited. */
  private async lockOrWait(dir: string, digest: Digest, signal: AbortSignal | undefined): Promise<string | undefined> {
    let delay = LOCK_POLL_MS.first;
    for (;;) {
      signal?.throwIfAborted();
      await mkdir(dir, { recursive: true });
      let nonce: string | undefined;
      try {
        nonce = await tryLock(dir);
      } catch (err) {
        // The owner removed the directory after its commit, between our mkdir and our lock.
        if (errno(err) !== 'ENOENT') throw err;
      }
      if (nonce !== undefined) return nonce;
      if (await this.has(digest)) return undefined;
      await sleep(delay, signal);
      delay = Math.min(delay * 2, LOCK_POLL_MS.max);
    }
  }

  /** Resumes or starts the download into dir/data; commits it when verified. */
  private async fetchInto(
    dir: string,
    expected: { digest: Digest; size: number },
    openStream: BlobOpener,
    opts: IngestOptions & { state: { committed: boolean; stored(): void } },
  ): Promise<void> {
    const { digest, size } = expected;
    const source = opts.source ?? 'download';
    const dataPath = join(dir, 'data');
    const hash = digestHasher(digest);
    const local = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, local.signal]) : local.signal;
    const tee = opts.consume ? new Tee(opts.consume, (err) => local.abort(err)) : undefined;

    const fh = await open(dataPath, 'a+', 0o644);
    const writer = new QueuedWriter(fh);
    let closed = false;
    try {
      let done = (await fh.stat()).size;
      if (done > size) {
        await fh.truncate(0);
        done = 0;
      }
      done = await replayPartial(fh, done, hash, tee, signal);
      opts.onProgress?.(done, size);

      if (done < size) {
        const src = await openStream(done, signal);
        if (signal.aborted) {
          src.destroy();
          signal.throwIfAborted();
        }
        const stop = (): void => {
          src.destroy();
        };
        signal.addEventListener('abort', stop, { once: true });
        try {
          for await (const raw of src) {
            const chunk = typeof raw === 'string' ? Buffer.from(raw) : (raw as Buffer);
            if (done + chunk.length > size) {
              throw sizeMismatch(digest, source, `more than the expected ${size} bytes`);
            }
            hash.update(chunk);
            await writer.write(chunk);
            done += chunk.length;
            await tee?.write(chunk, signal);
            signal.throwIfAborted();
            opts.onProgress?.(done, size);
          }
        } finally {
          signal.removeEventListener('abort', stop);
          src.destroy();
        }
        signal.throwIfAborted();
      }
      await writer.flush();

      const got = hash.digest('hex');
      const gotDigest = `${parseDigest(digest).algorithm}:${got}`;
      if (done < size) {
        if (gotDigest === digest) {
          throw sizeMismatch(digest, source, `the content has ${done} bytes, the descriptor says ${size}`);
        }
        throw new BerthError('Unavailable', `blob ${digest} from ${source}: the data ended after ${done} of ${size} bytes`, {
          hint: 'the partial download is kept; retrying resumes it',
        });
      }
      if (gotDigest !== digest) throw mismatch(digest, source, gotDigest);

      tee?.end();
      await fh.sync();
      await fh.close();
      closed = true;
      await this.commitFile(dataPath, digest);
      opts.state.committed = true;
      opts.state.stored();
      await tee?.finished();
    } catch (err) {
      if (!closed) {
        await writer.flush().catch(() => undefined);
        await fh.close().catch(() => undefined);
      }
      // The consumer's own error and the caller's abort explain the failure better than the
      // stream error they caused. A consumer failing after the commit still fails the ingest;
      // the committed blob stays (it is valid).
      const failure = discardErrors.has(err as object)
        ? err
        : tee?.consumerError !== undefined
          ? new ConsumerFailure(tee.consumerError)
          : opts.signal?.aborted
            ? opts.signal.reason
            : err;
      if (tee) await tee.abandon(failure);
      throw failure;
    }
  }

  /** Renames a verified, fsynced file into blobs/ and makes the rename durable. */
  private async commitFile(file: string, digest: Digest): Promise<void> {
    const target = this.path(digest);
    const dir = join(target, '..');
    await mkdir(dir, { recursive: true });
    await rename(file, target);
    await fsyncDir(dir);
  }
}

/** Feeds one consumer through a PassThrough while keeping its backpressure. */
class Tee {
  private readonly stream = new PassThrough({ highWaterMark: 1 << 20 });
  private readonly done: Promise<void>;
  private settled = false;
  consumerError: unknown;

  constructor(consume: (stream: Readable) => Promise<void>, onFailure: (err: unknown) => void) {
    this.done = Promise.resolve()
      .then(() => consume(this.stream))
      .then(
        () => {
          this.settled = true;
          // Wakes a write waiting for 'drain' from a consumer that returned without reading all.
          this.stream.destroy();
        },
        (err: unknown) => {
          this.settled = true;
          this.consumerError = err ?? new Error('consumer failed');
          this.stream.destroy();
          onFailure(this.consumerError);
        },
      );
    // A consumer that stops reading early must not fail the write side.
    this.stream.on('error', () => undefined);
  }

  async write(chunk: Buffer, signal: AbortSignal): Promise<void> {
    if (this.settled) return;
    if (!this.stream.destroyed && this.stream.write(chunk)) return;
    if (!this.stream.destroyed) await this.drained(signal);
    // The consumer destroyed its stream: learn whether it failed before going on, so that
    // its failure stops the download (through onFailure) instead of trailing it.
    if (this.stream.destroyed && !this.settled) await abortable(this.done, signal);
  }

  private async drained(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    await new Promise<void>((resolveWait, rejectWait) => {
      const cleanup = (): void => {
        this.stream.off('drain', onDrain);
        this.stream.off('close', onDrain);
        signal.removeEventListener('abort', onAbort);
      };
      const onDrain = (): void => {
        cleanup();
        resolveWait();
      };
      const onAbort = (): void => {
        cleanup();
        rejectWait(signal.reason);
      };
      this.stream.on('drain', onDrain);
      this.stream.on('close', onDrain);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  end(): void {
    if (!this.settled && !this.stream.destroyed) this.stream.end();
  }

  async finished(): Promise<void> {
    await this.done;
    if (this.consumerError !== undefined) throw new ConsumerFailure(this.consumerError);
  }

  /** Ends the consumer's stream with an error and waits for the consumer to return. */
  async abandon(err: unknown): Promise<void> {
    if (!this.stream.destroyed) this.stream.destroy(err instanceof Error ? err : new Error(String(err)));
    await this.done;
  }
}

/**
 * Writes chunks in order on the thread pool while the caller hashes the next ones; the
 * caller waits only when too much is queued, so a slow disk still paces the download.
 */
class QueuedWriter {
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  private error: unknown;

  constructor(private readonly fh: FileHandle) {}

  async write(chunk: Buffer): Promise<void> {
    if (this.error !== undefined) throw this.error;
    this.queued += chunk.length;
    this.chain = this.chain.then(async () => {
      try {
        if (this.error === undefined) await writeAll(this.fh, chunk);
      } catch (err) {
        this.error = err;
      } finally {
        this.queued -= chunk.length;
      }
    });
    if (this.queued > WRITE_QUEUE_LIMIT) await this.flush();
  }

  async flush(): Promise<void> {
    await this.chain;
    if (this.error !== undefined) throw this.error;
  }
}

/** Marks a consumer's error on its way through the shared download. */
class ConsumerFailure extends Error {
  constructor(readonly original: unknown) {
    super('consumer failed', { cause: original });
  }
}

/** Errors that prove the partial wrong: it is deleted instead of kept for resume. */
const discardErrors = new WeakSet<object>();

/** Hashes the kept partial (and replays it to the consumer); returns its length. */
async function replayPartial(fh: FileHandle, length: number, hash: Hash, tee: Tee | undefined, signal: AbortSignal): Promise<number> {
  let pos = 0;
  while (pos < length) {
    signal.throwIfAborted();
    const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, length - pos));
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) break;
    const chunk = bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    hash.update(chunk);
    await tee?.write(chunk, signal);
    pos += bytesRead;
  }
  return pos;
}

async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off);
    off += bytesWritten;
  }
}

/**
 * Creates dir/lock atomically with its content (written to a private name, then linked:
 * link never replaces). A lock whose owner is dead is stolen by renaming it away and
 * checking that what we took is the lock we judged stale; a fresh lock taken by mistake is
 * linked back. Returns our nonce, or undefined while a live owner holds it.
 */
async function tryLock(dir: string): Promise<string | undefined> {
  const lockPath = join(dir, 'lock');
  const nonce = randomBytes(8).toString('hex');
  const owner: LockOwner = { pid: process.pid, startTime: selfStartTime, nonce };
  const mine = join(dir, `lock.${nonce}`);
  await writeFile(mine, JSON.stringify(owner));
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await link(mine, lockPath);
        heldLocks.add(nonce);
        return nonce;
      } catch (err) {
        if (errno(err) !== 'EEXIST') throw err;
      }
      const current = await readLock(lockPath);
      if (current === null) continue;
      if (current !== undefined && lockLive(current)) return undefined;
      const grabbed = join(dir, `lock.stale.${nonce}`);
      try {
        await rename(lockPath, grabbed);
      } catch (err) {
        if (errno(err) === 'ENOENT') continue;
        throw err;
      }
      const taken = await readLock(grabbed);
      if (taken && taken.nonce !== current?.nonce && lockLive(taken)) {
        await link(grabbed, lockPath).catch(() => undefined);
        await unlink(grabbed).catch(() => undefined);
        return undefined;
      }
      await unlink(grabbed).catch(() => undefined);
    }
    return undefined;
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}

/** The lock's owner; undefined when unreadable (a torn lock is stale), null when absent. */
async function readLock(path: string): Promise<LockOwner | undefined | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errno(err) === 'ENOENT') return null;
    throw err;
  }
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (typeof v.pid === 'number' && typeof v.nonce === 'string') return { pid: v.pid, startTime: v.startTime, nonce: v.nonce };
  } catch {
    // a torn lock file
  }
  return undefined;
}

function lockLive(owner: LockOwner): boolean {
  if (owner.pid === process.pid && owner.startTime === selfStartTime) return heldLocks.has(owner.nonce);
  return processAlive(owner.pid, owner.startTime);
}

function ingestDigest(name: string): Digest | undefined {
  const dash = name.indexOf('-');
  if (dash <= 0) return undefined;
  const digest = `${name.slice(0, dash)}:${name.slice(dash + 1)}`;
  return isDigest(digest) ? digest : undefined;
}



async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (errno(err) === 'ENOENT') return [];
    throw err;
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolveSleep, rejectSleep) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      rejectSleep(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolveSleep();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Waits for a promise that must not reject, or rejects with the signal's reason. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolveWait, rejectWait) => {
    const onAbort = (): void => rejectWait(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    void promise.then((v) => {
      signal.removeEventListener('abort', onAbort);
      resolveWait(v);
    });
  });
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function notFound(digest: Digest, cause: unknown): BerthError {
  return new BerthError('NotFound', `blob ${digest} is not in the content store`, { cause });
}

function mismatch(digest: Digest, source: string, got: Digest): BerthError {
  return discarding(new BerthError('InvalidArgument', `blob ${digest} from ${source}: digest mismatch (got ${got})`, {
    hint: 'the source served other content than its descriptor names; nothing was stored',
  }));
}

function sizeMismatch(digest: Digest, source: string, detail: string): BerthError {
  return discarding(new BerthError('InvalidArgument', `blob ${digest} from ${source}: size mismatch: ${detail}`, {
    hint: 'the descriptor and the content disagree; nothing was stored',
  }));
}

function discarding(err: BerthError): BerthError {
  discardErrors.add(err);
  return err;
}
