// docker cp and docker export: tar streams of (parts of) the container's root filesystem.
// Paths are resolved inside the rootfs with symlinks confined to it, as if chrooted: a link
// to /etc/passwd in the container means the container's /etc/passwd, never the host's.
import { lstatSync, readdirSync, readlinkSync, createReadStream, type Stats } from 'node:fs';
import { posix, join } from 'node:path';
import type { Readable } from 'node:stream';
import { BerthError } from '../../errors.js';
import { TarWriter, type TarEntry } from '../../image/unpack/tar.js';
import { applyLayer } from '../../image/unpack/apply-layer.js';
import { directoryTar } from '../../image/archive/from-directory.js';
import type { EngineContext } from '../context.js';
import type { PathStat } from '../types.js';

const MAX_LINKS = 40;

/**
 * The host path of `path` inside `root`, following symlinks (all of them, or all but the last
 * component with followLast false) without ever leaving root.
 */
export function resolveInRoot(root: string, path: string, followLast = true): string {
  const parts = posix.normalize(`/${path}`).split('/').filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = join(root, ...done, part);
    let st: Stats | undefined;
    try {
      st = lstatSync(host);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink() && (followLast || parts.length > 0)) {
      if (++links > MAX_LINKS) throw new BerthError('InvalidArgument', `${path}: too many levels of symbolic links`);
      const target = readlinkSync(host);
      if (target.startsWith('/')) done.length = 0;
      parts.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    done.push(part);
  }
  return join(root, ...done);
}

function goMode(st: Stats): number {
  // Go's os.FileMode: permission bits plus type bits (docker cp's header carries these).
  let mode = st.mode & 0o777;
  if (st.mode & 0o4000) mode |= 1 << 23;
  if (st.mode & 0o2000) mode |= 1 << 22;
  if (st.mode & 0o1000) mode |= 1 << 20;
  if (st.isDirectory()) mode |= 1 << 31;
  else if (st.isSymbolicLink()) mode |= 1 << 27;
  else if (st.isFIFO()) mode |= 1 << 25;
  else if (st.isSocket()) mode |= 1 << 24;
  else if (st.isCharacterDevice()) mode |= (1 << 26) | (1 << 21);
  else if (st.isBlockDevice()) mode |= 1 << 26;
  return mode >>> 0;
}

function rootfsOf(ctx: EngineContext, idOrName: string): { rootfs: string; id: string } {
  const rec = ctx.find(idOrName);
  return { rootfs: ctx.store.rootfs(rec.id), id: rec.id };
}

function statIn(rootfs: string, path: string): { host: string; st: Stats; stat: PathStat } {
  if (!path) throw new BerthError('InvalidArgument', 'path: a path inside the container is required');
  const host = resolveInRoot(rootfs, path, false);
  let st: Stats;
  try {
    st = lstatSync(host);
  } catch {
    throw new BerthError('NotFound', `Could not find the file ${path} in container`);
  }
  const linkTarget = st.isSymbolicLink() ? readlinkSync(host) : '';
  return { host, st, stat: { name: posix.basename(posix.normalize(`/${path}`)) || '/', size: st.size, mode: goMode(st), mtime: st.mtime.toISOString(), linkTarget } };
}

export async function statPath(ctx: EngineContext, idOrName: string, path: string): Promise<PathStat> {
  return statIn(rootfsOf(ctx, idOrName).rootfs, path).stat;
}

function entryOf(name: string, st: Stats, linkname?: string): TarEntry {
  const base = { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), size: 0 };
  if (st.isDirectory()) return { ...base, type: 'dir' };
  if (st.isSymbolicLink()) return { ...base, type: 'symlink', linkname: linkname ?? '' };
  if (st.isFIFO()) return { ...base, type: 'fifo' };
  if (st.isCharacterDevice() || st.isBlockDevice())
    return { ...base, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: Number((BigInt(st.rdev) >> 8n) & 0xfffn), devminor: Number((BigInt(st.rdev) & 0xffn) | ((BigInt(st.rdev) >> 12n) & 0xfff00n)) };
  return { ...base, type: 'file', size: st.size };
}

/** The tar docker cp expects: the path's own name first, then what is under it. */
function pathTar(host: string, name: string): Readable {
  const w = new TarWriter();
  const walk = async (p: string, n: string): Promise<void> => {
    const st = lstatSync(p);
    if (st.isSocket()) return;
    const entry = entryOf(n, st, st.isSymbolicLink() ? readlinkSync(p) : undefined);
    if (entry.type === 'file') await w.add(entry, createReadStream(p));
    else await w.add(entry);
    if (st.isDirectory()) for (const child of readdirSync(p).sort()) await walk(join(p, child), `${n}/${child}`);
  };
  void walk(host, name)
    .then(() => w.finish())
    .catch((err: unknown) => w.destroy(err as Error));
  return w;
}

export async function getArchive(ctx: EngineContext, idOrName: string, path: string): Promise<{ stat: PathStat; tar: Readable }> {
  const { rootfs } = rootfsOf(ctx, idOrName);
  const { host, stat } = statIn(rootfs, path);
  // A trailing "/." means the directory's content (docker cp c:/dir/. dest).
  const contentOnly = /\/\.$/.test(path);
  return { stat, tar: contentOnly ? directoryTar(host) : pathTar(host, stat.name === '/' ? '.' : stat.name) };
}

export async function putArchive(
  ctx: EngineContext,
  idOrName: string,
  path: string,
  tar: Readable,
  opts: { noOverwriteDirNonDir?: boolean; copyUIDGID?: boolean } = {},
): Promise<void> {
  const { rootfs } = rootfsOf(ctx, idOrName);
  const { host, st } = statIn(rootfs, path);
  const dir = st.isSymbolicLink() ? resolveInRoot(rootfs, path) : host;
  if (!lstatSync(dir).isDirectory()) throw new BerthError('InvalidArgument', `extraction point is not a directory: ${path}`);
  void opts.noOverwriteDirNonDir;
  await applyLayer(tar, { dir, format: 'copy', where: `archive for ${path}`, chown: Boolean(opts.copyUIDGID) });
}

export async function exportContainer(ctx: EngineContext, idOrName: string): Promise<Readable> {
  const { rootfs } = rootfsOf(ctx, idOrName);
  return directoryTar(rootfs);
}
