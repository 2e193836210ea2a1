// The network layer: NetworkService (networks, IPAM, bridge and cni drivers, published ports,
// the embedded DNS) is what the engine uses; the rest is exported for tests and tools.
export * from './types.js';
export {
  NetworkService,
  type NetworkServiceOptions,
  type NetworkDeps,
  type NetworkKernel,
  type NetworkFirewall,
  type NetworkPorts,
  type NetworkDns,
  type NetworkCni,
} from './service.js';
export {
  Ipam,
  parseIp,
  formatIp,
  normaliseIp,
  parseCidr,
  formatCidr,
  normaliseCidr,
  cidrContains,
  cidrWithin,
  cidrOverlaps,
  overlaps,
  contains,
  lastAddress,
  macFromIpv4,
  type IpFamily,
  type IpAddress,
  type Cidr,
  type AllocateRequest,
} from './ipam.js';
export {
  chooseDefaultBridgeSubnet,
  chooseUserSubnet,
  chooseIpv6Subnet,
  readHostNetworks,
  parseProcRoute,
  parseProcIpv6Route,
  DEFAULT_BRIDGE_SUBNET,
  DEFAULT_BRIDGE_FALLBACK,
  USER_POOL,
  IPV6_POOL,
  type HostNetworks,
} from './subnets.js';
export { NetworkStore } from './store.js';
export { BridgeDriver, endpointDnsNames, checkMac, DNS_PORT, type AttachContext } from './bridge-driver.js';
export { CniDriver, resolveConflist, addressesFromResult, type CniAttachContext } from './cni-driver.js';
export { Firewall, renderTable, type FirewallNetwork, type FirewallPorts, type FirewallState, type FirewallOptions, type IptablesRunner } from './firewall.js';
export { PortAllocator, readEphemeralRange, type PortRange, type PortProbe, type PortAllocatorOptions } from './ports.js';
export { EmbeddedDns, readHostUpstreams, readHostResolvConf, watchHostUpstreams, type Upstream } from './dns/index.js';
export { CniRunner, parseConflist, loadConflist, type CniConflist, type CniResult, type CniAttachment } from './cni/index.js';
