// Docker's create request + the image's config → the OCI runtime spec the runtime library
// runs, plus everything the engine records or prepares around it (effective Config and
// HostConfig for inspect, MountPoints, volumes to create, log settings).
import { statSync } from 'node:fs';
import { posix } from 'node:path';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../../runtime/default-spec.js';
import { OCI_VERSION, type Device, type Mount, type Spec } from '../../runtime/spec.js';
import type { ContainerConfig, CreateContainerRequest, HostConfig, MountPoint } from '../types.js';
import { renderHostname, renderHosts, renderResolvConf } from './generated-files.js';
import type { SpecHostFacts } from './host-facts.js';
import { invalid } from './invalid.js';
import { commandOf, mergeConfig, processEnv } from './merge.js';
import { buildUserMounts, sortMounts, type HostPathKind, type VolumeUse } from './mounts.js';
import { planNamespaces, type ContainerResolver, type NamespacePlan } from './namespaces.js';
import { buildDevices, buildResources, buildRlimits } from './resources.js';
import { effectiveCapabilities, parseSecurityOpts, seccompFor } from './security.js';
import { resolveUser, type ExecUser } from './user.js';
import { parseLogConfig, parseSignal, refuseUnsupported, validateConfig, type LogSettings } from './validate.js';

export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;
export const INIT_PATH_IN_CONTAINER = '/sbin/docker-init';

/** Docker's masked paths: the runtime's defaults plus powercap (energy counters leak what other tenants run). */
export const DOCKER_MASKED_PATHS: readonly string[] = [...DEFAULT_MASKED_PATHS, '/sys/devices/virtual/powercap'];
export const DOCKER_READONLY_PATHS: readonly string[] = [...DEFAULT_READONLY_PATHS];

export interface SpecInput {
  /** 64-hex container id. */
  id: string;
  /** The container's name without the leading "/". */
  name: string;
  request: CreateContainerRequest;
  image?: { config: ContainerConfig; id: string; name: string };
  /** The mounted rootfs: /etc/passwd and /etc/group are read from it (confined to it). */
  rootfs: string;
  /** Host paths of the generated files to bind-mount. */
  files: { hosts: string; hostname: string; resolvConf: string };
  /** Host path of a named volume's data directory. */
  volumes: (name: string) => string;
  /** Host path of berth-init, for HostConfig.Init. */
  initPath?: string;
  /** Arguments between the init and the command (e.g. ["--"] if berth-init wants a separator). */
  initArgs?: string[];
  cgroupsPath: string;
  hostFacts: SpecHostFacts;
  /** NetworkMode default/bridge/<network> becomes "none" (with a warning): for callers without a network layer. */
  bridgeFallback?: 'none';
  resolveContainer?: ContainerResolver;
  /** What is at a host path (bind sources); default: stat(2). */
  hostPathKind?: (path: string) => HostPathKind;
  /** Names for anonymous volumes; default: random 64-hex. */
  newVolumeName?: () => string;
}

export interface BuiltContainerSpec {
  spec: Spec;
  warnings: string[];
  /** The merged Config (inspect's Config), Hostname/Domainname filled in. */
  config: ContainerConfig;
  /** The HostConfig with Docker's adjustments (inspect's HostConfig). */
  hostConfig: HostConfig;
  /** inspect's Path and Args: the command without the init. */
  path: string;
  args: string[];
  /** inspect's Mounts. */
  mounts: MountPoint[];
  /** Volumes to create (if missing) before the container starts; anonymous ones belong to the container. */
  volumes: VolumeUse[];
  /** Missing host directories named by Binds (or Mounts with CreateMountpoint): create them before starting. */
  hostDirsToCreate: string[];
  log: LogSettings;
  /** The stop signal's number (default SIGTERM). */
  stopSignal: number;
  user: ExecUser;
  hostname: string;
  domainname: string;
  /** Namespace modes in effect (networkMode "none" | "host" | "container:<ref>"). */
  namespaces: NamespacePlan;
}

/** stat(2) of a host path, for bind sources. */
export function statHostPath(path: string): HostPathKind {
  try {
    const st = statSync(path);
    return st.isDirectory() ? 'directory' : st.isFile() ? 'file' : 'other';
  } catch {
    return 'missing';
  }
}

function defaultMounts(o: { privileged: boolean; shm?: Mount }): Mount[] {
  const ro = o.privileged ? 'rw' : 'ro';
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', ro] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', ro] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    ...(o.shm ? [o.shm] : []),
  ];
}

const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

/** Docker's sysctls for a container with its own network namespace, then HostConfig.Sysctls (namespaced ones only). */
function buildSysctls(hc: HostConfig, ns: NamespacePlan): Record<string, string> {
  const out: Record<string, string> = {};
  if (ns.network === 'private') {
    out['net.ipv4.ip_unprivileged_port_start'] = '0';
    out['net.ipv4.ping_group_range'] = '0 2147483647';
  }
  for (const [key, value] of Object.entries(hc.Sysctls ?? {})) {
    const field = `HostConfig.Sysctls["${key}"]`;
    if (typeof value !== 'string') throw invalid(field, 'the value must be a string');
    if (IPC_SYSCTLS.has(key) || key.startsWith('fs.mqueue.')) {
      if (ns.ipc === 'host') throw invalid(field, `sysctl "${key}" is not allowed in host IPC namespace mode`);
      if (ns.ipc === 'joined') throw invalid(field, `sysctl "${key}" cannot be set when joining another container's IPC namespace`);
    } else if (key.startsWith('net.')) {
      if (ns.network === 'host') throw invalid(field, `sysctl "${key}" is not allowed in host network namespace mode`);
      if (ns.network === 'joined') throw invalid(field, `sysctl "${key}" cannot be set when joining another container's network namespace`);
    } else if (key === 'kernel.hostname' || key === 'kernel.domainname') {
      throw invalid(field, `sysctl "${key}" is not allowed`, 'use Config.Hostname / Config.Domainname');
    } else {
      throw invalid(field, `sysctl "${key}" is not namespaced: setting it would change the host`, 'only net.*, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* can be set per container');
    }
    out[key] = value;
  }
  return out;
}

function pathList(v: string[] | null | undefined, field: string, fallback: readonly string[]): string[] {
  if (v === undefined || v === null) return [...fallback];
  return v.map((p, i) => {
    if (typeof p !== 'string' || !p.startsWith('/')) throw invalid(`${field}[${i}]`, `must be an absolute path, got ${JSON.stringify(p)}`);
    return p;
  });
}

/** Builds the OCI spec of a new container from Docker's create request and the image's config. */
export function buildContainerSpec(input: SpecInput): BuiltContainerSpec {
  const hcIn: HostConfig = input.request.HostConfig ?? {};
  const facts = input.hostFacts;
  const warnings: string[] = [];
  const config = mergeConfig(input.request, input.image?.config);
  refuseUnsupported(config, hcIn);
  validateConfig(config);
  const { log, warnings: logWarnings } = parseLogConfig(hcIn.LogConfig);
  warnings.push(...logWarnings);

  const ns = planNamespaces({ hostConfig: hcIn, config, cgroupV2: facts.cgroupV2, bridgeFallback: input.bridgeFallback, resolveContainer: input.resolveContainer });
  warnings.push(...ns.warnings);

  const command = commandOf(config);
  if (command.length === 0 || command[0] === '') throw invalid('Config.Cmd', 'no command specified', 'give a command, or use an image with an ENTRYPOINT or CMD');

  const workdir = config.WorkingDir || '/';
  if (!workdir.startsWith('/')) throw invalid('Config.WorkingDir', `the working directory '${workdir}' is invalid, it needs to be an absolute path`);
  const cwd = posix.normalize(workdir).replace(/(.)\/+$/, '$1');
  if (config.WorkingDir) config.WorkingDir = cwd;

  // hostname
  let hostname: string;
  let domainname = config.Domainname ?? '';
  if (ns.joinedNetwork) {
    hostname = ns.joinedNetwork.hostname ?? input.id.slice(0, 12);
    domainname = ns.joinedNetwork.domainname ?? '';
  } else if (ns.utsHost || (ns.network === 'host' && !config.Hostname)) hostname = facts.hostname ?? input.id.slice(0, 12);
  else hostname = config.Hostname || input.id.slice(0, 12);
  config.Hostname = hostname;
  config.Domainname = domainname;

  const user = resolveUser({ rootfs: input.rootfs, user: config.User, groupAdd: hcIn.GroupAdd });
  const env = processEnv(config, { hostname, tty: config.Tty === true, home: user.home });

  const resources = buildResources(hcIn, facts);
  warnings.push(...resources.warnings);
  const hostConfig = resources.hostConfig;
  const privileged = hcIn.Privileged === true;

  const security = parseSecurityOpts(hcIn.SecurityOpt);
  warnings.push(...security.warnings);
  const caps = effectiveCapabilities({ capAdd: hcIn.CapAdd, capDrop: hcIn.CapDrop, privileged });
  const seccomp = seccompFor({ security, privileged, capabilities: caps, arch: facts.arch });

  const devs = buildDevices(hcIn, facts.devices);
  const devices = new Map<string, Device>();
  for (const d of devs.devices) devices.set(d.path, d);

  // Mounts: Docker's defaults, then the generated files and init, then the user's, parents first.
  const shmSize = hcIn.ShmSize ?? 0;
  if (!Number.isInteger(shmSize) || shmSize < 0) throw invalid('HostConfig.ShmSize', 'SHM size can not be less than 0');
  const shmBytes = shmSize || DEFAULT_SHM_SIZE;
  if (ns.ipc === 'private' || ns.ipc === 'shareable') hostConfig.ShmSize = shmBytes;
  hostConfig.IpcMode = ns.ipcMode;
  hostConfig.CgroupnsMode = ns.cgroupnsMode;
  let shm: Mount | undefined;
  if (ns.ipc === 'private' || ns.ipc === 'shareable') {
    shm = { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shmBytes}`] };
  } else if (ns.ipc === 'host') {
    shm = { destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'nosuid', 'noexec', 'nodev'] };
  } else if (ns.ipc === 'joined') {
    if (ns.joinedIpc?.shmPath) shm = { destination: '/dev/shm', type: 'bind', source: ns.joinedIpc.shmPath, options: ['rbind', 'nosuid', 'noexec', 'nodev'] };
    else warnings.push('HostConfig.IpcMode: the joined container\'s /dev/shm is unknown: this container gets its own (System V IPC is shared, POSIX shared memory is not)');
  }

  const user_ = buildUserMounts({
    hostConfig: hcIn,
    configVolumes: config.Volumes,
    volumePath: input.volumes,
    hostPathKind: input.hostPathKind ?? statHostPath,
    newVolumeName: input.newVolumeName,
  });
  warnings.push(...user_.warnings);
  const taken = new Set(user_.mounts.map((m) => m.destination));
  const mounts = defaultMounts({ privileged, shm }).filter((m) => !taken.has(m.destination));
  const extra: { destination: string; mount: Mount }[] = [];
  const filesRw = hcIn.ReadonlyRootfs ? 'ro' : 'rw';
  for (const [dst, src] of [
    ['/etc/resolv.conf', input.files.resolvConf],
    ['/etc/hostname', input.files.hostname],
    ['/etc/hosts', input.files.hosts],
  ] as const) {
    if (!taken.has(dst)) extra.push({ destination: dst, mount: { destination: dst, type: 'bind', source: src, options: ['rbind', 'rprivate', filesRw] } });
  }
  let args = command;
  if (hcIn.Init) {
    if (!input.initPath) throw new Error('buildContainerSpec: initPath is required for HostConfig.Init');
    extra.push({ destination: INIT_PATH_IN_CONTAINER, mount: { destination: INIT_PATH_IN_CONTAINER, type: 'bind', source: input.initPath, options: ['rbind', 'ro', 'rprivate'] } });
    args = [INIT_PATH_IN_CONTAINER, ...(input.initArgs ?? []), ...command];
  }
  mounts.push(...sortMounts([...extra, ...user_.mounts]).map((m) => m.mount));

  const propagations = user_.mounts.flatMap((m) => m.mount.options ?? []);
  const rootfsPropagation = propagations.some((p) => p === 'shared' || p === 'rshared')
    ? 'shared'
    : propagations.some((p) => p === 'slave' || p === 'rslave')
      ? 'rslave'
      : undefined;

  const unmask = privileged || security.unmaskSystemPaths;
  const sysctl = buildSysctls(hcIn, ns);

  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: config.Tty === true,
      user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length > 0 ? { additionalGids: user.additionalGids } : {}) },
      args,
      env,
      cwd,
      capabilities: { bounding: [...caps], effective: [...caps], permitted: [...caps] },
      rlimits: buildRlimits(hcIn.Ulimits, facts.nofileHard),
      noNewPrivileges: security.noNewPrivileges,
      oomScoreAdj: hcIn.OomScoreAdj ?? 0,
    },
    root: { path: input.rootfs, readonly: hcIn.ReadonlyRootfs === true },
    mounts,
    linux: {
      namespaces: ns.namespaces,
      cgroupsPath: input.cgroupsPath,
      resources: { devices: devs.rules, ...resources.resources },
      ...(devices.size > 0 ? { devices: [...devices.values()] } : {}),
      ...(Object.keys(sysctl).length > 0 ? { sysctl } : {}),
      maskedPaths: unmask ? [] : pathList(hcIn.MaskedPaths, 'HostConfig.MaskedPaths', DOCKER_MASKED_PATHS),
      readonlyPaths: unmask ? [] : pathList(hcIn.ReadonlyPaths, 'HostConfig.ReadonlyPaths', DOCKER_READONLY_PATHS),
      ...(seccomp ? { seccomp } : {}),
      ...(rootfsPropagation ? { rootfsPropagation } : {}),
    },
  };
  if (!ns.utsHost) {
    spec.hostname = hostname;
    if (domainname) spec.domainname = domainname;
  }

  return {
    spec,
    warnings,
    config,
    hostConfig,
    path: command[0],
    args: command.slice(1),
    mounts: user_.mounts.flatMap((m) => (m.point ? [m.point] : [])),
    volumes: user_.volumes,
    hostDirsToCreate: user_.hostDirsToCreate,
    log,
    stopSignal: parseSignal(config.StopSignal || 'SIGTERM', 'Config.StopSignal'),
    user,
    hostname,
    domainname,
    namespaces: ns,
  };
}

/** The host's files a container's generated files start from. */
export interface HostNetworkFiles {
  /** The host's resolv.conf text (systemd-resolved: the upstream list, not the 127.0.0.53 stub). */
  resolvConf: string;
  /** The host's /etc/hosts text (used by host-network containers). */
  hosts?: string;
  /** The default bridge's gateway: what "host-gateway" in ExtraHosts stands for. */
  hostGateway?: string;
}

/** The contents of /etc/hosts, /etc/hostname and /etc/resolv.conf for a built container. */
export function renderContainerFiles(built: BuiltContainerSpec, host: HostNetworkFiles): { hosts: string; hostname: string; resolvConf: string } {
  const hc = built.hostConfig;
  const networkMode = built.namespaces.network === 'host' ? 'host' : built.namespaces.networkMode;
  return {
    hosts: renderHosts({
      hostname: built.hostname,
      domainname: built.domainname,
      extraHosts: hc.ExtraHosts,
      networkMode,
      ...(host.hosts !== undefined ? { hostHosts: host.hosts } : {}),
      ...(host.hostGateway !== undefined ? { hostGateway: host.hostGateway } : {}),
    }),
    hostname: renderHostname(built.hostname),
    resolvConf: renderResolvConf({ hostResolvConf: host.resolvConf, dns: hc.Dns, dnsSearch: hc.DnsSearch, dnsOptions: hc.DnsOptions, networkMode }),
  };
}
