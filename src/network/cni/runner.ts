// Runs CNI plugin chains as the CNI specification's runtime: ADD in list order (each plugin
// sees the previous one's result), CHECK in order and DEL in reverse (both with the cached
// ADD result), one process per plugin call with the CNI_* environment and the plugin's
// configuration on stdin. The final ADD result is cached on disk so that DEL after a
// berthd restart still hands the plugins what they made.
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, readdirSync, readFileSync, statfsSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError, attachCleanupError, type ErrorCode } from '../../errors.js';
import { writeJsonAtomic } from '../../host/fs-atomic.js';
import { checkPluginType, compareCniVersions, type CniConflist } from './conflist.js';

export interface CniResult {
  cniVersion: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { address: string; gateway?: string; interface?: number }[];
  routes?: { dst: string; gw?: string }[];
  dns?: { nameservers?: string[]; search?: string[]; options?: string[] };
}

/** A port to publish through a plugin with the portMappings capability (e.g. portmap). */
export interface CniPortMapping {
  hostPort: number;
  containerPort: number;
  protocol: string;
  hostIP?: string;
}

/**
 * Capability arguments (CNI CONVENTIONS.md): each one reaches, as `runtimeConfig.<key>`, only
 * the plugins whose `capabilities` say `<key>: true`.
 */
export interface CniCapabilityArgs {
  portMappings?: CniPortMapping[];
  [capability: string]: unknown;
}

export interface CniAttachment {
  conflist: CniConflist;
  containerId: string;
  netnsPath: string;
  ifname: string;
  /** CNI_ARGS; `IgnoreUnknown=1` is added unless given, so plugins skip keys they do not know. */
  args?: Record<string, string>;
  capabilityArgs?: CniCapabilityArgs;
}

/** One attachment as cached after a successful ADD (`<cacheDir>/<network>+<containerId>+<ifname>.json`). */
export interface CniCacheEntry {
  kind: 'berth-cni-cache/v1';
  network: string;
  containerId: string;
  ifname: string;
  netnsPath: string;
  args?: Record<string, string>;
  capabilityArgs?: CniCapabilityArgs;
  conflist: CniConflist;
  /** The chain's final result exactly as the last plugin printed it (what DEL and CHECK get as prevResult). */
  result: Record<string, unknown>;
  /** RFC 3339. */
  created: string;
}

export type CniCommand = 'ADD' | 'CHECK' | 'DEL' | 'VERSION';

/** A plugin's own failure: its CNI error code, msg and details, and which plugin it was. */
export class CniPluginError extends BerthError {
  readonly plugin: string;
  readonly command: CniCommand;
  /** The CNI error code (0-99 well-known, 100+ the plugin's own); undefined when the plugin printed no error JSON. */
  readonly cniCode?: number;
  readonly details?: string;

  constructor(opts: {
    code: ErrorCode;
    message: string;
    plugin: string;
    command: CniCommand;
    cniCode?: number;
    details?: string;
    hint?: string;
    cause?: unknown;
  }) {
    super(opts.code, opts.message, { hint: opts.hint, cause: opts.cause });
    this.plugin = opts.plugin;
    this.command = opts.command;
    this.cniCode = opts.cniCode;
    this.details = opts.details;
  }
}

export interface CniRunnerOptions {
  pluginDirs: string[];
  cacheDir: string;
  /** Per plugin call; the plugin (and its process group) is killed when it runs out. Default 30 s. */
  timeoutMs?: number;
  /** Told about plugin DEL errors that were tolerated because the thing was already gone. */
  warn?: (message: string) => void;
}

const CACHE_KIND = 'berth-cni-cache/v1';
const NSFS_MAGIC = 0x6e736673;
const MAX_STDOUT = 4 << 20;
const MAX_STDERR = 64 << 10;
const IFNAME_BAD = /[/:\s]/;
const CONTAINER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const ARG_KEY_RE = /^[A-Za-z0-9_.-]+$/;

// The spec's well-known error codes, as berth's codes: 1 incompatible version, 2 unsupported
// field, 3 unknown container, 4 bad environment, 5 I/O, 6 decode, 7 invalid config, 11 try again.
function errorCodeFor(cniCode: number | undefined): ErrorCode {
  switch (cniCode) {
    case 1:
    case 2:
    case 4:
    case 6:
    case 7:
      return 'InvalidArgument';
    case 3:
      return 'NotFound';
    case 11:
      return 'Unavailable';
    default:
      return 'Internal';
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : undefined;
}

/**
 * The result in the shape berth reads, from any spec version's JSON: 0.3.0 and later have
 * `ips` (0.3.x/0.4.0 with a `version` field, dropped here); 0.1.0/0.2.0 have `ip4`/`ip6`.
 */
export function normalizeResult(raw: Record<string, unknown>, fallbackVersion: string): CniResult {
  const out: CniResult = { cniVersion: typeof raw.cniVersion === 'string' ? raw.cniVersion : fallbackVersion };
  if (Array.isArray(raw.interfaces)) {
    out.interfaces = raw.interfaces.filter(isObject).map((i) => {
      const itf: { name: string; mac?: string; sandbox?: string } = { name: String(i.name ?? '') };
      if (typeof i.mac === 'string' && i.mac !== '') itf.mac = i.mac;
      if (typeof i.sandbox === 'string' && i.sandbox !== '') itf.sandbox = i.sandbox;
      return itf;
    });
  }
  const ips: NonNullable<CniResult['ips']> = [];
  const routes: NonNullable<CniResult['routes']> = [];
  const addRoutes = (list: unknown): void => {
    if (!Array.isArray(list)) return;
    for (const r of list.filter(isObject)) {
      if (typeof r.dst !== 'string') continue;
      routes.push(typeof r.gw === 'string' && r.gw !== '' ? { dst: r.dst, gw: r.gw } : { dst: r.dst });
    }
  };
  if (Array.isArray(raw.ips)) {
    for (const ip of raw.ips.filter(isObject)) {
      if (typeof ip.address !== 'string') continue;
      const entry: { address: string; gateway?: string; interface?: number } = { address: ip.address };
      if (typeof ip.gateway === 'string' && ip.gateway !== '') entry.gateway = ip.gateway;
      if (typeof ip.interface === 'number') entry.interface = ip.interface;
      ips.push(entry);
    }
  }
  for (const legacy of [raw.ip4, raw.ip6]) {
    if (!isObject(legacy) || typeof legacy.ip !== 'string') continue;
    ips.push(typeof legacy.gateway === 'string' && legacy.gateway !== '' ? { address: legacy.ip, gateway: legacy.gateway } : { address: legacy.ip });
    addRoutes(legacy.routes);
  }
  addRoutes(raw.routes);
  if (ips.length > 0) out.ips = ips;
  if (routes.length > 0) out.routes = routes;
  if (isObject(raw.dns)) {
    const dns: NonNullable<CniResult['dns']> = {};
    const ns = strings(raw.dns.nameservers);
    const search = strings(raw.dns.search);
    const options = strings(raw.dns.options);
    if (ns && ns.length > 0) dns.nameservers = ns;
    if (search && search.length > 0) dns.search = search;
    if (options && options.length > 0) dns.options = options;
    if (Object.keys(dns).length > 0) out.dns = dns;
  }
  return out;
}

/** The configuration one plugin of the list gets on stdin (spec: "Deriving execution configuration"). */
export function pluginConfig(opts: {
  conflist: CniConflist;
  plugin: Record<string, unknown>;
  prevResult?: Record<string, unknown>;
  capabilityArgs?: CniCapabilityArgs;
}): Record<string, unknown> {
  const { conflist, plugin, prevResult, capabilityArgs } = opts;
  const conf: Record<string, unknown> = { ...plugin, name: conflist.name, cniVersion: conflist.cniVersion };
  delete conf.prevResult;
  if (prevResult) conf.prevResult = prevResult;
  const caps = isObject(plugin.capabilities) ? plugin.capabilities : {};
  const runtimeConfig: Record<string, unknown> = isObject(plugin.runtimeConfig) ? { ...plugin.runtimeConfig } : {};
  let given = false;
  for (const [key, value] of Object.entries(capabilityArgs ?? {})) {
    if (caps[key] === true && value !== undefined) {
      runtimeConfig[key] = value;
      given = true;
    }
  }
  if (given || isObject(plugin.runtimeConfig)) conf.runtimeConfig = runtimeConfig;
  else delete conf.runtimeConfig;
  return conf;
}

/** CNI_ARGS: "K=V;K2=V2", with IgnoreUnknown=1 first unless the caller set it. */
export function formatCniArgs(args: Record<string, string> | undefined): string {
  const entries = Object.entries(args ?? {});
  if (entries.length === 0) return '';
  for (const [k, v] of entries) {
    if (!ARG_KEY_RE.test(k)) throw new BerthError('InvalidArgument', `CNI_ARGS key "${k}": only letters, digits, "_", "." and "-" are allowed`);
    if (v.includes(';')) throw new BerthError('InvalidArgument', `CNI_ARGS ${k}: the value must not contain ";" (it separates the arguments)`);
  }
  if (!entries.some(([k]) => k === 'IgnoreUnknown')) entries.unshift(['IgnoreUnknown', '1']);
  return entries.map(([k, v]) => `${k}=${v}`).join(';');
}

function checkAttachment(a: Pick<CniAttachment, 'containerId' | 'ifname'>): void {
  if (!CONTAINER_ID_RE.test(a.containerId)) {
    throw new BerthError('InvalidArgument', `CNI container id "${a.containerId}": must start with a letter or digit and hold only letters, digits, "_", "." and "-"`);
  }
  if (a.ifname === '' || a.ifname === '.' || a.ifname === '..' || Buffer.byteLength(a.ifname) > 15 || IFNAME_BAD.test(a.ifname)) {
    throw new BerthError('InvalidArgument', `CNI interface name "${a.ifname}": must be 1-15 bytes without "/", ":" or whitespace, and not "." or ".."`);
  }
}

function isNetns(path: string): boolean {
  try {
    return statfsSync(path).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

// What a DEL may meet when the thing it deletes is already gone; such errors do not stop the chain.
function isAbsentError(err: CniPluginError): boolean {
  if (err.cniCode === 3) return true;
  const text = `${err.message} ${err.details ?? ''}`;
  return /no such file or directory|not found|does not exist|no such device|no such process/i.test(text);
}

interface RunOptions {
  command: CniCommand;
  plugin: string;
  binary: string;
  env: Record<string, string>;
  stdin: Record<string, unknown>;
  network: string;
}

export class CniRunner {
  private readonly pluginDirs: string[];
  private readonly cacheDir: string;
  private readonly timeoutMs: number;
  private readonly warn: (m: string) => void;
  // The spec forbids parallel operations on one container; callers may still race (connect
  // while a teardown runs), so operations per container id are queued here.
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(opts: CniRunnerOptions) {
    if (opts.pluginDirs.length === 0) throw new BerthError('InvalidArgument', 'CNI plugin directories: none given');
    this.pluginDirs = [...opts.pluginDirs];
    this.cacheDir = opts.cacheDir;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.warn = opts.warn ?? (() => {});
  }

  /** Runs ADD for every plugin in order; on a failure, DEL for the whole list in reverse, then the error. */
  add(a: CniAttachment): Promise<CniResult> {
    return this.serialize(a.containerId, () => this.doAdd(a));
  }

  /** Runs CHECK in order with the cached ADD result; no-op when the list says disableCheck or predates CHECK (0.4.0). */
  check(a: CniAttachment): Promise<void> {
    return this.serialize(a.containerId, () => this.doCheck(a));
  }

  /**
   * Runs DEL in reverse order with the cached ADD result as prevResult, then removes the cache.
   * A missing cache or netns is not an error (the spec allows DEL without either); a plugin's
   * error about something already gone is tolerated; any other error stops the chain and keeps
   * the cache, so a retry can finish the job.
   */
  del(a: CniAttachment): Promise<void> {
    return this.serialize(a.containerId, () => this.doDel(a));
  }

  /** The cached result of the last successful ADD, or undefined. */
  cached(a: Pick<CniAttachment, 'conflist' | 'containerId' | 'ifname'>): CniResult | undefined {
    const entry = this.readCache(a.conflist.name, a.containerId, a.ifname);
    return entry ? normalizeResult(entry.result, entry.conflist.cniVersion) : undefined;
  }

  /**
   * Every cached attachment: after a crash, the ones whose sandbox is gone can be handed to
   * `del`. An unreadable entry is skipped with a warning, so one bad file does not hide the rest.
   */
  listCached(): CniCacheEntry[] {
    let names: string[];
    try {
      names = readdirSync(this.cacheDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: CniCacheEntry[] = [];
    for (const name of names) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue;
      try {
        const entry = this.parseCacheFile(join(this.cacheDir, name));
        if (entry) out.push(entry);
      } catch (err) {
        this.warn((err as Error).message);
      }
    }
    return out;
  }

  /** The file that caches one attachment's result. */
  cachePath(network: string, containerId: string, ifname: string): string {
    return join(this.cacheDir, `${network}+${containerId}+${encodeURIComponent(ifname)}.json`);
  }

  /** Asks every plugin of the list (VERSION) whether it speaks the list's cniVersion. */
  async validate(conflist: CniConflist): Promise<void> {
    const binaries = this.resolveAll(conflist);
    for (let i = 0; i < conflist.plugins.length; i++) {
      const plugin = String(conflist.plugins[i]!.type);
      const out = await this.exec({
        command: 'VERSION',
        plugin,
        binary: binaries[i]!,
        env: { CNI_COMMAND: 'VERSION', CNI_PATH: this.pluginDirs.join(':') },
        stdin: { cniVersion: conflist.cniVersion },
        network: conflist.name,
      });
      const supported = out && Array.isArray(out.supportedVersions) ? out.supportedVersions : undefined;
      if (!supported?.includes(conflist.cniVersion)) {
        throw new BerthError(
          'InvalidArgument',
          `CNI network "${conflist.name}": plugin "${plugin}" (${binaries[i]}) does not support cniVersion ${conflist.cniVersion}` +
            (supported ? ` (it supports ${supported.join(', ')})` : ' (its VERSION answer lists no versions)'),
          { hint: 'change cniVersion in the conflist or install a newer plugin' },
        );
      }
    }
  }

  /** Where the plugin `type` lives: the first plugin dir holding an executable file of that name. */
  findPlugin(type: string): string {
    const problem = checkPluginType(type);
    if (problem) throw new BerthError('InvalidArgument', `CNI plugin type: ${problem}`);
    for (const dir of this.pluginDirs) {
      const p = join(dir, type);
      try {
        if (!statSync(p).isFile()) continue;
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        continue;
      }
    }
    throw new BerthError('NotFound', `CNI plugin "${type}" not found in ${this.pluginDirs.join(', ')}`, {
      hint: 'install the plugin (Debian: containernetworking-plugins) or add its directory to the CNI plugin dirs',
    });
  }

  private resolveAll(conflist: CniConflist): string[] {
    return conflist.plugins.map((p) => this.findPlugin(String(p.type)));
  }

  private async serialize<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.queues.get(key) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(key, settled);
    try {
      return await run;
    } finally {
      if (this.queues.get(key) === settled) this.queues.delete(key);
    }
  }

  private env(command: CniCommand, a: CniAttachment, netns: string): Record<string, string> {
    return {
      CNI_COMMAND: command,
      CNI_CONTAINERID: a.containerId,
      CNI_NETNS: netns,
      CNI_IFNAME: a.ifname,
      CNI_ARGS: formatCniArgs(a.args),
      CNI_PATH: this.pluginDirs.join(':'),
    };
  }

  private async doAdd(a: CniAttachment): Promise<CniResult> {
    checkAttachment(a);
    const binaries = this.resolveAll(a.conflist);
    try {
      statSync(a.netnsPath);
    } catch (err) {
      throw new BerthError('NotFound', `CNI ADD on network "${a.conflist.name}": network namespace ${a.netnsPath} does not exist`, { cause: err });
    }
    const existing = this.cachePath(a.conflist.name, a.containerId, a.ifname);
    if (this.cacheExists(existing)) {
      // Spec: no second ADD for one (network, container, ifname) without a DEL in between.
      throw new BerthError('AlreadyExists', `CNI ADD on network "${a.conflist.name}": ${a.containerId}/${a.ifname} is already attached (cached in ${existing})`, {
        hint: 'DEL the attachment first',
      });
    }
    const env = this.env('ADD', a, a.netnsPath);
    let prev: Record<string, unknown> | undefined;
    try {
      for (let i = 0; i < a.conflist.plugins.length; i++) {
        const plugin = a.conflist.plugins[i]!;
        const out = await this.exec({
          command: 'ADD',
          plugin: String(plugin.type),
          binary: binaries[i]!,
          env,
          stdin: pluginConfig({ conflist: a.conflist, plugin, prevResult: prev, capabilityArgs: a.capabilityArgs }),
          network: a.conflist.name,
        });
        if (!out) {
          throw new CniPluginError({
            code: 'Internal',
            message: `CNI plugin "${String(plugin.type)}" ADD on network "${a.conflist.name}": printed no result`,
            plugin: String(plugin.type),
            command: 'ADD',
            hint: 'a CNI plugin must print its result (or its prevResult) on ADD',
          });
        }
        prev = out;
      }
      const entry: CniCacheEntry = {
        kind: CACHE_KIND,
        network: a.conflist.name,
        containerId: a.containerId,
        ifname: a.ifname,
        netnsPath: a.netnsPath,
        conflist: a.conflist,
        result: prev!,
        created: new Date().toISOString(),
      };
      if (a.args) entry.args = a.args;
      if (a.capabilityArgs) entry.capabilityArgs = a.capabilityArgs;
      mkdirSync(this.cacheDir, { recursive: true, mode: 0o700 });
      writeJsonAtomic(this.cachePath(a.conflist.name, a.containerId, a.ifname), entry, { mode: 0o600 });
      return normalizeResult(prev!, a.conflist.cniVersion);
    } catch (err) {
      // Spec: on a failed ADD, DEL the whole list (even plugins not yet called), in reverse.
      try {
        await this.runDel(a, binaries, undefined);
      } catch (cleanupErr) {
        attachCleanupError(err, cleanupErr);
      }
      throw err;
    }
  }

  private async doCheck(a: CniAttachment): Promise<void> {
    checkAttachment(a);
    if (a.conflist.disableCheck || compareCniVersions(a.conflist.cniVersion, '0.4.0') < 0) return;
    const binaries = this.resolveAll(a.conflist);
    const entry = this.readCache(a.conflist.name, a.containerId, a.ifname);
    if (!entry) {
      throw new BerthError('FailedPrecondition', `CNI CHECK on network "${a.conflist.name}" for ${a.containerId}/${a.ifname}: no cached ADD result`, {
        hint: 'CHECK is only valid between a successful ADD and its DEL',
      });
    }
    const env = this.env('CHECK', a, a.netnsPath);
    for (let i = 0; i < a.conflist.plugins.length; i++) {
      const plugin = a.conflist.plugins[i]!;
      await this.exec({
        command: 'CHECK',
        plugin: String(plugin.type),
        binary: binaries[i]!,
        env,
        stdin: pluginConfig({ conflist: a.conflist, plugin, prevResult: entry.result, capabilityArgs: a.capabilityArgs ?? entry.capabilityArgs }),
        network: a.conflist.name,
      });
    }
  }

  private async doDel(a: CniAttachment): Promise<void> {
    checkAttachment(a);
    const binaries = this.resolveAll(a.conflist);
    const path = this.cachePath(a.conflist.name, a.containerId, a.ifname);
    let entry: CniCacheEntry | undefined;
    try {
      entry = this.readCache(a.conflist.name, a.containerId, a.ifname);
    } catch (err) {
      this.warn(`CNI DEL on network "${a.conflist.name}": ignoring the unreadable cache ${path}: ${(err as Error).message}`);
    }
    const withCached: CniAttachment = {
      ...a,
      args: a.args ?? entry?.args,
      capabilityArgs: a.capabilityArgs ?? entry?.capabilityArgs,
    };
    await this.runDel(withCached, binaries, entry?.result);
    try {
      unlinkSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  private async runDel(a: CniAttachment, binaries: string[], prevResult: Record<string, unknown> | undefined): Promise<void> {
    // The netns may be gone already (container died, host rebooted): the spec lets CNI_NETNS be empty then.
    const env = this.env('DEL', a, isNetns(a.netnsPath) ? a.netnsPath : '');
    // prevResult on DEL arrived with spec 0.4.0; older plugins would not expect it.
    const prev = compareCniVersions(a.conflist.cniVersion, '0.4.0') >= 0 ? prevResult : undefined;
    for (let i = a.conflist.plugins.length - 1; i >= 0; i--) {
      const plugin = a.conflist.plugins[i]!;
      try {
        await this.exec({
          command: 'DEL',
          plugin: String(plugin.type),
          binary: binaries[i]!,
          env,
          stdin: pluginConfig({ conflist: a.conflist, plugin, prevResult: prev, capabilityArgs: a.capabilityArgs }),
          network: a.conflist.name,
        });
      } catch (err) {
        if (err instanceof CniPluginError && err.command === 'DEL' && isAbsentError(err)) {
          this.warn(`${err.message} (tolerated: already gone)`);
          continue;
        }
        throw err;
      }
    }
  }

  // An unreadable entry counts as present: it may still describe a live attachment.
  private cacheExists(path: string): boolean {
    try {
      return this.parseCacheFile(path) !== undefined;
    } catch {
      return true;
    }
  }

  private readCache(network: string, containerId: string, ifname: string): CniCacheEntry | undefined {
    return this.parseCacheFile(this.cachePath(network, containerId, ifname));
  }

  private parseCacheFile(path: string): CniCacheEntry | undefined {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new BerthError('Internal', `CNI cache ${path}: cannot read it: ${(err as Error).message}`, { cause: err });
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new BerthError('Internal', `CNI cache ${path}: invalid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (!isObject(doc) || doc.kind !== CACHE_KIND || !isObject(doc.result) || !isObject(doc.conflist)) {
      throw new BerthError('Internal', `CNI cache ${path}: not a berth CNI cache entry (${CACHE_KIND})`);
    }
    return doc as unknown as CniCacheEntry;
  }

  /** One plugin process: stdin in, JSON out, killed (with its process group) after the timeout. */
  private exec(o: RunOptions): Promise<Record<string, unknown> | undefined> {
    const what = `CNI plugin "${o.plugin}" ${o.command} on network "${o.network}"`;
    return new Promise((resolve, reject) => {
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('CNI_')) env[k] = v;
      Object.assign(env, o.env);
      // Its own process group, so a timeout also ends what it started (an IPAM plugin, iptables).
      const child = spawn(o.binary, [], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      const out: Buffer[] = [];
      let outLen = 0;
      let err = '';
      let settled = false;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      const timer = setTimeout(() => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
        // Not waiting for the pipes to close: something outside the group may still hold them.
        child.stdout.destroy();
        child.stderr.destroy();
        finish(() =>
          reject(
            new CniPluginError({
              code: 'Unavailable',
              message: `${what}: timed out after ${this.timeoutMs} ms (killed)`,
              plugin: o.plugin,
              command: o.command,
              details: err.trim() || undefined,
              hint: 'the plugin hung; check its log or raise the CNI timeout',
            }),
          ),
        );
      }, this.timeoutMs);
      child.stdout.on('data', (d: Buffer) => {
        if (outLen < MAX_STDOUT) out.push(d);
        outLen += d.length;
      });
      child.stderr.on('data', (d: Buffer) => {
        err = (err + d.toString()).slice(-MAX_STDERR);
      });
      // A plugin that exits without reading stdin closes the pipe; its exit status tells the story.
      child.stdin.on('error', () => {});
      child.on('error', (e) => {
        finish(() =>
          reject(
            new CniPluginError({
              code: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'NotFound' : 'Internal',
              message: `${what}: cannot run ${o.binary}: ${e.message}`,
              plugin: o.plugin,
              command: o.command,
              cause: e,
            }),
          ),
        );
      });
      child.on('close', (code, signal) => {
        finish(() => {
          const stdout = Buffer.concat(out).toString('utf8').trim();
          const stderr = err.trim();
          if (code !== 0) {
            reject(this.pluginFailure({ what, o, stdout, stderr, status: signal ? `signal ${signal}` : `exit status ${code}` }));
            return;
          }
          if (stdout === '') {
            resolve(undefined);
            return;
          }
          let doc: unknown;
          try {
            doc = JSON.parse(stdout);
          } catch (e) {
            reject(
              new CniPluginError({
                code: 'Internal',
                message: `${what}: printed something that is not JSON: ${stdout.slice(0, 200)}`,
                plugin: o.plugin,
                command: o.command,
                cause: e,
              }),
            );
            return;
          }
          if (!isObject(doc)) {
            reject(new CniPluginError({ code: 'Internal', message: `${what}: printed JSON that is not an object`, plugin: o.plugin, command: o.command }));
            return;
          }
          resolve(doc);
        });
      });
      child.stdin.end(JSON.stringify(o.stdin));
    });
  }

  private pluginFailure(f: { what: string; o: RunOptions; stdout: string; stderr: string; status: string }): CniPluginError {
    let doc: unknown;
    try {
      doc = JSON.parse(f.stdout);
    } catch {
      doc = undefined;
    }
    if (isObject(doc) && (typeof doc.msg === 'string' || typeof doc.code === 'number')) {
      const cniCode = typeof doc.code === 'number' ? doc.code : undefined;
      const msg = typeof doc.msg === 'string' ? doc.msg : '(no msg)';
      const details = typeof doc.details === 'string' && doc.details !== '' ? doc.details : undefined;
      return new CniPluginError({
        code: errorCodeFor(cniCode),
        message: `${f.what} failed${cniCode !== undefined ? ` (CNI error ${cniCode})` : ''}: ${msg}${details ? `: ${details}` : ''}`,
        plugin: f.o.plugin,
        command: f.o.command,
        cniCode,
        details,
      });
    }
    const text = f.stderr || f.stdout;
    return new CniPluginError({
      code: 'Internal',
      message: `${f.what} failed (${f.status})${text ? `: ${text.slice(-500)}` : ' and printed no error'}`,
      plugin: f.o.plugin,
      command: f.o.command,
      details: text || undefined,
    });
  }
}
