// /volumes/...
import type { ServerResponse } from 'node:http';
import { sendEmpty, sendJson } from './reply.js';
import { queryBool, queryFilters, readJson, type ApiContext } from './request.js';
import type { Route } from './router.js';
import { checkVolumeCreate } from './validate.js';

async function create(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 201, await ctx.engine.createVolume(checkVolumeCreate(await readJson(ctx))));
}

async function list(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const result = await ctx.engine.listVolumes(queryFilters(ctx.query));
  sendJson(res, 200, { Volumes: result.Volumes, Warnings: result.Warnings ?? [] });
}

async function inspect(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.engine.inspectVolume(ctx.params['name']!));
}

async function remove(ctx: ApiContext, res: ServerResponse): Promise<void> {
  await ctx.engine.removeVolume(ctx.params['name']!, { force: queryBool(ctx.query, 'force') });
  sendEmpty(res, 204);
}

async function prune(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.engine.pruneVolumes(queryFilters(ctx.query)));
}

export const volumeRoutes: Route[] = [
  { method: 'POST', pattern: '/volumes/create', handle: create },
  { method: 'GET', pattern: '/volumes', handle: list },
  { method: 'POST', pattern: '/volumes/prune', handle: prune },
  { method: 'GET', pattern: '/volumes/{name}', handle: inspect },
  { method: 'DELETE', pattern: '/volumes/{name}', handle: remove },
];
