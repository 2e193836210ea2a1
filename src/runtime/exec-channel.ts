// Runs a launch plan with berth-exec and speaks the channel protocol of native/plan.h.
import { spawn, type StdioOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import { BerthError } from '../errors.js';
import { encodePlan, frameMessage, Msg, opName, type Plan } from './plan.js';

let execPath: string | undefined;

/** Where the native executor lives: BERTH_EXEC, else native/build/ of the checkout this
 *  module was loaded from (dist/src/runtime/ or the single-file CLI bundle in dist/). */
export function execBinaryPath(): string {
  if (process.env.BERTH_EXEC) return process.env.BERTH_EXEC;
  if (execPath) return execPath;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, 'native/build/berth-exec');
    if (existsSync(candidate)) return (execPath = candidate);
    if (dir === '/') return (execPath = candidate);
  }
}

/**
 * Where berth-exec keeps seccomp filters it compiled (keyed by their rules and libseccomp's
 * version): compiling Docker's default profile takes ~15 ms, loading a cached one ~0.1 ms.
 * On tmpfs, so a reboot (or a libseccomp upgrade, which changes the key) starts afresh.
 */
export function seccompCacheDir(): string {
  return process.env.BERTH_SECCOMP_CACHE ?? '/run/berth-seccomp';
}

export interface LaunchOptions {
  /** The plan, or a promise of it: berth-exec is spawned at once and starts while the
   *  caller still prepares (cgroups); a rejected promise kills it and rejects launch. */
  plan: Plan | Promise<Plan>;
  /** The container's fds 0, 1, 2 (as child_process stdio entries). */
  stdio?: ['inherit' | 'ignore' | 'pipe' | number, 'inherit' | 'ignore' | 'pipe' | number, 'inherit' | 'ignore' | 'pipe' | number];
  /** fds 3 .. 3+preserveFds-1 of this process are passed on (runc's --preserve-fds). */
  preserveFds?: number;
  /** Called at OP_SYNC; returns the payload of MSG_CONTINUE (the state JSON for hooks). */
  onSync?: (tag: string, pid: number) => Promise<string>;
  onWarning?: (text: string) => void;
  /** Foreground plans (OP_FOREGROUND) resolve `exited` with the wait status. */
  foreground?: boolean;
  /** Bound on everything up to MSG_CHILD_DONE (hooks have their own timeouts). */
  timeoutMs?: number;
  /**
   * argv run in front of berth-exec (berthd's per-container monitor): it gets the same stdio
   * and channel, passes them on to berth-exec and exits with berth-exec's status.
   */
  wrapper?: string[];
}

export interface Launched {
  pid: number;
  /** berth-exec's own pid (alive until the container ends, for foreground plans). */
  helperPid: number;
  /** Foreground: the container process's raw wait status. Otherwise: resolves once exec is known to have happened or failed. */
  exited: Promise<number>;
  /** Pipes for fds 0..2 when stdio asked for 'pipe'. */
  stdin: NodeJS.WritableStream | null;
  stdout: NodeJS.ReadableStream | null;
  stderr: NodeJS.ReadableStream | null;
}

/** Decodes "u32 type, u32 len, payload" frames from a byte stream. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): { type: number; payload: Buffer }[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: { type: number; payload: Buffer }[] = [];
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32LE(4);
      if (this.buf.length < 8 + len) break;
      out.push({ type: this.buf.readUInt32LE(0), payload: this.buf.subarray(8, 8 + len) });
      this.buf = this.buf.subarray(8 + len);
    }
    return out;
  }
}

export function decodeErrorPayload(payload: Buffer): { index: number; errno: number; message: string } {
  return {
    index: payload.readInt32LE(0),
    errno: payload.readInt32LE(4),
    message: payload.subarray(8).toString('utf8'),
  };
}

/**
 * Spawns berth-exec, sends the plan, and resolves once the container's process is ready
 * (MSG_CHILD_DONE) with its host pid. Rejects with the executor's error (naming the op);
 * the caller owns cleanup of what it created before (cgroups, state).
 */
export function launch(opts: LaunchOptions): Promise<Launched> {
  const preserve = opts.preserveFds ?? 0;
  const channelFd = 3 + preserve;
  const stdio: StdioOptions = [...(opts.stdio ?? ['ignore', 'inherit', 'inherit'])];
  for (let i = 0; i < preserve; i++) stdio.push(3 + i);
  stdio.push('pipe');
  const [command, ...args] = [...(opts.wrapper ?? []), execBinaryPath()];
  const child = spawn(command!, args, {
    stdio,
    env: { ...process.env, _BERTH_CHANNEL_FD: String(channelFd), _BERTH_SECCOMP_CACHE: seccompCacheDir() },
  });
  const channel = child.stdio[channelFd] as Socket;
  const reader = new FrameReader();

  return new Promise<Launched>((resolve, reject) => {
    let pid = 0;
    let done = false;
    let settled = false;
    let lastError: BerthError | undefined;
    let exitStatus: number | undefined;
    let resolveExited!: (status: number) => void;
    let rejectExited!: (err: unknown) => void;
    const exited = new Promise<number>((res, rej) => {
      resolveExited = res;
      rejectExited = rej;
    });
    exited.catch(() => undefined);
    // The bound covers berth-exec's own work, not hooks (they have their own timeouts).
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      if (opts.timeoutMs)
        timer = setTimeout(() => fail(new BerthError('Unavailable', `berth-exec did not finish starting the container within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    };
    arm();

    let planOps: Plan = [];
    function fail(err: unknown): void {
      if (timer) clearTimeout(timer);
      if (!settled) {
        settled = true;
        if (pid > 0) killQuietly(pid);
        child.kill('SIGKILL');
        // With a wrapper, berth-exec is not `child`: closing the channel ends it too.
        channel.destroy();
        reject(err);
      } else rejectExited(err);
    }

    function toError(payload: Buffer): BerthError {
      const e = decodeErrorPayload(payload);
      const step = e.index >= 0 && e.index < planOps.length ? opName(planOps[e.index].op) : 'startup';
      return new BerthError(e.message.startsWith('exec:') ? 'InvalidArgument' : 'Internal', e.message, {
        hint: `step ${e.index} (${step})${e.errno ? `, errno ${e.errno}` : ''}`,
      });
    }

    channel.on('data', (chunk: Buffer) => {
      for (const { type, payload } of reader.push(chunk)) {
        switch (type) {
          case Msg.PID:
            pid = payload.readInt32LE(0);
            break;
          case Msg.SYNC: {
            const tag = payload.toString('utf8');
            const handler = opts.onSync ?? (async () => '');
            if (timer) clearTimeout(timer);
            handler(tag, pid).then(
              (state) => {
                arm();
                channel.write(frameMessage(Msg.CONTINUE, Buffer.from(state)));
              },
              (err) => fail(err instanceof BerthError ? err : new BerthError('Internal', String(err), { cause: err })),
            );
            break;
          }
          case Msg.WARNING:
            opts.onWarning?.(payload.toString('utf8'));
            break;
          case Msg.CHILD_DONE:
            done = true;
            if (timer) clearTimeout(timer);
            if (opts.foreground) settle();
            else if (helperExit !== undefined) finishDetached();
            break;
          case Msg.ERROR:
            lastError = toError(payload);
            fail(lastError);
            break;
          case Msg.EXIT:
            exitStatus = payload.readInt32LE(0);
            break;
        }
      }
    });
    channel.on('error', () => undefined);
    child.on('error', (err) => fail(new BerthError('Unavailable', `cannot run ${execBinaryPath()}: ${err.message}`, { cause: err, hint: 'run scripts/setup.sh to build native/' })));
    function settle(): void {
      if (settled) return;
      settled = true;
      resolve({ pid, helperPid: child.pid ?? 0, exited, stdin: child.stdin, stdout: child.stdout, stderr: child.stderr });
    }
    // Detached: berth-exec exits 0 right after MSG_CHILD_DONE; the child keeps its end of
    // the channel until it execs, so stop listening instead of waiting for EOF. Messages
    // sent before the exit may still be in flight when 'exit' fires.
    let helperExit: number | undefined;
    function finishDetached(): void {
      channel.destroy();
      settle();
      resolveExited(0);
    }
    child.on('exit', (code, signal) => {
      helperExit = code ?? 128;
      if (opts.foreground || lastError) return;
      if (done && code === 0) finishDetached();
      else if (code !== 0)
        setTimeout(() => {
          if (!lastError) fail(new BerthError('Internal', `berth-exec exited (${signal ?? code}) before the container was ready`));
        }, 200).unref();
    });
    child.on('close', (code, signal) => {
      if (!opts.foreground || lastError) return;
      if (timer) clearTimeout(timer);
      if (!done) {
        fail(new BerthError('Internal', `berth-exec exited (${signal ?? code}) before the container was ready`));
        return;
      }
      if (exitStatus === undefined) rejectExited(new BerthError('Internal', 'berth-exec ended without reporting the exit status'));
      else resolveExited(exitStatus);
    });
    Promise.resolve(opts.plan).then(
      (plan) => {
        planOps = plan;
        channel.write(frameMessage(Msg.PLAN, encodePlan(plan)));
      },
    ).catch((err) => fail(err));
  });
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Converts a raw wait status into a shell-style exit code (128+signal when killed). */
export function exitCodeOf(status: number): number {
  const sig = status & 0x7f;
  if (sig === 0) return (status >> 8) & 0xff;
  return 128 + sig;
}
