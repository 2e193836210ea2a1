// An image from a directory tree, with no registry and no tarball: the tree becomes one
// gzip layer (through the same path as `docker import`), with a config and a manifest.
// The tar is deterministic — entries in bytewise name order, numeric owners only, whole-second
// mtimes, sorted xattrs — so that the same tree gives the same diffID. Nothing is followed:
// symlinks are stored as links, files are opened with O_NOFOLLOW.
import { constants, createReadStream, lstatSync, openSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { BerthError } from '../../errors.js';
import { lgetxattr, llistxattr } from '../../host/sys.js';
import type { ContainerConfig, Platform } from '../types.js';
import { TarWriter, type TarEntry } from '../unpack/tar.js';
import { createLayerImage, type CreatedImage, type ManifestFormat } from './import-rootfs.js';
import type { ArchiveStores } from './oci-layout.js';

export interface FromDirectoryOptions {
  /** The tag the image gets (`name[:tag]`). */
  name: string;
  config?: ContainerConfig;
  /** Default the host's; a string like 'linux/arm64/v8' is accepted too. */
  platform?: Platform | string;
  format?: ManifestFormat;
  /** The config's creation time; default now. A fixed value makes the image reproducible. */
  created?: Date | string;
  signal?: AbortSignal;
  tmpDir?: string;
}

export interface DirectoryTarOptions {
  signal?: AbortSignal;
  /** Record extended attributes (needs the native addon); default true. */
  xattrs?: boolean;
}

/**
 * Host-specific attributes that do not belong in an image: SELinux labels name the build
 * host's policy, overlay's own markers describe the host's mounts, and system.* (ACLs) are
 * not carried by image layers.
 */
function keepXattr(name: string): boolean {
  if (name === 'security.selinux') return false;
  if (name.startsWith('trusted.overlay.')) return false;
  return name.startsWith('user.') || name.startsWith('trusted.') || name.startsWith('security.');
}

export async function imageFromDirectory(dir: string, stores: ArchiveStores, opts: FromDirectoryOptions): Promise<CreatedImage> {
  const where = `image from directory ${dir}`;
  let st;
  try {
    st = lstatSync(dir);
  } catch (err) {
    throw new BerthError('NotFound', `${where}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  if (!st.isDirectory()) throw new BerthError('InvalidArgument', `${where}: not a directory`);
  return createLayerImage(() => directoryTar(dir, { signal: opts.signal }), stores, {
    where,
    name: opts.name,
    config: opts.config,
    platform: opts.platform,
    format: opts.format,
    created: opts.created,
    signal: opts.signal,
    tmpDir: opts.tmpDir,
    history: { created_by: `berth: image from directory ${dir}` },
  });
}

/** The tree under `dir` (not `dir` itself) as a streaming, deterministic tar. */
export function directoryTar(dir: string, opts: DirectoryTarOptions = {}): Readable {
  const writer = new TarWriter();
  const produce = async (): Promise<void> => {
    const links = new Map<string, string>();
    for (const rel of walk(dir)) {
      opts.signal?.throwIfAborted();
      if (writer.destroyed) return;
      const path = join(dir, rel);
      const st = lstatSync(path, { bigint: true });
      const entry = tarEntry(rel, path, st, links, opts.xattrs ?? true);
      if (!entry) continue;
      if (entry.type === 'file' && entry.size > 0) {
        const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
        const body = createReadStream(path, { fd, start: 0, end: entry.size - 1 });
        try {
          await writer.add(entry, body);
        } catch (err) {
          body.destroy();
          if (writer.destroyed) return;
          throw new BerthError('FailedPrecondition', `directory ${dir}: file ${rel} changed while it was being read (${(err as Error).message})`, {
            cause: err,
            hint: 'make the image from a tree nothing writes to',
          });
        }
      } else {
        await writer.add(entry);
      }
    }
    await writer.finish();
  };
  produce().catch((err: unknown) => {
    if (writer.destroyed) return;
    const e = err as NodeJS.ErrnoException;
    const wrapped =
      err instanceof BerthError || e?.name === 'AbortError'
        ? e
        : new BerthError('FailedPrecondition', `directory ${dir}: ${e?.message ?? String(err)}`, { cause: err, hint: e?.code === 'EACCES' ? 'run as a user that can read the whole tree' : undefined });
    writer.destroy(wrapped);
  });
  return writer;
}

/** Relative paths of everything under `dir`, depth first, each directory's names sorted bytewise. */
function* walk(dir: string, prefix = ''): Generator<string> {
  const names = readdirSync(prefix === '' ? dir : join(dir, prefix)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const name of names) {
    const rel = prefix === '' ? name : `${prefix}/${name}`;
    yield rel;
    // lstat again: walk must not descend through a symlink to a directory.
    if (lstatSync(join(dir, rel)).isDirectory()) yield* walk(dir, rel);
  }
}

function tarEntry(rel: string, path: string, st: BigIntStats, links: Map<string, string>, withXattrs: boolean): TarEntry | undefined {
  const base = {
    name: rel,
    mode: Number(st.mode) & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: 0,
    mtime: Number(st.mtimeMs / 1000n),
  };
  if (st.isSocket()) return undefined;
  if (!st.isDirectory() && st.nlink > 1n) {
    const key = `${st.dev}:${st.ino}`;
    const first = links.get(key);
    if (first !== undefined) return { ...base, type: 'hardlink', linkname: first };
    links.set(key, rel);
  }
  const xattrs = withXattrs ? readXattrs(path) : undefined;
  const extra = xattrs ? { xattrs } : {};
  if (st.isDirectory()) return { ...base, ...extra, type: 'dir' };
  if (st.isFile()) return { ...base, ...extra, type: 'file', size: Number(st.size) };
  if (st.isSymbolicLink()) return { ...base, ...extra, type: 'symlink', linkname: readlinkSync(path) };
  if (st.isFIFO()) return { ...base, ...extra, type: 'fifo' };
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    const { major, minor } = splitDevice(st.rdev);
    return { ...base, ...extra, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: major, devminor: minor };
  }
  return undefined;
}

/** glibc's gnu_dev_major/gnu_dev_minor of a Linux dev_t. */
export function splitDevice(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

function readXattrs(path: string): Record<string, Buffer> | undefined {
  let names: string[];
  try {
    names = llistxattr(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return undefined;
    throw err;
  }
  const out: Record<string, Buffer> = {};
  let any = false;
  for (const name of names.filter(keepXattr).sort()) {
    const value = lgetxattr(path, name);
    if (value === undefined) continue;
    out[name] = value;
    any = true;
  }
  return any ? out : undefined;
}
