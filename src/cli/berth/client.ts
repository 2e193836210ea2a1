// A plain HTTP client of berthd's Docker Engine API over its unix socket: JSON calls,
// streamed bodies, and hijacked (101 UPGRADED) connections for attach and exec.
import http from 'node:http';
import type { Duplex, Readable } from 'node:stream';

export const DEFAULT_SOCKET = '/run/berth/berth.sock';

export type QueryValue = string | number | boolean | string[] | undefined | null;

export interface RequestOptions {
  query?: Record<string, QueryValue>;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as is (a tar stream, say) with `contentType`. */
  raw?: Readable | Buffer;
  contentType?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** The daemon answered with an error status; `message` is its own text. */
export class DaemonError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'DaemonError';
    this.status = status;
  }
}

/** Nothing listens on the socket. */
export class ConnectError extends Error {
  readonly hint?: string;
  constructor(message: string, opts: { cause?: unknown; hint?: string } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ConnectError';
    this.hint = opts.hint;
  }
}

export function buildQuery(query: Record<string, QueryValue> | undefined): string {
  if (!query) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null) continue;
    const values = Array.isArray(v) ? v : [typeof v === 'boolean' ? (v ? '1' : '0') : String(v)];
    for (const one of values) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(one)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

/** Docker's filter flags (`-f status=running -f label=a`) as the API's filters JSON. */
export function filtersJson(filters: string[]): string | undefined {
  if (filters.length === 0) return undefined;
  const out: Record<string, string[]> = {};
  for (const f of filters) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw new FilterError(f);
    (out[f.slice(0, eq).trim().toLowerCase()] ??= []).push(f.slice(eq + 1));
  }
  return JSON.stringify(out);
}

export class FilterError extends Error {
  constructor(filter: string) {
    super(`bad format of filter (expected name=value): "${filter}"`);
    this.name = 'FilterError';
  }
}

function isConnectFailure(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ENOTSOCK';
}

async function readAll(res: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function errorMessage(status: number, body: Buffer): string {
  const text = body.toString('utf8').trim();
  try {
    const j = JSON.parse(text) as { message?: unknown };
    if (typeof j.message === 'string') return j.message;
  } catch {
    // not JSON: the text itself is the message
  }
  return text || `${status} ${http.STATUS_CODES[status] ?? ''}`.trim();
}

export interface ClientOptions {
  socketPath: string;
  /** Called once when nothing listens on the socket; resolves when it does (or throws). */
  onUnreachable?: () => Promise<void>;
}

export class Client {
  readonly socketPath: string;
  private readonly onUnreachable?: () => Promise<void>;
  private startAttempted = false;
  private readonly agent = new http.Agent({ keepAlive: true });

  constructor(opts: ClientOptions) {
    this.socketPath = opts.socketPath;
    this.onUnreachable = opts.onUnreachable;
  }

  /** Sends a request; resolves with the response once its status is below 400. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<http.IncomingMessage> {
    const res = await this.send(method, path, opts, false);
    return res as http.IncomingMessage;
  }

  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, opts);
    const body = await readAll(res);
    if (body.length === 0) return undefined as T;
    return JSON.parse(body.toString('utf8')) as T;
  }

  /** A request whose answer does not matter beyond its status (body drained). */
  async call(method: string, path: string, opts: RequestOptions = {}): Promise<number> {
    const res = await this.request(method, path, opts);
    res.resume();
    await new Promise<void>((resolve) => res.once('end', resolve).once('close', resolve));
    return res.statusCode ?? 0;
  }

  /** POST with `Upgrade: tcp`; resolves with the raw connection after `101 UPGRADED`. */
  async hijack(path: string, opts: RequestOptions = {}): Promise<Duplex> {
    const conn = await this.send('POST', path, opts, true);
    return conn as Duplex;
  }

  close(): void {
    this.agent.destroy();
  }

  private async send(method: string, path: string, opts: RequestOptions, upgrade: boolean): Promise<http.IncomingMessage | Duplex> {
    try {
      return await this.sendOnce(method, path, opts, upgrade);
    } catch (err) {
      if (!isConnectFailure(err)) throw err;
      if (this.onUnreachable && !this.startAttempted) {
        this.startAttempted = true;
        await this.onUnreachable();
        return this.sendOnce(method, path, opts, upgrade);
      }
      throw new ConnectError(`Cannot connect to berthd at unix://${this.socketPath}. Is berthd running?`, { cause: err });
    }
  }

  private sendOnce(method: string, path: string, opts: RequestOptions, upgrade: boolean): Promise<http.IncomingMessage | Duplex> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { Host: 'berth', ...opts.headers };
      let payload: Buffer | Readable | undefined;
      if (opts.body !== undefined) {
        payload = Buffer.from(JSON.stringify(opts.body));
        headers['Content-Type'] = 'application/json';
      } else if (opts.raw) {
        payload = opts.raw;
        headers['Content-Type'] = opts.contentType ?? 'application/x-tar';
      }
      if (Buffer.isBuffer(payload)) headers['Content-Length'] = String(payload.length);
      if (upgrade) {
        headers.Connection = 'Upgrade';
        headers.Upgrade = 'tcp';
      }
      const req = http.request({
        socketPath: this.socketPath,
        method,
        path: path + buildQuery(opts.query),
        headers,
        agent: upgrade ? false : this.agent,
        signal: opts.signal,
      });
      req.once('error', reject);
      req.once('upgrade', (res, socket, head) => {
        if (res.statusCode !== 101) {
          socket.destroy();
          reject(new DaemonError(res.statusCode ?? 0, `unexpected status ${res.statusCode} for an upgraded connection`));
          return;
        }
        if (head.length) socket.unshift(head);
        resolve(socket);
      });
      req.once('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 400) {
          readAll(res).then((body) => reject(new DaemonError(status, errorMessage(status, body))), reject);
          return;
        }
        if (upgrade) {
          // The docker CLI refuses an attach that was not upgraded; so do we.
          res.resume();
          reject(new DaemonError(status, `the daemon answered ${status} instead of 101 UPGRADED to ${method} ${path}`));
          return;
        }
        resolve(res);
      });
      if (payload === undefined || Buffer.isBuffer(payload)) req.end(payload);
      else {
        payload.once('error', (e) => req.destroy(e));
        payload.pipe(req);
      }
    });
  }
}

/** The lines of a newline-delimited stream, without empty ones. */
export async function* textLines(res: Readable): AsyncGenerator<string> {
  let buf = '';
  for await (const chunk of res) {
    buf += (chunk as Buffer).toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield line;
    }
  }
  if (buf.trim()) yield buf.trim();
}

/** Reads a newline-delimited JSON stream (pull, push, load, events, stats) message by message. */
export async function* jsonLines<T>(res: Readable): AsyncGenerator<T> {
  for await (const line of textLines(res)) yield JSON.parse(line) as T;
}
