// The copying snapshotter, for hosts without a usable overlayfs: every snapshot is a full
// tree (a committed one starts as a copy of its parent, and the unpacker deletes whited-out
// paths itself); a container's rootfs is a bind mount of its own copy.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BerthError } from '../../errors.js';
import type { Digest } from '../types.js';
import { DirSnapshotter, makeDir } from './dir-snapshotter.js';
import type { Mount } from './snapshotter.js';

export class CopySnapshotter extends DirSnapshotter {
  readonly kind = 'copy' as const;
  readonly layerFormat = 'copy' as const;

  protected async populateLayer(fs: string, parent: Digest | undefined): Promise<void> {
    if (parent === undefined) await makeDir(fs);
    else await copyTree(this.committedFs(parent), fs);
  }

  protected async populateActive(dir: string, parent: Digest | undefined): Promise<void> {
    await this.populateLayer(join(dir, 'fs'), parent);
  }

  protected async activeMounts(dir: string): Promise<Mount[]> {
    return [{ type: 'bind', source: join(dir, 'fs'), options: ['rbind', 'rw'] }];
  }
}

/**
 * Copies src to dst (which must not exist) keeping owners, modes, times, xattrs, device
 * nodes and hardlinks. cp shares blocks where the filesystem can (reflink) and is faster
 * than any copier written here.
 */
export async function copyTree(src: string, dst: string): Promise<void> {
  const child = spawn('cp', ['-a', '--reflink=auto', '--no-target-directory', '--', src, dst], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (stderr.length < 4096) stderr += chunk;
  });
  const status = await new Promise<number | string>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  }).catch((err: unknown) => {
    throw new BerthError('FailedPrecondition', `copy ${src} to ${dst}: cannot run cp: ${(err as Error).message}`, {
      cause: err,
      hint: 'install coreutils',
    });
  });
  if (status !== 0) {
    throw new BerthError('Internal', `copy ${src} to ${dst} failed (cp exit ${status}): ${stderr.trim().split('\n').slice(0, 5).join('; ')}`, {
      hint: 'check free space and the source tree',
    });
  }
}
