// Builders for test layers: ordinary ones from a list of entries, compressed as asked, and
// the malicious ones the issue lists (crafted with raw headers where the writer would refuse).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { TarWriter, tarHeader, tarPadding, TAR_END, type TarEntry, type TarEntryType } from '../../src/image/unpack/tar.js';

export interface LayerEntrySpec {
  name: string;
  type?: TarEntryType;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, Buffer | string>;
  body?: string | Buffer;
}

export type Compression = 'none' | 'gzip' | 'zstd';

function toEntry(spec: LayerEntrySpec): { entry: TarEntry; body?: Buffer } {
  const type = spec.type ?? (spec.linkname !== undefined ? 'symlink' : spec.name.endsWith('/') ? 'dir' : 'file');
  const body = type === 'file' ? Buffer.from(spec.body ?? '') : undefined;
  const entry: TarEntry = {
    name: spec.name,
    type,
    mode: spec.mode ?? (type === 'dir' ? 0o755 : 0o644),
    uid: spec.uid ?? 0,
    gid: spec.gid ?? 0,
    size: body?.length ?? 0,
    mtime: spec.mtime ?? 1_700_000_000,
  };
  if (spec.linkname !== undefined) entry.linkname = spec.linkname;
  if (spec.devmajor !== undefined) entry.devmajor = spec.devmajor;
  if (spec.devminor !== undefined) entry.devminor = spec.devminor;
  if (spec.xattrs) {
    entry.xattrs = Object.fromEntries(Object.entries(spec.xattrs).map(([k, v]) => [k, Buffer.from(v)]));
  }
  return { entry, body };
}

/** An uncompressed layer tar holding the entries in order. */
export async function buildTar(entries: LayerEntrySpec[]): Promise<Buffer> {
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of w) chunks.push(c as Buffer);
  })();
  for (const spec of entries) {
    const { entry, body } = toEntry(spec);
    await w.add(entry, body);
  }
  await w.finish();
  await collected;
  return Buffer.concat(chunks);
}

export function compress(tar: Buffer, compression: Compression): Buffer {
  if (compression === 'none') return tar;
  if (compression === 'gzip') return gzipSync(tar);
  const r = spawnSync('zstd', ['-c', '-q', '-3'], { input: tar, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr.toString()}`);
  return r.stdout;
}

/** A layer blob and the digests a manifest and config would carry for it. */
export async function buildLayer(
  entries: LayerEntrySpec[],
  compression: Compression = 'gzip',
): Promise<{ blob: Buffer; tar: Buffer; diffId: string }> {
  const tar = await buildTar(entries);
  return { blob: compress(tar, compression), tar, diffId: `sha256:${createHash('sha256').update(tar).digest('hex')}` };
}

/** A tar assembled from raw parts: header objects (padded bodies follow) and the end marker. */
export function rawTar(parts: Array<{ entry: TarEntry; body?: Buffer }>, opts: { end?: boolean } = {}): Buffer {
  const out: Buffer[] = [];
  for (const { entry, body } of parts) {
    out.push(tarHeader(entry));
    if (body) out.push(body, tarPadding(body.length));
  }
  if (opts.end ?? true) out.push(TAR_END);
  return Buffer.concat(out);
}

function file(name: string, body = 'x', extra: Partial<TarEntry> = {}): { entry: TarEntry; body: Buffer } {
  const b = Buffer.from(body);
  return { entry: { name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: b.length, mtime: 1_700_000_000, ...extra }, body: b };
}

/** The malicious layers of the issue, each as an uncompressed tar. */
export const malicious = {
  /** A file whose name climbs out of the layer with '..'. */
  dotDot: (escapeTo: string): Promise<Buffer> => buildTar([{ name: `a/../../${escapeTo}`, body: 'pwned' }]),
  /** Absolute names: must land inside the layer, never at the host path. */
  absolute: (hostPath: string): Promise<Buffer> => buildTar([{ name: hostPath, body: 'pwned' }]),
  /** A symlink to an outside directory, then a file written "through" it. */
  symlinkThenWrite: (outsideDir: string): Promise<Buffer> =>
    buildTar([
      { name: 'evil', type: 'symlink', linkname: outsideDir },
      { name: 'evil/pwned', body: 'pwned' },
    ]),
  /** A relative symlink climbing out, then a file written through it. */
  relativeSymlinkThenWrite: (depth: number): Promise<Buffer> =>
    buildTar([
      { name: 'up', type: 'symlink', linkname: '../'.repeat(depth) },
      { name: 'up/pwned', body: 'pwned' },
    ]),
  /** A symlink named like a file, then that file as a regular entry: must not write through. */
  symlinkThenSameName: (outsideFile: string): Promise<Buffer> =>
    buildTar([
      { name: 'passwd', type: 'symlink', linkname: outsideFile },
      { name: 'passwd', body: 'pwned' },
    ]),
  /** A hard link to a host file (absolute and with '..'). */
  hardlinkOutside: (target: string): Promise<Buffer> => buildTar([{ name: 'link', type: 'hardlink', linkname: target }]),
  /** A hard link through a symlink pointing outside. */
  hardlinkThroughSymlink: (outsideDir: string, fileName: string): Promise<Buffer> =>
    buildTar([
      { name: 'evil', type: 'symlink', linkname: outsideDir },
      { name: 'link', type: 'hardlink', linkname: `evil/${fileName}` },
    ]),
  /** A header declaring far more bytes than follow (the stream just ends). */
  hugeDeclaredSize: (size = 2 ** 40): Buffer => {
    const { entry } = file('bomb');
    return Buffer.concat([tarHeader({ ...entry, size }), Buffer.alloc(4096, 0x41)]);
  },
  /** Many entries whose declared sizes add up beyond a limit (data present). */
  manyFiles: (count: number, each: number): Buffer =>
    rawTar(Array.from({ length: count }, (_, i) => file(`f${i}`, 'B'.repeat(each)))),
};
