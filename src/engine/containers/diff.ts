// docker diff: what a container changed in its filesystem, read from the writable (upper)
// directory of its overlay rootfs and compared with the image's layers below it. The same
// walk gives `docker commit` the entries of its new layer.
//
// Docker keeps /etc/hosts, /etc/hostname, /etc/resolv.conf and the /dev, /proc, /sys mount
// points in an "init" layer under the container's own, so they never show as changes; berth
// creates them in the writable layer, so the walk leaves out every mount point berth made
// (and directories that exist only to hold one). A user's volume or bind mount point is the
// container's own change, as in Docker.
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { BerthError } from '../../errors.js';
import { lgetxattr } from '../../host/sys.js';
import type { EngineContext } from '../context.js';
import type { FilesystemChange } from '../types.js';
import type { ContainerRecord } from './record.js';
import { readSpecFile } from './spec-file.js';

/** Docker's change kinds. */
export const ChangeKind = { Modified: 0, Added: 1, Deleted: 2 } as const;
export type ChangeKindValue = (typeof ChangeKind)[keyof typeof ChangeKind];

const OPAQUE_XATTR = 'trusted.overlay.opaque';

/** One change with what commit needs to write it as a layer entry. */
export interface LayerChange {
  /** Absolute path inside the container. */
  path: string;
  kind: ChangeKindValue;
  /** Where the entry lives in the upper dir (absent for a deletion). */
  host?: string;
  /** A directory whose lower content is hidden (the overlay opaque marker). */
  opaque?: boolean;
  /** A deletion implied by an opaque parent: the layer's opaque marker says it already. */
  underOpaque?: boolean;
}

/** A container's writable layer and the read-only layers under it (topmost first). */
export interface LayerStack {
  upper: string;
  lowers: string[];
}

function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function isOpaque(path: string): boolean {
  const v = lgetxattr(path, OPAQUE_XATTR);
  return v !== undefined && v.length === 1 && v[0] === 0x79; // 'y'
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

type LayerLookup = { kind: 'found'; st: Stats; host: string } | { kind: 'absent' } | { kind: 'gone' };

/**
 * `comps` in one layer, component by component without following symlinks. 'gone' means
 * this layer hides the path from the layers below (a whiteout, an opaque parent, a
 * non-directory in the way); 'absent' lets the lookup go on below.
 */
function lookupInLayer(layer: string, comps: string[]): LayerLookup {
  let hidesBelow = false;
  for (let i = 0; i < comps.length; i++) {
    const host = join(layer, ...comps.slice(0, i + 1));
    const st = lstatOrUndefined(host);
    if (!st) return hidesBelow ? { kind: 'gone' } : { kind: 'absent' };
    if (isWhiteout(st)) return { kind: 'gone' };
    if (i === comps.length - 1) return { kind: 'found', st, host };
    if (!st.isDirectory()) return { kind: 'gone' };
    if (isOpaque(host)) hidesBelow = true;
  }
  return { kind: 'absent' };
}

/** What the image shows at `comps` (the merged lower layers), or undefined. */
function belowStat(lowers: string[], comps: string[]): Stats | undefined {
  for (const layer of lowers) {
    const r = lookupInLayer(layer, comps);
    if (r.kind === 'found') return r.st;
    if (r.kind === 'gone') return undefined;
  }
  return undefined;
}

/** The names the image shows in the directory `comps`. */
function belowChildren(lowers: string[], comps: string[]): Set<string> {
  const seen = new Map<string, boolean>();
  for (const layer of lowers) {
    const r = comps.length === 0 ? ({ kind: 'found', st: lstatSync(layer), host: layer } as LayerLookup) : lookupInLayer(layer, comps);
    if (r.kind === 'gone') break;
    if (r.kind === 'absent') continue;
    if (!r.st.isDirectory()) break;
    for (const name of readdirSync(r.host)) {
      if (seen.has(name)) continue;
      const st = lstatOrUndefined(join(r.host, name));
      seen.set(name, st !== undefined && !isWhiteout(st));
    }
    if (comps.length > 0 && isOpaque(r.host)) break;
  }
  return new Set([...seen].filter(([, present]) => present).map(([name]) => name));
}

function sameMeta(a: Stats, b: Stats, withTime: boolean): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && (!withTime || Math.floor(a.mtimeMs / 1000) === Math.floor(b.mtimeMs / 1000));
}

/** Mount points berth made (Docker's init layer) and the directories above them. */
export interface HiddenPaths {
  paths: Set<string>;
  ancestors: Set<string>;
}

export function hiddenPathsOf(mountDestinations: string[], userDestinations: string[]): HiddenPaths {
  const user = new Set(userDestinations.map((d) => posix.normalize(d)));
  const paths = new Set<string>();
  const ancestors = new Set<string>();
  for (const raw of mountDestinations) {
    const d = posix.normalize(`/${raw}`).replace(/\/$/, '') || '/';
    if (d === '/' || user.has(d)) continue;
    paths.add(d);
    for (let p = posix.dirname(d); p !== '/'; p = posix.dirname(p)) ancestors.add(p);
  }
  return { paths, ancestors };
}

/**
 * The changes of the upper dir over the lowers, in Docker's order (a directory before its
 * content, names in byte order) and with its rule that every directory holding a change
 * shows as modified.
 */
export function walkChanges(stack: LayerStack, hidden: HiddenPaths = { paths: new Set(), ancestors: new Set() }): LayerChange[] {
  const out: LayerChange[] = [];
  walkDir(stack, hidden, { dir: stack.upper, comps: [], belowHidden: false, opaque: false }, out);
  return out;
}

function walkDir(stack: LayerStack, hidden: HiddenPaths, at: { dir: string; comps: string[]; belowHidden: boolean; opaque: boolean }, out: LayerChange[]): void {
  const upperNames = readdirSync(at.dir);
  const names = new Set(upperNames);
  // An opaque directory over one the image has hides the image's entries: each is a deletion.
  const hiddenBelow = at.opaque && !at.belowHidden ? [...belowChildren(stack.lowers, at.comps)].filter((n) => !names.has(n)) : [];
  for (const n of hiddenBelow) names.add(n);
  for (const name of [...names].sort(byteOrder)) {
    const comps = [...at.comps, name];
    const path = `/${comps.join('/')}`;
    if (hidden.paths.has(path)) continue;
    if (!upperNames.includes(name)) {
      out.push({ path, kind: ChangeKind.Deleted, underOpaque: true });
      continue;
    }
    const host = join(at.dir, name);
    const st = lstatSync(host);
    if (isWhiteout(st)) {
      out.push({ path, kind: ChangeKind.Deleted });
      continue;
    }
    const below = at.belowHidden || at.opaque ? undefined : belowStat(stack.lowers, comps);
    if (!st.isDirectory()) {
      out.push({ path, kind: below ? ChangeKind.Modified : ChangeKind.Added, host });
      continue;
    }
    const opaque = isOpaque(host);
    const sub: LayerChange[] = [];
    const belowDir = below?.isDirectory() ? below : undefined;
    walkDir(stack, hidden, { dir: host, comps, belowHidden: at.belowHidden || at.opaque || !belowDir, opaque }, sub);
    if (!belowDir) {
      if (hidden.ancestors.has(path) && sub.length === 0) continue;
      out.push({ path, kind: below ? ChangeKind.Modified : ChangeKind.Added, host, opaque }, ...sub);
      continue;
    }
    // Creating berth's own mount points touched these directories' times: not a change of the container's.
    const changed = opaque || !sameMeta(st, belowDir, !hidden.ancestors.has(path));
    if (sub.length > 0 || changed) out.push({ path, kind: ChangeKind.Modified, host, opaque }, ...sub);
  }
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** The overlay upper and lower dirs of a container's rootfs snapshot. */
export async function containerLayerStack(ctx: EngineContext, rec: ContainerRecord): Promise<LayerStack> {
  const snapshots = ctx.images.service.ctx.snapshots;
  if (snapshots.kind !== 'overlay')
    throw new BerthError('FailedPrecondition', `container ${rec.id.slice(0, 12)}: diff and commit need the overlay snapshotter (this engine copies layers: ${snapshots.kind})`, {
      hint: 'run berthd on a filesystem where overlayfs works (not on overlay itself)',
    });
  const mounts = await snapshots.mounts(rec.snapshotKey);
  const m = mounts[0];
  if (!m) throw new BerthError('Internal', `container ${rec.id.slice(0, 12)}: its snapshot ${rec.snapshotKey} has no mounts`);
  if (m.type === 'bind') return { upper: m.source, lowers: [] };
  const option = (key: string): string | undefined => m.options.find((o) => o.startsWith(`${key}=`))?.slice(key.length + 1);
  const upper = option('upperdir');
  if (!upper) throw new BerthError('Internal', `container ${rec.id.slice(0, 12)}: its overlay mount has no upperdir (${m.options.join(',')})`);
  return { upper, lowers: (option('lowerdir') ?? '').split(':').filter(Boolean) };
}

/** The mount points berth itself put in the container (not the user's binds, volumes, tmpfs). */
export function containerHiddenPaths(ctx: EngineContext, rec: ContainerRecord): HiddenPaths {
  let destinations: string[] = [];
  try {
    destinations = (readSpecFile(ctx.store.dir(rec.id)).mounts ?? []).map((m) => m.destination);
  } catch {
    // No spec (a broken record): only the files berth always generates are known.
    destinations = ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf'];
  }
  return hiddenPathsOf(destinations, rec.mounts.map((m) => m.Destination));
}

export async function containerLayerChanges(ctx: EngineContext, rec: ContainerRecord): Promise<LayerChange[]> {
  const stack = await containerLayerStack(ctx, rec);
  return walkChanges(stack, containerHiddenPaths(ctx, rec));
}

/** GET /containers/{id}/changes. */
export async function containerChanges(ctx: EngineContext, idOrName: string): Promise<FilesystemChange[]> {
  const rec = ctx.find(idOrName);
  return (await containerLayerChanges(ctx, rec)).map((c) => ({ Path: c.path, Kind: c.kind }));
}
