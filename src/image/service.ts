// The image layer's one entry point for the engine: it owns the stores under one root and
// offers every image operation (pull, push, list, inspect, tag, remove, prune, load, save,
// import, build from a directory) plus a container's rootfs (prepare / release).
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { BerthError } from '../errors.js';
import { loadArchive } from './archive/docker-archive.js';
import type { LoadResult } from './archive/oci-layout.js';
import { saveDockerArchive } from './archive/docker-archive.js';
import { imageFromDirectory, type FromDirectoryOptions } from './archive/from-directory.js';
import { importRootfsTarball, type CreatedImage, type ImportRootfsOptions } from './archive/import-rootfs.js';
import { saveOciLayout } from './archive/oci-layout.js';
import type { ImageContext } from './context.js';
import { chainIds } from './digest.js';
import { parseImageConfig, parseIndex, parseManifest, runtimeView, type RuntimeView } from './image-config.js';
import { pullImage, type PullOptions, type PullResult } from './pull.js';
import { pushImage, type PushOptions, type PushResult } from './push.js';
import { familiarName, formatReference, parseReference } from './reference.js';
import { RegistryClient } from './registry/client.js';
import { loadDockerConfigCredentials, type Credential, type CredentialStore } from './registry/credentials.js';
import { canonicalDomain, type RegistryHostConfig } from './registry/hosts.js';
import { hostPlatform, selectManifest } from './registry/platform.js';
import { createSnapshotter, type Mount, type SnapshotterKind } from './snapshots/snapshotter.js';
import { ContentStore } from './store/content-store.js';
import { collectGarbage, type GcResult } from './store/gc.js';
import { ImageStore, type ImageRecord } from './store/image-store.js';
import { LeaseStore } from './store/leases.js';
import { isIndexMediaType, type Descriptor, type Digest, type ImageConfig, type ImageManifest, type Platform } from './types.js';
import { ensureUnpacked } from './unpack-image.js';

export interface ImageServiceOptions {
  /** Everything lives below it: content/, metadata/, snapshots/. Default /var/lib/berth/image. */
  root?: string;
  snapshotter?: SnapshotterKind | 'auto';
  registries?: RegistryHostConfig;
  /** Default: the docker config.json of the user ($DOCKER_CONFIG or ~/.docker). */
  credentials?: CredentialStore;
}

/** One image as the engine sees it: the record, and the platform manifest and config it resolves to. */
export interface ResolvedImage {
  /** Docker's image ID: the config digest. */
  id: Digest;
  names: string[];
  target: Descriptor;
  manifestDigest: Digest;
  manifest: ImageManifest;
  config: ImageConfig;
  chainIds: Digest[];
  /** Compressed size of the layers plus config, as registries count it. */
  size: number;
  view: RuntimeView;
}

export interface ImageSummary {
  id: Digest;
  names: string[];
  /** Docker's RepoDigests: repository@digest of the pulled target. */
  repoDigests: string[];
  created?: string;
  size: number;
}

export const DEFAULT_IMAGE_ROOT = '/var/lib/berth/image';

/** A credential for one pull or push (Docker's X-Registry-Auth); it wins over config.json for that registry. */
export interface CallCredential {
  credential?: Credential;
}

export class ImageService {
  private readonly unpacking = new Map<string, Promise<unknown>>();
  readonly ctx: ImageContext;
  readonly root: string;
  /** Kept to build a client with a per-call credential (X-Registry-Auth). */
  private readonly registryOptions: { hosts?: RegistryHostConfig; credentials: CredentialStore };

  private constructor(root: string, ctx: ImageContext, registryOptions: { hosts?: RegistryHostConfig; credentials: CredentialStore }) {
    this.root = root;
    this.ctx = ctx;
    this.registryOptions = registryOptions;
  }

  static async open(opts: ImageServiceOptions = {}): Promise<ImageService> {
    const root = resolve(opts.root ?? DEFAULT_IMAGE_ROOT);
    mkdirSync(root, { recursive: true, mode: 0o700 });
    const credentials = opts.credentials ?? (await loadDockerConfigCredentials());
    const ctx: ImageContext = {
      content: new ContentStore(join(root, 'content')),
      images: new ImageStore(join(root, 'metadata')),
      leases: new LeaseStore(join(root, 'metadata')),
      snapshots: createSnapshotter(join(root, 'snapshots'), opts.snapshotter ?? 'auto'),
      registry: new RegistryClient({ hosts: opts.registries, credentials }),
    };
    return new ImageService(root, ctx, { hosts: opts.registries, credentials });
  }

  close(): void {
    this.ctx.registry.close();
  }

  pull(reference: string, opts: PullOptions & CallCredential = {}): Promise<PullResult> {
    const { credential, ...rest } = opts;
    return this.withCredential(reference, credential, (ctx) => pullImage(ctx, reference, rest));
  }

  push(name: string, opts: PushOptions & { target?: string } & CallCredential = {}): Promise<PushResult> {
    const { credential, ...rest } = opts;
    return this.withCredential(opts.target ?? name, credential, (ctx) => pushImage(ctx, name, rest));
  }

  /**
   * Finds an image by name (`busybox`, `host:5000/a:tag`, `name@digest`), by ID or by a
   * unique ID prefix of at least 4 hex digits, as the docker CLI does.
   */
  async resolve(nameOrId: string, platform: Platform = hostPlatform()): Promise<ResolvedImage> {
    const records = await this.findRecords(nameOrId);
    const target = records[0]!.target;
    const all = await this.ctx.images.list();
    const resolved = await this.resolveTarget(target, platform, nameOrId);
    resolved.names = all.filter((r) => r.target.digest === target.digest).map((r) => r.name).sort();
    return resolved;
  }

  async list(): Promise<ImageSummary[]> {
    const byId = new Map<Digest, ImageSummary>();
    for (const record of await this.ctx.images.list()) {
      let image: ResolvedImage;
      try {
        image = await this.resolveTarget(record.target, hostPlatform(), record.name);
      } catch {
        continue; // a record whose content went missing is shown by inspect with its error
      }
      const summary = byId.get(image.id) ?? { id: image.id, names: [], repoDigests: [], created: image.config.created, size: image.size };
      summary.names.push(record.name);
      const ref = parseReference(record.name);
      const repoDigest = `${ref.domain}/${ref.path}@${record.target.digest}`;
      if (!summary.repoDigests.includes(repoDigest)) summary.repoDigests.push(repoDigest);
      byId.set(image.id, summary);
    }
    return [...byId.values()];
  }

  /** Adds the name `target` for the image `source`. */
  async tag(source: string, target: string): Promise<ImageRecord> {
    const [record] = await this.findRecords(source);
    const name = formatReference(parseReference(target));
    return this.ctx.images.put({ name, target: record!.target, labels: record!.labels });
  }

  /**
   * Removes a name, or with an ID every name of that image, then collects what no image
   * references any more. Returns the names removed and what gc reclaimed.
   */
  async remove(nameOrId: string): Promise<{ untagged: string[]; gc: GcResult }> {
    const untagged: string[] = [];
    for (const record of await this.findRecords(nameOrId)) {
      if (await this.ctx.images.delete(record.name)) untagged.push(record.name);
    }
    return { untagged, gc: await this.prune() };
  }

  /** Garbage collection: blobs and snapshots no image, container or lease references. */
  prune(opts: { dryRun?: boolean } = {}): Promise<GcResult> {
    return collectGarbage({ ...this.ctx, dryRun: opts.dryRun });
  }

  /** Loads a `docker save` archive, an oci-archive tar or an OCI layout directory. */
  load(source: Readable | string, opts: { name?: string; signal?: AbortSignal } = {}): Promise<LoadResult> {
    return loadArchive(source, this.ctx, opts);
  }

  save(names: string[], out: Writable, opts: { format?: 'docker' | 'oci'; signal?: AbortSignal } = {}): Promise<void> {
    const full = names.map((n) => formatReference(parseReference(n)));
    if (opts.format === 'oci') return saveOciLayout(full, this.ctx, { tar: out }, { signal: opts.signal });
    return saveDockerArchive(full, this.ctx, out, { signal: opts.signal });
  }

  import(stream: Readable, opts: ImportRootfsOptions = {}): Promise<CreatedImage> {
    return importRootfsTarball(stream, this.ctx, opts);
  }

  fromDirectory(dir: string, opts: FromDirectoryOptions): Promise<CreatedImage> {
    return imageFromDirectory(dir, this.ctx, opts);
  }

  /**
   * A container's root filesystem: unpacks the image's layers if that has not happened yet
   * (images that came by load or import) and returns the mounts of a new writable snapshot.
   */
  async prepareRootfs(key: string, image: string, opts: { platform?: Platform; signal?: AbortSignal } = {}): Promise<{ image: ResolvedImage; mounts: Mount[] }> {
    const resolved = await this.resolve(image, opts.platform);
    const lease = await this.ctx.leases.create();
    try {
      for (const id of resolved.chainIds) lease.add({ type: 'snapshot', id });
      // Containers created at once from an image not unpacked yet share one unpack.
      const top = resolved.chainIds.at(-1) ?? resolved.id;
      let unpacking = this.unpacking.get(top);
      if (!unpacking) {
        unpacking = ensureUnpacked(this.ctx, {
          layers: resolved.manifest.layers,
          diffIds: resolved.config.rootfs.diff_ids,
          chainIds: resolved.chainIds,
          where: resolved.names[0] ?? resolved.id,
          signal: opts.signal,
        }).finally(() => this.unpacking.delete(top));
        this.unpacking.set(top, unpacking);
      }
      await unpacking;
      const mounts = await this.ctx.snapshots.prepare(key, resolved.chainIds.at(-1));
      return { image: resolved, mounts };
    } finally {
      await lease.release();
    }
  }

  releaseRootfs(key: string): Promise<void> {
    return this.ctx.snapshots.remove(key);
  }

  /**
   * Runs `work` with a registry client that answers `reference`'s registry with `credential`
   * (a client of its own, so that its tokens never serve another caller).
   */
  private async withCredential<T>(reference: string, credential: Credential | undefined, work: (ctx: ImageContext) => Promise<T>): Promise<T> {
    if (credential === undefined) return work(this.ctx);
    const domain = canonicalDomain(parseReference(reference).domain);
    const fallback = this.registryOptions.credentials;
    const registry = new RegistryClient({
      hosts: this.registryOptions.hosts,
      credentials: { get: (d: string) => (canonicalDomain(d) === domain ? credential : fallback.get(d)) },
    });
    try {
      return await work({ ...this.ctx, registry });
    } finally {
      registry.close();
    }
  }

  /** By name first, as Docker does: `abcd` is the image docker.io/library/abcd before it is an ID prefix. */
  private async findRecords(nameOrId: string): Promise<ImageRecord[]> {
    let name: string | undefined;
    let parseError: unknown;
    try {
      name = formatReference(parseReference(nameOrId));
    } catch (err) {
      parseError = err;
    }
    const record = name === undefined ? undefined : await this.ctx.images.get(name);
    if (record) return [record];
    if (looksLikeId(nameOrId)) {
      const hex = nameOrId.replace(/^sha256:/, '');
      const matches: ImageRecord[] = [];
      const ids = new Set<Digest>();
      for (const candidate of await this.ctx.images.list()) {
        const id = await this.configDigestOf(candidate.target).catch(() => undefined);
        if (id?.slice('sha256:'.length).startsWith(hex)) {
          matches.push(candidate);
          ids.add(id);
        }
      }
      if (ids.size > 1) throw new BerthError('Conflict', `image ID prefix "${nameOrId}" is ambiguous: it matches ${ids.size} images`);
      if (matches.length > 0) return matches;
    }
    if (name === undefined) throw parseError;
    throw new BerthError('NotFound', `image ${familiarName(parseReference(nameOrId))} not found`, { hint: 'pull, load or import it first' });
  }

  private async configDigestOf(target: Descriptor): Promise<Digest> {
    return (await this.resolveTarget(target, hostPlatform(), target.digest)).id;
  }

  private async resolveTarget(target: Descriptor, platform: Platform, where: string): Promise<ResolvedImage> {
    let manifestDesc = target;
    if (isIndexMediaType(target.mediaType)) {
      const index = parseIndex(await this.readBlob(target.digest, where), `index ${target.digest} of ${where}`);
      const present: Descriptor[] = [];
      for (const child of index.manifests) if (await this.ctx.content.has(child.digest)) present.push(child);
      manifestDesc = selectManifest({ ...index, manifests: present }, platform, where);
    }
    const manifest = parseManifest(await this.readBlob(manifestDesc.digest, where), `manifest ${manifestDesc.digest} of ${where}`);
    const config = parseImageConfig(await this.readBlob(manifest.config.digest, where), `config ${manifest.config.digest} of ${where}`);
    const size = manifest.config.size + manifest.layers.reduce((sum, l) => sum + l.size, 0);
    return {
      id: manifest.config.digest,
      names: [],
      target,
      manifestDigest: manifestDesc.digest,
      manifest,
      config,
      chainIds: chainIds(config.rootfs.diff_ids),
      size,
      view: runtimeView(config),
    };
  }

  private async readBlob(digest: Digest, where: string): Promise<Buffer> {
    if (!(await this.ctx.content.has(digest))) {
      throw new BerthError('NotFound', `${where}: blob ${digest} is missing from the content store`, { hint: 'pull the image again' });
    }
    return this.ctx.content.readBuffer(digest);
  }
}

function looksLikeId(value: string): boolean {
  return /^(sha256:)?[a-f0-9]{4,64}$/.test(value);
}
