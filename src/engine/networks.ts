// Networks in Docker's shapes, on top of the network layer's NetworkService: the /networks
// endpoints (create, inspect, list, remove, prune, connect, disconnect) and what a container
// needs from the network layer (which networks it joins, its published ports, its sandbox at
// start and exit, NetworkSettings for inspect). The network layer stays neutral (the CRI path
// shares it); Docker's names, statuses and quirks live here.
import { copyFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { BerthError, attachCleanupError } from '../errors.js';
import type { Spec } from '../runtime/spec.js';
import { contains } from '../network/index.js';
import type {
  CreateNetworkOptions,
  Endpoint,
  EndpointRequest,
  NetworkRecord,
  PortMapping,
  PortProtocol,
  PortRequest,
  Sandbox,
  SandboxRequest,
} from '../network/types.js';
import type { EventBus } from './events.js';
import { matchLabels, parseUntil } from './filters.js';
import { renderHosts } from './spec/generated-files.js';
import type { JoinKind, JoinTarget } from './spec/namespaces.js';
import type { ContainerRecord } from './containers/record.js';
import type {
  ContainerConfig,
  EndpointSettings,
  HostConfig,
  IpamConfig,
  NetworkConnectRequest,
  NetworkContainer,
  NetworkCreateRequest,
  NetworkDisconnectRequest,
  NetworkInspect,
  NetworkSettings,
  PortBinding,
} from './types.js';

/** What the engine uses of src/network/service.ts's NetworkService (a fake in unit tests). */
export interface NetworkServiceApi {
  create(opts: CreateNetworkOptions): Promise<NetworkRecord>;
  find(idOrName: string): NetworkRecord;
  list(): NetworkRecord[];
  endpoints(networkId: string): { sandboxId: string; sandboxName: string; endpoint: Endpoint }[];
  remove(idOrName: string): Promise<void>;
  setUp(req: SandboxRequest): Promise<Sandbox>;
  tearDown(sandbox: Sandbox): Promise<void>;
  connect(sandbox: Sandbox, req: EndpointRequest): Promise<Endpoint>;
  disconnect(sandbox: Sandbox, network: string): Promise<void>;
  restore(live: Sandbox[]): Promise<void>;
  close(): Promise<void>;
}

/** What EngineNetworks needs of the engine: its containers and where their files are. */
export interface NetworkEngineHooks {
  events: EventBus;
  containers: () => Iterable<ContainerRecord>;
  findContainer: (idOrName: string) => ContainerRecord;
  save: (rec: ContainerRecord) => void;
  /** The container's directory (hosts, resolv.conf live there). */
  containerDir: (id: string) => string;
  /** Serialises with start/stop/remove of that container. */
  locked: <T>(id: string, fn: () => Promise<T>) => Promise<T>;
  warn?: (m: string) => void;
}

/** The part of a container record that says which networks it wants. */
export type ContainerNetworkView = Pick<ContainerRecord, 'hostConfig' | 'request' | 'config'> & { networks?: EndpointRequest[] };

const BUILTIN_NAMES = ['bridge', 'host', 'none'];
const LIST_FILTERS = ['driver', 'id', 'label', 'name', 'scope', 'type', 'dangling'];

/** NetworkMode as Docker reads it: '' and default are the default bridge; NetworkDisabled is none. */
export function networkModeOf(hostConfig: HostConfig, config?: ContainerConfig): string {
  if (config?.NetworkDisabled) return 'none';
  const mode = hostConfig.NetworkMode ?? '';
  return mode === '' || mode === 'default' ? 'bridge' : mode;
}

/** host, none and container:<ref> share or lack a network namespace: no sandbox of their own. */
export function hasOwnSandbox(mode: string): boolean {
  return mode !== 'host' && mode !== 'none' && !mode.startsWith('container:');
}

function endpointFromSettings(network: string, s: EndpointSettings | null | undefined, field: string): EndpointRequest {
  const req: EndpointRequest = { network };
  if (!s) return req;
  if ((s.Links ?? []).length > 0)
    throw new BerthError('InvalidArgument', `${field}.Links: links are not supported`, { hint: 'put the containers on one user-defined network: they find each other by name' });
  const aliases = (s.Aliases ?? []).filter((a) => a !== '');
  if (aliases.length > 0) req.aliases = aliases;
  const v4 = s.IPAMConfig?.IPv4Address;
  const v6 = s.IPAMConfig?.IPv6Address;
  if (v4) {
    if (isIP(v4) !== 4) throw new BerthError('InvalidArgument', `${field}.IPAMConfig.IPv4Address: "${v4}" is not an IPv4 address`);
    req.ipv4 = v4;
  }
  if (v6) {
    if (isIP(v6) !== 6) throw new BerthError('InvalidArgument', `${field}.IPAMConfig.IPv6Address: "${v6}" is not an IPv6 address`);
    req.ipv6 = v6;
  }
  if (s.MacAddress) req.mac = checkMac(s.MacAddress, `${field}.MacAddress`);
  return req;
}

function checkMac(mac: string, field: string): string {
  if (!/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(mac)) throw new BerthError('InvalidArgument', `${field}: "${mac}" is not a MAC address`, { hint: 'like 02:42:ac:11:00:02' });
  return mac.toLowerCase().replace(/-/g, ':');
}

/**
 * The networks a container joins, in order: NetworkMode's network (eth0), then the other
 * EndpointsConfig entries. `sameNetwork` tells whether an EndpointsConfig key (a name or an
 * id) names NetworkMode's network.
 */
export function requestedEndpoints(view: ContainerNetworkView, sameNetwork: (key: string, mode: string) => boolean = (k, m) => k === m): EndpointRequest[] {
  if (view.networks) return view.networks;
  const mode = networkModeOf(view.hostConfig, view.config);
  if (!hasOwnSandbox(mode)) return [];
  const eps = endpointsConfig(view.request);
  const keys = Object.keys(eps);
  const firstKey = keys.find((k) => sameNetwork(k, mode));
  const first = endpointFromSettings(mode, firstKey ? eps[firstKey] : undefined, `NetworkingConfig.EndpointsConfig.${firstKey ?? mode}`);
  if (!first.mac && view.config.MacAddress) first.mac = checkMac(view.config.MacAddress, 'Config.MacAddress');
  const out = [first];
  for (const k of keys) if (k !== firstKey) out.push(endpointFromSettings(k, eps[k], `NetworkingConfig.EndpointsConfig.${k}`));
  return out;
}

/** EndpointsConfig with the docker CLI's "default" key read as the default bridge it means. */
function endpointsConfig(request: ContainerNetworkView['request']): Record<string, EndpointSettings | null> {
  const eps = request.NetworkingConfig?.EndpointsConfig ?? {};
  if (!('default' in eps)) return eps;
  const { default: dflt, ...rest } = eps;
  return { bridge: dflt ?? null, ...rest };
}

const PORT_KEY = /^(\d+)(?:\/(tcp|udp|sctp))?$/i;

function parsePort(text: string, field: string): number {
  if (!/^\d+$/.test(text)) throw new BerthError('InvalidArgument', `${field}: invalid port "${text}"`);
  const n = Number(text);
  if (n < 1 || n > 65535) throw new BerthError('InvalidArgument', `${field}: port ${n} is outside 1-65535`);
  return n;
}

/** "80/tcp" → port and protocol (tcp when none is named). */
export function parsePortKey(key: string, field: string): { port: number; protocol: PortProtocol } {
  const m = PORT_KEY.exec(key.trim());
  if (!m) throw new BerthError('InvalidArgument', `${field}: invalid port "${key}"`, { hint: 'PORT[/PROTOCOL], e.g. "80/tcp"' });
  return { port: parsePort(m[1]!, field), protocol: (m[2]?.toLowerCase() ?? 'tcp') as PortProtocol };
}

function parseHostPort(text: string | undefined, field: string): { start: number; end: number } | undefined {
  if (text === undefined || text === '' || text === '0') return undefined;
  const m = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  if (!m) throw new BerthError('InvalidArgument', `${field}: invalid host port "${text}"`, { hint: 'a port or a range like 8000-8010' });
  const start = parsePort(m[1]!, field);
  const end = m[2] ? parsePort(m[2], field) : start;
  if (end < start) throw new BerthError('InvalidArgument', `${field}: invalid host port range "${text}" (the end is before the start)`);
  return { start, end };
}

/** HostConfig.PortBindings and PublishAllPorts (every exposed port not bound already, on a random host port). */
export function portRequests(hostConfig: HostConfig, config: ContainerConfig): PortRequest[] {
  const out: PortRequest[] = [];
  const bound = new Set<string>();
  for (const [key, bindings] of Object.entries(hostConfig.PortBindings ?? {})) {
    const field = `HostConfig.PortBindings["${key}"]`;
    const { port, protocol } = parsePortKey(key, field);
    bound.add(`${port}/${protocol}`);
    const list: PortBinding[] = bindings && bindings.length > 0 ? bindings : [{}];
    list.forEach((b, i) => {
      const hostIp = (b?.HostIp ?? '').replace(/^\[|\]$/g, '');
      if (hostIp !== '' && isIP(hostIp) === 0) throw new BerthError('InvalidArgument', `${field}[${i}].HostIp: "${hostIp}" is not an IP address`);
      const hostPort = parseHostPort(b?.HostPort, `${field}[${i}].HostPort`);
      out.push({ containerPort: port, protocol, ...(hostIp ? { hostIp } : {}), ...(hostPort ? { hostPort } : {}) });
    });
  }
  if (hostConfig.PublishAllPorts) {
    for (const key of Object.keys(config.ExposedPorts ?? {})) {
      const { port, protocol } = parsePortKey(key, `Config.ExposedPorts["${key}"]`);
      if (bound.has(`${port}/${protocol}`)) continue;
      bound.add(`${port}/${protocol}`);
      out.push({ containerPort: port, protocol });
    }
  }
  return out;
}

/** NetworkSettings.Ports: published ports only (an exposed port as a null binding makes testcontainers wait forever). */
export function portsOf(mappings: PortMapping[]): Record<string, PortBinding[]> {
  const out: Record<string, PortBinding[]> = {};
  for (const m of mappings) (out[`${m.containerPort}/${m.protocol}`] ??= []).push({ HostIp: m.hostIp, HostPort: String(m.hostPort) });
  return out;
}

function addrWithLen(a: { address: string; prefixLen: number } | undefined): string {
  return a ? `${a.address}/${a.prefixLen}` : '';
}

/** The resolv.conf a sandbox's container gets. */
export function renderSandboxResolv(resolv: Sandbox['resolv']): string {
  const lines = resolv.nameservers.map((n) => `nameserver ${n}`);
  if (resolv.search.length > 0) lines.push(`search ${resolv.search.join(' ')}`);
  if (resolv.options.length > 0) lines.push(`options ${resolv.options.join(' ')}`);
  return lines.join('\n') + '\n';
}

/** The network's gateway of that family: Docker shows it for every network a container is on, not only the one with the default route. */
function gatewayOf(net: NetworkRecord | undefined, family: 4 | 6): string {
  return net?.subnets.find((s) => isIP(s.gateway) === family)?.gateway ?? '';
}

function driverName(rec: NetworkRecord): string {
  return rec.driver;
}

function ipamConfigOf(rec: NetworkRecord): IpamConfig[] {
  return rec.subnets.map((s) => ({
    Subnet: s.subnet,
    Gateway: s.gateway,
    ...(s.ipRange ? { IPRange: s.ipRange } : {}),
    ...(s.auxAddresses && Object.keys(s.auxAddresses).length > 0 ? { AuxiliaryAddresses: s.auxAddresses } : {}),
  }));
}

/** NetworkCreateRequest → the network layer's options; what berth cannot do is refused by name. */
export function createOptionsFrom(req: NetworkCreateRequest): CreateNetworkOptions {
  if (typeof req !== 'object' || req === null) throw new BerthError('InvalidArgument', 'the request body must be a JSON object (NetworkCreateRequest)');
  const name = req.Name;
  if (typeof name !== 'string' || name.trim() === '') throw new BerthError('InvalidArgument', 'Name: a network name is required');
  if (req.Scope && req.Scope !== 'local') throw new BerthError('InvalidArgument', `Scope: "${req.Scope}" networks are not supported (only local)`);
  if (req.Ingress) throw new BerthError('InvalidArgument', 'Ingress: ingress networks need swarm mode, which berth does not have');
  if (req.ConfigOnly || req.ConfigFrom?.Network) throw new BerthError('InvalidArgument', 'ConfigOnly/ConfigFrom: configuration-only networks are not supported');
  if (req.EnableIPv4 === false) throw new BerthError('InvalidArgument', 'EnableIPv4: networks without IPv4 are not supported');
  const ipamDriver = req.IPAM?.Driver;
  if (ipamDriver && ipamDriver !== 'default') throw new BerthError('InvalidArgument', `IPAM.Driver: IPAM driver "${ipamDriver}" is not supported (only default)`);
  if (req.IPAM?.Options && Object.keys(req.IPAM.Options).length > 0)
    throw new BerthError('InvalidArgument', `IPAM.Options: the default IPAM driver takes no options (got ${Object.keys(req.IPAM.Options).join(', ')})`);
  const subnets = (req.IPAM?.Config ?? []).map((c, i) => {
    if (!c || typeof c !== 'object') throw new BerthError('InvalidArgument', `IPAM.Config[${i}]: must be an object`);
    return {
      ...(c.Subnet ? { subnet: c.Subnet } : {}),
      ...(c.Gateway ? { gateway: c.Gateway } : {}),
      ...(c.IPRange ? { ipRange: c.IPRange } : {}),
      ...(c.AuxiliaryAddresses && Object.keys(c.AuxiliaryAddresses).length > 0 ? { auxAddresses: c.AuxiliaryAddresses } : {}),
    };
  });
  const driver = req.Driver || 'bridge';
  if (driver === 'host' || driver === 'null') throw new BerthError('FailedPrecondition', `only one instance of "${driver}" network is allowed`, { hint: `the built-in "${driver === 'null' ? 'none' : 'host'}" network exists already` });
  return {
    name,
    driver,
    ...(req.Internal ? { internal: true } : {}),
    ...(req.Attachable ? { attachable: true } : {}),
    ...(req.EnableIPv6 ? { enableIPv6: true } : {}),
    ...(subnets.length > 0 ? { subnets } : {}),
    options: { ...(req.Options ?? {}) },
    labels: { ...(req.Labels ?? {}) },
  };
}

export class EngineNetworks {
  private readonly service?: NetworkServiceApi;

  /** service undefined: the network layer could not start (the reason says why); host and none still work. */
  constructor(
    service: NetworkServiceApi | undefined,
    private readonly hooks: NetworkEngineHooks,
    private readonly unavailableReason = 'the network layer is not available',
  ) {
    this.service = service;
  }

  private svc(): NetworkServiceApi {
    if (!this.service) throw new BerthError('Unavailable', `networks: ${this.unavailableReason}`, { hint: 'run containers with --network none or --network host, or fix the cause and restart berthd' });
    return this.service;
  }

  /** By id, name, or unique id prefix; Docker's "network X not found". */
  find(idOrName: string): NetworkRecord {
    try {
      return this.svc().find(idOrName);
    } catch (err) {
      if (err instanceof BerthError && err.code === 'NotFound') throw new BerthError('NotFound', `network ${idOrName} not found`, { cause: err, hint: err.hint });
      throw err;
    }
  }

  private sameNetwork = (key: string, mode: string): boolean => {
    if (key === mode) return true;
    if (!this.service) return false;
    try {
      return this.service.find(key).id === this.service.find(mode).id;
    } catch {
      return false;
    }
  };

  // ── Docker's /networks ───────────────────────────────────────────────────
  async create(req: NetworkCreateRequest): Promise<{ Id: string; Warning: string }> {
    const opts = createOptionsFrom(req);
    const rec = await this.svc().create(opts);
    this.emit('create', rec);
    return { Id: rec.id, Warning: '' };
  }

  inspect(idOrName: string): NetworkInspect {
    const rec = this.find(idOrName);
    return this.toInspect(rec, true);
  }

  list(filters: Record<string, string[]>): NetworkInspect[] {
    for (const k of Object.keys(filters)) if (!LIST_FILTERS.includes(k)) throw new BerthError('InvalidArgument', `invalid filter '${k}'`, { hint: `network filters: ${LIST_FILTERS.join(', ')}` });
    for (const v of filters.type ?? []) if (v !== 'custom' && v !== 'builtin') throw new BerthError('InvalidArgument', `invalid filter: 'type'='${v}'`, { hint: 'type is custom or builtin' });
    for (const v of filters.dangling ?? []) if (!['true', 'false', '1', '0'].includes(v.toLowerCase())) throw new BerthError('InvalidArgument', `invalid filter 'dangling=${v}'`, { hint: 'dangling is true or false' });
    if (!this.service) return [];
    const any = (key: string, test: (v: string) => boolean): boolean => !filters[key]?.length || filters[key]!.some(test);
    return this.service
      .list()
      .filter((n) => {
        if (!any('driver', (v) => driverName(n) === v)) return false;
        if (!any('id', (v) => n.id.startsWith(v))) return false;
        if (!any('name', (v) => n.name.includes(v))) return false;
        if (!any('scope', (v) => v === 'local')) return false;
        if (!any('type', (v) => (v === 'builtin') === n.builtin)) return false;
        if (filters.label?.length && !matchLabels(n.labels, filters.label)) return false;
        if (!any('dangling', (v) => ['true', '1'].includes(v.toLowerCase()) === (!n.builtin && this.service!.endpoints(n.id).length === 0))) return false;
        return true;
      })
      .map((n) => this.toInspect(n, false));
  }

  async remove(idOrName: string): Promise<void> {
    const rec = this.find(idOrName);
    if (rec.builtin) throw new BerthError('FailedPrecondition', `${rec.name} is a pre-defined network and cannot be removed`);
    await this.svc().remove(rec.id);
    this.emit('destroy', rec);
  }

  async prune(filters: Record<string, string[]>): Promise<{ NetworksDeleted: string[] }> {
    for (const k of Object.keys(filters)) if (!['label', 'label!', 'until'].includes(k)) throw new BerthError('InvalidArgument', `invalid filter '${k}'`, { hint: 'network prune filters: label, label!, until' });
    const until = filters.until?.[0] ? parseUntil(filters.until[0]) : undefined;
    const deleted: string[] = [];
    if (!this.service) return { NetworksDeleted: deleted };
    for (const n of this.service.list()) {
      if (n.builtin || this.service.endpoints(n.id).length > 0) continue;
      if (until !== undefined && Date.parse(n.created) >= until) continue;
      if (filters.label?.length && !matchLabels(n.labels, filters.label)) continue;
      if (filters['label!']?.length && matchLabels(n.labels, filters['label!'])) continue;
      try {
        await this.service.remove(n.id);
      } catch (err) {
        // A container joined it meanwhile: not unused any more.
        if (err instanceof BerthError && err.code === 'FailedPrecondition') continue;
        throw err;
      }
      this.emit('destroy', n);
      deleted.push(n.name);
    }
    return { NetworksDeleted: deleted };
  }

  /** docker network connect: a running container gets the interface now, a stopped one at its next start. */
  async connect(idOrName: string, req: NetworkConnectRequest): Promise<void> {
    if (!req || typeof req.Container !== 'string' || req.Container === '') throw new BerthError('InvalidArgument', 'Container: the container to connect is required');
    const net = this.find(idOrName);
    const ctr = this.hooks.findContainer(req.Container);
    await this.hooks.locked(ctr.id, async () => {
      const mode = networkModeOf(ctr.hostConfig, ctr.config);
      if (net.driver === 'host' || net.driver === 'null' || !hasOwnSandbox(mode))
        throw new BerthError('FailedPrecondition', `container ${ctr.name} cannot be connected to network ${net.name}`, {
          hint: 'a container on the host network, on none, or sharing another container\'s network namespace cannot join other networks (nor can any container join host or none)',
        });
      const current = this.endpointsOf(ctr);
      if (current.some((e) => this.sameNetwork(e.network, net.id) || this.sameNetwork(e.network, net.name)))
        throw new BerthError('FailedPrecondition', `endpoint with name ${ctr.name} already exists in network ${net.name}`);
      const epReq = endpointFromSettings(net.name, req.EndpointConfig, 'EndpointConfig');
      this.checkEndpoint(net, epReq, 'EndpointConfig');
      const running = ctr.sandbox && (ctr.state.status === 'running' || ctr.state.status === 'paused');
      if (running) {
        await this.svc().connect(ctr.sandbox!, epReq);
        try {
          this.writeFiles(ctr, ctr.sandbox!);
        } catch (err) {
          await this.svc().disconnect(ctr.sandbox!, net.id).catch((e: unknown) => attachCleanupError(err, e));
          throw err;
        }
      }
      ctr.networks = [...current, epReq];
      this.hooks.save(ctr);
      if (running) this.emit('connect', net, ctr.id);
    });
  }

  async disconnect(idOrName: string, req: NetworkDisconnectRequest): Promise<void> {
    if (!req || typeof req.Container !== 'string' || req.Container === '') throw new BerthError('InvalidArgument', 'Container: the container to disconnect is required');
    const net = this.find(idOrName);
    const ctr = this.hooks.findContainer(req.Container);
    await this.hooks.locked(ctr.id, async () => {
      const current = this.endpointsOf(ctr);
      const i = current.findIndex((e) => this.sameNetwork(e.network, net.id) || this.sameNetwork(e.network, net.name));
      if (i < 0) {
        if (net.driver === 'host' || net.driver === 'null')
          throw new BerthError('FailedPrecondition', `container cannot be disconnected from the ${net.name} network`, { hint: 'host and none are the container\'s network mode: recreate it with another --network' });
        throw new BerthError('FailedPrecondition', `container ${ctr.id} is not connected to network ${net.name}`);
      }
      const live = ctr.sandbox?.endpoints.some((e) => e.networkId === net.id);
      if (live) {
        await this.svc().disconnect(ctr.sandbox!, net.id);
        this.writeFiles(ctr, ctr.sandbox!);
      }
      ctr.networks = current.filter((_, j) => j !== i);
      this.hooks.save(ctr);
      if (live) this.emit('disconnect', net, ctr.id);
    });
  }

  // ── containers ───────────────────────────────────────────────────────────
  /** The networks the container joins at its next start (eth0 first). */
  endpointsOf(rec: ContainerNetworkView): EndpointRequest[] {
    return requestedEndpoints(rec, this.sameNetwork);
  }

  /** At create: every network exists, the options fit it, the ports parse. Nothing is set up yet. */
  checkContainer(view: ContainerNetworkView): void {
    const mode = networkModeOf(view.hostConfig, view.config);
    const eps = Object.keys(endpointsConfig(view.request));
    if (!hasOwnSandbox(mode)) {
      const others = eps.filter((k) => !this.sameNetwork(k, mode));
      if (others.length > 0)
        throw new BerthError('InvalidArgument', `NetworkingConfig.EndpointsConfig: a container in network mode "${mode}" cannot join other networks (${others.join(', ')})`);
      return;
    }
    const requests = requestedEndpoints(view, this.sameNetwork);
    for (const [i, r] of requests.entries()) {
      let net: NetworkRecord;
      try {
        net = this.find(r.network);
      } catch (err) {
        // 400, not 404: on a 404 from create the docker CLI goes pulling the image instead of saying this.
        if (err instanceof BerthError && err.code === 'NotFound') throw new BerthError('InvalidArgument', err.message, { cause: err, hint: 'create it first (network create), or pick one from network ls' });
        throw err;
      }
      if (net.driver === 'host' || net.driver === 'null')
        throw new BerthError('InvalidArgument', `NetworkingConfig.EndpointsConfig: the ${net.name} network cannot be combined with other networks`, { hint: `use --network ${net.name} alone` });
      this.checkEndpoint(net, r, i === 0 ? 'HostConfig.NetworkMode' : `NetworkingConfig.EndpointsConfig.${r.network}`);
    }
    portRequests(view.hostConfig, view.config);
  }

  private checkEndpoint(net: NetworkRecord, r: EndpointRequest, field: string): void {
    const userDefined = !net.builtin;
    if ((r.ipv4 || r.ipv6) && !userDefined)
      throw new BerthError('InvalidArgument', `${field}: user specified IP address is supported on user defined networks only`, { hint: 'create a network with a subnet (network create --subnet) and use it' });
    if ((r.aliases ?? []).length > 0 && !userDefined)
      throw new BerthError('InvalidArgument', `${field}: network-scoped alias is supported only for containers in user defined networks`);
    for (const address of [r.ipv4, r.ipv6]) {
      if (!address || net.subnets.length === 0) continue;
      if (!net.subnets.some((s) => contains(s.subnet, address)))
        throw new BerthError('InvalidArgument', `${field}: invalid address ${address}: it does not belong to any of network ${net.name}'s subnets (${net.subnets.map((s) => s.subnet).join(', ')})`);
    }
  }

  /**
   * At start (caller holds the container's lock): the sandbox with its endpoints, ports and
   * DNS records; the spec's network namespace becomes the sandbox's, /etc/hosts and
   * /etc/resolv.conf are written from it. undefined for host/none/container: modes.
   */
  async setUp(rec: ContainerRecord, spec: Spec): Promise<Sandbox | undefined> {
    const mode = networkModeOf(rec.hostConfig, rec.config);
    if (mode.startsWith('container:')) this.copyJoinedFiles(rec, mode.slice('container:'.length));
    if (!hasOwnSandbox(mode)) return undefined;
    if (rec.sandbox) await this.tearDown(rec);
    const hc = rec.hostConfig;
    const dns = {
      ...((hc.Dns ?? []).length ? { servers: hc.Dns! } : {}),
      ...((hc.DnsSearch ?? []).length ? { search: hc.DnsSearch! } : {}),
      ...((hc.DnsOptions ?? []).length ? { options: hc.DnsOptions! } : {}),
    };
    const sandbox = await this.svc().setUp({
      id: rec.id,
      name: rec.name,
      hostname: rec.config.Hostname || rec.id.slice(0, 12),
      endpoints: this.endpointsOf(rec),
      ports: portRequests(hc, rec.config),
      ...(Object.keys(dns).length > 0 ? { dns } : {}),
    });
    try {
      const ns = spec.linux?.namespaces?.find((n) => n.type === 'network');
      if (!ns) throw new BerthError('Internal', `container ${rec.id.slice(0, 12)}: its OCI config has no network namespace to put the sandbox in`);
      ns.path = sandbox.netnsPath;
      this.writeFiles(rec, sandbox);
    } catch (err) {
      await this.svc().tearDown(sandbox).catch((e: unknown) => attachCleanupError(err, e));
      throw err;
    }
    rec.sandbox = sandbox;
    for (const e of sandbox.endpoints) this.emitById('connect', e.networkId, e.networkName, rec.id);
    return sandbox;
  }

  /** At exit, stop and remove: everything the sandbox got is gone (idempotent). */
  async tearDown(rec: ContainerRecord): Promise<void> {
    const sandbox = rec.sandbox;
    if (!sandbox) return;
    await this.svc().tearDown(sandbox);
    rec.sandbox = undefined;
    for (const e of sandbox.endpoints) this.emitById('disconnect', e.networkId, e.networkName, rec.id);
  }

  /** berthd's start: the running containers keep their sandboxes; everything else berth made is removed. */
  async restore(live: ContainerRecord[]): Promise<void> {
    if (!this.service) return;
    const liveIds = new Set(live.map((r) => r.id));
    await this.service.restore(live.flatMap((r) => (r.sandbox ? [r.sandbox] : [])));
    for (const r of this.hooks.containers()) {
      if (r.sandbox && !liveIds.has(r.id)) {
        r.sandbox = undefined;
        this.hooks.save(r);
      }
    }
  }

  /**
   * `container:<ref>` modes (network, and pid/ipc alike): the running container's namespace.
   * Its network namespace is its sandbox's pin when it has one, so the joiner sees the
   * interfaces berth made.
   */
  joinTarget(ref: string, kind: JoinKind): JoinTarget {
    const target = this.hooks.findContainer(ref);
    const pid = target.state.pid;
    if ((target.state.status !== 'running' && target.state.status !== 'paused') || !pid)
      throw new BerthError('Conflict', `cannot join the ${kind} namespace of container ${ref}: it is not running`, { hint: `start ${target.name} first` });
    if (kind === 'network') {
      return { path: target.sandbox?.netnsPath ?? `/proc/${pid}/ns/net`, hostname: target.config.Hostname, domainname: target.config.Domainname };
    }
    if (kind === 'ipc') return { path: `/proc/${pid}/ns/ipc`, shmPath: `/proc/${pid}/root/dev/shm` };
    return { path: `/proc/${pid}/ns/pid` };
  }

  /** The default bridge's IPv4 gateway: what ExtraHosts' "host-gateway" means. */
  hostGateway(): string | undefined {
    if (!this.service) return undefined;
    try {
      return this.service.find('bridge').subnets.find((s) => isIP(s.gateway) === 4)?.gateway;
    } catch {
      return undefined;
    }
  }

  /** inspect's NetworkSettings: addresses while it runs, the networks it will join when stopped. */
  settings(rec: ContainerRecord): NetworkSettings {
    const mode = networkModeOf(rec.hostConfig, rec.config);
    const running = rec.state.status === 'running' || rec.state.status === 'paused';
    const sandbox = running ? rec.sandbox : undefined;
    const networks: Record<string, EndpointSettings> = {};
    const empty = (networkId: string, r?: EndpointRequest): EndpointSettings => ({
      IPAMConfig: r?.ipv4 || r?.ipv6 ? { ...(r.ipv4 ? { IPv4Address: r.ipv4 } : {}), ...(r.ipv6 ? { IPv6Address: r.ipv6 } : {}) } : null,
      Links: null,
      Aliases: r?.aliases?.length ? r.aliases : null,
      MacAddress: '',
      DriverOpts: null,
      NetworkID: networkId,
      EndpointID: '',
      Gateway: '',
      IPAddress: '',
      IPPrefixLen: 0,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      DNSNames: null,
    });
    if (!hasOwnSandbox(mode)) {
      let id = '';
      try {
        id = mode === 'host' || mode === 'none' ? this.find(mode).id : '';
      } catch {
        // network layer unavailable: the name alone
      }
      if (mode === 'host' || mode === 'none') networks[mode] = empty(id);
    } else {
      for (const r of this.endpointsOf(rec)) {
        let net: NetworkRecord | undefined;
        try {
          net = this.find(r.network);
        } catch {
          // removed since: shown by the name it was asked by
        }
        const e = sandbox?.endpoints.find((x) => x.networkId === net?.id);
        const base = empty(net?.id ?? '', r);
        networks[net?.name ?? r.network] = e
          ? {
              ...base,
              MacAddress: e.mac,
              EndpointID: e.endpointId,
              Gateway: e.ipv4 ? (e.ipv4.gateway ?? gatewayOf(net, 4)) : '',
              IPAddress: e.ipv4?.address ?? '',
              IPPrefixLen: e.ipv4?.prefixLen ?? 0,
              IPv6Gateway: e.ipv6 ? (e.ipv6.gateway ?? gatewayOf(net, 6)) : '',
              GlobalIPv6Address: e.ipv6?.address ?? '',
              GlobalIPv6PrefixLen: e.ipv6?.prefixLen ?? 0,
              DNSNames: e.dnsNames.length ? e.dnsNames : null,
            }
          : base;
      }
    }
    // Docker fills the top-level fields from the default bridge only.
    const bridge = networks['bridge'];
    return {
      Bridge: '',
      SandboxID: sandbox ? sandbox.id : '',
      SandboxKey: sandbox ? sandbox.netnsPath : running && rec.state.pid ? `/proc/${rec.state.pid}/ns/net` : '',
      Ports: sandbox ? portsOf(sandbox.ports) : {},
      IPAddress: bridge?.IPAddress ?? '',
      IPPrefixLen: bridge?.IPPrefixLen ?? 0,
      Gateway: bridge?.Gateway ?? '',
      MacAddress: bridge?.MacAddress ?? '',
      Networks: networks,
    };
  }

  /** The network names (and ids) a container is on, for ps's `network` filter. */
  networkKeys(rec: ContainerRecord): string[] {
    const mode = networkModeOf(rec.hostConfig, rec.config);
    if (!hasOwnSandbox(mode)) return [mode];
    return this.endpointsOf(rec).flatMap((r) => {
      try {
        const n = this.find(r.network);
        return [n.name, n.id];
      } catch {
        return [r.network];
      }
    });
  }

  async close(): Promise<void> {
    await this.service?.close();
  }

  // ── helpers ──────────────────────────────────────────────────────────────
  private toInspect(rec: NetworkRecord, withContainers: boolean): NetworkInspect {
    const containers: Record<string, NetworkContainer> = {};
    if (withContainers && this.service) {
      for (const { sandboxId, sandboxName, endpoint } of this.service.endpoints(rec.id)) {
        containers[sandboxId] = {
          Name: sandboxName,
          EndpointID: endpoint.endpointId,
          MacAddress: endpoint.mac,
          IPv4Address: addrWithLen(endpoint.ipv4),
          IPv6Address: addrWithLen(endpoint.ipv6),
        };
      }
    }
    const isBridge = rec.driver === 'bridge';
    return {
      Name: rec.name,
      Id: rec.id,
      Created: rec.created,
      Scope: 'local',
      Driver: driverName(rec),
      EnableIPv4: rec.driver !== 'null',
      EnableIPv6: rec.enableIPv6,
      IPAM: { Driver: 'default', Options: rec.builtin ? null : {}, Config: ipamConfigOf(rec) },
      Internal: rec.internal,
      Attachable: rec.attachable,
      Ingress: false,
      ConfigFrom: { Network: '' },
      ConfigOnly: false,
      Containers: containers,
      Options:
        rec.builtin && isBridge
          ? {
              'com.docker.network.bridge.default_bridge': 'true',
              'com.docker.network.bridge.enable_icc': String(rec.icc),
              'com.docker.network.bridge.enable_ip_masquerade': String(rec.masquerade),
              'com.docker.network.bridge.name': rec.bridge ?? '',
              ...(rec.mtu ? { 'com.docker.network.driver.mtu': String(rec.mtu) } : {}),
              ...rec.options,
            }
          : { ...rec.options },
      Labels: { ...rec.labels },
    };
  }

  /**
   * `--network container:X` shares X's network and so its names: X's /etc/hosts and
   * /etc/resolv.conf as they are at this start (Docker mounts X's own files).
   */
  private copyJoinedFiles(rec: ContainerRecord, ref: string): void {
    const target = this.hooks.findContainer(ref);
    for (const file of ['hosts', 'resolv.conf']) copyFileSync(join(this.hooks.containerDir(target.id), file), join(this.hooks.containerDir(rec.id), file));
  }

  /** /etc/hosts and /etc/resolv.conf rewritten in place (a running container has them bind-mounted). */
  private writeFiles(rec: ContainerRecord, sandbox: Sandbox): void {
    const dir = this.hooks.containerDir(rec.id);
    const addresses = sandbox.endpoints.flatMap((e) => [e.ipv4?.address, e.ipv6?.address].filter((a): a is string => Boolean(a)));
    writeFileSync(
      join(dir, 'hosts'),
      renderHosts({ hostname: rec.config.Hostname || rec.id.slice(0, 12), domainname: rec.config.Domainname, extraHosts: rec.hostConfig.ExtraHosts, addresses, hostGateway: this.hostGateway() }),
    );
    if (sandbox.resolv.nameservers.length > 0) writeFileSync(join(dir, 'resolv.conf'), renderSandboxResolv(sandbox.resolv));
  }

  private emit(action: string, rec: NetworkRecord, container?: string): void {
    this.emitById(action, rec.id, rec.name, container, rec.driver);
  }

  private emitById(action: string, id: string, name: string, container?: string, driver?: string): void {
    let type = driver;
    if (type === undefined && this.service) {
      try {
        type = this.service.find(id).driver;
      } catch {
        type = '';
      }
    }
    this.hooks.events.emit({ Type: 'network', Action: action, id, attributes: { name, type: type ?? '', ...(container ? { container } : {}) } });
  }
}

/** GET /containers/json's Ports: published ports with their host side, exposed ones without (as `docker ps` shows them). */
export function summaryPorts(settings: NetworkSettings, config: ContainerConfig): { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] {
  const out: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] = [];
  const published = new Set<string>();
  for (const [key, bindings] of Object.entries(settings.Ports)) {
    const { port, protocol } = parsePortKey(key, 'NetworkSettings.Ports');
    for (const b of bindings ?? []) {
      published.add(`${port}/${protocol}`);
      out.push({ IP: b.HostIp ?? '', PrivatePort: port, PublicPort: Number(b.HostPort), Type: protocol });
    }
  }
  for (const key of Object.keys(config.ExposedPorts ?? {})) {
    let p: { port: number; protocol: PortProtocol };
    try {
      p = parsePortKey(key, 'Config.ExposedPorts');
    } catch {
      continue;
    }
    if (!published.has(`${p.port}/${p.protocol}`)) out.push({ PrivatePort: p.port, Type: p.protocol });
  }
  return out;
}

