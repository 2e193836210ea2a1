// A programmable, in-process distribution-v2 registry for tests: manifests, blobs (with Range),
// uploads (monolithic, chunked, cross-repository mount), optional bearer or basic auth with
// its own token endpoint, and faults injected per request: wrong bytes, a connection dropped
// after N bytes, Range ignored, a status (429 with Retry-After, 500 …), a redirect to a second
// server. Every request is recorded so tests can check what the client did.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

export type FaultAction =
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** Sends the headers and the first `bytes` body bytes, then destroys the connection. */
  | { kind: 'drop-after'; bytes: number }
  /** Sends the headers and the first `bytes` body bytes, then nothing more (the connection stays open). */
  | { kind: 'stall-after'; bytes: number }
  /** Serves the content with its bytes flipped (same length). */
  | { kind: 'wrong-bytes' }
  /** Answers a Range request with 200 and the whole content. */
  | { kind: 'ignore-range' }
  /** 307 (or `status`) to the same path on the second ("storage") server. */
  | { kind: 'redirect'; status?: number };

export interface Fault {
  method?: string;
  /** Matches when the request path (without query) contains this string or matches this RegExp. */
  path?: string | RegExp;
  /** Which server: 'registry' (default), 'storage' (the redirect target) or 'token' (the token endpoint). */
  server?: 'registry' | 'storage' | 'token';
  /** How many matching requests it applies to (default 1). */
  times?: number;
  action: FaultAction;
}

export interface RecordedRequest {
  server: 'registry' | 'storage' | 'token';
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

export type FakeAuth =
  | {
      scheme: 'bearer';
      users?: Record<string, string>;
      /** Refresh tokens the OAuth2 POST grant accepts (token → user). */
      identityTokens?: Record<string, string>;
      expiresIn?: number;
      /** Anonymous token requests get pull access (default false: no access at all). */
      anonymousPull?: boolean;
      /** Which field the token comes in (default 'token'). */
      tokenField?: 'token' | 'access_token';
    }
  | { scheme: 'basic'; users: Record<string, string> };

export interface FakeRegistryOptions {
  auth?: FakeAuth;
}

interface Upload {
  repo: string;
  data: Buffer[];
  size: number;
}

interface IssuedToken {
  user: string;
  scopes: Set<string>;
  expiresAt: number;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export class FakeRegistry {
  readonly requests: RecordedRequest[] = [];
  readonly faults: Fault[] = [];
  private readonly blobs = new Map<string, Map<string, Buffer>>(); // repo → digest → bytes
  private readonly manifests = new Map<string, Map<string, { mediaType: string; bytes: Buffer }>>();
  private readonly uploads = new Map<string, Upload>();
  private readonly tokens = new Map<string, IssuedToken>();
  private registry!: http.Server;
  private storage!: http.Server;
  /** host:port of the registry. */
  host = '';
  /** host:port of the second server that redirects point to. */
  storageHost = '';
  tokenRequests = 0;

  private constructor(private readonly opts: FakeRegistryOptions) {}

  static async start(opts: FakeRegistryOptions = {}): Promise<FakeRegistry> {
    const r = new FakeRegistry(opts);
    r.registry = http.createServer((req, res) => r.handle('registry', req, res));
    r.storage = http.createServer((req, res) => r.handle('storage', req, res));
    r.host = await listen(r.registry);
    r.storageHost = await listen(r.storage);
    return r;
  }

  async stop(): Promise<void> {
    for (const s of [this.registry, this.storage]) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }

  inject(fault: Fault): void {
    this.faults.push({ times: 1, ...fault });
  }

  putBlob(repo: string, data: Buffer | string): { digest: string; size: number } {
    const bytes = Buffer.from(data);
    const digest = sha256(bytes);
    this.repoBlobs(repo).set(digest, bytes);
    return { digest, size: bytes.length };
  }

  hasBlob(repo: string, digest: string): boolean {
    return this.repoBlobs(repo).has(digest);
  }

  /** Stores a manifest under its digest and, when given, a tag. */
  putManifest(repo: string, mediaType: string, bytes: Buffer | string, tag?: string): string {
    const b = Buffer.from(bytes);
    const digest = sha256(b);
    const m = this.repoManifests(repo);
    m.set(digest, { mediaType, bytes: b });
    if (tag) m.set(tag, { mediaType, bytes: b });
    return digest;
  }

  getManifest(repo: string, reference: string): { mediaType: string; bytes: Buffer } | undefined {
    return this.repoManifests(repo).get(reference);
  }

  count(filter: { method?: string; path?: string | RegExp; server?: RecordedRequest['server'] }): number {
    return this.requests.filter((r) => matches(r, filter)).length;
  }

  private repoBlobs(repo: string): Map<string, Buffer> {
    let m = this.blobs.get(repo);
    if (!m) this.blobs.set(repo, (m = new Map()));
    return m;
  }

  private repoManifests(repo: string): Map<string, { mediaType: string; bytes: Buffer }> {
    let m = this.manifests.get(repo);
    if (!m) this.manifests.set(repo, (m = new Map()));
    return m;
  }

  private takeFault(server: 'registry' | 'storage' | 'token', method: string, path: string): FaultAction | undefined {
    for (const f of this.faults) {
      if ((f.times ?? 1) <= 0) continue;
      if ((f.server ?? 'registry') !== server) continue;
      if (!matches({ method, url: path, server }, f)) continue;
      f.times = (f.times ?? 1) - 1;
      return f.action;
    }
    return undefined;
  }

  private async handle(server: 'registry' | 'storage', req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const body = await readAll(req);
    if (server === 'registry' && url.pathname === '/token') {
      this.requests.push({ server: 'token', method, url: req.url ?? '', headers: req.headers });
      const fault = this.takeFault('token', method, url.pathname);
      if (fault?.kind === 'status') {
        this.tokenRequests++;
        return sendJson(res, fault.status, fault.body ?? '{"details":"injected"}', fault.headers);
      }
      this.handleToken(req, url, body, res);
      return;
    }
    this.requests.push({ server, method, url: req.url ?? '', headers: req.headers });
    const route = /^\/v2\/(.+)\/(manifests|blobs|blobs\/uploads)\/(.*)$/.exec(url.pathname);
    if (server === 'registry') {
      // Faults hit authorised requests, as they would on a real registry behind its auth.
      const push = !['GET', 'HEAD'].includes(method);
      const scope = route ? `repository:${route[1]}:${push ? 'push' : 'pull'}` : undefined;
      if (!this.authorize(req, res, scope)) return;
    }
    const fault = this.takeFault(server, method, url.pathname);
    if (fault?.kind === 'status') {
      sendJson(res, fault.status, fault.body ?? JSON.stringify({ errors: [{ code: 'INJECTED', message: `injected status ${fault.status}` }] }), fault.headers);
      return;
    }
    if (fault?.kind === 'redirect') {
      res.writeHead(fault.status ?? 307, { location: `http://${this.storageHost}${url.pathname}${url.search}`, 'content-length': '0' });
      res.end();
      return;
    }
    if (server === 'storage') {
      // The storage server trusts whoever the registry sent (as S3 pre-signed URLs do).
      const m = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url.pathname);
      const data = m ? this.findBlob(m[1]!) : undefined;
      if (!data) return sendJson(res, 404, JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to storage' }] }));
      return serveContent(req, res, data, 'application/octet-stream', fault);
    }
    if (url.pathname === '/v2/' || url.pathname === '/v2') return sendJson(res, 200, '{}');
    if (!route) return sendJson(res, 404, JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'no such route' }] }));
    const [, repo, kind, rest] = route as unknown as [string, string, string, string];

    if (kind === 'manifests') {
      if (method === 'PUT') {
        const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!;
        const digest = this.putManifest(repo, mediaType, body, rest.startsWith('sha256:') ? undefined : rest);
        res.writeHead(201, { 'docker-content-digest': digest, location: `/v2/${repo}/manifests/${digest}`, 'content-length': '0' });
        res.end();
        return;
      }
      const m = this.repoManifests(repo).get(rest);
      if (!m) return sendJson(res, 404, JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: { Tag: rest } }] }));
      res.setHeader('docker-content-digest', sha256(m.bytes));
      return serveContent(req, res, m.bytes, m.mediaType, fault);
    }

    if (kind === 'blobs' && /^sha256:[a-f0-9]{64}$/.test(rest)) {
      const data = this.repoBlobs(repo).get(rest);
      if (!data) return sendJson(res, 404, JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry', detail: rest }] }));
      res.setHeader('docker-content-digest', rest);
      return serveContent(req, res, data, 'application/octet-stream', fault);
    }

    if (kind === 'blobs/uploads' || (kind === 'blobs' && rest.startsWith('uploads'))) {
      const id = kind === 'blobs/uploads' ? rest : rest.replace(/^uploads\/?/, '');
      return this.handleUpload(req, res, { repo, id, url, body });
    }
    sendJson(res, 404, JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'unknown route' }] }));
  }

  private findBlob(digest: string): Buffer | undefined {
    for (const m of this.blobs.values()) {
      const b = m.get(digest);
      if (b) return b;
    }
    return undefined;
  }

  private handleUpload(req: IncomingMessage, res: ServerResponse, o: { repo: string; id: string; url: URL; body: Buffer }): void {
    const { repo, id, url, body } = o;
    const method = req.method ?? 'GET';
    if (method === 'POST' && id === '') {
      const mount = url.searchParams.get('mount');
      const from = url.searchParams.get('from');
      if (mount && from && this.repoBlobs(from).has(mount)) {
        this.repoBlobs(repo).set(mount, this.repoBlobs(from).get(mount)!);
        res.writeHead(201, { location: `/v2/${repo}/blobs/${mount}`, 'docker-content-digest': mount, 'content-length': '0' });
        res.end();
        return;
      }
      const uuid = randomBytes(8).toString('hex');
      this.uploads.set(uuid, { repo, data: [], size: 0 });
      res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${uuid}?_state=${uuid}`, range: '0-0', 'content-length': '0', 'docker-upload-uuid': uuid });
      res.end();
      return;
    }
    const upload = this.uploads.get(id);
    if (!upload || upload.repo !== repo) return sendJson(res, 404, JSON.stringify({ errors: [{ code: 'BLOB_UPLOAD_UNKNOWN', message: 'blob upload unknown' }] }));
    if (method === 'PATCH') {
      const range = /^(\d+)-(\d+)$/.exec(String(req.headers['content-range'] ?? ''));
      if (range && Number(range[1]) !== upload.size) {
        res.writeHead(416, { 'content-length': '0' });
        res.end();
        return;
      }
      upload.data.push(body);
      upload.size += body.length;
      res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${id}?_state=${upload.size}`, range: `0-${upload.size - 1}`, 'content-length': '0' });
      res.end();
      return;
    }
    if (method === 'PUT') {
      if (body.length) {
        upload.data.push(body);
        upload.size += body.length;
      }
      const digest = url.searchParams.get('digest') ?? '';
      const all = Buffer.concat(upload.data);
      this.uploads.delete(id);
      if (sha256(all) !== digest) {
        return sendJson(res, 400, JSON.stringify({ errors: [{ code: 'DIGEST_INVALID', message: 'provided digest did not match uploaded content' }] }));
      }
      this.repoBlobs(repo).set(digest, all);
      res.writeHead(201, { location: `/v2/${repo}/blobs/${digest}`, 'docker-content-digest': digest, 'content-length': '0' });
      res.end();
      return;
    }
    if (method === 'GET') {
      res.writeHead(204, { range: `0-${Math.max(0, upload.size - 1)}`, location: `/v2/${repo}/blobs/uploads/${id}` });
      res.end();
      return;
    }
    sendJson(res, 405, JSON.stringify({ errors: [{ code: 'UNSUPPORTED', message: 'unsupported' }] }));
  }

  /** True when the request may go on; otherwise it has answered 401. */
  private authorize(req: IncomingMessage, res: ServerResponse, scope: string | undefined): boolean {
    const auth = this.opts.auth;
    if (!auth) return true;
    const given = String(req.headers.authorization ?? '');
    if (auth.scheme === 'basic') {
      const user = checkBasic(given, auth.users);
      if (user) return true;
      sendJson(res, 401, JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }), {
        'www-authenticate': 'Basic realm="fake, with a comma"',
      });
      return false;
    }
    const token = given.startsWith('Bearer ') ? this.tokens.get(given.slice(7)) : undefined;
    const scopeOk = (t: IssuedToken): boolean => {
      if (scope === undefined) return true;
      const [, name, action] = /^repository:(.+):(\w+)$/.exec(scope)!;
      return t.scopes.has(`repository:${name}:${action}`);
    };
    if (token && token.expiresAt > Date.now() && scopeOk(token)) return true;
    const challenge = [`Bearer realm="http://${this.host}/token"`, 'service="fake-registry"'];
    if (scope) challenge.push(`scope="${scope.replace(/:push$/, ':pull,push')}"`);
    sendJson(res, 401, JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail: scope ?? null }] }), {
      'www-authenticate': challenge.join(','),
    });
    return false;
  }

  private handleToken(req: IncomingMessage, url: URL, body: Buffer, res: ServerResponse): void {
    this.tokenRequests++;
    const auth = this.opts.auth;
    if (!auth || auth.scheme !== 'bearer') return sendJson(res, 404, '{}');
    let user = '';
    let scopes: string[];
    let fromRefresh = false;
    if (req.method === 'POST') {
      const form = new URLSearchParams(body.toString());
      scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      if (form.get('grant_type') === 'refresh_token') {
        user = auth.identityTokens?.[form.get('refresh_token') ?? ''] ?? '';
        if (!user) return sendJson(res, 401, JSON.stringify({ error: 'invalid_grant', error_description: 'unknown refresh token' }));
        fromRefresh = true;
      } else if (form.get('grant_type') === 'password') {
        const u = form.get('username') ?? '';
        if (auth.users?.[u] === undefined || auth.users[u] !== form.get('password')) {
          return sendJson(res, 401, JSON.stringify({ error: 'invalid_grant', error_description: 'incorrect username or password' }));
        }
        user = u;
      } else {
        return sendJson(res, 400, JSON.stringify({ error: 'unsupported_grant_type' }));
      }
    } else {
      scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      const given = String(req.headers.authorization ?? '');
      if (given) {
        const u = checkBasic(given, auth.users ?? {});
        if (!u) return sendJson(res, 401, JSON.stringify({ details: 'incorrect username or password' }));
        user = u;
      }
    }
    const granted = new Set<string>();
    for (const s of scopes) {
      const m = /^repository:(.+):([\w,]+)$/.exec(s);
      if (!m) continue;
      for (const action of m[2]!.split(',')) {
        if (user || (auth.anonymousPull && action === 'pull')) granted.add(`repository:${m[1]}:${action}`);
      }
    }
    const value = randomBytes(16).toString('hex');
    const expiresIn = auth.expiresIn ?? 300;
    this.tokens.set(value, { user, scopes: granted, expiresAt: Date.now() + expiresIn * 1000 });
    const field = fromRefresh ? 'access_token' : (auth.tokenField ?? 'token');
    sendJson(res, 200, JSON.stringify({ [field]: value, expires_in: expiresIn, issued_at: new Date().toISOString() }));
  }
}

function matches(r: { method?: string; url: string; server?: string }, f: { method?: string; path?: string | RegExp; server?: string }): boolean {
  if (f.method && f.method !== r.method) return false;
  if (f.server && r.server && f.server !== r.server) return false;
  const path = r.url.split('?')[0]!;
  if (f.path === undefined) return true;
  return typeof f.path === 'string' ? path.includes(f.path) : f.path.test(path);
}

function checkBasic(header: string, users: Record<string, string>): string | undefined {
  if (!header.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = decoded.slice(0, colon);
  return colon > 0 && users[user] !== undefined && users[user] === decoded.slice(colon + 1) ? user : undefined;
}

function serveContent(req: IncomingMessage, res: ServerResponse, original: Buffer, type: string, fault: FaultAction | undefined): void {
  const data = fault?.kind === 'wrong-bytes' ? Buffer.from(original.map((b) => b ^ 0xff)) : original;
  let start = 0;
  let status = 200;
  const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
  if (range && fault?.kind !== 'ignore-range') {
    start = Number(range[1]);
    if (start >= data.length) {
      res.writeHead(416, { 'content-range': `bytes */${data.length}`, 'content-length': '0' });
      res.end();
      return;
    }
    status = 206;
    res.setHeader('content-range', `bytes ${start}-${data.length - 1}/${data.length}`);
  }
  const body = data.subarray(start);
  res.writeHead(status, { 'content-type': type, 'content-length': String(body.length), 'accept-ranges': 'bytes' });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  if (fault?.kind === 'stall-after') {
    res.write(body.subarray(0, fault.bytes));
    return;
  }
  if (fault?.kind === 'drop-after') {
    res.write(body.subarray(0, fault.bytes), () => {
      // Let the bytes reach the client before the connection goes away.
      setTimeout(() => res.socket?.destroy(), 20);
    });
    return;
  }
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}
