// The host's resolvers, read from its resolv.conf (resolv.conf(5)). The embedded DNS runs in
// berthd, in the host's network namespace, so loopback resolvers such as systemd-resolved's
// 127.0.0.53 stay usable as upstreams (unlike inside a container). Rendering a container's
// resolv.conf is the engine's job (src/engine/spec/generated-files.ts renderResolvConf).
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { BerthError } from '../../errors.js';

export interface Upstream {
  /** An IPv4 or IPv6 address; a link-local IPv6 address may carry its zone ("fe80::1%eth0"). */
  address: string;
  port: number;
}

export interface HostResolvConf {
  nameservers: Upstream[];
  /** The last search/domain line wins, as in glibc. */
  search: string[];
  /** Every options line, in order. */
  options: string[];
}

/** glibc uses only the first three nameserver lines (MAXNS); later ones would never be asked. */
const MAX_NAMESERVERS = 3;
const DNS_PORT = 53;

/** Parses resolv.conf text; lines it does not understand and invalid addresses are skipped, as the C resolver does. */
export function parseResolvConf(text: string): HostResolvConf {
  const nameservers: Upstream[] = [];
  let search: string[] = [];
  const options: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    if (line === '') continue;
    const [key, ...rest] = line.split(/\s+/);
    if (key === 'nameserver') {
      const address = rest[0];
      if (address && isIP(address) !== 0 && nameservers.length < MAX_NAMESERVERS) nameservers.push({ address, port: DNS_PORT });
    } else if (key === 'search' || key === 'domain') {
      search = rest;
    } else if (key === 'options') {
      options.push(...rest);
    }
  }
  return { nameservers, search, options };
}

/** The nameserver lines of a resolv.conf file; a missing file gives none (the caller decides the fallback). */
export function readHostUpstreams(resolvConfPath: string): Upstream[] {
  return readHostResolvConf(resolvConfPath).nameservers;
}

export function readHostResolvConf(resolvConfPath: string): HostResolvConf {
  let text: string;
  try {
    text = readFileSync(resolvConfPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { nameservers: [], search: [], options: [] };
    throw new BerthError('Unavailable', `read the host's resolvers from ${resolvConfPath}: ${(err as Error).message}`, {
      cause: err,
      hint: 'check that the file is readable by berthd',
    });
  }
  return parseResolvConf(text);
}

/**
 * An `upstreams` source for EmbeddedDns that follows edits of the file (DHCP, VPNs and
 * resolvconf rewrite it while berthd runs) without reading it on every query: it looks
 * at the file's mtime at most once per `minIntervalMs`, and re-reads only when it changed.
 * A read error keeps the last good list.
 */
export function watchHostUpstreams(resolvConfPath: string, opts: { minIntervalMs?: number; warn?: (m: string) => void } = {}): () => Upstream[] {
  const interval = opts.minIntervalMs ?? 1000;
  let checkedAt = -Infinity;
  let stamp = '';
  let current: Upstream[] = [];
  return () => {
    const now = Date.now();
    if (now - checkedAt < interval) return current;
    checkedAt = now;
    try {
      let next = 'absent';
      try {
        const st = statSync(resolvConfPath);
        next = `${st.ino}:${st.mtimeMs}:${st.size}`;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (next !== stamp) {
        current = readHostUpstreams(resolvConfPath);
        stamp = next;
      }
    } catch (err) {
      opts.warn?.(`dns: keeping the previous upstreams: ${(err as Error).message}`);
    }
    return current;
  };
}
