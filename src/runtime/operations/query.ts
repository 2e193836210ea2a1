// state, list and ps: read-only views of containers.
import { execFileSync } from 'node:child_process';
import type { RuntimeContext } from './context.js';

export async function containerState(ctx: RuntimeContext, id: string) {
  const { rec, status } = await ctx.load(id);
  return ctx.store.ociState(rec, status);
}

export async function listContainers(ctx: RuntimeContext) {
  const out = [];
  for (const id of ctx.store.ids()) {
    try {
      out.push(await containerState(ctx, id));
    } catch {
      // removed while listing
    }
  }
  return out;
}

/** Every pid in the container's cgroup (or just init when it has none). */
export async function containerPids(ctx: RuntimeContext, id: string): Promise<number[]> {
  const { rec, cg, status } = await ctx.load(id);
  // The cgroup, whatever the status: processes can outlive init without a pid namespace.
  if (cg) return (await cg.pids()).sort((a, b) => a - b);
  return status === 'stopped' ? [] : [rec.pid];
}

/** `ps` table: the host's ps output limited to the container's pids (as runc does). */
export async function containerPsTable(ctx: RuntimeContext, id: string, psArgs: string[]): Promise<string> {
  const pids = new Set(await containerPids(ctx, id));
  const text = execFileSync('ps', psArgs.length ? psArgs : ['-ef'], { encoding: 'utf8' });
  const lines = text.split('\n');
  const header = lines[0];
  const pidCol = header.trim().split(/\s+/).indexOf('PID');
  const rows = lines.slice(1).filter((l) => l.trim() && pids.has(Number(l.trim().split(/\s+/)[pidCol])));
  return [header, ...rows].join('\n') + '\n';
}
