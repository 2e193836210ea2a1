// The embedded DNS server: container names per network, everything else forwarded.
export { EmbeddedDns, DEFAULT_TTL, type EmbeddedDnsOptions, type DnsListenOptions, type DnsEntry } from './server.js';
export { readHostUpstreams, readHostResolvConf, parseResolvConf, watchHostUpstreams, type Upstream, type HostResolvConf } from './resolv.js';
export {
  parseMessage,
  parseHeader,
  parseFirstQuestion,
  buildMessage,
  responseFlags,
  canonicalName,
  nameToLabels,
  RecordType,
  RecordClass,
  Rcode,
  Opcode,
  type DnsMessage,
  type DnsHeader,
  type DnsFlags,
  type DnsQuestion,
  type DnsRecord,
  type Edns,
  type BuildOptions,
} from './message.js';
