// /networks/...: thin adapters over the engine's networks. dockerd answers 403 Forbidden
// where berth says FailedPrecondition (removing a built-in network or one with active
// endpoints, connecting a container twice): clients such as compose look at that status.
import type { ServerResponse } from 'node:http';
import { BerthError } from '../../errors.js';
import { HttpError, errorMessage, sendEmpty, sendJson } from './reply.js';
import { queryFilters, readJson, type ApiContext } from './request.js';
import type { Route } from './router.js';
import { checkNetworkConnect, checkNetworkCreate, checkNetworkDisconnect } from './validate.js';

/** FailedPrecondition → 403, as dockerd answers these refusals. */
async function forbiddenOnPrecondition<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof BerthError && err.code === 'FailedPrecondition') throw new HttpError(403, errorMessage(err));
    throw err;
  }
}

async function list(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.engine.listNetworks(queryFilters(ctx.query)));
}

async function inspect(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.engine.inspectNetwork(ctx.params['id']!, { verbose: ctx.query.get('verbose') === 'true', scope: ctx.query.get('scope') ?? undefined }));
}

async function create(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const req = checkNetworkCreate(await readJson(ctx));
  sendJson(res, 201, await forbiddenOnPrecondition(() => ctx.engine.createNetwork(req)));
}

async function remove(ctx: ApiContext, res: ServerResponse): Promise<void> {
  await forbiddenOnPrecondition(() => ctx.engine.removeNetwork(ctx.params['id']!));
  sendEmpty(res, 204);
}

async function connect(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const req = checkNetworkConnect(await readJson(ctx));
  await forbiddenOnPrecondition(() => ctx.engine.connectNetwork(ctx.params['id']!, req));
  sendEmpty(res, 200);
}

async function disconnect(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const req = checkNetworkDisconnect(await readJson(ctx));
  await forbiddenOnPrecondition(() => ctx.engine.disconnectNetwork(ctx.params['id']!, req));
  sendEmpty(res, 200);
}

async function prune(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.engine.pruneNetworks(queryFilters(ctx.query)));
}

export const networkRoutes: Route[] = [
  { method: 'GET', pattern: '/networks', handle: list },
  { method: 'POST', pattern: '/networks/create', handle: create },
  { method: 'POST', pattern: '/networks/prune', handle: prune },
  { method: 'GET', pattern: '/networks/{id}', handle: inspect },
  { method: 'DELETE', pattern: '/networks/{id}', handle: remove },
  { method: 'POST', pattern: '/networks/{id}/connect', handle: connect },
  { method: 'POST', pattern: '/networks/{id}/disconnect', handle: disconnect },
];
