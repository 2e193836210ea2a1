// NetworkMode, PidMode, IpcMode, UTSMode and CgroupnsMode → the namespaces a container
// creates or joins. `container:<name|id>` is resolved by the caller (it knows the
// containers); berth only turns the answer into namespace paths.
import type { Namespace } from '../../runtime/spec.js';
import type { ContainerConfig, HostConfig } from '../types.js';
import { invalid, unsupported } from './invalid.js';

export type JoinKind = 'network' | 'pid' | 'ipc';

/** What the caller tells about a running container whose namespace is joined. */
export interface JoinTarget {
  /** The namespace file, e.g. /proc/<pid>/ns/net. */
  path: string;
  /** network: the joined container's hostname and domainname (Docker copies them). */
  hostname?: string;
  domainname?: string;
  /** ipc: the joined container's /dev/shm as a host path (e.g. /proc/<pid>/root/dev/shm), bind-mounted at /dev/shm. */
  shmPath?: string;
}

/** Looks up `container:<ref>` targets; throws (NotFound, Conflict when not running) as the caller sees fit. */
export type ContainerResolver = (ref: string, kind: JoinKind) => JoinTarget;

export type NetworkKind = 'private' | 'host' | 'joined';
export type IpcKind = 'private' | 'shareable' | 'none' | 'host' | 'joined';

export interface NamespacePlan {
  namespaces: Namespace[];
  network: NetworkKind;
  /** The network mode in effect: "none", "host", "container:<ref>", "bridge" (default) or a network's name (a bridge request with bridgeFallback "none" is "none"). */
  networkMode: string;
  ipc: IpcKind;
  pidHost: boolean;
  utsHost: boolean;
  cgroupnsMode: 'private' | 'host';
  ipcMode: string;
  joinedNetwork?: JoinTarget;
  joinedIpc?: JoinTarget;
  warnings: string[];
}

export interface NamespaceOptions {
  hostConfig: HostConfig;
  config: ContainerConfig;
  cgroupV2: boolean;
  bridgeFallback?: 'none';
  resolveContainer?: ContainerResolver;
}

function containerRef(mode: string, field: string): string | undefined {
  if (!mode.startsWith('container:')) return undefined;
  const ref = mode.slice('container:'.length);
  if (ref === '') throw invalid(field, `"${mode}" names no container`, 'container:<name or id>');
  return ref;
}

function resolve(o: NamespaceOptions, ref: string, kind: JoinKind): JoinTarget {
  if (!o.resolveContainer) throw new Error('buildContainerSpec: resolveContainer is required for container:<ref> modes');
  return o.resolveContainer(ref, kind);
}

export function planNamespaces(o: NamespaceOptions): NamespacePlan {
  const hc = o.hostConfig;
  const warnings: string[] = [];
  const ns: Namespace[] = [{ type: 'mount' }];

  // network
  let mode = hc.NetworkMode ?? '';
  if (o.config.NetworkDisabled) mode = 'none';
  let network: NetworkKind;
  let joinedNetwork: JoinTarget | undefined;
  let networkMode = mode;
  const netRef = containerRef(mode, 'HostConfig.NetworkMode');
  if (mode === 'none') network = 'private';
  else if (mode === 'host') network = 'host';
  else if (netRef !== undefined) {
    network = 'joined';
    joinedNetwork = resolve(o, netRef, 'network');
  } else {
    // The default bridge or a network by name: the engine checks that it exists and puts the
    // network namespace it sets up at start in place of this new one.
    network = 'private';
    networkMode = mode === '' || mode === 'default' ? 'bridge' : mode;
    if (o.bridgeFallback === 'none') {
      networkMode = 'none';
      warnings.push(`HostConfig.NetworkMode: "${mode || 'bridge'}" networking is not available: the container has no network but loopback`);
    }
  }
  if (network === 'private') ns.push({ type: 'network' });
  if (network === 'joined') ns.push({ type: 'network', path: joinedNetwork!.path });
  if (network === 'joined') {
    if (o.config.Hostname) throw invalid('Config.Hostname', 'conflicting options: hostname and the network mode');
    if ((hc.Dns ?? []).length || (hc.DnsSearch ?? []).length || (hc.DnsOptions ?? []).length) throw invalid('HostConfig.Dns', 'conflicting options: dns and the network mode');
    if ((hc.ExtraHosts ?? []).length) throw invalid('HostConfig.ExtraHosts', 'conflicting options: custom host-to-IP mapping and the network mode');
  }
  const ports = Object.keys(hc.PortBindings ?? {}).filter((k) => (hc.PortBindings![k] ?? []).length > 0);
  if (ports.length > 0) {
    if (network === 'joined') throw invalid('HostConfig.PortBindings', 'conflicting options: port publishing and the container type network mode');
    if (network === 'host') warnings.push('Published ports are discarded when using host network mode');
    else if (networkMode === 'none' && mode !== 'none') throw unsupported('HostConfig.PortBindings', 'publishing ports', 'it needs bridge networking, which is not available; use --network host to reach the container\'s ports');
    else if (networkMode === 'none') warnings.push('Published ports are discarded when using network mode none');
  }

  // pid
  const pidMode = hc.PidMode ?? '';
  const pidRef = containerRef(pidMode, 'HostConfig.PidMode');
  if (pidMode === '' || pidMode === 'private') ns.push({ type: 'pid' });
  else if (pidRef !== undefined) ns.push({ type: 'pid', path: resolve(o, pidRef, 'pid').path });
  else if (pidMode !== 'host') throw invalid('HostConfig.PidMode', `invalid PID mode "${pidMode}"`, 'host or container:<name|id>');

  // ipc
  const ipcMode = hc.IpcMode || 'private';
  const ipcRef = containerRef(ipcMode, 'HostConfig.IpcMode');
  let ipc: IpcKind;
  let joinedIpc: JoinTarget | undefined;
  if (ipcMode === 'private' || ipcMode === 'shareable' || ipcMode === 'none') {
    ipc = ipcMode;
    ns.push({ type: 'ipc' });
  } else if (ipcMode === 'host') ipc = 'host';
  else if (ipcRef !== undefined) {
    ipc = 'joined';
    joinedIpc = resolve(o, ipcRef, 'ipc');
    ns.push({ type: 'ipc', path: joinedIpc.path });
  } else throw invalid('HostConfig.IpcMode', `invalid IPC mode "${ipcMode}"`, 'private, shareable, none, host or container:<name|id>');

  // uts
  const uts = hc.UTSMode ?? '';
  if (uts !== '' && uts !== 'host') throw invalid('HostConfig.UTSMode', `invalid UTS mode "${uts}"`, 'only host');
  const utsHost = uts === 'host';
  if (utsHost && o.config.Hostname) throw invalid('Config.Hostname', 'conflicting options: hostname and the UTS mode');
  if (!utsHost) ns.push({ type: 'uts' });

  // cgroup
  const cg = hc.CgroupnsMode ?? '';
  if (cg !== '' && cg !== 'private' && cg !== 'host') throw invalid('HostConfig.CgroupnsMode', `invalid cgroup namespace mode "${cg}"`, 'private or host');
  const cgroupnsMode = cg === '' ? (o.cgroupV2 ? 'private' : 'host') : cg;
  if (cgroupnsMode === 'private') ns.push({ type: 'cgroup' });

  return {
    namespaces: ns,
    network,
    networkMode,
    ipc,
    pidHost: pidMode === 'host',
    utsHost,
    cgroupnsMode,
    ipcMode,
    ...(joinedNetwork ? { joinedNetwork } : {}),
    ...(joinedIpc ? { joinedIpc } : {}),
    warnings,
  };
}
