// rm: load → check (stopped, or force) → act (kill, unmount the rootfs, drop the snapshot,
// the anonymous volumes with -v, the directories) → forget. And rename, wait.
import { rm } from 'node:fs/promises';
import { BerthError } from '../../errors.js';
import { unmountAll } from '../../image/snapshots/mount.js';
import type { EngineContext } from '../context.js';
import type { WaitCondition, WaitResult } from '../types.js';
import { checkName } from './create.js';
import { stopHealthChecks } from './health.js';
import { nextExit } from './stop.js';
import { killContainer as ociKill, resumeContainer as ociResume } from '../../runtime/index.js';

export async function removeContainer(ctx: EngineContext, idOrName: string, opts: { force?: boolean; volumes?: boolean; link?: boolean } = {}): Promise<void> {
  if (opts.link) throw new BerthError('InvalidArgument', 'links are not supported, so there is no link to remove (drop the link option)');
  const rec = ctx.find(idOrName);
  const running = rec.state.status === 'running' || rec.state.status === 'paused';
  if (running && !opts.force)
    throw new BerthError('Conflict', `You cannot remove a running container ${rec.id}. Stop the container before attempting removal or force remove`);
  if (running) {
    rec.manuallyStopped = true;
    const exited = nextExit(ctx, rec, 20_000);
    await ociKill(ctx.runtime, rec.id, 'SIGKILL').catch(() => undefined);
    // A frozen process dies only once thawed.
    if (rec.state.status === 'paused') await ociResume(ctx.runtime, rec.id).catch(() => undefined);
    await exited;
  }
  await ctx.locked(rec.id, async () => {
    if (!ctx.containers.has(rec.id)) return;
    if (rec.state.status === 'running' || rec.state.status === 'paused')
      throw new BerthError('Conflict', `container ${rec.id.slice(0, 12)} is still running after SIGKILL; try again`);
    rec.state.status = 'removing';
    stopHealthChecks(rec.id);
    await ctx.networks.tearDown(rec).catch((err: unknown) => ctx.opts.warn?.(`container ${rec.id.slice(0, 12)}: removing its network sandbox: ${String(err)}`));
    unmountAll(ctx.store.rootfs(rec.id));
    await ctx.images.service.releaseRootfs(rec.snapshotKey).catch((err: unknown) => {
      if (!(err instanceof BerthError && err.code === 'NotFound')) throw err;
    });
    // Without its record a restarted berthd no longer knows the container: it is removed, and
    // its waiters (docker run --rm) hear so before the directories go, which they need not
    // wait for (a crash in between leaves a directory without a record, like an early crash
    // of create). setImmediate: their answers are written before the rm starts.
    ctx.store.forget(rec.id);
    ctx.containers.delete(rec.id);
    if (opts.volumes)
      for (const v of rec.anonymousVolumes)
        await ctx.volumes.remove(v, { inUse: (name) => containersUsingVolume(ctx, name) }).catch((err: unknown) => ctx.opts.warn?.(`volume ${v}: ${String(err)}`));
    ctx.emit('destroy', rec);
    for (const w of ctx.waitersOf(rec.id).removed.splice(0)) w(rec.state.exitCode);
    for (const w of ctx.waitersOf(rec.id).exit.splice(0)) w(rec.state.exitCode);
    ctx.waiters.delete(rec.id);
    await new Promise((resolve) => setImmediate(resolve));
    await Promise.all([rm(ctx.store.dir(rec.id), { recursive: true, force: true }), rm(ctx.runDir(rec.id), { recursive: true, force: true })]);
  });
}

export function containersUsingVolume(ctx: EngineContext, name: string): string[] {
  return [...ctx.containers.values()].filter((c) => c.mounts.some((m) => m.Type === 'volume' && m.Name === name)).map((c) => c.id);
}

export async function renameContainer(ctx: EngineContext, idOrName: string, newName: string): Promise<void> {
  const rec = ctx.find(idOrName);
  const name = newName.replace(/^\//, '');
  if (!name) throw new BerthError('InvalidArgument', 'a new name is required');
  if (name === rec.name) throw new BerthError('InvalidArgument', `Renaming a container with the same name as its current name`);
  checkName(ctx, name, rec.id);
  const oldName = rec.name;
  rec.name = name;
  ctx.save(rec);
  ctx.emit('rename', rec, { oldName: `/${oldName}` });
}

/** Checks now (NotFound, bad condition), then returns the wait. */
export async function waitContainer(
  ctx: EngineContext,
  idOrName: string,
  condition: WaitCondition,
  signal?: AbortSignal,
): Promise<{ exited: Promise<WaitResult> }> {
  if (!['not-running', 'next-exit', 'removed', ''].includes(condition))
    throw new BerthError('InvalidArgument', `invalid condition: "${condition}" (not-running, next-exit or removed)`);
  const rec = ctx.find(idOrName);
  const running = () => ['running', 'paused', 'restarting'].includes(rec.state.status);
  if ((condition === 'not-running' || (condition as string) === '') && !running()) return { exited: Promise.resolve({ StatusCode: rec.state.exitCode, Error: null }) };
  const exited = new Promise<WaitResult>((resolve, reject) => {
    const w = ctx.waitersOf(rec.id);
    const list = condition === 'removed' ? w.removed : w.exit;
    const done = (code: number): void => {
      signal?.removeEventListener('abort', onAbort);
      resolve({ StatusCode: code, Error: rec.state.error ? { Message: rec.state.error } : null });
    };
    const onAbort = (): void => {
      const i = list.indexOf(done);
      if (i >= 0) list.splice(i, 1);
      reject(new BerthError('Unavailable', 'the client went away'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    list.push(done);
  });
  exited.catch(() => undefined);
  return { exited };
}
