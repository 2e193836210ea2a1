// NetworkService: the one entry point the engine uses. It owns the network records, the
// address pools and the live sandboxes, and composes the kernel parts (netlink), the
// firewall (nft table + port allocation), the embedded DNS and CNI chains.
//
// Every operation validates first, then acts, recording an undo per step, so a failure
// leaves nothing half-made. Sandboxes are persisted by their owners (container records)
// and handed back through restore() after a berthd restart.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError, attachCleanupError, isBerthError } from '../errors.js';
import type * as netlink from '../host/netlink.js';
import { BridgeDriver } from './bridge-driver.js';
import { CniDriver, resolveConflist } from './cni-driver.js';
import type { CniRunner } from './cni/runner.js';
import type { EmbeddedDns, Upstream } from './dns/index.js';
import { readHostResolvConf } from './dns/resolv.js';
import type { Firewall, FirewallPorts, FirewallState } from './firewall.js';
import type { PortAllocator } from './ports.js';
import { Ipam, cidrContains, cidrOverlaps, cidrWithin, formatCidr, formatIp, lastAddress, normaliseIp, parseCidr, parseIp } from './ipam.js';
import { NetworkStore } from './store.js';
import { chooseDefaultBridgeSubnet, chooseIpv6Subnet, chooseUserSubnet, readHostNetworks, type HostNetworks } from './subnets.js';
import type { CreateNetworkOptions, Endpoint, EndpointRequest, NetworkRecord, PortMapping, Sandbox, SandboxRequest, Subnet } from './types.js';

/** The kernel calls the service makes (src/host/netlink.ts; a fake in unit tests). */
export type NetworkKernel = Pick<typeof netlink, 'createNetns' | 'removeNetns' | 'ensureSharedDir' | 'ensureBridge' | 'deleteLink' | 'listLinks' | 'addVeth' | 'setSysctl'>;
export type NetworkFirewall = Pick<Firewall, 'sync' | 'addNetwork' | 'removeNetwork' | 'addPorts' | 'removePorts'>;
export type NetworkPorts = Pick<PortAllocator, 'allocate' | 'release' | 'restore'>;
export type NetworkDns = Pick<EmbeddedDns, 'listen' | 'unlisten' | 'register' | 'unregister' | 'setUpstreams' | 'close'>;
export type NetworkCni = Pick<CniRunner, 'add' | 'del' | 'listCached'>;

/** What the service composes; open() makes the real ones, unit tests pass fakes. */
export interface NetworkDeps {
  kernel: NetworkKernel;
  firewall: NetworkFirewall;
  ports: NetworkPorts;
  dns: NetworkDns;
  cni: NetworkCni;
  /** The host's routes and addresses, except those on the given (berth's) bridges. */
  hostNetworks: (ownBridges: Set<string>) => HostNetworks;
}

export interface NetworkServiceOptions {
  root: string;
  runRoot: string;
  hostResolvConf?: string;
  cniPluginDirs?: string[];
  cniConfDir?: string;
  /** Tests: the embedded DNS's port (0 → ephemeral, the firewall redirects gateway:53 there). */
  dnsPort?: number;
  /** Tests: the upstream resolvers instead of hostResolvConf's. */
  upstreams?: Upstream[];
  defaultBridge?: { subnet?: string; bridge?: string; mtu?: number };
  /** Tests: berth's nft table (default "berth"), so a test daemon does not replace the real one. */
  nftTable?: string;
  warn?: (m: string) => void;
  /** Tests: replacements for the kernel, firewall, ports, DNS and CNI parts. */
  deps?: Partial<NetworkDeps>;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const BRIDGE_NAME_RE = /^[^\s/:]+$/;
const DEFAULT_CNI_PLUGIN_DIRS = ['/opt/cni/bin', '/usr/lib/cni'];
const DEFAULT_CNI_CONF_DIR = '/etc/cni/net.d';
const BRIDGE_OPTS = {
  name: ['com.docker.network.bridge.name', 'bridge_name'],
  mtu: ['com.docker.network.driver.mtu', 'mtu'],
  masquerade: ['com.docker.network.bridge.enable_ip_masquerade'],
  icc: ['com.docker.network.bridge.enable_icc'],
};
const CNI_OPTS = ['conflist'];

function option(opts: Record<string, string>, keys: string[]): { key: string; value: string } | undefined {
  for (const key of keys) if (opts[key] !== undefined) return { key, value: opts[key]! };
  return undefined;
}

function parseBool(o: { key: string; value: string } | undefined, dflt: boolean): boolean {
  if (!o) return dflt;
  if (/^(1|true|yes|on)$/i.test(o.value)) return true;
  if (/^(0|false|no|off)$/i.test(o.value)) return false;
  throw new BerthError('InvalidArgument', `Options[${o.key}]: "${o.value}" is not a boolean (true or false)`);
}

/** Runs undo steps in reverse; failures are attached to `err`, never replacing it. */
async function unwind(undo: (() => unknown)[], err: unknown): Promise<void> {
  for (const step of undo.reverse()) {
    try {
      await step();
    } catch (cleanupErr) {
      attachCleanupError(err, cleanupErr);
    }
  }
}

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** Where an endpoint's published ports go: the DNAT target. */
interface PortTarget {
  endpointId: string;
  fw?: FirewallPorts;
}

export class NetworkService {
  private readonly records = new Map<string, NetworkRecord>();
  private readonly live = new Map<string, Sandbox>();
  private readonly portTargets = new Map<string, PortTarget>();
  /** setUp/connect calls in flight per network: remove() must not pull the bridge from under them. */
  private readonly pending = new Map<string, number>();
  private readonly ipam = new Ipam();
  private readonly bridge: BridgeDriver;
  private readonly cniDriver: CniDriver;
  private readonly store: NetworkStore;
  private readonly warn: (m: string) => void;
  private lock: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly opts: NetworkServiceOptions,
    private readonly deps: NetworkDeps,
  ) {
    this.warn = opts.warn ?? ((m) => console.warn(`berth network: ${m}`));
    this.store = new NetworkStore(opts.root, this.warn);
    this.bridge = new BridgeDriver(deps, this.ipam, opts.dnsPort ?? 53);
    this.cniDriver = new CniDriver(deps);
  }

  static async open(opts: NetworkServiceOptions): Promise<NetworkService> {
    const deps = await makeDeps(opts);
    const svc = new NetworkService(opts, deps);
    try {
      await svc.start();
    } catch (err) {
      await unwind([() => deps.dns.close()], err);
      throw err;
    }
    return svc;
  }

  private get netnsDir(): string {
    return join(this.opts.runRoot, 'netns');
  }

  private async start(): Promise<void> {
    this.deps.kernel.ensureSharedDir(this.netnsDir);
    for (const rec of this.store.loadAll()) this.records.set(rec.id, rec);
    this.ensureBuiltins();
    for (const rec of this.records.values()) {
      if (rec.driver !== 'bridge') continue;
      try {
        await this.bridge.prepare(rec);
      } catch (err) {
        if (rec.builtin) throw err;
        // One broken user network (its bridge name taken meanwhile) must not keep berthd down.
        this.warn(`network ${rec.name}: cannot set it up: ${(err as Error).message}`);
      }
    }
    await this.deps.firewall.sync(this.firewallState());
  }

  private ensureBuiltins(): void {
    const byName = (n: string): NetworkRecord | undefined => [...this.records.values()].find((r) => r.builtin && r.name === n);
    const base = (name: string, driver: NetworkRecord['driver']): NetworkRecord => ({
      id: randomBytes(32).toString('hex'),
      name,
      driver,
      created: new Date().toISOString(),
      builtin: true,
      internal: false,
      attachable: false,
      enableIPv6: false,
      subnets: [],
      masquerade: false,
      icc: false,
      dnsNames: false,
      options: {},
      labels: {},
    });
    for (const [name, driver] of [['host', 'host'], ['none', 'null']] as const) {
      if (!byName(name)) {
        const rec = base(name, driver);
        this.store.save(rec);
        this.records.set(rec.id, rec);
      }
    }
    const want = this.opts.defaultBridge ?? {};
    const bridgeName = want.bridge ?? 'berth0';
    let rec = byName('bridge');
    const others = [...this.records.values()].filter((r) => r !== rec).flatMap((r) => r.subnets.map((s) => s.subnet));
    let subnet = want.subnet ? this.checkSubnetText(want.subnet, 'defaultBridge.subnet') : rec?.subnets[0]?.subnet;
    // The default bridge may outlive berthd's records (a wiped root): its addresses are ours, not the host's.
    if (!subnet) subnet = chooseDefaultBridgeSubnet(others, this.deps.hostNetworks(new Set([...this.ownBridges(), bridgeName])));
    const c = parseCidr(subnet)!;
    const clash = [...this.records.values()].find((r) => r !== rec && r.subnets.some((s) => cidrOverlaps(parseCidr(s.subnet)!, c)));
    if (clash) {
      throw new BerthError('Conflict', `defaultBridge.subnet: ${subnet} overlaps network ${clash.name} (${clash.subnets.map((s) => s.subnet).join(', ')})`, {
        hint: 'pick another subnet for the default bridge, or remove that network',
      });
    }
    const subnets: Subnet[] = [{ subnet, gateway: formatIp(c.family, c.network + 1n) }];
    if (rec && rec.subnets[0]?.subnet === subnet && rec.bridge === bridgeName && rec.mtu === want.mtu) return;
    rec = {
      ...(rec ?? { ...base('bridge', 'bridge'), masquerade: true, icc: true }),
      subnets,
      bridge: bridgeName,
      ...(want.mtu ? { mtu: want.mtu } : {}),
    };
    if (!want.mtu) delete rec.mtu;
    this.store.save(rec);
    this.records.set(rec.id, rec);
  }

  private ownBridges(): Set<string> {
    return new Set([...this.records.values()].flatMap((r) => (r.bridge ? [r.bridge] : [])));
  }

  private checkSubnetText(text: string, field: string): string {
    const c = parseCidr(text);
    if (!c) throw new BerthError('InvalidArgument', `${field}: "${text}" is not a CIDR subnet (like 10.80.5.0/24 or fd8b:e47b:0:5::/64)`);
    return formatCidr(c);
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => {});
    return run;
  }

  private firewallState(): FirewallState {
    return {
      networks: [...this.records.values()].filter((r) => r.driver === 'bridge').map((r) => this.bridge.firewallNetwork(r)),
      ports: [...this.portTargets.values()].flatMap((t) => (t.fw ? [t.fw] : [])),
    };
  }

  // ---- networks -------------------------------------------------------------------------

  find(idOrName: string): NetworkRecord {
    const all = [...this.records.values()];
    const hit = all.find((r) => r.id === idOrName) ?? all.find((r) => r.name === idOrName);
    if (hit) return clone(hit);
    const byPrefix = idOrName.length > 0 && /^[0-9a-f]+$/.test(idOrName) ? all.filter((r) => r.id.startsWith(idOrName)) : [];
    if (byPrefix.length === 1) return clone(byPrefix[0]!);
    if (byPrefix.length > 1) {
      throw new BerthError('InvalidArgument', `network ${idOrName} is ambiguous (${byPrefix.length} matches found based on ID prefix)`, { hint: 'give more of the id, or the name' });
    }
    throw new BerthError('NotFound', `network ${idOrName} not found`, { hint: 'list networks with `berth network ls`' });
  }

  private record(idOrName: string): NetworkRecord {
    return this.records.get(this.find(idOrName).id)!;
  }

  list(): NetworkRecord[] {
    return [...this.records.values()].map(clone);
  }

  endpoints(networkId: string): { sandboxId: string; sandboxName: string; endpoint: Endpoint }[] {
    const out: { sandboxId: string; sandboxName: string; endpoint: Endpoint }[] = [];
    for (const sb of this.live.values()) {
      for (const ep of sb.endpoints) if (ep.networkId === networkId) out.push({ sandboxId: sb.id, sandboxName: sb.name, endpoint: clone(ep) });
    }
    return out;
  }

  create(opts: CreateNetworkOptions): Promise<NetworkRecord> {
    return this.serialized(() => this.doCreate(opts));
  }

  private validateCreate(opts: CreateNetworkOptions): NetworkRecord {
    const name = opts.name;
    if (typeof name !== 'string' || !NAME_RE.test(name)) {
      throw new BerthError('InvalidArgument', `Name: invalid network name "${name ?? ''}", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed (at least two characters)`);
    }
    if ([...this.records.values()].some((r) => r.name === name)) {
      throw new BerthError('Conflict', `network with name ${name} already exists`, { hint: 'pick another name, or remove the existing network first' });
    }
    const driver = opts.driver === undefined || opts.driver === '' ? 'bridge' : opts.driver;
    if (driver === 'host' || driver === 'null') {
      throw new BerthError('InvalidArgument', `Driver: only one instance of "${driver === 'null' ? 'none' : 'host'}" network is allowed, and berth makes it`);
    }
    if (driver !== 'bridge' && driver !== 'cni') {
      throw new BerthError('InvalidArgument', `Driver: network driver "${driver}" is not supported`, { hint: 'use bridge (the default) or cni' });
    }
    const options = { ...(opts.options ?? {}) };
    const known = driver === 'bridge' ? Object.values(BRIDGE_OPTS).flat() : CNI_OPTS;
    for (const [k, v] of Object.entries(options)) {
      if (!known.includes(k)) throw new BerthError('InvalidArgument', `Options[${k}]: unknown option for driver ${driver}`, { hint: `known options: ${known.join(', ')}` });
      if (typeof v !== 'string') throw new BerthError('InvalidArgument', `Options[${k}]: must be a string`);
    }
    const id = randomBytes(32).toString('hex');
    const internal = !!opts.internal;
    const base: NetworkRecord = {
      id,
      name,
      driver,
      created: new Date().toISOString(),
      builtin: false,
      internal,
      attachable: !!opts.attachable,
      enableIPv6: !!opts.enableIPv6,
      subnets: [],
      masquerade: false,
      icc: true,
      dnsNames: driver === 'bridge',
      options,
      labels: { ...(opts.labels ?? {}) },
    };
    if (driver === 'cni') {
      if (opts.subnets && opts.subnets.length > 0) {
        throw new BerthError('InvalidArgument', `IPAM.Config: network ${name} uses driver cni, whose plugins assign addresses; give the subnet in the conflist's ipam section`);
      }
      const conflist = options.conflist;
      if (!conflist) throw new BerthError('InvalidArgument', `Options[conflist]: driver cni needs a conflist (-o conflist=/etc/cni/net.d/NAME.conflist)`);
      const loaded = resolveConflist(conflist, this.opts.cniConfDir ?? DEFAULT_CNI_CONF_DIR);
      return { ...base, cni: { conflist: loaded.conflist as unknown as Record<string, unknown>, source: loaded.source } };
    }

    const mtuOpt = option(options, BRIDGE_OPTS.mtu);
    let mtu: number | undefined;
    if (mtuOpt) {
      mtu = Number(mtuOpt.value);
      if (!/^\d+$/.test(mtuOpt.value) || mtu < 68 || mtu > 65535) {
        throw new BerthError('InvalidArgument', `Options[${mtuOpt.key}]: MTU "${mtuOpt.value}" must be a number between 68 and 65535`);
      }
    }
    const nameOpt = option(options, BRIDGE_OPTS.name);
    const bridge = nameOpt ? nameOpt.value : `berth-${id.slice(0, 9)}`;
    if (nameOpt && (Buffer.byteLength(bridge) > 15 || !BRIDGE_NAME_RE.test(bridge) || bridge === '.' || bridge === '..')) {
      throw new BerthError('InvalidArgument', `Options[${nameOpt.key}]: "${bridge}" is not a valid interface name (at most 15 bytes, no spaces, '/' or ':')`);
    }
    const holder = [...this.records.values()].find((r) => r.bridge === bridge);
    if (holder) throw new BerthError('Conflict', `Options[${nameOpt?.key ?? 'bridge'}]: bridge ${bridge} is already used by network ${holder.name}`);
    const masquerade = internal ? false : parseBool(option(options, BRIDGE_OPTS.masquerade), true);
    const icc = parseBool(option(options, BRIDGE_OPTS.icc), true);

    const subnets = this.validateSubnets(opts, base);
    if (subnets.some((s) => s.subnet.includes(':'))) base.enableIPv6 = true;
    if (mtu !== undefined && base.enableIPv6 && mtu < 1280) {
      throw new BerthError('InvalidArgument', `Options[${mtuOpt!.key}]: MTU ${mtu} is below IPv6's minimum of 1280`);
    }
    return { ...base, subnets, bridge, masquerade, icc, ...(mtu !== undefined ? { mtu } : {}) };
  }

  private validateSubnets(opts: CreateNetworkOptions, base: NetworkRecord): Subnet[] {
    const out: Subnet[] = [];
    (opts.subnets ?? []).forEach((req, i) => {
      const field = `IPAM.Config[${i}]`;
      if (!req.subnet) {
        if (req.gateway || req.ipRange || req.auxAddresses) throw new BerthError('InvalidArgument', `${field}.Subnet: a gateway, ip range or auxiliary address needs a subnet`);
        return;
      }
      const c = parseCidr(req.subnet);
      if (!c) throw new BerthError('InvalidArgument', `${field}.Subnet: "${req.subnet}" is not a CIDR subnet (like 10.80.5.0/24 or fd8b:e47b:0:5::/64)`);
      const maxLen = c.family === 4 ? 30 : 126;
      if (c.prefixLen > maxLen) throw new BerthError('InvalidArgument', `${field}.Subnet: ${req.subnet} is too small for a gateway and containers (at most /${maxLen})`);
      const subnet = formatCidr(c);
      const inside = (text: string, f: string): string => {
        const ip = parseIp(text);
        if (!ip) throw new BerthError('InvalidArgument', `${f}: "${text}" is not an IP address`);
        if (!cidrContains(c, ip)) throw new BerthError('InvalidArgument', `${f}: ${text} is outside the subnet ${subnet}`);
        if (ip.value === c.network || (c.family === 4 && ip.value === lastAddress(c))) {
          throw new BerthError('InvalidArgument', `${f}: ${text} is the network or broadcast address of ${subnet}`);
        }
        return formatIp(ip.family, ip.value);
      };
      const gateway = req.gateway ? inside(req.gateway, `${field}.Gateway`) : formatIp(c.family, c.network + 1n);
      const s: Subnet = { subnet, gateway };
      if (req.ipRange) {
        const r = parseCidr(req.ipRange);
        if (!r) throw new BerthError('InvalidArgument', `${field}.IPRange: "${req.ipRange}" is not a CIDR range`);
        if (!cidrWithin(r, c)) throw new BerthError('InvalidArgument', `${field}.IPRange: ${req.ipRange} is not inside the subnet ${subnet}`);
        s.ipRange = formatCidr(r);
      }
      if (req.auxAddresses && Object.keys(req.auxAddresses).length > 0) {
        s.auxAddresses = {};
        for (const [k, v] of Object.entries(req.auxAddresses)) s.auxAddresses[k] = inside(v, `${field}.AuxiliaryAddresses[${k}]`);
      }
      for (const [j, prev] of out.entries()) {
        if (cidrOverlaps(parseCidr(prev.subnet)!, c)) throw new BerthError('InvalidArgument', `${field}.Subnet: ${subnet} overlaps IPAM.Config[${j}] (${prev.subnet})`);
      }
      this.checkOverlap(subnet, field);
      out.push(s);
    });
    const taken = (): string[] => [...[...this.records.values()].flatMap((r) => r.subnets.map((s) => s.subnet)), ...out.map((s) => s.subnet)];
    if (!out.some((s) => !s.subnet.includes(':'))) {
      const subnet = chooseUserSubnet(taken(), this.deps.hostNetworks(this.ownBridges()));
      const c = parseCidr(subnet)!;
      out.unshift({ subnet, gateway: formatIp(4, c.network + 1n) });
    }
    if (base.enableIPv6 && !out.some((s) => s.subnet.includes(':'))) {
      const subnet = chooseIpv6Subnet(taken(), this.deps.hostNetworks(this.ownBridges()));
      out.push({ subnet, gateway: formatIp(6, parseCidr(subnet)!.network + 1n) });
    }
    return [...out.filter((s) => !s.subnet.includes(':')), ...out.filter((s) => s.subnet.includes(':'))];
  }

  private checkOverlap(subnet: string, field: string): void {
    const c = parseCidr(subnet)!;
    for (const r of this.records.values()) {
      const other = r.subnets.find((s) => cidrOverlaps(parseCidr(s.subnet)!, c));
      if (other) {
        throw new BerthError('Conflict', `${field}.Subnet: ${subnet} overlaps ${other.subnet} of network ${r.name}`, { hint: 'pick a subnet that no other network uses, or leave it out to get a free one' });
      }
    }
  }

  private async doCreate(opts: CreateNetworkOptions): Promise<NetworkRecord> {
    this.assertOpen();
    const rec = this.validateCreate(opts);
    const undo: (() => unknown)[] = [];
    try {
      if (rec.driver === 'bridge') {
        undo.push(await this.bridge.prepare(rec));
        await this.deps.firewall.addNetwork(this.bridge.firewallNetwork(rec));
        undo.push(() => this.deps.firewall.removeNetwork(rec.id));
      }
      this.store.save(rec);
    } catch (err) {
      await unwind(undo, err);
      throw err;
    }
    this.records.set(rec.id, rec);
    return clone(rec);
  }

  remove(idOrName: string): Promise<void> {
    return this.serialized(async () => {
      this.assertOpen();
      const rec = this.record(idOrName);
      if (rec.builtin) throw new BerthError('FailedPrecondition', `${rec.name} is a pre-defined network and cannot be removed`);
      const eps = this.endpoints(rec.id);
      if (eps.length > 0 || (this.pending.get(rec.id) ?? 0) > 0) {
        const names = eps.map((e) => e.sandboxName).join(', ');
        throw new BerthError('FailedPrecondition', `network ${rec.name} has active endpoints${names ? ` (${names})` : ''}`, {
          hint: 'stop or disconnect those containers first',
        });
      }
      if (rec.driver === 'bridge') {
        await this.deps.firewall.removeNetwork(rec.id);
        await this.bridge.teardown(rec, option(rec.options, BRIDGE_OPTS.name) !== undefined);
      }
      this.store.delete(rec.id);
      this.records.delete(rec.id);
    });
  }

  // ---- sandboxes ------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new BerthError('FailedPrecondition', 'the network service is closed');
  }

  /** The network for an endpoint request; host/none are the engine's business, never endpoints. */
  private endpointNetwork(req: EndpointRequest, field: string): NetworkRecord {
    let rec: NetworkRecord;
    try {
      rec = this.record(req.network);
    } catch (err) {
      if (isBerthError(err, 'NotFound')) throw new BerthError('NotFound', `${field}: network ${req.network} not found`, { hint: 'create it with `berth network create`, or list networks with `berth network ls`' });
      throw err;
    }
    if (rec.driver === 'host' || rec.driver === 'null') {
      throw new BerthError('InvalidArgument', `${field}: network ${rec.name} (driver ${rec.driver}) has no endpoints: a container joins the host's namespace or gets loopback only, without the network service`);
    }
    for (const [k, v] of [['IPv4Address', req.ipv4], ['IPv6Address', req.ipv6]] as const) {
      if (v !== undefined && v !== '' && normaliseIp(v) === undefined) throw new BerthError('InvalidArgument', `${field}.IPAMConfig.${k}: "${v}" is not an IP address`);
    }
    return rec;
  }

  private track(ids: string[], delta: number): void {
    for (const id of ids) {
      const n = (this.pending.get(id) ?? 0) + delta;
      if (n > 0) this.pending.set(id, n);
      else this.pending.delete(id);
    }
  }

  private static nextIfname(endpoints: Endpoint[]): string {
    const used = new Set(endpoints.map((e) => e.ifname));
    for (let i = 0; ; i++) if (!used.has(`eth${i}`)) return `eth${i}`;
  }

  private async attach(sb: Sandbox, rec: NetworkRecord, req: EndpointRequest, field: string, cniPorts: PortMapping[]): Promise<Endpoint> {
    const ifname = NetworkService.nextIfname(sb.endpoints);
    const sandbox = { id: sb.id, name: sb.name, netnsPath: sb.netnsPath };
    const cleanReq: EndpointRequest = { ...req, ...(req.ipv4 === '' ? { ipv4: undefined } : {}), ...(req.ipv6 === '' ? { ipv6: undefined } : {}) };
    if (rec.driver === 'cni') return this.cniDriver.attach({ rec, sandbox, req: cleanReq, ifname, ports: cniPorts, field });
    return this.bridge.attach({
      rec,
      sandbox,
      req: cleanReq,
      ifname,
      field,
      defaultRoute4: !sb.endpoints.some((e) => e.ipv4?.gateway),
      defaultRoute6: !sb.endpoints.some((e) => e.ipv6?.gateway),
    });
  }

  private async detach(sb: Sandbox, ep: Endpoint, withNetns = false): Promise<void> {
    const rec = this.records.get(ep.networkId);
    if (rec?.driver === 'cni' || ep.cniResult) {
      const target = this.portTargets.get(sb.id);
      await this.cniDriver.detach(rec, sb, ep, target?.endpointId === ep.endpointId ? sb.ports : []);
    } else {
      await this.bridge.detach(rec, sb.id, ep, withNetns);
    }
  }

  /** DNAT rules to the endpoint, or undefined when it has no address (or is a cni endpoint: portmap does it). */
  private portRules(sb: Sandbox, ep: Endpoint): FirewallPorts | undefined {
    const rec = this.records.get(ep.networkId);
    if (!rec || rec.driver !== 'bridge' || sb.ports.length === 0 || (!ep.ipv4 && !ep.ipv6)) return undefined;
    return {
      sandboxId: sb.id,
      bridge: rec.bridge!,
      ...(ep.ipv4 ? { containerIpv4: ep.ipv4.address } : {}),
      ...(ep.ipv6 ? { containerIpv6: ep.ipv6.address } : {}),
      mappings: sb.ports,
    };
  }

  private resolvFor(sb: Sandbox, req: { dns?: SandboxRequest['dns'] }): Sandbox['resolv'] {
    let host = { nameservers: [] as string[], search: [] as string[], options: [] as string[] };
    try {
      const h = readHostResolvConf(this.opts.hostResolvConf ?? '/etc/resolv.conf');
      host = { nameservers: h.nameservers.map((n) => n.address), search: h.search, options: h.options };
    } catch (err) {
      this.warn((err as Error).message);
    }
    const search = req.dns?.search ?? host.search;
    const options = req.dns?.options ?? host.options;
    const embedded = sb.endpoints.find((e) => {
      const r = this.records.get(e.networkId);
      return r?.driver === 'bridge' && (r.dnsNames || r.name === 'bridge');
    });
    const gw = embedded && this.records.get(embedded.networkId)!.subnets.find((s) => !s.subnet.includes(':'))?.gateway;
    if (gw) return { nameservers: [gw], search, options };
    if (req.dns?.servers && req.dns.servers.length > 0) return { nameservers: [...req.dns.servers], search, options };
    const cniDns = sb.endpoints.map((e) => (e.cniResult as { dns?: { nameservers?: string[] } } | undefined)?.dns?.nameservers).find((n) => n && n.length > 0);
    // A loopback resolver of the host (127.0.0.53) is unreachable from the sandbox's namespace.
    const nameservers = cniDns ?? host.nameservers.filter((n) => !n.startsWith('127.') && n !== '::1');
    return { nameservers, search, options };
  }

  private static upstreams(servers: string[] | undefined, field: string): Upstream[] | undefined {
    if (!servers || servers.length === 0) return undefined;
    return servers.map((s, i) => {
      const address = normaliseIp(s);
      if (!address) throw new BerthError('InvalidArgument', `${field}[${i}]: "${s}" is not an IP address`);
      return { address, port: 53 };
    });
  }

  async setUp(req: SandboxRequest): Promise<Sandbox> {
    this.assertOpen();
    if (this.live.has(req.id)) throw new BerthError('AlreadyExists', `sandbox ${req.id} is already set up`, { hint: 'tear it down first' });
    // Validate everything before touching the kernel.
    const recs = req.endpoints.map((e, i) => this.endpointNetwork(e, `EndpointsConfig[${i}] (${e.network})`));
    const seen = new Set<string>();
    for (const r of recs) {
      if (seen.has(r.id)) throw new BerthError('InvalidArgument', `network ${r.name} is given twice for sandbox ${req.name}`);
      seen.add(r.id);
    }
    const upstreams = NetworkService.upstreams(req.dns?.servers, 'HostConfig.Dns');
    const ids = recs.map((r) => r.id);
    this.track(ids, 1);
    try {
      return await this.doSetUp(req, recs, upstreams);
    } finally {
      this.track(ids, -1);
    }
  }

  private async doSetUp(req: SandboxRequest, recs: NetworkRecord[], upstreams: Upstream[] | undefined): Promise<Sandbox> {
    const sb: Sandbox = {
      id: req.id,
      name: req.name.replace(/^\//, ''),
      netnsPath: join(this.netnsDir, req.id.slice(0, 32)),
      endpoints: [],
      ports: [],
      resolv: { nameservers: [], search: [], options: [] },
      ...(req.dns?.servers && req.dns.servers.length > 0 ? { dnsServers: [...req.dns.servers] } : {}),
    };
    const undo: (() => unknown)[] = [];
    try {
      this.deps.kernel.createNetns(sb.netnsPath);
      undo.push(() => this.deps.kernel.removeNetns(sb.netnsPath));
      // Ports go to the first endpoint (every bridge endpoint gets an address; cni ones publish through portmap).
      const targetIdx = recs.length > 0 && req.ports.length > 0 ? 0 : -1;
      if (targetIdx >= 0) {
        const ipv6 = recs[targetIdx]!.enableIPv6;
        sb.ports = await this.deps.ports.allocate(sb.id, req.ports, { ipv6 });
        undo.push(() => this.deps.ports.release(sb.id));
      }
      for (const [i, rec] of recs.entries()) {
        const ep = await this.attach(sb, rec, req.endpoints[i]!, `EndpointsConfig[${i}] (${req.endpoints[i]!.network})`, i === targetIdx ? sb.ports : []);
        sb.endpoints.push(ep);
        // The namespace is unpinned last on the way back, taking the veths with it.
        undo.push(() => this.detach(sb, ep, true));
        if (i === targetIdx) this.portTargets.set(sb.id, { endpointId: ep.endpointId });
      }
      if (targetIdx >= 0) {
        undo.push(() => this.portTargets.delete(sb.id));
        const fw = this.portRules(sb, sb.endpoints[targetIdx]!);
        if (fw) {
          await this.deps.firewall.addPorts(fw);
          this.portTargets.set(sb.id, { endpointId: sb.endpoints[targetIdx]!.endpointId, fw });
          undo.push(() => this.deps.firewall.removePorts(sb.id));
        }
      }
      if (upstreams) {
        this.deps.dns.setUpstreams(sb.id, upstreams);
        undo.push(() => this.deps.dns.setUpstreams(sb.id, undefined));
      }
      sb.resolv = this.resolvFor(sb, req);
    } catch (err) {
      await unwind(undo, err);
      throw err;
    }
    this.live.set(sb.id, sb);
    return clone(sb);
  }

  async tearDown(sandbox: Sandbox): Promise<void> {
    const sb = this.live.get(sandbox.id) ?? sandbox;
    const errors: unknown[] = [];
    const step = async (fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    };
    if (sb.ports.length > 0 || this.portTargets.has(sb.id)) {
      await step(() => this.deps.firewall.removePorts(sb.id));
      await step(() => this.deps.ports.release(sb.id));
    }
    if (sb.dnsServers) await step(() => this.deps.dns.setUpstreams(sb.id, undefined));
    // The veths go with the namespace (see BridgeDriver.detach); restore() reaps any that a
    // process still inside kept alive past a berthd restart.
    for (const ep of [...sb.endpoints].reverse()) await step(() => this.detach(sb, ep, true));
    this.portTargets.delete(sb.id);
    await step(() => this.deps.kernel.removeNetns(sb.netnsPath));
    this.live.delete(sb.id);
    if (errors.length > 0) {
      const first = errors[0];
      for (const e of errors.slice(1)) attachCleanupError(first, e);
      throw new BerthError('Internal', `tear down the network of sandbox ${sb.name || sb.id}: ${(first as Error).message}`, { cause: first, hint: 'tearDown can be retried' });
    }
  }

  async connect(sandbox: Sandbox, req: EndpointRequest): Promise<Endpoint> {
    this.assertOpen();
    const rec = this.endpointNetwork(req, `EndpointsConfig[${req.network}]`);
    const sb = this.live.get(sandbox.id) ?? sandbox;
    if (sb.endpoints.some((e) => e.networkId === rec.id)) {
      throw new BerthError('Conflict', `container ${sb.name} is already connected to network ${rec.name}`);
    }
    this.track([rec.id], 1);
    try {
      return await this.doConnect(sandbox, sb, rec, req);
    } finally {
      this.track([rec.id], -1);
    }
  }

  private async doConnect(given: Sandbox, sb: Sandbox, rec: NetworkRecord, req: EndpointRequest): Promise<Endpoint> {
    const needsPorts = sb.ports.length > 0 && !this.portTargets.get(sb.id)?.fw && rec.driver === 'bridge';
    const ep = await this.attach(sb, rec, req, `EndpointsConfig[${req.network}]`, []);
    try {
      if (needsPorts) {
        const fw = this.portRules(sb, ep);
        if (fw) {
          await this.deps.firewall.addPorts(fw);
          this.portTargets.set(sb.id, { endpointId: ep.endpointId, fw });
        }
      }
    } catch (err) {
      await unwind([() => this.detach(sb, ep)], err);
      throw err;
    }
    sb.endpoints.push(ep);
    if (given !== sb) given.endpoints.push(clone(ep));
    this.live.set(sb.id, sb);
    return clone(ep);
  }

  async disconnect(sandbox: Sandbox, network: string): Promise<void> {
    this.assertOpen();
    const sb = this.live.get(sandbox.id) ?? sandbox;
    const all = [...this.records.values()];
    const rec = all.find((r) => r.id === network) ?? all.find((r) => r.name === network) ?? this.record(network);
    const ep = sb.endpoints.find((e) => e.networkId === rec.id);
    if (!ep) throw new BerthError('NotFound', `container ${sb.name} is not connected to network ${rec.name}`);
    const target = this.portTargets.get(sb.id);
    if (target?.endpointId === ep.endpointId && target.fw) {
      await this.deps.firewall.removePorts(sb.id);
      this.portTargets.delete(sb.id);
    }
    await this.detach(sb, ep);
    const drop = (s: Sandbox): void => {
      s.endpoints = s.endpoints.filter((e) => e.networkId !== rec.id);
    };
    drop(sb);
    if (sandbox !== sb) drop(sandbox);
    if (sb.ports.length > 0 && !this.portTargets.get(sb.id)) {
      const next = sb.endpoints.map((e) => ({ e, fw: this.portRules(sb, e) })).find((x) => x.fw);
      if (next) {
        await this.deps.firewall.addPorts(next.fw!);
        this.portTargets.set(sb.id, { endpointId: next.e.endpointId, fw: next.fw! });
      }
    }
  }

  async restore(live: Sandbox[]): Promise<void> {
    this.assertOpen();
    for (const given of live) {
      const sb = clone(given);
      for (const ep of sb.endpoints) {
        const rec = this.records.get(ep.networkId);
        if (!rec) {
          this.warn(`sandbox ${sb.name || sb.id}: network ${ep.networkName} (${ep.networkId.slice(0, 12)}) no longer exists; its endpoint ${ep.ifname} is kept as is`);
          continue;
        }
        if (rec.driver === 'bridge') this.bridge.restore(rec, sb.id, ep, this.warn);
      }
      if (sb.ports.length > 0) {
        this.deps.ports.restore(sb.id, sb.ports);
        const target = sb.endpoints.map((e) => ({ e, fw: this.portRules(sb, e) })).find((x) => x.fw) ?? (sb.endpoints[0] ? { e: sb.endpoints[0], fw: undefined } : undefined);
        if (target) this.portTargets.set(sb.id, { endpointId: target.e.endpointId, ...(target.fw ? { fw: target.fw } : {}) });
      }
      if (sb.dnsServers) {
        try {
          this.deps.dns.setUpstreams(sb.id, NetworkService.upstreams(sb.dnsServers, 'dnsServers'));
        } catch (err) {
          this.warn(`sandbox ${sb.name || sb.id}: ${(err as Error).message}`);
        }
      }
      this.live.set(sb.id, sb);
    }
    await this.deps.firewall.sync(this.firewallState());
    await this.reapOrphans();
  }

  /** Removes what berth made for sandboxes that are gone (a crash between setUp and tearDown). */
  private async reapOrphans(): Promise<void> {
    const hostIfnames = new Set([...this.live.values()].flatMap((s) => s.endpoints.flatMap((e) => (e.hostIfname ? [e.hostIfname] : []))));
    // Only veths on this service's bridges: another berthd (tests, private roots) shares the
    // host's namespace and its veths are not ours to judge.
    const bridges = this.ownBridges();
    for (const link of this.deps.kernel.listLinks()) {
      if (!link.name.startsWith('vberth') || !link.master || !bridges.has(link.master) || hostIfnames.has(link.name)) continue;
      try {
        this.deps.kernel.deleteLink(link.name);
      } catch (err) {
        this.warn(`remove the orphaned veth ${link.name}: ${(err as Error).message}`);
      }
    }
    const netns = new Set([...this.live.values()].map((s) => s.netnsPath));
    let pins: string[] = [];
    try {
      pins = readdirSync(this.netnsDir);
    } catch {
      // no pins yet
    }
    for (const name of pins) {
      const path = join(this.netnsDir, name);
      if (netns.has(path)) continue;
      try {
        this.deps.kernel.removeNetns(path);
      } catch (err) {
        this.warn(`remove the orphaned network namespace ${path}: ${(err as Error).message}`);
      }
    }
    const cniLive = new Set([...this.live.values()].flatMap((s) => s.endpoints.filter((e) => e.cniResult).map((e) => `${s.id}+${e.ifname}`)));
    let cached: ReturnType<NetworkCni['listCached']> = [];
    try {
      cached = this.deps.cni.listCached();
    } catch (err) {
      this.warn(`list the CNI cache: ${(err as Error).message}`);
    }
    for (const entry of cached) {
      if (cniLive.has(`${entry.containerId}+${entry.ifname}`)) continue;
      try {
        await this.deps.cni.del({
          conflist: entry.conflist,
          containerId: entry.containerId,
          netnsPath: entry.netnsPath,
          ifname: entry.ifname,
          ...(entry.args ? { args: entry.args } : {}),
          ...(entry.capabilityArgs ? { capabilityArgs: entry.capabilityArgs } : {}),
        });
      } catch (err) {
        this.warn(`CNI DEL for the orphaned attachment ${entry.containerId}/${entry.ifname} on ${entry.network}: ${(err as Error).message}`);
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.lock.catch(() => {});
    await this.deps.dns.close();
  }
}

/** The real parts, loaded on demand so unit tests with fakes never touch the addon or nft. */
async function makeDeps(opts: NetworkServiceOptions): Promise<NetworkDeps> {
  const given = opts.deps ?? {};
  const warn = opts.warn ?? ((m: string) => console.warn(`berth network: ${m}`));
  let kernel = given.kernel;
  if (!kernel) {
    const nl = await import('../host/netlink.js');
    const why = nl.netlinkAvailable();
    if (why) throw new BerthError('Unavailable', `networking needs the netlink addon: ${why}`, { hint: 'build it with `make -C native`' });
    kernel = nl;
  }
  let firewall = given.firewall;
  let ports = given.ports;
  if (!firewall || !ports) {
    const fw = await import('./firewall.js');
    const pt = await import('./ports.js');
    firewall ??= new fw.Firewall({ warn, ...(opts.nftTable ? { table: opts.nftTable } : {}) });
    ports ??= new pt.PortAllocator();
  }
  let dns = given.dns;
  if (!dns) {
    const d = await import('./dns/index.js');
    const upstreams = opts.upstreams;
    const source = upstreams ? () => upstreams : d.watchHostUpstreams(opts.hostResolvConf ?? '/etc/resolv.conf', { warn });
    dns = new d.EmbeddedDns({ upstreams: source, warn });
  }
  let cni = given.cni;
  if (!cni) {
    const c = await import('./cni/runner.js');
    cni = new c.CniRunner({ pluginDirs: opts.cniPluginDirs ?? DEFAULT_CNI_PLUGIN_DIRS, cacheDir: join(opts.root, 'network', 'cni-cache'), warn });
  }
  const hostNetworks = given.hostNetworks ?? ((own: Set<string>) => readHostNetworks({ skipIface: (n) => own.has(n) }));
  return { kernel, firewall, ports, dns, cni, hostNetworks };
}
