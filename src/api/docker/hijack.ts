// Attach and exec start take over the connection: after the 101 (or, for clients that did not
// ask to upgrade, a bare 200) the socket carries the process's output one way and the
// client's stdin the other, with no HTTP framing.
import type { Duplex } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StreamSession } from '../../engine/types.js';
import { frame, STDOUT } from './frames.js';
import type { ApiLog } from './reply.js';
import { untilAborted, waitWritable } from './streams.js';

export const RAW_STREAM = 'application/vnd.docker.raw-stream';
export const MULTIPLEXED_STREAM = 'application/vnd.docker.multiplexed-stream';

/** dockerd (API ≥ 1.42) says multiplexed when the output is framed. */
export function hijackContentType(tty: boolean, multiplexedType: boolean): string {
  return !tty && multiplexedType ? MULTIPLEXED_STREAM : RAW_STREAM;
}

export function upgradeResponseHead(contentType: string): string {
  return `HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`;
}

/**
 * The bytes of one output chunk on the wire. The engine may hand Buffers (already framed
 * unless tty) or `{stream, data}` objects, which are framed here unless tty.
 */
export function encodeOutputChunk(chunk: unknown, tty: boolean): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk);
  if (typeof chunk === 'object' && chunk !== null && 'data' in chunk) {
    const { stream, data } = chunk as { stream?: number; data: Buffer | string };
    const payload = Buffer.from(data);
    return tty ? payload : frame(stream ?? STDOUT, payload);
  }
  throw new Error(`stream session produced an unexpected chunk: ${typeof chunk}`);
}

async function pumpOutput(session: StreamSession, sink: Duplex | ServerResponse, log: ApiLog): Promise<void> {
  // Stop reading (which destroys the output stream) once the client is gone, even if the
  // engine never ends the output.
  const gone = new AbortController();
  sink.once('close', () => gone.abort());
  try {
    for await (const chunk of untilAborted<unknown>(session.output, gone.signal)) {
      if (sink.destroyed) break;
      if (!sink.write(encodeOutputChunk(chunk, session.tty))) await waitWritable(sink);
    }
  } catch (err) {
    log('stream session output failed', { error: err instanceof Error ? err.message : String(err) });
    sink.destroy();
    return;
  }
  // Ending (not destroying) flushes what is queued before the FIN.
  sink.end();
}

/**
 * Runs a session over an upgraded socket. `leftover` holds bytes that arrived after the
 * request (stdin the client sent early).
 */
export function runUpgradedSession(opts: { session: StreamSession; socket: Duplex; leftover: Buffer; contentType: string; log: ApiLog }): Promise<void> {
  const { session, socket, leftover, log } = opts;
  socket.on('error', () => socket.destroy());
  socket.on('close', () => session.close());
  socket.write(upgradeResponseHead(opts.contentType));
  const input = session.input;
  if (input) {
    // The process's stdin may close before the client stops typing; drop the rest quietly.
    input.on('error', () => undefined);
    if (leftover.length > 0) input.write(leftover);
    socket.on('data', (data: Buffer) => {
      if (input.writableEnded || input.destroyed) return;
      if (!input.write(data)) {
        socket.pause();
        input.once('drain', () => socket.resume());
      }
    });
    // The client half-closes after its stdin ends (docker CLI: CloseWrite); output keeps flowing.
    socket.on('end', () => {
      if (!input.writableEnded) input.end();
    });
  } else {
    socket.on('data', () => undefined);
  }
  socket.resume();
  return pumpOutput(session, socket, log);
}

/**
 * Runs a session for a client that did not ask to upgrade: a 200 with the raw stream until the
 * output ends. Node keeps the HTTP parser on that connection, so stdin can only come as the
 * request's own body (dockerode's non-hijacked attach streams it chunked); a request without a
 * streamed body leaves stdin untouched.
 */
export function runPlainSession(opts: { session: StreamSession; req: IncomingMessage; res: ServerResponse; contentType: string; log: ApiLog }): Promise<void> {
  const { session, req, res, log } = opts;
  res.on('close', () => session.close());
  const input = session.input;
  if (input && req.headers['transfer-encoding'] !== undefined && !req.readableEnded) {
    input.on('error', () => undefined);
    req.pipe(input);
  }
  // Neither Content-Length nor chunked: the body is everything until the connection closes.
  res.removeHeader('Content-Length');
  res.removeHeader('Transfer-Encoding');
  res.shouldKeepAlive = false;
  res.writeHead(200, { 'Content-Type': opts.contentType });
  res.flushHeaders();
  return pumpOutput(session, res, log);
}
