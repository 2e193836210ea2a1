// The image half of the Engine: ImageService's operations in the Docker Engine API's shapes
// (ImageSummary, ImageInspect, history, delete responses, JSONMessage progress streams) and
// Docker's rules on top (removal conflicts with containers, dangling images, filters).
//
// Docker keeps an image whose last tag went away (a tag moved by pull, tag or load; an
// untagged import or load; a forced removal while a container uses it) as a "dangling"
// image. The image store only knows named records and gc sweeps everything else, so such
// an image is held by a record under a reserved name (DANGLING_PREFIX + digest), the way
// Docker's containerd store keeps `moby-dangling@…` records. It never shows as a name.
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { BerthError, isBerthError } from '../errors.js';
import type { ImageService } from '../image/service.js';
import { loadArchive } from '../image/archive/docker-archive.js';
import type { ProgressEvent } from '../image/progress.js';
import { shortId } from '../image/progress.js';
import { familiarName, formatReference, parseReference, type Reference } from '../image/reference.js';
import { chainIds as computeChainIds, sha256Digest } from '../image/digest.js';
import { parseImageConfig, parseIndex, parseManifest, detectManifestKind } from '../image/image-config.js';
import { formatPlatform, hostPlatform, normalizePlatform, parsePlatform, selectManifest } from '../image/registry/platform.js';
import { credentialStoreFrom, type Credential } from '../image/registry/credentials.js';
import { RegistryClient } from '../image/registry/client.js';
import { RegistryError } from '../image/registry/registry-error.js';
import { canonicalDomain, type RegistryHostConfig } from '../image/registry/hosts.js';
import { mediaTypes, stageGzipLayer } from '../image/archive/import-rootfs.js';
import type { ImageRecord } from '../image/store/image-store.js';
import { MediaType, isIndexMediaType, type ContainerConfig as OciContainerConfig, type Descriptor, type Digest, type ImageConfig, type ImageManifest, type Platform } from '../image/types.js';
import type {
  AuthConfig,
  ContainerConfig,
  ImageHistoryEntry,
  ImageInspect,
  ImageSummaryDocker,
  ProgressMessage,
  RegistryAuth,
} from './types.js';

/** The record name prefix that holds a dangling image (never shown as a name). */
export const DANGLING_PREFIX = 'berth.invalid/dangling@';

export interface ImageEvent {
  Type: 'image';
  Action: string;
  id: string;
  attributes?: Record<string, string>;
}

export interface EngineImagesOptions {
  events?: (e: ImageEvent) => void;
  /** Ids of the containers (any state) created from the image `imageId` (sha256:<config digest>). */
  containersUsing: (imageId: string) => string[];
  /** Those of containersUsing that run or are paused: Docker refuses to delete their image even when forced. Default: none. */
  runningContainersUsing?: (imageId: string) => string[];
  /** Mirrors and insecure registries, for the logins checked here (pulls use the service's). */
  registries?: RegistryHostConfig;
}

/** What `docker commit` adds on top of a container's image. */
export interface CommitImageOptions {
  /** The container's image (an ID or a name that resolves to it). */
  parent: string;
  /** The uncompressed layer tar; undefined when the container changed nothing (an empty layer, as Docker records it). */
  layer?: () => Readable;
  config: OciContainerConfig;
  /** `repo[:tag]` to tag the image with; without it the image is dangling. */
  name?: string;
  author?: string;
  comment?: string;
  /** The history entry's created_by (the container's command). */
  createdBy: string;
}

/** An image as the engine resolves it: the platform manifest and config a record leads to. */
export interface ImageDetails {
  /** Docker's image ID: sha256 of the config. */
  id: Digest;
  /** What the records point at (an index or a manifest). */
  target: Descriptor;
  manifestDigest: Digest;
  manifest: ImageManifest;
  config: ImageConfig;
  chainIds: Digest[];
  /** Layers plus config, compressed, as the registry counts them. */
  compressedSize: number;
  /** Docker's Size: the layers' uncompressed (tar) sizes. */
  size: number;
  /** Uncompressed size of each manifest layer, in order. */
  layerSizes: number[];
}

/** An image with the names that lead to it. */
export interface NamedImage extends ImageDetails {
  /** Full record names (`docker.io/library/busybox:latest`), dangling markers excluded, sorted. */
  names: string[];
  /** Every record (dangling markers included). */
  records: ImageRecord[];
}

/** What the container side gets from an image. */
export interface ContainerImage {
  id: Digest;
  /** The familiar name the caller used, normalised (`busybox:latest`), or the ID when given an ID. */
  name: string;
  /** The image's config in Docker's shape (Cmd, Entrypoint, Env, WorkingDir, User, …). */
  config: ContainerConfig;
  /** Something prepareRootfs resolves to this exact image: a record name. */
  ref: string;
  manifestDigest: Digest;
  chainIds: Digest[];
  platform: Platform;
  /** Full record names of the image. */
  names: string[];
}

type DeleteItem = { Untagged?: string; Deleted?: string };

export class EngineImages {
  readonly service: ImageService;
  private readonly emitEvent: (e: ImageEvent) => void;
  private readonly containersUsing: (imageId: string) => string[];
  private readonly runningContainersUsing: (imageId: string) => string[];
  /** Content is immutable: what a target digest resolves to never changes (per platform). */
  private readonly cache = new Map<string, ImageDetails>();
  private readonly layerSizes = new Map<Digest, number>();
  private readonly registries?: RegistryHostConfig;

  constructor(service: ImageService, opts: EngineImagesOptions) {
    this.service = service;
    this.registries = opts.registries;
    this.emitEvent = opts.events ?? (() => {});
    this.containersUsing = opts.containersUsing;
    this.runningContainersUsing = opts.runningContainersUsing ?? (() => []);
  }

  // --- pull / push ---

  async pullImage(opts: { fromImage: string; tag?: string; platform?: string; auth?: RegistryAuth; onProgress: (m: ProgressMessage) => void; signal?: AbortSignal }): Promise<void> {
    const ref = pullReference(opts.fromImage, opts.tag);
    const name = formatReference(ref);
    const platform = opts.platform ? parsePlatform(opts.platform) : undefined;
    const credential = credentialFromAuth(opts.auth);
    const previous = await this.service.ctx.images.get(name);
    const progress = new PullProgress(opts.onProgress, familiarName(ref));
    await this.service.pull(name, { platform, signal: opts.signal, credential, onProgress: (e) => progress.event(e) });
    await this.keepIfDangling(previous, name);
    this.emitEvent({ Type: 'image', Action: 'pull', id: familiarName(ref), attributes: { name: familiarName({ ...ref, tag: undefined, digest: undefined }) } });
  }

  async pushImage(opts: { name: string; tag?: string; auth?: RegistryAuth; onProgress: (m: ProgressMessage) => void; signal?: AbortSignal }): Promise<void> {
    let ref = parseUserReference(opts.name, 'push');
    if (opts.tag) {
      ref = { ...ref, tag: opts.tag, digest: undefined };
    } else if (!hasTagOrDigest(opts.name)) {
      // Docker pushes every local tag of the repository when no tag is given (`docker push -a`).
      const repo = formatReference({ domain: ref.domain, path: ref.path });
      const tagged = (await this.service.ctx.images.list()).map((r) => r.name).filter((n) => n.startsWith(`${repo}:`) && !n.includes('@'));
      if (tagged.length === 0) throw new BerthError('NotFound', `An image does not exist locally with the tag: ${familiarName({ domain: ref.domain, path: ref.path })}`);
      for (const name of tagged) await this.pushOne(parseReference(name), opts);
      return;
    }
    await this.pushOne(ref, opts);
  }

  private async pushOne(ref: Reference, opts: { auth?: RegistryAuth; onProgress: (m: ProgressMessage) => void; signal?: AbortSignal }): Promise<void> {
    const name = formatReference(ref);
    const record = await this.service.ctx.images.get(name);
    if (!record) {
      throw new BerthError('NotFound', `An image does not exist locally with the tag: ${familiarName({ ...ref, digest: undefined })}`, {
        hint: 'tag the image with this name first (docker tag)',
      });
    }
    // Docker's progress lists the layers only, not the config blob.
    const details = await this.details(record.target).catch(() => undefined);
    const hidden = details ? shortId(details.manifest.config.digest) : undefined;
    const progress = new PushProgress(opts.onProgress, hidden);
    const result = await this.service.push(name, { signal: opts.signal, credential: credentialFromAuth(opts.auth), onProgress: (e) => progress.event(e) });
    opts.onProgress({ progressDetail: {}, aux: { Tag: ref.tag ?? 'latest', Digest: result.digest, Size: result.size } });
    this.emitEvent({ Type: 'image', Action: 'push', id: familiarName(ref), attributes: { name: familiarName({ ...ref, tag: undefined, digest: undefined }) } });
  }

  // --- queries ---

  async listImages(opts: { all?: boolean; filters?: Record<string, string[]>; digests?: boolean } = {}): Promise<ImageSummaryDocker[]> {
    const filter = await this.listFilter(opts.filters ?? {});
    const patterns = opts.filters?.reference ?? [];
    // Docker shows only the names a reference filter matched, not every tag of the image.
    const shown = patterns.length > 0 ? (name: string) => patterns.some((p) => referenceMatches(p, name)) : undefined;
    const out: ImageSummaryDocker[] = [];
    for (const image of await this.allImages()) {
      if (!filter(image)) continue;
      out.push(imageSummary(image, shown));
    }
    out.sort((a, b) => b.Created - a.Created || (a.Id < b.Id ? -1 : 1));
    return out;
  }

  async inspectImage(name: string): Promise<ImageInspect> {
    const image = await this.lookup(name);
    return imageInspect(image, this.graphDriver());
  }

  async imageHistory(name: string): Promise<ImageHistoryEntry[]> {
    return imageHistory(await this.lookup(name));
  }

  /** The image a new container is created from. NotFound says `No such image: NAME`, which makes the docker CLI pull. */
  async resolveForContainer(name: string, platform?: string): Promise<ContainerImage> {
    const image = await this.lookup(name);
    if (platform) {
      const want = normalizePlatform(parsePlatform(platform));
      const have = normalizePlatform({ os: image.config.os, architecture: image.config.architecture, variant: image.config.variant });
      if (want.os !== have.os || want.architecture !== have.architecture || (want.variant !== undefined && want.variant !== have.variant)) {
        throw new BerthError('NotFound', `image with reference ${name} was found but does not match the specified platform: wanted ${formatPlatform(want)}, actual: ${formatPlatform(have)}`);
      }
    }
    const byId = isIdLike(name) && !image.names.some((n) => n === safeFormat(name));
    const ref = safeFormat(name);
    const recordName = ref !== undefined && image.records.some((r) => r.name === ref) ? ref : image.records[0]!.name;
    return {
      id: image.id,
      name: byId || ref === undefined ? image.id : familiarName(parseReference(ref)),
      config: dockerConfig(image.config.config),
      ref: recordName,
      manifestDigest: image.manifestDigest,
      chainIds: image.chainIds,
      platform: { os: image.config.os, architecture: image.config.architecture, ...(image.config.variant ? { variant: image.config.variant } : {}) },
      names: image.names,
    };
  }

  /** Finds an image by name, ID or ID prefix (as `docker image inspect` does). */
  async lookup(nameOrId: string): Promise<NamedImage> {
    const records = await this.service.ctx.images.list();
    const full = safeFormat(nameOrId);
    const byName = full === undefined ? undefined : records.find((r) => r.name === full);
    let target: Descriptor | undefined = byName?.target;
    let details: ImageDetails | undefined = byName ? await this.details(byName.target) : undefined;
    if (!details && isIdLike(nameOrId)) {
      const hex = nameOrId.replace(/^sha256:/, '');
      const found = new Map<Digest, ImageDetails>();
      for (const r of records) {
        const d = await this.details(r.target).catch(() => undefined);
        if (d && d.id.slice('sha256:'.length).startsWith(hex)) found.set(d.id, d);
      }
      if (found.size > 1) throw new BerthError('Conflict', `image ID prefix "${nameOrId}" is ambiguous: it matches ${found.size} images`, { hint: 'give more digits of the ID' });
      details = found.values().next().value;
      target = details?.target;
    }
    if (!details || !target) throw noSuchImage(nameOrId);
    return this.withNames(details, records);
  }

  // --- tag / remove / prune ---

  async tagImage(source: string, repo: string, tag?: string): Promise<void> {
    const image = await this.lookup(source);
    let ref = parseUserReference(repo, 'tag');
    if (ref.digest !== undefined) throw new BerthError('InvalidArgument', `refusing to create a tag with a digest reference: ${repo}`);
    if (tag) {
      if (!/^\w[\w.-]{0,127}$/.test(tag)) throw new BerthError('InvalidArgument', `invalid tag format: "${tag}"`, { hint: 'a tag is 1 to 128 letters, digits, "_", "." and "-", not starting with "." or "-"' });
      ref = { ...ref, tag };
    }
    const name = formatReference(ref);
    if (familiarName(ref).startsWith('scratch:') || ref.path === 'library/scratch') {
      throw new BerthError('InvalidArgument', `'scratch' is a reserved name`);
    }
    const previous = await this.service.ctx.images.get(name);
    await this.service.ctx.images.put({ name, target: image.target, labels: image.records[0]?.labels });
    await this.dropDanglingMarker(image);
    await this.keepIfDangling(previous, name);
    this.emitEvent({ Type: 'image', Action: 'tag', id: image.id, attributes: { name: familiarName(ref) } });
  }

  async removeImage(name: string, opts: { force?: boolean; noprune?: boolean } = {}): Promise<DeleteItem[]> {
    const force = opts.force === true;
    const image = await this.lookup(name);
    const full = safeFormat(name);
    const byName = full !== undefined && image.records.some((r) => r.name === full);
    const users = this.containersUsing(image.id);
    const running = this.runningContainersUsing(image.id);
    const out: DeleteItem[] = [];

    if (byName) {
      if (image.names.length > 1) {
        await this.untag(image, full!, out);
        return out;
      }
      if (users.length > 0) {
        if (!force) {
          throw new BerthError(
            'Conflict',
            `conflict: unable to remove repository reference "${name}" (must force) - container ${shortId(users[0]!)} is using its referenced image ${shortId(image.id)}`,
          );
        }
        // Forced: the name goes, the image stays (dangling) for the containers that use it.
        await this.keepAsDangling(image);
        await this.untag(image, full!, out);
        return out;
      }
    } else {
      const short = shortId(image.id);
      if (running.length > 0) {
        throw new BerthError('Conflict', `conflict: unable to delete ${short} (cannot be forced) - image is being used by running container ${shortId(running[0]!)}`);
      }
      if (!force && users.length > 0) {
        throw new BerthError('Conflict', `conflict: unable to delete ${short} (must be forced) - image is being used by stopped container ${shortId(users[0]!)}`);
      }
      if (!force && image.names.length > 1) {
        throw new BerthError('Conflict', `conflict: unable to delete ${short} (must be forced) - image is referenced in multiple repositories`);
      }
    }
    for (const n of image.names) await this.untag(image, n, out);
    await this.deleteImage(image, out);
    return out;
  }

  async pruneImages(filters: Record<string, string[]>): Promise<{ ImagesDeleted: DeleteItem[]; SpaceReclaimed: number }> {
    const filter = await this.pruneFilter(filters);
    const deleted: DeleteItem[] = [];
    const victims: NamedImage[] = [];
    for (const image of await this.allImages()) {
      if (!filter(image)) continue;
      if (this.containersUsing(image.id).length > 0) continue;
      victims.push(image);
    }
    for (const image of victims) {
      for (const n of image.names) await this.untag(image, n, deleted);
      for (const r of image.records) await this.service.ctx.images.delete(r.name);
      deleted.push({ Deleted: image.id });
      this.emitEvent({ Type: 'image', Action: 'delete', id: image.id, attributes: { name: image.id } });
    }
    if (victims.length === 0) return { ImagesDeleted: [], SpaceReclaimed: 0 };
    const gc = await this.service.prune();
    for (const key of gc.removedSnapshots) if (/^sha256:[a-f0-9]{64}$/.test(key)) deleted.push({ Deleted: key });
    return { ImagesDeleted: deleted, SpaceReclaimed: gc.reclaimedBytes };
  }

  // --- archives ---

  async saveImages(names: string[], out: NodeJS.WritableStream, signal?: AbortSignal): Promise<void> {
    if (names.length === 0) throw new BerthError('InvalidArgument', 'save: no images given', { hint: 'name at least one image' });
    const recordNames: string[] = [];
    const ids: Digest[] = [];
    for (const n of names) {
      const image = await this.lookup(n);
      const full = safeFormat(n);
      const chosen = full !== undefined && image.records.some((r) => r.name === full) ? [full] : image.names;
      if (chosen.length === 0) {
        throw new BerthError('InvalidArgument', `save: image ${n} has no name; berth saves images by name`, { hint: `tag it first: docker tag ${n} NAME:TAG` });
      }
      for (const c of chosen) if (!recordNames.includes(c)) recordNames.push(c);
      if (!ids.includes(image.id)) ids.push(image.id);
    }
    await this.service.save(recordNames, out as Writable, { signal });
    for (const id of ids) this.emitEvent({ Type: 'image', Action: 'save', id, attributes: { name: id } });
  }

  async loadImages(input: Readable, opts: { quiet?: boolean; onProgress: (m: ProgressMessage) => void }): Promise<void> {
    const before = new Map((await this.service.ctx.images.list()).map((r) => [r.name, r] as const));
    const quiet = opts.quiet === true;
    // Through loadArchive itself (what ImageService.load calls) for its progress events.
    const result = await loadArchive(input, this.service.ctx, {
      onProgress: (e) => {
        // The loaded names are reported below, once each, as Docker's `stream` lines.
        if (quiet || e.status.startsWith('Loaded image')) return;
        opts.onProgress(progressMessage(e, e.status === 'Loaded layer' ? 'Loading layer' : e.status));
      },
    });
    const ids = new Set<Digest>();
    for (const loaded of result.images) {
      if (loaded.name !== undefined) {
        const previous = before.get(loaded.name);
        if (previous && previous.target.digest !== loaded.digest) await this.keepIfDangling(previous, loaded.name);
        opts.onProgress({ stream: `Loaded image: ${familiarName(parseReference(loaded.name))}\n` });
        const details = await this.details((await this.service.ctx.images.get(loaded.name))!.target);
        ids.add(details.id);
      } else {
        const target = await this.descriptorOf(loaded.digest);
        const details = await this.details(target);
        const records = await this.service.ctx.images.list();
        if (!records.some((r) => r.target.digest === target.digest)) await this.service.ctx.images.put({ name: danglingName(target.digest), target });
        opts.onProgress({ stream: `Loaded image ID: ${details.id}\n` });
        ids.add(details.id);
      }
    }
    for (const id of ids) this.emitEvent({ Type: 'image', Action: 'load', id, attributes: { name: id } });
  }

  async importImage(
    input: Readable,
    opts: { repo?: string; tag?: string; changes?: string[]; message?: string; platform?: string; onProgress: (m: ProgressMessage) => void },
  ): Promise<void> {
    const changes = parseChanges(opts.changes ?? []);
    const name = opts.repo ? imageNameFrom(opts.repo, opts.tag, 'import') : undefined;
    if (!opts.repo && opts.tag) throw new BerthError('InvalidArgument', 'import: a tag was given without a repository', { hint: 'pass repo as well as tag' });
    const previous = name === undefined ? undefined : await this.service.ctx.images.get(name);
    const { Volumes, StopSignal, ...supported } = changes;
    const amend = Volumes !== undefined || StopSignal !== undefined;
    const created = await this.service.import(input, {
      name: amend ? undefined : name,
      changes: supported,
      message: opts.message || undefined,
      platform: opts.platform || undefined,
      format: 'docker',
    });
    let manifest = created.manifest;
    let id = created.config.digest;
    if (amend) ({ manifest, id } = await this.amendConfig(manifest, { Volumes, StopSignal }, name));
    else if (name !== undefined) await this.keepIfDangling(previous, name);
    if (name === undefined) await this.service.ctx.images.put({ name: danglingName(manifest.digest), target: manifest });
    else if (amend) await this.keepIfDangling(previous, name);
    opts.onProgress({ status: id });
    this.emitEvent({ Type: 'image', Action: 'import', id, attributes: { name: id } });
  }

  /**
   * The import path of the image layer takes only some config fields; the others (VOLUME,
   * STOPSIGNAL) go into a new config and manifest over the same layer, recorded as `name`.
   */
  private async amendConfig(manifestDesc: Descriptor, extra: Pick<ImportChanges, 'Volumes' | 'StopSignal'>, name: string | undefined): Promise<{ manifest: Descriptor; id: Digest }> {
    const { content, leases, images } = this.service.ctx;
    const lease = await leases.create();
    try {
      lease.add({ type: 'content', id: manifestDesc.digest });
      const manifest = JSON.parse((await content.readBuffer(manifestDesc.digest)).toString('utf8')) as ImageManifest;
      const config = JSON.parse((await content.readBuffer(manifest.config.digest)).toString('utf8')) as ImageConfig;
      config.config = { ...(config.config ?? {}) };
      if (extra.Volumes) config.config.Volumes = extra.Volumes;
      if (extra.StopSignal) config.config.StopSignal = extra.StopSignal;
      const configBytes = Buffer.from(JSON.stringify(config));
      const configDigest = sha256Digest(configBytes);
      lease.add({ type: 'content', id: configDigest });
      await content.put({ digest: configDigest, size: configBytes.length }, configBytes);
      manifest.config = { ...manifest.config, digest: configDigest, size: configBytes.length };
      const manifestBytes = Buffer.from(JSON.stringify(manifest));
      const digest = sha256Digest(manifestBytes);
      lease.add({ type: 'content', id: digest });
      await content.put({ digest, size: manifestBytes.length }, manifestBytes);
      const target: Descriptor = { mediaType: manifestDesc.mediaType, digest, size: manifestBytes.length };
      await images.put({ name: name ?? danglingName(digest), target });
      return { manifest: target, id: configDigest };
    } finally {
      await lease.release();
    }
  }

  // --- commit / login ---

  /**
   * A new image: the parent's layers plus `layer` (gzip-compressed like every layer Docker
   * stores), the config given, one history entry; tagged `name` or kept as dangling.
   * Returns the image ID.
   */
  async commitImage(opts: CommitImageOptions): Promise<Digest> {
    const parent = await this.lookup(opts.parent);
    const name = opts.name === undefined ? undefined : imageNameFrom(opts.name, undefined, 'commit');
    const { content, leases, images } = this.service.ctx;
    const format = parent.manifest.mediaType === MediaType.dockerManifest || parent.manifest.config.mediaType === MediaType.dockerConfig ? 'docker' : 'oci';
    const types = mediaTypes(format);
    const created = new Date().toISOString();
    const previous = name === undefined ? undefined : await images.get(name);
    const lease = await leases.create();
    const tmp = opts.layer ? await mkdtemp(join(tmpdir(), 'berth-commit-')) : undefined;
    try {
      const layers = [...parent.manifest.layers];
      const diffIds = [...parent.config.rootfs.diff_ids];
      if (opts.layer && tmp) {
        const staged = await stageGzipLayer(opts.layer(), join(tmp, 'layer.tar.gz'), 'commit');
        lease.add({ type: 'content', id: staged.digest });
        await content.ingest({ digest: staged.digest, size: staged.size }, async (offset) => createReadStream(staged.path, { start: offset }), { source: 'commit: staged layer' });
        layers.push({ mediaType: types.layerGzip, digest: staged.digest, size: staged.size });
        diffIds.push(staged.diffId);
      }
      const history = [...(parent.config.history ?? [])];
      history.push({
        created,
        created_by: opts.createdBy,
        ...(opts.author ? { author: opts.author } : {}),
        ...(opts.comment ? { comment: opts.comment } : {}),
        ...(opts.layer ? {} : { empty_layer: true }),
      });
      const configDoc: ImageConfig & { comment?: string } = { ...parent.config, created, config: opts.config, rootfs: { type: 'layers', diff_ids: diffIds }, history };
      delete configDoc.author;
      delete configDoc.comment;
      if (opts.author) configDoc.author = opts.author;
      if (opts.comment) configDoc.comment = opts.comment;
      const configBytes = Buffer.from(JSON.stringify(configDoc));
      const configDigest = sha256Digest(configBytes);
      lease.add({ type: 'content', id: configDigest });
      await content.put({ digest: configDigest, size: configBytes.length }, configBytes);
      const manifestDoc: ImageManifest = {
        schemaVersion: 2,
        mediaType: types.manifest,
        config: { mediaType: types.config, digest: configDigest, size: configBytes.length },
        layers,
      };
      const manifestBytes = Buffer.from(JSON.stringify(manifestDoc));
      const digest = sha256Digest(manifestBytes);
      lease.add({ type: 'content', id: digest });
      await content.put({ digest, size: manifestBytes.length }, manifestBytes);
      const target: Descriptor = { mediaType: types.manifest, digest, size: manifestBytes.length };
      await images.put({ name: name ?? danglingName(digest), target });
      if (name !== undefined) await this.keepIfDangling(previous, name);
      return configDigest;
    } finally {
      await lease.release();
      if (tmp) await rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * docker login: the credentials must open the registry's /v2/ (basic auth, or a token from
   * its token service). The daemon keeps nothing; the client stores the credentials.
   */
  async login(auth: AuthConfig): Promise<{ Status: string; IdentityToken: string }> {
    const domain = loginDomain(auth.serveraddress);
    const credential = credentialFromAuth(auth);
    if (!credential) throw new BerthError('InvalidArgument', `login to ${domain}: no credentials given`, { hint: 'give a username and password (or an identity token)' });
    const registry = new RegistryClient({ hosts: this.registries, credentials: credentialStoreFrom({ [domain]: credential }), retries: 1 });
    try {
      await registry.ping(domain);
    } catch (err) {
      if (err instanceof RegistryError && (err.status === 401 || err.status === 403))
        throw new RegistryError('FailedPrecondition', `login to ${domain} failed: ${err.message}`, { cause: err, status: 401, hint: 'check the username and password' });
      if (isBerthError(err)) throw new BerthError(err.code, `login to ${domain}: ${err.message}`, { cause: err, hint: err.hint });
      throw err;
    } finally {
      registry.close();
    }
    return { Status: 'Login Succeeded', IdentityToken: '' };
  }

  // --- internals ---

  /** Every image (grouped by ID) with its names; images whose content went missing are skipped. */
  async allImages(): Promise<NamedImage[]> {
    const records = await this.service.ctx.images.list();
    const byId = new Map<Digest, NamedImage>();
    for (const r of records) {
      let d: ImageDetails;
      try {
        d = await this.details(r.target);
      } catch {
        continue;
      }
      if (!byId.has(d.id)) byId.set(d.id, await this.withNames(d, records));
    }
    return [...byId.values()];
  }

  private async withNames(details: ImageDetails, records: ImageRecord[]): Promise<NamedImage> {
    const mine: ImageRecord[] = [];
    for (const r of records) {
      if (r.target.digest === details.target.digest) mine.push(r);
      else if ((await this.details(r.target).catch(() => undefined))?.id === details.id) mine.push(r);
    }
    return { ...details, names: mine.map((r) => r.name).filter((n) => !isDanglingName(n)).sort(), records: mine };
  }

  /** What a record's target resolves to on this host (or the only platform stored). */
  async details(target: Descriptor): Promise<ImageDetails> {
    const cached = this.cache.get(target.digest);
    if (cached) return cached;
    const content = this.service.ctx.content;
    const where = target.digest;
    const read = async (digest: Digest): Promise<Buffer> => {
      if (!(await content.has(digest))) throw new BerthError('NotFound', `image ${where}: blob ${digest} is missing from the content store`, { hint: 'pull the image again' });
      return content.readBuffer(digest);
    };
    let manifestDigest = target.digest;
    if (isIndexMediaType(target.mediaType)) {
      const index = parseIndex(await read(target.digest), `index ${target.digest}`);
      const present: Descriptor[] = [];
      for (const child of index.manifests) if (await content.has(child.digest)) present.push(child);
      let chosen: Descriptor;
      try {
        chosen = selectManifest({ ...index, manifests: present }, hostPlatform(), where);
      } catch (err) {
        // Pulled for another platform (--platform): that one is what the record means.
        const runnable = present.filter((d) => d.platform && d.platform.os !== 'unknown');
        if (runnable.length !== 1) throw err;
        chosen = runnable[0]!;
      }
      manifestDigest = chosen.digest;
    }
    const manifest = parseManifest(await read(manifestDigest), `manifest ${manifestDigest}`);
    const config = parseImageConfig(await read(manifest.config.digest), `config ${manifest.config.digest}`);
    const details: ImageDetails = {
      id: manifest.config.digest,
      target,
      manifestDigest,
      manifest,
      config,
      chainIds: computeChainIds(config.rootfs.diff_ids),
      compressedSize: manifest.config.size + manifest.layers.reduce((sum, l) => sum + l.size, 0),
      size: 0,
      layerSizes: [],
    };
    for (const layer of manifest.layers) details.layerSizes.push(await this.uncompressedSize(layer));
    details.size = details.layerSizes.reduce((a, b) => a + b, 0);
    this.cache.set(target.digest, details);
    return details;
  }

  /**
   * A layer's uncompressed size without decompressing it: gzip's trailer holds it (modulo
   * 4 GiB), a zstd frame header usually does; a plain tar is its own size. Falls back to
   * the compressed size when the blob does not say.
   */
  private async uncompressedSize(layer: Descriptor): Promise<number> {
    const cached = this.layerSizes.get(layer.digest);
    if (cached !== undefined) return cached;
    let size = layer.size;
    try {
      size = await blobUncompressedSize(this.service.ctx.content.path(layer.digest), layer.size);
    } catch {
      // not stored here (a foreign layer) or unreadable: the descriptor's size will do
    }
    this.layerSizes.set(layer.digest, size);
    return size;
  }

  private graphDriver(): { Name: string; Data: Record<string, string> | null } {
    return { Name: this.service.ctx.snapshots.kind === 'overlay' ? 'overlayfs' : 'native', Data: null };
  }

  private async untag(image: NamedImage, name: string, out: DeleteItem[]): Promise<void> {
    if (await this.service.ctx.images.delete(name)) {
      out.push({ Untagged: familiarName(parseReference(name)) });
      this.emitEvent({ Type: 'image', Action: 'untag', id: image.id, attributes: { name: image.id } });
    }
  }

  private async deleteImage(image: NamedImage, out: DeleteItem[]): Promise<void> {
    for (const r of image.records) await this.service.ctx.images.delete(r.name);
    out.push({ Deleted: image.id });
    this.emitEvent({ Type: 'image', Action: 'delete', id: image.id, attributes: { name: image.id } });
    const gc = await this.service.prune();
    for (const key of gc.removedSnapshots) if (/^sha256:[a-f0-9]{64}$/.test(key)) out.push({ Deleted: key });
  }

  /** After `name` moved away from `previous`'s image: keep that image as dangling when nothing else names it. */
  private async keepIfDangling(previous: ImageRecord | undefined, name: string): Promise<void> {
    if (!previous) return;
    const now = await this.service.ctx.images.get(name);
    if (now && now.target.digest === previous.target.digest) return;
    const records = await this.service.ctx.images.list();
    let prevId: Digest | undefined;
    try {
      prevId = (await this.details(previous.target)).id;
    } catch {
      return;
    }
    for (const r of records) {
      if (r.target.digest === previous.target.digest) return;
      if ((await this.details(r.target).catch(() => undefined))?.id === prevId) return;
    }
    await this.service.ctx.images.put({ name: danglingName(previous.target.digest), target: previous.target });
  }

  private async keepAsDangling(image: NamedImage): Promise<void> {
    if (image.records.some((r) => isDanglingName(r.name))) return;
    await this.service.ctx.images.put({ name: danglingName(image.target.digest), target: image.target });
  }

  /** A named image needs no dangling marker any more. */
  private async dropDanglingMarker(image: NamedImage): Promise<void> {
    for (const r of image.records) if (isDanglingName(r.name)) await this.service.ctx.images.delete(r.name);
  }

  private async descriptorOf(digest: Digest): Promise<Descriptor> {
    const bytes = await this.service.ctx.content.readBuffer(digest);
    const kind = detectManifestKind(bytes, undefined, `manifest ${digest}`);
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
    const mediaType = typeof doc.mediaType === 'string' ? doc.mediaType : kind === 'index' ? MediaType.ociIndex : MediaType.ociManifest;
    return { mediaType, digest, size: bytes.length };
  }

  private async listFilter(filters: Record<string, string[]>): Promise<(image: NamedImage) => boolean> {
    checkFilterKeys(filters, ['dangling', 'label', 'before', 'since', 'reference', 'until'], 'images');
    const checks: Array<(image: NamedImage) => boolean> = [];
    const dangling = booleanFilter(filters, 'dangling');
    if (dangling !== undefined) checks.push((i) => (i.names.length === 0) === dangling);
    for (const l of filters.label ?? []) checks.push(labelMatcher(l));
    if (filters.before?.length) {
      const limits = await Promise.all(filters.before.map((b) => this.lookup(b)));
      checks.push((i) => limits.every((l) => created(i) < created(l)));
    }
    if (filters.since?.length) {
      const limits = await Promise.all(filters.since.map((b) => this.lookup(b)));
      checks.push((i) => limits.every((l) => created(i) > created(l)));
    }
    if (filters.until?.length) {
      const limits = filters.until.map((u) => parseTimestamp(u, 'until'));
      checks.push((i) => limits.every((l) => created(i) < l));
    }
    if (filters.reference?.length) {
      const patterns = filters.reference;
      checks.push((i) => i.names.some((n) => patterns.some((p) => referenceMatches(p, n))));
    }
    return (image) => checks.every((c) => c(image));
  }

  private async pruneFilter(filters: Record<string, string[]>): Promise<(image: NamedImage) => boolean> {
    checkFilterKeys(filters, ['dangling', 'until', 'label', 'label!'], 'image prune');
    const checks: Array<(image: NamedImage) => boolean> = [];
    const danglingOnly = booleanFilter(filters, 'dangling') ?? true;
    if (danglingOnly) checks.push((i) => i.names.length === 0);
    for (const l of filters.label ?? []) checks.push(labelMatcher(l));
    for (const l of filters['label!'] ?? []) {
      const m = labelMatcher(l);
      checks.push((i) => !m(i));
    }
    if (filters.until?.length) {
      const limits = filters.until.map((u) => parseTimestamp(u, 'until'));
      checks.push((i) => limits.every((l) => created(i) < l));
    }
    return (image) => checks.every((c) => c(image));
  }
}

/** See EngineImages.uncompressedSize. */
export async function blobUncompressedSize(file: string, compressedSize: number): Promise<number> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(18);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (bytesRead >= 4 && head[0] === 0x1f && head[1] === 0x8b) {
      const tail = Buffer.alloc(4);
      await fh.read(tail, 0, 4, compressedSize - 4);
      let size = tail.readUInt32LE(0);
      // ISIZE is modulo 2^32; deflate never shrinks data below ~0.1% nor grows it much.
      while (size < compressedSize * 0.9) size += 2 ** 32;
      return size;
    }
    if (bytesRead >= 6 && head.readUInt32LE(0) === 0xfd2fb528) {
      const fhd = head[4]!;
      const fcsFlag = fhd >> 6;
      const singleSegment = (fhd >> 5) & 1;
      const dictBytes = [0, 1, 2, 4][fhd & 3]!;
      const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
      const at = 5 + (singleSegment ? 0 : 1) + dictBytes;
      if (fcsBytes === 0 || at + fcsBytes > bytesRead) return compressedSize;
      if (fcsBytes === 1) return head[at]!;
      if (fcsBytes === 2) return head.readUInt16LE(at) + 256;
      if (fcsBytes === 4) return head.readUInt32LE(at);
      return Number(head.readBigUInt64LE(at));
    }
    return compressedSize;
  } finally {
    await fh.close();
  }
}

// --- references and credentials ---

function danglingName(digest: Digest): string {
  return `${DANGLING_PREFIX}${digest}`;
}

export function isDanglingName(name: string): boolean {
  return name.startsWith(DANGLING_PREFIX);
}

function isIdLike(value: string): boolean {
  return /^(sha256:)?[a-f0-9]{4,64}$/.test(value);
}

function safeFormat(input: string): string | undefined {
  try {
    return formatReference(parseReference(input));
  } catch {
    return undefined;
  }
}

function noSuchImage(input: string): BerthError {
  let shown = input;
  if (!isIdLike(input)) {
    try {
      shown = familiarName(parseReference(input));
    } catch {
      // an unparsable name is shown as given
    }
  }
  return new BerthError('NotFound', `No such image: ${shown}`, { hint: 'pull, load or import it first' });
}

function parseUserReference(input: string, op: string): Reference {
  try {
    return parseReference(input);
  } catch (err) {
    if (isBerthError(err)) throw new BerthError('InvalidArgument', `${op}: ${err.message}`, { cause: err, hint: err.hint });
    throw err;
  }
}

/** `repo` (with `tag` replacing its own) as a full name an image can be given: never a digest. */
export function imageNameFrom(repo: string, tag: string | undefined, op: string): string {
  let ref = parseUserReference(repo, op);
  if (ref.digest !== undefined) throw new BerthError('InvalidArgument', `${op}: "${repo}" names a digest; an image can only be given a tag`);
  if (tag) ref = parseUserReference(`${formatReference({ domain: ref.domain, path: ref.path })}:${tag}`, op);
  return formatReference(ref);
}

/** The registry a login names: Docker's serveraddress (a host, or a URL like https://index.docker.io/v1/); empty is Docker Hub. */
export function loginDomain(serverAddress: string | undefined): string {
  const raw = (serverAddress ?? '').trim();
  if (raw === '') return 'docker.io';
  const host = raw.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').split('/')[0]!;
  if (host === '' || /[\s@]/.test(host)) throw new BerthError('InvalidArgument', `login: "${serverAddress}" is not a registry address`, { hint: 'give host[:port], e.g. 127.0.0.1:5000' });
  return canonicalDomain(host);
}

/** Docker's `fromImage` + `tag`: the tag (or a digest) replaces one in fromImage. */
function hasTagOrDigest(name: string): boolean {
  return name.includes('@') || /:[^/]*$/.test(name);
}

export function pullReference(fromImage: string, tag?: string): Reference {
  if (!fromImage) throw new BerthError('InvalidArgument', 'pull: fromImage is empty', { hint: 'name the image to pull' });
  const hasOwnTagOrDigest = hasTagOrDigest(fromImage);
  let ref = parseUserReference(fromImage, 'pull');
  if (tag) {
    if (/^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:/.test(tag)) ref = parseUserReference(`${formatReference({ domain: ref.domain, path: ref.path })}@${tag}`, 'pull');
    else ref = parseUserReference(`${formatReference({ domain: ref.domain, path: ref.path })}:${tag}`, 'pull');
  } else if (!hasOwnTagOrDigest) {
    throw new BerthError('InvalidArgument', `pull: pulling every tag of ${fromImage} (no tag given) is not supported`, { hint: `give a tag, e.g. tag=latest (docker pull ${fromImage}:latest)` });
  }
  return ref;
}

/** X-Registry-Auth as a registry credential; an empty object (what the CLI sends by default) is none. */
export function credentialFromAuth(auth: RegistryAuth | undefined): Credential | undefined {
  if (!auth) return undefined;
  if (auth.identitytoken) return { identityToken: auth.identitytoken };
  if (auth.registrytoken) {
    throw new BerthError('InvalidArgument', 'X-Registry-Auth: registrytoken is not supported', { hint: 'log in with a username and password or an identity token' });
  }
  if (auth.username || auth.password) {
    if (!auth.username || auth.password === undefined) throw new BerthError('InvalidArgument', 'X-Registry-Auth: a username needs a password');
    return { username: auth.username, password: auth.password };
  }
  if (auth.auth) {
    const decoded = Buffer.from(auth.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new BerthError('InvalidArgument', 'X-Registry-Auth: "auth" is not base64 of "username:password"');
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}

// --- progress ---

/** Docker's units.HumanSize: decimal units, four significant digits ("2.152MB", "527B"). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < units.length - 1) {
    size /= 1000;
    i++;
  }
  return `${Number(size.toPrecision(4))}${units[i]}`;
}

/** The `progress` string of Docker's JSONMessage: `[=====>     ]  1.2MB/2.4MB`. */
export function progressBar(current: number, total?: number): string {
  if (total === undefined || total <= 0) return humanSize(current).padStart(8);
  const filled = Math.min(50, Math.floor(Math.floor((current / total) * 100) / 2));
  const bar = `[${'='.repeat(filled)}>${' '.repeat(50 - filled)}] `;
  const numbers = current > total ? humanSize(current).padStart(8) : `${humanSize(current).padStart(8)}/${humanSize(total)}`;
  return bar + numbers;
}

function progressMessage(e: ProgressEvent, status = e.status): ProgressMessage {
  const m: ProgressMessage = { status };
  if (e.id !== undefined) m.id = e.id;
  if (e.current !== undefined) {
    m.progressDetail = { current: e.current, ...(e.total !== undefined ? { total: e.total } : {}) };
    m.progress = progressBar(e.current, e.total);
  }
  return m;
}

/**
 * Turns the image service's pull events into the JSONMessage sequence Docker sends. The
 * service extracts while it downloads; Docker's clients expect download, then checksum,
 * then extraction, so a layer's `Extracting` is held until its download is complete.
 */
export class PullProgress {
  private readonly layers = new Map<string, { total?: number; downloaded: boolean; extracting: boolean; extractShown: boolean }>();
  private held: ProgressMessage | undefined;

  constructor(
    private readonly out: (m: ProgressMessage) => void,
    /** The familiar name for the final status line. */
    private readonly name: string,
  ) {}

  event(e: ProgressEvent): void {
    const id = e.id;
    const status = e.status;
    if (status.startsWith('Status: ')) {
      this.flush();
      const upToDate = status.startsWith('Status: Image is up to date');
      this.out({ status: upToDate ? `Status: Image is up to date for ${this.name}` : `Status: Downloaded newer image for ${this.name}` });
      return;
    }
    if (status.startsWith('Pulling from')) {
      // Held until the registry answered, so that a missing image fails before any output
      // (the API can then still answer with an error status, as Docker does).
      this.held = progressMessage(e);
      return;
    }
    this.flush();
    if (id === undefined) {
      this.out(progressMessage(e));
      return;
    }
    const layer = this.layers.get(id) ?? { downloaded: false, extracting: false, extractShown: false };
    this.layers.set(id, layer);
    switch (status) {
      case 'Downloading':
        if (e.total !== undefined) layer.total = e.total;
        this.out(progressMessage(e));
        return;
      case 'Extracting':
        layer.extracting = true;
        if (layer.downloaded) this.showExtracting(id, layer);
        return;
      case 'Download complete':
        layer.downloaded = true;
        this.out({ status: 'Verifying Checksum', id });
        this.out({ status: 'Download complete', id });
        if (layer.extracting) this.showExtracting(id, layer);
        return;
      case 'Pull complete':
        if (!layer.extractShown) this.showExtracting(id, layer);
        this.out({ status: 'Pull complete', id });
        return;
      default:
        this.out(progressMessage(e));
    }
  }

  private flush(): void {
    if (this.held === undefined) return;
    const held = this.held;
    this.held = undefined;
    this.out(held);
  }

  private showExtracting(id: string, layer: { total?: number; extractShown: boolean }): void {
    if (layer.extractShown) return;
    layer.extractShown = true;
    const total = layer.total;
    if (total === undefined) this.out({ status: 'Extracting', id });
    else this.out({ status: 'Extracting', id, progressDetail: { current: total, total }, progress: progressBar(total, total) });
  }
}

/** Push events as Docker sends them, without the config blob (Docker lists layers only). */
export class PushProgress {
  constructor(
    private readonly out: (m: ProgressMessage) => void,
    private readonly hiddenId?: string,
  ) {}

  event(e: ProgressEvent): void {
    if (e.id !== undefined && e.id === this.hiddenId) return;
    if (e.status.startsWith('pushing only ')) return; // the index case: Docker says nothing
    this.out(progressMessage(e));
  }
}

// --- shapes ---

/** The image config's `config` in the API's shape, with Docker's defaults filled in. */
export function dockerConfig(c: OciContainerConfig | undefined): ContainerConfig {
  const src = c ?? {};
  const out: ContainerConfig = {
    Hostname: '',
    Domainname: '',
    User: src.User ?? '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: src.Env ?? null,
    Cmd: src.Cmd ?? null,
    Image: '',
    Volumes: src.Volumes ?? null,
    WorkingDir: src.WorkingDir ?? '',
    Entrypoint: src.Entrypoint ?? null,
    OnBuild: src.OnBuild ?? null,
    Labels: src.Labels ?? null,
  };
  if (src.ExposedPorts) out.ExposedPorts = src.ExposedPorts;
  if (src.StopSignal) out.StopSignal = src.StopSignal;
  if (src.Healthcheck) out.Healthcheck = src.Healthcheck;
  if (src.Shell) out.Shell = src.Shell;
  if (src.ArgsEscaped !== undefined) out.ArgsEscaped = src.ArgsEscaped;
  return out;
}

function created(image: ImageDetails): number {
  const t = image.config.created ? Date.parse(image.config.created) : NaN;
  return Number.isNaN(t) ? 0 : t / 1000;
}

function familiarTags(names: string[]): string[] {
  return names.map((n) => parseReference(n)).filter((r) => r.tag !== undefined).map((r) => familiarName({ ...r, digest: undefined }));
}

function repoDigests(image: NamedImage, shown?: (fullName: string) => boolean): string[] {
  const out = new Set<string>();
  for (const n of image.names) {
    const r = parseReference(n);
    const byDigest = { domain: r.domain, path: r.path, digest: r.digest ?? image.target.digest };
    if (shown && !shown(formatReference(byDigest))) continue;
    out.add(familiarName(byDigest));
  }
  return [...out].sort();
}

/** `shown` (a reference filter) keeps only the tags and digests it accepts, as `docker images busybox:1*` does. */
export function imageSummary(image: NamedImage, shown?: (fullName: string) => boolean): ImageSummaryDocker {
  const tags = familiarTags(shown ? image.names.filter(shown) : image.names);
  const digests = repoDigests(image, shown);
  const dangling = image.names.length === 0;
  return {
    Id: image.id,
    ParentId: '',
    RepoTags: dangling ? ['<none>:<none>'] : tags,
    RepoDigests: dangling ? ['<none>@<none>'] : digests,
    Created: Math.floor(created(image)),
    Size: image.size,
    SharedSize: -1,
    VirtualSize: image.size,
    Labels: image.config.config?.Labels ?? {},
    Containers: -1,
  };
}

export function imageInspect(image: NamedImage, graphDriver: { Name: string; Data: Record<string, string> | null } = { Name: 'overlayfs', Data: null }): ImageInspect {
  const history = image.config.history ?? [];
  const topComment = (image.config as ImageConfig & { comment?: unknown }).comment;
  const lastTag = image.records.reduce((max, r) => (r.updatedAt > max ? r.updatedAt : max), '');
  const out: ImageInspect = {
    Id: image.id,
    RepoTags: familiarTags(image.names),
    RepoDigests: repoDigests(image),
    Parent: '',
    Comment: typeof topComment === 'string' ? topComment : (history.at(-1)?.comment ?? ''),
    Created: image.config.created ?? '0001-01-01T00:00:00Z',
    DockerVersion: '',
    Author: image.config.author ?? '',
    Config: dockerConfig(image.config.config),
    Architecture: image.config.architecture,
    Os: image.config.os,
    Size: image.size,
    VirtualSize: image.size,
    GraphDriver: graphDriver,
    RootFS: { Type: 'layers', Layers: [...image.config.rootfs.diff_ids] },
    Metadata: { LastTagTime: lastTag || '0001-01-01T00:00:00Z' },
  };
  if (image.config.variant) out.Variant = image.config.variant;
  return out;
}

/** Docker's history: newest first; the top entry carries the image ID and tags, the rest `<missing>`. */
export function imageHistory(image: NamedImage): ImageHistoryEntry[] {
  let history = image.config.history ?? [];
  if (history.length === 0) history = image.manifest.layers.map(() => ({}));
  const entries: ImageHistoryEntry[] = [];
  let layer = 0;
  for (const h of history) {
    const size = h.empty_layer ? 0 : (image.layerSizes[layer++] ?? 0);
    const t = h.created ? Date.parse(h.created) : NaN;
    entries.push({ Id: '<missing>', Created: Number.isNaN(t) ? 0 : Math.floor(t / 1000), CreatedBy: h.created_by ?? '', Tags: null, Size: size, Comment: h.comment ?? '' });
  }
  entries.reverse();
  const tags = familiarTags(image.names);
  entries[0]!.Id = image.id;
  entries[0]!.Tags = tags.length > 0 ? tags : null;
  return entries;
}

// --- filters ---

function checkFilterKeys(filters: Record<string, string[]>, allowed: string[], what: string): void {
  for (const key of Object.keys(filters)) {
    if (!allowed.includes(key)) throw new BerthError('InvalidArgument', `invalid filter '${key}' for ${what}`, { hint: `valid filters: ${allowed.join(', ')}` });
    if (!Array.isArray(filters[key])) throw new BerthError('InvalidArgument', `filter '${key}': expected a list of strings`);
  }
}

function booleanFilter(filters: Record<string, string[]>, key: string): boolean | undefined {
  const values = filters[key];
  if (!values || values.length === 0) return undefined;
  const parsed = values.map((v) => {
    const l = v.toLowerCase();
    if (l === 'true' || l === '1') return true;
    if (l === 'false' || l === '0') return false;
    throw new BerthError('InvalidArgument', `invalid filter '${key}=${v}'`, { hint: `${key} is true or false` });
  });
  if (parsed.some((p) => p !== parsed[0])) throw new BerthError('InvalidArgument', `filter '${key}' has conflicting values`);
  return parsed[0];
}

function labelMatcher(spec: string): (image: ImageDetails) => boolean {
  const eq = spec.indexOf('=');
  const key = eq === -1 ? spec : spec.slice(0, eq);
  const value = eq === -1 ? undefined : spec.slice(eq + 1);
  return (image) => {
    const labels = image.config.config?.Labels ?? {};
    if (!(key in labels)) return false;
    return value === undefined || labels[key] === value;
  };
}

/** A Docker timestamp filter: RFC 3339, unix seconds (with fraction), or a duration before now (`10m`, `1h30m`). */
export function parseTimestamp(value: string, key: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  const duration = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/.test(value);
  if (duration) {
    const unit: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
    let seconds = 0;
    for (const m of value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) seconds += Number(m[1]) * unit[m[2]!]!;
    return now / 1000 - seconds;
  }
  const t = Date.parse(value);
  if (Number.isNaN(t)) {
    throw new BerthError('InvalidArgument', `invalid filter '${key}=${value}'`, { hint: 'a timestamp is RFC 3339, unix seconds, or a duration such as 24h' });
  }
  return t / 1000;
}

/** Docker's reference filter: a glob on the familiar name with tag, or on the name alone when the pattern has no tag. */
export function referenceMatches(pattern: string, fullName: string): boolean {
  const ref = parseReference(fullName);
  const withTag = familiarName(ref);
  const nameOnly = familiarName({ domain: ref.domain, path: ref.path });
  const re = globToRegExp(pattern);
  return re.test(withTag) || re.test(nameOnly);
}

function globToRegExp(pattern: string): RegExp {
  let out = '';
  for (const ch of pattern) {
    if (ch === '*') out += '[^/]*';
    else if (ch === '?') out += '[^/]';
    else out += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

// --- import changes ---

/** The config changes of `docker import --change` / `docker commit --change` (Dockerfile lines). */
export interface ImportChanges {
  Cmd?: string[];
  Entrypoint?: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, object>;
  Labels?: Record<string, string>;
  Volumes?: Record<string, object>;
  StopSignal?: string;
}

const CHANGE_INSTRUCTIONS = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'USER', 'VOLUME', 'WORKDIR', 'STOPSIGNAL'];

/** Parses Dockerfile-style change lines. Unknown instructions are refused by name. */
export function parseChanges(lines: string[]): ImportChanges {
  const out: ImportChanges = {};
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '') continue;
    const where = `changes[${i}] "${line}"`;
    const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(line)!;
    const instruction = m[1]!.toUpperCase();
    const rest = (m[2] ?? '').trim();
    if (!CHANGE_INSTRUCTIONS.includes(instruction)) {
      throw new BerthError('InvalidArgument', `${where}: ${instruction} is not a valid change command`, { hint: `valid: ${CHANGE_INSTRUCTIONS.join(', ')}` });
    }
    if (rest === '') throw new BerthError('InvalidArgument', `${where}: ${instruction} requires at least one argument`);
    switch (instruction) {
      case 'CMD':
        out.Cmd = commandForm(rest, where);
        break;
      case 'ENTRYPOINT':
        out.Entrypoint = commandForm(rest, where);
        break;
      case 'ENV':
        for (const [k, v] of keyValues(rest, where, 'ENV')) {
          out.Env = (out.Env ?? []).filter((e) => !e.startsWith(`${k}=`));
          out.Env.push(`${k}=${v}`);
        }
        break;
      case 'LABEL':
        for (const [k, v] of keyValues(rest, where, 'LABEL')) (out.Labels ??= {})[k] = v;
        break;
      case 'EXPOSE':
        for (const port of words(rest, where)) {
          const pm = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(port);
          if (!pm) throw new BerthError('InvalidArgument', `${where}: invalid port "${port}"`, { hint: 'PORT[/tcp|udp|sctp]' });
          const from = Number(pm[1]);
          const to = pm[2] === undefined ? from : Number(pm[2]);
          if (from < 1 || to > 65535 || to < from) throw new BerthError('InvalidArgument', `${where}: invalid port range "${port}"`);
          for (let p = from; p <= to; p++) (out.ExposedPorts ??= {})[`${p}/${(pm[3] ?? 'tcp').toLowerCase()}`] = {};
        }
        break;
      case 'USER':
        out.User = rest;
        break;
      case 'WORKDIR': {
        const base = out.WorkingDir ?? '/';
        out.WorkingDir = rest.startsWith('/') ? rest : `${base.replace(/\/$/, '')}/${rest}`;
        break;
      }
      case 'VOLUME': {
        const paths = rest.startsWith('[') ? jsonArray(rest, where) : words(rest, where);
        for (const p of paths) (out.Volumes ??= {})[p] = {};
        break;
      }
      case 'STOPSIGNAL':
        out.StopSignal = rest;
        break;
    }
  }
  return out;
}

function commandForm(rest: string, where: string): string[] {
  if (rest.startsWith('[')) {
    try {
      return jsonArray(rest, where);
    } catch {
      // Docker falls back to the shell form when the JSON does not parse.
    }
  }
  return ['/bin/sh', '-c', rest];
}

function jsonArray(text: string, where: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new BerthError('InvalidArgument', `${where}: not a JSON array of strings`, { cause: err });
  }
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new BerthError('InvalidArgument', `${where}: not a JSON array of strings`);
  return v as string[];
}

/** Splits on whitespace, honouring double and single quotes and backslash escapes. */
function words(text: string, where: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (ch === '\\' && i + 1 < text.length) {
      cur += text[++i];
      has = true;
    } else if (/\s/.test(ch)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (quote) throw new BerthError('InvalidArgument', `${where}: unterminated quote`);
  if (has) out.push(cur);
  return out;
}

/** `k=v k2="v 2"`, or the old one-pair form `k v with spaces`. */
function keyValues(rest: string, where: string, instruction: string): Array<[string, string]> {
  const parts = words(rest, where);
  if (!parts[0]!.includes('=')) {
    const sp = /^(\S+)\s+([\s\S]*)$/.exec(rest);
    if (!sp) throw new BerthError('InvalidArgument', `${where}: ${instruction} needs NAME=value or NAME value`);
    return [[sp[1]!, words(sp[2]!, where).join(' ')]];
  }
  return parts.map((p) => {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new BerthError('InvalidArgument', `${where}: "${p}" is not NAME=value`);
    return [p.slice(0, eq), p.slice(eq + 1)];
  });
}
