// Process facts from /proc. Node has no pidfd, so a pid is identified by (pid, start time):
// a recycled pid has a different start time.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

export interface ProcStat {
  pid: number;
  state: string; // R, S, D, Z, T, t, X, ...
  ppid: number;
  startTime: number; // clock ticks since boot (field 22)
}

/** Parses /proc/<pid>/stat; undefined when the process does not exist. */
export function readProcStat(pid: number, procRoot = '/proc'): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`${procRoot}/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  return parseProcStat(text);
}

export function parseProcStat(text: string): ProcStat {
  // comm may contain spaces and parentheses: fields after it start past the LAST ')'.
  const close = text.lastIndexOf(')');
  const pid = Number(text.slice(0, text.indexOf(' ')));
  const rest = text.slice(close + 2).split(' ');
  return { pid, state: rest[0], ppid: Number(rest[1]), startTime: Number(rest[19]) };
}

/** True when pid is alive (not a zombie) and, if given, started at startTime. */
export function processAlive(pid: number, startTime?: number, procRoot = '/proc'): boolean {
  const st = readProcStat(pid, procRoot);
  if (!st || st.state === 'Z' || st.state === 'X') return false;
  return startTime === undefined || st.startTime === startTime;
}

/** Every pid whose /proc entry exists. */
export function listPids(procRoot = '/proc'): number[] {
  return readdirSync(procRoot)
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

export function readLinkOr(path: string, fallback = ''): string {
  try {
    return readlinkSync(path);
  } catch {
    return fallback;
  }
}

/** Waits until the process is gone (or a zombie), polling; false on timeout. */
export async function waitForExit(pid: number, startTime: number | undefined, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  while (processAlive(pid, startTime)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 50);
  }
  return true;
}
