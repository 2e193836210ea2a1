// /images/...: names hold slashes and colons, so name routes match the rest of the path.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { BerthError } from '../../errors.js';
import type { ProgressMessage, RegistryAuth } from '../../engine/types.js';
import { JsonMessageStream, sendError, sendJson } from './reply.js';
import { queryBool, queryFilters, queryString, requireQuery, type ApiContext } from './request.js';
import type { Route } from './router.js';

const name = (ctx: ApiContext): string => ctx.params['name']!;

/** X-Registry-Auth: base64url (padded or not) JSON; an empty header or "{}" means anonymous. */
export function decodeRegistryAuth(headers: IncomingHttpHeaders): RegistryAuth | undefined {
  const raw = headers['x-registry-auth'];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (!value || value.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value.trim(), 'base64url').toString('utf8'));
  } catch (err) {
    throw new BerthError('InvalidArgument', `invalid X-Registry-Auth header: ${(err as Error).message}`, { cause: err, hint: 'send base64url-encoded JSON {"username","password","serveraddress"}' });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new BerthError('InvalidArgument', 'invalid X-Registry-Auth header: expected a JSON object');
  const auth: RegistryAuth = {};
  for (const key of ['username', 'password', 'auth', 'identitytoken', 'registrytoken', 'serveraddress'] as const) {
    const v = (parsed as Record<string, unknown>)[key];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string') throw new BerthError('InvalidArgument', `invalid X-Registry-Auth header: ${key} must be a string`);
    auth[key] = v;
  }
  return Object.keys(auth).length > 0 ? auth : undefined;
}

/** Runs a progress-reporting engine call as a JSON message stream. */
async function progressStream(res: ServerResponse, run: (onProgress: (m: ProgressMessage) => void) => Promise<void>): Promise<void> {
  const stream = new JsonMessageStream(res);
  try {
    await run((m) => stream.write(m));
  } catch (err) {
    stream.fail(err);
    return;
  }
  stream.end();
}

async function create(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const fromImage = queryString(ctx.query, 'fromImage');
  const fromSrc = queryString(ctx.query, 'fromSrc');
  const tag = queryString(ctx.query, 'tag') || undefined;
  const platform = queryString(ctx.query, 'platform') || undefined;
  if (fromImage) {
    const auth = decodeRegistryAuth(ctx.headers);
    await progressStream(res, (onProgress) =>
      ctx.engine.pullImage({ fromImage, ...(tag ? { tag } : {}), ...(platform ? { platform } : {}), ...(auth ? { auth } : {}), onProgress, signal: ctx.signal }),
    );
    return;
  }
  if (fromSrc !== undefined) {
    if (fromSrc !== '-') throw new BerthError('InvalidArgument', `import: fromSrc=${fromSrc} is not supported`, { hint: 'send the tarball as the request body with fromSrc=-' });
    const repo = queryString(ctx.query, 'repo') || undefined;
    const message = queryString(ctx.query, 'message') || undefined;
    const changes = ctx.query.getAll('changes').filter((c) => c !== '');
    await progressStream(res, (onProgress) =>
      ctx.engine.importImage(ctx.body, { ...(repo ? { repo } : {}), ...(tag ? { tag } : {}), changes, ...(message ? { message } : {}), ...(platform ? { platform } : {}), onProgress }),
    );
    return;
  }
  throw new BerthError('InvalidArgument', 'images/create: give fromImage (pull) or fromSrc=- (import)');
}

async function list(ctx: ApiContext, res: ServerResponse): Promise<void> {
  if (queryBool(ctx.query, 'manifests')) throw new BerthError('InvalidArgument', 'images: query parameter "manifests" is not supported');
  sendJson(res, 200, await ctx.engine.listImages({ all: queryBool(ctx.query, 'all'), filters: queryFilters(ctx.query), digests: queryBool(ctx.query, 'digests') }));
}

async function inspect(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.engine.inspectImage(name(ctx)));
}

async function history(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.engine.imageHistory(name(ctx)));
}

async function push(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const tag = queryString(ctx.query, 'tag') || undefined;
  const auth = decodeRegistryAuth(ctx.headers);
  await progressStream(res, (onProgress) => ctx.engine.pushImage({ name: name(ctx), ...(tag ? { tag } : {}), ...(auth ? { auth } : {}), onProgress, signal: ctx.signal }));
}

async function tag(ctx: ApiContext, res: ServerResponse): Promise<void> {
  await ctx.engine.tagImage(name(ctx), requireQuery(ctx.query, 'repo'), queryString(ctx.query, 'tag') || undefined);
  res.writeHead(201);
  res.end();
}

async function remove(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.engine.removeImage(name(ctx), { force: queryBool(ctx.query, 'force'), noprune: queryBool(ctx.query, 'noprune') }));
}

/**
 * A tar written by the engine: the 200 goes out with the first byte, so a failure before any
 * output (unknown image) is still an error status.
 */
async function sendSavedImages(ctx: ApiContext, res: ServerResponse, names: string[]): Promise<void> {
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!res.headersSent) res.writeHead(200, { 'Content-Type': 'application/x-tar' });
      if (res.write(chunk)) cb();
      else res.once('drain', () => cb());
    },
  });
  res.once('close', () => out.destroy());
  try {
    await ctx.engine.saveImages(names, out, ctx.signal);
  } catch (err) {
    sendError(res, err);
    return;
  }
  if (!res.headersSent) res.writeHead(200, { 'Content-Type': 'application/x-tar' });
  res.end();
}

async function getOne(ctx: ApiContext, res: ServerResponse): Promise<void> {
  await sendSavedImages(ctx, res, [name(ctx)]);
}

async function getMany(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const names = ctx.query.getAll('names').filter((n) => n !== '');
  if (names.length === 0) throw new BerthError('InvalidArgument', 'images/get: give at least one image in the query parameter "names"');
  await sendSavedImages(ctx, res, names);
}

async function load(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const quiet = queryBool(ctx.query, 'quiet');
  await progressStream(res, (onProgress) => ctx.engine.loadImages(ctx.body, { quiet, onProgress }));
}

async function prune(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.engine.pruneImages(queryFilters(ctx.query)));
}

export const imageRoutes: Route[] = [
  { method: 'POST', pattern: '/images/create', handle: create },
  { method: 'GET', pattern: '/images/json', handle: list },
  { method: 'GET', pattern: '/images/get', handle: getMany },
  { method: 'POST', pattern: '/images/load', handle: load },
  { method: 'POST', pattern: '/images/prune', handle: prune },
  { method: 'GET', pattern: '/images/{name*}/json', handle: inspect },
  { method: 'GET', pattern: '/images/{name*}/history', handle: history },
  { method: 'GET', pattern: '/images/{name*}/get', handle: getOne },
  { method: 'POST', pattern: '/images/{name*}/push', handle: push },
  { method: 'POST', pattern: '/images/{name*}/tag', handle: tag },
  { method: 'DELETE', pattern: '/images/{name*}', handle: remove },
];
