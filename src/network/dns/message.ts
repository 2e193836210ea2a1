// DNS messages (RFC 1035 §4, EDNS0 from RFC 6891): parse and build with name compression.
// Parsing is strict because every byte comes from a container or an upstream we do not
// trust: any inconsistency throws a BerthError InvalidArgument, which the server turns
// into FORMERR; nothing here may throw anything else on bad input.
import { BerthError } from '../../errors.js';
import { formatIp } from '../ipam.js';

export const RecordType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  ANY: 255,
} as const;

export const RecordClass = { IN: 1 } as const;

export const Opcode = { Query: 0 } as const;

/** Response codes; BadVers is an extended (EDNS) code: its upper 8 bits travel in the OPT record. */
export const Rcode = {
  NoError: 0,
  FormErr: 1,
  ServFail: 2,
  NXDomain: 3,
  NotImp: 4,
  Refused: 5,
  BadVers: 16,
} as const;

export const HEADER_SIZE = 12;
/** The UDP payload limit of a client that did not send EDNS0 (RFC 1035 §4.2.1). */
export const CLASSIC_UDP_SIZE = 512;
export const MAX_MESSAGE_SIZE = 65535;

export interface DnsFlags {
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  ad: boolean;
  cd: boolean;
  /** The full response code; values above 15 need an OPT record to carry their upper bits. */
  rcode: number;
}

export interface DnsHeader extends DnsFlags {
  id: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

export interface DnsQuestion {
  /** Dotted, without the trailing dot ("" is the root); "." and "\" inside a label and non-printable bytes are escaped as in master files. */
  name: string;
  type: number;
  class: number;
}

/**
 * A resource record. On parse, `rdata` is always the raw bytes (names inside it may be
 * compression pointers into the original message), and `address` / `target` are filled
 * for A, AAAA and PTR/CNAME/NS. On build, `address` or `target` win over `rdata`.
 */
export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  rdata?: Uint8Array;
  address?: string;
  target?: string;
}

/** The EDNS0 OPT pseudo-record, kept apart from the additional section. */
export interface Edns {
  /** The sender's UDP payload size. */
  udpSize: number;
  /** Upper 8 bits of the response code. */
  extendedRcode: number;
  version: number;
  dnssecOk: boolean;
  /** The raw option list (code, length, data …), passed through untouched. */
  options: Uint8Array;
}

export interface DnsMessage {
  id: number;
  flags: DnsFlags;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
  edns?: Edns;
}

function malformed(what: string, offset: number): BerthError {
  return new BerthError('InvalidArgument', `malformed DNS message: ${what} at offset ${offset}`);
}

/** The header alone, or undefined when the buffer is too short to hold one. */
export function parseHeader(buf: Uint8Array): DnsHeader | undefined {
  if (buf.length < HEADER_SIZE) return undefined;
  const b1 = buf[2]!;
  const b2 = buf[3]!;
  return {
    id: (buf[0]! << 8) | buf[1]!,
    qr: (b1 & 0x80) !== 0,
    opcode: (b1 >> 3) & 0x0f,
    aa: (b1 & 0x04) !== 0,
    tc: (b1 & 0x02) !== 0,
    rd: (b1 & 0x01) !== 0,
    ra: (b2 & 0x80) !== 0,
    ad: (b2 & 0x20) !== 0,
    cd: (b2 & 0x10) !== 0,
    rcode: b2 & 0x0f,
    qdcount: (buf[4]! << 8) | buf[5]!,
    ancount: (buf[6]! << 8) | buf[7]!,
    nscount: (buf[8]! << 8) | buf[9]!,
    arcount: (buf[10]! << 8) | buf[11]!,
  };
}

const MAX_NAME_WIRE = 255;
const MAX_LABEL = 63;

/** Reads a (possibly compressed) name; returns it and the offset just after it in the original stream. */
function readName(buf: Uint8Array, start: number): { name: string; end: number } {
  const labels: string[] = [];
  let pos = start;
  let end = -1;
  let wire = 1;
  // Pointers must go strictly backwards: that alone makes loops impossible, and it is
  // what every legitimate compressor produces (it can only point at what it already wrote).
  let limit = start;
  for (;;) {
    if (pos >= buf.length) throw malformed('name runs past the end', pos);
    const len = buf[pos]!;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= buf.length) throw malformed('truncated compression pointer', pos);
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      if (target >= limit) throw malformed('compression pointer does not point backwards', pos);
      if (end < 0) end = pos + 2;
      limit = target;
      pos = target;
      continue;
    }
    if (kind !== 0) throw malformed(`unsupported label type 0x${kind.toString(16)}`, pos);
    if (len > MAX_LABEL) throw malformed('label longer than 63 bytes', pos);
    if (pos + 1 + len > buf.length) throw malformed('label runs past the end', pos);
    wire += len + 1;
    if (wire > MAX_NAME_WIRE) throw malformed('name longer than 255 bytes', start);
    labels.push(escapeLabel(buf, pos + 1, len));
    pos += 1 + len;
  }
  return { name: labels.join('.'), end };
}

function escapeLabel(buf: Uint8Array, from: number, len: number): string {
  let out = '';
  for (let i = from; i < from + len; i++) {
    const c = buf[i]!;
    if (c === 0x2e || c === 0x5c) out += '\\' + String.fromCharCode(c);
    else if (c <= 0x20 || c >= 0x7f) out += '\\' + String(c).padStart(3, '0');
    else out += String.fromCharCode(c);
  }
  return out;
}

/** Splits a presentation-format name into wire labels (bytes), undoing escapes. */
export function nameToLabels(name: string): Buffer[] {
  let text = name;
  if (text.endsWith('.') && !text.endsWith('\\.')) text = text.slice(0, -1);
  if (text === '') return [];
  const labels: Buffer[] = [];
  let cur: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x5c) {
      const digits = /^[0-9]{3}/.exec(text.slice(i + 1, i + 4));
      if (digits) {
        const v = Number(digits[0]);
        if (v > 255) throw new BerthError('InvalidArgument', `DNS name "${name}": escape \\${digits[0]} is not a byte`);
        cur.push(v);
        i += 3;
      } else if (i + 1 < text.length) {
        cur.push(text.charCodeAt(++i) & 0xff);
      } else {
        throw new BerthError('InvalidArgument', `DNS name "${name}" ends with a lone backslash`);
      }
    } else if (ch === 0x2e) {
      labels.push(Buffer.from(cur));
      cur = [];
    } else {
      if (ch > 0xff) throw new BerthError('InvalidArgument', `DNS name "${name}" has a non-ASCII character; use its punycode (xn--) form`);
      cur.push(ch);
    }
  }
  labels.push(Buffer.from(cur));
  let wire = 1;
  for (const l of labels) {
    if (l.length === 0) throw new BerthError('InvalidArgument', `DNS name "${name}" has an empty label`);
    if (l.length > MAX_LABEL) throw new BerthError('InvalidArgument', `DNS name "${name}" has a label longer than 63 bytes`);
    wire += l.length + 1;
  }
  if (wire > MAX_NAME_WIRE) throw new BerthError('InvalidArgument', `DNS name "${name}" is longer than 255 bytes`);
  return labels;
}

/** DNS compares names case-insensitively in ASCII only (RFC 4343); this is the key to compare by. */
export function canonicalName(name: string): string {
  let n = name.replace(/[A-Z]/g, (c) => c.toLowerCase());
  if (n.endsWith('.') && !n.endsWith('\\.')) n = n.slice(0, -1);
  return n;
}

function u16(buf: Uint8Array, pos: number): number {
  return (buf[pos]! << 8) | buf[pos + 1]!;
}

function u32(buf: Uint8Array, pos: number): number {
  return ((buf[pos]! << 24) >>> 0) + ((buf[pos + 1]! << 16) | (buf[pos + 2]! << 8) | buf[pos + 3]!);
}

function formatIpv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** RFC 5952 text form of 16 bytes (lowercase, longest zero run compressed). */
export function formatIpv6(b: Uint8Array): string {
  return formatIp(6, BigInt(`0x${Buffer.from(b).toString('hex')}`));
}

function readQuestion(buf: Uint8Array, pos: number): { q: DnsQuestion; end: number } {
  const { name, end } = readName(buf, pos);
  if (end + 4 > buf.length) throw malformed('question runs past the end', end);
  return { q: { name, type: u16(buf, end), class: u16(buf, end + 2) }, end: end + 4 };
}

function readRecord(buf: Uint8Array, pos: number): { r: DnsRecord; end: number } {
  const { name, end: nameEnd } = readName(buf, pos);
  if (nameEnd + 10 > buf.length) throw malformed('record header runs past the end', nameEnd);
  const type = u16(buf, nameEnd);
  const rclass = u16(buf, nameEnd + 2);
  const ttl = u32(buf, nameEnd + 4);
  const rdlen = u16(buf, nameEnd + 8);
  const rstart = nameEnd + 10;
  if (rstart + rdlen > buf.length) throw malformed('record data runs past the end', rstart);
  const rdata = buf.subarray(rstart, rstart + rdlen);
  const r: DnsRecord = { name, type, class: rclass, ttl, rdata };
  if (type === RecordType.A && rclass === RecordClass.IN) {
    if (rdlen !== 4) throw malformed('A record data is not 4 bytes', rstart);
    r.address = formatIpv4(rdata);
  } else if (type === RecordType.AAAA && rclass === RecordClass.IN) {
    if (rdlen !== 16) throw malformed('AAAA record data is not 16 bytes', rstart);
    r.address = formatIpv6(rdata);
  } else if (type === RecordType.PTR || type === RecordType.CNAME || type === RecordType.NS) {
    // The name may point anywhere before it in the message, so read it in the whole buffer.
    const t = readName(buf, rstart);
    if (t.end !== rstart + rdlen) throw malformed('record data length disagrees with its name', rstart);
    r.target = t.name;
  }
  return { r, end: rstart + rdlen };
}

/** Parses a whole message; throws BerthError InvalidArgument on any inconsistency (trailing bytes included). */
export function parseMessage(buf: Uint8Array): DnsMessage {
  const h = parseHeader(buf);
  if (!h) throw malformed('message shorter than its header', 0);
  let pos = HEADER_SIZE;
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < h.qdcount; i++) {
    const { q, end } = readQuestion(buf, pos);
    questions.push(q);
    pos = end;
  }
  const sections: DnsRecord[][] = [[], [], []];
  const counts = [h.ancount, h.nscount, h.arcount];
  let edns: Edns | undefined;
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s]!; i++) {
      const start = pos;
      const { r, end } = readRecord(buf, pos);
      pos = end;
      if (r.type === RecordType.OPT) {
        if (s !== 2) throw malformed('OPT record outside the additional section', start);
        if (edns) throw malformed('more than one OPT record', start);
        if (r.name !== '') throw malformed('OPT record with a non-root name', start);
        edns = {
          udpSize: r.class,
          extendedRcode: r.ttl >>> 24,
          version: (r.ttl >>> 16) & 0xff,
          dnssecOk: (r.ttl & 0x8000) !== 0,
          options: r.rdata ?? new Uint8Array(0),
        };
        continue;
      }
      sections[s]!.push(r);
    }
  }
  if (pos !== buf.length) throw malformed('trailing bytes after the last record', pos);
  const { id, qdcount: _q, ancount: _a, nscount: _n, arcount: _r, ...flags } = h;
  if (edns) flags.rcode |= edns.extendedRcode << 4;
  return { id, flags, questions, answers: sections[0]!, authorities: sections[1]!, additionals: sections[2]!, edns };
}

/** The first question of a message, reading nothing beyond it (for matching upstream answers). */
export function parseFirstQuestion(buf: Uint8Array): DnsQuestion | undefined {
  const h = parseHeader(buf);
  if (!h || h.qdcount < 1) return undefined;
  return readQuestion(buf, HEADER_SIZE).q;
}

/** Thrown by the writer past 65535 bytes; buildMessage turns it into truncation where it can. */
class MessageOverflow extends BerthError {
  constructor() {
    super('InvalidArgument', `DNS message longer than ${MAX_MESSAGE_SIZE} bytes`);
  }
}

// One scratch buffer for every build: building is synchronous, so it is never shared.
const scratch = Buffer.alloc(MAX_MESSAGE_SIZE);

class Writer {
  pos = 0;
  /** Lower-cased name suffix → offset where it was written (only offsets a pointer can reach). */
  private readonly names = new Map<string, number>();

  constructor(readonly buf: Buffer) {}

  fits(n: number, limit: number): boolean {
    return this.pos + n <= limit;
  }

  u8(v: number): void {
    this.check(1);
    this.buf[this.pos++] = v & 0xff;
  }

  u16(v: number): void {
    this.check(2);
    this.buf.writeUInt16BE(v & 0xffff, this.pos);
    this.pos += 2;
  }

  u32(v: number): void {
    this.check(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
  }

  bytes(b: Uint8Array): void {
    this.check(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  name(name: string, compress: boolean): void {
    const labels = nameToLabels(name);
    const keys = labels.map((_l, i) =>
      labels
        .slice(i)
        .map((l) => l.toString('latin1').replace(/[A-Z]/g, (c) => c.toLowerCase()))
        .join('\u0000'),
    );
    for (let i = 0; i < labels.length; i++) {
      const seen = compress ? this.names.get(keys[i]!) : undefined;
      if (seen !== undefined) {
        this.u16(0xc000 | seen);
        return;
      }
      if (compress && this.pos < 0x4000) this.names.set(keys[i]!, this.pos);
      this.u8(labels[i]!.length);
      this.bytes(labels[i]!);
    }
    this.u8(0);
  }

  /** Drops everything from `pos` on, including compression targets that pointed there. */
  rewind(pos: number): void {
    this.pos = pos;
    for (const [k, off] of this.names) if (off >= pos) this.names.delete(k);
  }

  private check(n: number): void {
    if (this.pos + n > this.buf.length) throw new MessageOverflow();
  }
}

function writeRecordData(w: Writer, r: DnsRecord): void {
  const lenAt = w.pos;
  w.u16(0);
  const start = w.pos;
  if (r.address !== undefined && (r.type === RecordType.A || r.type === RecordType.AAAA)) {
    w.bytes(addressBytes(r.address, r.type === RecordType.A ? 4 : 6));
  } else if (r.target !== undefined) {
    w.name(r.target, true);
  } else {
    w.bytes(r.rdata ?? new Uint8Array(0));
  }
  w.buf.writeUInt16BE(w.pos - start, lenAt);
}

/** 4 or 16 bytes of an address in text form; throws InvalidArgument when it is not one. */
export function addressBytes(address: string, family: 4 | 6): Uint8Array {
  if (family === 4) {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
    const parts = m ? m.slice(1).map(Number) : [];
    if (!m || parts.some((p) => p > 255)) throw new BerthError('InvalidArgument', `"${address}" is not an IPv4 address`);
    return Uint8Array.from(parts);
  }
  const bad = (): BerthError => new BerthError('InvalidArgument', `"${address}" is not an IPv6 address`);
  let text = address.split('%')[0]!;
  const out = new Uint8Array(16);
  const tail: number[] = [];
  const v4 = /(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(text);
  if (v4) {
    const b = addressBytes(v4[1]!, 4);
    tail.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
    text = text.slice(0, -v4[1]!.length);
    if (text.endsWith(':') && !text.endsWith('::')) text = text.slice(0, -1);
  }
  const halves = text.split('::');
  if (halves.length > 2) throw bad();
  const parse = (s: string): number[] =>
    s === ''
      ? []
      : s.split(':').map((g) => {
          if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw bad();
          return parseInt(g, 16);
        });
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? [...parse(halves[1]!), ...tail] : [];
  const all = halves.length === 2 ? head : [...head, ...tail];
  const zeros = 8 - all.length - rest.length;
  if ((halves.length === 2 && zeros < 1) || (halves.length === 1 && all.length !== 8)) throw bad();
  const groups = halves.length === 2 ? [...all, ...new Array<number>(zeros).fill(0), ...rest] : all;
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

export interface BuildOptions {
  /** Size limit (the client's UDP payload size); records that do not fit are left out and TC is set. Default 65535. */
  maxSize?: number;
}

/**
 * Encodes a message with name compression. When it would exceed `maxSize`, the answer and
 * authority records that do not fit are dropped and TC is set (RFC 2181 §9); dropped
 * additional records do not set TC. The OPT record is kept even then (RFC 6891 §7).
 */
export function buildMessage(msg: DnsMessage, opts: BuildOptions = {}): Buffer {
  const limit = Math.max(HEADER_SIZE, Math.min(opts.maxSize ?? MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE));
  const w = new Writer(scratch);
  const f = msg.flags;
  w.u16(msg.id);
  w.u16(0); // flags, patched at the end once TC is known
  w.u16(msg.questions.length);
  w.u16(0);
  w.u16(0);
  w.u16(0);
  for (const q of msg.questions) {
    w.name(q.name, true);
    w.u16(q.type);
    w.u16(q.class);
  }
  if (w.pos > limit) throw new BerthError('InvalidArgument', `DNS question section alone exceeds ${limit} bytes`);
  const optSize = msg.edns ? 11 + msg.edns.options.length : 0;
  let tc = f.tc;
  let full = false;
  const counts = [0, 0, 0];
  const sections = [msg.answers, msg.authorities, msg.additionals];
  for (let s = 0; s < 3 && !full; s++) {
    for (const r of sections[s]!) {
      const start = w.pos;
      let overflow = false;
      try {
        w.name(r.name, true);
        w.u16(r.type);
        w.u16(r.class);
        w.u32(r.ttl);
        writeRecordData(w, r);
      } catch (err) {
        if (!(err instanceof MessageOverflow)) throw err;
        overflow = true;
      }
      if (overflow || w.pos + optSize > limit) {
        w.rewind(start);
        if (s < 2) tc = true;
        full = true;
        break;
      }
      counts[s]!++;
    }
  }
  const rcode = f.rcode;
  if (msg.edns) {
    const e = msg.edns;
    w.u8(0);
    w.u16(RecordType.OPT);
    w.u16(e.udpSize);
    w.u8(rcode >> 4);
    w.u8(e.version);
    w.u16(e.dnssecOk ? 0x8000 : 0);
    w.u16(e.options.length);
    w.bytes(e.options);
    counts[2]!++;
  }
  const b1 = (f.qr ? 0x80 : 0) | ((f.opcode & 0x0f) << 3) | (f.aa ? 0x04 : 0) | (tc ? 0x02 : 0) | (f.rd ? 0x01 : 0);
  const b2 = (f.ra ? 0x80 : 0) | (f.ad ? 0x20 : 0) | (f.cd ? 0x10 : 0) | (rcode & 0x0f);
  scratch[2] = b1;
  scratch[3] = b2;
  scratch.writeUInt16BE(counts[0]!, 6);
  scratch.writeUInt16BE(counts[1]!, 8);
  scratch.writeUInt16BE(counts[2]!, 10);
  return Buffer.from(scratch.subarray(0, w.pos));
}

/** The flags of a response to `query`: QR set, opcode, RD and CD echoed, RA as given. */
export function responseFlags(query: DnsFlags | DnsHeader, rcode: number, opts: { aa?: boolean; ra?: boolean } = {}): DnsFlags {
  return {
    qr: true,
    opcode: query.opcode,
    aa: opts.aa ?? false,
    tc: false,
    rd: query.rd,
    ra: opts.ra ?? true,
    ad: false,
    cd: query.cd,
    rcode,
  };
}
