// What every engine operation needs: the stores, the runtime library, the image side, the
// event bus, and the live view of containers (records by id, name index, exit watchers).
import { randomBytes } from 'node:crypto';
import { cpus, hostname } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../errors.js';
import { RuntimeContext } from '../runtime/index.js';
import { readHostRlimits } from '../runtime/rlimits.js';
import type { EngineImages } from './images.js';
import { readHostDevices, type SpecHostFacts } from './spec/index.js';
import type { EventBus } from './events.js';
import type { EngineNetworks } from './networks.js';
import type { VolumeStore } from './volumes.js';
import { ContainerStore, noSuchContainer, type ContainerRecord } from './containers/record.js';

/** berthd's `network` settings (its config file's `network` section). */
export interface NetworkConfig {
  defaultBridge?: { subnet?: string; bridge?: string; mtu?: number };
  cniPluginDirs?: string[];
  cniConfDir?: string;
  dnsPort?: number;
  upstreams?: { address: string; port: number }[];
  /** berth's nftables table (default "berth"): a test daemon uses its own. */
  nftTable?: string;
}

export interface EngineOptions {
  /** Persistent state (default /var/lib/berth). */
  root: string;
  /** Runtime state: sockets, monitor dirs, the OCI state root (default /run/berth). */
  runRoot: string;
  /** The host's resolv.conf, read for containers' (default /etc/resolv.conf). */
  hostResolvConf?: string;
  /** json-file defaults when a container names none. */
  logMaxSize?: number;
  logMaxFiles?: number;
  warn?: (message: string) => void;
  /** The network layer's settings (berthd's config "network"; tests choose their own bridge and subnet). */
  network?: NetworkConfig;
}

/** Waiters on a container's next exit or removal. */
export interface Waiters {
  exit: ((code: number) => void)[];
  removed: ((code: number) => void)[];
}

export class EngineContext {
  readonly opts: EngineOptions;
  readonly store: ContainerStore;
  readonly runtime: RuntimeContext;
  readonly containers = new Map<string, ContainerRecord>();
  readonly waiters = new Map<string, Waiters>();
  /** The current run of each container (see watchExit). */
  readonly runTokens = new Map<string, number>();
  /** Attach sessions made before the container started (docker run): joined to the monitor at the next start, before the process runs. */
  readonly pendingAttach = new Map<string, ((runDir: string) => Promise<void>)[]>();
  /** Networks in Docker's shapes and each container's sandbox; set by BerthEngine.open once the network layer is up. */
  networks!: EngineNetworks;
  /** Containers with an operation in flight (start, stop, remove): one at a time per container. */
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    opts: EngineOptions,
    readonly images: EngineImages,
    readonly volumes: VolumeStore,
    readonly events: EventBus,
  ) {
    this.opts = opts;
    this.store = new ContainerStore(join(opts.root, 'containers'));
    this.runtime = new RuntimeContext({ root: join(opts.runRoot, 'oci'), warn: opts.warn });
  }

  private hostFacts?: Promise<SpecHostFacts>;

  /** What the spec builder needs to know of the host; devices are read again each time (they come and go). */
  async specHostFacts(): Promise<SpecHostFacts> {
    const base = await (this.hostFacts ??= this.runtime.cgroupHost().then((h) => {
      const nofile = readHostRlimits().RLIMIT_NOFILE?.hard;
      return { cgroupV2: h.mode === 'v2', cpuCount: cpus().length, hostname: hostname(), arch: process.arch, nofileHard: typeof nofile === 'number' ? nofile : undefined };
    }));
    return { ...base, devices: readHostDevices() };
  }

  /** The monitor's dir; short, because its socket paths must fit sockaddr_un (108 bytes). */
  runDir(id: string): string {
    return join(this.opts.runRoot, 'c', id.slice(0, 32));
  }

  newId(): string {
    for (;;) {
      const id = randomBytes(32).toString('hex');
      // Docker avoids ids that are all digits in their short form (they read as numbers).
      if (!/^\d{12}/.test(id) && !this.containers.has(id)) return id;
    }
  }

  /** By full id, by name (with or without '/'), then by unique id prefix: Docker's order. */
  find(idOrName: string): ContainerRecord {
    const exact = this.containers.get(idOrName);
    if (exact) return exact;
    const name = idOrName.startsWith('/') ? idOrName.slice(1) : idOrName;
    for (const c of this.containers.values()) if (c.name === name) return c;
    if (/^[0-9a-f]+$/.test(idOrName)) {
      const matches = [...this.containers.values()].filter((c) => c.id.startsWith(idOrName));
      if (matches.length === 1) return matches[0]!;
      if (matches.length > 1) throw new BerthError('InvalidArgument', `multiple IDs found with provided prefix: ${idOrName}`);
    }
    throw noSuchContainer(idOrName);
  }

  byName(name: string): ContainerRecord | undefined {
    for (const c of this.containers.values()) if (c.name === name) return c;
    return undefined;
  }

  save(rec: ContainerRecord, opts: { durable?: boolean } = {}): void {
    this.store.save(rec, opts);
    this.containers.set(rec.id, rec);
  }

  waitersOf(id: string): Waiters {
    let w = this.waiters.get(id);
    if (!w) this.waiters.set(id, (w = { exit: [], removed: [] }));
    return w;
  }

  /** Runs fn after any other locked operation on the same container. */
  async locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    const tail = run.catch(() => undefined);
    this.locks.set(id, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    }
  }

  emit(action: string, rec: ContainerRecord, extra: Record<string, string> = {}): void {
    this.events.emit({ Type: 'container', Action: action, id: rec.id, attributes: { ...(rec.config.Labels ?? {}), image: rec.imageName, name: rec.name, ...extra } });
  }
}
