// berthd: the engine daemon. Serves the Docker Engine API on a unix socket; containers run
// under their own monitors and survive berthd's restarts.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { BerthError } from '../errors.js';
import type { NetworkConfig } from '../engine/context.js';

const USAGE = `Usage: berthd [options]

Options:
  --root DIR          persistent state (default /var/lib/berth)
  --run-root DIR      runtime state: sockets, monitors (default /run/berth)
  -H, --host ADDR     unix://PATH to listen on (default unix:///run/berth/berth.sock);
                      tcp://HOST:PORT adds a TCP listener (no TLS: keep it on 127.0.0.1)
  --config FILE       JSON config (default /etc/berth/berth.json if present): root, runRoot,
                      hosts, insecureRegistries, registryMirrors, logMaxSize, logMaxFiles, network
                      ({ defaultBridge: { subnet, bridge, mtu }, cniPluginDirs, cniConfDir,
                      dnsPort, upstreams: [{ address, port }], nftTable })
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
  network?: NetworkConfig;
}

/** The `network` section's shape, checked here so a typo is named instead of ignored. */
function checkNetworkConfig(value: unknown): void {
  const where = 'network';
  const obj = (v: unknown, at: string, keys: string[]): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${at}: must be a JSON object`);
    for (const k of Object.keys(v)) if (!keys.includes(k)) throw new Error(`${at}: unknown key "${k}" (known: ${keys.join(', ')})`);
    return v as Record<string, unknown>;
  };
  const str = (v: unknown, at: string): void => {
    if (v !== undefined && typeof v !== 'string') throw new Error(`${at}: must be a string`);
  };
  const int = (v: unknown, at: string, min: number, max: number): void => {
    if (v !== undefined && (!Number.isInteger(v) || (v as number) < min || (v as number) > max)) throw new Error(`${at}: must be a whole number from ${min} to ${max}`);
  };
  const n = obj(value, where, ['defaultBridge', 'cniPluginDirs', 'cniConfDir', 'dnsPort', 'upstreams', 'nftTable']);
  if (n.defaultBridge !== undefined) {
    const b = obj(n.defaultBridge, `${where}.defaultBridge`, ['subnet', 'bridge', 'mtu']);
    str(b.subnet, `${where}.defaultBridge.subnet`);
    str(b.bridge, `${where}.defaultBridge.bridge`);
    int(b.mtu, `${where}.defaultBridge.mtu`, 68, 65535);
  }
  if (n.cniPluginDirs !== undefined && (!Array.isArray(n.cniPluginDirs) || n.cniPluginDirs.some((d) => typeof d !== 'string'))) throw new Error(`${where}.cniPluginDirs: must be a list of paths`);
  str(n.cniConfDir, `${where}.cniConfDir`);
  int(n.dnsPort, `${where}.dnsPort`, 0, 65535);
  str(n.nftTable, `${where}.nftTable`);
  if (n.upstreams !== undefined) {
    if (!Array.isArray(n.upstreams)) throw new Error(`${where}.upstreams: must be a list of { address, port }`);
    n.upstreams.forEach((u, i) => {
      const o = obj(u, `${where}.upstreams[${i}]`, ['address', 'port']);
      str(o.address, `${where}.upstreams[${i}].address`);
      int(o.port, `${where}.upstreams[${i}].port`, 1, 65535);
    });
  }
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
    const known = ['root', 'runRoot', 'hosts', 'insecureRegistries', 'registryMirrors', 'logMaxSize', 'logMaxFiles', 'logLevel', 'network'];
    for (const k of Object.keys(value)) if (!known.includes(k)) throw new Error(`unknown key "${k}" (known: ${known.join(', ')})`);
    if ('network' in value) checkNetworkConfig((value as { network: unknown }).network);
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
    ...(config.network ? { network: config.network } : {}),
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
