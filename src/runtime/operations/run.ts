// run: create + start in one go. Foreground (default): berth-exec stays the container's
// parent, stdio is shared, signals are forwarded, and the exit status comes back; the
// container is deleted when it ends. Detached: create then start.
import { exitCodeOf } from '../exec-channel.js';
import { runHooksWarnOnly } from '../hooks.js';
import type { RuntimeContext } from './context.js';
import { createContainer, type CreateOptions } from './create.js';
import { deleteContainer } from './delete.js';
import { startContainer } from './start.js';

export type RunOptions = Omit<CreateOptions, 'foreground' | 'startNow'> & { detach?: boolean };

/** Signals a user sends to berth itself; berth-exec forwards the terminal's own (INT, QUIT). */
const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'];

/** Runs a container; resolves with its exit code (0 once started, for detached runs). */
export async function runContainer(ctx: RuntimeContext, o: RunOptions): Promise<number> {
  if (o.detach) {
    await createContainer(ctx, o);
    await startContainer(ctx, o.id);
    return 0;
  }
  const { rec, launched } = await createContainer(ctx, {
    ...o,
    foreground: true,
    startNow: true,
    stdio: o.stdio ?? ['inherit', 'inherit', 'inherit'],
  });
  const forward = (sig: NodeJS.Signals) => {
    try {
      process.kill(launched.pid, sig);
    } catch {
      // it ended meanwhile
    }
  };
  const ignore = () => undefined;
  for (const s of FORWARDED) process.on(s, forward);
  process.on('SIGINT', ignore);
  process.on('SIGQUIT', ignore);
  try {
    await runHooksWarnOnly(rec.config.hooks, 'poststart', ctx.store.ociState(rec, 'running'), ctx.warn);
    const status = await launched.exited;
    return exitCodeOf(status);
  } finally {
    for (const s of FORWARDED) process.off(s, forward);
    process.off('SIGINT', ignore);
    process.off('SIGQUIT', ignore);
    await deleteContainer(ctx, o.id, true);
  }
}
