// Leases protect blobs and snapshots from gc while no image record references them yet (a
// pull in progress, an import). One JSON file per lease under root/leases/.
//
// A lease is live while its process lives, or, when it has an expiry, until then whatever
// happens to the process. So a pull killed with kill -9 leaves a lease that gc ignores and
// deletes, and a lease meant to outlast its process says for how long.
import { link, mkdir, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { BerthError } from '../../errors.js';
import { writeJsonAtomic } from '../../host/fs-atomic.js';
import { processAlive, readProcStat } from '../../host/proc.js';

export interface LeaseResource {
  type: 'content' | 'snapshot';
  /** A digest for content; a snapshot key (chain ID or active key) for a snapshot. */
  id: string;
}

export interface LeaseRecord {
  id: string;
  createdAt: string;
  expiresAt?: string;
  owner: { pid: number; startTime?: number };
  resources: LeaseResource[];
}

export interface Lease {
  readonly id: string;
  /**
   * Protects the resource from gc until release(). Synchronous, so that the protection is on
   * disk before the caller's next step: add a resource BEFORE writing it (put, ingest,
   * prepareLayer) so that no gc can run between the write and the add.
   */
  add(resource: LeaseResource): void;
  release(): Promise<void>;
}

export interface CreateLeaseOptions {
  /** Default: a fresh random id. */
  id?: string;
  /** Keep the lease until then even if this process exits. */
  expiresAt?: Date | string;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const selfStartTime = readProcStat(process.pid)?.startTime;

export class LeaseStore {
  readonly dir: string;

  constructor(root: string) {
    this.dir = join(resolve(root), 'leases');
  }

  async create(opts: CreateLeaseOptions = {}): Promise<Lease> {
    const id = opts.id ?? `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
    if (!ID_PATTERN.test(id)) {
      throw new BerthError('InvalidArgument', `lease id "${id}" is invalid`, { hint: 'use up to 128 letters, digits, "_", "." or "-", starting with a letter or digit' });
    }
    let expiresAt: string | undefined;
    if (opts.expiresAt !== undefined) {
      const when = new Date(opts.expiresAt);
      if (Number.isNaN(when.getTime())) throw new BerthError('InvalidArgument', `lease ${id}: expiresAt "${String(opts.expiresAt)}" is not a date`);
      expiresAt = when.toISOString();
    }
    const record: LeaseRecord = {
      id,
      createdAt: new Date().toISOString(),
      ...(expiresAt ? { expiresAt } : {}),
      owner: { pid: process.pid, startTime: selfStartTime },
      resources: [],
    };
    await mkdir(this.dir, { recursive: true });
    // Written to a private name and linked: the lease appears complete or not at all, and
    // link refuses an existing id.
    const file = this.file(id);
    const tmp = join(this.dir, `.${id}.${process.pid}.tmp`);
    await writeFile(tmp, JSON.stringify(record) + '\n');
    try {
      await link(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new BerthError('AlreadyExists', `lease ${id} already exists`);
      throw err;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    return new FileLease(record, file);
  }

  /** The same as create({ id, expiresAt }). */
  createLease(id?: string, opts: { expiresAt?: Date | string } = {}): Promise<Lease> {
    return this.create({ id, expiresAt: opts.expiresAt });
  }

  async get(id: string): Promise<LeaseRecord | undefined> {
    if (!ID_PATTERN.test(id)) return undefined;
    let text: string;
    try {
      text = await readFile(this.file(id), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return parseLease(text, this.file(id));
  }

  /** Every lease on disk, live or not; unreadable files are listed in `problems`. */
  async scan(): Promise<{ leases: LeaseRecord[]; problems: Array<{ file: string; reason: string }> }> {
    const leases: LeaseRecord[] = [];
    const problems: Array<{ file: string; reason: string }> = [];
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { leases, problems };
      throw err;
    }
    for (const name of names) {
      if (name.startsWith('.') || !name.endsWith('.json')) continue;
      const file = join(this.dir, name);
      try {
        leases.push(parseLease(await readFile(file, 'utf8'), file));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        problems.push({ file, reason: err instanceof Error ? err.message : String(err) });
      }
    }
    return { leases, problems };
  }

  async list(): Promise<LeaseRecord[]> {
    return (await this.scan()).leases;
  }

  async delete(id: string): Promise<boolean> {
    if (!ID_PATTERN.test(id)) return false;
    try {
      await unlink(this.file(id));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  private file(id: string): string {
    return join(this.dir, `${id}.json`);
  }
}

/** Whether gc must honour the lease at `now`. */
export function leaseLive(lease: LeaseRecord, now: Date = new Date()): boolean {
  if (lease.expiresAt !== undefined) return now.getTime() < Date.parse(lease.expiresAt);
  return processAlive(lease.owner.pid, lease.owner.startTime);
}

class FileLease implements Lease {
  private released = false;
  private readonly seen = new Set<string>();

  constructor(
    private readonly record: LeaseRecord,
    private readonly file: string,
  ) {}

  get id(): string {
    return this.record.id;
  }

  add(resource: LeaseResource): void {
    if (this.released) throw new Error(`lease ${this.record.id}: add after release`);
    if (resource.type !== 'content' && resource.type !== 'snapshot') throw new Error(`lease ${this.record.id}: bad resource type ${String(resource.type)}`);
    const key = `${resource.type}\0${resource.id}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.record.resources.push({ type: resource.type, id: resource.id });
    // A lease without expiry dies with its process, so only an expiring one must survive a
    // power loss; the others skip the fsync.
    writeJsonAtomic(this.file, this.record, { durable: this.record.expiresAt !== undefined });
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      await unlink(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

function parseLease(text: string, file: string): LeaseRecord {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new BerthError('Internal', `lease file ${file} is not JSON`, { cause: err, hint: 'delete the file' });
  }
  const r = v as Partial<LeaseRecord> | null;
  const ok =
    r !== null &&
    typeof r === 'object' &&
    typeof r.id === 'string' &&
    typeof r.createdAt === 'string' &&
    (r.expiresAt === undefined || typeof r.expiresAt === 'string') &&
    typeof r.owner?.pid === 'number' &&
    Array.isArray(r.resources) &&
    r.resources.every((x) => (x?.type === 'content' || x?.type === 'snapshot') && typeof x.id === 'string');
  if (!ok) throw new BerthError('Internal', `lease file ${file} is not a lease record`, { hint: 'delete the file' });
  return r as LeaseRecord;
}
