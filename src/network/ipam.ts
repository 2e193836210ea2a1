// IP address arithmetic and address allocation for bridge networks. Addresses are bigints
// for both families so one code path serves IPv4 and IPv6.
//
// There is no IPAM state file: endpoints are persisted by their owners (container records),
// and restore() hands them back, so `reserve` rebuilds the pools after a berthd restart.
import { isIPv4, isIPv6 } from 'node:net';
import { BerthError } from '../errors.js';
import type { AddressAssignment, Subnet } from './types.js';

export type IpFamily = 4 | 6;

export interface IpAddress {
  family: IpFamily;
  value: bigint;
}

export interface Cidr {
  family: IpFamily;
  /** The network address (host bits zero). */
  network: bigint;
  prefixLen: number;
}

const BITS: Record<IpFamily, number> = { 4: 32, 6: 128 };

/** The address, or undefined when `text` is not an IPv4/IPv6 literal (no zone ids). */
export function parseIp(text: string): IpAddress | undefined {
  if (isIPv4(text)) {
    const parts = text.split('.').map(Number);
    return { family: 4, value: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n) };
  }
  if (!isIPv6(text) || text.includes('%')) return undefined;
  let s = text.toLowerCase();
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const n = parseIp(v4[2]!)!.value;
    s = `${v4[1]}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const zeros = tail === undefined ? 0 : 8 - h.length - t.length;
  const groups = [...h, ...Array<string>(zeros).fill('0'), ...t];
  if (groups.length !== 8) return undefined;
  return { family: 6, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

/** Canonical text: dotted quad, or RFC 5952 (lowercase, longest zero run compressed). */
export function formatIp(family: IpFamily, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical form of an address literal; undefined when it is not one. */
export function normaliseIp(text: string): string | undefined {
  const ip = parseIp(text);
  return ip && formatIp(ip.family, ip.value);
}

function mask(family: IpFamily, prefixLen: number): bigint {
  const bits = BigInt(BITS[family]);
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefixLen))) - 1n);
}

/** "10.1.2.3/16" → the 10.1.0.0/16 network (host bits dropped); undefined when malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(lenText)) return undefined;
  const prefixLen = Number(lenText);
  if (prefixLen > BITS[ip.family]) return undefined;
  return { family: ip.family, network: ip.value & mask(ip.family, prefixLen), prefixLen };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.family, c.network)}/${c.prefixLen}`;
}

/** Normalised CIDR text (host bits zero), or undefined when malformed. */
export function normaliseCidr(text: string): string | undefined {
  const c = parseCidr(text);
  return c && formatCidr(c);
}

/** The last address of the network (IPv4's broadcast address). */
export function lastAddress(c: Cidr): bigint {
  return c.network | ((1n << BigInt(BITS[c.family] - c.prefixLen)) - 1n);
}

export function cidrContains(c: Cidr, ip: IpAddress): boolean {
  return c.family === ip.family && (ip.value & mask(c.family, c.prefixLen)) === c.network;
}

/** `inner` lies entirely inside `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.family === outer.family && inner.prefixLen >= outer.prefixLen && cidrContains(outer, { family: inner.family, value: inner.network });
}

export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const shorter = Math.min(a.prefixLen, b.prefixLen);
  const m = mask(a.family, shorter);
  return (a.network & m) === (b.network & m);
}

/** Text-level helpers for callers holding strings. Malformed input never overlaps. */
export function overlaps(a: string, b: string): boolean {
  const ca = parseCidr(a);
  const cb = parseCidr(b);
  return !!ca && !!cb && cidrOverlaps(ca, cb);
}

export function contains(cidr: string, address: string): boolean {
  const c = parseCidr(cidr);
  const ip = parseIp(address);
  return !!c && !!ip && cidrContains(c, ip);
}

/** The MAC berth derives from an IPv4 address: 02:b7 and the address's 4 bytes. */
export function macFromIpv4(address: string): string {
  const ip = parseIp(address);
  if (!ip || ip.family !== 4) throw new Error(`macFromIpv4: not an IPv4 address: ${address}`);
  const bytes = [0x02, 0xb7, ...[24n, 16n, 8n, 0n].map((s) => Number((ip.value >> s) & 0xffn))];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** One subnet's allocator: the dynamic range, addresses in use (→ owner) and the last one handed out. */
class Pool {
  readonly subnet: Cidr;
  readonly first: bigint;
  readonly last: bigint;
  /** address → owner (an endpoint id); the gateway and aux addresses are owned by the network. */
  readonly used = new Map<bigint, string>();
  private cursor: bigint;

  constructor(readonly spec: Subnet, readonly networkName: string) {
    this.subnet = parseCidr(spec.subnet)!;
    const range = spec.ipRange ? parseCidr(spec.ipRange)! : this.subnet;
    let first = range.network;
    let last = lastAddress(range);
    // IPv4: neither the network nor the broadcast address is a host (except in /31 and /32);
    // IPv6: the subnet-router anycast address (the subnet's first) is not handed out either.
    const subnetLast = lastAddress(this.subnet);
    if (first === this.subnet.network && (this.subnet.family === 6 || this.subnet.prefixLen < 31)) first += 1n;
    if (this.subnet.family === 4 && this.subnet.prefixLen < 31 && last === subnetLast) last -= 1n;
    this.first = first;
    this.last = last;
    this.cursor = first - 1n;
    const gw = parseIp(spec.gateway);
    if (gw) this.used.set(gw.value, '');
    for (const a of Object.values(spec.auxAddresses ?? {})) {
      const ip = parseIp(a);
      if (ip) this.used.set(ip.value, '');
    }
  }

  get family(): IpFamily {
    return this.subnet.family;
  }

  /** Next free address after the last one handed out, wrapping once; undefined when full. */
  next(): bigint | undefined {
    const size = this.last - this.first + 1n;
    if (size <= 0n) return undefined;
    // A bounded scan: a full IPv4 /16 is 65k probes at worst; IPv6 ranges are never dense.
    const limit = size < 1n << 20n ? size : 1n << 20n;
    let candidate = this.cursor;
    for (let i = 0n; i < limit; i++) {
      candidate = candidate >= this.last || candidate < this.first ? this.first : candidate + 1n;
      if (!this.used.has(candidate)) return candidate;
    }
    return undefined;
  }

  take(value: bigint, owner: string, dynamic: boolean): void {
    this.used.set(value, owner);
    if (dynamic) this.cursor = value;
  }
}

export interface AllocateRequest {
  family: IpFamily;
  /** The endpoint the address belongs to (so release never frees someone else's). */
  owner: string;
  /** A static address (`--ip`); otherwise the next free one. */
  address?: string;
  /** Field path for error messages ("EndpointsConfig.net1.IPAMConfig.IPv4Address"). */
  field?: string;
}

/** Address pools of every bridge network, keyed by network id. */
export class Ipam {
  private readonly pools = new Map<string, Pool[]>();

  /** (Re)defines a network's pools; addresses already reserved in it are dropped. */
  addNetwork(networkId: string, networkName: string, subnets: Subnet[]): void {
    this.pools.set(
      networkId,
      subnets.map((s) => new Pool(s, networkName)),
    );
  }

  removeNetwork(networkId: string): void {
    this.pools.delete(networkId);
  }

  hasFamily(networkId: string, family: IpFamily): boolean {
    return (this.pools.get(networkId) ?? []).some((p) => p.family === family);
  }

  /** An address for `owner`: the static one if asked (checked: in a subnet, free), else the next free. */
  allocate(networkId: string, req: AllocateRequest): AddressAssignment {
    const pools = (this.pools.get(networkId) ?? []).filter((p) => p.family === req.family);
    const label = req.family === 4 ? 'IPv4' : 'IPv6';
    const name = this.pools.get(networkId)?.[0]?.networkName ?? networkId;
    if (pools.length === 0) {
      throw new BerthError('InvalidArgument', `network ${name} has no ${label} subnet${req.address ? `, so ${req.address} cannot be assigned` : ''}`, {
        hint: req.family === 6 ? 'create the network with --ipv6 (and an IPv6 subnet)' : 'create the network with an IPv4 subnet',
      });
    }
    if (req.address !== undefined) {
      const ip = parseIp(req.address);
      const where = req.field ? `${req.field}: ` : '';
      if (!ip || ip.family !== req.family) {
        throw new BerthError('InvalidArgument', `${where}"${req.address}" is not an ${label} address`);
      }
      const pool = pools.find((p) => cidrContains(p.subnet, ip));
      if (!pool) {
        throw new BerthError('InvalidArgument', `${where}address ${req.address} is outside network ${name}'s subnets (${pools.map((p) => p.spec.subnet).join(', ')})`, {
          hint: 'pick an address inside the subnet, or leave it out to get one assigned',
        });
      }
      if (ip.value === pool.subnet.network || (pool.family === 4 && pool.subnet.prefixLen < 31 && ip.value === lastAddress(pool.subnet))) {
        throw new BerthError('InvalidArgument', `${where}address ${req.address} is the network or broadcast address of ${pool.spec.subnet}`);
      }
      const holder = pool.used.get(ip.value);
      if (holder !== undefined && holder !== req.owner) {
        throw new BerthError('Conflict', `${where}address ${req.address} is already in use on network ${name}${holder === '' ? ' (the gateway or a reserved address)' : ''}`, {
          hint: 'pick another address, or leave it out to get one assigned',
        });
      }
      pool.take(ip.value, req.owner, false);
      return { address: formatIp(pool.family, ip.value), prefixLen: pool.subnet.prefixLen, gateway: pool.spec.gateway };
    }
    for (const pool of pools) {
      const value = pool.next();
      if (value === undefined) continue;
      pool.take(value, req.owner, true);
      return { address: formatIp(pool.family, value), prefixLen: pool.subnet.prefixLen, gateway: pool.spec.gateway };
    }
    throw new BerthError('Unavailable', `network ${name} has no free ${label} address left (${pools.map((p) => p.spec.ipRange ?? p.spec.subnet).join(', ')})`, {
      hint: 'remove containers from it, or create a network with a larger subnet',
    });
  }

  /** Marks an address as held by `owner` (restore). False when it is outside the pools or held by another. */
  reserve(networkId: string, address: string, owner: string): boolean {
    const ip = parseIp(address);
    const pool = ip && (this.pools.get(networkId) ?? []).find((p) => cidrContains(p.subnet, ip));
    if (!ip || !pool) return false;
    const holder = pool.used.get(ip.value);
    if (holder !== undefined && holder !== owner) return false;
    pool.take(ip.value, owner, true);
    return true;
  }

  /** Frees the address if `owner` holds it; anything else is left alone (idempotent). */
  release(networkId: string, address: string, owner: string): void {
    const ip = parseIp(address);
    if (!ip) return;
    for (const pool of this.pools.get(networkId) ?? []) {
      if (cidrContains(pool.subnet, ip) && pool.used.get(ip.value) === owner) pool.used.delete(ip.value);
    }
  }

  /** Who holds the address (an endpoint id, '' for gateway/aux), or undefined when free. */
  holder(networkId: string, address: string): string | undefined {
    const ip = parseIp(address);
    if (!ip) return undefined;
    for (const pool of this.pools.get(networkId) ?? []) {
      if (cidrContains(pool.subnet, ip)) return pool.used.get(ip.value);
    }
    return undefined;
  }
}
