import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../errors.js';
import type { CreateNetworkOptions, Endpoint, EndpointRequest, NetworkRecord, Sandbox, SandboxRequest } from '../network/types.js';
import type { Spec } from '../runtime/spec.js';
import { EventBus } from './events.js';
import { EngineNetworks, createOptionsFrom, networkModeOf, portRequests, requestedEndpoints, summaryPorts, type NetworkServiceApi } from './networks.js';
import type { ContainerRecord } from './containers/record.js';
import type { EngineEvent } from './types.js';

const hex = (c: string): string => c.repeat(64);

function record(over: Partial<NetworkRecord> & { name: string; id: string }): NetworkRecord {
  return {
    driver: 'bridge',
    created: '2026-11-22T00:00:00.000Z',
    builtin: false,
    internal: false,
    attachable: false,
    enableIPv6: false,
    subnets: [],
    masquerade: true,
    icc: true,
    dnsNames: true,
    options: {},
    labels: {},
    ...over,
  };
}

/** A NetworkService double: networks in a list, sandboxes by id, every call recorded. */
class FakeService implements NetworkServiceApi {
  calls: string[] = [];
  nets: NetworkRecord[] = [
    record({ id: hex('1'), name: 'bridge', builtin: true, dnsNames: false, bridge: 'berth0', subnets: [{ subnet: '10.87.0.0/16', gateway: '10.87.0.1' }] }),
    record({ id: hex('2'), name: 'host', driver: 'host', builtin: true }),
    record({ id: hex('3'), name: 'none', driver: 'null', builtin: true }),
  ];
  sandboxes = new Map<string, Sandbox>();
  failSetUp = false;
  next = 2;

  find(idOrName: string): NetworkRecord {
    const hit = this.nets.find((n) => n.id === idOrName || n.name === idOrName) ?? this.nets.find((n) => n.id.startsWith(idOrName));
    if (!hit) throw new BerthError('NotFound', `network ${idOrName} not found`);
    return hit;
  }
  list(): NetworkRecord[] {
    return this.nets;
  }
  endpoints(networkId: string): { sandboxId: string; sandboxName: string; endpoint: Endpoint }[] {
    return [...this.sandboxes.values()].flatMap((s) => s.endpoints.filter((e) => e.networkId === networkId).map((endpoint) => ({ sandboxId: s.id, sandboxName: s.name, endpoint })));
  }
  async create(opts: CreateNetworkOptions): Promise<NetworkRecord> {
    this.calls.push(`create ${opts.name}`);
    if (this.nets.some((n) => n.name === opts.name)) throw new BerthError('Conflict', `network with name ${opts.name} already exists`);
    const n = record({ id: hex(String(this.nets.length + 1)), name: opts.name, labels: opts.labels ?? {}, subnets: [{ subnet: `10.80.${this.nets.length}.0/24`, gateway: `10.80.${this.nets.length}.1` }] });
    this.nets.push(n);
    return n;
  }
  async remove(idOrName: string): Promise<void> {
    const n = this.find(idOrName);
    this.calls.push(`remove ${n.name}`);
    if (this.endpoints(n.id).length) throw new BerthError('FailedPrecondition', `network ${n.name} has active endpoints`);
    this.nets = this.nets.filter((x) => x !== n);
  }
  private endpoint(net: NetworkRecord, ifname: string, r: EndpointRequest): Endpoint {
    const s = net.subnets[0]!;
    const address = r.ipv4 ?? s.gateway.replace(/\.1$/, `.${this.next++}`);
    return {
      networkId: net.id,
      networkName: net.name,
      endpointId: hex('e'),
      ifname,
      mac: '02:b7:00:00:00:02',
      ipv4: { address, prefixLen: Number(s.subnet.split('/')[1]), gateway: s.gateway },
      aliases: r.aliases ?? [],
      dnsNames: net.dnsNames ? ['web', ...(r.aliases ?? [])] : [],
      staticAddresses: Boolean(r.ipv4),
    };
  }
  async setUp(req: SandboxRequest): Promise<Sandbox> {
    this.calls.push(`setUp ${req.id.slice(0, 4)} ${req.endpoints.map((e) => e.network).join(',')} ports=${JSON.stringify(req.ports)}`);
    if (this.failSetUp) throw new BerthError('Conflict', 'port 8080/tcp is already published');
    const sb: Sandbox = {
      id: req.id,
      name: req.name,
      netnsPath: `/run/berth/netns/${req.id.slice(0, 32)}`,
      endpoints: req.endpoints.map((r, i) => this.endpoint(this.find(r.network), `eth${i}`, r)),
      ports: req.ports.map((p) => ({ containerPort: p.containerPort, protocol: p.protocol, hostIp: p.hostIp ?? '0.0.0.0', hostPort: p.hostPort?.start ?? 32768 })),
      resolv: { nameservers: ['10.87.0.1'], search: [], options: [] },
    };
    this.sandboxes.set(sb.id, sb);
    return sb;
  }
  async tearDown(sandbox: Sandbox): Promise<void> {
    this.calls.push(`tearDown ${sandbox.id.slice(0, 4)}`);
    this.sandboxes.delete(sandbox.id);
  }
  async connect(sandbox: Sandbox, req: EndpointRequest): Promise<Endpoint> {
    this.calls.push(`connect ${req.network}`);
    const e = this.endpoint(this.find(req.network), `eth${sandbox.endpoints.length}`, req);
    sandbox.endpoints.push(e);
    return e;
  }
  async disconnect(sandbox: Sandbox, network: string): Promise<void> {
    this.calls.push(`disconnect ${network.slice(0, 4)}`);
    sandbox.endpoints = sandbox.endpoints.filter((e) => e.networkId !== network);
  }
  async restore(live: Sandbox[]): Promise<void> {
    this.calls.push(`restore ${live.map((s) => s.id.slice(0, 4)).join(',')}`);
  }
  async close(): Promise<void> {}
}

function container(id: string, over: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    id,
    name: 'web',
    created: '2026-11-22T00:00:00.000Z',
    config: { Hostname: id.slice(0, 12), Image: 'busybox' },
    hostConfig: {},
    request: { Image: 'busybox' },
    image: 'sha256:x',
    imageRef: 'busybox',
    imageName: 'busybox',
    path: 'sh',
    args: [],
    mounts: [],
    anonymousVolumes: [],
    state: { status: 'created', pid: 0, exitCode: 0, error: '', oomKilled: false, startedAt: '', finishedAt: '' },
    restartCount: 0,
    manuallyStopped: false,
    snapshotKey: 'k',
    ...over,
  };
}

function setup(): { svc: FakeService; nets: EngineNetworks; events: EngineEvent[]; ctrs: Map<string, ContainerRecord>; dir: string; done: () => void } {
  const svc = new FakeService();
  const bus = new EventBus();
  const events: EngineEvent[] = [];
  const orig = bus.emit.bind(bus);
  bus.emit = (req) => {
    const e = orig(req);
    events.push(e);
    return e;
  };
  const ctrs = new Map<string, ContainerRecord>();
  const dir = mkdtempSync(join(tmpdir(), 'engine-networks-'));
  const nets = new EngineNetworks(svc, {
    events: bus,
    containers: () => ctrs.values(),
    findContainer: (n) => {
      const c = ctrs.get(n) ?? [...ctrs.values()].find((x) => x.name === n);
      if (!c) throw new BerthError('NotFound', `No such container: ${n}`);
      return c;
    },
    save: (r) => void ctrs.set(r.id, r),
    containerDir: () => dir,
    locked: (_id, fn) => fn(),
  });
  return { svc, nets, events, ctrs, dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const spec = (): Spec => ({ ociVersion: '1.0.2', linux: { namespaces: [{ type: 'mount' }, { type: 'network' }] } }) as Spec;

test('network mode: default and empty are the bridge; NetworkDisabled is none', () => {
  assert.equal(networkModeOf({}), 'bridge');
  assert.equal(networkModeOf({ NetworkMode: 'default' }), 'bridge');
  assert.equal(networkModeOf({ NetworkMode: 'mynet' }), 'mynet');
  assert.equal(networkModeOf({ NetworkMode: 'mynet' }, { NetworkDisabled: true }), 'none');
});

test('requested endpoints: NetworkMode first with its EndpointsConfig entry, then the others', () => {
  const eps = requestedEndpoints({
    hostConfig: { NetworkMode: 'front' },
    config: { MacAddress: '02:42:AC:11:00:09' },
    request: { NetworkingConfig: { EndpointsConfig: { back: { Aliases: ['db'] }, front: { Aliases: ['web', ''], IPAMConfig: { IPv4Address: '10.80.0.9' } } } } },
  });
  assert.deepEqual(eps, [
    { network: 'front', aliases: ['web'], ipv4: '10.80.0.9', mac: '02:42:ac:11:00:09' },
    { network: 'back', aliases: ['db'] },
  ]);
  assert.deepEqual(requestedEndpoints({ hostConfig: { NetworkMode: 'host' }, config: {}, request: {} }), []);
  assert.throws(() => requestedEndpoints({ hostConfig: {}, config: {}, request: { NetworkingConfig: { EndpointsConfig: { bridge: { Links: ['db:db'] } } } } }), /Links: links are not supported/);
  assert.throws(() => requestedEndpoints({ hostConfig: { NetworkMode: 'n' }, config: {}, request: { NetworkingConfig: { EndpointsConfig: { n: { IPAMConfig: { IPv4Address: '300.1.1.1' } } } } } }), /IPv4Address: "300.1.1.1" is not an IPv4/);
});

test('port requests: bindings, ranges, host IPs, -P over the exposed ports', () => {
  const reqs = portRequests(
    { PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }], '53/udp': [{ HostPort: '5300-5310' }], '9000': [{ HostPort: '' }], '7000/tcp': null }, PublishAllPorts: true },
    { ExposedPorts: { '80/tcp': {}, '443/tcp': {} } },
  );
  // Integer-like keys ("9000") come first in a JS object.
  assert.deepEqual(reqs, [
    { containerPort: 9000, protocol: 'tcp' },
    { containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: { start: 8080, end: 8080 } },
    { containerPort: 53, protocol: 'udp', hostPort: { start: 5300, end: 5310 } },
    { containerPort: 7000, protocol: 'tcp' },
    { containerPort: 443, protocol: 'tcp' },
  ]);
  assert.throws(() => portRequests({ PortBindings: { '80/icmp': [{}] } }, {}), /PortBindings\["80\/icmp"\]: invalid port/);
  assert.throws(() => portRequests({ PortBindings: { '80': [{ HostPort: '70000' }] } }, {}), /outside 1-65535/);
  assert.throws(() => portRequests({ PortBindings: { '80': [{ HostPort: '9-5' }] } }, {}), /end is before the start/);
  assert.throws(() => portRequests({ PortBindings: { '80': [{ HostIp: 'localhost' }] } }, {}), /HostIp: "localhost" is not an IP/);
});

test('create options: Docker\'s request → the network layer\'s, swarm-only things refused', () => {
  assert.deepEqual(
    createOptionsFrom({
      Name: 'n1',
      Driver: '',
      Internal: true,
      EnableIPv6: true,
      IPAM: { Driver: 'default', Config: [{ Subnet: '10.80.5.0/24', Gateway: '10.80.5.254', IPRange: '10.80.5.128/25', AuxiliaryAddresses: { r: '10.80.5.2' } }] },
      Options: { 'com.docker.network.driver.mtu': '1400' },
      Labels: { a: 'b' },
    }),
    {
      name: 'n1',
      driver: 'bridge',
      internal: true,
      enableIPv6: true,
      subnets: [{ subnet: '10.80.5.0/24', gateway: '10.80.5.254', ipRange: '10.80.5.128/25', auxAddresses: { r: '10.80.5.2' } }],
      options: { 'com.docker.network.driver.mtu': '1400' },
      labels: { a: 'b' },
    },
  );
  assert.throws(() => createOptionsFrom({ Name: '' }), /Name: a network name is required/);
  assert.throws(() => createOptionsFrom({ Name: 'x', Scope: 'swarm' }), /Scope/);
  assert.throws(() => createOptionsFrom({ Name: 'x', IPAM: { Driver: 'dhcp' } }), /IPAM driver "dhcp"/);
  assert.throws(() => createOptionsFrom({ Name: 'x', Driver: 'host' }), /only one instance of "host"/);
});

test('create, inspect, list with filters, remove, prune, with events', async () => {
  const { nets, svc, events, done } = setup();
  try {
    const { Id } = await nets.create({ Name: 'front', Labels: { tier: 'web' } });
    await nets.create({ Name: 'back' });
    await assert.rejects(nets.create({ Name: 'front' }), (e: unknown) => e instanceof BerthError && e.code === 'Conflict');
    const i = nets.inspect('front');
    assert.equal(i.Id, Id);
    assert.deepEqual(i.IPAM.Config, [{ Subnet: '10.80.3.0/24', Gateway: '10.80.3.1' }]);
    assert.equal(nets.inspect('bridge').Options['com.docker.network.bridge.name'], 'berth0');
    assert.throws(() => nets.inspect('nope'), /network nope not found/);
    const names = (f: Record<string, string[]>): string[] => nets.list(f).map((n) => n.Name).sort();
    assert.deepEqual(names({ type: ['custom'] }), ['back', 'front']);
    assert.deepEqual(names({ type: ['builtin'] }), ['bridge', 'host', 'none']);
    assert.deepEqual(names({ label: ['tier=web'] }), ['front']);
    assert.deepEqual(names({ driver: ['null'] }), ['none']);
    assert.deepEqual(names({ name: ['ron'] }), ['front']);
    assert.deepEqual(names({ dangling: ['true'] }), ['back', 'front']);
    assert.deepEqual(names({ id: [Id.slice(0, 6)] }), ['front']);
    assert.throws(() => nets.list({ colour: ['x'] }), /invalid filter 'colour'/);
    assert.throws(() => nets.list({ type: ['x'] }), /invalid filter: 'type'='x'/);
    await assert.rejects(nets.remove('bridge'), /bridge is a pre-defined network and cannot be removed/);
    await nets.remove('back');
    assert.deepEqual(await nets.prune({ label: ['tier=web'] }), { NetworksDeleted: ['front'] });
    assert.deepEqual(svc.nets.map((n) => n.name), ['bridge', 'host', 'none']);
    assert.deepEqual(
      events.map((e) => `${e.Type} ${e.Action} ${e.Actor.Attributes.name}`),
      ['network create front', 'network create back', 'network destroy back', 'network destroy front'],
    );
  } finally {
    done();
  }
});

test('a container: checks at create, sandbox at start (spec netns, hosts, resolv.conf), settings, teardown', async () => {
  const { nets, svc, ctrs, dir, events, done } = setup();
  try {
    await nets.create({ Name: 'front', IPAM: { Config: [{ Subnet: '10.80.3.0/24' }] } });
    const c = container(hex('c'), {
      hostConfig: { NetworkMode: 'front', PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }] }, ExtraHosts: ['gw:host-gateway'] },
      request: { Image: 'busybox', NetworkingConfig: { EndpointsConfig: { front: { Aliases: ['www'] } } } },
      config: { Hostname: 'cccccccccccc', ExposedPorts: { '80/tcp': {}, '443/tcp': {} } },
    });
    ctrs.set(c.id, c);
    nets.checkContainer(c);
    assert.throws(() => nets.checkContainer(container(hex('d'), { hostConfig: { NetworkMode: 'nope' } })), /network nope not found/);
    assert.throws(() => nets.checkContainer(container(hex('d'), { request: { NetworkingConfig: { EndpointsConfig: { bridge: { Aliases: ['x'] } } } } })), /network-scoped alias/);
    assert.throws(() => nets.checkContainer(container(hex('d'), { request: { NetworkingConfig: { EndpointsConfig: { bridge: { IPAMConfig: { IPv4Address: '10.87.0.9' } } } } } })), /user specified IP address/);
    assert.throws(() => nets.checkContainer(container(hex('d'), { hostConfig: { NetworkMode: 'none' }, request: { NetworkingConfig: { EndpointsConfig: { front: {} } } } })), /cannot join other networks/);

    const s = spec();
    await nets.setUp(c, s);
    assert.equal(s.linux!.namespaces![1]!.path, `/run/berth/netns/${c.id.slice(0, 32)}`);
    assert.match(readFileSync(join(dir, 'hosts'), 'utf8'), /10\.87\.0\.1\tgw\n10\.80\.3\.2\tcccccccccccc\n$/);
    assert.equal(readFileSync(join(dir, 'resolv.conf'), 'utf8'), 'nameserver 10.87.0.1\n');
    c.state.status = 'running';
    const ns = nets.settings(c);
    assert.equal(ns.IPAddress, '', 'top-level fields come from the default bridge only');
    assert.deepEqual(ns.Ports, { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }] });
    assert.equal(ns.Networks.front!.IPAddress, '10.80.3.2');
    assert.deepEqual(ns.Networks.front!.Aliases, ['www']);
    assert.equal(ns.SandboxKey, `/run/berth/netns/${c.id.slice(0, 32)}`);
    assert.deepEqual(summaryPorts(ns, c.config), [
      { IP: '127.0.0.1', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
      { PrivatePort: 443, Type: 'tcp' },
    ]);
    assert.deepEqual(nets.inspect('front').Containers[c.id], { Name: 'web', EndpointID: hex('e'), MacAddress: '02:b7:00:00:00:02', IPv4Address: '10.80.3.2/24', IPv6Address: '' });
    await assert.rejects(nets.remove('front'), (e: unknown) => e instanceof BerthError && e.code === 'FailedPrecondition');

    // live connect and disconnect: eth1 appears and goes, the record follows
    await nets.connect('bridge', { Container: 'web' });
    assert.deepEqual(c.sandbox!.endpoints.map((e) => e.ifname), ['eth0', 'eth1']);
    assert.equal(nets.settings(c).IPAddress, '10.87.0.3');
    await assert.rejects(nets.connect('bridge', { Container: 'web' }), /already exists in network bridge/);
    await assert.rejects(nets.connect('host', { Container: 'web' }), /cannot be connected to network host/);
    await nets.disconnect('bridge', { Container: 'web' });
    assert.deepEqual(c.networks, [{ network: 'front', aliases: ['www'] }]);
    await assert.rejects(nets.disconnect('bridge', { Container: 'web' }), /is not connected to network bridge/);

    await nets.tearDown(c);
    assert.equal(c.sandbox, undefined);
    c.state.status = 'exited';
    const stopped = nets.settings(c);
    assert.equal(stopped.Networks.front!.IPAddress, '');
    assert.deepEqual(stopped.Ports, {});
    assert.deepEqual(
      events.filter((e) => e.Action !== 'create').map((e) => `${e.Action} ${e.Actor.Attributes.name} ${e.Actor.Attributes.container?.slice(0, 4)}`),
      ['connect front cccc', 'connect bridge cccc', 'disconnect bridge cccc', 'disconnect front cccc'],
    );
    assert.ok(svc.calls.includes(`setUp cccc front ports=[{"containerPort":80,"protocol":"tcp","hostIp":"127.0.0.1","hostPort":{"start":8080,"end":8080}}]`));
  } finally {
    done();
  }
});

test('a stopped container: connect and disconnect change the networks of its next start', async () => {
  const { nets, svc, ctrs, done } = setup();
  try {
    await nets.create({ Name: 'back' });
    const c = container(hex('a'));
    ctrs.set(c.id, c);
    await nets.connect('back', { Container: c.id, EndpointConfig: { Aliases: ['db'] } });
    assert.deepEqual(c.networks, [{ network: 'bridge' }, { network: 'back', aliases: ['db'] }]);
    await nets.setUp(c, spec());
    assert.ok(svc.calls.includes('setUp aaaa bridge,back ports=[]'));
    await nets.tearDown(c);
    await nets.disconnect('bridge', { Container: c.id });
    assert.deepEqual(c.networks, [{ network: 'back', aliases: ['db'] }]);
  } finally {
    done();
  }
});

test('a failed setUp leaves no sandbox; host/none containers get none; restore hands the live ones over', async () => {
  const { nets, svc, ctrs, done } = setup();
  try {
    const c = container(hex('b'), { hostConfig: { PortBindings: { '8080/tcp': [{ HostPort: '8080' }] } } });
    ctrs.set(c.id, c);
    svc.failSetUp = true;
    await assert.rejects(nets.setUp(c, spec()), /already published/);
    assert.equal(c.sandbox, undefined);
    svc.failSetUp = false;
    const h = container(hex('9'), { hostConfig: { NetworkMode: 'host' } });
    assert.equal(await nets.setUp(h, spec()), undefined);
    assert.deepEqual(Object.keys(nets.settings(h).Networks), ['host']);

    await nets.setUp(c, spec());
    const gone = container(hex('8'), { sandbox: { id: hex('8'), name: 'x', netnsPath: '/x', endpoints: [], ports: [], resolv: { nameservers: [], search: [], options: [] } } });
    ctrs.set(gone.id, gone);
    await nets.restore([c]);
    assert.equal(svc.calls.at(-1), 'restore bbbb');
    assert.equal(gone.sandbox, undefined);
    assert.ok(c.sandbox);
  } finally {
    done();
  }
});

test('without a network layer: host and none work, the rest says why', async () => {
  const nets = new EngineNetworks(undefined, { events: new EventBus(), containers: () => [], findContainer: () => container(hex('1')), save: () => undefined, containerDir: () => '/nonexistent', locked: (_i, fn) => fn() }, 'no netlink addon');
  assert.deepEqual(nets.list({}), []);
  assert.equal(await nets.setUp(container(hex('1'), { hostConfig: { NetworkMode: 'none' } }), spec()), undefined);
  await assert.rejects(nets.setUp(container(hex('1')), spec()), /networks: no netlink addon/);
});
