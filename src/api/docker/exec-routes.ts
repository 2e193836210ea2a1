// /containers/{id}/exec and /exec/{id}/...
import type { ServerResponse } from 'node:http';
import type { StreamSession } from '../../engine/types.js';
import { sendEmpty, sendJson } from './reply.js';
import { queryTtySize, readJson, type ApiContext } from './request.js';
import type { Route } from './router.js';
import { checkExecCreate, checkExecStart } from './validate.js';

async function create(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const req = checkExecCreate(await readJson(ctx));
  sendJson(res, 201, await ctx.engine.createExec(ctx.params['id']!, req));
}

async function start(ctx: ApiContext): Promise<StreamSession | null> {
  return ctx.engine.startExec(ctx.params['id']!, checkExecStart(await readJson(ctx)));
}

async function resize(ctx: ApiContext, res: ServerResponse): Promise<void> {
  await ctx.engine.resizeExec(ctx.params['id']!, queryTtySize(ctx.query));
  sendEmpty(res, 200);
}

async function inspect(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.engine.inspectExec(ctx.params['id']!));
}

export const execRoutes: Route[] = [
  { method: 'POST', pattern: '/containers/{id}/exec', handle: create },
  { method: 'POST', pattern: '/exec/{id}/start', hijack: start },
  { method: 'POST', pattern: '/exec/{id}/resize', handle: resize },
  { method: 'GET', pattern: '/exec/{id}/json', handle: inspect },
];
