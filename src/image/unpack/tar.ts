// A streaming tar reader and writer (POSIX ustar + PAX, GNU extensions on read) for image
// layers. Layers are large and untrusted: the reader holds one source chunk at a time,
// never trusts a declared size beyond what arrives, and names the entry and byte offset in
// every error. The writer produces PAX-capable ustar, the format the image-spec names.
import { Readable } from 'node:stream';
import { BerthError } from '../../errors.js';

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarEntry {
  /** As stored in the archive (after PAX/GNU long-name substitution); not normalised. */
  name: string;
  type: TarEntryType;
  /** Permission bits incl. setuid/setgid/sticky (0o7777); the kind comes from `type`. */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of body that follow the header (0 for most non-files). */
  size: number;
  /** Seconds since the epoch; PAX may give a fraction. */
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, Buffer>;
  uname?: string;
  gname?: string;
}

export interface TarReadOptions {
  /** Entries skipped (unknown types) and tolerated oddities (a lone zero block). */
  onWarning?(message: string): void;
  /** Names the archive in errors, e.g. 'layer sha256:…'. */
  where?: string;
}

const BLOCK = 512;
const EMPTY = Buffer.alloc(0);
/** PAX and GNU long-name bodies are metadata; nothing legitimate comes near this. */
const MAX_META_SIZE = 16 * 1024 * 1024;

/** One source chunk at a time, handed out as views (no copies) wherever a block fits. */
class ByteSource {
  private chunk: Buffer = EMPTY;
  private pos = 0;
  private done = false;
  /** Bytes consumed from the stream so far. */
  offset = 0;
  private readonly it: AsyncIterator<unknown>;

  constructor(private readonly stream: Readable) {
    this.it = stream[Symbol.asyncIterator]();
  }

  /** Whether data is available; false only at the end of the stream. */
  private async fill(): Promise<boolean> {
    while (this.pos >= this.chunk.length) {
      if (this.done) return false;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      const v = r.value;
      this.chunk = Buffer.isBuffer(v) ? v : Buffer.from(v as string);
      this.pos = 0;
    }
    return true;
  }

  /** Exactly n bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    if (!(await this.fill())) return EMPTY;
    if (this.chunk.length - this.pos >= n) {
      const out = this.chunk.subarray(this.pos, this.pos + n);
      this.pos += n;
      this.offset += n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n && (await this.fill())) {
      const take = Math.min(n - got, this.chunk.length - this.pos);
      this.chunk.copy(out, got, this.pos, this.pos + take);
      this.pos += take;
      got += take;
      this.offset += take;
    }
    return got === n ? out : out.subarray(0, got);
  }

  /** Up to max bytes from the current chunk (a view); undefined at the end of the stream. */
  async take(max: number): Promise<Buffer | undefined> {
    if (!(await this.fill())) return undefined;
    const n = Math.min(max, this.chunk.length - this.pos);
    const out = this.chunk.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.offset += n;
    return out;
  }

  /** Skips up to n bytes; returns how many were skipped (fewer only at the end). */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0 && (await this.fill())) {
      const take = Math.min(left, this.chunk.length - this.pos);
      this.pos += take;
      this.offset += take;
      left -= take;
    }
    return n - left;
  }

  /** Reads and discards everything up to the end of the stream. */
  async drain(): Promise<void> {
    this.offset += this.chunk.length - this.pos;
    this.chunk = EMPTY;
    this.pos = 0;
    while (!this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else this.offset += Buffer.isBuffer(r.value) ? r.value.length : Buffer.byteLength(r.value as string);
    }
  }

  destroy(err?: Error): void {
    this.done = true;
    this.stream.destroy(err);
  }
}

interface PaxValues {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  mtime?: number;
  xattrs?: Record<string, Buffer>;
  sparse?: boolean;
}

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i += 8) if (b.readBigUInt64LE(i) !== 0n) return false;
  return true;
}

function cString(b: Buffer, start: number, len: number): string {
  const end = b.indexOf(0, start);
  return b.toString('utf8', start, end === -1 || end > start + len ? start + len : end);
}

/** Octal (NUL/space terminated, maybe space-padded) or GNU base-256; NaN if malformed. */
function parseNumber(b: Buffer, start: number, len: number): number {
  const first = b[start]!;
  if (first & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit of the first byte as marker
    let v = 0n;
    for (let i = 0; i < len; i++) v = (v << 8n) | BigInt(b[start + i]!);
    if (first & 0x40) v -= 1n << BigInt(8 * len);
    else v &= (1n << BigInt(8 * len - 1)) - 1n;
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : NaN;
  }
  let i = start;
  const end = start + len;
  while (i < end && b[i] === 0x20) i++;
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) return NaN;
    v = v * 8 + (c - 0x30);
    digits++;
  }
  return digits === 0 ? 0 : v;
}

function checksumOk(b: Buffer): { ok: boolean; stored: number; computed: number } {
  const stored = parseNumber(b, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  // Some historic writers summed signed chars; GNU tar accepts both and so do we.
  return { ok: stored === unsigned || stored === signed, stored, computed: unsigned };
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

const SKIPPED: Record<string, string> = {
  S: 'GNU sparse files are not supported',
  V: 'volume labels carry no file',
  M: 'multi-volume continuation entries are not supported',
  N: 'old GNU long-name entries are not supported',
  D: 'GNU dump directories are not supported',
};

/**
 * Pull-style reader: `next()` returns each entry's header, `readChunk()` its body in pieces
 * (views into the source chunks). The body left unread when `next()` is called is skipped.
 * At the end of the archive the rest of the stream is consumed, so a hash computed upstream
 * covers every byte (that is how diffIDs are defined).
 */
export class TarReader {
  private readonly src: ByteSource;
  private readonly where: string;
  private readonly onWarning: (message: string) => void;
  private remaining = 0;
  private padding = 0;
  private ended = false;
  private global: PaxValues = {};
  private current: { name: string; offset: number; size: number } | undefined;

  constructor(stream: Readable, opts: TarReadOptions = {}) {
    this.src = new ByteSource(stream);
    this.where = opts.where ?? 'tar';
    this.onWarning = opts.onWarning ?? (() => {});
  }

  /** Bytes consumed from the stream so far. */
  get offset(): number {
    return this.src.offset;
  }

  /** Bytes of the current entry's body not read yet. */
  get bodyRemaining(): number {
    return this.remaining;
  }

  private fail(message: string, hint?: string): never {
    throw new BerthError('InvalidArgument', `${this.where}: ${message}`, {
      hint: hint ?? 'the archive is corrupt or truncated; fetch it again',
    });
  }

  private truncated(headerOffset?: number): never {
    if (headerOffset !== undefined) {
      this.fail(`truncated archive: the stream ended inside the header at offset ${headerOffset}, after ${this.src.offset - headerOffset} of 512 bytes`);
    }
    const c = this.current;
    if (c) {
      this.fail(`truncated archive: entry "${c.name}" (header at offset ${c.offset}) declares ${c.size} bytes but the stream ended at offset ${this.src.offset}`);
    }
    this.fail(`truncated archive: the stream ended at offset ${this.src.offset}`);
  }

  /** Next piece of the current body; undefined once the body is complete. */
  async readChunk(max = 1 << 20): Promise<Buffer | undefined> {
    if (this.remaining === 0) return undefined;
    const chunk = await this.src.take(Math.min(max, this.remaining));
    if (!chunk) this.truncated();
    this.remaining -= chunk.length;
    return chunk;
  }

  private async skipBody(): Promise<void> {
    const want = this.remaining + this.padding;
    const got = await this.src.skip(want);
    this.remaining = 0;
    this.padding = 0;
    if (got < want) this.truncated();
  }

  /** A metadata body (PAX, GNU long name) read whole. */
  private async readMeta(name: string, size: number, offset: number): Promise<Buffer> {
    if (size > MAX_META_SIZE) this.fail(`entry "${name}" at offset ${offset}: ${size}-byte metadata record is implausibly large`);
    this.current = { name, offset, size };
    const body = await this.src.read(size);
    if (body.length < size) this.truncated();
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if ((await this.src.skip(pad)) < pad) this.truncated();
    return Buffer.from(body);
  }

  private parsePax(data: Buffer, into: PaxValues, offset: number): void {
    let i = 0;
    while (i < data.length) {
      const space = data.indexOf(0x20, i);
      const len = space === -1 ? NaN : Number(data.toString('latin1', i, space));
      if (!Number.isSafeInteger(len) || len <= 0 || i + len > data.length || data[i + len - 1] !== 0x0a) {
        this.fail(`malformed PAX record in the extended header at offset ${offset}`);
      }
      const record = data.subarray(space + 1, i + len - 1);
      i += len;
      const eq = record.indexOf(0x3d);
      if (eq === -1) this.fail(`malformed PAX record in the extended header at offset ${offset}: no "="`);
      const key = record.toString('utf8', 0, eq);
      const raw = record.subarray(eq + 1);
      const value = (): string => raw.toString('utf8');
      const num = (): number => {
        const n = Number(value());
        if (!Number.isFinite(n) || n < 0 || (key !== 'mtime' && !Number.isSafeInteger(n))) {
          this.fail(`PAX header at offset ${offset}: ${key}="${value()}" is not a valid number`);
        }
        return n;
      };
      if (key === 'path') into.path = value();
      else if (key === 'linkpath') into.linkpath = value();
      else if (key === 'size') into.size = num();
      else if (key === 'uid') into.uid = num();
      else if (key === 'gid') into.gid = num();
      else if (key === 'uname') into.uname = value();
      else if (key === 'gname') into.gname = value();
      else if (key === 'mtime') into.mtime = num();
      else if (key.startsWith('SCHILY.xattr.')) {
        (into.xattrs ??= {})[key.slice('SCHILY.xattr.'.length)] = Buffer.from(raw);
      } else if (key.startsWith('LIBARCHIVE.xattr.')) {
        const name = decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length));
        (into.xattrs ??= {})[name] = Buffer.from(value(), 'base64');
      } else if (key.startsWith('GNU.sparse.')) into.sparse = true;
    }
  }

  /** The next entry, or undefined at the end of the archive (the stream is then consumed). */
  async next(): Promise<TarEntry | undefined> {
    if (this.ended) return undefined;
    await this.skipBody();
    let pax: PaxValues = {};
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const offset = this.src.offset;
      this.current = undefined;
      const header = await this.src.read(BLOCK);
      if (header.length === 0) {
        // No end-of-archive marker at all: GNU tar accepts this silently.
        this.ended = true;
        return undefined;
      }
      if (header.length < BLOCK) this.truncated(offset);
      if (isZeroBlock(header)) {
        const second = await this.src.read(BLOCK);
        if (second.length === BLOCK && !isZeroBlock(second)) {
          this.onWarning(`${this.where}: a lone zero block at offset ${offset}; the rest is ignored as GNU tar does`);
        }
        this.ended = true;
        await this.src.drain();
        return undefined;
      }
      const rawName = cString(header, 0, 100);
      const sum = checksumOk(header);
      if (!sum.ok) {
        this.fail(
          `bad header checksum for entry "${rawName}" at offset ${offset} (stored ${Number.isNaN(sum.stored) ? 'garbage' : sum.stored}, computed ${sum.computed})`,
        );
      }
      const typeflag = String.fromCharCode(header[156]!);
      const magic = header.toString('latin1', 257, 263);
      const posix = magic === 'ustar\0';
      const headerSize = parseNumber(header, 124, 12);
      if (Number.isNaN(headerSize) || headerSize < 0) this.fail(`entry "${rawName}" at offset ${offset}: invalid size field`);

      if (typeflag === 'x' || typeflag === 'g') {
        const data = await this.readMeta(rawName, headerSize, offset);
        if (typeflag === 'x') this.parsePax(data, pax, offset);
        else this.parsePax(data, this.global, offset);
        continue;
      }
      if (typeflag === 'L' || typeflag === 'K') {
        const data = await this.readMeta(rawName, headerSize, offset);
        const end = data.indexOf(0);
        const value = data.toString('utf8', 0, end === -1 ? data.length : end);
        if (typeflag === 'L') longName = value;
        else longLink = value;
        continue;
      }

      // Global headers set defaults for attributes, never for a name or a size.
      const { path: _p, linkpath: _l, size: _s, ...globals } = this.global;
      const merged: PaxValues = { ...globals, ...pax, xattrs: { ...globals.xattrs, ...pax.xattrs } };
      const size = merged.size ?? headerSize;
      let name = merged.path ?? longName;
      if (name === undefined) {
        name = rawName;
        const prefix = posix ? cString(header, 345, 155) : '';
        if (prefix) name = `${prefix}/${name}`;
      }
      this.current = { name, offset, size };
      this.remaining = size;
      this.padding = (BLOCK - (size % BLOCK)) % BLOCK;

      let type = TYPES[typeflag];
      if (type === undefined) {
        const why = SKIPPED[typeflag] ?? 'unknown entry type';
        this.onWarning(`${this.where}: skipped entry "${name}" at offset ${offset}: type '${typeflag === '\0' ? '\\0' : typeflag}' (${why})`);
        await this.skipBody();
        pax = {};
        longName = longLink = undefined;
        continue;
      }
      if (merged.sparse) {
        this.fail(`entry "${name}" at offset ${offset} is a PAX sparse file, which berth does not support`, 'rebuild the layer without --sparse');
      }
      // Pre-POSIX archives mark directories only by the trailing slash.
      if (type === 'file' && typeflag !== '7' && name.endsWith('/')) type = 'dir';

      const num = (v: number | undefined, start: number, len: number, field: string): number => {
        if (v !== undefined) return v;
        const n = parseNumber(header, start, len);
        if (Number.isNaN(n)) this.fail(`entry "${name}" at offset ${offset}: invalid ${field} field`);
        return n;
      };
      const mode = parseNumber(header, 100, 8);
      if (Number.isNaN(mode)) this.fail(`entry "${name}" at offset ${offset}: invalid mode field`);
      const entry: TarEntry = {
        name,
        type,
        mode: mode & 0o7777,
        uid: num(merged.uid, 108, 8, 'uid'),
        gid: num(merged.gid, 116, 8, 'gid'),
        size,
        mtime: num(merged.mtime, 136, 12, 'mtime'),
      };
      const linkname = merged.linkpath ?? longLink ?? cString(header, 157, 100);
      if (type === 'symlink' || type === 'hardlink') entry.linkname = linkname;
      if (type === 'char' || type === 'block') {
        entry.devmajor = num(undefined, 329, 8, 'devmajor');
        entry.devminor = num(undefined, 337, 8, 'devminor');
      }
      const uname = merged.uname ?? (magic.startsWith('ustar') ? cString(header, 265, 32) : '');
      const gname = merged.gname ?? (magic.startsWith('ustar') ? cString(header, 297, 32) : '');
      if (uname) entry.uname = uname;
      if (gname) entry.gname = gname;
      if (merged.xattrs && Object.keys(merged.xattrs).length > 0) entry.xattrs = merged.xattrs;
      return entry;
    }
  }

  /** Stops reading and destroys the source (after an error or an abandoned read). */
  destroy(err?: Error): void {
    this.ended = true;
    this.src.destroy(err);
  }
}

/**
 * The archive as an async iterable of entries with their bodies as streams. A body must be
 * consumed before the next entry is requested or it is skipped (and destroyed). Leaving the
 * loop early destroys the source stream.
 */
export async function* readTar(stream: Readable, opts: TarReadOptions = {}): AsyncGenerator<{ entry: TarEntry; body: Readable }> {
  const reader = new TarReader(stream, opts);
  let pending: Promise<void> = Promise.resolve();
  let body: Readable | undefined;
  let finished = false;
  try {
    for (;;) {
      await pending;
      if (body && !body.readableEnded) body.destroy();
      const entry = await reader.next();
      if (!entry) {
        finished = true;
        return;
      }
      const b: Readable = new Readable({
        highWaterMark: 64 * 1024,
        read(size: number) {
          pending = reader.readChunk(Math.max(size, 64 * 1024)).then(
            (chunk) => {
              b.push(chunk ?? null);
            },
            (err: Error) => {
              b.destroy(err);
            },
          );
        },
      });
      body = b;
      yield { entry, body: b };
    }
  } finally {
    if (!finished) reader.destroy();
  }
}

// ---------------------------------------------------------------------------------------
// Writer

const TYPEFLAG: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

const MAX_OCTAL_8 = 0o7777777;
const MAX_OCTAL_12 = 0o77777777777;

function writeString(b: Buffer, value: string, start: number, len: number): void {
  b.write(value, start, len, 'utf8');
}

function writeOctal(b: Buffer, value: number, start: number, len: number): void {
  b.write(`${value.toString(8).padStart(len - 1, '0')}\0`, start, len, 'latin1');
}

function paxRecord(key: string, value: Buffer | string): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  // The length counts its own digits: iterate until the digit count is stable.
  const body = Buffer.byteLength(key) + v.length + 3;
  let len = body + 1;
  while (String(len).length + body !== len) len = String(len).length + body;
  return Buffer.concat([Buffer.from(`${len} ${key}=`, 'utf8'), v, Buffer.from('\n')]);
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Splits a long path into ustar prefix (≤155 bytes) + name (≤100 bytes) when possible. */
function splitUstar(path: string): { prefix: string; name: string } | undefined {
  const bytes = Buffer.byteLength(path);
  if (bytes <= 100) return { prefix: '', name: path };
  if (bytes > 256) return undefined;
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name.length > 0) return { prefix, name };
  }
  return undefined;
}

function ustarBlock(fields: {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}): Buffer {
  const b = Buffer.alloc(BLOCK);
  writeString(b, fields.name, 0, 100);
  writeOctal(b, fields.mode, 100, 8);
  writeOctal(b, fields.uid, 108, 8);
  writeOctal(b, fields.gid, 116, 8);
  writeOctal(b, fields.size, 124, 12);
  writeOctal(b, fields.mtime, 136, 12);
  b.write(fields.typeflag, 156, 1, 'latin1');
  writeString(b, fields.linkname, 157, 100);
  b.write('ustar\x0000', 257, 8, 'latin1');
  writeString(b, fields.uname, 265, 32);
  writeString(b, fields.gname, 297, 32);
  writeOctal(b, fields.devmajor, 329, 8);
  writeOctal(b, fields.devminor, 337, 8);
  writeString(b, fields.prefix, 345, 155);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

function isAscii(s: string): boolean {
  return /^[\x01-\x7f]*$/.test(s);
}

/**
 * The header block(s) for one entry: a PAX extended header first when a field does not fit
 * ustar (long or non-ASCII names, big sizes and ids, fractional mtimes, xattrs). Exported for
 * test builders that need to craft archives the writer would refuse (bad sizes, evil names).
 */
export function tarHeader(entry: TarEntry): Buffer {
  const records: Buffer[] = [];
  let name = entry.name;
  if (entry.type === 'dir' && !name.endsWith('/')) name += '/';
  let split = isAscii(name) ? splitUstar(name) : undefined;
  if (!split) {
    records.push(paxRecord('path', name));
    split = { prefix: '', name: Buffer.from(name).subarray(0, 100).toString('latin1').replace(/[^\x01-\x7f]/g, '_') };
  }
  let linkname = entry.linkname ?? '';
  if (Buffer.byteLength(linkname) > 100 || !isAscii(linkname)) {
    records.push(paxRecord('linkpath', linkname));
    linkname = '';
  }
  const size = entry.type === 'file' ? entry.size : 0;
  let headerSize = size;
  if (size > MAX_OCTAL_12) {
    records.push(paxRecord('size', String(size)));
    headerSize = 0;
  }
  let uid = entry.uid;
  if (uid > MAX_OCTAL_8 || uid < 0) {
    records.push(paxRecord('uid', String(uid)));
    uid = 0;
  }
  let gid = entry.gid;
  if (gid > MAX_OCTAL_8 || gid < 0) {
    records.push(paxRecord('gid', String(gid)));
    gid = 0;
  }
  let mtime = entry.mtime;
  if (!Number.isInteger(mtime) || mtime < 0 || mtime > MAX_OCTAL_12) {
    records.push(paxRecord('mtime', String(mtime)));
    mtime = Math.min(Math.max(Math.floor(mtime), 0), MAX_OCTAL_12);
  }
  let uname = entry.uname ?? '';
  if (Buffer.byteLength(uname) > 32 || !isAscii(uname)) {
    records.push(paxRecord('uname', uname));
    uname = '';
  }
  let gname = entry.gname ?? '';
  if (Buffer.byteLength(gname) > 32 || !isAscii(gname)) {
    records.push(paxRecord('gname', gname));
    gname = '';
  }
  for (const [key, value] of Object.entries(entry.xattrs ?? {})) records.push(paxRecord(`SCHILY.xattr.${key}`, value));

  const blocks: Buffer[] = [];
  if (records.length > 0) {
    const data = Buffer.concat(records);
    const base = name.replace(/\/+$/, '').split('/').pop() ?? '';
    const paxName = `PaxHeaders/${base}`.slice(0, 99).replace(/[^\x01-\x7f]/g, '_');
    blocks.push(
      ustarBlock({
        name: paxName,
        prefix: '',
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: data.length,
        mtime: 0,
        typeflag: 'x',
        linkname: '',
        uname: '',
        gname: '',
        devmajor: 0,
        devminor: 0,
      }),
      data,
      Buffer.alloc(padding(data.length)),
    );
  }
  blocks.push(
    ustarBlock({
      name: split.name,
      prefix: split.prefix,
      mode: entry.mode & 0o7777,
      uid,
      gid,
      size: headerSize,
      mtime,
      typeflag: TYPEFLAG[entry.type],
      linkname,
      uname,
      gname,
      devmajor: entry.devmajor ?? 0,
      devminor: entry.devminor ?? 0,
    }),
  );
  return blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks);
}

/** The zero padding that follows a body of `size` bytes. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc(padding(size));
}

/** The end-of-archive marker: two zero blocks. */
export const TAR_END = Buffer.alloc(2 * BLOCK);

/**
 * A streaming tar writer: a Readable of the archive. `add` resolves once the entry is handed
 * to the stream (waiting while the consumer is behind); `finish` writes the end marker.
 */
export class TarWriter extends Readable {
  private waiting: (() => void) | undefined;
  private ended = false;

  constructor() {
    super({ highWaterMark: 256 * 1024 });
    this.once('close', () => this._read());
  }

  override _read(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  private async put(chunk: Buffer): Promise<void> {
    if (this.destroyed) throw new Error('TarWriter: the stream was destroyed');
    if (!this.push(chunk)) await new Promise<void>((resolve) => (this.waiting = resolve));
  }

  /** Adds one entry; a file's body (Buffer, string or stream) must be exactly entry.size bytes. */
  async add(entry: TarEntry, body?: Buffer | string | Readable): Promise<void> {
    if (this.ended) throw new Error('TarWriter: add after finish');
    if (entry.type !== 'file' && body !== undefined && !(Buffer.isBuffer(body) && body.length === 0)) {
      throw new Error(`TarWriter: entry "${entry.name}" of type ${entry.type} cannot have a body`);
    }
    const size = entry.type === 'file' ? entry.size : 0;
    const buf = body === undefined ? EMPTY : typeof body === 'string' ? Buffer.from(body) : Buffer.isBuffer(body) ? body : undefined;
    if (buf && buf.length !== size) throw new Error(`TarWriter: entry "${entry.name}" declares ${size} bytes but the body has ${buf.length}`);
    await this.put(tarHeader(entry));
    if (entry.type !== 'file') return;
    if (buf) {
      if (buf.length > 0) await this.put(buf);
    } else {
      // A stream of the wrong length is found out too late: the archive is already broken.
      let written = 0;
      for await (const chunk of body as Readable) {
        const piece = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
        written += piece.length;
        if (written > size) break;
        await this.put(piece);
      }
      if (written !== size) {
        const err = new Error(`TarWriter: entry "${entry.name}" declares ${size} bytes but the body has ${written > size ? 'more' : written}`);
        this.destroy(err);
        throw err;
      }
    }
    const pad = padding(size);
    if (pad > 0) await this.put(Buffer.alloc(pad));
  }

  /** Writes the end-of-archive marker and ends the stream. */
  async finish(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.put(TAR_END);
    this.push(null);
  }
}
