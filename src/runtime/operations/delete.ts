// delete: a stopped (or created) container is torn down: cgroup, poststop hooks, state.
// A running one needs --force, which kills every process first.
import { BerthError, isBerthError } from '../../errors.js';
import { waitForExit } from '../../host/proc.js';
import { runHooksWarnOnly } from '../hooks.js';
import type { RuntimeContext } from './context.js';

export async function deleteContainer(ctx: RuntimeContext, id: string, force = false): Promise<void> {
  let loaded: Awaited<ReturnType<RuntimeContext['load']>>;
  try {
    loaded = await ctx.load(id);
  } catch (err) {
    // runc's --force: a container that is already gone counts as deleted. containerd's shim
    // relies on it (it deletes once more with --force when it cleans up after a task).
    if (force && isBerthError(err, 'NotFound')) {
      // A create killed before it wrote any state leaves just the reserved directory.
      ctx.store.remove(id);
      return;
    }
    throw err;
  }
  const { rec, cg, status } = loaded;
  if ((status === 'running' || status === 'paused') && !force)
    throw new BerthError('FailedPrecondition', `cannot delete container "${id}" that is ${status}`, { hint: 'stop it first or use delete --force' });
  if (status !== 'stopped' && rec.pid) {
    if (cg) await cg.kill('SIGKILL').catch(() => undefined);
    try {
      process.kill(rec.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    if (cg && status === 'paused') await cg.thaw().catch(() => undefined);
    if (!(await waitForExit(rec.pid, rec.pidStartTime, 10_000)))
      throw new BerthError('Unavailable', `container "${id}": process ${rec.pid} did not die after SIGKILL within 10s`);
  }
  // Whatever is still in the cgroup goes with it: processes that outlived init (no pid
  // namespace of its own) or that a create killed midway left behind.
  if (cg && (await cg.pids().catch(() => [])).length > 0) {
    await cg.kill('SIGKILL').catch(() => undefined);
    await waitForEmpty(() => cg.pids(), 10_000);
  }
  if (cg) await cg.destroy();
  if (rec.pid) await runHooksWarnOnly(rec.config.hooks, 'poststop', ctx.store.ociState(rec, 'stopped'), ctx.warn);
  ctx.store.remove(id);
}

async function waitForEmpty(pids: () => Promise<number[]>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await pids().catch(() => [])).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}
