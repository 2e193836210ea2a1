// Argument validation and error shaping of src/host/netlink.ts: everything here is refused
// before the addon is reached, so these run without root and touch no kernel state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBerthError } from '../errors.js';
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
  parseCidr,
  randomMac,
  removeNetns,
  setSysctl,
  sysctlPath,
  translateNetError,
  checkIfName,
  type VethOptions,
} from './netlink.js';

function invalidArgument(pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isBerthError(err, 'InvalidArgument'), `expected InvalidArgument, got ${String(err)}`);
    assert.match((err as Error).message, pattern);
    return true;
  };
}

const veth: VethOptions = {
  netnsPath: '/run/berth/netns/abc',
  hostName: 'vberth1a2b3c4d5',
  peerName: 'eth0',
  bridge: 'berth0',
  addresses: ['10.87.0.5/16'],
  gateway4: '10.87.0.1',
};

test('interface names follow the kernel rules', () => {
  assert.equal(checkIfName('op', 'name', 'vberth1a2b3c4d5'), 'vberth1a2b3c4d5');
  assert.equal(checkIfName('op', 'name', 'eth0.100'), 'eth0.100');
  assert.throws(() => checkIfName('op', 'name', 'vberth1a2b3c4d5e'), invalidArgument(/longer than 15 bytes/));
  for (const bad of ['', '.', '..', 'a/b', 'a:b', 'a b', 'a\tb']) assert.throws(() => checkIfName('op', 'name', bad), invalidArgument(/name/));
});

test('addVeth refuses bad options before touching the kernel', () => {
  assert.throws(() => addVeth({ ...veth, hostName: 'vberth1a2b3c4d5x' }), invalidArgument(/hostName "vberth1a2b3c4d5x" is longer than 15 bytes/));
  assert.throws(() => addVeth({ ...veth, peerName: 'eth/0' }), invalidArgument(/peerName/));
  assert.throws(() => addVeth({ ...veth, bridge: '' }), invalidArgument(/bridge/));
  assert.throws(() => addVeth({ ...veth, netnsPath: 'relative/ns' }), invalidArgument(/netnsPath must be an absolute path/));
  assert.throws(() => addVeth({ ...veth, addresses: ['10.87.0.5'] }), invalidArgument(/addresses\[0\] "10\.87\.0\.5" is not an address with a prefix length/));
  assert.throws(() => addVeth({ ...veth, addresses: ['10.87.0.5/33'] }), invalidArgument(/addresses\[0\]/));
  assert.throws(() => addVeth({ ...veth, addresses: ['fd00::5/129'] }), invalidArgument(/addresses\[0\]/));
  assert.throws(() => addVeth({ ...veth, mtu: 67 }), invalidArgument(/mtu 67 is out of range/));
  assert.throws(() => addVeth({ ...veth, mtu: 1500.5 }), invalidArgument(/mtu/));
  assert.throws(() => addVeth({ ...veth, mac: '03:b7:0a:57:00:05' }), invalidArgument(/multicast/));
  assert.throws(() => addVeth({ ...veth, mac: '02:b7:0a:57:00' }), invalidArgument(/not a MAC address/));
  assert.throws(() => addVeth({ ...veth, gateway4: 'fd00::1' }), invalidArgument(/gateway4 "fd00::1" is not an IPv4 address/));
  assert.throws(() => addVeth({ ...veth, gateway6: '10.87.0.1' }), invalidArgument(/gateway6/));
  assert.throws(() => addVeth({ ...veth, routes: [{ dst: '10.1.0.0' }] }), invalidArgument(/routes\[0\]\.dst/));
  assert.throws(() => addVeth({ ...veth, routes: [{ dst: '10.1.0.0/16', via: 'fd00::1' }] }), invalidArgument(/routes\[0\]\.via "fd00::1" is not an IPv4 address/));
});

test('ensureBridge refuses bad options', () => {
  assert.throws(() => ensureBridge({ name: 'berth-0123456789', addresses: [] }), invalidArgument(/longer than 15 bytes/));
  assert.throws(() => ensureBridge({ name: 'berth0', addresses: ['10.87.0.1'] }), invalidArgument(/ensureBridge berth0: addresses\[0\]/));
  assert.throws(() => ensureBridge({ name: 'berth0', addresses: [], mtu: 70000 }), invalidArgument(/mtu/));
});

test('paths must be absolute', () => {
  assert.throws(() => createNetns('netns/x'), invalidArgument(/createNetns: path must be an absolute path/));
  assert.throws(() => removeNetns(''), invalidArgument(/removeNetns/));
  assert.throws(() => ensureSharedDir('run/berth'), invalidArgument(/ensureSharedDir/));
  assert.throws(() => listLinks('ns'), invalidArgument(/listLinks in ns/));
  assert.throws(() => deleteLink('eth0', 'ns'), invalidArgument(/netnsPath/));
  assert.throws(() => deleteLink('x'.repeat(16)), invalidArgument(/longer than 15/));
});

test('deleteLinkAsync rejects bad arguments', async () => {
  await assert.rejects(deleteLinkAsync('a/b'), invalidArgument(/deleteLink a\/b: name/));
  await assert.rejects(deleteLinkAsync('eth0', 'rel'), invalidArgument(/netnsPath/));
});

test('sysctl keys map to /proc/sys paths, interface names with dots included', () => {
  assert.equal(sysctlPath('net.ipv4.conf.berth0.route_localnet'), 'net/ipv4/conf/berth0/route_localnet');
  assert.equal(sysctlPath('net.ipv4.conf.eth0.100.forwarding'), 'net/ipv4/conf/eth0.100/forwarding');
  assert.equal(sysctlPath('net.ipv6.conf.all.disable_ipv6'), 'net/ipv6/conf/all/disable_ipv6');
  assert.equal(sysctlPath('net.ipv6.neigh.eth0.100.base_reachable_time_ms'), 'net/ipv6/neigh/eth0.100/base_reachable_time_ms');
  assert.equal(sysctlPath('net.ipv4.ip_forward'), 'net/ipv4/ip_forward');
  assert.equal(sysctlPath('net.ipv4.ping_group_range'), 'net/ipv4/ping_group_range');
  assert.equal(sysctlPath('net/ipv4/conf/eth0.100/forwarding'), 'net/ipv4/conf/eth0.100/forwarding');
  assert.throws(() => sysctlPath('kernel.pid_max'), invalidArgument(/only net\.\* keys/));
  assert.throws(() => sysctlPath('net/ipv4/../../kernel/pid_max'), invalidArgument(/"\.\."/));
  assert.throws(() => sysctlPath('net..ipv4'), invalidArgument(/empty/));
  assert.throws(() => setSysctl('net.ipv4.ip_forward', '1\0'), invalidArgument(/value/));
});

test('CIDR parsing keeps the host address', () => {
  assert.deepEqual(parseCidr('10.87.0.5/16'), { family: 4, address: '10.87.0.5', prefix: 16 });
  assert.deepEqual(parseCidr('fd8b:e47b::5/64'), { family: 6, address: 'fd8b:e47b::5', prefix: 64 });
  for (const bad of ['10.87.0.5', '10.87.0.5/', '10.87.0.5/33', 'fe80::1%eth0/64', 'x/8', 42]) assert.equal(parseCidr(bad), undefined, String(bad));
});

test('random MACs are unicast and locally administered', () => {
  for (let i = 0; i < 32; i++) {
    const mac = randomMac();
    assert.match(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    const first = parseInt(mac.slice(0, 2), 16);
    assert.equal(first & 1, 0);
    assert.equal(first & 2, 2);
  }
});

test('native errors read as op: step object: strerror (CODE): kernel text', () => {
  const native = Object.assign(new Error('File exists'), { errno: 17, step: 'RTM_NEWADDR', object: '10.87.0.5/16' });
  const err = translateNetError('addVeth vberth1a2b3c4d5 → eth0 in /run/berth/netns/abc', native);
  assert.ok(isBerthError(err, 'AlreadyExists'));
  assert.equal((err as Error).message, 'addVeth vberth1a2b3c4d5 → eth0 in /run/berth/netns/abc: RTM_NEWADDR 10.87.0.5/16: File exists (EEXIST)');
  const withKernel = translateNetError('ensureBridge b', Object.assign(new Error('Invalid argument'), { errno: 22, step: 'RTM_NEWLINK', object: 'b', detail: 'Unknown device type' }));
  assert.ok(isBerthError(withKernel, 'InvalidArgument'));
  assert.match((withKernel as Error).message, /RTM_NEWLINK b: Invalid argument \(EINVAL\): Unknown device type$/);
  const perm = translateNetError('createNetns /x', Object.assign(new Error('Operation not permitted'), { errno: 1, step: 'unshare', object: 'CLONE_NEWNET' }));
  assert.ok(isBerthError(perm, 'FailedPrecondition'));
  assert.match((perm as { hint?: string }).hint ?? '', /root/);
  const sysctl = translateNetError('setSysctl k', Object.assign(new Error('No such file or directory'), { errno: 2, step: 'open', object: '/proc/sys/net/ipv4/conf/eth9/forwarding' }));
  assert.ok(isBerthError(sysctl, 'NotFound'));
  assert.match((sysctl as { hint?: string }).hint ?? '', /no such sysctl/);
  const other = new TypeError('bug');
  assert.equal(translateNetError('x', other), other);
});

test('nftApply refuses text with null bytes', () => {
  assert.throws(() => nftApply('list tables\0'), invalidArgument(/null bytes/));
});

test('netlinkAvailable answers null or a reason', () => {
  const why = netlinkAvailable();
  assert.ok(why === null || (typeof why === 'string' && why.length > 0));
});
