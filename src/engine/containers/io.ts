// The container's streams: logs from the json-file the monitor writes, attach and resize
// through the monitor's socket.
import { PassThrough, Writable } from 'node:stream';
import { BerthError } from '../../errors.js';
import { connectMonitor, type MonitorConnection } from '../monitor.js';
import { readLogs } from '../logs.js';
import type { EngineContext } from '../context.js';
import type { AttachOptions, LogRecord, LogsOptions, StreamSession } from '../types.js';
import { nextExit } from './stop.js';

/** Docker's multiplexing header: [stream, 0, 0, 0, size BE]. */
export function frame(stream: number, data: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}

/** Docker's default detach sequence: ctrl-p, ctrl-q. */
export const DEFAULT_DETACH_KEYS = Buffer.from([16, 17]);

const CTRL_KEYS = '@abcdefghijklmnopqrstuvwxyz[\\]^_';

/**
 * Docker's detach-key syntax: comma-separated keys, each a single character or `ctrl-X` with X
 * one of a-z @ [ \ ] ^ _. An empty spec means the default (ctrl-p,ctrl-q).
 */
export function parseDetachKeys(spec: string | undefined): Buffer {
  if (spec === undefined || spec === '') return DEFAULT_DETACH_KEYS;
  const out: number[] = [];
  for (const key of spec.split(',')) {
    if (key.length === 1 && key.charCodeAt(0) < 0x80) {
      out.push(key.charCodeAt(0));
      continue;
    }
    const m = /^ctrl-(.)$/i.exec(key);
    const at = m ? CTRL_KEYS.indexOf(m[1]!.toLowerCase()) : -1;
    if (at < 0)
      throw new BerthError('InvalidArgument', `Invalid detach keys (${spec}) provided: unknown key '${key}'`, {
        hint: 'use comma-separated keys, each a letter or ctrl-<a-z, @, [, \\, ], ^, _>, e.g. ctrl-p,ctrl-q',
      });
    out.push(at);
  }
  return Buffer.from(out);
}

/**
 * Watches a client's stdin for the detach sequence. Bytes that may start the sequence are held
 * back until the next byte tells; a broken match lets them through, the full sequence is
 * swallowed.
 */
export class DetachScanner {
  private matched = 0;

  constructor(private readonly keys: Buffer) {}

  push(chunk: Buffer): { forward: Buffer; detached: boolean } {
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.keys[this.matched]) {
        this.matched++;
      } else {
        for (let i = 0; i < this.matched; i++) out.push(this.keys[i]!);
        this.matched = b === this.keys[0] ? 1 : 0;
        if (this.matched === 0) out.push(b);
      }
      if (this.matched === this.keys.length) {
        this.matched = 0;
        return { forward: Buffer.from(out), detached: true };
      }
    }
    return { forward: Buffer.from(out), detached: false };
  }
}

/**
 * The stdin half of a session: bytes go to `send` (once connected), the end of the client's
 * stdin to `end`; with a tty the detach keys end the session instead (Docker looks for them
 * only on a tty: a pipe's bytes are data).
 */
function sessionInput(o: { send: (b: Buffer) => void; end: () => void; detach: () => void; detachKeys?: Buffer }): Writable {
  const scanner = o.detachKeys && o.detachKeys.length > 0 ? new DetachScanner(o.detachKeys) : undefined;
  let detached = false;
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (detached) return cb();
      if (!scanner) {
        o.send(chunk);
        return cb();
      }
      const { forward, detached: now } = scanner.push(chunk);
      if (forward.length > 0) o.send(forward);
      if (now) {
        detached = true;
        o.detach();
      }
      cb();
    },
    final(cb) {
      if (!detached) o.end();
      cb();
    },
  });
}

/** A StreamSession over a monitor connection: frames out (raw with a tty), stdin in. */
export function sessionFromMonitor(conn: MonitorConnection, o: { tty: boolean; stdin: boolean; detachKeys?: Buffer }): StreamSession {
  const output = new PassThrough();
  conn.on('data', (stream, data) => {
    output.write(o.tty ? data : frame(stream, data));
  });
  const done = conn.exited.then(
    () => undefined,
    () => undefined,
  );
  void done.then(() => output.end());
  const close = (): void => {
    conn.close();
    output.end();
  };
  const input = o.stdin
    ? sessionInput({ send: (b) => conn.write(b), end: () => conn.closeStdin(), detach: close, detachKeys: o.tty ? o.detachKeys : undefined })
    : null;
  return { tty: o.tty, output, input, done, close };
}

export async function attachContainer(ctx: EngineContext, idOrName: string, opts: AttachOptions): Promise<StreamSession> {
  const rec = ctx.find(idOrName);
  const tty = Boolean(rec.config.Tty);
  const detachKeys = parseDetachKeys(opts.detachKeys);
  if (opts.logs && !opts.stream) {
    // Only the past output, then the end.
    const output = new PassThrough();
    void (async () => {
      for await (const r of readLogs({ path: ctx.store.logPath(rec.id), stdout: opts.stdout !== false, stderr: opts.stderr !== false }))
        output.write(tty ? r.line : frame(r.stream === 'stdout' ? 1 : 2, r.line));
      output.end();
    })().catch((err: unknown) => output.destroy(err as Error));
    return { tty, output, input: null, done: new Promise((r) => output.on('close', () => r())), close: () => output.destroy() };
  }
  if (rec.state.status !== 'running' && rec.state.status !== 'paused') {
    // The docker CLI attaches before start: wait for the start, then connect.
    if (rec.state.status !== 'created' && rec.state.status !== 'exited' && rec.state.status !== 'restarting')
      throw new BerthError('Conflict', `You cannot attach to a ${rec.state.status} container`);
    return deferredSession(ctx, rec.id, opts, { tty, detachKeys });
  }
  const wantStdin = Boolean(opts.stdin) && Boolean(rec.config.OpenStdin);
  const conn = await connectMonitor(ctx.runDir(rec.id), { stdout: opts.stdout !== false, stderr: opts.stderr !== false, stdin: wantStdin });
  return sessionFromMonitor(conn, { tty, stdin: wantStdin, detachKeys });
}

/**
 * An attach made before the container runs (`docker run` attaches, then starts): the
 * session exists at once and joins the monitor as soon as the container has started.
 */
function deferredSession(ctx: EngineContext, id: string, opts: AttachOptions, o: { tty: boolean; detachKeys: Buffer }): StreamSession {
  const { tty } = o;
  const output = new PassThrough();
  const pendingInput: Buffer[] = [];
  let inputEnded = false;
  let conn: MonitorConnection | undefined;
  let closed = false;
  const rec = ctx.find(id);
  const wantStdin = Boolean(opts.stdin) && Boolean(rec.config.OpenStdin);
  let joined!: () => void;
  const joinedPromise = new Promise<void>((r) => (joined = r));
  const join = async (runDir: string): Promise<void> => {
    if (closed) return;
    try {
      conn = await connectMonitor(runDir, { stdout: opts.stdout !== false, stderr: opts.stderr !== false, stdin: wantStdin });
      conn.on('data', (stream, data) => output.write(tty ? data : frame(stream, data)));
      for (const b of pendingInput.splice(0)) conn.write(b);
      if (inputEnded) conn.closeStdin();
    } finally {
      joined();
    }
  };
  const list = ctx.pendingAttach.get(id) ?? [];
  list.push(join);
  ctx.pendingAttach.set(id, list);
  const done = joinedPromise
    .then(() => conn?.exited)
    .catch(() => undefined)
    .finally(() => output.end())
    .then(() => undefined);
  const close = (): void => {
    closed = true;
    const l = ctx.pendingAttach.get(id);
    if (l?.includes(join)) l.splice(l.indexOf(join), 1);
    conn?.close();
    joined();
    output.end();
  };
  const input = wantStdin
    ? sessionInput({
        send: (b) => {
          if (conn) conn.write(b);
          else pendingInput.push(b);
        },
        end: () => {
          if (conn) conn.closeStdin();
          else inputEnded = true;
        },
        detach: close,
        detachKeys: tty ? o.detachKeys : undefined,
      })
    : null;
  return { tty, output, input, done, close };
}

export async function resizeContainer(ctx: EngineContext, idOrName: string, size: { h: number; w: number }): Promise<void> {
  const rec = ctx.find(idOrName);
  if (rec.state.status !== 'running' && rec.state.status !== 'paused') throw new BerthError('Conflict', `Container ${rec.id} is not running`);
  if (!rec.config.Tty) return;
  const conn = await connectMonitor(ctx.runDir(rec.id), {});
  conn.resize(size.h, size.w);
  conn.close();
}

export async function containerLogs(ctx: EngineContext, idOrName: string, opts: LogsOptions): Promise<{ tty: boolean; records: AsyncIterable<LogRecord> }> {
  const rec = ctx.find(idOrName);
  if (rec.hostConfig.LogConfig?.Type === 'none')
    throw new BerthError('FailedPrecondition', `configured logging driver does not support reading (container ${rec.id.slice(0, 12)} logs with "none")`);
  if (!opts.stdout && !opts.stderr) throw new BerthError('InvalidArgument', 'Bad parameters: you must choose at least one stream');
  const running = rec.state.status === 'running' || rec.state.status === 'paused' || rec.state.status === 'restarting';
  const stopped = opts.follow && running ? nextExit(ctx, rec).then(() => undefined) : Promise.resolve();
  return {
    tty: Boolean(rec.config.Tty),
    records: readLogs({
      path: ctx.store.logPath(rec.id),
      stdout: Boolean(opts.stdout),
      stderr: Boolean(opts.stderr),
      since: opts.since,
      until: opts.until,
      tail: opts.tail,
      follow: Boolean(opts.follow) && running,
      signal: opts.signal,
      stopped,
    }),
  };
}
