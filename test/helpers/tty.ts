// A console-socket receiver for --console-socket tests (a small Python helper, since Node
// cannot receive SCM_RIGHTS). Resolves with what the container wrote to its terminal.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './runtime.js';

export const CONSOLE_HELPER = join(REPO, 'test', 'helpers', 'console-socket.py');

export function haveConsoleHelper(): boolean {
  return existsSync('/usr/bin/python3') && existsSync(CONSOLE_HELPER);
}

export interface ConsoleReceiver {
  /** Resolves once the socket listens. */
  ready: Promise<void>;
  /** Terminal output, the window size the pty had, and the helper's exit code. */
  done: Promise<{ output: string; winsize: string; code: number | null; stderr: string }>;
  kill(): void;
}

export function receiveConsole(socketPath: string, input = '', timeoutSec = 20): ConsoleReceiver {
  const child = spawn('/usr/bin/python3', [CONSOLE_HELPER, socketPath, input, String(timeoutSec)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.includes('listening')) onReady();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), (timeoutSec + 5) * 1000);
  const done = new Promise<{ output: string; winsize: string; code: number | null; stderr: string }>((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(killer);
      onReady();
      resolve({ output: out, winsize: /winsize (\d+ \d+)/.exec(err)?.[1] ?? '', code, stderr: err });
    });
  });
  return { ready, done, kill: () => child.kill('SIGKILL') };
}
