// berth-oci: the OCI runtime with runc's command line. Thin: parse, call one runtime
// function, print. Runtime modules are imported lazily so `state` and `kill` stay cheap.
import { appendFileSync } from 'node:fs';
import { BerthError, isBerthError } from '../errors.js';
import { bool, int, multi, parseFlags, positional, size, str, type FlagSpec, type Parsed } from './args.js';

const VERSION = '0.1.0';
const SPEC_VERSION = '1.2.0';

const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'root', kind: 'string', help: 'state directory (default /run/berth-oci)' },
  { name: 'log', kind: 'string', help: 'log file (default stderr)' },
  { name: 'log-format', kind: 'string', help: 'text or json' },
  { name: 'debug', kind: 'bool', help: 'print launch plans and debug output' },
  { name: 'systemd-cgroup', kind: 'bool', help: 'use the systemd cgroup driver (needs systemd)' },
  { name: 'rootless', kind: 'string', help: 'accepted for compatibility (auto, true, false)' },
  { name: 'criu', kind: 'string', help: 'accepted for compatibility; checkpointing is not supported' },
  { name: 'version', aliases: ['v'], kind: 'bool', help: 'print the version' },
  { name: 'help', aliases: ['h'], kind: 'bool', help: 'show help' },
];

const CREATE_FLAGS: FlagSpec[] = [
  { name: 'bundle', aliases: ['b'], kind: 'string', help: 'bundle directory (default: current directory)' },
  { name: 'console-socket', kind: 'string', help: 'AF_UNIX socket that receives the pty master' },
  { name: 'pid-file', kind: 'string', help: 'file to write the container pid to' },
  { name: 'no-pivot', kind: 'bool', help: 'use mount --move + chroot instead of pivot_root' },
  { name: 'no-new-keyring', kind: 'bool', help: 'keep the session keyring' },
  { name: 'preserve-fds', kind: 'string', help: 'pass N extra fds (from 3) to the container' },
  { name: 'help', aliases: ['h'], kind: 'bool' },
];

const EXEC_FLAGS: FlagSpec[] = [
  { name: 'console-socket', kind: 'string' },
  { name: 'cwd', kind: 'string', help: 'working directory' },
  { name: 'env', aliases: ['e'], kind: 'multi', help: 'KEY=VALUE (repeatable)' },
  { name: 'tty', aliases: ['t'], kind: 'bool', help: 'allocate a pseudo-TTY' },
  { name: 'user', aliases: ['u'], kind: 'string', help: 'UID[:GID]' },
  { name: 'additional-gids', aliases: ['g'], kind: 'multi' },
  { name: 'process', aliases: ['p'], kind: 'string', help: 'process.json with the process to run' },
  { name: 'detach', aliases: ['d'], kind: 'bool' },
  { name: 'pid-file', kind: 'string' },
  { name: 'process-label', kind: 'string' },
  { name: 'apparmor', kind: 'string' },
  { name: 'no-new-privs', kind: 'bool' },
  { name: 'cap', aliases: ['c'], kind: 'multi', help: 'add a capability (repeatable)' },
  { name: 'preserve-fds', kind: 'string' },
  { name: 'ignore-paused', kind: 'bool' },
  { name: 'cgroup', kind: 'multi' },
  { name: 'help', aliases: ['h'], kind: 'bool' },
];

const UPDATE_FLAGS: FlagSpec[] = [
  { name: 'resources', aliases: ['r'], kind: 'string', help: 'JSON resources file, or - for stdin' },
  { name: 'blkio-weight', kind: 'string' },
  { name: 'cpu-period', kind: 'string' },
  { name: 'cpu-quota', kind: 'string' },
  { name: 'cpu-share', kind: 'string' },
  { name: 'cpu-rt-period', kind: 'string' },
  { name: 'cpu-rt-runtime', kind: 'string' },
  { name: 'cpuset-cpus', kind: 'string' },
  { name: 'cpuset-mems', kind: 'string' },
  { name: 'memory', kind: 'string' },
  { name: 'memory-reservation', kind: 'string' },
  { name: 'memory-swap', kind: 'string' },
  { name: 'kernel-memory', kind: 'string' },
  { name: 'kernel-memory-tcp', kind: 'string' },
  { name: 'pids-limit', kind: 'string' },
  { name: 'l3-cache-schema', kind: 'string' },
  { name: 'mem-bw-schema', kind: 'string' },
  { name: 'help', aliases: ['h'], kind: 'bool' },
];

interface Globals {
  root?: string;
  log?: string;
  logFormat: 'text' | 'json';
  debug: boolean;
  systemdCgroup: boolean;
}

type Handler = (p: Parsed, g: Globals) => Promise<number>;

interface Command {
  flags: FlagSpec[];
  usage: string;
  summary: string;
  run: Handler;
}

async function context(g: Globals) {
  const { RuntimeContext } = await import('../runtime/operations/index.js');
  return new RuntimeContext({
    root: g.root,
    systemdCgroup: g.systemdCgroup,
    warn: (m) => logLine(g, 'warning', m),
    debug: g.debug ? (m) => logLine(g, 'debug', m) : undefined,
  });
}

function logLine(g: Globals, level: 'error' | 'warning' | 'debug', msg: string): void {
  if (level === 'debug' && !g.debug) return;
  if (g.log) {
    const line = g.logFormat === 'json' ? JSON.stringify({ level: level === 'warning' ? 'warning' : level, msg, time: new Date().toISOString() }) : `${new Date().toISOString()} ${level}: ${msg}`;
    try {
      appendFileSync(g.log, line + '\n');
    } catch {
      // the log is best effort; stderr below still gets errors
    }
  }
  // With --log, only errors also reach stderr: under a shim, stderr is the container's.
  if (level === 'error' || !g.log) process.stderr.write(`berth-oci: ${level === 'error' ? '' : `${level}: `}${msg}\n`);
}

function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

const createFlags = (p: Parsed, where: string) => ({
  bundle: str(p, 'bundle') ?? process.cwd(),
  pidFile: str(p, 'pid-file'),
  consoleSocket: str(p, 'console-socket'),
  noPivot: bool(p, 'no-pivot'),
  noNewKeyring: bool(p, 'no-new-keyring'),
  preserveFds: int(p, 'preserve-fds', where),
});

function parseId(value: string, where: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 0x7fffffff)
    throw new BerthError('InvalidArgument', `${where}: invalid id "${value}": expected a number below 2147483648`);
  return Number(value);
}

function parseUser(value: string, where: string): { uid: number; gid?: number } {
  const [uid, gid, extra] = value.split(':');
  if (extra !== undefined || uid === undefined) throw new BerthError('InvalidArgument', `${where}: invalid --user "${value}": expected UID[:GID]`);
  return { uid: parseId(uid, `${where}: --user`), gid: gid === undefined ? undefined : parseId(gid, `${where}: --user`) };
}

const COMMANDS: Record<string, Command> = {
  spec: {
    usage: 'spec [--bundle DIR] [--rootless]',
    summary: 'write a default config.json into the bundle',
    flags: [
      { name: 'bundle', aliases: ['b'], kind: 'string' },
      { name: 'rootless', kind: 'bool' },
      { name: 'help', aliases: ['h'], kind: 'bool' },
    ],
    async run(p) {
      positional(p, [], 'spec');
      const { writeSpecFile } = await import('./oci-spec.js');
      writeSpecFile(str(p, 'bundle') ?? process.cwd(), bool(p, 'rootless'));
      return 0;
    },
  },
  create: {
    usage: 'create [flags] <container-id>',
    summary: 'create a container (its process waits for start)',
    flags: CREATE_FLAGS,
    async run(p, g) {
      const [id] = positional(p, ['container-id'], 'create');
      const { createContainer } = await import('../runtime/operations/index.js');
      await createContainer(await context(g), { id, ...createFlags(p, 'create'), stdio: ['inherit', 'inherit', 'inherit'] });
      return 0;
    },
  },
  start: {
    usage: 'start <container-id>',
    summary: 'run the user process of a created container',
    flags: [{ name: 'help', aliases: ['h'], kind: 'bool' }],
    async run(p, g) {
      const [id] = positional(p, ['container-id'], 'start');
      const { startContainer } = await import('../runtime/operations/index.js');
      await startContainer(await context(g), id);
      return 0;
    },
  },
  run: {
    usage: 'run [flags] <container-id>',
    summary: 'create and start a container; in the foreground unless --detach',
    flags: [...CREATE_FLAGS, { name: 'detach', aliases: ['d'], kind: 'bool' }, { name: 'keep', kind: 'bool' }],
    async run(p, g) {
      const [id] = positional(p, ['container-id'], 'run');
      const { runContainer } = await import('../runtime/operations/index.js');
      return runContainer(await context(g), {
        id,
        ...createFlags(p, 'run'),
        detach: bool(p, 'detach'),
        keep: bool(p, 'keep'),
        stdio: ['inherit', 'inherit', 'inherit'],
      });
    },
  },
  state: {
    usage: 'state <container-id>',
    summary: 'print the state of a container as JSON',
    flags: [{ name: 'help', aliases: ['h'], kind: 'bool' }],
    async run(p, g) {
      const [id] = positional(p, ['container-id'], 'state');
      const { containerState } = await import('../runtime/operations/index.js');
      printJson(await containerState(await context(g), id));
      return 0;
    },
  },
  kill: {
    usage: 'kill [--all] <container-id> [signal]',
    summary: 'send a signal (default SIGTERM) to the container',
    flags: [{ name: 'all', aliases: ['a'], kind: 'bool' }, { name: 'help', aliases: ['h'], kind: 'bool' }],
    async run(p, g) {
      const [id, sig] = p.args;
      positional({ ...p, args: p.args.slice(0, 1) }, ['container-id'], 'kill');
      if (p.args.length > 2) throw new BerthError('InvalidArgument', `kill: unexpected argument "${p.args[2]}"`);
      const { killContainer } = await import('../runtime/operations/index.js');
      await killContainer(await context(g), id, sig, bool(p, 'all'));
      return 0;
    },
  },
  delete: {
    usage: 'delete [--force] <container-id>',
    summary: 'delete a container and everything it holds',
    flags: [{ name: 'force', aliases: ['f'], kind: 'bool' }, { name: 'help', aliases: ['h'], kind: 'bool' }],
    async run(p, g) {
      const [id] = positional(p, ['container-id'], 'delete');
      const { deleteContainer } = await import('../runtime/operations/index.js');
      await deleteContainer(await context(g), id, bool(p, 'force'));
      return 0;
    },
  },
  exec: {
    usage: 'exec [flags] <container-id> [command [args...]]',
    summary: 'run a new process inside a container',
    flags: EXEC_FLAGS,
    async run(p, g) {
      const [id, ...cmd] = positional(p, ['container-id'], 'exec', true);
      if (multi(p, 'cgroup').length)
        throw new BerthError('FailedPrecondition', 'exec: --cgroup (a sub-cgroup for the process) is not supported yet', { hint: 'leave it out: the process joins the container\'s cgroups' });
      const { buildExecProcess } = await import('./oci-exec.js');
      const { execInContainer } = await import('../runtime/operations/index.js');
      const ctx = await context(g);
      const proc = buildExecProcess(ctx, id, cmd, {
        processFile: str(p, 'process'),
        cwd: str(p, 'cwd'),
        env: multi(p, 'env'),
        tty: bool(p, 'tty'),
        user: str(p, 'user') === undefined ? undefined : parseUser(str(p, 'user')!, 'exec'),
        additionalGids: multi(p, 'additional-gids').map((g) => parseId(g, 'exec: --additional-gids')),
        caps: multi(p, 'cap'),
        noNewPrivs: bool(p, 'no-new-privs'),
        apparmor: str(p, 'apparmor'),
        processLabel: str(p, 'process-label'),
      });
      return execInContainer(ctx, {
        id,
        process: proc,
        detach: bool(p, 'detach'),
        pidFile: str(p, 'pid-file'),
        consoleSocket: str(p, 'console-socket'),
        preserveFds: int(p, 'preserve-fds', 'exec'),
        ignorePaused: bool(p, 'ignore-paused'),
        stdio: ['inherit', 'inherit', 'inherit'],
      });
    },
  },
  list: {
    usage: 'list [--format table|json] [--quiet]',
    summary: 'list containers',
    flags: [{ name: 'format', aliases: ['f'], kind: 'string' }, { name: 'quiet', aliases: ['q'], kind: 'bool' }, { name: 'help', aliases: ['h'], kind: 'bool' }],
    async run(p, g) {
      positional(p, [], 'list');
      const { listContainers } = await import('../runtime/operations/index.js');
      const list = await listContainers(await context(g));
      const format = str(p, 'format') ?? 'table';
      if (bool(p, 'quiet')) for (const c of list) process.stdout.write(`${c.id}\n`);
      else if (format === 'json') process.stdout.write(JSON.stringify(list) + '\n');
      else if (format === 'table') {
        const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...list.map((c) => [c.id, String(c.pid ?? 0), c.status, c.bundle, c.created, c.owner || 'root'])];
        const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
        for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i])).join('   ').trimEnd() + '\n');
      } else throw new BerthError('InvalidArgument', `list: invalid --format "${format}" (expected table or json)`);
      return 0;
    },
  },
  ps: {
    usage: 'ps [--format table|json] <container-id> [ps options]',
    summary: 'list the processes of a container',
    flags: [{ name: 'format', aliases: ['f'], kind: 'string' }, { name: 'help', aliases: ['h'], kind: 'bool' }],
    async run(p, g) {
      const [id, ...psArgs] = positional(p, ['container-id'], 'ps', true);
      const { containerPids, containerPsTable } = await import('../runtime/operations/index.js');
      const format = str(p, 'format') ?? 'table';
      const ctx = await context(g);
      if (format === 'json') process.stdout.write(JSON.stringify(await containerPids(ctx, id)) + '\n');
      else if (format === 'table') process.stdout.write(await containerPsTable(ctx, id, psArgs));
      else throw new BerthError('InvalidArgument', `ps: invalid --format "${format}" (expected table or json)`);
      return 0;
    },
  },
  pause: {
    usage: 'pause <container-id>',
    summary: 'freeze every process of a container',
    flags: [{ name: 'help', aliases: ['h'], kind: 'bool' }],
    async run(p, g) {
      const [id] = positional(p, ['container-id'], 'pause');
      const { pauseContainer } = await import('../runtime/operations/index.js');
      await pauseContainer(await context(g), id);
      return 0;
    },
  },
  resume: {
    usage: 'resume <container-id>',
    summary: 'thaw a paused container',
    flags: [{ name: 'help', aliases: ['h'], kind: 'bool' }],
    async run(p, g) {
      const [id] = positional(p, ['container-id'], 'resume');
      const { resumeContainer } = await import('../runtime/operations/index.js');
      await resumeContainer(await context(g), id);
      return 0;
    },
  },
  update: {
    usage: 'update [flags] <container-id>',
    summary: 'change the resource limits of a container',
    flags: UPDATE_FLAGS,
    async run(p, g) {
      const [id] = positional(p, ['container-id'], 'update');
      const { resourcesFromUpdateFlags } = await import('./oci-update.js');
      const resources = await resourcesFromUpdateFlags(p, { int, size, str });
      const { updateContainer } = await import('../runtime/operations/index.js');
      const ctx = await context(g);
      for (const w of await updateContainer(ctx, id, resources)) ctx.warn(w);
      return 0;
    },
  },
  events: {
    usage: 'events [--stats] [--interval 5s] <container-id>',
    summary: 'print stats (and OOM) events as JSON',
    flags: [{ name: 'stats', kind: 'bool' }, { name: 'interval', kind: 'string' }, { name: 'help', aliases: ['h'], kind: 'bool' }],
    async run(p, g) {
      const [id] = positional(p, ['container-id'], 'events');
      const { containerEvents, containerStats } = await import('../runtime/operations/index.js');
      const ctx = await context(g);
      if (bool(p, 'stats')) {
        process.stdout.write(JSON.stringify(await containerStats(ctx, id)) + '\n');
        return 0;
      }
      const interval = parseDuration(str(p, 'interval') ?? '5s');
      for await (const ev of containerEvents(ctx, id, interval)) process.stdout.write(JSON.stringify(ev) + '\n');
      return 0;
    },
  },
  features: {
    usage: 'features',
    summary: 'print what this runtime supports, as JSON',
    flags: [{ name: 'help', aliases: ['h'], kind: 'bool' }],
    async run(p) {
      positional(p, [], 'features');
      const { runtimeFeatures } = await import('./oci-features.js');
      printJson(await runtimeFeatures());
      return 0;
    },
  },
};

function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text);
  if (!m) throw new BerthError('InvalidArgument', `events: invalid --interval "${text}" (e.g. 500ms, 5s, 1m)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms'];
  return Math.max(1, Number(m[1]) * unit);
}

function help(): string {
  const lines = [
    'berth-oci: an OCI container runtime with runc\'s command line',
    '',
    'usage: berth-oci [global flags] <command> [flags] [arguments]',
    '',
    'global flags:',
    ...GLOBAL_FLAGS.map((f) => `  --${f.name.padEnd(16)} ${f.help ?? ''}`),
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`),
  ];
  return lines.join('\n') + '\n';
}

function commandHelp(name: string, c: Command): string {
  return [`usage: berth-oci ${c.usage}`, '', c.summary, '', ...c.flags.filter((f) => f.name !== 'help').map((f) => `  --${[f.name, ...(f.aliases ?? [])].join(', -').padEnd(22)} ${f.help ?? ''}`)].join('\n') + '\n';
}

export async function main(argv: string[]): Promise<number> {
  const g: Globals = { logFormat: 'text', debug: false, systemdCgroup: false };
  try {
    const top = parseFlags(argv, GLOBAL_FLAGS, 'berth-oci');
    g.root = str(top, 'root');
    g.log = str(top, 'log');
    const lf = str(top, 'log-format') ?? 'text';
    if (lf !== 'text' && lf !== 'json') throw new BerthError('InvalidArgument', `invalid --log-format "${lf}" (expected text or json)`);
    g.logFormat = lf;
    g.debug = bool(top, 'debug');
    g.systemdCgroup = bool(top, 'systemd-cgroup');
    if (bool(top, 'version')) {
      process.stdout.write(`berth-oci version ${VERSION}\nspec: ${SPEC_VERSION}\n`);
      return 0;
    }
    const [name, ...rest] = top.args;
    if (!name || bool(top, 'help') || name === 'help') {
      process.stdout.write(help());
      return name || bool(top, 'help') ? 0 : 1;
    }
    const cmd = COMMANDS[name];
    if (!cmd) throw new BerthError('InvalidArgument', `unknown command "${name}"`, { hint: 'see berth-oci --help' });
    const p = parseFlags(rest, cmd.flags, name);
    if (bool(p, 'help')) {
      process.stdout.write(commandHelp(name, cmd));
      return 0;
    }
    return await cmd.run(p, g);
  } catch (err) {
    const msg = isBerthError(err) ? err.describe() : err instanceof Error ? (g.debug ? err.stack ?? err.message : err.message) : String(err);
    logLine(g, 'error', msg);
    for (const c of (err as { cleanupErrors?: unknown[] })?.cleanupErrors ?? []) logLine(g, 'error', `cleanup after the error also failed: ${c instanceof Error ? c.message : String(c)}`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  // stdout and stderr are synchronous for files and pipes on Linux: exiting loses nothing.
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`berth-oci: internal error: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
