import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ipam, contains, formatIp, macFromIpv4, normaliseCidr, normaliseIp, overlaps, parseCidr, parseIp } from './ipam.js';
import { isBerthError } from '../errors.js';

test('parse and format IPv4 and IPv6', () => {
  assert.equal(formatIp(4, parseIp('10.87.0.1')!.value), '10.87.0.1');
  assert.equal(normaliseIp('FD8B:E47B:0:0:0:0:0:1'), 'fd8b:e47b::1');
  assert.equal(normaliseIp('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
  assert.equal(normaliseIp('::'), '::');
  assert.equal(normaliseIp('::1'), '::1');
  assert.equal(normaliseIp('1::'), '1::');
  assert.equal(normaliseIp('::ffff:10.0.0.1'), '::ffff:a00:1');
  assert.equal(normaliseIp('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2:3:4:5:6');
  assert.equal(normaliseIp('2001:0:1:2:3:4:5:0'), '2001:0:1:2:3:4:5:0');
  assert.equal(normaliseIp('10.1'), undefined);
  assert.equal(normaliseIp('fe80::1%eth0'), undefined);
});

test('CIDR normalise, contains, overlaps', () => {
  assert.equal(normaliseCidr('10.1.2.3/16'), '10.1.0.0/16');
  assert.equal(normaliseCidr('fd8b:e47b:0:1::5/64'), 'fd8b:e47b:0:1::/64');
  assert.equal(normaliseCidr('10.1.2.3/33'), undefined);
  assert.equal(normaliseCidr('10.1.2.3'), undefined);
  assert.equal(normaliseCidr('10.1.2.3/'), undefined);
  assert.ok(contains('10.87.0.0/16', '10.87.255.1'));
  assert.ok(!contains('10.87.0.0/16', '10.88.0.1'));
  assert.ok(!contains('10.87.0.0/16', 'fd00::1'));
  assert.ok(overlaps('10.0.0.0/8', '10.87.0.0/16'));
  assert.ok(overlaps('10.87.0.0/16', '10.0.0.0/8'));
  assert.ok(!overlaps('10.87.0.0/16', '10.88.0.0/16'));
  assert.ok(!overlaps('10.0.0.0/8', 'fd00::/8'));
  assert.ok(overlaps('fd8b:e47b::/48', 'fd8b:e47b:0:3::/64'));
  assert.equal(parseCidr('0.0.0.0/0')!.prefixLen, 0);
});

test('MAC from IPv4', () => {
  assert.equal(macFromIpv4('10.87.0.2'), '02:b7:0a:57:00:02');
});

const net = (subnet: string, gateway: string, extra: { ipRange?: string; auxAddresses?: Record<string, string> } = {}) => [{ subnet, gateway, ...extra }];

test('dynamic allocation skips network, gateway, broadcast; next-free-after-last with wrap', () => {
  const ipam = new Ipam();
  ipam.addNetwork('n', 'net', net('10.0.0.0/29', '10.0.0.1'));
  const got = [1, 2, 3, 4, 5].map((i) => ipam.allocate('n', { family: 4, owner: `e${i}` }).address);
  assert.deepEqual(got, ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
  assert.throws(() => ipam.allocate('n', { family: 4, owner: 'e6' }), (e) => isBerthError(e, 'Unavailable') && /no free IPv4/.test(e.message));
  ipam.release('n', '10.0.0.3', 'e2');
  ipam.release('n', '10.0.0.5', 'someone-else'); // not the holder: stays
  const a = ipam.allocate('n', { family: 4, owner: 'e7' });
  assert.equal(a.address, '10.0.0.3');
  assert.equal(a.prefixLen, 29);
  assert.equal(a.gateway, '10.0.0.1');
});

test('a just-released address is not reused at once', () => {
  const ipam = new Ipam();
  ipam.addNetwork('n', 'net', net('10.0.0.0/24', '10.0.0.1'));
  const a = ipam.allocate('n', { family: 4, owner: 'a' });
  ipam.release('n', a.address, 'a');
  const b = ipam.allocate('n', { family: 4, owner: 'b' });
  assert.notEqual(b.address, a.address);
});

test('ipRange and aux addresses', () => {
  const ipam = new Ipam();
  ipam.addNetwork('n', 'net', net('10.0.0.0/24', '10.0.0.1', { ipRange: '10.0.0.128/30', auxAddresses: { x: '10.0.0.129' } }));
  assert.equal(ipam.allocate('n', { family: 4, owner: 'a' }).address, '10.0.0.128');
  assert.equal(ipam.allocate('n', { family: 4, owner: 'b' }).address, '10.0.0.130');
  assert.equal(ipam.allocate('n', { family: 4, owner: 'c' }).address, '10.0.0.131');
  // static addresses may lie outside the range but inside the subnet
  assert.equal(ipam.allocate('n', { family: 4, owner: 'd', address: '10.0.0.50' }).address, '10.0.0.50');
});

test('static requests: outside, taken, gateway, network address, wrong family', () => {
  const ipam = new Ipam();
  ipam.addNetwork('n', 'net1', net('10.0.0.0/24', '10.0.0.1'));
  ipam.allocate('n', { family: 4, owner: 'a', address: '10.0.0.9' });
  assert.throws(() => ipam.allocate('n', { family: 4, owner: 'b', address: '10.0.1.9', field: 'f' }), (e) => isBerthError(e, 'InvalidArgument') && /f: address 10.0.1.9 is outside network net1's subnets \(10.0.0.0\/24\)/.test(e.message));
  assert.throws(() => ipam.allocate('n', { family: 4, owner: 'b', address: '10.0.0.9' }), (e) => isBerthError(e, 'Conflict') && /already in use on network net1/.test(e.message));
  assert.throws(() => ipam.allocate('n', { family: 4, owner: 'b', address: '10.0.0.1' }), (e) => isBerthError(e, 'Conflict') && /gateway/.test(e.message));
  assert.throws(() => ipam.allocate('n', { family: 4, owner: 'b', address: '10.0.0.0' }), (e) => isBerthError(e, 'InvalidArgument'));
  assert.throws(() => ipam.allocate('n', { family: 4, owner: 'b', address: '10.0.0.255' }), (e) => isBerthError(e, 'InvalidArgument'));
  assert.throws(() => ipam.allocate('n', { family: 4, owner: 'b', address: 'fd00::1' }), (e) => isBerthError(e, 'InvalidArgument'));
  assert.throws(() => ipam.allocate('n', { family: 6, owner: 'b' }), (e) => isBerthError(e, 'InvalidArgument') && /no IPv6 subnet/.test(e.message));
  // the same owner asking again (restore of a static address) is fine
  assert.equal(ipam.allocate('n', { family: 4, owner: 'a', address: '10.0.0.9' }).address, '10.0.0.9');
});

test('IPv6 allocation starts after the subnet-router address', () => {
  const ipam = new Ipam();
  ipam.addNetwork('n', 'net', [
    { subnet: '10.0.0.0/24', gateway: '10.0.0.1' },
    { subnet: 'fd8b:e47b:0:1::/64', gateway: 'fd8b:e47b:0:1::1' },
  ]);
  const a = ipam.allocate('n', { family: 6, owner: 'a' });
  assert.deepEqual(a, { address: 'fd8b:e47b:0:1::2', prefixLen: 64, gateway: 'fd8b:e47b:0:1::1' });
  assert.ok(ipam.hasFamily('n', 6));
});

test('reserve rebuilds state; cursor moves past reserved addresses', () => {
  const ipam = new Ipam();
  ipam.addNetwork('n', 'net', net('10.0.0.0/24', '10.0.0.1'));
  assert.ok(ipam.reserve('n', '10.0.0.7', 'a'));
  assert.ok(!ipam.reserve('n', '10.0.0.7', 'b'));
  assert.ok(!ipam.reserve('n', '10.9.0.7', 'b'));
  assert.equal(ipam.holder('n', '10.0.0.7'), 'a');
  assert.equal(ipam.allocate('n', { family: 4, owner: 'c' }).address, '10.0.0.8');
});
