// exec: run another process inside a running container's namespaces and cgroups.
import { resolve } from 'node:path';
import { BerthError } from '../../errors.js';
import { formatPlan } from '../plan.js';
import { compileExec, type ExecCompileOptions } from '../compile.js';
import { exitCodeOf, launch, type LaunchOptions } from '../exec-channel.js';
import type { NamespaceType, Process } from '../spec.js';
import { differingNamespaces, type RuntimeContext } from './context.js';
import { catchSignals } from './signals-forward.js';
import { writePidFile } from './create.js';

const NS_TYPE: Record<string, NamespaceType> = {
  user: 'user', pid: 'pid', ipc: 'ipc', uts: 'uts', net: 'network', cgroup: 'cgroup', time: 'time', mnt: 'mount',
};

export interface ExecOptions {
  id: string;
  process: Process;
  detach?: boolean;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds?: number;
  stdio?: LaunchOptions['stdio'];
  /** runc's --ignore-paused: exec even into a frozen container (the process starts frozen). */
  ignorePaused?: boolean;
  /** See LaunchOptions.wrapper (detached execs only). */
  wrapper?: string[];
}

/** Runs the process; resolves with its exit code (foreground) or 0 once it runs (detached). */
export async function execInContainer(ctx: RuntimeContext, o: ExecOptions): Promise<number> {
  const { rec, cg, status } = await ctx.load(o.id);
  if (status === 'paused' && !o.ignorePaused) throw new BerthError('FailedPrecondition', `cannot exec in container "${o.id}": it is paused`, { hint: 'resume it first' });
  if (status !== 'running' && status !== 'created' && status !== 'paused') throw new BerthError('FailedPrecondition', `cannot exec in container "${o.id}": container is ${status}`, { hint: 'container not running' });
  const compileOpts: ExecCompileOptions = {
    spec: rec.config,
    process: o.process,
    namespaces: differingNamespaces(rec.pid).map((n) => ({ type: NS_TYPE[n.name], path: n.path })),
    cgroupDirs: cg ? cg.joinDirs() : [],
    consoleSocket: o.consoleSocket ? resolve(o.consoleSocket) : undefined,
    foreground: !o.detach,
    preserveFds: o.preserveFds,
    host: ctx.hostFacts(),
  };
  const { plan, warnings } = compileExec(compileOpts);
  warnings.forEach(ctx.warn);
  ctx.debug?.(`launch plan:\n${formatPlan(plan)}`);
  const signals = o.detach ? undefined : catchSignals();
  try {
    const launched = await launch({
      plan,
      stdio: o.stdio ?? ['inherit', 'inherit', 'inherit'],
      preserveFds: o.preserveFds,
      foreground: !o.detach,
      wrapper: o.detach ? o.wrapper : undefined,
      timeoutMs: 30_000,
      onWarning: ctx.warn,
    });
    if (o.pidFile) {
      try {
        writePidFile(o.pidFile, launched.pid);
      } catch (err) {
        process.kill(launched.pid, 'SIGKILL');
        throw err;
      }
    }
    if (!signals) return 0;
    signals.target(launched.pid);
    return exitCodeOf(await launched.exited);
  } finally {
    signals?.stop();
  }
}
