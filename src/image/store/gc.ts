// Mark and sweep over blobs, snapshots and leftovers of interrupted work.
//
// Roots: every image record's target, every live lease's resources, every active snapshot.
// Reachability follows index → child manifests (the ones present: an index names platforms
// never fetched), manifest → config and layers, config → diff_ids → chain IDs (snapshot
// keys), and snapshot → parent.
//
// Order matters against a pull running at the same time, which leases a resource before it
// writes it and writes the image record before it releases the lease: gc lists the sweep
// candidates first, then reads the leases, then the image records. Whatever a pull wrote
// before the listing is then either still leased or already recorded when gc looks.
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { processAlive } from '../../host/proc.js';
import { chainIds, isDigest } from '../digest.js';
import { MediaType, isIndexMediaType, isManifestMediaType, type Digest } from '../types.js';
import type { ContentStore } from './content-store.js';
import type { ImageStore } from './image-store.js';
import { leaseLive, type LeaseStore } from './leases.js';

export interface GcSnapshots {
  list(): Promise<Array<{ key: string; kind: 'committed' | 'active'; parent?: string }>>;
  remove(key: string): Promise<void>;
}

export interface GcOptions {
  content: ContentStore;
  images: ImageStore;
  leases: LeaseStore;
  snapshots?: GcSnapshots;
  /** Report what would be removed, remove nothing. */
  dryRun?: boolean;
  /** Partial downloads untouched for this long and owned by no live process go. Default 24 h. */
  ingestMaxAgeMs?: number;
  now?: Date;
}

export interface GcResult {
  removedBlobs: Digest[];
  removedSnapshots: string[];
  /** Entries of the content store's ingest/ directory (partial downloads, put temp files). */
  removedIngests: string[];
  /** Leases whose process died or whose expiry passed. */
  removedLeases: string[];
  /** Bytes of the removed blobs and ingest entries (snapshot sizes are not known here). */
  reclaimedBytes: number;
  /** What gc skipped and why: corrupt documents, unreadable records, failed removals. */
  warnings: string[];
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** Leased content of unknown type is read to find children only when it is this small. */
const SNIFF_LIMIT = 4 * 1024 * 1024;
const CONFIG_MEDIA_TYPES: readonly string[] = [MediaType.ociConfig, MediaType.dockerConfig];

export async function collectGarbage(opts: GcOptions): Promise<GcResult> {
  const { content, images, leases, snapshots, dryRun = false } = opts;
  const now = opts.now ?? new Date();
  const result: GcResult = { removedBlobs: [], removedSnapshots: [], removedIngests: [], removedLeases: [], reclaimedBytes: 0, warnings: [] };
  const warn = (msg: string): void => {
    result.warnings.push(msg);
  };

  // 1. Candidates, before any root is read (see the header).
  const blobs = new Map<Digest, number>();
  for await (const b of content.list()) blobs.set(b.digest, b.size);
  let snapshotList: Array<{ key: string; kind: 'committed' | 'active'; parent?: string }> = [];
  if (snapshots) {
    try {
      snapshotList = await snapshots.list();
    } catch (err) {
      warn(`snapshots: cannot list them, none removed: ${message(err)}`);
    }
  }

  // 2. Roots: leases, then image records.
  const marker = new Marker(content, warn);
  const leaseScan = await leases.scan();
  for (const p of leaseScan.problems) warn(`lease file ${p.file} ignored: ${p.reason}`);
  const deadLeases: string[] = [];
  for (const lease of leaseScan.leases) {
    if (!leaseLive(lease, now)) {
      deadLeases.push(lease.id);
      continue;
    }
    for (const r of lease.resources) {
      if (r.type === 'content') await marker.markContent(r.id, undefined, `lease ${lease.id}`);
      else marker.snapshots.add(r.id);
    }
  }
  const imageScan = await images.scan();
  for (const p of imageScan.problems) warn(`image record ${p.file} is unreadable: ${p.reason}`);
  for (const record of imageScan.records) {
    await marker.markContent(record.target.digest, record.target.mediaType, `image ${record.name}`, true);
  }
  // An unreadable record may reference anything: sweeping would risk deleting its image.
  const sweepBlocked = imageScan.problems.length > 0;
  if (sweepBlocked) warn('no blobs or snapshots removed while an image record is unreadable: fix or delete it, then run gc again');

  // 3. Snapshots reachable from a kept one, and every active snapshot's ancestors.
  const parents = new Map<string, string | undefined>();
  for (const s of snapshotList) parents.set(s.key, s.parent);
  const keepSnapshots = new Set<string>();
  const keepWithAncestors = (key: string): void => {
    let k: string | undefined = key;
    while (k !== undefined && !keepSnapshots.has(k)) {
      keepSnapshots.add(k);
      k = parents.get(k);
    }
  };
  for (const key of marker.snapshots) keepWithAncestors(key);
  for (const s of snapshotList) if (s.kind === 'active') keepWithAncestors(s.key);

  // 4. Sweep.
  if (!sweepBlocked) {
    for (const [digest, size] of blobs) {
      if (marker.content.has(digest)) continue;
      if (!dryRun) {
        try {
          await content.delete(digest);
        } catch (err) {
          warn(`blob ${digest}: cannot delete: ${message(err)}`);
          continue;
        }
      }
      result.removedBlobs.push(digest);
      result.reclaimedBytes += size;
    }
    // Children before parents: a snapshotter may refuse to remove a parent first.
    const doomed = snapshotList.filter((s) => s.kind === 'committed' && !keepSnapshots.has(s.key));
    const depth = (key: string): number => {
      let d = 0;
      for (let k = parents.get(key); k !== undefined && d <= parents.size; k = parents.get(k)) d++;
      return d;
    };
    doomed.sort((a, b) => depth(b.key) - depth(a.key));
    for (const s of doomed) {
      if (!dryRun) {
        try {
          await snapshots!.remove(s.key);
        } catch (err) {
          warn(`snapshot ${s.key}: cannot remove: ${message(err)}`);
          continue;
        }
      }
      result.removedSnapshots.push(s.key);
    }
  }

  const maxAge = opts.ingestMaxAgeMs ?? DAY_MS;
  for (const entry of await content.ingests()) {
    if (entry.locked || now.getTime() - entry.modifiedMs < maxAge) continue;
    if (!dryRun) {
      try {
        if (!(await content.removeIngest(entry.name))) continue;
      } catch (err) {
        warn(`ingest ${entry.path}: cannot remove: ${message(err)}`);
        continue;
      }
    }
    result.removedIngests.push(entry.name);
    result.reclaimedBytes += entry.bytes;
  }

  for (const id of deadLeases) {
    if (!dryRun) await leases.delete(id);
    result.removedLeases.push(id);
  }
  if (!dryRun) {
    await removeDeadTemps(images.dir, warn);
    await removeDeadTemps(leases.dir, warn);
  }
  return result;
}

/** Walks documents from a root and remembers every digest and snapshot key it reaches. */
class Marker {
  readonly content = new Set<Digest>();
  readonly snapshots = new Set<string>();

  constructor(
    private readonly store: ContentStore,
    private readonly warn: (msg: string) => void,
  ) {}

  /**
   * Marks a blob and what it references. `mediaType` is the descriptor's; undefined for a
   * leased digest, whose type is then sniffed from small JSON documents.
   */
  async markContent(digest: string, mediaType: string | undefined, from: string, root = false): Promise<void> {
    if (!isDigest(digest)) {
      this.warn(`${from}: "${digest}" is not a digest`);
      return;
    }
    if (this.content.has(digest)) return;
    this.content.add(digest);
    const info = await this.store.info(digest);
    if (!info) {
      if (root) this.warn(`${from}: its target ${digest} is not in the content store`);
      return;
    }
    const known = mediaType !== undefined && (isIndexMediaType(mediaType) || isManifestMediaType(mediaType) || CONFIG_MEDIA_TYPES.includes(mediaType));
    // Layers are never parsed; a root or leased blob of an unexpected type is sniffed.
    if (!known && ((mediaType !== undefined && !root) || info.size > SNIFF_LIMIT)) return;
    const where = `${from}: blob ${digest}`;
    let doc: unknown;
    try {
      doc = JSON.parse((await this.store.readBuffer(digest)).toString('utf8'));
    } catch (err) {
      if (known) this.warn(`${where} (${mediaType}) skipped: ${message(err)}`);
      return;
    }
    if (typeof doc !== 'object' || doc === null) {
      if (known) this.warn(`${where} (${mediaType}) skipped: not a JSON object`);
      return;
    }
    const d = doc as Record<string, unknown>;
    const kind = known ? kindOf(mediaType) : sniff(d);
    if (kind === 'index') await this.markIndex(d, where);
    else if (kind === 'manifest') await this.markManifest(d, where);
    else if (kind === 'config') this.markConfig(d, where);
  }

  private async markIndex(d: Record<string, unknown>, where: string): Promise<void> {
    if (!Array.isArray(d.manifests)) {
      this.warn(`${where}: index without a manifests array`);
      return;
    }
    for (const [i, m] of d.manifests.entries()) {
      const child = descriptorOf(m);
      if (!child) {
        this.warn(`${where}: manifests[${i}] is not a descriptor`);
        continue;
      }
      // A child that was never fetched (another platform) is simply not there.
      await this.markContent(child.digest, child.mediaType, `${where} manifests[${i}]`);
    }
  }

  private async markManifest(d: Record<string, unknown>, where: string): Promise<void> {
    const config = descriptorOf(d.config);
    if (config) await this.markContent(config.digest, config.mediaType ?? MediaType.ociConfig, `${where} config`);
    else this.warn(`${where}: manifest without a config descriptor`);
    if (!Array.isArray(d.layers)) {
      this.warn(`${where}: manifest without a layers array`);
      return;
    }
    for (const [i, l] of d.layers.entries()) {
      const layer = descriptorOf(l);
      if (!layer || !isDigest(layer.digest)) {
        this.warn(`${where}: layers[${i}] is not a descriptor`);
        continue;
      }
      this.content.add(layer.digest);
    }
  }

  private markConfig(d: Record<string, unknown>, where: string): void {
    const rootfs = d.rootfs as { diff_ids?: unknown } | undefined;
    const diffIds = rootfs?.diff_ids;
    if (!Array.isArray(diffIds)) return;
    const valid = diffIds.filter((x): x is string => typeof x === 'string' && isDigest(x));
    if (valid.length !== diffIds.length) {
      this.warn(`${where}: rootfs.diff_ids has entries that are not digests; its snapshots are not protected`);
      return;
    }
    for (const id of chainIds(valid)) this.snapshots.add(id);
  }
}

function kindOf(mediaType: string): 'index' | 'manifest' | 'config' {
  if (isIndexMediaType(mediaType)) return 'index';
  if (isManifestMediaType(mediaType)) return 'manifest';
  return 'config';
}

function sniff(d: Record<string, unknown>): 'index' | 'manifest' | 'config' | undefined {
  if (typeof d.mediaType === 'string' && (isIndexMediaType(d.mediaType) || isManifestMediaType(d.mediaType))) return kindOf(d.mediaType);
  if (Array.isArray(d.manifests)) return 'index';
  if (d.config !== undefined && Array.isArray(d.layers)) return 'manifest';
  if (typeof d.rootfs === 'object' && d.rootfs !== null) return 'config';
  return undefined;
}

function descriptorOf(v: unknown): { digest: string; mediaType?: string } | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as { digest?: unknown; mediaType?: unknown };
  if (typeof o.digest !== 'string') return undefined;
  return { digest: o.digest, mediaType: typeof o.mediaType === 'string' ? o.mediaType : undefined };
}

/** Temp files of atomic writes (`.<name>.<pid>.tmp`) left by a process that died. */
async function removeDeadTemps(dir: string, warn: (msg: string) => void): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^\..+\.(\d+)\.tmp$/.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    try {
      await unlink(join(dir, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') warn(`${join(dir, name)}: cannot remove: ${message(err)}`);
    }
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
