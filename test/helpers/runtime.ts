// Runs an OCI runtime's command line (berth-oci or, for validating the tests, runc) with a
// per-suite --root, from the outside. Every spawn has a timeout; output goes to files so a
// container that inherits the runtime's stdio (create, run --detach) cannot hold a pipe open.
import { spawn, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (dist/test/helpers → ../../..). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const NATIVE_BUILD = join(REPO, 'native', 'build');
export const PROBE = join(NATIVE_BUILD, 'berth-probe');
export const RECVTTY = join(NATIVE_BUILD, 'berth-recvtty');

/** The runtime under test: $BERTH_TEST_RUNTIME, default the repository's bin/berth-oci. */
export function runtimeBin(): string {
  return process.env['BERTH_TEST_RUNTIME'] || join(REPO, 'bin', 'berth-oci');
}

/** True when the runtime under test is runc (some tests skip runc 1.1.5 quirks). */
export function isRunc(): boolean {
  return /(^|\/)runc$/.test(runtimeBin());
}

export const DEFAULT_TIMEOUT_MS = 30_000;

export interface RunResult {
  /** Exit code, or null when killed by a signal or the timeout. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** Files that hold the process's stdout/stderr (and a detached container's, later). */
  stdoutFile: string;
  stderrFile: string;
}

export interface CommandOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Extra fds given to the runtime from fd 3 on (for --preserve-fds). */
  extraFds?: number[];
}

let seq = 0;

/** Spawns any command with output captured to files; resolves on exit, never rejects on failure. */
export async function runCommand(
  bin: string,
  args: string[],
  outDir: string,
  opts: CommandOptions = {},
): Promise<RunResult> {
  const n = ++seq;
  const stdoutFile = join(outDir, `out-${n}.txt`);
  const stderrFile = join(outDir, `err-${n}.txt`);
  const out = openSync(stdoutFile, 'w');
  const err = openSync(stderrFile, 'w');
  const stdio: SpawnOptions['stdio'] = [
    opts.input === undefined ? 'ignore' : 'pipe',
    out,
    err,
    ...(opts.extraFds ?? []),
  ];
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  try {
    return await new Promise<RunResult>((resolvePromise, reject) => {
      const child = spawn(bin, args, { stdio, env: opts.env ?? process.env, cwd: opts.cwd });
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      if (opts.input !== undefined && child.stdin) {
        child.stdin.on('error', () => undefined);
        child.stdin.end(opts.input);
      }
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        resolvePromise({
          code,
          signal,
          timedOut,
          stdout: readFileSync(stdoutFile, 'utf8'),
          stderr: readFileSync(stderrFile, 'utf8'),
          stdoutFile,
          stderrFile,
        });
      });
    });
  } finally {
    closeSync(out);
    closeSync(err);
  }
}

export interface ContainerState {
  ociVersion: string;
  id: string;
  pid: number;
  status: string;
  bundle: string;
  rootfs?: string;
  created?: string;
  owner?: string;
  annotations?: Record<string, string>;
}

export interface CreateOptions extends CommandOptions {
  pidFile?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  preserveFds?: number;
}

export interface ExecOptions extends CommandOptions {
  processFile?: string;
  env?: NodeJS.ProcessEnv;
  envVars?: string[];
  cwdInside?: string;
  user?: string;
  caps?: string[];
  detach?: boolean;
  pidFile?: string;
  tty?: boolean;
  consoleSocket?: string;
}

/** One runtime CLI bound to one --root directory (a fresh temp dir). */
export class Runtime {
  readonly bin: string;
  readonly root: string;
  /** Where command output files go. */
  readonly outDir: string;
  readonly globalArgs: string[];

  constructor(opts: { bin?: string; root?: string; globalArgs?: string[] } = {}) {
    this.bin = opts.bin ?? runtimeBin();
    this.outDir = mkdtempSync(join(tmpdir(), 'berth-test-out-'));
    this.root = opts.root ?? mkdtempSync(join(tmpdir(), 'berth-test-root-'));
    this.globalArgs = opts.globalArgs ?? [];
  }

  get isRunc(): boolean {
    return /(^|\/)runc$/.test(this.bin);
  }

  /** Runs `<bin> --root ROOT <args>`. */
  cmd(args: string[], opts: CommandOptions = {}): Promise<RunResult> {
    return runCommand(this.bin, ['--root', this.root, ...this.globalArgs, ...args], this.outDir, opts);
  }

  create(id: string, bundle: string, opts: CreateOptions = {}): Promise<RunResult> {
    const a = ['create', '--bundle', bundle];
    if (opts.pidFile) a.push('--pid-file', opts.pidFile);
    if (opts.consoleSocket) a.push('--console-socket', opts.consoleSocket);
    if (opts.noPivot) a.push('--no-pivot');
    if (opts.preserveFds !== undefined) a.push('--preserve-fds', String(opts.preserveFds));
    a.push(id);
    return this.cmd(a, opts);
  }

  start(id: string, opts: CommandOptions = {}): Promise<RunResult> {
    return this.cmd(['start', id], opts);
  }

  /** Parsed `state`; throws with the runtime's stderr when it fails. */
  async state(id: string): Promise<ContainerState> {
    const r = await this.cmd(['state', id]);
    if (r.code !== 0) throw new Error(`state ${id} failed (${r.code}): ${r.stderr}`);
    return JSON.parse(r.stdout) as ContainerState;
  }

  kill(id: string, signal?: string, opts: { all?: boolean } = {}): Promise<RunResult> {
    const a = ['kill'];
    if (opts.all) a.push('--all');
    a.push(id);
    if (signal !== undefined) a.push(signal);
    return this.cmd(a);
  }

  delete(id: string, opts: { force?: boolean } = {}): Promise<RunResult> {
    return this.cmd(opts.force ? ['delete', '--force', id] : ['delete', id]);
  }

  run(id: string, bundle: string, opts: CreateOptions & { detach?: boolean } = {}): Promise<RunResult> {
    const a = ['run', '--bundle', bundle];
    if (opts.detach) a.push('--detach');
    if (opts.pidFile) a.push('--pid-file', opts.pidFile);
    if (opts.consoleSocket) a.push('--console-socket', opts.consoleSocket);
    if (opts.noPivot) a.push('--no-pivot');
    if (opts.preserveFds !== undefined) a.push('--preserve-fds', String(opts.preserveFds));
    a.push(id);
    return this.cmd(a, opts);
  }

  exec(id: string, args: string[], opts: ExecOptions = {}): Promise<RunResult> {
    const a = ['exec'];
    if (opts.processFile) a.push('--process', opts.processFile);
    for (const e of opts.envVars ?? []) a.push('--env', e);
    if (opts.cwdInside) a.push('--cwd', opts.cwdInside);
    if (opts.user) a.push('--user', opts.user);
    for (const c of opts.caps ?? []) a.push('--cap', c);
    if (opts.tty) a.push('--tty');
    if (opts.detach) a.push('--detach');
    if (opts.pidFile) a.push('--pid-file', opts.pidFile);
    if (opts.consoleSocket) a.push('--console-socket', opts.consoleSocket);
    a.push(id, ...args);
    return this.cmd(a, opts);
  }

  /** Waits until `state` reports `status` (or the container is gone when status is null). */
  async waitStatus(id: string, status: string | null, timeoutMs = 10_000): Promise<ContainerState | null> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const r = await this.cmd(['state', id]);
      if (r.code === 0) {
        const s = JSON.parse(r.stdout) as ContainerState;
        if (s.status === status) return s;
        last = s.status;
      } else if (status === null) {
        return null;
      } else {
        last = `state failed: ${r.stderr.trim()}`;
      }
      if (Date.now() > deadline) throw new Error(`container ${id}: wanted status ${status}, last saw ${last}`);
      await sleep(50);
    }
  }

  /** Removes the --root and output dirs (after the containers were deleted). */
  async dispose(): Promise<void> {
    await rm(this.outDir, { recursive: true, force: true });
    if (existsSync(this.root)) await rm(this.root, { recursive: true, force: true });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns a value other than undefined, or throws after timeoutMs. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(30);
  }
}

/** Formats a result for assertion messages. */
export function show(r: RunResult): string {
  return `exit=${r.code} signal=${r.signal}${r.timedOut ? ' TIMED OUT' : ''}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 2000)}`;
}
