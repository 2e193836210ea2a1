// berth: the Docker-like command line, an HTTP client of berthd's Docker Engine API.
// Only this table is loaded at start; each command's module is imported when it runs, so
// `berth --help` and `berth ps` load little more than Node itself.
import type { Command, Context } from './berth/context.js';

const VERSION = '0.1.0';

type Loader = () => Promise<{ commands: Record<string, Command> }>;

const MODULES = {
  containers: () => import('./berth/containers.js'),
  run: () => import('./berth/run.js'),
  logs: () => import('./berth/logs.js'),
  images: () => import('./berth/images.js'),
  volumes: () => import('./berth/volumes.js'),
  system: () => import('./berth/system.js'),
  files: () => import('./berth/files.js'),
  stats: () => import('./berth/stats.js'),
  networks: () => import('./berth/networks.js'),
} satisfies Record<string, Loader>;
type ModuleName = keyof typeof MODULES;

/** [module, command id in it, summary]. */
type Entry = [ModuleName, string, string];

const TOP: Record<string, Entry> = {
  run: ['run', 'run', 'Create and run a new container from an image'],
  exec: ['run', 'exec', 'Execute a command in a running container'],
  ps: ['containers', 'ps', 'List containers'],
  build: ['images', 'build', 'Build an image from a Dockerfile (not yet)'],
  images: ['images', 'images', 'List images'],
  pull: ['images', 'pull', 'Download an image from a registry'],
  push: ['images', 'push', 'Upload an image to a registry'],
  info: ['system', 'info', 'Display system-wide information'],
  version: ['system', 'version', 'Show the berth version information'],
  attach: ['run', 'attach', "Attach local standard input, output, and error streams to a running container"],
  commit: ['containers', 'commit', "Create a new image from a container's changes"],
  cp: ['files', 'cp', 'Copy files/folders between a container and the local filesystem'],
  create: ['run', 'create', 'Create a new container'],
  diff: ['containers', 'diff', "Inspect changes to files or directories on a container's filesystem"],
  events: ['system', 'events', 'Get real time events from the server'],
  export: ['files', 'export', "Export a container's filesystem as a tar archive"],
  history: ['images', 'history', 'Show the history of an image'],
  import: ['images', 'import', 'Import the contents from a tarball to create a filesystem image'],
  inspect: ['system', 'inspect', 'Return low-level information on berth objects'],
  kill: ['containers', 'kill', 'Kill one or more running containers'],
  load: ['images', 'load', 'Load an image from a tar archive or STDIN'],
  login: ['images', 'login', 'Log in to a registry'],
  logout: ['images', 'logout', 'Log out from a registry'],
  logs: ['logs', 'logs', 'Fetch the logs of a container'],
  pause: ['containers', 'pause', 'Pause all processes within one or more containers'],
  port: ['containers', 'port', 'List port mappings or a specific mapping for the container'],
  rename: ['containers', 'rename', 'Rename a container'],
  restart: ['containers', 'restart', 'Restart one or more containers'],
  rm: ['containers', 'rm', 'Remove one or more containers'],
  rmi: ['images', 'rmi', 'Remove one or more images'],
  save: ['images', 'save', 'Save one or more images to a tar archive (streamed to STDOUT by default)'],
  start: ['run', 'start', 'Start one or more stopped containers'],
  stats: ['stats', 'stats', 'Display a live stream of container(s) resource usage statistics'],
  stop: ['containers', 'stop', 'Stop one or more running containers'],
  tag: ['images', 'tag', 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE'],
  top: ['containers', 'top', 'Display the running processes of a container'],
  unpause: ['containers', 'unpause', 'Unpause all processes within one or more containers'],
  update: ['containers', 'update', 'Update configuration of one or more containers'],
  wait: ['containers', 'wait', 'Block until one or more containers stop, then print their exit codes'],
};

const GROUPS: Record<string, { summary: string; subs: Record<string, Entry> }> = {
  container: {
    summary: 'Manage containers',
    subs: {
      attach: TOP.attach,
      commit: TOP.commit,
      cp: TOP.cp,
      create: TOP.create,
      diff: TOP.diff,
      exec: TOP.exec,
      export: TOP.export,
      inspect: ['containers', 'container inspect', 'Display detailed information on one or more containers'],
      kill: TOP.kill,
      logs: TOP.logs,
      ls: TOP.ps,
      list: TOP.ps,
      ps: TOP.ps,
      pause: TOP.pause,
      port: TOP.port,
      prune: ['containers', 'container prune', 'Remove all stopped containers'],
      rename: TOP.rename,
      restart: TOP.restart,
      rm: TOP.rm,
      remove: TOP.rm,
      run: TOP.run,
      start: TOP.start,
      stats: TOP.stats,
      stop: TOP.stop,
      top: TOP.top,
      unpause: TOP.unpause,
      update: TOP.update,
      wait: TOP.wait,
    },
  },
  image: {
    summary: 'Manage images',
    subs: {
      build: TOP.build,
      history: TOP.history,
      import: TOP.import,
      inspect: ['images', 'image inspect', 'Display detailed information on one or more images'],
      load: TOP.load,
      ls: TOP.images,
      list: TOP.images,
      prune: ['images', 'image prune', 'Remove unused images'],
      pull: TOP.pull,
      push: TOP.push,
      rm: TOP.rmi,
      remove: TOP.rmi,
      save: TOP.save,
      tag: TOP.tag,
    },
  },
  network: {
    summary: 'Manage networks',
    subs: {
      connect: ['networks', 'network connect', 'Connect a container to a network'],
      create: ['networks', 'network create', 'Create a network'],
      disconnect: ['networks', 'network disconnect', 'Disconnect a container from a network'],
      inspect: ['networks', 'network inspect', 'Display detailed information on one or more networks'],
      ls: ['networks', 'network ls', 'List networks'],
      list: ['networks', 'network ls', 'List networks'],
      prune: ['networks', 'network prune', 'Remove all unused networks'],
      rm: ['networks', 'network rm', 'Remove one or more networks'],
      remove: ['networks', 'network rm', 'Remove one or more networks'],
    },
  },
  volume: {
    summary: 'Manage volumes',
    subs: {
      create: ['volumes', 'volume create', 'Create a volume'],
      inspect: ['volumes', 'volume inspect', 'Display detailed information on one or more volumes'],
      ls: ['volumes', 'volume ls', 'List volumes'],
      list: ['volumes', 'volume ls', 'List volumes'],
      prune: ['volumes', 'volume prune', 'Remove unused local volumes'],
      rm: ['volumes', 'volume rm', 'Remove one or more volumes'],
      remove: ['volumes', 'volume rm', 'Remove one or more volumes'],
    },
  },
  system: {
    summary: 'Manage berth',
    subs: {
      df: ['system', 'system df', 'Show berth disk usage'],
      events: TOP.events,
      info: TOP.info,
      prune: ['system', 'system prune', 'Remove unused data'],
    },
  },
};

function mainHelp(): string {
  const common = ['run', 'exec', 'ps', 'build', 'pull', 'push', 'images', 'info', 'version'];
  const rows = (names: string[], get: (n: string) => string): string => names.map((n) => `  ${n.padEnd(12)}${get(n)}`).join('\n');
  const others = Object.keys(TOP).filter((n) => !common.includes(n)).sort();
  return `Usage:  berth [OPTIONS] COMMAND

A container engine: the berth CLI talks to berthd over the Docker Engine API

Common Commands:
${rows(common, (n) => TOP[n][2])}

Management Commands:
${rows(Object.keys(GROUPS), (n) => GROUPS[n].summary)}

Commands:
${rows(others, (n) => TOP[n][2])}

Global Options:
  -H, --host string   Daemon socket to connect to (default unix:///run/berth/berth.sock; env BERTH_HOST)
  -D, --debug         Enable debug mode
  -v, --version       Print version information and quit
      --help          Print usage

Run 'berth COMMAND --help' for more information on a command.
`;
}

function groupHelp(name: string): string {
  const g = GROUPS[name];
  const subs = Object.entries(g.subs).filter(([n]) => !['list', 'remove'].includes(n) && !(name === 'container' && n === 'ps'));
  return `Usage:  berth ${name} COMMAND

${g.summary}

Commands:
${subs.map(([n, e]) => `  ${n.padEnd(12)}${e[2]}`).join('\n')}

Run 'berth ${name} COMMAND --help' for more information on a command.
`;
}

interface Globals {
  host?: string;
  debug: boolean;
  rest: string[];
}

function parseGlobals(argv: string[]): Globals | { error: string } | { print: string } {
  const g: Globals = { debug: false, rest: [] };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-') || a === '-') break;
    if (a === '--') {
      i++;
      break;
    }
    const m = /^(--host|-H)(?:=(.*))?$/.exec(a);
    if (m) {
      const v = m[2] ?? argv[++i];
      if (v === undefined) return { error: `flag needs an argument: ${a === '-H' ? "'H' in -H" : '--host'}` };
      g.host = v;
    } else if (a.startsWith('-H') && a.length > 2) g.host = a.slice(2);
    else if (a === '-D' || a === '--debug') g.debug = true;
    else if (a === '-v' || a === '--version') return { print: `berth version ${VERSION}\n` };
    else if (a === '-h' || a === '--help') return { print: mainHelp() };
    else if (a === '-l' || a === '--log-level') i++;
    else if (a.startsWith('--log-level=')) continue;
    else return { error: `unknown ${a.startsWith('--') ? `flag: ${a.split('=')[0]}` : `shorthand flag: '${a[1]}' in ${a}`}` };
  }
  g.rest = argv.slice(i);
  return g;
}

/** `unix:///path` or a bare path → the socket path; other schemes are refused by name. */
export function socketFromHost(host: string): string {
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  if (host.startsWith('/')) return host;
  throw new Error(`unsupported host "${host}": berth speaks to berthd over a unix socket only (unix:///path)`);
}

async function flush(stream: NodeJS.WriteStream): Promise<void> {
  await new Promise<void>((resolve) => stream.write('', () => resolve()));
}

/** The process's output streams that a command used (creating one costs a few ms). */
const opened: NodeJS.WriteStream[] = [];

function used(stream: NodeJS.WriteStream): NodeJS.WriteStream {
  if (!opened.includes(stream)) {
    opened.push(stream);
    if (stream === process.stdout) {
      stream.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EPIPE') process.exit(0);
      });
    }
  }
  return stream;
}

async function exit(code: number): Promise<never> {
  await Promise.all(opened.map(flush));
  process.exit(code);
}

/** The process's streams and environment; tests pass their own. */
export interface CliIo {
  stdout: Context['stdout'];
  stderr: Context['stderr'];
  stdin: Context['stdin'];
  env: Record<string, string | undefined>;
  cwd: string;
}

// Node creates each stdio stream on first access, at a few ms each: `run --rm IMAGE true`
// needs none of them, so none is touched before a command asks.
const processIo = (): CliIo => ({
  get stdout() {
    return used(process.stdout);
  },
  get stderr() {
    return used(process.stderr);
  },
  get stdin() {
    return process.stdin;
  },
  env: process.env,
  cwd: process.cwd(),
});

/** Runs one berth command line; resolves with the exit status. */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const err = (s: string): void => void io.stderr.write(s);
  const globals = parseGlobals(argv);
  if ('print' in globals) {
    io.stdout.write(globals.print);
    return 0;
  }
  if ('error' in globals) {
    err(`${globals.error}\nSee 'berth --help'.\n`);
    return 125;
  }
  let [name, ...rest] = globals.rest;
  if (name === undefined || name === 'help') {
    io.stdout.write(mainHelp());
    return 0;
  }
  let entry: Entry | undefined = TOP[name];
  let shown = name;
  if (!entry && GROUPS[name]) {
    const sub = rest[0];
    if (sub === undefined || sub === '--help' || sub === 'help') {
      io.stdout.write(groupHelp(name));
      return 0;
    }
    entry = GROUPS[name].subs[sub];
    if (!entry) {
      err(`berth: unknown command: berth ${name} ${sub}\n\nRun 'berth ${name} --help' for more information\n`);
      return 1;
    }
    shown = `${name} ${sub}`;
    rest = rest.slice(1);
  }
  if (!entry) {
    err(`berth: unknown command: berth ${name}\n\nRun 'berth --help' for more information\n`);
    return 1;
  }
  const [mod, id] = entry;
  const [{ commands }, flagsMod, clientMod] = await Promise.all([MODULES[mod](), import('./berth/flags.js'), import('./berth/client.js')]);
  const command = commands[id];
  if (!command) throw new Error(`berth: command ${id} missing from module ${mod}`);
  const spec = { ...command.spec, name: shown };

  let hostSetting: string;
  let socket: string;
  try {
    hostSetting = globals.host ?? io.env.BERTH_HOST ?? `unix://${clientMod.DEFAULT_SOCKET}`;
    socket = socketFromHost(hostSetting);
  } catch (e) {
    err(`${(e as Error).message}\n`);
    return 125;
  }
  let client: InstanceType<typeof clientMod.Client> | undefined;
  const ctx: Context = {
    client: () =>
      (client ??= new clientMod.Client({
        socketPath: socket,
        // Only the default daemon is started on demand: a berthd for another socket has roots
        // of its own that berth cannot guess (it would serve the default ones there).
        // BERTH_AUTOSTART=0 keeps berth from starting one at all.
        onUnreachable:
          io.env.BERTH_AUTOSTART === '0' || socket !== clientMod.DEFAULT_SOCKET
            ? undefined
            : async () => {
                const { startDaemon } = await import('./berth/daemon.js');
                await startDaemon({ socketPath: socket, notify: (m) => err(`${m}\n`) });
              },
      })),
    get stdout() {
      return io.stdout;
    },
    get stderr() {
      return io.stderr;
    },
    get stdin() {
      return io.stdin;
    },
    env: io.env,
    cwd: io.cwd,
    prog: 'berth',
  };

  const usageTail = (): string => `\nUsage:  berth ${spec.name}${spec.usage ? ` ${spec.usage}` : ''}\n\nRun 'berth ${spec.name} --help' for more information\n`;
  // run and create report every failure docker-style: "berth: …" and status 125.
  const isRunLike = ['run', 'create'].includes(id);
  try {
    const parsed = flagsMod.parseCommandLine(spec, rest);
    if (parsed.flags.get('help') === true) {
      io.stdout.write(flagsMod.helpText(spec));
      return 0;
    }
    return await command.run(ctx, new flagsMod.Flags(parsed), parsed.args);
  } catch (e) {
    return report(e, { spec: spec.name, isRunLike, usageTail, debug: globals.debug, err });
  } finally {
    client?.close();
  }
}

function report(e: unknown, o: { spec: string; isRunLike: boolean; usageTail: () => string; debug: boolean; err: (s: string) => void }): number {
  const name = (e as Error | undefined)?.name;
  const message = e instanceof Error ? e.message : String(e);
  const hint = (e as { hint?: string }).hint;
  const withHint = hint ? `${message}\n(${hint})` : message;
  const prefix = o.isRunLike ? 'berth: ' : '';
  const runTail = o.isRunLike ? `\n\nRun 'berth ${o.spec} --help' for more information` : '';
  switch (name) {
    case 'UsageError': {
      const code = (e as { exitCode: number }).exitCode;
      // docker words argument-count mistakes (status 1) a little differently from flag mistakes (125)
      if (code === 1) o.err(`berth: ${message}\n${o.usageTail().replace("\nRun '", "\nSee '")}`);
      else o.err(`${message}\n${o.usageTail()}`);
      return code;
    }
    case 'DaemonError':
      o.err(`${prefix}Error response from daemon: ${message}${runTail}\n`);
      return o.isRunLike ? 125 : 1;
    case 'ConnectError':
    case 'FilterError':
    case 'TemplateError':
      o.err(`${prefix}${withHint}${runTail}\n`);
      return o.isRunLike ? 125 : 1;
    case 'CliError':
      if (message) o.err(`${prefix}${withHint}${runTail}\n`);
      return (e as { exitCode: number }).exitCode;
    default:
      if (o.debug || !(e instanceof Error)) o.err(`berth: ${e instanceof Error ? e.stack : String(e)}\n`);
      else o.err(`berth: ${message}\n`);
      return o.isRunLike ? 125 : 1;
  }
}

// Run directly (dist/src/cli/berth.js, dist/berth.cjs) or through bin/launch.cjs; imported by tests otherwise.
const isEntry = process.argv[1] !== undefined && /(berth(\.js|\.cjs|\.ts)?|launch\.cjs)$/.test(process.argv[1]);
if (isEntry) {
  main(process.argv.slice(2)).then(exit, async (e: unknown) => {
    used(process.stderr).write(`berth: ${e instanceof Error ? e.stack : String(e)}\n`);
    await exit(1);
  });
}
