// Where a berthd container start spends its time, from kernel tracepoints (perf, system-wide,
// CLOCK_MONOTONIC so that they line up with process.hrtime): the execs of berth-monitor and
// berth-exec, clone3, pivot_root, the seccomp filter load, and the container's own exec,
// between the client sending POST /start and receiving its 204. perf records only these
// syscalls, so unlike strace it barely slows the start down.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

const EVENTS = [
  'syscalls:sys_enter_execve',
  'syscalls:sys_enter_execveat',
  'syscalls:sys_enter_clone3',
  'syscalls:sys_enter_pivot_root',
  'syscalls:sys_enter_exit_group',
  'syscalls:sys_enter_seccomp',
  'syscalls:sys_exit_seccomp',
];

/** The steps, in order; each is timed from the previous one. */
export const PHASES: [key: string, label: string][] = [
  ['monitor', 'berthd: request → berth-monitor exec (load, run dir, spawn)'],
  ['exec', 'berth-monitor: double fork → berth-exec exec'],
  ['reexec', 'berth-exec: re-exec from a sealed memfd'],
  ['clone3', 'berth-exec waits for the plan (berthd: cgroups, compile) → clone3'],
  ['pivot', 'child: mounts → pivot_root'],
  ['seccompCall', 'child: masks, rlimits, libseccomp builds the filter'],
  ['seccompDone', 'kernel: seccomp filter load'],
  ['execExit', 'child: caps, ready → berth-exec exits'],
  ['container', 'monitor exits, berthd saves, OCI start → container exec'],
  ['reply', 'berthd: state saved → 204 received'],
];

export interface PerfSession {
  stop(): Promise<{ comm: string; pid: number; t: number; event: string; args: string }[]>;
}

export function perfUnavailable(): string | false {
  const r = spawnSync('perf', ['list', 'syscalls:sys_enter_pivot_root'], { encoding: 'utf8', timeout: 20_000 });
  if (r.error) return 'perf is not installed (apt-get install linux-perf)';
  if (!r.stdout.includes('sys_enter_pivot_root')) return 'perf cannot see syscall tracepoints here (tracefs not mounted?)';
  return false;
}

export async function startPerf(dir: string): Promise<PerfSession> {
  const data = join(dir, 'perf.data');
  const child = spawn('perf', ['record', '-q', '-a', '-k', 'CLOCK_MONOTONIC', '-e', EVENTS.join(','), '-o', data], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // perf opens its events asynchronously; give it time before the first run.
  await new Promise((r) => setTimeout(r, 1500));
  if (child.exitCode !== null) throw new Error(`perf record exited: ${stderr.trim()}`);
  return {
    async stop() {
      child.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      const out = spawnSync('perf', ['script', '-i', data, '-F', 'comm,pid,time,event,trace', '--ns'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
      const events: { comm: string; pid: number; t: number; event: string; args: string }[] = [];
      for (const line of out.stdout.split('\n')) {
        const m = /^\s*(.+?)\s+(\d+)\s+(\d+\.\d+):\s+syscalls:(\S+):\s*(.*)$/.exec(line);
        if (m) events.push({ comm: m[1]!, pid: Number(m[2]), t: Number(m[3]), event: m[4]!, args: m[5]! });
      }
      return events;
    },
  };
}

/**
 * Phase durations (ms) of each start, given [sent, received] hrtimes (ns) of its POST /start;
 * starts where a step was not seen are left out.
 */
export function startPhases(events: Awaited<ReturnType<PerfSession['stop']>>, marks: [bigint, bigint][]): Record<string, number>[] {
  const out: Record<string, number>[] = [];
  for (const [sent, received] of marks) {
    const a = Number(sent) / 1e9;
    const b = Number(received) / 1e9;
    const at: Record<string, number> = {};
    let execPid = 0;
    let seccompCalled = false;
    for (const e of events) {
      if (e.t < a || e.t > b) continue;
      const first = (k: string): void => void (at[k] ??= e.t);
      if (e.event === 'sys_enter_execve' && e.comm === 'node') first('monitor');
      else if (e.event === 'sys_enter_execve' && e.comm === 'berth-monitor' && !execPid) {
        execPid = e.pid;
        first('exec');
      } else if (e.event === 'sys_enter_execveat') first('reexec');
      else if (e.event === 'sys_enter_clone3') first('clone3');
      else if (e.event === 'sys_enter_pivot_root') first('pivot');
      // op 1 = SECCOMP_SET_MODE_FILTER; flags 0 and a program: the real load, not libseccomp's probes.
      else if (e.event === 'sys_enter_seccomp' && /op: 0x0+1, flags: 0x0+,/.test(e.args) && !seccompCalled) {
        seccompCalled = true;
        first('seccompCall');
      } else if (e.event === 'sys_exit_seccomp' && seccompCalled) first('seccompDone');
      else if (e.event === 'sys_enter_exit_group' && e.pid === execPid) first('execExit');
      else if (e.event === 'sys_enter_execve' && e.pid !== execPid && e.comm.startsWith('memfd')) first('container');
    }
    at['reply'] = b;
    if (!PHASES.every(([k]) => at[k] !== undefined)) continue;
    const row: Record<string, number> = {};
    let prev = a;
    for (const [k] of PHASES) {
      row[k] = (at[k]! - prev) * 1000;
      prev = at[k]!;
    }
    row['total'] = (b - a) * 1000;
    out.push(row);
  }
  return out;
}
