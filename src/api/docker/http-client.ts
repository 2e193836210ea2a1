// A minimal client for the API's tests: HTTP over the unix socket, and raw sockets for the
// hijacked endpoints and for watching when a status line arrives.
import http from 'node:http';
import net from 'node:net';

export interface ClientResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json<T = unknown>(): T;
}

export function request(
  socketPath: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path, headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: <T>() => JSON.parse(body.toString()) as T });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A raw connection: write bytes, then read until a predicate holds or the server closes. */
export class RawConnection {
  readonly socket: net.Socket;
  data = Buffer.alloc(0);
  ended = false;
  private waiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  static open(socketPath: string): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ path: socketPath, allowHalfOpen: true });
      s.once('connect', () => resolve(new RawConnection(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves when `pred(data)` holds; rejects if the connection ends first. */
  async until(pred: (data: Buffer) => boolean, what = 'expected data'): Promise<void> {
    while (!pred(this.data)) {
      if (this.ended) throw new Error(`connection ended before ${what}; got ${JSON.stringify(this.data.toString('latin1'))}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  async untilEnd(): Promise<void> {
    while (!this.ended) await new Promise<void>((r) => this.waiters.push(r));
  }

  /** Splits what arrived into the HTTP head and the bytes after it. */
  head(): { head: string; rest: Buffer } {
    const i = this.data.indexOf('\r\n\r\n');
    if (i < 0) throw new Error('no complete HTTP head yet');
    return { head: this.data.subarray(0, i).toString('latin1'), rest: this.data.subarray(i + 4) };
  }
}

export function hasHead(data: Buffer): boolean {
  return data.includes('\r\n\r\n');
}
