// berthd: the engine daemon. Serves the Docker Engine API on a unix socket; containers run
// under their own monitors and survive berthd's restarts.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { BerthError } from '../errors.js';

const USAGE = `Usage: berthd [options]

Options:
  --root DIR          persistent state (default /var/lib/berth)
  --run-root DIR      runtime state: sockets, monitors (default /run/berth)
  -H, --host ADDR     unix://PATH to listen on (default unix:///run/berth/berth.sock);
                      tcp://HOST:PORT adds a TCP listener (no TLS: keep it on 127.0.0.1)
  --config FILE       JSON config (default /etc/berth/berth.json if present): root, runRoot,
                      hosts, insecureRegistries, registryMirrors, logMaxSize, logMaxFiles
  --insecure-registry HOST[:PORT]   plain-http registry (repeatable)
  --registry-mirror URL             mirror for docker.io (repeatable)
  --log-level LEVEL   error, warn, info, debug (default info)
  -h, --help          this help
`;

interface DaemonConfig {
  root?: string;
  runRoot?: string;
  hosts?: string[];
  insecureRegistries?: string[];
  registryMirrors?: string[];
  logMaxSize?: number;
  logMaxFiles?: number;
  logLevel?: string;
}

function readConfig(file: string | undefined): DaemonConfig {
  const path = file ?? '/etc/berth/berth.json';
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (!file && (err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new BerthError('InvalidArgument', `${path}: cannot read the config: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    const known = ['root', 'runRoot', 'hosts', 'insecureRegistries', 'registryMirrors', 'logMaxSize', 'logMaxFiles', 'logLevel'];
    for (const k of Object.keys(value)) if (!known.includes(k)) throw new Error(`unknown key "${k}" (known: ${known.join(', ')})`);
    return value as DaemonConfig;
  } catch (err) {
    throw new BerthError('InvalidArgument', `${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const LEVELS = ['error', 'warn', 'info', 'debug'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      root: { type: 'string' },
      'run-root': { type: 'string' },
      host: { type: 'string', short: 'H', multiple: true },
      config: { type: 'string' },
      'insecure-registry': { type: 'string', multiple: true },
      'registry-mirror': { type: 'string', multiple: true },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const config = readConfig(values.config);
  const level = values['log-level'] ?? config.logLevel ?? 'info';
  if (!LEVELS.includes(level)) throw new BerthError('InvalidArgument', `--log-level: "${level}" is not one of ${LEVELS.join(', ')}`);
  const log = (lvl: string, msg: string, fields?: object): void => {
    if (LEVELS.indexOf(lvl) > LEVELS.indexOf(level)) return;
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields })}\n`);
  };
  const root = values.root ?? config.root ?? '/var/lib/berth';
  const runRoot = values['run-root'] ?? config.runRoot ?? '/run/berth';
  const hosts = values.host ?? config.hosts ?? [`unix://${runRoot}/berth.sock`];
  let socketPath: string | undefined;
  let tcp: { host: string; port: number } | undefined;
  for (const h of hosts) {
    if (h.startsWith('unix://')) socketPath = h.slice('unix://'.length);
    else if (h.startsWith('tcp://')) {
      const m = /^tcp:\/\/(\[[^\]]+\]|[^:]+):(\d+)$/.exec(h);
      if (!m) throw new BerthError('InvalidArgument', `--host ${h}: expected tcp://HOST:PORT`);
      tcp = { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
    } else throw new BerthError('InvalidArgument', `--host ${h}: expected unix://PATH or tcp://HOST:PORT`);
  }
  if (!socketPath) throw new BerthError('InvalidArgument', 'berthd needs a unix:// socket to listen on');
  if (process.getuid?.() !== 0) throw new BerthError('FailedPrecondition', 'berthd must run as root (rootless is not supported)');
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o711 });

  const { BerthEngine } = await import('../engine/engine.js');
  const { startDockerApi } = await import('../api/docker/index.js');
  const insecure = [...(values['insecure-registry'] ?? []), ...(config.insecureRegistries ?? [])];
  const mirrors = [...(values['registry-mirror'] ?? []), ...(config.registryMirrors ?? [])];
  const engine = await BerthEngine.open({
    root,
    runRoot,
    logMaxSize: config.logMaxSize,
    logMaxFiles: config.logMaxFiles,
    registries: { insecure, mirrors: mirrors.length ? { 'docker.io': mirrors } : undefined },
    warn: (m) => log('warn', m),
  });
  const api = await startDockerApi({ engine, socketPath, tcp, log: (msg, fields) => log('debug', msg, fields) });
  log('info', 'berthd ready', { socket: socketPath, tcp: tcp ? `${tcp.host}:${tcp.port}` : undefined, root, runRoot, pid: process.pid });

  let stopping = false;
  const shutdown = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log('info', `${sig}: shutting down; containers keep running under their monitors`);
    const force = setTimeout(() => process.exit(0), 10_000);
    force.unref();
    void api
      .close()
      .then(() => engine.close())
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGPIPE', () => undefined);
  // One request's bug must not take every client (and the exit handling of every container)
  // down with it: log it loudly and keep serving.
  process.on('unhandledRejection', (err) => log('error', 'unhandled rejection (a bug in berthd)', { error: err instanceof Error ? (err.stack ?? err.message) : String(err) }));
}

main().catch((err: unknown) => {
  const text = err instanceof BerthError ? err.describe() : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`berthd: ${text}\n`);
  process.exit(1);
});
