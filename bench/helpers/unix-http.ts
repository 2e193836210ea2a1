// A small JSON client for an engine API on a unix socket with one keep-alive agent, so that a
// bench measures the daemon and not connection setup. Every request has a timeout.
import { Agent, request } from 'node:http';

export interface UnixReply {
  status: number;
  body: Buffer;
  /** Milliseconds from sending the request to the end of the reply. */
  ms: number;
}

export class UnixHttp {
  readonly socket: string;
  private readonly agent: Agent;

  constructor(socket: string) {
    this.socket = socket;
    this.agent = new Agent({ keepAlive: true, maxSockets: 256 });
  }

  call(method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<UnixReply> {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const start = process.hrtime.bigint();
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socket,
          agent: this.agent,
          method,
          path,
          headers: data ? { 'Content-Type': 'application/json', 'Content-Length': String(data.length) } : {},
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), ms: Number(process.hrtime.bigint() - start) / 1e6 }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} on ${this.socket}: no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(data);
    });
  }

  /** call() that rejects unless the status is the one expected. */
  async expect(status: number, method: string, path: string, body?: unknown): Promise<UnixReply> {
    const r = await this.call(method, path, body);
    if (r.status !== status) throw new Error(`${method} ${path} on ${this.socket}: ${r.status} (wanted ${status}): ${r.body.toString('utf8').slice(0, 500)}`);
    return r;
  }

  close(): void {
    this.agent.destroy();
  }
}
