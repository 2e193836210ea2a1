// The cni driver: a network backed by a CNI plugin chain. The plugins own the interface,
// the addresses (their IPAM) and published ports (portmap, through capabilityArgs); berth
// keeps the chain's result with the endpoint so DEL and inspect have it.
import { randomBytes } from 'node:crypto';
import { isAbsolute, join } from 'node:path';
import { existsSync } from 'node:fs';
import { BerthError } from '../errors.js';
import { loadConflist, type CniConflist } from './cni/conflist.js';
import type { CniAttachment, CniResult } from './cni/runner.js';
import type { NetworkDeps } from './service.js';
import type { AddressAssignment, Endpoint, EndpointRequest, NetworkRecord, PortMapping } from './types.js';

/**
 * The conflist named by the `conflist` option: an absolute path, or a name looked up in the
 * CNI configuration directory (`NAME`, `NAME.conflist`, `NAME.conf`).
 */
export function resolveConflist(value: string, confDir: string | undefined): { conflist: CniConflist; source: string } {
  let path = value;
  if (!isAbsolute(value)) {
    if (!confDir || value.includes('/')) {
      throw new BerthError('InvalidArgument', `Options[conflist]: "${value}" must be an absolute path to a .conflist file${confDir ? ` or a file name in ${confDir}` : ''}`);
    }
    const found = [value, `${value}.conflist`, `${value}.conf`].map((n) => join(confDir, n)).find((p) => existsSync(p));
    if (!found) throw new BerthError('NotFound', `Options[conflist]: no CNI configuration "${value}" in ${confDir}`, { hint: `looked for ${value}, ${value}.conflist and ${value}.conf` });
    path = found;
  }
  return { conflist: loadConflist(path), source: path };
}

function splitCidr(cidr: string): { address: string; prefixLen: number } | undefined {
  const [address, len] = cidr.split('/');
  if (!address || len === undefined || !/^\d+$/.test(len)) return undefined;
  return { address, prefixLen: Number(len) };
}

/** The endpoint's addresses from a CNI result: the first IPv4 and IPv6 on the sandbox's interface. */
export function addressesFromResult(result: CniResult, ifname: string): { ipv4?: AddressAssignment; ipv6?: AddressAssignment; mac?: string } {
  const ifaces = result.interfaces ?? [];
  const ours = ifaces.findIndex((i) => i.name === ifname && i.sandbox !== undefined && i.sandbox !== '');
  const out: { ipv4?: AddressAssignment; ipv6?: AddressAssignment; mac?: string } = {};
  if (ours >= 0 && ifaces[ours]!.mac) out.mac = ifaces[ours]!.mac!.toLowerCase();
  for (const ip of result.ips ?? []) {
    if (ip.interface !== undefined && ours >= 0 && ip.interface !== ours) continue;
    const a = splitCidr(ip.address);
    if (!a) continue;
    const key = a.address.includes(':') ? 'ipv6' : 'ipv4';
    if (out[key]) continue;
    out[key] = { ...a, ...(ip.gateway ? { gateway: ip.gateway } : {}) };
  }
  return out;
}

export interface CniAttachContext {
  rec: NetworkRecord;
  sandbox: { id: string; name: string; netnsPath: string };
  req: EndpointRequest;
  ifname: string;
  /** Published through the chain's portmap plugin when this endpoint is the sandbox's first. */
  ports: PortMapping[];
  field: string;
}

export class CniDriver {
  constructor(private readonly deps: NetworkDeps) {}

  attachment(rec: NetworkRecord, sandbox: { id: string; netnsPath: string }, ifname: string, ports: PortMapping[] = []): CniAttachment {
    const conflist = rec.cni!.conflist as unknown as CniConflist;
    return {
      conflist,
      containerId: sandbox.id,
      netnsPath: sandbox.netnsPath,
      ifname,
      ...(ports.length > 0
        ? {
            capabilityArgs: {
              portMappings: ports.map((p) => ({
                hostPort: p.hostPort,
                containerPort: p.containerPort,
                protocol: p.protocol,
                ...(p.hostIp && p.hostIp !== '0.0.0.0' && p.hostIp !== '::' ? { hostIP: p.hostIp } : {}),
              })),
            },
          }
        : {}),
    };
  }

  async attach(ctx: CniAttachContext): Promise<Endpoint> {
    const { rec, req } = ctx;
    if (req.ipv4 || req.ipv6) {
      throw new BerthError('InvalidArgument', `${ctx.field}.IPAMConfig: network ${rec.name} (driver cni) assigns addresses through its plugins' IPAM; static addresses are not supported`);
    }
    const result = await this.deps.cni.add(this.attachment(rec, ctx.sandbox, ctx.ifname, ctx.ports));
    const got = addressesFromResult(result, ctx.ifname);
    return {
      networkId: rec.id,
      networkName: rec.name,
      endpointId: randomBytes(32).toString('hex'),
      ifname: ctx.ifname,
      mac: got.mac ?? '',
      ...(got.ipv4 ? { ipv4: got.ipv4 } : {}),
      ...(got.ipv6 ? { ipv6: got.ipv6 } : {}),
      aliases: [...(req.aliases ?? [])],
      dnsNames: [],
      staticAddresses: false,
      cniResult: result as unknown as Record<string, unknown>,
    };
  }

  async detach(rec: NetworkRecord | undefined, sandbox: { id: string; netnsPath: string }, ep: Endpoint, ports: PortMapping[]): Promise<void> {
    if (!rec?.cni) return;
    await this.deps.cni.del(this.attachment(rec, sandbox, ep.ifname, ports));
  }
}
