// docker cp and docker export: tar streams of (parts of) the container's filesystem as the
// container sees it. Paths are resolved as if chrooted: a link to /etc/passwd in the
// container means the container's /etc/passwd, never the host's. `docker cp` goes through
// the container's mounts (volumes, binds, and for a running container its tmpfs too);
// `docker export` is the root filesystem alone, as in Docker.
import { lstatSync, readdirSync, readlinkSync, statSync, createReadStream, type Stats } from 'node:fs';
import { posix, join } from 'node:path';
import type { Readable } from 'node:stream';
import { BerthError } from '../../errors.js';
import { TarWriter, type TarEntry } from '../../image/unpack/tar.js';
import { applyLayer } from '../../image/unpack/apply-layer.js';
import { directoryTar } from '../../image/archive/from-directory.js';
import type { EngineContext } from '../context.js';
import type { PathStat } from '../types.js';
import type { ContainerRecord } from './record.js';
import { readSpecFile } from './spec-file.js';

const MAX_LINKS = 40;

/**
 * Where container paths live on the host. `hostOf` takes a resolved container path (no
 * symlinks in it): for a running container that is under /proc/<pid>/root, which shows
 * every mount the container has; for a stopped one, the rootfs with the bind and volume
 * sources in place of their mount points (a stopped container's tmpfs holds nothing).
 */
export interface ContainerView {
  hostOf(containerPath: string): string;
  /** Why nothing may be written at this path, or undefined. */
  readOnly(containerPath: string): string | undefined;
  /** Kernel filesystems a recursive copy does not descend into (/proc, /sys …). */
  skipInWalk(containerPath: string): boolean;
}

interface ViewMount {
  destination: string;
  /** Host path, for binds and volumes. */
  source?: string;
  readOnly: boolean;
  kernel: boolean;
}

const KERNEL_FS = new Set(['proc', 'sysfs', 'cgroup', 'cgroup2', 'devpts', 'mqueue']);

function under(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(`${dir}/`);
}

function innermost(mounts: ViewMount[], path: string): ViewMount | undefined {
  let best: ViewMount | undefined;
  for (const m of mounts) if (under(path, m.destination) && (!best || m.destination.length > best.destination.length)) best = m;
  return best;
}

/** Whether a pid's root is still this container's rootfs (the pid may have exited and been reused). */
function sameDirectory(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

export function containerView(ctx: EngineContext, rec: ContainerRecord): ContainerView {
  const rootfs = ctx.store.rootfs(rec.id);
  let specMounts: { destination: string; type?: string; source?: string; options?: string[] }[] = [];
  try {
    specMounts = readSpecFile(ctx.store.dir(rec.id)).mounts ?? [];
  } catch {
    // A record without its spec: the rootfs alone.
  }
  const mounts: ViewMount[] = specMounts.map((m) => {
    const options = m.options ?? [];
    const bind = m.type === 'bind' || options.includes('bind') || options.includes('rbind');
    return {
      destination: posix.normalize(m.destination).replace(/(.)\/$/, '$1'),
      source: bind ? m.source : undefined,
      readOnly: options.includes('ro'),
      kernel: KERNEL_FS.has(m.type ?? ''),
    };
  });
  const running = (rec.state.status === 'running' || rec.state.status === 'paused') && rec.state.pid > 0;
  const procRoot = running ? `/proc/${rec.state.pid}/root` : undefined;
  const live = procRoot !== undefined && sameDirectory(procRoot, rootfs);
  return {
    hostOf(path) {
      if (live) return join(procRoot!, path);
      const m = innermost(mounts.filter((x) => x.source !== undefined), path);
      if (!m) return join(rootfs, path);
      return join(m.source!, path.slice(m.destination.length));
    },
    readOnly(path) {
      const m = innermost(mounts, path);
      if (m?.kernel) return `${m.destination} is a kernel filesystem`;
      if (m?.readOnly) return `the mount at ${m.destination} is read-only`;
      if (!m && rec.hostConfig.ReadonlyRootfs) return "the container's root filesystem is read-only";
      return undefined;
    },
    skipInWalk(path) {
      return innermost(mounts, path)?.kernel === true;
    },
  };
}

/**
 * The container path `path` comes to, following symlinks (all of them, or all but the last
 * component with followLast false) without ever leaving the container's root.
 */
export function resolveInView(view: Pick<ContainerView, 'hostOf'>, path: string, followLast = true): string {
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
    const host = view.hostOf(`/${[...done, part].join('/')}`);
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
  return `/${done.join('/')}`;
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

function statIn(view: ContainerView, path: string): { containerPath: string; st: Stats; stat: PathStat } {
  if (!path) throw new BerthError('InvalidArgument', 'path: a path inside the container is required');
  const containerPath = resolveInView(view, path, false);
  const host = view.hostOf(containerPath);
  let st: Stats;
  try {
    st = lstatSync(host);
  } catch {
    throw new BerthError('NotFound', `Could not find the file ${path} in container`);
  }
  const linkTarget = st.isSymbolicLink() ? readlinkSync(host) : '';
  return { containerPath, st, stat: { name: posix.basename(posix.normalize(`/${path}`)) || '/', size: st.size, mode: goMode(st), mtime: st.mtime.toISOString(), linkTarget } };
}

export async function statPath(ctx: EngineContext, idOrName: string, path: string): Promise<PathStat> {
  return statIn(containerView(ctx, ctx.find(idOrName)), path).stat;
}

/** The tar header of one filesystem entry (its body, for a file, is read separately). */
export function entryOf(name: string, st: Stats, linkname?: string): TarEntry {
  const base = { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), size: 0 };
  if (st.isDirectory()) return { ...base, type: 'dir' };
  if (st.isSymbolicLink()) return { ...base, type: 'symlink', linkname: linkname ?? '' };
  if (st.isFIFO()) return { ...base, type: 'fifo' };
  if (st.isCharacterDevice() || st.isBlockDevice())
    return { ...base, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: Number((BigInt(st.rdev) >> 8n) & 0xfffn), devminor: Number((BigInt(st.rdev) & 0xffn) | ((BigInt(st.rdev) >> 12n) & 0xfff00n)) };
  return { ...base, type: 'file', size: st.size };
}

/**
 * The tar docker cp expects: the path's own entry named `name` first, then what is under it.
 * Each child is looked up through the view, so a volume under the path is copied from the
 * volume.
 */
function pathTar(view: ContainerView, containerPath: string, name: string): Readable {
  const w = new TarWriter();
  const walk = async (cp: string, n: string): Promise<void> => {
    const host = view.hostOf(cp);
    const st = lstatSync(host);
    if (st.isSocket()) return;
    const entry = entryOf(n, st, st.isSymbolicLink() ? readlinkSync(host) : undefined);
    if (entry.type === 'file') await w.add(entry, createReadStream(host));
    else await w.add(entry);
    if (!st.isDirectory()) return;
    for (const child of readdirSync(host).sort()) {
      const childPath = posix.join(cp, child);
      if (view.skipInWalk(childPath)) continue;
      await walk(childPath, `${n}/${child}`);
    }
  };
  void walk(containerPath, name)
    .then(() => w.finish())
    .catch((err: unknown) => w.destroy(err as Error));
  return w;
}

export async function getArchive(ctx: EngineContext, idOrName: string, path: string): Promise<{ stat: PathStat; tar: Readable }> {
  const view = containerView(ctx, ctx.find(idOrName));
  const { containerPath, stat } = statIn(view, path);
  // A trailing "/." means the directory's content (docker cp c:/dir/. dest): Docker names the
  // entries "./…" then, and the client renames "." to the destination.
  const contentOnly = /\/\.$/.test(path);
  return { stat, tar: pathTar(view, containerPath, contentOnly || stat.name === '/' ? '.' : stat.name) };
}

export async function putArchive(
  ctx: EngineContext,
  idOrName: string,
  path: string,
  tar: Readable,
  opts: { noOverwriteDirNonDir?: boolean; copyUIDGID?: boolean } = {},
): Promise<void> {
  const rec = ctx.find(idOrName);
  const view = containerView(ctx, rec);
  const { containerPath, st } = statIn(view, path);
  const target = st.isSymbolicLink() ? resolveInView(view, path) : containerPath;
  const dir = view.hostOf(target);
  if (!lstatSync(dir).isDirectory()) throw new BerthError('InvalidArgument', `extraction point is not a directory: ${path}`);
  const readOnly = view.readOnly(target);
  if (readOnly) throw new BerthError('FailedPrecondition', `cannot copy into ${path} of container ${rec.id.slice(0, 12)}: ${readOnly}`);
  void opts.noOverwriteDirNonDir;
  await applyLayer(tar, { dir, format: 'copy', where: `archive for ${path}`, chown: Boolean(opts.copyUIDGID) });
}

export async function exportContainer(ctx: EngineContext, idOrName: string): Promise<Readable> {
  return directoryTar(ctx.store.rootfs(ctx.find(idOrName).id));
}
