// Finds processes by name and argv and reads their memory from /proc: RSS (VmRSS) and PSS
// (smaps_rollup, where shared pages are split among the processes that map them — the fairer
// number for many copies of one binary).
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcMemory {
  pid: number;
  rssKb: number;
  /** undefined where smaps_rollup cannot be read. */
  pssKb?: number;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Live processes whose comm is `comm` and whose argv contains `argvIncludes`. */
export function findProcesses(comm: string, argvIncludes: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (read(`/proc/${entry}/comm`)?.trim() !== comm) continue;
    const argv = read(`/proc/${entry}/cmdline`);
    if (argv?.split('\0').join(' ').includes(argvIncludes)) pids.push(Number(entry));
  }
  return pids;
}

export function processMemory(pid: number): ProcMemory | undefined {
  const status = read(`/proc/${pid}/status`);
  const rss = status && /VmRSS:\s+(\d+) kB/.exec(status);
  if (!rss) return undefined;
  const rollup = read(`/proc/${pid}/smaps_rollup`);
  const pss = rollup && /^Pss:\s+(\d+) kB/m.exec(rollup);
  return { pid, rssKb: Number(rss[1]), pssKb: pss ? Number(pss[1]) : undefined };
}
