// The bridge driver: a Linux bridge per network with the gateways as its addresses, one
// veth pair per endpoint (host end enslaved to the bridge, peer inside the sandbox), the
// embedded DNS listening on the gateways, and the network's part of berth's nft table.
import { randomBytes } from 'node:crypto';
import { BerthError, attachCleanupError, isBerthError } from '../errors.js';
import { randomMac } from '../host/netlink.js';
import type { FirewallNetwork } from './firewall.js';
import { Ipam, macFromIpv4 } from './ipam.js';
import type { NetworkDeps } from './service.js';
import type { AddressAssignment, Endpoint, EndpointRequest, NetworkRecord } from './types.js';

export const DNS_PORT = 53;

export interface AttachContext {
  rec: NetworkRecord;
  sandbox: { id: string; name: string; netnsPath: string };
  req: EndpointRequest;
  ifname: string;
  /** This endpoint carries the sandbox's default route (the first one of each family does). */
  defaultRoute4: boolean;
  defaultRoute6: boolean;
  /** Field path prefix for errors ("EndpointsConfig.mynet"). */
  field: string;
}

/** The names the embedded DNS answers for a sandbox on a network that resolves names. */
export function endpointDnsNames(rec: NetworkRecord, sandbox: { id: string; name: string }, aliases: string[]): string[] {
  if (!rec.dnsNames) return [];
  const names = [sandbox.name.replace(/^\//, ''), ...aliases, sandbox.id.slice(0, 12)].filter((n) => n !== '');
  return [...new Set(names)];
}

/** A random locally administered unicast MAC. */
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function checkMac(mac: string, field: string): string {
  if (!MAC_RE.test(mac)) throw new BerthError('InvalidArgument', `${field}: "${mac}" is not a MAC address (expected 6 hex bytes like 02:42:ac:11:00:02)`);
  if (parseInt(mac.slice(0, 2), 16) & 1) throw new BerthError('InvalidArgument', `${field}: ${mac} is a multicast MAC address`, { hint: 'the first byte must be even' });
  return mac.toLowerCase();
}

export class BridgeDriver {
  private forwardingOn = false;
  private forwarding6On = false;
  /** Where each network's DNS listens when not on port 53 (the firewall redirects there). */
  private readonly redirects = new Map<string, { gateway: string; port: number }[]>();

  constructor(
    private readonly deps: NetworkDeps,
    private readonly ipam: Ipam,
    private readonly dnsPort: number,
  ) {}

  /** The network's entry in berth's nft table. */
  firewallNetwork(rec: NetworkRecord): FirewallNetwork {
    const redirect = this.redirects.get(rec.id);
    return {
      id: rec.id,
      bridge: rec.bridge!,
      subnets: rec.subnets.map((s) => s.subnet),
      internal: rec.internal,
      masquerade: rec.masquerade,
      icc: rec.icc,
      ...(redirect && redirect.length > 0 ? { dnsRedirect: redirect } : {}),
    };
  }

  /**
   * Kernel side of a network (bridge, addresses, sysctls) and its DNS listeners. Idempotent,
   * so berthd's start runs it for every network. Returns an undo for what it made.
   */
  async prepare(rec: NetworkRecord): Promise<() => Promise<void>> {
    const k = this.deps.kernel;
    const name = rec.bridge!;
    const existed = k.listLinks().find((l) => l.name === name);
    if (existed && existed.kind !== 'bridge') {
      throw new BerthError('Conflict', `network ${rec.name}: the host has a link named ${name} that is not a bridge (${existed.kind || 'unknown kind'})`, {
        hint: 'pick another bridge name (com.docker.network.bridge.name)',
      });
    }
    this.ipam.addNetwork(rec.id, rec.name, rec.subnets);
    const undo = async (): Promise<void> => {
      await this.deps.dns.unlisten(rec.id);
      this.redirects.delete(rec.id);
      this.ipam.removeNetwork(rec.id);
      if (!existed) k.deleteLink(name);
    };
    try {
      k.ensureBridge({
        name,
        addresses: rec.subnets.map((s) => `${s.gateway}/${s.subnet.split('/')[1]}`),
        ...(rec.mtu ? { mtu: rec.mtu } : {}),
      });
      if (!this.forwardingOn) {
        k.setSysctl('net.ipv4.ip_forward', '1');
        this.forwardingOn = true;
      }
      // Published ports reached from 127.0.0.1 are DNAT'ed to the bridge: the kernel drops
      // such packets as martians unless the bridge accepts loopback sources.
      k.setSysctl(`net.ipv4.conf.${name}.route_localnet`, '1');
      if (!this.forwarding6On && rec.subnets.some((s) => s.subnet.includes(':'))) {
        k.setSysctl('net.ipv6.conf.all.forwarding', '1');
        this.forwarding6On = true;
      }
      const redirect: { gateway: string; port: number }[] = [];
      for (const s of rec.subnets) {
        const bound = await this.listenDns(rec, s.gateway);
        if (bound.port !== DNS_PORT) redirect.push({ gateway: s.gateway, port: bound.port });
      }
      this.redirects.set(rec.id, redirect);
    } catch (err) {
      try {
        await undo();
      } catch (cleanupErr) {
        attachCleanupError(err, cleanupErr);
      }
      throw err;
    }
    return undo;
  }

  private async listenDns(rec: NetworkRecord, gateway: string): Promise<{ address: string; port: number }> {
    const opts = { names: rec.dnsNames, networkName: rec.name, forward: !rec.internal };
    try {
      return await this.deps.dns.listen(rec.id, gateway, { ...opts, port: this.dnsPort });
    } catch (err) {
      // Another resolver (systemd-resolved, dnsmasq) may hold port 53 on every address:
      // take any port and let the firewall redirect gateway:53 there.
      if (this.dnsPort !== 0 && isBerthError(err, 'Unavailable')) return this.deps.dns.listen(rec.id, gateway, { ...opts, port: 0 });
      throw err;
    }
  }

  /** Undoes prepare (the bridge goes unless the user named an existing one that still has ports). */
  async teardown(rec: NetworkRecord, userNamedBridge: boolean): Promise<void> {
    const k = this.deps.kernel;
    await this.deps.dns.unlisten(rec.id);
    this.redirects.delete(rec.id);
    this.ipam.removeNetwork(rec.id);
    const links = k.listLinks();
    if (userNamedBridge && links.some((l) => l.master === rec.bridge)) return;
    k.deleteLink(rec.bridge!);
  }

  async attach(ctx: AttachContext): Promise<Endpoint> {
    const { rec, sandbox, req } = ctx;
    const endpointId = randomBytes(32).toString('hex');
    const taken: AddressAssignment[] = [];
    const release = (): void => {
      for (const a of taken) this.ipam.release(rec.id, a.address, endpointId);
    };
    try {
      let ipv4: AddressAssignment | undefined;
      let ipv6: AddressAssignment | undefined;
      if (this.ipam.hasFamily(rec.id, 4) || req.ipv4) {
        ipv4 = this.ipam.allocate(rec.id, { family: 4, owner: endpointId, field: `${ctx.field}.IPAMConfig.IPv4Address`, ...(req.ipv4 ? { address: req.ipv4 } : {}) });
        taken.push(ipv4);
      }
      if (this.ipam.hasFamily(rec.id, 6) || req.ipv6) {
        ipv6 = this.ipam.allocate(rec.id, { family: 6, owner: endpointId, field: `${ctx.field}.IPAMConfig.IPv6Address`, ...(req.ipv6 ? { address: req.ipv6 } : {}) });
        taken.push(ipv6);
      }
      const route4 = ctx.defaultRoute4 && !rec.internal && ipv4 !== undefined;
      const route6 = ctx.defaultRoute6 && !rec.internal && ipv6 !== undefined;
      if (ipv4 && !route4) delete ipv4.gateway;
      if (ipv6 && !route6) delete ipv6.gateway;
      const mac = req.mac ? checkMac(req.mac, `${ctx.field}.MacAddress`) : ipv4 ? macFromIpv4(ipv4.address) : randomMac();
      const hostIfname = 'vberth' + randomBytes(5).toString('hex').slice(0, 9);
      this.deps.kernel.addVeth({
        netnsPath: sandbox.netnsPath,
        hostName: hostIfname,
        peerName: ctx.ifname,
        bridge: rec.bridge!,
        mac,
        addresses: taken.map((a) => `${a.address}/${a.prefixLen}`),
        ...(rec.mtu ? { mtu: rec.mtu } : {}),
        ...(route4 ? { gateway4: ipv4!.gateway! } : {}),
        ...(route6 ? { gateway6: ipv6!.gateway! } : {}),
      });
      const endpoint: Endpoint = {
        networkId: rec.id,
        networkName: rec.name,
        endpointId,
        ifname: ctx.ifname,
        hostIfname,
        mac,
        ...(ipv4 ? { ipv4 } : {}),
        ...(ipv6 ? { ipv6 } : {}),
        aliases: [...(req.aliases ?? [])],
        dnsNames: endpointDnsNames(rec, sandbox, req.aliases ?? []),
        staticAddresses: !!(req.ipv4 || req.ipv6),
      };
      this.registerDns(rec, sandbox.id, endpoint);
      return endpoint;
    } catch (err) {
      release();
      throw err;
    }
  }

  /** DNS entry for the endpoint; also how the DNS server knows which clients it serves. */
  registerDns(rec: NetworkRecord, sandboxId: string, ep: Endpoint): void {
    this.deps.dns.register(rec.id, {
      sandboxId,
      names: ep.dnsNames,
      ...(ep.ipv4 ? { ipv4: ep.ipv4.address } : {}),
      ...(ep.ipv6 ? { ipv6: ep.ipv6.address } : {}),
    });
  }

  /** Re-adopts an endpoint after a berthd restart: its addresses and DNS entry. */
  restore(rec: NetworkRecord, sandboxId: string, ep: Endpoint, warn: (m: string) => void): void {
    for (const a of [ep.ipv4, ep.ipv6]) {
      if (a && !this.ipam.reserve(rec.id, a.address, ep.endpointId)) {
        warn(`sandbox ${sandboxId}: address ${a.address} on network ${rec.name} is outside its subnets or held by another endpoint; kept as is`);
      }
    }
    this.registerDns(rec, sandboxId, ep);
  }

  /**
   * Removes the endpoint; tolerant of things already gone (a crash half-way, a netns removed).
   * `withNetns`: the caller is about to unpin the sandbox's namespace, and the kernel deletes
   * the veth pair when that namespace dies, in its own worker. Deleting it here instead costs
   * ~30 ms of rtnl/RCU waits per link on this machine, three times the budget of a `run --rm`.
   */
  async detach(rec: NetworkRecord | undefined, sandboxId: string, ep: Endpoint, withNetns = false): Promise<void> {
    if (rec) this.deps.dns.unregister(rec.id, sandboxId);
    // Deleting the host end takes the peer with it, wherever it is.
    if (ep.hostIfname && !withNetns) this.deps.kernel.deleteLink(ep.hostIfname);
    if (rec) {
      for (const a of [ep.ipv4, ep.ipv6]) if (a) this.ipam.release(rec.id, a.address, ep.endpointId);
    }
  }
}

