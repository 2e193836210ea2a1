// /_ping, /version, /info, /events, /system/df.
import type { ServerResponse } from 'node:http';
import { BerthError } from '../../errors.js';
import type { EngineEvent } from '../../engine/types.js';
import { MAX_API_VERSION, MIN_API_VERSION } from './api-version.js';
import { HttpError, errorMessage, sendJson } from './reply.js';
import { queryFilters, queryTime, readJson, type ApiContext } from './request.js';
import { checkAuthConfig } from './validate.js';
import type { Route } from './router.js';
import { untilAborted } from './streams.js';

async function ping(ctx: ApiContext, res: ServerResponse): Promise<void> {
  res.writeHead(200, {
    'API-Version': MAX_API_VERSION,
    'OSType': 'linux',
    'Docker-Experimental': 'false',
    'Builder-Version': '1',
    'Swarm': 'inactive',
    'Cache-Control': 'no-cache, no-store, must-revalidate',
    'Pragma': 'no-cache',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': ctx.method === 'HEAD' ? '0' : '2',
  });
  res.end(ctx.method === 'HEAD' ? undefined : 'OK');
}

async function version(ctx: ApiContext, res: ServerResponse): Promise<void> {
  // The API layer owns the version range; the engine knows the rest.
  const v = ctx.engine.version();
  const components = v.Components.map((c) =>
    c.Name === 'Engine' && c.Details ? { ...c, Details: { ...c.Details, ApiVersion: MAX_API_VERSION, MinAPIVersion: MIN_API_VERSION } } : c,
  );
  sendJson(res, 200, { ...v, Components: components, ApiVersion: MAX_API_VERSION, MinAPIVersion: MIN_API_VERSION });
}

async function info(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.engine.info());
}

async function df(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.engine.df());
}

async function events(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const since = queryTime(ctx.query, 'since');
  const until = queryTime(ctx.query, 'until');
  const filters = queryFilters(ctx.query);
  const iterable = ctx.engine.events({ since, until, filters, signal: ctx.signal });
  // The docker CLI waits for the status line before it prints anything.
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.flushHeaders();
  for await (const event of untilAborted<EngineEvent>(iterable, ctx.signal)) {
    res.write(JSON.stringify(event) + '\n');
  }
  res.end();
}

async function auth(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const config = checkAuthConfig(await readJson(ctx));
  try {
    sendJson(res, 200, await ctx.engine.login(config));
  } catch (err) {
    // dockerd answers refused credentials with 401; the docker CLI prints the message.
    const status = (err as { status?: unknown }).status;
    if (status === 401 || status === 403) throw new HttpError(401, errorMessage(err));
    throw err;
  }
}

async function buildPrune(_ctx: ApiContext, res: ServerResponse): Promise<void> {
  // There is no builder, hence no build cache; `docker system prune` asks anyway.
  sendJson(res, 200, { CachesDeleted: [], SpaceReclaimed: 0 });
}

// berth has no plugins: the list is empty and no name exists (`docker inspect X` asks for a
// plugin X last and needs a 404 to say "No such object").
async function plugins(_ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, []);
}

async function pluginInspect(ctx: ApiContext): Promise<void> {
  throw new BerthError('NotFound', `plugin "${ctx.params.name ?? ''}" not found`);
}

export const systemRoutes: Route[] = [
  { method: 'GET', pattern: '/plugins', handle: plugins },
  { method: 'GET', pattern: '/plugins/{name}/json', handle: pluginInspect },
  { method: 'GET', pattern: '/_ping', handle: ping },
  { method: 'HEAD', pattern: '/_ping', handle: ping },
  { method: 'GET', pattern: '/version', handle: version },
  { method: 'GET', pattern: '/info', handle: info },
  { method: 'GET', pattern: '/events', handle: events },
  { method: 'GET', pattern: '/system/df', handle: df },
  { method: 'POST', pattern: '/build/prune', handle: buildPrune },
  { method: 'POST', pattern: '/auth', handle: auth },
];
