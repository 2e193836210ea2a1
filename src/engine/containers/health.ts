// Health checks (Docker's HEALTHCHECK): the test runs inside the container every interval;
// `retries` failures in a row make it unhealthy; failures during the start period do not
// count. The state goes to State.Health and a `health_status: …` event.
import type { EngineContext } from '../context.js';
import type { HealthConfig } from '../types.js';
import { runInContainer } from './exec.js';
import type { ContainerRecord } from './record.js';

const NS = 1_000_000;
const DEFAULT_INTERVAL_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 3;
const LOG_ENTRIES = 5;

const timers = new Map<string, NodeJS.Timeout>();

function command(test: string[]): string[] | undefined {
  const [kind, ...rest] = test;
  if (kind === 'CMD') return rest;
  if (kind === 'CMD-SHELL') return ['/bin/sh', '-c', rest.join(' ')];
  return undefined;
}

export function startHealthChecks(ctx: EngineContext, rec: ContainerRecord): void {
  stopHealthChecks(rec.id);
  const hc: HealthConfig | null | undefined = rec.config.Healthcheck;
  const cmd = hc?.Test ? command(hc.Test) : undefined;
  if (!hc || !cmd || cmd.length === 0) return;
  const interval = hc.Interval ? hc.Interval / NS : DEFAULT_INTERVAL_MS;
  const timeout = hc.Timeout ? hc.Timeout / NS : DEFAULT_TIMEOUT_MS;
  const retries = hc.Retries || DEFAULT_RETRIES;
  const startPeriod = (hc.StartPeriod ?? 0) / NS;
  const startInterval = hc.StartInterval ? hc.StartInterval / NS : interval;
  const startedAt = Date.now();
  const runOnce = async (): Promise<void> => {
    if (rec.state.status !== 'running' || !rec.state.health) return;
    const start = new Date();
    let exitCode: number;
    let output: string;
    try {
      ({ exitCode, output } = await runInContainer(ctx, rec, cmd, timeout));
    } catch (err) {
      exitCode = -1;
      output = err instanceof Error ? err.message : String(err);
    }
    const h = rec.state.health;
    if (rec.state.status !== 'running' || !h) return;
    h.log = [...h.log, { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: exitCode, Output: output }].slice(-LOG_ENTRIES);
    const before = h.status;
    const inStartPeriod = Date.now() - startedAt < startPeriod;
    if (exitCode === 0) {
      h.status = 'healthy';
      h.failingStreak = 0;
    } else if (!inStartPeriod) {
      h.failingStreak++;
      if (h.failingStreak >= retries) h.status = 'unhealthy';
    }
    ctx.save(rec);
    if (h.status !== before) ctx.emit(`health_status: ${h.status}`, rec);
  };
  const schedule = (): void => {
    const starting = rec.state.health?.status === 'starting' && Date.now() - startedAt < startPeriod;
    const t = setTimeout(() => {
      void runOnce().finally(() => {
        if (timers.get(rec.id) === t) schedule();
      });
    }, starting ? startInterval : interval);
    t.unref();
    timers.set(rec.id, t);
  };
  schedule();
}

export function stopHealthChecks(id: string): void {
  const t = timers.get(id);
  if (t) clearTimeout(t);
  timers.delete(id);
}
