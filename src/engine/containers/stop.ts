// stop, kill, restart, pause, unpause: load → check the state allows it → act → the exit is
// recorded by the exit watcher (start.ts), not here.
import { BerthError } from '../../errors.js';
import { killContainer as ociKill, parseSignal, pauseContainer as ociPause, resumeContainer as ociResume } from '../../runtime/index.js';
import type { EngineContext } from '../context.js';
import { launch } from './start.js';
import type { ContainerRecord } from './record.js';

const DEFAULT_STOP_TIMEOUT_S = 10;

function isRunning(rec: ContainerRecord): boolean {
  return rec.state.status === 'running' || rec.state.status === 'paused';
}

/** Resolves with the exit code at the container's next exit, or after ms (undefined). */
export function nextExit(ctx: EngineContext, rec: ContainerRecord, ms?: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const w = ctx.waitersOf(rec.id);
    const done = (code: number | undefined): void => {
      if (timer) clearTimeout(timer);
      const i = w.exit.indexOf(done as (code: number) => void);
      if (i >= 0) w.exit.splice(i, 1);
      resolve(code);
    };
    const timer = ms === undefined || ms < 0 ? undefined : setTimeout(() => done(undefined), ms);
    w.exit.push(done as (code: number) => void);
  });
}

async function signalContainer(ctx: EngineContext, rec: ContainerRecord, signal: string): Promise<void> {
  try {
    await ociKill(ctx.runtime, rec.id, signal);
  } catch (err) {
    // Exited between the check and the kill: nothing to signal.
    if (err instanceof BerthError && err.code === 'FailedPrecondition') return;
    throw err;
  }
}

/** Docker's stop: StopSignal, wait `timeout` seconds, then SIGKILL. false when not running. */
export async function stopContainer(ctx: EngineContext, idOrName: string, opts: { signal?: string; timeout?: number } = {}): Promise<boolean> {
  const rec = ctx.find(idOrName);
  if (rec.state.status === 'restarting') {
    // Cancel the pending restart.
    rec.manuallyStopped = true;
    rec.state.status = 'exited';
    ctx.save(rec);
    return true;
  }
  if (!isRunning(rec)) return false;
  rec.manuallyStopped = true;
  ctx.save(rec);
  const signal = opts.signal || rec.config.StopSignal || 'SIGTERM';
  parseSignal(signal);
  const timeout = opts.timeout ?? rec.config.StopTimeout ?? DEFAULT_STOP_TIMEOUT_S;
  const exited = nextExit(ctx, rec, timeout < 0 ? undefined : timeout * 1000);
  // A paused container cannot act on a signal: thaw it so that it can (Docker does too).
  if (rec.state.status === 'paused') await ociResume(ctx.runtime, rec.id).catch(() => undefined);
  await signalContainer(ctx, rec, signal);
  if ((await exited) !== undefined) return true;
  const killed = nextExit(ctx, rec);
  await signalContainer(ctx, rec, 'SIGKILL');
  await killed;
  return true;
}

export async function killContainer(ctx: EngineContext, idOrName: string, signal = 'SIGKILL'): Promise<void> {
  const rec = ctx.find(idOrName);
  if (!isRunning(rec)) throw new BerthError('Conflict', `Cannot kill container: ${idOrName}: Container ${rec.id} is not running`);
  const n = parseSignal(signal);
  if (n === 9 || n === 15) {
    rec.manuallyStopped = true;
    ctx.save(rec);
  }
  await signalContainer(ctx, rec, signal);
  // A frozen process acts on SIGKILL only once thawed (cgroup v1 freezer): thaw it, as Docker does.
  if (n === 9 && rec.state.status === 'paused') await ociResume(ctx.runtime, rec.id).catch(() => undefined);
  ctx.emit('kill', rec, { signal: String(n) });
}

export async function restartContainer(ctx: EngineContext, idOrName: string, opts: { signal?: string; timeout?: number } = {}): Promise<void> {
  const rec = ctx.find(idOrName);
  await stopContainer(ctx, rec.id, opts);
  await ctx.locked(rec.id, async () => {
    if (isRunning(rec)) return;
    rec.manuallyStopped = false;
    await launch(ctx, rec);
  });
  ctx.emit('restart', rec);
}

export async function pauseContainer(ctx: EngineContext, idOrName: string): Promise<void> {
  const rec = ctx.find(idOrName);
  await ctx.locked(rec.id, async () => {
    if (rec.state.status === 'paused') throw new BerthError('Conflict', `Container ${rec.id} is already paused`);
    if (rec.state.status !== 'running') throw new BerthError('Conflict', `Container ${rec.id} is not running`);
    await ociPause(ctx.runtime, rec.id);
    rec.state.status = 'paused';
    ctx.save(rec);
  });
  ctx.emit('pause', rec);
}

export async function unpauseContainer(ctx: EngineContext, idOrName: string): Promise<void> {
  const rec = ctx.find(idOrName);
  await ctx.locked(rec.id, async () => {
    if (rec.state.status !== 'paused') throw new BerthError('Conflict', `Container ${rec.id} is not paused`);
    await ociResume(ctx.runtime, rec.id);
    rec.state.status = 'running';
    ctx.save(rec);
  });
  ctx.emit('unpause', rec);
}
