// A hijacked attach/exec connection wired to the user's terminal: output demultiplexed (or raw
// with a tty), stdin forwarded (raw mode on a terminal, detach keys watched), the terminal size
// sent on start and on SIGWINCH, and signals forwarded to the container.
import type { Duplex } from 'node:stream';
import type { Client } from './client.js';
import type { Context } from './context.js';
import { EscapeDetector, FrameDemuxer, STDERR, parseDetachKeys } from './streams.js';

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

export interface SessionOptions {
  conn: Duplex;
  tty: boolean;
  /** Forward the user's stdin. */
  stdin: boolean;
  detachKeys?: string;
}

export type SessionEnd = 'ended' | 'detached';

export async function pumpSession(ctx: Context, opts: SessionOptions): Promise<SessionEnd> {
  const { conn } = opts;
  let restoreRaw = (): void => {};
  let detached = false;
  const done = new Promise<SessionEnd>((resolve) => {
    let finished = false;
    const finish = (how: SessionEnd): void => {
      if (finished) return;
      finished = true;
      resolve(how);
    };
    if (opts.tty) {
      conn.on('data', (c: Buffer) => ctx.stdout.write(c));
    } else {
      const demux = new FrameDemuxer((stream, payload) => (stream === STDERR ? ctx.stderr : ctx.stdout).write(payload));
      conn.on('data', (c: Buffer) => demux.push(c));
    }
    conn.once('end', () => finish(detached ? 'detached' : 'ended'));
    conn.once('close', () => finish(detached ? 'detached' : 'ended'));
    conn.once('error', () => finish(detached ? 'detached' : 'ended'));

    if (opts.stdin) {
      const stdin = ctx.stdin;
      if (opts.tty && stdin.isTTY && stdin.setRawMode) {
        stdin.setRawMode(true);
        restoreRaw = () => {
          stdin.setRawMode?.(false);
        };
      }
      // docker watches for the detach keys on the client only with a tty
      const detector = opts.tty ? new EscapeDetector(parseDetachKeys(opts.detachKeys || DEFAULT_DETACH_KEYS)) : undefined;
      const onData = (c: Buffer): void => {
        if (!detector) {
          conn.write(c);
          return;
        }
        const r = detector.feed(c);
        if (r.forward.length) conn.write(r.forward);
        if (r.detached) {
          detached = true;
          stdin.off('data', onData);
          stdin.pause();
          conn.destroy();
          finish('detached');
        }
      };
      stdin.on('data', onData);
      stdin.once('end', () => {
        if (!conn.destroyed) conn.end();
      });
      stdin.resume();
    }
  });
  try {
    return await done;
  } finally {
    restoreRaw();
    if (opts.stdin) ctx.stdin.pause();
  }
}

/** Sends the terminal's size now and whenever it changes; returns the unsubscribe. */
export function trackTerminalSize(ctx: Context, resize: (h: number, w: number) => Promise<unknown>): () => void {
  const out = ctx.stdout as NodeJS.WriteStream;
  if (!out.isTTY) return () => {};
  const send = (): void => {
    if (out.rows && out.columns) resize(out.rows, out.columns).catch(() => {});
  };
  send();
  out.on('resize', send);
  return () => out.off('resize', send);
}

const PROXIED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGALRM'];

/** Forwards the signals berth receives to the container (docker's --sig-proxy); returns the unsubscribe. */
export function proxySignals(client: Client, containerId: string): () => void {
  const handlers = PROXIED_SIGNALS.map((sig) => {
    const h = (): void => {
      client.call('POST', `/containers/${encodeURIComponent(containerId)}/kill`, { query: { signal: sig } }).catch(() => {});
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  return () => {
    for (const [sig, h] of handlers) process.off(sig, h);
  };
}
