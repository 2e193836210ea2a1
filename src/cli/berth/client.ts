// A plain HTTP client of berthd's Docker Engine API over its unix socket: JSON calls,
// streamed bodies, and hijacked (101 UPGRADED) connections for attach and exec.
//
// The calls a container start makes (create, attach, wait, start: json(), call(), pending(),
// hijack()) speak HTTP/1.1 by hand over one connection each: a CLI process runs each of them
// once, and node:http costs ~12 ms of CPU per process in loading and first-run code for them.
// Streamed bodies (pull, logs, events, cp...) go through node:http, loaded when first used.
import { createRequire } from 'node:module';
import { createConnection, type Socket } from 'node:net';
import type { Agent, IncomingMessage } from 'node:http';
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

/** A whole body. Events rather than `for await`: a stream's async iterator costs ~3 ms to set up the first time. */
export function readAll(res: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.once('end', () => resolve(Buffer.concat(chunks)));
    res.once('error', reject);
    res.once('close', () => reject(new Error('the connection to berthd closed before the end of its answer')));
  });
}

/** Reason phrases (RFC 9110) for an error answer without a body of its own. */
const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function errorMessage(status: number, body: Buffer, reason?: string): string {
  const text = body.toString('utf8').trim();
  try {
    const j = JSON.parse(text) as { message?: unknown };
    if (typeof j.message === 'string') return j.message;
  } catch {
    // not JSON: the text itself is the message
  }
  return text || `${status} ${reason || REASONS[status] || ''}`.trim();
}

/** Status line and headers of an answer (header names in lower case). */
interface ResponseHead {
  status: number;
  reason: string;
  headers: Map<string, string>;
}

/** What an exchange answers: its head, and its body as it completes. */
export interface PendingResponse {
  status: number;
  body: Promise<Buffer>;
}

const MAX_HEAD_BYTES = 64 * 1024;

function protocolError(what: string): DaemonError {
  return new DaemonError(0, `berthd sent a malformed HTTP answer (${what})`);
}

function parseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (!m) throw protocolError(`status line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw protocolError(`header line ${JSON.stringify(line.slice(0, 80))}`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(m[1]), reason: m[2] ?? '', headers };
}

/** A chunked body, whole (the connection has ended). */
function decodeChunked(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let off = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', off);
    if (eol < 0) throw protocolError('chunk size line cut short');
    const size = parseInt(data.toString('latin1', off, eol).split(';')[0]!, 16);
    if (!Number.isInteger(size) || size < 0) throw protocolError('chunk size');
    if (size === 0) return Buffer.concat(parts);
    if (eol + 2 + size > data.length) throw protocolError('chunk cut short');
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    off = eol + 2 + size + 2;
  }
}

interface ExchangeRequest {
  socketPath: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  payload?: Buffer;
  upgrade: boolean;
  /** Told of the connection, so that the client can close what is still open when it is done. */
  track(conn: Socket): void;
}

/**
 * One request on a connection of its own (`Connection: close`, so the answer ends with the
 * connection). Resolves at the head, with the body still arriving; an upgrade resolves with
 * the connection itself, the bytes after the head left unread on it.
 */
function exchange(r: ExchangeRequest): Promise<{ head: ResponseHead; body: Promise<Buffer> } | { head: ResponseHead; conn: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path: r.socketPath });
    r.track(socket);
    let lines = `${r.method} ${r.path} HTTP/1.1\r\nHost: berth\r\n`;
    for (const [k, v] of Object.entries(r.headers)) lines += `${k}: ${v}\r\n`;
    if (r.upgrade) lines += 'Connection: Upgrade\r\nUpgrade: tcp\r\n';
    else lines += 'Connection: close\r\n';
    if (r.payload) lines += `Content-Length: ${r.payload.length}\r\n`;
    lines += '\r\n';
    socket.write(r.payload ? Buffer.concat([Buffer.from(lines, 'latin1'), r.payload]) : Buffer.from(lines, 'latin1'));

    let buf: Buffer = Buffer.alloc(0);
    let head: ResponseHead | undefined;
    let finishBody: ((err?: Error) => void) | undefined;
    const failEarly = (err: Error): void => {
      socket.destroy();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (head) {
        finishBody?.();
        return;
      }
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > MAX_HEAD_BYTES) failEarly(protocolError('head too long'));
        return;
      }
      try {
        head = parseHead(buf.toString('latin1', 0, end));
      } catch (err) {
        failEarly(err as Error);
        return;
      }
      buf = buf.subarray(end + 4);
      if (r.upgrade && head.status === 101) {
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('error', onError);
        // Until the caller listens, an error shows up as the close it is followed by.
        socket.on('error', () => undefined);
        // Back to "no consumer yet": the caller's 'data' listener starts the flow, and
        // nothing arrives in between unseen. This is what node:http does on upgrade.
        (socket as { readableFlowing: boolean | null }).readableFlowing = null;
        if (buf.length) socket.unshift(buf);
        resolve({ head, conn: socket });
        return;
      }
      resolve({ head, body: readBody(head) });
      finishBody?.();
    };
    const readBody = (h: ResponseHead): Promise<Buffer> => {
      const length = h.headers.get('content-length');
      const chunked = /chunked/i.test(h.headers.get('transfer-encoding') ?? '');
      const empty = h.status === 204 || h.status === 304 || h.status < 200 || r.method === 'HEAD';
      return new Promise<Buffer>((res, rej) => {
        finishBody = (err?: Error): void => {
          if (err) {
            rej(err);
            return;
          }
          if (empty) return res(Buffer.alloc(0));
          if (!chunked && length !== undefined && buf.length >= Number(length)) return res(buf.subarray(0, Number(length)));
          if (!ended) return;
          if (chunked) {
            try {
              res(decodeChunked(buf));
            } catch (e) {
              rej(e as Error);
            }
          } else if (length !== undefined) rej(protocolError(`body cut short: ${buf.length} of ${length} bytes`));
          else res(buf);
        };
      }).finally(() => socket.destroy());
    };
    let ended = false;
    const onEnd = (): void => {
      ended = true;
      if (!head) failEarly(new DaemonError(0, `berthd closed the connection without answering ${r.method} ${r.path}`));
      else finishBody?.();
    };
    const onError = (err: Error): void => {
      if (!head) failEarly(err);
      else finishBody?.(err);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
  });
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
  private agent?: Agent;
  /** Connections of json/call/pending/hijack not yet closed (a wait whose answer never came). */
  private readonly conns = new Set<Socket>();

  constructor(opts: ClientOptions) {
    this.socketPath = opts.socketPath;
    this.onUnreachable = opts.onUnreachable;
  }

  /** Sends a request through node:http; resolves with the (streamed) response once its status is below 400. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<IncomingMessage> {
    return this.reachable(() => this.sendStreamed(method, path, opts));
  }

  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const body = await (await this.pending(method, path, opts)).body;
    if (body.length === 0) return undefined as T;
    return JSON.parse(body.toString('utf8')) as T;
  }

  /** A request whose answer does not matter beyond its status (body drained). */
  async call(method: string, path: string, opts: RequestOptions = {}): Promise<number> {
    const res = await this.pending(method, path, opts);
    await res.body;
    return res.status;
  }

  /**
   * Resolves once the status line and headers are in (status below 400), the body still to
   * come: a wait sent before a start is answered at once and finished at the exit.
   */
  async pending(method: string, path: string, opts: RequestOptions = {}): Promise<PendingResponse> {
    // A streamed request body or an abort signal: node:http does those.
    if (opts.raw !== undefined || opts.signal !== undefined) {
      const res = await this.request(method, path, opts);
      return { status: res.statusCode ?? 0, body: readAll(res) };
    }
    const r = await this.reachable(() => exchange(this.exchangeRequest(method, path, opts, false)));
    if (!('body' in r)) throw new Error('unreachable: an upgrade answer to a plain request');
    if (r.head.status >= 400) throw new DaemonError(r.head.status, errorMessage(r.head.status, await r.body, r.head.reason));
    r.body.catch(() => undefined);
    return { status: r.head.status, body: r.body };
  }

  /** POST with `Upgrade: tcp`; resolves with the raw connection after `101 UPGRADED`. */
  async hijack(path: string, opts: Pick<RequestOptions, 'query' | 'body' | 'headers'> = {}): Promise<Duplex> {
    const r = await this.reachable(() => exchange(this.exchangeRequest('POST', path, opts, true)));
    if ('conn' in r) return r.conn;
    const body = await r.body;
    if (r.head.status >= 400) throw new DaemonError(r.head.status, errorMessage(r.head.status, body, r.head.reason));
    // The docker CLI refuses an attach that was not upgraded; so do we.
    throw new DaemonError(r.head.status, `the daemon answered ${r.head.status} instead of 101 UPGRADED to POST ${path}`);
  }

  close(): void {
    this.agent?.destroy();
    for (const c of this.conns) c.destroy();
  }

  private exchangeRequest(method: string, path: string, opts: RequestOptions, upgrade: boolean): ExchangeRequest {
    const headers: Record<string, string> = { ...opts.headers };
    let payload: Buffer | undefined;
    if (opts.body !== undefined) {
      payload = Buffer.from(JSON.stringify(opts.body));
      headers['Content-Type'] = 'application/json';
    }
    const track = (conn: Socket): void => {
      this.conns.add(conn);
      conn.once('close', () => this.conns.delete(conn));
    };
    return { socketPath: this.socketPath, method, path: path + buildQuery(opts.query), headers, payload, upgrade, track };
  }

  /** Runs a send; when nothing listens, starts berthd once (if allowed) and sends again. */
  private async reachable<T>(send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      if (!isConnectFailure(err)) throw err;
      if (this.onUnreachable && !this.startAttempted) {
        this.startAttempted = true;
        await this.onUnreachable();
        return send();
      }
      throw new ConnectError(`Cannot connect to berthd at unix://${this.socketPath}. Is berthd running?`, { cause: err });
    }
  }

  private async sendStreamed(method: string, path: string, opts: RequestOptions): Promise<IncomingMessage> {
    // require, not import(): the CLI bundle runs in a vm.Script, which has no import() of its own.
    const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');
    this.agent ??= new http.Agent({ keepAlive: true });
    const agent = this.agent;
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
      const options: import('node:http').RequestOptions & { servername: string } = {
        socketPath: this.socketPath,
        method,
        path: path + buildQuery(opts.query),
        headers,
        agent,
        signal: opts.signal,
        // Named, so that Node's agent does not work out a TLS server name from the host: that
        // tests it with the IPv6 regular expression, whose first use costs ~10 ms.
        servername: 'berth',
      };
      const req = http.request(options);
      req.once('error', reject);
      req.once('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 400) {
          readAll(res).then((body) => reject(new DaemonError(status, errorMessage(status, body, res.statusMessage))), reject);
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
