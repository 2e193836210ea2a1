// The kernel side of container networking, in-process: pinned network namespaces, bridges,
// veth pairs configured inside a namespace, per-namespace sysctls, link listing (rtnetlink)
// and nftables transactions (libnftables), all from native/build/berth_net.node. Calls are
// synchronous and each does its whole job in one go, so a container's network costs no
// process start. This file owns validation, names and errors; the addon has no policy.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIPv4, isIPv6 } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { getSystemErrorMap } from 'node:util';
import { BerthError, attachCleanupError, type ErrorCode } from '../errors.js';
import { addonPath as sysAddonPath } from './sys.js';

export interface LinkInfo {
  name: string;
  index: number;
  /** rtnetlink's kind: 'bridge', 'veth', … ; '' for devices without one (lo, physical NICs). */
  kind: string;
  /** The bridge (or other master) this link is enslaved to. */
  master?: string;
  mac: string;
  mtu: number;
  up: boolean;
  /** CIDR, IPv4 and IPv6 (link-local included). */
  addresses: string[];
}

export interface BridgeOptions {
  name: string;
  mtu?: number;
  /** CIDR: the bridge's own addresses (the networks' gateways). */
  addresses: string[];
  /** Set on every call when given; otherwise a random one is set when the bridge is created. */
  mac?: string;
}

export interface VethOptions {
  /** The pinned netns the container end goes into. */
  netnsPath: string;
  /** Host end, enslaved to `bridge`. */
  hostName: string;
  /** Container end, created directly in the netns under this name (eth0, eth1, …). */
  peerName: string;
  bridge: string;
  /** Both ends; default: the bridge's MTU. */
  mtu?: number;
  /** Container end's MAC; default: random. */
  mac?: string;
  /** CIDR, on the container end. IPv6 ones skip DAD. */
  addresses: string[];
  gateway4?: string;
  gateway6?: string;
  /** Extra routes in the container; no `via` → on-link. */
  routes?: { dst: string; via?: string }[];
}

export interface NftApplyOptions {
  /** Output (and listings) as JSON (`nft -j`). */
  json?: boolean;
  /** Print rule handles (`nft -a`). */
  handles?: boolean;
  /** Echo what was added, with handles (`nft -e`). */
  echo?: boolean;
}

interface NativeNet {
  createNetns(path: string): void;
  removeNetns(path: string): void;
  makeShared(dir: string): void;
  ensureBridge(opts: { name: string; mtu?: number; mac?: string; createMac?: string; addresses: string[] }): void;
  addVeth(opts: {
    netnsPath: string;
    hostName: string;
    peerName: string;
    bridge: string;
    mtu?: number;
    mac?: string;
    addresses: string[];
    gateway4?: string;
    gateway6?: string;
    routeDst: string[];
    routeVia: string[];
  }): void;
  deleteLink(name: string, netnsPath: string | null): void;
  deleteLinkAsync(name: string, netnsPath: string | null): Promise<void>;
  listLinks(netnsPath: string | null): LinkInfo[];
  writeSysctl(relPath: string, value: string, netnsPath: string | null): void;
  nftRun(text: string, outputFlags: number): { ok: boolean; output: string; error: string };
}

/** What the addon attaches to the Errors it throws. */
interface NativeError extends Error {
  errno: number;
  step: string;
  object: string;
  detail?: string;
}

// libnftables' output flags (libnftables.h).
const NFT_CTX_OUTPUT_HANDLE = 1 << 3;
const NFT_CTX_OUTPUT_JSON = 1 << 4;
const NFT_CTX_OUTPUT_ECHO = 1 << 5;

const IFNAMSIZ = 16;

let loaded: NativeNet | undefined;
let loadError: BerthError | undefined;

/** Where the addon is: BERTH_NET_ADDON, else beside berth_sys.node (native/build/). */
export function netAddonPath(): string {
  if (process.env.BERTH_NET_ADDON) return process.env.BERTH_NET_ADDON;
  return join(dirname(sysAddonPath()), 'berth_net.node');
}

function native(): NativeNet {
  if (loaded) return loaded;
  if (loadError) throw loadError;
  let path = '(unknown)';
  try {
    path = netAddonPath();
    loaded = createRequire(import.meta.url)(path) as NativeNet;
    return loaded;
  } catch (err) {
    loadError = new BerthError('FailedPrecondition', `cannot load the networking addon ${path}: ${(err as Error).message.split('\n')[0]}`, {
      cause: err,
      hint: 'build it with `make -C native` (needs gcc and the Node headers)',
    });
    throw loadError;
  }
}

/** null when the addon loads; otherwise why not. */
export function netlinkAvailable(): string | null {
  if (process.platform !== 'linux') return `networking needs Linux, not ${process.platform}`;
  try {
    native();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** null when libnftables can be used through the addon; otherwise why not. */
export function nftAvailable(): string | null {
  const why = netlinkAvailable();
  if (why !== null) return why;
  try {
    nftApply('');
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

function isNativeError(err: unknown): err is NativeError {
  return err instanceof Error && typeof (err as Partial<NativeError>).errno === 'number' && typeof (err as Partial<NativeError>).step === 'string';
}

const ERRNO_CODES: Record<string, ErrorCode> = {
  EEXIST: 'AlreadyExists',
  ENOENT: 'NotFound',
  ENODEV: 'NotFound',
  ENXIO: 'NotFound',
  ESRCH: 'NotFound',
  EINVAL: 'InvalidArgument',
  ERANGE: 'InvalidArgument',
  EOPNOTSUPP: 'InvalidArgument',
  ENOTSUP: 'InvalidArgument',
  EAFNOSUPPORT: 'InvalidArgument',
  EADDRNOTAVAIL: 'InvalidArgument',
  ENAMETOOLONG: 'InvalidArgument',
  EMSGSIZE: 'InvalidArgument',
  ENETUNREACH: 'InvalidArgument',
  EPERM: 'FailedPrecondition',
  EACCES: 'FailedPrecondition',
  EROFS: 'FailedPrecondition',
  EBUSY: 'Conflict',
};

function errnoName(errno: number): string {
  return getSystemErrorMap().get(-errno)?.[0] ?? `E${errno}`;
}

function hintFor(name: string, step: string, object: string): string | undefined {
  if (name === 'ENOENT' && object.startsWith('/proc/sys/')) return 'no such sysctl here: is the interface in this namespace, the module loaded (IPv6, br_netfilter)?';
  if (name === 'EPERM' || name === 'EACCES') return 'needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)';
  if (name === 'EEXIST' && step === 'RTM_NEWLINK') return 'a link with that name already exists; remove the stale one or choose another name';
  if (name === 'EEXIST' && step === 'RTM_NEWADDR') return 'the address is already on that interface';
  if (name === 'EEXIST' && step === 'RTM_NEWROUTE') return 'a route to that destination already exists in the namespace';
  if (name === 'ENODEV' && step === 'RTM_GETLINK') return 'no such link; create the bridge with ensureBridge first';
  if (name === 'ENOENT' && (step === 'open' || step === 'setns')) return 'the network namespace is not pinned there (created by createNetns?)';
  return undefined;
}

/** `op: STEP object: strerror (ECODE): kernel's own words` as a BerthError; other errors pass through. */
export function translateNetError(op: string, err: unknown): unknown {
  if (!isNativeError(err)) return err;
  const name = errnoName(err.errno);
  const what = err.object ? `${err.step} ${err.object}` : err.step;
  const detail = err.detail ? `: ${err.detail}` : '';
  return new BerthError(ERRNO_CODES[name] ?? 'Internal', `${op}: ${what}: ${err.message} (${name})${detail}`, {
    cause: err,
    hint: hintFor(name, err.step, err.object),
  });
}

function call<T>(op: string, fn: (n: NativeNet) => T): T {
  const n = native();
  try {
    return fn(n);
  } catch (err) {
    throw translateNetError(op, err);
  }
}

// ---------- validation (pure; runs before the addon is touched) ----------

function invalid(op: string, message: string, hint?: string): BerthError {
  return new BerthError('InvalidArgument', `${op}: ${message}`, { hint });
}

/** The kernel's dev_valid_name(): 1–15 bytes, not . or .., no '/', ':' or whitespace. */
export function checkIfName(op: string, field: string, name: unknown): string {
  if (typeof name !== 'string' || name === '') throw invalid(op, `${field} must be a non-empty interface name`);
  if (Buffer.byteLength(name) >= IFNAMSIZ) throw invalid(op, `${field} "${name}" is longer than ${IFNAMSIZ - 1} bytes`, 'Linux limits interface names to 15 bytes');
  if (name === '.' || name === '..' || /[/:\s\0]/.test(name)) throw invalid(op, `${field} "${name}" is not a valid interface name`, "no '/', ':', whitespace, '.' or '..'");
  return name;
}

function checkPath(op: string, field: string, path: unknown): string {
  if (typeof path !== 'string' || !isAbsolute(path) || path.includes('\0')) throw invalid(op, `${field} must be an absolute path, got ${JSON.stringify(path)}`);
  return path;
}

/** "10.87.0.5/16" → family and prefix; a bare address is refused (the prefix matters here). */
export function parseCidr(text: unknown): { family: 4 | 6; address: string; prefix: number } | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const address = m[1]!;
  const prefix = Number(m[2]);
  if (isIPv4(address) && prefix <= 32) return { family: 4, address, prefix };
  if (isIPv6(address) && !address.includes('%') && prefix <= 128) return { family: 6, address, prefix };
  return undefined;
}

function checkCidrs(op: string, field: string, list: unknown): string[] {
  if (!Array.isArray(list)) throw invalid(op, `${field} must be an array of CIDR addresses`);
  return list.map((a, i) => {
    if (!parseCidr(a)) throw invalid(op, `${field}[${i}] ${JSON.stringify(a)} is not an address with a prefix length`, 'write it as 10.87.0.5/16 or fd8b:e47b::5/64');
    return a as string;
  });
}

function checkMtu(op: string, mtu: unknown): number | undefined {
  if (mtu === undefined) return undefined;
  if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw invalid(op, `mtu ${String(mtu)} is out of range`, 'use an integer from 68 to 65535');
  return mtu;
}

function checkMac(op: string, mac: unknown): string | undefined {
  if (mac === undefined) return undefined;
  if (typeof mac !== 'string' || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) throw invalid(op, `mac ${JSON.stringify(mac)} is not a MAC address`, 'write it as 02:b7:0a:57:00:05');
  if (parseInt(mac.slice(0, 2), 16) & 1) throw invalid(op, `mac ${mac} is a multicast address`, 'the first byte must be even (unicast)');
  if (/^(00:){5}00$/.test(mac)) throw invalid(op, `mac ${mac} is all zeros`);
  return mac.toLowerCase();
}

/** A random locally administered unicast MAC. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * The /proc/sys path (relative) of a sysctl key. Dots separate components, except in the
 * interface part of net.ipv{4,6}.{conf,neigh}.<ifname>.<leaf>, where the name may itself hold
 * dots (VLAN devices: eth0.100). A key with '/' is taken as the path itself, as sysctl(8) does.
 */
export function sysctlPath(key: string): string {
  const op = `setSysctl ${JSON.stringify(key)}`;
  if (typeof key !== 'string' || key === '' || key.includes('\0')) throw invalid(op, 'the key must be a non-empty string');
  let parts: string[];
  if (key.includes('/')) parts = key.replace(/^\/+/, '').split('/');
  else {
    parts = key.split('.');
    if (parts.length >= 5 && parts[0] === 'net' && (parts[1] === 'ipv4' || parts[1] === 'ipv6') && (parts[2] === 'conf' || parts[2] === 'neigh')) {
      parts = [...parts.slice(0, 3), parts.slice(3, -1).join('.'), parts[parts.length - 1]!];
    }
  }
  if (parts[0] !== 'net') throw invalid(op, 'only net.* keys can be set here', 'network sysctls are per namespace; others belong to the host');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) throw invalid(op, 'empty, "." or ".." component in the key');
  const path = parts.join('/');
  if (path.length > 400) throw invalid(op, 'the key is too long');
  return path;
}

// ---------- the calls ----------

/** A new network namespace pinned at path (file created, parent dirs too), loopback up inside. */
export function createNetns(path: string): void {
  const op = `createNetns ${path}`;
  checkPath('createNetns', 'path', path);
  const n = native();
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new BerthError('FailedPrecondition', `${op}: cannot create ${dirname(path)}: ${(err as Error).message}`, { cause: err });
  }
  try {
    n.createNetns(path);
  } catch (err) {
    throw translateNetError(op, err);
  }
}

/** Unmounts the pin (lazily: a process still inside keeps the namespace alive) and removes the file. Absent → no error. */
export function removeNetns(path: string): void {
  checkPath('removeNetns', 'path', path);
  call(`removeNetns ${path}`, (n) => n.removeNetns(path));
}

/**
 * mkdir -p dir, then make it a shared mount point of its own (bind onto itself, MS_SHARED),
 * as `ip netns` does for /run/netns: unmounting a pin there then also unmounts the copies
 * that other mount namespaces made of it. Idempotent.
 */
export function ensureSharedDir(dir: string): void {
  const op = `ensureSharedDir ${dir}`;
  checkPath('ensureSharedDir', 'dir', dir);
  const n = native();
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new BerthError('FailedPrecondition', `${op}: ${(err as Error).message}`, { cause: err });
  }
  try {
    n.makeShared(dir);
  } catch (err) {
    throw translateNetError(op, err);
  }
}

/**
 * Creates the bridge when missing (with `mac` or a random fixed MAC, so it never changes as
 * ports come and go), adds the addresses it lacks (IPv6 without DAD: accept_dad=0 on the
 * bridge), applies mtu/mac when given and sets it up. Safe at every start; a bridge it
 * created is removed again if a later step fails.
 */
export function ensureBridge(opts: BridgeOptions): void {
  const op = `ensureBridge ${String(opts?.name)}`;
  const name = checkIfName(op, 'name', opts?.name);
  const addresses = checkCidrs(op, 'addresses', opts.addresses);
  const mtu = checkMtu(op, opts.mtu);
  const mac = checkMac(op, opts.mac);
  call(op, (n) => n.ensureBridge({ name, addresses, mtu, mac, createMac: mac ?? randomMac() }));
}

/** Removes a link (a veth takes its peer with it). Absent link or namespace → no error. */
export function deleteLink(name: string, netnsPath?: string): void {
  const where = netnsPath === undefined ? '' : ` in ${netnsPath}`;
  const op = `deleteLink ${String(name)}${where}`;
  checkIfName(op, 'name', name);
  if (netnsPath !== undefined) checkPath(op, 'netnsPath', netnsPath);
  call(op, (n) => n.deleteLink(name, netnsPath ?? null));
}

/**
 * deleteLink off the event loop: removing a device waits for RCU grace periods (20–35 ms
 * measured here), so a caller that must remove one link from a live namespace (disconnect)
 * should use this. Tearing down a whole sandbox needs neither: removeNetns destroys its
 * veths with the namespace, in the background.
 */
export async function deleteLinkAsync(name: string, netnsPath?: string): Promise<void> {
  const where = netnsPath === undefined ? '' : ` in ${netnsPath}`;
  const op = `deleteLink ${String(name)}${where}`;
  checkIfName(op, 'name', name);
  if (netnsPath !== undefined) checkPath(op, 'netnsPath', netnsPath);
  const n = native();
  try {
    await n.deleteLinkAsync(name, netnsPath ?? null);
  } catch (err) {
    throw translateNetError(op, err);
  }
}

/** Every link of the namespace (berthd's own when netnsPath is absent), with its addresses. */
export function listLinks(netnsPath?: string): LinkInfo[] {
  const op = `listLinks${netnsPath === undefined ? '' : ` in ${netnsPath}`}`;
  if (netnsPath !== undefined) checkPath(op, 'netnsPath', netnsPath);
  return call(op, (n) => n.listLinks(netnsPath ?? null));
}

/**
 * One call per endpoint: the pair is created with its container end directly in the netns
 * (no rename, no move), the host end enslaved to the bridge and up; inside the netns the
 * container end gets accept_dad=0 (when IPv6 is asked for), its addresses, up, the default
 * routes and the extra routes. On failure the host end is deleted, which takes the
 * container end with it: nothing is left.
 */
export function addVeth(opts: VethOptions): void {
  const op = `addVeth ${String(opts?.hostName)} → ${String(opts?.peerName)} in ${String(opts?.netnsPath)}`;
  const netnsPath = checkPath(op, 'netnsPath', opts?.netnsPath);
  const hostName = checkIfName(op, 'hostName', opts.hostName);
  const peerName = checkIfName(op, 'peerName', opts.peerName);
  const bridge = checkIfName(op, 'bridge', opts.bridge);
  const mtu = checkMtu(op, opts.mtu);
  const mac = checkMac(op, opts.mac);
  const addresses = checkCidrs(op, 'addresses', opts.addresses);
  if (opts.gateway4 !== undefined && !isIPv4(opts.gateway4)) throw invalid(op, `gateway4 ${JSON.stringify(opts.gateway4)} is not an IPv4 address`);
  if (opts.gateway6 !== undefined && (!isIPv6(opts.gateway6) || opts.gateway6.includes('%'))) throw invalid(op, `gateway6 ${JSON.stringify(opts.gateway6)} is not an IPv6 address`);
  const routeDst: string[] = [];
  const routeVia: string[] = [];
  const routes = opts.routes ?? [];
  if (!Array.isArray(routes)) throw invalid(op, 'routes must be an array');
  routes.forEach((r, i) => {
    const dst = parseCidr(r?.dst);
    if (!dst) throw invalid(op, `routes[${i}].dst ${JSON.stringify(r?.dst)} is not a CIDR`);
    if (r.via !== undefined && !(dst.family === 4 ? isIPv4(r.via) : isIPv6(r.via))) {
      throw invalid(op, `routes[${i}].via ${JSON.stringify(r.via)} is not an IPv${dst.family} address (as its dst ${r.dst})`);
    }
    routeDst.push(r.dst);
    routeVia.push(r.via ?? '');
  });
  call(op, (n) =>
    n.addVeth({ netnsPath, hostName, peerName, bridge, mtu, mac, addresses, gateway4: opts.gateway4, gateway6: opts.gateway6, routeDst, routeVia }),
  );
  // With br_netfilter, a container reaching its own published port has the DNATed packet sent
  // back out of the port it came in on: the bridge does that only in hairpin mode.
  try {
    writeFileSync(`/sys/class/net/${hostName}/brport/hairpin_mode`, '1');
  } catch (err) {
    const e = new BerthError('Internal', `${op}: cannot set hairpin mode on ${hostName}: ${(err as Error).message}`, { cause: err });
    try {
      deleteLink(hostName);
    } catch (cleanup) {
      attachCleanupError(e, cleanup);
    }
    throw e;
  }
}

/** Writes a network sysctl in berthd's namespace or, with netnsPath, inside that one. */
export function setSysctl(key: string, value: string, netnsPath?: string): void {
  const rel = sysctlPath(key);
  const op = `setSysctl ${key}=${String(value)}${netnsPath === undefined ? '' : ` in ${netnsPath}`}`;
  if (typeof value !== 'string' || value.includes('\0') || value.length > 256) throw invalid(op, 'the value must be a short string');
  if (netnsPath !== undefined) checkPath(op, 'netnsPath', netnsPath);
  call(op, (n) => n.writeSysctl(rel, value, netnsPath ?? null));
}

/**
 * Runs nft commands (one `nft -f` worth of text: a single transaction) through libnftables
 * in berthd's namespace and returns nft's output. Failures carry nft's own message.
 */
export function nftApply(text: string, opts: NftApplyOptions = {}): string {
  if (typeof text !== 'string' || text.includes('\0')) throw invalid('nftApply', 'the ruleset must be a string without null bytes');
  const flags = (opts.json ? NFT_CTX_OUTPUT_JSON : 0) | (opts.handles ? NFT_CTX_OUTPUT_HANDLE : 0) | (opts.echo ? NFT_CTX_OUTPUT_ECHO : 0);
  let result: { ok: boolean; output: string; error: string };
  try {
    result = native().nftRun(text, flags);
  } catch (err) {
    if (err instanceof BerthError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENFTLOAD') {
      throw new BerthError('Unavailable', `nftApply: cannot load libnftables: ${(err as Error).message}`, {
        cause: err,
        hint: 'install libnftables1 (Debian: apt-get install libnftables1), or use the nft command',
      });
    }
    throw new BerthError('Internal', `nftApply: ${(err as Error).message}`, { cause: err });
  }
  if (!result.ok) {
    const message = result.error.trim() || 'nft failed without a message';
    throw new BerthError('InvalidArgument', `nft: ${message}`, { hint: 'the whole transaction was rejected; nothing was changed' });
  }
  return result.output;
}
