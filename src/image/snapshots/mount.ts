// Performs the Mounts a snapshotter returns (overlay through the new mount API, bind with
// MS_BIND|MS_REC, anything else with mount(2)) and takes them down again.
import { BerthError, attachCleanupError, type ErrorCode } from '../../errors.js';
import {
  mount,
  mountOverlay,
  umount2,
  MNT_DETACH,
  MS_BIND,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_RDONLY,
  MS_REC,
  MS_REMOUNT,
  UMOUNT_NOFOLLOW,
} from '../../host/sys.js';
import type { Mount } from './snapshotter.js';

const FLAG_OPTIONS: Record<string, number> = {
  ro: MS_RDONLY,
  nosuid: MS_NOSUID,
  nodev: MS_NODEV,
  noexec: MS_NOEXEC,
  rw: 0,
  bind: MS_BIND,
  rbind: MS_BIND | MS_REC,
};

/** Mounts each of `mounts` onto target in order; on failure, what was mounted is undone. */
export function mountAll(mounts: Mount[], target: string): void {
  let mounted = 0;
  try {
    for (const m of mounts) {
      mountOne(m, target);
      mounted++;
    }
  } catch (err) {
    if (mounted > 0) {
      try {
        unmountAll(target);
      } catch (cleanupError) {
        attachCleanupError(err, cleanupError);
      }
    }
    throw err;
  }
}

function mountOne(m: Mount, target: string): void {
  try {
    if (m.type === 'overlay') {
      mountOverlay(target, overlayOptions(m));
      return;
    }
    let flags = 0;
    const data: string[] = [];
    for (const option of m.options) {
      const flag = FLAG_OPTIONS[option];
      if (flag === undefined) data.push(option);
      else flags |= flag;
    }
    if (m.type === 'bind' || flags & MS_BIND) {
      mount(m.source, target, null, flags & (MS_BIND | MS_REC) || MS_BIND, null);
      const extra = flags & ~(MS_BIND | MS_REC);
      // Bind mounts ignore every flag but MS_REC on creation; the rest takes a remount.
      if (extra) mount('', target, null, MS_REMOUNT | MS_BIND | extra, null);
      return;
    }
    mount(m.source, target, m.type, flags, data.length > 0 ? data.join(',') : null);
  } catch (err) {
    if (err instanceof BerthError) throw err;
    throw new BerthError(errorCode(err), `mount ${m.type} ${m.source} on ${target}: ${(err as Error).message}`, { cause: err });
  }
}

function overlayOptions(m: Mount): { lower: string[]; upper?: string; work?: string; options: string[] } {
  const out: { lower: string[]; upper?: string; work?: string; options: string[] } = { lower: [], options: [] };
  for (const option of m.options) {
    if (option.startsWith('lowerdir=')) out.lower.push(...option.slice('lowerdir='.length).split(':'));
    else if (option.startsWith('upperdir=')) out.upper = option.slice('upperdir='.length);
    else if (option.startsWith('workdir=')) out.work = option.slice('workdir='.length);
    else out.options.push(option);
  }
  return out;
}

function errorCode(err: unknown): ErrorCode {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'NotFound';
    case 'EPERM':
    case 'EACCES':
    case 'ENODEV':
    case 'EINVAL':
    case 'EBUSY':
      return 'FailedPrecondition';
    default:
      return 'Internal';
  }
}

const BUSY_RETRIES = 10;
const MAX_STACKED = 64;

/** Unmounts everything mounted on target (mounts may be stacked); a target that stays busy
 *  is detached lazily so that it at least disappears from the tree. */
export function unmountAll(target: string): void {
  let busy = 0;
  for (let i = 0; i < MAX_STACKED + BUSY_RETRIES; i++) {
    try {
      umount2(target, UMOUNT_NOFOLLOW);
      busy = 0;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EINVAL' || code === 'ENOENT') return;
      if (code !== 'EBUSY') throw new BerthError(errorCode(err), `unmount ${target}: ${(err as Error).message}`, { cause: err });
      if (++busy < BUSY_RETRIES) {
        sleepSync(10 * busy);
        continue;
      }
      umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW);
      busy = 0;
    }
  }
  throw new BerthError('Internal', `unmount ${target}: still mounted after ${MAX_STACKED} unmounts`, { hint: 'inspect /proc/self/mountinfo' });
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
