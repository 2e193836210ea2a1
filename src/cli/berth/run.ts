// Commands that attach to a container's streams: run, create, start, attach, exec. `run`
// follows the docker CLI: create (pull on "No such image" and retry), attach before start,
// wait (next-exit, or removed with --rm), start, forward streams, exit with the container's code.
import { writeFileSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type { ContainerInspect, ExecInspect } from '../../engine/types.js';
import { DaemonError, type Client } from './client.js';
import { CliError, type Command, type Context } from './context.js';
import { buildCreatePlan, CONTAINER_FLAGS, RUN_ONLY_FLAGS, type CreatePlan } from './create-options.js';
import { Flags, UsageError, type FlagSpec } from './flags.js';
import { containerExitCode, EXIT_DAEMON, startFailureExitCode } from './exit-codes.js';
import { enc, forEachName } from './output.js';
import { pumpSession, proxySignals, trackTerminalSize } from './session.js';
import { pullImage } from './images.js';
import { withDefaultTag } from './progress.js';

function isNoSuchImage(e: unknown): boolean {
  return e instanceof DaemonError && e.status === 404 && /no such image/i.test(e.message);
}

async function createContainer(ctx: Context, plan: CreatePlan): Promise<string> {
  const client = ctx.client();
  const doCreate = (): Promise<{ Id: string; Warnings?: string[] | null }> =>
    client.json('POST', '/containers/create', { query: { name: plan.name, platform: plan.platform }, body: plan.body });
  if (plan.pull === 'always') await pullImage(ctx, plan.image, { platform: plan.platform, quiet: plan.quiet, out: ctx.stderr });
  let r: { Id: string; Warnings?: string[] | null };
  try {
    r = await doCreate();
  } catch (e) {
    if (!isNoSuchImage(e) || plan.pull === 'never') throw e;
    if (!plan.quiet) ctx.stderr.write(`Unable to find image '${withDefaultTag(plan.image)}' locally\n`);
    await pullImage(ctx, plan.image, { platform: plan.platform, quiet: plan.quiet, out: ctx.stderr });
    r = await doCreate();
  }
  for (const w of r.Warnings ?? []) ctx.stderr.write(`WARNING: ${w}\n`);
  if (plan.cidfile) {
    try {
      writeFileSync(plan.cidfile, r.Id, { flag: 'wx' });
    } catch (e) {
      throw new CliError(`failed to write the container ID to the file: ${(e as Error).message}`, { exitCode: EXIT_DAEMON });
    }
  }
  return r.Id;
}

function planFrom(ctx: Context, f: Flags, args: string[], command: 'run' | 'create'): CreatePlan {
  return buildCreatePlan(f, args, { command, env: ctx.env, cwd: ctx.cwd, readFile: (p) => readFileSync(p, 'utf8') });
}

async function startContainer(client: Client, id: string): Promise<void> {
  try {
    await client.call('POST', `/containers/${enc(id)}/start`);
  } catch (e) {
    if (e instanceof DaemonError) throw new CliError(`Error response from daemon: ${e.message}`, { exitCode: startFailureExitCode(e.message) });
    throw e;
  }
}

/** Reads the body of a wait request (sent before start, answered when the container exits). */
function waitResult(body: Buffer): number {
  const text = body.toString('utf8').trim();
  if (!text) throw new CliError('the daemon closed the wait request without an exit status', { exitCode: EXIT_DAEMON });
  const r = JSON.parse(text) as { StatusCode: number; Error?: { Message?: string } | null };
  if (r.Error?.Message) throw new CliError(r.Error.Message, { exitCode: EXIT_DAEMON });
  return r.StatusCode;
}

/**
 * Sends the wait before the start so no exit is missed. berthd answers the status line as soon
 * as the wait is registered; a daemon that holds it back until the exit (as some do) must not
 * keep us from starting, so after a bounded pause we go on, as the docker CLI does at once.
 */
async function registerWait(client: Client, id: string, condition: string): Promise<{ status: Promise<number> }> {
  const res = client.pending('POST', `/containers/${enc(id)}/wait`, { query: { condition } });
  const status = res.then((r) => r.body).then(waitResult);
  status.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([res, new Promise((r) => (timer = setTimeout(r, 1000)))]).finally(() => clearTimeout(timer));
  // Wrapped: an async function returning the promise itself would wait for the exit.
  return { status };
}

const run: Command = {
  spec: { name: 'run', usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]', summary: 'Create and run a new container from an image', flags: [...CONTAINER_FLAGS, ...RUN_ONLY_FLAGS], stopAtPositional: true, minArgs: 1 },
  async run(ctx, f, args) {
    const plan = planFrom(ctx, f, args, 'run');
    const cfg = plan.body;
    const detach = f.bool('detach');
    const tty = cfg.Tty === true;
    if (tty && cfg.AttachStdin && !ctx.stdin.isTTY) throw new CliError('the input device is not a TTY', { exitCode: 1 });
    const client = ctx.client();
    if (detach) {
      const id = await createContainer(ctx, plan);
      await startContainer(client, id);
      ctx.stdout.write(`${id}\n`);
      return 0;
    }
    const sigProxy = f.bool('sig-proxy', true) && !tty;
    // Signals that arrive while the container is being created must not kill berth half-way.
    const early: NodeJS.Signals[] = [];
    const earlyHandler = (s: NodeJS.Signals): void => void early.push(s);
    if (sigProxy) for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, earlyHandler);
    let unproxy = (): void => {};
    let unresize = (): void => {};
    let conn: Duplex | undefined;
    try {
      const id = await createContainer(ctx, plan);
      const attached = cfg.AttachStdin || cfg.AttachStdout || cfg.AttachStderr;
      // The attach and the wait go out together, on two connections: both are registered
      // (the daemon has answered each) before the start, one round trip sooner.
      const attaching = attached
        ? client.hijack(`/containers/${enc(id)}/attach`, {
            query: { stream: true, stdin: cfg.AttachStdin, stdout: cfg.AttachStdout, stderr: cfg.AttachStderr, detachKeys: f.str('detach-keys') },
          })
        : undefined;
      const waiting = registerWait(client, id, cfg.HostConfig?.AutoRemove ? 'removed' : 'next-exit');
      const [gotConn, gotWait] = await Promise.allSettled([attaching, waiting]);
      if (gotConn.status === 'fulfilled') conn = gotConn.value;
      if (gotConn.status === 'rejected') throw gotConn.reason;
      if (gotWait.status === 'rejected') throw gotWait.reason;
      const { status } = gotWait.value;
      await startContainer(client, id);
      if (sigProxy) {
        unproxy = proxySignals(client, id);
        for (const s of early) client.call('POST', `/containers/${enc(id)}/kill`, { query: { signal: s } }).catch(() => {});
      }
      if (tty) unresize = trackTerminalSize(ctx, (h, w) => client.call('POST', `/containers/${enc(id)}/resize`, { query: { h, w } }));
      if (conn) {
        const how = await pumpSession(ctx, { conn, tty, stdin: cfg.AttachStdin === true, detachKeys: f.str('detach-keys') });
        if (how === 'detached') return 0;
      }
      return containerExitCode(await status);
    } finally {
      for (const s of ['SIGINT', 'SIGTERM'] as const) process.off(s, earlyHandler);
      unproxy();
      unresize();
      conn?.destroy();
    }
  },
};

const create: Command = {
  spec: { name: 'create', usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]', summary: 'Create a new container', flags: CONTAINER_FLAGS, stopAtPositional: true, minArgs: 1 },
  async run(ctx, f, args) {
    const plan = planFrom(ctx, f, args, 'create');
    ctx.stdout.write(`${await createContainer(ctx, plan)}\n`);
    return 0;
  },
};

/** Attaches to a container, starts it if asked, and returns its exit code when the streams end. */
async function attachAndWait(ctx: Context, opts: { id: string; stdin: boolean; sigProxy: boolean; detachKeys?: string; start: boolean }): Promise<number> {
  const client = ctx.client();
  const c = await client.json<ContainerInspect>('GET', `/containers/${enc(opts.id)}/json`);
  const tty = c.Config?.Tty === true;
  const stdin = opts.stdin && c.Config?.OpenStdin === true;
  if (!opts.start && !c.State.Running) throw new CliError('You cannot attach to a stopped container, start it first');
  if (!opts.start && c.State.Paused) throw new CliError('You cannot attach to a paused container, unpause it first');
  if (tty && stdin && !ctx.stdin.isTTY) throw new CliError('the input device is not a TTY');
  const conn = await client.hijack(`/containers/${enc(c.Id)}/attach`, { query: { stream: true, stdin, stdout: true, stderr: true, detachKeys: opts.detachKeys } });
  const { status } = await registerWait(client, c.Id, opts.start ? 'next-exit' : 'not-running');
  let unproxy = (): void => {};
  let unresize = (): void => {};
  try {
    if (opts.start) await startContainer(client, c.Id);
    if (opts.sigProxy && !tty) unproxy = proxySignals(client, c.Id);
    if (tty) unresize = trackTerminalSize(ctx, (h, w) => client.call('POST', `/containers/${enc(c.Id)}/resize`, { query: { h, w } }));
    const how = await pumpSession(ctx, { conn, tty, stdin, detachKeys: opts.detachKeys });
    if (how === 'detached') return 0;
    return containerExitCode(await status);
  } finally {
    unproxy();
    unresize();
    conn.destroy();
  }
}

const start: Command = {
  spec: {
    name: 'start',
    usage: '[OPTIONS] CONTAINER [CONTAINER...]',
    summary: 'Start one or more stopped containers',
    minArgs: 1,
    flags: [
      { long: 'attach', short: 'a', kind: 'bool', help: 'Attach STDOUT/STDERR and forward signals' },
      { long: 'detach-keys', kind: 'string', help: 'Override the key sequence for detaching a container' },
      { long: 'interactive', short: 'i', kind: 'bool', help: "Attach container's STDIN" },
    ],
  },
  async run(ctx, f, args) {
    if (f.bool('attach') || f.bool('interactive')) {
      if (args.length > 1) throw new CliError('you cannot start and attach multiple containers at once');
      return attachAndWait(ctx, { id: args[0], stdin: f.bool('interactive'), sigProxy: true, detachKeys: f.str('detach-keys'), start: true });
    }
    return forEachName(ctx, args, async (n) => {
      await ctx.client().call('POST', `/containers/${enc(n)}/start`);
      return n;
    });
  },
};

const attach: Command = {
  spec: {
    name: 'attach',
    usage: '[OPTIONS] CONTAINER',
    summary: 'Attach local standard input, output, and error streams to a running container',
    minArgs: 1,
    maxArgs: 1,
    flags: [
      { long: 'detach-keys', kind: 'string', help: 'Override the key sequence for detaching a container' },
      { long: 'no-stdin', kind: 'bool', help: 'Do not attach STDIN' },
      { long: 'sig-proxy', kind: 'bool', help: 'Proxy all received signals to the process (default true)' },
    ],
  },
  run: (ctx, f, [id]) => attachAndWait(ctx, { id, stdin: !f.bool('no-stdin'), sigProxy: f.bool('sig-proxy', true), detachKeys: f.str('detach-keys'), start: false }),
};

const EXEC_FLAGS: FlagSpec[] = [
  { long: 'detach', short: 'd', kind: 'bool', help: 'Detached mode: run command in the background' },
  { long: 'detach-keys', kind: 'string', help: 'Override the key sequence for detaching a container' },
  { long: 'env', short: 'e', kind: 'list', help: 'Set environment variables', arg: 'list' },
  { long: 'env-file', kind: 'list', help: 'Read in a file of environment variables', arg: 'list' },
  { long: 'interactive', short: 'i', kind: 'bool', help: 'Keep STDIN open even if not attached' },
  { long: 'privileged', kind: 'bool', help: 'Give extended privileges to the command' },
  { long: 'tty', short: 't', kind: 'bool', help: 'Allocate a pseudo-TTY' },
  { long: 'user', short: 'u', kind: 'string', help: 'Username or UID (format: "<name|uid>[:<group|gid>]")' },
  { long: 'workdir', short: 'w', kind: 'string', help: 'Working directory inside the container' },
];

/** `berth exec` flags → the body of POST /containers/{id}/exec. */
export function buildExecRequest(f: Flags, cmd: string[], ctx: Pick<Context, 'env'> & { readFile: (p: string) => string; consoleSize?: [number, number] }): Record<string, unknown> {
  const env: string[] = [];
  for (const file of f.list('env-file')) {
    for (const raw of ctx.readFile(file).split(/\r?\n/)) {
      const line = raw.replace(/^\s+/, '');
      if (!line || line.startsWith('#')) continue;
      if (line.includes('=')) env.push(line);
      else if (ctx.env[line] !== undefined) env.push(`${line}=${ctx.env[line]}`);
    }
  }
  for (const e of f.list('env')) env.push(e.includes('=') || ctx.env[e] === undefined ? e : `${e}=${ctx.env[e]}`);
  const detach = f.bool('detach');
  const tty = f.bool('tty');
  const body: Record<string, unknown> = {
    User: f.str('user') ?? '',
    Privileged: f.bool('privileged'),
    Tty: tty,
    AttachStdin: f.bool('interactive') && !detach,
    AttachStderr: !detach,
    AttachStdout: !detach,
    Detach: detach,
    Env: env.length ? env : null,
    WorkingDir: f.str('workdir') ?? '',
    Cmd: cmd,
  };
  if (f.has('detach-keys')) body.DetachKeys = f.str('detach-keys');
  if (tty && ctx.consoleSize) body.ConsoleSize = ctx.consoleSize;
  return body;
}

const exec: Command = {
  spec: { name: 'exec', usage: '[OPTIONS] CONTAINER COMMAND [ARG...]', summary: 'Execute a command in a running container', flags: EXEC_FLAGS, stopAtPositional: true, minArgs: 2 },
  async run(ctx, f, [container, ...cmd]) {
    const client = ctx.client();
    const out = ctx.stdout as NodeJS.WriteStream;
    const tty = f.bool('tty');
    if (tty && f.bool('interactive') && !ctx.stdin.isTTY) throw new CliError('the input device is not a TTY');
    let body: Record<string, unknown>;
    try {
      body = buildExecRequest(f, cmd, { env: ctx.env, readFile: (p) => readFileSync(p, 'utf8'), consoleSize: out.isTTY && out.rows ? [out.rows, out.columns] : undefined });
    } catch (e) {
      throw new UsageError('exec', (e as Error).message);
    }
    const { Id } = await client.json<{ Id: string }>('POST', `/containers/${enc(container)}/exec`, { body });
    if (f.bool('detach')) {
      await client.call('POST', `/exec/${Id}/start`, { body: { Detach: true, Tty: tty } });
      return 0;
    }
    let conn: Duplex;
    try {
      conn = await client.hijack(`/exec/${Id}/start`, { body: { Detach: false, Tty: tty, ConsoleSize: body.ConsoleSize ?? null } });
    } catch (e) {
      if (e instanceof DaemonError) throw new CliError(`Error response from daemon: ${e.message}`, { exitCode: startFailureExitCode(e.message) });
      throw e;
    }
    const unresize = tty ? trackTerminalSize(ctx, (h, w) => client.call('POST', `/exec/${Id}/resize`, { query: { h, w } })) : () => {};
    try {
      const how = await pumpSession(ctx, { conn, tty, stdin: body.AttachStdin === true, detachKeys: f.str('detach-keys') });
      if (how === 'detached') return 0;
    } finally {
      unresize();
      conn.destroy();
    }
    // The output can end a moment before the daemon has recorded the exit: ask a few times.
    for (let attempt = 0; ; attempt++) {
      const r = await client.json<ExecInspect>('GET', `/exec/${Id}/json`);
      if (r.ExitCode !== null && !r.Running) return containerExitCode(r.ExitCode);
      if (attempt >= 40) return r.ExitCode === null ? EXIT_DAEMON : containerExitCode(r.ExitCode);
      await new Promise((res) => setTimeout(res, 50));
    }
  },
};

export const commands: Record<string, Command> = { run, create, start, attach, exec };
