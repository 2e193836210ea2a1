// exec: a process run inside a running container. Each exec runs under its own monitor
// (like the container's, without a log), so its stdio, exit code and tty do not depend on
// berthd staying up; berthd talks to it over the monitor's attach socket.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { BerthError } from '../../errors.js';
import { execInContainer, type Process } from '../../runtime/index.js';
import { connectMonitor, consoleSocketPath, monitorArgv, readExit, type MonitorConnection } from '../monitor.js';
import { buildExecProcess } from '../spec/index.js';
import type { EngineContext } from '../context.js';
import type { ExecCreateRequest, ExecInspect, StreamSession } from '../types.js';
import { readSpecFile } from './spec-file.js';
import { frame, parseDetachKeys, sessionFromMonitor } from './io.js';
import type { ContainerRecord } from './record.js';

interface ExecRecord {
  id: string;
  containerId: string;
  req: ExecCreateRequest;
  running: boolean;
  exitCode: number | null;
  pid: number;
  started: boolean;
  conn?: MonitorConnection;
}

const execs = new Map<string, ExecRecord>();

function findExec(id: string): ExecRecord {
  const e = execs.get(id);
  if (!e) throw new BerthError('NotFound', `No such exec instance: ${id}`);
  return e;
}

export function execIdsOf(containerId: string): string[] {
  return [...execs.values()].filter((e) => e.containerId === containerId).map((e) => e.id);
}

function requireRunning(rec: ContainerRecord): void {
  if (rec.state.status === 'paused') throw new BerthError('Conflict', `Container ${rec.id} is paused, unpause the container before exec`);
  if (rec.state.status !== 'running') throw new BerthError('Conflict', `Container ${rec.id} is not running`);
}

export function createExec(ctx: EngineContext, idOrName: string, req: ExecCreateRequest): { Id: string } {
  const rec = ctx.find(idOrName);
  requireRunning(rec);
  if (!Array.isArray(req.Cmd) || req.Cmd.length === 0 || req.Cmd.some((a) => typeof a !== 'string'))
    throw new BerthError('InvalidArgument', 'Cmd: an exec needs a command (a non-empty array of strings)');
  parseDetachKeys(req.DetachKeys);
  const id = randomBytes(32).toString('hex');
  execs.set(id, { id, containerId: rec.id, req, running: false, exitCode: null, pid: 0, started: false });
  ctx.emit(`exec_create: ${req.Cmd.join(' ')}`, rec, { execID: id });
  return { Id: id };
}

/** The exec's OCI process: the container's env and user, overridden by the request. */
function execProcess(ctx: EngineContext, rec: ContainerRecord, req: ExecCreateRequest, tty: boolean): Process {
  const spec = readSpecFile(ctx.store.dir(rec.id));
  return buildExecProcess({ request: { ...req, Tty: tty }, config: rec.config, hostConfig: rec.hostConfig, spec, rootfs: ctx.store.rootfs(rec.id) });
}

export async function startExec(
  ctx: EngineContext,
  execId: string,
  opts: { Detach?: boolean; Tty?: boolean; ConsoleSize?: [number, number] | null },
): Promise<StreamSession | null> {
  const e = findExec(execId);
  if (e.started) throw new BerthError('Conflict', `exec ${execId} has already been started`);
  const rec = ctx.find(e.containerId);
  requireRunning(rec);
  e.started = true;
  const tty = opts.Tty ?? e.req.Tty ?? false;
  const req = opts.ConsoleSize ? { ...e.req, ConsoleSize: opts.ConsoleSize } : e.req;
  // Short: the monitor's socket paths must fit sockaddr_un (108 bytes).
  const runDir = join(ctx.opts.runRoot, 'exec', execId.slice(0, 24));
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const pidFile = join(runDir, 'pid');
  const stdin = Boolean(e.req.AttachStdin) && !opts.Detach;
  try {
    await execInContainer(ctx.runtime, {
      id: rec.id,
      process: execProcess(ctx, rec, req, tty),
      detach: true,
      pidFile,
      consoleSocket: tty ? consoleSocketPath(runDir) : undefined,
      stdio: ['ignore', 'ignore', 'ignore'],
      // The process runs at once: the monitor holds its output until berthd has attached.
      wrapper: monitorArgv({ runDir, tty, stdin, stdinOnce: true, waitAttachMs: 30_000 }),
    });
  } catch (err) {
    rmSync(runDir, { recursive: true, force: true });
    e.exitCode = 126;
    setTimeout(() => execs.delete(execId), 5 * 60_000).unref();
    if (opts.Detach) throw err;
    // As dockerd: the client has asked to hijack already, so the error goes down the stream
    // and the exit code (126) is what `exec inspect` reports.
    return failedSession(err, tty);
  }
  e.pid = Number(readFileSync(pidFile, 'utf8').trim()) || 0;
  e.running = true;
  ctx.emit(`exec_start: ${e.req.Cmd.join(' ')}`, rec, { execID: execId });
  // The session's connection first (its HELLO releases the output the monitor holds), then
  // one that only learns the exit: a client that detaches or goes away ends its session,
  // not the exec's bookkeeping.
  const sessionConn = opts.Detach
    ? undefined
    : await connectMonitor(runDir, { stdout: e.req.AttachStdout !== false, stderr: e.req.AttachStderr !== false, stdin });
  // Listening at once: output that arrives while the second connection is made is not lost.
  const session = sessionConn && sessionFromMonitor(sessionConn, { tty, stdin, detachKeys: parseDetachKeys(e.req.DetachKeys) });
  // A monitor already gone (the process exited and the session took the exit) left exit.json.
  const conn = await connectMonitor(runDir, {}).catch(() => undefined);
  e.conn = conn;
  void (conn ? conn.exited : Promise.resolve(undefined)).then((info) => {
    const exit = info ?? readExit(runDir);
    e.running = false;
    e.exitCode = exit?.exitCode ?? 126;
    e.conn = undefined;
    rmSync(runDir, { recursive: true, force: true });
    ctx.emit('exec_die', rec, { execID: execId, exitCode: String(e.exitCode) });
    // Docker keeps finished execs for inspection a while; keep ours 5 minutes.
    setTimeout(() => execs.delete(execId), 5 * 60_000).unref();
  });
  return session ?? null;
}

function failedSession(err: unknown, tty: boolean): StreamSession {
  const text = Buffer.from(`${err instanceof BerthError ? err.describe() : err instanceof Error ? err.message : String(err)}\r\n`);
  const output = new PassThrough();
  output.end(tty ? text : frame(1, text));
  return { tty, output, input: null, done: Promise.resolve(), close: () => output.destroy() };
}

export async function resizeExec(execId: string, size: { h: number; w: number }): Promise<void> {
  const e = findExec(execId);
  if (!e.running || !e.conn) throw new BerthError('Conflict', `exec ${execId} is not running`);
  e.conn.resize(size.h, size.w);
}

export function inspectExec(ctx: EngineContext, execId: string): ExecInspect {
  const e = findExec(execId);
  void ctx;
  return {
    ID: e.id,
    Running: e.running,
    ExitCode: e.exitCode,
    ProcessConfig: { tty: Boolean(e.req.Tty), entrypoint: e.req.Cmd[0]!, arguments: e.req.Cmd.slice(1), privileged: Boolean(e.req.Privileged), user: e.req.User ?? '' },
    OpenStdin: Boolean(e.req.AttachStdin),
    OpenStderr: Boolean(e.req.AttachStderr),
    OpenStdout: Boolean(e.req.AttachStdout),
    CanRemove: !e.running,
    ContainerID: e.containerId,
    DetachKeys: e.req.DetachKeys ?? '',
    Pid: e.pid,
  };
}

/** Runs a command to completion inside the container, for health checks: exit code and output. */
export async function runInContainer(ctx: EngineContext, rec: ContainerRecord, cmd: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
  const { Id } = createExec(ctx, rec.id, { Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const session = await startExec(ctx, Id, {});
  const chunks: Buffer[] = [];
  let size = 0;
  session!.output.on('data', (frame: Buffer) => {
    // Frames carry an 8-byte header; keep the payload, at most 4 KiB like Docker.
    if (size < 4096) {
      const data = frame.subarray(8);
      chunks.push(data);
      size += data.length;
    }
  });
  const timer = setTimeout(() => {
    const e = execs.get(Id);
    if (e?.pid) {
      try {
        process.kill(e.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }, timeoutMs);
  await session!.done;
  clearTimeout(timer);
  const e = execs.get(Id)!;
  for (let i = 0; i < 50 && e.running; i++) await new Promise((r) => setTimeout(r, 20));
  execs.delete(Id);
  return { exitCode: e.exitCode ?? -1, output: Buffer.concat(chunks).subarray(0, 4096).toString('utf8') };
}
