// Applies one layer tar to a directory, confined to it.
//
// Confinement: entry names are normalised lexically (leading '/' and './' stripped); a '..'
// that would climb above the layer root is refused. Symlinks met in PARENT components are
// resolved inside `dir` as if it were the root (absolute targets start at `dir`, '..' stops
// at it), the way containerd and chroot do; a final component is never followed (files are
// created with O_EXCL|O_NOFOLLOW, an existing symlink is replaced, not written through).
// So `evil -> /etc` followed by `evil/passwd` writes `<dir>/etc/passwd`, never /etc/passwd.
// Hard links must name an existing non-directory inside `dir`.
//
// Whiteouts: format 'overlay' (one directory per layer, mounted by overlayfs) turns
// `.wh.NAME` into a 0/0 character device and `.wh..wh..opq` into trusted.overlay.opaque=y.
// Format 'copy' (the layer is applied onto a copy of its parent) deletes NAME, and for an
// opaque directory deletes everything in it that this layer did not write itself — entries
// of this layer that came before the marker stay, as the image-spec says a whiteout hides
// only lower layers.
//
// Speed: metadata work is synchronous fs calls (no thread-pool round trip per syscall); file
// data is written chunk by chunk as it arrives, so big files are never held in memory.
// Directory modes and mtimes are applied at the end, deepest first, so a read-only
// directory can still be filled and adding children does not disturb its mtime.
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  rmSync,
  statfsSync,
  symlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import { BerthError, type ErrorCode } from '../../errors.js';
import * as sys from '../../host/sys.js';
import { TarReader, type TarEntry } from './tar.js';

export type LayerFormat = 'overlay' | 'copy';

export interface ApplyLayerOptions {
  dir: string;
  format: LayerFormat;
  signal?: AbortSignal;
  /** Names the layer in errors, e.g. 'layer sha256:…'. */
  where?: string;
  /** Refuse a layer whose files hold more than this many bytes in total. */
  maxBytes?: number;
  /** Set entries' owners (default: when running as root; otherwise files stay the caller's). */
  chown?: boolean;
  /** Things skipped without failing: unsupported xattrs, unknown entry types. */
  onWarning?(message: string): void;
}

export interface ApplyLayerResult {
  /** Entries applied (whiteouts included, skipped ones not). */
  entries: number;
  /** Bytes of file content written. */
  bytes: number;
}

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';
const MAX_SYMLINK_HOPS = 40;
/** Above this, a declared size is checked against the free space before writing. */
const STATFS_CHECK_SIZE = 256 * 1024 * 1024;
const OPEN_NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

interface DirMeta {
  mode: number;
  mtime: number;
}

/** Whether this process sits in a user namespace (so mknod of devices is impossible). */
function inUserNamespace(): boolean {
  try {
    return readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/).join(' ') !== '0 0 4294967295';
  } catch {
    return false;
  }
}

function errnoCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The components of an entry name with '.' and empty parts dropped and '..' applied; throws
 * when '..' would leave the root.
 */
export function normalizeEntryName(name: string, where = 'layer', label = `entry "${name}"`): string[] {
  if (name.includes('\0')) {
    throw new BerthError('InvalidArgument', `${where}: ${label.replace(/\0/g, '\\0')} has a NUL byte in its name`, {
      hint: 'the layer is malformed or malicious',
    });
  }
  const parts: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (parts.length === 0) {
        throw new BerthError('InvalidArgument', `${where}: ${label} escapes the layer root with ".."`, {
          hint: 'the layer is malformed or malicious; refusing to extract it',
        });
      }
      parts.pop();
    } else parts.push(c);
  }
  return parts;
}

class Applier {
  private readonly root: string;
  private readonly where: string;
  private readonly copy: boolean;
  private readonly chown: boolean;
  private readonly warn: (message: string) => void;
  /** Relative paths known to be real directories (not symlinks); '' is the root. */
  private readonly knownDirs = new Set<string>(['']);
  /** Paths this layer wrote or wrote into (format 'copy' only: what a whiteout must not remove). */
  private readonly written = new Set<string>();
  private readonly dirMeta = new Map<string, DirMeta>();
  private lastParent: { name: string; rel: string } | undefined;
  private entry!: TarEntry;
  private step = '';
  entries = 0;
  bytes = 0;

  constructor(
    private readonly reader: TarReader,
    private readonly opts: ApplyLayerOptions,
  ) {
    this.root = resolvePath(opts.dir);
    this.where = opts.where ?? 'layer';
    this.copy = opts.format === 'copy';
    this.chown = opts.chown ?? process.geteuid?.() === 0;
    this.warn = opts.onWarning ?? (() => {});
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  private fail(code: ErrorCode, message: string, hint?: string, cause?: unknown): never {
    throw new BerthError(code, `${this.where}: entry "${this.entry.name}": ${message}`, { hint, cause });
  }

  /** Forget cached resolutions: a directory or symlink they may have passed through is gone. */
  private invalidate(): void {
    this.knownDirs.clear();
    this.knownDirs.add('');
    this.lastParent = undefined;
  }

  private forgetDirMeta(rel: string): void {
    const prefix = `${rel}/`;
    for (const key of this.dirMeta.keys()) if (key === rel || key.startsWith(prefix)) this.dirMeta.delete(key);
  }

  /** Removes whatever is at rel (recursively for directories). */
  private remove(rel: string, st: Stats | undefined = lstatSync(this.abs(rel), { throwIfNoEntry: false })): void {
    if (!st) return;
    this.step = `remove ${rel}`;
    if (st.isDirectory()) {
      rmSync(this.abs(rel), { recursive: true, force: true });
      this.forgetDirMeta(rel);
      this.invalidate();
    } else {
      rmSync(this.abs(rel), { force: true });
      if (st.isSymbolicLink()) this.invalidate();
    }
  }

  /**
   * The real directory (relative to root) that `parts` names, following symlinks inside the
   * root. Missing components are created (mode 0755) when `create`, else undefined.
   */
  private resolveDir(parts: readonly string[], create: boolean): string | undefined {
    const queue = parts.slice();
    const cur: string[] = [];
    let hops = 0;
    while (queue.length > 0) {
      const c = queue.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        cur.pop();
        continue;
      }
      const rel = cur.length === 0 ? c : `${cur.join('/')}/${c}`;
      // A directory this layer puts something into is its own too: an opaque marker later
      // in the same layer must keep it (and clean only its lower content).
      if (this.copy && create) this.written.add(rel);
      if (this.knownDirs.has(rel)) {
        cur.push(c);
        continue;
      }
      const st = lstatSync(this.abs(rel), { throwIfNoEntry: false });
      if (!st) {
        if (!create) return undefined;
        this.step = `create directory ${rel}`;
        mkdirSync(this.abs(rel), 0o755);
      } else if (st.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) this.fail('InvalidArgument', `too many levels of symbolic links under "${rel}"`, 'the layer is malformed or malicious');
        const target = readlinkSync(this.abs(rel));
        if (target.startsWith('/')) cur.length = 0;
        queue.unshift(...target.split('/'));
        continue;
      } else if (!st.isDirectory()) {
        if (!create) return undefined;
        this.fail('InvalidArgument', `its parent "${rel}" is not a directory`, 'the layer is malformed, or needs a directory entry for that path first');
      }
      this.knownDirs.add(rel);
      cur.push(c);
    }
    return cur.join('/');
  }

  /** The resolved relative path for an entry name; '' is the root itself. */
  private target(parts: readonly string[]): string {
    if (parts.length === 0) return '';
    const parentName = parts.length === 1 ? '' : parts.slice(0, -1).join('/');
    let parent: string;
    if (this.lastParent?.name === parentName) parent = this.lastParent.rel;
    else {
      parent = this.resolveDir(parts.slice(0, -1), true)!;
      this.lastParent = { name: parentName, rel: parent };
    }
    const base = parts[parts.length - 1]!;
    return parent === '' ? base : `${parent}/${base}`;
  }

  private setXattrs(rel: string, xattrs: Record<string, Buffer> | undefined): void {
    if (!xattrs) return;
    for (const [name, value] of Object.entries(xattrs)) {
      // overlayfs reads its own xattrs from layer directories (redirects, metacopy,
      // opaque): a layer must not be able to forge them.
      if (name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.')) {
        this.warn(`${this.where}: entry "${this.entry.name}": ignored the overlayfs-private xattr ${name}`);
        continue;
      }
      this.step = `set xattr ${name}`;
      try {
        sys.lsetxattr(this.abs(rel), name, value);
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EPERM' || code === 'EACCES' || code === 'E2BIG' || code === 'ERANGE' || code === 'EINVAL') {
          this.warn(`${this.where}: entry "${this.entry.name}": xattr ${name} not set: ${(err as Error).message}`);
        } else throw err;
      }
    }
  }

  async apply(): Promise<void> {
    const signal = this.opts.signal;
    for (;;) {
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new DOMException('The operation was aborted', 'AbortError');
      const entry = await this.reader.next();
      if (!entry) break;
      this.entry = entry;
      try {
        await this.one(entry);
      } catch (err) {
        if (err instanceof BerthError || (err as Error)?.name === 'AbortError') throw err;
        throw this.wrap(err);
      }
    }
    this.finishDirs();
  }

  private wrap(err: unknown): BerthError {
    const code = errnoCode(err);
    const message = `${this.where}: entry "${this.entry.name}": ${this.step}: ${(err as Error)?.message ?? String(err)}`;
    if (code === 'ENOSPC' || code === 'EDQUOT') return new BerthError('Unavailable', message, { cause: err, hint: 'free space on the image store filesystem' });
    if (code === 'EPERM' || code === 'EACCES' || code === 'EROFS') return new BerthError('FailedPrecondition', message, { cause: err });
    return new BerthError('Internal', message, { cause: err });
  }

  private async one(entry: TarEntry): Promise<void> {
    const parts = normalizeEntryName(entry.name, this.where);
    const base = parts[parts.length - 1];
    if (base !== undefined && base.startsWith(WHITEOUT_PREFIX)) {
      this.whiteout(parts);
      return;
    }
    if (parts.length === 0 && entry.type !== 'dir') this.fail('InvalidArgument', `the layer root can only be a directory, not a ${entry.type}`);
    const rel = this.target(parts);
    if (this.copy) this.written.add(rel);
    this.entries++;
    switch (entry.type) {
      case 'dir':
        return this.dir(rel, entry);
      case 'file':
        return this.file(rel, entry);
      case 'symlink':
        return this.symlink(rel, entry);
      case 'hardlink':
        return this.hardlink(rel, entry);
      case 'char':
      case 'block':
      case 'fifo':
        return this.node(rel, entry);
    }
  }

  private owner(rel: string, entry: TarEntry): void {
    if (!this.chown) return;
    this.step = `chown ${entry.uid}:${entry.gid}`;
    lchownSync(this.abs(rel), entry.uid, entry.gid);
  }

  private dir(rel: string, entry: TarEntry): void {
    if (!this.knownDirs.has(rel)) {
      const st = lstatSync(this.abs(rel), { throwIfNoEntry: false });
      if (st && !st.isDirectory()) this.remove(rel, st);
      if (!st || !st.isDirectory()) {
        this.step = 'create directory';
        mkdirSync(this.abs(rel), 0o700);
      }
      this.knownDirs.add(rel);
    }
    this.owner(rel, entry);
    this.setXattrs(rel, entry.xattrs);
    this.dirMeta.set(rel, { mode: entry.mode, mtime: entry.mtime });
  }

  private checkSize(entry: TarEntry): void {
    const max = this.opts.maxBytes;
    if (max !== undefined && this.bytes + entry.size > max) {
      this.fail('InvalidArgument', `${entry.size} bytes would bring the layer's content over its limit of ${max} bytes`, 'the layer is too large or a tar bomb');
    }
    if (entry.size > STATFS_CHECK_SIZE) {
      const fs = statfsSync(this.root);
      const free = fs.bavail * fs.bsize;
      if (entry.size > free) {
        this.fail(
          'InvalidArgument',
          `declares ${entry.size} bytes, more than the ${free} bytes free under ${this.root}`,
          'the layer is a tar bomb, or the disk is too small for it',
        );
      }
    }
  }

  private async file(rel: string, entry: TarEntry): Promise<void> {
    this.checkSize(entry);
    const path = this.abs(rel);
    this.step = 'create file';
    let fd: number;
    try {
      fd = openSync(path, OPEN_NEW_FILE, 0o600);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      // Unlink rather than truncate: the old file may be hard-linked elsewhere.
      this.remove(rel);
      this.step = 'create file';
      fd = openSync(path, OPEN_NEW_FILE, 0o600);
    }
    try {
      this.step = 'write';
      for (;;) {
        const chunk = await this.reader.readChunk();
        if (!chunk) break;
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
      }
      this.bytes += entry.size;
      if (this.chown) {
        this.step = `chown ${entry.uid}:${entry.gid}`;
        fchownSync(fd, entry.uid, entry.gid);
      }
      // After chown: chown clears setuid/setgid and security.capability.
      this.step = 'set mode';
      fchmodSync(fd, entry.mode);
      this.setXattrs(rel, entry.xattrs);
      this.step = 'set mtime';
      futimesSync(fd, entry.mtime, entry.mtime);
    } finally {
      closeSync(fd);
    }
  }

  private symlink(rel: string, entry: TarEntry): void {
    const path = this.abs(rel);
    this.step = 'create symlink';
    try {
      symlinkSync(entry.linkname ?? '', path);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      this.remove(rel);
      symlinkSync(entry.linkname ?? '', path);
    }
    this.owner(rel, entry);
    this.setXattrs(rel, entry.xattrs);
    this.step = 'set mtime';
    lutimesSync(path, entry.mtime, entry.mtime);
  }

  private hardlink(rel: string, entry: TarEntry): void {
    const linkParts = normalizeEntryName(entry.linkname ?? '', this.where, `entry "${entry.name}": hard link target "${entry.linkname}"`);
    const refuse = (why: string): never =>
      this.fail('InvalidArgument', `hard link to "${entry.linkname}" refused: ${why}`, 'a hard link may only name an earlier entry inside the layer');
    if (linkParts.length === 0) refuse('it names the layer root');
    const parent = this.resolveDir(linkParts.slice(0, -1), false);
    if (parent === undefined) refuse(this.copy ? 'no such file in the tree' : 'no such file in this layer');
    const targetRel = parent === '' ? linkParts[linkParts.length - 1]! : `${parent}/${linkParts[linkParts.length - 1]!}`;
    const st = lstatSync(this.abs(targetRel), { throwIfNoEntry: false });
    if (!st) refuse(this.copy ? 'no such file in the tree' : 'no such file in this layer');
    if (st!.isDirectory()) refuse('it is a directory');
    if (targetRel === rel) return;
    this.step = `hard link to ${targetRel}`;
    try {
      linkSync(this.abs(targetRel), this.abs(rel));
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      this.remove(rel);
      linkSync(this.abs(targetRel), this.abs(rel));
    }
  }

  private node(rel: string, entry: TarEntry): void {
    const path = this.abs(rel);
    const kind = entry.type === 'char' ? constants.S_IFCHR : entry.type === 'block' ? constants.S_IFBLK : constants.S_IFIFO;
    const major = entry.devmajor ?? 0;
    const minor = entry.devminor ?? 0;
    this.step = entry.type === 'fifo' ? 'mkfifo' : `mknod ${entry.type} ${major}:${minor}`;
    const make = (): void => sys.mknod(path, kind | (entry.mode & 0o7777), major, minor);
    try {
      make();
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EEXIST') {
        this.remove(rel);
        make();
      } else if (code === 'EPERM' && entry.type !== 'fifo') {
        this.fail(
          'FailedPrecondition',
          `${this.step}: EPERM`,
          inUserNamespace()
            ? 'berth runs in a user namespace, where device nodes cannot be created; unpack as real root or use an image without device nodes'
            : 'creating device nodes needs CAP_MKNOD',
          err,
        );
      } else throw err;
    }
    this.owner(rel, entry);
    this.step = 'set mode';
    chmodSync(path, entry.mode);
    this.setXattrs(rel, entry.xattrs);
    this.step = 'set mtime';
    lutimesSync(path, entry.mtime, entry.mtime);
  }

  private whiteout(parts: string[]): void {
    const base = parts[parts.length - 1]!;
    // In format 'copy' a whiteout under a missing directory has nothing to hide.
    const dirRel = this.resolveDir(parts.slice(0, -1), !this.copy);
    if (dirRel === undefined) {
      this.entries++;
      return;
    }
    if (base === OPAQUE_MARKER) {
      this.entries++;
      if (this.copy) this.emptyLowerContent(dirRel);
      else {
        this.step = `set ${OVERLAY_OPAQUE_XATTR}`;
        sys.lsetxattr(this.abs(dirRel), OVERLAY_OPAQUE_XATTR, Buffer.from('y'));
      }
      return;
    }
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name.startsWith(WHITEOUT_PREFIX) || name === '' || name === '.' || name === '..') {
      // `.wh..wh.*` other than the opaque marker is aufs bookkeeping (plnk, aufs), not content.
      this.warn(`${this.where}: skipped entry "${this.entry.name}": not a whiteout berth understands`);
      return;
    }
    this.entries++;
    const rel = dirRel === '' ? name : `${dirRel}/${name}`;
    const st = lstatSync(this.abs(rel), { throwIfNoEntry: false });
    if (this.copy) {
      // A whiteout hides lower layers only, never what this layer itself wrote.
      if (st && !this.written.has(rel)) this.remove(rel, st);
      return;
    }
    if (st) {
      this.warn(`${this.where}: entry "${this.entry.name}": the layer also has "${rel}"; the whiteout is ignored`);
      return;
    }
    this.step = 'create whiteout (char 0:0)';
    sys.mknod(this.abs(rel), constants.S_IFCHR, 0, 0);
  }

  /** Format 'copy', opaque dir: delete what lower layers put under dirRel. */
  private emptyLowerContent(dirRel: string): void {
    for (const name of readdirSync(this.abs(dirRel))) {
      const rel = dirRel === '' ? name : `${dirRel}/${name}`;
      if (!this.written.has(rel)) {
        this.remove(rel);
        continue;
      }
      const st = lstatSync(this.abs(rel));
      if (st.isDirectory()) this.emptyLowerContent(rel);
    }
  }

  private finishDirs(): void {
    const dirs = [...this.dirMeta.entries()].sort((a, b) => depth(b[0]) - depth(a[0]));
    for (const [rel, meta] of dirs) {
      const path = this.abs(rel);
      this.step = `set mode and mtime of directory ${rel || '/'}`;
      try {
        chmodSync(path, meta.mode);
        lutimesSync(path, meta.mtime, meta.mtime);
      } catch (err) {
        throw new BerthError('Internal', `${this.where}: ${this.step}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
}

function depth(rel: string): number {
  if (rel === '') return 0;
  let n = 1;
  for (let i = 0; i < rel.length; i++) if (rel.charCodeAt(i) === 0x2f) n++;
  return n;
}

/**
 * Extracts a layer tar (uncompressed) into opts.dir. Errors are BerthErrors naming the
 * entry; on failure `dir` holds a partial layer the caller discards.
 */
export async function applyLayer(tarStream: Readable, opts: ApplyLayerOptions): Promise<ApplyLayerResult> {
  const where = opts.where ?? 'layer';
  const st = lstatSync(opts.dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) {
    throw new BerthError('InvalidArgument', `${where}: cannot extract into ${opts.dir}: not a directory`);
  }
  const reader = new TarReader(tarStream, { where, onWarning: opts.onWarning });
  const applier = new Applier(reader, opts);
  try {
    await applier.apply();
  } catch (err) {
    reader.destroy();
    throw err;
  }
  return { entries: applier.entries, bytes: applier.bytes };
}
