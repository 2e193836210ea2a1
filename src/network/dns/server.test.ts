// Everything on 127.0.0.0/8 (all loopback): the server, a stub upstream, and clients bound
// to distinct 127.0.0.x addresses posing as containers. Nothing is sent anywhere else.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { isBerthError } from '../../errors.js';
import { buildMessage, parseMessage, RecordClass, RecordType, Rcode, responseFlags, type DnsMessage, type DnsRecord } from './message.js';
import { EmbeddedDns, DEFAULT_TTL } from './server.js';
import type { Upstream } from './resolv.js';

const LO = '127.0.0.1';
const WEB = '127.0.0.10';
const DB1 = '127.0.0.11';
const DB2 = '127.0.0.12';
const OTHER = '127.0.0.13';
const BOTH = '127.0.0.14';
const STRANGER = '127.0.0.2';

function query(name: string, type: number, opts: { id?: number; edns?: { udpSize: number; version?: number } } = {}): Buffer {
  return buildMessage({
    id: opts.id ?? Math.floor(Math.random() * 65536),
    flags: { qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, ad: false, cd: false, rcode: 0 },
    questions: [{ name, type, class: RecordClass.IN }],
    answers: [],
    authorities: [],
    additionals: [],
    edns: opts.edns ? { udpSize: opts.edns.udpSize, extendedRcode: 0, version: opts.edns.version ?? 0, dnssecOk: false, options: new Uint8Array(0) } : undefined,
  });
}

/** Sends raw bytes over UDP from `from` and returns the first datagram back, or undefined after `waitMs`. */
function udpRaw(port: number, from: string, bytes: Buffer, waitMs = 3000): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      sock.close();
      resolve(undefined);
    }, waitMs);
    sock.on('error', (err) => {
      clearTimeout(timer);
      sock.close();
      reject(err);
    });
    sock.on('message', (msg) => {
      clearTimeout(timer);
      sock.close();
      resolve(msg);
    });
    sock.bind({ address: from, port: 0 }, () => sock.send(bytes, port, LO));
  });
}

async function ask(port: number, from: string, q: Buffer): Promise<DnsMessage> {
  const resp = await udpRaw(port, from, q);
  assert.ok(resp, 'an answer');
  const m = parseMessage(resp);
  assert.equal(m.id, q.readUInt16BE(0), 'the client id comes back');
  return m;
}

/** One query over TCP (length-prefixed), or several pipelined on one connection. */
function tcpRaw(port: number, from: string, messages: Buffer[], expect = messages.length): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: LO, port, localAddress: from });
    const out: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(out);
    }, 5000);
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    sock.on('connect', () => {
      for (const m of messages) {
        const head = Buffer.alloc(2);
        head.writeUInt16BE(m.length);
        sock.write(Buffer.concat([head, m]));
      }
    });
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length >= expect) sock.end();
    });
  });
}

async function askTcp(port: number, from: string, q: Buffer): Promise<DnsMessage> {
  const [resp] = await tcpRaw(port, from, [q]);
  assert.ok(resp, 'an answer over TCP');
  return parseMessage(resp);
}

const addrs = (m: DnsMessage): string[] => m.answers.map((a) => a.address ?? a.target ?? '').sort();

interface Stub {
  upstream: Upstream;
  seen: { name: string; transport: 'udp' | 'tcp'; id: number }[];
  close(): Promise<void>;
}

type StubAnswer = { rcode?: number; answers?: DnsRecord[]; tc?: boolean } | 'silent' | { raw: Buffer[] };

/** A stub upstream on 127.0.0.1 (UDP and TCP on one port) answering from `zone`; unknown names get NXDOMAIN. */
async function startStub(t: TestContext, zone: (name: string, transport: 'udp' | 'tcp', q: DnsMessage) => StubAnswer | undefined): Promise<Stub> {
  const seen: Stub['seen'] = [];
  const answer = (bytes: Buffer, transport: 'udp' | 'tcp'): Buffer[] => {
    const q = parseMessage(bytes);
    const name = q.questions[0]!.name;
    seen.push({ name, transport, id: q.id });
    const z = zone(name.toLowerCase(), transport, q) ?? { rcode: Rcode.NXDomain };
    if (z === 'silent') return [];
    if ('raw' in z) return z.raw.map((r) => Buffer.concat([Buffer.from([q.id >> 8, q.id & 0xff]), r.subarray(2)]));
    const flags = { ...responseFlags(q.flags, z.rcode ?? 0), tc: z.tc ?? false };
    return [buildMessage({ ...q, flags, answers: z.answers ?? [] })];
  };
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind({ address: LO, port: 0 }, r));
  const port = udp.address().port;
  udp.on('message', (m, rinfo) => {
    for (const out of answer(m, 'udp')) udp.send(out, rinfo.port, rinfo.address);
  });
  const conns = new Set<net.Socket>();
  const tcp = net.createServer((s) => {
    conns.add(s);
    s.on('close', () => conns.delete(s));
    s.on('error', () => undefined);
    s.on('data', (chunk) => {
      for (const out of answer(chunk.subarray(2), 'tcp')) {
        const head = Buffer.alloc(2);
        head.writeUInt16BE(out.length);
        s.write(Buffer.concat([head, out]));
      }
    });
  });
  await new Promise<void>((r) => tcp.listen({ host: LO, port }, r));
  const stub: Stub = {
    upstream: { address: LO, port },
    seen,
    close: async () => {
      for (const c of conns) c.destroy();
      await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
    },
  };
  t.after(() => stub.close());
  return stub;
}

const A = (name: string, address: string): DnsRecord => ({ name, type: RecordType.A, class: 1, ttl: 300, address });

function publicZone(name: string, transport: 'udp' | 'tcp'): StubAnswer | undefined {
  if (name === 'example.test') return { answers: [A('example.test', '203.0.113.1')] };
  if (name === 'big.test') {
    if (transport === 'udp') return { tc: true };
    return { answers: Array.from({ length: 40 }, (_v, i) => A('big.test', `203.0.113.${i + 1}`)) };
  }
  if (name === 'fail.test') return { rcode: Rcode.ServFail };
  if (name === 'slow.test') return 'silent';
  return undefined;
}

async function setup(t: TestContext, opts: { timeoutMs?: number } = {}) {
  const stub = await startStub(t, publicZone);
  const warnings: string[] = [];
  let upstreams = [stub.upstream];
  const dns = new EmbeddedDns({ upstreams: () => upstreams, timeoutMs: opts.timeoutMs ?? 300, warn: (m) => warnings.push(m) });
  t.after(() => dns.close());
  const n1 = await dns.listen('net1', LO, { port: 0, networkName: 'mynet' });
  const n2 = await dns.listen('net2', LO, { port: 0, networkName: 'othernet' });
  dns.register('net1', { sandboxId: 'web', names: ['web', 'WebAlias', '0123456789ab'], ipv4: WEB, ipv6: 'fd8b:e47b:0:1:0::10' });
  dns.register('net1', { sandboxId: 'db1', names: ['db1', 'db'], ipv4: DB1 });
  dns.register('net1', { sandboxId: 'db2', names: ['db2', 'db'], ipv4: DB2 });
  dns.register('net2', { sandboxId: 'other', names: ['other'], ipv4: OTHER });
  dns.register('net1', { sandboxId: 'both', names: ['both'], ipv4: BOTH });
  dns.register('net2', { sandboxId: 'both', names: ['both'], ipv4: BOTH });
  return { dns, stub, n1, n2, warnings, setUpstreams: (u: Upstream[]) => (upstreams = u) };
}

test('names, aliases and short ids are answered, case-insensitively, with or without the trailing dot', async (t) => {
  const { n1, stub } = await setup(t);
  for (const name of ['web', 'WEB', 'web.', 'webalias', '0123456789AB', 'web.mynet', 'Web.MyNet.']) {
    const m = await ask(n1.port, WEB, query(name, RecordType.A));
    assert.equal(m.flags.rcode, Rcode.NoError, name);
    assert.equal(m.flags.qr, true);
    assert.equal(m.flags.aa, true);
    assert.deepEqual(addrs(m), [WEB], name);
    assert.equal(m.answers[0]?.name, name.replace(/\.$/, ''), 'the question is echoed as asked (0x20-safe)');
    assert.equal(m.answers[0]?.ttl, DEFAULT_TTL);
  }
  const v6 = await ask(n1.port, DB1, query('web', RecordType.AAAA));
  assert.deepEqual(addrs(v6), ['fd8b:e47b:0:1::10']);
  const none = await ask(n1.port, WEB, query('db1', RecordType.AAAA));
  assert.equal(none.flags.rcode, Rcode.NoError, 'a known name without an IPv6 address is NODATA, not forwarded');
  assert.equal(none.answers.length, 0);
  assert.equal(stub.seen.length, 0, 'nothing was forwarded');
});

test('a shared alias answers every address; PTR gives the name on its network', async (t) => {
  const { n1 } = await setup(t);
  const m = await ask(n1.port, WEB, query('db', RecordType.A));
  assert.deepEqual(addrs(m), [DB1, DB2]);
  const ptr = await ask(n1.port, WEB, query('11.0.0.127.in-addr.arpa', RecordType.PTR));
  assert.deepEqual(addrs(ptr), ['db1.mynet']);
  const ptr6 = await ask(n1.port, DB1, query('0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.0.0.b.7.4.e.b.8.d.f.ip6.arpa', RecordType.PTR));
  assert.deepEqual(addrs(ptr6), ['web.mynet']);
});

test('unknown names are forwarded with a fresh id, and the answer returns with the client id', async (t) => {
  const { n1, stub } = await setup(t);
  const q = query('Example.Test', RecordType.A, { id: 4242 });
  const m = await ask(n1.port, WEB, q);
  assert.equal(m.id, 4242);
  assert.deepEqual(addrs(m), ['203.0.113.1']);
  assert.equal(stub.seen.length, 1);
  assert.equal(stub.seen[0]?.transport, 'udp');
  const nx = await ask(n1.port, WEB, query('nowhere.test', RecordType.A));
  assert.equal(nx.flags.rcode, Rcode.NXDomain);
  const mx = await ask(n1.port, WEB, query('web', RecordType.MX));
  assert.equal(mx.flags.rcode, Rcode.NXDomain, 'types other than A/AAAA/PTR are forwarded');
  const ptr = await ask(n1.port, WEB, query('1.113.0.203.in-addr.arpa', RecordType.PTR));
  assert.equal(ptr.flags.rcode, Rcode.NXDomain, 'PTR of an address that is not a container is forwarded');
  assert.deepEqual(
    stub.seen.map((s) => s.name),
    ['Example.Test', 'nowhere.test', 'web', '1.113.0.203.in-addr.arpa'],
  );
});

test('a client that is not registered on the network is refused', async (t) => {
  const { n1, n2, stub } = await setup(t);
  const m = await ask(n1.port, STRANGER, query('web', RecordType.A));
  assert.equal(m.flags.rcode, Rcode.Refused);
  assert.equal(m.answers.length, 0);
  assert.equal(m.questions[0]?.name, 'web');
  const other = await ask(n1.port, OTHER, query('example.test', RecordType.A));
  assert.equal(other.flags.rcode, Rcode.Refused, "a container of another network may not use this network's server");
  const tcp = await askTcp(n2.port, WEB, query('other', RecordType.A));
  assert.equal(tcp.flags.rcode, Rcode.Refused);
  assert.equal(stub.seen.length, 0);
});

test('networks are isolated; a client on two networks sees both', async (t) => {
  const { n1, n2, stub } = await setup(t);
  const fromOther = await ask(n2.port, OTHER, query('web', RecordType.A));
  assert.equal(fromOther.flags.rcode, Rcode.NXDomain, 'not answered from net1; forwarded instead');
  assert.deepEqual(stub.seen.map((s) => s.name), ['web']);
  const scoped = await ask(n2.port, OTHER, query('web.mynet', RecordType.A));
  assert.equal(scoped.flags.rcode, Rcode.NXDomain, 'naming the other network does not cross it');
  const ptr = await ask(n2.port, OTHER, query('10.0.0.127.in-addr.arpa', RecordType.PTR));
  assert.equal(ptr.flags.rcode, Rcode.NXDomain);
  for (const port of [n1.port, n2.port]) {
    assert.deepEqual(addrs(await ask(port, BOTH, query('web', RecordType.A))), [WEB]);
    assert.deepEqual(addrs(await ask(port, BOTH, query('other', RecordType.A))), [OTHER]);
    assert.deepEqual(addrs(await ask(port, BOTH, query('other.othernet', RecordType.A))), [OTHER]);
  }
});

test('unregister removes names and the right to ask; register replaces', async (t) => {
  const { dns, n1 } = await setup(t);
  dns.unregister('net1', 'db2');
  assert.deepEqual(addrs(await ask(n1.port, WEB, query('db', RecordType.A))), [DB1]);
  assert.equal((await ask(n1.port, DB2, query('db', RecordType.A))).flags.rcode, Rcode.Refused);
  dns.register('net1', { sandboxId: 'db1', names: ['renamed'], ipv4: DB2 });
  assert.deepEqual(addrs(await ask(n1.port, WEB, query('renamed', RecordType.A))), [DB2]);
  assert.equal((await ask(n1.port, DB1, query('renamed', RecordType.A))).flags.rcode, Rcode.Refused, 'the old address is gone');
  assert.throws(() => dns.register('net1', { sandboxId: 'x', names: ['x'], ipv4: 'fd00::1' }), /ipv4 "fd00::1" is not an IPv4 address/);
  assert.throws(() => dns.register('net1', { sandboxId: 'x', names: ['a..b'], ipv4: '127.0.0.20' }), /empty label/);
});

test('names: false (the default bridge) only forwards', async (t) => {
  const { dns, stub } = await setup(t);
  const b = await dns.listen('bridge', LO, { port: 0, names: false });
  dns.register('bridge', { sandboxId: 'c1', names: ['c1'], ipv4: '127.0.0.30' });
  dns.register('bridge', { sandboxId: 'c2', names: ['c2'], ipv4: '127.0.0.31' });
  const m = await ask(b.port, '127.0.0.30', query('c2', RecordType.A));
  assert.equal(m.flags.rcode, Rcode.NXDomain);
  assert.deepEqual(stub.seen.map((s) => s.name), ['c2']);
});

test('per-sandbox upstreams (HostConfig.Dns) replace the default ones', async (t) => {
  const { dns, n1, stub } = await setup(t);
  const own = await startStub(t, (name) => (name === 'example.test' ? { answers: [A('example.test', '198.51.100.7')] } : undefined));
  dns.setUpstreams('web', [own.upstream]);
  assert.deepEqual(addrs(await ask(n1.port, WEB, query('example.test', RecordType.A))), ['198.51.100.7']);
  assert.deepEqual(addrs(await ask(n1.port, DB1, query('example.test', RecordType.A))), ['203.0.113.1']);
  dns.setUpstreams('web', undefined);
  assert.deepEqual(addrs(await ask(n1.port, WEB, query('example.test', RecordType.A))), ['203.0.113.1']);
  assert.equal(own.seen.length, 1);
  assert.equal(stub.seen.length, 2);
  assert.throws(() => dns.setUpstreams('web', [{ address: 'dns.example', port: 53 }]), /not an address and port/);
});

test('a silent upstream times out and the next one answers; all failing → SERVFAIL', async (t) => {
  const silent = await startStub(t, () => 'silent');
  const { n1, stub, setUpstreams } = await setup(t, { timeoutMs: 200 });
  setUpstreams([silent.upstream, stub.upstream]);
  assert.deepEqual(addrs(await ask(n1.port, WEB, query('example.test', RecordType.A))), ['203.0.113.1']);
  assert.equal(silent.seen.length, 1);
  setUpstreams([silent.upstream, stub.upstream]);
  const m = await ask(n1.port, WEB, query('slow.test', RecordType.A));
  assert.equal(m.flags.rcode, Rcode.ServFail);
  assert.equal(m.questions[0]?.name, 'slow.test');
  assert.equal(silent.seen.length, 2);
  setUpstreams([stub.upstream, silent.upstream]);
  const sf = await ask(n1.port, WEB, query('fail.test', RecordType.A));
  assert.equal(sf.flags.rcode, Rcode.ServFail, "an upstream's SERVFAIL sends the query on to the next one");
  assert.equal(silent.seen.filter((s) => s.name === 'fail.test').length, 1);
  setUpstreams([]);
  assert.equal((await ask(n1.port, WEB, query('example.test', RecordType.A))).flags.rcode, Rcode.ServFail);
  setUpstreams([n1 as Upstream]);
  assert.equal((await ask(n1.port, WEB, query('example.test', RecordType.A))).flags.rcode, Rcode.ServFail, 'never forwards to itself');
});

test('answers that are not from the upstream asked, or not to the question asked, are ignored', async (t) => {
  const wrong = buildMessage({
    id: 0,
    flags: responseFlags({ qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, ad: false, cd: false, rcode: 0 }, 0),
    questions: [{ name: 'elsewhere.test', type: RecordType.A, class: 1 }],
    answers: [A('elsewhere.test', '203.0.113.66')],
    authorities: [],
    additionals: [],
  });
  const right = buildMessage({
    id: 0,
    flags: responseFlags({ qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, ad: false, cd: false, rcode: 0 }, 0),
    questions: [{ name: 'spoof.test', type: RecordType.A, class: 1 }],
    answers: [A('spoof.test', '203.0.113.77')],
    authorities: [],
    additionals: [],
  });
  const stub = await startStub(t, (name) => (name === 'spoof.test' ? { raw: [wrong, right] } : undefined));
  const dns2 = new EmbeddedDns({ upstreams: () => [stub.upstream], timeoutMs: 500 });
  t.after(() => dns2.close());
  const l = await dns2.listen('n', LO, { port: 0 });
  dns2.register('n', { sandboxId: 's', names: ['s'], ipv4: WEB });
  assert.deepEqual(addrs(await ask(l.port, WEB, query('spoof.test', RecordType.A))), ['203.0.113.77']);
});

test('a truncated upstream answer reaches the client, which retries over TCP, forwarded over TCP', async (t) => {
  const { n1, stub } = await setup(t);
  const udp = await ask(n1.port, WEB, query('big.test', RecordType.A));
  assert.equal(udp.flags.tc, true);
  const tcp = await askTcp(n1.port, WEB, query('big.test', RecordType.A));
  assert.equal(tcp.flags.tc, false);
  assert.equal(tcp.answers.length, 40);
  assert.deepEqual(stub.seen.map((s) => s.transport), ['udp', 'tcp']);
});

test('TCP: local answers, pipelined queries, malformed lengths close the connection', async (t) => {
  const { n1 } = await setup(t);
  const qs = [query('web', RecordType.A, { id: 1 }), query('example.test', RecordType.A, { id: 2 }), query('db1', RecordType.A, { id: 3 })];
  const out = (await tcpRaw(n1.port, DB2, qs)).map((b) => parseMessage(b));
  assert.deepEqual(
    out.map((m) => [m.id, addrs(m)]).sort((a, b) => (a[0] as number) - (b[0] as number)),
    [
      [1, [WEB]],
      [2, ['203.0.113.1']],
      [3, [DB1]],
    ],
  );
  const closed = await tcpRaw(n1.port, DB2, [Buffer.from([1, 2, 3])], 1);
  assert.deepEqual(closed, [], 'a message shorter than a header ends the connection');
});

test('big local answers are truncated over UDP (TC) and complete over TCP; EDNS0 sizes are honoured', async (t) => {
  const { dns, n1 } = await setup(t);
  for (let i = 0; i < 60; i++) dns.register('net1', { sandboxId: `m${i}`, names: ['many'], ipv4: `127.0.1.${i + 1}` });
  const small = await ask(n1.port, WEB, query('many', RecordType.A));
  assert.equal(small.flags.tc, true);
  assert.ok(small.answers.length < 60);
  const edns = await ask(n1.port, WEB, query('many', RecordType.A, { edns: { udpSize: 4096 } }));
  assert.equal(edns.flags.tc, false);
  assert.equal(edns.answers.length, 60);
  assert.equal(edns.edns?.udpSize, 1232, 'our OPT record is in the answer');
  const tcp = await askTcp(n1.port, WEB, query('many', RecordType.A));
  assert.equal(tcp.answers.length, 60);
  const badvers = await ask(n1.port, WEB, query('web', RecordType.A, { edns: { udpSize: 1232, version: 1 } }));
  assert.equal(badvers.flags.rcode, Rcode.BadVers);
});

test('malformed packets get FORMERR or nothing, and the server keeps working', async (t) => {
  const { n1, warnings } = await setup(t);
  const header = (id: number, qd: number): number[] => [id >> 8, id & 0xff, 1, 0, 0, qd, 0, 0, 0, 0, 0, 0];
  const cases: { bytes: number[]; expect: 'formerr' | 'silent' }[] = [
    { bytes: [1, 2, 3], expect: 'silent' },
    { bytes: [...header(7, 1), 0xc0, 12, 0, 1, 0, 1], expect: 'formerr' },
    { bytes: [...header(8, 2), 1, 0x78, 0xc0, 17, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1], expect: 'formerr' },
    { bytes: [...header(9, 1), 63, 0x61], expect: 'formerr' },
    { bytes: [...header(10, 0)], expect: 'formerr' },
    { bytes: [0, 11, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0], expect: 'silent' },
  ];
  for (const c of cases) {
    const resp = await udpRaw(n1.port, WEB, Buffer.from(c.bytes), c.expect === 'silent' ? 300 : 3000);
    if (c.expect === 'silent') {
      assert.equal(resp, undefined, Buffer.from(c.bytes).toString('hex'));
      continue;
    }
    assert.ok(resp);
    const m = parseMessage(resp);
    assert.equal(m.id, (c.bytes[0]! << 8) | c.bytes[1]!);
    assert.equal(m.flags.rcode, Rcode.FormErr);
  }
  const notimp = Buffer.from(query('web', RecordType.A));
  notimp[2] = (notimp[2]! & 0x87) | (2 << 3);
  assert.equal((await ask(n1.port, WEB, notimp)).flags.rcode, Rcode.NotImp);
  let seed = 7;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind({ address: WEB, port: 0 }, r));
  sock.on('message', () => undefined);
  for (let i = 0; i < 500; i++) {
    const b = Buffer.alloc(rnd() % 100);
    for (let j = 0; j < b.length; j++) b[j] = rnd() & 0xff;
    if (b.length > 2) b[2] = b[2]! & 0x7f; // a query, so it is parsed
    sock.send(b, n1.port, LO);
  }
  await new Promise<void>((r) => sock.close(() => r()));
  assert.deepEqual(addrs(await ask(n1.port, WEB, query('web', RecordType.A))), [WEB]);
  assert.deepEqual(warnings.filter((w) => !w.includes('upstream')), []);
});

test('in-flight forwards are capped', async (t) => {
  const silent = await startStub(t, () => 'silent');
  const dns = new EmbeddedDns({ upstreams: () => [silent.upstream], timeoutMs: 1500, maxInFlight: 1 });
  t.after(() => dns.close());
  const l = await dns.listen('n', LO, { port: 0 });
  dns.register('n', { sandboxId: 's', names: ['s'], ipv4: WEB });
  const first = ask(l.port, WEB, query('slow.test', RecordType.A));
  while (silent.seen.length === 0) await new Promise((r) => setTimeout(r, 10));
  const second = await askTcp(l.port, WEB, query('other.test', RecordType.A));
  assert.equal(second.flags.rcode, Rcode.ServFail, 'over the cap: SERVFAIL over TCP (UDP is dropped)');
  assert.equal(silent.seen.length, 1);
  assert.equal((await first).flags.rcode, Rcode.ServFail);
});

test('a client on internal networks only is not forwarded', async (t) => {
  const { dns, stub } = await setup(t);
  const l = await dns.listen('internal', LO, { port: 0, forward: false });
  dns.register('internal', { sandboxId: 'i1', names: ['i1'], ipv4: '127.0.0.40' });
  assert.deepEqual(addrs(await ask(l.port, '127.0.0.40', query('i1', RecordType.A))), ['127.0.0.40']);
  assert.equal((await ask(l.port, '127.0.0.40', query('example.test', RecordType.A))).flags.rcode, Rcode.Refused);
  assert.equal(stub.seen.length, 0);
});

test('listen: same address again is the same listener; a taken port is Unavailable; unlisten and close free it', async (t) => {
  const dns = new EmbeddedDns({ upstreams: () => [] });
  t.after(() => dns.close());
  const a = await dns.listen('n', LO, { port: 0 });
  assert.deepEqual(await dns.listen('n', LO, { port: 0 }), a);
  const other = new EmbeddedDns({ upstreams: () => [] });
  t.after(() => other.close());
  await assert.rejects(other.listen('m', LO, { port: a.port }), (err: unknown) => isBerthError(err, 'Unavailable') && /EADDRINUSE/.test((err as Error).message));
  await assert.rejects(dns.listen('n', 'bogus'), /not an IP address/);
  await dns.unlisten('n');
  const again = await other.listen('m', LO, { port: a.port });
  assert.equal(again.port, a.port);
  await other.close();
  await assert.rejects(other.listen('m', LO, { port: 0 }), (err: unknown) => isBerthError(err, 'FailedPrecondition'));
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen({ host: LO, port: a.port }, r));
  await new Promise<void>((r) => probe.close(() => r()));
});

test('listen on a new port moves the listener; a failed listen changes nothing; entries() and listening() report the table', async (t) => {
  const dns = new EmbeddedDns({ upstreams: () => [] });
  t.after(() => dns.close());
  const first = await dns.listen('n', LO, { port: 0 });
  dns.register('n', { sandboxId: 's', names: ['Svc.'], ipv4: WEB });
  const holder = dgram.createSocket('udp4');
  await new Promise<void>((r) => holder.bind({ address: LO, port: 0 }, r));
  t.after(() => holder.close());
  await assert.rejects(dns.listen('n', LO, { port: holder.address().port }), /EADDRINUSE/);
  assert.deepEqual(dns.listening('n'), [first], 'the old listener survives a failed move');
  assert.deepEqual(addrs(await ask(first.port, WEB, query('svc', RecordType.A))), [WEB]);
  const free = dgram.createSocket('udp4');
  await new Promise<void>((r) => free.bind({ address: LO, port: 0 }, r));
  const target = free.address().port;
  await new Promise<void>((r) => free.close(() => r()));
  const moved = await dns.listen('n', LO, { port: target });
  assert.equal(moved.port, target);
  assert.deepEqual(dns.listening('n'), [moved]);
  assert.deepEqual(addrs(await ask(moved.port, WEB, query('svc', RecordType.A))), [WEB]);
  assert.equal(await udpRaw(first.port, WEB, query('svc', RecordType.A), 300), undefined, 'nothing answers on the old port');
  assert.deepEqual(dns.entries(), [{ networkId: 'n', sandboxId: 's', names: ['svc'], ipv4: WEB, ipv6: undefined }]);
  await assert.rejects(dns.listen('fresh', '198.51.100.1', { port: 0 }), (err: unknown) => isBerthError(err, 'Unavailable') && /EADDRNOTAVAIL/.test((err as Error).message));
  assert.deepEqual(dns.listening('fresh'), []);
  dns.unregister('n', 's');
  await dns.unlisten('n');
  assert.deepEqual(dns.entries(), []);
  assert.deepEqual(dns.listening('n'), []);
});

test('real clients: c-ares (node:dns) resolves names, forwards, and follows TC to TCP', async (t) => {
  const { n1, stub } = await setup(t);
  const { Resolver } = await import('node:dns/promises');
  const r = new Resolver({ timeout: 2000, tries: 1 });
  r.setServers([`${LO}:${n1.port}`]);
  r.setLocalAddress(WEB);
  assert.deepEqual((await r.resolve4('db')).sort(), [DB1, DB2]);
  assert.deepEqual(await r.resolve6('web'), ['fd8b:e47b:0:1::10']);
  assert.deepEqual(await r.reverse(DB1), ['db1.mynet']);
  assert.deepEqual(await r.resolve4('example.test'), ['203.0.113.1']);
  assert.equal((await r.resolve4('big.test')).length, 40);
  assert.ok(stub.seen.some((s) => s.name === 'big.test' && s.transport === 'tcp'), 'the client retried over TCP');
  await assert.rejects(r.resolve4('nowhere.test'), (err: NodeJS.ErrnoException) => err.code === 'ENOTFOUND');
});

test('real clients: busybox nslookup', async (t) => {
  const { execFile } = await import('node:child_process');
  const { existsSync } = await import('node:fs');
  if (!existsSync('/bin/busybox')) {
    t.skip('/bin/busybox is not installed');
    return;
  }
  const { dns, n1 } = await setup(t);
  // busybox cannot choose its source address: let 127.0.0.1 pose as a container.
  dns.register('net1', { sandboxId: 'bb', names: ['bb'], ipv4: LO });
  const out = await new Promise<string>((resolve, reject) => {
    execFile('/bin/busybox', ['nslookup', '-type=a', `-port=${n1.port}`, 'webalias', LO], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err && !stdout) reject(new Error(`${err.message}: ${stderr}`));
      else resolve(stdout);
    });
  });
  assert.match(out, /Address:\s*127\.0\.0\.10/);
});

test('TCP: a client may half-close after its query; many pipelined queries in one write are all answered', async (t) => {
  const { n1 } = await setup(t);
  const answer = await new Promise<Buffer>((resolve, reject) => {
    const sock = net.connect({ host: LO, port: n1.port, localAddress: WEB });
    const chunks: Buffer[] = [];
    sock.on('error', reject);
    sock.on('data', (c) => chunks.push(c));
    sock.on('end', () => resolve(Buffer.concat(chunks)));
    const q = query('db1', RecordType.A, { id: 99 });
    const head = Buffer.alloc(2);
    head.writeUInt16BE(q.length);
    sock.end(Buffer.concat([head, q]));
  });
  assert.deepEqual(addrs(parseMessage(answer.subarray(2))), [DB1]);
  const qs = Array.from({ length: 100 }, (_v, i) => query(i % 2 ? 'web' : 'db2', RecordType.A, { id: i }));
  const out = (await tcpRaw(n1.port, DB1, qs)).map((b) => parseMessage(b));
  assert.equal(out.length, 100);
  assert.deepEqual(
    out.sort((a, b) => a.id - b.id).map((m) => addrs(m)[0]),
    qs.map((_q, i) => (i % 2 ? WEB : DB2)),
  );
});

test('forwarded queries keep the client EDNS0 record; IPv6 listeners and clients work', async (t) => {
  const { n1, stub, dns } = await setup(t);
  let seenUdpSize: number | undefined;
  const ednsStub = await startStub(t, (name, _tr, q) => {
    seenUdpSize = q.edns?.udpSize;
    return name === 'example.test' ? { answers: [A('example.test', '203.0.113.9')] } : undefined;
  });
  dns.setUpstreams('web', [ednsStub.upstream]);
  const m = await ask(n1.port, WEB, query('example.test', RecordType.A, { edns: { udpSize: 3000 } }));
  assert.deepEqual(addrs(m), ['203.0.113.9']);
  assert.equal(seenUdpSize, 3000);
  assert.equal(stub.seen.length, 0);

  const l6 = await dns.listen('net1', '::1', { port: 0, networkName: 'mynet' }).catch(() => undefined);
  if (!l6) {
    t.skip('no IPv6 loopback');
    return;
  }
  dns.register('net1', { sandboxId: 'v6only', names: ['v6only'], ipv6: '0:0::1' });
  const resp = await new Promise<Buffer | undefined>((resolve) => {
    const s = dgram.createSocket('udp6');
    const timer = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, 3000);
    s.on('message', (msg) => {
      clearTimeout(timer);
      s.close();
      resolve(msg);
    });
    s.bind({ address: '::1', port: 0 }, () => s.send(query('web', RecordType.AAAA), l6.port, '::1'));
  });
  assert.ok(resp);
  assert.deepEqual(addrs(parseMessage(resp)), ['fd8b:e47b:0:1::10']);
});
