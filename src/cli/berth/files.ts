// cp and export: tar over the archive API. Paths are resolved as `docker cp` does: a
// directory destination receives the source under its own name ("SRC/." copies the contents),
// a missing destination takes the source's place.
import { createReadStream, createWriteStream, lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, statSync, symlinkSync, linkSync, chmodSync, utimesSync, rmSync, type Stats } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { PathStat } from '../../engine/types.js';
import { readTar, TarWriter, type TarEntry } from '../../image/unpack/tar.js';
import { DaemonError } from './client.js';
import { CliError, type Command, type Context } from './context.js';
import { humanSize } from './format.js';
import { enc } from './output.js';

const GO_MODE_DIR = 2 ** 31;
const GO_MODE_SYMLINK = 2 ** 27;

export function decodePathStat(header: string | string[] | undefined): PathStat | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  if (!h) return undefined;
  try {
    return JSON.parse(Buffer.from(h, 'base64').toString('utf8')) as PathStat;
  } catch {
    return undefined;
  }
}

export function isDirStat(s: PathStat): boolean {
  return s.mode >= 0 && Math.floor(s.mode / GO_MODE_DIR) % 2 === 1;
}

export function isSymlinkStat(s: PathStat): boolean {
  return Math.floor(s.mode / GO_MODE_SYMLINK) % 2 === 1;
}

/** `CONTAINER:PATH` → its parts; a local path (absolute or starting with .) is never a container. */
export function splitCpArg(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/') || arg.startsWith('.')) return { path: arg };
  const colon = arg.indexOf(':');
  if (colon <= 0) return { path: arg };
  return { container: arg.slice(0, colon), path: arg.slice(colon + 1) };
}

/** Entries of an archive are rooted at the source's own name; the destination may rename it. */
export function rebase(name: string): string | undefined {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) return undefined;
  return parts.slice(1).join('/');
}

/** Writes the archive below `root`, replacing its top-level entry's name with `root` itself. */
export async function extractArchive(tar: Readable, root: string): Promise<number> {
  let bytes = 0;
  const dirTimes: [string, number][] = [];
  for await (const { entry, body } of readTar(tar, { where: 'archive from the container' })) {
    const rel = rebase(entry.name);
    if (rel === undefined) throw new CliError(`refusing archive entry "${entry.name}": it leaves the destination`);
    const target = rel === '' ? root : path.join(root, rel);
    // Never write through a symlink that an earlier entry (or the host) put on the way.
    const parent = path.dirname(target);
    if (rel !== '' && !parent.startsWith(root)) throw new CliError(`refusing archive entry "${entry.name}"`);
    switch (entry.type) {
      case 'dir': {
        let st: Stats | undefined;
        try {
          st = lstatSync(target);
        } catch {
          st = undefined;
        }
        if (st && !st.isDirectory()) throw new CliError(`cannot overwrite non-directory ${target} with a directory`);
        if (!st) mkdirSync(target, { mode: entry.mode & 0o7777 });
        else chmodSync(target, entry.mode & 0o7777);
        dirTimes.push([target, entry.mtime]);
        break;
      }
      case 'file': {
        rmIfNotDir(target);
        await pipeline(body, createWriteStream(target, { mode: entry.mode & 0o7777, flags: 'wx' }));
        chmodSync(target, entry.mode & 0o7777);
        utimesSync(target, entry.mtime, entry.mtime);
        bytes += entry.size;
        break;
      }
      case 'symlink':
        rmIfNotDir(target);
        symlinkSync(entry.linkname ?? '', target);
        break;
      case 'hardlink': {
        const linkRel = rebase(entry.linkname ?? '');
        if (linkRel === undefined) throw new CliError(`refusing hard link "${entry.name}" to "${entry.linkname}"`);
        rmIfNotDir(target);
        linkSync(linkRel === '' ? root : path.join(root, linkRel), target);
        break;
      }
      default:
        // Device nodes and fifos need privileges docker cp does not assume either.
        break;
    }
  }
  for (const [d, t] of dirTimes.reverse()) utimesSync(d, t, t);
  return bytes;
}

function rmIfNotDir(p: string): void {
  try {
    const st = lstatSync(p);
    if (st.isDirectory()) throw new CliError(`cannot overwrite directory ${p} with a non-directory`);
    rmSync(p);
  } catch (e) {
    if (e instanceof CliError) throw e;
  }
}

/** A local file or tree as a tar whose top entry is called `name`. */
export function packPath(src: string, name: string, opts: { followLink?: boolean } = {}): TarWriter {
  const writer = new TarWriter();
  const entryFor = (p: string, st: Stats, rel: string): TarEntry | undefined => {
    const base = { name: rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime: Math.floor(st.mtimeMs / 1000) };
    if (st.isDirectory()) return { ...base, type: 'dir' };
    if (st.isFile()) return { ...base, type: 'file', size: st.size };
    if (st.isSymbolicLink()) return { ...base, type: 'symlink', linkname: readlinkSync(p) };
    return undefined;
  };
  const walk = async (p: string, rel: string, top: boolean): Promise<void> => {
    const st = top && opts.followLink ? statSync(p) : lstatSync(p);
    const e = entryFor(p, st, rel);
    if (!e) return;
    await writer.add(e, e.type === 'file' && e.size > 0 ? createReadStream(p) : undefined);
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) await walk(path.join(p, n), `${rel}/${n}`, false);
  };
  walk(src, name, true)
    .then(() => writer.finish())
    .catch((e: unknown) => writer.destroy(e as Error));
  return writer;
}

function localStat(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

async function statInContainer(ctx: Context, container: string, p: string): Promise<PathStat | undefined> {
  try {
    const res = await ctx.client().request('HEAD', `/containers/${enc(container)}/archive`, { query: { path: p } });
    res.resume();
    return decodePathStat(res.headers['x-docker-container-path-stat']);
  } catch (e) {
    if (e instanceof DaemonError && e.status === 404) return undefined;
    throw e;
  }
}

async function copyFromContainer(ctx: Context, container: string, src: string, dst: string, followLink: boolean): Promise<number> {
  let srcPath = src;
  if (followLink) {
    const st = await statInContainer(ctx, container, src);
    if (st && isSymlinkStat(st) && st.linkTarget) srcPath = st.linkTarget;
  }
  const res = await ctx.client().request('GET', `/containers/${enc(container)}/archive`, { query: { path: srcPath } });
  if (dst === '-') {
    await pipeline(res, ctx.stdout, { end: false });
    return 0;
  }
  const stat = decodePathStat(res.headers['x-docker-container-path-stat']);
  const srcIsDir = stat ? isDirStat(stat) : false;
  const contentsOnly = /(^|\/)\.$/.test(src);
  const dstStat = localStat(dst);
  let root: string;
  if (dstStat?.isDirectory()) root = contentsOnly ? dst : path.join(dst, path.basename(stat?.name || path.basename(srcPath)));
  else if (dstStat) {
    if (srcIsDir) throw new CliError(`cannot copy a directory to a file: ${dst}`);
    root = dst;
  } else {
    if (dst.endsWith('/') && !srcIsDir) throw new CliError(`destination directory "${dst}" does not exist`);
    if (!localStat(path.dirname(path.resolve(dst)))?.isDirectory()) throw new CliError(`destination directory "${path.dirname(dst)}" does not exist`);
    root = dst;
  }
  // A directory extracted onto an existing one merges into it, as docker does.
  if (!srcIsDir || !localStat(root)) {
    const tmpParent = path.dirname(path.resolve(root));
    const tmp = path.join(tmpParent, `.berth-cp-${process.pid}-${Date.now()}`);
    try {
      const n = await extractArchive(res, tmp);
      renameSync(tmp, root);
      return n;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return extractArchive(res, root);
}

async function copyToContainer(ctx: Context, src: string, container: string, dst: string, opts: { followLink: boolean; archive: boolean }): Promise<number> {
  const query = { noOverwriteDirNonDir: true, copyUIDGID: opts.archive || undefined };
  if (src === '-') {
    await ctx.client().call('PUT', `/containers/${enc(container)}/archive`, { query: { ...query, path: dst }, raw: ctx.stdin });
    return 0;
  }
  let st: Stats;
  try {
    st = opts.followLink ? statSync(src) : lstatSync(src);
  } catch (e) {
    throw new CliError(`could not stat ${src}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
  }
  const contentsOnly = /(^|\/)\.$/.test(src);
  const dstStat = await statInContainer(ctx, container, dst);
  let putPath: string;
  let name: string;
  if (dstStat && isDirStat(dstStat)) {
    putPath = dst;
    name = contentsOnly ? '.' : path.basename(path.resolve(src));
  } else {
    if (dstStat && st.isDirectory()) throw new CliError(`cannot copy a directory to a file: ${container}:${dst}`);
    if (!dstStat && dst.endsWith('/')) throw new CliError(`destination directory "${container}:${dst}" does not exist`);
    putPath = path.posix.dirname(dst);
    name = path.posix.basename(dst);
  }
  const tar = packPath(src, name, { followLink: opts.followLink });
  let bytes = 0;
  tar.on('data', (c: Buffer) => (bytes += c.length));
  await ctx.client().call('PUT', `/containers/${enc(container)}/archive`, { query: { ...query, path: putPath }, raw: tar });
  return bytes;
}

const cp: Command = {
  spec: {
    name: 'cp',
    usage: '[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH',
    summary: 'Copy files/folders between a container and the local filesystem',
    minArgs: 2,
    maxArgs: 2,
    flags: [
      { long: 'archive', short: 'a', kind: 'bool', help: 'Archive mode (copy all uid/gid information)' },
      { long: 'follow-link', short: 'L', kind: 'bool', help: 'Always follow symbol link in SRC_PATH' },
      { long: 'quiet', short: 'q', kind: 'bool', help: 'Suppress progress output during copy (automatic without a terminal on STDERR)' },
    ],
  },
  async run(ctx, f, [a, b]) {
    const src = splitCpArg(a);
    const dst = splitCpArg(b);
    if (src.container && dst.container) throw new CliError('copying between containers is not supported');
    if (!src.container && !dst.container) throw new CliError('must specify at least one container source');
    let bytes: number;
    let where: string;
    if (src.container) {
      if (!src.path) throw new CliError('filepath cannot be empty');
      bytes = await copyFromContainer(ctx, src.container, src.path, dst.path, f.bool('follow-link'));
      where = dst.path;
    } else {
      if (!dst.path) throw new CliError('filepath cannot be empty');
      bytes = await copyToContainer(ctx, src.path, dst.container as string, dst.path, { followLink: f.bool('follow-link'), archive: f.bool('archive') });
      where = `${dst.container}:${dst.path}`;
    }
    if (!f.bool('quiet') && ctx.stderr.isTTY && where !== '-') ctx.stderr.write(`Successfully copied ${humanSize(bytes)} to ${where}\n`);
    return 0;
  },
};

const exportCmd: Command = {
  spec: { name: 'export', usage: '[OPTIONS] CONTAINER', summary: "Export a container's filesystem as a tar archive", minArgs: 1, maxArgs: 1, flags: [{ long: 'output', short: 'o', kind: 'string', help: 'Write to a file, instead of STDOUT' }] },
  async run(ctx, f, [id]) {
    const out = f.str('output');
    if (!out && ctx.stdout.isTTY) throw new CliError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
    const res = await ctx.client().request('GET', `/containers/${enc(id)}/export`);
    if (out) await pipeline(res, createWriteStream(out));
    else await pipeline(res, ctx.stdout, { end: false });
    return 0;
  },
};

export const commands: Record<string, Command> = { cp, export: exportCmd };
