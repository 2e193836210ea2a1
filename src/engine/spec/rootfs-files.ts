// Reads files of a container's rootfs without trusting it: the image decides what
// /etc/passwd is, and a symlink there must resolve inside the rootfs (as it would for the
// container) instead of reaching the host's files.
import { closeSync, fstatSync, lstatSync, openSync, readlinkSync, readSync, realpathSync, constants } from 'node:fs';
import { posix } from 'node:path';
import { BerthError } from '../../errors.js';

const MAX_SYMLINKS = 40;

/**
 * The host path of `path` as the container would see it: every symlink is followed
 * relative to `rootfs` ("/" and ".." cannot climb out of it). The result names an
 * existing file or the first missing component; undefined when nothing is there.
 */
export function resolveInRoot(rootfs: string, path: string): string | undefined {
  const root = realpathSync(rootfs);
  let pending = splitPath(path);
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = posix.join(root, ...done, part);
    let st;
    try {
      st = lstatSync(host);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw err;
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) throw new BerthError('InvalidArgument', `${posix.join('/', ...done, part)} in ${rootfs}: too many levels of symbolic links`);
      const target = readlinkSync(host);
      if (target.startsWith('/')) done.length = 0;
      pending = [...splitPath(target), ...pending];
      continue;
    }
    done.push(part);
  }
  return posix.join(root, ...done);
}

function splitPath(p: string): string[] {
  return p.split('/').filter((s) => s !== '');
}

/**
 * The content of a regular file of the rootfs, or undefined when it does not exist.
 * After opening, /proc/self/fd tells where the descriptor really points: a path swapped
 * for a symlink between the walk and the open cannot make us read outside the rootfs.
 */
export function readFileInRoot(rootfs: string, path: string, maxBytes = 4 << 20): string | undefined {
  const host = resolveInRoot(rootfs, path);
  if (host === undefined) return undefined;
  const root = realpathSync(rootfs);
  let fd: number;
  try {
    fd = openSync(host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new BerthError('InvalidArgument', `cannot read ${path} in the container's rootfs ${rootfs}: ${code ?? String(err)}`, { cause: err });
  }
  try {
    let real: string;
    try {
      real = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      real = host;
    }
    if (real !== root && !real.startsWith(root + '/')) {
      throw new BerthError('InvalidArgument', `${path} in the container's rootfs ${rootfs} resolves outside of it (${real})`);
    }
    const st = fstatSync(fd);
    if (!st.isFile()) throw new BerthError('InvalidArgument', `${path} in the container's rootfs ${rootfs} is not a regular file`);
    if (st.size > maxBytes) throw new BerthError('InvalidArgument', `${path} in the container's rootfs ${rootfs} is larger than ${maxBytes} bytes`);
    const buf = Buffer.alloc(Math.min(st.size + 1, maxBytes + 1));
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    if (n > maxBytes) throw new BerthError('InvalidArgument', `${path} in the container's rootfs ${rootfs} is larger than ${maxBytes} bytes`);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
