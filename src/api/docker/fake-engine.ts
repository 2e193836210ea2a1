// A stand-in Engine for the API's tests: canned Docker-shaped data, every call recorded.
// Tests replace single methods (`fake.waitContainer = async () => ...`) to script behaviour.
import { PassThrough, Readable, type Writable } from 'node:stream';
import { BerthError } from '../../errors.js';
import type {
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
  AttachOptions,
  NetworkConnectRequest,
  NetworkCreateRequest,
  NetworkDisconnectRequest,
  NetworkInspect,
} from '../../engine/types.js';

export const FAKE_CONTAINER_ID = 'c0ffee'.padEnd(64, '0');
export const FAKE_IMAGE_ID = 'sha256:' + 'ab'.repeat(32);

function notFound(what: string, name: string): never {
  throw new BerthError('NotFound', `No such ${what}: ${name}`);
}

export interface RecordedCall {
  method: string;
  args: unknown[];
}

export class FakeEngine implements Engine {
  readonly calls: RecordedCall[] = [];
  containers: ContainerSummary[] = [
    {
      Id: FAKE_CONTAINER_ID,
      Names: ['/web'],
      Image: 'busybox:latest',
      ImageID: FAKE_IMAGE_ID,
      Command: 'sleep 1000',
      Created: 1700000000,
      Ports: [],
      Labels: { app: 'web' },
      State: 'running',
      Status: 'Up 5 minutes',
      HostConfig: { NetworkMode: 'none' },
      NetworkSettings: { Networks: {} },
      Mounts: [],
    },
  ];
  images: ImageSummaryDocker[] = [
    { Id: FAKE_IMAGE_ID, ParentId: '', RepoTags: ['busybox:latest', 'localhost:5000/a/b:1'], RepoDigests: [], Created: 1700000000, Size: 4_000_000, SharedSize: -1, Labels: {}, Containers: -1 },
  ];
  volumes: VolumeInfo[] = [
    { Name: 'data', Driver: 'local', Mountpoint: '/var/lib/berth/volumes/data/_data', CreatedAt: '2026-11-22T00:00:00Z', Labels: {}, Scope: 'local', Options: {}, UsageData: { Size: -1, RefCount: 1 } },
  ];

  protected record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
  }

  callsTo(method: string): unknown[][] {
    return this.calls.filter((c) => c.method === method).map((c) => c.args);
  }

  protected container(idOrName: string): ContainerSummary {
    const c = this.containers.find((x) => x.Id === idOrName || (idOrName.length >= 3 && x.Id.startsWith(idOrName)) || x.Names.includes('/' + idOrName));
    return c ?? notFound('container', idOrName);
  }

  version(): VersionInfo {
    return {
      Platform: { Name: 'berth' },
      Components: [{ Name: 'Engine', Version: '0.1.0', Details: { ApiVersion: '1.47', MinAPIVersion: '1.41', GitCommit: 'fake', GoVersion: 'n/a', Os: 'linux', Arch: 'amd64', KernelVersion: '6.18.0', BuildTime: '2026-11-22T00:00:00Z', Experimental: 'false' } }],
      Version: '0.1.0',
      ApiVersion: '1.47',
      MinAPIVersion: '1.41',
      GitCommit: 'fake',
      GoVersion: 'n/a',
      Os: 'linux',
      Arch: 'amd64',
      KernelVersion: '6.18.0',
      BuildTime: '2026-11-22T00:00:00Z',
    };
  }

  async info(): Promise<Record<string, unknown>> {
    this.record('info');
    return { ID: 'fake', Containers: this.containers.length, Images: this.images.length, Driver: 'overlay', OperatingSystem: 'Debian', OSType: 'linux', Architecture: 'x86_64', NCPU: 2, MemTotal: 1 << 30, ServerVersion: '0.1.0', Name: 'fake' };
  }

  async df(): Promise<Record<string, unknown>> {
    this.record('df');
    return { LayersSize: 0, Images: this.images, Containers: this.containers, Volumes: this.volumes, BuildCache: [] };
  }

  eventList: EngineEvent[] = [];

  async *events(opts: EventsOptions): AsyncIterable<EngineEvent> {
    this.record('events', opts);
    for (const e of this.eventList) yield e;
    if (opts.until !== undefined) return;
    // Live events never come: wait for the client to go away.
    await new Promise<void>((resolve) => opts.signal?.addEventListener('abort', () => resolve(), { once: true }));
  }

  async createContainer(req: CreateContainerRequest, opts: { name?: string; platform?: string }): Promise<{ Id: string; Warnings: string[] }> {
    this.record('createContainer', req, opts);
    if (opts.name && this.containers.some((c) => c.Names.includes('/' + opts.name))) throw new BerthError('Conflict', `Conflict. The container name "/${opts.name}" is already in use`);
    if (req.Image === 'nosuch') notFound('image', req.Image);
    const Id = 'f'.repeat(64);
    if (!this.containers.some((c) => c.Id === Id)) {
      this.containers.push({ ...this.containers[0]!, Id, Names: [`/${opts.name ?? 'created'}`], Image: req.Image ?? '', State: 'created', Status: 'Created' });
    }
    return { Id, Warnings: [] };
  }

  async startContainer(idOrName: string): Promise<boolean> {
    this.record('startContainer', idOrName);
    return this.container(idOrName).State !== 'running';
  }

  async stopContainer(idOrName: string, opts?: { signal?: string; timeout?: number }): Promise<boolean> {
    this.record('stopContainer', idOrName, opts);
    return this.container(idOrName).State === 'running';
  }

  async restartContainer(idOrName: string, opts?: { signal?: string; timeout?: number }): Promise<void> {
    this.record('restartContainer', idOrName, opts);
    this.container(idOrName);
  }

  async killContainer(idOrName: string, signal?: string): Promise<void> {
    this.record('killContainer', idOrName, signal);
    this.container(idOrName);
  }

  async pauseContainer(idOrName: string): Promise<void> {
    this.record('pauseContainer', idOrName);
    this.container(idOrName);
  }

  async unpauseContainer(idOrName: string): Promise<void> {
    this.record('unpauseContainer', idOrName);
    this.container(idOrName);
  }

  async waitContainer(idOrName: string, condition: WaitCondition, signal?: AbortSignal): Promise<{ exited: Promise<WaitResult> }> {
    this.record('waitContainer', idOrName, condition, signal);
    this.container(idOrName);
    return { exited: Promise.resolve({ StatusCode: 0, Error: null }) };
  }

  async removeContainer(idOrName: string, opts?: { force?: boolean; volumes?: boolean; link?: boolean }): Promise<void> {
    this.record('removeContainer', idOrName, opts);
    this.container(idOrName);
  }

  async renameContainer(idOrName: string, newName: string): Promise<void> {
    this.record('renameContainer', idOrName, newName);
    this.container(idOrName);
  }

  async updateContainer(idOrName: string, update: HostConfig): Promise<{ Warnings: string[] }> {
    this.record('updateContainer', idOrName, update);
    this.container(idOrName);
    return { Warnings: [] };
  }

  async inspectContainer(idOrName: string, opts?: { size?: boolean }): Promise<ContainerInspect> {
    this.record('inspectContainer', idOrName, opts);
    const c = this.container(idOrName);
    return {
      Id: c.Id,
      Created: '2026-11-22T00:00:00Z',
      Path: 'sleep',
      Args: ['1000'],
      State: { Status: c.State, Running: c.State === 'running', Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 4242, ExitCode: 0, Error: '', StartedAt: '2026-11-22T00:00:00Z', FinishedAt: '0001-01-01T00:00:00Z' },
      Image: c.ImageID,
      ResolvConfPath: '',
      HostnamePath: '',
      HostsPath: '',
      LogPath: '',
      Name: c.Names[0]!,
      RestartCount: 0,
      Driver: 'overlay',
      Platform: 'linux',
      MountLabel: '',
      ProcessLabel: '',
      AppArmorProfile: '',
      ExecIDs: null,
      HostConfig: { NetworkMode: 'none' },
      GraphDriver: { Name: 'overlay', Data: null },
      Mounts: [],
      Config: { Image: c.Image, Cmd: ['sleep', '1000'], Tty: false, Labels: c.Labels },
      NetworkSettings: { Bridge: '', SandboxID: '', SandboxKey: '', Ports: {}, IPAddress: '', IPPrefixLen: 0, Gateway: '', MacAddress: '', Networks: {} },
    };
  }

  async listContainers(opts: ListContainersOptions): Promise<ContainerSummary[]> {
    this.record('listContainers', opts);
    return opts.all ? this.containers : this.containers.filter((c) => c.State === 'running');
  }

  async topContainer(idOrName: string, psArgs?: string): Promise<{ Titles: string[]; Processes: string[][] }> {
    this.record('topContainer', idOrName, psArgs);
    this.container(idOrName);
    return { Titles: ['PID', 'CMD'], Processes: [['4242', 'sleep 1000']] };
  }

  statsSample(): ContainerStats {
    const cpu = { cpu_usage: { total_usage: 1000, usage_in_kernelmode: 10, usage_in_usermode: 990 }, system_cpu_usage: 100000, online_cpus: 2, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };
    return { read: '2026-11-22T00:00:01Z', preread: '2026-11-22T00:00:00Z', name: '/web', id: FAKE_CONTAINER_ID, pids_stats: { current: 1 }, num_procs: 0, cpu_stats: cpu, precpu_stats: cpu, memory_stats: { usage: 1000, limit: 1 << 30, stats: {} }, blkio_stats: {}, storage_stats: {} };
  }

  async *containerStats(idOrName: string, opts: { stream: boolean; oneShot?: boolean; signal?: AbortSignal }): AsyncIterable<ContainerStats> {
    this.record('containerStats', idOrName, opts);
    this.container(idOrName);
    yield this.statsSample();
    if (opts.stream) yield this.statsSample();
  }

  logRecords: LogRecord[] = [
    { stream: 'stdout', time: '2026-11-22T02:10:00.123456789Z', line: Buffer.from('hello\n') },
    { stream: 'stderr', time: '2026-11-22T02:10:01.000000001Z', line: Buffer.from('oops\n') },
  ];
  logsTty = false;

  async containerLogs(idOrName: string, opts: LogsOptions): Promise<{ tty: boolean; records: AsyncIterable<LogRecord> }> {
    this.record('containerLogs', idOrName, opts);
    this.container(idOrName);
    const wanted = this.logRecords.filter((r) => (r.stream === 'stdout' ? opts.stdout : opts.stderr));
    return { tty: this.logsTty, records: Readable.from(wanted) };
  }

  /** What attach/exec sessions output; tests replace it. */
  makeSession(tty: boolean): StreamSession {
    const output = new PassThrough({ objectMode: true });
    output.end({ stream: 1, data: Buffer.from('hi\n') });
    return { tty, output, input: null, done: Promise.resolve(), close: () => undefined };
  }

  async attachContainer(idOrName: string, opts: AttachOptions): Promise<StreamSession> {
    this.record('attachContainer', idOrName, opts);
    this.container(idOrName);
    return this.makeSession(false);
  }

  async resizeContainer(idOrName: string, size: { h: number; w: number }): Promise<void> {
    this.record('resizeContainer', idOrName, size);
    this.container(idOrName);
  }

  async pruneContainers(filters: Record<string, string[]>): Promise<PruneResult> {
    this.record('pruneContainers', filters);
    return { deleted: [], spaceReclaimed: 0 };
  }

  pathStat: PathStat = { name: 'etc', size: 4096, mode: 2147484141, mtime: '2026-11-22T00:00:00Z', linkTarget: '' };

  async statPath(idOrName: string, path: string): Promise<PathStat> {
    this.record('statPath', idOrName, path);
    this.container(idOrName);
    if (path === '/nosuch') notFound('file or directory', path);
    return this.pathStat;
  }

  async getArchive(idOrName: string, path: string): Promise<{ stat: PathStat; tar: TarStream }> {
    this.record('getArchive', idOrName, path);
    const stat = await this.statPath(idOrName, path);
    return { stat, tar: Readable.from([Buffer.alloc(1024)]) };
  }

  received: Buffer[] = [];

  async putArchive(idOrName: string, path: string, tar: TarStream, opts?: { noOverwriteDirNonDir?: boolean; copyUIDGID?: boolean }): Promise<void> {
    this.record('putArchive', idOrName, path, opts);
    this.container(idOrName);
    for await (const chunk of tar) this.received.push(chunk as Buffer);
  }

  async exportContainer(idOrName: string): Promise<TarStream> {
    this.record('exportContainer', idOrName);
    this.container(idOrName);
    return Readable.from([Buffer.alloc(1024)]);
  }

  async containerChanges(idOrName: string): Promise<FilesystemChange[]> {
    this.record('containerChanges', idOrName);
    this.container(idOrName);
    return [
      { Path: '/tmp', Kind: 0 },
      { Path: '/tmp/new', Kind: 1 },
      { Path: '/etc/motd', Kind: 2 },
    ];
  }

  async commitContainer(idOrName: string, opts: CommitOptions): Promise<{ Id: string }> {
    this.record('commitContainer', idOrName, opts);
    this.container(idOrName);
    return { Id: 'sha256:' + 'cd'.repeat(32) };
  }

  async login(auth: AuthConfig): Promise<{ Status: string; IdentityToken: string }> {
    this.record('login', auth);
    if (auth.password === 'wrong') throw Object.assign(new BerthError('FailedPrecondition', 'login to example.test failed: unauthorized'), { status: 401 });
    return { Status: 'Login Succeeded', IdentityToken: '' };
  }

  async createExec(idOrName: string, req: ExecCreateRequest): Promise<{ Id: string }> {
    this.record('createExec', idOrName, req);
    this.container(idOrName);
    return { Id: 'e'.repeat(64) };
  }

  async startExec(execId: string, opts: { Detach?: boolean; Tty?: boolean; ConsoleSize?: [number, number] | null }): Promise<StreamSession | null> {
    this.record('startExec', execId, opts);
    if (execId !== 'e'.repeat(64)) notFound('exec instance', execId);
    return opts.Detach ? null : this.makeSession(opts.Tty ?? false);
  }

  async resizeExec(execId: string, size: { h: number; w: number }): Promise<void> {
    this.record('resizeExec', execId, size);
  }

  async inspectExec(execId: string): Promise<ExecInspect> {
    this.record('inspectExec', execId);
    if (execId !== 'e'.repeat(64)) notFound('exec instance', execId);
    return { ID: execId, Running: false, ExitCode: 0, ProcessConfig: { tty: false, entrypoint: 'true', arguments: [], privileged: false, user: '' }, OpenStdin: false, OpenStderr: true, OpenStdout: true, CanRemove: false, ContainerID: FAKE_CONTAINER_ID, DetachKeys: '', Pid: 0 };
  }

  async pullImage(opts: { fromImage: string; tag?: string; platform?: string; auth?: RegistryAuth; onProgress: (m: ProgressMessage) => void; signal?: AbortSignal }): Promise<void> {
    this.record('pullImage', opts);
    if (opts.fromImage.endsWith('nosuch')) throw new BerthError('NotFound', 'pull access denied for nosuch, repository does not exist');
    opts.onProgress({ status: `Pulling from library/${opts.fromImage}`, id: opts.tag ?? 'latest' });
    if (opts.fromImage.endsWith('breaks')) throw new BerthError('Unavailable', 'registry went away');
    opts.onProgress({ status: `Status: Downloaded newer image for ${opts.fromImage}:${opts.tag ?? 'latest'}` });
  }

  async pushImage(opts: { name: string; tag?: string; auth?: RegistryAuth; onProgress: (m: ProgressMessage) => void; signal?: AbortSignal }): Promise<void> {
    this.record('pushImage', opts);
    opts.onProgress({ status: 'Pushed', id: 'layer' });
  }

  protected image(name: string): ImageSummaryDocker {
    const i = this.images.find((x) => x.Id === name || x.RepoTags.includes(name) || x.RepoTags.includes(name + ':latest'));
    return i ?? notFound('image', name);
  }

  async listImages(opts: { all?: boolean; filters?: Record<string, string[]>; digests?: boolean }): Promise<ImageSummaryDocker[]> {
    this.record('listImages', opts);
    return this.images;
  }

  async inspectImage(name: string): Promise<ImageInspect> {
    this.record('inspectImage', name);
    const i = this.image(name);
    return { Id: i.Id, RepoTags: i.RepoTags, RepoDigests: [], Parent: '', Comment: '', Created: '2026-11-22T00:00:00Z', DockerVersion: '', Author: '', Config: { Cmd: ['sh'] }, Architecture: 'amd64', Os: 'linux', Size: i.Size, GraphDriver: { Name: 'overlay', Data: null }, RootFS: { Type: 'layers', Layers: [] }, Metadata: { LastTagTime: '0001-01-01T00:00:00Z' } };
  }

  async imageHistory(name: string): Promise<ImageHistoryEntry[]> {
    this.record('imageHistory', name);
    const i = this.image(name);
    return [{ Id: i.Id, Created: i.Created, CreatedBy: '/bin/sh', Tags: i.RepoTags, Size: i.Size, Comment: '' }];
  }

  async tagImage(source: string, repo: string, tag?: string): Promise<void> {
    this.record('tagImage', source, repo, tag);
    this.image(source);
  }

  async removeImage(name: string, opts?: { force?: boolean; noprune?: boolean }): Promise<{ Untagged?: string; Deleted?: string }[]> {
    this.record('removeImage', name, opts);
    const i = this.image(name);
    return [{ Untagged: name }, { Deleted: i.Id }];
  }

  async saveImages(names: string[], out: NodeJS.WritableStream, signal?: AbortSignal): Promise<void> {
    this.record('saveImages', names, signal);
    for (const n of names) this.image(n);
    await new Promise<void>((resolve, reject) => (out as Writable).write(Buffer.alloc(1024), (err) => (err ? reject(err) : resolve())));
  }

  async loadImages(input: Readable, opts: { quiet?: boolean; onProgress: (m: ProgressMessage) => void }): Promise<void> {
    this.record('loadImages', opts);
    let size = 0;
    for await (const chunk of input) size += (chunk as Buffer).length;
    opts.onProgress({ stream: `Loaded image: busybox:latest (${size} bytes)\n` });
  }

  async importImage(input: Readable, opts: { repo?: string; tag?: string; changes?: string[]; message?: string; platform?: string; onProgress: (m: ProgressMessage) => void }): Promise<void> {
    this.record('importImage', opts);
    for await (const _chunk of input) void _chunk;
    opts.onProgress({ status: FAKE_IMAGE_ID });
  }

  async pruneImages(filters: Record<string, string[]>): Promise<{ ImagesDeleted: { Untagged?: string; Deleted?: string }[]; SpaceReclaimed: number }> {
    this.record('pruneImages', filters);
    return { ImagesDeleted: [], SpaceReclaimed: 0 };
  }

  async createVolume(req: { Name?: string; Driver?: string; DriverOpts?: Record<string, string>; Labels?: Record<string, string> }): Promise<VolumeInfo> {
    this.record('createVolume', req);
    return { Name: req.Name ?? 'a'.repeat(64), Driver: 'local', Mountpoint: `/var/lib/berth/volumes/${req.Name}/_data`, CreatedAt: '2026-11-22T00:00:00Z', Labels: req.Labels ?? {}, Scope: 'local', Options: req.DriverOpts ?? {} };
  }

  async listVolumes(filters: Record<string, string[]>): Promise<{ Volumes: VolumeInfo[]; Warnings: string[] }> {
    this.record('listVolumes', filters);
    return { Volumes: this.volumes, Warnings: [] };
  }

  async inspectVolume(name: string): Promise<VolumeInfo> {
    this.record('inspectVolume', name);
    return this.volumes.find((v) => v.Name === name) ?? notFound('volume', name);
  }

  async removeVolume(name: string, opts?: { force?: boolean }): Promise<void> {
    this.record('removeVolume', name, opts);
    await this.inspectVolume(name);
  }

  async pruneVolumes(filters: Record<string, string[]>): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    this.record('pruneVolumes', filters);
    return { VolumesDeleted: [], SpaceReclaimed: 0 };
  }

  networks: NetworkInspect[] = [
    {
      Name: 'bridge',
      Id: 'b7'.repeat(32),
      Created: '2026-11-22T00:00:00Z',
      Scope: 'local',
      Driver: 'bridge',
      EnableIPv4: true,
      EnableIPv6: false,
      IPAM: { Driver: 'default', Options: null, Config: [{ Subnet: '10.87.0.0/16', Gateway: '10.87.0.1' }] },
      Internal: false,
      Attachable: false,
      Ingress: false,
      ConfigFrom: { Network: '' },
      ConfigOnly: false,
      Containers: {},
      Options: {},
      Labels: {},
    },
    ...(['host', 'none'] as const).map((name, i) => ({
      Name: name,
      Id: String(i + 2).repeat(64),
      Created: '2026-11-22T00:00:00Z',
      Scope: 'local' as const,
      Driver: name === 'none' ? 'null' : name,
      EnableIPv4: name === 'host',
      EnableIPv6: false,
      IPAM: { Driver: 'default', Options: null, Config: [] },
      Internal: false,
      Attachable: false,
      Ingress: false,
      ConfigFrom: { Network: '' },
      ConfigOnly: false,
      Containers: {},
      Options: {},
      Labels: {},
    })),
  ];

  private findNetwork(idOrName: string): NetworkInspect {
    return this.networks.find((n) => n.Name === idOrName || n.Id.startsWith(idOrName)) ?? (notFound('network', idOrName) as never);
  }

  async createNetwork(req: NetworkCreateRequest): Promise<{ Id: string; Warning: string }> {
    this.record('createNetwork', req);
    if (this.networks.some((n) => n.Name === req.Name)) throw new BerthError('Conflict', `network with name ${req.Name} already exists`);
    return { Id: 'ee'.repeat(32), Warning: '' };
  }

  async inspectNetwork(idOrName: string, opts?: { verbose?: boolean; scope?: string }): Promise<NetworkInspect> {
    this.record('inspectNetwork', idOrName, opts);
    return this.findNetwork(idOrName);
  }

  async listNetworks(filters: Record<string, string[]>): Promise<NetworkInspect[]> {
    this.record('listNetworks', filters);
    return this.networks;
  }

  async removeNetwork(idOrName: string): Promise<void> {
    this.record('removeNetwork', idOrName);
    const n = this.findNetwork(idOrName);
    if (n.Name === 'bridge') throw new BerthError('FailedPrecondition', 'bridge is a pre-defined network and cannot be removed');
  }

  async pruneNetworks(filters: Record<string, string[]>): Promise<{ NetworksDeleted: string[] }> {
    this.record('pruneNetworks', filters);
    return { NetworksDeleted: [] };
  }

  async connectNetwork(idOrName: string, req: NetworkConnectRequest): Promise<void> {
    this.record('connectNetwork', idOrName, req);
    this.findNetwork(idOrName);
  }

  async disconnectNetwork(idOrName: string, req: NetworkDisconnectRequest): Promise<void> {
    this.record('disconnectNetwork', idOrName, req);
    this.findNetwork(idOrName);
  }
}
