// The network layer's vocabulary: networks, endpoints, published ports and sandboxes (a
// network namespace with its endpoints, owned by a container or later a pod). Neutral on
// purpose: Docker's shapes (NetworkInspect, NetworkSettings, PortBindings) are made in the
// engine (src/engine/networks.ts) and the API, so the CRI path can share this layer.

export type NetworkDriverName = 'bridge' | 'cni' | 'host' | 'null';

/** One subnet of a network: addresses are handed out from `ipRange` (or the whole subnet). */
export interface Subnet {
  /** CIDR, normalised (host bits zero): "10.87.0.0/16", "fd8b:1c2d:3e4f::/64". */
  subnet: string;
  /** The bridge's own address in the subnet (no prefix length). */
  gateway: string;
  /** CIDR inside `subnet` (Docker's IPRange): dynamic addresses come from here only. */
  ipRange?: string;
  /** Reserved addresses, never handed out (Docker's AuxiliaryAddresses: name → address). */
  auxAddresses?: Record<string, string>;
}

/** A network as persisted (`<root>/network/networks/<id>.json`). */
export interface NetworkRecord {
  /** 64 lowercase hex. */
  id: string;
  name: string;
  driver: NetworkDriverName;
  /** RFC 3339. */
  created: string;
  /** bridge, host and none: made by berthd, never removed. */
  builtin: boolean;
  /** No route out: no masquerade, traffic only between its own endpoints. */
  internal: boolean;
  attachable: boolean;
  enableIPv6: boolean;
  /** IPv4 subnets first, then IPv6; empty for host/null, and for cni (the plugins' IPAM owns addresses). */
  subnets: Subnet[];
  /** driver bridge: the Linux bridge's name (≤ 15 bytes). */
  bridge?: string;
  mtu?: number;
  /** Endpoints masquerade to the outside (Docker's enable_ip_masquerade; false when internal). */
  masquerade: boolean;
  /** Endpoints of this network may talk to each other (Docker's enable_icc). */
  icc: boolean;
  /** The embedded DNS answers containers' names on this network (user-defined networks; the default bridge only forwards, as Docker's has no names). */
  dnsNames: boolean;
  /** As given at create (driver options), kept for inspect. */
  options: Record<string, string>;
  labels: Record<string, string>;
  /** driver cni: the conflist and the file it came from. */
  cni?: { conflist: Record<string, unknown>; source?: string };
}

/** `network create`: what the user asked for. Omitted subnets are chosen from the pools. */
export interface CreateNetworkOptions {
  name: string;
  /** bridge (default) or cni; host and null exist once, built in. */
  driver?: string;
  internal?: boolean;
  attachable?: boolean;
  enableIPv6?: boolean;
  /** Requested subnets. None → one IPv4 /24 from the pool (plus an IPv6 ULA /64 with enableIPv6). A subnet without a gateway gets its first address. */
  subnets?: { subnet?: string; gateway?: string; ipRange?: string; auxAddresses?: Record<string, string> }[];
  /**
   * Driver options. bridge: com.docker.network.bridge.name (or bridge_name), com.docker.network.driver.mtu (or mtu),
   * com.docker.network.bridge.enable_ip_masquerade, com.docker.network.bridge.enable_icc. cni: conflist (a file path).
   * Unknown options are refused by name.
   */
  options?: Record<string, string>;
  labels?: Record<string, string>;
}

/** An address with its prefix length, as set on an interface. */
export interface AddressAssignment {
  /** No prefix length: "10.87.0.5". */
  address: string;
  prefixLen: number;
  /** The default route's next hop through this interface, if any. */
  gateway?: string;
}

/** A request to put a sandbox on a network (one `--network`, or one EndpointsConfig entry). */
export interface EndpointRequest {
  /** Network id, unique id prefix, or name. */
  network: string;
  aliases?: string[];
  /** Static addresses (`--ip`, `--ip6`): must lie in the network's subnet and be free. */
  ipv4?: string;
  ipv6?: string;
  /** `--mac-address`; otherwise derived from the IPv4 address (02:b7 + its 4 bytes) or random. */
  mac?: string;
}

/** A sandbox's attachment to one network, as persisted with its owner (the container record). */
export interface Endpoint {
  networkId: string;
  networkName: string;
  /** 64 lowercase hex. */
  endpointId: string;
  /** The interface inside the sandbox: eth0, eth1, … in connection order. */
  ifname: string;
  /** driver bridge: the host end of the veth pair ("vberth" + 9 hex). */
  hostIfname?: string;
  mac: string;
  ipv4?: AddressAssignment;
  ipv6?: AddressAssignment;
  /** The user's aliases (`--network-alias`). */
  aliases: string[];
  /** Every name the embedded DNS answers with this endpoint's addresses: the container name, the aliases, the short id. */
  dnsNames: string[];
  /** The addresses were asked for (`--ip`): kept across restarts instead of allocated afresh. */
  staticAddresses: boolean;
  /** driver cni: the plugin chain's result (kept for DEL and CHECK). */
  cniResult?: Record<string, unknown>;
}

export type PortProtocol = 'tcp' | 'udp' | 'sctp';

/** One published port as asked for (`-p [ip:][hostPort[-end]:]containerPort[/proto]`, `-P`). */
export interface PortRequest {
  containerPort: number;
  protocol: PortProtocol;
  /** A host address to publish on; undefined or "" → every address (0.0.0.0, and :: when the network has IPv6). */
  hostIp?: string;
  /** undefined → a free port from the ephemeral range; a range → the first free port in it (start = end for one port). */
  hostPort?: { start: number; end: number };
}

/** One published port as set up. */
export interface PortMapping {
  containerPort: number;
  protocol: PortProtocol;
  /** "0.0.0.0", "::", or the chosen address. */
  hostIp: string;
  hostPort: number;
}

/** What a container (or pod) asks of the network layer when it starts. */
export interface SandboxRequest {
  /** The owner's id: a container id now, a pod id with issue 6. */
  id: string;
  /** The owner's name: the first DNS name of its endpoints. */
  name: string;
  hostname: string;
  /** In order: eth0, eth1, …; empty → a namespace with loopback only. */
  endpoints: EndpointRequest[];
  /** Published on the first endpoint that has an IPv4 (and IPv6) address. */
  ports: PortRequest[];
  /** HostConfig.Dns/DnsSearch/DnsOptions: the embedded DNS forwards to `servers` instead of the host's resolvers. */
  dns?: { servers?: string[]; search?: string[]; options?: string[] };
}

/** A sandbox as set up; the owner persists it and hands it back to tearDown/connect/restore. */
export interface Sandbox {
  id: string;
  name: string;
  /** The pinned network namespace (a bind mount under `<runRoot>/netns/`) that the container joins. */
  netnsPath: string;
  endpoints: Endpoint[];
  ports: PortMapping[];
  /** What the container's /etc/resolv.conf says: the embedded DNS when the sandbox has a bridge endpoint, else the host's servers or dns.servers. */
  resolv: { nameservers: string[]; search: string[]; options: string[] };
  /** As requested: the embedded DNS forwards this sandbox's queries there. */
  dnsServers?: string[];
}
