// src/host/netlink.ts against the real kernel (root): a test-only bridge berthtst0
// (10.199.77.1/24, fdb7:7e57:0:77::1/64), two namespaces pinned under a shared temp dir,
// veths into both, traffic between them (busybox ping run with nsenter in the namespaces),
// failures that must leave nothing, nftables through libnftables on a test-only table, and
// a per-container cost printout. Everything is removed and checked with netLeaks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBerthError } from '../src/errors.js';
import {
  addVeth,
  createNetns,
  deleteLink,
  deleteLinkAsync,
  ensureBridge,
  ensureSharedDir,
  listLinks,
  netlinkAvailable,
  nftApply,
  nftAvailable,
  removeNetns,
  setSysctl,
  type LinkInfo,
} from '../src/host/netlink.js';
import { mountsUnder, detachMounts } from './helpers/leaks.js';
import { describeNetLeaks, netLeaks, nsfsMountsUnder, reapNetLeaks, type NetLeakScope } from './helpers/net-leaks.js';

const BRIDGE = 'berthtst0';
const PREFIX = 'vbnltst';
const NFT_TABLE = 'berthtstnl';
const ipv6 = existsSync('/proc/sys/net/ipv6');
const skip = process.getuid?.() !== 0 ? 'needs root' : netlinkAvailable() ?? (existsSync('/bin/busybox') ? false : 'needs /bin/busybox');

let dir = '';
let nsDir = '';
let scope: NetLeakScope;

function bridgeAddresses(): string[] {
  return ipv6 ? ['10.199.77.1/24', 'fdb7:7e57:0:77::1/64'] : ['10.199.77.1/24'];
}

function inNetns(path: string, args: string[]): string {
  return execFileSync('nsenter', [`--net=${path}`, '/bin/busybox', ...args], { encoding: 'utf8', timeout: 10_000 });
}

function link(links: LinkInfo[], name: string): LinkInfo {
  const found = links.find((l) => l.name === name);
  assert.ok(found, `link ${name} among ${links.map((l) => l.name).join(', ')}`);
  return found;
}

function assertCode(code: string, pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isBerthError(err), `expected a BerthError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  };
}

before(() => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'berth-netlink-'));
  nsDir = join(dir, 'netns');
  // Exact bridge name as a prefix: other tests use berthtst1, berthtst-e0, … at the same time.
  scope = { linkPrefixes: [BRIDGE, PREFIX], netnsDirs: [nsDir], nftTables: [{ family: 'inet', name: NFT_TABLE }] };
  // A stale bridge from an aborted run would hide ensureBridge's create path.
  reapNetLeaks(netLeaks(scope));
});

after(() => {
  if (skip || !dir) return;
  try {
    deleteLink(BRIDGE);
  } catch {
    // reported below if it stayed
  }
  const leaks = netLeaks(scope);
  reapNetLeaks(leaks);
  detachMounts(mountsUnder([dir]).map((m) => m.mountPoint));
  const mounts = mountsUnder([dir]);
  rmSync(dir, { recursive: true, force: true });
  assert.equal(describeNetLeaks(leaks), '', 'network objects left behind');
  assert.deepEqual(mounts.map((m) => m.line), [], 'mounts left behind');
});

test('ensureSharedDir makes a shared mount point, idempotently', { skip }, () => {
  ensureSharedDir(nsDir);
  ensureSharedDir(nsDir);
  const own = mountsUnder([nsDir]).filter((m) => m.mountPoint === nsDir);
  assert.ok(own.length >= 1, 'the dir is a mount point');
  assert.match(own[own.length - 1]!.line, / shared:\d+/);
});

test('ensureBridge creates the bridge up with its addresses and is safe to repeat', { skip }, () => {
  ensureBridge({ name: BRIDGE, addresses: bridgeAddresses() });
  const first = link(listLinks(), BRIDGE);
  assert.equal(first.kind, 'bridge');
  assert.equal(first.up, true);
  for (const a of bridgeAddresses()) assert.ok(first.addresses.includes(a), `${a} in ${first.addresses.join(', ')}`);
  ensureBridge({ name: BRIDGE, addresses: bridgeAddresses(), mtu: 1500 });
  const second = link(listLinks(), BRIDGE);
  assert.equal(second.mac, first.mac, 'the MAC stays');
  assert.equal(second.index, first.index, 'the same bridge');
  assert.equal(second.addresses.filter((a) => a === '10.199.77.1/24').length, 1, 'no duplicate address');
  // As at a berthd start after someone downed the bridge or changed its MTU.
  execFileSync('ip', ['link', 'set', BRIDGE, 'down', 'mtu', '1400']);
  ensureBridge({ name: BRIDGE, addresses: bridgeAddresses(), mtu: 1500 });
  const third = link(listLinks(), BRIDGE);
  assert.equal(third.up, true);
  assert.equal(third.mtu, 1500);
  assert.match(first.mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  assert.equal(parseInt(first.mac.slice(0, 2), 16) & 2, 2, 'a locally administered MAC was set');
});

test('ensureBridge refuses a name taken by another kind of link', { skip }, () => {
  assert.throws(() => ensureBridge({ name: 'lo', addresses: [] }), assertCode('AlreadyExists', /ensureBridge lo: RTM_GETLINK lo: .*not a bridge/));
});

test('two namespaces on the bridge reach each other and the gateway', { skip }, async () => {
  const a = join(nsDir, 'a');
  const b = join(nsDir, 'b');
  createNetns(a);
  createNetns(b);
  assert.throws(() => createNetns(a), assertCode('AlreadyExists', /createNetns .*\/a: mount .*\/a: File exists \(EEXIST\)/));
  const lo = link(listLinks(a), 'lo');
  assert.equal(lo.up, true, 'loopback is up in a new namespace');
  for (const [path, host, n] of [[a, `${PREFIX}a`, 2], [b, `${PREFIX}b`, 3]] as const) {
    addVeth({
      netnsPath: path,
      hostName: host,
      peerName: 'eth0',
      bridge: BRIDGE,
      mac: `02:b7:0a:c7:4d:0${n}`,
      addresses: ipv6 ? [`10.199.77.${n}/24`, `fdb7:7e57:0:77::${n}/64`] : [`10.199.77.${n}/24`],
      gateway4: '10.199.77.1',
      gateway6: ipv6 ? 'fdb7:7e57:0:77::1' : undefined,
      routes: [{ dst: '10.199.78.0/24', via: '10.199.77.1' }],
    });
  }
  const eth0 = link(listLinks(a), 'eth0');
  assert.equal(eth0.kind, 'veth');
  assert.equal(eth0.mac, '02:b7:0a:c7:4d:02');
  assert.equal(eth0.up, true);
  assert.equal(eth0.mtu, link(listLinks(), BRIDGE).mtu, 'the pair took the bridge MTU');
  assert.ok(eth0.addresses.includes('10.199.77.2/24'));
  const hostEnd = link(listLinks(), `${PREFIX}a`);
  assert.equal(hostEnd.master, BRIDGE);
  assert.equal(hostEnd.up, true);

  const routes = inNetns(a, ['ip', 'route']);
  assert.match(routes, /default via 10\.199\.77\.1 dev eth0/);
  assert.match(routes, /10\.199\.78\.0\/24 via 10\.199\.77\.1 dev eth0/);
  assert.match(inNetns(a, ['ping', '-c1', '-W2', '10.199.77.3']), /1 packets received/);
  assert.match(inNetns(b, ['ping', '-c1', '-W2', '10.199.77.1']), /1 packets received/);
  if (ipv6) {
    assert.match(inNetns(a, ['ip', '-6', 'addr', 'show', 'dev', 'eth0']), /fdb7:7e57:0:77::2\/64 scope global/);
    assert.doesNotMatch(inNetns(a, ['ip', '-6', 'addr', 'show', 'dev', 'eth0']), /tentative.*\n.*fdb7|fdb7.*tentative/, 'no DAD');
    assert.match(inNetns(a, ['ip', '-6', 'route']), /default via fdb7:7e57:0:77::1 dev eth0/);
    assert.match(inNetns(a, ['ping', '-6', '-c1', '-W2', 'fdb7:7e57:0:77::3']), /1 packets received/);
  }

  setSysctl('net.ipv4.conf.eth0.route_localnet', '1', a);
  assert.equal(inNetns(a, ['cat', '/proc/sys/net/ipv4/conf/eth0/route_localnet']).trim(), '1');
  assert.equal(inNetns(b, ['cat', '/proc/sys/net/ipv4/conf/eth0/route_localnet']).trim(), '0', 'only in that namespace');

  deleteLink('eth0', b);
  assert.equal(listLinks().some((l) => l.name === `${PREFIX}b`), false, 'the host end went with its peer');
  deleteLink('eth0', b);
  deleteLink('eth0', join(nsDir, 'never-made'));
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  await deleteLinkAsync(`${PREFIX}a`);
  clearInterval(timer);
  console.log(`deleteLinkAsync: the event loop ran ${ticks} timer ticks meanwhile`);
  assert.equal(listLinks(a).some((l) => l.name === 'eth0'), false, 'the container end went with the host end');
  await deleteLinkAsync(`${PREFIX}a`);
  await deleteLinkAsync('eth0', join(nsDir, 'never-made'));
  await assert.rejects(deleteLinkAsync('lo', a), assertCode('InvalidArgument', /deleteLink lo in .*: RTM_DELLINK lo: Operation not supported \((EOPNOTSUPP|ENOTSUP)\)/));

  removeNetns(a);
  removeNetns(b);
  removeNetns(a);
  assert.deepEqual(mountsUnder([nsDir]).filter((m) => m.mountPoint !== nsDir).map((m) => m.line), [], 'no pin mount left');
  assert.equal(existsSync(a), false);
});

test('a pin under a dir whose parent mount is shared is mounted once and unmounted fully', { skip }, () => {
  const parent = join(dir, 'shared-parent');
  const pins = join(parent, 'netns');
  const pin = join(pins, 'p');
  execFileSync('mkdir', ['-p', parent]);
  execFileSync('mount', ['-t', 'tmpfs', 'berthtst', parent]);
  try {
    execFileSync('mount', ['--make-shared', parent]);
    ensureSharedDir(pins);
    ensureSharedDir(pins);
    const peerGroup = (mp: string): string | undefined => / shared:(\d+)/.exec(mountsUnder([mp]).find((m) => m.mountPoint === mp)?.line ?? '')?.[1];
    assert.notEqual(peerGroup(pins), undefined, 'shared');
    assert.notEqual(peerGroup(pins), peerGroup(parent), 'a peer group of its own');
    createNetns(pin);
    addVeth({ netnsPath: pin, hostName: `${PREFIX}p`, peerName: 'eth0', bridge: BRIDGE, addresses: ['10.199.77.9/24'] });
    assert.equal(link(listLinks(pin), 'eth0').up, true);
    assert.equal(nsfsMountsUnder(parent).length, 1, 'the pin is not propagated into the parent mount');
    deleteLink(`${PREFIX}p`);
    removeNetns(pin);
    assert.deepEqual(nsfsMountsUnder(parent), []);
  } finally {
    detachMounts(mountsUnder([parent]).map((m) => m.mountPoint));
  }
});

test('addVeth leaves nothing behind when a step fails', { skip }, () => {
  const c = join(nsDir, 'c');
  createNetns(c);
  try {
    // The prefix route of the address already exists: fails after the pair was made.
    assert.throws(
      () => addVeth({ netnsPath: c, hostName: `${PREFIX}c`, peerName: 'eth1', bridge: BRIDGE, addresses: ['10.199.77.4/24'], routes: [{ dst: '10.199.77.0/24' }] }),
      assertCode('AlreadyExists', new RegExp(`^addVeth ${PREFIX}c → eth1 in ${c}: RTM_NEWROUTE 10\\.199\\.77\\.0/24: File exists \\(EEXIST\\)`)),
    );
    assert.equal(listLinks().some((l) => l.name === `${PREFIX}c`), false, 'no host end');
    assert.deepEqual(listLinks(c).map((l) => l.name), ['lo'], 'no container end');

    assert.throws(
      () => addVeth({ netnsPath: c, hostName: `${PREFIX}c`, peerName: 'eth1', bridge: 'berthtst9', addresses: [] }),
      assertCode('NotFound', /RTM_GETLINK berthtst9: No such device \(ENODEV\)/),
    );
    assert.throws(
      () => addVeth({ netnsPath: join(nsDir, 'missing'), hostName: `${PREFIX}c`, peerName: 'eth1', bridge: BRIDGE, addresses: [] }),
      assertCode('NotFound', /open .*missing: No such file or directory \(ENOENT\)/),
    );
    addVeth({ netnsPath: c, hostName: `${PREFIX}c`, peerName: 'eth1', bridge: BRIDGE, addresses: ['10.199.77.4/24'] });
    assert.throws(
      () => addVeth({ netnsPath: c, hostName: `${PREFIX}c`, peerName: 'eth2', bridge: BRIDGE, addresses: [] }),
      assertCode('AlreadyExists', /RTM_NEWLINK veth vbnltstc\/eth2: File exists \(EEXIST\)/),
    );
    assert.throws(
      () => addVeth({ netnsPath: c, hostName: `${PREFIX}d`, peerName: 'eth1', bridge: BRIDGE, addresses: [] }),
      assertCode('AlreadyExists', /RTM_NEWLINK veth vbnltstd\/eth1/),
    );
    assert.equal(listLinks().some((l) => l.name === `${PREFIX}d`), false);
  } finally {
    deleteLink(`${PREFIX}c`);
    removeNetns(c);
  }
});

test('nftApply runs one transaction through libnftables', { skip: skip || nftAvailable() || false }, () => {
  nftApply(`table inet ${NFT_TABLE} {\n  chain c {\n    type filter hook forward priority 0; policy accept;\n    iifname "${BRIDGE}" counter accept\n  }\n}\n`);
  try {
    const text = nftApply(`list table inet ${NFT_TABLE}`);
    assert.match(text, new RegExp(`iifname "${BRIDGE}" counter packets \\d+ bytes \\d+ accept`));
    const json = JSON.parse(nftApply(`list table inet ${NFT_TABLE}`, { json: true })) as { nftables: Record<string, unknown>[] };
    assert.ok(json.nftables.some((o) => 'chain' in o));
    assert.match(nftApply(`list table inet ${NFT_TABLE}`, { handles: true }), /# handle \d+/);
    assert.throws(() => nftApply(`add rule inet ${NFT_TABLE} c bogus nonsense\n`), assertCode('InvalidArgument', /^nft: Error: /));
    // The kernel rejects the second command: the whole transaction, first command included, is void.
    assert.throws(
      () => nftApply(`add chain inet ${NFT_TABLE} d\ndelete chain inet ${NFT_TABLE} nonexistent\n`),
      assertCode('InvalidArgument', /^nft: Error: Could not process rule: No such file or directory/),
    );
    assert.doesNotMatch(nftApply(`list table inet ${NFT_TABLE}`), /chain d/);
    assert.throws(() => nftApply(`list table inet ${NFT_TABLE}x`), assertCode('InvalidArgument', /No such file or directory/));
  } finally {
    nftApply(`delete table inet ${NFT_TABLE}`);
  }
});

test('cost per container (printout, no assertion on time)', { skip }, async () => {
  const rounds = 50;
  const hostName = (i: number): string => `${PREFIX}${i.toString(16)}`;
  const setUp = (i: number): string => {
    const p = join(nsDir, `bench${i}`);
    createNetns(p);
    addVeth({
      netnsPath: p,
      hostName: hostName(i),
      peerName: 'eth0',
      bridge: BRIDGE,
      mac: `02:b7:0a:c7:4e:${(i + 16).toString(16)}`,
      addresses: ipv6 ? [`10.199.77.${i + 100}/24`, `fdb7:7e57:0:77::${(i + 100).toString(16)}/64`] : [`10.199.77.${i + 100}/24`],
      gateway4: '10.199.77.1',
      gateway6: ipv6 ? 'fdb7:7e57:0:77::1' : undefined,
    });
    return p;
  };
  const now = (): number => Number(process.hrtime.bigint()) / 1e6;
  const hostEndsLeft = (): number => listLinks().filter((l) => l.name.startsWith(PREFIX)).length;
  const waitHostEndsGone = async (): Promise<number> => {
    const t0 = now();
    for (let i = 0; i < 1000 && hostEndsLeft() > 0; i++) await new Promise((r) => setTimeout(r, 10));
    return now() - t0;
  };

  // Teardown by unpinning only: the kernel destroys the namespace (and with it both veth
  // ends) in the background, batched across namespaces.
  let create = 0;
  let veth = 0;
  let remove = 0;
  for (let i = 0; i < rounds; i++) {
    const t0 = now();
    const p = join(nsDir, `bench${i}`);
    createNetns(p);
    const t1 = now();
    addVeth({ netnsPath: p, hostName: hostName(i), peerName: 'eth0', bridge: BRIDGE, addresses: [`10.199.77.${i + 100}/24`], gateway4: '10.199.77.1' });
    const t2 = now();
    removeNetns(p);
    create += t1 - t0;
    veth += t2 - t1;
    remove += now() - t2;
  }
  const lag = await waitHostEndsGone();
  const f = (v: number): string => (v / rounds).toFixed(3);
  console.log(`netlink per container over ${rounds}: createNetns ${f(create)} ms + addVeth ${f(veth)} ms + removeNetns ${f(remove)} ms = ${f(create + veth + remove)} ms; host ends gone ${lag.toFixed(0)} ms after the last removeNetns`);

  // Teardown with an explicit deleteLink first (synchronous removal, as disconnect needs).
  const few = 10;
  let del = 0;
  let full = 0;
  for (let i = 0; i < few; i++) {
    const t0 = now();
    const p = setUp(i);
    const t1 = now();
    deleteLink(hostName(i));
    del += now() - t1;
    removeNetns(p);
    full += now() - t0;
  }
  console.log(`netlink with IPv4+IPv6 and deleteLink over ${few}: deleteLink ${(del / few).toFixed(3)} ms, whole cycle ${(full / few).toFixed(3)} ms`);
  assert.equal(await waitHostEndsGone() < 10_000, true, 'host ends went away');
});

test('nothing leaked: no link, no pin file, no pin mount', { skip }, () => {
  assert.equal(describeNetLeaks(netLeaks({ ...scope, expectLinks: [BRIDGE] })), '');
  assert.ok(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').every((l) => !(l.includes(nsDir) && l.includes('nsfs'))));
});
