// Pull: resolve a reference to one platform's manifest, download its blobs into the content
// store and unpack its layers into snapshots. Layers download several at a time and, with
// the overlay snapshotter, unpack while they download (each layer is its own directory);
// the copying snapshotter needs the parent first, so it unpacks in order after the downloads.
import { Transform, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError, isBerthError } from '../errors.js';
import { chainIds } from './digest.js';
import { parseImageConfig, parseIndex, parseManifest } from './image-config.js';
import { formatReference, parseReference, type Reference } from './reference.js';
import { hostPlatform, selectManifest } from './registry/platform.js';
import type { ImageContext } from './context.js';
import type { Lease } from './store/leases.js';
import { isIndexMediaType, type Descriptor, type Digest, type ImageConfig, type ImageManifest, type Platform } from './types.js';
import { CommitOrder, unpackIntoSnapshot, type LayerUnpack } from './unpack-image.js';
import { shortId, type ProgressEvent } from './progress.js';
import { runLimited } from './concurrency.js';

export interface PullOptions {
  platform?: Platform;
  signal?: AbortSignal;
  onProgress?(event: ProgressEvent): void;
  /** Layers downloaded at once (Docker's default is 3). */
  concurrency?: number;
}

export interface PullResult {
  /** The record name: the full reference (tag, or digest when pulled by digest). */
  name: string;
  /** What the reference resolved to (an index or a manifest). */
  target: Descriptor;
  manifest: Descriptor;
  config: Descriptor;
  chainIds: Digest[];
  /** False when every layer and the record were already there. */
  changed: boolean;
}

export async function pullImage(ctx: ImageContext, input: string | Reference, opts: PullOptions = {}): Promise<PullResult> {
  const ref = typeof input === 'string' ? parseReference(input) : input;
  const name = formatReference(ref);
  const emit = opts.onProgress ?? (() => {});
  const signal = opts.signal ?? new AbortController().signal;
  emit({ status: `Pulling from ${ref.path}`, id: ref.digest ?? ref.tag });

  const lease = await ctx.leases.create();
  try {
    const top = await ctx.registry.getManifest(ref, { signal });
    // Every resource joins the lease before it is written, so no gc can slip in between.
    lease.add({ type: 'content', id: top.descriptor.digest });
    await ctx.content.put({ digest: top.descriptor.digest, size: top.bytes.length }, top.bytes);
    const manifestDesc = await resolvePlatformManifest(ctx, { ref, top, lease, signal, platform: opts.platform ?? hostPlatform() });
    const manifest = parseManifest(await ctx.content.readBuffer(manifestDesc.digest), `manifest ${manifestDesc.digest} of ${name}`);

    lease.add({ type: 'content', id: manifest.config.digest });
    await ctx.content.ingest(manifest.config, (offset, s) => openBlob(ctx, ref, manifest.config, offset, s), { signal });
    const config = parseImageConfig(await ctx.content.readBuffer(manifest.config.digest), `config ${manifest.config.digest} of ${name}`);
    const chain = layerChain(manifest, config, name);
    for (const id of chain) lease.add({ type: 'snapshot', id });

    const changedLayers = await fetchLayers(ctx, { ref, manifest, chain, diffIds: config.rootfs.diff_ids, signal, emit, concurrency: opts.concurrency ?? 3, lease });

    const previous = await ctx.images.get(name);
    const changed = changedLayers || previous?.target.digest !== top.descriptor.digest;
    await ctx.images.put({ name, target: top.descriptor, labels: previous?.labels });
    emit({ status: `Digest: ${top.descriptor.digest}` });
    emit({ status: changed ? `Status: Downloaded newer image for ${name}` : `Status: Image is up to date for ${name}` });
    return { name, target: top.descriptor, manifest: manifestDesc, config: manifest.config, chainIds: chain, changed };
  } finally {
    await lease.release();
  }
}

interface ResolveJob {
  ref: Reference;
  top: { descriptor: Descriptor; bytes: Buffer };
  platform: Platform;
  lease: Lease;
  signal: AbortSignal;
}

async function resolvePlatformManifest(ctx: ImageContext, job: ResolveJob): Promise<Descriptor> {
  const { ref, top } = job;
  if (!isIndexMediaType(top.descriptor.mediaType)) return top.descriptor;
  const index = parseIndex(top.bytes, `index ${top.descriptor.digest} of ${formatReference(ref)}`);
  const chosen = selectManifest(index, job.platform, formatReference(ref));
  job.lease.add({ type: 'content', id: chosen.digest });
  const child = await ctx.registry.getManifest({ ...ref, digest: chosen.digest }, { signal: job.signal });
  await ctx.content.put({ digest: chosen.digest, size: child.bytes.length }, child.bytes);
  return { ...chosen, mediaType: child.descriptor.mediaType || chosen.mediaType };
}

/** The layers' chain IDs, after checking that the manifest and the config agree. */
function layerChain(manifest: ImageManifest, config: ImageConfig, name: string): Digest[] {
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw new BerthError(
      'InvalidArgument',
      `image ${name}: the manifest lists ${manifest.layers.length} layers but the config has ${diffIds.length} diff_ids`,
    );
  }
  return chainIds(diffIds);
}

async function openBlob(ctx: ImageContext, ref: Reference, desc: Descriptor, offset: number, signal: AbortSignal): Promise<Readable> {
  const { stream, offset: honoured } = await ctx.registry.fetchBlob(ref, desc, { offset, signal });
  if (honoured === offset) return stream;
  if (honoured > offset) {
    stream.destroy();
    throw new BerthError('Unavailable', `blob ${desc.digest}: the registry answered from byte ${honoured} when asked for byte ${offset}`);
  }
  // The registry ignored Range: skip what the store already has so the stream starts at offset.
  return skipBytes(stream, offset - honoured);
}

interface LayerJob {
  ref: Reference;
  manifest: ImageManifest;
  chain: Digest[];
  diffIds: Digest[];
  signal: AbortSignal;
  emit(event: ProgressEvent): void;
  concurrency: number;
  lease: Lease;
  order?: CommitOrder;
}

/** Downloads and unpacks every layer that is missing; true when anything was fetched. */
async function fetchLayers(ctx: ImageContext, job: LayerJob): Promise<boolean> {
  const { manifest, chain, emit } = job;
  const needed: number[] = [];
  for (let i = 0; i < manifest.layers.length; i++) {
    const layer = manifest.layers[i]!;
    job.lease.add({ type: 'content', id: layer.digest });
    if ((await ctx.snapshots.hasLayer(chain[i]!)) && (await ctx.content.has(layer.digest))) {
      emit({ id: shortId(layer.digest), status: 'Already exists' });
    } else {
      emit({ id: shortId(layer.digest), status: 'Pulling fs layer' });
      needed.push(i);
    }
  }
  if (needed.length === 0) return false;
  for (const i of needed.slice(job.concurrency)) emit({ id: shortId(manifest.layers[i]!.digest), status: 'Waiting' });

  const streaming = !ctx.snapshots.layerStartsFromParent;
  const order = new CommitOrder(manifest.layers.length, needed);
  await runLimited(needed, job.concurrency, job.signal, (i, signal) => order.track(i, downloadLayer(ctx, { ...job, signal, order }, i, streaming)));
  if (!streaming) {
    for (const i of needed) await unpackStoredLayer(ctx, job, i);
  }
  return true;
}

const DOWNLOAD_ATTEMPTS = 5;

/**
 * A connection that breaks mid-layer is retried, resuming from the kept partial: the registry
 * client retries only before the first byte. Unpacking starts again from byte 0 of the
 * replayed partial into a fresh layer directory.
 */
async function downloadLayer(ctx: ImageContext, job: LayerJob, i: number, unpackWhileDownloading: boolean): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await downloadLayerOnce(ctx, job, i, unpackWhileDownloading);
    } catch (err) {
      if (!isBerthError(err, 'Unavailable') || job.signal.aborted || attempt === DOWNLOAD_ATTEMPTS) throw err;
      const seconds = 2 ** (attempt - 1);
      job.emit({ id: shortId(job.manifest.layers[i]!.digest), status: `Retrying in ${seconds} second${seconds === 1 ? '' : 's'}` });
      await sleep(seconds * 1000, undefined, { signal: job.signal }).catch(() => {});
    }
  }
}

async function downloadLayerOnce(ctx: ImageContext, job: LayerJob, i: number, unpackWhileDownloading: boolean): Promise<void> {
  const layer = job.manifest.layers[i]!;
  const id = shortId(layer.digest);
  const chainId = job.chain[i]!;
  const needsUnpack = unpackWhileDownloading && !(await ctx.snapshots.hasLayer(chainId));
  let lastReport = 0;
  await ctx.content.ingest(layer, (offset, s) => openBlob(ctx, job.ref, layer, offset, s), {
    signal: job.signal,
    onProgress(done, total) {
      // Progress for every chunk would flood a Docker client; a few per second is plenty.
      const now = Date.now();
      if (done === total || now - lastReport > 100) {
        lastReport = now;
        job.emit({ id, status: 'Downloading', current: done, total });
      }
    },
    consume: needsUnpack ? (stream) => unpackInto(ctx, job, i, stream) : undefined,
  });
  job.emit({ id, status: 'Download complete' });
  if (needsUnpack) job.emit({ id, status: 'Pull complete' });
}

async function unpackStoredLayer(ctx: ImageContext, job: LayerJob, i: number): Promise<void> {
  const layer = job.manifest.layers[i]!;
  if (await ctx.snapshots.hasLayer(job.chain[i]!)) return;
  await unpackInto(ctx, job, i, ctx.content.read(layer.digest));
  job.emit({ id: shortId(layer.digest), status: 'Pull complete' });
}

function unpackInto(ctx: ImageContext, job: LayerJob, i: number, stream: Readable): Promise<void> {
  const layer = job.manifest.layers[i]!;
  job.emit({ id: shortId(layer.digest), status: 'Extracting' });
  const unpack: LayerUnpack = {
    layer,
    diffId: job.diffIds[i]!,
    chainId: job.chain[i]!,
    parent: i === 0 ? undefined : job.chain[i - 1],
    where: formatReference(job.ref),
    signal: job.signal,
    parentCommitted: job.order?.parentCommitted(i),
  };
  return unpackIntoSnapshot(ctx, unpack, stream);
}

function skipBytes(stream: Readable, count: number): Readable {
  let left = count;
  const skipper = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (left >= chunk.length) {
        left -= chunk.length;
        done();
        return;
      }
      const rest = chunk.subarray(left);
      left = 0;
      done(null, rest);
    },
  });
  stream.on('error', (err) => skipper.destroy(err));
  return stream.pipe(skipper);
}
