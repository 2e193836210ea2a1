// kill: signal the container's init, or (--all) every process in its cgroup.
import { BerthError } from '../../errors.js';
import { notRunning, type RuntimeContext } from './context.js';
import { parseSignal } from './signals.js';

export async function killContainer(ctx: RuntimeContext, id: string, signal: string | undefined, all = false): Promise<void> {
  const sig = parseSignal(signal);
  const { rec, cg, status } = await ctx.load(id);
  // --all reaches processes left in the cgroup after init ended (no pid namespace), as runc.
  if (all && cg && status === 'stopped' && (await cg.pids()).length > 0) {
    await cg.kill(sig);
    return;
  }
  if (status === 'stopped' || status === 'creating') throw notRunning(id, status, 'kill');
  if (all && cg) {
    await cg.kill(sig);
    if (status === 'paused') await cg.thaw().catch(() => undefined);
    return;
  }
  try {
    process.kill(rec.pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') throw new BerthError('FailedPrecondition', `container "${id}": no such process`, { hint: 'container not running' });
    throw err;
  }
}
