// `docker import`: a root filesystem tarball (plain, gzip or zstd) becomes a one-layer image.
// The layer is stored gzip-compressed, as Docker stores and pushes it; the config carries
// the tarball's diffID, the platform, the requested changes and one history entry.
// imageFromDirectory (from-directory.ts) builds its image through the same path.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { BerthError } from '../../errors.js';
import { sha256Digest } from '../digest.js';
import { parseReference, formatReference } from '../reference.js';
import { hostPlatform, normalizePlatform, parsePlatform } from '../registry/platform.js';
import { MediaType, type ContainerConfig, type Descriptor, type Digest, type HistoryEntry, type ImageConfig, type ImageManifest, type Platform } from '../types.js';
import { decompress } from '../unpack/decompress.js';
import { readTar } from '../unpack/tar.js';
import { abortError, guarded, withLease, type ArchiveStores } from './oci-layout.js';

/** The config fields `docker import --change` can set. */
export type RootfsChanges = Pick<ContainerConfig, 'Cmd' | 'Entrypoint' | 'Env' | 'WorkingDir' | 'User' | 'ExposedPorts' | 'Labels'>;

/** Media types of the documents written: OCI (default) or Docker schema 2. */
export type ManifestFormat = 'oci' | 'docker';

export interface ImportRootfsOptions {
  /** Tag the image gets (`name[:tag]`); without it the image is only reachable by digest. */
  name?: string;
  changes?: RootfsChanges;
  /** Default the host's; a string like 'linux/arm64/v8' is accepted too. */
  platform?: Platform | string;
  /** The history comment (Docker's `--message`). */
  message?: string;
  format?: ManifestFormat;
  /** The config's creation time; default now. A fixed value makes the image reproducible. */
  created?: Date | string;
  signal?: AbortSignal;
  /** Where the compressed layer is staged before it enters the content store; default os.tmpdir(). */
  tmpDir?: string;
}

export interface CreatedImage {
  /** The manifest digest (what the record points at). */
  digest: Digest;
  /** The full record name, when a name was given. */
  name?: string;
  manifest: Descriptor;
  config: Descriptor;
  layer: Descriptor;
  diffId: Digest;
}

export async function importRootfsTarball(stream: Readable, stores: ArchiveStores, opts: ImportRootfsOptions = {}): Promise<CreatedImage> {
  const where = 'import';
  guarded(stream);
  const config = validateChanges(opts.changes ?? {}, `${where}: changes`);
  const open = (): Readable => decompress(stream, { where: `${where}: tarball`, signal: opts.signal });
  return createLayerImage(open, stores, {
    where,
    name: opts.name,
    config,
    platform: opts.platform,
    format: opts.format,
    created: opts.created,
    signal: opts.signal,
    tmpDir: opts.tmpDir,
    history: { comment: opts.message ?? 'Imported from tarball' },
  });
}

// --- config documents ---

/** Checks `--change` values the way Docker would reject them, and normalises ports. */
export function validateChanges(changes: RootfsChanges, where: string): ContainerConfig {
  const out: ContainerConfig = {};
  const stringArray = (v: unknown, field: string): string[] => {
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new BerthError('InvalidArgument', `${where}.${field}: expected an array of strings`);
    return [...(v as string[])];
  };
  if (changes.Cmd !== undefined && changes.Cmd !== null) out.Cmd = stringArray(changes.Cmd, 'Cmd');
  if (changes.Entrypoint !== undefined && changes.Entrypoint !== null) out.Entrypoint = stringArray(changes.Entrypoint, 'Entrypoint');
  if (changes.Env !== undefined) {
    out.Env = stringArray(changes.Env, 'Env');
    out.Env.forEach((e, i) => {
      if (e.indexOf('=') <= 0) throw new BerthError('InvalidArgument', `${where}.Env[${i}]: "${e}" is not NAME=value`);
    });
  }
  if (changes.WorkingDir !== undefined) {
    if (typeof changes.WorkingDir !== 'string' || !changes.WorkingDir.startsWith('/')) {
      throw new BerthError('InvalidArgument', `${where}.WorkingDir: "${String(changes.WorkingDir)}" is not an absolute path`);
    }
    out.WorkingDir = changes.WorkingDir;
  }
  if (changes.User !== undefined) {
    if (typeof changes.User !== 'string') throw new BerthError('InvalidArgument', `${where}.User: expected a string`);
    out.User = changes.User;
  }
  if (changes.ExposedPorts !== undefined) {
    out.ExposedPorts = {};
    for (const key of Object.keys(changes.ExposedPorts)) out.ExposedPorts[normalisePort(key, `${where}.ExposedPorts`)] = {};
  }
  if (changes.Labels !== undefined) {
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(changes.Labels)) {
      if (typeof v !== 'string' || k === '') throw new BerthError('InvalidArgument', `${where}.Labels: "${k}" must be a non-empty key with a string value`);
      labels[k] = v;
    }
    out.Labels = labels;
  }
  return out;
}

/** `80` → `80/tcp`; protocols tcp, udp, sctp; ports 1–65535. */
export function normalisePort(key: string, where: string): string {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/.exec(key);
  const port = m ? Number(m[1]) : 0;
  if (!m || port < 1 || port > 65535) {
    throw new BerthError('InvalidArgument', `${where}: "${key}" is not a port (PORT or PORT/tcp|udp|sctp, 1-65535)`);
  }
  return `${port}/${m[2] ?? 'tcp'}`;
}

export function resolvePlatform(platform: Platform | string | undefined): Platform {
  if (platform === undefined) return hostPlatform();
  return normalizePlatform(typeof platform === 'string' ? parsePlatform(platform) : platform);
}

export interface ImageConfigInput {
  diffIds: Digest[];
  platform: Platform;
  config?: ContainerConfig;
  created: string;
  history: HistoryEntry[];
}

export function imageConfigDocument(input: ImageConfigInput): ImageConfig {
  const { platform } = input;
  // Key order is the order Docker writes; it decides the config's bytes and so its digest.
  const doc: Partial<ImageConfig> = { architecture: platform.architecture };
  if (input.config && Object.keys(input.config).length > 0) doc.config = input.config;
  doc.created = input.created;
  doc.history = input.history;
  doc.os = platform.os;
  if (platform['os.version']) doc['os.version'] = platform['os.version'];
  doc.rootfs = { type: 'layers', diff_ids: input.diffIds };
  if (platform.variant) doc.variant = platform.variant;
  return doc as ImageConfig;
}

export function mediaTypes(format: ManifestFormat): { manifest: string; config: string; layerGzip: string } {
  return format === 'docker'
    ? { manifest: MediaType.dockerManifest, config: MediaType.dockerConfig, layerGzip: MediaType.dockerLayerGzip }
    : { manifest: MediaType.ociManifest, config: MediaType.ociConfig, layerGzip: MediaType.ociLayerGzip };
}

// --- the shared path: one uncompressed layer → a stored image ---

export interface LayerImageOptions {
  /** Names the operation in messages ("import", "image from directory /x"). */
  where: string;
  name?: string;
  config?: ContainerConfig;
  platform?: Platform | string;
  format?: ManifestFormat;
  created?: Date | string;
  /** The history entry of the layer (its `created` is filled in). */
  history: HistoryEntry;
  signal?: AbortSignal;
  tmpDir?: string;
}

/**
 * Stores the uncompressed layer tar that `open` gives gzip-compressed, with a config and a
 * manifest, and tags it when a name is given. The tar is parsed on the way so that anything
 * but a tar is refused, as `docker import` refuses it. `open` is called only once everything
 * else is checked, so that no stream runs (and fails) before anyone reads it.
 */
export async function createLayerImage(open: () => Readable, stores: ArchiveStores, opts: LayerImageOptions): Promise<CreatedImage> {
  const { where, signal } = opts;
  if (signal?.aborted) throw abortError(where, signal.reason);
  const name = opts.name === undefined ? undefined : imageName(opts.name, `${where}: name`);
  const platform = resolvePlatform(opts.platform);
  const created = (opts.created === undefined ? new Date() : new Date(opts.created)).toISOString();
  const types = mediaTypes(opts.format ?? 'oci');
  const tmp = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'berth-layer-'));
  try {
    const staged = await stageGzipLayer(open(), join(tmp, 'layer.tar.gz'), where, signal);
    return await withLease(stores, async (hold) => {
      const layer: Descriptor = { mediaType: types.layerGzip, digest: staged.digest, size: staged.size };
      hold(layer.digest);
      await stores.content.ingest({ digest: layer.digest, size: layer.size }, async (offset) => createReadStream(staged.path, { start: offset }), {
        signal,
        source: `${where}: staged layer`,
      });
      const configDoc = imageConfigDocument({
        diffIds: [staged.diffId],
        platform,
        config: opts.config,
        created,
        history: [{ created, ...opts.history }],
      });
      const config = await putJson(stores, types.config, configDoc, hold);
      const manifestDoc: ImageManifest = { schemaVersion: 2, mediaType: types.manifest, config, layers: [layer] };
      const manifest = await putJson(stores, types.manifest, manifestDoc, hold);
      if (name !== undefined) await stores.images.put({ name, target: manifest });
      const result: CreatedImage = { digest: manifest.digest, manifest, config, layer, diffId: staged.diffId };
      if (name !== undefined) result.name = name;
      return result;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function putJson(stores: ArchiveStores, mediaType: string, doc: unknown, hold: (d: Digest) => void): Promise<Descriptor> {
  const bytes = Buffer.from(JSON.stringify(doc));
  const digest = sha256Digest(bytes);
  hold(digest);
  await stores.content.put({ digest, size: bytes.length }, bytes);
  return { mediaType, digest, size: bytes.length };
}

/** A name to tag: a full reference with a tag (names by digest cannot be assigned). */
export function imageName(input: string, where: string): string {
  let ref;
  try {
    ref = parseReference(input);
  } catch (err) {
    throw new BerthError('InvalidArgument', `${where}: ${(err as Error).message}`, { cause: err });
  }
  if (ref.digest !== undefined) {
    throw new BerthError('InvalidArgument', `${where}: "${input}" names a digest; an image can only be given a tag`);
  }
  return formatReference(ref);
}

interface StagedLayer {
  path: string;
  digest: Digest;
  size: number;
  diffId: Digest;
  entries: number;
}

/**
 * Streams `plain` through sha256 (the diffID), a tar parser (validation) and gzip into
 * `path`, hashing the compressed bytes (the blob digest). The slowest of the three paces it.
 */
export async function stageGzipLayer(plain: Readable, path: string, where: string, signal?: AbortSignal): Promise<StagedLayer> {
  const diffHash = createHash('sha256');
  const blobHash = createHash('sha256');
  let blobSize = 0;
  const gzip = createGzip();
  const out = createWriteStream(path, { mode: 0o600 });
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      blobHash.update(chunk);
      blobSize += chunk.length;
      cb(null, chunk);
    },
  });
  const writing = pipeline(gzip, tap, out);
  const check = new PassThrough({ highWaterMark: 256 * 1024 });
  const checking = (async (): Promise<number> => {
    let entries = 0;
    for await (const { body } of readTar(check, { where: `${where}: tarball` })) {
      entries++;
      body.resume();
    }
    return entries;
  })();
  let checkDone = false;
  let checkFailure: unknown;
  const checkSettled = checking.then(
    () => {
      checkDone = true;
    },
    (err: unknown) => {
      checkDone = true;
      checkFailure = err;
    },
  );
  let writeFailure: unknown;
  const writeSettled = writing.then(
    () => undefined,
    (err: unknown) => {
      writeFailure = err;
    },
  );
  const onAbort = (): void => {
    plain.destroy(abortError(where, signal?.reason));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of plain as AsyncIterable<Buffer>) {
      diffHash.update(chunk);
      if (!checkDone && !check.write(chunk)) await Promise.race([once(check, 'drain'), checkSettled]);
      if (checkFailure !== undefined) throw checkFailure;
      if (!gzip.write(chunk)) await Promise.race([once(gzip, 'drain'), writeSettled]);
      if (writeFailure !== undefined) throw writeFailure;
    }
    check.end();
    gzip.end();
    const [entries] = await Promise.all([checking, writing]);
    return { path, digest: `sha256:${blobHash.digest('hex')}`, size: blobSize, diffId: `sha256:${diffHash.digest('hex')}`, entries };
  } catch (err) {
    check.destroy();
    gzip.destroy();
    await Promise.all([checkSettled, writeSettled]);
    if (signal?.aborted) throw abortError(where, signal.reason);
    throw wrapLayerError(err, where);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (!plain.destroyed) plain.destroy();
  }
}

function wrapLayerError(err: unknown, where: string): unknown {
  if (err instanceof BerthError) return err;
  return new BerthError('InvalidArgument', `${where}: cannot read the tarball: ${(err as Error).message}`, { cause: err });
}
