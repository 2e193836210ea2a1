// events: runc's event stream — a stats event every interval (or once with --stats) and
// an oom event whenever the OOM killer strikes; ends when the container stops.
import type { RuntimeContext } from './context.js';

export interface RuntimeEvent {
  type: 'stats' | 'oom';
  id: string;
  data?: unknown;
}

export async function containerStats(ctx: RuntimeContext, id: string): Promise<RuntimeEvent> {
  const { cg } = await ctx.load(id);
  return { type: 'stats', id, data: cg ? await cg.stats() : {} };
}

export async function* containerEvents(ctx: RuntimeContext, id: string, intervalMs: number, signal?: AbortSignal): AsyncGenerator<RuntimeEvent> {
  let { cg } = await ctx.load(id);
  let ooms = cg ? await cg.oomEvents().catch(() => 0) : 0;
  let nextStats = 0;
  while (!signal?.aborted) {
    const { status } = await ctx.load(id).catch(() => ({ status: 'stopped' as const }));
    if (status === 'stopped') return;
    if (cg) {
      const n = await cg.oomEvents().catch(() => ooms);
      if (n > ooms) yield { type: 'oom', id };
      ooms = n;
    }
    if (Date.now() >= nextStats) {
      yield await containerStats(ctx, id);
      nextStats = Date.now() + intervalMs;
    }
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, 200)));
    ({ cg } = await ctx.load(id).catch(() => ({ cg })));
  }
}
