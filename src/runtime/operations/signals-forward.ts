// While a foreground container runs, signals sent to berth itself go to the container.
// The terminal's own (INT, QUIT) reach berth-exec too, which forwards them; here they are
// only kept from killing berth.

const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'];
const SWALLOWED: NodeJS.Signals[] = ['SIGINT', 'SIGQUIT'];

/** Starts forwarding to pid; returns the function that stops it. */
export function forwardSignals(pid: number): () => void {
  const forward = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // it ended meanwhile
    }
  };
  const ignore = () => undefined;
  for (const s of FORWARDED) process.on(s, forward);
  for (const s of SWALLOWED) process.on(s, ignore);
  return () => {
    for (const s of FORWARDED) process.off(s, forward);
    for (const s of SWALLOWED) process.off(s, ignore);
  };
}
