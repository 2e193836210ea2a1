// Compiles a validated OCI config into a launch plan (see native/plan.h). Pure: every
// host fact comes in through CompileOptions.host, so plans are unit-tested without root.
import { isAbsolute, join, normalize, resolve } from 'node:path';
import { BerthError } from '../errors.js';
import { capabilityMask, capabilityNames, clampToKernel } from './capabilities.js';
import { MS, parseMountOptions, parsePropagation } from './mounts.js';
import { MountFlag, Op, type Plan, type PlanOp } from './plan.js';
import { clampRlimits, rlimitNumber, type LimitValue } from './rlimits.js';
import { compileSeccomp } from './seccomp.js';
import type { Device, DeviceCgroup, Mount, NamespaceType, Process, Spec } from './spec.js';

export const CLONE_FLAGS: Record<NamespaceType, number> = {
  mount: 0x00020000,
  cgroup: 0x02000000,
  uts: 0x04000000,
  ipc: 0x08000000,
  user: 0x10000000,
  pid: 0x20000000,
  network: 0x40000000,
  time: 0x00000080,
};

/** /proc/<pid>/ns/<name> for each namespace type. */
export const NS_PROC_NAME: Record<NamespaceType, string> = {
  mount: 'mnt',
  cgroup: 'cgroup',
  uts: 'uts',
  ipc: 'ipc',
  user: 'user',
  pid: 'pid',
  network: 'net',
  time: 'time',
};

export interface HostFacts {
  /** /proc/sys/kernel/cap_last_cap */
  lastCap: number;
  /** berth's own bounding set: capabilities outside it cannot be granted (default: all). */
  boundingSet?: bigint;
  /** The host's hard limit of an RLIMIT_* name. */
  rlimitHard: (name: string) => LimitValue;
}

/** One cgroup hierarchy as the container should see it under a `cgroup` mount. */
export interface CgroupMountSource {
  /** Sub-directory of the mount point ("memory", "cpu,cpuacct", "unified"); "" for a pure v2 host. */
  name: string;
  /** The container's cgroup directory on the host, bind-mounted when no cgroup namespace is used. */
  hostDir: string;
  /** The filesystem type of the hierarchy. */
  fstype: 'cgroup' | 'cgroup2';
}

export interface CompileOptions {
  id: string;
  spec: Spec;
  bundle: string;
  /** The exec fifo (create/start split); absent: the process starts right away. */
  fifoPath?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  /** runc's --no-new-keyring: keep the caller's session keyring. */
  noNewKeyring?: boolean;
  /** berth-exec stays parent of the container process and reports its exit status. */
  foreground?: boolean;
  preserveFds?: number;
  /** Directories of the container's cgroups; berth-exec joins them before the clone. */
  cgroupDirs?: string[];
  /** v2 device-controller program: raw struct bpf_insn bytes for cgroupDir. */
  deviceProgram?: { cgroupDir: string; insns: Uint8Array };
  cgroupMounts?: CgroupMountSource[];
  /** OP_SYNC "create" is emitted when Node must run prestart/createRuntime hooks or give hooks the state. */
  host: HostFacts;
}

export interface Compiled {
  plan: Plan;
  warnings: string[];
  rootfs: string;
}

const DEFAULT_DEVICES: Device[] = [
  { type: 'c', path: '/dev/null', major: 1, minor: 3, fileMode: 0o666 },
  { type: 'c', path: '/dev/zero', major: 1, minor: 5, fileMode: 0o666 },
  { type: 'c', path: '/dev/full', major: 1, minor: 7, fileMode: 0o666 },
  { type: 'c', path: '/dev/random', major: 1, minor: 8, fileMode: 0o666 },
  { type: 'c', path: '/dev/urandom', major: 1, minor: 9, fileMode: 0o666 },
  { type: 'c', path: '/dev/tty', major: 5, minor: 0, fileMode: 0o666 },
];

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

// sysctls that live in a namespace (runc's validation): prefix or exact name → namespace.
const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

function op(code: PlanOp['op'], ...args: PlanOp['args']): PlanOp {
  return { op: code, args };
}

function bad(path: string, message: string, hint?: string): BerthError {
  return new BerthError('InvalidArgument', `${path}: ${message}`, hint ? { hint } : {});
}

/** Which namespaces are new, which are joined, as the config says. */
export function namespaceSet(spec: Spec): { create: Set<NamespaceType>; join: Map<NamespaceType, string> } {
  const create = new Set<NamespaceType>();
  const joinMap = new Map<NamespaceType, string>();
  for (const ns of spec.linux?.namespaces ?? []) {
    if (ns.path) joinMap.set(ns.type, ns.path);
    else create.add(ns.type);
  }
  return { create, join: joinMap };
}

function hasNs(ns: ReturnType<typeof namespaceSet>, type: NamespaceType): boolean {
  return ns.create.has(type) || ns.join.has(type);
}

function mapText(maps: { containerID: number; hostID: number; size: number }[]): string {
  return maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

/** Ops that turn the current process into the one `proc` describes: LSM labels, umask, seccomp, user, caps, exec. */
export function compileProcess(
  proc: Process,
  spec: Spec,
  host: HostFacts,
  opts: {
    closeFrom: number;
    path?: string;
    warnings: string[];
    /** Ops to run as the final user, just before exec: waiting for `start` and the
     *  startContainer hooks (so a hook from the image gets no more privilege than the
     *  process, and everything that can fail has failed before `create` returns). */
    beforeExec?: PlanOp[];
  },
): PlanOp[] {
  const path = opts.path ?? 'process';
  const out: PlanOp[] = [];
  if (!proc.args || proc.args.length === 0) throw bad(`${path}.args`, 'must name the program to run');
  if (!proc.cwd || !isAbsolute(proc.cwd)) throw bad(`${path}.cwd`, `must be an absolute path, got ${JSON.stringify(proc.cwd)}`);
  if (proc.apparmorProfile) out.push(op(Op.APPARMOR, proc.apparmorProfile));
  if (proc.selinuxLabel) out.push(op(Op.SELINUX, proc.selinuxLabel));
  out.push(op(Op.UMASK, proc.user.umask ?? 0o022));
  out.push(...compileProcessAttributes(proc, spec, path));

  const seccomp = spec.linux?.seccomp ? compileSeccomp(spec.linux.seccomp, 'linux.seccomp') : [];
  const nnp = proc.noNewPrivileges === true;
  // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it before the
  // user and capability switch. With it, load as late as possible.
  if (!nnp) out.push(...seccomp);
  if (nnp) out.push(op(Op.NO_NEW_PRIVS));
  out.push(op(Op.CHDIR, proc.cwd));
  const groups = proc.user.additionalGids ?? [];
  out.push(op(Op.USER, proc.user.uid, proc.user.gid, groups.length, ...groups));
  const caps = proc.capabilities ?? {};
  const allowed = host.boundingSet ?? ~0n;
  let dropped = 0n;
  const mask = (set: keyof typeof caps) => {
    const want = clampToKernel(capabilityMask(caps[set] ?? [], `${path}.capabilities.${set}`), host.lastCap);
    dropped |= want & ~allowed;
    return want & allowed;
  };
  // The kernel refuses an ambient capability that is not both permitted and inheritable;
  // runc's own default spec asks for such ones, and runc silently goes without them.
  const ambient = mask('ambient') & mask('permitted') & mask('inheritable');
  out.push(op(Op.CAPS, mask('bounding'), mask('effective'), mask('permitted'), mask('inheritable'), ambient));
  if (dropped)
    opts.warnings.push(
      `${path}.capabilities: ${capabilityNames(dropped).join(', ')} left out: this host does not grant ${capabilityNames(dropped).length > 1 ? 'them' : 'it'} to berth (not in its bounding set)`,
    );
  out.push(...(opts.beforeExec ?? []));
  if (nnp) out.push(...seccomp);
  out.push(op(Op.CLOSE_FDS, opts.closeFrom));
  const env = proc.env ?? [];
  if (!env.some((e) => e.startsWith('PATH='))) env.push(`PATH=${DEFAULT_PATH}`);
  out.push(op(Op.EXEC, '', proc.args.length, ...proc.args, ...env));
  return out;
}

const IOPRIO_CLASS: Record<string, number> = { IOPRIO_CLASS_RT: 1, IOPRIO_CLASS_BE: 2, IOPRIO_CLASS_IDLE: 3 };
const SCHED_POLICY: Record<string, number> = {
  SCHED_OTHER: 0, SCHED_FIFO: 1, SCHED_RR: 2, SCHED_BATCH: 3, SCHED_ISO: 4, SCHED_IDLE: 5, SCHED_DEADLINE: 6,
};
const SCHED_FLAG: Record<string, number> = {
  SCHED_FLAG_RESET_ON_FORK: 0x01, SCHED_FLAG_RECLAIM: 0x02, SCHED_FLAG_DL_OVERRUN: 0x04, SCHED_FLAG_KEEP_POLICY: 0x08,
  SCHED_FLAG_KEEP_PARAMS: 0x10, SCHED_FLAG_UTIL_CLAMP_MIN: 0x20, SCHED_FLAG_UTIL_CLAMP_MAX: 0x40,
};
const PERSONA: Record<string, number> = { LINUX: 0x0000, LINUX32: 0x0008 };

/** "0-3,7" → [0, 1, 2, 3, 7]. */
export function parseCpuList(list: string, path: string): number[] {
  const out: number[] = [];
  for (const part of list.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw bad(path, `invalid cpu list "${list}" (expected e.g. "0-3,7")`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi >= 1024) throw bad(path, `invalid cpu range "${part}"`);
    for (let c = lo; c <= hi; c++) out.push(c);
  }
  if (out.length === 0) throw bad(path, 'empty cpu list');
  return out;
}

/** personality, I/O priority, scheduler and cpu affinity of the process. */
function compileProcessAttributes(proc: Process, spec: Spec, path: string): PlanOp[] {
  const out: PlanOp[] = [];
  const persona = spec.linux?.personality;
  if (persona) {
    if (persona.flags?.length) throw new BerthError('FailedPrecondition', `linux.personality.flags: no flags are supported (got ${persona.flags.join(', ')})`);
    const v = PERSONA[persona.domain];
    if (v === undefined) throw bad('linux.personality.domain', `unknown domain "${persona.domain}" (expected LINUX or LINUX32)`);
    out.push(op(Op.PERSONALITY, v));
  }
  if (proc.ioPriority) {
    const cls = IOPRIO_CLASS[proc.ioPriority.class];
    if (cls === undefined) throw bad(`${path}.ioPriority.class`, `unknown class "${proc.ioPriority.class}"`);
    out.push(op(Op.IOPRIO, cls, proc.ioPriority.priority ?? 0));
  }
  const sched = proc.scheduler;
  if (sched) {
    const policy = SCHED_POLICY[sched.policy];
    if (policy === undefined) throw bad(`${path}.scheduler.policy`, `unknown policy "${sched.policy}"`);
    let flags = 0;
    for (const f of sched.flags ?? []) {
      if (SCHED_FLAG[f] === undefined) throw bad(`${path}.scheduler.flags`, `unknown flag "${f}"`);
      flags |= SCHED_FLAG[f];
    }
    out.push(op(Op.SCHEDULER, policy, sched.nice ?? 0, sched.priority ?? 0, flags, sched.runtime ?? 0, sched.deadline ?? 0, sched.period ?? 0));
  }
  const affinity = proc.execCPUAffinity;
  const cpus = affinity?.final ?? affinity?.initial;
  if (cpus) {
    const list = parseCpuList(cpus, `${path}.execCPUAffinity.${affinity?.final ? 'final' : 'initial'}`);
    out.push(op(Op.CPU_AFFINITY, list.length, ...list));
  }
  return out;
}

function compileRlimits(proc: Process, host: HostFacts, warnings: string[]): PlanOp[] {
  const { rlimits, warnings: w } = clampRlimits(proc.rlimits ?? [], host.rlimitHard);
  warnings.push(...w.map((m) => `process.rlimits: ${m}`));
  return rlimits.map((r, i) => {
    const n = rlimitNumber(r.type);
    if (n === undefined) throw bad(`process.rlimits[${i}].type`, `unknown rlimit "${r.type}"`);
    const v = (x: number) => (x >= 2 ** 64 - 1 ? -1 : x);
    return op(Op.RLIMIT, n, v(r.soft), v(r.hard));
  });
}

function containerPath(p: string, path: string): string {
  if (typeof p !== 'string' || p === '') throw bad(path, 'must be a non-empty path');
  // runc treats a relative destination as relative to "/".
  return normalize(isAbsolute(p) ? p : `/${p}`);
}

function compileMounts(spec: Spec, o: CompileOptions, ns: ReturnType<typeof namespaceSet>): PlanOp[] {
  const out: PlanOp[] = [];
  const inRoot = MountFlag.IN_ROOT | MountFlag.MKDIR;
  (spec.mounts ?? []).forEach((m: Mount, i) => {
    const path = `mounts[${i}]`;
    const dst = containerPath(m.destination, `${path}.destination`);
    const parsed = parseMountOptions(m.options, `${path}.options`);
    const type = m.type ?? '';
    const isBind = type === 'bind' || (parsed.flags & MS.BIND) !== 0;
    const data = parsed.data.join(',');
    if (type === 'cgroup') {
      out.push(...compileCgroupMount(dst, parsed.flags, o, ns));
    } else if (isBind) {
      if (!m.source) throw bad(`${path}.source`, 'a bind mount needs a source');
      const src = isAbsolute(m.source) ? m.source : resolve(o.bundle, m.source);
      // One op: bind (recursively with rbind), then remount with the other flags.
      const flags = (parsed.flags & ~MS.REMOUNT) | MS.BIND;
      const rest = flags & ~(MS.BIND | MS.REC);
      out.push(op(Op.MOUNT, src, dst, '', flags, '', inRoot | (rest ? MountFlag.BIND_REMOUNT : 0)));
    } else if (type === 'sysfs' && ns.create.has('user') && !ns.create.has('network')) {
      // sysfs belongs to the network namespace's owner: without a new netns, bind the host's.
      out.push(op(Op.MOUNT, '/sys', dst, '', parsed.flags | MS.BIND | MS.REC | MS.RDONLY, '', inRoot | MountFlag.BIND_REMOUNT));
    } else if (type === 'mqueue' && ns.create.has('user') && !ns.create.has('ipc')) {
      out.push(op(Op.MOUNT, '/dev/mqueue', dst, '', MS.BIND | MS.REC, '', inRoot));
    } else {
      if (!type) throw bad(`${path}.type`, 'a mount that is not a bind mount needs a type');
      out.push(op(Op.MOUNT, m.source ?? type, dst, type, parsed.flags, data, inRoot));
    }
    for (const p of parsed.propagation) out.push(op(Op.MOUNT, '', dst, '', p, '', MountFlag.IN_ROOT | MountFlag.PROPAGATION));
  });
  return out;
}

function compileCgroupMount(dst: string, flags: number, o: CompileOptions, ns: ReturnType<typeof namespaceSet>): PlanOp[] {
  const sources = o.cgroupMounts ?? [];
  const inRoot = MountFlag.IN_ROOT | MountFlag.MKDIR;
  const ro = flags & MS.RDONLY;
  const base = (flags & (MS.NOSUID | MS.NODEV | MS.NOEXEC)) | MS.NOSUID | MS.NODEV | MS.NOEXEC;
  const pureV2 = sources.length === 1 && sources[0].name === '';
  if (pureV2) {
    if (ns.create.has('cgroup')) return [op(Op.MOUNT, 'cgroup', dst, 'cgroup2', base | ro, '', inRoot)];
    return [op(Op.MOUNT, sources[0].hostDir, dst, '', MS.BIND | MS.REC | base | ro, '', inRoot | MountFlag.BIND_REMOUNT)];
  }
  const out: PlanOp[] = [op(Op.MOUNT, 'tmpfs', dst, 'tmpfs', base, 'mode=755', inRoot)];
  for (const s of sources) {
    const sub = join(dst, s.name);
    out.push(op(Op.MOUNT, s.hostDir, sub, '', MS.BIND | MS.REC | base | ro, '', inRoot | MountFlag.BIND_REMOUNT));
    if (s.name.includes(',')) for (const c of s.name.split(',')) out.push(op(Op.SYMLINK, s.name, join(dst, c)));
  }
  if (ro) out.push(op(Op.MOUNT, '', dst, '', MS.REMOUNT | base | MS.RDONLY, 'mode=755', MountFlag.IN_ROOT));
  return out;
}

/**
 * The device-cgroup rules a container gets: the config's own, then what every container
 * needs (mknod anything; use the default devices and the pty ones). Nodes listed in
 * linux.devices are created but, as with runc, usable only when resources.devices allows
 * them (Docker's --device adds both). Later rules win.
 */
export function effectiveDeviceRules(spec: Spec): DeviceCgroup[] {
  const own = spec.linux?.resources?.devices ?? [];
  const allow = (type: string, major: number | null, minor: number | null, access = 'rwm'): DeviceCgroup => ({ allow: true, type, major, minor, access });
  const defaults: DeviceCgroup[] = [
    allow('c', null, null, 'm'),
    allow('b', null, null, 'm'),
    ...DEFAULT_DEVICES.map((d) => allow('c', d.major!, d.minor!)),
    allow('c', 5, 1), // /dev/console
    allow('c', 5, 2), // /dev/ptmx
    allow('c', 136, null), // /dev/pts/*
  ];
  return [...own, ...defaults];
}

function deviceMode(d: Device, path: string): number {
  const kind = d.type === 'c' || d.type === 'u' ? S_IFCHR : d.type === 'b' ? S_IFBLK : d.type === 'p' ? S_IFIFO : -1;
  if (kind < 0) throw bad(`${path}.type`, `unknown device type "${d.type}" (expected c, b, u or p)`);
  return kind | ((d.fileMode ?? 0o666) & 0o7777);
}

function compileDevices(spec: Spec, userNs: boolean): PlanOp[] {
  const binds = (spec.mounts ?? []).some((m) => containerPath(m.destination, 'mounts[].destination') === '/dev' && (m.type === 'bind' || m.options?.includes('bind') || m.options?.includes('rbind')));
  if (binds) return [];
  const out: PlanOp[] = [];
  const listed = spec.linux?.devices ?? [];
  const all = [...DEFAULT_DEVICES.filter((d) => !listed.some((l) => l.path === d.path)).map((d) => ({ d, path: 'default device' })), ...listed.map((d, i) => ({ d, path: `linux.devices[${i}]` }))];
  for (const { d, path } of all) {
    const dst = containerPath(d.path, `${path}.path`);
    const mode = deviceMode(d, path);
    if (userNs) out.push(op(Op.BIND_DEVICE, d.path, dst));
    else out.push(op(Op.MKNOD, dst, mode, d.major ?? 0, d.minor ?? 0, d.uid ?? 0, d.gid ?? 0));
  }
  const links: [string, string][] = [
    ['/proc/self/fd', '/dev/fd'],
    ['/proc/self/fd/0', '/dev/stdin'],
    ['/proc/self/fd/1', '/dev/stdout'],
    ['/proc/self/fd/2', '/dev/stderr'],
  ];
  for (const [target, link] of links) out.push(op(Op.SYMLINK, target, link));
  if ((spec.mounts ?? []).some((m) => containerPath(m.destination, '') === '/dev/pts')) out.push(op(Op.SYMLINK, 'pts/ptmx', '/dev/ptmx'));
  return out;
}

function compileSysctls(spec: Spec, ns: ReturnType<typeof namespaceSet>): PlanOp[] {
  return Object.entries(spec.linux?.sysctl ?? {}).map(([key, value]) => {
    const path = `linux.sysctl["${key}"]`;
    if (!/^[\w.\-/]+$/.test(key) || key.includes('..')) throw bad(path, 'invalid sysctl name');
    let need: NamespaceType | undefined;
    if (IPC_SYSCTLS.has(key) || key.startsWith('fs.mqueue.')) need = 'ipc';
    else if (key.startsWith('net.')) need = 'network';
    else if (key === 'kernel.hostname' || key === 'kernel.domainname') need = 'uts';
    if (!need) throw bad(path, 'this sysctl is not namespaced: setting it would change the host', 'only ipc, net.* and uts sysctls can be set per container');
    if (!hasNs(ns, need)) throw bad(path, `needs a ${need} namespace`, `add {"type": "${need}"} to linux.namespaces`);
    return op(Op.SYSCTL, key, String(value));
  });
}

/** Compiles the plan that creates a container (create / run). */
export function compileCreate(o: CompileOptions): Compiled {
  const spec = o.spec;
  const warnings: string[] = [];
  if (!spec.process) throw bad('process', 'is required to create a container');
  if (!spec.root?.path) throw bad('root.path', 'is required');
  const rootfs = isAbsolute(spec.root.path) ? spec.root.path : resolve(o.bundle, spec.root.path);
  if (Object.keys(spec.linux?.timeOffsets ?? {}).length)
    throw new BerthError('FailedPrecondition', 'linux.timeOffsets: time namespace offsets are not supported by berth yet', {
      hint: 'remove linux.timeOffsets (a time namespace without offsets works)',
    });
  const ns = namespaceSet(spec);
  const userNs = hasNs(ns, 'user');
  const proc = spec.process;
  const plan: Plan = [];

  // ---- parent: cgroups, joined namespaces, console, clone ----
  for (const dir of o.cgroupDirs ?? []) plan.push(op(Op.CGROUP_JOIN, dir));
  if (o.deviceProgram) plan.push(op(Op.DEVICE_BPF, o.deviceProgram.cgroupDir, o.deviceProgram.insns, 'Apache-2.0'));
  // Before joining any namespace: these paths are in the caller's mount namespace, and a
  // user-namespaced child may not reach the state directory itself.
  if (proc.terminal && o.consoleSocket) plan.push(op(Op.CONSOLE_SOCKET, o.consoleSocket));
  if (o.fifoPath) plan.push(op(Op.MKFIFO, o.fifoPath, 0o622), op(Op.FIFO_OPEN, o.fifoPath));
  // user first (it grants the rights to join the rest), mount last (paths resolve in the old one).
  const joinOrder: NamespaceType[] = ['user', 'pid', 'ipc', 'uts', 'network', 'cgroup', 'time', 'mount'];
  for (const t of joinOrder) {
    const p = ns.join.get(t);
    if (p !== undefined) {
      if (!isAbsolute(p)) throw bad(`linux.namespaces[type=${t}].path`, `must be absolute, got "${p}"`);
      plan.push(op(Op.SETNS, p, CLONE_FLAGS[t]));
    }
  }
  if (proc.terminal && !o.consoleSocket && !o.foreground)
    throw new BerthError('InvalidArgument', 'process.terminal is true but no --console-socket was given', { hint: 'pass --console-socket, or run in the foreground' });
  let flags = 0;
  for (const t of ns.create) flags |= CLONE_FLAGS[t];
  plan.push(op(Op.CLONE, flags));
  if (ns.create.has('user')) {
    const uid = spec.linux?.uidMappings ?? [];
    const gid = spec.linux?.gidMappings ?? [];
    if (uid.length === 0 || gid.length === 0) throw bad('linux.uidMappings', 'a new user namespace needs uidMappings and gidMappings');
    plan.push(op(Op.UIDMAP, mapText(uid)), op(Op.GIDMAP, mapText(gid)));
  } else if (spec.linux?.uidMappings?.length || spec.linux?.gidMappings?.length) {
    throw bad('linux.uidMappings', 'mappings need a new user namespace', 'add {"type": "user"} to linux.namespaces');
  }
  if (o.foreground) plan.push(op(Op.FOREGROUND));
  plan.push(op(Op.CHILD));

  // ---- child: filesystem ----
  // In a new or joined user namespace the process starts as the overflow uid: become its
  // root (as mapped) before making anything, or the kernel refuses unmapped owners.
  if (userNs) plan.push(op(Op.USER, 0, 0, -1));
  plan.push(op(Op.SETSID));
  if (!o.noNewKeyring) plan.push(op(Op.NEW_KEYRING, `_ses.${o.id}`));
  const newMountNs = ns.create.has('mount');
  const rootProp = spec.linux?.rootfsPropagation ? parsePropagation(spec.linux.rootfsPropagation, 'linux.rootfsPropagation') : MS.SLAVE | MS.REC;
  if (newMountNs) {
    // pivot_root refuses shared mounts: stay slave (or what was asked, if not shared) until
    // after the pivot, then give "/" the asked propagation.
    const prePivot = rootProp & MS.SHARED ? MS.SLAVE | MS.REC : rootProp;
    plan.push(op(Op.MOUNT, '', '/', '', prePivot, '', MountFlag.PROPAGATION));
    plan.push(op(Op.MOUNT, rootfs, rootfs, '', MS.BIND | MS.REC, '', 0));
  } else if (!o.noPivot && !ns.join.has('mount')) {
    throw bad('linux.namespaces', 'a container without its own mount namespace cannot pivot_root', 'add {"type": "mount"} or use --no-pivot');
  }
  plan.push(op(Op.ROOTFS, rootfs));
  plan.push(...compileMounts(spec, o, ns));
  plan.push(...compileDevices(spec, userNs));
  plan.push(op(Op.MKDIR, proc.cwd, 0o755));

  const hooks = spec.hooks ?? {};
  const needsState = ['prestart', 'createRuntime', 'createContainer', 'startContainer'].some((k) => (hooks[k as keyof typeof hooks] ?? []).length > 0);
  if (needsState) plan.push(op(Op.SYNC, 'create'));
  for (const h of hooks.createContainer ?? []) {
    const args = h.args ?? [h.path];
    plan.push(op(Op.HOOK, h.path, h.timeout ?? 0, args.length, ...args, ...(h.env ?? [])));
  }
  if (newMountNs || ns.join.has('mount')) plan.push(op(o.noPivot ? Op.MOVE_ROOT : Op.PIVOT_ROOT, rootfs));
  if (newMountNs && spec.linux?.rootfsPropagation) plan.push(op(Op.MOUNT, '', '/', '', rootProp, '', MountFlag.PROPAGATION));
  if (spec.root.readonly) plan.push(op(Op.REMOUNT_RO, '/'));

  // ---- child: kernel settings ----
  if (spec.hostname !== undefined && spec.hostname !== '') {
    if (!hasNs(ns, 'uts')) throw bad('hostname', 'setting the hostname needs a uts namespace', 'add {"type": "uts"} to linux.namespaces');
    plan.push(op(Op.HOSTNAME, spec.hostname));
  }
  if (spec.domainname !== undefined && spec.domainname !== '') {
    if (!hasNs(ns, 'uts')) throw bad('domainname', 'setting the domainname needs a uts namespace', 'add {"type": "uts"} to linux.namespaces');
    plan.push(op(Op.DOMAINNAME, spec.domainname));
  }
  plan.push(...compileSysctls(spec, ns));
  for (const p of spec.linux?.readonlyPaths ?? []) plan.push(op(Op.READONLY_PATH, containerPath(p, 'linux.readonlyPaths[]')));
  for (const p of spec.linux?.maskedPaths ?? []) plan.push(op(Op.MASK_PATH, containerPath(p, 'linux.maskedPaths[]')));
  plan.push(...compileRlimits(proc, o.host, warnings));
  if (proc.oomScoreAdj !== undefined) plan.push(op(Op.OOM_SCORE_ADJ, proc.oomScoreAdj));
  if (proc.terminal) plan.push(op(Op.CONSOLE, proc.consoleSize?.height ?? 0, proc.consoleSize?.width ?? 0));
  const beforeExec: PlanOp[] = o.fifoPath ? [op(Op.WAIT_START)] : [];
  for (const h of hooks.startContainer ?? []) {
    const args = h.args ?? [h.path];
    beforeExec.push(op(Op.HOOK, h.path, h.timeout ?? 0, args.length, ...args, ...(h.env ?? [])));
  }
  plan.push(...compileProcess(proc, spec, o.host, { closeFrom: 3 + (o.preserveFds ?? 0), warnings, beforeExec }));
  return { plan, warnings, rootfs };
}

export interface ExecCompileOptions {
  spec: Spec;
  process: Process;
  /** Namespace files of the init that differ from berth's own (type → /proc/pid/ns/x). */
  namespaces: { type: NamespaceType; path: string }[];
  cgroupDirs: string[];
  consoleSocket?: string;
  foreground?: boolean;
  preserveFds?: number;
  host: HostFacts;
}

/** Compiles the plan that runs an extra process in a running container (exec). */
export function compileExec(o: ExecCompileOptions): Compiled {
  const warnings: string[] = [];
  const plan: Plan = [];
  for (const dir of o.cgroupDirs) plan.push(op(Op.CGROUP_JOIN, dir));
  if (o.process.terminal && o.consoleSocket) plan.push(op(Op.CONSOLE_SOCKET, o.consoleSocket));
  const order: NamespaceType[] = ['user', 'pid', 'ipc', 'uts', 'network', 'cgroup', 'time', 'mount'];
  for (const t of order) {
    const n = o.namespaces.find((x) => x.type === t);
    if (n) plan.push(op(Op.SETNS, n.path, CLONE_FLAGS[t]));
  }
  if (o.process.terminal && !o.consoleSocket && !o.foreground)
    throw new BerthError('InvalidArgument', 'a terminal was asked for but no --console-socket was given', { hint: 'pass --console-socket, or exec in the foreground' });
  plan.push(op(Op.CLONE, 0));
  if (o.foreground) plan.push(op(Op.FOREGROUND));
  plan.push(op(Op.CHILD));
  if (o.process.terminal) plan.push(op(Op.SETSID));
  plan.push(...compileRlimits(o.process, o.host, warnings));
  if (o.process.oomScoreAdj !== undefined) plan.push(op(Op.OOM_SCORE_ADJ, o.process.oomScoreAdj));
  if (o.process.terminal) plan.push(op(Op.CONSOLE, o.process.consoleSize?.height ?? 0, o.process.consoleSize?.width ?? 0));
  plan.push(...compileProcess(o.process, o.spec, o.host, { closeFrom: 3 + (o.preserveFds ?? 0), warnings }));
  return { plan, warnings, rootfs: '' };
}
