// update: change the resources of a running container and remember them in its state.
import { notRunning, type RuntimeContext } from './context.js';
import type { Resources } from '../spec.js';
import { BerthError } from '../../errors.js';

function merge(base: Resources, extra: Resources): Resources {
  const out: Resources = { ...base };
  for (const [k, v] of Object.entries(extra) as [keyof Resources, unknown][]) {
    const prev = out[k];
    (out as Record<string, unknown>)[k] =
      v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev) ? { ...prev, ...v } : v;
  }
  return out;
}

export async function updateContainer(ctx: RuntimeContext, id: string, resources: Resources): Promise<string[]> {
  const { rec, cg, status } = await ctx.load(id);
  if (status === 'stopped') throw notRunning(id, status, 'update');
  if (!cg) throw new BerthError('FailedPrecondition', `container "${id}" has no cgroup`);
  const warnings = await cg.update(resources, 'resources');
  rec.config.linux = { ...rec.config.linux, resources: merge(rec.config.linux?.resources ?? {}, resources) };
  ctx.store.save(rec);
  return warnings.map((w) => (typeof w === 'string' ? w : w.message));
}
