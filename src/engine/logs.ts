// Reads the json-file logs the monitor writes (one `{"log","stream","time"}` object per line,
// rotated to path.1, path.2, …) for `docker logs`: oldest file first, `tail` by reading
// backwards in blocks, partial lines (pieces without "\n") joined into one record, and
// `follow` across appends and rotations until the container has stopped.
import { watch, type FSWatcher } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { BerthError } from '../errors.js';
import { nanosToRfc3339, rfc3339ToNanos, unixToNanos } from './filters.js';
import type { LogRecord } from './types.js';

export interface ReadLogsOptions {
  /** The current log file; rotated ones are path.1, path.2, … (oldest = highest). */
  path: string;
  stdout: boolean;
  stderr: boolean;
  /** Unix seconds, inclusive: a number, or Docker's exact `seconds[.nanoseconds]` text. */
  since?: number | string;
  until?: number | string;
  /** Records from the end (counting only the chosen streams); negative or 'all' = everything. */
  tail?: number | 'all';
  follow?: boolean;
  /** Ends the iteration at once (the client went away). */
  signal?: AbortSignal;
  /** Follow ends when this resolves (the container stopped, the monitor flushed), after draining. */
  stopped?: Promise<void>;
  /** Called once, when the iteration ends, if lines that are not log records were skipped. */
  onCorrupt?: (report: CorruptReport) => void;
  /** Poll period while following, for filesystems where fs.watch misses changes (ms). */
  pollMs?: number;
}

export interface CorruptReport {
  /** Lines skipped. */
  count: number;
  /** The file holding the first one. */
  file: string;
  /** The start of the first one. */
  example: string;
}

/** Longest line accepted: a 16 KiB piece escaped as JSON stays far below this. */
const MAX_LINE = 1 << 20;
/** A record built from partial pieces is emitted once it reaches this size. */
const MAX_RECORD = 1 << 20;
const BLOCK = 64 * 1024;
const FORWARD_CHUNK = 256 * 1024;
const DEFAULT_POLL_MS = 250;

interface Entry {
  log: string;
  stream: 'stdout' | 'stderr';
  time: string;
}

/**
 * The log records of one container. Throws InvalidArgument at once (before iteration) when no
 * stream is chosen, so the API can still answer with an error status.
 */
export function readLogs(opts: ReadLogsOptions): AsyncIterable<LogRecord> {
  if (!opts.stdout && !opts.stderr) {
    throw new BerthError('InvalidArgument', 'You must choose at least one stream', { hint: 'ask for stdout, stderr or both' });
  }
  const tail = opts.tail === undefined || opts.tail === 'all' || opts.tail < 0 ? undefined : Math.floor(opts.tail);
  const window = {
    since: opts.since === undefined ? undefined : unixToNanos(opts.since),
    until: opts.until === undefined ? undefined : unixToNanos(opts.until),
  };
  return { [Symbol.asyncIterator]: () => flatten(new LogReader(opts, tail, window).run()) };
}

async function* flatten(batches: AsyncGenerator<LogRecord[]>): AsyncGenerator<LogRecord> {
  for await (const batch of batches) for (const r of batch) yield r;
}

interface OpenFile {
  name: string;
  fh: FileHandle;
  ino: bigint;
  size: number;
}

class LogReader {
  private corrupt = 0;
  private firstCorrupt: CorruptReport | undefined;
  private readonly sinceNs: bigint | undefined;
  private readonly untilNs: bigint | undefined;
  private readonly sinceText: string | undefined;
  private readonly untilText: string | undefined;
  /** Both bounds have a canonical text form to compare against. */
  private readonly textBounds: boolean;
  private readonly joiner = new Joiner();
  /** Set once a record past `until` was seen: nothing more is shown. */
  private finished = false;

  constructor(
    private readonly opts: ReadLogsOptions,
    private readonly tail: number | undefined,
    window: { since: bigint | undefined; until: bigint | undefined },
  ) {
    // Docker treats a zero since/until as "not set".
    this.sinceNs = window.since === 0n ? undefined : window.since;
    this.untilNs = window.until === 0n ? undefined : window.until;
    this.sinceText = canonicalText(this.sinceNs);
    this.untilText = canonicalText(this.untilNs);
    this.textBounds = (this.sinceNs === undefined || this.sinceText !== undefined) && (this.untilNs === undefined || this.untilText !== undefined);
  }

  /** Records in batches (one per chunk read): one async step per batch, not per record. */
  async *run(): AsyncGenerator<LogRecord[]> {
    const files = await openChain(this.opts.path);
    const current: OpenFile | undefined = files[files.length - 1]?.name === this.opts.path ? files.pop() : undefined;
    let watcher: Follower | undefined;
    try {
      let resume = 0;
      if (this.tail !== undefined) {
        resume = current ? await lastLineEnd(current.fh, current.size) : 0;
        const records: LogRecord[] = [];
        if (this.tail > 0) {
          const entries = await this.scanBackward(current ? [...files, { ...current, size: resume }] : files);
          for (const e of entries) this.collect(this.joiner.push(e), records);
          if (!this.opts.follow) {
            // A last line the writer has not finished yet, then pieces still waiting for their end.
            if (current) {
              for await (const batch of this.readToEof(new LineReader(current.fh, resume), current.name, true)) {
                for (const e of batch) this.collect(this.joiner.push(e), records);
              }
            }
            for (const r of this.joiner.flush()) this.collect(r, records);
          }
        }
        yield records.slice(Math.max(0, records.length - this.tail));
        if (!this.opts.follow) return;
      } else {
        for (const f of files) {
          if (await this.endsBeforeSince(f)) continue;
          yield* this.pass(this.readToEof(new LineReader(f.fh, 0), f.name, true));
          if (this.finished) return;
        }
        if (!this.opts.follow) {
          if (current) yield* this.pass(this.readToEof(new LineReader(current.fh, 0), current.name, true));
          if (!this.finished) yield this.flushPending();
          return;
        }
      }
      for (const f of files.splice(0)) await f.fh.close();
      watcher = new Follower(this.opts);
      yield* this.follow(current, resume, watcher);
    } finally {
      watcher?.close();
      for (const f of files) await f.fh.close().catch(() => undefined);
      await current?.fh.close().catch(() => undefined);
      if (this.firstCorrupt && this.opts.onCorrupt) this.opts.onCorrupt({ ...this.firstCorrupt, count: this.corrupt });
    }
  }

  /** A rotated file whose last record is older than `since` holds nothing to show. */
  private async endsBeforeSince(f: OpenFile): Promise<boolean> {
    if (this.sinceNs === undefined) return false;
    const lines = new BackwardLines(f.fh, f.size);
    for (let i = 0; i < 8; i++) {
      const line = await lines.next();
      if (line === null) return false;
      let time: unknown;
      try {
        time = (JSON.parse(line.toString('utf8')) as { time?: unknown }).time;
      } catch {
        continue;
      }
      const ns = typeof time === 'string' ? rfc3339ToNanos(time) : undefined;
      return ns !== undefined && ns < this.sinceNs;
    }
    return false;
  }

  /** Records of a run of entries, as shown; sets `finished` and stops past `until`. */
  private async *pass(entries: AsyncIterable<Entry[]>): AsyncGenerator<LogRecord[]> {
    for await (const batch of entries) {
      const out: LogRecord[] = [];
      for (const e of batch) {
        const verdict = this.emit(this.joiner.push(e));
        if (verdict === 'stop') {
          // Pieces begun before `until` are still shown.
          out.push(...this.flushPending());
          this.finished = true;
          yield out;
          return;
        }
        if (verdict) out.push(verdict);
      }
      if (out.length > 0) yield out;
    }
  }

  private flushPending(): LogRecord[] {
    const out: LogRecord[] = [];
    for (const r of this.joiner.flush()) {
      const verdict = this.emit(r);
      if (verdict && verdict !== 'stop') out.push(verdict);
    }
    return out;
  }

  private async *follow(start: OpenFile | undefined, startPos: number, waker: Follower): AsyncGenerator<LogRecord[]> {
    const path = this.opts.path;
    let cur = start;
    let reader = cur ? new LineReader(cur.fh, startPos) : undefined;
    const missed: OpenFile[] = [];
    try {
      for (;;) {
        if (this.opts.signal?.aborted) return;
        // Read the flag before draining: everything written before `stopped` resolved is
        // then on disk and this pass reads it.
        const stopping = waker.stopped || this.untilPassed();
        if (cur && reader) {
          yield* this.pass(this.readToEof(reader, cur.name, false));
          if (this.finished) return;
          const st = await fileStat(cur.fh);
          if (st && st.size < reader.pos) reader.restart();
        }
        const now = await pathStat(path);
        if (now && (!cur || now.ino !== cur.ino)) {
          if (cur && reader) {
            // Finish the rotated file, then any file rotated past us in between.
            yield* this.pass(this.readToEof(reader, cur.name, true));
            if (this.finished) return;
            missed.push(...(await rotatedSince(path, cur.ino)));
            if (cur !== start) await cur.fh.close();
            cur = reader = undefined;
            while (missed.length > 0) {
              const f = missed[0];
              yield* this.pass(this.readToEof(new LineReader(f.fh, 0), f.name, true));
              missed.shift();
              await f.fh.close();
              if (this.finished) return;
            }
          }
          const opened = await openIfExists(path);
          if (opened) {
            cur = opened;
            reader = new LineReader(opened.fh, 0);
            continue;
          }
        }
        if (stopping) {
          if (cur && reader) yield* this.pass(this.readToEof(reader, cur.name, true));
          if (!this.finished) yield this.flushPending();
          return;
        }
        await waker.wait(this.untilNs);
      }
    } finally {
      // run() closes the file it opened; this closes the ones opened after a rotation.
      if (cur && cur !== start) await cur.fh.close().catch(() => undefined);
      for (const f of missed) await f.fh.close().catch(() => undefined);
    }
  }

  private untilPassed(): boolean {
    return this.untilNs !== undefined && BigInt(Date.now()) * 1_000_000n > this.untilNs;
  }

  /** Entries of a file from the reader's position to its end; `finish` also takes a last line without "\n". */
  private async *readToEof(reader: LineReader, file: string, finish: boolean): AsyncGenerator<Entry[]> {
    for (;;) {
      const lines = await reader.read();
      if (lines === null) break;
      const batch: Entry[] = [];
      for (const line of lines) {
        const e = this.parse(line, file);
        if (e) batch.push(e);
      }
      if (batch.length > 0) yield batch;
    }
    if (reader.oversized > 0) {
      for (let i = 0; i < reader.oversized; i++) this.noteCorrupt(file, '(a line longer than 1 MiB)');
      reader.oversized = 0;
    }
    if (finish) {
      const rest = reader.takeRest();
      if (rest.length > 0) {
        const e = this.parse(rest, file);
        if (e) yield [e];
      }
    }
  }

  /**
   * Entries (oldest first) from the end of the files (oldest file first) back to where the last
   * `tail` records begin. Stops early at records older than `since`.
   */
  private async scanBackward(files: OpenFile[]): Promise<Entry[]> {
    const tail = this.tail ?? 0;
    const out: Entry[] = [];
    const seen = { stdout: false, stderr: false };
    let count = 0;
    let closing: Entry['stream'] | undefined;
    scan: for (let i = files.length - 1; i >= 0; i--) {
      const f = files[i];
      const lines = new BackwardLines(f.fh, f.size);
      for (;;) {
        const line = await lines.next();
        if (line === null) break;
        const e = this.parse(line, f.name);
        if (!e) continue;
        if (closing !== undefined) {
          if (e.stream === closing && e.log.endsWith('\n')) break scan;
          out.push(e);
          continue;
        }
        const ns = this.sinceNs !== undefined ? rfc3339ToNanos(e.time) : undefined;
        if (ns !== undefined && this.sinceNs !== undefined && ns < this.sinceNs) break scan;
        out.push(e);
        const ends = e.log.endsWith('\n') || !seen[e.stream];
        seen[e.stream] = true;
        if (ends && this.wanted(e.stream) && this.inWindow(e.time) === 'yes') count++;
        if (count >= tail) closing = e.stream;
      }
      if (lines.oversized > 0) this.noteCorrupt(f.name, '(a line longer than 1 MiB)');
    }
    return out.reverse();
  }

  private collect(r: LogRecord | undefined, into: LogRecord[]): void {
    if (r && this.wanted(r.stream) && this.inWindow(r.time) === 'yes') into.push(r);
  }

  /** The record if it is to be shown, 'stop' once past `until`, undefined to skip it. */
  private emit(r: LogRecord | undefined): LogRecord | 'stop' | undefined {
    if (!r) return undefined;
    const w = this.inWindow(r.time);
    if (w === 'after') return 'stop';
    if (w === 'no' || !this.wanted(r.stream)) return undefined;
    return r;
  }

  private wanted(stream: Entry['stream']): boolean {
    return stream === 'stdout' ? this.opts.stdout : this.opts.stderr;
  }

  private inWindow(time: string): 'yes' | 'no' | 'after' {
    if (this.sinceNs === undefined && this.untilNs === undefined) return 'yes';
    if (this.textBounds && isCanonical(time)) {
      // The monitor's own form sorts as text: no parsing per record.
      if (this.sinceText !== undefined && time < this.sinceText) return 'no';
      if (this.untilText !== undefined && time > this.untilText) return 'after';
      return 'yes';
    }
    const ns = rfc3339ToNanos(time);
    if (ns === undefined) return 'no';
    if (this.sinceNs !== undefined && ns < this.sinceNs) return 'no';
    if (this.untilNs !== undefined && ns > this.untilNs) return 'after';
    return 'yes';
  }

  private parse(line: Buffer, file: string): Entry | undefined {
    let v: unknown;
    try {
      v = JSON.parse(line.toString('utf8'));
    } catch {
      v = undefined;
    }
    const o = v as Partial<Entry> | undefined;
    if (
      o === undefined ||
      o === null ||
      typeof o !== 'object' ||
      typeof o.log !== 'string' ||
      (o.stream !== 'stdout' && o.stream !== 'stderr') ||
      typeof o.time !== 'string'
    ) {
      this.noteCorrupt(file, line.subarray(0, 200).toString('utf8'));
      return undefined;
    }
    return { log: o.log, stream: o.stream, time: o.time };
  }

  private noteCorrupt(file: string, example: string): void {
    this.corrupt++;
    this.firstCorrupt ??= { count: 0, file, example };
  }
}

/**
 * Joins partial pieces (no trailing "\n") with the following pieces of the same stream into
 * one record, stamped with the first piece's time.
 */
class Joiner {
  private readonly pending = new Map<Entry['stream'], { time: string; parts: Buffer[]; size: number }>();

  push(e: Entry): LogRecord | undefined {
    const data = Buffer.from(e.log, 'utf8');
    const complete = e.log.endsWith('\n');
    const p = this.pending.get(e.stream);
    if (!p) {
      if (complete) return { stream: e.stream, time: e.time, line: data };
      this.pending.set(e.stream, { time: e.time, parts: [data], size: data.length });
      return undefined;
    }
    p.parts.push(data);
    p.size += data.length;
    if (!complete && p.size < MAX_RECORD) return undefined;
    this.pending.delete(e.stream);
    return { stream: e.stream, time: p.time, line: Buffer.concat(p.parts, p.size) };
  }

  /** Pieces still waiting for their end, as records (oldest first). */
  flush(): LogRecord[] {
    const out = [...this.pending.entries()].map(([stream, p]) => ({ stream, time: p.time, line: Buffer.concat(p.parts, p.size) }));
    this.pending.clear();
    return out.sort((a, b) => {
      const x = rfc3339ToNanos(a.time) ?? 0n;
      const y = rfc3339ToNanos(b.time) ?? 0n;
      return x < y ? -1 : x > y ? 1 : 0;
    });
  }
}

/** Complete lines of a file read forward from a position; keeps a torn last line for later. */
class LineReader {
  private rest: Buffer[] = [];
  private restLen = 0;
  private skipping = false;
  /** Lines dropped for exceeding MAX_LINE since the caller last looked. */
  oversized = 0;

  constructor(
    private readonly fh: FileHandle,
    public pos: number,
  ) {}

  /** The lines completed by the next chunk; null at the end of the file. */
  async read(): Promise<Buffer[] | null> {
    const buf = Buffer.allocUnsafe(FORWARD_CHUNK);
    const { bytesRead } = await this.fh.read(buf, 0, buf.length, this.pos);
    if (bytesRead === 0) return null;
    this.pos += bytesRead;
    const chunk = buf.subarray(0, bytesRead);
    const lines: Buffer[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      if (this.skipping) {
        this.skipping = false;
      } else {
        const piece = chunk.subarray(start, nl);
        // `chunk` is this call's own buffer, so lines may point into it without copying.
        const line = this.restLen > 0 ? Buffer.concat([...this.rest, piece]) : piece;
        if (line.length > 0) lines.push(line);
      }
      this.rest = [];
      this.restLen = 0;
      start = nl + 1;
    }
    if (start < chunk.length && !this.skipping) {
      this.rest.push(Buffer.from(chunk.subarray(start)));
      this.restLen += chunk.length - start;
      if (this.restLen > MAX_LINE) {
        this.rest = [];
        this.restLen = 0;
        this.skipping = true;
        this.oversized++;
      }
    }
    return lines;
  }

  /** The bytes after the last "\n" read so far (a line the writer has not finished). */
  takeRest(): Buffer {
    const rest = Buffer.concat(this.rest, this.restLen);
    this.rest = [];
    this.restLen = 0;
    this.skipping = false;
    return rest;
  }

  /** The file was truncated under us: start over. */
  restart(): void {
    this.pos = 0;
    this.takeRest();
  }
}

/** Lines of [0, end) of a file, last first, read in blocks from the end. */
class BackwardLines {
  private pos: number;
  private carry: Buffer = Buffer.alloc(0);
  private ready: Buffer[] = [];
  private done = false;
  /** The segment after the last "\n" of the next block belongs to an over-long line: drop it. */
  private dropTail = false;
  oversized = 0;

  constructor(
    private readonly fh: FileHandle,
    end: number,
  ) {
    this.pos = end;
  }

  async next(): Promise<Buffer | null> {
    while (this.ready.length === 0) {
      if (this.done) return null;
      await this.fill();
    }
    return this.ready.shift() as Buffer;
  }

  private async fill(): Promise<void> {
    if (this.pos === 0) {
      this.done = true;
      if (this.carry.length > 0 && !this.dropTail) this.ready.push(this.carry);
      this.carry = Buffer.alloc(0);
      return;
    }
    const start = Math.max(0, this.pos - BLOCK);
    const block = Buffer.allocUnsafe(this.pos - start);
    await readFully(this.fh, block, start);
    this.pos = start;
    const data = this.carry.length > 0 ? Buffer.concat([block, this.carry]) : block;
    const first = data.indexOf(0x0a);
    if (first < 0) {
      if (data.length > MAX_LINE) {
        if (!this.dropTail) this.oversized++;
        this.dropTail = true;
        this.carry = Buffer.alloc(0);
      } else {
        this.carry = data;
      }
      return;
    }
    let end = data.length;
    for (;;) {
      const nl = end > 0 ? data.lastIndexOf(0x0a, end - 1) : -1;
      if (nl < first) break;
      const seg = data.subarray(nl + 1, end);
      if (this.dropTail) this.dropTail = false;
      else if (seg.length > 0) this.ready.push(seg);
      end = nl;
      if (nl === first) break;
    }
    this.carry = Buffer.from(data.subarray(0, first));
  }
}

/** UTC with nine fraction digits (`2026-11-22T02:10:00.123456789Z`), the form the monitor writes. */
function isCanonical(time: string): boolean {
  return time.length === 30 && time.charCodeAt(29) === 0x5a && time.charCodeAt(19) === 0x2e && time.charCodeAt(10) === 0x54;
}

/** A bound in the canonical form, when it has one (years 1000–9999). */
function canonicalText(ns: bigint | undefined): string | undefined {
  if (ns === undefined || ns < 0n) return undefined;
  const text = nanosToRfc3339(ns);
  return isCanonical(text) ? text : undefined;
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesRead } = await fh.read(buf, off, buf.length - off, position + off);
    if (bytesRead === 0) {
      buf.fill(0x0a, off);
      return;
    }
    off += bytesRead;
  }
}

/** Where the last complete line of [0, size) ends (just after its "\n"); 0 if none. */
async function lastLineEnd(fh: FileHandle, size: number): Promise<number> {
  let pos = size;
  const buf = Buffer.allocUnsafe(BLOCK);
  while (pos > 0) {
    const start = Math.max(0, pos - BLOCK);
    const view = buf.subarray(0, pos - start);
    await readFully(fh, view, start);
    const nl = view.lastIndexOf(0x0a);
    if (nl >= 0) return start + nl + 1;
    pos = start;
  }
  return 0;
}

/**
 * Opens the current file and its rotations, newest first so that a rotation racing with us
 * only shifts names we have not opened yet (a file seen twice is kept once). Returns them
 * oldest first; the current file, when it exists, is last.
 */
async function openChain(path: string): Promise<OpenFile[]> {
  const out: OpenFile[] = [];
  const inodes = new Set<bigint>();
  try {
    for (let k = 0; ; k++) {
      const name = k === 0 ? path : `${path}.${k}`;
      const f = await openIfExists(name);
      if (!f) {
        if (k === 0) continue;
        break;
      }
      if (inodes.has(f.ino)) {
        await f.fh.close();
        continue;
      }
      inodes.add(f.ino);
      out.push(f);
    }
  } catch (err) {
    for (const f of out) await f.fh.close().catch(() => undefined);
    throw err;
  }
  return out.reverse();
}

/** Files rotated after the one with inode `ino` (now path.k): path.(k-1) … path.1, opened. */
async function rotatedSince(path: string, ino: bigint): Promise<OpenFile[]> {
  const names: string[] = [];
  for (let k = 1; ; k++) {
    const st = await pathStat(`${path}.${k}`);
    if (!st) return [];
    if (st.ino === ino) break;
    names.push(`${path}.${k}`);
  }
  const out: OpenFile[] = [];
  for (const name of names.reverse()) {
    const f = await openIfExists(name);
    if (f) out.push(f);
  }
  return out;
}

async function openIfExists(name: string): Promise<OpenFile | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(name, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BerthError('Internal', `open log ${name}: ${(err as Error).message}`, { cause: err });
  }
  const st = await fh.stat({ bigint: true });
  return { name, fh, ino: st.ino, size: Number(st.size) };
}

async function pathStat(name: string): Promise<{ ino: bigint } | undefined> {
  try {
    const st = await stat(name, { bigint: true });
    return { ino: st.ino };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function fileStat(fh: FileHandle): Promise<{ size: number } | undefined> {
  try {
    const st = await fh.stat();
    return { size: st.size };
  } catch {
    return undefined;
  }
}

/** Wakes the follow loop on a change in the log's directory, a poll tick, stop or abort. */
class Follower {
  stopped = false;
  private wake: (() => void) | undefined;
  private pending = false;
  private watcher: FSWatcher | undefined;
  private readonly pollMs: number;
  private readonly onAbort = (): void => this.poke();

  constructor(opts: ReadLogsOptions) {
    this.pollMs = opts.pollMs ?? DEFAULT_POLL_MS;
    const base = basename(opts.path);
    try {
      this.watcher = watch(dirname(opts.path), { persistent: false }, (_event, file) => {
        if (file === null || String(file).startsWith(base)) this.poke();
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      // No inotify (limits, odd filesystems): the poll alone keeps following.
      this.watcher = undefined;
    }
    opts.stopped?.then(
      () => {
        this.stopped = true;
        this.poke();
      },
      () => {
        this.stopped = true;
        this.poke();
      },
    );
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.signal = opts.signal;
  }

  private readonly signal: AbortSignal | undefined;

  private poke(): void {
    if (this.wake) {
      const w = this.wake;
      this.wake = undefined;
      w();
    } else {
      this.pending = true;
    }
  }

  /** Until something may have changed (or `untilNs` passes). */
  wait(untilNs: bigint | undefined): Promise<void> {
    if (this.pending || this.stopped || this.signal?.aborted) {
      this.pending = false;
      return Promise.resolve();
    }
    let ms = this.pollMs;
    if (untilNs !== undefined) {
      const left = Number((untilNs - BigInt(Date.now()) * 1_000_000n) / 1_000_000n) + 1;
      ms = Math.max(0, Math.min(ms, left));
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    this.signal?.removeEventListener('abort', this.onAbort);
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}
