// Small things every side-by-side bench needs: finding a peer's binary, medians, error text,
// and timing a command to completion.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export function which(cmd: string): string | undefined {
  for (const d of (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) if (existsSync(join(d, cmd))) return join(d, cmd);
  return undefined;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function msSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.name === 'Error' ? err.message : `${err.name}: ${err.message}`;
}

/** Runs argv to completion; resolves with its wall time in ms, rejects with the end of its stderr when it fails or times out. */
export function timeCommand(argv: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: opts.env ?? process.env });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 16_384) stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const ms = msSince(start);
      if (code === 0) resolve(ms);
      else reject(new Error(`${argv.slice(0, 3).join(' ')} … failed (exit ${code ?? signal}): ${stderr.trim().slice(-1500)}`));
    });
  });
}
