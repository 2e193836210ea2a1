// Syscalls Node lacks (mknod, l*xattr, mount, umount2, overlay through the new mount API),
// from the N-API addon native/build/berth_sys.node. Synchronous like fs.*Sync; failures
// throw Errors shaped like Node's fs errors (code, errno, syscall, path) so callers can
// test `err.code === 'EPERM'` the same way for both.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getSystemErrorMap } from 'node:util';
import { BerthError } from '../errors.js';

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REMOUNT = 0x20;
export const MS_BIND = 0x1000;
export const MS_MOVE = 0x2000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;

export const MNT_FORCE = 0x1;
export const MNT_DETACH = 0x2;
export const UMOUNT_NOFOLLOW = 0x8;

/** mount(2) copies at most one page of option data (terminating NUL included). */
export const MOUNT_DATA_MAX = 4095;

export interface OverlayOptions {
  /** lower[0] is the topmost layer. */
  lower: string[];
  upper?: string;
  work?: string;
  /** Extra overlay options (`index=off`, `userxattr`) and mount flags (`ro`, `nodev`). */
  options?: string[];
}

interface NativeSys {
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  lgetxattr(path: string, name: string): Buffer | undefined;
  llistxattr(path: string): string[];
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  overlayMount(target: string, lower: string[], upper: string | null, work: string | null, options: string[]): void;
}

/** What the addon attaches to the Errors it throws. */
interface NativeError extends Error {
  errno: number;
  syscall: string;
  path?: string;
  key?: string;
  detail?: string;
}

let loaded: NativeSys | undefined;

/** The package root: the nearest directory up with berth's package.json (from dist/src/host/
 *  or from the single-file bundle in dist/). */
function packageRoot(): string | undefined {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'berth') return dir;
      } catch {
        // an unreadable or foreign package.json: keep walking up
      }
    }
    if (dir === dirname(dir)) return undefined;
  }
}

/** Where the addon is: BERTH_SYS_ADDON, else native/build/ of the package root. */
export function addonPath(): string {
  if (process.env.BERTH_SYS_ADDON) return process.env.BERTH_SYS_ADDON;
  const root = packageRoot();
  if (root === undefined) {
    throw new BerthError('FailedPrecondition', `cannot find the berth package root above ${fileURLToPath(import.meta.url)}`, {
      hint: 'set BERTH_SYS_ADDON to the path of berth_sys.node',
    });
  }
  return join(root, 'native/build/berth_sys.node');
}

function native(): NativeSys {
  if (loaded) return loaded;
  const path = addonPath();
  try {
    loaded = createRequire(import.meta.url)(path) as NativeSys;
  } catch (err) {
    throw new BerthError('FailedPrecondition', `cannot load the native addon ${path}: ${(err as Error).message}`, {
      cause: err,
      hint: 'build it with `make -C native` (needs gcc and the Node headers)',
    });
  }
  return loaded;
}

function isNativeError(err: unknown): err is NativeError {
  return err instanceof Error && typeof (err as Partial<NativeError>).errno === 'number' && typeof (err as Partial<NativeError>).syscall === 'string';
}

/** A Node fs-style error: `EPERM: operation not permitted, mknod '/x'`. */
export function systemError(errno: number, syscall: string, path?: string, detail?: string): NodeJS.ErrnoException {
  const [code, description] = getSystemErrorMap().get(-errno) ?? [`E${errno}`, `unknown error ${errno}`];
  let message = `${code}: ${description}, ${syscall}`;
  if (path !== undefined) message += ` '${path}'`;
  if (detail) message += ` (${detail})`;
  const error: NodeJS.ErrnoException = new Error(message);
  error.errno = -errno;
  error.code = code;
  error.syscall = syscall;
  if (path !== undefined) error.path = path;
  return error;
}

function translate(err: unknown): unknown {
  if (!isNativeError(err)) return err;
  const syscall = err.key ? `${err.syscall} ${err.key}` : err.syscall;
  const converted = systemError(err.errno, syscall, err.path, err.detail);
  converted.syscall = err.syscall;
  return converted;
}

function call<T>(fn: (n: NativeSys) => T): T {
  const n = native();
  try {
    return fn(n);
  } catch (err) {
    throw translate(err);
  }
}

/** `mode` includes the file type (S_IFCHR, S_IFBLK, S_IFIFO) and permission bits. */
export function mknod(path: string, mode: number, major: number, minor: number): void {
  call((n) => n.mknod(path, mode, major, minor));
}

export function lsetxattr(path: string, name: string, value: Buffer): void {
  call((n) => n.lsetxattr(path, name, value));
}

/** The value, or undefined when the file has no such attribute (ENODATA). */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  return call((n) => n.lgetxattr(path, name));
}

export function llistxattr(path: string): string[] {
  return call((n) => n.llistxattr(path));
}

export function mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): void {
  call((n) => n.mount(source, target, fstype, flags, data));
}

export function umount2(target: string, flags: number): void {
  call((n) => n.umount2(target, flags));
}

/**
 * Mounts an overlay on target. Each lower layer is one fsconfig("lowerdir+") call, so any
 * number of layers (up to overlayfs' own limit of 500) mounts regardless of path lengths.
 * Kernels without the new mount API or lowerdir+ (< 6.8) get mount(2) with the joined
 * option string, which must fit in one page.
 */
export function mountOverlay(target: string, opts: OverlayOptions): void {
  checkOverlayOptions(target, opts);
  const n = native();
  try {
    n.overlayMount(target, opts.lower, opts.upper ?? null, opts.work ?? null, opts.options ?? []);
    return;
  } catch (err) {
    if (!newMountApiUnsupported(err, opts)) throw translate(err);
  }
  const data = overlayMountData(target, opts);
  let flags = 0;
  for (const option of opts.options ?? []) flags |= MOUNT_FLAG_OPTIONS[option] ?? 0;
  call((m) => m.mount('overlay', target, 'overlay', flags, data));
}

function checkOverlayOptions(target: string, opts: OverlayOptions): void {
  if (opts.lower.length === 0) {
    throw new BerthError('InvalidArgument', `overlay mount on ${target}: no lower layers given`, {
      hint: 'an overlay needs at least one lower directory; bind-mount an empty directory instead',
    });
  }
  if ((opts.upper === undefined) !== (opts.work === undefined)) {
    throw new BerthError('InvalidArgument', `overlay mount on ${target}: upper and work directories go together`, {
      hint: 'give both (writable overlay) or neither (read-only overlay)',
    });
  }
  if (opts.upper === undefined && opts.lower.length < 2) {
    throw new BerthError('InvalidArgument', `overlay mount on ${target}: a read-only overlay needs at least two lower layers`, {
      hint: 'bind-mount the single layer read-only instead',
    });
  }
}

/** True when the failure means "this kernel lacks fsopen or lowerdir+", not a real error. */
export function newMountApiUnsupported(err: unknown, opts: OverlayOptions): boolean {
  if (!isNativeError(err)) return false;
  const code = getSystemErrorMap().get(-err.errno)?.[0];
  if (err.syscall === 'fsopen') return code === 'ENOSYS' || code === 'EINVAL';
  // A kernel that knows lowerdir+ accepts or rejects each layer on its own; one that
  // does not know it fails on the very first.
  return err.syscall === 'fsconfig' && err.key === 'lowerdir+' && code === 'EINVAL' && err.path === opts.lower[0];
}

// Options that are mount flags rather than overlay parameters (the addon maps the same
// names to fsmount attributes).
const MOUNT_FLAG_OPTIONS: Record<string, number> = {
  ro: MS_RDONLY,
  nosuid: MS_NOSUID,
  nodev: MS_NODEV,
  noexec: MS_NOEXEC,
  noatime: 0x400,
  nodiratime: 0x800,
  relatime: 0x200000,
  strictatime: 0x1000000,
};

// Overlayfs splits its option string on ',' and lowerdir on ':'; escaping rules differ
// between kernels, so the fallback refuses such paths instead of guessing.
const UNSAFE_IN_OPTIONS = /[,:\\]/;

/** The mount(2) option string for an overlay, or a clear error when it cannot be built. */
export function overlayMountData(target: string, opts: OverlayOptions): string {
  const paths = [...opts.lower, ...(opts.upper ? [opts.upper] : []), ...(opts.work ? [opts.work] : [])];
  const unsafe = paths.find((p) => UNSAFE_IN_OPTIONS.test(p));
  if (unsafe !== undefined) {
    throw new BerthError('InvalidArgument', `overlay mount on ${target}: layer path ${unsafe} contains ',', ':' or '\\', which mount(2) options cannot carry`, {
      hint: 'use a snapshot root whose path has none of these characters',
    });
  }
  const parts = [`lowerdir=${opts.lower.join(':')}`];
  if (opts.upper !== undefined) parts.push(`upperdir=${opts.upper}`, `workdir=${opts.work}`);
  for (const option of opts.options ?? []) if (MOUNT_FLAG_OPTIONS[option] === undefined) parts.push(option);
  const data = parts.join(',');
  if (Buffer.byteLength(data) > MOUNT_DATA_MAX) {
    throw new BerthError(
      'FailedPrecondition',
      `overlay mount on ${target}: the options for ${opts.lower.length} lower layers take ${Buffer.byteLength(data)} bytes, over mount(2)'s limit of ${MOUNT_DATA_MAX}, and this kernel lacks fsconfig("lowerdir+")`,
      { hint: 'use Linux 6.8 or later, a shorter snapshot root path, or an image with fewer layers' },
    );
  }
  return data;
}
