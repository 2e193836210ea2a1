import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inSubnet, ipamConfig, networkRow } from './networks.js';

test('inSubnet: IPv4 and IPv6 containment', () => {
  assert.equal(inSubnet('10.80.1.7', '10.80.1.0/24'), true);
  assert.equal(inSubnet('10.80.2.7', '10.80.1.0/24'), false);
  assert.equal(inSubnet('10.80.1.128/25', '10.80.1.0/24'), true);
  assert.equal(inSubnet('fd8b:e47b:0:1::9', 'fd8b:e47b:0:1::/64'), true);
  assert.equal(inSubnet('fd8b:e47b:0:2::9', 'fd8b:e47b:0:1::/64'), false);
  assert.equal(inSubnet('10.80.1.7', 'fd8b::/64'), false);
});

test('ipamConfig pairs gateways, ranges and aux addresses with their subnets', () => {
  assert.deepEqual(
    ipamConfig({ subnets: ['10.80.1.0/24', 'fd8b:e47b:0:1::/64'], gateways: ['fd8b:e47b:0:1::1', '10.80.1.254'], ranges: ['10.80.1.128/25'], aux: ['router=10.80.1.2'] }, 'network create'),
    [
      { Subnet: '10.80.1.0/24', IPRange: '10.80.1.128/25', Gateway: '10.80.1.254', AuxiliaryAddresses: { router: '10.80.1.2' } },
      { Subnet: 'fd8b:e47b:0:1::/64', Gateway: 'fd8b:e47b:0:1::1' },
    ],
  );
  assert.deepEqual(ipamConfig({ subnets: [], gateways: [], ranges: [], aux: [] }, 'c'), []);
  assert.throws(() => ipamConfig({ subnets: [], gateways: ['10.0.0.1'], ranges: [], aux: [] }, 'c'), /corresponding subnet/);
  assert.throws(() => ipamConfig({ subnets: ['10.80.1.0/24'], gateways: ['10.9.9.1'], ranges: [], aux: [] }, 'c'), /no matching subnet for gateway 10.9.9.1/);
  assert.throws(() => ipamConfig({ subnets: ['10.80.1.0/24'], gateways: ['10.80.1.1', '10.80.1.2'], ranges: [], aux: [] }, 'c'), /multiple gateways/);
});

test('network ls rows: short ids unless --no-trunc, labels joined', () => {
  const n = { Name: 'front', Id: 'ab'.repeat(32), Created: '2026-11-22T00:00:00Z', Scope: 'local' as const, Driver: 'bridge', EnableIPv4: true, EnableIPv6: false, IPAM: { Driver: 'default', Options: null, Config: [] }, Internal: true, Attachable: false, Ingress: false, ConfigFrom: { Network: '' }, ConfigOnly: false, Containers: {}, Options: {}, Labels: { a: '1' } };
  const row = networkRow(n, true);
  assert.equal(row.ID, 'abababababab');
  assert.equal(row.Internal, 'true');
  assert.equal(row.Labels, 'a=1');
  assert.equal(networkRow(n, false).ID, n.Id);
});
