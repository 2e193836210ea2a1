import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { isBerthError } from '../errors.js';
import { PortAllocator, hostIpsOverlap, hostPortFree, type PortProbe } from './ports.js';

const always = async (): Promise<boolean> => true;

test('a fixed port is published on 0.0.0.0, and on :: too with IPv6', async () => {
  const a = new PortAllocator({ isFree: always, range: { start: 40000, end: 40100 } });
  const v4 = await a.allocate('s1', [{ containerPort: 80, protocol: 'tcp', hostPort: { start: 8080, end: 8080 } }], { ipv6: false });
  assert.deepEqual(v4, [{ containerPort: 80, protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8080 }]);
  const both = await a.allocate('s2', [{ containerPort: 53, protocol: 'udp', hostIp: '', hostPort: { start: 5353, end: 5353 } }], { ipv6: true });
  assert.deepEqual(
    both.map((m) => m.hostIp),
    ['0.0.0.0', '::'],
  );
});

test('a port another sandbox published is a Conflict naming port, address and owner', async () => {
  const a = new PortAllocator({ isFree: always });
  await a.allocate('owner1', [{ containerPort: 80, protocol: 'tcp', hostPort: { start: 8080, end: 8080 } }], { ipv6: false });
  await assert.rejects(
    a.allocate('s2', [{ containerPort: 81, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: { start: 8080, end: 8080 } }], { ipv6: false }),
    (err) => isBerthError(err, 'Conflict') && err.message === 'port 8080/tcp on 127.0.0.1 is already published by owner1',
  );
  // Another protocol, or the other family, is a different port.
  await a.allocate('s3', [{ containerPort: 80, protocol: 'udp', hostPort: { start: 8080, end: 8080 } }], { ipv6: false });
  await a.allocate('s4', [{ containerPort: 80, protocol: 'tcp', hostIp: '::', hostPort: { start: 8080, end: 8080 } }], { ipv6: false });
});

test('address overlap: 0.0.0.0 covers IPv4, :: covers IPv6, families never overlap', () => {
  assert.equal(hostIpsOverlap('0.0.0.0', '10.0.0.1'), true);
  assert.equal(hostIpsOverlap('10.0.0.1', '10.0.0.2'), false);
  assert.equal(hostIpsOverlap('::', 'fd00::1'), true);
  assert.equal(hostIpsOverlap('0.0.0.0', '::'), false);
});

test('a host listener makes the port a Conflict; a range skips to the first free port', async () => {
  const busy = new Set([8080, 8081]);
  const a = new PortAllocator({ isFree: async (p) => !busy.has(p.hostPort) });
  await assert.rejects(
    a.allocate('s1', [{ containerPort: 80, protocol: 'tcp', hostPort: { start: 8080, end: 8080 } }], { ipv6: false }),
    (err) => isBerthError(err, 'Conflict') && /port 8080\/tcp on 0\.0\.0\.0 is already in use by a process on the host/.test(err.message),
  );
  await a.allocate('s0', [{ containerPort: 80, protocol: 'tcp', hostPort: { start: 8082, end: 8082 } }], { ipv6: false });
  const got = await a.allocate('s1', [{ containerPort: 80, protocol: 'tcp', hostPort: { start: 8080, end: 8090 } }], { ipv6: false });
  assert.equal(got[0]!.hostPort, 8083);
  await assert.rejects(
    a.allocate('s2', [{ containerPort: 80, protocol: 'tcp', hostPort: { start: 8080, end: 8083 } }], { ipv6: false }),
    (err) => isBerthError(err, 'Conflict') && /no free port in 8080-8083\/tcp/.test(err.message),
  );
});

test('all or nothing: a failing request leaves the earlier ones unallocated', async () => {
  const a = new PortAllocator({ isFree: always });
  await a.allocate('other', [{ containerPort: 1, protocol: 'tcp', hostPort: { start: 9001, end: 9001 } }], { ipv6: false });
  await assert.rejects(
    a.allocate(
      's1',
      [
        { containerPort: 1, protocol: 'tcp', hostPort: { start: 9000, end: 9000 } },
        { containerPort: 2, protocol: 'tcp', hostPort: { start: 9001, end: 9001 } },
      ],
      { ipv6: false },
    ),
    (err) => isBerthError(err, 'Conflict'),
  );
  assert.deepEqual(a.mappings('s1'), []);
  await a.allocate('s2', [{ containerPort: 1, protocol: 'tcp', hostPort: { start: 9000, end: 9000 } }], { ipv6: false });
});

test('the same port twice in one request is a Conflict', async () => {
  const a = new PortAllocator({ isFree: always });
  await assert.rejects(
    a.allocate(
      's1',
      [
        { containerPort: 80, protocol: 'tcp', hostPort: { start: 8080, end: 8080 } },
        { containerPort: 81, protocol: 'tcp', hostPort: { start: 8080, end: 8080 } },
      ],
      { ipv6: false },
    ),
    (err) => isBerthError(err, 'Conflict') && /already published by another port of s1/.test(err.message),
  );
});

test('no hostPort: random free ports from the range, one number for both families', async () => {
  const a = new PortAllocator({ isFree: always, range: { start: 30000, end: 39999 } });
  const ports: number[] = [];
  for (let i = 0; i < 20; i++) {
    const got = await a.allocate(`s${i}`, [{ containerPort: 80, protocol: 'tcp' }], { ipv6: true });
    assert.equal(got.length, 2);
    assert.equal(got[0]!.hostPort, got[1]!.hostPort);
    ports.push(got[0]!.hostPort);
  }
  assert.ok(ports.every((p) => p >= 30000 && p <= 39999));
  assert.equal(new Set(ports).size, ports.length);
  const sequential = ports.every((p, i) => i === 0 || p === ports[i - 1]! + 1);
  assert.equal(sequential, false);
});

test('random picks are bounded, and the range is shared fairly under concurrency', async () => {
  let probes = 0;
  const full = new PortAllocator({ isFree: async () => (probes++, false), range: { start: 1024, end: 65535 } });
  await assert.rejects(full.allocate('s', [{ containerPort: 80, protocol: 'tcp' }], { ipv6: false }), (err) => isBerthError(err, 'Unavailable'));
  assert.ok(probes <= 64, `probes ${probes}`);

  const small = new PortAllocator({ isFree: always, range: { start: 5000, end: 5001 } });
  const [x, y] = await Promise.all([
    small.allocate('a', [{ containerPort: 1, protocol: 'udp' }], { ipv6: false }),
    small.allocate('b', [{ containerPort: 1, protocol: 'udp' }], { ipv6: false }),
  ]);
  assert.notEqual(x[0]!.hostPort, y[0]!.hostPort);
  await assert.rejects(small.allocate('c', [{ containerPort: 1, protocol: 'udp' }], { ipv6: false }), (err) => isBerthError(err, 'Unavailable'));
});

test('release frees a sandbox\'s ports; restore takes them again', async () => {
  const a = new PortAllocator({ isFree: always });
  const req = [{ containerPort: 80, protocol: 'tcp' as const, hostPort: { start: 8080, end: 8080 } }];
  await a.allocate('s1', req, { ipv6: false });
  a.release('s1');
  a.release('s1');
  const again = await a.allocate('s2', req, { ipv6: false });
  a.release('s2');
  a.restore('s3', again);
  await assert.rejects(a.allocate('s4', req, { ipv6: false }), (err) => isBerthError(err, 'Conflict') && /published by s3/.test(err.message));
});

test('bad requests are InvalidArgument naming the field', async () => {
  const a = new PortAllocator({ isFree: always });
  const bad = async (req: object, re: RegExp): Promise<void> => {
    await assert.rejects(a.allocate('s', [req as never], { ipv6: false }), (err) => isBerthError(err, 'InvalidArgument') && re.test(err.message));
  };
  await bad({ containerPort: 0, protocol: 'tcp' }, /ports\[0\]\.containerPort/);
  await bad({ containerPort: 80, protocol: 'icmp' }, /ports\[0\]\.protocol/);
  await bad({ containerPort: 80, protocol: 'tcp', hostIp: 'localhost' }, /ports\[0\]\.hostIp/);
  await bad({ containerPort: 80, protocol: 'tcp', hostIp: 'fe80::1%eth0' }, /ports\[0\]\.hostIp/);
  await bad({ containerPort: 80, protocol: 'tcp', hostPort: { start: 9, end: 8 } }, /ports\[0\]\.hostPort/);
  assert.throws(() => new PortAllocator({ range: { start: 0, end: 10 } }), (err) => isBerthError(err, 'InvalidArgument'));
});

test('hostPortFree sees a TCP listener on 127.0.0.1 and a free port as free', async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const port = (server.address() as AddressInfo).port;
  try {
    const probe: PortProbe = { hostIp: '127.0.0.1', hostPort: port, protocol: 'tcp' };
    assert.equal(await hostPortFree(probe), false);
    assert.equal(await hostPortFree({ ...probe, hostIp: '0.0.0.0' }), false);
    // UDP is another port space.
    assert.equal(await hostPortFree({ ...probe, protocol: 'udp' }), true);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  assert.equal(await hostPortFree({ hostIp: '127.0.0.1', hostPort: port, protocol: 'tcp' }), true);
  await assert.rejects(hostPortFree({ hostIp: '192.0.2.77', hostPort: port, protocol: 'tcp' }), (err) => isBerthError(err, 'InvalidArgument'));
});
