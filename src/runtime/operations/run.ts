// run: create + start in one go. Foreground (default): berth-exec stays the container's
// parent, stdio is shared, signals are forwarded, and the exit status comes back; the
// container is deleted when it ends. Detached: create then start.
import { attachCleanupError } from '../../errors.js';
import { exitCodeOf } from '../exec-channel.js';
import { runHooksWarnOnly } from '../hooks.js';
import type { RuntimeContext } from './context.js';
import { createContainer, type CreateOptions } from './create.js';
import { deleteContainer } from './delete.js';
import { catchSignals } from './signals-forward.js';
import { startContainer } from './start.js';

export type RunOptions = Omit<CreateOptions, 'foreground' | 'startNow'> & {
  detach?: boolean;
  /** runc's --keep: leave the stopped container for `state`/`delete` instead of deleting it. */
  keep?: boolean;
};

/** Runs a container; resolves with its exit code (0 once started, for detached runs). */
export async function runContainer(ctx: RuntimeContext, o: RunOptions): Promise<number> {
  if (o.detach) {
    await createContainer(ctx, o);
    try {
      await startContainer(ctx, o.id);
    } catch (err) {
      await deleteContainer(ctx, o.id, true).catch((e) => attachCleanupError(err, e));
      throw err;
    }
    return 0;
  }
  const signals = catchSignals();
  let created;
  try {
    created = await createContainer(ctx, {
      ...o,
      foreground: true,
      startNow: true,
      stdio: o.stdio ?? ['inherit', 'inherit', 'inherit'],
    });
  } catch (err) {
    signals.stop();
    throw err;
  }
  const { rec, launched } = created;
  signals.target(launched.pid);
  try {
    await runHooksWarnOnly(rec.config.hooks, 'poststart', ctx.store.ociState(rec, 'running'), ctx.warn);
    const status = await launched.exited;
    return exitCodeOf(status);
  } finally {
    signals.stop();
    // The container's exit code matters more than a failed clean-up: warn, do not throw.
    if (!o.keep) await deleteContainer(ctx, o.id, true).catch((e) => ctx.warn(`delete ${o.id}: ${e instanceof Error ? e.message : String(e)}`));
  }
}
