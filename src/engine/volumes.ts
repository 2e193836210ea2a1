// Local volumes: one directory per volume, `<root>/<name>/_data` holding the data and
// `<root>/<name>/volume.json` the record. volume.json is written last on create and the
// directory is renamed away first on remove, so a crash at any instant leaves either a
// whole volume or nothing visible (directories without volume.json are ignored).
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, realpath, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BerthError, isBerthError } from '../errors.js';
import { writeJsonAtomic } from '../host/index.js';
import { copyTree } from '../image/index.js';
import { filterBool, matchLabels, type Filters } from './filters.js';
import type { VolumeInfo } from './types.js';

/** Docker marks volumes created for a container's anonymous mount with this label. */
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';
/** Filter keys of GET /volumes and POST /volumes/prune (for parseFilters). */
export const VOLUME_LIST_FILTERS = ['dangling', 'driver', 'label', 'name'];
export const VOLUME_PRUNE_FILTERS = ['all', 'label', 'label!'];

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const RECORD = 'volume.json';
const DATA = '_data';

/** What volume.json holds. */
export interface VolumeRecord {
  Name: string;
  Driver: 'local';
  CreatedAt: string;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  Anonymous?: boolean;
}

export interface CreateVolumeRequest {
  Name?: string;
  Driver?: string;
  DriverOpts?: Record<string, string>;
  Labels?: Record<string, string>;
  /** Created for a container's anonymous mount: pruned by default, labelled as Docker does. */
  anonymous?: boolean;
}

/** Ids of the containers that use a volume (the engine knows; the store does not). */
export type VolumeUsers = (name: string) => string[];

export class VolumeStore {
  private readonly locks = new Map<string, Promise<unknown>>();

  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  /** The host directory a container mounts. */
  mountpoint(name: string): string {
    return join(this.root, name, DATA);
  }

  /**
   * Creates a volume, or returns the existing one of that name (as Docker) unless the request
   * asks for different labels. Only the local driver without options is supported.
   */
  async create(req: CreateVolumeRequest = {}): Promise<VolumeInfo> {
    // JSON clients send null for absent fields.
    if (req.Driver != null && req.Driver !== '' && req.Driver !== 'local') {
      throw new BerthError('InvalidArgument', `volume driver '${req.Driver}' is not supported`, {
        hint: "berth has only the 'local' driver; omit Driver or use 'local'",
      });
    }
    const opts = Object.keys(req.DriverOpts ?? {});
    if (opts.length > 0) {
      throw new BerthError('InvalidArgument', `volume driver option${opts.length > 1 ? 's' : ''} ${opts.map((o) => `'${o}'`).join(', ')} not supported by berth's local driver`, {
        hint: 'local volumes are plain directories; mount tmpfs or devices with --mount type=tmpfs or a bind mount instead',
      });
    }
    for (const [k, v] of Object.entries(req.Labels ?? {})) {
      if (typeof v !== 'string') throw new BerthError('InvalidArgument', `volume label '${k}' must be a string`);
    }
    if (req.Name != null && typeof req.Name !== 'string') throw new BerthError('InvalidArgument', 'volume Name must be a string');
    const name = req.Name == null || req.Name === '' ? randomBytes(32).toString('hex') : req.Name;
    if (!NAME_RE.test(name)) {
      throw new BerthError('InvalidArgument', `invalid volume name '${name}': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed (at least two characters)`, {
        hint: 'to mount a host directory, give an absolute path instead of a volume name',
      });
    }
    return this.locked(name, async () => {
      const existing = await this.readRecord(name);
      if (existing) {
        const wanted = { ...(req.Labels ?? {}) };
        if (Object.keys(wanted).length > 0 && !sameLabels(withoutAnonymous(existing.Labels), withoutAnonymous(wanted))) {
          throw new BerthError('Conflict', `volume ${name} already exists with different labels`, {
            hint: 'remove the volume first or create it with the same labels',
          });
        }
        return this.info(existing);
      }
      const labels: Record<string, string> = { ...(req.Labels ?? {}) };
      if (req.anonymous) labels[ANONYMOUS_LABEL] = '';
      const record: VolumeRecord = {
        Name: name,
        Driver: 'local',
        CreatedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        Labels: labels,
        Options: {},
        ...(req.anonymous ? { Anonymous: true } : {}),
      };
      try {
        // 0701: container users other than root reach _data without listing the volumes.
        await mkdir(this.root, { recursive: true, mode: 0o701 });
        await mkdir(join(this.root, name, DATA), { recursive: true, mode: 0o755 });
        writeJsonAtomic(join(this.root, name, RECORD), record);
      } catch (err) {
        throw new BerthError('Internal', `create volume ${name} under ${this.root}: ${(err as Error).message}`, {
          cause: err,
          hint: 'check that the volumes directory is writable and the disk has space',
        });
      }
      return this.info(record);
    });
  }

  async get(name: string): Promise<VolumeInfo> {
    const record = NAME_RE.test(name) ? await this.readRecord(name) : undefined;
    if (!record) throw notFound(name);
    return this.info(record);
  }

  /** The stored record, with berth's own fields (Anonymous). */
  async record(name: string): Promise<VolumeRecord> {
    const record = NAME_RE.test(name) ? await this.readRecord(name) : undefined;
    if (!record) throw notFound(name);
    return record;
  }

  /**
   * Every volume, optionally filtered with GET /volumes's filters: name (substring or regular
   * expression), driver, label (key or key=value), dangling (needs `inUse`).
   */
  async list(opts: { filters?: Filters; inUse?: VolumeUsers } = {}): Promise<VolumeInfo[]> {
    const filters = opts.filters ?? {};
    const dangling = filterBool(filters, 'dangling');
    if (dangling !== undefined && !opts.inUse) throw new Error('VolumeStore.list: the dangling filter needs inUse');
    const out: VolumeInfo[] = [];
    for (const record of await this.records()) {
      if (filters.name && !filters.name.some((n) => matchName(record.Name, n))) continue;
      if (filters.driver && !filters.driver.includes(record.Driver)) continue;
      if (!matchLabels(record.Labels, filters.label)) continue;
      if (dangling !== undefined && opts.inUse && (opts.inUse(record.Name).length === 0) !== dangling) continue;
      out.push(this.info(record));
    }
    return out;
  }

  /**
   * Removes a volume. A volume in use is refused even with force (as Docker); force only makes
   * a missing volume not an error.
   */
  async remove(name: string, opts: { force?: boolean; inUse: VolumeUsers }): Promise<void> {
    if (!NAME_RE.test(name)) {
      if (opts.force) return;
      throw notFound(name);
    }
    await this.locked(name, async () => {
      const record = await this.readRecord(name);
      if (!record) {
        if (opts.force) return;
        throw notFound(name);
      }
      const users = opts.inUse(name);
      if (users.length > 0) {
        throw new BerthError('Conflict', `remove ${name}: volume is in use - [${users.join(', ')}]`, {
          hint: 'remove the containers that use it first (docker rm -v removes a container with its anonymous volumes)',
        });
      }
      await this.removeDir(name);
    });
  }

  /**
   * Removes unused volumes: only anonymous ones unless `all=true` (Docker ≥ API 1.42), narrowed
   * by `label` (all must match) and `label!` (volumes matching all of them are kept).
   */
  async prune(opts: { filters: Filters; inUse: VolumeUsers }): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    const all = filterBool(opts.filters, 'all') ?? false;
    const keep = opts.filters['label!'];
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const record of await this.records()) {
      if (!all && !isAnonymous(record)) continue;
      if (!matchLabels(record.Labels, opts.filters.label)) continue;
      if (keep && keep.length > 0 && matchLabels(record.Labels, keep)) continue;
      const size = await this.locked(record.Name, async () => {
        if (!(await this.readRecord(record.Name))) return undefined;
        if (opts.inUse(record.Name).length > 0) return undefined;
        const bytes = await this.usage(record.Name).catch(() => 0);
        await this.removeDir(record.Name);
        return bytes;
      });
      if (size === undefined) continue;
      deleted.push(record.Name);
      reclaimed += size;
    }
    await this.sweepTrash();
    return { VolumesDeleted: deleted, SpaceReclaimed: reclaimed };
  }

  /** Bytes of the files under the volume's data (hard links counted once), for system df. */
  async usage(name: string): Promise<number> {
    await this.record(name);
    let total = 0;
    const seen = new Set<string>();
    const stack = [this.mountpoint(name)];
    while (stack.length > 0) {
      const dir = stack.pop() as string;
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      for (const entry of entries) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          stack.push(path);
          continue;
        }
        const st = await lstat(path, { bigint: true }).catch(() => undefined);
        if (!st) continue;
        if (st.nlink > 1n) {
          const key = `${st.dev}:${st.ino}`;
          if (seen.has(key)) continue;
          seen.add(key);
        }
        total += Number(st.size);
      }
    }
    return total;
  }

  /**
   * Fills an empty volume with the image's content at the mount point (Docker does on a
   * volume's first use), keeping owners, modes, times and the directory's own attributes.
   * `fromDir` must already be resolved inside the container's rootfs; a symlink or a
   * missing path copies nothing. Call it before the volume is mounted. True when it copied.
   */
  async copyUp(name: string, fromDir: string): Promise<boolean> {
    return this.locked(name, async () => {
      await this.record(name);
      const data = this.mountpoint(name);
      if ((await readdir(data)).length > 0) return false;
      const src = await lstat(fromDir).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
        throw err;
      });
      if (!src || !src.isDirectory()) return false;
      const tmp = join(this.root, name, '.copy-up');
      await rm(tmp, { recursive: true, force: true });
      try {
        await copyTree(fromDir, tmp);
        // rename(2) replaces an empty directory atomically: a crash leaves _data empty or full.
        await rename(tmp, data);
      } catch (err) {
        await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
        if (isBerthError(err)) throw err;
        throw new BerthError('Internal', `copy ${fromDir} into volume ${name}: ${(err as Error).message}`, { cause: err });
      }
      return true;
    });
  }

  private info(record: VolumeRecord): VolumeInfo {
    return {
      Name: record.Name,
      Driver: 'local',
      Mountpoint: this.mountpoint(record.Name),
      CreatedAt: record.CreatedAt,
      Labels: { ...record.Labels },
      Scope: 'local',
      Options: { ...record.Options },
    };
  }

  private async readRecord(name: string): Promise<VolumeRecord | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.root, name, RECORD), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw new BerthError('Internal', `read volume ${name}: ${(err as Error).message}`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new BerthError('Internal', `volume record ${join(this.root, name, RECORD)} is not valid JSON`, {
        cause: err,
        hint: 'the file was edited or the disk is damaged; remove the volume directory if its data is not needed',
      });
    }
    const r = parsed as Partial<VolumeRecord>;
    if (typeof r !== 'object' || r === null || r.Name !== name) {
      throw new BerthError('Internal', `volume record ${join(this.root, name, RECORD)} does not describe volume ${name}`);
    }
    return { Name: name, Driver: 'local', CreatedAt: r.CreatedAt ?? '', Labels: r.Labels ?? {}, Options: r.Options ?? {}, ...(r.Anonymous ? { Anonymous: true } : {}) };
  }

  private async records(): Promise<VolumeRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new BerthError('Internal', `list volumes in ${this.root}: ${(err as Error).message}`, { cause: err });
    }
    const out: VolumeRecord[] = [];
    for (const name of names.sort()) {
      if (!NAME_RE.test(name)) continue;
      const record = await this.readRecord(name).catch(() => undefined);
      if (record) out.push(record);
    }
    return out;
  }

  /** Renames the volume's directory away (it vanishes at once), then deletes it. */
  private async removeDir(name: string): Promise<void> {
    const dir = join(this.root, name);
    const mounts = await mountsUnder(dir);
    if (mounts.length > 0) {
      throw new BerthError('FailedPrecondition', `remove volume ${name}: ${mounts[0]} is still mounted`, {
        hint: 'a container or a leftover mount still uses it; unmount it, then remove the volume again',
      });
    }
    const trash = join(this.root, `.removing-${name}-${randomBytes(4).toString('hex')}`);
    try {
      await rename(dir, trash);
    } catch (err) {
      throw new BerthError('Internal', `remove volume ${name}: ${(err as Error).message}`, { cause: err });
    }
    try {
      await rm(trash, { recursive: true, force: true });
    } catch (err) {
      throw new BerthError('Internal', `volume ${name} was removed but its data at ${trash} could not be deleted: ${(err as Error).message}`, {
        cause: err,
        hint: 'the next volume prune retries; or delete the directory by hand',
      });
    }
  }

  private async sweepTrash(): Promise<void> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    for (const n of names) {
      if (n.startsWith('.removing-')) await rm(join(this.root, n), { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** Serialises operations on one volume name (create vs remove vs copy-up). */
  private async locked<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(name) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(name, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(name) === tail) this.locks.delete(name);
    }
  }
}

function notFound(name: string): BerthError {
  return new BerthError('NotFound', `no such volume: ${name}`, { hint: 'list volumes with `berth volume ls`' });
}

function isAnonymous(r: VolumeRecord): boolean {
  return r.Anonymous === true || Object.prototype.hasOwnProperty.call(r.Labels, ANONYMOUS_LABEL);
}

function withoutAnonymous(labels: Record<string, string>): Record<string, string> {
  const { [ANONYMOUS_LABEL]: _ignored, ...rest } = labels;
  return rest;
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
}

/** Docker matches the name filter as an unanchored regular expression. */
function matchName(name: string, pattern: string): boolean {
  try {
    return new RegExp(pattern).test(name);
  } catch {
    return name.includes(pattern);
  }
}

/** Mount points at or below `dir` (from /proc/self/mountinfo), so rm never crosses into one. */
async function mountsUnder(path: string): Promise<string[]> {
  let text: string;
  let dir: string;
  try {
    dir = await realpath(path);
    text = await readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    const point = field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    if (point === dir || point.startsWith(dir + '/')) out.push(point);
  }
  return out;
}
