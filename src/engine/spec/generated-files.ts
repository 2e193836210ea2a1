// The /etc/hosts, /etc/resolv.conf and /etc/hostname a container gets, rendered from
// the request with Docker's rules. Pure: the host's files come in as text.
import { isIP } from 'node:net';
import { BerthError } from '../../errors.js';
import { invalid } from './invalid.js';

export interface HostsOptions {
  hostname: string;
  domainname?: string;
  /** HostConfig.ExtraHosts: "name:ip" (or "name=ip"). */
  extraHosts?: readonly string[] | null;
  networkMode?: string;
  /** The host's /etc/hosts text: a host-network container starts from it. */
  hostHosts?: string;
  /** The container's own addresses (a bridge network's), each mapped to its hostname. */
  addresses?: readonly string[];
  /** What "host-gateway" in ExtraHosts stands for: the default bridge's gateway. */
  hostGateway?: string;
}

export interface ExtraHost {
  name: string;
  ip: string;
}

const DEFAULT_HOSTS = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

/**
 * Parses HostConfig.ExtraHosts; the name is before the first ":" or "=", since an IPv6 address
 * has colons. "host-gateway" becomes `hostGateway` (left as the word when that is unknown: the
 * check at create, before the network layer is asked).
 */
export function parseExtraHosts(entries: readonly string[] | null | undefined, hostGateway?: string): ExtraHost[] {
  return (entries ?? []).map((entry, i) => {
    const field = `HostConfig.ExtraHosts[${i}]`;
    const m = /^([^:=]+)[:=](.+)$/.exec(entry);
    if (!m) throw invalid(field, `invalid extra host "${entry}"`, 'use "name:ip", e.g. "db:10.0.0.5"');
    const name = m[1].trim();
    let ip = m[2].trim();
    if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
    if (!/^[a-zA-Z0-9_]([a-zA-Z0-9_.-]*)$/.test(name)) throw invalid(field, `invalid host name "${name}"`);
    if (ip === 'host-gateway') return { name, ip: hostGateway ?? ip };
    if (isIP(ip) === 0) throw invalid(field, `invalid IP address "${ip}" for host "${name}"`);
    return { name, ip };
  });
}

/** The container's /etc/hosts. */
export function renderHosts(opts: HostsOptions): string {
  const extra = parseExtraHosts(opts.extraHosts, opts.hostGateway).filter((h) => h.ip !== 'host-gateway');
  if (extra.length < (opts.extraHosts ?? []).length && opts.hostGateway === undefined)
    throw new BerthError('InvalidArgument', 'HostConfig.ExtraHosts: "host-gateway" needs the default bridge network, which is not available', {
      hint: 'give the host\'s address explicitly, e.g. "host.docker.internal:192.168.1.10"',
    });
  const lines: string[] = [];
  if (opts.networkMode === 'host' && opts.hostHosts !== undefined) {
    lines.push(...opts.hostHosts.replace(/\n+$/, '').split('\n'));
  } else {
    lines.push(...DEFAULT_HOSTS);
  }
  for (const h of extra) lines.push(`${h.ip}\t${h.name}`);
  const names = opts.domainname ? `${opts.hostname}.${opts.domainname} ${opts.hostname}` : opts.hostname;
  for (const a of opts.addresses ?? []) lines.push(`${a}\t${names}`);
  return lines.join('\n') + '\n';
}

export interface ResolvConfOptions {
  /** The host's resolv.conf text (systemd-resolved hosts: the upstream file, not the 127.0.0.53 stub). */
  hostResolvConf: string;
  dns?: readonly string[] | null;
  dnsSearch?: readonly string[] | null;
  dnsOptions?: readonly string[] | null;
  networkMode?: string;
  /** Keep IPv6 nameservers (the container's network has IPv6). */
  ipv6?: boolean;
}

const FALLBACK_V4 = ['8.8.8.8', '8.8.4.4'];
const FALLBACK_V6 = ['2001:4860:4860::8888', '2001:4860:4860::8844'];

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1';
}

/**
 * The container's /etc/resolv.conf, with Docker's rules: start from the host's; outside
 * the host's network drop loopback nameservers (they would be the container's own) and
 * fall back to Google's public servers when none remain; Dns, DnsSearch and DnsOptions
 * replace the corresponding lines (a DnsSearch of "." means no search domains).
 */
export function renderResolvConf(opts: ResolvConfOptions): string {
  const hostMode = opts.networkMode === 'host';
  const nameservers: string[] = [];
  let search: string[] | undefined;
  let options: string[] | undefined;
  const other: string[] = [];
  for (const raw of opts.hostResolvConf.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const [key, ...rest] = line.split(/\s+/);
    if (key === 'nameserver' && rest[0]) nameservers.push(rest[0]);
    else if (key === 'search' || key === 'domain') search = rest;
    else if (key === 'options') options = [...(options ?? []), ...rest];
    else other.push(line);
  }
  for (const [i, ip] of (opts.dns ?? []).entries()) {
    if (isIP(ip) === 0) throw invalid(`HostConfig.Dns[${i}]`, `"${ip}" is not an IP address`);
  }
  let servers: string[];
  if (opts.dns && opts.dns.length > 0) servers = [...opts.dns];
  else if (hostMode) servers = nameservers;
  else {
    servers = nameservers.filter((ip) => !isLoopback(ip) && (opts.ipv6 || isIP(ip.split('%')[0]) !== 6));
    if (servers.length === 0) servers = opts.ipv6 ? [...FALLBACK_V4, ...FALLBACK_V6] : [...FALLBACK_V4];
  }
  if (opts.dnsSearch && opts.dnsSearch.length > 0) search = opts.dnsSearch.filter((d) => d !== '.');
  if (opts.dnsOptions && opts.dnsOptions.length > 0) options = [...opts.dnsOptions];
  const lines = [...servers.map((s) => `nameserver ${s}`)];
  if (search && search.length > 0) lines.push(`search ${search.join(' ')}`);
  if (options && options.length > 0) lines.push(`options ${options.join(' ')}`);
  lines.push(...other);
  return lines.join('\n') + '\n';
}

/** The container's /etc/hostname (the short name; Docker writes no domain there). */
export function renderHostname(hostname: string): string {
  return `${hostname}\n`;
}
