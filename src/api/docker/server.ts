// The Docker Engine API over a unix socket (and TCP only when asked): request dispatch,
// hijacked connections, the socket file's life cycle.
import { lstat, mkdir, rename, stat, unlink, chmod } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { Readable, type Duplex } from 'node:stream';
import { BerthError } from '../../errors.js';
import type { Engine } from '../../engine/types.js';
import { apiVersionAtLeast, MAX_API_VERSION, splitVersion } from './api-version.js';
import { containerRoutes } from './container-routes.js';
import { execRoutes } from './exec-routes.js';
import { hijackContentType, runPlainSession, runUpgradedSession } from './hijack.js';
import { imageRoutes } from './image-routes.js';
import { networkRoutes } from './network-routes.js';
import { errorMessage, errorStatus, HttpError, logIfBug, sendEmpty, sendError, writeRawResponse, type ApiLog } from './reply.js';
import type { ApiContext } from './request.js';
import { Router, type Route } from './router.js';
import { systemRoutes } from './system-routes.js';
import { unsupportedMessage } from './unsupported.js';
import { volumeRoutes } from './volume-routes.js';

export interface DockerApiOptions {
  engine: Engine;
  socketPath: string;
  /** Mode of the socket file; 0o660 (root and the socket's group). */
  mode?: number;
  /** Also listen on TCP (no TLS: only for trusted networks). */
  tcp?: { host: string; port: number };
  /** Debug log: one line per request, and internal errors with their stack. */
  log?: ApiLog;
}

export interface DockerApi {
  /** Stops listening, ends streams and hijacked connections, removes the socket file. */
  close(): Promise<void>;
  server: http.Server;
  /** The TCP listener when `tcp` was given. */
  tcpServer?: http.Server;
}

/** Every route berth serves, fixed paths before patterns. */
export const dockerApiRoutes: Route[] = [...systemRoutes, ...containerRoutes, ...execRoutes, ...imageRoutes, ...volumeRoutes, ...networkRoutes];

interface ServerState {
  engine: Engine;
  router: Router;
  log: ApiLog;
  serverHeader: string;
  requests: Set<AbortController>;
  /** Every connection, so that close() can end the ones that never go idle. */
  sockets: Set<Duplex>;
  /** Attach and exec connections, which close() cuts at once. */
  hijacked: Set<Duplex>;
}

type Dispatch = { ctx: ApiContext; route: Route };

function resolveRoute(state: ServerState, req: http.IncomingMessage, signal: AbortSignal, body: Readable): Dispatch {
  // Not new URL(): a path starting with // would be read as a host.
  const target = req.url ?? '/';
  const q = target.indexOf('?');
  const pathname = q < 0 ? target : target.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
  const method = req.method ?? 'GET';
  const { version, path } = splitVersion(pathname);
  const m = state.router.match(method, path);
  const unsupported = m.kind === 'found' ? null : unsupportedMessage(method, path);
  if (unsupported) throw new HttpError(501, unsupported);
  if (m.kind === 'not-found') throw new HttpError(404, 'page not found');
  if (m.kind === 'method-not-allowed') throw new HttpError(405, `method ${method} is not allowed on ${path}`);
  return {
    route: m.route,
    ctx: { engine: state.engine, method, path, params: m.params, query, apiVersion: version, headers: req.headers, signal, body },
  };
}

function logRequest(state: ServerState, req: http.IncomingMessage, status: number, startedAt: bigint): void {
  state.log('request', { method: req.method, url: req.url, status, ms: Number(process.hrtime.bigint() - startedAt) / 1e6 });
}

function onRequest(state: ServerState, req: http.IncomingMessage, res: http.ServerResponse): void {
  const startedAt = process.hrtime.bigint();
  const ac = new AbortController();
  state.requests.add(ac);
  res.on('close', () => {
    state.requests.delete(ac);
    ac.abort();
    logRequest(state, req, res.statusCode, startedAt);
  });
  res.setHeader('Api-Version', MAX_API_VERSION);
  res.setHeader('Docker-Experimental', 'false');
  res.setHeader('Ostype', 'linux');
  res.setHeader('Server', state.serverHeader);
  void (async () => {
    const { ctx, route } = resolveRoute(state, req, ac.signal, req);
    if (route.hijack) {
      const session = await route.hijack(ctx);
      if (!session) return sendEmpty(res, 200);
      const contentType = hijackContentType(session.tty, apiVersionAtLeast(ctx.apiVersion, '1.42'));
      await runPlainSession({ session, req, res, contentType, log: state.log });
      return;
    }
    await route.handle!(ctx, res);
  })().catch((err: unknown) => {
    logIfBug(err, state.log, `${req.method} ${req.url}`);
    sendError(res, err);
  });
}

/** The body of an upgrade request, which Node leaves on the socket; what follows it is stdin. */
function readUpgradeBody(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<{ body: Buffer; leftover: Buffer }> {
  if (req.headers['transfer-encoding']) {
    return Promise.reject(new BerthError('InvalidArgument', 'a chunked request body cannot be combined with Upgrade', { hint: 'send Content-Length' }));
  }
  const length = Number(req.headers['content-length'] ?? 0);
  if (!Number.isSafeInteger(length) || length < 0 || length > 1024 * 1024) {
    return Promise.reject(new BerthError('InvalidArgument', `invalid Content-Length ${JSON.stringify(req.headers['content-length'])} on an Upgrade request`));
  }
  let buffered = head;
  if (buffered.length >= length) return Promise.resolve({ body: buffered.subarray(0, length), leftover: buffered.subarray(length) });
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < length) return;
      cleanup();
      socket.pause();
      resolve({ body: buffered.subarray(0, length), leftover: buffered.subarray(length) });
    };
    const onEnd = (): void => {
      cleanup();
      reject(new BerthError('InvalidArgument', `the client closed the connection after ${buffered.length} of ${length} body bytes`));
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.resume();
  });
}

function onUpgrade(state: ServerState, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
  const startedAt = process.hrtime.bigint();
  const ac = new AbortController();
  state.hijacked.add(socket);
  let status = 101;
  socket.on('close', () => {
    state.hijacked.delete(socket);
    ac.abort();
    logRequest(state, req, status, startedAt);
  });
  socket.on('error', () => socket.destroy());
  void (async () => {
    const { body, leftover } = await readUpgradeBody(req, socket, head);
    const { ctx, route } = resolveRoute(state, req, ac.signal, Readable.from(body.length > 0 ? [body] : []));
    if (!route.hijack) throw new HttpError(400, `${ctx.method} ${ctx.path} does not take a connection Upgrade`);
    const session = await route.hijack(ctx);
    if (!session) {
      status = 200;
      writeRawResponse(socket, 200);
      return;
    }
    const contentType = hijackContentType(session.tty, apiVersionAtLeast(ctx.apiVersion, '1.42'));
    await runUpgradedSession({ session, socket, leftover, contentType, log: state.log });
  })().catch((err: unknown) => {
    logIfBug(err, state.log, `${req.method} ${req.url}`);
    status = errorStatus(err);
    if (!socket.destroyed) writeRawResponse(socket, status, { message: errorMessage(err) });
  });
}

function createServer(state: ServerState): http.Server {
  // No request timeout: image loads and archive uploads may take long.
  const server = http.createServer({ requestTimeout: 0 }, (req, res) => onRequest(state, req, res));
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => onUpgrade(state, req, socket, head));
  server.on('connection', (socket: net.Socket) => {
    state.sockets.add(socket);
    socket.on('close', () => state.sockets.delete(socket));
  });
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    if (socket.writable) writeRawResponse(socket, 400, { message: `malformed HTTP request: ${err.message}` });
    else socket.destroy();
  });
  return server;
}

/** Answers when something accepts connections on the socket (another daemon). */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.connect({ path });
    const timer = setTimeout(() => {
      conn.destroy();
      // A listener too busy to accept is still a listener.
      resolve(true);
    }, 2000);
    conn.once('connect', () => {
      clearTimeout(timer);
      conn.destroy();
      resolve(true);
    });
    conn.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

async function clearStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new BerthError('Internal', `cannot check the API socket ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isSocket()) throw new BerthError('FailedPrecondition', `${path} exists and is not a socket`, { hint: 'remove it or choose another socket path' });
  if (await socketAnswers(path)) throw new BerthError('FailedPrecondition', `another daemon is already listening on ${path}`, { hint: 'stop it first (berthd is probably running)' });
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw new BerthError('Internal', `cannot remove the stale API socket ${path}: ${err.message}`, { cause: err });
  });
}

function listen(server: http.Server, target: string | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if (typeof target === 'string') server.listen(target, done);
    else server.listen(target.port, target.host, done);
  });
}

let tempSocketSeq = 0;

/**
 * Binds the socket under a temporary name, sets its mode, then renames it into place, so the
 * socket is never reachable with the umask's mode.
 */
async function listenUnix(server: http.Server, path: string, mode: number): Promise<{ dev: number; ino: number }> {
  await mkdir(dirname(path), { recursive: true });
  const temp = join(dirname(path), `.berth-api-${process.pid}-${++tempSocketSeq}.sock`);
  await unlink(temp).catch(() => undefined);
  try {
    await listen(server, temp);
  } catch (err) {
    throw new BerthError('Internal', `cannot listen on ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    await chmod(temp, mode);
    await rename(temp, path);
  } catch (err) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw new BerthError('Internal', `cannot put the API socket in place at ${path}: ${(err as Error).message}`, { cause: err });
  }
  const st = await stat(path);
  return { dev: st.dev, ino: st.ino };
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}

export async function startDockerApi(opts: DockerApiOptions): Promise<DockerApi> {
  const log = opts.log ?? (() => undefined);
  const state: ServerState = {
    engine: opts.engine,
    router: new Router(dockerApiRoutes),
    log,
    serverHeader: `berth/${opts.engine.version().Version} (linux)`,
    requests: new Set(),
    sockets: new Set(),
    hijacked: new Set(),
  };
  await clearStaleSocket(opts.socketPath);
  const server = createServer(state);
  const identity = await listenUnix(server, opts.socketPath, opts.mode ?? 0o660);
  let tcpServer: http.Server | undefined;
  if (opts.tcp) {
    tcpServer = createServer(state);
    try {
      await listen(tcpServer, opts.tcp);
    } catch (err) {
      await closeServer(server);
      await unlink(opts.socketPath).catch(() => undefined);
      throw new BerthError('Internal', `cannot listen on tcp ${opts.tcp.host}:${opts.tcp.port}: ${(err as Error).message}`, { cause: err });
    }
    // Whoever reaches this port controls the host: say so where operators look.
    log('listening on TCP without TLS or authentication', { host: opts.tcp.host, port: opts.tcp.port });
  }
  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    const closed = Promise.all([closeServer(server), tcpServer ? closeServer(tcpServer) : undefined]);
    // Streams (events, logs --follow, stats, wait) end when their request is aborted.
    for (const ac of state.requests) ac.abort();
    server.closeIdleConnections();
    tcpServer?.closeIdleConnections();
    const grace = setTimeout(() => {
      for (const s of state.sockets) s.destroy();
    }, 1000);
    for (const s of state.hijacked) s.destroy();
    await closed;
    clearTimeout(grace);
    // Remove the socket file only if it is still ours (a new daemon may have replaced it).
    const st = await stat(opts.socketPath).catch(() => undefined);
    if (st && st.dev === identity.dev && st.ino === identity.ino) await unlink(opts.socketPath).catch(() => undefined);
  };
  return {
    server,
    ...(tcpServer ? { tcpServer } : {}),
    close: () => (closing ??= close()),
  };
}
