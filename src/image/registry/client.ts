// A client for the OCI distribution API v2 (docker/distribution, Docker Hub, Harbor, GHCR …).
//
// Each operation walks the registry's endpoints in order (mirrors first for pulls, only the
// registry itself for pushes) and falls back to the next one when an endpoint cannot be
// reached, does not have the content (404), fails (5xx) or serves the wrong bytes. On one
// endpoint a request is authenticated on demand (the first 401 tells us how), follows
// redirects to blob storage without leaking our credentials to another host, and is retried
// with backoff on connection errors, 5xx and 429 as long as no body byte has been delivered.
import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError } from '../../errors.js';
import { digestHasher, isDigest, parseDigest } from '../digest.js';
import { formatReference, type Reference } from '../reference.js';
import { MediaType, type Descriptor, type Digest } from '../types.js';
import { Authenticator, repositoryScope } from './auth.js';
import type { CredentialStore } from './credentials.js';
import { resolveEndpoints, type RegistryEndpoint, type RegistryHostConfig } from './hosts.js';
import { discard, header, HttpTransport, readBody, readErrorText, type HttpResponse } from './http.js';
import { connectionError, isAbort, isConnectionError, RegistryError, statusError, type ErrorContext } from './registry-error.js';

export interface RegistryClientOptions {
  hosts?: RegistryHostConfig;
  credentials?: CredentialStore;
  userAgent?: string;
  /** Retries of one request after a connection error, 5xx or 429 (default 3). */
  retries?: number;
  /** First backoff delay in ms (default 250); it doubles per retry, with jitter. */
  retryDelayMs?: number;
  /** Upper bound of one backoff wait, including a registry's Retry-After (default 10 000). */
  maxRetryDelayMs?: number;
  /** A request fails when its connection stays silent this long before the answer (default 60 000). */
  idleTimeoutMs?: number;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface ManifestResult {
  descriptor: Descriptor;
  bytes: Buffer;
  endpoint: RegistryEndpoint;
}

export interface FetchBlobOptions extends RequestOptions {
  offset?: number;
  /**
   * Also check the digest while streaming (only possible when the download starts at byte 0).
   * Off by default because the content store verifies what it stores anyway.
   */
  verify?: boolean;
}

export interface PushBlobOptions extends RequestOptions {
  /** A repository of the same registry that already has the blob (cross-repository mount). */
  mountFrom?: Reference;
  /** Blobs larger than this go up in PATCH chunks of this size (default 32 MiB). */
  chunkSize?: number;
  onProgress?(done: number, total: number): void;
}

export type PushBlobResult = 'exists' | 'mounted' | 'uploaded';

/** Manifests are small documents; anything bigger is not one (containerd uses the same bound). */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const DEFAULT_CHUNK_SIZE = 32 * 1024 * 1024;
const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Everything we can use, best first; schema 1 only so that we can refuse it by name. */
export const MANIFEST_ACCEPT: readonly string[] = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
  MediaType.dockerManifestV1Signed,
  MediaType.dockerManifestV1,
];

const SCHEMA1_TYPES = new Set<string>([MediaType.dockerManifestV1, MediaType.dockerManifestV1Signed, 'application/json']);

interface Exchange {
  method: string;
  /** A path after the endpoint's base URL ('/v2/…'), or an absolute URL (an upload Location). */
  target: string | URL;
  headers?: Record<string, string>;
  /** Called again for every attempt, so a stream is re-opened rather than replayed. */
  body?: () => Buffer | Readable;
  scopes: readonly string[];
  operation: string;
  signal?: AbortSignal;
  followRedirects?: boolean;
  /** False for requests that carry part of an upload: those are retried from a new upload. */
  retry?: boolean;
}

export class RegistryClient {
  private readonly hosts?: RegistryHostConfig;
  private readonly credentials?: CredentialStore;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly http: HttpTransport;
  private readonly auth: Authenticator;

  constructor(opts: RegistryClientOptions = {}) {
    this.hosts = opts.hosts;
    this.credentials = opts.credentials;
    this.retries = Math.max(0, opts.retries ?? 3);
    this.retryDelayMs = opts.retryDelayMs ?? 250;
    this.maxRetryDelayMs = opts.maxRetryDelayMs ?? 10_000;
    this.http = new HttpTransport({ userAgent: opts.userAgent ?? 'berth/0.1', idleTimeoutMs: opts.idleTimeoutMs ?? 60_000 });
    this.auth = new Authenticator(this.http);
  }

  /** How many token requests this client made (tokens are cached; tests check that). */
  get tokenFetches(): number {
    return this.auth.tokenFetches;
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.http.close();
  }

  /**
   * Checks that `domain` speaks the v2 API and, when we hold credentials for it, that they
   * are accepted (what `docker login` does). Returns the endpoint that answered.
   */
  async ping(domain: string, opts: RequestOptions = {}): Promise<RegistryEndpoint> {
    const endpoints = resolveEndpoints(domain, this.hosts);
    let lastError: unknown;
    for (const [i, ep] of endpoints.entries()) {
      const operation = `ping ${domain}`;
      try {
        const res = await this.exchange(ep, { method: 'GET', target: '/v2/', scopes: [], operation, signal: opts.signal });
        if (res.status === 200 || (res.status === 401 && this.credentials?.get(ep.domain) === undefined)) {
          discard(res);
          return ep;
        }
        throw await this.fail(res, { operation, request: `GET ${new URL(ep.baseUrl).pathname.replace(/\/$/, '')}/v2/`, object: 'registry API v2' });
      } catch (err) {
        if (!shouldTryNext(err) || i === endpoints.length - 1) throw err;
        lastError = err;
      }
    }
    throw lastError;
  }

  async getManifest(ref: Reference, opts: RequestOptions & { accept?: string[] } = {}): Promise<ManifestResult> {
    const reference = ref.digest ?? ref.tag;
    if (reference === undefined) {
      throw new BerthError('InvalidArgument', `${formatReference(ref)}: a manifest needs a tag or a digest`);
    }
    const name = formatReference(ref);
    const operation = `pull ${name}`;
    const path = `/v2/${ref.path}/manifests/${reference}`;
    return this.withEndpoints(ref, false, async (ep) => {
      for (let attempt = 0; ; attempt++) {
        const res = await this.exchange(ep, {
          method: 'GET',
          target: path,
          headers: { accept: (opts.accept ?? MANIFEST_ACCEPT).join(', ') },
          scopes: [repositoryScope(ref.path, ['pull'])],
          operation,
          signal: opts.signal,
          followRedirects: true,
        });
        const ctx = { operation, request: `GET ${path}`, object: 'manifest' };
        if (res.status !== 200) throw await this.fail(res, ctx);
        let bytes: Buffer;
        try {
          bytes = await readBody(res, MAX_MANIFEST_BYTES, `manifest of ${name}`);
        } catch (err) {
          // The body broke off: as retryable as a failed connect, since nothing was delivered yet.
          if (isAbort(err) || opts.signal?.aborted || err instanceof BerthError) throw err;
          if (attempt >= this.retries || !isConnectionError(err)) throw connectionError(err, ep.baseUrl, ctx);
          await this.backoff(attempt, undefined, opts.signal);
          continue;
        }
        const digest = checkManifestDigest(bytes, ref, header(res, 'docker-content-digest'), ctx);
        const mediaType = manifestMediaType(contentType(res), bytes, name);
        return { descriptor: { mediaType, digest, size: bytes.length }, bytes, endpoint: ep };
      }
    });
  }

  /**
   * A stream of the blob from `offset` (sent as a Range request). `offset` in the result is
   * where the stream really starts: 0 when the registry ignored the Range.
   */
  async fetchBlob(ref: Reference, desc: Descriptor, opts: FetchBlobOptions = {}): Promise<{ stream: Readable; offset: number }> {
    parseDigest(desc.digest, `blob of ${formatReference(ref)}`);
    const offset = opts.offset ?? 0;
    if (!Number.isInteger(offset) || offset < 0 || offset > desc.size) {
      throw new BerthError('InvalidArgument', `blob ${desc.digest}: offset ${offset} is outside its ${desc.size} bytes`);
    }
    const operation = `pull ${formatReference(ref)}`;
    return this.withEndpoints(ref, false, async (ep) => {
      const get = (from: number): Promise<HttpResponse> =>
        this.exchange(ep, {
          method: 'GET',
          target: `/v2/${ref.path}/blobs/${desc.digest}`,
          headers: from > 0 ? { range: `bytes=${from}-` } : {},
          scopes: [repositoryScope(ref.path, ['pull'])],
          operation,
          signal: opts.signal,
          followRedirects: true,
        });
      let res = await get(offset);
      if (res.status === 416 && offset > 0) {
        // The registry will not serve that range (maybe the blob changed size under us): start over.
        discard(res);
        res = await get(0);
      }
      const ctx = { operation, request: `GET /v2/${ref.path}/blobs/${desc.digest}`, object: `blob ${desc.digest}` };
      if (res.status !== 200 && res.status !== 206) throw await this.fail(res, ctx);
      let honoured = 0;
      if (res.status === 206) {
        const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(header(res, 'content-range') ?? '');
        if (!m || Number(m[1]) !== offset) {
          res.body.destroy();
          throw new RegistryError('Unavailable', `blob ${desc.digest}: asked for bytes from ${offset}, the registry sent "${header(res, 'content-range') ?? 'no Content-Range'}" (${ctx.operation}, ${ctx.request})`, {
            status: 206,
            tryNext: true,
          });
        }
        honoured = offset;
      }
      const expected = desc.size - honoured;
      const declared = Number(header(res, 'content-length'));
      if (header(res, 'content-length') !== undefined && Number.isFinite(declared) && declared !== expected) {
        res.body.destroy();
        throw new RegistryError(
          'FailedPrecondition',
          `blob ${desc.digest}: the registry announced ${declared} bytes from byte ${honoured}, the descriptor says ${desc.size} in all (${ctx.operation}, ${ctx.request})`,
          { tryNext: true, hint: 'the registry serves different content under this digest' },
        );
      }
      const stream = boundedBody(res, {
        desc,
        start: honoured,
        hash: opts.verify && honoured === 0 ? digestHasher(desc.digest) : undefined,
        where: `${ctx.operation}, ${ctx.request}`,
        idleTimeoutMs: this.http.idleTimeoutMs,
      });
      return { stream, offset: honoured };
    });
  }

  async blobExists(ref: Reference, digest: Digest, opts: RequestOptions = {}): Promise<boolean> {
    parseDigest(digest, `blob of ${formatReference(ref)}`);
    try {
      return await this.withEndpoints(ref, false, (ep) =>
        this.headBlob(ep, ref, digest, [repositoryScope(ref.path, ['pull'])], `pull ${formatReference(ref)}`, opts.signal),
      );
    } catch (err) {
      if (err instanceof RegistryError && err.status === 404) return false;
      throw err;
    }
  }

  async pushBlob(ref: Reference, desc: Descriptor, open: () => Readable, opts: PushBlobOptions = {}): Promise<PushBlobResult> {
    parseDigest(desc.digest, `blob for ${formatReference(ref)}`);
    const operation = `push ${formatReference(ref)}`;
    const mount = opts.mountFrom && opts.mountFrom.domain === ref.domain && opts.mountFrom.path !== ref.path ? opts.mountFrom : undefined;
    const scopes = [repositoryScope(ref.path, ['pull', 'push'])];
    if (mount) scopes.push(repositoryScope(mount.path, ['pull']));
    const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (!Number.isInteger(chunkSize) || chunkSize <= 0) throw new BerthError('InvalidArgument', `push: chunk size ${chunkSize} must be a positive integer`);
    const signal = opts.signal;

    return this.withEndpoints(ref, true, async (ep) => {
      try {
        if (await this.headBlob(ep, ref, desc.digest, scopes, operation, signal)) return 'exists';
      } catch (err) {
        if (!(err instanceof RegistryError && err.status === 404)) throw err;
      }
      const uploads = `/v2/${ref.path}/blobs/uploads/`;
      let location: URL | undefined;
      if (mount) {
        const query = new URLSearchParams({ mount: desc.digest, from: mount.path });
        const res = await this.exchange(ep, { method: 'POST', target: `${uploads}?${query}`, scopes, operation, signal });
        if (res.status === 201) {
          discard(res);
          return 'mounted';
        }
        if (res.status !== 202) throw await this.fail(res, { operation, request: `POST ${uploads}?mount=…`, object: 'repository' });
        location = uploadLocation(res, uploads, operation);
        discard(res);
      }
      for (let attempt = 0; ; attempt++) {
        try {
          location ??= await this.startUpload(ep, uploads, scopes, operation, signal);
          const up = { ep, location, desc, open, scopes, operation, signal, onProgress: opts.onProgress };
          if (desc.size > chunkSize) await this.uploadChunked({ ...up, chunkSize });
          else await this.uploadMonolithic(up);
          return 'uploaded';
        } catch (err) {
          location = undefined;
          if (isAbort(err) || signal?.aborted || attempt >= this.retries || !isRetryableUploadError(err)) throw err;
          await this.backoff(attempt, undefined, signal);
        }
      }
    });
  }

  /** PUTs a manifest under ref's tag (or its digest when it has no tag); returns its digest. */
  async putManifest(ref: Reference, mediaType: string, bytes: Buffer, opts: RequestOptions = {}): Promise<Digest> {
    const name = formatReference(ref);
    const digest = ref.digest ? computeDigest(ref.digest, bytes) : sha256(bytes);
    if (ref.digest && digest !== ref.digest) {
      throw new BerthError('InvalidArgument', `push ${name}: the manifest has digest ${digest}, not the ${ref.digest} of the reference`);
    }
    const reference = ref.tag ?? ref.digest;
    if (reference === undefined) throw new BerthError('InvalidArgument', `push ${name}: a manifest needs a tag or a digest to be stored under`);
    const operation = `push ${name}`;
    return this.withEndpoints(ref, true, async (ep) => {
      const res = await this.exchange(ep, {
        method: 'PUT',
        target: `/v2/${ref.path}/manifests/${reference}`,
        headers: { 'content-type': mediaType },
        body: () => bytes,
        scopes: [repositoryScope(ref.path, ['pull', 'push'])],
        operation,
        signal: opts.signal,
      });
      const ctx = { operation, request: `PUT ${res.url.pathname}`, object: 'manifest' };
      if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await this.fail(res, ctx);
      discard(res);
      const said = header(res, 'docker-content-digest');
      if (said && isDigest(said) && said.split(':')[0] === digest.split(':')[0] && said !== digest) {
        throw new RegistryError('FailedPrecondition', `the registry stored the manifest as ${said}, but its content has digest ${digest} (${ctx.operation}, ${ctx.request})`);
      }
      return digest;
    });
  }

  // ---- one endpoint ------------------------------------------------------------------------

  private async headBlob(
    ep: RegistryEndpoint,
    ref: Reference,
    digest: Digest,
    scopes: readonly string[],
    operation: string,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    const res = await this.exchange(ep, { method: 'HEAD', target: `/v2/${ref.path}/blobs/${digest}`, scopes, operation, signal });
    discard(res);
    // A redirect means the registry has the blob and would send us to its storage, whose
    // pre-signed URLs are often valid for GET only.
    if (res.status === 200 || REDIRECT_STATUSES.has(res.status)) return true;
    throw await this.fail(res, { operation, request: `HEAD /v2/${ref.path}/blobs/${digest}`, object: `blob ${digest}` });
  }

  private async startUpload(ep: RegistryEndpoint, uploads: string, scopes: readonly string[], operation: string, signal?: AbortSignal): Promise<URL> {
    const res = await this.exchange(ep, { method: 'POST', target: uploads, scopes, operation, signal });
    if (res.status !== 202) throw await this.fail(res, { operation, request: `POST ${uploads}`, object: 'repository' });
    const location = uploadLocation(res, uploads, operation);
    discard(res);
    return location;
  }

  private async uploadMonolithic(up: UploadJob): Promise<void> {
    const url = withDigest(up.location, up.desc.digest);
    const res = await this.exchange(up.ep, {
      method: 'PUT',
      target: url,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(up.desc.size) },
      body: () => sizedSource(up.open(), up.desc, 0, up.onProgress),
      scopes: up.scopes,
      operation: up.operation,
      signal: up.signal,
      retry: false,
    });
    await this.finishUpload(res, up);
  }

  private async uploadChunked(up: UploadJob & { chunkSize: number }): Promise<void> {
    let location = up.location;
    let offset = 0;
    const source = sizedSource(up.open(), up.desc, 0);
    for await (const chunk of chunksOf(source, up.chunkSize)) {
      const res = await this.exchange(up.ep, {
        method: 'PATCH',
        target: location,
        headers: {
          'content-type': 'application/octet-stream',
          'content-range': `${offset}-${offset + chunk.length - 1}`,
        },
        body: () => chunk,
        scopes: up.scopes,
        operation: up.operation,
        signal: up.signal,
        retry: false,
      });
      if (res.status !== 202 && res.status !== 204) {
        throw await this.fail(res, { operation: up.operation, request: `PATCH ${location.pathname} (bytes ${offset}-${offset + chunk.length - 1})`, object: 'upload' });
      }
      location = uploadLocation(res, location.pathname, up.operation, location);
      discard(res);
      offset += chunk.length;
      up.onProgress?.(offset, up.desc.size);
    }
    const res = await this.exchange(up.ep, {
      method: 'PUT',
      target: withDigest(location, up.desc.digest),
      scopes: up.scopes,
      operation: up.operation,
      signal: up.signal,
    });
    await this.finishUpload(res, up);
  }

  private async finishUpload(res: HttpResponse, up: UploadJob): Promise<void> {
    const ctx = { operation: up.operation, request: `PUT ${res.url.pathname}?digest=${up.desc.digest}`, object: 'upload' };
    if (res.status !== 201 && res.status !== 204 && res.status !== 200) throw await this.fail(res, ctx);
    discard(res);
    const said = header(res, 'docker-content-digest');
    if (said && isDigest(said) && said !== up.desc.digest && said.split(':')[0] === up.desc.digest.split(':')[0]) {
      throw new RegistryError('FailedPrecondition', `the registry stored blob ${up.desc.digest} as ${said} (${ctx.operation}, ${ctx.request})`);
    }
  }

  /**
   * Sends one request to one endpoint with authentication, redirects and retries. Any final
   * status comes back to the caller, which knows which ones are success.
   */
  private async exchange(ep: RegistryEndpoint, ex: Exchange): Promise<HttpResponse> {
    const retries = ex.retry === false ? 0 : this.retries;
    for (let attempt = 0; ; attempt++) {
      let res: HttpResponse;
      try {
        res = await this.sendAuthenticated(ep, ex);
      } catch (err) {
        if (isAbort(err) || ex.signal?.aborted) throw err;
        if (err instanceof BerthError) {
          // The token service can be down for a moment too.
          if (attempt < retries && err instanceof RegistryError && isTransient(err)) {
            await this.backoff(attempt, undefined, ex.signal);
            continue;
          }
          throw err;
        }
        const url = typeof ex.target === 'string' ? `${ep.baseUrl}${ex.target}` : ex.target.href;
        const wrapped = connectionError(err, ep.baseUrl, { operation: ex.operation, request: `${ex.method} ${new URL(url).pathname}` });
        if (attempt >= retries || !isConnectionError(err)) throw wrapped;
        await this.backoff(attempt, undefined, ex.signal);
        continue;
      }
      if ((res.status >= 500 || res.status === 429) && attempt < retries) {
        const wait = retryAfterMs(header(res, 'retry-after'));
        discard(res);
        await this.backoff(attempt, wait, ex.signal);
        continue;
      }
      return res;
    }
  }

  private async sendAuthenticated(ep: RegistryEndpoint, ex: Exchange): Promise<HttpResponse> {
    const origin = new URL(ep.baseUrl).origin;
    const areq = { origin, scopes: ex.scopes, credential: this.credentials?.get(ep.domain), signal: ex.signal, operation: ex.operation };
    const first = await this.auth.authorization(areq);
    const res = await this.sendFollowing(ep, ex, first);
    // A 401 from storage we were redirected to is not the registry's challenge to answer.
    if (res.status !== 401 || res.url.origin !== origin) return res;
    if (!this.auth.recordChallenge(origin, header(res, 'www-authenticate'))) return res;
    if (first !== undefined) this.auth.invalidate(areq);
    const second = await this.auth.authorization(areq);
    // Basic credentials the registry already refused would be refused again.
    if (second === undefined || (second === first && second.startsWith('Basic '))) return res;
    discard(res);
    return this.sendFollowing(ep, ex, second);
  }

  private async sendFollowing(ep: RegistryEndpoint, ex: Exchange, authorization: string | undefined): Promise<HttpResponse> {
    const origin = new URL(ep.baseUrl).origin;
    let url = typeof ex.target === 'string' ? new URL(`${ep.baseUrl}${ex.target}`) : ex.target;
    let method = ex.method;
    let withBody = ex.body !== undefined;
    for (let hops = 0; ; hops++) {
      const headers: Record<string, string> = { ...ex.headers };
      // Credentials go to the registry only, never to the storage service it redirects to.
      if (authorization !== undefined && url.origin === origin) headers.authorization = authorization;
      if (!withBody) delete headers['content-length'];
      const res = await this.http.send({ method, url, headers, body: withBody ? ex.body!() : undefined, signal: ex.signal });
      const location = header(res, 'location');
      if (!ex.followRedirects || !REDIRECT_STATUSES.has(res.status) || !location) return res;
      discard(res);
      if (hops >= MAX_REDIRECTS) {
        throw new RegistryError('Unavailable', `more than ${MAX_REDIRECTS} redirects (${ex.operation}, ${ex.method} ${url.pathname})`, { tryNext: true });
      }
      const next = new URL(location, url);
      // Plain http only where the user allowed it, redirects included.
      if (next.protocol === 'http:' && !ep.insecure) {
        throw new RegistryError('FailedPrecondition', `refusing to follow a redirect to plain-http ${next.origin} (${ex.operation}, ${ex.method} ${url.pathname})`, {
          tryNext: true,
          hint: `add ${next.host} to the insecure registries if that is intended`,
        });
      }
      url = next;
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        method = method === 'HEAD' ? 'HEAD' : 'GET';
        withBody = false;
      }
    }
  }

  /** The error for a final status, with the registry's own message from the body. */
  private async fail(res: HttpResponse, ctx: ErrorContext): Promise<RegistryError> {
    const text = res.status === 401 || res.status >= 400 ? await readErrorText(res) : (discard(res), '');
    return statusError(res.status, text, ctx, header(res, 'retry-after'));
  }

  private async backoff(attempt: number, retryAfter: number | undefined, signal: AbortSignal | undefined): Promise<void> {
    const exp = Math.min(this.maxRetryDelayMs, this.retryDelayMs * 2 ** attempt);
    const jittered = exp / 2 + Math.random() * (exp / 2);
    const wait = retryAfter !== undefined ? Math.min(this.maxRetryDelayMs, Math.max(retryAfter, jittered)) : jittered;
    await sleep(wait, undefined, { signal });
  }

  /** Runs `fn` against each endpoint in turn until one succeeds or fails for good. */
  private async withEndpoints<T>(ref: Reference, push: boolean, fn: (ep: RegistryEndpoint) => Promise<T>): Promise<T> {
    const all = resolveEndpoints(ref.domain, this.hosts);
    const endpoints = push ? all.filter((e) => !e.mirror) : all;
    for (const [i, ep] of endpoints.entries()) {
      try {
        return await fn(ep);
      } catch (err) {
        if (i === endpoints.length - 1 || !shouldTryNext(err)) throw err;
      }
    }
    throw new Error(`no registry endpoint for ${ref.domain}`);
  }
}

interface UploadJob {
  ep: RegistryEndpoint;
  location: URL;
  desc: Descriptor;
  open: () => Readable;
  scopes: readonly string[];
  operation: string;
  signal?: AbortSignal;
  onProgress?(done: number, total: number): void;
}

function shouldTryNext(err: unknown): boolean {
  if (!(err instanceof RegistryError)) return false;
  if (err.tryNext) return true;
  if (err.status === undefined) return err.code === 'Unavailable';
  return err.status === 404 || err.status >= 500 || err.status === 429;
}

function isTransient(err: RegistryError): boolean {
  return err.code === 'Unavailable' && (err.status === undefined || err.status >= 500 || err.status === 429);
}

function isRetryableUploadError(err: unknown): boolean {
  if (!(err instanceof RegistryError)) return isConnectionError(err);
  if (err.status === undefined) return err.code === 'Unavailable';
  return err.status >= 500 || err.status === 429 || err.status === 404;
}

function contentType(res: HttpResponse): string {
  return (header(res, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
}

/** The media type of a manifest: the registry's Content-Type, else the document's own field. */
function manifestMediaType(type: string, bytes: Buffer, name: string): string {
  let doc: { mediaType?: unknown; schemaVersion?: unknown; manifests?: unknown; config?: unknown } | undefined;
  try {
    const parsed: unknown = JSON.parse(bytes.toString('utf8'));
    if (parsed && typeof parsed === 'object') doc = parsed as typeof doc;
  } catch {
    doc = undefined;
  }
  if (type === MediaType.dockerManifestV1 || type === MediaType.dockerManifestV1Signed || doc?.schemaVersion === 1) {
    throw new RegistryError('FailedPrecondition', `${name}: the registry only has a Docker schema 1 manifest, which berth does not support`, {
      hint: 'schema 1 is deprecated; push the image again with a current docker, podman or berth to convert it to schema 2',
    });
  }
  if (!doc) {
    throw new RegistryError('FailedPrecondition', `${name}: the manifest the registry sent is not JSON`, { tryNext: true });
  }
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (type && !SCHEMA1_TYPES.has(type) && type !== 'text/plain' && type !== 'application/octet-stream') return type;
  if (declared) return declared;
  // Neither says: OCI allows omitting mediaType, so go by the shape.
  if (Array.isArray(doc.manifests)) return MediaType.ociIndex;
  if (doc.config && typeof doc.config === 'object') return MediaType.ociManifest;
  throw new RegistryError('FailedPrecondition', `${name}: the registry sent a document that is neither a manifest nor an index (Content-Type "${type}")`);
}

function checkManifestDigest(bytes: Buffer, ref: Reference, said: string | undefined, ctx: ErrorContext): Digest {
  const where = `(${ctx.operation}, ${ctx.request})`;
  const mismatch = (actual: string, expected: string, source: string): RegistryError =>
    new RegistryError('FailedPrecondition', `manifest of ${formatReference(ref)}: the content has digest ${actual}, but ${source} ${expected} ${where}`, {
      tryNext: true,
      hint: 'the registry (or a proxy in between) serves corrupt data; try again or use another mirror',
    });
  if (ref.digest) {
    const actual = computeDigest(ref.digest, bytes);
    if (actual !== ref.digest) throw mismatch(actual, ref.digest, 'we asked for');
  }
  if (said && isDigest(said)) {
    const actual = computeDigest(said, bytes);
    if (actual !== said) throw mismatch(actual, said, 'the registry said (Docker-Content-Digest)');
  }
  return ref.digest ?? sha256(bytes);
}

function sha256(bytes: Buffer): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The digest of `bytes` with the algorithm of `like`. */
function computeDigest(like: Digest, bytes: Buffer): Digest {
  const { algorithm } = parseDigest(like);
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

function retryAfterMs(value: string | undefined): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function uploadLocation(res: HttpResponse, request: string, operation: string, base: URL = res.url): URL {
  const location = header(res, 'location');
  if (!location) {
    throw new RegistryError('Unavailable', `the registry accepted the upload without saying where to send it (no Location) (${operation}, ${request})`, {
      status: res.status,
    });
  }
  return new URL(location, base);
}

function withDigest(location: URL, digest: Digest): URL {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url;
}

/**
 * The body of a blob download with its length enforced: more bytes than the descriptor
 * allows, an early end or a broken connection become a clear error on the stream.
 */
function boundedBody(
  res: HttpResponse,
  o: { desc: Descriptor; start: number; hash?: ReturnType<typeof digestHasher>; where: string; idleTimeoutMs: number },
): Readable {
  const { desc, start, hash } = o;
  const expected = desc.size - start;
  let received = 0;
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      received += chunk.length;
      if (received > expected) {
        cb(new RegistryError('FailedPrecondition', `blob ${desc.digest}: the registry sent more than its ${desc.size} bytes (${o.where})`, {
          hint: 'the registry serves different content under this digest',
        }));
        return;
      }
      hash?.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (received < expected) {
        cb(new RegistryError('Unavailable', `blob ${desc.digest}: the download ended after ${start + received} of ${desc.size} bytes (${o.where})`));
        return;
      }
      if (hash) {
        const actual = `${desc.digest.split(':')[0]}:${hash.digest('hex')}`;
        if (actual !== desc.digest) {
          cb(new RegistryError('FailedPrecondition', `blob ${desc.digest}: the registry sent content with digest ${actual} (${o.where})`, {
            hint: 'the registry (or a proxy in between) serves corrupt data; try again or use another mirror',
          }));
          return;
        }
      }
      cb();
    },
  });
  const body = res.body;
  const broke = (err?: unknown): void => {
    if (out.destroyed) return;
    out.destroy(
      new RegistryError('Unavailable', `blob ${desc.digest}: the download broke off after ${start + received} of ${desc.size} bytes (${o.where})`, {
        cause: err,
        hint: 'the download can resume from there',
      }),
    );
  };
  // A registry that stops sending mid-blob would otherwise hang the pull forever.
  body.setTimeout(o.idleTimeoutMs, () => body.destroy(Object.assign(new Error(`no data for ${o.idleTimeoutMs} ms`), { code: 'ETIMEDOUT' })));
  body.once('error', broke);
  body.once('aborted', () => broke());
  body.once('close', () => {
    if (!body.complete) broke();
  });
  out.once('close', () => {
    if (!body.complete) body.destroy();
  });
  body.pipe(out);
  return out;
}

/** The push source with its size enforced, so a wrong descriptor fails here, not as a bad digest. */
function sizedSource(src: Readable, desc: Descriptor, start: number, onProgress?: (done: number, total: number) => void): Readable {
  let seen = start;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      seen += chunk.length;
      if (seen > desc.size) {
        cb(new BerthError('InvalidArgument', `blob ${desc.digest}: the content to push is longer than the ${desc.size} bytes of its descriptor`));
        return;
      }
      onProgress?.(seen, desc.size);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      cb(seen === desc.size ? null : new BerthError('InvalidArgument', `blob ${desc.digest}: the content to push has ${seen} bytes, its descriptor says ${desc.size}`));
    },
  });
  src.once('error', (err) => t.destroy(err));
  t.once('close', () => {
    if (!src.destroyed) src.destroy();
  });
  src.pipe(t);
  return t;
}

/** Re-cuts a stream into buffers of exactly `size` bytes (the last may be shorter). */
async function* chunksOf(src: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let length = 0;
  for await (const data of src as AsyncIterable<Buffer>) {
    let chunk = data;
    while (chunk.length > 0) {
      const take = Math.min(size - length, chunk.length);
      parts.push(chunk.subarray(0, take));
      length += take;
      chunk = chunk.subarray(take);
      if (length === size) {
        yield Buffer.concat(parts);
        parts = [];
        length = 0;
      }
    }
  }
  if (length > 0) yield Buffer.concat(parts);
}
