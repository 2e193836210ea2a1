// Turns stored layer blobs into committed snapshots, checking each layer's uncompressed
// digest against the config's diff_ids. Pull uses it while downloading; images that arrive
// by load or import are unpacked the first time a container needs them, as containerd does.
import type { Readable } from 'node:stream';
import { BerthError } from '../errors.js';
import type { ImageContext } from './context.js';
import { runLimited } from './concurrency.js';
import type { Descriptor, Digest } from './types.js';
import { unpackLayer } from './unpack/unpack-layer.js';

export interface LayerUnpack {
  layer: Descriptor;
  diffId: Digest;
  chainId: Digest;
  parent: Digest | undefined;
  /** Where the layer comes from, for messages: the image name. */
  where: string;
  signal?: AbortSignal;
  /** Resolves when the parent is committed (a layer may be unpacked before its parent). */
  parentCommitted?: Promise<void>;
}

/** Unpacks one layer stream into the snapshot `chainId`; nothing is committed on failure. */
export async function unpackIntoSnapshot(ctx: ImageContext, job: LayerUnpack, stream: Readable): Promise<void> {
  const writer = await ctx.snapshots.prepareLayer(job.chainId, job.parent);
  try {
    const { diffId } = await unpackLayer(stream, {
      dir: writer.dir,
      format: ctx.snapshots.layerFormat,
      mediaType: job.layer.mediaType,
      signal: job.signal,
      where: `layer ${job.layer.digest} of ${job.where}`,
    });
    if (diffId !== job.diffId) {
      throw new BerthError(
        'InvalidArgument',
        `layer ${job.layer.digest} of ${job.where}: its uncompressed content is ${diffId} but the image config says ${job.diffId}`,
        { hint: 'the image is corrupt; pull or load it again from a good source' },
      );
    }
    await job.parentCommitted;
    await writer.commit();
  } catch (err) {
    stream.destroy();
    await writer.abort().catch(() => {});
    throw err;
  }
}

export interface StoredImageLayers {
  layers: Descriptor[];
  diffIds: Digest[];
  chainIds: Digest[];
  where: string;
  signal?: AbortSignal;
}

/**
 * Makes sure every layer of an image is a committed snapshot. Overlay layers are independent
 * directories and unpack concurrently; the copying snapshotter needs each parent first.
 */
export async function ensureUnpacked(ctx: ImageContext, image: StoredImageLayers): Promise<void> {
  const missing: number[] = [];
  for (let i = 0; i < image.layers.length; i++) {
    if (!(await ctx.snapshots.hasLayer(image.chainIds[i]!))) missing.push(i);
  }
  for (const i of missing) {
    if (!(await ctx.content.has(image.layers[i]!.digest))) {
      throw new BerthError('NotFound', `layer ${image.layers[i]!.digest} of ${image.where} is neither unpacked nor stored`, {
        hint: 'pull the image again',
      });
    }
  }
  const order = new CommitOrder(image.layers.length, missing);
  const one = (i: number, signal?: AbortSignal): Promise<void> =>
    order.track(
      i,
      unpackIntoSnapshot(
        ctx,
        {
          layer: image.layers[i]!,
          diffId: image.diffIds[i]!,
          chainId: image.chainIds[i]!,
          parent: i === 0 ? undefined : image.chainIds[i - 1],
          where: image.where,
          signal,
          parentCommitted: order.parentCommitted(i),
        },
        ctx.content.read(image.layers[i]!.digest),
      ),
    );
  if (!ctx.snapshots.layerStartsFromParent) {
    await runLimited(missing, 2, image.signal ?? new AbortController().signal, one);
  } else {
    for (const i of missing) await one(i, image.signal);
  }
}

/**
 * Layers of one image that unpack concurrently still commit parent first: a committed
 * snapshot always has its whole chain below it. Layers not in `pending` count as committed.
 */
export class CommitOrder {
  private readonly committed: Array<Promise<void>>;
  private readonly settle: Array<{ resolve(): void; reject(err: unknown): void }> = [];

  constructor(count: number, pending: readonly number[]) {
    this.committed = Array.from({ length: count }, (_, i) => {
      if (!pending.includes(i)) return Promise.resolve();
      const promise = new Promise<void>((resolve, reject) => (this.settle[i] = { resolve, reject }));
      promise.catch(() => {}); // a failed layer fails its own job; its children just stop waiting
      return promise;
    });
  }

  parentCommitted(i: number): Promise<void> {
    return i === 0 ? Promise.resolve() : this.committed[i - 1]!;
  }

  /** Settles layer i's commit promise with the outcome of its unpack job. */
  async track(i: number, job: Promise<void>): Promise<void> {
    try {
      await job;
      this.settle[i]?.resolve();
    } catch (err) {
      this.settle[i]?.reject(err);
      throw err;
    }
  }
}
