// berth's nftables table (`inet berth`): forward filtering between networks, masquerade,
// published ports (DNAT) and the embedded DNS redirect. Per-network and per-sandbox facts live
// in named sets and maps, and per-network filter rules in a chain per network reached through
// a verdict map keyed by bridge, so that each change is a handful of element/chain operations
// in ONE nft transaction and the base chains never change after sync().
//
// Coexistence: nftables runs every base chain on a hook; an accept in ours does not stop a drop
// in another table. When iptables' FORWARD policy is DROP (Docker), berth therefore inserts its
// own accept rules there, marked with a comment, and only ever deletes rules bearing that mark.
import { isIPv4, isIPv6 } from 'node:net';
import { BerthError, attachCleanupError } from '../errors.js';
import { applyNft, listNftTable, runIptables, type CommandResult, type IptablesRunner, type NftListing } from '../host/nft.js';
import type { PortMapping, PortProtocol } from './types.js';

export type { IptablesRunner, CommandResult } from '../host/nft.js';

export interface FirewallNetwork {
  id: string;
  /** The Linux bridge (≤ 15 bytes). */
  bridge: string;
  /** CIDR, IPv4 and IPv6. */
  subnets: string[];
  internal: boolean;
  masquerade: boolean;
  icc: boolean;
  /** The embedded DNS listens on gateway:port instead of gateway:53: containers' queries to gateway:53 are redirected there. */
  dnsRedirect?: { gateway: string; port: number }[];
}

export interface FirewallPorts {
  sandboxId: string;
  bridge: string;
  containerIpv4?: string;
  containerIpv6?: string;
  mappings: PortMapping[];
}

export interface FirewallState {
  networks: FirewallNetwork[];
  ports: FirewallPorts[];
}

export interface FirewallOptions {
  /** Applies one nft script as one transaction; default: applyNft (the addon, else `nft -f -`). */
  apply?: (nftText: string) => void | Promise<void>;
  iptables?: IptablesRunner;
  warn?: (m: string) => void;
  /** The inet table's name, default "berth"; also the comment marking iptables rules. Tests use their own. */
  table?: string;
  /** Lists a table (null when absent); default listNftTable. Only asked before the first sync. */
  list?: (family: string, name: string) => Promise<NftListing | null>;
}

export interface RenderOptions {
  table?: string;
}

const DEFAULT_TABLE = 'berth';
const PROTOCOLS: readonly PortProtocol[] = ['tcp', 'udp', 'sctp'];

type SetName =
  | 'bridges'
  | 'subnets4'
  | 'subnets6'
  | 'masq4'
  | 'masq6'
  | 'fwd_from'
  | 'fwd_to'
  | 'dns4'
  | 'dns6'
  | 'pub4_ip'
  | 'pub4_any'
  | 'pub6_ip'
  | 'pub6_any';

/** Declaration order is listing order; each set's purpose is in the rule that reads it. */
const SETS: readonly [SetName, string][] = [
  ['bridges', 'type ifname;'],
  ['subnets4', 'type ipv4_addr; flags interval;'],
  ['subnets6', 'type ipv6_addr; flags interval;'],
  ['masq4', 'type ipv4_addr; flags interval;'],
  ['masq6', 'type ipv6_addr; flags interval;'],
  ['fwd_from', 'type ifname : verdict;'],
  ['fwd_to', 'type ifname : verdict;'],
  ['dns4', 'type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service;'],
  ['dns6', 'type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service;'],
  ['pub4_ip', 'type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service;'],
  ['pub4_any', 'type inet_proto . inet_service : ipv4_addr . inet_service;'],
  ['pub6_ip', 'type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service;'],
  ['pub6_any', 'type inet_proto . inet_service : ipv6_addr . inet_service;'],
];

const MAP_KIND = new Set<SetName>(['fwd_from', 'fwd_to', 'dns4', 'dns6', 'pub4_ip', 'pub4_any', 'pub6_ip', 'pub6_any']);

/**
 * Base chains. Priorities are the standard ones, written out: other tables' chains on the same
 * hooks (iptables-nft, podman's netavark) run beside ours, and NAT is bound by the first
 * chain that translates a new connection.
 */
const BASE_CHAINS: readonly { name: string; hook: string; rules: string[] }[] = [
  {
    name: 'forward',
    hook: 'type filter hook forward priority filter; policy accept;',
    rules: [
      // Drops first (isolation, internal, icc), per network, so that no accept can bypass them.
      'iifname vmap @fwd_from',
      'oifname vmap @fwd_to',
      'oifname @bridges ct state established,related accept',
      'iifname @bridges accept',
    ],
  },
  {
    // route_localnet=1 on a bridge (for DNAT from 127.0.0.1) would also let containers reach the
    // host's loopback services and spoof loopback sources: what the kernel drops as martians
    // without it stays dropped. Before conntrack, so replies to 127.0.0.1 (still addressed to
    // the gateway, un-NATed later) pass.
    name: 'guard',
    hook: 'type filter hook prerouting priority raw; policy accept;',
    rules: ['iifname @bridges ip daddr 127.0.0.0/8 drop', 'iifname @bridges ip saddr 127.0.0.0/8 drop'],
  },
  {
    name: 'prerouting',
    hook: 'type nat hook prerouting priority dstnat; policy accept;',
    rules: [
      // Before the published ports: a port published on 0.0.0.0:53 must not capture containers' DNS.
      'iifname @bridges meta nfproto ipv4 dnat ip to ip daddr . meta l4proto . th dport map @dns4',
      'iifname @bridges meta nfproto ipv6 dnat ip6 to ip6 daddr . meta l4proto . th dport map @dns6',
      'fib daddr type local jump published',
    ],
  },
  {
    // Connections the host itself makes to its own addresses, 127.0.0.1 included (the bridge
    // needs route_localnet=1 for those to leave by it). ::1 is never translated: the kernel
    // refuses to route a packet from ::1 off the loopback, so such a connection could only hang.
    name: 'output',
    hook: 'type nat hook output priority -100; policy accept;',
    rules: ['ip6 daddr ::1 return', 'fib daddr type local jump published'],
  },
  {
    name: 'published',
    hook: '',
    rules: [
      'meta nfproto ipv4 dnat ip to ip daddr . meta l4proto . th dport map @pub4_ip',
      'meta nfproto ipv4 dnat ip to meta l4proto . th dport map @pub4_any',
      'meta nfproto ipv6 dnat ip6 to ip6 daddr . meta l4proto . th dport map @pub6_ip',
      'meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @pub6_any',
    ],
  },
  {
    name: 'postrouting',
    hook: 'type nat hook postrouting priority srcnat; policy accept;',
    rules: [
      // A connection to a published port on 127.0.0.1 keeps its source: the container could not answer it.
      'ip saddr 127.0.0.0/8 oifname @bridges masquerade',
      // Hairpin (a container reaching itself, or a neighbour on its bridge, through a published
      // port): without it the answer goes straight back over the bridge, un-NATed.
      'ct status dnat oifname @bridges ip saddr @subnets4 masquerade',
      'ct status dnat oifname @bridges ip6 saddr @subnets6 masquerade',
      'oifname != @bridges ip saddr @masq4 masquerade',
      'oifname != @bridges ip6 saddr @masq6 masquerade',
    ],
  },
];

type Elements = Map<SetName, string[]>;

interface NftChain {
  name: string;
  rules: string[];
}

/** What one network or one sandbox contributes to the table. */
interface Parts {
  chains: NftChain[];
  elements: Elements;
  /** Mappings that cannot be set up, said why. */
  skipped: string[];
}

function invalid(message: string, hint?: string): BerthError {
  return new BerthError('InvalidArgument', message, hint === undefined ? {} : { hint });
}

function checkIfname(name: string, field: string): void {
  if (!/^[^\s"'\\/]+$/.test(name) || Buffer.byteLength(name) > 15) {
    throw invalid(`firewall: ${field} "${name}" is not a valid interface name`, 'at most 15 bytes, no spaces, quotes or slashes');
  }
}

function checkTable(name: string): void {
  if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(name)) throw invalid(`firewall: table name "${name}" is not valid`, 'letters, digits and _');
}

function checkId(id: string, field: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id)) throw invalid(`firewall: ${field} "${id}" is not a valid id`, 'letters, digits, _ . -');
}

function checkPort(port: number, field: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(`firewall: ${field} ${port} is not a port (1-65535)`);
}

function checkAddress(address: string, field: string, family?: 4 | 6): 4 | 6 {
  const f = isIPv4(address) ? 4 : isIPv6(address) && !address.includes('%') ? 6 : 0;
  if (f === 0 || (family !== undefined && f !== family)) {
    throw invalid(`firewall: ${field} "${address}" is not an IPv${family ?? '4 or IPv6'} address`);
  }
  return f;
}

/** "10.87.0.5/16" → ["10.87.0.0/16", 4]; refuses anything nft could misread. */
export function normalizeCidr(cidr: string, field: string): [string, 4 | 6] {
  const slash = cidr.indexOf('/');
  const addr = slash < 0 ? cidr : cidr.slice(0, slash);
  const family = checkAddress(addr, field);
  const bits = family === 4 ? 32 : 128;
  const lenText = slash < 0 ? String(bits) : cidr.slice(slash + 1);
  const len = /^\d{1,3}$/.test(lenText) ? Number(lenText) : NaN;
  if (!(len >= 0 && len <= bits)) throw invalid(`firewall: ${field} "${cidr}" has no valid prefix length`);
  const value = family === 4 ? v4ToBig(addr) : v6ToBig(addr);
  const mask = len === 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(bits - len);
  const net = value & mask;
  return [`${family === 4 ? bigToV4(net) : bigToV6(net)}/${len}`, family];
}

function v4ToBig(a: string): bigint {
  return a.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function bigToV4(v: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join('.');
}

function v6ToBig(a: string): bigint {
  let text = a;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    const v4 = v4ToBig(text.slice(lastColon + 1));
    text = `${text.slice(0, lastColon)}:${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function bigToV6(v: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function chainFrom(id: string): string {
  return `net-${id}`;
}

function chainTo(id: string): string {
  return `net-${id}-in`;
}

function push(elements: Elements, set: SetName, element: string): void {
  const list = elements.get(set);
  if (list) list.push(element);
  else elements.set(set, [element]);
}

function networkParts(n: FirewallNetwork): Parts {
  checkId(n.id, 'network id');
  checkIfname(n.bridge, `network ${n.id}: bridge`);
  const b = JSON.stringify(n.bridge);
  const elements: Elements = new Map();
  const from: string[] = [];
  if (n.internal) {
    from.push(`oifname != ${b} drop`);
  } else {
    // A published port is public: isolation and icc stop direct connections only (as netavark
    // since containers/netavark#1483 and the fix of moby#38784), not those made through a host port.
    from.push('ct status dnat return', `oifname @bridges oifname != ${b} drop`);
  }
  if (!n.icc) from.push(`oifname ${b} drop`);
  const chains: NftChain[] = [{ name: chainFrom(n.id), rules: from }];
  push(elements, 'bridges', b);
  push(elements, 'fwd_from', `${b} : jump ${chainFrom(n.id)}`);
  if (n.internal) {
    chains.push({ name: chainTo(n.id), rules: [`iifname != ${b} drop`] });
    push(elements, 'fwd_to', `${b} : jump ${chainTo(n.id)}`);
  }
  n.subnets.forEach((s, i) => {
    const [cidr, family] = normalizeCidr(s, `network ${n.id}: subnets[${i}]`);
    push(elements, family === 4 ? 'subnets4' : 'subnets6', cidr);
    if (n.masquerade && !n.internal) push(elements, family === 4 ? 'masq4' : 'masq6', cidr);
  });
  (n.dnsRedirect ?? []).forEach((r, i) => {
    const family = checkAddress(r.gateway, `network ${n.id}: dnsRedirect[${i}].gateway`);
    checkPort(r.port, `network ${n.id}: dnsRedirect[${i}].port`);
    for (const proto of ['udp', 'tcp']) push(elements, family === 4 ? 'dns4' : 'dns6', `${r.gateway} . ${proto} . 53 : ${r.gateway} . ${r.port}`);
  });
  return { chains, elements, skipped: [] };
}

function portsParts(p: FirewallPorts): Parts {
  checkId(p.sandboxId, 'sandbox id');
  checkIfname(p.bridge, `sandbox ${p.sandboxId}: bridge`);
  if (p.containerIpv4 !== undefined) checkAddress(p.containerIpv4, `sandbox ${p.sandboxId}: containerIpv4`, 4);
  if (p.containerIpv6 !== undefined) checkAddress(p.containerIpv6, `sandbox ${p.sandboxId}: containerIpv6`, 6);
  const elements: Elements = new Map();
  const skipped: string[] = [];
  p.mappings.forEach((m, i) => {
    const field = `sandbox ${p.sandboxId}: mappings[${i}]`;
    checkPort(m.hostPort, `${field}.hostPort`);
    checkPort(m.containerPort, `${field}.containerPort`);
    if (!PROTOCOLS.includes(m.protocol)) throw invalid(`firewall: ${field}.protocol "${String(m.protocol)}" is not tcp, udp or sctp`);
    const family = checkAddress(m.hostIp, `${field}.hostIp`);
    const what = `${m.hostIp}:${m.hostPort}/${m.protocol}`;
    const target = family === 4 ? p.containerIpv4 : p.containerIpv6;
    if (target === undefined) {
      skipped.push(`${what}: sandbox ${p.sandboxId} has no IPv${family} address`);
      return;
    }
    if (family === 6 && v6ToBig(m.hostIp) === 1n) {
      skipped.push(`${what}: the kernel does not route ::1 to another host, publish on :: or another address`);
      return;
    }
    const wildcard = m.hostIp === '0.0.0.0' || (family === 6 && v6ToBig(m.hostIp) === 0n);
    const value = `${target} . ${m.containerPort}`;
    if (wildcard) push(elements, family === 4 ? 'pub4_any' : 'pub6_any', `${m.protocol} . ${m.hostPort} : ${value}`);
    else push(elements, family === 4 ? 'pub4_ip' : 'pub6_ip', `${m.hostIp} . ${m.protocol} . ${m.hostPort} : ${value}`);
  });
  return { chains: [], elements, skipped };
}

function mergeParts(all: Parts[]): Parts {
  const elements: Elements = new Map();
  const chains: NftChain[] = [];
  const skipped: string[] = [];
  for (const p of all) {
    chains.push(...p.chains);
    skipped.push(...p.skipped);
    for (const [set, list] of p.elements) for (const e of list) push(elements, set, e);
  }
  return { chains, elements, skipped };
}

function stateParts(state: FirewallState): Parts {
  const ids = new Set<string>();
  const bridges = new Set<string>();
  for (const n of state.networks) {
    if (ids.has(n.id)) throw invalid(`firewall: network ${n.id} is given twice`);
    if (bridges.has(n.bridge)) throw invalid(`firewall: bridge ${n.bridge} belongs to two networks`);
    ids.add(n.id);
    bridges.add(n.bridge);
  }
  const sandboxes = new Set<string>();
  for (const p of state.ports) {
    if (sandboxes.has(p.sandboxId)) throw invalid(`firewall: ports of sandbox ${p.sandboxId} are given twice`);
    sandboxes.add(p.sandboxId);
  }
  return mergeParts([...state.networks.map(networkParts), ...state.ports.map(portsParts)]);
}

function renderParts(parts: Parts, table: string): string {
  const lines = [`table inet ${table} {`];
  for (const [name, type] of SETS) {
    const kind = MAP_KIND.has(name) ? 'map' : 'set';
    const elems = parts.elements.get(name);
    const body = elems && elems.length > 0 ? ` elements = { ${elems.join(', ')} }` : '';
    lines.push(`\t${kind} ${name} { ${type}${body} }`);
  }
  for (const c of parts.chains) {
    lines.push(`\tchain ${c.name} {`, ...c.rules.map((r) => `\t\t${r}`), '\t}');
  }
  for (const c of BASE_CHAINS) {
    lines.push(`\tchain ${c.name} {`);
    if (c.hook) lines.push(`\t\t${c.hook}`);
    lines.push(...c.rules.map((r) => `\t\t${r}`), '\t}');
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

/** The nft text of the whole table for a state (no flush: sync() prepends the replacement). */
export function renderTable(state: FirewallState, opts: RenderOptions = {}): string {
  const table = opts.table ?? DEFAULT_TABLE;
  checkTable(table);
  return renderParts(stateParts(state), table);
}

/** `add table` first so that `delete table` cannot fail: the whole table is replaced atomically. */
function replaceText(parts: Parts, table: string): string {
  return `add table inet ${table}\ndelete table inet ${table}\n${renderParts(parts, table)}`;
}

function elementLines(verb: 'add' | 'delete', elements: Elements, table: string): string[] {
  const lines: string[] = [];
  for (const [name] of SETS) {
    const list = elements.get(name);
    if (list && list.length > 0) lines.push(`${verb} element inet ${table} ${name} { ${list.join(', ')} }`);
  }
  return lines;
}

/** Undo: elements first (the verdict maps reference the chains), then the chains, emptied. */
function removeLines(parts: Parts, table: string): string[] {
  const lines = elementLines('delete', parts.elements, table);
  for (const c of parts.chains) lines.push(`flush chain inet ${table} ${c.name}`, `delete chain inet ${table} ${c.name}`);
  return lines;
}

function addLines(parts: Parts, table: string): string[] {
  const lines: string[] = [];
  for (const c of parts.chains) {
    lines.push(`add chain inet ${table} ${c.name}`);
    for (const r of c.rules) lines.push(`add rule inet ${table} ${c.name} ${r}`);
  }
  lines.push(...elementLines('add', parts.elements, table));
  return lines;
}

// ---- iptables coexistence -------------------------------------------------------------------

export interface IptablesReconcileOptions {
  run: IptablesRunner;
  /** The comment marking berth's rules; the only rules ever deleted. */
  comment: string;
  /** Interface patterns (iptables syntax, `berth+`) whose traffic must not be dropped. */
  interfaces: string[];
  /** Delete every marked rule whatever the policy (removeAll). */
  remove?: boolean;
}

/** The rules berth wants in a chain for one interface pattern, as `iptables -S` prints them. */
export function iptablesRules(pattern: string, comment: string): string[][] {
  const mark = ['-m', 'comment', '--comment', comment];
  return [
    ['-i', pattern, ...mark, '-j', 'ACCEPT'],
    ['-o', pattern, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED,DNAT', ...mark, '-j', 'ACCEPT'],
  ];
}

/** Splits one `iptables -S` line as the shell would (iptables quotes values with spaces). */
export function splitIptablesLine(line: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === ' ') i++;
    if (i >= line.length) break;
    let token = '';
    if (line[i] === '"') {
      i++;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < line.length) i++;
        token += line[i++];
      }
      i++;
    } else {
      while (i < line.length && line[i] !== ' ') token += line[i++];
    }
    tokens.push(token);
  }
  return tokens;
}

function sameRule(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

function marked(spec: string[], comment: string): boolean {
  return spec.some((t, i) => t === '--comment' && spec[i + 1] === comment);
}

/**
 * Makes iptables' FORWARD (or DOCKER-USER, which Docker's FORWARD runs first) accept berth's
 * traffic when the FORWARD policy is DROP, and removes berth's marked rules when it is not.
 * Returns warnings; iptables failing never fails the caller, whose nft part has been applied.
 */
export async function reconcileIptables(opts: IptablesReconcileOptions): Promise<string[]> {
  const warnings: string[] = [];
  for (const cmd of ['iptables', 'ip6tables'] as const) {
    const forward = await opts.run(cmd, ['-w', '-S', 'FORWARD']);
    if (forward.code === 127) continue;
    if (forward.code !== 0) {
      // No filter table, or one iptables cannot read: nothing of berth's can be there.
      if (!/does not exist|No chain|incompatible/i.test(forward.stderr)) warnings.push(`${cmd} -S FORWARD: ${forward.stderr.trim()}`);
      continue;
    }
    const user = await opts.run(cmd, ['-w', '-S', 'DOCKER-USER']);
    const listed: [string, CommandResult][] = [['FORWARD', forward]];
    if (user.code === 0) listed.push(['DOCKER-USER', user]);
    const ours: { chain: string; spec: string[] }[] = [];
    for (const [chain, r] of listed) {
      for (const line of r.stdout.split('\n')) {
        const tokens = splitIptablesLine(line.trim());
        if (tokens[0] === '-A' && tokens[1] === chain && marked(tokens, opts.comment)) ours.push({ chain, spec: tokens.slice(2) });
      }
    }
    const drop = !opts.remove && /^-P FORWARD DROP\s*$/m.test(forward.stdout);
    const target = user.code === 0 ? 'DOCKER-USER' : 'FORWARD';
    const desired = drop ? opts.interfaces.flatMap((p) => iptablesRules(p, opts.comment)) : [];
    const run = async (args: string[]): Promise<void> => {
      const r = await opts.run(cmd, ['-w', ...args]);
      if (r.code !== 0) warnings.push(`${cmd} ${args.join(' ')}: ${r.stderr.trim() || `exit status ${r.code}`}`);
    };
    for (const o of ours) {
      if (o.chain !== target || !desired.some((d) => sameRule(d, o.spec))) await run(['-D', o.chain, ...o.spec]);
    }
    // Inserted last-first, so they end up at the top in the order of `desired`.
    for (const d of [...desired].reverse()) {
      if (!ours.some((o) => o.chain === target && sameRule(o.spec, d))) await run(['-I', target, ...d]);
    }
  }
  return warnings;
}

// ---- the service-facing object --------------------------------------------------------------

/** One method's change: nft lines against the mirrored state, and the mirror's update. */
interface Change {
  lines: string[];
  update: () => void;
  /** Mappings left out, for a warning once applied. */
  skipped?: string[];
  /** Networks changed: the iptables rules may have to follow. */
  coexist?: boolean;
}

interface PendingChange {
  prepare: () => Change | null;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class Firewall {
  private readonly apply: (nftText: string) => void | Promise<void>;
  private readonly iptables: IptablesRunner;
  private readonly warn: (m: string) => void;
  private readonly table: string;
  private readonly list: (family: string, name: string) => Promise<NftListing | null>;
  private readonly networks = new Map<string, FirewallNetwork>();
  private readonly ports = new Map<string, FirewallPorts>();
  /** The maps above mirror the kernel's table (after sync, or after finding no table). */
  private known = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** The batch new changes join; closed when its transaction starts or a barrier is queued. */
  private open: PendingChange[] | undefined;

  constructor(opts: FirewallOptions = {}) {
    this.apply = opts.apply ?? applyNft;
    this.iptables = opts.iptables ?? runIptables;
    this.warn = opts.warn ?? (() => undefined);
    this.table = opts.table ?? DEFAULT_TABLE;
    this.list = opts.list ?? listNftTable;
    checkTable(this.table);
  }

  /** Replaces the table wholesale (startup, recovery): one transaction. */
  sync(state: FirewallState): Promise<void> {
    return this.barrier(async () => {
      const parts = stateParts(state);
      this.reportSkipped(parts.skipped);
      await this.apply(replaceText(parts, this.table));
      this.networks.clear();
      this.ports.clear();
      // Copies: a caller changing its objects later must not make the mirror lie.
      for (const n of state.networks) this.networks.set(n.id, structuredClone(n));
      for (const p of state.ports) this.ports.set(p.sandboxId, structuredClone(p));
      this.known = true;
      await this.coexist();
    });
  }

  /** Adds a network, or replaces the one with this id. */
  addNetwork(n: FirewallNetwork): Promise<void> {
    return this.change(() => {
      const parts = networkParts(n);
      const other = [...this.networks.values()].find((o) => o.bridge === n.bridge && o.id !== n.id);
      if (other) throw new BerthError('Conflict', `firewall: bridge ${n.bridge} already belongs to network ${other.id}`);
      const old = this.networks.get(n.id);
      return {
        lines: [...(old ? removeLines(networkParts(old), this.table) : []), ...addLines(parts, this.table)],
        update: () => void this.networks.set(n.id, structuredClone(n)),
        coexist: true,
      };
    });
  }

  /** Unknown ids are not an error: removal is idempotent. */
  removeNetwork(id: string): Promise<void> {
    return this.change(() => {
      const old = this.networks.get(id);
      if (!old) return null;
      return { lines: removeLines(networkParts(old), this.table), update: () => void this.networks.delete(id), coexist: true };
    });
  }

  /** Publishes a sandbox's ports, or replaces the ones it had. */
  addPorts(p: FirewallPorts): Promise<void> {
    return this.change(() => {
      const parts = portsParts(p);
      this.checkPortConflicts(p);
      const old = this.ports.get(p.sandboxId);
      return {
        lines: [...(old ? removeLines(portsParts(old), this.table) : []), ...addLines(parts, this.table)],
        update: () => void this.ports.set(p.sandboxId, structuredClone(p)),
        skipped: parts.skipped,
      };
    });
  }

  removePorts(sandboxId: string): Promise<void> {
    return this.change(() => {
      const old = this.ports.get(sandboxId);
      if (!old) return null;
      return { lines: removeLines(portsParts(old), this.table), update: () => void this.ports.delete(sandboxId) };
    });
  }

  /** Deletes the table and berth's iptables rules (tests, uninstall). */
  removeAll(): Promise<void> {
    return this.barrier(async () => {
      await this.apply(`add table inet ${this.table}\ndelete table inet ${this.table}\n`);
      this.networks.clear();
      this.ports.clear();
      this.known = false;
      const warnings = await reconcileIptables({ run: this.iptables, comment: this.table, interfaces: [], remove: true });
      for (const w of warnings) this.warn(`firewall: ${w}`);
    });
  }

  /**
   * Re-checks iptables' FORWARD policy and inserts or removes berth's accept rules. sync() and
   * the network methods do it; call it when Docker may have started since (it sets DROP).
   */
  ensureCoexistence(): Promise<void> {
    return this.barrier(() => this.coexist());
  }

  /** The state the table holds, as this object knows it. */
  state(): FirewallState {
    return { networks: [...this.networks.values()], ports: [...this.ports.values()] };
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Queues a change. Changes queued while a transaction runs are applied together in the next
   * one: the kernel's commit costs about the same for one element as for fifty (~20 ms when
   * anything is deleted), so fifty containers going at once cost one commit, not fifty. When
   * the merged transaction fails, each change is retried on its own so that the error reaches
   * the caller whose change it is.
   */
  private change(prepare: () => Change | null): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.open) {
        const batch: PendingChange[] = [];
        this.open = batch;
        void this.serial(() => {
          if (this.open === batch) this.open = undefined;
          return this.flush(batch);
        });
      }
      this.open.push({ prepare, resolve, reject });
    });
  }

  /** sync, removeAll, ensureCoexistence: after every change queued before, before any queued after. */
  private barrier<T>(fn: () => Promise<T>): Promise<T> {
    this.open = undefined;
    return this.serial(fn);
  }

  private async flush(items: PendingChange[]): Promise<void> {
    const done: { item: PendingChange; change: Change | null }[] = [];
    const refused = new Set<PendingChange>();
    if (items.length > 1 && this.known) {
      const before = this.state();
      const lines: string[] = [];
      for (const item of items) {
        let change: Change | null;
        try {
          change = item.prepare();
        } catch (err) {
          refused.add(item);
          item.reject(err);
          continue;
        }
        if (change) {
          lines.push(...change.lines);
          change.update();
        }
        done.push({ item, change });
      }
      try {
        if (lines.length > 0) await this.apply(lines.join('\n') + '\n');
      } catch {
        this.restore(before);
        done.length = 0;
      }
      if (done.length > 0) {
        await this.settle(done);
        return;
      }
      items = items.filter((i) => !refused.has(i));
    }
    for (const item of items) {
      let change: Change | null = null;
      try {
        change = item.prepare();
        if (change) await this.commit(change.lines, change.update);
      } catch (err) {
        item.reject(err);
        continue;
      }
      await this.settle([{ item, change }]);
    }
  }

  /** After the kernel took the changes: warnings, the iptables check, then the callers. */
  private async settle(done: { item: PendingChange; change: Change | null }[]): Promise<void> {
    for (const d of done) this.reportSkipped(d.change?.skipped ?? []);
    if (done.some((d) => d.change?.coexist)) await this.coexist();
    for (const d of done) d.item.resolve();
  }

  private restore(state: FirewallState): void {
    this.networks.clear();
    this.ports.clear();
    for (const n of state.networks) this.networks.set(n.id, n);
    for (const p of state.ports) this.ports.set(p.sandboxId, p);
  }

  /** The kernel would refuse a second element with the same key with a bare "File exists". */
  private checkPortConflicts(p: FirewallPorts): void {
    const ipKey = (ip: string): string => (isIPv4(ip) ? ip : `6:${v6ToBig(ip)}`);
    for (const other of this.ports.values()) {
      if (other.sandboxId === p.sandboxId) continue;
      for (const m of p.mappings) {
        const taken = other.mappings.some((o) => o.protocol === m.protocol && o.hostPort === m.hostPort && ipKey(o.hostIp) === ipKey(m.hostIp));
        if (taken) {
          throw new BerthError('Conflict', `port ${m.hostPort}/${m.protocol} on ${m.hostIp} is already published by ${other.sandboxId}`, {
            hint: 'choose another host port',
          });
        }
      }
    }
  }

  private reportSkipped(skipped: string[]): void {
    for (const s of skipped) this.warn(`firewall: port not published: ${s}`);
  }

  /**
   * Applies a change as one transaction. Before the first sync the table may be missing: then
   * the whole table is written with the change in it. If the change fails on a table that
   * should mirror our state (someone flushed the ruleset), the table is rewritten from the state
   * with the change, once; if that fails too, the original error is thrown and nothing changed.
   */
  private async commit(lines: string[], update: () => void): Promise<void> {
    if (lines.length === 0) {
      update();
      return;
    }
    const before = this.state();
    const rewrite = async (): Promise<void> => {
      update();
      try {
        await this.apply(replaceText(stateParts(this.state()), this.table));
        this.known = true;
      } catch (err) {
        this.restore(before);
        throw err;
      }
    };
    if (!this.known && (await this.tableMissing())) return rewrite();
    try {
      await this.apply(lines.join('\n') + '\n');
    } catch (err) {
      if (!this.known) throw err;
      try {
        await rewrite();
      } catch (rewriteError) {
        attachCleanupError(err, rewriteError);
        throw err;
      }
      this.warn(`firewall: an incremental change failed (${(err as Error).message}); rewrote table inet ${this.table} from berth's state`);
      return;
    }
    update();
  }

  private async tableMissing(): Promise<boolean> {
    try {
      return (await this.list('inet', this.table)) === null;
    } catch {
      // nft missing or unreadable: let the change itself report what is wrong.
      return false;
    }
  }

  /** Never throws: the nft side is in place, and iptables trouble is a warning. */
  private async coexist(): Promise<void> {
    const custom = [...this.networks.values()].map((n) => n.bridge).filter((b) => !b.startsWith('berth'));
    try {
      const warnings = await reconcileIptables({ run: this.iptables, comment: this.table, interfaces: ['berth+', ...new Set(custom)] });
      for (const w of warnings) this.warn(`firewall: ${w}`);
    } catch (err) {
      this.warn(`firewall: cannot check iptables' FORWARD chain: ${(err as Error).message}`);
    }
  }

}
