// pause / resume: freeze and thaw the container's cgroup.
import { BerthError } from '../../errors.js';
import { notRunning, type RuntimeContext } from './context.js';

export async function pauseContainer(ctx: RuntimeContext, id: string): Promise<void> {
  const { cg, status } = await ctx.load(id);
  if (status !== 'running' && status !== 'created') throw notRunning(id, status, 'pause');
  if (!cg) throw new BerthError('FailedPrecondition', `container "${id}" has no cgroup to freeze`);
  await cg.freeze();
}

export async function resumeContainer(ctx: RuntimeContext, id: string): Promise<void> {
  const { cg, status } = await ctx.load(id);
  if (status !== 'paused') throw new BerthError('FailedPrecondition', `cannot resume container "${id}": container is ${status}, not paused`);
  await cg!.thaw();
}
