// berthd's engine: composes the container operations, the image side, volumes and events
// behind the `Engine` interface the Docker API adapts. open() rebuilds the view from disk
// and from the monitors still alive (live-restore).
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { arch, cpus, hostname, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BerthError } from '../errors.js';
import { ImageService } from '../image/index.js';
import { mountAll } from '../image/snapshots/mount.js';
import { EngineContext, type EngineOptions } from './context.js';
import { EngineImages } from './images.js';
import { EventBus } from './events.js';
import { VolumeStore } from './volumes.js';
import { readExit, readMonitorInfo } from './monitor.js';
import { createContainer } from './containers/create.js';
import { onExit, startContainer, watchExit } from './containers/start.js';
import { killContainer, pauseContainer, restartContainer, stopContainer, unpauseContainer } from './containers/stop.js';
import { containersUsingVolume, removeContainer, renameContainer, waitContainer } from './containers/remove.js';
import { containerStats, inspectContainer, listContainers, topContainer } from './containers/query.js';
import { attachContainer, containerLogs, resizeContainer } from './containers/io.js';
import { createExec, inspectExec, resizeExec, startExec } from './containers/exec.js';
import { exportContainer, getArchive, putArchive, statPath } from './containers/archive.js';
import { updateContainer } from './containers/update.js';
import { containerChanges } from './containers/diff.js';
import { commitContainer } from './containers/commit.js';
import { startHealthChecks } from './containers/health.js';
import { processAlive } from '../host/proc.js';
import { EngineNetworks } from './networks.js';
import type {
  AttachOptions,
  AuthConfig,
  CommitOptions,
  ContainerInspect,
  ContainerStats,
  ContainerSummary,
  CreateContainerRequest,
  Engine,
  EngineEvent,
  EventsOptions,
  ExecCreateRequest,
  ExecInspect,
  FilesystemChange,
  HostConfig,
  NetworkConnectRequest,
  NetworkCreateRequest,
  NetworkDisconnectRequest,
  NetworkInspect,
  ImageHistoryEntry,
  ImageInspect,
  ImageSummaryDocker,
  ListContainersOptions,
  LogRecord,
  LogsOptions,
  PathStat,
  ProgressMessage,
  PruneResult,
  RegistryAuth,
  StreamSession,
  TarStream,
  VersionInfo,
  VolumeInfo,
  WaitCondition,
  WaitResult,
} from './types.js';

export const API_VERSION = '1.47';
export const MIN_API_VERSION = '1.41';
export const BERTH_VERSION = '0.1.0';

export interface OpenEngineOptions extends Partial<EngineOptions> {
  /** Registry mirrors and insecure registries for pulls. */
  registries?: Parameters<typeof ImageService.open>[0] extends infer O ? (O extends { registries?: infer R } ? R : never) : never;
}

export class BerthEngine implements Engine {
  private constructor(readonly ctx: EngineContext) {}

  static async open(opts: OpenEngineOptions = {}): Promise<BerthEngine> {
    const root = opts.root ?? '/var/lib/berth';
    const runRoot = opts.runRoot ?? '/run/berth';
    // The monitors' sockets live at <runRoot>/c/<32 hex>/console.sock: sockaddr_un holds 107 bytes.
    const longest = join(runRoot, 'c', '0'.repeat(32), 'console.sock');
    if (Buffer.byteLength(longest) > 107)
      throw new BerthError('InvalidArgument', `--run-root ${runRoot}: too long for the containers' unix sockets (${Buffer.byteLength(longest)} > 107 bytes)`, {
        hint: 'use a shorter runtime root, like the default /run/berth',
      });
    mkdirSync(root, { recursive: true, mode: 0o711 });
    mkdirSync(runRoot, { recursive: true, mode: 0o711 });
    const events = new EventBus();
    const service = await ImageService.open({ root: join(root, 'image'), registries: opts.registries });
    const volumes = new VolumeStore(join(root, 'volumes'));
    let ctxRef: EngineContext | undefined;
    const images = new EngineImages(service, {
      events: (e) => events.emit(e),
      containersUsing: (imageId) => [...(ctxRef?.containers.values() ?? [])].filter((c) => c.image === imageId).map((c) => c.id),
      registries: opts.registries,
      runningContainersUsing: (imageId) =>
        [...(ctxRef?.containers.values() ?? [])].filter((c) => c.image === imageId && (c.state.status === 'running' || c.state.status === 'paused')).map((c) => c.id),
    });
    const ctx = new EngineContext({ ...opts, root, runRoot }, images, volumes, events);
    ctxRef = ctx;
    ctx.networks = await openNetworks(ctx);
    const engine = new BerthEngine(ctx);
    await engine.restore();
    return engine;
  }

  /**
   * Live-restore: containers whose monitor is alive keep running and are watched again;
   * those whose monitor is gone get their recorded exit (exit.json) and then their restart
   * policy, as after a host restart.
   */
  private async restore(): Promise<void> {
    const ctx = this.ctx;
    const { records, broken } = ctx.store.loadAll();
    for (const b of broken) ctx.opts.warn?.(`container ${b.id}: cannot load its record (${b.error}); left as it is`);
    for (const rec of records) ctx.containers.set(rec.id, rec);
    // The network layer keeps the sandboxes of containers still running and removes the rest.
    await ctx.networks.restore(records.filter((rec) => ['running', 'paused', 'restarting'].includes(rec.state.status) && monitorAlive(ctx, rec.id)));
    for (const rec of records) {
      const rootfs = ctx.store.rootfs(rec.id);
      if (!isMountPoint(rootfs)) {
        try {
          const { mounts } = await ctx.images.service.prepareRootfs(rec.snapshotKey, rec.imageRef ?? rec.image);
          mountAll(mounts, rootfs);
        } catch (err) {
          ctx.opts.warn?.(`container ${rec.id.slice(0, 12)}: cannot mount its rootfs again: ${String(err)}`);
        }
      }
      const live = rec.state.status === 'running' || rec.state.status === 'paused' || rec.state.status === 'restarting';
      if (!live) continue;
      const runDir = ctx.runDir(rec.id);
      const monitor = readMonitorInfo(runDir);
      if (monitor && processAlive(monitor.monitorPid) && !readExit(runDir)) {
        watchExit(ctx, rec);
        if (rec.state.status === 'running') startHealthChecks(ctx, rec);
        continue;
      }
      if (rec.state.status === 'restarting') {
        // Its restart was pending when berthd stopped: the exit was recorded already.
        rec.state.status = 'exited';
        await onExit(ctx, rec.id, { exitCode: rec.state.exitCode, signal: null, oomKilled: false, startedAt: rec.state.startedAt, finishedAt: rec.state.finishedAt });
        continue;
      }
      await onExit(ctx, rec.id, readExit(runDir));
    }
    // Restart-policy `always`/`unless-stopped` containers that were running when the host went down
    // are restarted by onExit above; those stopped by the user stay stopped.
  }

  /** Graceful shutdown: containers keep running under their monitors. */
  async close(): Promise<void> {
    this.ctx.images.service.close();
    await this.ctx.networks.close();
  }

  // ── system ──────────────────────────────────────────────────────────────
  version(): VersionInfo {
    return {
      Platform: { Name: 'berth' },
      Components: [{ Name: 'Engine', Version: BERTH_VERSION, Details: { ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, Os: 'linux', Arch: goArch() } }],
      Version: BERTH_VERSION,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: '',
      GoVersion: `node${process.versions.node}`,
      Os: 'linux',
      Arch: goArch(),
      KernelVersion: release(),
      BuildTime: '',
    };
  }

  async info(): Promise<Record<string, unknown>> {
    const recs = [...this.ctx.containers.values()];
    const images = await this.ctx.images.listImages({ all: false });
    const host = await this.ctx.runtime.cgroupHost();
    return {
      ID: hostname(),
      Containers: recs.length,
      ContainersRunning: recs.filter((r) => r.state.status === 'running').length,
      ContainersPaused: recs.filter((r) => r.state.status === 'paused').length,
      ContainersStopped: recs.filter((r) => r.state.status !== 'running' && r.state.status !== 'paused').length,
      Images: images.length,
      Driver: 'overlay',
      DriverStatus: [['Backing Filesystem', 'extfs']],
      DockerRootDir: this.ctx.opts.root,
      Plugins: { Volume: ['local'], Network: ['bridge', 'cni', 'host', 'null'], Authorization: null, Log: ['json-file', 'none'] },
      MemoryLimit: true,
      SwapLimit: true,
      KernelMemory: false,
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      CPUSet: true,
      PidsLimit: true,
      IPv4Forwarding: true,
      Debug: false,
      NFd: 0,
      OomKillDisable: true,
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: 'json-file',
      CgroupDriver: 'cgroupfs',
      CgroupVersion: host.mode === 'v2' ? '2' : '1',
      NEventsListener: 0,
      KernelVersion: release(),
      OperatingSystem: osName(),
      OSVersion: '',
      OSType: 'linux',
      Architecture: arch() === 'x64' ? 'x86_64' : arch(),
      IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: { IndexConfigs: {}, InsecureRegistryCIDRs: ['127.0.0.0/8'], Mirrors: [] },
      NCPU: cpus().length,
      MemTotal: totalmem(),
      Name: hostname(),
      Labels: [],
      ExperimentalBuild: false,
      ServerVersion: BERTH_VERSION,
      Runtimes: { 'berth-oci': { path: 'berth-oci' } },
      DefaultRuntime: 'berth-oci',
      Swarm: { LocalNodeState: 'inactive', NodeID: '', NodeAddr: '', ControlAvailable: false, Error: '', RemoteManagers: null },
      LiveRestoreEnabled: true,
      Isolation: '',
      InitBinary: 'berth-init',
      SecurityOptions: ['name=seccomp,profile=builtin', 'name=no-new-privileges'],
      Warnings: host.mode === 'hybrid' ? ['WARNING: cgroup v1 controllers with a cgroup v2 mount beside them (hybrid)'] : [],
    };
  }

  async df(): Promise<Record<string, unknown>> {
    const images = await this.ctx.images.listImages({ all: false });
    const volumes = await this.ctx.volumes.list();
    const containers = listContainers(this.ctx, { all: true });
    return {
      LayersSize: images.reduce((n, i) => n + i.Size, 0),
      Images: images.map((i) => ({ ...i, Containers: containers.filter((c) => c.ImageID === i.Id).length })),
      Containers: containers.map((c) => ({ ...c, SizeRw: 0, SizeRootFs: 0 })),
      Volumes: await Promise.all(
        volumes.map(async (v) => ({ ...v, UsageData: { Size: await this.ctx.volumes.usage(v.Name).catch(() => -1), RefCount: containersUsingVolume(this.ctx, v.Name).length } })),
      ),
      BuildCache: [],
    };
  }

  events(opts: EventsOptions): AsyncIterable<EngineEvent> {
    return this.ctx.events.subscribe(opts);
  }

  // ── containers ──────────────────────────────────────────────────────────
  createContainer(req: CreateContainerRequest, opts: { name?: string; platform?: string }): Promise<{ Id: string; Warnings: string[] }> {
    return createContainer(this.ctx, req, opts);
  }
  startContainer(idOrName: string): Promise<boolean> {
    return startContainer(this.ctx, idOrName);
  }
  stopContainer(idOrName: string, opts?: { signal?: string; timeout?: number }): Promise<boolean> {
    return stopContainer(this.ctx, idOrName, opts);
  }
  restartContainer(idOrName: string, opts?: { signal?: string; timeout?: number }): Promise<void> {
    return restartContainer(this.ctx, idOrName, opts);
  }
  killContainer(idOrName: string, signal?: string): Promise<void> {
    return killContainer(this.ctx, idOrName, signal);
  }
  pauseContainer(idOrName: string): Promise<void> {
    return pauseContainer(this.ctx, idOrName);
  }
  unpauseContainer(idOrName: string): Promise<void> {
    return unpauseContainer(this.ctx, idOrName);
  }
  waitContainer(idOrName: string, condition: WaitCondition, signal?: AbortSignal): Promise<{ exited: Promise<WaitResult> }> {
    return waitContainer(this.ctx, idOrName, condition, signal);
  }
  removeContainer(idOrName: string, opts?: { force?: boolean; volumes?: boolean; link?: boolean }): Promise<void> {
    return removeContainer(this.ctx, idOrName, opts);
  }
  async renameContainer(idOrName: string, newName: string): Promise<void> {
    return renameContainer(this.ctx, idOrName, newName);
  }
  updateContainer(idOrName: string, update: HostConfig): Promise<{ Warnings: string[] }> {
    return updateContainer(this.ctx, idOrName, update);
  }
  async inspectContainer(idOrName: string): Promise<ContainerInspect> {
    return inspectContainer(this.ctx, idOrName);
  }
  async listContainers(opts: ListContainersOptions): Promise<ContainerSummary[]> {
    return listContainers(this.ctx, opts);
  }
  topContainer(idOrName: string, psArgs?: string): Promise<{ Titles: string[]; Processes: string[][] }> {
    return topContainer(this.ctx, idOrName, psArgs);
  }
  containerStats(idOrName: string, opts: { stream: boolean; oneShot?: boolean; signal?: AbortSignal }): AsyncIterable<ContainerStats> {
    this.ctx.find(idOrName);
    return containerStats(this.ctx, idOrName, opts);
  }
  containerLogs(idOrName: string, opts: LogsOptions): Promise<{ tty: boolean; records: AsyncIterable<LogRecord> }> {
    return containerLogs(this.ctx, idOrName, opts);
  }
  attachContainer(idOrName: string, opts: AttachOptions): Promise<StreamSession> {
    return attachContainer(this.ctx, idOrName, opts);
  }
  resizeContainer(idOrName: string, size: { h: number; w: number }): Promise<void> {
    return resizeContainer(this.ctx, idOrName, size);
  }
  async pruneContainers(filters: Record<string, string[]>): Promise<PruneResult> {
    const { parseUntil, matchLabels } = await import('./filters.js');
    for (const k of Object.keys(filters)) if (k !== 'until' && k !== 'label' && k !== 'label!') throw new BerthError('InvalidArgument', `invalid filter '${k}'`);
    const until = filters.until?.[0] ? parseUntil(filters.until[0]) : undefined;
    const deleted: string[] = [];
    for (const rec of [...this.ctx.containers.values()]) {
      if (rec.state.status !== 'exited' && rec.state.status !== 'created' && rec.state.status !== 'dead') continue;
      if (until !== undefined && Date.parse(rec.created) >= until) continue;
      if (filters.label?.length && !matchLabels(rec.config.Labels ?? {}, filters.label)) continue;
      if (filters['label!']?.length && matchLabels(rec.config.Labels ?? {}, filters['label!'])) continue;
      await removeContainer(this.ctx, rec.id, {});
      deleted.push(rec.id);
    }
    return { deleted, spaceReclaimed: 0 };
  }
  statPath(idOrName: string, path: string): Promise<PathStat> {
    return statPath(this.ctx, idOrName, path);
  }
  getArchive(idOrName: string, path: string): Promise<{ stat: PathStat; tar: TarStream }> {
    return getArchive(this.ctx, idOrName, path);
  }
  putArchive(idOrName: string, path: string, tar: TarStream, opts?: { noOverwriteDirNonDir?: boolean; copyUIDGID?: boolean }): Promise<void> {
    return putArchive(this.ctx, idOrName, path, tar, opts);
  }
  exportContainer(idOrName: string): Promise<TarStream> {
    return exportContainer(this.ctx, idOrName);
  }
  containerChanges(idOrName: string): Promise<FilesystemChange[]> {
    return containerChanges(this.ctx, idOrName);
  }
  commitContainer(idOrName: string, opts: CommitOptions): Promise<{ Id: string }> {
    return commitContainer(this.ctx, idOrName, opts);
  }
  login(auth: AuthConfig): Promise<{ Status: string; IdentityToken: string }> {
    return this.ctx.images.login(auth);
  }

  // ── exec ────────────────────────────────────────────────────────────────
  async createExec(idOrName: string, req: ExecCreateRequest): Promise<{ Id: string }> {
    return createExec(this.ctx, idOrName, req);
  }
  startExec(execId: string, opts: { Detach?: boolean; Tty?: boolean; ConsoleSize?: [number, number] | null }): Promise<StreamSession | null> {
    return startExec(this.ctx, execId, opts);
  }
  resizeExec(execId: string, size: { h: number; w: number }): Promise<void> {
    return resizeExec(execId, size);
  }
  async inspectExec(execId: string): Promise<ExecInspect> {
    return inspectExec(this.ctx, execId);
  }

  // ── images ──────────────────────────────────────────────────────────────
  pullImage(opts: { fromImage: string; tag?: string; platform?: string; auth?: RegistryAuth; onProgress: (m: ProgressMessage) => void; signal?: AbortSignal }): Promise<void> {
    return this.ctx.images.pullImage(opts);
  }
  pushImage(opts: { name: string; tag?: string; auth?: RegistryAuth; onProgress: (m: ProgressMessage) => void; signal?: AbortSignal }): Promise<void> {
    return this.ctx.images.pushImage(opts);
  }
  listImages(opts: { all?: boolean; filters?: Record<string, string[]>; digests?: boolean }): Promise<ImageSummaryDocker[]> {
    return this.ctx.images.listImages(opts);
  }
  inspectImage(name: string): Promise<ImageInspect> {
    return this.ctx.images.inspectImage(name);
  }
  imageHistory(name: string): Promise<ImageHistoryEntry[]> {
    return this.ctx.images.imageHistory(name);
  }
  tagImage(source: string, repo: string, tag?: string): Promise<void> {
    return this.ctx.images.tagImage(source, repo, tag);
  }
  removeImage(name: string, opts?: { force?: boolean; noprune?: boolean }): Promise<{ Untagged?: string; Deleted?: string }[]> {
    return this.ctx.images.removeImage(name, opts);
  }
  saveImages(names: string[], out: NodeJS.WritableStream, signal?: AbortSignal): Promise<void> {
    return this.ctx.images.saveImages(names, out, signal);
  }
  loadImages(input: Readable, opts: { quiet?: boolean; onProgress: (m: ProgressMessage) => void }): Promise<void> {
    return this.ctx.images.loadImages(input, opts);
  }
  importImage(input: Readable, opts: { repo?: string; tag?: string; changes?: string[]; message?: string; platform?: string; onProgress: (m: ProgressMessage) => void }): Promise<void> {
    return this.ctx.images.importImage(input, opts);
  }
  pruneImages(filters: Record<string, string[]>): Promise<{ ImagesDeleted: { Untagged?: string; Deleted?: string }[]; SpaceReclaimed: number }> {
    return this.ctx.images.pruneImages(filters);
  }

  // ── volumes ─────────────────────────────────────────────────────────────
  async createVolume(req: { Name?: string; Driver?: string; DriverOpts?: Record<string, string>; Labels?: Record<string, string> }): Promise<VolumeInfo> {
    const v = await this.ctx.volumes.create(req);
    this.ctx.events.emit({ Type: 'volume', Action: 'create', id: v.Name, attributes: { driver: 'local' } });
    return v;
  }
  async listVolumes(filters: Record<string, string[]>): Promise<{ Volumes: VolumeInfo[]; Warnings: string[] }> {
    const { matchLabels } = await import('./filters.js');
    let vols = await this.ctx.volumes.list();
    for (const k of Object.keys(filters)) if (!['name', 'label', 'dangling', 'driver'].includes(k)) throw new BerthError('InvalidArgument', `invalid filter '${k}'`);
    if (filters.name?.length) vols = vols.filter((v) => filters.name!.some((n) => v.Name.includes(n)));
    if (filters.label?.length) vols = vols.filter((v) => matchLabels(v.Labels ?? {}, filters.label!));
    if (filters.driver?.length) vols = vols.filter((v) => filters.driver!.includes(v.Driver));
    if (filters.dangling?.length) {
      const want = filters.dangling[0] === 'true' || filters.dangling[0] === '1';
      vols = vols.filter((v) => (containersUsingVolume(this.ctx, v.Name).length === 0) === want);
    }
    return { Volumes: vols, Warnings: [] };
  }
  inspectVolume(name: string): Promise<VolumeInfo> {
    return this.ctx.volumes.get(name);
  }
  async removeVolume(name: string, opts?: { force?: boolean }): Promise<void> {
    await this.ctx.volumes.remove(name, { force: opts?.force, inUse: (n) => containersUsingVolume(this.ctx, n) });
    this.ctx.events.emit({ Type: 'volume', Action: 'destroy', id: name, attributes: { driver: 'local' } });
  }
  pruneVolumes(filters: Record<string, string[]>): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    return this.ctx.volumes.prune({ filters, inUse: (n) => containersUsingVolume(this.ctx, n) });
  }

  // ── networks ────────────────────────────────────────────────────────────
  createNetwork(req: NetworkCreateRequest): Promise<{ Id: string; Warning: string }> {
    return this.ctx.networks.create(req);
  }
  async inspectNetwork(idOrName: string): Promise<NetworkInspect> {
    return this.ctx.networks.inspect(idOrName);
  }
  async listNetworks(filters: Record<string, string[]>): Promise<NetworkInspect[]> {
    return this.ctx.networks.list(filters);
  }
  removeNetwork(idOrName: string): Promise<void> {
    return this.ctx.networks.remove(idOrName);
  }
  pruneNetworks(filters: Record<string, string[]>): Promise<{ NetworksDeleted: string[] }> {
    return this.ctx.networks.prune(filters);
  }
  connectNetwork(idOrName: string, req: NetworkConnectRequest): Promise<void> {
    return this.ctx.networks.connect(idOrName, req);
  }
  disconnectNetwork(idOrName: string, req: NetworkDisconnectRequest): Promise<void> {
    return this.ctx.networks.disconnect(idOrName, req);
  }
}

/** Its monitor still runs and has recorded no exit: the container lives on from before berthd's restart. */
function monitorAlive(ctx: EngineContext, id: string): boolean {
  const runDir = ctx.runDir(id);
  const monitor = readMonitorInfo(runDir);
  return Boolean(monitor && processAlive(monitor.monitorPid) && !readExit(runDir));
}

/**
 * The network layer, opened with berthd's settings. When it cannot start (no netlink addon,
 * no nftables), berthd still runs containers on host and none and says why the rest fails.
 */
async function openNetworks(ctx: EngineContext): Promise<EngineNetworks> {
  const hooks = {
    events: ctx.events,
    containers: () => ctx.containers.values(),
    findContainer: (idOrName: string) => ctx.find(idOrName),
    save: (rec: Parameters<EngineContext['save']>[0]) => ctx.save(rec),
    containerDir: (id: string) => ctx.store.dir(id),
    locked: <T>(id: string, fn: () => Promise<T>) => ctx.locked(id, fn),
    warn: ctx.opts.warn,
  };
  try {
    const { NetworkService } = await import('../network/index.js');
    const n = ctx.opts.network ?? {};
    const service = await NetworkService.open({
      root: ctx.opts.root,
      runRoot: ctx.opts.runRoot,
      hostResolvConf: ctx.opts.hostResolvConf ?? '/etc/resolv.conf',
      ...(n.defaultBridge ? { defaultBridge: n.defaultBridge } : {}),
      ...(n.cniPluginDirs ? { cniPluginDirs: n.cniPluginDirs } : {}),
      ...(n.cniConfDir ? { cniConfDir: n.cniConfDir } : {}),
      ...(n.dnsPort !== undefined ? { dnsPort: n.dnsPort } : {}),
      ...(n.upstreams ? { upstreams: n.upstreams } : {}),
      ...(n.nftTable ? { nftTable: n.nftTable } : {}),
      warn: ctx.opts.warn,
    });
    return new EngineNetworks(service, hooks);
  } catch (err) {
    const reason = err instanceof BerthError ? err.describe() : err instanceof Error ? err.message : String(err);
    ctx.opts.warn?.(`networks: the network layer did not start: ${reason}; only --network none and host work`);
    return new EngineNetworks(undefined, hooks, `the network layer did not start: ${reason}`);
  }
}

function goArch(): string {
  return { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' }[arch()] ?? arch();
}

function osName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'));
    return m?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}

function isMountPoint(path: string): boolean {
  if (!existsSync(path)) return false;
  try {
    const parent = statSync(join(path, '..'));
    const self = statSync(path);
    return parent.dev !== self.dev;
  } catch {
    return false;
  }
}
