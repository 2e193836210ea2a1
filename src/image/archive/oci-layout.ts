// OCI Image Layout (image-spec image-layout.md): an `oci-layout` file, `index.json` and
// `blobs/<alg>/<hex>`, as a directory or as a tar (oci-archive). Docker ≥ 25 writes the same
// layout inside its `docker save` archives, so the tar spooling and the walk from index.json
// here are shared with docker-archive.ts.
//
// Loading reads a tar once, front to back, in whatever order its entries come: blobs named
// by digest go straight into the content store (which verifies them), small files stay in
// memory and anything else is spilled to a temp file with its sha256, so that an archive is
// never held in memory and layers may come before the documents that describe them.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { Readable, Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError } from '../../errors.js';
import { writeFileAtomic } from '../../host/fs-atomic.js';
import { parseDigest, sha256Digest } from '../digest.js';
import { parseIndex, parseManifest } from '../image-config.js';
import { shortId, type ProgressEvent } from '../progress.js';
import { familiarName, formatReference, parseReference, repositoryName, type Reference } from '../reference.js';
import type { ContentStore } from '../store/content-store.js';
import type { ImageStore } from '../store/image-store.js';
import type { LeaseStore } from '../store/leases.js';
import { readTar, TarWriter, type TarEntry } from '../unpack/tar.js';
import { MediaType, isIndexMediaType, isManifestMediaType, type Descriptor, type Digest, type ImageIndex } from '../types.js';

/** What archive operations work on; an ImageContext satisfies it. */
export interface ArchiveStores {
  content: ContentStore;
  images: ImageStore;
  /** When given, a load holds its blobs in a lease until the image records exist (gc-safe). */
  leases?: LeaseStore;
}

export interface LoadedImage {
  /** The full record name (`docker.io/library/busybox:latest`); absent for untagged images. */
  name?: string;
  /** The digest of the manifest (or index) the record points at. */
  digest: Digest;
}

export interface LoadResult {
  images: LoadedImage[];
}

export const OCI_LAYOUT_FILE = 'oci-layout';
export const OCI_INDEX_FILE = 'index.json';
export const OCI_LAYOUT_VERSION = '1.0.0';
/** containerd's annotation with the full image name (Docker ≥ 25 writes it too). */
export const ANNOTATION_CONTAINERD_NAME = 'io.containerd.image.name';
/** image-spec's annotation: a tag (Docker, containerd) or a full reference (some tools). */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

/** Registries refuse manifests above 4 MiB; nothing legitimate is larger. */
export const MAX_MANIFEST_BYTES = 4 << 20;
/** Image configs with long histories reach a few MiB; this bounds what is read into memory. */
export const MAX_CONFIG_BYTES = 32 << 20;
/** Tar entries up to this size are kept in memory while an archive is read. */
const MEMORY_ENTRY_BYTES = 1 << 20;
const MAX_LINK_HOPS = 16;

// --- the documents ---

export function ociLayoutDocument(): Buffer {
  return Buffer.from(JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
}

/** Checks the `oci-layout` file: a JSON object whose imageLayoutVersion is 1.x. */
export function parseOciLayoutDocument(bytes: Buffer, where: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new BerthError('InvalidArgument', `${where}: oci-layout is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const version = isObject(doc) ? doc['imageLayoutVersion'] : undefined;
  if (typeof version !== 'string') {
    throw new BerthError('InvalidArgument', `${where}: oci-layout: imageLayoutVersion is missing or not a string`);
  }
  if (!/^1\.\d+\.\d+$/.test(version)) {
    throw new BerthError('InvalidArgument', `${where}: oci-layout: imageLayoutVersion "${version}" is not supported`, {
      hint: `berth reads layout version ${OCI_LAYOUT_VERSION}`,
    });
  }
  return version;
}

/** The annotations Docker 25 and containerd put on an index.json entry for `name`. */
export function nameAnnotations(name: string): Record<string, string> {
  const ref = parseReference(name);
  const out: Record<string, string> = { [ANNOTATION_CONTAINERD_NAME]: formatReference(ref) };
  if (ref.tag !== undefined && ref.digest === undefined) out[ANNOTATION_REF_NAME] = ref.tag;
  return out;
}

/**
 * The record name of an index.json entry. `io.containerd.image.name` is a full name;
 * `org.opencontainers.image.ref.name` is either a full reference or, as the spec's examples
 * and Docker write it, only a tag, which needs `fallback` (a repository or name the caller
 * chose) to become a name. An entry with no name annotation takes `fallback` as it is.
 */
export function layoutEntryName(desc: Descriptor, fallback: string | undefined, where: string): string | undefined {
  const annotations = desc.annotations ?? {};
  const full = annotations[ANNOTATION_CONTAINERD_NAME];
  if (full !== undefined && full !== '') return normaliseName(full, `${where}: annotation ${ANNOTATION_CONTAINERD_NAME}`);
  const refName = annotations[ANNOTATION_REF_NAME];
  if (refName !== undefined && refName !== '') {
    if (/^\w[\w.-]{0,127}$/.test(refName)) {
      if (fallback === undefined) return undefined;
      const base = parseReference(fallback);
      return formatReference({ domain: base.domain, path: base.path, tag: refName });
    }
    return normaliseName(refName, `${where}: annotation ${ANNOTATION_REF_NAME}`);
  }
  return fallback === undefined ? undefined : normaliseName(fallback, `${where}: name`);
}

/** A reference in berth's full form, or InvalidArgument naming where it came from. */
export function normaliseName(input: string, where: string): string {
  let ref: Reference;
  try {
    ref = parseReference(input);
  } catch (err) {
    throw new BerthError('InvalidArgument', `${where}: ${(err as Error).message}`, { cause: err });
  }
  return formatReference(ref);
}

export function indexDocument(manifests: Descriptor[]): Buffer {
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
  return Buffer.from(JSON.stringify(index));
}

/** `blobs/<alg>/<hex>`: where a layout keeps a blob. */
export function blobPath(digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest);
  return `blobs/${algorithm}/${hex}`;
}

/** The digest a `blobs/<alg>/<hex>` path names, or undefined for any other path. */
export function digestOfBlobPath(path: string): Digest | undefined {
  const m = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(path);
  if (!m) return undefined;
  const digest = `${m[1]}:${m[2]}`;
  try {
    parseDigest(digest);
    return digest;
  } catch {
    return undefined;
  }
}

// --- archive entry names ---

/**
 * An archive path in canonical form (no leading `/` or `./`, no empty or `.` components).
 * `..` is refused outright: nothing in these formats needs it, and it would let a name
 * escape wherever a consumer extracts the archive.
 */
export function archivePath(name: string, where: string): string {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) {
    throw new BerthError('InvalidArgument', `${where}: "${name}" has a ".." component`, {
      hint: 'the archive is malformed or hostile; paths must stay inside the archive',
    });
  }
  return parts.join('/');
}

// --- spooling a tar ---

/** Up to the first `n` bytes of a stream, which is then destroyed. */
export async function readHead(stream: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= n) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, n);
}

export type SpooledFile =
  | { kind: 'memory'; name: string; size: number; digest: Digest; data: Buffer }
  | { kind: 'temp'; name: string; size: number; digest: Digest; path: string }
  | { kind: 'store'; name: string; size: number; digest: Digest };

export interface SpoolOptions {
  /** Names the archive in messages: "docker archive", "oci archive". */
  where: string;
  signal?: AbortSignal;
  onProgress?(event: ProgressEvent): void;
  /** Where large entries that are not blobs/<alg>/<hex> are spilled; default os.tmpdir(). */
  tmpDir?: string;
  /** Called with each blob's digest before it is written to the content store (a lease's add). */
  hold?(digest: Digest): void;
}

/** The regular files of an archive read once, with symlinks and hardlinks between them. */
export class SpooledArchive {
  readonly files = new Map<string, SpooledFile>();
  readonly links = new Map<string, string>();
  private tempDir: string | undefined;
  private tempCount = 0;

  constructor(
    readonly where: string,
    private readonly content: ContentStore,
    private readonly tmpRoot: string,
  ) {}

  /** The file at `name`, following links inside the archive. */
  lookup(name: string): SpooledFile | undefined {
    let current = name;
    for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
      const file = this.files.get(current);
      if (file) return file;
      const next = this.links.get(current);
      if (next === undefined) return undefined;
      current = next;
    }
    throw new BerthError('InvalidArgument', `${this.where}: entry "${name}": too many levels of links`);
  }

  has(name: string): boolean {
    return this.lookup(name) !== undefined;
  }

  open(file: SpooledFile): Readable {
    switch (file.kind) {
      case 'memory':
        return Readable.from([file.data]);
      case 'temp':
        return createReadStream(file.path);
      case 'store':
        return this.content.read(file.digest);
    }
  }

  async bytes(file: SpooledFile, max: number): Promise<Buffer> {
    if (file.size > max) {
      throw new BerthError('InvalidArgument', `${this.where}: entry "${file.name}" is ${file.size} bytes, more than the ${max} a document may have`);
    }
    switch (file.kind) {
      case 'memory':
        return file.data;
      case 'temp':
        return readFile(file.path);
      case 'store':
        return this.content.readBuffer(file.digest);
    }
  }

  /** Up to `n` first bytes (to recognise compression). */
  async head(file: SpooledFile, n: number): Promise<Buffer> {
    if (file.kind === 'memory') return file.data.subarray(0, n);
    if (file.kind === 'temp') {
      const fh = await open(file.path, 'r');
      try {
        const buf = Buffer.alloc(n);
        const { bytesRead } = await fh.read(buf, 0, n, 0);
        return buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    }
    return readHead(this.content.read(file.digest), n);
  }

  /** Makes sure the file is in the content store under its digest. */
  async commit(file: SpooledFile, signal?: AbortSignal): Promise<void> {
    if (file.kind === 'store') return;
    if (file.kind === 'memory') {
      await this.content.put({ digest: file.digest, size: file.size }, file.data);
      return;
    }
    await this.content.ingest(
      { digest: file.digest, size: file.size },
      async (offset) => createReadStream(file.path, { start: offset }),
      { signal, source: `${this.where}: tar entry "${file.name}"` },
    );
  }

  async newTempPath(): Promise<string> {
    this.tempDir ??= await mkdtemp(join(this.tmpRoot, 'berth-archive-'));
    return join(this.tempDir, `entry-${++this.tempCount}`);
  }

  async dispose(): Promise<void> {
    if (this.tempDir !== undefined) await rm(this.tempDir, { recursive: true, force: true });
    this.tempDir = undefined;
  }
}

/**
 * Reads a tar to its end: blobs/<alg>/<hex> entries are ingested into the content store and
 * verified against their names; other regular files are kept in memory or spilled to a temp
 * file, with their sha256; links are recorded (and confined to the archive); directories
 * are implied. The caller disposes of the result.
 */
export async function spoolArchive(stream: Readable, content: ContentStore, opts: SpoolOptions): Promise<SpooledArchive> {
  const { where, signal } = opts;
  const archive = new SpooledArchive(where, content, opts.tmpDir ?? tmpdir());
  const onAbort = (): void => {
    stream.destroy(abortError(where, signal?.reason));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (signal?.aborted) throw abortError(where, signal.reason);
    let entries = 0;
    for await (const { entry, body } of readTar(stream, { where })) {
      entries++;
      const name = archivePath(entry.name, `${where}: tar entry`);
      if (name === '' || entry.type === 'dir') {
        body.resume();
        continue;
      }
      if (entry.type === 'symlink' || entry.type === 'hardlink') {
        body.resume();
        archive.links.set(name, linkTarget(entry, name, where));
        continue;
      }
      if (entry.type !== 'file') {
        body.resume();
        continue;
      }
      if (archive.files.has(name) || archive.links.has(name)) {
        // A later entry with the same name replaces the earlier one, as tar extraction would.
        archive.links.delete(name);
      }
      archive.files.set(name, await spoolEntry(archive, content, name, entry, body, opts));
      opts.onProgress?.({ status: 'Reading', id: name, current: entry.size, total: entry.size });
    }
    if (entries === 0) throw new BerthError('InvalidArgument', `${where}: the archive is empty (no tar entries)`);
    return archive;
  } catch (err) {
    await archive.dispose();
    if (signal?.aborted) throw abortError(where, signal.reason);
    throw wrapTarError(err, where);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function linkTarget(entry: TarEntry, name: string, where: string): string {
  const target = entry.linkname ?? '';
  if (target === '') throw new BerthError('InvalidArgument', `${where}: tar entry "${entry.name}": link without a target`);
  // Symlinks are relative to their directory; hardlink names are archive paths. An absolute
  // symlink is read as if the archive were the root, the way an extraction in a chroot would;
  // a relative one that climbs out of the archive is refused.
  const relative = entry.type === 'symlink' && !target.startsWith('/');
  const normal = posix.normalize(relative ? posix.join(posix.dirname(name), target) : `/${target}`);
  if (normal === '..' || normal.startsWith('../')) {
    throw new BerthError('InvalidArgument', `${where}: tar entry "${entry.name}": link target "${target}" is outside the archive`);
  }
  return archivePath(normal, `${where}: tar entry "${entry.name}" link target`);
}

async function spoolEntry(
  archive: SpooledArchive,
  content: ContentStore,
  name: string,
  entry: TarEntry,
  body: Readable,
  opts: SpoolOptions,
): Promise<SpooledFile> {
  const blobDigest = digestOfBlobPath(name);
  if (blobDigest !== undefined) {
    opts.hold?.(blobDigest);
    await ingestEntry(content, blobDigest, entry, body, `${opts.where}: tar entry "${entry.name}"`, opts.signal);
    return { kind: 'store', name, size: entry.size, digest: blobDigest };
  }
  if (entry.size <= MEMORY_ENTRY_BYTES) {
    const chunks: Buffer[] = [];
    for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
    const data = Buffer.concat(chunks);
    return { kind: 'memory', name, size: data.length, digest: sha256Digest(data), data };
  }
  const path = await archive.newTempPath();
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    body,
    new Transform({
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        hash.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    }),
    createWriteStream(path, { mode: 0o600 }),
  );
  return { kind: 'temp', name, size, digest: `sha256:${hash.digest('hex')}`, path };
}

/** Ingests a tar entry's body under the digest its name claims; the store verifies it. */
async function ingestEntry(content: ContentStore, digest: Digest, entry: TarEntry, body: Readable, where: string, signal?: AbortSignal): Promise<void> {
  let opened = false;
  try {
    await content.ingest(
      { digest, size: entry.size },
      async (offset) => {
        if (opened) throw new BerthError('Internal', `${where}: the entry can be read only once`);
        opened = true;
        return offset === 0 ? body : body.pipe(skipBytes(offset));
      },
      { signal, source: where },
    );
  } finally {
    // Already stored (the store did not need the bytes) or failed: drain so the tar goes on.
    if (!body.readableEnded) body.resume();
  }
}

function skipBytes(n: number): Transform {
  let left = n;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (left >= chunk.length) {
        left -= chunk.length;
        return cb();
      }
      const rest = chunk.subarray(left);
      left = 0;
      cb(null, rest);
    },
  });
}

export function abortError(where: string, reason: unknown): BerthError {
  return new BerthError('Unavailable', `${where}: cancelled`, { cause: reason });
}

function wrapTarError(err: unknown, where: string): unknown {
  if (err instanceof BerthError) return err;
  return new BerthError('InvalidArgument', `${where}: cannot read the archive: ${(err as Error).message}`, {
    cause: err,
    hint: 'is it a tar file (docker save / oci-archive)?',
  });
}

// --- walking a layout from index.json ---

/** Where the blobs of a layout come from: the store (tar, already spooled) or a directory. */
export interface LayoutBlobs {
  /** True when the blob is (now) in the content store with the right size. */
  ensure(desc: Descriptor, where: string): Promise<boolean>;
}

/** Blobs already ingested while the archive was spooled. */
export function storedBlobs(content: ContentStore): LayoutBlobs {
  return {
    async ensure(desc, where) {
      const info = await content.info(desc.digest);
      if (!info) return false;
      checkSize(desc, info.size, where);
      return true;
    },
  };
}

/** Blobs read from a layout directory, each verified by the content store on the way in. */
export function directoryBlobs(content: ContentStore, dir: string, opts: { signal?: AbortSignal; hold?(d: Digest): void }): LayoutBlobs {
  return {
    async ensure(desc, where) {
      const file = join(dir, blobPath(desc.digest));
      let size: number;
      try {
        const st = await stat(file);
        if (!st.isFile()) return false;
        size = st.size;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw err;
      }
      checkSize(desc, size, `${where} (${file})`);
      opts.hold?.(desc.digest);
      await content.ingest({ digest: desc.digest, size }, async (offset) => createReadStream(file, { start: offset }), {
        signal: opts.signal,
        source: `${where}: file ${file}`,
      });
      return true;
    },
  };
}

function checkSize(desc: Descriptor, actual: number, where: string): void {
  if (desc.size !== actual) {
    throw new BerthError('InvalidArgument', `${where}: blob ${desc.digest} is ${actual} bytes, the descriptor says ${desc.size}`);
  }
}

/**
 * Checks that everything an index.json entry needs is present (ingesting it from `blobs`):
 * a manifest's config and layers (non-distributable layers with URLs may be absent), an
 * index's children as far as they are present — an index may list platforms whose blobs
 * were never fetched, but at least one must be complete.
 */
export async function walkLayoutEntry(content: ContentStore, blobs: LayoutBlobs, desc: Descriptor, where: string, depth = 0): Promise<boolean> {
  if (depth > 4) throw new BerthError('InvalidArgument', `${where}: indexes nested too deep`);
  if (!(await blobs.ensure(desc, where))) return false;
  if (isIndexMediaType(desc.mediaType)) {
    await checkDocumentSize(desc, MAX_MANIFEST_BYTES, where);
    const index = parseIndex(await content.readBuffer(desc.digest), `${where}: index ${desc.digest}`);
    let present = 0;
    for (const [i, child] of index.manifests.entries()) {
      if (await walkLayoutEntry(content, blobs, child, `${where}: index ${shortId(desc.digest)} manifests[${i}]`, depth + 1)) present++;
    }
    if (present === 0) {
      throw new BerthError('InvalidArgument', `${where}: none of the ${index.manifests.length} manifests of index ${desc.digest} is in the layout`);
    }
    return true;
  }
  if (isManifestMediaType(desc.mediaType)) {
    await checkDocumentSize(desc, MAX_MANIFEST_BYTES, where);
    const manifest = parseManifest(await content.readBuffer(desc.digest), `${where}: manifest ${desc.digest}`);
    if (!(await blobs.ensure(manifest.config, `${where}: config`))) {
      throw new BerthError('InvalidArgument', `${where}: config ${manifest.config.digest} of manifest ${desc.digest} is not in the layout`);
    }
    for (const [i, layer] of manifest.layers.entries()) {
      const present = await blobs.ensure(layer, `${where}: layers[${i}]`);
      if (!present && !(layer.urls && layer.urls.length > 0)) {
        throw new BerthError('InvalidArgument', `${where}: layer ${layer.digest} (layers[${i}] of manifest ${desc.digest}) is not in the layout`);
      }
    }
    return true;
  }
  if (depth === 0) {
    throw new BerthError('InvalidArgument', `${where}: media type "${desc.mediaType}" is neither an image manifest nor an index`);
  }
  // Artifacts beside images in an index (attestations, signatures) are carried if present.
  return true;
}

async function checkDocumentSize(desc: Descriptor, max: number, where: string): Promise<void> {
  if (desc.size > max) throw new BerthError('InvalidArgument', `${where}: ${desc.digest} is ${desc.size} bytes; documents may have at most ${max}`);
}

export interface LayoutLoadOptions {
  /** Names entries that carry no full name (a repository, or a reference with tag). */
  name?: string;
  signal?: AbortSignal;
  onProgress?(event: ProgressEvent): void;
  tmpDir?: string;
}

/** Walks index.json, checks each entry and records the named ones in the image store. */
export async function recordLayoutImages(
  stores: ArchiveStores,
  index: ImageIndex,
  blobs: LayoutBlobs,
  opts: { where: string; name?: string; onProgress?(event: ProgressEvent): void },
): Promise<LoadedImage[]> {
  const out: LoadedImage[] = [];
  const entries = index.manifests;
  for (const [i, desc] of entries.entries()) {
    const where = `${opts.where}: index.json manifests[${i}]`;
    await walkLayoutEntry(stores.content, blobs, desc, where);
    // The descriptor without its name annotations is what the record points at.
    const target: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
    if (desc.platform) target.platform = desc.platform;
    // A caller's name fits an unnamed entry only when it is the layout's single entry.
    const name = layoutEntryName(desc, entries.length === 1 || hasTagOnlyName(desc) ? opts.name : undefined, where);
    if (name !== undefined) {
      await stores.images.put({ name, target });
      opts.onProgress?.({ status: `Loaded image: ${familiarName(parseReference(name))}` });
    } else {
      opts.onProgress?.({ status: `Loaded image ID: ${desc.digest}` });
    }
    out.push(name === undefined ? { digest: desc.digest } : { name, digest: desc.digest });
  }
  return out;
}

function hasTagOnlyName(desc: Descriptor): boolean {
  const refName = desc.annotations?.[ANNOTATION_REF_NAME];
  return refName !== undefined && /^\w[\w.-]{0,127}$/.test(refName);
}

// --- load ---

/**
 * Loads an OCI layout: a directory (path), or an oci-archive tar (a path to a file, or a
 * stream). Every blob is verified against its digest on the way into the content store.
 */
export async function loadOciLayout(source: string | Readable, stores: ArchiveStores, opts: LayoutLoadOptions = {}): Promise<LoadResult> {
  if (typeof source === 'string') {
    let st;
    try {
      st = await stat(source);
    } catch (err) {
      throw new BerthError('NotFound', `OCI layout ${source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    if (st.isDirectory()) return loadLayoutDirectory(source, stores, opts);
    return loadLayoutTar(guarded(createReadStream(source)), stores, { ...opts, where: `oci archive ${source}` });
  }
  return loadLayoutTar(guarded(source), stores, { ...opts, where: 'oci archive' });
}

/**
 * Keeps an error of a caller's stream that happens before reading starts (a file that cannot
 * be opened while a lease is being created) from being an uncaught 'error' event; the reader
 * still gets it, from the stream's errored state.
 */
export function guarded<T extends Readable>(stream: T): T {
  stream.on('error', () => undefined);
  return stream;
}

/** Runs `work` holding what it stores in a lease (when the stores have leases). */
export async function withLease<T>(stores: ArchiveStores, work: (hold: (digest: Digest) => void) => Promise<T>): Promise<T> {
  if (!stores.leases) return work(() => {});
  const lease = await stores.leases.create();
  try {
    return await work((digest) => lease.add({ type: 'content', id: digest }));
  } finally {
    await lease.release();
  }
}

async function loadLayoutDirectory(dir: string, stores: ArchiveStores, opts: LayoutLoadOptions): Promise<LoadResult> {
  const where = `OCI layout ${dir}`;
  const layoutFile = await readSmallFile(join(dir, OCI_LAYOUT_FILE), 64 << 10, where);
  if (layoutFile === undefined) {
    throw new BerthError('InvalidArgument', `${where}: the oci-layout file is missing`, { hint: 'is this an OCI image layout directory?' });
  }
  parseOciLayoutDocument(layoutFile, where);
  const indexBytes = await readSmallFile(join(dir, OCI_INDEX_FILE), MAX_MANIFEST_BYTES, where);
  if (indexBytes === undefined) throw new BerthError('InvalidArgument', `${where}: index.json is missing`);
  const index = parseIndex(indexBytes, `${where}: index.json`);
  return withLease(stores, async (hold) => {
    const blobs = directoryBlobs(stores.content, dir, { signal: opts.signal, hold });
    const images = await recordLayoutImages(stores, index, blobs, { where, name: opts.name, onProgress: opts.onProgress });
    return { images };
  });
}

async function readSmallFile(path: string, max: number, where: string): Promise<Buffer | undefined> {
  try {
    const st = await stat(path);
    if (st.size > max) throw new BerthError('InvalidArgument', `${where}: ${path} is ${st.size} bytes, more than the ${max} it may have`);
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Loads an OCI layout from a spooled tar (shared with Docker ≥ 25 archives). */
export async function loadSpooledLayout(archive: SpooledArchive, stores: ArchiveStores, opts: { where: string; name?: string; onProgress?(e: ProgressEvent): void }): Promise<LoadedImage[]> {
  const layoutFile = archive.lookup(OCI_LAYOUT_FILE);
  if (!layoutFile) throw new BerthError('InvalidArgument', `${opts.where}: the oci-layout file is missing`, { hint: 'is this an oci-archive?' });
  parseOciLayoutDocument(await archive.bytes(layoutFile, 64 << 10), opts.where);
  const indexFile = archive.lookup(OCI_INDEX_FILE);
  if (!indexFile) throw new BerthError('InvalidArgument', `${opts.where}: index.json is missing`);
  const index = parseIndex(await archive.bytes(indexFile, MAX_MANIFEST_BYTES), `${opts.where}: index.json`);
  return recordLayoutImages(stores, index, storedBlobs(stores.content), opts);
}

async function loadLayoutTar(stream: Readable, stores: ArchiveStores, opts: LayoutLoadOptions & { where: string }): Promise<LoadResult> {
  return withLease(stores, async (hold) => {
    const archive = await spoolArchive(stream, stores.content, { ...opts, hold });
    try {
      return { images: await loadSpooledLayout(archive, stores, opts) };
    } finally {
      await archive.dispose();
    }
  });
}

// --- save ---

export interface SaveLayoutOptions {
  signal?: AbortSignal;
}

export type LayoutTarget = { dir: string } | { tar: Writable };

/** An image record resolved for export: the record name and what it points at. */
export interface ResolvedImage {
  name: string;
  ref: Reference;
  target: Descriptor;
}

/**
 * Finds the records `names` refer to: by full name, or for `name@digest` without a record
 * of that exact name, any record of the repository pointing at that digest.
 */
export async function resolveImages(stores: ArchiveStores, names: readonly string[]): Promise<ResolvedImage[]> {
  if (names.length === 0) throw new BerthError('InvalidArgument', 'no image names given');
  const out: ResolvedImage[] = [];
  for (const input of names) {
    const ref = parseReference(input);
    const name = formatReference(ref);
    let record = await stores.images.get(name);
    if (!record && ref.digest !== undefined) {
      const repo = repositoryName(ref);
      record = (await stores.images.list()).find((r) => r.target.digest === ref.digest && repositoryName(parseReference(r.name)) === repo);
      if (record) {
        out.push({ name, ref, target: record.target });
        continue;
      }
    }
    if (!record) throw new BerthError('NotFound', `image ${input} (${name}) is not in the image store`, { hint: 'pull or load it first' });
    out.push({ name, ref, target: record.target });
  }
  return out;
}

/** The blobs an export needs, in an order that puts documents after what they refer to. */
export async function collectBlobs(content: ContentStore, target: Descriptor, where: string, into: Map<Digest, Descriptor>, depth = 0): Promise<void> {
  if (depth > 4) throw new BerthError('InvalidArgument', `${where}: indexes nested too deep`);
  if (isIndexMediaType(target.mediaType)) {
    const index = parseIndex(await content.readBuffer(target.digest), `${where}: index ${target.digest}`);
    let present = 0;
    for (const child of index.manifests) {
      if (!(await content.has(child.digest))) continue;
      present++;
      await collectBlobs(content, child, where, into, depth + 1);
    }
    if (present === 0) throw new BerthError('FailedPrecondition', `${where}: none of the manifests of index ${target.digest} is in the content store`);
  } else if (isManifestMediaType(target.mediaType)) {
    const manifest = parseManifest(await content.readBuffer(target.digest), `${where}: manifest ${target.digest}`);
    await requireBlob(content, manifest.config, where);
    into.set(manifest.config.digest, manifest.config);
    for (const layer of manifest.layers) {
      if (layer.urls && layer.urls.length > 0 && !(await content.has(layer.digest))) continue;
      await requireBlob(content, layer, where);
      into.set(layer.digest, layer);
    }
  } else {
    await requireBlob(content, target, where);
  }
  into.set(target.digest, target);
}

async function requireBlob(content: ContentStore, desc: Descriptor, where: string): Promise<void> {
  if (!(await content.has(desc.digest))) {
    throw new BerthError('FailedPrecondition', `${where}: blob ${desc.digest} (${desc.mediaType}) is missing from the content store`, {
      hint: 'pull the image again',
    });
  }
}

/** One index.json entry per name; the same digest may appear under several names. */
export function layoutIndexEntries(images: readonly ResolvedImage[]): Descriptor[] {
  return images.map((img) => {
    const desc: Descriptor = { mediaType: img.target.mediaType, digest: img.target.digest, size: img.target.size };
    if (img.target.platform) desc.platform = img.target.platform;
    desc.annotations = nameAnnotations(img.name);
    return desc;
  });
}

/**
 * Writes the images `names` refer to, as stored, as an OCI layout directory or tar. A
 * directory that already holds a layout keeps its other images. On failure a tar output is
 * destroyed.
 */
export async function saveOciLayout(names: readonly string[], stores: ArchiveStores, target: LayoutTarget, opts: SaveLayoutOptions = {}): Promise<void> {
  try {
    const images = await resolveImages(stores, names);
    const blobs = new Map<Digest, Descriptor>();
    for (const img of images) await collectBlobs(stores.content, img.target, `image ${img.name}`, blobs);
    if ('dir' in target) await writeLayoutDirectory(target.dir, stores.content, images, blobs, opts.signal);
    else await writeLayoutTar(target.tar, stores.content, images, blobs, opts.signal);
  } catch (err) {
    if ('tar' in target && !target.tar.destroyed) target.tar.destroy();
    throw err;
  }
}

async function writeLayoutDirectory(dir: string, content: ContentStore, images: ResolvedImage[], blobs: Map<Digest, Descriptor>, signal?: AbortSignal): Promise<void> {
  await mkdir(dir, { recursive: true });
  const where = `OCI layout ${dir}`;
  // An existing layout gains the images: its other entries stay, entries of the same name are replaced.
  let previous: Descriptor[] = [];
  const existingLayout = await readSmallFile(join(dir, OCI_LAYOUT_FILE), 64 << 10, where);
  if (existingLayout !== undefined) {
    parseOciLayoutDocument(existingLayout, where);
    const existingIndex = await readSmallFile(join(dir, OCI_INDEX_FILE), MAX_MANIFEST_BYTES, where);
    if (existingIndex !== undefined) previous = parseIndex(existingIndex, `${where}: index.json`).manifests;
  } else if ((await readdir(dir)).length > 0) {
    throw new BerthError('FailedPrecondition', `${where}: the directory is not empty and is not an OCI layout`, { hint: 'give an empty or new directory' });
  }
  for (const desc of blobs.values()) {
    if (signal?.aborted) throw abortError(where, signal.reason);
    const file = join(dir, blobPath(desc.digest));
    const existing = await stat(file).catch(() => undefined);
    if (existing?.isFile() && existing.size === desc.size) continue;
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.tmp-${process.pid}`;
    await pipeline(content.read(desc.digest), createWriteStream(tmp), { signal });
    await rename(tmp, file);
  }
  const fresh = layoutIndexEntries(images);
  const freshNames = new Set(fresh.map((d) => d.annotations?.[ANNOTATION_CONTAINERD_NAME]));
  const kept = previous.filter((d) => {
    const n = d.annotations?.[ANNOTATION_CONTAINERD_NAME];
    return n === undefined || !freshNames.has(n);
  });
  writeFileAtomic(join(dir, OCI_LAYOUT_FILE), ociLayoutDocument());
  writeFileAtomic(join(dir, OCI_INDEX_FILE), indexDocument([...kept, ...fresh]));
}

async function writeLayoutTar(out: Writable, content: ContentStore, images: ResolvedImage[], blobs: Map<Digest, Descriptor>, signal?: AbortSignal): Promise<void> {
  const tar = new ArchiveTarWriter(out, signal);
  await tar.run(async () => {
    await tar.dir('blobs/');
    const algorithms = new Set([...blobs.keys()].map((d) => parseDigest(d).algorithm));
    for (const alg of algorithms) await tar.dir(`blobs/${alg}/`);
    for (const desc of blobs.values()) await tar.file(blobPath(desc.digest), desc.size, content.read(desc.digest));
    await tar.buffer(OCI_LAYOUT_FILE, ociLayoutDocument());
    await tar.buffer(OCI_INDEX_FILE, indexDocument(layoutIndexEntries(images)));
  });
}

// --- writing archives ---

/** TarWriter bound to an output, with the fixed metadata berth gives archive entries. */
export class ArchiveTarWriter {
  private readonly writer = new TarWriter();

  constructor(
    private readonly out: Writable,
    private readonly signal?: AbortSignal,
  ) {}

  /** Runs `produce` while the tar streams into the output; finishes the tar at the end. */
  async run(produce: () => Promise<void>): Promise<void> {
    const piping = pipeline(this.writer, this.out, { signal: this.signal });
    try {
      await produce();
      await this.writer.finish();
    } catch (err) {
      this.writer.destroy(err as Error);
      await piping.catch(() => undefined);
      throw err;
    }
    await piping;
  }

  dir(name: string): Promise<void> {
    return this.add({ name, type: 'dir', mode: 0o755, size: 0 });
  }

  buffer(name: string, data: Buffer): Promise<void> {
    return this.add({ name, type: 'file', mode: 0o644, size: data.length }, data);
  }

  file(name: string, size: number, body: Readable): Promise<void> {
    return this.add({ name, type: 'file', mode: 0o644, size }, body);
  }

  private async add(partial: Pick<TarEntry, 'name' | 'type' | 'mode' | 'size'> & { linkname?: string }, body?: Buffer | Readable): Promise<void> {
    if (this.signal?.aborted) throw abortError('writing the archive', this.signal.reason);
    const entry: TarEntry = { uid: 0, gid: 0, mtime: 0, ...partial };
    await this.writer.add(entry, body);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
