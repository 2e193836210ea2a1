// start: the container's init waits in OP_WAIT_START, blocked opening exec.fifo for
// writing; opening it for reading releases it. Then poststart hooks run.
import { closeSync, constants, openSync, readSync, renameSync, unlinkSync } from 'node:fs';
import { BerthError } from '../../errors.js';
import { processAlive } from '../../host/proc.js';
import { runHooksWarnOnly } from '../hooks.js';
import { notRunning, type RuntimeContext } from './context.js';

export async function startContainer(ctx: RuntimeContext, id: string): Promise<void> {
  const { rec, status } = await ctx.load(id);
  if (status !== 'created') throw notRunning(id, status, 'start');
  // Claim the fifo by renaming it: of two concurrent starts only one can; init holds its
  // own handle on the fifo, so the name no longer matters to it.
  const fifo = `${ctx.store.fifoPath(id)}.starting.${process.pid}`;
  try {
    renameSync(ctx.store.fifoPath(id), fifo);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notRunning(id, 'running', 'start');
    throw err;
  }
  const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const buf = Buffer.alloc(1);
    const deadline = Date.now() + 30_000;
    for (let delay = 0; ; delay = Math.min(delay * 2 + 1, 20)) {
      try {
        if (readSync(fd, buf, 0, 1, null) === 1) break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      }
      if (!processAlive(rec.pid, rec.pidStartTime))
        throw new BerthError('FailedPrecondition', `cannot start container "${id}": its init process ${rec.pid} died before start`);
      if (Date.now() > deadline) throw new BerthError('Unavailable', `container "${id}" did not answer start within 30s`);
      await new Promise((r) => setTimeout(r, delay));
    }
  } finally {
    closeSync(fd);
  }
  unlinkSync(fifo);
  rec.started = true;
  ctx.store.save(rec);
  await runHooksWarnOnly(rec.config.hooks, 'poststart', ctx.store.ociState(rec, 'running'), ctx.warn);
}
