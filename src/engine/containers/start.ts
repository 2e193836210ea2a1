// start: load → check (not running) → act (OCI create through the container's monitor, watch
// it, OCI start) → save. And what happens when a container exits: the exit is recorded,
// waiters are told, the restart policy decides, AutoRemove removes.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError, attachCleanupError } from '../../errors.js';
import { createContainer as ociCreate, deleteContainer as ociDelete, startContainer as ociStart } from '../../runtime/index.js';
import { readSpecFile } from './spec-file.js';
import { connectMonitor, consoleSocketPath, monitorArgv, readExit, type ExitInfo } from '../monitor.js';
import type { EngineContext } from '../context.js';
import { startHealthChecks, stopHealthChecks } from './health.js';
import type { ContainerRecord } from './record.js';

const RESTART_BACKOFF_MIN_MS = 100;
const RESTART_BACKOFF_MAX_MS = 60_000;
/** A run at least this long resets the backoff (as Docker does). */
const RESTART_RESET_MS = 10_000;

/** false when it was already running. */
export async function startContainer(ctx: EngineContext, idOrName: string): Promise<boolean> {
  const rec = ctx.find(idOrName);
  return ctx.locked(rec.id, async () => {
    if (rec.state.status === 'running' || rec.state.status === 'paused') return false;
    if (rec.state.status === 'removing' || rec.state.status === 'dead')
      throw new BerthError('FailedPrecondition', `cannot start container ${rec.id.slice(0, 12)}: it is ${rec.state.status}`);
    rec.manuallyStopped = false;
    try {
      await launch(ctx, rec);
    } catch (err) {
      throw await startFailed(ctx, rec, err);
    }
    return true;
  });
}

/**
 * A start that failed: recorded in State.Error with Docker's exit code (127 not found, 126
 * not executable), worded as the docker CLI expects to map it, and an AutoRemove container is
 * removed (its client waits for that).
 */
async function startFailed(ctx: EngineContext, rec: ContainerRecord, err: unknown): Promise<unknown> {
  let out = err;
  if (err instanceof BerthError && err.message.startsWith('exec:')) {
    const message = err.message.replace(/No such file or directory/g, 'no such file or directory').replace(/Permission denied/g, 'permission denied');
    out = new BerthError(err.code, message, { cause: err, hint: err.hint });
  }
  const text = out instanceof Error ? out.message : String(out);
  rec.state.error = text;
  rec.state.exitCode = /no such file or directory|not found/.test(text) ? 127 : /permission denied|cannot execute/.test(text) ? 126 : 128;
  ctx.save(rec);
  if (rec.hostConfig.AutoRemove) {
    const { removeContainer } = await import('./remove.js');
    setImmediate(() => void removeContainer(ctx, rec.id, { force: true }).catch((e: unknown) => ctx.opts.warn?.(`auto-remove ${rec.id.slice(0, 12)}: ${String(e)}`)));
  }
  return out;
}

/** Makes the OCI container under a fresh monitor and starts it (caller holds the lock). */
export async function launch(ctx: EngineContext, rec: ContainerRecord): Promise<void> {
  const runDir = ctx.runDir(rec.id);
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const spec = readSpecFile(ctx.store.dir(rec.id));
  await ctx.networks.setUp(rec, spec);
  const tty = Boolean(rec.config.Tty);
  const logConfig = rec.hostConfig.LogConfig ?? {};
  const noLog = logConfig.Type === 'none';
  const created = await ociCreate(ctx.runtime, {
    id: rec.id,
    bundle: ctx.store.dir(rec.id),
    spec,
    consoleSocket: tty ? consoleSocketPath(runDir) : undefined,
    stdio: ['ignore', 'ignore', 'ignore'],
    wrapper: monitorArgv({
      runDir,
      logPath: noLog ? undefined : ctx.store.logPath(rec.id),
      logMaxSize: parseSize(logConfig.Config?.['max-size']) ?? ctx.opts.logMaxSize ?? 10 * 1024 * 1024,
      logMaxFiles: Number(logConfig.Config?.['max-file'] ?? ctx.opts.logMaxFiles ?? 3),
      tty,
      stdin: Boolean(rec.config.OpenStdin),
      stdinOnce: Boolean(rec.config.StdinOnce),
      // A client attached before the start (docker run) must see the first byte: the monitor
      // holds the output until a client has said HELLO.
      waitAttachMs: (ctx.pendingAttach.get(rec.id)?.length ?? 0) > 0 ? 5_000 : undefined,
      oomFiles: await oomFiles(ctx, spec.linux?.cgroupsPath),
    }),
  }).catch(async (err: unknown) => {
    await ctx.networks.tearDown(rec).catch((e: unknown) => attachCleanupError(err, e));
    throw err;
  });
  try {
    // The process waits on the exec fifo: clients attached before the start join now, so
    // they see its first byte of output.
    const pending = ctx.pendingAttach.get(rec.id)?.splice(0) ?? [];
    await Promise.all(pending.map((join) => join(runDir).catch(() => undefined)));
    watchExit(ctx, rec);
    await ociStart(ctx.runtime, rec.id);
  } catch (err) {
    await ociDelete(ctx.runtime, rec.id, true).catch((e) => attachCleanupError(err, e));
    await ctx.networks.tearDown(rec).catch((e: unknown) => attachCleanupError(err, e));
    throw err;
  }
  rec.state = {
    ...rec.state,
    status: 'running',
    pid: created.launched.pid,
    exitCode: 0,
    error: '',
    oomKilled: false,
    startedAt: new Date().toISOString(),
    health: rec.config.Healthcheck && rec.config.Healthcheck.Test?.[0] !== 'NONE' ? { status: 'starting', failingStreak: 0, log: [] } : undefined,
  };
  ctx.save(rec);
  ctx.emit('start', rec);
  startHealthChecks(ctx, rec);
}

/** The cgroup file where the kernel counts the container's OOM kills (both have `oom_kill N`). */
async function oomFiles(ctx: EngineContext, cgroupsPath: string | undefined): Promise<string[]> {
  if (!cgroupsPath?.startsWith('/')) return [];
  const host = await ctx.runtime.cgroupHost();
  const memory = host.v1.find((m) => m.controllers.includes('memory'));
  if (memory) return [join(memory.mountPoint, cgroupsPath, 'memory.oom_control')];
  if (host.v2 && host.mode === 'v2') return [join(host.v2.mountPoint, cgroupsPath, 'memory.events')];
  return [];
}

function parseSize(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const m = /^(-?\d+(?:\.\d+)?)\s*([kmg]?)b?$/i.exec(text.trim());
  if (!m) throw new BerthError('InvalidArgument', `HostConfig.LogConfig.Config.max-size: "${text}" is not a size (like 10m)`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const n = Number(m[1]) * unit;
  return n < 0 ? 0 : Math.floor(n);
}

/** Connects to the monitor and handles the exit when it comes (or the monitor vanishes). */
export function watchExit(ctx: EngineContext, rec: ContainerRecord): void {
  const runDir = ctx.runDir(rec.id);
  // Each run of the container gets a token: a late exit of an earlier run changes nothing.
  const token = (ctx.runTokens.get(rec.id) ?? 0) + 1;
  ctx.runTokens.set(rec.id, token);
  connectMonitor(runDir, {})
    .then(
      async (conn) => {
        const info = (await conn.exited) ?? readExit(runDir);
        conn.close();
        await onExit(ctx, rec.id, info, token);
      },
      async () => onExit(ctx, rec.id, readExit(runDir), token),
    )
    .catch((err: unknown) => ctx.opts.warn?.(`container ${rec.id.slice(0, 12)}: handling its exit failed: ${err instanceof Error ? err.message : String(err)}`));
}

/** Records an exit, tells waiters, then restarts or auto-removes as the config says. */
export async function onExit(ctx: EngineContext, id: string, info: ExitInfo | undefined, token?: number): Promise<void> {
  const rec = ctx.containers.get(id);
  if (!rec) return;
  await ctx.locked(id, async () => {
    // A later start already replaced this run, or the container is gone (rm -f).
    if (token !== undefined && ctx.runTokens.get(id) !== token) return;
    if (!ctx.containers.has(id)) return;
    stopHealthChecks(rec.id);
    await ociDelete(ctx.runtime, rec.id, true).catch((err: unknown) => ctx.opts.warn?.(`container ${rec.id.slice(0, 12)}: removing its runtime state: ${String(err)}`));
    await ctx.networks.tearDown(rec).catch((err: unknown) => ctx.opts.warn?.(`container ${rec.id.slice(0, 12)}: removing its network sandbox: ${String(err)}`));
    const exitCode = info?.exitCode ?? 255;
    const ranMs = Date.now() - Date.parse(rec.state.startedAt);
    rec.state = {
      ...rec.state,
      status: 'exited',
      pid: 0,
      exitCode,
      oomKilled: info?.oomKilled ?? false,
      error: info ? '' : 'the container monitor ended without recording an exit code',
      finishedAt: info?.finishedAt ?? new Date().toISOString(),
      health: rec.state.health ? { ...rec.state.health, status: 'unhealthy' } : undefined,
    };
    if (rec.state.oomKilled) ctx.emit('oom', rec);
    ctx.emit('die', rec, { exitCode: String(exitCode) });
    const restart = shouldRestart(rec, exitCode);
    if (restart) {
      rec.state.status = 'restarting';
      rec.restartCount++;
    }
    ctx.save(rec);
    for (const w of ctx.waitersOf(id).exit.splice(0)) w(exitCode);
    if (restart) scheduleRestart(ctx, rec, ranMs);
    else if (rec.hostConfig.AutoRemove) {
      const { removeContainer } = await import('./remove.js');
      // Outside the lock: remove takes it.
      setImmediate(() => void removeContainer(ctx, rec.id, { force: true }).catch((err: unknown) => ctx.opts.warn?.(`auto-remove ${rec.id.slice(0, 12)}: ${String(err)}`)));
    }
  });
}

function shouldRestart(rec: ContainerRecord, exitCode: number): boolean {
  const policy = rec.hostConfig.RestartPolicy ?? { Name: 'no' };
  if (rec.manuallyStopped) return false;
  switch (policy.Name) {
    case 'always':
    case 'unless-stopped':
      return true;
    case 'on-failure':
      return exitCode !== 0 && (!policy.MaximumRetryCount || rec.restartCount < policy.MaximumRetryCount);
    default:
      return false;
  }
}

const backoff = new Map<string, number>();

function scheduleRestart(ctx: EngineContext, rec: ContainerRecord, ranMs: number): void {
  const prev = backoff.get(rec.id) ?? 0;
  const delay = ranMs >= RESTART_RESET_MS || prev === 0 ? RESTART_BACKOFF_MIN_MS : Math.min(prev * 2, RESTART_BACKOFF_MAX_MS);
  backoff.set(rec.id, delay);
  setTimeout(() => {
    void ctx
      .locked(rec.id, async () => {
        if (rec.state.status !== 'restarting' || !ctx.containers.has(rec.id)) return;
        await launch(ctx, rec);
        ctx.emit('restart', rec);
      })
      .catch((err: unknown) => {
        rec.state.status = 'exited';
        rec.state.error = err instanceof Error ? err.message : String(err);
        ctx.save(rec);
        ctx.opts.warn?.(`restart of ${rec.id.slice(0, 12)} failed: ${rec.state.error}`);
      });
  }, delay).unref();
}
