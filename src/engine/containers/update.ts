// update: new resources (and restart policy) for a container; a running one gets them in its
// cgroup at once, and the OCI config is rewritten so that the next start has them too.
import { join } from 'node:path';
import { BerthError } from '../../errors.js';
import { writeJsonAtomic } from '../../host/fs-atomic.js';
import { updateContainer as ociUpdate } from '../../runtime/index.js';
import { applyResourceUpdate } from '../spec/index.js';
import type { EngineContext } from '../context.js';
import type { HostConfig } from '../types.js';
import { readSpecFile } from './spec-file.js';

export async function updateContainer(ctx: EngineContext, idOrName: string, update: HostConfig): Promise<{ Warnings: string[] }> {
  const rec = ctx.find(idOrName);
  if (typeof update !== 'object' || update === null) throw new BerthError('InvalidArgument', 'the update must be a JSON object (HostConfig fields)');
  return ctx.locked(rec.id, async () => {
    if (update.RestartPolicy && rec.hostConfig.AutoRemove && update.RestartPolicy.Name && update.RestartPolicy.Name !== 'no')
      throw new BerthError('InvalidArgument', 'Restart policy cannot be updated because AutoRemove is enabled for the container');
    const next = applyResourceUpdate(rec.hostConfig, update, await ctx.specHostFacts());
    const warnings = [...next.warnings];
    if (rec.state.status === 'running' || rec.state.status === 'paused') warnings.push(...(await ociUpdate(ctx.runtime, rec.id, next.resources)));
    const spec = readSpecFile(ctx.store.dir(rec.id));
    spec.linux = { ...spec.linux, resources: { ...next.resources, devices: spec.linux?.resources?.devices } };
    writeJsonAtomic(join(ctx.store.dir(rec.id), 'config.json'), spec);
    rec.hostConfig = next.hostConfig;
    rec.request = { ...rec.request, HostConfig: next.hostConfig };
    ctx.save(rec);
    ctx.emit('update', rec);
    return { Warnings: warnings };
  });
}
