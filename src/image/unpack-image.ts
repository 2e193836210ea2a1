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
    });
    if (diffId !== job.diffId) {
      throw new BerthError(
        'InvalidArgument',
        `layer ${job.layer.digest} of ${job.where}: its uncompressed content is ${diffId} but the image config says ${job.diffId}`,
        { hint: 'the image is corrupt; pull or load it again from a good source' },
      );
    }
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
  const one = (i: number, signal?: AbortSignal): Promise<void> =>
    unpackIntoSnapshot(
      ctx,
      {
        layer: image.layers[i]!,
        diffId: image.diffIds[i]!,
        chainId: image.chainIds[i]!,
        parent: i === 0 ? undefined : image.chainIds[i - 1],
        where: image.where,
        signal,
      },
      ctx.content.read(image.layers[i]!.digest),
    );
  if (ctx.snapshots.layerFormat === 'overlay') {
    await runLimited(missing, 2, image.signal ?? new AbortController().signal, one);
  } else {
    for (const i of missing) await one(i, image.signal);
  }
}
