// The embedded DNS server: one UDP and one TCP listener per network (on its gateway), a
// name table per network, and forwarding of everything else to upstream resolvers.
// It runs inside berthd, so a crash here would take the daemon down: every handler
// catches, and work is bounded (in-flight forwards, TCP connections and pipelining).
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import { BerthError } from '../../errors.js';
import {
  CLASSIC_UDP_SIZE,
  HEADER_SIZE,
  MAX_MESSAGE_SIZE,
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
  type DnsHeader,
  type DnsMessage,
  type DnsQuestion,
  type DnsRecord,
  type Edns,
} from './message.js';
import type { Upstream } from './resolv.js';

export interface EmbeddedDnsOptions {
  /** The default upstreams, asked per forwarded query (make it cheap: see watchHostUpstreams). */
  upstreams: () => Upstream[];
  /** Per upstream attempt, before moving to the next one. Default 2000. */
  timeoutMs?: number;
  warn?: (m: string) => void;
  /** TTL of the answers from the name table. Default 60 (DEFAULT_TTL). */
  ttl?: number;
  /** Forwards in flight at once, over every network; UDP queries beyond are dropped (the client retries). Default 1024. */
  maxInFlight?: number;
}

export interface DnsListenOptions {
  /** Default 53; 0 → an ephemeral port (the same for UDP and TCP). */
  port?: number;
  /** Answer names from the table (false on the default bridge: forward only). Default true. */
  names?: boolean;
  /** The network's name: "web.<networkName>" then resolves on that network, and PTR answers say "web.<networkName>" (Docker's behaviour). */
  networkName?: string;
  /**
   * Forward unknown names to upstreams (default true). An internal network has no way out, so
   * its containers should not reach the outside through us either: a client all of whose
   * networks say false gets REFUSED for anything the table cannot answer.
   */
  forward?: boolean;
}

export interface DnsEntry {
  sandboxId: string;
  /** Container name, aliases, short id: answered case-insensitively, with or without a trailing dot. */
  names: string[];
  ipv4?: string;
  ipv6?: string;
}

/**
 * Short on purpose: answers come from a table on this host, so asking again costs a local
 * round trip, while a container that is re-created gets a new address, and clients that
 * honour TTLs (nginx's resolver, the JVM, caching sidecars) would keep the old one for
 * Docker's 600 s.
 */
export const DEFAULT_TTL = 60;
const DEFAULT_TIMEOUT_MS = 2000;
const DEFAULT_MAX_IN_FLIGHT = 1024;
/** What we advertise in our own OPT records: the DNS flag day 2020 size, safe from fragmentation. */
const OUR_UDP_SIZE = 1232;
/** Local answers over UDP stay within this whatever a client advertises (RFC 6891's suggested maximum); more goes over TCP. */
const MAX_UDP_REPLY = 4096;
const TCP_IDLE_MS = 10_000;
const TCP_MAX_CONNECTIONS = 256;
const TCP_MAX_PIPELINED = 16;
const TCP_MAX_UNSENT = 256 * 1024;
const WARN_INTERVAL_MS = 60_000;

interface Listener {
  address: string;
  port: number;
  udp: dgram.Socket;
  tcp: net.Server;
  conns: Set<net.Socket>;
}

interface StoredEntry {
  sandboxId: string;
  names: string[];
  /** The first name as given, for PTR answers. */
  display?: string;
  ipv4?: string;
  ipv6?: string;
}

interface NetworkState {
  id: string;
  names: boolean;
  forward: boolean;
  networkName?: string;
  networkKey?: string;
  listeners: Map<string, Listener>;
  entries: Map<string, StoredEntry>;
  byName: Map<string, Set<string>>;
  /** Canonical address → sandbox id: who may ask, and PTR. */
  byAddress: Map<string, string>;
  /** listen() calls under way: the state must outlive them, their listeners point at it. */
  binding: number;
}

type Transport = 'udp' | 'tcp';

/** An address as compared everywhere here: no zone, IPv4-mapped unwrapped, IPv6 in RFC 5952 form. */
function normalizeAddress(address: string): string {
  let a = address.split('%')[0]!;
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(a)) a = a.slice(7);
  if (net.isIP(a) === 6) return formatIpv6(addressBytes(a, 6));
  return a;
}

function describe(address: string, port: number): string {
  return net.isIP(address.split('%')[0]!) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** The address a reverse name stands for, or undefined when it is not a full in-addr.arpa / ip6.arpa name. */
function reverseAddress(name: string): string | undefined {
  if (name.endsWith('.in-addr.arpa')) {
    const parts = name.slice(0, -'.in-addr.arpa'.length).split('.');
    if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
    return parts.reverse().join('.');
  }
  if (name.endsWith('.ip6.arpa')) {
    const nibbles = name.slice(0, -'.ip6.arpa'.length).split('.');
    if (nibbles.length !== 32 || !nibbles.every((n) => /^[0-9a-f]$/.test(n))) return undefined;
    const hex = nibbles.reverse().join('');
    return formatIpv6(Uint8Array.from(Buffer.from(hex, 'hex')));
  }
  return undefined;
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

export class EmbeddedDns {
  private readonly networks = new Map<string, NetworkState>();
  /** sandbox id → the networks it is registered on: the span of its view. */
  private readonly sandboxNetworks = new Map<string, Set<string>>();
  private readonly sandboxUpstreams = new Map<string, Upstream[]>();
  /** Cancels every forward in flight (close). */
  private readonly pending = new Set<() => void>();
  private inFlight = 0;
  private readonly warned = new Map<string, number>();
  private closed = false;
  private readonly timeoutMs: number;
  private readonly ttl: number;
  private readonly maxInFlight: number;

  constructor(private readonly opts: EmbeddedDnsOptions) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.ttl = opts.ttl ?? DEFAULT_TTL;
    this.maxInFlight = opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  }

  /** Starts answering on (address, port), UDP and TCP. Listening again on the same address returns the existing listener (port 0 or the same port). */
  async listen(networkId: string, address: string, opts: DnsListenOptions = {}): Promise<{ address: string; port: number }> {
    if (this.closed) throw new BerthError('FailedPrecondition', `DNS for network ${networkId}: the server is closed`);
    const family = net.isIP(address);
    if (family === 0) throw new BerthError('InvalidArgument', `DNS for network ${networkId}: listen address "${address}" is not an IP address`);
    const port = opts.port ?? 53;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new BerthError('InvalidArgument', `DNS for network ${networkId}: port ${port} is not a port number`);
    }
    const st = this.network(networkId);
    const configure = (): void => {
      st.names = opts.names ?? true;
      st.forward = opts.forward ?? true;
      st.networkName = opts.networkName;
      st.networkKey = opts.networkName ? canonicalName(opts.networkName) : undefined;
    };
    const key = normalizeAddress(address);
    const existing = st.listeners.get(key);
    if (existing && (port === 0 || port === existing.port)) {
      configure();
      return { address: existing.address, port: existing.port };
    }
    let lastErr: unknown;
    st.binding++;
    try {
      // An ephemeral UDP port may be taken for TCP: try a few.
      for (let attempt = 0; attempt < (port === 0 ? 8 : 1); attempt++) {
        let l: Listener;
        try {
          l = await this.bindPair(st, address, port, family === 6 ? 'udp6' : 'udp4');
        } catch (err) {
          lastErr = err;
          if (errnoOf(err) !== 'EADDRINUSE') break;
          continue;
        }
        if (this.closed) {
          await this.closeListener(l);
          throw new BerthError('FailedPrecondition', `DNS for network ${networkId}: the server was closed while listening on ${describe(address, l.port)}`);
        }
        configure();
        const replaced = st.listeners.get(key);
        st.listeners.set(key, l);
        // The old port goes only once the new one works, so a failed move loses nothing.
        if (replaced) await this.closeListener(replaced);
        return { address: l.address, port: l.port };
      }
    } finally {
      st.binding--;
      this.dropIfEmpty(st);
    }
    const code = errnoOf(lastErr);
    const hint =
      code === 'EACCES'
        ? 'binding a port below 1024 needs root or CAP_NET_BIND_SERVICE; listen on a free port and redirect port 53 to it'
        : code === 'EADDRNOTAVAIL'
          ? 'the address is not on any interface yet: create the bridge and its address first'
          : code === 'EADDRINUSE'
            ? 'another DNS server (dnsmasq, systemd-resolved, a second berthd) holds that port: stop it, or listen on a free port and redirect port 53 to it'
            : undefined;
    throw new BerthError('Unavailable', `DNS for network ${networkId}: listen on ${describe(address, port)} (udp and tcp): ${code}`, {
      cause: lastErr,
      hint,
    });
  }

  /** Stops the network's listeners; its registrations stay until unregistered. */
  async unlisten(networkId: string): Promise<void> {
    const st = this.networks.get(networkId);
    if (!st) return;
    const listeners = [...st.listeners.values()];
    st.listeners.clear();
    this.dropIfEmpty(st);
    await Promise.all(listeners.map((l) => this.closeListener(l)));
  }

  /** Adds (or replaces) a sandbox's names and addresses on a network. */
  register(networkId: string, entry: DnsEntry): void {
    const where = `DNS entry of sandbox ${entry.sandboxId} on network ${networkId}`;
    if (entry.ipv4 !== undefined && net.isIP(entry.ipv4) !== 4) throw new BerthError('InvalidArgument', `${where}: ipv4 "${entry.ipv4}" is not an IPv4 address`);
    if (entry.ipv6 !== undefined && net.isIP(entry.ipv6) !== 6) throw new BerthError('InvalidArgument', `${where}: ipv6 "${entry.ipv6}" is not an IPv6 address`);
    const names: string[] = [];
    for (const n of entry.names) {
      try {
        nameToLabels(n);
      } catch (err) {
        throw new BerthError('InvalidArgument', `${where}: ${(err as Error).message}`, { cause: err });
      }
      const key = canonicalName(n);
      if (key !== '' && !names.includes(key)) names.push(key);
    }
    const stored: StoredEntry = {
      sandboxId: entry.sandboxId,
      names,
      display: entry.names.find((n) => canonicalName(n) !== '')?.replace(/\.$/, ''),
      ipv4: entry.ipv4,
      ipv6: entry.ipv6 === undefined ? undefined : normalizeAddress(entry.ipv6),
    };
    const st = this.network(networkId);
    this.remove(st, entry.sandboxId);
    st.entries.set(entry.sandboxId, stored);
    for (const n of names) {
      let set = st.byName.get(n);
      if (!set) st.byName.set(n, (set = new Set()));
      set.add(entry.sandboxId);
    }
    for (const a of [stored.ipv4, stored.ipv6]) if (a !== undefined) st.byAddress.set(a, entry.sandboxId);
    let nets = this.sandboxNetworks.get(entry.sandboxId);
    if (!nets) this.sandboxNetworks.set(entry.sandboxId, (nets = new Set()));
    nets.add(networkId);
  }

  unregister(networkId: string, sandboxId: string): void {
    const st = this.networks.get(networkId);
    if (!st) return;
    this.remove(st, sandboxId);
    this.dropIfEmpty(st);
  }

  /** HostConfig.Dns: this sandbox's unknown names go there instead of the default upstreams; undefined → back to the default. Kept until cleared, whatever its registrations. */
  setUpstreams(sandboxId: string, servers: Upstream[] | undefined): void {
    if (servers === undefined || servers.length === 0) {
      this.sandboxUpstreams.delete(sandboxId);
      return;
    }
    for (const s of servers) {
      if (net.isIP(s.address.split('%')[0]!) === 0 || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
        throw new BerthError('InvalidArgument', `DNS servers of sandbox ${sandboxId}: "${describe(s.address, s.port)}" is not an address and port`);
      }
    }
    this.sandboxUpstreams.set(sandboxId, servers.map((s) => ({ ...s })));
  }

  /** What is registered on a network (every network when omitted), for inspection and leak checks. */
  entries(networkId?: string): (DnsEntry & { networkId: string })[] {
    const out: (DnsEntry & { networkId: string })[] = [];
    for (const st of this.networks.values()) {
      if (networkId !== undefined && st.id !== networkId) continue;
      for (const e of st.entries.values()) {
        out.push({ networkId: st.id, sandboxId: e.sandboxId, names: [...e.names], ipv4: e.ipv4, ipv6: e.ipv6 });
      }
    }
    return out;
  }

  /** The addresses a network's server listens on. */
  listening(networkId: string): { address: string; port: number }[] {
    return [...(this.networks.get(networkId)?.listeners.values() ?? [])].map((l) => ({ address: l.address, port: l.port }));
  }

  /** Stops every listener and abandons the forwards in flight; the server cannot be used again. */
  async close(): Promise<void> {
    this.closed = true;
    for (const cancel of [...this.pending]) cancel();
    const listeners = [...this.networks.values()].flatMap((st) => [...st.listeners.values()]);
    this.networks.clear();
    this.sandboxNetworks.clear();
    this.sandboxUpstreams.clear();
    await Promise.all(listeners.map((l) => this.closeListener(l)));
  }

  private network(networkId: string): NetworkState {
    let st = this.networks.get(networkId);
    if (!st) {
      st = { id: networkId, names: true, forward: true, listeners: new Map(), entries: new Map(), byName: new Map(), byAddress: new Map(), binding: 0 };
      this.networks.set(networkId, st);
    }
    return st;
  }

  private dropIfEmpty(st: NetworkState): void {
    if (st.entries.size === 0 && st.listeners.size === 0 && st.binding === 0 && this.networks.get(st.id) === st) this.networks.delete(st.id);
  }

  private remove(st: NetworkState, sandboxId: string): void {
    const old = st.entries.get(sandboxId);
    if (!old) return;
    st.entries.delete(sandboxId);
    for (const n of old.names) {
      const set = st.byName.get(n);
      set?.delete(sandboxId);
      if (set?.size === 0) st.byName.delete(n);
    }
    for (const a of [old.ipv4, old.ipv6]) if (a !== undefined && st.byAddress.get(a) === sandboxId) st.byAddress.delete(a);
    const nets = this.sandboxNetworks.get(sandboxId);
    nets?.delete(st.id);
    if (nets?.size === 0) this.sandboxNetworks.delete(sandboxId);
  }

  /** Says each distinct problem at most once a minute: a dead upstream fails every query. */
  private warn(m: string): void {
    const now = Date.now();
    const last = this.warned.get(m);
    if (last !== undefined && now - last < WARN_INTERVAL_MS) return;
    if (this.warned.size >= 1000) this.warned.clear();
    this.warned.set(m, now);
    this.opts.warn?.(`dns: ${m}`);
  }

  private async bindPair(st: NetworkState, address: string, port: number, type: 'udp4' | 'udp6'): Promise<Listener> {
    const udp = dgram.createSocket({ type });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address, port, exclusive: true }, () => {
        udp.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      try {
        udp.close();
      } catch {
        // never bound: nothing to close
      }
      throw err;
    });
    const actual = udp.address().port;
    const conns = new Set<net.Socket>();
    const tcp = net.createServer({ allowHalfOpen: true }, (sock) => this.onTcpConnection(st, sock, conns));
    tcp.maxConnections = TCP_MAX_CONNECTIONS;
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host: address, port: actual, exclusive: true }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      udp.close();
      throw err;
    }
    udp.on('error', (err) => this.warn(`udp ${describe(address, actual)} (network ${st.id}): ${err.message}`));
    tcp.on('error', (err) => this.warn(`tcp ${describe(address, actual)} (network ${st.id}): ${err.message}`));
    udp.on('message', (msg, rinfo) => {
      this.handle(msg, st, rinfo.address, 'udp').then(
        (resp) => {
          if (!resp) return;
          try {
            udp.send(resp, rinfo.port, rinfo.address, () => undefined);
          } catch {
            // closed while the answer was on its way
          }
        },
        (err: unknown) => this.warn(`query from ${rinfo.address} (network ${st.id}): ${(err as Error).message}`),
      );
    });
    return { address, port: actual, udp, tcp, conns };
  }

  private async closeListener(l: Listener): Promise<void> {
    for (const c of l.conns) c.destroy();
    await Promise.all([
      new Promise<void>((resolve) => {
        try {
          l.udp.close(() => resolve());
        } catch {
          resolve();
        }
      }),
      new Promise<void>((resolve) => l.tcp.close(() => resolve())),
    ]);
  }

  private onTcpConnection(st: NetworkState, sock: net.Socket, conns: Set<net.Socket>): void {
    conns.add(sock);
    const source = sock.remoteAddress ?? '';
    let buf: Buffer = Buffer.alloc(0);
    let pending = 0;
    let ended = false;
    // RFC 7766 lets answers go out of order (the id tells them apart). What one connection
    // may cost is bounded: at most TCP_MAX_PIPELINED queries open and TCP_MAX_UNSENT bytes
    // of answers its client has not read; past either, we stop reading from it.
    const busy = (): boolean => pending >= TCP_MAX_PIPELINED || sock.writableLength > TCP_MAX_UNSENT;
    const pump = (): void => {
      while (!busy() && buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (len < HEADER_SIZE) {
          sock.destroy();
          return;
        }
        if (buf.length < 2 + len) break;
        const query = Buffer.from(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        pending++;
        this.handle(query, st, source, 'tcp')
          .then(
            (resp) => {
              if (!resp || sock.destroyed) return;
              const head = Buffer.alloc(2);
              head.writeUInt16BE(resp.length);
              sock.write(Buffer.concat([head, resp]));
            },
            (err: unknown) => this.warn(`tcp query from ${source} (network ${st.id}): ${(err as Error).message}`),
          )
          .finally(() => {
            pending--;
            pump();
          });
      }
      if (sock.destroyed) return;
      if (busy()) sock.pause();
      else if (sock.isPaused()) sock.resume();
      // A client may half-close after its last query: answer what it asked, then close.
      if (ended && pending === 0 && !sock.writableEnded) sock.end();
    };
    // Idle means no query open either: forwards to many slow upstreams may outlast the timer.
    sock.setTimeout(TCP_IDLE_MS, () => {
      if (pending === 0) sock.destroy();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => conns.delete(sock));
    sock.on('drain', pump);
    sock.on('end', () => {
      ended = true;
      pump();
    });
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      pump();
    });
  }

  /** The answer to one query, or undefined to stay silent. */
  private async handle(query: Buffer, st: NetworkState, source: string, transport: Transport): Promise<Buffer | undefined> {
    if (this.closed) return undefined;
    const header = parseHeader(query);
    // Never answer an answer: two servers pointed at each other would loop forever.
    if (!header || header.qr) return undefined;
    const sandboxId = st.byAddress.get(normalizeAddress(source));
    if (sandboxId === undefined) return this.errorReply(query, header, Rcode.Refused);
    let msg: DnsMessage;
    try {
      msg = parseMessage(query);
    } catch {
      return this.errorReply(query, header, Rcode.FormErr);
    }
    if (msg.flags.opcode !== 0) return this.errorReply(query, header, Rcode.NotImp);
    if (msg.questions.length !== 1) return this.errorReply(query, header, Rcode.FormErr);
    const q = msg.questions[0]!;
    const maxSize = transport === 'tcp' ? MAX_MESSAGE_SIZE : msg.edns ? Math.min(Math.max(msg.edns.udpSize, CLASSIC_UDP_SIZE), MAX_UDP_REPLY) : CLASSIC_UDP_SIZE;
    if (msg.edns && msg.edns.version > 0) return this.reply(msg, { rcode: Rcode.BadVers, answers: [] }, maxSize);
    const views = this.views(sandboxId);
    const local = this.lookup(q, views);
    if (local) return this.reply(msg, local, maxSize);
    if (!views.some((v) => v.forward)) return this.reply(msg, { rcode: Rcode.Refused, answers: [], aa: false }, maxSize);
    return this.forward(query, msg, sandboxId, transport);
  }

  private views(sandboxId: string): NetworkState[] {
    const out: NetworkState[] = [];
    for (const id of this.sandboxNetworks.get(sandboxId) ?? []) {
      const st = this.networks.get(id);
      if (st) out.push(st);
    }
    return out;
  }

  private reply(query: DnsMessage, res: { rcode: number; answers: DnsRecord[]; aa?: boolean }, maxSize: number): Buffer {
    const edns: Edns | undefined = query.edns
      ? { udpSize: OUR_UDP_SIZE, extendedRcode: 0, version: 0, dnssecOk: query.edns.dnssecOk, options: new Uint8Array(0) }
      : undefined;
    return buildMessage(
      {
        id: query.id,
        flags: responseFlags(query.flags, res.rcode, { aa: res.aa ?? true }),
        questions: query.questions,
        answers: res.answers,
        authorities: [],
        additionals: [],
        edns,
      },
      { maxSize },
    );
  }

  private errorReply(query: Buffer, header: DnsHeader, rcode: number): Buffer {
    let questions: DnsQuestion[] = [];
    if (rcode !== Rcode.FormErr) {
      try {
        const q = parseFirstQuestion(query);
        if (q) questions = [q];
      } catch {
        // an unreadable question is simply not echoed
      }
    }
    return buildMessage({
      id: header.id,
      flags: responseFlags(header, rcode),
      questions,
      answers: [],
      authorities: [],
      additionals: [],
    });
  }

  /** An answer from the table, or undefined when the query must be forwarded. */
  private lookup(q: DnsQuestion, views: NetworkState[]): { rcode: number; answers: DnsRecord[] } | undefined {
    if (q.class !== RecordClass.IN) return undefined;
    const named = views.filter((v) => v.names);
    if (named.length === 0) return undefined;
    const name = canonicalName(q.name);
    if (q.type === RecordType.A || q.type === RecordType.AAAA) {
      const hits = this.entriesFor(name, named);
      if (!hits) return undefined;
      const v4 = q.type === RecordType.A;
      const addrs = new Set<string>();
      for (const e of hits) {
        const a = v4 ? e.ipv4 : e.ipv6;
        if (a !== undefined) addrs.add(a);
      }
      const answers = shuffle([...addrs]).map((address) => ({ name: q.name, type: q.type, class: RecordClass.IN, ttl: this.ttl, address }));
      return { rcode: Rcode.NoError, answers };
    }
    if (q.type === RecordType.PTR) {
      const address = reverseAddress(name);
      if (address === undefined) return undefined;
      for (const v of named) {
        const id = v.byAddress.get(address);
        const e = id === undefined ? undefined : v.entries.get(id);
        if (!e?.display) continue;
        const target = v.networkName ? `${e.display}.${v.networkName}` : e.display;
        return { rcode: Rcode.NoError, answers: [{ name: q.name, type: RecordType.PTR, class: RecordClass.IN, ttl: this.ttl, target }] };
      }
    }
    return undefined;
  }

  /** The entries a name stands for in the client's view: as is on every network, else "name.<network>" on that network (Docker's order). */
  private entriesFor(name: string, views: NetworkState[]): StoredEntry[] | undefined {
    const collect = (v: NetworkState, n: string, out: StoredEntry[]): void => {
      for (const id of v.byName.get(n) ?? []) {
        const e = v.entries.get(id);
        if (e) out.push(e);
      }
    };
    const exact: StoredEntry[] = [];
    for (const v of views) collect(v, name, exact);
    if (exact.length > 0) return exact;
    const scoped: StoredEntry[] = [];
    for (const v of views) {
      if (v.networkKey && name.endsWith(`.${v.networkKey}`)) collect(v, name.slice(0, -v.networkKey.length - 1), scoped);
    }
    return scoped.length > 0 ? scoped : undefined;
  }

  private upstreamsFor(sandboxId: string): Upstream[] {
    let list = this.sandboxUpstreams.get(sandboxId);
    if (!list) {
      try {
        list = this.opts.upstreams();
      } catch (err) {
        this.warn(`reading the default upstreams: ${(err as Error).message}`);
        list = [];
      }
    }
    // An upstream that is one of our own listeners would bounce the query back to us forever.
    return list.filter((u) => !this.isOwnListener(u));
  }

  private isOwnListener(u: Upstream): boolean {
    const a = normalizeAddress(u.address);
    for (const st of this.networks.values()) {
      const l = st.listeners.get(a);
      if (l && l.port === u.port) return true;
    }
    return false;
  }

  private async forward(query: Buffer, msg: DnsMessage, sandboxId: string, transport: Transport): Promise<Buffer | undefined> {
    const q = msg.questions[0]!;
    const servfail = (): Buffer => this.reply(msg, { rcode: Rcode.ServFail, answers: [], aa: false }, MAX_MESSAGE_SIZE);
    const upstreams = this.upstreamsFor(sandboxId);
    if (upstreams.length === 0) return servfail();
    if (this.inFlight >= this.maxInFlight) return transport === 'udp' ? undefined : servfail();
    this.inFlight++;
    try {
      let fallback: Buffer | undefined;
      for (const u of upstreams) {
        if (this.closed) return undefined;
        const id = randomInt(0, 65536);
        const out = Buffer.from(query);
        out.writeUInt16BE(id, 0);
        const resp = transport === 'udp' ? await this.exchangeUdp(out, u, q) : await this.exchangeTcp(out, u, q);
        if (!resp) continue;
        resp.writeUInt16BE(msg.id, 0);
        const rcode = resp[3]! & 0x0f;
        // As the C resolver does: a server that fails or refuses is no answer; ask the next.
        if (rcode === Rcode.ServFail || rcode === Rcode.Refused) {
          fallback = resp;
          continue;
        }
        return resp;
      }
      if (this.closed) return undefined;
      return fallback ?? servfail();
    } finally {
      this.inFlight--;
    }
  }

  /** Whether an upstream's message answers what we sent: its id, QR, and the same question (case-insensitive). */
  private matches(resp: Buffer, id: number, q: DnsQuestion): boolean {
    const h = parseHeader(resp);
    if (!h || !h.qr || h.id !== id) return false;
    try {
      const rq = parseFirstQuestion(resp);
      return rq !== undefined && rq.type === q.type && rq.class === q.class && canonicalName(rq.name) === canonicalName(q.name);
    } catch {
      return false;
    }
  }

  /** One UDP exchange from a fresh socket (a random source port per query, besides the random id). */
  private exchangeUdp(out: Buffer, u: Upstream, q: DnsQuestion): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const id = out.readUInt16BE(0);
      const want = normalizeAddress(u.address);
      const sock = dgram.createSocket(net.isIP(u.address.split('%')[0]!) === 6 ? 'udp6' : 'udp4');
      let done = false;
      const finish = (r: Buffer | undefined): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.pending.delete(cancel);
        try {
          sock.close();
        } catch {
          // already closed by an error
        }
        resolve(r);
      };
      const cancel = (): void => finish(undefined);
      this.pending.add(cancel);
      const timer = setTimeout(cancel, this.timeoutMs);
      sock.on('error', (err) => {
        this.warn(`upstream ${describe(u.address, u.port)}: ${err.message}`);
        finish(undefined);
      });
      sock.on('message', (resp, rinfo) => {
        // Only the server we asked, answering what we asked: anything else may be spoofed.
        if (rinfo.port !== u.port || normalizeAddress(rinfo.address) !== want) return;
        if (this.matches(resp, id, q)) finish(resp);
      });
      sock.send(out, u.port, u.address, (err) => {
        if (err) {
          this.warn(`upstream ${describe(u.address, u.port)}: ${err.message}`);
          finish(undefined);
        }
      });
    });
  }

  private exchangeTcp(out: Buffer, u: Upstream, q: DnsQuestion): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const id = out.readUInt16BE(0);
      const sock = net.connect({ host: u.address, port: u.port });
      let buf: Buffer = Buffer.alloc(0);
      let done = false;
      const finish = (r: Buffer | undefined): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.pending.delete(cancel);
        sock.destroy();
        resolve(r);
      };
      const cancel = (): void => finish(undefined);
      this.pending.add(cancel);
      const timer = setTimeout(cancel, this.timeoutMs);
      sock.on('error', (err) => {
        this.warn(`upstream ${describe(u.address, u.port)} (tcp): ${err.message}`);
        finish(undefined);
      });
      sock.on('close', () => finish(undefined));
      sock.on('connect', () => {
        const head = Buffer.alloc(2);
        head.writeUInt16BE(out.length);
        sock.write(Buffer.concat([head, out]));
      });
      sock.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < 2) return;
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) return;
        const resp = Buffer.from(buf.subarray(2, 2 + len));
        finish(this.matches(resp, id, q) ? resp : undefined);
      });
    });
  }
}
