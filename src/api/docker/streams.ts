// Async iteration that stops when the client goes away, even while the source is idle (an
// events or logs follow stream may not produce anything for hours), and backpressure.
import type { Writable } from 'node:stream';

/** Settles with 'aborted' when the signal fires (never rejects). */
export function aborted(signal: AbortSignal): Promise<'aborted'> {
  if (signal.aborted) return Promise.resolve('aborted');
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve('aborted'), { once: true }));
}

export async function* untilAborted<T>(iterable: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  if (signal.aborted) return;
  const it = iterable[Symbol.asyncIterator]();
  const stop = aborted(signal);
  try {
    for (;;) {
      const next = await Promise.race([it.next(), stop]);
      if (next === 'aborted' || next.done) break;
      yield next.value;
    }
  } finally {
    // Tell the source to stop; a source blocked on next() may settle later, which is fine.
    void Promise.resolve(it.return?.()).catch(() => undefined);
  }
}

/** Resolves when the sink drained or closed (a closed sink will never drain). */
export function waitWritable(sink: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      sink.off('drain', done);
      sink.off('close', done);
      resolve();
    };
    sink.on('drain', done);
    sink.on('close', done);
  });
}
