// Default subnets: chosen so they collide neither with other networks nor with what the
// host already routes or owns, and away from Docker's (172.17–31.x, 192.168.x) and
// Podman's (10.88/10.89+) defaults.
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { BerthError } from '../errors.js';
import { formatCidr, formatIp, overlaps, parseCidr } from './ipam.js';

export const DEFAULT_BRIDGE_SUBNET = '10.87.0.0/16';
/** The default bridge's fallbacks: /16s of 10.80.0.0/13, from the top down. */
export const DEFAULT_BRIDGE_FALLBACK = '10.80.0.0/13';
/** User networks get /24s from here, from the bottom up. */
export const USER_POOL = '10.80.0.0/14';
/** IPv6 without a subnet: fd8b:e47b:0:N::/64. */
export const IPV6_POOL = 'fd8b:e47b::/48';

/** What the host already uses: subnets must not overlap any of these. CIDR text. */
export interface HostNetworks {
  routes: string[];
  addresses: string[];
}

function hexToV4(hex: string): bigint {
  // /proc/net/route prints the address as the host-order (little-endian) u32.
  const n = parseInt(hex, 16);
  return BigInt(((n & 0xff) << 24) >>> 0) + BigInt((n >>> 8) & 0xff) * 65536n + BigInt((n >>> 16) & 0xff) * 256n + BigInt((n >>> 24) & 0xff);
}

function maskLen(hex: string): number {
  let n = parseInt(hex, 16);
  let len = 0;
  while (n) {
    len += n & 1;
    n >>>= 1;
  }
  return len;
}

/** IPv4 routes from /proc/net/route text, except default routes and those through `skipIface`. */
export function parseProcRoute(text: string, skipIface: (name: string) => boolean = () => false): string[] {
  const out: string[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || skipIface(f[0]!)) continue;
    const len = maskLen(f[7]!);
    if (len === 0) continue;
    out.push(formatCidr({ family: 4, network: hexToV4(f[1]!), prefixLen: len }));
  }
  return out;
}

/** IPv6 routes from /proc/net/ipv6_route text, except default, link-local, multicast and loopback routes. */
export function parseProcIpv6Route(text: string, skipIface: (name: string) => boolean = () => false): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || skipIface(f[9]!) || f[9] === 'lo') continue;
    const len = parseInt(f[1]!, 16);
    if (len === 0) continue;
    const cidr = parseCidr(`${formatIp(6, BigInt('0x' + f[0]!))}/${len}`);
    if (!cidr || cidr.network >> 118n === 0x3fan || cidr.network >> 120n === 0xffn) continue;
    out.push(formatCidr(cidr));
  }
  return out;
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * The host's routes (/proc/net/route, /proc/net/ipv6_route) and interface addresses
 * (getifaddrs through os.networkInterfaces: no process, no netlink). `skipIface` leaves out
 * berth's own bridges, whose routes are other networks (checked separately).
 */
export function readHostNetworks(opts: { procNet?: string; skipIface?: (name: string) => boolean } = {}): HostNetworks {
  const procNet = opts.procNet ?? '/proc/net';
  const skip = opts.skipIface ?? (() => false);
  const routes = [...parseProcRoute(readOr(`${procNet}/route`), skip), ...parseProcIpv6Route(readOr(`${procNet}/ipv6_route`), skip)];
  const addresses: string[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (skip(name) || name === 'lo') continue;
    for (const a of addrs ?? []) {
      if (a.internal || (a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80'))) continue;
      addresses.push(a.family === 'IPv4' ? `${a.address}/32` : `${a.address.split('%')[0]}/128`);
    }
  }
  return { routes, addresses };
}

function free(candidate: string, taken: string[]): boolean {
  return !taken.some((t) => overlaps(candidate, t));
}

function hostTaken(host: HostNetworks): string[] {
  return [...host.routes, ...host.addresses];
}

/** 10.87.0.0/16 unless taken, then the first free /16 of 10.80.0.0/13 from the top down. */
export function chooseDefaultBridgeSubnet(networks: string[], host: HostNetworks): string {
  const taken = [...networks, ...hostTaken(host)];
  if (free(DEFAULT_BRIDGE_SUBNET, taken)) return DEFAULT_BRIDGE_SUBNET;
  const pool = parseCidr(DEFAULT_BRIDGE_FALLBACK)!;
  for (let i = 7n; i >= 0n; i--) {
    const c = formatCidr({ family: 4, network: pool.network + (i << 16n), prefixLen: 16 });
    if (free(c, taken)) return c;
  }
  throw new BerthError('Unavailable', `no free /16 for the default bridge network in ${DEFAULT_BRIDGE_FALLBACK}: every one overlaps a host route, a host address or another network`, {
    hint: 'set the default bridge subnet in berth.json',
  });
}

/** The first /24 of 10.80.0.0/14 that overlaps nothing. */
export function chooseUserSubnet(networks: string[], host: HostNetworks): string {
  const taken = [...networks, ...hostTaken(host)];
  const pool = parseCidr(USER_POOL)!;
  for (let i = 0n; i < 1024n; i++) {
    const c = formatCidr({ family: 4, network: pool.network + (i << 8n), prefixLen: 24 });
    if (free(c, taken)) return c;
  }
  throw new BerthError('Unavailable', `no free /24 left in berth's pool ${USER_POOL} for a new network`, {
    hint: 'remove unused networks (network prune), or give the network a subnet',
  });
}

/** The first fd8b:e47b:0:N::/64 (N ≥ 1) that overlaps nothing. */
export function chooseIpv6Subnet(networks: string[], host: HostNetworks): string {
  const taken = [...networks, ...hostTaken(host)];
  const pool = parseCidr(IPV6_POOL)!;
  for (let n = 1n; n < 0x10000n; n++) {
    const c = formatCidr({ family: 6, network: pool.network + (n << 64n), prefixLen: 64 });
    if (free(c, taken)) return c;
  }
  throw new BerthError('Unavailable', `no free IPv6 /64 left in ${IPV6_POOL}`, { hint: 'give the network an IPv6 subnet' });
}
