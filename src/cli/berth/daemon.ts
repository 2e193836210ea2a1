// Starting berthd when nothing listens on its socket and the user is root: in the background,
// its output in a log file, and `berth` waits (bounded) until it answers /_ping.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConnectError, DEFAULT_SOCKET } from './client.js';

export interface StartDaemonOptions {
  socketPath: string;
  /** Where berthd's output goes (default /var/log/berth/berthd.log, else next to the socket). */
  logFile?: string;
  /** berthd's entry point; found next to this file by default. */
  berthdPath?: string;
  timeoutMs?: number;
  notify: (message: string) => void;
  /** Default: the effective uid is 0. */
  isRoot?: boolean;
}

/** dist/src/cli/berthd.js seen from dist/src/cli/berth/daemon.js or from the dist/berth.cjs bundle. */
export function findBerthd(fromUrl: string = import.meta.url): string | undefined {
  const here = path.dirname(fileURLToPath(fromUrl));
  const candidates = [path.join(here, '..', 'berthd.js'), path.join(here, 'berthd.js'), path.join(here, 'src', 'cli', 'berthd.js')];
  return candidates.find((c) => existsSync(c));
}

export function ping(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath, path: '/_ping', method: 'GET', timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

function openLog(preferred: string | undefined, socketPath: string): { fd: number; file: string } {
  const choices = preferred ? [preferred] : ['/var/log/berth/berthd.log', path.join(path.dirname(socketPath), 'berthd.log')];
  let lastErr: unknown;
  for (const file of choices) {
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      return { fd: openSync(file, 'a', 0o640), file };
    } catch (err) {
      lastErr = err;
    }
  }
  throw new ConnectError(`cannot open a log file for berthd (${choices.join(', ')}): ${(lastErr as Error).message}`);
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export async function startDaemon(opts: StartDaemonOptions): Promise<void> {
  if (!(opts.isRoot ?? process.getuid?.() === 0))
    throw new ConnectError(`Cannot connect to berthd at unix://${opts.socketPath}. Is berthd running?`, {
      hint: 'start it as root (berthd), or run berth as root so that it starts berthd itself; -H or BERTH_HOST pick another socket',
    });
  const berthd = opts.berthdPath ?? findBerthd();
  if (!berthd) throw new ConnectError(`Cannot connect to berthd at unix://${opts.socketPath}, and berthd.js was not found next to berth to start it`, { hint: 'build berth (npm run build) or start berthd yourself' });
  const { fd, file } = openLog(opts.logFile, opts.socketPath);
  const args = [berthd];
  if (opts.socketPath !== DEFAULT_SOCKET) args.push('--host', `unix://${opts.socketPath}`);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.once('exit', (code, signal) => {
    exited = { code, signal };
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  child.unref();
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  let failure: Error | undefined;
  spawnError.then((e) => (failure = e));
  while (Date.now() < deadline) {
    if (failure) throw new ConnectError(`starting berthd (${process.execPath} ${args.join(' ')}) failed: ${failure.message}`);
    if (exited) {
      const how = exited.signal ? `was killed by ${exited.signal}` : `exited with status ${exited.code}`;
      const last = tail(file, 5);
      throw new ConnectError(`berthd ${how} right after starting (log: ${file})${last ? `:\n${last}` : ''}`);
    }
    if (await ping(opts.socketPath, 500)) {
      opts.notify(`berth: started berthd (pid ${child.pid}, log ${file})`);
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new ConnectError(`berthd (pid ${child.pid}) did not answer on unix://${opts.socketPath} within ${Math.round((opts.timeoutMs ?? 10_000) / 1000)} s`, { hint: `see ${file}` });
}
