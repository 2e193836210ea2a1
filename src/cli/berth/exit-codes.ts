// The docker CLI's exit statuses: 125 when the daemon (or the command line) failed, 126 when
// the container's command cannot be invoked, 127 when it does not exist, else the container's.

export const EXIT_DAEMON = 125;
export const EXIT_CANNOT_INVOKE = 126;
export const EXIT_NOT_FOUND = 127;

/** The status for a failed start, from the daemon's message (docker: runStartContainerErr). */
export function startFailureExitCode(message: string): number {
  const m = message.replace(/^Error response from daemon: /, '');
  if (/executable file not found|no such file or directory|system cannot find the file specified/i.test(m)) return EXIT_NOT_FOUND;
  if (/permission denied|is a directory/i.test(m)) return EXIT_CANNOT_INVOKE;
  return EXIT_DAEMON;
}

/** A container's status as a process exit status (a shell can only see 0-255). */
export function containerExitCode(status: number): number {
  if (!Number.isInteger(status)) return EXIT_DAEMON;
  return status & 0xff;
}
