// NetworkService against fakes of the kernel, firewall, port allocator, DNS and CNI: the
// service's own logic (validation, IPAM, undo, restore) without root or kernel state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError, isBerthError } from '../errors.js';
import type { LinkInfo, VethOptions, BridgeOptions } from '../host/netlink.js';
import type { CniAttachment, CniCacheEntry, CniResult } from './cni/runner.js';
import type { FirewallNetwork, FirewallPorts, FirewallState } from './firewall.js';
import type { DnsEntry, DnsListenOptions, Upstream } from './dns/index.js';
import { NetworkService, type NetworkDeps } from './service.js';
import type { PortMapping, PortRequest } from './types.js';

class FakeKernel {
  netns = new Set<string>();
  links = new Map<string, LinkInfo & { netns?: string }>();
  sysctls = new Map<string, string>();
  calls: string[] = [];
  failVeth?: (o: VethOptions) => boolean;

  createNetns(path: string): void {
    this.calls.push(`createNetns ${path}`);
    this.netns.add(path);
  }
  removeNetns(path: string): void {
    this.calls.push(`removeNetns ${path}`);
    this.netns.delete(path);
    // As the kernel does when the namespace dies: its veths go, and their host ends with them.
    for (const [k, v] of this.links) {
      if (v.netns === path) {
        this.links.delete(k);
        if (v.master) this.links.delete(v.master);
      }
    }
  }
  ensureSharedDir(dir: string): void {
    mkdirSync(dir, { recursive: true });
  }
  ensureBridge(o: BridgeOptions): void {
    this.calls.push(`ensureBridge ${o.name} ${o.addresses.join(',')}`);
    const l = this.links.get(o.name);
    if (l) l.addresses = [...new Set([...l.addresses, ...o.addresses])];
    else this.links.set(o.name, { name: o.name, index: this.links.size + 1, kind: 'bridge', mac: '', mtu: o.mtu ?? 1500, up: true, addresses: [...o.addresses] });
  }
  deleteLink(name: string): void {
    this.calls.push(`deleteLink ${name}`);
    const l = this.links.get(name);
    this.links.delete(name);
    if (l?.kind === 'veth') for (const [k, v] of this.links) if (v.kind === 'veth-peer' && v.master === name) this.links.delete(k);
  }
  listLinks(): LinkInfo[] {
    return [...this.links.values()].filter((l) => !l.netns);
  }
  addVeth(o: VethOptions): void {
    if (this.failVeth?.(o)) throw new BerthError('Internal', `addVeth ${o.hostName}: injected failure`);
    this.calls.push(`addVeth ${o.hostName} ${o.peerName} ${o.bridge} ${o.addresses.join(',')} gw4=${o.gateway4 ?? ''} mac=${o.mac ?? ''}`);
    this.links.set(o.hostName, { name: o.hostName, index: this.links.size + 1, kind: 'veth', master: o.bridge, mac: '', mtu: 1500, up: true, addresses: [] });
    this.links.set(`${o.netnsPath}:${o.peerName}`, { name: o.peerName, index: 0, kind: 'veth-peer', master: o.hostName, mac: o.mac ?? '', mtu: 1500, up: true, addresses: o.addresses, netns: o.netnsPath });
  }
  setSysctl(key: string, value: string): void {
    this.sysctls.set(key, value);
  }
  veths(): string[] {
    return [...this.links.values()].filter((l) => l.kind.startsWith('veth')).map((l) => l.name);
  }
}

class FakeFirewall {
  networks = new Map<string, FirewallNetwork>();
  ports = new Map<string, FirewallPorts>();
  syncs = 0;
  failAddNetwork = false;
  failAddPorts = false;
  async sync(s: FirewallState): Promise<void> {
    this.syncs++;
    this.networks = new Map(s.networks.map((n) => [n.id, n]));
    this.ports = new Map(s.ports.map((p) => [p.sandboxId, p]));
  }
  async addNetwork(n: FirewallNetwork): Promise<void> {
    if (this.failAddNetwork) throw new BerthError('Internal', 'nft: injected failure');
    this.networks.set(n.id, n);
  }
  async removeNetwork(id: string): Promise<void> {
    this.networks.delete(id);
  }
  async addPorts(p: FirewallPorts): Promise<void> {
    if (this.failAddPorts) throw new BerthError('Internal', 'nft: injected port failure');
    this.ports.set(p.sandboxId, p);
  }
  async removePorts(id: string): Promise<void> {
    this.ports.delete(id);
  }
}

class FakePorts {
  held = new Map<string, PortMapping[]>();
  next = 40000;
  async allocate(id: string, reqs: PortRequest[]): Promise<PortMapping[]> {
    const out: PortMapping[] = [];
    for (const r of reqs) {
      const hostPort = r.hostPort?.start ?? this.next++;
      for (const [other, ms] of this.held) {
        if (ms.some((m) => m.hostPort === hostPort && m.protocol === r.protocol)) throw new BerthError('Conflict', `port ${hostPort}/${r.protocol} is already published by ${other}`);
      }
      out.push({ containerPort: r.containerPort, protocol: r.protocol, hostIp: r.hostIp || '0.0.0.0', hostPort });
    }
    this.held.set(id, out);
    return out;
  }
  release(id: string): void {
    this.held.delete(id);
  }
  restore(id: string, m: PortMapping[]): void {
    this.held.set(id, m);
  }
}

class FakeDns {
  listening = new Map<string, { address: string; port: number; opts: DnsListenOptions }[]>();
  entries = new Map<string, Map<string, DnsEntry>>();
  upstreams = new Map<string, Upstream[]>();
  busy53 = false;
  closed = false;
  async listen(id: string, address: string, opts: DnsListenOptions = {}): Promise<{ address: string; port: number }> {
    const port = opts.port ?? 53;
    if (port === 53 && this.busy53) throw new BerthError('Unavailable', `dns: ${address}:53 is in use`);
    const bound = { address, port: port === 0 ? 45353 : port, opts };
    this.listening.set(id, [...(this.listening.get(id) ?? []), bound]);
    return { address, port: bound.port };
  }
  async unlisten(id: string): Promise<void> {
    this.listening.delete(id);
  }
  register(id: string, e: DnsEntry): void {
    if (!this.entries.has(id)) this.entries.set(id, new Map());
    this.entries.get(id)!.set(e.sandboxId, e);
  }
  unregister(id: string, sandboxId: string): void {
    this.entries.get(id)?.delete(sandboxId);
  }
  setUpstreams(id: string, s: Upstream[] | undefined): void {
    if (s) this.upstreams.set(id, s);
    else this.upstreams.delete(id);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  count(): number {
    return [...this.entries.values()].reduce((n, m) => n + m.size, 0);
  }
}

class FakeCni {
  added: CniAttachment[] = [];
  deleted: CniAttachment[] = [];
  n = 2;
  async add(a: CniAttachment): Promise<CniResult> {
    this.added.push(a);
    return {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'cni0' }, { name: a.ifname, mac: 'AA:BB:CC:00:00:01', sandbox: a.netnsPath }],
      ips: [{ address: `10.22.0.${this.n++}/16`, gateway: '10.22.0.1', interface: 1 }],
      dns: { nameservers: ['10.22.0.1'] },
    };
  }
  async del(a: CniAttachment): Promise<void> {
    this.deleted.push(a);
  }
  cachedEntries: CniCacheEntry[] = [];
  listCached(): CniCacheEntry[] {
    return this.cachedEntries;
  }
}

interface Rig {
  root: string;
  runRoot: string;
  kernel: FakeKernel;
  firewall: FakeFirewall;
  ports: FakePorts;
  dns: FakeDns;
  cni: FakeCni;
  warnings: string[];
  open(extra?: Partial<{ dnsPort: number }>): Promise<NetworkService>;
  cleanup(): void;
}

function rig(host = { routes: [] as string[], addresses: [] as string[] }): Rig {
  const base = mkdtempSync(join(tmpdir(), 'berth-netsvc-'));
  const r: Rig = {
    root: join(base, 'root'),
    runRoot: join(base, 'run'),
    kernel: new FakeKernel(),
    firewall: new FakeFirewall(),
    ports: new FakePorts(),
    dns: new FakeDns(),
    cni: new FakeCni(),
    warnings: [],
    open: (extra = {}) => {
      const deps: NetworkDeps = {
        kernel: r.kernel,
        firewall: r.firewall as unknown as NetworkDeps['firewall'],
        ports: r.ports as unknown as NetworkDeps['ports'],
        dns: r.dns as unknown as NetworkDeps['dns'],
        cni: r.cni as unknown as NetworkDeps['cni'],
        hostNetworks: () => host,
      };
      const resolv = join(base, 'resolv.conf');
      writeFileSync(resolv, 'nameserver 127.0.0.53\nsearch example.test\noptions edns0 trust-ad\n');
      return NetworkService.open({ root: r.root, runRoot: r.runRoot, hostResolvConf: resolv, deps, warn: (m) => r.warnings.push(m), dnsPort: extra.dnsPort ?? 53 });
    },
    cleanup: () => rmSync(base, { recursive: true, force: true }),
  };
  return r;
}

const ID1 = 'a'.repeat(64);
const ID2 = 'b'.repeat(64);
const ID3 = 'c'.repeat(64);

function records(r: Rig): string[] {
  return readdirSync(join(r.root, 'network', 'networks')).filter((f) => f.endsWith('.json'));
}

test('open makes the built-in networks and the default bridge, with stable ids', async () => {
  const r = rig();
  try {
    const svc = await r.open();
    const names = svc.list().map((n) => `${n.name}/${n.driver}`).sort();
    assert.deepEqual(names, ['bridge/bridge', 'host/host', 'none/null']);
    const bridge = svc.find('bridge');
    assert.deepEqual(bridge.subnets, [{ subnet: '10.87.0.0/16', gateway: '10.87.0.1' }]);
    assert.equal(bridge.bridge, 'berth0');
    assert.equal(bridge.dnsNames, false);
    assert.ok(bridge.masquerade && bridge.icc && bridge.builtin);
    assert.ok(r.kernel.calls.includes('ensureBridge berth0 10.87.0.1/16'));
    assert.equal(r.kernel.sysctls.get('net.ipv4.ip_forward'), '1');
    assert.equal(r.kernel.sysctls.get('net.ipv4.conf.berth0.route_localnet'), '1');
    assert.equal(r.dns.listening.get(bridge.id)?.[0]?.address, '10.87.0.1');
    assert.equal(r.dns.listening.get(bridge.id)?.[0]?.opts.names, false);
    assert.equal(r.firewall.syncs, 1);
    assert.equal(r.firewall.networks.get(bridge.id)?.bridge, 'berth0');
    assert.equal(records(r).length, 3);
    await svc.close();
    assert.ok(r.dns.closed);
    const again = await r.open();
    assert.equal(again.find('bridge').id, bridge.id);
    assert.equal(again.find('host').id, svc.find('host').id);
    assert.equal(again.find(bridge.id.slice(0, 6)).name, 'bridge');
    assert.throws(() => again.find('nope'), (e) => isBerthError(e, 'NotFound') && /network nope not found/.test(e.message));
    await again.close();
  } finally {
    r.cleanup();
  }
});

test('the default bridge avoids a host route on 10.87/16', async () => {
  const r = rig({ routes: ['10.87.0.0/16'], addresses: [] });
  try {
    const svc = await r.open();
    assert.equal(svc.find('bridge').subnets[0]!.subnet, '10.86.0.0/16');
    await svc.close();
  } finally {
    r.cleanup();
  }
});

test('create: defaults, pools, IPv6 and options', async () => {
  const r = rig();
  try {
    const svc = await r.open();
    const a = await svc.create({ name: 'net-a' });
    assert.deepEqual(a.subnets, [{ subnet: '10.80.0.0/24', gateway: '10.80.0.1' }]);
    assert.equal(a.bridge, `berth-${a.id.slice(0, 9)}`);
    assert.ok(a.dnsNames && a.masquerade && a.icc && !a.builtin);
    const b = await svc.create({ name: 'net-b', enableIPv6: true, options: { 'com.docker.network.driver.mtu': '1400', 'com.docker.network.bridge.enable_icc': 'false' } });
    assert.deepEqual(b.subnets.map((s) => s.subnet), ['10.80.1.0/24', 'fd8b:e47b:0:1::/64']);
    assert.equal(b.mtu, 1400);
    assert.equal(b.icc, false);
    assert.equal(r.kernel.sysctls.get('net.ipv6.conf.all.forwarding'), '1');
    const c = await svc.create({ name: 'net-c', internal: true, subnets: [{ subnet: '10.99.3.7/24', gateway: '10.99.3.254', ipRange: '10.99.3.128/25', auxAddresses: { h: '10.99.3.2' } }], labels: { x: 'y' } });
    assert.deepEqual(c.subnets, [{ subnet: '10.99.3.0/24', gateway: '10.99.3.254', ipRange: '10.99.3.128/25', auxAddresses: { h: '10.99.3.2' } }]);
    assert.equal(c.masquerade, false);
    assert.equal(r.firewall.networks.get(c.id)?.internal, true);
    assert.equal(r.dns.listening.get(c.id)?.[0]?.opts.forward, false);
    const d = await svc.create({ name: 'net-d', options: { 'com.docker.network.bridge.name': 'brtest0' } });
    assert.equal(d.bridge, 'brtest0');
    assert.equal(records(r).length, 7);
    await svc.close();
  } finally {
    r.cleanup();
  }
});

test('create: bad input is refused with the field named, and nothing is made', async () => {
  const r = rig();
  try {
    const svc = await r.open();
    await svc.create({ name: 'taken', subnets: [{ subnet: '10.50.0.0/16' }] });
    r.kernel.links.set('eth9', { name: 'eth9', index: 99, kind: '', mac: '', mtu: 1500, up: true, addresses: [] });
    const before = { calls: r.kernel.calls.length, files: records(r).length, fw: r.firewall.networks.size };
    const cases: [Parameters<NetworkService['create']>[0], string, RegExp][] = [
      [{ name: '-bad' }, 'InvalidArgument', /^Name: invalid network name/],
      [{ name: 'taken' }, 'Conflict', /network with name taken already exists/],
      [{ name: 'bridge' }, 'Conflict', /network with name bridge already exists/],
      [{ name: 'x1', driver: 'overlay' }, 'InvalidArgument', /Driver: network driver "overlay" is not supported/],
      [{ name: 'x1', driver: 'host' }, 'InvalidArgument', /only one instance of "host"/],
      [{ name: 'x1', options: { foo: 'bar' } }, 'InvalidArgument', /Options\[foo\]: unknown option for driver bridge/],
      [{ name: 'x1', options: { mtu: '20' } }, 'InvalidArgument', /Options\[mtu\]: MTU "20" must be a number between 68 and 65535/],
      [{ name: 'x1', options: { 'com.docker.network.bridge.name': 'a-very-long-bridge-name' } }, 'InvalidArgument', /not a valid interface name/],
      [{ name: 'x1', options: { 'com.docker.network.bridge.name': 'eth9' } }, 'Conflict', /link named eth9 that is not a bridge/],
      [{ name: 'x1', options: { 'com.docker.network.bridge.enable_icc': 'maybe' } }, 'InvalidArgument', /not a boolean/],
      [{ name: 'x1', subnets: [{ subnet: '10.1.2.0/33' }] }, 'InvalidArgument', /IPAM.Config\[0\].Subnet: "10.1.2.0\/33" is not a CIDR/],
      [{ name: 'x1', subnets: [{ subnet: '10.50.128.0/24' }] }, 'Conflict', /IPAM.Config\[0\].Subnet: 10.50.128.0\/24 overlaps 10.50.0.0\/16 of network taken/],
      [{ name: 'x1', subnets: [{ subnet: '10.87.0.0/24' }] }, 'Conflict', /of network bridge/],
      [{ name: 'x1', subnets: [{ subnet: '10.60.0.0/24', gateway: '10.61.0.1' }] }, 'InvalidArgument', /IPAM.Config\[0\].Gateway: 10.61.0.1 is outside the subnet 10.60.0.0\/24/],
      [{ name: 'x1', subnets: [{ subnet: '10.60.0.0/24', ipRange: '10.60.1.0/25' }] }, 'InvalidArgument', /IPAM.Config\[0\].IPRange: 10.60.1.0\/25 is not inside/],
      [{ name: 'x1', subnets: [{ subnet: '10.60.0.0/24', auxAddresses: { a: '10.70.0.1' } }] }, 'InvalidArgument', /AuxiliaryAddresses\[a\]: 10.70.0.1 is outside/],
      [{ name: 'x1', subnets: [{ subnet: '10.60.0.0/24' }, { subnet: '10.60.0.0/25' }] }, 'InvalidArgument', /IPAM.Config\[1\].Subnet: 10.60.0.0\/25 overlaps IPAM.Config\[0\]/],
      [{ name: 'x1', driver: 'cni' }, 'InvalidArgument', /Options\[conflist\]: driver cni needs a conflist/],
    ];
    for (const [opts, code, re] of cases) {
      await assert.rejects(svc.create(opts), (e) => isBerthError(e, code as never) && re.test(e.message), `${JSON.stringify(opts)}`);
    }
    assert.equal(r.kernel.calls.length, before.calls);
    assert.equal(records(r).length, before.files);
    assert.equal(r.firewall.networks.size, before.fw);
    // A failure after the bridge is made undoes it.
    r.firewall.failAddNetwork = true;
    await assert.rejects(svc.create({ name: 'late-fail' }), /injected failure/);
    r.firewall.failAddNetwork = false;
    assert.equal(records(r).length, before.files);
    assert.ok(![...r.kernel.links.keys()].some((n) => n.startsWith('berth-') && ![...svc.list()].some((x) => x.bridge === n)));
    assert.equal(r.dns.listening.size, 2);
    assert.throws(() => svc.find('late-fail'), /not found/);
    await svc.close();
  } finally {
    r.cleanup();
  }
});

test('DNS falls back to another port and a firewall redirect when 53 is taken', async () => {
  const r = rig();
  r.dns.busy53 = true;
  try {
    const svc = await r.open();
    const n = await svc.create({ name: 'net-a' });
    assert.deepEqual(r.firewall.networks.get(n.id)?.dnsRedirect, [{ gateway: '10.80.0.1', port: 45353 }]);
    assert.deepEqual(r.firewall.networks.get(svc.find('bridge').id)?.dnsRedirect, [{ gateway: '10.87.0.1', port: 45353 }]);
    await svc.close();
  } finally {
    r.cleanup();
  }
});

test('setUp/tearDown: endpoints, addresses, ports, DNS, resolv; nothing left', async () => {
  const r = rig();
  try {
    const svc = await r.open();
    const net = await svc.create({ name: 'net-a' });
    const sb = await svc.setUp({
      id: ID1,
      name: '/web',
      hostname: 'web',
      endpoints: [{ network: 'net-a', aliases: ['www'] }, { network: 'bridge' }],
      ports: [{ containerPort: 80, protocol: 'tcp', hostPort: { start: 8080, end: 8080 } }],
      dns: { servers: ['10.255.0.9'], search: ['corp.test'] },
    });
    assert.equal(sb.netnsPath, join(r.runRoot, 'netns', ID1.slice(0, 32)));
    assert.ok(r.kernel.netns.has(sb.netnsPath));
    assert.deepEqual(sb.endpoints.map((e) => [e.ifname, e.ipv4?.address, e.ipv4?.gateway, e.networkName]), [
      ['eth0', '10.80.0.2', '10.80.0.1', 'net-a'],
      ['eth1', '10.87.0.2', undefined, 'bridge'],
    ]);
    const [e0, e1] = sb.endpoints;
    assert.equal(e0!.mac, '02:b7:0a:50:00:02');
    assert.match(e0!.hostIfname!, /^vberth[0-9a-f]{9}$/);
    assert.deepEqual(e0!.dnsNames, ['web', 'www', ID1.slice(0, 12)]);
    assert.deepEqual(e1!.dnsNames, []);
    assert.deepEqual(r.dns.entries.get(net.id)?.get(ID1)?.names, ['web', 'www', ID1.slice(0, 12)]);
    assert.equal(r.dns.entries.get(svc.find('bridge').id)?.get(ID1)?.ipv4, '10.87.0.2');
    assert.deepEqual(r.dns.upstreams.get(ID1), [{ address: '10.255.0.9', port: 53 }]);
    assert.deepEqual(sb.ports, [{ containerPort: 80, protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8080 }]);
    assert.deepEqual(r.firewall.ports.get(ID1), { sandboxId: ID1, bridge: net.bridge, containerIpv4: '10.80.0.2', mappings: sb.ports });
    assert.deepEqual(sb.resolv, { nameservers: ['10.80.0.1'], search: ['corp.test'], options: ['edns0', 'trust-ad'] });
    assert.deepEqual(sb.dnsServers, ['10.255.0.9']);
    assert.deepEqual(svc.endpoints(net.id).map((e) => e.sandboxName), ['web']);

    // A second sandbox: the next address; the same host port is refused and nothing is left of it.
    await assert.rejects(
      svc.setUp({ id: ID2, name: 'api', hostname: 'api', endpoints: [{ network: 'net-a' }], ports: [{ containerPort: 81, protocol: 'tcp', hostPort: { start: 8080, end: 8080 } }] }),
      (e) => isBerthError(e, 'Conflict') && /8080/.test(e.message),
    );
    assert.ok(!r.kernel.netns.has(join(r.runRoot, 'netns', ID2.slice(0, 32))));
    const sb2 = await svc.setUp({ id: ID2, name: 'api', hostname: 'api', endpoints: [{ network: net.id.slice(0, 10), ipv4: '10.80.0.77' }], ports: [] });
    assert.equal(sb2.endpoints[0]!.ipv4!.address, '10.80.0.77');
    assert.ok(sb2.endpoints[0]!.staticAddresses);
    await assert.rejects(
      svc.setUp({ id: ID3, name: 'x', hostname: 'x', endpoints: [{ network: 'net-a', ipv4: '10.80.0.77' }], ports: [] }),
      (e) => isBerthError(e, 'Conflict') && /10.80.0.77 is already in use on network net-a/.test(e.message),
    );
    await assert.rejects(
      svc.setUp({ id: ID3, name: 'x', hostname: 'x', endpoints: [{ network: 'net-a', ipv4: '10.81.0.7' }], ports: [] }),
      (e) => isBerthError(e, 'InvalidArgument') && /10.81.0.7 is outside network net-a's subnets/.test(e.message),
    );
    await assert.rejects(svc.setUp({ id: ID3, name: 'x', hostname: 'x', endpoints: [{ network: 'nope' }], ports: [] }), (e) => isBerthError(e, 'NotFound') && /network nope not found/.test(e.message));
    await assert.rejects(svc.setUp({ id: ID3, name: 'x', hostname: 'x', endpoints: [{ network: 'host' }], ports: [] }), (e) => isBerthError(e, 'InvalidArgument') && /driver host/.test(e.message));
    await assert.rejects(svc.setUp({ id: ID1, name: 'web', hostname: 'x', endpoints: [], ports: [] }), (e) => isBerthError(e, 'AlreadyExists'));
    assert.ok(!r.kernel.netns.has(join(r.runRoot, 'netns', ID3.slice(0, 32))));

    await assert.rejects(svc.remove('net-a'), (e) => isBerthError(e, 'FailedPrecondition') && /network net-a has active endpoints \(web, api\)/.test(e.message));
    await assert.rejects(svc.remove('bridge'), (e) => isBerthError(e, 'FailedPrecondition') && /pre-defined/.test(e.message));

    await svc.tearDown(sb);
    await svc.tearDown(sb); // idempotent
    await svc.tearDown(sb2);
    assert.equal(r.kernel.netns.size, 0);
    assert.deepEqual(r.kernel.veths(), []);
    assert.equal(r.firewall.ports.size, 0);
    assert.equal(r.ports.held.size, 0);
    assert.equal(r.dns.count(), 0);
    assert.equal(r.dns.upstreams.size, 0);
    assert.deepEqual(svc.endpoints(net.id), []);
    // The released static address is free again.
    const sb3 = await svc.setUp({ id: ID3, name: 'x', hostname: 'x', endpoints: [{ network: 'net-a', ipv4: '10.80.0.77' }], ports: [] });
    await svc.tearDown(sb3);
    await svc.remove('net-a');
    assert.ok(!r.kernel.links.has(net.bridge!));
    assert.ok(!r.firewall.networks.has(net.id));
    assert.ok(!r.dns.listening.has(net.id));
    assert.equal(records(r).length, 3);
    await svc.close();
  } finally {
    r.cleanup();
  }
});

test('setUp is all-or-nothing when a later endpoint fails', async () => {
  const r = rig();
  try {
    const svc = await r.open();
    await svc.create({ name: 'net-a' });
    r.kernel.failVeth = (o) => o.peerName === 'eth1';
    await assert.rejects(
      svc.setUp({ id: ID1, name: 'web', hostname: 'web', endpoints: [{ network: 'net-a', ipv4: '10.80.0.9' }, { network: 'bridge', ipv4: '10.87.0.9' }], ports: [{ containerPort: 80, protocol: 'tcp' }] }),
      /injected failure/,
    );
    assert.equal(r.kernel.netns.size, 0);
    assert.deepEqual(r.kernel.veths(), []);
    assert.equal(r.ports.held.size, 0);
    assert.equal(r.firewall.ports.size, 0);
    assert.equal(r.dns.count(), 0);
    r.kernel.failVeth = undefined;
    // Both addresses were released.
    const sb = await svc.setUp({ id: ID1, name: 'web', hostname: 'web', endpoints: [{ network: 'net-a', ipv4: '10.80.0.9' }, { network: 'bridge', ipv4: '10.87.0.9' }], ports: [] });
    // A firewall failure on ports also unwinds.
    r.firewall.failAddPorts = true;
    await assert.rejects(svc.setUp({ id: ID2, name: 'api', hostname: 'api', endpoints: [{ network: 'net-a' }], ports: [{ containerPort: 80, protocol: 'tcp' }] }), /injected port failure/);
    r.firewall.failAddPorts = false;
    assert.equal(r.kernel.netns.size, 1);
    assert.equal(r.kernel.veths().length, 4);
    assert.equal(r.ports.held.size, 0);
    await svc.tearDown(sb);
    await svc.close();
  } finally {
    r.cleanup();
  }
});

test('connect and disconnect live; ports move to the remaining endpoint', async () => {
  const r = rig();
  try {
    const svc = await r.open();
    const a = await svc.create({ name: 'net-a' });
    const b = await svc.create({ name: 'net-b' });
    const sb = await svc.setUp({ id: ID1, name: 'web', hostname: 'web', endpoints: [{ network: 'net-a' }], ports: [{ containerPort: 80, protocol: 'tcp' }] });
    const ep = await svc.connect(sb, { network: 'net-b', aliases: ['w2'] });
    assert.equal(ep.ifname, 'eth1');
    assert.equal(ep.ipv4?.gateway, undefined);
    assert.deepEqual(sb.endpoints.map((e) => e.ifname), ['eth0', 'eth1']);
    assert.deepEqual(r.dns.entries.get(b.id)?.get(ID1)?.names, ['web', 'w2', ID1.slice(0, 12)]);
    await assert.rejects(svc.connect(sb, { network: 'net-b' }), (e) => isBerthError(e, 'Conflict') && /already connected to network net-b/.test(e.message));
    await svc.disconnect(sb, 'net-a');
    assert.deepEqual(sb.endpoints.map((e) => e.ifname), ['eth1']);
    assert.equal(r.dns.entries.get(a.id)?.get(ID1), undefined);
    assert.equal(r.firewall.ports.get(ID1)?.containerIpv4, ep.ipv4!.address);
    await assert.rejects(svc.disconnect(sb, 'net-a'), (e) => isBerthError(e, 'NotFound') && /not connected/.test(e.message));
    const again = await svc.connect(sb, { network: 'net-a' });
    assert.equal(again.ifname, 'eth0');
    await svc.disconnect(sb, 'net-a');
    await svc.disconnect(sb, 'net-b');
    assert.deepEqual(sb.endpoints, []);
    assert.deepEqual(r.kernel.veths(), []);
    assert.ok(r.kernel.netns.has(sb.netnsPath));
    await svc.tearDown(sb);
    assert.equal(r.kernel.netns.size, 0);
    await svc.close();
  } finally {
    r.cleanup();
  }
});

test('restore adopts live sandboxes and removes orphans', async () => {
  const r = rig();
  try {
    const svc = await r.open();
    await svc.create({ name: 'net-a' });
    const keep = await svc.setUp({ id: ID1, name: 'web', hostname: 'web', endpoints: [{ network: 'net-a' }], ports: [{ containerPort: 80, protocol: 'tcp', hostPort: { start: 8080, end: 8080 } }] });
    const lost = await svc.setUp({ id: ID2, name: 'gone', hostname: 'gone', endpoints: [{ network: 'net-a' }], ports: [] });
    await svc.close();
    // berthd restarts: a fresh service, the kernel state as the crash left it.
    r.dns = new FakeDns();
    r.ports = new FakePorts();
    r.firewall = new FakeFirewall();
    writeFileSync(keep.netnsPath, '');
    writeFileSync(lost.netnsPath, '');
    const svc2 = await r.open();
    await svc2.restore([keep]);
    assert.ok(r.kernel.links.has(keep.endpoints[0]!.hostIfname!));
    assert.ok(!r.kernel.links.has(lost.endpoints[0]!.hostIfname!));
    assert.ok(r.kernel.calls.includes(`removeNetns ${lost.netnsPath}`));
    assert.ok(!r.kernel.calls.slice(-5).includes(`removeNetns ${keep.netnsPath}`));
    assert.equal(r.firewall.ports.get(ID1)?.containerIpv4, keep.endpoints[0]!.ipv4!.address);
    assert.deepEqual(r.ports.held.get(ID1), keep.ports);
    assert.deepEqual(r.dns.entries.get(keep.endpoints[0]!.networkId)?.get(ID1)?.names, ['web', ID1.slice(0, 12)]);
    // The kept address is held: asking for it statically conflicts.
    await assert.rejects(
      svc2.setUp({ id: ID3, name: 'x', hostname: 'x', endpoints: [{ network: 'net-a', ipv4: keep.endpoints[0]!.ipv4!.address }], ports: [] }),
      (e) => isBerthError(e, 'Conflict'),
    );
    await assert.rejects(svc2.remove('net-a'), /active endpoints \(web\)/);
    // A CNI attachment cached for a sandbox that is not live gets its DEL.
    const conflist = { cniVersion: '1.0.0', name: 'cn', plugins: [{ type: 'bridge' }] };
    const entry = (id: string): CniCacheEntry => ({ kind: 'berth-cni-cache/v1', network: 'cn', containerId: id, ifname: 'eth0', netnsPath: `/x/${id}`, conflist, result: {}, created: '' });
    r.cni.cachedEntries = [entry(ID2)];
    await svc2.restore([keep]);
    assert.deepEqual(r.cni.deleted.map((a) => [a.containerId, a.ifname, a.netnsPath]), [[ID2, 'eth0', `/x/${ID2}`]]);
    await svc2.tearDown(keep);
    await svc2.remove('net-a');
    await svc2.close();
  } finally {
    r.cleanup();
  }
});

test('a corrupt network record is skipped with a warning naming it', async () => {
  const r = rig();
  try {
    const svc = await r.open();
    await svc.close();
    const bad = join(r.root, 'network', 'networks', `${'d'.repeat(64)}.json`);
    writeFileSync(bad, '{"id": ');
    const svc2 = await r.open();
    assert.equal(svc2.list().length, 3);
    assert.ok(r.warnings.some((w) => w.includes(bad)));
    await svc2.close();
  } finally {
    r.cleanup();
  }
});

test('cni networks: the chain gets the ports, its result gives the addresses', async () => {
  const r = rig();
  try {
    const conf = join(r.root, '..', 'test.conflist');
    writeFileSync(conf, JSON.stringify({ cniVersion: '1.0.0', name: 'testcni', plugins: [{ type: 'bridge' }, { type: 'portmap', capabilities: { portMappings: true } }] }));
    const svc = await r.open();
    await assert.rejects(svc.create({ name: 'c1', driver: 'cni', options: { conflist: conf }, subnets: [{ subnet: '10.22.0.0/16' }] }), /IPAM.Config/);
    await assert.rejects(svc.create({ name: 'c1', driver: 'cni', options: { conflist: conf, mtu: '1500' } }), /Options\[mtu\]: unknown option for driver cni/);
    const net = await svc.create({ name: 'c1', driver: 'cni', options: { conflist: conf } });
    assert.equal(net.cni?.source, conf);
    assert.deepEqual(net.subnets, []);
    const sb = await svc.setUp({ id: ID1, name: 'web', hostname: 'web', endpoints: [{ network: 'c1' }], ports: [{ containerPort: 80, protocol: 'tcp', hostPort: { start: 8081, end: 8081 } }] });
    assert.deepEqual(r.cni.added[0]!.capabilityArgs, { portMappings: [{ hostPort: 8081, containerPort: 80, protocol: 'tcp' }] });
    assert.equal(sb.endpoints[0]!.ipv4?.address, '10.22.0.2');
    assert.equal(sb.endpoints[0]!.mac, 'aa:bb:cc:00:00:01');
    assert.equal(r.firewall.ports.size, 0);
    assert.deepEqual(sb.resolv.nameservers, ['10.22.0.1']);
    await svc.tearDown(sb);
    assert.equal(r.cni.deleted.length, 1);
    assert.deepEqual(r.cni.deleted[0]!.capabilityArgs?.portMappings?.[0]?.hostPort, 8081);
    await svc.remove('c1');
    await svc.close();
  } finally {
    r.cleanup();
  }
});

test('IPv6: dual-stack endpoints get both families and both default routes', async () => {
  const r = rig();
  try {
    const svc = await r.open();
    const n = await svc.create({ name: 'net6', enableIPv6: true });
    const sb = await svc.setUp({ id: ID1, name: 'web', hostname: 'web', endpoints: [{ network: 'net6', ipv6: 'fd8b:e47b:0:1::99' }], ports: [{ containerPort: 80, protocol: 'tcp' }] });
    const ep = sb.endpoints[0]!;
    assert.deepEqual(ep.ipv6, { address: 'fd8b:e47b:0:1::99', prefixLen: 64, gateway: 'fd8b:e47b:0:1::1' });
    assert.equal(ep.ipv4?.address, '10.80.0.2');
    assert.ok(r.kernel.calls.some((c) => c.includes('10.80.0.2/24,fd8b:e47b:0:1::99/64 gw4=10.80.0.1')));
    assert.equal(r.firewall.ports.get(ID1)?.containerIpv6, 'fd8b:e47b:0:1::99');
    assert.deepEqual(r.dns.listening.get(n.id)?.map((l) => l.address), ['10.80.0.1', 'fd8b:e47b:0:1::1']);
    await assert.rejects(
      svc.setUp({ id: ID2, name: 'x', hostname: 'x', endpoints: [{ network: 'bridge', ipv6: 'fd00::5' }], ports: [] }),
      (e) => isBerthError(e, 'InvalidArgument') && /network bridge has no IPv6 subnet/.test(e.message),
    );
    await svc.tearDown(sb);
    await svc.close();
  } finally {
    r.cleanup();
  }
});

test('records on disk are valid JSON with the contract fields', async () => {
  const r = rig();
  try {
    const svc = await r.open();
    const n = await svc.create({ name: 'net-a' });
    assert.ok(existsSync(join(r.root, 'network', 'networks', `${n.id}.json`)));
    await svc.close();
  } finally {
    r.cleanup();
  }
});
