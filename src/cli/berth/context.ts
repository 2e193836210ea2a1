// What every `berth` command receives: the daemon client (created on first use), the
// process's streams, and the shape of a command module.
import type { Readable, Writable } from 'node:stream';
import type { Client } from './client.js';
import type { CommandSpec, Flags } from './flags.js';

export interface Context {
  /** The API client; connecting (and starting berthd if needed) happens on the first request. */
  client(): Client;
  stdout: Writable & { isTTY?: boolean; columns?: number; rows?: number };
  stderr: Writable & { isTTY?: boolean };
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  env: Record<string, string | undefined>;
  cwd: string;
  /** `berth` as the user typed it, for messages. */
  prog: string;
}

export interface Command {
  spec: CommandSpec;
  /** Returns the exit status. */
  run(ctx: Context, flags: Flags, args: string[]): Promise<number>;
}

/** A failure that already knows how it should look and which status to exit with. */
export class CliError extends Error {
  readonly exitCode: number;
  readonly hint?: string;
  constructor(message: string, opts: { exitCode?: number; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CliError';
    this.exitCode = opts.exitCode ?? 1;
    this.hint = opts.hint;
  }
}
