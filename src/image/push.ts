// Push: upload an image's blobs (layers and config first, manifests last, so a registry
// never holds a manifest whose blobs it lacks) and tag it.
import { BerthError } from '../errors.js';
import { parseIndex, parseManifest } from './image-config.js';
import type { ImageContext } from './context.js';
import { formatReference, parseReference, type Reference } from './reference.js';
import { hostPlatform, selectManifest } from './registry/platform.js';
import { runLimited } from './concurrency.js';
import { shortId, type ProgressEvent } from './progress.js';
import { isIndexMediaType, type Descriptor } from './types.js';

export interface PushOptions {
  signal?: AbortSignal;
  onProgress?(event: ProgressEvent): void;
  /** Another repository on the same registry that may already hold the blobs. */
  mountFrom?: Reference;
  concurrency?: number;
}

export interface PushResult {
  name: string;
  digest: string;
  size: number;
}

/** Pushes the local image `source` (a name in the image store) to `target` (default: the same name). */
export async function pushImage(ctx: ImageContext, source: string, opts: PushOptions & { target?: string } = {}): Promise<PushResult> {
  const sourceRef = parseReference(source);
  const record = await ctx.images.get(formatReference(sourceRef));
  if (!record) throw new BerthError('NotFound', `image ${source} not found`, { hint: 'pull or load it first; `berth image ls` lists the images' });
  const targetRef = opts.target ? parseReference(opts.target) : sourceRef;
  const emit = opts.onProgress ?? (() => {});
  const signal = opts.signal ?? new AbortController().signal;
  emit({ status: `The push refers to repository [${targetRef.domain}/${targetRef.path}]` });

  let top = record.target;
  if (isIndexMediaType(top.mediaType)) {
    const index = parseIndex(await ctx.content.readBuffer(top.digest), `index ${top.digest} of ${source}`);
    const missing: Descriptor[] = [];
    for (const child of index.manifests) if (!(await ctx.content.has(child.digest))) missing.push(child);
    if (missing.length === 0) {
      for (const child of index.manifests) await pushManifestTree(ctx, targetRef, child, { ...opts, signal, emit });
    } else {
      // Only the platforms that were pulled are here: push this host's manifest alone, as Docker does.
      top = selectManifest({ ...index, manifests: index.manifests.filter((m) => !missing.includes(m)) }, hostPlatform(), source);
      emit({ status: `pushing only ${top.platform?.os ?? ''}/${top.platform?.architecture ?? ''}: ${missing.length} platforms of the index are not stored locally` });
    }
  }
  if (!isIndexMediaType(top.mediaType)) await pushManifestTree(ctx, targetRef, top, { ...opts, signal, emit, tagOnly: true });
  const bytes = await ctx.content.readBuffer(top.digest);
  const tagRef: Reference = { ...targetRef, digest: undefined, tag: targetRef.tag ?? 'latest' };
  const digest = targetRef.digest ?? (await ctx.registry.putManifest(tagRef, top.mediaType, bytes, { signal }));
  emit({ status: `${tagRef.tag}: digest: ${digest} size: ${bytes.length}` });
  return { name: formatReference(targetRef), digest, size: bytes.length };
}

interface TreeOptions extends PushOptions {
  signal: AbortSignal;
  emit(event: ProgressEvent): void;
  /** The manifest itself is put by the caller under the tag. */
  tagOnly?: boolean;
}

async function pushManifestTree(ctx: ImageContext, ref: Reference, desc: Descriptor, opts: TreeOptions): Promise<void> {
  const bytes = await ctx.content.readBuffer(desc.digest);
  const manifest = parseManifest(bytes, `manifest ${desc.digest}`);
  const blobs = [...manifest.layers, manifest.config];
  for (const blob of blobs) {
    if (!(await ctx.content.has(blob.digest))) {
      throw new BerthError('NotFound', `blob ${blob.digest} of manifest ${desc.digest} is not in the store`, {
        hint: 'pull the image again to fetch its missing layers',
      });
    }
  }
  await runLimited(blobs, opts.concurrency ?? 3, opts.signal, async (blob, signal) => {
    const id = shortId(blob.digest);
    opts.emit({ id, status: 'Preparing' });
    const outcome = await ctx.registry.pushBlob(ref, blob, () => ctx.content.read(blob.digest), {
      mountFrom: opts.mountFrom,
      signal,
      onProgress: (done, total) => opts.emit({ id, status: 'Pushing', current: done, total }),
    });
    opts.emit({ id, status: outcome === 'uploaded' ? 'Pushed' : outcome === 'mounted' ? `Mounted from ${opts.mountFrom?.path}` : 'Layer already exists' });
  });
  if (!opts.tagOnly) await ctx.registry.putManifest({ ...ref, tag: undefined, digest: desc.digest }, desc.mediaType, bytes, { signal: opts.signal });
}
