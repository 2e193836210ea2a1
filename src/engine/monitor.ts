// Client of native/monitor.c (berth-monitor): the argv that puts a monitor in front of
// berth-exec, the files it leaves in the container's run dir, and its attach socket.
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BerthError } from '../errors.js';

/** Frame types of the attach socket: [type u8, 0, 0, 0, length u32 BE] + payload. */
export const Frame = {
  Stdin: 0,
  Stdout: 1,
  Stderr: 2,
  Exit: 3,
  Hello: 16,
  StdinClose: 17,
  Resize: 18,
} as const;

const MAX_SOCKET_PATH = 107;
const HELLO_STDOUT = 1;
const HELLO_STDERR = 2;
const HELLO_STDIN = 4;

export interface MonitorOptions {
  /** Where the monitor keeps attach.sock, console.sock, monitor.json and exit.json. */
  runDir: string;
  /** The json-file log (absolute); undefined: no log (--no-log). */
  logPath?: string;
  /** Bytes; 0 or -1 means unbounded. Default 10 MiB. */
  logMaxSize?: number;
  /** Files kept, the current one included (>= 1). Default 3. */
  logMaxFiles?: number;
  tty?: boolean;
  /** The container's stdin is a pipe attach clients write to (else /dev/null). */
  stdin?: boolean;
  /** Closing one client's stdin (or its disconnect) closes the container's stdin. */
  stdinOnce?: boolean;
  /** cgroup files with an `oom_kill N` line (v2 memory.events, v1 memory.oom_control). */
  oomFiles?: string[];
  /**
   * Keep the output and the exit for the first attach client, for at most this many ms: a
   * process that runs at once (exec) may print and exit before berthd can connect.
   */
  waitAttachMs?: number;
}

const binaryCache = new Map<string, string>();

/** native/build/NAME of the checkout this module was loaded from (dist/src/engine or a bundle in dist/). */
function nativeBinary(name: string, envVar: string): string {
  const fromEnv = process.env[envVar];
  if (fromEnv) return fromEnv;
  const cached = binaryCache.get(name);
  if (cached) return cached;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, 'native/build', name);
    if (existsSync(candidate) || dir === '/') {
      binaryCache.set(name, candidate);
      return candidate;
    }
  }
}

/** berth-monitor: BERTH_MONITOR, else native/build/berth-monitor. */
export function monitorBinaryPath(): string {
  return nativeBinary('berth-monitor', 'BERTH_MONITOR');
}

/** berth-init (the `--init` process, Docker's docker-init): BERTH_INIT, else native/build/berth-init. */
export function initBinaryPath(): string {
  return nativeBinary('berth-init', 'BERTH_INIT');
}

function checkInteger(value: number, field: string, min: number): void {
  if (!Number.isSafeInteger(value) || value < min)
    throw new BerthError('InvalidArgument', `${field}: ${value} is not an integer >= ${min}`);
}

/** The wrapper for launch(): [monitor, ...options, '--'], berth-exec's path follows. */
export function monitorArgv(o: MonitorOptions): string[] {
  if (!isAbsolute(o.runDir)) throw new Error(`monitor run dir must be absolute: ${o.runDir}`);
  // sockaddr_un holds 107 bytes: a longer run dir cannot carry attach.sock or console.sock.
  for (const p of [attachSocketPath(o.runDir), consoleSocketPath(o.runDir)])
    if (Buffer.byteLength(p) > MAX_SOCKET_PATH) throw new Error(`monitor socket path ${p} is longer than ${MAX_SOCKET_PATH} bytes: use a shorter run dir`);
  const argv = [monitorBinaryPath(), '--dir', o.runDir];
  if (o.logPath === undefined) argv.push('--no-log');
  else {
    if (!isAbsolute(o.logPath)) throw new Error(`monitor log path must be absolute: ${o.logPath}`);
    argv.push('--log', o.logPath);
    if (o.logMaxSize !== undefined) {
      checkInteger(o.logMaxSize, 'HostConfig.LogConfig.Config.max-size', -1);
      argv.push('--log-max-size', String(o.logMaxSize));
    }
    if (o.logMaxFiles !== undefined) {
      checkInteger(o.logMaxFiles, 'HostConfig.LogConfig.Config.max-file', 1);
      argv.push('--log-max-files', String(o.logMaxFiles));
    }
  }
  if (o.tty) argv.push('--tty');
  if (o.stdin) argv.push('--stdin');
  if (o.stdin && o.stdinOnce) argv.push('--stdin-once');
  for (const f of o.oomFiles ?? []) {
    if (!isAbsolute(f)) throw new Error(`monitor oom file must be absolute: ${f}`);
    argv.push('--oom-file', f);
  }
  if (o.waitAttachMs !== undefined && o.waitAttachMs > 0) {
    checkInteger(o.waitAttachMs, 'waitAttachMs', 1);
    argv.push('--wait-attach', String(o.waitAttachMs));
  }
  argv.push('--');
  return argv;
}

/** The socket berth-exec sends the pty master to (the OCI console socket) under --tty. */
export function consoleSocketPath(runDir: string): string {
  return join(runDir, 'console.sock');
}

export function attachSocketPath(runDir: string): string {
  return join(runDir, 'attach.sock');
}

export interface ExitInfo {
  /** The exit code, or 128 + signal. */
  exitCode: number;
  signal: number | null;
  oomKilled: boolean;
  /** RFC 3339 with nanoseconds: when the helper had made the container. */
  startedAt: string;
  finishedAt: string;
}

export function parseExitInfo(text: string, source: string): ExitInfo {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new BerthError('Internal', `${source}: not JSON`, { cause: err });
  }
  const o = v as Record<string, unknown>;
  if (
    typeof o !== 'object' ||
    o === null ||
    typeof o.exitCode !== 'number' ||
    !(o.signal === null || typeof o.signal === 'number') ||
    typeof o.oomKilled !== 'boolean' ||
    typeof o.startedAt !== 'string' ||
    typeof o.finishedAt !== 'string'
  )
    throw new BerthError('Internal', `${source}: not an exit record: ${text.slice(0, 200)}`);
  return { exitCode: o.exitCode, signal: o.signal, oomKilled: o.oomKilled, startedAt: o.startedAt, finishedAt: o.finishedAt };
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BerthError('Internal', `read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** RUNDIR/exit.json, written (atomically) once the container has exited. */
export function readExit(runDir: string): ExitInfo | undefined {
  const path = join(runDir, 'exit.json');
  const text = readOptional(path);
  return text === undefined ? undefined : parseExitInfo(text, path);
}

/** RUNDIR/monitor.json, written once the container's init is known. */
export function readMonitorInfo(runDir: string): { monitorPid: number; containerPid: number } | undefined {
  const path = join(runDir, 'monitor.json');
  const text = readOptional(path);
  if (text === undefined) return undefined;
  let v: { monitorPid?: unknown; containerPid?: unknown };
  try {
    v = JSON.parse(text) as typeof v;
  } catch (err) {
    throw new BerthError('Internal', `${path}: not JSON`, { cause: err });
  }
  if (!Number.isSafeInteger(v.monitorPid) || !Number.isSafeInteger(v.containerPid))
    throw new BerthError('Internal', `${path}: not a monitor record: ${text.slice(0, 200)}`);
  return { monitorPid: v.monitorPid as number, containerPid: v.containerPid as number };
}

export function encodeFrame(type: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(payload.length, 4);
  return payload.length ? Buffer.concat([header, payload]) : header;
}

export function helloFrame(want: { stdout?: boolean; stderr?: boolean; stdin?: boolean }): Buffer {
  const flags = (want.stdout ? HELLO_STDOUT : 0) | (want.stderr ? HELLO_STDERR : 0) | (want.stdin ? HELLO_STDIN : 0);
  return encodeFrame(Frame.Hello, Buffer.from([flags]));
}

export function resizeFrame(rows: number, cols: number): Buffer {
  for (const [v, name] of [
    [rows, 'height'],
    [cols, 'width'],
  ] as const)
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new BerthError('InvalidArgument', `resize: ${name} ${v} is not an integer in [0, 65535]`);
  const p = Buffer.alloc(4);
  p.writeUInt16BE(rows, 0);
  p.writeUInt16BE(cols, 2);
  return encodeFrame(Frame.Resize, p);
}

/** Splits a byte stream into frames; keeps an incomplete one for the next chunk. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): { type: number; payload: Buffer }[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: { type: number; payload: Buffer }[] = [];
    let off = 0;
    while (this.buf.length - off >= 8) {
      const len = this.buf.readUInt32BE(off + 4);
      if (this.buf.length - off < 8 + len) break;
      out.push({ type: this.buf[off]!, payload: this.buf.subarray(off + 8, off + 8 + len) });
      off += 8 + len;
    }
    this.buf = this.buf.subarray(off);
    return out;
  }

  /** Bytes of a frame that has not arrived whole. */
  get pending(): number {
    return this.buf.length;
  }
}

export interface MonitorConnection {
  /** The container's output: stream 1 stdout, 2 stderr (all of it is 1 with a tty). */
  on(event: 'data', fn: (stream: 1 | 2, data: Buffer) => void): this;
  /** The connection ended (after EXIT, or because the monitor went away). */
  on(event: 'close', fn: () => void): this;
  /** The exit record; undefined when the connection ended without one (then read exit.json). */
  readonly exited: Promise<ExitInfo | undefined>;
  /** Bytes for the container's stdin (dropped unless connected with stdin and the monitor has --stdin). */
  write(data: Buffer): void;
  /** Ends this client's stdin; with --stdin-once it closes the container's stdin. */
  closeStdin(): void;
  /** The pty's size (ignored without a tty). */
  resize(rows: number, cols: number): void;
  close(): void;
}

class Connection extends EventEmitter implements MonitorConnection {
  readonly exited: Promise<ExitInfo | undefined>;
  private resolveExit!: (info: ExitInfo | undefined) => void;
  private readonly decoder = new FrameDecoder();
  private exitInfo: ExitInfo | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly source: string,
  ) {
    super();
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
    socket.on('data', (chunk: Buffer) => this.onChunk(chunk));
    // A monitor that vanishes shows up as close (ECONNRESET first): the answer is exit.json.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.resolveExit(this.exitInfo);
      this.emit('close');
    });
  }

  private onChunk(chunk: Buffer): void {
    for (const { type, payload } of this.decoder.push(chunk)) {
      if (type === Frame.Stdout || type === Frame.Stderr) this.emit('data', type, payload);
      else if (type === Frame.Exit && !this.exitInfo) {
        try {
          this.exitInfo = parseExitInfo(payload.toString('utf8'), this.source);
        } catch {
          this.exitInfo = undefined;
        }
        this.resolveExit(this.exitInfo);
        this.socket.end();
      }
    }
  }

  private send(frame: Buffer): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(frame);
  }

  write(data: Buffer): void {
    // One frame per 1 MiB keeps the monitor's parser state small; it streams payloads anyway.
    for (let off = 0; off < data.length; off += 1 << 20) this.send(encodeFrame(Frame.Stdin, data.subarray(off, off + (1 << 20))));
  }

  closeStdin(): void {
    this.send(encodeFrame(Frame.StdinClose));
  }

  resize(rows: number, cols: number): void {
    this.send(resizeFrame(rows, cols));
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }
}

/**
 * Connects to RUNDIR/attach.sock and says which streams it wants; a client that wants none
 * still learns the exit. Rejects with Unavailable when no monitor listens there.
 */
export function connectMonitor(runDir: string, want: { stdout?: boolean; stderr?: boolean; stdin?: boolean }): Promise<MonitorConnection> {
  const path = attachSocketPath(runDir);
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    const onError = (err: NodeJS.ErrnoException) => {
      socket.destroy();
      reject(
        new BerthError('Unavailable', `connect to the container monitor at ${path}: ${err.code ?? err.message}`, {
          cause: err,
          hint: 'the monitor has exited; its exit.json (if any) holds the exit code',
        }),
      );
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      const conn = new Connection(socket, path);
      socket.write(helloFrame(want));
      resolve(conn);
    });
  });
}
