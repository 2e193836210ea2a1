// HostConfig's resource fields → linux.resources, process.rlimits and linux.devices, with
// Docker's validation (its messages, where users search for them) and its adjustments
// (MemorySwap defaults to twice Memory; PidsLimit <= 0 means unlimited).
import { posix } from 'node:path';
import { RLIM_INFINITY } from '../../runtime/rlimits.js';
import type { Device, DeviceCgroup, Resources, Rlimit } from '../../runtime/spec.js';
import type { HostConfig } from '../types.js';
import type { HostDevices, SpecHostFacts } from './host-facts.js';
import { invalid, unsupported } from './invalid.js';

const MIN_MEMORY = 6 * 1024 * 1024;
const CFS_PERIOD = 100000;

/** Docker's default RLIMIT_NOFILE (containerd's): 1048576 soft and hard. */
export const DEFAULT_ULIMITS: readonly Rlimit[] = [{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 }];

const ULIMIT_NAMES = new Set(['as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack']);

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function intField(hc: HostConfig, key: keyof HostConfig): number {
  const v = hc[key];
  if (v === undefined || v === null) return 0;
  if (!isInt(v)) throw invalid(`HostConfig.${key}`, `must be an integer, got ${JSON.stringify(v)}`);
  return v;
}

/** "0-3,7" → the set of numbers; undefined when the syntax is wrong. */
export function parseList(text: string): Set<number> | undefined {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (!m) return undefined;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi > 8192) return undefined;
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  return out;
}

function checkCpuset(value: string, field: string, available: string | undefined, what: string): void {
  const want = parseList(value);
  if (!want || want.size === 0) throw invalid(field, `invalid value "${value}" for ${what}`, 'e.g. "0-3" or "0,2"');
  const have = available === undefined ? undefined : parseList(available.trim());
  if (have && [...want].some((c) => !have.has(c))) throw invalid(field, `requested ${what} are not available - requested ${value}, available: ${available!.trim()}`);
}

export interface ResourcesResult {
  resources: Resources;
  /** The HostConfig with Docker's adjustments (what inspect shows). */
  hostConfig: HostConfig;
  warnings: string[];
}

/** Memory, CPU, pids and blkio of the request as OCI resources. */
export function buildResources(hc: HostConfig, facts: SpecHostFacts): ResourcesResult {
  const warnings: string[] = [];
  const out: HostConfig = { ...hc };
  const r: Resources = {};

  for (const k of ['KernelMemory', 'CpuRealtimePeriod', 'CpuRealtimeRuntime'] as const) {
    if (intField(hc, k) !== 0) throw unsupported(`HostConfig.${k}`, k === 'KernelMemory' ? 'a kernel memory limit' : 'real-time CPU scheduling');
  }

  // Memory
  const memory = intField(hc, 'Memory');
  let swap = intField(hc, 'MemorySwap');
  const reservation = intField(hc, 'MemoryReservation');
  if (memory < 0) throw invalid('HostConfig.Memory', 'cannot be negative');
  if (memory > 0 && memory < MIN_MEMORY) throw invalid('HostConfig.Memory', 'Minimum memory limit allowed is 6MB');
  if (swap > 0 && memory === 0) throw invalid('HostConfig.MemorySwap', 'You should always set the Memory limit when using Memoryswap limit, see usage');
  if (swap > 0 && swap < memory) throw invalid('HostConfig.MemorySwap', 'Minimum memoryswap limit should be larger than memory limit, see usage');
  if (swap < -1) throw invalid('HostConfig.MemorySwap', 'must be -1 (unlimited), 0 (default) or a size in bytes');
  if (reservation < 0) throw invalid('HostConfig.MemoryReservation', 'cannot be negative');
  if (reservation > 0 && reservation < MIN_MEMORY) throw invalid('HostConfig.MemoryReservation', 'Minimum memory reservation allowed is 6MB');
  if (memory > 0 && reservation > 0 && memory < reservation) throw invalid('HostConfig.MemoryReservation', 'Minimum memory limit can not be less than memory reservation limit, see usage');
  if (memory > 0 && swap === 0) {
    swap = memory * 2;
    out.MemorySwap = swap;
  }
  const mem: NonNullable<Resources['memory']> = {};
  if (memory > 0) mem.limit = memory;
  if (swap !== 0 && memory > 0) mem.swap = swap;
  if (reservation > 0) mem.reservation = reservation;
  const swappiness = hc.MemorySwappiness;
  if (swappiness !== undefined && swappiness !== null && swappiness !== -1) {
    if (!isInt(swappiness) || swappiness < 0 || swappiness > 100) throw invalid('HostConfig.MemorySwappiness', `Invalid value: ${swappiness}, valid memory swappiness range is 0-100`);
    if (facts.cgroupV2) {
      warnings.push('Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.');
      out.MemorySwappiness = null;
    } else mem.swappiness = swappiness;
  }
  if (hc.OomKillDisable) {
    if (facts.cgroupV2) {
      warnings.push('Your kernel does not support OomKillDisable. OomKillDisable discarded.');
      out.OomKillDisable = false;
    } else {
      mem.disableOOMKiller = true;
      if (memory === 0) warnings.push('OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.');
    }
  }
  if (Object.keys(mem).length > 0) r.memory = mem;

  // CPU
  const nano = intField(hc, 'NanoCpus');
  const period = intField(hc, 'CpuPeriod');
  const quota = intField(hc, 'CpuQuota');
  let shares = intField(hc, 'CpuShares');
  if (nano !== 0 && period !== 0) throw invalid('HostConfig.NanoCpus', 'Conflicting options: Nano CPUs and CPU Period cannot both be set');
  if (nano !== 0 && quota !== 0) throw invalid('HostConfig.NanoCpus', 'Conflicting options: Nano CPUs and CPU Quota cannot both be set');
  if (nano < 0 || (nano > 0 && (nano < 1e7 || nano > facts.cpuCount * 1e9))) {
    throw invalid('HostConfig.NanoCpus', `Range of CPUs is from 0.01 to ${facts.cpuCount}.00, as there are only ${facts.cpuCount} CPUs available`);
  }
  if (period !== 0 && (period < 1000 || period > 1000000)) throw invalid('HostConfig.CpuPeriod', 'CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  if (quota > 0 && quota < 1000) throw invalid('HostConfig.CpuQuota', 'CPU cfs quota can not be less than 1ms (i.e. 1000)');
  if (shares < 0) throw invalid('HostConfig.CpuShares', 'cannot be negative');
  if (shares === 1) {
    warnings.push('Your kernel does not support CPU shares below 2: CPU shares set to 2.');
    shares = 2;
    out.CpuShares = 2;
  } else if (shares > 262144) {
    warnings.push('Your kernel does not support CPU shares above 262144: CPU shares set to 262144.');
    shares = 262144;
    out.CpuShares = shares;
  }
  const cpu: NonNullable<Resources['cpu']> = {};
  if (nano > 0) {
    cpu.period = CFS_PERIOD;
    cpu.quota = Math.floor((nano * CFS_PERIOD) / 1e9);
  }
  if (period > 0) cpu.period = period;
  if (quota > 0) cpu.quota = quota;
  if (shares > 0) cpu.shares = shares;
  if (hc.CpusetCpus) {
    checkCpuset(hc.CpusetCpus, 'HostConfig.CpusetCpus', facts.onlineCpus, 'CPUs');
    cpu.cpus = hc.CpusetCpus;
  }
  if (hc.CpusetMems) {
    checkCpuset(hc.CpusetMems, 'HostConfig.CpusetMems', facts.onlineMems, 'memory nodes');
    cpu.mems = hc.CpusetMems;
  }
  if (Object.keys(cpu).length > 0) r.cpu = cpu;

  // pids
  const pids = hc.PidsLimit;
  if (pids !== undefined && pids !== null) {
    if (!isInt(pids)) throw invalid('HostConfig.PidsLimit', `must be an integer, got ${JSON.stringify(pids)}`);
    if (pids > 0) r.pids = { limit: pids };
    else out.PidsLimit = null;
  }

  // blkio
  const weight = intField(hc, 'BlkioWeight');
  if (weight !== 0 && (weight < 10 || weight > 1000)) throw invalid('HostConfig.BlkioWeight', 'Range of blkio weight is from 10 to 1000');
  if (weight > 0) r.blockIO = { weight };

  const oom = intField(hc, 'OomScoreAdj');
  if (oom < -1000 || oom > 1000) throw invalid('HostConfig.OomScoreAdj', `Invalid value ${oom}, range for oom score adj is [-1000, 1000]`);

  return { resources: r, hostConfig: out, warnings };
}

/** process.rlimits: Docker's default nofile, overridden per name by HostConfig.Ulimits. */
/**
 * `nofileHard`: the daemon's own hard RLIMIT_NOFILE. Docker's containers inherit the daemon's
 * (1048576 where its unit says so); a host that allows less gets its own limit as the
 * default instead of a clamp warning at every start.
 */
export function buildRlimits(ulimits: HostConfig['Ulimits'], nofileHard?: number): Rlimit[] {
  const byType = new Map<string, Rlimit>(
    DEFAULT_ULIMITS.map((r) => {
      const cap = r.type === 'RLIMIT_NOFILE' && nofileHard !== undefined ? Math.min(r.hard, nofileHard) : r.hard;
      return [r.type, { ...r, soft: Math.min(r.soft, cap), hard: cap }];
    }),
  );
  (ulimits ?? []).forEach((u, i) => {
    const field = `HostConfig.Ulimits[${i}]`;
    const name = String(u?.Name ?? '').toLowerCase();
    if (!ULIMIT_NAMES.has(name)) throw invalid(`${field}.Name`, `invalid ulimit type: ${u?.Name}`, `one of ${[...ULIMIT_NAMES].join(', ')}`);
    const value = (v: number, k: string) => {
      if (!isInt(v) || v < -1) throw invalid(`${field}.${k}`, `invalid ulimit value ${JSON.stringify(v)} (an integer, -1 for unlimited)`);
      return v === -1 ? RLIM_INFINITY : v;
    };
    const soft = value(u.Soft, 'Soft');
    const hard = value(u.Hard, 'Hard');
    if (soft > hard) throw invalid(field, `ulimit soft limit must be less than or equal to hard limit: ${u.Soft} > ${u.Hard}`);
    const type = `RLIMIT_${name.toUpperCase()}`;
    byType.set(type, { type, soft, hard });
  });
  return [...byType.values()];
}

export interface DevicesResult {
  devices: Device[];
  rules: DeviceCgroup[];
}

const DEVICE_RULE = /^([abc]) (\d+|\*):(\d+|\*) ([rwm]{1,3})$/;

/** One DeviceCgroupRules entry ("c 1:3 rwm") as an OCI allow rule. */
export function parseDeviceRule(rule: string, field: string): DeviceCgroup {
  const m = DEVICE_RULE.exec(rule.trim());
  if (!m || new Set(m[4]).size !== m[4].length) throw invalid(field, `invalid device cgroup rule "${rule}"`, 'e.g. "c 1:3 rwm" or "b 8:* r"');
  const num = (s: string) => (s === '*' ? null : Number(s));
  return { allow: true, type: m[1], major: num(m[2]), minor: num(m[3]), access: m[4] };
}

/**
 * Devices (each host device, or every device under a host directory, created in the
 * container and allowed with its CgroupPermissions), DeviceCgroupRules, and Privileged
 * (every host device, everything allowed). The runtime appends the default allow-list.
 */
export function buildDevices(hc: HostConfig, devices: HostDevices | undefined): DevicesResult {
  const out: DevicesResult = { devices: [], rules: [{ allow: false, access: 'rwm' }] };
  const need = () => {
    if (!devices) throw new Error('buildContainerSpec: hostFacts.devices is required for HostConfig.Devices and Privileged');
    return devices;
  };
  if (hc.Privileged) {
    out.rules = [{ allow: true, access: 'rwm' }];
    for (const d of need().all()) out.devices.push({ type: d.type, path: d.path, major: d.major, minor: d.minor, fileMode: d.fileMode, uid: d.uid, gid: d.gid });
  }
  (hc.Devices ?? []).forEach((m, i) => {
    const field = `HostConfig.Devices[${i}]`;
    const host = m.PathOnHost;
    if (!host || !host.startsWith('/')) throw invalid(`${field}.PathOnHost`, `must be an absolute path, got ${JSON.stringify(host)}`);
    const inContainer = m.PathInContainer || host;
    if (!inContainer.startsWith('/')) throw invalid(`${field}.PathInContainer`, `must be an absolute path, got ${JSON.stringify(inContainer)}`);
    const perms = m.CgroupPermissions || 'rwm';
    if (!/^[rwm]{1,3}$/.test(perms) || new Set(perms).size !== perms.length) throw invalid(`${field}.CgroupPermissions`, `invalid permissions "${perms}"`, 'a combination of r, w and m');
    const found = need().lookup(host);
    for (const d of found) {
      const rel = posix.relative(host, d.path);
      const path = rel === '' ? inContainer : posix.join(inContainer, rel);
      out.devices.push({ type: d.type, path, major: d.major, minor: d.minor, fileMode: d.fileMode, uid: d.uid, gid: d.gid });
      if (!hc.Privileged) out.rules.push({ allow: true, type: d.type, major: d.major, minor: d.minor, access: perms });
    }
  });
  (hc.DeviceCgroupRules ?? []).forEach((rule, i) => {
    const parsed = parseDeviceRule(rule, `HostConfig.DeviceCgroupRules[${i}]`);
    if (!hc.Privileged) out.rules.push(parsed);
  });
  return out;
}
