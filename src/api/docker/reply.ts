// Answers in dockerd's shapes: JSON bodies ending in a newline, errors as {"message"}, error
// codes mapped to statuses only here, JSON message streams that turn a late error into a
// message because the status line is already gone.
import type { ServerResponse } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { STATUS_CODES } from 'node:http';
import { isBerthError, type ErrorCode } from '../../errors.js';
import type { ProgressMessage } from '../../engine/types.js';

export type ApiLog = (msg: string, fields?: object) => void;

const STATUS_BY_CODE: Record<ErrorCode, number> = {
  NotFound: 404,
  InvalidArgument: 400,
  AlreadyExists: 409,
  Conflict: 409,
  FailedPrecondition: 409,
  Unavailable: 503,
  Internal: 500,
};

/** An error that is already an HTTP answer (404 page not found, 501 not implemented). */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

export function errorStatus(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  if (isBerthError(err)) return STATUS_BY_CODE[err.code];
  return 500;
}

export function errorMessage(err: unknown): string {
  if (isBerthError(err)) return err.describe();
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Plain errors are bugs: they are logged with their stack. */
export function logIfBug(err: unknown, log: ApiLog, where: string): void {
  if (err instanceof HttpError || isBerthError(err)) return;
  log('internal error', { where, error: err instanceof Error ? err.stack ?? err.message : String(err) });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status);
  res.end();
}

export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    // The status is gone; cutting the connection is the only way left to say it failed.
    res.destroy();
    return;
  }
  sendJson(res, errorStatus(err), { message: errorMessage(err) });
}

/** An HTTP answer written straight onto a socket (upgrade requests have no ServerResponse). */
export function writeRawResponse(socket: Duplex, status: number, body?: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body) + '\n';
  const head =
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
    (text ? 'Content-Type: application/json\r\n' : '') +
    `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n`;
  socket.end(head + text);
}

/**
 * A stream of JSON messages (pull, push, load, import). The status line goes out with the
 * first message, so an error before any progress is still a proper error status (the docker
 * CLI relies on a 404 from a pull); after that it becomes an `errorDetail` message.
 */
export class JsonMessageStream {
  constructor(private readonly res: ServerResponse) {}

  get started(): boolean {
    return this.res.headersSent;
  }

  write(message: ProgressMessage | Record<string, unknown>): void {
    if (this.res.destroyed || this.res.writableEnded) return;
    if (!this.res.headersSent) this.res.writeHead(200, { 'Content-Type': 'application/json' });
    this.res.write(JSON.stringify(message) + '\n');
  }

  end(): void {
    if (this.res.writableEnded) return;
    if (!this.res.headersSent) this.res.writeHead(200, { 'Content-Type': 'application/json' });
    this.res.end();
  }

  /** Reports a failure: as a status when nothing was sent yet, else as the stream's last message. */
  fail(err: unknown): void {
    if (!this.started) {
      sendError(this.res, err);
      return;
    }
    const message = errorMessage(err);
    this.write({ errorDetail: { message }, error: message });
    this.end();
  }
}

/** Streams a body (tar) to the client; a failure midway cuts the connection. */
export async function sendStream(res: ServerResponse, status: number, headers: Record<string, string>, body: Readable): Promise<void> {
  res.writeHead(status, headers);
  await pipeline(body, res);
}
