// start: the container's init waits in OP_WAIT_START, blocked opening exec.fifo for
// writing; opening it for reading releases it. Then poststart hooks run.
import { closeSync, constants, openSync, renameSync, unlinkSync } from 'node:fs';
import { Socket } from 'node:net';
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
  await readStartByte(fifo, id, () => {
    if (!processAlive(rec.pid, rec.pidStartTime))
      return new BerthError('FailedPrecondition', `cannot start container "${id}": its init process ${rec.pid} died before start`);
    return undefined;
  });
  unlinkSync(fifo);
  rec.started = true;
  ctx.store.save(rec);
  await runHooksWarnOnly(rec.config.hooks, 'poststart', ctx.store.ociState(rec, 'running'), ctx.warn);
}

const START_TIMEOUT_MS = 30_000;
/** How often init's liveness is checked while its byte has not come (a dead init never writes). */
const LIVENESS_MS = 20;

/**
 * Opening the fifo for reading releases init, which writes one byte and execs. The fifo is
 * read as a pipe handle, so the byte is seen the moment it arrives (a read-and-sleep loop
 * added ~1-3 ms to every start); `dead` is asked every LIVENESS_MS because an init that died
 * before opening its end never makes the fifo readable.
 */
function readStartByte(fifo: string, id: string, dead: () => BerthError | undefined): Promise<void> {
  const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  let pipe: Socket;
  try {
    pipe = new Socket({ fd, readable: true, writable: false });
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
  return new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + START_TIMEOUT_MS;
    const finish = (err?: Error): void => {
      clearInterval(timer);
      pipe.destroy();
      if (err) reject(err);
      else resolve();
    };
    const timer = setInterval(() => {
      const err = dead();
      // An init that wrote its byte may have exec'd a process that is already gone: a byte
      // in the pipe is read (poll phase) before this verdict lands (check phase).
      if (err) setImmediate(() => finish(err));
      else if (Date.now() > deadline) finish(new BerthError('Unavailable', `container "${id}" did not answer start within ${START_TIMEOUT_MS / 1000}s`));
    }, LIVENESS_MS);
    pipe.once('data', () => finish());
    // The writer closed without writing: init is gone (or going).
    pipe.once('end', () => finish(dead() ?? new BerthError('FailedPrecondition', `cannot start container "${id}": its init closed ${fifo} without starting`)));
    pipe.once('error', (err) => finish(new BerthError('Internal', `read ${fifo}: ${err.message}`, { cause: err })));
  });
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // the error that brought us here matters more
  }
}
