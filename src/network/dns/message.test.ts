import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBerthError } from '../../errors.js';
import {
  RecordClass,
  RecordType,
  Rcode,
  addressBytes,
  buildMessage,
  canonicalName,
  formatIpv6,
  nameToLabels,
  parseFirstQuestion,
  parseHeader,
  parseMessage,
  responseFlags,
  type DnsMessage,
} from './message.js';

function query(name: string, type: number, opts: { id?: number; udpSize?: number } = {}): DnsMessage {
  return {
    id: opts.id ?? 0x1234,
    flags: { qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, ad: false, cd: false, rcode: 0 },
    questions: [{ name, type, class: RecordClass.IN }],
    answers: [],
    authorities: [],
    additionals: [],
    edns: opts.udpSize === undefined ? undefined : { udpSize: opts.udpSize, extendedRcode: 0, version: 0, dnssecOk: true, options: Uint8Array.from([0, 10, 0, 2, 0xab, 0xcd]) },
  };
}

function header(id: number, counts: [number, number, number, number], flags = 0x0100): number[] {
  return [id >> 8, id & 0xff, flags >> 8, flags & 0xff, 0, counts[0], 0, counts[1], 0, counts[2], 0, counts[3]];
}

function rejects(bytes: number[] | Buffer, what: RegExp): void {
  assert.throws(
    () => parseMessage(Buffer.from(bytes)),
    (err: unknown) => isBerthError(err, 'InvalidArgument') && what.test((err as Error).message),
  );
}

test('a query round-trips, EDNS0 included', () => {
  const buf = buildMessage(query('Web.Example', RecordType.AAAA, { udpSize: 4096 }));
  const m = parseMessage(buf);
  assert.equal(m.id, 0x1234);
  assert.equal(m.flags.rd, true);
  assert.equal(m.flags.qr, false);
  assert.deepEqual(m.questions, [{ name: 'Web.Example', type: RecordType.AAAA, class: 1 }]);
  assert.equal(m.edns?.udpSize, 4096);
  assert.equal(m.edns?.dnssecOk, true);
  assert.deepEqual([...(m.edns?.options ?? [])], [0, 10, 0, 2, 0xab, 0xcd]);
  assert.equal(m.additionals.length, 0, 'OPT is kept apart from the additional section');
  assert.equal(parseHeader(buf)?.arcount, 1);
});

test('answers compress their names against the question, PTR targets too', () => {
  const q = query('db.mynet', RecordType.A);
  const resp: DnsMessage = {
    ...q,
    flags: responseFlags(q.flags, Rcode.NoError, { aa: true }),
    answers: [
      { name: 'db.mynet', type: RecordType.A, class: 1, ttl: 60, address: '10.80.0.2' },
      { name: 'DB.MYNET', type: RecordType.A, class: 1, ttl: 60, address: '10.80.0.3' },
      { name: 'x.db.mynet', type: RecordType.PTR, class: 1, ttl: 60, target: 'web.mynet' },
    ],
  };
  const buf = buildMessage(resp);
  // header 12 + question (10 + 4) + 2 × (2 + 10 + 4) + PTR (x + pointer = 4, +10, target: web + pointer = 6)
  assert.equal(buf.length, 12 + 14 + 32 + 20);
  const m = parseMessage(buf);
  assert.equal(m.flags.qr, true);
  assert.equal(m.flags.aa, true);
  assert.deepEqual(
    m.answers.map((a) => [a.name, a.address ?? a.target, a.ttl]),
    [
      ['db.mynet', '10.80.0.2', 60],
      ['db.mynet', '10.80.0.3', 60],
      ['x.db.mynet', 'web.mynet', 60],
    ],
  );
});

test('AAAA data and IPv6 text forms', () => {
  for (const [text, canon] of [
    ['fd8b:e47b:0:1::2', 'fd8b:e47b:0:1::2'],
    ['FD8B:E47B:0000:0001:0000:0000:0000:0002', 'fd8b:e47b:0:1::2'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::ffff:10.1.2.3', '::ffff:a01:203'],
    ['fe80::1%eth0', 'fe80::1'],
  ]) {
    assert.equal(formatIpv6(addressBytes(text!, 6)), canon, text);
  }
  for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', 'g::1', '1:2:3:4:5:6:7', '12345::']) {
    assert.throws(() => addressBytes(bad, 6), /not an IPv6 address/, bad);
  }
  assert.throws(() => addressBytes('10.0.0.256', 4), /not an IPv4/);
  const q = query('v6', RecordType.AAAA);
  const m = parseMessage(buildMessage({ ...q, answers: [{ name: 'v6', type: RecordType.AAAA, class: 1, ttl: 5, address: 'fd8b:e47b::5' }] }));
  assert.equal(m.answers[0]?.address, 'fd8b:e47b::5');
  assert.equal(m.answers[0]?.rdata?.length, 16);
});

test('names: escapes round-trip, case-insensitive keys, limits', () => {
  const name = 'a\\.b.c\\032d.e';
  assert.deepEqual(
    nameToLabels(name).map((l) => l.toString('latin1')),
    ['a.b', 'c d', 'e'],
  );
  const m = parseMessage(buildMessage(query(name, RecordType.A)));
  assert.equal(m.questions[0]?.name, name);
  assert.equal(canonicalName('WeB.Example.'), 'web.example');
  assert.equal(canonicalName('x\\.'), 'x\\.', 'an escaped dot is not the trailing dot');
  assert.deepEqual(nameToLabels('.'), []);
  assert.throws(() => nameToLabels('a..b'), /empty label/);
  assert.throws(() => nameToLabels('x'.repeat(64)), /longer than 63/);
  assert.throws(() => nameToLabels(Array(50).fill('abcde').join('.')), /longer than 255/);
});

test('a response too big for the limit is cut at a whole record, with TC set and OPT kept', () => {
  const q = query('many', RecordType.A, { udpSize: 512 });
  const answers = Array.from({ length: 60 }, (_v, i) => ({ name: 'many', type: RecordType.A, class: 1, ttl: 60, address: `10.80.0.${i + 2}` }));
  const full = buildMessage({ ...q, flags: responseFlags(q.flags, 0), answers });
  assert.equal(parseMessage(full).answers.length, 60);
  assert.equal(parseMessage(full).flags.tc, false);
  const cut = buildMessage({ ...q, flags: responseFlags(q.flags, 0), answers }, { maxSize: 512 });
  assert.ok(cut.length <= 512);
  const m = parseMessage(cut);
  assert.equal(m.flags.tc, true);
  // 512 - 12 header - 10 question - 17 OPT (11 + 6 options) = 473 → 29 records of 16 bytes
  assert.equal(m.answers.length, 29);
  assert.ok(m.edns, 'OPT survives truncation');
  const additionalsOnly = buildMessage(
    { ...q, flags: responseFlags(q.flags, 0), additionals: answers, edns: undefined },
    { maxSize: 512 },
  );
  assert.equal(parseMessage(additionalsOnly).flags.tc, false, 'dropping additional records does not set TC');
});

test('an extended rcode (BADVERS) travels in the OPT record', () => {
  const q = query('x', RecordType.A, { udpSize: 1232 });
  const buf = buildMessage({ ...q, flags: responseFlags(q.flags, Rcode.BadVers) });
  assert.equal(buf[3]! & 0x0f, 0);
  assert.equal(parseMessage(buf).flags.rcode, Rcode.BadVers);
});

test('compression pointers: backwards ones are followed, forward ones and loops refused', () => {
  // question "a.b" at 12, an answer whose name points at "b" (offset 14)
  const ok = [
    ...header(1, [1, 1, 0, 0], 0x8180),
    1, 0x61, 1, 0x62, 0, 0, 1, 0, 1,
    0xc0, 14, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1,
  ];
  const m = parseMessage(Buffer.from(ok));
  assert.equal(m.answers[0]?.name, 'b');
  assert.equal(m.answers[0]?.address, '10.0.0.1');

  rejects([...header(1, [1, 0, 0, 0]), 0xc0, 12, 0, 1, 0, 1], /does not point backwards/);
  rejects([...header(1, [1, 0, 0, 0]), 0xc0, 20, 0, 1, 0, 1, 0, 0, 0, 0], /does not point backwards/);
  // two names pointing at each other: 12 → "x" then pointer to 17; 17 → pointer to 12
  rejects([...header(1, [2, 0, 0, 0]), 1, 0x78, 0xc0, 17, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1], /does not point backwards/);
  rejects([...header(1, [1, 0, 0, 0]), 0xc0], /truncated compression pointer/);
});

test('malformed messages are refused with InvalidArgument, never another exception', () => {
  rejects([1, 2, 3], /shorter than its header/);
  rejects([...header(1, [1, 0, 0, 0]), 3, 0x61], /label runs past the end/);
  rejects([...header(1, [1, 0, 0, 0]), 0x41, 0], /unsupported label type/);
  rejects([...header(1, [1, 0, 0, 0]), 1, 0x61, 0, 0, 1], /question runs past the end/);
  rejects([...header(1, [1, 0, 0, 0]), 1, 0x61, 0, 0, 1, 0, 1, 9], /trailing bytes/);
  rejects([...header(1, [0, 1, 0, 0]), 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 5, 1], /record data runs past the end/);
  rejects([...header(1, [0, 1, 0, 0]), 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 3, 1, 2, 3], /A record data is not 4 bytes/);
  rejects([...header(1, [0, 0, 0, 2]), 0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 0], /more than one OPT/);
  rejects([...header(1, [0, 1, 0, 0]), 0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 0], /OPT record outside/);
  const long = [...header(1, [1, 0, 0, 0])];
  for (let i = 0; i < 5; i++) long.push(63, ...Array<number>(63).fill(0x61));
  long.push(0, 0, 1, 0, 1);
  rejects(long, /longer than 255/);

  let seed = 42;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  for (let i = 0; i < 3000; i++) {
    const len = rnd() % 80;
    const bytes = Buffer.alloc(len);
    for (let j = 0; j < len; j++) bytes[j] = rnd() & 0xff;
    // plausible counts make the parser go deep instead of stopping at the header
    if (len >= 12) bytes.set([0, (rnd() % 3), 0, rnd() % 3, 0, rnd() % 2, 0, rnd() % 2], 4);
    try {
      parseMessage(bytes);
      parseFirstQuestion(bytes);
    } catch (err) {
      assert.ok(isBerthError(err, 'InvalidArgument'), `input ${bytes.toString('hex')}: ${String(err)}`);
    }
  }
});

test('more records than 65535 bytes can hold are truncated, not an error', () => {
  const q = query('crowd', RecordType.A);
  const answers = Array.from({ length: 5000 }, (_v, i) => ({ name: 'crowd', type: RecordType.A, class: 1, ttl: 60, address: `10.${(i >> 8) & 255}.${i & 255}.1` }));
  const buf = buildMessage({ ...q, flags: responseFlags(q.flags, 0), answers });
  assert.ok(buf.length <= 65535);
  const m = parseMessage(buf);
  assert.equal(m.flags.tc, true);
  assert.equal(m.answers.length, Math.floor((65535 - 12 - 11) / 16));
});
