// What both snapshotters share: one directory per snapshot, metadata inside it, and
// commits by rename.
//
//   <root>/committed/sha256-<hex>/{meta.json, fs/}      a layer stack, named by chain ID
//   <root>/active/<key>/{meta.json, fs/[, work/]}       a container's writable rootfs
//   <root>/tmp/<random>/                                being built or being removed
//
// A snapshot is built whole under tmp/ (contents, then meta.json) and renamed into place,
// and removed by renaming it back into tmp/ first: after kill -9 a snapshot is either
// complete or absent, and whatever sits in tmp/ is garbage the constructor deletes.
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { BerthError, attachCleanupError } from '../../errors.js';
import { fsyncDir, writeJsonAtomic } from '../../host/fs-atomic.js';
import { parseDigest } from '../digest.js';
import type { Digest } from '../types.js';
import type { LayerWriter, Mount, SnapshotInfo, Snapshotter, SnapshotterKind } from './snapshotter.js';

export interface SnapshotMeta {
  kind: 'committed' | 'active';
  /** The chain ID (committed) or key (active). */
  name: string;
  parent?: Digest;
  created: string;
}

const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

export abstract class DirSnapshotter implements Snapshotter {
  abstract readonly kind: SnapshotterKind;
  abstract readonly layerFormat: SnapshotterKind;
  /**
   * Whether a new layer starts from its parent's content. Overlay layers start empty, so
   * layers of one image can be prepared and unpacked before their parents are committed
   * (each waits for its parent only at commit).
   */
  readonly layerStartsFromParent: boolean = true;
  readonly root: string;
  protected readonly committedDir: string;
  protected readonly activeDir: string;
  protected readonly tmpDir: string;

  constructor(root: string) {
    this.root = root;
    this.committedDir = join(root, 'committed');
    this.activeDir = join(root, 'active');
    this.tmpDir = join(root, 'tmp');
    for (const dir of [root, this.committedDir, this.activeDir, this.tmpDir]) mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(this.tmpDir)) rmSync(join(this.tmpDir, name), { recursive: true, force: true });
  }

  /** Fills `fs` (not yet existing) with the starting content of a new layer on `parent`. */
  protected abstract populateLayer(fs: string, parent: Digest | undefined): Promise<void>;
  /** Fills `dir` (fs/ not yet existing) with an active snapshot on `parent`. */
  protected abstract populateActive(dir: string, parent: Digest | undefined): Promise<void>;
  protected abstract activeMounts(dir: string, meta: SnapshotMeta): Promise<Mount[]>;

  async hasLayer(chainId: Digest): Promise<boolean> {
    return (await this.readMeta(this.committedPath(chainId))) !== undefined;
  }

  async prepareLayer(chainId: Digest, parent: Digest | undefined): Promise<LayerWriter> {
    const target = this.committedPath(chainId);
    if (await this.hasLayer(chainId)) {
      throw new BerthError('AlreadyExists', `snapshot ${chainId} already exists`, { hint: 'check hasLayer() before unpacking a layer' });
    }
    if (parent !== undefined && this.layerStartsFromParent) await this.requireCommitted(parent, `parent of layer ${chainId}`);
    const tmp = await mkdtemp(join(this.tmpDir, 'layer-'));
    const fs = join(tmp, 'fs');
    try {
      await this.populateLayer(fs, parent);
    } catch (err) {
      await this.discard(tmp, err);
      throw err;
    }
    let done = false;
    const finish = (): void => {
      if (done) throw new Error(`layer writer for ${chainId} used after commit or abort`);
      done = true;
    };
    return {
      dir: fs,
      commit: async () => {
        finish();
        try {
          if (parent !== undefined) await this.requireCommitted(parent, `parent of layer ${chainId}`);
          const meta: SnapshotMeta = { kind: 'committed', name: chainId, created: new Date().toISOString() };
          if (parent !== undefined) meta.parent = parent;
          writeJsonAtomic(join(tmp, 'meta.json'), meta);
          await this.publish(tmp, target);
        } catch (err) {
          await this.discard(tmp, err);
          throw err;
        }
      },
      abort: async () => {
        finish();
        await rm(tmp, { recursive: true, force: true });
      },
    };
  }

  async prepare(key: string, parent: Digest | undefined): Promise<Mount[]> {
    const dir = this.activePath(key);
    if (await this.readMeta(dir)) throw new BerthError('AlreadyExists', `snapshot ${key} already exists`, { hint: 'remove it first or use another key' });
    if (parent !== undefined) await this.requireCommitted(parent, `parent of snapshot ${key}`);
    const tmp = await mkdtemp(join(this.tmpDir, 'active-'));
    const meta: SnapshotMeta = { kind: 'active', name: key, created: new Date().toISOString() };
    if (parent !== undefined) meta.parent = parent;
    try {
      await this.populateActive(tmp, parent);
      writeJsonAtomic(join(tmp, 'meta.json'), meta);
      if (!(await this.publish(tmp, dir))) {
        throw new BerthError('AlreadyExists', `snapshot ${key} already exists`, { hint: 'remove it first or use another key' });
      }
    } catch (err) {
      await this.discard(tmp, err);
      throw err;
    }
    return this.activeMounts(dir, meta);
  }

  async mounts(key: string): Promise<Mount[]> {
    const dir = this.activePath(key);
    const meta = await this.readMeta(dir);
    if (!meta) throw new BerthError('NotFound', `active snapshot ${key} not found in ${this.root}`);
    return this.activeMounts(dir, meta);
  }

  async remove(key: string): Promise<void> {
    const committed = key.includes(':');
    const dir = committed ? this.committedPath(key) : this.activePath(key);
    const meta = await this.readMeta(dir);
    if (!meta) throw new BerthError('NotFound', `snapshot ${key} not found in ${this.root}`);
    if (committed) {
      const children = (await this.list()).filter((s) => s.parent === key).map((s) => s.key);
      if (children.length > 0) {
        throw new BerthError('FailedPrecondition', `snapshot ${key} cannot be removed: ${children.length} snapshot(s) build on it (${children.slice(0, 3).join(', ')})`, {
          hint: 'remove the children first',
        });
      }
    } else {
      await this.checkNotMounted(key, dir);
    }
    const trash = await mkdtemp(join(this.tmpDir, 'removing-'));
    await rename(dir, join(trash, 'snapshot'));
    await rm(trash, { recursive: true, force: true });
  }

  async list(): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    for (const base of [this.committedDir, this.activeDir]) {
      for (const name of (await readdir(base)).sort()) {
        const meta = await this.readMeta(join(base, name));
        if (!meta) continue;
        const info: SnapshotInfo = { key: meta.name, kind: meta.kind };
        if (meta.parent !== undefined) info.parent = meta.parent;
        out.push(info);
      }
    }
    return out;
  }

  /** The committed fs dirs of chainId and its ancestors, topmost first. */
  protected async chain(chainId: Digest): Promise<string[]> {
    const dirs: string[] = [];
    const seen = new Set<string>();
    for (let id: Digest | undefined = chainId; id !== undefined; ) {
      if (seen.has(id)) throw new BerthError('Internal', `snapshot chain of ${chainId} loops at ${id} in ${this.root}`);
      seen.add(id);
      const dir = this.committedPath(id);
      const meta = await this.readMeta(dir);
      if (!meta) {
        throw new BerthError('NotFound', `snapshot ${id} (in the chain of ${chainId}) not found in ${this.root}`, {
          hint: 'the layer was removed; pull the image again',
        });
      }
      dirs.push(join(dir, 'fs'));
      id = meta.parent;
    }
    return dirs;
  }

  protected committedFs(chainId: Digest): string {
    return join(this.committedPath(chainId), 'fs');
  }

  protected committedPath(chainId: Digest): string {
    const { algorithm, hex } = parseDigest(chainId, 'snapshot chain ID');
    return join(this.committedDir, `${algorithm}-${hex}`);
  }

  protected activePath(key: string): string {
    if (!KEY_PATTERN.test(key)) {
      throw new BerthError('InvalidArgument', `snapshot key "${key}" is invalid`, {
        hint: 'use letters, digits, "_", "." and "-" (at most 255), starting with a letter or digit',
      });
    }
    return join(this.activeDir, key);
  }

  private async requireCommitted(chainId: Digest, what: string): Promise<void> {
    if (!(await this.hasLayer(chainId))) {
      throw new BerthError('NotFound', `snapshot ${chainId} (${what}) not found in ${this.root}`, { hint: 'unpack the parent layer first' });
    }
  }

  private async readMeta(dir: string): Promise<SnapshotMeta | undefined> {
    let text: string;
    try {
      text = await readFile(join(dir, 'meta.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      return JSON.parse(text) as SnapshotMeta;
    } catch (err) {
      throw new BerthError('Internal', `snapshot metadata ${join(dir, 'meta.json')} is not valid JSON`, {
        cause: err,
        hint: 'remove the snapshot directory; it is recreated on the next pull',
      });
    }
  }

  /** Renames a finished tmp dir into place; false (and tmp kept) when the name is taken. */
  private async publish(tmp: string, target: string): Promise<boolean> {
    try {
      await rename(tmp, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        // Committed layers are content-addressed: a concurrent unpack of the same chain ID
        // that won the race made the same snapshot.
        if (target.startsWith(this.committedDir)) {
          await rm(tmp, { recursive: true, force: true });
          return true;
        }
        return false;
      }
      throw err;
    }
    await fsyncDir(join(target, '..'));
    return true;
  }

  private async discard(tmp: string, original: unknown): Promise<void> {
    try {
      await rm(tmp, { recursive: true, force: true });
    } catch (cleanupError) {
      attachCleanupError(original, cleanupError);
    }
  }

  /** Removing a snapshot that is still mounted would pull the floor from under a running
   *  container (and rm would recurse into the mount). */
  private async checkNotMounted(key: string, dir: string): Promise<void> {
    const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
    const where = mountedAt(parseMountinfo(text), join(dir, 'fs'));
    if (where !== undefined) {
      throw new BerthError('FailedPrecondition', `snapshot ${key} is still mounted at ${where}`, { hint: 'unmount it (unmountAll) first' });
    }
  }
}

interface MountinfoLine {
  device: string;
  root: string;
  mountPoint: string;
  superOptions: string;
}

function parseMountinfo(text: string): MountinfoLine[] {
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  const out: MountinfoLine[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (fields.length < 5 || dash < 0) continue;
    out.push({ device: fields[2], root: unescape(fields[3]), mountPoint: unescape(fields[4]), superOptions: fields[dash + 3] ?? '' });
  }
  return out;
}

/** Where `path` is in use: as an overlay upper dir, or as the source of a bind mount (a
 *  mount of the same device whose root is path as seen from that device's root). */
function mountedAt(mounts: MountinfoLine[], path: string): string | undefined {
  const overlay = mounts.find((m) => m.superOptions.split(',').includes(`upperdir=${path}`));
  if (overlay) return overlay.mountPoint;
  let containing: MountinfoLine | undefined;
  for (const m of mounts) {
    const inside = path === m.mountPoint || path.startsWith(m.mountPoint === '/' ? '/' : `${m.mountPoint}/`);
    if (inside && (!containing || m.mountPoint.length >= containing.mountPoint.length)) containing = m;
  }
  if (!containing) return undefined;
  const rootOnDevice = join(containing.root, relative(containing.mountPoint, path));
  return mounts.find((m) => m !== containing && m.device === containing.device && m.root === rootOnDevice)?.mountPoint;
}


/** mkdir with exactly `mode`: mkdir alone is filtered by the umask, and a rootfs's top
 *  directory must not depend on the daemon's umask. */
export async function makeDir(path: string, mode = 0o755): Promise<void> {
  await mkdir(path, { mode });
  await chmod(path, mode);
}
