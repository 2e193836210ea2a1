// The `docker save` / `docker load` archive. Its core is manifest.json, an array of
// {Config, RepoTags, Layers} whose paths point into the tar: `<hex>.json` and
// `<v1 id>/layer.tar` (with VERSION and json beside it) up to Docker 24, `blobs/sha256/<hex>`
// from Docker 25 on, which also makes the tar an OCI layout (index.json, oci-layout).
// Layers in these archives are usually uncompressed tars; loading stores them as they are
// (with the matching media type) and saving decompresses, because Docker 20.10's loader
// wants plain tars.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError } from '../../errors.js';
import { parseDigest } from '../digest.js';
import { parseImageConfig, parseIndex, parseManifest } from '../image-config.js';
import { shortId, type ProgressEvent } from '../progress.js';
import { familiarName, parseReference } from '../reference.js';
import { hostPlatform, selectManifest } from '../registry/platform.js';
import { MediaType, isIndexMediaType, isManifestMediaType, type Descriptor, type Digest, type ImageConfig, type ImageManifest, type Platform } from '../types.js';
import { decompress, detectCompression, type Compression } from '../unpack/decompress.js';
import {
  ArchiveTarWriter,
  MAX_CONFIG_BYTES,
  MAX_MANIFEST_BYTES,
  OCI_INDEX_FILE,
  OCI_LAYOUT_FILE,
  archivePath,
  blobPath,
  indexDocument,
  guarded,
  loadOciLayout,
  loadSpooledLayout,
  nameAnnotations,
  normaliseName,
  ociLayoutDocument,
  resolveImages,
  spoolArchive,
  withLease,
  type ArchiveStores,
  type LoadResult,
  type LoadedImage,
  type SpooledArchive,
  readHead,
} from './oci-layout.js';

export const DOCKER_MANIFEST_FILE = 'manifest.json';
export const DOCKER_REPOSITORIES_FILE = 'repositories';

/** One element of manifest.json. */
export interface DockerArchiveImage {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
  Parent?: string;
  /** Foreign (non-distributable) layers by diffID; Windows images only. */
  LayerSources?: Record<string, Descriptor>;
}

// --- manifest.json ---

/** Validates manifest.json; every path is checked to stay inside the archive. */
export function parseDockerArchiveManifest(bytes: Buffer, where = DOCKER_MANIFEST_FILE): DockerArchiveImage[] {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new BerthError('InvalidArgument', `${where}: not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!Array.isArray(doc)) throw new BerthError('InvalidArgument', `${where}: expected an array of images, got ${typeName(doc)}`);
  if (doc.length === 0) throw new BerthError('InvalidArgument', `${where}: lists no images`);
  return doc.map((item: unknown, i): DockerArchiveImage => {
    const at = `${where}[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      throw new BerthError('InvalidArgument', `${at}: expected an object, got ${typeName(item)}`);
    }
    const o = item as Record<string, unknown>;
    const config = o['Config'];
    if (typeof config !== 'string' || config === '') throw new BerthError('InvalidArgument', `${at}.Config: expected a path in the archive`);
    const layers = o['Layers'];
    if (!Array.isArray(layers) || layers.some((l) => typeof l !== 'string' || l === '')) {
      throw new BerthError('InvalidArgument', `${at}.Layers: expected an array of paths in the archive`);
    }
    const tags = o['RepoTags'];
    if (tags !== undefined && tags !== null && (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string'))) {
      throw new BerthError('InvalidArgument', `${at}.RepoTags: expected an array of image names or null`);
    }
    const out: DockerArchiveImage = {
      Config: archivePath(config, `${at}.Config`),
      RepoTags: (tags as string[] | null | undefined) ?? null,
      Layers: (layers as string[]).map((l, j) => archivePath(l, `${at}.Layers[${j}]`)),
    };
    if (typeof o['Parent'] === 'string') out.Parent = o['Parent'];
    const sources = o['LayerSources'];
    if (sources !== undefined && sources !== null) {
      if (typeof sources !== 'object' || Array.isArray(sources)) throw new BerthError('InvalidArgument', `${at}.LayerSources: expected an object`);
      out.LayerSources = sources as Record<string, Descriptor>;
    }
    return out;
  });
}

export function dockerArchiveManifestDocument(images: readonly DockerArchiveImage[]): Buffer {
  return Buffer.from(JSON.stringify(images));
}

/** The legacy `repositories` file: {repo: {tag: id of the top layer}}, in familiar names. */
export function repositoriesDocument(tags: ReadonlyArray<{ name: string; topLayer: string }>): Buffer {
  const out: Record<string, Record<string, string>> = {};
  for (const { name, topLayer } of tags) {
    const ref = parseReference(name);
    if (ref.tag === undefined) continue;
    const familiar = familiarName({ domain: ref.domain, path: ref.path });
    (out[familiar] ??= {})[ref.tag] = topLayer;
  }
  return Buffer.from(JSON.stringify(out));
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

// --- load ---

export interface DockerLoadOptions {
  /** Names the image of an OCI layout tar whose entry carries no full name (see loadOciLayout). */
  name?: string;
  signal?: AbortSignal;
  onProgress?(event: ProgressEvent): void;
  /** Where large entries of legacy archives are spilled while reading; default os.tmpdir(). */
  tmpDir?: string;
}

export function layerMediaType(compression: Compression): string {
  switch (compression) {
    case 'gzip':
      return MediaType.ociLayerGzip;
    case 'zstd':
      return MediaType.ociLayerZstd;
    case 'none':
      return MediaType.ociLayer;
  }
}

/**
 * Loads a `docker save` archive (any Docker version; an OCI layout tar without manifest.json
 * too, as Docker ≥ 25 does): stores configs and layers as they are, checks every layer
 * against the config's diff_ids, records an OCI manifest per image and tags RepoTags.
 */
export async function loadDockerArchive(stream: Readable, stores: ArchiveStores, opts: DockerLoadOptions & { where?: string } = {}): Promise<LoadResult> {
  const where = opts.where ?? 'docker archive';
  guarded(stream);
  return withLease(stores, async (hold) => {
    const archive = await spoolArchive(stream, stores.content, { where, signal: opts.signal, onProgress: opts.onProgress, tmpDir: opts.tmpDir, hold });
    try {
      const manifestFile = archive.lookup(DOCKER_MANIFEST_FILE);
      if (!manifestFile) {
        if (archive.has(OCI_LAYOUT_FILE)) return { images: await loadSpooledLayout(archive, stores, { where, name: opts.name, onProgress: opts.onProgress }) };
        throw new BerthError('InvalidArgument', `${where}: manifest.json is missing`, {
          hint: 'is this a `docker save` archive? archives from before Docker 1.10 (no manifest.json) are not supported',
        });
      }
      const entries = parseDockerArchiveManifest(await archive.bytes(manifestFile, MAX_MANIFEST_BYTES), `${where}: manifest.json`);
      const loader = new DockerArchiveLoader(archive, stores, { ...opts, where, hold });
      const images: LoadedImage[] = [];
      for (const [i, entry] of entries.entries()) images.push(...(await loader.load(entry, i)));
      return { images };
    } finally {
      await archive.dispose();
    }
  });
}

/**
 * Loads whatever `docker load` would: a `docker save` archive or an oci-archive (a stream or
 * a file), or an OCI layout directory.
 */
export async function loadArchive(source: Readable | string, stores: ArchiveStores, opts: DockerLoadOptions = {}): Promise<LoadResult> {
  if (typeof source !== 'string') return loadDockerArchive(source, stores, opts);
  let st;
  try {
    st = await stat(source);
  } catch (err) {
    throw new BerthError('NotFound', `archive ${source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  if (st.isDirectory()) return loadOciLayout(source, stores, opts);
  return loadDockerArchive(createReadStream(source), stores, { ...opts, where: `archive ${source}` });
}

interface LoadedLayer {
  desc: Descriptor;
  diffId: Digest;
}

class DockerArchiveLoader {
  private readonly layers = new Map<string, LoadedLayer>();
  private layoutManifests: Map<Digest, Descriptor[]> | undefined;

  constructor(
    private readonly archive: SpooledArchive,
    private readonly stores: ArchiveStores,
    private readonly opts: DockerLoadOptions & { where: string; hold(digest: Digest): void },
  ) {}

  async load(entry: DockerArchiveImage, i: number): Promise<LoadedImage[]> {
    const { where } = this.opts;
    const at = `${where}: manifest.json[${i}]`;
    const configFile = this.archive.lookup(entry.Config);
    if (!configFile) throw new BerthError('InvalidArgument', `${at}.Config: "${entry.Config}" is not in the archive`);
    const configBytes = await this.archive.bytes(configFile, MAX_CONFIG_BYTES);
    const config = parseImageConfig(configBytes, `${where}: config "${entry.Config}"`);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== entry.Layers.length) {
      throw new BerthError('InvalidArgument', `${at}: ${entry.Layers.length} layers, but config "${entry.Config}" lists ${diffIds.length} diff_ids`);
    }
    const layers: Descriptor[] = [];
    for (const [j, path] of entry.Layers.entries()) {
      layers.push(await this.layer(path, diffIds[j]!, `${at}.Layers[${j}]`, entry.Config));
    }
    this.opts.signal?.throwIfAborted();
    this.opts.hold(configFile.digest);
    await this.archive.commit(configFile, this.opts.signal);
    const configDesc: Descriptor = { mediaType: MediaType.ociConfig, digest: configFile.digest, size: configFile.size };
    const target = (await this.layoutManifest(configDesc, layers)) ?? (await this.storeManifest(configDesc, layers));

    const tags = entry.RepoTags ?? [];
    if (tags.length === 0) {
      this.opts.onProgress?.({ status: `Loaded image ID: ${configDesc.digest}` });
      return [{ digest: target.digest }];
    }
    const out: LoadedImage[] = [];
    for (const [k, tag] of tags.entries()) {
      const name = normaliseName(tag, `${at}.RepoTags[${k}]`);
      await this.stores.images.put({ name, target });
      this.opts.onProgress?.({ status: `Loaded image: ${familiarName(parseReference(name))}` });
      out.push({ name, digest: target.digest });
    }
    return out;
  }

  /** Verifies one layer file against its diffID and stores it (once per file). */
  private async layer(path: string, diffId: Digest, at: string, configPath: string): Promise<Descriptor> {
    const { where, signal } = this.opts;
    const file = this.archive.lookup(path);
    if (!file) throw new BerthError('InvalidArgument', `${at}: layer "${path}" is not in the archive`);
    let loaded = this.layers.get(file.name);
    if (!loaded) {
      const compression = detectCompression(await this.archive.head(file, 4));
      const actual = compression === 'none' ? file.digest : await uncompressedDigest(this.archive.open(file), `${where}: layer "${path}"`, signal);
      loaded = { desc: { mediaType: layerMediaType(compression), digest: file.digest, size: file.size }, diffId: actual };
      if (actual === diffId) {
        this.opts.hold(file.digest);
        await this.archive.commit(file, signal);
      }
      this.layers.set(file.name, loaded);
      this.opts.onProgress?.({ status: 'Loaded layer', id: shortId(loaded.diffId), current: file.size, total: file.size });
    }
    if (loaded.diffId !== diffId) {
      throw new BerthError('InvalidArgument', `${where}: layer "${path}" has diffID ${loaded.diffId}, but config "${configPath}" says ${diffId}`, {
        hint: 'the archive is corrupt or was altered; save the image again',
      });
    }
    return loaded.desc;
  }

  /** A Docker ≥ 25 archive's own manifest for this config, when its layers are the ones loaded. */
  private async layoutManifest(config: Descriptor, layers: Descriptor[]): Promise<Descriptor | undefined> {
    this.layoutManifests ??= await this.readLayoutManifests();
    for (const desc of this.layoutManifests.get(config.digest) ?? []) {
      const manifest = parseManifest(await this.stores.content.readBuffer(desc.digest), `manifest ${desc.digest}`);
      if (manifest.layers.length === layers.length && manifest.layers.every((l, k) => l.digest === layers[k]!.digest)) {
        return { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
      }
    }
    return undefined;
  }

  /**
   * The manifests index.json names whose blobs came with the archive, by config digest.
   * docker load ignores index.json, so a broken one is no reason to fail: it is not used.
   */
  private async readLayoutManifests(): Promise<Map<Digest, Descriptor[]>> {
    const out = new Map<Digest, Descriptor[]>();
    const indexFile = this.archive.lookup(OCI_INDEX_FILE);
    if (!indexFile || !this.archive.has(OCI_LAYOUT_FILE)) return out;
    try {
      const index = parseIndex(await this.archive.bytes(indexFile, MAX_MANIFEST_BYTES), 'index.json');
      for (const desc of index.manifests) {
        if (!isManifestMediaType(desc.mediaType) || desc.size > MAX_MANIFEST_BYTES) continue;
        const stored = await this.stores.content.info(desc.digest);
        if (!stored || stored.size !== desc.size) continue;
        const manifest = parseManifest(await this.stores.content.readBuffer(desc.digest), `manifest ${desc.digest}`);
        const list = out.get(manifest.config.digest) ?? [];
        list.push(desc);
        out.set(manifest.config.digest, list);
      }
    } catch {
      return new Map();
    }
    return out;
  }

  private async storeManifest(config: Descriptor, layers: Descriptor[]): Promise<Descriptor> {
    const manifest: ImageManifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers };
    const bytes = Buffer.from(JSON.stringify(manifest));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    this.opts.hold(digest);
    await this.stores.content.put({ digest, size: bytes.length }, bytes);
    return { mediaType: MediaType.ociManifest, digest, size: bytes.length };
  }
}

/** sha256 of the decompressed stream: the diffID of a compressed layer. */
export async function uncompressedDigest(stream: Readable, where: string, signal?: AbortSignal): Promise<Digest> {
  const hash = createHash('sha256');
  const plain = decompress(stream, { where, signal });
  for await (const chunk of plain as AsyncIterable<Buffer>) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

// --- save ---

export interface DockerSaveOptions {
  signal?: AbortSignal;
  /** The platform to export from multi-platform images; default the host's. */
  platform?: Platform;
  /** Where compressed layers are decompressed before they go into the tar; default os.tmpdir(). */
  tmpDir?: string;
}

interface SaveImage {
  names: string[];
  manifestDesc: Descriptor;
  manifest: ImageManifest;
  config: ImageConfig;
}

/**
 * Writes the images as a tar that `docker load` accepts from Docker 20.10 on: manifest.json
 * with RepoTags, config and uncompressed layers under blobs/sha256/, plus the OCI index.json
 * and oci-layout that Docker 25 writes beside them. On failure `out` is destroyed.
 */
export async function saveDockerArchive(names: readonly string[], stores: ArchiveStores, out: Writable, opts: DockerSaveOptions = {}): Promise<void> {
  try {
    await writeDockerArchive(names, stores, out, opts);
  } catch (err) {
    // A half-written archive must not look complete to whoever reads `out`; no error event,
    // which would crash a caller that listens for none: the caller gets the error here.
    if (!out.destroyed) out.destroy();
    throw err;
  }
}

async function writeDockerArchive(names: readonly string[], stores: ArchiveStores, out: Writable, opts: DockerSaveOptions): Promise<void> {
  const resolved = await resolveImages(stores, names);
  const byManifest = new Map<Digest, SaveImage>();
  const order: SaveImage[] = [];
  for (const img of resolved) {
    const where = `image ${img.name}`;
    const manifestDesc = await platformManifest(stores, img.target, opts.platform ?? hostPlatform(), where);
    let entry = byManifest.get(manifestDesc.digest);
    if (!entry) {
      const manifest = parseManifest(await stores.content.readBuffer(manifestDesc.digest), `${where}: manifest ${manifestDesc.digest}`);
      const config = parseImageConfig(await stores.content.readBuffer(manifest.config.digest), `${where}: config ${manifest.config.digest}`);
      if (config.rootfs.diff_ids.length !== manifest.layers.length) {
        throw new BerthError('FailedPrecondition', `${where}: manifest ${manifestDesc.digest} has ${manifest.layers.length} layers but its config lists ${config.rootfs.diff_ids.length} diff_ids`);
      }
      entry = { names: [], manifestDesc, manifest, config };
      byManifest.set(manifestDesc.digest, entry);
      order.push(entry);
    }
    // Docker's RepoTags hold tags only; a name by digest alone exports the image untagged.
    if (img.ref.tag !== undefined && !entry.names.includes(img.name)) entry.names.push(img.name);
  }

  const tmp = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'berth-save-'));
  try {
    const tar = new ArchiveTarWriter(out, opts.signal);
    await tar.run(async () => {
      await tar.dir('blobs/');
      await tar.dir('blobs/sha256/');
      const written = new Set<Digest>();
      const dockerManifest: DockerArchiveImage[] = [];
      const indexEntries: Descriptor[] = [];
      const repositories: Array<{ name: string; topLayer: string }> = [];
      for (const image of order) {
        const where = `image ${image.names[0] ?? image.manifestDesc.digest}`;
        const layers: Descriptor[] = [];
        let allPlain = true;
        for (const [j, layer] of image.manifest.layers.entries()) {
          const diffId = image.config.rootfs.diff_ids[j]!;
          const plain = await writePlainLayer(tar, stores, layer, diffId, { where: `${where}: layer ${layer.digest}`, tmp, written, signal: opts.signal });
          if (!plain.unchanged) allPlain = false;
          layers.push({ mediaType: MediaType.ociLayer, digest: diffId, size: plain.size });
        }
        const configDesc = image.manifest.config;
        if (!written.has(configDesc.digest)) {
          await tar.file(blobPath(configDesc.digest), configDesc.size, stores.content.read(configDesc.digest));
          written.add(configDesc.digest);
        }
        const ociManifest = allPlain ? image.manifestDesc : await writeManifest(tar, configDesc, layers, written);
        if (allPlain && !written.has(ociManifest.digest)) {
          await tar.file(blobPath(ociManifest.digest), ociManifest.size, stores.content.read(ociManifest.digest));
          written.add(ociManifest.digest);
        }
        const plainManifest: Descriptor = { mediaType: ociManifest.mediaType, digest: ociManifest.digest, size: ociManifest.size };
        if (image.names.length === 0) indexEntries.push(plainManifest);
        for (const name of image.names) indexEntries.push({ ...plainManifest, annotations: nameAnnotations(name) });
        dockerManifest.push({
          Config: blobPath(configDesc.digest),
          RepoTags: image.names.length > 0 ? image.names.map((n) => familiarName(parseReference(n))) : null,
          Layers: layers.map((l) => blobPath(l.digest)),
        });
        const top = layers.at(-1);
        if (top) for (const name of image.names) repositories.push({ name, topLayer: parseDigest(top.digest).hex });
      }
      await tar.buffer(OCI_INDEX_FILE, indexDocument(indexEntries));
      await tar.buffer(DOCKER_MANIFEST_FILE, dockerArchiveManifestDocument(dockerManifest));
      await tar.buffer(OCI_LAYOUT_FILE, ociLayoutDocument());
      await tar.buffer(DOCKER_REPOSITORIES_FILE, repositoriesDocument(repositories));
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The manifest of `target` for `platform`, among the children the content store holds. */
async function platformManifest(stores: ArchiveStores, target: Descriptor, platform: Platform, where: string): Promise<Descriptor> {
  let desc = target;
  for (let depth = 0; isIndexMediaType(desc.mediaType); depth++) {
    if (depth > 4) throw new BerthError('InvalidArgument', `${where}: indexes nested too deep`);
    const index = parseIndex(await stores.content.readBuffer(desc.digest), `${where}: index ${desc.digest}`);
    const present: Descriptor[] = [];
    for (const child of index.manifests) if (await stores.content.has(child.digest)) present.push(child);
    desc = selectManifest({ ...index, manifests: present }, platform, `${where}: index ${desc.digest}`);
  }
  if (!isManifestMediaType(desc.mediaType)) {
    throw new BerthError('FailedPrecondition', `${where}: ${desc.digest} has media type "${desc.mediaType}", not an image manifest`);
  }
  return desc;
}

/**
 * Writes a layer as an uncompressed tar under blobs/sha256/<diffID hex>. A compressed blob is
 * decompressed to a temp file first (the tar header needs the size) and checked against its
 * diffID on the way; `unchanged` says whether the stored blob was written as it is.
 */
async function writePlainLayer(
  tar: ArchiveTarWriter,
  stores: ArchiveStores,
  layer: Descriptor,
  diffId: Digest,
  ctx: { where: string; tmp: string; written: Set<Digest>; signal?: AbortSignal },
): Promise<{ size: number; unchanged: boolean }> {
  const { content } = stores;
  const info = await content.info(layer.digest);
  if (!info) {
    throw new BerthError('FailedPrecondition', `${ctx.where}: the blob is missing from the content store`, { hint: 'pull the image again' });
  }
  const head = await readHead(content.read(layer.digest), 4);
  if (detectCompression(head) === 'none') {
    if (layer.digest !== diffId) {
      throw new BerthError('FailedPrecondition', `${ctx.where}: an uncompressed layer whose digest is not its diffID ${diffId}`);
    }
    if (!ctx.written.has(diffId)) {
      await tar.file(blobPath(diffId), info.size, content.read(layer.digest));
      ctx.written.add(diffId);
    }
    return { size: info.size, unchanged: true };
  }
  const file = join(ctx.tmp, parseDigest(diffId).hex);
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    decompress(content.read(layer.digest), { where: ctx.where, signal: ctx.signal }),
    new Transform({
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        hash.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    }),
    createWriteStream(file, { mode: 0o600 }),
  );
  try {
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== diffId) {
      throw new BerthError('FailedPrecondition', `${ctx.where}: decompresses to diffID ${actual}, but the config says ${diffId}`, {
        hint: 'the stored blob or config is corrupt; pull the image again',
      });
    }
    if (!ctx.written.has(diffId)) {
      await tar.file(blobPath(diffId), size, createReadStream(file));
      ctx.written.add(diffId);
    }
  } finally {
    await unlink(file).catch(() => undefined);
  }
  return { size, unchanged: false };
}

async function writeManifest(tar: ArchiveTarWriter, config: Descriptor, layers: Descriptor[], written: Set<Digest>): Promise<Descriptor> {
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: config.digest, size: config.size },
    layers,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (!written.has(digest)) {
    await tar.buffer(blobPath(digest), bytes);
    written.add(digest);
  }
  return { mediaType: MediaType.ociManifest, digest, size: bytes.length };
}

