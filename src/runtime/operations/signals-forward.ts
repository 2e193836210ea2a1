// While a foreground container runs, signals sent to berth itself go to the container.
// The terminal's own (INT, QUIT) reach berth-exec too, which forwards them; here they are
// only kept from killing berth.
//
// The handlers go in before the container is created, as runc's do: a SIGTERM that arrives
// while the container is being set up must neither kill berth halfway (leaving its state and
// cgroups behind) nor be lost. Such early signals are held and delivered once the
// container's pid is known.

// Every signal Node lets a program catch and runc would forward, except the terminal's own
// and the job-control ones, which drive berth itself.
const FORWARDED: NodeJS.Signals[] = [
  'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGVTALRM', 'SIGXCPU',
  'SIGXFSZ', 'SIGPWR', 'SIGIO', 'SIGCONT', 'SIGSTKFLT', 'SIGABRT',
];
const SWALLOWED: NodeJS.Signals[] = ['SIGINT', 'SIGQUIT'];

export interface SignalForwarder {
  /** From now on signals go to pid; those held so far are delivered first, in order. */
  target(pid: number): void;
  stop(): void;
}

export function catchSignals(): SignalForwarder {
  let pid: number | undefined;
  const held: NodeJS.Signals[] = [];
  const send = (sig: NodeJS.Signals): void => {
    try {
      process.kill(pid!, sig);
    } catch {
      // it ended meanwhile
    }
  };
  const forward = (sig: NodeJS.Signals): void => {
    if (pid === undefined) held.push(sig);
    else send(sig);
  };
  const ignore = (): void => undefined;
  for (const s of FORWARDED) process.on(s, forward);
  for (const s of SWALLOWED) process.on(s, ignore);
  return {
    target(p: number) {
      pid = p;
      for (const sig of held.splice(0)) send(sig);
    },
    stop() {
      for (const s of FORWARDED) process.off(s, forward);
      for (const s of SWALLOWED) process.off(s, ignore);
    },
  };
}
