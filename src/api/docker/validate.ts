// Type checks of request bodies, field by field, so that a wrong type is a 400 naming the field
// (dockerd: "json: cannot unmarshal string into Go struct field ...") instead of surprising the
// engine. Unknown fields pass through: clients send many, and the engine refuses what it does
// not support by name. null is accepted everywhere, as Go reads it as the zero value.
import { BerthError } from '../../errors.js';
import type { AuthConfig, ContainerConfig, CreateContainerRequest, ExecCreateRequest, HostConfig, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest } from '../../engine/types.js';

type FieldType =
  | 'string'
  | 'boolean'
  | 'int'
  | 'string[]'
  | 'strslice'
  | 'string-map'
  | 'object-map'
  | 'object'
  | { object: Schema }
  | { array: FieldType }
  | { map: FieldType };

type Schema = Record<string, FieldType>;

const HEALTHCHECK: Schema = { Test: 'string[]', Interval: 'int', Timeout: 'int', StartPeriod: 'int', StartInterval: 'int', Retries: 'int' };

const CONFIG: Schema = {
  Hostname: 'string',
  Domainname: 'string',
  User: 'string',
  AttachStdin: 'boolean',
  AttachStdout: 'boolean',
  AttachStderr: 'boolean',
  ExposedPorts: 'object-map',
  Tty: 'boolean',
  OpenStdin: 'boolean',
  StdinOnce: 'boolean',
  Env: 'string[]',
  Cmd: 'strslice',
  Healthcheck: { object: HEALTHCHECK },
  ArgsEscaped: 'boolean',
  Image: 'string',
  Volumes: 'object-map',
  WorkingDir: 'string',
  Entrypoint: 'strslice',
  NetworkDisabled: 'boolean',
  MacAddress: 'string',
  OnBuild: 'string[]',
  Labels: 'string-map',
  StopSignal: 'string',
  StopTimeout: 'int',
  Shell: 'strslice',
};

const MOUNT: Schema = {
  Type: 'string',
  Source: 'string',
  Target: 'string',
  ReadOnly: 'boolean',
  Consistency: 'string',
  BindOptions: { object: { Propagation: 'string', NonRecursive: 'boolean', CreateMountpoint: 'boolean' } },
  VolumeOptions: { object: { NoCopy: 'boolean', Labels: 'string-map', DriverConfig: { object: { Name: 'string', Options: 'string-map' } } } },
  TmpfsOptions: { object: { SizeBytes: 'int', Mode: 'int' } },
};

const RESOURCES: Schema = {
  CpuShares: 'int',
  Memory: 'int',
  NanoCpus: 'int',
  CgroupParent: 'string',
  BlkioWeight: 'int',
  CpuPeriod: 'int',
  CpuQuota: 'int',
  CpuRealtimePeriod: 'int',
  CpuRealtimeRuntime: 'int',
  CpusetCpus: 'string',
  CpusetMems: 'string',
  Devices: { array: { object: { PathOnHost: 'string', PathInContainer: 'string', CgroupPermissions: 'string' } } },
  DeviceCgroupRules: 'string[]',
  BlkioWeightDevice: { array: 'object' },
  BlkioDeviceReadBps: { array: 'object' },
  BlkioDeviceWriteBps: { array: 'object' },
  BlkioDeviceReadIOps: { array: 'object' },
  BlkioDeviceWriteIOps: { array: 'object' },
  DeviceRequests: { array: 'object' },
  CpuCount: 'int',
  CpuPercent: 'int',
  IOMaximumIOps: 'int',
  IOMaximumBandwidth: 'int',
  KernelMemory: 'int',
  MemoryReservation: 'int',
  MemorySwap: 'int',
  MemorySwappiness: 'int',
  OomKillDisable: 'boolean',
  PidsLimit: 'int',
  Ulimits: { array: { object: { Name: 'string', Soft: 'int', Hard: 'int' } } },
  RestartPolicy: { object: { Name: 'string', MaximumRetryCount: 'int' } },
};

const HOST_CONFIG: Schema = {
  ...RESOURCES,
  Binds: 'string[]',
  ContainerIDFile: 'string',
  LogConfig: { object: { Type: 'string', Config: 'string-map' } },
  NetworkMode: 'string',
  PortBindings: { map: { array: { object: { HostIp: 'string', HostPort: 'string' } } } },
  ConsoleSize: { array: 'int' },
  AutoRemove: 'boolean',
  VolumeDriver: 'string',
  VolumesFrom: 'string[]',
  Mounts: { array: { object: MOUNT } },
  CapAdd: 'string[]',
  CapDrop: 'string[]',
  CgroupnsMode: 'string',
  Dns: 'string[]',
  DnsOptions: 'string[]',
  DnsSearch: 'string[]',
  ExtraHosts: 'string[]',
  GroupAdd: 'string[]',
  IpcMode: 'string',
  Cgroup: 'string',
  Links: 'string[]',
  OomScoreAdj: 'int',
  PidMode: 'string',
  Privileged: 'boolean',
  PublishAllPorts: 'boolean',
  ReadonlyRootfs: 'boolean',
  SecurityOpt: 'string[]',
  StorageOpt: 'string-map',
  Tmpfs: 'string-map',
  UTSMode: 'string',
  UsernsMode: 'string',
  ShmSize: 'int',
  Sysctls: 'string-map',
  Runtime: 'string',
  Isolation: 'string',
  Init: 'boolean',
  MaskedPaths: 'string[]',
  ReadonlyPaths: 'string[]',
};

const ENDPOINT_SETTINGS: Schema = {
  IPAMConfig: { object: { IPv4Address: 'string', IPv6Address: 'string', LinkLocalIPs: 'string[]' } },
  Links: 'string[]',
  Aliases: 'string[]',
  MacAddress: 'string',
  DriverOpts: 'string-map',
  NetworkID: 'string',
  EndpointID: 'string',
  Gateway: 'string',
  IPAddress: 'string',
  IPPrefixLen: 'int',
  IPv6Gateway: 'string',
  GlobalIPv6Address: 'string',
  GlobalIPv6PrefixLen: 'int',
  DNSNames: 'string[]',
};

const NETWORK_CREATE: Schema = {
  Name: 'string',
  CheckDuplicate: 'boolean',
  Driver: 'string',
  Scope: 'string',
  Internal: 'boolean',
  Attachable: 'boolean',
  Ingress: 'boolean',
  ConfigOnly: 'boolean',
  ConfigFrom: { object: { Network: 'string' } },
  EnableIPv4: 'boolean',
  EnableIPv6: 'boolean',
  IPAM: { object: { Driver: 'string', Config: { array: { object: { Subnet: 'string', IPRange: 'string', Gateway: 'string', AuxiliaryAddresses: 'string-map' } } }, Options: 'string-map' } },
  Options: 'string-map',
  Labels: 'string-map',
};

const NETWORK_CONNECT: Schema = { Container: 'string', EndpointConfig: { object: ENDPOINT_SETTINGS } };
const NETWORK_DISCONNECT: Schema = { Container: 'string', Force: 'boolean' };

const CREATE: Schema = {
  ...CONFIG,
  HostConfig: { object: HOST_CONFIG },
  NetworkingConfig: { object: { EndpointsConfig: { map: { object: ENDPOINT_SETTINGS } } } },
};

const EXEC_CREATE: Schema = {
  AttachStdin: 'boolean',
  AttachStdout: 'boolean',
  AttachStderr: 'boolean',
  DetachKeys: 'string',
  Tty: 'boolean',
  ConsoleSize: { array: 'int' },
  Env: 'string[]',
  Cmd: 'strslice',
  Privileged: 'boolean',
  User: 'string',
  WorkingDir: 'string',
};

const EXEC_START: Schema = { Detach: 'boolean', Tty: 'boolean', ConsoleSize: { array: 'int' } };

const VOLUME_CREATE: Schema = { Name: 'string', Driver: 'string', DriverOpts: 'string-map', Labels: 'string-map', ClusterVolumeSpec: 'object' };

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number' && !Number.isInteger(v)) return 'fractional number';
  return typeof v;
}

function fail(path: string, expected: string, v: unknown): never {
  throw new BerthError('InvalidArgument', `invalid request body: ${path} must be ${expected}, got ${kind(v)} ${JSON.stringify(v)}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkField(path: string, type: FieldType, v: unknown): unknown {
  if (v === null || v === undefined) return v;
  if (typeof type === 'object') {
    if ('object' in type) {
      if (!isObject(v)) fail(path, 'an object', v);
      return checkSchema(path, type.object, v);
    }
    if ('map' in type) {
      if (!isObject(v)) fail(path, 'an object', v);
      return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, checkField(`${path}.${k}`, type.map, item)]));
    }
    if (!Array.isArray(v)) fail(path, 'an array', v);
    return v.map((item, i) => checkField(`${path}[${i}]`, type.array, item));
  }
  switch (type) {
    case 'string':
      if (typeof v !== 'string') fail(path, 'a string', v);
      return v;
    case 'boolean':
      if (typeof v !== 'boolean') fail(path, 'a boolean', v);
      return v;
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v)) fail(path, 'an integer', v);
      return v;
    case 'string[]':
      if (!Array.isArray(v)) fail(path, 'an array of strings', v);
      v.forEach((s, i) => typeof s === 'string' || fail(`${path}[${i}]`, 'a string', s));
      return v;
    case 'strslice':
      // Go's strslice.StrSlice: a single string means a one-element list.
      if (typeof v === 'string') return [v];
      return checkField(path, 'string[]', v);
    case 'string-map':
      if (!isObject(v)) fail(path, 'an object of strings', v);
      for (const [k, s] of Object.entries(v)) if (typeof s !== 'string') fail(`${path}.${k}`, 'a string', s);
      return v;
    case 'object-map':
      if (!isObject(v)) fail(path, 'an object', v);
      for (const [k, s] of Object.entries(v)) if (s !== null && !isObject(s)) fail(`${path}.${k}`, 'an object', s);
      return v;
    case 'object':
      if (!isObject(v)) fail(path, 'an object', v);
      return v;
  }
}

function checkSchema(path: string, schema: Schema, obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...obj };
  for (const [key, type] of Object.entries(schema)) {
    if (key in obj) out[key] = checkField(path ? `${path}.${key}` : key, type, obj[key]);
  }
  return out;
}

function checkBody(what: string, schema: Schema, body: unknown, required: boolean): Record<string, unknown> {
  if (body === undefined) {
    if (required) throw new BerthError('InvalidArgument', `${what}: the request body is empty`, { hint: 'send a JSON object' });
    return {};
  }
  if (!isObject(body)) throw new BerthError('InvalidArgument', `${what}: the request body must be a JSON object, got ${kind(body)}`);
  return checkSchema('', schema, body);
}

export function checkCreateContainer(body: unknown): CreateContainerRequest {
  return checkBody('create container', CREATE, body, true) as CreateContainerRequest;
}

export function checkUpdateContainer(body: unknown): HostConfig {
  return checkBody('update container', RESOURCES, body, true) as HostConfig;
}

export function checkExecCreate(body: unknown): ExecCreateRequest {
  const req = checkBody('create exec', EXEC_CREATE, body, true) as unknown as ExecCreateRequest;
  if (!Array.isArray(req.Cmd) || req.Cmd.length === 0) throw new BerthError('InvalidArgument', 'create exec: Cmd is empty (no exec command specified)');
  return req;
}

export function checkExecStart(body: unknown): { Detach?: boolean; Tty?: boolean; ConsoleSize?: [number, number] | null } {
  const req = checkBody('start exec', EXEC_START, body, false) as { Detach?: boolean; Tty?: boolean; ConsoleSize?: number[] | null };
  if (req.ConsoleSize && req.ConsoleSize.length !== 2) throw new BerthError('InvalidArgument', `invalid request body: ConsoleSize must hold [height, width], got ${JSON.stringify(req.ConsoleSize)}`);
  return req as { Detach?: boolean; Tty?: boolean; ConsoleSize?: [number, number] | null };
}

export function checkVolumeCreate(body: unknown): { Name?: string; Driver?: string; DriverOpts?: Record<string, string>; Labels?: Record<string, string> } {
  const req = checkBody('create volume', VOLUME_CREATE, body, false) as { Name?: string; Driver?: string; DriverOpts?: Record<string, string>; Labels?: Record<string, string>; ClusterVolumeSpec?: unknown };
  if (req.ClusterVolumeSpec != null) throw new BerthError('InvalidArgument', 'create volume: ClusterVolumeSpec is not supported (cluster volumes need swarm)');
  delete req.ClusterVolumeSpec;
  return req;
}

/** POST /commit's body: a container config, or nothing (the docker CLI sends `null`). */
export function checkCommitConfig(body: unknown): ContainerConfig | undefined {
  if (body === undefined || body === null) return undefined;
  const config = checkBody('commit', CONFIG, body, false) as ContainerConfig;
  return Object.keys(config).length > 0 ? config : undefined;
}

const AUTH: Schema = {
  username: 'string',
  password: 'string',
  auth: 'string',
  email: 'string',
  serveraddress: 'string',
  identitytoken: 'string',
  registrytoken: 'string',
};

export function checkAuthConfig(body: unknown): AuthConfig {
  return checkBody('auth', AUTH, body, true) as AuthConfig;
}

export function checkNetworkCreate(body: unknown): NetworkCreateRequest {
  const req = checkBody('create network', NETWORK_CREATE, body, true) as unknown as NetworkCreateRequest;
  if (typeof req.Name !== 'string' || req.Name === '') throw new BerthError('InvalidArgument', 'create network: Name is required');
  return req;
}

export function checkNetworkConnect(body: unknown): NetworkConnectRequest {
  const req = checkBody('connect network', NETWORK_CONNECT, body, true) as unknown as NetworkConnectRequest;
  if (typeof req.Container !== 'string' || req.Container === '') throw new BerthError('InvalidArgument', 'connect network: Container is required');
  return req;
}

export function checkNetworkDisconnect(body: unknown): NetworkDisconnectRequest {
  const req = checkBody('disconnect network', NETWORK_DISCONNECT, body, true) as unknown as NetworkDisconnectRequest;
  if (typeof req.Container !== 'string' || req.Container === '') throw new BerthError('InvalidArgument', 'disconnect network: Container is required');
  return req;
}
