// The overlay snapshotter: each committed snapshot holds only its own layer's files (with
// overlay whiteouts); a container's rootfs is an overlay of the chain plus a fresh upper.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthError } from '../../errors.js';
import type { Digest } from '../types.js';
import { DirSnapshotter, makeDir, type SnapshotMeta } from './dir-snapshotter.js';
import type { Mount } from './snapshotter.js';

export class OverlaySnapshotter extends DirSnapshotter {
  readonly kind = 'overlay' as const;
  readonly layerFormat = 'overlay' as const;
  override readonly layerStartsFromParent = false;
  private readonly overlayOptions: string[];

  constructor(root: string) {
    // Mount options carry layer paths joined by ':' and options by ','.
    if (/[,:\\]/.test(root)) {
      throw new BerthError('InvalidArgument', `overlay snapshot root ${root} contains ',', ':' or '\\'`, {
        hint: 'choose a root path without these characters',
      });
    }
    super(root);
    // With the inodes index on, overlayfs locks layers to one mount's upper; layers are shared
    // between containers, so it is turned off wherever the kernel knows the option.
    this.overlayOptions = existsSync('/sys/module/overlay/parameters/index') ? ['index=off'] : [];
  }

  protected async populateLayer(fs: string): Promise<void> {
    await makeDir(fs);
  }

  protected async populateActive(dir: string): Promise<void> {
    await makeDir(join(dir, 'fs'));
    await mkdir(join(dir, 'work'), { mode: 0o700 });
  }

  protected async activeMounts(dir: string, meta: SnapshotMeta): Promise<Mount[]> {
    const upper = join(dir, 'fs');
    if (meta.parent === undefined) return [{ type: 'bind', source: upper, options: ['rbind', 'rw'] }];
    const lower = await this.chain(meta.parent as Digest);
    return [
      {
        type: 'overlay',
        source: 'overlay',
        options: [...this.overlayOptions, `workdir=${join(dir, 'work')}`, `upperdir=${upper}`, `lowerdir=${lower.join(':')}`],
      },
    ];
  }
}
