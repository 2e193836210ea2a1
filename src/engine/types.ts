// The engine's public shapes. Containers, exec sessions, volumes and events are described in
// the Docker Engine API's own field names (v1.41+), so that the API layer stays a thin
// adapter and `berth` prints what the daemon returns.
import type { Readable, Duplex, Writable } from 'node:stream';

/** `Config` of POST /containers/create (the image's config has the same shape). */
export interface ContainerConfig {
  Hostname?: string;
  Domainname?: string;
  User?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  ExposedPorts?: Record<string, object> | null;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  Env?: string[] | null;
  Cmd?: string[] | null;
  Healthcheck?: HealthConfig | null;
  ArgsEscaped?: boolean;
  Image?: string;
  Volumes?: Record<string, object> | null;
  WorkingDir?: string;
  Entrypoint?: string[] | null;
  NetworkDisabled?: boolean;
  MacAddress?: string;
  OnBuild?: string[] | null;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  StopTimeout?: number | null;
  Shell?: string[] | null;
}

export interface HealthConfig {
  /** ["NONE"], ["CMD", args...], ["CMD-SHELL", command]; [] inherits the image's. */
  Test?: string[];
  /** Nanoseconds; 0 means inherit (default 30 s / 30 s / 0 s). */
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

export interface RestartPolicy {
  Name: '' | 'no' | 'always' | 'unless-stopped' | 'on-failure';
  MaximumRetryCount?: number;
}

export interface MountSpec {
  Type: 'bind' | 'volume' | 'tmpfs' | 'npipe' | 'cluster' | 'image';
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean; CreateMountpoint?: boolean };
  VolumeOptions?: { NoCopy?: boolean; Labels?: Record<string, string>; DriverConfig?: { Name?: string; Options?: Record<string, string> } };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer: string;
  CgroupPermissions: string;
}

export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

/** `HostConfig` of POST /containers/create (fields berth does not support are refused by name). */
export interface HostConfig {
  Binds?: string[] | null;
  ContainerIDFile?: string;
  LogConfig?: { Type?: string; Config?: Record<string, string> };
  NetworkMode?: string;
  PortBindings?: Record<string, PortBinding[] | null> | null;
  RestartPolicy?: RestartPolicy;
  AutoRemove?: boolean;
  VolumeDriver?: string;
  VolumesFrom?: string[] | null;
  Mounts?: MountSpec[] | null;
  CapAdd?: string[] | null;
  CapDrop?: string[] | null;
  CgroupnsMode?: string;
  Dns?: string[] | null;
  DnsOptions?: string[] | null;
  DnsSearch?: string[] | null;
  ExtraHosts?: string[] | null;
  GroupAdd?: string[] | null;
  IpcMode?: string;
  Cgroup?: string;
  Links?: string[] | null;
  OomScoreAdj?: number;
  PidMode?: string;
  Privileged?: boolean;
  PublishAllPorts?: boolean;
  ReadonlyRootfs?: boolean;
  SecurityOpt?: string[] | null;
  StorageOpt?: Record<string, string> | null;
  Tmpfs?: Record<string, string> | null;
  UTSMode?: string;
  UsernsMode?: string;
  ShmSize?: number;
  Sysctls?: Record<string, string> | null;
  Runtime?: string;
  Isolation?: string;
  // Resources
  CpuShares?: number;
  Memory?: number;
  NanoCpus?: number;
  CgroupParent?: string;
  BlkioWeight?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpuRealtimePeriod?: number;
  CpuRealtimeRuntime?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  Devices?: DeviceMapping[] | null;
  DeviceCgroupRules?: string[] | null;
  KernelMemory?: number;
  MemoryReservation?: number;
  MemorySwap?: number;
  MemorySwappiness?: number | null;
  OomKillDisable?: boolean | null;
  PidsLimit?: number | null;
  Ulimits?: Ulimit[] | null;
  Init?: boolean | null;
  MaskedPaths?: string[] | null;
  ReadonlyPaths?: string[] | null;
}

/** Body of POST /containers/create. */
export interface CreateContainerRequest extends ContainerConfig {
  HostConfig?: HostConfig;
  NetworkingConfig?: { EndpointsConfig?: Record<string, EndpointSettings | null> | null } | null;
}

export interface HealthLogEntry {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface ContainerState {
  Status: 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  Health?: { Status: 'starting' | 'healthy' | 'unhealthy' | 'none'; FailingStreak: number; Log: HealthLogEntry[] };
}

export interface MountPoint {
  Type: 'bind' | 'volume' | 'tmpfs';
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
}

/** GET /containers/{id}/json. */
export interface ContainerInspect {
  Id: string;
  Created: string;
  Path: string;
  Args: string[];
  State: ContainerState;
  Image: string;
  ResolvConfPath: string;
  HostnamePath: string;
  HostsPath: string;
  LogPath: string;
  Name: string;
  RestartCount: number;
  Driver: string;
  Platform: string;
  MountLabel: string;
  ProcessLabel: string;
  AppArmorProfile: string;
  ExecIDs: string[] | null;
  HostConfig: HostConfig;
  GraphDriver: { Name: string; Data: Record<string, string> | null };
  Mounts: MountPoint[];
  Config: ContainerConfig;
  NetworkSettings: NetworkSettings;
}

export interface NetworkSettings {
  Bridge: string;
  SandboxID: string;
  SandboxKey: string;
  Ports: Record<string, PortBinding[] | null>;
  IPAddress: string;
  IPPrefixLen: number;
  Gateway: string;
  MacAddress: string;
  Networks: Record<string, EndpointSettings>;
}

/** One entry of GET /containers/json. */
export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  Command: string;
  Created: number;
  Ports: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[];
  Labels: Record<string, string>;
  State: ContainerState['Status'];
  Status: string;
  HostConfig: { NetworkMode: string };
  NetworkSettings: { Networks: NetworkSettings['Networks'] };
  Mounts: MountPoint[];
  SizeRw?: number;
  SizeRootFs?: number;
}

export interface ListContainersOptions {
  all?: boolean;
  limit?: number;
  size?: boolean;
  /** Docker's filters: id, name, label (key or key=value), status, exited, ancestor, before, since, volume, health, network, is-task. */
  filters?: Record<string, string[]>;
}

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

export interface WaitResult {
  StatusCode: number;
  Error?: { Message: string } | null;
}

export interface LogsOptions {
  follow?: boolean;
  stdout?: boolean;
  stderr?: boolean;
  /** Unix seconds (may carry a fraction). */
  since?: number;
  until?: number;
  timestamps?: boolean;
  /** 'all' or a count of lines from the end. */
  tail?: number | 'all';
  signal?: AbortSignal;
}

/** One log record as the json-file driver stores it. */
export interface LogRecord {
  stream: 'stdout' | 'stderr';
  /** RFC 3339 with nanoseconds. */
  time: string;
  line: Buffer;
}

export interface AttachOptions {
  stdin?: boolean;
  stdout?: boolean;
  stderr?: boolean;
  /** Replay the log first (docker attach --logs). */
  logs?: boolean;
  stream?: boolean;
  detachKeys?: string;
}

/**
 * An attach or exec session as the API hijacks it: `output` carries the container's bytes
 * already framed by stream (tty: raw), `input` receives the client's stdin.
 */
export interface StreamSession {
  tty: boolean;
  /** Output frames: stream 1 stdout, 2 stderr (tty: raw bytes, stream 1). Ends when the process's output ends. */
  output: Readable;
  /** The client's stdin; end() closes the process's stdin (StdinOnce). Null when stdin is not attached. */
  input: Writable | null;
  /** Resolves when the session is over (the process exited or the client went away). */
  done: Promise<void>;
  /** Stops forwarding (the client disconnected). */
  close(): void;
}

export interface ExecCreateRequest {
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  DetachKeys?: string;
  Tty?: boolean;
  ConsoleSize?: [number, number] | null;
  Env?: string[] | null;
  Cmd: string[];
  Privileged?: boolean;
  User?: string;
  WorkingDir?: string;
}

export interface ExecInspect {
  ID: string;
  Running: boolean;
  ExitCode: number | null;
  ProcessConfig: { tty: boolean; entrypoint: string; arguments: string[]; privileged: boolean; user: string };
  OpenStdin: boolean;
  OpenStderr: boolean;
  OpenStdout: boolean;
  CanRemove: boolean;
  ContainerID: string;
  DetachKeys: string;
  Pid: number;
}

export interface VolumeInfo {
  Name: string;
  Driver: 'local';
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: 'local';
  Options: Record<string, string>;
  UsageData?: { Size: number; RefCount: number } | null;
}

/** One message of GET /events (Docker's shape). */
export interface EngineEvent {
  Type: 'container' | 'image' | 'volume' | 'network' | 'daemon' | 'plugin' | 'service' | 'node' | 'secret' | 'config' | 'builder' | 'pod';
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
  // Old-style fields the docker CLI still prints for containers and images.
  status?: string;
  id?: string;
  from?: string;
}

export interface EventsOptions {
  /** Unix seconds; past events from the daemon's ring buffer first. */
  since?: number;
  until?: number;
  /** Docker's filters: type, event, container, image, volume, network, label, daemon. */
  filters?: Record<string, string[]>;
  signal?: AbortSignal;
}

/** Stats in Docker's field shapes (GET /containers/{id}/stats). */
export interface ContainerStats {
  read: string;
  preread: string;
  name: string;
  id: string;
  pids_stats: { current?: number; limit?: number };
  num_procs: number;
  cpu_stats: CpuStats;
  precpu_stats: CpuStats;
  memory_stats: { usage?: number; limit?: number; max_usage?: number; stats?: Record<string, number>; failcnt?: number };
  blkio_stats: Record<string, unknown>;
  networks?: Record<string, Record<string, number>>;
  storage_stats: Record<string, unknown>;
}

export interface CpuStats {
  cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode: number; usage_in_usermode: number };
  system_cpu_usage?: number;
  online_cpus?: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}

export interface PruneResult {
  deleted: string[];
  spaceReclaimed: number;
}

/** Streams handed between the engine and the API for archives and exports. */
export type TarStream = Readable;
export type HijackedConnection = Duplex;

/** One message of a pull/push/load progress stream (Docker's JSONMessage). */
export interface ProgressMessage {
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  stream?: string;
  aux?: Record<string, unknown>;
  error?: string;
  errorDetail?: { message: string };
}

/** Registry credentials as X-Registry-Auth carries them (base64url JSON). */
export interface RegistryAuth {
  username?: string;
  password?: string;
  auth?: string;
  identitytoken?: string;
  registrytoken?: string;
  serveraddress?: string;
}

/** One entry of GET /images/json. */
export interface ImageSummaryDocker {
  Id: string;
  ParentId: string;
  RepoTags: string[];
  RepoDigests: string[];
  Created: number;
  Size: number;
  SharedSize: number;
  VirtualSize?: number;
  Labels: Record<string, string>;
  Containers: number;
}

/** GET /images/{name}/json. */
export interface ImageInspect {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Parent: string;
  Comment: string;
  Created: string;
  DockerVersion: string;
  Author: string;
  Config: ContainerConfig;
  Architecture: string;
  Variant?: string;
  Os: string;
  Size: number;
  VirtualSize?: number;
  GraphDriver: { Name: string; Data: Record<string, string> | null };
  RootFS: { Type: 'layers'; Layers: string[] };
  Metadata: { LastTagTime: string };
}

export interface ImageHistoryEntry {
  Id: string;
  Created: number;
  CreatedBy: string;
  Tags: string[] | null;
  Size: number;
  Comment: string;
}

/** The X-Docker-Container-Path-Stat header of archive requests (base64 JSON). */
export interface PathStat {
  name: string;
  size: number;
  /** Go's os.FileMode bits (dir = 1<<31, symlink = 1<<27, …) | permission bits. */
  mode: number;
  mtime: string;
  linkTarget: string;
}

export interface VersionInfo {
  Platform: { Name: string };
  Components: { Name: string; Version: string; Details?: Record<string, string> }[];
  Version: string;
  ApiVersion: string;
  MinAPIVersion: string;
  GitCommit: string;
  GoVersion: string;
  Os: string;
  Arch: string;
  KernelVersion: string;
  BuildTime: string;
}

/**
 * What berthd does, in the Docker API's shapes. src/api/docker adapts HTTP to these calls and
 * maps BerthError codes to statuses (NotFound 404, Conflict/AlreadyExists 409,
 * InvalidArgument 400, FailedPrecondition 409 …); it holds no logic of its own.
 */
export interface Engine {
  // system
  version(): VersionInfo;
  info(): Promise<Record<string, unknown>>;
  df(): Promise<Record<string, unknown>>;
  /** Past events (since) then live ones until `until` or the signal aborts. */
  events(opts: EventsOptions): AsyncIterable<EngineEvent>;

  // containers
  createContainer(req: CreateContainerRequest, opts: { name?: string; platform?: string }): Promise<{ Id: string; Warnings: string[] }>;
  /** false when it was already running (the API answers 304). */
  startContainer(idOrName: string): Promise<boolean>;
  /** false when it was not running (304). `timeout` in seconds (-1 waits forever). */
  stopContainer(idOrName: string, opts?: { signal?: string; timeout?: number }): Promise<boolean>;
  restartContainer(idOrName: string, opts?: { signal?: string; timeout?: number }): Promise<void>;
  killContainer(idOrName: string, signal?: string): Promise<void>;
  pauseContainer(idOrName: string): Promise<void>;
  unpauseContainer(idOrName: string): Promise<void>;
  /**
   * Checks the container and condition (throws NotFound/InvalidArgument at once, so the API can
   * still answer with an error status) and returns the wait itself.
   */
  waitContainer(idOrName: string, condition: WaitCondition, signal?: AbortSignal): Promise<{ exited: Promise<WaitResult> }>;
  removeContainer(idOrName: string, opts?: { force?: boolean; volumes?: boolean; link?: boolean }): Promise<void>;
  renameContainer(idOrName: string, newName: string): Promise<void>;
  updateContainer(idOrName: string, update: HostConfig): Promise<{ Warnings: string[] }>;
  inspectContainer(idOrName: string, opts?: { size?: boolean }): Promise<ContainerInspect>;
  listContainers(opts: ListContainersOptions): Promise<ContainerSummary[]>;
  topContainer(idOrName: string, psArgs?: string): Promise<{ Titles: string[]; Processes: string[][] }>;
  /** One sample (stream false) or one per second until the signal aborts or the container is gone. */
  containerStats(idOrName: string, opts: { stream: boolean; oneShot?: boolean; signal?: AbortSignal }): AsyncIterable<ContainerStats>;
  containerLogs(idOrName: string, opts: LogsOptions): Promise<{ tty: boolean; records: AsyncIterable<LogRecord> }>;
  attachContainer(idOrName: string, opts: AttachOptions): Promise<StreamSession>;
  resizeContainer(idOrName: string, size: { h: number; w: number }): Promise<void>;
  pruneContainers(filters: Record<string, string[]>): Promise<PruneResult>;
  statPath(idOrName: string, path: string): Promise<PathStat>;
  getArchive(idOrName: string, path: string): Promise<{ stat: PathStat; tar: TarStream }>;
  putArchive(idOrName: string, path: string, tar: TarStream, opts?: { noOverwriteDirNonDir?: boolean; copyUIDGID?: boolean }): Promise<void>;
  exportContainer(idOrName: string): Promise<TarStream>;

  // exec
  createExec(idOrName: string, req: ExecCreateRequest): Promise<{ Id: string }>;
  /** Detach: starts it and returns null. Otherwise the session to hijack. */
  startExec(execId: string, opts: { Detach?: boolean; Tty?: boolean; ConsoleSize?: [number, number] | null }): Promise<StreamSession | null>;
  resizeExec(execId: string, size: { h: number; w: number }): Promise<void>;
  inspectExec(execId: string): Promise<ExecInspect>;

  // images
  pullImage(opts: { fromImage: string; tag?: string; platform?: string; auth?: RegistryAuth; onProgress: (m: ProgressMessage) => void; signal?: AbortSignal }): Promise<void>;
  pushImage(opts: { name: string; tag?: string; auth?: RegistryAuth; onProgress: (m: ProgressMessage) => void; signal?: AbortSignal }): Promise<void>;
  listImages(opts: { all?: boolean; filters?: Record<string, string[]>; digests?: boolean }): Promise<ImageSummaryDocker[]>;
  inspectImage(name: string): Promise<ImageInspect>;
  imageHistory(name: string): Promise<ImageHistoryEntry[]>;
  tagImage(source: string, repo: string, tag?: string): Promise<void>;
  removeImage(name: string, opts?: { force?: boolean; noprune?: boolean }): Promise<{ Untagged?: string; Deleted?: string }[]>;
  saveImages(names: string[], out: NodeJS.WritableStream, signal?: AbortSignal): Promise<void>;
  loadImages(input: Readable, opts: { quiet?: boolean; onProgress: (m: ProgressMessage) => void }): Promise<void>;
  importImage(input: Readable, opts: { repo?: string; tag?: string; changes?: string[]; message?: string; platform?: string; onProgress: (m: ProgressMessage) => void }): Promise<void>;
  pruneImages(filters: Record<string, string[]>): Promise<{ ImagesDeleted: { Untagged?: string; Deleted?: string }[]; SpaceReclaimed: number }>;

  // volumes
  createVolume(req: { Name?: string; Driver?: string; DriverOpts?: Record<string, string>; Labels?: Record<string, string> }): Promise<VolumeInfo>;
  listVolumes(filters: Record<string, string[]>): Promise<{ Volumes: VolumeInfo[]; Warnings: string[] }>;
  inspectVolume(name: string): Promise<VolumeInfo>;
  removeVolume(name: string, opts?: { force?: boolean }): Promise<void>;
  pruneVolumes(filters: Record<string, string[]>): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }>;

  // networks
  createNetwork(req: NetworkCreateRequest): Promise<{ Id: string; Warning: string }>;
  inspectNetwork(idOrName: string, opts?: { verbose?: boolean; scope?: string }): Promise<NetworkInspect>;
  /** Docker's filters: driver, id, label, name, scope, type (custom/builtin), dangling. */
  listNetworks(filters: Record<string, string[]>): Promise<NetworkInspect[]>;
  removeNetwork(idOrName: string): Promise<void>;
  pruneNetworks(filters: Record<string, string[]>): Promise<{ NetworksDeleted: string[] }>;
  connectNetwork(idOrName: string, req: NetworkConnectRequest): Promise<void>;
  disconnectNetwork(idOrName: string, req: NetworkDisconnectRequest): Promise<void>;

  // diff, commit, login
  containerChanges(idOrName: string): Promise<FilesystemChange[]>;
  /** The new image's ID. */
  commitContainer(idOrName: string, opts: CommitOptions): Promise<{ Id: string }>;
  /** Checks the credentials against the registry (docker login); refused credentials throw a BerthError with `status` 401. */
  login(auth: AuthConfig): Promise<{ Status: string; IdentityToken: string }>;
}

/** One network of a container (NetworkSettings.Networks, NetworkingConfig.EndpointsConfig, connect's EndpointConfig). */
export interface EndpointSettings {
  IPAMConfig?: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] | null } | null;
  Links?: string[] | null;
  Aliases?: string[] | null;
  MacAddress?: string;
  DriverOpts?: Record<string, string> | null;
  NetworkID?: string;
  EndpointID?: string;
  Gateway?: string;
  IPAddress?: string;
  IPPrefixLen?: number;
  IPv6Gateway?: string;
  GlobalIPv6Address?: string;
  GlobalIPv6PrefixLen?: number;
  DNSNames?: string[] | null;
}

export interface IpamConfig {
  Subnet?: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses?: Record<string, string> | null;
}

/** Body of POST /networks/create. */
export interface NetworkCreateRequest {
  Name: string;
  CheckDuplicate?: boolean;
  Driver?: string;
  Scope?: string;
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  ConfigOnly?: boolean;
  ConfigFrom?: { Network?: string } | null;
  EnableIPv4?: boolean;
  EnableIPv6?: boolean;
  IPAM?: { Driver?: string; Config?: IpamConfig[] | null; Options?: Record<string, string> | null } | null;
  Options?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
}

/** GET /networks/{id} (and each entry of GET /networks, whose Containers stay empty as Docker's do). */
export interface NetworkInspect {
  Name: string;
  Id: string;
  Created: string;
  Scope: 'local';
  Driver: string;
  EnableIPv4: boolean;
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: IpamConfig[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Containers: Record<string, NetworkContainer>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

/** A container on a network as network inspect shows it (addresses with their prefix length). */
export interface NetworkContainer {
  Name: string;
  EndpointID: string;
  MacAddress: string;
  /** "10.80.0.2/24", or "" when it has none. */
  IPv4Address: string;
  IPv6Address: string;
}

export interface NetworkConnectRequest {
  Container: string;
  EndpointConfig?: EndpointSettings | null;
}

export interface NetworkDisconnectRequest {
  Container: string;
  Force?: boolean;
}

/** One entry of GET /containers/{id}/changes: Kind 0 modified, 1 added, 2 deleted. */
export interface FilesystemChange {
  Path: string;
  Kind: 0 | 1 | 2;
}

/** POST /commit's parameters (the body is `config`). */
export interface CommitOptions {
  repo?: string;
  tag?: string;
  comment?: string;
  author?: string;
  /** Dockerfile-like lines: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL. */
  changes?: string[];
  /** Pause a running container while its layer is read (default true, as Docker). */
  pause?: boolean;
  /** Replaces the container's config as the base of the image's (Docker's `config` body). */
  config?: ContainerConfig;
}

/** POST /auth's body (Docker's AuthConfig). */
export interface AuthConfig {
  username?: string;
  password?: string;
  auth?: string;
  email?: string;
  serveraddress?: string;
  identitytoken?: string;
  registrytoken?: string;
}
