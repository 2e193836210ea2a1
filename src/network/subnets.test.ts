import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseDefaultBridgeSubnet, chooseIpv6Subnet, chooseUserSubnet, parseProcIpv6Route, parseProcRoute, readHostNetworks } from './subnets.js';

const ROUTE = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010200C0	0003	0	0	0	00000000	0	0	0
eth0	000200C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
berth0	0000570A	00000000	0001	0	0	0	0000FFFF	0	0	0
`;
const ROUTE6 = `fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
`;

test('parse /proc/net/route and ipv6_route', () => {
  assert.deepEqual(parseProcRoute(ROUTE), ['192.0.2.0/24', '10.87.0.0/16']);
  assert.deepEqual(parseProcRoute(ROUTE, (n) => n === 'berth0'), ['192.0.2.0/24']);
  assert.deepEqual(parseProcIpv6Route(ROUTE6), ['fd00::/64']);
});

test('readHostNetworks reads a proc dir', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-subnets-'));
  try {
    writeFileSync(join(dir, 'route'), ROUTE);
    writeFileSync(join(dir, 'ipv6_route'), ROUTE6);
    const h = readHostNetworks({ procNet: dir, skipIface: (n) => n.startsWith('berth') });
    assert.deepEqual(h.routes, ['192.0.2.0/24', 'fd00::/64']);
    assert.ok(Array.isArray(h.addresses));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

const none = { routes: [], addresses: [] };

test('default bridge: 10.87.0.0/16, else the first free /16 of 10.80.0.0/13 downward', () => {
  assert.equal(chooseDefaultBridgeSubnet([], none), '10.87.0.0/16');
  assert.equal(chooseDefaultBridgeSubnet([], { routes: ['10.87.3.0/24'], addresses: [] }), '10.86.0.0/16');
  assert.equal(chooseDefaultBridgeSubnet(['10.86.0.0/16'], { routes: [], addresses: ['10.87.0.5/32'] }), '10.85.0.0/16');
  assert.throws(() => chooseDefaultBridgeSubnet([], { routes: ['10.0.0.0/8'], addresses: [] }), /no free \/16/);
});

test('user networks: first free /24 of 10.80.0.0/14', () => {
  assert.equal(chooseUserSubnet([], none), '10.80.0.0/24');
  assert.equal(chooseUserSubnet(['10.80.0.0/24', '10.80.1.0/24'], { routes: ['10.80.2.0/23'], addresses: ['10.80.4.1/32'] }), '10.80.5.0/24');
  assert.throws(() => chooseUserSubnet(['10.80.0.0/14'], none), /no free \/24/);
});

test('IPv6: fd8b:e47b:0:N::/64', () => {
  assert.equal(chooseIpv6Subnet([], none), 'fd8b:e47b:0:1::/64');
  assert.equal(chooseIpv6Subnet(['fd8b:e47b:0:1::/64'], none), 'fd8b:e47b:0:2::/64');
});
