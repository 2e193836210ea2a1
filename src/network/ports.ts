// Host ports for published container ports. Published ports are DNAT rules, not sockets, so
// the allocator is what keeps two sandboxes (or a sandbox and a host service) off one port:
// it remembers every sandbox's mappings and probes the host with a short bind.
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { isIPv4, isIPv6 } from 'node:net';
import { BerthError } from '../errors.js';
import type { PortMapping, PortProtocol, PortRequest } from './types.js';

export interface PortRange {
  start: number;
  end: number;
}

export interface PortProbe {
  hostIp: string;
  hostPort: number;
  protocol: PortProtocol;
}

export interface PortAllocatorOptions {
  /** Where ports without a hostPort come from; default /proc/sys/net/ipv4/ip_local_port_range. */
  range?: PortRange;
  /** Whether nothing on the host listens there; default: bind a socket there and close it. */
  isFree?: (p: PortProbe) => Promise<boolean>;
}

/** Random picks for a port without hostPort before giving up (the range may be nearly full). */
const RANDOM_TRIES = 64;
const FALLBACK_RANGE: PortRange = { start: 32768, end: 60999 };

export function readEphemeralRange(path = '/proc/sys/net/ipv4/ip_local_port_range'): PortRange {
  try {
    const [start, end] = readFileSync(path, 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(start) && Number.isInteger(end) && start! >= 1 && start! <= end! && end! <= 65535) return { start: start!, end: end! };
  } catch {
    // no /proc (tests, odd hosts): the kernel's default range
  }
  return FALLBACK_RANGE;
}

/** Canonical text for comparing addresses: "::" and "0:0::0" are one address. */
function canonical(ip: string): string {
  if (isIPv4(ip)) return ip;
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

function family(ip: string): 4 | 6 {
  return isIPv4(ip) ? 4 : 6;
}

function isWildcard(ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::';
}

/** 0.0.0.0 covers every IPv4 address and :: every IPv6 address (DNAT is per family). */
export function hostIpsOverlap(a: string, b: string): boolean {
  if (family(a) !== family(b)) return false;
  return a === b || isWildcard(a) || isWildcard(b);
}

function describe(hostPort: number, protocol: PortProtocol, hostIp: string): string {
  return `port ${hostPort}/${protocol} on ${hostIp}`;
}

/** Binds a socket of the protocol on ip:port and closes it: false when something holds it. */
export async function hostPortFree(p: PortProbe): Promise<boolean> {
  const v6 = family(p.hostIp) === 6;
  const outcome = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    if (p.protocol === 'tcp') {
      const server = createServer();
      server.once('error', (err: NodeJS.ErrnoException) => resolve(err));
      server.listen({ host: p.hostIp, port: p.hostPort, ipv6Only: v6, exclusive: true }, () => server.close(() => resolve(null)));
    } else if (p.protocol === 'udp') {
      const socket = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        socket.close();
        resolve(err);
      });
      socket.bind({ address: p.hostIp, port: p.hostPort, exclusive: true }, () => socket.close(() => resolve(null)));
    } else {
      // Node has no SCTP sockets: only berth's own table of mappings guards SCTP ports.
      resolve(null);
    }
  });
  if (outcome === null) return true;
  if (outcome.code === 'EADDRINUSE' || outcome.code === 'EACCES') return false;
  if (outcome.code === 'EADDRNOTAVAIL') {
    throw new BerthError('InvalidArgument', `cannot publish ${describe(p.hostPort, p.protocol, p.hostIp)}: ${p.hostIp} is not an address of this host`, {
      hint: 'give one of the host\'s addresses, or none to publish on all of them',
    });
  }
  throw new BerthError('Unavailable', `cannot check ${describe(p.hostPort, p.protocol, p.hostIp)}: ${outcome.message}`, { cause: outcome });
}

export class PortAllocator {
  private readonly range: PortRange;
  private readonly isFree: (p: PortProbe) => Promise<boolean>;
  private readonly owned = new Map<string, PortMapping[]>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: PortAllocatorOptions = {}) {
    this.range = opts.range ?? readEphemeralRange();
    if (!(Number.isInteger(this.range.start) && Number.isInteger(this.range.end) && this.range.start >= 1 && this.range.start <= this.range.end && this.range.end <= 65535)) {
      throw new BerthError('InvalidArgument', `port range ${this.range.start}-${this.range.end} is not a range of ports (1-65535)`);
    }
    this.isFree = opts.isFree ?? hostPortFree;
  }

  /**
   * Host ports for every request, or none (Conflict naming the port). A request without hostIp
   * gets 0.0.0.0, plus :: when ipv6, on one port number. Calls are serialised: two sandboxes
   * starting together cannot pick the same port.
   */
  allocate(sandboxId: string, requests: PortRequest[], opts: { ipv6: boolean }): Promise<PortMapping[]> {
    const run = this.queue.then(() => this.allocateNow(sandboxId, requests, opts));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The sandbox's ports become free (idempotent). */
  release(sandboxId: string): void {
    this.owned.delete(sandboxId);
  }

  /** Records mappings set up before a restart; no checks, the kernel already has them. */
  restore(sandboxId: string, mappings: PortMapping[]): void {
    this.owned.set(sandboxId, mappings.map((m) => ({ ...m, hostIp: canonical(m.hostIp) })));
  }

  /** The mappings a sandbox holds. */
  mappings(sandboxId: string): PortMapping[] {
    return [...(this.owned.get(sandboxId) ?? [])];
  }

  private async allocateNow(sandboxId: string, requests: PortRequest[], opts: { ipv6: boolean }): Promise<PortMapping[]> {
    const picked: PortMapping[] = [];
    for (const [i, req] of requests.entries()) {
      const hostIps = this.hostIps(req, i, opts.ipv6);
      this.checkRequest(req, i);
      const port = req.hostPort ? await this.firstFree(sandboxId, req, hostIps, picked) : await this.randomFree(sandboxId, req, hostIps, picked);
      for (const hostIp of hostIps) picked.push({ containerPort: req.containerPort, protocol: req.protocol, hostIp, hostPort: port });
    }
    const previous = this.owned.get(sandboxId) ?? [];
    this.owned.set(sandboxId, [...previous, ...picked]);
    return picked;
  }

  private hostIps(req: PortRequest, index: number, ipv6: boolean): string[] {
    if (req.hostIp === undefined || req.hostIp === '') return ipv6 ? ['0.0.0.0', '::'] : ['0.0.0.0'];
    if ((!isIPv4(req.hostIp) && !isIPv6(req.hostIp)) || req.hostIp.includes('%')) {
      throw new BerthError('InvalidArgument', `ports[${index}].hostIp "${req.hostIp}" is not an IP address`);
    }
    return [canonical(req.hostIp)];
  }

  private checkRequest(req: PortRequest, index: number): void {
    const field = `ports[${index}]`;
    const isPort = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 65535;
    if (!isPort(req.containerPort)) throw new BerthError('InvalidArgument', `${field}.containerPort ${req.containerPort} is not a port (1-65535)`);
    if (!['tcp', 'udp', 'sctp'].includes(req.protocol)) throw new BerthError('InvalidArgument', `${field}.protocol "${String(req.protocol)}" is not tcp, udp or sctp`);
    if (req.hostPort && !(isPort(req.hostPort.start) && isPort(req.hostPort.end) && req.hostPort.start <= req.hostPort.end)) {
      throw new BerthError('InvalidArgument', `${field}.hostPort ${req.hostPort.start}-${req.hostPort.end} is not a port range within 1-65535`);
    }
  }

  /** Who holds port/proto on an address overlapping hostIp: a sandbox id, "this request", or undefined. */
  private holder(sandboxId: string, probe: PortProbe, picked: PortMapping[]): string | undefined {
    const clash = (m: PortMapping): boolean => m.hostPort === probe.hostPort && m.protocol === probe.protocol && hostIpsOverlap(m.hostIp, probe.hostIp);
    if (picked.some(clash)) return `another port of ${sandboxId}`;
    for (const [owner, mappings] of this.owned) if (mappings.some(clash)) return owner;
    return undefined;
  }

  /** Why the port cannot be used on every address, or undefined when it can. */
  private async unavailable(sandboxId: string, req: PortRequest, hostIps: string[], port: number, picked: PortMapping[]): Promise<string | undefined> {
    for (const hostIp of hostIps) {
      const probe = { hostIp, hostPort: port, protocol: req.protocol };
      const owner = this.holder(sandboxId, probe, picked);
      if (owner !== undefined) return `${describe(port, req.protocol, hostIp)} is already published by ${owner}`;
    }
    for (const hostIp of hostIps) {
      if (!(await this.isFree({ hostIp, hostPort: port, protocol: req.protocol }))) {
        return `${describe(port, req.protocol, hostIp)} is already in use by a process on the host`;
      }
    }
    return undefined;
  }

  private async firstFree(sandboxId: string, req: PortRequest, hostIps: string[], picked: PortMapping[]): Promise<number> {
    const { start, end } = req.hostPort!;
    let firstReason: string | undefined;
    for (let port = start; port <= end; port++) {
      const reason = await this.unavailable(sandboxId, req, hostIps, port, picked);
      if (reason === undefined) return port;
      firstReason ??= reason;
    }
    if (start === end) throw new BerthError('Conflict', firstReason!, { hint: 'choose another host port, or leave it out for a free one' });
    throw new BerthError('Conflict', `no free port in ${start}-${end}/${req.protocol} on ${hostIps.join(' and ')} (${firstReason})`, {
      hint: 'widen the range, or leave the host port out for a free one',
    });
  }

  private async randomFree(sandboxId: string, req: PortRequest, hostIps: string[], picked: PortMapping[]): Promise<number> {
    const { start, end } = this.range;
    const tried = new Set<number>();
    const tries = Math.min(RANDOM_TRIES, end - start + 1);
    while (tried.size < tries) {
      const port = randomInt(start, end + 1);
      if (tried.has(port)) continue;
      tried.add(port);
      if ((await this.unavailable(sandboxId, req, hostIps, port, picked)) === undefined) return port;
    }
    throw new BerthError('Unavailable', `no free host port for ${req.containerPort}/${req.protocol} in ${start}-${end} after ${tries} tries`, {
      hint: 'free some published ports, or give a host port',
    });
  }
}
