// The snapshotter interface (containerd's model, reduced to what berth needs) and the one
// factory that chooses a backend. A committed snapshot is one unpacked layer stack, named
// by its chain ID; an active snapshot is a container's writable rootfs, named by a key.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '../../errors.js';
import { mountOverlay, umount2, MNT_DETACH } from '../../host/sys.js';
import type { Digest } from '../types.js';
import { CopySnapshotter } from './copy.js';
import { OverlaySnapshotter } from './overlay.js';

/** One mount of a rootfs, containerd style: overlay (lowerdir=/upperdir=/workdir= options)
 *  or bind (`rbind`, `ro`). mountAll() in mount.ts performs it. */
export interface Mount {
  type: string;
  source: string;
  options: string[];
}

/** A directory to extract one layer into; commit() makes it the committed snapshot, abort()
 *  throws it away. Exactly one of them should be called. */
export interface LayerWriter {
  dir: string;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export type SnapshotterKind = 'overlay' | 'copy';

export interface SnapshotInfo {
  key: string;
  kind: 'committed' | 'active';
  parent?: string;
}

export interface Snapshotter {
  readonly kind: SnapshotterKind;
  /** How apply-layer must express whiteouts in a LayerWriter's dir: 'overlay' = char 0/0
   *  devices and trusted.overlay.opaque=y; 'copy' = delete the paths (dir holds the full
   *  parent tree). */
  readonly layerFormat: SnapshotterKind;
  /** False when prepareLayer gives an empty dir: then a layer may be prepared (and unpacked)
   *  before its parent is committed, and only its commit waits for the parent. */
  readonly layerStartsFromParent: boolean;
  hasLayer(chainId: Digest): Promise<boolean>;
  prepareLayer(chainId: Digest, parent: Digest | undefined): Promise<LayerWriter>;
  prepare(key: string, parent: Digest | undefined): Promise<Mount[]>;
  mounts(key: string): Promise<Mount[]>;
  /** An active key or a committed chain ID; a committed snapshot with children is refused. */
  remove(key: string): Promise<void>;
  list(): Promise<SnapshotInfo[]>;
}

/**
 * The snapshotter for `root` (its data goes to root/<kind>/). 'auto' takes overlay when the
 * kernel has it and a test mount inside root works (overlay refuses some upper filesystems,
 * e.g. overlay itself), else the copying fallback.
 */
export function createSnapshotter(root: string, kind: SnapshotterKind | 'auto' = 'auto'): Snapshotter {
  const chosen = kind === 'auto' ? (overlaySupported(root) ? 'overlay' : 'copy') : kind;
  return chosen === 'overlay' ? new OverlaySnapshotter(join(root, 'overlay')) : new CopySnapshotter(join(root, 'copy'));
}

const PROBE_PREFIX = '.overlay-probe-';

/** Whether an overlay mount with its upper dir inside root works here. */
export function overlaySupported(root: string): boolean {
  let filesystems = '';
  try {
    filesystems = readFileSync('/proc/filesystems', 'utf8');
  } catch {
    return false;
  }
  if (!/\toverlay$/m.test(filesystems)) return false;
  mkdirSync(root, { recursive: true, mode: 0o700 });
  // Probes of a process killed mid-check.
  for (const name of readdirSync(root)) {
    if (name.startsWith(PROBE_PREFIX)) removeProbe(join(root, name));
  }
  const probe = mkdtempSync(join(root, PROBE_PREFIX));
  try {
    for (const dir of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(probe, dir));
    mountOverlay(join(probe, 'merged'), { lower: [join(probe, 'lower')], upper: join(probe, 'upper'), work: join(probe, 'work') });
    umount2(join(probe, 'merged'), 0);
    return true;
  } catch (err) {
    if (err instanceof BerthError) throw err;
    return false;
  } finally {
    removeProbe(probe);
  }
}

function removeProbe(probe: string): void {
  const merged = join(probe, 'merged');
  if (existsSync(merged)) {
    try {
      umount2(merged, MNT_DETACH);
    } catch {
      // not mounted: the usual case
    }
  }
  rmSync(probe, { recursive: true, force: true });
}
