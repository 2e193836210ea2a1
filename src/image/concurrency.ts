import { BerthError } from '../errors.js';

/**
 * Runs `work` for every item, at most `limit` at a time. The first failure aborts the
 * others through the signal each one gets, nothing new starts, and that first failure is
 * what is thrown once the running ones have settled.
 */
export async function runLimited<T>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal,
  work: (item: T, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const stop = new AbortController();
  const onAbort = (): void => stop.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < items.length) {
      if (stop.signal.aborted) {
        failure ??= { error: new BerthError('Unavailable', 'cancelled', { cause: stop.signal.reason }) };
        return;
      }
      const item = items[next++]!;
      try {
        await work(item, stop.signal);
      } catch (error) {
        failure ??= { error };
        stop.abort(error);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (failure) throw failure.error;
}
