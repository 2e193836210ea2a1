// `docker update`: the resource fields (and restart policy) Docker lets change on an
// existing container, checked with the same rules as create. Anything else is refused by name.
import type { Resources } from '../../runtime/spec.js';
import type { HostConfig } from '../types.js';
import type { SpecHostFacts } from './host-facts.js';
import { invalid } from './invalid.js';
import { buildResources } from './resources.js';

const UPDATABLE = new Set<keyof HostConfig>([
  'BlkioWeight', 'CpuShares', 'CpuPeriod', 'CpuQuota', 'NanoCpus', 'CpusetCpus', 'CpusetMems', 'Memory', 'MemorySwap',
  'MemoryReservation', 'KernelMemory', 'PidsLimit', 'RestartPolicy', 'CpuRealtimePeriod', 'CpuRealtimeRuntime',
]);

export interface ResourceUpdate {
  /** The container's new HostConfig (inspect's). */
  hostConfig: HostConfig;
  /** The complete resources after the update, for the cgroup manager. */
  resources: Resources;
  warnings: string[];
}

/**
 * Applies an update body to a container's HostConfig. Fields left zero or absent keep their
 * value, as in Docker; NanoCpus and CpuPeriod/CpuQuota replace each other.
 */
export function applyResourceUpdate(current: HostConfig, update: HostConfig, facts: SpecHostFacts): ResourceUpdate {
  const next: HostConfig = { ...current };
  for (const [key, value] of Object.entries(update) as [keyof HostConfig, unknown][]) {
    if (value === undefined || value === null || value === 0 || value === '' || (Array.isArray(value) && value.length === 0)) continue;
    if (!UPDATABLE.has(key)) throw invalid(`HostConfig.${key}`, 'cannot be changed on an existing container', 'recreate the container');
    (next as Record<string, unknown>)[key] = value;
  }
  if (update.NanoCpus) {
    next.CpuPeriod = 0;
    next.CpuQuota = 0;
  } else if (update.CpuPeriod || update.CpuQuota) next.NanoCpus = 0;
  // A new Memory above the old doubled swap would be refused; Docker recomputes the default.
  if (update.Memory && !update.MemorySwap && current.MemorySwap === (current.Memory ?? 0) * 2) next.MemorySwap = 0;
  if (next.RestartPolicy?.Name && next.RestartPolicy.Name !== 'no' && current.AutoRemove) {
    throw invalid('HostConfig.RestartPolicy', 'Restart policy cannot be updated because AutoRemove is enabled for the container');
  }
  const built = buildResources(next, facts);
  return { hostConfig: built.hostConfig, resources: built.resources, warnings: built.warnings };
}
