// Where to send requests for a registry domain: its mirrors (tried first, pull only) and then
// the registry itself, each over https unless the user marked the host insecure or it is a
// loopback address (as Docker, which trusts 127.0.0.0/8 by default).
import { BerthError } from '../../errors.js';

export interface RegistryHostConfig {
  /** Keys are registry domains ('docker.io', 'h:5000'); values are base URLs or host[:port]. */
  mirrors?: Record<string, string[]>;
  /** Hosts (host[:port], exact match) reached over plain http. */
  insecure?: string[];
}

export interface RegistryEndpoint {
  /**
   * The host this endpoint authenticates as: the registry domain itself ('docker.io' for
   * Docker Hub, as in ~/.docker/config.json) or, for a mirror, the mirror's host[:port].
   */
  domain: string;
  /** Scheme, host, port and an optional path prefix, without a trailing slash; '/v2/…' follows. */
  baseUrl: string;
  mirror: boolean;
  insecure: boolean;
}

export const DOCKER_HUB_DOMAIN = 'docker.io';
export const DOCKER_HUB_HOST = 'registry-1.docker.io';
const DOCKER_HUB_ALIASES = new Set([DOCKER_HUB_DOMAIN, 'index.docker.io', DOCKER_HUB_HOST]);

/** Mirrors first (in the order given), then the registry. Pushes must skip `mirror` entries. */
export function resolveEndpoints(domain: string, config: RegistryHostConfig = {}): RegistryEndpoint[] {
  const registry = canonicalDomain(domain);
  const insecure = new Set((config.insecure ?? []).map((entry, i) => insecureEntry(entry, i)));
  const isInsecure = (host: string): boolean => insecure.has(host.toLowerCase()) || isLoopback(host);

  const endpoints: RegistryEndpoint[] = [];
  for (const [key, list] of Object.entries(config.mirrors ?? {})) {
    if (canonicalDomain(key) !== registry) continue;
    if (!Array.isArray(list)) {
      throw new BerthError('InvalidArgument', `registry config mirrors["${key}"]: expected a list of URLs or host[:port]`);
    }
    list.forEach((entry, i) => endpoints.push(mirrorEndpoint(entry, `mirrors["${key}"][${i}]`, isInsecure)));
  }

  const host = registry === DOCKER_HUB_DOMAIN ? DOCKER_HUB_HOST : registry;
  const plain = isInsecure(registry) || isInsecure(host);
  const origin: RegistryEndpoint = { domain: registry, baseUrl: `${plain ? 'http' : 'https'}://${host}`, mirror: false, insecure: plain };

  // A mirror that is the registry itself would hide it from pushes, which skip mirrors.
  const unique = new Map<string, RegistryEndpoint>();
  for (const endpoint of endpoints) {
    if (endpoint.baseUrl !== origin.baseUrl && !unique.has(endpoint.baseUrl)) unique.set(endpoint.baseUrl, endpoint);
  }
  return [...unique.values(), origin];
}

/** Docker Hub goes by several names; they all share one set of mirrors and credentials. */
export function canonicalDomain(domain: string): string {
  const lower = domain.toLowerCase();
  return DOCKER_HUB_ALIASES.has(lower) ? DOCKER_HUB_DOMAIN : lower;
}

/** localhost, 127.0.0.0/8 and [::1], on any port. */
export function isLoopback(hostAndPort: string): boolean {
  const host = stripPort(hostAndPort.toLowerCase());
  if (host === 'localhost' || host === '[::1]' || host === '::1') return true;
  const octets = host.split('.');
  return octets.length === 4 && octets[0] === '127' && octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255);
}

function stripPort(hostAndPort: string): string {
  if (hostAndPort.startsWith('[')) {
    const close = hostAndPort.indexOf(']');
    return close === -1 ? hostAndPort : hostAndPort.slice(0, close + 1);
  }
  const colon = hostAndPort.indexOf(':');
  return colon === -1 ? hostAndPort : hostAndPort.slice(0, colon);
}

function insecureEntry(entry: string, index: number): string {
  // Accept 'http://h:5000/' too: people paste URLs into this list.
  const host = entry.trim().replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
  if (host === '' || host.includes('/')) {
    throw new BerthError('InvalidArgument', `registry config insecure[${index}]: "${entry}" is not a host[:port]`, {
      hint: 'name the registry as it appears in image references, e.g. "myregistry:5000"',
    });
  }
  return host.toLowerCase();
}

function mirrorEndpoint(entry: string, where: string, isInsecure: (host: string) => boolean): RegistryEndpoint {
  const explicitScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(entry);
  let url: URL;
  try {
    url = new URL(explicitScheme ? entry : `https://${entry}`);
  } catch (cause) {
    throw new BerthError('InvalidArgument', `registry config ${where}: "${entry}" is not a URL or host[:port]`, { cause });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new BerthError('InvalidArgument', `registry config ${where}: "${entry}" must use http or https`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new BerthError('InvalidArgument', `registry config ${where}: "${entry}" must not carry credentials, a query or a fragment`, {
      hint: 'put credentials in ~/.docker/config.json under the mirror host',
    });
  }
  const host = url.host;
  if (!explicitScheme && isInsecure(host)) url.protocol = 'http:';
  // A mirror written as 'https://m/v2' means the same as 'https://m': the client adds /v2.
  const path = url.pathname.replace(/\/+$/, '').replace(/\/v2$/, '');
  return { domain: host, baseUrl: `${url.protocol}//${host}${path}`, mirror: true, insecure: url.protocol === 'http:' };
}
