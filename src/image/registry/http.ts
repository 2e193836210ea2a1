// One HTTP exchange with node:http/https: no retries, no auth, no redirects (the client
// layers those on top, because each depends on registry semantics). Keep-alive agents let
// the many small requests of a pull (HEAD, token, manifest) share connections.
import http, { type IncomingMessage, type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { BerthError } from '../../errors.js';

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  /** A Buffer is sent with its length; a stream is piped (set content-length yourself). */
  body?: Buffer | Readable;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  url: URL;
  body: IncomingMessage;
}

export interface HttpTransportOptions {
  userAgent: string;
  /** Socket inactivity after which a request fails (and may be retried). */
  idleTimeoutMs: number;
}

export class HttpTransport {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 32 });

  constructor(private readonly opts: HttpTransportOptions) {}

  send(req: HttpRequest): Promise<HttpResponse> {
    const { url } = req;
    const secure = url.protocol === 'https:';
    if (!secure && url.protocol !== 'http:') {
      return Promise.reject(new BerthError('InvalidArgument', `${url.href}: unsupported URL scheme ${url.protocol}`));
    }
    const headers: Record<string, string> = { 'user-agent': this.opts.userAgent, ...req.headers };
    if (Buffer.isBuffer(req.body)) headers['content-length'] = String(req.body.length);
    else if (req.body === undefined && ['PUT', 'POST', 'PATCH'].includes(req.method)) headers['content-length'] = '0';
    return new Promise<HttpResponse>((resolve, reject) => {
      const mod = secure ? https : http;
      const r = mod.request(url, {
        method: req.method,
        headers,
        agent: secure ? this.httpsAgent : this.httpAgent,
        signal: req.signal,
      });
      r.setTimeout(this.opts.idleTimeoutMs, () => {
        r.destroy(Object.assign(new Error(`no data for ${this.opts.idleTimeoutMs} ms`), { code: 'ETIMEDOUT' }));
      });
      r.once('error', reject);
      r.once('response', (res) => {
        // After the headers, idle time is the body reader's business (it may be slow on purpose).
        r.setTimeout(0);
        res.once('error', () => undefined);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, url, body: res });
      });
      if (req.body === undefined) r.end();
      else if (Buffer.isBuffer(req.body)) r.end(req.body);
      else {
        const body = req.body;
        body.once('error', (err) => r.destroy(err));
        // A registry may answer (401, 413 …) and hang up before taking the whole body; the
        // source (often an open file) must not stay paused forever.
        r.once('close', () => {
          if (!body.readableEnded && !body.destroyed) body.destroy();
        });
        body.pipe(r);
      }
    });
  }

  get idleTimeoutMs(): number {
    return this.opts.idleTimeoutMs;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

/** The response body, refusing more than `limit` bytes (registry documents are small). */
export async function readBody(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    res.body.destroy();
    throw new BerthError('FailedPrecondition', `${what}: the registry sent ${declared} bytes, more than the ${limit} allowed`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) {
      res.body.destroy();
      throw new BerthError('FailedPrecondition', `${what}: the registry sent more than the ${limit} bytes allowed`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Reads a short error body without ever failing (it only decorates a message). */
export async function readErrorText(res: HttpResponse): Promise<string> {
  try {
    return (await readBody(res, 64 * 1024, 'error body')).toString('utf8');
  } catch {
    return '';
  }
}

/** Lets the connection go back to the pool without reading what nobody needs. */
export function discard(res: HttpResponse): void {
  if (res.body.complete) return;
  const declared = Number(res.headers['content-length']);
  // A short body is cheaper to read than a new connection; a long one is not.
  if (Number.isFinite(declared) && declared <= 64 * 1024) res.body.resume();
  else res.body.destroy();
}

export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(', ') : v;
}
