// Image records: a name (a full reference, validated by the caller) → the descriptor of its
// manifest or index. One JSON file per name under root/images/, written atomically, so a
// kill -9 leaves each record either old or new.
import { readFile, readdir, unlink } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { BerthError } from '../../errors.js';
import { fsyncDir, writeJsonAtomic } from '../../host/fs-atomic.js';
import { isDigest } from '../digest.js';
import type { Descriptor } from '../types.js';

export interface ImageRecord {
  name: string;
  target: Descriptor;
  createdAt: string;
  updatedAt: string;
  labels?: Record<string, string>;
}

/** File names stay well below NAME_MAX (255) even for the longest references. */
const MAX_ENCODED = 200;

export class ImageStore {
  readonly dir: string;
  /** put() is read-modify-write: one at a time per name within this process. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(root: string) {
    this.dir = join(resolve(root), 'images');
  }

  async get(name: string): Promise<ImageRecord | undefined> {
    const file = this.file(name);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const record = parseRecord(text, file);
    // Only a hashed file name could hold another name, and then only by a file copied around.
    return record.name === name ? record : undefined;
  }

  async put(input: { name: string; target: Descriptor; labels?: Record<string, string> }): Promise<ImageRecord> {
    checkName(input.name);
    checkDescriptor(input.target, `image ${input.name}: target`);
    const file = this.file(input.name);
    const previous = this.queues.get(file) ?? Promise.resolve();
    const run = previous.then(
      () => this.write(input, file),
      () => this.write(input, file),
    );
    this.queues.set(file, run);
    const cleanup = (): void => {
      if (this.queues.get(file) === run) this.queues.delete(file);
    };
    run.then(cleanup, cleanup);
    return await run;
  }

  async delete(name: string): Promise<boolean> {
    const existing = await this.get(name);
    if (!existing) return false;
    try {
      await unlink(this.file(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    await fsyncDir(this.dir);
    return true;
  }

  /** Every readable record, sorted by name. Unreadable files are skipped; see scan(). */
  async list(): Promise<ImageRecord[]> {
    return (await this.scan()).records;
  }

  /** Every record plus the files that could not be read (gc must not sweep past those). */
  async scan(): Promise<{ records: ImageRecord[]; problems: Array<{ file: string; reason: string }> }> {
    const records: ImageRecord[] = [];
    const problems: Array<{ file: string; reason: string }> = [];
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records, problems };
      throw err;
    }
    for (const entry of names) {
      if (entry.startsWith('.') || !entry.endsWith('.json')) continue;
      const file = join(this.dir, entry);
      try {
        records.push(parseRecord(await readFile(file, 'utf8'), file));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        problems.push({ file, reason: err instanceof Error ? err.message : String(err) });
      }
    }
    records.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { records, problems };
  }

  /** The record's file: the name percent-encoded, or its sha256 when that would be too long. */
  file(name: string): string {
    const encoded = encodeURIComponent(name);
    const base = encoded.length <= MAX_ENCODED ? encoded : `sha256-${createHash('sha256').update(name).digest('hex')}`;
    return join(this.dir, `${base}.json`);
  }

  private async write(input: { name: string; target: Descriptor; labels?: Record<string, string> }, file: string): Promise<ImageRecord> {
    const existing = await this.get(input.name);
    const now = new Date().toISOString();
    const record: ImageRecord = {
      name: input.name,
      target: { ...input.target },
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
      ...(input.labels && Object.keys(input.labels).length > 0 ? { labels: { ...input.labels } } : {}),
    };
    mkdirSync(this.dir, { recursive: true });
    writeJsonAtomic(file, record);
    return record;
  }
}

function checkName(name: unknown): void {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\0')) {
    throw new BerthError('InvalidArgument', `image name ${JSON.stringify(name)} is invalid`, { hint: 'pass a full reference such as docker.io/library/busybox:latest' });
  }
}

function checkDescriptor(d: Descriptor, where: string): void {
  if (typeof d !== 'object' || d === null) throw new BerthError('InvalidArgument', `${where} is not a descriptor`);
  if (typeof d.mediaType !== 'string' || d.mediaType === '') throw new BerthError('InvalidArgument', `${where}.mediaType is missing`);
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) throw new BerthError('InvalidArgument', `${where}.digest "${String(d.digest)}" is not a digest`);
  if (!Number.isSafeInteger(d.size) || d.size < 0) throw new BerthError('InvalidArgument', `${where}.size ${String(d.size)} is not a byte count`);
}

function parseRecord(text: string, file: string): ImageRecord {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new BerthError('Internal', `image record ${file} is not JSON`, { cause: err, hint: 'delete the file and pull or tag the image again' });
  }
  const r = v as Partial<ImageRecord> | null;
  if (r === null || typeof r !== 'object' || typeof r.name !== 'string' || typeof r.createdAt !== 'string' || typeof r.updatedAt !== 'string') {
    throw new BerthError('Internal', `image record ${file} lacks name, createdAt or updatedAt`, { hint: 'delete the file and pull or tag the image again' });
  }
  try {
    checkDescriptor(r.target as Descriptor, `image record ${file}: target`);
  } catch (err) {
    throw new BerthError('Internal', (err as Error).message, { hint: 'delete the file and pull or tag the image again' });
  }
  if (r.labels !== undefined && (typeof r.labels !== 'object' || r.labels === null)) {
    throw new BerthError('Internal', `image record ${file}: labels is not an object`);
  }
  return r as ImageRecord;
}

