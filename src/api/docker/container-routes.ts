// /containers/...: each handler parses, calls one engine method, and formats.
import type { ServerResponse } from 'node:http';
import { BerthError } from '../../errors.js';
import type { ContainerStats, LogRecord, PathStat, StreamSession, WaitCondition } from '../../engine/types.js';
import { apiVersionAtLeast } from './api-version.js';
import { frame, STDERR, STDOUT } from './frames.js';
import { MULTIPLEXED_STREAM, RAW_STREAM } from './hijack.js';
import { errorMessage, sendEmpty, sendJson, sendStream } from './reply.js';
import { queryBool, queryFilters, queryInt, queryString, queryTime, queryTtySize, readJson, requireQuery, type ApiContext } from './request.js';
import type { Route } from './router.js';
import { aborted, untilAborted, waitWritable } from './streams.js';
import { checkCommitConfig, checkCreateContainer, checkUpdateContainer } from './validate.js';

const id = (ctx: ApiContext): string => ctx.params['id']!;

/** Docker's stop/restart timeout `t` (seconds; -1 waits forever). */
function stopOptions(ctx: ApiContext): { signal?: string; timeout?: number } {
  const opts: { signal?: string; timeout?: number } = {};
  const signal = queryString(ctx.query, 'signal');
  if (signal) opts.signal = signal;
  const t = queryInt(ctx.query, 't');
  if (t !== undefined) opts.timeout = t;
  return opts;
}

async function create(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const req = checkCreateContainer(await readJson(ctx));
  const opts: { name?: string; platform?: string } = {};
  const name = queryString(ctx.query, 'name');
  if (name) opts.name = name;
  const platform = queryString(ctx.query, 'platform');
  if (platform) opts.platform = platform;
  const created = await ctx.engine.createContainer(req, opts);
  sendJson(res, 201, { Id: created.Id, Warnings: created.Warnings ?? [] });
}

async function list(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const limit = queryInt(ctx.query, 'limit');
  sendJson(
    res,
    200,
    await ctx.engine.listContainers({
      all: queryBool(ctx.query, 'all'),
      ...(limit !== undefined && limit > 0 ? { limit } : {}),
      size: queryBool(ctx.query, 'size'),
      filters: queryFilters(ctx.query),
    }),
  );
}

async function inspect(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.engine.inspectContainer(id(ctx), { size: queryBool(ctx.query, 'size') }));
}

async function top(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.engine.topContainer(id(ctx), queryString(ctx.query, 'ps_args') || undefined));
}

function logTail(ctx: ApiContext): number | 'all' {
  const raw = ctx.query.get('tail');
  if (raw === null || raw === '' || raw === 'all') return 'all';
  const n = queryInt(ctx.query, 'tail')!;
  return n < 0 ? 'all' : n;
}

function logLine(record: LogRecord, timestamps: boolean): Buffer {
  return timestamps ? Buffer.concat([Buffer.from(record.time + ' '), record.line]) : record.line;
}

async function logs(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const stdout = queryBool(ctx.query, 'stdout');
  const stderr = queryBool(ctx.query, 'stderr');
  if (!stdout && !stderr) throw new BerthError('InvalidArgument', 'logs: you must choose at least one stream (stdout=1 and/or stderr=1)');
  if (queryBool(ctx.query, 'details')) throw new BerthError('InvalidArgument', 'logs: details=1 is not supported (berth logs carry no extra attributes)');
  const timestamps = queryBool(ctx.query, 'timestamps');
  const { tty, records } = await ctx.engine.containerLogs(id(ctx), {
    follow: queryBool(ctx.query, 'follow'),
    stdout,
    stderr,
    since: queryTime(ctx.query, 'since'),
    until: queryTime(ctx.query, 'until'),
    timestamps,
    tail: logTail(ctx),
    signal: ctx.signal,
  });
  res.writeHead(200, { 'Content-Type': !tty && apiVersionAtLeast(ctx.apiVersion, '1.42') ? MULTIPLEXED_STREAM : RAW_STREAM });
  // A follow with nothing logged yet must still show the client a response.
  res.flushHeaders();
  try {
    for await (const record of untilAborted(records, ctx.signal)) {
      const payload = logLine(record, timestamps);
      const ok = res.write(tty ? payload : frame(record.stream === 'stderr' ? STDERR : STDOUT, payload));
      if (!ok && !res.destroyed) await waitWritable(res);
    }
  } catch (err) {
    // The status line is gone: the error goes in band, as dockerd does.
    const text = Buffer.from(`Error grabbing logs: ${errorMessage(err)}\n`);
    if (!res.destroyed) res.write(tty ? text : frame(STDERR, text));
  }
  res.end();
}

async function stats(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const stream = queryBool(ctx.query, 'stream', true);
  const oneShot = queryBool(ctx.query, 'one-shot');
  if (oneShot && stream) throw new BerthError('InvalidArgument', 'stats: one-shot=1 needs stream=0');
  const samples = ctx.engine.containerStats(id(ctx), { stream, oneShot, signal: ctx.signal });
  const it = untilAborted<ContainerStats>(samples, ctx.signal)[Symbol.asyncIterator]();
  // The first sample decides between an error status (unknown container) and a 200.
  const first = await it.next();
  if (!stream) {
    if (first.done) throw new BerthError('NotFound', `stats: no sample for container ${id(ctx)}`);
    await it.return?.(undefined);
    sendJson(res, 200, first.value);
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/json' });
  if (!first.done) {
    res.write(JSON.stringify(first.value) + '\n');
    for (let next = await it.next(); !next.done; next = await it.next()) res.write(JSON.stringify(next.value) + '\n');
  }
  res.end();
}

async function resize(ctx: ApiContext, res: ServerResponse): Promise<void> {
  await ctx.engine.resizeContainer(id(ctx), queryTtySize(ctx.query));
  sendEmpty(res, 200);
}

async function start(ctx: ApiContext, res: ServerResponse): Promise<void> {
  if (ctx.query.get('checkpoint') || ctx.query.get('checkpoint-dir')) throw new BerthError('InvalidArgument', 'start: checkpoints are not supported (query parameter "checkpoint")');
  sendEmpty(res, (await ctx.engine.startContainer(id(ctx))) ? 204 : 304);
}

async function stop(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendEmpty(res, (await ctx.engine.stopContainer(id(ctx), stopOptions(ctx))) ? 204 : 304);
}

async function restart(ctx: ApiContext, res: ServerResponse): Promise<void> {
  await ctx.engine.restartContainer(id(ctx), stopOptions(ctx));
  sendEmpty(res, 204);
}

async function kill(ctx: ApiContext, res: ServerResponse): Promise<void> {
  await ctx.engine.killContainer(id(ctx), queryString(ctx.query, 'signal') || undefined);
  sendEmpty(res, 204);
}

async function update(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const result = await ctx.engine.updateContainer(id(ctx), checkUpdateContainer(await readJson(ctx)));
  sendJson(res, 200, { Warnings: result.Warnings ?? [] });
}

async function rename(ctx: ApiContext, res: ServerResponse): Promise<void> {
  await ctx.engine.renameContainer(id(ctx), requireQuery(ctx.query, 'name'));
  sendEmpty(res, 204);
}

async function pause(ctx: ApiContext, res: ServerResponse): Promise<void> {
  await ctx.engine.pauseContainer(id(ctx));
  sendEmpty(res, 204);
}

async function unpause(ctx: ApiContext, res: ServerResponse): Promise<void> {
  await ctx.engine.unpauseContainer(id(ctx));
  sendEmpty(res, 204);
}

const WAIT_CONDITIONS: readonly string[] = ['not-running', 'next-exit', 'removed'];

async function wait(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const condition = queryString(ctx.query, 'condition') || 'not-running';
  if (!WAIT_CONDITIONS.includes(condition)) throw new BerthError('InvalidArgument', `wait: invalid condition ${JSON.stringify(condition)}`, { hint: 'use not-running, next-exit or removed' });
  // The engine checks the container and condition first, so those failures are still statuses.
  const { exited } = await ctx.engine.waitContainer(id(ctx), condition as WaitCondition, ctx.signal);
  // docker run starts the container only after it saw the wait's status line.
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.flushHeaders();
  let body: { StatusCode: number; Error: { Message: string } | null };
  try {
    // A client that went away stops waiting here even if the engine's wait never settles.
    const result = await Promise.race([exited, aborted(ctx.signal)]);
    if (result === 'aborted') return;
    body = { StatusCode: result.StatusCode, Error: result.Error ?? null };
  } catch (err) {
    body = { StatusCode: -1, Error: { Message: errorMessage(err) } };
  }
  res.end(JSON.stringify(body) + '\n');
}

async function remove(ctx: ApiContext, res: ServerResponse): Promise<void> {
  await ctx.engine.removeContainer(id(ctx), { force: queryBool(ctx.query, 'force'), volumes: queryBool(ctx.query, 'v'), link: queryBool(ctx.query, 'link') });
  sendEmpty(res, 204);
}

async function prune(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const result = await ctx.engine.pruneContainers(queryFilters(ctx.query));
  sendJson(res, 200, { ContainersDeleted: result.deleted, SpaceReclaimed: result.spaceReclaimed });
}

function statHeader(stat: PathStat): string {
  return Buffer.from(JSON.stringify(stat)).toString('base64');
}

async function archiveHead(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const stat = await ctx.engine.statPath(id(ctx), requireQuery(ctx.query, 'path'));
  res.writeHead(200, { 'X-Docker-Container-Path-Stat': statHeader(stat), 'Content-Type': 'application/x-tar' });
  res.end();
}

async function archiveGet(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const { stat, tar } = await ctx.engine.getArchive(id(ctx), requireQuery(ctx.query, 'path'));
  await sendStream(res, 200, { 'X-Docker-Container-Path-Stat': statHeader(stat), 'Content-Type': 'application/x-tar' }, tar);
}

async function archivePut(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const path = requireQuery(ctx.query, 'path');
  await ctx.engine.putArchive(id(ctx), path, ctx.body, {
    noOverwriteDirNonDir: queryBool(ctx.query, 'noOverwriteDirNonDir'),
    copyUIDGID: queryBool(ctx.query, 'copyUIDGID'),
  });
  sendEmpty(res, 200);
}

async function exportContainer(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const tar = await ctx.engine.exportContainer(id(ctx));
  await sendStream(res, 200, { 'Content-Type': 'application/x-tar' }, tar);
}

async function changes(ctx: ApiContext, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.engine.containerChanges(id(ctx)));
}

async function commit(ctx: ApiContext, res: ServerResponse): Promise<void> {
  const container = requireQuery(ctx.query, 'container');
  const config = checkCommitConfig(await readJson(ctx));
  const opt = (name: string): string | undefined => queryString(ctx.query, name) || undefined;
  const result = await ctx.engine.commitContainer(container, {
    repo: opt('repo'),
    tag: opt('tag'),
    comment: opt('comment'),
    author: opt('author'),
    changes: ctx.query.getAll('changes').filter((c) => c !== ''),
    // Docker pauses unless told not to (API 1.13 and later).
    pause: queryBool(ctx.query, 'pause', true),
    config,
  });
  sendJson(res, 201, { Id: result.Id });
}

async function attach(ctx: ApiContext): Promise<StreamSession> {
  const opts = {
    stdin: queryBool(ctx.query, 'stdin'),
    stdout: queryBool(ctx.query, 'stdout'),
    stderr: queryBool(ctx.query, 'stderr'),
    logs: queryBool(ctx.query, 'logs'),
    stream: queryBool(ctx.query, 'stream'),
    ...(ctx.query.get('detachKeys') ? { detachKeys: ctx.query.get('detachKeys')! } : {}),
  };
  return ctx.engine.attachContainer(id(ctx), opts);
}

export const containerRoutes: Route[] = [
  { method: 'POST', pattern: '/containers/create', handle: create },
  { method: 'GET', pattern: '/containers/json', handle: list },
  { method: 'POST', pattern: '/containers/prune', handle: prune },
  { method: 'GET', pattern: '/containers/{id}/json', handle: inspect },
  { method: 'GET', pattern: '/containers/{id}/top', handle: top },
  { method: 'GET', pattern: '/containers/{id}/logs', handle: logs },
  { method: 'GET', pattern: '/containers/{id}/export', handle: exportContainer },
  { method: 'GET', pattern: '/containers/{id}/stats', handle: stats },
  { method: 'POST', pattern: '/containers/{id}/resize', handle: resize },
  { method: 'POST', pattern: '/containers/{id}/start', handle: start },
  { method: 'POST', pattern: '/containers/{id}/stop', handle: stop },
  { method: 'POST', pattern: '/containers/{id}/restart', handle: restart },
  { method: 'POST', pattern: '/containers/{id}/kill', handle: kill },
  { method: 'POST', pattern: '/containers/{id}/update', handle: update },
  { method: 'POST', pattern: '/containers/{id}/rename', handle: rename },
  { method: 'POST', pattern: '/containers/{id}/pause', handle: pause },
  { method: 'POST', pattern: '/containers/{id}/unpause', handle: unpause },
  { method: 'POST', pattern: '/containers/{id}/attach', hijack: attach },
  { method: 'POST', pattern: '/containers/{id}/wait', handle: wait },
  { method: 'DELETE', pattern: '/containers/{id}', handle: remove },
  { method: 'HEAD', pattern: '/containers/{id}/archive', handle: archiveHead },
  { method: 'GET', pattern: '/containers/{id}/archive', handle: archiveGet },
  { method: 'PUT', pattern: '/containers/{id}/archive', handle: archivePut },
  { method: 'GET', pattern: '/containers/{id}/changes', handle: changes },
  { method: 'POST', pattern: '/commit', handle: commit },
];
